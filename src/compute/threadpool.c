/* threadpool - pthread workers released by a generation counter. */
#include "compute/threadpool.h"

#include <pthread.h>

#include "common/alloc.h"

struct threadpool {
    int n;              /* threads including the caller */
    pthread_t *threads; /* [n - 1] */
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    unsigned long generation;
    int pending;
    int stop;
    threadpool_fn fn;
    void *ctx;
};

typedef struct worker_arg {
    threadpool *tp;
    int ith;
} worker_arg;

static void *worker_main(void *p)
{
    worker_arg *wa = p;
    threadpool *tp = wa->tp;
    int ith = wa->ith;
    gs_free(wa);
    unsigned long seen = 0;
    pthread_mutex_lock(&tp->mu);
    for (;;) {
        while (!tp->stop && tp->generation == seen)
            pthread_cond_wait(&tp->start, &tp->mu);
        if (tp->stop)
            break;
        seen = tp->generation;
        threadpool_fn fn = tp->fn;
        void *ctx = tp->ctx;
        pthread_mutex_unlock(&tp->mu);
        fn(ctx, ith, tp->n);
        pthread_mutex_lock(&tp->mu);
        if (--tp->pending == 0)
            pthread_cond_signal(&tp->done);
    }
    pthread_mutex_unlock(&tp->mu);
    return NULL;
}

gs_status threadpool_create(int threads, threadpool **out, gs_error *err)
{
    *out = NULL;
    if (threads < 1)
        threads = 1;
    threadpool *tp = gs_calloc(1, sizeof *tp);
    if (!tp)
        return gs_fail(err, GS_ERR_NO_MEMORY, "out of memory creating threads");
    tp->n = 1;
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->start, NULL);
    pthread_cond_init(&tp->done, NULL);
    tp->threads = gs_calloc((size_t)threads, sizeof *tp->threads);
    if (!tp->threads) {
        threadpool_free(tp);
        return gs_fail(err, GS_ERR_NO_MEMORY, "out of memory creating threads");
    }
    for (int i = 1; i < threads; i++) {
        worker_arg *wa = gs_malloc(sizeof *wa);
        if (wa) {
            wa->tp = tp;
            wa->ith = i;
        }
        if (!wa || pthread_create(&tp->threads[i - 1], NULL, worker_main, wa) != 0) {
            gs_free(wa);
            threadpool_free(tp);
            return gs_fail(err, GS_ERR_NO_MEMORY, "cannot start compute thread %d", i);
        }
        tp->n++;
    }
    *out = tp;
    return GS_OK;
}

void threadpool_free(threadpool *tp)
{
    if (!tp)
        return;
    pthread_mutex_lock(&tp->mu);
    tp->stop = 1;
    pthread_cond_broadcast(&tp->start);
    pthread_mutex_unlock(&tp->mu);
    for (int i = 0; i < tp->n - 1; i++)
        pthread_join(tp->threads[i], NULL);
    pthread_mutex_destroy(&tp->mu);
    pthread_cond_destroy(&tp->start);
    pthread_cond_destroy(&tp->done);
    gs_free(tp->threads);
    gs_free(tp);
}

int threadpool_size(const threadpool *tp)
{
    return tp->n;
}

void threadpool_run(threadpool *tp, threadpool_fn fn, void *ctx)
{
    if (tp->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&tp->mu);
    tp->fn = fn;
    tp->ctx = ctx;
    tp->pending = tp->n - 1;
    tp->generation++;
    pthread_cond_broadcast(&tp->start);
    pthread_mutex_unlock(&tp->mu);
    fn(ctx, 0, tp->n);
    pthread_mutex_lock(&tp->mu);
    while (tp->pending > 0)
        pthread_cond_wait(&tp->done, &tp->mu);
    pthread_mutex_unlock(&tp->mu);
}
