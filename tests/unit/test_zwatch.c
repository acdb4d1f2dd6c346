// test_zwatch — a ZeroMQ socket in a libuv loop: delivery, the lost-wakeup
// case (ZMQ_FD's edge consumed while a message waits), fairness under a
// budget, writable events, and clean shutdown (uv_loop_close == 0).
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <uv.h>
#include <zmq.h>

#include "dv_test.h"
#include "dv_wire.h"
#include "dv_zwatch.h"

// Deadline for every loop run: a test that hangs fails instead.
#define DEADLINE_MS 5000

typedef struct {
    void *ctx;           // ZeroMQ context
    void *ours;          // watched socket
    void *peer;          // the other end
    uv_loop_t loop;      // the loop under test
    uv_timer_t deadline; // stops a run that would hang
    uv_timer_t ticker;   // a timer due while messages still wait
    dv_zwatch_t *w;      // watcher under test
    int received;        // messages read by the callback
    int want;            // stop after this many
    int tick_after;      // start the ticker once this many are read
    int tick_at;         // messages read when the ticker ran (-1: never)
    long loop_tid;       // thread id of the loop's thread
    bool was_asleep;     // the loop slept when the message was sent
    int writable;        // WRITABLE callbacks
    bool timed_out;      // the deadline fired
    bool closed;         // close callback ran
} fixture_t;

static void
on_deadline(uv_timer_t *t)
{
    fixture_t *f = t->data;
    f->timed_out = true;
    uv_stop(&f->loop);
}

static void
setup(fixture_t *f, const char *endpoint)
{
    memset(f, 0, sizeof *f);
    f->tick_at = -1;
    f->ctx = zmq_ctx_new();
    f->ours = zmq_socket(f->ctx, ZMQ_PAIR);
    f->peer = zmq_socket(f->ctx, ZMQ_PAIR);
    int hwm = 0; // unlimited: tests queue thousands of messages up front
    zmq_setsockopt(f->ours, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(f->peer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_bind(f->ours, endpoint);
    zmq_connect(f->peer, endpoint);
    uv_loop_init(&f->loop);
    uv_timer_init(&f->loop, &f->deadline);
    f->deadline.data = f;
    uv_timer_start(&f->deadline, on_deadline, DEADLINE_MS, 0);
}

static void
on_closed(void *arg)
{
    ((fixture_t *)arg)->closed = true;
}

// Close everything; returns uv_loop_close's result (0 = no leaked handle).
static int
teardown(fixture_t *f)
{
    if (f->w) {
        dv_zwatch_close(f->w, on_closed, f);
    }
    uv_close((uv_handle_t *)&f->deadline, NULL);
    if (uv_is_active((uv_handle_t *)&f->ticker) || f->ticker.data) {
        uv_close((uv_handle_t *)&f->ticker, NULL);
    }
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&f->loop);
    int linger = 0;
    zmq_setsockopt(f->ours, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(f->peer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(f->ours);
    zmq_close(f->peer);
    zmq_ctx_term(f->ctx);
    return rc;
}

static void
on_tick(uv_timer_t *t)
{
    fixture_t *f = t->data;
    f->tick_at = f->received;
}

// Reads one message per call, as dv_zwatch.h asks.
static int
on_ready(dv_zwatch_t *w, int events, void *arg)
{
    fixture_t *f = arg;
    int handled = 0;
    if (events & DV_ZWATCH_WRITABLE) {
        f->writable++;
        dv_zwatch_set_events(w, DV_ZWATCH_READABLE);
        handled = 1;
    }
    if (events & DV_ZWATCH_READABLE) {
        char buf[16];
        if (zmq_recv(dv_zwatch_socket(w), buf, sizeof buf, ZMQ_DONTWAIT) >= 0) {
            f->received++;
            handled = 1;
            if (f->tick_after && f->received == f->tick_after) {
                uv_timer_start(&f->ticker, on_tick, 0, 0); // due at once
            }
        }
        if (f->received == f->want) {
            uv_stop(&f->loop);
        }
    }
    return handled;
}

static void
send_n(void *sock, int n)
{
    for (int i = 0; i < n; i++) {
        zmq_send(sock, "job", 3, 0);
    }
}

static void
test_delivers_queued_messages(void)
{
    fixture_t f;
    setup(&f, "inproc://deliver");
    send_n(f.peer, 1000);
    f.want = 1000;
    dv_error_t err = {0};
    int rc = dv_zwatch_open(&f.w, &f.loop, f.ours, DV_ZWATCH_READABLE, on_ready,
                            &f, &err);
    if (rc == 0) {
        uv_run(&f.loop, UV_RUN_DEFAULT);
    }
    bool timed_out = f.timed_out;
    int received = f.received;
    int closed_rc = teardown(&f);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK(!timed_out);
    DV_CHECK_EQ(received, 1000);
    DV_CHECK_EQ(closed_rc, 0);
    DV_CHECK(f.closed);
}

// A message is waiting, but ZMQ_FD's edge was already consumed by a
// ZMQ_EVENTS query (as any send or recv on the socket may do): the FD will
// not become readable again, so a watcher that only polls ZMQ_FD sleeps
// forever. dv_zwatch must deliver it.
static void
test_lost_wakeup(void)
{
    fixture_t f;
    setup(&f, "inproc://lost");
    int fd = -1;
    size_t size = sizeof fd;
    zmq_getsockopt(f.ours, ZMQ_FD, &fd, &size);
    send_n(f.peer, 1);
    struct pollfd p = {fd, POLLIN, 0};
    int signalled = poll(&p, 1, 2000); // the edge for the new message
    uint32_t events = 0;
    size = sizeof events;
    zmq_getsockopt(f.ours, ZMQ_EVENTS, &events, &size); // consumes the edge
    int after = poll(&p, 1, 100);
    f.want = 1;
    dv_error_t err = {0};
    int rc = dv_zwatch_open(&f.w, &f.loop, f.ours, DV_ZWATCH_READABLE, on_ready,
                            &f, &err);
    if (rc == 0) {
        uv_run(&f.loop, UV_RUN_DEFAULT);
    }
    bool timed_out = f.timed_out;
    int received = f.received;
    teardown(&f);
    DV_CHECK_EQ(signalled, 1);
    DV_CHECK(events & ZMQ_POLLIN); // the message is there...
    DV_CHECK_EQ(after, 0);         // ...but ZMQ_FD will not say so
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK(!timed_out);
    DV_CHECK_EQ(received, 1);
}

// With 5000 messages queued and a budget of 10, the loop still runs its
// timers between batches: a busy socket cannot starve the rest. A timer
// started (due at once) by the 10th read runs before the 11th: the budget
// ended that loop iteration, and the next one ran the timer first.
static void
test_budget_keeps_loop_fair(void)
{
    fixture_t f;
    setup(&f, "inproc://fair");
    send_n(f.peer, 5000);
    f.want = 5000;
    uv_timer_init(&f.loop, &f.ticker);
    f.ticker.data = &f;
    f.tick_after = 10;
    dv_error_t err = {0};
    int rc = dv_zwatch_open(&f.w, &f.loop, f.ours, DV_ZWATCH_READABLE, on_ready,
                            &f, &err);
    if (rc == 0) {
        dv_zwatch_set_budget(f.w, 10);
        uv_run(&f.loop, UV_RUN_DEFAULT);
    }
    int received = f.received, tick_at = f.tick_at;
    bool timed_out = f.timed_out;
    teardown(&f);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK(!timed_out);
    DV_CHECK_EQ(received, 5000);
    DV_CHECK_EQ(tick_at, 10); // not after the 5000 were drained
}

static void
test_writable_then_readable(void)
{
    fixture_t f;
    setup(&f, "inproc://write");
    f.want = 3;
    dv_error_t err = {0};
    int rc = dv_zwatch_open(&f.w, &f.loop, f.ours,
                            DV_ZWATCH_READABLE | DV_ZWATCH_WRITABLE, on_ready,
                            &f, &err);
    send_n(f.peer, 3);
    if (rc == 0) {
        uv_run(&f.loop, UV_RUN_DEFAULT);
    }
    int writable = f.writable, received = f.received;
    bool timed_out = f.timed_out;
    teardown(&f);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK(!timed_out);
    DV_CHECK_EQ(writable, 1); // the callback dropped WRITABLE after one
    DV_CHECK_EQ(received, 3);
}

// True when thread tid is blocked in epoll_wait or epoll_pwait with a
// timeout other than 0: the loop is asleep. (Linux: /proc/self/task/TID/
// syscall shows the number and arguments of the system call a blocked
// thread is in, "running" otherwise.)
static bool
asleep_in_epoll(long tid)
{
    char path[64], buf[256] = "";
    snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", tid);
    FILE *file = fopen(path, "r");
    size_t n = file ? fread(buf, 1, sizeof buf - 1, file) : 0;
    if (file) {
        fclose(file);
    }
    buf[n] = '\0';
    long nr = -1;
    unsigned long long fd, events, max, timeout;
    if (sscanf(buf, "%ld %llx %llx %llx %llx", &nr, &fd, &events, &max,
               &timeout) != 5) {
        return false;
    }
    bool epoll = false;
#ifdef SYS_epoll_wait
    epoll = epoll || nr == SYS_epoll_wait;
#endif
#ifdef SYS_epoll_pwait
    epoll = epoll || nr == SYS_epoll_pwait;
#endif
    return epoll && (int)timeout != 0;
}

// Messages that arrive while the loop is sleeping wake it (the ZMQ_FD
// poll), including from another thread: the sender waits until the loop's
// thread is blocked in epoll with a timeout (nothing else would wake it
// before the 5 s deadline), then sends.
static void
send_later(void *arg)
{
    fixture_t *f = arg;
    uint64_t end = uv_hrtime() + (uint64_t)DEADLINE_MS / 2 * 1000000;
    while (!(f->was_asleep = asleep_in_epoll(f->loop_tid)) &&
           uv_hrtime() < end) {
        uv_sleep(1);
    }
    void *s = zmq_socket(f->ctx, ZMQ_PAIR);
    zmq_connect(s, "inproc://later2");
    send_n(s, 5);
    int linger = 1000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(s);
}

static void
wakes_when_sleeping(bool sole)
{
    fixture_t f;
    setup(&f, "inproc://later");
    void *second = zmq_socket(f.ctx, ZMQ_PAIR);
    zmq_bind(second, "inproc://later2");
    f.want = 5;
    f.loop_tid = (long)getpid(); // this thread: the process's main one
    dv_error_t err = {0};
    dv_zwatch_t *w = NULL;
    int rc = dv_zwatch_open(&w, &f.loop, second, DV_ZWATCH_READABLE, on_ready,
                            &f, &err);
    if (rc == 0 && sole) {
        dv_zwatch_set_sole(w);
    }
    uv_thread_t t;
    uv_thread_create(&t, send_later, &f);
    if (rc == 0) {
        uv_run(&f.loop, UV_RUN_DEFAULT);
    }
    uv_thread_join(&t);
    int received = f.received;
    bool timed_out = f.timed_out, was_asleep = f.was_asleep;
    if (w) {
        dv_zwatch_close(w, NULL, NULL);
        uv_run(&f.loop, UV_RUN_NOWAIT); // let its handles close
    }
    int linger = 0;
    zmq_setsockopt(second, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(second); // before teardown: zmq_ctx_term waits for sockets
    teardown(&f);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK(was_asleep);
    DV_CHECK(!timed_out);
    DV_CHECK_EQ(received, 5);
}

static void
test_wakes_when_sleeping(void)
{
    wakes_when_sleeping(false);
}

// A sole watcher asks ZMQ_EVENTS only on demand, yet still wakes on ZMQ_FD.
static void
test_sole_wakes_when_sleeping(void)
{
    wakes_when_sleeping(true);
}

static void
on_short(uv_timer_t *t)
{
    uv_stop(t->loop);
}

// Run f's loop until f->want messages were read or ms passed.
static void
run_for(fixture_t *f, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    uv_timer_start(&t, on_short, ms, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

// The sole watcher's contract: once it has seen "nothing", a use of the
// socket outside its callback that takes ZMQ_FD's edge (here a ZMQ_EVENTS
// query, as a send can do) leaves the message unread until the use is
// reported. The first run shows the hazard is real (so every use must be
// reported); then report(f) reports one and the message is delivered.
static void
sole_needs_report(void (*report)(fixture_t *f))
{
    fixture_t f;
    setup(&f, "inproc://sole");
    dv_error_t err = {0};
    int rc = dv_zwatch_open(&f.w, &f.loop, f.ours, DV_ZWATCH_READABLE, on_ready,
                            &f, &err);
    if (rc == 0) {
        dv_zwatch_set_sole(f.w);
    }
    send_n(f.peer, 1);
    f.want = 1;
    run_for(&f, DEADLINE_MS); // reads it, then sees "nothing"
    int first = f.received;
    run_for(&f, 50); // idle turns: "nothing" again, without asking
    int fd = -1;
    size_t size = sizeof fd;
    zmq_getsockopt(f.ours, ZMQ_FD, &fd, &size);
    send_n(f.peer, 1);
    struct pollfd p = {fd, POLLIN, 0};
    int signalled = poll(&p, 1, 2000);
    uint32_t events = 0;
    size = sizeof events;
    zmq_getsockopt(f.ours, ZMQ_EVENTS, &events, &size); // takes the edge
    f.want = 2;
    run_for(&f, 200);
    int unreported = f.received;
    report(&f);
    run_for(&f, DEADLINE_MS);
    int reported = f.received;
    int closed = teardown(&f);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(first, 1);
    DV_CHECK_EQ(signalled, 1);
    DV_CHECK(events & ZMQ_POLLIN);
    DV_CHECK_EQ(unreported, 1); // waits: nothing said the socket was used
    DV_CHECK_EQ(reported, 2);
    DV_CHECK_EQ(closed, 0);
}

static void
report_used(fixture_t *f)
{
    dv_zwatch_used(f->ours);
}

// What the daemons do: send with dv_wire, which reports the use itself.
static void
report_by_wire_send(fixture_t *f)
{
    static const uint8_t header[] = {0x80}; // any bytes: the peer drops them
    dv_wire_send(f->ours, NULL, 0, header, sizeof header, NULL, 0);
}

static void
test_sole_needs_report(void)
{
    sole_needs_report(report_used);
}

static void
test_sole_wire_send_reports(void)
{
    sole_needs_report(report_by_wire_send);
}

static void
test_not_a_socket(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dv_zwatch_t *w = NULL;
    dv_error_t err = {0};
    int x = 0;
    int rc1 = dv_zwatch_open(&w, &loop, NULL, DV_ZWATCH_READABLE, on_ready,
                             NULL, &err);
    int rc2 =
        dv_zwatch_open(&w, &loop, &x, DV_ZWATCH_READABLE, on_ready, NULL, &err);
    int closed = uv_loop_close(&loop);
    DV_CHECK_EQ(rc1, DV_EINVAL);
    DV_CHECK_EQ(rc2, DV_EINVAL);
    DV_CHECK(w == NULL);
    DV_CHECK_EQ(closed, 0);
}

static const dv_test_case_t cases[] = {
    {"delivers queued messages", test_delivers_queued_messages},
    {"lost wakeup: edge consumed, message waiting", test_lost_wakeup},
    {"budget keeps the loop fair", test_budget_keeps_loop_fair},
    {"writable then readable", test_writable_then_readable},
    {"wakes a sleeping loop", test_wakes_when_sleeping},
    {"sole watcher wakes a sleeping loop", test_sole_wakes_when_sleeping},
    {"sole watcher needs outside uses reported", test_sole_needs_report},
    {"dv_wire_send reports its use", test_sole_wire_send_reports},
    {"refuses a non-socket", test_not_a_socket},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
