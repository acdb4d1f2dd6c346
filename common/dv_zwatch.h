// dv_zwatch — a ZeroMQ socket inside a libuv loop.
//
// The broker and the workers each run one libuv loop that owns their ZeroMQ
// sockets. A ZeroMQ socket is not a file descriptor: ZMQ_FD only signals,
// edge-triggered, that ZMQ_EVENTS may have changed, and any zmq_send,
// zmq_recv or ZMQ_EVENTS query on the socket can consume that edge. Polling
// ZMQ_FD alone therefore loses wakeups: a message that arrived while the
// program was sending can sit unread until more traffic comes.
//
// dv_zwatch follows flux-core's ev_zmq: ZMQ_EVENTS is checked before the
// loop blocks (a prepare handle) and again after (a check handle); while
// events are pending an idle handle keeps the loop from blocking, otherwise
// the loop sleeps on ZMQ_FD. The ready callback runs from the check handle,
// at most `budget` times per loop iteration, so one busy socket cannot starve
// timers and other sockets.
//
// Threads: loop thread only. The socket stays the caller's (never closed
// here) and must outlive the watcher.
#ifndef DV_ZWATCH_H
#define DV_ZWATCH_H

#include <uv.h>

#include "dv_err.h"

#define DV_ZWATCH_READABLE 1 // a message can be received without blocking
#define DV_ZWATCH_WRITABLE 2 // a message can be sent without blocking

// Default ready-callback calls per loop iteration.
#define DV_ZWATCH_BUDGET 64

typedef struct dv_zwatch dv_zwatch_t;

// Called on the loop thread with the events that were ready (a subset of the
// watched ones). Handle one message per call (zmq_recv/zmq_send with
// ZMQ_DONTWAIT) and return non-zero when one was handled, 0 when there was
// nothing (EAGAIN): the watcher calls again, up to the budget, and re-reads
// ZMQ_EVENTS only after a call that handled nothing.
typedef int (*dv_zwatch_ready_fn)(dv_zwatch_t *self, int events, void *arg);

// Called once the watcher is closed and freed.
typedef void (*dv_zwatch_closed_fn)(void *arg);

// Watch socket (a libzmq socket handle, e.g. zsock_resolve() of a czmq one)
// for events on loop. Returns 0 and sets *out (freed by dv_zwatch_close), or
// DV_EINVAL when the handle is not a ZeroMQ socket, DV_EIO when libuv refuses
// its descriptor.
int dv_zwatch_open(dv_zwatch_t **out,
                   uv_loop_t *loop,
                   void *socket,
                   int events,
                   dv_zwatch_ready_fn cb,
                   void *arg,
                   dv_error_t *err);

// Change the watched events (0 pauses the watcher; WRITABLE while output is
// queued). Takes effect on the next loop iteration.
void dv_zwatch_set_events(dv_zwatch_t *self, int events);

// Sole watchers a thread may have (more: the rest ask on every turn).
#define DV_ZWATCH_SOLE_MAX 16

// Promise that every zmq_send, zmq_recv, ZMQ_EVENTS query, bind or connect
// on the socket outside this watcher's ready callback is followed by
// dv_zwatch_used(socket) on the loop's thread. The watcher then asks
// ZMQ_EVENTS only after ZMQ_FD fires, the callback handles something, or a
// use is reported (each query costs libzmq a poll() and a getpid()). A use
// not reported may leave a message unread until the next one arrives.
void dv_zwatch_set_sole(dv_zwatch_t *self);

// socket (a libzmq handle) was used outside its watcher's callback: a sole
// watcher of it on this thread asks ZMQ_EVENTS again before the loop
// blocks. dv_wire calls it with every send and receive (its hook, set by
// dv_zwatch_set_sole). Cheap: a scan of this thread's sole watchers, none
// when there are none.
void dv_zwatch_used(void *socket);

// Ready-callback calls per loop iteration (>= 1).
void dv_zwatch_set_budget(dv_zwatch_t *self, unsigned budget);

// The watched socket (borrowed).
void *dv_zwatch_socket(const dv_zwatch_t *self);

// Stop and release the watcher. Its libuv handles close asynchronously;
// closed_cb (may be NULL) runs once they have and self is freed. No ready
// callback runs after this call.
void
dv_zwatch_close(dv_zwatch_t *self, dv_zwatch_closed_fn closed_cb, void *arg);

#endif
