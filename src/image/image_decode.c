/*
 * image_decode - PNG, JPEG and WebP to 8-bit RGB, chosen by magic bytes.
 *
 * Every decoder reads the header first and refuses absurd dimensions before
 * allocating; libpng's simplified API and a longjmp-based libjpeg error
 * manager turn corrupt data into an error instead of an abort. Alpha is
 * dropped (as PIL's convert("RGB") does).
 */
#include <errno.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
/* jpeglib.h needs stdio.h and stddef.h first */
#include <jpeglib.h>
#include <png.h>
#include <webp/decode.h>

#include "common/alloc.h"
#include "image/image_util.h"

#define MAX_FILE_BYTES (256L * 1024 * 1024)

static gs_status fail(char *msg, size_t size, gs_status st, const char *fmt, const char *detail)
{
    if (msg && size)
        snprintf(msg, size, fmt, detail ? detail : "");
    return st;
}

static gs_status check_size(long w, long h, char *msg, size_t size)
{
    char buf[96];
    snprintf(buf, sizeof buf, "%ldx%ld", w, h);
    if (w < 1 || h < 1)
        return fail(msg, size, GS_ERR_FORMAT, "image has an empty size (%s)", buf);
    if (w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE || w * h > IMAGE_MAX_PIXELS)
        return fail(msg, size, GS_ERR_UNSUPPORTED,
                    "image size %s is too large (at most 16384 per side and 64 megapixels)", buf);
    return GS_OK;
}

/* ---- PNG ---- */

static gs_status decode_png(const uint8_t *data, size_t n, int keep_alpha, gs_image **out,
                            char *msg, size_t size)
{
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&pi, data, n))
        return fail(msg, size, GS_ERR_FORMAT, "invalid PNG: %s", pi.message);
    gs_status st = check_size((long)pi.width, (long)pi.height, msg, size);
    if (st != GS_OK) {
        png_image_free(&pi);
        return st;
    }
    /* read RGBA and drop alpha: convert("RGB") keeps colour values as they are
       (an alpha from a tRNS chunk counts as alpha, as PIL's RGBA reads it) */
    int ch = keep_alpha && (pi.format & PNG_FORMAT_FLAG_ALPHA) ? 4 : 3;
    pi.format = PNG_FORMAT_RGBA;
    gs_image *im = image_new((int)pi.width, (int)pi.height, ch);
    uint8_t *rgba = gi_malloc((size_t)pi.width * pi.height * 4);
    if (!im || !rgba) {
        png_image_free(&pi);
        gs_image_free(im);
        gi_free(rgba);
        return fail(msg, size, GS_ERR_NO_MEMORY, "out of memory decoding PNG%s", NULL);
    }
    if (!png_image_finish_read(&pi, NULL, rgba, 0, NULL)) {
        gs_image_free(im);
        gi_free(rgba);
        return fail(msg, size, GS_ERR_FORMAT, "invalid PNG: %s", pi.message);
    }
    size_t px = (size_t)pi.width * pi.height;
    for (size_t i = 0; i < px; i++)
        memcpy(im->pixels + ch * i, rgba + 4 * i, ch);
    gi_free(rgba);
    *out = im;
    return GS_OK;
}

/* ---- JPEG ---- */

typedef struct jpeg_err {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char text[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_error_exit(j_common_ptr cinfo)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->text);
    longjmp(e->jump, 1);
}

static void jpeg_quiet(j_common_ptr cinfo, int level)
{
    (void)cinfo, (void)level;
}

static gs_status decode_jpeg(const uint8_t *data, size_t n, gs_image **out, char *msg, size_t size)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_err jerr;
    gs_image *volatile im = NULL;
    cinfo.err = jpeg_std_error(&jerr.mgr);
    jerr.mgr.error_exit = jpeg_error_exit;
    jerr.mgr.emit_message = jpeg_quiet;
    jerr.text[0] = '\0';
    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        gs_image_free(im);
        return fail(msg, size, GS_ERR_FORMAT, "invalid JPEG: %s", jerr.text);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)n);
    jpeg_read_header(&cinfo, TRUE);
    gs_status st = check_size((long)cinfo.image_width, (long)cinfo.image_height, msg, size);
    if (st != GS_OK) {
        jpeg_destroy_decompress(&cinfo);
        return st;
    }
    /* CMYK/YCCK need their own conversion; everything else libjpeg turns into RGB */
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    im = image_new((int)cinfo.output_width, (int)cinfo.output_height, 3);
    uint8_t *row = gi_malloc((size_t)cinfo.output_width * 4);
    if (!im || !row) {
        gi_free(row);
        jpeg_destroy_decompress(&cinfo);
        gs_image_free(im);
        return fail(msg, size, GS_ERR_NO_MEMORY, "out of memory decoding JPEG%s", NULL);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *dst = im->pixels + (size_t)cinfo.output_scanline * im->width * 3;
        JSAMPROW rp = cmyk ? row : dst;
        jpeg_read_scanlines(&cinfo, &rp, 1);
        if (cmyk) {
            /* Adobe JPEGs store inverted CMYK: R = C*K/255 with inverted values */
            for (int x = 0; x < im->width; x++) {
                unsigned k = row[4 * x + 3];
                for (int c = 0; c < 3; c++)
                    dst[3 * x + c] = (uint8_t)((row[4 * x + c] * k + 127) / 255);
            }
        }
    }
    gi_free(row);
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    *out = im;
    return GS_OK;
}

/* ---- WebP ---- */

static gs_status decode_webp(const uint8_t *data, size_t n, int keep_alpha, gs_image **out,
                             char *msg, size_t size)
{
    int w = 0, h = 0;
    if (!WebPGetInfo(data, n, &w, &h))
        return fail(msg, size, GS_ERR_FORMAT, "invalid WebP header%s", NULL);
    gs_status st = check_size(w, h, msg, size);
    if (st != GS_OK)
        return st;
    WebPBitstreamFeatures feat;
    int ch =
        keep_alpha && WebPGetFeatures(data, n, &feat) == VP8_STATUS_OK && feat.has_alpha ? 4 : 3;
    gs_image *im = image_new(w, h, ch);
    if (!im)
        return fail(msg, size, GS_ERR_NO_MEMORY, "out of memory decoding WebP%s", NULL);
    size_t bytes = (size_t)w * h * ch;
    if (!(ch == 4 ? WebPDecodeRGBAInto(data, n, im->pixels, bytes, w * 4) != NULL
                  : WebPDecodeRGBInto(data, n, im->pixels, bytes, w * 3) != NULL)) {
        gs_image_free(im);
        return fail(msg, size, GS_ERR_FORMAT, "invalid WebP data%s", NULL);
    }
    *out = im;
    return GS_OK;
}

/* ---- entry points ---- */

static gs_status load_memory(const void *data, size_t n, int keep_alpha, gs_image **out,
                             char *errmsg, size_t errmsg_size)
{
    if (!out)
        return GS_ERR_INVALID_ARGUMENT;
    *out = NULL;
    const uint8_t *b = data;
    if (!data || n < 12)
        return fail(errmsg, errmsg_size, GS_ERR_FORMAT, "not an image (too short)%s", NULL);
    if (memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0)
        return decode_png(b, n, keep_alpha, out, errmsg, errmsg_size);
    if (b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return decode_jpeg(b, n, out, errmsg, errmsg_size);
    if (memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        return decode_webp(b, n, keep_alpha, out, errmsg, errmsg_size);
    return fail(errmsg, errmsg_size, GS_ERR_UNSUPPORTED, "not a PNG, JPEG or WebP image%s", NULL);
}

gs_status gs_image_load_memory(const void *data, size_t n, gs_image **out, char *errmsg,
                               size_t errmsg_size)
{
    return load_memory(data, n, 0, out, errmsg, errmsg_size);
}

gs_status gs_image_load_memory_alpha(const void *data, size_t n, gs_image **out, char *errmsg,
                                     size_t errmsg_size)
{
    return load_memory(data, n, 1, out, errmsg, errmsg_size);
}

static gs_status load_file(const char *path, int keep_alpha, gs_image **out, char *errmsg,
                           size_t errmsg_size)
{
    if (!out || !path)
        return GS_ERR_INVALID_ARGUMENT;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(errmsg, errmsg_size, GS_ERR_IO, "cannot open: %s", strerror(errno));
    uint8_t *buf = NULL;
    gs_status st = GS_OK;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
        st = fail(errmsg, errmsg_size, GS_ERR_IO, "cannot read: %s", strerror(errno));
        goto out;
    }
    if (len > MAX_FILE_BYTES) {
        st = fail(errmsg, errmsg_size, GS_ERR_UNSUPPORTED, "file is larger than 256 MB%s", NULL);
        goto out;
    }
    buf = gi_malloc((size_t)len + 1);
    if (!buf) {
        st = fail(errmsg, errmsg_size, GS_ERR_NO_MEMORY, "out of memory%s", NULL);
        goto out;
    }
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        st = fail(errmsg, errmsg_size, GS_ERR_IO, "short read%s", NULL);
        goto out;
    }
    st = load_memory(buf, (size_t)len, keep_alpha, out, errmsg, errmsg_size);
out:
    gi_free(buf);
    fclose(f);
    return st;
}

gs_status gs_image_load(const char *path, gs_image **out, char *errmsg, size_t errmsg_size)
{
    return load_file(path, 0, out, errmsg, errmsg_size);
}

gs_status gs_image_load_alpha(const char *path, gs_image **out, char *errmsg, size_t errmsg_size)
{
    return load_file(path, 1, out, errmsg, errmsg_size);
}
