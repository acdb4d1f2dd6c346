// dv_catalog_msg — the handlers' shared parts for models and data sets
// (see dv_catalog_msg.h).
#include "dv_catalog_msg.h"

#include <stdio.h>
#include <string.h>

#include "dv_commit.h"
#include "dv_owners.h"
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
