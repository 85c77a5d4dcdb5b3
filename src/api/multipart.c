/*
 * multipart - a multipart/form-data reader over a buffered body. The body is
 * a run of parts, each opened by CRLF "--" boundary, its header lines, a
 * blank line and its bytes; "--" boundary "--" closes the run. A part's bytes
 * end where the next boundary line starts, so a part is found by one search
 * and the whole body is read in one pass.
 */
#include "api/multipart.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_BOUNDARY 70 /* RFC 2046 */

static int fail(char *msg, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
    return -1;
}

/* Where needle[0..n) first occurs in hay[0..len), or NULL (memmem is GNU only). */
static const char *find(const char *hay, size_t len, const char *needle, size_t n)
{
    for (const char *p = hay, *end = hay + len; (size_t)(end - p) >= n; p++) {
        p = memchr(p, needle[0], (size_t)(end - p) - n + 1);
        if (!p)
            return NULL;
        if (memcmp(p, needle, n) == 0)
            return p;
    }
    return NULL;
}

/* The value of parameter key in a header value's "; key=value" list, quoted
   or not, into out; 0 when found and it fits. */
static int header_param(const char *v, size_t vlen, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    const char *end = v + vlen;
    for (const char *p = v; p < end;) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *q = semi ? semi + 1 : end;
        while (q < end && (*q == ' ' || *q == '\t'))
            q++;
        if ((size_t)(end - q) > klen && strncasecmp(q, key, klen) == 0 && q[klen] == '=') {
            q += klen + 1;
            size_t k = 0;
            if (q < end && *q == '"') {
                for (q++; q < end && *q != '"'; q++) {
                    if (*q == '\\' && q + 1 < end)
                        q++;
                    if (k + 1 >= size)
                        return -1;
                    out[k++] = *q;
                }
                if (q == end)
                    return -1; /* an unclosed quote */
            } else {
                for (; q < end && *q != ';' && *q != ' ' && *q != '\t'; q++) {
                    if (k + 1 >= size)
                        return -1;
                    out[k++] = *q;
                }
            }
            out[k] = '\0';
            return 0;
        }
        if (!semi)
            break;
        p = semi + 1;
    }
    return -1;
}

/* Reads one part's header block [h, end) into part. */
static int read_headers(const char *h, const char *end, multipart_part *part, char *msg,
                        size_t size)
{
    int disposition = 0;
    while (h < end) {
        const char *eol = h;
        while (eol + 1 < end && !(eol[0] == '\r' && eol[1] == '\n'))
            eol++;
        if (eol + 1 >= end)
            eol = end;
        const char *colon = memchr(h, ':', (size_t)(eol - h));
        if (!colon)
            return fail(msg, size, "a part has a header line without ':'");
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        size_t name_len = (size_t)(colon - h), vlen = (size_t)(eol - v);
        if (name_len == 19 && strncasecmp(h, "Content-Disposition", 19) == 0) {
            if (vlen < 9 || strncasecmp(v, "form-data", 9) != 0)
                return fail(msg, size, "a part's Content-Disposition is not form-data");
            if (header_param(v, vlen, "name", part->name, sizeof part->name) != 0 || !part->name[0])
                return fail(msg, size, "a part has no field name (or one over %zu bytes)",
                            sizeof part->name - 1);
            part->has_filename =
                header_param(v, vlen, "filename", part->filename, sizeof part->filename) == 0;
            disposition = 1;
        } else if (name_len == 12 && strncasecmp(h, "Content-Type", 12) == 0) {
            snprintf(part->type, sizeof part->type, "%.*s", (int)vlen, v);
        }
        h = eol + 2;
    }
    if (!disposition)
        return fail(msg, size, "a part has no Content-Disposition: form-data header");
    return 0;
}

/* The boundary of a multipart/form-data Content-Type into out ("--" prefixed). */
static int read_boundary(const char *content_type, char *out, size_t size, char *msg,
                         size_t msg_size)
{
    const char *want = "multipart/form-data";
    if (!content_type || strncasecmp(content_type, want, strlen(want)) != 0)
        return fail(msg, msg_size, "the body must be multipart/form-data");
    char b[MAX_BOUNDARY + 2];
    if (header_param(content_type, strlen(content_type), "boundary", b, sizeof b) != 0 || !b[0] ||
        strlen(b) > MAX_BOUNDARY)
        return fail(msg, msg_size,
                    "the multipart/form-data Content-Type has no boundary of 1..70 characters");
    snprintf(out, size, "--%s", b);
    return 0;
}

int multipart_parse(const char *content_type, const char *body, size_t len, multipart_part *parts,
                    int max, int *n, char *msg, size_t msg_size)
{
    char delim[MAX_BOUNDARY + 8] = "\r\n";
    *n = 0;
    if (read_boundary(content_type, delim + 2, sizeof delim - 2, msg, msg_size) != 0)
        return -1;
    size_t dlen = strlen(delim);
    const char *end = body + len, *p;
    /* the first boundary may open the body; anything before it is preamble */
    if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0)
        p = body + dlen - 2;
    else if ((p = find(body, len, delim, dlen)))
        p += dlen;
    else
        return fail(msg, msg_size, "the body holds no part: its boundary never appears");
    for (;;) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return 0; /* the closing boundary; what follows is epilogue */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return fail(msg, msg_size, "the body ends inside a boundary line (truncated)");
        p += 2;
        if (*n == max)
            return fail(msg, msg_size, "the body has more than %d parts", max);
        multipart_part *part = &parts[*n];
        memset(part, 0, sizeof *part);
        const char *head_end;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
            head_end = p; /* no header lines */
        } else {
            size_t span = (size_t)(end - p);
            head_end =
                find(p, span < MULTIPART_MAX_HEADERS ? span : MULTIPART_MAX_HEADERS, "\r\n\r\n", 4);
            if (!head_end)
                return fail(msg, msg_size,
                            "a part's headers do not end with a blank line within %d bytes",
                            MULTIPART_MAX_HEADERS);
        }
        if (read_headers(p, head_end, part, msg, msg_size) != 0)
            return -1;
        const char *data = head_end + (head_end == p ? 2 : 4);
        const char *next = find(data, (size_t)(end - data), delim, dlen);
        if (!next)
            return fail(msg, msg_size, "the part '%s' has no closing boundary (truncated)",
                        part->name);
        part->data = data;
        part->len = (size_t)(next - data);
        (*n)++;
        p = next + dlen;
    }
}

const multipart_part *multipart_find(const multipart_part *parts, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(parts[i].name, name) == 0)
            return &parts[i];
    return NULL;
}
