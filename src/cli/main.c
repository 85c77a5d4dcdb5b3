/* gesso - command-line entry point: dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "gesso.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: gesso <command> [options]\n"
                 "\n"
                 "commands:\n"
                 "  generate   make images from a prompt (txt2img) or an image (img2img)\n"
                 "  bench      time model load, text encode, UNet step and VAE decode\n"
                 "  models     inspect checkpoints, write random-weight ones\n"
                 "  serve      the HTTP job service (queue, workers, results)\n"
                 "  horde      an AI Horde worker (bridgeData.yaml)\n"
                 "  keys       API keys kept in the job store (add, list, revoke)\n"
                 "\n"
                 "gesso <command> --help shows a command's options. gesso --version.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("gesso %s\n", GESSO_VERSION);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "generate") == 0)
        return cmd_generate(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0)
        return cmd_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "models") == 0)
        return cmd_models(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "worker") == 0)
        return cmd_worker(argc - 1, argv + 1);
    if (strcmp(cmd, "horde") == 0)
        return cmd_horde(argc - 1, argv + 1);
    if (strcmp(cmd, "keys") == 0)
        return cmd_keys(argc - 1, argv + 1);
    fprintf(stderr, "gesso: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
