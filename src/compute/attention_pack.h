/*
 * attention_pack - the f32 layout the one-pass attention kernels read a head's
 * keys and values in: keys transposed ([d][tkp], zero past tk; by panels of 16
 * keys for the AVX2 kernel) so a score tile loads whole vectors of keys,
 * values as rows padded to dp ([tkp][dp], zero-padded) so a value tile loads
 * whole vectors of channels.
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

/* The same with the keys by panels of 16 ([tkp / 16][d][16], tkp a multiple
   of 16): a 16-key score tile reads its keys in order, one 64-byte line per
   channel, instead of one line from each of d rows tkp apart (the AVX2
   kernel: 2-5 % faster at SD1.5's 4096 keys, 8 % at 1024; the AVX-512 one,
   two panels per 32-key tile: 5 % at 4096, 3 % at 1024). */
void attention_pack_head_panels(const float *k, const float *v, int kv_stride, int tk, int d,
                                int tkp, int dp, float *kt, float *vp);

#endif
