// dv_rng — xoshiro256** (Blackman & Vigna, 2018) seeded through splitmix64,
// the seeding its authors recommend. Reference: https://prng.di.unimi.it/
#include "dv_rng.h"

#include <math.h>

#include "dv_mem.h"

static uint64_t
splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t
rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void
dv_rng_seed(dv_rng_t *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        rng->s[i] = splitmix64(&x);
    }
}

uint64_t
dv_rng_next(dv_rng_t *rng)
{
    uint64_t *s = rng->s;
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

double
dv_rng_uniform(dv_rng_t *rng)
{
    return (double)(dv_rng_next(rng) >> 11) * 0x1.0p-53;
}

uint64_t
dv_rng_below(dv_rng_t *rng, uint64_t n)
{
    dv_assert(n >= 1); // n == 0 would divide by zero below
    // Reject the lowest (2^64 mod n) draws so every residue is equally likely.
    uint64_t threshold = -n % n;
    for (;;) {
        uint64_t r = dv_rng_next(rng);
        if (r >= threshold) {
            return r % n;
        }
    }
}

double
dv_rng_normal(dv_rng_t *rng)
{
    // 1 - u keeps the log argument in (0, 1].
    double u1 = 1.0 - dv_rng_uniform(rng);
    double u2 = dv_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

void
dv_rng_shuffle(dv_rng_t *rng, uint32_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)dv_rng_below(rng, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}
