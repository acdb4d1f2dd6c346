// dv_fetch — chunked transfers of model files and data sets to workers.
//
// Owns: fetch_model and fetch_dataset: the file read on the thread pool, sent
// back in DATASET_CHUNK pieces.
//
// The model and its references: dv_broker_int.h and dv_broker.c.
#include "dv_fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "dv_broker_int.h"
#include "dv_datasets.h"
#include "dv_mem.h"
#include "dv_proto.h"
#include "dv_records.h"
#include "dv_registry.h"
#include "dv_sched.h"
#include "dv_store.h"
#include "dv_wire.h"
#include "dv_workers_msg.h"

// A model file read and checked on the pool for a worker's fetch_model.
typedef struct {
    uv_work_t work;                  // pool request
    dv_broker_t *broker;             // owner
    uint8_t route[ROUTE_MAX];        // the worker
    size_t route_len;                //
    uint64_t rid;                    //
    char name[DV_MAX_WIRE_NAME + 1]; // model
    uint32_t version;                //
    uint8_t sha256[DV_SHA256_BYTES]; // as recorded
    char *dir;                       // registry folder copy
    uint8_t *image;                  // read here (owned)
    size_t len;                      //
    int rc;                          //
    dv_error_t err;                  //
} fetch_t;

static void
send_model_data(dv_broker_t *self,
                const void *route,
                size_t route_len,
                uint64_t rid,
                const char *name,
                uint32_t version,
                const uint8_t *sha256,
                const uint8_t *image,
                size_t len)
{
    dv_msgw_t *x = dv_msgw_new(DV_MSG_MODEL_DATA, rid);
    dv_msgw_str(x, "name", name);
    dv_msgw_uint(x, "version", version);
    dv_msgw_bin(x, "sha256", sha256, DV_SHA256_BYTES);
    size_t hlen = 0;
    const uint8_t *h = dv_msgw_bytes(x, &hlen);
    dv_frame_t f = {image, len};
    dv_wire_send(self->workers_sock, route, route_len, h, hlen, &f, 1);
    dv_msgw_destroy(&x);
}

static void
work_fetch(uv_work_t *req)
{
    fetch_t *f = req->data;
    f->rc = dv_registry_read_file(f->dir, f->name, f->version, f->sha256,
                                  &f->image, &f->len, &f->err);
}

static void
after_fetch(uv_work_t *req, int status)
{
    fetch_t *f = req->data;
    dv_broker_t *self = f->broker;
    if (status != 0 && f->rc == 0) {
        f->rc = dv_errorf(&f->err, DV_ECANCELED, "fetch cancelled");
    }
    if (f->rc) {
        dv_wire_send_error(self->workers_sock, f->route, f->route_len, f->rid,
                           0, f->rc, f->err.text);
    } else {
        send_model_data(self, f->route, f->route_len, f->rid, f->name,
                        f->version, f->sha256, f->image, f->len);
    }
    free(f->image);
    free(f->dir);
    free(f);
}

int
on_fetch_model(dv_broker_t *self,
               worker_t *w,
               const dv_msg_t *m,
               uint64_t rid,
               dv_error_t *err)
{
    char name[DV_MAX_WIRE_NAME + 1];
    uint64_t version = 0;
    int rc;
    if ((rc = dv_msg_str(m, "name", name, sizeof name, err)) != 0 ||
        (rc = dv_msg_uint(m, "version", &version, err)) != 0) {
        return rc;
    }
    const dv_model_info_t *r =
        version == 0 || version > UINT32_MAX
            ? NULL
            : dv_registry_get(self->registry, name, (uint32_t)version);
    if (!r) {
        return dv_errorf(err, DV_ENOMODEL, "fetch_model: no model %s@%llu",
                         name, (unsigned long long)version);
    }
    // It will hold the model in a moment: count it for affinity now
    // rather than at its next heartbeat.
    char key[DV_MAX_WIRE_NAME + 16];
    snprintf(key, sizeof key, "%s@%u", name, (unsigned)version);
    holds_add(&w->models, &w->n_models, key);
    sched_holdings(self, w);
    const char *dir = dv_registry_dir(self->registry);
    if (!dir) { // in memory: a copy is all it takes
        uint8_t *image = NULL;
        size_t len = 0;
        rc = dv_registry_read(self->registry, name, (uint32_t)version, &image,
                              &len, err);
        if (rc == 0) {
            send_model_data(self, w->route, w->route_len, rid, name,
                            (uint32_t)version, r->sha256, image, len);
        }
        free(image);
        return rc;
    }
    fetch_t *f = dv_calloc(1, sizeof *f);
    f->broker = self;
    memcpy(f->route, w->route, w->route_len);
    f->route_len = w->route_len;
    f->rid = rid;
    snprintf(f->name, sizeof f->name, "%s", name);
    f->version = (uint32_t)version;
    memcpy(f->sha256, r->sha256, sizeof f->sha256);
    f->dir = dv_strdup(dir);
    f->work.data = f;
    if (uv_queue_work(&self->loop, &f->work, work_fetch, after_fetch) != 0) {
        free(f->dir);
        free(f);
        return dv_errorf(err, DV_EIO, "cannot queue the model read");
    }
    return 0;
}

// ------------------------------------------------------ data set fetches

// Workers fetch a stored data set in chunks (one request per chunk, so a
// large one never sits whole in a socket buffer). A chunk of a stored file
// is read on the pool, as model files are.
#define DATASET_CHUNK ((size_t)4 << 20)

typedef struct {
    uv_work_t work;           // pool request
    dv_broker_t *broker;      //
    uint8_t route[ROUTE_MAX]; // the worker
    size_t route_len;         //
    uint64_t rid;             //
    dv_dataset_info_t info;   // the version (a copy)
    uint64_t offset;          // where the chunk starts
    char *dir;                // data folder copy
    uint8_t *chunk;           // read (owned)
    size_t len;               //
    int rc;                   //
    dv_error_t err;           //
} dsfetch_t;

static void
send_dataset_data(dv_broker_t *self,
                  const void *route,
                  size_t route_len,
                  uint64_t rid,
                  const dv_dataset_info_t *r,
                  uint64_t offset,
                  const uint8_t *chunk,
                  size_t len)
{
    dv_msgw_t *x = dv_msgw_new(DV_MSG_DATASET_DATA, rid);
    dv_msgw_str(x, "name", r->name);
    dv_msgw_uint(x, "version", r->version);
    dv_msgw_bin(x, "sha256", r->sha256, DV_SHA256_BYTES);
    dv_msgw_uint(x, "bytes", r->bytes);
    dv_msgw_uint(x, "offset", offset);
    size_t hlen = 0;
    const uint8_t *h = dv_msgw_bytes(x, &hlen);
    dv_frame_t f = {chunk, len};
    dv_wire_send(self->workers_sock, route, route_len, h, hlen, &f, 1);
    dv_msgw_destroy(&x);
}

static void
work_dsfetch(uv_work_t *req)
{
    dsfetch_t *f = req->data;
    uint64_t left = f->info.bytes - f->offset;
    f->rc = dv_datasets_read_file(
        f->dir, f->info.name, f->info.version, f->offset,
        left < DATASET_CHUNK ? (size_t)left : DATASET_CHUNK, &f->chunk, &f->len,
        &f->err);
}

static void
after_dsfetch(uv_work_t *req, int status)
{
    dsfetch_t *f = req->data;
    dv_broker_t *self = f->broker;
    if (status != 0 && f->rc == 0) {
        f->rc = dv_errorf(&f->err, DV_ECANCELED, "fetch cancelled");
    }
    if (f->rc) {
        dv_wire_send_error(self->workers_sock, f->route, f->route_len, f->rid,
                           0, f->rc, f->err.text);
    } else {
        send_dataset_data(self, f->route, f->route_len, f->rid, &f->info,
                          f->offset, f->chunk, f->len);
    }
    free(f->chunk);
    free(f->dir);
    free(f);
}

// fetch_dataset {name, version, offset}: answered by dataset_data {name,
// version, sha256, bytes, offset} + frame 1 with up to 4 MiB from offset.
int
on_fetch_dataset(dv_broker_t *self,
                 worker_t *w,
                 const dv_msg_t *m,
                 uint64_t rid,
                 dv_error_t *err)
{
    char name[DV_MAX_WIRE_NAME + 1];
    uint64_t version = 0, offset = 0;
    int rc;
    if ((rc = dv_msg_str(m, "name", name, sizeof name, err)) != 0 ||
        (rc = dv_msg_uint(m, "version", &version, err)) != 0 ||
        (rc = dv_msg_uint_or(m, "offset", 0, &offset, err)) != 0) {
        return rc;
    }
    const dv_dataset_info_t *r =
        version == 0 || version > UINT32_MAX
            ? NULL
            : dv_datasets_get(self->datasets, name, (uint32_t)version);
    if (!r) {
        return dv_errorf(err, DV_ENOENT,
                         "fetch_dataset: no data set %s@%llu (removed?)", name,
                         (unsigned long long)version);
    }
    uint8_t *chunk = NULL;
    size_t len = 0;
    bool in_file = false;
    rc = dv_datasets_chunk(self->datasets, r, offset, DATASET_CHUNK, &chunk,
                           &len, &in_file, err);
    if (rc) {
        return rc;
    }
    if (offset == 0) { // it will hold it: the next job on it goes there
        char key[DV_MAX_WIRE_NAME + 16];
        snprintf(key, sizeof key, "%s@%u", r->name, (unsigned)r->version);
        holds_add(&w->datasets, &w->n_datasets, key);
        sched_holdings(self, w);
    }
    if (!in_file) {
        send_dataset_data(self, w->route, w->route_len, rid, r, offset, chunk,
                          len);
        free(chunk);
        return 0;
    }
    dsfetch_t *f = dv_calloc(1, sizeof *f);
    f->broker = self;
    memcpy(f->route, w->route, w->route_len);
    f->route_len = w->route_len;
    f->rid = rid;
    f->info = *r;
    f->offset = offset;
    f->dir = dv_strdup(dv_datasets_dir(self->datasets));
    f->work.data = f;
    if (uv_queue_work(&self->loop, &f->work, work_dsfetch, after_dsfetch) !=
        0) {
        free(f->dir);
        free(f);
        return dv_errorf(err, DV_EIO, "cannot queue the data set read");
    }
    return 0;
}
