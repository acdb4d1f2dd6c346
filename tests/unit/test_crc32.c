// test_crc32 — the store's record checksum: published CRC-32 check values,
// and slicing-by-8 equal to the bytewise loop for every length and
// alignment a record can have.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dv_crc32.h"
#include "dv_rng.h"
#include "dv_test.h"

// Check values of CRC-32/ISO-HDLC (the zlib/PNG CRC): the catalogue of
// parametrised CRC algorithms (reveng) gives 0xCBF43926 for "123456789".
static const struct {
    const char *in;
    uint32_t want;
} s_vectors[] = {
    {"", 0x00000000u},
    {"a", 0xe8b7be43u},
    {"abc", 0x352441c2u},
    {"123456789", 0xcbf43926u},
    {"The quick brown fox jumps over the lazy dog", 0x414fa339u},
};

static void
test_vectors(void)
{
    for (size_t i = 0; i < sizeof s_vectors / sizeof s_vectors[0]; i++) {
        size_t n = strlen(s_vectors[i].in);
        DV_CHECK_EQ(dv_crc32(s_vectors[i].in, n), s_vectors[i].want);
        DV_CHECK_EQ(dv_crc32_bytewise(s_vectors[i].in, n), s_vectors[i].want);
    }
}

// Every length 0..600 at every offset 0..7 into random bytes, and 1 MiB.
static void
test_sliced_equals_bytewise(void)
{
    enum { MAX = 600, BIG = 1 << 20 };
    uint8_t *buf = malloc(BIG + 8);
    DV_CHECK(buf != NULL);
    dv_rng_t rng;
    dv_rng_seed(&rng, 32);
    for (size_t i = 0; i < BIG + 8; i++) {
        buf[i] = (uint8_t)dv_rng_next(&rng);
    }
    size_t bad = 0;
    for (size_t off = 0; off < 8; off++) {
        for (size_t n = 0; n <= MAX; n++) {
            bad += dv_crc32(buf + off, n) != dv_crc32_bytewise(buf + off, n);
        }
    }
    DV_CHECK_EQ(bad, 0);
    DV_CHECK_EQ(dv_crc32(buf + 3, BIG), dv_crc32_bytewise(buf + 3, BIG));
    free(buf);
}

static const dv_test_case_t cases[] = {
    {"published check values", test_vectors},
    {"slicing-by-8 equals the bytewise loop", test_sliced_equals_bytewise},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
