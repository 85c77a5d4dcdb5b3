/*
 * fuzz_safetensors - the safetensors reader on arbitrary bytes: the 8-byte
 * length, the JSON header, the tensor table (dtypes, shapes, offsets,
 * overlaps) and the metadata, then every accepted tensor converted, as the
 * loaders convert them.
 */
#include <stdint.h>
#include <stdlib.h>

#include "model/safetensors.h"
#include "model/weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_file *f = NULL;
    gi_error err = {0};
    if (st_open_memory(data, size, &f, &err) != GS_OK)
        return 0;
    int bf16;
    (void)weights_file_prepared(f, &bf16);
    (void)st_metadata(f, "modelspec.architecture");
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        if (st_find(f, t->name) != t)
            abort(); /* the table is sorted and names are unique */
        (void)st_dtype_name(t->dtype);
        if (t->numel <= 0 || t->numel > (1 << 16))
            continue;
        float *x = malloc((size_t)t->numel * sizeof *x);
        double *y = malloc((size_t)t->numel * sizeof *y);
        if (x && y) {
            (void)st_to_f32(t, x, &err);
            (void)st_to_f64(t, y, &err);
            (void)st_span_to_f32(t, (size_t)t->numel - 1, 1, x, &err);
        }
        free(x);
        free(y);
    }
    st_close(f);
    return 0;
}
