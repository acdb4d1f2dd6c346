// dv_spare — freed blocks kept by size for the next record of that size.
//
// For records a daemon makes and frees in bursts: a forward pass ends ~180
// jobs at once, and the next submit_many makes ~20. glibc's per-thread
// cache keeps 7 blocks of a size (and none over 1,032 bytes: a job record
// holding a 1 KiB row goes to the large bins), so the rest went through
// _int_malloc and _int_free, walking bins and cold chunk headers. Here
// each 64-byte size class is a stack of the blocks themselves: the last
// one freed comes back first, still in cache. At most max_bytes are kept
// in all (the caller's bound in dv_limits.h); past it, put frees.
//
// Not thread-safe: one per owner, used on its thread (the broker's loop).
#ifndef DV_SPARE_H
#define DV_SPARE_H

#include <stddef.h>

typedef struct dv_spare dv_spare_t;

// Blocks up to max_block bytes are kept (larger ones are plain malloc and
// free), at most max_bytes of them. Caller owns the result (destroy).
dv_spare_t *dv_spare_new(size_t max_block, size_t max_bytes);

// Frees the kept blocks. Blocks still out stay the caller's (dv_spare_put
// them first, or free() them: they are malloc blocks).
void dv_spare_destroy(dv_spare_t **self_p);

// A block of at least n bytes, not zeroed. Up to max_block it is our own
// bookkeeping and never NULL (aborts on OOM, like dv_malloc); a larger
// block is data-sized: NULL when it cannot be had (like dv_try_malloc).
// Caller owns it: dv_spare_put(n) or free().
void *dv_spare_get(dv_spare_t *self, size_t n);

// Take back a block from dv_spare_get, with the n it was asked for (or
// NULL): kept while under the bound, else freed.
void dv_spare_put(dv_spare_t *self, void *block, size_t n);

// Bytes kept now (tests).
size_t dv_spare_kept_bytes(const dv_spare_t *self);

#endif
