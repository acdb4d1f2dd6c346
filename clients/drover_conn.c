// drover_conn — libdrover's connection (see drover.h, drover_int.h).
//
// Model: one DEALER socket. Every request gets a fresh request id (rid);
// submits are remembered in a hash table by rid until their result comes
// back (the broker pushes a job's result with the submit's rid). Blocking
// calls send a request and pump the socket until the reply with their rid
// arrives; results and refusals for other requests met on the way are
// dispatched as usual (async callbacks run only from drover_poll, so a
// blocking call never re-enters user code: their results queue up).

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>
#include <zmq.h>

#include "drover.h"
#include "drover_int.h"
#include "dv_addr.h"
#include "dv_err.h"
#include "dv_hash.h"
#include "dv_keys.h"
#include "dv_mem.h"
#include "dv_msgpack.h"
#include "dv_proto.h"
#include "dv_wire.h"

#define HWM 1000000 // queued messages per direction: async bursts

const char *
drover_err_name(int code)
{
    return dv_err_name(code);
}

int
drv_set_err(drover_error_t *err, const dv_error_t *e)
{
    if (err) {
        err->code = e->code;
        snprintf(err->text, sizeof err->text, "%s", e->text);
    }
    return e->code;
}

int64_t
drv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// ------------------------------------------------------------- requests

static size_t
bucket_of(const drover_t *self, uint64_t rid)
{
    return dv_hash_slot(rid, self->n_buckets);
}

void
drv_req_add(drover_t *self, req_t *r)
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

void
drv_req_remove(drover_t *self, req_t *r)
{
    for (req_t **p = &self->buckets[bucket_of(self, r->rid)]; *p;
         p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            self->n_reqs--;
            if (r->orphan) {
                self->n_orphans--;
            }
            free(r->resend);
            free(r->resend_frame);
            free(r->queue);
            free(r->consumer);
            drover_result_destroy(&r->result);
            drover_result_destroy(&r->ready);
            free(r);
            return;
        }
    }
}

// ------------------------------------------------------------- the socket

void
drv_send_msg(drover_t *self, dv_msgw_t *w, const dv_frame_t *frames, size_t n)
{
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_wire_send(self->sock, NULL, 0, h, len, frames, n);
    self->sends++;
    dv_msgw_destroy(&w);
}

void
drv_send_adopt(drover_t *self, dv_msgw_t *w, void *data, size_t len)
{
    zmq_msg_t frame;
    size_t hl = 0;
    const uint8_t *h = dv_msgw_bytes(w, &hl);
    if (dv_wire_msg_adopt(&frame, data, len) == 0) { // (freed data if not)
        dv_wire_send_msgs(self->sock, NULL, 0, h, hl, &frame, 1);
        self->sends++;
    }
    dv_msgw_destroy(&w);
}

void
drv_drop_reply(drover_t *self)
{
    dv_msg_destroy(&self->reply);
    if (self->have_reply_wire) {
        dv_wire_msg_close(&self->reply_wire);
        self->have_reply_wire = false;
    }
}

// The items of array field key of the current reply (NULL and *n 0 when
// it has none).
const msgpack_object *
drv_reply_array(const drover_t *self, const char *key, size_t *n)
{
    const msgpack_object *a = dv_msg_get(self->reply, key);
    bool ok = a && a->type == MSGPACK_OBJECT_ARRAY;
    *n = ok ? a->via.array.size : 0;
    return ok ? a->via.array.ptr : NULL;
}

void *
drv_reply_list(const drover_t *self,
               const char *key,
               size_t item_size,
               drv_item_fn *fill,
               size_t *n)
{
    const msgpack_object *a = drv_reply_array(self, key, n);
    unsigned char *v = dv_calloc(*n ? *n : 1, item_size);
    for (size_t i = 0; i < *n; i++) {
        fill(&a[i], v + i * item_size);
    }
    return v;
}

// A reply's `next` packed (to send back as `from`), or NULL when it has
// none. Caller frees.
static uint8_t *
page_next(const drover_t *self, size_t *len, uint64_t *as_uint)
{
    const msgpack_object *next = dv_msgpack_get(drv_reply_root(self), "next");
    *as_uint = next && next->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                   ? next->via.u64
                   : 0;
    if (!next) {
        return NULL;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *next);
    *len = sb.size;
    return (uint8_t *)sb.data; // malloc'd by msgpack_sbuffer: free() it
}

int
drv_request_list(drover_t *self,
                 const drv_list_t *list,
                 void **items,
                 size_t *n,
                 uint64_t *next_uint,
                 drover_error_t *err)
{
    const size_t size = list->item_size, max = list->max;
    unsigned char *v = NULL;
    size_t have = 0, from_len = 0;
    uint8_t *from = NULL;
    uint64_t last = 0;
    int rc;
    for (;;) {
        uint64_t rid = ++self->next_rid;
        dv_msgw_t *w = dv_msgw_new(list->type, rid);
        if (list->fields) {
            list->fields(w, list->arg, have);
        }
        if (from) {
            dv_msgw_key(w, "from");
            dv_msgw_v_raw(w, from, from_len);
        } else if (list->from) {
            dv_msgw_uint(w, "from", list->from);
        }
        rc = drv_request(self, w, rid, NULL, 0, list->want,
                         drv_deadline_of(10000), err);
        if (rc) {
            drv_drop_reply(self);
            break;
        }
        size_t got = 0;
        const msgpack_object *a = drv_reply_array(self, list->key, &got);
        if (max && got > max - have) {
            got = max - have;
        }
        v = dv_realloc(v, (have + got + 1) * size);
        memset(v + have * size, 0, (got + 1) * size);
        for (size_t i = 0; i < got; i++) {
            list->fill(&a[i], v + (have + i) * size);
        }
        have += got;
        size_t len = 0;
        uint8_t *next = page_next(self, &len, &last);
        drv_drop_reply(self);
        // The end: no `next`, enough read, or a page that moved nothing on
        // (empty, or naming the same start again): never ask forever.
        bool same =
            next && from && len == from_len && memcmp(next, from, len) == 0;
        free(from);
        from = next;
        from_len = len;
        if (!next || (max && have >= max) || same || got == 0) {
            break;
        }
    }
    free(from);
    if (rc) {
        for (size_t i = 0; list->item_free && i < have; i++) {
            list->item_free(v + i * size);
        }
        free(v);
        *items = NULL;
        *n = 0;
        last = 0;
    } else {
        *items = v;
        *n = have;
    }
    if (next_uint) {
        *next_uint = last;
    }
    return rc;
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

// A submit's `result` or refusal (m: `result` or `error`) for request r:
// to its callback (async) or its waiter.
static void
deliver(drover_t *self, req_t *r, const dv_msg_t *m)
{
    drover_result_t *res;
    bool refused = dv_msg_type(m) == DV_MSG_ERROR;
    if (!refused) {
        res = drv_result_from(m);
    } else {
        int code = DV_EFORMAT;
        char text[DV_ERROR_TEXT_MAX] = "";
        dv_error_t e = {0};
        dv_msg_error(m, &code, text, sizeof text, &e);
        res = drv_refused(code, text);
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
        if (refused) {
            r->job = 0;
        }
    }
}

void
drv_req_orphan(drover_t *self, req_t *r)
{
    if (!r->orphan) {
        r->orphan = true;
        self->n_orphans++;
    }
    r->poll_at_ms = drv_now_ms();
    r->poll_pause_ms = 5;
}

// Request r's job was accepted as job (duplicate: an earlier submit's, whose
// result is not pushed on this rid).
static void
accepted(drover_t *self, req_t *r, uint64_t job, bool duplicate)
{
    r->job = job;
    free(r->resend);
    free(r->resend_frame);
    r->resend = r->resend_frame = NULL;
    if (duplicate && !r->ack_only && !r->stream) {
        drv_req_orphan(self, r);
    }
    if (r->ack_only && !r->ready) {
        drover_result_t *res = dv_calloc(1, sizeof *res);
        res->job = r->job;
        res->ok = true;
        ready_push(self, r, res);
    }
}

// `accepted_many` (1.4): [rid, job] pairs, each an `accepted`.
static void
take_accepted(drover_t *self, const dv_msg_t *m)
{
    const msgpack_object *list = dv_msg_get(m, "accepted");
    if (!list || list->type != MSGPACK_OBJECT_ARRAY) {
        return; // the broker's bug: nothing to act on
    }
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object *p = &list->via.array.ptr[i];
        uint64_t rid = 0, job = 0;
        if (p->type != MSGPACK_OBJECT_ARRAY || p->via.array.size != 2 ||
            !dv_msgpack_uint(&p->via.array.ptr[0], &rid) ||
            !dv_msgpack_uint(&p->via.array.ptr[1], &job)) {
            return;
        }
        req_t *r = req_find(self, rid);
        if (r) {
            accepted(self, r, job, false);
        }
    }
}

// `results` (1.4): several results in one message, each a `result`'s
// fields with its rid and its frames' lengths (they lie one after another
// in frame 1). Each goes where a `result` with that rid would.
static void
take_results(drover_t *self, const dv_msg_t *m)
{
    const msgpack_object *list = dv_msg_get(m, "results");
    const dv_frame_t *all = dv_msg_frame(m, 1);
    size_t total = all ? all->len : 0, at = 0;
    if (!list || list->type != MSGPACK_OBJECT_ARRAY) {
        return; // the broker's bug: nothing to act on
    }
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object *o = &list->via.array.ptr[i];
        const msgpack_object *fl = dv_msgpack_get(o, "frames");
        dv_frame_t frames[DV_MAX_FRAMES];
        size_t n = 0;
        bool ok = fl && fl->type == MSGPACK_OBJECT_ARRAY &&
                  fl->via.array.size <= DV_MAX_FRAMES;
        for (uint32_t k = 0; ok && k < fl->via.array.size; k++) {
            uint64_t len = 0;
            ok = dv_msgpack_uint(&fl->via.array.ptr[k], &len) &&
                 len <= total - at;
            if (ok) {
                frames[n++] = (dv_frame_t){all->data + at, (size_t)len};
                at += len;
            }
        }
        dv_msg_t *one = NULL;
        dv_error_t e = {0};
        if (!ok || dv_msg_view(&one, m, o, DV_MSG_RESULT, frames, n, &e)) {
            return; // the rest cannot be told apart
        }
        req_t *r = req_find(self, dv_msg_rid(one));
        if (r && !r->stream) {
            deliver(self, r, one);
        }
        dv_msg_destroy(&one);
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
    if (self->n_eps > 1 && drv_group_saw(self, m)) {
        dv_msg_destroy(&m); // DV_ENOTLEADER: sent again to the leader
        dv_wire_msg_close(in);
        return false;
    }
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
    if (r && r->orphan && (t == DV_MSG_RESULT || t == DV_MSG_ERROR)) {
        // The answer to drv_orphans_poll's result_get.
        int code = 0;
        char text[DV_ERROR_TEXT_MAX] = "";
        if (t == DV_MSG_ERROR) {
            dv_msg_error(m, &code, text, sizeof text, &e);
        }
        if (code == DV_ENOENT && strstr(text, "not finished")) {
            r->poll_at_ms = drv_now_ms() + r->poll_pause_ms;
            r->poll_pause_ms =
                r->poll_pause_ms < 200 ? r->poll_pause_ms * 2 : 200;
        } else {
            r->orphan = false;
            self->n_orphans--;
            deliver(self, r, m);
        }
    } else if (r && t == DV_MSG_ACCEPTED) {
        uint64_t job = 0;
        bool dup = false;
        dv_msg_uint(m, "job", &job, &e);
        dv_msg_bool_or(m, "duplicate", false, &dup, &e);
        accepted(self, r, job, dup);
    } else if (t == DV_MSG_ACCEPTED_MANY) {
        take_accepted(self, m);
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
            ev->res = drv_result_from(m);
            if (self->events_tail) {
                self->events_tail->next = ev;
            } else {
                self->events_head = ev;
            }
            self->events_tail = ev;
        }
    } else if (r && (t == DV_MSG_RESULT || t == DV_MSG_ERROR)) {
        deliver(self, r, m);
    } else if (t == DV_MSG_RESULTS) {
        take_results(self, m);
    }
    dv_msg_destroy(&m);
    dv_wire_msg_close(in);
    return false;
}

static bool
have_reply(const drover_t *self, const void *arg)
{
    (void)arg;
    return self->reply != NULL;
}

bool
drv_have_result(const drover_t *self, const void *arg)
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
bool
drv_monitor_failed(drover_t *self)
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
        } else if (event == ZMQ_EVENT_DISCONNECTED ||
                   event == ZMQ_EVENT_CONNECT_RETRIED) {
            self->dropped = true; // only a group's monitor asks for these
        }
    }
}

// Wait up to wait ms (<0: for ever) for the lone socket's ZMQ_FD, right
// after a receive found nothing and before anything else used the socket:
// that receive emptied libzmq's mailbox (process_commands), so the next
// command (a message arriving, say) signals ZMQ_FD. zmq_poll would ask
// ZMQ_EVENTS before and after its poll() -- each ask a poll() and a
// getpid() in libzmq -- and poll twice: six system calls for one wait,
// against one here (the receive that follows asks once).
static int
wait_fd(drover_t *self, long wait)
{
    int fd = -1;
    size_t size = sizeof fd;
    if (zmq_getsockopt(self->sock, ZMQ_FD, &fd, &size) != 0) {
        return -1;
    }
    int ms = wait < 0 ? -1 : wait > INT_MAX ? INT_MAX : (int)wait;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) < 0 && errno != EINTR ? -1 : 0;
}

// Receive and handle messages until done(self, arg) holds (checked after
// each batch; NULL: one batch of what is waiting) or the deadline (ms on
// the monotonic clock; <0: none) passes. Returns 0, DV_ETIMEDOUT or DV_EIO.
int
drv_pump(drover_t *self, int64_t deadline, drv_done_fn *done, const void *arg)
{
    for (;;) {
        dv_wire_msg_t in;
        int got;
        while ((got = dv_wire_recv(self->sock, false, &in)) == 1) {
            if (handle(self, &in) && done == have_reply) {
                return 0;
            }
        }
        uint64_t sends = self->sends; // none since: ZMQ_FD will tell
        if (got < 0 && self->n_eps > 1) {
            self->failover_due = true;
        } else if (got < 0) {
            return DV_EIO;
        }
        if (self->n_eps > 1) {
            int rc = drv_group_check(self, deadline);
            if (rc) {
                return rc;
            }
            if (self->want_lost && done == have_reply) {
                return DV_EIO;
            }
        }
        if (!done || done(self, arg)) {
            return 0;
        }
        int64_t left = deadline < 0 ? -1 : deadline - drv_now_ms();
        if (deadline >= 0 && left <= 0) {
            return DV_ETIMEDOUT;
        }
        long wait = (long)left;
        if (self->n_orphans) {
            long next = drv_orphans_poll(self);
            wait = next >= 0 && (wait < 0 || next < wait) ? next : wait;
        }
        if (self->n_eps > 1 && (wait < 0 || wait > 100)) {
            wait = 100; // silence is measured between polls
        }
        if (!self->monitor && self->n_eps <= 1) {
            if (self->sends == sends && wait_fd(self, wait) != 0) {
                return DV_EIO;
            }
            continue; // (a send since the receive: receive again first)
        }
        zmq_pollitem_t items[2] = {{self->sock, 0, ZMQ_POLLIN, 0},
                                   {self->monitor, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, self->monitor ? 2 : 1, wait) < 0 &&
            zmq_errno() != EINTR) {
            return DV_EIO;
        }
        if (self->monitor && drv_monitor_failed(self)) {
            return DV_EPERM;
        }
    }
}

int64_t
drv_deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : drv_now_ms() + timeout_ms;
}

// Send w (and frames) as a request and wait for its reply, which must be of
// type want (an `error` reply becomes its error). The reply stays in
// self->reply until the next request.
int
drv_request(drover_t *self,
            dv_msgw_t *w,
            uint64_t rid,
            const dv_frame_t *frames,
            size_t n,
            dv_msg_type_t want,
            int64_t deadline,
            drover_error_t *err)
{
    drv_drop_reply(self);
    self->want_rid = rid;
    if (self->n_eps > 1) { // kept to send again to a new leader
        size_t len = 0;
        const uint8_t *h = dv_msgw_bytes(w, &len);
        self->want_copy = dv_malloc(len);
        memcpy(self->want_copy, h, len);
        self->want_copy_len = len;
        self->want_frames = frames;
        self->want_n = n;
        self->want_notleader = self->want_lost = false;
    }
    drv_send_msg(self, w, frames, n);
    dv_error_t e = {0};
    int rc = drv_pump(self, deadline, have_reply, NULL);
    self->want_rid = 0;
    bool lost = self->want_lost;
    if (self->want_copy) {
        free(self->want_copy);
        self->want_copy = NULL;
        self->want_frames = NULL;
        self->want_lost = false;
    }
    if (rc == DV_EIO && lost) {
        dv_errorf(&e, rc,
                  "the broker group's leader changed before this request "
                  "was answered: whether it took effect is unknown (check, "
                  "then retry); now connected to %s",
                  self->endpoint);
    } else if (rc == DV_ETIMEDOUT) {
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
    return rc ? drv_set_err(err, &e) : 0;
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
        memcpy(self->server_key, server, 32);
        memcpy(self->public_key, k.public_key, 32);
        memcpy(self->secret_key, k.secret_key, 32);
        self->curve = true;
    }
    dv_key_clear(&k);
    return rc;
}

int
drv_sock_open(drover_t *self, const char *ep, dv_error_t *e)
{
    if (self->sock) {
        // Stop the monitor first: libzmq keeps its own PAIR socket (and
        // the descriptors behind it) until told, and a group's client opens
        // a socket per member it tries.
        zmq_socket_monitor(self->sock, NULL, 0);
    }
    if (self->monitor) {
        zmq_close(self->monitor);
        self->monitor = NULL;
    }
    if (self->sock) { // a group member left: what it had queued goes too
        int zero = 0;
        zmq_setsockopt(self->sock, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(self->sock);
        self->sock = NULL;
    }
    snprintf(self->endpoint, sizeof self->endpoint, "%s", ep);
    self->dropped = false;
    self->hs_failed = 0;
    self->sock = zmq_socket(self->ctx, ZMQ_DEALER);
    if (!self->sock) { // out of sockets or descriptors
        return dv_errorf(e, DV_EIO, "cannot open a socket for %s: %s", ep,
                         zmq_strerror(zmq_errno()));
    }
    int hwm = HWM, linger = 200;
    int64_t maxmsg = (int64_t)DV_MAX_FRAME_BYTES;
    zmq_setsockopt(self->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (self->curve) {
        zmq_setsockopt(self->sock, ZMQ_CURVE_SERVERKEY, self->server_key, 32);
        zmq_setsockopt(self->sock, ZMQ_CURVE_PUBLICKEY, self->public_key, 32);
        zmq_setsockopt(self->sock, ZMQ_CURVE_SECRETKEY, self->secret_key, 32);
    }
    // Watch the handshake while connecting: a refusal ends the wait. A
    // group's socket is watched for as long as it lives: a dropped
    // connection (the member died) or a refused one means moving on.
    int events = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    if (self->n_eps > 1) {
        events |= ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED;
    }
    // A name no other connection of the process's shared context uses, now
    // or while a closed one's is still being released (an address and a
    // per-connection count could both repeat).
    static unsigned long next_mon;
    char mon[80];
    snprintf(mon, sizeof mon, "inproc://drover-monitor-%lu",
             __atomic_fetch_add(&next_mon, 1, __ATOMIC_RELAXED));
    if (zmq_socket_monitor(self->sock, mon, events) == 0) {
        self->monitor = zmq_socket(self->ctx, ZMQ_PAIR);
        if (zmq_connect(self->monitor, mon) != 0) {
            zmq_close(self->monitor);
            self->monitor = NULL;
        }
    }
    if (zmq_connect(self->sock, ep) != 0) {
        int zerr = zmq_errno();
        char hint[200];
        return dv_errorf(e, DV_EINVAL, "cannot connect to %s: %s%s", ep,
                         zmq_strerror(zerr),
                         dv_addr_hint(ep, zerr, false, hint, sizeof hint));
    }
    self->last_rx_ms = drv_now_ms();
    self->probe_sent_ms = 0;
    return 0;
}

// One ZeroMQ context for every connection of the process, as czmq's zsys
// and pyzmq's Context.instance() do: one I/O thread in all rather than one
// per connection (a front end with 32 connections on 2 cores ran 32). The
// first drover_connect creates it, the last drover_destroy terminates it; a
// child after fork() starts its own (a context must not cross a fork, and
// the parent's is left alone).
static pthread_mutex_t s_ctx_mu = PTHREAD_MUTEX_INITIALIZER;
static void *s_ctx;       // the shared context (NULL: none yet)
static size_t s_ctx_refs; // connections using it
static pid_t s_ctx_pid;   // the process that made it

static void *
ctx_take(void)
{
    pthread_mutex_lock(&s_ctx_mu);
    if (s_ctx && s_ctx_pid != getpid()) { // forked: not ours to use
        s_ctx = NULL;
        s_ctx_refs = 0;
    }
    if (!s_ctx) {
        s_ctx = zmq_ctx_new();
        s_ctx_pid = getpid();
    }
    void *ctx = s_ctx;
    s_ctx_refs += ctx != NULL;
    pthread_mutex_unlock(&s_ctx_mu);
    return ctx;
}

static void
ctx_give(void *ctx)
{
    pthread_mutex_lock(&s_ctx_mu);
    bool last = ctx && ctx == s_ctx && --s_ctx_refs == 0;
    if (last) {
        s_ctx = NULL;
    }
    pthread_mutex_unlock(&s_ctx_mu);
    if (last) {
        zmq_ctx_term(ctx); // waits for the sockets' linger, as before
    }
}

// Why the handshake failed, from the monitor's event.
static int
handshake_error(const drover_t *self, dv_error_t *e)
{
    if (self->hs_failed == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH &&
        !self->key_id[0]) { // plain mode authenticates nobody: only limits
        return dv_errorf(e, DV_ELIMIT,
                         "the broker at %s refused the connection (ZAP "
                         "status %d): it holds as many connections as its "
                         "--max-connections (or --max-worker-connections) "
                         "allows; its log says which",
                         self->endpoint, self->hs_status);
    }
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
    self->ctx = ctx_take();
    dv_error_t e = {0};
    if (drv_group_parse(self, endpoint, &e) ||
        ((key_file || broker_key) &&
         use_keys(self, key_file, broker_key, &e))) {
        drover_destroy(&self);
        return drv_set_err(err, &e);
    }
    if (self->n_eps > 1) { // a broker group: find its leader
        int rc = drv_group_reach(self, true, drv_deadline_of(timeout_ms), &e);
        if (rc == DV_EPERM && self->hs_failed) {
            rc = handshake_error(self, &e); // DV_ELIMIT for the limits
        } else if (rc == DV_ETIMEDOUT) {
            dv_errorf(&e, rc,
                      "no leader of the broker group %s answered within %d "
                      "ms (are its members running? is a majority up?)",
                      endpoint, timeout_ms);
        }
        if (rc) {
            drover_destroy(&self);
            return drv_set_err(err, &e);
        }
        *out = self;
        return 0;
    }
    if (drv_sock_open(self, self->eps[0], &e)) {
        drover_destroy(&self);
        return drv_set_err(err, &e);
    }
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_HELLO, rid);
    dv_msgw_str(w, "client", "libdrover " DV_VERSION_STRING);
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_WELCOME,
                         drv_deadline_of(timeout_ms), err);
    if (rc == DV_EPERM && self->hs_failed) {
        rc = handshake_error(self, &e); // DV_ELIMIT for the limits
        drv_set_err(err, &e);
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
    drv_drop_reply(self);
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
    drv_drop_reply(self);
    for (size_t b = 0; b < self->n_buckets; b++) {
        while (self->buckets[b]) {
            drv_req_remove(self, self->buckets[b]);
        }
    }
    while (self->events_head) {
        event_t *ev = self->events_head;
        self->events_head = ev->next;
        drover_result_destroy(&ev->res);
        free(ev);
    }

    free(self->buckets);
    free(self->want_copy);
    for (size_t i = 0; i < self->n_eps; i++) {
        free(self->eps[i]);
    }
    free(self->eps);
    memset(self->secret_key, 0, sizeof self->secret_key);
    if (self->monitor) {
        zmq_close(self->monitor);
    }
    if (self->sock) {
        zmq_close(self->sock);
    }
    ctx_give(self->ctx);
    free(self);
    *self_p = NULL;
}

const char *
drover_endpoint(const drover_t *self)
{
    return self->endpoint;
}

int
drover_poll(drover_t *self, int timeout_ms, drover_error_t *err)
{
    int rc = drv_pump(self, drv_deadline_of(timeout_ms),
                      timeout_ms == 0 ? NULL : have_ready, NULL);
    if (rc && rc != DV_ETIMEDOUT) {
        dv_error_t e;
        if (rc == DV_EIO) {
            dv_errorf(&e, rc, "socket error: %s", zmq_strerror(zmq_errno()));
        } else {
            dv_errorf(&e, rc, "%s while reaching the broker%s: %s",
                      drover_err_name(rc),
                      self->n_eps > 1 ? " group's leader" : "",
                      self->group_why);
        }
        return drv_set_err(err, &e);
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
        drv_req_remove(self, r);
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

// The root map of the current reply.
const msgpack_object *
drv_reply_root(const drover_t *self)
{
    return dv_msg_root(self->reply);
}
