/*
 * native_workers - GET /v1/workers, the fleet as the store knows it: every
 * worker that reported in the last hour, local or on another machine,
 *
 *   {"workers": [{"name", "host", "state", "models_loaded", "models_available",
 *                 "job", "megapixelsteps_per_s", "last_heartbeat_ms"}]}
 *
 * state is what the worker last said (idle, loading, working), or "gone"
 * when it has not reported for 3 of its leases (it reports every lease/3):
 * killed, or cut off from the database. A worker that stops cleanly takes
 * its row with it. last_heartbeat_ms is the Unix time of its last report.
 */
#include <jansson.h>
#include <string.h>

#include "api/native.h"

#define LISTED_MS (3600LL * 1000) /* gone workers shown this long */

static json_t *worker_json(const worker_record *w, int64_t now, int default_lease_ms)
{
    json_t *info = json_loads(w->info, 0, NULL), *loaded = json_loads(w->models, 0, NULL);
    if (!json_is_object(info)) {
        json_decref(info);
        info = json_object();
    }
    json_int_t lease = json_integer_value(json_object_get(info, "lease_ms"));
    if (lease <= 0)
        lease = default_lease_ms;
    const char *state = json_string_value(json_object_get(info, "state"));
    if (now - w->seen_ms > 3 * (int64_t)lease)
        state = "gone";
    json_t *available = json_object_get(info, "models_available");
    json_t *job = json_object_get(info, "job"),
           *mps = json_object_get(info, "megapixelsteps_per_s");
    const char *host = json_string_value(json_object_get(info, "host"));
    json_t *o = json_pack("{s:s,s:s,s:s}", "name", w->name, "host", host ? host : "", "state",
                          state ? state : "idle");
    json_object_set_new(o, "models_loaded", json_is_array(loaded) ? loaded : json_array());
    if (!json_is_array(loaded))
        json_decref(loaded);
    json_object_set_new(o, "models_available",
                        json_is_array(available) ? json_incref(available) : json_array());
    json_object_set_new(o, "job",
                        json_is_string(job) && strcmp(state, "gone") != 0 ? json_incref(job)
                                                                          : json_null());
    json_object_set_new(o, "megapixelsteps_per_s",
                        json_is_number(mps) ? json_incref(mps) : json_null());
    json_object_set_new(o, "last_heartbeat_ms", json_integer((json_int_t)w->seen_ms));
    json_decref(info);
    return o;
}

enum MHD_Result native_list_workers(http_request *r)
{
    server *s = r->s;
    svc_error err = {0};
    worker_record *list = NULL;
    int n = 0;
    int64_t now = server_now_ms();
    job_store *store = server_store(s, &err);
    gs_status st = store ? store_workers_list(store, now - LISTED_MS, &list, &n, &err) : GS_ERR_IO;
    if (st != GS_OK)
        return http_error(r, 503, "store_unavailable", err.msg);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, worker_json(&list[i], now, s->o->lease_ms));
    store_workers_free(list, n);
    return http_reply_json(r, 200, json_pack("{s:o}", "workers", arr), NULL);
}
