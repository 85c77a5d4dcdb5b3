/*
 * attention_pack - the f32 layout the one-pass attention kernels read a head's
 * keys and values in: keys transposed ([d][tkp], zero past tk) so a score
 * tile loads whole vectors of keys, values as rows padded to dp ([tkp][dp],
 * zero-padded) so a value tile loads whole vectors of channels.
 */
#ifndef GS_ATTENTION_PACK_H
#define GS_ATTENTION_PACK_H

/* Keys per row of the transposed keys for tk keys: whole blocks of 32 and 16
   floats more (64 bytes). A score tile reads one piece of every row per block
   of keys; at 4096 keys, rows 16 KB apart all fall in one L1 set and the rows
   of a head's block evicted each other. */
int attention_key_stride(int tk);

/* One (image, head): k and v point at its first key's channels, rows
   kv_stride apart. */
void attention_pack_head(const float *k, const float *v, int kv_stride, int tk, int d, int tkp,
                         int dp, float *kt, float *vp);

#endif
