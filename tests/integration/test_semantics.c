// test_semantics — the job semantics of docs/SEMANTICS.md with the real
// broker, workers and CLI: priorities and aging, deadlines, run timeouts,
// cancel reaching a running job, leases (a long job on a live worker is
// never run twice; a silent worker's job is re-run no sooner than the
// lease), retries with backoff into the dead-letter queue (durable, then
// requeued), poison quarantine, idempotency keys across a restart, and
// `drover submit --no-wait` / `drover status --json`.
//
// Jobs of known length are `sleep` jobs; "a job that kills its worker" is
// the test killing (SIGKILL) whichever worker runs it.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "drover.h"
#include "dv_test.h"
#include "dv_test_proc.h"

#define HB       250 // heartbeat ms: lease = 3 x HB
#define HB_S     "250"
#define MAX_ARGS 8

typedef struct {
    char *dir;
    char data[4300], cep[4300], wep[4300];
    const char *extra[MAX_ARGS]; // broker options
    dv_proc_t broker;
    dv_proc_t workers[4];
    int n_workers; // started so far (names w0, w1, ...)
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

static uint64_t
submit_async(cluster_t *c, int32_t prio, order_t *o)
{
    drover_job_t job = DROVER_JOB_INIT;
    job.kind = "sleep";
    job.sleep_ms = 5;
    job.priority = prio;
    drover_error_t err;
    drover_submit_async(c->d, &job, on_done, o, &err);
    // The id is what the result says; ids are given in submit order.
    return 0;
}

static void
test_priorities_and_aging(void)
{
    const char *extra[] = {"--aging-ms", "60", NULL};
    cluster_t c;
    bool up = cluster_up(&c, 1, extra);
    // A: equal waits: higher priority first, FIFO within a priority.
    uint64_t blocker = up ? submit(&c, "sleep", 600, 0) : 0;
    bool blocked = up && wait_state(c.d, blocker, "running", 10000);
    order_t a = {0};
    int32_t prios[4] = {0, 5, 0, 5}; // ids b+1 .. b+4
    for (int i = 0; blocked && i < 4; i++) {
        submit_async(&c, prios[i], &a);
    }
    drover_error_t err;
    while (blocked && drover_pending(c.d) > 0 &&
           drover_poll(c.d, 20000, &err) >= 0) {
    }
    // B: aging. The low job waits 1200 ms, the high ones 500 ms: at 60 ms
    // per level the low one (0 + 20) overtakes them (5 + 8.3).
    uint64_t blocker2 = blocked ? submit(&c, "sleep", 1200, 0) : 0;
    bool blocked2 = blocker2 && wait_state(c.d, blocker2, "running", 10000);
    order_t b = {0};
    if (blocked2) {
        submit_async(&c, 0, &b);
        drover_poll(c.d, 0, &err);
        sleep_ms(700);
        submit_async(&c, 5, &b);
        submit_async(&c, 5, &b);
    }
    while (blocked2 && drover_pending(c.d) > 0 &&
           drover_poll(c.d, 20000, &err) >= 0) {
    }
    cluster_down(&c, !(blocked && blocked2));
    DV_CHECK(up);
    DV_CHECK(blocked);
    DV_CHECK_EQ(a.n, 4);
    // Ids: blocker b, then b+1 (0), b+2 (5), b+3 (0), b+4 (5).
    DV_CHECK_EQ(a.order[0], blocker + 2);
    DV_CHECK_EQ(a.order[1], blocker + 4);
    DV_CHECK_EQ(a.order[2], blocker + 1);
    DV_CHECK_EQ(a.order[3], blocker + 3);
    DV_CHECK(blocked2);
    DV_CHECK_EQ(b.n, 3);
    DV_CHECK_EQ(b.order[0], blocker2 + 1); // the aged low-priority job
}

// ------------------------------------------------ deadlines, timeouts

static void
test_deadline_timeout_cancel(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 1, NULL);
    uint64_t blocker = up ? submit(&c, "sleep", 800, 0) : 0;
    bool blocked = up && wait_state(c.d, blocker, "running", 10000);
    drover_job_t job = DROVER_JOB_INIT;
    job.payload = "late";
    job.payload_len = 4;
    job.deadline_ms = 200; // the worker is busy for 800 ms
    uint64_t late = 0;
    drover_error_t err;
    if (blocked) {
        drover_submit(c.d, &job, 10000, &late, &err);
    }
    int late_code = late ? result_code(&c, late, 10000, NULL) : 0;
    bool late_state = late && wait_state(c.d, late, "expired", 1000);
    // A run timeout ends a job that runs too long; the worker is free
    // again at once (the sleep checks its cancel flag).
    job = (drover_job_t)DROVER_JOB_INIT;
    job.kind = "sleep";
    job.sleep_ms = 20000;
    job.timeout_ms = 300;
    uint64_t slow = 0;
    if (blocked) {
        drover_submit(c.d, &job, 10000, &slow, &err);
    }
    int slow_code = slow ? result_code(&c, slow, 10000, NULL) : 0;
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
    DV_CHECK_EQ(slow_code, DV_ETIMEDOUT);
    DV_CHECK_EQ(after_code, 0);
    DV_CHECK(running);
    DV_CHECK_EQ(cancel_rc, 0);
    DV_CHECK_EQ(cancel_code, DV_ECANCELED);
    DV_CHECK_EQ(next_code, 0); // in well under the 20 s the sleep had left
    DV_CHECK_EQ(st_rc, 0);
    DV_CHECK_EQ(expired, 1);
    DV_CHECK_EQ(cancelled, 1);
    DV_CHECK_EQ(failed, 1); // the timeout
}

// ------------------------------------------------------------- leases

static void
test_leases(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 1, NULL);
    // A job three leases long on a live worker: heartbeats hold the lease,
    // so it runs once.
    uint64_t long_job = up ? submit(&c, "sleep", 6 * HB * 3 / 2, 0) : 0;
    uint32_t attempts = 0;
    int long_code = long_job ? result_code(&c, long_job, 20000, &attempts) : -1;
    // A worker that stops answering: its job is re-run after the lease,
    // never sooner (lease 3 x HB, less the heartbeat it may have just
    // missed).
    uint64_t job = up ? submit(&c, "sleep", 1000, 0) : 0;
    bool running = job && wait_state(c.d, job, "running", 10000);
    int64_t frozen_at = dv_test_now_ms();
    if (running) {
        kill_pid(c.workers[0].pid, SIGSTOP);
    }
    bool moved = false;
    int64_t moved_at = 0;
    drover_job_info_t info;
    drover_error_t err;
    while (running && dv_test_now_ms() < frozen_at + 20000) {
        if (drover_job_info(c.d, job, &info, &err) == 0 &&
            strcmp(info.state, "running") != 0) {
            moved = true;
            moved_at = dv_test_now_ms();
            break;
        }
        sleep_ms(5);
    }
    if (running) {
        kill_pid(c.workers[0].pid, SIGKILL);
    }
    bool second = moved && worker_start(&c);
    uint32_t attempts2 = 0;
    int code2 = second ? result_code(&c, job, 20000, &attempts2) : -1;
    cluster_down(&c, code2 != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(long_code, 0);
    DV_CHECK_EQ(attempts, 1);
    DV_CHECK(running);
    DV_CHECK(moved);
    // The lease counts from its last heartbeat, up to HB before the freeze
    // (less 100 ms of scheduling slack on a loaded machine).
    DV_CHECK_GE(moved_at - frozen_at, 3 * HB - HB - 100);
    DV_CHECK(second);
    DV_CHECK_EQ(code2, 0);
    DV_CHECK_EQ(attempts2, 2);
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

static void
test_retries_into_dead_letters(void)
{
    const char *extra[] = {"--quarantine-after", "100", NULL};
    cluster_t c;
    bool up = cluster_up(&c, 1, extra);
    drover_job_t job = DROVER_JOB_INIT;
    job.kind = "sleep";
    job.sleep_ms = 1500;
    job.max_attempts = 2;
    job.backoff_ms = 1000; // held 500..1000 ms before the retry
    uint64_t id = 0;
    drover_error_t err;
    if (up) {
        drover_submit(c.d, &job, 10000, &id, &err);
    }
    bool k1 = id && kill_runner(&c, id, 1);
    bool retrying = k1 && wait_state(c.d, id, "retrying", 10000);
    bool k2 = retrying && kill_runner(&c, id, 2);
    int code = k2 ? result_code(&c, id, 20000, NULL) : 0;
    bool dead = k2 && wait_state(c.d, id, "dead", 1000);
    // A durable submit is acknowledged after a commit that holds all that
    // was staged before it: the dead letter is on disk now.
    uint64_t barrier = dead ? submit(&c, "echo", 0, 0) : 0;

    // Durable: still there after a crash of the broker.
    kill_pid(c.broker.pid, SIGKILL);
    dv_proc_stop(&c.broker, SIGKILL);
    bool back = dead && broker_start(&c);
    drover_dead_t *v = NULL;
    size_t n = 0;
    int list_rc = back ? drover_dead_list(c.d, NULL, 0, &v, &n, &err) : -1;
    uint64_t dead_job = n == 1 ? v[0].job : 0;
    int dead_code = n == 1 ? v[0].code : 0;
    size_t n_errors = n == 1 ? v[0].n_errors : 0;
    int first_error = n_errors ? v[0].errors[0].code : 0;
    drover_dead_free(&v, n);
    // Requeued: a new job that runs to the end (the worker is left alone).
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
    DV_CHECK_EQ(n_errors, 2); // both lost runs, with reasons
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
    const char *cli[] = {"submit",    "--echo", "10",    "--count", "5",
                         "--no-wait", "--idempotency-key",  "batch", "--queue", "q",
                         "--broker",  c.cep,    NULL};
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

// Past --memory-window a queue's jobs wait in the store only: they are
// counted, listed, cancelled and expired there, survive a crash, and run
// in FIFO order when their turn comes.
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
    uint64_t first = 0, id = 0, late = 0;
    drover_error_t err;
    for (int i = 0; up && i < N; i++) {
        job.deadline_ms = i == 500 ? 3000 : 0; // spilled, expires there
        drover_submit(c.d, &job, 10000, &id, &err);
        first = first ? first : id;
        late = i == 500 ? id : late;
    }
    drover_status_t st = {0};
    int st_rc = up ? drover_status(c.d, &st, &err) : -1;
    uint64_t queued = st.queued;
    if (st_rc == 0) {
        drover_status_clear(&st);
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
    cluster_down(&c, fifo.n != N - 2);
    DV_CHECK(up);
    DV_CHECK_EQ(st_rc, 0);
    DV_CHECK_EQ(queued, N);
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
}

static const dv_test_case_t cases[] = {
    {"priorities, then aging", test_priorities_and_aging},
    {"deadline, run timeout, cancel a running job",
     test_deadline_timeout_cancel},
    {"leases: long jobs run once, silent workers lose theirs after the lease",
     test_leases},
    {"retries with backoff into durable dead letters, requeue",
     test_retries_into_dead_letters},
    {"poison quarantine", test_poison_quarantine},
    {"idempotency keys across a restart, --no-wait, status --json",
     test_idempotency_and_no_wait},
    {"result streams: consumer acks, resume after a crash, live",
     test_result_streams},
    {"deep queues wait in the store", test_deep_queue_spills},

    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
