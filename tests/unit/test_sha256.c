// test_sha256 — FIPS 180-4 test vectors, streaming equals one-shot, and the
// digests `sha256sum` gives for the bundled data.
#include <stdlib.h>
#include <string.h>

#include "dv_sha256.h"
#include "dv_test.h"

static const char *
hex_of(const void *data, size_t len)
{
    static char hex[DV_SHA256_HEX];
    uint8_t d[DV_SHA256_BYTES];
    dv_sha256(data, len, d);
    dv_sha256_hex(d, hex);
    return hex;
}

static void
test_nist_vectors(void)
{
    static const struct {
        const char *msg;
        const char *hex;
    } rows[] = {
        {"",
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc",
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        DV_CHECK_STR_EQ(hex_of(rows[i].msg, strlen(rows[i].msg)), rows[i].hex);
    }
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    const char *hex = hex_of(a, 1000000);
    free(a);
    DV_CHECK_STR_EQ(
        hex,
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void
test_streaming_matches_one_shot(void)
{
    uint8_t data[1000];
    for (size_t i = 0; i < sizeof data; i++) {
        data[i] = (uint8_t)(i * 31 + 7);
    }
    static const size_t chunks[] = {1, 55, 56, 63, 64, 65, 127, 1000};
    uint8_t want[DV_SHA256_BYTES];
    dv_sha256(data, sizeof data, want);
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        dv_sha256_t ctx;
        dv_sha256_init(&ctx);
        for (size_t off = 0; off < sizeof data; off += chunks[c]) {
            size_t n =
                sizeof data - off < chunks[c] ? sizeof data - off : chunks[c];
            dv_sha256_update(&ctx, data + off, n);
        }
        uint8_t got[DV_SHA256_BYTES];
        dv_sha256_final(&ctx, got);
        DV_CHECK(memcmp(got, want, sizeof want) == 0);
    }
}

static void
test_bundled_file(void)
{
    size_t len = 0;
    unsigned char *data =
        dv_test_read_file(dv_test_data("iris_train.csv"), &len);
    DV_CHECK(data != NULL);
    const char *hex = hex_of(data, len);
    free(data);
    // data/checksums.sha256
    DV_CHECK_STR_EQ(
        hex,
        "c2d36cf28c2f32fcc5b23b7c540096f1b117cfe302be8bff6358e2bd641e93b1");
}

static const dv_test_case_t cases[] = {
    {"NIST vectors", test_nist_vectors},
    {"streaming equals one-shot", test_streaming_matches_one_shot},
    {"same digest as sha256sum", test_bundled_file},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
