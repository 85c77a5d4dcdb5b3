/*
 * nsfw_lists - the tables of horde-safety's nsfw_checker_class.py (commit
 * ebea47ad), and their combination. A combined list is an insertion-ordered
 * map as Python's dict: adding a text that is there replaces its threshold
 * and keeps its place.
 */
#include "safety/nsfw_lists.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

typedef struct word {
    const char *text;
    double v;
} word;

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const double PREDICATE_DEFAULT = 0.202;

static const word PREFIXES[] = {
    {"photo of", 0}, {"painting of", 0.005}, {"illustration of", 0.075}, {"3d render of", 0.0125}};

static const word HUMAN_PARTS[] = {{"a boy", 0},
                                   {"boys", 0},
                                   {"a girl", 0},
                                   {"girls", 0},
                                   {"a teen", 0},
                                   {"a man", 0.01},
                                   {"men", 0},
                                   {"a woman", 0},
                                   {"a couple", 0},
                                   {"couple kissing", 0},
                                   {"a girl in a bikini", 0.01},
                                   {"girls in bikinis", 0.01}};

static const word HUMAN_ISOLATED[] = {{"boy", 0.194},   {"boys", 0.194},  {"man", 0.194},
                                      {"men", 0.194},   {"girl", 0.194},  {"girls", 0.194},
                                      {"woman", 0.194}, {"women", 0.194}, {"teenager", 0.194},
                                      {"teen", 0.19},   {"teens", 0.19}};

/* underage_predicates and, in the same order, underage_danger_modifiers */
static const word UNDERAGE[] = {{"child", 0.19},   {"children", 0.19},  {"young children", 0.189},
                                {"a baby", 0.19},  {"an infant", 0.19}, {"infants", 0.19},
                                {"toddler", 0.19}, {"toddlers", 0.19},  {"tween", 0.19},
                                {"tweens", 0.19},  {"lolicon", 0.20}};
static const double UNDERAGE_MODIFIER[] = {0.035,  0.035,  0.03,  0.0275, 0.0275, 0.0275,
                                           0.0275, 0.0275, 0.045, 0.045,  0.044};

static const word NSFW_PREDICATES[] = {{"18+", 0.20},
                                       {"explicit content", 0.21},
                                       {"erotica", 0.21},
                                       {"exposed erection", 0.215},
                                       {"close up of a vagina", 0.24},
                                       {"photo of vagina", 0.22},
                                       {"porn scene", 0.21},
                                       {"lesbian scene", 0.22},
                                       {"gay scene", 0.22}};

static const word ANIME[] = {{"japanese animation", 0.20},
                             {"Japanese cartoon", 0.20},
                             {"anime", 0.20},
                             {"cartoon", 0.20},
                             {"manga", 0.205}};

static const word NSFW_ISOLATED[] = {{"sexual", 0.2},  {"sexy", 0.22},   {"uncensored", 0.21},
                                     {"naked", 0.22},  {"nude", 0.22},   {"nsfw", 0.21},
                                     {"nudity", 0.21}, {"erotic", 0.21}, {"fucking", 0.21}};

static const word NSFW_PARTS[] = {{"explicit content", 0.20},
                                  {"exposed erection", 0.21},
                                  {"close up of a vagina", 0.24},
                                  {"a womans legs spread, vagina exposed", 0.23},
                                  {"exposed vagina", 0.22},
                                  {"erotica", 0.21},
                                  {"blowjob", 0.22},
                                  {"vagina", 0.21},
                                  {"an erection", 0.21},
                                  {"porn", 0.2},
                                  {"porn scene", 0.20},
                                  {"lesbian scene", 0.22},
                                  {"gay scene", 0.22},
                                  {"a nude man's ass", 0.21},
                                  {"a nude woman's ass", 0.21},
                                  {"exposed breasts", 0.22},
                                  {"girl in a bikini", 0.22},
                                  {"underwear", 0.21},
                                  {"lingerie", 0.21}};

/* CLIP "synthetic" texts (found by optimising tokens), as the reference spells them */
static const word NSFW_SYNTH[] = {
    {"quintesstain corinblazing dean n blondes bronxsmug demi pilebarcelonluisspandex ,... ...#",
     0.205},
    {"liam paying awwww hubby ... feeding mr  omg dropbox brad(@ zaynwoo \u2026.. burr", 0.205},
    {"nel ov lexi lov thwatchin thalaireason zz big oj anticipation \u0e1aci ov prick", 0.205},
    {"somehow dang rochelle sizzgusta imrankhanhalftime rankings equities exists skynews -- - "
     "smokin epidemiq",
     0.205},
    {"asses zeit brunette brunette bikini meatlessdesired androunprecearomatic limestone "
     "juxtatweetapicturevalmelee photo",
     0.205}};

static const word POST_ANIME[] = {{"nsfw", 0.21},
                                  {"18+", 0.215},
                                  {"nipples", 0.20},
                                  {"nipple", 0.20},
                                  {"naked child", 0.19},
                                  {"naked breasts", 0.205},
                                  {"illustration of naked breasts", 0.205},
                                  {"exposed breasts", 0.205},
                                  {"illustration of exposed breasts", 0.205},
                                  {"nudity", 0.195},
                                  {"nude", 0.195},
                                  {"naked", 0.22},
                                  {"cartoon porn", 0.20},
                                  {"sex", 0.21}};

static const char *const PAIRS[][2] = {{"tween", "tweens"},      {"tweens", "tween"},
                                       {"teen", "teens"},        {"teens", "teen"},
                                       {"an infant", "infants"}, {"infants", "an infant"},
                                       {"toddler", "toddlers"},  {"toddlers", "toddler"},
                                       {"child", "children"},    {"children", "child"}};

/* ---- an insertion-ordered map of texts to thresholds ---- */

typedef struct omap {
    nsfw_term *t;
    int n, cap;
} omap;

static int omap_find(const omap *m, const char *text)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->t[i].text, text) == 0)
            return i;
    return -1;
}

static int omap_put(omap *m, const char *text, double v)
{
    int i = omap_find(m, text);
    if (i >= 0) {
        m->t[i].threshold = v;
        return 0;
    }
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 64;
        nsfw_term *t = gi_realloc(m->t, (size_t)cap * sizeof *t);
        if (!t)
            return -1;
        m->t = t;
        m->cap = cap;
    }
    m->t[m->n++] = (nsfw_term){text, v};
    return 0;
}

/* "prefix part", kept in l->own; NULL when out of memory. */
static const char *joined(nsfw_lists *l, const char *prefix, const char *part)
{
    size_t n = strlen(prefix) + strlen(part) + 2;
    char *s = gi_malloc(n);
    char **own = s ? gi_realloc(l->own, (size_t)(l->n_own + 1) * sizeof *own) : NULL;
    if (!own) {
        gi_free(s);
        return NULL;
    }
    snprintf(s, n, "%s %s", prefix, part);
    l->own = own;
    l->own[l->n_own++] = s;
    return s;
}

static double danger_of(int u)
{
    return UNDERAGE_MODIFIER[u] + UNDERAGE[u].v; /* modifier + predicate, the reference's order */
}

/* The five dicts _refresh_predicates merges, in its order. */
static int build_predicates(nsfw_lists *l, omap *human, omap *cu, omap *cd, omap *nsfw)
{
    int ok = 1;
    for (int i = 0; i < COUNT(HUMAN_ISOLATED); i++)
        ok &= omap_put(human, HUMAN_ISOLATED[i].text, HUMAN_ISOLATED[i].v) == 0;
    for (int u = 0; u < COUNT(UNDERAGE); u++) {
        ok &= omap_put(cu, UNDERAGE[u].text, UNDERAGE[u].v) == 0;
        ok &= omap_put(cd, UNDERAGE[u].text, danger_of(u)) == 0;
    }
    for (int i = 0; i < COUNT(NSFW_PREDICATES); i++)
        ok &= omap_put(nsfw, NSFW_PREDICATES[i].text, NSFW_PREDICATES[i].v) == 0;
    for (int p = 0; p < COUNT(PREFIXES) && ok; p++) {
        const word *pre = &PREFIXES[p];
        for (int i = 0; i < COUNT(HUMAN_PARTS); i++) {
            const char *t = joined(l, pre->text, HUMAN_PARTS[i].text);
            ok &= t && omap_put(human, t, PREDICATE_DEFAULT + pre->v + HUMAN_PARTS[i].v) == 0;
        }
        for (int i = 0; i < COUNT(NSFW_PREDICATES); i++) {
            const char *t = joined(l, pre->text, NSFW_PREDICATES[i].text);
            ok &= t && omap_put(nsfw, t, pre->v + NSFW_PREDICATES[i].v) == 0;
        }
        for (int u = 0; u < COUNT(UNDERAGE); u++) {
            if (strcmp(UNDERAGE[u].text, "lolicon") == 0)
                continue;
            const char *t = joined(l, pre->text, UNDERAGE[u].text);
            ok &= t && omap_put(cd, t, pre->v + danger_of(u)) == 0;
            ok &= omap_put(cu, t, pre->v + UNDERAGE[u].v) == 0;
        }
    }
    return ok ? 0 : -1;
}

static int build_concepts(nsfw_lists *l, omap *c)
{
    int ok = 1;
    for (int i = 0; i < COUNT(NSFW_ISOLATED); i++)
        ok &= omap_put(c, NSFW_ISOLATED[i].text, NSFW_ISOLATED[i].v) == 0;
    for (int i = 0; i < COUNT(NSFW_PARTS); i++)
        ok &= omap_put(c, NSFW_PARTS[i].text, NSFW_PARTS[i].v) == 0;
    for (int p = 0; p < COUNT(PREFIXES) && ok; p++)
        for (int i = 0; i < COUNT(NSFW_PARTS); i++) {
            const char *t = joined(l, PREFIXES[p].text, NSFW_PARTS[i].text);
            ok &= t && omap_put(c, t, PREFIXES[p].v + NSFW_PARTS[i].v) == 0;
        }
    for (int i = 0; i < COUNT(NSFW_SYNTH); i++)
        ok &= omap_put(c, NSFW_SYNTH[i].text, NSFW_SYNTH[i].v) == 0;
    return ok ? 0 : -1;
}

static int merge(omap *all, const omap *m)
{
    for (int i = 0; i < m->n; i++)
        if (omap_put(all, m->t[i].text, m->t[i].threshold) != 0)
            return -1;
    return 0;
}

/* The per-predicate views the decision reads by index. */
static int index_lists(nsfw_lists *l, const omap *cu, const omap *cd)
{
    l->danger = gi_malloc((size_t)l->n_pred * sizeof *l->danger);
    l->underage = gi_malloc((size_t)l->n_pred * sizeof *l->underage);
    l->post_anime = gi_malloc((size_t)l->n_concept * sizeof *l->post_anime);
    if (!l->danger || !l->underage || !l->post_anime)
        return -1;
    for (int i = 0; i < l->n_pred; i++) {
        int d = omap_find(cd, l->pred[i].text), u = omap_find(cu, l->pred[i].text);
        l->danger[i] = d >= 0 ? cd->t[d].threshold : NAN;
        l->underage[i] = u >= 0 ? cu->t[u].threshold : NAN;
    }
    for (int j = 0; j < l->n_concept; j++) {
        l->post_anime[j] = NAN;
        for (int k = 0; k < COUNT(POST_ANIME); k++)
            if (strcmp(POST_ANIME[k].text, l->concept[j].text) == 0)
                l->post_anime[j] = POST_ANIME[k].v;
    }
    for (int i = 0; i < COUNT(ANIME); i++)
        l->anime[l->n_anime++] = nsfw_lists_pred(l, ANIME[i].text);
    for (int u = 0; u < COUNT(UNDERAGE); u++) {
        l->base_underage[l->n_base_underage] = nsfw_lists_pred(l, UNDERAGE[u].text);
        l->base_modifier[l->n_base_underage++] = UNDERAGE_MODIFIER[u];
    }
    for (int i = 0; i < COUNT(PAIRS); i++) {
        l->pair[i][0] = nsfw_lists_pred(l, PAIRS[i][0]);
        l->pair[i][1] = nsfw_lists_pred(l, PAIRS[i][1]);
        l->n_pair++;
    }
    l->teen = nsfw_lists_pred(l, "teen");
    l->teens = nsfw_lists_pred(l, "teens");
    return 0;
}

gs_status nsfw_lists_build(nsfw_lists *l, gi_error *err)
{
    omap human = {0}, cu = {0}, cd = {0}, nsfw = {0}, all = {0}, concepts = {0};
    memset(l, 0, sizeof *l);
    int rc = build_predicates(l, &human, &cu, &cd, &nsfw);
    for (int i = 0; i < COUNT(ANIME) && rc == 0; i++)
        rc = omap_put(&all, ANIME[i].text, ANIME[i].v);
    if (rc == 0)
        rc = merge(&all, &human) | merge(&all, &cu) | merge(&all, &nsfw);
    if (rc == 0)
        rc = build_concepts(l, &concepts);
    l->pred = all.t;
    l->n_pred = all.n;
    l->concept = concepts.t;
    l->n_concept = concepts.n;
    if (rc == 0)
        rc = index_lists(l, &cu, &cd);
    gi_free(human.t);
    gi_free(cu.t);
    gi_free(cd.t);
    gi_free(nsfw.t);
    if (rc != 0) {
        nsfw_lists_free(l);
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    }
    return GS_OK;
}

int nsfw_lists_pred(const nsfw_lists *l, const char *text)
{
    for (int i = 0; i < l->n_pred; i++)
        if (strcmp(l->pred[i].text, text) == 0)
            return i;
    return -1;
}

int nsfw_lists_concept(const nsfw_lists *l, const char *text)
{
    for (int i = 0; i < l->n_concept; i++)
        if (strcmp(l->concept[i].text, text) == 0)
            return i;
    return -1;
}

void nsfw_lists_free(nsfw_lists *l)
{
    for (int i = 0; i < l->n_own; i++)
        gi_free(l->own[i]);
    gi_free(l->own);
    gi_free(l->pred);
    gi_free(l->concept);
    gi_free(l->danger);
    gi_free(l->underage);
    gi_free(l->post_anime);
    memset(l, 0, sizeof *l);
}
