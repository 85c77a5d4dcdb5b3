/*
 * fuzz_job_json - a job as its submitter writes it, in each API's shape. The
 * first byte picks the reader: the native /v1/jobs JSON (parse, validate,
 * prompt check, normalise, the stored text read back, the engine's
 * parameters), an A1111 txt2img or img2img body, an OpenAI generations body,
 * or an OpenAI edits form (first line: the Content-Type; the rest: the
 * multipart body). The readers run on a server struct holding what they
 * consult (options, A1111 state, model catalog, tokenizer); refusals are
 * replied to no connection, which libmicrohttpd declines.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/a1111.h"
#include "api/multipart.h"
#include "api/openai.h"
#include "api/protocols.h"
#include "api/server_private.h"
#include "fuzzutil.h"
#include "job/job_spec.h"

static serve_options opts;
static server srv;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    serve_options_default(&opts);
    /* one model, "tiny", that exists: names resolve, and the rest is refused */
    static char models[300], model[340];
    snprintf(models, sizeof models, "%s/models", fuzz_tmpdir());
    snprintf(model, sizeof model, "%s/tiny.safetensors", models);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", models);
    if (system(cmd) != 0)
        abort();
    FILE *f = fopen(model, "wb");
    if (!f)
        abort();
    fwrite("\x02\0\0\0\0\0\0\0{}", 1, 10, f);
    fclose(f);
    opts.models_dir = models;
    srv.o = &opts;
    if (!(srv.a1111 = a1111_state_create()) || !(srv.catalog = model_catalog_create()) ||
        gs_tokenizer_create(&srv.tok) != GS_OK)
        abort();
    return 0;
}

/* A native spec, as job_submit_check and a worker take it. */
static void native(job_spec *s, const char *json, size_t len)
{
    job_error e;
    if (job_spec_from_json(s, json, len, &opts.limits, &e) != 0 ||
        job_spec_validate(s, &opts.limits, opts.models_dir, &e) != 0 ||
        job_spec_check_prompts(s, &opts.limits, srv.tok, &e) != 0)
        return;
    (void)job_spec_check_cost(s, opts.limits.max_cost, "the server's", &e);
    job_spec_normalise(s);
    char *text = job_spec_to_json(s);
    if (!text)
        return;
    job_spec back;
    if (job_spec_init(&back) != 0)
        abort();
    if (job_spec_from_json(&back, text, strlen(text), NULL, &e) != 0) {
        fprintf(stderr, "the stored text of a valid job does not read back: %s\n%s\n", e.message,
                text);
        abort();
    }
    gs_params p;
    gs_image *init = NULL, *mask = NULL;
    gs_params_init(&p);
    if (job_spec_to_params(&back, &p, &init) == 0 && job_spec_mask_to_params(&back, &p, &mask) == 0)
        gs_image_free(mask);
    gs_image_free(init);
    job_spec_clear(&back);
    free(text);
}

static void a1111(const char *body, size_t len, int img2img)
{
    http_request r = {.s = &srv, .body = body, .body_len = len, .proto = &a1111_protocol};
    a1111_job job;
    enum MHD_Result ret;
    if (a1111_request_read(&r, img2img, &job, &ret) != 0)
        return;
    char *text = json_dumps(job.native, JSON_COMPACT);
    job_spec s;
    if (text && job_spec_init(&s) == 0) {
        native(&s, text, strlen(text));
        job_spec_clear(&s);
    }
    free(text);
    a1111_job_clear(&job);
}

static void openai(const char *body, size_t len, int form)
{
    http_request r = {.s = &srv, .body = body, .body_len = len, .proto = &openai_protocol};
    json_int_literal seed = {0};
    json_t *req = NULL;
    const multipart_part *image = NULL, *mask = NULL;
    multipart_part parts[MULTIPART_MAX_PARTS];
    int n = 0;
    char msg[256];
    if (form) {
        const char *nl = memchr(body, '\n', len);
        if (!nl)
            return;
        char type[256];
        snprintf(type, sizeof type, "%.*s", (int)(nl - body), body);
        if (multipart_parse(type, nl + 1, len - (size_t)(nl + 1 - body), parts, MULTIPART_MAX_PARTS,
                            &n, msg, sizeof msg) != 0 ||
            !(req = json_object()))
            return;
        for (int i = 0; i < n; i++) {
            if (strcmp(parts[i].name, "image") == 0)
                image = &parts[i];
            else if (strcmp(parts[i].name, "mask") == 0)
                mask = &parts[i];
            else
                json_object_set_new(req, parts[i].name, json_stringn(parts[i].data, parts[i].len));
        }
    } else {
        req = json_u64_loadb(body, len, JSON_REJECT_DUPLICATES, "seed", &seed, NULL);
        if (!json_is_object(req)) {
            json_decref(req);
            return;
        }
    }
    job_spec s;
    openai_ask ask = {0};
    openai_refusal why = {0};
    if (job_spec_init(&s) != 0)
        abort();
    (void)openai_read_request(
        &r, form ? OPENAI_EDIT : OPENAI_GENERATE, req, form ? NULL : &seed, form,
        image ? (const unsigned char *)image->data : NULL, image ? image->len : 0,
        mask ? (const unsigned char *)mask->data : NULL, mask ? mask->len : 0, &s, &ask, &why);
    job_spec_clear(&s);
    json_decref(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    char *body = fuzz_cstr(data + 1, size - 1); /* NUL-terminated, as server.c keeps bodies */
    size_t len = size - 1;
    switch (data[0] % 5) {
    case 0: {
        job_spec s;
        if (job_spec_init(&s) != 0)
            abort();
        native(&s, body, len);
        job_spec_clear(&s);
        break;
    }
    case 1: a1111(body, len, 0); break;
    case 2: a1111(body, len, 1); break;
    case 3: openai(body, len, 0); break;
    default: openai(body, len, 1); break;
    }
    free(body);
    return 0;
}
