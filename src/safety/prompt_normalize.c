/* prompt_normalize - horde-safety's normalize_prompt (see the header). */
#include "safety/prompt_normalize.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

static int is_word(unsigned char c)
{
    return isalnum(c) || c == '_' || c >= 0x80;
}

static int is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* \((.*?):\d+\.\d+\) -> the group, leftmost first, in place. */
static void drop_weights(char *s)
{
    char *out = s;
    for (char *p = s; *p;) {
        char *end = NULL, *colon = NULL;
        if (*p == '(')
            for (char *q = p + 1; *q && *q != '\n' && !end; q++) {
                if (*q != ':')
                    continue;
                char *d = q + 1;
                while (isdigit((unsigned char)*d))
                    d++;
                if (d == q + 1 || *d != '.')
                    continue;
                char *f = d + 1;
                while (isdigit((unsigned char)*f))
                    f++;
                if (f > d + 1 && *f == ')') {
                    colon = q;
                    end = f + 1;
                }
            }
        if (end) {
            size_t n = (size_t)(colon - (p + 1));
            memmove(out, p + 1, n);
            out += n;
            p = end;
        } else {
            *out++ = *p++;
        }
    }
    *out = '\0';
}

/* s with every occurrence of from replaced by to (shorter); in place. */
static void replace_all(char *s, const char *from, const char *to)
{
    size_t nf = strlen(from), nt = strlen(to);
    char *out = s;
    for (char *p = s; *p;) {
        if (strncmp(p, from, nf) == 0) {
            memmove(out, to, nt);
            out += nt;
            p += nf;
        } else {
            *out++ = *p++;
        }
    }
    *out = '\0';
}

/* (\s(\w)){3,}\b: runs of three or more spaced-out single characters ("a d u
   l t") joined, each run found in the text before any joining, then replaced
   everywhere as str.replace does. */
static int join_spaced_letters(char *s)
{
    char *orig = gi_malloc(strlen(s) + 1);
    if (!orig)
        return -1;
    memcpy(orig, s, strlen(s) + 1);
    size_t n = strlen(orig);
    for (size_t i = 0; i < n;) {
        size_t reps = 0, j = i, best = 0;
        while (j + 1 < n && is_space((unsigned char)orig[j]) &&
               is_word((unsigned char)orig[j + 1])) {
            j += 2;
            reps++;
            if (reps >= 3 && (j >= n || !is_word((unsigned char)orig[j])))
                best = j;
        }
        if (!best) {
            i++;
            continue;
        }
        char run[256], joined[256];
        size_t a = i, rn = 0, jn = 0;
        while (a < best && is_space((unsigned char)orig[a]))
            a++; /* the match stripped */
        for (size_t k = a; k < best && rn + 1 < sizeof run; k++) {
            run[rn++] = orig[k];
            if (!is_space((unsigned char)orig[k]))
                joined[jn++] = orig[k];
        }
        run[rn] = joined[jn] = '\0';
        replace_all(s, run, joined);
        i = best;
    }
    gi_free(orig);
    return 0;
}

int prompt_normalize(char *s)
{
    drop_weights(s);
    for (char *p = s; *p; p++)
        if (!is_word((unsigned char)*p) && !is_space((unsigned char)*p))
            *p = ' ';
        else if (*p == '_')
            *p = ' ';
    if (join_spaced_letters(s) != 0)
        return -1;
    char *out = s;
    int in_space = 0;
    for (char *p = s; *p; p++) { /* \s+ -> one space */
        int sp = is_space((unsigned char)*p);
        if (!sp || !in_space)
            *out++ = sp ? ' ' : *p;
        in_space = sp;
    }
    *out = '\0';
    return 0;
}
