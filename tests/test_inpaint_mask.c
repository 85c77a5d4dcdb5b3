/*
 * test_inpaint_mask - the pixel steps of inpainting against the A1111 fixture
 * (tests/fixtures/inpaint/README.md), exact: the mask blur, crop, overlay,
 * fill and latent mask of every recipe; masks of other formats; the outpaint
 * canvas. No model runs here (test_inpaint runs the recipes), so it is quick.
 */
#include "testutil.h"

#include "image/mask.h"
#include "job/base64.h"
#include "job/job_spec.h"
#include "pipeline/inpaint.h"
#include "inpaint_fixture.h"

static int setup(void **state)
{
    (void)state;
    return fixture_setup(0);
}

static void pixel_steps_match_goldens(void **state)
{
    (void)state;
    for (int i = 0; i < NREC; i++) {
        gs_params p;
        gs_image *init, *mask;
        params_of(i, &p, &init, &mask);
        inpaint_plan pl;
        gi_error err = {0};
        assert_int_equal(inpaint_prepare(&p, &pl, &err), GS_OK);
        assert_true(pl.active);
        const char *nm = rs[i].name;
        assert_u8_exact(nm, "mask_blurred", pl.blurred, (size_t)pl.mw * pl.mh);
        assert_u8_exact(nm, "image_mask", pl.image_mask, (size_t)pl.w * pl.h);
        assert_u8_exact(nm, "overlay_rgba", pl.overlay, (size_t)pl.out_w * pl.out_h * 4);
        assert_u8_exact(nm, "init_processed", pl.vae_in->pixels, (size_t)pl.w * pl.h * 3);
        /* the latent mask: exact (k/255 in float32, rounded) */
        size_t nl = (size_t)pl.lw * pl.lh, cnt;
        char key[128];
        FORMAT_OR_FAIL(key, "%s.latent_mask", nm);
        double *lm = golden_f64(key, &cnt);
        assert_int_equal(cnt, nl);
        for (size_t k = 0; k < nl; k++) {
            assert_true(pl.nmask[k] == (float)lm[k]);
            assert_true(pl.keep[k] == 1.0f - (float)lm[k]);
        }
        free(lm);
        float *unr = malloc(nl * sizeof *unr);
        assert_int_equal(mask_latent(pl.image_mask, pl.w, pl.h, pl.lw, pl.lh, 0, unr, &err), GS_OK);
        FORMAT_OR_FAIL(key, "%s.latent_mask_unrounded", nm);
        lm = golden_f64(key, &cnt);
        for (size_t k = 0; k < nl; k++)
            assert_true(fabs(unr[k] - lm[k]) < 1e-7); /* float32 k/255 against its f64 copy */
        free(lm);
        free(unr);
        if (ex[i].full_res) {
            FORMAT_OR_FAIL(key, "%s.crop_region", nm);
            double *c = golden_f64(key, &cnt);
            for (int k = 0; k < 4; k++)
                assert_int_equal(pl.crop[k], (int)c[k]);
            free(c);
            FORMAT_OR_FAIL(key, "%s.paste_to", nm);
            c = golden_f64(key, &cnt);
            for (int k = 0; k < 4; k++)
                assert_int_equal(pl.paste_to[k], (int)c[k]);
            free(c);
        }
        printf("%-24s mask, crop, overlay, init, latent mask: exact\n", nm);
        inpaint_plan_free(&pl);
        gs_image_free(init);
        gs_image_free(mask);
    }
}

/* Other formats of the same mask: an RGBA mask whose alpha is the mask (colour
   channels noise) gives the same plan as the gray PNG; a JPEG of it (quality
   90, levels off by a few near edges) the same latent mask. */
static void mask_formats(void **state)
{
    (void)state;
    gs_params p;
    gs_image *init, *mask;
    params_of(0, &p, &init, &mask);
    gi_error err = {0};
    inpaint_plan ref, pl;
    assert_int_equal(inpaint_prepare(&p, &ref, &err), GS_OK);
    size_t n = (size_t)64 * 64;

    gs_image *rgba = solid(64, 64, 4, 0);
    for (size_t i = 0; i < n; i++) {
        rgba->pixels[i * 4] = (uint8_t)(i * 37);
        rgba->pixels[i * 4 + 1] = (uint8_t)(i * 11);
        rgba->pixels[i * 4 + 2] = (uint8_t)(i * 5);
        rgba->pixels[i * 4 + 3] = mask->pixels[i * 3];
    }
    p.mask = rgba;
    assert_int_equal(inpaint_prepare(&p, &pl, &err), GS_OK);
    assert_memory_equal(pl.blurred, ref.blurred, n);
    assert_memory_equal(pl.nmask, ref.nmask, 64 * sizeof(float));
    inpaint_plan_free(&pl);

    /* the same RGBA mask as a PNG file keeps its alpha through the mask loaders
       (CLI --mask, the job spec's mask); the plain loader drops it, so the
       colour noise would be the mask */
    uint8_t *png = NULL;
    size_t png_size = 0;
    char emsg[256];
    assert_int_equal(gs_image_encode_png(rgba, NULL, &png, &png_size, emsg, sizeof emsg), GS_OK);
    gs_image *ra = NULL, *rgb = NULL;
    assert_int_equal(gs_image_load_memory_alpha(png, png_size, &ra, emsg, sizeof emsg), GS_OK);
    assert_int_equal(gs_image_load_memory(png, png_size, &rgb, emsg, sizeof emsg), GS_OK);
    assert_int_equal(ra->channels, 4);
    assert_int_equal(rgb->channels, 3);
    p.mask = ra;
    assert_int_equal(inpaint_prepare(&p, &pl, &err), GS_OK);
    assert_memory_equal(pl.blurred, ref.blurred, n);
    inpaint_plan_free(&pl);
    job_spec js;
    assert_int_equal(job_spec_init(&js), 0);
    js.mask.base64 = base64_encode(png, png_size);
    gs_params jp;
    gs_params_init(&jp);
    gs_image *jmask = NULL;
    assert_int_equal(job_spec_mask_to_params(&js, &jp, &jmask), 0);
    assert_int_equal(jmask->channels, 4);
    assert_memory_equal(jmask->pixels, rgba->pixels, n * 4);
    gs_image_free(jmask);
    job_spec_clear(&js);
    gs_image_free(ra);
    gs_image_free(rgb);
    free(png);

    unsigned long size = 0;
    uint8_t *jpg = jpeg_of(mask, &size);
    gs_image *jm = NULL;
    char msg[256];
    assert_int_equal(gs_image_load_memory(jpg, size, &jm, msg, sizeof msg), GS_OK);
    p.mask = jm;
    assert_int_equal(inpaint_prepare(&p, &pl, &err), GS_OK);
    int maxd = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)pl.image_mask[i] - (int)ref.image_mask[i]);
        maxd = d > maxd ? d : maxd;
    }
    printf("JPEG mask: blurred mask within %d levels of the PNG's\n", maxd);
    assert_true(maxd <= 4); /* measured 2 */
    assert_memory_equal(pl.nmask, ref.nmask, 64 * sizeof(float));
    inpaint_plan_free(&pl);
    free(jpg);
    gs_image_free(jm);
    free_solid(rgba);
    inpaint_plan_free(&ref);
    gs_image_free(init);
    gs_image_free(mask);
}

/* gs_outpaint_canvas rebuilds the fixture's outpaint_right canvas and mask from
   the 64x64 original (its left part), and pads every side as asked. */
static void outpaint_canvas_edges(void **state)
{
    (void)state;
    gs_image *want = load("inpaint/init-outpaint_right.png");
    gs_image *want_mask = load("inpaint/mask-outpaint_right.png");
    gs_image *orig = solid(64, 64, 3, 0);
    for (int y = 0; y < 64; y++)
        memcpy(orig->pixels + (size_t)y * 64 * 3, want->pixels + (size_t)y * 96 * 3, 64 * 3);
    gs_image *canvas, *m;
    assert_int_equal(gs_outpaint_canvas(orig, 0, 32, 0, 0, 4, &canvas, &m), GS_OK);
    assert_int_equal(canvas->width, 96);
    assert_int_equal(canvas->height, 64);
    assert_memory_equal(canvas->pixels, want->pixels, (size_t)96 * 64 * 3);
    assert_memory_equal(m->pixels, want_mask->pixels, (size_t)96 * 64 * 3);
    gs_image_free(canvas);
    gs_image_free(m);

    assert_int_equal(gs_outpaint_canvas(orig, 8, 16, 24, 32, 2, &canvas, &m), GS_OK);
    assert_int_equal(canvas->width, 88);
    assert_int_equal(canvas->height, 120);
    for (int y = 0; y < 120; y++)
        for (int x = 0; x < 88; x++) {
            int inside = x >= 8 && x < 72 && y >= 24 && y < 88;
            int kept = x >= 10 && x < 70 && y >= 26 && y < 86;
            const uint8_t *c = canvas->pixels + ((size_t)y * 88 + x) * 3;
            if (!inside)
                assert_int_equal(c[0], 127);
            else
                assert_memory_equal(c, orig->pixels + ((size_t)(y - 24) * 64 + x - 8) * 3, 3);
            assert_int_equal(m->pixels[((size_t)y * 88 + x) * 3], kept ? 0 : 255);
        }
    gs_image_free(canvas);
    gs_image_free(m);
    assert_int_equal(gs_outpaint_canvas(orig, 0, 0, 0, 0, 4, &canvas, &m), GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(gs_outpaint_canvas(orig, -1, 8, 0, 0, 4, &canvas, &m),
                     GS_ERR_INVALID_ARGUMENT);
    free_solid(orig);
    gs_image_free(want);
    gs_image_free(want_mask);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pixel_steps_match_goldens),
        cmocka_unit_test(mask_formats),
        cmocka_unit_test(outpaint_canvas_edges),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
