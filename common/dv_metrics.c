// dv_metrics — regression and classification metrics with scikit-learn 1.2's
// definitions (sklearn.metrics), so Drover's figures compare one to one with
// a Python notebook on the same predictions.
//
// Model: pure functions over caller-owned arrays, safe from any thread. Sums
// are accumulated in double whatever the input type (float predictions,
// uint64_t counts). The only allocation is the confusion matrix that
// dv_metrics_classification hands to the caller's dv_metrics_t.
//
// Conventions that differ from the textbook formulas, all scikit-learn's:
//   r2_score         constant y: 1.0 when the fit is exact, else 0.0
//                    (force_finite=True)
//   precision etc.   0/0 is 0 (zero_division=0); F1 is computed from the
//                    per-class precision and recall, as 1.2 does
//   macro averages   unweighted mean over all k classes, including classes
//                    absent from y (sklearn's labels=range(k))
//   log_loss         clip to [1e-15, 1 - 1e-15], then renormalize each row
//                    to sum 1 (sklearn 1.2 with eps=1e-15)
//   argmax           first maximum wins; a NaN counts as the maximum
//                    (numpy.argmax, which sklearn's predict uses)
#include "dv_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dv_mem.h"

// log_loss clips probabilities to [eps, 1 - eps] so that log() stays finite
// when a model is certain and wrong; 1e-15 is scikit-learn's long-standing
// value (its eps argument).
#define LOG_LOSS_EPS 1e-15

// Index of the most probable class in p[0..k): the lowest index on ties, and
// the first NaN if there is one (numpy.argmax).
static size_t
argmax(const float *p, size_t k)
{
    size_t best = 0;
    for (size_t c = 1; c < k && !isnan(p[best]); c++) {
        if (isnan(p[c]) || p[c] > p[best]) {
            best = c;
        }
    }
    return best;
}

const char *
dv_task_name(dv_task_t task)
{
    return task == DV_TASK_CLASSIFICATION ? "classification" : "regression";
}

double
dv_metric_mse(const float *y, const float *pred, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)y[i] - (double)pred[i];
        sum += d * d;
    }
    return n ? sum / (double)n : 0.0;
}

double
dv_metric_mae(const float *y, const float *pred, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        sum += fabs((double)y[i] - (double)pred[i]);
    }
    return n ? sum / (double)n : 0.0;
}

double
dv_metric_r2(const float *y, const float *pred, size_t n)
{
    if (n == 0) {
        return 0.0;
    }
    double mean = 0.0;
    for (size_t i = 0; i < n; i++) {
        mean += y[i];
    }
    mean /= (double)n;
    double ss_res = 0.0, ss_tot = 0.0;
    for (size_t i = 0; i < n; i++) {
        double r = (double)y[i] - (double)pred[i];
        double t = (double)y[i] - mean;
        ss_res += r * r;
        ss_tot += t * t;
    }
    // Exact comparisons on purpose: scikit-learn tests != 0, not a tolerance.
    if (ss_tot == 0.0) {
        return ss_res == 0.0 ? 1.0 : 0.0;
    }
    return 1.0 - ss_res / ss_tot;
}

double
dv_metric_accuracy(const uint32_t *y, const uint32_t *pred, size_t n)
{
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        if (y[i] == pred[i]) {
            hits++;
        }
    }
    return n ? (double)hits / (double)n : 0.0;
}

void
dv_confusion_matrix(
    const uint32_t *y, const uint32_t *pred, size_t n, size_t k, uint64_t *cm)
{
    memset(cm, 0, k * k * sizeof *cm);
    for (size_t i = 0; i < n; i++) {
        if (y[i] < k && pred[i] < k) {
            cm[(size_t)y[i] * k + pred[i]]++;
        }
    }
}

dv_prf_t
dv_metric_prf_class(const uint64_t *cm, size_t k, size_t cls)
{
    dv_assert(cls < k);
    uint64_t tp = cm[cls * k + cls];
    uint64_t predicted = 0; // column sum: TP + FP
    uint64_t actual = 0;    // row sum: TP + FN
    for (size_t i = 0; i < k; i++) {
        predicted += cm[i * k + cls];
        actual += cm[cls * k + i];
    }
    dv_prf_t r = {0.0, 0.0, 0.0};
    r.precision = predicted ? (double)tp / (double)predicted : 0.0;
    r.recall = actual ? (double)tp / (double)actual : 0.0;
    double sum = r.precision + r.recall;
    r.f1 = sum > 0.0 ? 2.0 * r.precision * r.recall / sum : 0.0;
    return r;
}

dv_prf_t
dv_metric_prf_macro(const uint64_t *cm, size_t k)
{
    dv_prf_t m = {0.0, 0.0, 0.0};
    for (size_t c = 0; c < k; c++) {
        dv_prf_t r = dv_metric_prf_class(cm, k, c);
        m.precision += r.precision;
        m.recall += r.recall;
        m.f1 += r.f1;
    }
    if (k) {
        m.precision /= (double)k;
        m.recall /= (double)k;
        m.f1 /= (double)k;
    }
    return m;
}

double
dv_metric_log_loss(const uint32_t *y, const float *proba, size_t n, size_t k)
{
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        const float *p = proba + i * k;
        // Clip every entry, then divide by the clipped row's sum: a row of
        // raw scores or a rounded softmax is scored as scikit-learn 1.2
        // scores it. A label >= k finds no probability and the loss is +inf.
        double sum = 0.0, p_true = 0.0;
        for (size_t c = 0; c < k; c++) {
            double v = p[c];
            if (v < LOG_LOSS_EPS) {
                v = LOG_LOSS_EPS;
            } else if (v > 1.0 - LOG_LOSS_EPS) {
                v = 1.0 - LOG_LOSS_EPS;
            }
            sum += v;
            if (c == y[i]) {
                p_true = v;
            }
        }
        total -= log(p_true / sum);
    }
    return n ? total / (double)n : 0.0;
}

void
dv_metrics_regression(dv_metrics_t *out,
                      const float *y,
                      const float *pred,
                      size_t n)
{
    memset(out, 0, sizeof *out);
    out->task = DV_TASK_REGRESSION;
    out->rows = n;
    out->mse = dv_metric_mse(y, pred, n);
    out->mae = dv_metric_mae(y, pred, n);
    out->r2 = dv_metric_r2(y, pred, n);
}

void
dv_metrics_classification(dv_metrics_t *out,
                          const uint32_t *y,
                          const float *proba,
                          size_t n,
                          size_t k)
{
    dv_assert(k > 0);
    memset(out, 0, sizeof *out);
    out->task = DV_TASK_CLASSIFICATION;
    out->rows = n;
    out->n_classes = k;
    out->confusion = dv_calloc(k * k, sizeof *out->confusion);
    // One pass: argmax each row into the confusion matrix and count hits,
    // without a temporary array of predictions.
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pred = argmax(proba + i * k, k);
        if (pred == y[i]) {
            hits++;
        }
        if (y[i] < k) {
            out->confusion[(size_t)y[i] * k + pred]++;
        }
    }
    out->accuracy = n ? (double)hits / (double)n : 0.0;
    dv_prf_t macro = dv_metric_prf_macro(out->confusion, k);
    out->precision_macro = macro.precision;
    out->recall_macro = macro.recall;
    out->f1_macro = macro.f1;
    if (k == 2) {
        // scikit-learn's average='binary' with pos_label=1.
        dv_prf_t bin = dv_metric_prf_class(out->confusion, k, 1);
        out->precision = bin.precision;
        out->recall = bin.recall;
        out->f1 = bin.f1;
    }
    out->log_loss = dv_metric_log_loss(y, proba, n, k);
}

void
dv_metrics_clear(dv_metrics_t *m)
{
    free(m->confusion);
    m->confusion = NULL;
}
