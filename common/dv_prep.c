// dv_prep — scalers (per-feature affine maps) and class label encoding.
//
// Statistics are accumulated in double: float sums over millions of rows lose
// the low digits a standardization needs. Label lookup sorts the labels once
// (bytewise) and binary-searches per row, so encoding n rows over k classes
// costs O(n log k).
#include "dv_prep.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_limits.h"
#include "dv_mem.h"

static const char *s_scale_names[] = {
#define XX(name, text) text,
    DV_SCALE_MAP(XX)
#undef XX
};
#define N_SCALES (sizeof s_scale_names / sizeof s_scale_names[0])

const char *
dv_scale_name(dv_scale_t kind)
{
    return (size_t)kind < N_SCALES ? s_scale_names[kind] : "unknown";
}

int
dv_scale_parse(const char *text, dv_scale_t *out)
{
    for (size_t i = 0; i < N_SCALES; i++) {
        if (strcmp(text, s_scale_names[i]) == 0) {
            *out = (dv_scale_t)i;
            return 0;
        }
    }
    return DV_EINVAL;
}

dv_scaler_t *
dv_scaler_new(dv_scale_t kind,
              size_t n,
              const float *offset,
              const float *scale)
{
    dv_scaler_t *self = dv_malloc(sizeof *self);
    self->kind = kind;
    self->n = n;
    self->offset = dv_malloc(n * sizeof(float));
    self->scale = dv_malloc(n * sizeof(float));
    for (size_t j = 0; j < n; j++) {
        self->offset[j] = offset ? offset[j] : 0.0f;
        self->scale[j] = scale ? scale[j] : 1.0f;
    }
    return self;
}

dv_scaler_t *
dv_scaler_fit(dv_scale_t kind, const dv_tensor_t *x)
{
    size_t n = x->cols;
    dv_scaler_t *self = dv_scaler_new(kind, n, NULL, NULL);
    if (kind == DV_SCALE_NONE || x->rows == 0) {
        return self;
    }
    double *a = dv_calloc(n, sizeof(double)); // mean or min
    double *b = dv_calloc(n, sizeof(double)); // M2 or max
    if (kind == DV_SCALE_STANDARD) {
        // Two passes (mean, then squared deviations) rather than sum of
        // squares: no cancellation when the mean is large against the std.
        for (size_t i = 0; i < x->rows; i++) {
            const float *row = x->data + i * n;
            for (size_t j = 0; j < n; j++) {
                a[j] += row[j];
            }
        }
        for (size_t j = 0; j < n; j++) {
            a[j] /= (double)x->rows;
        }
        for (size_t i = 0; i < x->rows; i++) {
            const float *row = x->data + i * n;
            for (size_t j = 0; j < n; j++) {
                double d = row[j] - a[j];
                b[j] += d * d;
            }
        }
        for (size_t j = 0; j < n; j++) {
            double sd = sqrt(b[j] / (double)x->rows);
            self->offset[j] = (float)a[j];
            // Constant (or numerically constant) columns: keep them centred
            // at 0 with scale 1, as scikit-learn does, instead of dividing
            // by ~0 and turning rounding noise into huge features.
            self->scale[j] = sd > 1e-7 * (fabs(a[j]) + 1e-30) && sd > 0
                                 ? (float)(1.0 / sd)
                                 : 1.0f;
        }
    } else {
        for (size_t j = 0; j < n; j++) {
            a[j] = x->data[j];
            b[j] = x->data[j];
        }
        for (size_t i = 1; i < x->rows; i++) {
            const float *row = x->data + i * n;
            for (size_t j = 0; j < n; j++) {
                a[j] = row[j] < a[j] ? row[j] : a[j];
                b[j] = row[j] > b[j] ? row[j] : b[j];
            }
        }
        for (size_t j = 0; j < n; j++) {
            double range = b[j] - a[j];
            float sc = range > 0 ? (float)(1.0 / range) : 1.0f;
            // dv_scaler_apply computes (max - min) * sc in float, which can
            // round to 1.00000012: step sc down until the maximum lands on 1
            // or just below, so [0, 1] holds on the training data.
            float d = (float)b[j] - (float)a[j];
            while (range > 0 && d * sc > 1.0f) {
                sc = nextafterf(sc, 0.0f);
            }
            self->offset[j] = (float)a[j];
            self->scale[j] = sc;
        }
    }
    free(a);
    free(b);
    return self;
}

void
dv_scaler_destroy(dv_scaler_t **self_p)
{
    if (self_p && *self_p) {
        free((*self_p)->offset);
        free((*self_p)->scale);
        free(*self_p);
        *self_p = NULL;
    }
}

void
dv_scaler_apply(const dv_scaler_t *self, dv_tensor_t *x)
{
    dv_assert(x->cols == self->n);
    if (self->kind == DV_SCALE_NONE) {
        return;
    }
    size_t n = self->n;
    for (size_t i = 0; i < x->rows; i++) {
        float *row = x->data + i * n;
        for (size_t j = 0; j < n; j++) {
            row[j] = (row[j] - self->offset[j]) * self->scale[j];
        }
    }
}

// Canonical text of a numeric label: "%.15g" so 1, 1.0 and 1e0 are one class.
static void
numeric_label(double v, char *buf, size_t size)
{
    snprintf(buf, size, "%.15g", v == 0 ? 0.0 : v); // no "-0"
}

typedef struct {
    const char *text; // canonical label
    double value;     // numeric value (numeric labels)
} label_key_t;

static int
cmp_numeric(const void *pa, const void *pb)
{
    const label_key_t *a = pa, *b = pb;
    return (a->value > b->value) - (a->value < b->value);
}

static int
cmp_text(const void *pa, const void *pb)
{
    const label_key_t *a = pa, *b = pb;
    return strcmp(a->text, b->text);
}

int
dv_labels_fit(dv_labels_t **out,
              char *const *text,
              const double *values,
              bool numeric,
              size_t n,
              dv_error_t *err)
{
    label_key_t *keys = dv_try_malloc(n, sizeof *keys);
    char(*canon)[32] = numeric ? dv_try_malloc(n, sizeof *canon) : NULL;
    if (!keys || (numeric && !canon)) {
        free(keys);
        free(canon);
        return dv_errorf(err, DV_ENOMEM, "cannot index %zu labels", n);
    }
    for (size_t i = 0; i < n; i++) {
        if (numeric && !isfinite(values[i])) {
            free(keys);
            free(canon);
            return dv_errorf(err, DV_EFORMAT,
                             "row %zu: label is not a finite number", i + 1);
        }
        if (numeric) {
            numeric_label(values[i], canon[i], sizeof canon[i]);
            keys[i].text = canon[i];
            keys[i].value = values[i];
        } else {
            keys[i].text = text[i];
            keys[i].value = 0;
        }
    }
    qsort(keys, n, sizeof *keys, numeric ? cmp_numeric : cmp_text);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(keys[i].text, keys[k - 1].text) != 0) {
            keys[k++] = keys[i];
        }
    }
    int rc = 0;
    if (k < 2) {
        rc = dv_errorf(err, DV_EFORMAT,
                       "classification needs at least 2 classes; the target "
                       "has %zu",
                       k);
    } else if (k > DV_MAX_CLASSES) {
        rc = dv_errorf(err, DV_EMSGSIZE,
                       "the target has %zu distinct values, over the limit "
                       "of %d classes (is it a regression target?)",
                       k, DV_MAX_CLASSES);
    } else {
        dv_labels_t *self = dv_malloc(sizeof *self);
        self->n = k;
        self->numeric = numeric;
        self->labels = dv_malloc(k * sizeof(char *));
        for (size_t c = 0; c < k; c++) {
            self->labels[c] = dv_strdup(keys[c].text);
        }
        *out = self;
    }
    free(keys);
    free(canon);
    return rc;
}

dv_labels_t *
dv_labels_new(char *const *labels, size_t n, bool numeric)
{
    dv_labels_t *self = dv_malloc(sizeof *self);
    self->n = n;
    self->numeric = numeric;
    self->labels = dv_malloc((n ? n : 1) * sizeof(char *));
    for (size_t c = 0; c < n; c++) {
        self->labels[c] = dv_strdup(labels[c]);
    }
    return self;
}

void
dv_labels_destroy(dv_labels_t **self_p)
{
    if (self_p && *self_p) {
        dv_labels_t *self = *self_p;
        for (size_t c = 0; c < self->n; c++) {
            free(self->labels[c]);
        }
        free(self->labels);
        free(self);
        *self_p = NULL;
    }
}

int
dv_labels_encode(const dv_labels_t *self,
                 char *const *text,
                 const double *values,
                 size_t n,
                 uint32_t *out,
                 dv_error_t *err)
{
    // Labels sorted bytewise with their class index (in value), for bsearch.
    label_key_t *sorted = dv_malloc(self->n * sizeof *sorted);
    for (size_t c = 0; c < self->n; c++) {
        sorted[c].text = self->labels[c];
        sorted[c].value = (double)c;
    }
    qsort(sorted, self->n, sizeof *sorted, cmp_text);
    int rc = 0;
    char buf[32];
    for (size_t i = 0; i < n; i++) {
        label_key_t key = {text ? text[i] : NULL, 0};
        if (self->numeric) {
            if (!values || isnan(values[i])) {
                rc = dv_errorf(err, DV_EFORMAT,
                               "row %zu: label '%.32s' is not a number; the "
                               "model's classes are numbers",
                               i + 1, key.text ? key.text : "");
                break;
            }
            numeric_label(values[i], buf, sizeof buf);
            key.text = buf;
        }
        const label_key_t *hit =
            key.text ? bsearch(&key, sorted, self->n, sizeof *sorted, cmp_text)
                     : NULL;
        if (!hit) {
            rc = dv_errorf(err, DV_EFORMAT,
                           "row %zu: label '%.32s' is not one of the model's "
                           "%zu classes",
                           i + 1, key.text ? key.text : "", self->n);
            break;
        }
        out[i] = (uint32_t)hit->value;
    }
    free(sorted);
    return rc;
}
