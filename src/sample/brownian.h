/*
 * brownian - torchsde's BrownianTree, as k-diffusion's BrownianTreeNoiseSampler
 * builds it (tol 1e-6, pool_size 24, halfway tree), so that the DPM++ SDE
 * samplers draw the noise A1111 draws for a seed on the CPU.
 *
 * What is reproduced, step by step:
 *   - torchsde's BrownianInterval with halfway_tree: the dyadic tree over
 *     [t0, t1], every point rounded to 6 decimals as Python's round(x, 6)
 *     does, each query [ta, tb] split into the same nodes in the same order
 *     and their increments summed left to right in float32;
 *   - its seeds: numpy's SeedSequence(entropy = seed, spawn_key = (key,
 *     depth), pool_size = 24).generate_state(4) per node, generate_state(3)
 *     without a spawn key for the root (the hash itself, reimplemented and
 *     checked against numpy 1.24's values in test_brownian);
 *   - its draws: torch.randn(shape, generator = Generator().manual_seed(node
 *     seed)) in float32, which is rng.h's generator;
 *   - the Brownian bridge: left = (l/h)·W + √(l·r/h)·z, right = W − left,
 *     in float32 with Python scalars rounded to float, as torch computes it.
 * Not reproduced: A1111 on a GPU (torchsde then seeds a CUDA generator, whose
 * draws differ). torchsde's LRU cache only saves time; in its place a query
 * keeps the W's along its current path, so each tree node is drawn once per
 * query. A tree is a few numbers; the only memory is the caller's scratch.
 */
#ifndef GS_BROWNIAN_H
#define GS_BROWNIAN_H

#include <stddef.h>
#include <stdint.h>

#define BROWNIAN_POOL 24

/* numpy's SeedSequence(entropy, spawn_key = (key, depth) if has_key else (),
 * pool_size = BROWNIAN_POOL).generate_state(n_words), uint32 words. */
void brownian_seed_state(uint64_t entropy, int has_key, uint64_t key, uint64_t depth, uint32_t *out,
                         int n_words);

typedef struct brownian_tree {
    uint64_t entropy;  /* the seed */
    double t0, t1;     /* rounded ends */
    double root_scale; /* √(t1 − t0) of the ends as given */
    size_t n;          /* elements of one sample */
} brownian_tree;

/* Levels of the tree below the root: the 1e-6 grid over a range of up to
 * 2^30·1e-6 ≈ 1000 needs about 30. */
#define BROWNIAN_MAX_DEPTH 40
/* scratch floats brownian_increment needs for samples of n elements */
#define BROWNIAN_SCRATCH(n) ((size_t)(BROWNIAN_MAX_DEPTH + 3) * (n))

/* A tree over [t0, t1] (t0 < t1) with entropy seed, for samples of n floats. */
void brownian_init(brownian_tree *b, uint64_t seed, double t0, double t1, size_t n);

/* W(tb) − W(ta) into out [n], for t0 <= ta <= tb <= t1 (clamped into the
 * interval as torchsde does, with ta == tb giving 0). scratch: BROWNIAN_SCRATCH(n). */
void brownian_increment(const brownian_tree *b, double ta, double tb, float *out, float *scratch);

/* Python's round(x, 6): the double nearest the decimal x rounded half-even at
 * the sixth digit. */
double brownian_round6(double x);

#endif
