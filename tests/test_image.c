/*
 * test_image - image decode/encode: PNG round trips with the parameters chunk
 * read back by libpng, JPEG and WebP decoding of files made by their own
 * encoders, the fixture PNGs against the golden pixels, hostile inputs,
 * resize, and the A1111 infotext.
 */
#define _GNU_SOURCE /* fmemopen, strdup */
#include "testutil.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* jpeglib.h needs stdio.h first */
#include <jpeglib.h>
#include <webp/encode.h>

#include "common/alloc.h"
#include "gesso.h"
#include "image/image_util.h"
#include "image/infotext.h"
#include "image/resize.h"

static gs_image *pattern(int w, int h, int ch)
{
    gs_image *im = image_new(w, h, ch);
    for (int i = 0; i < w * h * ch; i++)
        im->pixels[i] = (uint8_t)(i * 7 + (i / ch) * 3);
    return im;
}

/* Reads the "parameters" text of an encoded PNG with libpng itself. */
static char *read_parameters(const uint8_t *png, size_t n, int *compression)
{
    FILE *f = fmemopen((void *)png, n, "rb");
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(p);
    png_init_io(p, f);
    png_read_info(p, info);
    png_textp text;
    int nt = 0;
    png_get_text(p, info, &text, &nt);
    char *out = NULL;
    for (int i = 0; i < nt; i++)
        if (strcmp(text[i].key, "parameters") == 0) {
            out = strdup(text[i].text);
            *compression = text[i].compression;
        }
    png_destroy_read_struct(&p, &info, NULL);
    fclose(f);
    return out;
}

static void png_round_trip_with_parameters(void **state)
{
    (void)state;
    const char *texts[] = {"a cat, (oil painting:1.2)\nSteps: 20, Seed: 1",
                           "café 日本語 — unicode\nSteps: 4"};
    for (int ch = 3; ch <= 4; ch++)
        for (int t = 0; t < 2; t++) {
            gs_image *im = pattern(37, 23, ch);
            uint8_t *png;
            size_t n;
            char msg[256];
            assert_int_equal(gs_image_encode_png(im, texts[t], &png, &n, msg, sizeof msg), GS_OK);
            int comp = -99;
            char *params = read_parameters(png, n, &comp);
            assert_non_null(params);
            assert_string_equal(params, texts[t]);
            assert_int_equal(comp, t == 0 ? PNG_TEXT_COMPRESSION_NONE : PNG_ITXT_COMPRESSION_NONE);
            free(params);
            gs_image *back = NULL;
            assert_int_equal(gs_image_load_memory(png, n, &back, msg, sizeof msg), GS_OK);
            assert_int_equal(back->width, 37);
            assert_int_equal(back->height, 23);
            assert_int_equal(back->channels, 3);
            for (int p = 0; p < 37 * 23; p++)
                assert_memory_equal(back->pixels + 3 * p, im->pixels + ch * p, 3);
            gs_image_free(back);
            free(png);
            gs_image_free(im);
        }
}

static void fixture_pngs_decode_to_golden_pixels(void **state)
{
    (void)state;
    const char *names[] = {"euler", "ddim", "dpmpp_2m_karras", "lcm"};
    for (int i = 0; i < 4; i++) {
        char file[64], key[64], msg[256];
        snprintf(file, sizeof file, "pipe-%s.png", names[i]);
        snprintf(key, sizeof key, "pipe.%s.image_u8", names[i]);
        gs_image *im = NULL;
        assert_int_equal(gs_image_load(fixture_path(file), &im, msg, sizeof msg), GS_OK);
        size_t n;
        double *ref = golden_f64(key, &n);
        assert_int_equal(n, (size_t)im->width * im->height * 3);
        for (size_t k = 0; k < n; k++)
            assert_int_equal(im->pixels[k], (int)ref[k]);
        free(ref);
        gs_image_free(im);
    }
}

static void jpeg_and_webp_decode(void **state)
{
    (void)state;
    gs_image *im = pattern(40, 30, 3);
    for (int i = 0; i < 40 * 30 * 3; i++)
        im->pixels[i] = (uint8_t)(100 + (i % 3) * 40); /* flat colour: lossy codecs keep it */
    /* JPEG via libjpeg */
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    unsigned char *jbuf = NULL;
    unsigned long jlen = 0;
    jpeg_mem_dest(&c, &jbuf, &jlen);
    c.image_width = 40;
    c.image_height = 30;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = im->pixels + c.next_scanline * 40 * 3;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    gs_image *back = NULL;
    char msg[256];
    assert_int_equal(gs_image_load_memory(jbuf, jlen, &back, msg, sizeof msg), GS_OK);
    assert_int_equal(back->width, 40);
    for (int i = 0; i < 40 * 30 * 3; i++)
        assert_true(abs(back->pixels[i] - im->pixels[i]) <= 3);
    gs_image_free(back);
    /* truncated JPEG: an error, not a crash */
    assert_int_not_equal(gs_image_load_memory(jbuf, jlen / 3, &back, msg, sizeof msg), GS_OK);
    assert_null(back);
    free(jbuf);
    /* WebP lossless */
    uint8_t *wbuf = NULL;
    size_t wlen = WebPEncodeLosslessRGB(im->pixels, 40, 30, 40 * 3, &wbuf);
    assert_true(wlen > 0);
    assert_int_equal(gs_image_load_memory(wbuf, wlen, &back, msg, sizeof msg), GS_OK);
    assert_memory_equal(back->pixels, im->pixels, 40 * 30 * 3);
    gs_image_free(back);
    assert_int_not_equal(gs_image_load_memory(wbuf, wlen / 2, &back, msg, sizeof msg), GS_OK);
    WebPFree(wbuf);
    gs_image_free(im);
}

/* WebP at quality 100 is lossless and exact: the colour under fully
   transparent pixels survives (libwebp's simple lossless API rewrites it; an
   inpainting source whose alpha is its mask needs it as it was). */
static void webp_lossless_keeps_every_pixel(void **state)
{
    (void)state;
    gs_image img = {.width = 37, .height = 23, .channels = 4};
    img.pixels = malloc((size_t)37 * 23 * 4);
    for (int i = 0; i < 37 * 23; i++) {
        uint8_t *p = img.pixels + 4 * i;
        p[0] = (uint8_t)(i * 7), p[1] = (uint8_t)(i * 13), p[2] = (uint8_t)(i * 3);
        p[3] = i % 3 ? 0 : (uint8_t)(i * 5);
    }
    uint8_t *enc = NULL;
    size_t n = 0;
    char msg[128];
    assert_int_equal(gs_image_encode_webp(&img, 100, &enc, &n, msg, sizeof msg), GS_OK);
    gs_image *back = NULL;
    assert_int_equal(gs_image_load_memory_alpha(enc, n, &back, msg, sizeof msg), GS_OK);
    assert_int_equal(back->channels, 4);
    assert_memory_equal(back->pixels, img.pixels, (size_t)37 * 23 * 4);
    gs_image_free(back);
    free(enc);
    img.channels = 3; /* and RGB */
    assert_int_equal(gs_image_encode_webp(&img, 100, &enc, &n, msg, sizeof msg), GS_OK);
    assert_int_equal(gs_image_load_memory(enc, n, &back, msg, sizeof msg), GS_OK);
    assert_memory_equal(back->pixels, img.pixels, (size_t)37 * 23 * 3);
    gs_image_free(back);
    free(enc);
    free(img.pixels);
}

static void hostile_images_are_refused(void **state)
{
    (void)state;
    gs_image *im = pattern(16, 16, 3);
    uint8_t *png;
    size_t n;
    char msg[256];
    assert_int_equal(gs_image_encode_png(im, NULL, &png, &n, msg, sizeof msg), GS_OK);
    gs_image *out = (gs_image *)0x1;
    /* truncated PNG */
    assert_int_not_equal(gs_image_load_memory(png, n / 2, &out, msg, sizeof msg), GS_OK);
    assert_null(out);
    /* absurd dimensions in the header (IHDR width at byte 16) */
    uint8_t *big = malloc(n);
    memcpy(big, png, n);
    big[16] = 0x7f;
    assert_int_not_equal(gs_image_load_memory(big, n, &out, msg, sizeof msg), GS_OK);
    big[16] = 0;
    big[17] = 0x01; /* 65536+ wide with a correct-looking header */
    assert_int_not_equal(gs_image_load_memory(big, n, &out, msg, sizeof msg), GS_OK);
    /* zero width */
    memcpy(big, png, n);
    memset(big + 16, 0, 4);
    assert_int_not_equal(gs_image_load_memory(big, n, &out, msg, sizeof msg), GS_OK);
    /* flipped bytes in the compressed data */
    memcpy(big, png, n);
    for (size_t i = 60; i < n - 20; i += 7)
        big[i] ^= 0x5a;
    assert_int_not_equal(gs_image_load_memory(big, n, &out, msg, sizeof msg), GS_OK);
    free(big);
    free(png);
    /* text, empty, tiny, unknown formats */
    const char *text = "hello, this is definitely not an image file";
    assert_int_equal(gs_image_load_memory(text, strlen(text), &out, msg, sizeof msg),
                     GS_ERR_UNSUPPORTED);
    assert_non_null(strstr(msg, "PNG, JPEG or WebP"));
    assert_int_equal(gs_image_load_memory("", 0, &out, msg, sizeof msg), GS_ERR_FORMAT);
    assert_int_equal(gs_image_load_memory("\xff\xd8\xff\xe0garbage!!", 13, &out, msg, sizeof msg),
                     GS_ERR_FORMAT);
    assert_int_equal(gs_image_load_memory("RIFF\x10\0\0\0WEBPVP8 junk", 21, &out, msg, sizeof msg),
                     GS_ERR_FORMAT);
    assert_int_equal(gs_image_load("/nonexistent/x.png", &out, msg, sizeof msg), GS_ERR_IO);
    /* encoding refuses nonsense */
    gs_image bad = {0, 0, 3, NULL};
    assert_int_equal(gs_image_encode_png(&bad, NULL, &png, &n, msg, sizeof msg),
                     GS_ERR_INVALID_ARGUMENT);
    gs_image_free(im);
}

static void resize_behaves(void **state)
{
    (void)state;
    gi_error err = {0};
    gs_image *im = pattern(30, 20, 4), *out = NULL;
    assert_int_equal(image_resize_rgb(im, 30, 20, &out, &err), GS_OK);
    for (int p = 0; p < 600; p++)
        assert_memory_equal(out->pixels + 3 * p, im->pixels + 4 * p, 3);
    gs_image_free(out);
    gs_image_free(im);
    /* a flat image stays flat at any size; a gradient stays monotone-ish */
    gs_image *flat = image_new(50, 40, 3);
    memset(flat->pixels, 123, 50 * 40 * 3);
    assert_int_equal(image_resize_rgb(flat, 17, 64, &out, &err), GS_OK);
    for (int i = 0; i < 17 * 64 * 3; i++)
        assert_int_equal(out->pixels[i], 123);
    gs_image_free(out);
    gs_image_free(flat);
}

static void infotext_format_is_a1111s(void **state)
{
    (void)state;
    infotext_fields f = {0};
    f.prompt = "a cat, (oil painting:1.2)";
    f.negative_prompt = "blurry";
    f.sampler = "dpmpp_2m";
    f.scheduler = "karras";
    f.model = "sd-v1-5";
    f.steps = 20;
    f.width = 512;
    f.height = 768;
    f.clip_skip = 2;
    f.batch_size = 1;
    f.cfg_scale = 7.0;
    f.seed = 42;
    char *s = infotext_format(&f);
    assert_string_equal(
        s, "a cat, (oil painting:1.2)\nNegative prompt: blurry\n"
           "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, "
           "Seed: 42, Size: 512x768, Model: sd-v1-5, Clip skip: 2, Version: gesso " GESSO_VERSION);
    gi_free(s);
    f.negative_prompt = "";
    f.sampler = "euler_a";
    f.scheduler = NULL;
    f.clip_skip = 1;
    f.cfg_scale = 6.5;
    f.is_img2img = 1;
    f.strength = 0.6f;
    f.batch_size = 2;
    f.batch_pos = 1;
    f.model = "my, model";
    s = infotext_format(&f);
    assert_string_equal(s,
                        "a cat, (oil painting:1.2)\nSteps: 20, Sampler: Euler a, CFG scale: 6.5, "
                        "Seed: 42, Size: 512x768, Model: \"my, model\", Batch size: 2, Batch pos: "
                        "1, Denoising strength: 0.6, Version: gesso " GESSO_VERSION);
    gi_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(png_round_trip_with_parameters),
        cmocka_unit_test(fixture_pngs_decode_to_golden_pixels),
        cmocka_unit_test(jpeg_and_webp_decode),
        cmocka_unit_test(webp_lossless_keeps_every_pixel),
        cmocka_unit_test(hostile_images_are_refused),
        cmocka_unit_test(resize_behaves),
        cmocka_unit_test(infotext_format_is_a1111s),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
