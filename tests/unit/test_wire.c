// test_wire — whole messages on ZeroMQ sockets: a routed send arrives as
// header + frames; frames sent as ZeroMQ messages (shared with zmq_msg_copy,
// or an adopted buffer) arrive byte for byte, leave a shared source intact,
// and are released when the message cannot go (ASan's leak check fails the
// test otherwise); a message with too many frames is flagged.
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "dv_limits.h"
#include "dv_test.h"
#include "dv_wire.h"

typedef struct {
    void *ctx, *router, *dealer;
    char ep[64];
} pair_t;

static void
pair_open(pair_t *p, const char *name)
{
    p->ctx = zmq_ctx_new();
    p->router = zmq_socket(p->ctx, ZMQ_ROUTER);
    p->dealer = zmq_socket(p->ctx, ZMQ_DEALER);
    snprintf(p->ep, sizeof p->ep, "inproc://test-wire-%s", name);
    zmq_bind(p->router, p->ep);
    zmq_connect(p->dealer, p->ep);
}

static void
pair_close(pair_t *p)
{
    int zero = 0;
    zmq_setsockopt(p->router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(p->dealer, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(p->router);
    zmq_close(p->dealer);
    zmq_ctx_term(p->ctx);
}

// Wait for one message on s (1 s at most), then read it.
static int
recv_one(void *s, bool routed, dv_wire_msg_t *m)
{
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 1000) != 1) {
        return 0;
    }
    return dv_wire_recv(s, routed, m);
}

static bool
frame_is(const dv_wire_msg_t *m, size_t i, const void *data, size_t len)
{
    return i < m->n_payload && m->frames[i].len == len &&
           (len == 0 || memcmp(m->frames[i].data, data, len) == 0);
}

static void
test_shared_and_adopted_frames_arrive(void)
{
    pair_t p;
    pair_open(&p, "shared");
    size_t big = 256 * 1024;
    uint8_t *bytes = malloc(big);
    for (size_t i = 0; i < big; i++) {
        bytes[i] = (uint8_t)(i * 7 + 3);
    }
    // The dealer says hello so the router learns its routing id.
    const uint8_t hello[] = "hi";
    dv_wire_send(p.dealer, NULL, 0, hello, 2, NULL, 0);
    dv_wire_msg_t in;
    int got_hello = recv_one(p.router, true, &in);
    zmq_msg_t route;
    zmq_msg_init(&route);
    zmq_msg_copy(&route, &in.route);
    dv_wire_msg_close(&in);

    zmq_msg_t source; // what a broker keeps of a submit: sent on, shared
    zmq_msg_init_size(&source, big);
    memcpy(zmq_msg_data(&source), bytes, big);
    zmq_msg_t frames[2];
    zmq_msg_init(&frames[0]);
    zmq_msg_copy(&frames[0], &source);
    uint8_t *owned = malloc(big); // handed over: ZeroMQ frees it
    memcpy(owned, bytes, big);
    int adopted = dv_wire_msg_adopt(&frames[1], owned, big);
    const uint8_t header[] = "header";
    int sent = dv_wire_send_msgs(p.router, zmq_msg_data(&route),
                                 zmq_msg_size(&route), header, 6, frames, 2);
    int got = recv_one(p.dealer, false, &in);
    bool header_ok = got == 1 && zmq_msg_size(&in.header) == 6 &&
                     memcmp(zmq_msg_data(&in.header), header, 6) == 0;
    bool two = got == 1 && in.n_payload == 2;
    bool first = got == 1 && frame_is(&in, 0, bytes, big);
    bool second = got == 1 && frame_is(&in, 1, bytes, big);
    if (got == 1) {
        dv_wire_msg_close(&in);
    }
    // The kept source is intact after its copy went out.
    bool intact = zmq_msg_size(&source) == big &&
                  memcmp(zmq_msg_data(&source), bytes, big) == 0;
    zmq_msg_close(&source);
    zmq_msg_close(&route);
    pair_close(&p);
    free(bytes);
    DV_CHECK_EQ(got_hello, 1);
    DV_CHECK_EQ(adopted, 0);
    DV_CHECK_EQ(sent, 0);
    DV_CHECK(header_ok);
    DV_CHECK(two);
    DV_CHECK(first);
    DV_CHECK(second);
    DV_CHECK(intact);
}

// A message that cannot go (a DEALER with no peer, never blocking): the
// frames are released all the same, the adopted buffer freed (leak check).
static void
test_unsent_frames_are_released(void)
{
    void *ctx = zmq_ctx_new();
    void *lonely = zmq_socket(ctx, ZMQ_DEALER);
    zmq_msg_t frames[2];
    zmq_msg_init_size(&frames[0], 64 * 1024);
    int adopted = dv_wire_msg_adopt(&frames[1], malloc(100 * 1024), 100 * 1024);
    const uint8_t header[] = "h";
    int rc = dv_wire_send_msgs(lonely, NULL, 0, header, 1, frames, 2);
    int zero = 0;
    zmq_setsockopt(lonely, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(lonely);
    zmq_ctx_term(ctx);
    DV_CHECK_EQ(adopted, 0);
    DV_CHECK_EQ(rc, DV_EIO);
}

static void
test_too_many_frames_flagged(void)
{
    pair_t p;
    pair_open(&p, "many");
    dv_frame_t frames[DV_MAX_FRAMES + 2];
    for (size_t i = 0; i < DV_MAX_FRAMES + 2; i++) {
        frames[i] = (dv_frame_t){(const uint8_t *)"f", 1};
    }
    const uint8_t header[] = "h";
    dv_wire_send(p.dealer, NULL, 0, header, 1, frames, DV_MAX_FRAMES + 2);
    dv_wire_send(p.dealer, NULL, 0, header, 1, frames, DV_MAX_FRAMES);
    dv_wire_msg_t in;
    int got = recv_one(p.router, true, &in);
    bool flagged = got == 1 && in.too_many && in.n_payload == DV_MAX_FRAMES;
    if (got == 1) {
        dv_wire_msg_close(&in);
    }
    got = recv_one(p.router, true, &in); // the next one is whole
    bool next_ok = got == 1 && !in.too_many && in.n_payload == DV_MAX_FRAMES;
    if (got == 1) {
        dv_wire_msg_close(&in);
    }
    pair_close(&p);
    DV_CHECK(flagged);
    DV_CHECK(next_ok);
}

// Large adopted buffers come back for the next message of about their
// size once ZeroMQ lets go of them (here: closed unsent); small ones, and
// ones past the count or byte bound, are freed (ASan: no leak, no reuse of
// a freed block).
static void
test_large_buffers_are_kept(void)
{
    const size_t big = DV_WIRE_KEEP_MIN * 8; // a 512-row request's input
    size_t before = dv_wire_buf_kept_bytes();
    uint8_t *a = dv_wire_buf_get(big);
    size_t usable = malloc_usable_size(a);
    memset(a, 0x11, big);
    zmq_msg_t m;
    DV_CHECK_EQ(dv_wire_msg_adopt(&m, a, big), 0);
    zmq_msg_close(&m); // ZeroMQ lets go: kept
    size_t kept = dv_wire_buf_kept_bytes();
    uint8_t *again = dv_wire_buf_get(big - 100); // fits: the same block
    size_t taken = dv_wire_buf_kept_bytes();
    uint8_t *tiny = dv_wire_buf_get(100); // under the minimum
    DV_CHECK_EQ(dv_wire_msg_adopt(&m, tiny, 100), 0);
    zmq_msg_close(&m);
    size_t after_tiny = dv_wire_buf_kept_bytes(); // freed, not kept
    DV_CHECK_EQ(dv_wire_msg_adopt(&m, again, big - 100), 0);
    zmq_msg_close(&m);
    uint8_t *small = dv_wire_buf_get(big / 8); // it would waste 7/8 of it
    bool small_fresh = small != again;
    free(small); // a plain malloc block either way
    // More buffers than the bound keeps: at most DV_WIRE_KEEP_BUFS stay.
    enum { N = DV_WIRE_KEEP_BUFS + 4 };
    uint8_t *many[N];
    for (size_t i = 0; i < N; i++) {
        many[i] = dv_wire_buf_get(big);
    }
    for (size_t i = 0; i < N; i++) {
        many[i][big - 1] = (uint8_t)i; // all of it usable
        DV_CHECK_EQ(dv_wire_msg_adopt(&m, many[i], big), 0);
        zmq_msg_close(&m);
    }
    size_t full = dv_wire_buf_kept_bytes();
    DV_CHECK_EQ(kept, before + usable);
    DV_CHECK(again == a);
    DV_CHECK_EQ(taken, before);
    DV_CHECK_EQ(after_tiny, before);
    DV_CHECK(small_fresh);
    DV_CHECK(full <= DV_WIRE_KEEP_BYTES);
    DV_CHECK(full <= before + (size_t)DV_WIRE_KEEP_BUFS * usable);
    DV_CHECK(full >= (size_t)DV_WIRE_KEEP_BUFS * usable);
}

static const dv_test_case_t cases[] = {
    {"large adopted buffers are kept for the next message, within bounds",
     test_large_buffers_are_kept},
    {"shared and adopted frames arrive byte for byte",
     test_shared_and_adopted_frames_arrive},
    {"unsent frames are released", test_unsent_frames_are_released},
    {"too many frames flagged, the next message whole",
     test_too_many_frames_flagged},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
