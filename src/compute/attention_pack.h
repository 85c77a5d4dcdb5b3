/*
 * attention_pack - the f32 layout the one-pass attention kernels read a head's
 * keys and values in: keys transposed by panels of 16 keys (zero past tk) so a
 * score tile loads whole vectors of keys in order, values as rows padded to dp
 * ([tkp][dp], zero-padded) so a value tile loads whole vectors of channels.
 */
#ifndef GS_ATTENTION_PACK_H
#define GS_ATTENTION_PACK_H

/* Keys a head's packing holds for tk keys: whole blocks of 32 and 16 more.
   The 16 kept keys' rows off 4 KB strides when keys were transposed row by row
   (rows 16 KB apart fell in one L1 set); by panels nothing reads rows tkp
   apart any more, and the 16 are 64 bytes of zeros per channel. */
int attention_key_stride(int tk);

/* One (image, head), k and v pointing at its first key's channels, rows
   kv_stride apart: keys by panels of 16 ([tkp / 16][d][16], tkp a multiple of
   16), so a 16-key score tile reads its keys in order, one 64-byte line per
   channel, instead of one line from each of d rows tkp apart (the AVX2
   kernel: 2-5 % faster at SD1.5's 4096 keys, 8 % at 1024; the AVX-512 one,
   two panels per 32-key tile: 5 % at 4096, 3 % at 1024). */
void attention_pack_head_panels(const float *k, const float *v, int kv_stride, int tk, int d,
                                int tkp, int dp, float *kt, float *vp);

#endif
