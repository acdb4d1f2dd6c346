// test_newest — ids read newest first match a full sort, whether a reader
// takes one, some or all of them, with duplicates and tiny arrays.
#include <stdlib.h>
#include <string.h>

#include "dv_newest.h"
#include "dv_rng.h"
#include "dv_test.h"

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void
test_matches_a_sort(void)
{
    const struct {
        size_t n;     // ids
        size_t take;  // read newest first
        uint64_t mod; // values below (small: duplicates)
    } cases[] = {
        {0, 0, 10},         {1, 1, 10},
        {2, 1, 10},         {7, 7, 3},
        {1000, 1, 1 << 30}, {1000, 100, 1 << 30},
        {1000, 1000, 50},   {4097, 4097, 1u << 31},
    };
    dv_rng_t rng;
    dv_rng_seed(&rng, 7);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        size_t n = cases[c].n;
        uint64_t *ids = malloc((n ? n : 1) * sizeof *ids);
        uint64_t *sorted = malloc((n ? n : 1) * sizeof *sorted);
        for (size_t i = 0; i < n; i++) {
            ids[i] = sorted[i] = dv_rng_next(&rng) % cases[c].mod;
        }
        qsort(sorted, n, sizeof *sorted, cmp_u64);
        dv_newest_t h = dv_newest_of(ids, n);
        size_t wrong = 0;
        for (size_t k = 0; k < cases[c].take; k++) {
            size_t i = n - 1 - k;
            wrong += dv_newest_at(&h, i) != sorted[i];
            wrong += dv_newest_at(&h, i) != sorted[i]; // again: no change
        }
        free(ids);
        free(sorted);
        DV_CHECK_EQ(wrong, 0);
    }
}

static const dv_test_case_t cases[] = {
    {"newest first matches a sort", test_matches_a_sort},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
