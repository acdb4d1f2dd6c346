// test_group_up — a broker group from the outside (issue 18): drover-worker
// given a list leaves a member whose connection drops at once (the socket
// monitor), not after its liveness heartbeats; `drover up --replicas 3`
// runs a group whose leader can be kill -9'd while jobs run through the
// endpoint list, and every job still completes exactly once.
#include <signal.h>
#include <stdint.h>

#include "drover.h"
#include "dv_test.h"
#include "dv_test_proc.h"

// DV_CHECK_RC for libdrover's error type.
#define CHECK_DRC(rc, want, errp)                                              \
    do {                                                                       \
        int rc_ = (rc), want_ = (want);                                        \
        if (rc_ != want_) {                                                    \
            DV_FAIL_("%s: got %d (%s), want %d (%s); reason: %s", #rc, rc_,    \
                     dv_err_name(rc_), want_, dv_err_name(want_),              \
                     (errp)->text);                                            \
            return;                                                            \
        }                                                                      \
    } while (0)

#define WAIT_MS 120000 // every result, generous for ASan on 2 cores
#define N_JOBS  40

// A broker alone on ipc:// endpoints under dir (name: its files' stem),
// heartbeats every hb_ms; true once READY.
static bool
broker_start(dv_proc_t *p,
             const char *dir,
             const char *name,
             const char *hb_ms,
             char *cep,
             char *wep,
             size_t size)
{
    char data[4200], log[64];
    snprintf(cep, size, "ipc://%s/%s.sock", dir, name);
    snprintf(wep, size, "ipc://%s/%s-w.sock", dir, name);
    snprintf(data, sizeof data, "%s/%s", dir, name);
    snprintf(log, sizeof log, "%s.log", name);
    const char *args[] = {"--client", cep,  "--worker",       wep,
                          "--data",   data, "--heartbeat-ms", hb_ms,
                          NULL};
    *p = dv_proc_start("DROVER_BROKER_BIN", args, dir, log);
    char ready[9000];
    return p->pid && dv_proc_wait_ready(p, ready, sizeof ready);
}

// A worker given [A, B] whose A is kill -9'd registers at B. Heartbeats of
// 5 s: leaving A by its liveness would take 15 s and log "no word from the
// broker"; the monitor leaves it at once and says the connection was lost.
static void
test_worker_leaves_dead_member(void)
{
    char *dir = dv_test_tmpdir();
    char acep[4300], awep[4300], bcep[4300], bwep[4300], list[9000];
    dv_proc_t a = {0, -1}, b = {0, -1}, w = {0, -1};
    bool up = broker_start(&a, dir, "a", "5000", acep, awep, sizeof acep) &&
              broker_start(&b, dir, "b", "5000", bcep, bwep, sizeof bcep);
    DV_CHECK(up);
    snprintf(list, sizeof list, "%s,%s", awep, bwep);
    const char *args[] = {"--broker",       list,   "--name", "wf",
                          "--heartbeat-ms", "5000", NULL};
    char ready[9000] = "";
    if (up) {
        w = dv_proc_start("DROVER_WORKER_BIN", args, dir, "worker.log");
        DV_CHECK(w.pid && dv_proc_wait_ready(&w, ready, sizeof ready));
        DV_CHECK(strstr(ready, awep) != NULL); // the first entry first
    }
    if (up && !dv_test_failed) {
        dv_proc_stop(&a, SIGKILL);
        drover_t *d = NULL;
        drover_error_t err = {0};
        CHECK_DRC(drover_connect(&d, bcep, 20000, &err), 0, &err);
        drover_job_t job = DROVER_JOB_INIT;
        job.payload = "b";
        job.payload_len = 1;
        drover_result_t *r = NULL;
        int rc = drover_run(d, &job, WAIT_MS, &r, &err);
        bool ok = rc == 0 && drover_result_ok(r) &&
                  strcmp(drover_result_worker(r), "wf") == 0;
        drover_result_destroy(&r);
        drover_destroy(&d);
        CHECK_DRC(rc, 0, &err);
        DV_CHECK(ok);
        DV_CHECK_EQ(dv_proc_stop(&w, SIGTERM), 0);
        char path[4300];
        snprintf(path, sizeof path, "%s/worker.log", dir);
        size_t len = 0;
        char *log = (char *)dv_test_read_file(path, &len);
        DV_CHECK(log != NULL);
        if (log) {
            DV_CHECK(strstr(log, "connection lost") != NULL);
            DV_CHECK(strstr(log, "no word from the broker") == NULL);
            free(log);
        }
    }
    if (dv_test_failed) {
        dv_proc_dump_log(dir, "worker.log");
    }
    dv_proc_stop(&w, SIGKILL);
    dv_proc_stop(&a, SIGKILL);
    DV_CHECK_EQ(dv_proc_stop(&b, SIGTERM), 0);
    dv_test_rmdir(dir);
    free(dir);
}

typedef struct {
    int count[N_JOBS]; // results per job
    int bad;           // results not ok
    int done;          // distinct jobs with a result
} tally_t;

static tally_t s_tally;

static void
on_result(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    int i = (int)(intptr_t)arg;
    s_tally.bad += !drover_result_ok(r);
    if (s_tally.count[i]++ == 0) {
        s_tally.done++;
    }
}

// The pid `drover up` said member id runs as, from its log (0: none).
static long
member_pid(const char *dir, uint64_t id)
{
    char path[4300], want[64];
    snprintf(path, sizeof path, "%s/up.log", dir);
    snprintf(want, sizeof want, "drover up: member %" PRIu64 " (pid ", id);
    size_t len = 0;
    char *log = (char *)dv_test_read_file(path, &len);
    const char *at = log ? strstr(log, want) : NULL;
    long pid = at ? strtol(at + strlen(want), NULL, 10) : 0;
    free(log);
    return pid;
}

// The group's leader as the members see it (0: none yet).
static uint64_t
leader_of(drover_t *d)
{
    drover_cluster_t cl;
    drover_error_t err = {0};
    uint64_t leader = 0;
    if (drover_cluster(d, &cl, &err) == 0 && cl.n_members == 3) {
        leader = cl.leader;
    }
    drover_cluster_clear(&cl);
    return leader;
}

// `drover up --replicas 3 --workers 1`: READY names the three members'
// client endpoints; `drover status` through the list shows them; jobs
// submitted through the list all complete once, across a kill -9 of the
// leader member; Ctrl-C stops everything.
// The checks of test_up_replicas_leader_killed while its `drover up` runs
// (a failed check returns here, and the caller still stops everything).
static void
group_checks(const char *dir, const char *list, drover_t **dp)
{
    size_t commas = 0;
    for (const char *p = list; *p; p++) {
        commas += *p == ',';
    }
    DV_CHECK_EQ(commas, 2);
    drover_t *d = NULL;
    drover_error_t err = {0};
    *dp = NULL;
    if (!dv_test_failed) {
        char out[4300];
        snprintf(out, sizeof out, "%s/status.txt", dir);
        const char *sargs[] = {"--broker", list, "status", NULL};
        DV_CHECK_EQ(dv_proc_run("DROVER_BIN", sargs, out, dir, "status.log"),
                    0);
        size_t len = 0;
        char *text = (char *)dv_test_read_file(out, &len);
        DV_CHECK(text && strstr(text, "leader") && strstr(text, "follower"));
        // Each member's committed index and lag, and the group's term.
        DV_CHECK(text && strstr(text, "COMMIT") && strstr(text, "LAG") &&
                 strstr(text, "broker group: term "));
        free(text);
        int rc = drover_connect(&d, list, 20000, &err);
        *dp = d; // the caller destroys it, whatever fails below
        CHECK_DRC(rc, 0, &err);
    }
    if (d && !dv_test_failed) {
        memset(&s_tally, 0, sizeof s_tally);
        for (int i = 0; i < N_JOBS; i++) {
            drover_job_t job = DROVER_JOB_INIT;
            job.kind = "sleep";
            job.sleep_ms = 50;
            CHECK_DRC(drover_submit_async(d, &job, on_result,
                                          (void *)(intptr_t)i, &err),
                      0, &err);
        }
        int64_t deadline = dv_test_now_ms() + WAIT_MS;
        while (s_tally.done < N_JOBS / 4 && dv_test_now_ms() < deadline) {
            DV_CHECK(drover_poll(d, 100, &err) >= 0);
        }
        uint64_t leader = leader_of(d);
        long pid = leader ? member_pid(dir, leader) : 0;
        DV_CHECK(pid > 0);
        if (pid > 0) {
            kill((pid_t)pid, SIGKILL); // a child of `drover up`, which we run
        }
        while (s_tally.done < N_JOBS && dv_test_now_ms() < deadline) {
            DV_CHECK(drover_poll(d, 200, &err) >= 0);
        }
        // A job run twice would show within this: they take 50 ms.
        DV_CHECK(drover_poll(d, 300, &err) >= 0);
        DV_CHECK_EQ(s_tally.done, N_JOBS);
        DV_CHECK_EQ(s_tally.bad, 0);
        for (int i = 0; i < N_JOBS; i++) {
            DV_CHECK_EQ(s_tally.count[i], 1);
        }
        // and the group goes on: a job submitted after the kill
        drover_job_t job = DROVER_JOB_INIT;
        job.payload = "after";
        job.payload_len = 5;
        drover_result_t *r = NULL;
        CHECK_DRC(drover_run(d, &job, WAIT_MS, &r, &err), 0, &err);
        DV_CHECK(drover_result_ok(r));
        drover_result_destroy(&r);
        DV_CHECK(leader_of(d) != leader);
    }
}

static void
test_up_replicas_leader_killed(void)
{
    char *dir = dv_test_tmpdir();
    char data[4200];
    snprintf(data, sizeof data, "%s/group", dir);
    const char *args[] = {"up", "--replicas", "3",  "--workers",
                          "1",  "--data",     data, NULL};
    dv_proc_t up = dv_proc_start("DROVER_BIN", args, dir, "up.log");
    char list[9000] = "";
    drover_t *d = NULL;
    if (up.pid && dv_proc_wait_ready(&up, list, sizeof list)) {
        group_checks(dir, list, &d);
    } else {
        DV_FAIL_("check failed: %s", "drover up printed READY");
    }
    drover_destroy(&d);
    DV_CHECK_EQ(dv_proc_stop(&up, SIGINT), 0);
    size_t len = 0;
    char path[4300];
    snprintf(path, sizeof path, "%s/up.log", dir);
    char *log = (char *)dv_test_read_file(path, &len);
    DV_CHECK(log && strstr(log, "exited (status 137)")); // the kill, said
    free(log);
    if (dv_test_failed) {
        dv_proc_dump_log(dir, "up.log");
    }
    dv_test_rmdir(dir);
    free(dir);
}

static const dv_test_case_t cases[] = {
    {"a worker leaves a dead member at once", test_worker_leaves_dead_member},
    {"up --replicas 3: the leader killed, every job done",
     test_up_replicas_leader_killed},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
