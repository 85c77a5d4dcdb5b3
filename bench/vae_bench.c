/*
 * vae_bench - the VAE decoder of a checkpoint, alone: decodes of a random
 * latent, timed, with the op timers per kind. The whole-pipeline `gesso bench`
 * moves 10-15 % between runs on a shared machine, more than a decoder change
 * does; this isolates the decode and prints, per kind, where its time goes.
 *
 * Usage: vae_bench FILE [--latent HxW] [--reps N] [--threads N] [--bf16 | --f16]
 *                       [--prefix P]
 * e.g. vae_bench sd15.safetensors --latent 64x64 --reps 3
 *
 * The weights are kept as an engine of that precision keeps them (f32 by
 * default); the decode runs the products the way this CPU runs them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compute/compute.h"
#include "compute/gemm_bf16.h"
#include "compute/op_prof.h"
#include "model/vae.h"
#include "model/weights.h"
#include "bench_util.h"

static int usage(void)
{
    fprintf(stderr, "usage: vae_bench FILE [--latent HxW] [--reps N] [--threads N] "
                    "[--bf16 | --f16] [--prefix P]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    const char *path = argv[1], *prefix = "first_stage_model.";
    int h = 64, w = 64, reps = 3, threads = 0, half = WL_F32;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--latent") == 0 && v && sscanf(v, "%dx%d", &h, &w) == 2)
            i++;
        else if (strcmp(a, "--reps") == 0 && v)
            reps = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--threads") == 0 && v)
            threads = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--prefix") == 0 && v)
            prefix = argv[++i];
        else if (strcmp(a, "--bf16") == 0)
            half = WL_BF16;
        else if (strcmp(a, "--f16") == 0)
            half = WL_F16;
        else
            return usage();
    }
    if (h < 1 || w < 1 || reps < 1)
        return usage();
    gi_error err = {0};
    gi_compute *cx = NULL;
    st_file *f = NULL;
    vae *m = NULL;
    if (compute_create(threads, &cx, &err) != GS_OK || st_open(path, &f, &err) != GS_OK) {
        fprintf(stderr, "vae_bench: %s\n", err.msg);
        return 1;
    }
    cx->weights_f16 = half == WL_F16;
    cx->winograd_bf16 = half == WL_BF16 && gemm_bf16_preferred();
    int saved = compute_enter(cx);
    gs_status st = vae_load(f, prefix, half, NULL, &m, &err);
    compute_leave(saved);
    st_close(f);
    if (st != GS_OK) {
        fprintf(stderr, "vae_bench: %s\n", err.msg);
        return 1;
    }
    int z = vae_latent_channels(m);
    size_t nl = (size_t)h * w * z, ni = (size_t)64 * h * w * 3;
    float *lat = malloc(nl * sizeof *lat), *img = malloc(ni * sizeof *img);
    if (!lat || !img)
        return 1;
    srand(1);
    for (size_t i = 0; i < nl; i++)
        lat[i] = 2.0f * ((float)rand() / (float)RAND_MAX - 0.5f);
    op_prof sum;
    memset(&sum, 0, sizeof sum);
    double best = 1e30, total = 0;
    for (int r = 0; r < reps; r++) {
        op_prof p0 = cx->prof;
        cx->prof_on = 1;
        op_prof_cur = &cx->prof;
        double t0 = now_s();
        saved = compute_enter(cx);
        st = vae_decode(m, cx, lat, 1, h, w, img, &err);
        compute_leave(saved);
        double dt = now_s() - t0;
        op_prof_cur = NULL;
        if (st != GS_OK) {
            fprintf(stderr, "vae_bench: %s\n", err.msg);
            return 1;
        }
        for (int k = 0; k < OPK_N; k++)
            sum.s[k] += cx->prof.s[k] - p0.s[k];
        best = dt < best ? dt : best;
        total += dt;
        printf("decode %d: %.3f s\n", r + 1, dt);
    }
    printf("%dx%d latent -> %dx%d: best %.3f s, mean %.3f s of %d\n", w, h, 8 * w, 8 * h, best,
           total / reps, reps);
    for (int k = 0; k < OPK_N; k++)
        if (sum.s[k] > 0)
            printf("  %-12s %8.3f s per decode\n", op_prof_name((op_kind)k), sum.s[k] / reps);
    vae_free(m);
    free(lat);
    free(img);
    compute_free(cx);
    return 0;
}
