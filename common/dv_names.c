// dv_names — open addressing over (hash, name, index), at most half full.
#include "dv_names.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dv_hash.h"
#include "dv_mem.h"

typedef struct {
    uint64_t hash;
    char *name; // owned; NULL: empty slot
    size_t index;
} slot_t;

struct dv_names {
    slot_t *slots;
    size_t size; // power of two
    size_t used;
};

dv_names_t *
dv_names_new(void)
{
    dv_names_t *self = dv_calloc(1, sizeof *self);
    self->size = 16;
    self->slots = dv_calloc(self->size, sizeof *self->slots);
    return self;
}

void
dv_names_destroy(dv_names_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_names_t *self = *self_p;
    for (size_t i = 0; i < self->size; i++) {
        free(self->slots[i].name);
    }
    free(self->slots);
    free(self);
    *self_p = NULL;
}

static uint64_t
hash_of(const char *name)
{
    return dv_hash_bytes(name, strlen(name), DV_HASH_BYTES_INIT);
}

// The slot holding name, or the empty one where it would go.
static slot_t *
probe(const dv_names_t *self, const char *name, uint64_t h)
{
    size_t mask = self->size - 1;
    for (size_t i = dv_hash_slot(h, self->size);; i = (i + 1) & mask) {
        slot_t *s = &self->slots[i];
        if (!s->name || (s->hash == h && strcmp(s->name, name) == 0)) {
            return s;
        }
    }
}

size_t
dv_names_find(const dv_names_t *self, const char *name)
{
    const slot_t *s = probe(self, name, hash_of(name));
    return s->name ? s->index : SIZE_MAX;
}

void
dv_names_add(dv_names_t *self, const char *name, size_t index)
{
    if (2 * (self->used + 1) > self->size) {
        slot_t *old = self->slots;
        size_t old_size = self->size;
        self->size *= 2;
        self->slots = dv_calloc(self->size, sizeof *self->slots);
        for (size_t i = 0; i < old_size; i++) {
            if (old[i].name) {
                *probe(self, old[i].name, old[i].hash) = old[i];
            }
        }
        free(old);
    }
    uint64_t h = hash_of(name);
    slot_t *s = probe(self, name, h);
    if (!s->name) {
        s->name = dv_strdup(name);
        s->hash = h;
        self->used++;
    }
    s->index = index;
}

// Linear probing without tombstones: the entries after the hole that may
// not stay behind it (their home slot is not cyclically in (hole, here])
// move back into it, one by one, so every probe still finds its name.
void
dv_names_remove(dv_names_t *self, const char *name)
{
    slot_t *s = probe(self, name, hash_of(name));
    if (!s->name) {
        return;
    }
    free(s->name);
    self->used--;
    size_t mask = self->size - 1;
    size_t hole = (size_t)(s - self->slots);
    for (size_t j = (hole + 1) & mask; self->slots[j].name;
         j = (j + 1) & mask) {
        size_t home = dv_hash_slot(self->slots[j].hash, self->size);
        bool stays =
            hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            self->slots[hole] = self->slots[j];
            hole = j;
        }
    }
    self->slots[hole] = (slot_t){0};
}
