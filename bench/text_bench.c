/*
 * text_bench - the text encoders at their real sizes, random weights built in
 * memory (no checkpoint needed): CLIP ViT-L (SD1, SDXL encoder 1) and OpenCLIP
 * ViT-bigG (SDXL encoder 2), the latter with its in_proj as one fused GEMM and
 * as three (q, k, v views of the same matrix), so the two can be compared.
 * Best of REPS after a warm-up, f32. Usage: text_bench [threads]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "compute/compute.h"
#include "model/clip_text_internal.h"
#include "bench_util.h"

#define REPS 3
#define VOCAB 1024 /* the lookup costs nothing; a small table keeps memory down */

static float *fill(size_t n, float v)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n && p; i++)
        p[i] = v;
    return p;
}

static linear_weights lin(int out, int in)
{
    return (linear_weights){.w = random_floats((size_t)out * in, 0.04f),
                            .b = random_floats((size_t)out, 0.02f),
                            .out = out,
                            .in = in};
}

static norm_weights norm(int c)
{
    return (norm_weights){.g = fill((size_t)c, 1.0f), .b = fill((size_t)c, 0.0f), .c = c};
}

/* q, k, v as three GEMMs on views of each layer's fused in_proj [3w, w] (rows q, k, v). */
static void unfuse(clip_text *m)
{
    size_t ww = (size_t)m->width * m->width;
    for (int i = 0; i < m->layers; i++) {
        clip_layer *L = &m->layer[i];
        linear_weights *t[3] = {&L->q, &L->k, &L->v};
        for (int k = 0; k < 3; k++)
            *t[k] = (linear_weights){.w = L->qkv.w + k * ww,
                                     .b = L->qkv.b + k * m->width,
                                     .out = m->width,
                                     .in = m->width};
        L->qkv.out = 0;
    }
}

/* A random encoder; fused: OpenCLIP's one in_proj (else q, k, v as three GEMMs). */
static clip_text *make(int width, int layers, int heads, int gelu_erf, int fused, int proj)
{
    clip_text *m = calloc(1, sizeof *m);
    m->width = width;
    m->layers = layers;
    m->heads = heads;
    m->positions = 77;
    m->vocab = VOCAB;
    m->mlp = 4 * width;
    m->gelu_erf = gelu_erf;
    m->tok_emb = random_floats((size_t)VOCAB * width, 0.1f);
    m->pos_emb = random_floats((size_t)77 * width, 0.1f);
    m->layer = calloc((size_t)layers, sizeof *m->layer);
    for (int i = 0; i < layers; i++) {
        clip_layer *L = &m->layer[i];
        L->ln1 = norm(width);
        L->ln2 = norm(width);
        L->qkv = lin(3 * width, width);
        L->o = lin(width, width);
        L->fc1 = lin(m->mlp, width);
        L->fc2 = lin(width, m->mlp);
    }
    m->final_ln = norm(width);
    if (!fused)
        unfuse(m);
    if (proj) {
        m->proj = proj;
        m->proj_w = random_floats((size_t)width * proj, 0.04f);
    }
    return m;
}

static void run(const char *name, clip_text *m, gi_compute *cx, int n_seq,
                const clip_text_take *take, int pooled)
{
    int32_t *ids = calloc((size_t)n_seq * 77, sizeof *ids);
    for (int i = 0; i < n_seq * 77; i++)
        ids[i] = i % 77 < 10 ? 1 + rand() % (VOCAB - 2) : VOCAB - 1;
    float *hidden = malloc((size_t)n_seq * 77 * m->width * sizeof *hidden);
    float *pool = pooled ? malloc((size_t)n_seq * m->proj * sizeof *pool) : NULL;
    gi_error err = {0};
    double best = 1e30;
    for (int r = 0; r <= REPS; r++) {
        double t0 = now_s();
        if (clip_text_encode_take(m, cx, ids, n_seq, take, hidden, pool, &err) != GS_OK) {
            fprintf(stderr, "%s: %s\n", name, err.msg);
            exit(1);
        }
        double t = now_s() - t0;
        if (r > 0 && t < best)
            best = t;
    }
    printf("%-40s %d seq: %7.1f ms\n", name, n_seq, best * 1e3);
    free(ids);
    free(hidden);
    free(pool);
}

/* bigG's attention input projection alone, fused against three GEMMs, alternating so
   that a busy machine slows both alike; best of 20 each. */
static void in_proj_alone(gi_compute *cx, int n_seq)
{
    const int w = 1280;
    long rows = (long)n_seq * 77;
    linear_weights qkv = lin(3 * w, w);
    size_t ww = (size_t)w * w;
    linear_weights part[3];
    for (int k = 0; k < 3; k++)
        part[k] = (linear_weights){.w = qkv.w + k * ww, .b = qkv.b + k * w, .out = w, .in = w};
    float *x = random_floats((size_t)rows * w, 1.0f), *y = malloc((size_t)rows * 3 * w * sizeof *y);
    gi_error err = {0};
    double best[2] = {1e30, 1e30};
    for (int r = 0; r < 41; r++) {
        int kind = r & 1;
        double t0 = now_s();
        gs_status st = GS_OK;
        if (kind == 0)
            st = op_linear(cx, &qkv, x, rows, y, &err);
        else
            for (int k = 0; k < 3 && st == GS_OK; k++)
                st = op_linear(cx, &part[k], x, rows, y + (size_t)k * rows * w, &err);
        double t = now_s() - t0;
        if (st != GS_OK)
            exit(1);
        if (r > 1 && t < best[kind])
            best[kind] = t;
    }
    printf("bigG in_proj [%ld x 1280] -> 3840: fused %.2f ms, three GEMMs %.2f ms\n", rows,
           best[0] * 1e3, best[1] * 1e3);
    free(x);
    free(y);
    free(qkv.w);
    free(qkv.b);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 0;
    gi_compute *cx;
    gi_error err = {0};
    if (compute_create(threads, &cx, &err) != GS_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int saved = compute_enter(cx);
    printf("threads %d, best of %d\n", compute_threads(cx), REPS);
    for (int n = 1; n <= 2; n++)
        in_proj_alone(cx, n);
    if (argc > 2) /* "text_bench T inproj": the projection alone */
        return 0;
    clip_text_take sd1 = {1, 1}, sdxl = {2, 0};
    clip_text *vitl = make(768, 12, 12, 0, 0, 0);
    for (int n = 1; n <= 2; n++) {
        run("ViT-L (SD1, clip skip 1)", vitl, cx, n, &sd1, 0);
        run("ViT-L (SDXL enc1, penultimate)", vitl, cx, n, &sdxl, 0);
    }
    clip_text *bigg = make(1280, 32, 20, 1, 1, 1280);
    for (int n = 1; n <= 2; n++)
        run("bigG (SDXL enc2 + pooled), fused in_proj", bigg, cx, n, &sdxl, 1);
    unfuse(bigg);
    for (int n = 1; n <= 2; n++)
        run("bigG (SDXL enc2 + pooled), q/k/v GEMMs", bigg, cx, n, &sdxl, 1);
    compute_leave(saved);
    compute_free(cx);
    return 0; /* the instances are left to the exit */
}
