/*
 * brownian - torchsde's halfway Brownian tree with numpy's seed derivation
 * and torch's CPU generator (see brownian.h for what is reproduced).
 */
#include "sample/brownian.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample/rng.h"

/* ---- numpy SeedSequence (bit_generator.pyx) ---- */

#define SS_INIT_A 0x43b0d7e5u
#define SS_MULT_A 0x931e8875u
#define SS_INIT_B 0x8b51f9ddu
#define SS_MULT_B 0x58f38dedu
#define SS_MIX_MULT_L 0xca01f9ddu
#define SS_MIX_MULT_R 0x4973f715u
#define SS_XSHIFT 16

static uint32_t hashmix(uint32_t value, uint32_t *hash_const)
{
    value ^= *hash_const;
    *hash_const *= SS_MULT_A;
    value *= *hash_const;
    value ^= value >> SS_XSHIFT;
    return value;
}

static uint32_t mix(uint32_t x, uint32_t y)
{
    uint32_t r = SS_MIX_MULT_L * x - SS_MIX_MULT_R * y;
    return r ^ (r >> SS_XSHIFT);
}

/* numpy's _int_to_uint32_array: little-endian 32-bit words, [0] for 0 */
static int int_words(uint64_t v, uint32_t *out)
{
    if (v == 0) {
        out[0] = 0;
        return 1;
    }
    int n = 0;
    while (v) {
        out[n++] = (uint32_t)v;
        v >>= 32;
    }
    return n;
}

void brownian_seed_state(uint64_t entropy, int has_key, uint64_t key, uint64_t depth, uint32_t *out,
                         int n_words)
{
    uint32_t ent[BROWNIAN_POOL + 6];
    int n = int_words(entropy, ent);
    if (has_key) {
        /* numpy ≥ 1.19 pads the run entropy to the pool with a spawn key */
        while (n < BROWNIAN_POOL)
            ent[n++] = 0;
        n += int_words(key, ent + n);
        n += int_words(depth, ent + n);
    }
    uint32_t pool[BROWNIAN_POOL];
    uint32_t hc = SS_INIT_A;
    for (int i = 0; i < BROWNIAN_POOL; i++)
        pool[i] = hashmix(i < n ? ent[i] : 0u, &hc);
    for (int s = 0; s < BROWNIAN_POOL; s++)
        for (int d = 0; d < BROWNIAN_POOL; d++)
            if (s != d)
                pool[d] = mix(pool[d], hashmix(pool[s], &hc));
    for (int s = BROWNIAN_POOL; s < n; s++)
        for (int d = 0; d < BROWNIAN_POOL; d++)
            pool[d] = mix(pool[d], hashmix(ent[s], &hc));
    uint32_t hb = SS_INIT_B;
    for (int i = 0; i < n_words; i++) {
        uint32_t v = pool[i % BROWNIAN_POOL];
        v ^= hb;
        hb *= SS_MULT_B;
        v *= hb;
        v ^= v >> SS_XSHIFT;
        out[i] = v;
    }
}

/* ---- rounding and draws ---- */

double brownian_round6(double x)
{
    /* glibc prints the exact binary value rounded half-even, as Python's
       dtoa-based round does; reading the decimal back gives the same double */
    char buf[64];
    snprintf(buf, sizeof buf, "%.6f", x);
    return strtod(buf, NULL);
}

/* torch.randn(n, generator = Generator().manual_seed(seed)), float32 */
static void seeded_randn(uint32_t seed, float *out, size_t n)
{
    gi_rng r;
    rng_seed(&r, seed);
    rng_randn(&r, out, n);
}

void brownian_init(brownian_tree *b, uint64_t seed, double t0, double t1, size_t n)
{
    b->entropy = seed;
    b->t0 = brownian_round6(t0);
    b->t1 = brownian_round6(t1);
    b->n = n;
    /* the root's W = randn(initial_W_seed)·√(t1 − t0) with the unrounded ends */
    b->root_scale = sqrt(t1 - t0);
}

/* A node of the dyadic tree: its ends and its split-seed key. */
typedef struct node {
    double start, end;
    uint64_t key, depth;
} node;

static double midway(const node *nd)
{
    return brownian_round6(0.5 * (nd->end + nd->start));
}

static node child(const node *nd, int right)
{
    double mid = midway(nd);
    node c = {right ? mid : nd->start, right ? nd->end : mid, 2 * nd->key + (uint64_t)right,
              nd->depth + 1};
    return c;
}

/* The W_seed a node draws its split noise with (torchsde: the parent's
   spawn key and depth, the root's being (0, 0)). */
static uint32_t split_seed(const brownian_tree *b, const node *nd)
{
    uint32_t s[4];
    brownian_seed_state(b->entropy, 1, nd->key, nd->depth, s, 4);
    return s[0];
}

/* The W's along the path from the root to the last node asked for: a
   query's nodes are neighbours, so their paths share most ancestors, and
   each tree node is drawn once per query instead of once per node asked. */
typedef struct path_cache {
    node nd[BROWNIAN_MAX_DEPTH + 1];
    float *w;  /* [(BROWNIAN_MAX_DEPTH + 1) · n]: W of nd[d] at w + d·n */
    int valid; /* levels 0..valid−1 hold */
} path_cache;

/* W over `target` (a node of the tree) into out, walking from the root: at
   each level the bridge gives the child's increment from its parent's. */
static void node_increment(const brownian_tree *b, const node *target, path_cache *pc, float *z,
                           float *out)
{
    size_t n = b->n;
    if (pc->valid == 0) {
        uint32_t root_seeds[3];
        brownian_seed_state(b->entropy, 0, 0, 0, root_seeds, 3);
        seeded_randn(root_seeds[0], pc->w, n);
        float scale = (float)b->root_scale;
        for (size_t i = 0; i < n; i++)
            pc->w[i] *= scale;
        pc->nd[0] = (node){b->t0, b->t1, 0, 0};
        pc->valid = 1;
    }
    int d = 0;
    for (;;) {
        const node *nd = &pc->nd[d];
        float *w = pc->w + (size_t)d * n;
        if (nd->start == target->start && nd->end == target->end) {
            memcpy(out, w, n * sizeof *out);
            return;
        }
        double mid = midway(nd);
        int right = target->start >= mid;
        node c = child(nd, right);
        if (d + 1 < pc->valid && pc->nd[d + 1].start == c.start && pc->nd[d + 1].end == c.end) {
            d++;
            continue;
        }
        if (d + 1 > BROWNIAN_MAX_DEPTH) { /* cannot happen on the 1e-6 grid of a sane range */
            memset(out, 0, n * sizeof *out);
            return;
        }
        double h_rec = 1.0 / (nd->end - nd->start);
        double left = mid - nd->start, rightd = nd->end - mid;
        float fl = (float)left, fh = (float)h_rec, sd = (float)sqrt(left * rightd * h_rec);
        seeded_randn(split_seed(b, nd), z, n);
        float *wc = w + n;
        for (size_t i = 0; i < n; i++) {
            float mean = fl * w[i] * fh;
            float lw = mean + sd * z[i];
            wc[i] = right ? w[i] - lw : lw;
        }
        pc->nd[d + 1] = c;
        pc->valid = d + 2;
        d++;
    }
}

/* torchsde's _loc: the nodes covering [ta, tb], left to right, into out;
   returns how many. */
static int locate(const node *nd, double ta, double tb, node *out, int count)
{
    if (ta == nd->start && tb == nd->end) {
        out[count] = *nd;
        return count + 1;
    }
    double mid = midway(nd);
    node l = child(nd, 0), r = child(nd, 1);
    if (tb <= mid)
        return locate(&l, ta, tb, out, count);
    if (ta >= mid)
        return locate(&r, ta, tb, out, count);
    count = locate(&l, ta, mid, out, count);
    return locate(&r, mid, tb, out, count);
}

#define MAX_NODES 256

void brownian_increment(const brownian_tree *b, double ta, double tb, float *out, float *scratch)
{
    ta = ta < b->t0 ? b->t0 : ta > b->t1 ? b->t1 : ta;
    tb = tb < b->t0 ? b->t0 : tb > b->t1 ? b->t1 : tb;
    ta = brownian_round6(ta);
    tb = brownian_round6(tb);
    size_t n = b->n;
    if (ta >= tb) {
        memset(out, 0, n * sizeof *out);
        return;
    }
    node nodes[MAX_NODES];
    node root = {b->t0, b->t1, 0, 0};
    int count = locate(&root, ta, tb, nodes, 0);
    float *z = scratch, *w = scratch + n;
    path_cache pc = {.w = scratch + 2 * n, .valid = 0};
    node_increment(b, &nodes[0], &pc, z, out);
    for (int k = 1; k < count; k++) {
        node_increment(b, &nodes[k], &pc, z, w);
        for (size_t i = 0; i < n; i++)
            out[i] += w[i];
    }
}
