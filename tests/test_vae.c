/* test_vae - VAE decode and encode against the golden tensors (NCHW goldens, NHWC engine). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "compute/compute.h"
#include "model/vae.h"

/* f32 against diffusers' f64: measured decode 2.1e-6, encode mean 1.4e-6 and logvar
   9.6e-7 (AMD EPYC AVX2, 2026-12-06; long conv sums); the bound allows ~10x. */
#define VAE_REL_L2 2e-5

/* Tiled against whole decode, in image units ([-1,1] range; this random VAE's
   whole decode has mean |x| 0.28, max 3.3). Tiles share group norm statistics
   recorded on the head output subsampled to fit one tile: on an 8x12 latent
   that is 2x4..4x6 latent pixels, a poor estimate, and margins are 1-2 latent
   pixels. Measured: mean |diff| 0.32-0.52, max 4.1-7.3 for tiles 4, 5, 7, 9.
   The bounds leave ~1.5x headroom; a misplaced or missing tile, or NaN, fails
   them. (With exact statistics the same tiles differ by mean 0.015 at tile 9.) */
#define TILED_MAX_DIFF 10.0
#define TILED_MEAN_DIFF 0.75

static vae *m;
static gi_compute *cx;
static st_file *f;

static int setup(void **state)
{
    (void)state;
    gi_error err = {0};
    if (st_open(fixture_path("tiny-sd15.safetensors"), &f, &err) != GS_OK ||
        vae_load(f, "first_stage_model.", 0, NULL, &m, &err) != GS_OK ||
        compute_create(2, &cx, &err) != GS_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    vae_free(m);
    compute_free(cx);
    st_close(f);
    return 0;
}

static float *nhwc_f32(const char *key, int n, int c, int h, int w)
{
    size_t cnt;
    double *src = golden_f64(key, &cnt);
    assert_int_equal(cnt, (size_t)n * c * h * w);
    double *t = malloc(cnt * sizeof *t);
    nchw_to_nhwc_f64(src, t, n, c, h, w);
    float *out = malloc(cnt * sizeof *out);
    for (size_t i = 0; i < cnt; i++)
        out[i] = (float)t[i];
    free(src);
    free(t);
    return out;
}

static double *nhwc_f64(const char *key, int n, int c, int h, int w)
{
    size_t cnt;
    double *src = golden_f64(key, &cnt);
    double *t = malloc(cnt * sizeof *t);
    nchw_to_nhwc_f64(src, t, n, c, h, w);
    free(src);
    return t;
}

static void decode_matches(void **state)
{
    (void)state;
    gi_error err = {0};
    float *lat = nhwc_f32("vae.decode.latent", 1, 4, 8, 12);
    double *ref = nhwc_f64("vae.decode.image", 1, 3, 64, 96);
    float *img = malloc(64 * 96 * 3 * sizeof *img);
    assert_int_equal(vae_decode(m, cx, lat, 1, 8, 12, img, &err), GS_OK);
    double e = rel_l2_f32_f64(img, ref, 64 * 96 * 3);
    printf("vae.decode.image rel L2 %.3g\n", e);
    assert_true(e < VAE_REL_L2);
    free(lat);
    free(ref);
    free(img);
}

static void encode_matches(void **state)
{
    (void)state;
    gi_error err = {0};
    float *img = nhwc_f32("vae.encode.image", 1, 3, 64, 96);
    double *rm = nhwc_f64("vae.encode.mean", 1, 4, 8, 12);
    double *rl = nhwc_f64("vae.encode.logvar", 1, 4, 8, 12);
    float mean[8 * 12 * 4], logvar[8 * 12 * 4];
    assert_int_equal(vae_encode(m, cx, img, 1, 64, 96, mean, logvar, &err), GS_OK);
    double em = rel_l2_f32_f64(mean, rm, 8 * 12 * 4), el = rel_l2_f32_f64(logvar, rl, 8 * 12 * 4);
    printf("vae.encode.mean rel L2 %.3g, logvar rel L2 %.3g\n", em, el);
    assert_true(em < VAE_REL_L2);
    assert_true(el < VAE_REL_L2);
    /* sizes the encoder cannot take are refused */
    assert_int_equal(vae_encode(m, cx, img, 1, 60, 96, mean, NULL, &err), GS_ERR_INVALID_ARGUMENT);
    free(img);
    free(rm);
    free(rl);
}

/* Max and mean |a - b| over n values. */
static void abs_diff(const float *a, const float *b, size_t n, double *max, double *mean)
{
    *max = 0;
    *mean = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        *max = d > *max ? d : *max;
        *mean += d;
    }
    *mean /= (double)n;
}

static void tiled_decode_matches_whole(void **state)
{
    (void)state;
    gi_error err = {0};
    const int h = 8, w = 12;
    const size_t n = 64 * 96 * 3;
    float *lat = nhwc_f32("vae.decode.latent", 1, 4, h, w);
    float *whole = malloc(n * sizeof *whole), *tiled = malloc(n * sizeof *tiled);
    assert_int_equal(vae_decode(m, cx, lat, 1, h, w, whole, &err), GS_OK);
    /* a tile that covers the latent is the whole decode, bit for bit */
    for (size_t k = 0; k < n; k++)
        tiled[k] = NAN;
    assert_int_equal(vae_decode_tiled(m, cx, lat, 1, h, w, 12, tiled, &err), GS_OK);
    assert_memory_equal(whole, tiled, n * sizeof *whole);
    double amax = 0, amean = 0;
    for (size_t i = 0; i < n; i++) {
        amax = fabs(whole[i]) > amax ? fabs(whole[i]) : amax;
        amean += fabs(whole[i]) / (double)n;
    }
    printf("whole decode: max |x| %.3f, mean |x| %.3f\n", amax, amean);
    /* tile sizes that divide neither side, one that divides both, and a strip */
    static const int tiles[] = {5, 7, 4, 9};
    for (size_t i = 0; i < sizeof tiles / sizeof tiles[0]; i++) {
        /* a fresh buffer of NaN each run: a pixel no tile writes fails the bounds
           instead of keeping the previous run's (correct) value */
        for (size_t k = 0; k < n; k++)
            tiled[k] = NAN;
        assert_int_equal(vae_decode_tiled(m, cx, lat, 1, h, w, tiles[i], tiled, &err), GS_OK);
        double max, mean;
        abs_diff(whole, tiled, n, &max, &mean);
        printf("tile %d latent px: max |diff| %.4f, mean %.5f (image units, [-1,1])\n", tiles[i],
               max, mean);
        assert_true(max < TILED_MAX_DIFF); /* NaN fails too */
        assert_true(mean < TILED_MEAN_DIFF);
    }
    assert_int_equal(vae_decode_tiled(m, cx, lat, 1, h, w, -1, tiled, &err),
                     GS_ERR_INVALID_ARGUMENT);
    free(lat);
    free(whole);
    free(tiled);
}

/* ---- the SD 2.x and SDXL VAEs (their own fixtures; the mid-attention q/k/v/proj_out
   stored as 1x1 convs [C,C,1,1]) ---- */

/* Measured (AMD EPYC AVX2, 2026-12-06), default / all-Winograd: sd2 decode 1.2e-6 /
   1.0e-6, encode mean 9.5e-7 / 8.8e-7, logvar 8.0e-7 / 7.5e-7; sdxl decode 1.4e-6 /
   1.2e-6, encode mean 9.1e-7 / 8.9e-7, logvar 8.7e-7 / 8.3e-7. The bound is SD1's. */
#define VAE_FAMILY_REL_L2 2e-5

static double *family_nhwc(st_file *g, const char *key, int n, int c, int h, int w)
{
    const st_tensor *t = st_find(g, key);
    assert_non_null(t);
    assert_int_equal((size_t)t->numel, (size_t)n * c * h * w);
    double *src = malloc((size_t)t->numel * sizeof *src),
           *dst = malloc((size_t)t->numel * sizeof *dst);
    gi_error err = {0};
    assert_int_equal(st_to_f64(t, src, &err), GS_OK);
    nchw_to_nhwc_f64(src, dst, n, c, h, w);
    free(src);
    return dst;
}

static float *to_f32(const double *d, size_t n)
{
    float *out = malloc(n * sizeof *out);
    for (size_t i = 0; i < n; i++)
        out[i] = (float)d[i];
    return out;
}

static void family_matches(const char *model, const char *golden_name)
{
    gi_error err = {0};
    st_file *mf, *g;
    vae *v;
    gi_compute *c;
    assert_int_equal(st_open(fixture_path(model), &mf, &err), GS_OK);
    assert_int_equal(st_open(fixture_path(golden_name), &g, &err), GS_OK);
    assert_int_equal(vae_load(mf, "first_stage_model.", 0, NULL, &v, &err), GS_OK);
    assert_int_equal(compute_create(2, &c, &err), GS_OK);
    double *lat64 = family_nhwc(g, "vae.decode.latent", 1, 4, 8, 12);
    double *ref = family_nhwc(g, "vae.decode.image", 1, 3, 64, 96);
    double *img64 = family_nhwc(g, "vae.encode.image", 1, 3, 64, 96);
    double *rm = family_nhwc(g, "vae.encode.mean", 1, 4, 8, 12);
    double *rl = family_nhwc(g, "vae.encode.logvar", 1, 4, 8, 12);
    float *lat = to_f32(lat64, 8 * 12 * 4), *img_in = to_f32(img64, 64 * 96 * 3);
    float *img = malloc(64 * 96 * 3 * sizeof *img);
    float mean[8 * 12 * 4], logvar[8 * 12 * 4];
    /* the second round runs every 3x3 convolution by Winograd, as full-size inputs are */
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            c->winograd_min_tiles = 1;
        assert_int_equal(vae_decode(v, c, lat, 1, 8, 12, img, &err), GS_OK);
        double ed = rel_l2_f32_f64(img, ref, 64 * 96 * 3);
        assert_int_equal(vae_encode(v, c, img_in, 1, 64, 96, mean, logvar, &err), GS_OK);
        double em = rel_l2_f32_f64(mean, rm, 8 * 12 * 4),
               el = rel_l2_f32_f64(logvar, rl, 8 * 12 * 4);
        printf("%s (winograd from %ld tiles): decode rel L2 %.3g, encode mean %.3g, logvar %.3g\n",
               model, c->winograd_min_tiles, ed, em, el);
        assert_true(ed < VAE_FAMILY_REL_L2);
        assert_true(em < VAE_FAMILY_REL_L2);
        assert_true(el < VAE_FAMILY_REL_L2);
    }
    free(lat64);
    free(ref);
    free(img64);
    free(rm);
    free(rl);
    free(lat);
    free(img_in);
    free(img);
    compute_free(c);
    vae_free(v);
    st_close(g);
    st_close(mf);
}

static void sd2_matches(void **state)
{
    (void)state;
    family_matches("sd2/tiny-sd2.safetensors", "sd2/tiny-sd2-golden.safetensors");
}

static void sdxl_matches(void **state)
{
    (void)state;
    family_matches("sdxl/tiny-sdxl.safetensors", "sdxl/tiny-sdxl-golden.safetensors");
}

/* A bf16 VAE as a bf16 engine runs it (bf16 products; emulated exactly where
   oneDNN has no bf16 matmul), then with vae_set_f32_activations: the same
   bf16 weights on f32 activations, as the automatic precision keeps it. The
   decode and the encode come closer to the f32 reference, and the engine's
   switches are as they were after each call. */
static void f32_activations_take_bf16_rounding_out(void **state)
{
    (void)state;
    gi_error err = {0};
    vae *v = NULL;
    assert_int_equal(vae_load(f, "first_stage_model.", WL_BF16, NULL, &v, &err), GS_OK);
    if (!gemm_bf16_native(cx->bf16))
        gemm_bf16_emulate_native(cx->bf16);
    cx->attn_bf16 = cx->winograd_bf16 = 1;
    float *lat = nhwc_f32("vae.decode.latent", 1, 4, 8, 12);
    double *ref = nhwc_f64("vae.decode.image", 1, 3, 64, 96);
    float *pix = nhwc_f32("vae.encode.image", 1, 3, 64, 96);
    double *rm = nhwc_f64("vae.encode.mean", 1, 4, 8, 12);
    float *img = malloc(64 * 96 * 3 * sizeof *img), mean[8 * 12 * 4];
    double dec[2], enc[2];
    for (int wide = 0; wide < 2; wide++) {
        vae_set_f32_activations(v, wide);
        assert_int_equal(vae_decode(v, cx, lat, 1, 8, 12, img, &err), GS_OK);
        assert_int_equal(vae_encode(v, cx, pix, 1, 64, 96, mean, NULL, &err), GS_OK);
        assert_true(cx->attn_bf16 && cx->winograd_bf16 && !cx->widen_bf16);
        dec[wide] = rel_l2_f32_f64(img, ref, 64 * 96 * 3);
        enc[wide] = rel_l2_f32_f64(mean, rm, 8 * 12 * 4);
        printf("bf16 VAE, %s activations: decode rel L2 %.3g, encode mean %.3g\n",
               wide ? "f32" : "bf16", dec[wide], enc[wide]);
    }
    /* bf16 weights' rounding alone, against it with the activations': measured
       0.56x (decode) and 0.44x (encode) */
    assert_true(dec[1] < 0.75 * dec[0]);
    assert_true(enc[1] < 0.75 * enc[0]);
    cx->attn_bf16 = cx->winograd_bf16 = 0;
    vae_free(v);
    free(lat);
    free(ref);
    free(pix);
    free(rm);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(decode_matches),
                                       cmocka_unit_test(encode_matches),
                                       cmocka_unit_test(tiled_decode_matches_whole),
                                       cmocka_unit_test(sd2_matches),
                                       cmocka_unit_test(sdxl_matches),
                                       cmocka_unit_test(f32_activations_take_bf16_rounding_out)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
