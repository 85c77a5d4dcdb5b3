/*
 * test_job_spec - the job module without HTTP: defaults come from
 * gs_params_init, the stored JSON reads back to the same spec and the same
 * gs_params, each refusal names its field and reason, operator limits apply
 * at the edge but not to the stored text; seeds past int64; prompt chunk and
 * cost limits (and a key's max_cost); the blob store (put/get/delete of
 * inputs, images and previews, hostile ids, the running byte count shared by
 * processes, the walk over jobs) and the event hub (no lost wake-up, queue
 * watchers, close).
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_keys.h"
#include "job/base64.h"
#include "job/job_spec.h"
#include "queue/blob_store.h"
#include "queue/event_hub.h"
#include "support/json_u64.h"

static void defaults_come_from_the_engine(void **state)
{
    (void)state;
    gs_params p;
    gs_params_init(&p);
    job_spec s;
    assert_int_equal(job_spec_init(&s), 0);
    assert_int_equal(s.width, p.width);
    assert_int_equal(s.height, p.height);
    assert_int_equal(s.steps, p.steps);
    assert_int_equal(s.batch_size, p.batch_size);
    assert_int_equal(s.clip_skip, p.clip_skip);
    assert_true(s.cfg_scale == p.cfg_scale);
    assert_true((float)s.strength == p.strength);
    assert_string_equal(s.sampler, p.sampler);
    assert_string_equal(s.scheduler, "default");
    job_spec_clear(&s);
}

static int from(job_spec *s, const char *json, const job_limits *lim, job_error *e)
{
    assert_int_equal(job_spec_init(s), 0);
    return job_spec_from_json(s, json, strlen(json), lim, e);
}

static void round_trip(void **state)
{
    (void)state;
    job_spec a, b;
    job_error e;
    const char *json;
    json = "{\"model\":\"m\",\"prompt\":\"a (cat:1.2)\",\"negative_prompt\":\"dog\","
           "\"width\":640,\"height\":448,\"steps\":12,\"cfg_scale\":5.5,"
           "\"sampler\":\"dpmpp_2m\",\"scheduler\":\"karras\",\"seed\":4294967296,"
           "\"batch_size\":3,\"clip_skip\":2,\"strength\":0.4,"
           "\"priority\":-7,\"preview_every\":2,\"vae_tile\":-1}";
    assert_int_equal(from(&a, json, NULL, &e), 0);
    assert_int_equal(job_spec_validate(&a, NULL, NULL, &e), 0);
    job_spec_normalise(&a);
    assert_int_equal(a.seed, 4294967296ull); /* given: kept */
    char *text = job_spec_to_json(&a);
    assert_non_null(text);
    assert_int_equal(from(&b, text, NULL, &e), 0);
    char *again = job_spec_to_json(&b);
    assert_string_equal(text, again);
    gs_params p;
    gs_image *init;
    assert_int_equal(job_spec_to_params(&b, &p, &init), 0);
    assert_null(init);
    assert_string_equal(p.prompt, "a (cat:1.2)");
    assert_string_equal(p.negative_prompt, "dog");
    assert_string_equal(p.sampler, "dpmpp_2m");
    assert_string_equal(p.scheduler, "karras");
    assert_int_equal(p.width, 640);
    assert_int_equal(p.height, 448);
    assert_int_equal(p.steps, 12);
    assert_int_equal(p.batch_size, 3);
    assert_int_equal(p.clip_skip, 2);
    assert_int_equal(p.preview_every, 2);
    assert_int_equal(p.vae_tile, -1);
    assert_true(p.cfg_scale == 5.5f);
    assert_true(p.strength == 0.4f);
    assert_int_equal(p.seed, 4294967296ull);
    assert_int_equal(b.priority, -7);
    assert_true(job_spec_megapixelsteps(&b) == 640.0 * 448 * 12 * 3 / 1e6);
    free(text);
    free(again);
    job_spec_clear(&a);
    job_spec_clear(&b);
}

/* eta: absent stays absent (the sampler's default reaches the engine), and 0
   (a value of its own: deterministic ancestral samplers) survives the store. */
static void eta_absent_or_zero(void **state)
{
    (void)state;
    job_spec s, t;
    job_error e;
    gs_params p;
    gs_image *init;
    assert_int_equal(from(&s, "{\"model\":\"m\"}", NULL, &e), 0);
    char *text = job_spec_to_json(&s);
    assert_null(strstr(text, "\"eta\""));
    assert_int_equal(job_spec_to_params(&s, &p, &init), 0);
    assert_true(p.eta < 0.0f);
    free(text);
    job_spec_clear(&s);
    assert_int_equal(from(&s, "{\"model\":\"m\",\"eta\":0}", NULL, &e), 0);
    text = job_spec_to_json(&s);
    assert_int_equal(from(&t, text, NULL, &e), 0);
    assert_int_equal(job_spec_to_params(&t, &p, &init), 0);
    assert_true(p.eta == 0.0f);
    free(text);
    job_spec_clear(&s);
    job_spec_clear(&t);
    assert_int_equal(from(&s, "{\"model\":\"m\",\"eta\":10.5}", NULL, &e), -1);
    assert_string_equal(e.field, "eta");
    job_spec_clear(&s);
}

static void a_seed_is_drawn_once(void **state)
{
    (void)state;
    job_spec s;
    job_error e;
    assert_int_equal(from(&s, "{\"model\":\"m\"}", NULL, &e), 0);
    assert_int_equal(s.seed_given, 0);
    job_spec_normalise(&s);
    assert_int_equal(s.seed_given, 1);
    assert_true(s.seed <= 0xffffffffu);
    uint64_t seed = s.seed;
    job_spec_normalise(&s); /* normalised once: the stored job reproduces */
    assert_int_equal(s.seed, seed);
    char *text = job_spec_to_json(&s);
    assert_non_null(strstr(text, "\"seed\":"));
    assert_null(strstr(text, "init_image")); /* absent optional fields stay absent */
    assert_null(strstr(text, "vae_tile"));
    free(text);
    job_spec_clear(&s);
}

/* Seeds as A1111 and ComfyUI take them: 0..2^64-1 exactly, -1 for a random
   one; nothing else is wrapped, rounded or cut to fit. */
static void seeds_as_people_write_them(void **state)
{
    (void)state;
    enum { EXACT, RANDOM, REFUSED };
    static const struct {
        const char *seed; /* the JSON text of the value */
        int outcome;
        uint64_t value;    /* EXACT */
        job_reason reason; /* REFUSED */
    } cases[] = {
        {"0", EXACT, 0, 0},
        {"4294967296", EXACT, 4294967296ull, 0},
        {"9223372036854775807", EXACT, 9223372036854775807ull, 0},
        {"9223372036854775808", EXACT, 9223372036854775808ull, 0},
        {"18446744073709551615", EXACT, 18446744073709551615ull, 0},
        {"18446744073709551616", REFUSED, 0, JOB_ERR_OUT_OF_RANGE},
        {"99999999999999999999999999", REFUSED, 0, JOB_ERR_OUT_OF_RANGE},
        {"-1", RANDOM, 0, 0},
        {"-1.0", RANDOM, 0, 0},
        {"-2", REFUSED, 0, JOB_ERR_OUT_OF_RANGE},
        {"-9223372036854775809", REFUSED, 0, JOB_ERR_OUT_OF_RANGE},
        {"-0", EXACT, 0, 0},
        {"42.0", EXACT, 42, 0},
        {"1e3", EXACT, 1000, 0},
        {"9007199254740991.0", EXACT, 9007199254740991ull, 0},
        {"9007199254740992.0", REFUSED, 0, JOB_ERR_OUT_OF_RANGE},
        {"1.5", REFUSED, 0, JOB_ERR_WRONG_TYPE},
        {"1e19", REFUSED, 0, JOB_ERR_OUT_OF_RANGE},
        {"1.8446744073709552e19", REFUSED, 0, JOB_ERR_OUT_OF_RANGE},
        {"\"18446744073709551615\"", EXACT, 18446744073709551615ull, 0},
        {"\"-1\"", RANDOM, 0, 0},
        {"\"18446744073709551616\"", REFUSED, 0, JOB_ERR_OUT_OF_RANGE},
        {"\"1.8446744073709552e19\"", REFUSED, 0, JOB_ERR_WRONG_TYPE},
        {"\" 5\"", REFUSED, 0, JOB_ERR_WRONG_TYPE},
        {"\"007\"", REFUSED, 0, JOB_ERR_WRONG_TYPE},
        {"true", REFUSED, 0, JOB_ERR_WRONG_TYPE},
        {"[18446744073709551615]", REFUSED, 0, JOB_ERR_WRONG_TYPE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[200];
        snprintf(json, sizeof json, "{\"model\":\"m\",\"seed\":%s}", cases[i].seed);
        job_spec s;
        job_error e;
        int rc = from(&s, json, NULL, &e);
        if (cases[i].outcome == REFUSED) {
            if (rc == 0 || e.reason != cases[i].reason)
                fail_msg("seed %s: want reason %s, got rc %d (%s)", cases[i].seed,
                         job_reason_code(cases[i].reason), rc, rc ? e.message : "");
            assert_string_equal(e.field, "seed");
            job_spec_clear(&s);
            continue;
        }
        if (rc != 0)
            fail_msg("seed %s: refused: %s", cases[i].seed, e.message);
        assert_int_equal(s.seed_given, cases[i].outcome == EXACT);
        job_spec_normalise(&s);
        if (cases[i].outcome == EXACT)
            assert_true(s.seed == cases[i].value);
        else
            assert_true(s.seed <= 0xffffffffu); /* the draw of a seed left out */
        /* the stored text carries the value exactly, and reads back to it */
        char *text = job_spec_to_json(&s), want[64];
        snprintf(want, sizeof want, "\"seed\":%llu,", (unsigned long long)s.seed);
        assert_non_null(strstr(text, want));
        job_spec back;
        assert_int_equal(from(&back, text, NULL, &e), 0);
        assert_true(back.seed == s.seed && back.seed_given);
        free(text);
        job_spec_clear(&back);
        job_spec_clear(&s);
    }
}

/* Big literals elsewhere: out of range where a number belongs, the wrong type
   where it does not, and untouched inside strings; the seed member is found
   however its name is spelt. */
static void big_integers_in_other_places(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        job_reason reason;
        const char *field;
    } refused[] = {
        {"{\"model\":\"m\",\"width\":99999999999999999999}", JOB_ERR_OUT_OF_RANGE, "width"},
        {"{\"model\":\"m\",\"width\":-99999999999999999999}", JOB_ERR_OUT_OF_RANGE, "width"},
        {"{\"model\":\"m\",\"cfg_scale\":18446744073709551615}", JOB_ERR_OUT_OF_RANGE, "cfg_scale"},
        {"{\"model\":\"m\",\"prompt\":18446744073709551615}", JOB_ERR_WRONG_TYPE, "prompt"},
        {"{\"model\":\"m\",\"seed\":1,\"x\":{\"seed\":18446744073709551615}}",
         JOB_ERR_UNKNOWN_FIELD, "x"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        job_spec s;
        job_error e;
        assert_int_equal(from(&s, refused[i].json, NULL, &e), -1);
        assert_int_equal(e.reason, refused[i].reason);
        assert_string_equal(e.field, refused[i].field);
        job_spec_clear(&s);
    }
    job_spec s;
    job_error e;
    assert_int_equal(from(&s,
                          "{\"model\":\"m\",\"prompt\":\"18446744073709551616 \\\\\","
                          "\"negative_prompt\":\"\\\"seed\\\":1\",\"se\\u0065d\" : "
                          "18446744073709551615}",
                          NULL, &e),
                     0);
    assert_string_equal(s.prompt, "18446744073709551616 \\");
    assert_string_equal(s.negative_prompt, "\"seed\":1");
    assert_true(s.seed == 18446744073709551615ull);
    job_spec_clear(&s);
}

static void json_u64_reads_and_writes(void **state)
{
    (void)state;
    json_int_literal lit;
    const char *text = "[1, {\"seed\": 18446744073709551615}, -99999999999999999999, 2.5e30]";
    json_t *j = json_u64_loadb(text, strlen(text), 0, "seed", &lit, NULL);
    assert_non_null(j);
    assert_false(lit.found); /* not a member of the top-level object */
    assert_true(json_integer_value(json_object_get(json_array_get(j, 1), "seed")) == INT64_MAX);
    assert_true(json_integer_value(json_array_get(j, 2)) == INT64_MIN);
    json_decref(j);
    /* a repeated member: the last one counts, as in jansson */
    text = "{\"seed\":18446744073709551615,\"seed\":\"x\"}";
    j = json_u64_loadb(text, strlen(text), 0, "seed", &lit, NULL);
    assert_false(lit.found);
    json_decref(j);
    text = "{\"seed\":\"x\",\"seed\":18446744073709551614}";
    j = json_u64_loadb(text, strlen(text), 0, "seed", &lit, NULL);
    uint64_t v = 0;
    assert_true(json_int_literal_u64(&lit, &v) && v == 18446744073709551614ull);
    json_decref(j);
    /* what jansson refuses stays refused */
    json_error_t err;
    text = "{\"seed\":018446744073709551615}";
    assert_null(json_u64_loadb(text, strlen(text), 0, "seed", &lit, &err));
    text = "{\"seed\":18446744073709551615";
    assert_null(json_u64_loadb(text, strlen(text), 0, "seed", &lit, &err));
    /* writing: first member, exact digits; an empty object too */
    json_t *o = json_pack("{s:i}", "images", 1);
    char *out = json_u64_dumps(o, JSON_COMPACT, "seed", UINT64_MAX);
    assert_string_equal(out, "{\"seed\":18446744073709551615,\"images\":1}");
    free(out);
    json_object_del(o, "images");
    out = json_u64_dumps(o, JSON_COMPACT, "seed", 0);
    assert_string_equal(out, "{\"seed\":0}");
    free(out);
    json_decref(o);
}

static void refusals_name_the_field(void **state)
{
    (void)state;
    job_limits lim;
    job_limits_default(&lim);
    lim.max_steps = 40;
    static const struct {
        const char *json;
        job_reason reason;
        const char *field;
    } cases[] = {
        {"{\"model\":\"m\",\"steps\":41}", JOB_ERR_OUT_OF_RANGE, "steps"},
        {"{\"model\":\"m\",\"width\":\"x\"}", JOB_ERR_WRONG_TYPE, "width"},
        {"{\"model\":\"m\",\"bogus\":1}", JOB_ERR_UNKNOWN_FIELD, "bogus"},
        {"{\"prompt\":\"x\"}", JOB_ERR_MISSING_FIELD, "model"},
        {"{\"model\":\"m\",\"sampler\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}", JOB_ERR_TOO_LONG,
         "sampler"},
        {"[]", JOB_ERR_INVALID_JSON, ""},
        {"{\"model\":\"m\",\"cfg_scale\":1e400}", JOB_ERR_INVALID_JSON, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        job_spec s;
        job_error e;
        assert_int_equal(from(&s, cases[i].json, &lim, &e), -1);
        assert_int_equal(e.reason, cases[i].reason);
        assert_string_equal(e.field, cases[i].field);
        assert_true(strlen(e.message) > 0);
        job_spec_clear(&s);
    }
    /* the operator's limit binds requests, not the stored text a worker reads */
    job_spec s;
    job_error e;
    assert_int_equal(from(&s, "{\"model\":\"m\",\"steps\":41}", NULL, &e), 0);
    job_spec_clear(&s);
    /* checks across fields */
    static const struct {
        const char *json;
        job_reason reason;
        const char *field;
    } semantic[] = {
        {"{\"model\":\"tiny-sd15\",\"height\":100}", JOB_ERR_BAD_SIZE, "height"},
        {"{\"model\":\"tiny-sd15\",\"sampler\":\"euler_b\"}", JOB_ERR_UNKNOWN_SAMPLER, "sampler"},
        {"{\"model\":\"tiny-sd15\",\"scheduler\":\"nope\"}", JOB_ERR_UNKNOWN_SCHEDULER,
         "scheduler"},
        {"{\"model\":\"tiny-sd15\",\"vae_tile\":100}", JOB_ERR_OUT_OF_RANGE, "vae_tile"},
        {"{\"model\":\"tiny-sd15\",\"init_image\":\"aGVsbG8=\"}", JOB_ERR_BAD_IMAGE, "init_image"},
        {"{\"model\":\"no-such-model\"}", JOB_ERR_UNKNOWN_MODEL, "model"},
        {"{\"model\":\"../tiny-sd15\"}", JOB_ERR_UNKNOWN_MODEL, "model"},
    };
    for (size_t i = 0; i < sizeof semantic / sizeof semantic[0]; i++) {
        assert_int_equal(from(&s, semantic[i].json, &lim, &e), 0);
        assert_int_equal(job_spec_validate(&s, &lim, GS_FIXTURES, &e), -1);
        assert_int_equal(e.reason, semantic[i].reason);
        assert_string_equal(e.field, semantic[i].field);
        job_spec_clear(&s);
    }
    assert_int_equal(from(&s, "{\"model\":\"tiny-sd15\"}", &lim, &e), 0);
    assert_int_equal(job_spec_validate(&s, &lim, GS_FIXTURES, &e), 0);
    job_spec_clear(&s);
    assert_string_equal(job_reason_code(JOB_ERR_OUT_OF_RANGE), "out_of_range");
}

/* A job the engine's sampler would refuse is refused at submit, never queued
   to fail in its worker (the soak test found lcm + karras jobs failed that way):
   ddim and lcm take their own timesteps, lcm at most 50 steps, the hires
   pass's schedule of int(steps / min(denoise, 0.999)) included. */
static void samplers_refuse_what_the_engine_would(void **state)
{
    (void)state;
    job_limits lim;
    job_limits_default(&lim);
    static const struct {
        const char *json;
        job_reason reason;
        const char *field; /* NULL: accepted */
    } cases[] = {
        {"{\"model\":\"tiny-sd15\",\"sampler\":\"lcm\",\"scheduler\":\"karras\"}",
         JOB_ERR_UNKNOWN_SCHEDULER, "scheduler"},
        {"{\"model\":\"tiny-sd15\",\"sampler\":\"ddim\",\"scheduler\":\"normal\"}",
         JOB_ERR_UNKNOWN_SCHEDULER, "scheduler"},
        {"{\"model\":\"tiny-sd15\",\"sampler\":\"lcm\",\"steps\":51}", JOB_ERR_OUT_OF_RANGE,
         "steps"},
        /* 40 / 0.7 = 57 schedule steps */
        {"{\"model\":\"tiny-sd15\",\"sampler\":\"lcm\",\"steps\":40,\"hires_scale\":2}",
         JOB_ERR_OUT_OF_RANGE, "steps"},
        /* 36 / 0.7 = 51 */
        {"{\"model\":\"tiny-sd15\",\"sampler\":\"lcm\",\"steps\":8,\"hires_scale\":2,"
         "\"hires_steps\":36,\"hires_denoise\":0.7}",
         JOB_ERR_OUT_OF_RANGE, "hires_steps"},
        {"{\"model\":\"tiny-sd15\",\"sampler\":\"lcm\",\"steps\":50,\"scheduler\":\"default\"}",
         JOB_ERR_INVALID_JSON, NULL},
        /* 35 / 0.7 = 50 */
        {"{\"model\":\"tiny-sd15\",\"sampler\":\"lcm\",\"steps\":8,\"hires_scale\":2,"
         "\"hires_steps\":35}",
         JOB_ERR_INVALID_JSON, NULL},
        {"{\"model\":\"tiny-sd15\",\"sampler\":\"ddim\",\"steps\":150}", JOB_ERR_INVALID_JSON,
         NULL},
        {"{\"model\":\"tiny-sd15\",\"sampler\":\"euler\",\"scheduler\":\"karras\",\"steps\":150}",
         JOB_ERR_INVALID_JSON, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        job_spec s;
        job_error e = {0};
        assert_int_equal(from(&s, cases[i].json, &lim, &e), 0);
        int rc = job_spec_validate(&s, &lim, GS_FIXTURES, &e);
        if (!cases[i].field) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_int_equal(e.reason, cases[i].reason);
            assert_string_equal(e.field, cases[i].field);
        }
        job_spec_clear(&s);
    }
}

/* "a BREAK " n times: n chunks of 75 tokens. */
static char *breaks(int n)
{
    char *p = malloc((size_t)n * 8 + 1);
    assert_non_null(p);
    for (int i = 0; i < n; i++)
        memcpy(p + (size_t)i * 8, "a BREAK ", 8);
    p[(size_t)n * 8] = '\0';
    return p;
}

static int check_prompts(const char *prompt, const char *negative, const job_limits *lim,
                         const gs_tokenizer *tok, job_error *e)
{
    job_spec s;
    assert_int_equal(job_spec_init(&s), 0);
    free(s.prompt);
    free(s.negative_prompt);
    s.prompt = strdup(prompt);
    s.negative_prompt = strdup(negative);
    int rc = job_spec_check_prompts(&s, lim, tok, e);
    job_spec_clear(&s);
    return rc;
}

/* A prompt's chunks are bounded (default 32), each prompt on its own, counted
   with the engine's rules; a prompt the engine would refuse is refused here. */
static void prompt_chunks_are_bounded(void **state)
{
    (void)state;
    gs_tokenizer *tok = NULL;
    assert_int_equal(gs_tokenizer_create(&tok), GS_OK);
    job_limits lim;
    job_limits_default(&lim);
    assert_int_equal(lim.max_prompt_chunks, 32);
    char *at_limit = breaks(32), *over = breaks(33), *huge = breaks(2048);
    job_error e;
    assert_int_equal(check_prompts(at_limit, at_limit, &lim, tok, &e), 0);
    assert_int_equal(check_prompts(over, "", &lim, tok, &e), -1);
    assert_int_equal(e.reason, JOB_ERR_TOO_LONG);
    assert_string_equal(e.field, "prompt");
    assert_non_null(strstr(e.message, "makes 33 chunks"));
    assert_non_null(strstr(e.message, "limit is 32"));
    assert_int_equal(check_prompts("a cat", over, &lim, tok, &e), -1);
    assert_string_equal(e.field, "negative_prompt");
    assert_int_equal(check_prompts(huge, "", &lim, tok, &e), -1);
    assert_non_null(strstr(e.message, "makes 2048 chunks"));
    /* 75 tokens are one chunk, 76 two (the comma rule aside) */
    char words[2 * 76 + 1];
    for (int i = 0; i < 76; i++)
        memcpy(words + 2 * i, "a ", 2);
    words[2 * 76] = '\0';
    lim.max_prompt_chunks = 1;
    assert_int_equal(check_prompts(words, "", &lim, tok, &e), -1);
    words[2 * 75] = '\0';
    assert_int_equal(check_prompts(words, "", &lim, tok, &e), 0);
    assert_int_equal(check_prompts("(a:1.2.3)", "", &lim, tok, &e), -1);
    assert_int_equal(e.reason, JOB_ERR_BAD_PROMPT);
    assert_string_equal(e.field, "prompt");
    assert_string_equal(job_reason_code(e.reason), "bad_prompt");
    /* no limits (the stored text): only what the engine refuses */
    assert_int_equal(check_prompts(huge, "", NULL, tok, &e), 0);
    free(at_limit);
    free(over);
    free(huge);
    gs_tokenizer_free(tok);
}

/* The cost of a spec given as JSON (no limits, no checks across fields). */
static double cost_of(const char *json)
{
    job_spec s;
    job_error e;
    if (from(&s, json, NULL, &e) != 0)
        fail_msg("%s: %s", json, e.message);
    double c = job_spec_cost(&s);
    job_spec_clear(&s);
    return c;
}

/* megapixels x batch x steps run x UNet passes, as the engine runs them. */
static void cost_estimate(void **state)
{
    (void)state;
    const double mp = 512.0 * 512 / 1e6;
    assert_true(cost_of("{\"model\":\"m\"}") == mp * 20 * 2); /* 7.0: CFG, two passes */
    assert_true(cost_of("{\"model\":\"m\",\"cfg_scale\":1}") == mp * 20);
    assert_true(cost_of("{\"model\":\"m\",\"cfg_scale\":1.00000001}") == mp * 20); /* as float */
    assert_true(cost_of("{\"model\":\"m\",\"cfg_scale\":0}") == mp * 20 * 2);
    assert_true(cost_of("{\"model\":\"m\",\"width\":1024,\"height\":768,\"steps\":30,"
                        "\"batch_size\":4,\"cfg_scale\":5}") == 1024.0 * 768 / 1e6 * 4 * 30 * 2);
    /* img2img runs A1111's floor(min(strength, 0.999) * steps) + 1 steps */
    static const struct {
        const char *strength;
        int steps, run;
    } i2i[] = {{"0.5", 20, 11}, {"0.75", 20, 16}, {"1", 20, 20}, {"0.01", 20, 1}, {"0.7", 10, 8}};
    for (size_t i = 0; i < sizeof i2i / sizeof i2i[0]; i++) {
        char json[200];
        snprintf(json, sizeof json,
                 "{\"model\":\"m\",\"cfg_scale\":1,\"init_image\":\"x\",\"strength\":%s,"
                 "\"steps\":%d}",
                 i2i[i].strength, i2i[i].steps);
        if (cost_of(json) != mp * i2i[i].run)
            fail_msg("strength %s, %d steps: cost %g, want %d steps", i2i[i].strength, i2i[i].steps,
                     cost_of(json), i2i[i].run);
    }
    /* the limit: the estimate may reach it, not pass it; 0 is none */
    job_spec s;
    job_error e;
    assert_int_equal(from(&s, "{\"model\":\"m\"}", NULL, &e), 0);
    assert_int_equal(job_spec_check_cost(&s, mp * 40, "the server's", &e), 0);
    assert_int_equal(job_spec_check_cost(&s, 0, "the server's", &e), 0);
    assert_int_equal(job_spec_check_cost(&s, 10, "this key's", &e), -1);
    assert_int_equal(e.reason, JOB_ERR_TOO_COSTLY);
    assert_string_equal(job_reason_code(e.reason), "too_costly");
    assert_string_equal(e.field, "");
    assert_non_null(strstr(e.message, "estimated cost is 10.4858 megapixel-steps"));
    assert_non_null(strstr(e.message, "x 2 UNet passes (CFG)"));
    assert_non_null(strstr(e.message, "over this key's limit of 10"));
    job_spec_clear(&s);
}

/* A key's max_cost in the key file: a decimal of megapixel-steps, or refused. */
static void key_file_cost_limits(void **state)
{
    (void)state;
    char path[] = "/tmp/gesso-keys-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    static const struct {
        const char *line;
        int ok;
        double max_cost;
    } cases[] = {
        {"alice-key-0123456789 alice max_cost=2.5", 1, 2.5},
        {"alice-key-0123456789 alice max_active=2 max_cost=0 admin", 1, 0},
        {"alice-key-0123456789 alice", 1, 0},
        {"alice-key-0123456789 alice max_cost=-1", 0, 0},
        {"alice-key-0123456789 alice max_cost=inf", 0, 0},
        {"alice-key-0123456789 alice max_cost=1e13", 0, 0},
        {"alice-key-0123456789 alice max_cost=5x", 0, 0},
        {"alice-key-0123456789 alice max_cost=", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(path, "w");
        fprintf(f, "%s\n", cases[i].line);
        fclose(f);
        api_keys keys;
        char msg[256];
        int rc = api_keys_load(path, &keys, msg, sizeof msg);
        if ((rc == 0) != cases[i].ok)
            fail_msg("'%s': %s", cases[i].line, rc ? msg : "taken");
        if (rc == 0) {
            assert_true(keys.keys[0].max_cost == cases[i].max_cost);
            api_keys_free(&keys);
        } else {
            assert_non_null(strstr(msg, ":1: max_cost"));
        }
    }
    unlink(path);
}

/* Two keys under one name would share its jobs, one key twice is a typo:
   both stop the load, naming the line. */
static void key_file_refuses_duplicates(void **state)
{
    (void)state;
    char path[] = "/tmp/gesso-keys-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"alice-key-0123456789 alice\nother-key-0123456789 alice\n", ":2: the name is given"},
        {"alice-key-0123456789 alice\nalice-key-0123456789 bob\n", ":2: the key is listed twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(path, "w");
        fputs(cases[i].text, f);
        fclose(f);
        api_keys keys;
        char msg[256];
        assert_int_not_equal(api_keys_load(path, &keys, msg, sizeof msg), 0);
        if (!strstr(msg, cases[i].why))
            fail_msg("%s", msg);
    }
    unlink(path);
}

static void init_image_reaches_the_engine(void **state)
{
    (void)state;
    size_t n = 0;
    FILE *f = fopen(fixture_path("init-img2img_euler_a.png"), "rb");
    assert_non_null(f);
    unsigned char *png = malloc(1 << 20);
    n = fread(png, 1, 1 << 20, f);
    fclose(f);
    char *b64 = base64_encode(png, n);
    size_t m = 0;
    unsigned char *back = base64_decode(b64, 1 << 20, &m);
    assert_int_equal(m, n);
    assert_memory_equal(back, png, n);
    free(back);
    char *json = malloc(strlen(b64) + 64);
    snprintf(json, strlen(b64) + 64,
             "{\"model\":\"m\",\"init_image\":\"data:image/png;base64,%s\"}", b64);
    job_spec s;
    job_error e;
    assert_int_equal(from(&s, json, NULL, &e), 0);
    assert_int_equal(job_spec_validate(&s, NULL, NULL, &e), 0);
    gs_params p;
    gs_image *init = NULL;
    assert_int_equal(job_spec_to_params(&s, &p, &init), 0);
    assert_non_null(init);
    assert_ptr_equal(p.init_image, init);
    assert_true(init->width > 0 && init->height > 0);
    gs_image_free(init);
    job_spec_clear(&s);
    free(json);
    free(b64);
    free(png);
}

/* ---- blob store ---- */

static void blobs_put_get_delete(void **state)
{
    (void)state;
    char dir[64] = "/tmp/gesso-blobs-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char url[128];
    snprintf(url, sizeof url, "file:%s/b", dir);
    blob_store *b;
    svc_error err = {0};
    assert_int_equal(blob_open(url, &b, &err), GS_OK);
    const char *id = "01a20c02-df3b-710a-a5f4-94239fb89222";
    assert_int_equal(blob_put(b, id, BLOB_IMAGE, 0, "first", 5, &err), GS_OK);
    assert_int_equal(blob_put(b, id, BLOB_IMAGE, 1, "second", 6, &err), GS_OK);
    assert_int_equal(blob_put(b, id, BLOB_PREVIEW, 0, "pv", 2, &err), GS_OK);
    assert_int_equal(blob_put(b, id, BLOB_PREVIEW, 0, "pv2", 3, &err), GS_OK); /* replaced */
    /* a job's inputs, unlike its images, may leave gaps in their numbering */
    assert_int_equal(blob_put(b, id, BLOB_INPUT, 0, "init", 4, &err), GS_OK);
    assert_int_equal(blob_put(b, id, BLOB_INPUT, BLOB_MAX_INPUTS - 1, "last", 4, &err), GS_OK);
    unsigned char *data;
    size_t n;
    assert_int_equal(blob_get(b, id, BLOB_INPUT, 0, 100, &data, &n, &err), GS_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(data, "init", 4);
    free(data);
    assert_int_equal(blob_get(b, id, BLOB_INPUT, 1, 100, &data, &n, &err), GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(blob_get(b, id, BLOB_IMAGE, 1, 100, &data, &n, &err), GS_OK);
    assert_int_equal(n, 6);
    assert_memory_equal(data, "second", 6);
    free(data);
    assert_int_equal(blob_get(b, id, BLOB_PREVIEW, 0, 100, &data, &n, &err), GS_OK);
    assert_memory_equal(data, "pv2", 3);
    free(data);
    assert_int_equal(blob_get(b, id, BLOB_IMAGE, 2, 100, &data, &n, &err), GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(blob_get(b, id, BLOB_IMAGE, 0, 3, &data, &n, &err), GS_ERR_IO); /* over max */
    /* ids that would leave the directory, and indices out of range, are refused */
    assert_int_not_equal(blob_put(b, "../x", BLOB_IMAGE, 0, "x", 1, &err), GS_OK);
    assert_int_not_equal(blob_put(b, id, BLOB_IMAGE, BLOB_MAX_INDEX, "x", 1, &err), GS_OK);
    assert_int_not_equal(blob_put(b, id, BLOB_PREVIEW, 1, "x", 1, &err), GS_OK);
    assert_int_not_equal(blob_put(b, id, BLOB_INPUT, BLOB_MAX_INPUTS, "x", 1, &err), GS_OK);
    assert_int_not_equal(blob_put(b, id, BLOB_INPUT, -1, "x", 1, &err), GS_OK);
    assert_int_equal(blob_delete_job(b, id, &err), GS_OK);
    for (int k = 0; k < BLOB_MAX_INPUTS; k++) /* a purged job's inputs go with it */
        assert_int_equal(blob_get(b, id, BLOB_INPUT, k, 100, &data, &n, &err),
                         GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(blob_get(b, id, BLOB_IMAGE, 0, 100, &data, &n, &err), GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(blob_get(b, id, BLOB_PREVIEW, 0, 100, &data, &n, &err),
                     GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(blob_delete_job(b, id, &err), GS_OK); /* nothing left: not an error */
    blob_close(b);
    assert_int_equal(blob_open("s3://bucket", &b, &err), GS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "s3"));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void count_job(void *user, const char *id)
{
    (void)id;
    (*(int *)user)++;
}

/* The running total is the files' bytes, whichever handle (process) put or
   deleted them, without a walk; a recount puts right what a crash left off. */
static void blobs_count_their_bytes(void **state)
{
    (void)state;
    char dir[64] = "/tmp/gesso-blobs-XXXXXX";
    assert_non_null(mkdtemp(dir));
    svc_error err = {0};
    blob_store *api, *worker;
    assert_int_equal(blob_open(dir, &api, &err), GS_OK);
    assert_int_equal(blob_open(dir, &worker, &err), GS_OK);
    assert_int_equal(blob_recount(api, &err), GS_OK);
    assert_int_equal(blob_bytes(api), 0);
    const char *a = "01a20c02-df3b-710a-a5f4-94239fb89222",
               *b = "01a20c02-df3b-710a-a5f4-94239fb89333";
    assert_int_equal(blob_put(api, a, BLOB_INPUT, 0, "0123456789", 10, &err), GS_OK);
    assert_int_equal(blob_put(worker, a, BLOB_IMAGE, 0, "abcde", 5, &err), GS_OK);
    assert_int_equal(blob_put(worker, a, BLOB_PREVIEW, 0, "pv", 2, &err), GS_OK);
    assert_int_equal(blob_put(worker, a, BLOB_PREVIEW, 0, "pv2", 3, &err), GS_OK); /* replaces */
    assert_int_equal(blob_put(worker, b, BLOB_IMAGE, 0, "x", 1, &err), GS_OK);
    assert_int_equal(blob_bytes(api), 19);
    assert_int_equal(blob_bytes(worker), 19);
    int jobs = 0;
    assert_int_equal(blob_each_job(api, count_job, &jobs, &err), GS_OK);
    assert_int_equal(jobs, 2); /* once each, however many blobs */
    assert_int_equal(blob_delete_job(api, a, &err), GS_OK);
    assert_int_equal(blob_bytes(worker), 1);
    /* a file no put counted (a process died between writing and counting it) */
    char path[200];
    snprintf(path, sizeof path, "%s/%s-1.png", dir, b);
    FILE *f = fopen(path, "wb");
    fputs("uncounted", f);
    fclose(f);
    assert_int_equal(blob_bytes(api), 1);
    assert_int_equal(blob_recount(worker, &err), GS_OK);
    assert_int_equal(blob_bytes(api), 10);
    blob_close(worker);
    blob_close(api);
    /* the count outlives the handles */
    assert_int_equal(blob_open(dir, &api, &err), GS_OK);
    assert_int_equal(blob_bytes(api), 10);
    blob_close(api);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- event hub ---- */

typedef struct waiter {
    hub_sub *sub;
    int result;
} waiter;

static void *wait_thread(void *arg)
{
    waiter *w = arg;
    w->result = hub_wait(w->sub, 10000);
    return NULL;
}

static void hub_wakes_the_right_subscribers(void **state)
{
    (void)state;
    event_hub *h = hub_create();
    hub_sub *a = hub_subscribe(h, "job-a"), *b = hub_subscribe(h, "job-b");
    assert_int_equal(hub_subscribers(h), 2);
    /* a publish before the wait is not lost */
    hub_publish(h, "job-a");
    assert_int_equal(hub_wait(a, 0), 1);
    assert_int_equal(hub_wait(a, 0), 0); /* consumed */
    assert_int_equal(hub_wait(b, 0), 0); /* not b's job */
    /* queue changes reach only the queue's watchers */
    hub_watch_queue(b, 1);
    hub_publish_queue(h);
    assert_int_equal(hub_wait(a, 0), 0);
    assert_int_equal(hub_wait(b, 0), 1);
    hub_publish_all(h);
    assert_int_equal(hub_wait(a, 0), 1);
    assert_int_equal(hub_wait(b, 0), 1);
    /* a sleeping waiter is woken by its job's change */
    waiter w = {a, -9};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
    test_sleep_ms(50);
    hub_publish(h, "job-a");
    pthread_join(t, NULL);
    assert_int_equal(w.result, 1);
    /* and by the hub closing, for good */
    w.result = -9;
    assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
    hub_close(h);
    pthread_join(t, NULL);
    assert_int_equal(w.result, -1);
    assert_int_equal(hub_wait(b, 1000), -1);
    hub_unsubscribe(a);
    hub_unsubscribe(b);
    assert_int_equal(hub_subscribers(h), 0);
    hub_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_come_from_the_engine),
        cmocka_unit_test(round_trip),
        cmocka_unit_test(eta_absent_or_zero),
        cmocka_unit_test(a_seed_is_drawn_once),
        cmocka_unit_test(seeds_as_people_write_them),
        cmocka_unit_test(big_integers_in_other_places),
        cmocka_unit_test(json_u64_reads_and_writes),
        cmocka_unit_test(refusals_name_the_field),
        cmocka_unit_test(samplers_refuse_what_the_engine_would),
        cmocka_unit_test(prompt_chunks_are_bounded),
        cmocka_unit_test(cost_estimate),
        cmocka_unit_test(key_file_cost_limits),
        cmocka_unit_test(key_file_refuses_duplicates),
        cmocka_unit_test(init_image_reaches_the_engine),
        cmocka_unit_test(blobs_put_get_delete),
        cmocka_unit_test(blobs_count_their_bytes),
        cmocka_unit_test(hub_wakes_the_right_subscribers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
