// test_cluster — `drover up` and the CLI commands that talk to it, as a
// user runs them: the local cluster comes up and prints READY, the commands
// answer (text and --json), a worker that dies is restarted, and SIGTERM
// stops everything cleanly; every worker applies its share of BLAS threads
// (drover up's, its own default, or --blas-threads), as it logs at start.
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dv_test.h"
#include "dv_test_proc.h"

typedef struct {
    char *dir;
    char ep[4300];
    dv_proc_t up;
} cluster_t;

// Run `drover ARGS... --broker EP` and return its stdout (caller frees), or
// NULL when it exited non-zero.
static char *
cli(cluster_t *c, const char *const *args)
{
    const char *argv[16];
    int n = 0;
    for (; args[n] && n < 12; n++) {
        argv[n] = args[n];
    }
    argv[n++] = "--broker";
    argv[n++] = c->ep;
    argv[n] = NULL;
    char out[4400];
    snprintf(out, sizeof out, "%s/out.txt", c->dir);
    int rc = dv_proc_run("DROVER_BIN", argv, out, c->dir, "cli.log");
    size_t len = 0;
    char *text = (char *)dv_test_read_file(out, &len);
    if (rc != 0) {
        fprintf(stderr, "  drover %s: exit %d\n", args[0], rc);
        dv_proc_dump_log(c->dir, "cli.log");
        free(text);
        return NULL;
    }
    return text ? text : calloc(1, 1);
}

static int
count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)); p++) {
        n++;
    }
    return n;
}

// PIDs of the children of pid (from /proc), into out; returns how many.
static int
children(pid_t pid, pid_t *out, int max)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid,
             (int)pid);
    FILE *f = fopen(path, "r");
    int n = 0;
    long v;
    while (f && n < max && fscanf(f, "%ld", &v) == 1) {
        out[n++] = (pid_t)v;
    }
    if (f) {
        fclose(f);
    }
    return n;
}

// True when pid's command line names drover-worker.
static bool
is_worker(pid_t pid)
{
    char path[64], cmd[4096] = "";
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(cmd, 1, sizeof cmd - 1, f) : 0;
    if (f) {
        fclose(f);
    }
    cmd[n] = '\0';
    return strstr(cmd, "drover-worker") != NULL;
}

// The BLAS threads each of `jobs` jobs on this host should get, worked out
// here from the documented rule (docs/ARCHITECTURE.md, BLAS threads): online
// cores / jobs, at least 1, lowered by a positive OPENBLAS_NUM_THREADS.
static int
blas_share(int jobs)
{
    int share = (int)sysconf(_SC_NPROCESSORS_ONLN) / jobs;
    share = share >= 1 ? share : 1;
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    int cap = env ? atoi(env) : 0;
    return cap >= 1 && cap < share ? cap : share;
}

// Workers' start lines in dir/log saying "compute: <jobs> jobs at once,
// <threads> BLAS threads each" (*all gets every compute line).
static int
compute_lines(const char *dir, const char *log, int jobs, int threads, int *all)
{
    char path[4400], want[96];
    snprintf(path, sizeof path, "%s/%s", dir, log);
    snprintf(want, sizeof want,
             "compute: %d jobs at once, %d BLAS threads each", jobs, threads);
    size_t len = 0;
    char *text = (char *)dv_test_read_file(path, &len);
    int n = count(text, want);
    *all = count(text, "compute: ");
    free(text);
    return n;
}

// The lease of this test's workers: 3 heartbeats of 400 ms.
#define LEASE_MS 1200

// Wait until the worker SIGKILLed at killed_ms (dv_test_now_ms) is replaced:
// `drover workers --json` lists exactly two workers and both have been
// heard from since the kill. The dead one stays listed until its lease
// ends, under the same name as its replacement, so a count alone passes
// before the replacement joins; its idle time, though, can only grow from
// the kill on. A listing asked for `elapsed` ms after the kill shows the
// dead one idle for at least elapsed minus the time its last heartbeat
// took to be read (LEASE_MS is a generous bound for that): an entry idle
// for less than elapsed - LEASE_MS is a live process.
static bool
wait_replaced(cluster_t *c, int64_t killed_ms)
{
    int64_t end = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
    while (dv_test_now_ms() < end) {
        int64_t elapsed = dv_test_now_ms() - killed_ms;
        const char *args[] = {"workers", "--json", NULL};
        char *out = cli(c, args);
        int listed = out ? count(out, "\"name\":") : -1, fresh = 0;
        for (const char *p = out; p && (p = strstr(p, "\"idle_ms\":")); p++) {
            fresh += strtoll(p + 10, NULL, 10) < elapsed - LEASE_MS;
        }
        free(out);
        if (listed == 2 && fresh == 2) {
            return true;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static void
test_up_commands_restart_and_stop(void)
{
    cluster_t c = {0};
    c.dir = dv_test_tmpdir();
    snprintf(c.ep, sizeof c.ep, "ipc://%s/c.sock", c.dir);
    char data[4300];
    snprintf(data, sizeof data, "%s/data", c.dir);
    const char *args[] = {"up",  "--workers", "2",  "--endpoint",
                          c.ep,  "--data",    data, "--heartbeat-ms",
                          "400", NULL};
    c.up = dv_proc_start("DROVER_BIN", args, c.dir, "up.log");
    char ready[9000] = "";
    bool up = c.up.pid && dv_proc_wait_ready(&c.up, ready, sizeof ready);
    bool ready_names_ep = strcmp(ready, c.ep) == 0;

    // The commands, text and JSON.
    const char *status_args[] = {"status", "--json", NULL};
    char *status = up ? cli(&c, status_args) : NULL;
    bool status_ok = status && strstr(status, "\"workers\":2");
    free(status);
    const char *submit_args[] = {"submit", "--echo",  "64",    "--count",
                                 "500",    "--queue", "loadq", NULL};
    char *submit = up ? cli(&c, submit_args) : NULL;
    bool submit_ok = submit && strstr(submit, "500 jobs: 500 done, 0 failed");
    free(submit);
    const char *show_args[] = {"jobs", "show", "1", "--json", NULL};
    char *show = up ? cli(&c, show_args) : NULL;
    bool show_ok = show && strstr(show, "\"state\":\"done\"");
    free(show);
    const char *list_jobs[] = {"jobs",    "list", "--state", "done",
                               "--limit", "10",   "--json",  NULL};
    char *jl = up ? cli(&c, list_jobs) : NULL;
    bool jobs_listed = jl && count(jl, "\"state\":\"done\"") == 10 &&
                       strstr(jl, "\"job\":500,");
    free(jl);
    const char *bad_state[] = {"jobs", "list", "--state", "bogus", NULL};
    char *bs = up ? cli(&c, bad_state) : NULL;
    bool bad_refused = bs == NULL;
    free(bs);
    const char *res_args[] = {"jobs", "result", "1", NULL};
    char *res = up ? cli(&c, res_args) : NULL;
    bool result_ok = res && strlen(res) == 64 && res[0] == 'x';
    free(res);
    char model[4400];
    snprintf(model, sizeof model, "%s/iris.drvm", c.dir);
    const char *train_args[] = {
        "local",  "train",   "--data", dv_test_data("iris_train.csv"),
        "--algo", "softmax", "--out",  model,
        NULL};
    int train_rc =
        up ? dv_proc_run("DROVER_BIN", train_args, NULL, c.dir, "cli.log") : -1;
    const char *push_args[] = {"models", "push", model, NULL};
    char *push = train_rc == 0 ? cli(&c, push_args) : NULL;
    bool push_ok = push && strstr(push, "stored iris@1");
    free(push);
    const char *list_args[] = {"models", "list", "--json", NULL};
    char *list = up ? cli(&c, list_args) : NULL;
    bool list_ok = list && count(list, "\"name\":\"iris\"") == 1;
    free(list);
    const char *show_model[] = {"models", "show", "iris", NULL};
    char *shown = up ? cli(&c, show_model) : NULL;
    bool shown_ok = shown && strstr(shown, "petal_length_cm");
    free(shown);
    const char *status_q[] = {"status", NULL};
    char *st = up ? cli(&c, status_q) : NULL;
    bool queue_listed = st && strstr(st, "\n  loadq ");
    free(st);
    // A command against no broker fails clearly (exit 1).
    char none[4400];
    snprintf(none, sizeof none, "ipc://%s/nobody.sock", c.dir);
    const char *no_args[] = {"status", "--broker", none, NULL};
    int no_rc = dv_proc_run("DROVER_BIN", no_args, NULL, c.dir, "none.log");

    // Kill one worker: drover up starts another.
    pid_t kids[8];
    int n_kids = up ? children(c.up.pid, kids, 8) : 0;
    pid_t victim = 0, broker = 0;
    for (int i = 0; i < n_kids; i++) {
        if (is_worker(kids[i])) {
            victim = kids[i];
        } else {
            broker = kids[i];
        }
    }
    bool killed = n_kids == 3 && victim && broker; // broker + 2 workers
    int64_t killed_ms = dv_test_now_ms();
    if (killed) {
        kill(victim, SIGKILL);
    }
    bool back = killed && wait_replaced(&c, killed_ms);
    pid_t after[8];
    int n_after = up ? children(c.up.pid, after, 8) : 0;
    bool replaced = n_after == 3;
    for (int i = 0; i < n_after; i++) {
        replaced = replaced && after[i] != victim;
    }
    replaced = replaced && kill(broker, 0) == 0; // the same broker

    // SIGTERM: drover up drains workers, stops the broker, exits 0.
    int exit_rc = dv_proc_stop(&c.up, SIGTERM);
    bool all_gone = true;
    for (int i = 0; i < n_after; i++) {
        all_gone = all_gone && kill(after[i], 0) != 0;
    }
    // Each worker started (2, then the replacement) took drover up's share
    // for 2 workers x concurrency 1, not all the cores.
    int compute_all = 0;
    int shared = compute_lines(c.dir, "up.log", 1, blas_share(2), &compute_all);
    if (!(up && back && exit_rc == 0)) {
        dv_proc_dump_log(c.dir, "up.log");
    }
    dv_test_rmdir(c.dir);
    free(c.dir);
    DV_CHECK(up);
    DV_CHECK(ready_names_ep);
    DV_CHECK(status_ok);
    DV_CHECK(submit_ok);
    DV_CHECK(show_ok);
    DV_CHECK(jobs_listed);
    DV_CHECK(bad_refused);
    DV_CHECK(result_ok);
    DV_CHECK_EQ(train_rc, 0);
    DV_CHECK(push_ok);
    DV_CHECK(list_ok);
    DV_CHECK(shown_ok);
    DV_CHECK(queue_listed);
    DV_CHECK_EQ(no_rc, 1);
    DV_CHECK(killed);
    DV_CHECK(back);
    DV_CHECK(replaced);
    DV_CHECK_EQ(exit_rc, 0);
    DV_CHECK(all_gone);
    DV_CHECK_GE(shared, 3);
    DV_CHECK_EQ(compute_all, shared);
}

// drover-worker alone: its default is cores / concurrency (at least 1,
// lowered by OPENBLAS_NUM_THREADS), --blas-threads wins over it, and a bad
// value is a usage error.
static void
test_worker_blas_threads(void)
{
    char *dir = dv_test_tmpdir();
    char cep[4300], wep[4300], ready[9000];
    snprintf(cep, sizeof cep, "ipc://%s/c.sock", dir);
    snprintf(wep, sizeof wep, "ipc://%s/w.sock", dir);
    const char *bargs[] = {"--client", cep, "--worker", wep, NULL};
    dv_proc_t broker = dv_proc_start("DROVER_BROKER_BIN", bargs, dir, "b.log");
    bool up = broker.pid && dv_proc_wait_ready(&broker, ready, sizeof ready);
    // name, concurrency, --blas-threads (NULL: default), expected threads
    struct {
        const char *log, *conc, *flag;
        int want;
    } w[] = {
        {"w1.log", "1", NULL, blas_share(1)},
        {"w2.log", "2", NULL, blas_share(2)},
        {"w3.log", "1", "1", 1},
    };
    bool ready_all = up;
    int lines[3] = {0}, all[3] = {0};
    for (int i = 0; i < 3 && up; i++) {
        const char *wargs[] = {"--broker",
                               wep,
                               "--concurrency",
                               w[i].conc,
                               w[i].flag ? "--blas-threads" : NULL,
                               w[i].flag,
                               NULL};
        dv_proc_t p = dv_proc_start("DROVER_WORKER_BIN", wargs, dir, w[i].log);
        ready_all =
            ready_all && p.pid && dv_proc_wait_ready(&p, ready, sizeof ready);
        dv_proc_stop(&p, SIGKILL);
        lines[i] =
            compute_lines(dir, w[i].log, atoi(w[i].conc), w[i].want, &all[i]);
    }
    const char *bad[] = {"--broker", wep, "--blas-threads", "0", NULL};
    int bad_rc = dv_proc_run("DROVER_WORKER_BIN", bad, NULL, dir, "bad.log");
    const char *help[] = {"--help", NULL};
    char out[4400];
    snprintf(out, sizeof out, "%s/help.txt", dir);
    int help_rc = dv_proc_run("DROVER_WORKER_BIN", help, out, dir, "bad.log");
    size_t len = 0;
    char *text = (char *)dv_test_read_file(out, &len);
    bool help_ok = text && strstr(text, "--blas-threads N");
    free(text);
    dv_proc_stop(&broker, SIGTERM);
    if (!ready_all) {
        dv_proc_dump_log(dir, "b.log");
    }
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK(up);
    DV_CHECK(ready_all);
    for (int i = 0; i < 3; i++) {
        DV_CHECK_EQ(lines[i], 1);
        DV_CHECK_EQ(all[i], 1);
    }
    DV_CHECK_EQ(bad_rc, 2);
    DV_CHECK_EQ(help_rc, 0);
    DV_CHECK(help_ok);
}

static const dv_test_case_t cases[] = {
    {"drover up: commands, restart, stop", test_up_commands_restart_and_stop},
    {"drover-worker: BLAS threads default, flag, bad value",
     test_worker_blas_threads},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
