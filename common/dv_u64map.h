// dv_u64map — a hash map from non-zero uint64 keys (ids) to uint64 values:
// open addressing with linear probing, at most half full, backward-shift
// deletion (no tombstones, so lookups stay short however many come and
// go). For the broker's id-keyed side tables, where a walk per lookup
// grew with what the broker holds.
//
// Caller owns the map (dv_u64map_destroy). Not thread-safe.
#ifndef DV_U64MAP_H
#define DV_U64MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dv_u64map dv_u64map_t;

// An empty map. Never NULL.
dv_u64map_t *dv_u64map_new(void);
void dv_u64map_destroy(dv_u64map_t **self_p);

// Set key (not 0) to value, replacing what it had.
void dv_u64map_put(dv_u64map_t *self, uint64_t key, uint64_t value);

// Whether key is there; its value into *value (may be NULL).
bool dv_u64map_get(const dv_u64map_t *self, uint64_t key, uint64_t *value);

// Remove key; whether it was there.
bool dv_u64map_del(dv_u64map_t *self, uint64_t key);

// Keys held.
size_t dv_u64map_count(const dv_u64map_t *self);

#endif
