/*
 * test_keys - API keys in the job store, end to end: `gesso keys` adds and
 * revokes them while `gesso serve` front ends run, and real HTTP over
 * loopback shows each change on every front end within a few seconds, with
 * no restart. Two front ends on one real PostgreSQL (tests/pg_server.c), as a
 * fleet's would be; one on a SQLite store, with an --api-keys FILE beside it
 * (the file's key wins a name both have). Per-key max-active and admin hold
 * as for file keys; the database's password is never printed, nor a key
 * anywhere but add's stdout. And a front end's copy of the keys by itself:
 * when it is read again, and what it does while the store cannot be read.
 */
#include "testutil.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/api_keys_store.h"
#include "job/base64.h"
#include "pg_server.h"
#include "queue/store_keys.h"

#define PASSWORD "s3cret-db-pw"
/* how long a change may take to reach a front end: its copy is read each
   second; the rest is slack for a sanitized build on a busy machine */
#define CHANGE_MS 5000

static pg_server pg;

typedef struct front {
    char dir[128], base[64];
    pid_t pid;
} front;

static void front_start(front *f, const char *const *extra)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/gesso-keys-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(test_link_tiny_model(f->dir), 0);
    f->pid = test_serve_start(f->base, f->dir, extra);
}

static void front_stop(front *f, int remove)
{
    assert_int_equal(test_serve_stop(f->pid), 0);
    if (remove)
        assert_int_equal(test_remove_tree(f->dir), 0);
}

/* A whole file (static buffer; "" when missing). */
static const char *slurp(const char *path)
{
    static char buf[1 << 18];
    buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f)
        return buf;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Runs `gesso keys ARGS...` (NULL-terminated) with stdout and stderr into
   dir/out and dir/err; its exit status. */
static int keys_cli(const char *dir, const char *const *args)
{
    const char *argv[16] = {GS_GESSO_BIN, "keys"};
    int n = 2;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char out[256], err[256];
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(err, sizeof err, "%s/err", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(126);
        execv(GS_GESSO_BIN, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* `gesso keys add` and the key it printed: stdout must be the key and a
   newline, nothing else. */
static void add_key(const char *dir, const char *const *args, char key[80])
{
    int rc = keys_cli(dir, args);
    char path[256];
    snprintf(path, sizeof path, "%s/err", dir);
    if (rc != 0)
        fail_msg("gesso keys add: exit %d: %s", rc, slurp(path));
    snprintf(path, sizeof path, "%s/out", dir);
    const char *out = slurp(path);
    assert_int_equal(strlen(out), 69);
    assert_int_equal(strncmp(out, "gsk_", 4), 0);
    assert_int_equal(out[68], '\n');
    assert_int_equal(strspn(out + 4, "0123456789abcdef"), 64);
    snprintf(key, 80, "%.68s", out);
}

/* Polls path with authorization until it answers want, for at most
   CHANGE_MS; the milliseconds it took. */
static int wait_for(const front *f, const char *path, const char *authorization, int want)
{
    int64_t t0 = test_mono_ms();
    int code = 0;
    while ((code = test_http_auth(f->base, f->dir, "GET", path, NULL, authorization, NULL)) !=
           want) {
        if (test_mono_ms() - t0 > CHANGE_MS)
            fail_msg("%s %s answered %d, not %d, for %d ms", f->base, path, code, want, CHANGE_MS);
        test_sleep_ms(50);
    }
    return (int)(test_mono_ms() - t0);
}

static int code_of(const front *f, const char *method, const char *path, const char *data,
                   const char *authorization)
{
    return test_http_auth(f->base, f->dir, method, path, data, authorization, NULL);
}

static void bearer(char *out, size_t n, const char *key)
{
    snprintf(out, n, "Bearer %s", key);
}

static int setup(void **state)
{
    (void)state;
    if (pg_server_start(&pg, 0) != 0) {
        fprintf(stderr, "no PostgreSQL server for the test: %s\n", pg.why);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pg_server_stop(&pg);
    return 0;
}

#define JOB "{\"model\":\"tiny-sd15\",\"steps\":2,\"width\":64,\"height\":64}"

/* Two front ends, no workers, one database whose URL carries a password
   (the test server trusts local connections, so any password is let in). */
static void keys_reach_every_front_end(void **state)
{
    (void)state;
    char url[600], plain[512];
    assert_int_equal(pg_server_new_db(&pg, plain, sizeof plain), 0);
    snprintf(url, sizeof url, "%s&password=" PASSWORD, plain);
    front a, b;
    const char *const extra[] = {"--store", url, "--workers", "0", NULL};
    front_start(&a, extra);
    front_start(&b, extra);
    /* no key in the store yet: keys are off */
    assert_int_equal(code_of(&a, "GET", "/v1/jobs", NULL, NULL), 200);
    assert_int_equal(code_of(&b, "GET", "/v1/jobs", NULL, NULL), 200);

    char alice[80], ops[80], auth_a[100], auth_o[100];
    add_key(a.dir, (const char *const[]){"add", "alice", "--max-active", "1", "--store", url, NULL},
            alice);
    bearer(auth_a, sizeof auth_a, alice);
    int ta = wait_for(&a, "/v1/jobs", auth_a, 200), tb = wait_for(&b, "/v1/jobs", auth_a, 200);
    fprintf(stderr, "alice's key worked on A after %d ms, on B after %d ms more\n", ta, tb);
    /* keys are on now, on both: no key, or a wrong one, is refused */
    wait_for(&a, "/v1/jobs", NULL, 401);
    wait_for(&b, "/v1/jobs", NULL, 401);
    char wrong[100];
    snprintf(wrong, sizeof wrong, "Bearer %.67s%c", alice, alice[67] == '0' ? '1' : '0');
    assert_int_equal(code_of(&b, "GET", "/v1/jobs", NULL, wrong), 401);
    /* HTTP Basic with the key as password, as A1111's clients send it */
    char userpass[100], basic[200];
    snprintf(userpass, sizeof userpass, "anyone:%s", alice);
    char *b64 = base64_encode((const unsigned char *)userpass, strlen(userpass));
    snprintf(basic, sizeof basic, "Basic %s", b64);
    free(b64);
    assert_int_equal(code_of(&b, "GET", "/v1/jobs", NULL, basic), 200);

    /* admin: /metrics is refused to alice, served to ops */
    assert_int_equal(code_of(&a, "GET", "/metrics", NULL, auth_a), 403);
    add_key(b.dir, (const char *const[]){"add", "ops", "--admin", "--store", url, NULL}, ops);
    bearer(auth_o, sizeof auth_o, ops);
    wait_for(&a, "/metrics", auth_o, 200);
    wait_for(&b, "/metrics", auth_o, 200);

    /* max-active 1, counted in the shared store: a job queued through A
       (no workers: it stays queued) leaves alice no room on B */
    char req[256];
    snprintf(req, sizeof req, "%s/job.json", a.dir);
    FILE *f = fopen(req, "w");
    assert_non_null(f);
    fputs(JOB, f);
    fclose(f);
    char *id = test_submit(a.base, a.dir, auth_a, JOB);
    assert_int_equal(code_of(&b, "POST", "/v1/jobs", req, auth_a), 429);
    assert_int_equal(code_of(&b, "POST", "/v1/jobs", req, auth_o), 202);
    /* the job's owner is the key's name: ops (admin) sees it, as it would a file key's */
    char path[300];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    assert_int_equal(code_of(&b, "GET", path, NULL, auth_o), 200);
    assert_int_equal(code_of(&b, "GET", path, NULL, auth_a), 200);
    free(id);

    /* list: names and limits, never a key, never the password */
    assert_int_equal(keys_cli(a.dir, (const char *const[]){"list", "--store", url, NULL}), 0);
    snprintf(path, sizeof path, "%s/out", a.dir);
    const char *list = slurp(path);
    assert_non_null(strstr(list, "alice"));
    assert_non_null(strstr(list, "ops"));
    assert_null(strstr(list, alice + 4));
    assert_null(strstr(list, ops + 4));
    assert_null(strstr(list, PASSWORD));

    /* revoked through the CLI: refused on both, ops unaffected */
    assert_int_equal(
        keys_cli(b.dir, (const char *const[]){"revoke", "alice", "--store", url, NULL}), 0);
    ta = wait_for(&a, "/v1/jobs", auth_a, 401);
    tb = wait_for(&b, "/v1/jobs", auth_a, 401);
    fprintf(stderr, "alice's key was refused on A after %d ms, on B after %d ms more\n", ta, tb);
    assert_int_equal(code_of(&a, "GET", "/v1/jobs", NULL, basic), 401);
    assert_int_equal(code_of(&a, "GET", "/v1/jobs", NULL, auth_o), 200);
    assert_int_equal(code_of(&b, "GET", "/v1/jobs", NULL, auth_o), 200);
    /* the name stays taken */
    assert_int_equal(keys_cli(a.dir, (const char *const[]){"add", "alice", "--store", url, NULL}),
                     1);
    snprintf(path, sizeof path, "%s/out", a.dir);
    assert_string_equal(slurp(path), "");

    /* a store that is not there: the message names it, not its password */
    char bad[600];
    snprintf(bad, sizeof bad, "postgresql://127.0.0.1:1/x?password=%s&connect_timeout=2", PASSWORD);
    assert_int_equal(keys_cli(a.dir, (const char *const[]){"list", "--store", bad, NULL}), 1);
    snprintf(path, sizeof path, "%s/err", a.dir);
    assert_non_null(strstr(slurp(path), "127.0.0.1"));
    assert_null(strstr(slurp(path), PASSWORD));

    /* nothing any front end or the CLI wrote holds the password or a key */
    front_stop(&a, 0);
    front_stop(&b, 0);
    const front *fs[] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        const char *names[] = {"server.log", "err"};
        for (int k = 0; k < 2; k++) {
            snprintf(path, sizeof path, "%s/%s", fs[i]->dir, names[k]);
            const char *t = slurp(path);
            assert_null(strstr(t, PASSWORD));
            assert_null(strstr(t, alice + 4));
            assert_null(strstr(t, ops + 4));
        }
        assert_int_equal(test_remove_tree(fs[i]->dir), 0);
    }
}

/* One front end on its SQLite store (DIR/data/jobs.db, which `gesso keys
   --data` finds as serve does): keys turn on with the first store key, and
   revoking the last one leaves them on. Then the same store beside an
   --api-keys FILE: both kinds work, and the file's key owns its name. */
static void keys_on_sqlite_and_beside_a_file(void **state)
{
    (void)state;
    front a;
    front_start(&a, (const char *const[]){"--workers", "0", NULL});
    char data[200], dave[80], carol[80], auth[100], path[256];
    snprintf(data, sizeof data, "%s/data", a.dir);
    assert_int_equal(code_of(&a, "GET", "/v1/jobs", NULL, NULL), 200);
    add_key(a.dir, (const char *const[]){"add", "dave", "--data", data, NULL}, dave);
    bearer(auth, sizeof auth, dave);
    wait_for(&a, "/v1/jobs", auth, 200);
    wait_for(&a, "/v1/jobs", NULL, 401);
    assert_int_equal(code_of(&a, "GET", "/metrics", NULL, auth), 403);
    assert_int_equal(keys_cli(a.dir, (const char *const[]){"revoke", "dave", "--data", data, NULL}),
                     0);
    wait_for(&a, "/v1/jobs", auth, 401);
    /* revoked, the store still has a key: no key is still refused */
    test_sleep_ms(1500);
    assert_int_equal(code_of(&a, "GET", "/v1/jobs", NULL, NULL), 401);
    front_stop(&a, 0);

    /* the file names carol; a store key named carol is refused, another works */
    char file[256], fkey[] = "file-key-0123456789abcdef";
    snprintf(file, sizeof file, "%s/keys.txt", a.dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fprintf(f, "%s carol admin\n", fkey);
    fclose(f);
    add_key(a.dir, (const char *const[]){"add", "carol", "--data", data, NULL}, carol);
    char erin[80], auth_e[100], auth_c[100], auth_f[100];
    add_key(a.dir, (const char *const[]){"add", "erin", "--data", data, NULL}, erin);
    a.pid = test_serve_start(a.base, a.dir,
                             (const char *const[]){"--workers", "0", "--api-keys", file, NULL});
    bearer(auth_e, sizeof auth_e, erin);
    bearer(auth_c, sizeof auth_c, carol);
    bearer(auth_f, sizeof auth_f, fkey);
    assert_int_equal(code_of(&a, "GET", "/metrics", NULL, auth_f), 200);
    assert_int_equal(code_of(&a, "GET", "/v1/jobs", NULL, auth_e), 200);
    assert_int_equal(code_of(&a, "GET", "/v1/jobs", NULL, auth_c), 401);
    assert_int_equal(code_of(&a, "GET", "/v1/jobs", NULL, auth), 401); /* dave: revoked */
    assert_int_equal(keys_cli(a.dir, (const char *const[]){"revoke", "erin", "--data", data, NULL}),
                     0);
    wait_for(&a, "/v1/jobs", auth_e, 401);
    assert_int_equal(code_of(&a, "GET", "/v1/jobs", NULL, auth_f), 200);
    /* list and revoke want a store that exists; add makes one, as serve does */
    snprintf(path, sizeof path, "%s/none", a.dir);
    assert_int_equal(keys_cli(a.dir, (const char *const[]){"list", "--data", path, NULL}), 1);
    assert_int_equal(
        keys_cli(a.dir, (const char *const[]){"add", "bad name", "--data", data, NULL}), 2);
    front_stop(&a, 1);
}

/* A front end's copy, by itself (api_keys_store.h), on a SQLite store: read
   again only once it is a second old; a key revoked is refused from the next
   read on, even right after it matched (the cache of recent matches); a
   file's name wins; a copy that cannot be read again serves 10 s, then store
   keys are unavailable, never let in. */
static void the_copy_ages_and_forgets(void **state)
{
    (void)state;
    char dir[] = "/tmp/gesso-keys-XXXXXX", url[64];
    assert_non_null(mkdtemp(dir));
    snprintf(url, sizeof url, "%s/jobs.db", dir);
    job_store *s;
    svc_error err = {0};
    assert_int_equal(store_open(url, &s, &err), GS_OK);
    char k1[STORE_KEY_LEN + 1], k2[STORE_KEY_LEN + 1];
    assert_int_equal(store_key_add(s, "one", 2, 0, 0, 1, k1, &err), GS_OK);
    api_keys_store *c = api_keys_store_create();
    assert_non_null(c);
    api_key out;
    int64_t t = 100000;
    assert_int_equal(api_keys_store_match(c, NULL, k1, strlen(k1), t, &out),
                     API_KEYS_STORE_UNAVAILABLE); /* never read */
    assert_int_equal(api_keys_store_load(c, s, t, &err), GS_OK);
    assert_true(api_keys_store_any(c));
    for (int i = 0; i < 3; i++) { /* the first scans, the others hit the cache */
        assert_int_equal(api_keys_store_match(c, NULL, k1, strlen(k1), t, &out),
                         API_KEYS_STORE_FOUND);
        assert_string_equal(out.name, "one");
        assert_int_equal(out.max_active, 2);
        assert_null(out.key);
    }
    /* added and revoked in the store: not seen before the copy is a second old */
    assert_int_equal(store_key_add(s, "two", 0, 0, 1, 2, k2, &err), GS_OK);
    int revoked = 0;
    assert_int_equal(store_key_revoke(s, "one", 3, &revoked, &err), GS_OK);
    api_keys_store_refresh(c, s, t + 999);
    assert_int_equal(api_keys_store_match(c, NULL, k2, strlen(k2), t + 999, &out),
                     API_KEYS_STORE_NONE);
    assert_int_equal(api_keys_store_match(c, NULL, k1, strlen(k1), t + 999, &out),
                     API_KEYS_STORE_FOUND);
    api_keys_store_refresh(c, s, t + 1000);
    assert_int_equal(api_keys_store_match(c, NULL, k1, strlen(k1), t + 1000, &out),
                     API_KEYS_STORE_NONE);
    assert_int_equal(api_keys_store_match(c, NULL, k2, strlen(k2), t + 1000, &out),
                     API_KEYS_STORE_FOUND);
    assert_int_equal(out.admin, 1);
    /* a file key named "two" owns the name */
    api_key fk = {.name = "two"};
    api_keys file = {&fk, 1};
    assert_int_equal(api_keys_store_match(c, &file, k2, strlen(k2), t + 1000, &out),
                     API_KEYS_STORE_NONE);
    /* the store cannot be read: the copy serves 10 s, then nothing is let in */
    api_keys_store_refresh(c, NULL, t + 5000);
    assert_int_equal(api_keys_store_match(c, NULL, k2, strlen(k2), t + 5000, &out),
                     API_KEYS_STORE_FOUND);
    api_keys_store_refresh(c, NULL, t + 11001);
    assert_int_equal(api_keys_store_match(c, NULL, k2, strlen(k2), t + 11001, &out),
                     API_KEYS_STORE_UNAVAILABLE);
    assert_true(api_keys_store_any(c)); /* keys stay on */
    api_keys_store_refresh(c, s, t + 12001);
    assert_int_equal(api_keys_store_match(c, NULL, k2, strlen(k2), t + 12001, &out),
                     API_KEYS_STORE_FOUND);
    api_keys_store_free(c);
    store_close(s);
    assert_int_equal(test_remove_tree(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_reach_every_front_end),
        cmocka_unit_test(keys_on_sqlite_and_beside_a_file),
        cmocka_unit_test(the_copy_ages_and_forgets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
