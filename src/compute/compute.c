/* compute - context creation; the BLAS gets the same thread count as our pool. */
#include "compute/compute.h"

#include <unistd.h>

#include "common/alloc.h"
#include "compute/gemm.h"

gs_status compute_create(int threads, gs_compute **out, gs_error *err)
{
    *out = NULL;
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    gs_compute *cx = gs_calloc(1, sizeof *cx);
    if (!cx)
        return gs_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    arena_init(&cx->scratch);
    cx->threads = threads;
    gs_status st = threadpool_create(threads, &cx->tp, err);
    if (st != GS_OK) {
        compute_free(cx);
        return st;
    }
    gemm_set_threads(threads);
    *out = cx;
    return GS_OK;
}

void compute_free(gs_compute *cx)
{
    if (!cx)
        return;
    threadpool_free(cx->tp);
    arena_destroy(&cx->scratch);
    gs_free(cx);
}

int compute_threads(const gs_compute *cx)
{
    return cx->threads;
}

gs_status compute_begin(gs_compute *cx, gs_error *err)
{
    if (arena_reset(&cx->scratch) != 0)
        return gs_fail(err, GS_ERR_NO_MEMORY, "out of memory reserving scratch space");
    return GS_OK;
}
