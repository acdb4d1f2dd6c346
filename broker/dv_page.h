// dv_page — one page of a list reply (protocol 1.7). Items are written one
// at a time and kept while the page stays within its budget in bytes; the
// first that does not fit is taken back and ends the page. The reply then
// carries `next`, where the following page starts, which the client sends
// back as `from`. A reply header longer than DV_MAX_HEADER_BYTES is one no
// client reads: lists of models, data sets, workers and dead letters once
// grew past it, and their requests went unanswered.
//
// Owns its scratch writer; dv_page_put copies the kept items into a reply.
// Threads: one.
#ifndef DV_PAGE_H
#define DV_PAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "dv_proto.h"

typedef struct dv_page dv_page_t;

// A page of at most budget bytes of items. Never NULL.
dv_page_t *dv_page_new(size_t budget);
void dv_page_destroy(dv_page_t **self_p);

// The writer for the next item (borrowed): write exactly one value into it
// with the dv_msgw_v_* calls, then call dv_page_keep.
dv_msgw_t *dv_page_item(dv_page_t *self);

// Keep the item just written when the page still fits its budget: true.
// Otherwise the item is taken back and the page is full: false (and every
// later dv_page_keep is false too, so a page never skips an item).
bool dv_page_keep(dv_page_t *self);

// Whether an item was refused (the list goes on in a next page).
bool dv_page_full(const dv_page_t *self);

// Items kept.
size_t dv_page_count(const dv_page_t *self);

// Field key of reply w: an array of the items kept, in the order written.
void dv_page_put(dv_page_t *self, dv_msgw_t *w, const char *key);

#endif
