// test_infer_training — training jobs end to end with the real binaries
// (dv_test_cluster): training through the queue gives the model `drover
// local train` gives and registers it, a new version takes over without a
// wait, trained versions keep their lineage, training resumes from its
// checkpoint on another worker and survives a broker kill -9, reports
// progress, follows its data set to the workers (which fetch and cache
// it), leaves room for inference, and stops when cancelled.
//
// Everything runs on ipc:// in a temporary folder; readiness comes from
// READY lines and the broker's worker list, never from sleeps.
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drover.h"
#include "dv_file.h"
#include "dv_sha256.h"
#include "dv_test.h"
#include "dv_test_cluster.h"
#include "dv_test_proc.h"

// The training the kill tests interrupt: long enough that the kill lands
// mid-way on a fast host (20,000 epochs of this MLP took 0.23 s on the 2-core
// VM, and a kill after the first checkpoint sometimes came after the end), with
// checkpoints often enough that one is stored early.
#define KILL_EPOCHS            "100000"
#define KILL_CHECKPOINT_MS     50
#define KILL_CHECKPOINT_MS_STR "50"

static void
hex_of(const uint8_t *sum, char *hex)
{
    for (int i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", sum[i]);
    }
}

// Training through the queue gives the same model file as `drover local
// train` (same data, options, seed and creation time), registered as the
// next version; a malformed CSV fails the job with the line and column.
static void
test_train_through_the_queue(void)
{
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 1, "0");
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    struct {
        const char *algo, *data, *extra;
    } runs[] = {{"softmax", "iris_train.csv", NULL},
                {"mlp", "iris_train.csv", "--hidden=16"}};
    int same = 0, registered = 0;
    for (int k = 0; up && k < 2; k++) {
        char local[4300], out[4300];
        snprintf(local, sizeof local, "%s/local%d.drvm", c.dir, k);
        snprintf(out, sizeof out, "%s/train%d.json", c.dir, k);
        const char *largs[] = {
            "local",  "train",      "--data",      dv_test_data(runs[k].data),
            "--algo", runs[k].algo, "--seed",      "7",
            "--out",  local,        runs[k].extra, NULL};
        const char *qargs[] = {
            "train",       "--data",     dv_test_data(runs[k].data),
            "--algo",      runs[k].algo, "--seed",
            "7",           "--model",    "trained",
            "--json",      "--broker",   c.cep,
            runs[k].extra, NULL};
        if (dv_proc_run("DROVER_BIN", largs, NULL, c.dir, "cli.log") != 0 ||
            dv_proc_run("DROVER_BIN", qargs, out, c.dir, "cli.log") != 0) {
            continue;
        }
        size_t len = 0;
        char *json = (char *)dv_test_read_file(out, &len);
        char want[32];
        snprintf(want, sizeof want, "\"model\":\"trained@%d\"", k + 1);
        registered += json && strstr(json, want) != NULL;
        free(json);
        drover_model_t m = {0};
        drover_error_t err = {0};
        unsigned char *bytes = dv_test_read_file(local, &len);
        if (bytes &&
            drover_model_get(c.d, "trained", (uint32_t)k + 1, &m, &err) == 0) {
            uint8_t sum[32];
            char hex[65];
            dv_sha256(bytes, len, sum);
            hex_of(sum, hex);
            same += strcmp(hex, m.sha256) == 0;
        }
        free(bytes);
    }
    // Stored data sets: push (validated), list, train from one by name —
    // the same model again; a malformed file is refused with where; a file
    // of several 4 MiB chunks arrives whole.
    drover_error_t derr = {0};
    char ds_out[4300], bad_csv[4300], big_csv[4300], list_out[4300];
    snprintf(ds_out, sizeof ds_out, "%s/fromds.json", c.dir);
    snprintf(bad_csv, sizeof bad_csv, "%s/bad.csv", c.dir);
    snprintf(big_csv, sizeof big_csv, "%s/big.csv", c.dir);
    snprintf(list_out, sizeof list_out, "%s/datasets.txt", c.dir);
    const char *dpush[] = {
        "datasets", "push",      dv_test_data("iris_train.csv"),
        "--name",   "iris-data", "--broker",
        c.cep,      NULL};
    const char *dtrain[] = {"train",   "--dataset", "iris-data", "--algo",
                            "softmax", "--seed",    "7",         "--model",
                            "fromds",  "--json",    "--broker",  c.cep,
                            NULL};
    int ds_push =
        up ? dv_proc_run("DROVER_BIN", dpush, NULL, c.dir, "cli.log") : -1;
    int ds_train =
        up ? dv_proc_run("DROVER_BIN", dtrain, ds_out, c.dir, "cli.log") : -1;
    drover_model_t from_ds = {0}, queue1 = {0};
    bool same_from_ds =
        up && drover_model_get(c.d, "fromds", 1, &from_ds, &derr) == 0 &&
        drover_model_get(c.d, "trained", 1, &queue1, &derr) == 0 &&
        strcmp(from_ds.sha256, queue1.sha256) == 0;
    dv_test_write_file(bad_csv, (const unsigned char *)"a,b\n1,2\nx,3\n", 12);
    const char *dbad[] = {"datasets", "push", bad_csv, "--broker", c.cep, NULL};
    int ds_bad =
        up ? dv_proc_run("DROVER_BIN", dbad, NULL, c.dir, "bad.log") : 0;
    size_t blen = 0;
    char *badlog = (char *)dv_test_read_file(
        (snprintf(list_out, sizeof list_out, "%s/bad.log", c.dir), list_out),
        &blen);
    bool bad_says = badlog && strstr(badlog, "line 3");
    free(badlog);
    size_t big_rows = 1200000, big_len = 4 + big_rows * 8;
    unsigned char *big = malloc(big_len);
    memcpy(big, "a,b\n", 4);
    for (size_t i = 0; i < big_rows; i++) {
        memcpy(big + 4 + i * 8, "1.5,2.5\n", 8);
    }
    dv_test_write_file(big_csv, big, big_len);
    free(big);
    const char *dbig[] = {"datasets", "push", big_csv, "--broker", c.cep, NULL};
    int ds_big =
        up ? dv_proc_run("DROVER_BIN", dbig, NULL, c.dir, "cli.log") : -1;
    drover_dataset_t *dsets = NULL;
    size_t n_dsets = 0;
    int dlist = up ? drover_dataset_list(c.d, &dsets, &n_dsets, &derr) : -1;
    uint64_t rows_big = 0, rows_iris = 0;
    for (size_t i = 0; i < n_dsets; i++) {
        if (strcmp(dsets[i].name, "big") == 0) {
            rows_big = dsets[i].rows;
        }
        if (strcmp(dsets[i].name, "iris-data") == 0) {
            rows_iris = dsets[i].rows;
        }
    }
    free(dsets);
    unsetenv("SOURCE_DATE_EPOCH");
    // Evaluate as a job: the figures `drover local eval` prints.
    char ev_q[4300], ev_l[4300], local0[4300];
    snprintf(ev_q, sizeof ev_q, "%s/eval_queue.json", c.dir);
    snprintf(ev_l, sizeof ev_l, "%s/eval_local.json", c.dir);
    snprintf(local0, sizeof local0, "%s/local0.drvm", c.dir);
    const char *eq[] = {"evaluate",
                        "--model",
                        "trained@1",
                        "--data",
                        dv_test_data("iris_test.csv"),
                        "--json",
                        "--broker",
                        c.cep,
                        NULL};
    const char *el[] = {"local",  "eval",   "--model",
                        local0,   "--data", dv_test_data("iris_test.csv"),
                        "--json", NULL};
    int eval_rc = up ? dv_proc_run("DROVER_BIN", eq, ev_q, c.dir, "cli.log") |
                           dv_proc_run("DROVER_BIN", el, ev_l, c.dir, "cli.log")
                     : -1;
    double acc_q = -1, acc_l = -2, f1_q = -1, f1_l = -2;
    size_t lq = 0, ll = 0;
    char *tq = (char *)dv_test_read_file(ev_q, &lq);
    char *tl = (char *)dv_test_read_file(ev_l, &ll);
    const char *p;
    if (tq && (p = strstr(tq, "\"accuracy\":"))) {
        acc_q = atof(p + 11);
    }
    if (tl && (p = strstr(tl, "\"accuracy\":"))) {
        acc_l = atof(p + 11);
    }
    if (tq && (p = strstr(tq, "\"f1_macro\":"))) {
        f1_q = atof(p + 11);
    }
    if (tl && (p = strstr(tl, "\"f1_macro\":"))) {
        f1_l = atof(p + 11);
    }
    free(tq);
    free(tl);
    // The same through a stored data set.
    char ev_d[4300], show_out[4300];
    snprintf(ev_d, sizeof ev_d, "%s/eval_dataset.json", c.dir);
    snprintf(show_out, sizeof show_out, "%s/show.json", c.dir);
    const char *tpush[] = {
        "datasets", "push",      dv_test_data("iris_test.csv"),
        "--name",   "iris-test", "--broker",
        c.cep,      NULL};
    const char *tshow[] = {"datasets", "show", "iris-test", "--json",
                           "--broker", c.cep,  NULL};
    const char *ed[] = {"evaluate",  "--model",   "trained@1",
                        "--dataset", "iris-test", "--json",
                        "--broker",  c.cep,       NULL};
    int evd_rc =
        up ? dv_proc_run("DROVER_BIN", tpush, NULL, c.dir, "cli.log") |
                 dv_proc_run("DROVER_BIN", tshow, show_out, c.dir, "cli.log") |
                 dv_proc_run("DROVER_BIN", ed, ev_d, c.dir, "cli.log")
           : -1;
    double acc_d = -3;
    size_t ld = 0, ls = 0;
    char *td = (char *)dv_test_read_file(ev_d, &ld);
    char *ts = (char *)dv_test_read_file(show_out, &ls);
    if (td && (p = strstr(td, "\"accuracy\":"))) {
        acc_d = atof(p + 11);
    }
    bool shown30 = ts && strstr(ts, "\"rows\":30");
    free(td);
    free(ts);
    // The trained model serves.
    char ran[64] = "";
    int code = 0;
    if (up) {
        dv_tcluster_ran_with(&c, "trained@1", ran, sizeof ran, &code);
    }
    // A malformed CSV: the job fails with where.
    drover_train_t t = {0};
    t.model = "bad";
    t.algo = "ols";
    t.csv = "a,b\n1,2\nx,3\n"; // a feature that is not a number
    t.csv_len = strlen(t.csv);
    drover_result_t *r = NULL;
    drover_error_t err = {0};
    int bad_code = 0;
    bool says_line = false;
    if (up && drover_train(c.d, &t, DV_TCLUSTER_WAIT_MS, &r, &err) == 0) {
        const char *text = "";
        bad_code = drover_result_error(r, &text);
        says_line = strstr(text, "line 3") != NULL;
    }
    drover_result_destroy(&r);
    int exit_rc = dv_tcluster_down(&c, same != 2);
    DV_CHECK(up);
    DV_CHECK_EQ(registered, 2);
    DV_CHECK_EQ(same, 2); // bit-identical to local training
    DV_CHECK_EQ(code, 0);
    DV_CHECK_STR_EQ(ran, "trained@1");
    DV_CHECK_EQ(bad_code, DV_EFORMAT);
    DV_CHECK(says_line);
    DV_CHECK_EQ(ds_push, 0);
    DV_CHECK_EQ(ds_train, 0);
    DV_CHECK(same_from_ds);
    DV_CHECK(ds_bad != 0);
    DV_CHECK(bad_says);
    DV_CHECK_EQ(ds_big, 0);
    DV_CHECK_EQ(dlist, 0);
    DV_CHECK_EQ(rows_iris, 120);
    DV_CHECK_EQ(rows_big, 1200000);
    DV_CHECK_EQ(eval_rc, 0);

    DV_CHECK_NEAR(acc_q, acc_l, 1e-12);
    DV_CHECK_NEAR(f1_q, f1_l, 1e-12);
    DV_CHECK(acc_q > 0.9); // iris softmax: 0.9667 on the test split
    DV_CHECK_EQ(evd_rc, 0);
    DV_CHECK(shown30);
    DV_CHECK_NEAR(acc_d, acc_q, 1e-12);

    DV_CHECK_EQ(exit_rc, 0);
}

typedef struct {
    dv_tcluster_t *c;
    int progress, rc, code;
    uint32_t last_epoch, epochs;
    bool increasing;
    const char *epochs_option; // NULL: "epochs=20000"
    int64_t checkpoint_ms;     // 0: the broker's default
    int64_t created_unix;      // 0: now
    char model[64];            // what it registered ("slow@1")
} train_run_t;

static void
count_progress(const drover_progress_t *p, void *arg)
{
    train_run_t *tr = arg;
    tr->increasing = tr->increasing && p->epoch >= tr->last_epoch;
    tr->last_epoch = p->epoch;
    tr->epochs = p->epochs;
    tr->progress++;
}

static void *
train_thread(void *arg)
{
    train_run_t *tr = arg;
    drover_t *d = NULL;
    drover_error_t err = {0};
    size_t len = 0;
    unsigned char *csv =
        dv_test_read_file(dv_test_data("iris_train.csv"), &len);
    const char *options[] = {
        "hidden=32", tr->epochs_option ? tr->epochs_option : "epochs=20000",
        "patience=0"};
    drover_train_t t = {0};
    t.model = "slow";
    t.algo = "mlp";
    t.csv = csv;
    t.csv_len = len;
    t.options = options;
    t.n_options = 3;
    t.progress = count_progress;
    t.progress_arg = tr;
    t.checkpoint_ms = tr->checkpoint_ms;
    t.created_unix = tr->created_unix;
    drover_result_t *r = NULL;
    tr->rc = csv && drover_connect(&d, tr->c->cep, 10000, &err) == 0
                 ? drover_train(d, &t, DV_TCLUSTER_WAIT_MS, &r, &err)
                 : -1;
    tr->code = r ? drover_result_error(r, NULL) : -1;
    snprintf(tr->model, sizeof tr->model, "%s",
             r && drover_result_model(r) ? drover_result_model(r) : "");
    drover_result_destroy(&r);
    drover_destroy(&d);
    free(csv);
    return NULL;
}

static void
note_eval(const drover_progress_t *p, void *arg)
{
    double *last = arg;
    if (!isnan(p->eval)) {
        *last = p->eval;
    }
}

// A new version takes over the bare name the way an alias moves: the
// workers holding the old one preload it, and until they hold it requests
// by name get the old one (none waits for a load, none fails).
static void
test_new_version_takes_over_without_a_wait(void)
{
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 1, "4");
    bool trained =
        up && dv_tcluster_train(&c, "iris_train.csv", "softmax", "iris");
    drover_error_t err = {0};
    drover_model_t v1 = {0}, v2 = {0};
    char p[4300];
    snprintf(p, sizeof p, "%s/iris.drvm", c.dir);
    int push1 = trained ? drover_model_push(c.d, p, "iris", &v1, &err) : -1;
    char ran1[64] = "", ran2[64] = "", ran_during[64] = "";
    int code1 = 0, code2 = 0;
    dv_tcluster_ran_with(&c, "iris", ran1, sizeof ran1,
                         &code1); // the worker loads @1
    bool stopped =
        push1 == 0 && code1 == 0 && kill(c.workers[0].pid, SIGSTOP) == 0;
    int push2 = stopped ? drover_model_push(c.d, p, "iris", &v2, &err) : -1;
    float x[4] = {5.1f, 3.5f, 1.4f, 0.2f};
    drover_job_t job = DROVER_JOB_INIT;
    job.kind = "infer";
    job.model = "iris";
    job.input = x;
    job.rows = 1;
    job.cols = 4;
    uint64_t during = 0;
    if (stopped) {
        drover_submit(c.d, &job, 10000, &during, &err);
        kill(c.workers[0].pid, SIGCONT);
    }
    drover_result_t *r = NULL;
    if (during &&
        drover_wait(c.d, during, DV_TCLUSTER_WAIT_MS, &r, &err) == 0 &&
        drover_result_ok(r)) {
        snprintf(ran_during, sizeof ran_during, "%s", drover_result_model(r));
    }
    drover_result_destroy(&r);
    int failures = 0;
    int64_t end = dv_test_now_ms() + 20000;
    do {
        dv_tcluster_ran_with(&c, "iris", ran2, sizeof ran2, &code2);
        failures += code2 != 0;
    } while (up && strcmp(ran2, "iris@2") != 0 && dv_test_now_ms() < end);
    int exit_rc = dv_tcluster_down(&c, failures != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(push1, 0);
    DV_CHECK_STR_EQ(ran1, "iris@1");
    DV_CHECK(stopped);
    DV_CHECK_EQ(push2, 0);
    DV_CHECK_EQ(v2.version, 2);
    DV_CHECK(during > 0);
    DV_CHECK_STR_EQ(ran_during, "iris@1"); // not made to wait for @2
    DV_CHECK_STR_EQ(ran2, "iris@2");       // then the new one serves
    DV_CHECK_EQ(failures, 0);
    DV_CHECK_EQ(exit_rc, 0);
}

// Lineage: a model trained on a stored data set with an eval set scores it
// while it trains (progress) and keeps how it came to be with the version
// — job, worker, data set and checksum, hyper-parameters and seed, epochs,
// the eval metrics (the figures an evaluate job gives) — across a broker
// restart; a pushed file has none.
static void
test_trained_versions_keep_their_lineage(void)
{
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 1, "0");
    drover_dataset_t tr = {0}, te = {0};
    drover_error_t err = {0};
    int push = up ? drover_dataset_push(c.d, dv_test_data("iris_train.csv"),
                                        "iris-tr", &tr, &err) |
                        drover_dataset_push(c.d, dv_test_data("iris_test.csv"),
                                            "iris-te", &te, &err)
                  : -1;
    const char *options[] = {"hidden=16", "epochs=300", "seed=9"};
    drover_train_t t = {0};
    t.model = "lin";
    t.algo = "mlp";
    t.dataset = "iris-tr";
    t.eval_dataset = "iris-te";
    t.options = options;
    t.n_options = 3;
    double last_eval = NAN;
    t.progress = note_eval;
    t.progress_arg = &last_eval;
    drover_result_t *r = NULL;
    int code = -1;
    if (push == 0 &&
        drover_train(c.d, &t, DV_TCLUSTER_WAIT_MS, &r, &err) == 0) {
        code = drover_result_error(r, NULL);
    }
    drover_result_destroy(&r);
    // The same figures from an evaluate job.
    drover_job_t ej = DROVER_JOB_INIT;
    ej.kind = "evaluate";
    ej.model = "lin@1";
    ej.dataset = "iris-te";
    double acc_job = -1;
    if (code == 0 && drover_run(c.d, &ej, DV_TCLUSTER_WAIT_MS, &r, &err) == 0) {
        const char *const *names = NULL;
        const double *values = NULL;
        size_t n = drover_result_metrics(r, &names, &values);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(names[i], "accuracy") == 0) {
                acc_job = values[i];
            }
        }
    }
    if (acc_job < 0) {
        fprintf(stderr, "  evaluate: %g %s\n", acc_job, err.text);
    }
    drover_result_destroy(&r);
    // Across a restart, from the store.
    drover_destroy(&c.d);
    int stop_rc = up ? dv_proc_stop(&c.broker, SIGKILL) : -1;
    bool again = up && dv_tcluster_broker_start(&c) &&
                 drover_connect(&c.d, c.cep, 10000, &err) == 0;
    drover_schema_t sc;
    memset(&sc, 0, sizeof sc);
    int show = again ? drover_model_schema(c.d, "lin", 1, &sc, &err) : -1;
    const drover_lineage_t *g = &sc.lineage;
    double acc_lineage = -2;
    for (size_t i = 0; i < g->n_eval; i++) {
        if (strcmp(g->eval_names[i], "accuracy") == 0) {
            acc_lineage = g->eval_values[i];
        }
    }
    // A pushed file has no lineage.
    char local[4300];
    snprintf(local, sizeof local, "%s/pushed.drvm", c.dir);
    bool trained =
        again && dv_tcluster_train(&c, "iris_train.csv", "softmax", "pushed");
    drover_model_t pm = {0};
    drover_schema_t ps;
    memset(&ps, 0, sizeof ps);
    int pushed = trained ? drover_model_push(c.d, local, "pushed", &pm, &err) |
                               drover_model_schema(c.d, "pushed", 1, &ps, &err)
                         : -1;
    drover_lineage_t lin = sc.lineage;
    bool pushed_has = ps.lineage.has;
    g = &lin;
    if (show == 0) {
        drover_schema_clear(&sc);
    }
    if (pushed == 0) {
        drover_schema_clear(&ps);
    }
    int exit_rc = dv_tcluster_down(&c, !g->has);
    DV_CHECK(up);
    DV_CHECK_EQ(push, 0);
    DV_CHECK_EQ(code, 0);
    DV_CHECK(last_eval >= 0.0 && last_eval <= 1.0); // accuracy while training
    DV_CHECK(stop_rc != 0);                         // killed
    DV_CHECK(again);
    DV_CHECK_EQ(show, 0);
    DV_CHECK(g->has);
    DV_CHECK_EQ(g->job, 1);
    DV_CHECK_STR_EQ(g->worker, "w0");
    DV_CHECK_EQ(g->attempts, 1);
    DV_CHECK_STR_EQ(g->dataset, "iris-tr@1");
    DV_CHECK_STR_EQ(g->data_sha256, tr.sha256);
    DV_CHECK_EQ(g->data_rows, 120);
    DV_CHECK_STR_EQ(g->algo, "mlp");
    DV_CHECK_EQ(g->seed, 9);
    DV_CHECK(strstr(g->hyper, "hidden=16") != NULL);
    DV_CHECK_EQ(g->epochs_run, 300);
    DV_CHECK(g->finished_unix_ms >= g->submitted_unix_ms);
    DV_CHECK_STR_EQ(g->eval_dataset, "iris-te@1");
    DV_CHECK(acc_job > 0.5); // 300 epochs: not the point here
    DV_CHECK_NEAR(acc_lineage, acc_job, 1e-12);
    DV_CHECK_NEAR(last_eval, acc_job, 1e-12); // the last epoch's score
    DV_CHECK_EQ(pushed, 0);
    DV_CHECK(!pushed_has);
    DV_CHECK_EQ(exit_rc, 0);
}

// Is path's file byte for byte the registry's name@version (SHA-256)?
static bool
registry_holds(dv_tcluster_t *c,
               const char *name,
               uint32_t version,
               const char *path)
{
    drover_model_t m = {0};
    drover_error_t err = {0};
    size_t len = 0;
    unsigned char *bytes = dv_test_read_file(path, &len);
    bool same = false;
    if (bytes && drover_model_get(c->d, name, version, &m, &err) == 0) {
        uint8_t sum[32];
        char hex[65];
        dv_sha256(bytes, len, sum);
        hex_of(sum, hex);
        same = strcmp(hex, m.sha256) == 0;
    }
    free(bytes);
    return same;
}

// The epoch a worker's log says a job resumed after (0: none).
static long
resumed_epoch(const char *log_path)
{
    static const char says[] = "resumes from its checkpoint after epoch ";
    size_t len = 0;
    char *log = (char *)dv_test_read_file(log_path, &len);
    const char *at = log ? strstr(log, says) : NULL;
    long epoch = at ? atol(at + strlen(says)) : 0;
    free(log);
    return epoch;
}

// Checkpoints: a training job's worker is SIGKILLed after its first
// checkpoints; another worker goes on from the last one (not from epoch
// 1), and the model is byte for byte the one an uninterrupted
// `drover local train` writes.
static void
test_training_resumes_from_checkpoint(void)
{
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 1, "0");
    train_run_t tr = {.c = &c,
                      .rc = -1,
                      .code = -1,
                      .increasing = true,
                      .epochs_option = "epochs=" KILL_EPOCHS,
                      .checkpoint_ms = KILL_CHECKPOINT_MS,
                      .created_unix = 1700000000};
    pthread_t th;
    bool started = up && pthread_create(&th, NULL, train_thread, &tr) == 0;
    // Job 1 is the training job: wait for a checkpoint past epoch 1.
    drover_job_info_t info = {0};
    drover_error_t err = {0};
    uint32_t ck_epoch = 0;
    int64_t end = dv_test_now_ms() + DV_TCLUSTER_WAIT_MS;
    while (started && ck_epoch == 0 && dv_test_now_ms() < end) {
        if (drover_job_info(c.d, 1, &info, &err) == 0) {
            ck_epoch = info.checkpoint_epoch;
        }
        dv_test_nap();
    }
    bool mid = ck_epoch > 0 && ck_epoch < atol(KILL_EPOCHS) &&
               info.epoch < atol(KILL_EPOCHS);
    if (mid) {
        kill(c.workers[0].pid, SIGKILL);
        dv_proc_stop(&c.workers[0], SIGKILL);
    }
    bool second = mid && dv_tcluster_worker_start(&c, 1, "0");
    if (started) {
        pthread_join(th, NULL);
    }
    drover_job_info_t after = {0};
    int after_rc = up ? drover_job_info(c.d, 1, &after, &err) : -1;
    // Where the second worker started.
    char logp[4300], local[4300];
    snprintf(logp, sizeof logp, "%s/worker1.log", c.dir);
    snprintf(local, sizeof local, "%s/local.drvm", c.dir);
    long resumed_at = resumed_epoch(logp);
    // The same training, uninterrupted, in-process through the CLI.
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    const char *largs[] = {
        "local",    "train",     "--data",     dv_test_data("iris_train.csv"),
        "--algo",   "mlp",       "--hidden",   "32",
        "--epochs", KILL_EPOCHS, "--patience", "0",
        "--out",    local,       NULL};
    int local_rc =
        second ? dv_proc_run("DROVER_BIN", largs, NULL, c.dir, "cli.log") : -1;
    unsetenv("SOURCE_DATE_EPOCH");
    bool same = local_rc == 0 && registry_holds(&c, "slow", 1, local);
    int exit_rc = dv_tcluster_down(&c, !same || resumed_at <= 0);
    DV_CHECK(up);
    DV_CHECK(started);
    DV_CHECK(mid);
    DV_CHECK(second);
    DV_CHECK_EQ(tr.rc, 0);
    DV_CHECK_EQ(tr.code, 0);
    DV_CHECK_STR_EQ(tr.model, "slow@1");
    DV_CHECK_EQ(after_rc, 0);
    DV_CHECK_EQ(after.attempts, 2);
    DV_CHECK(resumed_at >= (long)ck_epoch); // from a checkpoint, not epoch 1
    DV_CHECK(resumed_at < atol(KILL_EPOCHS));
    DV_CHECK_EQ(local_rc, 0);
    DV_CHECK(same);
    DV_CHECK_EQ(exit_rc, 0);
}

// Checkpoints are durable: the broker and the training job's worker are
// both SIGKILLed after a checkpoint; the restarted broker has it from its
// store, a new worker goes on from it, and the model is byte for byte the
// uninterrupted one.
static void
test_training_survives_broker_kill(void)
{
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 1, "0");
    char csv_path[4300], local[4300], logp[4300];
    snprintf(local, sizeof local, "%s/local.drvm", c.dir);
    snprintf(logp, sizeof logp, "%s/worker1.log", c.dir);
    snprintf(csv_path, sizeof csv_path, "%s", dv_test_data("iris_train.csv"));
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    const char *targs[] = {"train",
                           "--data",
                           csv_path,
                           "--algo",
                           "mlp",
                           "--hidden",
                           "32",
                           "--epochs",
                           KILL_EPOCHS,
                           "--patience",
                           "0",
                           "--checkpoint-ms",
                           KILL_CHECKPOINT_MS_STR,
                           "--model",
                           "durable",
                           "--broker",
                           c.cep,
                           NULL};
    dv_proc_t cli = up ? dv_proc_start("DROVER_BIN", targs, c.dir, "cli.log")
                       : (dv_proc_t){0, -1};
    drover_job_info_t info = {0};
    drover_error_t err = {0};
    uint32_t ck_epoch = 0;
    int64_t end = dv_test_now_ms() + DV_TCLUSTER_WAIT_MS;
    // A checkpoint the broker holds is not yet one it stored: kill -9
    // keeps only what a commit wrote (stored_epoch).
    while (cli.pid && ck_epoch == 0 && dv_test_now_ms() < end) {
        if (drover_job_info(c.d, 1, &info, &err) == 0) {
            ck_epoch = info.checkpoint_stored_epoch;
        }
        dv_test_nap();
    }
    bool mid = ck_epoch > 0 && info.epoch < atol(KILL_EPOCHS) &&
               info.checkpoint_epoch >= ck_epoch;
    drover_destroy(&c.d);
    kill(c.broker.pid, SIGKILL);
    kill(c.workers[0].pid, SIGKILL);
    dv_proc_stop(&c.broker, SIGKILL);
    dv_proc_stop(&c.workers[0], SIGKILL);
    dv_proc_stop(&cli, SIGKILL); // its connection went with the broker
    bool again = mid && dv_tcluster_broker_start(&c) &&
                 drover_connect(&c.d, c.cep, 10000, &err) == 0;
    drover_job_info_t back = {0};
    int back_rc = again ? drover_job_info(c.d, 1, &back, &err) : -1;
    bool second = again && dv_tcluster_worker_start(&c, 1, "0");
    drover_result_t *r = NULL;
    int code = -1;
    if (second && drover_wait(c.d, 1, DV_TCLUSTER_WAIT_MS, &r, &err) == 0) {
        code = drover_result_error(r, NULL);
    }
    drover_result_destroy(&r);
    long resumed_at = resumed_epoch(logp);
    const char *largs[] = {"local",    "train",     "--data",     csv_path,
                           "--algo",   "mlp",       "--hidden",   "32",
                           "--epochs", KILL_EPOCHS, "--patience", "0",
                           "--out",    local,       NULL};
    int local_rc =
        code == 0 ? dv_proc_run("DROVER_BIN", largs, NULL, c.dir, "cli.log")
                  : -1;
    unsetenv("SOURCE_DATE_EPOCH");
    bool same = local_rc == 0 && registry_holds(&c, "durable", 1, local);
    int exit_rc = dv_tcluster_down(&c, !same || resumed_at <= 0);
    DV_CHECK(up);
    DV_CHECK(mid);
    DV_CHECK(again);
    DV_CHECK_EQ(back_rc, 0);
    DV_CHECK(back.checkpoint_epoch >= ck_epoch); // from the store
    DV_CHECK_EQ(back.checkpoint_stored_epoch, back.checkpoint_epoch);
    DV_CHECK(second);
    DV_CHECK_EQ(code, 0);
    DV_CHECK(resumed_at >= (long)ck_epoch);
    DV_CHECK_EQ(local_rc, 0);
    DV_CHECK(same);
    DV_CHECK_EQ(exit_rc, 0);
}

// A long training job reports progress: its submitter gets it while it
// waits, and `drover jobs watch` shows it (JSON lines) until the job ends.
static void
test_training_progress(void)
{
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 1, "0");
    train_run_t tr = {&c, 0, -1, -1, 0, 0, true, NULL, 0, 0, ""};
    pthread_t th;
    bool started = up && pthread_create(&th, NULL, train_thread, &tr) == 0;
    // Job 1 is the training job: watch it from another process.
    bool running = false;
    drover_job_info_t info;
    drover_error_t err = {0};
    int64_t end = dv_test_now_ms() + 30000;
    while (started && !running && dv_test_now_ms() < end) {
        running = drover_job_info(c.d, 1, &info, &err) == 0 &&
                  strcmp(info.state, "running") == 0;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    char out[4300];
    snprintf(out, sizeof out, "%s/watch.jsonl", c.dir);
    const char *args[] = {"jobs",     "watch", "1", "--json",
                          "--broker", c.cep,   NULL};
    int watch_rc =
        running ? dv_proc_run("DROVER_BIN", args, out, c.dir, "cli.log") : -1;
    if (started) {
        pthread_join(th, NULL);
    }
    size_t len = 0;
    char *text = (char *)dv_test_read_file(out, &len);
    bool watched = text && strstr(text, "\"epochs\":20000") &&
                   strstr(text, "\"state\":\"done\"");
    free(text);
    int exit_rc = dv_tcluster_down(&c, !watched);
    DV_CHECK(up);
    DV_CHECK(started);
    DV_CHECK_EQ(tr.rc, 0);
    DV_CHECK_EQ(tr.code, 0);
    DV_CHECK(tr.progress >= 2);
    DV_CHECK(tr.increasing);
    DV_CHECK_EQ(tr.epochs, 20000);
    DV_CHECK(running);
    DV_CHECK_EQ(watch_rc, 0);
    DV_CHECK(watched);
    DV_CHECK_EQ(exit_rc, 0);
}

// Train on data set "gone" on a connection of its own (the test removes
// it meanwhile).
typedef struct {
    const char *cep;
    int rc, code;
    char text[256];
} gone_run_t;

static void *
gone_thread(void *arg)
{
    gone_run_t *g = arg;
    drover_t *d = NULL;
    drover_error_t err = {0};
    drover_train_t t = {0};
    t.model = "gone-model";
    t.algo = "ols";
    t.dataset = "gone";
    drover_result_t *r = NULL;
    g->rc = drover_connect(&d, g->cep, 10000, &err) == 0
                ? drover_train(d, &t, DV_TCLUSTER_WAIT_MS, &r, &err)
                : -1;
    const char *text = err.text;
    g->code = r ? drover_result_error(r, &text) : -1;
    snprintf(g->text, sizeof g->text, "%s", text ? text : "");
    drover_result_destroy(&r);
    drover_destroy(&d);
    return NULL;
}

// Count "fetching data set KEY" lines in dir/worker<i>.log, i < n.
static int
fetches_logged(const char *dir, int n, const char *key)
{
    char needle[256], path[4300];
    snprintf(needle, sizeof needle, "fetching data set %s", key);
    int count = 0;
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/worker%d.log", dir, i);
        size_t len = 0;
        char *log = (char *)dv_test_read_file(path, &len);
        for (const char *p = log; p && (p = strstr(p, needle)); p++) {
            count++;
        }
        free(log);
    }
    return count;
}

// Data set affinity: training jobs on a stored data set go to the worker
// that has it cached. The first one lands on w1 (w0, which the scheduler
// prefers among idle workers, is busy with a sleep job); once w0 is free
// again the next three still go to w1: one fetch for four jobs. `drover
// workers` shows who holds it.
static void
test_training_follows_the_data(void)
{
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 2, "0");
    drover_dataset_t info = {0};
    drover_error_t err = {0};
    int push = up ? drover_dataset_push(c.d, dv_test_data("diabetes_train.csv"),
                                        "dia", &info, &err)
                  : -1;
    drover_job_t nap = DROVER_JOB_INIT;
    nap.kind = "sleep";
    nap.sleep_ms = 1500;
    uint64_t nap_id = 0;
    int napping =
        push == 0 ? drover_submit(c.d, &nap, 10000, &nap_id, &err) : -1;
    int failed = 0;
    for (int k = 0; napping == 0 && k < 4; k++) {
        if (k == 1) { // w0 is free again
            drover_result_t *nr = NULL;
            drover_wait(c.d, nap_id, DV_TCLUSTER_WAIT_MS, &nr, &err);
            drover_result_destroy(&nr);
        }
        drover_train_t t = {0};
        t.model = "dia-ols";
        t.algo = "ols";
        t.dataset = "dia";
        drover_result_t *r = NULL;
        if (drover_train(c.d, &t, DV_TCLUSTER_WAIT_MS, &r, &err) != 0 ||
            drover_result_error(r, NULL) != 0) {
            failed++;
        }
        drover_result_destroy(&r);
    }
    drover_worker_t *ws = NULL;
    size_t nw = 0, holders = 0;
    int list = up ? drover_workers(c.d, &ws, &nw, &err) : -1;
    for (size_t i = 0; list == 0 && i < nw; i++) {
        for (size_t k = 0; k < ws[i].n_datasets; k++) {
            holders += strcmp(ws[i].datasets[k], "dia@1") == 0;
        }
    }
    drover_workers_free(&ws, nw);
    int fetches = fetches_logged(c.dir, 2, "dia@1");
    int exit_rc = dv_tcluster_down(&c, fetches != 1);
    DV_CHECK(up);
    DV_CHECK_EQ(push, 0);
    DV_CHECK_EQ(napping, 0);
    DV_CHECK_EQ(failed, 0);
    DV_CHECK_EQ(list, 0);
    DV_CHECK_EQ(holders, 1);
    DV_CHECK_EQ(fetches, 1);
    DV_CHECK_EQ(exit_rc, 0);
}

// Workers fetch a stored data set by chunks, check it and keep it: a 6.5 MB
// data set (two chunks of at most 4 MiB) trains a model on the worker; a
// second job
// on it is served from the worker's cache (one fetch in its log); jobs
// carry only the reference; a data set removed before its job runs fails
// the job with a clear error.
static void
test_workers_fetch_and_cache_data_sets(void)
{
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 1, "0");
    char path[4300], logp[4300];
    snprintf(path, sizeof path, "%s/lines.csv", c.dir);
    snprintf(logp, sizeof logp, "%s/worker0.log", c.dir);
    size_t rows = 1000000, cap = 32 + rows * 16, len = 0;
    char *csv = malloc(cap);
    len += (size_t)snprintf(csv, cap, "x,y\n");
    for (size_t i = 0; i < rows; i++) {
        int x = (int)(i % 100);
        len += (size_t)snprintf(csv + len, cap - len, "%d,%d\n", x, 3 * x + 1);
    }
    dv_test_write_file(path, (const unsigned char *)csv, len);
    free(csv);
    drover_dataset_t info = {0};
    drover_error_t err = {0};
    int push = up ? drover_dataset_push(c.d, path, "lines", &info, &err) : -1;
    int codes[2] = {-1, -1};
    char names[2][64] = {"", ""};
    for (int k = 0; k < 2 && push == 0; k++) {
        drover_train_t t = {0};
        t.model = "line";
        t.algo = "ols";
        t.dataset = "lines";
        drover_result_t *r = NULL;
        if (drover_train(c.d, &t, DV_TCLUSTER_WAIT_MS, &r, &err) == 0) {
            const char *text = "";
            codes[k] = drover_result_error(r, &text);
            snprintf(names[k], sizeof names[k], "%s",
                     drover_result_model(r) ? drover_result_model(r) : "");
            if (codes[k]) {
                fprintf(stderr, "  train %d: %s\n", k, text);
            }
            drover_result_destroy(&r);
        }
    }
    // One fetch for two jobs: the second found it in the cache.
    int fetches = fetches_logged(c.dir, 1, "lines@1");
    size_t ll = 0;
    char *log = (char *)dv_test_read_file(logp, &ll);
    bool cached = log && strstr(log, "data set lines@1 cached (");
    free(log);
    // Removed while its job waits: the worker is stopped, the job queued,
    // the data set removed; when the worker comes back the job fails
    // DV_ENOENT naming the data set, and the broker carries on.
    drover_dataset_t small = {0};
    char spath[4300];
    snprintf(spath, sizeof spath, "%s/small.csv", c.dir);
    dv_test_write_file(spath, (const unsigned char *)"x,y\n1,2\n2,3\n3,4\n",
                       16);
    gone_run_t g = {c.cep, -1, -1, ""};
    if (up && drover_dataset_push(c.d, spath, "gone", &small, &err) == 0) {
        kill(c.workers[0].pid, SIGSTOP);
        pthread_t th;
        if (pthread_create(&th, NULL, gone_thread, &g) == 0) {
            drover_job_info_t ji;
            int64_t end =
                dv_test_now_ms() + DV_TCLUSTER_WAIT_MS; // job 3 accepted
            while (drover_job_info(c.d, 3, &ji, &err) != 0 &&
                   dv_test_now_ms() < end) {
                dv_test_nap();
            }
            unsigned removed = 0;
            drover_dataset_rm(c.d, "gone", 0, &removed, &err);
            kill(c.workers[0].pid, SIGCONT);
            pthread_join(th, NULL);
        } else {
            kill(c.workers[0].pid, SIGCONT);
        }
    }
    int exit_rc = dv_tcluster_down(&c, codes[0] != 0 || fetches != 1);
    DV_CHECK(up);
    DV_CHECK_EQ(push, 0);
    DV_CHECK_EQ(info.rows, rows);
    DV_CHECK_EQ(codes[0], 0);
    DV_CHECK_EQ(codes[1], 0);
    DV_CHECK_STR_EQ(names[0], "line@1");
    DV_CHECK_STR_EQ(names[1], "line@2");
    DV_CHECK_EQ(fetches, 1);
    DV_CHECK(cached);
    if (g.rc != 0 || g.code != DV_ENOENT) {
        fprintf(stderr, "  removed data set: rc %d code %d: %s\n", g.rc, g.code,
                g.text);
    }
    DV_CHECK_EQ(g.rc, 0);
    DV_CHECK_EQ(g.code, DV_ENOENT);
    DV_CHECK(strstr(g.text, "removed") != NULL);
    DV_CHECK_EQ(exit_rc, 0);
}

// Fairness: a worker with two compute threads trains one model at a time
// (--train-slots defaults to concurrency - 1), so inference runs while a
// long training job does, and a second training job waits its turn.
static void
test_training_leaves_room_for_inference(void)
{
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 0, "0");
    const char *args[] = {"--broker",
                          c.wep,
                          "--name",
                          "w0",
                          "--concurrency",
                          "2",
                          "--prefetch",
                          "2",
                          "--heartbeat-ms",
                          DV_TCLUSTER_HEARTBEAT_MS,
                          NULL};
    c.workers[0] =
        up ? dv_proc_start("DROVER_WORKER_BIN", args, c.dir, "worker0.log")
           : (dv_proc_t){0, -1};
    char ready[9000];
    up = up && c.workers[0].pid &&
         dv_proc_wait_ready(&c.workers[0], ready, sizeof ready);
    bool trained =
        up && dv_tcluster_train(&c, "iris_train.csv", "softmax", "iris");
    char p[4300];
    snprintf(p, sizeof p, "%s/iris.drvm", c.dir);
    drover_model_t m = {0};
    drover_error_t err = {0};
    int push = trained ? drover_model_push(c.d, p, "iris", &m, &err) : -1;
    train_run_t a = {&c, 0, -1, -1, 0, 0, true, NULL, 0, 0, ""};
    train_run_t b = {&c, 0, -1, -1, 0, 0, true, NULL, 0, 0, ""};
    pthread_t ta, tb;
    bool started =
        push == 0 && pthread_create(&ta, NULL, train_thread, &a) == 0;
    // Job 1 runs (the first train job); then the second is submitted.
    bool one_running = false;
    drover_job_info_t info;
    int64_t end = dv_test_now_ms() + 30000;
    while (started && !one_running && dv_test_now_ms() < end) {
        one_running = drover_job_info(c.d, 1, &info, &err) == 0 &&
                      strcmp(info.state, "running") == 0;
        dv_test_nap();
    }
    bool started2 =
        one_running && pthread_create(&tb, NULL, train_thread, &b) == 0;
    bool second_queued = false;
    end = dv_test_now_ms() + 30000;
    while (started2 && !second_queued && dv_test_now_ms() < end) {
        second_queued = drover_job_info(c.d, 2, &info, &err) == 0 &&
                        strcmp(info.state, "queued") == 0;
        dv_test_nap();
    }
    // Inference now: served by the free thread while job 1 trains.
    char ran[64] = "";
    int code = -1;
    if (second_queued) {
        dv_tcluster_ran_with(&c, "iris@1", ran, sizeof ran, &code);
    }
    drover_job_info_t first = {0}, second = {0};
    drover_job_info(c.d, 1, &first, &err);
    drover_job_info(c.d, 2, &second, &err);
    if (started) {
        pthread_join(ta, NULL);
    }
    if (started2) {
        pthread_join(tb, NULL);
    }
    int exit_rc = dv_tcluster_down(&c, code != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(push, 0);
    DV_CHECK(one_running);
    DV_CHECK(second_queued); // one training job at a time on this worker
    DV_CHECK_EQ(code, 0);
    DV_CHECK_STR_EQ(ran, "iris@1");
    DV_CHECK_STR_EQ(first.state, "running"); // inference did not wait
    DV_CHECK_STR_EQ(second.state, "queued");
    DV_CHECK_EQ(a.code, 0);
    DV_CHECK_EQ(b.code, 0);
    DV_CHECK_EQ(exit_rc, 0);
}

// Cancel reaches a training job between epochs: its one-thread worker is
// free for the next job. The training asked for would take minutes
// (1,000,000 epochs, ~100 s here, far more under ASan), longer than the
// echo's 30 s deadline: the echo can only come back if the cancel stopped
// it (no timing is asserted; the deadline only bounds the wait).
static void
test_cancel_stops_training(void)
{
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 1, "0");
    train_run_t tr = {&c, 0, -1, -1, 0, 0, true, "epochs=1000000", 0, 0, ""};
    pthread_t th;
    bool started = up && pthread_create(&th, NULL, train_thread, &tr) == 0;
    bool running = false;
    drover_job_info_t info;
    drover_error_t err = {0};
    int64_t end = dv_test_now_ms() + 30000;
    while (started && !running && dv_test_now_ms() < end) {
        running = drover_job_info(c.d, 1, &info, &err) == 0 &&
                  strcmp(info.state, "running") == 0 && info.epoch > 0;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int cancel_rc = running ? drover_job_cancel(c.d, 1, NULL, &err) : -1;
    drover_job_t echo = DROVER_JOB_INIT;
    echo.payload = "after";
    echo.payload_len = 5;
    drover_result_t *r = NULL;
    int echo_rc = running ? drover_run(c.d, &echo, 30000, &r, &err) : -1;
    drover_result_destroy(&r);
    if (started) {
        pthread_join(th, NULL);
    }
    int exit_rc = dv_tcluster_down(&c, echo_rc != 0);
    DV_CHECK(up);
    DV_CHECK(running);
    DV_CHECK_EQ(cancel_rc, 0);
    DV_CHECK_EQ(tr.code, DV_ECANCELED);
    DV_CHECK_EQ(echo_rc, 0);
    DV_CHECK_EQ(exit_rc, 0);
}

// A train job under a name whose latest takes other inputs (issue 17): the
// model is not registered (DV_ESHAPE, its clients would fail) unless the
// job says schema_change; the same data and name trains fine.
static void
test_training_keeps_a_name_s_schema(void)
{
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 1, "0");
    drover_error_t err = {0};
    const char *options[] = {"epochs=5", "seed=1"};
    int codes[4] = {-1, -1, -1, -1};
    const char *files[4] = {"iris_train.csv", "diabetes_train.csv",
                            "diabetes_train.csv", "iris_train.csv"};
    const char *algos[4] = {"softmax", "ridge", "ridge", "softmax"};
    bool change[4] = {false, false, true, true};
    for (int i = 0; up && i < 4; i++) {
        uint8_t *csv = NULL;
        size_t len = 0;
        dv_error_t derr = {0};
        if (dv_file_read(dv_test_data(files[i]), (size_t)1 << 26, &csv, &len,
                         &derr) != 0) {
            break;
        }
        drover_train_t t = {0};
        t.model = "shape";
        t.algo = algos[i];
        t.csv = csv;
        t.csv_len = len;
        t.options = options;
        t.n_options = 2;
        t.schema_change = change[i];
        drover_result_t *r = NULL;
        if (drover_train(c.d, &t, DV_TCLUSTER_WAIT_MS, &r, &err) == 0) {
            codes[i] = drover_result_error(r, NULL);
        }
        drover_result_destroy(&r);
        free(csv);
    }
    drover_model_t info = {0};
    int got = up ? drover_model_get(c.d, "shape", 0, &info, &err) : -1;
    int exit_rc = dv_tcluster_down(&c, false);
    DV_CHECK(up);
    DV_CHECK_EQ(codes[0], 0);         // shape@1: iris, 4 features
    DV_CHECK_EQ(codes[1], DV_ESHAPE); // diabetes under it: refused
    DV_CHECK_EQ(codes[2], 0);         // said so: shape@2
    DV_CHECK_EQ(codes[3], 0);         // and back, said so: shape@3
    DV_CHECK_EQ(got, 0);
    DV_CHECK_EQ(info.version, 3u); // the refused one took no version
    DV_CHECK_EQ(info.features, 4u);
    DV_CHECK_EQ(exit_rc, 0);
}

static const dv_test_case_t cases[] = {
    {"training follows the data", test_training_follows_the_data},
    {"workers fetch and cache data sets",
     test_workers_fetch_and_cache_data_sets},
    {"a new version takes over without a wait",
     test_new_version_takes_over_without_a_wait},
    {"trained versions keep their lineage",
     test_trained_versions_keep_their_lineage},
    {"training survives a broker kill -9 too",
     test_training_survives_broker_kill},
    {"training resumes from its checkpoint on another worker",
     test_training_resumes_from_checkpoint},
    {"cancel stops training", test_cancel_stops_training},
    {"training leaves room for inference",
     test_training_leaves_room_for_inference},
    {"training progress", test_training_progress},
    {"train through the queue", test_train_through_the_queue},
    {"training keeps a name's schema", test_training_keeps_a_name_s_schema},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_tcluster_main(argc, argv, cases);
}
