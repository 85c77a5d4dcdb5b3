/*
 * lora_apply - LoRA deltas folded into a model's resident weights.
 *
 * W' = W + sum over networks of up @ down * (alpha / r) * multiplier, in the
 * kernels' layout ([cout, k, k, cin] for convolutions) and dtype (f32 or
 * bf16). W is read again from the checkpoint file every time, never recovered
 * by subtraction, so a layer goes back to its base bits exactly when no
 * network patches it any more. Every module is checked against its layer
 * before anything is written: a refused set leaves the model as it was.
 */
#ifndef GS_LORA_APPLY_H
#define GS_LORA_APPLY_H

#include "model/lora_file.h"
#include "model/weights.h"

typedef struct lora_net {
    const lora_file *file;
    const char *label; /* for messages: the file or the prompt's name */
    float te, unet;    /* multipliers of text-encoder and UNet modules */
} lora_net;

/* The layers the current set has changed, to restore when it changes. */
typedef struct lora_applied lora_applied;

/* Makes nets (n may be 0) the set folded into the weights index lists, whose
   base values are the tensors of the same names in the checkpoint at
   ckpt_path. *state (NULL at first) tracks what is applied. strict: a module
   whose layer the model lacks, or whose shape disagrees with it, refuses the
   whole set (the message names it); otherwise it is left out and counted in
   *skipped (note: the first). */
gs_status lora_apply(lora_applied **state, const weight_log *index, const char *ckpt_path,
                     const lora_net *nets, int n, int strict, int *skipped, char *note,
                     size_t note_size, gi_error *err);

/* Forgets what is applied (the networks were freed and will load as base). */
void lora_applied_free(lora_applied *a);

#endif
