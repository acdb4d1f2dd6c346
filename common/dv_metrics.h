// dv_metrics — evaluation metrics for regression and classification.
//
// Definitions follow scikit-learn 1.2 (sklearn.metrics) so figures compare
// one to one: R^2 as in dv_metric_r2, precision/recall/F1 are 0 where undefined
// (zero_division=0), log-loss clips probabilities to [1e-15, 1 - 1e-15] and
// renormalizes each row (log_loss(..., eps=1e-15); 1.2's default eps="auto"
// would clip at the input dtype's machine epsilon instead).
// Pure functions over caller-owned arrays; no allocation except where noted.
#ifndef DV_METRICS_H
#define DV_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    DV_TASK_REGRESSION = 0,
    DV_TASK_CLASSIFICATION = 1,
} dv_task_t;

// "regression" / "classification".
const char *dv_task_name(dv_task_t task);

// Regression metrics over n pairs (n >= 1).
double dv_metric_mse(const float *y, const float *pred, size_t n);
double dv_metric_mae(const float *y, const float *pred, size_t n);
// 1 - SS_res / SS_tot. When SS_tot == 0 (constant y): 1.0 if SS_res == 0,
// else 0.0 (scikit-learn's convention). One row counts as constant y (where
// scikit-learn returns nan), so the figure is always finite.
double dv_metric_r2(const float *y, const float *pred, size_t n);

// Fraction of y[i] == pred[i].
double dv_metric_accuracy(const uint32_t *y, const uint32_t *pred, size_t n);

// Fill cm (k * k counts, caller-owned, row = true class, column = predicted)
// from n labels in [0, k). Labels >= k are ignored (callers validate first).
void dv_confusion_matrix(
    const uint32_t *y, const uint32_t *pred, size_t n, size_t k, uint64_t *cm);

typedef struct {
    double precision; // TP / (TP + FP), 0 when no predictions of the class
    double recall;    // TP / (TP + FN), 0 when the class never occurs
    double f1;        // harmonic mean, 0 when precision + recall == 0
} dv_prf_t;

// Precision/recall/F1 of one class (binary metrics: pass the positive class).
dv_prf_t dv_metric_prf_class(const uint64_t *cm, size_t k, size_t cls);

// Unweighted mean of the per-class figures over all k classes (macro).
dv_prf_t dv_metric_prf_macro(const uint64_t *cm, size_t k);

// Mean cross-entropy of n rows of k class probabilities (row-major n x k)
// against true labels y in [0, k): each row is clipped to [1e-15, 1 - 1e-15],
// then divided by its sum, as scikit-learn does.
double
dv_metric_log_loss(const uint32_t *y, const float *proba, size_t n, size_t k);

// All metrics that fit a task, as `drover local eval` prints them.
typedef struct {
    dv_task_t task; // which half below is set
    size_t rows;    // rows evaluated
    // regression
    double mse; // mean squared error
    double mae; // mean absolute error
    double r2;  // coefficient of determination
    // classification
    size_t n_classes;       // k
    double accuracy;        // fraction correct
    double precision_macro; // macro averages over the k classes
    double recall_macro;
    double f1_macro;
    double precision; // binary (k == 2) figures for class 1; else 0
    double recall;
    double f1;
    double log_loss;     // mean cross-entropy
    uint64_t *confusion; // k * k counts, owned (free with dv_metrics_clear)
} dv_metrics_t;

// Regression metrics of n predictions. Fills *out (no allocation).
void dv_metrics_regression(dv_metrics_t *out,
                           const float *y,
                           const float *pred,
                           size_t n);

// Classification metrics from n rows of k class probabilities (n x k,
// row-major); the prediction is the most probable class (lowest index on
// ties). Allocates out->confusion; release with dv_metrics_clear.
void dv_metrics_classification(dv_metrics_t *out,
                               const uint32_t *y,
                               const float *proba,
                               size_t n,
                               size_t k);

// Free what dv_metrics_classification allocated; safe on any filled struct.
void dv_metrics_clear(dv_metrics_t *m);

#endif
