/*
 * store_stats - throughput and latency figures for /v1/stats, summed from the
 * finished jobs an engine reads: counts by outcome, work done, and nearest-
 * rank percentiles of step times (from each result's "step_ms") and of waits.
 * Shared so that every engine reports the same figures from the same rows.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "queue/store_engine.h"
#include "support/json_u64.h"

static void samples_add(store_samples *s, double x)
{
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 256;
        double *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v)
            return;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentiles 50, 90, 99. */
static void percentiles(store_samples *s, double out[3])
{
    static const double ranks[3] = {0.50, 0.90, 0.99};
    memset(out, 0, 3 * sizeof out[0]);
    if (s->n == 0)
        return;
    qsort(s->v, (size_t)s->n, sizeof s->v[0], cmp_double);
    for (int k = 0; k < 3; k++) {
        int i = (int)(ranks[k] * s->n + 0.999999) - 1;
        out[k] = s->v[i < 0 ? 0 : i >= s->n ? s->n - 1 : i];
    }
}

static void add_step_times(store_samples *steps, const char *result)
{
    if (!result)
        return;
    json_t *j = json_u64_loadb(result, strlen(result), 0, NULL, NULL, NULL);
    json_t *arr = j ? json_object_get(j, "step_ms") : NULL;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (json_is_number(v))
            samples_add(steps, json_number_value(v) / 1000.0);
    }
    json_decref(j);
}

void store_stats_add(store_stats_acc *a, job_status status, double megapixelsteps,
                     int64_t created_ms, int64_t started_ms, int64_t finished_ms,
                     const char *result_json)
{
    job_stats *out = &a->stats;
    if (status == JOB_FAILED)
        out->failed++;
    else if (status == JOB_CANCELLED)
        out->cancelled++;
    if (status != JOB_SUCCEEDED)
        return;
    out->succeeded++;
    out->megapixelsteps += megapixelsteps;
    if (started_ms > 0) {
        out->busy_s += (double)(finished_ms - started_ms) / 1000.0;
        if (!out->first_start_ms || started_ms < out->first_start_ms)
            out->first_start_ms = started_ms;
        samples_add(&a->waits, (double)(started_ms - created_ms) / 1000.0);
    }
    add_step_times(&a->steps, result_json);
}

void store_stats_end(store_stats_acc *a, job_stats *out)
{
    *out = a->stats;
    percentiles(&a->steps, out->step_s);
    percentiles(&a->waits, out->wait_s);
    out->step_samples = a->steps.n;
    out->wait_samples = a->waits.n;
    free(a->steps.v);
    free(a->waits.v);
    memset(a, 0, sizeof *a);
}
