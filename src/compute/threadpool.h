/*
 * threadpool - a fixed set of worker threads for the engine's own kernels.
 *
 * A kernel is split by thread index and count (ggml's ith/nth): threadpool_run
 * calls fn(ctx, ith, nth) on every thread, the caller included, and returns
 * when all are done. Workers sleep on a condition variable between runs.
 */
#ifndef GS_THREADPOOL_H
#define GS_THREADPOOL_H

#include "common/error.h"

typedef struct threadpool threadpool;
typedef void (*threadpool_fn)(void *ctx, int ith, int nth);

gs_status threadpool_create(int threads, threadpool **out, gi_error *err);
void threadpool_free(threadpool *tp);
int threadpool_size(const threadpool *tp);
void threadpool_run(threadpool *tp, threadpool_fn fn, void *ctx);

/* The [begin, end) share of n items for thread ith of nth. */
static inline void threadpool_range(long n, int ith, int nth, long *begin, long *end)
{
    long per = n / nth, extra = n % nth;
    *begin = ith * per + (ith < extra ? ith : extra);
    *end = *begin + per + (ith < extra ? 1 : 0);
}

#endif
