/*
 * prompt_parse - A1111's parse_prompt_attention over code points (see prompt_parse.h).
 *
 * A1111 scans with one regex whose alternatives are, by first character:
 *   '\' + one of ()[]\   literal character      '\' otherwise   empty text
 *   '(' / '['            open a bracket         ':' \s* [+-]?[.\d]+ \s* ')'   close with weight
 *   ')' / ']'            close a bracket        ':' otherwise   text ":"
 *   anything else up to the next \ ( ) [ ] :    text (split at BREAK)
 * Weights are doubles multiplied in A1111's order, so the float32 weights that
 * reach the encoder are bit-identical to A1111's (e.g. ((x)) = 1.2100000000000002).
 */
#include "text/prompt_parse.h"

#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unictype.h>

#include "common/alloc.h"

#define ROUND_MULT 1.1
#define MAX_WEIGHT_CHARS 64
/* A bracket's weight is applied to every run after its opening one, so the
 * work grows with runs x nesting depth: 16 KB of "(a" is 33 million
 * multiplications (tens of ms), 1 MB of it two minutes. Past this many run
 * weightings a prompt is refused; a hand-written prompt needs thousands. */
#define MAX_WEIGHTINGS ((size_t)1 << 20)

typedef struct pos_stack {
    size_t *v;
    size_t n, cap;
} pos_stack;

static int stack_push(pos_stack *s, size_t x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        size_t *nv = gi_realloc(s->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return 0;
}

static int append_run(prompt_runs *r, const uint32_t *s, size_t len, double w)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        prompt_run *nv = gi_realloc(r->runs, cap * sizeof *nv);
        if (!nv)
            return -1;
        r->runs = nv;
        r->cap = cap;
    }
    size_t off = r->text.n;
    u32vec_push_n(&r->text, s, len);
    if (r->text.oom)
        return -1;
    r->runs[r->n++] = (prompt_run){off, len, w};
    return 0;
}

/* Multiplies the weights of the runs from start on; -1 when that would take
 * *work past MAX_WEIGHTINGS. */
static int multiply_range(prompt_runs *r, size_t start, double m, size_t *work)
{
    *work += r->n - start;
    if (*work > MAX_WEIGHTINGS)
        return -1;
    for (size_t p = start; p < r->n; p++)
        r->runs[p].weight *= m;
    return 0;
}

static int is_break_word(const uint32_t *s, size_t n, size_t q)
{
    static const uint32_t word[5] = {'B', 'R', 'E', 'A', 'K'};
    if (q + 5 > n || memcmp(s + q, word, sizeof word) != 0)
        return 0;
    return (q == 0 || !uni_is_word(s[q - 1])) && (q + 5 == n || !uni_is_word(s[q + 5]));
}

/* Plain text: re.split(r"\s*\bBREAK\b\s*", text), a marker between the parts. */
static int append_text(prompt_runs *r, const uint32_t *s, size_t n)
{
    static const uint32_t marker[5] = {'B', 'R', 'E', 'A', 'K'};
    size_t part = 0;
    for (size_t q = 0; q < n;) {
        if (!is_break_word(s, n, q)) {
            q++;
            continue;
        }
        size_t start = q, end = q + 5;
        while (start > part && uni_is_space(s[start - 1]))
            start--;
        while (end < n && uni_is_space(s[end]))
            end++;
        if (append_run(r, s + part, start - part, 1.0) != 0 || append_run(r, marker, 5, -1.0) != 0)
            return -1;
        part = q = end;
    }
    return append_run(r, s + part, n - part, 1.0);
}

/* ---- weights ---- */

/* Matches ':' \s* ([+-]?[.\d]+) \s* ')' at s[0] == ':'; returns the length
 * matched (0 if none) and copies the number, digits as ASCII, into num
 * (*too_long when it does not fit). */
static size_t match_weight(const uint32_t *s, size_t n, char *num, size_t num_cap, int *too_long)
{
    size_t i = 1, k = 0;
    *too_long = 0;
    while (i < n && uni_is_space(s[i]))
        i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        num[k++] = (char)s[i++];
    size_t digits_start = i;
    for (; i < n; i++) {
        int d = s[i] == '.' ? -2 : uc_decimal_value(s[i]); /* \d is any Nd digit */
        if (d == -1)
            break;
        if (k + 1 < num_cap)
            num[k++] = d == -2 ? '.' : (char)('0' + d);
        else
            *too_long = 1;
    }
    num[k] = '\0';
    if (i == digits_start)
        return 0;
    while (i < n && uni_is_space(s[i]))
        i++;
    if (i >= n || s[i] != ')')
        return 0;
    return i + 1;
}

/* Python's float() of [+-]?[.\d]+: one '.' at most and a digit somewhere.
 * Correctly rounded: exact when the digits fit Clinger's fast path, else strtod
 * with the locale's decimal point (the library must not depend on LC_NUMERIC). */
static int parse_weight(const char *num, double *out)
{
    const char *p = num;
    int neg = *p == '-';
    if (*p == '+' || *p == '-')
        p++;
    uint64_t mant = 0;
    int digits = 0, dots = 0, frac = 0, exact = 1;
    for (const char *q = p; *q; q++) {
        if (*q == '.') {
            dots++;
            continue;
        }
        if (*q < '0' || *q > '9')
            return -1;
        digits++;
        if (mant == 0 && *q == '0' && !dots)
            continue; /* leading zero */
        if (mant > (UINT64_C(1) << 53) / 10)
            exact = 0;
        mant = mant * 10 + (uint64_t)(*q - '0');
        frac += dots;
    }
    if (dots > 1 || digits == 0)
        return -1;
    while (exact && frac > 0 && mant % 10 == 0) {
        mant /= 10;
        frac--;
    }
    double v;
    if (exact && mant <= (UINT64_C(1) << 53) && frac <= 22) {
        static const double pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                         1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                         1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
        v = (double)mant / pow10[frac];
    } else {
        char buf[MAX_WEIGHT_CHARS];
        size_t len = strlen(p);
        if (len >= sizeof buf)
            return -1;
        memcpy(buf, p, len + 1);
        char *dot = strchr(buf, '.');
        const char *lp = localeconv()->decimal_point;
        if (dot && lp && lp[0] && !lp[1])
            *dot = lp[0];
        v = strtod(buf, NULL);
    }
    *out = neg ? -v : v;
    return 0;
}

/* ---- parse ---- */

static void merge_equal_runs(prompt_runs *r)
{
    size_t k = 0;
    for (size_t i = 1; i < r->n; i++) {
        if (r->runs[i].weight == r->runs[k].weight)
            r->runs[k].len += r->runs[i].len; /* texts are contiguous */
        else
            r->runs[++k] = r->runs[i];
    }
    if (r->n > 0)
        r->n = k + 1;
}

static int is_syntax(uint32_t c)
{
    return c == '\\' || c == '(' || c == ')' || c == '[' || c == ']' || c == ':';
}

gs_status prompt_parse(const char *prompt, prompt_runs *out, gi_error *err)
{
    gs_status st = GS_OK;
    u32vec s = {0};
    pos_stack round = {0}, square = {0};
    char num[MAX_WEIGHT_CHARS];
    size_t work = 0; /* run weightings so far */
    memset(out, 0, sizeof *out);
    utf8_decode((const uint8_t *)prompt, strlen(prompt), &s);
    if (s.oom)
        goto oom;

    size_t i = 0;
    while (i < s.n) {
        uint32_t c = s.v[i];
        int fail = 0;
        if (c == '\\') {
            int lit = i + 1 < s.n && (s.v[i + 1] == '(' || s.v[i + 1] == ')' || s.v[i + 1] == '[' ||
                                      s.v[i + 1] == ']' || s.v[i + 1] == '\\');
            fail = append_run(out, s.v + i + 1, (size_t)lit, 1.0);
            i += 1 + (size_t)lit;
        } else if (c == '(' || c == '[') {
            fail = stack_push(c == '(' ? &round : &square, out->n);
            i++;
        } else if (c == ':') {
            int too_long;
            size_t len = match_weight(s.v + i, s.n - i, num, sizeof num, &too_long);
            if (len && round.n) {
                double w;
                if (too_long || parse_weight(num, &w) != 0) {
                    st = gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                                 "prompt: weight \"%s%s\" is not a number", num,
                                 too_long ? "..." : "");
                    goto out;
                }
                fail = multiply_range(out, round.v[--round.n], w, &work);
            } else {
                fail = append_text(out, s.v + i, len ? len : 1);
            }
            i += len ? len : 1;
        } else if (c == ')' && round.n) {
            fail = multiply_range(out, round.v[--round.n], ROUND_MULT, &work);
            i++;
        } else if (c == ']' && square.n) {
            fail = multiply_range(out, square.v[--square.n], 1 / ROUND_MULT, &work);
            i++;
        } else if (c == ')' || c == ']') {
            fail = append_text(out, s.v + i, 1);
            i++;
        } else {
            size_t j = i;
            while (j < s.n && !is_syntax(s.v[j]))
                j++;
            fail = append_text(out, s.v + i, j - i);
            i = j;
        }
        if (fail)
            goto failed;
    }
    for (size_t k = 0; k < round.n; k++)
        if (multiply_range(out, round.v[k], ROUND_MULT, &work) != 0)
            goto failed;
    for (size_t k = 0; k < square.n; k++)
        if (multiply_range(out, square.v[k], 1 / ROUND_MULT, &work) != 0)
            goto failed;
    if (out->n == 0 && append_run(out, NULL, 0, 1.0) != 0)
        goto oom;
    merge_equal_runs(out);
    goto out;
failed:
    if (work > MAX_WEIGHTINGS) {
        st = gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                     "prompt: brackets nest too deeply (their weights would be applied to "
                     "text over %zu times)",
                     MAX_WEIGHTINGS);
        goto out;
    }
oom:
    st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory parsing a prompt");
out:
    if (st != GS_OK)
        prompt_runs_free(out);
    u32vec_free(&s);
    gi_free(round.v);
    gi_free(square.v);
    return st;
}

void prompt_runs_free(prompt_runs *r)
{
    u32vec_free(&r->text);
    gi_free(r->runs);
    memset(r, 0, sizeof *r);
}

int prompt_run_is_break(const prompt_runs *r, size_t i)
{
    static const uint32_t marker[5] = {'B', 'R', 'E', 'A', 'K'};
    const prompt_run *run = &r->runs[i];
    return run->weight == -1.0 && run->len == 5 &&
           memcmp(r->text.v + run->off, marker, sizeof marker) == 0;
}
