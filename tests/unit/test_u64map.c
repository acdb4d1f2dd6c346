// test_u64map — the id -> value map against a model: random puts, gets and
// deletes over a small key space (long probe chains, wrapping past the
// table's end, growth), every key checked as it goes; replacing a value;
// a key never put, and 0, are absent.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dv_test.h"
#include "dv_u64map.h"

static void
test_against_a_model(void)
{
    enum { KEYS = 500, STEPS = 60000 };
    static uint64_t model[KEYS + 1]; // 0: absent, else value + 1
    memset(model, 0, sizeof model);
    dv_u64map_t *m = dv_u64map_new();
    uint64_t x = 0x9E3779B97F4A7C15ULL; // xorshift64
    size_t wrong = 0, n = 0;
    for (size_t step = 0; step < STEPS; step++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Keys 1..KEYS, spread like ids: a multiple of 4,096 apart.
        uint64_t k = 1 + x % KEYS, key = k << 12;
        if ((x >> 60) < 9) {
            n += model[k] == 0;
            model[k] = step + 1;
            dv_u64map_put(m, key, step);
        } else {
            bool had = dv_u64map_del(m, key);
            wrong += had != (model[k] != 0);
            n -= model[k] != 0;
            model[k] = 0;
        }
        if (step % 251 == 0 || step + 1 == STEPS) {
            for (uint64_t j = 1; j <= KEYS; j++) {
                uint64_t v = 0;
                bool got = dv_u64map_get(m, j << 12, &v);
                wrong += got != (model[j] != 0) || (got && v + 1 != model[j]);
            }
            wrong += dv_u64map_count(m) != n;
        }
    }
    bool zero = dv_u64map_get(m, 0, NULL);
    bool never = dv_u64map_get(m, 12345, NULL);
    dv_u64map_destroy(&m);
    DV_CHECK(m == NULL);
    dv_u64map_destroy(&m); // NULL-safe
    DV_CHECK_EQ(wrong, 0);
    DV_CHECK(!zero);
    DV_CHECK(!never);
}

static void
test_empty(void)
{
    dv_u64map_t *m = dv_u64map_new();
    DV_CHECK(!dv_u64map_get(m, 7, NULL));
    DV_CHECK(!dv_u64map_del(m, 7));
    DV_CHECK_EQ(dv_u64map_count(m), 0);
    dv_u64map_put(m, 7, 70);
    dv_u64map_put(m, 7, 71); // replaced, not added
    uint64_t v = 0;
    DV_CHECK(dv_u64map_get(m, 7, &v));
    DV_CHECK_EQ(v, 71);
    DV_CHECK_EQ(dv_u64map_count(m), 1);
    dv_u64map_destroy(&m);
}

static const dv_test_case_t cases[] = {
    {"empty, put, replace", test_empty},
    {"random puts and deletes against a model", test_against_a_model},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
