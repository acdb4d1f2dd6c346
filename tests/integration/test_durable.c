// test_durable — nothing accepted is lost: the real broker with a data dir
// is SIGKILLed while a producer streams jobs; after a restart on the same
// store every job the producer saw acknowledged ends with its result (from
// the store if it had finished, run again if not), ids are never reused,
// and a damaged store stops the broker with a clear error instead of
// silently dropping data. Through the broker's fault seam (it kills itself
// between a result's finish and its commit): nobody sees a result before
// it is stored, so a job has one outcome, and stream seqs stay unique.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "drover.h"
#include "dv_proto.h"
#include "dv_test.h"
#include "dv_test_proc.h"
#include "dv_test_worker.h"
#include "dv_wire.h"

#define N_JOBS    10000
#define MIN_KILLS 3     // workers killed in the random-kill stream, at least
#define STREAM_MS 30000 // ... within this long
#define KILL_AT   4000  // acknowledgements seen before the broker is killed
#define HB        "400"

typedef struct {
    char *dir;
    char data[4300], cep[4300], wep[4300];
    dv_proc_t broker, workers[2];
} cluster_t;

// A fresh folder with the data dir and ipc endpoints in it.
static void
cluster_init(cluster_t *c)
{
    memset(c, 0, sizeof *c);
    c->dir = dv_test_tmpdir();
    snprintf(c->data, sizeof c->data, "%s/data", c->dir);
    snprintf(c->cep, sizeof c->cep, "ipc://%s/c.sock", c->dir);
    snprintf(c->wep, sizeof c->wep, "ipc://%s/w.sock", c->dir);
}

static bool
broker_start_with(cluster_t *c,
                  const char *extra1,
                  const char *extra2,
                  const char *extra3,
                  const char *extra4)
{
    const char *args[] = {"--client", c->cep,  "--worker",       c->wep,
                          "--data",   c->data, "--heartbeat-ms", HB,
                          extra1,     extra2,  extra3,           extra4,
                          NULL};
    c->broker = dv_proc_start("DROVER_BROKER_BIN", args, c->dir, "broker.log");
    char ready[9000];
    return c->broker.pid && dv_proc_wait_ready(&c->broker, ready, sizeof ready);
}

static bool
broker_start(cluster_t *c)
{
    return broker_start_with(c, NULL, NULL, NULL, NULL);
}

#define WORKER_SLOTS 18 // --concurrency 2 + --prefetch 16

static bool
worker_start(cluster_t *c, int i)
{
    char name[8], log[16];
    snprintf(name, sizeof name, "w%d", i);
    snprintf(log, sizeof log, "worker%d.log", i);
    const char *args[] = {
        "--broker",      c->wep, "--name",         name, "--prefetch", "16",
        "--concurrency", "2",    "--heartbeat-ms", HB,   NULL};
    c->workers[i] = dv_proc_start("DROVER_WORKER_BIN", args, c->dir, log);
    char ready[9000];
    return c->workers[i].pid &&
           dv_proc_wait_ready(&c->workers[i], ready, sizeof ready);
}

static bool
workers_start(cluster_t *c)
{
    for (int i = 0; i < 2; i++) {
        if (!worker_start(c, i)) {
            return false;
        }
    }
    return true;
}

// Read what has arrived; record accepted job ids by rid.
static size_t
drain(void *sock, uint64_t *job_of_rid, int wait_ms)
{
    size_t got = 0;
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    while (zmq_poll(&item, 1, wait_ms) > 0) {
        dv_wire_msg_t in;
        while (dv_wire_recv(sock, false, &in) == 1) {
            dv_msg_t *m = NULL;
            dv_error_t err = {0};
            if (dv_msg_decode(&m, zmq_msg_data(&in.header),
                              zmq_msg_size(&in.header), in.frames, in.n_payload,
                              NULL, &err) == 0 &&
                dv_msg_type(m) == DV_MSG_ACCEPTED && dv_msg_rid(m) >= 1 &&
                dv_msg_rid(m) <= N_JOBS) {
                uint64_t job = 0;
                dv_msg_uint(m, "job", &job, &err);
                job_of_rid[dv_msg_rid(m)] = job;
                got++;
            }
            dv_msg_destroy(&m);
            dv_wire_msg_close(&in);
        }
        wait_ms = 0;
    }
    return got;
}

static void
test_kill_broker_mid_stream(void)
{
    cluster_t c;
    cluster_init(&c);
    bool up = broker_start(&c) && workers_start(&c);
    uint64_t *job_of_rid = calloc(N_JOBS + 1, sizeof(uint64_t));
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    dv_test_no_hwm(sock);
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(sock, c.cep);
    size_t acked = 0;
    int sent = 0;
    bool killed = false;
    for (int i = 1; up && i <= N_JOBS && !killed; i++) {
        char payload[32];
        snprintf(payload, sizeof payload, "job-%d", i);
        dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, (uint64_t)i);
        dv_msgw_str(w, "queue", "durable");
        dv_msgw_str(w, "kind", "echo");
        size_t hlen = 0;
        const uint8_t *h = dv_msgw_bytes(w, &hlen);
        dv_frame_t f = {(const uint8_t *)payload, strlen(payload)};
        dv_wire_send(sock, NULL, 0, h, hlen, &f, 1);
        dv_msgw_destroy(&w);
        sent++;
        // Keep about 200 submits in flight: commits are under way when the
        // kill lands.
        acked += drain(sock, job_of_rid, sent - (int)acked > 200 ? 100 : 0);
        if (acked >= KILL_AT) {
            kill(c.broker.pid, SIGKILL); // mid-stream, commits in flight
            dv_proc_stop(&c.broker, SIGKILL);
            killed = true;
        }
    }
    if (up && !killed) { // it acknowledged everything first: still kill it
        acked += drain(sock, job_of_rid, 2000);
        kill(c.broker.pid, SIGKILL);
        dv_proc_stop(&c.broker, SIGKILL);
    }
    zmq_close(sock);
    zmq_ctx_term(ctx);

    // Restart on the same store; the workers find it by themselves.
    bool again = up && broker_start(&c);
    drover_t *d = NULL;
    drover_error_t err = {0};
    if (again && drover_connect(&d, c.cep, 10000, &err) != 0) {
        again = false;
    }
    size_t ok = 0, missing = 0, wrong = 0;
    uint64_t max_id = 0;
    for (int i = 1; again && i <= N_JOBS; i++) {
        uint64_t id = job_of_rid[i];
        if (!id) {
            continue; // never acknowledged: no promise was made
        }
        max_id = id > max_id ? id : max_id;
        drover_result_t *r = NULL;
        if (drover_wait(d, id, 60000, &r, &err) != 0) {
            if (missing++ < 3) {
                fprintf(stderr, "  job %llu (rid %d): %s\n",
                        (unsigned long long)id, i, err.text);
            }
            continue;
        }
        char want[32];
        snprintf(want, sizeof want, "job-%d", i);
        size_t len = 0;
        const void *p = drover_result_payload(r, &len);
        if (drover_result_ok(r) && len == strlen(want) &&
            memcmp(p, want, len) == 0) {
            ok++;
        } else {
            wrong++;
        }
        drover_result_destroy(&r);
    }
    // Ids continue after the old ones.
    uint64_t new_id = 0;
    drover_job_t job = DROVER_JOB_INIT;
    job.payload = "after";
    job.payload_len = 5;
    int submit_rc = again ? drover_submit(d, &job, 10000, &new_id, &err) : -1;
    drover_destroy(&d);
    printf("  %d sent, %zu acknowledged before the kill, %zu done after the "
           "restart\n",
           sent, acked, ok);
    for (int i = 0; i < 2; i++) {
        dv_proc_stop(&c.workers[i], SIGTERM);
    }
    int exit_rc = again ? dv_proc_stop(&c.broker, SIGTERM) : -1;

    // A truncated store: the broker refuses to start, saying why.
    char file[4400];
    snprintf(file, sizeof file, "%s/store/data.mdb", c.data);
    size_t flen = 0;
    unsigned char *bytes = dv_test_read_file(file, &flen);
    if (bytes) {
        dv_test_write_file(file, bytes, flen / 3);
    }
    free(bytes);
    const char *args[] = {"--client", c.cep,  "--worker", c.wep,
                          "--data",   c.data, NULL};
    int refused =
        dv_proc_run("DROVER_BROKER_BIN", args, NULL, c.dir, "refused.log");
    char log[4400];
    snprintf(log, sizeof log, "%s/refused.log", c.dir);
    size_t llen = 0;
    char *text = (char *)dv_test_read_file(log, &llen);
    bool says_why = text && strstr(text, "truncated");
    free(text);
    if (missing || wrong || exit_rc != 0) {
        dv_proc_dump_log(c.dir, "broker.log");
    }
    free(job_of_rid);
    dv_test_rmdir(c.dir);
    free(c.dir);
    DV_CHECK(up);
    DV_CHECK(acked >= KILL_AT);
    DV_CHECK(again);
    DV_CHECK_EQ(missing, 0);
    DV_CHECK_EQ(wrong, 0);
    DV_CHECK_EQ(ok, acked);
    DV_CHECK_EQ(submit_rc, 0);
    DV_CHECK(new_id > max_id);
    DV_CHECK_EQ(exit_rc, 0);
    DV_CHECK_EQ(refused, 1);
    DV_CHECK(says_why);
}

static int
submit(drover_t *d, const char *queue, size_t bytes, drover_error_t *err)
{
    static char payload[4096];
    memset(payload, 'p', sizeof payload);
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = queue;
    job.payload = payload;
    job.payload_len = bytes;
    uint64_t id = 0;
    return drover_submit(d, &job, 10000, &id, err);
}

// A burst of submits, every one in the broker before the first commit is
// done: the jobs accepted but not yet committed count as waiting, so
// exactly --max-queued of them are accepted, the rest refused with
// DV_EQUEUEFULL (never more: a commit in flight hides none).
typedef struct {
    int accepted, full, other;
} burst_t;

static void
on_burst(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    burst_t *b = arg;
    const char *text = "";
    int code = drover_result_ok(r) ? 0 : drover_result_error(r, &text);
    b->accepted += code == 0;
    b->full += code == DV_EQUEUEFULL;
    b->other += code != 0 && code != DV_EQUEUEFULL;
}

static void
test_burst_stops_at_max_queued(void)
{
    enum { LIMIT = 50, BURST = 400 };
    cluster_t c;
    cluster_init(&c);
    bool up = broker_start_with(&c, "--max-queued", "50", NULL, NULL);
    drover_t *d = NULL;
    drover_error_t err = {0};
    up = up && drover_connect(&d, c.cep, 10000, &err) == 0;
    burst_t b = {0};
    drover_job_t jobs[BURST];
    uint64_t ids[BURST] = {0};
    for (int i = 0; i < BURST; i++) {
        jobs[i] = (drover_job_t)DROVER_JOB_INIT;
        jobs[i].queue = "burst";
        jobs[i].payload = "x";
        jobs[i].payload_len = 1;
    }
    // Half one submit each (not waited for), half in one submit_many
    // behind them: both paths meet jobs of the other still uncommitted.
    int sent = 0;
    for (int i = 0; up && sent == 0 && i < BURST / 2; i++) {
        sent = drover_submit_nowait(d, &jobs[i], on_burst, &b, &err);
    }
    int many = up && sent == 0 ? drover_submit_many(d, jobs + BURST / 2,
                                                    BURST / 2, 10000, ids, &err)
                               : -1;
    int64_t end = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
    while (up && sent == 0 && b.accepted + b.full + b.other < BURST / 2 &&
           dv_test_now_ms() < end) {
        drover_poll(d, 100, &err);
    }
    int many_accepted = 0;
    for (int i = 0; i < BURST / 2; i++) {
        many_accepted += ids[i] != 0;
    }
    drover_status_t st;
    int srd = up ? drover_status(d, &st, &err) : -1;
    uint64_t queued = srd == 0 ? st.queued : 0;
    if (srd == 0) {
        drover_status_clear(&st);
    }
    drover_destroy(&d);
    int exit_rc = up ? dv_proc_stop(&c.broker, SIGTERM) : -1;
    dv_test_rmdir(c.dir);
    free(c.dir);
    DV_CHECK(up);
    DV_CHECK_EQ(sent, 0);
    // The first LIMIT submits fill the queue; everything after is refused.
    DV_CHECK_EQ(b.accepted, LIMIT);
    DV_CHECK_EQ(b.full, BURST / 2 - LIMIT);
    DV_CHECK_EQ(b.other, 0);
    DV_CHECK_EQ(many, DV_EQUEUEFULL);
    DV_CHECK_EQ(many_accepted, 0);
    DV_CHECK_EQ(srd, 0);
    DV_CHECK_EQ(queued, LIMIT);
    DV_CHECK_EQ(exit_rc, 0);
}

// Past --max-queued / --max-queued-bytes a submit is refused at once with
// DV_EQUEUEFULL and the numbers; other queues are not affected; once
// workers drain the queue, submits are accepted again.
static void
test_full_queue_refuses_at_once(void)
{
    cluster_t c;
    cluster_init(&c);
    bool up = broker_start_with(&c, "--max-queued", "5", "--max-queued-bytes",
                                "2000");
    drover_t *d = NULL;
    drover_error_t err = {0};
    up = up && drover_connect(&d, c.cep, 10000, &err) == 0;
    int first5 = 0;
    for (int i = 0; up && i < 5; i++) {
        first5 += submit(d, "q", 100, &err) == 0;
    }
    int sixth = up ? submit(d, "q", 100, &err) : 0;
    bool says_count = strstr(err.text, "limit is 5") != NULL;
    int other = up ? submit(d, "other", 100, &err) : -1;
    int big1 = up ? submit(d, "big", 1500, &err) : -1;
    int big2 = up ? submit(d, "big", 1500, &err) : 0;
    bool says_bytes = strstr(err.text, "max-queued-bytes") != NULL;
    // Workers drain the queues; then q takes jobs again.
    bool workers = up && workers_start(&c);
    drover_status_t st;
    int64_t end = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
    bool drained = false;
    while (workers && !drained && dv_test_now_ms() < end) {
        if (drover_status(d, &st, &err) == 0) {
            drained = st.queued == 0 && st.running == 0;
            drover_status_clear(&st);
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int again = drained ? submit(d, "q", 100, &err) : -1;
    drover_destroy(&d);
    for (int i = 0; i < 2; i++) {
        dv_proc_stop(&c.workers[i], SIGTERM);
    }
    int exit_rc = dv_proc_stop(&c.broker, SIGTERM);
    dv_test_rmdir(c.dir);
    free(c.dir);
    DV_CHECK(up);
    DV_CHECK_EQ(first5, 5);
    DV_CHECK_EQ(sixth, DV_EQUEUEFULL);
    DV_CHECK(says_count);
    DV_CHECK_EQ(other, 0);
    DV_CHECK_EQ(big1, 0);
    DV_CHECK_EQ(big2, DV_EQUEUEFULL);
    DV_CHECK(says_bytes);
    DV_CHECK(drained);
    DV_CHECK_EQ(again, 0);
    DV_CHECK_EQ(exit_rc, 0);
}

// Cancel a queued and a running job: each ends at once as DV_ECANCELED,
// is never run (again), and stays cancelled after a kill -9 and restart.
static void
test_cancel_sticks(void)
{
    cluster_t c;
    cluster_init(&c);
    bool up = broker_start(&c);
    drover_t *d = NULL;
    drover_error_t err = {0};
    up = up && drover_connect(&d, c.cep, 10000, &err) == 0;
    uint64_t ids[4] = {0};
    drover_job_t job = DROVER_JOB_INIT;
    job.payload = "x";
    job.payload_len = 1;
    for (int i = 0; up && i < 3; i++) {
        drover_submit(d, &job, 10000, &ids[i], &err);
    }
    char was[16] = "";
    int cancel_q = up ? drover_job_cancel(d, ids[1], was, &err) : -1;
    bool was_queued = strcmp(was, "queued") == 0;
    drover_result_t *r = NULL;
    int code_q = 0;
    if (up && drover_wait(d, ids[1], 10000, &r, &err) == 0) {
        code_q = drover_result_error(r, NULL);
    }
    drover_result_destroy(&r);
    int again = up ? drover_job_cancel(d, ids[1], NULL, &err) : 0;
    // A worker runs the other two, then holds a fourth (a long sleep).
    bool workers = up && workers_start(&c);
    int done = 0;
    for (int i = 0; workers && i < 3; i += 2) {
        if (drover_wait(d, ids[i], 30000, &r, &err) == 0) {
            done += drover_result_ok(r);
        }
        drover_result_destroy(&r);
    }
    // An hour-long sleep: it stays running (its worker heartbeats) however
    // slow the machine, where a frozen worker would be declared dead one
    // lease (1.2 s) later.
    job.kind = "sleep";
    job.sleep_ms = 3600000;
    if (workers) {
        drover_submit(d, &job, 10000, &ids[3], &err);
    }
    // Wait until the broker has handed it to a worker.
    drover_job_info_t info = {0};
    int64_t end = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
    while (workers && dv_test_now_ms() < end &&
           (drover_job_info(d, ids[3], &info, &err) != 0 ||
            strcmp(info.state, "running") != 0)) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    bool ran = strcmp(info.state, "running") == 0;
    int cancel_r = ran ? drover_job_cancel(d, ids[3], was, &err) : -1;
    bool was_running = strcmp(was, "running") == 0;
    int code_r = 0;
    if (ran && drover_wait(d, ids[3], 10000, &r, &err) == 0) {
        code_r = drover_result_error(r, NULL);
    }
    drover_result_destroy(&r);
    drover_destroy(&d);
    // kill -9 and restart: both cancels stand; nothing runs them.
    kill(c.broker.pid, SIGKILL);
    dv_proc_stop(&c.broker, SIGKILL);
    bool restarted =
        up && broker_start(&c) && drover_connect(&d, c.cep, 10000, &err) == 0;
    int after_q = 0, after_r = 0;
    if (restarted && drover_wait(d, ids[1], 10000, &r, &err) == 0) {
        after_q = drover_result_error(r, NULL);
    }
    drover_result_destroy(&r);
    if (restarted && drover_wait(d, ids[3], 10000, &r, &err) == 0) {
        after_r = drover_result_error(r, NULL);
    }
    drover_result_destroy(&r);
    drover_status_t st = {0};
    int st_rc = restarted ? drover_status(d, &st, &err) : -1;
    uint64_t queued = st.queued;
    if (st_rc == 0) {
        drover_status_clear(&st);
    }
    drover_destroy(&d);
    for (int i = 0; i < 2; i++) {
        dv_proc_stop(&c.workers[i], SIGTERM);
    }
    int exit_rc = restarted ? dv_proc_stop(&c.broker, SIGTERM) : -1;
    dv_test_rmdir(c.dir);
    free(c.dir);
    DV_CHECK(up);
    DV_CHECK_EQ(cancel_q, 0);
    DV_CHECK(was_queued);
    DV_CHECK_EQ(code_q, DV_ECANCELED);
    DV_CHECK_EQ(again, DV_ENOENT);
    DV_CHECK(workers);
    DV_CHECK_EQ(done, 2);
    DV_CHECK(ran);
    DV_CHECK_EQ(cancel_r, 0);
    DV_CHECK(was_running);
    DV_CHECK_EQ(code_r, DV_ECANCELED);
    DV_CHECK(restarted);
    DV_CHECK_EQ(after_q, DV_ECANCELED);
    DV_CHECK_EQ(after_r, DV_ECANCELED);
    DV_CHECK_EQ(st_rc, 0);
    DV_CHECK_EQ(queued, 0);
    DV_CHECK_EQ(exit_rc, 0);
}

// durability "none": acknowledged at once and never stored, so a restart
// forgets it; a "commit" job beside it survives; ids are not reused.
static void
test_durability_none_is_forgotten(void)
{
    cluster_t c;
    cluster_init(&c);
    bool up = broker_start(&c);
    drover_t *d = NULL;
    drover_error_t err = {0};
    up = up && drover_connect(&d, c.cep, 10000, &err) == 0;
    drover_job_t job = DROVER_JOB_INIT;
    job.payload = "x";
    job.payload_len = 1;
    uint64_t kept = 0, gone = 0, later = 0;
    int rc1 = up ? drover_submit(d, &job, 10000, &kept, &err) : -1;
    job.durability = "none";
    int rc2 = up ? drover_submit(d, &job, 10000, &gone, &err) : -1;
    job.durability = "sometimes";
    int rc3 = up ? drover_submit(d, &job, 10000, &later, &err) : -1;
    // A durable submit after it: its acknowledgement means a commit holding
    // a next id past the "none" job's is on disk. Then crash.
    job.durability = NULL;
    uint64_t sync_id = 0;
    int rc_sync = up ? drover_submit(d, &job, 10000, &sync_id, &err) : -1;
    drover_destroy(&d);
    kill(c.broker.pid, SIGKILL);
    dv_proc_stop(&c.broker, SIGKILL);
    bool again =
        up && broker_start(&c) && drover_connect(&d, c.cep, 10000, &err) == 0;
    drover_job_info_t info = {0};
    int kept_rc = again ? drover_job_info(d, kept, &info, &err) : -1;
    bool kept_queued = strcmp(info.state, "queued") == 0;
    int gone_rc = again ? drover_job_info(d, gone, &info, &err) : 0;
    job.durability = NULL;
    int rc4 = again ? drover_submit(d, &job, 10000, &later, &err) : -1;
    drover_destroy(&d);
    int exit_rc = again ? dv_proc_stop(&c.broker, SIGTERM) : -1;
    dv_test_rmdir(c.dir);
    free(c.dir);
    DV_CHECK(up);
    DV_CHECK_EQ(rc1, 0);
    DV_CHECK_EQ(rc2, 0);
    DV_CHECK_EQ(rc3, DV_EINVAL);
    DV_CHECK_EQ(rc_sync, 0);
    DV_CHECK(again);
    DV_CHECK_EQ(kept_rc, 0);
    DV_CHECK(kept_queued);
    DV_CHECK_EQ(gone_rc, DV_ENOENT);
    DV_CHECK_EQ(rc4, 0);
    DV_CHECK(later > gone);
    DV_CHECK_EQ(exit_rc, 0);
}

// Workers SIGKILLed at random while a producer streams jobs: every job
// ends done with its own payload, and the re-runs are bounded by what the
// killed workers held (at most their slots per kill).
typedef struct {
    size_t done, wrong;
    uint64_t reruns;
} chaos_t;

static void
on_chaos_result(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    chaos_t *ch = arg;
    size_t len = 0;
    const char *p = drover_result_payload(r, &len);
    if (drover_result_ok(r) && len == 5 && memcmp(p, "chaos", 5) == 0) {
        ch->done++;
        ch->reruns += drover_result_attempts(r) - 1;
    } else {
        ch->wrong++;
    }
}

static void
test_workers_killed_at_random(void)
{
    cluster_t c;
    cluster_init(&c);
    bool up = broker_start_with(&c, "--quarantine-after", "100", NULL, NULL) &&
              workers_start(&c);
    drover_t *d = NULL;
    drover_error_t err = {0};
    up = up && drover_connect(&d, c.cep, 10000, &err) == 0;
    chaos_t ch = {0};
    unsigned seed = 12345;
    int kills = 0, restarts_ok = 0;
    int64_t next_kill = dv_test_now_ms() + 200;
    // The stream goes on past N_JOBS until MIN_KILLS workers were killed
    // (a fast build can finish N_JOBS before the first kill), within
    // STREAM_MS.
    int64_t stream_end = dv_test_now_ms() + STREAM_MS;
    size_t submitted = 0;
    for (int i = 0; up && (i < N_JOBS || (kills < MIN_KILLS &&
                                          dv_test_now_ms() < stream_end));
         i++) {
        drover_job_t job = DROVER_JOB_INIT;
        job.queue = "chaos";
        job.payload = "chaos";
        job.payload_len = 5;
        job.max_attempts = 100;
        job.backoff_ms = -1;
        submitted +=
            drover_submit_async(d, &job, on_chaos_result, &ch, &err) == 0;
        while (drover_pending(d) > 500) {
            drover_poll(d, 100, &err);
        }
        if (kills < 8 && dv_test_now_ms() >= next_kill) {
            int w = (int)(rand_r(&seed) % 2);
            if (c.workers[w].pid <= 0) {
                break; // a restart failed (checked below); never kill(0)
            }
            kill(c.workers[w].pid, SIGKILL);

            dv_proc_stop(&c.workers[w], SIGKILL);
            kills++;
            restarts_ok += worker_start(&c, w);
            next_kill = dv_test_now_ms() + 150 + rand_r(&seed) % 300;
        }
    }
    int64_t end = dv_test_now_ms() + 120000;
    while (up && drover_pending(d) > 0 && dv_test_now_ms() < end) {
        drover_poll(d, 1000, &err);
    }
    size_t pending = up ? drover_pending(d) : 0;
    drover_destroy(&d);
    printf("  %d workers killed; %zu jobs done, %llu re-runs\n", kills, ch.done,
           (unsigned long long)ch.reruns);
    for (int i = 0; i < 2; i++) {
        dv_proc_stop(&c.workers[i], SIGTERM);
    }
    int exit_rc = up ? dv_proc_stop(&c.broker, SIGTERM) : -1;
    if (ch.done != submitted) {
        dv_proc_dump_log(c.dir, "broker.log");
    }
    dv_test_rmdir(c.dir);
    free(c.dir);
    DV_CHECK(up);
    DV_CHECK(kills >= MIN_KILLS);
    DV_CHECK_EQ(restarts_ok, kills);
    DV_CHECK_EQ(pending, 0);
    DV_CHECK(submitted >= N_JOBS);
    DV_CHECK_EQ(ch.done, submitted);
    DV_CHECK_EQ(ch.wrong, 0);
    DV_CHECK(ch.reruns <= (uint64_t)kills * WORKER_SLOTS);
    DV_CHECK_EQ(exit_rc, 0);
}

// A full disk (here: a file size limit on the broker) refuses submits with
// DV_ENOSPC and a clear reason; what was accepted before is all still there
// after a kill -9 and a restart without the limit, and runs with its
// payload.
static void
test_full_disk_refuses(void)
{
    cluster_t c;
    cluster_init(&c);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4 << 20; // the broker's files: 4 MiB at most
    setrlimit(RLIMIT_FSIZE, &lim);
    bool up = broker_start(&c); // inherits the limit
    setrlimit(RLIMIT_FSIZE, &old);
    drover_t *d = NULL;
    drover_error_t err = {0};
    up = up && drover_connect(&d, c.cep, 10000, &err) == 0;
    static char payload[32 << 10];
    memset(payload, 'z', sizeof payload);
    drover_job_t job = DROVER_JOB_INIT;
    job.payload = payload;
    job.payload_len = sizeof payload;
    uint64_t ids[1000];
    int accepted = 0, refused_code = 0;
    char refused_text[256] = "";
    for (int i = 0; up && i < 1000 && !refused_code; i++) {
        if (drover_submit(d, &job, 10000, &ids[accepted], &err) == 0) {
            accepted++;
        } else {
            refused_code = err.code;
            snprintf(refused_text, sizeof refused_text, "%s", err.text);
        }
    }
    drover_status_t st = {0};
    int st_rc = up ? drover_status(d, &st, &err) : -1;
    uint64_t queued = st.queued;
    if (st_rc == 0) {
        drover_status_clear(&st);
    }
    // kill -9, then restart on the same dir without the limit: every
    // accepted job is read back (and runs below, with its payload).
    drover_destroy(&d);
    if (up) {
        dv_proc_stop(&c.broker, SIGKILL);
    }
    bool again =
        up && broker_start(&c) && drover_connect(&d, c.cep, 10000, &err) == 0;
    int st2_rc = again ? drover_status(d, &st, &err) : -1;
    uint64_t queued2 = st.queued;
    if (st2_rc == 0) {
        drover_status_clear(&st);
    }
    bool workers = again && workers_start(&c);
    int ok = 0;
    for (int i = 0; workers && i < accepted; i++) {
        drover_result_t *r = NULL;
        size_t len = 0;
        if (drover_wait(d, ids[i], 30000, &r, &err) == 0 &&
            drover_result_ok(r) && drover_result_payload(r, &len) &&
            len == sizeof payload) {
            ok++;
        }
        drover_result_destroy(&r);
    }
    drover_destroy(&d);
    printf("  %d accepted before the store was full: %s\n", accepted,
           refused_text);
    for (int i = 0; i < 2; i++) {
        dv_proc_stop(&c.workers[i], SIGTERM);
    }
    int exit_rc = again ? dv_proc_stop(&c.broker, SIGTERM) : -1;
    if (ok != accepted) {
        dv_proc_dump_log(c.dir, "broker.log");
    }
    dv_test_rmdir(c.dir);
    free(c.dir);
    DV_CHECK(up);
    DV_CHECK(accepted > 10);
    DV_CHECK_EQ(refused_code, DV_ENOSPC);
    DV_CHECK(strstr(refused_text, "no space") != NULL);
    DV_CHECK_EQ(st_rc, 0);
    DV_CHECK_EQ(queued, (uint64_t)accepted);
    DV_CHECK(again);
    DV_CHECK_EQ(st2_rc, 0);
    DV_CHECK_EQ(queued2, (uint64_t)accepted); // all read back after it
    DV_CHECK(workers);
    DV_CHECK_EQ(ok, accepted);
    DV_CHECK_EQ(exit_rc, 0);
}

// ------------------------------------ results go out once they are stored

// What a raw client received: one row per message.
typedef struct {
    int type;          // DV_MSG_*
    uint64_t rid;      // the request it answers
    uint64_t job;      // accepted, result
    uint64_t seq;      // streamed result: its place in the stream
    uint64_t attempts; // result
    uint64_t acked;    // ok to follow / ack
    bool duplicate;    // accepted for a key seen before
    char worker[16];   // result: who ran it ("" when not told)
} row_t;

typedef struct {
    void *ctx, *sock;
    row_t rows[64];
    size_t n;
} raw_t;

static void
raw_open(raw_t *r, const char *endpoint)
{
    memset(r, 0, sizeof *r);
    r->ctx = zmq_ctx_new();
    r->sock = zmq_socket(r->ctx, ZMQ_DEALER);
    dv_test_no_hwm(r->sock);
    int linger = 0;
    zmq_setsockopt(r->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(r->sock, endpoint);
}

static void
raw_close(raw_t *r)
{
    zmq_close(r->sock);
    zmq_ctx_term(r->ctx);
}

// Keep what arrives within wait_ms (0: what is there).
static void
raw_read(raw_t *r, int wait_ms)
{
    zmq_pollitem_t item = {r->sock, 0, ZMQ_POLLIN, 0};
    dv_wire_msg_t in;
    while (zmq_poll(&item, 1, wait_ms) > 0 &&
           dv_wire_recv(r->sock, false, &in) == 1) {
        dv_msg_t *m = NULL;
        if (r->n < 64 && dv_msg_decode(&m, zmq_msg_data(&in.header),
                                       zmq_msg_size(&in.header), in.frames,
                                       in.n_payload, NULL, NULL) == 0) {
            row_t *row = &r->rows[r->n++];
            row->type = (int)dv_msg_type(m);
            row->rid = dv_msg_rid(m);
            dv_msg_uint_or(m, "job", 0, &row->job, NULL);
            dv_msg_uint_or(m, "seq", 0, &row->seq, NULL);
            dv_msg_uint_or(m, "attempts", 0, &row->attempts, NULL);
            dv_msg_uint_or(m, "acked", 0, &row->acked, NULL);
            row->duplicate = dv_msg_has(m, "duplicate");
            if (dv_msg_has(m, "worker")) {
                dv_msg_str(m, "worker", row->worker, sizeof row->worker, NULL);
            }
        }
        dv_msg_destroy(&m);
        dv_wire_msg_close(&in);
        wait_ms = 0;
    }
}

// The first row answering rid (of type, unless -1; about job, unless 0)
// among those received from the first-th on; NULL when none.
static const row_t *
raw_find(const raw_t *r, size_t first, int type, uint64_t rid, uint64_t job)
{
    for (size_t i = first; i < r->n; i++) {
        const row_t *row = &r->rows[i];
        if (row->rid == rid && (type < 0 || row->type == type) &&
            (!job || row->job == job)) {
            return row;
        }
    }
    return NULL;
}

// raw_find, reading what comes until it is there or the deadline.
static const row_t *
raw_await(raw_t *r, int type, uint64_t rid, uint64_t job)
{
    int64_t end = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
    const row_t *row = NULL;
    size_t looked = 0;
    while (!(row = raw_find(r, looked, type, rid, job)) &&
           dv_test_now_ms() < end && r->n < 64) {
        looked = r->n;
        raw_read(r, 100);
    }
    return row;
}

static void
raw_submit(raw_t *r, uint64_t rid, const char *key, const char *durability)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, rid);
    dv_msgw_str(w, "queue", "fq");
    dv_msgw_str(w, "kind", "echo");
    dv_msgw_str(w, "idempotency_key", key);
    if (durability) {
        dv_msgw_str(w, "durability", durability);
    }
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_frame_t f = {(const uint8_t *)key, strlen(key)};
    dv_wire_send(r->sock, NULL, 0, h, len, &f, 1);
    dv_msgw_destroy(&w);
}

// follow (seq 0) or ack seq, as consumer c1 of queue fq; or result_get of
// job (type DV_MSG_RESULT_GET).
static void
raw_ask(raw_t *r, dv_msg_type_t type, uint64_t rid, uint64_t n)
{
    dv_msgw_t *w = dv_msgw_new(type, rid);
    if (type == DV_MSG_RESULT_GET) {
        dv_msgw_uint(w, "job", n);
    } else {
        dv_msgw_str(w, "queue", "fq");
        dv_msgw_str(w, "consumer", "c1");
    }
    if (type == DV_MSG_ACK) {
        dv_msgw_uint(w, "seq", n);
    }
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_wire_send(r->sock, NULL, 0, h, len, NULL, 0);
    dv_msgw_destroy(&w);
}

// Streamed results (rows answering follow_rid) that give one seq to two
// jobs, in a and b together.
static int
seqs_reused(const raw_t *a, const raw_t *b, uint64_t rid_a, uint64_t rid_b)
{
    const raw_t *rs[2] = {a, b};
    const uint64_t rids[2] = {rid_a, rid_b};
    int reused = 0;
    for (int x = 0; x < 2; x++) {
        for (size_t i = 0; i < rs[x]->n; i++) {
            const row_t *p = &rs[x]->rows[i];
            for (int y = x; p->rid == rids[x] && p->seq && y < 2; y++) {
                for (size_t k = x == y ? i + 1 : 0; k < rs[y]->n; k++) {
                    const row_t *q = &rs[y]->rows[k];
                    reused += q->rid == rids[y] && q->seq == p->seq &&
                              q->job != p->job;
                }
            }
        }
    }
    return reused;
}

// Results of job in r that are not its one recorded outcome (the run on
// worker, with attempts).
static int
other_outcomes(const raw_t *r,
               uint64_t job,
               const char *worker,
               uint64_t attempts)
{
    int n = 0;
    for (size_t i = 0; i < r->n; i++) {
        const row_t *row = &r->rows[i];
        n += row->type == DV_MSG_RESULT && row->job == job &&
             (strcmp(row->worker, worker) != 0 || row->attempts != attempts);
    }
    return n;
}

// The broker stops (SIGKILL, through its fault seam) between a durable
// job's finish on w0 and the commit of its result: nobody saw that result
// — not its submitter, not a stream follower — so after the restart the
// job runs again, on w1, and its one outcome is that run's. Stream seqs stay
// unique (a durability-none result's seq too), an idempotency key still names
// the job, and the follower's ack of what it saw before the kill is taken.
static void
test_results_wait_for_their_commit(void)
{
    cluster_t c;
    cluster_init(&c);
    setenv("DROVER_BROKER_FAULT", "kill-before-result-commit:4", 1);
    bool up = broker_start(&c); // inherits the seam
    unsetenv("DROVER_BROKER_FAULT");
    up = up && worker_start(&c, 0);
    raw_t r, r2;
    raw_open(&r, c.cep);
    raw_ask(&r, DV_MSG_FOLLOW, 100, 0);
    up = up && raw_await(&r, DV_MSG_OK, 100, 0);
    // Three durable jobs, then one in memory only: stream seqs 1..4.
    uint64_t jobs[7] = {0};
    const char *keys[7] = {"", "k1", "k2", "k3", "k4", "k5", "k6"};
    for (uint64_t i = 1; up && i <= 4; i++) {
        raw_submit(&r, i, keys[i], i == 4 ? "none" : NULL);
        const row_t *a = raw_await(&r, DV_MSG_ACCEPTED, i, 0);
        jobs[i] = a ? a->job : 0;
        up = jobs[i] && raw_await(&r, DV_MSG_RESULT, i, 0) &&
             raw_await(&r, DV_MSG_RESULT, 100, jobs[i]);
    }
    raw_ask(&r, DV_MSG_ACK, 101, 1);
    up = up && raw_await(&r, DV_MSG_OK, 101, 0);
    // The fourth durable result: the broker kills itself before its commit.
    raw_submit(&r, 5, keys[5], NULL);
    const row_t *a5 = up ? raw_await(&r, DV_MSG_ACCEPTED, 5, 0) : NULL;
    jobs[5] = a5 ? a5->job : 0;
    // Signal 0: only wait for it to die (-1: by a signal). w0 goes too: the
    // run after the restart is then told apart by its worker.
    int died = a5 ? dv_proc_stop(&c.broker, 0) : 0;
    dv_proc_stop(&c.workers[0], SIGKILL);
    char log[4400];
    snprintf(log, sizeof log, "%s/broker.log", c.dir);
    size_t llen = 0;
    char *text = (char *)dv_test_read_file(log, &llen);
    bool seam = text && strstr(text, "fault seam: SIGKILL") != NULL;
    free(text);
    raw_read(&r, 0);
    const row_t *seen5 = raw_find(&r, 0, DV_MSG_RESULT, 5, 0); // none
    uint64_t last_seq = 0;
    for (size_t i = 0; i < r.n; i++) {
        last_seq = r.rows[i].rid == 100 && r.rows[i].seq > last_seq
                       ? r.rows[i].seq
                       : last_seq;
    }

    // Restarted (no seam): the follower acks what it saw, then follows on.
    bool again = died == -1 && broker_start(&c) && worker_start(&c, 1);
    raw_open(&r2, c.cep);
    raw_ask(&r2, DV_MSG_ACK, 102, last_seq);
    const row_t *ack = again ? raw_await(&r2, -1, 102, 0) : NULL;
    raw_ask(&r2, DV_MSG_FOLLOW, 103, 0);
    const row_t *follow = again ? raw_await(&r2, DV_MSG_OK, 103, 0) : NULL;
    const row_t *s5 =
        follow ? raw_await(&r2, DV_MSG_RESULT, 103, jobs[5]) : NULL;
    raw_ask(&r2, DV_MSG_RESULT_GET, 104, jobs[5]);
    const row_t *g5 = s5 ? raw_await(&r2, -1, 104, 0) : NULL;
    raw_submit(&r2, 105, keys[5], NULL); // the same key: the same job
    const row_t *dup = s5 ? raw_await(&r2, DV_MSG_ACCEPTED, 105, 0) : NULL;
    raw_submit(&r2, 106, keys[6], NULL);
    const row_t *a6 = s5 ? raw_await(&r2, DV_MSG_ACCEPTED, 106, 0) : NULL;
    jobs[6] = a6 ? a6->job : 0;
    const row_t *s6 = a6 ? raw_await(&r2, DV_MSG_RESULT, 103, jobs[6]) : NULL;
    raw_read(&r, 0); // anything late from before the kill
    uint64_t attempts = s5 ? s5->attempts : 0;
    int outcomes = other_outcomes(&r, jobs[5], "w1", attempts) +
                   other_outcomes(&r2, jobs[5], "w1", attempts);
    int reused = seqs_reused(&r, &r2, 100, 103);
    printf("  seqs before the kill 1..%llu, job %llu's result after it: seq "
           "%llu, attempt %llu on %s\n",
           (unsigned long long)last_seq, (unsigned long long)jobs[5],
           (unsigned long long)(s5 ? s5->seq : 0), (unsigned long long)attempts,
           s5 ? s5->worker : "-");
    raw_close(&r);
    raw_close(&r2);
    dv_proc_stop(&c.workers[1], SIGTERM);
    int exit_rc = -1;
    if (again) {
        exit_rc = dv_proc_stop(&c.broker, SIGTERM);
    } else { // the seam did not fire: not left running
        dv_proc_stop(&c.broker, SIGKILL);
    }
    if (!s6 || outcomes || reused) {
        dv_proc_dump_log(c.dir, "broker.log");
    }
    dv_test_rmdir(c.dir);
    free(c.dir);
    DV_CHECK(up);
    DV_CHECK(jobs[5] != 0);
    DV_CHECK_EQ(died, -1);
    DV_CHECK(seam);
    DV_CHECK(seen5 == NULL);  // the submitter saw no outcome before the kill
    DV_CHECK_EQ(last_seq, 4); // nor did the follower
    DV_CHECK(again);
    DV_CHECK(ack != NULL);
    DV_CHECK_EQ(ack ? ack->type : -1, (int)DV_MSG_OK);
    DV_CHECK_EQ(ack ? ack->acked : 0, 4);
    DV_CHECK(follow != NULL);
    DV_CHECK(s5 != NULL);
    DV_CHECK_EQ(s5 ? s5->seq : 0, 5); // not the memory-only job's 4
    DV_CHECK(s5 && strcmp(s5->worker, "w1") == 0); // the run after it
    DV_CHECK(attempts >= 1);
    DV_CHECK(g5 != NULL);
    DV_CHECK_EQ(g5 ? g5->type : -1, (int)DV_MSG_RESULT);
    DV_CHECK(dup != NULL);
    DV_CHECK_EQ(dup ? dup->job : 0, jobs[5]);
    DV_CHECK(dup && dup->duplicate);
    DV_CHECK(s6 != NULL);
    DV_CHECK_EQ(s6 ? s6->seq : 0, 6);
    DV_CHECK_EQ(outcomes, 0); // one outcome for the job, seen anywhere
    DV_CHECK_EQ(reused, 0);
    DV_CHECK_EQ(exit_rc, 0);
}

static const dv_test_case_t cases[] = {
    {"a full disk refuses, loses nothing", test_full_disk_refuses},

    {"kill -9 the broker mid-stream", test_kill_broker_mid_stream},
    {"workers killed at random", test_workers_killed_at_random},

    {"a full queue refuses at once", test_full_queue_refuses_at_once},
    {"a burst of submits stops at --max-queued",
     test_burst_stops_at_max_queued},
    {"cancel sticks across a restart", test_cancel_sticks},
    {"durability none is forgotten", test_durability_none_is_forgotten},
    {"results wait for their commit: kill -9 between finish and commit",
     test_results_wait_for_their_commit},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
