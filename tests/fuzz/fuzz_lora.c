/*
 * fuzz_lora - a LoRA file from the internet. Even first byte: the rest is
 * a .safetensors file opened as a LoRA for each family (kohya and PEFT key
 * mapping, factor pairs, ranks, alphas, non-finite values), leniently and
 * strictly. Odd first byte: the rest is one module name given to both key
 * mappers directly, which reaches their branches in fewer steps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzzutil.h"
#include "model/lora_file.h"
#include "model/lora_keys.h"

static const lora_unet_layout *const layouts[] = {&lora_layout_sd1, &lora_layout_sd2,
                                                  &lora_layout_sdxl};

static void map_name(const char *name)
{
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        lora_target t;
        if (lora_map_kohya(layouts[i], name, &t) == 0 && !memchr(t.name, 0, sizeof t.name))
            abort();
        if (lora_map_peft(layouts[i], name, &t) == 0 && !memchr(t.name, 0, sizeof t.name))
            abort();
    }
}

static void open_file(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_memfile(data, size, path);
    if (fd < 0)
        return;
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        for (int strict = 0; strict <= 1; strict++) {
            lora_file *lf = NULL;
            gi_error err = {0};
            if (lora_file_open(path, layouts[i], strict, &lf, &err) != GS_OK)
                continue;
            char hash[65];
            lora_file_hash(lf, hash);
            for (int k = 0; k < lf->n; k++)
                if (lf->mods[k].rank <= 0 || !lf->mods[k].down || !lf->mods[k].up)
                    abort(); /* lora_file.h: every module kept has both factors */
            lora_file_close(lf);
        }
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1) {
        char *name = fuzz_cstr(data + 1, size - 1);
        map_name(name);
        free(name);
    } else {
        open_file(data + 1, size - 1);
    }
    return 0;
}
