/* image_format - see image_format.h. */
#include "api/image_format.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gesso.h"

static const char *const names[] = {"png", "jpeg", "webp"};
static const char *const mimes[] = {"image/png", "image/jpeg", "image/webp"};

int image_format_parse(const char *name, image_format *f)
{
    if (!name)
        return -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0) {
            *f = (image_format)i;
            return 0;
        }
    if (strcmp(name, "jpg") == 0) {
        *f = IMAGE_JPEG;
        return 0;
    }
    return -1;
}

const char *image_format_name(image_format f)
{
    return names[f];
}

const char *image_format_mime(image_format f)
{
    return mimes[f];
}

int image_transcode(const unsigned char *png, size_t n, image_format f, int quality,
                    unsigned char **out, size_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    if (f == IMAGE_PNG) {
        if (!(*out = malloc(n ? n : 1)))
            return -1;
        memcpy(*out, png, n);
        *out_n = n;
        return 0;
    }
    gs_image *im = NULL;
    char msg[200];
    if (gs_image_load_memory(png, n, &im, msg, sizeof msg) != GS_OK)
        return -1;
    uint8_t *enc = NULL;
    gs_status st = f == IMAGE_JPEG
                       ? gs_image_encode_jpeg(im, quality, &enc, out_n, msg, sizeof msg)
                       : gs_image_encode_webp(im, quality, &enc, out_n, msg, sizeof msg);
    gs_image_free(im);
    *out = enc;
    return st == GS_OK ? 0 : -1;
}
