// dv_pool — compute threads whose finished work reaches a libuv loop
// without the loop ever waiting for them.
//
// uv_queue_work does the same job, but in libuv before 1.45 (Debian 12
// ships 1.44) a pool thread tells the loop that work finished with
// uv_async_send, and the loop thread, finding that send half done (the
// flag set, the eventfd write not yet returned), spins in uv__async_spin
// with sched_yield until it is (libuv #2949, fixed by #3879 in 1.45). On
// a host with fewer cores than busy threads the sender is often preempted
// right there: perf showed worker and broker loop threads yielding for up
// to milliseconds per forward pass, a tenth of all CPU time at 1-row
// serving. Here a finished request goes on a list under a mutex and only
// the first one onto an empty list writes the eventfd; the loop reads the
// eventfd, then takes the whole list. Neither side waits for the other
// beyond the mutex.
//
// The same contract as uv_queue_work: work runs on a pool thread, after on
// the loop thread (status 0, or UV_ECANCELED when dv_pool_cancel took it
// before it started), in the order the requests finished. While requests
// are out the pool keeps the loop alive (its handle is referenced); idle,
// it does not.
//
// Threads: dv_pool_new, dv_pool_queue, dv_pool_cancel and dv_pool_close on
// the loop thread only.
#ifndef DV_POOL_H
#define DV_POOL_H

#include <stdint.h>

#include <uv.h>

#include "dv_err.h"

typedef struct dv_pool dv_pool_t;
typedef struct dv_work dv_work_t;

typedef void (*dv_work_fn)(dv_work_t *req);
typedef void (*dv_after_work_fn)(dv_work_t *req, int status);

// A request, embedded in the caller's record (container_of, or data). Its
// fields other than data are the pool's while it is out: from
// dv_pool_queue until its after callback has been called.
struct dv_work {
    void *data; // the caller's
    // private
    dv_work_t *next;
    dv_work_t *prev; // in the waiting list, for dv_pool_cancel
    dv_work_fn work;
    dv_after_work_fn after;
    dv_pool_t *pool;
    int state;
    int status;
};

// threads compute threads (at least 1), started now, each with name (at
// most 15 characters: what top and perf show). Caller owns *out: it is
// freed by dv_pool_close, once its handle has closed in loop. DV_EIO when
// a thread or the eventfd cannot be had.
int dv_pool_new(dv_pool_t **out,
                uv_loop_t *loop,
                unsigned threads,
                const char *name,
                dv_error_t *err);

// Run work(req) on a pool thread, then after(req, status) on the loop
// thread. req must stay valid until after is called. DV_EINVAL once
// dv_pool_close was called (nothing is called then).
int dv_pool_queue(dv_pool_t *self,
                  dv_work_t *req,
                  dv_work_fn work,
                  dv_after_work_fn after);

// Take req back before a thread started it: 0, and its after callback
// runs (on a later loop turn) with UV_ECANCELED and work never runs.
// UV_EBUSY (as uv_cancel) when it has started or finished: it ends as usual.
int dv_pool_cancel(dv_work_t *req);

// Requests out now (queued, computing, or finished and not yet handed to
// their after callback).
size_t dv_pool_outstanding(const dv_pool_t *self);

// Stop taking requests. What is queued or computing still runs and its
// after callback still comes, on the loop; after the last one, the threads
// end and the pool's handle closes; the pool is freed in the loop turn
// that closes it. NULL is ignored.
void dv_pool_close(dv_pool_t *self);

#endif
