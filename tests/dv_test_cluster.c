// dv_test_cluster — the real cluster the inference and training tests
// share: drover-broker and up to two drover-workers on ipc:// in a temporary
// folder, a libdrover client connected to it, models trained by the real
// CLI. Readiness comes from READY lines, never from sleeps.
#include "dv_test_cluster.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dv_modelfile.h"
#include "dv_tensor.h"
#include "dv_test.h"

bool
dv_tcluster_broker_start(dv_tcluster_t *c)
{
    const char *args[] = {
        "--client", c->cep,  "--worker",       c->wep,
        "--data",   c->data, "--heartbeat-ms", DV_TCLUSTER_HEARTBEAT_MS,
        NULL};
    c->broker = dv_proc_start("DROVER_BROKER_BIN", args, c->dir, "broker.log");
    char ready[9000];
    return c->broker.pid && dv_proc_wait_ready(&c->broker, ready, sizeof ready);
}

bool
dv_tcluster_worker_start(dv_tcluster_t *c, int i, const char *prefetch)
{
    char name[16], log[32];
    snprintf(name, sizeof name, "w%d", i);
    snprintf(log, sizeof log, "worker%d.log", i);
    const char *args[] = {
        "--broker",   c->wep,   "--name",         name,
        "--prefetch", prefetch, "--heartbeat-ms", DV_TCLUSTER_HEARTBEAT_MS,
        NULL};
    c->workers[i] = dv_proc_start("DROVER_WORKER_BIN", args, c->dir, log);
    char ready[9000];
    return c->workers[i].pid &&
           dv_proc_wait_ready(&c->workers[i], ready, sizeof ready);
}

bool
dv_tcluster_up(dv_tcluster_t *c, int n_workers, const char *prefetch)
{
    memset(c, 0, sizeof *c);
    c->dir = dv_test_tmpdir();
    snprintf(c->data, sizeof c->data, "%s/data", c->dir);
    snprintf(c->cep, sizeof c->cep, "ipc://%s/client.sock", c->dir);
    snprintf(c->wep, sizeof c->wep, "ipc://%s/worker.sock", c->dir);
    if (!dv_tcluster_broker_start(c)) {
        fprintf(stderr, "  broker did not get ready\n");
        return false;
    }
    for (int i = 0; i < n_workers; i++) {
        if (!dv_tcluster_worker_start(c, i, prefetch)) {
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

int
dv_tcluster_down(dv_tcluster_t *c, bool show_logs)
{
    drover_destroy(&c->d);
    for (int i = 0; i < DV_TCLUSTER_MAX_WORKERS; i++) {
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

bool
dv_tcluster_train(dv_tcluster_t *c,
                  const char *data,
                  const char *algo,
                  const char *name)
{
    char out[4300];
    snprintf(out, sizeof out, "%s/%s.drvm", c->dir, name);
    const char *args[] = {"local",  "train", "--data", dv_test_data(data),
                          "--algo", algo,    "--out",  out,
                          NULL};
    return dv_proc_run("DROVER_BIN", args, NULL, c->dir, "cli.log") == 0;
}

void
dv_test_nap(void)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

int
dv_tcluster_run_rows(drover_t *d,
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
    return drover_run(d, &job, DV_TCLUSTER_WAIT_MS, r, err);
}

void
dv_tcluster_ran_with(
    dv_tcluster_t *c, const char *ref, char *ran, size_t size, int *code)
{
    float x[4] = {5.1f, 3.5f, 1.4f, 0.2f};
    drover_result_t *r = NULL;
    drover_error_t err = {0};
    ran[0] = '\0';
    *code = dv_tcluster_run_rows(c->d, ref, x, 1, 4, &r, &err);
    if (*code == 0 && drover_result_ok(r)) {
        snprintf(ran, size, "%s", drover_result_model(r));
    } else if (*code == 0) {
        *code = drover_result_error(r, NULL);
    }
    drover_result_destroy(&r);
}

int
dv_tcluster_main(int argc, char **argv, const dv_test_case_t *cases)
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

int
dv_tcluster_push_model(drover_t *d, dv_model_t *m, const char *name)
{
    if (!d) {
        dv_model_destroy(&m);
        return -1;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    dv_error_t err = {0};
    drover_error_t derr = {0};
    int rc = dv_model_encode(m, &buf, &len, &err);
    if (rc == 0) {
        rc = drover_model_push_bytes(d, buf, len, name, NULL, &derr);
    }
    if (rc) {
        fprintf(stderr, "  push %s: %s%s\n", name, err.text, derr.text);
    }
    free(buf);
    dv_model_destroy(&m);
    return rc;
}
