// test_infer — inference jobs end to end with the real binaries: models
// trained by `drover local train`, pushed to drover-broker's registry, run
// by drover-worker processes, driven through libdrover and the `drover`
// CLI. Checks that results equal local prediction bit for bit, that bad
// requests get clear errors while serving goes on, that the registry
// versions and survives a broker restart, that a worker SIGKILLed mid-job
// has its job re-run elsewhere, that SIGTERM drains a busy worker, that
// aliases switch and roll back, and that jobs batch as PROTOCOL.md says.
// Training through the queue is test_infer_training.
//
// Everything runs on ipc:// in a temporary folder (dv_test_cluster);
// readiness comes from READY lines and the broker's worker list, never from
// sleeps.
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drover.h"
#include "dv_csv.h"
#include "dv_mem.h"
#include "dv_model.h"
#include "dv_modelfile.h"
#include "dv_proto.h"
#include "dv_test.h"
#include "dv_test_cluster.h"
#include "dv_test_proc.h"

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
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 2, "4");
    if (!up) {
        dv_tcluster_down(&c, true);
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
        if (!dv_tcluster_train(&c, cases[i].train, cases[i].algo,
                               cases[i].model)) {
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
            if (drover_run(c.d, &job, DV_TCLUSTER_WAIT_MS, &r, &err) == 0) {
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
    int exit_rc = dv_tcluster_down(&c, !(up && cli_same == 3));
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

static void
test_bad_requests_get_clear_errors(void)
{
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 1, "4");
    if (!up) {
        dv_tcluster_down(&c, true);
        DV_CHECK(up);
        return;
    }
    bool trained =
        up && dv_tcluster_train(&c, "iris_train.csv", "softmax", "iris");
    char path[4300];
    snprintf(path, sizeof path, "%s/iris.drvm", c.dir);
    drover_error_t err = {0};
    int push = trained ? drover_model_push(c.d, path, "iris", NULL, &err) : -1;
    float good[8] = {5.1f, 3.5f, 1.4f, 0.2f, 6.7f, 3.0f, 5.2f, 2.3f};
    float nan_row[4] = {5.1f, NAN, 1.4f, 0.2f};
    drover_result_t *r = NULL;
    int codes[6];
    codes[0] = dv_tcluster_run_rows(c.d, "nope", good, 2, 4, &r, &err);
    codes[1] = dv_tcluster_run_rows(c.d, "iris@9", good, 2, 4, &r, &err);
    codes[2] =
        dv_tcluster_run_rows(c.d, "iris", good, 1, 8, &r, &err); // wrong width
    codes[3] = dv_tcluster_run_rows(c.d, "bad name!", good, 2, 4, &r, &err);
    // NaN reaches the worker, which fails that job only.
    int nan_rc = dv_tcluster_run_rows(c.d, "iris", nan_row, 1, 4, &r, &err);
    const char *text = "";
    int nan_code = r ? drover_result_error(r, &text) : 0;
    bool nan_says_where = r && strstr(text, "row 1, feature 2");
    drover_result_destroy(&r);
    int ok_rc = dv_tcluster_run_rows(c.d, "iris", good, 2, 4, &r, &err);
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
    if (gone_sub == 0 &&
        drover_wait(c.d, gone_id, DV_TCLUSTER_WAIT_MS, &r, &err) == 0) {
        const char *t = "";
        gone_code = drover_result_error(r, &t);
        gone_attempts = drover_result_attempts(r);
        snprintf(gone_text, sizeof gone_text, "%s", t ? t : "");
    }
    drover_result_destroy(&r);
    // A job for a model removed before submit is refused at submit.
    unsigned removed = 0;
    int rm_rc = drover_model_rm(c.d, "iris", 0, &removed, &err);
    int gone = dv_tcluster_run_rows(c.d, "iris", good, 2, 4, &r, &err);
    int exit_rc = dv_tcluster_down(&c, false);
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
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 1, "4");
    if (!up) {
        dv_tcluster_down(&c, true);
        DV_CHECK(up);
        return;
    }
    bool trained =
        up && dv_tcluster_train(&c, "iris_train.csv", "softmax", "iris");
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
    if (dv_tcluster_run_rows(c.d, "iris@1", x, 1, 4, &r, &err) == 0) {
        snprintf(ran, sizeof ran, "%s", drover_result_model(r));
    }
    drover_result_destroy(&r);
    unsigned removed = 0;
    int rm = drover_model_rm(c.d, "iris", 1, &removed, &err);
    // Restart the broker on the same data dir.
    drover_destroy(&c.d);
    int stop_rc = dv_proc_stop(&c.broker, SIGTERM);
    bool again = dv_tcluster_broker_start(&c) &&
                 drover_connect(&c.d, c.cep, 10000, &err) == 0;
    drover_model_t *all = NULL;
    size_t n = 0;
    int list_rc = again ? drover_model_list(c.d, &all, &n, &err) : -1;
    uint32_t kept_version = n == 1 ? all[0].version : 0;
    bool same_sum = n == 1 && strcmp(all[0].sha256, v2.sha256) == 0;
    free(all);
    // The worker re-registers with the new broker and serves again.
    int after =
        again ? dv_tcluster_run_rows(c.d, "iris", x, 1, 4, &r, &err) : -1;
    bool after_ok = after == 0 && drover_result_ok(r) &&
                    strcmp(drover_result_model(r), "iris@2") == 0;
    drover_result_destroy(&r);
    int exit_rc = dv_tcluster_down(&c, !after_ok);
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
    *cols = widths[0];
    return dv_tcluster_push_model(d, m, "heavy");
}

// Wait until some worker reports a running job; returns its index (by the
// name "wN") or -1.
static int
busy_worker(drover_t *d)
{
    int64_t end = dv_test_now_ms() + DV_TCLUSTER_WAIT_MS;
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
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 2, "0");
    if (!up) {
        dv_tcluster_down(&c, true);
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
    if (victim >= 0 && victim < DV_TCLUSTER_MAX_WORKERS) {
        kill(c.workers[victim].pid, SIGKILL);
        dv_proc_stop(&c.workers[victim], SIGKILL);
    }
    int64_t end = dv_test_now_ms() + 3 * DV_TCLUSTER_WAIT_MS;
    while (drover_pending(c.d) > 0 && dv_test_now_ms() < end) {
        drover_poll(c.d, 1000, &err);
    }
    free(x);
    int exit_rc = dv_tcluster_down(&c, t.done != 3);
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
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 1, "0");
    if (!up) {
        dv_tcluster_down(&c, true);
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
    int64_t end = dv_test_now_ms() + DV_TCLUSTER_WAIT_MS;
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
    bool again = dv_tcluster_worker_start(&c, 1, "0");
    end = dv_test_now_ms() + 2 * DV_TCLUSTER_WAIT_MS;
    while (drover_pending(c.d) > 0 && dv_test_now_ms() < end) {
        drover_poll(c.d, 1000, &err);
    }
    free(x);
    int exit_rc =
        dv_tcluster_down(&c, t.done != 2 || worker_exit != 0 || t.rerun != 0);
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

// it switches new jobs over once the workers that served the old version
// have loaded the new one (until then the old one serves), moving it back
// is the rollback; an aliased
// version cannot be removed; aliases survive a restart; the CLI sets and
// removes them.
static void
test_aliases_switch_and_roll_back(void)
{
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 1, "4");
    bool trained =
        up && dv_tcluster_train(&c, "iris_train.csv", "softmax", "iris");
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
    dv_tcluster_ran_with(&c, "iris@prod", ran1, sizeof ran1, &code1);
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
    if (during &&
        drover_wait(c.d, during, DV_TCLUSTER_WAIT_MS, &r, &err) == 0 &&
        drover_result_ok(r)) {
        snprintf(ran_during, sizeof ran_during, "%s", drover_result_model(r));
    }
    drover_result_destroy(&r);
    // Once the worker has loaded iris@2, prod names it; nothing fails on
    // the way.
    int failures = 0;
    end = dv_test_now_ms() + 20000;
    do {
        dv_tcluster_ran_with(&c, "iris@prod", ran2, sizeof ran2, &code2);
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
    bool again = up && dv_tcluster_broker_start(&c) &&
                 drover_connect(&c.d, c.cep, 10000, &err) == 0;
    dv_tcluster_ran_with(&c, "iris@prod", ran3, sizeof ran3, &code3);
    const char *un[] = {"models",   "unalias", "iris", "prod",
                        "--broker", c.cep,     NULL};
    int cli_unalias =
        again ? dv_proc_run("DROVER_BIN", un, NULL, c.dir, "cli.log") : -1;
    dv_tcluster_ran_with(&c, "iris@prod", ran4, sizeof ran4, &code4);
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
    int exit_rc = dv_tcluster_down(&c, code3 != 0);
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
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 1, "16");
    bool trained =
        up && dv_tcluster_train(&c, "iris_train.csv", "softmax", "iris");
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
    int warm =
        x ? dv_tcluster_run_rows(c.d, "iris", x->data, 1, 4, &r, &err) : -1;
    drover_result_destroy(&r);
    warm = warm == 0
               ? dv_tcluster_run_rows(c.d, "other", x->data, 1, 4, &r, &err)
               : -1;
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
    int64_t end = dv_test_now_ms() + DV_TCLUSTER_WAIT_MS;
    while (frozen && submitted == N && !all_sent && dv_test_now_ms() < end) {
        drover_status_t st = {0};
        all_sent = drover_status(c.d, &st, &err) == 0 && st.running == N;
        drover_status_clear(&st);
        if (!all_sent) {
            dv_test_nap();
        }
    }
    int cancel = all_sent ? drover_job_cancel(c.d, ids[11], NULL, &err) : -1;
    if (frozen) {
        kill(c.workers[0].pid, SIGCONT);
    }
    // The other model's jobs run while iris's seventh waits out its delay,
    // not behind it.
    bool other_first = false;
    if (frozen &&
        drover_wait(c.d, ids[7], DV_TCLUSTER_WAIT_MS, &r, &err) == 0) {
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
        if (!ids[i] ||
            drover_wait(c.d, ids[i], DV_TCLUSTER_WAIT_MS, &r, &err) != 0) {
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
    int exit_rc = dv_tcluster_down(&c, close != 10);
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
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 1, "0");
    bool trained =
        up && dv_tcluster_train(&c, "iris_train.csv", "softmax", "iris");
    char path[4300];
    snprintf(path, sizeof path, "%s/iris.drvm", c.dir);
    drover_error_t err = {0};
    int push = trained ? drover_model_push(c.d, path, "iris", NULL, &err) : -1;
    int cfg = push == 0 ? drover_model_config(c.d, "iris", 10, 1000000, NULL,
                                              NULL, &err)
                        : -1;
    float x[4] = {5.1f, 3.5f, 1.4f, 0.2f};
    drover_result_t *r = NULL;
    int warm =
        cfg == 0 ? dv_tcluster_run_rows(c.d, "iris", x, 1, 4, &r, &err) : -1;
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
    int64_t end = dv_test_now_ms() + DV_TCLUSTER_WAIT_MS;
    while (frozen && submitted == N && !queued && dv_test_now_ms() < end) {
        drover_status_t st = {0};
        queued = drover_status(c.d, &st, &err) == 0 && st.running == 1 &&
                 st.queued == N - 1;
        drover_status_clear(&st);
        if (!queued) {
            dv_test_nap();
        }
    }
    if (frozen) {
        kill(c.workers[0].pid, SIGCONT);
    }
    uint32_t jobs_in[N] = {0};
    size_t done = 0;
    for (size_t i = 0; i < N; i++) {
        uint32_t rows = 0;
        if (ids[i] &&
            drover_wait(c.d, ids[i], DV_TCLUSTER_WAIT_MS, &r, &err) == 0 &&
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
    int exit_rc = dv_tcluster_down(&c, done != N);
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

// Push a regression model of n_layers layers (widths: n_layers + 1 of them;
// ReLU hidden layers, zero weights) whose last bias is out: every row
// predicts out.
static int
push_constant(drover_t *d,
              const char *name,
              const size_t *widths,
              size_t n_layers,
              float out)
{
    dv_act_t acts[4] = {DV_ACT_RELU, DV_ACT_RELU, DV_ACT_RELU, DV_ACT_RELU};
    acts[n_layers - 1] = DV_ACT_IDENTITY;
    dv_model_t *m =
        dv_test_model(DV_TASK_REGRESSION, n_layers, widths, acts, 0);
    m->layers[n_layers - 1].b[0] = out;
    return dv_tcluster_push_model(d, m, name);
}

// n one-row jobs through model, one at a time: how many came back equal
// to want.
static int
run_each(dv_tcluster_t *c, const char *model, size_t cols, float want, int n)
{
    float *row = dv_calloc(cols, sizeof(float));
    int right = 0;
    for (int i = 0; i < n; i++) {
        drover_result_t *r = NULL;
        drover_error_t err = {0};
        size_t rows = 0, k = 0;
        const float *y = NULL;
        if (dv_tcluster_run_rows(c->d, model, row, 1, cols, &r, &err) == 0) {
            y = drover_result_output(r, &rows, &k);
        }
        right += y && rows == 1 && k == 1 && y[0] == want;
        drover_result_destroy(&r);
    }
    free(row);
    return right;
}

// A forward pass within DV_INLINE_INFER_MACS (rows x parameters) runs on
// the worker's loop thread when no other pass runs, sparing two thread
// hand-offs; a larger one goes to the pool. The worker counts the first
// kind in the line it logs when it stops.
static void
test_small_passes_run_on_the_loop(void)
{
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 1, "0");
    const size_t tiny[] = {2, 1};          // 3 parameters
    const size_t wide[] = {1024, 1024, 1}; // 1,050,625: over 2^20
    bool pushed = up && push_constant(c.d, "tiny", tiny, 1, 0.5f) == 0 &&
                  push_constant(c.d, "wide", wide, 2, 2.0f) == 0;
    int tiny_right = pushed ? run_each(&c, "tiny", 2, 0.5f, 5) : 0;
    int wide_right = pushed ? run_each(&c, "wide", 1024, 2.0f, 3) : 0;
    int stop_rc = up ? dv_proc_stop(&c.workers[0], SIGTERM) : -1;
    char path[4400];
    snprintf(path, sizeof path, "%s/worker0.log", c.dir);
    size_t len = 0;
    char *log = up ? (char *)dv_test_read_file(path, &len) : NULL;
    static const char says[] = "failed; ";
    const char *at = log ? strstr(log, says) : NULL;
    long on_loop = at ? atol(at + strlen(says)) : -1;
    bool named = at && strstr(at, "forward passes on the loop thread");
    free(log);
    int exit_rc = dv_tcluster_down(&c, on_loop != 5);
    DV_CHECK(pushed);
    DV_CHECK_EQ(tiny_right, 5);
    DV_CHECK_EQ(wide_right, 3);
    DV_CHECK_EQ(stop_rc, 0);
    DV_CHECK(named);
    DV_CHECK_EQ(on_loop, 5); // the tiny ones, not the wide ones
    DV_CHECK_EQ(exit_rc, 0);
}

// A 1024-8-1 regression model with fixed, varied weights (the same on
// every call): ten of its rows make a frame (40 KiB) the worker reads in
// place, one row (4 KiB) a frame it copies.
enum { WIDE = 1024 };
static dv_model_t *
wide_model(void)
{
    const size_t widths[] = {WIDE, 8, 1};
    const dv_act_t acts[] = {DV_ACT_RELU, DV_ACT_IDENTITY};
    dv_model_t *m = dv_test_model(DV_TASK_REGRESSION, 2, widths, acts, 0);
    for (size_t l = 0; l < 2; l++) {
        dv_layer_t *layer = &m->layers[l];
        for (size_t i = 0; i < layer->n_in * layer->n_out; i++) {
            layer->w[i] = 0.05f * sinf((float)(7 * i + l));
        }
        for (size_t i = 0; i < layer->n_out; i++) {
            layer->b[i] = 0.1f * (float)(i + 1);
        }
    }
    return m;
}

// The count the worker's last log line gives after `after` ("" or -1).
static long
logged_count(const char *log, const char *after)
{
    const char *at = log ? strstr(log, "drained: ") : NULL;
    at = at ? strstr(at, after) : NULL;
    return at ? atol(at + strlen(after)) : -1;
}

// Wide rows batched at the broker reach the worker as one run_batch frame
// that its jobs read where it arrived, with no copy (a frame over 8 KiB,
// aligned): the pass of ten good rows stacks them there too, the pass
// with a NaN row in the middle stacks the nine others by copy. Each job's
// output equals the model's on its row alone, the NaN fails only its job,
// and the worker's drained line counts 21 inputs read in place (the
// two-row run and the two run_batches' jobs; not the one-row runs, 4 KiB)
// and one pass stacked in place.
static void
test_wide_rows_read_in_place(void)
{
    dv_tcluster_t c;
    bool up = dv_tcluster_up(&c, 1, "0");
    dv_model_t *local = wide_model();
    bool pushed = up && dv_tcluster_push_model(c.d, wide_model(), "wide") == 0;
    drover_error_t err = {0};
    int cfg =
        pushed ? drover_model_config(c.d, "wide", 10, 1000000, NULL, NULL, &err)
               : -1;
    enum { N = 21, NAN_AT = 15 };
    static float rows[N][WIDE];
    for (size_t i = 0; i < N; i++) {
        for (size_t j = 0; j < WIDE; j++) {
            rows[i][j] = cosf(0.01f * (float)(i * WIDE + j));
        }
    }
    rows[NAN_AT][WIDE / 2] = NAN;
    // Warm: a two-row `run` (8 KiB, read in place too).
    drover_result_t *r = NULL;
    dv_tensor_t two = {2, WIDE, rows[0]}, *want2 = NULL;
    dv_error_t derr = {0};
    size_t n2 = 0, k2 = 0;
    int warm =
        cfg == 0 ? dv_tcluster_run_rows(c.d, "wide", rows[0], 2, WIDE, &r, &err)
                 : -1;
    const float *out2 = warm == 0 ? drover_result_output(r, &n2, &k2) : NULL;
    bool warm_equal = out2 && n2 == 2 && k2 == 1 &&
                      dv_model_predict(local, &two, &want2, &derr) == 0 &&
                      fabsf(out2[0] - want2->data[0]) <=
                          1e-5f * fmaxf(fabsf(want2->data[0]), 1e-6f) &&
                      fabsf(out2[1] - want2->data[1]) <=
                          1e-5f * fmaxf(fabsf(want2->data[1]), 1e-6f);
    dv_tensor_destroy(&want2);
    drover_result_destroy(&r);
    uint64_t ids[N] = {0};
    size_t submitted = 0;
    bool frozen = warm == 0 && kill(c.workers[0].pid, SIGSTOP) == 0;
    for (size_t i = 0; frozen && i < N; i++) {
        drover_job_t job = DROVER_JOB_INIT;
        job.kind = "infer";
        job.model = "wide";
        job.input = rows[i];
        job.rows = 1;
        job.cols = WIDE;
        submitted += drover_submit(c.d, &job, 10000, &ids[i], &err) == 0;
    }
    bool queued = false;
    int64_t end = dv_test_now_ms() + DV_TCLUSTER_WAIT_MS;
    while (frozen && submitted == N && !queued && dv_test_now_ms() < end) {
        drover_status_t st = {0};
        queued = drover_status(c.d, &st, &err) == 0 && st.running == 1 &&
                 st.queued == N - 1;
        drover_status_clear(&st);
        if (!queued) {
            dv_test_nap();
        }
    }
    if (frozen) {
        kill(c.workers[0].pid, SIGCONT);
    }
    int codes[N];
    uint32_t jobs_in[N] = {0};
    size_t equal = 0;
    for (size_t i = 0; i < N; i++) {
        codes[i] = -1;
        if (!ids[i] ||
            drover_wait(c.d, ids[i], DV_TCLUSTER_WAIT_MS, &r, &err) != 0) {
            continue;
        }
        codes[i] = drover_result_error(r, NULL);
        uint32_t b_rows = 0;
        drover_result_batch(r, &b_rows, &jobs_in[i]);
        size_t n = 0, k = 0;
        const float *out = drover_result_output(r, &n, &k);
        dv_tensor_t one = {1, WIDE, rows[i]}, *want = NULL;
        if (out && n == 1 && k == 1 &&
            dv_model_predict(local, &one, &want, &derr) == 0) {
            equal += fabsf(out[0] - want->data[0]) <=
                     1e-5f * fmaxf(fabsf(want->data[0]), 1e-6f);
        }
        dv_tensor_destroy(&want);
        drover_result_destroy(&r);
    }
    int stop_rc = up ? dv_proc_stop(&c.workers[0], SIGTERM) : -1;
    char path[4400];
    snprintf(path, sizeof path, "%s/worker0.log", c.dir);
    size_t len = 0;
    char *log = up ? (char *)dv_test_read_file(path, &len) : NULL;
    long in_place = logged_count(log, "loop thread; ");
    long stacked = logged_count(log, "arrived, ");
    free(log);
    dv_model_destroy(&local);
    printf("  passes (jobs):");
    for (size_t i = 0; i < N; i++) {
        printf(" %s%u", codes[i] ? "!" : "", jobs_in[i]);
    }
    printf("; %ld inputs read in place, %ld passes stacked there\n", in_place,
           stacked);
    int exit_rc = dv_tcluster_down(&c, equal != N - 1 || in_place != 21);
    DV_CHECK(pushed);
    DV_CHECK_EQ(cfg, 0);
    DV_CHECK_EQ(warm, 0);
    DV_CHECK(warm_equal);
    DV_CHECK(frozen);
    DV_CHECK_EQ(submitted, N);
    DV_CHECK(queued);
    for (size_t i = 0; i < N; i++) {
        DV_CHECK_EQ(codes[i], i == NAN_AT ? DV_ENAN : 0);
        DV_CHECK_EQ(jobs_in[i], i == 0        ? 1u
                                : i == NAN_AT ? 0u
                                : i <= 10     ? 10u
                                              : 9u);
    }
    DV_CHECK_EQ(equal, N - 1);
    DV_CHECK_EQ(stop_rc, 0);
    DV_CHECK_EQ(in_place, 21);
    DV_CHECK_EQ(stacked, 1);
    DV_CHECK_EQ(exit_rc, 0);
}

static const dv_test_case_t cases[] = {
    {"dynamic batching", test_dynamic_batching},
    {"batches from the broker's queue", test_batches_from_the_broker_queue},
    {"aliases switch and roll back", test_aliases_switch_and_roll_back},
    {"infer equals local predict", test_infer_equals_local_predict},
    {"bad requests get clear errors", test_bad_requests_get_clear_errors},
    {"registry versions survive a restart",
     test_registry_versions_survive_restart},
    {"killed worker's job re-runs", test_killed_worker_job_reruns},
    {"SIGTERM drains a busy worker", test_sigterm_drains_worker},
    {"small passes run on the worker's loop",
     test_small_passes_run_on_the_loop},
    {"wide rows read where they arrive", test_wide_rows_read_in_place},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_tcluster_main(argc, argv, cases);
}
