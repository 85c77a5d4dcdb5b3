/*
 * clip_vision - the ViT forward pass. Tokens are rows [n * (1 + grid²), width]:
 * the class token first, then the patches in raster order, as the reference
 * flattens its conv output.
 */
#include "model/clip_vision.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "model/clip_block.h"

#define CLIP_LN_EPS 1e-5f

struct clip_vision {
    weight_store store;
    clip_block_shape shape;
    int layers, patch, grid, size, proj;
    linear_weights patch_w; /* [width, 3*patch*patch] in (c, ky, kx) order, no bias */
    float *class_emb;       /* [width] */
    float *pos_emb;         /* [1 + grid², width] */
    norm_weights pre_ln;
    clip_layer *layer; /* [layers] */
    norm_weights post_ln;
    float *proj_w;   /* [proj, width] (Hugging Face) or [width, proj] (open_clip) ... */
    int proj_by_row; /* ... 1 for the latter: out = cls @ proj_w */
};

/* A tensor layout of the image tower (a row, so another is a row, not a branch). */
typedef struct vision_layout {
    const char *what;
    const char *patch, *class_emb, *pos_emb, *pre_ln, *post_ln, *proj;
    int proj_by_row; /* proj is [width, proj] (x @ proj), else [proj, width] (a linear) */
    clip_block_names block;
} vision_layout;

static const vision_layout LAYOUTS[] = {
    {"Hugging Face CLIPModel", "vision_model.embeddings.patch_embedding.weight",
     "vision_model.embeddings.class_embedding", "vision_model.embeddings.position_embedding.weight",
     "vision_model.pre_layrnorm" /* sic: transformers' name */, "vision_model.post_layernorm",
     "visual_projection.weight", 0, CLIP_BLOCK_NAMES_HF("vision_model.encoder.layers.%d.")},
    {"open_clip", "visual.conv1.weight", "visual.class_embedding", "visual.positional_embedding",
     "visual.ln_pre", "visual.ln_post", "visual.proj", 1,
     CLIP_BLOCK_NAMES_OPENCLIP("visual.transformer.resblocks.%d.")},
};

static gs_status load_fail(clip_vision *m, gs_status st)
{
    clip_vision_free(m);
    return st;
}

gs_status clip_vision_load(const st_file *f, clip_vision **out, gi_error *err)
{
    *out = NULL;
    clip_vision *m = gi_calloc(1, sizeof *m);
    if (!m)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    weight_loader l = wl_begin(f, "", &m->store, 0, NULL, err);
    const vision_layout *lo = NULL;
    for (size_t i = 0; i < sizeof LAYOUTS / sizeof LAYOUTS[0] && !lo; i++)
        if (wl_find(&l, LAYOUTS[i].patch))
            lo = &LAYOUTS[i];
    const st_tensor *t = lo ? wl_find(&l, lo->patch) : NULL;
    if (!t || t->ndim != 4 || !wl_find(&l, lo->pos_emb) || !wl_find(&l, lo->proj))
        return load_fail(m, gi_fail(err, GS_ERR_FORMAT,
                                    "no CLIP image tower: expected Hugging Face CLIPModel "
                                    "tensors (%s, %s, %s) or open_clip's (visual.*)",
                                    LAYOUTS[0].patch, LAYOUTS[0].pos_emb, LAYOUTS[0].proj));
    int w = (int)t->shape[0];
    m->patch = (int)t->shape[2];
    long tokens = (long)wl_dim(&l, lo->pos_emb, 0);
    while ((long)(m->grid + 1) * (m->grid + 1) + 1 <= tokens)
        m->grid++;
    m->size = m->grid * m->patch;
    m->proj_by_row = lo->proj_by_row;
    m->proj = (int)wl_dim(&l, lo->proj, lo->proj_by_row ? 1 : 0);
    m->shape.width = w;
    m->shape.heads = w >= 64 ? w / 64 : 1; /* OpenAI CLIP's rule */
    m->shape.gelu_erf = 0;                 /* OpenAI's weights: QuickGELU in either layout */
    char n[256], p[128];
    snprintf(p, sizeof p, lo->block.layer, 0);
    m->shape.mlp = (int)wl_dim(&l, wl_name(n, sizeof n, "%s%s.weight", p, lo->block.fc1), 0);
    m->layers = clip_block_count(&l, &lo->block);
    if (w <= 0 || t->shape[1] != 3 || t->shape[3] != m->patch || m->patch <= 0 ||
        (long)m->grid * m->grid + 1 != tokens || m->shape.mlp <= 0 || m->layers == 0 ||
        m->proj <= 0 || w % m->shape.heads != 0)
        return load_fail(m, gi_fail(err, GS_ERR_FORMAT,
                                    "the CLIP image tower's tensors (%s) are malformed (width %d, "
                                    "patch %d, %ld positions, %d layers)",
                                    lo->what, w, m->patch, tokens, m->layers));
    int k = 3 * m->patch * m->patch;
    /* [w, 3, p, p] as stored is [w, 3*p*p] in (c, ky, kx) order: the patch rows' order */
    m->patch_w = (linear_weights){.out = w, .in = k};
    m->patch_w.w = wl_tensor(&l, lo->patch, 4, (int64_t[]){w, 3, m->patch, m->patch});
    m->class_emb = wl_tensor(&l, lo->class_emb, 1, (int64_t[]){w});
    m->pos_emb = wl_tensor(&l, lo->pos_emb, 2, (int64_t[]){tokens, w});
    wl_norm(&l, lo->pre_ln, w, &m->pre_ln);
    m->layer = gi_calloc((size_t)m->layers, sizeof *m->layer);
    if (!m->layer)
        return load_fail(m, gi_fail(err, GS_ERR_NO_MEMORY, "out of memory"));
    for (int i = 0; i < m->layers; i++)
        clip_block_load(&l, &lo->block, i, &m->shape, &m->layer[i]);
    wl_norm(&l, lo->post_ln, w, &m->post_ln);
    if (lo->proj_by_row)
        m->proj_w = wl_tensor(&l, lo->proj, 2, (int64_t[]){w, m->proj});
    else
        m->proj_w = wl_tensor(&l, lo->proj, 2, (int64_t[]){m->proj, w});
    if (l.st != GS_OK)
        return load_fail(m, l.st);
    *out = m;
    return GS_OK;
}

int clip_vision_image_size(const clip_vision *m)
{
    return m->size;
}

int clip_vision_proj_dim(const clip_vision *m)
{
    return m->proj;
}

/* rows [n * grid², 3*p*p]: each patch's pixels in (c, ky, kx) order. */
static void gather_patches(const clip_vision *m, const float *pixels, int n, float *rows)
{
    const int p = m->patch, g = m->grid, S = m->size, k = 3 * p * p;
    for (int i = 0; i < n; i++)
        for (int py = 0; py < g; py++)
            for (int px = 0; px < g; px++) {
                float *r = rows + ((size_t)(i * g + py) * g + px) * k;
                for (int c = 0; c < 3; c++)
                    for (int ky = 0; ky < p; ky++)
                        memcpy(r + (c * p + ky) * p,
                               pixels + (((size_t)i * 3 + c) * S + py * p + ky) * S + px * p,
                               (size_t)p * sizeof *r);
            }
}

gs_status clip_vision_encode(clip_vision *m, gi_compute *cx, const float *pixels, int n, float *out,
                             gi_error *err)
{
    const int w = m->shape.width, g2 = m->grid * m->grid, T = 1 + g2;
    const long rows = (long)n * T;
    if (n < 1)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "image encode: %d images", n);
    gs_status st = compute_begin(cx, err);
    if (st != GS_OK)
        return st;
    arena *a = &cx->scratch;
    float *patches = arena_floats(a, (size_t)n * g2 * m->patch_w.in); /* [n*g², 3p²] */
    float *emb = arena_floats(a, (size_t)n * g2 * w);                 /* [n*g², w] */
    float *x = arena_floats(a, (size_t)rows * w);                     /* [n*T, w] */
    float *cls = arena_floats(a, (size_t)n * w);                      /* [n, w] */
    clip_bufs b;
    if (!patches || !emb || !x || !cls)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in the image encoder");
    if ((st = clip_bufs_alloc(cx, rows, &m->shape, &b, err)) != GS_OK)
        return st;
    gather_patches(m, pixels, n, patches);
    if ((st = op_linear(cx, &m->patch_w, patches, (long)n * g2, emb, err)) != GS_OK)
        return st;
    for (int i = 0; i < n; i++) {
        float *xi = x + (size_t)i * T * w;
        for (int c = 0; c < w; c++)
            xi[c] = m->class_emb[c] + m->pos_emb[c];
        for (int t = 1; t < T; t++)
            for (int c = 0; c < w; c++)
                xi[(size_t)t * w + c] =
                    emb[((size_t)i * g2 + t - 1) * w + c] + m->pos_emb[t * w + c];
    }
    op_layer_norm(cx, &m->pre_ln, x, rows, w, CLIP_LN_EPS, x);
    if ((st = clip_blocks_run(cx, m->layer, &m->shape, x, n, T, 0, 0, m->layers, &b, err)) != GS_OK)
        return st;
    for (int i = 0; i < n; i++)
        memcpy(cls + (size_t)i * w, x + (size_t)i * T * w, (size_t)w * sizeof *cls);
    op_layer_norm(cx, &m->post_ln, cls, n, w, CLIP_LN_EPS, cls);
    /* n rows of [w] x [w, proj]: small, so plain loops in either orientation */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m->proj; j++) {
            float d = 0;
            for (int c = 0; c < w; c++)
                d += cls[(size_t)i * w + c] * (m->proj_by_row ? m->proj_w[(size_t)c * m->proj + j]
                                                              : m->proj_w[(size_t)j * w + c]);
            out[(size_t)i * m->proj + j] = d;
        }
    return GS_OK;
}

void clip_vision_free(clip_vision *m)
{
    if (!m)
        return;
    weight_store_free(&m->store);
    gi_free(m->layer);
    gi_free(m);
}
