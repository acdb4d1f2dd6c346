// test_limits — every documented limit provoked once against real
// processes (issue 20): the refusal's error code, a reason that names the
// numbers, and proof that the daemons serve on afterwards.
//
//   - submit fields at and past their limits (sleep ms, idempotency key
//     bytes, training epochs) and a protocol major of 0 or 2, on the client
//     and the worker socket, through a raw DEALER speaking PROTOCOL.md;
//   - frames: one of exactly max_frame_bytes reaches the broker, one byte
//     more resets the connection (ZMQ_MAXMSGSIZE);
//   - kept results: 100,001 results keep 100,000; the tenth result of
//     27 MiB passes the 256 MiB bound and the oldest goes;
//   - CSV input over 1 GiB (a sparse file: nothing is read) refused by
//     libdrover, the broker and the CLI;
//   - the idempotency window (a broker with a 1 s window);
//   - stored files: --max-stored-bytes and --min-free-disk (brokers of
//     their own);
//   - durable submits refused below --submit-free-disk (a broker of its
//     own);
//   - --max-connections counting connections while they are open (a
//     broker of its own);
//   - the worker's own checks, against a fake broker socket: a welcome or
//     run of another major is not acted on, and the worker re-checks the
//     limits of what a broker sends it.
//
// One broker and one worker serve every case but the last two; a case ends
// with an echo job through them. The worker serves only the queue
// "default", so jobs accepted on "parked" wait (and are cancelled) instead
// of sleeping an hour or training a million epochs. Readiness comes from
// READY lines; the only wait for time to pass is the window case's.
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "drover.h"
#include "dv_limits.h"
#include "dv_proto.h"
#include "dv_test.h"
#include "dv_test_proc.h"
#include "dv_test_worker.h"
#include "dv_wire.h"

#define WAIT_MS      60000 // generous for ASan on 2 cores
#define HEARTBEAT_MS "1000"
#define KEPT_BYTES   ((size_t)256 << 20) // ditto
#define BIG_RESULT   ((size_t)27 << 20)  // N_BIG pass KEPT_BYTES, one fewer not
#define N_BIG        10

typedef struct {
    char *dir;                 // temporary folder
    char cep[4300], wep[4300]; // endpoints
    dv_proc_t broker;          // drover-broker
    dv_proc_t worker;          // drover-worker, queue "default" only
    drover_t *d;               // a client
    void *ctx;                 // for raw sockets
    bool up;                   // all of it started
} cluster_t;

static cluster_t s_c; // shared by the cases (started by the first)

static cluster_t *
cluster(void)
{
    cluster_t *c = &s_c;
    if (c->dir) {
        return c->up ? c : NULL;
    }
    c->dir = dv_test_tmpdir();
    snprintf(c->cep, sizeof c->cep, "ipc://%s/client.sock", c->dir);
    snprintf(c->wep, sizeof c->wep, "ipc://%s/worker.sock", c->dir);
    const char *bargs[] = {"--client",       c->cep,       "--worker", c->wep,
                           "--heartbeat-ms", HEARTBEAT_MS, NULL};
    c->broker = dv_proc_start("DROVER_BROKER_BIN", bargs, c->dir, "broker.log");
    char ready[9000];
    if (!c->broker.pid ||
        !dv_proc_wait_ready(&c->broker, ready, sizeof ready)) {
        fprintf(stderr, "  broker did not get ready\n");
        return NULL;
    }
    const char *wargs[] = {"--broker",       c->wep,       "--name",     "w0",
                           "--queues",       "default",    "--prefetch", "200",
                           "--heartbeat-ms", HEARTBEAT_MS, NULL};
    c->worker = dv_proc_start("DROVER_WORKER_BIN", wargs, c->dir, "worker.log");
    if (!c->worker.pid ||
        !dv_proc_wait_ready(&c->worker, ready, sizeof ready)) {
        fprintf(stderr, "  worker did not get ready\n");
        return NULL;
    }
    c->ctx = zmq_ctx_new();
    drover_error_t err = {0};
    if (drover_connect(&c->d, c->cep, 10000, &err) != 0) {
        fprintf(stderr, "  connect: %s\n", err.text);
        return NULL;
    }
    c->up = true;
    return c;
}

// Stop the shared cluster; false when a daemon had died or did not stop
// cleanly on SIGTERM (the logs are printed then).
static bool
cluster_down(void)
{
    cluster_t *c = &s_c;
    if (!c->dir) {
        return true;
    }
    drover_destroy(&c->d);
    if (c->ctx) {
        zmq_ctx_term(c->ctx);
    }
    int wrc = c->worker.pid ? dv_proc_stop(&c->worker, SIGTERM) : -1;
    int brc = c->broker.pid ? dv_proc_stop(&c->broker, SIGTERM) : -1;
    bool ok = c->up && wrc == 0 && brc == 0;
    if (!ok) {
        fprintf(stderr, "cluster: worker exit %d, broker exit %d\n", wrc, brc);
        dv_proc_dump_log(c->dir, "broker.log");
        dv_proc_dump_log(c->dir, "worker.log");
    }
    dv_test_rmdir(c->dir);
    free(c->dir);
    return ok;
}

// An echo job through the queue comes back: the cluster still serves.
static bool
echo_ok(drover_t *d)
{
    drover_job_t job = DROVER_JOB_INIT;
    job.payload = "still here";
    job.payload_len = 10;
    drover_result_t *r = NULL;
    drover_error_t err = {0};
    bool ok =
        d && drover_run(d, &job, WAIT_MS, &r, &err) == 0 && drover_result_ok(r);
    size_t len = 0;
    const void *p = ok ? drover_result_payload(r, &len) : NULL;
    ok = ok && len == 10 && memcmp(p, "still here", 10) == 0;
    if (!ok) {
        fprintf(stderr, "  echo failed: %s\n", err.text);
    }
    drover_result_destroy(&r);
    return ok;
}

static void *
dealer(void *ctx, const char *endpoint)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    dv_test_no_hwm(s);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(s, endpoint);
    return s;
}

// Send w (taken) with frames on sock (to route on a ROUTER), its protocol
// version rewritten to major.minor when major >= 0. dv_msgw writes `v`
// first as fixints: "v" then [1, DV_PROTOCOL_MINOR] is a1 76 92 01 0N.
static bool
send_msg(void *sock,
         const void *route,
         size_t route_len,
         dv_msgw_t *w,
         int major,
         int minor,
         const dv_frame_t *frames,
         size_t n_frames)
{
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    uint8_t *copy = malloc(len);
    memcpy(copy, h, len);
    dv_msgw_destroy(&w);
    bool patched = major < 0;
    const uint8_t ours[5] = {0xa1, 'v', 0x92, DV_PROTOCOL_MAJOR,
                             DV_PROTOCOL_MINOR};
    for (size_t i = 0; !patched && i + 5 <= len; i++) {
        if (memcmp(copy + i, ours, 5) == 0) {
            copy[i + 3] = (uint8_t)major;
            copy[i + 4] = (uint8_t)minor;
            patched = true;
        }
    }
    bool sent = patched && dv_wire_send(sock, route, route_len, copy, len,
                                        frames, n_frames) == 0;
    free(copy);
    return sent;
}

// What came back for one request, or one message read.
typedef struct {
    bool got;           // a message arrived (before the deadline)
    dv_msg_type_t type; // its type
    uint64_t rid, job;  // its rid; `job` when it has one
    int code;           // error (`error`, failed `done`): its code
    char text[256];     //   and reason
    size_t frame_len;   // frame 1's length (0: none)
} reply_t;

// Read the next message that decodes on sock within the deadline into r
// (its routing id into route/route_len on a ROUTER). False on the deadline.
static bool
next_msg(void *sock,
         bool routed,
         int64_t deadline,
         reply_t *r,
         uint8_t *route,
         size_t *route_len)
{
    memset(r, 0, sizeof *r);
    while (dv_test_now_ms() < deadline) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        dv_wire_msg_t in;
        if (zmq_poll(&item, 1, 200) <= 0 ||
            dv_wire_recv(sock, routed, &in) != 1) {
            continue;
        }
        dv_msg_t *m = NULL;
        dv_error_t err = {0};
        if (dv_msg_decode(&m, zmq_msg_data(&in.header),
                          zmq_msg_size(&in.header), in.frames, in.n_payload,
                          NULL, &err) == 0) {
            r->got = true;
            r->type = dv_msg_type(m);
            r->rid = dv_msg_rid(m);
            dv_msg_uint(m, "job", &r->job, &err);
            if (dv_msg_has(m, "error")) {
                dv_msg_error(m, &r->code, r->text, sizeof r->text, &err);
            }
            r->frame_len = in.n_payload ? in.frames[0].len : 0;
            if (routed && route && zmq_msg_size(&in.route) <= 256) {
                *route_len = zmq_msg_size(&in.route);
                memcpy(route, zmq_msg_data(&in.route), *route_len);
            }
        }
        dv_msg_destroy(&m);
        dv_wire_msg_close(&in);
        if (r->got) {
            return true;
        }
    }
    return false;
}

// The reply to request rid on a DEALER (others are skipped).
static reply_t
await_rid(void *sock, uint64_t rid)
{
    reply_t r;
    int64_t deadline = dv_test_now_ms() + WAIT_MS;
    while (next_msg(sock, false, deadline, &r, NULL, NULL) && r.rid != rid) {
    }
    if (r.rid != rid) {
        r.got = false;
    }
    return r;
}

// ------------------------------------------------------- submit limits

// One request at or past a limit, and what the broker must answer.
typedef struct {
    const char *what; // printed
    const char *type; // "submit" (echo, sleep or train), "hello", or
                      // "register" (sent on the worker socket)
    const char *kind; // a submit's kind
    uint64_t value;   // sleep ms, epochs, or the idempotency key's length
    int major, minor; // the version sent (-1: ours)
    int want;         // 0: accepted, else the error code
    const char *says; // the reason must hold this
} limit_case_t;

static const limit_case_t s_limits[] = {
    {"sleep over the limit", "submit", "sleep", DV_MAX_SLEEP_MS + 1, -1, 0,
     DV_EINVAL, "ms (a sleep job's length) must be <= 3600000, not 3600001"},
    {"sleep at the limit", "submit", "sleep", DV_MAX_SLEEP_MS, -1, 0, 0, NULL},
    {"key over the limit", "submit", "echo", DV_MAX_KEY_BYTES + 1, -1, 0,
     DV_EMSGSIZE, "'idempotency_key' is 257 bytes, the limit is 256"},
    {"key at the limit", "submit", "echo", DV_MAX_KEY_BYTES, -1, 0, 0, NULL},
    {"epochs over the limit", "submit", "train", DV_MAX_EPOCHS + 1, -1, 0,
     DV_EINVAL, "epochs must be 1..1000000, not 1000001"},
    {"epochs at the limit", "submit", "train", DV_MAX_EPOCHS, -1, 0, 0, NULL},
    {"a client speaking major 0", "hello", NULL, 0, 0, 9, DV_EVERSION,
     "protocol 0.9; this side speaks 1.x"},
    {"a client speaking major 2", "submit", "echo", 0, 2, 0, DV_EVERSION,
     "protocol 2.0; this side speaks 1.x"},
    {"a worker speaking major 0", "register", NULL, 0, 0, 1, DV_EVERSION,
     "protocol 0.1; this side speaks 1.x"},
};

static dv_msgw_t *
limit_request(const limit_case_t *lc, uint64_t rid)
{
    if (strcmp(lc->type, "hello") == 0) {
        dv_msgw_t *w = dv_msgw_new(DV_MSG_HELLO, rid);
        dv_msgw_str(w, "client", "old");
        return w;
    }
    if (strcmp(lc->type, "register") == 0) {
        dv_msgw_t *w = dv_msgw_new(DV_MSG_REGISTER, rid);
        dv_msgw_str(w, "worker", "old");
        dv_msgw_uint(w, "capacity", 1);
        return w;
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, rid);
    dv_msgw_str(w, "queue", "parked");
    dv_msgw_str(w, "kind", lc->kind);
    dv_msgw_str(w, "durability", "none");
    if (strcmp(lc->kind, "sleep") == 0) {
        dv_msgw_uint(w, "ms", lc->value);
    } else if (strcmp(lc->kind, "train") == 0) {
        dv_msgw_str(w, "model", "lim");
        dv_msgw_key(w, "train");
        dv_msgw_v_map(w, 2);
        dv_msgw_v_str(w, "algo");
        dv_msgw_v_str(w, "gd");
        dv_msgw_v_str(w, "epochs");
        dv_msgw_v_uint(w, lc->value);
    } else if (lc->value) {
        char key[DV_MAX_KEY_BYTES + 2];
        memset(key, 'k', lc->value);
        key[lc->value] = '\0';
        dv_msgw_str(w, "idempotency_key", key);
    }
    return w;
}

// Each request at a limit is accepted, each past one refused with its code
// and the numbers; then the broker still serves.
static void
test_submit_limits(void)
{
    cluster_t *c = cluster();
    DV_CHECK(c != NULL);
    void *client = dealer(c->ctx, c->cep);
    void *worker = dealer(c->ctx, c->wep);
    static const char csv[] = "a,target\n1,0\n2,1\n";
    const dv_frame_t payload = {(const uint8_t *)csv, sizeof csv - 1};
    size_t n = sizeof s_limits / sizeof s_limits[0];
    reply_t got[sizeof s_limits / sizeof s_limits[0]];
    for (size_t i = 0; i < n; i++) {
        const limit_case_t *lc = &s_limits[i];
        void *sock = strcmp(lc->type, "register") == 0 ? worker : client;
        bool sent = send_msg(sock, NULL, 0, limit_request(lc, i + 1), lc->major,
                             lc->minor, &payload, lc->kind ? 1 : 0);
        got[i] = sent ? await_rid(sock, i + 1) : (reply_t){0};
        printf("  %s: %s %s %.120s\n", lc->what, dv_msg_name(got[i].type),
               got[i].code ? dv_err_name(got[i].code) : "", got[i].text);
        if (got[i].type == DV_MSG_ACCEPTED) { // never to run: cancel it
            drover_error_t err = {0};
            drover_job_cancel(c->d, got[i].job, NULL, &err);
        }
    }
    zmq_close(client);
    zmq_close(worker);
    bool serves = echo_ok(c->d);
    for (size_t i = 0; i < n; i++) {
        const limit_case_t *lc = &s_limits[i];
        DV_CHECK(got[i].got);
        if (lc->want == 0) {
            DV_CHECK_EQ(got[i].type, DV_MSG_ACCEPTED);
            DV_CHECK(got[i].job > 0);
        } else {
            DV_CHECK_EQ(got[i].type, DV_MSG_ERROR);
            DV_CHECK_STR_EQ(dv_err_name(got[i].code), dv_err_name(lc->want));
            DV_CHECK(strstr(got[i].text, lc->says) != NULL);
        }
    }
    DV_CHECK(serves);
}

// A message with more payload frames than max_frames is refused with
// DV_EMSGSIZE under its own rid (a client waiting on it is answered), and
// the broker serves on.
static void
test_too_many_frames(void)
{
    cluster_t *c = cluster();
    DV_CHECK(c != NULL);
    void *client = dealer(c->ctx, c->cep);
    dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, 4242);
    dv_msgw_str(w, "queue", "default");
    dv_msgw_str(w, "kind", "echo");
    static const uint8_t byte = 1;
    dv_frame_t frames[DV_MAX_FRAMES + 1];
    for (size_t i = 0; i < DV_MAX_FRAMES + 1; i++) {
        frames[i] = (dv_frame_t){&byte, 1};
    }
    bool sent = send_msg(client, NULL, 0, w, -1, 0, frames, DV_MAX_FRAMES + 1);
    reply_t got = sent ? await_rid(client, 4242) : (reply_t){0};
    zmq_close(client);
    printf("  %s %s %s\n", dv_msg_name(got.type),
           got.code ? dv_err_name(got.code) : "", got.text);
    DV_CHECK(sent);
    DV_CHECK(got.got);
    DV_CHECK_EQ(got.type, DV_MSG_ERROR);
    DV_CHECK_EQ(got.code, DV_EMSGSIZE);
    DV_CHECK(echo_ok(c->d));
}

// libdrover checks the same limits before sending (a clear error instead
// of a reset connection); the CLI checks --epochs.
static void
test_client_side_limits(void)
{
    cluster_t *c = cluster();
    DV_CHECK(c != NULL);
    char key[DV_MAX_KEY_BYTES + 2];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    drover_job_t kj = DROVER_JOB_INIT;
    kj.payload = "x";
    kj.payload_len = 1;
    kj.idempotency_key = key;
    uint64_t id = 0;
    drover_error_t kerr = {0};
    int krc = drover_submit(c->d, &kj, WAIT_MS, &id, &kerr);
    // Not read: refused on its length alone (calloc: no pages touched).
    size_t big = DV_MAX_FRAME_BYTES + 1;
    char *payload = calloc(1, big);
    drover_job_t fj = DROVER_JOB_INIT;
    fj.payload = payload;
    fj.payload_len = big;
    drover_error_t ferr = {0};
    int frc = payload ? drover_submit(c->d, &fj, WAIT_MS, &id, &ferr) : -1;
    free(payload);
    const char *opts[] = {"epochs=1000001"};
    drover_train_t t = {0};
    t.model = "lim";
    t.algo = "gd";
    t.csv = "a,target\n1,0\n2,1\n";
    t.csv_len = strlen(t.csv);
    t.options = opts;
    t.n_options = 1;
    drover_result_t *r = NULL;
    drover_error_t terr = {0};
    int trc = drover_train(c->d, &t, WAIT_MS, &r, &terr);
    drover_result_destroy(&r);
    printf("  key of 257 bytes: %s %s\n  payload of 256 MiB + 1: %s %s\n"
           "  epochs=1000001: %s %s\n",
           drover_err_name(krc), kerr.text, drover_err_name(frc), ferr.text,
           drover_err_name(trc), terr.text);
    const char *args[] = {"local",    "train",   "--algo", "gd",
                          "--data",   "x.csv",   "--out",  "x.drvm",
                          "--epochs", "1000001", NULL};
    int cli = dv_proc_run("DROVER_BIN", args, NULL, c->dir, "cli.log");
    size_t len = 0;
    char path[4400];
    snprintf(path, sizeof path, "%s/cli.log", c->dir);
    char *log = (char *)dv_test_read_file(path, &len);
    bool cli_says = log && strstr(log, "--epochs '1000001': expected an "
                                       "integer 1..1000000") != NULL;
    free(log);
    bool serves = echo_ok(c->d);
    DV_CHECK_EQ(krc, DV_EINVAL);
    DV_CHECK(strstr(kerr.text, "1..256 bytes") != NULL);
    DV_CHECK_EQ(frc, DV_EMSGSIZE);
    DV_CHECK(strstr(ferr.text, "over 268435456 bytes") != NULL);
    DV_CHECK_EQ(trc, DV_EINVAL);
    DV_CHECK(strstr(terr.text, "epochs must be 1..1000000, not 1000001"));
    DV_CHECK_EQ(cli, 2); // a usage error
    DV_CHECK(cli_says);
    DV_CHECK(serves);
}

// --------------------------------------------------------------- frames

// A socket monitor's next event (ZMQ_EVENT_*) within the deadline; 0 on
// the deadline.
static int
next_event(void *mon, int64_t deadline)
{
    while (dv_test_now_ms() < deadline) {
        zmq_pollitem_t item = {mon, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 200) <= 0) {
            continue;
        }
        zmq_msg_t a, b;
        zmq_msg_init(&a);
        zmq_msg_init(&b);
        int event = 0;
        if (zmq_msg_recv(&a, mon, 0) >= 6 && zmq_msg_more(&a)) {
            uint16_t e;
            memcpy(&e, zmq_msg_data(&a), 2);
            event = e;
            zmq_msg_recv(&b, mon, 0);
        }
        zmq_msg_close(&a);
        zmq_msg_close(&b);
        if (event) {
            return event;
        }
    }
    return 0;
}

// Wait for event on mon (others skipped).
static bool
await_event(void *mon, int event)
{
    int64_t deadline = dv_test_now_ms() + WAIT_MS;
    int e;
    while ((e = next_event(mon, deadline)) != 0 && e != event) {
    }
    return e == event;
}

// A frame of exactly max_frame_bytes reaches the broker (its submit is
// answered); one byte more is dropped by ZeroMQ and the connection reset
// (PROTOCOL.md, Sockets), with no answer; the broker serves on, that
// socket too once it reconnected.
static void
test_frame_limit(void)
{
    cluster_t *c = cluster();
    DV_CHECK(c != NULL);
    void *a = zmq_socket(c->ctx, ZMQ_DEALER);
    dv_test_no_hwm(a);
    int linger = 0;
    zmq_setsockopt(a, ZMQ_LINGER, &linger, sizeof linger);
    zmq_socket_monitor(a, "inproc://limits-mon",
                       ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED);
    void *mon = zmq_socket(c->ctx, ZMQ_PAIR);
    zmq_connect(mon, "inproc://limits-mon");
    zmq_connect(a, c->cep);
    bool connected = await_event(mon, ZMQ_EVENT_CONNECTED);
    // calloc'd: zero pages, only what ZeroMQ copies becomes resident.
    uint8_t *big = calloc(1, DV_MAX_FRAME_BYTES + 1);
    reply_t at = {0};
    bool reset = false, reconnected = false;
    reply_t past = {0}, pong = {0};
    for (int i = 0; big && connected && i < 2; i++) {
        // max_attempts 0: refused once read, so nothing runs.
        dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, 1 + (uint64_t)i);
        dv_msgw_str(w, "kind", "echo");
        dv_msgw_str(w, "queue", "parked");
        dv_msgw_uint(w, "max_attempts", 0);
        dv_frame_t f = {big, DV_MAX_FRAME_BYTES + (size_t)i};
        send_msg(a, NULL, 0, w, -1, 0, &f, 1);
        if (i == 0) {
            at = await_rid(a, 1);
        } else {
            reset = await_event(mon, ZMQ_EVENT_DISCONNECTED);
            reconnected = reset && await_event(mon, ZMQ_EVENT_CONNECTED);
            send_msg(a, NULL, 0, dv_msgw_new(DV_MSG_PING, 3), -1, 0, NULL, 0);
            // Nothing answers rid 2 before the ping's pong.
            int64_t deadline = dv_test_now_ms() + WAIT_MS;
            while (next_msg(a, false, deadline, &pong, NULL, NULL) &&
                   pong.rid != 3) {
                past = pong;
            }
        }
    }
    free(big);
    printf("  %zu bytes: %s %s %.100s; one more: reset %d, reconnected %d, "
           "answered %d\n",
           (size_t)DV_MAX_FRAME_BYTES, dv_msg_name(at.type),
           dv_err_name(at.code), at.text, reset, reconnected, past.got);
    zmq_socket_monitor(a, NULL, 0);
    zmq_close(mon);
    zmq_close(a);
    bool serves = echo_ok(c->d);
    DV_CHECK(connected);
    DV_CHECK_EQ(at.type, DV_MSG_ERROR);
    DV_CHECK_EQ(at.code, DV_EINVAL);
    DV_CHECK(strstr(at.text, "max_attempts must be 1..100") != NULL);
    DV_CHECK(reset);
    DV_CHECK(reconnected);
    DV_CHECK(!past.got);
    DV_CHECK_EQ(pong.type, DV_MSG_PONG);
    DV_CHECK(serves);
}

// --------------------------------------------------------- kept results

typedef struct {
    size_t results, failed; // results received, of which not ok
    uint64_t first, second; // the first two job ids, in finish order
} tally_t;

static void
on_tiny(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    tally_t *t = arg;
    t->failed += !drover_result_ok(r);
    if (t->results == 0) {
        t->first = drover_result_job(r);
    } else if (t->results == 1) {
        t->second = drover_result_job(r);
    }
    t->results++;
}

// Whether the broker still keeps job's result (drover_job_info: a finished
// job is known while its result is kept).
static bool
kept(drover_t *d, uint64_t job)
{
    drover_job_info_t info;
    drover_error_t err = {0};
    return drover_job_info(d, job, &info, &err) == 0 &&
           strcmp(info.state, "done") == 0;
}

static uint64_t
n_kept(drover_t *d)
{
    drover_status_t st = {0};
    drover_error_t err = {0};
    uint64_t n = drover_status(d, &st, &err) == 0 ? st.kept_results : 0;
    drover_status_clear(&st);
    return n;
}

// 100,001 one-byte echo jobs (durability none, 1,000 in flight): the
// broker keeps 100,000 results; the oldest (everything before these, then
// the first of them) is gone (DV_ENOENT), the second is kept.
static void
test_kept_count(void)
{
    cluster_t *c = cluster();
    DV_CHECK(c != NULL);
    const size_t n = DV_MAX_KEPT_RESULTS + 1, window = 1000;
    tally_t t = {0};
    size_t sent = 0;
    drover_error_t err = {0};
    int64_t start = dv_test_now_ms(), deadline = start + 5 * WAIT_MS;
    while (t.results < n && dv_test_now_ms() < deadline) {
        while (sent < n && sent - t.results < window) {
            drover_job_t job = DROVER_JOB_INIT;
            job.payload = "x";
            job.payload_len = 1;
            job.durability = "none";
            if (drover_submit_async(c->d, &job, on_tiny, &t, &err) != 0) {
                break;
            }
            sent++;
        }
        drover_poll(c->d, 100, &err);
    }
    uint64_t count = n_kept(c->d);
    drover_result_t *r = NULL;
    drover_error_t gone_err = {0};
    int gone = drover_wait(c->d, t.first, WAIT_MS, &r, &gone_err);
    drover_result_destroy(&r);
    bool second = kept(c->d, t.second);
    printf("  %zu results (%zu failed) in %lld ms; kept %llu; job %llu: %s "
           "%s\n",
           t.results, t.failed, (long long)(dv_test_now_ms() - start),
           (unsigned long long)count, (unsigned long long)t.first,
           drover_err_name(gone), gone_err.text);
    bool serves = echo_ok(c->d);
    DV_CHECK_EQ(t.results, n);
    DV_CHECK_EQ(t.failed, 0);
    DV_CHECK_EQ(count, DV_MAX_KEPT_RESULTS);
    DV_CHECK_EQ(gone, DV_ENOENT);
    DV_CHECK(second);
    DV_CHECK(serves);
}

// Ten echo results of 27 MiB, one after the other: nine (243 MiB) are
// kept, the tenth passes 256 MiB and pushes the first out (and every older
// result with it: the oldest go first). Many mid-sized results rather than
// two huge ones: a 130 MiB `done` in transit on a loaded machine outlasted
// the worker's 3 s lease (its heartbeats queue behind it).
static void
test_kept_bytes(void)
{
    cluster_t *c = cluster();
    DV_CHECK(c != NULL);
    char *payload = malloc(BIG_RESULT);
    DV_CHECK(payload != NULL);
    uint64_t ids[N_BIG] = {0};
    int ran = 0;
    bool first_kept = false;
    for (int i = 0; i < N_BIG && ran == i; i++) {
        memset(payload, 'a' + i, BIG_RESULT);
        drover_job_t job = DROVER_JOB_INIT;
        job.payload = payload;
        job.payload_len = BIG_RESULT;
        job.durability = "none";
        drover_result_t *r = NULL;
        drover_error_t err = {0};
        size_t len = 0;
        const char *p = NULL;
        if (drover_run(c->d, &job, WAIT_MS, &r, &err) == 0) {
            ids[i] = drover_result_job(r);
            p = drover_result_ok(r) ? drover_result_payload(r, &len) : NULL;
        }
        if (p && len == BIG_RESULT && p[0] == 'a' + i &&
            p[len - 1] == 'a' + i) {
            ran++;
        } else {
            const char *text = "";
            drover_result_error(r, &text);
            fprintf(stderr, "  job %d: %s %s\n", i + 1, err.text,
                    text ? text : "");
        }
        drover_result_destroy(&r);
        if (i == N_BIG - 2) { // the first is still there before the last
            first_kept = kept(c->d, ids[0]);
        }
    }
    free(payload);
    uint64_t count = n_kept(c->d);
    drover_result_t *r = NULL;
    drover_error_t gone_err = {0};
    int gone = ids[0] ? drover_wait(c->d, ids[0], WAIT_MS, &r, &gone_err) : 0;
    drover_result_destroy(&r);
    bool second = ids[1] && kept(c->d, ids[1]);
    printf("  %d x %zu MiB: the first kept after %d, then %s %s; kept %llu\n",
           ran, BIG_RESULT >> 20, N_BIG - 1, drover_err_name(gone),
           gone_err.text, (unsigned long long)count);
    bool serves = echo_ok(c->d);
    DV_CHECK((N_BIG - 1) * BIG_RESULT <= KEPT_BYTES &&
             N_BIG * BIG_RESULT > KEPT_BYTES);
    DV_CHECK_EQ(ran, N_BIG);
    DV_CHECK(first_kept);
    DV_CHECK_EQ(gone, DV_ENOENT);
    DV_CHECK(second);
    DV_CHECK_EQ(count, N_BIG - 1);
    DV_CHECK(serves);
}

// ------------------------------------------------------------ CSV bytes

// A CSV file of DV_MAX_CSV_BYTES + 1 bytes (sparse: a header, then holes)
// is refused unread by libdrover's dataset push and by `drover local
// train`, naming both sizes; the broker refuses an upload announcing it.
static void
test_csv_bytes(void)
{
    cluster_t *c = cluster();
    DV_CHECK(c != NULL);
    char path[4400];
    snprintf(path, sizeof path, "%s/big.csv", c->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    bool made = fd >= 0 && write(fd, "a,target\n", 9) == 9 &&
                ftruncate(fd, (off_t)DV_MAX_CSV_BYTES + 1) == 0;
    if (fd >= 0) {
        close(fd);
    }
    DV_CHECK(made);
    const char *says = "1073741825 bytes, over the limit of 1073741824";
    drover_error_t perr = {0};
    int push = drover_dataset_push(c->d, path, "big", NULL, &perr);
    const char *args[] = {"local", "train", "--algo",   "gd", "--data",
                          path,    "--out", "big.drvm", NULL};
    int cli = dv_proc_run("DROVER_BIN", args, NULL, c->dir, "cli-big.log");
    char log_path[4400];
    snprintf(log_path, sizeof log_path, "%s/cli-big.log", c->dir);
    size_t len = 0;
    char *log = (char *)dv_test_read_file(log_path, &len);
    bool cli_says = log && strstr(log, says) != NULL;
    free(log);
    // An upload announcing the size, one byte sent.
    void *a = dealer(c->ctx, c->cep);
    uint8_t sum[32] = {0};
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DATASET_PUSH, 1);
    dv_msgw_str(w, "name", "big");
    dv_msgw_bin(w, "sha256", sum, sizeof sum);
    dv_msgw_uint(w, "bytes", DV_MAX_CSV_BYTES + 1);
    dv_msgw_uint(w, "offset", 0);
    dv_frame_t f = {(const uint8_t *)"a", 1};
    send_msg(a, NULL, 0, w, -1, 0, &f, 1);
    reply_t up = await_rid(a, 1);
    zmq_close(a);
    printf("  push: %s %s\n  cli exit %d\n  upload: %s %.120s\n",
           drover_err_name(push), perr.text, cli, dv_err_name(up.code),
           up.text);
    bool serves = echo_ok(c->d);
    DV_CHECK_EQ(push, DV_EMSGSIZE);
    DV_CHECK(strstr(perr.text, says) != NULL);
    DV_CHECK_EQ(cli, 1);
    DV_CHECK(cli_says);
    DV_CHECK_EQ(up.type, DV_MSG_ERROR);
    DV_CHECK_EQ(up.code, DV_EMSGSIZE);
    DV_CHECK(strstr(up.text, "1073741825 bytes: a data set holds 1 .. "
                             "1073741824 bytes") != NULL);
    DV_CHECK(serves);
}

// ------------------------------------------------------ idempotency window

static uint64_t
submit_key(drover_t *d, const char *key)
{
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = "parked";
    job.payload = "k";
    job.payload_len = 1;
    job.durability = "none";
    job.idempotency_key = key;
    uint64_t id = 0;
    drover_error_t err = {0};
    if (drover_submit(d, &job, WAIT_MS, &id, &err) != 0) {
        fprintf(stderr, "  submit %s: %s\n", key, err.text);
    }
    return id;
}

// A key sent again within the window names the job it made (the shared
// broker: 24 h); past the window (a broker started with
// --idempotency-window-s 1, and 1 s waited after the first was accepted)
// it makes a new job.
static void
test_idempotency_window(void)
{
    cluster_t *c = cluster();
    DV_CHECK(c != NULL);
    uint64_t a1 = submit_key(c->d, "win"), a2 = submit_key(c->d, "win");
    char *dir = dv_test_tmpdir();
    char ep[4300];
    snprintf(ep, sizeof ep, "ipc://%s/client.sock", dir);
    char wep[4300];
    snprintf(wep, sizeof wep, "ipc://%s/worker.sock", dir);
    const char *args[] = {
        "--client", ep, "--worker", wep, "--idempotency-window-s", "1", NULL};
    dv_proc_t b = dv_proc_start("DROVER_BROKER_BIN", args, dir, "broker.log");
    char ready[9000];
    drover_t *d = NULL;
    drover_error_t err = {0};
    bool up = b.pid && dv_proc_wait_ready(&b, ready, sizeof ready) &&
              drover_connect(&d, ep, 10000, &err) == 0;
    uint64_t b1 = up ? submit_key(d, "win") : 0;
    // The broker stamped the key before it answered: 1 s from here is at
    // least 1 s after its stamp.
    int64_t past = dv_test_now_ms() + 1000;
    while (dv_test_now_ms() < past) {
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
    uint64_t b2 = up ? submit_key(d, "win") : 0;
    drover_destroy(&d);
    int exit_rc = dv_proc_stop(&b, SIGTERM);
    if (exit_rc != 0) {
        dv_proc_dump_log(dir, "broker.log");
    }
    dv_test_rmdir(dir);
    free(dir);
    printf("  within 24 h: jobs %llu, %llu; past 1 s: jobs %llu, %llu\n",
           (unsigned long long)a1, (unsigned long long)a2,
           (unsigned long long)b1, (unsigned long long)b2);
    DV_CHECK(a1 > 0);
    DV_CHECK_EQ(a2, a1);
    DV_CHECK(up);
    DV_CHECK(b1 > 0);
    DV_CHECK(b2 > b1);
    DV_CHECK_EQ(exit_rc, 0);
    DV_CHECK(echo_ok(c->d));
}

// ------------------------------------------------------- stored files

// A broker of its own with extra arguments; *d connected. False when it
// did not come up.
static bool
own_broker(char *dir, const char *const *extra, dv_proc_t *b, drover_t **d)
{
    char ep[4300], wep[4300];
    snprintf(ep, sizeof ep, "ipc://%s/client.sock", dir);
    snprintf(wep, sizeof wep, "ipc://%s/worker.sock", dir);
    const char *args[16] = {"--client", ep, "--worker", wep};
    size_t n = 4;
    for (size_t i = 0; extra[i] && n < 15; i++) {
        args[n++] = extra[i];
    }
    args[n] = NULL;
    *b = dv_proc_start("DROVER_BROKER_BIN", args, dir, "broker.log");
    char ready[9000];
    drover_error_t err = {0};
    return b->pid && dv_proc_wait_ready(b, ready, sizeof ready) &&
           drover_connect(d, ep, 10000, &err) == 0;
}

// What the broker stores is bounded in bytes: with --max-stored-bytes
// 3000 (memory mode: files live in RAM) a second data set of 2,000 bytes
// is refused with DV_ELIMIT before it is sent, and fits once the first is
// removed; with a data dir and --min-free-disk of 1 EiB no file fits
// (DV_ENOSPC, naming the flag) and nothing is written.
static void
test_stored_bytes(void)
{
    char *dir = dv_test_tmpdir();
    char csv[4400];
    snprintf(csv, sizeof csv, "%s/two-k.csv", dir);
    FILE *f = fopen(csv, "w");
    if (f) {
        fputs("a,b,y\n", f);
        for (int i = 0; i < 220; i++) {
            fprintf(f, "%d,%d,%d\n", 1000 + i, 2000 + i, i % 2);
        }
        fclose(f);
    }
    const char *mem[] = {"--max-stored-bytes", "3000", NULL};
    dv_proc_t b;
    drover_t *d = NULL;
    bool up = own_broker(dir, mem, &b, &d);
    drover_error_t e1 = {0}, e2 = {0}, e3 = {0};
    int first = up ? drover_dataset_push(d, csv, "one", NULL, &e1) : -1;
    int second = up ? drover_dataset_push(d, csv, "two", NULL, &e2) : -1;
    unsigned removed = 0;
    drover_error_t erm = {0};
    if (up) {
        drover_dataset_rm(d, "one", 0, &removed, &erm);
    }
    int third = up ? drover_dataset_push(d, csv, "two", NULL, &e3) : -1;
    drover_destroy(&d);
    int exit1 = b.pid ? dv_proc_stop(&b, SIGTERM) : -1;
    printf("  --max-stored-bytes 3000: first %s, second %s (%s), after a "
           "removal %s\n",
           dv_err_name(first), dv_err_name(second), e2.text,
           dv_err_name(third));

    char data[4400];
    snprintf(data, sizeof data, "%s/data", dir);
    const char *disk[] = {"--data", data, "--min-free-disk",
                          "1152921504606846976", NULL};
    drover_error_t e4 = {0};
    bool up2 = own_broker(dir, disk, &b, &d);
    int full = up2 ? drover_dataset_push(d, csv, "three", NULL, &e4) : -1;
    drover_dataset_t *sets = NULL;
    size_t n_sets = 99;
    drover_error_t el = {0};
    int lrc = up2 ? drover_dataset_list(d, &sets, &n_sets, &el) : -1;
    free(sets);
    drover_destroy(&d);
    int exit2 = b.pid ? dv_proc_stop(&b, SIGTERM) : -1;
    printf("  --min-free-disk 1 EiB: %s (%s); %zu stored\n", dv_err_name(full),
           e4.text, n_sets);
    if (exit1 != 0 || exit2 != 0) {
        dv_proc_dump_log(dir, "broker.log");
    }
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK(up);
    DV_CHECK_EQ(first, 0);
    DV_CHECK_EQ(second, DV_ELIMIT);
    DV_CHECK(strstr(e2.text, "--max-stored-bytes") != NULL);
    DV_CHECK_EQ(removed, 1);
    DV_CHECK_EQ(third, 0);
    DV_CHECK_EQ(exit1, 0);
    DV_CHECK(up2);
    DV_CHECK_EQ(full, DV_ENOSPC);
    DV_CHECK(strstr(e4.text, "--min-free-disk") != NULL);
    DV_CHECK_EQ(lrc, 0);
    DV_CHECK_EQ(n_sets, 0);
    DV_CHECK_EQ(exit2, 0);
}

// A filling disk stops durable submits before it stops the broker from
// storing the jobs it holds (--submit-free-disk): with a reserve of 1 EiB
// a durable echo is refused DV_ENOSPC naming the flag, and nothing is
// stored; a memory-only one, which needs no disk, is accepted; the log
// says so once. (A broker before the flag does not start with it.)
static void
test_submit_free_disk(void)
{
    char *dir = dv_test_tmpdir();
    char data[4400], logp[4400];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(logp, sizeof logp, "%s/broker.log", dir);
    const char *extra[] = {"--data", data, "--submit-free-disk",
                           "1152921504606846976", NULL};
    dv_proc_t b;
    drover_t *d = NULL;
    bool up = own_broker(dir, extra, &b, &d);
    drover_job_t job = DROVER_JOB_INIT;
    job.payload = "x";
    job.payload_len = 1;
    uint64_t durable_id = 0, memory_id = 0;
    drover_error_t e1 = {0}, e2 = {0};
    int durable = up ? drover_submit(d, &job, WAIT_MS, &durable_id, &e1) : -1;
    job.durability = "none";
    int memory = up ? drover_submit(d, &job, WAIT_MS, &memory_id, &e2) : -1;
    job.durability = NULL;
    drover_error_t e3 = {0};
    uint64_t again_id = 0;
    int again = up ? drover_submit(d, &job, WAIT_MS, &again_id, &e3) : -1;
    drover_destroy(&d);
    int exit_rc = b.pid ? dv_proc_stop(&b, SIGTERM) : -1;
    size_t len = 0;
    char *log = (char *)dv_test_read_file(logp, &len);
    int said = 0;
    for (const char *p = log; p && (p = strstr(p, "durable submits are "
                                                  "refused"));
         p++) {
        said++;
    }
    free(log);
    printf("  --submit-free-disk 1 EiB: durable %s (%s); memory-only %s\n",
           dv_err_name(durable), e1.text, dv_err_name(memory));
    if (exit_rc != 0 || durable != DV_ENOSPC) {
        dv_proc_dump_log(dir, "broker.log");
    }
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK(up);
    DV_CHECK_EQ(durable, DV_ENOSPC);
    DV_CHECK_EQ(durable_id, 0);
    DV_CHECK(strstr(e1.text, "--submit-free-disk") != NULL);
    DV_CHECK_EQ(memory, 0);
    DV_CHECK(memory_id > 0);
    DV_CHECK_EQ(again, DV_ENOSPC);
    DV_CHECK_EQ(said, 1); // once, not per submit
    DV_CHECK_EQ(exit_rc, 0);
}

// ------------------------------------------------------- connections

// A `hello` on sock with rid, and whether it was answered within ms.
static bool
hello_answered(void *sock, uint64_t rid, int ms)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_HELLO, rid);
    dv_msgw_str(w, "client", "count-me");
    send_msg(sock, NULL, 0, w, -1, 0, NULL, 0);
    reply_t r;
    int64_t deadline = dv_test_now_ms() + ms;
    while (next_msg(sock, false, deadline, &r, NULL, NULL) && r.rid != rid) {
    }
    return r.got && r.rid == rid;
}

// --max-connections counts a connection for as long as it is open, not
// only within --handshake-ms of its handshake: with a limit of 2 and a
// handshake time of 300 ms, a third connection opened after the first two
// spoke and waited past it is refused (and logged); once one of the two
// closes, a fourth gets in. Before, the broker took each
// connection's descriptor from the routing id frame, where libzmq does not
// always set it: no connection was counted past its handshake time, and a
// third, fourth, ... got in.
static void
test_connections_count_while_open(void)
{
    char *dir = dv_test_tmpdir();
    char ep[4300], logp[4400];
    snprintf(ep, sizeof ep, "ipc://%s/client.sock", dir);
    snprintf(logp, sizeof logp, "%s/broker.log", dir);
    const char *extra[] = {"--max-connections", "2", "--handshake-ms", "300",
                           NULL};
    dv_proc_t b;
    drover_t *d = NULL; // the first connection
    bool up = own_broker(dir, extra, &b, &d);
    void *ctx = zmq_ctx_new();
    void *second = dealer(ctx, ep), *third = dealer(ctx, ep);
    bool second_in = up && hello_answered(second, 1, WAIT_MS);
    zmq_poll(NULL, 0, 900); // past --handshake-ms: the admissions expire
    drover_status_t st;
    memset(&st, 0, sizeof st);
    drover_error_t serr = {0};
    bool first_in = up && drover_status(d, &st, &serr) == 0;
    drover_status_clear(&st);
    bool third_refused = up && !hello_answered(third, 2, 2000);
    zmq_close(second); // its slot is free once the broker sees it close
    zmq_close(third);  // refused: libzmq does not try again
    void *fourth = dealer(ctx, ep);
    bool fourth_in = up && hello_answered(fourth, 3, WAIT_MS);
    zmq_close(fourth);
    zmq_ctx_term(ctx);
    drover_destroy(&d);
    int exit_rc = b.pid ? dv_proc_stop(&b, SIGTERM) : -1;
    bool logged = dv_test_file_has(logp, "too many connections (2 "
                                         "authenticated open, "
                                         "--max-connections 2)");
    printf("  second in %d, first still served %d, third refused %d; after "
           "the second closed, a fourth in %d\n",
           second_in, first_in, third_refused, fourth_in);
    if (exit_rc != 0 || !third_refused || !logged) {
        dv_proc_dump_log(dir, "broker.log");
    }
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK(up);
    DV_CHECK(second_in);
    DV_CHECK(first_in);
    DV_CHECK(third_refused);
    DV_CHECK(logged);
    DV_CHECK(fourth_in);
    DV_CHECK_EQ(exit_rc, 0);
}

// A plain client past --max-connections learns why at once: DV_ELIMIT
// naming the flag (without keys only the limits refuse a handshake; it
// was DV_EPERM about a key '' before).
static void
test_plain_client_past_the_limit(void)
{
    char *dir = dv_test_tmpdir();
    char ep[4300];
    snprintf(ep, sizeof ep, "ipc://%s/client.sock", dir);
    const char *extra[] = {"--max-connections", "1", NULL};
    dv_proc_t b;
    drover_t *d = NULL, *second = NULL;
    bool up = own_broker(dir, extra, &b, &d);
    drover_error_t err = {0};
    int64_t t0 = dv_test_now_ms();
    int rc = up ? drover_connect(&second, ep, WAIT_MS, &err) : -1;
    int64_t ms = dv_test_now_ms() - t0;
    drover_destroy(&second);
    drover_destroy(&d);
    int exit_rc = b.pid ? dv_proc_stop(&b, SIGTERM) : -1;
    printf("  the second client: %s in %lld ms: %.160s\n", dv_err_name(rc),
           (long long)ms, err.text);
    if (exit_rc != 0 || rc != DV_ELIMIT) {
        dv_proc_dump_log(dir, "broker.log");
    }
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK(up);
    DV_CHECK_EQ(rc, DV_ELIMIT);
    DV_CHECK(strstr(err.text, "--max-connections") != NULL);
    DV_CHECK_EQ(exit_rc, 0);
}

// A connection that says nothing within --handshake-ms of its handshake
// stops counting (libzmq ties no handshake to a descriptor); if the
// others fill the socket meanwhile, its first message is refused
// DV_ELIMIT with the reason (dv_auth_seen), and nothing it asks is done.
// --max-connections 3: the client, a silent connection, then two that
// speak after its admission expired; the silent one then speaks.
static void
test_silent_connection_loses_its_slot(void)
{
    char *dir = dv_test_tmpdir();
    char ep[4300];
    snprintf(ep, sizeof ep, "ipc://%s/client.sock", dir);
    const char *extra[] = {"--max-connections", "3", "--handshake-ms", "300",
                           NULL};
    dv_proc_t b;
    drover_t *d = NULL;
    bool up = own_broker(dir, extra, &b, &d);
    void *ctx = zmq_ctx_new();
    void *silent = dealer(ctx, ep);
    zmq_poll(NULL, 0, 900); // handshaken, silent past --handshake-ms
    void *two = dealer(ctx, ep), *three = dealer(ctx, ep);
    bool two_in = up && hello_answered(two, 1, WAIT_MS);
    bool three_in = up && hello_answered(three, 2, WAIT_MS);
    dv_msgw_t *w = dv_msgw_new(DV_MSG_HELLO, 3);
    dv_msgw_str(w, "client", "silent");
    if (up) {
        send_msg(silent, NULL, 0, w, -1, 0, NULL, 0);
    } else {
        dv_msgw_destroy(&w);
    }
    reply_t r = up ? await_rid(silent, 3) : (reply_t){0};
    zmq_close(silent);
    zmq_close(two);
    zmq_close(three);
    zmq_ctx_term(ctx);
    drover_destroy(&d);
    int exit_rc = b.pid ? dv_proc_stop(&b, SIGTERM) : -1;
    printf("  two in %d, three in %d; the silent one: %s %s %.120s\n", two_in,
           three_in, dv_msg_name(r.type), dv_err_name(r.code), r.text);
    if (exit_rc != 0 || r.code != DV_ELIMIT) {
        dv_proc_dump_log(dir, "broker.log");
    }
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK(up);
    DV_CHECK(two_in);
    DV_CHECK(three_in);
    DV_CHECK(r.got);
    DV_CHECK_EQ(r.type, DV_MSG_ERROR);
    DV_CHECK_EQ(r.code, DV_ELIMIT);
    DV_CHECK(strstr(r.text, "stayed silent past the handshake time") != NULL);
    DV_CHECK_EQ(exit_rc, 0);
}

// ------------------------------------------------- the worker's own checks

// A run's map `key` naming "big"@1 with a zero checksum and `bytes`.
static void
put_big(dv_msgw_t *w, const char *key, uint64_t bytes)
{
    uint8_t sum[32] = {0};
    dv_msgw_key(w, key);
    dv_msgw_v_map(w, 4);
    dv_msgw_v_str(w, "name");
    dv_msgw_v_str(w, "big");
    dv_msgw_v_str(w, "version");
    dv_msgw_v_uint(w, 1);
    dv_msgw_v_str(w, "sha256");
    dv_msgw_v_bin(w, sum, sizeof sum);
    dv_msgw_v_str(w, "bytes");
    dv_msgw_v_uint(w, bytes);
}

// A `run` for job on the fake broker's socket (major.minor, -1: ours).
static void
send_run(void *sock,
         const uint8_t *route,
         size_t route_len,
         uint64_t job,
         const char *kind,
         uint64_t value,
         int major)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_RUN, 0);
    dv_msgw_uint(w, "job", job);
    dv_msgw_uint(w, "attempt", 1);
    dv_msgw_str(w, "kind", kind);
    if (strcmp(kind, "sleep") == 0) {
        dv_msgw_uint(w, "ms", value);
    } else if (strcmp(kind, "train") == 0) {
        dv_msgw_str(w, "model", "lim");
        dv_msgw_key(w, "train");
        dv_msgw_v_map(w, 2);
        dv_msgw_v_str(w, "algo");
        dv_msgw_v_str(w, "gd");
        dv_msgw_v_str(w, "epochs");
        dv_msgw_v_uint(w, value <= DV_MAX_EPOCHS + 1 ? value : 1);
        if (value > DV_MAX_EPOCHS + 1) { // a data set of `value` bytes
            put_big(w, "dataset", value);
        }
    }
    if (strcmp(kind, "infer") == 0) { // a model file of `value` bytes
        put_big(w, "model", value);
        dv_msgw_tensor(w, "input", 1, 1, 1);
    }
    dv_frame_t f = {(const uint8_t *)"ping", 4};
    send_msg(sock, route, route_len, w, major, major == 1 ? 2 : 0, &f, 1);
}

// What the worker must answer a `run` with.
typedef struct {
    const char *what; // printed
    const char *kind; // the run's kind
    uint64_t value;   // sleep ms, epochs, a data set's or model's bytes
    int want;         // 0: done, else the error code
    const char *says; // the reason must hold this
} run_case_t;

static const run_case_t s_runs[] = {
    {"sleep over the limit", "sleep", DV_MAX_SLEEP_MS + 1, DV_EINVAL,
     "sleep: ms must be <= 3600000"},
    {"epochs over the limit", "train", DV_MAX_EPOCHS + 1, DV_EINVAL,
     "epochs must be 1..1000000, not 1000001"},
    {"a data set over the CSV limit", "train", DV_MAX_CSV_BYTES + 1, DV_EFORMAT,
     "bytes <= 1073741824"},
    {"a model over the frame limit", "infer", DV_MAX_FRAME_BYTES + 1,
     DV_EFORMAT, "bytes 1..268435456"},
    {"a model over --model-memory", "infer", (uint64_t)2 << 20, DV_ENOMEM,
     "more than this worker keeps (--model-memory 1 MiB)"},
    {"an echo", "echo", 0, 0, NULL},
};

// A fake broker (a ROUTER in the test) talks to a real drover-worker: a
// welcome of major 2 and of major 0, and a run of major 2, are logged as
// refused (naming both versions) and not acted on — the worker gets ready
// only with a welcome it speaks, and job 1 never gets a `done`; runs past
// the limits (its own --model-memory among them) fail with the reason; an
// echo still runs.
static void
test_worker_checks_versions_and_limits(void)
{
    char *dir = dv_test_tmpdir();
    char ep[4300];
    snprintf(ep, sizeof ep, "ipc://%s/fake.sock", dir);
    void *ctx = zmq_ctx_new();
    void *fake = zmq_socket(ctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(fake, ZMQ_LINGER, &linger, sizeof linger);
    bool bound = zmq_bind(fake, ep) == 0;
    // The fake broker speaks only when the test does: a worker that hears
    // nothing for 3 heartbeats reconnects under a new routing id, so give
    // a loaded machine 15 s between messages.
    const char *args[] = {
        "--broker",       ep,  "--name", "wv", "--heartbeat-ms", "5000",
        "--model-memory", "1", NULL};
    dv_proc_t w = dv_proc_start("DROVER_WORKER_BIN", args, dir, "worker.log");
    uint8_t route[256];
    size_t route_len = 0;
    reply_t m = {0};
    int64_t deadline = dv_test_now_ms() + WAIT_MS;
    while (bound && w.pid &&
           next_msg(fake, true, deadline, &m, route, &route_len) &&
           m.type != DV_MSG_REGISTER) {
    }
    bool registered = m.got && m.type == DV_MSG_REGISTER;
    const int majors[2] = {2, 0};
    for (int i = 0; registered && i < 2; i++) {
        dv_msgw_t *hi = dv_msgw_new(DV_MSG_WELCOME, 0);
        dv_msgw_str(hi, "broker", "fake");
        dv_msgw_uint(hi, "heartbeat_ms", 5000);
        send_msg(fake, route, route_len, hi, majors[i], 9, NULL, 0);
    }
    if (registered) {
        send_run(fake, route, route_len, 1, "echo", 0, 2);
        dv_msgw_t *hi = dv_msgw_new(DV_MSG_WELCOME, 0);
        dv_msgw_str(hi, "broker", "fake");
        dv_msgw_uint(hi, "heartbeat_ms", 5000);
        send_msg(fake, route, route_len, hi, -1, 0, NULL, 0);
    }
    char ready[9000];
    bool got_ready = registered && dv_proc_wait_ready(&w, ready, sizeof ready);
    size_t n = sizeof s_runs / sizeof s_runs[0];
    reply_t done[sizeof s_runs / sizeof s_runs[0]];
    bool job1_done = false;
    for (size_t i = 0; i < n; i++) {
        memset(&done[i], 0, sizeof done[i]);
        if (!got_ready) {
            continue;
        }
        uint64_t job = 2 + i;
        send_run(fake, route, route_len, job, s_runs[i].kind, s_runs[i].value,
                 -1);
        deadline = dv_test_now_ms() + WAIT_MS;
        while (next_msg(fake, true, deadline, &m, NULL, NULL)) {
            if (m.type == DV_MSG_DONE) {
                job1_done = job1_done || m.job == 1;
                if (m.job == job) {
                    done[i] = m;
                    break;
                }
            }
        }
        printf("  %s: %s %s %.100s\n", s_runs[i].what,
               dv_msg_name(done[i].type),
               done[i].code ? dv_err_name(done[i].code) : "", done[i].text);
    }
    int exit_rc = w.pid ? dv_proc_stop(&w, SIGKILL) : -1;
    (void)exit_rc; // the fake broker never answers a `bye`
    char log_path[4400];
    snprintf(log_path, sizeof log_path, "%s/worker.log", dir);
    size_t len = 0;
    char *log = (char *)dv_test_read_file(log_path, &len);
    bool says2 = log && strstr(log, "protocol 2.9; this side speaks 1.x");
    bool says0 = log && strstr(log, "protocol 0.9; this side speaks 1.x");
    bool says_run = log && strstr(log, "protocol 2.0; this side speaks 1.x");
    if (!says2 || !says0 || !says_run) {
        dv_proc_dump_log(dir, "worker.log");
    }
    free(log);
    zmq_close(fake);
    zmq_ctx_term(ctx);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK(bound);
    DV_CHECK(registered);
    DV_CHECK(got_ready);
    DV_CHECK(says2);
    DV_CHECK(says0);
    DV_CHECK(says_run);
    for (size_t i = 0; i < n; i++) {
        DV_CHECK_EQ(done[i].type, DV_MSG_DONE);
        DV_CHECK_STR_EQ(dv_err_name(done[i].code), dv_err_name(s_runs[i].want));
        DV_CHECK(!s_runs[i].says || strstr(done[i].text, s_runs[i].says));
    }
    DV_CHECK_EQ(done[n - 1].frame_len, 4); // the echo's payload
    DV_CHECK(!job1_done);
}

static const dv_test_case_t cases[] = {
    {"submit limits and protocol majors", test_submit_limits},
    {"too many payload frames: refused under the request's rid",
     test_too_many_frames},
    {"libdrover and the CLI check limits too", test_client_side_limits},
    {"frames past max_frame_bytes reset the connection", test_frame_limit},
    {"kept results: 100,000 at most", test_kept_count},
    {"kept results: 256 MiB at most", test_kept_bytes},
    {"CSV files over 1 GiB", test_csv_bytes},
    {"idempotency window", test_idempotency_window},
    {"stored files: bytes and free disk", test_stored_bytes},
    {"durable submits stop short of a full disk", test_submit_free_disk},
    {"connections count while open, past the handshake time",
     test_connections_count_while_open},
    {"a connection silent past the handshake time loses its slot",
     test_silent_connection_loses_its_slot},
    {"a plain client past --max-connections gets DV_ELIMIT",
     test_plain_client_past_the_limit},
    {"the worker checks versions and limits",
     test_worker_checks_versions_and_limits},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    int rc = dv_test_main(argc, argv, cases);
    if (!cluster_down()) {
        fprintf(stderr, "FAIL: the shared broker or worker did not stop "
                        "cleanly\n");
        rc = 1;
    }
    return rc;
}
