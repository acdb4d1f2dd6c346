// dv_wire — whole protocol messages on ZeroMQ sockets: receive every frame
// of one multipart message (routing id first on ROUTER sockets), send a
// routing id + header + payload frames as one message.
//
// Receiving never blocks (ZMQ_DONTWAIT) and never keeps more than
// 1 + 1 + DV_MAX_FRAMES frames: extra frames are read and dropped, and the
// message is flagged so the caller answers DV_EMSGSIZE.
#ifndef DV_WIRE_H
#define DV_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include <zmq.h>

#include "dv_proto.h"

typedef struct {
    zmq_msg_t route;                  // routing id (routed sockets)
    bool routed;                      // route is set
    zmq_msg_t header;                 // frame 0
    zmq_msg_t payload[DV_MAX_FRAMES]; // frames 1..n
    size_t n_payload;                 // n
    dv_frame_t frames[DV_MAX_FRAMES]; // views of payload, for dv_proto
    bool too_many;                    // frames beyond the limit dropped
    bool no_header;                   // routed message had no header
} dv_wire_msg_t;

// Called with the socket before each dv_wire send or receive on the calling
// thread (NULL: nothing). dv_zwatch sets it on a loop's thread once it has
// a sole watcher (dv_zwatch_set_sole); clients never do.
typedef void dv_wire_use_fn(void *socket);
void dv_wire_on_use(dv_wire_use_fn *fn);

// Receive one whole message. Returns 1 (got one: release with
// dv_wire_msg_close), 0 (nothing waiting), or a negative DV_E* (socket
// error).
int dv_wire_recv(void *socket, bool routed, dv_wire_msg_t *m);

// Release the frames of a received message.
void dv_wire_msg_close(dv_wire_msg_t *m);

// Send [route] header frames... as one message without blocking. route may
// be NULL (DEALER). Returns 0 or a negative DV_E* (DV_EIO; a full queue or
// an unknown peer drops the message, as ZeroMQ does).
int dv_wire_send(void *socket,
                 const void *route,
                 size_t route_len,
                 const uint8_t *header,
                 size_t header_len,
                 const dv_frame_t *frames,
                 size_t n_frames);

// As dv_wire_send, with the payload frames as ZeroMQ messages: no byte of
// them is copied (a frame shared with zmq_msg_copy, or a buffer handed over
// with zmq_msg_init_data). Each frame is consumed: sent, or closed when the
// message could not be sent; the caller only initialises them.
int dv_wire_send_msgs(void *socket,
                      const void *route,
                      size_t route_len,
                      const uint8_t *header,
                      size_t header_len,
                      zmq_msg_t *frames,
                      size_t n_frames);

// Hand buffer data (len bytes, from malloc; owned from now on) to ZeroMQ as
// message *out, freed when sent: no copy. Returns 0, or DV_ENOMEM (data is
// freed and *out left empty). A large buffer is kept for dv_wire_buf_get
// instead of freed (DV_WIRE_KEEP_*, dv_limits.h).
int dv_wire_msg_adopt(zmq_msg_t *out, void *data, size_t len);

// A buffer of at least n bytes for a message to adopt: one kept from an
// earlier message when one fits (at most 4 n bytes), else dv_malloc's.
// Either way a malloc block: the caller owns it and may free() it instead.
// Thread-safe (ZeroMQ's I/O thread gives buffers back).
void *dv_wire_buf_get(size_t n);

// Bytes kept now (tests).
size_t dv_wire_buf_kept_bytes(void);

// Send an `error` reply {rid, error: {name, text}} (plus `job` when nonzero).
int dv_wire_send_error(void *socket,
                       const void *route,
                       size_t route_len,
                       uint64_t rid,
                       uint64_t job,
                       int code,
                       const char *text);

#endif
