/* api_keys - loading the key file and matching bearer tokens (or HTTP Basic passwords). */
#include "api/api_keys.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "job/base64.h"

#define KEY_MIN 16
#define KEY_MAX API_KEY_MAX

int api_key_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

/* One NAME=VALUE option of a key's line; -1 with why filled when it is wrong. */
static int parse_option(const char *opt, api_key *k, char *why, size_t why_size)
{
    char *end;
    if (strcmp(opt, "admin") == 0) {
        k->admin = 1;
    } else if (strncmp(opt, "max_active=", 11) == 0) {
        long v = strtol(opt + 11, &end, 10);
        if (*end || end == opt + 11 || v < 0 || v > 1000000) {
            snprintf(why, why_size, "max_active must be a number in 0..1000000");
            return -1;
        }
        k->max_active = (int)v;
    } else if (strncmp(opt, "max_cost=", 9) == 0) {
        /* a digit first: strtod would take "inf", "nan", "-1" and " 5" */
        int digit = opt[9] >= '0' && opt[9] <= '9';
        double v = digit ? strtod(opt + 9, &end) : 0;
        if (!digit || *end || v > 1e12) {
            snprintf(why, why_size, "max_cost must be a number of megapixel-steps in 0..1e12");
            return -1;
        }
        k->max_cost = v;
    } else {
        snprintf(why, why_size, "unknown option '%.40s' (max_active=N, max_cost=MPS or admin)",
                 opt);
        return -1;
    }
    return 0;
}

static int parse_line(char *line, api_key *k, char *why, size_t why_size)
{
    char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
    char *name = strtok_r(NULL, " \t\r\n", &save);
    size_t n = strlen(tok);
    if (n < KEY_MIN || n > KEY_MAX) {
        snprintf(why, why_size, "a key must be %d..%d characters", KEY_MIN, KEY_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (!isgraph((unsigned char)tok[i])) {
            snprintf(why, why_size, "a key must be printable characters without spaces");
            return -1;
        }
    if (!name || !api_key_name_ok(name)) {
        snprintf(why, why_size, "a key needs a NAME of 1..63 letters, digits, '.', '_' or '-'");
        return -1;
    }
    memset(k, 0, sizeof *k);
    snprintf(k->name, sizeof k->name, "%s", name);
    for (char *opt; (opt = strtok_r(NULL, " \t\r\n", &save));)
        if (parse_option(opt, k, why, why_size) != 0)
            return -1;
    k->key = strdup(tok);
    k->key_len = n;
    if (!k->key) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    return 0;
}

int api_keys_load(const char *path, api_keys *out, char *msg, size_t msg_size)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(msg, msg_size, "cannot open the API key file '%s'", path);
        return -1;
    }
    char line[1024], why[160];
    int lineno = 0, cap = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
            continue;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(why, sizeof why, "the line is too long");
            goto bad;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 8;
            api_key *grown = realloc(out->keys, (size_t)cap * sizeof *grown);
            if (!grown) {
                snprintf(why, sizeof why, "out of memory");
                goto bad;
            }
            out->keys = grown;
        }
        if (parse_line(p, &out->keys[out->n], why, sizeof why) != 0)
            goto bad;
        /* a name owns jobs: two keys under one name would see each other's */
        for (int i = 0; i < out->n; i++)
            if (strcmp(out->keys[i].key, out->keys[out->n].key) == 0 ||
                strcmp(out->keys[i].name, out->keys[out->n].name) == 0) {
                int same_key = strcmp(out->keys[i].key, out->keys[out->n].key) == 0;
                free(out->keys[out->n].key);
                snprintf(why, sizeof why, "%s",
                         same_key ? "the key is listed twice" : "the name is given to two keys");
                goto bad;
            }
        out->n++;
    }
    fclose(f);
    if (out->n == 0) {
        snprintf(msg, msg_size, "the API key file '%s' holds no keys", path);
        api_keys_free(out);
        return -1;
    }
    return 0;
bad:
    snprintf(msg, msg_size, "%s:%d: %s", path, lineno, why);
    fclose(f);
    api_keys_free(out);
    return -1;
}

void api_keys_free(api_keys *k)
{
    for (int i = 0; i < k->n; i++)
        free(k->keys[i].key);
    free(k->keys);
    memset(k, 0, sizeof *k);
}

/* Equal-length comparison whose time does not depend on the first difference. */
static int same_secret(const char *a, size_t an, const char *b, size_t bn)
{
    unsigned diff = an != bn;
    size_t n = an < bn ? an : bn;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
    return diff == 0;
}

long api_keys_token(const char *authorization, char *buf, size_t size)
{
    int bearer = strncasecmp(authorization, "Bearer ", 7) == 0;
    if (!bearer && strncasecmp(authorization, "Basic ", 6) != 0)
        return -1;
    const char *tok = authorization + (bearer ? 7 : 6);
    while (*tok == ' ')
        tok++;
    size_t n = strlen(tok);
    while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
        n--;
    if (bearer) {
        if (n >= size)
            return -1;
        memcpy(buf, tok, n);
        return (long)n;
    }
    char text[4 * KEY_MAX]; /* base64 of a user name, ':' and a key */
    if (n >= sizeof text)
        return -1;
    memcpy(text, tok, n);
    text[n] = '\0';
    size_t len = 0;
    unsigned char *plain = base64_decode(text, sizeof text, &len);
    char *colon = plain ? memchr(plain, ':', len) : NULL;
    size_t got = colon ? len - (size_t)(colon + 1 - (char *)plain) : 0;
    long ret = colon && got < size ? (long)got : -1;
    if (ret >= 0)
        memcpy(buf, colon + 1, got);
    free(plain);
    return ret;
}

const api_key *api_keys_match(const api_keys *k, const char *authorization)
{
    char tok[KEY_MAX + 1];
    long n = authorization ? api_keys_token(authorization, tok, sizeof tok) : -1;
    if (n < 0)
        return NULL;
    const api_key *found = NULL;
    for (int i = 0; i < k->n; i++)
        if (same_secret(k->keys[i].key, k->keys[i].key_len, tok, (size_t)n) && !found)
            found = &k->keys[i];
    return found;
}
