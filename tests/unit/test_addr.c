// test_addr — the hints for endpoints libzmq refuses. Each row is first
// refused by the real libzmq (so the errno the hint keys on is the one
// libzmq gives), then the hint must name the fix.
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "dv_addr.h"
#include "dv_test.h"

static void
test_refused_endpoints(void)
{
    static const struct {
        const char *endpoint;
        bool bind;
        const char *hint; // a part of the hint
    } rows[] = {
        {"localhost:7470", false, "write tcp://localhost:7470"},
        {"127.0.0.1:7470", true, "write tcp://127.0.0.1:7470"},
        {"/tmp/drover.sock", false, "write ipc:///tmp/drover.sock"},
        {"drover", false, "tcp://HOST:PORT or ipc:///PATH"},
        {"tcp://localhost:0", true, "not a host name"},
        {"tcp://no.such.interface.invalid:0", true, "not a host name"},
        {"tcp://127.0.0.1", false, "needs a port"},
        {"tcp://127.0.0.1", true, "needs a port"},
        {"htp://127.0.0.1:7470", false, "tcp://, ipc:// and inproc://"},
    };
    void *ctx = zmq_ctx_new();
    DV_CHECK(ctx != NULL);
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        void *s = zmq_socket(ctx, ZMQ_DEALER);
        int rc = rows[i].bind ? zmq_bind(s, rows[i].endpoint)
                              : zmq_connect(s, rows[i].endpoint);
        int zerr = zmq_errno();
        zmq_close(s);
        char hint[256];
        dv_addr_hint(rows[i].endpoint, zerr, rows[i].bind, hint, sizeof hint);
        if (rc == 0 || !strstr(hint, rows[i].hint)) {
            fprintf(stderr, "  %s (%s): rc %d, %s -> '%s'\n", rows[i].endpoint,
                    rows[i].bind ? "bind" : "connect", rc, zmq_strerror(zerr),
                    hint);
        }
        DV_CHECK_EQ(rc, -1);
        DV_CHECK(strncmp(hint, "; ", 2) == 0);
        DV_CHECK(strstr(hint, rows[i].hint) != NULL);
    }
    zmq_ctx_term(ctx);
}

static void
test_taken_port(void)
{
    void *ctx = zmq_ctx_new();
    void *a = zmq_socket(ctx, ZMQ_ROUTER), *b = zmq_socket(ctx, ZMQ_ROUTER);
    DV_CHECK_EQ(zmq_bind(a, "tcp://127.0.0.1:*"), 0);
    char ep[256];
    size_t len = sizeof ep;
    zmq_getsockopt(a, ZMQ_LAST_ENDPOINT, ep, &len);
    DV_CHECK_EQ(zmq_bind(b, ep), -1);
    char hint[256];
    dv_addr_hint(ep, zmq_errno(), true, hint, sizeof hint);
    DV_CHECK(strstr(hint, "another process listens") != NULL);
    zmq_close(a);
    zmq_close(b);
    zmq_ctx_term(ctx);
}

static void
test_no_hint(void)
{
    char hint[64] = "x";
    // a good endpoint refused for a reason the hint cannot help with
    dv_addr_hint("tcp://127.0.0.1:7470", EAGAIN, false, hint, sizeof hint);
    DV_CHECK_EQ(hint[0], '\0');
    dv_addr_hint(NULL, EINVAL, false, hint, sizeof hint);
    DV_CHECK_EQ(hint[0], '\0');
    // truncated, still terminated
    char small[8];
    dv_addr_hint("localhost:7470", EINVAL, false, small, sizeof small);
    DV_CHECK_EQ(strlen(small), 7u);
}

static const dv_test_case_t cases[] = {
    {"refused endpoints get a hint naming the fix", test_refused_endpoints},
    {"a taken tcp port", test_taken_port},
    {"nothing to add, NULL, truncation", test_no_hint},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
