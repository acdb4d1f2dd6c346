// dv_outq — bytes queued per ROUTER peer, counted through libzmq's free
// callbacks (dv_outq.h has the model).
//
// Each frame goes out as zmq_msg_init_data(copy or borrowed bytes, free_fn,
// hint); the hint names the peer and the length, and free_fn subtracts them
// with atomic operations. A peer entry lives until dv_outq_sweep finds it
// with no frame in flight: only the owner's thread adds frames, so once it
// reads zero there, no callback can still hold the entry.
#include "dv_outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "dv_hash.h"
#include "dv_mem.h"
#include "dv_zwatch.h"

#define OUTQ_BUCKETS 1024 // hash buckets (power of two)
#define ROUTE_MAX    256  // ZeroMQ routing ids are at most 255 bytes

typedef struct peer peer_t;
struct peer {
    peer_t *next;             // hash chain
    size_t bytes;             // held by libzmq (atomic)
    size_t frames;            // frames in flight (atomic)
    size_t route_len;         // routing id length
    uint8_t route[ROUTE_MAX]; // routing id
};

struct dv_outq {
    void *socket;                  // the ROUTER (not owned)
    size_t peer_max;               // bytes one peer may hold
    size_t total_max;              // bytes all peers may hold
    size_t total;                  // held now (atomic)
    peer_t *buckets[OUTQ_BUCKETS]; // peers by routing id
};

// What a frame's free callback needs.
typedef struct {
    dv_outq_t *q;                // whose totals
    peer_t *peer;                // whose count
    size_t len;                  // bytes to take off
    dv_outq_release_fn *release; // borrowed: the owner's release; NULL:
    void *owner;                 //   the data is our copy, freed here
} hint_t;

static size_t
bucket(const void *route, size_t len)
{
    uint64_t h = dv_hash_bytes(route, len, DV_HASH_BYTES_INIT);
    return (size_t)(h & (OUTQ_BUCKETS - 1));
}

static peer_t *
peer_find(const dv_outq_t *self, const void *route, size_t len)
{
    for (peer_t *p = self->buckets[bucket(route, len)]; p; p = p->next) {
        if (p->route_len == len && memcmp(p->route, route, len) == 0) {
            return p;
        }
    }
    return NULL;
}

static peer_t *
peer_get(dv_outq_t *self, const void *route, size_t len)
{
    peer_t *p = peer_find(self, route, len);
    if (!p) {
        size_t b = bucket(route, len);
        p = dv_calloc(1, sizeof *p);
        p->route_len = len < ROUTE_MAX ? len : ROUTE_MAX;
        memcpy(p->route, route, p->route_len);
        p->next = self->buckets[b];
        self->buckets[b] = p;
    }
    return p;
}

// libzmq is done with a frame (written, dropped, or the send failed).
static void
free_fn(void *data, void *arg)
{
    hint_t *h = arg;
    if (h->release) {
        h->release(h->owner);
    } else {
        free(data);
    }
    __atomic_sub_fetch(&h->peer->bytes, h->len, __ATOMIC_RELEASE);
    __atomic_sub_fetch(&h->q->total, h->len, __ATOMIC_RELEASE);
    __atomic_sub_fetch(&h->peer->frames, 1, __ATOMIC_RELEASE);
    free(h);
}

dv_outq_t *
dv_outq_new(void *socket, size_t peer_max, size_t total_max)
{
    dv_outq_t *self = dv_calloc(1, sizeof *self);
    self->socket = socket;
    self->peer_max = peer_max;
    self->total_max = total_max;
    return self;
}

void
dv_outq_destroy(dv_outq_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_outq_t *self = *self_p;
    for (size_t b = 0; b < OUTQ_BUCKETS; b++) {
        while (self->buckets[b]) {
            peer_t *p = self->buckets[b];
            self->buckets[b] = p->next;
            free(p);
        }
    }
    free(self);
    *self_p = NULL;
}

size_t
dv_outq_peer_bytes(const dv_outq_t *self, const void *route, size_t route_len)
{
    const peer_t *p = peer_find(self, route, route_len);
    return p ? __atomic_load_n(&p->bytes, __ATOMIC_ACQUIRE) : 0;
}

size_t
dv_outq_total_bytes(const dv_outq_t *self)
{
    return __atomic_load_n(&self->total, __ATOMIC_ACQUIRE);
}

bool
dv_outq_room(const dv_outq_t *self,
             const void *route,
             size_t route_len,
             size_t bytes)
{
    size_t held = dv_outq_peer_bytes(self, route, route_len);
    if (held == 0) {
        return true;
    }
    size_t total = dv_outq_total_bytes(self);
    return held + bytes <= self->peer_max && total + bytes <= self->total_max;
}

// One frame as a counted message.
static int
frame_send(dv_outq_t *self,
           peer_t *p,
           const void *data,
           size_t len,
           dv_outq_release_fn *release,
           void *owner,
           int flags)
{
    hint_t *h = dv_malloc(sizeof *h);
    *h = (hint_t){self, p, len, release, owner};
    void *bytes = (void *)data;
    if (!release) { // our own copy; one byte at least for malloc's sake
        bytes = dv_malloc(len ? len : 1);
        memcpy(bytes, data, len);
    }
    __atomic_add_fetch(&p->bytes, len, __ATOMIC_RELAXED);
    __atomic_add_fetch(&self->total, len, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->frames, 1, __ATOMIC_RELAXED);
    zmq_msg_t msg;
    zmq_msg_init_data(&msg, bytes, len, free_fn, h);
    if (zmq_msg_send(&msg, self->socket, flags) < 0) {
        zmq_msg_close(&msg); // runs free_fn
        return DV_EIO;
    }
    return 0;
}

int
dv_outq_send(dv_outq_t *self,
             const void *route,
             size_t route_len,
             const uint8_t *header,
             size_t header_len,
             const dv_frame_t *frames,
             size_t n_frames,
             dv_outq_release_fn *release,
             void *owner)
{
    int flags = ZMQ_DONTWAIT;
    peer_t *p = peer_get(self, route, route_len);
    int rc = 0;
    dv_zwatch_used(self->socket); // a sole watcher asks ZMQ_EVENTS again
    if (zmq_send(self->socket, route, route_len, flags | ZMQ_SNDMORE) < 0) {
        rc = DV_EIO;
    }
    if (rc == 0) {
        rc = frame_send(self, p, header, header_len, NULL, NULL,
                        flags | (n_frames ? ZMQ_SNDMORE : 0));
    }
    for (size_t i = 0; i < n_frames; i++) {
        if (rc == 0) {
            rc =
                frame_send(self, p, frames[i].data, frames[i].len, release,
                           owner, flags | (i + 1 < n_frames ? ZMQ_SNDMORE : 0));
        } else if (release) {
            release(owner); // the caller's reference for a frame not sent
        }
    }
    return rc;
}

size_t
dv_outq_sweep(dv_outq_t *self)
{
    size_t kept = 0;
    for (size_t b = 0; b < OUTQ_BUCKETS; b++) {
        for (peer_t **pp = &self->buckets[b]; *pp;) {
            peer_t *p = *pp;
            if (__atomic_load_n(&p->frames, __ATOMIC_ACQUIRE) == 0) {
                *pp = p->next;
                free(p);
            } else {
                pp = &p->next;
                kept++;
            }
        }
    }
    return kept;
}
