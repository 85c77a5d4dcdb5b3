/*
 * test_lora - LoRA files (kohya, PEFT, LoCon) folded into tiny-sd15 against
 * the goldens of tests/fixtures/lora (A1111's semantics, float64): merged
 * weights, text hidden states, a UNet eps, every pipe.* recipe end to end;
 * the key mapping (SD1 and SDXL names), the prompt tags, switching sets
 * without reloading (base restored bit for bit), and hostile files refused
 * with the key named and the model unchanged.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gesso.h"
#include "common/alloc.h"
#include "model/lora_apply.h"
#include "compute/gemm_bf16.h"
#include "compute/half.h"
#include "model/lora_keys.h"
#include "pipeline/lora_select.h"
#include "pipeline/engine.h"
#include "text/lora_tags.h"

/* f32 merge against the f64 goldens: measured 2.8e-8..3.9e-8 rel L2 (AMD EPYC AVX2,
   2026-12-06); each weight is a few rounded sums, so anything past 1e-6 is a wrong delta. */
#define MERGED_REL_L2 1e-6
/* text encoder / UNet through merged weights: measured 4.6e-7..5.1e-7 (text) and 2.3e-7
   (eps), as without LoRA; the same bound as test_clip and test_unet. */
#define NET_REL_L2 5e-6
/* bf16 resident weights against the f64 goldens: measured 1.63e-3..1.68e-3 rel L2
   (bf16_fold_matches_goldens, any CPU: rounding to bf16's 8-bit mantissa, ~2^-9 of each
   value); a wrong delta is > 1e-2. The engine-level bf16 test (bf16 CPUs only) uses the
   same bound. */
#define BF16_MERGED_REL_L2 2.5e-3
/* f16 weights: 11-bit mantissas, an eighth of bf16's rounding (measured
   2.02e-4..2.11e-4); a wrong delta is still > 1e-2. */
#define F16_MERGED_REL_L2 4e-4

static gs_engine *eng;
static gs_model *model;
static st_file *gold;
static char lora_dir[512];

static const char *lora_path(const char *name)
{
    static char buf[600];
    snprintf(buf, sizeof buf, "%s/%s", lora_dir, name);
    return buf;
}

static int setup(void **state)
{
    (void)state;
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = 2;
    eo.precision = GS_PRECISION_F32;
    if (gs_engine_create(&eo, &eng) != GS_OK)
        return -1;
    if (gs_model_load(eng, fixture_path("tiny-sd15.safetensors"), &model) != GS_OK)
        return -1;
    snprintf(lora_dir, sizeof lora_dir, "%s", fixture_path("lora"));
    gi_error err = {0};
    return st_open(fixture_path("lora/lora-golden.safetensors"), &gold, &err) == GS_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    st_close(gold);
    gs_model_free(model);
    gs_engine_free(eng);
    return 0;
}

static double *gold_f64(const char *name, size_t *n)
{
    const st_tensor *t = st_find(gold, name);
    if (!t)
        fprintf(stderr, "golden '%s' missing\n", name);
    assert_non_null(t);
    double *d = malloc((size_t)t->numel * sizeof *d);
    assert_int_equal(st_to_f64(t, d, NULL), GS_OK);
    if (n)
        *n = (size_t)t->numel;
    return d;
}

/* FNV-1a over every resident weight of the model: equal hashes, equal bits. */
static uint64_t weights_hash(const gs_model *m)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < m->index.n; i++) {
        const unsigned char *p = m->index.e[i].data;
        for (size_t k = 0; k < m->index.e[i].nbytes; k++)
            h = (h ^ p[k]) * 1099511628211ull;
    }
    return h;
}

/* Folds files (with multipliers te/unet each) into model through the engine's own
   path for explicit lists; returns the status. */
static gs_status fold(const gs_lora *l, int n, int strict, lora_request *lr, gi_error *err)
{
    gs_params p;
    gs_params_init(&p);
    p.loras = l;
    p.n_loras = n;
    p.lora_strict = strict;
    p.lora_dir = lora_dir;
    return lora_select(model, &p, lr, err);
}

static void fold_ok(const gs_lora *l, int n)
{
    lora_request lr;
    gi_error err = {0};
    gs_status st = fold(l, n, 1, &lr, &err);
    if (st != GS_OK)
        fprintf(stderr, "fold: %s\n", err.msg);
    assert_int_equal(st, GS_OK);
    lora_request_free(&lr);
}

/* Resident weight name vs golden key (f64, [out, in(, k, k)]): rel L2 after putting the
   golden into the kernels' [out, k, k, in] order. */
static double merged_error(const char *golden_key, const char *name)
{
    const weight_entry *e = weight_log_find(&model->index, name);
    assert_non_null(e);
    assert_int_equal(e->dtype, ST_F32);
    size_t n;
    double *ref = gold_f64(golden_key, &n);
    const st_tensor *t = st_find(gold, golden_key);
    double *kern = malloc(n * sizeof *kern);
    int out = (int)t->shape[0], in = (int)t->shape[1], k = t->ndim == 4 ? (int)t->shape[2] : 1;
    for (int o = 0; o < out; o++)
        for (int c = 0; c < in; c++)
            for (int y = 0; y < k; y++)
                for (int x = 0; x < k; x++)
                    kern[(((size_t)o * k + y) * k + x) * in + c] =
                        ref[(((size_t)o * in + c) * k + y) * k + x];
    assert_int_equal(e->nbytes, n * sizeof(float));
    void *copy;
    double err = rel_l2_f32_f64(weight_entry_plain(e, &copy), kern, n);
    gi_aligned_free(copy);
    free(ref);
    free(kern);
    return err;
}

/* Every golden merged.<tag>.<name> against the resident weight. */
static void check_merged(const char *tag, double bound)
{
    char prefix[128];
    snprintf(prefix, sizeof prefix, "merged.%s.", tag);
    int found = 0;
    for (size_t i = 0; i < st_count(gold); i++) {
        const char *key = st_at(gold, i)->name;
        if (strncmp(key, prefix, strlen(prefix)) != 0)
            continue;
        double e = merged_error(key, key + strlen(prefix));
        printf("%-100s rel L2 %.2e\n", key, e);
        assert_true(e < bound);
        found++;
    }
    assert_true(found >= 2);
}

static void merged_weights_match_goldens(void **state)
{
    (void)state;
    uint64_t base = weights_hash(model);
    fold_ok(&(gs_lora){lora_path("tiny_a.safetensors"), 1, 1}, 1);
    check_merged("tiny_a.w1", MERGED_REL_L2);
    char a[600];
    snprintf(a, sizeof a, "%s", lora_path("tiny_a.safetensors")); /* lora_path's buffer is reused */
    fold_ok((gs_lora[]){{a, 0.7f, 0.7f}, {lora_path("tiny_b.safetensors"), -0.5f, -0.5f}}, 2);
    check_merged("two_0.7_-0.5", MERGED_REL_L2);
    fold_ok(&(gs_lora){lora_path("tiny_locon.safetensors"), 1, 1}, 1);
    check_merged("tiny_locon.w1", MERGED_REL_L2);
    fold_ok(NULL, 0);
    assert_true(weights_hash(model) == base);
}

static void peft_equals_kohya_and_zero_is_base(void **state)
{
    (void)state;
    uint64_t base = weights_hash(model);
    fold_ok(&(gs_lora){lora_path("tiny_a.safetensors"), 0.8f, -1.3f}, 1);
    uint64_t kohya = weights_hash(model);
    assert_true(kohya != base);
    fold_ok(&(gs_lora){lora_path("tiny_a_peft.safetensors"), 0.8f, -1.3f}, 1);
    /* lora_B = lora_up * alpha/r exactly (F16 halving), so the same bits */
    assert_true(weights_hash(model) == kohya);
    fold_ok(&(gs_lora){lora_path("tiny_a.safetensors"), 0, 0}, 1);
    assert_true(weights_hash(model) == base);
    fold_ok(NULL, 0);
    assert_true(weights_hash(model) == base);
}

static void text_through_merged_encoder(void **state)
{
    (void)state;
    static const struct {
        const char *tag;
        gs_lora l[2];
        int n;
    } cases[] = {
        {"tiny_a.te0.8", {{"tiny_a.safetensors", 0.8f, 0.8f}}, 1},
        {"tiny_a.te1.0", {{"tiny_a.safetensors", 1.0f, 1.0f}}, 1},
        {"two.te0.7_-0.5",
         {{"tiny_a.safetensors", 0.7f, 0.7f}, {"tiny_b.safetensors", -0.5f, -0.5f}},
         2},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        gs_lora l[2];
        char paths[2][600];
        for (int i = 0; i < cases[c].n; i++) {
            snprintf(paths[i], sizeof paths[i], "%s", lora_path(cases[c].l[i].path));
            l[i] = cases[c].l[i];
            l[i].path = paths[i];
        }
        fold_ok(l, cases[c].n);
        char key[128];
        size_t n;
        snprintf(key, sizeof key, "text.%s.ids", cases[c].tag);
        double *idd = gold_f64(key, &n);
        int32_t ids[77];
        for (int i = 0; i < 77; i++)
            ids[i] = (int32_t)idd[i];
        free(idd);
        float out[77 * 96];
        gi_error err = {0};
        for (int skip = 1; skip <= 2; skip++) {
            assert_int_equal(clip_text_encode(model->text[0], eng->cx, ids, 1, skip, out, &err),
                             GS_OK);
            snprintf(key, sizeof key, "text.%s.%s", cases[c].tag,
                     skip == 1 ? "hidden" : "penultimate");
            double *ref = gold_f64(key, &n);
            double e = rel_l2_f32_f64(out, ref, n);
            printf("%-40s rel L2 %.2e\n", key, e);
            assert_true(e < NET_REL_L2);
            free(ref);
        }
    }
    fold_ok(NULL, 0);
}

static void unet_through_merged_weights(void **state)
{
    (void)state;
    fold_ok(&(gs_lora){lora_path("tiny_a.safetensors"), 1, 1}, 1);
    size_t n;
    double *x64 = gold_f64("unet.tiny_a.w1.x", &n);
    int B = 2, C = 4, H = 8, W = 16;
    double *xt = malloc(n * sizeof *xt), *e64 = gold_f64("unet.tiny_a.w1.eps", NULL);
    double *ref = malloc(n * sizeof *ref);
    nchw_to_nhwc_f64(x64, xt, B, C, H, W);
    nchw_to_nhwc_f64(e64, ref, B, C, H, W);
    float *x = malloc(n * sizeof *x), *eps = malloc(n * sizeof *eps);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)xt[i];
    double *t64 = gold_f64("unet.tiny_a.w1.t", NULL);
    float t[2] = {(float)t64[0], (float)t64[1]};
    size_t nc;
    double *c64 = gold_f64("unet.tiny_a.w1.context", &nc);
    float *ctx = malloc(nc * sizeof *ctx);
    for (size_t i = 0; i < nc; i++)
        ctx[i] = (float)c64[i];
    gi_error err = {0};
    assert_int_equal(unet_forward(model->unet, eng->cx, x, t, ctx, NULL, B, H, W, 77, eps, &err),
                     GS_OK);
    double e = rel_l2_f32_f64(eps, ref, n);
    printf("unet.tiny_a.w1.eps rel L2 %.2e\n", e);
    assert_true(e < NET_REL_L2);
    free(x64), free(xt), free(e64), free(ref), free(x), free(eps), free(t64), free(c64), free(ctx);
    fold_ok(NULL, 0);
}

/* ---- recipes end to end ---- */

static void recipes_match_reference_images(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *root = json_load_file(fixture_path("lora/recipes-lora.json"), 0, &jerr);
    assert_non_null(root);
    size_t i;
    json_t *r;
    json_array_foreach(root, i, r)
    {
        const char *name = json_string_value(json_object_get(r, "name"));
        const char *sched = json_string_value(json_object_get(r, "schedule"));
        gs_params p;
        gs_params_init(&p);
        p.prompt = json_string_value(json_object_get(r, "prompt"));
        p.negative_prompt = json_string_value(json_object_get(r, "negative_prompt"));
        p.seed = (uint64_t)json_integer_value(json_object_get(r, "seed"));
        p.steps = (int)json_integer_value(json_object_get(r, "steps"));
        p.cfg_scale = (float)json_number_value(json_object_get(r, "cfg_scale"));
        p.sampler = json_string_value(json_object_get(r, "sampler"));
        p.scheduler = sched;
        p.width = (int)json_integer_value(json_object_get(r, "width"));
        p.height = (int)json_integer_value(json_object_get(r, "height"));
        p.lora_dir = lora_dir;
        gs_result *res = NULL;
        gs_status st = gs_generate(eng, model, &p, NULL, NULL, &res);
        if (st != GS_OK)
            fprintf(stderr, "%s: %s\n", name, gs_engine_errmsg(eng));
        assert_int_equal(st, GS_OK);
        char key[128];
        snprintf(key, sizeof key, "pipe.%s.image_u8", name);
        size_t n;
        double *ref = gold_f64(key, &n);
        const gs_image *im = gs_result_image(res, 0);
        assert_int_equal((size_t)im->width * im->height * 3, n);
        int maxd = 0;
        for (size_t k = 0; k < n; k++) {
            int d = abs((int)im->pixels[k] - (int)ref[k]);
            maxd = d > maxd ? d : maxd;
        }
        gs_timings tm;
        gs_result_timings(res, &tm);
        printf("pipe.%-14s max |diff| %d levels (LoRA fold %.1f ms)\n", name, maxd,
               tm.lora_apply_s * 1e3);
        assert_true(maxd <= 2); /* the README's ±2 levels (measured 0-1) */
        /* the infotext keeps the tags and names every LoRA with its addnet hash */
        const char *info = gs_result_infotext(res, 0);
        assert_non_null(strstr(info, p.prompt));
        assert_non_null(strstr(info, "Lora hashes: \""));
        if (strstr(p.prompt, "tiny_a"))
            assert_non_null(strstr(info, "tiny_a: 3b6d24e341b8"));
        if (strstr(p.prompt, "tiny_b"))
            assert_non_null(strstr(info, "tiny_b: e15a7c86f58a"));
        if (strstr(p.prompt, "tiny_locon"))
            assert_non_null(strstr(info, "tiny_locon: 279f87b116f6"));
        free(ref);
        gs_result_free(res);
    }
    json_decref(root);
}

/* ---- prompt tags ---- */

static void tags_parse_as_a1111(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *root = json_load_file(fixture_path("lora/recipes-lora.json"), 0, &jerr);
    size_t i;
    json_t *r;
    gi_error err = {0};
    json_array_foreach(root, i, r)
    {
        char *s;
        lora_tag *t;
        int n;
        assert_int_equal(
            lora_tags_parse(json_string_value(json_object_get(r, "prompt")), &s, &t, &n, &err),
            GS_OK);
        assert_string_equal(s, json_string_value(json_object_get(r, "prompt_after_tags")));
        json_t *nets = json_object_get(r, "networks");
        assert_int_equal(n, (int)json_array_size(nets));
        for (int k = 0; k < n; k++) {
            json_t *w = json_array_get(nets, (size_t)k);
            assert_string_equal(t[k].name, json_string_value(json_object_get(w, "name")));
            assert_float_equal(t[k].te, json_number_value(json_object_get(w, "te")), 1e-6);
            assert_float_equal(t[k].unet, json_number_value(json_object_get(w, "unet")), 1e-6);
        }
        free(s);
        free(t);
    }
    json_decref(root);
    char *s;
    lora_tag *t;
    int n;
    /* other kinds go too; named items override; unet follows te; "a=b=c" is positional */
    assert_int_equal(lora_tags_parse("x <hypernet:h:1>y<lora:n:te=2>, <lyco:m:0.5:unet=3> <a:>", &s,
                                     &t, &n, &err),
                     GS_OK);
    assert_string_equal(s, "x y,  <a:>");
    assert_int_equal(n, 2);
    assert_string_equal(t[0].name, "n");
    assert_float_equal(t[0].te, 2, 0);
    assert_float_equal(t[0].unet, 2, 0);
    assert_string_equal(t[1].name, "m");
    assert_float_equal(t[1].te, 0.5, 0);
    assert_float_equal(t[1].unet, 3, 0);
    free(s);
    free(t);
    assert_int_equal(lora_tags_parse("<lora:n:abc>", &s, &t, &n, &err), GS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "<lora:n:abc>"));
    assert_int_equal(lora_tags_parse("<lora:n:nan>", &s, &t, &n, &err), GS_ERR_INVALID_ARGUMENT);
}

/* ---- key mapping ---- */

static void map_ok(const lora_unet_layout *L, const char *key, int peft, const char *want,
                   lora_part part, int slice)
{
    lora_target t;
    int rc = peft ? lora_map_peft(L, key, &t) : lora_map_kohya(L, key, &t);
    if (rc != 0 || strcmp(t.name, want) != 0)
        fprintf(stderr, "%s -> %s (want %s)\n", key, rc ? "(refused)" : t.name, want);
    assert_int_equal(rc, 0);
    assert_string_equal(t.name, want);
    assert_int_equal(t.part, part);
    assert_int_equal(t.slice, slice);
}

static void keys_map_to_ldm_names(void **state)
{
    (void)state;
    const lora_unet_layout *S = &lora_layout_sd1, *X = &lora_layout_sdxl;
    const char *U = "model.diffusion_model.";
    char want[256];
#define W(s) (snprintf(want, sizeof want, "%s%s", U, s), want)
    map_ok(S, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 0,
           W("input_blocks.1.1.transformer_blocks.0.attn1.to_q"), LORA_UNET, -1);
    map_ok(S, "lora_unet_down_blocks_2_attentions_1_proj_in", 0, W("input_blocks.8.1.proj_in"),
           LORA_UNET, -1);
    map_ok(S, "lora_unet_down_blocks_1_resnets_0_conv2", 0, W("input_blocks.4.0.out_layers.3"),
           LORA_UNET, -1);
    map_ok(S, "lora_unet_down_blocks_3_resnets_1_time_emb_proj", 0,
           W("input_blocks.11.0.emb_layers.1"), LORA_UNET, -1);
    map_ok(S, "lora_unet_down_blocks_2_downsamplers_0_conv", 0, W("input_blocks.9.0.op"), LORA_UNET,
           -1);
    map_ok(S, "lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj", 0,
           W("middle_block.1.transformer_blocks.0.ff.net.0.proj"), LORA_UNET, -1);
    map_ok(S, "lora_unet_mid_block_resnets_1_conv1", 0, W("middle_block.2.in_layers.2"), LORA_UNET,
           -1);
    map_ok(S, "lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn2_to_out_0", 0,
           W("output_blocks.11.1.transformer_blocks.0.attn2.to_out.0"), LORA_UNET, -1);
    map_ok(S, "lora_unet_up_blocks_2_resnets_1_conv_shortcut", 0,
           W("output_blocks.7.0.skip_connection"), LORA_UNET, -1);
    map_ok(S, "lora_unet_up_blocks_0_upsamplers_0_conv", 0, W("output_blocks.2.1.conv"), LORA_UNET,
           -1);
    map_ok(S, "lora_unet_up_blocks_1_upsamplers_0_conv", 0, W("output_blocks.5.2.conv"), LORA_UNET,
           -1);
    map_ok(S, "lora_te_text_model_encoder_layers_11_mlp_fc2", 0,
           "cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2", LORA_TE, -1);
    map_ok(S, "unet.up_blocks.1.attentions.2.transformer_blocks.0.ff.net.2", 1,
           W("output_blocks.5.1.transformer_blocks.0.ff.net.2"), LORA_UNET, -1);
    map_ok(S, "text_encoder.text_model.encoder.layers.3.self_attn.out_proj", 1,
           "cond_stage_model.transformer.text_model.encoder.layers.3.self_attn.out_proj", LORA_TE,
           -1);
    /* SDXL: three levels, attention at the lower two, ten transformer blocks deep */
    map_ok(X, "lora_unet_down_blocks_1_attentions_1_transformer_blocks_1_attn2_to_k", 0,
           W("input_blocks.5.1.transformer_blocks.1.attn2.to_k"), LORA_UNET, -1);
    map_ok(X, "lora_unet_down_blocks_2_attentions_0_transformer_blocks_9_ff_net_2", 0,
           W("input_blocks.7.1.transformer_blocks.9.ff.net.2"), LORA_UNET, -1);
    map_ok(X, "lora_unet_up_blocks_0_upsamplers_0_conv", 0, W("output_blocks.2.2.conv"), LORA_UNET,
           -1);
    map_ok(X, "lora_unet_up_blocks_1_upsamplers_0_conv", 0, W("output_blocks.5.2.conv"), LORA_UNET,
           -1);
    map_ok(X, "lora_unet_up_blocks_2_resnets_2_conv1", 0, W("output_blocks.8.0.in_layers.2"),
           LORA_UNET, -1);
    map_ok(X, "lora_te1_text_model_encoder_layers_0_self_attn_k_proj", 0,
           "conditioner.embedders.0.transformer.text_model.encoder.layers.0.self_attn.k_proj",
           LORA_TE, -1);
    map_ok(X, "lora_te2_text_model_encoder_layers_31_self_attn_v_proj", 0,
           "conditioner.embedders.1.model.transformer.resblocks.31.attn.in_proj", LORA_TE, 2);
    map_ok(X, "lora_te2_text_model_encoder_layers_0_self_attn_out_proj", 0,
           "conditioner.embedders.1.model.transformer.resblocks.0.attn.out_proj", LORA_TE, -1);
    map_ok(X, "lora_te2_text_model_encoder_layers_5_mlp_fc1", 0,
           "conditioner.embedders.1.model.transformer.resblocks.5.mlp.c_fc", LORA_TE, -1);
    map_ok(X, "text_encoder_2.text_model.encoder.layers.5.mlp.fc2", 1,
           "conditioner.embedders.1.model.transformer.resblocks.5.mlp.c_proj", LORA_TE, -1);
#undef W
    static const char *const bad[] = {
        "lora_unet_down_blocks_3_attentions_0_proj_in",    /* SD1's lowest level has none */
        "lora_unet_down_blocks_3_downsamplers_0_conv",     /* nor a downsampler */
        "lora_unet_down_blocks_0_resnets_2_conv1",         /* two per down level */
        "lora_unet_down_blocks_0_attentions_0_norm",       /* not a LoRA layer */
        "lora_unet_up_blocks_3_upsamplers_0_conv",         /* the last level has none */
        "lora_te_text_model_encoder_layers_0_layer_norm1", /* a norm */
        "lora_te_text_model_encoder_layers_x_mlp_fc1",     /* no index */
        "lora_unet_mid_block_attentions_1_proj_in",        /* one mid attention */
        "lora_vae_decoder_conv_in",                        /* no VAE LoRAs */
    };
    lora_target t;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(lora_map_kohya(S, bad[i], &t), -1);
    assert_int_equal(lora_map_kohya(X, "lora_unet_down_blocks_0_attentions_0_proj_in", &t), -1);
    assert_int_equal(lora_map_peft(S, "vae.decoder.conv_in", &t), -1);
}

/* ---- switching sets through gs_generate ---- */

static gs_result *gen(const char *prompt, const gs_lora *l, int n)
{
    gs_params p;
    gs_params_init(&p);
    p.prompt = prompt;
    p.steps = 1;
    p.width = p.height = 64;
    p.sampler = "euler";
    p.loras = l;
    p.n_loras = n;
    p.lora_dir = lora_dir;
    gs_result *res = NULL;
    gs_status st = gs_generate(eng, model, &p, NULL, NULL, &res);
    if (st != GS_OK)
        fprintf(stderr, "generate: %s\n", gs_engine_errmsg(eng));
    assert_int_equal(st, GS_OK);
    return res;
}

static double fold_s(gs_result *res)
{
    gs_timings tm;
    gs_result_timings(res, &tm);
    gs_result_free(res);
    return tm.lora_apply_s;
}

static void switching_sets_restores_base(void **state)
{
    (void)state;
    fold_ok(NULL, 0);
    uint64_t base = weights_hash(model);
    assert_true(fold_s(gen("a cat <lora:tiny_b:1>", NULL, 0)) > 0);
    uint64_t only_b = weights_hash(model);
    assert_true(fold_s(gen("a cat", NULL, 0)) > 0);
    assert_true(weights_hash(model) == base);
    assert_true(fold_s(gen("a cat <lora:tiny_a:0.9>", NULL, 0)) > 0);
    /* the same set again: nothing to do */
    assert_true(fold_s(gen("a dog <lora:tiny_a:0.9>", NULL, 0)) == 0);
    uint64_t a = weights_hash(model);
    assert_true(a != base && a != only_b);
    /* A -> B: the layers only A touched are back to base */
    assert_true(fold_s(gen("a cat <lora:tiny_b:1>", NULL, 0)) > 0);
    assert_true(weights_hash(model) == only_b);
    /* a list entry for the same file and weights is the same set */
    assert_true(fold_s(gen("a cat", &(gs_lora){lora_path("tiny_b.safetensors"), 1, 1}, 1)) == 0);
    assert_true(fold_s(gen("a cat", NULL, 0)) > 0);
    assert_true(weights_hash(model) == base);
}

/* ---- hostile files ---- */

typedef struct fake_tensor {
    const char *name;
    int ndim;
    int64_t shape[4];
    float fill; /* every value (NaN for the poisoned one) */
} fake_tensor;

/* Writes an F32 safetensors file of the given tensors; returns its path. */
static const char *write_lora(const char *file, const fake_tensor *t, int n)
{
    static char path[700];
    snprintf(path, sizeof path, "%s/%s", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", file);
    char header[8192];
    size_t o = 0, off = 0;
    o += (size_t)snprintf(header + o, sizeof header - o, "{");
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        o += (size_t)snprintf(header + o, sizeof header - o,
                              "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[", i ? "," : "", t[i].name);
        for (int d = 0; d < t[i].ndim; d++) {
            o += (size_t)snprintf(header + o, sizeof header - o, "%s%lld", d ? "," : "",
                                  (long long)t[i].shape[d]);
            numel *= (size_t)t[i].shape[d];
        }
        o += (size_t)snprintf(header + o, sizeof header - o, "],\"data_offsets\":[%zu,%zu]}", off,
                              off + 4 * numel);
        off += 4 * numel;
    }
    o += (size_t)snprintf(header + o, sizeof header - o, "}");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t hl = o;
    fwrite(&hl, 8, 1, f);
    fwrite(header, 1, o, f);
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++)
            numel *= (size_t)t[i].shape[d];
        for (size_t k = 0; k < numel; k++)
            fwrite(&t[i].fill, 4, 1, f);
    }
    fclose(f);
    return path;
}

#define Q "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
#define K2 "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k"

static void refused(const char *file, const fake_tensor *t, int n, const char *needle)
{
    uint64_t before = weights_hash(model);
    const char *path = write_lora(file, t, n);
    lora_request lr;
    gi_error err = {0};
    gs_status st = fold(&(gs_lora){path, 1, 1}, 1, 1, &lr, &err);
    printf("%-16s -> %s\n", file, err.msg);
    assert_int_not_equal(st, GS_OK);
    assert_non_null(strstr(err.msg, needle));
    assert_true(weights_hash(model) == before);
    unlink(path);
}

static void hostile_files_are_refused(void **state)
{
    (void)state;
    /* a good module first, so a refusal after it must undo nothing: nothing was written */
    fake_tensor t[4] = {
        {K2 ".lora_down.weight", 2, {4, 96}, 0.01f},
        {K2 ".lora_up.weight", 2, {128, 4}, 0.01f},
        {Q ".lora_down.weight", 2, {4, 32}, 0.01f},
        {Q ".lora_up.weight", 2, {32, 4}, 0.01f},
    };
    fold_ok(&(gs_lora){lora_path("tiny_b.safetensors"), 1, 1}, 1); /* a set in place */
    t[2].shape[1] = 33;
    refused("wrong_shape.safetensors", t, 4, Q "' has lora_down [4, 33]");
    t[2].shape[1] = 32;
    t[3].fill = NAN;
    refused("nan.safetensors", t, 4, Q ".lora_up' holds a value that is not finite");
    t[3].fill = 0.01f;
    t[2].shape[0] = 40;
    t[3].shape[1] = 40;
    refused("rank.safetensors", t, 4, Q "' has rank 40");
    t[2].shape[0] = 4;
    t[3].shape[1] = 4;
    fake_tensor u[5] = {t[0], t[1], t[2], t[3], {Q ".alpha", 1, {4}, 2.0f}};
    refused("alpha.safetensors", u, 5, Q ".alpha' is not a scalar");
    u[4] = (fake_tensor){"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q."
                         "hada_w1_a",
                         2,
                         {4, 32},
                         0.1f};
    refused("unknown.safetensors", u, 5, "hada_w1_a' is not a LoRA factor");
    u[4] = (fake_tensor){
        "lora_unet_down_blocks_3_attentions_0_proj_in.lora_down.weight", 2, {4, 32}, 0.1f};
    refused("nolayer.safetensors", u, 5, "down_blocks_3_attentions_0_proj_in' names no layer");
    /* a layer the mapping knows but this model has not (tiny-sd15 has one transformer block) */
    u[4] = (fake_tensor){"lora_unet_down_blocks_0_attentions_0_transformer_blocks_1_attn1_to_q."
                         "lora_down.weight",
                         2,
                         {4, 32},
                         0.1f};
    fake_tensor v[6] = {u[0],
                        u[1],
                        u[2],
                        u[3],
                        u[4],
                        {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_1_attn1_to_q."
                         "lora_up.weight",
                         2,
                         {32, 4},
                         0.1f}};
    refused("absent.safetensors", v, 6, "transformer_blocks.1.attn1.to_q.weight', which this");
    /* not strict: that module is left out, the rest applied, and the result says so */
    const char *path = write_lora("lenient.safetensors", v, 6);
    uint64_t before = weights_hash(model);
    gs_result *res = gen("x", &(gs_lora){path, 1, 1}, 0); /* warm: no LoRA */
    gs_result_free(res);
    gs_params p;
    gs_params_init(&p);
    p.steps = 1;
    p.width = p.height = 64;
    p.loras = &(gs_lora){path, 1, 1};
    p.n_loras = 1;
    p.lora_strict = 0;
    assert_int_equal(gs_generate(eng, model, &p, NULL, NULL, &res), GS_OK);
    assert_non_null(gs_result_warnings(res));
    assert_non_null(strstr(gs_result_warnings(res), "1 LoRA module left out"));
    assert_true(weights_hash(model) != before);
    gs_result_free(res);
    unlink(path);
    /* a truncated file: the safetensors parser refuses it */
    path = write_lora("trunc.safetensors", t, 4);
    assert_int_equal(truncate(path, 200), 0);
    lora_request lr;
    gi_error err = {0};
    assert_int_not_equal(fold(&(gs_lora){path, 1, 1}, 1, 1, &lr, &err), GS_OK);
    assert_non_null(strstr(err.msg, "trunc.safetensors"));
    unlink(path);
    /* names in tags are names */
    p.loras = NULL;
    p.n_loras = 0;
    p.lora_dir = lora_dir;
    p.prompt = "<lora:../lora/tiny_a:1>";
    assert_int_equal(gs_generate(eng, model, &p, NULL, NULL, &res), GS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(gs_engine_errmsg(eng), "not a path"));
    p.prompt = "<lora:missing:1>";
    p.lora_strict = 1;
    assert_int_equal(gs_generate(eng, model, &p, NULL, NULL, &res), GS_ERR_IO);
    /* not strict: as A1111, a tag naming no file is left out, and the result says so */
    p.lora_strict = 0;
    assert_int_equal(gs_generate(eng, model, &p, NULL, NULL, &res), GS_OK);
    assert_non_null(strstr(gs_result_warnings(res), "missing.safetensors"));
    gs_result_free(res);
    fold_ok(NULL, 0);
}

/* A prepared file's weights are its read-only mapping: LoRAs are refused, with why. */
static void prepared_files_refuse_loras(void **state)
{
    (void)state;
    char dst[600];
    snprintf(dst, sizeof dst, "%s/lora-prepared-%d.safetensors",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    assert_int_equal(gs_checkpoint_prepare(eng, fixture_path("tiny-sd15.safetensors"), dst), GS_OK);
    gs_model *pm;
    assert_int_equal(gs_model_load(eng, dst, &pm), GS_OK);
    gs_params p;
    gs_params_init(&p);
    p.steps = 1;
    p.width = p.height = 64;
    p.prompt = "a cat"; /* no LoRA: runs as ever */
    gs_result *res;
    assert_int_equal(gs_generate(eng, pm, &p, NULL, NULL, &res), GS_OK);
    gs_result_free(res);
    p.lora_dir = lora_dir;
    p.prompt = "a cat <lora:tiny_a:1>";
    assert_int_equal(gs_generate(eng, pm, &p, NULL, NULL, &res), GS_ERR_UNSUPPORTED);
    assert_non_null(strstr(gs_engine_errmsg(eng), "prepared file"));
    gs_model_free(pm);
    unlink(dst);
}

/* gesso generate --lora FILE:TE:UNET and a tag, the PNG's parameters naming both. */
static void cli_takes_loras(void **state)
{
    (void)state;
    char dir[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s/lora-cli-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s && %s generate -q -m %s -p 'a cat <lora:tiny_b:0.5>' --lora-dir %s "
             "--lora %s/tiny_a.safetensors:1:0.5 -W 64 -H 64 --steps 1 -s 1 -o %s/o.png "
             ">/dev/null 2>&1 && grep -c 'Lora hashes: \"tiny_a: 3b6d24e341b8, tiny_b: "
             "e15a7c86f58a\"' %s/o.png >/dev/null",
             dir, GS_GESSO_BIN, fixture_path("tiny-sd15.safetensors"), lora_dir, lora_dir, dir,
             dir);
    assert_int_equal(system(cmd), 0);
    /* the recipe lora_split (<lora:tiny_a:1.0:0.5>) as FILE:TE:UNET: the reference image */
    snprintf(cmd, sizeof cmd,
             "%s generate -q -m %s -p 'A lighthouse at dusk, oil painting, highly detailed' "
             "--lora %s/tiny_a.safetensors:1.0:0.5 -W 64 -H 64 --steps 8 -s 11 --cfg-scale 6.5 "
             "--sampler dpmpp_2m --scheduler karras --precision f32 -o %s/split.png "
             ">/dev/null 2>&1",
             GS_GESSO_BIN, fixture_path("tiny-sd15.safetensors"), lora_dir, dir);
    assert_int_equal(system(cmd), 0);
    char png[600], msg[256];
    snprintf(png, sizeof png, "%s/split.png", dir);
    gs_image *im;
    assert_int_equal(gs_image_load(png, &im, msg, sizeof msg), GS_OK);
    size_t n;
    double *ref = gold_f64("pipe.lora_split.image_u8", &n);
    assert_int_equal(n, (size_t)im->width * im->height * 3);
    int maxd = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)im->pixels[i] - (int)ref[i]);
        maxd = d > maxd ? d : maxd;
    }
    printf("gesso generate --lora FILE:1.0:0.5: max |diff| %d levels against pipe.lora_split\n",
           maxd);
    assert_true(maxd <= 2);
    free(ref);
    gs_image_free(im);
    snprintf(cmd, sizeof cmd,
             "%s generate -q -m %s -p x --lora %s/tiny_a.safetensors:1:y -o %s/o.png "
             ">/dev/null 2>&1",
             GS_GESSO_BIN, fixture_path("tiny-sd15.safetensors"), lora_dir, dir);
    assert_int_not_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "%s generate -q -m %s -p x --lora-strict maybe -o %s/o.png >/dev/null 2>&1",
             GS_GESSO_BIN, fixture_path("tiny-sd15.safetensors"), dir);
    assert_int_not_equal(system(cmd), 0);
    assert_int_equal(test_remove_tree(dir), 0);
}

/* ---- bf16 ---- */

static double bf16_error(const uint16_t *b, const char *golden_key, size_t n)
{
    double *ref = gold_f64(golden_key, NULL);
    float *w = malloc(n * sizeof *w);
    for (size_t k = 0; k < n; k++) {
        uint32_t u = (uint32_t)b[k] << 16;
        memcpy(&w[k], &u, 4);
    }
    double d = rel_l2_f32_f64(w, ref, n); /* 1x1 and linear: the same order either way */
    free(w);
    free(ref);
    return d;
}

/* The fold into bf16 weights on any CPU: an index of bf16 copies of the golden layers
   (shapes as the f32 model holds them), folded directly, then restored. */
static void bf16_fold_matches_goldens(void **state)
{
    (void)state;
    weight_log idx = {0};
    const char *keys[8];
    int n = 0;
    for (size_t i = 0; i < st_count(gold) && n < 8; i++) {
        const char *key = st_at(gold, i)->name;
        if (strncmp(key, "merged.tiny_a.w1.", 17) == 0)
            keys[n++] = key;
    }
    assert_true(n >= 6);
    idx.e = calloc((size_t)n, sizeof *idx.e);
    idx.n = idx.cap = (size_t)n;
    for (int i = 0; i < n; i++) {
        const weight_entry *f = weight_log_find(&model->index, keys[i] + 17);
        assert_non_null(f);
        idx.e[i] = *f;
        idx.e[i].name = strdup(f->name);
        idx.e[i].dtype = ST_BF16;
        idx.e[i].packed = 0; /* this index's own buffers, in the stored layout */
        idx.e[i].nbytes = f->nbytes / 2;
        idx.e[i].data = calloc(1, idx.e[i].nbytes); /* zeros: the fold must not read them */
    }
    lora_file *lf;
    gi_error err = {0};
    assert_int_equal(
        lora_file_open(lora_path("tiny_a.safetensors"), &lora_layout_sd1, 0, &lf, &err), GS_OK);
    lora_net net = {lf, "tiny_a", 1, 1};
    lora_applied *applied = NULL;
    int skipped;
    char note[256];
    assert_int_equal(lora_apply(&applied, &idx, fixture_path("tiny-sd15.safetensors"), &net, 1, 0,
                                &skipped, note, sizeof note, &err),
                     GS_OK);
    assert_true(skipped > 0); /* the layers left out of this index */
    for (int i = 0; i < n; i++) {
        double d = bf16_error(idx.e[i].data, keys[i], idx.e[i].nbytes / 2);
        printf("bf16 %-96s rel L2 %.2e\n", keys[i], d);
        assert_true(d < BF16_MERGED_REL_L2);
    }
    /* no LoRA: exactly the checkpoint's values rounded to bf16, as the loader rounds them */
    assert_int_equal(lora_apply(&applied, &idx, fixture_path("tiny-sd15.safetensors"), NULL, 0, 1,
                                &skipped, note, sizeof note, &err),
                     GS_OK);
    st_file *ck;
    assert_int_equal(st_open(fixture_path("tiny-sd15.safetensors"), &ck, &err), GS_OK);
    for (int i = 0; i < n; i++) {
        const st_tensor *t = st_find(ck, idx.e[i].name);
        float *f = malloc((size_t)t->numel * sizeof *f);
        uint16_t *b = malloc((size_t)t->numel * sizeof *b);
        assert_int_equal(st_to_f32(t, f, &err), GS_OK);
        f32_to_bf16(f, b, (long)t->numel); /* 2-D and 1x1 layers: no reordering */
        assert_memory_equal(b, idx.e[i].data, idx.e[i].nbytes);
        free(f);
        free(b);
        free((void *)idx.e[i].data);
    }
    st_close(ck);
    lora_applied_free(applied);
    lora_file_close(lf);
    weight_log_free(&idx);
}

/* A LoRA folded into an engine's 16-bit weights (bf16 or f16) against the f64
   goldens, then taken off again: the base weights come back bit for bit. */
static void half_weights_fold(gs_precision precision, double bound)
{
    st_dtype kept = precision == GS_PRECISION_F16 ? ST_F16 : ST_BF16;
    const char *what = kept == ST_F16 ? "f16" : "bf16";
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = 2;
    eo.precision = precision;
    gs_engine *e16;
    assert_int_equal(gs_engine_create(&eo, &e16), GS_OK);
    gs_model *m16;
    assert_int_equal(gs_model_load(e16, fixture_path("tiny-sd15.safetensors"), &m16), GS_OK);
    uint64_t base16 = weights_hash(m16);
    gs_params p;
    gs_params_init(&p);
    p.loras = &(gs_lora){lora_path("tiny_a.safetensors"), 1, 1};
    p.n_loras = 1;
    lora_request lr;
    gi_error err = {0};
    assert_int_equal(lora_select(m16, &p, &lr, &err), GS_OK);
    lora_request_free(&lr);
    int checked = 0;
    for (size_t i = 0; i < st_count(gold); i++) {
        const char *key = st_at(gold, i)->name;
        if (strncmp(key, "merged.tiny_a.w1.", 17) != 0)
            continue;
        const weight_entry *e = weight_log_find(&m16->index, key + 17);
        assert_non_null(e);
        if (e->dtype != kept)
            continue; /* the text encoder stays f32 */
        size_t n;
        double *ref = gold_f64(key, &n);
        float *w = malloc(n * sizeof *w);
        void *copy;
        const uint16_t *b = weight_entry_plain(e, &copy);
        for (size_t k = 0; k < n; k++)
            w[k] = kept == ST_F16 ? gi_f16_to_f32(b[k]) : gi_bf16_to_f32(b[k]);
        gi_aligned_free(copy);
        double d = rel_l2_f32_f64(w, ref, n); /* 1x1 and linear: the same order */
        printf("%s %-90s rel L2 %.2e\n", what, key, d);
        assert_true(d < bound);
        checked++;
        free(w);
        free(ref);
    }
    assert_true(checked >= 2);
    p.n_loras = 0;
    assert_int_equal(lora_select(m16, &p, &lr, &err), GS_OK);
    lora_request_free(&lr);
    assert_true(weights_hash(m16) == base16);
    gs_model_free(m16);
    gs_engine_free(e16);
}

static void bf16_weights_fold_too(void **state)
{
    (void)state;
    half_weights_fold(GS_PRECISION_BF16, BF16_MERGED_REL_L2);
}

static void f16_weights_fold_too(void **state)
{
    (void)state;
    half_weights_fold(GS_PRECISION_F16, F16_MERGED_REL_L2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_map_to_ldm_names),
        cmocka_unit_test(tags_parse_as_a1111),
        cmocka_unit_test(merged_weights_match_goldens),
        cmocka_unit_test(peft_equals_kohya_and_zero_is_base),
        cmocka_unit_test(text_through_merged_encoder),
        cmocka_unit_test(unet_through_merged_weights),
        cmocka_unit_test(switching_sets_restores_base),
        cmocka_unit_test(hostile_files_are_refused),
        cmocka_unit_test(recipes_match_reference_images),
        cmocka_unit_test(prepared_files_refuse_loras),
        cmocka_unit_test(cli_takes_loras),
        cmocka_unit_test(bf16_fold_matches_goldens),
        cmocka_unit_test(bf16_weights_fold_too),
        cmocka_unit_test(f16_weights_fold_too),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
