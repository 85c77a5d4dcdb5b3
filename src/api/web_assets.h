/*
 * web_assets - the web page's files (web/), built into the binary so the
 * page needs no install path, no CDN and no build step at run time.
 */
#ifndef GS_WEB_ASSETS_H
#define GS_WEB_ASSETS_H

#include <stddef.h>

typedef struct web_asset {
    const char *path; /* "/", "/app.js", "/app.css" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t size;
} web_asset;

/* The asset served at path into *out: 0, or -1 when there is none. */
int web_asset_find(const char *path, web_asset *out);

#endif
