// dv_test_relay — a raw TCP relay that records what crosses it (see
// dv_test_relay.h).
//
// Model: one thread runs poll() over a self-pipe (stop), the listening socket
// and, for every relayed connection, a pair of non-blocking sockets: the
// accepted client and the upstream it opened to the target. Each pair has one
// buffer per direction: out[i] holds bytes read from the other side that are
// not yet written to fd[i]. A side is read only while the buffer it reads
// into is empty, so a slow reader throttles its peer through TCP instead of
// through our memory, and each buffer holds at most one read (RELAY_CHUNK).
// Bytes are recorded when read, so the capture is in arrival order and a
// byte is recorded before anyone can have received it from us.
//
// A pair is closed as soon as either side closes (EOF), fails, or its
// upstream connect fails; bytes still pending towards the other side are
// dropped (the tests relay ZeroMQ, which does not half-close).
//
// Damage (dv_relay_corrupt): each pair keeps the last needle-length - 1
// bytes it read from upstream (`tail`), so an occurrence that a read
// completes is found even when it began in an earlier read; its last byte is
// in the read that completes it, not yet passed on, and is inverted there.
//
// Threads: the relay thread owns the sockets and pairs; the capture buffer
// and the damage settings are shared with the caller's thread under
// `lock`. dv_relay_stop wakes the
// thread through the pipe and joins it before freeing anything.
//
// Every descriptor is close-on-exec: tests posix_spawn daemons while the
// relay runs, and a child holding a copy of a relayed socket would keep that
// connection open after we close it. accept4 is not in POSIX 2008, so an
// accepted socket gets FD_CLOEXEC a moment after accept(); a spawn in that
// moment is the one way a child inherits one.
#include "dv_test_relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dv_mem.h"

#define RELAY_CHUNK   65536 // bytes per read: one buffer per direction
#define RELAY_CAP_MIN 65536 // first capture allocation, bytes
#define RELAY_BACKLOG 64    // listen() backlog, connections

enum { SIDE_CLIENT = 0, SIDE_UPSTREAM = 1 };

typedef struct {
    int fd[2];                         // [SIDE_CLIENT], [SIDE_UPSTREAM]
    bool connecting;                   // upstream connect() in progress
    bool closed;                       // done; removed after this poll round
    size_t off[2];                     // bytes of out[i] already written
    size_t len[2];                     // bytes in out[i]; 0 when empty
    unsigned char out[2][RELAY_CHUNK]; // out[i]: read from 1-i, for fd[i]

    // For dv_relay_corrupt: the end of what was read from upstream.
    unsigned char tail[DV_RELAY_MAX_NEEDLE]; // last bytes read upstream
    size_t tail_len;                         // bytes in tail
} pair_t;

struct dv_relay {
    pthread_t thread;                  // runs relay_loop
    int listen_fd;                     // 127.0.0.1:port, non-blocking
    int wake[2];                       // self-pipe: a byte means stop
    int target_port;                   // upstream port on 127.0.0.1
    pair_t *pairs[DV_RELAY_MAX_PAIRS]; // open pairs, [0, n_pairs)
    size_t n_pairs;                    // count of pairs
    pthread_mutex_t lock;              // guards the fields below
    unsigned char *cap;                // captured bytes
    size_t cap_len;                    // bytes in cap
    size_t cap_size;                   // bytes allocated for cap
    bool overflowed;                   // hit DV_RELAY_MAX_CAPTURE

    // What dv_relay_corrupt damages (under lock too).
    unsigned char needle[DV_RELAY_MAX_NEEDLE]; // dv_relay_corrupt's bytes
    size_t needle_len;                         // 0: damage nothing
    unsigned corrupt_left;                     // occurrences still to damage
    unsigned corrupted;                        // occurrences damaged
};

static int
set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        return -1;
    }
    int fdfl = fcntl(fd, F_GETFD);
    if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) {
        return -1;
    }
    return 0;
}

static void
close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static void
close_pair(pair_t *p)
{
    close_fd(&p->fd[SIDE_CLIENT]);
    close_fd(&p->fd[SIDE_UPSTREAM]);
    p->closed = true;
}

static void
record(dv_relay_t *r, const unsigned char *data, size_t n)
{
    pthread_mutex_lock(&r->lock);
    if (!r->overflowed) {
        size_t take = n;
        if (take > DV_RELAY_MAX_CAPTURE - r->cap_len) {
            take = DV_RELAY_MAX_CAPTURE - r->cap_len;
            r->overflowed = true;
        }
        if (r->cap_len + take > r->cap_size) {
            size_t size = r->cap_size ? r->cap_size : RELAY_CAP_MIN;
            while (size < r->cap_len + take) {
                size *= 2;
            }
            if (size > DV_RELAY_MAX_CAPTURE) {
                size = DV_RELAY_MAX_CAPTURE;
            }
            r->cap = dv_realloc(r->cap, size);
            r->cap_size = size;
        }
        memcpy(r->cap + r->cap_len, data, take);
        r->cap_len += take;
    }
    pthread_mutex_unlock(&r->lock);
}

// Damage the occurrences of the needle that data (n bytes just read from
// upstream) completes, while any are left to damage; keep p's tail.
static void
corrupt(dv_relay_t *r, pair_t *p, unsigned char *data, size_t n)
{
    pthread_mutex_lock(&r->lock);
    size_t k = r->needle_len;
    if (k == 0 || r->corrupt_left == 0) {
        pthread_mutex_unlock(&r->lock);
        return;
    }
    // win = tail + data; matches that end inside the tail were there
    // before (or under an earlier needle): only those ending in data count.
    size_t win_len = p->tail_len + n;
    unsigned char *win = dv_malloc(win_len);
    memcpy(win, p->tail, p->tail_len);
    memcpy(win + p->tail_len, data, n);
    for (size_t at = 0; at + k <= win_len && r->corrupt_left > 0; at++) {
        if (at + k - 1 >= p->tail_len && memcmp(win + at, r->needle, k) == 0) {
            data[at + k - 1 - p->tail_len] ^= 0xFF;
            r->corrupt_left--;
            r->corrupted++;
        }
    }
    size_t keep = win_len < k - 1 ? win_len : k - 1;
    memcpy(p->tail, win + win_len - keep, keep);
    p->tail_len = keep;
    free(win);
    pthread_mutex_unlock(&r->lock);
}

// Write what is pending in out[i] to fd[i]. Returns 0 (all written, or the
// socket is full and the rest waits for POLLOUT) or -1 on a socket error.
static int
flush(pair_t *p, int i)
{
    while (p->off[i] < p->len[i]) {
        // MSG_NOSIGNAL: a peer that went away is EPIPE here, not SIGPIPE.
        ssize_t n = send(p->fd[i], p->out[i] + p->off[i], p->len[i] - p->off[i],
                         MSG_NOSIGNAL);
        if (n > 0) {
            p->off[i] += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return -1;
        }
    }
    p->off[i] = p->len[i] = 0;
    return 0;
}

// One read from fd[i] into the (empty) buffer towards the other side, then
// try to pass it on. Returns 0, or -1 when the pair is done (EOF or error).
static int
pump(dv_relay_t *r, pair_t *p, int i)
{
    int peer = 1 - i;
    dv_assert(p->len[peer] == 0);
    ssize_t n;
    do {
        n = recv(p->fd[i], p->out[peer], RELAY_CHUNK, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return 0;
    }
    if (n <= 0) {
        return -1;
    }
    record(r, p->out[peer], (size_t)n);
    if (i == SIDE_UPSTREAM) {
        corrupt(r, p, p->out[peer], (size_t)n);
    }
    p->off[peer] = 0;
    p->len[peer] = (size_t)n;
    return flush(p, peer);
}

// Act on one poll round's events for a pair; closes it when it is done.
static void
service(dv_relay_t *r, pair_t *p, const short revents[2])
{
    const short dead = POLLERR | POLLHUP | POLLNVAL;
    if (p->connecting) {
        if (revents[SIDE_CLIENT] & dead) {
            close_pair(p);
            return;
        }
        if (!(revents[SIDE_UPSTREAM] & (POLLOUT | dead))) {
            return;
        }
        int err = 0;
        socklen_t err_len = sizeof err;
        if (getsockopt(p->fd[SIDE_UPSTREAM], SOL_SOCKET, SO_ERROR, &err,
                       &err_len) != 0) {
            err = errno;
        }
        if (err != 0) {
            fprintf(stderr, "  dv_relay: connect to upstream: %s\n",
                    strerror(err));
            close_pair(p);
            return;
        }
        p->connecting = false;
        return; // both sides are polled from the next round
    }
    for (int i = 0; i < 2; i++) {
        if (p->len[i] > 0 && (revents[i] & (POLLOUT | dead))) {
            if (flush(p, i) != 0) {
                close_pair(p);
                return;
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        if (p->len[1 - i] == 0 && (revents[i] & (POLLIN | dead))) {
            if (pump(r, p, i) != 0) {
                close_pair(p);
                return;
            }
        } else if (revents[i] & dead) {
            // Not reading this side (its peer's buffer is full), but it is
            // gone: poll would report it every round, so end the pair now.
            close_pair(p);
            return;
        }
    }
}

// Start relaying a freshly accepted client: open its upstream connection.
static void
add_pair(dv_relay_t *r, int client)
{
    if (r->n_pairs == DV_RELAY_MAX_PAIRS) {
        fprintf(stderr,
                "  dv_relay: %d connections already open; refusing one\n",
                DV_RELAY_MAX_PAIRS);
        close(client);
        return;
    }
    int up = socket(AF_INET, SOCK_STREAM, 0);
    if (up < 0 || set_flags(up) != 0) {
        fprintf(stderr, "  dv_relay: upstream socket: %s\n", strerror(errno));
        close_fd(&up);
        close(client);
        return;
    }
    // Small ZeroMQ frames must not wait on Nagle in either hop.
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in to = {0};
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)r->target_port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool connecting = false;
    if (connect(up, (struct sockaddr *)&to, sizeof to) != 0) {
        if (errno != EINPROGRESS && errno != EINTR) {
            fprintf(stderr, "  dv_relay: connect to 127.0.0.1:%d: %s\n",
                    r->target_port, strerror(errno));
            close(up);
            close(client);
            return;
        }
        connecting = true; // EINTR: the connect goes on asynchronously
    }
    pair_t *p = dv_calloc(1, sizeof *p);
    p->fd[SIDE_CLIENT] = client;
    p->fd[SIDE_UPSTREAM] = up;
    p->connecting = connecting;
    r->pairs[r->n_pairs++] = p;
}

static void
accept_all(dv_relay_t *r)
{
    for (;;) {
        int fd = accept(r->listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                fprintf(stderr, "  dv_relay: accept: %s\n", strerror(errno));
            }
            return;
        }
        if (set_flags(fd) != 0) {
            fprintf(stderr, "  dv_relay: fcntl: %s\n", strerror(errno));
            close(fd);
            continue;
        }
        add_pair(r, fd);
    }
}

static void *
relay_loop(void *arg)
{
    dv_relay_t *r = arg;
    // [0] wake pipe, [1] listener, then two per pair in r->pairs order.
    struct pollfd fds[2 + 2 * DV_RELAY_MAX_PAIRS];
    for (;;) {
        fds[0] = (struct pollfd){r->wake[0], POLLIN, 0};
        fds[1] = (struct pollfd){r->listen_fd, POLLIN, 0};
        size_t n_fds = 2;
        for (size_t k = 0; k < r->n_pairs; k++) {
            pair_t *p = r->pairs[k];
            for (int i = 0; i < 2; i++) {
                short ev = 0;
                if (p->connecting) {
                    ev = i == SIDE_UPSTREAM ? POLLOUT : 0;
                } else {
                    ev = (short)((p->len[i] > 0 ? POLLOUT : 0) |
                                 (p->len[1 - i] == 0 ? POLLIN : 0));
                }
                fds[n_fds++] = (struct pollfd){p->fd[i], ev, 0};
            }
        }
        if (poll(fds, (nfds_t)n_fds, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "  dv_relay: poll: %s\n", strerror(errno));
            return NULL;
        }
        if (fds[0].revents) {
            return NULL; // dv_relay_stop
        }
        for (size_t k = 0; k < r->n_pairs; k++) {
            short revents[2] = {fds[2 + 2 * k].revents, fds[3 + 2 * k].revents};
            service(r, r->pairs[k], revents);
        }
        size_t kept = 0;
        for (size_t k = 0; k < r->n_pairs; k++) {
            if (r->pairs[k]->closed) {
                free(r->pairs[k]);
            } else {
                r->pairs[kept++] = r->pairs[k];
            }
        }
        r->n_pairs = kept;
        if (fds[1].revents) {
            accept_all(r);
        }
    }
}

// Undo a partly built relay (dv_relay_start's failure path and
// dv_relay_stop): closes whatever is open, frees everything.
static void
relay_free(dv_relay_t *r)
{
    for (size_t k = 0; k < r->n_pairs; k++) {
        close_pair(r->pairs[k]);
        free(r->pairs[k]);
    }
    close_fd(&r->listen_fd);
    close_fd(&r->wake[0]);
    close_fd(&r->wake[1]);
    pthread_mutex_destroy(&r->lock);
    free(r->cap);
    free(r);
}

dv_relay_t *
dv_relay_start(int target_port, int *port)
{
    if (target_port <= 0 || target_port > 65535) {
        fprintf(stderr, "  dv_relay: bad target port %d\n", target_port);
        return NULL;
    }
    dv_relay_t *r = dv_calloc(1, sizeof *r);
    r->target_port = target_port;
    r->listen_fd = r->wake[0] = r->wake[1] = -1;
    pthread_mutex_init(&r->lock, NULL);
    const char *what = "pipe";
    if (pipe(r->wake) != 0 || set_flags(r->wake[0]) != 0 ||
        set_flags(r->wake[1]) != 0) {
        goto fail;
    }
    what = "socket";
    r->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (r->listen_fd < 0 || set_flags(r->listen_fd) != 0) {
        goto fail;
    }
    // A test run binds many ephemeral ports; TIME_WAIT must not block one.
    int one = 1;
    what = "setsockopt";
    if (setsockopt(r->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) !=
        0) {
        goto fail;
    }
    struct sockaddr_in at = {0};
    at.sin_family = AF_INET;
    at.sin_port = 0;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t at_len = sizeof at;
    what = "bind";
    if (bind(r->listen_fd, (struct sockaddr *)&at, sizeof at) != 0) {
        goto fail;
    }
    what = "listen";
    if (listen(r->listen_fd, RELAY_BACKLOG) != 0) {
        goto fail;
    }
    what = "getsockname";
    if (getsockname(r->listen_fd, (struct sockaddr *)&at, &at_len) != 0) {
        goto fail;
    }
    int rc = pthread_create(&r->thread, NULL, relay_loop, r);
    if (rc != 0) {
        errno = rc;
        what = "pthread_create";
        goto fail;
    }
    *port = ntohs(at.sin_port);
    return r;
fail:
    fprintf(stderr, "  dv_relay: %s: %s\n", what, strerror(errno));
    relay_free(r);
    return NULL;
}

unsigned char *
dv_relay_captured(dv_relay_t *r, size_t *len)
{
    pthread_mutex_lock(&r->lock);
    unsigned char *copy = dv_malloc(r->cap_len + 1);
    if (r->cap_len) {
        memcpy(copy, r->cap, r->cap_len);
    }
    copy[r->cap_len] = '\0';
    *len = r->cap_len;
    pthread_mutex_unlock(&r->lock);
    return copy;
}

void
dv_relay_stop(dv_relay_t **r_p)
{
    dv_relay_t *r = *r_p;
    if (!r) {
        return;
    }
    // The pipe is non-blocking and holds at most this one byte: the write
    // cannot fail for lack of room, and the thread stops at its next poll.
    ssize_t n;
    do {
        n = write(r->wake[1], "x", 1);
    } while (n < 0 && errno == EINTR);
    pthread_join(r->thread, NULL);
    relay_free(r);
    *r_p = NULL;
}

bool
dv_relay_saw(dv_relay_t *r, const void *needle, size_t n)
{
    if (n == 0) {
        return true;
    }
    const unsigned char *nd = needle;
    bool found = false;
    // Searched under the lock rather than in a copy: up to 64 MiB, and the
    // relay thread only waits to record its next read.
    pthread_mutex_lock(&r->lock);
    if (r->cap_len >= n) {
        const unsigned char *at = r->cap;
        const unsigned char *last = r->cap + (r->cap_len - n);
        while (at <= last) {
            at = memchr(at, nd[0], (size_t)(last - at) + 1);
            if (!at) {
                break;
            }
            if (memcmp(at, nd, n) == 0) {
                found = true;
                break;
            }
            at++;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return found;
}

void
dv_relay_corrupt(dv_relay_t *r, const void *needle, size_t n, unsigned times)
{
    dv_assert(n >= 1 && n <= DV_RELAY_MAX_NEEDLE);
    pthread_mutex_lock(&r->lock);
    memcpy(r->needle, needle, n);
    r->needle_len = n;
    r->corrupt_left = times;
    pthread_mutex_unlock(&r->lock);
}

unsigned
dv_relay_corrupted(dv_relay_t *r)
{
    pthread_mutex_lock(&r->lock);
    unsigned n = r->corrupted;
    pthread_mutex_unlock(&r->lock);
    return n;
}

bool
dv_relay_overflowed(dv_relay_t *r)
{
    pthread_mutex_lock(&r->lock);
    bool over = r->overflowed;
    pthread_mutex_unlock(&r->lock);
    return over;
}
