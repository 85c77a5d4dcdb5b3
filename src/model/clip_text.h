/*
 * clip_text - the CLIP text transformer of SD1.x (OpenAI CLIP ViT-L/14's text
 * tower): token + position embeddings, pre-norm causal self-attention layers
 * with QuickGELU MLPs, final layer norm. Sizes come from the tensor shapes;
 * the head count is the family default (12 for SD1).
 */
#ifndef GS_CLIP_TEXT_H
#define GS_CLIP_TEXT_H

#include <stdint.h>

#include "compute/compute.h"
#include "model/safetensors.h"
#include "model/weights.h"

typedef struct clip_text clip_text;

/* prefix e.g. "cond_stage_model.transformer.text_model." */
/* bf16: layer weights and the token table kept in bf16 (GEMMs in bf16). */
gs_status clip_text_load(const st_file *f, const char *prefix, int bf16, weight_log *log,
                         clip_text **out, gi_error *err);
int clip_text_width(const clip_text *m);
int clip_text_layers(const clip_text *m);
/* Bytes of converted weights the text encoder keeps resident. */
size_t clip_text_weight_bytes(const clip_text *m);
/* ids: [n_seq, positions]; out: [n_seq, positions, width]; clip_skip >= 1 (1 = last layer,
   2 = final norm applied to the second-to-last layer's output, as A1111 does). */
gs_status clip_text_encode(clip_text *m, gi_compute *cx, const int32_t *ids, int n_seq,
                           int clip_skip, float *out, gi_error *err);
void clip_text_free(clip_text *m);

#endif
