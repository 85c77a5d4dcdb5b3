/*
 * nsfw_decide - the decision of check_for_nsfw, step by step in the
 * reference's order: anime or not, a human subject, NSFW concepts, then the
 * underage passes and their pairs. Comparisons are strict (>) as there.
 */
#include "safety/nsfw_decide.h"

#include <math.h>
#include <string.h>

static double round4(double v)
{
    return nearbyint(v * 10000.0) / 10000.0;
}

/* ---- anime ---- */

static int decide_anime(const nsfw_lists *l, const double *s)
{
    int anime = 0, all_weak = 1;
    for (int i = 0; i < l->n_anime; i++) {
        int k = l->anime[i];
        if (s[k] > l->pred[k].threshold) {
            anime = 1;
            all_weak &= s[k] < 0.208;
        }
    }
    /* the anime texts match too broadly: a clear photo predicate wins */
    if (anime && all_weak)
        for (int k = 0; k < l->n_pred; k++)
            if (strstr(l->pred[k].text, "photo") && s[k] > 0.24)
                return 0;
    return anime;
}

/* ---- NSFW ---- */

static int subject_requiring_check(const nsfw_lists *l, const double *s)
{
    for (int k = 0; k < l->n_pred; k++)
        if (s[k] > l->pred[k].threshold || (!isnan(l->danger[k]) && s[k] > l->danger[k]))
            return 1;
    return 0;
}

static int decide_nsfw(const nsfw_lists *l, const double *c, int anime)
{
    int nsfw = 0;
    for (int j = 0; j < l->n_concept; j++) {
        double th = l->concept[j].threshold;
        if (anime) {
            if (isnan(l->post_anime[j]))
                continue; /* most concepts are inaccurate on anime */
            th = l->post_anime[j];
        }
        if (c[j] > th)
            nsfw = 1;
    }
    return nsfw;
}

/* ---- underage ---- */

/* found[k]: predicate k is among found_csam_predicates. */
static int second_pass(const nsfw_lists *l, const double *s, int anime, int neg_suspect,
                       unsigned char *found)
{
    if (anime) {
        double mult = 0.05;
        if (neg_suspect)
            mult -= 0.005;
        if (s[l->teen] > l->pred[l->teen].threshold)
            found[l->teen] = 1;
        if (s[l->teens] > l->pred[l->teens].threshold)
            found[l->teens] = 1;
        for (int i = 0; i < l->n_base_underage; i++) {
            int k = l->base_underage[i];
            const char *t = l->pred[k].text;
            if (strcmp(t, "lolicon") == 0 || strcmp(t, "shota") == 0 || strstr(t, "photo"))
                continue;
            if (s[k] > l->underage[k] + l->base_modifier[i] * mult)
                found[k] = 1;
        }
    } else {
        double mult = 0.4;
        if (neg_suspect)
            mult *= 0.5;
        for (int k = 0; k < l->n_pred; k++)
            if (!isnan(l->underage[k]) &&
                s[k] > l->underage[k] + ((l->danger[k] - l->underage[k]) * mult))
                found[k] = 1;
    }
    /* of a singular and its plural, only the stronger counts */
    for (int i = 0; i < l->n_pair; i++) {
        int a = l->pair[i][0], b = l->pair[i][1];
        if (found[a] && found[b]) {
            if (s[a] > s[b])
                found[b] = 0;
            else
                found[a] = 0;
        }
    }
    int n = 0;
    for (int k = 0; k < l->n_pred; k++)
        n += found[k];
    return n >= 2;
}

static int decide_underage(const nsfw_lists *l, const double *s, int anime, int neg_suspect)
{
    unsigned char found[512] = {0};
    if (l->n_pred > (int)sizeof found)
        return 1; /* cannot happen with the built-in lists; fail closed */
    for (int k = 0; k < l->n_pred; k++)
        if (!isnan(l->danger[k]) && s[k] > l->danger[k])
            return 1;
    return second_pass(l, s, anime, neg_suspect, found);
}

void nsfw_decide(const nsfw_lists *l, const double *pred_sim, const double *concept_sim,
                 int neg_suspect, nsfw_result *r)
{
    double s[512], c[512];
    memset(r, 0, sizeof *r);
    if (l->n_pred > 512 || l->n_concept > 512) {
        r->is_nsfw = r->is_csam = 1; /* fail closed */
        return;
    }
    for (int k = 0; k < l->n_pred; k++)
        s[k] = round4(pred_sim[k]);
    for (int j = 0; j < l->n_concept; j++)
        c[j] = round4(concept_sim[j]);
    r->neg_suspect = neg_suspect;
    r->is_anime = decide_anime(l, s);
    if (subject_requiring_check(l, s))
        r->is_nsfw = decide_nsfw(l, c, r->is_anime);
    r->is_underage = decide_underage(l, s, r->is_anime, neg_suspect);
    r->is_csam = r->is_underage && r->is_nsfw;
}
