/*
 * bench_util - what every benchmark here needs: a monotonic clock in seconds
 * and buffers of uniform random floats (rand(): benchmarks seed nothing, so
 * two runs of one build read the same data).
 */
#ifndef GS_BENCH_UTIL_H
#define GS_BENCH_UTIL_H

#include <stdlib.h>
#include <time.h>

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* n floats uniform in [-scale/2, scale/2] (malloc'ed; NULL when out of memory) */
static inline float *random_floats(size_t n, float scale)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; p && i < n; i++)
        p[i] = scale * ((float)rand() / (float)RAND_MAX - 0.5f);
    return p;
}

#endif
