// libdrover — the C client (see drover.h).
//
// Model: one DEALER socket. Every request gets a fresh request id (rid);
// submits are remembered in a hash table by rid until their result comes
// back (the broker pushes a job's result with the submit's rid). Blocking
// calls send a request and pump the socket until the reply with their rid
// arrives; results and refusals for other requests met on the way are
// dispatched as usual (async callbacks run only from drover_poll, so a
// blocking call never re-enters user code: their results queue up).
#include "drover.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <zmq.h>

#include "dv_err.h"
#include "dv_file.h"
#include "dv_keys.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_msgpack.h"
#include "dv_prep.h"
#include "dv_proto.h"
#include "dv_sha256.h"
#include "dv_train.h"
#include "dv_wire.h"

#define HWM 1000000 // queued messages per direction: async bursts

struct drover_result {
    uint64_t job;                 // 0 when the submit was refused
    bool ok;                      // done
    int code;                     // error when failed
    char text[DV_ERROR_TEXT_MAX]; // its reason
    uint32_t attempts;            // runs
    char worker[DV_MAX_WIRE_NAME + 1];
    uint8_t *payload; // echo payload (owned)
    size_t payload_len;
    dv_tensor_t *output; // infer output (owned)
    char **classes;      // infer classes (owned)
    size_t n_classes;
    char model[2 * DV_MAX_WIRE_NAME]; // NAME@VERSION that ran
    uint32_t batch_rows, batch_jobs;  // infer: the forward pass it ran in
    drover_attempt_error_t *errors;   // failed attempts (owned)
    size_t n_errors;
    uint64_t seq;          // position in a result stream (0: not from one)
    char **metric_names;   // evaluate: the metrics (owned)
    double *metric_values; //
    size_t n_metrics;      //
};

// A result stream's result waiting for drover_poll.
typedef struct event event_t;
struct event {
    drover_result_fn *fn;
    void *arg;
    drover_result_t *res; // owned
    event_t *next;
};

typedef struct req req_t;
struct req {
    uint64_t rid;            // request id of the submit
    uint64_t job;            // job id once accepted
    drover_result_fn *fn;    // async: callback
    void *arg;               //   its argument
    drover_result_t *result; // sync: result once it arrived
    drover_result_t *ready;  // async: result waiting for drover_poll
    req_t *next;             // hash chain
    req_t *ready_next;       // ready list
    bool ack_only;           // async: fn runs on `accepted`, not the result
    bool stream;             // a follow: every result with its rid
    drover_progress_fn *progress; // train: progress callback
    void *progress_arg;           //
};

struct drover {
    void *ctx;                // ZeroMQ context
    void *sock;               // DEALER
    char endpoint[256];       // connected to
    uint64_t next_rid;        // request ids
    req_t **buckets;          // submits by rid
    size_t n_buckets;         // power of two
    size_t n_reqs;            // submits remembered
    size_t n_async;           // async ones without a delivered result
    req_t *ready_head;        // async results to deliver
    req_t *ready_tail;        //
    event_t *events_head;     // stream results to deliver
    event_t *events_tail;     //
    uint64_t want_rid;        // blocking call's request
    dv_wire_msg_t reply_wire; // its reply's frames
    dv_msg_t *reply;          // and decoded header (NULL: none yet)
    bool have_reply_wire;     //
    void *monitor;            // PAIR: handshake events while connecting
    char key_id[65];          // our key's id ("": plain)
    int hs_failed;            // a handshake failed: the monitor's event
    int hs_status;            //   and value (ZAP status for auth)
    unsigned broker_minor;    // welcome's v: 1.4 takes submit_many
};

const char *
drover_err_name(int code)
{
    return dv_err_name(code);
}

static int
set_err(drover_error_t *err, const dv_error_t *e)
{
    if (err) {
        err->code = e->code;
        snprintf(err->text, sizeof err->text, "%s", e->text);
    }
    return e->code;
}

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// ------------------------------------------------------------- requests

static size_t
bucket_of(const drover_t *self, uint64_t rid)
{
    return (size_t)((rid * 0x9e3779b97f4a7c15ULL) >> 32) &
           (self->n_buckets - 1);
}

static void
req_add(drover_t *self, req_t *r)
{
    if (self->n_reqs + 1 > self->n_buckets) {
        size_t old_n = self->n_buckets;
        req_t **old = self->buckets;
        self->n_buckets = old_n * 2;
        self->buckets = dv_calloc(self->n_buckets, sizeof(req_t *));
        for (size_t b = 0; b < old_n; b++) {
            while (old[b]) {
                req_t *x = old[b];
                old[b] = x->next;
                size_t nb = bucket_of(self, x->rid);
                x->next = self->buckets[nb];
                self->buckets[nb] = x;
            }
        }
        free(old);
    }
    size_t b = bucket_of(self, r->rid);
    r->next = self->buckets[b];
    self->buckets[b] = r;
    self->n_reqs++;
}

static req_t *
req_find(const drover_t *self, uint64_t rid)
{
    for (req_t *r = self->buckets[bucket_of(self, rid)]; r; r = r->next) {
        if (r->rid == rid) {
            return r;
        }
    }
    return NULL;
}

static void
req_remove(drover_t *self, req_t *r)
{
    for (req_t **p = &self->buckets[bucket_of(self, r->rid)]; *p;
         p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            self->n_reqs--;
            drover_result_destroy(&r->result);
            drover_result_destroy(&r->ready);
            free(r);
            return;
        }
    }
}

// --------------------------------------------------------------- results

void
drover_result_destroy(drover_result_t **r_p)
{
    if (!r_p || !*r_p) {
        return;
    }
    drover_result_t *r = *r_p;
    free(r->payload);
    free(r->errors);
    dv_strs_free(&r->metric_names, r->n_metrics);
    free(r->metric_values);
    dv_tensor_destroy(&r->output);
    dv_strs_free(&r->classes, r->n_classes);
    free(r);
    *r_p = NULL;
}

static drover_result_t *
refused(int code, const char *text)
{
    drover_result_t *r = dv_calloc(1, sizeof *r);
    r->code = code;
    snprintf(r->text, sizeof r->text, "%s", text);
    return r;
}

static void copy_obj_str(const msgpack_object *o, char *buf, size_t size);
static uint64_t obj_uint(const msgpack_object *map, const char *key);

// An `errors` array (failed attempts) into *out (calloc'd) of *n.
static void
errors_from(const msgpack_object *a, drover_attempt_error_t **out, size_t *n)
{
    size_t count = a && a->type == MSGPACK_OBJECT_ARRAY ? a->via.array.size : 0;
    *out = dv_calloc(count ? count : 1, sizeof **out);
    for (size_t i = 0; i < count; i++) {
        const msgpack_object *o = &a->via.array.ptr[i];
        drover_attempt_error_t *e = &(*out)[i];
        char name[64];
        e->attempt = (uint32_t)obj_uint(o, "attempt");
        copy_obj_str(dv_msgpack_get(o, "error"), name, sizeof name);
        e->code = dv_err_code(name);
        copy_obj_str(dv_msgpack_get(o, "text"), e->text, sizeof e->text);
        copy_obj_str(dv_msgpack_get(o, "worker"), e->worker, sizeof e->worker);
        e->at_ms = obj_uint(o, "at_ms");
    }
    *n = count;
}

// A `result` message as a result object; a malformed one becomes a failed
// result saying so (the job's outcome must not vanish).
static drover_result_t *
result_from(const dv_msg_t *m)
{
    drover_result_t *r = dv_calloc(1, sizeof *r);
    dv_error_t e = {0};
    char state[16] = "";
    uint64_t attempts = 0;
    int rc = dv_msg_uint(m, "job", &r->job, &e);
    if (rc == 0) {
        rc = dv_msg_str(m, "state", state, sizeof state, &e);
    }
    dv_msg_uint_or(m, "attempts", 0, &attempts, &e);
    r->attempts = (uint32_t)attempts;
    dv_msg_uint_or(m, "seq", 0, &r->seq, &e);
    errors_from(dv_msg_get(m, "errors"), &r->errors, &r->n_errors);
    if (dv_msg_has(m, "worker")) {
        dv_msg_str(m, "worker", r->worker, sizeof r->worker, &e);
    }
    if (rc == 0 && strcmp(state, "done") == 0) {
        r->ok = true;
        if (dv_msg_has(m, "output")) {
            rc = dv_msg_tensor(m, "output", DV_MAX_INFER_ROWS, &r->output, &e);
            if (rc == 0) {
                rc =
                    dv_msg_strs(m, "classes", DV_MAX_CLASSES, DV_MAX_NAME_BYTES,
                                &r->classes, &r->n_classes, &e);
            }
            if (rc == 0 && dv_msg_has(m, "model")) {
                rc = dv_msg_str(m, "model", r->model, sizeof r->model, &e);
            }
            const msgpack_object *b = dv_msg_get(m, "batch");
            uint64_t rows = 0, jobs = 0;
            if (dv_msgpack_uint(dv_msgpack_get(b, "rows"), &rows) &&
                dv_msgpack_uint(dv_msgpack_get(b, "jobs"), &jobs) &&
                rows <= UINT32_MAX && jobs <= UINT32_MAX) {
                r->batch_rows = (uint32_t)rows;
                r->batch_jobs = (uint32_t)jobs;
            }
        } else if (dv_msg_n_frames(m) >= 1) {
            const dv_frame_t *f = dv_msg_frame(m, 1);
            r->payload = dv_malloc(f->len ? f->len : 1);
            memcpy(r->payload, f->data, f->len);
            r->payload_len = f->len;
        }
    } else if (rc == 0) {
        int code = DV_EFORMAT;
        dv_msg_error(m, &code, r->text, sizeof r->text, &e);
        r->code = code;
    }
    if (rc == 0 && !r->model[0] && dv_msg_has(m, "model")) {
        dv_msg_str(m, "model", r->model, sizeof r->model, &e); // train
    }
    const msgpack_object *mt = dv_msg_get(m, "metrics");
    if (rc == 0 && mt && mt->type == MSGPACK_OBJECT_MAP) { // evaluate
        size_t n = mt->via.map.size;
        r->metric_names = dv_calloc(n ? n : 1, sizeof(char *));
        r->metric_values = dv_calloc(n ? n : 1, sizeof(double));
        for (size_t i = 0; i < n; i++) {
            const msgpack_object_kv *kv = &mt->via.map.ptr[i];
            double v;
            char name[64];
            copy_obj_str(&kv->key, name, sizeof name);
            if (name[0] && dv_msgpack_double(&kv->val, &v)) {
                r->metric_names[r->n_metrics] = dv_strdup(name);
                r->metric_values[r->n_metrics++] = v;
            }
        }
    }
    if (rc) {
        r->ok = false;
        r->code = rc;
        snprintf(r->text, sizeof r->text,
                 "malformed result from the broker: %.200s", e.text);
    }
    return r;
}

size_t
drover_result_errors(const drover_result_t *r,
                     const drover_attempt_error_t **errors)
{
    *errors = r->errors;
    return r->n_errors;
}

uint64_t
drover_result_job(const drover_result_t *r)
{
    return r->job;
}

bool
drover_result_ok(const drover_result_t *r)
{
    return r->ok;
}

const char *
drover_result_state(const drover_result_t *r)
{
    return r->ok ? "done" : "failed";
}

int
drover_result_error(const drover_result_t *r, const char **text)
{
    if (text) {
        *text = r->ok ? "" : r->text;
    }
    return r->ok ? 0 : r->code;
}

uint32_t
drover_result_attempts(const drover_result_t *r)
{
    return r->attempts;
}

const char *
drover_result_worker(const drover_result_t *r)
{
    return r->worker;
}

const void *
drover_result_payload(const drover_result_t *r, size_t *len)
{
    *len = r->payload_len;
    return r->payload;
}

const float *
drover_result_output(const drover_result_t *r, size_t *rows, size_t *cols)
{
    *rows = r->output ? r->output->rows : 0;
    *cols = r->output ? r->output->cols : 0;
    return r->output ? r->output->data : NULL;
}

size_t
drover_result_n_classes(const drover_result_t *r)
{
    return r->n_classes;
}

const char *
drover_result_class(const drover_result_t *r, size_t i)
{
    return i < r->n_classes ? r->classes[i] : NULL;
}

const char *
drover_result_model(const drover_result_t *r)
{
    return r->model;
}

bool
drover_result_batch(const drover_result_t *r, uint32_t *rows, uint32_t *jobs)
{
    *rows = r->batch_rows;
    *jobs = r->batch_jobs;
    return r->batch_jobs > 0;
}

// ------------------------------------------------------------- the socket

static void
send_msg(drover_t *self, dv_msgw_t *w, const dv_frame_t *frames, size_t n)
{
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_wire_send(self->sock, NULL, 0, h, len, frames, n);
    dv_msgw_destroy(&w);
}

static void
drop_reply(drover_t *self)
{
    dv_msg_destroy(&self->reply);
    if (self->have_reply_wire) {
        dv_wire_msg_close(&self->reply_wire);
        self->have_reply_wire = false;
    }
}

// The items of array field key of the current reply (NULL and *n 0 when
// it has none).
static const msgpack_object *
reply_array(const drover_t *self, const char *key, size_t *n)
{
    const msgpack_object *a = dv_msg_get(self->reply, key);
    bool ok = a && a->type == MSGPACK_OBJECT_ARRAY;
    *n = ok ? a->via.array.size : 0;
    return ok ? a->via.array.ptr : NULL;
}

static void
ready_push(drover_t *self, req_t *r, drover_result_t *res)
{
    r->ready = res;
    r->ready_next = NULL;
    if (self->ready_tail) {
        self->ready_tail->ready_next = r;
    } else {
        self->ready_head = r;
    }
    self->ready_tail = r;
}

// Move a received message into self->reply_wire (zmq_msg_move: a
// zmq_msg_t must not be copied as a struct, small messages live inside it)
// and decode it there into self->reply.
static void
keep_reply(drover_t *self, dv_wire_msg_t *in)
{
    dv_wire_msg_t *r = &self->reply_wire;
    memset(r, 0, sizeof *r);
    zmq_msg_init(&r->header);
    zmq_msg_move(&r->header, &in->header);
    for (size_t i = 0; i < in->n_payload; i++) {
        zmq_msg_init(&r->payload[i]);
        zmq_msg_move(&r->payload[i], &in->payload[i]);
        r->frames[i] = (dv_frame_t){zmq_msg_data(&r->payload[i]),
                                    zmq_msg_size(&r->payload[i])};
    }
    r->n_payload = in->n_payload;
    dv_wire_msg_close(in);
    self->have_reply_wire = true;
    dv_error_t e = {0};
    if (dv_msg_decode(&self->reply, zmq_msg_data(&r->header),
                      zmq_msg_size(&r->header), r->frames, r->n_payload, NULL,
                      &e) != 0) {
        self->reply = NULL; // decoded once already: cannot happen
    }
}

// Handle one received message. Returns true when it was the blocking
// call's reply (kept in self->reply / reply_wire).
static bool
handle(drover_t *self, dv_wire_msg_t *in)
{
    dv_msg_t *m = NULL;
    dv_error_t e = {0};
    uint64_t rid = 0;
    if (in->too_many ||
        dv_msg_decode(&m, zmq_msg_data(&in->header), zmq_msg_size(&in->header),
                      in->frames, in->n_payload, &rid, &e) != 0) {
        dv_wire_msg_close(in); // nothing to act on: the broker's bug
        return false;
    }
    dv_msg_type_t t = dv_msg_type(m);
    if (rid && rid == self->want_rid &&
        (t != DV_MSG_RESULT || !req_find(self, rid))) {
        // The blocking call's reply (a result here answers a result_get).
        // It outlives this call: move the frames out of the caller's stack
        // copy and decode again, since the decoded header and frame views
        // point into the message they were made from.
        dv_msg_destroy(&m);
        keep_reply(self, in);
        return true;
    }
    req_t *r = rid ? req_find(self, rid) : NULL;
    if (r && t == DV_MSG_ACCEPTED) {
        dv_msg_uint(m, "job", &r->job, &e);
        if (r->ack_only && !r->ready) {
            drover_result_t *res = dv_calloc(1, sizeof *res);
            res->job = r->job;
            res->ok = true;
            ready_push(self, r, res);
        }
    } else if (r && t == DV_MSG_PROGRESS) {
        drover_progress_t p = {0};
        p.eval = NAN;
        uint64_t v = 0;
        dv_msg_uint_or(m, "job", 0, &p.job, &e);
        dv_msg_uint_or(m, "epoch", 0, &v, &e);
        p.epoch = (uint32_t)v;
        dv_msg_uint_or(m, "epochs", 0, &v, &e);
        p.epochs = (uint32_t)v;
        dv_msg_double(m, "loss", &p.loss, &e);
        dv_msg_uint_or(m, "ms", 0, &p.ms, &e);
        dv_msg_uint_or(m, "eta_ms", 0, &p.eta_ms, &e);
        if (dv_msg_has(m, "eval")) {
            dv_msg_double(m, "eval", &p.eval, &e);
        }
        if (r->progress) {
            r->progress(&p, r->progress_arg);
        }
    } else if (r && r->stream) {
        if (t == DV_MSG_RESULT) {
            event_t *ev = dv_calloc(1, sizeof *ev);
            ev->fn = r->fn;
            ev->arg = r->arg;
            ev->res = result_from(m);
            if (self->events_tail) {
                self->events_tail->next = ev;
            } else {
                self->events_head = ev;
            }
            self->events_tail = ev;
        }
    } else if (r && (t == DV_MSG_RESULT || t == DV_MSG_ERROR)) {
        drover_result_t *res;
        if (t == DV_MSG_RESULT) {
            res = result_from(m);
        } else {
            int code = DV_EFORMAT;
            char text[DV_ERROR_TEXT_MAX] = "";
            dv_msg_error(m, &code, text, sizeof text, &e);
            res = refused(code, text);
        }
        if (r->fn) {
            if (!r->ready) {
                ready_push(self, r, res);
            } else {
                drover_result_destroy(&res);
            }
        } else {
            drover_result_destroy(&r->result);
            r->result = res;
            if (t == DV_MSG_ERROR) {
                r->job = 0;
            }
        }
    }
    dv_msg_destroy(&m);
    dv_wire_msg_close(in);
    return false;
}

typedef bool(done_fn)(const drover_t *self, const void *arg);

static bool
have_reply(const drover_t *self, const void *arg)
{
    (void)arg;
    return self->reply != NULL;
}

static bool
have_result(const drover_t *self, const void *arg)
{
    (void)self;
    return ((const req_t *)arg)->result != NULL;
}

static bool
have_ready(const drover_t *self, const void *arg)
{
    (void)arg;
    return self->ready_head != NULL || self->events_head != NULL;
}

// While connecting: read the socket monitor; true once a handshake failed
// (refused key, mechanism mismatch): waiting longer would not help.
static bool
monitor_failed(drover_t *self)
{
    for (;;) {
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, self->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return self->hs_failed != 0;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&ev) >= 6) {
            memcpy(&event, zmq_msg_data(&ev), 2);
            memcpy(&value, (const uint8_t *)zmq_msg_data(&ev) + 2, 4);
        }
        bool more = zmq_msg_more(&ev);
        zmq_msg_close(&ev);
        if (more) {
            zmq_msg_t addr;
            zmq_msg_init(&addr);
            zmq_msg_recv(&addr, self->monitor, 0);
            zmq_msg_close(&addr);
        }
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
            event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
            event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
            self->hs_failed = event;
            self->hs_status = (int)value;
        }
    }
}

// Receive and handle messages until done(self, arg) holds (checked after
// each batch; NULL: one batch of what is waiting) or the deadline (ms on
// the monotonic clock; <0: none) passes. Returns 0, DV_ETIMEDOUT or DV_EIO.
static int
pump(drover_t *self, int64_t deadline, done_fn *done, const void *arg)
{
    for (;;) {
        dv_wire_msg_t in;
        int got;
        while ((got = dv_wire_recv(self->sock, false, &in)) == 1) {
            if (handle(self, &in) && done == have_reply) {
                return 0;
            }
        }
        if (got < 0) {
            return DV_EIO;
        }
        if (!done || done(self, arg)) {
            return 0;
        }
        int64_t left = deadline < 0 ? -1 : deadline - now_ms();
        if (deadline >= 0 && left <= 0) {
            return DV_ETIMEDOUT;
        }
        zmq_pollitem_t items[2] = {{self->sock, 0, ZMQ_POLLIN, 0},
                                   {self->monitor, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, self->monitor ? 2 : 1, (long)left) < 0 &&
            zmq_errno() != EINTR) {
            return DV_EIO;
        }
        if (self->monitor && monitor_failed(self)) {
            return DV_EPERM;
        }
    }
}

static int64_t
deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

// Send w (and frames) as a request and wait for its reply, which must be of
// type want (an `error` reply becomes its error). The reply stays in
// self->reply until the next request.
static int
request(drover_t *self,
        dv_msgw_t *w,
        uint64_t rid,
        const dv_frame_t *frames,
        size_t n,
        dv_msg_type_t want,
        int64_t deadline,
        drover_error_t *err)
{
    drop_reply(self);
    self->want_rid = rid;
    send_msg(self, w, frames, n);
    dv_error_t e = {0};
    int rc = pump(self, deadline, have_reply, NULL);
    self->want_rid = 0;
    if (rc == DV_ETIMEDOUT) {
        dv_errorf(&e, rc, "no answer from the broker at %s", self->endpoint);
    } else if (rc) {
        dv_errorf(&e, rc, "socket error: %s", zmq_strerror(zmq_errno()));
    } else if (!self->reply) {
        rc = dv_errorf(&e, DV_EFORMAT, "undecodable reply from the broker");
    } else if (dv_msg_type(self->reply) == DV_MSG_ERROR) {
        int code = DV_EFORMAT;
        dv_msg_error(self->reply, &code, e.text, sizeof e.text, &e);
        e.code = rc = code;
    } else if (dv_msg_type(self->reply) != want) {
        rc =
            dv_errorf(&e, DV_EFORMAT, "broker answered '%s', expected '%s'",
                      dv_msg_name(dv_msg_type(self->reply)), dv_msg_name(want));
    }
    return rc ? set_err(err, &e) : 0;
}

// ------------------------------------------------------------- connection

int
drover_connect(drover_t **out,
               const char *endpoint,
               int timeout_ms,
               drover_error_t *err)
{
    const char *key = getenv("DROVER_KEY"),
               *broker = getenv("DROVER_BROKER_KEY");
    return drover_connect_key(out, endpoint, timeout_ms,
                              key && *key ? key : NULL,
                              broker && *broker ? broker : NULL, err);
}

// The broker's public key from a .pub file or a Z85 string.
static int
broker_key_of(const char *spec, uint8_t out[32], dv_error_t *e)
{
    struct stat st;
    if (strlen(spec) == 40 && stat(spec, &st) != 0) {
        if (zmq_z85_decode(out, spec)) {
            return 0;
        }
        return dv_errorf(e, DV_EINVAL,
                         "broker key '%s' is neither a file nor a Z85 key",
                         spec);
    }
    dv_key_t k;
    int rc = dv_key_load(&k, spec, e);
    if (rc == 0) {
        memcpy(out, k.public_key, 32);
        dv_key_clear(&k);
    }
    return rc;
}

// Make sock a CURVE client with our key and the broker's.
static int
use_keys(drover_t *self,
         const char *key_file,
         const char *broker_key,
         dv_error_t *e)
{
    if (!key_file || !broker_key) {
        return dv_errorf(e, DV_EINVAL,
                         "CURVE needs both keys: --key FILE (ours, .key) and "
                         "--broker-key FILE.pub (the broker's); or "
                         "DROVER_KEY and DROVER_BROKER_KEY");
    }
    dv_key_t k;
    int rc = dv_key_load(&k, key_file, e);
    if (rc == 0 && !k.has_secret) {
        rc = dv_errorf(e, DV_EINVAL,
                       "%s holds no secret key: give the .key file, not the "
                       ".pub",
                       key_file);
    }
    uint8_t server[32];
    if (rc == 0) {
        rc = broker_key_of(broker_key, server, e);
    }
    if (rc == 0) {
        snprintf(self->key_id, sizeof self->key_id, "%s", k.id);
        zmq_setsockopt(self->sock, ZMQ_CURVE_SERVERKEY, server, 32);
        zmq_setsockopt(self->sock, ZMQ_CURVE_PUBLICKEY, k.public_key, 32);
        zmq_setsockopt(self->sock, ZMQ_CURVE_SECRETKEY, k.secret_key, 32);
    }
    dv_key_clear(&k);
    return rc;
}

// Why the handshake failed, from the monitor's event.
static int
handshake_error(const drover_t *self, dv_error_t *e)
{
    if (self->hs_failed == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        return dv_errorf(e, DV_EPERM,
                         "the broker at %s refused key '%s' (ZAP status %d): "
                         "it is not among the broker's authorized keys, was "
                         "revoked, lacks a role for this socket, or has "
                         "reached the connection limits (its audit log says "
                         "which)",
                         self->endpoint, self->key_id, self->hs_status);
    }
    if (self->key_id[0]) {
        return dv_errorf(e, DV_EPERM,
                         "CURVE handshake with %s failed: is --broker-key "
                         "the broker's public key, and does the broker run "
                         "with --secret-key?",
                         self->endpoint);
    }
    return dv_errorf(e, DV_EPERM,
                     "the broker at %s refused a plain connection: it "
                     "requires CURVE (--key FILE --broker-key FILE.pub, or "
                     "DROVER_KEY / DROVER_BROKER_KEY)",
                     self->endpoint);
}

int
drover_connect_key(drover_t **out,
                   const char *endpoint,
                   int timeout_ms,
                   const char *key_file,
                   const char *broker_key,
                   drover_error_t *err)
{
    if (!endpoint || !*endpoint) {
        endpoint = getenv("DROVER_BROKER");
    }
    if (!endpoint || !*endpoint) {
        endpoint = DROVER_DEFAULT_ENDPOINT;
    }
    drover_t *self = dv_calloc(1, sizeof *self);
    snprintf(self->endpoint, sizeof self->endpoint, "%s", endpoint);
    self->n_buckets = 256;
    self->buckets = dv_calloc(self->n_buckets, sizeof(req_t *));
    self->ctx = zmq_ctx_new();
    self->sock = zmq_socket(self->ctx, ZMQ_DEALER);
    int hwm = HWM, linger = 200;
    int64_t maxmsg = (int64_t)DV_MAX_FRAME_BYTES;
    zmq_setsockopt(self->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    dv_error_t e = {0};
    if ((key_file || broker_key) && use_keys(self, key_file, broker_key, &e)) {
        drover_destroy(&self);
        return set_err(err, &e);
    }
    // Watch the handshake while connecting: a refusal ends the wait.
    char mon[64];
    snprintf(mon, sizeof mon, "inproc://drover-monitor-%p", (void *)self);
    if (zmq_socket_monitor(self->sock, mon,
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0) {
        self->monitor = zmq_socket(self->ctx, ZMQ_PAIR);
        if (zmq_connect(self->monitor, mon) != 0) {
            zmq_close(self->monitor);
            self->monitor = NULL;
        }
    }
    if (zmq_connect(self->sock, endpoint) != 0) {
        dv_errorf(&e, DV_EINVAL, "cannot connect to %s: %s", endpoint,
                  zmq_strerror(zmq_errno()));
        drover_destroy(&self);
        return set_err(err, &e);
    }
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_HELLO, rid);
    dv_msgw_str(w, "client", "libdrover " DV_VERSION_STRING);
    int rc = request(self, w, rid, NULL, 0, DV_MSG_WELCOME,
                     deadline_of(timeout_ms), err);
    if (rc == DV_EPERM && self->hs_failed) {
        handshake_error(self, &e);
        set_err(err, &e);
    } else if (rc == DV_ETIMEDOUT && err) {
        snprintf(err->text, sizeof err->text,
                 "no broker answered at %s within %d ms (is one running? "
                 "`drover up` starts one)",
                 endpoint, timeout_ms);
    }
    if (self->monitor) { // connected (or not): stop watching
        zmq_socket_monitor(self->sock, NULL, 0);
        zmq_close(self->monitor);
        self->monitor = NULL;
    }
    if (rc) {
        drover_destroy(&self);
        return rc;
    }
    self->broker_minor = self->reply ? dv_msg_minor(self->reply) : 0;
    drop_reply(self);
    *out = self;
    return 0;
}

void
drover_destroy(drover_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    drover_t *self = *self_p;
    drop_reply(self);
    for (size_t b = 0; b < self->n_buckets; b++) {
        while (self->buckets[b]) {
            req_remove(self, self->buckets[b]);
        }
    }
    while (self->events_head) {
        event_t *ev = self->events_head;
        self->events_head = ev->next;
        drover_result_destroy(&ev->res);
        free(ev);
    }

    free(self->buckets);
    if (self->monitor) {
        zmq_close(self->monitor);
    }
    if (self->sock) {
        zmq_close(self->sock);
    }
    zmq_ctx_term(self->ctx);
    free(self);
    *self_p = NULL;
}

const char *
drover_endpoint(const drover_t *self)
{
    return self->endpoint;
}

// ------------------------------------------------------------------ jobs

// The submit message for job (and its payload frame in *frame, which the
// caller frees with *owned). Returns 0 or DV_EINVAL/DV_EMSGSIZE.
static int
build_submit(const drover_job_t *job,
             uint64_t rid,
             dv_msgw_t **out,
             dv_frame_t *frame,
             uint8_t **owned,
             dv_error_t *e)
{
    const char *kind = job->kind ? job->kind : "echo";
    bool infer = strcmp(kind, "infer") == 0;
    bool sleep = strcmp(kind, "sleep") == 0;
    bool evaluate = strcmp(kind, "evaluate") == 0;
    *owned = NULL;
    if (!infer && !sleep && !evaluate && strcmp(kind, "echo") != 0) {
        return dv_errorf(e, DV_EINVAL,
                         "job kind '%s': echo, infer, evaluate or sleep", kind);
    }
    if (evaluate && (!job->model || (!job->payload && !job->dataset))) {
        return dv_errorf(e, DV_EINVAL,
                         "an evaluate job needs model and the CSV as payload "
                         "or a dataset");
    }
    if (job->idempotency_key &&
        (!job->idempotency_key[0] ||
         strlen(job->idempotency_key) > DV_MAX_KEY_BYTES)) {
        return dv_errorf(e, DV_EINVAL, "idempotency_key must be 1..%d bytes",
                         DV_MAX_KEY_BYTES);
    }
    if (infer) {
        if (!job->model || !job->input || job->rows == 0 || job->cols == 0) {
            return dv_errorf(e, DV_EINVAL,
                             "an infer job needs model, input, rows, cols");
        }
        if (job->rows > DV_MAX_INFER_ROWS ||
            job->rows * job->cols * 4 > DV_MAX_FRAME_BYTES) {
            return dv_errorf(e, DV_EMSGSIZE,
                             "input of %zu x %zu is over the limits (%d rows, "
                             "%zu bytes): split it into several jobs",
                             job->rows, job->cols, DV_MAX_INFER_ROWS,
                             DV_MAX_FRAME_BYTES);
        }
    } else if (job->payload_len > DV_MAX_FRAME_BYTES ||
               (job->payload_len && !job->payload)) {
        return dv_errorf(e, DV_EMSGSIZE, "echo payload over %zu bytes",
                         DV_MAX_FRAME_BYTES);
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, rid);
    dv_msgw_str(w, "queue", job->queue ? job->queue : "default");
    dv_msgw_str(w, "kind", kind);
    if (job->max_attempts) {
        dv_msgw_uint(w, "max_attempts", job->max_attempts);
    }
    if (job->durability) {
        dv_msgw_str(w, "durability", job->durability);
    }
    if (job->priority) {
        dv_msgw_key(w, "priority");
        dv_msgw_v_int(w, job->priority);
    }
    if (job->deadline_ms) {
        dv_msgw_uint(w, "deadline_ms", job->deadline_ms);
    }
    if (job->timeout_ms) {
        dv_msgw_uint(w, "timeout_ms", job->timeout_ms);
    }
    if (job->backoff_ms) {
        dv_msgw_uint(w, "backoff_ms",
                     job->backoff_ms < 0 ? 0 : (uint64_t)job->backoff_ms);
    }
    if (job->idempotency_key) {
        dv_msgw_str(w, "idempotency_key", job->idempotency_key);
    }
    if (sleep) {
        dv_msgw_uint(w, "ms", job->sleep_ms);
    }
    if (evaluate) {
        dv_msgw_str(w, "model", job->model);
        if (job->dataset) {
            dv_msgw_str(w, "dataset", job->dataset);
        }
    }
    if (infer) {
        dv_msgw_str(w, "model", job->model);
        dv_msgw_tensor(w, "input", 1, job->rows, job->cols);
        size_t n = job->rows * job->cols;
        uint8_t *buf = dv_malloc(n * 4);
        dv_floats_to_wire(buf, job->input, n);
        *owned = buf;
        *frame = (dv_frame_t){buf, n * 4};
    } else {
        *frame = (dv_frame_t){job->payload ? job->payload : (const void *)"",
                              job->payload_len};
    }
    *out = w;
    return 0;
}

int
drover_submit(drover_t *self,
              const drover_job_t *job,
              int timeout_ms,
              uint64_t *job_id,
              drover_error_t *err)
{
    dv_error_t e = {0};
    dv_msgw_t *w = NULL;
    dv_frame_t frame;
    uint8_t *owned = NULL;
    uint64_t rid = ++self->next_rid;
    int rc = build_submit(job, rid, &w, &frame, &owned, &e);
    if (rc) {
        return set_err(err, &e);
    }
    req_t *r = dv_calloc(1, sizeof *r);
    r->rid = rid;
    req_add(self, r);
    rc = request(self, w, rid, &frame, 1, DV_MSG_ACCEPTED,
                 deadline_of(timeout_ms), err);
    free(owned);
    if (rc == 0) {
        rc = dv_msg_uint(self->reply, "job", &r->job, &e);
        if (rc) {
            set_err(err, &e);
        }
    }
    drop_reply(self);
    if (rc) {
        req_remove(self, r);
        return rc;
    }
    *job_id = r->job;
    return 0;
}

static req_t *
req_by_job(const drover_t *self, uint64_t job)
{
    for (size_t b = 0; b < self->n_buckets; b++) {
        for (req_t *r = self->buckets[b]; r; r = r->next) {
            if (r->job == job && !r->fn) {
                return r;
            }
        }
    }
    return NULL;
}

int
drover_wait(drover_t *self,
            uint64_t job_id,
            int timeout_ms,
            drover_result_t **out,
            drover_error_t *err)
{
    int64_t deadline = deadline_of(timeout_ms);
    req_t *r = req_by_job(self, job_id);
    dv_error_t e = {0};
    if (r) {
        // Submitted here: the broker pushes the result to us.
        while (!r->result) {
            int rc = pump(self, deadline, have_result, r);
            if (rc == DV_ETIMEDOUT) {
                return set_err(
                    err, &(dv_error_t){DV_ETIMEDOUT,
                                       "the job has not finished in time"});
            }
            if (rc) {
                dv_errorf(&e, rc, "socket error");
                return set_err(err, &e);
            }
        }
        *out = r->result;
        r->result = NULL;
        req_remove(self, r);
        return 0;
    }
    // Submitted elsewhere: ask for the kept result until it is there.
    int pause_ms = 5;
    for (;;) {
        uint64_t rid = ++self->next_rid;
        dv_msgw_t *w = dv_msgw_new(DV_MSG_RESULT_GET, rid);
        dv_msgw_uint(w, "job", job_id);
        drover_error_t rerr = {0};
        // The question itself gets a few seconds even when the caller
        // only wants what is already there (timeout 0).
        int64_t ask = now_ms() + 5000;
        int rc =
            request(self, w, rid, NULL, 0, DV_MSG_RESULT,
                    deadline < 0 || deadline > ask ? deadline : ask, &rerr);
        if (rc == 0) {
            *out = result_from(self->reply);
            drop_reply(self);
            return 0;
        }
        drop_reply(self);
        if (rc != DV_ENOENT || !strstr(rerr.text, "not finished")) {
            if (err) {
                *err = rerr;
            }
            return rc;
        }
        if (deadline >= 0 && now_ms() + pause_ms > deadline) {
            return set_err(err,
                           &(dv_error_t){DV_ETIMEDOUT,
                                         "the job has not finished in time"});
        }
        struct timespec ts = {0, (long)pause_ms * 1000000L};
        nanosleep(&ts, NULL);
        pause_ms = pause_ms < 200 ? pause_ms * 2 : 200;
    }
}

int
drover_run(drover_t *self,
           const drover_job_t *job,
           int timeout_ms,
           drover_result_t **out,
           drover_error_t *err)
{
    int64_t deadline = deadline_of(timeout_ms);
    uint64_t id = 0;
    int rc = drover_submit(self, job, timeout_ms, &id, err);
    if (rc) {
        return rc;
    }
    int left = deadline < 0 ? -1 : (int)(deadline - now_ms());
    return drover_wait(self, id, left < 0 && deadline >= 0 ? 0 : left, out,
                       err);
}

static int submit_async(drover_t *self,
                        const drover_job_t *job,
                        drover_result_fn *fn,
                        void *arg,
                        bool ack_only,
                        drover_error_t *err);

int
drover_submit_async(drover_t *self,
                    const drover_job_t *job,
                    drover_result_fn *fn,
                    void *arg,
                    drover_error_t *err)
{
    return submit_async(self, job, fn, arg, false, err);
}

int
drover_submit_nowait(drover_t *self,
                     const drover_job_t *job,
                     drover_result_fn *fn,
                     void *arg,
                     drover_error_t *err)
{
    return submit_async(self, job, fn, arg, true, err);
}

static int
submit_async(drover_t *self,
             const drover_job_t *job,
             drover_result_fn *fn,
             void *arg,
             bool ack_only,
             drover_error_t *err)
{
    dv_error_t e = {0};
    dv_msgw_t *w = NULL;
    dv_frame_t frame;
    uint8_t *owned = NULL;
    uint64_t rid = ++self->next_rid;
    if (!fn) {
        return set_err(err, &(dv_error_t){DV_EINVAL, "a callback is needed"});
    }
    int rc = build_submit(job, rid, &w, &frame, &owned, &e);
    if (rc) {
        return set_err(err, &e);
    }
    req_t *r = dv_calloc(1, sizeof *r);
    r->rid = rid;
    r->fn = fn;
    r->arg = arg;
    r->ack_only = ack_only;
    req_add(self, r);
    self->n_async++;

    send_msg(self, w, &frame, 1);
    free(owned);
    return 0;
}

// Send n built submits (ws[i] with frames[i], request ids rids[i]; the
// writers are consumed): to a 1.4 broker as `submit_many` messages, each
// within DV_MAX_SUBMIT_MANY requests, the header limit and one frame; to an
// older broker, and for a request too big to share a header, as one
// `submit` each.
static void
send_many(drover_t *self,
          dv_msgw_t **ws,
          const dv_frame_t *frames,
          const uint64_t *rids,
          size_t n)
{
    // Room for the common keys, the array's head and each map's head.
    const size_t room = DV_MAX_HEADER_BYTES - 256;
    for (size_t i = 0; i < n;) {
        size_t bl = 0, nf = 0;
        dv_msgw_body(ws[i], &bl, &nf);
        if (self->broker_minor < 4 || bl + 48 > room) {
            send_msg(self, ws[i], &frames[i], 1);
            i++;
            continue;
        }
        size_t j = i, hb = 0, fb = 0;
        for (; j < n && j - i < DV_MAX_SUBMIT_MANY; j++) {
            dv_msgw_body(ws[j], &bl, &nf);
            size_t need = bl + 48; // + rid, bytes and the map's head
            if (need > room || hb + need > room ||
                fb + frames[j].len > DV_MAX_FRAME_BYTES) {
                break;
            }
            hb += need;
            fb += frames[j].len;
        }
        dv_msgw_t *m = dv_msgw_new(DV_MSG_SUBMIT_MANY, ++self->next_rid);
        uint8_t *all = dv_malloc(fb ? fb : 1);
        dv_msgw_key(m, "requests");
        dv_msgw_v_array(m, j - i);
        for (size_t k = i, at = 0; k < j; k++) {
            dv_msgw_uint(ws[k], "rid", rids[k]);
            dv_msgw_uint(ws[k], "bytes", frames[k].len);
            const uint8_t *body = dv_msgw_body(ws[k], &bl, &nf);
            dv_msgw_v_map(m, nf);
            dv_msgw_v_raw(m, body, bl);
            if (frames[k].len) {
                memcpy(all + at, frames[k].data, frames[k].len);
            }
            at += frames[k].len;
            dv_msgw_destroy(&ws[k]);
        }
        dv_frame_t f = {all, fb};
        send_msg(self, m, &f, 1);
        free(all);
        i = j;
    }
}

// Build, register and send n submits (fn NULL: blocking ones; args[i] or
// NULL their callbacks' argument). Nothing is sent when a job cannot be.
static int
submit_many(drover_t *self,
            const drover_job_t *jobs,
            size_t n,
            drover_result_fn *fn,
            void *const *args,
            req_t **reqs,
            drover_error_t *err)
{
    dv_msgw_t **ws = dv_calloc(n ? n : 1, sizeof *ws);
    dv_frame_t *frames = dv_calloc(n ? n : 1, sizeof *frames);
    uint8_t **owned = dv_calloc(n ? n : 1, sizeof *owned);
    uint64_t *rids = dv_calloc(n ? n : 1, sizeof *rids);
    dv_error_t e = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rids[i] = ++self->next_rid;
        rc = build_submit(&jobs[i], rids[i], &ws[i], &frames[i], &owned[i], &e);
        if (rc) {
            char text[DV_ERROR_TEXT_MAX];
            snprintf(text, sizeof text, "%s", e.text);
            dv_errorf(&e, rc, "jobs[%zu]: %s", i, text);
        }
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        req_t *r = dv_calloc(1, sizeof *r);
        r->rid = rids[i];
        r->fn = fn;
        r->arg = args ? args[i] : NULL;
        req_add(self, r);
        self->n_async += fn != NULL;
        if (reqs) {
            reqs[i] = r;
        }
    }
    if (rc == 0) {
        send_many(self, ws, frames, rids, n);
    }
    for (size_t i = 0; i < n; i++) {
        if (rc) {
            dv_msgw_destroy(&ws[i]);
        }
        free(owned[i]);
    }
    free(ws);
    free(frames);
    free(owned);
    free(rids);
    return rc ? set_err(err, &e) : 0;
}

int
drover_submit_many_async(drover_t *self,
                         const drover_job_t *jobs,
                         size_t n,
                         drover_result_fn *fn,
                         void *const *args,
                         drover_error_t *err)
{
    if (!fn) {
        return set_err(err, &(dv_error_t){DV_EINVAL, "a callback is needed"});
    }
    return submit_many(self, jobs, n, fn, args, NULL, err);
}

typedef struct {
    req_t **reqs;
    size_t n;
} many_t;

// Every request of a blocking submit_many is accepted or refused.
static bool
all_answered(const drover_t *self, const void *arg)
{
    (void)self;
    const many_t *m = arg;
    for (size_t i = 0; i < m->n; i++) {
        if (!m->reqs[i]->job && !m->reqs[i]->result) {
            return false;
        }
    }
    return true;
}

int
drover_submit_many(drover_t *self,
                   const drover_job_t *jobs,
                   size_t n,
                   int timeout_ms,
                   uint64_t *ids,
                   drover_error_t *err)
{
    req_t **reqs = dv_calloc(n ? n : 1, sizeof *reqs);
    int rc = submit_many(self, jobs, n, NULL, NULL, reqs, err);
    if (rc) {
        free(reqs);
        return rc;
    }
    many_t many = {reqs, n};
    rc = pump(self, deadline_of(timeout_ms), all_answered, &many);
    dv_error_t e = {0};
    if (rc == DV_ETIMEDOUT) {
        dv_errorf(&e, rc, "no answer from the broker at %s", self->endpoint);
    } else if (rc) {
        dv_errorf(&e, rc, "socket error: %s", zmq_strerror(zmq_errno()));
    }
    for (size_t i = 0; i < n; i++) {
        req_t *r = reqs[i];
        ids[i] = r->job;
        if (r->job) {
            continue; // drover_wait finds it
        }
        if (r->result && !e.code) {
            const char *text = "";
            int code = drover_result_error(r->result, &text);
            dv_errorf(&e, code, "jobs[%zu]: %s", i, text);
        }
        req_remove(self, r); // refused, or no answer in time
    }
    free(reqs);
    return e.code ? set_err(err, &e) : 0;
}

int
drover_poll(drover_t *self, int timeout_ms, drover_error_t *err)
{
    int rc = pump(self, deadline_of(timeout_ms),
                  timeout_ms == 0 ? NULL : have_ready, NULL);
    if (rc && rc != DV_ETIMEDOUT) {
        dv_error_t e;
        dv_errorf(&e, rc, "socket error: %s", zmq_strerror(zmq_errno()));
        return set_err(err, &e);
    }
    int ran = 0;
    while (self->ready_head) {
        req_t *r = self->ready_head;
        self->ready_head = r->ready_next;
        if (!self->ready_head) {
            self->ready_tail = NULL;
        }
        drover_result_t *res = r->ready;
        r->ready = NULL;
        drover_result_fn *fn = r->fn;
        void *arg = r->arg;
        req_remove(self, r);
        self->n_async--;
        fn(self, res, arg);
        drover_result_destroy(&res);
        ran++;
    }
    while (self->events_head) {
        event_t *ev = self->events_head;
        self->events_head = ev->next;
        if (!self->events_head) {
            self->events_tail = NULL;
        }
        ev->fn(self, ev->res, ev->arg);
        drover_result_destroy(&ev->res);
        free(ev);
        ran++;
    }
    return ran;
}

// ---------------------------------------------------------- result streams

uint64_t
drover_result_seq(const drover_result_t *r)
{
    return r->seq;
}

size_t
drover_result_metrics(const drover_result_t *r,
                      const char *const **names,
                      const double **values)
{
    *names = (const char *const *)r->metric_names;
    *values = r->metric_values;
    return r->n_metrics;
}

// The connection's follow (one at most).
static req_t *
follow_req(const drover_t *self)
{
    for (size_t b = 0; b < self->n_buckets; b++) {
        for (req_t *r = self->buckets[b]; r; r = r->next) {
            if (r->stream) {
                return r;
            }
        }
    }
    return NULL;
}

int
drover_follow(drover_t *self,
              const char *queue,
              const char *consumer,
              unsigned window,
              bool from_latest,
              drover_result_fn *fn,
              void *arg,
              uint64_t *acked,
              drover_error_t *err)
{
    if (!fn || !queue || !consumer) {
        return set_err(err,
                       &(dv_error_t){DV_EINVAL, "follow: queue, consumer and a "
                                                "callback are needed"});
    }
    if (follow_req(self)) {
        return set_err(err, &(dv_error_t){DV_EINVAL,
                                          "this connection follows a stream "
                                          "already: one per connection"});
    }
    uint64_t rid = ++self->next_rid;
    req_t *r = dv_calloc(1, sizeof *r);
    r->rid = rid;
    r->fn = fn;
    r->arg = arg;
    r->stream = true;
    req_add(self, r);
    dv_msgw_t *w = dv_msgw_new(DV_MSG_FOLLOW, rid);
    dv_msgw_str(w, "queue", queue);
    dv_msgw_str(w, "consumer", consumer);
    dv_msgw_uint(w, "window", window ? window : 100);
    dv_msgw_str(w, "from", from_latest ? "latest" : "earliest");
    int rc = request(self, w, rid, NULL, 0, DV_MSG_OK, deadline_of(10000), err);
    if (rc == 0 && acked) {
        dv_error_t e;
        *acked = 0;
        dv_msg_uint(self->reply, "acked", acked, &e);
    }
    drop_reply(self);
    if (rc) {
        req_remove(self, r);
    }
    return rc;
}

int
drover_ack(drover_t *self,
           const char *queue,
           const char *consumer,
           uint64_t seq,
           bool wait,
           drover_error_t *err)
{
    uint64_t rid = wait ? ++self->next_rid : 0;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_ACK, rid);
    dv_msgw_str(w, "queue", queue);
    dv_msgw_str(w, "consumer", consumer);
    dv_msgw_uint(w, "seq", seq);
    if (!wait) {
        send_msg(self, w, NULL, 0);
        return 0;
    }
    int rc = request(self, w, rid, NULL, 0, DV_MSG_OK, deadline_of(10000), err);
    drop_reply(self);
    return rc;
}

int
drover_unfollow(drover_t *self,
                const char *queue,
                const char *consumer,
                drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_UNFOLLOW, rid);
    dv_msgw_str(w, "queue", queue);
    dv_msgw_str(w, "consumer", consumer);
    int rc = request(self, w, rid, NULL, 0, DV_MSG_OK, deadline_of(10000), err);
    drop_reply(self);
    req_t *r = follow_req(self);
    if (r) {
        req_remove(self, r);
    }
    return rc;
}

size_t
drover_pending(const drover_t *self)
{
    return self->n_async;
}

int
drover_job_info(drover_t *self,
                uint64_t job_id,
                drover_job_info_t *out,
                drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_JOB_GET, rid);
    dv_msgw_uint(w, "job", job_id);
    int rc =
        request(self, w, rid, NULL, 0, DV_MSG_JOB, deadline_of(10000), err);
    if (rc == 0) {
        dv_error_t e = {0};
        uint64_t attempts = 0;
        memset(out, 0, sizeof *out);
        out->job = job_id;
        out->eval = NAN;
        dv_msg_str(self->reply, "state", out->state, sizeof out->state, &e);
        dv_msg_uint_or(self->reply, "attempts", 0, &attempts, &e);
        out->attempts = (uint32_t)attempts;
        if (dv_msg_has(self->reply, "queue")) {
            dv_msg_str(self->reply, "queue", out->queue, sizeof out->queue, &e);
            dv_msg_str(self->reply, "kind", out->kind, sizeof out->kind, &e);
            int64_t prio = 0;
            dv_msg_int_or(self->reply, "priority", 0, &prio, &e);
            out->priority = (int32_t)prio;
        }
        const msgpack_object *pg = dv_msg_get(self->reply, "progress");
        if (pg && pg->type == MSGPACK_OBJECT_MAP) {
            out->epoch = (uint32_t)obj_uint(pg, "epoch");
            out->epochs = (uint32_t)obj_uint(pg, "epochs");
            dv_msgpack_double(dv_msgpack_get(pg, "loss"), &out->loss);
            out->progress_ms = obj_uint(pg, "ms");
            if (!dv_msgpack_double(dv_msgpack_get(pg, "eval"), &out->eval)) {
                out->eval = NAN;
            }
        }
        copy_obj_str(dv_msg_get(self->reply, "model"), out->model,
                     sizeof out->model);
        const msgpack_object *b = dv_msg_get(self->reply, "batch");
        out->batch_rows = (uint32_t)obj_uint(b, "rows");
        out->batch_jobs = (uint32_t)obj_uint(b, "jobs");
        const msgpack_object *ck = dv_msg_get(self->reply, "checkpoint");
        if (ck && ck->type == MSGPACK_OBJECT_MAP) {
            out->checkpoint_epoch = (uint32_t)obj_uint(ck, "epoch");
            out->checkpoint_bytes = obj_uint(ck, "bytes");
            out->checkpoint_stored_epoch =
                (uint32_t)obj_uint(ck, "stored_epoch");
        }
    }
    drop_reply(self);
    return rc;
}

int
drover_job_cancel(drover_t *self,
                  uint64_t job_id,
                  char *was,
                  drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_JOB_CANCEL, rid);
    dv_msgw_uint(w, "job", job_id);
    int rc = request(self, w, rid, NULL, 0, DV_MSG_OK, deadline_of(10000), err);
    if (rc == 0 && was) {
        dv_error_t e;
        was[0] = '\0';
        dv_msg_str(self->reply, "was", was, 16, &e);
    }
    drop_reply(self);
    return rc;
}

int
drover_job_list(drover_t *self,
                const char *state,
                const char *queue,
                unsigned limit,
                drover_job_info_t **jobs,
                size_t *n,
                drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_JOB_LIST, rid);
    if (state) {
        dv_msgw_str(w, "state", state);
    }
    if (queue) {
        dv_msgw_str(w, "queue", queue);
    }
    dv_msgw_uint(w, "limit", limit ? limit : 100);
    int rc =
        request(self, w, rid, NULL, 0, DV_MSG_JOBS, deadline_of(10000), err);
    *jobs = NULL;
    *n = 0;
    if (rc == 0) {
        size_t count = 0;
        const msgpack_object *items = reply_array(self, "jobs", &count);
        drover_job_info_t *v = dv_calloc(count ? count : 1, sizeof *v);
        for (size_t i = 0; i < count; i++) {
            const msgpack_object *o = &items[i];
            v[i].job = obj_uint(o, "job");
            v[i].attempts = (uint32_t)obj_uint(o, "attempts");
            copy_obj_str(dv_msgpack_get(o, "state"), v[i].state,
                         sizeof v[i].state);
            copy_obj_str(dv_msgpack_get(o, "queue"), v[i].queue,
                         sizeof v[i].queue);
            copy_obj_str(dv_msgpack_get(o, "kind"), v[i].kind,
                         sizeof v[i].kind);
            const msgpack_object *p = dv_msgpack_get(o, "priority");
            v[i].priority = p && p->type == MSGPACK_OBJECT_NEGATIVE_INTEGER
                                ? (int32_t)p->via.i64
                            : p && p->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                                ? (int32_t)p->via.u64
                                : 0;
        }
        *jobs = v;
        *n = count;
    }
    drop_reply(self);
    return rc;
}

// ---------------------------------------------------------------- models

static void
copy_obj_str(const msgpack_object *o, char *buf, size_t size)
{
    buf[0] = '\0';
    if (o && o->type == MSGPACK_OBJECT_STR) {
        size_t n = o->via.str.size < size - 1 ? o->via.str.size : size - 1;
        memcpy(buf, o->via.str.ptr, n);
        buf[n] = '\0';
    }
}

static uint64_t
obj_uint(const msgpack_object *map, const char *key)
{
    uint64_t v = 0;
    dv_msgpack_uint(dv_msgpack_get(map, key), &v);
    return v;
}

// A model record from a map (nested) or from the header root.
static void
model_from_obj(const msgpack_object *o, drover_model_t *out)
{
    memset(out, 0, sizeof *out);
    copy_obj_str(dv_msgpack_get(o, "name"), out->name, sizeof out->name);
    out->version = (uint32_t)obj_uint(o, "version");
    const msgpack_object *sum = dv_msgpack_get(o, "sha256");
    if (sum && sum->type == MSGPACK_OBJECT_BIN &&
        sum->via.bin.size == DV_SHA256_BYTES) {
        dv_sha256_hex((const uint8_t *)sum->via.bin.ptr, out->sha256);
    }
    out->bytes = obj_uint(o, "bytes");
    copy_obj_str(dv_msgpack_get(o, "task"), out->task, sizeof out->task);
    copy_obj_str(dv_msgpack_get(o, "algo"), out->algo, sizeof out->algo);
    out->features = (uint32_t)obj_uint(o, "features");
    out->outputs = (uint32_t)obj_uint(o, "outputs");
    out->created_us = obj_uint(o, "created_us");
    const msgpack_object *cfg = dv_msgpack_get(o, "config");
    out->max_batch_rows = (uint32_t)obj_uint(cfg, "max_batch_rows");
    out->max_delay_us = (uint32_t)obj_uint(cfg, "max_delay_us");
    const msgpack_object *a = dv_msgpack_get(o, "aliases");
    size_t len = 0;
    for (uint32_t i = 0;
         a && a->type == MSGPACK_OBJECT_ARRAY && i < a->via.array.size; i++) {
        char one[129];
        copy_obj_str(&a->via.array.ptr[i], one, sizeof one);
        int n = snprintf(out->aliases + len, sizeof out->aliases - len, "%s%s",
                         len ? "," : "", one);
        if (n < 0 || (size_t)n >= sizeof out->aliases - len) {
            break;
        }
        len += (size_t)n;
    }
}

// The root map of the current reply.
static const msgpack_object *
reply_root(const drover_t *self)
{
    return dv_msg_root(self->reply);
}

// model_push; with signer, signed over "drover-model-v1:" + the SHA-256.
static int
model_push(drover_t *self,
           const void *image,
           size_t len,
           const char *name,
           const dv_key_t *signer,
           drover_model_t *out,
           drover_error_t *err)
{
    uint8_t sum[DV_SHA256_BYTES];
    dv_sha256(image, len, sum);
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_MODEL_PUSH, rid);
    dv_msgw_str(w, "name", name);
    dv_msgw_bin(w, "sha256", sum, sizeof sum);
    if (signer) {
        uint8_t msg[16 + DV_SHA256_BYTES], sig[64];
        memcpy(msg, "drover-model-v1:", 16);
        memcpy(msg + 16, sum, sizeof sum);
        dv_error_t e = {0};
        if (dv_key_sign(signer, msg, sizeof msg, sig, &e) != 0) {
            dv_msgw_destroy(&w);
            return set_err(err, &e);
        }
        dv_msgw_bin(w, "signature", sig, sizeof sig);
        dv_msgw_str(w, "signer", signer->id);
    }
    dv_frame_t f = {image, len};
    int rc =
        request(self, w, rid, &f, 1, DV_MSG_MODEL, deadline_of(60000), err);
    if (rc == 0 && out) {
        model_from_obj(reply_root(self), out);
    }
    drop_reply(self);
    return rc;
}

int
drover_model_push_bytes(drover_t *self,
                        const void *image,
                        size_t len,
                        const char *name,
                        drover_model_t *out,
                        drover_error_t *err)
{
    return model_push(self, image, len, name, NULL, out, err);
}

int
drover_model_push_signed(drover_t *self,
                         const char *path,
                         const char *name,
                         const char *key_file,
                         drover_model_t *out,
                         drover_error_t *err)
{
    dv_key_t k;
    dv_error_t e = {0};
    int rc = dv_key_load(&k, key_file, &e);
    uint8_t *image = NULL;
    size_t len = 0;
    if (rc == 0) {
        rc = dv_file_read(path, DV_MAX_FRAME_BYTES, &image, &len, &e);
    }
    if (rc) {
        dv_key_clear(&k);
        return set_err(err, &e);
    }
    rc = model_push(self, image, len, name, &k, out, err);
    dv_key_clear(&k);
    free(image);
    return rc;
}

int
drover_model_push(drover_t *self,
                  const char *path,
                  const char *name,
                  drover_model_t *out,
                  drover_error_t *err)
{
    uint8_t *image = NULL;
    size_t len = 0;
    dv_error_t e = {0};
    int rc = dv_file_read(path, DV_MAX_FRAME_BYTES, &image, &len, &e);
    if (rc) {
        return set_err(err, &e);
    }
    rc = drover_model_push_bytes(self, image, len, name, out, err);
    free(image);
    return rc;
}

int
drover_model_list(drover_t *self,
                  drover_model_t **models,
                  size_t *n,
                  drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    int rc = request(self, dv_msgw_new(DV_MSG_MODEL_LIST, rid), rid, NULL, 0,
                     DV_MSG_MODELS, deadline_of(10000), err);
    *models = NULL;
    *n = 0;
    if (rc == 0) {
        size_t count = 0;
        const msgpack_object *items = reply_array(self, "models", &count);
        *models = dv_calloc(count ? count : 1, sizeof **models);
        for (size_t i = 0; i < count; i++) {
            model_from_obj(&items[i], &(*models)[i]);
        }
        *n = count;
    }
    drop_reply(self);
    return rc;
}

static int
model_get(drover_t *self,
          const char *name,
          uint32_t version,
          bool schema,
          drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_MODEL_GET, rid);
    dv_msgw_str(w, "name", name);
    if (version) {
        dv_msgw_uint(w, "version", version);
    }
    if (schema) {
        dv_msgw_uint(w, "schema", 1);
    }
    return request(self, w, rid, NULL, 0, DV_MSG_MODEL, deadline_of(10000),
                   err);
}

int
drover_model_get(drover_t *self,
                 const char *name,
                 uint32_t version,
                 drover_model_t *out,
                 drover_error_t *err)
{
    int rc = model_get(self, name, version, false, err);
    if (rc == 0) {
        model_from_obj(reply_root(self), out);
    }
    drop_reply(self);
    return rc;
}

// "NAME@V" of a data set reference map {name, version, ...}.
static void
dataset_ref_of(const msgpack_object *o, char *buf, size_t size)
{
    char name[DV_MAX_WIRE_NAME + 1] = "";
    copy_obj_str(dv_msgpack_get(o, "name"), name, sizeof name);
    if (name[0]) {
        snprintf(buf, size, "%s@%" PRIu64, name, obj_uint(o, "version"));
    }
}

// A version's lineage map (model_get), when it has one.
static void
lineage_from_obj(const msgpack_object *l, drover_schema_t *out)
{
    if (!l || l->type != MSGPACK_OBJECT_MAP) {
        return;
    }
    drover_lineage_t *g = &out->lineage;
    g->has = true;
    g->job = obj_uint(l, "job");
    copy_obj_str(dv_msgpack_get(l, "pushed_by"), g->pushed_by,
                 sizeof g->pushed_by);
    copy_obj_str(dv_msgpack_get(l, "signed_by"), g->signed_by,
                 sizeof g->signed_by);
    copy_obj_str(dv_msgpack_get(l, "worker"), g->worker, sizeof g->worker);
    g->attempts = (uint32_t)obj_uint(l, "attempts");
    g->resumed_from = (uint32_t)obj_uint(l, "resumed_from");
    g->submitted_unix_ms = obj_uint(l, "submitted_unix_ms");
    g->finished_unix_ms = obj_uint(l, "finished_unix_ms");
    g->train_ms = obj_uint(l, "train_ms");
    g->epochs_run = (uint32_t)obj_uint(l, "epochs_run");
    g->data_rows = obj_uint(l, "data_rows");
    const msgpack_object *sum = dv_msgpack_get(l, "data_sha256");
    if (sum && sum->type == MSGPACK_OBJECT_BIN &&
        sum->via.bin.size == DV_SHA256_BYTES) {
        dv_sha256_hex((const uint8_t *)sum->via.bin.ptr, g->data_sha256);
    }
    dataset_ref_of(dv_msgpack_get(l, "dataset"), g->dataset, sizeof g->dataset);
    dataset_ref_of(dv_msgpack_get(l, "eval_dataset"), g->eval_dataset,
                   sizeof g->eval_dataset);
    const msgpack_object *h = dv_msgpack_get(l, "train");
    size_t used = 0;
    for (uint32_t i = 0; h && h->type == MSGPACK_OBJECT_MAP &&
                         i < h->via.map.size && used < sizeof g->hyper;
         i++) {
        const msgpack_object_kv *kv = &h->via.map.ptr[i];
        char key[32] = "", val[96] = "";
        copy_obj_str(&kv->key, key, sizeof key);
        if (strcmp(key, "algo") == 0) {
            copy_obj_str(&kv->val, g->algo, sizeof g->algo);
            continue;
        }
        if (kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            snprintf(val, sizeof val, "%" PRIu64, kv->val.via.u64);
            if (strcmp(key, "seed") == 0) {
                g->seed = kv->val.via.u64;
            }
        } else if (kv->val.type == MSGPACK_OBJECT_FLOAT64 ||
                   kv->val.type == MSGPACK_OBJECT_FLOAT32) {
            snprintf(val, sizeof val, "%g", kv->val.via.f64);
        } else if (kv->val.type == MSGPACK_OBJECT_STR) {
            copy_obj_str(&kv->val, val, sizeof val);
        } else if (kv->val.type == MSGPACK_OBJECT_ARRAY) {
            size_t vl = 0;
            for (uint32_t a = 0; a < kv->val.via.array.size; a++) {
                const msgpack_object *e = &kv->val.via.array.ptr[a];
                vl += (size_t)snprintf(
                    val + vl, vl < sizeof val ? sizeof val - vl : 0,
                    "%s%" PRIu64, a ? "," : "",
                    e->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? e->via.u64
                                                               : 0);
            }
            if (vl == 0) {
                continue; // no hidden layers
            }
        } else {
            continue;
        }
        used += (size_t)snprintf(g->hyper + used, sizeof g->hyper - used,
                                 "%s%s=%s", used ? " " : "", key, val);
    }
    const msgpack_object *ev = dv_msgpack_get(l, "eval_metrics");
    for (uint32_t i = 0; ev && ev->type == MSGPACK_OBJECT_MAP &&
                         i < ev->via.map.size && g->n_eval < 24;
         i++) {
        const msgpack_object_kv *kv = &ev->via.map.ptr[i];
        double v;
        if (dv_msgpack_double(&kv->val, &v)) {
            copy_obj_str(&kv->key, g->eval_names[g->n_eval],
                         sizeof g->eval_names[0]);
            g->eval_values[g->n_eval++] = v;
        }
    }
}

int
drover_model_schema(drover_t *self,
                    const char *name,
                    uint32_t version,
                    drover_schema_t *out,
                    drover_error_t *err)
{
    memset(out, 0, sizeof *out);
    int rc = model_get(self, name, version, true, err);
    dv_error_t e = {0};
    const dv_frame_t *f = rc == 0 ? dv_msg_frame(self->reply, 1) : NULL;
    if (rc == 0 && !f) {
        rc = dv_errorf(&e, DV_EFORMAT, "the broker sent no model schema");
        set_err(err, &e);
    }
    if (rc == 0) {
        model_from_obj(reply_root(self), &out->model);
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        rc = dv_msgpack_unpack(&up, f->data, f->len, "schema", &e);
        const msgpack_object *root = rc == 0 ? &up.data : NULL;
        if (rc == 0) {
            rc = dv_strs_from_obj(dv_msgpack_get(root, "features"), "features",
                                  DV_MAX_COLUMNS, DV_MAX_NAME_BYTES,
                                  &out->features, &out->n_features, &e);
        }
        if (rc == 0) {
            rc = dv_strs_from_obj(dv_msgpack_get(root, "classes"), "classes",
                                  DV_MAX_CLASSES, DV_MAX_NAME_BYTES,
                                  &out->classes, &out->n_classes, &e);
        }
        if (rc == 0) {
            char target[DV_MAX_NAME_BYTES + 1];
            copy_obj_str(dv_msgpack_get(root, "target"), target, sizeof target);
            out->target = dv_strdup(target);
            const msgpack_object *num = dv_msgpack_get(root, "labels_numeric");
            out->labels_numeric =
                num && num->type == MSGPACK_OBJECT_BOOLEAN && num->via.boolean;
            lineage_from_obj(dv_msg_get(self->reply, "lineage"), out);
        }
        msgpack_unpacked_destroy(&up);
        if (rc) {
            set_err(err, &e);
            drover_schema_clear(out);
        }
    }
    drop_reply(self);
    return rc;
}

void
drover_schema_clear(drover_schema_t *s)
{
    dv_strs_free(&s->features, s->n_features);
    dv_strs_free(&s->classes, s->n_classes);
    free(s->target);
    memset(s, 0, sizeof *s);
}

int
drover_model_rm(drover_t *self,
                const char *name,
                uint32_t version,
                unsigned *removed,
                drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_MODEL_RM, rid);
    dv_msgw_str(w, "name", name);
    if (version) {
        dv_msgw_uint(w, "version", version);
    }
    int rc = request(self, w, rid, NULL, 0, DV_MSG_OK, deadline_of(10000), err);
    if (rc == 0 && removed) {
        *removed = (unsigned)obj_uint(reply_root(self), "removed");
    }
    drop_reply(self);
    return rc;
}

// ------------------------------------------------------- workers, status

int
drover_workers(drover_t *self,
               drover_worker_t **workers,
               size_t *n,
               drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    int rc = request(self, dv_msgw_new(DV_MSG_WORKERS, rid), rid, NULL, 0,
                     DV_MSG_WORKER_LIST, deadline_of(10000), err);
    *workers = NULL;
    *n = 0;
    if (rc == 0) {
        size_t count = 0;
        const msgpack_object *items = reply_array(self, "workers", &count);
        drover_worker_t *v = dv_calloc(count ? count : 1, sizeof *v);
        for (size_t i = 0; i < count; i++) {
            const msgpack_object *o = &items[i];
            copy_obj_str(dv_msgpack_get(o, "name"), v[i].name,
                         sizeof v[i].name);
            v[i].capacity = (uint32_t)obj_uint(o, "capacity");
            v[i].running = (uint32_t)obj_uint(o, "running");
            v[i].idle_ms = obj_uint(o, "idle_ms");
            copy_obj_str(dv_msgpack_get(o, "state"), v[i].state,
                         sizeof v[i].state);
            dv_error_t e;
            dv_strs_from_obj(dv_msgpack_get(o, "models"), "models", 4096,
                             2 * DV_MAX_WIRE_NAME, &v[i].models, &v[i].n_models,
                             &e);
            dv_strs_from_obj(dv_msgpack_get(o, "datasets"), "datasets", 4096,
                             2 * DV_MAX_WIRE_NAME, &v[i].datasets,
                             &v[i].n_datasets, &e);
        }
        *workers = v;
        *n = count;
    }
    drop_reply(self);
    return rc;
}

void
drover_workers_free(drover_worker_t **workers, size_t n)
{
    if (!workers || !*workers) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        dv_strs_free(&(*workers)[i].models, (*workers)[i].n_models);
        dv_strs_free(&(*workers)[i].datasets, (*workers)[i].n_datasets);
    }
    free(*workers);
    *workers = NULL;
}

int
drover_audit(drover_t *self,
             uint64_t since_unix_ms,
             drover_audit_entry_t **entries,
             size_t *n,
             bool *more,
             drover_error_t *err)
{
    *entries = NULL;
    *n = 0;
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_AUDIT_LIST, rid);
    dv_msgw_uint(w, "since_ms", since_unix_ms);
    int rc =
        request(self, w, rid, NULL, 0, DV_MSG_AUDIT, deadline_of(10000), err);
    if (rc == 0) {
        size_t count = 0;
        const msgpack_object *items = reply_array(self, "entries", &count);
        *entries = dv_calloc(count ? count : 1, sizeof **entries);
        for (size_t i = 0; i < count; i++) {
            const msgpack_object *o = &items[i];
            drover_audit_entry_t *e = &(*entries)[i];
            e->seq = obj_uint(o, "seq");
            e->unix_ms = obj_uint(o, "unix_ms");
            copy_obj_str(dv_msgpack_get(o, "key"), e->key, sizeof e->key);
            copy_obj_str(dv_msgpack_get(o, "action"), e->action,
                         sizeof e->action);
            copy_obj_str(dv_msgpack_get(o, "object"), e->object,
                         sizeof e->object);
            copy_obj_str(dv_msgpack_get(o, "outcome"), e->outcome,
                         sizeof e->outcome);
        }
        *n = count;
        if (more) {
            *more = obj_uint(reply_root(self), "more") != 0;
        }
    }
    drop_reply(self);
    return rc;
}

int
drover_admin_reload(drover_t *self, size_t *keys, drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    int rc = request(self, dv_msgw_new(DV_MSG_ADMIN_RELOAD, rid), rid, NULL, 0,
                     DV_MSG_OK, deadline_of(10000), err);
    if (rc == 0 && keys) {
        *keys = (size_t)obj_uint(reply_root(self), "keys");
    }
    drop_reply(self);
    return rc;
}

static void status_page(const msgpack_object *root, drover_status_t *out);

int
drover_status(drover_t *self, drover_status_t *out, drover_error_t *err)
{
    memset(out, 0, sizeof *out);
    // The queues come a page at a time (1.2: queues_total, queues_from);
    // a 1.1 broker sends them all at once and no queues_total.
    uint64_t total = 0;
    int rc = 0;
    do {
        uint64_t rid = ++self->next_rid;
        dv_msgw_t *w = dv_msgw_new(DV_MSG_STATUS, rid);
        if (out->n_queues) {
            dv_msgw_uint(w, "queues_from", out->n_queues);
        }
        rc = request(self, w, rid, NULL, 0, DV_MSG_STATUS_INFO,
                     deadline_of(10000), err);
        if (rc) {
            break;
        }
        const msgpack_object *root = reply_root(self);
        total = obj_uint(root, "queues_total");
        size_t had = out->n_queues;
        status_page(root, out);
        drop_reply(self);
        if (out->n_queues == had) {
            break; // nothing new: the list shrank meanwhile
        }
    } while (out->n_queues < total);
    if (rc) {
        drover_status_clear(out);
    }
    return rc;
}

// One status reply into out: the totals, and its page of queues appended.
static void
status_page(const msgpack_object *root, drover_status_t *out)
{
    copy_obj_str(dv_msgpack_get(root, "broker"), out->broker,
                 sizeof out->broker);
    out->workers = obj_uint(root, "workers");
    out->queued = obj_uint(root, "queued");
    out->running = obj_uint(root, "running");
    out->retrying = obj_uint(root, "retrying");
    out->dead = obj_uint(root, "dead");
    out->kept_results = obj_uint(root, "kept_results");
    out->models = obj_uint(root, "models");
    const msgpack_object *q = dv_msgpack_get(root, "queues");
    size_t count = q && q->type == MSGPACK_OBJECT_MAP ? q->via.map.size : 0;
    size_t had = out->n_queues;
    out->queues =
        dv_realloc(out->queues, (had + count + 1) * sizeof *out->queues);
    memset(out->queues + had, 0, (count + 1) * sizeof *out->queues);
    for (size_t i = 0; i < count; i++) {
        const msgpack_object_kv *kv = &q->via.map.ptr[i];
        drover_queue_t *dq = &out->queues[had + i];
        copy_obj_str(&kv->key, dq->name, sizeof dq->name);
        dq->queued = obj_uint(&kv->val, "queued");
        dq->running = obj_uint(&kv->val, "running");
        dq->retrying = obj_uint(&kv->val, "retrying");
        dq->dead = obj_uint(&kv->val, "dead");
        dq->done = obj_uint(&kv->val, "done");
        dq->failed = obj_uint(&kv->val, "failed");
        dq->expired = obj_uint(&kv->val, "expired");
        dq->cancelled = obj_uint(&kv->val, "cancelled");
        dq->bytes = obj_uint(&kv->val, "bytes");
    }
    out->n_queues = had + count;
    out->n_queues = had + count;
}

void
drover_status_clear(drover_status_t *s)
{
    free(s->queues);
    memset(s, 0, sizeof *s);
}

// ---------------------------------------------------------- dead letters

static void
dead_target(dv_msgw_t *w, uint64_t job_id, const char *queue)
{
    if (job_id) {
        dv_msgw_uint(w, "job", job_id);
        return;
    }
    dv_msgw_key(w, "all");
    dv_msgw_v_bool(w, true);
    if (queue) {
        dv_msgw_str(w, "queue", queue);
    }
}

int
drover_dead_list(drover_t *self,
                 const char *queue,
                 uint64_t job_id,
                 drover_dead_t **dead,
                 size_t *n,
                 drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DEAD_LIST, rid);
    if (job_id) {
        dv_msgw_uint(w, "job", job_id);
    } else if (queue) {
        dv_msgw_str(w, "queue", queue);
    }
    dv_msgw_uint(w, "limit", 100000);
    int rc = request(self, w, rid, NULL, 0, DV_MSG_DEAD_JOBS,
                     deadline_of(10000), err);
    *dead = NULL;
    *n = 0;
    if (rc == 0) {
        size_t count = 0;
        const msgpack_object *items = reply_array(self, "jobs", &count);
        drover_dead_t *v = dv_calloc(count ? count : 1, sizeof *v);
        for (size_t i = 0; i < count; i++) {
            const msgpack_object *o = &items[i];
            v[i].job = obj_uint(o, "job");
            copy_obj_str(dv_msgpack_get(o, "queue"), v[i].queue,
                         sizeof v[i].queue);
            copy_obj_str(dv_msgpack_get(o, "kind"), v[i].kind,
                         sizeof v[i].kind);
            v[i].attempts = (uint32_t)obj_uint(o, "attempts");
            const msgpack_object *p = dv_msgpack_get(o, "priority");
            v[i].priority = p && p->type == MSGPACK_OBJECT_NEGATIVE_INTEGER
                                ? (int32_t)p->via.i64
                                : (int32_t)obj_uint(o, "priority");
            v[i].submitted_ms = obj_uint(o, "submitted_ms");
            v[i].died_ms = obj_uint(o, "died_ms");
            const msgpack_object *e = dv_msgpack_get(o, "error");
            char name[64];
            copy_obj_str(dv_msgpack_get(e, "name"), name, sizeof name);
            v[i].code = dv_err_code(name);
            copy_obj_str(dv_msgpack_get(e, "text"), v[i].text,
                         sizeof v[i].text);
            errors_from(dv_msgpack_get(o, "errors"), &v[i].errors,
                        &v[i].n_errors);
        }
        *dead = v;
        *n = count;
    }
    drop_reply(self);
    return rc;
}

void
drover_dead_free(drover_dead_t **dead, size_t n)
{
    if (!dead || !*dead) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free((*dead)[i].errors);
    }
    free(*dead);
    *dead = NULL;
}

int
drover_dead_requeue(drover_t *self,
                    uint64_t job_id,
                    const char *queue,
                    size_t *count,
                    uint64_t *new_job,
                    drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DEAD_REQUEUE, rid);
    dead_target(w, job_id, queue);
    int rc = request(self, w, rid, NULL, 0, DV_MSG_OK, deadline_of(30000), err);
    if (rc == 0) {
        const msgpack_object *root = reply_root(self);
        if (count) {
            *count = (size_t)obj_uint(root, "count");
        }
        const msgpack_object *a = dv_msgpack_get(root, "requeued");
        if (new_job) {
            *new_job =
                a && a->type == MSGPACK_OBJECT_ARRAY && a->via.array.size == 1
                    ? obj_uint(&a->via.array.ptr[0], "new_job")
                    : 0;
        }
    }
    drop_reply(self);
    return rc;
}

int
drover_dead_purge(drover_t *self,
                  uint64_t job_id,
                  const char *queue,
                  size_t *count,
                  drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DEAD_PURGE, rid);
    dead_target(w, job_id, queue);
    int rc = request(self, w, rid, NULL, 0, DV_MSG_OK, deadline_of(30000), err);
    if (rc == 0 && count) {
        *count = (size_t)obj_uint(reply_root(self), "purged");
    }
    drop_reply(self);
    return rc;
}

int
drover_model_alias(drover_t *self,
                   const char *name,
                   const char *alias,
                   uint32_t version,
                   uint32_t *previous,
                   drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_MODEL_ALIAS, rid);
    dv_msgw_str(w, "name", name);
    dv_msgw_str(w, "alias", alias);
    if (version) {
        dv_msgw_uint(w, "version", version);
    }
    int rc = request(self, w, rid, NULL, 0, DV_MSG_OK, deadline_of(10000), err);
    if (rc == 0 && previous) {
        *previous = (uint32_t)obj_uint(reply_root(self), "previous");
    }
    drop_reply(self);
    return rc;
}

int
drover_model_config(drover_t *self,
                    const char *name,
                    int64_t max_batch_rows,
                    int64_t max_delay_us,
                    uint32_t *rows_out,
                    uint32_t *delay_out,
                    drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_MODEL_CONFIG, rid);
    dv_msgw_str(w, "name", name);
    if (max_batch_rows >= 0) {
        dv_msgw_uint(w, "max_batch_rows", (uint64_t)max_batch_rows);
    }
    if (max_delay_us >= 0) {
        dv_msgw_uint(w, "max_delay_us", (uint64_t)max_delay_us);
    }
    int rc = request(self, w, rid, NULL, 0, DV_MSG_OK, deadline_of(10000), err);
    if (rc == 0 && rows_out) {
        *rows_out = (uint32_t)obj_uint(reply_root(self), "max_batch_rows");
    }
    if (rc == 0 && delay_out) {
        *delay_out = (uint32_t)obj_uint(reply_root(self), "max_delay_us");
    }
    drop_reply(self);
    return rc;
}

// ---------------------------------------------------------------- train

// "key=value" options onto h (after dv_hyper_default). Returns 0 or
// DV_EINVAL naming the option.
static int
train_options(const char *const *options,
              size_t n,
              dv_hyper_t *h,
              dv_error_t *e)
{
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(options[i], '=');
        char key[32];
        size_t kl = eq ? (size_t)(eq - options[i]) : 0;
        if (!eq || kl == 0 || kl >= sizeof key) {
            return dv_errorf(e, DV_EINVAL,
                             "train option '%.64s': want "
                             "key=value",
                             options[i]);
        }
        memcpy(key, options[i], kl);
        key[kl] = '\0';
        const char *v = eq + 1;
        char *end = NULL;
        errno = 0;
        bool ok = *v != '\0';
        if (strcmp(key, "lr") == 0 || strcmp(key, "l2") == 0 ||
            strcmp(key, "tol") == 0) {
            double d = strtod(v, &end);
            ok = ok && !*end && !errno;
            *(strcmp(key, "lr") == 0   ? &h->lr
              : strcmp(key, "l2") == 0 ? &h->l2
                                       : &h->tol) = d;
        } else if (strcmp(key, "epochs") == 0 || strcmp(key, "batch") == 0 ||
                   strcmp(key, "patience") == 0 || strcmp(key, "seed") == 0) {
            unsigned long long u = strtoull(v, &end, 10);
            ok = ok && !*end && !errno && v[0] != '-';
            if (strcmp(key, "seed") == 0) {
                h->seed = u;
            } else {
                ok = ok && u <= UINT32_MAX;
                *(strcmp(key, "epochs") == 0  ? &h->epochs
                  : strcmp(key, "batch") == 0 ? &h->batch
                                              : &h->patience) = (uint32_t)u;
            }
        } else if (strcmp(key, "scale") == 0) {
            ok = dv_scale_parse(v, &h->scale) == 0;
        } else if (strcmp(key, "hidden") == 0) {
            h->n_hidden = 0;
            for (const char *p = v; ok && *p;) {
                unsigned long u = strtoul(p, &end, 10);
                ok = end != p && u > 0 && u <= UINT32_MAX &&
                     h->n_hidden < DV_MAX_HIDDEN && (*end == ',' || !*end);
                if (ok) {
                    h->hidden[h->n_hidden++] = (uint32_t)u;
                }
                p = *end == ',' ? end + 1 : end;
            }
        } else {
            return dv_errorf(e, DV_EINVAL,
                             "train option '%s': epochs, batch, patience, "
                             "seed, lr, l2, tol, scale or hidden",
                             key);
        }
        if (!ok) {
            return dv_errorf(e, DV_EINVAL, "train option '%.64s': bad value",
                             options[i]);
        }
    }
    return dv_hyper_check(h, e);
}

int
drover_train(drover_t *self,
             const drover_train_t *t,
             int timeout_ms,
             drover_result_t **out,
             drover_error_t *err)
{
    dv_error_t e = {0};
    dv_hyper_t h;
    dv_algo_t algo;
    if (!t->model || !t->algo || (!t->csv && !t->dataset)) {
        return set_err(err, &(dv_error_t){DV_EINVAL,
                                          "train needs model, algo and csv "
                                          "or dataset"});
    }
    if (dv_algo_parse(t->algo, &algo) != 0) {
        return set_err(err,
                       &(dv_error_t){DV_EINVAL, "algo: ols, gd, ridge, logreg, "
                                                "softmax or mlp"});
    }
    dv_hyper_default(&h, algo);
    if (train_options(t->options, t->n_options, &h, &e) != 0) {
        return set_err(err, &e);
    }
    if (t->csv_len > DV_MAX_FRAME_BYTES) {
        return set_err(err, &(dv_error_t){DV_EMSGSIZE,
                                          "the data set is over the frame "
                                          "limit (256 MiB)"});
    }
    int64_t deadline = deadline_of(timeout_ms);
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, rid);
    dv_msgw_str(w, "queue", t->queue ? t->queue : "default");
    dv_msgw_str(w, "kind", "train");
    dv_msgw_str(w, "model", t->model);
    if (t->dataset) {
        dv_msgw_str(w, "dataset", t->dataset);
    }
    if (t->eval_dataset) {
        dv_msgw_str(w, "eval_dataset", t->eval_dataset);
    }
    dv_msgw_hyper(w, "train", &h);
    if (t->target) {
        dv_msgw_str(w, "target", t->target);
    }
    if (t->task) {
        dv_msgw_str(w, "task", t->task);
    }
    if (t->created_unix > 0) {
        dv_msgw_uint(w, "created_unix", (uint64_t)t->created_unix);
    }
    if (t->max_attempts) {
        dv_msgw_uint(w, "max_attempts", t->max_attempts);
    }
    if (t->checkpoint_ms) {
        dv_msgw_uint(w, "checkpoint_ms",
                     t->checkpoint_ms < 0 ? 0 : (uint64_t)t->checkpoint_ms);
    }
    req_t *r = dv_calloc(1, sizeof *r);
    r->rid = rid;
    r->progress = t->progress;
    r->progress_arg = t->progress_arg;
    req_add(self, r);
    dv_frame_t frame = {t->csv ? t->csv : (const void *)"",
                        t->csv ? t->csv_len : 0};
    int rc = request(self, w, rid, &frame, 1, DV_MSG_ACCEPTED, deadline, err);
    if (rc == 0 && dv_msg_uint(self->reply, "job", &r->job, &e) != 0) {
        rc = set_err(err, &e);
    }
    drop_reply(self);
    if (rc) {
        req_remove(self, r);
        return rc;
    }
    int left = deadline < 0 ? -1 : (int)(deadline - now_ms());
    return drover_wait(self, r->job, left < 0 && deadline >= 0 ? 0 : left, out,
                       err);
}

int
drover_model_gc(drover_t *self,
                const char *name,
                uint32_t keep,
                uint32_t *removed,
                size_t max,
                size_t *n,
                drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_MODEL_GC, rid);
    dv_msgw_str(w, "name", name);
    dv_msgw_uint(w, "keep", keep);
    int rc = request(self, w, rid, NULL, 0, DV_MSG_OK, deadline_of(30000), err);
    *n = 0;
    if (rc == 0) {
        const msgpack_object *a = dv_msgpack_get(reply_root(self), "removed");
        for (uint32_t i = 0;
             a && a->type == MSGPACK_OBJECT_ARRAY && i < a->via.array.size;
             i++) {
            uint64_t v = 0;
            if (dv_msgpack_uint(&a->via.array.ptr[i], &v) && *n < max) {
                removed[(*n)++] = (uint32_t)v;
            }
        }
    }
    drop_reply(self);
    return rc;
}

// ------------------------------------------------------------ data sets

static void
dataset_from_obj(const msgpack_object *o, drover_dataset_t *out)
{
    memset(out, 0, sizeof *out);
    copy_obj_str(dv_msgpack_get(o, "name"), out->name, sizeof out->name);
    out->version = (uint32_t)obj_uint(o, "version");
    const msgpack_object *sum = dv_msgpack_get(o, "sha256");
    if (sum && sum->type == MSGPACK_OBJECT_BIN &&
        sum->via.bin.size == DV_SHA256_BYTES) {
        dv_sha256_hex((const uint8_t *)sum->via.bin.ptr, out->sha256);
    }
    out->bytes = obj_uint(o, "bytes");
    out->rows = obj_uint(o, "rows");
    out->columns = (uint32_t)obj_uint(o, "columns");
    copy_obj_str(dv_msgpack_get(o, "target"), out->target, sizeof out->target);
    out->created_us = obj_uint(o, "created_us");
}

#define DATASET_CHUNK ((size_t)4 << 20)

int
drover_dataset_push(drover_t *self,
                    const char *path,
                    const char *name,
                    drover_dataset_t *out,
                    drover_error_t *err)
{
    dv_error_t e = {0};
    uint8_t *csv = NULL;
    size_t len = 0;
    if (dv_file_read(path, DV_MAX_CSV_BYTES, &csv, &len, &e) != 0) {
        return set_err(err, &e);
    }
    if (len == 0) {
        free(csv);
        return set_err(err, &(dv_error_t){DV_EFORMAT, "the file is empty"});
    }
    uint8_t sum[DV_SHA256_BYTES];
    dv_sha256(csv, len, sum);
    int rc = 0;
    for (size_t off = 0; rc == 0 && off < len; off += DATASET_CHUNK) {
        size_t n = len - off < DATASET_CHUNK ? len - off : DATASET_CHUNK;
        bool last = off + n == len;
        uint64_t rid = ++self->next_rid;
        dv_msgw_t *w = dv_msgw_new(DV_MSG_DATASET_PUSH, rid);
        dv_msgw_str(w, "name", name);
        dv_msgw_bin(w, "sha256", sum, sizeof sum);
        dv_msgw_uint(w, "bytes", len);
        dv_msgw_uint(w, "offset", off);
        dv_frame_t f = {csv + off, n};
        rc = request(self, w, rid, &f, 1, last ? DV_MSG_DATASET : DV_MSG_OK,
                     deadline_of(last ? 600000 : 60000), err);
        if (rc == 0 && last && out) {
            dataset_from_obj(reply_root(self), out);
        }
        drop_reply(self);
    }
    free(csv);
    return rc;
}

int
drover_dataset_list(drover_t *self,
                    drover_dataset_t **all,
                    size_t *n,
                    drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    int rc = request(self, dv_msgw_new(DV_MSG_DATASET_LIST, rid), rid, NULL, 0,
                     DV_MSG_DATASETS, deadline_of(10000), err);
    *all = NULL;
    *n = 0;
    if (rc == 0) {
        size_t count = 0;
        const msgpack_object *items = reply_array(self, "datasets", &count);
        *all = dv_calloc(count ? count : 1, sizeof **all);
        for (size_t i = 0; i < count; i++) {
            dataset_from_obj(&items[i], &(*all)[i]);
        }
        *n = count;
    }
    drop_reply(self);
    return rc;
}

int
drover_dataset_rm(drover_t *self,
                  const char *name,
                  uint32_t version,
                  unsigned *removed,
                  drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DATASET_RM, rid);
    dv_msgw_str(w, "name", name);
    if (version) {
        dv_msgw_uint(w, "version", version);
    }
    int rc = request(self, w, rid, NULL, 0, DV_MSG_OK, deadline_of(10000), err);
    if (rc == 0 && removed) {
        *removed = (unsigned)obj_uint(reply_root(self), "removed");
    }
    drop_reply(self);
    return rc;
}

int
drover_dataset_share(drover_t *self,
                     const char *name,
                     const char *const *readers,
                     size_t n,
                     drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DATASET_SHARE, rid);
    dv_msgw_str(w, "name", name);
    dv_msgw_strs(w, "readers", readers, n);
    int rc = request(self, w, rid, NULL, 0, DV_MSG_OK, deadline_of(10000), err);
    drop_reply(self);
    return rc;
}

int
drover_dataset_get(drover_t *self,
                   const char *name,
                   uint32_t version,
                   drover_dataset_t *out,
                   drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DATASET_GET, rid);
    dv_msgw_str(w, "name", name);
    if (version) {
        dv_msgw_uint(w, "version", version);
    }
    int rc =
        request(self, w, rid, NULL, 0, DV_MSG_DATASET, deadline_of(10000), err);
    if (rc == 0) {
        dataset_from_obj(reply_root(self), out);
    }
    drop_reply(self);
    return rc;
}
