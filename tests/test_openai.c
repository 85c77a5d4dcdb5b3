/*
 * test_openai - OpenAI's Images API against a real `gesso serve`: the image
 * of /v1/images/generations (and of an edit) is `gesso generate`'s for the
 * same settings, byte for byte; a call blocks until its job ends, the job
 * outlives a client that leaves, and a cancelled job answers OpenAI's error
 * with x-should-retry: false. Also the multipart reader alone, on the shapes
 * clients send and hostile ones. (Malformed requests are in
 * tests/http/openai.cases; the official npm client in tests/clients.)
 */
#include "testutil.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/multipart.h"
#include "job/base64.h"

static char dir[128], base[64];
static pid_t server = -1;

/* Runs cmd; its stdout (malloc'd) into *out. Returns the exit status. */
static int run(const char *cmd, char **out)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (cap - n < 4096)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    *out = buf;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Reads a whole file (malloc'd). */
static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

/* `gesso generate` at 64x64 with 2 steps and 2 threads, as the workers run it;
   init: an init image or NULL. Returns the PNG's bytes. */
static unsigned char *cli_png(const char *prompt, const char *seed, const char *init, size_t *n)
{
    char out[300], cmd[1600], extra[400] = "";
    snprintf(out, sizeof out, "%s/cli-%s.png", dir, seed);
    if (init)
        snprintf(extra, sizeof extra, " --init-image '%s' --strength 0.75", init);
    snprintf(cmd, sizeof cmd,
             "'%s' generate -q -m '%s' -p '%s' -W 64 -H 64 --steps 2 --threads 2 --seed %s%s "
             "-o '%s' >/dev/null 2>&1",
             GS_GESSO_BIN, fixture_path("tiny-sd15.safetensors"), prompt, seed, extra, out);
    assert_int_equal(system(cmd), 0);
    return slurp(out, n);
}

/* The first image of an ImagesResponse with b64_json, decoded. */
static unsigned char *first_b64(const char *reply, size_t *n)
{
    json_t *j = json_loads(reply, 0, NULL);
    assert_non_null(j);
    const char *b64 = json_string_value(
        json_object_get(json_array_get(json_object_get(j, "data"), 0), "b64_json"));
    assert_non_null(b64);
    unsigned char *png = base64_decode(b64, 1 << 24, n);
    assert_non_null(png);
    json_decref(j);
    return png;
}

static void start(void)
{
    char data[300];
    snprintf(data, sizeof data, "%s/data", dir);
    assert_int_equal(test_remove_tree(data), 0);
    server = test_serve_start(base, dir, NULL);
}

static void generation_is_the_clis_image(void **state)
{
    (void)state;
    start();
    char cmd[800], *reply;
    snprintf(cmd, sizeof cmd,
             "curl -s -m 120 %s/v1/images/generations -H 'Content-Type: application/json' -d "
             "'{\"model\":\"tiny-sd15\",\"prompt\":\"a lighthouse\",\"size\":\"64x64\",\"steps\":2,"
             "\"seed\":42}'",
             base);
    assert_int_equal(run(cmd, &reply), 0);
    size_t n_api, n_cli;
    unsigned char *api = first_b64(reply, &n_api);
    unsigned char *cli = cli_png("a lighthouse", "42", NULL, &n_cli);
    assert_int_equal(n_api, n_cli);
    assert_memory_equal(api, cli, n_cli);
    free(reply);
    free(api);

    /* an edit of that image is the CLI's img2img of it */
    char init[300];
    snprintf(init, sizeof init, "%s/cli-42.png", dir);
    snprintf(cmd, sizeof cmd,
             "curl -s -m 120 %s/v1/images/edits -F 'image=@%s;type=image/png' -F 'prompt=a boat' "
             "-F steps=2 -F seed=9",
             base, init);
    assert_int_equal(run(cmd, &reply), 0);
    api = first_b64(reply, &n_api);
    free(cli);
    cli = cli_png("a boat", "9", init, &n_cli);
    assert_int_equal(n_api, n_cli);
    assert_memory_equal(api, cli, n_cli);
    free(reply);
    free(api);
    free(cli);
    assert_int_equal(test_serve_stop(server), 0);
    server = -1;
}

/* output_format webp at output_compression 100 is lossless: the CLI's pixels;
   jpeg decodes to an image of the size; a url answer asks the native route for
   the format, which sends its MIME type. */
static void output_formats_carry_the_same_image(void **state)
{
    (void)state;
    start();
    size_t n_cli, n;
    unsigned char *cli = cli_png("a lighthouse", "42", NULL, &n_cli);
    gs_image *want = NULL, *got = NULL;
    char msg[200], cmd[800], *reply;
    assert_int_equal(gs_image_load_memory(cli, n_cli, &want, msg, sizeof msg), GS_OK);
    const char *fmt = "curl -s -m 120 %s/v1/images/generations -H 'Content-Type: "
                      "application/json' -d '{\"model\":\"tiny-sd15\",\"prompt\":\"a "
                      "lighthouse\",\"size\":\"64x64\",\"steps\":2,\"seed\":42,%s}'";
    snprintf(cmd, sizeof cmd, fmt, base, "\"output_format\":\"webp\"");
    assert_int_equal(run(cmd, &reply), 0);
    unsigned char *img = first_b64(reply, &n);
    assert_memory_equal(img, "RIFF", 4);
    assert_int_equal(gs_image_load_memory(img, n, &got, msg, sizeof msg), GS_OK);
    assert_int_equal(got->width, 64);
    assert_memory_equal(got->pixels, want->pixels, (size_t)64 * 64 * 3);
    gs_image_free(got);
    free(img);
    free(reply);

    snprintf(cmd, sizeof cmd, fmt, base, "\"output_format\":\"jpeg\",\"output_compression\":90");
    assert_int_equal(run(cmd, &reply), 0);
    img = first_b64(reply, &n);
    assert_memory_equal(img, "\xff\xd8\xff", 3);
    assert_int_equal(gs_image_load_memory(img, n, &got, msg, sizeof msg), GS_OK);
    assert_int_equal(got->width, 64);
    assert_int_equal(got->height, 64);
    int maxd = 0; /* a lossy copy: near, not equal */
    for (size_t i = 0; i < (size_t)64 * 64 * 3; i++) {
        int d = abs((int)got->pixels[i] - (int)want->pixels[i]);
        maxd = d > maxd ? d : maxd;
    }
    printf("JPEG q90 copy: max |diff| %d levels\n", maxd);
    assert_true(maxd > 0 && maxd < 128);
    gs_image_free(got);
    free(img);
    free(reply);

    snprintf(cmd, sizeof cmd, fmt, base, "\"output_format\":\"webp\",\"response_format\":\"url\"");
    assert_int_equal(run(cmd, &reply), 0);
    json_t *j = json_loads(reply, 0, NULL);
    const char *url =
        json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "url"));
    assert_non_null(url);
    assert_non_null(strstr(url, "?format=webp&quality=100"));
    snprintf(cmd, sizeof cmd, "curl -s -m 60 -o /dev/null -w '%%{content_type}' '%s'", url);
    free(reply);
    assert_int_equal(run(cmd, &reply), 0);
    assert_string_equal(reply, "image/webp");
    json_decref(j);
    free(reply);
    gs_image_free(want);
    free(cli);
    assert_int_equal(test_serve_stop(server), 0);
    server = -1;
}

/* Writes a w x h image of `channels` channels to path as PNG: left half
   `left`, right half `right` in every channel. */
static void write_halves(const char *path, int w, int h, int channels, uint8_t left, uint8_t right)
{
    gs_image im = {w, h, channels, malloc((size_t)w * h * channels)};
    assert_non_null(im.pixels);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            memset(im.pixels + ((size_t)y * w + x) * channels, x < w / 2 ? left : right,
                   (size_t)channels);
    char msg[200];
    assert_int_equal(gs_image_save_png(&im, path, NULL, msg, sizeof msg), GS_OK);
    free(im.pixels);
}

/* An edit with OpenAI's mask (alpha 0 = edit) is the CLI's inpainting with
   gesso's mask for the same area (white = repaint), byte for byte; a mask
   without alpha, or of another size, is refused in OpenAI's shape. */
static void edit_with_mask_is_the_clis_inpainting(void **state)
{
    (void)state;
    start();
    char init[300], rgba[300], gray[300], small[300], cmd[1600], *reply;
    snprintf(init, sizeof init, "%s/mask-init.png", dir);
    snprintf(rgba, sizeof rgba, "%s/mask-openai.png", dir);
    snprintf(gray, sizeof gray, "%s/mask-gesso.png", dir);
    snprintf(small, sizeof small, "%s/mask-small.png", dir);
    write_halves(init, 64, 64, 3, 200, 40);
    write_halves(rgba, 64, 64, 4, 0, 255); /* transparent left half: edit it */
    write_halves(gray, 64, 64, 3, 255, 0);
    write_halves(small, 32, 32, 4, 0, 255);
    snprintf(cmd, sizeof cmd,
             "curl -s -m 120 %s/v1/images/edits -F 'image=@%s;type=image/png' "
             "-F 'mask=@%s;type=image/png' -F 'prompt=a boat' -F steps=2 -F seed=9",
             base, init, rgba);
    assert_int_equal(run(cmd, &reply), 0);
    size_t n_api, n_cli;
    unsigned char *api = first_b64(reply, &n_api);
    char out[300];
    snprintf(out, sizeof out, "%s/cli-mask.png", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' generate -q -m '%s' -p 'a boat' -W 64 -H 64 --steps 2 --threads 2 --seed 9 "
             "--init-image '%s' --strength 0.75 --mask '%s' -o '%s' >/dev/null 2>&1",
             GS_GESSO_BIN, fixture_path("tiny-sd15.safetensors"), init, gray, out);
    assert_int_equal(system(cmd), 0);
    unsigned char *cli = slurp(out, &n_cli);
    assert_int_equal(n_api, n_cli);
    assert_memory_equal(api, cli, n_cli);
    free(reply);
    free(api);
    free(cli);

    const char *bad[][2] = {{gray, "no alpha channel"}, {small, "must be the same size"}};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd,
                 "curl -s -m 60 -w '\n%%{http_code}' %s/v1/images/edits "
                 "-F 'image=@%s;type=image/png' -F 'mask=@%s;type=image/png' -F 'prompt=x'",
                 base, init, bad[i][0]);
        assert_int_equal(run(cmd, &reply), 0);
        char *code = strrchr(reply, '\n');
        assert_non_null(code);
        assert_string_equal(code + 1, "400");
        *code = '\0';
        json_t *j = json_loads(reply, 0, NULL);
        json_t *e = json_object_get(j, "error");
        assert_string_equal(json_string_value(json_object_get(e, "param")), "mask");
        assert_string_equal(json_string_value(json_object_get(e, "code")), "invalid_value");
        assert_non_null(strstr(json_string_value(json_object_get(e, "message")), bad[i][1]));
        json_decref(j);
        free(reply);
    }
    assert_int_equal(test_serve_stop(server), 0);
    server = -1;
}

/* The id of the newest job, once there is one. */
static char *newest_job(void)
{
    for (int i = 0; i < 500; i++) {
        char *body;
        assert_int_equal(test_http(base, dir, "GET", "/v1/jobs?limit=1", NULL, &body), 200);
        json_t *j = json_loads(body, 0, NULL);
        free(body);
        const char *id =
            json_string_value(json_object_get(json_array_get(json_object_get(j, "jobs"), 0), "id"));
        char *copy = id ? strdup(id) : NULL;
        json_decref(j);
        if (copy)
            return copy;
        test_sleep_ms(20);
    }
    fail_msg("no job appeared");
    return NULL;
}

static void a_call_outlives_its_client_and_ends_with_its_job(void **state)
{
    (void)state;
    start();
    const char *slow = "{\"prompt\":\"x\",\"size\":\"64x64\",\"steps\":60}";
    char cmd[800], *out;
    /* the client gives up after a second; the job runs on */
    snprintf(cmd, sizeof cmd,
             "curl -s -m 1 -o /dev/null %s/v1/images/generations -H 'Content-Type: "
             "application/json' -d '%s'",
             base, slow);
    assert_int_not_equal(run(cmd, &out), 0);
    free(out);
    char *id = newest_job();
    json_t *j = test_wait_job(base, dir, NULL, id, 300000);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
    json_decref(j);
    free(id);

    /* a waiting call whose job is cancelled answers OpenAI's error, not to be retried */
    snprintf(cmd, sizeof cmd,
             "curl -s -m 120 -D - %s/v1/images/generations -H 'Content-Type: application/json' "
             "-d '%s' > '%s/cancelled.txt'",
             base, slow, dir);
    FILE *p = popen(cmd, "r");
    id = NULL;
    for (int i = 0; i < 500 && !id; i++) {
        char *last = newest_job();
        char path[128];
        snprintf(path, sizeof path, "/v1/jobs/%s", last);
        json_t *job = test_get_job(base, dir, NULL, last);
        if (strcmp(json_string_value(json_object_get(job, "status")), "succeeded") != 0)
            id = last;
        else
            free(last), test_sleep_ms(20);
        json_decref(job);
    }
    assert_non_null(id);
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    assert_int_equal(test_http(base, dir, "DELETE", path, NULL, NULL), 200);
    assert_int_equal(pclose(p), 0);
    snprintf(cmd, sizeof cmd, "%s/cancelled.txt", dir);
    size_t n;
    char *text = (char *)slurp(cmd, &n);
    text[n] = '\0';
    assert_non_null(strstr(text, "HTTP/1.1 500"));
    assert_non_null(strstr(text, "x-should-retry: false"));
    assert_non_null(strstr(text, "\"code\":\"job_cancelled\""));
    assert_non_null(strstr(text, "\"type\":\"server_error\""));
    free(text);
    free(id);
    assert_int_equal(test_serve_stop(server), 0);
    server = -1;
}

/* ---- the multipart reader alone ---- */

static int parse(const char *type, const char *body, multipart_part *parts, int *n, char *msg)
{
    return multipart_parse(type, body, strlen(body), parts, 4, n, msg, 200);
}

static void multipart_shapes(void **state)
{
    (void)state;
    multipart_part parts[4];
    int n;
    char msg[200];
    /* a preamble, a quoted boundary, a quoted name with an escaped quote, an
       epilogue, a part whose bytes hold the boundary without its CRLF */
    const char *ok = "preamble\r\n--b\"x\r\nContent-Disposition: form-data; name=\"a\\\"q\"\r\n\r\n"
                     "1--b\"x2\r\n--b\"x\r\ncontent-disposition: form-data; filename=\"p.png\"; "
                     "name=image\r\nContent-Type: image/png\r\n\r\nPNG\r\n--b\"x--\r\nepilogue";
    assert_int_equal(parse("multipart/form-data; boundary=\"b\\\"x\"", ok, parts, &n, msg), 0);
    assert_int_equal(n, 2);
    assert_string_equal(parts[0].name, "a\"q");
    assert_int_equal(parts[0].len, 7);
    assert_memory_equal(parts[0].data, "1--b\"x2", 7);
    assert_string_equal(parts[1].name, "image");
    assert_true(parts[1].has_filename);
    assert_string_equal(parts[1].filename, "p.png");
    assert_string_equal(parts[1].type, "image/png");
    assert_int_equal(parts[1].len, 3);
    assert_ptr_equal(multipart_find(parts, n, "image"), &parts[1]);
    /* an empty form is a form */
    assert_int_equal(parse("multipart/form-data; boundary=b", "--b--\r\n", parts, &n, msg), 0);
    assert_int_equal(n, 0);
    /* hostile shapes, each refused with a reason */
    const char *bad[][2] = {
        {"text/plain; boundary=b", "--b--"},
        {"multipart/form-data; boundary=", "--b--"},
        {"multipart/form-data; boundary=\"b", "--b--"},
        {"multipart/form-data; boundary=b", ""},
        {"multipart/form-data; boundary=b", "--b"},
        {"multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=a\r\n"},
        {"multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue without end"},
        {"multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: attachment\r\n\r\nx\r\n--b--"},
        {"multipart/form-data; boundary=b", "--b\r\nno colon here\r\n\r\nx\r\n--b--"},
        {"multipart/form-data; boundary=b", "--b\r\n\r\nx\r\n--b--"},
        {"multipart/form-data; boundary=b", "--bX\r\n"},
        {"multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data; name=\"unclosed\r\n\r\nx\r\n--b--"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msg[0] = '\0';
        if (parse(bad[i][0], bad[i][1], parts, &n, msg) != -1)
            fail_msg("case %zu was taken", i);
        assert_true(msg[0] != '\0');
    }
    /* more parts than room */
    const char *many = "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
                       "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
                       "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
                       "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
                       "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--";
    assert_int_equal(parse("multipart/form-data; boundary=b", many, parts, &n, msg), -1);
}

static int stop_leftovers(void **state)
{
    (void)state;
    if (server > 0) {
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
        server = -1;
    }
    return 0;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/gesso-openai-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    return test_link_tiny_model(dir);
}

static int teardown(void **state)
{
    (void)state;
    return test_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(multipart_shapes),
        cmocka_unit_test_teardown(generation_is_the_clis_image, stop_leftovers),
        cmocka_unit_test_teardown(output_formats_carry_the_same_image, stop_leftovers),
        cmocka_unit_test_teardown(edit_with_mask_is_the_clis_inpainting, stop_leftovers),
        cmocka_unit_test_teardown(a_call_outlives_its_client_and_ends_with_its_job, stop_leftovers),
    };
    if (getenv("GS_TEST_FILTER"))
        cmocka_set_test_filter(getenv("GS_TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
