/*
 * png_encode - 8-bit RGB/RGBA PNG with the generation settings in a text chunk
 * named "parameters", as AUTOMATIC1111 writes it: tEXt when the text is Latin-1
 * representable ASCII, iTXt (UTF-8) otherwise, as PIL does. Fast zlib level:
 * generated images are written once and rarely archived at maximum effort.
 */
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gesso.h"

typedef struct membuf {
    uint8_t *data;
    size_t size, cap;
    int failed;
} membuf;

static void mem_write(png_structp png, png_bytep data, png_size_t n)
{
    membuf *mb = png_get_io_ptr(png);
    if (mb->failed)
        return;
    if (mb->size + n > mb->cap) {
        size_t cap = mb->cap ? mb->cap : 65536;
        while (cap < mb->size + n)
            cap *= 2;
        uint8_t *d = realloc(mb->data, cap);
        if (!d) {
            mb->failed = 1;
            return;
        }
        mb->data = d;
        mb->cap = cap;
    }
    memcpy(mb->data + mb->size, data, n);
    mb->size += n;
}

static void mem_flush(png_structp png)
{
    (void)png;
}

static int is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

static void set_err(char *msg, size_t size, const char *text)
{
    if (msg && size)
        snprintf(msg, size, "%s", text);
}

gs_status gs_image_encode_png(const gs_image *img, const char *parameters, uint8_t **out,
                              size_t *out_size, char *errmsg, size_t errmsg_size)
{
    if (!img || !out || !out_size || !img->pixels || img->width < 1 || img->height < 1 ||
        (img->channels != 3 && img->channels != 4)) {
        set_err(errmsg, errmsg_size, "not an 8-bit RGB or RGBA image");
        return GS_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    *out_size = 0;
    membuf mb = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        set_err(errmsg, errmsg_size, "out of memory");
        return GS_ERR_NO_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(mb.data);
        set_err(errmsg, errmsg_size, "PNG encoding failed");
        return GS_ERR_INTERNAL;
    }
    png_set_write_fn(png, &mb, mem_write, mem_flush);
    png_set_compression_level(png, Z_BEST_SPEED);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 img->channels == 4 ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_text text;
    memset(&text, 0, sizeof text);
    if (parameters) {
        text.key = "parameters";
        text.text = (char *)parameters;
        if (is_ascii(parameters)) {
            text.compression = PNG_TEXT_COMPRESSION_NONE;
            text.text_length = strlen(parameters);
        } else {
            text.compression = PNG_ITXT_COMPRESSION_NONE;
            text.itxt_length = strlen(parameters);
            text.lang = "";
            text.lang_key = "";
        }
        png_set_text(png, info, &text, 1);
    }
    png_write_info(png, info);
    size_t stride = (size_t)img->width * img->channels;
    for (int y = 0; y < img->height; y++)
        png_write_row(png, img->pixels + (size_t)y * stride);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    if (mb.failed) {
        free(mb.data);
        set_err(errmsg, errmsg_size, "out of memory");
        return GS_ERR_NO_MEMORY;
    }
    *out = mb.data;
    *out_size = mb.size;
    return GS_OK;
}

gs_status gs_image_save_png(const gs_image *img, const char *path, const char *parameters,
                            char *errmsg, size_t errmsg_size)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    gs_status st = gs_image_encode_png(img, parameters, &buf, &n, errmsg, errmsg_size);
    if (st != GS_OK)
        return st;
    /* write to a temporary name and rename, so readers never see half a file */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        if (errmsg && errmsg_size)
            snprintf(errmsg, errmsg_size, "cannot create '%s': %s", path, strerror(errno));
        free(buf);
        return GS_ERR_IO;
    }
    int ok = fwrite(buf, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    free(buf);
    if (!ok || rename(tmp, path) != 0) {
        if (errmsg && errmsg_size)
            snprintf(errmsg, errmsg_size, "cannot write '%s': %s", path, strerror(errno));
        remove(tmp);
        return GS_ERR_IO;
    }
    return GS_OK;
}
