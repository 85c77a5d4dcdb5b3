/*
 * engine - the internals behind the public gs_engine / gs_model / gs_result
 * handles, shared by the files of pipeline/ and by nothing else.
 */
#ifndef GS_ENGINE_H
#define GS_ENGINE_H

#include "common/error.h"
#include "compute/compute.h"
#include "gesso.h"
#include "model/clip_text.h"
#include "model/weights.h"
#include "model/safetensors.h"
#include "model/unet.h"
#include "model/vae.h"
#include "pipeline/family.h"
#include "text/tokenizer.h"

struct gs_engine {
    gi_compute *cx;
    int half;           /* models load with GEMM weights in WL_F32, WL_BF16 or WL_F16 */
    int precision_auto; /* precision was left to the engine: a prepared file's wins */
    int bf16_fast;      /* bf16 matmuls faster than f32 ones (AMX, AMD Zen 4) */
    clip_tokenizer *tok;
    int prof_print; /* GESSO_OP_PROFILE: print each run's op-timer table to stderr */
    gi_error err;   /* last error, for gs_engine_errmsg */
    /* tests: when set, the hires fix shows it its intermediate latents by name
       ("first_latent", "upscaled_latent", "hr_noise", "final_latent"; NCHW) */
    void (*latent_tap)(void *user, const char *name, const float *x, size_t n);
    void *latent_tap_user;
    /* tests: the prediction guess (A1111's, for full-size SD2 UNets) answers v
       for a file of any size that does not say, without running it */
    int test_guess_v;
};

struct gs_model {
    gs_engine *eng;
    st_file *file;
    const family_desc *fam;
    clip_text *text[FAMILY_MAX_TEXT]; /* fam->n_text of them */
    unet *unet;
    vae *vae;
    gs_prediction prediction; /* EPS or V: the file's word, else the family's default */
    const char *weight_dtype;
    int half; /* WL_*: the dtype of its GEMM weights */
    char *name;
    size_t file_bytes;
    st_identity file_id; /* the file the first load read (have_file_id): later loads
                            refuse one replaced or rewritten since */
    int have_file_id;
    size_t weight_bytes; /* converted weights resident in memory */
    float latent_scale;  /* 0.18215 for SD1 and SD2, 0.13025 for SDXL */
    char *path;          /* the file, for networks loaded again after a release */
    int release_after_use;
    int staged;      /* gs_model_load_one_shot: the UNet and VAE load after the text is encoded */
    int fitted;      /* the networks' sizes were checked against each other */
    int prepared;    /* a prepared file: weights live in its mapping (file stays open) */
    weight_log *log; /* while gs_checkpoint_prepare records a load */
    /* kept across releases: */
    int text_layers;  /* of the first encoder (the clip skip range) */
    int text_width;   /* the UNet's context width: the encoders' widths summed */
    int pooled_width; /* SDXL: the pooled text vector's width, else 0 */
    int adm_channels; /* the UNet's extra conditioning input (SDXL), else 0 */
    int unet_channels, latent_channels;
    weight_log index;        /* every resident weight by checkpoint name, for LoRAs */
    struct lora_cache *lora; /* the LoRA set folded into the weights (lora_select.h) */
};

/* The model's networks, for model_load_parts. */
/* NET_VAE is the VAE's decoder; its encoder (NET_VAE_ENCODER, which brings the
   decoder too) loads when an image is first encoded: text to image, most of a
   service's jobs, never needs it. */
enum {
    NET_TEXT = 1,
    NET_UNET = 2,
    NET_VAE = 4,
    NET_VAE_ENCODER = 8,
    NET_KEPT = NET_TEXT | NET_UNET | NET_VAE,
    NET_ALL = NET_KEPT | NET_VAE_ENCODER
};

/* Loads whichever of the networks in parts are not in memory. The UNet and VAE
   are checked against the text encoders' widths (recorded the first time those
   load) once both are in; the file's prediction is settled then. */
gs_status model_load_parts(gs_model *m, int parts, gi_error *err);
/* model_load_parts(m, NET_ALL): all of them; after a release-after-use
   generation, those it released. */
gs_status model_load_networks(gs_model *m, gi_error *err);
/* gs_model_load, recording every weight read in log (when not NULL). */
gs_status model_load_logged(gs_engine *eng, const char *path, weight_log *log, gs_model **out);
/* Returns the pages of a prepared file's tensors under prefix to the page cache
   (after the network using them was released). */
void model_drop_pages(gs_model *m, const char *prefix);

struct gs_result {
    int count;
    gs_image *images; /* [count] */
    char **infotexts; /* [count] */
    uint64_t seed;
    gs_timings timings;
    double *step_s; /* [timings.n_steps] */
    char *warnings; /* or NULL */
};

/* Records err on the engine and returns its code (the public calls' exit path). */
gs_status engine_fail(gs_engine *eng, const gi_error *err);

/* The text conditioning of one prompt. */
typedef struct prompt_cond {
    float *ctx;    /* [tokens, m->text_width], gi_aligned_alloc'd */
    int tokens;    /* 77 per chunk */
    float *pooled; /* [m->pooled_width] or NULL */
} prompt_cond;

/* One prompt in A1111 semantics, every encoder of the family: chunks, emphasis,
   contexts concatenated along channels (encoder order), pooled vector from the
   first chunk. zero_if_empty: an empty prompt gives zeros (SDXL's negative). */
gs_status encode_prompt(gs_engine *eng, gs_model *m, const char *prompt, int clip_skip,
                        int zero_if_empty, prompt_cond *out, gi_error *err);
void prompt_cond_free(prompt_cond *c);
/* SDXL's extra conditioning vector of one prompt, y [m->adm_channels]: its pooled
   text vector, then the Fourier features of p's image sizes (A1111's defaults for 0s). */
void extra_conditioning(const gs_model *m, const gs_params *p, const prompt_cond *pc, float *y);

/* Cheap latent -> RGB preview of item 0 of an NCHW latent (the family VAE's factors). */
gs_status latent_preview(const float *latent, gs_model_family family, int channels, int h, int w,
                         gs_image **out);

/* Frees a result's contents (NULL-safe). */
void result_destroy(gs_result *res);

/* Sets the compute context for running a model of that precision (WL_*): bf16
   attention products and Winograd GEMMs for bf16 where bf16 is fast (see
   bf16_fast); f16 weights widened for every product. */
void engine_set_compute_precision(gs_engine *eng, int half);

/* Tests: makes a bf16 engine compute as AMX and Zen 4 CPUs do (bf16 attention
   and Winograd, bf16-rounded activations for every product; the products
   emulated exactly where oneDNN has no bf16 matmul), and an engine left to
   choose its precision choose as it does there (bf16). 0 when it computed so
   already. */
int engine_emulate_bf16_fast(gs_engine *eng);

#endif
