/* test_unet - UNet ε predictions against the golden tensors (batch 2, fractional t). */
#include "testutil.h"

/* f32 against diffusers' f64 eps: measured 2.3-2.5e-7 (AMD EPYC AVX2, 2026-12-06) and
   within 2x of that on AVX-512 machines; the bound allows ~10x. A wrong weight, a
   dropped bias or a swapped norm moves it by orders of magnitude. */
#define UNET_REL_L2 5e-6

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "compute/compute.h"
#include "model/random_checkpoint.h"
#include "model/unet.h"

static void eps_matches(void **state)
{
    (void)state;
    gi_error err = {0};
    st_file *f;
    unet *m;
    gi_compute *cx;
    assert_int_equal(st_open(fixture_path("tiny-sd15.safetensors"), &f, &err), GS_OK);
    assert_int_equal(
        unet_load(f, "model.diffusion_model.", &(unet_opts){.heads = 8}, 0, NULL, &m, &err), GS_OK);
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    assert_int_equal(unet_model_channels(m), 32);
    assert_int_equal(unet_context_dim(m), 96);
    const int B = 2, C = 4, H = 8, W = 16;
    size_t n = (size_t)B * C * H * W;
    /* the second round blocks the feed-forwards by 48 rows (256 rows at the top
       level: five blocks and a remainder) and runs every 3x3 convolution by
       Winograd, as full-size inputs are */
    for (int j = 0; j < 8; j++) {
        if (j == 4) {
            cx->block_rows = 48;
            cx->winograd_min_tiles = 1;
        }
        char key[64];
        size_t cnt;
        snprintf(key, sizeof key, "unet.%d.x", j % 4);
        double *x64 = golden_f64(key, &cnt);
        double *xt = malloc(n * sizeof *xt);
        nchw_to_nhwc_f64(x64, xt, B, C, H, W);
        float *x = malloc(n * sizeof *x);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)xt[i];
        snprintf(key, sizeof key, "unet.%d.t", j % 4);
        float *t = golden_f32(key, NULL);
        snprintf(key, sizeof key, "unet.%d.context", j % 4);
        float *ctx = golden_f32(key, &cnt);
        assert_int_equal(cnt, (size_t)B * 77 * 96);
        snprintf(key, sizeof key, "unet.%d.eps", j % 4);
        double *e64 = golden_f64(key, &cnt);
        double *ref = malloc(n * sizeof *ref);
        nchw_to_nhwc_f64(e64, ref, B, C, H, W);
        float *eps = malloc(n * sizeof *eps);
        assert_int_equal(unet_forward(m, cx, x, t, ctx, NULL, B, H, W, 77, eps, &err), GS_OK);
        double e = rel_l2_f32_f64(eps, ref, n);
        printf("unet.%d.eps (t = %.3f, %.3f), blocks of %ld rows, winograd from %ld tiles: "
               "rel L2 %.3g\n",
               j % 4, t[0], t[1], cx->block_rows, cx->winograd_min_tiles, e);
        assert_true(e < UNET_REL_L2);
        free(x64);
        free(xt);
        free(x);
        free(t);
        free(ctx);
        free(e64);
        free(ref);
        free(eps);
    }
    /* odd latent sizes run (A1111 resizes upsampled maps to their skips) */
    float *x = calloc(2 * 4 * 9 * 13, sizeof *x), *eps = calloc(2 * 4 * 9 * 13, sizeof *eps);
    float t2[2] = {500, 10};
    float *ctx = calloc(2 * 77 * 96, sizeof *ctx);
    assert_int_equal(unet_forward(m, cx, x, t2, ctx, NULL, 2, 9, 13, 77, eps, &err), GS_OK);
    assert_int_equal(unet_forward(m, cx, x, t2, ctx, NULL, 0, 9, 13, 77, eps, &err),
                     GS_ERR_INVALID_ARGUMENT);
    free(x);
    free(eps);
    free(ctx);
    compute_free(cx);
    unet_free(m);
    st_close(f);
}

/* ---- SD 2.x and SDXL (tests/fixtures/sd2, sdxl: their own golden files) ---- */

/* f32 against diffusers' f64 output, heads 64 wide: measured sd2 1.9-2.3e-7, sdxl
   2.0-2.5e-7 (AMD EPYC AVX2, 2026-12-06), the same in the blocked/Winograd round;
   the bound is SD1's. */
#define UNET_FAMILY_REL_L2 5e-6
/* bf16 weights (f32 activations): NOT YET MEASURED - the machine this was written
   on (AMD EPYC, AVX2 only) cannot run bf16 GEMMs and skips this part. Rounding every
   weight to bf16 (2^-9 relative) should give errors of order 1e-3; the f32 runs
   show what a wrong head split or a dropped label_emb does (far past 1e-1).
   Measure on an AVX-512 BF16 / AMX machine and tighten. */
#define UNET_FAMILY_BF16_REL_L2 2e-2

static double *golden_in(st_file *g, const char *name, size_t *numel)
{
    const st_tensor *t = st_find(g, name);
    assert_non_null(t);
    double *d = malloc((size_t)t->numel * sizeof *d + 8);
    gi_error err = {0};
    assert_int_equal(st_to_f64(t, d, &err), GS_OK);
    if (numel)
        *numel = (size_t)t->numel;
    return d;
}

static float *golden_in_f32(st_file *g, const char *name, size_t *numel)
{
    size_t n;
    double *d = golden_in(g, name, &n);
    float *f = malloc(n * sizeof *f + 4);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)d[i];
    free(d);
    if (numel)
        *numel = n;
    return f;
}

typedef struct family_case {
    const char *model, *golden, *out_key;
    int h, w, ctx_dim, adm, bf16;
    double bound;
} family_case;

static void family_matches(const family_case *fc)
{
    gi_error err = {0};
    st_file *f, *g;
    unet *m;
    gi_compute *cx;
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    assert_int_equal(st_open(fixture_path(fc->model), &f, &err), GS_OK);
    assert_int_equal(st_open(fixture_path(fc->golden), &g, &err), GS_OK);
    gs_status st = unet_load(f, "model.diffusion_model.", &(unet_opts){.head_dim = 64}, fc->bf16,
                             NULL, &m, &err);
    if (st != GS_OK)
        fprintf(stderr, "%s: %s\n", fc->model, err.msg);
    assert_int_equal(st, GS_OK);
    assert_int_equal(unet_context_dim(m), fc->ctx_dim);
    assert_int_equal(unet_adm_channels(m), fc->adm);
    assert_int_equal(unet_out_channels(m), 4);
    const int B = 2, C = 4, H = fc->h, W = fc->w;
    size_t n = (size_t)B * C * H * W;
    /* the second round blocks the feed-forwards and runs every 3x3 convolution by
       Winograd, as full-size inputs are (see eps_matches) */
    for (int j = 0; j < 8; j++) {
        if (j == 4) {
            cx->block_rows = 48;
            cx->winograd_min_tiles = 1;
        }
        char key[64];
        size_t cnt;
        snprintf(key, sizeof key, "unet.%d.x", j % 4);
        double *x64 = golden_in(g, key, &cnt);
        double *xt = malloc(n * sizeof *xt);
        nchw_to_nhwc_f64(x64, xt, B, C, H, W);
        float *x = malloc(n * sizeof *x);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)xt[i];
        snprintf(key, sizeof key, "unet.%d.t", j % 4);
        float *t = golden_in_f32(g, key, NULL);
        snprintf(key, sizeof key, "unet.%d.context", j % 4);
        float *ctx = golden_in_f32(g, key, &cnt);
        assert_int_equal(cnt, (size_t)B * 77 * fc->ctx_dim);
        float *y = NULL;
        if (fc->adm) {
            snprintf(key, sizeof key, "unet.%d.vector", j % 4);
            y = golden_in_f32(g, key, &cnt);
            assert_int_equal(cnt, (size_t)B * fc->adm);
        }
        snprintf(key, sizeof key, "unet.%d.%s", j % 4, fc->out_key);
        double *e64 = golden_in(g, key, &cnt);
        double *ref = malloc(n * sizeof *ref);
        nchw_to_nhwc_f64(e64, ref, B, C, H, W);
        float *out = malloc(n * sizeof *out);
        assert_int_equal(unet_forward(m, cx, x, t, ctx, y, B, H, W, 77, out, &err), GS_OK);
        double e = rel_l2_f32_f64(out, ref, n);
        printf("%s %s (t = %.3f, %.3f)%s, blocks of %ld rows, winograd from %ld tiles: "
               "rel L2 %.3g\n",
               fc->model, key, t[0], t[1], fc->bf16 ? " bf16" : "", cx->block_rows,
               cx->winograd_min_tiles, e);
        assert_true(e < fc->bound);
        free(x64);
        free(xt);
        free(x);
        free(t);
        free(ctx);
        free(y);
        free(e64);
        free(ref);
        free(out);
    }
    if (fc->adm) { /* the added conditioning is required */
        float x[2 * 4 * 8 * 8] = {0}, t2[2] = {500, 10}, o[2 * 4 * 8 * 8];
        float *ctx = calloc((size_t)2 * 77 * fc->ctx_dim, sizeof *ctx);
        assert_int_equal(unet_forward(m, cx, x, t2, ctx, NULL, 2, 8, 8, 77, o, &err),
                         GS_ERR_INVALID_ARGUMENT);
        free(ctx);
    }
    compute_free(cx);
    unet_free(m);
    st_close(g);
    st_close(f);
}

static void sd2_out_matches(void **state)
{
    (void)state;
    family_case fc = {
        "sd2/tiny-sd2.safetensors", "sd2/tiny-sd2-golden.safetensors", "out", 8, 16, 16, 0, 0,
        UNET_FAMILY_REL_L2};
    family_matches(&fc);
    fc.bf16 = 1;
    fc.bound = UNET_FAMILY_BF16_REL_L2;
    family_matches(&fc);
}

static void sdxl_eps_matches(void **state)
{
    (void)state;
    family_case fc = {"sdxl/tiny-sdxl.safetensors",
                      "sdxl/tiny-sdxl-golden.safetensors",
                      "eps",
                      8,
                      12,
                      64,
                      1576,
                      0,
                      UNET_FAMILY_REL_L2};
    family_matches(&fc);
    fc.bf16 = 1;
    fc.bound = UNET_FAMILY_BF16_REL_L2;
    family_matches(&fc);
}

/* The SD1 head count on a 64-wide-head model is refused or wrong, never silently
   the same: with 8 heads the tiny SDXL's 64-channel attention splits 8 x 8. */
static void opts_are_checked(void **state)
{
    (void)state;
    gi_error err = {0};
    st_file *f;
    unet *m;
    assert_int_equal(st_open(fixture_path("sdxl/tiny-sdxl.safetensors"), &f, &err), GS_OK);
    assert_int_equal(unet_load(f, "model.diffusion_model.", &(unet_opts){0}, 0, NULL, &m, &err),
                     GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(unet_load(f, "model.diffusion_model.",
                               &(unet_opts){.heads = 8, .head_dim = 64}, 0, NULL, &m, &err),
                     GS_ERR_INVALID_ARGUMENT);
    /* 32 channels at level 0 have no transformer; 64 is not a multiple of 48 */
    assert_int_equal(
        unet_load(f, "model.diffusion_model.", &(unet_opts){.head_dim = 48}, 0, NULL, &m, &err),
        GS_ERR_UNSUPPORTED);
    st_close(f);
}

/* sgm's Fourier features of the six sizes are the part of the golden vector
   after the pooled text (40 wide in the tiny SDXL). */
static void size_features_match(void **state)
{
    (void)state;
    gi_error err = {0};
    st_file *g;
    assert_int_equal(st_open(fixture_path("sdxl/tiny-sdxl-golden.safetensors"), &g, &err), GS_OK);
    double worst = 0;
    for (int j = 0; j < 4; j++) {
        char key[64];
        size_t cnt;
        snprintf(key, sizeof key, "unet.%d.time_ids", j);
        float *ids = golden_in_f32(g, key, &cnt);
        assert_int_equal(cnt, 12);
        snprintf(key, sizeof key, "unet.%d.vector", j);
        float *vec = golden_in_f32(g, key, &cnt);
        assert_int_equal(cnt, 2 * 1576);
        for (int b = 0; b < 2; b++) {
            float feat[1536];
            unet_size_features(ids + 6 * b, feat);
            const float *ref = vec + (size_t)b * 1576 + 40;
            for (int i = 0; i < 1536; i++) {
                double d = fabs((double)feat[i] - ref[i]);
                worst = d > worst ? d : worst;
            }
        }
        free(ids);
        free(vec);
    }
    /* both sides are float32: measured 3.0e-5 (AMD EPYC, glibc, 2026-12-06), all of it
       from 3 of the 128 frequencies (i = 13, 14, 26) where torch's vectorised exp is
       one ulp off the correctly rounded expf; times sizes of 64-96 that moves the
       argument by ~5e-6. Everything else agrees to 1e-7. Swapped sin/cos is off by ~1. */
    printf("size features: max |diff| %.3g\n", worst);
    assert_true(worst < 1e-4);
    st_close(g);
}

/* A 9-channel inpainting UNet (latent, mask, masked image's latent) predicts the
   4 latent channels: the output width is out.2's, not the input's. */
static void inpainting_unet_gives_latent_channels(void **state)
{
    (void)state;
    gi_error err = {0};
    layout_config cfg;
    assert_int_equal(layout_config_for("sd2-small", &cfg, &err), GS_OK);
    cfg.unet_in_channels = 9;
    char path[] = "/tmp/gesso-inpaint-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(random_checkpoint_write(&cfg, "sd2-small-inpainting", "f16", 3, path, &err),
                     GS_OK);
    st_file *f;
    unet *m;
    gi_compute *cx;
    assert_int_equal(st_open(path, &f, &err), GS_OK);
    assert_int_equal(
        unet_load(f, "model.diffusion_model.", &(unet_opts){.head_dim = 64}, 0, NULL, &m, &err),
        GS_OK);
    assert_int_equal(unet_in_channels(m), 9);
    assert_int_equal(unet_out_channels(m), 4);
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    float x[8 * 8 * 9], t[1] = {300}, out[8 * 8 * 4 + 1];
    for (int i = 0; i < 8 * 8 * 9; i++)
        x[i] = (float)((i * 37) % 17) / 8.0f - 1.0f;
    float *ctx = calloc(77 * 16, sizeof *ctx);
    out[8 * 8 * 4] = 12345.0f; /* a canary: nothing is written past 4 channels */
    assert_int_equal(unet_forward(m, cx, x, t, ctx, NULL, 1, 8, 8, 77, out, &err), GS_OK);
    assert_true(out[8 * 8 * 4] == 12345.0f);
    double sum = 0;
    for (int i = 0; i < 8 * 8 * 4; i++)
        sum += fabs(out[i]);
    assert_true(sum > 0 && isfinite(sum));
    free(ctx);
    compute_free(cx);
    unet_free(m);
    st_close(f);
    remove(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(eps_matches),
        cmocka_unit_test(sd2_out_matches),
        cmocka_unit_test(sdxl_eps_matches),
        cmocka_unit_test(opts_are_checked),
        cmocka_unit_test(size_features_match),
        cmocka_unit_test(inpainting_unet_gives_latent_channels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
