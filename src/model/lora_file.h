/*
 * lora_file - a LoRA .safetensors file read as a list of modules.
 *
 * Each module is a pair of low-rank factors (down [r, in(, k, k)], up
 * [out, r(, 1, 1)]) and an optional alpha, for one layer of the checkpoint,
 * named by lora_keys. kohya/A1111 (lora_down/lora_up/alpha, LyCORIS LoCon
 * included) and diffusers PEFT (lora_A/lora_B, no alpha) layouts are read.
 * What the file alone can get wrong is checked here: key names, missing
 * factors, ranks that disagree, an alpha that is not a scalar, values that are
 * not finite. Fit to the model's layers is checked by lora_apply.
 */
#ifndef GS_LORA_FILE_H
#define GS_LORA_FILE_H

#include <stddef.h>

#include "common/error.h"
#include "model/lora_keys.h"
#include "model/safetensors.h"

typedef struct lora_module {
    char key[256]; /* the module's name in the file, for messages */
    lora_target target;
    const st_tensor *down, *up, *alpha; /* alpha may be NULL (scale 1) */
    int rank;
} lora_module;

typedef struct lora_file {
    st_file *f;
    lora_module *mods;
    int n;
    int skipped;         /* modules refused and left out (lenient opening only) */
    char first_bad[600]; /* the first of them and why */
} lora_file;

/* Opens and checks path. strict: the first bad key fails the open with a
   message naming it; otherwise bad modules are left out and counted. */
gs_status lora_file_open(const char *path, const lora_unet_layout *L, int strict, lora_file **out,
                         gi_error *err);
void lora_file_close(lora_file *lf);

/* A1111's hash of a LoRA file (kohya's "addnet" hash): sha256 of everything
   after the safetensors header, lowercase hex (65 bytes with the NUL). */
void lora_file_hash(const lora_file *lf, char out[65]);

#endif
