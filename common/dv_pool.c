// dv_pool — compute threads whose finished work reaches a libuv loop
// without the loop ever waiting for them (see dv_pool.h).
#define _GNU_SOURCE // pthread_setname_np: the threads' name in top and perf
#include "dv_pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dv_mem.h"

enum { W_QUEUED = 1, W_RUNNING, W_FINISHED };

struct dv_pool {
    uv_loop_t *loop;
    uv_poll_t poll; // readable: something finished (the eventfd)
    int efd;
    pthread_t *threads;
    unsigned n_threads;
    char name[16];

    pthread_mutex_t mu;
    pthread_cond_t cv;
    dv_work_t *wait_head, *wait_tail; // queued, oldest first (prev/next)
    dv_work_t *done_head, *done_tail; // finished, oldest first (next)
    bool signalled;                   // the eventfd was written since taken
    bool quit;                        // threads end

    size_t outstanding; // loop thread only
    bool closing;
    bool referenced;
};

static void
wake_loop_locked(dv_pool_t *self)
{
    if (!self->signalled) {
        self->signalled = true;
        uint64_t one = 1;
        ssize_t n;
        do {
            n = write(self->efd, &one, sizeof one);
        } while (n < 0 && errno == EINTR);
        // EAGAIN: the counter is full, so the loop will wake anyway.
    }
}

static void
push_done_locked(dv_pool_t *self, dv_work_t *w)
{
    w->next = NULL;
    if (self->done_tail) {
        self->done_tail->next = w;
    } else {
        self->done_head = w;
    }
    self->done_tail = w;
    wake_loop_locked(self);
}

// Take w out of the waiting list (under mu).
static void
unlink_waiting_locked(dv_pool_t *self, dv_work_t *w)
{
    if (w->prev) {
        w->prev->next = w->next;
    } else {
        self->wait_head = w->next;
    }
    if (w->next) {
        w->next->prev = w->prev;
    } else {
        self->wait_tail = w->prev;
    }
}

static void *
thread_main(void *arg)
{
    dv_pool_t *self = arg;
    pthread_mutex_lock(&self->mu);
    for (;;) {
        while (!self->wait_head && !self->quit) {
            pthread_cond_wait(&self->cv, &self->mu);
        }
        if (!self->wait_head) { // quit, nothing left
            break;
        }
        dv_work_t *w = self->wait_head;
        unlink_waiting_locked(self, w);
        w->state = W_RUNNING;
        pthread_mutex_unlock(&self->mu);
        w->work(w);
        pthread_mutex_lock(&self->mu);
        w->state = W_FINISHED;
        w->status = 0;
        push_done_locked(self, w);
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

static void
set_referenced(dv_pool_t *self, bool on)
{
    if (on != self->referenced) {
        self->referenced = on;
        if (on) {
            uv_ref((uv_handle_t *)&self->poll);
        } else {
            uv_unref((uv_handle_t *)&self->poll);
        }
    }
}

static void
on_closed(uv_handle_t *h)
{
    dv_pool_t *self = h->data;
    close(self->efd);
    pthread_cond_destroy(&self->cv);
    pthread_mutex_destroy(&self->mu);
    free(self->threads);
    free(self);
}

// The threads end (nothing is out), then the handle closes.
static void
finish_close(dv_pool_t *self)
{
    pthread_mutex_lock(&self->mu);
    self->quit = true;
    pthread_cond_broadcast(&self->cv);
    pthread_mutex_unlock(&self->mu);
    for (unsigned i = 0; i < self->n_threads; i++) {
        pthread_join(self->threads[i], NULL);
    }
    self->n_threads = 0;
    uv_poll_stop(&self->poll);
    uv_close((uv_handle_t *)&self->poll, on_closed);
}

static void
on_readable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    dv_pool_t *self = h->data;
    // Read the counter first: a request finished after the take below
    // writes it again, so it is never left unseen.
    uint64_t n;
    while (read(self->efd, &n, sizeof n) < 0 && errno == EINTR) {
    }
    pthread_mutex_lock(&self->mu);
    dv_work_t *w = self->done_head;
    self->done_head = self->done_tail = NULL;
    self->signalled = false;
    pthread_mutex_unlock(&self->mu);
    while (w) {
        dv_work_t *next = w->next;
        int st = w->status;
        dv_after_work_fn after = w->after;
        self->outstanding--;
        w->state = 0;
        after(w, st); // may free w, queue more, or close the pool
        w = next;
    }
    if (self->outstanding == 0) {
        set_referenced(self, false);
        if (self->closing && self->n_threads) {
            finish_close(self);
        }
    }
}

int
dv_pool_new(dv_pool_t **out,
            uv_loop_t *loop,
            unsigned threads,
            const char *name,
            dv_error_t *err)
{
    *out = NULL;
    dv_pool_t *self = dv_calloc(1, sizeof *self);
    self->loop = loop;
    snprintf(self->name, sizeof self->name, "%s", name ? name : "dv-pool");
    self->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->efd < 0) {
        int e = errno;
        free(self);
        return dv_errorf(err, DV_EIO, "compute threads: eventfd: %s",
                         strerror(e));
    }
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->cv, NULL);
    int rc = uv_poll_init(loop, &self->poll, self->efd);
    if (rc == 0) {
        self->poll.data = self;
        rc = uv_poll_start(&self->poll, UV_READABLE, on_readable);
        if (rc) {
            uv_close((uv_handle_t *)&self->poll, on_closed);
            return dv_errorf(err, DV_EIO, "compute threads: %s",
                             uv_strerror(rc));
        }
    } else {
        close(self->efd);
        pthread_cond_destroy(&self->cv);
        pthread_mutex_destroy(&self->mu);
        free(self);
        return dv_errorf(err, DV_EIO, "compute threads: %s", uv_strerror(rc));
    }
    uv_unref((uv_handle_t *)&self->poll); // idle: keeps nothing alive
    if (threads < 1) {
        threads = 1;
    }
    self->threads = dv_calloc(threads, sizeof *self->threads);
    // Signals go to the loop's thread (libuv's handlers), never to a thread
    // computing: the threads start with every signal blocked.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 0; i < threads; i++) {
        int prc = pthread_create(&self->threads[i], NULL, thread_main, self);
        if (prc) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            dv_errorf(err, DV_EIO, "compute threads: thread %u of %u: %s",
                      i + 1, threads, strerror(prc));
            self->closing = true;
            finish_close(self);
            return DV_EIO;
        }
        self->n_threads++;
        pthread_setname_np(self->threads[i], self->name);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    *out = self;
    return 0;
}

int
dv_pool_queue(dv_pool_t *self,
              dv_work_t *req,
              dv_work_fn work,
              dv_after_work_fn after)
{
    if (self->closing) {
        return DV_EINVAL;
    }
    req->work = work;
    req->after = after;
    req->pool = self;
    req->status = 0;
    req->next = NULL;
    self->outstanding++;
    set_referenced(self, true);
    pthread_mutex_lock(&self->mu);
    req->state = W_QUEUED;
    req->prev = self->wait_tail;
    if (self->wait_tail) {
        self->wait_tail->next = req;
    } else {
        self->wait_head = req;
    }
    self->wait_tail = req;
    pthread_cond_signal(&self->cv);
    pthread_mutex_unlock(&self->mu);
    return 0;
}

int
dv_pool_cancel(dv_work_t *req)
{
    dv_pool_t *self = req->pool;
    if (!self) {
        return UV_EBUSY;
    }
    int rc = UV_EBUSY;
    pthread_mutex_lock(&self->mu);
    if (req->state == W_QUEUED) {
        unlink_waiting_locked(self, req);
        req->state = W_FINISHED;
        req->status = UV_ECANCELED;
        push_done_locked(self, req);
        rc = 0;
    }
    pthread_mutex_unlock(&self->mu);
    return rc;
}

size_t
dv_pool_outstanding(const dv_pool_t *self)
{
    return self->outstanding;
}

void
dv_pool_close(dv_pool_t *self)
{
    if (!self || self->closing) {
        return;
    }
    self->closing = true;
    if (self->outstanding == 0) {
        finish_close(self);
    }
}
