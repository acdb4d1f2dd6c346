// dv_test_cluster — the real cluster the inference and training tests
// (test_infer, test_infer_training) share: drover-broker and up to two
// drover-workers on ipc:// in a temporary folder, a libdrover client
// connected to it, and models trained by the real CLI. Readiness comes from
// READY lines and the broker's worker list, never from sleeps.
#ifndef DV_TEST_CLUSTER_H
#define DV_TEST_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#include "drover.h"
#include "dv_model.h"
#include "dv_test.h"
#include "dv_test_proc.h"

#define DV_TCLUSTER_MAX_WORKERS 2
#define DV_TCLUSTER_WAIT_MS                                                    \
    60000 // a job's result, generous for ASan on 2 cores
// Liveness = 3 heartbeats, the production default: these tests move 20 MB
// inputs and 11 MB models through ASan builds sharing 2 cores with other
// tests, and shorter settings sometimes took a busy broker for a dead one.
#define DV_TCLUSTER_HEARTBEAT_MS "1000"

typedef struct {
    char *dir;                                  // temporary folder
    char data[4200];                            // broker data dir
    char cep[4300], wep[4300];                  // endpoints
    dv_proc_t broker;                           // drover-broker
    dv_proc_t workers[DV_TCLUSTER_MAX_WORKERS]; // drover-workers
    drover_t *d;                                // a client
} dv_tcluster_t;

// Start drover-broker on c's endpoints and data dir; true once READY.
bool dv_tcluster_broker_start(dv_tcluster_t *c);

// Start drover-worker i ("w<i>", logging to worker<i>.log) with the given
// --prefetch; true once READY.
bool dv_tcluster_worker_start(dv_tcluster_t *c, int i, const char *prefetch);

// A fresh temporary folder, the broker, n_workers workers and c->d
// connected. False (having said what failed) when any did not start; call
// dv_tcluster_down either way.
bool dv_tcluster_up(dv_tcluster_t *c, int n_workers, const char *prefetch);

// Stop everything and remove the folder; returns the broker's exit status.
// Dumps the logs when it is not 0 or show_logs is set.
int dv_tcluster_down(dv_tcluster_t *c, bool show_logs);

// Train a model with the real CLI into dir/name.drvm.
bool dv_tcluster_train(dv_tcluster_t *c,
                       const char *data,
                       const char *algo,
                       const char *name);

// A short pause between two polls of a state (polls run until a deadline,
// never a number of times).
void dv_test_nap(void);

// Encode m and push it to d's registry as name, taking m (destroyed either
// way). Returns 0, or -1 when d is NULL (the cluster did not come up) or
// the DV_E*/drover error (said on stderr).
int dv_tcluster_push_model(drover_t *d, dv_model_t *m, const char *name);

// Run rows x cols floats through model as one infer job, waiting up to
// DV_TCLUSTER_WAIT_MS (drover_run's result).
int dv_tcluster_run_rows(drover_t *d,
                         const char *model,
                         const float *x,
                         size_t rows,
                         size_t cols,
                         drover_result_t **r,
                         drover_error_t *err);

// The model (name@version) that ran an infer of ref, into ran ("" when
// it failed; *code gets the error).
void dv_tcluster_ran_with(
    dv_tcluster_t *c, const char *ref, char *ran, size_t size, int *code);

// dv_test_main with one BLAS thread here, in workers and in CLI runs, so
// that outputs compare bit for bit.
int dv_tcluster_main(int argc, char **argv, const dv_test_case_t *cases);

#endif
