/*
 * conv_winograd - 3x3 stride-1 "same" convolutions by Winograd's F(2x2, 3x3)
 * on NHWC maps: 16 multiplications per 2x2 outputs and channel pair instead of
 * 36, so the GEMM work is 2.25x smaller than im2col's.
 *
 * Per block of 2x2 output tiles: each tile's 4x4 input patch becomes 16
 * transformed values per channel (V = B^T d B, channels contiguous, so the
 * transforms vectorize over channels); 16 GEMMs multiply V[p] [tiles, cin] by
 * the transformed filters U[p] [cout, cin]; the 16 products per tile and
 * channel return to 2x2 outputs (Y = A^T M A) with the bias added. U = G g G^T
 * is computed per call from the stored [cout, 3, 3, cin] weights: cheap next to
 * the GEMMs at the sizes this runs at, and no second copy of the weights stays
 * resident.
 *
 * Rounding differs from im2col's (sums regrouped through the transforms); the
 * error stays at f32 level (tests compare both with a double reference).
 */
#include "compute/conv_winograd.h"

#include <string.h>

#include "compute/gemm.h"
#include "compute/vec_math.h"

#define TILE_BLOCK_FLOATS (6L << 20) /* V plus M per block of tiles: 24 MB */

typedef struct wino_job {
    const float *x;     /* [n, h, w, cin] */
    float *y;           /* [n, h, w, cout] */
    const float *w;     /* [cout, 3, 3, cin] */
    const float *b;     /* [cout] or NULL */
    float *u;           /* [16][cout][cin] */
    float *v;           /* [16][tiles][cin] of one block */
    float *m;           /* [16][tiles][cout] of one block */
    const float *zeros; /* [cin] of 0: the padding's source */
    float *sink;        /* [threads][cout]: where cropped outputs go */
    int n, h, w_, cin, cout, th, tw;
    long t0, nt; /* the block: tiles t0 .. t0 + nt - 1 over n * th * tw */
} wino_job;

/* U[p][o][:] = (G g G^T)[p] for each output channel o, over input channels. */
GS_VEC_CLONES static void filters(void *p, int ith, int nth)
{
    const wino_job *j = p;
    long o0, o1;
    threadpool_range(j->cout, ith, nth, &o0, &o1);
    size_t ci = (size_t)j->cin, plane = (size_t)j->cout * ci;
    for (long o = o0; o < o1; o++) {
        const float *g = j->w + (size_t)o * 9 * ci; /* g[(ky*3+kx)*cin + c] */
        float *u = j->u + (size_t)o * ci;
        for (size_t c = 0; c < ci; c++) {
            float t[4][3]; /* G g: rows of the 4x3 intermediate */
            for (int kx = 0; kx < 3; kx++) {
                float g0 = g[(0 * 3 + kx) * ci + c], g1 = g[(1 * 3 + kx) * ci + c];
                float g2 = g[(2 * 3 + kx) * ci + c];
                t[0][kx] = g0;
                t[1][kx] = 0.5f * (g0 + g1 + g2);
                t[2][kx] = 0.5f * (g0 - g1 + g2);
                t[3][kx] = g2;
            }
            for (int r = 0; r < 4; r++) {
                u[(r * 4 + 0) * plane + c] = t[r][0];
                u[(r * 4 + 1) * plane + c] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
                u[(r * 4 + 2) * plane + c] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
                u[(r * 4 + 3) * plane + c] = t[r][2];
            }
        }
    }
}

/* V[p][tile][:] = (B^T d B)[p] for the tiles of the block. */
GS_VEC_CLONES static void inputs(void *p, int ith, int nth)
{
    const wino_job *j = p;
    long a, e;
    threadpool_range(j->nt, ith, nth, &a, &e);
    size_t ci = (size_t)j->cin, plane = (size_t)j->nt * ci;
    for (long i = a; i < e; i++) {
        long t = j->t0 + i, per = (long)j->th * j->tw;
        int img = (int)(t / per), ty = (int)(t % per / j->tw), tx = (int)(t % j->tw);
        const float *src[4][4];
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++) {
                int yy = 2 * ty - 1 + r, xx = 2 * tx - 1 + c;
                src[r][c] = yy < 0 || yy >= j->h || xx < 0 || xx >= j->w_
                                ? j->zeros
                                : j->x + (((size_t)img * j->h + yy) * j->w_ + xx) * ci;
            }
        float *v = j->v + (size_t)i * ci;
        for (size_t c = 0; c < ci; c++) {
            float d[4][4], s[4][4];
            for (int r = 0; r < 4; r++)
                for (int q = 0; q < 4; q++)
                    d[r][q] = src[r][q][c];
            for (int q = 0; q < 4; q++) { /* B^T d */
                s[0][q] = d[0][q] - d[2][q];
                s[1][q] = d[1][q] + d[2][q];
                s[2][q] = d[2][q] - d[1][q];
                s[3][q] = d[1][q] - d[3][q];
            }
            for (int r = 0; r < 4; r++) { /* (B^T d) B */
                v[(r * 4 + 0) * plane + c] = s[r][0] - s[r][2];
                v[(r * 4 + 1) * plane + c] = s[r][1] + s[r][2];
                v[(r * 4 + 2) * plane + c] = s[r][2] - s[r][1];
                v[(r * 4 + 3) * plane + c] = s[r][1] - s[r][3];
            }
        }
    }
}

/* y = A^T M A (+ bias) for the tiles of the block, cropped at the map's edge. */
GS_VEC_CLONES static void outputs(void *p, int ith, int nth)
{
    const wino_job *j = p;
    long a, e;
    threadpool_range(j->nt, ith, nth, &a, &e);
    size_t co = (size_t)j->cout, plane = (size_t)j->nt * co;
    for (long i = a; i < e; i++) {
        long t = j->t0 + i, per = (long)j->th * j->tw;
        int img = (int)(t / per), ty = (int)(t % per / j->tw), tx = (int)(t % j->tw);
        float *dst[2][2];
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < 2; c++) {
                int yy = 2 * ty + r, xx = 2 * tx + c;
                dst[r][c] = yy >= j->h || xx >= j->w_
                                ? j->sink + (size_t)ith * co
                                : j->y + (((size_t)img * j->h + yy) * j->w_ + xx) * co;
            }
        const float *m = j->m + (size_t)i * co;
        for (size_t o = 0; o < co; o++) {
            float s[2][4];
            for (int q = 0; q < 4; q++) { /* A^T M */
                float m0 = m[(0 * 4 + q) * plane + o], m1 = m[(1 * 4 + q) * plane + o];
                float m2 = m[(2 * 4 + q) * plane + o], m3 = m[(3 * 4 + q) * plane + o];
                s[0][q] = m0 + m1 + m2;
                s[1][q] = m1 - m2 - m3;
            }
            float bias = j->b ? j->b[o] : 0.0f;
            for (int r = 0; r < 2; r++) {
                float y0 = s[r][0] + s[r][1] + s[r][2] + bias;
                float y1 = s[r][1] - s[r][2] - s[r][3] + bias;
                dst[r][0][o] = y0;
                dst[r][1][o] = y1;
            }
        }
    }
}

gs_status conv3x3_winograd(gs_compute *cx, const conv_weights *cw, const float *x, int n, int h,
                           int w, float *y, gs_error *err)
{
    int th = (h + 1) / 2, tw = (w + 1) / 2;
    long tiles = (long)n * th * tw;
    long per_tile = 16L * (cw->cin + cw->cout);
    long block = TILE_BLOCK_FLOATS / per_tile;
    block = block < 64 ? 64 : block;
    block = block > tiles ? tiles : block;
    arena_mark mk = arena_get_mark(&cx->scratch);
    float *u = arena_floats(&cx->scratch, (size_t)16 * cw->cout * cw->cin);
    float *v = arena_floats(&cx->scratch, (size_t)16 * block * cw->cin);
    float *m = arena_floats(&cx->scratch, (size_t)16 * block * cw->cout);
    float *zeros = arena_floats(&cx->scratch, (size_t)cw->cin);
    float *sink = arena_floats(&cx->scratch, (size_t)threadpool_size(cx->tp) * cw->cout);
    if (!u || !v || !m || !zeros || !sink) {
        arena_release(&cx->scratch, mk);
        return gs_fail(err, GS_ERR_NO_MEMORY, "out of memory in a convolution");
    }
    cx->flops += 2.0 * n * h * w * cw->cout * 9.0 * cw->cin; /* counted as the direct conv */
    memset(zeros, 0, (size_t)cw->cin * sizeof *zeros);
    wino_job j = {x, y, cw->w, cw->b,   u,        v,  m,  zeros, sink,
                  n, h, w,     cw->cin, cw->cout, th, tw, 0,     0};
    threadpool_run(cx->tp, filters, &j);
    for (long t0 = 0; t0 < tiles; t0 += block) {
        j.t0 = t0;
        j.nt = tiles - t0 < block ? tiles - t0 : block;
        j.v = v;
        j.m = m;
        threadpool_run(cx->tp, inputs, &j);
        size_t vp = (size_t)j.nt * cw->cin, mp = (size_t)j.nt * cw->cout;
        size_t up = (size_t)cw->cout * cw->cin;
        for (int p = 0; p < 16; p++)
            gemm_f32((int)j.nt, cw->cout, cw->cin, v + p * vp, cw->cin, u + p * up, cw->cin, 1,
                     0.0f, m + p * mp, cw->cout);
        threadpool_run(cx->tp, outputs, &j);
    }
    arena_release(&cx->scratch, mk);
    return GS_OK;
}
