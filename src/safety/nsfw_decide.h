/*
 * nsfw_decide - horde-safety's NSFWChecker.check_for_nsfw decision on the
 * similarities of one image with the predicate and concept texts of
 * nsfw_lists, without DeepDanbooru (reGen's optional anime tagger: an image
 * CLIP calls anime is judged by the post-anime concept thresholds alone).
 * The model info reGen passes is unused by the reference's decision (its use
 * is commented out there), so it is not an input here.
 */
#ifndef GS_NSFW_DECIDE_H
#define GS_NSFW_DECIDE_H

#include "safety/nsfw_lists.h"

typedef struct nsfw_result {
    int is_nsfw, is_csam;
    int is_anime, is_underage, neg_suspect; /* what drove them */
} nsfw_result;

/* Whether a negative prompt holds one of the reference's "adult" boosts once
   normalised as horde-safety's normalize_prompt does (weights removed,
   punctuation to spaces, spaced-out letters joined, spaces collapsed). */
int nsfw_negative_suspect(const char *negative_prompt);

/* pred_sim [l->n_pred], concept_sim [l->n_concept]: cosine similarities of the
   image with each text; rounded to 4 decimals here, as the reference does,
   before any comparison. */
void nsfw_decide(const nsfw_lists *l, const double *pred_sim, const double *concept_sim,
                 int neg_suspect, nsfw_result *r);

#endif
