/*
 * cmd_models - `gesso models`: inspect a checkpoint as the engine sees it,
 * write a random-weight checkpoint of a real architecture (init-random), or
 * prepare a checkpoint for loading in place (prepare).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "gesso.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gesso models inspect FILE\n"
            "       gesso models init-random --arch ARCH [--dtype f16|bf16|f32]\n"
            "                                [--seed N] --output FILE.safetensors\n"
            "       gesso models prepare FILE --output PREPARED [--precision auto|f32|bf16|f16]\n"
            "inspect loads FILE and prints its family, weight dtype and sizes, or why it\n"
            "cannot be used. init-random writes a checkpoint with the architecture's real\n"
            "tensor names and shapes and deterministic random weights (for benchmarks).\n"
            "ARCH: sd15, sd2 (2.1), sdxl (base), or a narrow test model sd15-small,\n"
            "sd2-small, sdxl-small.\n"
            "prepare writes FILE's weights as the engine holds them for that precision,\n"
            "so gesso loads PREPARED by mapping it, with no conversion (gesso only;\n"
            "keep the original for other tools).\n");
}

static int init_random(int argc, char **argv)
{
    static const struct option opts[] = {
        {"arch", required_argument, 0, 'a'}, {"dtype", required_argument, 0, 'd'},
        {"seed", required_argument, 0, 's'}, {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},       {0, 0, 0, 0},
    };
    const char *arch = NULL, *dtype = "f16", *output = NULL;
    uint64_t seed = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "a:d:s:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'a': arch = optarg; break;
        case 'd': dtype = optarg; break;
        case 's':
            if (arg_u64("--seed", optarg, &seed))
                return EXIT_USAGE;
            break;
        case 'o': output = optarg; break;
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (!arch || !output || optind < argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    char msg[512];
    gs_status st = gs_checkpoint_write_random(arch, dtype, seed, output, msg, sizeof msg);
    if (st != GS_OK) {
        fprintf(stderr, "gesso: %s\n", msg);
        return st == GS_ERR_INVALID_ARGUMENT ? EXIT_USAGE : EXIT_OUTPUT;
    }
    printf("%s\n", output);
    return EXIT_OK;
}

static int prepare(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'},
        {"precision", required_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *output = NULL;
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'P':
            if (arg_precision(optarg, &eo.precision))
                return EXIT_USAGE;
            break;
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (!output || optind != argc - 1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    gs_engine *eng = NULL;
    gs_status st = gs_engine_create(&eo, &eng);
    if (st != GS_OK) {
        fprintf(stderr, "gesso: cannot start the engine: %s\n", gs_strerror(st));
        return EXIT_FAILURE_OTHER;
    }
    st = gs_checkpoint_prepare(eng, argv[optind], output);
    int rc = EXIT_OK;
    if (st != GS_OK) {
        fprintf(stderr, "gesso: %s\n", gs_engine_errmsg(eng));
        rc = st == GS_ERR_IO && strstr(gs_engine_errmsg(eng), output) ? EXIT_OUTPUT : EXIT_INPUT;
    } else {
        printf("%s\n", output);
    }
    gs_engine_free(eng);
    return rc;
}

/* The family and dtype come from the header (what a listing would say); the
   rest needs the load that gesso generate would do, which also proves the file
   runs. */
static int inspect(const char *path)
{
    gs_checkpoint_info ci;
    char msg[512];
    gs_status st = gs_checkpoint_inspect(path, &ci, msg, sizeof msg);
    if (st != GS_OK) {
        if (strstr(msg, path))
            fprintf(stderr, "gesso: %s\n", msg);
        else
            fprintf(stderr, "gesso: %s: %s\n", path, msg);
        return EXIT_INPUT;
    }
    gs_engine *eng = NULL;
    gs_model *model = NULL;
    if (gs_engine_create(NULL, &eng) != GS_OK) {
        fprintf(stderr, "gesso: cannot start the engine\n");
        return EXIT_FAILURE_OTHER;
    }
    int rc = EXIT_OK;
    if (gs_model_load(eng, path, &model) != GS_OK) {
        fprintf(stderr, "gesso: %s\n", gs_engine_errmsg(eng));
        rc = EXIT_INPUT;
    } else {
        gs_model_info info;
        gs_model_get_info(model, &info);
        printf("name             %s\n", info.name);
        /* the loaded model's: a file silent about it was judged at load */
        printf("family           %s\n", info.family_name);
        printf("prediction       %s%s\n", info.prediction == GS_PREDICTION_V ? "v" : "eps",
               ci.prediction == GS_PREDICTION_AUTO ? " (the file does not say)" : "");
        printf("weights          %s\n", ci.weight_dtype);
        printf("unet channels    %d\n", info.unet_channels);
        printf("text width       %d\n", info.text_width);
        printf("latent channels  %d\n", info.latent_channels);
        printf("compute          %s%s\n", info.compute_dtype,
               strcmp(info.compute_dtype, info.matmul_dtype) != 0 ? " (matmuls widened to f32)"
                                                                  : "");
        if (strcmp(info.vae_matmul_dtype, info.matmul_dtype) != 0)
            printf("vae compute      %s activations (the automatic precision)\n",
                   info.vae_matmul_dtype);
        printf("file size        %zu bytes\n", ci.file_bytes);
        printf("weights in RAM   %zu bytes\n", info.weight_bytes);
    }
    gs_model_free(model);
    gs_engine_free(eng);
    return rc;
}

int cmd_models(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return EXIT_OK;
    }
    if (argc >= 2 && strcmp(argv[1], "init-random") == 0)
        return init_random(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "prepare") == 0)
        return prepare(argc - 1, argv + 1);
    if (argc != 3 || strcmp(argv[1], "inspect") != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    return inspect(argv[2]);
}
