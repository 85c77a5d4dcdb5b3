/*
 * prompt_normalize - horde-safety's normalize_prompt: "(text:1.2)" weights
 * dropped to their text, every character that is neither a word character
 * nor a space (and '_') made a space, runs of three or more spaced-out single
 * characters ("a d u l t") joined, spaces collapsed. Python's \w is read as
 * ASCII letters, digits and underscore plus every non-ASCII byte (the letters
 * of a UTF-8 prompt); unidecode's transliteration is not done. Used by the
 * image check's negative-prompt boosts and the Horde worker's prompt filter.
 */
#ifndef GS_PROMPT_NORMALIZE_H
#define GS_PROMPT_NORMALIZE_H

/* Normalises the prompt in s in place (it never grows). 0, or -1 when out of
   memory (s is then partly normalised). */
int prompt_normalize(char *s);

#endif
