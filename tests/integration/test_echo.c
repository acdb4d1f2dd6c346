// test_echo — the real drover-broker and drover-worker on ipc:// endpoints
// in a temporary folder, driven by a raw ZeroMQ client speaking
// docs/PROTOCOL.md: echo round trips, two workers sharing jobs, malformed
// messages answered while the broker keeps serving, clean exit on SIGTERM.
//
// Readiness comes from the daemons' READY lines, read with a deadline;
// there are no sleeps. Every process runs in its own process group and is
// killed (SIGKILL to the group) at teardown if still alive.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "dv_proto.h"
#include "dv_rng.h"
#include "dv_sha256.h"
#include "dv_test.h"
#include "dv_test_proc.h"
#include "dv_test_worker.h"
#include "dv_train.h"
#include "dv_wire.h"

#define DEADLINE_MS DV_PROC_DEADLINE_MS
// Liveness = 3 heartbeats: short enough for the lost-worker case to be
// quick, long enough that ASan builds sharing 2 cores with other tests
// (ctest -j2) are not mistaken for dead.
#define HEARTBEAT_MS "400"

typedef dv_proc_t proc_t;

static char *s_dir;

#define now_ms dv_test_now_ms

static proc_t
start(const char *env_bin, const char *const *args, const char *log_name)
{
    return dv_proc_start(env_bin, args, s_dir, log_name);
}

#define wait_ready dv_proc_wait_ready
#define stop       dv_proc_stop

typedef struct {
    proc_t broker;
    proc_t workers[2];
    char client_ep[512];
    char worker_ep[512];
    void *ctx;
    void *client;
} cluster_t;

static void *
client_socket_new(void *ctx, const char *endpoint)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    dv_test_no_hwm(s); // 10,000 submits go out before a reply is read
    if (zmq_connect(s, endpoint) != 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

static bool
cluster_up(cluster_t *c, int n_workers)
{
    memset(c, 0, sizeof *c);
    s_dir = dv_test_tmpdir();
    char cep[600], wep[600];
    snprintf(cep, sizeof cep, "ipc://%s/client.sock", s_dir);
    snprintf(wep, sizeof wep, "ipc://%s/worker.sock", s_dir);
    const char *bargs[] = {
        "--client",       cep, "--worker", wep, "--heartbeat-ms", HEARTBEAT_MS,
        "--result-ttl-s", "2", NULL};
    c->broker = start("DROVER_BROKER_BIN", bargs, "broker.log");
    char ready[1100];
    if (!c->broker.pid || !wait_ready(&c->broker, ready, sizeof ready) ||
        sscanf(ready, "%511s %511s", c->client_ep, c->worker_ep) != 2) {
        fprintf(stderr, "  broker did not get ready\n");
        return false;
    }
    for (int i = 0; i < n_workers; i++) {
        char name[16], log[32];
        snprintf(name, sizeof name, "w%d", i);
        snprintf(log, sizeof log, "worker%d.log", i);
        const char *wargs[] = {"--broker",       c->worker_ep, "--name", name,
                               "--heartbeat-ms", HEARTBEAT_MS, NULL};
        c->workers[i] = start("DROVER_WORKER_BIN", wargs, log);
        if (!c->workers[i].pid ||
            !wait_ready(&c->workers[i], ready, sizeof ready)) {
            fprintf(stderr, "  worker %d did not get ready\n", i);
            return false;
        }
    }
    c->ctx = zmq_ctx_new();
    c->client = client_socket_new(c->ctx, c->client_ep);
    return c->client != NULL;
}

// Stop everything; returns the broker's exit status on SIGTERM.
static int
cluster_down(cluster_t *c)
{
    if (c->client) {
        zmq_close(c->client);
        zmq_ctx_term(c->ctx);
    }
    for (int i = 0; i < 2; i++) {
        if (c->workers[i].pid) {
            stop(&c->workers[i], SIGTERM);
        }
    }
    int rc = stop(&c->broker, SIGTERM);
    if (rc != 0) {
        char log[4200];
        snprintf(log, sizeof log, "%s/broker.log", s_dir);
        size_t len = 0;
        char *text = (char *)dv_test_read_file(log, &len);
        fprintf(stderr, "  broker exit %d; log:\n%.*s\n", rc, (int)len,
                text ? text : "");
        free(text);
    }
    dv_test_rmdir(s_dir);
    free(s_dir);
    s_dir = NULL;
    return rc;
}

static void
send_msg(void *sock, dv_msgw_t *w, const void *payload, size_t len)
{
    size_t hlen = 0;
    const uint8_t *h = dv_msgw_bytes(w, &hlen);
    dv_frame_t f = {payload, len};
    dv_wire_send(sock, NULL, 0, h, hlen, payload ? &f : NULL, payload ? 1 : 0);
    dv_msgw_destroy(&w);
}

// Receive one message within the deadline; decodes it into *m.
static bool
recv_msg(void *sock, dv_wire_msg_t *in, dv_msg_t **m)
{
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, DEADLINE_MS) <= 0) {
        fprintf(stderr, "  no reply within the deadline\n");
        return false;
    }
    if (dv_wire_recv(sock, false, in) != 1) {
        return false;
    }
    dv_error_t err = {0};
    if (dv_msg_decode(m, zmq_msg_data(&in->header), zmq_msg_size(&in->header),
                      in->frames, in->n_payload, NULL, &err) != 0) {
        fprintf(stderr, "  bad reply: %s\n", err.text);
        dv_wire_msg_close(in);
        return false;
    }
    return true;
}

static void
submit_echo(void *sock, uint64_t rid, const char *payload)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, rid);
    dv_msgw_str(w, "queue", "default");
    dv_msgw_str(w, "kind", "echo");
    send_msg(sock, w, payload, strlen(payload));
}

// Submit n echo jobs asynchronously, then read replies until every job has
// its result. Counts results per worker name into per_worker[0/1].
static int
echo_many(void *sock, int n, int per_worker[2])
{
    char payload[64];
    for (int i = 1; i <= n; i++) {
        snprintf(payload, sizeof payload, "job-%d", i);
        submit_echo(sock, (uint64_t)i, payload);
    }
    int accepted = 0, results = 0, wrong = 0;
    while (results < n) {
        dv_wire_msg_t in;
        dv_msg_t *m = NULL;
        if (!recv_msg(sock, &in, &m)) {
            return -1;
        }
        dv_msg_type_t t = dv_msg_type(m);
        if (t == DV_MSG_ACCEPTED) {
            accepted++;
        } else if (t == DV_MSG_RESULT) {
            char state[16] = "", worker[32] = "";
            dv_error_t err = {0};
            dv_msg_str(m, "state", state, sizeof state, &err);
            dv_msg_str(m, "worker", worker, sizeof worker, &err);
            snprintf(payload, sizeof payload, "job-%llu",
                     (unsigned long long)dv_msg_rid(m));
            const dv_frame_t *f = dv_msg_frame(m, 1);
            bool same = f && f->len == strlen(payload) &&
                        memcmp(f->data, payload, f->len) == 0;
            if (!same || strcmp(state, "done") != 0) {
                int code = 0;
                char text[256] = "";
                dv_msg_error(m, &code, text, sizeof text, &err);
                fprintf(stderr, "  result %s: %s\n", state, text);
                wrong++;
            }
            if (per_worker) {
                per_worker[strcmp(worker, "w1") == 0]++;
            }
            results++;
        } else {
            wrong++;
        }
        dv_msg_destroy(&m);
        dv_wire_msg_close(&in);
    }
    if (accepted != n || wrong != 0) {
        fprintf(stderr, "  echo_many: %d accepted, %d results, %d wrong\n",
                accepted, results, wrong);
    }
    return accepted == n && wrong == 0 ? 0 : -1;
}

static void
test_echo_round_trip(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 1);
    bool welcomed = false;
    int rc = -1;
    if (up) {
        send_msg(c.client, dv_msgw_new(DV_MSG_HELLO, 1), NULL, 0);
        dv_wire_msg_t in;
        dv_msg_t *m = NULL;
        if (recv_msg(c.client, &in, &m)) {
            welcomed = dv_msg_type(m) == DV_MSG_WELCOME && dv_msg_rid(m) == 1;
            dv_msg_destroy(&m);
            dv_wire_msg_close(&in);
        }
        rc = echo_many(c.client, 500, NULL);
    }
    int exit_rc = cluster_down(&c);
    DV_CHECK(up);
    DV_CHECK(welcomed);
    DV_CHECK_EQ(rc, 0);
    DV_CHECK_EQ(exit_rc, 0); // SIGTERM: clean exit, no leaks (ASan)
}

static void
test_two_workers_share(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 2);
    int per_worker[2] = {0, 0};
    int rc = up ? echo_many(c.client, 10000, per_worker) : -1;
    int exit_rc = cluster_down(&c);
    printf("  w0 ran %d, w1 ran %d\n", per_worker[0], per_worker[1]);
    DV_CHECK(up);
    DV_CHECK_EQ(rc, 0);
    DV_CHECK(per_worker[0] > 0 && per_worker[1] > 0);
    DV_CHECK_EQ(exit_rc, 0);
}

// Expect an `error` reply with the given code to whatever was just sent.
static int
error_code(void *sock, uint64_t *rid)
{
    dv_wire_msg_t in;
    dv_msg_t *m = NULL;
    if (!recv_msg(sock, &in, &m)) {
        return 1;
    }
    int code = 1;
    char text[256];
    dv_error_t err = {0};
    if (dv_msg_type(m) == DV_MSG_ERROR) {
        dv_msg_error(m, &code, text, sizeof text, &err);
    }
    *rid = dv_msg_rid(m);
    dv_msg_destroy(&m);
    dv_wire_msg_close(&in);
    return code;
}

static void
test_malformed_input(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 1);
    int codes[7] = {0};
    uint64_t rids[7] = {0};
    int after = -1;
    if (up) {
        zmq_send(c.client, "\xc1garbage", 8, 0); // not msgpack
        codes[0] = error_code(c.client, &rids[0]);
        // Protocol 2.0 with rid 5: refused, rid echoed.
        static const char v2[] = "\x83\xa1v\x92\x02\x00\xa1t\xa5hello"
                                 "\xa3rid\x05";
        zmq_send(c.client, v2, sizeof v2 - 1, 0);
        codes[1] = error_code(c.client, &rids[1]);
        send_msg(c.client, dv_msgw_new(DV_MSG_RUN, 6), NULL, 0); // wrong side
        codes[2] = error_code(c.client, &rids[2]);
        dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, 7); // echo without payload
        dv_msgw_str(w, "queue", "q");
        dv_msgw_str(w, "kind", "echo");
        send_msg(c.client, w, NULL, 0);
        codes[3] = error_code(c.client, &rids[3]);
        w = dv_msgw_new(DV_MSG_SUBMIT, 8); // bad queue name
        dv_msgw_str(w, "queue", "no spaces/here");
        dv_msgw_str(w, "kind", "echo");
        send_msg(c.client, w, "x", 1);
        codes[4] = error_code(c.client, &rids[4]);
        w = dv_msgw_new(DV_MSG_SUBMIT, 9); // unknown kind
        dv_msgw_str(w, "queue", "q");
        dv_msgw_str(w, "kind", "teleport");
        send_msg(c.client, w, "x", 1);
        codes[5] = error_code(c.client, &rids[5]);
        // Too many frames.
        w = dv_msgw_new(DV_MSG_PING, 10);
        size_t hlen = 0;
        const uint8_t *h = dv_msgw_bytes(w, &hlen);
        dv_frame_t frames[DV_MAX_FRAMES + 1];
        for (int i = 0; i <= DV_MAX_FRAMES; i++) {
            frames[i] = (dv_frame_t){(const uint8_t *)"f", 1};
        }
        dv_wire_send(c.client, NULL, 0, h, hlen, frames, DV_MAX_FRAMES + 1);
        dv_msgw_destroy(&w);
        codes[6] = error_code(c.client, &rids[6]);
        after = echo_many(c.client, 50, NULL); // still serving
    }
    int exit_rc = cluster_down(&c);
    DV_CHECK(up);
    DV_CHECK_EQ(codes[0], DV_EFORMAT);
    DV_CHECK_EQ(codes[1], DV_EVERSION);
    DV_CHECK_EQ(rids[1], 5);
    DV_CHECK_EQ(codes[2], DV_EFORMAT);
    DV_CHECK_EQ(rids[2], 6);
    DV_CHECK_EQ(codes[3], DV_EFORMAT);
    DV_CHECK_EQ(codes[4], DV_EINVAL);
    DV_CHECK_EQ(codes[5], DV_EINVAL);
    DV_CHECK_EQ(codes[6], DV_EMSGSIZE);
    DV_CHECK_EQ(after, 0);
    DV_CHECK_EQ(exit_rc, 0);
}

// A worker holding a job goes silent (SIGSTOP), then dies (SIGKILL): after
// the liveness timeout its job runs on the other worker, and every job
// still ends with a result.
static void
test_lost_worker_jobs_rerun(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 1);
    int done = 0, rerun = 0, others = 0;
    if (up) {
        kill(c.workers[0].pid, SIGSTOP);
        for (int i = 1; i <= 20; i++) {
            char payload[32];
            snprintf(payload, sizeof payload, "job-%d", i);
            submit_echo(c.client, (uint64_t)i, payload);
        }
        // A second worker joins; the first is killed while holding a job.
        char ready[600];
        const char *wargs[] = {"--broker",       c.worker_ep,  "--name", "w1",
                               "--heartbeat-ms", HEARTBEAT_MS, NULL};
        c.workers[1] = start("DROVER_WORKER_BIN", wargs, "worker1.log");
        up = c.workers[1].pid && wait_ready(&c.workers[1], ready, sizeof ready);
        kill(c.workers[0].pid, SIGKILL);
        waitpid(c.workers[0].pid, NULL, 0);
        close(c.workers[0].out);
        c.workers[0].pid = 0;
        while (up && done + others < 20) {
            dv_wire_msg_t in;
            dv_msg_t *m = NULL;
            if (!recv_msg(c.client, &in, &m)) {
                break;
            }
            if (dv_msg_type(m) == DV_MSG_RESULT) {
                char state[16] = "";
                uint64_t attempts = 0;
                dv_error_t err = {0};
                dv_msg_str(m, "state", state, sizeof state, &err);
                dv_msg_uint(m, "attempts", &attempts, &err);
                done += strcmp(state, "done") == 0;
                others += strcmp(state, "done") != 0;
                rerun += attempts >= 2;
            }
            dv_msg_destroy(&m);
            dv_wire_msg_close(&in);
        }
    }
    int exit_rc = cluster_down(&c);
    DV_CHECK(up);
    DV_CHECK_EQ(done, 20);
    DV_CHECK_EQ(others, 0);
    // The jobs the frozen worker held: its credits, concurrency 1 + the
    // default prefetch of 4.
    DV_CHECK_EQ(rerun, 5);
    DV_CHECK_EQ(exit_rc, 0);
}

// Send a request {job} of type t and return the reply (caller destroys).
static dv_msg_t *
ask(void *sock, dv_msg_type_t t, uint64_t job, dv_wire_msg_t *in)
{
    dv_msgw_t *w = dv_msgw_new(t, 1000 + job);
    dv_msgw_uint(w, "job", job);
    send_msg(sock, w, NULL, 0);
    dv_msg_t *m = NULL;
    return recv_msg(sock, in, &m) ? m : NULL;
}

// Results outlive the connection that submitted them: another client
// fetches them by id (result_get) and asks their state (job_get); unknown
// ids are DV_ENOENT; after the TTL (2 s here) they are gone.
static void
test_results_kept_for_others(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 1);
    uint64_t ids[3] = {0};
    int fetched = 0, states = 0, unknown = 0;
    bool expired = false;
    if (up) {
        for (int i = 0; i < 3; i++) {
            char payload[16];
            snprintf(payload, sizeof payload, "job-%d", i + 1);
            submit_echo(c.client, (uint64_t)i + 1, payload);
        }
        for (int got = 0; got < 6;) { // 3 accepted + 3 results
            dv_wire_msg_t in;
            dv_msg_t *m = NULL;
            if (!recv_msg(c.client, &in, &m)) {
                break;
            }
            dv_error_t err = {0};
            if (dv_msg_type(m) == DV_MSG_ACCEPTED) {
                dv_msg_uint(m, "job", &ids[dv_msg_rid(m) - 1], &err);
            }
            got++;
            dv_msg_destroy(&m);
            dv_wire_msg_close(&in);
        }
        zmq_close(c.client); // the submitter goes away
        c.client = client_socket_new(c.ctx, c.client_ep);
        for (int i = 0; i < 3; i++) {
            dv_wire_msg_t in;
            dv_msg_t *m = ask(c.client, DV_MSG_RESULT_GET, ids[i], &in);
            if (m) {
                char want[16], state[16] = "";
                snprintf(want, sizeof want, "job-%d", i + 1);
                const dv_frame_t *f = dv_msg_frame(m, 1);
                dv_error_t err = {0};
                dv_msg_str(m, "state", state, sizeof state, &err);
                fetched += dv_msg_type(m) == DV_MSG_RESULT &&
                           dv_msg_rid(m) == 1000 + ids[i] && f &&
                           f->len == strlen(want) &&
                           memcmp(f->data, want, f->len) == 0 &&
                           strcmp(state, "done") == 0;
                dv_msg_destroy(&m);
                dv_wire_msg_close(&in);
            }
            m = ask(c.client, DV_MSG_JOB_GET, ids[i], &in);
            if (m) {
                char state[16] = "";
                dv_error_t err = {0};
                dv_msg_str(m, "state", state, sizeof state, &err);
                states +=
                    dv_msg_type(m) == DV_MSG_JOB && strcmp(state, "done") == 0;
                dv_msg_destroy(&m);
                dv_wire_msg_close(&in);
            }
        }
        uint64_t rid;
        dv_msgw_t *w = dv_msgw_new(DV_MSG_RESULT_GET, 6);
        dv_msgw_uint(w, "job", 987654);
        send_msg(c.client, w, NULL, 0);
        unknown = error_code(c.client, &rid) == DV_ENOENT && rid == 6;
        w = dv_msgw_new(DV_MSG_JOB_GET, 7);
        dv_msgw_uint(w, "job", 987654);
        send_msg(c.client, w, NULL, 0);
        unknown =
            unknown && error_code(c.client, &rid) == DV_ENOENT && rid == 7;
        // Poll until the TTL (2 s, checked on the 200 ms heartbeat) has
        // dropped the first result; a deadline bounds the wait.
        int64_t end = now_ms() + DEADLINE_MS;
        while (!expired && now_ms() < end) {
            w = dv_msgw_new(DV_MSG_RESULT_GET, 8);
            dv_msgw_uint(w, "job", ids[0]);
            send_msg(c.client, w, NULL, 0);
            expired = error_code(c.client, &rid) == DV_ENOENT;
            if (!expired) {
                struct timespec ts = {0, 100 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
        }
    }
    int exit_rc = cluster_down(&c);
    DV_CHECK(up);
    DV_CHECK_EQ(fetched, 3);
    DV_CHECK_EQ(states, 3);
    DV_CHECK(unknown);
    DV_CHECK(expired);
    DV_CHECK_EQ(exit_rc, 0);
}

// Valid headers of every type a peer may send, to be mutated.
static size_t
sample_headers(uint8_t **out, size_t *lens, size_t max)
{
    size_t n = 0;
    uint8_t sum[DV_SHA256_BYTES];
    dv_sha256("x", 1, sum);
    for (int t = 0; t < DV_MSG_COUNT_ && n < max; t++) {
        dv_msgw_t *w = dv_msgw_new((dv_msg_type_t)t, (uint64_t)t + 1);
        dv_msgw_str(w, "queue", "q");
        static const char *kinds[] = {"echo", "infer", "sleep", "train",
                                      "evaluate"};
        dv_msgw_str(w, "kind", kinds[t % 5]);
        dv_msgw_str(w, "model", "m@1");
        dv_msgw_str(w, "name", "m");
        dv_msgw_uint(w, "version", 1);
        dv_msgw_bin(w, "sha256", sum, sizeof sum);
        dv_msgw_tensor(w, "input", 1, 1, 1);
        dv_msgw_tensor(w, "output", 1, 1, 1);
        dv_msgw_uint(w, "job", 1);
        dv_msgw_uint(w, "attempt", 1);
        dv_msgw_str(w, "state", t % 3 ? "done" : "failed");
        dv_msgw_error(w, "error", DV_EINVAL, "x");
        dv_msgw_str(w, "worker", "fuzz");
        dv_msgw_uint(w, "capacity", 2);
        const char *models[] = {"m@1", "n@2"};
        dv_msgw_strs(w, "models", models, 2);
        dv_msgw_strs(w, "classes", models, 1);
        // Protocol 1.1 fields: submit options, streams, dead letters.
        dv_msgw_key(w, "priority");
        dv_msgw_v_int(w, -3);
        dv_msgw_uint(w, "deadline_ms", 5000);
        dv_msgw_uint(w, "timeout_ms", 5000);
        dv_msgw_uint(w, "backoff_ms", 10);
        dv_msgw_uint(w, "ms", 1);
        dv_msgw_str(w, "idempotency_key", "k");
        dv_msgw_str(w, "consumer", "c");
        dv_msgw_uint(w, "seq", 1);
        dv_msgw_uint(w, "window", 10);
        dv_msgw_str(w, "from", "latest");
        dv_msgw_key(w, "all");
        dv_msgw_v_bool(w, true);
        dv_msgw_strs(w, "queues", models, 1);
        // Training and registry fields (1.1).
        dv_hyper_t hp;
        dv_hyper_default(&hp, t % 2 ? DV_ALGO_MLP : DV_ALGO_SOFTMAX);
        dv_msgw_hyper(w, "train", &hp);
        dv_msgw_str(w, "alias", "prod");
        dv_msgw_uint(w, "keep", 1);
        dv_msgw_uint(w, "epoch", 1);
        dv_msgw_uint(w, "epochs", 2);
        dv_msgw_double(w, "loss", 0.5);
        dv_msgw_uint(w, "train_slots", 1);
        dv_msgw_uint(w, "bytes", 4);
        dv_msgw_uint(w, "offset", 0);
        dv_msgw_str(w, "dataset", "d");
        // Data set fetches, checkpoints, eval sets, security (1.1).
        dv_msgw_str(w, "eval_dataset", "d");
        dv_msgw_uint(w, "checkpoint_ms", 100);
        dv_msgw_double(w, "eval", 0.5);
        dv_msgw_uint(w, "since_ms", 0);
        uint8_t sig[64] = {0};
        dv_msgw_bin(w, "signature", sig, sizeof sig);
        dv_msgw_str(w, "signer", "admin");

        size_t len = 0;
        const uint8_t *h = dv_msgw_bytes(w, &len);
        out[n] = malloc(len);
        memcpy(out[n], h, len);
        lens[n++] = len;
        dv_msgw_destroy(&w);
    }
    return n;
}

// Send n mutations of the samples (flipped bytes, cuts, inserted bytes,
// random payload frames) on sock, reading and dropping any replies.
static void
send_mutants(void *sock,
             dv_rng_t *rng,
             uint8_t **samples,
             size_t *lens,
             size_t n_samples,
             int n)
{
    uint8_t buf[1024], frame[64];
    for (int i = 0; i < n; i++) {
        size_t k = dv_rng_below(rng, n_samples);
        size_t len = lens[k] < sizeof buf ? lens[k] : sizeof buf;
        memcpy(buf, samples[k], len);
        int edits = 1 + (int)dv_rng_below(rng, 4);
        for (int e = 0; e < edits; e++) {
            size_t at = dv_rng_below(rng, len);
            switch (dv_rng_below(rng, 3)) {
            case 0:
                buf[at] ^= (uint8_t)(1u << dv_rng_below(rng, 8));
                break;
            case 1:
                buf[at] = (uint8_t)dv_rng_next(rng);
                break;
            default:
                len = at + 1; // cut
                break;
            }
        }
        size_t n_frames = dv_rng_below(rng, 4);
        dv_frame_t frames[4];
        for (size_t f = 0; f < n_frames; f++) {
            size_t flen = dv_rng_below(rng, sizeof frame);
            for (size_t b = 0; b < flen; b++) {
                frame[b] = (uint8_t)dv_rng_next(rng);
            }
            frames[f] = (dv_frame_t){frame, flen};
        }
        dv_wire_send(sock, NULL, 0, buf, len, frames, n_frames);
        dv_wire_msg_t in;
        while (dv_wire_recv(sock, false, &in) == 1) {
            dv_wire_msg_close(&in);
        }
    }
}

// Send a request of type t with a rid no mutant uses and read until the
// reply carrying it (pong or error) arrives.
static bool
sync_with(void *sock, dv_msg_type_t t)
{
    const uint64_t rid = 987654321;
    send_msg(sock, dv_msgw_new(t, rid), NULL, 0);
    int64_t end = now_ms() + DEADLINE_MS;
    while (now_ms() < end) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 100) <= 0) {
            continue;
        }
        dv_wire_msg_t in;
        while (dv_wire_recv(sock, false, &in) == 1) {
            dv_msg_t *m = NULL;
            dv_error_t err = {0};
            uint64_t got = 0;
            dv_msg_decode(&m, zmq_msg_data(&in.header),
                          zmq_msg_size(&in.header), in.frames, in.n_payload,
                          &got, &err);
            dv_msg_destroy(&m);
            dv_wire_msg_close(&in);
            if (got == rid) {
                return true;
            }
        }
    }
    return false;
}

// Thousands of mutated messages on both sockets: the broker answers or
// drops each, never crashes, and serves real work afterwards.
static void
test_random_garbage_never_stops_the_broker(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 1);
    int after = -1;
    bool synced = false;
    if (up) {
        uint8_t *samples[DV_MSG_COUNT_];
        size_t lens[DV_MSG_COUNT_];
        size_t n = sample_headers(samples, lens, DV_MSG_COUNT_);
        dv_rng_t rng;
        dv_rng_seed(&rng, 20261125);
        void *fake_worker = client_socket_new(c.ctx, c.worker_ep);
        send_mutants(c.client, &rng, samples, lens, n, 3000);
        send_mutants(fake_worker, &rng, samples, lens, n, 3000);
        // Wait until the broker has read all of it (a reply to a last
        // request on each connection comes after the rest): a mutated
        // `done` or `job_cancel` still in its backlog could otherwise hit
        // the jobs below.
        synced = sync_with(c.client, DV_MSG_PING) &&
                 sync_with(fake_worker, DV_MSG_PING);
        zmq_close(fake_worker); // it may have registered: it goes silent
        for (size_t i = 0; i < n; i++) {
            free(samples[i]);
        }
        zmq_close(c.client);
        c.client = client_socket_new(c.ctx, c.client_ep);
        after = c.client ? echo_many(c.client, 200, NULL) : -1;
    }
    int exit_rc = cluster_down(&c);
    DV_CHECK(up);
    DV_CHECK(synced);
    DV_CHECK_EQ(after, 0);
    DV_CHECK_EQ(exit_rc, 0); // and no leaks (ASan)
}

static const dv_test_case_t cases[] = {
    {"echo round trip through broker and worker", test_echo_round_trip},
    {"two workers share the jobs", test_two_workers_share},
    {"malformed input is answered, serving goes on", test_malformed_input},
    {"a lost worker's job runs elsewhere", test_lost_worker_jobs_rerun},
    {"results are kept for other clients", test_results_kept_for_others},
    {"random garbage never stops the broker",
     test_random_garbage_never_stops_the_broker},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
