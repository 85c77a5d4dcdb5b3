/* ops_elementwise - activations, adds, resizes and concatenation, split over threads. */
#include <math.h>
#include <string.h>

#include "compute/half.h"
#include "compute/op_prof.h"
#include "compute/ops.h"
#include "compute/vec_math.h"

typedef struct ew_job {
    float *y;
    const float *x;
    const float *v;
    long count;
    long per;
    int c;
    int kind;
} ew_job;

enum { EW_ADD, EW_SILU, EW_QUICK_GELU, EW_GELU, EW_ADD_BROADCAST };

GS_VEC_CLONES static void silu_span(const float *x, float *y, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = gi_silu(x[i]);
}

GS_VEC_CLONES static void quick_gelu_span(float *y, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = y[i] / (1.0f + gi_expf(-1.702f * y[i]));
}

GS_VEC_CLONES static void gelu_span(float *y, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = gi_gelu(y[i]);
}

static void ew_run(void *p, int ith, int nth)
{
    const ew_job *j = p;
    long i0, i1;
    threadpool_range(j->count, ith, nth, &i0, &i1);
    float *y = j->y;
    const float *x = j->x;
    switch (j->kind) {
    case EW_ADD:
        for (long i = i0; i < i1; i++)
            y[i] += x[i];
        break;
    case EW_SILU: silu_span(x + i0, y + i0, i1 - i0); break;
    case EW_QUICK_GELU: quick_gelu_span(y + i0, i1 - i0); break;
    case EW_GELU: gelu_span(y + i0, i1 - i0); break;
    case EW_ADD_BROADCAST:
        /* i indexes pixel rows of [n*per, c] */
        for (long r = i0; r < i1; r++) {
            const float *vv = j->v + (size_t)(r / j->per) * j->c;
            float *yy = y + (size_t)r * j->c;
            for (int k = 0; k < j->c; k++)
                yy[k] += vv[k];
        }
        break;
    }
}

void op_add(gi_compute *cx, float *y, const float *x, long count)
{
    ew_job j = {y, x, NULL, count, 0, 0, EW_ADD};
    OP_PROF_TAG(OPK_ELEMENTWISE, 12.0 * count);
    threadpool_run(cx->tp, ew_run, &j);
}

void op_silu(gi_compute *cx, const float *x, float *y, long count)
{
    ew_job j = {y, x, NULL, count, 0, 0, EW_SILU};
    OP_PROF_TAG(OPK_ELEMENTWISE, 8.0 * count);
    threadpool_run(cx->tp, ew_run, &j);
}

void op_quick_gelu(gi_compute *cx, float *x, long count)
{
    ew_job j = {x, x, NULL, count, 0, 0, EW_QUICK_GELU};
    OP_PROF_TAG(OPK_ELEMENTWISE, 8.0 * count);
    threadpool_run(cx->tp, ew_run, &j);
}

void op_gelu(gi_compute *cx, float *x, long count)
{
    ew_job j = {x, x, NULL, count, 0, 0, EW_GELU};
    OP_PROF_TAG(OPK_ELEMENTWISE, 8.0 * count);
    threadpool_run(cx->tp, ew_run, &j);
}

void op_add_broadcast(gi_compute *cx, float *y, const float *v, int n, long per, int c)
{
    ew_job j = {y, NULL, v, (long)n * per, per, c, EW_ADD_BROADCAST};
    OP_PROF_TAG(OPK_ELEMENTWISE, 8.0 * n * per * c);
    threadpool_run(cx->tp, ew_run, &j);
}

typedef struct geglu_job {
    const float *x;
    float *y;
    uint16_t *yb; /* or y rounded to bf16 here */
    long rows;
    int inner;
} geglu_job;

GS_VEC_CLONES static void geglu_rows(void *p, int ith, int nth)
{
    const geglu_job *j = p;
    long r0, r1;
    threadpool_range(j->rows, ith, nth, &r0, &r1);
    for (long r = r0; r < r1; r++) {
        const float *a = j->x + (size_t)r * 2 * j->inner;
        const float *g = a + j->inner;
        if (j->yb) {
            /* by chunks through floats: both loops vectorise, where one
               mixing them ran GEGLU 40 % slower */
            uint16_t *y = j->yb + (size_t)r * j->inner;
            for (int k0 = 0; k0 < j->inner; k0 += 64) {
                int n = j->inner - k0 < 64 ? j->inner - k0 : 64;
                float t[64];
                for (int k = 0; k < n; k++)
                    t[k] = a[k0 + k] * gi_gelu(g[k0 + k]);
                for (int k = 0; k < n; k++)
                    y[k0 + k] = gi_f32_to_bf16_round(t[k]);
            }
            continue;
        }
        float *y = j->y + (size_t)r * j->inner;
        for (int k = 0; k < j->inner; k++)
            y[k] = a[k] * gi_gelu(g[k]);
    }
}

void op_geglu(gi_compute *cx, const float *x, long rows, int inner, float *y)
{
    geglu_job j = {x, y, NULL, rows, inner};
    OP_PROF_TAG(OPK_GEGLU, 12.0 * rows * inner);
    threadpool_run(cx->tp, geglu_rows, &j);
}

void op_geglu_bf16(gi_compute *cx, const float *x, long rows, int inner, uint16_t *y)
{
    geglu_job j = {x, NULL, y, rows, inner};
    OP_PROF_TAG(OPK_GEGLU, 10.0 * rows * inner);
    threadpool_run(cx->tp, geglu_rows, &j);
}

typedef struct resize_job {
    const float *x;
    float *y;
    int n, h, w, c, oh, ow;
} resize_job;

static void resize_rows(void *p, int ith, int nth)
{
    const resize_job *j = p;
    long r0, r1;
    threadpool_range((long)j->n * j->oh, ith, nth, &r0, &r1);
    for (long r = r0; r < r1; r++) {
        int img = (int)(r / j->oh), oy = (int)(r % j->oh);
        int iy = (int)((long)oy * j->h / j->oh);
        for (int ox = 0; ox < j->ow; ox++) {
            int ix = (int)((long)ox * j->w / j->ow);
            memcpy(j->y + (((size_t)img * j->oh + oy) * j->ow + ox) * j->c,
                   j->x + (((size_t)img * j->h + iy) * j->w + ix) * j->c,
                   (size_t)j->c * sizeof(float));
        }
    }
}

void op_resize_nearest(gi_compute *cx, const float *x, int n, int h, int w, int c, int oh, int ow,
                       float *y)
{
    resize_job j = {x, y, n, h, w, c, oh, ow};
    OP_PROF_TAG(OPK_COPY, 4.0 * n * (h * w + oh * ow) * c);
    threadpool_run(cx->tp, resize_rows, &j);
}

typedef struct concat_job {
    const float *a, *b;
    float *y;
    int ca, cb;
    long pixels;
} concat_job;

static void concat_rows(void *p, int ith, int nth)
{
    const concat_job *j = p;
    long r0, r1;
    threadpool_range(j->pixels, ith, nth, &r0, &r1);
    int c = j->ca + j->cb;
    for (long r = r0; r < r1; r++) {
        memcpy(j->y + (size_t)r * c, j->a + (size_t)r * j->ca, (size_t)j->ca * sizeof(float));
        memcpy(j->y + (size_t)r * c + j->ca, j->b + (size_t)r * j->cb,
               (size_t)j->cb * sizeof(float));
    }
}

void op_concat_channels(gi_compute *cx, const float *a, int ca, const float *b, int cb, long pixels,
                        float *y)
{
    concat_job j = {a, b, y, ca, cb, pixels};
    OP_PROF_TAG(OPK_COPY, 8.0 * pixels * (ca + cb));
    threadpool_run(cx->tp, concat_rows, &j);
}
