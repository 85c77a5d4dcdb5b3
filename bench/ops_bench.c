/*
 * ops_bench - OpenBLAS against oneDNN (sgemm, convolution primitive f32 and
 * bf16, matmul bf16), and the engine's convolution (im2col + gemm_f32), on
 * the layer shapes of one SD1.5 512x512 CFG step and of its VAE decode.
 *
 * Each case: warm-up, then the median of REPS runs; GFLOP/s = 2*M*N*K / time.
 * Usage: ops_bench [threads]   (oneDNN threads follow OMP_NUM_THREADS)
 */
#include <cblas.h>
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compute/compute.h"
#include "compute/ops.h"
#include "bench_util.h"

#define REPS 5

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef void (*run_fn)(void *ctx);

static double median_time(run_fn fn, void *ctx)
{
    double t[REPS];
    fn(ctx); /* warm-up */
    for (int i = 0; i < REPS; i++) {
        double t0 = now_s();
        fn(ctx);
        t[i] = now_s() - t0;
    }
    qsort(t, REPS, sizeof t[0], cmpd);
    return t[REPS / 2];
}

static float *rnd(size_t n)
{
    float *p = aligned_alloc(64, (n * sizeof *p + 63) / 64 * 64);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        dnnl_status_t s_ = (x);                                                                    \
        if (s_ != dnnl_success) {                                                                  \
            fprintf(stderr, "oneDNN error %d at %s:%d\n", (int)s_, __FILE__, __LINE__);            \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static dnnl_engine_t eng;
static dnnl_stream_t strm;

/* ---- engine path: op_conv2d (im2col + sgemm) ---- */

typedef struct conv_case {
    const char *name;
    int n, h, w, cin, cout, k, stride;
} conv_case;

typedef struct ours_ctx {
    gi_compute *cx;
    conv_weights cw;
    const conv_case *c;
    float *x, *y;
} ours_ctx;

static void run_ours(void *p)
{
    ours_ctx *o = p;
    gi_error err;
    int pad = o->c->k / 2;
    int oh = (o->c->h + 2 * pad - o->c->k) / o->c->stride + 1;
    int ow = (o->c->w + 2 * pad - o->c->k) / o->c->stride + 1;
    compute_begin(o->cx, &err);
    op_conv2d(o->cx, &o->cw, o->x, o->c->n, o->c->h, o->c->w, o->c->stride, pad, pad, oh, ow, o->y,
              &err);
}

/* ---- oneDNN convolution primitive ---- */

typedef struct dnnl_conv {
    dnnl_primitive_t prim;
    dnnl_exec_arg_t args[4];
    int nargs;
} dnnl_conv;

static void run_dnnl(void *p)
{
    dnnl_conv *d = p;
    CHECK(dnnl_primitive_execute(d->prim, strm, d->nargs, d->args));
    CHECK(dnnl_stream_wait(strm));
}

static dnnl_memory_t mem_for(const dnnl_memory_desc_t *md)
{
    dnnl_memory_t m;
    CHECK(dnnl_memory_create(&m, md, eng, DNNL_MEMORY_ALLOCATE));
    return m;
}

static double dnnl_conv_time(const conv_case *c, dnnl_data_type_t dt)
{
    int pad = c->k / 2;
    int oh = (c->h + 2 * pad - c->k) / c->stride + 1, ow = (c->w + 2 * pad - c->k) / c->stride + 1;
    dnnl_memory_desc_t src, wei, bia, dst;
    dnnl_dims_t sd = {c->n, c->cin, c->h, c->w}, wd = {c->cout, c->cin, c->k, c->k}, bd = {c->cout},
                dd = {c->n, c->cout, oh, ow};
    CHECK(dnnl_memory_desc_init_by_tag(&src, 4, sd, dt, dnnl_nhwc));
    CHECK(dnnl_memory_desc_init_by_tag(&wei, 4, wd, dt, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&bia, 1, bd, dnnl_f32, dnnl_a));
    CHECK(dnnl_memory_desc_init_by_tag(&dst, 4, dd, dt, dnnl_nhwc));
    dnnl_dims_t strides = {c->stride, c->stride}, pl = {pad, pad}, pr = {pad, pad};
    dnnl_convolution_desc_t cd;
    CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
                                             &src, &wei, &bia, &dst, strides, pl, pr));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &cd, NULL, eng, NULL));
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_conv d;
    CHECK(dnnl_primitive_create(&d.prim, pd));
    dnnl_memory_t ms = mem_for(&src), mw = mem_for(wmd), mb = mem_for(&bia), md = mem_for(&dst);
    d.args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, ms};
    d.args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, mw};
    d.args[2] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, mb};
    d.args[3] = (dnnl_exec_arg_t){DNNL_ARG_DST, md};
    d.nargs = 4;
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    double t = median_time(run_dnnl, &d);
    fprintf(stderr, "    oneDNN %s impl: %s\n", dt == dnnl_bf16 ? "bf16" : "f32", impl);
    dnnl_memory_destroy(ms);
    dnnl_memory_destroy(mw);
    dnnl_memory_destroy(mb);
    dnnl_memory_destroy(md);
    dnnl_primitive_destroy(d.prim);
    dnnl_primitive_desc_destroy(pd);
    return t;
}

/* ---- GEMM ---- */

typedef struct gemm_ctx {
    int m, n, k;
    float *a, *b, *c;
    int which; /* 0 OpenBLAS cblas_sgemm, 1 dnnl_sgemm */
} gemm_ctx;

static void run_gemm(void *p)
{
    gemm_ctx *g = p;
    if (g->which == 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->m, g->n, g->k, 1.0f, g->a, g->k,
                    g->b, g->k, 0.0f, g->c, g->n);
    else
        dnnl_sgemm('N', 'T', g->m, g->n, g->k, 1.0f, g->a, g->k, g->b, g->k, 0.0f, g->c, g->n);
}

static double dnnl_matmul_bf16_time(int m, int n, int k)
{
    dnnl_memory_desc_t a, b, c;
    CHECK(dnnl_memory_desc_init_by_tag(&a, 2, (dnnl_dims_t){m, k}, dnnl_bf16, dnnl_ab));
    /* weights as stored: [n, k] row-major, i.e. B[k, n] in "ba" order */
    CHECK(dnnl_memory_desc_init_by_tag(&b, 2, (dnnl_dims_t){k, n}, dnnl_bf16, dnnl_ba));
    CHECK(dnnl_memory_desc_init_by_tag(&c, 2, (dnnl_dims_t){m, n}, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    CHECK(dnnl_matmul_desc_init(&md, &a, &b, NULL, &c));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL));
    dnnl_conv d;
    CHECK(dnnl_primitive_create(&d.prim, pd));
    dnnl_memory_t ma = mem_for(&a), mb = mem_for(&b), mc = mem_for(&c);
    d.args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, ma};
    d.args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, mb};
    d.args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, mc};
    d.nargs = 3;
    double t = median_time(run_dnnl, &d);
    dnnl_memory_destroy(ma);
    dnnl_memory_destroy(mb);
    dnnl_memory_destroy(mc);
    dnnl_primitive_destroy(d.prim);
    dnnl_primitive_desc_destroy(pd);
    return t;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 2;
    if (threads < 1)
        threads = 1;
    gi_compute *cx;
    gi_error err;
    if (compute_create(threads, &cx, &err) != GS_OK)
        return 1;
    CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    printf("threads %d\n\n", threads);

    printf("GEMM (A[m,k] x B[n,k]^T)             GFLOP/s:  OpenBLAS  dnnl_sgemm  oneDNN-bf16\n");
    static const int gemms[][3] = {{2048, 2048, 2048}, {8192, 320, 320}, {8192, 2560, 320},
                                   {8192, 320, 1280},  {2048, 640, 640}, {512, 1280, 1280},
                                   {4096, 4096, 40},   {4096, 40, 4096}};
    for (size_t i = 0; i < sizeof gemms / sizeof gemms[0]; i++) {
        int m = gemms[i][0], n = gemms[i][1], k = gemms[i][2];
        gemm_ctx g = {m, n, k, rnd((size_t)m * k), rnd((size_t)n * k), rnd((size_t)m * n), 0};
        double flop = 2.0 * m * n * k;
        double t0 = median_time(run_gemm, &g);
        g.which = 1;
        double t1 = median_time(run_gemm, &g);
        double t2 = dnnl_matmul_bf16_time(m, n, k);
        printf("  m=%5d n=%5d k=%5d                     %8.1f  %10.1f  %11.1f\n", m, n, k,
               flop / t0 * 1e-9, flop / t1 * 1e-9, flop / t2 * 1e-9);
        fflush(stdout);
        free(g.a);
        free(g.b);
        free(g.c);
    }

    printf("\nconvolution (NHWC)                   GFLOP/s:  engine im2col+gemm  oneDNN-f32  "
           "oneDNN-bf16\n");
    static const conv_case convs[] = {
        {"unet L0 3x3 320->320", 2, 64, 64, 320, 320, 3, 1},
        {"unet L1 3x3 640->640", 2, 32, 32, 640, 640, 3, 1},
        {"unet L2 3x3 1280->1280", 2, 16, 16, 1280, 1280, 3, 1},
        {"unet L3 3x3 1280->1280", 2, 8, 8, 1280, 1280, 3, 1},
        {"unet L1 3x3 320->640", 2, 32, 32, 320, 640, 3, 1},
        {"unet down 3x3/2 320", 2, 64, 64, 320, 320, 3, 2},
        {"unet 1x1 proj 320", 2, 64, 64, 320, 320, 1, 1},
        {"vae 64^2 3x3 512", 1, 64, 64, 512, 512, 3, 1},
        {"vae 128^2 3x3 512", 1, 128, 128, 512, 512, 3, 1},
        {"vae 256^2 3x3 256", 1, 256, 256, 256, 256, 3, 1},
        {"vae 512^2 3x3 128", 1, 512, 512, 128, 128, 3, 1},
    };
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
        const conv_case *c = &convs[i];
        int pad = c->k / 2;
        int oh = (c->h + 2 * pad - c->k) / c->stride + 1,
            ow = (c->w + 2 * pad - c->k) / c->stride + 1;
        double flop = 2.0 * c->n * oh * ow * c->cout * c->cin * c->k * c->k;
        ours_ctx o = {cx,
                      {.w = rnd((size_t)c->cout * c->cin * c->k * c->k),
                       .b = rnd((size_t)c->cout),
                       .cout = c->cout,
                       .cin = c->cin,
                       .k = c->k},
                      c,
                      rnd((size_t)c->n * c->h * c->w * c->cin),
                      rnd((size_t)c->n * oh * ow * c->cout)};
        double t0 = median_time(run_ours, &o);
        double t1 = dnnl_conv_time(c, dnnl_f32);
        double t2 = dnnl_conv_time(c, dnnl_bf16);
        printf("  %-26s %5.1f GFLOP     %8.1f  %10.1f  %11.1f\n", c->name, flop * 1e-9,
               flop / t0 * 1e-9, flop / t1 * 1e-9, flop / t2 * 1e-9);
        fflush(stdout);
        free(o.cw.w);
        free(o.cw.b);
        free(o.x);
        free(o.y);
    }
    dnnl_stream_destroy(strm);
    dnnl_engine_destroy(eng);
    compute_free(cx);
    return 0;
}
