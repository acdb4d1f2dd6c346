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
//   - a worker lost while it holds a batch: every job of it runs again.
//
// The worker is the test itself (dv_test_worker, a raw connection), so the
// messages are seen exactly; the broker is the real one, in memory.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover.h"
#include "dv_model.h"
#include "dv_modelfile.h"
#include "dv_proto.h"
#include "dv_test.h"
#include "dv_test_proc.h"
#include "dv_test_worker.h"

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

// Push a 2-feature regression model (zero weights) as "lin".
static int
push_model(drover_t *d)
{
    size_t widths[] = {2, 1};
    dv_act_t acts[] = {DV_ACT_IDENTITY};
    dv_model_t *m = dv_test_model(DV_TASK_REGRESSION, 1, widths, acts, 0);
    uint8_t *buf = NULL;
    size_t len = 0;
    dv_error_t err = {0};
    drover_error_t derr = {0};
    int rc = dv_model_encode(m, &buf, &len, &err);
    if (rc == 0) {
        rc = drover_model_push_bytes(d, buf, len, "lin", NULL, &derr);
    }
    if (rc) {
        fprintf(stderr, "  push: %s%s\n", err.text, derr.text);
    }
    free(buf);
    dv_model_destroy(&m);
    return rc;
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

// Submit a one-row infer job whose input is {value, 0}; its id (0: refused).
static uint64_t
submit(cluster_t *c, float value)
{
    float row[2] = {value, 0.0f};
    drover_job_t job = DROVER_JOB_INIT;
    job.kind = "infer";
    job.model = "lin";
    job.input = row;
    job.rows = 1;
    job.cols = 2;
    job.backoff_ms = -1;
    uint64_t id = 0;
    drover_error_t err = {0};
    if (drover_submit(c->d, &job, 10000, &id, &err) != 0) {
        fprintf(stderr, "  submit: %s\n", err.text);
    }
    return id;
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

static const dv_test_case_t cases[] = {
    {"waiting infer jobs go as one run_batch, answered by one done_batch",
     test_one_message_each_way},
    {"a job whose rows in a done_batch disagree fails alone",
     test_rows_that_disagree},
    {"a 1.3 worker gets one run per job", test_older_worker},
    {"a lost worker's batch runs again", test_lost_worker_batch_runs_again},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
