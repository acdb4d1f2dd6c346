// dv_worker — the worker's loop (see dv_worker.h).
//
// Model: a DEALER socket watched by dv_zwatch, a heartbeat timer and signal
// handles on one libuv loop. Any message from the broker counts as a sign of
// life; after `liveness` silent intervals the worker closes its socket,
// opens a new one and registers again, so a restarted broker gets its
// workers back by itself.
#include "dv_worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>
#include <zmq.h>

#include "dv_log.h"
#include "dv_mem.h"
#include "dv_proto.h"
#include "dv_wire.h"
#include "dv_zwatch.h"

struct dv_worker {
    uv_loop_t loop;         // the worker's loop
    void *ctx;              // ZeroMQ context
    void *sock;             // DEALER to the broker
    dv_zwatch_t *watch;     // sock in the loop
    uv_timer_t heartbeat;   // heartbeats and broker liveness
    uv_signal_t sigint;     // stop on SIGINT
    uv_signal_t sigterm;    // stop on SIGTERM
    char endpoint[256];     // broker's worker endpoint
    char name[128];         // our name
    uint32_t capacity;      // jobs at once
    uint32_t heartbeat_ms;  // interval
    uint32_t liveness;      // silent intervals before reconnecting
    uint64_t last_heard_ms; // loop time of the broker's last message
    bool ready_printed;     // READY went out
};

static int on_ready(dv_zwatch_t *zw, int events, void *arg);

static void
send_header(dv_worker_t *self, dv_msgw_t *w, const dv_frame_t *frames, size_t n)
{
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_wire_send(self->sock, NULL, 0, h, len, frames, n);
    dv_msgw_destroy(&w);
}

static void
send_register(dv_worker_t *self)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_REGISTER, 0);
    dv_msgw_str(w, "worker", self->name);
    dv_msgw_uint(w, "capacity", self->capacity);
    send_header(self, w, NULL, 0);
}

static int
open_socket(dv_worker_t *self, dv_error_t *err)
{
    self->sock = zmq_socket(self->ctx, ZMQ_DEALER);
    // Long enough for a final `bye` or `done` to leave on shutdown, short
    // enough not to hang when the broker is gone.
    int linger = 1000;
    zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(self->sock, self->endpoint) != 0) {
        int e = zmq_errno();
        zmq_close(self->sock);
        self->sock = NULL;
        return dv_errorf(err, DV_EINVAL, "cannot connect to %s: %s",
                         self->endpoint, zmq_strerror(e));
    }
    return dv_zwatch_open(&self->watch, &self->loop, self->sock,
                          DV_ZWATCH_READABLE, on_ready, self, err);
}

static void
on_run(dv_worker_t *self, const dv_msg_t *m)
{
    uint64_t job = 0, attempt = 0;
    char kind[16] = "";
    dv_error_t err = {0};
    int rc = dv_msg_uint(m, "job", &job, &err);
    if (rc == 0) {
        rc = dv_msg_uint(m, "attempt", &attempt, &err);
    }
    if (rc == 0) {
        rc = dv_msg_str(m, "kind", kind, sizeof kind, &err);
    }
    if (rc == 0 && strcmp(kind, "echo") != 0) {
        rc = dv_errorf(&err, DV_EINVAL,
                       "job kind '%s' is not supported by "
                       "this worker",
                       kind);
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DONE, 0);
    dv_msgw_uint(w, "job", job);
    dv_msgw_uint(w, "attempt", attempt);
    if (rc) {
        dv_msgw_str(w, "state", "failed");
        dv_msgw_error(w, "error", rc, err.text);
        send_header(self, w, NULL, 0);
        return;
    }
    dv_msgw_str(w, "state", "done");
    const dv_frame_t *payload = dv_msg_frame(m, 1);
    send_header(self, w, payload, payload ? 1 : 0);
}

static int
on_ready(dv_zwatch_t *zw, int events, void *arg)
{
    (void)events;
    dv_worker_t *self = arg;
    dv_wire_msg_t in;
    if (dv_wire_recv(dv_zwatch_socket(zw), false, &in) != 1) {
        return 0;
    }
    self->last_heard_ms = uv_now(&self->loop);
    dv_msg_t *m = NULL;
    dv_error_t err = {0};
    if (in.too_many) {
        dv_log(DV_LOG_WARN, "worker", "dropped a message with too many frames");
    } else if (dv_msg_decode(&m, zmq_msg_data(&in.header),
                             zmq_msg_size(&in.header), in.frames, in.n_payload,
                             NULL, &err) != 0) {
        dv_log(DV_LOG_WARN, "worker", "bad message from the broker: %s",
               err.text);
    } else {
        switch (dv_msg_type(m)) {
        case DV_MSG_WELCOME:
            if (!self->ready_printed) {
                printf("READY %s\n", self->endpoint);
                fflush(stdout);
                self->ready_printed = true;
            }
            break;
        case DV_MSG_RUN:
            on_run(self, m);
            break;
        case DV_MSG_ERROR: {
            int code;
            char text[DV_ERROR_TEXT_MAX] = "";
            dv_msg_error(m, &code, text, sizeof text, &err);
            dv_log(DV_LOG_WARN, "worker", "broker says %s: %s",
                   dv_err_name(code), text);
            if (strstr(text, "register first")) {
                send_register(self); // the broker restarted or forgot us
            }
            break;
        }
        default:
            break; // heartbeat and anything newer: a sign of life is enough
        }
    }
    dv_msg_destroy(&m);
    dv_wire_msg_close(&in);
    return 1;
}

static void
on_closed_reconnect(void *arg)
{
    dv_worker_t *self = arg;
    zmq_close(self->sock);
    dv_error_t err = {0};
    if (open_socket(self, &err) != 0) {
        dv_log(DV_LOG_ERROR, "worker", "%s", err.text);
        uv_stop(&self->loop);
        return;
    }
    self->last_heard_ms = uv_now(&self->loop);
    send_register(self);
}

static void
on_heartbeat(uv_timer_t *t)
{
    dv_worker_t *self = t->data;
    uint64_t silent = uv_now(&self->loop) - self->last_heard_ms;
    if (silent > (uint64_t)self->heartbeat_ms * self->liveness) {
        dv_log(DV_LOG_WARN, "worker",
               "no word from the broker for %llu ms: reconnecting",
               (unsigned long long)silent);
        dv_zwatch_close(self->watch, on_closed_reconnect, self);
        self->watch = NULL;
        return;
    }
    if (self->watch) {
        send_header(self, dv_msgw_new(DV_MSG_HEARTBEAT, 0), NULL, 0);
    }
}

static void
on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    dv_worker_t *self = s->data;
    if (self->watch) {
        dv_msgw_t *w = dv_msgw_new(DV_MSG_BYE, 0);
        dv_msgw_str(w, "reason", "stopping");
        send_header(self, w, NULL, 0);
    }
    dv_worker_stop(self);
}

int
dv_worker_open(dv_worker_t **out, const dv_worker_opts_t *opts, dv_error_t *err)
{
    dv_worker_t *self = dv_calloc(1, sizeof *self);
    snprintf(self->endpoint, sizeof self->endpoint, "%s",
             opts->broker_endpoint);
    if (opts->name) {
        snprintf(self->name, sizeof self->name, "%s", opts->name);
    } else {
        char host[64] = "worker";
        gethostname(host, sizeof host - 1);
        snprintf(self->name, sizeof self->name, "%.64s-%ld", host,
                 (long)getpid());
    }
    self->capacity = opts->capacity ? opts->capacity : 1;
    self->heartbeat_ms = opts->heartbeat_ms ? opts->heartbeat_ms : 1000;
    self->liveness = opts->liveness ? opts->liveness : 3;
    self->ctx = zmq_ctx_new();
    uv_loop_init(&self->loop);
    int rc = open_socket(self, err);
    if (rc) {
        dv_worker_destroy(&self);
        return rc;
    }
    uv_timer_init(&self->loop, &self->heartbeat);
    uv_signal_init(&self->loop, &self->sigint);
    uv_signal_init(&self->loop, &self->sigterm);
    self->heartbeat.data = self->sigint.data = self->sigterm.data = self;
    *out = self;
    return 0;
}

int
dv_worker_run(dv_worker_t *self)
{
    self->last_heard_ms = uv_now(&self->loop);
    send_register(self);
    uv_timer_start(&self->heartbeat, on_heartbeat, self->heartbeat_ms,
                   self->heartbeat_ms);
    uv_signal_start(&self->sigint, on_signal, SIGINT);
    uv_signal_start(&self->sigterm, on_signal, SIGTERM);
    uv_run(&self->loop, UV_RUN_DEFAULT);
    return 0;
}

void
dv_worker_stop(dv_worker_t *self)
{
    uv_stop(&self->loop);
}

void
dv_worker_destroy(dv_worker_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_worker_t *self = *self_p;
    if (self->watch) {
        dv_zwatch_close(self->watch, NULL, NULL);
    }
    uv_handle_t *handles[] = {(uv_handle_t *)&self->heartbeat,
                              (uv_handle_t *)&self->sigint,
                              (uv_handle_t *)&self->sigterm};
    for (size_t i = 0; i < 3; i++) {
        if (handles[i]->loop == &self->loop && !uv_is_closing(handles[i])) {
            uv_close(handles[i], NULL);
        }
    }
    uv_run(&self->loop, UV_RUN_DEFAULT);
    uv_loop_close(&self->loop);
    if (self->sock) {
        zmq_close(self->sock);
    }
    zmq_ctx_term(self->ctx);
    free(self);
    *self_p = NULL;
}
