/* test_clip - the CLIP text encoder against the golden hidden states (both clip-skip forms). */
#include "testutil.h"

/* f32 against OpenAI CLIP's f64 hidden states: measured 3.8-4.6e-7 (AMD EPYC AVX2,
   2026-12-06); the bound allows ~10x. */
#define CLIP_REL_L2 5e-6

#include <stdio.h>
#include <stdlib.h>

#include "compute/compute.h"
#include "model/clip_text.h"
#include "model/clip_text_internal.h"

/* The file's bytes in memory (for st_open_memory). */
static void *file_bytes(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    *size = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    void *b = malloc(*size);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, *size, fp), *size);
    fclose(fp);
    return b;
}

/* Both clip-skip forms of every golden prompt, with the checkpoint opened as a
   file (the token table read through a mapping of its own, in the file's f16,
   used after the file is closed) and from memory (no file to map: the table
   copied to f32). */
static void text_hidden_states_match(void **state)
{
    (void)state;
    gi_error err = {0};
    gi_compute *cx;
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    size_t size;
    void *bytes = file_bytes(fixture_path("tiny-sd15.safetensors"), &size);
    for (int mapped = 1; mapped >= 0; mapped--) {
        st_file *f;
        if (mapped)
            assert_int_equal(st_open(fixture_path("tiny-sd15.safetensors"), &f, &err), GS_OK);
        else
            assert_int_equal(st_open_memory(bytes, size, &f, &err), GS_OK);
        clip_text *m;
        assert_int_equal(
            clip_text_load(f, "cond_stage_model.transformer.text_model.", 12, 0, NULL, &m, &err),
            GS_OK);
        st_close(f);
        assert_int_equal(m->store.n_maps, mapped);
        assert_int_equal(m->tok_emb_dtype, mapped ? ST_F16 : ST_F32);
        int w = clip_text_width(m);
        assert_int_equal(w, 96);
        float *out = malloc(77 * (size_t)w * sizeof *out);
        for (int i = 0; i < 4; i++) {
            char key[64];
            snprintf(key, sizeof key, "text.%d.ids", i);
            size_t n;
            int32_t ids[77];
            golden_ids77(key, ids);
            for (int skip = 1; skip <= 2; skip++) {
                assert_int_equal(clip_text_encode(m, cx, ids, 1, skip, out, &err), GS_OK);
                snprintf(key, sizeof key, "text.%d.%s", i, skip == 1 ? "hidden" : "penultimate");
                double *ref = golden_f64(key, &n);
                assert_int_equal(n, 77 * (size_t)w);
                double e = rel_l2_f32_f64(out, ref, n);
                printf("%-20s %s rel L2 %.3g\n", key, mapped ? "mapped" : "copied", e);
                assert_true(e < CLIP_REL_L2);
                free(ref);
            }
        }
        free(out);
        clip_text_free(m);
    }
    free(bytes);
    compute_free(cx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(text_hidden_states_match)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
