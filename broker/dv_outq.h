// dv_outq — the bytes a ROUTER socket holds for each peer, counted and
// bounded.
//
// libzmq bounds what it queues for a peer in messages (ZMQ_SNDHWM), not in
// bytes: a client that asks for large replies and never reads them made the
// broker hold a copy of each (16 `result_get`s of one large kept result:
// 75 to 1,035 MiB). Every frame sent through dv_outq is a zmq_msg_init_data
// message whose free callback — run by libzmq once the bytes are written
// to the connection, or dropped — takes its bytes off its peer's count. So
// the owner knows what each peer holds inside the socket and can decline to
// queue more (dv_outq_room). Payload frames may be borrowed from a
// reference-counted owner instead of copied, so asking for one kept result
// many times shares its bytes.
//
// Threads: everything but the free callbacks runs on the owner's thread;
// the callbacks (libzmq's I/O thread, or the sending thread when a send
// fails) touch only atomic counters, the copy they free, and the owner's
// release function. Peers are forgotten by dv_outq_sweep once nothing of
// theirs is in flight.
#ifndef DV_OUTQ_H
#define DV_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dv_proto.h"

typedef struct dv_outq dv_outq_t;

// Releases one reference to a borrowed payload's owner. Called once per
// borrowed frame, from any thread, when libzmq is done with the frame.
typedef void dv_outq_release_fn(void *owner);

// Count what is sent on socket (a ROUTER; not owned) to each peer; a peer
// may hold peer_max bytes, all peers together total_max (dv_outq_room).
// Never NULL; caller owns it.
dv_outq_t *dv_outq_new(void *socket, size_t peer_max, size_t total_max);

// Free it; *self_p = NULL. NULL-safe. Only once the socket is closed and
// its context terminated: every callback has run by then.
void dv_outq_destroy(dv_outq_t **self_p);

// Bytes of messages to route that libzmq still holds.
size_t
dv_outq_peer_bytes(const dv_outq_t *self, const void *route, size_t route_len);

// Bytes held for all peers.
size_t dv_outq_total_bytes(const dv_outq_t *self);

// Whether `bytes` more may be queued to route: the peer stays within
// peer_max and all within total_max — or the peer holds nothing (so one
// reply of any allowed size can always go to a peer that reads).
bool dv_outq_room(const dv_outq_t *self,
                  const void *route,
                  size_t route_len,
                  size_t bytes);

// Send [route] header frames... as one message without blocking, counted
// against route. The header is copied. Frames are copied when release is
// NULL; otherwise they are borrowed from owner, which the caller has given
// one reference per frame, and release(owner) drops each once libzmq is
// done with it (also when the send fails). Returns 0 or DV_EIO (a full
// queue or an unknown peer drops the message, as ZeroMQ does).
int dv_outq_send(dv_outq_t *self,
                 const void *route,
                 size_t route_len,
                 const uint8_t *header,
                 size_t header_len,
                 const dv_frame_t *frames,
                 size_t n_frames,
                 dv_outq_release_fn *release,
                 void *owner);

// Forget peers with nothing in flight (call now and then, e.g. on a
// timer). Returns the number of peers still tracked.
size_t dv_outq_sweep(dv_outq_t *self);

#endif
