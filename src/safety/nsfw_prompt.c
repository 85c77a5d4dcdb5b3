/*
 * nsfw_prompt - the "adult" boosts horde-safety's check_for_nsfw looks for in
 * the negative prompt once normalised (prompt_normalize). The boosts are
 * ASCII words, so a boost spelt in non-Latin letters is not found (unidecode
 * is not done).
 */
#include <string.h>

#include "common/alloc.h"
#include "safety/nsfw_decide.h"
#include "safety/prompt_normalize.h"

int nsfw_negative_suspect(const char *negative_prompt)
{
    static const char *const BOOSTS[] = {" mature", ",mature", " old",       ",old",
                                         "adult",   "elderly", "middle aged"};
    if (!negative_prompt || !*negative_prompt)
        return 0;
    char *s = gi_strdup(negative_prompt);
    if (!s || prompt_normalize(s) != 0) {
        gi_free(s);
        return 1; /* the suspect side lowers the underage thresholds: fail that way */
    }
    int hit = 0;
    for (size_t i = 0; i < sizeof BOOSTS / sizeof BOOSTS[0] && !hit; i++)
        hit = strstr(s, BOOSTS[i]) != NULL;
    gi_free(s);
    return hit;
}
