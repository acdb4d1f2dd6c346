// test_retry — which failures a real drover-broker retries, how long it
// waits in between, and how deadlines meet retries (docs/SEMANTICS.md,
// "Delivery and attempts" and "Priorities, deadlines, run timeouts"):
//   - a worker's DV_EIO, DV_ENOMEM, DV_ECHECKSUM, DV_ENOSPC and DV_ETIMEDOUT
//     are retried up to max_attempts; a job's own errors (DV_ENAN,
//     DV_ESHAPE, DV_ENOMODEL, DV_EINVAL) end it after one attempt, and so
//     does a real drover-worker's NaN input;
//   - each retry waits at least the fixed half of backoff_ms x
//     2^(failures-1) and not much more than the whole of it, measured from
//     the times the broker records with each failed attempt (the formula,
//     the 60 s cap and the jitter's range exactly: test_sched);
//   - a deadline that passes while a job waits for its retry ends it
//     `expired`; a job already running when its deadline passes finishes.
//
// The worker that fails on cue is the test itself (dv_test_worker: a raw
// worker connection); the broker is the real one, in memory, on ipc://
// endpoints in a temporary folder.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover.h"
#include "dv_limits.h"
#include "dv_model.h"
#include "dv_modelfile.h"
#include "dv_test.h"
#include "dv_test_cluster.h"
#include "dv_test_proc.h"
#include "dv_test_worker.h"

#define HB      1000 // heartbeat ms (the default): lease 3 s
#define HB_S    "1000"
#define WAIT_MS 30000 // a run or a result, generous for ASan on 2 cores
// How much earlier than the fixed half of its backoff a retry may be seen:
// the broker counts the backoff from its loop's clock, read when its loop
// woke, and stamps the failure a little later (a busy or preempted broker:
// tens of ms at worst).
#define EARLY_MS 100
// How much later than the whole backoff a retry may come on a loaded
// machine (a late timer, a slow dispatch): generous, not a promise.
#define LATE_MS 3000

typedef struct {
    char *dir;                 // temporary folder
    char cep[4300], wep[4300]; // endpoints
    dv_proc_t broker;          // drover-broker
    dv_proc_t worker;          // a real drover-worker, when started
    dv_tworker_t *raw;         // the worker the test plays
    drover_t *d;               // a client
} cluster_t;

// A broker and the test's own worker (capacity slots, serving queue "r"
// only, so real workers started later get the rest).
static bool
cluster_up(cluster_t *c, uint32_t capacity)
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
    c->raw = dv_tworker_start(c->wep, "raw", capacity, "r", HB);
    return c->raw != NULL;
}

static void
cluster_down(cluster_t *c, bool failed)
{
    drover_destroy(&c->d);
    dv_tworker_stop(&c->raw);
    dv_proc_stop(&c->worker, SIGTERM);
    dv_proc_stop(&c->broker, SIGTERM);
    if (failed) {
        dv_proc_dump_log(c->dir, "broker.log");
        dv_proc_dump_log(c->dir, "worker.log");
    }
    dv_test_rmdir(c->dir);
    free(c->dir);
}

// Submit to queue "r" (the test's worker) and wait for the acceptance: the
// job id, 0 when refused.
static uint64_t
submit(cluster_t *c, drover_job_t *job)
{
    job->queue = job->queue ? job->queue : "r";
    uint64_t id = 0;
    drover_error_t err = {0};
    if (drover_submit(c->d, job, 10000, &id, &err) != 0) {
        fprintf(stderr, "  submit: %s\n", err.text);
    }
    return id;
}

// A job's outcome, read while the test's worker keeps heartbeating.
typedef struct {
    bool got;
    int code;
    char text[256];
    uint32_t attempts;
    size_t n_errors;
    drover_attempt_error_t errors[8]; // the first ones
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
            dv_tworker_idle(c->raw, 100);
        }
    }
    if (r) {
        const char *text = "";
        const drover_attempt_error_t *e = NULL;
        o.got = true;
        o.code = drover_result_error(r, &text);
        snprintf(o.text, sizeof o.text, "%s", text);
        o.attempts = drover_result_attempts(r);
        o.n_errors = drover_result_errors(r, &e);
        for (size_t i = 0; i < o.n_errors && i < 8; i++) {
            o.errors[i] = e[i];
        }
    }
    drover_result_destroy(&r);
    return o;
}

// ------------------------------------------- which failures are retried

static const struct {
    int code;
    bool retried;
} s_codes[] = {
    {DV_EIO, true},     {DV_ENOMEM, true},    {DV_ECHECKSUM, true},
    {DV_ENOSPC, true},  {DV_ETIMEDOUT, true}, {DV_ENAN, false},
    {DV_ESHAPE, false}, {DV_ENOMODEL, false}, {DV_EINVAL, false},
};

#define N_CODES (sizeof s_codes / sizeof s_codes[0])

// Push a 2-feature regression model (zero weights) as name.
static int
push_model(drover_t *d, const char *name)
{
    size_t widths[] = {2, 1};
    dv_act_t acts[] = {DV_ACT_IDENTITY};
    dv_model_t *m = dv_test_model(DV_TASK_REGRESSION, 1, widths, acts, 0);
    return dv_tcluster_push_model(d, m, name);
}

static void
test_which_failures_are_retried(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 1);
    outcome_t out[N_CODES] = {{0}};
    uint32_t runs[N_CODES] = {0}; // runs the worker got
    bool in_order = true;         // each run: this job, the next attempt
    uint64_t began = dv_test_unix_ms();
    for (size_t i = 0; up && i < N_CODES; i++) {
        drover_job_t job = DROVER_JOB_INIT;
        job.max_attempts = 2;
        job.backoff_ms = -1; // retry at once
        uint64_t id = submit(&c, &job);
        uint64_t got = 0;
        uint32_t attempt = 0;
        uint32_t want = s_codes[i].retried ? 2 : 1;
        while (id && runs[i] < want &&
               dv_tworker_next_run(c.raw, WAIT_MS, &got, &attempt)) {
            in_order = in_order && got == id && attempt == runs[i] + 1;
            runs[i]++;
            dv_tworker_answer(c.raw, got, attempt, s_codes[i].code,
                              "as the test asked");
        }
        out[i] = outcome(&c, id);
        // No further run came: the job is over.
        in_order = in_order && !dv_tworker_next_run(c.raw, 0, &got, &attempt);
    }
    // max_attempts left out: the default, 3 runs.
    drover_job_t dflt = DROVER_JOB_INIT;
    dflt.backoff_ms = -1;
    uint64_t dflt_id = up ? submit(&c, &dflt) : 0;
    uint32_t dflt_runs = 0;
    uint64_t dgot = 0;
    uint32_t dattempt = 0;
    while (dflt_id && dflt_runs < 3 &&
           dv_tworker_next_run(c.raw, WAIT_MS, &dgot, &dattempt)) {
        dflt_runs++;
        dv_tworker_answer(c.raw, dgot, dattempt, DV_EIO, "as the test asked");
    }
    outcome_t dflt_out = outcome(&c, dflt_id);
    // A real worker's NaN input: the job's own error, not retried.
    const char *wargs[] = {"--broker",       c.wep, "--name", "real",
                           "--heartbeat-ms", HB_S,  NULL};
    char ready[9000];
    c.worker =
        up ? dv_proc_start("DROVER_WORKER_BIN", wargs, c.dir, "worker.log")
           : (dv_proc_t){0, -1};
    bool real =
        c.worker.pid && dv_proc_wait_ready(&c.worker, ready, sizeof ready);
    int push = real ? push_model(c.d, "lin") : -1;
    float nan_row[2] = {1.0f, NAN};
    drover_job_t infer = DROVER_JOB_INIT;
    infer.queue = "default"; // not the test's worker
    infer.kind = "infer";
    infer.model = "lin";
    infer.input = nan_row;
    infer.rows = 1;
    infer.cols = 2;
    infer.max_attempts = 3;
    infer.backoff_ms = -1;
    outcome_t nan =
        push == 0 ? outcome(&c, submit(&c, &infer)) : (outcome_t){0};
    uint64_t ended = dv_test_unix_ms();
    cluster_down(&c, !(in_order && nan.got));
    DV_CHECK(up);
    DV_CHECK(in_order);
    for (size_t i = 0; i < N_CODES; i++) {
        printf("  %-13s attempts %u, errors %zu: %.70s\n",
               dv_err_name(s_codes[i].code), out[i].attempts, out[i].n_errors,
               out[i].text);
        uint32_t want = s_codes[i].retried ? 2 : 1;
        DV_CHECK(out[i].got);
        DV_CHECK_EQ(out[i].code, s_codes[i].code);
        DV_CHECK_EQ(runs[i], want);
        DV_CHECK_EQ(out[i].attempts, want);
        DV_CHECK_EQ(out[i].n_errors, want); // every failed attempt is kept
        for (uint32_t k = 0; k < want; k++) {
            DV_CHECK_EQ(out[i].errors[k].attempt, k + 1);
            DV_CHECK_EQ(out[i].errors[k].code, s_codes[i].code);
            DV_CHECK_STR_EQ(out[i].errors[k].worker, "raw");
            DV_CHECK_STR_EQ(out[i].errors[k].text, "as the test asked");
            // The broker's time of the failure: within the test's run (1 s
            // early for the broker's loop clock, read before it woke).
            DV_CHECK_GE(out[i].errors[k].at_ms, began - 1000);
            DV_CHECK(out[i].errors[k].at_ms <= ended);
        }
        DV_CHECK_EQ(strstr(out[i].text, "no attempts left (2)") != NULL,
                    s_codes[i].retried);
    }
    DV_CHECK_EQ(dflt_runs, 3);
    DV_CHECK(dflt_out.got);
    DV_CHECK_EQ(dflt_out.code, DV_EIO);
    DV_CHECK_EQ(dflt_out.attempts, 3);
    DV_CHECK(strstr(dflt_out.text, "no attempts left (3)") != NULL);
    DV_CHECK(real);
    DV_CHECK_EQ(push, 0);
    DV_CHECK(nan.got);
    DV_CHECK_EQ(nan.code, DV_ENAN);
    DV_CHECK_EQ(nan.attempts, 1); // of the 3 it was allowed
    DV_CHECK_EQ(nan.n_errors, 1);
    DV_CHECK_STR_EQ(nan.errors[0].worker, "real");
}

// --------------------------------------------------------------- backoff

// Jobs failing every attempt at once: the broker records each failure's
// time; between two of them lies the backoff (plus a dispatch and an
// answer). backoff_ms 600: waits of 300..600, 600..1200, 1200..2400 ms.
static void
test_backoff_doubles(void)
{
    enum { JOBS = 2, ATTEMPTS = 4, BASE = 600 };
    cluster_t c;
    bool up = cluster_up(&c, JOBS);
    uint64_t ids[JOBS] = {0};
    for (int i = 0; up && i < JOBS; i++) {
        drover_job_t job = DROVER_JOB_INIT;
        job.max_attempts = ATTEMPTS;
        job.backoff_ms = BASE;
        ids[i] = submit(&c, &job);
    }
    int answered = 0;
    uint64_t got = 0;
    uint32_t attempt = 0;
    while (ids[JOBS - 1] && answered < JOBS * ATTEMPTS &&
           dv_tworker_next_run(c.raw, WAIT_MS, &got, &attempt)) {
        dv_tworker_answer(c.raw, got, attempt, DV_EIO, "failing on cue");
        answered++;
    }
    outcome_t out[JOBS];
    for (int i = 0; i < JOBS; i++) {
        out[i] = outcome(&c, ids[i]);
    }
    cluster_down(&c, answered != JOBS * ATTEMPTS);
    DV_CHECK(up);
    DV_CHECK_EQ(answered, JOBS * ATTEMPTS);
    for (int i = 0; i < JOBS; i++) {
        DV_CHECK(out[i].got);
        DV_CHECK_EQ(out[i].code, DV_EIO);
        DV_CHECK_EQ(out[i].attempts, ATTEMPTS);
        DV_CHECK_EQ(out[i].n_errors, ATTEMPTS);
        int64_t d = BASE; // backoff_ms x 2^(failures - 1)
        for (int k = 1; k < ATTEMPTS; k++, d *= 2) {
            int64_t gap =
                (int64_t)(out[i].errors[k].at_ms - out[i].errors[k - 1].at_ms);
            printf("  job %d, wait after failure %d: %lld ms (%lld..%lld)\n", i,
                   k, (long long)gap, (long long)d / 2, (long long)d);
            DV_CHECK_GE(gap, d / 2 - EARLY_MS); // the fixed half
            DV_CHECK(gap <= d + LATE_MS);
        }
    }
}

// A job failing 40 times keeps its newest DV_MAX_ERRORS_KEPT failed
// attempts (it kept every one, up to 200: ~80 KB a job a worker could make
// the broker hold), oldest first and numbered, and still ran 40 times.
static void
test_newest_errors_kept(void)
{
    enum { ATTEMPTS = DV_MAX_ERRORS_KEPT + 8 };
    cluster_t c;
    bool up = cluster_up(&c, 1);
    drover_job_t job = DROVER_JOB_INIT;
    job.max_attempts = ATTEMPTS;
    job.backoff_ms = -1; // at once
    uint64_t id = up ? submit(&c, &job) : 0;
    int answered = 0;
    uint64_t got = 0;
    uint32_t attempt = 0;
    while (id && answered < ATTEMPTS &&
           dv_tworker_next_run(c.raw, WAIT_MS, &got, &attempt)) {
        char text[64];
        snprintf(text, sizeof text, "failing on cue, attempt %u", attempt);
        dv_tworker_answer(c.raw, got, attempt, DV_EIO, text);
        answered++;
    }
    outcome_t o = outcome(&c, id);
    cluster_down(&c, answered != ATTEMPTS);
    DV_CHECK(up);
    DV_CHECK_EQ(answered, ATTEMPTS);
    DV_CHECK(o.got);
    DV_CHECK_EQ(o.code, DV_EIO);
    DV_CHECK_EQ(o.attempts, ATTEMPTS);
    DV_CHECK_EQ(o.n_errors, DV_MAX_ERRORS_KEPT);
    for (uint32_t i = 0; i < 8; i++) { // the first kept: attempt 9 on
        uint32_t want = ATTEMPTS - DV_MAX_ERRORS_KEPT + 1 + i;
        char text[64];
        snprintf(text, sizeof text, "failing on cue, attempt %u", want);
        DV_CHECK_EQ(o.errors[i].attempt, want);
        DV_CHECK_STR_EQ(o.errors[i].text, text);
    }
}

// ----------------------------------------------------- deadlines, retries

// Job A fails its first run and would wait at least 30 s for its retry;
// its deadline passes while it waits: it ends expired then, not at the
// retry. Job B is running when its deadline passes: it finishes.
static void
test_deadlines_meet_retries(void)
{
    enum { A_DEADLINE = 2500, B_DEADLINE = 2000, B_PAST = 1000 };
    cluster_t c;
    bool up = cluster_up(&c, 2);
    drover_job_t a = DROVER_JOB_INIT;
    a.max_attempts = 3;
    a.deadline_ms = A_DEADLINE;
    a.backoff_ms = 60000; // the retry would wait 30..60 s
    uint64_t a_id = up ? submit(&c, &a) : 0;
    drover_job_t b = DROVER_JOB_INIT;
    b.deadline_ms = B_DEADLINE;
    uint64_t b_id = a_id ? submit(&c, &b) : 0;
    uint64_t b_accepted = dv_test_unix_ms(); // its deadline counts from
                                             // before this
    uint64_t got = 0;
    uint32_t attempt = 0;
    bool ran_a = false, ran_b = false, retrying = false;
    for (int i = 0;
         b_id && i < 2 && dv_tworker_next_run(c.raw, WAIT_MS, &got, &attempt);
         i++) {
        if (got == a_id) {
            ran_a = true;
            dv_tworker_answer(c.raw, got, attempt, DV_EIO, "failing on cue");
        } else if (got == b_id) {
            ran_b = true; // started before its deadline; answered later
        }
    }
    drover_job_info_t info = {0};
    drover_error_t err;
    int64_t end = dv_test_now_ms() + WAIT_MS;
    while (ran_a && !retrying && dv_test_now_ms() < end) {
        retrying = drover_job_info(c.d, a_id, &info, &err) == 0 &&
                   strcmp(info.state, "retrying") == 0;
        dv_tworker_idle(c.raw, 10);
    }
    // B runs on past its deadline (by the broker's clock: it was
    // submitted before b_accepted), heartbeating, then finishes.
    while (ran_b && dv_test_unix_ms() < b_accepted + B_DEADLINE + B_PAST) {
        dv_tworker_idle(c.raw, 50);
    }
    if (ran_b) {
        dv_tworker_answer(c.raw, b_id, 1, 0, NULL);
    }
    outcome_t oa = outcome(&c, a_id);
    outcome_t ob = outcome(&c, b_id);
    // Nothing else came: A was never run again.
    bool no_more = !dv_tworker_next_run(c.raw, 0, &got, &attempt);
    cluster_down(&c, !(oa.got && ob.got));
    DV_CHECK(up);
    DV_CHECK(ran_a);
    DV_CHECK(ran_b);
    DV_CHECK(retrying);
    // Within WAIT_MS (30 s): before the fixed half of its backoff ended.
    DV_CHECK(oa.got);
    printf("  A: %s: %s\n", dv_err_name(oa.code), oa.text);
    DV_CHECK_EQ(oa.code, DV_EEXPIRED);
    DV_CHECK(strstr(oa.text, "not started by its deadline") != NULL);
    DV_CHECK_EQ(oa.attempts, 1);
    DV_CHECK_EQ(oa.n_errors, 1);
    DV_CHECK_EQ(oa.errors[0].code, DV_EIO);
    DV_CHECK(no_more);
    DV_CHECK(ob.got);
    DV_CHECK_EQ(ob.code, 0); // done, though its deadline passed meanwhile
    DV_CHECK_EQ(ob.attempts, 1);
}

static const dv_test_case_t cases[] = {
    {"worker errors: I/O, memory, checksum, space, timeout retried; the "
     "job's own not",
     test_which_failures_are_retried},
    {"backoff doubles from backoff_ms, half of it fixed", test_backoff_doubles},
    {"a job keeps its newest failed attempts", test_newest_errors_kept},
    {"a deadline expires a job waiting for its retry, not a running one",
     test_deadlines_meet_retries},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
