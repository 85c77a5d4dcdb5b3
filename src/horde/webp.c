/* webp - libwebp's lossless encoder; "exact" keeps RGB under any alpha. */
#include "horde/webp.h"

#include <stdlib.h>
#include <string.h>
#include <webp/encode.h>

int horde_webp_encode(const gs_image *img, unsigned char **out, size_t *len)
{
    WebPConfig cfg;
    WebPPicture pic;
    if (!WebPConfigInit(&cfg) || !WebPPictureInit(&pic))
        return -1;
    cfg.lossless = 1;
    cfg.exact = 1;
    cfg.method = 2; /* small images, quick: level 2 of 0..6 trades a little size for time */
    pic.use_argb = 1;
    pic.width = img->width;
    pic.height = img->height;
    int ok = img->channels == 4 ? WebPPictureImportRGBA(&pic, img->pixels, img->width * 4)
                                : WebPPictureImportRGB(&pic, img->pixels, img->width * 3);
    WebPMemoryWriter w;
    WebPMemoryWriterInit(&w);
    pic.writer = WebPMemoryWrite;
    pic.custom_ptr = &w;
    ok = ok && WebPEncode(&cfg, &pic);
    WebPPictureFree(&pic);
    if (!ok) {
        WebPMemoryWriterClear(&w);
        return -1;
    }
    *out = w.mem;
    *len = w.size;
    return 0;
}
