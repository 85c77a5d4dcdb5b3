/*
 * lossy_encode - JPEG (libjpeg-turbo) and WebP (libwebp) into memory, for
 * clients that ask for them (OpenAI's output_format). The generation settings
 * stay in the PNG the job keeps; these copies carry pixels only.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <webp/encode.h>

#include "gesso.h"

static gs_status fail(char *msg, size_t size, gs_status st, const char *text)
{
    if (msg && size)
        snprintf(msg, size, "%s", text);
    return st;
}

static int image_ok(const gs_image *img)
{
    return img && img->pixels && img->width > 0 && img->height > 0 && img->width <= 16384 &&
           img->height <= 16384 && (img->channels == 3 || img->channels == 4);
}

typedef struct jpeg_fail {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    unsigned char *mem; /* jpeg_mem_dest's buffer: ours to free, also after a failure */
    unsigned long len;
} jpeg_fail;

static void jpeg_error_exit(j_common_ptr cinfo)
{
    longjmp(((jpeg_fail *)cinfo->err)->jump, 1);
}

gs_status gs_image_encode_jpeg(const gs_image *img, int quality, uint8_t **out, size_t *out_size,
                               char *errmsg, size_t errmsg_size)
{
    if (!out || !out_size || !image_ok(img) || quality < 1 || quality > 100)
        return fail(errmsg, errmsg_size, GS_ERR_INVALID_ARGUMENT,
                    "JPEG: an RGB(A) image and a quality in 1..100 are needed");
    *out = NULL;
    *out_size = 0;
    struct jpeg_compress_struct c;
    jpeg_fail jf;
    /* volatile: read after a longjmp back into this frame */
    uint8_t *volatile row = NULL;
    jf.mem = NULL;
    jf.len = 0;
    c.err = jpeg_std_error(&jf.mgr);
    jf.mgr.error_exit = jpeg_error_exit;
    if (setjmp(jf.jump)) {
        jpeg_destroy_compress(&c);
        free(jf.mem);
        free(row);
        return fail(errmsg, errmsg_size, GS_ERR_NO_MEMORY, "JPEG: the encoder failed");
    }
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &jf.mem, &jf.len);
    c.image_width = (JDIMENSION)img->width;
    c.image_height = (JDIMENSION)img->height;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    if (img->channels == 4 && !(row = malloc((size_t)img->width * 3)))
        longjmp(jf.jump, 1);
    while (c.next_scanline < c.image_height) {
        const uint8_t *src = img->pixels + (size_t)c.next_scanline * img->width * img->channels;
        if (row) /* alpha dropped: what PIL's convert("RGB") keeps */
            for (int x = 0; x < img->width; x++)
                memcpy(row + 3 * x, src + 4 * x, 3);
        JSAMPROW rows[1] = {(JSAMPROW)(row ? row : src)};
        jpeg_write_scanlines(&c, rows, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    *out = jf.mem;
    *out_size = jf.len;
    return GS_OK;
}

/* libwebp's lossless encoding in "exact" mode: its simple API
   (WebPEncodeLosslessRGBA) rewrites the colour under fully transparent pixels
   to compress better, and an inpainting source whose alpha is its mask (the
   Horde's convention) needs that colour as it was. Returns the size (0 on
   failure) of *enc, which the caller frees with WebPFree. */
static size_t encode_webp_exact(const gs_image *img, int stride, uint8_t **enc)
{
    WebPConfig cfg;
    WebPPicture pic;
    if (!WebPConfigPreset(&cfg, WEBP_PRESET_DEFAULT, 70) || !WebPPictureInit(&pic))
        return 0;
    cfg.lossless = 1;
    cfg.exact = 1;
    pic.use_argb = 1;
    pic.width = img->width;
    pic.height = img->height;
    WebPMemoryWriter w;
    WebPMemoryWriterInit(&w);
    pic.writer = WebPMemoryWrite;
    pic.custom_ptr = &w;
    int ok = img->channels == 4 ? WebPPictureImportRGBA(&pic, img->pixels, stride)
                                : WebPPictureImportRGB(&pic, img->pixels, stride);
    ok = ok && WebPEncode(&cfg, &pic);
    WebPPictureFree(&pic);
    if (!ok) {
        WebPMemoryWriterClear(&w);
        return 0;
    }
    *enc = w.mem;
    return w.size;
}

gs_status gs_image_encode_webp(const gs_image *img, int quality, uint8_t **out, size_t *out_size,
                               char *errmsg, size_t errmsg_size)
{
    if (!out || !out_size || !image_ok(img) || quality < 0 || quality > 100)
        return fail(errmsg, errmsg_size, GS_ERR_INVALID_ARGUMENT,
                    "WebP: an RGB(A) image and a quality in 0..100 are needed");
    *out = NULL;
    *out_size = 0;
    uint8_t *enc = NULL;
    int stride = img->width * img->channels;
    size_t n;
    if (quality == 100) /* lossless: every pixel comes back exactly */
        n = encode_webp_exact(img, stride, &enc);
    else
        n = img->channels == 4
                ? WebPEncodeRGBA(img->pixels, img->width, img->height, stride, (float)quality, &enc)
                : WebPEncodeRGB(img->pixels, img->width, img->height, stride, (float)quality, &enc);
    if (n == 0 || !enc) {
        WebPFree(enc);
        return fail(errmsg, errmsg_size, GS_ERR_NO_MEMORY, "WebP: the encoder failed");
    }
    /* the caller frees with free(), as for the other encoders */
    *out = malloc(n);
    if (*out)
        memcpy(*out, enc, n);
    WebPFree(enc);
    if (!*out)
        return fail(errmsg, errmsg_size, GS_ERR_NO_MEMORY, "WebP: out of memory");
    *out_size = n;
    return GS_OK;
}
