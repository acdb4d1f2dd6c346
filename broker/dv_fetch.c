// dv_fetch — chunked transfers of model files and data sets to workers.
//
// Owns: fetch_model and fetch_dataset: the file read on the thread pool
// (one fetch_t for both), data sets sent back in DATASET_CHUNK pieces, and
// the fetches that wait their turn.
//
// A fetch's reply goes through the workers' dv_outq: libzmq bounds what it
// queues for a peer in messages, not bytes, so a worker that asks for a
// model file again and again and never reads made the broker hold a copy
// of each. A fetch now waits (in order, self->fq_head) while its worker
// holds DV_MAX_WORKER_QUEUED_BYTES unread or has a read on the pool; a
// worker that reads always gets its next reply, and one that does not
// holds one bound's worth, one read and DV_MAX_WORKER_FETCHES small
// waiting entries.
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
#include "dv_limits.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_outq.h"
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

// How soon fetches held back by a worker's unread bytes look again (ms).
#define FETCH_RETRY_MS 10

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

// A fetch: waiting its turn (self->fq_head), then read (and, for a
// model, checked) on the pool or at once from memory, then answered.
struct fetch_s {
    dv_work_t work;           // pool request
    dv_broker_t *broker;      // owner
    struct fetch_s *next;     // waiting: the next in line
    uint64_t handle;          // the worker (gone: the fetch is dropped)
    uint8_t route[ROUTE_MAX]; //
    size_t route_len;         //
    uint64_t rid;             //
    fetch_what_t what;        // what it reads
    size_t expect;            // bytes its reply will carry
    char *dir;                // the store's folder (a copy)
    uint8_t *data;            // read here (owned)
    size_t len;               //
    int rc;                   //
    dv_error_t err;           //
};
typedef struct fetch_s fetch_t;

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
    dv_outq_send(self->wout, route, route_len, h, hlen, &f, 1, NULL, NULL);
    dv_msgw_destroy(&x);
}

static void
work_fetch(dv_work_t *req)
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

// Answer f (its data, or the error rc / err) if its worker w is still
// there (NULL: gone), and free it.
static void
fetch_answer(dv_broker_t *self,
             worker_t *w,
             fetch_t *f,
             int rc,
             const dv_error_t *err,
             const uint8_t *data,
             size_t len)
{
    if (w) {
        w->fetches--;
        if (rc) {
            dv_wire_send_error(self->workers_sock, f->route, f->route_len,
                               f->rid, 0, rc, err->text);
        } else {
            send_data(self, f->route, f->route_len, f->rid, &f->what, data,
                      len);
        }
    }
    free(f->data);
    free(f->dir);
    free(f);
}

static void
after_fetch(dv_work_t *req, int status)
{
    fetch_t *f = req->data;
    dv_broker_t *self = f->broker;
    if (status != 0 && f->rc == 0) {
        f->rc = dv_errorf(&f->err, DV_ECANCELED, "fetch cancelled");
    }
    worker_t *w = dv_broker_worker_by_handle(self, f->handle);
    if (w) {
        w->fetch_reading = false;
    }
    fetch_answer(self, w, f, f->rc, &f->err, f->data, f->len);
    dv_fetch_pump(self); // the worker's next fetch may go now
}

// Start f for worker w: read what it names (a stored file on the pool,
// else from memory, answered at once). f is owned here from now on.
static void
fetch_start(dv_broker_t *self, worker_t *w, fetch_t *f)
{
    const fetch_what_t *x = &f->what;
    dv_error_t err = {0};
    uint8_t *data = NULL;
    size_t len = 0;
    bool in_file = false;
    int rc = 0;
    const char *dir = NULL;
    if (!x->dataset) {
        dir = dv_registry_dir(self->registry);
        in_file = dir != NULL;
        if (!dv_registry_get(self->registry, x->name, x->version)) {
            rc = dv_errorf(&err, DV_ENOMODEL,
                           "fetch_model: no model %s@%u (removed?)", x->name,
                           (unsigned)x->version);
        } else if (!in_file) { // in memory: a copy is all it takes
            rc = dv_registry_read(self->registry, x->name, x->version, &data,
                                  &len, &err);
        }
    } else {
        const dv_dataset_info_t *r =
            dv_datasets_get(self->datasets, x->name, x->version);
        dir = dv_datasets_dir(self->datasets);
        rc = r ? dv_datasets_chunk(self->datasets, r, x->offset, DATASET_CHUNK,
                                   &data, &len, &in_file, &err)
               : dv_errorf(&err, DV_ENOENT,
                           "fetch_dataset: no data set %s@%u (removed?)",
                           x->name, (unsigned)x->version);
    }
    if (rc == 0 && in_file) {
        f->dir = dv_strdup(dir);
        f->work.data = f;
        if (dv_pool_queue(self->pool, &f->work, work_fetch, after_fetch) == 0) {
            w->fetch_reading = true;
            return;
        }
        rc = dv_errorf(&err, DV_EIO, "cannot queue the %s read",
                       x->dataset ? "data set" : "model");
    }
    fetch_answer(self, w, f, rc, &err, data, len);
    free(data);
}

// The retry while a worker's replies drain.
static void
on_fetch_timer(uv_timer_t *t)
{
    dv_fetch_pump(t->data);
}

void
dv_fetch_pump(dv_broker_t *self)
{
    bool blocked = false; // by bytes unread: look again in a moment
    fetch_t *prev = NULL;
    for (fetch_t *f = self->fq_head, *next; f; f = next) {
        next = f->next;
        worker_t *w = dv_broker_worker_by_handle(self, f->handle);
        bool room = w && !w->fetch_reading &&
                    dv_outq_room(self->wout, f->route, f->route_len, f->expect);
        if (w && !room) {
            if (!w->fetch_reading && !w->fetch_held) {
                w->fetch_held = true; // said once per spell
                dv_log(DV_LOG_WARN, "broker",
                       "worker %s holds %zu bytes of fetch replies unread: "
                       "its fetches wait",
                       w->name,
                       dv_outq_peer_bytes(self->wout, w->route, w->route_len));
            }
            blocked = blocked || !w->fetch_reading;
            prev = f;
            continue; // waits
        }
        if (prev) {
            prev->next = next;
        } else {
            self->fq_head = next;
        }
        if (self->fq_tail == f) {
            self->fq_tail = prev;
        }
        if (w) {
            w->fetch_held = false;
            fetch_start(self, w, f);
        } else {
            free(f); // its worker is gone
        }
    }
    if (blocked && !uv_is_active((uv_handle_t *)&self->fetch_timer)) {
        self->fetch_timer.data = self;
        uv_timer_start(&self->fetch_timer, on_fetch_timer, FETCH_RETRY_MS, 0);
    }
}

void
dv_fetch_close(dv_broker_t *self)
{
    while (self->fq_head) {
        fetch_t *f = self->fq_head;
        self->fq_head = f->next;
        free(f);
    }
    self->fq_tail = NULL;
}

// Queue a fetch of `what` (expect bytes) for worker w's rid, behind its
// earlier ones; start what may start.
static int
fetch_queue(dv_broker_t *self,
            worker_t *w,
            uint64_t rid,
            const fetch_what_t *what,
            size_t expect,
            dv_error_t *err)
{
    if (w->fetches >= DV_MAX_WORKER_FETCHES) {
        return dv_errorf(err, DV_ELIMIT,
                         "fetch: %u fetches of this worker already wait "
                         "(limit %d); ask again once they are answered",
                         (unsigned)w->fetches, DV_MAX_WORKER_FETCHES);
    }
    fetch_t *f = dv_calloc(1, sizeof *f);
    f->broker = self;
    f->handle = w->handle;
    memcpy(f->route, w->route, w->route_len);
    f->route_len = w->route_len;
    f->rid = rid;
    f->what = *what;
    f->expect = expect;
    w->fetches++;
    if (self->fq_tail) {
        self->fq_tail->next = f;
    } else {
        self->fq_head = f;
    }
    self->fq_tail = f;
    dv_fetch_pump(self);
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
    rc = fetch_queue(self, w, rid, &what, (size_t)r->bytes, err);
    if (rc == 0) {
        fetch_holds(self, w, false, what.name, what.version);
    }
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
    if (what.offset > r->bytes || (what.offset == r->bytes && r->bytes)) {
        return dv_errorf(
            err, DV_EINVAL, "data set %s@%u has %llu bytes: no chunk at %llu",
            r->name, (unsigned)r->version, (unsigned long long)r->bytes,
            (unsigned long long)what.offset);
    }
    memcpy(what.sha256, r->sha256, sizeof what.sha256);
    what.bytes = r->bytes;
    uint64_t left = r->bytes - what.offset;
    rc = fetch_queue(self, w, rid, &what,
                     left < DATASET_CHUNK ? (size_t)left : DATASET_CHUNK, err);
    if (rc == 0 && what.offset == 0) {
        fetch_holds(self, w, true, r->name, r->version);
    }
    return rc;
}
