/*
 * fuzz_image - an uploaded image: the PNG, JPEG and WebP decoders behind
 * gs_image_load_memory (init images, masks, PNG Info), the PNG text-chunk
 * walk, and the reading of a "parameters" infotext found there. The input
 * is also read as an infotext directly, so the parser is reached without
 * the fuzzer having to build a PNG around it.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "api/infotext_parse.h"
#include "api/png_text.h"
#include "fuzzutil.h"
#include "gesso.h"

static void read_infotext(const char *text)
{
    json_t *fields = infotext_parse(text);
    if (!json_is_object(fields))
        abort(); /* always an object, even of nonsense */
    json_decref(fields);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gs_image *img = NULL;
    char msg[256];
    if (gs_image_load_memory(data, size, &img, msg, sizeof msg) == GS_OK)
        gs_image_free(img);
    if (png_is_png(data, size)) {
        json_t *items = png_text_chunks(data, size);
        const char *params = json_string_value(json_object_get(items, "parameters"));
        if (params)
            read_infotext(params);
        json_decref(items);
    } else {
        char *text = fuzz_cstr(data, size);
        read_infotext(text);
        free(text);
    }
    return 0;
}
