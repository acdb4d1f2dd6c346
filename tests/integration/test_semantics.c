// test_semantics — the job semantics of docs/SEMANTICS.md with the real
// broker, workers and CLI: priorities and aging, queues taking turns
// whatever their priorities, deadlines, run timeouts (not retried), cancel
// reaching a running job, leases (a long job on a live worker is never run
// twice; a silent worker's job moves no sooner than the lease after its
// last message, and about one heartbeat interval after that at the
// latest), retries with backoff into the dead-letter queue (durable, then
// requeued), poison quarantine, idempotency keys across a restart,
// `drover submit --no-wait` / `drover status --json`, result streams, and
// deep queues (spilled jobs come back FIFO, and by priority).
//
// Jobs of known length are `sleep` jobs; "a job that kills its worker" is
// the test killing (SIGKILL) whichever worker runs it; a worker that fails
// a run or goes silent at a known moment is the test itself
// (dv_test_worker).
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "drover.h"
#include "dv_limits.h"
#include "dv_test.h"
#include "dv_test_proc.h"
#include "dv_test_worker.h"

// Heartbeat ms: lease = 3 x HB. The default: shorter ones sometimes took a
// busy ASan broker on 2 shared cores for a dead one, and these tests count
// attempts exactly.
#define HB       1000
#define HB_S     "1000"
#define LEASE    (3 * HB)
#define MAX_ARGS 8

typedef struct {
    char *dir;
    char data[4300], cep[4300], wep[4300];
    const char *extra[MAX_ARGS]; // broker options
    dv_proc_t broker;
    dv_proc_t workers[4];
    int n_workers;     // started so far (names w0, w1, ...)
    dv_tworker_t *raw; // the worker the test plays, when there is one
    drover_t *d;
} cluster_t;

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

// kill(2) for a process we started; never pid 0 (our own process group).
static void
kill_pid(pid_t pid, int sig)
{
    if (pid > 0) {
        kill(pid, sig);
    }
}

static bool
broker_start(cluster_t *c)
{
    const char *args[16] = {"--client", c->cep,  "--worker",       c->wep,
                            "--data",   c->data, "--heartbeat-ms", HB_S};
    for (int i = 0; i < MAX_ARGS && c->extra[i]; i++) {
        args[8 + i] = c->extra[i];
    }
    c->broker = dv_proc_start("DROVER_BROKER_BIN", args, c->dir, "broker.log");
    char ready[9000];
    drover_error_t err = {0};
    drover_destroy(&c->d);
    return c->broker.pid &&
           dv_proc_wait_ready(&c->broker, ready, sizeof ready) &&
           drover_connect(&c->d, c->cep, 10000, &err) == 0;
}

// A fresh cluster: broker with extra options (NULL-terminated) and
// n_workers workers of one slot each (no prefetch: runs happen in the
// order the broker picks).
static bool cluster_up(cluster_t *c, int n_workers, const char *const *extra);

static bool
worker_start(cluster_t *c)
{
    int i = c->n_workers % 4;
    char name[8], log[16];
    snprintf(name, sizeof name, "w%d", c->n_workers);
    snprintf(log, sizeof log, "worker%d.log", c->n_workers);
    c->n_workers++;
    dv_proc_stop(&c->workers[i], SIGKILL);
    const char *args[] = {
        "--broker",      c->wep, "--name",         name, "--prefetch", "0",
        "--concurrency", "1",    "--heartbeat-ms", HB_S, NULL};
    c->workers[i] = dv_proc_start("DROVER_WORKER_BIN", args, c->dir, log);
    char ready[9000];
    return c->workers[i].pid &&
           dv_proc_wait_ready(&c->workers[i], ready, sizeof ready);
}

static bool
cluster_up(cluster_t *c, int n_workers, const char *const *extra)
{
    memset(c, 0, sizeof *c);
    c->dir = dv_test_tmpdir();
    snprintf(c->data, sizeof c->data, "%s/data", c->dir);
    snprintf(c->cep, sizeof c->cep, "ipc://%s/c.sock", c->dir);
    snprintf(c->wep, sizeof c->wep, "ipc://%s/w.sock", c->dir);
    for (int i = 0; extra && extra[i] && i < MAX_ARGS; i++) {
        c->extra[i] = extra[i];
    }
    bool ok = broker_start(c);
    for (int i = 0; ok && i < n_workers; i++) {
        ok = worker_start(c);
    }
    return ok;
}

static void
cluster_down(cluster_t *c, bool failed)
{
    drover_destroy(&c->d);
    dv_tworker_stop(&c->raw);
    for (int i = 0; i < 4; i++) {
        dv_proc_stop(&c->workers[i], SIGKILL);
    }
    dv_proc_stop(&c->broker, SIGTERM);
    if (failed) {
        dv_proc_dump_log(c->dir, "broker.log");
    }
    dv_test_rmdir(c->dir);
    free(c->dir);
}

// Wait (polling) until job is in state; false at the deadline.
static bool
wait_state(drover_t *d, uint64_t job, const char *state, int ms)
{
    int64_t end = dv_test_now_ms() + ms;
    drover_job_info_t info;
    drover_error_t err;
    while (dv_test_now_ms() < end) {
        if (drover_job_info(d, job, &info, &err) == 0 &&
            strcmp(info.state, state) == 0) {
            return true;
        }
        sleep_ms(10);
    }
    return false;
}

// Wait (polling) until job is no longer in state; false at the deadline.
static bool
wait_left(drover_t *d, uint64_t job, const char *state, int ms)
{
    int64_t end = dv_test_now_ms() + ms;
    drover_job_info_t info;
    drover_error_t err;
    while (dv_test_now_ms() < end) {
        if (drover_job_info(d, job, &info, &err) == 0 &&
            strcmp(info.state, state) != 0) {
            return true;
        }
        sleep_ms(10);
    }
    return false;
}

// The worker a running job runs on (its slot in c->workers), or -1.
static int
worker_of(cluster_t *c, uint64_t job)
{
    drover_worker_t *ws = NULL;
    size_t n = 0;
    drover_error_t err;
    int slot = -1;
    if (drover_workers(c->d, &ws, &n, &err) != 0) {
        return -1;
    }
    for (size_t i = 0; i < n && slot < 0; i++) {
        int s = ws[i].name[0] == 'w' ? atoi(ws[i].name + 1) % 4 : -1;
        if (ws[i].running > 0 && s >= 0 && c->workers[s].pid > 0) {
            slot = s;
        }
    }

    drover_workers_free(&ws, n);
    (void)job; // one job runs at a time in these tests
    return slot;
}

// Submit and wait for the acknowledgement: the job id, 0 when refused.
static uint64_t
submit_job(cluster_t *c, const drover_job_t *job)
{
    uint64_t id = 0;
    drover_error_t err;
    drover_submit(c->d, job, 10000, &id, &err);
    return id;
}

static uint64_t
submit(cluster_t *c, const char *kind, uint32_t ms, int32_t prio)
{
    drover_job_t job = DROVER_JOB_INIT;
    job.kind = kind;
    job.sleep_ms = ms;
    job.payload = "x";
    job.payload_len = 1;
    job.priority = prio;
    return submit_job(c, &job);
}

static int
result_code(cluster_t *c, uint64_t id, int wait, uint32_t *attempts)
{
    drover_result_t *r = NULL;
    drover_error_t err;
    int code = -99999;
    if (drover_wait(c->d, id, wait, &r, &err) == 0) {
        code = drover_result_error(r, NULL);
        if (attempts) {
            *attempts = drover_result_attempts(r);
        }
    }
    drover_result_destroy(&r);
    return code;
}

// --------------------------------------------------------- priorities

typedef struct {
    uint64_t order[8];
    int n;
} order_t;

static void
on_done(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    order_t *o = arg;
    if (o->n < 8) {
        o->order[o->n++] = drover_result_job(r);
    }
}

static void
submit_async(cluster_t *c, const char *queue, int32_t prio, order_t *o)
{
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = queue;
    job.kind = "sleep";
    job.sleep_ms = 5;
    job.priority = prio;
    drover_error_t err;
    drover_submit_async(c->d, &job, on_done, o, &err);
    drover_poll(c->d, 0, &err); // sends it
    // The id is what the result says; ids are given in submit order.
}

// Wait (polling) until n jobs are queued in all, the async submits sent
// meanwhile; false at the deadline.
static bool
wait_queued(cluster_t *c, uint64_t n)
{
    int64_t end = dv_test_now_ms() + 20000;
    drover_error_t err;
    while (dv_test_now_ms() < end) {
        drover_status_t st = {0};
        drover_poll(c->d, 0, &err);
        if (drover_status(c->d, &st, &err) == 0) {
            uint64_t queued = st.queued;
            drover_status_clear(&st);
            if (queued == n) {
                return true;
            }
        }
        sleep_ms(10);
    }
    return false;
}

// A job holding the one-slot worker until the test cancels it, so that what
// is queued behind it is all there before the worker picks the next one.
static uint64_t
block(cluster_t *c)
{
    uint64_t id = submit(c, "sleep", 20000, 0);
    return id && wait_state(c->d, id, "running", 10000) ? id : 0;
}

// Cancel the blocker once n jobs wait behind it, then collect the results
// of the async submits (o).
static bool
unblock(cluster_t *c, uint64_t blocker, uint64_t n, order_t *o)
{
    drover_error_t err;
    if (!blocker || !wait_queued(c, n) ||
        drover_job_cancel(c->d, blocker, NULL, &err) != 0) {
        return false;
    }
    int64_t end = dv_test_now_ms() + 20000;
    while (o->n < (int)n && dv_test_now_ms() < end) {
        drover_poll(c->d, 500, &err);
    }
    return o->n == (int)n;
}

static void
test_priorities_and_aging(void)
{
    const char *extra[] = {"--aging-ms", "60", NULL};
    cluster_t c;
    bool up = cluster_up(&c, 1, extra);
    // A: equal waits: higher priority first, FIFO within a priority (50
    // levels apart: 3 s of aging, far more than the submits take).
    uint64_t blocker = up ? block(&c) : 0;
    order_t a = {0};
    int32_t prios[4] = {0, 50, 0, 50}; // ids b+1 .. b+4
    for (int i = 0; blocker && i < 4; i++) {
        submit_async(&c, NULL, prios[i], &a);
    }
    bool ran_a = unblock(&c, blocker, 4, &a);
    // B: aging. The low job waits 700 ms longer than the high ones (it is
    // queued before the sleep starts): at 60 ms per level that is 11.7
    // levels, more than the 5 they lead by.
    uint64_t blocker2 = ran_a ? block(&c) : 0;
    order_t b = {0};
    if (blocker2) {
        submit_async(&c, NULL, 0, &b);
        wait_queued(&c, 1);
        sleep_ms(700);
        submit_async(&c, NULL, 5, &b);
        submit_async(&c, NULL, 5, &b);
    }
    bool ran_b = unblock(&c, blocker2, 3, &b);
    // C: queues take turns whatever their jobs' priorities: "hi" (1000)
    // and "lo" (-1000) alternate; FIFO within each.
    uint64_t blocker3 = ran_b ? block(&c) : 0;
    order_t rr = {0};
    for (int i = 0; blocker3 && i < 6; i++) {
        submit_async(&c, i < 3 ? "hi" : "lo", i < 3 ? 1000 : -1000, &rr);
    }
    bool ran_rr = unblock(&c, blocker3, 6, &rr);
    cluster_down(&c, !(ran_a && ran_b && ran_rr));
    DV_CHECK(up);
    DV_CHECK(blocker);
    DV_CHECK(ran_a);
    // Ids: blocker b, then b+1 (0), b+2 (50), b+3 (0), b+4 (50).
    DV_CHECK_EQ(a.order[0], blocker + 2);
    DV_CHECK_EQ(a.order[1], blocker + 4);
    DV_CHECK_EQ(a.order[2], blocker + 1);
    DV_CHECK_EQ(a.order[3], blocker + 3);
    DV_CHECK(blocker2);
    DV_CHECK(ran_b);
    DV_CHECK_EQ(b.order[0], blocker2 + 1); // the aged low-priority job
    DV_CHECK(blocker3);
    DV_CHECK(ran_rr);
    // Ids: b+1..b+3 on "hi", b+4..b+6 on "lo".
    uint64_t last[2] = {0, 0};
    for (int i = 0; i < 6; i++) {
        uint64_t id = rr.order[i];
        bool hi = id <= blocker3 + 3;
        printf("  turn %d: %s job %llu\n", i + 1, hi ? "hi" : "lo",
               (unsigned long long)id);
        DV_CHECK(id > blocker3 && id <= blocker3 + 6);
        if (i > 0) { // the other queue's turn
            DV_CHECK(hi != (rr.order[i - 1] <= blocker3 + 3));
        }
        DV_CHECK(id > last[hi]); // FIFO within the queue
        last[hi] = id;
    }
}

// ------------------------------------------------ deadlines, timeouts

static void
test_deadline_timeout_cancel(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 1, NULL);
    uint64_t blocker = up ? block(&c) : 0; // until cancelled below
    bool blocked = blocker != 0;
    drover_job_t job = DROVER_JOB_INIT;
    job.payload = "late";
    job.payload_len = 4;
    job.deadline_ms = 200; // the worker is busy until the test frees it
    uint64_t late = 0;
    drover_error_t err;
    if (blocked) {
        drover_submit(c.d, &job, 10000, &late, &err);
    }
    int late_code = late ? result_code(&c, late, 10000, NULL) : 0;
    bool late_state = late && wait_state(c.d, late, "expired", 1000);
    int unblock_rc = blocked ? drover_job_cancel(c.d, blocker, NULL, &err) : -1;
    // A run timeout ends a job that runs too long, and it is not retried
    // (one attempt of the 3 it may have); the worker is free again at once
    // (the sleep checks its cancel flag).
    job = (drover_job_t)DROVER_JOB_INIT;
    job.kind = "sleep";
    job.sleep_ms = 20000;
    job.timeout_ms = 300;
    uint64_t slow = 0;
    if (blocked) {
        drover_submit(c.d, &job, 10000, &slow, &err);
    }
    uint32_t slow_attempts = 0;
    int slow_code = slow ? result_code(&c, slow, 10000, &slow_attempts) : 0;
    uint64_t after = slow ? submit(&c, "echo", 0, 0) : 0;
    int after_code = after ? result_code(&c, after, 10000, NULL) : -1;
    // Cancel reaches a running job between its slices: the 20 s sleep
    // ends now and the worker takes the next job (it has one slot).
    uint64_t long_job = after ? submit(&c, "sleep", 20000, 0) : 0;
    bool running = long_job && wait_state(c.d, long_job, "running", 10000);
    int cancel_rc = running ? drover_job_cancel(c.d, long_job, NULL, &err) : -1;
    int cancel_code = running ? result_code(&c, long_job, 10000, NULL) : 0;
    uint64_t next = running ? submit(&c, "echo", 0, 0) : 0;
    int next_code = next ? result_code(&c, next, 10000, NULL) : -1;
    drover_status_t st = {0};
    int st_rc = up ? drover_status(c.d, &st, &err) : -1;
    uint64_t expired = 0, cancelled = 0, failed = 0;
    for (size_t i = 0; st_rc == 0 && i < st.n_queues; i++) {
        expired += st.queues[i].expired;
        cancelled += st.queues[i].cancelled;
        failed += st.queues[i].failed;
    }
    if (st_rc == 0) {
        drover_status_clear(&st);
    }
    cluster_down(&c, next_code != 0);
    DV_CHECK(up);
    DV_CHECK(blocked);
    DV_CHECK_EQ(late_code, DV_EEXPIRED);
    DV_CHECK(late_state);
    DV_CHECK_EQ(unblock_rc, 0);
    DV_CHECK_EQ(slow_code, DV_ETIMEDOUT);
    DV_CHECK_EQ(slow_attempts, 1); // not retried
    DV_CHECK_EQ(after_code, 0);
    DV_CHECK(running);
    DV_CHECK_EQ(cancel_rc, 0);
    DV_CHECK_EQ(cancel_code, DV_ECANCELED);
    DV_CHECK_EQ(next_code, 0); // in well under the 20 s the sleep had left
    DV_CHECK_EQ(st_rc, 0);
    DV_CHECK_EQ(expired, 1);
    DV_CHECK_EQ(cancelled, 2); // the blocker and the long job
    DV_CHECK_EQ(failed, 1);    // the timeout
}

// ------------------------------------------------------------- leases

// result_code, and the job's first failed attempt in *first: its time
// (unix ms, as the broker recorded it), code and reason (zeros: none).
static int
result_first_error(cluster_t *c,
                   uint64_t id,
                   uint32_t *attempts,
                   drover_attempt_error_t *first)
{
    drover_result_t *r = NULL;
    drover_error_t err;
    const drover_attempt_error_t *e = NULL;
    int code = -99999;
    memset(first, 0, sizeof *first);
    if (drover_wait(c->d, id, 20000, &r, &err) == 0) {
        code = drover_result_error(r, NULL);
        *attempts = drover_result_attempts(r);
        if (drover_result_errors(r, &e) > 0) {
            *first = e[0];
        }
    }
    drover_result_destroy(&r);
    return code;
}

// A sleep job of ms (two attempts) on the test's own worker "raw" of one
// slot, started on c: true once the worker got its first attempt, with
// its id in *id.
static bool
raw_runs_sleep(cluster_t *c, uint32_t ms, uint64_t *id)
{
    c->raw = dv_tworker_start(c->wep, "raw", 1, NULL, HB);
    drover_job_t job = DROVER_JOB_INIT;
    job.kind = "sleep";
    job.sleep_ms = ms;
    job.max_attempts = 2;
    *id = c->raw ? submit_job(c, &job) : 0;
    uint64_t got = 0;
    uint32_t attempt = 0;
    return *id && dv_tworker_next_run(c->raw, 20000, &got, &attempt) &&
           got == *id && attempt == 1;
}

static void
test_leases(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 0, NULL);
    // A worker that goes silent while it runs a job: the test's own, so
    // the moment of its last message is known. The broker notes the time
    // it declares the worker dead with the failed attempt.
    uint64_t id = 0;
    bool ran = up && raw_runs_sleep(&c, 500, &id);
    uint64_t last = dv_tworker_last_sent_unix_ms(c.raw); // silent from now
    bool moved = ran && wait_left(c.d, id, "running", 30000);
    // The retry runs on a real worker.
    bool second = moved && worker_start(&c);
    uint32_t attempts2 = 0;
    drover_attempt_error_t lost = {0};
    int code2 = second ? result_first_error(&c, id, &attempts2, &lost) : -1;
    // A job longer than the lease plus a check interval on a live worker:
    // its heartbeats hold the lease, so it runs once.
    uint64_t long_job = second ? submit(&c, "sleep", LEASE + HB + 500, 0) : 0;
    uint32_t attempts = 0;
    int long_code = long_job ? result_code(&c, long_job, 30000, &attempts) : -1;
    cluster_down(&c, long_code != 0);
    DV_CHECK(up);
    DV_CHECK(ran);
    DV_CHECK(moved);
    DV_CHECK(second);
    int64_t silent = (int64_t)(lost.at_ms - last);
    printf("  declared dead %lld ms after its last message (lease %d, "
           "interval %d): %s\n",
           (long long)silent, LEASE, HB, lost.text);
    DV_CHECK_EQ(lost.code, DV_EIO);
    DV_CHECK_STR_EQ(lost.text, "worker raw went silent while running it");
    // No sooner than the lease after its last message. 20 ms: the broker's
    // and the test's clocks count whole milliseconds, and the broker may
    // stamp a message it reads with its loop time read just before it.
    DV_CHECK_GE(silent, LEASE - 20);
    // No later than one heartbeat interval after that, the broker's checks
    // being on time; a loaded machine may run a check late: 2 s of slack.
    DV_CHECK(silent <= LEASE + HB + 2000);
    DV_CHECK_EQ(code2, 0);
    DV_CHECK_EQ(attempts2, 2);
    DV_CHECK_EQ(long_code, 0);
    DV_CHECK_EQ(attempts, 1);
}

// A worker whose connection closes while it runs a job (killed: no `bye`)
// is declared lost when the broker sees the close, after a short grace
// (DV_WORKER_GONE_GRACE_MS), not after liveness x heartbeat of silence:
// the failed attempt says so, and the retry runs on a real worker.
static void
test_dropped_connection(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 0, NULL);
    uint64_t id = 0;
    bool ran = up && raw_runs_sleep(&c, 200, &id);
    uint64_t closed = dv_test_unix_ms();
    dv_tworker_stop(&c.raw); // the socket closes without a word
    bool moved = ran && wait_left(c.d, id, "running", 30000);
    bool second = moved && worker_start(&c);
    uint32_t attempts = 0;
    drover_attempt_error_t lost = {0};
    int code = second ? result_first_error(&c, id, &attempts, &lost) : -1;
    cluster_down(&c, code != 0);
    printf("  declared lost %lld ms after the close (grace %d, liveness x "
           "heartbeat %d): %s\n",
           (long long)((int64_t)lost.at_ms - (int64_t)closed),
           DV_WORKER_GONE_GRACE_MS, 3 * HB, lost.text);
    DV_CHECK(up);
    DV_CHECK(ran);
    DV_CHECK(moved);
    DV_CHECK(second);
    DV_CHECK_EQ(code, 0);
    DV_CHECK_EQ(attempts, 2);
    DV_CHECK_EQ(lost.code, DV_EIO);
    DV_CHECK_STR_EQ(lost.text,
                    "worker raw dropped its connection while running it");
}

// A timer entry stays until due, and a run timeout may be an hour away
// while its job ends at once: the broker drops the stale ones whenever the
// heap has doubled (from 1,024). 1,500 quick jobs with an hour's timeout
// go through that while a slow job's 5 s timeout, still live, must fire.
static void
test_stale_timers_go_live_ones_fire(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 2, NULL);
    drover_job_t job = DROVER_JOB_INIT;
    job.kind = "sleep";
    job.sleep_ms = 30000;
    job.timeout_ms = 5000;
    uint64_t slow = up ? submit_job(&c, &job) : 0;
    bool running = slow && wait_state(c.d, slow, "running", 10000);
    int64_t t0 = dv_test_now_ms();
    enum { N = 1500 };
    size_t done = 0;
    uint64_t last = 0;
    for (size_t i = 0; running && i < N; i++) {
        job = (drover_job_t)DROVER_JOB_INIT;
        job.payload = "q";
        job.payload_len = 1;
        job.durability = "none";
        job.timeout_ms = 3600000;
        last = submit_job(&c, &job);
        done += last != 0;
    }
    int64_t submitted_ms = dv_test_now_ms() - t0;
    int last_code = last ? result_code(&c, last, 20000, NULL) : -1;
    uint32_t attempts = 0;
    int slow_code = running ? result_code(&c, slow, 30000, &attempts) : 0;
    int64_t slow_ms = dv_test_now_ms() - t0;
    printf("  %zu quick jobs submitted in %lld ms; the slow one ended %s "
           "after %lld ms\n",
           done, (long long)submitted_ms, dv_err_name(slow_code),
           (long long)slow_ms);
    cluster_down(&c, slow_code != DV_ETIMEDOUT);
    DV_CHECK(up);
    DV_CHECK(running);
    DV_CHECK_EQ(done, N);
    DV_CHECK_EQ(last_code, 0);
    DV_CHECK_EQ(slow_code, DV_ETIMEDOUT);
    DV_CHECK_EQ(attempts, 1);
    DV_CHECK(slow_ms < 25000); // the timeout, not the 30 s sleep's end
}

// --------------------------------------- retries, dead letters, poison

// Kill whichever worker runs attempt of job, once it runs, and start
// another.
static bool
kill_runner(cluster_t *c, uint64_t job, uint32_t attempt)
{
    int64_t end = dv_test_now_ms() + 20000;
    drover_job_info_t info = {0};
    drover_error_t err;
    while (dv_test_now_ms() < end &&
           (drover_job_info(c->d, job, &info, &err) != 0 ||
            strcmp(info.state, "running") != 0 || info.attempts != attempt)) {
        sleep_ms(10);
    }
    int slot = worker_of(c, job);
    if (slot < 0 || c->workers[slot].pid <= 0) {
        return false; // never kill(0): that is our own process group
    }

    kill_pid(c->workers[slot].pid, SIGKILL);
    dv_proc_stop(&c->workers[slot], SIGKILL);
    return worker_start(c);
}

// Run attempt of job on the test's worker and fail it with DV_EIO.
static bool
fail_run(cluster_t *c, uint64_t job, uint32_t attempt)
{
    uint64_t got = 0;
    uint32_t a = 0;
    bool ran = dv_tworker_next_run(c->raw, 20000, &got, &a) && got == job &&
               a == attempt;
    return ran && dv_tworker_answer(c->raw, got, a, DV_EIO,
                                    "the test's disk failed") == 0;
}

static void
test_retries_into_dead_letters(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 0, NULL);
    c.raw = up ? dv_tworker_start(c.wep, "raw", 1, NULL, HB) : NULL;
    drover_job_t job = DROVER_JOB_INIT;
    job.kind = "sleep";
    job.sleep_ms = 100;
    job.max_attempts = 2;
    job.backoff_ms = 1000; // held 500..1000 ms before the retry
    uint64_t id = 0;
    drover_error_t err;
    if (c.raw) {
        drover_submit(c.d, &job, 10000, &id, &err);
    }
    bool k1 = id && fail_run(&c, id, 1);
    bool retrying = k1 && wait_state(c.d, id, "retrying", 10000);
    bool k2 = retrying && fail_run(&c, id, 2);
    int code = k2 ? result_code(&c, id, 20000, NULL) : 0;
    bool dead = k2 && wait_state(c.d, id, "dead", 1000);
    dv_tworker_stop(&c.raw);
    // A durable submit is acknowledged after a commit that holds all that
    // was staged before it: the dead letter is on disk now.
    uint64_t barrier = dead ? submit(&c, "echo", 0, 0) : 0;

    // Durable: still there after a crash of the broker.
    kill_pid(c.broker.pid, SIGKILL);
    dv_proc_stop(&c.broker, SIGKILL);
    bool back = dead && broker_start(&c) && worker_start(&c);
    drover_dead_t *v = NULL;
    size_t n = 0;
    int list_rc = back ? drover_dead_list(c.d, NULL, 0, &v, &n, &err) : -1;
    uint64_t dead_job = n == 1 ? v[0].job : 0;
    int dead_code = n == 1 ? v[0].code : 0;
    size_t n_errors = n == 1 ? v[0].n_errors : 0;
    int first_error = n_errors ? v[0].errors[0].code : 0;
    drover_dead_free(&v, n);
    // Requeued: a new job that runs to the end, on a real worker.
    uint64_t new_job = 0;
    size_t count = 0;
    int rq_rc =
        back ? drover_dead_requeue(c.d, id, NULL, &count, &new_job, &err) : -1;
    int new_code = new_job ? result_code(&c, new_job, 30000, NULL) : -1;
    int list2_rc = back ? drover_dead_list(c.d, NULL, 0, &v, &n, &err) : -1;
    size_t left = n;
    drover_dead_free(&v, n);
    cluster_down(&c, new_code != 0);
    DV_CHECK(up);
    DV_CHECK(k1);
    DV_CHECK(retrying);
    DV_CHECK(k2);
    DV_CHECK_EQ(code, DV_EIO);
    DV_CHECK(dead);
    DV_CHECK(barrier > id);
    DV_CHECK(back);

    DV_CHECK_EQ(list_rc, 0);
    DV_CHECK_EQ(dead_job, id);
    DV_CHECK_EQ(dead_code, DV_EIO);
    DV_CHECK_EQ(n_errors, 2); // both failed runs, with reasons
    DV_CHECK_EQ(first_error, DV_EIO);
    DV_CHECK_EQ(rq_rc, 0);
    DV_CHECK_EQ(count, 1);
    DV_CHECK(new_job > id);
    DV_CHECK_EQ(new_code, 0);
    DV_CHECK_EQ(list2_rc, 0);
    DV_CHECK_EQ(left, 0);
}

static void
test_poison_quarantine(void)
{
    const char *extra[] = {"--quarantine-after", "2", NULL};
    cluster_t c;
    bool up = cluster_up(&c, 1, extra);
    drover_job_t job = DROVER_JOB_INIT;
    job.kind = "sleep";
    job.sleep_ms = 3000;
    job.max_attempts = 10;
    job.backoff_ms = -1; // retry at once
    uint64_t id = 0;
    drover_error_t err;
    if (up) {
        drover_submit(c.d, &job, 10000, &id, &err);
    }
    bool k1 = id && kill_runner(&c, id, 1);
    bool k2 = k1 && kill_runner(&c, id, 2);
    int code = k2 ? result_code(&c, id, 20000, NULL) : 0;
    uint32_t attempts = 0;
    drover_job_info_t info = {0};
    int info_rc = k2 ? drover_job_info(c.d, id, &info, &err) : -1;
    attempts = info.attempts;
    // The pool keeps working; the CLI purges the poison job.
    uint64_t ok_job = k2 ? submit(&c, "echo", 0, 0) : 0;
    int ok_code = ok_job ? result_code(&c, ok_job, 10000, NULL) : -1;
    char idtxt[32];
    snprintf(idtxt, sizeof idtxt, "%llu", (unsigned long long)id);
    const char *purge[] = {"dead", "purge", idtxt, "--broker", c.cep, NULL};
    int purge_rc =
        k2 ? dv_proc_run("DROVER_BIN", purge, NULL, c.dir, "cli.log") : -1;
    drover_dead_t *v = NULL;
    size_t n = 9;
    int list_rc = up ? drover_dead_list(c.d, NULL, 0, &v, &n, &err) : -1;
    drover_dead_free(&v, n);
    cluster_down(&c, purge_rc != 0);
    DV_CHECK(up);
    DV_CHECK(k1);
    DV_CHECK(k2);
    DV_CHECK_EQ(code, DV_EQUARANTINED);
    DV_CHECK_EQ(info_rc, 0);
    DV_CHECK_STR_EQ(info.state, "dead");
    DV_CHECK_EQ(attempts, 2); // not the 10 it was allowed
    DV_CHECK_EQ(ok_code, 0);
    DV_CHECK_EQ(purge_rc, 0);
    DV_CHECK_EQ(list_rc, 0);
    DV_CHECK_EQ(n, 0);
}

// Fail the raw worker's next run with DV_EIO: its job id (0: none came).
static uint64_t
fail_next(cluster_t *c)
{
    uint64_t job = 0;
    uint32_t a = 0;
    bool ran = dv_tworker_next_run(c->raw, 20000, &job, &a);
    return ran && dv_tworker_answer(c->raw, job, a, DV_EIO,
                                    "the test's disk failed") == 0
               ? job
               : 0;
}

// The dead letters' ids (oldest first) into ids (at most 8); their count,
// or -1.
static int
dead_ids(cluster_t *c, uint64_t *ids)
{
    drover_dead_t *v = NULL;
    size_t n = 0;
    drover_error_t err;
    if (drover_dead_list(c->d, NULL, 0, &v, &n, &err) != 0) {
        return -1;
    }
    for (size_t i = 0; i < n && i < 8; i++) {
        ids[i] = v[i].job;
    }
    drover_dead_free(&v, n);
    return (int)n;
}

// Status's dead letters: in all, and in queues "a" and "b" (-1: unread).
static void
dead_counts(cluster_t *c, long *all, long *a, long *b)
{
    drover_status_t st = {0};
    drover_error_t err;
    *all = *a = *b = -1;
    if (drover_status(c->d, &st, &err) == 0) {
        *all = (long)st.dead;
        for (size_t i = 0; i < st.n_queues; i++) {
            if (strcmp(st.queues[i].name, "a") == 0) {
                *a = (long)st.queues[i].dead;
            } else if (strcmp(st.queues[i].name, "b") == 0) {
                *b = (long)st.queues[i].dead;
            }
        }
    }
    drover_status_clear(&st);
}

// Many dead letters, two queues interleaved: each is found by its id (a
// lookup, not a walk); purging one queue's all at once (one pass, the
// others moved down) leaves the other's in death order, each still found,
// the purged ones DV_ENOENT; requeuing the other's all at once runs them.
static void
test_many_dead_letters(void)
{
    enum { N = 30 };
    cluster_t c;
    bool up = cluster_up(&c, 0, NULL);
    c.raw = up ? dv_tworker_start(c.wep, "raw", 4, NULL, HB) : NULL;
    uint64_t ids[N] = {0};
    drover_error_t err;
    size_t submitted = 0, failed = 0;
    for (size_t i = 0; c.raw && i < N; i++) {
        drover_job_t job = DROVER_JOB_INIT;
        job.kind = "sleep";
        job.sleep_ms = 1;
        job.max_attempts = 1;
        job.queue = i % 2 ? "b" : "a";
        submitted += drover_submit(c.d, &job, 10000, &ids[i], &err) == 0;
    }
    for (size_t i = 0; c.raw && i < N; i++) {
        failed += fail_next(&c) != 0;
    }
    long all = -1, a = -1, b = -1;
    int64_t end = dv_test_now_ms() + 20000;
    while (c.raw && all != N && dv_test_now_ms() < end) {
        dead_counts(&c, &all, &a, &b);
    }
    size_t found = 0;
    for (size_t i = 0; all == N && i < N; i++) {
        drover_dead_t *v = NULL;
        size_t n = 0;
        found += drover_dead_list(c.d, NULL, ids[i], &v, &n, &err) == 0 &&
                 n == 1 && v[0].job == ids[i];
        drover_dead_free(&v, n);
    }
    size_t purged = 0;
    int prc = all == N ? drover_dead_purge(c.d, 0, "a", &purged, &err) : -1;
    drover_dead_t *v = NULL;
    size_t n = 0, in_order = 0, b_found = 0, a_gone = 0;
    int lrc = prc == 0 ? drover_dead_list(c.d, NULL, 0, &v, &n, &err) : -1;
    for (size_t k = 0; lrc == 0 && k < n; k++) {
        in_order += v[k].job == ids[2 * k + 1]; // b's, oldest first
    }
    drover_dead_free(&v, n);
    for (size_t i = 0; lrc == 0 && i < N; i++) {
        int rc = drover_dead_list(c.d, NULL, ids[i], &v, &n, &err);
        drover_dead_free(&v, n);
        b_found += i % 2 && rc == 0;
        a_gone += !(i % 2) && rc == DV_ENOENT;
    }
    size_t requeued = 0;
    int rqc =
        lrc == 0 ? drover_dead_requeue(c.d, 0, "b", &requeued, NULL, &err) : -1;
    size_t ran = 0;
    for (size_t i = 0; rqc == 0 && i < N / 2; i++) {
        uint64_t job = 0;
        uint32_t at = 0;
        ran += dv_tworker_next_run(c.raw, 20000, &job, &at) &&
               dv_tworker_answer(c.raw, job, at, 0, "") == 0;
    }
    int l2 = rqc == 0 ? drover_dead_list(c.d, NULL, 0, &v, &n, &err) : -1;
    size_t left = l2 == 0 ? n : 99;
    drover_dead_free(&v, n);
    dv_tworker_stop(&c.raw);
    cluster_down(&c, found != N);
    DV_CHECK(up);
    DV_CHECK_EQ(submitted, N);
    DV_CHECK_EQ(failed, N);
    DV_CHECK_EQ(all, N);
    DV_CHECK_EQ(found, N);
    DV_CHECK_EQ(prc, 0);
    DV_CHECK_EQ(purged, N / 2);
    DV_CHECK_EQ(lrc, 0);
    DV_CHECK_EQ(in_order, N / 2);
    DV_CHECK_EQ(b_found, N / 2);
    DV_CHECK_EQ(a_gone, N / 2);
    DV_CHECK_EQ(rqc, 0);
    DV_CHECK_EQ(requeued, N / 2);
    DV_CHECK_EQ(ran, N / 2);
    DV_CHECK_EQ(left, 0);
}

// Dead letters are bounded (--max-dead 3, --max-dead-bytes 2500): past
// either the oldest are dropped, from memory and the store, while their
// failed results stay; status counts each queue's; a restart with a lower
// --max-dead drops more at recovery.
static void
test_dead_letters_bounded(void)
{
    const char *extra[] = {"--max-dead", "3", "--max-dead-bytes", "2500", NULL};
    cluster_t c;
    bool up = cluster_up(&c, 0, extra);
    c.raw = up ? dv_tworker_start(c.wep, "raw", 1, NULL, HB) : NULL;
    static char payload[2400];
    memset(payload, 'p', sizeof payload);
    enum { N = 5 };
    uint64_t ids[N + 1] = {0}, failed[N + 1] = {0};
    for (size_t i = 0; c.raw && i <= N; i++) { // the last one: later
        drover_job_t job = DROVER_JOB_INIT;
        job.kind = "sleep";
        job.sleep_ms = 1;
        job.max_attempts = 1;
        job.queue = i < 3 ? "a" : "b";
        job.payload = payload;
        job.payload_len = i < N ? 100 : 2400;
        if (i < N) {
            ids[i] = submit_job(&c, &job);
        } else {
            for (size_t k = 0; k < N; k++) { // every run failed, in order
                failed[k] = fail_next(&c);
            }
            for (size_t k = 0; k < N; k++) {
                result_code(&c, failed[k], 10000, NULL);
            }
            ids[N] = submit_job(&c, &job);
            failed[N] = fail_next(&c);
            result_code(&c, failed[N], 10000, NULL);
        }
    }
    bool all_failed = true;
    for (size_t i = 0; i <= N; i++) {
        all_failed = all_failed && failed[i];
    }
    // The five: the last three kept. The sixth (2,400 bytes): over three
    // by count, then over 2,500 bytes: the two oldest go.
    uint64_t dead[8] = {0};
    int n_dead = all_failed ? dead_ids(&c, dead) : -1;
    long all = -1, in_a = -1, in_b = -1;
    dead_counts(&c, &all, &in_a, &in_b);
    // Dropped dead letters keep their failed results.
    int first_code = all_failed ? result_code(&c, failed[0], 10000, NULL) : 0;
    dv_tworker_stop(&c.raw);
    uint64_t barrier = all_failed ? submit(&c, "echo", 0, 0) : 0; // stored
    char path[4400], want[160];
    snprintf(path, sizeof path, "%s/broker.log", c.dir);
    size_t len = 0;
    char *log = up ? (char *)dv_test_read_file(path, &len) : NULL;
    snprintf(want, sizeof want,
             "dead letters: dropped the oldest 2 (jobs %llu..%llu;",
             (unsigned long long)failed[2], (unsigned long long)failed[3]);
    bool logged = log && strstr(log, want);
    free(log);
    // Restarted with --max-dead 1: recovery drops the older one.
    kill_pid(c.broker.pid, SIGKILL);
    dv_proc_stop(&c.broker, SIGKILL);
    c.extra[1] = "1";
    bool back = barrier && broker_start(&c);
    uint64_t dead2[8] = {0};
    int n_dead2 = back ? dead_ids(&c, dead2) : -1;
    long all2 = -1, in_a2 = -1, in_b2 = -1;
    dead_counts(&c, &all2, &in_a2, &in_b2);
    int first_code2 = back ? result_code(&c, failed[0], 10000, NULL) : 0;
    cluster_down(&c, !logged || n_dead2 != 1);
    // What each queue holds of the kept two: the sixth is b's.
    long want_a = 0;
    for (size_t i = 0; i < N; i++) {
        want_a += ids[i] == failed[4] && i < 3;
    }
    DV_CHECK(up);
    DV_CHECK(all_failed);
    DV_CHECK_EQ(n_dead, 2);
    DV_CHECK_EQ(dead[0], failed[4]);
    DV_CHECK_EQ(dead[1], failed[5]);
    DV_CHECK_EQ(all, 2);
    DV_CHECK_EQ(in_a, want_a);
    DV_CHECK_EQ(in_b, 2 - want_a);
    DV_CHECK_EQ(first_code, DV_EIO);
    DV_CHECK(logged);
    DV_CHECK(back);
    DV_CHECK_EQ(n_dead2, 1);
    DV_CHECK_EQ(dead2[0], failed[5]);
    DV_CHECK_EQ(all2, 1);
    DV_CHECK_EQ(in_a2, 0);
    DV_CHECK_EQ(in_b2, 1);
    DV_CHECK_EQ(first_code2, DV_EIO);
}

// ---------------------------------------------------------- idempotency

static uint64_t
submit_key(cluster_t *c, const char *queue, const char *key)
{
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = queue;
    job.payload = "k";
    job.payload_len = 1;
    job.idempotency_key = key;
    return submit_job(c, &job);
}

static size_t
count_lines(const char *path)
{
    size_t len = 0, lines = 0;
    char *text = (char *)dv_test_read_file(path, &len);
    for (size_t i = 0; text && i < len; i++) {
        lines += text[i] == '\n';
    }
    free(text);
    return lines;
}

static void
test_idempotency_and_no_wait(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 0, NULL); // no workers: jobs stay queued
    uint64_t a = up ? submit_key(&c, "q", "order-17") : 0;
    uint64_t again = up ? submit_key(&c, "q", "order-17") : 0;
    uint64_t other_queue = up ? submit_key(&c, "r", "order-17") : 0;
    uint64_t other_key = up ? submit_key(&c, "q", "order-18") : 0;
    kill_pid(c.broker.pid, SIGKILL);
    dv_proc_stop(&c.broker, SIGKILL);
    bool back = up && broker_start(&c);
    uint64_t after = back ? submit_key(&c, "q", "order-17") : 0;
    // The CLI: --no-wait returns once all are accepted and prints the ids;
    // the same keys again give the same ids.
    char out1[4400], out2[4400];
    snprintf(out1, sizeof out1, "%s/ids1.txt", c.dir);
    snprintf(out2, sizeof out2, "%s/ids2.txt", c.dir);
    const char *cli[] = {"submit",
                         "--echo",
                         "10",
                         "--count",
                         "5",
                         "--no-wait",
                         "--idempotency-key",
                         "batch",
                         "--queue",
                         "q",
                         "--broker",
                         c.cep,
                         NULL};
    int rc1 =
        back ? dv_proc_run("DROVER_BIN", cli, out1, c.dir, "cli.log") : -1;
    int rc2 =
        back ? dv_proc_run("DROVER_BIN", cli, out2, c.dir, "cli.log") : -1;
    size_t len1 = 0, len2 = 0;
    char *ids1 = (char *)dv_test_read_file(out1, &len1);
    char *ids2 = (char *)dv_test_read_file(out2, &len2);
    bool same = ids1 && ids2 && len1 == len2 && memcmp(ids1, ids2, len1) == 0;
    size_t lines = count_lines(out1);
    free(ids1);
    free(ids2);
    // status --json: per queue, per state.
    char out3[4400];
    snprintf(out3, sizeof out3, "%s/status.json", c.dir);
    const char *st[] = {"status", "--json", "--broker", c.cep, NULL};
    int rc3 = back ? dv_proc_run("DROVER_BIN", st, out3, c.dir, "cli.log") : -1;
    size_t len3 = 0;
    char *status = (char *)dv_test_read_file(out3, &len3);
    bool per_queue = status && strstr(status, "\"q\":{\"queued\":7,") &&
                     strstr(status, "\"r\":{\"queued\":1,") &&
                     strstr(status, "\"dead\":0");
    free(status);
    cluster_down(&c, !per_queue);
    DV_CHECK(up);
    DV_CHECK(a > 0);
    DV_CHECK_EQ(again, a);
    DV_CHECK(other_queue != a);
    DV_CHECK(other_key != a && other_key != other_queue);
    DV_CHECK(back);
    DV_CHECK_EQ(after, a); // the key survived the crash
    DV_CHECK_EQ(rc1, 0);
    DV_CHECK_EQ(rc2, 0);
    DV_CHECK_EQ(lines, 5);
    DV_CHECK(same);
    DV_CHECK_EQ(rc3, 0);
    DV_CHECK(per_queue);
}

// ------------------------------------------------------- result streams

typedef struct {
    uint64_t seqs[16];
    int n;
} live_t;

static void
on_live(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    live_t *l = arg;
    if (l->n < 16 && drover_result_ok(r)) {
        l->seqs[l->n++] = drover_result_seq(r);
    }
}

// Job ids in a `drover results follow --json` output, in order; *seq_ok
// when seqs run first..first+n-1.
static size_t
stream_jobs(
    const char *path, uint64_t *jobs, size_t max, uint64_t first, bool *seq_ok)
{
    size_t len = 0, n = 0;
    char *text = (char *)dv_test_read_file(path, &len);
    *seq_ok = text != NULL;
    for (char *p = text; p && *p && n < max;) {
        unsigned long long seq = 0, job = 0;
        if (sscanf(p, "{\"seq\":%llu,\"job\":%llu", &seq, &job) != 2) {
            *seq_ok = false;
            break;
        }
        *seq_ok = *seq_ok && seq == first + n;
        jobs[n++] = job;
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    free(text);
    return n;
}

static void
test_result_streams(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 1, NULL);
    enum { N = 50 };
    uint64_t ids[N] = {0};
    int done = 0;
    for (int i = 0; up && i < N; i++) {
        ids[i] = submit(&c, "echo", 0, 0);
    }
    for (int i = 0; up && i < N; i++) {
        done += result_code(&c, ids[i], 10000, NULL) == 0;
    }
    // A consumer takes 20 and goes away; the broker crashes; the consumer
    // comes back and gets exactly the other 30.
    char out1[4400], out2[4400];
    snprintf(out1, sizeof out1, "%s/s1.json", c.dir);
    snprintf(out2, sizeof out2, "%s/s2.json", c.dir);
    const char *f1[] = {"results",    "follow",   "--queue", "default",
                        "--consumer", "c1",       "--count", "20",
                        "--json",     "--broker", c.cep,     NULL};
    int rc1 = up ? dv_proc_run("DROVER_BIN", f1, out1, c.dir, "cli.log") : -1;
    kill_pid(c.broker.pid, SIGKILL);
    dv_proc_stop(&c.broker, SIGKILL);
    bool back = up && broker_start(&c);
    const char *f2[] = {"results",    "follow", "--queue", "default",
                        "--consumer", "c1",     "--count", "100",
                        "--idle-ms",  "1500",   "--json",  "--broker",
                        c.cep,        NULL};
    int rc2 = back ? dv_proc_run("DROVER_BIN", f2, out2, c.dir, "cli.log") : -1;
    uint64_t got[2 * N] = {0};
    bool seq1 = false, seq2 = false;
    size_t n1 = stream_jobs(out1, got, N, 1, &seq1);
    size_t n2 = stream_jobs(out2, got + n1, N, 21, &seq2);
    int once = 0;
    for (int i = 0; i < N; i++) {
        int seen = 0;
        for (size_t k = 0; k < n1 + n2; k++) {
            seen += got[k] == ids[i];
        }
        once += seen == 1;
    }
    // Live: a consumer from "latest" gets new results as they finish.
    live_t live = {0};
    drover_error_t err;
    drover_t *d2 = NULL;
    int frc = back && drover_connect(&d2, c.cep, 10000, &err) == 0
                  ? drover_follow(d2, "default", "live", 10, true, on_live,
                                  &live, NULL, &err)
                  : -1;
    for (int i = 0; frc == 0 && i < 5; i++) {
        submit(&c, "echo", 0, 0);
    }
    int64_t end = dv_test_now_ms() + 20000;
    while (frc == 0 && live.n < 5 && dv_test_now_ms() < end) {
        drover_poll(d2, 200, &err);
    }
    drover_destroy(&d2);
    // Another consumer name gets every result too, from the oldest kept:
    // c1's acknowledgements are its own.
    char out3[4400];
    snprintf(out3, sizeof out3, "%s/s3.json", c.dir);
    const char *f3[] = {"results",    "follow", "--queue", "default",
                        "--consumer", "c2",     "--count", "100",
                        "--idle-ms",  "1500",   "--json",  "--broker",
                        c.cep,        NULL};
    int rc3 =
        frc == 0 ? dv_proc_run("DROVER_BIN", f3, out3, c.dir, "cli.log") : -1;
    uint64_t all[N + 5] = {0};
    bool seq3 = false;
    size_t n3 = stream_jobs(out3, all, N + 5, 1, &seq3);
    int in_c2 = 0;
    for (int i = 0; i < N; i++) {
        for (size_t k = 0; k < n3; k++) {
            in_c2 += all[k] == ids[i];
        }
    }
    cluster_down(&c, once != N);
    DV_CHECK(up);
    DV_CHECK_EQ(done, N);
    DV_CHECK_EQ(rc1, 0);
    DV_CHECK_EQ(n1, 20);
    DV_CHECK(seq1);
    DV_CHECK(back);
    DV_CHECK_EQ(rc2, 0);
    DV_CHECK_EQ(n2, 30);
    DV_CHECK(seq2);
    DV_CHECK_EQ(once, N); // every result exactly once across the two
    DV_CHECK_EQ(frc, 0);
    DV_CHECK_EQ(live.n, 5);
    DV_CHECK_EQ(live.seqs[0], N + 1);
    DV_CHECK_EQ(live.seqs[4], N + 5);
    DV_CHECK_EQ(rc3, 0);
    DV_CHECK_EQ(n3, N + 5);
    DV_CHECK(seq3);
    DV_CHECK_EQ(in_c2, N); // and the 5 live ones
}

// -------------------------------------------------------- deep queues

typedef struct {
    uint64_t last;
    int n, out_of_order;
} fifo_t;

static void
on_fifo(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    fifo_t *f = arg;
    if (drover_result_ok(r)) {
        f->out_of_order += drover_result_job(r) < f->last;
        f->last = drover_result_job(r);
        f->n++;
    }
}

enum { FILL = 50, SPILLED = 40 }; // the memory window, jobs past it

typedef struct {
    uint64_t jobs[FILL + SPILLED]; // in the order they finished
    int n;
} ran_t;

static void
on_ran(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    ran_t *o = arg;
    if (drover_result_ok(r) && o->n < FILL + SPILLED) {
        o->jobs[o->n++] = drover_result_job(r);
    }
}

// Spilled jobs come back into the window highest priority first, FIFO
// within a priority: queue "p" gets FILL jobs of priority 0 (the window,
// in memory) and SPILLED more of priorities 0..3 (in the store only), with
// no worker serving; then one worker runs them. Among the spilled ones the
// order must be by priority, then id. Returns false when it could not run;
// *sorted tells whether the order held.
static bool
spilled_by_priority(cluster_t *c, bool *sorted)
{
    uint64_t ids[FILL + SPILLED] = {0};
    int32_t prio[FILL + SPILLED] = {0};
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = "p";
    for (int i = 0; i < FILL + SPILLED; i++) {
        job.priority = prio[i] = i < FILL ? 0 : (i - FILL) % 4;
        if ((ids[i] = submit_job(c, &job)) == 0) {
            printf("  submit %d to p refused\n", i);
            return false;
        }
    }
    ran_t ran = {0};
    drover_error_t err = {0};
    drover_t *d2 = NULL; // one stream per connection: c->d follows one
    if (drover_connect(&d2, c->cep, 10000, &err) != 0 ||
        drover_follow(d2, "p", "prio", 1000, false, on_ran, &ran, NULL, &err) !=
            0 ||
        !worker_start(c)) {
        printf("  follow or worker failed: %s\n", err.text);
        drover_destroy(&d2);
        return false;
    }
    int64_t end = dv_test_now_ms() + 60000;
    while (ran.n < FILL + SPILLED && dv_test_now_ms() < end) {
        drover_poll(d2, 500, &err);
    }
    drover_destroy(&d2);
    *sorted = ran.n == FILL + SPILLED;
    int prev = -1; // index of the spilled job that ran before
    for (int k = 0; k < ran.n; k++) {
        int i = 0;
        while (i < FILL + SPILLED && ids[i] != ran.jobs[k]) {
            i++;
        }
        if (i < FILL || i == FILL + SPILLED) {
            continue; // one of the window's (or not ours: counted above)
        }
        if (prev >= 0 &&
            !(prio[prev] > prio[i] || (prio[prev] == prio[i] && prev < i))) {
            printf("  job %llu (priority %d) ran after %llu (priority %d)\n",
                   (unsigned long long)ids[i], prio[i],
                   (unsigned long long)ids[prev], prio[prev]);
            *sorted = false;
        }
        prev = i;
    }
    return true;
}

// Past --memory-window a queue's jobs wait in the store only: they are
// counted, listed, cancelled and expired there, survive a crash, and run
// in FIFO order when their turn comes; with priorities, highest first.
static void
test_deep_queue_spills(void)
{
    const char *extra[] = {"--memory-window", "50", NULL};
    cluster_t c;
    bool up = cluster_up(&c, 0, extra);
    enum { N = 600 };
    drover_job_t job = DROVER_JOB_INIT;
    job.payload = "deep";
    job.payload_len = 4;
    uint64_t first = 0, id = 0;
    drover_error_t err;
    for (int i = 0; up && i < N - 1; i++) {
        drover_submit(c.d, &job, 10000, &id, &err);
        first = first ? first : id;
    }
    drover_status_t st = {0};
    int st_rc = up ? drover_status(c.d, &st, &err) : -1;
    uint64_t queued = st.queued;
    if (st_rc == 0) {
        drover_status_clear(&st);
    }
    // The last one, spilled, expires there: its deadline counts from its
    // own submit, however long the others took.
    job.deadline_ms = 1000;
    uint64_t late = 0;
    if (up) {
        drover_submit(c.d, &job, 10000, &late, &err);
    }
    uint64_t victim = first + 400; // in the store only
    drover_job_info_t info = {0};
    int show_rc = up ? drover_job_info(c.d, victim, &info, &err) : -1;
    bool shown = show_rc == 0 && strcmp(info.state, "queued") == 0 &&
                 strcmp(info.queue, "default") == 0;
    int cancel_rc = up ? drover_job_cancel(c.d, victim, NULL, &err) : -1;
    bool expired = late && wait_state(c.d, late, "expired", 10000);
    kill_pid(c.broker.pid, SIGKILL);
    dv_proc_stop(&c.broker, SIGKILL);
    bool back = up && broker_start(&c);
    fifo_t fifo = {0};
    int frc = back ? drover_follow(c.d, "default", "fifo", 1000, false, on_fifo,
                                   &fifo, NULL, &err)
                   : -1;
    bool worker = frc == 0 && worker_start(&c);
    int64_t end = dv_test_now_ms() + 60000;
    while (worker && fifo.n < N - 2 && dv_test_now_ms() < end) {
        drover_poll(c.d, 500, &err); // the window (1000) holds them all
    }
    drover_job_info_t after = {0};
    int after_rc = back ? drover_job_info(c.d, victim, &after, &err) : -1;
    // The worker leaves (drained: it finished what it had), so that queue
    // "p" fills with nobody serving it.
    int left = worker ? dv_proc_stop(&c.workers[0], SIGTERM) : -1;
    bool sorted = false;
    bool prio_ran = left == 0 && spilled_by_priority(&c, &sorted);
    cluster_down(&c, fifo.n != N - 2 || !sorted);
    DV_CHECK(up);
    DV_CHECK_EQ(st_rc, 0);
    DV_CHECK_EQ(queued, N - 1);
    DV_CHECK(late > 0);
    DV_CHECK(shown);
    DV_CHECK_EQ(cancel_rc, 0);
    DV_CHECK(expired);
    DV_CHECK(back);
    DV_CHECK_EQ(frc, 0);
    DV_CHECK(worker);
    DV_CHECK_EQ(fifo.n, N - 2); // all but the cancelled and the expired
    DV_CHECK_EQ(fifo.out_of_order, 0);
    DV_CHECK_EQ(after_rc, 0);
    DV_CHECK_STR_EQ(after.state, "cancelled");
    DV_CHECK_EQ(left, 0);
    DV_CHECK(prio_ran);
    DV_CHECK(sorted);
}

// job_list: newest first, exactly the newest `limit` in the state asked.
// A list longer than one header comes in pages (1.7): libdrover follows
// `next`, so 10,000 asked of 3,000 jobs is all 3,000 (it used to go
// unanswered: a ~700 KB header no client reads; then it was cut to one
// header), and a list from an id goes on from there and says where it
// stopped. 3,000 queued jobs, no worker: the deepest of them wait in the
// store, so the list reads memory and the store alike.
static void
test_job_list_newest_first(void)
{
    cluster_t c;
    const char *extra[] = {"--memory-window", "1000", NULL};
    bool up = cluster_up(&c, 0, extra);
    enum { N = 3000, STEP = 250, CASES = 6 };
    drover_job_t jobs[STEP];
    for (int i = 0; i < STEP; i++) {
        jobs[i] = (drover_job_t)DROVER_JOB_INIT;
        jobs[i].queue = "listed";
        jobs[i].payload = "x";
        jobs[i].payload_len = 1;
    }
    uint64_t ids[STEP], last = 0;
    drover_error_t err = {0};
    int rc = up ? 0 : -1;
    for (int s = 0; rc == 0 && s < N; s += STEP) {
        rc = drover_submit_many(c.d, jobs, STEP, 60000, ids, &err);
        last = ids[STEP - 1];
    }
    if (rc) {
        fprintf(stderr, "  submit: %s\n", err.text);
    }
    const struct {
        const char *state;
        unsigned limit;
        uint64_t back; // from: this far below the newest (0: no from)
        size_t want;   // entries expected
        uint64_t next; // next expected this far below the newest (0: none)
    } cases[CASES] = {
        {NULL, 1, 0, 1, 1},
        {NULL, 0, 0, 100, 100}, // the default
        {"queued", 250, 0, 250, 250},
        {"done", 100, 0, 0, 0},
        {NULL, 10000, 0, N, 0}, // several pages
        {"queued", 900, 1000, 900, 1900},
    };
    int lrc[CASES];
    size_t got[CASES], gaps[CASES];
    uint64_t next[CASES];
    bool failed = rc != 0;
    for (size_t t = 0; t < CASES; t++) {
        drover_job_info_t *js = NULL;
        got[t] = gaps[t] = 0;
        next[t] = 0;
        uint64_t top = last - cases[t].back;
        lrc[t] =
            rc ? rc
               : drover_job_list_from(c.d, cases[t].state, NULL, cases[t].limit,
                                      cases[t].back ? top : 0, &js, &got[t],
                                      &next[t], &err);
        for (size_t i = 0; lrc[t] == 0 && i < got[t]; i++) {
            gaps[t] +=
                js[i].job != top - i || strcmp(js[i].state, "queued") != 0;
        }
        uint64_t want_next = cases[t].next ? last - cases[t].next : 0;
        printf("  job_list %s, limit %u, from %llu: %zu jobs, %zu out of "
               "place, next %llu%s%s\n",
               cases[t].state ? cases[t].state : "(all)", cases[t].limit,
               cases[t].back ? (unsigned long long)top : 0ULL, got[t], gaps[t],
               (unsigned long long)next[t], lrc[t] && !rc ? ": " : "",
               lrc[t] && !rc ? err.text : "");
        free(js);
        failed = failed || lrc[t] || gaps[t] || got[t] != cases[t].want ||
                 next[t] != want_next;
    }
    cluster_down(&c, failed);
    DV_CHECK(up);
    DV_CHECK_EQ(rc, 0);
    for (size_t t = 0; t < CASES; t++) {
        DV_CHECK_EQ(lrc[t], 0);
        DV_CHECK_EQ(got[t], cases[t].want);
        DV_CHECK_EQ(gaps[t], 0);
        DV_CHECK_EQ(next[t], cases[t].next ? last - cases[t].next : 0);
    }
}

// One job_list case: state (NULL: all) on queue (NULL: all), at most limit;
// the jobs wanted newest first (want[0..n)) and the `next` wanted (0: none).
typedef struct {
    const char *state, *queue;
    unsigned limit;
    const uint64_t *want;
    size_t n;
    uint64_t next;
} list_case_t;

// Run the cases; true when each listed exactly its jobs (in their state),
// newest first, and said where to go on. Prints each.
static bool
list_cases(drover_t *d, const list_case_t *cases, size_t n_cases)
{
    bool all = true;
    for (size_t t = 0; t < n_cases; t++) {
        const list_case_t *c = &cases[t];
        drover_job_info_t *js = NULL;
        size_t n = 0, wrong = 0;
        uint64_t next = 0;
        drover_error_t err = {0};
        int rc = drover_job_list_from(d, c->state, c->queue, c->limit, 0, &js,
                                      &n, &next, &err);
        for (size_t i = 0; rc == 0 && i < n && i < c->n; i++) {
            wrong += js[i].job != c->want[i] ||
                     (c->state && strcmp(js[i].state, c->state) != 0);
        }
        bool ok = rc == 0 && n == c->n && !wrong && next == c->next;
        printf("  job_list %s on %s, limit %u: %zu jobs (%zu wanted), %zu "
               "wrong, next %llu (%llu wanted)%s%s\n",
               c->state ? c->state : "(all)", c->queue ? c->queue : "(all)",
               c->limit, n, c->n, wrong, (unsigned long long)next,
               (unsigned long long)c->next, rc ? ": " : "", rc ? err.text : "");
        free(js);
        all = all && ok;
    }
    return all;
}

// job_list by state reads the scheduler's running and held jobs, not every
// job the broker holds (`drover top` asks for the running ones each
// second), and a page of every state or of queued jobs scans down from the
// newest id instead of collecting them all. Each state's list is exactly
// its jobs, with or without a queue, in pages: a retrying job (its run
// failed, a long backoff), a done one, two running on the test's worker
// (both its slots), QUEUED queued ones and a cancelled one. Then GONE jobs
// expire, newer than all of those: a scan finds no queued job among the
// newest ids it may look at and the collected candidates answer the same.
static void
test_job_list_by_state(void)
{
    enum { QUEUED = 60, GONE = 4200, STEP = 600 };
    cluster_t c;
    bool up = cluster_up(&c, 0, NULL);
    c.raw = up ? dv_tworker_start(c.wep, "raw", 2, NULL, HB) : NULL;
    drover_job_t held = DROVER_JOB_INIT, busy = DROVER_JOB_INIT,
                 echo = DROVER_JOB_INIT;
    held.kind = busy.kind = "sleep";
    held.sleep_ms = busy.sleep_ms = 100;
    held.max_attempts = 3;
    held.backoff_ms = 60000; // the cap: held 30..60 s, all of the test
    busy.queue = "busy";
    echo.queue = "listed";
    echo.payload = "x";
    echo.payload_len = 1;
    uint64_t r = 0, d = 0, b1 = 0, b2 = 0, x = 0;
    uint64_t q[QUEUED] = {0}, newest[QUEUED + 1] = {0};
    drover_error_t err = {0};
    if (c.raw) {
        r = submit_job(&c, &held);
    }
    bool retrying =
        r && fail_run(&c, r, 1) && wait_state(c.d, r, "retrying", 10000);
    d = retrying ? submit_job(&c, &echo) : 0;
    uint64_t got = 0;
    uint32_t a = 0;
    bool done = d && dv_tworker_next_run(c.raw, 20000, &got, &a) && got == d &&
                dv_tworker_answer(c.raw, d, a, 0, NULL) == 0 &&
                result_code(&c, d, 20000, NULL) == 0;
    b1 = done ? submit_job(&c, &busy) : 0;
    b2 = b1 ? submit_job(&c, &busy) : 0;
    uint64_t g1 = 0, g2 = 0;
    bool running = b2 && dv_tworker_next_run(c.raw, 20000, &g1, &a) &&
                   dv_tworker_next_run(c.raw, 20000, &g2, &a) &&
                   g1 + g2 == b1 + b2 && wait_state(c.d, b2, "running", 10000);
    for (int i = 0; running && i < QUEUED; i++) {
        q[i] = submit_job(&c, &echo);
        newest[QUEUED - i] = q[i];
    }
    x = running ? submit_job(&c, &echo) : 0;
    newest[0] = x;
    bool cancelled = x && drover_job_cancel(c.d, x, NULL, &err) == 0;
    const uint64_t *queued = newest + 1; // q, newest first
    const uint64_t run[] = {b2, b1};
    const list_case_t before[] = {
        {"running", NULL, 100, run, 2, 0},
        {"running", "busy", 100, run, 2, 0},
        {"running", "listed", 100, NULL, 0, 0},
        {"running", NULL, 1, run, 1, b1},
        {"retrying", NULL, 100, &r, 1, 0},
        {"retrying", "busy", 100, NULL, 0, 0},
        {"done", NULL, 100, &d, 1, 0},
        {"cancelled", NULL, 100, &x, 1, 0},
        {"queued", "listed", 1000, queued, QUEUED, 0},
        {"queued", "listed", 10, queued, 10, queued[10]},
        {"queued", NULL, 10, queued, 10, queued[10]},
        {NULL, NULL, 3, newest, 3, newest[3]},
        {NULL, "listed", 1000, queued, QUEUED, 0}, // x keeps no queue
    };
    bool listed = cancelled && list_cases(c.d, before, 13);

    // GONE jobs that expire at once (the worker's slots are taken).
    drover_job_t gone[STEP];
    uint64_t ids[STEP], last = 0;
    for (int i = 0; i < STEP; i++) {
        gone[i] = echo;
        gone[i].queue = "gone";
        gone[i].deadline_ms = 1;
    }
    int rc = listed ? 0 : -1;
    for (int s = 0; rc == 0 && s < GONE; s += STEP) {
        rc = drover_submit_many(c.d, gone, STEP, 60000, ids, &err);
        last = ids[STEP - 1];
    }
    bool expired = rc == 0 && wait_state(c.d, last, "expired", 20000);
    const list_case_t after[] = {
        {"queued", "listed", 1000, queued, QUEUED, 0},
        {"queued", NULL, 1, queued, 1, queued[1]},
        {"running", NULL, 100, run, 2, 0},
        {NULL, "listed", 5, queued, 5, queued[5]},
    };
    bool listed_after = expired && list_cases(c.d, after, 4);
    cluster_down(&c, !listed || !listed_after);
    DV_CHECK(up);
    DV_CHECK(retrying);
    DV_CHECK(done);
    DV_CHECK(running);
    DV_CHECK(cancelled);
    DV_CHECK(listed);
    DV_CHECK(expired);
    DV_CHECK(listed_after);
}

static const dv_test_case_t cases[] = {
    {"priorities, then aging; queues take turns", test_priorities_and_aging},
    {"deadline, run timeout, cancel a running job",
     test_deadline_timeout_cancel},
    {"stale timers go, live ones still fire",
     test_stale_timers_go_live_ones_fire},
    {"leases: long jobs run once, silent workers lose theirs after the lease",
     test_leases},
    {"a worker that drops its connection loses its jobs at once",
     test_dropped_connection},
    {"retries with backoff into durable dead letters, requeue",
     test_retries_into_dead_letters},
    {"poison quarantine", test_poison_quarantine},
    {"dead letters bounded, the oldest dropped", test_dead_letters_bounded},
    {"many dead letters: found by id, purged and requeued by queue",
     test_many_dead_letters},
    {"idempotency keys across a restart, --no-wait, status --json",
     test_idempotency_and_no_wait},
    {"result streams: consumer acks, resume after a crash, live",
     test_result_streams},
    {"deep queues wait in the store, come back by priority",
     test_deep_queue_spills},
    {"job_list: newest first, in pages", test_job_list_newest_first},
    {"job_list by state: each state's jobs, from the scheduler's lists",
     test_job_list_by_state},

    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
