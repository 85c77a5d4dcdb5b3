/* cmd_models - `gesso models inspect FILE`: what a checkpoint is, as the engine sees it. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "gesso.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: gesso models inspect FILE\n"
                 "Loads FILE and prints its family, weight dtype and architecture sizes,\n"
                 "or why it cannot be used.\n");
}

int cmd_models(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return EXIT_OK;
    }
    if (argc != 3 || strcmp(argv[1], "inspect") != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    gs_engine *eng = NULL;
    gs_model *model = NULL;
    if (gs_engine_create(NULL, &eng) != GS_OK) {
        fprintf(stderr, "gesso: cannot start the engine\n");
        return EXIT_FAILURE_OTHER;
    }
    int rc = EXIT_OK;
    if (gs_model_load(eng, argv[2], &model) != GS_OK) {
        fprintf(stderr, "gesso: %s\n", gs_engine_errmsg(eng));
        rc = EXIT_INPUT;
    } else {
        gs_model_info info;
        gs_model_get_info(model, &info);
        printf("name             %s\n", info.name);
        printf("family           %s\n", info.family_name);
        printf("weights          %s\n", info.weight_dtype);
        printf("unet channels    %d\n", info.unet_channels);
        printf("text width       %d\n", info.text_width);
        printf("latent channels  %d\n", info.latent_channels);
        printf("file size        %zu bytes\n", info.file_bytes);
    }
    gs_model_free(model);
    gs_engine_free(eng);
    return rc;
}
