// dv_wire — multipart protocol messages on ZeroMQ sockets.
#include "dv_wire.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dv_limits.h"
#include "dv_mem.h"

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

// Kept large buffers (DV_WIRE_KEEP_*), newest last, each with its usable
// size: a stack, so the buffer most recently in cache goes out first.
static struct {
    pthread_mutex_t mu;
    void *bufs[DV_WIRE_KEEP_BUFS];
    size_t sizes[DV_WIRE_KEEP_BUFS];
    size_t n, bytes;
} s_keep = {.mu = PTHREAD_MUTEX_INITIALIZER};

void *
dv_wire_buf_get(size_t n)
{
    if (n >= DV_WIRE_KEEP_MIN) {
        void *p = NULL;
        pthread_mutex_lock(&s_keep.mu);
        for (size_t i = s_keep.n; i-- > 0;) {
            if (s_keep.sizes[i] >= n && s_keep.sizes[i] / 4 <= n) {
                p = s_keep.bufs[i];
                s_keep.bytes -= s_keep.sizes[i];
                s_keep.n--;
                s_keep.bufs[i] = s_keep.bufs[s_keep.n];
                s_keep.sizes[i] = s_keep.sizes[s_keep.n];
                break;
            }
        }
        pthread_mutex_unlock(&s_keep.mu);
        if (p) {
            return p;
        }
    }
    return dv_malloc(n ? n : 1);
}

size_t
dv_wire_buf_kept_bytes(void)
{
    pthread_mutex_lock(&s_keep.mu);
    size_t b = s_keep.bytes;
    pthread_mutex_unlock(&s_keep.mu);
    return b;
}

// ZeroMQ is done with an adopted buffer (on its I/O thread, or the
// caller's when the message is closed unsent).
static void
free_adopted(void *data, void *hint)
{
    (void)hint;
    size_t size = data ? malloc_usable_size(data) : 0;
    if (size >= DV_WIRE_KEEP_MIN) {
        pthread_mutex_lock(&s_keep.mu);
        if (s_keep.n < DV_WIRE_KEEP_BUFS &&
            s_keep.bytes + size <= DV_WIRE_KEEP_BYTES) {
            s_keep.bufs[s_keep.n] = data;
            s_keep.sizes[s_keep.n++] = size;
            s_keep.bytes += size;
            data = NULL;
        }
        pthread_mutex_unlock(&s_keep.mu);
    }
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
