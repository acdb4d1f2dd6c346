// dv_u64map — open addressing over (key, value), at most half full. See
// dv_u64map.h.
#include "dv_u64map.h"

#include <stdlib.h>

#include "dv_hash.h"
#include "dv_mem.h"

typedef struct {
    uint64_t key; // 0: empty
    uint64_t value;
} slot_t;

struct dv_u64map {
    slot_t *slots;
    size_t cap; // a power of two (0: none yet)
    size_t n;
};

dv_u64map_t *
dv_u64map_new(void)
{
    return dv_calloc(1, sizeof(dv_u64map_t));
}

void
dv_u64map_destroy(dv_u64map_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    free((*self_p)->slots);
    free(*self_p);
    *self_p = NULL;
}

// The slot holding key, or the empty one where it would go (cap > 0).
static size_t
slot_of(const dv_u64map_t *self, uint64_t key)
{
    size_t mask = self->cap - 1;
    size_t i = dv_hash_slot(key, self->cap);
    while (self->slots[i].key && self->slots[i].key != key) {
        i = (i + 1) & mask;
    }
    return i;
}

void
dv_u64map_put(dv_u64map_t *self, uint64_t key, uint64_t value)
{
    dv_assert(key != 0);
    if (2 * (self->n + 1) > self->cap) {
        slot_t *old = self->slots;
        size_t old_cap = self->cap;
        self->cap = old_cap ? 2 * old_cap : 16;
        self->slots = dv_calloc(self->cap, sizeof *self->slots);
        for (size_t i = 0; i < old_cap; i++) {
            if (old[i].key) {
                self->slots[slot_of(self, old[i].key)] = old[i];
            }
        }
        free(old);
    }
    slot_t *s = &self->slots[slot_of(self, key)];
    self->n += s->key == 0;
    *s = (slot_t){key, value};
}

bool
dv_u64map_get(const dv_u64map_t *self, uint64_t key, uint64_t *value)
{
    if (!self->n || !key) {
        return false;
    }
    const slot_t *s = &self->slots[slot_of(self, key)];
    if (s->key != key) {
        return false;
    }
    if (value) {
        *value = s->value;
    }
    return true;
}

bool
dv_u64map_del(dv_u64map_t *self, uint64_t key)
{
    if (!dv_u64map_get(self, key, NULL)) {
        return false;
    }
    size_t mask = self->cap - 1, hole = slot_of(self, key);
    self->n--;
    // Entries after the hole whose home is not cyclically in (hole, j]
    // move back into it.
    for (size_t j = (hole + 1) & mask; self->slots[j].key; j = (j + 1) & mask) {
        size_t home = dv_hash_slot(self->slots[j].key, self->cap);
        bool stays =
            hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            self->slots[hole] = self->slots[j];
            hole = j;
        }
    }
    self->slots[hole] = (slot_t){0, 0};
    return true;
}

size_t
dv_u64map_count(const dv_u64map_t *self)
{
    return self->n;
}
