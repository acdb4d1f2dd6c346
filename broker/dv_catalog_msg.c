// dv_catalog_msg — the handlers' shared parts for models and data sets
// (see dv_catalog_msg.h).
#include "dv_catalog_msg.h"

#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "dv_catalog.h"
#include "dv_commit.h"
#include "dv_limits.h"
#include "dv_msgpack.h"
#include "dv_owners.h"
#include "dv_page.h"
#include "dv_proto.h"
#include "dv_sha256.h"

void
dv_catalog_msg_key(dv_msgw_t *w, const char *key, bool nested)
{
    if (nested) {
        dv_msgw_v_str(w, key);
    } else {
        dv_msgw_key(w, key);
    }
}

void
dv_catalog_msg_fields(dv_msgw_t *w,
                      const dv_catalog_field_t *table,
                      size_t n,
                      const void *rec,
                      bool nested)
{
    const uint8_t *base = rec;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *at = base + table[i].off;
        uint32_t u32;
        uint64_t u64;
        dv_catalog_msg_key(w, table[i].key, nested);
        switch (table[i].type) {
        case DV_CATALOG_FIELD_STR:
            dv_msgw_v_str(w, (const char *)at);
            break;
        case DV_CATALOG_FIELD_U32:
            memcpy(&u32, at, sizeof u32);
            dv_msgw_v_uint(w, u32);
            break;
        case DV_CATALOG_FIELD_U64:
            memcpy(&u64, at, sizeof u64);
            dv_msgw_v_uint(w, u64);
            break;
        case DV_CATALOG_FIELD_SHA256:
            dv_msgw_v_bin(w, at, DV_SHA256_BYTES);
            break;
        }
    }
}

int
dv_catalog_msg_ref(const dv_msg_t *m,
                   const char *noun,
                   int missing,
                   char *name,
                   size_t size,
                   uint32_t *version,
                   dv_error_t *err)
{
    uint64_t v = 0;
    int rc;
    *version = 0;
    if ((rc = dv_msg_str(m, "name", name, size, err)) != 0 ||
        (rc = dv_msg_uint_or(m, "version", 0, &v, err)) != 0) {
        return rc;
    }
    if (v > UINT32_MAX) {
        return dv_errorf(err, missing, "no %s '%s' at that version", noun,
                         name);
    }
    *version = (uint32_t)v;
    return 0;
}

void
dv_catalog_msg_removed(dv_broker_t *self,
                       const void *route,
                       size_t route_len,
                       uint64_t rid,
                       dv_owners_t *owners,
                       const char *name,
                       bool gone,
                       int removed)
{
    if (gone) {
        dv_owners_forget(owners, name);
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_OK, rid);
    dv_msgw_uint(w, "removed", (uint64_t)removed);
    dv_commit_reply_stored(self, route, route_len, rid, w);
}

// The request's `from` ([name, version]) into name and *version; absent:
// "" and 0 (before every record). Returns 0 or DV_EFORMAT.
static int
page_from(const dv_msg_t *m,
          char *name,
          size_t size,
          uint32_t *version,
          dv_error_t *err)
{
    name[0] = '\0';
    *version = 0;
    const msgpack_object *f = dv_msg_get(m, "from");
    if (!f) {
        return 0;
    }
    const msgpack_object *a =
        f->type == MSGPACK_OBJECT_ARRAY && f->via.array.size == 2
            ? f->via.array.ptr
            : NULL;
    if (!a || a[0].type != MSGPACK_OBJECT_STR || a[0].via.str.size == 0 ||
        a[0].via.str.size >= size ||
        a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        a[1].via.u64 > UINT32_MAX) {
        return dv_errorf(err, DV_EFORMAT,
                         "'from' must be [name, version], as a previous "
                         "page's next");
    }
    memcpy(name, dv_msgpack_str_ptr(&a[0]), a[0].via.str.size);
    name[a[0].via.str.size] = '\0';
    *version = (uint32_t)a[1].via.u64;
    return 0;
}

int
dv_catalog_msg_page(dv_msgw_t *w,
                    const dv_msg_t *m,
                    const char *key,
                    const void *recs,
                    size_t n,
                    size_t rec_size,
                    dv_catalog_shown_fn *shown,
                    dv_catalog_item_fn *item,
                    void *arg,
                    dv_error_t *err)
{
    char name[DV_MAX_WIRE_NAME + 1];
    uint32_t version = 0;
    int rc = page_from(m, name, sizeof name, &version, err);
    if (rc) {
        return rc;
    }
    const uint8_t *at = recs;
    size_t i = 0;
    while (i < n) { // the first at or after (name, version)
        const dv_catalog_head_t *h = (const void *)(at + i * rec_size);
        int c = strcmp(h->name, name);
        if (c > 0 || (c == 0 && h->version >= version)) {
            break;
        }
        i++;
    }
    dv_page_t *page = dv_page_new(DV_LIST_PAGE_BYTES);
    const dv_catalog_head_t *next = NULL;
    for (; i < n && !next; i++) {
        const void *rec = at + i * rec_size;
        if (shown && !shown(arg, rec)) {
            continue;
        }
        item(arg, dv_page_item(page), rec);
        if (!dv_page_keep(page)) {
            next = rec;
        }
    }
    dv_page_put(page, w, key);
    dv_page_destroy(&page);
    if (next) {
        dv_msgw_key(w, "next");
        dv_msgw_v_array(w, 2);
        dv_msgw_v_str(w, next->name);
        dv_msgw_v_uint(w, next->version);
    }
    return 0;
}
