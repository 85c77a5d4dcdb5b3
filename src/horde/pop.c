/* pop - the pop request's body (jansson). */
#include "horde/pop.h"

#include <jansson.h>
#include <stdlib.h>

#include "gesso.h"

char *horde_pop_body(const horde_config *c, const char *const *served, int n_served,
                     long max_pixels, int limit_max_steps)
{
    json_t *o = json_object(), *models = json_array(), *black = json_array();
    if (!o || !models || !black) {
        json_decref(o);
        json_decref(models);
        json_decref(black);
        return NULL;
    }
    for (int i = 0; i < n_served; i++)
        json_array_append_new(models, json_string(served[i]));
    for (int i = 0; i < c->n_blacklist; i++)
        json_array_append_new(black, json_string(c->blacklist[i]));
    json_object_set_new(o, "name", json_string(c->dreamer_name));
    json_object_set_new(o, "priority_usernames", json_array());
    json_object_set_new(o, "nsfw", json_boolean(c->nsfw));
    json_object_set_new(o, "models", models);
    json_object_set_new(o, "bridge_agent", json_string(HORDE_BRIDGE_AGENT));
    json_object_set_new(o, "threads", json_integer(c->max_threads));
    json_object_set_new(o, "require_upfront_kudos", json_boolean(c->require_upfront_kudos));
    json_object_set_new(o, "amount", json_integer(1));
    json_object_set_new(o, "max_pixels", json_integer(max_pixels));
    json_object_set_new(o, "blacklist", black);
    json_object_set_new(o, "allow_img2img", json_boolean(c->allow_img2img && HORDE_CAN_IMG2IMG));
    json_object_set_new(o, "allow_painting", json_boolean(c->allow_painting && HORDE_CAN_PAINTING));
    json_object_set_new(o, "allow_unsafe_ipaddr", json_true());
    json_object_set_new(o, "allow_post_processing",
                        json_boolean(c->allow_post_processing && HORDE_CAN_POST_PROCESSING));
    json_object_set_new(o, "allow_controlnet", json_false());
    json_object_set_new(o, "allow_sdxl_controlnet", json_false());
    json_object_set_new(o, "allow_lora", json_boolean(c->allow_lora && HORDE_CAN_LORA));
    json_object_set_new(o, "extra_slow_worker", json_false());
    json_object_set_new(o, "limit_max_steps", json_boolean(limit_max_steps));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}
