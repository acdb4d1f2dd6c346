// dv_datasets_msg — the data set catalog's client handlers.
//
// Owns: dataset_push (chunked uploads held in self->uploads until complete),
// dataset_get, _list, _rm, _share.
//
// The model and its references: dv_broker_int.h and dv_broker.c.
#include "dv_datasets_msg.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "dv_authorize.h"
#include "dv_broker_int.h"
#include "dv_catalog.h"
#include "dv_catalog_msg.h"
#include "dv_commit.h"
#include "dv_datasets.h"
#include "dv_limits.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_models_msg.h"
#include "dv_owners.h"
#include "dv_proto.h"
#include "dv_records.h"
#include "dv_registry.h"
#include "dv_sched.h"
#include "dv_store.h"

// ------------------------------------------------------------ data sets

// A data set record's fields, in the order replies carry them.
static const dv_catalog_field_t DATASET_FIELDS[] = {
    {"name", DV_CATALOG_FIELD_STR, offsetof(dv_dataset_info_t, name)},
    {"version", DV_CATALOG_FIELD_U32, offsetof(dv_dataset_info_t, version)},
    {"sha256", DV_CATALOG_FIELD_SHA256, offsetof(dv_dataset_info_t, sha256)},
    {"bytes", DV_CATALOG_FIELD_U64, offsetof(dv_dataset_info_t, bytes)},
    {"rows", DV_CATALOG_FIELD_U64, offsetof(dv_dataset_info_t, rows)},
    {"columns", DV_CATALOG_FIELD_U32, offsetof(dv_dataset_info_t, columns)},
    {"target", DV_CATALOG_FIELD_STR, offsetof(dv_dataset_info_t, target)},
    {"created_us", DV_CATALOG_FIELD_U64,
     offsetof(dv_dataset_info_t, created_us)},
};
#define N_DATASET_FIELDS (sizeof DATASET_FIELDS / sizeof DATASET_FIELDS[0])

static void
write_dataset_info(dv_msgw_t *w, const dv_dataset_info_t *r, bool nested)
{
    dv_catalog_msg_fields(w, DATASET_FIELDS, N_DATASET_FIELDS, r, nested);
}

// A complete upload validated and written on the pool.
typedef struct {
    dv_work_t work;
    dv_broker_t *broker;
    uint8_t route[ROUTE_MAX];
    size_t route_len;
    uint64_t rid;
    char *dir;
    upload_t *up;                  // owned (buf too)
    char owner[DV_KEY_ID_MAX + 1]; // the key storing it ("": plain mode)
    uint32_t version;
    dv_dataset_info_t info;
    int rc;
    dv_error_t err;
} ds_store_t;

static void
work_dataset(dv_work_t *req)
{
    ds_store_t *d = req->data;
    d->rc = dv_datasets_prepare(d->dir, d->up->name, d->version, d->up->buf,
                                d->up->total, d->up->sha256, &d->info, &d->err);
}

static void
after_dataset(dv_work_t *req, int status)
{
    ds_store_t *d = req->data;
    dv_broker_t *self = d->broker;
    if (status != 0 && d->rc == 0) {
        d->rc = dv_errorf(&d->err, DV_ECANCELED, "data set push cancelled");
    }
    if (d->rc == 0 && (d->rc = dv_authorize_store_refused(
                           self, self->data_owners, "dataset_push", d->up->name,
                           d->owner, &d->err)) != 0) {
        dv_datasets_discard(self->datasets, &d->info);
    }
    if (d->rc) {
        dv_datasets_release(self->datasets, d->up->name, d->version);
        dv_broker_client_error(self, d->route, d->route_len, d->rid, 0, d->rc,
                               d->err.text);
        free(d->up->buf);
    } else {
        const dv_dataset_info_t *info =
            dv_datasets_commit(self->datasets, &d->info, d->up->buf);
        dv_authorize_set_owner(self, self->data_owners, info->name, d->owner);
        dv_log(DV_LOG_INFO, "broker",
               "data set %s@%u stored (%llu rows, %u columns, %llu bytes)",
               info->name, info->version, (unsigned long long)info->rows,
               info->columns, (unsigned long long)info->bytes);
        dv_msgw_t *w = dv_msgw_new(DV_MSG_DATASET, d->rid);
        write_dataset_info(w, info, false);
        dv_commit_reply_stored(self, d->route, d->route_len, d->rid, w);
    }
    free(d->up);
    free(d->dir);
    free(d);
}

static void
upload_free(dv_broker_t *self, upload_t *u)
{
    self->uploads_bytes -= u->cap;
    free(u->buf);
    free(u);
}

// Whether upload u is from the sender: the same key, or in plain mode (no
// key) the same connection.
static bool
upload_same_sender(const upload_t *u,
                   const char *owner,
                   const void *route,
                   size_t route_len)
{
    if (owner[0]) {
        return strcmp(u->owner, owner) == 0;
    }
    return !u->owner[0] && u->route_len == route_len &&
           memcmp(u->route, route, route_len) == 0;
}

// Room for `need` bytes in u's buffer, grown by doubling (up to its
// announced size), within the per-key and total bounds. Returns 0, or
// DV_ELIMIT / DV_ENOMEM with the numbers.
static int
upload_grow(dv_broker_t *self, upload_t *u, uint64_t need, dv_error_t *err)
{
    if (need <= u->cap) {
        return 0;
    }
    uint64_t cap = u->cap ? u->cap * 2 : need;
    cap = cap < need ? need : cap > u->total ? u->total : cap;
    uint64_t more = cap - u->cap, mine = 0;
    for (const upload_t *o = self->uploads; o; o = o->next) {
        mine += upload_same_sender(o, u->owner, u->route, u->route_len) ? o->cap
                                                                        : 0;
    }
    if (mine + more > DV_MAX_UPLOAD_BYTES_PER_KEY ||
        self->uploads_bytes + more > DV_MAX_UPLOAD_BYTES) {
        return dv_errorf(err, DV_ELIMIT,
                         "dataset_push: uploads in flight would hold %llu "
                         "bytes for you (limit %zu) and %llu in all (limit "
                         "%zu): finish or wait for the others",
                         (unsigned long long)(mine + more),
                         (size_t)DV_MAX_UPLOAD_BYTES_PER_KEY,
                         (unsigned long long)(self->uploads_bytes + more),
                         (size_t)DV_MAX_UPLOAD_BYTES);
    }
    uint8_t *buf = realloc(u->buf, cap);
    if (!buf) {
        return dv_errorf(err, DV_ENOMEM,
                         "dataset_push: no memory for %llu bytes",
                         (unsigned long long)cap);
    }
    u->buf = buf;
    u->cap = cap;
    self->uploads_bytes += more;
    return 0;
}

// Take upload u off the list (it stays allocated).
static void
upload_unlink(dv_broker_t *self, const upload_t *u)
{
    upload_t **p = &self->uploads;
    while (*p != u) {
        p = &(*p)->next;
    }
    *p = u->next;
}

// The unfinished upload of name from this connection (NULL: none).
static upload_t *
upload_find(dv_broker_t *self,
            const void *route,
            size_t route_len,
            const char *name)
{
    upload_t *u = self->uploads;
    while (u && !(u->route_len == route_len &&
                  memcmp(u->route, route, route_len) == 0 &&
                  strcmp(u->name, name) == 0)) {
        u = u->next;
    }
    return u;
}

// A new upload of name (total bytes, sum) from owner on this connection,
// at the head of the list; it replaces an unfinished one (old). Refused
// with DV_ELIMIT past DV_MAX_UPLOADS_PER_KEY.
static int
upload_open(dv_broker_t *self,
            const void *route,
            size_t route_len,
            upload_t *old,
            const char *name,
            const uint8_t *sum,
            uint64_t total,
            upload_t **out,
            dv_error_t *err)
{
    if (old) {
        upload_unlink(self, old);
        upload_free(self, old);
    }
    const char *owner = self->current ? self->current->id : "";
    size_t open = 0;
    for (const upload_t *o = self->uploads; o; o = o->next) {
        open += upload_same_sender(o, owner, route, route_len);
    }
    if (open >= DV_MAX_UPLOADS_PER_KEY) {
        return dv_errorf(err, DV_ELIMIT,
                         "dataset_push: %zu uploads already open for "
                         "you (limit %d): finish one first",
                         open, DV_MAX_UPLOADS_PER_KEY);
    }
    // Refused now rather than after the whole file came in (its version is
    // reserved, and the bounds checked again, when it is complete).
    int rc = dv_datasets_room(self->datasets, total, err);
    if (rc) {
        return rc;
    }
    upload_t *u = dv_calloc(1, sizeof *u);
    snprintf(u->owner, sizeof u->owner, "%s", owner);
    memcpy(u->route, route, route_len);
    u->route_len = route_len;
    snprintf(u->name, sizeof u->name, "%s", name);
    memcpy(u->sha256, sum, sizeof u->sha256);
    u->total = total;
    u->next = self->uploads;
    self->uploads = u;
    *out = u;
    return 0;
}

// Complete upload u (off the list: the pool owns it now): reserve its
// version, then validate and store it on the pool (after_dataset answers).
static int
upload_store(dv_broker_t *self,
             const void *route,
             size_t route_len,
             uint64_t rid,
             upload_t *u,
             dv_error_t *err)
{
    upload_unlink(self, u);
    self->uploads_bytes -= u->cap;
    uint32_t version =
        dv_datasets_reserve(self->datasets, u->name, u->total, err);
    if (!version) {
        free(u->buf);
        free(u);
        return err->code;
    }
    ds_store_t *d = dv_calloc(1, sizeof *d);
    d->broker = self;
    memcpy(d->route, route, route_len);
    d->route_len = route_len;
    d->rid = rid;
    const char *dir = dv_datasets_dir(self->datasets);
    d->dir = dir ? dv_strdup(dir) : NULL;
    d->up = u;
    d->version = version;
    if (self->current) {
        snprintf(d->owner, sizeof d->owner, "%s", self->current->id);
    }
    d->work.data = d;
    if (dv_pool_queue(self->pool, &d->work, work_dataset, after_dataset)) {
        dv_datasets_release(self->datasets, u->name, version);
        free(u->buf);
        free(u);
        free(d->dir);
        free(d);
        return dv_errorf(err, DV_EIO, "cannot queue the data set's storing");
    }
    return 0;
}

// dataset_push {name, sha256, bytes, offset} + frame 1: a chunk. The first
// chunk (offset 0) starts the upload; each next one must start where the
// last ended; the last one completes it (validated and stored off the
// loop thread, then answered with `dataset`); the others get `ok` with
// received.
int
dv_datasets_msg_on_push(dv_broker_t *self,
                        const void *route,
                        size_t route_len,
                        const dv_msg_t *m,
                        uint64_t rid,
                        dv_error_t *err)
{
    char name[DV_MAX_WIRE_NAME + 1];
    const uint8_t *sum = NULL;
    size_t sum_len = 0;
    uint64_t total = 0, offset = 0;
    int rc;
    if ((rc = dv_msg_str(m, "name", name, sizeof name, err)) != 0 ||
        (rc = dv_msg_bin(m, "sha256", &sum, &sum_len, DV_SHA256_BYTES, err)) ||
        (rc = dv_msg_uint(m, "bytes", &total, err)) != 0 ||
        (rc = dv_msg_uint_or(m, "offset", 0, &offset, err)) != 0) {
        return rc;
    }
    const dv_frame_t *chunk = dv_msg_frame(m, 1);
    if (!chunk) {
        return dv_errorf(err, DV_EFORMAT, "dataset_push: no chunk in frame 1");
    }
    if (!dv_catalog_name_valid(name) || route_len > ROUTE_MAX) {
        return dv_errorf(err, DV_EINVAL,
                         "dataset_push: name '%s' must match [A-Za-z0-9._-]+",
                         name);
    }
    if (total == 0 || total > DV_MAX_DATASET_BYTES) {
        return dv_errorf(err, DV_EMSGSIZE,
                         "dataset_push: %llu bytes: a data set holds 1 .. "
                         "%llu bytes",
                         (unsigned long long)total,
                         (unsigned long long)DV_MAX_DATASET_BYTES);
    }
    upload_t *u = upload_find(self, route, route_len, name);
    if (offset == 0) { // a new upload (replacing an unfinished one)
        rc = upload_open(self, route, route_len, u, name, sum, total, &u, err);
        if (rc) {
            return rc;
        }
    } else if (!u || offset != u->received || total != u->total ||
               memcmp(sum, u->sha256, sizeof u->sha256) != 0) {
        return dv_errorf(err, DV_EINVAL,
                         "dataset_push: chunk at %llu does not continue an "
                         "upload of '%s' (%llu bytes received): start again "
                         "at offset 0",
                         (unsigned long long)offset, name,
                         (unsigned long long)(u ? u->received : 0));
    }
    if (chunk->len > u->total - u->received) {
        return dv_errorf(err, DV_EMSGSIZE,
                         "dataset_push: the chunk passes the announced size");
    }
    if ((rc = upload_grow(self, u, u->received + chunk->len, err)) != 0) {
        upload_unlink(self, u); // refused: what it held is given back now
        upload_free(self, u);
        return rc;
    }
    memcpy(u->buf + u->received, chunk->data, chunk->len);
    u->received += chunk->len;
    u->last_ms = uv_now(&self->loop);
    if (u->received == u->total) {
        return upload_store(self, route, route_len, rid, u, err);
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_OK, rid);
    dv_msgw_uint(w, "received", u->received);
    dv_broker_client_reply(self, route, route_len, w);
    return 0;
}

// Drop uploads nobody continued.
void
dv_datasets_msg_uploads_trim(dv_broker_t *self)
{
    uint64_t now = uv_now(&self->loop);
    for (upload_t **p = &self->uploads; *p;) {
        upload_t *u = *p;
        if (now - u->last_ms >= UPLOAD_IDLE_MS) {
            *p = u->next;
            upload_free(self, u);
        } else {
            p = &u->next;
        }
    }
}

// `name` and optional `version` (0: the latest) of a data set request.
static int
dataset_ref(const dv_msg_t *m,
            char *name,
            size_t size,
            uint32_t *version,
            dv_error_t *err)
{
    return dv_catalog_msg_ref(m, "data set", DV_ENOENT, name, size, version,
                              err);
}

int
dv_datasets_msg_on_get(dv_broker_t *self,
                       const void *route,
                       size_t route_len,
                       const dv_msg_t *m,
                       uint64_t rid,
                       dv_error_t *err)
{
    char name[DV_MAX_WIRE_NAME + 1];
    uint32_t version = 0;
    int rc = dataset_ref(m, name, sizeof name, &version, err);
    if (rc) {
        return rc;
    }
    const dv_dataset_info_t *r = dv_datasets_get(self->datasets, name, version);
    if (!r) {
        return dv_errorf(err, DV_ENOENT, "no data set '%s'%s", name,
                         version ? " at that version" : "");
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DATASET, rid);
    write_dataset_info(w, r, false);
    dv_broker_client_reply(self, route, route_len, w);
    return 0;
}

// May the key of the request being handled read data set name? (Plain
// mode and admins: every one; see dataset_reads_refused.)
static bool
dataset_readable(const dv_broker_t *self, const char *name)
{
    const dv_key_t *k = self->current;
    return !k || (k->roles & DV_ROLE_ADMIN) ||
           dv_owners_may_read(self->data_owners, name, k->id);
}

static bool
list_shown(void *arg, const void *rec)
{
    return dataset_readable(arg, ((const dv_dataset_info_t *)rec)->name);
}

static void
list_item(void *arg, dv_msgw_t *item, const void *rec)
{
    (void)arg;
    dv_msgw_v_map(item, N_DATASET_FIELDS);
    write_dataset_info(item, rec, true);
}

int
dv_datasets_msg_on_list(dv_broker_t *self,
                        const void *route,
                        size_t route_len,
                        const dv_msg_t *m,
                        uint64_t rid,
                        dv_error_t *err)
{
    size_t n = 0;
    const dv_dataset_info_t *all = dv_datasets_list(self->datasets, &n);
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DATASETS, rid);
    int rc = dv_catalog_msg_page(w, m, "datasets", all, n, sizeof *all,
                                 list_shown, list_item, self, err);
    if (rc) {
        dv_msgw_destroy(&w);
        return rc;
    }
    dv_broker_client_reply(self, route, route_len, w);
    return 0;
}

int
dv_datasets_msg_on_rm(dv_broker_t *self,
                      const void *route,
                      size_t route_len,
                      const dv_msg_t *m,
                      uint64_t rid,
                      dv_error_t *err)
{
    char name[DV_MAX_WIRE_NAME + 1];
    uint32_t version = 0;
    int rc = dataset_ref(m, name, sizeof name, &version, err);
    if (rc == 0) {
        rc = dv_datasets_rm(self->datasets, name, version, err);
    }
    if (rc < 0) {
        return rc;
    }
    dv_catalog_msg_removed(self, route, route_len, rid, self->data_owners, name,
                           !dv_datasets_get(self->datasets, name, 0), rc);
    return 0;
}

// dataset_share {name, readers: [key id or "*"]}: who besides its owner
// and admins may read data set name (train or evaluate on it, see it in
// dataset_list and dataset_get), replacing the list ([]: nobody else).
// Only its owner or an admin (dv_authorize_client()). Answered `ok` with the
// list.
int
dv_datasets_msg_on_share(dv_broker_t *self,
                         const void *route,
                         size_t route_len,
                         const dv_msg_t *m,
                         uint64_t rid,
                         dv_error_t *err)
{
    char name[DV_MAX_WIRE_NAME + 1];
    char **readers = NULL;
    size_t n = 0;
    int rc = dv_msg_str(m, "name", name, sizeof name, err);
    if (rc == 0 && !dv_msg_has(m, "readers")) {
        rc = dv_errorf(err, DV_EFORMAT,
                       "dataset_share: 'readers' (key ids, or [\"*\"] for "
                       "every key) is missing");
    }
    if (rc == 0) {
        rc = dv_msg_strs(m, "readers", DV_MAX_READERS, DV_KEY_ID_MAX, &readers,
                         &n, err);
    }
    if (rc == 0 && !dv_datasets_get(self->datasets, name, 0)) {
        rc = dv_errorf(err, DV_ENOENT, "no data set '%s'", name);
    }
    if (rc == 0) {
        rc = dv_owners_share(self->data_owners, name, readers, n, err);
    }
    if (rc == 0) {
        dv_msgw_t *w = dv_msgw_new(DV_MSG_OK, rid);
        dv_msgw_str(w, "name", name);
        dv_msgw_strs(w, "readers", (const char *const *)readers, n);
        dv_commit_reply_stored(self, route, route_len, rid, w);
    }
    dv_strs_free(&readers, n);
    return rc;
}
