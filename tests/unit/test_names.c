// test_names — dv_names finds every name added among many, tells names that
// differ by one byte or by length apart, reports absent ones, and keeps
// what it holds across growth.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dv_names.h"
#include "dv_test.h"

// Each row: a name, and whether it was added (its index then is the row's).
static const struct {
    const char *name;
    bool added;
} s_rows[] = {
    {"default", true},    {"defaulu", false}, // one byte apart
    {"default ", false},  {"Default", false}, // a byte longer, another case
    {"", true},           {"q", true},        // empty and one byte
    {"q1", true},         {"q10", true},      // prefixes of each other
    {"q100", false},      {"tenant-7", true},
    {"tenant-70", false}, {"ümlaut", true}, // UTF-8 bytes
    {"x\x01y", true},     {"x\x02y", false},
};

static void
test_rows(void)
{
    dv_names_t *n = dv_names_new();
    size_t rows = sizeof s_rows / sizeof s_rows[0];
    for (size_t r = 0; r < rows; r++) {
        if (s_rows[r].added) {
            DV_CHECK_EQ(dv_names_find(n, s_rows[r].name), SIZE_MAX);
            dv_names_add(n, s_rows[r].name, r);
        }
    }
    for (size_t r = 0; r < rows; r++) {
        DV_CHECK_EQ(dv_names_find(n, s_rows[r].name),
                    s_rows[r].added ? r : SIZE_MAX);
    }
    dv_names_add(n, "q", 99); // a name added again takes the new index
    DV_CHECK_EQ(dv_names_find(n, "q"), 99);
    dv_names_destroy(&n);
    DV_CHECK(n == NULL);
    dv_names_destroy(&n); // NULL-safe
}

// 20,000 names (past DV_MAX_QUEUES, through many doublings): each found at
// its own index, the names between them not at all.
static void
test_many(void)
{
    enum { N = 20000 };
    dv_names_t *n = dv_names_new();
    char name[32];
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "queue-%zu", 2 * i);
        dv_names_add(n, name, i);
    }
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "queue-%zu", 2 * i);
        DV_CHECK_EQ(dv_names_find(n, name), i);
        snprintf(name, sizeof name, "queue-%zu", 2 * i + 1);
        DV_CHECK_EQ(dv_names_find(n, name), SIZE_MAX);
    }
    dv_names_destroy(&n);
}

// Removals against a model: random adds and removals over a small name
// space (long probe chains, wrapping past the table's end), each step
// checked for every name, then every name removed; removing an absent
// one is a no-op. A removal that left a hole in a chain would lose names
// behind it.
static void
test_removals(void)
{
    enum { NAMES = 300, STEPS = 20000 };
    dv_names_t *n = dv_names_new();
    size_t model[NAMES];
    for (size_t i = 0; i < NAMES; i++) {
        model[i] = SIZE_MAX;
    }
    uint64_t x = 88172645463325252ULL; // xorshift64
    char name[32];
    size_t wrong = 0;
    for (size_t step = 0; step < STEPS; step++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t i = (size_t)(x % NAMES);
        snprintf(name, sizeof name, "c%zu", i);
        if (x >> 63) {
            dv_names_add(n, name, step);
            model[i] = step;
        } else {
            dv_names_remove(n, name);
            model[i] = SIZE_MAX;
        }
        if (step % 97 == 0 || step + 1 == STEPS) {
            for (size_t k = 0; k < NAMES; k++) {
                snprintf(name, sizeof name, "c%zu", k);
                wrong += dv_names_find(n, name) != model[k];
            }
        }
    }
    for (size_t k = 0; k < NAMES; k++) {
        snprintf(name, sizeof name, "c%zu", k);
        dv_names_remove(n, name);
        dv_names_remove(n, name); // absent now: nothing
    }
    size_t left = 0;
    for (size_t k = 0; k < NAMES; k++) {
        snprintf(name, sizeof name, "c%zu", k);
        left += dv_names_find(n, name) != SIZE_MAX;
    }
    dv_names_add(n, "after", 7); // still usable
    DV_CHECK_EQ(dv_names_find(n, "after"), 7);
    dv_names_destroy(&n);
    DV_CHECK_EQ(wrong, 0);
    DV_CHECK_EQ(left, 0);
}

static const dv_test_case_t cases[] = {
    {"names one byte apart, prefixes, empty, absent", test_rows},
    {"20,000 names through the table's growth", test_many},
    {"removals keep every other name found", test_removals},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
