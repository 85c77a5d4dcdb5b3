/*
 * test_lora_families - LoRA on SDXL (two text encoders, OpenCLIP's fused q/k/v)
 * and SD 2.x (a kohya file's Hugging Face text-encoder names onto OpenCLIP
 * weights). There is no reference run for these, so the identity the issue
 * names is checked: a kohya LoRA the test writes (random rank-2 F16 factors),
 * folded at its multipliers, must give what a copy of the checkpoint with the
 * same deltas merged offline gives (W + w * alpha/r * up @ down in double,
 * stored F32): the same resident weights, conditioning, UNet output and image.
 * Also: every UNet and text-encoder name the mapping gives names a tensor of
 * the real fixture files, PEFT names fold the same deltas, switching sets
 * restores the base bit for bit, and a q slice of the wrong width is refused
 * with its key named.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gesso.h"
#include "common/alloc.h"
#include "model/lora_keys.h"
#include "pipeline/engine.h"
#include "pipeline/lora_select.h"

/* Folded f32 weights against the double merge stored as f32: measured 1.5e-8..8.0e-8
   relative L2 per layer (AMD EPYC AVX2, 2026-12-06): the fold's f32 GEMM and add round
   where the merge rounds once. A swapped or misplaced slice is > 1e-1. */
#define WEIGHT_REL_L2 1e-6
/* Conditioning (context, pooled) and one UNet output through the two models: measured
   1.6e-7..4.4e-7; the same bound as test_families' conditioning. Images: max 1 level
   (measured 1 for both families; the LoRA itself moves them 55..108 levels). */
#define NET_REL_L2 5e-6

static char tmp_dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "%s/gesso-lora-fam-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return test_remove_tree(tmp_dir);
}

static const char *tmp_path(const char *name)
{
    static char buf[2][512];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_dir, name);
    return buf[k];
}

static gs_engine *engine_f32(void)
{
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = 2;
    eo.precision = GS_PRECISION_F32;
    gs_engine *eng = NULL;
    assert_int_equal(gs_engine_create(&eo, &eng), GS_OK);
    return eng;
}

static gs_model *load(gs_engine *eng, const char *path)
{
    gs_model *m = NULL;
    gs_status st = gs_model_load(eng, path, &m);
    if (st != GS_OK)
        fprintf(stderr, "load %s: %s\n", path, gs_engine_errmsg(eng));
    assert_int_equal(st, GS_OK);
    return m;
}

/* FNV-1a over every resident weight: equal hashes, equal bits. */
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

/* ---- writing safetensors files ---- */

typedef struct out_tensor {
    char name[300];
    const char *dtype;
    int ndim;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
} out_tensor;

static void write_st(const char *path, const out_tensor *t, int n, json_t *metadata)
{
    json_t *hdr = json_object();
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < t[i].ndim; d++)
            json_array_append_new(shape, json_integer(t[i].shape[d]));
        json_object_set_new(hdr, t[i].name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", t[i].dtype, "shape", shape,
                                      "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + t[i].nbytes)));
        off += t[i].nbytes;
    }
    if (metadata)
        json_object_set(hdr, "__metadata__", metadata);
    char *h = json_dumps(hdr, JSON_COMPACT);
    size_t hl = strlen(h), padded = (hl + 7) / 8 * 8; /* spaces after the JSON are allowed */
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t hl64 = padded;
    fwrite(&hl64, 8, 1, f);
    fwrite(h, 1, hl, f);
    for (size_t i = hl; i < padded; i++)
        fputc(' ', f);
    for (int i = 0; i < n; i++)
        fwrite(t[i].data, 1, t[i].nbytes, f);
    fclose(f);
    free(h);
    json_decref(hdr);
}

/* The F16 bits of v, which must be exactly representable and normal. */
static uint16_t f16_exact(double v)
{
    if (v == 0)
        return 0;
    int e;
    double m = frexp(fabs(v), &e); /* |v| = m * 2^e, m in [0.5, 1) */
    int biased = e - 1 + 15;
    double frac = (2 * m - 1) * 1024;
    assert_true(biased >= 1 && biased <= 30 && frac == floor(frac));
    return (uint16_t)((v < 0 ? 0x8000 : 0) | biased << 10 | (int)frac);
}

static uint64_t rng_state;

/* k / 1024 with 1 <= |k| <= 512: exact in F16, and 1.5 times it too (PEFT's lora_B). */
static double rand_factor(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    int k = (int)(rng_state >> 33) % 1024 - 512;
    return (k == 0 ? 1 : k) / 1024.0;
}

/* ---- LoRA modules and their offline merge ---- */

typedef struct mod_spec {
    const char *key;    /* kohya module name */
    const char *peft;   /* the same module as a PEFT path, or NULL */
    const char *target; /* checkpoint tensor it patches */
    int slice;          /* -1, or the q/k/v row block of a fused in_proj_weight */
    int te;             /* takes the text-encoder multiplier */
    double alpha;       /* 0: no alpha tensor (scale 1) */
} mod_spec;

#define RANK 2

typedef struct factors {
    int out, cols, k;  /* rows patched, W's columns (in * k * k), kernel size */
    double *down, *up; /* [RANK, cols], [out, RANK] */
} factors;

static factors *make_factors(const st_file *ck, const mod_spec *m, int n)
{
    factors *f = calloc((size_t)n, sizeof *f);
    for (int i = 0; i < n; i++) {
        const st_tensor *t = st_find(ck, m[i].target);
        if (!t)
            fprintf(stderr, "no tensor %s\n", m[i].target);
        assert_non_null(t);
        f[i].out = (int)t->shape[0] / (m[i].slice >= 0 ? 3 : 1);
        f[i].cols = (int)(t->numel / t->shape[0]);
        f[i].k = t->ndim == 4 ? (int)t->shape[2] : 1;
        f[i].down = malloc((size_t)RANK * f[i].cols * sizeof(double));
        f[i].up = malloc((size_t)f[i].out * RANK * sizeof(double));
        for (int j = 0; j < RANK * f[i].cols; j++)
            f[i].down[j] = rand_factor();
        for (int j = 0; j < f[i].out * RANK; j++)
            f[i].up[j] = rand_factor();
    }
    return f;
}

static void free_factors(factors *f, int n)
{
    for (int i = 0; i < n; i++)
        free(f[i].down), free(f[i].up);
    free(f);
}

static uint16_t *f16_of(const double *v, size_t n, double scale)
{
    uint16_t *b = malloc(n * sizeof *b);
    for (size_t i = 0; i < n; i++)
        b[i] = f16_exact(v[i] * scale);
    return b;
}

/* The modules as a kohya file (peft = 0) or a diffusers PEFT file (lora_A, lora_B =
   up * alpha/r, no alpha; modules without a PEFT name left out). */
static const char *write_lora(const char *name, const mod_spec *m, const factors *f, int n,
                              int peft)
{
    out_tensor *t = calloc((size_t)n * 3, sizeof *t);
    void **bufs = calloc((size_t)n * 3, sizeof *bufs);
    int nt = 0;
    for (int i = 0; i < n; i++) {
        if (peft && !m[i].peft)
            continue;
        const char *key = peft ? m[i].peft : m[i].key;
        double a = m[i].alpha ? m[i].alpha / RANK : 1;
        out_tensor *d = &t[nt], *u = &t[nt + 1];
        snprintf(d->name, sizeof d->name, "%s.%s", key,
                 peft ? "lora_A.weight" : "lora_down.weight");
        snprintf(u->name, sizeof u->name, "%s.%s", key, peft ? "lora_B.weight" : "lora_up.weight");
        d->dtype = u->dtype = "F16";
        int in = f[i].cols / (f[i].k * f[i].k);
        d->ndim = f[i].k > 1 ? 4 : 2;
        memcpy(d->shape, (int64_t[]){RANK, in, f[i].k, f[i].k}, sizeof d->shape);
        u->ndim = d->ndim;
        memcpy(u->shape, (int64_t[]){f[i].out, RANK, 1, 1}, sizeof u->shape);
        d->data = bufs[nt] = f16_of(f[i].down, (size_t)RANK * f[i].cols, 1);
        d->nbytes = (size_t)RANK * f[i].cols * 2;
        u->data = bufs[nt + 1] = f16_of(f[i].up, (size_t)f[i].out * RANK, peft ? a : 1);
        u->nbytes = (size_t)f[i].out * RANK * 2;
        nt += 2;
        if (!peft && m[i].alpha) {
            out_tensor *al = &t[nt];
            snprintf(al->name, sizeof al->name, "%s.alpha", key);
            al->dtype = "F16";
            al->ndim = 0;
            al->data = bufs[nt] = f16_of(&m[i].alpha, 1, 1);
            al->nbytes = 2;
            nt++;
        }
    }
    const char *path = tmp_path(name);
    write_st(path, t, nt, NULL);
    for (int i = 0; i < nt; i++)
        free(bufs[i]);
    free(bufs);
    free(t);
    return path;
}

/* A copy of the checkpoint whose patched tensors hold W + sum of mult * alpha/r * up @ down,
   computed in double from the F16 base and stored F32; every other tensor as it was. */
static const char *write_merged(const char *ckpt, const char *name, const mod_spec *m,
                                const factors *f, int n, double te_w, double unet_w)
{
    gi_error err = {0};
    st_file *ck;
    assert_int_equal(st_open(ckpt, &ck, &err), GS_OK);
    /* the original header's metadata (prediction type, architecture) */
    FILE *in = fopen(ckpt, "rb");
    uint64_t hl;
    assert_int_equal(fread(&hl, 8, 1, in), 1);
    char *h = malloc(hl + 1);
    assert_int_equal(fread(h, 1, hl, in), hl);
    h[hl] = '\0';
    fclose(in);
    json_error_t jerr;
    json_t *hdr = json_loads(h, 0, &jerr);
    assert_non_null(hdr);
    free(h);
    size_t nt = st_count(ck);
    out_tensor *t = calloc(nt, sizeof *t);
    float **merged = calloc(nt, sizeof *merged);
    for (size_t i = 0; i < nt; i++) {
        const st_tensor *s = st_at(ck, i);
        snprintf(t[i].name, sizeof t[i].name, "%s", s->name);
        t[i].dtype = st_dtype_name(s->dtype);
        t[i].ndim = s->ndim;
        memcpy(t[i].shape, s->shape, (size_t)s->ndim * sizeof *s->shape);
        t[i].data = s->data;
        t[i].nbytes = s->nbytes;
        double *w = NULL;
        for (int j = 0; j < n; j++) {
            if (strcmp(m[j].target, s->name) != 0)
                continue;
            if (!w) {
                w = malloc((size_t)s->numel * sizeof *w);
                assert_int_equal(st_to_f64(s, w, &err), GS_OK);
            }
            double scale = (m[j].alpha ? m[j].alpha / RANK : 1) * (m[j].te ? te_w : unet_w);
            size_t cols = (size_t)f[j].cols,
                   row0 = m[j].slice >= 0 ? (size_t)m[j].slice * f[j].out : 0;
            for (int o = 0; o < f[j].out; o++)
                for (size_t c = 0; c < cols; c++) {
                    double d = 0;
                    for (int r = 0; r < RANK; r++)
                        d += f[j].up[o * RANK + r] * f[j].down[r * cols + c];
                    w[(row0 + (size_t)o) * cols + c] += scale * d;
                }
        }
        if (w) {
            merged[i] = malloc((size_t)s->numel * sizeof(float));
            for (int64_t k = 0; k < s->numel; k++)
                merged[i][k] = (float)w[k];
            t[i].dtype = "F32";
            t[i].data = merged[i];
            t[i].nbytes = (size_t)s->numel * sizeof(float);
            free(w);
        }
    }
    const char *path = tmp_path(name);
    write_st(path, t, (int)nt, json_object_get(hdr, "__metadata__"));
    for (size_t i = 0; i < nt; i++)
        free(merged[i]);
    free(merged);
    free(t);
    json_decref(hdr);
    st_close(ck);
    return path;
}

/* ---- comparing two models ---- */

static double rel_l2_f32(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* The layers m patches (a fused q/k/v weight is one layer for three modules). */
static int distinct_targets(const mod_spec *m, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++)
            seen |= strcmp(m[i].target, m[j].target) == 0;
        k += !seen;
    }
    return k;
}

static int is_target(const mod_spec *m, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(m[i].target, name) == 0)
            return 1;
    return 0;
}

/* Every resident weight of a (LoRA folded) against b (merged copy): patched layers within
   WEIGHT_REL_L2, all others bit for bit. */
static void weights_agree(const gs_model *a, const gs_model *b, const mod_spec *m, int n)
{
    assert_int_equal(a->index.n, b->index.n);
    int patched = 0;
    double worst = 0;
    for (size_t i = 0; i < a->index.n; i++) {
        const weight_entry *x = &a->index.e[i], *y = weight_log_find(&b->index, x->name);
        assert_non_null(y);
        assert_int_equal(x->nbytes, y->nbytes);
        if (!is_target(m, n, x->name)) {
            if (memcmp(x->data, y->data, x->nbytes) != 0)
                fprintf(stderr, "%s changed, and no module patches it\n", x->name);
            assert_memory_equal(x->data, y->data, x->nbytes);
            continue;
        }
        assert_int_equal(x->dtype, ST_F32);
        double e = rel_l2_f32(x->data, y->data, x->nbytes / sizeof(float));
        printf("  %-84s rel L2 %.2e\n", x->name, e);
        assert_true(e < WEIGHT_REL_L2);
        worst = e > worst ? e : worst;
        patched++;
    }
    assert_int_equal(patched, distinct_targets(m, n));
    printf("  %d patched layers, worst %.2e\n", patched, worst);
}

/* The conditioning and one UNet output of prompt through both models. */
static void nets_agree(gs_engine *eng, gs_model *a, gs_model *b, const char *prompt)
{
    prompt_cond pa, pb;
    gi_error err = {0};
    assert_int_equal(encode_prompt(eng, a, prompt, 1, 0, &pa, &err), GS_OK);
    assert_int_equal(encode_prompt(eng, b, prompt, 1, 0, &pb, &err), GS_OK);
    assert_int_equal(pa.tokens, pb.tokens);
    size_t nc = (size_t)pa.tokens * a->text_width;
    double e = rel_l2_f32(pa.ctx, pb.ctx, nc);
    printf("  context rel L2 %.2e\n", e);
    assert_true(e < NET_REL_L2);
    float *y = NULL;
    if (a->adm_channels) {
        e = rel_l2_f32(pa.pooled, pb.pooled, (size_t)a->pooled_width);
        printf("  pooled  rel L2 %.2e\n", e);
        assert_true(e < NET_REL_L2);
        y = calloc((size_t)a->adm_channels, sizeof *y);
        memcpy(y, pb.pooled, (size_t)a->pooled_width * sizeof *y);
        unet_size_features((const float[6]){64, 64, 0, 0, 64, 64}, y + a->pooled_width);
    }
    int H = 8, W = 8, C = a->latent_channels;
    size_t nx = (size_t)H * W * C;
    float *x = malloc(nx * sizeof *x), *ea = malloc(nx * sizeof *ea), *eb = malloc(nx * sizeof *eb);
    rng_state = 99;
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)(rand_factor() * 4);
    float t = 500;
    assert_int_equal(unet_forward(a->unet, eng->cx, x, &t, pb.ctx, y, 1, H, W, pb.tokens, ea, &err),
                     GS_OK);
    assert_int_equal(unet_forward(b->unet, eng->cx, x, &t, pb.ctx, y, 1, H, W, pb.tokens, eb, &err),
                     GS_OK);
    e = rel_l2_f32(ea, eb, nx);
    printf("  UNet output rel L2 %.2e\n", e);
    assert_true(e < NET_REL_L2);
    free(x), free(ea), free(eb), free(y);
    prompt_cond_free(&pa);
    prompt_cond_free(&pb);
}

static gs_result *gen(gs_engine *eng, gs_model *m, const char *prompt, const gs_lora *l, int n)
{
    gs_params p;
    gs_params_init(&p);
    p.prompt = prompt;
    p.negative_prompt = "blurry";
    p.seed = 5;
    p.steps = 4;
    p.cfg_scale = 5;
    p.sampler = "euler";
    p.width = p.height = 64;
    p.loras = l;
    p.n_loras = n;
    p.lora_dir = tmp_dir;
    gs_result *res = NULL;
    gs_status st = gs_generate(eng, m, &p, NULL, NULL, &res);
    if (st != GS_OK)
        fprintf(stderr, "generate: %s\n", gs_engine_errmsg(eng));
    assert_int_equal(st, GS_OK);
    return res;
}

static int max_level_diff(const gs_result *a, const gs_result *b)
{
    const gs_image *x = gs_result_image(a, 0), *y = gs_result_image(b, 0);
    assert_int_equal(x->width, y->width);
    assert_int_equal(x->height, y->height);
    int worst = 0;
    for (size_t i = 0; i < (size_t)x->width * x->height * 3; i++) {
        int d = abs((int)x->pixels[i] - (int)y->pixels[i]);
        worst = d > worst ? d : worst;
    }
    return worst;
}

static void fold_ok(gs_model *m, const gs_lora *l, int n)
{
    gs_params p;
    gs_params_init(&p);
    p.loras = l;
    p.n_loras = n;
    p.lora_strict = 1;
    lora_request lr;
    gi_error err = {0};
    gs_status st = lora_select(m, &p, &lr, &err);
    if (st != GS_OK)
        fprintf(stderr, "fold: %s\n", err.msg);
    assert_int_equal(st, GS_OK);
    lora_request_free(&lr);
}

/* ---- SDXL ---- */

#define XU "model.diffusion_model."
#define XT1 "conditioner.embedders.0.transformer.text_model.encoder.layers."
#define XT2 "conditioner.embedders.1.model.transformer.resblocks."
#define XIN XT2 "0.attn.in_proj_weight"

static const mod_spec sdxl_mods[] = {
    /* a linear proj_in (diffusers path), a 3x3 resnet conv, a mid attn2.to_k (context
       input), SDXL's upsampler after an attention, two layers under kohya's LDM names */
    {"lora_unet_down_blocks_1_attentions_0_proj_in", "unet.down_blocks.1.attentions.0.proj_in",
     XU "input_blocks.4.1.proj_in.weight", -1, 0, 3},
    {"lora_unet_down_blocks_0_resnets_1_conv2", "unet.down_blocks.0.resnets.1.conv2",
     XU "input_blocks.2.0.out_layers.3.weight", -1, 0, 1},
    {"lora_unet_mid_block_attentions_0_transformer_blocks_1_attn2_to_k",
     "unet.mid_block.attentions.0.transformer_blocks.1.attn2.to_k",
     XU "middle_block.1.transformer_blocks.1.attn2.to_k.weight", -1, 0, 3},
    {"lora_unet_up_blocks_1_upsamplers_0_conv", "unet.up_blocks.1.upsamplers.0.conv",
     XU "output_blocks.5.2.conv.weight", -1, 0, 4},
    {"lora_unet_output_blocks_3_1_transformer_blocks_0_ff_net_0_proj", NULL,
     XU "output_blocks.3.1.transformer_blocks.0.ff.net.0.proj.weight", -1, 0, 3},
    {"lora_unet_input_blocks_7_1_transformer_blocks_1_attn1_to_out_0", NULL,
     XU "input_blocks.7.1.transformer_blocks.1.attn1.to_out.0.weight", -1, 0, 1},
    /* encoder 1: HF CLIP names on both sides */
    {"lora_te1_text_model_encoder_layers_0_self_attn_q_proj",
     "text_encoder.text_model.encoder.layers.0.self_attn.q_proj", XT1 "0.self_attn.q_proj.weight",
     -1, 1, 3},
    {"lora_te1_text_model_encoder_layers_1_mlp_fc1",
     "text_encoder.text_model.encoder.layers.1.mlp.fc1", XT1 "1.mlp.fc1.weight", -1, 1, 1},
    /* encoder 2: q, k, v are the row blocks of the fused in_proj_weight */
    {"lora_te2_text_model_encoder_layers_0_self_attn_q_proj",
     "text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj", XIN, 0, 1, 3},
    {"lora_te2_text_model_encoder_layers_0_self_attn_k_proj",
     "text_encoder_2.text_model.encoder.layers.0.self_attn.k_proj", XIN, 1, 1, 1},
    {"lora_te2_text_model_encoder_layers_0_self_attn_v_proj",
     "text_encoder_2.text_model.encoder.layers.0.self_attn.v_proj", XIN, 2, 1, 4},
    {"lora_te2_text_model_encoder_layers_0_self_attn_out_proj",
     "text_encoder_2.text_model.encoder.layers.0.self_attn.out_proj", XT2 "0.attn.out_proj.weight",
     -1, 1, 3},
    {"lora_te2_text_model_encoder_layers_1_mlp_fc1",
     "text_encoder_2.text_model.encoder.layers.1.mlp.fc1", XT2 "1.mlp.c_fc.weight", -1, 1, 0},
};
#define N_SDXL ((int)(sizeof sdxl_mods / sizeof sdxl_mods[0]))

static void sdxl_lora_equals_merged_checkpoint(void **state)
{
    (void)state;
    const char *ckpt = fixture_path("sdxl/tiny-sdxl.safetensors");
    gi_error err = {0};
    st_file *ck;
    assert_int_equal(st_open(ckpt, &ck, &err), GS_OK);
    rng_state = 12345;
    factors *f = make_factors(ck, sdxl_mods, N_SDXL);
    st_close(ck);
    const float te_w = 0.7f, unet_w = 1.3f; /* each part takes its own multiplier */
    char lora[512], peft[512];
    snprintf(lora, sizeof lora, "%s", write_lora("xl_kohya.safetensors", sdxl_mods, f, N_SDXL, 0));
    snprintf(peft, sizeof peft, "%s", write_lora("xl_peft.safetensors", sdxl_mods, f, N_SDXL, 1));
    const char *merged =
        write_merged(ckpt, "xl_merged.safetensors", sdxl_mods, f, N_SDXL, te_w, unet_w);

    gs_engine *eng = engine_f32();
    gs_model *base = load(eng, ckpt), *mm = load(eng, merged);
    uint64_t h0 = weights_hash(base);
    const char *prompt = "a lighthouse on a cliff at dusk, oil painting";
    gs_result *r0 = gen(eng, base, prompt, NULL, 0);

    printf("SDXL kohya LoRA (te %.2f, unet %.2f) against the merged copy:\n", te_w, unet_w);
    gs_lora l = {lora, te_w, unet_w};
    fold_ok(base, &l, 1);
    weights_agree(base, mm, sdxl_mods, N_SDXL);
    nets_agree(eng, base, mm, prompt);
    gs_result *ra = gen(eng, base, prompt, &l, 1), *rb = gen(eng, mm, prompt, NULL, 0);
    int d = max_level_diff(ra, rb), seen = max_level_diff(ra, r0);
    printf("  image: max |diff| %d levels from the merged copy's, %d from the base's\n", d, seen);
    assert_true(d <= 1);    /* measured 1 */
    assert_true(seen >= 8); /* the LoRA shows (measured 108) */

    /* PEFT names (unet., text_encoder., text_encoder_2.) fold the same deltas; the
       modules under kohya's LDM names have no PEFT form and stay out of both sides */
    printf("SDXL PEFT LoRA:\n");
    fold_ok(base, &(gs_lora){peft, te_w, unet_w}, 1);
    mod_spec pm[N_SDXL];
    int np = 0;
    for (int i = 0; i < N_SDXL; i++)
        if (sdxl_mods[i].peft)
            pm[np++] = sdxl_mods[i];
    for (size_t i = 0; i < base->index.n; i++) { /* layers only the LDM-named modules patch */
        const weight_entry *e = &base->index.e[i];
        if (is_target(sdxl_mods, N_SDXL, e->name) && !is_target(pm, np, e->name)) {
            st_file *c;
            assert_int_equal(st_open(ckpt, &c, &err), GS_OK);
            float *w = malloc(e->nbytes);
            assert_int_equal(st_to_f32(st_find(c, e->name), w, &err), GS_OK);
            void *copy;
            /* back to base (1x1/linear order) */
            assert_memory_equal(w, weight_entry_plain(e, &copy), e->nbytes);
            gi_aligned_free(copy);
            free(w);
            st_close(c);
        }
    }
    /* ...so compare only the layers PEFT patches */
    for (int i = 0; i < np; i++) {
        const weight_entry *x = weight_log_find(&base->index, pm[i].target),
                           *y = weight_log_find(&mm->index, pm[i].target);
        double e = rel_l2_f32(x->data, y->data, x->nbytes / sizeof(float));
        printf("  %-84s rel L2 %.2e\n", x->name, e);
        assert_true(e < WEIGHT_REL_L2);
    }

    /* switching: none -> base bit for bit; multipliers 0 -> base too */
    fold_ok(base, NULL, 0);
    assert_true(weights_hash(base) == h0);
    fold_ok(base, &l, 1);
    assert_true(weights_hash(base) != h0);
    fold_ok(base, &(gs_lora){lora, 0, 0}, 1);
    assert_true(weights_hash(base) == h0);
    gs_result *r1 = gen(eng, base, prompt, NULL, 0);
    assert_int_equal(max_level_diff(r1, r0), 0);
    gs_result_free(r0), gs_result_free(r1), gs_result_free(ra), gs_result_free(rb);
    gs_model_free(base);
    gs_model_free(mm);
    gs_engine_free(eng);
    free_factors(f, N_SDXL);
}

/* ---- SD 2.x: kohya names its OpenCLIP encoder in Hugging Face CLIP form ---- */

#define ST "cond_stage_model.model.transformer.resblocks."
#define SIN ST "1.attn.in_proj_weight"

static const mod_spec sd2_mods[] = {
    {"lora_unet_down_blocks_0_attentions_1_proj_in", NULL, XU "input_blocks.2.1.proj_in.weight", -1,
     0, 3},
    {"lora_unet_down_blocks_1_resnets_0_conv1", NULL, XU "input_blocks.4.0.in_layers.2.weight", -1,
     0, 1},
    {"lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn2_to_k", NULL,
     XU "output_blocks.11.1.transformer_blocks.0.attn2.to_k.weight", -1, 0, 3},
    {"lora_te_text_model_encoder_layers_1_self_attn_q_proj", NULL, SIN, 0, 1, 3},
    {"lora_te_text_model_encoder_layers_1_self_attn_k_proj", NULL, SIN, 1, 1, 1},
    {"lora_te_text_model_encoder_layers_1_self_attn_v_proj", NULL, SIN, 2, 1, 3},
    {"lora_te_text_model_encoder_layers_1_self_attn_out_proj", NULL, ST "1.attn.out_proj.weight",
     -1, 1, 4},
    {"lora_te_text_model_encoder_layers_0_mlp_fc1", NULL, ST "0.mlp.c_fc.weight", -1, 1, 3},
    {"lora_te_text_model_encoder_layers_0_mlp_fc2", NULL, ST "0.mlp.c_proj.weight", -1, 1, 0},
};
#define N_SD2 ((int)(sizeof sd2_mods / sizeof sd2_mods[0]))

static void sd2_lora_equals_merged_checkpoint(void **state)
{
    (void)state;
    const char *ckpt = fixture_path("sd2/tiny-sd2.safetensors");
    gi_error err = {0};
    st_file *ck;
    assert_int_equal(st_open(ckpt, &ck, &err), GS_OK);
    rng_state = 777;
    factors *f = make_factors(ck, sd2_mods, N_SD2);
    st_close(ck);
    write_lora("sd2_t.safetensors", sd2_mods, f, N_SD2, 0);
    const char *merged = write_merged(ckpt, "sd2_merged.safetensors", sd2_mods, f, N_SD2, 0.9, 0.9);
    gs_engine *eng = engine_f32();
    gs_model *base = load(eng, ckpt), *mm = load(eng, merged);
    uint64_t h0 = weights_hash(base);
    /* through a prompt tag: what is encoded is the prompt without it */
    const char *tagged = "a red lighthouse at dusk <lora:sd2_t:0.9>",
               *plain = "a red lighthouse at dusk ";
    gs_result *r0 = gen(eng, base, plain, NULL, 0);
    gs_result *ra = gen(eng, base, tagged, NULL, 0), *rb = gen(eng, mm, plain, NULL, 0);
    printf("SD2 kohya LoRA (HF names onto OpenCLIP) against the merged copy:\n");
    weights_agree(base, mm, sd2_mods, N_SD2);
    nets_agree(eng, base, mm, plain);
    int d = max_level_diff(ra, rb), seen = max_level_diff(ra, r0);
    printf("  image: max |diff| %d levels from the merged copy's, %d from the base's\n", d, seen);
    assert_true(d <= 1);    /* measured 1 */
    assert_true(seen >= 8); /* measured 55 */
    gs_result *r1 = gen(eng, base, plain, NULL, 0);
    assert_true(weights_hash(base) == h0);
    assert_int_equal(max_level_diff(r1, r0), 0);
    gs_result_free(r0), gs_result_free(r1), gs_result_free(ra), gs_result_free(rb);
    gs_model_free(base);
    gs_model_free(mm);
    gs_engine_free(eng);
    free_factors(f, N_SD2);
}

/* ---- hostile: a slice of the wrong width ---- */

static void wrong_slice_width_is_refused(void **state)
{
    (void)state;
    const char *ckpt = fixture_path("sdxl/tiny-sdxl.safetensors");
    gs_engine *eng = engine_f32();
    gs_model *m = load(eng, ckpt);
    uint64_t h0 = weights_hash(m);
    /* te2 is 40 wide: q's block is [40, 40]. A down of width 41, and an up the height of
       the whole fused weight (120), are each refused naming the module. */
    static const struct {
        int64_t down[2], up[2];
        const char *needle;
    } cases[] = {
        {{2, 41},
         {40, 2},
         "lora_te2_text_model_encoder_layers_0_self_attn_q_proj' has lora_down [2, 41]"},
        {{2, 40},
         {120, 2},
         "lora_te2_text_model_encoder_layers_0_self_attn_q_proj' has lora_up [120, 2]"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *key = "lora_te2_text_model_encoder_layers_0_self_attn_q_proj";
        size_t nd = (size_t)(cases[c].down[0] * cases[c].down[1]),
               nu = (size_t)(cases[c].up[0] * cases[c].up[1]);
        uint16_t *dd = calloc(nd, 2), *uu = calloc(nu, 2);
        for (size_t i = 0; i < nd; i++)
            dd[i] = f16_exact(0.25);
        for (size_t i = 0; i < nu; i++)
            uu[i] = f16_exact(0.25);
        out_tensor t[4] = {0};
        snprintf(t[0].name, sizeof t[0].name, "%s.lora_down.weight", key);
        snprintf(t[1].name, sizeof t[1].name, "%s.lora_up.weight", key);
        t[0].dtype = t[1].dtype = "F16";
        t[0].ndim = t[1].ndim = 2;
        memcpy(t[0].shape, cases[c].down, sizeof cases[c].down);
        memcpy(t[1].shape, cases[c].up, sizeof cases[c].up);
        t[0].data = dd, t[0].nbytes = nd * 2;
        t[1].data = uu, t[1].nbytes = nu * 2;
        /* a good module too: nothing of it may be written either */
        uint16_t ok[2 * 24];
        for (int i = 0; i < 48; i++)
            ok[i] = f16_exact(0.5);
        snprintf(t[2].name, sizeof t[2].name,
                 "lora_te1_text_model_encoder_layers_0_self_attn_k_proj.lora_down.weight");
        snprintf(t[3].name, sizeof t[3].name,
                 "lora_te1_text_model_encoder_layers_0_self_attn_k_proj.lora_up.weight");
        t[2].dtype = t[3].dtype = "F16";
        t[2].ndim = t[3].ndim = 2;
        memcpy(t[2].shape, (int64_t[]){2, 24}, 2 * sizeof(int64_t));
        memcpy(t[3].shape, (int64_t[]){24, 2}, 2 * sizeof(int64_t));
        t[2].data = t[3].data = ok;
        t[2].nbytes = t[3].nbytes = sizeof ok;
        const char *path = tmp_path("bad_slice.safetensors");
        write_st(path, t, 4, NULL);
        gs_params p;
        gs_params_init(&p);
        p.loras = &(gs_lora){path, 1, 1};
        p.n_loras = 1;
        p.lora_strict = 1;
        lora_request lr;
        gi_error err = {0};
        assert_int_not_equal(lora_select(m, &p, &lr, &err), GS_OK);
        printf("refused: %s\n", err.msg);
        assert_non_null(strstr(err.msg, cases[c].needle));
        assert_non_null(strstr(err.msg, "in_proj_weight' rows [0, 40)"));
        assert_true(weights_hash(m) == h0);
        /* lenient: left out and counted, the good module applied */
        p.lora_strict = 0;
        assert_int_equal(lora_select(m, &p, &lr, &err), GS_OK);
        assert_non_null(lr.warnings);
        assert_non_null(strstr(lr.warnings, "1 LoRA module left out"));
        assert_true(weights_hash(m) != h0);
        lora_request_free(&lr);
        fold_ok(m, NULL, 0);
        assert_true(weights_hash(m) == h0);
        free(dd), free(uu);
    }
    gs_model_free(m);
    gs_engine_free(eng);
}

/* ---- the mapping against the real files' names ---- */

/* The UNet's LoRA-able layers: 2-D and 4-D weights under model.diffusion_model. */
typedef struct name_set {
    const char **name;
    int *hits;
    int n;
} name_set;

static name_set unet_layers(const st_file *f)
{
    name_set s = {calloc(st_count(f), sizeof(char *)), calloc(st_count(f), sizeof(int)), 0};
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        size_t n = strlen(t->name);
        if (strncmp(t->name, XU, strlen(XU)) == 0 && n > 7 &&
            strcmp(t->name + n - 7, ".weight") == 0 && (t->ndim == 2 || t->ndim == 4))
            s.name[s.n++] = t->name;
    }
    return s;
}

static int find_name(const name_set *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0)
            return i;
    return -1;
}

/* Whether some layer of the set lies in the same LDM block as name (the block's path:
   "input_blocks.4.1." and the like, or a top-level layer's first component). */
static int block_exists(const name_set *s, const char *name)
{
    char prefix[256];
    const char *p = name + strlen(XU);
    int dots = strncmp(p, "middle_block.", 13) == 0 ? 2 : 3;
    size_t k = 0;
    for (int d = 0; p[k] && d < dots; k++)
        d += p[k] == '.';
    snprintf(prefix, sizeof prefix, "%s%.*s", XU, (int)k, p);
    for (int i = 0; i < s->n; i++)
        if (strncmp(s->name[i], prefix, strlen(prefix)) == 0)
            return 1;
    return 0;
}

static void try_name(const lora_unet_layout *L, name_set *s, const char *key, int *absent)
{
    lora_target t;
    if (lora_map_kohya(L, key, &t) != 0)
        return;
    char full[300];
    snprintf(full, sizeof full, "%s.weight", t.name);
    int i = find_name(s, full);
    if (i >= 0) {
        s->hits[i]++;
        return;
    }
    /* absent from the tiny file only where it is narrower than the real one: deeper
       transformer stacks, shortcuts where channels agree; the block itself exists */
    if (!(strstr(full, ".transformer_blocks.") || strstr(full, ".skip_connection.")) ||
        !block_exists(s, full))
        fprintf(stderr, "%s -> %s, which the file lacks\n", key, full);
    assert_true((strstr(full, ".transformer_blocks.") || strstr(full, ".skip_connection.")) &&
                block_exists(s, full));
    (*absent)++;
}

/* Every diffusers-path name of a UNet with L's levels (and more: refused ones are
   skipped) maps onto a layer of the file, each layer of the file exactly once; every
   layer's own LDM path (kohya's SDXL names) maps back onto it. */
static void unet_names_cover(const lora_unet_layout *L, const char *fixture)
{
    static const char *const res[] = {"conv1", "conv2", "time_emb_proj", "conv_shortcut"};
    static const char *const attn[] = {
        "attn1_to_q", "attn1_to_k", "attn1_to_v",     "attn1_to_out_0", "attn2_to_q",
        "attn2_to_k", "attn2_to_v", "attn2_to_out_0", "ff_net_0_proj",  "ff_net_2"};
    gi_error err = {0};
    st_file *f;
    assert_int_equal(st_open(fixture_path(fixture), &f, &err), GS_OK);
    name_set s = unet_layers(f);
    char key[256];
    int absent = 0;
    try_name(L, &s, "lora_unet_conv_in", &absent);
    try_name(L, &s, "lora_unet_conv_out", &absent);
    try_name(L, &s, "lora_unet_time_embedding_linear_1", &absent);
    try_name(L, &s, "lora_unet_time_embedding_linear_2", &absent);
    if (find_name(&s, XU "label_emb.0.0.weight") >= 0) {
        try_name(L, &s, "lora_unet_add_embedding_linear_1", &absent);
        try_name(L, &s, "lora_unet_add_embedding_linear_2", &absent);
    }
    for (int up = 0; up < 2; up++)
        for (int b = 0; b < 5; b++) {
            const char *blk = up ? "up_blocks" : "down_blocks";
            snprintf(key, sizeof key, "lora_unet_%s_%d_%s", blk, b,
                     up ? "upsamplers_0_conv" : "downsamplers_0_conv");
            try_name(L, &s, key, &absent);
            for (int i = 0; i < 4; i++) {
                for (size_t r = 0; r < 4; r++) {
                    snprintf(key, sizeof key, "lora_unet_%s_%d_resnets_%d_%s", blk, b, i, res[r]);
                    try_name(L, &s, key, &absent);
                }
                for (int pj = 0; pj < 2; pj++) {
                    snprintf(key, sizeof key, "lora_unet_%s_%d_attentions_%d_%s", blk, b, i,
                             pj ? "proj_out" : "proj_in");
                    try_name(L, &s, key, &absent);
                }
                for (int j = 0; j < 10; j++)
                    for (size_t a = 0; a < 10; a++) {
                        snprintf(key, sizeof key,
                                 "lora_unet_%s_%d_attentions_%d_transformer_blocks_%d_%s", blk, b,
                                 i, j, attn[a]);
                        try_name(L, &s, key, &absent);
                    }
            }
        }
    for (int i = 0; i < 3; i++)
        for (size_t r = 0; r < 4; r++) {
            snprintf(key, sizeof key, "lora_unet_mid_block_resnets_%d_%s", i, res[r]);
            try_name(L, &s, key, &absent);
        }
    try_name(L, &s, "lora_unet_mid_block_attentions_0_proj_in", &absent);
    try_name(L, &s, "lora_unet_mid_block_attentions_0_proj_out", &absent);
    for (int j = 0; j < 10; j++)
        for (size_t a = 0; a < 10; a++) {
            snprintf(key, sizeof key, "lora_unet_mid_block_attentions_0_transformer_blocks_%d_%s",
                     j, attn[a]);
            try_name(L, &s, key, &absent);
        }
    int once = 0;
    for (int i = 0; i < s.n; i++) {
        if (s.hits[i] != 1)
            fprintf(stderr, "%s: %d diffusers names map onto it\n", s.name[i], s.hits[i]);
        once += s.hits[i] == 1;
    }
    printf("%-36s %d UNet layers, each named once (%d names for layers the tiny file lacks)\n",
           fixture, s.n, absent);
    assert_int_equal(once, s.n);
    /* kohya's LDM names: the path itself */
    for (int i = 0; i < s.n; i++) {
        const char *p = s.name[i] + strlen(XU);
        int n = snprintf(key, sizeof key, "lora_unet_%.*s", (int)(strlen(p) - 7), p);
        for (char *c = key + 10; c < key + n; c++)
            *c = *c == '.' ? '_' : *c;
        lora_target t;
        assert_int_equal(lora_map_kohya(L, key, &t), 0);
        assert_int_equal(strncmp(t.name, s.name[i], strlen(t.name)), 0);
        assert_string_equal(s.name[i] + strlen(t.name), ".weight");
    }
    free(s.name);
    free(s.hits);
    st_close(f);
}

/* Every text-encoder layer name, kohya and PEFT, maps onto a tensor of the file: HF
   CLIP weights once each, a fused in_proj_weight once per q/k/v row block. */
static void te_names_cover(const lora_unet_layout *L, const char *fixture, const char *kohya,
                           const char *peft, int layers)
{
    static const char *const leaf[][2] = {
        {"self_attn_q_proj", "self_attn.q_proj"},
        {"self_attn_k_proj", "self_attn.k_proj"},
        {"self_attn_v_proj", "self_attn.v_proj"},
        {"self_attn_out_proj", "self_attn.out_proj"},
        {"mlp_fc1", "mlp.fc1"},
        {"mlp_fc2", "mlp.fc2"},
    };
    gi_error err = {0};
    st_file *f;
    assert_int_equal(st_open(fixture_path(fixture), &f, &err), GS_OK);
    int slices = 0;
    for (int i = 0; i < layers; i++)
        for (int k = 0; k < 6; k++) {
            char key[256], pkey[256], name[300];
            lora_target t, u;
            snprintf(key, sizeof key, "%stext_model_encoder_layers_%d_%s", kohya, i, leaf[k][0]);
            snprintf(pkey, sizeof pkey, "%stext_model.encoder.layers.%d.%s", peft, i, leaf[k][1]);
            assert_int_equal(lora_map_kohya(L, key, &t), 0);
            assert_int_equal(lora_map_peft(L, pkey, &u), 0);
            assert_string_equal(t.name, u.name);
            assert_int_equal(t.slice, u.slice);
            assert_int_equal(t.part, LORA_TE);
            snprintf(name, sizeof name, "%s%s", t.name, t.slice >= 0 ? "_weight" : ".weight");
            const st_tensor *w = st_find(f, name);
            if (!w)
                fprintf(stderr, "%s -> %s, which %s lacks\n", key, name, fixture);
            assert_non_null(w);
            if (t.slice >= 0) {
                assert_int_equal(t.slice, k); /* q, k, v: rows in that order */
                assert_int_equal(w->shape[0], 3 * w->shape[1]);
                slices++;
            }
        }
    printf("%-36s %s: %d layers x 6 names, %d fused slices\n", fixture, kohya, layers, slices);
    st_close(f);
}

static void names_map_onto_the_files(void **state)
{
    (void)state;
    unet_names_cover(&lora_layout_sd1, "tiny-sd15.safetensors");
    unet_names_cover(&lora_layout_sd2, "sd2/tiny-sd2.safetensors");
    unet_names_cover(&lora_layout_sdxl, "sdxl/tiny-sdxl.safetensors");
    te_names_cover(&lora_layout_sd1, "tiny-sd15.safetensors", "lora_te_", "text_encoder.", 3);
    te_names_cover(&lora_layout_sd2, "sd2/tiny-sd2.safetensors", "lora_te_", "text_encoder.", 3);
    te_names_cover(&lora_layout_sdxl, "sdxl/tiny-sdxl.safetensors", "lora_te1_", "text_encoder.",
                   3);
    te_names_cover(&lora_layout_sdxl, "sdxl/tiny-sdxl.safetensors", "lora_te2_", "text_encoder_2.",
                   3);
    /* each family's own prefixes only */
    lora_target t;
    assert_int_equal(
        lora_map_kohya(&lora_layout_sdxl, "lora_te_text_model_encoder_layers_0_mlp_fc1", &t), -1);
    assert_int_equal(
        lora_map_kohya(&lora_layout_sd2, "lora_te2_text_model_encoder_layers_0_mlp_fc1", &t), -1);
    assert_int_equal(
        lora_map_peft(&lora_layout_sd1, "text_encoder_2.text_model.encoder.layers.0.mlp.fc1", &t),
        -1);
    assert_int_equal(lora_map_kohya(&lora_layout_sdxl, "lora_unet_input_blocks_4_1_norm", &t), -1);
    assert_int_equal(lora_map_kohya(&lora_layout_sdxl, "lora_unet_input_blocks_4", &t), -1);
    assert_int_equal(lora_map_kohya(&lora_layout_sdxl, "lora_unet_input_blocks_1_0", &t), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_map_onto_the_files),
        cmocka_unit_test(sdxl_lora_equals_merged_checkpoint),
        cmocka_unit_test(sd2_lora_equals_merged_checkpoint),
        cmocka_unit_test(wrong_slice_width_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
