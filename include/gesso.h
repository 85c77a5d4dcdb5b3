/*
 * gesso.h - the public API of libgesso, a Stable Diffusion inference engine.
 *
 * This header is the whole contract between the engine and its users (the CLI,
 * the job service, embedders). Handles are opaque; parameters are plain structs
 * with documented defaults; every call that can fail returns a gs_status and
 * leaves a readable message on the handle it was given.
 *
 * Worked example (statuses are GS_NODISCARD: each one is looked at):
 *
 *     gs_engine *eng;
 *     gs_engine_options eo;
 *     gs_engine_options_init(&eo);
 *     if (gs_engine_create(&eo, &eng) != GS_OK)
 *         return 1;
 *
 *     gs_model *model;
 *     if (gs_model_load(eng, "sd15.safetensors", &model) != GS_OK) {
 *         fprintf(stderr, "%s\n", gs_engine_errmsg(eng));
 *         gs_engine_free(eng);
 *         return 1;
 *     }
 *
 *     gs_params p;
 *     gs_params_init(&p);
 *     p.prompt = "a lighthouse at dusk";
 *     p.seed = 42;
 *
 *     gs_result *res;
 *     char msg[256];
 *     if (gs_generate(eng, model, &p, NULL, NULL, &res) != GS_OK)
 *         fprintf(stderr, "%s\n", gs_engine_errmsg(eng));
 *     else if (gs_image_save_png(gs_result_image(res, 0), "out.png",
 *                                gs_result_infotext(res, 0), msg, sizeof msg) != GS_OK)
 *         fprintf(stderr, "%s\n", msg);
 *     gs_result_free(res);
 *
 *     gs_model_free(model);
 *     gs_engine_free(eng);
 *
 * Threads: an engine may be used by one thread at a time. Separate engines are
 * independent. A model belongs to the engine that loaded it. An engine computes
 * on its own thread count whatever the caller's OpenMP setting: during a call
 * that computes (engine creation, loads, generations, gs_engine_gemm_rate) the
 * calling thread's OpenMP default team size is the engine's, as a progress
 * callback sees, and the caller's is back in place when the call returns.
 */
#ifndef GESSO_H
#define GESSO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(GESSO_BUILD_SHARED)
#define GS_API __declspec(dllexport)
#elif defined(__GNUC__)
#define GS_API __attribute__((visibility("default")))
#else
#define GS_API
#endif

/* On calls whose status must be looked at: a load, a generation or a write
 * that failed leaves its outputs unset, so carrying on unchecked uses garbage.
 * The build makes ignoring one an error (-Werror=unused-result). */
#if defined(__GNUC__)
#define GS_NODISCARD __attribute__((warn_unused_result))
#else
#define GS_NODISCARD
#endif

#define GESSO_VERSION "0.1.0"

/* ---- status codes ---- */

typedef enum gs_status {
    GS_OK = 0,
    GS_ERR_INVALID_ARGUMENT = 1, /* a parameter is out of range or unknown */
    GS_ERR_IO = 2,               /* a file could not be opened, read or written */
    GS_ERR_FORMAT = 3,           /* a file is malformed, truncated or lies about itself */
    GS_ERR_UNSUPPORTED = 4,      /* well-formed, but not something gesso can run */
    GS_ERR_NO_MEMORY = 5,        /* an allocation failed; the handle stays usable */
    GS_ERR_CANCELLED = 6,        /* the progress callback asked to stop */
    GS_ERR_INTERNAL = 7          /* a bug: please report it */
} gs_status;

/* A static English description of a status code; never NULL. */
GS_API const char *gs_strerror(gs_status code);

/* ---- engine ---- */

typedef struct gs_engine gs_engine;
typedef struct gs_model gs_model;

typedef enum gs_precision {
    GS_PRECISION_AUTO = 0, /* bf16 where it outruns f32 (AMX, AMD Zen 4+), but there f16 for
                              v-prediction models (bf16 is far off the f32 image on those),
                              else f32 */
    GS_PRECISION_F32 = 1,  /* reproduces the reference tools' f32 results */
    GS_PRECISION_BF16 = 2, /* bf16 weights; GEMMs in bf16 with f32 sums, or where the CPU has
                              no bf16 matmul (AVX2) f32 products on the weights widened */
    GS_PRECISION_F16 = 3   /* f16 weights (as half-precision checkpoints ship them, loaded
                              without conversion), f32 products on them widened: bf16's
                              memory, 8x finer weights, f32 activations, on any CPU */
} gs_precision;

typedef struct gs_engine_options {
    int threads;            /* worker threads for compute; 0 = one per online CPU (default) */
    gs_precision precision; /* compute precision of models loaded later; default AUTO */
    int op_timers;          /* time the kernels by kind for gs_timings' step split (default 0:
                               off, free); with GESSO_OP_PROFILE=1 in the environment the
                               engine also prints a per-kind table of each run to stderr */
} gs_engine_options;

GS_API void gs_engine_options_init(gs_engine_options *opts);

/* Creates an engine; free it with gs_engine_free. opts may be NULL (defaults).
 * Every precision runs on every CPU (see GS_PRECISION_BF16). */
GS_API GS_NODISCARD gs_status gs_engine_create(const gs_engine_options *opts, gs_engine **out);
GS_API void gs_engine_free(gs_engine *eng);

/* The message of the last failed call on this engine ("" when none). Valid
 * until the next call on the engine. */
GS_API const char *gs_engine_errmsg(const gs_engine *eng);

/* ---- models ---- */

/* The model families gesso runs. A family fixes what the file does not say: its
 * text encoders and which of their layers condition the UNet, the UNet's head
 * layout, extra conditioning (SDXL's pooled text and image sizes), the VAE's
 * latent scale; everything else is read from tensor shapes. */
typedef enum gs_model_family {
    GS_FAMILY_UNKNOWN = 0,
    GS_FAMILY_SD1 = 1,  /* SD 1.x: CLIP ViT-L */
    GS_FAMILY_SD2 = 2,  /* SD 2.x: OpenCLIP ViT-H, ε or v prediction */
    GS_FAMILY_SDXL = 3, /* SDXL base: CLIP ViT-L + OpenCLIP ViT-bigG, size conditioning */
} gs_model_family;

/* What the UNet predicts. */
typedef enum gs_prediction {
    GS_PREDICTION_AUTO = 0, /* as the file says (metadata, a v_pred key, A1111's test) */
    GS_PREDICTION_EPS = 1,
    GS_PREDICTION_V = 2,
} gs_prediction;

/* Loads a single-file checkpoint (.safetensors). The file is memory-mapped and
 * its weights converted once to the compute format. Pickle checkpoints (.ckpt,
 * .pt, .bin) are refused: loading them would execute code from the file.
 * Free with gs_model_free before freeing the engine. */
GS_API GS_NODISCARD gs_status gs_model_load(gs_engine *eng, const char *path, gs_model **out);
GS_API void gs_model_free(gs_model *model);

/* With on != 0, each generation frees the text encoder once the prompts are
 * encoded and the UNet once sampling ends, so the peak memory of a run is the
 * largest network with its activations rather than all of them; the next
 * generation loads them again from the file (about one load's time). For
 * one-shot runs (`gesso generate`); a service keeps its models whole. */
GS_API void gs_model_set_release_after_use(gs_model *model, int on);

/* For one generation (`gesso generate`): checks the file as gs_model_load does
 * and loads its text encoders; the UNet and VAE load when the generation has
 * encoded its prompts and freed the encoders, so the peak memory is the largest
 * stage rather than the sum (SDXL in f32: about 10.6 GB, not 14). The UNet's and
 * VAE's shapes are checked then, and a LoRA set makes that generation load all
 * networks first (it folds into all of them). Release after use is on. */
GS_API GS_NODISCARD gs_status gs_model_load_one_shot(gs_engine *eng, const char *path,
                                                     gs_model **out);

typedef struct gs_model_info {
    gs_model_family family;
    const char *family_name;   /* "sd1", "sd2", "sd2-v", "sdxl" */
    gs_prediction prediction;  /* what the file says it predicts (never AUTO) */
    const char *weight_dtype;  /* dtype of most weights in the file: "f16", "bf16", "f32" */
    int unet_channels;         /* base channel count of the UNet (320 for SD1.5) */
    int text_width;            /* width of the text encoder (768 for SD1.5) */
    int latent_channels;       /* 4 */
    const char *compute_dtype; /* "f32", "bf16" or "f16": the dtype of the UNet's and VAE's
                                  GEMM weights */
    size_t file_bytes;
    const char *name;    /* file name without directory and extension */
    size_t weight_bytes; /* memory the converted weights keep resident (what a cache counts) */
    /* "f32" or "bf16": what the matrix products multiply. "f32" for a bf16
       model on a CPU without bf16 matmuls (AVX2): its bf16 weights and
       activations are widened to f32 (exactly) for each product; and for every
       f16 model. */
    const char *matmul_dtype;
    /* The same for the VAE: "f32" where the engine chose bf16 by itself
       (GS_PRECISION_AUTO), which keeps the VAE's rounding out of the pixels. */
    const char *vae_matmul_dtype;
} gs_model_info;

/* Fills *info; strings point into the model and live as long as it. */
GS_API void gs_model_get_info(const gs_model *model, gs_model_info *info);

/* What a checkpoint file is, read from its safetensors header alone: no weight
 * is read or converted, so it costs milliseconds whatever the file's size. */
typedef struct gs_checkpoint_info {
    gs_model_family family;   /* GS_FAMILY_UNKNOWN when no known layout matches */
    const char *family_name;  /* "sd1", "sd2", "sd2-v", "sdxl" or "unknown" */
    gs_prediction prediction; /* as far as the header says; AUTO when it does not */
    const char *weight_dtype; /* "f16", "bf16" or "f32": the dtype of most bytes of the
                                 UNet (of the whole file when the family is unknown) */
    size_t file_bytes;
    size_t tensors; /* tensors in the header */
    /* Per network: parameters (elements of its floating-point tensors) and the
       bytes of all its tensors as stored in the file; 0 when the family is
       unknown. text counts every text encoder of the family. */
    uint64_t unet_params, text_params, vae_params;
    uint64_t unet_bytes, text_bytes, vae_bytes;
    int prepared;                   /* 1 when `gesso models prepare` wrote the file */
    const char *prepared_precision; /* "f32", "bf16" or "f16" when prepared, else NULL */
} gs_checkpoint_info;

/* Fills *out with the facts of the checkpoint at path; its strings are static
 * (they live as long as the program). A well-formed safetensors file of a kind
 * gesso does not know is a success with family GS_FAMILY_UNKNOWN. Errors:
 * GS_ERR_IO (cannot open or not a regular file), GS_ERR_FORMAT (not a
 * safetensors file, truncated, malformed header), GS_ERR_UNSUPPORTED (a pickle
 * checkpoint, which is refused unread as gs_model_load refuses it),
 * GS_ERR_NO_MEMORY. On failure *out is zeroed and errmsg (if not NULL, of
 * errmsg_size bytes) says why. Needs no engine; safe from any thread. */
GS_API GS_NODISCARD gs_status gs_checkpoint_inspect(const char *path, gs_checkpoint_info *out,
                                                    char *errmsg, size_t errmsg_size);

/* Writes dst: src's weights as this engine holds them after a load (its
 * precision, the kernels' layouts), for gs_model_load to map and use in place:
 * a load of a prepared file converts nothing (about the time to map it), and
 * processes that load the same prepared file share its pages. Engines created
 * with GS_PRECISION_AUTO load it in its precision; others only when it matches.
 * It is for gesso, not for other tools. */
GS_API GS_NODISCARD gs_status gs_checkpoint_prepare(gs_engine *eng, const char *src,
                                                    const char *dst);

/* Writes a checkpoint with the real tensor names and shapes of arch ("sd15", "sd2",
 * "sdxl", or "sd15-small", "sd2-small", "sdxl-small" for narrow test models) and
 * deterministic random weights of dtype
 * ("f16", "bf16", "f32"), for benchmarks and tests without downloads. The same
 * seed gives the same file. */
GS_API GS_NODISCARD gs_status gs_checkpoint_write_random(const char *arch, const char *dtype,
                                                         uint64_t seed, const char *path,
                                                         char *errmsg, size_t errmsg_size);

/* ---- images ---- */

/* An 8-bit image, rows top to bottom, channels interleaved (RGB or RGBA). */
typedef struct gs_image {
    int width;
    int height;
    int channels; /* 3 (RGB) or 4 (RGBA) */
    uint8_t *pixels;
} gs_image;

/* Reads a PNG, JPEG or WebP file into RGB. The caller owns *out and frees it
 * with gs_image_free. On failure *out is NULL and errmsg (if not NULL, of
 * errmsg_size bytes) says why. */
GS_API GS_NODISCARD gs_status gs_image_load(const char *path, gs_image **out, char *errmsg,
                                            size_t errmsg_size);
GS_API GS_NODISCARD gs_status gs_image_load_memory(const void *data, size_t size, gs_image **out,
                                                   char *errmsg, size_t errmsg_size);
/* As gs_image_load(_memory), but an image with an alpha channel (PNG with
 * alpha or a tRNS chunk, WebP with alpha) keeps it as channels 4, as PIL opens
 * it: for inpainting masks, whose alpha A1111 reads (see gs_params.mask). */
GS_API GS_NODISCARD gs_status gs_image_load_alpha(const char *path, gs_image **out, char *errmsg,
                                                  size_t errmsg_size);
GS_API GS_NODISCARD gs_status gs_image_load_memory_alpha(const void *data, size_t size,
                                                         gs_image **out, char *errmsg,
                                                         size_t errmsg_size);
GS_API void gs_image_free(gs_image *img);

/* Outpainting as inpainting on a bigger canvas: *canvas is init padded by
 * left/right/top/bottom pixels of gray 127 (RGB), *mask (RGB) is white over
 * the new border and over `overlap` pixels of init along each padded side (so
 * the seam is repainted; A1111 users pass the mask blur), black elsewhere.
 * Give both to gs_generate as init_image and mask with width/height the
 * canvas size. Free both with gs_image_free. GS_ERR_INVALID_ARGUMENT for
 * negative or all-zero padding, or a canvas over 16384 per side. */
GS_API GS_NODISCARD gs_status gs_outpaint_canvas(const gs_image *init, int left, int right, int top,
                                                 int bottom, int overlap, gs_image **canvas,
                                                 gs_image **mask);

/* Writes img as PNG; parameters (may be NULL) goes into a tEXt chunk named
 * "parameters", as AUTOMATIC1111 writes it. */
GS_API GS_NODISCARD gs_status gs_image_save_png(const gs_image *img, const char *path,
                                                const char *parameters, char *errmsg,
                                                size_t errmsg_size);

/* Encodes img as PNG into a buffer the caller takes and frees with free(). */
GS_API GS_NODISCARD gs_status gs_image_encode_png(const gs_image *img, const char *parameters,
                                                  uint8_t **out, size_t *out_size, char *errmsg,
                                                  size_t errmsg_size);

/* Encodes img as JPEG (quality 1..100; alpha dropped) or WebP (quality 0..100,
 * 100 = lossless) into a buffer the caller takes and frees with free(). No
 * generation settings go with them: the job's PNG keeps those. */
GS_API GS_NODISCARD gs_status gs_image_encode_jpeg(const gs_image *img, int quality, uint8_t **out,
                                                   size_t *out_size, char *errmsg,
                                                   size_t errmsg_size);
GS_API GS_NODISCARD gs_status gs_image_encode_webp(const gs_image *img, int quality, uint8_t **out,
                                                   size_t *out_size, char *errmsg,
                                                   size_t errmsg_size);

/* ---- generation ---- */

/* A LoRA (.safetensors: kohya/A1111, LyCORIS LoCon or diffusers PEFT layout)
 * folded into the model's weights for a generation, as AUTOMATIC1111 merges
 * it: W' = W + up @ down * (alpha / rank) * weight, te_weight for the text
 * encoder's layers and unet_weight for the UNet's. */
typedef struct gs_lora {
    const char *path;
    float te_weight, unet_weight;
} gs_lora;
/* What the masked area starts from before sampling (A1111's inpainting_fill, 0..3). */
typedef enum gs_inpaint_fill {
    GS_INPAINT_FILL = 0,          /* the colours around the mask, blurred in (masking.fill) */
    GS_INPAINT_ORIGINAL = 1,      /* the init image as it is (default) */
    GS_INPAINT_LATENT_NOISE = 2,  /* the latent replaced by fresh noise of the seed */
    GS_INPAINT_LATENT_NOTHING = 3 /* the latent zeroed */
} gs_inpaint_fill;
/* How the hires fix enlarges the first pass (A1111's hr_upscaler). The latent
 * ones are torch's interpolate on the latent (align_corners=False); Lanczos
 * decodes, resizes the 8-bit image with PIL's LANCZOS and encodes again. */
typedef enum gs_hires_upscaler {
    GS_HIRES_LATENT = 0,                     /* "Latent": bilinear */
    GS_HIRES_LATENT_ANTIALIASED = 1,         /* "Latent (antialiased)" */
    GS_HIRES_LATENT_BICUBIC = 2,             /* "Latent (bicubic)": a = -0.75 */
    GS_HIRES_LATENT_BICUBIC_ANTIALIASED = 3, /* "Latent (bicubic antialiased)" */
    GS_HIRES_LATENT_NEAREST = 4,             /* "Latent (nearest)" */
    GS_HIRES_LATENT_NEAREST_EXACT = 5,       /* "Latent (nearest-exact)" */
    GS_HIRES_LANCZOS = 6,                    /* "Lanczos" */
} gs_hires_upscaler;

typedef struct gs_params {
    const char *prompt;          /* A1111 syntax: (word:1.2), [word], BREAK; default "" */
    const char *negative_prompt; /* default "" */
    uint64_t seed;               /* default 0; the CLI picks a random one when not given */
    int steps;                   /* default 20 */
    float cfg_scale;             /* default 7.0; 1.0 runs one UNet pass per step */
    const char *sampler;         /* a gs_sampler_names() entry; default "euler_a" */
    const char *scheduler;       /* a gs_scheduler_names() entry, or NULL/"default": the
                                    sampler's own (normal; ddim and lcm have their own) */
    int width, height;           /* multiples of 8; default 512x512 */
    int clip_skip;               /* 1 = last layer (default), 2 = penultimate, ... (SD1; SD2 and
                                    SDXL always take their penultimate layer, as A1111 does) */
    int batch_size;              /* images drawn in one go from one seed; default 1 */
    const gs_image *init_image;  /* img2img when not NULL; resized to width x height */
    float strength;              /* img2img denoising strength in (0,1]; default 0.75 */
    int preview_every;           /* a preview image every k steps in the callback; 0 = none */
    int vae_tile;                /* VAE decode in tiles of at most vae_tile x vae_tile pixels
                                    (overlap included; a multiple of 8, >= 64), for memory that
                                    does not grow with the image: 0 = auto (default; tiles of
                                    GS_VAE_TILE_AUTO pixels above GS_VAE_TILE_AUTO_ABOVE pixels
                                    of image), -1 = never. Tiles share one set of group norm
                                    statistics estimated from a subsampled pass, so there are
                                    no seams, but pixels differ from a whole decode (more than
                                    bf16 does): auto tiles only where a whole decode would need
                                    several GB of activations. */
    gs_prediction prediction;    /* override what the model predicts; default AUTO */
    /* SDXL's size conditioning; 0 = A1111's default (original and target = the image
       size, crop 0,0). Ignored by families without it. */
    int original_width, original_height;
    int crop_top, crop_left;
    int target_width, target_height;
    int encode_empty_negative; /* SDXL: encode an empty negative prompt as text (ComfyUI)
                                  instead of A1111's all-zero unconditional input (default) */
    /* LoRAs: the list, then the prompt's <lora:NAME:TE[:UNET]> tags (A1111's syntax, te= and
       unet= named items too), NAME being lora_dir/NAME.safetensors. Every <kind:...> tag is
       cut from the prompt before it is encoded (the negative prompt is left alone); the
       infotext keeps the prompt as given and adds "Lora hashes". The set stays folded into
       the model after the call, so the next generation asking for the same set pays
       nothing; a different set (or none) is recomputed from the checkpoint file, which
       must stay in place (a prepared file refuses LoRAs). */
    const gs_lora *loras; /* [n_loras], may be NULL */
    int n_loras;
    const char *lora_dir; /* where prompt tags' names are looked up; NULL: a tag is refused
                             (lora_strict = 0: cut out and left out, with a warning) */
    int lora_strict;      /* 1 (default): a module the model has no layer for, or whose
                             shape disagrees with it, or a tag naming no file, refuses the
                             generation; 0: it is left out, and gs_result_warnings says so */
    /* Inpainting (init_image required), with A1111's semantics step for step: */
    const gs_image *mask;         /* white = repaint, black = keep; any size, RGB(A) (an alpha
                                     that is not all 255 is the mask, thresholded at 128;
                                     otherwise the luma); resized like the init image. The
                                     images returned are the repainted result composited over
                                     the init image (at width x height; with inpaint_full_res
                                     at the init image's size). NULL = plain img2img */
    int mask_blur;                /* Gaussian blur of the mask in pixels (OpenCV, σ = this);
                                     0..64, default 4 */
    gs_inpaint_fill inpaint_fill; /* default GS_INPAINT_ORIGINAL */
    int inpaint_full_res;         /* 1 = "only masked": the mask's bounding box (plus padding,
                                     grown to width:height) is cut out, repainted at
                                     width x height and pasted back */
    int inpaint_padding;          /* pixels around the mask's box for inpaint_full_res; 0..256,
                                     default 32 */
    int mask_invert;              /* 1 = repaint what is black (A1111's inpainting_mask_invert) */
    /* Hires fix (A1111's txt2img "Hires. fix"; txt2img only): the first pass at width x height,
       its latent upscaled to the hires size, then an img2img pass of hires_steps there from a
       new generator seeded with the same seed. The size is int(width*hires_scale) x
       int(height*hires_scale), or hires_width x hires_height (one of them 0: kept to the
       aspect; both given with another aspect: upscaled to cover, then cropped, as A1111 does);
       it must be a multiple of 8 per side. Off when all three are 0 (default), or when the
       size equals the first pass's (as A1111). Progress counts both passes' steps. */
    float hires_scale;
    int hires_width, hires_height;
    int hires_steps;                  /* 0 = steps (default) */
    float hires_denoise;              /* the second pass's strength in (0,1]; default 0.7 */
    gs_hires_upscaler hires_upscaler; /* default GS_HIRES_LATENT */
    float eta; /* η of the samplers that draw noise (GS_SAMPLER_NOISE: euler_a, dpm_2_a,
                  dpmpp_2s_a, dpm_fast, dpm_adaptive, dpmpp_sde, dpmpp_2m_sde) in 0..10: 0 makes
                  them deterministic, 1 is A1111's default ("eta_ancestral"); negative (the
                  default, -1) = 1. The others ignore it (ddim runs with η = 0, as A1111) */
} gs_params;

/* A1111's name of an upscaler ("Latent (bicubic)"); NULL when out of range. */
GS_API const char *gs_hires_upscaler_name(gs_hires_upscaler u);
/* The short name the CLI and the job spec use ("latent-bicubic"); NULL when out of range. */
GS_API const char *gs_hires_upscaler_short_name(gs_hires_upscaler u);
/* Parses either name (short, or A1111's exactly as it spells it) into *out.
 * Returns 0, or -1 for an unknown name (*out untouched). */
GS_API int gs_hires_upscaler_parse(const char *name, gs_hires_upscaler *out);

/* The size of the images gs_generate makes for p: the hires fix's final size
 * when p turns it on (A1111's rule, crop included), else width x height. For a
 * service that bounds a job before running it; p is not otherwise checked. */
GS_API void gs_params_output_size(const gs_params *p, int *width, int *height);

#define GS_VAE_TILE_AUTO 512
#define GS_VAE_TILE_AUTO_ABOVE (2048 * 2048)

GS_API void gs_params_init(gs_params *p);

typedef struct gs_progress {
    int step;                /* steps done so far, 1..steps */
    int steps;               /* total UNet evaluations rounds of the sampler */
    double elapsed_s;        /* since sampling started */
    double eta_s;            /* estimated seconds until the images are ready */
    const gs_image *preview; /* a cheap latent->RGB projection of item 0, or NULL */
} gs_progress;

/* Called after every step. Return non-zero to cancel: gs_generate then returns
 * GS_ERR_CANCELLED. The preview is only valid during the call. */
typedef int (*gs_progress_fn)(const gs_progress *progress, void *user);

typedef struct gs_result gs_result;

/* Runs text-to-image (or image-to-image when p->init_image is set). On success
 * *out holds batch_size images; free with gs_result_free. If the call fails
 * before sampling starts (bad parameters), the callback is never called. */
GS_API GS_NODISCARD gs_status gs_generate(gs_engine *eng, gs_model *model, const gs_params *p,
                                          gs_progress_fn progress, void *user, gs_result **out);

GS_API int gs_result_count(const gs_result *res);
GS_API const gs_image *gs_result_image(const gs_result *res, int index);
/* A1111-style "parameters" text of image index (the seed is the same for a batch,
 * as A1111 records it for a batch drawn in one go). */
GS_API const char *gs_result_infotext(const gs_result *res, int index);
GS_API uint64_t gs_result_seed(const gs_result *res);
/* What the generation left out but did not refuse (LoRA modules skipped with
 * lora_strict = 0), or NULL; owned by the result. */
GS_API const char *gs_result_warnings(const gs_result *res);

/* Where the time of a generation went, for benchmarks and logs. */
typedef struct gs_timings {
    double text_encode_s;    /* prompt + negative prompt through the text encoder */
    double vae_encode_s;     /* img2img init image to latent; 0 for txt2img */
    double sampling_s;       /* all sampler steps */
    double vae_decode_s;     /* latents to pixels */
    double total_s;          /* the whole gs_generate call */
    int unet_batch;          /* images per UNet evaluation (2x batch with CFG) */
    double step_gflop;       /* GEMM/conv/attention work of one sampler step (CFG included) */
    double vae_decode_gflop; /* the same for the whole VAE decode */
    int n_steps;             /* entries in step_s */
    const double *step_s;    /* [n_steps] wall time of each sampler step; owned by the result */
    double lora_apply_s;     /* folding the LoRA set into the weights (0 when unchanged) */
    double load_s;           /* networks loaded during the call: a one-shot model's UNet and
                                VAE, or those a release-after-use run freed */
    /* The mean step after the first (the warm-up; the only one when 1 step), split by
       the engine's op timers (gs_engine_options.op_timers; all 0 when off): */
    double step_mean_s;     /* its wall time */
    double step_gemm_s;     /* ... in matrix products (GEMMs of convolutions, linear layers,
                               attention) */
    double step_conv_aux_s; /* ... in the convolutions' patch gathers and Winograd transforms */
    double step_other_s;    /* the rest: norms, softmax, GEGLU, elementwise, copies, serial
                               code */
} gs_timings;

GS_API void gs_result_timings(const gs_result *res, gs_timings *out);

/* Measures the engine's large square GEMM rate (GFLOP/s) on its threads, in its
 * compute precision (bf16 engines: bf16 inputs, f32 accumulation): the reference
 * "FLOP floor" rate that benchmarks compare a step against. */
GS_API GS_NODISCARD gs_status gs_engine_gemm_rate(gs_engine *eng, double *gflops);
GS_API void gs_result_free(gs_result *res);

/* ---- image safety check ---- */

/* The AI Horde's image safety check (horde-safety's NSFWChecker, as the
 * reference worker runs it; without its optional DeepDanbooru anime tagger):
 * CLIP ViT-L/14 similarities of an image with fixed texts, and thresholds. */
typedef struct gs_safety gs_safety;

typedef struct gs_safety_result {
    int is_nsfw;     /* sexual content */
    int is_csam;     /* sexual content with an underage subject */
    int is_anime;    /* what drove the decision: judged as a drawing ... */
    int is_underage; /* ... an underage subject (with or without NSFW) */
} gs_safety_result;

/* Loads a CLIP model from clip_path, a safetensors file in Hugging Face's
 * CLIPModel layout (openai/clip-vit-large-patch14's model.safetensors), and
 * computes the features of every text of the check on eng's threads (tens of
 * seconds on a CPU for ViT-L/14). The caller owns *out (gs_safety_free). On
 * failure gs_engine_errmsg(eng) says why. */
GS_API GS_NODISCARD gs_status gs_safety_load(gs_engine *eng, const char *clip_path,
                                             gs_safety **out);
GS_API void gs_safety_free(gs_safety *s);

/* Checks one RGB or RGBA image. negative_prompt (may be NULL) lowers the
 * underage thresholds when it asks for no old or adult subjects, as the
 * reference does. On failure *out is all zeros and gs_engine_errmsg says why. */
GS_API GS_NODISCARD gs_status gs_safety_check(gs_engine *eng, gs_safety *s, const gs_image *img,
                                              const char *negative_prompt, gs_safety_result *out);

/* horde-safety's normalize_prompt, which its checks read prompts through:
 * "(text:1.2)" weights dropped to their text, characters other than word
 * characters and spaces (and '_') made spaces, spaced-out letters ("a d u l
 * t") joined, spaces collapsed (no unidecode transliteration). Never longer
 * than prompt: out must hold strlen(prompt) + 1 bytes (GS_ERR_INVALID_ARGUMENT
 * if out_size is less); out may be prompt itself. */
GS_API GS_NODISCARD gs_status gs_safety_normalize_prompt(const char *prompt, char *out,
                                                         size_t out_size);

/* Tests only: adds other to every similarity but the underage ones, and
 * underage to those, so a random model's decision can be steered. */
GS_API void gs_safety_test_shift(gs_safety *s, double other, double underage);

/* ---- prompts ---- */

/* The engine's prompt rules without an engine or a model, for a service that
 * bounds the work of a job before queueing it. A prompt is encoded in chunks
 * of 75 tokens (AUTOMATIC1111's rules: CLIP's tokens, the emphasis syntax
 * removed, a chunk that fills up moves the words after its last comma, if
 * within 20 tokens of its end, to the next one; BREAK starts a new chunk); the
 * text encoder runs once per chunk, and every UNet step attends to all their
 * tokens. */
typedef struct gs_tokenizer gs_tokenizer;

/* Creates a tokenizer (the vocabulary compiled into the library is inflated:
 * tens of milliseconds); free it with gs_tokenizer_free. Immutable once made:
 * one may be shared by any number of threads. */
GS_API GS_NODISCARD gs_status gs_tokenizer_create(gs_tokenizer **out);
GS_API void gs_tokenizer_free(gs_tokenizer *tok);

/* Sets *chunks to the number of 75-token chunks gs_generate encodes prompt
 * in (1 for an empty prompt); a few milliseconds for 16 KB. Fails with
 * GS_ERR_INVALID_ARGUMENT where gs_generate would refuse the prompt: a weight
 * that is not a number ("(word:1.2.3)"), brackets nested thousands deep, or
 * over 16 MB. On failure *chunks is 0 and errmsg (if not NULL, of errmsg_size
 * bytes) says why. */
GS_API GS_NODISCARD gs_status gs_prompt_chunks(const gs_tokenizer *tok, const char *prompt,
                                               int *chunks, char *errmsg, size_t errmsg_size);

/* Sampler and scheduler names the engine accepts, NULL-terminated. */
GS_API const char *const *gs_sampler_names(void);
GS_API const char *const *gs_scheduler_names(void);

/* The samplers as rows, for listing them under other tools' names. */
#define GS_SAMPLER_SIGMAS 0x01u              /* walks a sigma schedule (a scheduler applies) */
#define GS_SAMPLER_NOISE 0x02u               /* draws fresh noise while sampling (ancestral/SDE) */
#define GS_SAMPLER_SECOND_ORDER 0x04u        /* two or more model evaluations per step */
#define GS_SAMPLER_DISCARD_PENULTIMATE 0x08u /* A1111: steps+1 sigmas, next-to-last dropped */
#define GS_SAMPLER_SIGMA_RANGE 0x10u         /* takes sigma_min/sigma_max, makes its own grid */
#define GS_SAMPLER_BROWNIAN 0x20u            /* its noise comes from a Brownian tree on the seed */

typedef struct gs_sampler_desc {
    const char *name;              /* the engine's name (gs_params.sampler) */
    const char *a1111_name;        /* AUTOMATIC1111's display name ("DPM++ 2M") */
    const char *a1111_aliases;     /* A1111's aliases, comma-separated ("k_dpmpp_2m") */
    const char *horde_names;       /* AI Horde's names, comma-separated ("k_dpmpp_2m") */
    unsigned flags;                /* GS_SAMPLER_* */
    const char *default_scheduler; /* what "default" means for it (a gs_scheduler_names entry) */
    const char *a1111_scheduler;   /* the scheduler A1111's "Automatic" picks, or NULL */
    int max_steps;
} gs_sampler_desc;

typedef struct gs_scheduler_desc {
    const char *name;        /* the engine's name (gs_params.scheduler) */
    const char *a1111_name;  /* A1111's scheduler name ("sgm_uniform") */
    const char *a1111_label; /* its display label ("SGM Uniform") */
    double default_rho;      /* A1111's default_rho, or -1 */
    int uses_model_sigmas;   /* walks the model's own sigma table (A1111's need_inner_model) */
} gs_scheduler_desc;

GS_API int gs_sampler_count(void);
GS_API const gs_sampler_desc *gs_sampler_at(int i); /* NULL when out of range */
GS_API int gs_scheduler_count(void);
GS_API const gs_scheduler_desc *gs_scheduler_at(int i);

#ifdef __cplusplus
}
#endif

#endif /* GESSO_H */
