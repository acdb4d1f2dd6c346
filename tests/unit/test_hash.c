// test_hash — dv_hash_slot spreads the keys Drover's tables hold: job ids
// and request ids, which are sequential (from any start), and ids a stride
// apart (every k-th job of a producer).
#include <stdint.h>
#include <stdlib.h>

#include "dv_hash.h"
#include "dv_test.h"

// Fill a table of size slots with n keys start, start + stride, ...; return
// the longest chain and the slots used.
static void
spread(uint64_t start,
       uint64_t stride,
       size_t n,
       size_t size,
       size_t *longest,
       size_t *used)
{
    uint32_t *count = calloc(size, sizeof *count);
    DV_CHECK(count != NULL);
    *longest = 0;
    *used = 0;
    for (size_t i = 0; i < n; i++) {
        size_t s = dv_hash_slot(start + stride * i, size);
        DV_CHECK(s < size);
        *used += count[s]++ == 0;
        *longest = count[s] > *longest ? count[s] : *longest;
    }
    free(count);
}

// Each row: keys, table size, and the bounds they must meet. n random keys
// over s slots use about s(1 - e^(-n/s)) of them with chains of a few;
// Fibonacci hashing does at least that well here. The old middle-bits hash
// gave chains of 15 over 7,929 of 65,536 slots for the first row.
static const struct {
    uint64_t start, stride;
    size_t n, size, max_chain, min_used;
} s_rows[] = {
    {1, 1, 100000, 65536, 4, 60000},             // kept results, from a start
    {5000000, 1, 100000, 65536, 4, 60000},       // after a long uptime
    {1, 1, 1024, 1024, 2, 850},                  // the job table's first size
    {1u << 20, 1, 4096, 4096, 2, 3400},          // after growing
    {1, 7, 50000, 65536, 4, 30000},              // every 7th id
    {1, 1024, 50000, 65536, 8, 30000},           // a power-of-two stride
    {UINT64_MAX - 5000, 1, 4096, 8192, 3, 4000}, // near the top
};

static void
test_spread(void)
{
    for (size_t r = 0; r < sizeof s_rows / sizeof s_rows[0]; r++) {
        size_t longest = 0, used = 0;
        spread(s_rows[r].start, s_rows[r].stride, s_rows[r].n, s_rows[r].size,
               &longest, &used);
        DV_CHECK(longest <= s_rows[r].max_chain);
        DV_CHECK(used >= s_rows[r].min_used);
    }
}

static void
test_small_tables(void)
{
    DV_CHECK(dv_hash_slot(12345, 1) == 0);
    DV_CHECK(dv_hash_slot(0, 1) == 0);
    for (uint64_t k = 0; k < 1000; k++) {
        DV_CHECK(dv_hash_slot(k, 2) < 2);
        DV_CHECK(dv_hash_slot(k, 16) < 16);
    }
    // Both halves of a 2-slot table are used by consecutive ids.
    size_t ones = 0;
    for (uint64_t k = 1; k <= 100; k++) {
        ones += dv_hash_slot(k, 2);
    }
    DV_CHECK(ones > 30 && ones < 70);
}

static const dv_test_case_t cases[] = {
    {"sequential and strided ids spread over the slots", test_spread},
    {"tables of 1, 2 and 16 slots", test_small_tables},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
