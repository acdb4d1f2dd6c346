// dv_newest — ids read newest first, sorted lazily (see dv_newest.h).
#include "dv_newest.h"

static void
sift_down(uint64_t *a, size_t n, size_t i)
{
    for (;;) {
        size_t top = i, l = 2 * i + 1, r = l + 1;
        if (l < n && a[l] > a[top]) {
            top = l;
        }
        if (r < n && a[r] > a[top]) {
            top = r;
        }
        if (top == i) {
            return;
        }
        uint64_t t = a[i];
        a[i] = a[top];
        a[top] = t;
        i = top;
    }
}

dv_newest_t
dv_newest_of(uint64_t *ids, size_t n)
{
    for (size_t i = n / 2; i-- > 0;) {
        sift_down(ids, n, i);
    }
    return (dv_newest_t){ids, n};
}

uint64_t
dv_newest_at(dv_newest_t *self, size_t i)
{
    while (self->heap > i) {
        uint64_t t = self->ids[0];
        self->ids[0] = self->ids[--self->heap];
        self->ids[self->heap] = t;
        sift_down(self->ids, self->heap, 0);
    }
    return self->ids[i];
}
