/*
 * threadpool - the engine's kernels on OpenMP's thread team.
 *
 * oneDNN (our GEMM and convolution library) runs on OpenMP; giving our own
 * kernels a second set of threads made the two spin against each other on
 * every op boundary (a 512x512 UNet step took 26.6 s instead of 9.0 s on two
 * cores). Running both on one team removes the contention.
 */
#include "compute/threadpool.h"

#include <omp.h>

#include "common/alloc.h"
#include "compute/op_prof.h"

struct threadpool {
    int n;
};

gs_status threadpool_create(int threads, threadpool **out, gi_error *err)
{
    *out = NULL;
    threadpool *tp = gi_calloc(1, sizeof *tp);
    if (!tp)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory creating threads");
    tp->n = threads < 1 ? 1 : threads;
    *out = tp;
    return GS_OK;
}

void threadpool_free(threadpool *tp)
{
    gi_free(tp);
}

int threadpool_size(const threadpool *tp)
{
    return tp->n;
}

static void run(threadpool *tp, threadpool_fn fn, void *ctx)
{
    if (tp->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
#pragma omp parallel num_threads(tp->n)
    fn(ctx, omp_get_thread_num(), omp_get_num_threads());
}

void threadpool_run(threadpool *tp, threadpool_fn fn, void *ctx)
{
    op_prof *p = op_prof_cur;
    if (!p) {
        run(tp, fn, ctx);
        return;
    }
    /* the time includes the team's fork and join barrier: that is the op's cost */
    op_kind k = p->tag;
    double bytes = p->tag_bytes, t0 = op_prof_now();
    p->tag = OPK_OTHER;
    p->tag_bytes = 0;
    op_prof_cur = NULL; /* a GEMM inside the region is part of this run, not a second count */
    run(tp, fn, ctx);
    op_prof_cur = p;
    op_prof_add(p, k, t0, 0, bytes);
}
