/*
 * test_layout - the layout descriptions of SD1, SD2 and SDXL against the
 * fixture checkpoints (every name and shape, nothing missing), and the random
 * checkpoint writer (valid safetensors, deterministic for a seed).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "gesso.h"
#include "model/ckpt_layout.h"

/* Every tensor of cfg is in the fixture with its shape, and the counts agree. */
static void assert_layout_is(const layout_config *cfg, const char *fixture)
{
    gi_error err = {0};
    layout_tensor *ts;
    int n;
    assert_int_equal(layout_build(cfg, &ts, &n, &err), GS_OK);
    st_file *f;
    assert_int_equal(st_open(fixture_path(fixture), &f, &err), GS_OK);
    for (int i = 0; i < n; i++) {
        const st_tensor *t = st_find(f, ts[i].name);
        if (!t || !st_shape_is(t, ts[i].ndim, ts[i].shape)) {
            fprintf(stderr, "%s: layout tensor %s: %s\n", fixture, ts[i].name,
                    t ? "shape differs" : "missing");
            fail();
        }
    }
    assert_int_equal((size_t)n, st_count(f));
    st_close(f);
    gi_free(ts);
}

static void layout_matches_fixture(void **state)
{
    (void)state;
    layout_config cfg;
    gi_error err = {0};
    assert_int_equal(layout_config_for("sd15", &cfg, &err), GS_OK);
    cfg.unet_channels = 32; /* the fixture's sizes (tests/fixtures/README.md) */
    cfg.vae_channels = 32;
    cfg.context_dim = cfg.clip_width = 96;
    cfg.clip_layers = 3;
    cfg.clip_mlp = 384;
    assert_layout_is(&cfg, "tiny-sd15.safetensors");
}

/* The -small variants are sized like the reference fixtures of their families,
   so the fixtures check the names and shape ratios of the full-size layouts. */
static void family_layouts_match_fixtures(void **state)
{
    (void)state;
    layout_config cfg;
    gi_error err = {0};
    assert_int_equal(layout_config_for("sd2-small", &cfg, &err), GS_OK);
    assert_layout_is(&cfg, "sd2/tiny-sd2.safetensors");
    assert_int_equal(layout_config_for("sdxl-small", &cfg, &err), GS_OK);
    assert_layout_is(&cfg, "sdxl/tiny-sdxl.safetensors");
    /* the full sizes: SD 2.1 and SDXL base */
    assert_int_equal(layout_config_for("sd2", &cfg, &err), GS_OK);
    assert_int_equal(cfg.context_dim, 1024);
    assert_int_equal(cfg.oc_layers, 24);
    assert_int_equal(layout_config_for("sdxl", &cfg, &err), GS_OK);
    assert_int_equal(cfg.context_dim, 2048);
    assert_int_equal(cfg.unet_adm, 2816);
    assert_int_equal(cfg.unet_depth[2], 10);
    layout_tensor *ts;
    int n;
    assert_int_equal(layout_build(&cfg, &ts, &n, &err), GS_OK);
    int64_t params = 0;
    for (int i = 0; i < n; i++) {
        int64_t k = 1;
        for (int d = 0; d < ts[i].ndim; d++)
            k *= ts[i].shape[d];
        if (strncmp(ts[i].name, "model.diffusion_model.", 22) == 0)
            params += k;
    }
    /* SDXL base's UNet has 2,567,463,684 parameters */
    assert_int_equal(params, 2567463684LL);
    gi_free(ts);
}

static void random_checkpoint_is_valid_and_deterministic(void **state)
{
    (void)state;
    char a[] = "/tmp/gesso-rand-a-XXXXXX", b[] = "/tmp/gesso-rand-b-XXXXXX";
    int fa = mkstemp(a), fb = mkstemp(b);
    assert_true(fa >= 0 && fb >= 0);
    char msg[256];
    assert_int_equal(gs_checkpoint_write_random("sd15-small", "f16", 7, a, msg, sizeof msg), GS_OK);
    assert_int_equal(gs_checkpoint_write_random("sd15-small", "f16", 7, b, msg, sizeof msg), GS_OK);
    size_t na, nb;
    FILE *x = fopen(a, "rb"), *y = fopen(b, "rb");
    fseek(x, 0, SEEK_END);
    fseek(y, 0, SEEK_END);
    na = (size_t)ftell(x);
    nb = (size_t)ftell(y);
    assert_int_equal(na, nb);
    rewind(x);
    rewind(y);
    char *ba = malloc(na), *bb = malloc(nb);
    assert_int_equal(fread(ba, 1, na, x), na);
    assert_int_equal(fread(bb, 1, nb, y), nb);
    assert_memory_equal(ba, bb, na);
    fclose(x);
    fclose(y);
    free(ba);
    free(bb);

    st_file *f;
    gi_error err = {0};
    assert_int_equal(st_open(a, &f, &err), GS_OK);
    const st_tensor *t = st_find(f, "model.diffusion_model.input_blocks.0.0.weight");
    assert_non_null(t);
    assert_int_equal(t->shape[0], 64);
    assert_string_equal(st_metadata(f, "arch"), "sd15-small");
    st_close(f);

    /* a different seed gives different weights; bad arguments are refused */
    assert_int_equal(gs_checkpoint_write_random("sd15-small", "bf16", 8, b, msg, sizeof msg),
                     GS_OK);
    /* the other families, with the fixtures' ModelSpec metadata */
    assert_int_equal(gs_checkpoint_write_random("sdxl-small", "f16", 1, b, msg, sizeof msg), GS_OK);
    assert_int_equal(st_open(b, &f, &err), GS_OK);
    assert_string_equal(st_metadata(f, "modelspec.architecture"), "stable-diffusion-xl-v1-base");
    assert_string_equal(st_metadata(f, "modelspec.prediction_type"), "epsilon");
    assert_non_null(st_find(f, "model.diffusion_model.label_emb.0.0.weight"));
    st_close(f);
    assert_int_equal(gs_checkpoint_write_random("sd2-small", "f16", 1, b, msg, sizeof msg), GS_OK);
    assert_int_equal(st_open(b, &f, &err), GS_OK);
    assert_string_equal(st_metadata(f, "modelspec.architecture"), "stable-diffusion-v2-512");
    assert_non_null(st_find(f, "cond_stage_model.model.text_projection"));
    st_close(f);
    assert_int_equal(gs_checkpoint_write_random("sdxx", "f16", 1, b, msg, sizeof msg),
                     GS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "sdxx"));
    assert_int_equal(gs_checkpoint_write_random("sd15", "f8", 1, b, msg, sizeof msg),
                     GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        gs_checkpoint_write_random("sd15-small", "f16", 1, "/nonexistent/x", msg, sizeof msg),
        GS_ERR_IO);
    remove(a);
    remove(b);
    close(fa);
    close(fb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(layout_matches_fixture),
        cmocka_unit_test(family_layouts_match_fixtures),
        cmocka_unit_test(random_checkpoint_is_valid_and_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
