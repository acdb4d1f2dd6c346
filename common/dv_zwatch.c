// dv_zwatch — a ZeroMQ socket in a libuv loop, after flux-core's ev_zmq.c
// (src/common/libutil/ev_zmq.c) and Bert JW Regeer's "Embedding ZeroMQ in
// the libev event loop" (2013).
//
// Four libuv handles cooperate:
//   prepare  before the loop blocks: if ZMQ_EVENTS has a watched event, start
//            the idle handle so the loop polls without blocking
//   idle     no-op; its only job is to stop the loop from sleeping
//   poll     on ZMQ_FD, always active: wakes the loop when the socket's
//            mailbox is signalled (the ZMQ_EVENTS query resets the signal)
//   check    after polling: stop idle, then call the ready callback while
//            events are ready (re-read when a call consumed nothing), at
//            most `budget` times
// ZMQ_FD is edge-triggered: only re-reading ZMQ_EVENTS in prepare/check on
// every iteration makes sure nothing waits for an edge that was consumed by
// our own send or recv.
//
// A sole watcher (dv_zwatch_set_sole) skips the queries that cannot find
// anything: once ZMQ_EVENTS has said "nothing" (which puts libzmq's pipes to
// sleep, so the next message or command signals ZMQ_FD), it asks again only
// when ZMQ_FD has fired (libuv polls it level-triggered: a signal stays until
// a query takes it), when its callback handled something, or when the socket
// was used elsewhere (dv_zwatch_used: dv_wire and the broker's output queue
// report every send and receive). Each query costs libzmq a poll() and a
// getpid(), and the loop asked twice per turn for every socket.
//
// Lifetime: the struct owns the handles; it is freed in the close callback of
// the last handle (libuv design rule: handle memory lives until close_cb).
#include "dv_zwatch.h"

#include <stdbool.h>
#include <stdlib.h>

#include <zmq.h>

#include "dv_mem.h"
#include "dv_wire.h"

struct dv_zwatch {
    uv_prepare_t prepare;       // checks ZMQ_EVENTS before blocking
    uv_check_t check;           // dispatches after polling
    uv_idle_t idle;             // keeps the loop spinning while ready
    uv_poll_t poll;             // wakes the loop on ZMQ_FD
    void *socket;               // libzmq socket, borrowed
    int events;                 // watched DV_ZWATCH_* events
    unsigned budget;            // ready calls per iteration
    dv_zwatch_ready_fn cb;      // user callback
    void *arg;                  // its argument
    int open_handles;           // handles not yet closed
    bool closing;               // dv_zwatch_close called
    bool sole;                  // dv_zwatch_set_sole: queries on demand
    bool stale;                 // sole: ZMQ_EVENTS may have changed
    dv_zwatch_closed_fn closed; // user close callback (may be NULL)
    void *closed_arg;           // its argument
};

// Watched events that are ready now (0 on error: the socket is gone or
// closing, and the caller simply stops dispatching). A sole watcher whose
// last answer was "nothing" and that nothing has touched since answers 0
// without asking.
static int
ready_events(dv_zwatch_t *self)
{
    if (self->sole && !self->stale) {
        return 0;
    }
    uint32_t zevents = 0;
    size_t size = sizeof zevents;
    if (zmq_getsockopt(self->socket, ZMQ_EVENTS, &zevents, &size) != 0) {
        return 0;
    }
    int ev = ((zevents & ZMQ_POLLIN) ? DV_ZWATCH_READABLE : 0) |
             ((zevents & ZMQ_POLLOUT) ? DV_ZWATCH_WRITABLE : 0);
    ev &= self->events;
    self->stale = ev != 0; // ready: ask again until the callback drains it
    return ev;
}

static void
idle_noop(uv_idle_t *h)
{
    (void)h;
}

// ZMQ_FD fired: the socket's mailbox was signalled.
static void
on_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    dv_zwatch_t *self = h->data;
    self->stale = true;
}

static void
on_prepare(uv_prepare_t *h)
{
    dv_zwatch_t *self = h->data;
    if (!self->closing && ready_events(self)) {
        uv_idle_start(&self->idle, idle_noop);
    }
}

static void
on_check(uv_check_t *h)
{
    dv_zwatch_t *self = h->data;
    uv_idle_stop(&self->idle);
    // Ask ZMQ_EVENTS again only when the callback found nothing: each query
    // costs syscalls in libzmq (its signaler polls, and checks getpid() for
    // fork safety), and while messages keep coming the callback's own
    // non-blocking recv says as much.
    int ev = ready_events(self);
    for (unsigned i = 0; ev && i < self->budget && !self->closing; i++) {
        bool handled = self->cb(self, ev, self->arg);
        self->stale = true; // the callback used the socket
        // Found nothing: ask; else the callback may have changed them.
        ev = handled ? ev & self->events : ready_events(self);
    }
}

int
dv_zwatch_open(dv_zwatch_t **out,
               uv_loop_t *loop,
               void *socket,
               int events,
               dv_zwatch_ready_fn cb,
               void *arg,
               dv_error_t *err)
{
    int fd = -1;
    size_t size = sizeof fd;
    if (!socket || zmq_getsockopt(socket, ZMQ_FD, &fd, &size) != 0) {
        return dv_errorf(err, DV_EINVAL, "not a ZeroMQ socket: %s",
                         zmq_strerror(zmq_errno()));
    }
    dv_zwatch_t *self = dv_calloc(1, sizeof *self);
    int rc = uv_poll_init(loop, &self->poll, fd);
    if (rc != 0) {
        free(self);
        return dv_errorf(err, DV_EIO, "libuv cannot poll ZMQ_FD %d: %s", fd,
                         uv_strerror(rc));
    }
    uv_prepare_init(loop, &self->prepare);
    uv_check_init(loop, &self->check);
    uv_idle_init(loop, &self->idle);
    self->prepare.data = self->check.data = self->idle.data = self->poll.data =
        self;
    self->open_handles = 4;
    self->stale = true;
    self->socket = socket;
    self->events = events;
    self->budget = DV_ZWATCH_BUDGET;
    self->cb = cb;
    self->arg = arg;
    uv_prepare_start(&self->prepare, on_prepare);
    uv_check_start(&self->check, on_check);
    uv_poll_start(&self->poll, UV_READABLE, on_poll);
    *out = self;
    return 0;
}

void
dv_zwatch_set_events(dv_zwatch_t *self, int events)
{
    self->events = events;
    self->stale = true;
}

// This thread's sole watchers (a loop owns its sockets and watchers on one
// thread; a thread without any, such as a client's, scans nothing).
static __thread dv_zwatch_t *s_sole[DV_ZWATCH_SOLE_MAX];
static __thread int s_n_sole;

void
dv_zwatch_set_sole(dv_zwatch_t *self)
{
    if (self->sole || s_n_sole == DV_ZWATCH_SOLE_MAX) {
        return; // past the bound it simply keeps asking every turn
    }
    self->sole = true;
    s_sole[s_n_sole++] = self;
    dv_wire_on_use(dv_zwatch_used); // dv_wire reports its sends and receives
}

static void
sole_forget(dv_zwatch_t *self)
{
    for (int i = 0; i < s_n_sole; i++) {
        if (s_sole[i] == self) {
            s_sole[i] = s_sole[--s_n_sole];
            return;
        }
    }
}

void
dv_zwatch_used(void *socket)
{
    for (int i = 0; i < s_n_sole; i++) {
        if (s_sole[i]->socket == socket) {
            s_sole[i]->stale = true;
        }
    }
}

void
dv_zwatch_set_budget(dv_zwatch_t *self, unsigned budget)
{
    dv_assert(budget >= 1);
    self->budget = budget;
}

void *
dv_zwatch_socket(const dv_zwatch_t *self)
{
    return self->socket;
}

static void
on_handle_closed(uv_handle_t *h)
{
    dv_zwatch_t *self = h->data;
    if (--self->open_handles == 0) {
        dv_zwatch_closed_fn cb = self->closed;
        void *arg = self->closed_arg;
        free(self);
        if (cb) {
            cb(arg);
        }
    }
}

void
dv_zwatch_close(dv_zwatch_t *self, dv_zwatch_closed_fn closed_cb, void *arg)
{
    dv_assert(!self->closing);
    self->closing = true;
    if (self->sole) {
        sole_forget(self);
    }
    self->closed = closed_cb;
    self->closed_arg = arg;
    uv_close((uv_handle_t *)&self->prepare, on_handle_closed);
    uv_close((uv_handle_t *)&self->check, on_handle_closed);
    uv_close((uv_handle_t *)&self->idle, on_handle_closed);
    uv_close((uv_handle_t *)&self->poll, on_handle_closed);
}
