/*
 * random_checkpoint - a checkpoint of any layout with deterministic random
 * weights (gs_checkpoint_write_random is this for a named architecture).
 */
#ifndef GS_RANDOM_CHECKPOINT_H
#define GS_RANDOM_CHECKPOINT_H

#include <stdint.h>

#include "model/ckpt_layout.h"

/* Writes cfg's tensors to path as dtype ("f16", "bf16", "f32"); arch is the
   name recorded in the metadata. The same seed gives the same file. */
gs_status random_checkpoint_write(const layout_config *cfg, const char *arch, const char *dtype,
                                  uint64_t seed, const char *path, gi_error *err);

#endif
