/*
 * vae_decode - the decoder, whole or in tiles, with bounded feature maps.
 *
 * The decoder is split in a head at latent resolution (post-quant conv,
 * conv_in, middle block with its attention, the first level's blocks) and a
 * tail (the upsampling levels, norm_out, conv_out). The head always runs on
 * the whole latent. The tail's convolutions fold each group norm (+SiLU)
 * and each nearest upsampling into their patch gather (op_conv2d_pre), and
 * its blocks and upsamplings write over their inputs (the region, below): a
 * residual block holds its input and one temporary.
 *
 * Tiled decode: the tail runs on overlapping tiles of the head's output; each
 * tile keeps the core of its output and drops a margin of VAE_TILE_MARGIN
 * latent pixels on inner sides, where its zero padding differs from the
 * neighbours' real pixels. Group norm statistics must not be per tile (that
 * shows as seams and a colour shift between tiles): they are recorded once by
 * a statistics pass of the tail over the head output subsampled to fit one
 * tile, and every tile reuses them. The tail's memory depends on the tile
 * size, not on the image.
 */
#include <string.h>

#include "model/vae_internal.h"

#define VAE_TILE_MARGIN 8 /* latent pixels of overlap on each inner side of a tile */

/* ---- where group norm statistics come from ---- */

enum { NORM_MEASURE, NORM_RECORD, NORM_REPLAY };

typedef struct norm_plan {
    int mode;
    double *stats; /* [n_max][2 * VAE_GROUPS] per norm in tail order (RECORD, REPLAY) */
    int n, n_max;
} norm_plan;

/* The folded scale and shift ab [2*c] of norm nw over x [hw, c], its pixels xs
   floats apart (0: c). */
static gs_status norm_coeffs(gi_compute *cx, norm_plan *p, const norm_weights *nw, const float *x,
                             int xs, long hw, float *ab, gi_error *err)
{
    double own[2 * VAE_GROUPS], *stats = own;
    if (p->mode != NORM_MEASURE) {
        if (p->n >= p->n_max)
            return gi_fail(err, GS_ERR_INTERNAL, "VAE decoder: more group norms than planned");
        stats = p->stats + (size_t)p->n++ * 2 * VAE_GROUPS;
    }
    if (p->mode != NORM_REPLAY) {
        gs_status st = op_group_norm_stats(cx, x, xs, hw, nw->c, VAE_GROUPS, stats, err);
        if (st != GS_OK)
            return st;
    }
    op_group_norm_fold(nw, stats, VAE_GROUPS, VAE_EPS, ab);
    return GS_OK;
}

/* ---- blocks ---- */

/* x [h, w, cin] -> out [h, w, cout], with t [h, w, cout] as the temporary:
   the same operations as vae_res_forward, with both norms folded into the
   convolutions that follow them. The general case: x, out and t apart. */
static gs_status res_lean(gi_compute *cx, norm_plan *p, const vae_res *r, const float *x, int h,
                          int w, float *out, float *t, gi_error *err)
{
    long hw = (long)h * w;
    int cmax = r->cin > r->cout ? r->cin : r->cout;
    arena_mark mk = arena_get_mark(&cx->scratch);
    float *ab = arena_floats(&cx->scratch, (size_t)2 * cmax);
    gs_status st = ab ? GS_OK : gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in the VAE");
    if (st == GS_OK)
        st = norm_coeffs(cx, p, &r->n1, x, 0, hw, ab, err);
    if (st == GS_OK)
        st = op_conv2d_pre(cx, &r->c1, x, h, w, ab, 1, 1, out, err);
    if (st == GS_OK)
        st = norm_coeffs(cx, p, &r->n2, out, 0, hw, ab, err);
    if (st == GS_OK)
        st = op_conv2d_pre(cx, &r->c2, out, h, w, ab, 1, 1, t, err);
    if (st == GS_OK && r->has_skip)
        st = op_conv2d_same(cx, &r->skip, x, 1, h, w, out, err);
    else if (st == GS_OK)
        memcpy(out, x, (size_t)hw * r->cout * sizeof *out);
    if (st == GS_OK)
        op_add(cx, out, t, hw * r->cout);
    arena_release(&cx->scratch, mk);
    return st;
}

/* Whether res_residual can take block r: no skip convolution, the input is
   the residual. */
static int residual_ok(const vae_res *r)
{
    return !r->has_skip && r->cin == r->cout;
}

/* res_lean's block for residual_ok blocks, its output over x: the second
   convolution adds its results to x as it stores them (x + t, as res_lean
   sums), so t [h, w, c] is all the block needs besides x. */
static gs_status res_residual(gi_compute *cx, norm_plan *p, const vae_res *r, float *x, int h,
                              int w, float *t, gi_error *err)
{
    long hw = (long)h * w;
    arena_mark mk = arena_get_mark(&cx->scratch);
    float *ab = arena_floats(&cx->scratch, (size_t)2 * r->cin);
    gs_status st = ab ? GS_OK : gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in the VAE");
    conv_dst onto_x = {x, 0, 0, 0, 1};
    if (st == GS_OK)
        st = norm_coeffs(cx, p, &r->n1, x, 0, hw, ab, err);
    if (st == GS_OK)
        st = op_conv2d_pre(cx, &r->c1, x, h, w, ab, 1, 1, t, err);
    if (st == GS_OK)
        st = norm_coeffs(cx, p, &r->n2, t, 0, hw, ab, err);
    if (st == GS_OK)
        st = op_conv2d_rows(cx, &r->c2, t, 0, h, w, ab, 1, 1, &onto_x, err);
    arena_release(&cx->scratch, mk);
    return st;
}

/* Output rows res_streamed computes at a time. */
#define STREAM_ROWS 16

/* Whether res_streamed can take block r: a 1x1 skip at least halving the
   channels, so that its output and the first convolution's fit in each of the
   input's pixels. */
static int streamed_ok(const vae_res *r)
{
    return r->has_skip && r->skip.k == 1 && r->cin >= 2 * r->cout;
}

/* Rows [y0, y1) of the skip's and the first convolution's outputs (sk, c1:
   [.., w, cout], from row y0) into the pixels of x [h, w, cin]: the skip's at
   each pixel's start, the convolution's after it. */
static void interleave_rows(float *x, int cin, int cout, int w, int y0, int y1, const float *sk,
                            const float *c1)
{
    size_t c = (size_t)cout;
    for (long px = 0; px < (long)(y1 - y0) * w; px++) {
        float *dst = x + ((size_t)y0 * w + px) * cin;
        memcpy(dst, sk + px * c, c * sizeof *dst);
        memcpy(dst + c, c1 + px * c, c * sizeof *dst);
    }
}

/* res_lean's block for streamed_ok blocks with its output over x [h, w, cin],
   at its start as [h, w, cout], and no map-sized temporary: the first
   convolution and the skip run STREAM_ROWS output rows at a time, and their
   outputs replace, in each pixel's own floats, the rows of x that no later
   band reads (the first convolution reads one row either side, so each band's
   last row waits for the next band); the second convolution reads its input
   from there and adds its results to the skip's as it stores them; the
   outputs are then packed. The same sums as res_lean (x + t2 = skip + conv). */
static gs_status res_streamed(gi_compute *cx, norm_plan *p, const vae_res *r, float *x, int h,
                              int w, gi_error *err)
{
    long hw = (long)h * w;
    int cin = r->cin, cout = r->cout;
    size_t band = (size_t)STREAM_ROWS * w * cout, row = (size_t)w * cout;
    arena_mark mk = arena_get_mark(&cx->scratch);
    float *ab = arena_floats(&cx->scratch, (size_t)2 * cin);
    float *sk = arena_floats(&cx->scratch, band), *c1 = arena_floats(&cx->scratch, band);
    float *sk_held = arena_floats(&cx->scratch, row), *c1_held = arena_floats(&cx->scratch, row);
    gs_status st = ab && sk && c1 && sk_held && c1_held
                       ? GS_OK
                       : gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in the VAE");
    if (st == GS_OK)
        st = norm_coeffs(cx, p, &r->n1, x, 0, hw, ab, err);
    for (int y0 = 0; y0 < h && st == GS_OK; y0 += STREAM_ROWS) {
        int y1 = h - y0 < STREAM_ROWS ? h : y0 + STREAM_ROWS;
        conv_dst to_c1 = {c1, y0, y1, 0, 0};
        st = op_conv2d_rows(cx, &r->c1, x, 0, h, w, ab, 1, 1, &to_c1, err);
        if (st == GS_OK)
            st = op_conv2d_same(cx, &r->skip, x + (size_t)y0 * w * cin, 1, 1, (y1 - y0) * w, sk,
                                err);
        if (st != GS_OK)
            break;
        if (y0 > 0) /* the previous band's last row: read for the last time just now */
            interleave_rows(x, cin, cout, w, y0 - 1, y0, sk_held, c1_held);
        int keep = y1 < h; /* the next band's first convolution reads row y1 - 1 */
        interleave_rows(x, cin, cout, w, y0, y1 - keep, sk, c1);
        if (keep) {
            memcpy(sk_held, sk + (size_t)(y1 - 1 - y0) * row, row * sizeof *sk);
            memcpy(c1_held, c1 + (size_t)(y1 - 1 - y0) * row, row * sizeof *c1);
        }
    }
    conv_dst onto_skip = {x, 0, 0, cin, 1};
    if (st == GS_OK)
        st = norm_coeffs(cx, p, &r->n2, x + cout, cin, hw, ab, err);
    if (st == GS_OK)
        st = op_conv2d_rows(cx, &r->c2, x + cout, cin, h, w, ab, 1, 1, &onto_skip, err);
    if (st == GS_OK) /* packed in order: each pixel moves down over pixels already moved */
        for (long px = 1; px < hw; px++)
            memmove(x + (size_t)px * cout, x + (size_t)px * cin, (size_t)cout * sizeof *x);
    arena_release(&cx->scratch, mk);
    return st;
}

/* ---- the tail: upsampling levels to pixels ---- */

/* Output rows an in-place upsampling computes at a time. */
#define UP_ROWS 32

/* The tail's maps share one region, addressed by distance below its end. Its
   size is found by walking the tail without computing (tail_walk with no
   region), so the region is exactly what the walk reaches: at 512x512, the
   256-channel upsampled map (the 128-channel blocks after it hold their input
   and one temporary, the same size). Residual blocks and streamed blocks
   replace their input; an upsampling convolution writes over its own input,
   which first moves to the region's end: output rows ascend from below it, a
   margin of source rows behind the rows still to be read. */
typedef struct tail_walk {
    float *end;  /* the region's end; NULL while sizing */
    size_t need; /* floats below the end the walk has reached */
} tail_walk;

/* The map that starts off floats below the end. */
static float *below_end(tail_walk *t, size_t off)
{
    t->need = off > t->need ? off : t->need;
    return t->end ? t->end - off : NULL;
}

/* Group norms the tail runs (for sizing a recorded plan). */
static int tail_norms(const vae *m)
{
    int n = 1; /* norm_out */
    for (int i = m->levels - 2; i >= 0; i--)
        n += 2 * m->dec.level[i].n_blocks;
    return n;
}

/* x [h, w, c] (the head's output) -> image [8h, 8w, 3] through the region of
   t (or, with t->end NULL, only its size into t->need). x is not modified. */
static gs_status tail_walk_run(const vae *m, gi_compute *cx, norm_plan *p, const float *x, int h,
                               int w, float *image, tail_walk *t, gi_error *err)
{
    const vae_coder *d = &m->dec;
    int run = t->end != NULL;
    float *cur = NULL; /* in the region, off floats below its end; NULL: x */
    size_t off = 0, n = 0;
    gs_status st = GS_OK;
    for (int i = m->levels - 1; i >= 0 && st == GS_OK; i--) {
        const vae_level *L = &d->level[i];
        for (int b = 0; b < L->n_blocks && st == GS_OK && i < m->levels - 1; b++) {
            const vae_res *r = &L->block[b];
            size_t out_n = (size_t)h * w * r->cout;
            if (off && residual_ok(r)) {
                /* the temporary above the map where it fits, else below it */
                size_t t_off = off - n >= out_n ? off - n : off + out_n;
                float *tmp = below_end(t, t_off);
                if (run)
                    st = res_residual(cx, p, r, cur, h, w, tmp, err);
                continue;
            }
            if (off && streamed_ok(r)) {
                if (run)
                    st = res_streamed(cx, p, r, cur, h, w, err);
                n = out_n;
                continue;
            }
            /* the general block: output and temporary below the map */
            size_t o_off = off + out_n;
            float *o = below_end(t, o_off), *tmp = below_end(t, o_off + out_n);
            if (run)
                st = res_lean(cx, p, r, cur ? cur : x, h, w, o, tmp, err);
            cur = o;
            off = o_off;
            n = out_n;
        }
        if (st == GS_OK && L->has_resample) {
            const conv_weights *cw = &L->resample;
            size_t out_n = (size_t)4 * h * w * cw->cout;
            if (!off) { /* from x: the whole output at the end */
                float *o = below_end(t, out_n);
                if (run)
                    st = op_conv2d_pre(cx, cw, x, h, w, NULL, 0, 2, o, err);
                cur = o;
                off = out_n;
                n = out_n;
            } else {
                if (off != n && run) /* to the end, for the output to ascend below it */
                    memmove(t->end - n, cur, n * sizeof *cur);
                size_t margin = (size_t)(UP_ROWS / 2 + 2) * w * cw->cin;
                size_t o_off = out_n + margin > n ? out_n + margin : n;
                float *o = below_end(t, o_off);
                for (int y0 = 0; y0 < 2 * h && run && st == GS_OK; y0 += UP_ROWS) {
                    int y1 = 2 * h - y0 < UP_ROWS ? 2 * h : y0 + UP_ROWS;
                    conv_dst rows = {o + (size_t)y0 * 2 * w * cw->cout, y0, y1, 0, 0};
                    st = op_conv2d_rows(cx, cw, t->end - n, 0, h, w, NULL, 0, 2, &rows, err);
                }
                cur = o;
                off = o_off;
                n = out_n;
            }
            h *= 2;
            w *= 2;
        }
    }
    if (!run || st != GS_OK)
        return st;
    arena_mark mk = arena_get_mark(&cx->scratch);
    float *ab = arena_floats(&cx->scratch, (size_t)2 * d->norm_out.c);
    if (!ab)
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in the VAE decoder");
    const float *last = cur ? cur : x;
    if (st == GS_OK)
        st = norm_coeffs(cx, p, &d->norm_out, last, 0, (long)h * w, ab, err);
    if (st == GS_OK)
        st = op_conv2d_pre(cx, &d->conv_out, last, h, w, ab, 1, 1, image, err);
    arena_release(&cx->scratch, mk);
    return st;
}

/* x [h, w, c] (the head's output) -> image [8h, 8w, 3]. x is not modified. */
static gs_status tail_forward(const vae *m, gi_compute *cx, norm_plan *p, const float *x, int h,
                              int w, float *image, gi_error *err)
{
    tail_walk size = {NULL, 0};
    gs_status st = tail_walk_run(m, cx, p, x, h, w, image, &size, err);
    if (st != GS_OK)
        return st;
    arena_mark mk = arena_get_mark(&cx->scratch);
    float *base = arena_floats(&cx->scratch, size.need ? size.need : 1);
    if (!base)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in the VAE decoder");
    tail_walk region = {base + size.need, 0};
    st = tail_walk_run(m, cx, p, x, h, w, image, &region, err);
    arena_release(&cx->scratch, mk);
    return st;
}

/* ---- the head: latent resolution, always whole ---- */

/* latent [h, w, z] -> *out [h, w, c], a new arena buffer the caller releases. */
static gs_status head_forward(const vae *m, gi_compute *cx, const float *latent, int h, int w,
                              float **out, int *c_out, gi_error *err)
{
    const vae_coder *d = &m->dec;
    const vae_level *top = &d->level[m->levels - 1];
    int c = d->mid1.cin > d->mid1.cout ? d->mid1.cin : d->mid1.cout;
    for (int b = 0; b < top->n_blocks; b++)
        c = top->block[b].cout > c ? top->block[b].cout : c;
    size_t px = (size_t)h * w;
    /* keep first: it outlives the others and holds the result */
    float *keep = arena_floats(&cx->scratch, px * c), *cur = keep;
    arena_mark mk = arena_get_mark(&cx->scratch);
    float *alt = arena_floats(&cx->scratch, px * c), *t = arena_floats(&cx->scratch, px * c);
    float *z = arena_floats(&cx->scratch, px * m->z);
    if (!keep || !alt || !t || !z)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in the VAE decoder");
    norm_plan whole = {NORM_MEASURE, NULL, 0, 0};
    gs_status st;
    if ((st = op_conv2d_same(cx, &m->post_quant, latent, 1, h, w, z, err)) != GS_OK ||
        (st = op_conv2d_same(cx, &d->conv_in, z, 1, h, w, cur, err)) != GS_OK ||
        (st = vae_mid_forward(cx, d, &cur, &alt, 1, h, w, err)) != GS_OK)
        return st;
    for (int b = 0; b < top->n_blocks; b++) {
        if ((st = res_lean(cx, &whole, &top->block[b], cur, h, w, alt, t, err)) != GS_OK)
            return st;
        vae_swap(&cur, &alt);
    }
    *out = keep;
    if (cur != keep) /* the result sits in a buffer about to be released */
        memcpy(keep, cur, px * top->block[top->n_blocks - 1].cout * sizeof *keep);
    arena_release(&cx->scratch, mk);
    *c_out = top->block[top->n_blocks - 1].cout;
    return GS_OK;
}

/* ---- tiles ---- */

/* The tile split of one axis of len latent pixels into n tiles of at most tile:
   cores [core(i), core(i+1)) of near-equal size, decoded with margin more on
   each inner side. */
typedef struct tile_axis {
    int len, n, margin;
} tile_axis;

static tile_axis tile_axis_plan(int len, int tile)
{
    tile_axis a = {len, 1, 0};
    if (tile >= len)
        return a;
    /* small tiles keep half their size as core, or they would be all margin */
    a.margin = tile / 4 < VAE_TILE_MARGIN ? tile / 4 : VAE_TILE_MARGIN;
    int core = tile - 2 * a.margin;
    a.n = (len + core - 1) / core;
    return a;
}

static int tile_core(const tile_axis *a, int i)
{
    return (int)((long)i * a->len / a->n);
}

/* The decoded range [*r0, *r1) of tile i. */
static void tile_range(const tile_axis *a, int i, int *r0, int *r1)
{
    *r0 = tile_core(a, i) - a->margin;
    *r1 = tile_core(a, i + 1) + a->margin;
    *r0 = *r0 < 0 ? 0 : *r0;
    *r1 = *r1 > a->len ? a->len : *r1;
}

/* Rows [y0, y1) x columns [x0, x1) of src [.., sw, c] into dst [.., dw, c]. */
static void copy_rect(const float *src, int sw, int sy, int sx, float *dst, int dw, int dy, int dx,
                      int rows, int cols, int c)
{
    for (int y = 0; y < rows; y++)
        memcpy(dst + ((size_t)(dy + y) * dw + dx) * c, src + ((size_t)(sy + y) * sw + sx) * c,
               (size_t)cols * c * sizeof *dst);
}

/* Records the tail's group norm statistics on x [h, w, c] subsampled by f
   (nearest, centred) so that the pass fits in one tile. */
static gs_status record_stats(const vae *m, gi_compute *cx, norm_plan *p, const float *x, int h,
                              int w, int c, int f, gi_error *err)
{
    int sh = h / f > 0 ? h / f : 1, sw = w / f > 0 ? w / f : 1, up = 1 << (m->levels - 1);
    arena_mark mk = arena_get_mark(&cx->scratch);
    float *small = arena_floats(&cx->scratch, (size_t)sh * sw * c);
    float *img = arena_floats(&cx->scratch, (size_t)sh * sw * up * up * 3);
    if (!small || !img)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in the VAE decoder");
    for (int y = 0; y < sh; y++)
        for (int xx = 0; xx < sw; xx++) {
            int yy = y * f + f / 2 < h ? y * f + f / 2 : h - 1;
            int xs = xx * f + f / 2 < w ? xx * f + f / 2 : w - 1;
            memcpy(small + ((size_t)y * sw + xx) * c, x + ((size_t)yy * w + xs) * c,
                   (size_t)c * sizeof *small);
        }
    p->mode = NORM_RECORD;
    p->n = 0;
    gs_status st = tail_forward(m, cx, p, small, sh, sw, img, err);
    arena_release(&cx->scratch, mk);
    return st;
}

/* The tail over tiles of x [h, w, c] into image [up*h, up*w, 3]. */
static gs_status tail_tiled(const vae *m, gi_compute *cx, const float *x, int h, int w, int c,
                            int tile, float *image, gi_error *err)
{
    tile_axis ay = tile_axis_plan(h, tile), ax = tile_axis_plan(w, tile);
    int up = 1 << (m->levels - 1);
    /* the statistics pass runs on the head output subsampled to fit one tile */
    int side = h > w ? h : w, f = (side + tile - 1) / tile;
    arena_mark mk = arena_get_mark(&cx->scratch);
    norm_plan p = {NORM_RECORD, NULL, 0, tail_norms(m)};
    p.stats = arena_alloc(&cx->scratch, (size_t)p.n_max * 2 * VAE_GROUPS * sizeof *p.stats);
    float *in = arena_floats(&cx->scratch, (size_t)tile * tile * c);
    float *out = arena_floats(&cx->scratch, (size_t)tile * tile * up * up * 3);
    gs_status st = GS_OK;
    if (!p.stats || !in || !out) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in the VAE decoder");
        goto out;
    }
    if ((st = record_stats(m, cx, &p, x, h, w, c, f, err)) != GS_OK)
        goto out;
    for (int ty = 0; ty < ay.n && st == GS_OK; ty++)
        for (int tx = 0; tx < ax.n && st == GS_OK; tx++) {
            int y0, y1, x0, x1;
            tile_range(&ay, ty, &y0, &y1);
            tile_range(&ax, tx, &x0, &x1);
            int th = y1 - y0, tw = x1 - x0;
            copy_rect(x, w, y0, x0, in, tw, 0, 0, th, tw, c);
            p.mode = NORM_REPLAY;
            p.n = 0;
            if ((st = tail_forward(m, cx, &p, in, th, tw, out, err)) != GS_OK)
                break;
            int cy0 = tile_core(&ay, ty), cy1 = tile_core(&ay, ty + 1);
            int cx0 = tile_core(&ax, tx), cx1 = tile_core(&ax, tx + 1);
            copy_rect(out, tw * up, (cy0 - y0) * up, (cx0 - x0) * up, image, w * up, cy0 * up,
                      cx0 * up, (cy1 - cy0) * up, (cx1 - cx0) * up, 3);
        }
out:
    arena_release(&cx->scratch, mk);
    return st;
}

/* ---- entry ---- */

static gs_status decode(vae *m, gi_compute *cx, const float *latent, int n, int h, int w, int tile,
                        float *image, gi_error *err);

gs_status vae_decode_tiled(vae *m, gi_compute *cx, const float *latent, int n, int h, int w,
                           int tile, float *image, gi_error *err)
{
    compute_mode was = vae_enter_mode(m, cx);
    gs_status st = decode(m, cx, latent, n, h, w, tile, image, err);
    compute_set_mode(cx, was);
    return st;
}

static gs_status decode(vae *m, gi_compute *cx, const float *latent, int n, int h, int w, int tile,
                        float *image, gi_error *err)
{
    if (n < 1 || h < 1 || w < 1 || (long)h * w > (1L << 20))
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "VAE decode: bad latent size %dx%d", w, h);
    if (tile < 0)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "VAE decode: bad tile size %d", tile);
    gs_status st = compute_begin(cx, err);
    if (st != GS_OK)
        return st;
    int up = 1 << (m->levels - 1);
    size_t lat = (size_t)h * w * m->z, pix = (size_t)h * w * up * up * 3;
    for (int i = 0; i < n && st == GS_OK; i++) {
        arena_mark mk = arena_get_mark(&cx->scratch);
        float *x = NULL;
        int c = 0;
        st = head_forward(m, cx, latent + i * lat, h, w, &x, &c, err);
        if (st == GS_OK && (tile == 0 || (tile >= h && tile >= w))) {
            norm_plan whole = {NORM_MEASURE, NULL, 0, 0};
            st = tail_forward(m, cx, &whole, x, h, w, image + i * pix, err);
        } else if (st == GS_OK) {
            st = tail_tiled(m, cx, x, h, w, c, tile, image + i * pix, err);
        }
        arena_release(&cx->scratch, mk);
    }
    return st;
}

gs_status vae_decode(vae *m, gi_compute *cx, const float *latent, int n, int h, int w, float *image,
                     gi_error *err)
{
    return vae_decode_tiled(m, cx, latent, n, h, w, 0, image, err);
}
