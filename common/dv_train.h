// dv_train — fit a dv_model_t to a data set.
//
//   ols      least squares, closed form: QR with column pivoting (LAPACK
//            dgelsy) in double precision; rank-deficient data gives the
//            minimum-norm solution
//   ridge    (X'X + l2 I) w = X'y by Cholesky (LAPACK dposv) in double, on
//            centred data so the intercept is not penalized (scikit-learn
//            Ridge, alpha = l2)
//   gd       linear regression by mini-batch gradient descent on the MSE
//   logreg   binary logistic regression (sigmoid + cross-entropy), Adam
//   softmax  multinomial logistic regression (softmax + cross-entropy), Adam
//   mlp      dense ReLU layers, softmax + cross-entropy (classification) or
//            identity + MSE (regression), Adam; initial weights by
//            h->init (default uniform-fan-in, PyTorch's)
// Iterative algorithms shuffle every epoch with the seeded RNG, standardize
// a regression target internally (mapped back in the model), add the L2
// penalty 0.5 * l2 * ||W||^2 on weights (not biases) to the mean loss, and
// stop early when the epoch loss has not improved by tol for `patience`
// epochs (scikit-learn's MLP rule) — or, with h->validation_fraction, when
// the loss of that share of held-out rows has not, returning the model of the
// best held-out epoch. The same data, hyper-parameters, seed and
// BLAS thread count give bit-identical models.
#ifndef DV_TRAIN_H
#define DV_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dv_csv.h"
#include "dv_err.h"
#include "dv_model.h"

// Reported after every epoch (iterative algorithms) or once (closed form).
typedef struct {
    uint32_t epoch;  // epochs finished, 1-based
    uint32_t epochs; // maximum epochs
    double loss;     // mean training loss of this epoch
    double seconds;  // wall time since training started
    // The model as trained so far (borrowed, valid during the call; it
    // predicts as a finished one would: scaler and target scale are set),
    // e.g. to score a held-out set while training runs. Do not modify.
    const dv_model_t *model;
} dv_train_progress_t;

// Progress callback, on the training thread. Return nonzero to cancel:
// dv_train then returns DV_ECANCELED and no model.
typedef int (*dv_train_progress_fn)(const dv_train_progress_t *p, void *arg);

// Checkpoint callback, on the training thread: blob (len bytes) is the whole
// state after `epoch` epochs. Borrowed: valid only during the call; copy it
// to keep it. Pass it back as dv_train_opts_t.resume to continue.
typedef void (*dv_train_checkpoint_fn)(const uint8_t *blob,
                                       size_t len,
                                       uint32_t epoch,
                                       void *arg);

// Checkpoint blob (iterative algorithms only; dv_ckpt.c has the byte
// layout): little-endian, magic "DVCK", format version 1, the trainer's
// counters, RNG state and a fingerprint of the data and hyper-parameters,
// then parameters, Adam moments, the shuffle order and a trailing SHA-256.
// Size: 140 bytes + 4 per parameter (12 with Adam) + 4 per training row.
#define DV_TRAIN_CKPT_MAGIC   "DVCK"
#define DV_TRAIN_CKPT_VERSION 1

// Training options. The fields from `cancel` on default to zero/NULL, which
// trains exactly as before they existed.
typedef struct {
    int task;                      // -1: from algo and data; else dv_task_t
    dv_train_progress_fn progress; // may be NULL
    void *progress_arg;            // passed to progress
    int64_t created_unix;          // stored in the model; 0 = now (or
                                   // SOURCE_DATE_EPOCH when set)
    // Cancel flag read (relaxed atomic load, __atomic_load_n) before every
    // mini-batch; nonzero: dv_train returns DV_ECANCELED and no model.
    // May be NULL. Not owned.
    const bool *cancel;
    // Called on the training thread with a checkpoint of the state after an
    // epoch: at most once per checkpoint_every_s seconds of wall time
    // (0 = after every epoch), never after the last epoch (or the epoch at
    // which early stopping ends training), and with a validation fraction
    // only after an epoch with a new best held-out loss. blob is valid only
    // during the call. Closed-form algorithms (ols, ridge) never checkpoint.
    dv_train_checkpoint_fn checkpoint; // may be NULL
    void *checkpoint_arg;              // passed to checkpoint
    double checkpoint_every_s;         // seconds between checkpoints, >= 0
    // A checkpoint to continue from (made by the same data, hyper-parameters
    // and seed), or NULL. Not owned; must stay valid during dv_train.
    // Training then resumes at the epoch after the checkpoint's and gives
    // the same model bytes as an uninterrupted run (same BLAS thread count
    // and created_unix). Ignored by ols and ridge.
    const uint8_t *resume;
    size_t resume_len; // bytes at resume
} dv_train_opts_t;

// Fill h with the defaults for algo (those `drover local train --help`
// shows).
void dv_hyper_default(dv_hyper_t *h, dv_algo_t algo);

// Check hyper-parameter ranges, and that the hidden layers alone stay
// within DV_MAX_MODEL_PARAMS. Returns 0 or DV_EINVAL naming the bad one.
int dv_hyper_check(const dv_hyper_t *h, dv_error_t *err);

// Parameters (weights and biases) of the model h builds for n_features
// inputs and n_outputs outputs (hidden layers count for mlp only).
uint64_t
dv_hyper_n_params(const dv_hyper_t *h, size_t n_features, size_t n_outputs);

// DV_EINVAL, naming the numbers, when that model would exceed
// DV_MAX_MODEL_PARAMS (or a width DV_MAX_LAYER_UNITS); else 0. dv_train
// checks it before allocating; a broker can check at submit when it knows
// the data's width.
int dv_hyper_check_size(const dv_hyper_t *h,
                        size_t n_features,
                        size_t n_outputs,
                        dv_error_t *err);

// The task `mlp` picks when not told: classification when the target holds
// text, or only integers with at most DV_TRAIN_AUTO_MAX_CLASSES distinct
// values; regression otherwise. ols/gd/ridge are always regression,
// logreg/softmax always classification.
#define DV_TRAIN_AUTO_MAX_CLASSES 50
dv_task_t dv_train_task_for(dv_algo_t algo, const dv_dataset_t *ds);

// Train on ds (which must have a target). Returns 0 and sets *out (caller
// owns it), or DV_EINVAL (bad hyper-parameters, wrong task for the algo),
// DV_EFORMAT (labels), DV_EDIVERGED (loss became NaN/Inf: lower lr),
// DV_ECANCELED (progress callback or cancel flag), DV_ENOMEM, DV_EMSGSIZE —
// with the reason in err. A resume blob is checked before any epoch runs:
// DV_EFORMAT (truncated, bad magic, other version, wrong length, contents
// that cannot be a checkpoint), DV_ECHECKSUM (damaged), DV_EINVAL (from a
// different run: other data, hyper-parameters or seed; or its epoch is not
// below h->epochs). Options may be NULL. Runs on the calling thread.
int dv_train(dv_model_t **out,
             const dv_dataset_t *ds,
             const dv_hyper_t *h,
             const dv_train_opts_t *opts,
             dv_error_t *err);

// Metrics of model m on ds (which must have m's target and features, found
// by name): what `drover local eval` and evaluate jobs report. Returns 0
// and fills *out (release with dv_metrics_clear), or DV_ESHAPE (a feature
// missing), DV_EFORMAT (a class label the model does not know, a text
// target for a regression model), DV_ENOMEM.
int dv_model_evaluate(const dv_model_t *m,
                      const dv_dataset_t *ds,
                      dv_metrics_t *out,
                      dv_error_t *err);

// Mean loss + L2 penalty of model m on rows of already-scaled x, and its
// gradient with respect to every parameter, written to grad in layer order
// (layer 0 weights row-major, layer 0 biases, layer 1 weights, ...;
// dv_model_n_params floats). Targets: y (regression, already in the model's
// internal scale) or cls (classification). Returns the loss. For the trainer
// and for gradient checks against finite differences. Allocates scratch.
double dv_train_loss_grad(const dv_model_t *m,
                          const float *x,
                          size_t rows,
                          const float *y,
                          const uint32_t *cls,
                          double l2,
                          float *grad);

#endif
