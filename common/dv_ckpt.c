// dv_ckpt — training checkpoints: the state an iterative fit needs to go on
// after an epoch, written to and read from one self-checking blob. Only
// dv_train calls it; it knows the model's parameters and the trainer's
// counters, never how training uses them.
//
// Checkpoint blob, format version 1 (DV_TRAIN_CKPT_VERSION). Integers are
// little-endian; floats are their IEEE-754 bit patterns (f32 as a u32, f64
// as a u64), so NaN payloads and -0 survive. Written and read byte by byte,
// never by copying structs, so neither padding nor the host's byte order
// leaks into it:
//
//   offset  type             field
//        0  4 bytes          magic "DVCK"
//        4  u32              format version (1)
//        8  u32              algo (dv_algo_t)
//       12  u32              epoch: epochs finished, 1 .. epochs - 1
//       16  u64              step: mini-batches done (Adam's t)
//       24  f64              best: lowest epoch loss so far (early stopping)
//       32  u32              stale: epochs in a row that missed best by tol
//       36  f64              elapsed: wall seconds of training so far
//       44  4 x u64          RNG state s[0..3], after epoch's shuffle
//       76  u64              n_rows
//       84  u64              n_params
//       92  u64              fingerprint (dv_ckpt_fingerprint)
//      100  f32 x n_params   parameters in dv_train_loss_grad's order
//           f32 x n_params   Adam first moments    } only when the algo uses
//           f32 x n_params   Adam second moments   } Adam (all but gd)
//           u32 x n_rows     perm: the row order of epoch `epoch`; the next
//                            epoch shuffles it in place, so it carries over
//           f64              final_loss: the loss of epoch `epoch`
//           32 bytes         SHA-256 of every byte before it
//
// Readers check, in this order and before trusting anything: length >= the
// fixed part, magic, version, that the length is exactly what n_rows,
// n_params and algo imply (DV_EFORMAT), the SHA-256 (DV_ECHECKSUM), that it
// belongs to this run (algo, n_rows, n_params, fingerprint: DV_EINVAL), then
// what an intact but forged blob could still get wrong: epoch range, a
// non-zero RNG state and perm being a permutation (perm indexes the data).
//
// Changing the layout: bump DV_TRAIN_CKPT_VERSION and change this table,
// dv_ckpt_encode, dv_ckpt_check and dv_ckpt_restore together. Readers
// refuse any other version with DV_EFORMAT and keep no old readers: a
// checkpoint lives only as long as its training job, and refusing one costs
// a restart from epoch 1, never a wrong model.
#include "dv_ckpt.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dv_le.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_sha256.h"

#define CKPT_HEADER_BYTES 100
#define CKPT_MIN_BYTES    (CKPT_HEADER_BYTES + 8 + DV_SHA256_BYTES)

static void
wr_u32(uint8_t **p, uint32_t v)
{
    *p = dv_le_put(*p, v, 4);
}

static void
wr_u64(uint8_t **p, uint64_t v)
{
    *p = dv_le_put(*p, v, 8);
}

static void
wr_f32(uint8_t **p, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    wr_u32(p, u);
}

static void
wr_f64(uint8_t **p, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    wr_u64(p, u);
}

// Readers: the caller has checked that the bytes are there.
static uint32_t
rd_u32(const uint8_t **p)
{
    uint32_t v = dv_le_get32(*p);
    *p += 4;
    return v;
}

static uint64_t
rd_u64(const uint8_t **p)
{
    uint64_t v = dv_le_get64(*p);
    *p += 8;
    return v;
}

static float
rd_f32(const uint8_t **p)
{
    uint32_t u = rd_u32(p);
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static double
rd_f64(const uint8_t **p)
{
    uint64_t u = rd_u64(p);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

// Bytes of a checkpoint; the caller keeps n_rows and n_params within
// DV_MAX_ROWS and DV_MAX_MODEL_PARAMS, so this cannot overflow.
static size_t
ckpt_len(bool adam, size_t n_rows, size_t n_params)
{
    return CKPT_HEADER_BYTES + n_params * sizeof(float) * (adam ? 3 : 1) +
           n_rows * sizeof(uint32_t) + 8 + DV_SHA256_BYTES;
}

static void
fp_u32(dv_sha256_t *c, uint32_t v)
{
    uint8_t b[4], *p = b;
    wr_u32(&p, v);
    dv_sha256_update(c, b, sizeof b);
}

static void
fp_u64(dv_sha256_t *c, uint64_t v)
{
    uint8_t b[8], *p = b;
    wr_u64(&p, v);
    dv_sha256_update(c, b, sizeof b);
}

static void
fp_f64(dv_sha256_t *c, double v)
{
    uint8_t b[8], *p = b;
    wr_f64(&p, v);
    dv_sha256_update(c, b, sizeof b);
}

static void
fp_str(dv_sha256_t *c, const char *text)
{
    size_t n = text ? strlen(text) : 0;
    fp_u64(c, n); // length first: ("ab", "c") and ("a", "bc") differ
    dv_sha256_update(c, text, n);
}

// The first 8 bytes (little-endian) of the SHA-256 of a canonical encoding
// of everything a checkpoint's epochs depend on: the hyper-parameters that
// change training (algo, scale, lr, l2, batch, epochs, seed, tol, patience,
// hidden sizes, and init and validation fraction when not zero; not
// created_unix), the data's shape and task, the data file's checksum and
// the target and feature names (which pick columns of that file), and the
// model's parameter count. Equal fingerprints mean the
// checkpoint's state continues this run.
uint64_t
dv_ckpt_fingerprint(const dv_hyper_t *h,
                    const dv_dataset_t *ds,
                    dv_task_t task,
                    size_t n_params)
{
    dv_sha256_t c;
    dv_sha256_init(&c);
    fp_u32(&c, (uint32_t)h->algo);
    fp_u32(&c, (uint32_t)h->scale);
    fp_f64(&c, h->lr);
    fp_f64(&c, h->l2);
    fp_u32(&c, h->batch);
    fp_u32(&c, h->epochs);
    fp_u64(&c, h->seed);
    fp_f64(&c, h->tol);
    fp_u32(&c, h->patience);
    fp_u32(&c, h->n_hidden);
    for (uint32_t i = 0; i < h->n_hidden && i < DV_MAX_HIDDEN; i++) {
        fp_u32(&c, h->hidden[i]);
    }
    // Hyper-parameters added later enter only when not at their zero value,
    // so the fingerprints (and checkpoints) of earlier runs stay valid.
    if (h->init != DV_INIT_GLOROT) {
        fp_u32(&c, (uint32_t)h->init);
    }
    if (h->validation_fraction != 0) {
        fp_f64(&c, h->validation_fraction);
    }
    fp_u64(&c, ds->n_rows);
    fp_u64(&c, ds->n_features);
    fp_u64(&c, n_params);
    fp_u32(&c, (uint32_t)task);
    dv_sha256_update(&c, ds->sha256, sizeof ds->sha256);
    fp_str(&c, ds->target_name);
    for (size_t j = 0; j < ds->n_features; j++) {
        fp_str(&c, ds->feature_names[j]);
    }
    uint8_t digest[DV_SHA256_BYTES];
    dv_sha256_final(&c, digest);
    const uint8_t *p = digest;
    return rd_u64(&p);
}

// A new checkpoint of s and m's parameters; caller frees it. NULL when it
// cannot be allocated: the caller skips that checkpoint, as training itself
// does not need it.
uint8_t *
dv_ckpt_encode(const dv_model_t *m, const dv_ckpt_state_t *s, size_t *len)
{
    size_t n = ckpt_len(s->mom1 != NULL, s->n_rows, s->n_params);
    uint8_t *blob = dv_try_malloc(n, 1);
    if (!blob) {
        return NULL;
    }
    uint8_t *p = blob;
    memcpy(p, DV_TRAIN_CKPT_MAGIC, 4);
    p += 4;
    wr_u32(&p, DV_TRAIN_CKPT_VERSION);
    wr_u32(&p, s->algo);
    wr_u32(&p, s->epoch);
    wr_u64(&p, s->step);
    wr_f64(&p, s->best);
    wr_u32(&p, s->stale);
    wr_f64(&p, s->elapsed);
    for (int i = 0; i < 4; i++) {
        wr_u64(&p, s->rng->s[i]);
    }
    wr_u64(&p, s->n_rows);
    wr_u64(&p, s->n_params);
    wr_u64(&p, s->fingerprint);
    for (size_t l = 0; l < m->n_layers; l++) {
        const dv_layer_t *layer = &m->layers[l];
        for (size_t i = 0; i < layer->n_in * layer->n_out; i++) {
            wr_f32(&p, layer->w[i]);
        }
        for (size_t i = 0; i < layer->n_out; i++) {
            wr_f32(&p, layer->b[i]);
        }
    }
    if (s->mom1) {
        for (size_t i = 0; i < s->n_params; i++) {
            wr_f32(&p, s->mom1[i]);
        }
        for (size_t i = 0; i < s->n_params; i++) {
            wr_f32(&p, s->mom2[i]);
        }
    }
    for (size_t i = 0; i < s->n_rows; i++) {
        wr_u32(&p, s->perm[i]);
    }
    wr_f64(&p, s->final_loss);
    dv_sha256(blob, (size_t)(p - blob), p);
    p += DV_SHA256_BYTES;
    dv_assert((size_t)(p - blob) == n);
    *len = n;
    return blob;
}

// Check that blob[0..len) is an intact checkpoint of the run want describes
// (algo, n_rows, n_params, fingerprint) at an epoch below max_epochs, whose
// contents are safe to use (see the table above). Returns 0 or DV_EFORMAT,
// DV_ECHECKSUM, DV_EINVAL with the reason. Reads nothing outside the blob.
int
dv_ckpt_check(const uint8_t *blob,
              size_t len,
              const dv_ckpt_state_t *want,
              uint32_t max_epochs,
              dv_error_t *err)
{
    if (!blob || len < CKPT_MIN_BYTES) {
        return dv_errorf(err, DV_EFORMAT,
                         "checkpoint is %zu bytes, shorter than the %d of "
                         "an empty one",
                         blob ? len : 0, CKPT_MIN_BYTES);
    }
    if (memcmp(blob, DV_TRAIN_CKPT_MAGIC, 4) != 0) {
        return dv_errorf(err, DV_EFORMAT,
                         "not a training checkpoint (magic is not \"%s\")",
                         DV_TRAIN_CKPT_MAGIC);
    }
    const uint8_t *p = blob + 4;
    uint32_t version = rd_u32(&p);
    if (version != DV_TRAIN_CKPT_VERSION) {
        return dv_errorf(err, DV_EFORMAT,
                         "checkpoint format version %u; this build reads %d",
                         version, DV_TRAIN_CKPT_VERSION);
    }
    uint32_t algo = rd_u32(&p);
    uint32_t epoch = rd_u32(&p);
    p += 8 + 8 + 4 + 8; // step, best, stale, elapsed
    uint64_t rng_or = 0;
    for (int i = 0; i < 4; i++) {
        rng_or |= rd_u64(&p);
    }
    uint64_t n_rows = rd_u64(&p);
    uint64_t n_params = rd_u64(&p);
    uint64_t fingerprint = rd_u64(&p);
    if (algo > DV_ALGO_MLP) {
        return dv_errorf(err, DV_EFORMAT, "checkpoint names algorithm %u",
                         algo);
    }
    if (n_rows > DV_MAX_ROWS || n_params > DV_MAX_MODEL_PARAMS) {
        return dv_errorf(err, DV_EFORMAT,
                         "checkpoint claims %" PRIu64 " rows and %" PRIu64
                         " parameters, over the limits",
                         n_rows, n_params);
    }
    size_t expect = ckpt_len(algo != DV_ALGO_GD, n_rows, n_params);
    if (len != expect) {
        return dv_errorf(err, DV_EFORMAT,
                         "checkpoint is %zu bytes; its header implies %zu", len,
                         expect);
    }
    uint8_t digest[DV_SHA256_BYTES];
    dv_sha256(blob, len - DV_SHA256_BYTES, digest);
    if (memcmp(digest, blob + len - DV_SHA256_BYTES, sizeof digest) != 0) {
        return dv_errorf(err, DV_ECHECKSUM,
                         "checkpoint damaged: SHA-256 mismatch");
    }
    if (algo != want->algo || n_rows != want->n_rows ||
        n_params != want->n_params || fingerprint != want->fingerprint) {
        return dv_errorf(err, DV_EINVAL,
                         "checkpoint is from a different training run: data "
                         "or hyper-parameters differ (it has %s, %" PRIu64
                         " rows, %" PRIu64 " parameters; this run %s, %zu, "
                         "%zu)",
                         dv_algo_name((dv_algo_t)algo), n_rows, n_params,
                         dv_algo_name((dv_algo_t)want->algo), want->n_rows,
                         want->n_params);
    }
    // Intact and ours: what follows can only be wrong in a forged blob.
    if (epoch == 0 || epoch >= max_epochs) {
        return dv_errorf(err, DV_EINVAL,
                         "checkpoint is at epoch %u; resuming needs one "
                         "within 1..%u",
                         epoch, max_epochs - 1);
    }
    if (rng_or == 0) {
        return dv_errorf(err, DV_EFORMAT, "checkpoint RNG state is all zero");
    }
    // perm indexes the data: every row exactly once, or it is refused.
    const uint8_t *perm = blob + len - DV_SHA256_BYTES - 8 - 4 * n_rows;
    uint8_t *seen = dv_calloc(n_rows / 8 + 1, 1);
    int rc = 0;
    for (size_t i = 0; i < n_rows && rc == 0; i++) {
        uint32_t r = rd_u32(&perm);
        if (r >= n_rows || (seen[r / 8] >> (r % 8)) & 1) {
            rc = dv_errorf(err, DV_EFORMAT,
                           "checkpoint row order is not a permutation of "
                           "%" PRIu64 " rows",
                           n_rows);
        } else {
            seen[r / 8] |= (uint8_t)(1u << (r % 8));
        }
    }
    free(seen);
    return rc;
}

// Overwrite the model's parameters and s (counters, RNG, perm, moments)
// from a blob that passed dv_ckpt_check for this run.
void
dv_ckpt_restore(const uint8_t *blob, dv_model_t *m, dv_ckpt_state_t *s)
{
    const uint8_t *p = blob + 8; // magic, version
    s->algo = rd_u32(&p);
    s->epoch = rd_u32(&p);
    s->step = rd_u64(&p);
    s->best = rd_f64(&p);
    s->stale = rd_u32(&p);
    s->elapsed = rd_f64(&p);
    for (int i = 0; i < 4; i++) {
        s->rng->s[i] = rd_u64(&p);
    }
    p += 3 * 8; // n_rows, n_params, fingerprint: checked
    for (size_t l = 0; l < m->n_layers; l++) {
        dv_layer_t *layer = &m->layers[l];
        for (size_t i = 0; i < layer->n_in * layer->n_out; i++) {
            layer->w[i] = rd_f32(&p);
        }
        for (size_t i = 0; i < layer->n_out; i++) {
            layer->b[i] = rd_f32(&p);
        }
    }
    if (s->mom1) {
        for (size_t i = 0; i < s->n_params; i++) {
            s->mom1[i] = rd_f32(&p);
        }
        for (size_t i = 0; i < s->n_params; i++) {
            s->mom2[i] = rd_f32(&p);
        }
    }
    for (size_t i = 0; i < s->n_rows; i++) {
        s->perm[i] = rd_u32(&p);
    }
    s->final_loss = rd_f64(&p);
    m->meta.epochs_run = s->epoch;
    m->meta.final_loss = s->final_loss;
}
