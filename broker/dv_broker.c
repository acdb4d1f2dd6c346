// dv_broker — the broker's loop (see dv_broker.h for what it carries today).
//
// Model: one libuv loop owns both ROUTER sockets (through dv_zwatch), a
// heartbeat timer and the signal handles. Jobs live in a chained hash table
// keyed by id (their bodies: submitter's routing id, rid, kind, payload);
// dv_sched decides what runs where. After every batch of incoming messages,
// dispatch() drains dv_sched_next into `run` messages.
//
// Every accepted job ends in a `result` to its submitter: done or failed by
// the worker, or failed by the broker when its attempts are used up by lost
// workers. A peer's malformed message gets an `error` reply and changes
// nothing.
#include "dv_broker.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <zmq.h>

#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_proto.h"
#include "dv_sched.h"
#include "dv_wire.h"
#include "dv_zwatch.h"

#define ROUTE_MAX            256 // ZeroMQ routing ids are at most 255 bytes
#define DEFAULT_MAX_ATTEMPTS 3   // per job, when submit does not say
#define MAX_ATTEMPTS_LIMIT   100 // a submit asking for more is refused
// Queued results per peer before ZeroMQ drops: deep enough for a producer
// that submits tens of thousands of jobs asynchronously before reading.
#define PEER_HWM 1000000

// Results kept for fetching by id (result_get) after they are pushed: at
// most this many, this many payload bytes, for result_ttl_ms (options).
#define KEPT_MAX       100000
#define KEPT_MAX_BYTES ((size_t)256 << 20)
#define KEPT_BUCKETS   65536 // hash buckets (power of two)

// One allocation per kept result: the fields, then the worker's name
// (NUL-terminated), then the payload frames back to back. Results are
// long-lived and numerous; one compact block each keeps the heap from
// fragmenting against the broker's per-message allocations.
typedef struct kept kept_t;
struct kept {
    uint64_t id;                       // job id
    uint64_t at_ms;                    // loop time it finished
    kept_t *hnext;                     // hash chain
    kept_t *newer;                     // FIFO by finish time
    char *text;                        // failure reason (owned); NULL if done
    int code;                          // error when failed
    uint32_t attempts;                 // attempts it took
    uint32_t frame_len[DV_MAX_FRAMES]; // payload frame sizes
    uint8_t n_frames;                  // their count
    bool done;                         // else failed
    size_t bytes;                      // payload bytes
    char data[];                       // worker name, NUL, then payloads
};

typedef struct job job_t;
struct job {
    uint64_t id;                      // broker-assigned, > 0
    uint8_t route[ROUTE_MAX];         // submitter's routing id
    size_t route_len;                 // its length
    uint64_t rid;                     // submitter's request id
    char kind[16];                    // "echo"
    char queue[DV_MAX_WIRE_NAME + 1]; // queue name
    uint8_t *payload;                 // frame 1 of the submit, owned
    size_t payload_len;               // its length
    uint32_t attempts;                // dispatches so far
    job_t *next;                      // hash chain
};

typedef struct {
    uint8_t route[ROUTE_MAX];        // worker's routing id
    size_t route_len;                // its length
    uint64_t handle;                 // id in dv_sched
    char name[DV_MAX_WIRE_NAME + 1]; // from register
    uint64_t last_seen_ms;           // loop time of its last message
} worker_t;

struct dv_broker {
    uv_loop_t loop;            // the broker's loop
    void *ctx;                 // ZeroMQ context
    void *clients;             // ROUTER for clients
    void *workers_sock;        // ROUTER for workers
    dv_zwatch_t *client_watch; // clients in the loop
    dv_zwatch_t *worker_watch; // workers in the loop
    uv_timer_t heartbeat;      // liveness and heartbeats
    uv_signal_t sigint;        // stop on SIGINT
    uv_signal_t sigterm;       // stop on SIGTERM
    char client_ep[256];       // bound client endpoint
    char worker_ep[256];       // bound worker endpoint
    uint32_t heartbeat_ms;     // interval
    uint32_t liveness;         // intervals before dead
    dv_sched_t *sched;         // what runs where
    job_t **jobs;              // hash buckets by id
    size_t n_buckets;          // power of two
    size_t n_jobs;             // jobs in the table
    uint64_t next_job;         // next id
    worker_t *workers;         // connected workers
    size_t n_workers;          // their count
    uint64_t next_handle;      // next worker handle
    bool running;              // inside dv_broker_run
    kept_t **kept;             // finished results by id (hash)
    kept_t *kept_oldest;       // FIFO head: evicted first
    kept_t *kept_newest;       // FIFO tail
    size_t n_kept;             // results kept
    size_t kept_bytes;         // their payload bytes
    uint64_t result_ttl_ms;    // how long results are kept
};

// ---------------------------------------------------------------- jobs

static size_t
bucket(const dv_broker_t *self, uint64_t id)
{
    return (size_t)((id * 0x9e3779b97f4a7c15ULL) >> 32) & (self->n_buckets - 1);
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

static void
job_add(dv_broker_t *self, job_t *j)
{
    if (self->n_jobs + 1 > self->n_buckets) {
        jobs_grow(self);
    }
    size_t b = bucket(self, j->id);
    j->next = self->jobs[b];
    self->jobs[b] = j;
    self->n_jobs++;
}

static job_t *
job_find(const dv_broker_t *self, uint64_t id)
{
    for (job_t *j = self->jobs[bucket(self, id)]; j; j = j->next) {
        if (j->id == id) {
            return j;
        }
    }
    return NULL;
}

static void
job_remove(dv_broker_t *self, uint64_t id)
{
    for (job_t **p = &self->jobs[bucket(self, id)]; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            job_t *j = *p;
            *p = j->next;
            free(j->payload);
            free(j);
            self->n_jobs--;
            return;
        }
    }
}

// ------------------------------------------------------------- workers

static worker_t *
worker_by_route(dv_broker_t *self, const void *route, size_t len)
{
    for (size_t i = 0; i < self->n_workers; i++) {
        worker_t *w = &self->workers[i];
        if (w->route_len == len && memcmp(w->route, route, len) == 0) {
            return w;
        }
    }
    return NULL;
}

static worker_t *
worker_by_handle(dv_broker_t *self, uint64_t handle)
{
    for (size_t i = 0; i < self->n_workers; i++) {
        if (self->workers[i].handle == handle) {
            return &self->workers[i];
        }
    }
    return NULL;
}

// ---------------------------------------------------------- kept results

static size_t
kept_bucket(uint64_t id)
{
    return (size_t)((id * 0x9e3779b97f4a7c15ULL) >> 32) & (KEPT_BUCKETS - 1);
}

static kept_t *
kept_find(const dv_broker_t *self, uint64_t id)
{
    for (kept_t *k = self->kept[kept_bucket(id)]; k; k = k->hnext) {
        if (k->id == id) {
            return k;
        }
    }
    return NULL;
}

static void
kept_free(kept_t *k)
{
    free(k->text);
    free(k);
}

// The payload frames of k as views into its block (frames: DV_MAX_FRAMES).
static size_t
kept_frames(const kept_t *k, dv_frame_t *frames)
{
    const uint8_t *p = (const uint8_t *)k->data + strlen(k->data) + 1;
    for (size_t i = 0; i < k->n_frames; i++) {
        frames[i] = (dv_frame_t){p, k->frame_len[i]};
        p += k->frame_len[i];
    }
    return k->n_frames;
}

// Drop the oldest kept result.
static void
kept_evict_oldest(dv_broker_t *self)
{
    kept_t *k = self->kept_oldest;
    self->kept_oldest = k->newer;
    if (!self->kept_oldest) {
        self->kept_newest = NULL;
    }
    for (kept_t **p = &self->kept[kept_bucket(k->id)]; *p; p = &(*p)->hnext) {
        if (*p == k) {
            *p = k->hnext;
            break;
        }
    }
    self->n_kept--;
    self->kept_bytes -= k->bytes;
    kept_free(k);
}

// Drop results past their TTL, and the oldest while over the bounds.
static void
kept_trim(dv_broker_t *self)
{
    uint64_t now = uv_now(&self->loop);
    while (self->kept_oldest &&
           (self->n_kept > KEPT_MAX || self->kept_bytes > KEPT_MAX_BYTES ||
            now - self->kept_oldest->at_ms >= self->result_ttl_ms)) {
        kept_evict_oldest(self);
    }
}

static kept_t *
keep_result(dv_broker_t *self,
            const job_t *j,
            bool done,
            int code,
            const char *text,
            const char *worker,
            const dv_frame_t *frames,
            size_t n_frames)
{
    worker = worker ? worker : "";
    n_frames = n_frames < DV_MAX_FRAMES ? n_frames : DV_MAX_FRAMES;
    size_t name_len = strlen(worker) + 1, bytes = 0;
    for (size_t i = 0; i < n_frames; i++) {
        bytes += frames[i].len;
    }
    kept_t *k = dv_malloc(sizeof *k + name_len + bytes);
    memset(k, 0, sizeof *k);
    k->id = j->id;
    k->done = done;
    k->code = code;
    k->text = done ? NULL : dv_strdup(text ? text : "");
    k->attempts = j->attempts;
    memcpy(k->data, worker, name_len);
    uint8_t *p = (uint8_t *)k->data + name_len;
    for (size_t i = 0; i < n_frames; i++) {
        memcpy(p, frames[i].data, frames[i].len);
        p += frames[i].len;
        k->frame_len[i] = (uint32_t)frames[i].len;
    }
    k->n_frames = (uint8_t)n_frames;
    k->bytes = bytes;
    k->at_ms = uv_now(&self->loop);
    size_t b = kept_bucket(k->id);
    k->hnext = self->kept[b];
    self->kept[b] = k;
    if (self->kept_newest) {
        self->kept_newest->newer = k;
    } else {
        self->kept_oldest = k;
    }
    self->kept_newest = k;
    self->n_kept++;
    self->kept_bytes += k->bytes;
    return k;
}

// Send result k to route with request id rid.
static void
send_kept(dv_broker_t *self,
          const kept_t *k,
          const void *route,
          size_t route_len,
          uint64_t rid)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_RESULT, rid);
    dv_msgw_uint(w, "job", k->id);
    dv_msgw_str(w, "state", k->done ? "done" : "failed");
    dv_msgw_uint(w, "attempts", k->attempts);
    dv_msgw_str(w, "worker", k->data);
    if (!k->done) {
        dv_msgw_error(w, "error", k->code, k->text);
    }
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_frame_t frames[DV_MAX_FRAMES];
    size_t n = kept_frames(k, frames);
    dv_wire_send(self->clients, route, route_len, h, len, frames, n);
    dv_msgw_destroy(&w);
}

// The job's result: kept for result_get, then pushed to its submitter.
static void
send_result(dv_broker_t *self,
            const job_t *j,
            bool done,
            int code,
            const char *text,
            const char *worker,
            const dv_frame_t *frames,
            size_t n_frames)
{
    kept_t *k =
        keep_result(self, j, done, code, text, worker, frames, n_frames);
    send_kept(self, k, j->route, j->route_len, j->rid);
    kept_trim(self); // after sending: k may be the one evicted
}

// Forget a worker; requeue or fail what it was running.
static void
worker_lost(dv_broker_t *self, worker_t *w, const char *why)
{
    size_t cap = dv_sched_worker_running(self->sched, w->handle);
    dv_sched_lost_t *lost = dv_malloc((cap ? cap : 1) * sizeof *lost);
    size_t n = 0;
    dv_sched_worker_remove(self->sched, w->handle, lost, &n);
    for (size_t i = 0; i < n; i++) {
        job_t *j = job_find(self, lost[i].job);
        if (j && lost[i].failed) {
            char text[256];
            snprintf(text, sizeof text,
                     "worker %s %s while running it; no attempts left (%u)",
                     w->name, why, lost[i].attempts);
            send_result(self, j, false, DV_EIO, text, w->name, NULL, 0);
            job_remove(self, j->id);
        }
    }
    free(lost);
    size_t index = (size_t)(w - self->workers);
    self->workers[index] = self->workers[--self->n_workers];
}

// Send every job that can run now.
static void
dispatch(dv_broker_t *self)
{
    uint64_t id, handle;
    uint32_t attempt;
    while (dv_sched_next(self->sched, &id, &handle, &attempt)) {
        job_t *j = job_find(self, id);
        worker_t *w = worker_by_handle(self, handle);
        dv_assert(j && w);
        j->attempts = attempt;
        dv_msgw_t *m = dv_msgw_new(DV_MSG_RUN, 0);
        dv_msgw_uint(m, "job", j->id);
        dv_msgw_uint(m, "attempt", attempt);
        dv_msgw_str(m, "kind", j->kind);
        size_t len = 0;
        const uint8_t *h = dv_msgw_bytes(m, &len);
        dv_frame_t f = {j->payload, j->payload_len};
        dv_wire_send(self->workers_sock, w->route, w->route_len, h, len, &f, 1);
        dv_msgw_destroy(&m);
    }
}

// ----------------------------------------------------------- handlers

// Queue and model names: [A-Za-z0-9._-]+ (docs/PROTOCOL.md, Limits).
static bool
valid_name(const char *s)
{
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static void
send_simple(void *sock,
            const dv_wire_msg_t *in,
            dv_msg_type_t type,
            uint64_t rid,
            dv_broker_t *self)
{
    dv_msgw_t *w = dv_msgw_new(type, rid);
    if (type == DV_MSG_WELCOME) {
        dv_msgw_str(w, "broker", "drover-broker " DV_VERSION_STRING);
        dv_msgw_uint(w, "heartbeat_ms", self->heartbeat_ms);
    }
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_wire_send(sock, zmq_msg_data((zmq_msg_t *)&in->route),
                 zmq_msg_size((zmq_msg_t *)&in->route), h, len, NULL, 0);
    dv_msgw_destroy(&w);
}

static int
on_submit(dv_broker_t *self,
          const dv_wire_msg_t *in,
          const dv_msg_t *m,
          dv_error_t *err)
{
    char queue[DV_MAX_WIRE_NAME + 1], kind[16];
    uint64_t max_attempts;
    int rc;
    if ((rc = dv_msg_str(m, "queue", queue, sizeof queue, err)) != 0 ||
        (rc = dv_msg_str(m, "kind", kind, sizeof kind, err)) != 0 ||
        (rc = dv_msg_uint_or(m, "max_attempts", DEFAULT_MAX_ATTEMPTS,
                             &max_attempts, err)) != 0) {
        return rc;
    }
    if (!valid_name(queue)) {
        return dv_errorf(err, DV_EINVAL,
                         "submit: queue '%s' must match [A-Za-z0-9._-]+",
                         queue);
    }
    if (strcmp(kind, "echo") != 0) {
        return dv_errorf(err, DV_EINVAL,
                         "submit: job kind '%s' is not supported by this "
                         "broker (echo)",
                         kind);
    }
    if (max_attempts < 1 || max_attempts > MAX_ATTEMPTS_LIMIT) {
        return dv_errorf(err, DV_EINVAL, "submit: max_attempts must be 1..%d",
                         MAX_ATTEMPTS_LIMIT);
    }
    const dv_frame_t *payload = dv_msg_frame(m, 1);
    if (!payload) {
        return dv_errorf(err, DV_EFORMAT,
                         "submit: an echo job needs its payload in frame 1");
    }
    job_t *j = dv_calloc(1, sizeof *j);
    j->id = self->next_job++;
    j->route_len = zmq_msg_size((zmq_msg_t *)&in->route);
    memcpy(j->route, zmq_msg_data((zmq_msg_t *)&in->route), j->route_len);
    j->rid = dv_msg_rid(m);
    snprintf(j->kind, sizeof j->kind, "%s", kind);
    snprintf(j->queue, sizeof j->queue, "%s", queue);
    j->payload = dv_malloc(payload->len ? payload->len : 1);
    memcpy(j->payload, payload->data, payload->len);
    j->payload_len = payload->len;
    job_add(self, j);
    dv_sched_submit(self->sched, j->id, queue, "", (uint32_t)max_attempts);

    dv_msgw_t *w = dv_msgw_new(DV_MSG_ACCEPTED, j->rid);
    dv_msgw_uint(w, "job", j->id);
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_wire_send(self->clients, j->route, j->route_len, h, len, NULL, 0);
    dv_msgw_destroy(&w);
    return 0;
}

static int
on_result_get(dv_broker_t *self,
              const void *route,
              size_t route_len,
              const dv_msg_t *m,
              uint64_t rid,
              dv_error_t *err)
{
    uint64_t id;
    int rc = dv_msg_uint(m, "job", &id, err);
    if (rc) {
        return rc;
    }
    const kept_t *k = kept_find(self, id);
    if (!k) {
        return dv_errorf(err, DV_ENOENT, "no result for job %llu: %s",
                         (unsigned long long)id,
                         job_find(self, id) ? "not finished yet"
                                            : "unknown job or result expired");
    }
    send_kept(self, k, route, route_len, rid);
    return 0;
}

static int
on_job_get(dv_broker_t *self,
           const void *route,
           size_t route_len,
           const dv_msg_t *m,
           uint64_t rid,
           dv_error_t *err)
{
    uint64_t id;
    int rc = dv_msg_uint(m, "job", &id, err);
    if (rc) {
        return rc;
    }
    const job_t *j = job_find(self, id);
    const kept_t *k = j ? NULL : kept_find(self, id);
    bool running = false;
    uint32_t attempts = 0;
    const char *state;
    if (j && dv_sched_job(self->sched, id, &running, &attempts) == 0) {
        state = running ? "running" : "queued";
    } else if (k) {
        state = k->done ? "done" : "failed";
        attempts = k->attempts;
    } else {
        return dv_errorf(err, DV_ENOENT,
                         "unknown job %llu (or its result expired)",
                         (unsigned long long)id);
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_JOB, rid);
    dv_msgw_uint(w, "job", id);
    dv_msgw_str(w, "state", state);
    dv_msgw_uint(w, "attempts", attempts);
    if (j) {
        dv_msgw_str(w, "queue", j->queue);
        dv_msgw_str(w, "kind", j->kind);
    }
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_wire_send(self->clients, route, route_len, h, len, NULL, 0);
    dv_msgw_destroy(&w);
    return 0;
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
        rc = dv_errorf(&err, DV_EMSGSIZE, "more than %d payload frames",
                       DV_MAX_FRAMES);
    } else {
        rc = dv_msg_decode(&m, zmq_msg_data(&in->header),
                           zmq_msg_size(&in->header), in->frames, in->n_payload,
                           &rid, &err);
    }
    if (rc == 0) {
        switch (dv_msg_type(m)) {
        case DV_MSG_HELLO:
            send_simple(self->clients, in, DV_MSG_WELCOME, rid, self);
            break;
        case DV_MSG_PING:
            send_simple(self->clients, in, DV_MSG_PONG, rid, self);
            break;
        case DV_MSG_SUBMIT:
            rc = on_submit(self, in, m, &err);
            break;
        case DV_MSG_RESULT_GET:
            rc = on_result_get(self, route, route_len, m, rid, &err);
            break;
        case DV_MSG_JOB_GET:
            rc = on_job_get(self, route, route_len, m, rid, &err);
            break;
        default:
            rc = dv_errorf(&err, DV_EFORMAT,
                           "message type '%s' is not accepted from clients "
                           "by this broker",
                           dv_msg_name(dv_msg_type(m)));
        }
    }
    if (rc) {
        dv_wire_send_error(self->clients, route, route_len, rid, 0, rc,
                           err.text);
    }
    dv_msg_destroy(&m);
}

static int
on_done(dv_broker_t *self, worker_t *w, const dv_msg_t *m, dv_error_t *err)
{
    uint64_t id;
    char state[16];
    int rc;
    if ((rc = dv_msg_uint(m, "job", &id, err)) != 0 ||
        (rc = dv_msg_str(m, "state", state, sizeof state, err)) != 0) {
        return rc;
    }
    if (dv_sched_finish(self->sched, id, w->handle) != 0) {
        return 0; // a late answer for a job given to someone else: drop
    }
    job_t *j = job_find(self, id);
    dv_assert(j != NULL);
    if (strcmp(state, "done") == 0) {
        dv_frame_t frames[DV_MAX_FRAMES];
        size_t n = dv_msg_n_frames(m);
        for (size_t i = 0; i < n; i++) {
            frames[i] = *dv_msg_frame(m, i + 1);
        }
        send_result(self, j, true, 0, NULL, w->name, frames, n);
    } else {
        int code = DV_EFORMAT;
        char text[DV_ERROR_TEXT_MAX] = "worker reported failure";
        dv_error_t ignore;
        dv_msg_error(m, &code, text, sizeof text, &ignore);
        send_result(self, j, false, code, text, w->name, NULL, 0);
    }
    job_remove(self, id);
    return 0;
}

static void
on_worker_message(dv_broker_t *self, dv_wire_msg_t *in)
{
    const void *route = zmq_msg_data(&in->route);
    size_t route_len = zmq_msg_size(&in->route);
    dv_error_t err = {0};
    uint64_t rid = 0;
    dv_msg_t *m = NULL;
    int rc = in->no_header ? dv_errorf(&err, DV_EFORMAT, "empty message")
             : in->too_many
                 ? dv_errorf(&err, DV_EMSGSIZE, "too many payload frames")
                 : dv_msg_decode(&m, zmq_msg_data(&in->header),
                                 zmq_msg_size(&in->header), in->frames,
                                 in->n_payload, &rid, &err);
    worker_t *w = worker_by_route(self, route, route_len);
    if (w) {
        w->last_seen_ms = uv_now(&self->loop);
    }
    if (rc == 0 && dv_msg_type(m) == DV_MSG_REGISTER) {
        uint64_t capacity;
        char name[DV_MAX_WIRE_NAME + 1];
        rc = dv_msg_uint(m, "capacity", &capacity, &err);
        if (rc == 0) {
            rc = dv_msg_str(m, "worker", name, sizeof name, &err);
        }
        if (rc == 0 && (capacity < 1 || capacity > 100000)) {
            rc = dv_errorf(&err, DV_EINVAL,
                           "register: capacity must be 1..100000");
        }
        if (rc == 0 && route_len <= ROUTE_MAX) {
            if (!w) {
                self->workers = dv_realloc(
                    self->workers, (self->n_workers + 1) * sizeof(worker_t));
                w = &self->workers[self->n_workers++];
                memset(w, 0, sizeof *w);
                memcpy(w->route, route, route_len);
                w->route_len = route_len;
                w->handle = self->next_handle++;
            }
            snprintf(w->name, sizeof w->name, "%s", name);
            w->last_seen_ms = uv_now(&self->loop);
            dv_sched_worker_add(self->sched, w->handle, (uint32_t)capacity);
            send_simple(self->workers_sock, in, DV_MSG_WELCOME, rid, self);
        }
    } else if (rc == 0 && !w) {
        // Work from a worker we do not know (we restarted, or it was
        // declared dead): it must register again.
        rc = dv_errorf(&err, DV_EINVAL, "unknown worker: register first");
    } else if (rc == 0) {
        switch (dv_msg_type(m)) {
        case DV_MSG_DONE:
            rc = on_done(self, w, m, &err);
            break;
        case DV_MSG_HEARTBEAT:
            break;
        case DV_MSG_BYE:
            worker_lost(self, w, "left");
            break;
        case DV_MSG_ERROR:
            break; // a worker's complaint about one of our messages
        default:
            rc = dv_errorf(&err, DV_EFORMAT,
                           "message type '%s' is not accepted from workers",
                           dv_msg_name(dv_msg_type(m)));
        }
    }
    if (rc) {
        dv_wire_send_error(self->workers_sock, route, route_len, rid, 0, rc,
                           err.text);
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
    dispatch(self);
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
    on_worker_message(self, &in);
    dv_wire_msg_close(&in);
    dispatch(self);
    return 1;
}

static void
on_heartbeat(uv_timer_t *t)
{
    dv_broker_t *self = t->data;
    kept_trim(self); // results past their TTL
    uint64_t now = uv_now(&self->loop);
    uint64_t limit = (uint64_t)self->heartbeat_ms * self->liveness;
    for (size_t i = 0; i < self->n_workers;) {
        worker_t *w = &self->workers[i];
        if (now - w->last_seen_ms > limit) {
            worker_lost(self, w, "went silent"); // moves the last into i
            continue;
        }
        dv_msgw_t *m = dv_msgw_new(DV_MSG_HEARTBEAT, 0);
        size_t len = 0;
        const uint8_t *h = dv_msgw_bytes(m, &len);
        dv_wire_send(self->workers_sock, w->route, w->route_len, h, len, NULL,
                     0);
        dv_msgw_destroy(&m);
        i++;
    }
    dispatch(self);
}

static void
on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    dv_broker_stop(s->data);
}

// ------------------------------------------------------------- public

static int
bind_router(void *ctx,
            const char *endpoint,
            void **out,
            char *bound,
            size_t bound_size,
            dv_error_t *err)
{
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    int64_t maxmsg = (int64_t)DV_MAX_FRAME_BYTES;
    int hwm = PEER_HWM, linger = 0;
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(s, endpoint) != 0) {
        int e = zmq_errno();
        zmq_close(s);
        return dv_errorf(
            err, e == EINVAL || e == EPROTONOSUPPORT ? DV_EINVAL : DV_EIO,
            "cannot bind %s: %s", endpoint, zmq_strerror(e));
    }
    size_t len = bound_size;
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, bound, &len);
    *out = s;
    return 0;
}

int
dv_broker_open(dv_broker_t **out, const dv_broker_opts_t *opts, dv_error_t *err)
{
    dv_broker_t *self = dv_calloc(1, sizeof *self);
    self->heartbeat_ms = opts->heartbeat_ms ? opts->heartbeat_ms : 1000;
    self->liveness = opts->liveness ? opts->liveness : 3;
    self->n_buckets = 1024;
    self->jobs = dv_calloc(self->n_buckets, sizeof(job_t *));
    self->kept = dv_calloc(KEPT_BUCKETS, sizeof(kept_t *));
    self->result_ttl_ms =
        opts->result_ttl_ms ? opts->result_ttl_ms : 3600 * 1000;
    self->next_job = 1;
    self->next_handle = 1;
    self->sched = dv_sched_new();
    self->ctx = zmq_ctx_new();
    uv_loop_init(&self->loop);
    int rc = bind_router(self->ctx, opts->client_endpoint, &self->clients,
                         self->client_ep, sizeof self->client_ep, err);
    if (rc == 0) {
        rc = bind_router(self->ctx, opts->worker_endpoint, &self->workers_sock,
                         self->worker_ep, sizeof self->worker_ep, err);
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
    if (rc) {
        dv_broker_destroy(&self);
        return rc;
    }
    uv_timer_init(&self->loop, &self->heartbeat);
    self->heartbeat.data = self;
    uv_signal_init(&self->loop, &self->sigint);
    uv_signal_init(&self->loop, &self->sigterm);
    self->sigint.data = self->sigterm.data = self;
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

int
dv_broker_run(dv_broker_t *self)
{
    self->running = true;
    uv_timer_start(&self->heartbeat, on_heartbeat, self->heartbeat_ms,
                   self->heartbeat_ms);
    uv_signal_start(&self->sigint, on_signal, SIGINT);
    uv_signal_start(&self->sigterm, on_signal, SIGTERM);
    uv_run(&self->loop, UV_RUN_DEFAULT);
    self->running = false;
    return 0;
}

void
dv_broker_stop(dv_broker_t *self)
{
    uv_stop(&self->loop);
}

void
dv_broker_destroy(dv_broker_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_broker_t *self = *self_p;
    if (self->client_watch) {
        dv_zwatch_close(self->client_watch, NULL, NULL);
    }
    if (self->worker_watch) {
        dv_zwatch_close(self->worker_watch, NULL, NULL);
    }
    uv_handle_t *handles[] = {(uv_handle_t *)&self->heartbeat,
                              (uv_handle_t *)&self->sigint,
                              (uv_handle_t *)&self->sigterm};
    for (size_t i = 0; i < 3; i++) {
        if (handles[i]->loop == &self->loop && !uv_is_closing(handles[i])) {
            uv_close(handles[i], NULL);
        }
    }
    uv_run(&self->loop, UV_RUN_DEFAULT); // let close callbacks run
    uv_loop_close(&self->loop);
    if (self->clients) {
        zmq_close(self->clients);
    }
    if (self->workers_sock) {
        zmq_close(self->workers_sock);
    }
    zmq_ctx_term(self->ctx);
    for (size_t b = 0; b < self->n_buckets; b++) {
        while (self->jobs[b]) {
            job_t *j = self->jobs[b];
            self->jobs[b] = j->next;
            free(j->payload);
            free(j);
        }
    }
    free(self->jobs);
    while (self->kept_oldest) {
        kept_evict_oldest(self);
    }
    free(self->kept);
    free(self->workers);
    dv_sched_destroy(&self->sched);
    free(self);
    *self_p = NULL;
}
