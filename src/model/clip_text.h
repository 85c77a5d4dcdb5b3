/*
 * clip_text - the CLIP text transformer of the SD families: token + position
 * embeddings, pre-norm causal self-attention layers with MLPs, a final layer
 * norm, and (OpenCLIP) a text projection for the pooled output.
 *
 * Two tensor layouts load into the one implementation, told apart by the names
 * under the prefix: OpenAI CLIP in Hugging Face names (SD1, SDXL encoder 1;
 * QuickGELU) and OpenCLIP names (SD2, SDXL encoder 2; exact GELU, fused
 * in_proj, text_projection). Sizes come from the tensor shapes; the head count
 * is not in the file and is given by the caller (12 CLIP ViT-L, 16 OpenCLIP
 * ViT-H, 20 OpenCLIP ViT-bigG).
 */
#ifndef GS_CLIP_TEXT_H
#define GS_CLIP_TEXT_H

#include <stdint.h>

#include "compute/compute.h"
#include "model/safetensors.h"
#include "model/weights.h"

typedef struct clip_text clip_text;

/* Which hidden state a family takes out of the encoder. */
typedef struct clip_text_take {
    int skip;       /* 1 = output of the last layer, 2 = of the penultimate one, ... */
    int final_norm; /* apply the final layer norm to that layer's output */
} clip_text_take;

/* prefix e.g. "cond_stage_model.transformer.text_model." (OpenAI CLIP) or
   "cond_stage_model.model." (OpenCLIP); heads: attention heads (width % heads == 0).
   half (WL_*): layer weights and the token table kept in bf16 or f16. */
gs_status clip_text_load(const st_file *f, const char *prefix, int heads, int half, weight_log *log,
                         clip_text **out, gi_error *err);
int clip_text_width(const clip_text *m);
int clip_text_layers(const clip_text *m);
/* Width of the pooled output (text_projection's columns); 0 when the file has none. */
int clip_text_proj_dim(const clip_text *m);
int clip_text_has_projection(const clip_text *m);
/* Bytes of converted weights the text encoder keeps resident. */
size_t clip_text_weight_bytes(const clip_text *m);

/* ids: [n_seq, 77]; hidden: [n_seq, 77, width] = the take->skip-th layer output from the
   end (final-normed if take->final_norm); pooled: NULL, or [n_seq, proj_dim] =
   final_norm(last layer's output) at each sequence's first maximum id (the EOS) @
   text_projection. Asking for pooled runs every layer whatever the skip. */
gs_status clip_text_encode_take(clip_text *m, gi_compute *cx, const int32_t *ids, int n_seq,
                                const clip_text_take *take, float *hidden, float *pooled,
                                gi_error *err);
/* The SD1 form: clip_skip >= 1 (1 = last layer, 2 = final norm applied to the
   second-to-last layer's output, as A1111 does); out: [n_seq, 77, width]. */
gs_status clip_text_encode(clip_text *m, gi_compute *cx, const int32_t *ids, int n_seq,
                           int clip_skip, float *out, gi_error *err);
/* OpenAI's own weights in OpenCLIP's names (open_clip's ViT-L-14/openai) keep
   OpenAI's QuickGELU; the layout alone would say exact GELU. */
void clip_text_use_quick_gelu(clip_text *m);
void clip_text_free(clip_text *m);

#endif
