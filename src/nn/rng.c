/* rng.c -- explicit-state randomness for the engine: xoshiro256** (seeded
 * through splitmix64) for sequential draws, and a counter-based hash for
 * parallel loops whose results must not depend on the thread count. */
#include <math.h>

#include "octav/nn.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void octav_rng_seed(octav_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

uint64_t octav_rng_next(octav_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double octav_rng_uniform(octav_rng *r) {
    return (double)(octav_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double octav_rng_normal(octav_rng *r) {
    /* Box-Muller, one value per call (no hidden spare: state stays explicit). */
    double u = 1.0 - octav_rng_uniform(r); /* (0, 1] */
    double v = octav_rng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

uint64_t octav_rng_below(octav_rng *r, uint64_t n) {
    /* Lemire's rejection: unbiased. */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = octav_rng_next(r);
        if (x >= threshold) return x % n;
    }
}

uint64_t octav_hash_u64(uint64_t seed, uint64_t counter) {
    uint64_t x = seed ^ (counter * 0xD1B54A32D192ED03ull);
    uint64_t a = splitmix64(&x);
    return a ^ splitmix64(&x);
}

double octav_hash_uniform(uint64_t seed, uint64_t counter) {
    return (double)(octav_hash_u64(seed, counter) >> 11) * (1.0 / 9007199254740992.0);
}
