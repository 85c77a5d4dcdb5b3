/* safety - rule classes compiled with PCRE2, matched on normalised prompts. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "horde/safety.h"

#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gesso.h"

enum { C_UNDERAGE, C_SEXUAL, C_ADULT, N_CLASSES };
static const char *const class_names[N_CLASSES] = {"underage", "sexual", "adult"};

typedef struct rule {
    pcre2_code *re;
    int cls;
    int line;
} rule;

struct horde_safety {
    rule *r;
    int n, cap;
};

int horde_safety_add(horde_safety *s, const char *text, size_t len, const char *what, char *errmsg,
                     size_t errmsg_size)
{
    int line = 0;
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        line++;
        const char *q = p;
        while (q < eol && (*q == ' ' || *q == '\t'))
            q++;
        const char *next = nl ? nl + 1 : end;
        const char *stop = eol;
        while (stop > q && (stop[-1] == '\r' || stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        if (q == stop || *q == '#') {
            p = next;
            continue;
        }
        size_t wl = strcspn(q, " \t\n");
        int cls = -1;
        for (int c = 0; c < N_CLASSES; c++)
            if (strlen(class_names[c]) == wl && strncmp(q, class_names[c], wl) == 0)
                cls = c;
        const char *pat = q + wl;
        while (pat < stop && (*pat == ' ' || *pat == '\t'))
            pat++;
        if (cls < 0 || pat >= stop) {
            snprintf(errmsg, errmsg_size, "%s:%d: not 'underage|sexual|adult PATTERN'", what, line);
            return -1;
        }
        int err;
        PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, (PCRE2_SIZE)(stop - pat),
                                       PCRE2_CASELESS | PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
        if (!re) {
            PCRE2_UCHAR m[160];
            pcre2_get_error_message(err, m, sizeof m);
            snprintf(errmsg, errmsg_size, "%s:%d: %s at offset %zu", what, line, (char *)m,
                     (size_t)off);
            return -1;
        }
        if (s->n == s->cap) {
            int cap = s->cap ? s->cap * 2 : 16;
            rule *nr = realloc(s->r, (size_t)cap * sizeof *nr);
            if (!nr) {
                pcre2_code_free(re);
                snprintf(errmsg, errmsg_size, "out of memory");
                return -1;
            }
            s->r = nr;
            s->cap = cap;
        }
        s->r[s->n++] = (rule){re, cls, line};
        p = next;
    }
    return 0;
}

horde_safety *horde_safety_load(const char *extra_path, char *errmsg, size_t errmsg_size)
{
    horde_safety *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(errmsg, errmsg_size, "out of memory");
        return NULL;
    }
    size_t len;
    const char *builtin = horde_safety_builtin(&len);
    if (horde_safety_add(s, builtin, len, "safety.rules (built in)", errmsg, errmsg_size) != 0)
        goto fail;
    if (extra_path) {
        FILE *f = fopen(extra_path, "rb");
        if (!f) {
            snprintf(errmsg, errmsg_size, "cannot open '%s': %s", extra_path, strerror(errno));
            goto fail;
        }
        char *buf = NULL;
        size_t n = 0, cap = 0, got;
        char chunk[4096];
        while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
            if (n + got > cap) {
                cap = (n + got) * 2;
                char *nb = realloc(buf, cap);
                if (!nb)
                    break;
                buf = nb;
            }
            memcpy(buf + n, chunk, got);
            n += got;
        }
        fclose(f);
        int rc = horde_safety_add(s, buf ? buf : "", n, extra_path, errmsg, errmsg_size);
        free(buf);
        if (rc != 0)
            goto fail;
    }
    return s;
fail:
    horde_safety_free(s);
    return NULL;
}

void horde_safety_free(horde_safety *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        pcre2_code_free(s->r[i].re);
    free(s->r);
    free(s);
}

/* The prompt as horde-safety's normalize_prompt leaves it (the engine's, which
   the image check uses too), with a space put in front first: its regex wants
   a space before each spelled-out letter, so "l o l i" at the very start
   would stay apart. malloc'd; NULL when out of memory. */
static char *normalised(const char *prompt)
{
    size_t size = strlen(prompt) + 2;
    char *s = malloc(size);
    if (!s)
        return NULL;
    s[0] = ' ';
    memcpy(s + 1, prompt, size - 1);
    if (gs_safety_normalize_prompt(s, s, size) != GS_OK) {
        free(s);
        return NULL;
    }
    return s;
}

/* The first rule of class cls matching text, or -1. */
static int first_match(const horde_safety *s, int cls, const char *text, pcre2_match_data *md)
{
    for (int i = 0; i < s->n; i++)
        if (s->r[i].cls == cls &&
            pcre2_match(s->r[i].re, (PCRE2_SPTR)text, strlen(text), 0, 0, md, NULL) >= 0)
            return i;
    return -1;
}

int horde_safety_check(const horde_safety *s, const char *prompt, const char *negative, char *why,
                       size_t why_size)
{
    char *p = normalised(prompt), *n = normalised(negative ? negative : "");
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int tripped = 1; /* fail closed: a job not checked is not run */
    snprintf(why, why_size, "the prompt could not be checked");
    if (p && n && md) {
        int sex = first_match(s, C_SEXUAL, p, md);
        int young = sex >= 0 ? first_match(s, C_UNDERAGE, p, md) : -1;
        int adult = sex >= 0 && young < 0 ? first_match(s, C_ADULT, n, md) : -1;
        tripped = sex >= 0 && (young >= 0 || adult >= 0);
        if (tripped)
            snprintf(why, why_size, "prompt filter: sexual rule (line %d) with %s rule (line %d)%s",
                     s->r[sex].line, young >= 0 ? "underage" : "adult",
                     s->r[young >= 0 ? young : adult].line,
                     young >= 0 ? "" : " in the negative prompt");
        else
            why[0] = 0;
    }
    pcre2_match_data_free(md);
    free(p);
    free(n);
    return tripped;
}
