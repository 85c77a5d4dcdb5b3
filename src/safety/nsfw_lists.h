/*
 * nsfw_lists - horde-safety's NSFWChecker word lists and thresholds (its
 * _set_default_predicates / _set_default_concepts), and the combined lists it
 * derives from them (_refresh_predicates / _refresh_concepts): every predicate
 * and concept text CLIP compares an image with, in the reference's order, each
 * with the threshold its similarity must exceed.
 *
 * Thresholds are doubles added up in the reference's order, so a similarity
 * rounded to 4 decimals compares with them exactly as in Python.
 */
#ifndef GS_NSFW_LISTS_H
#define GS_NSFW_LISTS_H

#include "common/error.h"

typedef struct nsfw_term {
    const char *text; /* points into the static tables or nsfw_lists.own */
    double threshold;
} nsfw_term;

typedef struct nsfw_lists {
    nsfw_term *pred; /* [n_pred]: _all_predicates */
    int n_pred;
    nsfw_term *concept; /* [n_concept]: _all_nsfw_concepts */
    int n_concept;
    double *danger;     /* [n_pred]: _combined_underage_danger_concepts, NaN where absent */
    double *underage;   /* [n_pred]: _combined_underage_predicates, NaN where absent */
    double *post_anime; /* [n_concept]: nsfw_post_anime_concepts, NaN where absent */
    int anime[8];       /* predicate indices of the anime/cartoon predicates */
    int n_anime;
    int base_underage[16];    /* predicate indices of underage_predicates ... */
    double base_modifier[16]; /* ... and their underage_danger_modifiers */
    int n_base_underage;
    int teen, teens; /* predicate indices */
    int pair[10][2]; /* the PAIRS of the second pass, as predicate indices */
    int n_pair;
    char **own; /* the combined texts, freed with the lists */
    int n_own;
} nsfw_lists;

gs_status nsfw_lists_build(nsfw_lists *l, gi_error *err);
void nsfw_lists_free(nsfw_lists *l);
/* Index of text among the predicates, or -1. */
int nsfw_lists_pred(const nsfw_lists *l, const char *text);
int nsfw_lists_concept(const nsfw_lists *l, const char *text);

#endif
