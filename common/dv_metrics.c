// dv_metrics — regression and classification metrics with scikit-learn 1.2's
// definitions (sklearn.metrics), accumulated in double.
#include "dv_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dv_mem.h"

// log_loss clips probabilities to [eps, 1 - eps] as scikit-learn 1.2 does.
#define LOG_LOSS_EPS 1e-15

const char *
dv_task_name(dv_task_t task)
{
    return task == DV_TASK_CLASSIFICATION ? "classification" : "regression";
}

double
dv_metric_mse(const float *y, const float *pred, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)y[i] - pred[i];
        s += d * d;
    }
    return n ? s / (double)n : 0.0;
}

double
dv_metric_mae(const float *y, const float *pred, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        s += fabs((double)y[i] - pred[i]);
    }
    return n ? s / (double)n : 0.0;
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
        double r = (double)y[i] - pred[i], t = (double)y[i] - mean;
        ss_res += r * r;
        ss_tot += t * t;
    }
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
        hits += y[i] == pred[i];
    }
    return n ? (double)hits / (double)n : 0.0;
}

void
dv_confusion_matrix(
    const uint32_t *y, const uint32_t *pred, size_t n, size_t k, uint64_t *cm)
{
    memset(cm, 0, k * k * sizeof(uint64_t));
    for (size_t i = 0; i < n; i++) {
        if (y[i] < k && pred[i] < k) {
            cm[(size_t)y[i] * k + pred[i]]++;
        }
    }
}

dv_prf_t
dv_metric_prf_class(const uint64_t *cm, size_t k, size_t cls)
{
    uint64_t tp = cm[cls * k + cls], predicted = 0, actual = 0;
    for (size_t i = 0; i < k; i++) {
        predicted += cm[i * k + cls];
        actual += cm[cls * k + i];
    }
    dv_prf_t r = {0, 0, 0};
    r.precision = predicted ? (double)tp / (double)predicted : 0.0;
    r.recall = actual ? (double)tp / (double)actual : 0.0;
    double sum = r.precision + r.recall;
    r.f1 = sum > 0 ? 2.0 * r.precision * r.recall / sum : 0.0;
    return r;
}

dv_prf_t
dv_metric_prf_macro(const uint64_t *cm, size_t k)
{
    dv_prf_t m = {0, 0, 0};
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
        // Clip, then renormalize the row, as scikit-learn 1.2 does.
        double sum = 0.0, pt = 0.0;
        for (size_t c = 0; c < k; c++) {
            double v = p[c];
            v = v < LOG_LOSS_EPS
                    ? LOG_LOSS_EPS
                    : (v > 1 - LOG_LOSS_EPS ? 1 - LOG_LOSS_EPS : v);
            sum += v;
            if (c == y[i]) {
                pt = v;
            }
        }
        total -= log(pt / sum);
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
    memset(out, 0, sizeof *out);
    out->task = DV_TASK_CLASSIFICATION;
    out->rows = n;
    out->n_classes = k;
    out->confusion = dv_calloc(k * k, sizeof(uint64_t));
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        const float *p = proba + i * k;
        size_t best = 0;
        for (size_t c = 1; c < k; c++) {
            best = p[c] > p[best] ? c : best;
        }
        hits += best == y[i];
        if (y[i] < k) {
            out->confusion[(size_t)y[i] * k + best]++;
        }
    }
    out->accuracy = n ? (double)hits / (double)n : 0.0;
    dv_prf_t macro = dv_metric_prf_macro(out->confusion, k);
    out->precision_macro = macro.precision;
    out->recall_macro = macro.recall;
    out->f1_macro = macro.f1;
    if (k == 2) {
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
