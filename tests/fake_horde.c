/* fake_horde - libmicrohttpd serving the v2 worker routes from a script. */
#include "fake_horde.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "horde/pop.h"
#include "testutil.h"

typedef struct body_buf {
    char *data;
    size_t len;
} body_buf;

static void violation(fake_horde *h, const char *fmt, const char *what)
{
    size_t n = strlen(h->violations);
    snprintf(h->violations + n, sizeof h->violations - n, fmt, what);
    n = strlen(h->violations);
    snprintf(h->violations + n, sizeof h->violations - n, "\n");
}

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

/* Every member of o is in allowed; required ones are present with type. */
static void check_members(fake_horde *h, const char *what, const json_t *o,
                          const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (!in_list(k, allowed)) {
            char m[160];
            snprintf(m, sizeof m, "%s: unknown field '%s'", what, k);
            violation(h, "%s", m);
        }
    }
}

static void check_pop(fake_horde *h, const json_t *o)
{
    static const char *const fields[] = {"name",
                                         "priority_usernames",
                                         "nsfw",
                                         "models",
                                         "bridge_agent",
                                         "threads",
                                         "require_upfront_kudos",
                                         "amount",
                                         "extra_slow_worker",
                                         "max_pixels",
                                         "blacklist",
                                         "allow_img2img",
                                         "allow_painting",
                                         "allow_unsafe_ipaddr",
                                         "allow_post_processing",
                                         "allow_controlnet",
                                         "allow_sdxl_controlnet",
                                         "allow_lora",
                                         "limit_max_steps",
                                         NULL};
    if (!json_is_object(o)) {
        violation(h, "%s", "pop: body is not a JSON object");
        return;
    }
    check_members(h, "pop", o, fields);
    const char *name = json_string_value(json_object_get(o, "name"));
    if (!name || !name[0])
        violation(h, "%s", "pop: name missing");
    const json_t *models = json_object_get(o, "models");
    if (!json_is_array(models) || json_array_size(models) == 0)
        violation(h, "%s", "pop: models missing");
    for (size_t i = 0; i < json_array_size(models); i++) {
        const char *m = json_string_value(json_array_get(models, i));
        if (!m || strlen(m) < 3 || strlen(m) > 255)
            violation(h, "%s", "pop: a model name is not 3..255 characters");
    }
    const char *agent = json_string_value(json_object_get(o, "bridge_agent"));
    /* name:version:url, this bridge's own name (bridge_reference keys on it) */
    if (!agent || strncmp(agent, "gesso:" GESSO_VERSION ":", 7 + strlen(GESSO_VERSION)) != 0 ||
        !strstr(agent, ":http") || strlen(agent) > 1000)
        violation(h, "pop: bridge_agent '%s' is not gesso:<version>:<url>", agent ? agent : "");
    const json_t *t = json_object_get(o, "threads");
    if (!json_is_integer(t) || json_integer_value(t) < 1 || json_integer_value(t) > 50)
        violation(h, "%s", "pop: threads not an integer in 1..50");
    const json_t *a = json_object_get(o, "amount");
    if (a && (!json_is_integer(a) || json_integer_value(a) < 1 || json_integer_value(a) > 20))
        violation(h, "%s", "pop: amount not an integer in 1..20");
    /* 64*64*8*max_power, or less when the bridge's pacing lowers it (a multiple of 64*64) */
    json_int_t mp = json_integer_value(json_object_get(o, "max_pixels"));
    if (mp > h->max_pixels || mp < 4096 || mp % 4096)
        violation(h, "%s", "pop: max_pixels is not a multiple of 64*64 up to 64*64*8*max_power");
    h->last_max_pixels = (long)mp;
    if (!h->min_max_pixels || mp < h->min_max_pixels)
        h->min_max_pixels = (long)mp;
    h->last_limit_max_steps = json_is_true(json_object_get(o, "limit_max_steps"));
    if (!json_is_array(json_object_get(o, "blacklist")))
        violation(h, "%s", "pop: blacklist not a list");
    static const char *const bools[] = {"nsfw",
                                        "require_upfront_kudos",
                                        "allow_img2img",
                                        "allow_painting",
                                        "allow_post_processing",
                                        "allow_lora",
                                        NULL};
    for (int i = 0; bools[i]; i++)
        if (!json_is_boolean(json_object_get(o, bools[i])))
            violation(h, "pop: %s is not a boolean", bools[i]);
    /* what gesso cannot do today must be declined up front */
    if (!json_is_false(json_object_get(o, "require_upfront_kudos")))
        violation(h, "%s", "pop: require_upfront_kudos should be false");
    if (!json_is_true(json_object_get(o, "allow_img2img")))
        violation(h, "%s", "pop: allow_img2img should be true (gesso has img2img)");
    static const char *const off[] = {"allow_post_processing", "allow_lora", "allow_controlnet",
                                      "allow_sdxl_controlnet", NULL};
    /* the test's bridgeData allows painting, and gesso can paint */
    if (!json_is_true(json_object_get(o, "allow_painting")))
        violation(h, "%s", "pop: allow_painting should be true (gesso has inpainting)");
    for (int i = 0; off[i]; i++)
        if (json_is_true(json_object_get(o, off[i])) &&
            !(HORDE_CAN_LORA && strcmp(off[i], "allow_lora") == 0)) /* lora_cache.h */
            violation(h, "pop: %s is true but the bridge cannot run such jobs yet", off[i]);
}

static void record_submit(fake_horde *h, const json_t *o)
{
    static const char *const fields[] = {"id",       "generation",   "state", "seed",
                                         "censored", "gen_metadata", NULL};
    static const char *const states[] = {"ok", "censored", "faulted", "csam", NULL};
    static const char *const types[] = {"lora",
                                        "ti",
                                        "censorship",
                                        "source_image",
                                        "source_mask",
                                        "extra_source_images",
                                        "batch_index",
                                        "information",
                                        "aesthetic_score",
                                        NULL};
    static const char *const values[] = {
        "download_failed", "parse_failed", "baseline_mismatch", "csam", "nsfw", "see_ref", NULL};
    if (!json_is_object(o)) {
        violation(h, "%s", "submit: body is not a JSON object");
        return;
    }
    check_members(h, "submit", o, fields);
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *gen = json_string_value(json_object_get(o, "generation"));
    const char *state = json_string_value(json_object_get(o, "state"));
    const json_t *seed = json_object_get(o, "seed");
    if (!id)
        violation(h, "%s", "submit: id missing");
    if (json_object_get(o, "generation") && !gen)
        violation(h, "%s", "submit: generation not a string");
    if (state && !in_list(state, states))
        violation(h, "submit: state '%s' not in the enum", state);
    if (!json_is_integer(seed))
        violation(h, "%s", "submit: seed is not an integer");
    const json_t *meta = json_object_get(o, "gen_metadata");
    if (meta && !json_is_array(meta))
        violation(h, "%s", "submit: gen_metadata not a list");
    const char *ref = "", *mtype = NULL, *mvalue = NULL;
    for (size_t i = 0; i < json_array_size(meta); i++) {
        const json_t *m = json_array_get(meta, i);
        const char *ty = json_string_value(json_object_get(m, "type"));
        const char *va = json_string_value(json_object_get(m, "value"));
        const char *re = json_string_value(json_object_get(m, "ref"));
        if (!ty || !in_list(ty, types) || !va || !in_list(va, values))
            violation(h, "%s", "submit: gen_metadata entry outside the enums");
        if (json_object_get(m, "ref") && (!re || strlen(re) > 255))
            violation(h, "%s", "submit: gen_metadata ref not a string of at most 255");
        if (i == 0 && re)
            ref = re;
        if (i == 0) {
            mtype = ty;
            mvalue = va;
        }
    }
    if (!id || h->n_submits >= FAKE_MAX)
        return;
    fake_submit *s = &h->submits[h->n_submits++];
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->state, sizeof s->state, "%s", state ? state : "ok");
    s->seed = json_integer_value(seed);
    s->r2 = gen && strcmp(gen, "R2") == 0;
    snprintf(s->ref, sizeof s->ref, "%s", ref);
    if (mtype && mvalue)
        snprintf(s->meta, sizeof s->meta, "%s/%s", mtype, mvalue);
    const json_t *cen = json_object_get(o, "censored");
    s->censored = cen ? json_is_true(cen) : -1;
    s->ms = test_mono_ms();
}

static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    fake_horde *h = cls;
    body_buf *b = *con_cls;
    if (!b) {
        *con_cls = calloc(1, sizeof *b);
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*upload_size) {
        char *nd = realloc(b->data, b->len + *upload_size + 1);
        if (!nd)
            return MHD_NO;
        memcpy(nd + b->len, upload, *upload_size);
        b->len += *upload_size;
        nd[b->len] = 0;
        b->data = nd;
        *upload_size = 0;
        return MHD_YES;
    }
    int is_api = strncmp(url, "/api/v2/", 8) == 0;
    if (is_api) {
        const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "apikey");
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        pthread_mutex_lock(&h->mu);
        if (!key || strcmp(key, h->apikey) != 0)
            violation(h, "%s: apikey header missing or wrong", url);
        if (!ct || strncmp(ct, "application/json", 16) != 0)
            violation(h, "%s: Content-Type is not application/json", url);
        pthread_mutex_unlock(&h->mu);
    }
    if (strcmp(url, "/api/v2/generate/pop") == 0 && strcmp(method, "POST") == 0) {
        json_t *o = json_loadb(b->data ? b->data : "", b->len, 0, NULL);
        pthread_mutex_lock(&h->mu);
        check_pop(h, o);
        h->pops++;
        fake_pop p = {200, NULL, 0};
        if (h->next < h->n_script) {
            h->popped_ms[h->next] = test_mono_ms();
            p = h->script[h->next++];
            h->last_job_pop_ms = test_mono_ms();
        }
        pthread_mutex_unlock(&h->mu);
        json_decref(o);
        if (p.delay_ms)
            test_sleep_ms(p.delay_ms);
        return reply(c, p.status,
                     p.body ? p.body : "{\"id\":null,\"ids\":[],\"skipped\":{},\"payload\":{}}");
    }
    if (strcmp(url, "/api/v2/generate/submit") == 0 && strcmp(method, "POST") == 0) {
        json_t *o = json_loadb(b->data ? b->data : "", b->len, 0, NULL);
        const char *id = json_string_value(json_object_get(o, "id"));
        pthread_mutex_lock(&h->mu);
        int gone = id && strcmp(id, h->submit_gone) == 0;
        if (!gone)
            record_submit(h, o);
        pthread_mutex_unlock(&h->mu);
        json_decref(o);
        if (gone)
            return reply(c, 404,
                         "{\"message\":\"Processing Generation with ID x does not exist.\","
                         "\"rc\":\"InvalidJobID\"}");
        return reply(c, 200, "{\"reward\":10.5}");
    }
    if (strncmp(url, "/r2/", 4) == 0 && strcmp(method, "PUT") == 0) {
        const char *id = url + 4;
        pthread_mutex_lock(&h->mu);
        int fail = strcmp(id, h->put_fail_once) == 0 && !h->put_failed;
        h->put_failed |= fail;
        if (!fail && h->n_uploads < FAKE_MAX) {
            fake_upload *u = &h->uploads[h->n_uploads++];
            snprintf(u->id, sizeof u->id, "%s", id);
            u->data = malloc(b->len ? b->len : 1);
            memcpy(u->data, b->data ? b->data : "", b->len);
            u->len = b->len;
        }
        pthread_mutex_unlock(&h->mu);
        return reply(c, fail ? 500 : 200, "");
    }
    pthread_mutex_lock(&h->mu);
    violation(h, "unexpected request %s", url);
    pthread_mutex_unlock(&h->mu);
    return reply(c, 404, "{}");
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    body_buf *b = *con_cls;
    if (b) {
        free(b->data);
        free(b);
    }
    *con_cls = NULL;
}

int fake_horde_start(fake_horde *h, const char *apikey, long max_pixels)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    snprintf(h->apikey, sizeof h->apikey, "%s", apikey);
    h->max_pixels = max_pixels;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                            NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_NOTIFY_COMPLETED, on_done, h, MHD_OPTION_END);
    if (!h->d)
        return -1;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : 0;
    snprintf(h->base, sizeof h->base, "http://127.0.0.1:%d", h->port);
    return h->port ? 0 : -1;
}

void fake_horde_stop(fake_horde *h)
{
    if (h->d)
        MHD_stop_daemon(h->d);
    h->d = NULL;
    for (int i = 0; i < h->n_script; i++)
        free(h->script[i].body);
    for (int i = 0; i < h->n_uploads; i++)
        free(h->uploads[i].data);
    pthread_mutex_destroy(&h->mu);
}

void fake_horde_script(fake_horde *h, int status, const char *body, int delay_ms)
{
    pthread_mutex_lock(&h->mu);
    if (h->n_script < FAKE_MAX)
        h->script[h->n_script++] = (fake_pop){status, strdup(body), delay_ms};
    pthread_mutex_unlock(&h->mu);
}

char *fake_horde_job(const fake_horde *h, const char *const *ids, int n, const char *payload,
                     const char *extra)
{
    size_t cap = 4096 + strlen(payload) + strlen(extra);
    char *s = malloc(cap), idl[1024] = "", r2l[2048] = "";
    for (int i = 0; i < n; i++) {
        size_t a = strlen(idl), b = strlen(r2l);
        snprintf(idl + a, sizeof idl - a, "%s\"%s\"", i ? "," : "", ids[i]);
        snprintf(r2l + b, sizeof r2l - b, "%s\"%s/r2/%s\"", i ? "," : "", h->base, ids[i]);
    }
    snprintf(s, cap,
             "{\"payload\":{%s},\"id\":\"%s\",\"ids\":[%s],\"ttl\":150,\"skipped\":{},"
             "\"model\":\"tiny-sd15\",\"r2_upload\":\"%s/r2/%s\",\"r2_uploads\":[%s]%s}",
             payload, ids[0], idl, h->base, ids[0], r2l, extra);
    return s;
}

const fake_submit *fake_horde_wait_submit(fake_horde *h, const char *id, int timeout_ms)
{
    for (int64_t end = test_mono_ms() + timeout_ms;; test_sleep_ms(50)) {
        pthread_mutex_lock(&h->mu);
        for (int i = 0; i < h->n_submits; i++)
            if (strcmp(h->submits[i].id, id) == 0) {
                pthread_mutex_unlock(&h->mu);
                return &h->submits[i];
            }
        pthread_mutex_unlock(&h->mu);
        if (test_mono_ms() > end)
            return NULL;
    }
}

const fake_upload *fake_horde_upload(fake_horde *h, const char *id)
{
    const fake_upload *u = NULL;
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < h->n_uploads; i++)
        if (strcmp(h->uploads[i].id, id) == 0)
            u = &h->uploads[i];
    pthread_mutex_unlock(&h->mu);
    return u;
}

/* ---- the bridge under test ---- */

int fake_horde_write_config(const char *dir, const char *fmt, ...)
{
    char path[512];
    snprintf(path, sizeof path, "%s/bridgeData.yaml", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(f, fmt, ap);
    va_end(ap);
    return fclose(f) == 0 && n >= 0 ? 0 : -1;
}

pid_t fake_horde_bridge_start(const fake_horde *h, const char *dir, const char *ttl_scale,
                              int status_port, const char *precision)
{
    char cfg[512], models[512], log[512], port[16];
    snprintf(cfg, sizeof cfg, "%s/bridgeData.yaml", dir);
    snprintf(models, sizeof models, "%s/models", dir);
    snprintf(log, sizeof log, "%s/bridge.log", dir);
    snprintf(port, sizeof port, "%d", status_port);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    FILE *l = freopen(log, "a", stderr);
    (void)l;
    setenv("GESSO_HORDE_FAST", "1", 1);
    if (ttl_scale)
        setenv("GESSO_HORDE_TTL_SCALE", ttl_scale, 1);
    const char *argv[16] = {GS_GESSO_BIN, "horde",       "--config", cfg,  "--models",
                            models,       "--horde-url", h->base,    "-t", "2"};
    int argc = 10;
    if (status_port > 0) {
        argv[argc++] = "--status-port";
        argv[argc++] = port;
    }
    if (precision) {
        argv[argc++] = "--precision";
        argv[argc++] = precision;
    }
    argv[argc] = NULL;
    execv(GS_GESSO_BIN, (char *const *)argv);
    _exit(127);
}

void fake_horde_bridge_kill(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
    }
    *pid = -1;
}

void fake_horde_show_log(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "tail -n 40 %s/bridge.log >&2", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "(no log)\n");
}
