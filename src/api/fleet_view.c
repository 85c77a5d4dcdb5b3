/* fleet_view - the workers table read once and judged: states, and the models live workers have. */
#include "api/fleet_view.h"

#include <stdlib.h>
#include <string.h>

static void judge(fleet_worker *fw, const worker_record *w, json_t *info, json_t *loaded,
                  int64_t now_ms, int default_lease_ms)
{
    json_int_t lease = json_integer_value(json_object_get(info, "lease_ms"));
    if (lease <= 0)
        lease = default_lease_ms;
    const char *state = json_string_value(json_object_get(info, "state"));
    if (!state)
        state = "idle"; /* a worker from before states were said */
    /* it reports every lease/3: a report older than the lease means a
       worker killed or cut off from the database, whose job the reaper
       takes back */
    if (now_ms - w->seen_ms > (int64_t)lease)
        state = "gone";
    const char *host = json_string_value(json_object_get(info, "host"));
    json_t *available = json_object_get(info, "models_available");
    json_t *job = json_object_get(info, "job"),
           *mps = json_object_get(info, "megapixelsteps_per_s");
    fw->name = w->name;
    fw->host = host ? host : "";
    fw->state = state;
    fw->loaded = loaded;
    fw->available = json_is_array(available) ? available : NULL;
    fw->job = strcmp(state, "gone") != 0 ? json_string_value(job) : NULL;
    fw->mps = json_is_number(mps) ? json_number_value(mps) : 0;
    fw->seen_ms = w->seen_ms;
}

gs_status fleet_view_load(server *s, int64_t now_ms, fleet_view *out, svc_error *err)
{
    memset(out, 0, sizeof *out);
    worker_record *list = NULL;
    int n = 0;
    job_store *store = server_store(s, err);
    gs_status st =
        store ? store_workers_list(store, now_ms - FLEET_LISTED_MS, &list, &n, err) : GS_ERR_IO;
    if (st != GS_OK)
        return st;
    out->keep = json_array();
    out->advertised = json_object();
    out->w = calloc(n > 0 ? (size_t)n : 1, sizeof *out->w);
    if (!out->keep || !out->advertised || !out->w) {
        store_workers_free(list, n);
        fleet_view_free(out);
        return svc_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        json_t *info = json_loads(list[i].info, 0, NULL),
               *loaded = json_loads(list[i].models, 0, NULL);
        if (!json_is_object(info)) {
            json_decref(info);
            info = json_object();
        }
        if (!json_is_array(loaded)) {
            json_decref(loaded);
            loaded = json_array();
        }
        /* the name too, so the view outlives the records */
        json_object_set_new(info, "name", json_string(list[i].name));
        json_array_append_new(out->keep, info);
        json_array_append_new(out->keep, loaded);
        fleet_worker *fw = &out->w[out->n++];
        judge(fw, &list[i], info, loaded, now_ms, s->o->lease_ms);
        fw->name = json_string_value(json_object_get(info, "name"));
        if (!fw->name)
            fw->name = "";
        size_t k;
        json_t *m;
        if (strcmp(fw->state, "gone") != 0 && fw->available)
            json_array_foreach(fw->available, k, m)
            {
                const char *model = json_string_value(m);
                if (model)
                    json_object_set_new(
                        out->advertised, model,
                        json_integer(json_integer_value(json_object_get(out->advertised, model)) +
                                     1));
            }
    }
    store_workers_free(list, n);
    return GS_OK;
}

void fleet_view_free(fleet_view *v)
{
    free(v->w);
    json_decref(v->keep);
    json_decref(v->advertised);
    memset(v, 0, sizeof *v);
}

int fleet_view_workers_with(const fleet_view *v, const char *model)
{
    return (int)json_integer_value(json_object_get(v->advertised, model));
}
