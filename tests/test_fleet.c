/*
 * test_fleet - several `gesso serve` front ends and workers sharing one real
 * PostgreSQL (tests/pg_server.c), as machines of a fleet would: events of a
 * job reach an event stream on a front end other than the one that took it,
 * live (LISTEN/NOTIFY), and any front end serves its images (blobs in the
 * database).
 */
#include "testutil.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pg_server.h"

static pg_server pg;
static char url[512];

/* One front end: its own scratch directory (another machine's disk), the
   shared database. */
typedef struct front {
    char dir[128], base[64];
    pid_t pid;
} front;

static void front_start(front *f, const char *workers)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/gesso-fleet-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(test_link_tiny_model(f->dir), 0);
    f->pid = test_serve_start(f->base, f->dir,
                              (const char *const[]){"--store", url, "--workers", workers, NULL});
}

static void front_stop(front *f)
{
    assert_int_equal(test_serve_stop(f->pid), 0);
    assert_int_equal(test_remove_tree(f->dir), 0);
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

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int count_of(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

/* A job submitted through front end A while A's only worker is busy; its
   event stream is read through front end B, which has no workers and so
   learns of the job's changes from the database alone. The stream must see
   the start, each step and the end: every progress event reaches B only
   through a notification (B's 15 s keep-alive would show the end, never the
   steps), so the deadline can leave a sanitized build on a loaded machine
   its time. */
static void events_reach_another_front_end(void **state)
{
    (void)state;
    assert_int_equal(pg_server_new_db(&pg, url, sizeof url), 0);
    front a, b;
    front_start(&a, "1");
    front_start(&b, "0");
    char *blocker = test_submit(a.base, a.dir, NULL,
                                "{\"model\":\"tiny-sd15\",\"steps\":150,\"width\":128,"
                                "\"height\":128}");
    test_wait_step(a.base, a.dir, NULL, blocker, 60000);
    char *id = test_submit(a.base, a.dir, NULL,
                           "{\"model\":\"tiny-sd15\",\"steps\":6,\"width\":64,\"height\":64,"
                           "\"seed\":7}");
    char events[300], cmd[1024], path[160];
    snprintf(events, sizeof events, "%s/events.txt", b.dir);
    snprintf(cmd, sizeof cmd, "curl -sN -m 150 -o '%s' '%s/v1/jobs/%s/events' &", events, b.base,
             id);
    assert_int_equal(system(cmd), 0);
    /* the stream is open and has said "queued" before the job can move */
    for (int64_t end = test_mono_ms() + 5000;; test_sleep_ms(20)) {
        char *t = read_text(events);
        if (t && strstr(t, "event: queued"))
            break;
        if (test_mono_ms() > end)
            fail_msg("B's stream said nothing: %s", t ? t : "(no file)");
    }
    int64_t t0 = test_mono_ms();
    snprintf(path, sizeof path, "/v1/jobs/%s", blocker);
    assert_int_equal(test_http(a.base, a.dir, "DELETE", path, NULL, NULL), 200);
    char *t = NULL;
    for (int64_t end = t0 + 120000; test_mono_ms() < end; test_sleep_ms(50)) {
        t = read_text(events);
        if (t && strstr(t, "event: succeeded"))
            break;
    }
    if (!t || !strstr(t, "event: succeeded"))
        fail_msg("B's stream did not see the job end within 120 s:\n%s", t ? t : "");
    fprintf(stderr, "B saw the job end %d ms after the blocker was cancelled\n",
            (int)(test_mono_ms() - t0));
    assert_int_equal(count_of(t, "event: started"), 1);
    assert_int_equal(count_of(t, "event: progress"), 6);
    json_t *j = test_get_job(b.base, b.dir, NULL, id);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
    json_decref(j);
    /* the image is in the database: B serves it, the same bytes as A */
    snprintf(path, sizeof path, "/v1/jobs/%s/images/0", id);
    assert_int_equal(test_http(b.base, b.dir, "GET", path, NULL, NULL), 200);
    assert_int_equal(test_http(a.base, a.dir, "GET", path, NULL, NULL), 200);
    snprintf(cmd, sizeof cmd, "cmp -s '%s/resp' '%s/resp' && ! ls '%s'/data/results/*.png", a.dir,
             b.dir, a.dir);
    assert_int_equal(system(cmd), 0);
    free(blocker);
    free(id);
    front_stop(&a);
    front_stop(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(events_reach_another_front_end),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
