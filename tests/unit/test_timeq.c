// test_timeq — the broker's timer heap pops entries in time order, only
// when due, keeps every entry through growth, and keeps its order when
// stale entries are filtered out.
#include "dv_rng.h"
#include "dv_test.h"
#include "dv_timeq.h"

static void
test_pops_in_order_when_due(void)
{
    dv_timeq_t *q = dv_timeq_new();
    dv_timeq_push(q, (dv_timeq_entry_t){30, 3, 0, 1});
    dv_timeq_push(q, (dv_timeq_entry_t){10, 1, 0, 1});
    dv_timeq_push(q, (dv_timeq_entry_t){20, 2, 7, 2});
    dv_timeq_entry_t e = {0}, peek = {0};
    bool peeked = dv_timeq_peek(q, &peek);
    bool early = dv_timeq_pop_due(q, 9, &e);
    bool a = dv_timeq_pop_due(q, 25, &e) && e.id == 1;
    bool b = dv_timeq_pop_due(q, 25, &e) && e.id == 2 && e.tag == 7 &&
             e.attempt == 2;
    bool c = !dv_timeq_pop_due(q, 25, &e); // 30 is not due at 25
    size_t left = dv_timeq_size(q);
    dv_timeq_destroy(&q);
    DV_CHECK(peeked);
    DV_CHECK_EQ(peek.at, 10);
    DV_CHECK(!early);
    DV_CHECK(a);
    DV_CHECK(b);
    DV_CHECK(c);
    DV_CHECK_EQ(left, 1);
    DV_CHECK(q == NULL);
}

static void
test_random_order_matches_sort(void)
{
    dv_timeq_t *q = dv_timeq_new();
    dv_rng_t rng;
    dv_rng_seed(&rng, 42);
    enum { N = 5000 };
    for (uint64_t i = 0; i < N; i++) {
        dv_timeq_push(q, (dv_timeq_entry_t){dv_rng_below(&rng, 1000), i, 0, 0});
    }
    uint64_t prev = 0, popped = 0;
    bool ordered = true;
    dv_timeq_entry_t e;
    while (dv_timeq_pop_due(q, UINT64_MAX, &e)) {
        ordered = ordered && e.at >= prev;
        prev = e.at;
        popped++;
    }
    dv_timeq_destroy(&q);
    DV_CHECK(ordered);
    DV_CHECK_EQ(popped, N);
}

static bool
keep_even(const dv_timeq_entry_t *e, void *arg)
{
    (*(size_t *)arg)++;
    return e->id % 2 == 0;
}

// A filter keeps exactly what it is told (asking once per entry), and the
// heap still pops in time order after it, and after more pushes.
static void
test_filter_keeps_the_heap(void)
{
    dv_timeq_t *q = dv_timeq_new();
    dv_rng_t rng;
    dv_rng_seed(&rng, 7);
    enum { N = 5000 };
    for (uint64_t i = 0; i < N; i++) {
        dv_timeq_push(q, (dv_timeq_entry_t){dv_rng_below(&rng, 1000), i, 0, 0});
    }
    size_t asked = 0;
    size_t dropped = dv_timeq_filter(q, keep_even, &asked);
    size_t left = dv_timeq_size(q);
    for (uint64_t i = 0; i < 100; i++) { // pushes after a filter
        dv_timeq_push(
            q, (dv_timeq_entry_t){dv_rng_below(&rng, 1000), 2 * (N + i), 0, 0});
    }
    uint64_t prev = 0, popped = 0;
    bool ordered = true, even = true;
    dv_timeq_entry_t e;
    while (dv_timeq_pop_due(q, UINT64_MAX, &e)) {
        ordered = ordered && e.at >= prev;
        even = even && e.id % 2 == 0;
        prev = e.at;
        popped++;
    }
    size_t none = 0;
    size_t dropped_empty = dv_timeq_filter(q, keep_even, &none);
    dv_timeq_destroy(&q);
    DV_CHECK_EQ(asked, N);
    DV_CHECK_EQ(dropped, N / 2);
    DV_CHECK_EQ(left, N / 2);
    DV_CHECK(ordered);
    DV_CHECK(even);
    DV_CHECK_EQ(popped, N / 2 + 100);
    DV_CHECK_EQ(dropped_empty, 0);
    DV_CHECK_EQ(none, 0);
}

static const dv_test_case_t cases[] = {
    {"pops in order, only when due", test_pops_in_order_when_due},
    {"random times pop sorted", test_random_order_matches_sort},
    {"a filter keeps the heap", test_filter_keeps_the_heap},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
