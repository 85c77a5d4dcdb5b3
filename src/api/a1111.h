/*
 * a1111 - what the files of the AUTOMATIC1111-compatible API (/sdapi/v1)
 * share. A1111's clients (SillyTavern, Open WebUI, webuiapi, bots) send
 * their requests in A1111's names; a1111_request.c turns one into a native
 * job, which runs like any other (durable, listed, cancellable), and the
 * reply is A1111's. The options a client sets (the default model) live in
 * memory, per server, as A1111's live per process.
 */
#ifndef GS_A1111_H
#define GS_A1111_H

#include <jansson.h>

#include "api/http.h"
#include "api/server_private.h"
#include "job/job_spec.h"
#include "support/json_u64.h"

#include <pthread.h>
#include <sys/types.h>
#include <time.h>

/* A model file's SHA-256, kept per file version: hashing gigabytes once. */
typedef struct a1111_hash {
    char name[JOB_MODEL_MAX + 1];
    struct timespec mtime;
    off_t size;
    char sha256[65];
} a1111_hash;

typedef struct a1111_state {
    pthread_mutex_t mu; /* guards the rest */
    json_t *options;    /* what POST options set, by name */
    a1111_hash *hashes; /* [n_hashes] */
    int n_hashes;
} a1111_state;

/* NULL when out of memory. */
a1111_state *a1111_state_create(void);
void a1111_state_free(a1111_state *st);

/* ---- a1111.c: errors and options ---- */

/* A refusal of one request field in FastAPI's validation shape, 422
   {"detail":[{"loc":["body",field...],"msg","type"}]}; field may name a
   member of a member ("override_settings.sd_model_checkpoint"). */
enum MHD_Result a1111_invalid(http_request *r, const char *field, const char *msg,
                              const char *type);

/* The model A1111 requests use when they name none: the one POST options
   set, else the first --preload, else the first model file by name. "" when
   the models directory has none. */
void a1111_default_model(server *s, char out[JOB_MODEL_MAX + 1]);
/* An integer option as POST options set it (CLIP_stop_at_last_layers,
   show_progress_every_n_steps), def when unset or not an integer. */
int a1111_option_int(server *s, const char *name, int def);

enum MHD_Result a1111_get_options(http_request *r);
enum MHD_Result a1111_set_options(http_request *r);

/* ---- a1111_models.c: checkpoints as A1111 names them ---- */

/* The model names of the models directory, sorted; *names malloc'd (each
   name too), free with a1111_names_free. Returns how many, -1 when out of
   memory. */
int a1111_model_names(server *s, char ***names);
void a1111_names_free(char **names, int n);
/* A checkpoint as A1111's clients name it ("NAME", "NAME.safetensors", a
   title "NAME.safetensors [HASH]") to a model name: 0, or -1 when no model
   file has that name. */
int a1111_resolve_model(server *s, const char *title, char out[JOB_MODEL_MAX + 1]);
/* A1111's title of a model, "NAME.safetensors [SHORTHASH]" (the hash
   computed once per file version). */
void a1111_model_title(server *s, const char *name, char *out, size_t size);

enum MHD_Result a1111_sd_models(http_request *r);

/* ---- a1111_request.c: an A1111 request to a native job ---- */

typedef struct a1111_job {
    json_t *native;        /* the native job JSON object, without its seed */
    json_int_literal seed; /* the seed as sent (found 0: none, or -1) */
    json_t *parameters;    /* the request as A1111 echoes it, without its seed */
    int send_images;
} a1111_job;

/* Reads an A1111 txt2img (img2img: with init images) request body into
   job. 0, or -1 with the refusal queued in *ret. */
int a1111_request_read(http_request *r, int img2img, a1111_job *job, enum MHD_Result *ret);
void a1111_job_clear(a1111_job *job);

/* The A1111 field a native job field comes from, for errors in A1111's names. */
const char *a1111_field_name(const char *native_field);

/* ---- a1111_samplers.c ---- */

/* A1111's sampler_name and scheduler (either NULL: A1111's default) to the
   engine's sampler and scheduler names. 0; -1 for an unknown sampler, -2 for
   an unknown scheduler, with why saying so. */
int a1111_map_sampler(const char *sampler_name, const char *scheduler, const char **engine,
                      const char **engine_scheduler, char *why, size_t why_size);
/* A1111's name of a gesso sampler ("dpmpp_2m" -> "DPM++ 2M"). */
const char *a1111_sampler_label(const char *engine);
enum MHD_Result a1111_samplers(http_request *r);
enum MHD_Result a1111_schedulers(http_request *r);

/* ---- a1111_reply.c ---- */

/* The reply text to a finished job rec (succeeded: its images; cancelled:
   none): {"images","parameters","info"}; parameters is the request as
   echoed and sent_seed its seed as sent. malloc'd; NULL when out of memory. */
char *a1111_reply_text(server *s, const job_record *rec, const json_t *parameters,
                       const json_int_literal *sent_seed, int send_images, int img2img);

/* ---- a1111_generate.c ---- */
enum MHD_Result a1111_txt2img(http_request *r);
enum MHD_Result a1111_img2img(http_request *r);

/* ---- a1111_info.c: the lists clients read on connect ---- */
enum MHD_Result a1111_empty_list(http_request *r);
enum MHD_Result a1111_latent_upscale_modes(http_request *r);
enum MHD_Result a1111_upscalers(http_request *r);
enum MHD_Result a1111_embeddings(http_request *r);
enum MHD_Result a1111_scripts(http_request *r);
enum MHD_Result a1111_memory(http_request *r);
enum MHD_Result a1111_cmd_flags(http_request *r);
enum MHD_Result a1111_png_info(http_request *r);
enum MHD_Result a1111_nothing(http_request *r);

/* ---- a1111_progress.c ---- */
enum MHD_Result a1111_progress(http_request *r);
enum MHD_Result a1111_interrupt(http_request *r);

#endif
