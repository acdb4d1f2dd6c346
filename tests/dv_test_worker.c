// dv_test_worker — a worker the test plays itself (see dv_test_worker.h).
#include "dv_test_worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <msgpack.h>
#include <zmq.h>

#include "dv_err.h"
#include "dv_mem.h"
#include "dv_msgpack.h"
#include "dv_proto.h"
#include "dv_test_proc.h"
#include "dv_wire.h"

#define MAX_RUNS 256 // runs kept until the test takes them

struct dv_tworker {
    void *ctx, *sock;         // its own ZeroMQ context and DEALER
    int heartbeat_ms;         // send a heartbeat after this long silent
    int64_t sent_ms;          // monotonic ms of the last send
    uint64_t sent_unix_ms;    // unix ms just before the last send
    bool welcomed;            // the broker answered the register
    dv_trun_t runs[MAX_RUNS]; // runs received, not yet taken (FIFO)
    size_t head, n;           // ring of runs: first, count
    uint32_t running;         // runs taken, not answered (for heartbeats)
    size_t run_msgs;          // `run` messages received
    size_t batch_msgs;        // `run_batch` messages received
};

// Keep one run (its input: rows, cols floats at in, or none).
static void
keep(dv_tworker_t *self,
     uint64_t job,
     uint64_t attempt,
     uint64_t rows,
     const uint8_t *in,
     size_t cols)
{
    if (self->n == MAX_RUNS) {
        return;
    }
    dv_trun_t *r = &self->runs[(self->head + self->n++) % MAX_RUNS];
    memset(r, 0, sizeof *r);
    r->job = job;
    r->attempt = (uint32_t)attempt;
    r->rows = (uint32_t)rows;
    r->cols = (uint32_t)cols;
    if (in && rows && cols) {
        dv_floats_from_wire(&r->first, in, 1);
    }
}

// A run_batch: each job kept as its own run, with its slice of the input.
static void
take_batch(dv_tworker_t *self, const dv_msg_t *m)
{
    const msgpack_object *list = dv_msg_get(m, "jobs");
    const dv_frame_t *f = NULL;
    size_t rows = 0, cols = 0;
    dv_error_t err = {0};
    if (!list || list->type != MSGPACK_OBJECT_ARRAY ||
        dv_msg_tensor_desc(m, "input", DV_MAX_INFER_ROWS, &f, &rows, &cols,
                           &err) != 0) {
        fprintf(stderr, "  test worker: bad run_batch %s\n", err.text);
        return;
    }
    self->batch_msgs++;
    size_t at = 0;
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object *e = &list->via.array.ptr[i];
        uint64_t v[3] = {0, 0, 0};
        for (uint32_t k = 0;
             k < 3 && e->type == MSGPACK_OBJECT_ARRAY && k < e->via.array.size;
             k++) {
            dv_msgpack_uint(&e->via.array.ptr[k], &v[k]);
        }
        keep(self, v[0], v[1], v[2],
             at + v[2] <= rows ? f->data + at * cols * 4 : NULL, cols);
        at += v[2];
    }
}

void
dv_test_no_hwm(void *socket)
{
    int hwm = 0;
    if (socket) {
        zmq_setsockopt(socket, ZMQ_SNDHWM, &hwm, sizeof hwm);
    }
}

uint64_t
dv_test_unix_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static int
send_msg(dv_tworker_t *self, dv_msgw_t *w)
{
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    self->sent_unix_ms = dv_test_unix_ms();
    self->sent_ms = dv_test_now_ms();
    int rc = dv_wire_send(self->sock, NULL, 0, h, len, NULL, 0);
    dv_msgw_destroy(&w);
    return rc;
}

// One message from the broker: keep a run, note the welcome.
static void
take(dv_tworker_t *self, const dv_wire_msg_t *in)
{
    dv_msg_t *m = NULL;
    dv_error_t err = {0};
    if (dv_msg_decode(&m, zmq_msg_data((zmq_msg_t *)&in->header),
                      zmq_msg_size((zmq_msg_t *)&in->header), in->frames,
                      in->n_payload, NULL, &err) != 0) {
        fprintf(stderr, "  test worker: undecodable message: %s\n", err.text);
        return;
    }
    uint64_t job = 0, attempt = 0;
    if (dv_msg_type(m) == DV_MSG_WELCOME) {
        self->welcomed = true;
    } else if (dv_msg_type(m) == DV_MSG_RUN &&
               dv_msg_uint(m, "job", &job, &err) == 0 &&
               dv_msg_uint(m, "attempt", &attempt, &err) == 0) {
        const dv_frame_t *f = NULL;
        size_t rows = 0, cols = 0;
        self->run_msgs++;
        if (dv_msg_has(m, "input") &&
            dv_msg_tensor_desc(m, "input", DV_MAX_INFER_ROWS, &f, &rows, &cols,
                               &err) == 0) {
            keep(self, job, attempt, rows, f->data, cols);
        } else {
            keep(self, job, attempt, 0, NULL, 0);
        }
    } else if (dv_msg_type(m) == DV_MSG_RUN_BATCH) {
        take_batch(self, m);
    } else if (dv_msg_type(m) == DV_MSG_ERROR) {
        int code = 0;
        char text[256] = "";
        dv_msg_error(m, &code, text, sizeof text, &err);
        fprintf(stderr, "  test worker: broker says %s: %s\n",
                dv_err_name(code), text);
    }
    dv_msg_destroy(&m);
}

// Read and heartbeat until done() or the monotonic deadline end.
static void
pump(dv_tworker_t *self, int64_t end, bool (*done)(const dv_tworker_t *))
{
    while (!(done && done(self))) {
        int64_t now = dv_test_now_ms();
        if (now - self->sent_ms >= self->heartbeat_ms) {
            dv_msgw_t *w = dv_msgw_new(DV_MSG_HEARTBEAT, 0);
            dv_msgw_uint(w, "running", self->running);
            send_msg(self, w);
        }
        if (now >= end) {
            return;
        }
        int64_t beat = self->sent_ms + self->heartbeat_ms - now;
        int64_t wait = end - now < beat ? end - now : beat;
        zmq_pollitem_t item = {self->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, wait > 0 ? (long)wait : 0) <= 0) {
            continue;
        }
        dv_wire_msg_t in;
        while (dv_wire_recv(self->sock, false, &in) == 1) {
            take(self, &in);
            dv_wire_msg_close(&in);
        }
    }
}

static bool
welcomed(const dv_tworker_t *self)
{
    return self->welcomed;
}

static bool
has_run(const dv_tworker_t *self)
{
    return self->n > 0;
}

dv_tworker_t *
dv_tworker_start(const char *endpoint,
                 const char *name,
                 uint32_t capacity,
                 const char *queue,
                 int heartbeat_ms)
{
    return dv_tworker_start_minor(endpoint, name, capacity, queue, heartbeat_ms,
                                  DV_PROTOCOL_MINOR);
}

dv_tworker_t *
dv_tworker_start_minor(const char *endpoint,
                       const char *name,
                       uint32_t capacity,
                       const char *queue,
                       int heartbeat_ms,
                       unsigned minor)
{
    dv_tworker_t *self = dv_calloc(1, sizeof *self);
    self->heartbeat_ms = heartbeat_ms;
    self->ctx = zmq_ctx_new();
    self->sock = zmq_socket(self->ctx, ZMQ_DEALER);
    dv_test_no_hwm(self->sock);
    int linger = 0;
    zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(self->sock, endpoint) != 0) {
        fprintf(stderr, "  test worker: connect %s: %s\n", endpoint,
                zmq_strerror(zmq_errno()));
        dv_tworker_stop(&self);
        return NULL;
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_REGISTER, 0);
    dv_msgw_set_minor(w, minor);
    dv_msgw_str(w, "worker", name);
    dv_msgw_uint(w, "capacity", capacity);
    if (queue) {
        dv_msgw_strs(w, "queues", &queue, 1);
    }
    send_msg(self, w);
    pump(self, dv_test_now_ms() + DV_PROC_DEADLINE_MS, welcomed);
    if (!self->welcomed) {
        fprintf(stderr, "  test worker %s: no welcome\n", name);
        dv_tworker_stop(&self);
    }
    return self;
}

void
dv_tworker_stop(dv_tworker_t **self_p)
{
    dv_tworker_t *self = *self_p;
    if (!self) {
        return;
    }
    if (self->sock) {
        zmq_close(self->sock);
    }
    zmq_ctx_term(self->ctx);
    free(self);
    *self_p = NULL;
}

bool
dv_tworker_next_run(dv_tworker_t *self,
                    int wait_ms,
                    uint64_t *job,
                    uint32_t *attempt)
{
    dv_trun_t r;
    if (!dv_tworker_next(self, wait_ms, &r)) {
        return false;
    }
    *job = r.job;
    *attempt = r.attempt;
    return true;
}

bool
dv_tworker_next(dv_tworker_t *self, int wait_ms, dv_trun_t *out)
{
    pump(self, dv_test_now_ms() + wait_ms, has_run);
    if (self->n == 0) {
        return false;
    }
    *out = self->runs[self->head];
    self->head = (self->head + 1) % MAX_RUNS;
    self->n--;
    self->running++;
    return true;
}

void
dv_tworker_counts(const dv_tworker_t *self, size_t *runs, size_t *batches)
{
    *runs = self->run_msgs;
    *batches = self->batch_msgs;
}

int
dv_tworker_done_batch(dv_tworker_t *self,
                      const dv_trun_t *runs,
                      const uint32_t *rows,
                      size_t n,
                      const float *out,
                      size_t cols)
{
    size_t total = 0;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DONE_BATCH, 0);
    dv_msgw_key(w, "jobs");
    dv_msgw_v_array(w, n);
    for (size_t i = 0; i < n; i++) {
        dv_msgw_v_array(w, 3);
        dv_msgw_v_uint(w, runs[i].job);
        dv_msgw_v_uint(w, runs[i].attempt);
        dv_msgw_v_uint(w, rows[i]);
        total += rows[i];
    }
    dv_msgw_tensor(w, "output", 1, total, cols);
    dv_msgw_str(w, "model", "raw@1");
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    uint8_t *bytes = dv_malloc(total * cols * 4 + 1);
    dv_floats_to_wire(bytes, out, total * cols);
    dv_frame_t f = {bytes, total * cols * 4};
    self->sent_unix_ms = dv_test_unix_ms();
    self->sent_ms = dv_test_now_ms();
    int rc = dv_wire_send(self->sock, NULL, 0, h, len, &f, 1);
    dv_msgw_destroy(&w);
    free(bytes);
    self->running -= self->running >= n ? (uint32_t)n : self->running;
    return rc;
}

int
dv_tworker_answer(dv_tworker_t *self,
                  uint64_t job,
                  uint32_t attempt,
                  int code,
                  const char *text)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DONE, 0);
    dv_msgw_uint(w, "job", job);
    dv_msgw_uint(w, "attempt", attempt);
    dv_msgw_str(w, "state", code ? "failed" : "done");
    if (code) {
        dv_msgw_key(w, "error");
        dv_msgw_v_map(w, 2);
        dv_msgw_v_str(w, "name");
        dv_msgw_v_str(w, dv_err_name(code));
        dv_msgw_v_str(w, "text");
        dv_msgw_v_str(w, text ? text : "");
    }
    self->running -= self->running > 0;
    return send_msg(self, w);
}

void
dv_tworker_idle(dv_tworker_t *self, int ms)
{
    pump(self, dv_test_now_ms() + ms, NULL);
}

uint64_t
dv_tworker_last_sent_unix_ms(const dv_tworker_t *self)
{
    return self->sent_unix_ms;
}
