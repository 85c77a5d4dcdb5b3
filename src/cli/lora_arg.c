/* lora_arg - --lora FILE:W / FILE:TE:UNET, the weights read from the right. */
#include "cli/lora_arg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* s[0..n) as a finite number. */
static int number(const char *s, size_t n, float *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (*end || !isfinite(v) || fabs(v) > 1e6)
        return -1;
    *out = (float)v;
    return 0;
}

/* The last ':' in s[0..n), or NULL. */
static const char *last_colon(const char *s, size_t n)
{
    while (n-- > 0)
        if (s[n] == ':')
            return s + n;
    return NULL;
}

int arg_lora(const char *s, int index, gs_lora *out)
{
    static char paths[CLI_MAX_LORAS][4096];
    if (index < 0 || index >= CLI_MAX_LORAS) {
        fprintf(stderr, "gesso: --lora: at most %d\n", CLI_MAX_LORAS);
        return -1;
    }
    size_t n = strlen(s);
    float w1, w2;
    out->te_weight = out->unet_weight = 1.0f;
    const char *c2 = last_colon(s, n), *c1 = NULL;
    if (c2 && number(c2 + 1, n - (size_t)(c2 - s) - 1, &w2) == 0) {
        n = (size_t)(c2 - s);
        out->te_weight = out->unet_weight = w2;
        c1 = last_colon(s, n);
        if (c1 && number(c1 + 1, n - (size_t)(c1 - s) - 1, &w1) == 0) {
            n = (size_t)(c1 - s);
            out->te_weight = w1;
        }
    } else if (c2 && c2[1] && strchr("0123456789-+.", c2[1])) {
        fprintf(stderr, "gesso: --lora: '%s' is not FILE:WEIGHT or FILE:TE:UNET\n", s);
        return -1;
    }
    if (n == 0 || n >= sizeof paths[0]) {
        fprintf(stderr, "gesso: --lora: '%s': no file, or a path too long\n", s);
        return -1;
    }
    memcpy(paths[index], s, n);
    paths[index][n] = '\0';
    out->path = paths[index];
    return 0;
}

int arg_on_off(const char *name, const char *s, int *out)
{
    if (strcmp(s, "on") == 0 || strcmp(s, "off") == 0) {
        *out = s[1] == 'n';
        return 0;
    }
    fprintf(stderr, "gesso: %s: '%s' is not on or off\n", name, s);
    return -1;
}
