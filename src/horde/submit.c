/* submit - the submit request's body (jansson). */
#include "horde/submit.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

const char *horde_state_name(horde_state s)
{
    static const char *const names[] = {"ok", "censored", "faulted", "csam"};
    return names[s];
}

char *horde_submit_body(const char *id, const char *generation, horde_state state, uint64_t seed,
                        const char *why)
{
    json_t *o = json_object(), *meta = json_array();
    if (!o || !meta) {
        json_decref(o);
        json_decref(meta);
        return NULL;
    }
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "generation", json_string(generation));
    json_object_set_new(o, "state", json_string(horde_state_name(state)));
    /* seeds are 32-bit on the Horde (seed_to_int), so the integer fits jansson's */
    json_object_set_new(o, "seed", json_integer((json_int_t)seed));
    if (why) {
        /* GenerationMetadataStable's enums: a fault is "information"/"see_ref" with
           the reason as ref (at most 255 characters); a censored image "censorship" */
        json_t *m = json_object();
        int info = state == HORDE_FAULTED || state == HORDE_OK;
        json_object_set_new(m, "type", json_string(info ? "information" : "censorship"));
        json_object_set_new(m, "value",
                            json_string(info                  ? "see_ref"
                                        : state == HORDE_CSAM ? "csam"
                                                              : "nsfw"));
        json_object_set_new(m, "ref", json_stringn(why, strnlen(why, 255)));
        json_array_append_new(meta, m);
    }
    json_object_set_new(o, "gen_metadata", meta);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

char *horde_submit_body_checked(const char *id, const char *generation, horde_state state,
                                uint64_t seed, int censored, const char *type, const char *value,
                                const char *note)
{
    /* the note (a LoRA left out) is information whatever the check said */
    char *base = horde_submit_body(id, generation, note ? HORDE_OK : state, seed, note);
    json_t *o = base ? json_loads(base, 0, NULL) : NULL;
    free(base);
    if (!o)
        return NULL;
    json_object_set_new(o, "state", json_string(horde_state_name(state)));
    json_object_set_new(o, "censored", json_boolean(censored));
    if (type) {
        json_t *m = json_pack("{s:s,s:s}", "type", type, "value", value);
        json_array_append_new(json_object_get(o, "gen_metadata"), m);
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}
