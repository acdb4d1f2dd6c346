// dv_ckpt — training checkpoints (the byte layout is the table at the top of
// dv_ckpt.c): encode the state of an iterative fit after an epoch, check a
// blob handed back before trusting any of it, and restore from it.
//
// Owns: the blob format (DV_TRAIN_CKPT_MAGIC and _VERSION in dv_train.h)
// and the run fingerprint. Calls: dv_sha256, dv_mem, dv_err. Called by:
// dv_train only; the blob itself travels through dv_train_opts_t.
// Blobs from dv_ckpt_encode belong to the caller; the state's arrays and
// RNG stay the caller's too (borrowed).
#ifndef DV_CKPT_H
#define DV_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "dv_err.h"
#include "dv_rng.h"
#include "dv_train.h"

// What the epochs after `epoch` depend on besides the model's parameters:
// the live state of fit_iterative and the contents of a checkpoint.
typedef struct {
    uint32_t algo;        // dv_algo_t of the run
    uint32_t epoch;       // epochs finished
    uint64_t step;        // mini-batches done (Adam's t)
    double best;          // lowest epoch loss so far
    uint32_t stale;       // epochs in a row that failed to beat best by tol
    double elapsed;       // wall seconds of training up to `epoch`
    dv_rng_t *rng;        // the run's RNG; borrowed
    size_t n_rows;        // entries in perm
    uint32_t *perm;       // row order, shuffled in place; borrowed
    size_t n_params;      // floats in the model, mom1 and mom2
    float *mom1;          // Adam first moments, NULL for gd; borrowed
    float *mom2;          // Adam second moments, NULL for gd; borrowed
    double final_loss;    // loss of epoch `epoch`
    uint64_t fingerprint; // dv_ckpt_fingerprint of the run
} dv_ckpt_state_t;

// The first 8 bytes (little-endian) of the SHA-256 of a canonical encoding
// of everything a checkpoint's epochs depend on: the hyper-parameters that
// change training (algo, scale, lr, l2, batch, epochs, seed, tol, patience,
// hidden sizes, and init and validation fraction when not zero; not
// created_unix), the data's shape and task, the data file's checksum and
// the target and feature names (which pick columns of that file), and the
// model's parameter count. Equal fingerprints mean the checkpoint's state
// continues this run.
uint64_t dv_ckpt_fingerprint(const dv_hyper_t *h,
                             const dv_dataset_t *ds,
                             dv_task_t task,
                             size_t n_params);

// A new checkpoint of s and m's parameters; caller frees it. NULL when it
// cannot be allocated: the caller skips that checkpoint, as training itself
// does not need it.
uint8_t *
dv_ckpt_encode(const dv_model_t *m, const dv_ckpt_state_t *s, size_t *len);

// Check that blob[0..len) is an intact checkpoint of the run want describes
// (algo, n_rows, n_params, fingerprint) at an epoch below max_epochs, whose
// contents are safe to use (see the table in dv_ckpt.c). Returns 0 or
// DV_EFORMAT, DV_ECHECKSUM, DV_EINVAL with the reason. Reads nothing outside
// the blob.
int dv_ckpt_check(const uint8_t *blob,
                  size_t len,
                  const dv_ckpt_state_t *want,
                  uint32_t max_epochs,
                  dv_error_t *err);

// Overwrite the model's parameters and s (counters, RNG, perm, moments)
// from a blob that passed dv_ckpt_check for this run.
void dv_ckpt_restore(const uint8_t *blob, dv_model_t *m, dv_ckpt_state_t *s);

#endif // DV_CKPT_H
