/*
 * test_http_cases - HTTP behaviour as data: every .cases file in tests/http is
 * run against its own real `gesso serve` on 127.0.0.1 (see tests/http/README.md
 * for the format). Each case sends one request with curl and checks the status
 * and a JSON subset of the reply.
 */
#include "testutil.h"

#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[128];

/* ---- JSON subset ---- */

/* True when every member want names is in got with the same value. */
static int json_subset(const json_t *want, const json_t *got)
{
    if (json_is_object(want)) {
        if (!json_is_object(got))
            return 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)want, k, v)
        {
            if (!json_subset(v, json_object_get(got, k)))
                return 0;
        }
        return 1;
    }
    if (json_is_array(want)) {
        if (!json_is_array(got) || json_array_size(got) != json_array_size(want))
            return 0;
        for (size_t i = 0; i < json_array_size(want); i++)
            if (!json_subset(json_array_get(want, i), json_array_get(got, i)))
                return 0;
        return 1;
    }
    return got && json_equal(want, got);
}

/* ---- one file ---- */

typedef struct text {
    char *p;
    size_t n, cap;
} text;

static void text_add(text *t, const char *s, size_t n)
{
    if (t->n + n + 1 > t->cap) {
        t->cap = (t->n + n + 1) * 2;
        t->p = realloc(t->p, t->cap);
        assert_non_null(t->p);
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
    t->p[t->n] = '\0';
}

typedef struct http_case {
    char name[200];
    char method[16], path[512];
    char headers[8][256];
    int n_headers;
    text body;
    int crlf; /* the body's lines are joined by CRLF (multipart bodies) */
    int status;
    text expect;
} http_case;

/* Quotes s for a shell command inside '...'. */
static void shell_quote(const char *s, char *out, size_t size)
{
    size_t k = 0;
    for (; *s && k + 5 < size; s++) {
        if (*s == '\'') {
            memcpy(out + k, "'\\''", 4);
            k += 4;
        } else {
            out[k++] = *s;
        }
    }
    out[k] = '\0';
}

/* Runs one case; returns 0 when it passed, printing why when not. */
static int run_case(const char *base, const http_case *c)
{
    char body_file[256], resp[256], head_file[256], cmd[8192], q[600];
    snprintf(body_file, sizeof body_file, "%s/case-body", dir);
    snprintf(resp, sizeof resp, "%s/case-resp", dir);
    snprintf(head_file, sizeof head_file, "%s/case-headers", dir);
    FILE *f = fopen(body_file, "wb");
    assert_non_null(f);
    if (c->body.n)
        fwrite(c->body.p, 1, c->body.n, f);
    fclose(f);
    /* curl waits for a body after "-X HEAD": --head is the way to send one */
    int k = snprintf(cmd, sizeof cmd, "curl -s -m 30 -o '%s' -D '%s' -w '%%{http_code}' %s%s", resp,
                     head_file, strcmp(c->method, "HEAD") == 0 ? "--head" : "-X ",
                     strcmp(c->method, "HEAD") == 0 ? "" : c->method);
    for (int i = 0; i < c->n_headers; i++) {
        shell_quote(c->headers[i], q, sizeof q);
        k += snprintf(cmd + k, sizeof cmd - (size_t)k, " -H '%s'", q);
    }
    int typed = 0;
    for (int i = 0; i < c->n_headers; i++)
        typed |= strncasecmp(c->headers[i], "Content-Type:", 13) == 0;
    if (c->body.n)
        k += snprintf(cmd + k, sizeof cmd - (size_t)k, "%s --data-binary @'%s'",
                      typed ? "" : " -H 'Content-Type: application/json'", body_file);
    shell_quote(c->path, q, sizeof q);
    snprintf(cmd + k, sizeof cmd - (size_t)k, " '%s%s'", base, q);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char code[16] = "";
    if (!fgets(code, sizeof code, p))
        code[0] = '\0';
    pclose(p);
    int status = (int)strtol(code, NULL, 10);
    char *got_text = NULL;
    size_t n = 0;
    f = fopen(resp, "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        n = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        got_text = calloc(1, n + 1);
        if (fread(got_text, 1, n, f) != n)
            got_text[0] = '\0';
        fclose(f);
    }
    int ok = status == c->status;
    if (ok && strncmp(c->expect.p ? c->expect.p : "", "~ ", 2) == 0) {
        /* "~ TEXT": the reply's headers or body contain TEXT */
        char want[512], headers[4096] = "";
        snprintf(want, sizeof want, "%.*s", (int)strcspn(c->expect.p + 2, "\n"), c->expect.p + 2);
        FILE *hf = fopen(head_file, "rb");
        if (hf) {
            size_t hn = fread(headers, 1, sizeof headers - 1, hf);
            headers[hn] = '\0';
            fclose(hf);
        }
        ok = (got_text && strstr(got_text, want)) || strstr(headers, want);
    } else if (ok && c->expect.n && strspn(c->expect.p, " \t\r\n") < c->expect.n) {
        json_error_t e;
        json_t *want = json_loads(c->expect.p, 0, &e);
        if (!want) {
            fprintf(stderr, "case '%s': expected body is not JSON: %s\n", c->name, e.text);
            ok = 0;
        }
        json_t *got = got_text ? json_loads(got_text, 0, NULL) : NULL;
        ok = ok && json_subset(want, got);
        json_decref(want);
        json_decref(got);
    }
    if (!ok)
        fprintf(stderr, "case '%s': %s %s\n  want %d %s\n  got  %d %s\n", c->name, c->method,
                c->path, c->status, c->expect.n ? c->expect.p : "", status,
                got_text ? got_text : "");
    free(got_text);
    return ok ? 0 : -1;
}

static void case_reset(http_case *c)
{
    free(c->body.p);
    free(c->expect.p);
    memset(c, 0, sizeof *c);
}

/* Reads the cases of path, runs its server, runs every case; returns failures. */
static int run_file(const char *path, int *n_cases)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char keys[256], line[1 << 16];
    snprintf(keys, sizeof keys, "%s/keys", dir);
    unlink(keys);
    static char flags[1024];
    const char *extra[40];
    int n_extra = 0, have_keys = 0;
    long cases_at = 0;
    /* the directives come first */
    while ((cases_at = ftell(f)), fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "=== ", 4) == 0)
            break;
        if (strncmp(line, "@serve ", 7) == 0) {
            FORMAT_OR_FAIL(flags, "%s", line + 7);
            char *save = NULL;
            static char paths[4][1024]; /* @fixtures/X: the tests' fixture X */
            int n_paths = 0;
            for (char *w = strtok_r(flags, " ", &save); w && n_extra < 36;
                 w = strtok_r(NULL, " ", &save)) {
                if (strncmp(w, "@fixtures/", 10) == 0 && n_paths < 4) {
                    snprintf(paths[n_paths], sizeof paths[0], "%s/fixtures/%s", GS_TESTS_DIR,
                             w + 10);
                    w = paths[n_paths++];
                }
                extra[n_extra++] = w;
            }
        } else if (strncmp(line, "@key ", 5) == 0) {
            FILE *kf = fopen(keys, "a");
            assert_non_null(kf);
            fprintf(kf, "%s\n", line + 5);
            fclose(kf);
            have_keys = 1;
        }
    }
    if (have_keys) {
        extra[n_extra++] = "--api-keys";
        extra[n_extra++] = keys;
    }
    extra[n_extra] = NULL;
    char data[300];
    snprintf(data, sizeof data, "%s/data", dir);
    assert_int_equal(test_remove_tree(data), 0);
    char base[64];
    pid_t server = test_serve_start(base, dir, extra);
    fseek(f, cases_at, SEEK_SET);
    http_case c = {0};
    enum { NONE, REQUEST, HEADERS, BODY, EXPECT } at = NONE;
    int failures = 0;
    for (;;) {
        int eof = !fgets(line, sizeof line, f);
        if (eof || strncmp(line, "=== ", 4) == 0) {
            if (at == EXPECT) {
                failures += run_case(base, &c) != 0;
                (*n_cases)++;
            } else if (at != NONE) {
                fprintf(stderr, "%s: case '%s' has no --- line\n", path, c.name);
                failures++;
            }
            if (eof)
                break;
            case_reset(&c);
            line[strcspn(line, "\n")] = '\0';
            snprintf(c.name, sizeof c.name, "%.199s", line + 4);
            at = REQUEST;
            continue;
        }
        if (at == NONE || (at != BODY && at != EXPECT && line[0] == '#'))
            continue;
        if (at == REQUEST) {
            if (sscanf(line, "%15s %511s", c.method, c.path) != 2)
                continue; /* blank lines before the request line */
            at = HEADERS;
        } else if (at == HEADERS || at == BODY) {
            if (strncmp(line, "--- ", 4) == 0) {
                c.status = (int)strtol(line + 4, NULL, 10);
                at = EXPECT;
            } else if (at == HEADERS) {
                line[strcspn(line, "\r\n")] = '\0';
                if (!line[0])
                    at = BODY;
                else if (c.n_headers < 8)
                    snprintf(c.headers[c.n_headers++], sizeof c.headers[0], "%.255s", line);
            } else if (strncmp(line, "@crlf", 5) == 0 && !c.body.n) {
                c.crlf = 1;
            } else if (strncmp(line, "@repeat ", 8) == 0) {
                long n = strtol(line + 8, NULL, 10);
                char ch = line[strcspn(line + 8, " ") + 9];
                for (long i = 0; i < n; i++)
                    text_add(&c.body, &ch, 1);
            } else {
                size_t len = strlen(line);
                if (len && line[len - 1] == '\n')
                    len--; /* the body is its lines, joined by newlines */
                if (c.body.n)
                    text_add(&c.body, c.crlf ? "\r\n" : "\n", c.crlf ? 2 : 1);
                text_add(&c.body, line, len);
            }
        } else if (at == EXPECT) {
            text_add(&c.expect, line, strlen(line));
        }
    }
    case_reset(&c);
    fclose(f);
    assert_int_equal(test_serve_stop(server), 0);
    return failures;
}

static void every_case_file(void **state)
{
    (void)state;
    char http_dir[512];
    snprintf(http_dir, sizeof http_dir, "%s/http", GS_TESTS_DIR);
    DIR *d = opendir(http_dir);
    assert_non_null(d);
    struct dirent *de;
    int files = 0, cases = 0, failures = 0;
    const char *only = getenv("GS_HTTP_CASES"); /* one file's name, to run it alone */
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 7 || strcmp(de->d_name + n - 6, ".cases") != 0 ||
            (only && strcmp(de->d_name, only) != 0))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", http_dir, de->d_name);
        int before = cases;
        int f = run_file(path, &cases);
        printf("%s: %d cases, %d failed\n", de->d_name, cases - before, f);
        failures += f;
        files++;
    }
    closedir(d);
    assert_true(files >= 1);
    assert_int_equal(failures, 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/gesso-http-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    return test_link_tiny_model(dir);
}

static int teardown(void **state)
{
    (void)state;
    return test_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_case_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
