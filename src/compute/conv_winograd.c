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
 * bf16 engines on CPUs where bf16 outruns f32 (cx->winograd_bf16) transform
 * into bf16: V and U rounded to bf16, the 16 GEMMs bf16 with f32 sums, M and
 * the output transform f32. On AMD Zen 4 that made the 512x512 VAE decode 1.6x
 * faster than f32 Winograd GEMMs, which had been slower there than a bf16
 * im2col GEMM (bench/RESULTS.md section 11). Otherwise bf16 weights are
 * widened to f32 as their filters are transformed and the GEMMs run in f32.
 *
 * With AVX-512 (AVX512_BF16 for bf16) and whole blocks of 32 output channels
 * (cx->winograd_fused), each thread instead takes groups of 8 tiles through
 * input transform, products and output transform in its own cache
 * (conv_winograd_groups.c): V and M never reach memory, and the VAE's
 * 128-channel 512x512 layers run 1.8x faster in bf16 than with oneDNN's GEMMs
 * between memory-bound transforms.
 *
 * Rounding differs from im2col's (sums regrouped through the transforms); the
 * f32 error stays at f32 level, the bf16 one about 2.5x im2col bf16's (tests
 * compare each with a double reference).
 */
#include "compute/conv_winograd.h"

#include <string.h>

#include "common/alloc.h"
#include "compute/conv_winograd_groups.h"
#include "compute/gemm.h"
#include "compute/gemm_bf16.h"
#include "compute/half_span.h"
#include "compute/half.h"
#include "compute/op_prof.h"
#include "compute/vec_math.h"

#define TILE_BLOCK_FLOATS (6L << 20) /* V plus M per block of tiles: 24 MB */
/* Transformed filters are 16/9 of the weights for the whole layer. bf16
   engines are the memory-lean choice: their transformed filters stay under 64
   MB (in bf16 all of SD1.5's layers at 32x32 fit, 1920->640 at 39 MB; widened
   to f32 the two widest stay on im2col); f32 engines allow 128 MB (2.8% faster
   step at 512x512 than 64). */
#define MAX_FILTER_BYTES_BF16 (64L << 20)
#define MAX_FILTER_BYTES_F32 (128L << 20)

typedef struct wino_job {
    const float *x;     /* [n, h, w, cin] */
    float *y;           /* [n, row1 - row0, w, cout], pixels ys floats apart */
    const float *w;     /* [cout, 3, 3, cin], or NULL and ... */
    const uint16_t *wb; /* ... the same in bf16, or f16 where wb_f16 is set */
    int wb_f16;
    float *wrow;         /* [threads][9 * cin]: a 16-bit filter as f32 */
    const float *b;      /* [cout] or NULL */
    float *u;            /* [16][cout][cin] */
    float *v;            /* [16][tiles][cin] of one block; tile groups: per thread, as m */
    uint16_t *u16, *v16; /* the same in bf16, where bf16 is set */
    int bf16;
    int fused; /* per group of tiles in each thread, U packed for it */
    float *m;  /* [16][tiles][cout] of one block; tile groups: [threads][16][WINO_GROUP][cout] */
    const float *zeros;              /* [cin] of 0: the padding's source */
    float *sink;                     /* [threads][cout]: where cropped outputs go */
    int n, h, w_, cin, cout, th, tw; /* h, w_: the output (= upsampled input) size */
    int row0, row1, ys, accumulate;  /* output rows written (th tile rows from row0 / 2) */
    int up, sw, srow0;               /* nearest upsampling; source width; first row held */
    long t0, nt;                     /* the block: tiles t0 .. t0 + nt - 1 over n * th * tw */
} wino_job;

/* f32 -> bf16, round to nearest even, as f32_to_bf16 (no NaN reaches here that
   the GEMMs would not spread anyway); inline so the transforms' stores vectorize */
static inline uint16_t bf16_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Tile t of the block's numbering (image, tile row, tile column). */
static inline void tile_at(const wino_job *j, long t, int *img, int *ty, int *tx)
{
    long per = (long)j->th * j->tw;
    *img = (int)(t / per);
    *ty = (int)(t % per / j->tw) + j->row0 / 2;
    *tx = (int)(t % j->tw);
}

/* U[p][o][:] = (G g G^T)[p] for each output channel o, over input channels. */
GS_VEC_CLONES static void filters(void *p, int ith, int nth)
{
    const wino_job *j = p;
    long o0, o1;
    threadpool_range(j->cout, ith, nth, &o0, &o1);
    size_t ci = (size_t)j->cin, plane = (size_t)j->cout * ci;
    float *row = j->wrow + (size_t)ith * 9 * ci;
    for (long o = o0; o < o1; o++) {
        const float *g = j->w + (size_t)o * 9 * ci; /* g[(ky*3+kx)*cin + c] */
        if (!j->w) {
            const uint16_t *gb = j->wb + (size_t)o * 9 * ci;
            if (j->wb_f16)
                gi_f16_to_f32_span(gb, row, 9 * ci);
            else
                for (size_t k = 0; k < 9 * ci; k++)
                    row[k] = gi_bf16_to_f32(gb[k]);
            g = row;
        }
        float *u = j->bf16 ? NULL : j->u + (size_t)o * ci;
        uint16_t *u16 = j->bf16 ? j->u16 + (size_t)o * ci : NULL;
        /* 16 input channels at a time through local arrays (no aliasing between
           g and U for the compiler to fear), all lanes in vectors */
        for (size_t c0 = 0; c0 < ci; c0 += 16) {
            size_t nc = ci - c0 < 16 ? ci - c0 : 16;
            float gl[9][16], res[16][16];
            for (int k = 0; k < 9; k++)
                for (size_t l = 0; l < 16; l++)
                    gl[k][l] = l < nc ? g[k * ci + c0 + l] : 0.0f;
            for (size_t l = 0; l < 16; l++) {
                float t[4][3]; /* G g: rows of the 4x3 intermediate */
                for (int kx = 0; kx < 3; kx++) {
                    float g0 = gl[kx][l], g1 = gl[3 + kx][l], g2 = gl[6 + kx][l];
                    t[0][kx] = g0;
                    t[1][kx] = 0.5f * (g0 + g1 + g2);
                    t[2][kx] = 0.5f * (g0 - g1 + g2);
                    t[3][kx] = g2;
                }
                for (int r = 0; r < 4; r++) {
                    res[r * 4 + 0][l] = t[r][0];
                    res[r * 4 + 1][l] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
                    res[r * 4 + 2][l] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
                    res[r * 4 + 3][l] = t[r][2];
                }
            }
            for (int p16 = 0; p16 < 16; p16++)
                if (j->fused && u16) {
                    /* channel pairs (cin is even here): 8 four-byte stores, 128
                       bytes apart, rather than 16 indexed two-byte ones (the
                       stores were most of this transform, which runs every call) */
                    uint16_t *dst = j->u16 + wino_bf16_u_index(plane, j->cin, p16, (int)o, (int)c0);
                    uint32_t pairs[8];
                    for (int l2 = 0; l2 < 8; l2++)
                        pairs[l2] = bf16_bits(res[p16][2 * l2]) |
                                    (uint32_t)bf16_bits(res[p16][2 * l2 + 1]) << 16;
                    for (size_t l2 = 0; l2 < nc / 2; l2++)
                        memcpy(dst + l2 * 64, &pairs[l2], sizeof pairs[l2]);
                } else if (j->fused)
                    for (size_t l = 0; l < nc; l++)
                        j->u[wino_f32_u_index(plane, j->cin, p16, (int)o, (int)(c0 + l))] =
                            res[p16][l];
                else if (u16)
                    for (size_t l = 0; l < nc; l++)
                        u16[p16 * plane + c0 + l] = bf16_bits(res[p16][l]);
                else
                    for (size_t l = 0; l < nc; l++)
                        u[p16 * plane + c0 + l] = res[p16][l];
        }
    }
}

/* V[p][:] = (B^T d B)[p] for tile i of the block into v (f32) or v16 (bf16),
   plane elements apart per position p. */
/* src[r][q]: the channels of pixel (r, q) of tile i's 4x4 input patch (the
   zero row outside the map). */
static inline void tile_sources(const wino_job *j, long i, const float *src[4][4])
{
    size_t ci = (size_t)j->cin;
    int img, ty, tx;
    tile_at(j, j->t0 + i, &img, &ty, &tx);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) {
            int yy = 2 * ty - 1 + r, xx = 2 * tx - 1 + c;
            src[r][c] =
                yy < 0 || yy >= j->h || xx < 0 || xx >= j->w_
                    ? j->zeros
                    : j->x + (((size_t)img * (j->h / j->up) + yy / j->up - j->srow0) * j->sw +
                              xx / j->up) *
                                 ci;
        }
}

__attribute__((always_inline)) static inline void input_tile(const wino_job *j, long i, float *v,
                                                             uint16_t *v16, size_t plane)
{
    size_t ci = (size_t)j->cin;
    const float *src[4][4];
    tile_sources(j, i, src);
    /* 16 channels at a time through local arrays, so the compiler sees no
       aliasing between the sources and V and keeps all 16 lanes in vectors */
    for (size_t c0 = 0; c0 < ci; c0 += 16) {
        size_t nc = ci - c0 < 16 ? ci - c0 : 16;
        float d[4][4][16], o[16][16];
        for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++) {
                const float *sp = src[r][q] + c0;
                for (size_t l = 0; l < 16; l++)
                    d[r][q][l] = l < nc ? sp[l] : 0.0f;
            }
        for (size_t l = 0; l < 16; l++) {
            float s[4][4];
            for (int q = 0; q < 4; q++) { /* B^T d */
                s[0][q] = d[0][q][l] - d[2][q][l];
                s[1][q] = d[1][q][l] + d[2][q][l];
                s[2][q] = d[2][q][l] - d[1][q][l];
                s[3][q] = d[1][q][l] - d[3][q][l];
            }
            for (int r = 0; r < 4; r++) { /* (B^T d) B */
                o[r * 4 + 0][l] = s[r][0] - s[r][2];
                o[r * 4 + 1][l] = s[r][1] + s[r][2];
                o[r * 4 + 2][l] = s[r][2] - s[r][1];
                o[r * 4 + 3][l] = s[r][1] - s[r][3];
            }
        }
        for (int p16 = 0; p16 < 16; p16++)
            if (v16)
                for (size_t l = 0; l < nc; l++)
                    v16[p16 * plane + c0 + l] = bf16_bits(o[p16][l]);
            else
                for (size_t l = 0; l < nc; l++)
                    v[p16 * plane + c0 + l] = o[p16][l];
    }
}

/* V[p][tile][:] for the tiles of the block. */
GS_VEC_CLONES static void inputs(void *p, int ith, int nth)
{
    const wino_job *j = p;
    long a, e;
    threadpool_range(j->nt, ith, nth, &a, &e);
    size_t ci = (size_t)j->cin, plane = (size_t)j->nt * ci;
    for (long i = a; i < e; i++)
        input_tile(j, i, j->bf16 ? NULL : j->v + (size_t)i * ci,
                   j->bf16 ? j->v16 + (size_t)i * ci : NULL, plane);
}

/* y = A^T M A (+ bias) for tile i of the block, cropped at the map's edge; m
   is the tile's row of M, plane the distance between its 16 positions. */
/* dst[r][q]: where output pixel (r, q) of tile i goes (this thread's sink
   past the map's edge). */
static inline void tile_dests(const wino_job *j, long i, int ith, float *dst[2][2])
{
    size_t co = (size_t)j->cout;
    int img, ty, tx;
    tile_at(j, j->t0 + i, &img, &ty, &tx);
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 2; c++) {
            int yy = 2 * ty + r, xx = 2 * tx + c;
            dst[r][c] =
                yy < j->row0 || yy >= j->row1 || xx >= j->w_
                    ? j->sink + (size_t)ith * co
                    : j->y + (((size_t)img * (j->row1 - j->row0) + yy - j->row0) * j->w_ + xx) *
                                 (size_t)j->ys;
        }
}

__attribute__((always_inline)) static inline void output_tile(const wino_job *j, long i,
                                                              const float *m, size_t plane, int ith)
{
    size_t co = (size_t)j->cout;
    float *dst[2][2];
    tile_dests(j, i, ith, dst);
    for (size_t o0 = 0; o0 < co; o0 += 16) {
        size_t no = co - o0 < 16 ? co - o0 : 16;
        float mm[16][16], res[2][2][16];
        for (int p16 = 0; p16 < 16; p16++) {
            const float *sp = m + p16 * plane + o0;
            for (size_t l = 0; l < 16; l++)
                mm[p16][l] = l < no ? sp[l] : 0.0f;
        }
        for (size_t l = 0; l < 16; l++) {
            float s[2][4];
            for (int q = 0; q < 4; q++) { /* A^T M */
                s[0][q] = mm[0 * 4 + q][l] + mm[1 * 4 + q][l] + mm[2 * 4 + q][l];
                s[1][q] = mm[1 * 4 + q][l] - mm[2 * 4 + q][l] - mm[3 * 4 + q][l];
            }
            float bias = j->b && l < no ? j->b[o0 + l] : 0.0f;
            for (int r = 0; r < 2; r++) {
                res[r][0][l] = s[r][0] + s[r][1] + s[r][2] + bias;
                res[r][1][l] = s[r][1] - s[r][2] - s[r][3] + bias;
            }
        }
        for (int r = 0; r < 2; r++)
            for (int q = 0; q < 2; q++) { /* apart, so that both loops stay vectors */
                float *d = dst[r][q] + o0;
                if (j->accumulate)
                    for (size_t l = 0; l < no; l++)
                        d[l] += res[r][q][l];
                else
                    for (size_t l = 0; l < no; l++)
                        d[l] = res[r][q][l];
            }
    }
}

/* The output transform of the block, from M of all its tiles. */
GS_VEC_CLONES static void outputs(void *p, int ith, int nth)
{
    const wino_job *j = p;
    long a, e;
    threadpool_range(j->nt, ith, nth, &a, &e);
    size_t plane = (size_t)j->nt * j->cout;
    for (long i = a; i < e; i++)
        output_tile(j, i, j->m + (size_t)i * j->cout, plane, ith);
}

/* The whole block a group of tiles at a time, in this thread's buffers: input
   transform, products, output transform (conv_winograd_groups.h); V and M of a
   group stay in cache instead of streaming through memory. */
static void groups(void *p, int ith, int nth)
{
    const wino_job *j = p;
    long groups = (j->nt + WINO_GROUP - 1) / WINO_GROUP, g0, g1;
    threadpool_range(groups, ith, nth, &g0, &g1);
    size_t per = (size_t)16 * WINO_GROUP; /* values of a group per channel */
    float *m = j->m + (size_t)ith * per * j->cout;
    float *v = j->bf16 ? NULL : j->v + (size_t)ith * per * j->cin;
    uint16_t *v16 = j->bf16 ? j->v16 + (size_t)ith * per * j->cin : NULL;
    size_t vplane = (size_t)WINO_GROUP * j->cin, mplane = (size_t)WINO_GROUP * j->cout;
    for (long g = g0; g < g1; g++) {
        long t0 = g * WINO_GROUP, rows = j->nt - t0 < WINO_GROUP ? j->nt - t0 : WINO_GROUP;
        for (long r = 0; r < rows; r++) { /* rows past the block keep stale values: dropped */
            const float *src[4][4];
            tile_sources(j, t0 + r, src);
            if (v16)
                wino_bf16_input_tile(src, j->cin, v16 + (size_t)r * j->cin, vplane);
            else
                wino_f32_input_tile(src, j->cin, v + (size_t)r * j->cin, vplane);
        }
        if (v16)
            wino_bf16_group(v16, vplane, j->cin, j->u16, j->cout, m);
        else
            wino_f32_group(v, vplane, j->cin, j->u, j->cout, m);
        for (long r = 0; r < rows; r++) {
            float *dst[2][2];
            tile_dests(j, t0 + r, ith, dst);
            wino_output_tile(m + (size_t)r * j->cout, mplane, j->cout, j->b, j->accumulate, dst);
        }
    }
}

/* The buffer for the transformed filters of a convolution run by bands of
   rows: the one kept from its previous band, already transformed (*fresh 0),
   or a new one to transform them into and keep (*fresh 1, keep_filters after).
   NULL for a whole-map call, which ends any band sequence, or where no buffer
   could be had: the caller transforms into scratch. */
static float *kept_filters(gi_compute *cx, const conv_weights *cw, int banded, int bf16, int fused,
                           size_t floats, int *fresh)
{
    const void *w = cw->w ? (const void *)cw->w : (const void *)cw->wb;
    *fresh = 1;
    if (banded && cx->wino_filters.layer == cw && cx->wino_filters.weights == w &&
        cx->wino_filters.bf16 == bf16 && cx->wino_filters.fused == fused &&
        cx->wino_filters.f16 == cx->weights_f16) {
        *fresh = 0;
        return cx->wino_filters.u;
    }
    compute_drop_wino_filters(cx);
    if (!banded)
        return NULL;
    cx->wino_filters.u = gi_pages_alloc(floats * sizeof(float));
    cx->wino_filters.bytes = cx->wino_filters.u ? floats * sizeof(float) : 0;
    return cx->wino_filters.u;
}

/* Marks the filters just transformed into cx->wino_filters.u as cw's. */
static void keep_filters(gi_compute *cx, const conv_weights *cw, int bf16, int fused)
{
    cx->wino_filters.layer = cw;
    cx->wino_filters.weights = cw->w ? (const void *)cw->w : (const void *)cw->wb;
    cx->wino_filters.bf16 = bf16;
    cx->wino_filters.fused = fused;
    cx->wino_filters.f16 = cx->weights_f16;
}

/* The whole convolution; with ab (one image only), each block's source rows
   are first normalised into a band, so the affine and SiLU run once per pixel
   rather than once per patch that reads it. */
static gs_status winograd_run(gi_compute *cx, const conv_weights *cw, const float *x, int xs, int n,
                              int sh, int sw, const float *ab, int silu, int up, const conv_dst *d,
                              gi_error *err)
{
    /* th: the tile rows that hold output rows row0 .. row1 - 1 */
    int h = sh * up, w = sw * up, th = (d->row1 + 1) / 2 - d->row0 / 2, tw = (w + 1) / 2;
    long tiles = (long)n * th * tw, per_tile = 16L * (cw->cin + cw->cout);
    long tile_rows = TILE_BLOCK_FLOATS / (per_tile * tw); /* whole rows of tiles per block */
    tile_rows = tile_rows > cx->block_rows ? cx->block_rows : tile_rows; /* tests shrink it */
    tile_rows = tile_rows < 1 ? 1 : tile_rows;
    long block = tile_rows * tw > tiles ? tiles : tile_rows * tw;
    /* source rows a block of tile rows reads: 2 per tile row, the 3x3 reach, rounding */
    long band_rows = ab ? (2 * tile_rows + 2) / up + 2 : 0;
    band_rows = band_rows > sh ? sh : band_rows;
    int bf16 = cx->winograd_bf16;
    int fused = cx->winograd_fused && wino_groups_handle(cw->cin, cw->cout, bf16) &&
                (!bf16 || wino_bf16_available());
    size_t threads = (size_t)threadpool_size(cx->tp);
    size_t u_n = (size_t)16 * cw->cout * cw->cin,
           v_n = fused ? threads * 16 * WINO_GROUP * cw->cin : (size_t)16 * block * cw->cin;
    arena_mark mk = arena_get_mark(&cx->scratch);
    /* bf16 U and V take half the floats (counts rounded up to whole floats) */
    size_t u_floats = bf16 ? (u_n + 1) / 2 : u_n;
    int fresh, banded = d->row0 != 0 || d->row1 != h;
    float *u = kept_filters(cx, cw, banded, bf16, fused, u_floats, &fresh);
    u = u ? u : arena_floats(&cx->scratch, u_floats);
    float *v = arena_floats(&cx->scratch, bf16 ? (v_n + 1) / 2 : v_n);
    float *m = arena_floats(&cx->scratch, fused ? threads * 16 * WINO_GROUP * cw->cout
                                                : (size_t)16 * block * cw->cout);
    float *zeros = arena_floats(&cx->scratch, (size_t)cw->cin);
    float *sink = arena_floats(&cx->scratch, (size_t)threadpool_size(cx->tp) * cw->cout);
    float *band = ab ? arena_floats(&cx->scratch, (size_t)band_rows * sw * cw->cin) : NULL;
    float *wrow =
        cw->w ? NULL : arena_floats(&cx->scratch, (size_t)threadpool_size(cx->tp) * 9 * cw->cin);
    if (!u || !v || !m || !zeros || !sink || (ab && !band) || (!cw->w && !wrow)) {
        arena_release(&cx->scratch, mk);
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in a convolution");
    }
    /* counted as the direct conv */
    cx->flops += 2.0 * n * (d->row1 - d->row0) * w * cw->cout * 9.0 * cw->cin;
    memset(zeros, 0, (size_t)cw->cin * sizeof *zeros);
    wino_job j = {.x = x,
                  .y = d->y,
                  .w = cw->w,
                  .wb = cw->wb,
                  .wb_f16 = cx->weights_f16,
                  .wrow = wrow,
                  .b = cw->b,
                  .u = u,
                  .v = v,
                  .u16 = (uint16_t *)u,
                  .v16 = (uint16_t *)v,
                  .bf16 = bf16,
                  .fused = fused,
                  .m = m,
                  .zeros = zeros,
                  .sink = sink,
                  .n = n,
                  .h = h,
                  .w_ = w,
                  .cin = cw->cin,
                  .cout = cw->cout,
                  .th = th,
                  .tw = tw,
                  .row0 = d->row0,
                  .row1 = d->row1,
                  .ys = d->ys,
                  .accumulate = d->accumulate,
                  .up = up,
                  .sw = sw};
    if (fresh) {
        OP_PROF_TAG(OPK_WINO_XFORM, 4.0 * (9 + 16) * cw->cout * cw->cin);
        threadpool_run(cx->tp, filters, &j);
        if (u == cx->wino_filters.u)
            keep_filters(cx, cw, bf16, fused);
    }
    for (long t0 = 0; t0 < tiles; t0 += block) {
        j.t0 = t0;
        j.nt = tiles - t0 < block ? tiles - t0 : block;
        if (ab) { /* n == 1: tile rows t0 / tw .. (t0 + nt) / tw past row0 / 2 */
            int ty0 = d->row0 / 2;
            int oy0 = 2 * (int)(ty0 + t0 / tw) - 1, oy1 = 2 * (int)(ty0 + (t0 + j.nt - 1) / tw) + 2;
            int s0 = (oy0 < 0 ? 0 : oy0) / up, s1 = (oy1 >= h ? h - 1 : oy1) / up + 1;
            op_scale_shift_span(cx, x, xs, (long)s0 * sw, (long)s1 * sw, cw->cin, ab, silu, band);
            j.x = band;
            j.srow0 = s0;
        }
        if (fused) {
            OP_PROF_TAG(OPK_WINO_XFORM, 4.0 * (4 + 4) * j.nt * (cw->cin + cw->cout));
            threadpool_run(cx->tp, groups, &j);
            continue;
        }
        /* 4x4 sources (overlapping: about 4 pixels' worth) in, 16 planes out */
        OP_PROF_TAG(OPK_WINO_XFORM, 4.0 * (4 + 16) * j.nt * cw->cin);
        threadpool_run(cx->tp, inputs, &j);
        size_t vp = (size_t)j.nt * cw->cin, mp = (size_t)j.nt * cw->cout;
        size_t up_ = (size_t)cw->cout * cw->cin;
        for (int p = 0; p < 16; p++) {
            if (!bf16) {
                gemm_f32((int)j.nt, cw->cout, cw->cin, v + p * vp, cw->cin, u + p * up_, cw->cin, 1,
                         0.0f, m + p * mp, cw->cout);
                continue;
            }
            gs_status st =
                gemm_bf16(cx->bf16, (int)j.nt, cw->cout, cw->cin, j.v16 + p * vp, cw->cin,
                          j.u16 + p * up_, cw->cin, 1, 0.0f, m + p * mp, cw->cout, err);
            if (st != GS_OK) {
                arena_release(&cx->scratch, mk);
                return st;
            }
        }
        OP_PROF_TAG(OPK_WINO_XFORM, 4.0 * (16 + 4) * j.nt * cw->cout);
        threadpool_run(cx->tp, outputs, &j);
    }
    arena_release(&cx->scratch, mk);
    return GS_OK;
}

int conv3x3_winograd_fits(const gi_compute *cx, const conv_weights *cw)
{
    long max = cw->w ? MAX_FILTER_BYTES_F32 : MAX_FILTER_BYTES_BF16;
    long elem = cx->winograd_bf16 ? 2 : 4;
    return cw->k == 3 && 16L * cw->cout * cw->cin * elem <= max;
}

gs_status conv3x3_winograd(gi_compute *cx, const conv_weights *cw, const float *x, int n, int h,
                           int w, float *y, gi_error *err)
{
    conv_dst d = {y, 0, h, cw->cout, 0};
    return winograd_run(cx, cw, x, cw->cin, n, h, w, NULL, 0, 1, &d, err);
}

gs_status conv3x3_winograd_rows(gi_compute *cx, const conv_weights *cw, const float *x, int xs,
                                int h, int w, const float *ab, int silu, int up, const conv_dst *d,
                                gi_error *err)
{
    return winograd_run(cx, cw, x, xs, 1, h, w, ab, silu, up, d, err);
}
