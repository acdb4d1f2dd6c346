// dv_sha256 — SHA-256 (FIPS 180-4) for data set and model file checksums.
//
// Same digests as `sha256sum`, so a model's recorded data set checksum can be
// compared with data/checksums.sha256 by hand. Streaming or one-shot.
#ifndef DV_SHA256_H
#define DV_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DV_SHA256_BYTES 32
#define DV_SHA256_HEX   65 // 64 hex digits + NUL

typedef struct {
    uint32_t state[8]; // hash state H0..H7
    uint64_t n_bytes;  // total bytes absorbed so far
    uint8_t block[64]; // pending partial block
    size_t block_len;  // bytes used in block
} dv_sha256_t;

void dv_sha256_init(dv_sha256_t *ctx);
void dv_sha256_update(dv_sha256_t *ctx, const void *data, size_t len);
// Write the digest to out; ctx must be re-initialized before reuse.
void dv_sha256_final(dv_sha256_t *ctx, uint8_t out[DV_SHA256_BYTES]);

// One-shot digest of data[0..len).
void dv_sha256(const void *data, size_t len, uint8_t out[DV_SHA256_BYTES]);

// Tests: portable true hashes with the portable C from now on, false with
// the CPU's SHA extensions where it has them (the default). Returns whether
// this CPU has them. Not for use while other threads hash.
bool dv_sha256_use_portable(bool portable);

// Lower-case hex of a digest into hex (NUL-terminated).
void dv_sha256_hex(const uint8_t digest[DV_SHA256_BYTES],
                   char hex[DV_SHA256_HEX]);

#endif
