// test_relay — the test helper relay (dv_test_relay) passes bytes through
// intact in both directions, for several connections at once, records them
// all, and closes its connections when asked to stop or when the upstream
// refuses.
//
// The upstream is an echo server on a thread of its own (poll over
// non-blocking sockets, a self-pipe to stop). Clients send and read at the
// same time (poll) once their socket is full, as a large message through two
// hops of socket buffers would otherwise deadlock a client that writes
// everything before reading.
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dv_mem.h"
#include "dv_test.h"
#include "dv_test_proc.h"
#include "dv_test_relay.h"

#define ECHO_MAX_CONNS 8         // connections the echo server serves at once
#define ECHO_CHUNK     65536     // bytes per read in the echo server
#define CLIENT_RCVBUF  4096      // bytes; see connect_local
#define BIG_BYTES      (1 << 20) // the large message: many partial writes

static const char never_sent[] = "NEVER-SENT-c2b1f0e9d8";

// ---- echo server -----------------------------------------------------------

typedef struct {
    pthread_t thread;              // runs echo_loop
    int listen_fd;                 // 127.0.0.1:port, non-blocking
    int port;                      // listening port
    int wake[2];                   // self-pipe: a byte means stop
    int conns[ECHO_MAX_CONNS];     // accepted sockets, [0, n_conns)
    size_t n_conns;                // count of conns
    unsigned char buf[ECHO_CHUNK]; // one read, echoed before the next
} echo_t;

static int
nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

// Send all of buf on a non-blocking socket. False on error or stop.
static bool
echo_send_all(echo_t *e, int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pf[2] = {{fd, POLLOUT, 0}, {e->wake[0], POLLIN, 0}};
            if (poll(pf, 2, -1) < 0 && errno != EINTR) {
                return false;
            }
            if (pf[1].revents) {
                return false;
            }
        } else {
            return false;
        }
    }
    return true;
}

static void *
echo_loop(void *arg)
{
    echo_t *e = arg;
    for (;;) {
        struct pollfd fds[2 + ECHO_MAX_CONNS];
        fds[0] = (struct pollfd){e->wake[0], POLLIN, 0};
        fds[1] = (struct pollfd){e->listen_fd, POLLIN, 0};
        for (size_t k = 0; k < e->n_conns; k++) {
            fds[2 + k] = (struct pollfd){e->conns[k], POLLIN, 0};
        }
        if (poll(fds, (nfds_t)(2 + e->n_conns), -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return NULL;
        }
        if (fds[0].revents) {
            return NULL;
        }
        size_t n_polled = e->n_conns;
        for (size_t k = n_polled; k-- > 0;) {
            if (!fds[2 + k].revents) {
                continue;
            }
            ssize_t n = recv(e->conns[k], e->buf, sizeof e->buf, 0);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
                continue;
            }
            if (n <= 0 || !echo_send_all(e, e->conns[k], e->buf, (size_t)n)) {
                close(e->conns[k]);
                e->conns[k] = e->conns[--e->n_conns];
            }
        }
        if (fds[1].revents) {
            int fd = accept(e->listen_fd, NULL, NULL);
            if (fd >= 0 && e->n_conns < ECHO_MAX_CONNS && nonblock(fd) == 0) {
                e->conns[e->n_conns++] = fd;
            } else if (fd >= 0) {
                close(fd);
            }
        }
    }
}

// A listening socket on 127.0.0.1, ephemeral port; -1 on failure.
static int
listen_local(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in at = {0};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t at_len = sizeof at;
    if (fd < 0 || bind(fd, (struct sockaddr *)&at, sizeof at) != 0 ||
        listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&at, &at_len) != 0) {
        perror("echo listen");
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    *port = ntohs(at.sin_port);
    return fd;
}

// Caller stops it with echo_stop; NULL on failure.
static echo_t *
echo_start(void)
{
    echo_t *e = dv_calloc(1, sizeof *e);
    e->listen_fd = listen_local(&e->port);
    if (e->listen_fd < 0 || nonblock(e->listen_fd) != 0) {
        goto fail;
    }
    if (pipe(e->wake) != 0) {
        goto fail_listen;
    }
    if (pthread_create(&e->thread, NULL, echo_loop, e) != 0) {
        close(e->wake[0]);
        close(e->wake[1]);
        goto fail_listen;
    }
    return e;
fail_listen:
    close(e->listen_fd);
fail:
    free(e);
    return NULL;
}

static void
echo_stop(echo_t **e_p)
{
    echo_t *e = *e_p;
    if (!e) {
        return;
    }
    if (write(e->wake[1], "x", 1) != 1) {
        perror("echo wake");
    }
    pthread_join(e->thread, NULL);
    for (size_t k = 0; k < e->n_conns; k++) {
        close(e->conns[k]);
    }
    close(e->listen_fd);
    close(e->wake[0]);
    close(e->wake[1]);
    free(e);
    *e_p = NULL;
}

// ---- clients ---------------------------------------------------------------

// A blocking connect to 127.0.0.1:port, then non-blocking; -1 on failure.
// A small receive buffer (set before connect, so the window is small from the
// start) keeps the echoes from draining into us at once, so the relay's
// writes to us can go partial.
static int
connect_local(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int rcvbuf = CLIENT_RCVBUF;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    struct sockaddr_in to = {0};
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof to) != 0 ||
        nonblock(fd) != 0) {
        perror("connect to relay");
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

// Send msg and read as many bytes back within the deadline, sending and
// reading at once after a first burst. True when all of them came back equal
// to msg.
static bool
exchange(int fd, const unsigned char *msg, size_t len)
{
    unsigned char *back = dv_malloc(len);
    size_t sent = 0, got = 0;
    // First write without reading until the socket is full: the echoes back
    // up in our small receive buffer, and once the relay's send buffer is
    // full too its writes to us go partial: it must hold its pending bytes
    // and stop reading the echo server. Loopback send buffers autotune to
    // about 1.4 MiB, so 1 MiB may pass without that; the 40 MiB case below
    // reaches it every time (10 to 30 partial writes a run on Debian 12).
    for (;;) {
        ssize_t n = send(fd, msg + sent, len - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
        }
        if (sent == len || (n < 0 && errno != EINTR)) {
            break;
        }
    }
    int64_t end = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
    while (got < len && dv_test_now_ms() < end) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (sent < len) {
            pf.events |= POLLOUT;
        }
        if (poll(&pf, 1, 100) <= 0) {
            continue;
        }
        if (sent < len && (pf.revents & POLLOUT)) {
            ssize_t n = send(fd, msg + sent, len - sent, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                break;
            }
            sent += n > 0 ? (size_t)n : 0;
        }
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, back + got, len - got, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                break;
            }
            got += n > 0 ? (size_t)n : 0;
        }
    }
    bool ok = got == len && memcmp(back, msg, len) == 0;
    free(back);
    return ok;
}

// Wait for the peer to close fd (EOF or reset) within the deadline.
static bool
sees_close(int fd)
{
    int64_t end = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
    while (dv_test_now_ms() < end) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0) {
            continue;
        }
        char c;
        ssize_t n = recv(fd, &c, 1, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            return true;
        }
    }
    return false;
}

static unsigned char *
pattern(size_t len, uint32_t seed)
{
    unsigned char *p = dv_malloc(len);
    uint32_t x = seed;
    for (size_t b = 0; b < len; b++) {
        x = x * 1664525u + 1013904223u; // Numerical Recipes LCG
        p[b] = (unsigned char)(x >> 24);
    }
    return p;
}

typedef struct {
    pthread_t thread;   // runs client_run
    int port;           // the relay's port
    const char *marker; // sent in the small messages
    uint32_t seed;      // for the 1 MiB message
    size_t n_bytes;     // bytes sent (as many came back)
    int ok;             // messages that came back intact
} client_t;

enum { CLIENT_MESSAGES = 3 };

static void *
client_run(void *arg)
{
    client_t *c = arg;
    int fd = connect_local(c->port);
    if (fd < 0) {
        return NULL;
    }
    char hello[64];
    int hello_len = snprintf(hello, sizeof hello, "hello %s", c->marker);
    unsigned char *big = pattern(BIG_BYTES, c->seed);
    const char bye[] = "bye";
    c->ok += exchange(fd, (const unsigned char *)hello, (size_t)hello_len);
    c->ok += exchange(fd, big, BIG_BYTES);
    c->ok += exchange(fd, (const unsigned char *)bye, sizeof bye - 1);
    c->n_bytes = (size_t)hello_len + BIG_BYTES + sizeof bye - 1;
    free(big);
    close(fd);
    return NULL;
}

// ---- cases -----------------------------------------------------------------

static void
test_two_clients_echo_intact(void)
{
    echo_t *e = echo_start();
    DV_CHECK(e != NULL);
    int port = 0;
    dv_relay_t *r = dv_relay_start(e->port, &port);
    if (!r) {
        echo_stop(&e);
    }
    DV_CHECK(r != NULL);
    client_t c[2] = {
        {.port = port, .marker = "MARKER-A-5d1e", .seed = 1},
        {.port = port, .marker = "MARKER-B-93c7", .seed = 2},
    };
    for (int k = 0; k < 2; k++) {
        dv_assert(pthread_create(&c[k].thread, NULL, client_run, &c[k]) == 0);
    }
    for (int k = 0; k < 2; k++) {
        pthread_join(c[k].thread, NULL);
    }
    bool saw_a = dv_relay_saw(r, c[0].marker, strlen(c[0].marker));
    bool saw_b = dv_relay_saw(r, c[1].marker, strlen(c[1].marker));
    bool saw_never = dv_relay_saw(r, never_sent, sizeof never_sent - 1);
    unsigned char *big_b = pattern(BIG_BYTES, c[1].seed);
    bool saw_big_b = dv_relay_saw(r, big_b + BIG_BYTES / 2, 256);
    free(big_b);
    size_t len = 0;
    unsigned char *cap = dv_relay_captured(r, &len);
    free(cap);
    bool over = dv_relay_overflowed(r);
    dv_relay_stop(&r);
    dv_relay_stop(&r); // idempotent
    echo_stop(&e);
    DV_CHECK_EQ(c[0].ok, CLIENT_MESSAGES);
    DV_CHECK_EQ(c[1].ok, CLIENT_MESSAGES);
    DV_CHECK(saw_a);
    DV_CHECK(saw_b);
    DV_CHECK(saw_big_b);
    DV_CHECK(!saw_never);
    // Every byte crossed twice (there and back), and each was recorded once
    // per crossing.
    DV_CHECK_EQ(len, 2 * (c[0].n_bytes + c[1].n_bytes));
    DV_CHECK(!over);
    DV_CHECK(r == NULL);
}

static void
test_stop_closes_open_connections(void)
{
    echo_t *e = echo_start();
    DV_CHECK(e != NULL);
    int port = 0;
    dv_relay_t *r = dv_relay_start(e->port, &port);
    int fd = r ? connect_local(port) : -1;
    bool echoed = fd >= 0 && exchange(fd, (const unsigned char *)"ping", 4);
    dv_relay_stop(&r);
    bool closed = fd >= 0 && sees_close(fd);
    if (fd >= 0) {
        close(fd);
    }
    echo_stop(&e);
    DV_CHECK(echoed);
    DV_CHECK(closed);
}

static void
test_refused_upstream_closes_client(void)
{
    // Bound but not listening: the port is ours and connect() is refused.
    int held = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in at = {0};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t at_len = sizeof at;
    DV_CHECK(held >= 0);
    bool bound = bind(held, (struct sockaddr *)&at, sizeof at) == 0 &&
                 getsockname(held, (struct sockaddr *)&at, &at_len) == 0;
    if (!bound) {
        close(held);
    }
    DV_CHECK(bound);
    int port = 0;
    dv_relay_t *r = dv_relay_start(ntohs(at.sin_port), &port);
    int fd = r ? connect_local(port) : -1;
    bool closed = fd >= 0 && sees_close(fd);
    if (fd >= 0) {
        close(fd);
    }
    dv_relay_stop(&r);
    close(held);
    DV_CHECK(closed);
}

static void
test_bad_target_port_fails(void)
{
    int port = -1;
    dv_relay_t *zero = dv_relay_start(0, &port);
    dv_relay_t *big = dv_relay_start(65536, &port);
    bool none = !zero && !big;
    dv_relay_stop(&zero);
    dv_relay_stop(&big);
    DV_CHECK(none);
    DV_CHECK_EQ(port, -1);
}

static void
test_overflow_keeps_relaying(void)
{
    echo_t *e = echo_start();
    DV_CHECK(e != NULL);
    int port = 0;
    dv_relay_t *r = dv_relay_start(e->port, &port);
    // 40 MiB there and back is 80 MiB across the relay, past the 64 MiB cap.
    size_t n_bytes = (size_t)40 << 20;
    unsigned char *msg = pattern(n_bytes, 3);
    int fd = r ? connect_local(port) : -1;
    bool echoed = fd >= 0 && exchange(fd, msg, n_bytes);
    bool after = fd >= 0 && exchange(fd, (const unsigned char *)"after", 5);
    if (fd >= 0) {
        close(fd);
    }
    free(msg);
    size_t len = 0;
    bool over = false, saw_after = true;
    if (r) {
        free(dv_relay_captured(r, &len));
        over = dv_relay_overflowed(r);
        saw_after = dv_relay_saw(r, "after", 5);
    }
    dv_relay_stop(&r);
    echo_stop(&e);
    DV_CHECK(echoed);
    DV_CHECK(after);
    DV_CHECK(over);
    DV_CHECK_EQ(len, DV_RELAY_MAX_CAPTURE);
    DV_CHECK(!saw_after); // relayed, not recorded
}

static const dv_test_case_t cases[] = {
    {"two clients at once, 1 MiB echoes intact, all recorded",
     test_two_clients_echo_intact},
    {"stop closes open connections", test_stop_closes_open_connections},
    {"refused upstream closes the client", test_refused_upstream_closes_client},
    {"bad target port fails", test_bad_target_port_fails},
    {"past 64 MiB it relays without recording", test_overflow_keeps_relaying},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
