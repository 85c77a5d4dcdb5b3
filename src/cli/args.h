/* args - strict parsing of numeric command-line values (no atoi: garbage is an error). */
#ifndef GS_CLI_ARGS_H
#define GS_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "gesso.h"

/* Each returns 0 on success, -1 (and prints "gesso: --name: ...") on error. */
int arg_int(const char *name, const char *s, long min, long max, int *out);
int arg_u64(const char *name, const char *s, uint64_t *out);
/* --seed: 0..2^64-1, or -1 (*random set) for one drawn at random */
int arg_seed(const char *s, uint64_t *out, int *random);
int arg_double(const char *name, const char *s, double min, double max, double *out);
int arg_float(const char *name, const char *s, double min, double max, float *out);
/* "auto", "f32", "bf16" or "f16" */
int arg_precision(const char *s, gs_precision *out);
/* --vae-tile: "auto" (0), "never" (-1) or a size in pixels (multiple of 8, >= 64) */
int arg_vae_tile(const char *s, int *out);
/* "512x768" or "512" (square) */
int arg_size(const char *name, const char *s, int *w, int *h);
/* "A,B": two integers in min..max (--crop-top-left TOP,LEFT) */
int arg_pair(const char *name, const char *s, long min, long max, int *a, int *b);
/* --prediction: "auto", "eps" (or "epsilon") or "v" */
int arg_prediction(const char *s, gs_prediction *out);
/* A byte count: plain bytes, or with a binary suffix K, M, G, T (also KB/KiB
   and lower case; all powers of 1024): "512M", "6G", "6GiB". Must be > 0. */
int arg_bytes(const char *name, const char *s, size_t *out);

/* Exit codes every subcommand uses, documented in --help. */
enum {
    EXIT_OK = 0,
    EXIT_FAILURE_OTHER = 1, /* generation failed for another reason */
    EXIT_USAGE = 2,         /* bad command line or parameter values */
    EXIT_INPUT = 3,         /* model or input image missing, unreadable or unsupported */
    EXIT_OUTPUT = 4,        /* output could not be written */
    EXIT_CANCELLED = 5      /* interrupted (SIGINT/SIGTERM) */
};

#endif
