/* args - strict numeric argument parsing for the CLI. */
#include "cli/args.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int arg_int(const char *name, const char *s, long min, long max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) {
        fprintf(stderr, "gesso: %s: '%s' is not an integer\n", name, s);
        return -1;
    }
    if (v < min || v > max) {
        fprintf(stderr, "gesso: %s: %ld is outside %ld..%ld\n", name, v, min, max);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Digits only: strtoull would take " 5" and "+5", and wrap "-5" to 2^64-5. */
static int parse_u64(const char *s, uint64_t *out)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || s[n] != '\0')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno == ERANGE)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

int arg_u64(const char *name, const char *s, uint64_t *out)
{
    if (parse_u64(s, out) == 0)
        return 0;
    fprintf(stderr, "gesso: %s: '%s' is not an integer in 0..18446744073709551615\n", name, s);
    return -1;
}

int arg_seed(const char *s, uint64_t *out, int *random)
{
    *random = strcmp(s, "-1") == 0;
    if (*random || parse_u64(s, out) == 0)
        return 0;
    fprintf(stderr,
            "gesso: --seed: '%s' is not an integer in 0..18446744073709551615, or -1 (random)\n",
            s);
    return -1;
}

int arg_double(const char *name, const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) {
        fprintf(stderr, "gesso: %s: '%s' is not a number\n", name, s);
        return -1;
    }
    if (v < min || v > max) {
        fprintf(stderr, "gesso: %s: %g is outside %g..%g\n", name, v, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int arg_float(const char *name, const char *s, double min, double max, float *out)
{
    double v;
    if (arg_double(name, s, min, max, &v) != 0)
        return -1;
    *out = (float)v;
    return 0;
}

int arg_size(const char *name, const char *s, int *w, int *h)
{
    const char *x = strchr(s, 'x');
    if (!x)
        x = strchr(s, 'X');
    if (!x) {
        if (arg_int(name, s, 1, 1 << 20, w))
            return -1;
        *h = *w;
        return 0;
    }
    char buf[64];
    size_t n = (size_t)(x - s);
    if (n == 0 || n >= sizeof buf) {
        fprintf(stderr, "gesso: %s: '%s' is not WIDTHxHEIGHT\n", name, s);
        return -1;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (arg_int(name, buf, 1, 1 << 20, w) || arg_int(name, x + 1, 1, 1 << 20, h))
        return -1;
    return 0;
}

int arg_pair(const char *name, const char *s, long min, long max, int *a, int *b)
{
    const char *comma = strchr(s, ',');
    char buf[64];
    size_t n = comma ? (size_t)(comma - s) : 0;
    if (!comma || n == 0 || n >= sizeof buf) {
        fprintf(stderr, "gesso: %s: '%s' is not two numbers A,B\n", name, s);
        return -1;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (arg_int(name, buf, min, max, a) || arg_int(name, comma + 1, min, max, b))
        return -1;
    return 0;
}

int arg_prediction(const char *s, gs_prediction *out)
{
    if (strcmp(s, "auto") == 0)
        *out = GS_PREDICTION_AUTO;
    else if (strcmp(s, "eps") == 0 || strcmp(s, "epsilon") == 0)
        *out = GS_PREDICTION_EPS;
    else if (strcmp(s, "v") == 0)
        *out = GS_PREDICTION_V;
    else {
        fprintf(stderr, "gesso: --prediction: '%s' is not auto, eps or v\n", s);
        return -1;
    }
    return 0;
}

int arg_precision(const char *s, gs_precision *out)
{
    if (strcmp(s, "auto") == 0)
        *out = GS_PRECISION_AUTO;
    else if (strcmp(s, "f32") == 0)
        *out = GS_PRECISION_F32;
    else if (strcmp(s, "bf16") == 0)
        *out = GS_PRECISION_BF16;
    else if (strcmp(s, "f16") == 0)
        *out = GS_PRECISION_F16;
    else {
        fprintf(stderr, "gesso: --precision: '%s' is not auto, f32, bf16 or f16\n", s);
        return -1;
    }
    return 0;
}

int arg_bytes(const char *name, const char *s, size_t *out)
{
    static const char units[] = "KMGT";
    char *end = NULL;
    errno = 0;
    /* a digit first: strtoull would take "-1" and " 5" */
    unsigned long long v = *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
    if (errno || v == 0) {
        fprintf(stderr, "gesso: %s: '%s' is not a positive size (like 512M, 6G or bytes)\n", name,
                s);
        return -1;
    }
    int shift = 0;
    if (*end) {
        const char *u = strchr(units, end[0] >= 'a' ? end[0] - ('a' - 'A') : end[0]);
        const char *rest = end + 1;
        if (u && *u &&
            (strcmp(rest, "") == 0 || strcmp(rest, "B") == 0 || strcmp(rest, "iB") == 0 ||
             strcmp(rest, "b") == 0))
            shift = 10 * (int)(u - units + 1);
        else {
            fprintf(stderr, "gesso: %s: '%s' has an unknown unit (use K, M, G or T)\n", name, s);
            return -1;
        }
    }
    if (v > (SIZE_MAX >> shift)) {
        fprintf(stderr, "gesso: %s: '%s' is too large\n", name, s);
        return -1;
    }
    *out = (size_t)v << shift;
    return 0;
}

int arg_vae_tile(const char *s, int *out)
{
    if (strcmp(s, "auto") == 0) {
        *out = 0;
        return 0;
    }
    if (strcmp(s, "never") == 0) {
        *out = -1;
        return 0;
    }
    if (arg_int("--vae-tile", s, 64, 4096, out) != 0)
        return -1;
    if (*out % 8) {
        fprintf(stderr, "gesso: --vae-tile: %d is not a multiple of 8\n", *out);
        return -1;
    }
    return 0;
}
