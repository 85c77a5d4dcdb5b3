/* censor - reGen's replacement rule, and the replacement images. */
#include "horde/censor.h"

#include <stdlib.h>
#include <string.h>

#include "gesso.h"

horde_censor horde_censor_decide(int nsfw, int csam, int sfw_worker, int censor_request)
{
    if (csam)
        return HORDE_CENSOR_CSAM;
    if (sfw_worker && nsfw)
        return HORDE_CENSOR_SFW_WORKER;
    if (censor_request && nsfw)
        return HORDE_CENSOR_SFW_REQUEST;
    return HORDE_CENSOR_NONE;
}

int horde_censor_image(horde_censor why, int w, int h, unsigned char **webp, size_t *len)
{
    static const unsigned char colour[][3] = {{0, 0, 0}, {0, 0, 0}, {64, 64, 64}, {128, 128, 128}};
    *webp = NULL;
    if (w < 1 || h < 1 || w > 8192 || h > 8192)
        return -1;
    gs_image img = {w, h, 3, malloc((size_t)w * h * 3)};
    if (!img.pixels)
        return -1;
    for (size_t i = 0; i < (size_t)w * h; i++)
        memcpy(img.pixels + i * 3, colour[why], 3);
    char msg[160];
    uint8_t *out = NULL;
    int rc = gs_image_encode_webp(&img, 100, &out, len, msg, sizeof msg) == GS_OK ? 0 : -1;
    free(img.pixels);
    *webp = out;
    return rc;
}

int horde_censor_job(horde_images *im, int required, int sfw_worker, int censor_request, int w,
                     int h, horde_checked *out)
{
    memset(out, 0, sizeof *out);
    out->checked = im->checked;
    out->state = HORDE_OK;
    if (!im->checked)
        return required ? -1 : 0;
    for (int i = 0; i < im->n; i++) {
        horde_censor why =
            horde_censor_decide(im->nsfw[i], im->csam[i], sfw_worker, censor_request);
        if (why != HORDE_CENSOR_NONE) {
            unsigned char *webp;
            size_t len;
            if (horde_censor_image(why, w, h, &webp, &len) != 0)
                return -1;
            free(im->webp[i]);
            im->webp[i] = webp;
            im->len[i] = len;
        }
        if (im->csam[i]) {
            out->type[i] = "censorship";
            out->value[i] = "csam";
            out->state = HORDE_CSAM;
            out->censored = 1;
        } else if (im->nsfw[i] && why == HORDE_CENSOR_NONE) {
            out->type[i] = "information"; /* marked, not censored */
            out->value[i] = "nsfw";
        } else if (im->nsfw[i]) {
            out->type[i] = "censorship";
            out->value[i] = "nsfw";
            out->censored = 1;
            if (out->state != HORDE_CSAM)
                out->state = HORDE_CENSORED;
        }
    }
    return 0;
}
