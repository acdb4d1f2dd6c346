// dv_train — training: closed-form least squares and ridge through LAPACK,
// and one backpropagation path for every iterative algorithm.
//
// Model: every algorithm trains a dv_model_t "dense stack" (see dv_model.h).
// The iterative trainer keeps, per mini-batch, the activations of every layer
// (forward), then walks back through the layers computing the output delta,
// dW = A_prev' * D and D_prev = D * W' (two sgemm per layer, one for the first
// layer), masking by ReLU' where needed. Parameters are updated in place by
// Adam (or plain SGD for `gd`) from one flat gradient buffer laid out layer by
// layer (W, then b), the order dv_train_loss_grad documents.
//
// Determinism: one RNG (seeded from hyper.seed) draws the initial weights,
// then one permutation per epoch; nothing else is random. Sums run in a fixed
// order, so the same inputs and BLAS thread count give the same bytes.
//
// Checkpoints: between epochs the iterative trainer can hand out its whole
// state (parameters, Adam moments, counters, RNG, row order) as one blob.
// Given that blob back, dv_train redoes the cheap set-up (labels, scaling,
// init), overwrites the state from the blob and runs the remaining epochs,
// which then give the bytes of the uninterrupted run. The blob layout is the
// table at the top of dv_ckpt.c.
//
// Threads: runs entirely on the calling thread (plus OpenBLAS's own pool);
// the progress and checkpoint callbacks are called on it too. Only the
// cancel flag is read across threads (a relaxed atomic load per mini-batch).
#include "dv_train.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#include <lapacke.h>

#include "dv_ckpt.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_rng.h"

// Adam's constants (Kingma & Ba 2015), the defaults of PyTorch and sklearn.
#define ADAM_BETA1 0.9
#define ADAM_BETA2 0.999
#define ADAM_EPS   1e-8

// Probabilities are clipped here before log(): log-loss stays finite.
#define PROB_FLOOR 1e-7f

// Ridge by normal equations holds a d x d double matrix: cap d so it stays
// within 512 MiB; wider data should use gd.
#define RIDGE_MAX_FEATURES 8192

// Per-batch working memory of the backpropagation.
typedef struct {
    size_t max_rows; // rows the buffers hold
    size_t widest;   // widest layer output
    float **act;     // act[l]: rows x n_out(l) outputs of layer l
    float *delta[2]; // ping-pong deltas, rows x widest each
} workspace_t;

static workspace_t *
workspace_new(const dv_model_t *m, size_t max_rows)
{
    workspace_t *ws = dv_calloc(1, sizeof *ws);
    ws->max_rows = max_rows;
    ws->act = dv_calloc(m->n_layers, sizeof(float *));
    for (size_t l = 0; l < m->n_layers; l++) {
        size_t n = m->layers[l].n_out;
        ws->widest = n > ws->widest ? n : ws->widest;
        ws->act[l] = dv_malloc(max_rows * n * sizeof(float));
    }
    for (size_t l = 0; l < m->n_layers; l++) {
        size_t n = m->layers[l].n_in;
        ws->widest = n > ws->widest ? n : ws->widest;
    }
    ws->delta[0] = dv_malloc(max_rows * ws->widest * sizeof(float));
    ws->delta[1] = dv_malloc(max_rows * ws->widest * sizeof(float));
    return ws;
}

static void
workspace_destroy(workspace_t **ws_p, size_t n_layers)
{
    workspace_t *ws = *ws_p;
    if (!ws) {
        return;
    }
    for (size_t l = 0; l < n_layers; l++) {
        free(ws->act[l]);
    }
    free(ws->act);
    free(ws->delta[0]);
    free(ws->delta[1]);
    free(ws);
    *ws_p = NULL;
}

// Output-layer loss (mean over rows) and its delta with respect to the
// pre-activation: (p - y) / rows for sigmoid/softmax + cross-entropy (the
// softmax Jacobian cancels), 2 (o - y) / rows for identity + MSE.
static double
output_delta(const dv_layer_t *out_layer,
             const float *out,
             size_t rows,
             const float *y,
             const uint32_t *cls,
             float *delta)
{
    size_t k = out_layer->n_out;
    float inv = 1.0f / (float)rows;
    double loss = 0.0;
    switch (out_layer->act) {
    case DV_ACT_SOFTMAX:
        for (size_t r = 0; r < rows; r++) {
            const float *p = out + r * k;
            float *d = delta + r * k;
            float pt = p[cls[r]];
            loss -= log(pt > PROB_FLOOR ? pt : PROB_FLOOR);
            for (size_t j = 0; j < k; j++) {
                d[j] = p[j] * inv;
            }
            d[cls[r]] -= inv;
        }
        break;
    case DV_ACT_SIGMOID:
        for (size_t r = 0; r < rows; r++) {
            float p = out[r];
            float t = cls[r] ? 1.0f : 0.0f;
            float pt = cls[r] ? p : 1.0f - p;
            loss -= log(pt > PROB_FLOOR ? pt : PROB_FLOOR);
            delta[r] = (p - t) * inv;
        }
        break;
    default: // identity + MSE (validated models have no other output)
        for (size_t r = 0; r < rows; r++) {
            for (size_t j = 0; j < k; j++) {
                float diff = out[r * k + j] - y[r * k + j];
                loss += (double)diff * diff;
                delta[r * k + j] = 2.0f * diff * inv;
            }
        }
        break;
    }
    return loss / (double)rows;
}

// d[i] = 0 where the ReLU was off (a[i] <= 0). Branch-free over restrict
// pointers so it vectorizes (see bias_act in dv_model.c).
static void
relu_mask(float *restrict d, const float *restrict a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        d[i] = a[i] > 0.0f ? d[i] : 0.0f;
    }
}

// One Adam step on one parameter, bias correction folded into lr_t, eps_t.
static inline void
adam_step(float *w, float g, float *m1, float *m2, float lr_t, float eps_t)
{
    const float b1 = (float)ADAM_BETA1, b2 = (float)ADAM_BETA2;
    *m1 = b1 * *m1 + (1.0f - b1) * g;
    *m2 = b2 * *m2 + (1.0f - b2) * g * g;
    *w -= lr_t * *m1 / (sqrtf(*m2) + eps_t);
}

// One Adam step on n parameters. With l2 > 0 each gradient first takes the
// penalty's share l2 * w (the gradient of 0.5 * l2 * ||w||^2) in the same
// pass: a pass of its own over the weights and gradients added a third to
// the update's memory traffic, on the one thread that runs between sgemm
// calls while OpenBLAS's threads wait. The sum is rounded to float exactly
// as when it was stored back into g, so the bytes are the same.
static void
adam_update(float *restrict w,
            const float *restrict g,
            float *restrict m1,
            float *restrict m2,
            size_t n,
            float lr_t,
            float eps_t,
            float l2)
{
    if (l2 > 0) {
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] + l2 * w[i];
            adam_step(&w[i], gi, &m1[i], &m2[i], lr_t, eps_t);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            adam_step(&w[i], g[i], &m1[i], &m2[i], lr_t, eps_t);
        }
    }
}

// Plain SGD on n parameters, the L2 share folded in as in adam_update.
static void
sgd_update(
    float *restrict w, const float *restrict g, size_t n, float lr_t, float l2)
{
    if (l2 > 0) {
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] + l2 * w[i];
            w[i] -= lr_t * gi;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            w[i] -= lr_t * g[i];
        }
    }
}

// g += l2 * w: the gradient of 0.5 * l2 * ||w||^2, for dv_train_loss_grad
// (the trainer folds it into its update instead). A loop of its own so it
// vectorizes; the penalty's value is added once per epoch (l2_penalty).
static void
weight_decay(float *restrict g, const float *restrict w, size_t n, float l2)
{
    for (size_t i = 0; i < n; i++) {
        g[i] += l2 * w[i];
    }
}

// 0.5 * l2 * (sum of squared weights), biases excluded.
static double
l2_penalty(const dv_model_t *m, double l2)
{
    if (l2 <= 0) {
        return 0.0;
    }
    double sq = 0.0;
    for (size_t l = 0; l < m->n_layers; l++) {
        const dv_layer_t *ly = &m->layers[l];
        for (size_t i = 0; i < ly->n_in * ly->n_out; i++) {
            sq += (double)ly->w[i] * ly->w[i];
        }
    }
    return 0.5 * l2 * sq;
}

// Mean data loss of one batch (penalty excluded) and the gradient of data
// loss + penalty (l2 = 0: of the data loss alone); see dv_train_loss_grad.
static double
loss_grad(const dv_model_t *m,
          workspace_t *ws,
          const float *x,
          size_t rows,
          const float *y,
          const uint32_t *cls,
          double l2,
          float *grad)
{
    size_t L = m->n_layers;
    const float *in = x;
    for (size_t l = 0; l < L; l++) {
        dv_layer_forward(&m->layers[l], in, rows, ws->act[l]);
        in = ws->act[l];
    }
    float *d = ws->delta[0];
    double loss =
        output_delta(&m->layers[L - 1], ws->act[L - 1], rows, y, cls, d);

    // Gradient offsets: layer l's W starts after all earlier W and b.
    size_t offset = dv_model_n_params(m);
    for (size_t l = L; l-- > 0;) {
        const dv_layer_t *layer = &m->layers[l];
        size_t n_in = layer->n_in, n_out = layer->n_out;
        offset -= n_in * n_out + n_out;
        float *gw = grad + offset;
        float *gb = gw + n_in * n_out;
        const float *a_prev = l == 0 ? x : ws->act[l - 1];
        dv_gemm(true, false, n_in, n_out, rows, 1.0f, a_prev, n_in, d, n_out,
                0.0f, gw, n_out);
        memset(gb, 0, n_out * sizeof(float));
        for (size_t r = 0; r < rows; r++) {
            const float *dr = d + r * n_out;
            for (size_t j = 0; j < n_out; j++) {
                gb[j] += dr[j];
            }
        }
        if (l2 > 0) {
            weight_decay(gw, layer->w, n_in * n_out, (float)l2);
        }
        if (l > 0) {
            float *d_prev = ws->delta[(L - l) & 1];
            dv_gemm(false, true, rows, n_in, n_out, 1.0f, d, n_out, layer->w,
                    n_out, 0.0f, d_prev, n_in);
            if (m->layers[l - 1].act == DV_ACT_RELU) {
                relu_mask(d_prev, ws->act[l - 1], rows * n_in);
            }
            d = d_prev;
        }
    }
    return loss;
}

double
dv_train_loss_grad(const dv_model_t *m,
                   const float *x,
                   size_t rows,
                   const float *y,
                   const uint32_t *cls,
                   double l2,
                   float *grad)
{
    workspace_t *ws = workspace_new(m, rows);
    double loss = loss_grad(m, ws, x, rows, y, cls, l2, grad);
    workspace_destroy(&ws, m->n_layers);
    return loss + l2_penalty(m, l2);
}

void
dv_hyper_default(dv_hyper_t *h, dv_algo_t algo)
{
    memset(h, 0, sizeof *h);
    h->algo = algo;
    h->scale = DV_SCALE_STANDARD;
    h->seed = 42;
    h->tol = 1e-4;
    h->patience = 10;
    switch (algo) {
    case DV_ALGO_OLS:
        h->epochs = 1;
        h->batch = 1;
        h->lr = 0;
        h->l2 = 0;
        h->patience = 0;
        h->tol = 0;
        break;
    case DV_ALGO_RIDGE:
        h->epochs = 1;
        h->batch = 1;
        h->lr = 0;
        h->l2 = 1.0;
        h->patience = 0;
        h->tol = 0;
        break;
    case DV_ALGO_GD:
        h->epochs = 500;
        h->batch = 32;
        h->lr = 0.01;
        h->l2 = 0;
        break;
    case DV_ALGO_LOGREG:
    case DV_ALGO_SOFTMAX:
        h->epochs = 300;
        h->batch = 32;
        h->lr = 0.01;
        h->l2 = 1e-3;
        break;
    case DV_ALGO_MLP:
        // scikit-learn MLP defaults (batch min(200, n), 200 epochs, Adam
        // 1e-3): smaller batches overfit small regression sets (diabetes
        // MLP test R^2 0.20 at 64, 0.27 at 200) with no gain elsewhere.
        h->epochs = 200;
        h->batch = 200;
        h->lr = 1e-3;
        h->l2 = 1e-4;
        h->n_hidden = 1;
        h->hidden[0] = 128;
        // PyTorch's nn.Linear init. Measured on bench/parity (10 problems x
        // 3 seeds): Glorot's larger first-layer weights trailed PyTorch by
        // 3-4 points of accuracy on wide many-class problems (and 0.02 R^2);
        // U(+-1/sqrt(fan_in)) matches or beats it everywhere, He is worse.
        h->init = DV_INIT_FAN_IN;
        break;
    }
}

int
dv_hyper_check(const dv_hyper_t *h, dv_error_t *err)
{
    if ((size_t)h->algo > DV_ALGO_MLP) {
        return dv_errorf(err, DV_EINVAL, "unknown algorithm %d", (int)h->algo);
    }
    if ((size_t)h->scale > DV_SCALE_MINMAX) {
        return dv_errorf(err, DV_EINVAL, "unknown scaling %d", (int)h->scale);
    }
    if (h->epochs < 1 || h->epochs > DV_MAX_EPOCHS) {
        return dv_errorf(err, DV_EINVAL, "epochs must be 1..%d, not %u",
                         DV_MAX_EPOCHS, h->epochs);
    }
    if (h->batch < 1) {
        return dv_errorf(err, DV_EINVAL, "batch must be at least 1");
    }
    bool iterative = h->algo != DV_ALGO_OLS && h->algo != DV_ALGO_RIDGE;
    if (iterative && !(isfinite(h->lr) && h->lr > 0 && h->lr <= 10)) {
        return dv_errorf(err, DV_EINVAL,
                         "learning rate must be in (0, 10], not %g", h->lr);
    }
    if (!(isfinite(h->l2) && h->l2 >= 0 && h->l2 <= 1e6)) {
        return dv_errorf(err, DV_EINVAL, "l2 must be in [0, 1e6], not %g",
                         h->l2);
    }
    if ((size_t)h->init > DV_INIT_FAN_IN) {
        return dv_errorf(err, DV_EINVAL, "unknown initialization %d",
                         (int)h->init);
    }
    if (!(isfinite(h->validation_fraction) && h->validation_fraction >= 0 &&
          h->validation_fraction < 0.5)) {
        return dv_errorf(err, DV_EINVAL,
                         "validation fraction must be in [0, 0.5), not %g",
                         h->validation_fraction);
    }
    if (h->validation_fraction > 0 && !iterative) {
        return dv_errorf(err, DV_EINVAL,
                         "a validation fraction is for iterative algorithms "
                         "(gd, logreg, softmax, mlp)");
    }
    if (!(isfinite(h->tol) && h->tol >= 0)) {
        return dv_errorf(err, DV_EINVAL, "tol must be >= 0, not %g", h->tol);
    }
    if (h->n_hidden > DV_MAX_HIDDEN) {
        return dv_errorf(err, DV_EINVAL, "at most %d hidden layers, not %u",
                         DV_MAX_HIDDEN, h->n_hidden);
    }
    if (h->n_hidden && h->algo != DV_ALGO_MLP) {
        return dv_errorf(err, DV_EINVAL,
                         "hidden layers are only for --algo mlp");
    }
    for (uint32_t i = 0; i < h->n_hidden; i++) {
        if (h->hidden[i] < 1 || h->hidden[i] > DV_MAX_LAYER_UNITS) {
            return dv_errorf(err, DV_EINVAL,
                             "hidden layer %u has %u units (limit 1..%d)",
                             i + 1, h->hidden[i], DV_MAX_LAYER_UNITS);
        }
    }
    // Each layer within its limit is not enough: 16 layers of 65,536 units
    // are 64 G parameters. With one feature and one output this is the
    // least the model can weigh, known before the data is.
    return dv_hyper_check_size(h, 1, 1, err);
}

uint64_t
dv_hyper_n_params(const dv_hyper_t *h, size_t n_features, size_t n_outputs)
{
    // Units are at most DV_MAX_LAYER_UNITS (2^16) and layers at most
    // DV_MAX_HIDDEN + 1, so each product fits in 33 bits and the sum in 64.
    uint64_t total = 0, in = n_features;
    uint32_t n = h->algo == DV_ALGO_MLP ? h->n_hidden : 0;
    for (uint32_t i = 0; i <= n; i++) {
        uint64_t out = i < n ? h->hidden[i] : n_outputs;
        total += in * out + out;
        in = out;
    }
    return total;
}

int
dv_hyper_check_size(const dv_hyper_t *h,
                    size_t n_features,
                    size_t n_outputs,
                    dv_error_t *err)
{
    if (n_features > DV_MAX_LAYER_UNITS || n_outputs > DV_MAX_LAYER_UNITS) {
        return dv_errorf(err, DV_EINVAL,
                         "%zu features and %zu outputs: the limit is %d each",
                         n_features, n_outputs, DV_MAX_LAYER_UNITS);
    }
    uint64_t n = dv_hyper_n_params(h, n_features, n_outputs);
    if (n > DV_MAX_MODEL_PARAMS) {
        char hidden[96] = "";
        size_t at = 0;
        for (uint32_t i = 0; i < h->n_hidden && at + 12 < sizeof hidden; i++) {
            at += (size_t)snprintf(hidden + at, sizeof hidden - at, "%s%u",
                                   i ? "," : "", h->hidden[i]);
            if (i + 1 < h->n_hidden && at + 12 >= sizeof hidden) {
                snprintf(hidden + at, sizeof hidden - at, ",...");
            }
        }
        return dv_errorf(err, DV_EINVAL,
                         "the model would have %" PRIu64
                         " parameters (%zu features, hidden [%s], %zu "
                         "outputs); the limit is %zu",
                         n, n_features, hidden, n_outputs,
                         (size_t)DV_MAX_MODEL_PARAMS);
    }
    return 0;
}

dv_task_t
dv_train_task_for(dv_algo_t algo, const dv_dataset_t *ds)
{
    switch (algo) {
    case DV_ALGO_OLS:
    case DV_ALGO_GD:
    case DV_ALGO_RIDGE:
        return DV_TASK_REGRESSION;
    case DV_ALGO_LOGREG:
    case DV_ALGO_SOFTMAX:
        return DV_TASK_CLASSIFICATION;
    case DV_ALGO_MLP:
        break;
    }
    if (!ds->target_numeric) {
        return DV_TASK_CLASSIFICATION;
    }
    // Integer-valued with few distinct values: class labels. A linear scan
    // of a small set is enough: it stops as soon as the limit is passed.
    double seen[DV_TRAIN_AUTO_MAX_CLASSES + 1];
    size_t distinct = 0;
    for (size_t i = 0; i < ds->n_rows; i++) {
        double v = ds->target_value[i];
        if (v != floor(v)) {
            return DV_TASK_REGRESSION;
        }
        bool found = false;
        for (size_t s = 0; s < distinct && !found; s++) {
            found = seen[s] == v;
        }
        if (!found) {
            if (distinct == DV_TRAIN_AUTO_MAX_CLASSES) {
                return DV_TASK_REGRESSION;
            }
            seen[distinct++] = v;
        }
    }
    return DV_TASK_CLASSIFICATION;
}

static double
now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// Closed-form OLS (lam == 0: QR with pivoting) or ridge (lam > 0: Cholesky
// of the normal equations), on centred data so the intercept is free.
static int
fit_linear_closed(dv_model_t *m,
                  const dv_tensor_t *xs,
                  const float *y,
                  double lam,
                  dv_error_t *err)
{
    size_t n = xs->rows, d = xs->cols;
    if (lam > 0 && d > RIDGE_MAX_FEATURES) {
        return dv_errorf(err, DV_EMSGSIZE,
                         "ridge solves a %zu x %zu system; over %d features "
                         "use --algo gd with --l2",
                         d, d, RIDGE_MAX_FEATURES);
    }
    size_t rows_b = n > d ? n : d; // dgelsy overwrites B with the solution
    double *a = dv_try_malloc(n * d, sizeof(double));
    double *b = dv_try_malloc(rows_b, sizeof(double));
    double *xmean = dv_calloc(d, sizeof(double));
    double *g = NULL;
    if (!a || !b) {
        free(a);
        free(b);
        free(xmean);
        return dv_errorf(err, DV_ENOMEM, "cannot allocate %zu x %zu doubles", n,
                         d);
    }
    double ymean = 0.0;
    for (size_t i = 0; i < n; i++) {
        ymean += y[i];
        for (size_t j = 0; j < d; j++) {
            xmean[j] += xs->data[i * d + j];
        }
    }
    ymean /= (double)n;
    for (size_t j = 0; j < d; j++) {
        xmean[j] /= (double)n;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++) {
            a[i * d + j] = xs->data[i * d + j] - xmean[j];
        }
        b[i] = y[i] - ymean;
    }
    int rc = 0;
    lapack_int info;
    if (lam == 0) {
        lapack_int *jpvt = dv_calloc(d, sizeof(lapack_int));
        lapack_int rank = 0;
        // rcond as numpy.linalg.lstsq: eps * max(n, d) relative to the
        // largest singular value; smaller ones count as zero (min-norm).
        double rcond = DBL_EPSILON * (double)rows_b;
        info = LAPACKE_dgelsy(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)d, 1,
                              a, (lapack_int)d, b, 1, jpvt, rcond, &rank);
        free(jpvt);
    } else {
        // G = A'A + lam I, rhs = A'b, solved by Cholesky (G is SPD).
        g = dv_try_malloc(d * d, sizeof(double));
        if (!g) {
            rc = dv_errorf(err, DV_ENOMEM, "cannot allocate %zu x %zu doubles",
                           d, d);
            goto done;
        }
        double *rhs = dv_calloc(d, sizeof(double));
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d,
                    (int)n, 1.0, a, (int)d, a, (int)d, 0.0, g, (int)d);
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)d, 1.0, a, (int)d,
                    b, 1, 0.0, rhs, 1);
        for (size_t j = 0; j < d; j++) {
            g[j * d + j] += lam;
        }
        info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', (lapack_int)d, 1, g,
                             (lapack_int)d, rhs, 1);
        memcpy(b, rhs, d * sizeof(double));
        free(rhs);
    }
    if (info != 0) {
        rc = dv_errorf(err, DV_EDIVERGED,
                       "least-squares solver failed (LAPACK info %d)",
                       (int)info);
        goto done;
    }
    double intercept = ymean;
    dv_layer_t *layer = &m->layers[0];
    for (size_t j = 0; j < d; j++) {
        layer->w[j] = (float)b[j];
        intercept -= b[j] * xmean[j];
    }
    layer->b[0] = (float)intercept;
done:
    free(a);
    free(b);
    free(g);
    free(xmean);
    return rc;
}

// Initial mlp weights, U(-a, a) per layer with a from h->init (the table
// at dv_init_t); uniform-fan-in draws the layer's biases next, others leave
// them at zero. Glorot draws exactly as before the choice existed.
static void
init_weights(dv_model_t *m, dv_init_t init, dv_rng_t *rng)
{
    for (size_t l = 0; l < m->n_layers; l++) {
        dv_layer_t *layer = &m->layers[l];
        double fan_in = (double)layer->n_in, fan_out = (double)layer->n_out;
        double a = init == DV_INIT_HE       ? sqrt(6.0 / fan_in)
                   : init == DV_INIT_FAN_IN ? 1.0 / sqrt(fan_in)
                                            : sqrt(6.0 / (fan_in + fan_out));
        for (size_t i = 0; i < layer->n_in * layer->n_out; i++) {
            layer->w[i] = (float)((2.0 * dv_rng_uniform(rng) - 1.0) * a);
        }
        if (init == DV_INIT_FAN_IN) {
            for (size_t j = 0; j < layer->n_out; j++) {
                layer->b[j] = (float)((2.0 * dv_rng_uniform(rng) - 1.0) * a);
            }
        }
    }
}

// Copy the rows perm[0 .. rows - 1] of xs (and of y or cls, whichever the
// task has) into the mini-batch buffers xb, yb, cb, in that order.
static void
gather_batch(const dv_tensor_t *xs,
             const float *y,
             const uint32_t *cls,
             size_t y_width,
             const uint32_t *perm,
             size_t rows,
             float *xb,
             float *yb,
             uint32_t *cb)
{
    size_t d = xs->cols;
    for (size_t r = 0; r < rows; r++) {
        size_t src = perm[r];
        memcpy(xb + r * d, xs->data + src * d, d * sizeof(float));
        if (yb) {
            memcpy(yb + r * y_width, y + src * y_width,
                   y_width * sizeof(float));
        }
        if (cb) {
            cb[r] = cls[src];
        }
    }
}

// One optimizer step on every layer's weights and biases from grad (in
// dv_train_loss_grad's order): Adam for all algos but gd, which takes plain
// SGD. s->step must already count this mini-batch.
static void
update_params(dv_model_t *m,
              const dv_hyper_t *h,
              dv_ckpt_state_t *s,
              uint32_t epoch,
              const float *grad)
{
    bool adam = h->algo != DV_ALGO_GD;
    // Adam's bias corrections folded into the step size.
    double c1 = 1.0 - pow(ADAM_BETA1, (double)s->step);
    double c2 = 1.0 - pow(ADAM_BETA2, (double)s->step);
    // Plain SGD decays its step as lr / sqrt(epoch) (scikit-learn
    // SGDRegressor's "invscaling"): a constant step leaves the
    // weights wandering in a noise ball around the optimum.
    float lr_t =
        (float)(adam ? h->lr * sqrt(c2) / c1 : h->lr / sqrt((double)epoch));
    float eps_t = (float)(ADAM_EPS * sqrt(c2));
    size_t off = 0;
    for (size_t l = 0; l < m->n_layers; l++) {
        dv_layer_t *layer = &m->layers[l];
        float *params[2] = {layer->w, layer->b};
        size_t sizes[2] = {layer->n_in * layer->n_out, layer->n_out};
        for (int p = 0; p < 2; p++) {
            // Weights are penalized, biases not.
            float l2 = p == 0 ? (float)h->l2 : 0.0f;
            if (adam) {
                adam_update(params[p], grad + off, s->mom1 + off, s->mom2 + off,
                            sizes[p], lr_t, eps_t, l2);
            } else {
                sgd_update(params[p], grad + off, sizes[p], lr_t, l2);
            }
            off += sizes[p];
        }
    }
}

// Hand opts->checkpoint the state after `epoch` (loss epoch_loss) when
// opts->checkpoint_every_s has passed since *last_checkpoint (or is <= 0),
// and then restart that clock. t0 is when training started, as
// fit_iterative counts it.
static void
maybe_checkpoint(const dv_model_t *m,
                 const dv_train_opts_t *opts,
                 dv_ckpt_state_t *s,
                 uint32_t epoch,
                 double epoch_loss,
                 double t0,
                 double *last_checkpoint)
{
    double now = now_seconds();
    if (opts->checkpoint_every_s <= 0 ||
        now - *last_checkpoint >= opts->checkpoint_every_s) {
        s->epoch = epoch;
        s->elapsed = now - t0;
        s->final_loss = epoch_loss;
        size_t len = 0;
        uint8_t *blob = dv_ckpt_encode(m, s, &len);
        if (blob) { // else skipped: training does not need it
            opts->checkpoint(blob, len, epoch, opts->checkpoint_arg);
            free(blob);
        }
        *last_checkpoint = now;
    }
}

// Close epoch `epoch` with training loss epoch_loss: refuse a non-finite
// loss (DV_EDIVERGED), record it in m->meta, show it to opts->progress
// (which may cancel: DV_ECANCELED), and set *stop once early stopping, which
// judges judge_loss (the held-out loss, or epoch_loss), says so.
static int
end_epoch(dv_model_t *m,
          const dv_hyper_t *h,
          const dv_train_opts_t *opts,
          dv_ckpt_state_t *s,
          uint32_t epoch,
          double epoch_loss,
          double judge_loss,
          double t0,
          bool *stop,
          dv_error_t *err)
{
    if (!isfinite(epoch_loss) || !isfinite(judge_loss)) {
        return dv_errorf(err, DV_EDIVERGED,
                         "training diverged at epoch %u (loss %g); lower "
                         "--lr or scale the features",
                         epoch, epoch_loss);
    }
    m->meta.epochs_run = epoch;
    m->meta.final_loss = epoch_loss;
    if (opts && opts->progress) {
        dv_train_progress_t p = {epoch, h->epochs, epoch_loss,
                                 now_seconds() - t0, m};
        if (opts->progress(&p, opts->progress_arg) != 0) {
            return dv_errorf(err, DV_ECANCELED, "training canceled at epoch %u",
                             epoch);
        }
    }
    // scikit-learn's rule: count epochs that fail to beat the best loss
    // by tol; stop after `patience` of them in a row.
    s->stale = judge_loss > s->best - h->tol ? s->stale + 1 : 0;
    s->best = judge_loss < s->best ? judge_loss : s->best;
    *stop = h->patience && s->stale >= h->patience;
    return 0;
}

// Mean data loss of m on the rows idx[0 .. rows - 1] of xs (and y or cls),
// forward passes only, in chunks of the workspace's rows through the
// mini-batch buffers xb, yb, cb.
static double
held_out_loss(const dv_model_t *m,
              workspace_t *ws,
              const dv_tensor_t *xs,
              const float *y,
              const uint32_t *cls,
              size_t y_width,
              const uint32_t *idx,
              size_t rows,
              float *xb,
              float *yb,
              uint32_t *cb)
{
    size_t L = m->n_layers;
    double sum = 0.0;
    for (size_t b0 = 0; b0 < rows; b0 += ws->max_rows) {
        size_t r = rows - b0 < ws->max_rows ? rows - b0 : ws->max_rows;
        gather_batch(xs, y, cls, y_width, idx + b0, r, xb, yb, cb);
        const float *in = xb;
        for (size_t l = 0; l < L; l++) {
            dv_layer_forward(&m->layers[l], in, r, ws->act[l]);
            in = ws->act[l];
        }
        sum += output_delta(&m->layers[L - 1], ws->act[L - 1], r, yb, cb,
                            ws->delta[0]) *
               (double)r;
    }
    return sum / (double)rows;
}

// Copy every layer's weights and biases to flat (to == true), or back from
// it, in dv_train_loss_grad's order.
static void
copy_params(dv_model_t *m, float *flat, bool to)
{
    size_t off = 0;
    for (size_t l = 0; l < m->n_layers; l++) {
        dv_layer_t *layer = &m->layers[l];
        size_t nw = layer->n_in * layer->n_out, nb = layer->n_out;
        memcpy(to ? flat + off : layer->w, to ? layer->w : flat + off,
               nw * sizeof(float));
        memcpy(to ? flat + off + nw : layer->b, to ? layer->b : flat + off + nw,
               nb * sizeof(float));
        off += nw + nb;
    }
}

// Rows held out for validation: h->validation_fraction of n, at least one,
// and at least one left to train on. 0 when there is no validation.
static size_t
validation_rows(const dv_hyper_t *h, size_t n)
{
    if (h->validation_fraction <= 0) {
        return 0;
    }
    size_t v = (size_t)(h->validation_fraction * (double)n);
    return v ? v : 1;
}

// Mini-batch training of an initialized model on scaled xs. With
// opts->resume (already passed dv_ckpt_check) the state after the checkpoint's
// epoch replaces the fresh one and training goes on from the next epoch.
//
// Validation (h->validation_fraction > 0, scikit-learn's early_stopping):
// one seeded shuffle before the first epoch puts the held-out rows at the
// end of the row order, where they stay (every epoch shuffles only the
// training prefix, and the checkpoint's row order keeps the split). Early
// stopping then judges their mean loss, and the model that ends training is
// the one of the epoch with the lowest held-out loss. Checkpoints are taken
// only after such a best epoch, so a resumed run knows the best parameters
// (they are the checkpoint's) and ends with the uninterrupted run's bytes.
static int
fit_iterative(dv_model_t *m,
              const dv_tensor_t *xs,
              const float *y,
              const uint32_t *cls,
              const dv_hyper_t *h,
              const dv_train_opts_t *opts,
              dv_rng_t *rng,
              uint64_t fingerprint,
              dv_error_t *err)
{
    size_t n = xs->rows, d = xs->cols;
    size_t n_val = validation_rows(h, n);
    if (n_val >= n) {
        return dv_errorf(err, DV_EINVAL,
                         "%zu rows are too few to hold out a validation "
                         "fraction of %g",
                         n, h->validation_fraction);
    }
    size_t n_train = n - n_val;
    size_t batch = h->batch < n_train ? h->batch : n_train;
    size_t n_params = dv_model_n_params(m);
    size_t y_width = m->layers[m->n_layers - 1].n_out;
    bool adam = h->algo != DV_ALGO_GD;
    dv_ckpt_state_t s = {
        .algo = (uint32_t)h->algo,
        .best = INFINITY,
        .rng = rng,
        .n_rows = n,
        .perm = dv_malloc(n * sizeof(uint32_t)),
        .n_params = n_params,
        .mom1 = adam ? dv_calloc(n_params, sizeof(float)) : NULL,
        .mom2 = adam ? dv_calloc(n_params, sizeof(float)) : NULL,
        .fingerprint = fingerprint,
    };
    float *xb = dv_malloc(batch * d * sizeof(float));
    float *yb = y ? dv_malloc(batch * y_width * sizeof(float)) : NULL;
    uint32_t *cb = cls ? dv_malloc(batch * sizeof(uint32_t)) : NULL;
    float *grad = dv_calloc(n_params, sizeof(float));
    float *best = n_val ? dv_malloc(n_params * sizeof(float)) : NULL;
    workspace_t *ws = workspace_new(m, batch);
    for (size_t i = 0; i < n; i++) {
        s.perm[i] = (uint32_t)i;
    }
    if (n_val) {
        dv_rng_shuffle(rng, s.perm, n);
    }
    if (opts && opts->resume) {
        dv_ckpt_restore(opts->resume, m, &s);
    }
    if (best) {
        copy_params(m, best, true); // fresh, or a checkpoint's best epoch
    }
    const bool *cancel = opts ? opts->cancel : NULL;
    // Progress seconds go on from the checkpoint's count.
    double t0 = now_seconds() - s.elapsed;
    double last_checkpoint = now_seconds();
    int rc = 0;
    for (uint32_t epoch = s.epoch + 1; epoch <= h->epochs; epoch++) {
        dv_rng_shuffle(rng, s.perm, n_train);
        double epoch_loss = 0.0;
        for (size_t b0 = 0; b0 < n_train; b0 += batch) {
            // Relaxed is enough: the flag carries no data with it, and one
            // mini-batch more or less after it is set changes nothing.
            if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED)) {
                rc = dv_errorf(err, DV_ECANCELED,
                               "training canceled at epoch %u", epoch);
                goto done;
            }
            size_t rows = n_train - b0 < batch ? n_train - b0 : batch;
            gather_batch(xs, y, cls, y_width, s.perm + b0, rows, xb, yb, cb);
            // The penalty's gradient goes into the update (adam_update).
            double loss = loss_grad(m, ws, xb, rows, yb, cb, 0.0, grad);
            epoch_loss += loss * (double)rows;
            s.step++;
            update_params(m, h, &s, epoch, grad);
        }
        // Mean data loss over the epoch plus the penalty at its end
        // (scikit-learn adds it per batch; the two differ by the drift of
        // the weights within one epoch).
        epoch_loss = epoch_loss / (double)n_train + l2_penalty(m, h->l2);
        double judge = epoch_loss;
        if (n_val) {
            judge = held_out_loss(m, ws, xs, y, cls, y_width, s.perm + n_train,
                                  n_val, xb, yb, cb);
        }
        double prev_best = s.best;
        bool stop = false;
        rc =
            end_epoch(m, h, opts, &s, epoch, epoch_loss, judge, t0, &stop, err);
        if (rc) {
            break;
        }
        bool is_best = judge < prev_best;
        if (best && is_best) {
            copy_params(m, best, true);
        }
        if (stop) {
            break;
        }
        // The state is now exactly what epoch + 1 starts from. No checkpoint
        // after the last epoch: there would be nothing left to resume.
        if (opts && opts->checkpoint && epoch < h->epochs &&
            (!n_val || is_best)) {
            maybe_checkpoint(m, opts, &s, epoch, epoch_loss, t0,
                             &last_checkpoint);
        }
    }
    if (best && rc == 0) {
        copy_params(m, best, false);
    }
done:
    workspace_destroy(&ws, m->n_layers);
    free(s.perm);
    free(xb);
    free(yb);
    free(cb);
    free(grad);
    free(best);
    free(s.mom1);
    free(s.mom2);
    return rc;
}

// Fill the model's names, task, scaler and layer shapes from the data.
static void
shape_model(dv_model_t *m,
            const dv_dataset_t *ds,
            const dv_hyper_t *h,
            dv_task_t task,
            size_t n_classes)
{
    m->task = task;
    m->n_features = ds->n_features;
    m->feature_names = dv_malloc(ds->n_features * sizeof(char *));
    for (size_t j = 0; j < ds->n_features; j++) {
        m->feature_names[j] = dv_strdup(ds->feature_names[j]);
    }
    m->target_name = dv_strdup(ds->target_name);
    size_t widths[DV_MAX_HIDDEN + 2];
    dv_act_t acts[DV_MAX_HIDDEN + 1];
    size_t n_layers = 0;
    widths[0] = ds->n_features;
    if (h->algo == DV_ALGO_MLP) {
        for (uint32_t i = 0; i < h->n_hidden; i++) {
            widths[n_layers + 1] = h->hidden[i];
            acts[n_layers++] = DV_ACT_RELU;
        }
    }
    if (task == DV_TASK_REGRESSION) {
        widths[n_layers + 1] = 1;
        acts[n_layers++] = DV_ACT_IDENTITY;
    } else if (h->algo == DV_ALGO_LOGREG) {
        widths[n_layers + 1] = 1;
        acts[n_layers++] = DV_ACT_SIGMOID;
    } else {
        widths[n_layers + 1] = n_classes;
        acts[n_layers++] = DV_ACT_SOFTMAX;
    }
    dv_model_set_layers(m, n_layers, widths, acts);
}

// Metrics of the finished model on its training data, kept in the file.
static int
train_metrics(dv_model_t *m,
              const dv_dataset_t *ds,
              const float *y,
              const uint32_t *cls,
              dv_error_t *err)
{
    dv_tensor_t *pred = NULL;
    int rc = dv_model_predict(m, ds->x, &pred, err);
    if (rc) {
        return rc;
    }
    if (m->task == DV_TASK_REGRESSION) {
        dv_metrics_regression(&m->meta.train_metrics, y, pred->data,
                              ds->n_rows);
    } else {
        dv_metrics_classification(&m->meta.train_metrics, cls, pred->data,
                                  ds->n_rows, m->labels->n);
        dv_metrics_clear(&m->meta.train_metrics); // keep scalars only
    }
    dv_tensor_destroy(&pred);
    return 0;
}

// Refuse an algo that cannot do the task, and regression on a text target.
static int
check_task(const dv_hyper_t *h,
           const dv_dataset_t *ds,
           dv_task_t task,
           dv_error_t *err)
{
    bool regression_algo = h->algo == DV_ALGO_OLS || h->algo == DV_ALGO_GD ||
                           h->algo == DV_ALGO_RIDGE;
    bool classifier_algo =
        h->algo == DV_ALGO_LOGREG || h->algo == DV_ALGO_SOFTMAX;
    if ((task == DV_TASK_CLASSIFICATION && regression_algo) ||
        (task == DV_TASK_REGRESSION && classifier_algo)) {
        return dv_errorf(err, DV_EINVAL, "--algo %s cannot do %s",
                         dv_algo_name(h->algo), dv_task_name(task));
    }
    if (task == DV_TASK_REGRESSION && !ds->target_numeric) {
        return dv_errorf(err, DV_EFORMAT,
                         "regression needs a numeric target; '%s' holds text "
                         "(first row: '%.32s')",
                         ds->target_name, ds->target_text[0]);
    }
    return 0;
}

// The target as the fit needs it: for classification, fit m->labels and
// set *cls_p to each row's class index; for regression, set *y_p to the
// values as floats. The caller frees *y_p and *cls_p, also on failure.
static int
encode_target(dv_model_t *m,
              const dv_dataset_t *ds,
              const dv_hyper_t *h,
              dv_task_t task,
              float **y_p,
              uint32_t **cls_p,
              dv_error_t *err)
{
    size_t n = ds->n_rows;
    int rc = 0;
    if (task == DV_TASK_CLASSIFICATION) {
        rc = dv_labels_fit(&m->labels, ds->target_text, ds->target_value,
                           ds->target_numeric, n, err);
        if (rc) {
            return rc;
        }
        if (h->algo == DV_ALGO_LOGREG && m->labels->n != 2) {
            return dv_errorf(err, DV_EINVAL,
                             "logreg is binary but the target has %zu "
                             "classes; use --algo softmax",
                             m->labels->n);
        }
        uint32_t *cls = *cls_p = dv_try_malloc(n, sizeof(uint32_t));
        if (!cls) {
            return dv_errorf(err, DV_ENOMEM, "cannot allocate %zu labels", n);
        }
        rc = dv_labels_encode(m->labels, ds->target_text, ds->target_value, n,
                              cls, err);
    } else {
        float *y = *y_p = dv_try_malloc(n, sizeof(float));
        if (!y) {
            return dv_errorf(err, DV_ENOMEM, "cannot allocate %zu targets", n);
        }
        for (size_t i = 0; i < n; i++) {
            y[i] = (float)ds->target_value[i];
        }
    }
    return rc;
}

// The closed-form fit (ols, or ridge with h->l2) of m on scaled xs, shown
// to opts->progress as one epoch.
static int
fit_closed(dv_model_t *m,
           const dv_tensor_t *xs,
           const float *y,
           const dv_hyper_t *h,
           const dv_train_opts_t *opts,
           dv_error_t *err)
{
    int rc = fit_linear_closed(m, xs, y, h->algo == DV_ALGO_RIDGE ? h->l2 : 0.0,
                               err);
    m->meta.epochs_run = 1;
    if (!rc && opts && opts->progress) {
        dv_train_progress_t p = {1, 1, 0.0, 0.0, m};
        opts->progress(&p, opts->progress_arg);
    }
    return rc;
}

// Standardize the target: one learning rate then fits any unit of measure;
// the model maps outputs back (m->y_offset, m->y_scale). Returns the n
// standardized values, which the caller frees.
static float *
standardize_target(dv_model_t *m, const float *y, size_t n)
{
    double mean = 0.0, var = 0.0;
    for (size_t i = 0; i < n; i++) {
        mean += y[i];
    }
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) {
        var += (y[i] - mean) * (y[i] - mean);
    }
    double sd = sqrt(var / (double)n);
    m->y_offset = (float)mean;
    m->y_scale = sd > 0 ? (float)sd : 1.0f;
    float *yt = dv_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        yt[i] = (float)((y[i] - mean) / m->y_scale);
    }
    return yt;
}

// The iterative fit (gd, logreg, softmax, mlp) of m on scaled xs: seed the
// RNG from h->seed, draw an mlp's initial weights, standardize a regression
// target, then fit_iterative.
static int
fit_seeded(dv_model_t *m,
           const dv_tensor_t *xs,
           const float *y,
           const uint32_t *cls,
           const dv_hyper_t *h,
           const dv_train_opts_t *opts,
           uint64_t fingerprint,
           dv_error_t *err)
{
    dv_rng_t rng;
    dv_rng_seed(&rng, h->seed);
    if (h->algo == DV_ALGO_MLP) {
        init_weights(m, h->init, &rng);
    }
    float *yt = y ? standardize_target(m, y, xs->rows) : NULL;
    int rc = fit_iterative(m, xs, yt, cls, h, opts, &rng, fingerprint, err);
    free(yt);
    return rc;
}

// Record where the model came from: the data set's hash and row count,
// the creation time (opts->created_unix, else now) and this version.
static void
stamp_provenance(dv_model_t *m,
                 const dv_dataset_t *ds,
                 const dv_train_opts_t *opts)
{
    memcpy(m->meta.dataset_sha256, ds->sha256, sizeof ds->sha256);
    m->meta.dataset_rows = ds->n_rows;
    m->meta.created_unix =
        opts && opts->created_unix ? opts->created_unix : (int64_t)time(NULL);
    snprintf(m->meta.drover_version, sizeof m->meta.drover_version, "%s",
             DV_VERSION_STRING);
}

int
dv_train(dv_model_t **out,
         const dv_dataset_t *ds,
         const dv_hyper_t *h,
         const dv_train_opts_t *opts,
         dv_error_t *err)
{
    int rc = dv_hyper_check(h, err);
    if (rc) {
        return rc;
    }
    if (!ds->target_name || ds->n_rows == 0 || ds->n_features == 0) {
        return dv_errorf(err, DV_EINVAL,
                         "training needs a target column, features and rows");
    }
    dv_task_t task = opts && opts->task >= 0 ? (dv_task_t)opts->task
                                             : dv_train_task_for(h->algo, ds);
    rc = check_task(h, ds, task, err);
    if (rc) {
        return rc;
    }

    dv_model_t *m = dv_model_new();
    dv_tensor_t *xs = NULL;
    float *y = NULL;
    uint32_t *cls = NULL;
    size_t n = ds->n_rows;
    rc = encode_target(m, ds, h, task, &y, &cls, err);
    if (rc) {
        goto fail;
    }
    // The exact size, now that features and classes are known, before any
    // of it is allocated (a peer chose the hidden widths).
    rc = dv_hyper_check_size(h, ds->n_features,
                             task == DV_TASK_CLASSIFICATION &&
                                     h->algo != DV_ALGO_LOGREG
                                 ? m->labels->n
                                 : 1,
                             err);
    if (rc) {
        goto fail;
    }
    shape_model(m, ds, h, task, m->labels ? m->labels->n : 0);
    bool iterative = h->algo != DV_ALGO_OLS && h->algo != DV_ALGO_RIDGE;
    uint64_t fingerprint = 0;
    if (iterative && opts && (opts->checkpoint || opts->resume)) {
        fingerprint = dv_ckpt_fingerprint(h, ds, task, dv_model_n_params(m));
    }
    // A bad checkpoint fails now, before scaling and epochs are spent on it.
    // Closed-form fits take one step and never checkpoint: they ignore it.
    if (iterative && opts && opts->resume) {
        dv_ckpt_state_t want = {.algo = (uint32_t)h->algo,
                                .n_rows = n,
                                .n_params = dv_model_n_params(m),
                                .fingerprint = fingerprint};
        rc = dv_ckpt_check(opts->resume, opts->resume_len, &want, h->epochs,
                           err);
        if (rc) {
            goto fail;
        }
    }
    m->scaler = dv_scaler_fit(h->scale, ds->x);
    rc = dv_tensor_open(&xs, n, ds->n_features, err);
    if (rc) {
        goto fail;
    }
    memcpy(xs->data, ds->x->data, n * ds->n_features * sizeof(float));
    dv_scaler_apply(m->scaler, xs);

    m->meta.hyper = *h;
    rc = iterative ? fit_seeded(m, xs, y, cls, h, opts, fingerprint, err)
                   : fit_closed(m, xs, y, h, opts, err);
    if (rc) {
        goto fail;
    }
    rc = dv_model_validate(m, err);
    if (rc == DV_ENAN) {
        rc = dv_errorf(err, DV_EDIVERGED,
                       "training produced non-finite parameters; lower --lr "
                       "or scale the features");
    }
    if (rc || (rc = train_metrics(m, ds, y, cls, err)) != 0) {
        goto fail;
    }
    stamp_provenance(m, ds, opts);
    dv_tensor_destroy(&xs);
    free(y);
    free(cls);
    *out = m;
    return 0;
fail:
    dv_tensor_destroy(&xs);
    free(y);
    free(cls);
    dv_model_destroy(&m);
    return rc;
}

int
dv_model_evaluate(const dv_model_t *m,
                  const dv_dataset_t *ds,
                  dv_metrics_t *out,
                  dv_error_t *err)
{
    memset(out, 0, sizeof *out);
    dv_tensor_t *x = NULL, *pred = NULL;
    int rc = ds->target_value ? 0
                              : dv_errorf(err, DV_EFORMAT,
                                          "the data has no target column '%s'",
                                          m->target_name ? m->target_name : "");
    if (rc == 0) {
        rc = dv_dataset_select(ds, m->feature_names, m->n_features, &x, err);
    }
    if (rc == 0) {
        rc = dv_model_predict(m, x, &pred, err);
    }
    if (rc == 0 && m->task == DV_TASK_CLASSIFICATION) {
        uint32_t *cls = dv_try_malloc(ds->n_rows, sizeof(uint32_t));
        rc = cls ? dv_labels_encode(m->labels, ds->target_text,
                                    ds->target_value, ds->n_rows, cls, err)
                 : dv_errorf(err, DV_ENOMEM, "out of memory");
        if (rc == 0) {
            dv_metrics_classification(out, cls, pred->data, ds->n_rows,
                                      m->labels->n);
        }
        free(cls);
    } else if (rc == 0) {
        float *y = ds->target_numeric ? dv_try_malloc(ds->n_rows, sizeof(float))
                                      : NULL;
        if (!ds->target_numeric) {
            rc = dv_errorf(err, DV_EFORMAT,
                           "target '%s' must be numeric for a regression "
                           "model",
                           m->target_name ? m->target_name : "");
        } else if (!y) {
            rc = dv_errorf(err, DV_ENOMEM, "out of memory");
        } else {
            for (size_t i = 0; i < ds->n_rows; i++) {
                y[i] = (float)ds->target_value[i];
            }
            dv_metrics_regression(out, y, pred->data, ds->n_rows);
        }
        free(y);
    }
    dv_tensor_destroy(&pred);
    dv_tensor_destroy(&x);
    return rc;
}
