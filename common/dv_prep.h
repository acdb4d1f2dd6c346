// dv_prep — preprocessing fitted on training data and stored in the model:
// feature scaling (standard, min-max) and label encoding for classes.
//
// A scaler is an affine map per feature, x' = (x - offset[j]) * scale[j], so
// every kind applies the same way at inference and serializes the same way:
//   none      offset 0, scale 1
//   standard  offset = mean, scale = 1 / std (population std, as
//             scikit-learn's StandardScaler); constant columns get scale 1
//   minmax    offset = min, scale = 1 / (max - min), mapping to [0, 1];
//             constant columns get scale 1
#ifndef DV_PREP_H
#define DV_PREP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dv_err.h"
#include "dv_tensor.h"

#define DV_SCALE_MAP(XX)                                                       \
    XX(NONE, "none")                                                           \
    XX(STANDARD, "standard")                                                   \
    XX(MINMAX, "minmax")

typedef enum {
#define XX(name, text) DV_SCALE_##name,
    DV_SCALE_MAP(XX)
#undef XX
} dv_scale_t;

// "standard" etc. Never NULL.
const char *dv_scale_name(dv_scale_t kind);
// Parse a name into *out. Returns 0 or DV_EINVAL.
int dv_scale_parse(const char *text, dv_scale_t *out);

typedef struct {
    dv_scale_t kind; // how offset/scale were fitted
    size_t n;        // number of features
    float *offset;   // n values subtracted, owned
    float *scale;    // n multipliers, owned
} dv_scaler_t;

// Fit a scaler of kind on the columns of x. Never NULL; caller owns it.
dv_scaler_t *dv_scaler_fit(dv_scale_t kind, const dv_tensor_t *x);

// A scaler with the given arrays copied in (used by the model file reader).
// Never NULL; caller owns it.
dv_scaler_t *dv_scaler_new(dv_scale_t kind,
                           size_t n,
                           const float *offset,
                           const float *scale);

void dv_scaler_destroy(dv_scaler_t **self_p);

// Apply to x in place (x->cols must equal self->n; checked by dv_assert as
// callers validate shapes first).
void dv_scaler_apply(const dv_scaler_t *self, dv_tensor_t *x);

// Class labels, in class-index order: numeric labels sort numerically and are
// stored in canonical text ("%.15g", so "1" and "1.0" are one class), text
// labels sort bytewise.
typedef struct {
    size_t n;      // number of classes
    char **labels; // n label strings, owned
    bool numeric;  // labels were numbers
} dv_labels_t;

// Fit the label set from n target cells (text, and numeric values when
// numeric). Returns 0 and *out, DV_EMSGSIZE beyond DV_MAX_CLASSES, or
// DV_EFORMAT for fewer than 2 classes.
int dv_labels_fit(dv_labels_t **out,
                  char *const *text,
                  const double *values,
                  bool numeric,
                  size_t n,
                  dv_error_t *err);

// A label set with labels copied in (model file reader). Never NULL.
dv_labels_t *dv_labels_new(char *const *labels, size_t n, bool numeric);

void dv_labels_destroy(dv_labels_t **self_p);

// Encode n target cells into class indices (out, caller-owned n entries).
// Returns 0, or DV_EFORMAT naming the first row whose label the set lacks.
int dv_labels_encode(const dv_labels_t *self,
                     char *const *text,
                     const double *values,
                     size_t n,
                     uint32_t *out,
                     dv_error_t *err);

#endif
