/*
 * cmd_bench - `gesso bench`: where the time of one generation goes.
 *
 * Loads the model (timed), runs a real generation with the given settings and
 * reports text encoding, the median UNet step (CFG included, first step
 * treated as warm-up), VAE decode, total and peak RSS, as text or JSON.
 * The step is also split by the engine's op timers into matrix products,
 * convolution helpers (patch gathers, Winograd transforms) and the rest, so
 * the distance to the GEMM floor can be told apart from the non-GEMM work.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "gesso.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_after_warmup(const double *v, int n)
{
    if (n <= 0)
        return 0;
    int skip = n > 1 ? 1 : 0;
    int m = n - skip;
    double *s = malloc((size_t)m * sizeof *s);
    if (!s)
        return 0;
    memcpy(s, v + skip, (size_t)m * sizeof *s);
    qsort(s, (size_t)m, sizeof *s, cmp_double);
    double med = m % 2 ? s[m / 2] : 0.5 * (s[m / 2 - 1] + s[m / 2]);
    free(s);
    return med;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: gesso bench --model FILE [--width N] [--height N] [--steps N]\n"
                 "                   [--batch-size N] [--cfg-scale X] [--sampler NAME]\n"
                 "                   [--threads N] [--precision auto|f32|bf16|f16] [--json]\n"
                 "                   [--vae-tile N|auto|never] [--one-shot]\n"
                 "Times model load, text encode, one UNet step (median after a warm-up step,\n"
                 "CFG included), VAE decode and the whole generation; reports peak RSS.\n"
                 "--one-shot frees each network after its use, as gesso generate does (the\n"
                 "default keeps the model whole, as gesso serve does).\n"
                 "The step is split by op timers into GEMM, convolution gathers/transforms\n"
                 "and the rest; GESSO_OP_PROFILE=1 prints the per-kind table to stderr.\n");
}

int cmd_bench(int argc, char **argv)
{
    enum { OPT_STEPS = 256, OPT_CFG, OPT_SAMPLER, OPT_JSON, OPT_VAE_TILE, OPT_ONE_SHOT };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"width", required_argument, 0, 'W'},
        {"height", required_argument, 0, 'H'},
        {"steps", required_argument, 0, OPT_STEPS},
        {"batch-size", required_argument, 0, 'b'},
        {"cfg-scale", required_argument, 0, OPT_CFG},
        {"sampler", required_argument, 0, OPT_SAMPLER},
        {"threads", required_argument, 0, 't'},
        {"precision", required_argument, 0, 'P'},
        {"json", no_argument, 0, OPT_JSON},
        {"vae-tile", required_argument, 0, OPT_VAE_TILE},
        {"one-shot", no_argument, 0, OPT_ONE_SHOT},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    gs_params p;
    gs_params_init(&p);
    p.prompt = "a photograph of an astronaut riding a horse";
    p.sampler = "euler";
    p.steps = 4;
    const char *model_path = NULL;
    gs_precision precision = GS_PRECISION_AUTO;
    int threads = 0, json = 0, one_shot = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:W:H:b:t:h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'W': bad = arg_int("--width", optarg, 64, 4096, &p.width); break;
        case 'H': bad = arg_int("--height", optarg, 64, 4096, &p.height); break;
        case OPT_STEPS: bad = arg_int("--steps", optarg, 1, 1000, &p.steps); break;
        case 'b': bad = arg_int("--batch-size", optarg, 1, 64, &p.batch_size); break;
        case OPT_CFG: bad = arg_float("--cfg-scale", optarg, 0, 100, &p.cfg_scale); break;
        case OPT_SAMPLER: p.sampler = optarg; break;
        case 't': bad = arg_int("--threads", optarg, 0, 1024, &threads); break;
        case 'P': bad = arg_precision(optarg, &precision); break;
        case OPT_JSON: json = 1; break;
        case OPT_ONE_SHOT: one_shot = 1; break;
        case OPT_VAE_TILE: bad = arg_vae_tile(optarg, &p.vae_tile); break;
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
        if (bad)
            return EXIT_USAGE;
    }
    if (!model_path) {
        usage(stderr);
        return EXIT_USAGE;
    }
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = threads;
    eo.precision = precision;
    eo.op_timers = 1; /* the step's split; two clock reads per kernel call */
    gs_engine *eng = NULL;
    gs_model *model = NULL;
    gs_result *res = NULL;
    int rc = EXIT_OK;
    if (gs_engine_create(&eo, &eng) != GS_OK) {
        fprintf(stderr, "gesso: cannot start the engine\n");
        return EXIT_FAILURE_OTHER;
    }
    /* The GEMM rate is taken before the load and again after the run, and the
       better one is the floor's reference: a shared machine's speed drifts within
       a run, and the floor must not flatter the step by catching a slow moment. */
    double rate_before = 0;
    if (gs_engine_gemm_rate(eng, &rate_before) != GS_OK)
        rate_before = 0;
    double t0 = now_s();
    gs_status st = one_shot ? gs_model_load_one_shot(eng, model_path, &model)
                            : gs_model_load(eng, model_path, &model);
    double load_s = now_s() - t0;
    if (st != GS_OK) {
        fprintf(stderr, "gesso: %s\n", gs_engine_errmsg(eng));
        rc = st == GS_ERR_INVALID_ARGUMENT ? EXIT_USAGE : EXIT_INPUT;
        goto out;
    }
    if ((st = gs_generate(eng, model, &p, NULL, NULL, &res)) != GS_OK) {
        fprintf(stderr, "gesso: %s\n", gs_engine_errmsg(eng));
        rc = st == GS_ERR_INVALID_ARGUMENT ? EXIT_USAGE : EXIT_FAILURE_OTHER;
        goto out;
    }
    gs_timings tm;
    gs_result_timings(res, &tm);
    double rate = 0;
    if (gs_engine_gemm_rate(eng, &rate) != GS_OK || rate <= 0) {
        fprintf(stderr, "gesso: cannot measure the GEMM rate: %s\n", gs_engine_errmsg(eng));
        rc = EXIT_FAILURE_OTHER;
        goto out;
    }
    if (rate_before > rate)
        rate = rate_before;
    double step = median_after_warmup(tm.step_s, tm.n_steps);
    load_s += tm.load_s; /* one-shot: the UNet and VAE load inside the generation */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mb = ru.ru_maxrss / 1024.0;
    double images_per_s = tm.total_s > 0 ? p.batch_size / tm.total_s : 0;
    /* the floor: the step's FLOPs at the large-GEMM rate measured just now */
    double step_floor = tm.step_gflop / rate, vae_floor = tm.vae_decode_gflop / rate;
    double step_rate = step > 0 ? tm.step_gflop / step : 0;
    double vae_rate = tm.vae_decode_s > 0 ? tm.vae_decode_gflop / tm.vae_decode_s : 0;
    /* the split's shares are of the mean step it was measured on */
    double sm = tm.step_mean_s > 0 ? tm.step_mean_s : 1;
    double gemm_pct = 100 * tm.step_gemm_s / sm, aux_pct = 100 * tm.step_conv_aux_s / sm,
           other_pct = 100 * tm.step_other_s / sm;
    gs_model_info info;
    gs_model_get_info(model, &info);
    if (json) {
        printf("{\"model\":\"%s\",\"one_shot\":%s,\"compute_dtype\":\"%s\",\"matmul_dtype\":\"%s\","
               "\"vae_matmul_dtype\":\"%s\",\"width\":%d,\"height\":%d,\"steps\":%d,\"batch_"
               "size\":%d,"
               "\"unet_batch\":%d,\"load_s\":%.4f,\"text_encode_s\":%.4f,\"step_s\":%.4f,"
               "\"first_step_s\":%.4f,"
               "\"vae_decode_s\":%.4f,\"total_s\":%.4f,\"images_per_s\":%.4f,"
               "\"peak_rss_mb\":%.1f,\"step_gflop\":%.1f,\"step_gflops\":%.1f,"
               "\"vae_decode_gflop\":%.1f,\"vae_decode_gflops\":%.1f,\"gemm_gflops\":%.1f,"
               "\"step_floor_s\":%.4f,\"step_vs_floor\":%.3f,\"vae_floor_s\":%.4f,"
               "\"vae_vs_floor\":%.3f,\"step_mean_s\":%.4f,\"step_gemm_s\":%.4f,"
               "\"step_conv_aux_s\":%.4f,\"step_other_s\":%.4f,\"step_gemm_share\":%.3f,"
               "\"sampling_s\":%.4f}\n",
               model_path, one_shot ? "true" : "false", info.compute_dtype, info.matmul_dtype,
               info.vae_matmul_dtype, p.width, p.height, p.steps, p.batch_size, tm.unet_batch,
               load_s, tm.text_encode_s, step, tm.n_steps > 0 ? tm.step_s[0] : 0, tm.vae_decode_s,
               tm.total_s, images_per_s, rss_mb, tm.step_gflop, step_rate, tm.vae_decode_gflop,
               vae_rate, rate, step_floor, step_floor > 0 ? step / step_floor : 0, vae_floor,
               vae_floor > 0 ? tm.vae_decode_s / vae_floor : 0, tm.step_mean_s, tm.step_gemm_s,
               tm.step_conv_aux_s, tm.step_other_s, gemm_pct / 100, tm.sampling_s);
    } else {
        printf("model        %s\n", model_path);
        printf("settings     %dx%d, %d steps, batch %d (UNet batch %d), %s, %s compute%s\n",
               p.width, p.height, p.steps, p.batch_size, tm.unet_batch, p.sampler,
               info.compute_dtype,
               strcmp(info.compute_dtype, "f16") == 0 ? " (f16 weights widened to f32)"
               : strcmp(info.compute_dtype, info.matmul_dtype) != 0
                   ? " (its matmuls widened to f32: no bf16 matmul on this CPU)"
                   : "");
        printf("load         %8.3f s\n", load_s);
        printf("text encode  %8.3f s\n", tm.text_encode_s);
        printf("unet step    %8.3f s  (median of %d after warm-up)  %.0f GFLOP at %.0f GFLOP/s,"
               " %.2fx the floor of %.3f s\n",
               step, tm.n_steps > 1 ? tm.n_steps - 1 : tm.n_steps, tm.step_gflop, step_rate,
               step_floor > 0 ? step / step_floor : 0, step_floor);
        if (tm.n_steps > 1)
            printf("first step   %8.3f s  (the warm-up: first use of each product's kernels and "
                   "scratch)\n",
                   tm.step_s[0]);
        printf("step split   %8.3f s  mean step: GEMM %.3f s (%.0f%%, %.0f GFLOP/s eff.), conv "
               "gathers/transforms %.3f s (%.0f%%), rest %.3f s (%.0f%%)\n",
               tm.step_mean_s, tm.step_gemm_s, gemm_pct,
               tm.step_gemm_s > 0 ? tm.step_gflop / tm.step_gemm_s : 0, tm.step_conv_aux_s, aux_pct,
               tm.step_other_s, other_pct);
        printf("vae decode   %8.3f s  %.0f GFLOP at %.0f GFLOP/s, %.2fx the floor of %.3f s%s\n",
               tm.vae_decode_s, tm.vae_decode_gflop, vae_rate,
               vae_floor > 0 ? tm.vae_decode_s / vae_floor : 0, vae_floor,
               strcmp(info.vae_matmul_dtype, info.matmul_dtype) != 0
                   ? " (on f32 activations: the automatic precision)"
                   : "");
        printf("gemm rate    %8.1f GFLOP/s  (2048^3 %s, best of before and after; the floor's "
               "reference)\n",
               rate, info.matmul_dtype);
        printf("total        %8.3f s  (%.3f images/s)\n", tm.total_s, images_per_s);
        printf("peak RSS     %8.1f MB\n", rss_mb);
    }
out:
    gs_result_free(res);
    gs_model_free(model);
    gs_engine_free(eng);
    return rc;
}
