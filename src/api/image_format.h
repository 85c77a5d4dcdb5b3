/*
 * image_format - a job's PNG as the format a client asks for (OpenAI's
 * output_format, the native image route's ?format=): PNG as stored, or
 * JPEG/WebP encoded on the way out.
 */
#ifndef GS_API_IMAGE_FORMAT_H
#define GS_API_IMAGE_FORMAT_H

#include <stddef.h>

typedef enum image_format { IMAGE_PNG, IMAGE_JPEG, IMAGE_WEBP } image_format;

/* "png", "jpeg" (or "jpg"), "webp" into *f. 0, or -1 for another name. */
int image_format_parse(const char *name, image_format *f);
const char *image_format_name(image_format f);
const char *image_format_mime(image_format f);

/* png (n bytes) in format f at quality (1..100; WebP 100 = lossless; ignored
   for PNG) into *out (malloc'd; PNG: a copy). 0, or -1 when it does not decode
   or encode. */
int image_transcode(const unsigned char *png, size_t n, image_format f, int quality,
                    unsigned char **out, size_t *out_n);

#endif
