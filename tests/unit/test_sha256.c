// test_sha256 — FIPS 180-4 test vectors, padding boundaries, streaming in
// awkward chunk sizes equals one-shot, and the digests `sha256sum` gives for
// the bundled data.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_sha256.h"
#include "dv_test.h"

// Hex digest of data[0..len); borrowed static buffer, valid until next call.
static const char *
hex_of(const void *data, size_t len)
{
    static char hex[DV_SHA256_HEX];
    uint8_t d[DV_SHA256_BYTES];
    dv_sha256(data, len, d);
    dv_sha256_hex(d, hex);
    return hex;
}

// Hex digest of data fed to update in pieces of chunk bytes (the last one
// shorter); same buffer rules as hex_of.
static const char *
hex_of_chunked(const uint8_t *data, size_t len, size_t chunk)
{
    static char hex[DV_SHA256_HEX];
    dv_sha256_t ctx;
    dv_sha256_init(&ctx);
    for (size_t off = 0; off < len; off += chunk) {
        dv_sha256_update(&ctx, data + off,
                         len - off < chunk ? len - off : chunk);
    }
    uint8_t d[DV_SHA256_BYTES];
    dv_sha256_final(&ctx, d);
    dv_sha256_hex(d, hex);
    return hex;
}

// Every length from 0 to 300 bytes (all paddings, 0..4 blocks) and 1 MiB
// in odd chunks, hashed by the CPU's SHA extensions and by the portable C:
// the same digests. Where the CPU has no extensions both runs are the
// portable C, and the NIST vectors below check it.
static void
test_both_paths_agree(void)
{
    size_t big = (size_t)1 << 20;
    uint8_t *data = malloc(big);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < big; i++) { // xorshift32
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = (uint8_t)x;
    }
    bool have = dv_sha256_use_portable(false);
    printf("  this CPU has the SHA extensions: %s\n", have ? "yes" : "no");
    size_t differ = 0;
    for (size_t len = 0; len <= 300; len++) {
        char fast[DV_SHA256_HEX];
        dv_sha256_use_portable(false);
        snprintf(fast, sizeof fast, "%s", hex_of(data, len));
        dv_sha256_use_portable(true);
        differ += strcmp(fast, hex_of(data, len)) != 0;
    }
    char fast[DV_SHA256_HEX];
    dv_sha256_use_portable(false);
    snprintf(fast, sizeof fast, "%s", hex_of_chunked(data, big, 4099));
    dv_sha256_use_portable(true);
    DV_CHECK_STR_EQ(fast, hex_of_chunked(data, big, 65));
    dv_sha256_use_portable(false);
    DV_CHECK_EQ(differ, 0);
    free(data);
}

static void
test_nist_vectors(void)
{
    // FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA2_Additional").
    static const struct {
        const char *msg;
        const char *hex;
    } rows[] = {
        {"",
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc",
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        // 448 bits: the length no longer fits in the first block.
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        // 896 bits: two full blocks of message.
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
         "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        DV_CHECK_STR_EQ(hex_of(rows[i].msg, strlen(rows[i].msg)), rows[i].hex);
    }
}

static void
test_million_a(void)
{
    // One million 'a' (FIPS 180-4 example), one-shot and in 4096-byte
    // pieces: the bit length needs more than 16 bits.
    static const char want[] =
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    uint8_t *a = malloc(1000000);
    DV_CHECK(a != NULL);
    memset(a, 'a', 1000000);
    char one_shot[DV_SHA256_HEX], chunked[DV_SHA256_HEX];
    strcpy(one_shot, hex_of(a, 1000000));
    strcpy(chunked, hex_of_chunked(a, 1000000, 4096));
    free(a);
    DV_CHECK_STR_EQ(one_shot, want);
    DV_CHECK_STR_EQ(chunked, want);
}

static void
test_padding_boundaries(void)
{
    // n times 'a' around the padding edges: 55 is the longest message whose
    // length still fits in its block, 56 the shortest that needs a second,
    // and 119/120 the same edge one block later. Digests from coreutils
    // `head -c N /dev/zero | tr '\0' a | sha256sum`.
    static const struct {
        size_t n;
        const char *hex;
    } rows[] = {
        {55,
         "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56,
         "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63,
         "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64,
         "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {65,
         "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
        {119,
         "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
        {120,
         "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
    };
    uint8_t a[128];
    memset(a, 'a', sizeof a);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        DV_CHECK_STR_EQ(hex_of(a, rows[i].n), rows[i].hex);
        DV_CHECK_STR_EQ(hex_of_chunked(a, rows[i].n, 1), rows[i].hex);
    }
}

static void
test_streaming_matches_one_shot(void)
{
    uint8_t data[1000];
    for (size_t i = 0; i < sizeof data; i++) {
        data[i] = (uint8_t)(i * 31 + 7);
    }
    // Chunks smaller than, equal to and larger than a block, so updates start
    // with and without a partial block pending.
    static const size_t chunks[] = {1, 3, 55, 56, 63, 64, 65, 127, 1000};
    char want[DV_SHA256_HEX];
    strcpy(want, hex_of(data, sizeof data));
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        DV_CHECK_STR_EQ(hex_of_chunked(data, sizeof data, chunks[c]), want);
    }
    // Empty updates, NULL included, change nothing.
    dv_sha256_t ctx;
    dv_sha256_init(&ctx);
    dv_sha256_update(&ctx, NULL, 0);
    dv_sha256_update(&ctx, data, 500);
    dv_sha256_update(&ctx, data + 500, 0);
    dv_sha256_update(&ctx, data + 500, 500);
    uint8_t d[DV_SHA256_BYTES];
    char got[DV_SHA256_HEX];
    dv_sha256_final(&ctx, d);
    dv_sha256_hex(d, got);
    DV_CHECK_STR_EQ(got, want);
    // A context is reusable after init.
    dv_sha256_init(&ctx);
    dv_sha256_update(&ctx, "abc", 3);
    dv_sha256_final(&ctx, d);
    dv_sha256_hex(d, got);
    DV_CHECK_STR_EQ(
        got,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void
test_hex_is_lower_case(void)
{
    uint8_t d[DV_SHA256_BYTES];
    for (int i = 0; i < DV_SHA256_BYTES; i++) {
        d[i] = (uint8_t)(i * 8 + 7); // 07 0f 17 ... ff: every nibble shape
    }
    char hex[DV_SHA256_HEX];
    memset(hex, 'X', sizeof hex);
    dv_sha256_hex(d, hex);
    DV_CHECK_STR_EQ(
        hex,
        "070f171f272f373f474f575f676f777f878f979fa7afb7bfc7cfd7dfe7eff7ff");
    DV_CHECK_EQ(hex[DV_SHA256_HEX - 1], '\0');
}

static void
test_bundled_file(void)
{
    size_t len = 0;
    unsigned char *data =
        dv_test_read_file(dv_test_data("iris_train.csv"), &len);
    DV_CHECK(data != NULL);
    char one_shot[DV_SHA256_HEX], chunked[DV_SHA256_HEX];
    strcpy(one_shot, hex_of(data, len));
    strcpy(chunked, hex_of_chunked(data, len, 65));
    free(data);
    // data/checksums.sha256
    static const char want[] =
        "c2d36cf28c2f32fcc5b23b7c540096f1b117cfe302be8bff6358e2bd641e93b1";
    DV_CHECK_STR_EQ(one_shot, want);
    DV_CHECK_STR_EQ(chunked, want);
}

static const dv_test_case_t cases[] = {
    {"SHA extensions and portable C agree", test_both_paths_agree},
    {"NIST vectors", test_nist_vectors},
    {"one million 'a'", test_million_a},
    {"padding boundaries", test_padding_boundaries},
    {"streaming equals one-shot", test_streaming_matches_one_shot},
    {"hex is lower case", test_hex_is_lower_case},
    {"same digest as sha256sum", test_bundled_file},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
