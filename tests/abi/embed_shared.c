/*
 * embed_shared - an embedder of libgesso.so that sees only gesso.h: it links
 * against the shared library alone (no internal header, no static archive) and
 * runs a checkpoint from inspection to a decoded image and counts a prompt's
 * chunks, so a public function that is not exported, or a shared build that
 * cannot run, fails here.
 * usage: embed_shared CHECKPOINT
 */
#include <stdio.h>
#include <string.h>

#include "gesso.h"

static int check(gs_status st, const char *what, const gs_engine *eng)
{
    if (st == GS_OK)
        return 0;
    fprintf(stderr, "embed_shared: %s: %s (%s)\n", what, gs_strerror(st),
            eng ? gs_engine_errmsg(eng) : "");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: embed_shared CHECKPOINT\n");
        return 2;
    }
    char msg[256];
    gs_checkpoint_info ci;
    if (check(gs_checkpoint_inspect(argv[1], &ci, msg, sizeof msg), msg, NULL))
        return 1;
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = 2;
    eo.precision = GS_PRECISION_F32;
    gs_engine *eng = NULL;
    gs_model *model = NULL;
    gs_result *res = NULL;
    int rc = check(gs_engine_create(&eo, &eng), "engine", NULL);
    if (!rc)
        rc = check(gs_model_load(eng, argv[1], &model), "load", eng);
    if (!rc) {
        gs_params p;
        gs_params_init(&p);
        p.prompt = "a lighthouse";
        p.steps = 1;
        p.width = p.height = 64;
        rc = check(gs_generate(eng, model, &p, NULL, NULL, &res), "generate", eng);
    }
    gs_tokenizer *tok = NULL;
    int chunks = 0;
    if (!rc)
        rc = check(gs_tokenizer_create(&tok), "tokenizer", NULL);
    if (!rc)
        rc = check(gs_prompt_chunks(tok, "a lighthouse BREAK at dusk", &chunks, msg, sizeof msg),
                   msg, NULL);
    gs_tokenizer_free(tok);
    if (!rc && chunks != 2) {
        fprintf(stderr, "embed_shared: %d prompt chunks, not 2\n", chunks);
        rc = 1;
    }
    if (!rc && (gs_result_count(res) != 1 || gs_result_image(res, 0)->width != 64)) {
        fprintf(stderr, "embed_shared: unexpected result\n");
        rc = 1;
    }
    if (!rc)
        printf("embed_shared: %s %s checkpoint, %zu tensors, one 64x64 image\n", ci.family_name,
               ci.weight_dtype, ci.tensors);
    gs_result_free(res);
    gs_model_free(model);
    gs_engine_free(eng);
    return rc;
}
