/*
 * test_inpaint - inpainting and outpainting through gs_generate against the
 * A1111 fixture (tests/fixtures/inpaint/README.md; the pixel steps are
 * test_inpaint_mask's): the latents to ~1e-5, the final images within a
 * level; identities (black mask, white mask, a 1x1 mask); the CLI and the
 * service.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/wait.h>
#include <unistd.h>

#include "gesso.h"
#include "job/base64.h"
#include "model/safetensors.h"
#include "pipeline/inpaint.h"
#include "recipes.h"

#include "inpaint_fixture.h"

static int setup(void **state)
{
    (void)state;
    return fixture_setup(1);
}

static double rel_to(const char *name, const char *what, const float *a, size_t n)
{
    char key[128];
    FORMAT_OR_FAIL(key, "%s.%s", name, what);
    size_t m;
    double *ref = golden_f64(key, &m);
    assert_int_equal(m, n);
    double r = rel_l2_f32_f64(a, ref, n);
    free(ref);
    return r;
}

/* Max level difference of img against golden <name>.<what>; *differ counts. */
static int image_vs(const char *name, const char *what, const gs_image *img, int *differ)
{
    int maxd;
    *differ = u8_diff(name, what, img->pixels, (size_t)img->width * img->height * 3, &maxd);
    return maxd;
}

static void recipes_match_goldens(void **state)
{
    (void)state;
    for (int i = 0; i < NREC; i++) {
        gs_params p;
        gs_image *init, *mask;
        params_of(i, &p, &init, &mask);
        size_t n = (size_t)4 * (p.width / 8) * (p.height / 8);
        inpaint_trace tr = {malloc(n * 4), malloc(n * 4), malloc(n * 4), n};
        inpaint_trace_sink = &tr;
        gs_result *res = NULL;
        gs_status st = gs_generate(eng, model, &p, NULL, NULL, &res);
        inpaint_trace_sink = NULL;
        if (st != GS_OK)
            fail_msg("%s: %s", rs[i].name, gs_engine_errmsg(eng));
        const char *nm = rs[i].name;
        double e_enc = rel_to(nm, "init_latent_encoded", tr.encoded, n);
        double e_init = rel_to(nm, "init_latent", tr.init, n);
        double e_final = rel_to(nm, "final_latent", tr.final, n);
        const gs_image *img = gs_result_image(res, 0);
        gs_image *ref = load(ex[i].reference);
        assert_int_equal(img->width, ref->width);
        assert_int_equal(img->height, ref->height);
        int differ, maxd = image_vs(nm, "overlaid_u8", img, &differ), ref_maxd = 0;
        for (size_t k = 0; k < (size_t)ref->width * ref->height * 3; k++) {
            int d = abs((int)img->pixels[k] - (int)ref->pixels[k]);
            ref_maxd = d > ref_maxd ? d : ref_maxd;
        }
        printf("%-24s rel err: encoded %.1e init %.1e final %.1e; image max %d levels (%d differ), "
               "png max %d\n",
               nm, e_enc, e_init, e_final, maxd, differ, ref_maxd);
        /* measured: encoded 1.4-1.5e-6, init 1.2e-7-1.6e-6, final 1.3-3.7e-6 */
        assert_true(e_enc < 1e-5);
        assert_true(e_init < 1e-5);
        assert_true(e_final < 1e-5);
        /* measured 0-1 levels: one value in two recipes sits on a truncation edge */
        assert_true(maxd <= 1);
        assert_true(ref_maxd <= 1);
        /* processing.py's extra_generation_params: "Mask blur" when the blur is on */
        char blur[48];
        snprintf(blur, sizeof blur, ", Mask blur: %d, ", p.mask_blur);
        const char *info = gs_result_infotext(res, 0);
        assert_true((strstr(info, blur) != NULL) == (p.mask_blur > 0));
        gs_image_free(ref);
        gs_result_free(res);
        free(tr.encoded);
        free(tr.init);
        free(tr.final);
        gs_image_free(init);
        gs_image_free(mask);
    }
}

/* A quick run of recipe 0's picture (4 steps, so the identities stay cheap). */
static gs_result *run_quick(gs_params *p)
{
    p->steps = 4;
    gs_result *res = NULL;
    if (gs_generate(eng, model, p, NULL, NULL, &res) != GS_OK)
        fail_msg("%s", gs_engine_errmsg(eng));
    return res;
}

/* A black mask keeps everything: the overlay gives back the init image itself,
   whatever the fill (fill mode repaints the VAE's input, the overlay hides it). */
static void black_mask_returns_init(void **state)
{
    (void)state;
    for (int fill = 0; fill <= 3; fill++) {
        gs_params p;
        gs_image *init, *mask;
        params_of(0, &p, &init, &mask);
        gs_image *black = solid(64, 64, 3, 0);
        p.mask = black;
        p.inpaint_fill = (gs_inpaint_fill)fill;
        gs_result *res = run_quick(&p);
        const gs_image *img = gs_result_image(res, 0);
        assert_memory_equal(img->pixels, init->pixels, (size_t)64 * 64 * 3);
        gs_result_free(res);
        free_solid(black);
        gs_image_free(init);
        gs_image_free(mask);
    }
}

/* A white mask is plain img2img: no blend changes the latent (keep 0, nmask 1),
   and the overlay is transparent, so the images differ only by A1111's
   truncation against the engine's rounding: 0 or 1 level, never the other way.
   A 1x1 white mask (upscaled) gives the same picture bit for bit. */
static void white_mask_is_img2img(void **state)
{
    (void)state;
    gs_params p;
    gs_image *init, *mask;
    params_of(1, &p, &init, &mask);
    p.mask = NULL;
    gs_result *plain = run_quick(&p);
    gs_image *white = solid(64, 64, 3, 255), *dot = solid(1, 1, 3, 255);
    p.mask = white;
    p.mask_blur = 0;
    gs_result *inp = run_quick(&p);
    p.mask = dot;
    gs_result *inp_dot = run_quick(&p);
    const gs_image *a = gs_result_image(plain, 0), *b = gs_result_image(inp, 0),
                   *c = gs_result_image(inp_dot, 0);
    int ones = 0;
    for (size_t i = 0; i < (size_t)64 * 64 * 3; i++) {
        int d = (int)a->pixels[i] - (int)b->pixels[i];
        assert_true(d == 0 || d == 1);
        ones += d;
    }
    printf("white mask against img2img: %d of %d values one level lower (truncation)\n", ones,
           64 * 64 * 3);
    assert_true(ones > 0); /* the truncation is there: the inpainting path did run */
    assert_memory_equal(b->pixels, c->pixels, (size_t)64 * 64 * 3);
    gs_result_free(plain);
    gs_result_free(inp);
    gs_result_free(inp_dot);
    free_solid(white);
    free_solid(dot);
    gs_image_free(init);
    gs_image_free(mask);
}

/* Refusals: a mask without an init image, bad ranges, an empty mask. */
static void bad_mask_parameters_are_refused(void **state)
{
    (void)state;
    gs_params p;
    gs_image *init, *mask;
    params_of(0, &p, &init, &mask);
    gs_result *res = NULL;
    gs_params q = p;
    q.init_image = NULL;
    assert_int_equal(gs_generate(eng, model, &q, NULL, NULL, &res), GS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(gs_engine_errmsg(eng), "init image"));
    q = p;
    q.mask_blur = -1;
    assert_int_equal(gs_generate(eng, model, &q, NULL, NULL, &res), GS_ERR_INVALID_ARGUMENT);
    q = p;
    q.inpaint_fill = (gs_inpaint_fill)4;
    assert_int_equal(gs_generate(eng, model, &q, NULL, NULL, &res), GS_ERR_INVALID_ARGUMENT);
    q = p;
    q.inpaint_padding = 1000;
    assert_int_equal(gs_generate(eng, model, &q, NULL, NULL, &res), GS_ERR_INVALID_ARGUMENT);
    gs_image empty = {0, 0, 3, NULL};
    q = p;
    q.mask = &empty;
    assert_int_equal(gs_generate(eng, model, &q, NULL, NULL, &res), GS_ERR_INVALID_ARGUMENT);
    assert_null(res);
    gs_image_free(init);
    gs_image_free(mask);
}

/* Runs `gesso` with argv (NULL-terminated), output to dir/stdout, dir/stderr. */
static int run_cli(const char *dir, char *const argv[])
{
    fflush(stdout); /* or the child's freopen writes our buffer twice */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char path[512];
        snprintf(path, sizeof path, "%s/stdout", dir);
        if (!freopen(path, "w", stdout))
            _exit(126);
        snprintf(path, sizeof path, "%s/stderr", dir);
        if (!freopen(path, "w", stderr))
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static int max_level_diff(const char *a_path, const char *b_path)
{
    gs_image *a = NULL, *b = NULL;
    char msg[256];
    assert_int_equal(gs_image_load(a_path, &a, msg, sizeof msg), GS_OK);
    assert_int_equal(gs_image_load(b_path, &b, msg, sizeof msg), GS_OK);
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    int maxd = 0;
    for (size_t i = 0; i < (size_t)a->width * a->height * 3; i++) {
        int d = abs((int)a->pixels[i] - (int)b->pixels[i]);
        maxd = d > maxd ? d : maxd;
    }
    gs_image_free(a);
    gs_image_free(b);
    return maxd;
}

/* The CLI: recipe inp_original_blur0_d075 through --mask, outpaint_right through
   --outpaint from the 64x64 original, and the usage errors. */
static void cli_inpaint_and_outpaint(void **state)
{
    (void)state;
    char dir[] = "/tmp/gesso-test-inpaint-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char out[300], init[300], mask[300], model_path[300], orig[300];
    snprintf(out, sizeof out, "%s/out.png", dir);
    snprintf(orig, sizeof orig, "%s/orig.png", dir);
    snprintf(model_path, sizeof model_path, "%s", fixture_path("tiny-sd15.safetensors"));
    snprintf(init, sizeof init, "%s", fixture_path(rs[1].init_image));
    snprintf(mask, sizeof mask, "%s", fixture_path(ex[1].mask));
    char *a1[] = {GS_GESSO_BIN, "generate",
                  "-q",         "-m",
                  model_path,   "-p",
                  rs[1].prompt, "-s",
                  "7",          "--steps",
                  "10",         "--sampler",
                  "euler",      "-W",
                  "64",         "-H",
                  "64",         "--strength",
                  "0.75",       "-i",
                  init,         "--mask",
                  mask,         "--mask-blur",
                  "0",          "--inpaint-fill",
                  "original",   "--precision",
                  "f32",        "-o",
                  out,          NULL};
    assert_int_equal(run_cli(dir, a1), 0);
    int d1 = max_level_diff(out, fixture_path(ex[1].reference));
    assert_true(d1 <= 1); /* measured 0, as through the API */

    gs_image *want = load("inpaint/init-outpaint_right.png");
    gs_image *o = solid(64, 64, 3, 0);
    for (int y = 0; y < 64; y++)
        memcpy(o->pixels + (size_t)y * 64 * 3, want->pixels + (size_t)y * 96 * 3, 64 * 3);
    char msg[256];
    assert_int_equal(gs_image_save_png(o, orig, NULL, msg, sizeof msg), GS_OK);
    char *a2[] = {GS_GESSO_BIN, "generate",
                  "-q",         "-m",
                  model_path,   "-p",
                  rs[5].prompt, "-s",
                  "2024",       "--steps",
                  "10",         "--sampler",
                  "euler_a",    "--strength",
                  "1",          "-i",
                  orig,         "--outpaint",
                  "0,32,0,0",   "--mask-blur",
                  "4",          "--inpaint-fill",
                  "fill",       "--precision",
                  "f32",        "-o",
                  out,          NULL};
    assert_int_equal(run_cli(dir, a2), 0);
    int d2 = max_level_diff(out, fixture_path(ex[5].reference));
    printf("CLI: inpaint %d, outpaint %d levels from the references\n", d1, d2);
    assert_true(d2 <= 1); /* measured 0 */

    char *a3[] = {GS_GESSO_BIN, "generate", "-m", model_path, "-p", "x",
                  "--mask",     mask,       "-o", out,        NULL};
    assert_int_equal(run_cli(dir, a3), 2); /* a mask without an init image */
    char *a4[] = {GS_GESSO_BIN, "generate",         "-m", model_path, "-p", "x",  "-i", init,
                  "--mask",     "/nonexistent.png", "-W", "64",       "-H", "64", "-o", out,
                  NULL};
    assert_int_equal(run_cli(dir, a4), 3);
    char *a5[] = {GS_GESSO_BIN, "generate",       "-m",   model_path, "-p", "x", "-i",
                  init,         "--inpaint-fill", "blue", "-o",       out,  NULL};
    assert_int_equal(run_cli(dir, a5), 2);
    char *a6[] = {GS_GESSO_BIN, "generate",   "-m",    model_path, "-p", "x", "-i",
                  init,         "--outpaint", "1,2,3", "-o",       out,  NULL};
    assert_int_equal(run_cli(dir, a6), 2);
    free_solid(o);
    gs_image_free(want);
    assert_int_equal(test_remove_tree(dir), 0);
}

static char *file_base64(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return base64_encode(buf, n);
}

/* One job through the service (native fields, images inline), the same
   picture as the API's; and its 4xx refusals with their reasons. */
static void service_job(void **state)
{
    (void)state;
    char dir[] = "/tmp/gesso-test-inpaint-serve-XXXXXX", base[64];
    assert_non_null(mkdtemp(dir));
    assert_int_equal(test_link_tiny_model(dir), 0);
    /* the reference is an f32 result; auto would pick bf16 where it is faster */
    const char *const extra[] = {"--precision", "f32", NULL};
    pid_t server = test_serve_start(base, dir, extra);
    char *init = file_base64(fixture_path(rs[1].init_image));
    char *mask = file_base64(fixture_path(ex[1].mask));
    size_t len = strlen(init) + strlen(mask) + 1024;
    char *job = malloc(len);
    snprintf(job, len,
             "{\"model\":\"tiny-sd15\",\"prompt\":\"%s\",\"seed\":7,\"steps\":10,"
             "\"sampler\":\"euler\",\"width\":64,\"height\":64,\"strength\":0.75,"
             "\"init_image\":\"%s\",\"mask\":\"%s\",\"mask_blur\":0,"
             "\"inpaint_fill\":\"original\"}",
             rs[1].prompt, init, mask);
    char *id = test_submit(base, dir, NULL, job);
    json_t *j = test_wait_job(base, dir, NULL, id, 300000);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
    json_decref(j);
    char path[400];
    snprintf(path, sizeof path, "/v1/jobs/%s/images/0", id);
    assert_int_equal(test_http(base, dir, "GET", path, NULL, NULL), 200);
    snprintf(path, sizeof path, "%s/resp", dir);
    int d = max_level_diff(path, fixture_path(ex[1].reference));
    printf("service: %d levels from the reference\n", d);
    assert_true(d <= 1); /* measured 0 */

    static const struct {
        const char *json, *says;
    } bad[] = {
        {"{\"model\":\"tiny-sd15\",\"mask\":\"%s\"}", "init image"},
        {"{\"model\":\"tiny-sd15\",\"init_image\":\"%s\",\"mask\":\"bm90IGFuIGltYWdl\"}", "mask"},
        {"{\"model\":\"tiny-sd15\",\"init_image\":\"%s\",\"mask\":\"%s\","
         "\"inpaint_fill\":\"blue\"}",
         "inpaint_fill"},
        {"{\"model\":\"tiny-sd15\",\"init_image\":\"%s\",\"mask\":\"%s\",\"mask_blur\":99}",
         "mask_blur"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(job, len, bad[i].json, i == 0 ? mask : init, mask);
        snprintf(path, sizeof path, "%s/bad.json", dir);
        FILE *f = fopen(path, "w");
        fputs(job, f);
        fclose(f);
        char *body = NULL;
        int code = test_http(base, dir, "POST", "/v1/jobs", path, &body);
        if (code < 400 || code >= 500 || !strstr(body, bad[i].says))
            fail_msg("case %zu: %d %s", i, code, body);
        free(body);
    }
    assert_int_equal(test_serve_stop(server), 0);
    free(id);
    free(job);
    free(init);
    free(mask);
    assert_int_equal(test_remove_tree(dir), 0);
}

/* tiny-sd15 as a 9-channel inpainting checkpoint: conv_in widened from 4 to
   9 input channels with zero weights, so the mask and masked-image channels
   reach the UNet but change nothing. */
static void write_nine_channel(const char *path)
{
    st_file *f;
    gi_error err = {0};
    assert_int_equal(st_open(fixture_path("tiny-sd15.safetensors"), &f, &err), GS_OK);
    const char *conv_in = "model.diffusion_model.input_blocks.0.0.weight";
    json_t *hdr = json_object(), *meta = json_object();
    const char *keys[] = {"format", "family", "note"};
    for (int k = 0; k < 3; k++)
        if (st_metadata(f, keys[k]))
            json_object_set_new(meta, keys[k], json_string(st_metadata(f, keys[k])));
    json_object_set_new(hdr, "__metadata__", meta);
    size_t off = 0;
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        int wide = strcmp(t->name, conv_in) == 0;
        size_t bytes = wide ? t->nbytes / 4 * 9 : t->nbytes;
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++)
            json_array_append_new(shape, json_integer(wide && d == 1 ? 9 : t->shape[d]));
        json_object_set_new(hdr, t->name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", st_dtype_name(t->dtype),
                                      "shape", shape, "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + bytes)));
        off += bytes;
    }
    char *text = json_dumps(hdr, JSON_COMPACT);
    size_t hlen = (strlen(text) + 7) / 8 * 8;
    FILE *o = fopen(path, "wb");
    uint64_t le = hlen;
    fwrite(&le, 8, 1, o);
    fputs(text, o);
    for (size_t i = strlen(text); i < hlen; i++)
        fputc(' ', o);
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        if (strcmp(t->name, conv_in) != 0) {
            fwrite(t->data, 1, t->nbytes, o);
            continue;
        }
        /* [out, 4, 3, 3] -> [out, 9, 3, 3]: channels 4..8 zero */
        size_t es = st_dtype_size(t->dtype), per = 4 * 9 * es;
        unsigned char zero[5 * 9 * 8] = {0};
        for (int64_t k = 0; k < t->shape[0]; k++) {
            fwrite(t->data + k * per, 1, per, o);
            fwrite(zero, 1, 5 * 9 * es, o);
        }
    }
    fclose(o);
    free(text);
    json_decref(hdr);
    st_close(f);
}

/* A 9-channel checkpoint loads and takes its conditioning; with zero weights
   on the extra channels it must make the 4-channel model's images, for
   txt2img and for inpainting. What this does not verify: the values of the
   mask and masked-image channels against A1111 (there is no golden for them). */
static void nine_channel_checkpoint(void **state)
{
    (void)state;
    char path[] = "/tmp/gesso-test-inpaint9-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_nine_channel(path);
    gs_model *m9 = NULL;
    if (gs_model_load(eng, path, &m9) != GS_OK)
        fail_msg("%s", gs_engine_errmsg(eng));
    for (int inpaint = 0; inpaint < 2; inpaint++) {
        gs_params p;
        gs_image *init, *mask;
        params_of(1, &p, &init, &mask);
        if (!inpaint)
            p.init_image = p.mask = NULL;
        p.steps = 4;
        gs_result *r4 = NULL, *r9 = NULL;
        assert_int_equal(gs_generate(eng, model, &p, NULL, NULL, &r4), GS_OK);
        assert_int_equal(gs_generate(eng, m9, &p, NULL, NULL, &r9), GS_OK);
        const gs_image *a = gs_result_image(r4, 0), *b = gs_result_image(r9, 0);
        int maxd = 0;
        for (size_t i = 0; i < (size_t)64 * 64 * 3; i++) {
            int d = abs((int)a->pixels[i] - (int)b->pixels[i]);
            maxd = d > maxd ? d : maxd;
        }
        printf("9-channel %s: %d levels from the 4-channel model\n",
               inpaint ? "inpainting" : "txt2img", maxd);
        assert_int_equal(maxd, 0);
        gs_result_free(r4);
        gs_result_free(r9);
        gs_image_free(init);
        gs_image_free(mask);
    }
    gs_model_free(m9);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(recipes_match_goldens),
        cmocka_unit_test(black_mask_returns_init),
        cmocka_unit_test(white_mask_is_img2img),
        cmocka_unit_test(bad_mask_parameters_are_refused),
        cmocka_unit_test(cli_inpaint_and_outpaint),
        cmocka_unit_test(service_job),
        cmocka_unit_test(nine_channel_checkpoint),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
