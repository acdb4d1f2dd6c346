// test_spare — dv_spare hands back the block last put in its size class,
// never one too small, keeps no more bytes than its bound, and passes
// blocks over its largest class straight to malloc and free. ASan (the asan
// preset) checks every block is written in full and none leaks.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dv_spare.h"
#include "dv_test.h"

// Each row: a size asked, put back, then a second size asked; whether the
// second get must return the same block (same 64-byte class and kept).
static const struct {
    size_t first, second;
    bool same;
} s_reuse[] = {
    {1, 64, true},       // class 0: 1..64 bytes
    {64, 65, false},     // 65 is class 1
    {100, 128, true},    // a sched entry's size, rounded
    {1300, 1290, true},  // a 1-row job record (a 1 KiB row)
    {1300, 1400, false}, // a wider row: the next class
    {4096, 4096, true},  // the largest class kept
    {4097, 4097, false}, // over it: freed, a new malloc
    {0, 1, true},        // 0 asks for a usable block of class 0
};

static void
test_reuse(void)
{
    for (size_t r = 0; r < sizeof s_reuse / sizeof s_reuse[0]; r++) {
        dv_spare_t *s = dv_spare_new(4096, 1 << 20);
        uint8_t *a = dv_spare_get(s, s_reuse[r].first);
        DV_CHECK(a != NULL);
        memset(a, 0xa5, s_reuse[r].first); // the whole size is usable
        dv_spare_put(s, a, s_reuse[r].first);
        uint8_t *b = dv_spare_get(s, s_reuse[r].second);
        DV_CHECK(b != NULL);
        memset(b, 0x5a, s_reuse[r].second);
        if (s_reuse[r].same) {
            DV_CHECK(a == b);
            DV_CHECK_EQ(dv_spare_kept_bytes(s), 0);
        }
        dv_spare_put(s, b, s_reuse[r].second);
        dv_spare_destroy(&s);
        DV_CHECK(s == NULL);
    }
}

// A burst of 1,000 blocks put back is kept up to the bound, last in first
// out; the rest are freed, and the spare can be destroyed with blocks kept.
static void
test_bound(void)
{
    enum { N = 1000, SIZE = 1300, CLASS = 1344 }; // 21 x 64
    const size_t bound = 100 * CLASS + CLASS / 2;
    dv_spare_t *s = dv_spare_new(4096, bound);
    void *blocks[N];
    for (size_t i = 0; i < N; i++) {
        blocks[i] = dv_spare_get(s, SIZE);
        DV_CHECK(blocks[i] != NULL);
    }
    DV_CHECK_EQ(dv_spare_kept_bytes(s), 0);
    for (size_t i = 0; i < N; i++) {
        dv_spare_put(s, blocks[i], SIZE);
        DV_CHECK(dv_spare_kept_bytes(s) <= bound);
    }
    DV_CHECK_EQ(dv_spare_kept_bytes(s), 100 * CLASS);
    // The last one kept (the 100th put) comes back first.
    DV_CHECK(dv_spare_get(s, SIZE) == blocks[99]);
    DV_CHECK(dv_spare_get(s, SIZE) == blocks[98]);
    DV_CHECK_EQ(dv_spare_kept_bytes(s), 98 * CLASS);
    free(blocks[99]); // plain malloc blocks: free() is allowed
    dv_spare_put(s, blocks[98], SIZE);
    dv_spare_put(s, NULL, SIZE); // ignored
    DV_CHECK_EQ(dv_spare_kept_bytes(s), 99 * CLASS);
    dv_spare_destroy(&s); // frees the 99 kept
    dv_spare_destroy(&s); // NULL-safe
}

// A bound of 0 keeps nothing: every put frees.
static void
test_keep_none(void)
{
    dv_spare_t *s = dv_spare_new(4096, 0);
    void *a = dv_spare_get(s, 200);
    dv_spare_put(s, a, 200);
    DV_CHECK_EQ(dv_spare_kept_bytes(s), 0);
    dv_spare_destroy(&s);
}

static const dv_test_case_t cases[] = {
    {"a block comes back for a size of its class only", test_reuse},
    {"a burst is kept up to the bound, last in first out", test_bound},
    {"a bound of 0 keeps nothing", test_keep_none},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
