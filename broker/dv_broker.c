// dv_broker — the broker's loop (see dv_broker.h for what it carries today).
//
// Model: one libuv loop owns both ROUTER sockets (through dv_zwatch), a
// heartbeat timer and the signal handles. Jobs live in a chained hash table
// keyed by id (their bodies: submitter's routing id, rid, kind, payload);
// dv_sched decides what runs where. After every batch of incoming messages,
// dv_batching_dispatch() drains dv_sched_next into `run` messages.
//
// Every accepted job ends in a `result` to its submitter: done or failed by
// the worker, or failed by the broker when its attempts are used up by lost
// workers. A peer's malformed message gets an `error` reply and changes
// nothing.
//
// This file: the loop and its sockets, heartbeats and signals, the jobs
// table, queue records, replies to clients and serving a client request
// (dv_broker_serve_request: a lookup in dv_handlers.c's table and a call; the
// workers' table is in dv_workers_msg.c). Everything else is
// a module of its own, one noun each (docs/ARCHITECTURE.md, The broker's
// modules); their shared types are in dv_broker_int.h.
#include "dv_broker.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <msgpack.h>
#include <uv.h>
#include <zmq.h>

#include "dv_addr.h"
#include "dv_audit.h"
#include "dv_auth.h"
#include "dv_authorize.h"
#include "dv_batching.h"
#include "dv_broker_int.h"
#include "dv_commit.h"
#include "dv_datasets.h"
#include "dv_datasets_msg.h"
#include "dv_dead.h"
#include "dv_endpoint.h"
#include "dv_fetch.h"
#include "dv_handlers.h"
#include "dv_hash.h"
#include "dv_http.h"
#include "dv_idem.h"
#include "dv_jobs_msg.h"
#include "dv_limits.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_models_msg.h"
#include "dv_monitor.h"
#include "dv_msgpack.h"
#include "dv_outq.h"
#include "dv_owners.h"
#include "dv_proto.h"
#include "dv_records.h"
#include "dv_recover.h"
#include "dv_registry.h"
#include "dv_results.h"
#include "dv_sched.h"
#include "dv_store.h"
#include "dv_timeq.h"
#include "dv_wire.h"
#include "dv_workers_msg.h"
#include "dv_zwatch.h"

uint64_t
dv_broker_unix_ms_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

// ---------------------------------------------------------------- jobs

// A job block holding copies of route, queue, model name and payload; NULL
// when the payload cannot be allocated.
job_t *
dv_broker_job_alloc(dv_spare_t *spare,
                    const void *route,
                    size_t route_len,
                    const char *queue,
                    const char *model,
                    const void *payload,
                    size_t payload_len)
{
    size_t qlen = strlen(queue) + 1, mlen = strlen(model) + 1;
    size_t block = sizeof(job_t) + route_len + qlen + mlen + payload_len;
    if (block < payload_len) { // wrapped: no such block
        return NULL;
    }
    job_t *j = spare ? dv_spare_get(spare, block) : dv_try_malloc(1, block);
    if (!j) {
        return NULL;
    }
    memset(j, 0, sizeof *j);
    j->spare = spare;
    j->block = block;
    j->p_eval = NAN;
    uint8_t *p = j->data;
    if (route_len) {
        memcpy(p, route, route_len);
    }
    j->route = p;
    j->route_len = (uint8_t)route_len;
    p += route_len;
    memcpy(p, queue, qlen);
    j->queue = (const char *)p;
    p += qlen;
    memcpy(p, model, mlen);
    j->model = (const char *)p;
    p += mlen;
    if (payload_len) {
        memcpy(p, payload, payload_len);
    }
    j->payload = p;
    j->payload_len = payload_len;
    return j;
}

void
dv_broker_job_free(job_t *j)
{
    if (j) {
        free(j->errors);
        free(j->ckpt);
        if (j->zpayload) {
            zmq_msg_close(j->zpayload);
            free(j->zpayload);
        }
        if (j->spare) {
            dv_spare_put(j->spare, j, j->block);
        } else {
            free(j);
        }
    }
}

static size_t
bucket(const dv_broker_t *self, uint64_t id)
{
    return dv_hash_slot(id, self->n_buckets);
}

static void
jobs_grow(dv_broker_t *self)
{
    size_t old_n = self->n_buckets;
    job_t **old = self->jobs;
    self->n_buckets = old_n * 2;
    self->jobs = dv_calloc(self->n_buckets, sizeof(job_t *));
    for (size_t b = 0; b < old_n; b++) {
        while (old[b]) {
            job_t *j = old[b];
            old[b] = j->next;
            size_t nb = bucket(self, j->id);
            j->next = self->jobs[nb];
            self->jobs[nb] = j;
        }
    }
    free(old);
}

// The queue's record, or NULL when no job ever created it.
qbytes_t *
dv_broker_queue_find(dv_broker_t *self, const char *name)
{
    // A job's queue is that of the jobs around it, so the last one found
    // is compared first: a hash and a probe per lookup, four or five a
    // job, were ~2% of the broker at 1-row serving. Queues are never
    // removed, so an index stays valid.
    if (self->q_last &&
        strcmp(self->qbytes[self->q_last - 1].name, name) == 0) {
        return &self->qbytes[self->q_last - 1];
    }
    size_t i = dv_names_find(self->qnames, name);
    if (i == SIZE_MAX) {
        return NULL;
    }
    self->q_last = i + 1;
    return &self->qbytes[i];
}

// 0 when name exists or may be created; DV_ELIMIT past DV_MAX_QUEUES.
int
dv_broker_queue_may_create(dv_broker_t *self,
                           const char *name,
                           const char *what,
                           dv_error_t *err)
{
    if (dv_broker_queue_find(self, name) || self->n_qbytes < DV_MAX_QUEUES) {
        return 0;
    }
    return dv_errorf(err, DV_ELIMIT,
                     "%s: queue '%s' would be new and the broker has %zu "
                     "queues already (limit %d)",
                     what, name, self->n_qbytes, DV_MAX_QUEUES);
}

dv_queue_now_t
dv_broker_queue_now(const dv_broker_t *self, const qbytes_t *qb)
{
    dv_queue_now_t n = {qb->spilled, 0, 0, 0};
    // By name, not a walk of every queue: status and each metrics scrape
    // ask this of every queue (4,096 queues: 16M comparisons a scrape).
    size_t sq = dv_sched_queue_find(self->sched, qb->name);
    size_t queued = 0, running = 0;
    if (dv_sched_queue_info(self->sched, sq, &queued, &running)) {
        n.queued += queued;
        n.running = running;
        n.retrying = dv_sched_queue_held(self->sched, sq);
    }
    n.dead = qb->dead; // kept where dead letters come and go (dv_dead.c)
    return n;
}

qbytes_t *
dv_broker_queue_bytes(dv_broker_t *self, const char *name)
{
    qbytes_t *found = dv_broker_queue_find(self, name);
    if (found) {
        return found;
    }
    if (self->n_qbytes == self->cap_qbytes) { // doubling: a producer making
        self->cap_qbytes = self->cap_qbytes ? 2 * self->cap_qbytes : 16;
        self->qbytes = // DV_MAX_QUEUES queues costs no quadratic copying
            dv_realloc(self->qbytes, self->cap_qbytes * sizeof(qbytes_t));
    }
    qbytes_t *q = &self->qbytes[self->n_qbytes++];
    memset(q, 0, sizeof *q);
    snprintf(q->name, sizeof q->name, "%s", name);
    dv_names_add(self->qnames, q->name, self->n_qbytes - 1);
    q->next_seq = 1;
    return q;
}

void
dv_broker_job_add(dv_broker_t *self, job_t *j)
{
    dv_broker_queue_bytes(self, j->queue)->bytes += j->payload_len;
    if (self->n_jobs + 1 > self->n_buckets) {
        jobs_grow(self);
    }
    size_t b = bucket(self, j->id);
    j->next = self->jobs[b];
    self->jobs[b] = j;
    self->n_jobs++;
    self->n_finishing += j->finishing;
}

job_t *
dv_broker_job_find(const dv_broker_t *self, uint64_t id)
{
    for (job_t *j = self->jobs[bucket(self, id)]; j; j = j->next) {
        if (j->id == id) {
            return j;
        }
    }
    return NULL;
}

// A job record's first three lines (id, chain, pointers, attempts, shape,
// flags) and the first two of its data (route, queue and model names):
// what a finished run reads.
#define JOB_PREFETCH_LINES 3
#define JOB_PREFETCH_DATA  2

void
dv_broker_job_prefetch(const dv_broker_t *self, uint64_t id, int round)
{
    if (round == 0) {
        __builtin_prefetch(&self->jobs[bucket(self, id)]);
        dv_sched_prefetch(self->sched, id, 0);
        dv_results_kept_prefetch(self, id);
        return;
    }
    const job_t *j = self->jobs[bucket(self, id)];
    if (j) { // the first of its chain: nearly always the one
        for (int l = 0; l < JOB_PREFETCH_LINES; l++) {
            __builtin_prefetch((const char *)j + 64 * l);
        }
        for (int l = 0; l < JOB_PREFETCH_DATA; l++) {
            __builtin_prefetch(j->data + 64 * l);
        }
    }
    dv_sched_prefetch(self->sched, id, 1);
}

void
dv_broker_job_committed(dv_broker_t *self, job_t *j)
{
    if (j->uncommitted) {
        j->uncommitted = false;
        dv_broker_queue_bytes(self, j->queue)->uncommitted--;
    }
}

void
dv_broker_job_remove(dv_broker_t *self, uint64_t id)
{
    for (job_t **p = &self->jobs[bucket(self, id)]; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            job_t *j = *p;
            *p = j->next;
            dv_broker_job_committed(self, j);
            self->n_finishing -= j->finishing;
            dv_broker_queue_bytes(self, j->queue)->bytes -= j->payload_len;
            if (j->who) {
                self->whos[j->who].inflight--;
            }
            dv_broker_job_free(j);
            self->n_jobs--;
            return;
        }
    }
}

// ------------------------------------------------------------- workers

static uint64_t
route_hash(const void *route, size_t len)
{
    return dv_hash_bytes(route, len, DV_HASH_BYTES_INIT);
}

void
dv_broker_workers_index(dv_broker_t *self)
{
    size_t cap = 16;
    while (cap < 2 * self->n_workers) {
        cap *= 2;
    }
    if (cap != self->by_cap) {
        free(self->by_route);
        free(self->by_handle);
        self->by_route = dv_malloc(cap * sizeof *self->by_route);
        self->by_handle = dv_malloc(cap * sizeof *self->by_handle);
        self->by_cap = cap;
    }
    memset(self->by_route, 0, cap * sizeof *self->by_route);
    memset(self->by_handle, 0, cap * sizeof *self->by_handle);
    size_t mask = cap - 1;
    for (size_t i = 0; i < self->n_workers; i++) {
        const worker_t *w = &self->workers[i];
        size_t r = dv_hash_slot(route_hash(w->route, w->route_len), cap);
        while (self->by_route[r]) {
            r = (r + 1) & mask;
        }
        self->by_route[r] = (uint32_t)(i + 1);
        size_t h = dv_hash_slot(w->handle, cap);
        while (self->by_handle[h]) {
            h = (h + 1) & mask;
        }
        self->by_handle[h] = (uint32_t)(i + 1);
    }
}

worker_t *
dv_broker_worker_by_route(dv_broker_t *self, const void *route, size_t len)
{
    if (!self->by_cap) {
        return NULL;
    }
    size_t mask = self->by_cap - 1;
    for (size_t r = dv_hash_slot(route_hash(route, len), self->by_cap);
         self->by_route[r]; r = (r + 1) & mask) {
        worker_t *w = &self->workers[self->by_route[r] - 1];
        if (w->route_len == len && memcmp(w->route, route, len) == 0) {
            return w;
        }
    }
    return NULL;
}

worker_t *
dv_broker_worker_by_handle(dv_broker_t *self, uint64_t handle)
{
    if (!self->by_cap) {
        return NULL;
    }
    size_t mask = self->by_cap - 1;
    for (size_t h = dv_hash_slot(handle, self->by_cap); self->by_handle[h];
         h = (h + 1) & mask) {
        worker_t *w = &self->workers[self->by_handle[h] - 1];
        if (w->handle == handle) {
            return w;
        }
    }
    return NULL;
}

// Take j out of the jobs table without freeing it.
job_t *
dv_broker_job_detach(dv_broker_t *self, uint64_t id)
{
    for (job_t **p = &self->jobs[bucket(self, id)]; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            job_t *j = *p;
            *p = j->next;
            j->next = NULL;
            self->n_finishing -= j->finishing;
            dv_broker_queue_bytes(self, j->queue)->bytes -= j->payload_len;
            if (j->who) { // dead, or spilled: no longer counted in flight
                self->whos[j->who].inflight--;
                j->who = 0;
            }
            self->n_jobs--;
            return j;
        }
    }
    return NULL;
}

// ----------------------------------------------------------- handlers

// The whos slot of key id (added when new; 0 when the table is full).
uint16_t
dv_broker_who_index(dv_broker_t *self, const char *id)
{
    size_t found = dv_names_find(self->whonames, id); // every submit: no
    if (found != SIZE_MAX) {                          // walk of every key
        return (uint16_t)found;
    }
    if (self->n_whos >= UINT16_MAX) {
        return 0;
    }
    if (self->n_whos == self->cap_whos) { // doubling, not one at a time
        self->cap_whos *= 2;
        self->whos = dv_realloc(self->whos, self->cap_whos * sizeof(who_t));
    }
    who_t *w = &self->whos[self->n_whos];
    memset(w, 0, sizeof *w);
    snprintf(w->id, sizeof w->id, "%s", id);
    dv_names_add(self->whonames, w->id, self->n_whos);
    return (uint16_t)self->n_whos++;
}

void
dv_broker_send_simple(dv_broker_t *self,
                      void *sock,
                      const dv_wire_msg_t *in,
                      dv_msg_type_t type,
                      uint64_t rid)
{
    dv_msgw_t *w = dv_msgw_new(type, rid);
    if (type == DV_MSG_WELCOME) {
        dv_msgw_str(w, "broker", "drover-broker " DV_VERSION_STRING);
        dv_msgw_uint(w, "heartbeat_ms", self->heartbeat_ms);
        dv_msgw_key(w, "limits");
        dv_msgw_v_map(w, 8);
        const struct {
            const char *key;
            uint64_t value;
        } limits[] = {
            {"max_header_bytes", DV_MAX_HEADER_BYTES},
            {"max_frames", DV_MAX_FRAMES},
            {"max_frame_bytes", DV_MAX_FRAME_BYTES},
            {"max_rows", DV_MAX_INFER_ROWS},
            {"max_name_bytes", DV_MAX_WIRE_NAME},
            {"result_ttl_s", self->result_ttl_ms / 1000},
            {"max_kept_results", DV_MAX_KEPT_RESULTS},
            {"max_kept_bytes", DV_MAX_KEPT_BYTES},
        };
        for (size_t i = 0; i < 8; i++) {
            dv_msgw_v_str(w, limits[i].key);
            dv_msgw_v_uint(w, limits[i].value);
        }
    }
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    const void *route = zmq_msg_data((zmq_msg_t *)&in->route);
    size_t route_len = zmq_msg_size((zmq_msg_t *)&in->route);
    if (sock == self->clients) {
        dv_broker_client_send(self, route, route_len, h, len, NULL, 0);
    } else {
        dv_wire_send(sock, route, route_len, h, len, NULL, 0);
    }
    dv_msgw_destroy(&w);
}

// Send a finished reply header to route, then free it.
void
dv_broker_reply(void *sock, const void *route, size_t route_len, dv_msgw_t *w)
{
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_wire_send(sock, route, route_len, h, len, NULL, 0);
    dv_msgw_destroy(&w);
}

// Everything sent on the client socket goes through the byte counter
// (dv_outq): a client that does not read cannot make the broker hold more
// than DV_MAX_PEER_QUEUED_BYTES of replies for it.
// A reply header too long for any client to read (over
// DV_MAX_HEADER_BYTES: every peer drops it, so the request would go
// unanswered) goes out as `error` DV_EMSGSIZE for the same request
// instead. Lists come in pages (dv_page) and so never get here; this is
// the net under every other reply.
static int
send_too_long(dv_broker_t *self,
              const void *route,
              size_t route_len,
              const uint8_t *header,
              size_t header_len)
{
    uint64_t rid = 0;
    char type[32] = "?";
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, (const char *)header, header_len, NULL) ==
        MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *r = dv_msgpack_get(&u.data, "rid");
        const msgpack_object *t = dv_msgpack_get(&u.data, "t");
        if (r && r->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            rid = r->via.u64;
        }
        if (t && t->type == MSGPACK_OBJECT_STR) {
            snprintf(type, sizeof type, "%.*s",
                     (int)(t->via.str.size < 31 ? t->via.str.size : 31),
                     t->via.str.ptr);
        }
    }
    msgpack_unpacked_destroy(&u);
    char text[160];
    snprintf(text, sizeof text,
             "the reply (%s) would be %zu bytes, over the %d a header may "
             "hold",
             type, header_len, DV_MAX_HEADER_BYTES);
    dv_log(DV_LOG_WARN, "broker", "%s: answered DV_EMSGSIZE instead", text);
    dv_msgw_t *w = dv_msgw_error_reply(rid, 0, DV_EMSGSIZE, text);
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    int rc =
        dv_outq_send(self->outq, route, route_len, h, len, NULL, 0, NULL, NULL);
    dv_msgw_destroy(&w);
    return rc;
}

int
dv_broker_client_send(dv_broker_t *self,
                      const void *route,
                      size_t route_len,
                      const uint8_t *header,
                      size_t header_len,
                      const dv_frame_t *frames,
                      size_t n_frames)
{
    if (header_len > DV_MAX_HEADER_BYTES) {
        return send_too_long(self, route, route_len, header, header_len);
    }
    return dv_outq_send(self->outq, route, route_len, header, header_len,
                        frames, n_frames, NULL, NULL);
}

void
dv_broker_client_reply(dv_broker_t *self,
                       const void *route,
                       size_t route_len,
                       dv_msgw_t *w)
{
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_broker_client_send(self, route, route_len, h, len, NULL, 0);
    dv_msgw_destroy(&w);
}

void
dv_broker_client_error(dv_broker_t *self,
                       const void *route,
                       size_t route_len,
                       uint64_t rid,
                       uint64_t job,
                       int code,
                       const char *text)
{
    dv_broker_client_reply(self, route, route_len,
                           dv_msgw_error_reply(rid, job, code, text));
}

// Serve one request from a client connection (checked against its key's
// roles, audited, answered with `error` when it fails): a message, or one
// request of a `submit_many`.
void
dv_broker_serve_request(dv_broker_t *self, dv_wire_msg_t *in, const dv_msg_t *m)
{
    const void *route = zmq_msg_data(&in->route);
    size_t route_len = zmq_msg_size(&in->route);
    uint64_t rid = dv_msg_rid(m);
    dv_error_t err = {0};
    const dv_key_t *who = NULL;
    char who_id[DV_KEY_ID_MAX + 1] = ""; // outlives a reload's new keyring
    const msg_row_t *row = dv_handlers_client_row(dv_msg_type(m));
    int rc = dv_authorize_client(self, in, m, row, &who, &err);
    self->current = who;
    if (who) {
        snprintf(who_id, sizeof who_id, "%s", who->id);
    }
    bool checked = who || !dv_auth_secure(self->auth); // its key was known
    if (rc == 0 && row) {
        request_t r = {self, in, m, route, route_len, rid, who_id, NULL};
        rc = row->handler(&r, &err);
    } else if (rc == 0) {
        rc = dv_errorf(&err, DV_EFORMAT,
                       "message type '%s' is not accepted from clients "
                       "by this broker",
                       dv_msg_name(dv_msg_type(m)));
    }
    if (m && checked) {
        dv_authorize_audit_message(self, row, who_id, m, rc, &err);
    }
    self->current = NULL;
    if (rc) {
        dv_broker_client_error(self, route, route_len, rid, 0, rc, err.text);
    }
}

gather_t *
dv_broker_gather_new(size_t elem)
{
    dv_assert(elem >= sizeof(route_key_t));
    gather_t *g = dv_calloc(1, sizeof *g);
    g->elem = elem;
    return g;
}

void *
dv_broker_gather_slot(gather_t *g,
                      const void *route,
                      size_t route_len,
                      bool *added)
{
    for (size_t i = 0; i < g->n; i++) {
        route_key_t *k = (route_key_t *)((uint8_t *)g->slots + i * g->elem);
        if (k->route_len == route_len &&
            memcmp(k->route, route, route_len) == 0) {
            *added = false;
            return k;
        }
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 8;
        g->slots = dv_realloc(g->slots, g->cap * g->elem);
    }
    route_key_t *k = (route_key_t *)((uint8_t *)g->slots + g->n++ * g->elem);
    memset(k, 0, g->elem);
    memcpy(k->route, route, route_len);
    k->route_len = route_len;
    *added = true;
    return k;
}

void
dv_broker_gather_end(dv_broker_t *self, gather_t **g_p, gather_flush_fn *flush)
{
    gather_t *g = *g_p;
    *g_p = NULL;
    if (!g) {
        return;
    }
    for (size_t i = 0; i < g->n; i++) {
        flush(self, (uint8_t *)g->slots + i * g->elem);
    }
    free(g->slots);
    free(g);
}

bool
dv_broker_not_leader(dv_broker_t *self,
                     void *sock,
                     const void *route,
                     size_t route_len,
                     uint64_t rid,
                     dv_msg_type_t type)
{
    if (!self->group || (self->repl && dv_repl_serving(self->repl)) ||
        type == DV_MSG_PING || type == DV_MSG_CLUSTER) {
        return false;
    }
    const char *leader = !self->repl ? "" // closing
                         : sock == self->clients
                             ? dv_repl_leader_client(self->repl)
                             : dv_repl_leader_worker(self->repl);
    dv_msgw_t *w = dv_msgw_error_reply(
        rid, 0, DV_ENOTLEADER,
        *leader ? "this broker follows the group's leader: ask the leader"
                : "no leader yet (an election is under way): try again "
                  "shortly, or another member");
    if (*leader) {
        dv_msgw_str(w, "leader", leader);
    }
    if (sock == self->clients) {
        dv_broker_client_reply(self, route, route_len, w);
    } else {
        dv_broker_reply(sock, route, route_len, w);
    }
    return true;
}

// The bounds of the model registry and the data set store
// (--max-stored-bytes, --min-free-disk), once opened.
static void
bound_catalogs(dv_broker_t *self)
{
    dv_registry_bound(self->registry, 0, self->max_stored_bytes,
                      self->min_free_disk);
    dv_datasets_bound(self->datasets, 0, self->max_stored_bytes,
                      self->min_free_disk);
}

// This member leads and has applied everything before its term: recover
// from the store and the files as a restarted broker would, then serve.
static void
on_repl_leader(void *arg)
{
    dv_broker_t *self = arg;
    dv_error_t err = {0};
    dv_registry_destroy(&self->registry);
    dv_datasets_destroy(&self->datasets);
    dv_owners_destroy(&self->model_owners);
    dv_owners_destroy(&self->data_owners);
    dv_audit_destroy(&self->audit);
    char odir[4200];
    int rc = dv_registry_open(&self->registry, self->data_dir, &err);
    if (rc == 0) {
        rc = dv_datasets_open(&self->datasets, self->data_dir, &err);
    }
    if (rc == 0) {
        bound_catalogs(self);
    }
    if (rc == 0) {
        rc = dv_recover_run(self, &err);
    }
    if (rc == 0) {
        rc =
            dv_audit_open(&self->audit, self->store, DV_MAX_AUDIT_STORED, &err);
    }
    if (rc == 0) {
        snprintf(odir, sizeof odir, "%s/models", self->data_dir);
        rc = dv_owners_open(&self->model_owners, odir, &err);
    }
    if (rc == 0) {
        snprintf(odir, sizeof odir, "%s/datasets", self->data_dir);
        rc = dv_owners_open(&self->data_owners, odir, &err);
    }
    if (rc) { // what it applied cannot be read back: let another lead
        dv_log(DV_LOG_ERROR, "broker",
               "cannot serve as the group's leader: %s (stopping; the "
               "others elect another)",
               err.text);
        exit(1);
    }
    dv_log(DV_LOG_INFO, "broker", "leading the broker group: serving on %s",
           self->client_ep);
    dv_batching_dispatch(self);
}

// This member stopped leading: nothing of its term may go on (no reply it
// sends now can acknowledge anything: acknowledgements wait for commits,
// which fail). Start over as a follower.
static void
on_repl_deposed(void *arg)
{
    dv_broker_t *self = arg;
    self->restart = true;
    uv_stop(&self->loop);
}

static void
on_client_message(dv_broker_t *self, dv_wire_msg_t *in)
{
    const void *route = zmq_msg_data(&in->route);
    size_t route_len = zmq_msg_size(&in->route);
    dv_error_t err = {0};
    uint64_t rid = 0;
    dv_msg_t *m = NULL;
    int rc;
    if (in->no_header) {
        rc = dv_errorf(&err, DV_EFORMAT, "empty message: no header frame");
    } else if (in->too_many) {
        // The header alone, for its rid: the refusal goes to the request
        // the client waits on.
        dv_msg_t *probe = NULL;
        dv_error_t ignore;
        dv_msg_decode(&probe, zmq_msg_data(&in->header),
                      zmq_msg_size(&in->header), NULL, 0, &rid, &ignore);
        dv_msg_destroy(&probe);
        rc = dv_errorf(&err, DV_EMSGSIZE, "more than %d payload frames",
                       DV_MAX_FRAMES);
    } else {
        rc = dv_msg_decode(&m, zmq_msg_data(&in->header),
                           zmq_msg_size(&in->header), in->frames, in->n_payload,
                           &rid, &err);
        rc = rc ? rc : dv_msg_check_peer_depth(m, &err);
    }
    int limit = dv_auth_seen(self->auth, "clients", &in->route, &in->header,
                             &self->current_closed, &err);
    rc = limit ? limit : rc; // a connection past the limits is served nothing
    size_t held = dv_outq_peer_bytes(self->outq, route, route_len);
    if (rc == 0 && held > DV_MAX_PEER_QUEUED_BYTES) {
        // It does not read its replies: no new work for it. A short error
        // while that stays bounded, then silence.
        if (held > DV_MAX_PEER_QUEUED_BYTES + DV_PEER_ERROR_SLACK_BYTES) {
            self->dropped_requests++;
            dv_msg_destroy(&m);
            return;
        }
        rc = dv_errorf(&err, DV_ELIMIT,
                       "%zu bytes of replies already wait for you (limit "
                       "%zu): read them first",
                       held, (size_t)DV_MAX_PEER_QUEUED_BYTES);
    }
    if (rc == 0 && dv_broker_not_leader(self, self->clients, route, route_len,
                                        rid, dv_msg_type(m))) {
        dv_msg_destroy(&m);
        return;
    }
    if (rc == 0 && dv_msg_type(m) == DV_MSG_SUBMIT_MANY) {
        rc = dv_batching_on_submit_many(self, in, m, &err);
    } else if (rc == 0) {
        dv_broker_serve_request(self, in, m);
    }
    if (rc && m && !dv_auth_secure(self->auth)) {
        dv_authorize_audit_message(self, dv_handlers_client_row(dv_msg_type(m)),
                                   "", m, rc,
                                   &err); // a refused admin action
    }
    if (rc) {
        dv_broker_client_error(self, route, route_len, rid, 0, rc, err.text);
    }
    dv_msg_destroy(&m);
}

// ZeroMQ sockets: one whole message per ready callback (dv_zwatch.h).
static int
on_clients_ready(dv_zwatch_t *zw, int events, void *arg)
{
    (void)events;
    dv_broker_t *self = arg;
    dv_wire_msg_t in;
    if (dv_wire_recv(dv_zwatch_socket(zw), true, &in) != 1) {
        return 0;
    }
    on_client_message(self, &in);
    dv_wire_msg_close(&in);
    dv_batching_dispatch(self);
    return 1;
}

static int
on_workers_ready(dv_zwatch_t *zw, int events, void *arg)
{
    (void)events;
    dv_broker_t *self = arg;
    dv_wire_msg_t in;
    if (dv_wire_recv(dv_zwatch_socket(zw), true, &in) != 1) {
        return 0;
    }
    dv_workers_msg_on_message(self, &in);
    dv_wire_msg_close(&in);
    dv_batching_dispatch(self);
    return 1;
}

static void
on_heartbeat(uv_timer_t *t)
{
    dv_broker_t *self = t->data;
    dv_results_kept_trim(self);         // results past their TTL
    dv_idem_trim(self);                 // keys past their window
    dv_datasets_msg_uploads_trim(self); // data set uploads nobody continued
    dv_outq_sweep(self->outq);          // clients with nothing in flight
    dv_outq_sweep(self->wout);          // workers likewise
    if (self->disk) {
        dv_disk_check(self->disk); // durable submits stop short of full
    }
    for (size_t i = 0; i < self->n_cursors; i++) {
        dv_results_stream_pump(self,
                               &self->cursors[i]); // held back by bytes: read?
    }
    if (self->n_switches) {
        dv_models_msg_switches_check(self); // alias switches past their wait
    }

    // Messages from workers may be waiting unread (the loop was busy): read
    // them first (dv_workers_msg_check), so a worker whose heartbeat is in our
    // own queue is not called silent, and the lease bound holds under load (a
    // worker is declared dead no sooner than the lease after its last
    // message, and no later than one heartbeat interval after that).
    dv_workers_msg_check(self, true);
}

static void
on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    dv_broker_stop(s->data);
}

// SIGHUP: reload the authorized keys (a revoked key's connections are
// refused from their next message on).
static void
on_sighup(uv_signal_t *s, int signum)
{
    (void)signum;
    dv_broker_t *self = s->data;
    size_t n = 0;
    dv_error_t err = {0};
    int rc = dv_auth_reload(self->auth, &n, &err);
    dv_authorize_reload_done(self, "", rc, n, err.text);
}

static int
bind_router(void *ctx,
            dv_auth_t *auth,
            const char *domain,
            const char *endpoint,
            void **out,
            char *bound,
            size_t bound_size,
            dv_error_t *err)
{
    int rc = dv_endpoint_check_free(endpoint, err); // ipc: never taken over
    if (rc) {
        return rc;
    }
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    if (dv_auth_socket(auth, s, domain, err) != 0) { // before the bind
        zmq_close(s);
        return err ? err->code : DV_EIO;
    }
    int64_t maxmsg = (int64_t)DV_MAX_FRAME_BYTES;
    int hwm = DV_PEER_HWM, linger = 0;
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(s, endpoint) != 0) {
        int e = zmq_errno();
        zmq_close(s);
        char hint[200];
        return dv_errorf(
            err, e == EINVAL || e == EPROTONOSUPPORT ? DV_EINVAL : DV_EIO,
            "cannot bind %s: %s%s", endpoint, zmq_strerror(e),
            dv_addr_hint(endpoint, e, true, hint, sizeof hint));
    }
    size_t len = bound_size;
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, bound, &len);
    *out = s;
    return 0;
}

// The settings opts gives (or their defaults), and the state that needs
// nothing opened.
static void
broker_settings(dv_broker_t *self, const dv_broker_opts_t *opts)
{
    self->heartbeat_ms = opts->heartbeat_ms ? opts->heartbeat_ms : 1000;
    self->liveness = opts->liveness ? opts->liveness : 3;
    self->n_buckets = 1024;
    self->jobs = dv_calloc(self->n_buckets, sizeof(job_t *));
    self->kept = dv_calloc(KEPT_BUCKETS, sizeof(kept_t *));
    self->result_ttl_ms =
        opts->result_ttl_ms ? opts->result_ttl_ms : 3600 * 1000;
    self->max_queued = opts->max_queued ? opts->max_queued : 1000000;
    self->max_queued_bytes =
        opts->max_queued_bytes ? opts->max_queued_bytes : (uint64_t)1 << 30;
    self->next_job = 1;
    self->next_handle = 1;
    self->sched = dv_sched_new();
    self->job_spare = dv_spare_new(DV_SPARE_MAX_BLOCK, DV_SPARE_BYTES);
    self->qnames = dv_names_new();
    self->cursor_names = dv_names_new();
    self->dead_ids = dv_u64map_new();
    self->skip = dv_u64map_new();
    self->spilled = dv_u64map_new();
    dv_sched_set_aging(self->sched, opts->aging_ms ? opts->aging_ms : 10000);
    self->quarantine_after =
        opts->quarantine_after ? opts->quarantine_after : 3;
    self->max_dead = opts->max_dead && opts->max_dead < DV_MAX_DEAD_JOBS
                         ? opts->max_dead
                         : DV_MAX_DEAD_JOBS;
    self->max_dead_bytes =
        opts->max_dead_bytes && opts->max_dead_bytes < DV_MAX_DEAD_BYTES
            ? opts->max_dead_bytes
            : DV_MAX_DEAD_BYTES;
    self->max_stored_bytes = opts->max_stored_bytes;
    self->min_free_disk = opts->min_free_disk;
    self->submit_free_disk = opts->submit_free_disk;
    self->idem_window_ms = opts->idempotency_window_ms
                               ? opts->idempotency_window_ms
                               : 24ULL * 3600 * 1000;
    self->timeq = dv_timeq_new();
    self->timers_compact_at = 1024; // dv_timers_add
    self->spill_window =
        opts->memory_window ? opts->memory_window : DV_SPILL_WINDOW_DEFAULT;
    self->rng = 0x9e3779b97f4a7c15ULL ^ dv_broker_unix_ms_now();
    self->lock_fd = -1;
    self->max_inflight = opts->max_inflight ? opts->max_inflight : 100000;
    self->require_signed = opts->require_signed;
    self->whos = dv_calloc(16, sizeof(who_t)); // index 0: nobody
    self->n_whos = 1;
    self->cap_whos = 16;
    self->whonames = dv_names_new();
}

// The data folder locked (one broker per folder, before anything in it is
// read) and its catalogs opened. On failure nothing of it stays open.
static int
open_catalogs(dv_broker_t *self,
              const char *data_dir,
              const dv_repl_opts_t *ro,
              dv_error_t *err)
{
    int rc = data_dir ? dv_endpoint_lock_dir(data_dir, &self->lock_fd, err) : 0;
    if (rc == 0 && ro) { // the folder is ours: what the log rebuilds goes
        rc = dv_repl_prepare(ro, err);
    }
    if (rc == 0) {
        rc = dv_registry_open(&self->registry, data_dir, err);
    }
    if (rc == 0) {
        rc = dv_datasets_open(&self->datasets, data_dir, err);
        if (rc) {
            dv_registry_destroy(&self->registry);
        } else {
            bound_catalogs(self);
        }
    }
    if (rc) {
        dv_endpoint_unlock_dir(&self->lock_fd);
    }
    return rc;
}

// The store (and what recovers from it), the audit log and the owners of
// models and data sets (data_dir NULL: all in memory).
static int
open_records(dv_broker_t *self,
             const char *data_dir,
             bool replicated,
             dv_error_t *err)
{
    int rc = 0;
    if (data_dir) {
        rc = dv_store_open(&self->store, data_dir, err);
        self->disk = dv_disk_new(data_dir, self->submit_free_disk
                                               ? self->submit_free_disk
                                               : DV_SUBMIT_FREE_DISK_BYTES);
        dv_disk_check(self->disk);
        if (rc == 0 && !replicated) { // a member recovers when it leads
            rc = dv_recover_run(self, err);
        }
    }
    if (rc == 0) {
        rc = dv_audit_open(&self->audit, self->store, DV_MAX_AUDIT_STORED, err);
    }
    char odir[4200];
    if (rc == 0) {
        snprintf(odir, sizeof odir, "%s/models", data_dir ? data_dir : "");
        rc = dv_owners_open(&self->model_owners, data_dir ? odir : NULL, err);
    }
    if (rc == 0) {
        snprintf(odir, sizeof odir, "%s/datasets", data_dir ? data_dir : "");
        rc = dv_owners_open(&self->data_owners, data_dir ? odir : NULL, err);
    }
    return rc;
}

// A connection closed (dv_auth). A client's: the consumers it followed
// are followed no more. A worker's: it is declared lost after
// DV_WORKER_GONE_GRACE_MS (dv_workers_msg_gone), unless it is gone by then.
static void
on_connection_gone(const char *domain, uint64_t route_hash, void *arg)
{
    dv_broker_t *self = arg;
    if (strcmp(domain, "clients") == 0) {
        dv_results_route_gone(self, route_hash);
        return;
    }
    dv_workers_msg_gone(self, route_hash);
}

// CURVE (or plain mode, refused on an endpoint other machines reach
// without --plain) and the connection bounds.
static int
open_auth(dv_broker_t *self, const dv_broker_opts_t *opts, dv_error_t *err)
{
    if (!opts->secret_key && !opts->plain &&
        (dv_authorize_exposed(opts->client_endpoint) ||
         dv_authorize_exposed(opts->worker_endpoint))) {
        return dv_errorf(err, DV_EINVAL,
                         "%s is reachable from other machines: run with "
                         "--secret-key FILE.key --authorized-keys DIR "
                         "(docs/SECURITY.md), or give --plain to accept no "
                         "encryption and no authentication on a private "
                         "network",
                         dv_authorize_exposed(opts->client_endpoint)
                             ? opts->client_endpoint
                             : opts->worker_endpoint);
    }
    dv_auth_opts_t ao = {
        opts->secret_key,
        opts->authorized_keys,
        opts->max_connections ? opts->max_connections : DV_MAX_CONNECTIONS,
        dv_authorize_on_handshake_refused,
        self,
        opts->max_worker_connections ? opts->max_worker_connections
                                     : DV_MAX_WORKER_CONNECTIONS,
        opts->max_key_connections ? opts->max_key_connections
                                  : DV_MAX_KEY_CONNECTIONS,
        (int)opts->handshake_ms,
        on_connection_gone,
        self};
    return dv_auth_open(&self->auth, self->ctx, &self->loop, &ao, err);
}

// Both ROUTER sockets bound and watched by the loop.
static int
open_sockets(dv_broker_t *self, const dv_broker_opts_t *opts, dv_error_t *err)
{
    int rc = bind_router(self->ctx, self->auth, "clients",
                         opts->client_endpoint, &self->clients, self->client_ep,
                         sizeof self->client_ep, err);
    if (rc == 0) {
        self->outq = dv_outq_new(self->clients, DV_MAX_PEER_QUEUED_BYTES,
                                 DV_MAX_QUEUED_BYTES);
        rc = bind_router(self->ctx, self->auth, "workers",
                         opts->worker_endpoint, &self->workers_sock,
                         self->worker_ep, sizeof self->worker_ep, err);
    }
    if (rc == 0) {
        self->wout = dv_outq_new(self->workers_sock, DV_MAX_WORKER_QUEUED_BYTES,
                                 DV_MAX_WORKERS_QUEUED_BYTES);
    }
    if (rc == 0 && !dv_auth_secure(self->auth)) {
        dv_authorize_warn_if_exposed(self->client_ep);
        dv_authorize_warn_if_exposed(self->worker_ep);
    }
    if (rc == 0) {
        rc = dv_zwatch_open(&self->client_watch, &self->loop, self->clients,
                            DV_ZWATCH_READABLE, on_clients_ready, self, err);
    }
    if (rc == 0) {
        rc =
            dv_zwatch_open(&self->worker_watch, &self->loop, self->workers_sock,
                           DV_ZWATCH_READABLE, on_workers_ready, self, err);
    }
    if (rc == 0) {
        // Every other use of both sockets goes by dv_wire, dv_outq or
        // socket_has_input, which report it (dv_zwatch_used).
        dv_zwatch_set_sole(self->client_watch);
        dv_zwatch_set_sole(self->worker_watch);
    }
    return rc;
}

// The heartbeat timer and the signals: caught from now on (before READY
// is printed), handled once the loop runs, so a SIGTERM right after READY
// stops the broker cleanly.
static void
start_handles(dv_broker_t *self)
{
    uv_timer_init(&self->loop, &self->heartbeat);
    self->heartbeat.data = self;
    uv_timer_init(&self->loop, &self->gone_timer);
    self->gone_timer.data = self;
    uv_signal_init(&self->loop, &self->sigint);
    uv_signal_init(&self->loop, &self->sigterm);
    uv_signal_init(&self->loop, &self->sighup);
    self->sigint.data = self->sigterm.data = self->sighup.data = self;
    uv_signal_start(&self->sigint, on_signal, SIGINT);
    uv_signal_start(&self->sigterm, on_signal, SIGTERM);
    uv_signal_start(&self->sighup, on_sighup, SIGHUP);
}

int
dv_broker_open(dv_broker_t **out, const dv_broker_opts_t *opts, dv_error_t *err)
{
    dv_broker_t *self = dv_calloc(1, sizeof *self);
    broker_settings(self, opts);
    dv_repl_opts_t ro = {.id = opts->raft_id,
                         .address = opts->raft,
                         .peers = opts->raft_peers,
                         .join = opts->raft_join,
                         .private_net = opts->raft_private,
                         .election_ms = opts->raft_election_ms,
                         .files_port = opts->raft_files_port,
                         .data_dir = opts->data_dir};
    int rc = opts->raft_id && !opts->data_dir
                 ? dv_errorf(err, DV_EINVAL,
                             "a broker group member needs --data DIR (its "
                             "Raft log and store live there)")
                 : open_catalogs(self, opts->data_dir,
                                 opts->raft_id ? &ro : NULL, err);
    if (rc) { // no loop yet: dv_broker_destroy would run one
        dv_sched_destroy(&self->sched);
        dv_spare_destroy(&self->job_spare);
        dv_names_destroy(&self->qnames);
        dv_names_destroy(&self->cursor_names);
        dv_u64map_destroy(&self->dead_ids);
        dv_u64map_destroy(&self->skip);
        dv_u64map_destroy(&self->spilled);
        dv_timeq_destroy(&self->timeq);
        free(self->whos);
        dv_names_destroy(&self->whonames);
        free(self->kept);
        free(self->jobs);
        free(self);
        return rc;
    }
    self->ctx = zmq_ctx_new();
    uv_loop_init(&self->loop);
    uv_timer_init(&self->loop, &self->commit_timer);
    self->commit_timer.data = self;
    uv_timer_init(&self->loop, &self->fetch_timer);
    self->fetch_timer.data = self;
    uv_timer_init(&self->loop, &self->timer);
    self->timer.data = self;
    snprintf(self->data_dir, sizeof self->data_dir, "%s",
             opts->data_dir ? opts->data_dir : "");
    rc = open_records(self, opts->data_dir, opts->raft_id != 0, err);
    // The fault seams count from here on: recovery is not what they test.
    self->fault_left = opts->fault_kill_result;
    self->fault_eio_left = opts->fault_eio_submit;
    if (rc == 0) { // as libuv's pool: a commit, pushes and reads beside it
        rc = dv_pool_new(&self->pool, &self->loop, 4, "broker-pool", err);
    }
    if (rc == 0) {
        rc = open_auth(self, opts, err);
    }
    if (rc == 0) {
        rc = open_sockets(self, opts, err);
    }
    self->monitor = dv_monitor_new(opts->data_dir);
    if (rc == 0 && opts->http) {
        dv_http_opts_t ho = {opts->http, opts->http_token, opts->plain,
                             dv_monitor_http, self};
        rc = dv_http_open(&self->http, &self->loop, &ho, err);
    }
    self->group = opts->raft_id != 0;
    if (rc == 0 && opts->raft_id) {
        ro.client_ep = self->client_ep;
        ro.worker_ep = self->worker_ep;
        ro.http = self->http ? dv_http_address(self->http) : "";
        dv_repl_events_t ev = {on_repl_leader, on_repl_deposed, self};
        rc = dv_repl_open(&self->repl, &self->loop, self->store, &ro, &ev, err);
    }
    if (rc) {
        dv_broker_destroy(&self);
        return rc;
    }
    start_handles(self);
    *out = self;
    return 0;
}

const char *
dv_broker_client_endpoint(const dv_broker_t *self)
{
    return self->client_ep;
}

const char *
dv_broker_worker_endpoint(const dv_broker_t *self)
{
    return self->worker_ep;
}

const char *
dv_broker_http_address(const dv_broker_t *self)
{
    return self->http ? dv_http_address(self->http) : NULL;
}

int
dv_broker_run(dv_broker_t *self)
{
    self->running = true;
    uv_timer_start(&self->heartbeat, on_heartbeat, self->heartbeat_ms,
                   self->heartbeat_ms);
    uv_run(&self->loop, UV_RUN_DEFAULT);
    self->running = false;
    // A batch still on the pool finishes in dv_broker_destroy's uv_run;
    // what was staged after it is committed there too.
    return self->restart ? DV_BROKER_RESTART : 0;
}

void
dv_broker_stop(dv_broker_t *self)
{
    uv_stop(&self->loop);
}

// Close the sockets' watchers and the loop's handles, let what is on the
// pool finish, commit what is staged (acknowledged only once stored, the
// sockets still open), then close the store, the loop and the sockets.
static void
broker_close(dv_broker_t *self)
{
    if (self->client_watch) {
        dv_zwatch_close(self->client_watch, NULL, NULL);
    }
    if (self->worker_watch) {
        dv_zwatch_close(self->worker_watch, NULL, NULL);
    }
    dv_auth_close(self->auth);
    dv_http_close(self->http); // freed by the uv_run below
    self->http = NULL;
    dv_repl_close(&self->repl); // freed by the uv_run below
    dv_fetch_close(self); // waiting fetches; reads on the pool still finish
    uv_handle_t *handles[] = {
        (uv_handle_t *)&self->heartbeat,   (uv_handle_t *)&self->sigint,
        (uv_handle_t *)&self->sigterm,     (uv_handle_t *)&self->commit_timer,
        (uv_handle_t *)&self->timer,       (uv_handle_t *)&self->sighup,
        (uv_handle_t *)&self->fetch_timer, (uv_handle_t *)&self->gone_timer};
    for (size_t i = 0; i < sizeof handles / sizeof *handles; i++) {
        if (handles[i]->loop == &self->loop && !uv_is_closing(handles[i])) {
            uv_close(handles[i], NULL);
        }
    }
    uv_run(&self->loop, UV_RUN_DEFAULT); // close callbacks, pool work
    if (!self->group) { // a group's commits need the group: not acknowledged
        dv_commit_flush(self);
    }
    dv_store_destroy(&self->store); // before the frees below stage deletes
    dv_disk_destroy(&self->disk);
    dv_pool_close(self->pool); // idle now: its threads end, its handle
    self->pool = NULL;         // closes in this run
    uv_run(&self->loop, UV_RUN_DEFAULT);
    uv_loop_close(&self->loop);
    if (self->clients) {
        zmq_close(self->clients);
    }
    if (self->workers_sock) {
        zmq_close(self->workers_sock);
    }
    dv_auth_destroy(&self->auth);
    zmq_ctx_term(self->ctx);
    dv_outq_destroy(&self->outq); // every frame's callback has run
    dv_outq_destroy(&self->wout);
}

// The jobs, kept results and workers.
static void
free_jobs(dv_broker_t *self)
{
    for (size_t b = 0; b < self->n_buckets; b++) {
        while (self->jobs[b]) {
            job_t *j = self->jobs[b];
            self->jobs[b] = j->next;
            dv_broker_job_free(j);
        }
    }
    free(self->jobs);
    while (self->kept_oldest) {
        dv_results_kept_evict_oldest(self);
    }
    free(self->kept);
    for (size_t i = 0; i < self->n_workers; i++) {
        dv_strs_free(&self->workers[i].models, self->workers[i].n_models);
        dv_strs_free(&self->workers[i].datasets, self->workers[i].n_datasets);
        dv_strs_free(&self->workers[i].queues, self->workers[i].n_queues);
    }
    free(self->workers);
    free(self->by_route);
    free(self->by_handle);
    free(self->pending);
    free(self->ckpts_due);
}

// The queues' spills, dead letters and idempotency keys.
static void
free_queues(dv_broker_t *self)
{
    for (size_t q = 0; q < self->n_qbytes; q++) {
        for (size_t i = 0; i < self->qbytes[q].n_spills; i++) {
            free(self->qbytes[q].spills[i].buf);
        }
        free(self->qbytes[q].spills);
        free(self->qbytes[q].fol);
    }
    free(self->qbytes);
    for (size_t i = 0; i < self->n_dead; i++) {
        dv_broker_job_free(self->dead[i].job);
        free(self->dead[i].text);
    }
    free(self->dead_block);
    dv_u64map_destroy(&self->dead_ids);
    free(self->cursors);
    free(self->marks_due);
    dv_u64map_destroy(&self->skip);
    dv_u64map_destroy(&self->spilled);
    while (self->idem_oldest) {
        idem_t *e = self->idem_oldest;
        self->idem_oldest = e->newer;
        free(e);
    }
    free(self->idem);
}

// The catalogs and what is in flight for them: parked model pushes (only
// if a lower version never finished), alias switches, data set uploads.
static void
free_catalogs(dv_broker_t *self)
{
    while (self->parked) {
        struct push_s *p = self->parked;
        self->parked = p->next_parked;
        free(p->info.schema);
        free(p->info.lineage);
        free(p->image);
        free(p->lineage);
        free(p->dir);
        free(p);
    }
    free(self->switches);
    dv_registry_destroy(&self->registry);
    dv_datasets_destroy(&self->datasets);
    while (self->uploads) {
        upload_t *u = self->uploads;
        self->uploads = u->next;
        free(u->buf);
        free(u);
    }
}

void
dv_broker_destroy(dv_broker_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_broker_t *self = *self_p;
    broker_close(self);
    dv_audit_destroy(&self->audit);
    dv_monitor_destroy(&self->monitor);
    dv_owners_destroy(&self->model_owners);
    dv_owners_destroy(&self->data_owners);
    free(self->whos);
    dv_names_destroy(&self->whonames);
    free_jobs(self);
    free_queues(self);
    dv_broker_job_free(self->scratch);
    dv_timeq_destroy(&self->timeq);
    dv_sched_destroy(&self->sched);
    dv_spare_destroy(&self->job_spare); // after every job
    dv_names_destroy(&self->qnames);
    dv_names_destroy(&self->cursor_names);
    free_catalogs(self);
    dv_endpoint_unlock_dir(&self->lock_fd); // last: the folder is ours till now
    free(self);
    *self_p = NULL;
}
