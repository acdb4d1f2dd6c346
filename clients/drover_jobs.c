// drover_jobs — jobs through libdrover (see drover.h): submit (one, many,
// blocking or async), wait and run, result streams (follow, ack,
// unfollow; consumers: list, forget), job info, cancel and list, dead
// letters, and train (a job with progress).
//
// A submit is a req_t in the connection's requests table (drover_conn.c)
// until its result arrives; blocking calls pump the socket until it does.

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "drover.h"
#include "drover_int.h"
#include "dv_err.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_msgpack.h"
#include "dv_prep.h"
#include "dv_proto.h"
#include "dv_train.h"

// ------------------------------------------------------------------ jobs

// The submit message for job (and its payload frame in *frame, which the
// caller frees with *owned). To a broker group (an endpoint list) a job
// without an idempotency key gets a fresh one, so that sending it again to
// a new leader never runs it twice. Returns 0 or DV_EINVAL/DV_EMSGSIZE.
static int
build_submit(const drover_t *self,
             const drover_job_t *job,
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
    } else if (self->n_eps > 1) {
        char key[33];
        drv_group_key(key);
        dv_msgw_str(w, "idempotency_key", key);
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
        uint8_t *buf = dv_wire_buf_get(n * 4); // free() or adopt
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
    int rc = build_submit(self, job, rid, &w, &frame, &owned, &e);
    if (rc) {
        return drv_set_err(err, &e);
    }
    req_t *r = dv_calloc(1, sizeof *r);
    r->rid = rid;
    drv_req_add(self, r);
    rc = drv_request(self, w, rid, &frame, 1, DV_MSG_ACCEPTED,
                     drv_deadline_of(timeout_ms), err);
    free(owned);
    if (rc == 0) {
        rc = dv_msg_uint(self->reply, "job", &r->job, &e);
        if (rc) {
            drv_set_err(err, &e);
        }
        bool dup = false;
        if (rc == 0 &&
            dv_msg_bool_or(self->reply, "duplicate", false, &dup, &e) == 0 &&
            dup) {
            drv_req_orphan(self, r); // its result is not pushed here
        }
    }
    drv_drop_reply(self);
    if (rc) {
        drv_req_remove(self, r);
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
    int64_t deadline = drv_deadline_of(timeout_ms);
    req_t *r = req_by_job(self, job_id);
    dv_error_t e = {0};
    if (r) {
        // Submitted here: the broker pushes the result to us.
        while (!r->result) {
            int rc = drv_pump(self, deadline, drv_have_result, r);
            if (rc == DV_ETIMEDOUT) {
                return drv_set_err(
                    err, &(dv_error_t){DV_ETIMEDOUT,
                                       "the job has not finished in time"});
            }
            if (rc) {
                dv_errorf(&e, rc, "socket error");
                return drv_set_err(err, &e);
            }
        }
        *out = r->result;
        r->result = NULL;
        drv_req_remove(self, r);
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
        int64_t ask = drv_now_ms() + 5000;
        int rc =
            drv_request(self, w, rid, NULL, 0, DV_MSG_RESULT,
                        deadline < 0 || deadline > ask ? deadline : ask, &rerr);
        if (rc == 0) {
            *out = drv_result_from(self->reply);
            drv_drop_reply(self);
            return 0;
        }
        drv_drop_reply(self);
        if (rc != DV_ENOENT || !strstr(rerr.text, "not finished")) {
            if (err) {
                *err = rerr;
            }
            return rc;
        }
        if (deadline >= 0 && drv_now_ms() + pause_ms > deadline) {
            return drv_set_err(
                err, &(dv_error_t){DV_ETIMEDOUT,
                                   "the job has not finished in time"});
        }
        struct timespec ts = {0, (long)pause_ms * 1000000L};
        nanosleep(&ts, NULL);
        pause_ms = pause_ms < 200 ? pause_ms * 2 : 200;
    }
}

// drover_wait for job id with what is left until deadline (from
// drv_deadline_of; <0: none). A deadline already past polls once.
static int
wait_until(drover_t *self,
           uint64_t id,
           int64_t deadline,
           drover_result_t **out,
           drover_error_t *err)
{
    int left = deadline < 0 ? -1 : (int)(deadline - drv_now_ms());
    return drover_wait(self, id, left < 0 && deadline >= 0 ? 0 : left, out,
                       err);
}

int
drover_run(drover_t *self,
           const drover_job_t *job,
           int timeout_ms,
           drover_result_t **out,
           drover_error_t *err)
{
    int64_t deadline = drv_deadline_of(timeout_ms);
    uint64_t id = 0;
    int rc = drover_submit(self, job, timeout_ms, &id, err);
    return rc ? rc : wait_until(self, id, deadline, out, err);
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
        return drv_set_err(err,
                           &(dv_error_t){DV_EINVAL, "a callback is needed"});
    }
    int rc = build_submit(self, job, rid, &w, &frame, &owned, &e);
    if (rc) {
        return drv_set_err(err, &e);
    }
    req_t *r = dv_calloc(1, sizeof *r);
    r->rid = rid;
    r->fn = fn;
    r->arg = arg;
    r->ack_only = ack_only;
    drv_req_add(self, r);
    self->n_async++;
    if (self->n_eps > 1) {
        drv_group_keep(self, r, w, &frame);
    }

    if (owned) { // an input converted for the wire: ZeroMQ takes it
        drv_send_adopt(self, w, owned, frame.len);
    } else {
        drv_send_msg(self, w, &frame, 1);
    }
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
            drv_send_msg(self, ws[i], &frames[i], 1);
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
        uint8_t *all = dv_wire_buf_get(fb);
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
        drv_send_adopt(self, m, all, fb); // ZeroMQ takes it: no copy
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
        rc = build_submit(self, &jobs[i], rids[i], &ws[i], &frames[i],
                          &owned[i], &e);
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
        drv_req_add(self, r);
        if (self->n_eps > 1) {
            drv_group_keep(self, r, ws[i], &frames[i]);
        }
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
    return rc ? drv_set_err(err, &e) : 0;
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
        return drv_set_err(err,
                           &(dv_error_t){DV_EINVAL, "a callback is needed"});
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
    rc = drv_pump(self, drv_deadline_of(timeout_ms), all_answered, &many);
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
        drv_req_remove(self, r); // refused, or no answer in time
    }
    free(reqs);
    return e.code ? drv_set_err(err, &e) : 0;
}

// ---------------------------------------------------------- result streams

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
        return drv_set_err(err, &(dv_error_t){DV_EINVAL,
                                              "follow: queue, consumer and a "
                                              "callback are needed"});
    }
    if (follow_req(self)) {
        return drv_set_err(
            err, &(dv_error_t){DV_EINVAL, "this connection follows a stream "
                                          "already: one per connection"});
    }
    uint64_t rid = ++self->next_rid;
    req_t *r = dv_calloc(1, sizeof *r);
    r->rid = rid;
    r->fn = fn;
    r->arg = arg;
    r->stream = true;
    r->queue = dv_strdup(queue);
    r->consumer = dv_strdup(consumer);
    drv_req_add(self, r);
    dv_msgw_t *w = dv_msgw_new(DV_MSG_FOLLOW, rid);
    dv_msgw_str(w, "queue", queue);
    dv_msgw_str(w, "consumer", consumer);
    dv_msgw_uint(w, "window", window ? window : 100);
    dv_msgw_str(w, "from", from_latest ? "latest" : "earliest");
    if (self->n_eps > 1) {
        // A group: the follow goes again to each new leader, which resumes
        // from the position acknowledged (stored, so replicated).
        size_t len = 0;
        const uint8_t *h = dv_msgw_bytes(w, &len);
        r->resend = dv_malloc(len);
        memcpy(r->resend, h, len);
        r->resend_len = len;
    }
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_OK,
                         drv_deadline_of(10000), err);
    if (rc == 0 && acked) {
        dv_error_t e;
        *acked = 0;
        dv_msg_uint(self->reply, "acked", acked, &e);
    }
    drv_drop_reply(self);
    if (rc) {
        drv_req_remove(self, r);
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
        drv_send_msg(self, w, NULL, 0);
        return 0;
    }
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_OK,
                         drv_deadline_of(10000), err);
    drv_drop_reply(self);
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
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_OK,
                         drv_deadline_of(10000), err);
    drv_drop_reply(self);
    req_t *r = follow_req(self);
    if (r) {
        drv_req_remove(self, r);
    }
    return rc;
}

// ------------------------------------------------------------- consumers

// One item of a `consumers` reply.
static void
consumer_from_obj(const msgpack_object *o, void *item)
{
    drover_consumer_t *c = item;
    drv_copy_obj_str(dv_msgpack_get(o, "queue"), c->queue, sizeof c->queue);
    drv_copy_obj_str(dv_msgpack_get(o, "consumer"), c->consumer,
                     sizeof c->consumer);
    c->acked = drv_obj_uint(o, "acked");
    c->last = drv_obj_uint(o, "last");
    const msgpack_object *f = dv_msgpack_get(o, "followed");
    c->followed = f && f->type == MSGPACK_OBJECT_BOOLEAN && f->via.boolean;
    // window and in_flight are at most DV_MAX_FOLLOW_WINDOW on the wire; a
    // larger value from a peer saturates rather than wraps.
    uint64_t v = drv_obj_uint(o, "window");
    c->window = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    v = drv_obj_uint(o, "in_flight");
    c->in_flight = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    drv_copy_obj_str(dv_msgpack_get(o, "owner"), c->owner, sizeof c->owner);
}

// consumer_list's fields: a queue (NULL: all).
static void
consumer_list_fields(dv_msgw_t *w, const void *arg, size_t have)
{
    (void)have;
    const char *queue = arg;
    if (queue) {
        dv_msgw_str(w, "queue", queue);
    }
}

int
drover_consumer_list(drover_t *self,
                     const char *queue,
                     drover_consumer_t **consumers,
                     size_t *n,
                     drover_error_t *err)
{
    const drv_list_t list = {.type = DV_MSG_CONSUMER_LIST,
                             .fields = consumer_list_fields,
                             .arg = queue,
                             .want = DV_MSG_CONSUMERS,
                             .key = "consumers",
                             .item_size = sizeof **consumers,
                             .fill = consumer_from_obj};
    void *v = NULL;
    int rc = drv_request_list(self, &list, &v, n, NULL, err);
    *consumers = v;
    return rc;
}

int
drover_consumer_forget(drover_t *self,
                       const char *queue,
                       const char *consumer,
                       uint64_t *acked,
                       drover_error_t *err)
{
    if (!queue || !*queue || !consumer || !*consumer) {
        return drv_set_err(err, &(dv_error_t){DV_EINVAL,
                                              "consumer_forget: a queue and "
                                              "a consumer are needed"});
    }
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_CONSUMER_FORGET, rid);
    dv_msgw_str(w, "queue", queue);
    dv_msgw_str(w, "consumer", consumer);
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_OK,
                         drv_deadline_of(10000), err);
    if (rc == 0 && acked) {
        *acked = drv_obj_uint(drv_reply_root(self), "acked");
    }
    drv_drop_reply(self);
    // Our own follow of it ends too: the broker sends it nothing more, and
    // a group's resend of the follow to a new leader would start the
    // consumer anew.
    req_t *r = follow_req(self);
    if (rc == 0 && r && r->queue && strcmp(r->queue, queue) == 0 &&
        strcmp(r->consumer, consumer) == 0) {
        drv_req_remove(self, r);
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
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_JOB,
                         drv_deadline_of(10000), err);
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
            out->epoch = (uint32_t)drv_obj_uint(pg, "epoch");
            out->epochs = (uint32_t)drv_obj_uint(pg, "epochs");
            dv_msgpack_double(dv_msgpack_get(pg, "loss"), &out->loss);
            out->progress_ms = drv_obj_uint(pg, "ms");
            if (!dv_msgpack_double(dv_msgpack_get(pg, "eval"), &out->eval)) {
                out->eval = NAN;
            }
        }
        drv_copy_obj_str(dv_msg_get(self->reply, "model"), out->model,
                         sizeof out->model);
        drv_copy_obj_str(dv_msg_get(self->reply, "worker"), out->worker,
                         sizeof out->worker);
        dv_msg_uint_or(self->reply, "submitted_unix_ms", 0,
                       &out->submitted_unix_ms, &e);
        dv_msg_uint_or(self->reply, "started_unix_ms", 0, &out->started_unix_ms,
                       &e);
        dv_msg_uint_or(self->reply, "finished_unix_ms", 0,
                       &out->finished_unix_ms, &e);
        const msgpack_object *b = dv_msg_get(self->reply, "batch");
        out->batch_rows = (uint32_t)drv_obj_uint(b, "rows");
        out->batch_jobs = (uint32_t)drv_obj_uint(b, "jobs");
        const msgpack_object *ck = dv_msg_get(self->reply, "checkpoint");
        if (ck && ck->type == MSGPACK_OBJECT_MAP) {
            out->checkpoint_epoch = (uint32_t)drv_obj_uint(ck, "epoch");
            out->checkpoint_bytes = drv_obj_uint(ck, "bytes");
            out->checkpoint_stored_epoch =
                (uint32_t)drv_obj_uint(ck, "stored_epoch");
        }
    }
    drv_drop_reply(self);
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
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_OK,
                         drv_deadline_of(10000), err);
    if (rc == 0 && was) {
        dv_error_t e;
        was[0] = '\0';
        dv_msg_str(self->reply, "was", was, 16, &e);
    }
    drv_drop_reply(self);
    return rc;
}

// One item of a `jobs` reply.
static void
job_info_from_obj(const msgpack_object *o, void *item)
{
    drover_job_info_t *v = item;
    v->job = drv_obj_uint(o, "job");
    v->attempts = (uint32_t)drv_obj_uint(o, "attempts");
    drv_copy_obj_str(dv_msgpack_get(o, "state"), v->state, sizeof v->state);
    drv_copy_obj_str(dv_msgpack_get(o, "queue"), v->queue, sizeof v->queue);
    drv_copy_obj_str(dv_msgpack_get(o, "kind"), v->kind, sizeof v->kind);
    v->priority = drv_obj_int32(o, "priority");
}

// job_list's fields: state, queue, and the limit less what was read.
typedef struct {
    const char *state;
    const char *queue;
    unsigned limit;
} job_query_t;

static void
job_list_fields(dv_msgw_t *w, const void *arg, size_t have)
{
    const job_query_t *q = arg;
    if (q->state) {
        dv_msgw_str(w, "state", q->state);
    }
    if (q->queue) {
        dv_msgw_str(w, "queue", q->queue);
    }
    dv_msgw_uint(w, "limit", q->limit - have);
}

int
drover_job_list_from(drover_t *self,
                     const char *state,
                     const char *queue,
                     unsigned limit,
                     uint64_t from,
                     drover_job_info_t **jobs,
                     size_t *n,
                     uint64_t *next,
                     drover_error_t *err)
{
    job_query_t q = {state, queue, limit ? limit : 100};
    if (q.limit > 10000) {
        q.limit = 10000;
    }
    const drv_list_t list = {.type = DV_MSG_JOB_LIST,
                             .fields = job_list_fields,
                             .arg = &q,
                             .from = from,
                             .want = DV_MSG_JOBS,
                             .key = "jobs",
                             .item_size = sizeof **jobs,
                             .fill = job_info_from_obj,
                             .max = q.limit};
    void *v = NULL;
    int rc = drv_request_list(self, &list, &v, n, next, err);
    *jobs = v;
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
    return drover_job_list_from(self, state, queue, limit, 0, jobs, n, NULL,
                                err);
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

// One item of a `dead_jobs` reply.
static void
dead_from_obj(const msgpack_object *o, void *item)
{
    drover_dead_t *v = item;
    v->job = drv_obj_uint(o, "job");
    drv_copy_obj_str(dv_msgpack_get(o, "queue"), v->queue, sizeof v->queue);
    drv_copy_obj_str(dv_msgpack_get(o, "kind"), v->kind, sizeof v->kind);
    v->attempts = (uint32_t)drv_obj_uint(o, "attempts");
    v->priority = drv_obj_int32(o, "priority");
    v->submitted_ms = drv_obj_uint(o, "submitted_ms");
    v->died_ms = drv_obj_uint(o, "died_ms");
    const msgpack_object *e = dv_msgpack_get(o, "error");
    char name[64];
    drv_copy_obj_str(dv_msgpack_get(e, "name"), name, sizeof name);
    v->code = dv_err_code(name);
    drv_copy_obj_str(dv_msgpack_get(e, "text"), v->text, sizeof v->text);
    drv_errors_from(dv_msgpack_get(o, "errors"), &v->errors, &v->n_errors);
}

// dead_list's fields: one job, or a queue (NULL: all).
typedef struct {
    const char *queue;
    uint64_t job;
} dead_query_t;

static void
dead_list_fields(dv_msgw_t *w, const void *arg, size_t have)
{
    (void)have;
    const dead_query_t *q = arg;
    if (q->job) {
        dv_msgw_uint(w, "job", q->job);
    } else if (q->queue) {
        dv_msgw_str(w, "queue", q->queue);
    }
    dv_msgw_uint(w, "limit", 100000);
}

static void
dead_free(void *item)
{
    free(((drover_dead_t *)item)->errors);
}

int
drover_dead_list(drover_t *self,
                 const char *queue,
                 uint64_t job_id,
                 drover_dead_t **dead,
                 size_t *n,
                 drover_error_t *err)
{
    dead_query_t q = {queue, job_id};
    const drv_list_t list = {.type = DV_MSG_DEAD_LIST,
                             .fields = dead_list_fields,
                             .arg = &q,
                             .want = DV_MSG_DEAD_JOBS,
                             .key = "jobs",
                             .item_size = sizeof **dead,
                             .fill = dead_from_obj,
                             .item_free = dead_free};
    void *v = NULL;
    int rc = drv_request_list(self, &list, &v, n, NULL, err);
    *dead = v;
    return rc;
}

void
drover_dead_free(drover_dead_t **dead, size_t n)
{
    if (!dead || !*dead) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        dead_free(&(*dead)[i]);
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
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_OK,
                         drv_deadline_of(30000), err);
    if (rc == 0) {
        const msgpack_object *root = drv_reply_root(self);
        if (count) {
            *count = (size_t)drv_obj_uint(root, "count");
        }
        const msgpack_object *a = dv_msgpack_get(root, "requeued");
        if (new_job) {
            *new_job =
                a && a->type == MSGPACK_OBJECT_ARRAY && a->via.array.size == 1
                    ? drv_obj_uint(&a->via.array.ptr[0], "new_job")
                    : 0;
        }
    }
    drv_drop_reply(self);
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
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_OK,
                         drv_deadline_of(30000), err);
    if (rc == 0 && count) {
        *count = (size_t)drv_obj_uint(drv_reply_root(self), "purged");
    }
    drv_drop_reply(self);
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
            strcmp(key, "tol") == 0 ||
            strcmp(key, "validation_fraction") == 0) {
            double d = strtod(v, &end);
            ok = ok && !*end && !errno;
            *(strcmp(key, "lr") == 0    ? &h->lr
              : strcmp(key, "l2") == 0  ? &h->l2
              : strcmp(key, "tol") == 0 ? &h->tol
                                        : &h->validation_fraction) = d;
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
        } else if (strcmp(key, "init") == 0) {
            ok = dv_init_parse(v, &h->init) == 0;
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
                             "seed, lr, l2, tol, scale, hidden, init or "
                             "validation_fraction",
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
    int64_t deadline = drv_deadline_of(timeout_ms);
    uint64_t job = 0;
    int rc = drover_train_submit(self, t, timeout_ms, &job, err);
    return rc ? rc : wait_until(self, job, deadline, out, err);
}

int
drover_train_submit(drover_t *self,
                    const drover_train_t *t,
                    int timeout_ms,
                    uint64_t *job_id,
                    drover_error_t *err)
{
    dv_error_t e = {0};
    dv_hyper_t h;
    dv_algo_t algo;
    if (!t->model || !t->algo || (!t->csv && !t->dataset)) {
        return drv_set_err(err, &(dv_error_t){DV_EINVAL,
                                              "train needs model, algo and csv "
                                              "or dataset"});
    }
    if (dv_algo_parse(t->algo, &algo) != 0) {
        return drv_set_err(err, &(dv_error_t){DV_EINVAL,
                                              "algo: ols, gd, ridge, logreg, "
                                              "softmax or mlp"});
    }
    dv_hyper_default(&h, algo);
    if (train_options(t->options, t->n_options, &h, &e) != 0) {
        return drv_set_err(err, &e);
    }
    if (t->csv_len > DV_MAX_FRAME_BYTES) {
        return drv_set_err(err, &(dv_error_t){DV_EMSGSIZE,
                                              "the data set is over the frame "
                                              "limit (256 MiB)"});
    }
    int64_t deadline = drv_deadline_of(timeout_ms);
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
    if (t->schema_change) {
        dv_msgw_key(w, "schema_change");
        dv_msgw_v_bool(w, true);
    }
    if (self->n_eps > 1) { // resent to a new leader: never trained twice
        char key[33];
        drv_group_key(key);
        dv_msgw_str(w, "idempotency_key", key);
    }
    req_t *r = dv_calloc(1, sizeof *r);
    r->rid = rid;
    r->progress = t->progress;
    r->progress_arg = t->progress_arg;
    drv_req_add(self, r);
    dv_frame_t frame = {t->csv ? t->csv : (const void *)"",
                        t->csv ? t->csv_len : 0};
    int rc =
        drv_request(self, w, rid, &frame, 1, DV_MSG_ACCEPTED, deadline, err);
    bool dup = false;
    if (rc == 0 && dv_msg_uint(self->reply, "job", &r->job, &e) != 0) {
        rc = drv_set_err(err, &e);
    } else if (rc == 0 &&
               dv_msg_bool_or(self->reply, "duplicate", false, &dup, &e) == 0 &&
               dup) {
        drv_req_orphan(self, r);
    }
    drv_drop_reply(self);
    if (rc) {
        drv_req_remove(self, r);
        return rc;
    }
    *job_id = r->job;
    return 0;
}
