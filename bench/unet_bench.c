/*
 * unet_bench - one UNet forward of a checkpoint at a given latent size and
 * batch, timed against the FLOP floor the way `gesso bench` times SD1.5 steps
 * (counted FLOPs of GEMMs, convolutions and attention / the 2048^3 GEMM rate,
 * best of before and after). For families the pipeline does not run yet
 * (SDXL, SD2), straight on the model layer; the weights stay as the engine
 * holds them (f32, or bf16 with --bf16, or f16 with --f16).
 *
 * Usage: unet_bench FILE [--latent HxW]... [--batch N] [--bf16 | --f16] [--threads N]
 *                        [--heads N | --head-dim N] [--tokens N] [--reps N]
 *                        [--attention-ab | --f16-ab]
 * e.g. unet_bench sdxl.safetensors --latent 128x128 --latent 96x96 --batch 2
 *
 * --attention-ab: every rep runs the forward twice, with this CPU's one-pass
 * attention kernel and with the blocked GEMM path, in the order A B B A A B ...
 * (the first forward of a plain run order wins the best-of on a machine that
 * slows through the run: measured 0.97 one way round and 1.05 the other),
 * and prints best and mean of each: on a shared machine whose speed drifts
 * between runs, the ratio within one process is what a kernel change is
 * judged by.
 *
 * --f16-ab: the same order between the f32 weights and a second copy in f16
 * (widened for every product), with the op timers on: per kind, the seconds of
 * a forward with each, to see where widened weights cost their time.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compute/compute.h"
#include "compute/gemm_bf16.h"
#include "compute/op_prof.h"
#include "model/unet.h"
#include "bench_util.h"

#define MAX_SIZES 8

static int gemm_rate(gi_compute *cx, int bf16, double *rate)
{
    gi_error err = {0};
    int saved = compute_enter(cx);
    gs_status st = compute_gemm_rate(cx, bf16, rate, &err);
    compute_leave(saved);
    if (st != GS_OK)
        fprintf(stderr, "unet_bench: GEMM rate: %s\n", err.msg);
    return st == GS_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: unet_bench FILE [--latent HxW]... [--batch N] [--bf16 | --f16] "
                        "[--threads N] [--heads N | --head-dim N] [--tokens N] [--reps N] "
                        "[--attention-ab | --f16-ab]\n");
        return 2;
    }
    const char *path = argv[1];
    int sizes[MAX_SIZES][2], nsizes = 0, batch = 2, bf16 = 0, threads = 0, tokens = 77, reps = 1;
    int attention_ab = 0, f16 = 0, f16_ab = 0;
    unet_opts opts = {.head_dim = 64};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (strcmp(a, "--bf16") == 0) {
            bf16 = 1;
            continue;
        }
        if (strcmp(a, "--f16") == 0) {
            f16 = 1;
            continue;
        }
        if (strcmp(a, "--f16-ab") == 0) {
            f16_ab = 1;
            continue;
        }
        if (strcmp(a, "--attention-ab") == 0) {
            attention_ab = 1;
            continue;
        }
        i++;
        if (strcmp(a, "--latent") == 0 && nsizes < MAX_SIZES &&
            sscanf(v, "%dx%d", &sizes[nsizes][0], &sizes[nsizes][1]) == 2)
            nsizes++;
        else if (strcmp(a, "--batch") == 0)
            batch = (int)strtol(v, NULL, 10);
        else if (strcmp(a, "--threads") == 0)
            threads = (int)strtol(v, NULL, 10);
        else if (strcmp(a, "--heads") == 0)
            opts = (unet_opts){.heads = (int)strtol(v, NULL, 10)};
        else if (strcmp(a, "--head-dim") == 0)
            opts = (unet_opts){.head_dim = (int)strtol(v, NULL, 10)};
        else if (strcmp(a, "--tokens") == 0)
            tokens = (int)strtol(v, NULL, 10);
        else if (strcmp(a, "--reps") == 0)
            reps = (int)strtol(v, NULL, 10);
        else {
            fprintf(stderr, "unet_bench: bad argument %s\n", a);
            return 2;
        }
    }
    if (nsizes == 0) {
        sizes[0][0] = sizes[0][1] = 128;
        nsizes = 1;
    }
    gi_error err = {0};
    gi_compute *cx;
    if (compute_create(threads, &cx, &err) != GS_OK) {
        fprintf(stderr, "unet_bench: %s\n", err.msg);
        return 1;
    }
    /* as a bf16 engine sets its context (engine.c): attention and Winograd in
       bf16 where bf16 outruns f32 */
    cx->attn_bf16 = bf16 && gemm_bf16_native(cx->bf16);
    cx->winograd_bf16 = bf16 && gemm_bf16_preferred();
    cx->attn_fused_bf16 = cx->attn_fused_bf16 && gemm_bf16_preferred();
    cx->weights_f16 = f16 && !bf16; /* f16 weights, every product widened to f32 */
    double rate0 = 0, rate1 = 0;
    if (!gemm_rate(cx, bf16, &rate0))
        return 1;
    st_file *f;
    unet *m;
    double t0 = now_s();
    if (st_open(path, &f, &err) != GS_OK) {
        fprintf(stderr, "unet_bench: %s\n", err.msg);
        return 1;
    }
    int saved = compute_enter(cx); /* the conversion runs on the OpenMP team */
    gs_status st = unet_load(f, "model.diffusion_model.", &opts,
                             bf16  ? WL_BF16
                             : f16 ? WL_F16
                                   : WL_F32,
                             NULL, &m, &err);
    compute_leave(saved);
    if (st != GS_OK) {
        fprintf(stderr, "unet_bench: %s\n", err.msg);
        return 1;
    }
    double load_s = now_s() - t0;
    unet *m16 = NULL; /* --f16-ab: the same weights in f16 */
    if (f16_ab && !bf16 && !f16) {
        saved = compute_enter(cx);
        st = unet_load(f, "model.diffusion_model.", &opts, WL_F16, NULL, &m16, &err);
        compute_leave(saved);
        if (st != GS_OK) {
            fprintf(stderr, "unet_bench: %s\n", err.msg);
            return 1;
        }
    }
    int cin = unet_in_channels(m), cout = unet_out_channels(m), ctx = unet_context_dim(m),
        adm = unet_adm_channels(m);
    printf("%s: %s weights, %.2f GB, loaded in %.1f s; in %d, out %d, context %d, adm %d, "
           "threads %d\n",
           path,
           bf16  ? "bf16"
           : f16 ? "f16"
                 : "f32",
           unet_weight_bytes(m) * 1e-9, load_s, cin, cout, ctx, adm, compute_threads(cx));
    srand(1);
    for (int s = 0; s < nsizes; s++) {
        int h = sizes[s][0], w = sizes[s][1];
        size_t px = (size_t)batch * h * w;
        float *x = random_floats(px * cin, 2.0f), *out = malloc(px * cout * sizeof *out);
        float *c = random_floats((size_t)batch * tokens * ctx, 2.0f);
        float *y = adm > 0 ? random_floats((size_t)batch * adm, 2.0f) : NULL;
        float *t = malloc((size_t)batch * sizeof *t);
        for (int b = 0; b < batch; b++)
            t[b] = 500.0f + b;
        double best = 1e30, best_blocked = 1e30, sum = 0, sum_blocked = 0, flops = 0;
        int fused = cx->attn_fused, avx2 = cx->attn_avx2, ab = attention_ab || m16;
        op_prof kinds[2]; /* --f16-ab: per kind, f32 and f16 */
        memset(kinds, 0, sizeof kinds);
        for (int r = 0; r < reps * (ab ? 2 : 1); r++) {
            /* A B B A A B B A ...: a speed that drifts through the run weighs on both alike */
            int blocked = ab && (r % 4 == 1 || r % 4 == 2);
            cx->attn_fused = blocked && attention_ab ? 0 : fused;
            cx->attn_avx2 = blocked && attention_ab ? 0 : avx2;
            cx->weights_f16 = m16 ? blocked : f16 && !bf16;
            op_prof p0 = cx->prof;
            cx->prof_on = m16 != NULL;
            op_prof_cur = m16 ? &cx->prof : NULL;
            double f0 = cx->flops, s0 = now_s();
            saved = compute_enter(cx);
            st = unet_forward(blocked && m16 ? m16 : m, cx, x, t, c, y, batch, h, w, tokens, out,
                              &err);
            compute_leave(saved);
            double dt = now_s() - s0;
            op_prof_cur = NULL;
            for (int k = 0; m16 && k < OPK_N; k++) {
                kinds[blocked].s[k] += cx->prof.s[k] - p0.s[k];
                kinds[blocked].calls[k] += cx->prof.calls[k] - p0.calls[k];
            }
            if (st != GS_OK) {
                fprintf(stderr, "unet_bench: %s\n", err.msg);
                return 1;
            }
            flops = cx->flops - f0;
            if (blocked) {
                best_blocked = dt < best_blocked ? dt : best_blocked;
                sum_blocked += dt;
            } else {
                best = dt < best ? dt : best;
                sum += dt;
            }
        }
        cx->attn_fused = fused;
        cx->attn_avx2 = avx2;
        if (m16) {
            printf("f32 / f16 weights A/B: f32 best %.2f s mean %.2f s, f16 best %.2f s mean "
                   "%.2f s (%d each, ABBA order): f16 / f32 %.3f (means %.3f)\n",
                   best, sum / reps, best_blocked, sum_blocked / reps, reps, best_blocked / best,
                   sum_blocked / sum);
            printf("  %-12s %10s %10s %8s\n", "kind", "f32 s", "f16 s", "calls");
            for (int k = 0; k < OPK_N; k++)
                if (kinds[0].s[k] > 0 || kinds[1].s[k] > 0)
                    printf("  %-12s %10.3f %10.3f %8ld\n", op_prof_name((op_kind)k),
                           kinds[0].s[k] / reps, kinds[1].s[k] / reps, kinds[1].calls[k] / reps);
        }
        if (attention_ab)
            printf("attention A/B: one-pass %s best %.2f s mean %.2f s, blocked best %.2f s mean "
                   "%.2f s (%d each, ABBA order): one-pass / blocked %.3f (means %.3f)\n",
                   fused  ? "AVX-512"
                   : avx2 ? "AVX2"
                          : "(none here)",
                   best, sum / reps, best_blocked, sum_blocked / reps, reps, best / best_blocked,
                   sum / sum_blocked);
        if (!gemm_rate(cx, bf16, &rate1))
            return 1;
        double rate = rate0 > rate1 ? rate0 : rate1, floor_s = flops * 1e-9 / rate;
        printf("latent %dx%d (image %dx%d) batch %d: %.2f s (best of %d), %.0f GFLOP at %.0f "
               "GFLOP/s, GEMM rate %.0f (before %.0f, after %.0f) -> floor %.2f s, %.2fx the "
               "floor; scratch peak %.2f GB\n",
               h, w, 8 * h, 8 * w, batch, best, reps, flops * 1e-9, flops * 1e-9 / best, rate,
               rate0, rate1, floor_s, best / floor_s, cx->scratch.peak * 1e-9);
        fflush(stdout);
        free(x);
        free(out);
        free(c);
        free(y);
        free(t);
    }
    unet_free(m);
    unet_free(m16);
    st_close(f);
    compute_free(cx);
    return 0;
}
