// dv_timeq — binary min-heap on `at` (ties by insertion order do not
// matter: entries due together are all handled in the same turn).
#include "dv_timeq.h"

#include <stdlib.h>

#include "dv_mem.h"

struct dv_timeq {
    dv_timeq_entry_t *heap; // heap[0] is the earliest
    size_t n, cap;
};

dv_timeq_t *
dv_timeq_new(void)
{
    return dv_calloc(1, sizeof(dv_timeq_t));
}

void
dv_timeq_destroy(dv_timeq_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    free((*self_p)->heap);
    free(*self_p);
    *self_p = NULL;
}

void
dv_timeq_push(dv_timeq_t *self, dv_timeq_entry_t entry)
{
    if (self->n == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 64;
        self->heap = dv_realloc(self->heap, self->cap * sizeof *self->heap);
    }
    size_t i = self->n++;
    while (i > 0 && self->heap[(i - 1) / 2].at > entry.at) {
        self->heap[i] = self->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    self->heap[i] = entry;
}

bool
dv_timeq_peek(const dv_timeq_t *self, dv_timeq_entry_t *out)
{
    if (self->n == 0) {
        return false;
    }
    *out = self->heap[0];
    return true;
}

// Put e at slot i or below it, moving earlier children up (the heap
// below i, without i, holds).
static void
sift_down(dv_timeq_t *self, size_t i, dv_timeq_entry_t e)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= self->n) {
            break;
        }
        if (c + 1 < self->n && self->heap[c + 1].at < self->heap[c].at) {
            c++;
        }
        if (self->heap[c].at >= e.at) {
            break;
        }
        self->heap[i] = self->heap[c];
        i = c;
    }
    self->heap[i] = e;
}

bool
dv_timeq_pop_due(dv_timeq_t *self, uint64_t now, dv_timeq_entry_t *out)
{
    if (self->n == 0 || self->heap[0].at > now) {
        return false;
    }
    *out = self->heap[0];
    dv_timeq_entry_t last = self->heap[--self->n];
    if (self->n) {
        sift_down(self, 0, last);
    }
    return true;
}

size_t
dv_timeq_filter(dv_timeq_t *self, dv_timeq_keep_fn *keep, void *arg)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->n; i++) {
        if (keep(&self->heap[i], arg)) {
            self->heap[kept++] = self->heap[i];
        }
    }
    size_t dropped = self->n - kept;
    self->n = kept;
    for (size_t i = kept / 2; i-- > 0;) { // Floyd: bottom-up, O(n)
        sift_down(self, i, self->heap[i]);
    }
    return dropped;
}

size_t
dv_timeq_size(const dv_timeq_t *self)
{
    return self->n;
}
