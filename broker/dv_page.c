// dv_page — one page of a list reply (see dv_page.h).
#include "dv_page.h"

#include <stdlib.h>

#include "dv_mem.h"

struct dv_page {
    dv_msgw_t *items; // the kept items' values, back to back
    size_t budget;    // bytes they may take
    size_t mark;      // body bytes before the item being written
    size_t n;         // items kept
    bool full;        // one was refused
};

dv_page_t *
dv_page_new(size_t budget)
{
    dv_page_t *self = dv_calloc(1, sizeof *self);
    self->items = dv_msgw_new(DV_MSG_OK, 0); // a byte buffer: values only
    self->budget = budget;
    return self;
}

void
dv_page_destroy(dv_page_t **self_p)
{
    if (self_p && *self_p) {
        dv_msgw_destroy(&(*self_p)->items);
        free(*self_p);
        *self_p = NULL;
    }
}

dv_msgw_t *
dv_page_item(dv_page_t *self)
{
    size_t n_fields = 0;
    dv_msgw_body(self->items, &self->mark, &n_fields);
    return self->items;
}

bool
dv_page_keep(dv_page_t *self)
{
    size_t len = 0, n_fields = 0;
    dv_msgw_body(self->items, &len, &n_fields);
    if (self->full || len > self->budget) {
        dv_msgw_v_cut(self->items, self->mark);
        self->full = true;
        return false;
    }
    self->n++;
    return true;
}

bool
dv_page_full(const dv_page_t *self)
{
    return self->full;
}

size_t
dv_page_count(const dv_page_t *self)
{
    return self->n;
}

void
dv_page_put(dv_page_t *self, dv_msgw_t *w, const char *key)
{
    size_t len = 0, n_fields = 0;
    const uint8_t *bytes = dv_msgw_body(self->items, &len, &n_fields);
    dv_msgw_key(w, key);
    dv_msgw_v_array(w, self->n);
    dv_msgw_v_raw(w, bytes, len);
}
