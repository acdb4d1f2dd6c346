// test_batch — the batch messages between a real drover-broker and its
// workers (docs/PROTOCOL.md 1.4, `run_batch` and `done_batch`):
//   - infer jobs waiting for the same model version reach a 1.4 worker as
//     one `run_batch`, inputs in queue order; a 1.3 worker gets the same
//     jobs as one `run` each;
//   - one `done_batch` answers many jobs, each getting its own output; a
//     job failed on its own (`done`) fails alone, a cancelled one stays
//     cancelled, an unknown one in the list is skipped;
//   - a job whose rows in a `done_batch` disagree with its input fails
//     DV_ESHAPE alone;
//   - a worker lost while it holds a batch: every job of it runs again;
//   - `submit_many`: 300 requests through libdrover (two messages), each
//     accepted or refused on its own, each result equal to its job's alone;
//     the accepted ones acknowledged in one `accepted_many`;
//   - `results`: a pass's results reach a 1.4 client in one message;
//     and a raw client's broken ones: refused per request where each can
//     be told apart, as a whole where not;
//   - a process's connections share one ZeroMQ context (libdrover).
//
// The worker is the test itself (dv_test_worker, a raw connection), so the
// messages are seen exactly; the broker is the real one, in memory.
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <msgpack.h>
#include <zmq.h>

#include "drover.h"
#include "dv_model.h"
#include "dv_modelfile.h"
#include "dv_msgpack.h"
#include "dv_proto.h"
#include "dv_test.h"
#include "dv_test_cluster.h"
#include "dv_test_proc.h"
#include "dv_test_worker.h"
#include "dv_wire.h"

#define HB      1000 // heartbeat ms: a lease of 3 s
#define HB_S    "1000"
#define WAIT_MS 30000 // a run or a result, generous for ASan on 2 cores
#define N_JOBS  5     // jobs that wait behind the first

typedef struct {
    char *dir;                 // temporary folder
    char cep[4300], wep[4300]; // endpoints
    dv_proc_t broker;          // drover-broker
    dv_tworker_t *raw;         // the worker the test plays
    drover_t *d;               // a client
} cluster_t;

// Push a 2-feature regression model as "lin": y = 2 x0 - x1 + 0.5.
static int
push_model(drover_t *d)
{
    size_t widths[] = {2, 1};
    dv_act_t acts[] = {DV_ACT_IDENTITY};
    dv_model_t *m = dv_test_model(DV_TASK_REGRESSION, 1, widths, acts, 0);
    m->layers[0].w[0] = 2.0f;
    m->layers[0].w[1] = -1.0f;
    m->layers[0].b[0] = 0.5f;
    return dv_tcluster_push_model(d, m, "lin");
}

// A broker with model "lin" and the test's worker (capacity 1), speaking
// protocol 1.minor.
static bool
cluster_up(cluster_t *c, unsigned minor)
{
    memset(c, 0, sizeof *c);
    c->dir = dv_test_tmpdir();
    snprintf(c->cep, sizeof c->cep, "ipc://%s/c.sock", c->dir);
    snprintf(c->wep, sizeof c->wep, "ipc://%s/w.sock", c->dir);
    const char *args[] = {"--client",       c->cep, "--worker", c->wep,
                          "--heartbeat-ms", HB_S,   NULL};
    c->broker = dv_proc_start("DROVER_BROKER_BIN", args, c->dir, "broker.log");
    char ready[9000];
    drover_error_t err = {0};
    if (!c->broker.pid ||
        !dv_proc_wait_ready(&c->broker, ready, sizeof ready) ||
        drover_connect(&c->d, c->cep, 10000, &err) != 0) {
        fprintf(stderr, "  broker did not start: %s\n", err.text);
        return false;
    }
    c->raw = dv_tworker_start_minor(c->wep, "raw", 1, NULL, HB, minor);
    return c->raw && push_model(c->d) == 0;
}

static void
cluster_down(cluster_t *c, bool failed)
{
    drover_destroy(&c->d);
    dv_tworker_stop(&c->raw);
    dv_proc_stop(&c->broker, SIGTERM);
    if (failed) {
        dv_proc_dump_log(c->dir, "broker.log");
    }
    dv_test_rmdir(c->dir);
    free(c->dir);
}

// Submit a one-row infer job whose input is {value, 0}, with a deadline
// and a run timeout (ms, 0: none); its id (0: refused).
static uint64_t
submit_t(cluster_t *c, float value, uint32_t deadline_ms, uint32_t timeout_ms)
{
    float row[2] = {value, 0.0f};
    drover_job_t job = DROVER_JOB_INIT;
    job.kind = "infer";
    job.model = "lin";
    job.input = row;
    job.rows = 1;
    job.cols = 2;
    job.backoff_ms = -1;
    job.deadline_ms = deadline_ms;
    job.timeout_ms = timeout_ms;
    uint64_t id = 0;
    drover_error_t err = {0};
    if (drover_submit(c->d, &job, 10000, &id, &err) != 0) {
        fprintf(stderr, "  submit: %s\n", err.text);
    }
    return id;
}

static uint64_t
submit(cluster_t *c, float value)
{
    return submit_t(c, value, 0, 0);
}

// A job's outcome, read while the test's worker keeps heartbeating: its
// error code (0: done) and first output value.
typedef struct {
    bool got;
    int code;
    float out;
    size_t rows;
    uint32_t attempts;
} outcome_t;

static outcome_t
outcome(cluster_t *c, uint64_t id)
{
    outcome_t o = {0};
    int64_t end = dv_test_now_ms() + WAIT_MS;
    drover_result_t *r = NULL;
    drover_error_t err;
    while (id && !r && dv_test_now_ms() < end) {
        if (drover_wait(c->d, id, 100, &r, &err) != 0) {
            r = NULL;
            if (c->raw) {
                dv_tworker_idle(c->raw, 100);
            }
        }
    }
    if (r) {
        const char *text = "";
        size_t cols = 0;
        o.got = true;
        o.code = drover_result_error(r, &text);
        o.attempts = drover_result_attempts(r);
        const float *p = drover_result_output(r, &o.rows, &cols);
        o.out = p && o.rows ? p[0] : 0.0f;
        if (o.code) {
            printf("  job %llu: %s: %s\n", (unsigned long long)id,
                   drover_err_name(o.code), text);
        }
    }
    drover_result_destroy(&r);
    return o;
}

// One job runs on the worker (held, its slot taken) while N_JOBS more are
// submitted behind it; then it is answered, and the waiting ones come.
// ids[0] the first, ids[1..N_JOBS] the others (input value i for job i).
static bool
queue_behind_one(cluster_t *c, uint64_t *ids, dv_trun_t *runs, size_t *got)
{
    dv_trun_t first;
    ids[0] = submit(c, 0.0f);
    if (!ids[0] || !dv_tworker_next(c->raw, WAIT_MS, &first)) {
        return false;
    }
    for (size_t i = 1; i <= N_JOBS; i++) {
        ids[i] = submit(c, (float)i);
    }
    uint32_t one = 1;
    float out = 0.0f;
    dv_tworker_done_batch(c->raw, &first, &one, 1, &out, 1);
    *got = 0;
    while (*got < N_JOBS && dv_tworker_next(c->raw, WAIT_MS, &runs[*got])) {
        (*got)++;
    }
    return outcome(c, ids[0]).code == 0;
}

static void
test_one_message_each_way(void)
{
    cluster_t c;
    bool up = cluster_up(&c, DV_PROTOCOL_MINOR);
    uint64_t ids[N_JOBS + 1] = {0};
    dv_trun_t runs[N_JOBS];
    size_t got = 0, n_run = 0, n_batch = 0;
    bool queued = up && queue_behind_one(&c, ids, runs, &got);
    if (up) {
        dv_tworker_counts(c.raw, &n_run, &n_batch);
    }
    // Job 2 is cancelled while the worker holds it; job 3 fails on its
    // own; the rest, and an id the broker never gave, share a done_batch.
    drover_error_t err = {0};
    int cancel = queued ? drover_job_cancel(c.d, ids[2], NULL, &err) : -1;
    dv_trun_t answer[N_JOBS];
    uint32_t rows[N_JOBS];
    float out[N_JOBS];
    size_t n = 0;
    for (size_t i = 0; queued && i < got; i++) {
        if (runs[i].job == ids[3]) {
            dv_tworker_answer(c.raw, runs[i].job, runs[i].attempt, DV_ENAN,
                              "as the test asked");
            continue;
        }
        answer[n] = runs[i];
        rows[n] = 1;
        out[n++] = 10.0f * runs[i].first;
        if (i == 1) { // a stranger in the middle: its row is skipped
            answer[n] = (dv_trun_t){.job = 999999, .attempt = 1};
            rows[n] = 1;
            out[n++] = -1.0f;
        }
    }
    if (queued) {
        dv_tworker_done_batch(c.raw, answer, rows, n, out, 1);
    }
    outcome_t o[N_JOBS + 1];
    for (size_t i = 1; i <= N_JOBS; i++) {
        o[i] = up ? outcome(&c, ids[i]) : (outcome_t){0};
    }
    cluster_down(&c, !queued);
    DV_CHECK(up);
    DV_CHECK(queued);
    // The five waiting jobs came as one run_batch, in submit order, after
    // the first job's own run.
    DV_CHECK_EQ(got, N_JOBS);
    DV_CHECK_EQ(n_run, 1);
    DV_CHECK_EQ(n_batch, 1);
    for (size_t i = 0; i < got; i++) {
        DV_CHECK_EQ(runs[i].job, ids[i + 1]);
        DV_CHECK_EQ(runs[i].attempt, 1);
        DV_CHECK_EQ(runs[i].rows, 1);
        DV_CHECK_EQ(runs[i].cols, 2);
        DV_CHECK(runs[i].first == (float)(i + 1));
    }
    DV_CHECK_EQ(cancel, 0);
    for (size_t i = 1; i <= N_JOBS; i++) {
        DV_CHECK(o[i].got);
        int want = i == 2 ? DV_ECANCELED : i == 3 ? DV_ENAN : 0;
        DV_CHECK_EQ(o[i].code, want);
        if (!want) { // its own row of the batch's output
            DV_CHECK_EQ(o[i].rows, 1);
            DV_CHECK(o[i].out == 10.0f * (float)i);
        }
    }
}

static void
test_rows_that_disagree(void)
{
    cluster_t c;
    bool up = cluster_up(&c, DV_PROTOCOL_MINOR);
    uint64_t ids[N_JOBS + 1] = {0};
    dv_trun_t runs[N_JOBS];
    size_t got = 0;
    bool queued = up && queue_behind_one(&c, ids, runs, &got);
    // Job 1 of the batch is answered with two rows for its one.
    uint32_t rows[N_JOBS];
    float out[N_JOBS + 1];
    for (size_t i = 0; i < got; i++) {
        rows[i] = i == 1 ? 2 : 1;
    }
    for (size_t i = 0; i <= got; i++) {
        out[i] = (float)i;
    }
    if (queued) {
        dv_tworker_done_batch(c.raw, runs, rows, got, out, 1);
    }
    outcome_t o[N_JOBS + 1];
    for (size_t i = 1; i <= N_JOBS; i++) {
        o[i] = up ? outcome(&c, ids[i]) : (outcome_t){0};
    }
    cluster_down(&c, !queued);
    DV_CHECK(queued);
    DV_CHECK_EQ(got, N_JOBS);
    for (size_t i = 1; i <= N_JOBS; i++) {
        DV_CHECK(o[i].got);
        DV_CHECK_EQ(o[i].code, i == 2 ? DV_ESHAPE : 0);
    }
    // The others' outputs are their own rows, past job 2's two.
    DV_CHECK(o[1].out == 0.0f);
    DV_CHECK(o[3].out == 3.0f);
    DV_CHECK(o[5].out == 5.0f);
}

static void
test_older_worker(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 3);
    uint64_t ids[N_JOBS + 1] = {0};
    dv_trun_t runs[N_JOBS];
    size_t got = 0, n_run = 0, n_batch = 0;
    bool queued = up && queue_behind_one(&c, ids, runs, &got);
    if (up) {
        dv_tworker_counts(c.raw, &n_run, &n_batch);
    }
    cluster_down(&c, !queued);
    DV_CHECK(queued);
    DV_CHECK_EQ(got, N_JOBS);
    DV_CHECK_EQ(n_run, N_JOBS + 1); // one run each
    DV_CHECK_EQ(n_batch, 0);
    for (size_t i = 0; i < got; i++) {
        DV_CHECK_EQ(runs[i].job, ids[i + 1]);
        DV_CHECK(runs[i].first == (float)(i + 1));
    }
}

static void
test_lost_worker_batch_runs_again(void)
{
    cluster_t c;
    bool up = cluster_up(&c, DV_PROTOCOL_MINOR);
    uint64_t ids[N_JOBS + 1] = {0};
    dv_trun_t runs[N_JOBS], again[N_JOBS];
    size_t got = 0, got2 = 0, n_run = 0, n_batch = 0;
    bool queued = up && queue_behind_one(&c, ids, runs, &got);
    // The worker goes silent holding the batch; after its lease a new one
    // gets every job of it, as attempt 2.
    dv_tworker_stop(&c.raw);
    c.raw = queued ? dv_tworker_start(c.wep, "second", 1, NULL, HB) : NULL;
    while (c.raw && got2 < N_JOBS &&
           dv_tworker_next(c.raw, WAIT_MS, &again[got2])) {
        got2++;
    }
    uint32_t rows[N_JOBS] = {1, 1, 1, 1, 1};
    float out[N_JOBS] = {1, 2, 3, 4, 5};
    if (c.raw) {
        dv_tworker_counts(c.raw, &n_run, &n_batch);
        dv_tworker_done_batch(c.raw, again, rows, got2, out, 1);
    }
    outcome_t o[N_JOBS + 1];
    for (size_t i = 1; i <= N_JOBS; i++) {
        o[i] = c.raw ? outcome(&c, ids[i]) : (outcome_t){0};
    }
    cluster_down(&c, got2 != N_JOBS);
    DV_CHECK(queued);
    DV_CHECK_EQ(got, N_JOBS);
    DV_CHECK_EQ(got2, N_JOBS);
    DV_CHECK_EQ(n_batch, 1); // the jobs went out again together
    for (size_t i = 0; i < got2; i++) {
        DV_CHECK_EQ(again[i].attempt, 2);
    }
    for (size_t i = 1; i <= N_JOBS; i++) {
        DV_CHECK(o[i].got);
        DV_CHECK_EQ(o[i].code, 0);
        DV_CHECK_EQ(o[i].attempts, 2);
    }
}

// --------------------------------------------------------- submit_many

#define N_MANY 300 // over DV_MAX_SUBMIT_MANY: two messages

static void
test_submit_many(void)
{
    cluster_t c;
    bool up = cluster_up(&c, DV_PROTOCOL_MINOR);
    dv_tworker_stop(&c.raw); // a real worker computes
    dv_proc_t worker = {0, -1};
    const char *wargs[] = {"--broker", c.wep, "--heartbeat-ms", HB_S, NULL};
    char ready[9000];
    if (up) {
        worker = dv_proc_start("DROVER_WORKER_BIN", wargs, c.dir, "worker.log");
        up = worker.pid && dv_proc_wait_ready(&worker, ready, sizeof ready);
    }
    static float in[N_MANY][2];
    static drover_job_t jobs[N_MANY];
    static uint64_t ids[N_MANY];
    for (size_t i = 0; i < N_MANY; i++) {
        in[i][0] = (float)i;
        in[i][1] = 1.0f;
        jobs[i] = (drover_job_t)DROVER_JOB_INIT;
        jobs[i].kind = "infer";
        jobs[i].model = i == 7 ? "nosuch" : "lin"; // refused alone
        jobs[i].input = in[i];
        jobs[i].rows = 1;
        jobs[i].cols = 2;
    }
    drover_error_t err = {0};
    // A job that cannot be sent: nothing is.
    jobs[9].cols = 0;
    int bad = up ? drover_submit_many(c.d, jobs, N_MANY, 10000, ids, &err) : -1;
    char bad_text[256];
    snprintf(bad_text, sizeof bad_text, "%s", err.text);
    jobs[9].cols = 2;
    int rc = up ? drover_submit_many(c.d, jobs, N_MANY, 30000, ids, &err) : -1;
    char rc_text[256];
    snprintf(rc_text, sizeof rc_text, "%s", err.text);
    size_t accepted = 0, right = 0;
    for (size_t i = 0; rc != -1 && i < N_MANY; i++) {
        accepted += ids[i] != 0;
        drover_result_t *r = NULL;
        size_t rows = 0, cols = 0;
        if (ids[i] && drover_wait(c.d, ids[i], WAIT_MS, &r, &err) == 0) {
            const float *out = drover_result_output(r, &rows, &cols);
            right += out && rows == 1 && cols == 1 &&
                     out[0] == 2.0f * (float)i - 1.0f + 0.5f;
        }
        drover_result_destroy(&r);
    }
    dv_proc_stop(&worker, SIGTERM);
    cluster_down(&c, right != N_MANY - 1);
    printf("  refused before sending: %s\n  refused by the broker: %s\n",
           bad_text, rc_text);
    DV_CHECK(up);
    DV_CHECK_EQ(bad, DV_EINVAL);
    DV_CHECK(strstr(bad_text, "jobs[9]") != NULL);
    DV_CHECK_EQ(rc, DV_ENOMODEL);
    DV_CHECK(strstr(rc_text, "jobs[7]") != NULL);
    DV_CHECK_EQ(ids[7], 0);
    DV_CHECK_EQ(accepted, N_MANY - 1);
    DV_CHECK_EQ(right, N_MANY - 1);
}

// A raw client's submit_many header (requests: n maps, request i with rid
// 100 + i unless no_rid, bytes 8 each unless bytes is given) and frame.
static void
send_raw_many(void *sock, size_t n, bool no_rid, uint64_t bytes, bool array)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT_MANY, 7);
    if (array) {
        dv_msgw_key(w, "requests");
        dv_msgw_v_array(w, n);
        for (size_t i = 0; i < n; i++) {
            dv_msgw_v_map(w, no_rid && i == 1 ? 4 : 5);
            dv_msgw_v_str(w, "queue");
            dv_msgw_v_str(w, "q");
            dv_msgw_v_str(w, "kind");
            dv_msgw_v_str(w, "echo");
            dv_msgw_v_str(w, "durability");
            dv_msgw_v_str(w, "none");
            if (!(no_rid && i == 1)) {
                dv_msgw_v_str(w, "rid");
                dv_msgw_v_uint(w, 100 + i);
            }
            dv_msgw_v_str(w, "bytes");
            dv_msgw_v_uint(w, bytes);
        }
    } else {
        dv_msgw_str(w, "requests", "all of them");
    }
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    static const uint8_t payload[64] = {0};
    dv_frame_t f = {payload, 8 * n};
    dv_wire_send(sock, NULL, 0, h, len, &f, 1);
    dv_msgw_destroy(&w);
}

// Up to max replies within ms: each reply's rid and type (each pair of an
// accepted_many as an accepted with its rid).
static size_t s_accepted_many; // accepted_many messages raw_replies saw

static size_t
raw_replies(
    void *sock, int ms, uint64_t *rids, dv_msg_type_t *types, size_t max)
{
    size_t n = 0;
    int64_t end = dv_test_now_ms() + ms;
    while (n < max && dv_test_now_ms() < end) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 50) <= 0) {
            continue;
        }
        dv_wire_msg_t in;
        while (n < max && dv_wire_recv(sock, false, &in) == 1) {
            dv_msg_t *m = NULL;
            dv_error_t e = {0};
            if (dv_msg_decode(&m, zmq_msg_data(&in.header),
                              zmq_msg_size(&in.header), in.frames, in.n_payload,
                              NULL, &e) == 0) {
                const msgpack_object *l = dv_msg_get(m, "accepted");
                if (dv_msg_type(m) == DV_MSG_ACCEPTED_MANY && l &&
                    l->type == MSGPACK_OBJECT_ARRAY) {
                    s_accepted_many++; // each pair counts as an accepted
                    for (uint32_t i = 0; i < l->via.array.size && n < max;
                         i++) {
                        const msgpack_object *p = &l->via.array.ptr[i];
                        rids[n] = 0;
                        if (p->type == MSGPACK_OBJECT_ARRAY &&
                            p->via.array.size == 2) {
                            dv_msgpack_uint(&p->via.array.ptr[0], &rids[n]);
                        }
                        types[n++] = DV_MSG_ACCEPTED;
                    }
                } else {
                    rids[n] = dv_msg_rid(m);
                    types[n++] = dv_msg_type(m);
                }
            }
            dv_msg_destroy(&m);
            dv_wire_msg_close(&in);
        }
    }
    return n;
}

static void
test_submit_many_broken(void)
{
    cluster_t c;
    bool up = cluster_up(&c, DV_PROTOCOL_MINOR);
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    dv_test_no_hwm(sock);
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    up = up && zmq_connect(sock, c.cep) == 0;
    uint64_t rids[8];
    dv_msg_type_t types[8];
    // Three good echo requests: three `accepted`, each under its own rid.
    size_t good = 0;
    if (up) {
        send_raw_many(sock, 3, false, 8, true);
        good = raw_replies(sock, 3000, rids, types, 3);
    }
    size_t good_msgs = s_accepted_many; // the three in one message
    bool good_ok = good == 3;
    for (size_t i = 0; i < good; i++) {
        good_ok = good_ok && types[i] == DV_MSG_ACCEPTED && rids[i] >= 100 &&
                  rids[i] < 103;
    }
    // Bytes that do not add up: each request refused under its rid.
    size_t sizes = 0;
    if (up) {
        send_raw_many(sock, 3, false, 9, true);
        sizes = raw_replies(sock, 3000, rids, types, 3);
    }
    bool sizes_ok = sizes == 3;
    for (size_t i = 0; i < sizes; i++) {
        sizes_ok = sizes_ok && types[i] == DV_MSG_ERROR && rids[i] == 100 + i;
    }
    // A request without a rid, or no array: one error, the message's rid.
    size_t whole[2] = {0, 0};
    bool whole_ok = true;
    for (int k = 0; up && k < 2; k++) {
        send_raw_many(sock, 3, k == 0, 8, k == 0);
        whole[k] = raw_replies(sock, 1000, rids, types, 4);
        whole_ok = whole_ok && whole[k] == 1 && types[0] == DV_MSG_ERROR &&
                   rids[0] == 7;
    }
    zmq_close(sock);
    zmq_ctx_term(ctx);
    cluster_down(&c, !(good_ok && sizes_ok && whole_ok));
    DV_CHECK(up);
    DV_CHECK_EQ(good, 3);
    DV_CHECK(good_ok);
    DV_CHECK_EQ(good_msgs, 1);
    DV_CHECK_EQ(sizes, 3);
    DV_CHECK(sizes_ok);
    DV_CHECK_EQ(whole[0], 1);
    DV_CHECK_EQ(whole[1], 1);
    DV_CHECK(whole_ok);
}

// Deadlines and run timeouts inside a batch: a job whose deadline passes
// while it waits behind a busy worker expires instead of riding; a job of
// a run_batch whose run timeout passes fails DV_ETIMEDOUT alone, and the
// done_batch that comes later still answers the others.
static void
test_deadline_and_timeout(void)
{
    cluster_t c;
    bool up = cluster_up(&c, DV_PROTOCOL_MINOR);
    dv_trun_t first, runs[4];
    bool busy = false;
    uint64_t a = up ? submit(&c, 0.0f) : 0;
    busy = a && dv_tworker_next(c.raw, WAIT_MS, &first);
    uint64_t late = busy ? submit_t(&c, 1.0f, 200, 0) : 0;  // expires
    uint64_t slow = busy ? submit_t(&c, 2.0f, 0, 1000) : 0; // times out
    uint64_t ok1 = busy ? submit(&c, 3.0f) : 0,
             ok2 = busy ? submit(&c, 4.0f) : 0;
    if (busy) {
        dv_tworker_idle(c.raw, 600); // `late`'s deadline passes
    }
    uint32_t one = 1;
    float zero = 0.0f;
    size_t got = 0;
    if (busy) {
        dv_tworker_done_batch(c.raw, &first, &one, 1, &zero, 1);
        while (got < 3 && dv_tworker_next(c.raw, WAIT_MS, &runs[got])) {
            got++;
        }
    }
    outcome_t o_late = busy ? outcome(&c, late) : (outcome_t){0};
    outcome_t o_slow = busy ? outcome(&c, slow) : (outcome_t){0};
    // Answer all three after the timeout: the timed-out one is skipped.
    uint32_t rows[3] = {1, 1, 1};
    float out[3] = {20.0f, 30.0f, 40.0f};
    if (got == 3) {
        dv_tworker_done_batch(c.raw, runs, rows, 3, out, 1);
    }
    outcome_t o1 = got == 3 ? outcome(&c, ok1) : (outcome_t){0};
    outcome_t o2 = got == 3 ? outcome(&c, ok2) : (outcome_t){0};
    size_t n_run = 0, n_batch = 0;
    if (c.raw) {
        dv_tworker_counts(c.raw, &n_run, &n_batch);
    }
    cluster_down(&c, !(busy && got == 3));
    DV_CHECK(busy);
    DV_CHECK_EQ(got, 3); // late never reached the worker
    DV_CHECK_EQ(n_batch, 1);
    DV_CHECK_EQ(runs[0].job, slow);
    DV_CHECK_EQ(runs[1].job, ok1);
    DV_CHECK_EQ(runs[2].job, ok2);
    DV_CHECK(o_late.got);
    DV_CHECK_EQ(o_late.code, DV_EEXPIRED);
    DV_CHECK(o_slow.got);
    DV_CHECK_EQ(o_slow.code, DV_ETIMEDOUT);
    DV_CHECK(o1.got);
    DV_CHECK_EQ(o1.code, 0);
    DV_CHECK(o1.out == 30.0f);
    DV_CHECK(o2.got);
    DV_CHECK_EQ(o2.code, 0);
    DV_CHECK(o2.out == 40.0f);
}

// ------------------------------------------------------------- results

// A raw client's one-row infer submit (input {value, 0}) naming protocol
// 1.minor.
static void
raw_infer(void *sock, uint64_t rid, unsigned minor, float value)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, rid);
    dv_msgw_set_minor(w, minor);
    dv_msgw_str(w, "queue", "default");
    dv_msgw_str(w, "kind", "infer");
    dv_msgw_str(w, "model", "lin");
    dv_msgw_str(w, "durability", "none");
    dv_msgw_tensor(w, "input", 1, 1, 2);
    float row[2] = {value, 0.0f};
    uint8_t bytes[8];
    dv_floats_to_wire(bytes, row, 2);
    dv_frame_t f = {bytes, sizeof bytes};
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_wire_send(sock, NULL, 0, h, len, &f, 1);
    dv_msgw_destroy(&w);
}

// What a raw client got within ms, until it has `want` results: `results`
// messages and their entries, `result` messages, and whether every result
// carried the output the test's worker wrote for it (10 x its input).
typedef struct {
    size_t results_msgs, entries, result_msgs, right;
} got_t;

static void
take_one_result(const dv_msg_t *m, got_t *g)
{
    const dv_frame_t *f = dv_msg_frame(m, 1);
    uint64_t rid = dv_msg_rid(m);
    float out = -1.0f;
    if (f && f->len == 4) {
        dv_floats_from_wire(&out, f->data, 1);
    }
    // rids 201.. carry inputs 1.., and the worker answers 10 x the input.
    g->right += out == 10.0f * (float)(rid - 200);
}

static got_t
raw_results(cluster_t *c, void *sock, size_t want, int ms)
{
    got_t g = {0};
    int64_t end = dv_test_now_ms() + ms;
    while (g.entries + g.result_msgs < want && dv_test_now_ms() < end) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 50) <= 0) {
            dv_tworker_idle(c->raw, 10);
            continue;
        }
        dv_wire_msg_t in;
        while (dv_wire_recv(sock, false, &in) == 1) {
            dv_msg_t *m = NULL;
            dv_error_t e = {0};
            if (dv_msg_decode(&m, zmq_msg_data(&in.header),
                              zmq_msg_size(&in.header), in.frames, in.n_payload,
                              NULL, &e) == 0) {
                if (dv_msg_type(m) == DV_MSG_RESULT) {
                    g.result_msgs++;
                    take_one_result(m, &g);
                } else if (dv_msg_type(m) == DV_MSG_RESULTS) {
                    g.results_msgs++;
                    const msgpack_object *l = dv_msg_get(m, "results");
                    const dv_frame_t *all = dv_msg_frame(m, 1);
                    size_t at = 0;
                    for (uint32_t i = 0; l && l->type == MSGPACK_OBJECT_ARRAY &&
                                         i < l->via.array.size;
                         i++) {
                        const msgpack_object *fl =
                            dv_msgpack_get(&l->via.array.ptr[i], "frames");
                        uint64_t len = 0;
                        if (!fl || fl->type != MSGPACK_OBJECT_ARRAY ||
                            fl->via.array.size != 1 ||
                            !dv_msgpack_uint(&fl->via.array.ptr[0], &len) ||
                            !all || at + len > all->len) {
                            break;
                        }
                        dv_frame_t f = {all->data + at, (size_t)len};
                        at += len;
                        dv_msg_t *one = NULL;
                        if (dv_msg_view(&one, m, &l->via.array.ptr[i],
                                        DV_MSG_RESULT, &f, 1, &e) == 0) {
                            g.entries++;
                            take_one_result(one, &g);
                        }
                        dv_msg_destroy(&one);
                    }
                }
            }
            dv_msg_destroy(&m);
            dv_wire_msg_close(&in);
        }
    }
    return g;
}

// One forward pass answers three jobs of a 1.4 client and two of a 1.3
// client: the first gets one `results` holding its three, the second a
// `result` each; every output is the one the worker wrote for that job.
static void
test_results_in_one_message(void)
{
    cluster_t c;
    bool up = cluster_up(&c, DV_PROTOCOL_MINOR);
    void *ctx = zmq_ctx_new(), *s14 = NULL, *s13 = NULL;
    int linger = 0;
    if (up) {
        s14 = zmq_socket(ctx, ZMQ_DEALER);
        s13 = zmq_socket(ctx, ZMQ_DEALER);
        zmq_setsockopt(s14, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(s13, ZMQ_LINGER, &linger, sizeof linger);
        up = zmq_connect(s14, c.cep) == 0 && zmq_connect(s13, c.cep) == 0;
    }
    // The worker holds a first job, so the five that follow wait and go
    // out together.
    dv_trun_t first, runs[5];
    uint64_t a = up ? submit(&c, 0.0f) : 0;
    bool busy = a && dv_tworker_next(c.raw, WAIT_MS, &first);
    for (unsigned i = 0; busy && i < 5; i++) { // rids 201..205, inputs 1..5
        raw_infer(i < 3 ? s14 : s13, 201 + i, i < 3 ? DV_PROTOCOL_MINOR : 3,
                  (float)(i + 1));
    }
    if (busy) {
        dv_tworker_idle(c.raw, 300); // the submits are in
        uint32_t one = 1;
        float zero = 0.0f;
        dv_tworker_done_batch(c.raw, &first, &one, 1, &zero, 1);
    }
    size_t got = 0;
    while (busy && got < 5 && dv_tworker_next(c.raw, WAIT_MS, &runs[got])) {
        got++;
    }
    uint32_t rows[5] = {1, 1, 1, 1, 1};
    float out[5];
    for (size_t i = 0; i < got; i++) {
        out[i] = 10.0f * runs[i].first;
    }
    if (got == 5) {
        dv_tworker_done_batch(c.raw, runs, rows, got, out, 1);
    }
    got_t g14 = got == 5 ? raw_results(&c, s14, 3, WAIT_MS) : (got_t){0};
    got_t g13 = got == 5 ? raw_results(&c, s13, 2, WAIT_MS) : (got_t){0};
    if (s14) {
        zmq_close(s14);
        zmq_close(s13);
    }
    zmq_ctx_term(ctx);
    cluster_down(&c, got != 5);
    printf("  1.4 client: %zu results message(s), %zu entries; 1.3 client: "
           "%zu result messages\n",
           g14.results_msgs, g14.entries, g13.result_msgs);
    DV_CHECK(busy);
    DV_CHECK_EQ(got, 5);
    DV_CHECK_EQ(g14.results_msgs, 1);
    DV_CHECK_EQ(g14.entries, 3);
    DV_CHECK_EQ(g14.result_msgs, 0);
    DV_CHECK_EQ(g14.right, 3);
    DV_CHECK_EQ(g13.results_msgs, 0);
    DV_CHECK_EQ(g13.result_msgs, 2);
    DV_CHECK_EQ(g13.right, 2);
}

// Submit an echo job on d; its id once accepted (0: refused or no answer).
static uint64_t
submit_echo(drover_t *d)
{
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = "echoes"; // no worker serves it: it only waits
    job.payload = "x";
    job.payload_len = 1;
    uint64_t id = 0;
    drover_error_t err = {0};
    if (drover_submit(d, &job, 10000, &id, &err) != 0) {
        fprintf(stderr, "  submit: %s\n", err.text);
    }
    return id;
}

// Threads of this process named name (/proc/self/task/N/comm).
static int
threads_named(const char *name)
{
    DIR *dir = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir)) != NULL) {
        char path[300], comm[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = e->d_name[0] != '.' ? fopen(path, "r") : NULL;
        if (f && fgets(comm, sizeof comm, f)) {
            comm[strcspn(comm, "\n")] = '\0';
            n += strcmp(comm, name) == 0;
        }
        if (f) {
            fclose(f);
        }
    }
    if (dir) {
        closedir(dir);
    }
    return n;
}

// The connections of one process share one ZeroMQ context: more of them
// start no more I/O threads; each works; the first still works once the
// others are destroyed (the context lives while one uses it); and a child
// after fork() connects with a context of its own.
static void
test_connections_share_a_context(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 4);
    int before = threads_named("ZMQbg/IO/0");
    drover_t *more[3] = {NULL, NULL, NULL};
    drover_error_t err = {0};
    int connected = 0, accepted = 0;
    for (int i = 0; up && i < 3; i++) {
        connected += drover_connect(&more[i], c.cep, 10000, &err) == 0;
    }
    int during = threads_named("ZMQbg/IO/0");
    for (int i = 0; i < 3; i++) {
        accepted += more[i] && submit_echo(more[i]) != 0;
        drover_destroy(&more[i]);
    }
    bool first_after = up && submit_echo(c.d) != 0;
    pid_t pid = up ? fork() : -1;
    if (pid == 0) {
        drover_t *d = NULL;
        drover_error_t e = {0};
        bool ok =
            drover_connect(&d, c.cep, 10000, &e) == 0 && submit_echo(d) != 0;
        drover_destroy(&d);
        _exit(ok ? 0 : 1);
    }
    int status = -1;
    if (pid > 0) {
        waitpid(pid, &status, 0);
    }
    bool child_ok = pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    cluster_down(&c, !(up && during == before && accepted == 3 && first_after &&
                       child_ok));
    DV_CHECK(up);
    DV_CHECK(before >= 1);
    DV_CHECK_EQ(connected, 3);
    DV_CHECK_EQ(during, before); // no I/O thread per connection
    DV_CHECK_EQ(accepted, 3);
    DV_CHECK(first_after);
    DV_CHECK(child_ok);
}

static const dv_test_case_t cases[] = {
    {"waiting infer jobs go as one run_batch, answered by one done_batch",
     test_one_message_each_way},
    {"a job whose rows in a done_batch disagree fails alone",
     test_rows_that_disagree},
    {"a 1.3 worker gets one run per job", test_older_worker},
    {"a lost worker's batch runs again", test_lost_worker_batch_runs_again},
    {"deadlines and run timeouts inside a batch", test_deadline_and_timeout},
    {"submit_many: each request accepted or refused alone", test_submit_many},
    {"a pass's results reach a 1.4 client in one message",
     test_results_in_one_message},
    {"submit_many: broken requests refused by rid where possible",
     test_submit_many_broken},
    {"connections of a process share one ZeroMQ context",
     test_connections_share_a_context},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
