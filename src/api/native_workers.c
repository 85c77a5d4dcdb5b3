/*
 * native_workers - GET /v1/workers, the fleet as the store knows it: every
 * worker that reported in the last hour, local or on another machine,
 *
 *   {"workers": [{"name", "host", "state", "models_loaded", "models_available",
 *                 "job", "megapixelsteps_per_s", "last_heartbeat_ms"}]}
 *
 * state is what the worker last said (idle, loading, working), or "gone"
 * when its last report is older than its lease (it reports every lease/3):
 * killed, or cut off from the database (fleet_view.c judges). A worker that
 * stops cleanly takes its row with it. last_heartbeat_ms is the Unix time of
 * its last report.
 */
#include "api/fleet_view.h"
#include "api/native.h"

static json_t *worker_json(const fleet_worker *w)
{
    json_t *o = json_pack("{s:s,s:s,s:s}", "name", w->name, "host", w->host, "state", w->state);
    json_object_set(o, "models_loaded", w->loaded);
    json_object_set_new(o, "models_available",
                        w->available ? json_incref(w->available) : json_array());
    json_object_set_new(o, "job", w->job ? json_string(w->job) : json_null());
    json_object_set_new(o, "megapixelsteps_per_s", w->mps > 0 ? json_real(w->mps) : json_null());
    json_object_set_new(o, "last_heartbeat_ms", json_integer((json_int_t)w->seen_ms));
    return o;
}

enum MHD_Result native_list_workers(http_request *r)
{
    svc_error err = {0};
    fleet_view v;
    if (fleet_view_load(r->s, server_now_ms(), &v, &err) != GS_OK)
        return http_error(r, 503, "store_unavailable", err.msg);
    json_t *arr = json_array();
    for (int i = 0; i < v.n; i++)
        json_array_append_new(arr, worker_json(&v.w[i]));
    fleet_view_free(&v);
    return http_reply_json(r, 200, json_pack("{s:o}", "workers", arr), NULL);
}
