// dv_catalog_msg — what the model and the data set handlers
// (dv_models_msg, dv_datasets_msg) share: a record's fields written from a
// table (one row a field: its key, how it is written, where it sits in the
// record), a request's name and version, and the reply to a removal.
//
// May call: dv_broker.c (through dv_broker_int.h), dv_catalog.h,
// dv_commit.h, dv_owners.h, dv_page.h and common/. Internal to broker/ (not
// installed); loop thread only.
#ifndef DV_CATALOG_MSG_H
#define DV_CATALOG_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dv_broker_int.h"

// How a record field goes on the wire.
typedef enum {
    DV_CATALOG_FIELD_STR,    // char[]: str
    DV_CATALOG_FIELD_U32,    // uint32_t: uint
    DV_CATALOG_FIELD_U64,    // uint64_t: uint
    DV_CATALOG_FIELD_SHA256, // uint8_t[DV_SHA256_BYTES]: bin
} dv_catalog_field_type_t;

// One row of a record's field table.
typedef struct {
    const char *key;              // its key in the reply
    dv_catalog_field_type_t type; // how it is written
    size_t off;                   // offsetof it in the record
} dv_catalog_field_t;

// A record field's key: a top-level key, or a key inside a map already
// opened (nested).
void dv_catalog_msg_key(dv_msgw_t *w, const char *key, bool nested);

// The n fields of rec that table names, in its order: top-level keys, or
// (nested) inside a map the caller opened with room for them.
void dv_catalog_msg_fields(dv_msgw_t *w,
                           const dv_catalog_field_t *table,
                           size_t n,
                           const void *rec,
                           bool nested);

// A request's `name` (size bytes) and optional `version` (0: the latest).
// A version past 32 bits names nothing: `missing` (DV_ENOMODEL,
// DV_ENOENT) with "no NOUN 'name' at that version". Returns 0 or DV_E*.
int dv_catalog_msg_ref(const dv_msg_t *m,
                       const char *noun,
                       int missing,
                       char *name,
                       size_t size,
                       uint32_t *version,
                       dv_error_t *err);

// Whether list rec (a record of the catalog being listed) is shown to the
// asking key, and its list item (one value) written into item.
typedef bool(dv_catalog_shown_fn)(void *arg, const void *rec);
typedef void(dv_catalog_item_fn)(void *arg, dv_msgw_t *item, const void *rec);

// A page of a catalog list (1.7) into reply w: under key, the records of
// recs (n of rec_size bytes, each a dv_catalog_head_t first, sorted by
// name then version) from the request's `from` on ([name, version]: a
// previous page's `next`; absent: the first), those shown (NULL: all)
// as item writes them, while they fit one page (DV_LIST_PAGE_BYTES); `next`
// names the first record left out. Returns 0, or DV_EFORMAT for a bad
// `from` (w untouched).
int dv_catalog_msg_page(dv_msgw_t *w,
                        const dv_msg_t *m,
                        const char *key,
                        const void *recs,
                        size_t n,
                        size_t rec_size,
                        dv_catalog_shown_fn *shown,
                        dv_catalog_item_fn *item,
                        void *arg,
                        dv_error_t *err);

// The reply to a removal of `removed` (> 0) versions of name: `ok` with
// removed; once no version is left (gone), its owner is forgotten in
// owners.
void dv_catalog_msg_removed(dv_broker_t *self,
                            const void *route,
                            size_t route_len,
                            uint64_t rid,
                            dv_owners_t *owners,
                            const char *name,
                            bool gone,
                            int removed);

#endif
