/*
 * test_families - SD 2.x and SDXL through the same engine path as SD1: what a
 * file is (family, prediction type), the text conditioning each family builds
 * (A1111's prompt rules per encoder, SDXL's pooled vector and size features,
 * the empty negative), and every reference recipe end to end against its
 * reference image.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gesso.h"
#include "pipeline/engine.h"
#include "recipes.h"

/* Conditioning against the reference's float64: measured 2.4-2.8e-7 (sd2) and 2.2-3.0e-7 (sdxl)
   relative L2 on this AMD EPYC in f32; a swapped pad id, a missing or extra final norm
   or emphasis applied across encoders moves it past 1e-2. */
#define COND_REL_L2 5e-6

typedef struct family_case {
    const char *dir, *model, *golden, *family;
    int min_recipes;
} family_case;

static const family_case sd2 = {"sd2", "sd2/tiny-sd2.safetensors",
                                "sd2/tiny-sd2-golden.safetensors", "sd2", 6};
static const family_case sdxl = {"sdxl", "sdxl/tiny-sdxl.safetensors",
                                 "sdxl/tiny-sdxl-golden.safetensors", "sdxl", 7};

static gs_engine *engine_f32(void)
{
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = 2;
    eo.precision = GS_PRECISION_F32; /* the reference images are f32 results */
    gs_engine *eng = NULL;
    assert_int_equal(gs_engine_create(&eo, &eng), GS_OK);
    return eng;
}

static gs_model *load(gs_engine *eng, const char *fixture)
{
    gs_model *m = NULL;
    gs_status st = gs_model_load(eng, fixture_path(fixture), &m);
    if (st != GS_OK)
        fprintf(stderr, "load %s: %s\n", fixture, gs_engine_errmsg(eng));
    assert_int_equal(st, GS_OK);
    return m;
}

/* ---- what a file is ---- */

static void inspect_names_the_family(void **state)
{
    (void)state;
    const family_case *cs[] = {&sd2, &sdxl};
    for (size_t i = 0; i < 2; i++) {
        gs_checkpoint_info ci;
        char msg[256];
        assert_int_equal(gs_checkpoint_inspect(fixture_path(cs[i]->model), &ci, msg, sizeof msg),
                         GS_OK);
        assert_string_equal(ci.family_name, cs[i]->family);
        assert_int_equal(ci.prediction, GS_PREDICTION_EPS); /* modelspec.prediction_type */
        assert_true(ci.unet_params > 0 && ci.text_params > 0 && ci.vae_params > 0);
    }
    gs_checkpoint_info ci;
    char msg[256];
    assert_int_equal(
        gs_checkpoint_inspect(fixture_path("sdxl/tiny-sdxl.safetensors"), &ci, msg, sizeof msg),
        GS_OK);
    assert_int_equal(ci.family, GS_FAMILY_SDXL);
}

/* A copy of the SD2 file whose metadata says v: the family name becomes
   sd2-v and sampling reads the output as v (the v recipes then match). */
/* Writes the SD2 fixture to path with `from`, the first after `key` in its
   JSON header, overwritten by `to` (as long: the tensors' offsets stay). */
static void sd2_copy_edited(const char *path, const char *key, const char *from, const char *to)
{
    assert_int_equal(strlen(from), strlen(to));
    FILE *in = fopen(fixture_path(sd2.model), "rb"), *out = fopen(path, "wb");
    assert_non_null(in);
    assert_non_null(out);
    uint64_t hlen;
    assert_int_equal(fread(&hlen, 8, 1, in), 1);
    char *hdr = malloc(hlen + 1);
    assert_int_equal(fread(hdr, 1, hlen, in), hlen);
    hdr[hlen] = '\0';
    char *at = strstr(hdr, key);
    assert_non_null(at);
    char *val = strstr(at, from);
    assert_non_null(val);
    memcpy(val, to, strlen(to));
    fwrite(&hlen, 8, 1, out);
    fwrite(hdr, 1, hlen, out);
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    free(hdr);
}

#define PREDICTION_KEY "\"modelspec.prediction_type\""

static void v_metadata_is_honoured(void **state)
{
    (void)state;
    char dir[] = "/tmp/gesso-fam-XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/v.safetensors", dir);
    /* JSON whitespace after the string keeps the length */
    sd2_copy_edited(path, PREDICTION_KEY, "\"epsilon\"", "\"v\"      ");

    gs_checkpoint_info ci;
    char msg[256];
    assert_int_equal(gs_checkpoint_inspect(path, &ci, msg, sizeof msg), GS_OK);
    assert_string_equal(ci.family_name, "sd2-v");
    assert_int_equal(ci.prediction, GS_PREDICTION_V);
    gs_engine *eng = engine_f32();
    gs_model *m = NULL;
    assert_int_equal(gs_model_load(eng, path, &m), GS_OK);
    gs_model_info mi;
    gs_model_get_info(m, &mi);
    assert_string_equal(mi.family_name, "sd2-v");
    assert_int_equal(mi.prediction, GS_PREDICTION_V);
    gs_model_free(m);
    gs_engine_free(eng);
    unlink(path);
    rmdir(dir);
}

/* A safetensors file of one-element tensors with the given names. */
static void write_names(const char *path, const char *const *names, int n)
{
    json_t *hdr = json_object();
    for (int i = 0; i < n; i++)
        json_object_set_new(hdr, names[i],
                            json_pack("{s:s,s:[i],s:[i,i]}", "dtype", "F32", "shape", 1,
                                      "data_offsets", 4 * i, 4 * i + 4));
    char *h = json_dumps(hdr, JSON_COMPACT);
    uint64_t hl = strlen(h);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(&hl, 8, 1, f);
    fwrite(h, 1, hl, f);
    float zero = 0;
    for (int i = 0; i < n; i++)
        fwrite(&zero, 4, 1, f);
    fclose(f);
    free(h);
    json_decref(hdr);
}

/* Families gesso does not run are named in the refusal, never half-loaded. */
static void other_families_are_named_and_refused(void **state)
{
    (void)state;
    static const struct {
        const char *marker, *needle;
    } kinds[] = {
        {"conditioner.embedders.0.model.ln_final.weight", "SDXL refiner"},
        {"model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight", "Stable Diffusion 3"},
        {"double_blocks.0.img_attn.qkv.weight", "Flux"},
        {"model.diffusion_model.input_blocks.1.0.time_stack.in_layers.0.weight", "Video"},
    };
    char dir[] = "/tmp/gesso-famkind-XXXXXX", path[300];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    gs_engine *eng = engine_f32();
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const char *names[] = {kinds[i].marker, "model.diffusion_model.input_blocks.0.0.weight",
                               "first_stage_model.decoder.conv_in.weight"};
        write_names(path, names, 3);
        gs_checkpoint_info ci;
        char msg[256];
        assert_int_equal(gs_checkpoint_inspect(path, &ci, msg, sizeof msg), GS_OK);
        assert_int_equal(ci.family, GS_FAMILY_UNKNOWN);
        gs_model *m = NULL;
        assert_int_equal(gs_model_load(eng, path, &m), GS_ERR_UNSUPPORTED);
        printf("%s\n", gs_engine_errmsg(eng));
        assert_non_null(strstr(gs_engine_errmsg(eng), kinds[i].needle));
    }
    /* an SDXL file without its second encoder is malformed, not some other family */
    const char *half[] = {
        "model.diffusion_model.input_blocks.0.0.weight", "first_stage_model.decoder.conv_in.weight",
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight"};
    write_names(path, half, 3);
    gs_model *m = NULL;
    assert_int_equal(gs_model_load(eng, path, &m), GS_ERR_FORMAT);
    gs_engine_free(eng);
    assert_int_equal(test_remove_tree(dir), 0);
}

/* ---- conditioning ---- */

static double compare(const char *what, const float *got, const char *key, size_t n)
{
    size_t cnt;
    double *ref = golden_f64(key, &cnt);
    assert_int_equal(cnt, n);
    double e = rel_l2_f32_f64(got, ref, n);
    printf("%-28s rel L2 %.3g\n", what, e);
    free(ref);
    return e;
}

/* The whole extra-conditioning vector of one prompt as generate builds it,
   for sizes given in sgm's order (h, w, top, left, h, w). */
static void vector_of(const gs_model *m, const prompt_cond *pc, const double *time_ids, float *y)
{
    gs_params p;
    gs_params_init(&p);
    p.original_height = (int)time_ids[0];
    p.original_width = (int)time_ids[1];
    p.crop_top = (int)time_ids[2];
    p.crop_left = (int)time_ids[3];
    p.target_height = (int)time_ids[4];
    p.target_width = (int)time_ids[5];
    extra_conditioning(m, &p, pc, y);
}

/* Each SDXL recipe's two vectors (prompt, negative) as gs_generate builds them
   from the recipe's settings, against the reference's. */
static void sdxl_recipe_vectors_match(void **state)
{
    (void)state;
    golden_select(sdxl.golden);
    gs_engine *eng = engine_f32();
    gs_model *m = load(eng, sdxl.model);
    recipe rs[16];
    int n = recipes_load_file("sdxl/recipes.json", rs, 16);
    float *y = malloc(1576 * sizeof *y);
    for (int i = 0; i < n; i++) {
        gs_params p;
        recipe_params(&rs[i], &p);
        prompt_cond pc, pu;
        gi_error err = {0};
        assert_int_equal(encode_prompt(eng, m, p.prompt, 1, 0, &pc, &err), GS_OK);
        assert_int_equal(
            encode_prompt(eng, m, p.negative_prompt, 1, !p.encode_empty_negative, &pu, &err),
            GS_OK);
        char key[128], what[128];
        extra_conditioning(m, &p, &pc, y);
        assert_true(snprintf(key, sizeof key, "pipe.%s.vector_c", rs[i].name) < (int)sizeof key);
        assert_true(snprintf(what, sizeof what, "%s vector_c", rs[i].name) < (int)sizeof what);
        assert_true(compare(what, y, key, 1576) < COND_REL_L2);
        if (p.cfg_scale != 1.0f) { /* a one-pass recipe has no negative */
            extra_conditioning(m, &p, &pu, y);
            assert_true(snprintf(key, sizeof key, "pipe.%s.vector_u", rs[i].name) <
                        (int)sizeof key);
            assert_true(snprintf(what, sizeof what, "%s vector_u", rs[i].name) < (int)sizeof what);
            assert_true(compare(what, y, key, 1576) < COND_REL_L2);
        }
        prompt_cond_free(&pc);
        prompt_cond_free(&pu);
    }
    free(y);
    gs_model_free(m);
    gs_engine_free(eng);
}

static void sdxl_conditioning_matches(void **state)
{
    (void)state;
    golden_select(sdxl.golden);
    gs_engine *eng = engine_f32();
    gs_model *m = load(eng, sdxl.model);
    assert_int_equal(m->text_width, 64);
    assert_int_equal(m->pooled_width, 40);
    assert_int_equal(m->adm_channels, 1576);
    json_error_t jerr;
    json_t *conds = json_load_file(fixture_path("sdxl/conditioning.json"), 0, &jerr);
    assert_non_null(conds);
    size_t i;
    json_t *c;
    float *y = malloc(1576 * sizeof *y);
    json_array_foreach(conds, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *prompt = json_string_value(json_object_get(c, "prompt"));
        int negative = json_is_true(json_object_get(c, "is_negative_prompt"));
        prompt_cond pc;
        gi_error err = {0};
        assert_int_equal(encode_prompt(eng, m, prompt, 1, negative, &pc, &err), GS_OK);
        char key[128], what[128];
        snprintf(key, sizeof key, "cond.%s.context", name);
        snprintf(what, sizeof what, "%s context", name);
        assert_true(compare(what, pc.ctx, key, (size_t)pc.tokens * 64) < COND_REL_L2);
        snprintf(key, sizeof key, "cond.%s.time_ids", name);
        double *ids = golden_f64(key, NULL);
        vector_of(m, &pc, ids, y);
        free(ids);
        snprintf(key, sizeof key, "cond.%s.vector", name);
        snprintf(what, sizeof what, "%s vector", name);
        assert_true(compare(what, y, key, 1576) < COND_REL_L2);
        prompt_cond_free(&pc);
    }
    json_decref(conds);

    /* A1111's prompt rules per encoder (emphasis, BREAK, chunks, padding 49407 / 0) */
    json_t *prompts = json_load_file(fixture_path("sdxl/a1111-prompts.json"), 0, &jerr);
    assert_non_null(prompts);
    const double size64[6] = {64, 64, 0, 0, 64, 64};
    json_array_foreach(prompts, i, c)
    {
        int idx = (int)json_integer_value(json_object_get(c, "index"));
        const char *prompt = json_string_value(json_object_get(c, "prompt"));
        prompt_cond pc;
        gi_error err = {0};
        assert_int_equal(encode_prompt(eng, m, prompt, 1, 0, &pc, &err), GS_OK);
        char key[128], what[128];
        snprintf(key, sizeof key, "a1111.%d.context", idx);
        snprintf(what, sizeof what, "a1111.%d context", idx);
        assert_true(compare(what, pc.ctx, key, (size_t)pc.tokens * 64) < COND_REL_L2);
        vector_of(m, &pc, size64, y);
        snprintf(key, sizeof key, "a1111.%d.vector", idx);
        snprintf(what, sizeof what, "a1111.%d vector", idx);
        assert_true(compare(what, y, key, 1576) < COND_REL_L2);
        prompt_cond_free(&pc);
    }
    json_decref(prompts);
    free(y);
    gs_model_free(m);
    gs_engine_free(eng);
}

static void sd2_conditioning_matches(void **state)
{
    (void)state;
    golden_select(sd2.golden);
    gs_engine *eng = engine_f32();
    gs_model *m = load(eng, sd2.model);
    assert_int_equal(m->text_width, 16);
    assert_int_equal(m->pooled_width, 0);
    json_error_t jerr;
    json_t *prompts = json_load_file(fixture_path("sd2/a1111-prompts.json"), 0, &jerr);
    assert_non_null(prompts);
    size_t i;
    json_t *c;
    json_array_foreach(prompts, i, c)
    {
        int idx = (int)json_integer_value(json_object_get(c, "index"));
        const char *prompt = json_string_value(json_object_get(c, "prompt"));
        /* clip skip 2 changes nothing on SD2: it always takes the penultimate block */
        for (int skip = 1; skip <= 2; skip++) {
            prompt_cond pc;
            gi_error err = {0};
            assert_int_equal(encode_prompt(eng, m, prompt, skip, 1, &pc, &err), GS_OK);
            assert_null(pc.pooled);
            char key[64], what[64];
            snprintf(key, sizeof key, "a1111.%d.cond", idx);
            snprintf(what, sizeof what, "a1111.%d cond (skip %d)", idx, skip);
            assert_true(compare(what, pc.ctx, key, (size_t)pc.tokens * 16) < COND_REL_L2);
            prompt_cond_free(&pc);
        }
    }
    json_decref(prompts);
    gs_model_free(m);
    gs_engine_free(eng);
}

/* ---- recipes ---- */

/* fc's recipes into rs[16]; their count, at least fc's minimum. */
static int family_recipes(const family_case *fc, recipe *rs)
{
    char file[64];
    snprintf(file, sizeof file, "%s/recipes.json", fc->dir);
    int n = recipes_load_file(file, rs, 16);
    assert_true(n >= fc->min_recipes);
    return n;
}

static void run_recipes(const family_case *fc)
{
    golden_select(fc->golden);
    gs_engine *eng = engine_f32();
    gs_model *m = load(eng, fc->model);
    recipe rs[16];
    int n = family_recipes(fc, rs);
    for (int i = 0; i < n; i++) {
        gs_params p;
        recipe_params(&rs[i], &p);
        gs_result *res = NULL;
        gs_status st = gs_generate(eng, m, &p, NULL, NULL, &res);
        if (st != GS_OK)
            fprintf(stderr, "%s/%s: %s\n", fc->dir, rs[i].name, gs_engine_errmsg(eng));
        assert_int_equal(st, GS_OK);
        int maxd = golden_result_max_diff(rs[i].name, res, NULL);
        printf("%s pipe.%-30s max |diff| %d levels\n", fc->dir, rs[i].name, maxd);
        gs_timings tm;
        gs_result_timings(res, &tm);
        /* guidance 1 (the Turbo recipes): one UNet pass per image, no negative */
        assert_int_equal(tm.unet_batch, p.cfg_scale == 1.0f ? p.batch_size : 2 * p.batch_size);
        assert_true(maxd <= 2); /* the bound in f32 (the README expects 1-2) */
        gs_result_free(res);
    }
    gs_model_free(m);
    gs_engine_free(eng);
}

static void sd2_recipes_match(void **state)
{
    (void)state;
    run_recipes(&sd2);
}

static void sdxl_recipes_match(void **state)
{
    (void)state;
    run_recipes(&sdxl);
}

/* Every recipe of fc through m against its f32 reference image: mean under 1.5
   levels and worst pixel within issue 11's 8, except that with v_mean_only the
   v recipes are held to a mean under 8 (bf16's rounding, read as v: below). */
static void recipes_stay_close(gs_engine *eng, gs_model *m, const family_case *fc,
                               const char *label, int v_mean_only)
{
    recipe rs[16];
    int n = family_recipes(fc, rs);
    int worst = 0;
    double worst_mean = 0;
    for (int i = 0; i < n; i++) {
        gs_params p;
        recipe_params(&rs[i], &p);
        gs_result *res = NULL;
        assert_int_equal(gs_generate(eng, m, &p, NULL, NULL, &res), GS_OK);
        double mean;
        int maxd = golden_result_diff(rs[i].name, res, &mean);
        printf("%s %s pipe.%-30s mean |diff| %.2f, max %d levels\n", label, fc->dir, rs[i].name,
               mean, maxd);
        if (v_mean_only && p.prediction == GS_PREDICTION_V) {
            assert_true(mean < 8.0);
        } else {
            assert_true(mean < 1.5);
            assert_true(maxd <= 8);
        }
        worst = maxd > worst ? maxd : worst;
        worst_mean = mean > worst_mean ? mean : worst_mean;
        gs_result_free(res);
    }
    printf("%s %s: worst mean %.2f, worst pixel %d levels\n", label, fc->dir, worst_mean, worst);
}

/* bf16 against the f32 reference images, per family: mean and worst |diff| of
   every recipe. Twice where this CPU's bf16 engine is not the one of AMX and
   Zen 4 CPUs: once as it runs, once as those run it (activations rounded to
   bf16 for every product, attention and the Winograd convolutions in bf16;
   their products are emulated exactly where oneDNN has no bf16 matmul).
   Bounds: the 8 levels worst and SD1's 1.5 mean for ε and SDXL
   recipes (measured <= 5 and <= 0.8 both ways). The v recipes read this
   random UNet's output as v, which multiplies any error of it about eightfold
   (the same weights read as ε stay within 5 levels): measured worst 15 levels
   with f32 activations and 53 as AMX/Zen 4 run it, mean 1.1 and 4.8; they are
   held to a mean under 8 levels, which a wrong layout or a dropped term
   exceeds many times over (bench/RESULTS.md section 27). */
static void bf16_recipes_stay_close(void **state)
{
    (void)state;
    const family_case *cs[] = {&sd2, &sdxl};
    for (int as_native = 0; as_native < 2; as_native++) {
        for (int c = 0; c < 2; c++) {
            const family_case *fc = cs[c];
            golden_select(fc->golden);
            gs_engine_options eo;
            gs_engine_options_init(&eo);
            eo.threads = 2;
            eo.precision = GS_PRECISION_BF16;
            gs_engine *eng = NULL;
            assert_int_equal(gs_engine_create(&eo, &eng), GS_OK);
            if (as_native && !engine_emulate_bf16_fast(eng)) {
                gs_engine_free(eng); /* the first pass ran it so */
                return;
            }
            gs_model *m = load(eng, fc->model);
            recipes_stay_close(eng, m, fc, as_native ? "bf16 as AMX/Zen 4" : "bf16", 1);
            gs_model_free(m);
            gs_engine_free(eng);
        }
    }
}

/* An engine left to choose where bf16 is the fast choice (emulated where it
   is not): bf16, the VAE on f32 activations; the ε and SDXL recipes within 8
   levels, as bf16_recipes_stay_close holds them (the v recipes of an ε file
   read as v by the job stay in bf16: mean only). */
static void auto_precision_keeps_the_vae_on_f32(void **state)
{
    (void)state;
    const family_case *cs[] = {&sd2, &sdxl};
    for (int c = 0; c < 2; c++) {
        const family_case *fc = cs[c];
        golden_select(fc->golden);
        gs_engine_options eo;
        gs_engine_options_init(&eo);
        eo.threads = 2;
        gs_engine *eng = NULL;
        assert_int_equal(gs_engine_create(&eo, &eng), GS_OK);
        engine_emulate_bf16_fast(eng);
        gs_model *m = load(eng, fc->model);
        gs_model_info info;
        gs_model_get_info(m, &info);
        assert_string_equal(info.compute_dtype, "bf16");
        assert_string_equal(info.vae_matmul_dtype, "f32");
        recipes_stay_close(eng, m, fc, "auto (bf16, VAE on f32)", 1);
        gs_model_free(m);
        gs_engine_free(eng);
    }
}

/* f16 weights (f32 activations, the weights widened for every product) on
   every CPU: issue 11's 8 levels on every recipe, the v ones included (bf16
   weights alone put those at 15: bench/RESULTS.md section 27). */
static void f16_recipes_stay_close(void **state)
{
    (void)state;
    const family_case *cs[] = {&sd2, &sdxl};
    for (int c = 0; c < 2; c++) {
        const family_case *fc = cs[c];
        golden_select(fc->golden);
        gs_engine_options eo;
        gs_engine_options_init(&eo);
        eo.threads = 2;
        eo.precision = GS_PRECISION_F16;
        gs_engine *eng = NULL;
        assert_int_equal(gs_engine_create(&eo, &eng), GS_OK);
        gs_model *m = load(eng, fc->model);
        gs_model_info info;
        gs_model_get_info(m, &info);
        assert_string_equal(info.compute_dtype, "f16");
        assert_string_equal(info.matmul_dtype, "f32");
        recipes_stay_close(eng, m, fc, "f16", 0);
        gs_model_free(m);
        gs_engine_free(eng);
    }
}

/* An engine left to choose its precision, on a CPU where it picks bf16 (as
   AMX and Zen 4 CPUs run it, emulated elsewhere), computes a v-prediction
   model in f16 (f32 activations): issue 11's 8 levels on every recipe, where
   bf16 puts the v ones 38-66 levels off. Whether the file says v or the guess
   does (the networks then load again in f16, in a one-shot load too); ε
   models stay bf16. */
static void auto_precision_takes_f16_for_v_models(void **state)
{
    (void)state;
    char dir[] = "/tmp/gesso-fam-XXXXXX", says_v[256], silent[256];
    assert_non_null(mkdtemp(dir));
    snprintf(says_v, sizeof says_v, "%s/v.safetensors", dir);
    snprintf(silent, sizeof silent, "%s/silent.safetensors", dir);
    sd2_copy_edited(says_v, PREDICTION_KEY, "\"epsilon\"", "\"v\"      ");
    sd2_copy_edited(silent, PREDICTION_KEY, "prediction_type", "prediction_note");
    golden_select(sd2.golden);
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = 2;
    gs_engine *eng = NULL;
    assert_int_equal(gs_engine_create(&eo, &eng), GS_OK);
    engine_emulate_bf16_fast(eng);
    eng->test_guess_v = 1;
    gs_model_info info;

    gs_model *m = load(eng, sd2.model);
    gs_model_get_info(m, &info);
    assert_int_equal(info.prediction, GS_PREDICTION_EPS);
    assert_string_equal(info.compute_dtype, "bf16");
    gs_model_free(m);

    const char *paths[] = {says_v, silent, silent};
    for (int i = 0; i < 3; i++) {
        m = NULL;
        if (i < 2)
            assert_int_equal(gs_model_load(eng, paths[i], &m), GS_OK);
        else
            assert_int_equal(gs_model_load_one_shot(eng, paths[i], &m), GS_OK);
        if (i < 2) {
            gs_model_get_info(m, &info);
            assert_int_equal(info.prediction, GS_PREDICTION_V);
            assert_string_equal(info.compute_dtype, "f16");
            assert_string_equal(info.matmul_dtype, "f32");
        }
        recipes_stay_close(eng, m, &sd2,
                           i == 0   ? "auto, says v"
                           : i == 1 ? "auto, guessed v"
                                    : "auto, guessed v, one-shot",
                           0);
        gs_model_free(m);
    }
    gs_engine_free(eng);
    unlink(says_v);
    unlink(silent);
    rmdir(dir);
}

/* A prepared file of each family loads in place and draws the same image as
   the original (f32: bit for bit); a prepared v model stays a v model. */
static void prepared_files_of_every_family(void **state)
{
    (void)state;
    const family_case *cs[] = {&sd2, &sdxl};
    for (size_t i = 0; i < 2; i++) {
        golden_select(cs[i]->golden);
        char dir[] = "/tmp/gesso-famprep-XXXXXX", path[300];
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/prepared.safetensors", dir);
        gs_engine *eng = engine_f32();
        assert_int_equal(gs_checkpoint_prepare(eng, fixture_path(cs[i]->model), path), GS_OK);
        gs_checkpoint_info ci;
        char msg[256];
        assert_int_equal(gs_checkpoint_inspect(path, &ci, msg, sizeof msg), GS_OK);
        assert_true(ci.prepared);
        assert_string_equal(ci.family_name, cs[i]->family);
        gs_model *orig = load(eng, cs[i]->model), *prep = NULL;
        assert_int_equal(gs_model_load(eng, path, &prep), GS_OK);
        gs_params p;
        gs_params_init(&p);
        p.prompt = "a lighthouse";
        p.seed = 3;
        p.steps = 2;
        p.width = p.height = 64;
        p.sampler = "euler";
        gs_result *a = NULL, *b = NULL;
        assert_int_equal(gs_generate(eng, orig, &p, NULL, NULL, &a), GS_OK);
        assert_int_equal(gs_generate(eng, prep, &p, NULL, NULL, &b), GS_OK);
        const gs_image *ia = gs_result_image(a, 0), *ib = gs_result_image(b, 0);
        assert_memory_equal(ia->pixels, ib->pixels, (size_t)64 * 64 * 3);
        gs_result_free(a);
        gs_result_free(b);
        gs_model_free(orig);
        gs_model_free(prep);
        gs_engine_free(eng);
        assert_int_equal(test_remove_tree(dir), 0);
    }
}

/* ---- the same through the CLI and the service ---- */

static int image_vs_golden(const char *png, const char *name)
{
    gs_image *im = NULL;
    char msg[256];
    if (gs_image_load(png, &im, msg, sizeof msg) != GS_OK)
        fail_msg("%s: %s", png, msg);
    int maxd = golden_image_max_diff(name, im);
    gs_image_free(im);
    return maxd;
}

static void sd2_recipe_through_the_cli(void **state)
{
    (void)state;
    golden_select(sd2.golden);
    char dir[] = "/tmp/gesso-famcli-XXXXXX", cmd[2048], out[300];
    assert_non_null(mkdtemp(dir));
    snprintf(out, sizeof out, "%s/euler.png", dir);
    snprintf(
        cmd, sizeof cmd,
        "%s generate -q -m %s -p 'A lighthouse at dusk, oil painting, highly detailed' -n blurry "
        "-s 42 --steps 8 --cfg-scale 7 --sampler euler --scheduler normal -W 64 -H 64 "
        "--precision f32 -t 2 -o %s",
        GS_GESSO_BIN, fixture_path(sd2.model), out);
    assert_int_equal(system(cmd), 0);
    int maxd = image_vs_golden(out, "euler");
    printf("sd2 euler through the CLI: max |diff| %d levels\n", maxd);
    assert_true(maxd <= 2);
    assert_int_equal(test_remove_tree(dir), 0);
}

static void sdxl_job_through_the_service(void **state)
{
    (void)state;
    golden_select(sdxl.golden);
    char dir[] = "/tmp/gesso-famsrv-XXXXXX", cmd[2048], base[64], path[256], xl[600];
    assert_non_null(mkdtemp(dir));
    snprintf(xl, sizeof xl, "%s", fixture_path(sdxl.model)); /* fixture_path's buffer is shared */
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/models && ln -s %s %s/models/tiny-sdxl.safetensors && "
             "ln -s %s %s/models/tiny-sd2.safetensors",
             dir, xl, dir, fixture_path(sd2.model), dir);
    assert_int_equal(system(cmd), 0);
    /* the goldens are f32 results; auto would pick bf16 on CPUs where it is faster */
    const char *const extra[] = {"--precision", "f32", NULL};
    pid_t server = test_serve_start(base, dir, extra);
    char *body = NULL;
    assert_int_equal(test_http(base, dir, "GET", "/v1/models", NULL, &body), 200);
    assert_non_null(strstr(body, "\"family\":\"sdxl\""));
    assert_non_null(strstr(body, "\"family\":\"sd2\""));
    free(body);
    /* the micro_cond recipe: diffusers' (h, w) order in the fixture, named fields here */
    char *id = test_submit(
        base, dir, NULL,
        "{\"model\":\"tiny-sdxl\",\"prompt\":\"a photo of an astronaut riding a horse on mars\","
        "\"negative_prompt\":\"\",\"seed\":5,\"steps\":6,\"cfg_scale\":5,\"sampler\":\"euler\","
        "\"scheduler\":\"normal\",\"width\":64,\"height\":64,\"original_width\":768,"
        "\"original_height\":1024,\"crop_top\":64,\"crop_left\":32,\"target_width\":512,"
        "\"target_height\":512}");
    json_t *j = test_wait_job(base, dir, NULL, id, 600000);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
    json_decref(j);
    snprintf(path, sizeof path, "/v1/jobs/%s/images/0", id);
    assert_int_equal(test_http(base, dir, "GET", path, NULL, NULL), 200);
    snprintf(path, sizeof path, "%s/resp", dir);
    int maxd = image_vs_golden(path, "micro_cond");
    printf("sdxl micro_cond through the service: max |diff| %d levels\n", maxd);
    assert_true(maxd <= 2);
    free(id);
    /* what the new fields refuse */
    static const char *const bad[] = {
        "{\"model\":\"tiny-sdxl\",\"prediction\":\"x0\"}",
        "{\"model\":\"tiny-sdxl\",\"empty_negative\":\"drop\"}",
        "{\"model\":\"tiny-sdxl\",\"original_width\":-1}",
        "{\"model\":\"tiny-sdxl\",\"crop_top\":100000}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "%s/bad.json", dir);
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fputs(bad[i], fp);
        fclose(fp);
        int code = test_http(base, dir, "POST", "/v1/jobs", path, &body);
        printf("%s -> %d %s\n", bad[i], code, body ? body : "");
        assert_int_equal(code, 422); /* out_of_range, naming the field */
        free(body);
        body = NULL;
    }
    assert_int_equal(test_serve_stop(server), 0);
    assert_int_equal(test_remove_tree(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(inspect_names_the_family),
        cmocka_unit_test(other_families_are_named_and_refused),
        cmocka_unit_test(v_metadata_is_honoured),
        cmocka_unit_test(sdxl_conditioning_matches),
        cmocka_unit_test(sd2_conditioning_matches),
        cmocka_unit_test(sdxl_recipe_vectors_match),
        cmocka_unit_test(sd2_recipes_match),
        cmocka_unit_test(sdxl_recipes_match),
        cmocka_unit_test(bf16_recipes_stay_close),
        cmocka_unit_test(f16_recipes_stay_close),
        cmocka_unit_test(auto_precision_takes_f16_for_v_models),
        cmocka_unit_test(auto_precision_keeps_the_vae_on_f32),
        cmocka_unit_test(sd2_recipe_through_the_cli),
        cmocka_unit_test(sdxl_job_through_the_service),
        cmocka_unit_test(prepared_files_of_every_family),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
