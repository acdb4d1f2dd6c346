// dv_hash — the slot of a 64-bit key (a job id, a request id) in a table of
// a power-of-two size, for every id-keyed hash table in Drover.
//
// Fibonacci hashing (Knuth, TAOCP 6.4): multiply by 2^64/phi and keep the
// TOP log2(size) bits of the product. The top bits are the ones that mix
// every bit of the key; the middle bits (what the tables took before:
// (key * C) >> 32, masked) send sequential ids to a fraction of the slots
// (100,000 sequential ids over 65,536 buckets used 7,929 of them, chains of
// 15), and a lookup of an old id walked the whole chain. A plain function:
// nothing to create or free.
#ifndef DV_HASH_H
#define DV_HASH_H

#include <stddef.h>
#include <stdint.h>

// The slot of key in [0, size). size: a power of two (1 is allowed: slot 0).
static inline size_t
dv_hash_slot(uint64_t key, size_t size)
{
    if (size <= 1) {
        return 0;
    }
    unsigned bits = (unsigned)__builtin_ctzll((unsigned long long)size);
    return (size_t)((key * 0x9e3779b97f4a7c15ULL) >> (64 - bits));
}

// FNV-1a (64-bit) over n bytes, continuing from h (DV_HASH_BYTES_INIT to
// start; a previous result to hash several parts as one): for names and
// routing ids, where the bytes vary and an id's multiply does not apply.
#define DV_HASH_BYTES_INIT 1469598103934665603ULL

static inline uint64_t
dv_hash_bytes(const void *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h = (h ^ ((const uint8_t *)p)[i]) * 1099511628211ULL;
    }
    return h;
}

#endif
