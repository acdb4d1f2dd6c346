// test_rng — the RNG: an independent reference implementation,
// determinism, distributions, shuffling.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dv_rng.h"
#include "dv_test.h"

// xoshiro256** and splitmix64 written out again, independently of dv_rng.c,
// from the reference at https://prng.di.unimi.it/.
static uint64_t
ref_first(uint64_t seed)
{
    uint64_t s[4], x = seed;
    for (int i = 0; i < 4; i++) {
        uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        s[i] = z ^ (z >> 31);
    }
    uint64_t v = s[1] * 5;
    v = (v << 7) | (v >> 57);
    return v * 9;
}

static void
test_rng_reference_and_determinism(void)
{
    dv_rng_t a, b, c;
    dv_rng_seed(&a, 42);
    dv_rng_seed(&b, 42);
    dv_rng_seed(&c, 43);
    uint64_t first = dv_rng_next(&a);
    DV_CHECK(first == ref_first(42));
    (void)dv_rng_next(&b);
    bool same = true, differs = false;
    for (int i = 0; i < 100; i++) {
        uint64_t x = dv_rng_next(&a);
        same = same && x == dv_rng_next(&b);
        differs = differs || x != dv_rng_next(&c);
    }
    DV_CHECK(same);
    DV_CHECK(differs);
    dv_rng_t z;
    dv_rng_seed(&z, 0);
    DV_CHECK(z.s[0] | z.s[1] | z.s[2] | z.s[3]);
}

static void
test_rng_distributions(void)
{
    dv_rng_t r;
    dv_rng_seed(&r, 7);
    double sum = 0, sum2 = 0, usum = 0;
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        double u = dv_rng_uniform(&r);
        DV_CHECK(u >= 0 && u < 1);
        usum += u;
        double g = dv_rng_normal(&r);
        sum += g;
        sum2 += g * g;
    }
    DV_CHECK_NEAR(usum / n, 0.5, 0.01);
    DV_CHECK_NEAR(sum / n, 0, 0.02);
    DV_CHECK_NEAR(sum2 / n, 1, 0.03);
    int buckets[6] = {0};
    for (int i = 0; i < 60000; i++) {
        buckets[dv_rng_below(&r, 6)]++;
    }
    for (int i = 0; i < 6; i++) {
        DV_CHECK_NEAR(buckets[i], 10000, 500);
    }
    static const uint64_t bounds[] = {1, 2, 3, 7, (uint64_t)1 << 40};
    for (size_t b = 0; b < 5; b++) {
        for (int i = 0; i < 1000; i++) {
            DV_CHECK(dv_rng_below(&r, bounds[b]) < bounds[b]);
        }
    }
    uint32_t perm[50];
    for (uint32_t i = 0; i < 50; i++) {
        perm[i] = i;
    }
    dv_rng_shuffle(&r, perm, 50);
    int seen[50] = {0}, moved = 0;
    for (uint32_t i = 0; i < 50; i++) {
        seen[perm[i]]++;
        moved += perm[i] != i;
    }
    for (int i = 0; i < 50; i++) {
        DV_CHECK_EQ(seen[i], 1);
    }
    DV_CHECK(moved > 25);
}

static const dv_test_case_t cases[] = {
    {"rng: reference output, determinism", test_rng_reference_and_determinism},
    {"rng: distributions and shuffle", test_rng_distributions},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
