/* testutil - shared helpers for the tests. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static st_file *golden_file;

const char *fixture_path(const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", GS_FIXTURES, name);
    return buf;
}

st_file *golden(void)
{
    if (!golden_file) {
        gs_error err = {0};
        if (st_open(fixture_path("tiny-sd15-golden.safetensors"), &golden_file, &err) != GS_OK) {
            fprintf(stderr, "cannot open golden file: %s\n", err.msg);
            abort();
        }
    }
    return golden_file;
}

double *golden_f64(const char *name, size_t *numel)
{
    const st_tensor *t = st_find(golden(), name);
    if (!t) {
        fprintf(stderr, "golden tensor '%s' missing\n", name);
        abort();
    }
    double *d = malloc((size_t)t->numel * sizeof *d + 8);
    gs_error err = {0};
    if (st_to_f64(t, d, &err) != GS_OK) {
        fprintf(stderr, "golden '%s': %s\n", name, err.msg);
        abort();
    }
    if (numel)
        *numel = (size_t)t->numel;
    return d;
}

float *golden_f32(const char *name, size_t *numel)
{
    size_t n;
    double *d = golden_f64(name, &n);
    float *f = malloc(n * sizeof *f + 4);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)d[i];
    free(d);
    if (numel)
        *numel = n;
    return f;
}

double rel_l2_f32_f64(const float *a, const double *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

double max_abs_diff_f32_f64(const float *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || isnan(d))
            m = d;
    }
    return m;
}

void nchw_to_nhwc_f64(const double *src, double *dst, int n, int c, int h, int w)
{
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    dst[(((size_t)b * h + y) * w + x) * c + ch] =
                        src[(((size_t)b * c + ch) * h + y) * w + x];
}
