/*
 * test_layout - the SD1 layout description against the fixture checkpoint
 * (every name and shape, nothing missing), and the random checkpoint writer
 * (valid safetensors, deterministic for a seed).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "gesso.h"
#include "model/sd1_layout.h"

static void layout_matches_fixture(void **state)
{
    (void)state;
    sd1_config cfg;
    gi_error err = {0};
    assert_int_equal(sd1_config_for("sd15", &cfg, &err), GS_OK);
    cfg.unet_channels = 32; /* the fixture's sizes (tests/fixtures/README.md) */
    cfg.vae_channels = 32;
    cfg.context_dim = 96;
    cfg.text_layers = 3;
    cfg.text_mlp = 384;
    layout_tensor *ts;
    int n;
    assert_int_equal(sd1_layout(&cfg, &ts, &n, &err), GS_OK);
    st_file *f;
    assert_int_equal(st_open(fixture_path("tiny-sd15.safetensors"), &f, &err), GS_OK);
    assert_int_equal((size_t)n, st_count(f));
    for (int i = 0; i < n; i++) {
        const st_tensor *t = st_find(f, ts[i].name);
        if (!t || !st_shape_is(t, ts[i].ndim, ts[i].shape)) {
            fprintf(stderr, "layout tensor %s: %s\n", ts[i].name, t ? "shape differs" : "missing");
            fail();
        }
    }
    st_close(f);
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
        cmocka_unit_test(random_checkpoint_is_valid_and_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
