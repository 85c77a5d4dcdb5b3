/*
 * ops_norm - group norm (optionally fused with SiLU) and layer norm.
 *
 * Statistics are two-pass in double (mean, then squared deviations) so the
 * f32 result matches the reference to ~1e-7 relative on large maps.
 */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "compute/op_prof.h"
#include "compute/ops.h"
#include "compute/vec_math.h"

/* Two-pass statistics per group with no scratch memory: the out-of-memory path. */
static void group_norm_serial(const norm_weights *nw, const float *x, float *y, long hw, int c,
                              int groups, float eps, int silu)
{
    int cpg = c / groups;
    for (int g = 0; g < groups; g++) {
        double sum = 0, ss = 0, count = (double)hw * cpg;
        for (long px = 0; px < hw; px++)
            for (int k = g * cpg; k < (g + 1) * cpg; k++)
                sum += x[(size_t)px * c + k];
        double mean = sum / count;
        for (long px = 0; px < hw; px++)
            for (int k = g * cpg; k < (g + 1) * cpg; k++) {
                double d = x[(size_t)px * c + k] - mean;
                ss += d * d;
            }
        double inv = 1.0 / sqrt(ss / count + eps);
        for (long px = 0; px < hw; px++)
            for (int k = g * cpg; k < (g + 1) * cpg; k++) {
                float v = (float)((x[(size_t)px * c + k] - mean) * inv) * nw->g[k] + nw->b[k];
                y[(size_t)px * c + k] = silu ? gi_silu(v) : v;
            }
    }
}

typedef struct gn_job {
    const norm_weights *nw;
    const float *x; /* one image: [hw, c], pixels xs floats apart */
    float *y;
    int c, xs, groups, silu;
    long hw;
    float eps;
    double *part;  /* [threads, c] per-thread partial sums */
    double *gmean; /* [2 * groups]: group sums, then sums of squared deviations */
    float *a, *b;  /* [c] folded scale and shift */
} gn_job;

/* Per-channel sums over this thread's pixels: elementwise over channels, so the
   loops vectorize without reassociating sums. */
GS_VEC_CLONES static void gn_sum_pass(const float *x, int stride, long p0, long p1, int c,
                                      double *acc)
{
    for (int k = 0; k < c; k++)
        acc[k] = 0;
    for (long px = p0; px < p1; px++) {
        const float *xs = x + (size_t)px * stride;
        for (int k = 0; k < c; k++)
            acc[k] += xs[k];
    }
}

GS_VEC_CLONES static void gn_var_pass(const float *x, int stride, long p0, long p1, int c,
                                      const double *mean, double *acc)
{
    for (int k = 0; k < c; k++)
        acc[k] = 0;
    for (long px = p0; px < p1; px++) {
        const float *xs = x + (size_t)px * stride;
        for (int k = 0; k < c; k++) {
            double d = xs[k] - mean[k];
            acc[k] += d * d;
        }
    }
}

GS_VEC_CLONES static void gn_apply_pass(const float *x, int stride, float *y, long p0, long p1,
                                        int c, const float *a, const float *b, int silu)
{
    for (long px = p0; px < p1; px++) {
        const float *xs = x + (size_t)px * stride;
        float *ys = y + (size_t)px * c;
        if (silu)
            for (int k = 0; k < c; k++)
                ys[k] = gi_silu(xs[k] * a[k] + b[k]);
        else
            for (int k = 0; k < c; k++)
                ys[k] = xs[k] * a[k] + b[k];
    }
}

static void gn_sums(void *p, int ith, int nth)
{
    gn_job *j = p;
    long p0, p1;
    threadpool_range(j->hw, ith, nth, &p0, &p1);
    gn_sum_pass(j->x, j->xs, p0, p1, j->c, j->part + (size_t)ith * j->c);
}

static void gn_vars(void *p, int ith, int nth)
{
    gn_job *j = p;
    long p0, p1;
    threadpool_range(j->hw, ith, nth, &p0, &p1);
    /* part holds each channel's group mean after the first reduction, in row 0
       of the second half of the buffer */
    double *mean = j->part + (size_t)nth * j->c;
    gn_var_pass(j->x, j->xs, p0, p1, j->c, mean, j->part + (size_t)ith * j->c);
}

static void gn_apply(void *p, int ith, int nth)
{
    gn_job *j = p;
    long p0, p1;
    threadpool_range(j->hw, ith, nth, &p0, &p1);
    gn_apply_pass(j->x, j->xs, j->y, p0, p1, j->c, j->a, j->b, j->silu);
}

/* Sums the per-thread rows into per-group totals. */
static void reduce_groups(const double *part, int nth, int c, int groups, double *out)
{
    int cpg = c / groups;
    for (int g = 0; g < groups; g++) {
        double s = 0;
        for (int t = 0; t < nth; t++)
            for (int k = g * cpg; k < (g + 1) * cpg; k++)
                s += part[(size_t)t * c + k];
        out[g] = s;
    }
}

/* Per-group mean and variance of one image, two-pass over the threads; part is
   [(nth + 1) * c] doubles of scratch, gsum [2 * groups]. */
static void gn_stats_with(gi_compute *cx, gn_job *j, int nth, double *stats)
{
    int c = j->c, groups = j->groups, cpg = c / groups;
    double count = (double)j->hw * cpg;
    double *gsum = j->gmean;
    OP_PROF_TAG(OPK_GROUP_NORM, 4.0 * j->hw * c);
    threadpool_run(cx->tp, gn_sums, j);
    reduce_groups(j->part, nth, c, groups, gsum);
    double *mean_c = j->part + (size_t)nth * c;
    for (int k = 0; k < c; k++)
        mean_c[k] = gsum[k / cpg] / count;
    OP_PROF_TAG(OPK_GROUP_NORM, 4.0 * j->hw * c);
    threadpool_run(cx->tp, gn_vars, j);
    reduce_groups(j->part, nth, c, groups, gsum + groups);
    for (int g = 0; g < groups; g++) {
        stats[g] = gsum[g] / count;
        stats[groups + g] = gsum[groups + g] / count;
    }
}

void op_group_norm_fold(const norm_weights *nw, const double *stats, int groups, float eps,
                        float *ab)
{
    int c = nw->c, cpg = c / groups;
    for (int k = 0; k < c; k++) {
        int g = k / cpg;
        double inv = 1.0 / sqrt(stats[groups + g] + eps);
        ab[k] = (float)(nw->g[k] * inv);
        ab[c + k] = (float)(nw->b[k] - stats[g] * nw->g[k] * inv);
    }
}

gs_status op_group_norm_stats(gi_compute *cx, const float *x, int xs, long hw, int c, int groups,
                              double *stats, gi_error *err)
{
    int nth = threadpool_size(cx->tp);
    arena_mark m = arena_get_mark(&cx->scratch);
    double *part = arena_alloc(&cx->scratch, (size_t)(nth + 1) * c * sizeof *part);
    double *gsum = arena_alloc(&cx->scratch, (size_t)2 * groups * sizeof *gsum);
    if (!part || !gsum) {
        arena_release(&cx->scratch, m);
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in a group norm");
    }
    gn_job j = {
        .x = x, .c = c, .xs = xs ? xs : c, .groups = groups, .hw = hw, .part = part, .gmean = gsum};
    gn_stats_with(cx, &j, nth, stats);
    arena_release(&cx->scratch, m);
    return GS_OK;
}

typedef struct span_job {
    const float *x;
    float *y;
    long n;
    int c, xs, silu;
    const float *ab;
} span_job;

static void span_rows(void *p, int ith, int nth)
{
    const span_job *j = p;
    long a, b;
    threadpool_range(j->n, ith, nth, &a, &b);
    gn_apply_pass(j->x, j->xs, j->y, a, b, j->c, j->ab, j->ab + j->c, j->silu);
}

void op_scale_shift_span(gi_compute *cx, const float *x, int xs, long p0, long p1, int c,
                         const float *ab, int silu, float *y)
{
    xs = xs ? xs : c;
    span_job j = {x + (size_t)p0 * xs, y, p1 - p0, c, xs, silu, ab};
    OP_PROF_TAG(OPK_GROUP_NORM, 8.0 * (p1 - p0) * c);
    threadpool_run(cx->tp, span_rows, &j);
}

void op_group_norm(gi_compute *cx, const norm_weights *nw, const float *x, int n, long hw, int c,
                   int groups, float eps, int silu, float *y)
{
    int nth = threadpool_size(cx->tp);
    arena_mark m = arena_get_mark(&cx->scratch);
    double *part = arena_alloc(&cx->scratch, (size_t)(nth + 1) * c * sizeof *part);
    double *gsum = arena_alloc(&cx->scratch, (size_t)4 * groups * sizeof *gsum);
    float *a = arena_floats(&cx->scratch, (size_t)2 * c);
    if (!part || !gsum || !a) {
        /* no scratch left: the serial path needs none */
        arena_release(&cx->scratch, m);
        for (int img = 0; img < n; img++)
            group_norm_serial(nw, x + (size_t)img * hw * c, y + (size_t)img * hw * c, hw, c, groups,
                              eps, silu);
        return;
    }
    double *stats = gsum + 2 * groups;
    for (int img = 0; img < n; img++) {
        gn_job j = {.nw = nw,
                    .x = x + (size_t)img * hw * c,
                    .y = y + (size_t)img * hw * c,
                    .c = c,
                    .xs = c,
                    .groups = groups,
                    .silu = silu,
                    .hw = hw,
                    .eps = eps,
                    .part = part,
                    .gmean = gsum,
                    .a = a,
                    .b = a + c};
        gn_stats_with(cx, &j, nth, stats);
        op_group_norm_fold(nw, stats, groups, eps, a);
        OP_PROF_TAG(OPK_GROUP_NORM, 8.0 * hw * c);
        threadpool_run(cx->tp, gn_apply, &j);
    }
    arena_release(&cx->scratch, m);
}

typedef struct ln_job {
    const norm_weights *nw;
    const float *x;
    float *y;
    long rows;
    int c;
    float eps;
} ln_job;

static void layer_norm_rows(void *p, int ith, int nth)
{
    const ln_job *j = p;
    long r0, r1;
    threadpool_range(j->rows, ith, nth, &r0, &r1);
    for (long r = r0; r < r1; r++) {
        const float *x = j->x + (size_t)r * j->c;
        float *y = j->y + (size_t)r * j->c;
        double sum = 0, ss = 0;
        for (int k = 0; k < j->c; k++)
            sum += x[k];
        double mean = sum / j->c;
        for (int k = 0; k < j->c; k++) {
            double d = x[k] - mean;
            ss += d * d;
        }
        float inv = (float)(1.0 / sqrt(ss / j->c + j->eps)), fm = (float)mean;
        for (int k = 0; k < j->c; k++)
            y[k] = (x[k] - fm) * inv * j->nw->g[k] + j->nw->b[k];
    }
}

void op_layer_norm(gi_compute *cx, const norm_weights *nw, const float *x, long rows, int c,
                   float eps, float *y)
{
    ln_job j = {nw, x, y, rows, c, eps};
    OP_PROF_TAG(OPK_LAYER_NORM, 8.0 * rows * c);
    threadpool_run(cx->tp, layer_norm_rows, &j);
}
