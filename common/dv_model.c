// dv_model — the model record, its invariants, and inference.
//
// Inference runs in row blocks of PREDICT_BLOCK rows: each block is copied,
// scaled, and pushed through the layers with one cblas_sgemm per layer, with
// bias and activation fused into one pass over the output. Memory is bounded
// by the block, not by the input, so a huge request cannot balloon a worker.
// A model is never written after training or loading, so many threads may
// predict on one model at once: each thread has its own scratch, kept from
// call to call (a worker's compute thread predicts batch after batch) up to
// DV_MAX_PREDICT_SCRATCH bytes; a call needing more allocates its own.
#include "dv_model.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dv_limits.h"
#include "dv_mem.h"

// Rows per inference block: 256 rows of a 512-wide layer is 512 KiB of
// activations per buffer, cache-friendly while keeping sgemm efficient.
#define PREDICT_BLOCK 256

// This thread's prediction scratch (floats), reused across calls. The key
// holds it too, so that a thread that ends (a dv_pool thread at close)
// frees it.
static _Thread_local float *s_scratch;
static _Thread_local size_t s_scratch_n;
static pthread_key_t s_scratch_key;
static pthread_once_t s_scratch_once = PTHREAD_ONCE_INIT;

static void
scratch_key_init(void)
{
    if (pthread_key_create(&s_scratch_key, free) != 0) {
        abort(); // only with PTHREAD_KEYS_MAX keys taken
    }
}

// n floats for one prediction: the thread's scratch when it is (or may
// grow) within DV_MAX_PREDICT_SCRATCH bytes, else a buffer of its own.
// Give it back with scratch_give.
static float *
scratch_take(size_t n)
{
    if (n * sizeof(float) > DV_MAX_PREDICT_SCRATCH) {
        return dv_malloc(n * sizeof(float));
    }
    if (n > s_scratch_n) {
        free(s_scratch);
        s_scratch = dv_malloc(n * sizeof(float));
        s_scratch_n = n;
        pthread_once(&s_scratch_once, scratch_key_init);
        pthread_setspecific(s_scratch_key, s_scratch);
    }
    return s_scratch;
}

static void
scratch_give(float *p)
{
    if (p != s_scratch) {
        free(p);
    }
}

static const char *s_algo_names[] = {
#define XX(name, text) text,
    DV_ALGO_MAP(XX)
#undef XX
};
static const char *s_act_names[] = {
#define XX(name, text) text,
    DV_ACT_MAP(XX)
#undef XX
};
static const char *s_init_names[] = {
#define XX(name, text) text,
    DV_INIT_MAP(XX)
#undef XX
};
#define N_ALGOS (sizeof s_algo_names / sizeof s_algo_names[0])
#define N_INITS (sizeof s_init_names / sizeof s_init_names[0])
#define N_ACTS  (sizeof s_act_names / sizeof s_act_names[0])

const char *
dv_algo_name(dv_algo_t algo)
{
    return (size_t)algo < N_ALGOS ? s_algo_names[algo] : "unknown";
}

int
dv_algo_parse(const char *text, dv_algo_t *out)
{
    for (size_t i = 0; i < N_ALGOS; i++) {
        if (strcmp(text, s_algo_names[i]) == 0) {
            *out = (dv_algo_t)i;
            return 0;
        }
    }
    return DV_EINVAL;
}

const char *
dv_init_name(dv_init_t init)
{
    return (size_t)init < N_INITS ? s_init_names[init] : "unknown";
}

int
dv_init_parse(const char *text, dv_init_t *out)
{
    for (size_t i = 0; i < N_INITS; i++) {
        if (strcmp(text, s_init_names[i]) == 0) {
            *out = (dv_init_t)i;
            return 0;
        }
    }
    return DV_EINVAL;
}

const char *
dv_act_name(dv_act_t act)
{
    return (size_t)act < N_ACTS ? s_act_names[act] : "unknown";
}

int
dv_act_parse(const char *text, dv_act_t *out)
{
    for (size_t i = 0; i < N_ACTS; i++) {
        if (strcmp(text, s_act_names[i]) == 0) {
            *out = (dv_act_t)i;
            return 0;
        }
    }
    return DV_EINVAL;
}

dv_model_t *
dv_model_new(void)
{
    dv_model_t *self = dv_calloc(1, sizeof *self);
    self->y_scale = 1.0f;
    return self;
}

static void
free_layers(dv_model_t *self)
{
    for (size_t l = 0; l < self->n_layers; l++) {
        free(self->layers[l].w);
        free(self->layers[l].b);
    }
    free(self->layers);
    self->layers = NULL;
    self->n_layers = 0;
}

void
dv_model_destroy(dv_model_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_model_t *self = *self_p;
    if (self->feature_names) {
        for (size_t j = 0; j < self->n_features; j++) {
            free(self->feature_names[j]);
        }
        free(self->feature_names);
    }
    free(self->target_name);
    dv_labels_destroy(&self->labels);
    dv_scaler_destroy(&self->scaler);
    free_layers(self);
    dv_metrics_clear(&self->meta.train_metrics);
    free(self);
    *self_p = NULL;
}

void
dv_model_set_layers(dv_model_t *self,
                    size_t n,
                    const size_t *widths,
                    const dv_act_t *acts)
{
    free_layers(self);
    self->layers = dv_calloc(n, sizeof(dv_layer_t));
    self->n_layers = n;
    for (size_t l = 0; l < n; l++) {
        dv_layer_t *layer = &self->layers[l];
        layer->n_in = widths[l];
        layer->n_out = widths[l + 1];
        layer->act = acts[l];
        layer->w = dv_calloc(layer->n_in * layer->n_out, sizeof(float));
        layer->b = dv_calloc(layer->n_out, sizeof(float));
    }
}

size_t
dv_model_n_outputs(const dv_model_t *self)
{
    if (self->task == DV_TASK_CLASSIFICATION) {
        return self->labels ? self->labels->n : 0;
    }
    return 1;
}

size_t
dv_model_n_params(const dv_model_t *self)
{
    size_t n = 0;
    for (size_t l = 0; l < self->n_layers; l++) {
        n += self->layers[l].n_in * self->layers[l].n_out +
             self->layers[l].n_out;
    }
    return n;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) {
            return false;
        }
    }
    return true;
}

// The model's inputs and output mapping: task, feature count and names,
// target name, scaler, and y_offset/y_scale.
static int
validate_inputs(const dv_model_t *self, dv_error_t *err)
{
    if (self->task != DV_TASK_REGRESSION &&
        self->task != DV_TASK_CLASSIFICATION) {
        return dv_errorf(err, DV_EFORMAT, "unknown task %d", (int)self->task);
    }
    if (self->n_features == 0 || self->n_features > DV_MAX_COLUMNS) {
        return dv_errorf(err, DV_EMSGSIZE, "%zu features (limit 1..%d)",
                         self->n_features, DV_MAX_COLUMNS);
    }
    if (!self->feature_names || !self->target_name) {
        return dv_errorf(err, DV_EFORMAT, "feature or target names missing");
    }
    for (size_t j = 0; j < self->n_features; j++) {
        if (!self->feature_names[j]) {
            return dv_errorf(err, DV_EFORMAT, "feature %zu has no name", j);
        }
    }
    if (!self->scaler || self->scaler->n != self->n_features) {
        return dv_errorf(err, DV_ESHAPE,
                         "scaler covers %zu features, model has %zu",
                         self->scaler ? self->scaler->n : 0, self->n_features);
    }
    if (!all_finite(self->scaler->offset, self->scaler->n) ||
        !all_finite(self->scaler->scale, self->scaler->n)) {
        return dv_errorf(err, DV_ENAN, "scaler holds NaN or Inf");
    }
    if (!isfinite(self->y_offset) || !isfinite(self->y_scale) ||
        self->y_scale == 0) {
        return dv_errorf(err, DV_ENAN, "output mapping (%g, %g) is invalid",
                         (double)self->y_offset, (double)self->y_scale);
    }
    return 0;
}

// Every layer: its size within the limits, chained to the one before (the
// first to the features), parameters in all within DV_MAX_MODEL_PARAMS, a
// known activation (only relu or identity before the output layer), and
// parameters present and finite.
static int
validate_layers(const dv_model_t *self, dv_error_t *err)
{
    if (self->n_layers == 0 || self->n_layers > DV_MAX_LAYERS) {
        return dv_errorf(err, DV_EMSGSIZE, "%zu layers (limit 1..%d)",
                         self->n_layers, DV_MAX_LAYERS);
    }
    size_t params = 0;
    for (size_t l = 0; l < self->n_layers; l++) {
        const dv_layer_t *layer = &self->layers[l];
        if (layer->n_in == 0 || layer->n_in > DV_MAX_LAYER_UNITS ||
            layer->n_out == 0 || layer->n_out > DV_MAX_LAYER_UNITS) {
            return dv_errorf(err, DV_EMSGSIZE,
                             "layer %zu is %zu x %zu (limit 1..%d units)", l,
                             layer->n_in, layer->n_out, DV_MAX_LAYER_UNITS);
        }
        size_t want_in = l == 0 ? self->n_features : self->layers[l - 1].n_out;
        if (layer->n_in != want_in) {
            return dv_errorf(err, DV_ESHAPE,
                             "layer %zu takes %zu inputs but receives %zu", l,
                             layer->n_in, want_in);
        }
        params += layer->n_in * layer->n_out + layer->n_out;
        if (params > DV_MAX_MODEL_PARAMS) {
            return dv_errorf(err, DV_EMSGSIZE,
                             "over %zu parameters (limit %zu)", params,
                             DV_MAX_MODEL_PARAMS);
        }
        if ((size_t)layer->act >= N_ACTS) {
            return dv_errorf(err, DV_EFORMAT, "layer %zu: unknown activation",
                             l);
        }
        bool last = l + 1 == self->n_layers;
        if (!last && layer->act != DV_ACT_RELU &&
            layer->act != DV_ACT_IDENTITY) {
            return dv_errorf(err, DV_EFORMAT,
                             "hidden layer %zu uses %s; only relu or identity "
                             "are allowed before the output layer",
                             l, dv_act_name(layer->act));
        }
        if (!layer->w || !layer->b) {
            return dv_errorf(err, DV_EFORMAT, "layer %zu has no parameters", l);
        }
        if (!all_finite(layer->w, layer->n_in * layer->n_out) ||
            !all_finite(layer->b, layer->n_out)) {
            return dv_errorf(err, DV_ENAN,
                             "layer %zu has NaN or Inf parameters", l);
        }
    }
    return 0;
}

// Labels map outputs to classes: a repeated one would make two outputs
// mean the same class (only a crafted file can hold one).
static int
validate_unique_labels(const dv_labels_t *labels, dv_error_t *err)
{
    char **sorted = dv_malloc(labels->n * sizeof(char *));
    memcpy(sorted, labels->labels, labels->n * sizeof(char *));
    qsort(sorted, labels->n, sizeof(char *), cmp_str);
    size_t dup = 0;
    for (size_t c = 1; c < labels->n && !dup; c++) {
        dup = strcmp(sorted[c - 1], sorted[c]) == 0 ? c : 0;
    }
    int dup_rc = dup ? dv_errorf(err, DV_EFORMAT, "class '%.64s' appears twice",
                                 sorted[dup])
                     : 0;
    free(sorted);
    return dup_rc;
}

// The output layer against the task: one identity unit and no classes for
// regression; for classification 2..DV_MAX_CLASSES distinct labels and
// either one sigmoid unit (two classes) or one softmax unit per class.
static int
validate_output(const dv_model_t *self, dv_error_t *err)
{
    const dv_layer_t *out = &self->layers[self->n_layers - 1];
    if (self->task == DV_TASK_REGRESSION) {
        if (self->labels) {
            return dv_errorf(err, DV_EFORMAT, "regression model has classes");
        }
        if (out->act != DV_ACT_IDENTITY || out->n_out != 1) {
            return dv_errorf(err, DV_EFORMAT,
                             "regression output must be 1 identity unit, not "
                             "%zu %s",
                             out->n_out, dv_act_name(out->act));
        }
        return 0;
    }
    if (!self->labels || self->labels->n < 2 ||
        self->labels->n > DV_MAX_CLASSES) {
        return dv_errorf(err, DV_EFORMAT,
                         "classification model needs 2..%d classes, has %zu",
                         DV_MAX_CLASSES, self->labels ? self->labels->n : 0);
    }
    int rc = validate_unique_labels(self->labels, err);
    if (rc) {
        return rc;
    }
    bool sigmoid_ok =
        out->act == DV_ACT_SIGMOID && out->n_out == 1 && self->labels->n == 2;
    bool softmax_ok =
        out->act == DV_ACT_SOFTMAX && out->n_out == self->labels->n;
    if (!sigmoid_ok && !softmax_ok) {
        return dv_errorf(err, DV_ESHAPE,
                         "output layer (%zu %s units) does not fit %zu "
                         "classes",
                         out->n_out, dv_act_name(out->act), self->labels->n);
    }
    return 0;
}

int
dv_model_validate(const dv_model_t *self, dv_error_t *err)
{
    int rc = validate_inputs(self, err);
    if (rc || (rc = validate_layers(self, err)) != 0) {
        return rc;
    }
    return validate_output(self, err);
}

// out[r, :] = act(out[r, :] + b) for rows r, in one pass. The identity and
// ReLU loops are written branch-free over restrict pointers so the compiler
// vectorizes them: with ~50% of ReLU inputs negative, a branch per element
// mispredicts half the time and costs more than the sgemm it follows.
static void
bias_act(float *restrict out,
         size_t rows,
         size_t n,
         const float *restrict b,
         dv_act_t act)
{
    for (size_t r = 0; r < rows; r++) {
        float *restrict row = out + r * n;
        switch (act) {
        case DV_ACT_IDENTITY:
            for (size_t j = 0; j < n; j++) {
                row[j] += b[j];
            }
            break;
        case DV_ACT_RELU:
            for (size_t j = 0; j < n; j++) {
                float v = row[j] + b[j];
                row[j] = v > 0.0f ? v : 0.0f;
            }
            break;
        case DV_ACT_SIGMOID:
            for (size_t j = 0; j < n; j++) {
                float v = row[j] + b[j];
                // exp of a non-positive number only: no overflow either way.
                float e = expf(-fabsf(v));
                row[j] = v >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
            }
            break;
        case DV_ACT_SOFTMAX: {
            float max = -INFINITY;
            for (size_t j = 0; j < n; j++) {
                row[j] += b[j];
                max = row[j] > max ? row[j] : max;
            }
            float sum = 0.0f;
            for (size_t j = 0; j < n; j++) {
                row[j] = expf(row[j] - max); // subtract max: no overflow
                sum += row[j];
            }
            float inv = 1.0f / sum;
            for (size_t j = 0; j < n; j++) {
                row[j] *= inv;
            }
            break;
        }
        }
    }
}

void
dv_layer_forward(const dv_layer_t *layer,
                 const float *in,
                 size_t rows,
                 float *out)
{
    dv_gemm(false, false, rows, layer->n_out, layer->n_in, 1.0f, in,
            layer->n_in, layer->w, layer->n_out, 0.0f, out, layer->n_out);
    bias_act(out, rows, layer->n_out, layer->b, layer->act);
}

void
dv_model_forward(const dv_model_t *self,
                 const float *x,
                 size_t rows,
                 float *out,
                 float *scratch)
{
    size_t widest = 0;
    for (size_t l = 0; l < self->n_layers; l++) {
        widest =
            self->layers[l].n_out > widest ? self->layers[l].n_out : widest;
    }
    float *buf[2] = {scratch, scratch + rows * widest};
    const float *in = x;
    for (size_t l = 0; l < self->n_layers; l++) {
        const dv_layer_t *layer = &self->layers[l];
        float *dst = l + 1 == self->n_layers ? out : buf[l & 1];
        dv_layer_forward(layer, in, rows, dst);
        in = dst;
    }
}

int
dv_model_check_input(const dv_model_t *self,
                     const dv_tensor_t *x,
                     dv_error_t *err)
{
    if (x->cols != self->n_features) {
        return dv_errorf(err, DV_ESHAPE,
                         "input has %zu features, the model expects %zu",
                         x->cols, self->n_features);
    }
    size_t bad = dv_tensor_first_nonfinite(x);
    if (bad < dv_tensor_size(x)) {
        return dv_errorf(err, DV_ENAN,
                         "input row %zu, feature %zu (%s) is NaN or Inf",
                         bad / x->cols + 1, bad % x->cols + 1,
                         self->feature_names[bad % x->cols]);
    }
    return 0;
}

int
dv_model_predict(const dv_model_t *self,
                 const dv_tensor_t *x,
                 dv_tensor_t **out,
                 dv_error_t *err)
{
    int crc = dv_model_check_input(self, x, err);
    if (crc) {
        return crc;
    }
    size_t n_out = dv_model_n_outputs(self);
    dv_tensor_t *result = NULL;
    int rc = dv_tensor_open(&result, x->rows, n_out, err);
    if (rc) {
        return rc;
    }
    size_t widest = self->n_features;
    for (size_t l = 0; l < self->n_layers; l++) {
        widest =
            self->layers[l].n_out > widest ? self->layers[l].n_out : widest;
    }
    const dv_layer_t *last = &self->layers[self->n_layers - 1];
    // Buffers for one block, no bigger than the input: small requests (one
    // row) stay small and never hit mmap-sized allocations. One block of
    // floats holds all three: the thread's own, or this call's.
    size_t block = x->rows < PREDICT_BLOCK ? x->rows : PREDICT_BLOCK;
    size_t n_in = block * self->n_features, n_scratch = 2 * block * widest;
    size_t need = n_in + n_scratch + block * last->n_out;
    float *mine = scratch_take(need);
    float *in = mine, *scratch = mine + n_in, *raw = scratch + n_scratch;
    const float *off = self->scaler->offset, *sc = self->scaler->scale;
    for (size_t r0 = 0; r0 < x->rows; r0 += block) {
        size_t rows = x->rows - r0 < block ? x->rows - r0 : block;
        for (size_t r = 0; r < rows; r++) {
            const float *src = x->data + (r0 + r) * x->cols;
            float *dst = in + r * self->n_features;
            for (size_t j = 0; j < self->n_features; j++) {
                dst[j] = (src[j] - off[j]) * sc[j];
            }
        }
        dv_model_forward(self, in, rows, raw, scratch);
        float *o = result->data + r0 * n_out;
        if (self->task == DV_TASK_REGRESSION) {
            for (size_t r = 0; r < rows; r++) {
                o[r] = raw[r] * self->y_scale + self->y_offset;
            }
        } else if (last->act == DV_ACT_SIGMOID) {
            for (size_t r = 0; r < rows; r++) {
                o[2 * r] = 1.0f - raw[r];
                o[2 * r + 1] = raw[r];
            }
        } else {
            memcpy(o, raw, rows * n_out * sizeof(float));
        }
    }
    scratch_give(mine);
    *out = result;
    return 0;
}
