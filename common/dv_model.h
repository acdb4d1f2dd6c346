// dv_model — a trained model: preprocessing + a stack of dense layers, and
// inference on it.
//
// Every algorithm Drover trains is a stack of dense layers, which keeps
// inference, the file format and gradient code one path:
//   ols, gd, ridge  1 layer, identity output      (linear regression)
//   logreg          1 layer, 1 unit, sigmoid      (binary classification)
//   softmax         1 layer, K units, softmax     (multiclass)
//   mlp             ReLU hidden layers, then softmax (classification) or
//                   identity (regression)
// Inputs are scaled by the stored scaler; regression outputs are mapped back
// with y = out * y_scale + y_offset (targets are standardized for the
// iterative algorithms, identity for closed-form ones).
//
// A model is a plain record shared by the trainer, the file codec and
// inference: fields are public, their invariants are checked by
// dv_model_validate (the file reader runs it on everything it loads).
// Read-only use (dv_model_predict) is safe from several threads at once.
#ifndef DV_MODEL_H
#define DV_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dv_err.h"
#include "dv_metrics.h"
#include "dv_prep.h"
#include "dv_sha256.h"
#include "dv_tensor.h"

// Training algorithms: XX(NAME, "cli name").
#define DV_ALGO_MAP(XX)                                                        \
    XX(OLS, "ols")                                                             \
    XX(GD, "gd")                                                               \
    XX(RIDGE, "ridge")                                                         \
    XX(LOGREG, "logreg")                                                       \
    XX(SOFTMAX, "softmax")                                                     \
    XX(MLP, "mlp")

typedef enum {
#define XX(name, text) DV_ALGO_##name,
    DV_ALGO_MAP(XX)
#undef XX
} dv_algo_t;

const char *dv_algo_name(dv_algo_t algo);
int dv_algo_parse(const char *text, dv_algo_t *out); // 0 or DV_EINVAL

#define DV_ACT_MAP(XX)                                                         \
    XX(IDENTITY, "identity")                                                   \
    XX(RELU, "relu")                                                           \
    XX(SIGMOID, "sigmoid")                                                     \
    XX(SOFTMAX, "softmax")

typedef enum {
#define XX(name, text) DV_ACT_##name,
    DV_ACT_MAP(XX)
#undef XX
} dv_act_t;

const char *dv_act_name(dv_act_t act);
int dv_act_parse(const char *text, dv_act_t *out); // 0 or DV_EINVAL

typedef struct {
    size_t n_in;  // input units
    size_t n_out; // output units
    dv_act_t act; // activation applied to X * W + b
    float *w;     // n_in x n_out weights, row-major, owned
    float *b;     // n_out biases, owned
} dv_layer_t;

// Initial weights of an mlp: XX(NAME, "cli name"). Biases start at zero
// except with uniform-fan-in, which draws them as PyTorch's nn.Linear does.
//   glorot          U(+-sqrt(6 / (fan_in + fan_out))) (scikit-learn, Keras)
//   he              U(+-sqrt(6 / fan_in)) (Kaiming, for ReLU)
//   uniform-fan-in  U(+-1 / sqrt(fan_in)), weights and biases (PyTorch)
#define DV_INIT_MAP(XX)                                                        \
    XX(GLOROT, "glorot")                                                       \
    XX(HE, "he")                                                               \
    XX(FAN_IN, "uniform-fan-in")

typedef enum {
#define XX(name, text) DV_INIT_##name,
    DV_INIT_MAP(XX)
#undef XX
} dv_init_t;

const char *dv_init_name(dv_init_t init);
int dv_init_parse(const char *text, dv_init_t *out); // 0 or DV_EINVAL

// Hyper-parameters a model was trained with (also the trainer's input).
#define DV_MAX_HIDDEN 16
typedef struct {
    dv_algo_t algo;    // training algorithm
    dv_scale_t scale;  // input scaling fitted on the training data
    uint32_t epochs;   // maximum passes over the data (iterative algos)
    uint32_t batch;    // mini-batch rows
    double lr;         // learning rate (Adam step size / GD step)
    double l2;         // L2 penalty (ridge: alpha on the summed squared
                       // error; others: weight decay on the mean loss)
    double tol;        // early stop: loss improvement below tol ...
    uint32_t patience; // ... for this many epochs in a row (0 = never)
    uint64_t seed;     // RNG seed: init, shuffling
    uint32_t n_hidden; // hidden layers (mlp)
    uint32_t hidden[DV_MAX_HIDDEN]; // units per hidden layer
    dv_init_t init;                 // initial weights (mlp)
    double validation_fraction;     // share of rows held out to judge early
                                    // stopping, [0, 0.5); 0 = judge the
                                    // training loss
} dv_hyper_t;

// Training record kept in the model file.
typedef struct {
    dv_hyper_t hyper;                        // what was asked for
    uint8_t dataset_sha256[DV_SHA256_BYTES]; // training file checksum
    uint64_t dataset_rows;                   // training rows
    uint32_t epochs_run;                     // epochs actually run (early stop)
    double final_loss;                       // training loss at the end (mean)
    dv_metrics_t train_metrics;              // metrics on the training data (no
                                             // confusion matrix kept)
    int64_t created_unix;                    // seconds since the epoch, UTC
    char drover_version[32];                 // version that trained it
} dv_model_meta_t;

typedef struct {
    dv_task_t task;       // regression or classification
    size_t n_features;    // input width
    char **feature_names; // n_features names, owned
    char *target_name;    // target column name, owned
    dv_labels_t *labels;  // classification: the classes; NULL otherwise
    dv_scaler_t *scaler;  // input scaling, n == n_features; owned
    float y_offset;       // regression output mapping (0 and 1 when
    float y_scale;        // unused)
    size_t n_layers;      // >= 1
    dv_layer_t *layers;   // n_layers layers, owned
    dv_model_meta_t meta; // how it was trained
} dv_model_t;

// An empty model record (all zero, y_scale 1) to be filled by the trainer or
// file reader. Never NULL; caller owns it.
dv_model_t *dv_model_new(void);

// Free the model, its layers, names, labels and scaler; *self_p = NULL.
// NULL-safe, idempotent.
void dv_model_destroy(dv_model_t **self_p);

// Allocate self->layers for n layers with the given widths (widths[0] =
// n_features, widths[n] = outputs) and activations; weights zeroed.
void dv_model_set_layers(dv_model_t *self,
                         size_t n,
                         const size_t *widths,
                         const dv_act_t *acts);

// Columns of dv_model_predict's output: 1 for regression, K class
// probabilities for classification (binary logreg included).
size_t dv_model_n_outputs(const dv_model_t *self);

// Total weights + biases.
size_t dv_model_n_params(const dv_model_t *self);

// Check every invariant (widths chain, activations fit the task, counts
// within dv_limits.h, finite parameters, scaler width, labels count).
// Returns 0 or DV_EFORMAT/DV_ESHAPE/DV_ENAN/DV_EMSGSIZE with the reason.
int dv_model_validate(const dv_model_t *self, dv_error_t *err);

// What dv_model_predict checks of x before any math: 0, or DV_ESHAPE when
// its width is wrong, DV_ENAN naming the first non-finite input (row,
// column) — the same codes and texts, so a caller batching several inputs
// can fail one alone exactly as predicting it alone would.
int dv_model_check_input(const dv_model_t *self,
                         const dv_tensor_t *x,
                         dv_error_t *err);

// Run the model on x (n x n_features, raw unscaled features). Returns 0 and
// sets *out (caller owns it; n x dv_model_n_outputs), or DV_ESHAPE when the
// width is wrong, DV_ENAN naming the first non-finite input (row, column),
// DV_ENOMEM. Works in bounded batches; thread-safe on a shared model.
int dv_model_predict(const dv_model_t *self,
                     const dv_tensor_t *x,
                     dv_tensor_t **out,
                     dv_error_t *err);

// One layer: out (rows x n_out) = act(in (rows x n_in) * W + b). One sgemm,
// then bias and activation fused in one pass. No allocation.
void dv_layer_forward(const dv_layer_t *layer,
                      const float *in,
                      size_t rows,
                      float *out);

// Forward pass on already-scaled inputs: x is rows x n_features, out must be
// rows x (last layer's n_out); scratch holds 2 * rows * (widest layer)
// floats. Output is the raw last-layer activation (sigmoid: P(class 1)).
// Used by predict and by the trainer; no allocation.
void dv_model_forward(const dv_model_t *self,
                      const float *x,
                      size_t rows,
                      float *out,
                      float *scratch);

#endif
