// dv_sha256 — SHA-256 as specified in FIPS 180-4, portable C (words are
// assembled from bytes, so host endianness never matters).
//
// Model: a dv_sha256_t is a plain value owned by the caller; no allocation,
// no globals beyond the constant tables, so any number of contexts may run
// on any threads. Input is buffered in ctx->block until a whole 64-byte block
// is there, so update accepts any chunk sizes and gives the one-shot digest.
// References: FIPS 180-4 sections 4.2.2 (constants), 5.1.1 (padding),
// 5.3.3 (initial hash value) and 6.2.2 (the compression function).
//
// On x86-64 CPUs with the SHA extensions (Intel since Goldmont/Ice Lake,
// AMD since Zen) whole blocks go through SHA256RNDS2/MSG1/MSG2 instead, the
// arrangement of Intel's "Intel SHA Extensions" paper (2013): several times
// faster, and data sets and model files are hashed at every push, fetch and
// training job. Chosen once, by CPUID; the same digests either way
// (test_sha256 compares the two on random data).
#include "dv_sha256.h"

#include <stdbool.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DV_SHA256_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

// K0..K63: the first 32 bits of the fractional parts of the cube roots of the
// first 64 primes (FIPS 180-4 4.2.2).
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

// Rotate right; n is always in 1..31 here, so neither shift is by 32.
static inline uint32_t
ror(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

// Fold one 64-byte block into state (FIPS 180-4 6.2.2). Words are read
// big-endian byte by byte.
static void
compress_one(uint32_t state[8], const uint8_t block[64])
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
        w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 |
               (uint32_t)block[4 * i + 2] << 8 | (uint32_t)block[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; i++) {
        uint32_t s1 = ror(e, 6) ^ ror(e, 11) ^ ror(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = h + s1 + ch + K[i] + w[i];
        uint32_t s0 = ror(a, 2) ^ ror(a, 13) ^ ror(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = s0 + maj;
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
}

static void
compress_portable(uint32_t state[8], const uint8_t *p, size_t blocks)
{
    for (size_t i = 0; i < blocks; i++) {
        compress_one(state, p + 64 * i);
    }
}

#ifdef DV_SHA256_X86
// The same as compress_portable with the SHA extensions. State is kept as
// ABEF / CDGH halves (the instructions' layout); each group of 4 rounds
// adds K to 4 message words, runs SHA256RNDS2 twice, and extends the
// schedule with SHA256MSG1/MSG2 while it runs.
__attribute__((target("sha,sse4.1,ssse3"))) static void
compress_shani(uint32_t state[8], const uint8_t *p, size_t blocks)
{
    const __m128i swap =
        _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&state[0]);
    __m128i st1 = _mm_loadu_si128((const __m128i *)&state[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);         // CDAB
    st1 = _mm_shuffle_epi32(st1, 0x1B);         // EFGH
    __m128i st0 = _mm_alignr_epi8(tmp, st1, 8); // ABEF
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);      // CDGH
    for (size_t b = 0; b < blocks; b++, p += 64) {
        __m128i abef = st0, cdgh = st1, m[4];
        for (int g = 0; g < 4; g++) {
            m[g] = _mm_shuffle_epi8(
                _mm_loadu_si128((const __m128i *)(p + 16 * g)), swap);
        }
        for (int g = 0; g < 16; g++) {
            __m128i k = _mm_loadu_si128((const __m128i *)&K[4 * g]);
            __m128i msg = _mm_add_epi32(m[g & 3], k);
            st1 = _mm_sha256rnds2_epu32(st1, st0, msg);
            if (g >= 3 && g <= 14) { // words of group g + 1
                __m128i t = _mm_alignr_epi8(m[g & 3], m[(g + 3) & 3], 4);
                m[(g + 1) & 3] = _mm_add_epi32(m[(g + 1) & 3], t);
                m[(g + 1) & 3] = _mm_sha256msg2_epu32(m[(g + 1) & 3], m[g & 3]);
            }
            msg = _mm_shuffle_epi32(msg, 0x0E);
            st0 = _mm_sha256rnds2_epu32(st0, st1, msg);
            if (g >= 1 && g <= 12) { // first half of group g + 3's words
                m[(g + 3) & 3] = _mm_sha256msg1_epu32(m[(g + 3) & 3], m[g & 3]);
            }
        }
        st0 = _mm_add_epi32(st0, abef);
        st1 = _mm_add_epi32(st1, cdgh);
    }
    tmp = _mm_shuffle_epi32(st0, 0x1B);    // FEBA
    st1 = _mm_shuffle_epi32(st1, 0xB1);    // DCHG
    st0 = _mm_blend_epi16(tmp, st1, 0xF0); // DCBA
    st1 = _mm_alignr_epi8(st1, tmp, 8);    // HGFE
    _mm_storeu_si128((__m128i *)&state[0], st0);
    _mm_storeu_si128((__m128i *)&state[4], st1);
}

// CPUID: SHA (leaf 7 EBX bit 29), SSSE3 and SSE4.1 (leaf 1 ECX bits 9, 19).
static bool
have_shani(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 9)) ||
        !(c & (1u << 19))) {
        return false;
    }
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29));
}
#endif

// The block function in use: chosen on first use (a benign race: every
// thread picks the same one).
static int s_impl = -1; // -1: not chosen; 0: portable; 1: SHA extensions

static void
compress(uint32_t state[8], const uint8_t *p, size_t blocks)
{
    int impl = __atomic_load_n(&s_impl, __ATOMIC_RELAXED);
    if (impl < 0) {
#ifdef DV_SHA256_X86
        impl = have_shani() ? 1 : 0;
#else
        impl = 0;
#endif
        __atomic_store_n(&s_impl, impl, __ATOMIC_RELAXED);
    }
#ifdef DV_SHA256_X86
    if (impl == 1) {
        compress_shani(state, p, blocks);
        return;
    }
#endif
    compress_portable(state, p, blocks);
}

bool
dv_sha256_use_portable(bool portable)
{
    bool have = false;
#ifdef DV_SHA256_X86
    have = have_shani();
#endif
    __atomic_store_n(&s_impl, !portable && have ? 1 : 0, __ATOMIC_RELAXED);
    return have;
}

void
dv_sha256_init(dv_sha256_t *ctx)
{
    // First 32 bits of the fractional parts of the square roots of the
    // first 8 primes (FIPS 180-4 5.3.3).
    static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
                                   0xa54ff53a, 0x510e527f, 0x9b05688c,
                                   0x1f83d9ab, 0x5be0cd19};
    memcpy(ctx->state, H0, sizeof H0);
    ctx->n_bytes = 0;
    ctx->block_len = 0;
}

void
dv_sha256_update(dv_sha256_t *ctx, const void *data, size_t len)
{
    // memcpy from NULL is undefined even for 0 bytes; (NULL, 0) is a valid
    // empty update.
    if (len == 0) {
        return;
    }
    const uint8_t *p = data;
    ctx->n_bytes += len;
    // Top up a partial block first; whole blocks then go straight from the
    // caller's buffer, and the tail waits in ctx->block.
    if (ctx->block_len) {
        size_t take = 64 - ctx->block_len < len ? 64 - ctx->block_len : len;
        memcpy(ctx->block + ctx->block_len, p, take);
        ctx->block_len += take;
        p += take;
        len -= take;
        if (ctx->block_len < 64) {
            return;
        }
        compress(ctx->state, ctx->block, 1);
        ctx->block_len = 0;
    }
    if (len >= 64) {
        compress(ctx->state, p, len / 64);
        p += len / 64 * 64;
        len %= 64;
    }
    memcpy(ctx->block, p, len);
    ctx->block_len = len;
}

void
dv_sha256_final(dv_sha256_t *ctx, uint8_t out[DV_SHA256_BYTES])
{
    uint64_t bits = ctx->n_bytes * 8;
    uint8_t pad[72] = {0x80};
    // Padding (FIPS 180-4 5.1.1): a 1 bit, zeros up to 56 mod 64, then the
    // message length in bits as a 64-bit big-endian number. At most 64 + 8
    // bytes, when the pending block has no room for the length.
    size_t pad_len = (ctx->block_len < 56 ? 56 : 120) - ctx->block_len;
    for (int i = 0; i < 8; i++) {
        pad[pad_len + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
    }
    dv_sha256_update(ctx, pad, pad_len + 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(ctx->state[i] >> 24);
        out[4 * i + 1] = (uint8_t)(ctx->state[i] >> 16);
        out[4 * i + 2] = (uint8_t)(ctx->state[i] >> 8);
        out[4 * i + 3] = (uint8_t)ctx->state[i];
    }
}

void
dv_sha256(const void *data, size_t len, uint8_t out[DV_SHA256_BYTES])
{
    dv_sha256_t ctx;
    dv_sha256_init(&ctx);
    dv_sha256_update(&ctx, data, len);
    dv_sha256_final(&ctx, out);
}

void
dv_sha256_hex(const uint8_t digest[DV_SHA256_BYTES], char hex[DV_SHA256_HEX])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < DV_SHA256_BYTES; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[64] = '\0';
}
