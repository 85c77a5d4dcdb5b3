/*
 * outpaint - gs_outpaint_canvas: the padded canvas and border mask that turn
 * outpainting into inpainting (the inpaint fixture's outpaint_right recipe:
 * gray 127, the mask reaching `overlap` pixels into the original).
 */
#include <string.h>

#include "gesso.h"
#include "image/image_util.h"

gs_status gs_outpaint_canvas(const gs_image *init, int left, int right, int top, int bottom,
                             int overlap, gs_image **canvas, gs_image **mask)
{
    if (!canvas || !mask)
        return GS_ERR_INVALID_ARGUMENT;
    *canvas = *mask = NULL;
    if (!init || !init->pixels || (init->channels != 3 && init->channels != 4) || left < 0 ||
        right < 0 || top < 0 || bottom < 0 || overlap < 0 || left + right + top + bottom == 0)
        return GS_ERR_INVALID_ARGUMENT;
    long W = (long)init->width + left + right, H = (long)init->height + top + bottom;
    if (W > IMAGE_MAX_SIDE || H > IMAGE_MAX_SIDE)
        return GS_ERR_INVALID_ARGUMENT;
    gs_image *c = image_new((int)W, (int)H, 3), *m = image_new((int)W, (int)H, 3);
    if (!c || !m) {
        gs_image_free(c);
        gs_image_free(m);
        return GS_ERR_NO_MEMORY;
    }
    memset(c->pixels, 127, (size_t)W * H * 3);
    memset(m->pixels, 255, (size_t)W * H * 3);
    for (int y = 0; y < init->height; y++)
        for (int x = 0; x < init->width; x++)
            memcpy(c->pixels + ((size_t)(y + top) * W + x + left) * 3,
                   init->pixels + ((size_t)y * init->width + x) * init->channels, 3);
    /* black over the kept part of init: shrunk by overlap on the padded sides */
    int x0 = left + (left ? overlap : 0), x1 = left + init->width - (right ? overlap : 0);
    int y0 = top + (top ? overlap : 0), y1 = top + init->height - (bottom ? overlap : 0);
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            memset(m->pixels + ((size_t)y * W + x) * 3, 0, 3);
    *canvas = c;
    *mask = m;
    return GS_OK;
}
