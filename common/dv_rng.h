// dv_rng — a small, fast, seedable PRNG (xoshiro256**, seeded by splitmix64).
//
// The same seed gives the same sequence on every platform, which is what
// makes training deterministic (same seed -> same model bytes). Not for
// cryptography. A plain value: embed it, no allocation; one per thread.
#ifndef DV_RNG_H
#define DV_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4]; // xoshiro256** state; never all zero
} dv_rng_t;

// Seed the generator (any 64-bit seed, 0 included).
void dv_rng_seed(dv_rng_t *rng, uint64_t seed);

// Next 64 random bits.
uint64_t dv_rng_next(dv_rng_t *rng);

// Uniform double in [0, 1) with 53 random bits.
double dv_rng_uniform(dv_rng_t *rng);

// Uniform integer in [0, n), n >= 1, without modulo bias (rejection).
uint64_t dv_rng_below(dv_rng_t *rng, uint64_t n);

// Standard normal variate (Box-Muller; one draw per call, deterministic).
double dv_rng_normal(dv_rng_t *rng);

// Fisher-Yates shuffle of a[0..n).
void dv_rng_shuffle(dv_rng_t *rng, uint32_t *a, size_t n);

#endif
