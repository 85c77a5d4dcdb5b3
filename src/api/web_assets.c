/*
 * web_assets - web/index.html, app.js and app.css assembled in with .incbin,
 * as the engine embeds the CLIP vocabulary; CMake gives the folder and makes
 * this object depend on the files, so an edited page is rebuilt in.
 */
#include "api/web_assets.h"

#include <string.h>

#ifndef GESSO_WEB_DIR
#error "GESSO_WEB_DIR must name the web/ folder (set by CMake)"
#endif
#ifndef __ELF__
#error "web_assets.c embeds files with ELF section directives; port it for this platform"
#endif

#define EMBED(label, file)                                                                         \
    __asm__(".section .rodata.web_file_" #label ",\"a\",@progbits\n"                               \
            ".globl web_file_" #label "_begin\n"                                                   \
            ".hidden web_file_" #label "_begin\n"                                                  \
            "web_file_" #label "_begin:\n"                                                         \
            ".incbin \"" GESSO_WEB_DIR "/" file "\"\n"                                             \
            ".globl web_file_" #label "_end\n"                                                     \
            ".hidden web_file_" #label "_end\n"                                                    \
            "web_file_" #label "_end:\n"                                                           \
            ".previous\n");                                                                        \
    extern const unsigned char web_file_##label##_begin[], web_file_##label##_end[]

EMBED(index, "index.html");
EMBED(app_js, "app.js");
EMBED(app_css, "app.css");

int web_asset_find(const char *path, web_asset *out)
{
    const struct {
        const char *path, *type;
        const unsigned char *begin, *end;
    } table[] = {
        {"/", "text/html; charset=utf-8", web_file_index_begin, web_file_index_end},
        {"/app.js", "text/javascript; charset=utf-8", web_file_app_js_begin, web_file_app_js_end},
        {"/app.css", "text/css; charset=utf-8", web_file_app_css_begin, web_file_app_css_end},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(path, table[i].path) == 0) {
            *out = (web_asset){table[i].path, table[i].type, table[i].begin,
                               (size_t)(table[i].end - table[i].begin)};
            return 0;
        }
    return -1;
}
