/*
 * generate_internal - what gs_generate's passes share: the run's context and
 * the pieces of generate.c that the hires fix (hires.c) calls again for its
 * second pass. Internal to pipeline/.
 */
#ifndef GS_GENERATE_INTERNAL_H
#define GS_GENERATE_INTERNAL_H

#include "pipeline/engine.h"

typedef struct gen_ctx {
    gs_engine *eng;
    gs_model *m;
    const gs_params *p;
    int batch, ch, lh, lw;
    int cfg;   /* run the negative prompt too */
    int joint; /* both prompts in one UNet call (same token count) */
    int tokens_c, tokens_u;
    float *ctx_c;    /* [batch (or 2*batch when joint), tokens_c, width]; uncond first */
    float *ctx_u;    /* [batch, tokens_u, width] when !joint */
    int adm;         /* width of the UNet's extra conditioning vector (SDXL), else 0 */
    float *y_c;      /* [batch (or 2*batch when joint), adm], laid out as ctx_c */
    float *y_u;      /* [batch, adm] when !joint */
    float *x_nhwc;   /* [2*batch, lh, lw, in_ch] */
    float *eps_nhwc; /* [2*batch, lh, lw, ch] */
    float *t_batch;  /* [2*batch] */
    /* progress */
    gs_progress_fn progress;
    void *user;
    double t_start, t_last;
    double *step_s; /* [total steps] */
    /* op timers (cx->prof_on): the GEMM and convolution-helper seconds at the last
       step's end, and the sums over the steps after the warm-up */
    double prof_gemm_last, prof_aux_last;
    double split_wall, split_gemm, split_aux;
    int split_n;
    int total;       /* steps of all passes (the hires fix adds a second) */
    int step_offset; /* steps of the passes before the one running */
    int truncate_u8; /* A1111's 8-bit conversion (inpainting's reference truncates) */
    int in_ch;       /* the UNet's input width: ch, or 2·ch + 1 for an inpainting UNet */
    float *concat;   /* [lh, lw, in_ch − ch]: what an inpainting UNet takes after x */
} gen_ctx;

/* The sampler's model callback: classifier-free guidance around the UNet at
   the context's latent size (g->lh x g->lw). */
gs_status gen_model_eps(void *user, const float *x_in, double t, float *eps, gi_error *err);
/* The sampler's step callback: timings and progress, step counted from g->step_offset. */
int gen_on_step(void *user, int step, int total, const float *x, const float *denoised);
/* Fills g's text (and SDXL size) conditioning for g->p's size. */
gs_status gen_build_context(gen_ctx *g, const prompt_cond *cond, const prompt_cond *uncond,
                            gi_error *err);
/* The VAE tile in latent pixels for p's image size, 0 for a whole decode or encode. */
int gen_vae_tile_latent(const gs_params *p);
void gen_nchw_to_nhwc(const float *src, float *dst, int n, int c, int h, int w);
void gen_nhwc_to_nchw(const float *src, float *dst, int n, int c, int h, int w);

#endif
