// dv_wire — multipart protocol messages on ZeroMQ sockets.
#include "dv_wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

// This thread's dv_wire_on_use hook (NULL: none).
static __thread dv_wire_use_fn *s_on_use;

void
dv_wire_on_use(dv_wire_use_fn *fn)
{
    s_on_use = fn;
}

static bool
more(zmq_msg_t *msg)
{
    return zmq_msg_more(msg) != 0;
}

int
dv_wire_recv(void *socket, bool routed, dv_wire_msg_t *m)
{
    memset(m, 0, sizeof *m);
    if (s_on_use) {
        s_on_use(socket); // a sole watcher asks ZMQ_EVENTS again
    }
    zmq_msg_t *first = routed ? &m->route : &m->header;
    zmq_msg_init(first);
    if (zmq_msg_recv(first, socket, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(first);
        return errno == EAGAIN ? 0 : DV_EIO;
    }
    m->routed = routed;
    if (routed) {
        zmq_msg_init(&m->header);
        if (!more(&m->route)) {
            m->no_header = true; // a routing id with nothing after it
            return 1;
        }
        zmq_msg_recv(&m->header, socket, 0);
    }
    bool go_on = more(&m->header);
    while (go_on) {
        if (m->n_payload == DV_MAX_FRAMES) {
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            zmq_msg_recv(&extra, socket, 0);
            go_on = more(&extra);
            zmq_msg_close(&extra);
            m->too_many = true;
            continue;
        }
        zmq_msg_t *p = &m->payload[m->n_payload];
        zmq_msg_init(p);
        zmq_msg_recv(p, socket, 0);
        m->frames[m->n_payload].data = zmq_msg_data(p);
        m->frames[m->n_payload].len = zmq_msg_size(p);
        m->n_payload++;
        go_on = more(p);
    }
    return 1;
}

void
dv_wire_msg_close(dv_wire_msg_t *m)
{
    if (m->routed) {
        zmq_msg_close(&m->route);
    }
    zmq_msg_close(&m->header);
    for (size_t i = 0; i < m->n_payload; i++) {
        zmq_msg_close(&m->payload[i]);
    }
    m->n_payload = 0;
}

// The routing id (when route is set) and the header of a message; more:
// payload frames follow. Never blocks. Returns 0 or DV_EIO.
static int
send_head(void *socket,
          const void *route,
          size_t route_len,
          const uint8_t *header,
          size_t header_len,
          bool more)
{
    int flags = ZMQ_DONTWAIT;
    if (s_on_use) {
        s_on_use(socket); // a sole watcher asks ZMQ_EVENTS again
    }
    if (route && zmq_send(socket, route, route_len, flags | ZMQ_SNDMORE) < 0) {
        return DV_EIO;
    }
    if (zmq_send(socket, header, header_len, flags | (more ? ZMQ_SNDMORE : 0)) <
        0) {
        return DV_EIO;
    }
    return 0;
}

int
dv_wire_send(void *socket,
             const void *route,
             size_t route_len,
             const uint8_t *header,
             size_t header_len,
             const dv_frame_t *frames,
             size_t n_frames)
{
    int flags = ZMQ_DONTWAIT;
    if (send_head(socket, route, route_len, header, header_len, n_frames > 0) !=
        0) {
        return DV_EIO;
    }
    for (size_t i = 0; i < n_frames; i++) {
        if (zmq_send(socket, frames[i].data, frames[i].len,
                     flags | (i + 1 < n_frames ? ZMQ_SNDMORE : 0)) < 0) {
            return DV_EIO;
        }
    }
    return 0;
}

int
dv_wire_send_msgs(void *socket,
                  const void *route,
                  size_t route_len,
                  const uint8_t *header,
                  size_t header_len,
                  zmq_msg_t *frames,
                  size_t n_frames)
{
    int flags = ZMQ_DONTWAIT;
    int rc =
        send_head(socket, route, route_len, header, header_len, n_frames > 0);
    size_t sent = 0;
    for (; rc == 0 && sent < n_frames; sent++) {
        if (zmq_msg_send(&frames[sent], socket,
                         flags | (sent + 1 < n_frames ? ZMQ_SNDMORE : 0)) < 0) {
            rc = DV_EIO;
            break;
        }
    }
    for (size_t i = sent; i < n_frames; i++) {
        zmq_msg_close(&frames[i]); // not sent: ours to release
    }
    return rc;
}

static void
free_adopted(void *data, void *hint)
{
    (void)hint;
    free(data);
}

int
dv_wire_msg_adopt(zmq_msg_t *out, void *data, size_t len)
{
    if (zmq_msg_init_data(out, data, len, free_adopted, NULL) != 0) {
        free(data);
        zmq_msg_init(out);
        return DV_ENOMEM;
    }
    return 0;
}

int
dv_wire_send_error(void *socket,
                   const void *route,
                   size_t route_len,
                   uint64_t rid,
                   uint64_t job,
                   int code,
                   const char *text)
{
    dv_msgw_t *w = dv_msgw_error_reply(rid, job, code, text);
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    int rc = dv_wire_send(socket, route, route_len, h, len, NULL, 0);
    dv_msgw_destroy(&w);
    return rc;
}
