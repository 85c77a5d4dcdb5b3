/* testutil - shared helpers for the tests. */
#include "testutil.h"

#include <dirent.h>

#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support/json_u64.h"

static st_file *golden_file;
static char golden_name[256] = "tiny-sd15-golden.safetensors";

void golden_select(const char *fixture)
{
    if (golden_file) {
        st_close(golden_file);
        golden_file = NULL;
    }
    snprintf(golden_name, sizeof golden_name, "%s", fixture);
}

const char *fixture_path(const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", GS_FIXTURES, name);
    return buf;
}

st_file *golden(void)
{
    if (!golden_file) {
        gi_error err = {0};
        if (st_open(fixture_path(golden_name), &golden_file, &err) != GS_OK) {
            fprintf(stderr, "cannot open golden file: %s\n", err.msg);
            abort();
        }
    }
    return golden_file;
}

void golden_ids77(const char *name, int32_t ids[77])
{
    size_t n;
    double *d = golden_f64(name, &n);
    assert_int_equal(n, 77);
    for (int t = 0; t < 77; t++)
        ids[t] = (int32_t)d[t];
    free(d);
}

double *golden_f64(const char *name, size_t *numel)
{
    const st_tensor *t = st_find(golden(), name);
    if (!t) {
        fprintf(stderr, "golden tensor '%s' missing\n", name);
        abort();
    }
    double *d = malloc((size_t)t->numel * sizeof *d + 8);
    gi_error err = {0};
    if (st_to_f64(t, d, &err) != GS_OK) {
        fprintf(stderr, "golden '%s': %s\n", name, err.msg);
        abort();
    }
    if (numel)
        *numel = (size_t)t->numel;
    return d;
}

float *golden_f32(const char *name, size_t *numel)
{
    size_t n;
    double *d = golden_f64(name, &n);
    float *f = malloc(n * sizeof *f + 4);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)d[i];
    free(d);
    if (numel)
        *numel = n;
    return f;
}

static int images_max_diff(const char *name, const gs_image *const *ims, int count, int *differing,
                           double *mean)
{
    char key[128];
    snprintf(key, sizeof key, "pipe.%s.image_u8", name);
    size_t n;
    double *ref = golden_f64(key, &n);
    int maxd = 0, diff = 0;
    double sum = 0;
    size_t off = 0;
    for (int b = 0; b < count; b++) {
        size_t m = (size_t)ims[b]->width * ims[b]->height * 3;
        assert_true(off + m <= n);
        for (size_t i = 0; i < m; i++) {
            int d = abs((int)ims[b]->pixels[i] - (int)ref[off + i]);
            maxd = d > maxd ? d : maxd;
            diff += d != 0;
            sum += d;
        }
        off += m;
    }
    assert_int_equal(off, n);
    free(ref);
    if (differing)
        *differing = diff;
    if (mean)
        *mean = n ? sum / (double)n : 0;
    return maxd;
}

int golden_result_max_diff(const char *name, const gs_result *res, int *differing)
{
    const gs_image *ims[64];
    int count = gs_result_count(res);
    assert_true(count <= 64);
    for (int b = 0; b < count; b++)
        ims[b] = gs_result_image(res, b);
    return images_max_diff(name, ims, count, differing, NULL);
}

int golden_result_diff(const char *name, const gs_result *res, double *mean)
{
    const gs_image *ims[64];
    int count = gs_result_count(res);
    assert_true(count <= 64);
    for (int b = 0; b < count; b++)
        ims[b] = gs_result_image(res, b);
    return images_max_diff(name, ims, count, NULL, mean);
}

int golden_image_max_diff(const char *name, const gs_image *im)
{
    return images_max_diff(name, &im, 1, NULL, NULL);
}

double rel_l2_f32_f64(const float *a, const double *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

double max_abs_diff_f32_f64(const float *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || isnan(d))
            m = d;
    }
    return m;
}

void nchw_to_nhwc_f64(const double *src, double *dst, int n, int c, int h, int w)
{
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    dst[(((size_t)b * h + y) * w + x) * c + ch] =
                        src[(((size_t)b * c + ch) * h + y) * w + x];
}

/* ---- a server under test ---- */

void test_note_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("SKIPPED: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

int test_remove_tree(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    return system(cmd) == 0 ? 0 : -1;
}

void test_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int test_http(const char *base, const char *dir, const char *method, const char *path,
              const char *data_file, char **body)
{
    return test_http_auth(base, dir, method, path, data_file, NULL, body);
}

int test_http_auth(const char *base, const char *dir, const char *method, const char *path,
                   const char *data_file, const char *authorization, char **body)
{
    char out[512], cmd[2048], hdr[320] = "";
    snprintf(out, sizeof out, "%s/resp", dir);
    if (authorization)
        snprintf(hdr, sizeof hdr, "-H 'Authorization: %s' ", authorization);
    /* A1111's and OpenAI's calls answer when their job ends: a sanitized build
       on a loaded 2-core machine can take a minute for a tiny job */
    snprintf(cmd, sizeof cmd, "curl -s -m 180 -o '%s' -w '%%{http_code}' %s-X %s %s%s%s '%s%s'",
             out, hdr, method, data_file ? "--data-binary @'" : "", data_file ? data_file : "",
             data_file ? "'" : "", base, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char code[16] = "";
    if (!fgets(code, sizeof code, p))
        code[0] = '\0';
    pclose(p);
    if (body) {
        FILE *f = fopen(out, "rb");
        *body = NULL;
        if (f) {
            fseek(f, 0, SEEK_END);
            long n = ftell(f);
            fseek(f, 0, SEEK_SET);
            *body = calloc(1, (size_t)n + 1);
            if (fread(*body, 1, (size_t)n, f) != (size_t)n)
                (*body)[0] = '\0';
            fclose(f);
        }
    }
    return (int)strtol(code, NULL, 10);
}

/* Servers still running when the test process ends: a failed cmocka assertion
   jumps past the test's own test_serve_stop, and a server left behind would keep
   ctest waiting on the output pipe it inherited until the test's timeout. */
static pid_t live_servers[16];

static void stop_live_servers(void)
{
    for (size_t i = 0; i < sizeof live_servers / sizeof live_servers[0]; i++)
        if (live_servers[i] > 0) {
            kill(live_servers[i], SIGTERM); /* its workers go with it */
            waitpid(live_servers[i], NULL, 0);
            live_servers[i] = 0;
        }
}

static void track_server(pid_t pid, int add)
{
    static int registered;
    if (!registered && atexit(stop_live_servers) == 0)
        registered = 1;
    for (size_t i = 0; i < sizeof live_servers / sizeof live_servers[0]; i++)
        if (live_servers[i] == (add ? 0 : pid)) {
            live_servers[i] = add ? pid : 0;
            return;
        }
}

pid_t test_serve_start(char *base, const char *dir, const char *const *extra)
{
    char data[512], models[512], port_file[512];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(models, sizeof models, "%s/models", dir);
    snprintf(port_file, sizeof port_file, "%s/port", dir);
    unlink(port_file);
    const char *argv[64] = {
        GS_GESSO_BIN, "serve",    "--listen", "127.0.0.1:0", "--port-file", port_file,   "--data",
        data,         "--models", models,     "--workers",   "1",           "--threads", "2"};
    int n = 14;
    for (int i = 0; extra && extra[i] && n < 63; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char log[600];
        snprintf(log, sizeof log, "%s/server.log", dir);
        if (!freopen(log, "a", stderr) || dup2(fileno(stderr), STDOUT_FILENO) < 0)
            _exit(126);
        execv(GS_GESSO_BIN, (char *const *)argv);
        _exit(127);
    }
    track_server(pid, 1);
    /* the port file appears once the server listens: up to a minute for
       sanitized builds on a busy machine */
    for (int64_t end = test_mono_ms() + 60000; test_mono_ms() < end;) {
        FILE *f = fopen(port_file, "r");
        int port = 0;
        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (port > 0) {
            snprintf(base, 64, "http://127.0.0.1:%d", port);
            if (test_http(base, dir, "GET", "/healthz", NULL, NULL) == 200)
                return pid;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            fail_msg("the server exited at start (see %s/server.log)", dir);
        test_sleep_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("the server did not come up");
    return -1;
}

int test_children(pid_t parent, pid_t *out, int max)
{
    /* every thread's children: a process whose threads fork (gesso horde's
       generator) has its children listed under the forking thread */
    char path[300], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/task", (int)parent);
    DIR *d = opendir(path);
    int n = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%.20s/children", (int)parent, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(buf, sizeof buf, f)) {
            char *p = buf, *end;
            long v;
            while (n < max && (v = strtol(p, &end, 10)) > 0 && end != p) {
                out[n++] = (pid_t)v;
                p = end;
            }
        }
        fclose(f);
    }
    closedir(d);
    return n;
}

/* True when pid is gone or a zombie (exited, not yet reaped by whoever adopted it). */
static int exited(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    int gone = 0;
    if (fgets(buf, sizeof buf, f)) {
        const char *paren = strrchr(buf, ')');
        gone = paren && (paren[2] == 'Z' || paren[2] == 'X');
    }
    fclose(f);
    return gone;
}

int test_wait_gone(pid_t pid, int timeout_ms)
{
    for (int64_t end = test_mono_ms() + timeout_ms; test_mono_ms() < end;) {
        if (exited(pid))
            return 0;
        test_sleep_ms(10);
    }
    return exited(pid) ? 0 : -1;
}

int test_serve_stop(pid_t server)
{
    int status;
    kill(server, SIGTERM);
    pid_t got = waitpid(server, &status, 0);
    track_server(server, 0);
    if (got != server || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

char *test_submit(const char *base, const char *dir, const char *authorization, const char *json)
{
    char req[512], *body;
    snprintf(req, sizeof req, "%s/req.json", dir);
    FILE *f = fopen(req, "wb");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
    int code = test_http_auth(base, dir, "POST", "/v1/jobs", req, authorization, &body);
    if (code != 202)
        fprintf(stderr, "submit: %d %s\n", code, body ? body : "");
    assert_int_equal(code, 202);
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "queued");
    char *id = strdup(json_string_value(json_object_get(j, "id")));
    json_decref(j);
    return id;
}

json_t *test_get_job(const char *base, const char *dir, const char *authorization, const char *id)
{
    char path[128], *body;
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    assert_int_equal(test_http_auth(base, dir, "GET", path, NULL, authorization, &body), 200);
    json_t *j = json_u64_loadb(body, strlen(body), 0, NULL, NULL, NULL);
    free(body);
    assert_non_null(j);
    return j;
}

int64_t test_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

json_t *test_wait_job(const char *base, const char *dir, const char *authorization, const char *id,
                      int timeout_ms)
{
    for (int64_t end = test_mono_ms() + timeout_ms; test_mono_ms() < end;) {
        char path[160], *body;
        long left = (long)((end - test_mono_ms()) / 1000);
        snprintf(path, sizeof path, "/v1/jobs/%s?wait=%ld", id, left < 15 ? left : 15);
        assert_int_equal(test_http_auth(base, dir, "GET", path, NULL, authorization, &body), 200);
        json_t *j = json_u64_loadb(body, strlen(body), 0, NULL, NULL, NULL);
        free(body);
        assert_non_null(j);
        const char *st = json_string_value(json_object_get(j, "status"));
        if (strcmp(st, "queued") != 0 && strcmp(st, "running") != 0)
            return j;
        json_decref(j);
    }
    fail_msg("job %s did not finish", id);
    return NULL;
}

int test_link_tiny_model(const char *dir)
{
    char cmd[600];
    int n =
        snprintf(cmd, sizeof cmd, "mkdir -p %s/models && ln -s %s %s/models/tiny-sd15.safetensors",
                 dir, fixture_path("tiny-sd15.safetensors"), dir);
    if (n < 0 || (size_t)n >= sizeof cmd)
        return -1;
    return system(cmd) == 0 ? 0 : -1;
}

void test_wait_step(const char *base, const char *dir, const char *authorization, const char *id,
                    int timeout_ms)
{
    for (int64_t end = test_mono_ms() + timeout_ms; test_mono_ms() < end; test_sleep_ms(20)) {
        json_t *j = test_get_job(base, dir, authorization, id);
        long step = json_integer_value(json_object_get(json_object_get(j, "progress"), "step"));
        json_decref(j);
        if (step > 0)
            return;
    }
    fail_msg("job %s did not start", id);
}
