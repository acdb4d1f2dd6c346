// dv_newest — an array of ids read newest (largest) first, sorted only as
// far as it is read: a max-heap built in O(n), then one O(log n) step per
// id taken. job_list reads the newest 100 of what may be a million jobs;
// sorting them all was ~80% of its time on the loop.
//
// A plain value over a borrowed array (the caller's, reordered in place):
// nothing to allocate or free. Threads: one.
#ifndef DV_NEWEST_H
#define DV_NEWEST_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *ids; // ids[0..heap) a max-heap, ids[heap..n) sorted
    size_t heap;   //
} dv_newest_t;

// Make ids[0..n) a heap (borrowed: it must outlive self).
dv_newest_t dv_newest_of(uint64_t *ids, size_t n);

// The id in place i of ids sorted ascending, for i taken from n - 1 down
// (any i at or above one already taken costs nothing): what is not sorted
// yet is taken off the heap.
uint64_t dv_newest_at(dv_newest_t *self, size_t i);

#endif
