// dv_spare — stacks of freed blocks, one per 64-byte size class.
#include "dv_spare.h"

#include <stdlib.h>

#include "dv_mem.h"

#define CLASS_BYTES 64

struct dv_spare {
    void **tops;      // per class: last block put back; its first word links
    size_t n_classes; // max_block / CLASS_BYTES
    size_t kept, max; // bytes kept, and at most
};

// Class c holds blocks of (c + 1) * CLASS_BYTES bytes.
static size_t
class_of(size_t n)
{
    return n ? (n - 1) / CLASS_BYTES : 0;
}

dv_spare_t *
dv_spare_new(size_t max_block, size_t max_bytes)
{
    dv_spare_t *self = dv_calloc(1, sizeof *self);
    self->n_classes = max_block / CLASS_BYTES;
    self->tops =
        dv_calloc(self->n_classes ? self->n_classes : 1, sizeof *self->tops);
    self->max = max_bytes;
    return self;
}

void
dv_spare_destroy(dv_spare_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_spare_t *self = *self_p;
    for (size_t c = 0; c < self->n_classes; c++) {
        while (self->tops[c]) {
            void *next = *(void **)self->tops[c];
            free(self->tops[c]);
            self->tops[c] = next;
        }
    }
    free(self->tops);
    free(self);
    *self_p = NULL;
}

void *
dv_spare_get(dv_spare_t *self, size_t n)
{
    size_t c = class_of(n);
    if (c >= self->n_classes) {
        return malloc(n ? n : 1);
    }
    void *b = self->tops[c];
    if (!b) {
        return dv_malloc((c + 1) * CLASS_BYTES);
    }
    self->tops[c] = *(void **)b;
    self->kept -= (c + 1) * CLASS_BYTES;
    if (self->tops[c]) { // the next get's block: by then in the cache
        __builtin_prefetch(self->tops[c], 1);
    }
    return b;
}

void
dv_spare_put(dv_spare_t *self, void *block, size_t n)
{
    if (!block) {
        return;
    }
    size_t c = class_of(n), size = (c + 1) * CLASS_BYTES;
    if (c >= self->n_classes || self->kept + size > self->max) {
        free(block);
        return;
    }
    *(void **)block = self->tops[c];
    self->tops[c] = block;
    self->kept += size;
}

size_t
dv_spare_kept_bytes(const dv_spare_t *self)
{
    return self->kept;
}
