// dv_le — little-endian integers in byte buffers, for every Drover format
// that stores them (store records and replicated batches, raft entries, job
// records, checkpoints, model files, audit records, wire floats).
//
// Byte by byte, so the result is the same on any host and the buffer need
// not be aligned. Plain functions on uint8_t *: nothing to create or free.
// None of them checks bounds: the caller has checked that the bytes are
// there (a reader that must refuse short input checks first, as dv_repl's
// entry reader does).
#ifndef DV_LE_H
#define DV_LE_H

#include <stdint.h>

// Write the low n_bytes (0 to 8) bytes of v at p, least significant first;
// returns p + n_bytes (for writers that advance through a buffer).
static inline uint8_t *
dv_le_put(uint8_t *p, uint64_t v, int n_bytes)
{
    for (int i = 0; i < n_bytes; i++) {
        *p++ = (uint8_t)(v >> (8 * i));
    }
    return p;
}

// The n_bytes (0 to 8) bytes at p, least significant first.
static inline uint64_t
dv_le_get(const uint8_t *p, int n_bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < n_bytes; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static inline void
dv_le_put16(uint8_t *p, uint16_t v)
{
    dv_le_put(p, v, 2);
}

static inline void
dv_le_put32(uint8_t *p, uint32_t v)
{
    dv_le_put(p, v, 4);
}

static inline void
dv_le_put64(uint8_t *p, uint64_t v)
{
    dv_le_put(p, v, 8);
}

static inline uint16_t
dv_le_get16(const uint8_t *p)
{
    return (uint16_t)dv_le_get(p, 2);
}

static inline uint32_t
dv_le_get32(const uint8_t *p)
{
    return (uint32_t)dv_le_get(p, 4);
}

static inline uint64_t
dv_le_get64(const uint8_t *p)
{
    return dv_le_get(p, 8);
}

#endif
