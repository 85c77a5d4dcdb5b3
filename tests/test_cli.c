#define _GNU_SOURCE
/*
 * test_cli - the `gesso` binary as a script uses it: every fixture recipe
 * through `gesso generate` against the reference images, the PNG's parameters
 * chunk, batch file naming, and exit codes for bad usage and bad inputs.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gesso.h"
#include "recipes.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gesso-test-cli-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Runs argv (NULL-terminated) with stdout/stderr to files in tmpdir; returns the exit code. */
static int run(char *const argv[])
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char path[512];
        snprintf(path, sizeof path, "%s/stdout", tmpdir);
        if (!freopen(path, "w", stdout))
            _exit(126);
        snprintf(path, sizeof path, "%s/stderr", tmpdir);
        if (!freopen(path, "w", stderr))
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    size_t got = fread(b, 1, (size_t)len, f);
    fclose(f);
    b[got] = '\0';
    if (n)
        *n = got;
    return b;
}

static const char *tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static int max_diff_vs_golden(const char *png, const char *golden_key, size_t offset)
{
    gs_image *im = NULL;
    char msg[256];
    assert_int_equal(gs_image_load(png, &im, msg, sizeof msg), GS_OK);
    size_t n;
    double *ref = golden_f64(golden_key, &n);
    size_t m = (size_t)im->width * im->height * 3;
    assert_true(offset + m <= n);
    int maxd = 0;
    for (size_t i = 0; i < m; i++) {
        int d = abs((int)im->pixels[i] - (int)ref[offset + i]);
        maxd = d > maxd ? d : maxd;
    }
    free(ref);
    gs_image_free(im);
    return maxd;
}

static void recipes_through_the_cli(void **state)
{
    (void)state;
    recipe rs[16];
    int n = recipes_load(rs, 16);
    for (int i = 0; i < n; i++) {
        const recipe *r = &rs[i];
        char seed[32], steps[16], cfg[32], w[16], h[16], cs[16], bs[16], strength[32], out[512];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->seed);
        snprintf(steps, sizeof steps, "%d", r->steps);
        snprintf(cfg, sizeof cfg, "%.17g", r->cfg_scale);
        snprintf(w, sizeof w, "%d", r->width);
        snprintf(h, sizeof h, "%d", r->height);
        snprintf(cs, sizeof cs, "%d", r->clip_skip);
        snprintf(bs, sizeof bs, "%d", r->batch);
        snprintf(strength, sizeof strength, "%.17g", r->strength);
        snprintf(out, sizeof out, "%s/%s.png", tmpdir, r->name);
        char *argv[40];
        int a = 0;
        argv[a++] = GS_GESSO_BIN;
        argv[a++] = "generate";
        char model[512];
        snprintf(model, sizeof model, "%s", fixture_path("tiny-sd15.safetensors"));
        argv[a++] = "--model";
        argv[a++] = model;
        argv[a++] = "--prompt";
        argv[a++] = (char *)r->prompt;
        argv[a++] = "--negative-prompt";
        argv[a++] = (char *)r->negative;
        argv[a++] = "--seed";
        argv[a++] = seed;
        argv[a++] = "--steps";
        argv[a++] = steps;
        argv[a++] = "--cfg-scale";
        argv[a++] = cfg;
        argv[a++] = "--sampler";
        argv[a++] = (char *)r->sampler;
        if (r->scheduler[0]) {
            argv[a++] = "--scheduler";
            argv[a++] = (char *)r->scheduler;
        }
        argv[a++] = "--width";
        argv[a++] = w;
        argv[a++] = "--height";
        argv[a++] = h;
        argv[a++] = "--clip-skip";
        argv[a++] = cs;
        argv[a++] = "--batch-size";
        argv[a++] = bs;
        char init[512];
        if (r->init_image[0]) {
            snprintf(init, sizeof init, "%s", fixture_path(r->init_image));
            argv[a++] = "--init-image";
            argv[a++] = init;
            argv[a++] = "--strength";
            argv[a++] = strength;
        }
        /* every other recipe with f16 weights: an f16 file's f32 images too */
        const char *precision = i % 2 ? "f16" : "f32";
        argv[a++] = "--precision";
        argv[a++] = (char *)precision;
        argv[a++] = "--output";
        argv[a++] = out;
        argv[a] = NULL;
        int rc = run(argv);
        if (rc != 0) {
            char *err = slurp(tmp("stderr"), NULL);
            fprintf(stderr, "%s: exit %d: %s\n", r->name, rc, err);
            free(err);
        }
        assert_int_equal(rc, 0);
        char key[128];
        snprintf(key, sizeof key, "pipe.%s.image_u8", r->name);
        size_t item = (size_t)r->width * r->height * 3;
        for (int b = 0; b < r->batch; b++) {
            char file[600];
            if (r->batch == 1)
                snprintf(file, sizeof file, "%s", out);
            else
                snprintf(file, sizeof file, "%s/%s-%d.png", tmpdir, r->name, b);
            int d = max_diff_vs_golden(file, key, b * item);
            printf("cli %-24s %s item %d max |diff| %d\n", r->name, precision, b, d);
            assert_true(d <= 1); /* f32 within 1 level, as the README says (measured 0-1) */
            /* stdout lists the file; the PNG carries A1111's parameters */
            char *so = slurp(tmp("stdout"), NULL);
            assert_non_null(strstr(so, file));
            free(so);
            size_t len = 0;
            char *png = slurp(file, &len);
            assert_non_null(png);
            assert_non_null(memmem(png, len, "parameters", 10));
            assert_non_null(memmem(png, len, "Seed: ", 6));
            free(png);
        }
    }
}

static void exit_codes(void **state)
{
    (void)state;
    char *model = (char *)fixture_path("tiny-sd15.safetensors");
    char m[512];
    snprintf(m, sizeof m, "%s", model);
    {
        char *argv[] = {GS_GESSO_BIN, NULL};
        assert_int_equal(run(argv), 2);
    }
    {
        char *argv[] = {GS_GESSO_BIN, "generate", "--help", NULL};
        assert_int_equal(run(argv), 0);
    }
    {
        char *argv[] = {GS_GESSO_BIN, "frobnicate", NULL};
        assert_int_equal(run(argv), 2);
    }
    {
        char *argv[] = {GS_GESSO_BIN, "generate", "-m", m,    "-p", "x",  "--sampler",
                        "euler_b",    "-W",       "64", "-H", "64", "-o", (char *)tmp("a.png"),
                        NULL};
        assert_int_equal(run(argv), 2);
        char *err = slurp(tmp("stderr"), NULL);
        assert_non_null(strstr(err, "euler_b"));
        free(err);
    }
    {
        char *argv[] = {GS_GESSO_BIN, "generate",           "-m", m, "-p", "x", "--seed", "12abc",
                        "-o",         (char *)tmp("a.png"), NULL};
        assert_int_equal(run(argv), 2);
    }
    /* seeds: 0..2^64-1 or -1, nothing wrapped ("-5" is not 2^64-5) */
    static const char *const bad_seeds[] = {
        "18446744073709551616", "-2", "-5", " 5", "+5", "1.5", ""};
    for (size_t i = 0; i < sizeof bad_seeds / sizeof bad_seeds[0]; i++) {
        char *argv[] = {
            GS_GESSO_BIN, "generate",           "-m", m, "-p", "x", "--seed", (char *)bad_seeds[i],
            "-o",         (char *)tmp("a.png"), NULL};
        assert_int_equal(run(argv), 2);
        char *err = slurp(tmp("stderr"), NULL);
        assert_non_null(strstr(err, "--seed"));
        free(err);
    }
    {
        char *argv[] = {GS_GESSO_BIN, "generate",           "-m", m, "-p", "x", "--steps", "-3",
                        "-o",         (char *)tmp("a.png"), NULL};
        assert_int_equal(run(argv), 2);
    }
    {
        char *argv[] = {GS_GESSO_BIN, "generate", "-m", m,    "-p", "x",
                        "-W",         "100",      "-H", "64", "-o", (char *)tmp("a.png"),
                        NULL};
        assert_int_equal(run(argv), 2);
    }
    {
        char *argv[] = {GS_GESSO_BIN, "generate", "-m", "/nonexistent.safetensors",
                        "-p",         "x",        "-o", (char *)tmp("a.png"),
                        NULL};
        assert_int_equal(run(argv), 3);
    }
    {
        FILE *f = fopen(tmp("bad.png"), "wb");
        fputs("this is not an image", f);
        fclose(f);
        char *argv[] = {GS_GESSO_BIN,
                        "generate",
                        "-m",
                        m,
                        "-p",
                        "x",
                        "-W",
                        "64",
                        "-H",
                        "64",
                        "--init-image",
                        (char *)tmp("bad.png"),
                        "-o",
                        (char *)tmp("a.png"),
                        NULL};
        assert_int_equal(run(argv), 3);
        char *err = slurp(tmp("stderr"), NULL);
        assert_non_null(strstr(err, "init image"));
        free(err);
    }
    {
        char *argv[] = {GS_GESSO_BIN, "generate", "-m", m,    "-p", "x",
                        "-W",         "64",       "-H", "64", "-o", "/nonexistent-dir/a.png",
                        NULL};
        assert_int_equal(run(argv), 4);
    }
    {
        char *argv[] = {GS_GESSO_BIN, "generate",           "-m", m, "-p", "x",
                        "-o",         (char *)tmp("a.jpg"), NULL};
        assert_int_equal(run(argv), 2);
    }
    {
        /* no seed: a random one is printed and used */
        char *argv[] = {GS_GESSO_BIN, "generate", "-m", m,         "-p", "x",  "-W",
                        "64",         "-H",       "64", "--steps", "1",  "-o", (char *)tmp("r.png"),
                        NULL};
        assert_int_equal(run(argv), 0);
        char *err = slurp(tmp("stderr"), NULL);
        assert_non_null(strstr(err, "seed "));
        free(err);
    }
    {
        /* -1 asks for a random one as A1111 does: printed, and the one in the PNG */
        char *argv[] = {
            GS_GESSO_BIN, "generate", "-m",      m,   "-p",     "x",  "-W", "64",
            "-H",         "64",       "--steps", "1", "--seed", "-1", "-o", (char *)tmp("r.png"),
            NULL};
        assert_int_equal(run(argv), 0);
        char *err = slurp(tmp("stderr"), NULL), *at = strstr(err, "gesso: seed ");
        assert_non_null(at);
        char want[64];
        snprintf(want, sizeof want, "Seed: %.*s,", (int)strspn(at + 12, "0123456789"), at + 12);
        size_t n = 0;
        char *png = slurp(tmp("r.png"), &n);
        assert_non_null(memmem(png, n, want, strlen(want)));
        free(png);
        free(err);
    }
}

/* `gesso models inspect`: the facts of a checkpoint, or why it is not one. */
static void models_inspect(void **state)
{
    (void)state;
    char m[512];
    snprintf(m, sizeof m, "%s", fixture_path("tiny-sd15.safetensors"));
    {
        char *argv[] = {GS_GESSO_BIN, "models", "inspect", m, NULL};
        assert_int_equal(run(argv), 0);
        char *out = slurp(tmp("stdout"), NULL);
        assert_non_null(strstr(out, "name             tiny-sd15\n"));
        assert_non_null(strstr(out, "family           sd1\n"));
        assert_non_null(strstr(out, "weights          f16\n"));
        assert_non_null(strstr(out, "unet channels    32\n"));
        assert_non_null(strstr(out, "text width       96\n"));
        assert_non_null(strstr(out, "latent channels  4\n"));
        assert_non_null(strstr(out, "file size        38177966 bytes\n"));
        assert_non_null(strstr(out, "weights in RAM   "));
        free(out);
    }
    {
        FILE *f = fopen(tmp("notes.safetensors"), "wb");
        assert_non_null(f);
        fputs("this is not a checkpoint", f);
        fclose(f);
        char *argv[] = {GS_GESSO_BIN, "models", "inspect", (char *)tmp("notes.safetensors"), NULL};
        assert_int_equal(run(argv), 3);
        char *err = slurp(tmp("stderr"), NULL);
        assert_non_null(strstr(err, "notes.safetensors"));
        assert_non_null(strstr(err, "header"));
        free(err);
    }
    {
        char *argv[] = {GS_GESSO_BIN, "models", "inspect", "/nonexistent.safetensors", NULL};
        assert_int_equal(run(argv), 3);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(recipes_through_the_cli),
        cmocka_unit_test(exit_codes),
        cmocka_unit_test(models_inspect),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
