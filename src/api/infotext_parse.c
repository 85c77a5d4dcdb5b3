/*
 * infotext_parse - A1111's reading of an infotext (the PNG "parameters"
 * text), for PNG Info: text from an uploaded image, so from anyone.
 */
#include "api/infotext_parse.h"

#include <stdio.h>
#include <string.h>

/* "k: v, k: \"quoted, v\"" pairs of an infotext's last line into out. */
static void parse_settings(const char *line, json_t *out)
{
    const char *p = line;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *colon = strstr(p, ": ");
        if (!colon)
            break;
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)(colon - p < 63 ? colon - p : 63), p);
        p = colon + 2;
        char value[2048];
        size_t k = 0;
        if (*p == '"') { /* A1111 quotes values holding ',', ':' or '"' */
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                if (k + 1 < sizeof value)
                    value[k++] = *p;
            }
            p += *p == '"';
        } else {
            for (; *p && *p != ','; p++)
                if (k + 1 < sizeof value)
                    value[k++] = *p;
        }
        value[k] = '\0';
        int w, h;
        char end;
        if (strcmp(key, "Size") == 0 && sscanf(value, "%dx%d%c", &w, &h, &end) == 2) {
            char side[16];
            snprintf(side, sizeof side, "%d", w);
            json_object_set_new(out, "Size-1", json_string(side));
            snprintf(side, sizeof side, "%d", h);
            json_object_set_new(out, "Size-2", json_string(side));
        } else {
            json_object_set_new(out, key, json_string(value));
        }
    }
}

json_t *infotext_parse(const char *text)
{
    json_t *out = json_object();
    const char *last = strrchr(text, '\n');
    const char *settings = last ? last + 1 : NULL;
    if (!settings || !strstr(settings, "Steps: ")) { /* no settings line: all prompt */
        json_object_set_new(out, "Prompt", json_string(text));
        json_object_set_new(out, "Negative prompt", json_string(""));
        return out;
    }
    const char *neg = strstr(text, "\nNegative prompt: ");
    size_t prompt_len = (size_t)((neg && neg < last ? neg : last) - text);
    json_object_set_new(out, "Prompt", json_stringn(text, prompt_len));
    if (neg && neg < last) {
        const char *n0 = neg + strlen("\nNegative prompt: ");
        json_object_set_new(out, "Negative prompt", json_stringn(n0, (size_t)(last - n0)));
    } else {
        json_object_set_new(out, "Negative prompt", json_string(""));
    }
    parse_settings(settings, out);
    return out;
}
