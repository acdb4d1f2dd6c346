// dv_fetch — chunked transfers of model files and data sets to workers.
//
// Owns: fetch_model and fetch_dataset: the file read on the thread pool
// (one fetch_t for both), data sets sent back in DATASET_CHUNK pieces.
//
// The model and its references: dv_broker_int.h and dv_broker.c.
#include "dv_fetch.h"

#include <stdbool.h>
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

// Workers fetch a stored data set in chunks (one request per chunk, so a
// large one never sits whole in a socket buffer). A chunk of a stored file
// is read on the pool, as model files are.
#define DATASET_CHUNK ((size_t)4 << 20)

// What a worker fetches: a model file (whole) or a chunk of a data set,
// and what its reply says of it.
typedef struct {
    bool dataset;                    // a data set chunk, else a model file
    char name[DV_MAX_WIRE_NAME + 1]; // model or data set
    uint32_t version;                //
    uint8_t sha256[DV_SHA256_BYTES]; // as recorded
    uint64_t bytes;                  // data set: its size
    uint64_t offset;                 // data set: where the chunk starts
} fetch_what_t;

// A fetch read (and, for a model, checked) on the pool.
typedef struct {
    uv_work_t work;           // pool request
    dv_broker_t *broker;      // owner
    uint8_t route[ROUTE_MAX]; // the worker
    size_t route_len;         //
    uint64_t rid;             //
    fetch_what_t what;        // what it reads
    char *dir;                // the store's folder (a copy)
    uint8_t *data;            // read here (owned)
    size_t len;               //
    int rc;                   //
    dv_error_t err;           //
} fetch_t;

// model_data {name, version, sha256} or dataset_data {... bytes, offset},
// with data in frame 1.
static void
send_data(dv_broker_t *self,
          const void *route,
          size_t route_len,
          uint64_t rid,
          const fetch_what_t *what,
          const uint8_t *data,
          size_t len)
{
    dv_msgw_t *x = dv_msgw_new(
        what->dataset ? DV_MSG_DATASET_DATA : DV_MSG_MODEL_DATA, rid);
    dv_msgw_str(x, "name", what->name);
    dv_msgw_uint(x, "version", what->version);
    dv_msgw_bin(x, "sha256", what->sha256, DV_SHA256_BYTES);
    if (what->dataset) {
        dv_msgw_uint(x, "bytes", what->bytes);
        dv_msgw_uint(x, "offset", what->offset);
    }
    size_t hlen = 0;
    const uint8_t *h = dv_msgw_bytes(x, &hlen);
    dv_frame_t f = {data, len};
    dv_wire_send(self->workers_sock, route, route_len, h, hlen, &f, 1);
    dv_msgw_destroy(&x);
}

static void
work_fetch(uv_work_t *req)
{
    fetch_t *f = req->data;
    const fetch_what_t *x = &f->what;
    if (!x->dataset) {
        f->rc = dv_registry_read_file(f->dir, x->name, x->version, x->sha256,
                                      &f->data, &f->len, &f->err);
        return;
    }
    uint64_t left = x->bytes - x->offset;
    f->rc = dv_datasets_read_file(f->dir, x->name, x->version, x->offset,
                                  left < DATASET_CHUNK ? (size_t)left
                                                       : DATASET_CHUNK,
                                  &f->data, &f->len, &f->err);
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
        send_data(self, f->route, f->route_len, f->rid, &f->what, f->data,
                  f->len);
    }
    free(f->data);
    free(f->dir);
    free(f);
}

// Read what dir holds of `what` on the pool, answering worker w's rid.
static int
fetch_queue(dv_broker_t *self,
            const worker_t *w,
            uint64_t rid,
            const fetch_what_t *what,
            const char *dir,
            dv_error_t *err)
{
    fetch_t *f = dv_calloc(1, sizeof *f);
    f->broker = self;
    memcpy(f->route, w->route, w->route_len);
    f->route_len = w->route_len;
    f->rid = rid;
    f->what = *what;
    f->dir = dv_strdup(dir);
    f->work.data = f;
    if (uv_queue_work(&self->loop, &f->work, work_fetch, after_fetch) != 0) {
        free(f->dir);
        free(f);
        return dv_errorf(err, DV_EIO, "cannot queue the %s read",
                         what->dataset ? "data set" : "model");
    }
    return 0;
}

// Worker w will hold name@version in a moment: count it for affinity now
// (the next job on it goes there) rather than at its next heartbeat.
static void
fetch_holds(dv_broker_t *self,
            worker_t *w,
            bool dataset,
            const char *name,
            uint32_t version)
{
    char key[DV_MAX_WIRE_NAME + 16];
    snprintf(key, sizeof key, "%s@%u", name, (unsigned)version);
    if (dataset) {
        dv_workers_msg_holds_add(&w->datasets, &w->n_datasets, key);
    } else {
        dv_workers_msg_holds_add(&w->models, &w->n_models, key);
    }
    dv_workers_msg_sched_holdings(self, w);
}

// A fetch's `name` and `version` (>= 1; what is past 32 bits reads as 0,
// which names nothing).
static int
fetch_ref(const dv_msg_t *m,
          fetch_what_t *what,
          uint64_t *version,
          dv_error_t *err)
{
    int rc = dv_msg_str(m, "name", what->name, sizeof what->name, err);
    if (rc == 0) {
        rc = dv_msg_uint(m, "version", version, err);
    }
    what->version = *version > UINT32_MAX ? 0 : (uint32_t)*version;
    return rc;
}

int
dv_fetch_on_model(dv_broker_t *self,
                  worker_t *w,
                  const dv_msg_t *m,
                  uint64_t rid,
                  dv_error_t *err)
{
    fetch_what_t what = {0};
    uint64_t version = 0;
    int rc = fetch_ref(m, &what, &version, err);
    if (rc) {
        return rc;
    }
    const dv_model_info_t *r =
        what.version ? dv_registry_get(self->registry, what.name, what.version)
                     : NULL;
    if (!r) {
        return dv_errorf(err, DV_ENOMODEL, "fetch_model: no model %s@%llu",
                         what.name, (unsigned long long)version);
    }
    memcpy(what.sha256, r->sha256, sizeof what.sha256);
    fetch_holds(self, w, false, what.name, what.version);
    const char *dir = dv_registry_dir(self->registry);
    if (dir) {
        return fetch_queue(self, w, rid, &what, dir, err);
    }
    uint8_t *image = NULL; // in memory: a copy is all it takes
    size_t len = 0;
    rc = dv_registry_read(self->registry, what.name, what.version, &image, &len,
                          err);
    if (rc == 0) {
        send_data(self, w->route, w->route_len, rid, &what, image, len);
    }
    free(image);
    return rc;
}

// fetch_dataset {name, version, offset}: answered by dataset_data {name,
// version, sha256, bytes, offset} + frame 1 with up to 4 MiB from offset.
int
dv_fetch_on_dataset(dv_broker_t *self,
                    worker_t *w,
                    const dv_msg_t *m,
                    uint64_t rid,
                    dv_error_t *err)
{
    fetch_what_t what = {.dataset = true};
    uint64_t version = 0;
    int rc = fetch_ref(m, &what, &version, err);
    if (rc == 0) {
        rc = dv_msg_uint_or(m, "offset", 0, &what.offset, err);
    }
    if (rc) {
        return rc;
    }
    const dv_dataset_info_t *r =
        what.version ? dv_datasets_get(self->datasets, what.name, what.version)
                     : NULL;
    if (!r) {
        return dv_errorf(err, DV_ENOENT,
                         "fetch_dataset: no data set %s@%llu (removed?)",
                         what.name, (unsigned long long)version);
    }
    memcpy(what.sha256, r->sha256, sizeof what.sha256);
    what.bytes = r->bytes;
    uint8_t *chunk = NULL;
    size_t len = 0;
    bool in_file = false;
    rc = dv_datasets_chunk(self->datasets, r, what.offset, DATASET_CHUNK,
                           &chunk, &len, &in_file, err);
    if (rc) {
        return rc;
    }
    if (what.offset == 0) {
        fetch_holds(self, w, true, r->name, r->version);
    }
    if (in_file) {
        return fetch_queue(self, w, rid, &what, dv_datasets_dir(self->datasets),
                           err);
    }
    send_data(self, w->route, w->route_len, rid, &what, chunk, len);
    free(chunk);
    return 0;
}
