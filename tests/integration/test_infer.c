// test_infer — inference jobs end to end with the real binaries: models
// trained by `drover local train`, pushed to drover-broker's registry, run
// by drover-worker processes, driven through libdrover and the `drover`
// CLI. Checks that results equal local prediction bit for bit, that bad
// requests get clear errors while serving goes on, that the registry
// versions and survives a broker restart, that a worker SIGKILLed mid-job
// has its job re-run elsewhere, and that SIGTERM drains a busy worker.
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
#include "dv_csv.h"
#include "dv_model.h"
#include "dv_modelfile.h"
#include "dv_proto.h"
#include "dv_sha256.h"
#include "dv_test.h"
#include "dv_test_proc.h"

#define MAX_WORKERS 2
#define WAIT_MS     60000 // a job's result, generous for ASan on 2 cores
// Liveness = 3 heartbeats, the production default: these tests move 20 MB
// inputs and 11 MB models through ASan builds sharing 2 cores with other
// tests, and shorter settings sometimes took a busy broker for a dead one.
#define HEARTBEAT_MS "1000"

typedef struct {
    char *dir;                      // temporary folder
    char data[4200];                // broker data dir
    char cep[4300], wep[4300];      // endpoints
    dv_proc_t broker;               // drover-broker
    dv_proc_t workers[MAX_WORKERS]; // drover-workers
    drover_t *d;                    // a client
} cluster_t;

static bool
broker_start(cluster_t *c)
{
    const char *args[] = {"--client",       c->cep,       "--worker",
                          c->wep,           "--data",     c->data,
                          "--heartbeat-ms", HEARTBEAT_MS, NULL};
    c->broker = dv_proc_start("DROVER_BROKER_BIN", args, c->dir, "broker.log");
    char ready[9000];
    return c->broker.pid && dv_proc_wait_ready(&c->broker, ready, sizeof ready);
}

static bool
worker_start(cluster_t *c, int i, const char *prefetch)
{
    char name[16], log[32];
    snprintf(name, sizeof name, "w%d", i);
    snprintf(log, sizeof log, "worker%d.log", i);
    const char *args[] = {
        "--broker", c->wep,           "--name",     name, "--prefetch",
        prefetch,   "--heartbeat-ms", HEARTBEAT_MS, NULL};
    c->workers[i] = dv_proc_start("DROVER_WORKER_BIN", args, c->dir, log);
    char ready[9000];
    return c->workers[i].pid &&
           dv_proc_wait_ready(&c->workers[i], ready, sizeof ready);
}

static bool
cluster_up(cluster_t *c, int n_workers, const char *prefetch)
{
    memset(c, 0, sizeof *c);
    c->dir = dv_test_tmpdir();
    snprintf(c->data, sizeof c->data, "%s/data", c->dir);
    snprintf(c->cep, sizeof c->cep, "ipc://%s/client.sock", c->dir);
    snprintf(c->wep, sizeof c->wep, "ipc://%s/worker.sock", c->dir);
    if (!broker_start(c)) {
        fprintf(stderr, "  broker did not get ready\n");
        return false;
    }
    for (int i = 0; i < n_workers; i++) {
        if (!worker_start(c, i, prefetch)) {
            fprintf(stderr, "  worker %d did not get ready\n", i);
            return false;
        }
    }
    drover_error_t err = {0};
    if (drover_connect(&c->d, c->cep, 10000, &err) != 0) {
        fprintf(stderr, "  connect: %s\n", err.text);
        return false;
    }
    return true;
}

// Stop everything; returns the broker's exit status.
static int
cluster_down(cluster_t *c, bool show_logs)
{
    drover_destroy(&c->d);
    for (int i = 0; i < MAX_WORKERS; i++) {
        dv_proc_stop(&c->workers[i], SIGTERM);
    }
    int rc = c->broker.pid ? dv_proc_stop(&c->broker, SIGTERM) : 0;
    if (rc != 0 || show_logs) {
        dv_proc_dump_log(c->dir, "broker.log");
        dv_proc_dump_log(c->dir, "worker0.log");
        dv_proc_dump_log(c->dir, "cli.log");
    }
    dv_test_rmdir(c->dir);
    free(c->dir);
    return rc;
}

// Train a model with the real CLI into dir/name.drvm.
static bool
train(cluster_t *c, const char *data, const char *algo, const char *name)
{
    char out[4300];
    snprintf(out, sizeof out, "%s/%s.drvm", c->dir, name);
    const char *args[] = {"local",  "train", "--data", dv_test_data(data),
                          "--algo", algo,    "--out",  out,
                          NULL};
    return dv_proc_run("DROVER_BIN", args, NULL, c->dir, "cli.log") == 0;
}

// Features of a CSV in a model's column order.
static dv_tensor_t *
features_for(const dv_model_t *m, const char *data)
{
    dv_dataset_t *ds = NULL;
    dv_tensor_t *x = NULL;
    dv_csv_opts_t o = {.target = m->target_name, .target_optional = true};
    dv_error_t err = {0};
    if (dv_csv_load(&ds, dv_test_data(data), &o, &err) == 0) {
        dv_dataset_select(ds, m->feature_names, m->n_features, &x, &err);
    }
    dv_dataset_destroy(&ds);
    return x;
}

static bool
same_file(const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    unsigned char *ta = dv_test_read_file(a, &la);
    unsigned char *tb = dv_test_read_file(b, &lb);
    bool same = ta && tb && la == lb && la > 0 && memcmp(ta, tb, la) == 0;
    free(ta);
    free(tb);
    return same;
}

// A short pause between two polls of a state (polls run until a deadline,
// never a number of times).
static void
nap(void)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

// The number after "key": in a JSON text, or NAN.
static double
json_num(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

// Through libdrover and through `drover infer`, outputs equal local
// prediction exactly, for a classifier and a regressor. (The CLI splits
// digits into jobs of 256 rows, the block size of dv_model_predict: BLAS
// may round a row differently in a block of another height.)
static void
test_infer_equals_local_predict(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 2, "4");
    if (!up) {
        cluster_down(&c, true);
        DV_CHECK(up);
        return;
    }
    const struct {
        const char *model, *train, *test, *algo;
    } cases[] = {
        {"iris", "iris_train.csv", "iris_test.csv", "softmax"},
        {"diabetes", "diabetes_train.csv", "diabetes_test.csv", "ridge"},
        {"digits", "digits_train.csv", "digits_test.csv", "mlp"},
    };
    int trained = 0, pushed = 0, bitwise = 0, cli_same = 0, classes_ok = 0;
    for (size_t i = 0; up && i < 3; i++) {
        if (!train(&c, cases[i].train, cases[i].algo, cases[i].model)) {
            continue;
        }
        trained++;
        char path[4300];
        snprintf(path, sizeof path, "%s/%s.drvm", c.dir, cases[i].model);
        drover_model_t info;
        drover_error_t err = {0};
        if (drover_model_push(c.d, path, cases[i].model, &info, &err) != 0) {
            fprintf(stderr, "  push: %s\n", err.text);
            continue;
        }
        pushed += info.version == 1;
        // libdrover: the floats are the ones dv_model_predict computes.
        dv_model_t *m = NULL;
        dv_error_t derr = {0};
        dv_model_load(&m, path, &derr);
        dv_tensor_t *x = m ? features_for(m, cases[i].test) : NULL;
        dv_tensor_t *want = NULL;
        if (x && dv_model_predict(m, x, &want, &derr) == 0) {
            drover_job_t job = DROVER_JOB_INIT;
            job.kind = "infer";
            job.model = cases[i].model;
            job.input = x->data;
            job.rows = x->rows;
            job.cols = x->cols;
            drover_result_t *r = NULL;
            if (drover_run(c.d, &job, WAIT_MS, &r, &err) == 0) {
                size_t rows = 0, cols = 0;
                const float *out = drover_result_output(r, &rows, &cols);
                bitwise +=
                    out && rows == want->rows && cols == want->cols &&
                    memcmp(out, want->data, rows * cols * sizeof(float)) == 0;
                size_t k = drover_result_n_classes(r);
                bool ok = m->labels ? k == m->labels->n : k == 0;
                for (size_t j = 0; ok && j < k; j++) {
                    ok = strcmp(drover_result_class(r, j),
                                m->labels->labels[j]) == 0;
                }
                char ref[300];
                snprintf(ref, sizeof ref, "%s@1", cases[i].model);
                classes_ok += ok && strcmp(drover_result_model(r), ref) == 0;
                drover_result_destroy(&r);
            } else {
                fprintf(stderr, "  run: %s\n", err.text);
            }
        }
        // The CLI: byte-identical to `drover local predict`.
        char remote[4300], local[4300];
        snprintf(remote, sizeof remote, "%s/remote.csv", c.dir);
        snprintf(local, sizeof local, "%s/local.csv", c.dir);
        const char *rargs[] = {"infer",
                               "--model",
                               cases[i].model,
                               "--data",
                               dv_test_data(cases[i].test),
                               "--broker",
                               c.cep,
                               "--batch",
                               "256",
                               NULL};
        int rrc = dv_proc_run("DROVER_BIN", rargs, remote, c.dir, "cli.log");
        const char *largs[] = {"local", "predict", "--model",
                               path,    "--data",  dv_test_data(cases[i].test),
                               NULL};
        int lrc = dv_proc_run("DROVER_BIN", largs, local, c.dir, "cli.log");
        cli_same += rrc == 0 && lrc == 0 && same_file(remote, local);
        dv_tensor_destroy(&want);
        dv_tensor_destroy(&x);
        dv_model_destroy(&m);
    }
    // --eval prints the metrics `drover local eval` prints for that model
    // and data.
    char eval_out[4300], local_eval[4300], iris_path[4300];
    snprintf(eval_out, sizeof eval_out, "%s/eval.json", c.dir);
    snprintf(local_eval, sizeof local_eval, "%s/local_eval.json", c.dir);
    snprintf(iris_path, sizeof iris_path, "%s/iris.drvm", c.dir);
    const char *eargs[] = {"infer",
                           "--model",
                           "iris",
                           "--data",
                           dv_test_data("iris_test.csv"),
                           "--eval",
                           "--json",
                           "--broker",
                           c.cep,
                           NULL};
    int erc =
        up ? dv_proc_run("DROVER_BIN", eargs, eval_out, c.dir, "cli.log") : -1;
    const char *leargs[] = {"local",   "eval",   "--model",
                            iris_path, "--data", dv_test_data("iris_test.csv"),
                            "--json",  NULL};
    int lerc =
        up ? dv_proc_run("DROVER_BIN", leargs, local_eval, c.dir, "cli.log")
           : -1;
    size_t len = 0;
    char *json = (char *)dv_test_read_file(eval_out, &len);
    char *ljson = (char *)dv_test_read_file(local_eval, &len);
    double acc = json_num(json, "accuracy"), f1 = json_num(json, "f1_macro");
    double lacc = json_num(ljson, "accuracy");
    double lf1 = json_num(ljson, "f1_macro");
    if (!(acc == lacc && f1 == lf1)) {
        fprintf(stderr, "  infer --eval: %s  local eval: %s", json ? json : "",
                ljson ? ljson : "");
    }
    free(json);
    free(ljson);
    // examples/client.c: a program using only drover.h and libdrover.so.
    char client_out[4300];
    snprintf(client_out, sizeof client_out, "%s/client.txt", c.dir);
    setenv("DROVER_BROKER", c.cep, 1);
    const char *cargs[] = {"iris", "5.1", "3.5", "1.4", "0.2", NULL};
    int crc = dv_proc_run("DROVER_EXAMPLE_CLIENT", cargs, client_out, c.dir,
                          "cli.log");
    unsetenv("DROVER_BROKER");
    char *client_text = (char *)dv_test_read_file(client_out, &len);
    // The probabilities `drover local predict` gives that row (printed
    // with %g; the client prints %.4f: equal to within its rounding).
    char row_csv[4300], row_out[4300];
    snprintf(row_csv, sizeof row_csv, "%s/row.csv", c.dir);
    snprintf(row_out, sizeof row_out, "%s/row_pred.csv", c.dir);
    const char *row = "sepal_length_cm,sepal_width_cm,petal_length_cm,"
                      "petal_width_cm\n5.1,3.5,1.4,0.2\n";
    dv_test_write_file(row_csv, row, strlen(row));
    const char *pargs[] = {"local",  "predict", "--model", iris_path,
                           "--data", row_csv,   NULL};
    int prc = dv_proc_run("DROVER_BIN", pargs, row_out, c.dir, "cli.log");
    char *pred = (char *)dv_test_read_file(row_out, &len);
    const char *line = pred ? strchr(pred, '\n') : NULL; // after the header
    int same_probs = 0;
    const char *at = client_text ? strstr(client_text, "iris@1 ran on w") : 0;
    for (int k = 0; line && at && k < 3; k++) {
        char name[8];
        snprintf(name, sizeof name, " %d=", k); // the classes are "0".."2"
        at = strstr(at, name);
        const char *col = line + 1;
        for (int skip = 0; skip < 2 + k && col; skip++) { // class, label
            col = strchr(col, ',');
            col = col ? col + 1 : NULL;
        }
        if (at && col &&
            fabs(strtod(at + strlen(name), NULL) - strtod(col, NULL)) <=
                0.00005 + 1e-6) {
            same_probs++;
        }
    }
    if (same_probs != 3) {
        fprintf(stderr, "  client: %s  local predict: %s",
                client_text ? client_text : "", pred ? pred : "");
    }
    bool client_ok = crc == 0 && prc == 0 && same_probs == 3;
    free(pred);
    free(client_text);
    int exit_rc = cluster_down(&c, !(up && cli_same == 3));
    DV_CHECK(up);
    DV_CHECK_EQ(trained, 3);
    DV_CHECK_EQ(pushed, 3);
    DV_CHECK_EQ(bitwise, 3);
    DV_CHECK_EQ(classes_ok, 3);
    DV_CHECK_EQ(cli_same, 3);
    DV_CHECK_EQ(erc, 0);
    DV_CHECK_EQ(lerc, 0);
    DV_CHECK(acc > 0.9);   // iris softmax: 29 of 30
    DV_CHECK(acc == lacc); // the same figures as `drover local eval`
    DV_CHECK(f1 == lf1);
    DV_CHECK(client_ok);
    DV_CHECK_EQ(exit_rc, 0);
}

static int
run_rows(drover_t *d,
         const char *model,
         const float *x,
         size_t rows,
         size_t cols,
         drover_result_t **r,
         drover_error_t *err)
{
    drover_job_t job = DROVER_JOB_INIT;
    job.kind = "infer";
    job.model = model;
    job.input = x;
    job.rows = rows;
    job.cols = cols;
    return drover_run(d, &job, WAIT_MS, r, err);
}

// Bad requests get precise errors; the worker and broker keep serving.
static void
test_bad_requests_get_clear_errors(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 1, "4");
    if (!up) {
        cluster_down(&c, true);
        DV_CHECK(up);
        return;
    }
    bool trained = up && train(&c, "iris_train.csv", "softmax", "iris");
    char path[4300];
    snprintf(path, sizeof path, "%s/iris.drvm", c.dir);
    drover_error_t err = {0};
    int push = trained ? drover_model_push(c.d, path, "iris", NULL, &err) : -1;
    float good[8] = {5.1f, 3.5f, 1.4f, 0.2f, 6.7f, 3.0f, 5.2f, 2.3f};
    float nan_row[4] = {5.1f, NAN, 1.4f, 0.2f};
    drover_result_t *r = NULL;
    int codes[6];
    codes[0] = run_rows(c.d, "nope", good, 2, 4, &r, &err);
    codes[1] = run_rows(c.d, "iris@9", good, 2, 4, &r, &err);
    codes[2] = run_rows(c.d, "iris", good, 1, 8, &r, &err); // wrong width
    codes[3] = run_rows(c.d, "bad name!", good, 2, 4, &r, &err);
    // NaN reaches the worker, which fails that job only.
    int nan_rc = run_rows(c.d, "iris", nan_row, 1, 4, &r, &err);
    const char *text = "";
    int nan_code = r ? drover_result_error(r, &text) : 0;
    bool nan_says_where = r && strstr(text, "row 1, feature 2");
    drover_result_destroy(&r);
    int ok_rc = run_rows(c.d, "iris", good, 2, 4, &r, &err);
    bool ok = ok_rc == 0 && drover_result_ok(r);
    drover_result_destroy(&r);
    // Model files the registry refuses.
    uint8_t junk[64] = "not a model";
    codes[4] =
        drover_model_push_bytes(c.d, junk, sizeof junk, "junk", NULL, &err);
    size_t len = 0;
    unsigned char *image = dv_test_read_file(path, &len);
    if (image && len > 100) {
        image[len / 2] ^= 0x40; // one flipped bit
    }
    codes[5] =
        image ? drover_model_push_bytes(c.d, image, len, "flipped", NULL, &err)
              : 0;
    free(image);
    drover_model_t *all = NULL;
    size_t n_models = 0;
    drover_model_list(c.d, &all, &n_models, &err);
    free(all);
    // A version removed after its job was submitted, before the job ran:
    // the job ends DV_ENOMODEL after one attempt (the job's own error, not
    // retried). The worker, which never loaded "gone", is frozen for two
    // requests (a submit and a remove: far below its 3 s lease), so the job
    // cannot run before the version is gone; thawed, it fetches the version
    // and the broker has none.
    int gone_push =
        push == 0 ? drover_model_push(c.d, path, "gone", NULL, &err) : -1;
    uint64_t gone_id = 0;
    int gone_sub = -1, gone_rm = -1;
    unsigned gone_removed = 0;
    if (gone_push == 0 && kill(c.workers[0].pid, SIGSTOP) == 0) {
        drover_job_t job = DROVER_JOB_INIT;
        job.kind = "infer";
        job.model = "gone";
        job.input = good;
        job.rows = 2;
        job.cols = 4;
        gone_sub = drover_submit(c.d, &job, 10000, &gone_id, &err);
        gone_rm = drover_model_rm(c.d, "gone", 1, &gone_removed, &err);
        kill(c.workers[0].pid, SIGCONT);
    }
    int gone_code = 0;
    uint32_t gone_attempts = 0;
    char gone_text[256] = "";
    if (gone_sub == 0 && drover_wait(c.d, gone_id, WAIT_MS, &r, &err) == 0) {
        const char *t = "";
        gone_code = drover_result_error(r, &t);
        gone_attempts = drover_result_attempts(r);
        snprintf(gone_text, sizeof gone_text, "%s", t ? t : "");
    }
    drover_result_destroy(&r);
    // A job for a model removed before submit is refused at submit.
    unsigned removed = 0;
    int rm_rc = drover_model_rm(c.d, "iris", 0, &removed, &err);
    int gone = run_rows(c.d, "iris", good, 2, 4, &r, &err);
    int exit_rc = cluster_down(&c, false);
    DV_CHECK(up);
    DV_CHECK_EQ(push, 0);
    DV_CHECK_EQ(codes[0], DV_ENOMODEL);
    DV_CHECK_EQ(codes[1], DV_ENOMODEL);
    DV_CHECK_EQ(codes[2], DV_ESHAPE);
    DV_CHECK_EQ(codes[3], DV_EINVAL);
    DV_CHECK_EQ(nan_rc, 0); // the job ran and failed
    DV_CHECK_EQ(nan_code, DV_ENAN);
    DV_CHECK(nan_says_where);
    DV_CHECK(ok);
    DV_CHECK(codes[4] == DV_EFORMAT || codes[4] == DV_ETRUNC);
    DV_CHECK_EQ(codes[5], DV_ECHECKSUM);
    DV_CHECK_EQ(n_models, 1);
    DV_CHECK_EQ(gone_push, 0);
    DV_CHECK_EQ(gone_sub, 0);
    DV_CHECK_EQ(gone_rm, 0);
    DV_CHECK_EQ(gone_removed, 1);
    if (gone_code != DV_ENOMODEL || gone_attempts != 1) {
        fprintf(stderr, "  removed after submit: %s, %u attempts: %s\n",
                dv_err_name(gone_code), gone_attempts, gone_text);
    }
    DV_CHECK_EQ(gone_code, DV_ENOMODEL);
    DV_CHECK_EQ(gone_attempts, 1);
    DV_CHECK(strstr(gone_text, "gone@1") != NULL);
    DV_CHECK_EQ(rm_rc, 0);
    DV_CHECK_EQ(removed, 1);
    DV_CHECK_EQ(gone, DV_ENOMODEL);
    DV_CHECK_EQ(exit_rc, 0);
}

// Versions, pinning, removal, and a registry that survives a restart (the
// workers find the new broker by themselves).
static void
test_registry_versions_survive_restart(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 1, "4");
    if (!up) {
        cluster_down(&c, true);
        DV_CHECK(up);
        return;
    }
    bool trained = up && train(&c, "iris_train.csv", "softmax", "iris");
    drover_error_t err = {0};
    drover_model_t v1 = {0}, v2 = {0}, latest = {0};
    char p1[4300];
    snprintf(p1, sizeof p1, "%s/iris.drvm", c.dir);
    int rc1 = trained ? drover_model_push(c.d, p1, "iris", &v1, &err) : -1;
    int rc2 = trained ? drover_model_push(c.d, p1, "iris", &v2, &err) : -1;
    int rc3 = drover_model_get(c.d, "iris", 0, &latest, &err);
    float x[4] = {5.1f, 3.5f, 1.4f, 0.2f};
    drover_result_t *r = NULL;
    char ran[64] = "";
    if (run_rows(c.d, "iris@1", x, 1, 4, &r, &err) == 0) {
        snprintf(ran, sizeof ran, "%s", drover_result_model(r));
    }
    drover_result_destroy(&r);
    unsigned removed = 0;
    int rm = drover_model_rm(c.d, "iris", 1, &removed, &err);
    // Restart the broker on the same data dir.
    drover_destroy(&c.d);
    int stop_rc = dv_proc_stop(&c.broker, SIGTERM);
    bool again =
        broker_start(&c) && drover_connect(&c.d, c.cep, 10000, &err) == 0;
    drover_model_t *all = NULL;
    size_t n = 0;
    int list_rc = again ? drover_model_list(c.d, &all, &n, &err) : -1;
    uint32_t kept_version = n == 1 ? all[0].version : 0;
    bool same_sum = n == 1 && strcmp(all[0].sha256, v2.sha256) == 0;
    free(all);
    // The worker re-registers with the new broker and serves again.
    int after = again ? run_rows(c.d, "iris", x, 1, 4, &r, &err) : -1;
    bool after_ok = after == 0 && drover_result_ok(r) &&
                    strcmp(drover_result_model(r), "iris@2") == 0;
    drover_result_destroy(&r);
    int exit_rc = cluster_down(&c, !after_ok);
    DV_CHECK(up);
    DV_CHECK_EQ(rc1, 0);
    DV_CHECK_EQ(rc2, 0);
    DV_CHECK_EQ(v1.version, 1);
    DV_CHECK_EQ(v2.version, 2);
    DV_CHECK_EQ(rc3, 0);
    DV_CHECK_EQ(latest.version, 2);
    DV_CHECK(strcmp(ran, "iris@1") == 0);
    DV_CHECK_EQ(rm, 0);
    DV_CHECK_EQ(removed, 1);
    DV_CHECK_EQ(stop_rc, 0);
    DV_CHECK(again);
    DV_CHECK_EQ(list_rc, 0);
    DV_CHECK_EQ(kept_version, 2);
    DV_CHECK(same_sum);
    DV_CHECK(after_ok);
    DV_CHECK_EQ(exit_rc, 0);
}

// A model heavy enough that one job takes a noticeable time (about 1 s of
// sgemm per job at 20,000 rows), pushed as "heavy".
static int
push_heavy(drover_t *d, size_t *cols)
{
    const size_t widths[] = {256, 1536, 1536, 1};
    const dv_act_t acts[] = {DV_ACT_RELU, DV_ACT_RELU, DV_ACT_IDENTITY};
    dv_model_t *m = dv_test_model(DV_TASK_REGRESSION, 3, widths, acts, 0);
    uint8_t *buf = NULL;
    size_t len = 0;
    dv_error_t err = {0};
    int rc = dv_model_encode(m, &buf, &len, &err);
    drover_error_t derr = {0};
    if (rc == 0) {
        rc = drover_model_push_bytes(d, buf, len, "heavy", NULL, &derr);
    }
    free(buf);
    dv_model_destroy(&m);
    *cols = widths[0];
    return rc;
}

// Wait until some worker reports a running job; returns its index (by the
// name "wN") or -1.
static int
busy_worker(drover_t *d)
{
    int64_t end = dv_test_now_ms() + WAIT_MS;
    while (dv_test_now_ms() < end) {
        drover_worker_t *w = NULL;
        size_t n = 0;
        drover_error_t err;
        int found = -1;
        if (drover_workers(d, &w, &n, &err) == 0) {
            for (size_t i = 0; i < n && found < 0; i++) {
                if (w[i].running > 0 && w[i].name[0] == 'w') {
                    found = atoi(w[i].name + 1);
                }
            }
        }
        drover_workers_free(&w, n);
        if (found >= 0) {
            return found;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

typedef struct {
    int done, failed, rerun;
} tally_t;

static void
on_result(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    tally_t *t = arg;
    if (drover_result_ok(r)) {
        t->done++;
    } else {
        const char *text = "";
        drover_result_error(r, &text);
        fprintf(stderr, "  failed: %s\n", text);
        t->failed++;
    }
    t->rerun += drover_result_attempts(r) >= 2;
}

// One async infer job on the heavy model; its result goes to *t.
static void
submit_heavy(drover_t *d,
             const float *x,
             size_t rows,
             size_t cols,
             tally_t *t,
             drover_error_t *err)
{
    drover_job_t job = DROVER_JOB_INIT;
    job.kind = "infer";
    job.model = "heavy";
    job.input = x;
    job.rows = rows;
    job.cols = cols;
    drover_submit_async(d, &job, on_result, t, err);
}

// SIGKILL a worker in the middle of a job: the broker notices (liveness),
// runs the job on the other worker, and every job ends with a result.
static void
test_killed_worker_job_reruns(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 2, "0");
    if (!up) {
        cluster_down(&c, true);
        DV_CHECK(up);
        return;
    }
    size_t cols = 0;
    int push = up ? push_heavy(c.d, &cols) : -1;
    const size_t rows = 20000;
    float *x = calloc(rows * (cols ? cols : 1), sizeof(float));
    tally_t t = {0};
    drover_error_t err = {0};
    for (int i = 0; push == 0 && i < 3; i++) {
        submit_heavy(c.d, x, rows, cols, &t, &err);
    }
    int victim = push == 0 ? busy_worker(c.d) : -1;
    if (victim >= 0 && victim < MAX_WORKERS) {
        kill(c.workers[victim].pid, SIGKILL);
        dv_proc_stop(&c.workers[victim], SIGKILL);
    }
    int64_t end = dv_test_now_ms() + 3 * WAIT_MS;
    while (drover_pending(c.d) > 0 && dv_test_now_ms() < end) {
        drover_poll(c.d, 1000, &err);
    }
    free(x);
    int exit_rc = cluster_down(&c, t.done != 3);
    DV_CHECK(up);
    DV_CHECK_EQ(push, 0);
    DV_CHECK(victim >= 0);
    DV_CHECK_EQ(t.done, 3);
    DV_CHECK_EQ(t.failed, 0);
    DV_CHECK(t.rerun >= 1);
    DV_CHECK_EQ(exit_rc, 0);
}

// SIGTERM to a busy worker: it finishes the job (one attempt, no re-run),
// takes no new one, and exits 0; the queued job waits for another worker.
static void
test_sigterm_drains_worker(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 1, "0");
    if (!up) {
        cluster_down(&c, true);
        DV_CHECK(up);
        return;
    }
    size_t cols = 0;
    int push = up ? push_heavy(c.d, &cols) : -1;
    const size_t rows = 20000;
    float *x = calloc(rows * (cols ? cols : 1), sizeof(float));
    tally_t t = {0};
    drover_error_t err = {0};
    for (int i = 0; push == 0 && i < 2; i++) {
        submit_heavy(c.d, x, rows, cols, &t, &err);
    }
    int busy = push == 0 ? busy_worker(c.d) : -1;
    int worker_exit = busy == 0 ? dv_proc_stop(&c.workers[0], SIGTERM) : -2;
    // The first job is done; the second is still queued.
    int64_t end = dv_test_now_ms() + WAIT_MS;
    while (t.done + t.failed < 1 && dv_test_now_ms() < end) {
        drover_poll(c.d, 500, &err);
    }
    int first_done = t.done;
    drover_status_t s;
    int st = drover_status(c.d, &s, &err);
    uint64_t queued = s.queued, workers = s.workers;
    if (st == 0) {
        drover_status_clear(&s);
    }
    // A new worker takes the queued job.
    bool again = worker_start(&c, 1, "0");
    end = dv_test_now_ms() + 2 * WAIT_MS;
    while (drover_pending(c.d) > 0 && dv_test_now_ms() < end) {
        drover_poll(c.d, 1000, &err);
    }
    free(x);
    int exit_rc =
        cluster_down(&c, t.done != 2 || worker_exit != 0 || t.rerun != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(push, 0);
    DV_CHECK_EQ(busy, 0);
    DV_CHECK_EQ(worker_exit, 0);
    DV_CHECK_EQ(first_done, 1);
    DV_CHECK_EQ(st, 0);
    DV_CHECK_EQ(queued, 1);
    DV_CHECK_EQ(workers, 0);
    DV_CHECK(again);
    DV_CHECK_EQ(t.done, 2);
    DV_CHECK_EQ(t.rerun, 0);
    DV_CHECK_EQ(exit_rc, 0);
}

// The model (name@version) that ran an infer of ref, into ran ("" when
// it failed; *code gets the error).
static void
ran_with(cluster_t *c, const char *ref, char *ran, size_t size, int *code)
{
    float x[4] = {5.1f, 3.5f, 1.4f, 0.2f};
    drover_result_t *r = NULL;
    drover_error_t err = {0};
    ran[0] = '\0';
    *code = run_rows(c->d, ref, x, 1, 4, &r, &err);
    if (*code == 0 && drover_result_ok(r)) {
        snprintf(ran, size, "%s", drover_result_model(r));
    } else if (*code == 0) {
        *code = drover_result_error(r, NULL);
    }
    drover_result_destroy(&r);
}

// Aliases: NAME@ALIAS runs the version the alias names at submit; moving
// it switches new jobs over once the workers that served the old version
// have loaded the new one (until then the old one serves), moving it back
// is the rollback; an aliased
// version cannot be removed; aliases survive a restart; the CLI sets and
// removes them.
static void
test_aliases_switch_and_roll_back(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 1, "4");
    bool trained = up && train(&c, "iris_train.csv", "softmax", "iris");
    drover_error_t err = {0};
    drover_model_t v1 = {0}, v2 = {0};
    char p[4300];
    snprintf(p, sizeof p, "%s/iris.drvm", c.dir);
    int push = trained ? drover_model_push(c.d, p, "iris", &v1, &err) |
                             drover_model_push(c.d, p, "iris", &v2, &err)
                       : -1;
    uint32_t prev0 = 9, prev1 = 9;
    int a1 = up ? drover_model_alias(c.d, "iris", "prod", 1, &prev0, &err) : -1;
    char ran1[64], ran2[64], ran3[64], ran4[64];
    int code1 = 0, code2 = 0, code3 = 0, code4 = 0;
    ran_with(&c, "iris@prod", ran1, sizeof ran1, &code1);
    // The worker holds iris@1 now. Frozen, it cannot load iris@2: the
    // alias keeps serving 1 until it has (no request waits for a load).
    bool held = false;
    int64_t end = dv_test_now_ms() + 10000;
    while (up && !held && dv_test_now_ms() < end) {
        drover_worker_t *ws = NULL;
        size_t nw = 0;
        if (drover_workers(c.d, &ws, &nw, &err) == 0 && nw == 1) {
            for (size_t k = 0; k < ws[0].n_models; k++) {
                held |= strcmp(ws[0].models[k], "iris@1") == 0;
            }
        }
        drover_workers_free(&ws, nw);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (held) {
        kill(c.workers[0].pid, SIGSTOP);
    }
    int a2 =
        held ? drover_model_alias(c.d, "iris", "prod", 2, &prev1, &err) : -1;
    float x[4] = {5.1f, 3.5f, 1.4f, 0.2f};
    drover_job_t job = DROVER_JOB_INIT;
    job.kind = "infer";
    job.model = "iris@prod";
    job.input = x;
    job.rows = 1;
    job.cols = 4;
    uint64_t during = 0;
    if (held) {
        drover_submit(c.d, &job, 10000, &during, &err);
        kill(c.workers[0].pid, SIGCONT);
    }
    char ran_during[64] = "";
    drover_result_t *r = NULL;
    if (during && drover_wait(c.d, during, WAIT_MS, &r, &err) == 0 &&
        drover_result_ok(r)) {
        snprintf(ran_during, sizeof ran_during, "%s", drover_result_model(r));
    }
    drover_result_destroy(&r);
    // Once the worker has loaded iris@2, prod names it; nothing fails on
    // the way.
    int failures = 0;
    end = dv_test_now_ms() + 20000;
    do {
        ran_with(&c, "iris@prod", ran2, sizeof ran2, &code2);
        failures += code2 != 0;
    } while (strcmp(ran2, "iris@2") != 0 && dv_test_now_ms() < end);
    unsigned removed = 0;
    int rm = up ? drover_model_rm(c.d, "iris", 2, &removed, &err) : 0;
    const char *back[] = {"models",   "alias", "iris@1", "prod",
                          "--broker", c.cep,   NULL};
    int cli_alias =
        up ? dv_proc_run("DROVER_BIN", back, NULL, c.dir, "cli.log") : -1;
    drover_model_t got = {0};
    int get_rc = up ? drover_model_get(c.d, "iris", 1, &got, &err) : -1;
    // Restart: the alias is where it was.
    drover_destroy(&c.d);
    int stop_rc = up ? dv_proc_stop(&c.broker, SIGTERM) : -1;
    bool again =
        up && broker_start(&c) && drover_connect(&c.d, c.cep, 10000, &err) == 0;
    ran_with(&c, "iris@prod", ran3, sizeof ran3, &code3);
    const char *un[] = {"models",   "unalias", "iris", "prod",
                        "--broker", c.cep,     NULL};
    int cli_unalias =
        again ? dv_proc_run("DROVER_BIN", un, NULL, c.dir, "cli.log") : -1;
    ran_with(&c, "iris@prod", ran4, sizeof ran4, &code4);
    // Garbage collection: with v3 pushed and canary naming v1, keeping the
    // newest one removes v2 only (an alias pins v1).
    drover_model_t v3 = {0};
    int push3 = again ? drover_model_push(c.d, p, "iris", &v3, &err) : -1;
    int canary =
        again ? drover_model_alias(c.d, "iris", "canary", 1, NULL, &err) : -1;
    uint32_t removed_v[8] = {0};
    size_t n_removed = 0;
    int gc =
        again ? drover_model_gc(c.d, "iris", 1, removed_v, 8, &n_removed, &err)
              : -1;
    drover_model_t *all = NULL;
    size_t n_all = 0;
    int list_rc = again ? drover_model_list(c.d, &all, &n_all, &err) : -1;
    bool kept_1_and_3 =
        n_all == 2 && all[0].version == 1 && all[1].version == 3;
    free(all);
    int exit_rc = cluster_down(&c, code3 != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(push, 0);
    DV_CHECK_EQ(a1, 0);
    DV_CHECK_EQ(prev0, 0);
    DV_CHECK_STR_EQ(ran1, "iris@1");
    DV_CHECK(held);
    DV_CHECK_EQ(a2, 0);
    DV_CHECK_EQ(prev1, 1);
    DV_CHECK(during > 0);
    DV_CHECK_STR_EQ(ran_during, "iris@1"); // accepted while 2 was loading
    DV_CHECK_STR_EQ(ran2, "iris@2");
    DV_CHECK_EQ(failures, 0);
    DV_CHECK_EQ(rm, DV_EINVAL); // prod names it
    DV_CHECK_EQ(cli_alias, 0);
    DV_CHECK_EQ(get_rc, 0);
    DV_CHECK_STR_EQ(got.aliases, "prod");
    DV_CHECK_EQ(stop_rc, 0);
    DV_CHECK(again);
    DV_CHECK_STR_EQ(ran3, "iris@1");
    DV_CHECK_EQ(cli_unalias, 0);
    DV_CHECK_EQ(code4, DV_ENOMODEL);
    DV_CHECK_EQ(push3, 0);
    DV_CHECK_EQ(canary, 0);
    DV_CHECK_EQ(gc, 0);
    DV_CHECK_EQ(n_removed, 1);
    DV_CHECK_EQ(removed_v[0], 2);
    DV_CHECK_EQ(list_rc, 0);
    DV_CHECK(kept_1_and_3);
    DV_CHECK_EQ(exit_rc, 0);
}

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
    cluster_t c;
    bool up = cluster_up(&c, 1, "0");
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
        ran_with(&c, "trained@1", ran, sizeof ran, &code);
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
    if (up && drover_train(c.d, &t, WAIT_MS, &r, &err) == 0) {
        const char *text = "";
        bad_code = drover_result_error(r, &text);
        says_line = strstr(text, "line 3") != NULL;
    }
    drover_result_destroy(&r);
    int exit_rc = cluster_down(&c, same != 2);
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
    cluster_t *c;
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
                 ? drover_train(d, &t, WAIT_MS, &r, &err)
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
    cluster_t c;
    bool up = cluster_up(&c, 1, "4");
    bool trained = up && train(&c, "iris_train.csv", "softmax", "iris");
    drover_error_t err = {0};
    drover_model_t v1 = {0}, v2 = {0};
    char p[4300];
    snprintf(p, sizeof p, "%s/iris.drvm", c.dir);
    int push1 = trained ? drover_model_push(c.d, p, "iris", &v1, &err) : -1;
    char ran1[64] = "", ran2[64] = "", ran_during[64] = "";
    int code1 = 0, code2 = 0;
    ran_with(&c, "iris", ran1, sizeof ran1, &code1); // the worker loads @1
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
    if (during && drover_wait(c.d, during, WAIT_MS, &r, &err) == 0 &&
        drover_result_ok(r)) {
        snprintf(ran_during, sizeof ran_during, "%s", drover_result_model(r));
    }
    drover_result_destroy(&r);
    int failures = 0;
    int64_t end = dv_test_now_ms() + 20000;
    do {
        ran_with(&c, "iris", ran2, sizeof ran2, &code2);
        failures += code2 != 0;
    } while (up && strcmp(ran2, "iris@2") != 0 && dv_test_now_ms() < end);
    int exit_rc = cluster_down(&c, failures != 0);
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
    cluster_t c;
    bool up = cluster_up(&c, 1, "0");
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
    if (push == 0 && drover_train(c.d, &t, WAIT_MS, &r, &err) == 0) {
        code = drover_result_error(r, NULL);
    }
    drover_result_destroy(&r);
    // The same figures from an evaluate job.
    drover_job_t ej = DROVER_JOB_INIT;
    ej.kind = "evaluate";
    ej.model = "lin@1";
    ej.dataset = "iris-te";
    double acc_job = -1;
    if (code == 0 && drover_run(c.d, &ej, WAIT_MS, &r, &err) == 0) {
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
    bool again =
        up && broker_start(&c) && drover_connect(&c.d, c.cep, 10000, &err) == 0;
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
    bool trained = again && train(&c, "iris_train.csv", "softmax", "pushed");
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
    int exit_rc = cluster_down(&c, !g->has);
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
registry_holds(cluster_t *c,
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
    cluster_t c;
    bool up = cluster_up(&c, 1, "0");
    train_run_t tr = {&c,  0,          -1, -1, 0, 0, true, "epochs=20000",
                      200, 1700000000, ""};
    pthread_t th;
    bool started = up && pthread_create(&th, NULL, train_thread, &tr) == 0;
    // Job 1 is the training job: wait for a checkpoint past epoch 1.
    drover_job_info_t info = {0};
    drover_error_t err = {0};
    uint32_t ck_epoch = 0;
    int64_t end = dv_test_now_ms() + WAIT_MS;
    while (started && ck_epoch == 0 && dv_test_now_ms() < end) {
        if (drover_job_info(c.d, 1, &info, &err) == 0) {
            ck_epoch = info.checkpoint_epoch;
        }
        nap();
    }
    bool mid = ck_epoch > 0 && ck_epoch < 20000 && info.epoch < 20000;
    if (mid) {
        kill(c.workers[0].pid, SIGKILL);
        dv_proc_stop(&c.workers[0], SIGKILL);
    }
    bool second = mid && worker_start(&c, 1, "0");
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
        "local",    "train", "--data",     dv_test_data("iris_train.csv"),
        "--algo",   "mlp",   "--hidden",   "32",
        "--epochs", "20000", "--patience", "0",
        "--out",    local,   NULL};
    int local_rc =
        second ? dv_proc_run("DROVER_BIN", largs, NULL, c.dir, "cli.log") : -1;
    unsetenv("SOURCE_DATE_EPOCH");
    bool same = local_rc == 0 && registry_holds(&c, "slow", 1, local);
    int exit_rc = cluster_down(&c, !same || resumed_at <= 0);
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
    DV_CHECK(resumed_at < 20000);
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
    cluster_t c;
    bool up = cluster_up(&c, 1, "0");
    char csv_path[4300], local[4300], logp[4300];
    snprintf(local, sizeof local, "%s/local.drvm", c.dir);
    snprintf(logp, sizeof logp, "%s/worker1.log", c.dir);
    snprintf(csv_path, sizeof csv_path, "%s", dv_test_data("iris_train.csv"));
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    const char *targs[] = {
        "train", "--data",   csv_path,  "--algo",     "mlp", "--hidden",
        "32",    "--epochs", "20000",   "--patience", "0",   "--checkpoint-ms",
        "200",   "--model",  "durable", "--broker",   c.cep, NULL};
    dv_proc_t cli = up ? dv_proc_start("DROVER_BIN", targs, c.dir, "cli.log")
                       : (dv_proc_t){0, -1};
    drover_job_info_t info = {0};
    drover_error_t err = {0};
    uint32_t ck_epoch = 0;
    int64_t end = dv_test_now_ms() + WAIT_MS;
    // A checkpoint the broker holds is not yet one it stored: kill -9
    // keeps only what a commit wrote (stored_epoch).
    while (cli.pid && ck_epoch == 0 && dv_test_now_ms() < end) {
        if (drover_job_info(c.d, 1, &info, &err) == 0) {
            ck_epoch = info.checkpoint_stored_epoch;
        }
        nap();
    }
    bool mid =
        ck_epoch > 0 && info.epoch < 20000 && info.checkpoint_epoch >= ck_epoch;
    drover_destroy(&c.d);
    kill(c.broker.pid, SIGKILL);
    kill(c.workers[0].pid, SIGKILL);
    dv_proc_stop(&c.broker, SIGKILL);
    dv_proc_stop(&c.workers[0], SIGKILL);
    dv_proc_stop(&cli, SIGKILL); // its connection went with the broker
    bool again = mid && broker_start(&c) &&
                 drover_connect(&c.d, c.cep, 10000, &err) == 0;
    drover_job_info_t back = {0};
    int back_rc = again ? drover_job_info(c.d, 1, &back, &err) : -1;
    bool second = again && worker_start(&c, 1, "0");
    drover_result_t *r = NULL;
    int code = -1;
    if (second && drover_wait(c.d, 1, WAIT_MS, &r, &err) == 0) {
        code = drover_result_error(r, NULL);
    }
    drover_result_destroy(&r);
    long resumed_at = resumed_epoch(logp);
    const char *largs[] = {"local",    "train", "--data",     csv_path,
                           "--algo",   "mlp",   "--hidden",   "32",
                           "--epochs", "20000", "--patience", "0",
                           "--out",    local,   NULL};
    int local_rc =
        code == 0 ? dv_proc_run("DROVER_BIN", largs, NULL, c.dir, "cli.log")
                  : -1;
    unsetenv("SOURCE_DATE_EPOCH");
    bool same = local_rc == 0 && registry_holds(&c, "durable", 1, local);
    int exit_rc = cluster_down(&c, !same || resumed_at <= 0);
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
    cluster_t c;
    bool up = cluster_up(&c, 1, "0");
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
    int exit_rc = cluster_down(&c, !watched);
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
                ? drover_train(d, &t, WAIT_MS, &r, &err)
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
    cluster_t c;
    bool up = cluster_up(&c, 2, "0");
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
            drover_wait(c.d, nap_id, WAIT_MS, &nr, &err);
            drover_result_destroy(&nr);
        }
        drover_train_t t = {0};
        t.model = "dia-ols";
        t.algo = "ols";
        t.dataset = "dia";
        drover_result_t *r = NULL;
        if (drover_train(c.d, &t, WAIT_MS, &r, &err) != 0 ||
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
    int exit_rc = cluster_down(&c, fetches != 1);
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
    cluster_t c;
    bool up = cluster_up(&c, 1, "0");
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
        if (drover_train(c.d, &t, WAIT_MS, &r, &err) == 0) {
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
            int64_t end = dv_test_now_ms() + WAIT_MS; // job 3 accepted
            while (drover_job_info(c.d, 3, &ji, &err) != 0 &&
                   dv_test_now_ms() < end) {
                nap();
            }
            unsigned removed = 0;
            drover_dataset_rm(c.d, "gone", 0, &removed, &err);
            kill(c.workers[0].pid, SIGCONT);
            pthread_join(th, NULL);
        } else {
            kill(c.workers[0].pid, SIGCONT);
        }
    }
    int exit_rc = cluster_down(&c, codes[0] != 0 || fetches != 1);
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
    cluster_t c;
    bool up = cluster_up(&c, 0, "0");
    const char *args[] = {"--broker",       c.wep,        "--name",     "w0",
                          "--concurrency",  "2",          "--prefetch", "2",
                          "--heartbeat-ms", HEARTBEAT_MS, NULL};
    c.workers[0] =
        up ? dv_proc_start("DROVER_WORKER_BIN", args, c.dir, "worker0.log")
           : (dv_proc_t){0, -1};
    char ready[9000];
    up = up && c.workers[0].pid &&
         dv_proc_wait_ready(&c.workers[0], ready, sizeof ready);
    bool trained = up && train(&c, "iris_train.csv", "softmax", "iris");
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
        nap();
    }
    bool started2 =
        one_running && pthread_create(&tb, NULL, train_thread, &b) == 0;
    bool second_queued = false;
    end = dv_test_now_ms() + 30000;
    while (started2 && !second_queued && dv_test_now_ms() < end) {
        second_queued = drover_job_info(c.d, 2, &info, &err) == 0 &&
                        strcmp(info.state, "queued") == 0;
        nap();
    }
    // Inference now: served by the free thread while job 1 trains.
    char ran[64] = "";
    int code = -1;
    if (second_queued) {
        ran_with(&c, "iris@1", ran, sizeof ran, &code);
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
    int exit_rc = cluster_down(&c, code != 0);
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
// free for the next job long before the training would have ended.
static void
test_cancel_stops_training(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 1, "0");
    train_run_t tr = {&c, 0, -1, -1, 0, 0, true, "epochs=400000", // ~40 s
                      0,  0, ""};
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
    int64_t t0 = dv_test_now_ms();
    drover_job_t echo = DROVER_JOB_INIT;
    echo.payload = "after";
    echo.payload_len = 5;
    drover_result_t *r = NULL;
    int echo_rc = running ? drover_run(c.d, &echo, 30000, &r, &err) : -1;
    int64_t waited = dv_test_now_ms() - t0;
    drover_result_destroy(&r);
    if (started) {
        pthread_join(th, NULL);
    }
    int exit_rc = cluster_down(&c, echo_rc != 0);
    DV_CHECK(up);
    DV_CHECK(running);
    DV_CHECK_EQ(cancel_rc, 0);
    DV_CHECK_EQ(tr.code, DV_ECANCELED);
    DV_CHECK_EQ(echo_rc, 0);
    DV_CHECK(waited < 15000); // the training had ~40 s left
    DV_CHECK_EQ(exit_rc, 0);
}

// Dynamic batching. One worker is frozen while jobs reach it, so what
// forms is known: iris (max_batch_rows 6, max_delay_us 1 s: the first
// batch waits for six rows) gets 7 one-row jobs, the third with a NaN; a
// second model of the same file gets 3; iris at priority 5 gets 2, one of
// them cancelled. Thawed, the worker runs iris's first six (the NaN fails
// alone, five share a pass), then the seventh alone after the delay, the
// other model's three together, the one prio-5 job left alone: different
// models or priorities never share a pass — and the other model's pass
// does not wait behind iris's delay — and every output equals the row
// predicted alone in-process, within float32 rounding (PROTOCOL.md,
// batching). The settings come back in the model's record.
static void
test_dynamic_batching(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 1, "16");
    bool trained = up && train(&c, "iris_train.csv", "softmax", "iris");
    char path[4300];
    snprintf(path, sizeof path, "%s/iris.drvm", c.dir);
    drover_error_t err = {0};
    int push1 = trained ? drover_model_push(c.d, path, "iris", NULL, &err) : -1;
    int push2 =
        push1 == 0 ? drover_model_push(c.d, path, "other", NULL, &err) : -1;
    uint32_t cfg_rows = 0, cfg_delay = 0;
    int cfg_bad =
        push2 == 0 ? drover_model_config(c.d, "iris", 0, -1, NULL, NULL, &err)
                   : -1;
    int cfg = push2 == 0 ? drover_model_config(c.d, "iris", 6, 1000000,
                                               &cfg_rows, &cfg_delay, &err)
                         : -1;
    drover_model_t shown = {0}, other = {0};
    drover_model_get(c.d, "iris", 0, &shown, &err);
    drover_model_get(c.d, "other", 0, &other, &err);
    dv_model_t *m = NULL;
    dv_error_t derr = {0};
    dv_model_load(&m, path, &derr);
    dv_tensor_t *x = m ? features_for(m, "iris_test.csv") : NULL;
    // Warm: both models loaded on the worker before it is frozen.
    drover_result_t *r = NULL;
    int warm = x ? run_rows(c.d, "iris", x->data, 1, 4, &r, &err) : -1;
    drover_result_destroy(&r);
    warm = warm == 0 ? run_rows(c.d, "other", x->data, 1, 4, &r, &err) : -1;
    drover_result_destroy(&r);
    enum { N = 12 };
    static const struct {
        const char *model;
        int32_t priority;
    } jobs[N] = {
        {"iris", 0},  {"iris", 0},  {"iris", 0}, {"iris", 0},
        {"iris", 0},  {"iris", 0},  {"iris", 0}, {"other", 0},
        {"other", 0}, {"other", 0}, {"iris", 5}, {"iris", 5},
    };
    uint64_t ids[N] = {0};
    float rows[N][4];
    size_t submitted = 0;
    bool frozen = warm == 0 && kill(c.workers[0].pid, SIGSTOP) == 0;
    for (size_t i = 0; frozen && i < N; i++) {
        memcpy(rows[i], x->data + 4 * (i % x->rows), sizeof rows[i]);
        if (i == 2) {
            rows[i][2] = NAN;
        }
        drover_job_t job = DROVER_JOB_INIT;
        job.kind = "infer";
        job.model = jobs[i].model;
        job.priority = jobs[i].priority;
        job.input = rows[i];
        job.rows = 1;
        job.cols = 4;
        submitted += drover_submit(c.d, &job, 10000, &ids[i], &err) == 0;
    }
    // Every job is on the frozen worker (17 credits) before it thaws.
    bool all_sent = false;
    int64_t end = dv_test_now_ms() + WAIT_MS;
    while (frozen && submitted == N && !all_sent && dv_test_now_ms() < end) {
        drover_status_t st = {0};
        all_sent = drover_status(c.d, &st, &err) == 0 && st.running == N;
        drover_status_clear(&st);
        if (!all_sent) {
            nap();
        }
    }
    int cancel = all_sent ? drover_job_cancel(c.d, ids[11], NULL, &err) : -1;
    if (frozen) {
        kill(c.workers[0].pid, SIGCONT);
    }
    // The other model's jobs run while iris's seventh waits out its delay,
    // not behind it.
    bool other_first = false;
    if (frozen && drover_wait(c.d, ids[7], WAIT_MS, &r, &err) == 0) {
        drover_job_info_t i6 = {0};
        other_first = drover_job_info(c.d, ids[6], &i6, &err) == 0 &&
                      strcmp(i6.state, "running") == 0;
        printf("  when the other model's job finished, iris's seventh was "
               "%s\n",
               i6.state);
    }
    drover_result_destroy(&r);
    int codes[N];
    uint32_t b_rows[N] = {0}, b_jobs[N] = {0};
    size_t close = 0;
    char nan_text[256] = "";
    for (size_t i = 0; i < N; i++) {
        codes[i] = -1;
        if (!ids[i] || drover_wait(c.d, ids[i], WAIT_MS, &r, &err) != 0) {
            continue;
        }
        const char *t = "";
        codes[i] = drover_result_error(r, &t);
        if (i == 2) {
            snprintf(nan_text, sizeof nan_text, "%s", t ? t : "");
        }
        drover_result_batch(r, &b_rows[i], &b_jobs[i]);
        size_t n = 0, k = 0;
        const float *out = drover_result_output(r, &n, &k);
        dv_tensor_t *one = dv_tensor_new(1, 4), *want = NULL;
        memcpy(one->data, rows[i], sizeof rows[i]);
        if (out && n == 1 && dv_model_predict(m, one, &want, &derr) == 0 &&
            k == want->cols) {
            bool near = true;
            for (size_t j = 0; j < k; j++) {
                near = near && fabsf(out[j] - want->data[j]) <=
                                   1e-5f * fmaxf(fabsf(want->data[j]), 1e-6f);
            }
            close += near;
        }
        dv_tensor_destroy(&want);
        dv_tensor_destroy(&one);
        drover_result_destroy(&r);
    }
    // jobs show: the version that ran and the pass, for a finished job.
    drover_job_info_t info0 = {0};
    int info_rc = ids[0] ? drover_job_info(c.d, ids[0], &info0, &err) : -1;
    printf("  batches (rows/jobs):");
    for (size_t i = 0; i < N; i++) {
        printf(" %s%u/%u", codes[i] ? "!" : "", b_rows[i], b_jobs[i]);
    }
    printf("\n");
    dv_tensor_destroy(&x);
    dv_model_destroy(&m);
    int exit_rc = cluster_down(&c, close != 10);
    DV_CHECK(up);
    DV_CHECK_EQ(push2, 0);
    DV_CHECK_EQ(cfg_bad, DV_EINVAL);
    DV_CHECK_EQ(cfg, 0);
    DV_CHECK_EQ(cfg_rows, 6);
    DV_CHECK_EQ(cfg_delay, 1000000);
    DV_CHECK_EQ(shown.max_batch_rows, 6);
    DV_CHECK_EQ(shown.max_delay_us, 1000000);
    DV_CHECK_EQ(other.max_batch_rows, DV_BATCH_ROWS_DEFAULT);
    DV_CHECK_EQ(other.max_delay_us, 0);
    DV_CHECK_EQ(warm, 0);
    DV_CHECK(frozen);
    DV_CHECK_EQ(submitted, N);
    DV_CHECK(all_sent);
    DV_CHECK_EQ(cancel, 0);
    static const int want_code[N] = {0, 0, DV_ENAN, 0, 0, 0,
                                     0, 0, 0,       0, 0, DV_ECANCELED};
    static const uint32_t want_jobs[N] = {5, 5, 0, 5, 5, 5, 1, 3, 3, 3, 1, 0};
    for (size_t i = 0; i < N; i++) {
        DV_CHECK_EQ(codes[i], want_code[i]);
        DV_CHECK_EQ(b_jobs[i], want_jobs[i]);
        DV_CHECK_EQ(b_rows[i], want_jobs[i]); // one row each
    }
    DV_CHECK(strstr(nan_text, "NaN") != NULL);
    DV_CHECK(other_first);
    DV_CHECK_EQ(close, 10);
    DV_CHECK_EQ(info_rc, 0);
    DV_CHECK_STR_EQ(info0.state, "done");
    DV_CHECK_STR_EQ(info0.model, "iris@1");
    DV_CHECK_EQ(info0.batch_rows, 5);
    DV_CHECK_EQ(info0.batch_jobs, 5);
    DV_CHECK_EQ(exit_rc, 0);
}

// Batches also form from jobs waiting at the broker: with one credit
// (prefetch 0), the worker is frozen on job A while 13 more wait in the
// broker's queue. Thawed, A runs alone (max_delay_us 1 s passes, nothing
// more can reach the worker); then the next job takes the jobs behind it
// along, up to max_batch_rows 10, on its one credit, and the last three
// go the same way: passes of 1, 10 and 3 jobs, every job done once.
static void
test_batches_from_the_broker_queue(void)
{
    cluster_t c;
    bool up = cluster_up(&c, 1, "0");
    bool trained = up && train(&c, "iris_train.csv", "softmax", "iris");
    char path[4300];
    snprintf(path, sizeof path, "%s/iris.drvm", c.dir);
    drover_error_t err = {0};
    int push = trained ? drover_model_push(c.d, path, "iris", NULL, &err) : -1;
    int cfg = push == 0 ? drover_model_config(c.d, "iris", 10, 1000000, NULL,
                                              NULL, &err)
                        : -1;
    float x[4] = {5.1f, 3.5f, 1.4f, 0.2f};
    drover_result_t *r = NULL;
    int warm = cfg == 0 ? run_rows(c.d, "iris", x, 1, 4, &r, &err) : -1;
    drover_result_destroy(&r);
    enum { N = 14 };
    uint64_t ids[N] = {0};
    size_t submitted = 0;
    bool frozen = warm == 0 && kill(c.workers[0].pid, SIGSTOP) == 0;
    bool queued = false;
    for (size_t i = 0; frozen && i < N; i++) {
        drover_job_t job = DROVER_JOB_INIT;
        job.kind = "infer";
        job.model = "iris";
        job.input = x;
        job.rows = 1;
        job.cols = 4;
        submitted += drover_submit(c.d, &job, 10000, &ids[i], &err) == 0;
    }
    int64_t end = dv_test_now_ms() + WAIT_MS;
    while (frozen && submitted == N && !queued && dv_test_now_ms() < end) {
        drover_status_t st = {0};
        queued = drover_status(c.d, &st, &err) == 0 && st.running == 1 &&
                 st.queued == N - 1;
        drover_status_clear(&st);
        if (!queued) {
            nap();
        }
    }
    if (frozen) {
        kill(c.workers[0].pid, SIGCONT);
    }
    uint32_t jobs_in[N] = {0};
    size_t done = 0;
    for (size_t i = 0; i < N; i++) {
        uint32_t rows = 0;
        if (ids[i] && drover_wait(c.d, ids[i], WAIT_MS, &r, &err) == 0 &&
            drover_result_error(r, NULL) == 0 &&
            drover_result_attempts(r) == 1) {
            done++;
            drover_result_batch(r, &rows, &jobs_in[i]);
        }
        drover_result_destroy(&r);
    }
    printf("  passes (jobs):");
    for (size_t i = 0; i < N; i++) {
        printf(" %u", jobs_in[i]);
    }
    printf("\n");
    int exit_rc = cluster_down(&c, done != N);
    DV_CHECK(up);
    DV_CHECK_EQ(push, 0);
    DV_CHECK_EQ(cfg, 0);
    DV_CHECK_EQ(warm, 0);
    DV_CHECK(frozen);
    DV_CHECK_EQ(submitted, N);
    DV_CHECK(queued);
    DV_CHECK_EQ(done, N);
    for (size_t i = 0; i < N; i++) {
        DV_CHECK_EQ(jobs_in[i], i == 0 ? 1 : i <= 10 ? 10 : 3);
    }
    DV_CHECK_EQ(exit_rc, 0);
}

static const dv_test_case_t cases[] = {
    {"training follows the data", test_training_follows_the_data},
    {"dynamic batching", test_dynamic_batching},
    {"batches from the broker's queue", test_batches_from_the_broker_queue},
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

    {"aliases switch and roll back", test_aliases_switch_and_roll_back},

    {"infer equals local predict", test_infer_equals_local_predict},
    {"bad requests get clear errors", test_bad_requests_get_clear_errors},
    {"registry versions survive a restart",
     test_registry_versions_survive_restart},
    {"killed worker's job re-runs", test_killed_worker_job_reruns},
    {"SIGTERM drains a busy worker", test_sigterm_drains_worker},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    // Workers compute with one BLAS thread each: OpenBLAS threads spin while
    // they wait, and on 2 shared cores two workers' spinning starved the
    // broker long enough to look dead (tests run in parallel).
    // This process compares its own predictions with theirs bit for bit, so
    // it uses the same count (different counts may round differently).
    // So do `drover local predict` runs (DROVER_THREADS).
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    setenv("DROVER_THREADS", "1", 1);
    dv_blas_set_threads(1);
    return dv_test_main(argc, argv, cases);
}
