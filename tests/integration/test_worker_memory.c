// test_worker_memory — what a worker holds stays within its budgets,
// whatever the jobs it is sent name: real broker, real worker, real
// jobs, the worker's own log as the witness of what it fetched and let go.
// Data sets and models: bytes held within --data-memory and
// --model-memory, fetches included; at most DV_WORKER_MODEL_FETCHES model
// files asked for at once.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover.h"
#include "dv_err.h"
#include "dv_limits.h"
#include "dv_model.h"
#include "dv_test.h"
#include "dv_test_cluster.h"
#include "dv_test_proc.h"

#define N_SETS    4
#define SET_ROWS  50000  // ~400 KB each: two fit 1 MiB, three do not
#define BIG_ROWS  150000 // ~1.2 MB: more than the whole budget
#define BUDGET_MB "1"
#define BUDGET    ((uint64_t)1 << 20)

// A CSV x,y of rows lines (y = 3x + 1, so a line fits it) at path; its
// size in bytes, 0 when it could not be written.
static size_t
write_lines(const char *path, size_t rows)
{
    size_t cap = 16 + rows * 16, len = 0;
    char *csv = malloc(cap);
    if (!csv) {
        return 0;
    }
    len += (size_t)snprintf(csv, cap, "x,y\n");
    for (size_t i = 0; i < rows; i++) {
        int x = (int)(i % 1000);
        len += (size_t)snprintf(csv + len, cap - len, "%d,%d\n", x, 3 * x + 1);
    }
    int rc = dv_test_write_file(path, csv, len);
    free(csv);
    return rc == 0 ? len : 0;
}

// The most bytes of `what` ("data set" or "model") the worker's log says
// it held at once: each "fetching WHAT K (N bytes)" adds N (a fetch holds
// its whole size from its first chunk), each "WHAT K evicted" or "WHAT K
// not loaded" takes K's back. -1 when the log cannot be read.
static int64_t
most_held(const char *log_path, const char *what, int *fetches, int *evictions)
{
    size_t len = 0;
    char *log = (char *)dv_test_read_file(log_path, &len);
    if (!log) {
        return -1;
    }
    struct {
        char key[64];
        uint64_t bytes;
    } seen[32];
    size_t n_seen = 0;
    int64_t held = 0, most = 0;
    *fetches = *evictions = 0;
    char fetching[64], gone[64];
    snprintf(fetching, sizeof fetching, "fetching %s ", what);
    snprintf(gone, sizeof gone, "worker: %s ", what);
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        char key[64];
        uint64_t bytes = 0;
        const char *f = strstr(line, fetching);
        const char *e = strstr(line, gone);
        if (f && sscanf(f + strlen(fetching), "%63s (%" SCNu64 " bytes)", key,
                        &bytes) == 2) {
            if (n_seen < sizeof seen / sizeof seen[0]) {
                snprintf(seen[n_seen].key, sizeof seen[n_seen].key, "%s", key);
                seen[n_seen++].bytes = bytes;
            }
            held += (int64_t)bytes;
            most = held > most ? held : most;
            (*fetches)++;
        } else if (e && (strstr(e, " evicted") || strstr(e, " not loaded")) &&
                   sscanf(e + strlen(gone), "%63s", key) == 1) {
            for (size_t i = n_seen; i-- > 0;) {
                if (strcmp(seen[i].key, key) == 0) {
                    held -= (int64_t)seen[i].bytes;
                    seen[i].key[0] = '\0'; // fetched again: a new entry
                    break;
                }
            }
            *evictions += strstr(e, " evicted") != NULL;
        }
    }
    free(log);
    return most;
}

// Submit the n jobs in one message and wait for each: codes[i] its
// result's error (0: done; -1: no result), last_text the last one's
// reason (512 bytes), the others' printed when they fail. Returns the
// submit's rc.
static int
run_all(dv_tcluster_t *c,
        const drover_job_t *jobs,
        size_t n,
        int *codes,
        char *last_text)
{
    uint64_t ids[16] = {0};
    drover_error_t err = {0};
    if (n > 16) {
        return -1;
    }
    int submitted =
        drover_submit_many(c->d, jobs, n, DV_TCLUSTER_WAIT_MS, ids, &err);
    for (size_t i = 0; i < n; i++) {
        codes[i] = -1;
        drover_result_t *r = NULL;
        if (submitted == 0 &&
            drover_wait(c->d, ids[i], DV_TCLUSTER_WAIT_MS, &r, &err) == 0) {
            const char *text = "";
            codes[i] = drover_result_error(r, &text);
            if (i + 1 == n) {
                snprintf(last_text, 512, "%s", text);
            } else if (codes[i]) {
                fprintf(stderr, "  job %zu: %s\n", i, text);
            }
            drover_result_destroy(&r);
        }
    }
    return submitted;
}

// --data-memory bounds what a worker holds in data sets, fetches in flight
// included. Four evaluate jobs on four ~400 KB data sets reach a worker
// with a 1 MiB budget at once (it holds five jobs): before, it fetched all
// four together (1.6 MB); now a fetch starts when it fits beside what the
// cache holds in use and on its way, idle ones going first, so at most two
// are held at a time, and every job still succeeds. A job on a data set
// larger than the whole budget fails at once, DV_ENOMEM naming the flag,
// without a fetch.
static void
test_data_sets_within_data_memory(void)
{
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 0, "0");
    const char *wargs[] = {"--broker",
                           c.wep,
                           "--name",
                           "w0",
                           "--concurrency",
                           "1",
                           "--prefetch",
                           "4",
                           "--data-memory",
                           BUDGET_MB,
                           "--heartbeat-ms",
                           DV_TCLUSTER_HEARTBEAT_MS,
                           NULL};
    char ready[9000], path[4300], logp[4300];
    snprintf(logp, sizeof logp, "%s/worker0.log", c.dir);
    drover_error_t err = {0};
    // The model evaluated: a line trained on a small set (fetched first,
    // then idle in the cache: the first to go when room is needed).
    snprintf(path, sizeof path, "%s/small.csv", c.dir);
    bool written = up && write_lines(path, 100) > 0;
    drover_dataset_t info = {0};
    int pushes =
        written ? drover_dataset_push(c.d, path, "small", &info, &err) : -1;
    char name[16];
    size_t sizes[N_SETS] = {0};
    for (int i = 0; i < N_SETS && pushes == 0; i++) {
        snprintf(path, sizeof path, "%s/set%d.csv", c.dir, i);
        snprintf(name, sizeof name, "set%d", i);
        sizes[i] = write_lines(path, SET_ROWS);
        pushes =
            sizes[i] ? drover_dataset_push(c.d, path, name, &info, &err) : -1;
    }
    snprintf(path, sizeof path, "%s/big.csv", c.dir);
    size_t big = pushes == 0 ? write_lines(path, BIG_ROWS) : 0;
    pushes = big ? drover_dataset_push(c.d, path, "big", &info, &err) : -1;
    if (pushes != 0) {
        fprintf(stderr, "  push: %s\n", err.text);
    }
    c.workers[0] = pushes == 0 ? dv_proc_start("DROVER_WORKER_BIN", wargs,
                                               c.dir, "worker0.log")
                               : (dv_proc_t){0, -1};
    bool worker = c.workers[0].pid &&
                  dv_proc_wait_ready(&c.workers[0], ready, sizeof ready);
    int trained = -1;
    if (worker) {
        drover_train_t t = {0};
        t.model = "line";
        t.algo = "ols";
        t.dataset = "small";
        drover_result_t *r = NULL;
        if (drover_train(c.d, &t, DV_TCLUSTER_WAIT_MS, &r, &err) == 0) {
            const char *text = "";
            trained = drover_result_error(r, &text);
            drover_result_destroy(&r);
        }
    }
    // All five at once; the big one last.
    drover_job_t jobs[N_SETS + 1];
    char names[N_SETS + 1][16];
    for (int i = 0; i <= N_SETS; i++) {
        drover_job_t j = DROVER_JOB_INIT;
        j.kind = "evaluate";
        j.model = "line";
        j.max_attempts = 1;
        if (i < N_SETS) {
            snprintf(names[i], sizeof names[i], "set%d", i);
        } else {
            snprintf(names[i], sizeof names[i], "big");
        }
        j.dataset = names[i];
        jobs[i] = j;
    }
    int codes[N_SETS + 1];
    char big_text[512] = "";
    int submitted =
        trained == 0 ? run_all(&c, jobs, N_SETS + 1, codes, big_text) : -1;
    int fetches = 0, evictions = 0;
    int64_t most = most_held(logp, "data set", &fetches, &evictions);
    int exit_rc = dv_tcluster_down(&c, most < 0 || most > (int64_t)BUDGET);
    fprintf(stderr,
            "  held at most %" PRId64 " bytes; %d fetches, %d evicted\n", most,
            fetches, evictions);
    DV_CHECK(up);
    DV_CHECK_EQ(pushes, 0);
    DV_CHECK(worker);
    DV_CHECK_EQ(trained, 0);
    DV_CHECK_EQ(submitted, 0);
    for (int i = 0; i < N_SETS; i++) {
        DV_CHECK(sizes[i] * 2 < BUDGET && sizes[i] * 3 > BUDGET);
        DV_CHECK_EQ(codes[i], 0);
    }
    DV_CHECK(big > BUDGET);
    DV_CHECK_EQ(codes[N_SETS], DV_ENOMEM);
    DV_CHECK(strstr(big_text, "--data-memory") != NULL);
    DV_CHECK(most > 0);
    DV_CHECK(most <= (int64_t)BUDGET);
    DV_CHECK_EQ(fetches, N_SETS + 1); // small, then each set once; not big
    DV_CHECK(evictions >= 2);         // room was made, not found
    DV_CHECK_EQ(exit_rc, 0);
}

// The most model fetches the worker's log shows out at once: "fetching
// model K" adds one, "model K loaded" or "model K not loaded" ends it.
static int
most_model_fetches(const char *log_path, int *started)
{
    size_t len = 0;
    char *log = (char *)dv_test_read_file(log_path, &len);
    if (!log) {
        return -1;
    }
    int out = 0, most = 0;
    *started = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        if (strstr(line, "worker: fetching model ")) {
            out++;
            (*started)++;
            most = out > most ? out : most;
        } else if (strstr(line, "worker: model ") &&
                   (strstr(line, " loaded (") || strstr(line, "not loaded"))) {
            out--;
        }
    }
    free(log);
    return most;
}

// Six infer jobs on six different models reach a worker at once (it holds
// six: one computing, five prefetched): it asks for at most
// DV_WORKER_MODEL_FETCHES model files at a time, the others wait their
// turn, and every job runs.
static void
test_model_fetches_take_turns(void)
{
    enum { MODELS = 6 };
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 0, "0");
    const char *wargs[] = {
        "--broker",   c.wep, "--name",         "w0",
        "--prefetch", "5",   "--heartbeat-ms", DV_TCLUSTER_HEARTBEAT_MS,
        NULL};
    char logp[4300], ready[9000], name[32];
    snprintf(logp, sizeof logp, "%s/worker0.log", c.dir);
    int pushed = 0;
    for (int i = 0; up && i < MODELS; i++) {
        size_t widths[] = {4, 3};
        dv_act_t acts[] = {DV_ACT_SOFTMAX};
        snprintf(name, sizeof name, "m%d", i);
        pushed +=
            dv_tcluster_push_model(
                c.d, dv_test_model(DV_TASK_CLASSIFICATION, 1, widths, acts, 3),
                name) == 0;
    }
    c.workers[0] = pushed == MODELS ? dv_proc_start("DROVER_WORKER_BIN", wargs,
                                                    c.dir, "worker0.log")
                                    : (dv_proc_t){0, -1};
    bool worker = c.workers[0].pid &&
                  dv_proc_wait_ready(&c.workers[0], ready, sizeof ready);
    float x[4] = {1, 2, 3, 4};
    drover_job_t jobs[MODELS];
    char names[MODELS][32];
    uint64_t ids[MODELS] = {0};
    for (int i = 0; i < MODELS; i++) {
        drover_job_t j = DROVER_JOB_INIT;
        j.kind = "infer";
        snprintf(names[i], sizeof names[i], "m%d", i);
        j.model = names[i];
        j.input = x;
        j.rows = 1;
        j.cols = 4;
        jobs[i] = j;
    }
    drover_error_t err = {0};
    int submitted = worker ? drover_submit_many(c.d, jobs, MODELS,
                                                DV_TCLUSTER_WAIT_MS, ids, &err)
                           : -1;
    int done = 0;
    for (int i = 0; submitted == 0 && i < MODELS; i++) {
        drover_result_t *r = NULL;
        if (drover_wait(c.d, ids[i], DV_TCLUSTER_WAIT_MS, &r, &err) == 0) {
            const char *text = "";
            done += drover_result_error(r, &text) == 0;
            drover_result_destroy(&r);
        }
    }
    int started = 0;
    int most = most_model_fetches(logp, &started);
    printf("  %d model fetches, at most %d at once\n", started, most);
    int exit_rc = dv_tcluster_down(&c, most < 1 || done != MODELS);
    DV_CHECK(up);
    DV_CHECK_EQ(pushed, MODELS);
    DV_CHECK(worker);
    DV_CHECK_EQ(submitted, 0);
    DV_CHECK_EQ(done, MODELS);
    DV_CHECK_EQ(started, MODELS);
    DV_CHECK(most >= 1);
    DV_CHECK(most <= DV_WORKER_MODEL_FETCHES);
    DV_CHECK_EQ(exit_rc, 0);
}

// An MLP classifier of `width` features, one hidden layer as wide, 3
// classes: a file of about width * width * 4 bytes, pushed as name.
static int
push_wide(dv_tcluster_t *c, size_t width, const char *name)
{
    size_t widths[] = {width, width, 3};
    dv_act_t acts[] = {DV_ACT_RELU, DV_ACT_SOFTMAX};
    return dv_tcluster_push_model(
        c->d, dv_test_model(DV_TASK_CLASSIFICATION, 2, widths, acts, 3), name);
}

// --model-memory bounds what a worker holds in models, fetches in flight
// included (1.9: a run names the file's size). Six infer jobs on six
// ~410 KB models reach a worker with a 1 MiB budget at once (it holds six):
// before, two fetches went out whatever the cache held in use, and a third
// went as soon as one arrived (1.2 MB); now one goes when it fits beside
// the models cached and on their way, idle ones going first, and every
// job still succeeds. A job on a model larger than the whole budget fails
// at once, DV_ENOMEM naming the flag, without a fetch.
static void
test_models_within_model_memory(void)
{
    enum { MODELS = 6, WIDE = 320, HUGE = 600 };
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 0, "0");
    const char *wargs[] = {"--broker",
                           c.wep,
                           "--name",
                           "w0",
                           "--prefetch",
                           "5",
                           "--model-memory",
                           BUDGET_MB,
                           "--heartbeat-ms",
                           DV_TCLUSTER_HEARTBEAT_MS,
                           NULL};
    char logp[4300], ready[9000], names[MODELS + 1][32];
    snprintf(logp, sizeof logp, "%s/worker0.log", c.dir);
    int pushed = 0;
    for (int i = 0; up && i < MODELS; i++) {
        snprintf(names[i], sizeof names[i], "wide%d", i);
        pushed += push_wide(&c, WIDE, names[i]) == 0;
    }
    snprintf(names[MODELS], sizeof names[MODELS], "huge");
    pushed += up && push_wide(&c, HUGE, names[MODELS]) == 0;
    c.workers[0] =
        pushed == MODELS + 1
            ? dv_proc_start("DROVER_WORKER_BIN", wargs, c.dir, "worker0.log")
            : (dv_proc_t){0, -1};
    bool worker = c.workers[0].pid &&
                  dv_proc_wait_ready(&c.workers[0], ready, sizeof ready);
    static float x[HUGE];
    for (int i = 0; i < HUGE; i++) {
        x[i] = (float)(i % 7) / 7;
    }
    drover_job_t jobs[MODELS + 1];
    for (int i = 0; i <= MODELS; i++) {
        drover_job_t j = DROVER_JOB_INIT;
        j.kind = "infer";
        j.model = names[i];
        j.input = x;
        j.rows = 1;
        j.cols = i < MODELS ? WIDE : HUGE;
        j.max_attempts = 1;
        jobs[i] = j;
    }
    int codes[MODELS + 1];
    char huge_text[512] = "";
    int submitted =
        worker ? run_all(&c, jobs, MODELS + 1, codes, huge_text) : -1;
    int fetches = 0, evictions = 0;
    int64_t most = most_held(logp, "model", &fetches, &evictions);
    int exit_rc = dv_tcluster_down(&c, most <= 0 || most > (int64_t)BUDGET);
    fprintf(stderr,
            "  held at most %" PRId64 " bytes; %d fetches, %d evicted\n", most,
            fetches, evictions);
    DV_CHECK(up);
    DV_CHECK_EQ(pushed, MODELS + 1);
    DV_CHECK(worker);
    DV_CHECK_EQ(submitted, 0);
    for (int i = 0; i < MODELS; i++) {
        DV_CHECK_EQ(codes[i], 0);
    }
    DV_CHECK_EQ(codes[MODELS], DV_ENOMEM);
    DV_CHECK(strstr(huge_text, "--model-memory") != NULL);
    DV_CHECK(most > (int64_t)BUDGET / 3); // two ~410 KB files fit, not three
    DV_CHECK(most <= (int64_t)BUDGET);
    DV_CHECK_EQ(fetches, MODELS); // each once; not the huge one
    DV_CHECK(evictions >= 2);     // room was made, not found
    DV_CHECK_EQ(exit_rc, 0);
}

static const dv_test_case_t cases[] = {
    {"data sets stay within --data-memory", test_data_sets_within_data_memory},
    {"model fetches take turns", test_model_fetches_take_turns},
    {"models stay within --model-memory", test_models_within_model_memory},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
