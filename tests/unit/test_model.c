// test_model — the model record: every invariant dv_model_validate enforces
// (one case per rejection, each asserting the exact code), and inference on
// hand-built models whose outputs are computed by hand.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_limits.h"
#include "dv_model.h"
#include "dv_prep.h"
#include "dv_tensor.h"
#include "dv_test.h"

// A model built field by field, as the trainer and file reader do: features
// named age, income, ... (x<j> beyond six), target "price", no scaling, the
// given layers with zero weights, and the given text classes (n_classes 0:
// none). Caller owns it (dv_model_destroy frees every field with free()).
static dv_model_t *
build(dv_task_t task,
      size_t n_layers,
      const size_t *widths,
      const dv_act_t *acts,
      char *const *classes,
      size_t n_classes)
{
    static const char *names[] = {"age",    "income", "height",
                                  "weight", "score",  "rank"};
    dv_model_t *m = dv_model_new();
    m->task = task;
    m->n_features = widths[0];
    m->feature_names = malloc(widths[0] * sizeof(char *));
    for (size_t j = 0; j < widths[0]; j++) {
        char name[32];
        snprintf(name, sizeof name, "x%zu", j);
        m->feature_names[j] = strdup(j < 6 ? names[j] : name);
    }
    m->target_name = strdup("price");
    m->scaler = dv_scaler_new(DV_SCALE_NONE, widths[0], NULL, NULL);
    if (n_classes > 0) {
        m->labels = dv_labels_new(classes, n_classes, false);
    }
    dv_model_set_layers(m, n_layers, widths, acts);
    return m;
}

static char *s_abc[] = {"ant", "bee", "cat"};
static char *s_no_yes[] = {"no", "yes"};

// 2 features -> 1 identity unit.
static dv_model_t *
linear(void)
{
    size_t w[] = {2, 1};
    dv_act_t a[] = {DV_ACT_IDENTITY};
    return build(DV_TASK_REGRESSION, 1, w, a, NULL, 0);
}

// 3 features -> 4 relu -> 3 softmax, classes ant/bee/cat.
static dv_model_t *
mlp3(void)
{
    size_t w[] = {3, 4, 3};
    dv_act_t a[] = {DV_ACT_RELU, DV_ACT_SOFTMAX};
    return build(DV_TASK_CLASSIFICATION, 2, w, a, s_abc, 3);
}

// Validate m, destroy it, then check the code and (when needle is not NULL)
// that the reason mentions needle. Destroying first keeps failures leak-free.
static void
check_invalid(dv_model_t *m, int want, const char *needle)
{
    dv_error_t err = {0};
    int rc = dv_model_validate(m, &err);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc, want, &err);
    if (needle) {
        if (!strstr(err.text, needle)) {
            DV_FAIL_("reason \"%s\" does not mention \"%s\"", err.text, needle);
        }
    }
}

// Predict x (rows x cols, row-major values) on m. Returns the rc; *out is
// set on success.
static int
predict(const dv_model_t *m,
        size_t rows,
        size_t cols,
        const float *values,
        dv_tensor_t **out,
        dv_error_t *err)
{
    dv_tensor_t *x = dv_tensor_new(rows, cols);
    memcpy(x->data, values, rows * cols * sizeof(float));
    int rc = dv_model_predict(m, x, out, err);
    dv_tensor_destroy(&x);
    return rc;
}

static double
sigmoid(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

// ---- validation ------------------------------------------------------------

static void
test_validate_regression_ok(void)
{
    dv_model_t *m = linear();
    m->layers[0].w[0] = 2;
    m->layers[0].b[0] = -1;
    dv_error_t err = {0};
    int rc = dv_model_validate(m, &err);
    dv_model_destroy(&m);
    DV_CHECK(m == NULL);
    DV_CHECK_RC(rc, 0, &err);
}

static void
test_validate_softmax_mlp_ok(void)
{
    dv_model_t *m = mlp3();
    dv_error_t err = {0};
    int rc = dv_model_validate(m, &err);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc, 0, &err);
    // Binary logistic regression: 1 sigmoid unit for 2 classes.
    size_t w[] = {2, 1};
    dv_act_t a[] = {DV_ACT_SIGMOID};
    m = build(DV_TASK_CLASSIFICATION, 1, w, a, s_no_yes, 2);
    rc = dv_model_validate(m, &err);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc, 0, &err);
}

static void
test_validate_unchained(void)
{
    // Layer 1 claims 5 inputs; layer 0 gives 4.
    dv_model_t *m = mlp3();
    m->layers[1].n_in = 5;
    check_invalid(m, DV_ESHAPE, "layer 1");
    if (dv_test_failed) {
        return;
    }
    // Layers built for 2 inputs on a 3-feature model.
    m = mlp3();
    size_t w[] = {2, 4, 3};
    dv_act_t a[] = {DV_ACT_RELU, DV_ACT_SOFTMAX};
    dv_model_set_layers(m, 2, w, a);
    check_invalid(m, DV_ESHAPE, "layer 0");
}

static void
test_validate_nan_weight(void)
{
    dv_model_t *m = mlp3();
    m->layers[0].w[3] = NAN;
    check_invalid(m, DV_ENAN, "layer 0");
    if (dv_test_failed) {
        return;
    }
    m = mlp3();
    m->layers[1].b[2] = INFINITY;
    check_invalid(m, DV_ENAN, "layer 1");
    if (dv_test_failed) {
        return;
    }
    m = linear();
    m->scaler->scale[1] = NAN;
    check_invalid(m, DV_ENAN, "scaler");
}

static void
test_validate_regression_softmax(void)
{
    dv_model_t *m = linear();
    m->layers[0].act = DV_ACT_SOFTMAX;
    check_invalid(m, DV_EFORMAT, "softmax");
}

static void
test_validate_outputs_not_classes(void)
{
    size_t w[] = {3, 4, 2};
    dv_act_t a[] = {DV_ACT_RELU, DV_ACT_SOFTMAX};
    check_invalid(build(DV_TASK_CLASSIFICATION, 2, w, a, s_abc, 3), DV_ESHAPE,
                  "3 classes");
}

static void
test_validate_sigmoid_three_classes(void)
{
    size_t w[] = {3, 1};
    dv_act_t a[] = {DV_ACT_SIGMOID};
    check_invalid(build(DV_TASK_CLASSIFICATION, 1, w, a, s_abc, 3), DV_ESHAPE,
                  "sigmoid");
}

static void
test_validate_hidden_softmax(void)
{
    size_t w[] = {3, 4, 3};
    dv_act_t a[] = {DV_ACT_SOFTMAX, DV_ACT_SOFTMAX};
    check_invalid(build(DV_TASK_CLASSIFICATION, 2, w, a, s_abc, 3), DV_EFORMAT,
                  "hidden layer 0");
}

static void
test_validate_zero_layers(void)
{
    size_t w[] = {2};
    check_invalid(build(DV_TASK_REGRESSION, 0, w, NULL, NULL, 0), DV_EMSGSIZE,
                  "0 layers");
}

static void
test_validate_too_many_layers(void)
{
    size_t w[DV_MAX_LAYERS + 2];
    dv_act_t a[DV_MAX_LAYERS + 1];
    for (size_t l = 0; l < DV_MAX_LAYERS + 1; l++) {
        w[l] = 2;
        a[l] = DV_ACT_RELU;
    }
    w[DV_MAX_LAYERS + 1] = 1;
    a[DV_MAX_LAYERS] = DV_ACT_IDENTITY;
    check_invalid(build(DV_TASK_REGRESSION, DV_MAX_LAYERS + 1, w, a, NULL, 0),
                  DV_EMSGSIZE, "layers (limit");
}

static void
test_validate_scaler_width(void)
{
    dv_model_t *m = linear();
    dv_scaler_destroy(&m->scaler);
    m->scaler = dv_scaler_new(DV_SCALE_NONE, 3, NULL, NULL);
    check_invalid(m, DV_ESHAPE, "scaler");
}

static void
test_validate_task_and_labels(void)
{
    // Regression with classes.
    dv_model_t *m = linear();
    m->labels = dv_labels_new(s_no_yes, 2, false);
    check_invalid(m, DV_EFORMAT, "has classes");
    if (dv_test_failed) {
        return;
    }
    // Classification without classes.
    size_t w[] = {2, 1};
    dv_act_t a[] = {DV_ACT_SIGMOID};
    check_invalid(build(DV_TASK_CLASSIFICATION, 1, w, a, NULL, 0), DV_EFORMAT,
                  "has 0");
    if (dv_test_failed) {
        return;
    }
    // Output mapping that divides by zero on the way back.
    m = linear();
    m->y_scale = 0;
    check_invalid(m, DV_ENAN, "output mapping");
    if (dv_test_failed) {
        return;
    }
    // The same class twice (only a crafted file could hold it).
    size_t w3[] = {2, 3};
    dv_act_t a3[] = {DV_ACT_SOFTMAX};
    m = build(DV_TASK_CLASSIFICATION, 1, w3, a3, NULL, 0);
    char *twice[] = {"cat", "dog", "cat"};
    m->labels = dv_labels_new(twice, 3, false);
    check_invalid(m, DV_EFORMAT, "'cat' appears twice");
}

// ---- inference -------------------------------------------------------------

static void
test_predict_linear_by_hand(void)
{
    // x' = (x - (1, 2)) * (0.5, 4); y = (2 x0' - x1' + 0.5) * 10 + 100.
    dv_model_t *m = linear();
    float off[] = {1, 2}, sc[] = {0.5f, 4};
    dv_scaler_destroy(&m->scaler);
    m->scaler = dv_scaler_new(DV_SCALE_STANDARD, 2, off, sc);
    m->layers[0].w[0] = 2;
    m->layers[0].w[1] = -1;
    m->layers[0].b[0] = 0.5f;
    m->y_scale = 10;
    m->y_offset = 100;
    const float x[] = {
        3, 2, // x' = (1, 0)   -> (2 + 0.5) * 10 + 100 = 125
        1, 3, // x' = (0, 4)   -> (-4 + 0.5) * 10 + 100 = 65
        5, 1, // x' = (2, -4)  -> (4 + 4 + 0.5) * 10 + 100 = 185
    };
    dv_error_t err = {0};
    dv_tensor_t *y = NULL;
    int rc_valid = dv_model_validate(m, &err);
    int rc = predict(m, 3, 2, x, &y, &err);
    size_t outputs = dv_model_n_outputs(m), params = dv_model_n_params(m);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc_valid, 0, &err);
    DV_CHECK_RC(rc, 0, &err);
    float got[3];
    size_t rows = y->rows, cols = y->cols;
    memcpy(got, y->data, sizeof got);
    dv_tensor_destroy(&y);
    DV_CHECK_EQ(rows, 3);
    DV_CHECK_EQ(cols, 1);
    DV_CHECK_NEAR(got[0], 125, 1e-4);
    DV_CHECK_NEAR(got[1], 65, 1e-4);
    DV_CHECK_NEAR(got[2], 185, 1e-4);
    DV_CHECK_EQ(outputs, 1);
    DV_CHECK_EQ(params, 3);
}

static void
test_predict_wrong_width(void)
{
    dv_model_t *m = linear();
    const float x[] = {1, 2, 3};
    dv_tensor_t *y = NULL;
    dv_error_t err = {0};
    int rc = predict(m, 1, 3, x, &y, &err);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc, DV_ESHAPE, &err);
    DV_CHECK(y == NULL);
    DV_CHECK(strstr(err.text, "3 features") != NULL);
    DV_CHECK(strstr(err.text, "expects 2") != NULL);
}

static void
test_predict_nan_input(void)
{
    dv_model_t *m = linear();
    float x[] = {1, 2, 3, 4, 5, NAN}; // row 3, feature 2 (income)
    dv_tensor_t *y = NULL;
    dv_error_t err = {0}, err_inf = {0};
    int rc = predict(m, 3, 2, x, &y, &err);
    x[5] = 0;
    x[2] = -INFINITY; // row 2, feature 1 (age)
    int rc_inf = predict(m, 3, 2, x, &y, &err_inf);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc, DV_ENAN, &err);
    DV_CHECK(y == NULL);
    DV_CHECK(strstr(err.text, "row 3") != NULL);
    DV_CHECK(strstr(err.text, "income") != NULL);
    DV_CHECK_RC(rc_inf, DV_ENAN, &err_inf);
    DV_CHECK(strstr(err_inf.text, "row 2") != NULL);
    DV_CHECK(strstr(err_inf.text, "age") != NULL);
}

static void
test_predict_sigmoid_binary(void)
{
    // p = sigmoid(x0 - x1 + 0.5)
    size_t w[] = {2, 1};
    dv_act_t a[] = {DV_ACT_SIGMOID};
    dv_model_t *m = build(DV_TASK_CLASSIFICATION, 1, w, a, s_no_yes, 2);
    m->layers[0].w[0] = 1;
    m->layers[0].w[1] = -1;
    m->layers[0].b[0] = 0.5f;
    const float x[] = {1, 0.5f, -3, 2, 0, 0, 1000, 0, -1000, 0};
    dv_tensor_t *p = NULL;
    dv_error_t err = {0};
    int rc = predict(m, 5, 2, x, &p, &err);
    size_t outputs = dv_model_n_outputs(m), params = dv_model_n_params(m);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc, 0, &err);
    float got[10];
    size_t cols = p->cols;
    memcpy(got, p->data, sizeof got);
    dv_tensor_destroy(&p);
    DV_CHECK_EQ(cols, 2);
    DV_CHECK_EQ(outputs, 2);
    DV_CHECK_EQ(params, 3);
    for (size_t r = 0; r < 5; r++) {
        double want = sigmoid((double)x[2 * r] - x[2 * r + 1] + 0.5);
        DV_CHECK(isfinite(got[2 * r]) && isfinite(got[2 * r + 1]));
        DV_CHECK_NEAR(got[2 * r + 1], want, 1e-6);
        DV_CHECK_NEAR(got[2 * r], 1 - want, 1e-6);
        DV_CHECK_NEAR(got[2 * r] + got[2 * r + 1], 1, 1e-6);
    }
}

// Softmax over the row of double logits z (k of them) into p.
static void
softmax_ref(const double *z, size_t k, double *p)
{
    double max = z[0], sum = 0;
    for (size_t c = 1; c < k; c++) {
        max = z[c] > max ? z[c] : max;
    }
    for (size_t c = 0; c < k; c++) {
        p[c] = exp(z[c] - max);
        sum += p[c];
    }
    for (size_t c = 0; c < k; c++) {
        p[c] /= sum;
    }
}

static void
test_predict_softmax_by_hand(void)
{
    // One softmax layer, 2 features -> 3 classes. W is n_in x n_out.
    size_t w[] = {2, 3};
    dv_act_t a[] = {DV_ACT_SOFTMAX};
    dv_model_t *m = build(DV_TASK_CLASSIFICATION, 1, w, a, s_abc, 3);
    const float wt[] = {1, 0, -1, 0.5f, 2, 0}, b[] = {0, -1, 0.25f};
    memcpy(m->layers[0].w, wt, sizeof wt);
    memcpy(m->layers[0].b, b, sizeof b);
    const float x[] = {1, 2, 0, 0, -2, 1};
    // Logits by hand: (2, 3, -0.75), (0, -1, 0.25), (-1.5, 1, 2.25).
    const double z[3][3] = {{2, 3, -0.75}, {0, -1, 0.25}, {-1.5, 1, 2.25}};
    dv_tensor_t *p = NULL;
    dv_error_t err = {0};
    int rc = predict(m, 3, 2, x, &p, &err);
    size_t params = dv_model_n_params(m);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc, 0, &err);
    float got[9];
    size_t cols = p->cols;
    memcpy(got, p->data, sizeof got);
    dv_tensor_destroy(&p);
    DV_CHECK_EQ(cols, 3);
    DV_CHECK_EQ(params, 9);
    for (size_t r = 0; r < 3; r++) {
        double want[3], sum = 0;
        softmax_ref(z[r], 3, want);
        for (size_t c = 0; c < 3; c++) {
            DV_CHECK_NEAR(got[3 * r + c], want[c], 1e-6);
            sum += got[3 * r + c];
        }
        DV_CHECK_NEAR(sum, 1, 1e-6);
    }
}

static void
test_predict_mlp_by_hand(void)
{
    // h = relu(x W1): x = (1, 2), W1 = [[1, -1], [1, -1]] -> relu(3, -3) =
    // (3, 0); logits = h W2 + b2 with W2 = I, b2 = (0, 0.5) -> (3, 0.5).
    size_t w[] = {2, 2, 2};
    dv_act_t a[] = {DV_ACT_RELU, DV_ACT_SOFTMAX};
    dv_model_t *m = build(DV_TASK_CLASSIFICATION, 2, w, a, s_no_yes, 2);
    const float w1[] = {1, -1, 1, -1}, w2[] = {1, 0, 0, 1}, b2[] = {0, 0.5f};
    memcpy(m->layers[0].w, w1, sizeof w1);
    memcpy(m->layers[1].w, w2, sizeof w2);
    memcpy(m->layers[1].b, b2, sizeof b2);
    const float x[] = {1, 2};
    dv_tensor_t *p = NULL;
    dv_error_t err = {0};
    int rc = predict(m, 1, 2, x, &p, &err);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc, 0, &err);
    float p0 = p->data[0], p1 = p->data[1];
    dv_tensor_destroy(&p);
    double z[] = {3, 0.5}, want[2];
    softmax_ref(z, 2, want);
    DV_CHECK_NEAR(p0, want[0], 1e-6);
    DV_CHECK_NEAR(p1, want[1], 1e-6);
}

static void
test_softmax_huge_logits(void)
{
    // W = I on 3 features: the logits are the inputs.
    size_t w[] = {3, 3};
    dv_act_t a[] = {DV_ACT_SOFTMAX};
    dv_model_t *m = build(DV_TASK_CLASSIFICATION, 1, w, a, s_abc, 3);
    for (size_t j = 0; j < 3; j++) {
        m->layers[0].w[j * 3 + j] = 1;
    }
    const float x[] = {1000, 999, 0, -1000, -999, -1000, 3e4f, -3e4f, 3e4f};
    dv_tensor_t *p = NULL;
    dv_error_t err = {0};
    int rc = predict(m, 3, 3, x, &p, &err);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc, 0, &err);
    float got[9];
    memcpy(got, p->data, sizeof got);
    dv_tensor_destroy(&p);
    for (size_t i = 0; i < 9; i++) {
        DV_CHECK(isfinite(got[i]));
        DV_CHECK(got[i] >= 0 && got[i] <= 1);
    }
    for (size_t r = 0; r < 3; r++) {
        DV_CHECK_NEAR(got[3 * r] + got[3 * r + 1] + got[3 * r + 2], 1, 1e-6);
    }
    double e = exp(-1);
    DV_CHECK_NEAR(got[0], 1 / (1 + e), 1e-6);
    DV_CHECK_NEAR(got[1], e / (1 + e), 1e-6);
    DV_CHECK_NEAR(got[2], 0, 1e-6);
    DV_CHECK_NEAR(got[4], 1 / (1 + 2 * e), 1e-6);
    DV_CHECK_NEAR(got[6], 0.5, 1e-6);
    DV_CHECK_NEAR(got[8], 0.5, 1e-6);
}

// Inference works in blocks of 256 rows: 1000 rows (three full blocks and a
// partial one) must give what each row gives alone.
// Dynamic batching stacks requests into one forward pass: a row's output
// must not depend on the rows beside it or on where a block starts. Not bit
// for bit: OpenBLAS's sgemm runs a row through a different micro-kernel
// (edge kernels for the rows past a multiple of its unroll, gemv-like paths
// for one row) depending on its place in the block, and those accumulate
// in another order. So: equal within float32 rounding of the dot products
// (ulps measured, bounded here), and the same class for every row. Shapes
// from one row to past a block, on MLPs wide enough for the blocked kernels.
static void
test_rows_independent_of_batch(void)
{
    static const struct {
        size_t widths[4];
        size_t n_layers;
    } shapes[] = {
        {{3, 4, 3, 0}, 2},
        {{64, 128, 10, 0}, 2},
        {{256, 512, 256, 10}, 3},
    };
    static const size_t batches[] = {1, 2, 3, 7, 8, 16, 31, 64, 255, 256, 300};
    enum { ROWS = 600 };
    double worst = 0;
    size_t flips = 0, failed = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        size_t n_layers = shapes[s].n_layers;
        size_t n_out = shapes[s].widths[n_layers], cols = shapes[s].widths[0];
        dv_act_t acts[3] = {DV_ACT_RELU, DV_ACT_RELU, DV_ACT_RELU};
        acts[n_layers - 1] = DV_ACT_SOFTMAX;
        char **names = malloc(n_out * sizeof *names);
        for (size_t k = 0; k < n_out; k++) {
            names[k] = malloc(24);
            snprintf(names[k], 24, "c%zu", k);
        }
        dv_model_t *m = build(DV_TASK_CLASSIFICATION, n_layers,
                              shapes[s].widths, acts, names, n_out);
        for (size_t k = 0; k < n_out; k++) {
            free(names[k]);
        }
        free(names);
        for (size_t l = 0; l < n_layers; l++) {
            dv_layer_t *ly = &m->layers[l];
            for (size_t i = 0; i < ly->n_in * ly->n_out; i++) {
                ly->w[i] = 0.1f * sinf((float)(i * 13 + 7 * l));
            }
            for (size_t i = 0; i < ly->n_out; i++) {
                ly->b[i] = 0.01f * (float)i - 0.2f;
            }
        }
        dv_tensor_t *x = dv_tensor_new(ROWS, cols), *all = NULL;
        for (size_t i = 0; i < ROWS * cols; i++) {
            x->data[i] = 3 * cosf((float)i * 0.37f);
        }
        dv_error_t err = {0};
        int rc = dv_model_predict(m, x, &all, &err);
        DV_CHECK_RC(rc, 0, &err);
        for (size_t b = 0; rc == 0 && b < sizeof batches / sizeof *batches;
             b++) {
            // Rows r0.. in batches of batches[b], starting at an odd row.
            for (size_t r0 = 5; r0 + batches[b] <= ROWS;
                 r0 += batches[b] * 7 + 3) {
                dv_tensor_t *part = dv_tensor_new(batches[b], cols), *y = NULL;
                memcpy(part->data, x->data + r0 * cols,
                       batches[b] * cols * sizeof(float));
                if (dv_model_predict(m, part, &y, &err) != 0) {
                    failed++;
                    dv_tensor_destroy(&part);
                    continue;
                }
                for (size_t r = 0; r < batches[b]; r++) {
                    const float *p = y->data + r * n_out;
                    const float *q = all->data + (r0 + r) * n_out;
                    size_t arg_p = 0, arg_q = 0;
                    for (size_t k = 0; k < n_out; k++) {
                        double d = fabs((double)p[k] - q[k]) /
                                   fmax(fabs((double)q[k]), 1e-6);
                        worst = d > worst ? d : worst;
                        arg_p = p[k] > p[arg_p] ? k : arg_p;
                        arg_q = q[k] > q[arg_q] ? k : arg_q;
                    }
                    flips += arg_p != arg_q;
                }
                dv_tensor_destroy(&y);
                dv_tensor_destroy(&part);
            }
        }
        dv_tensor_destroy(&all);
        dv_tensor_destroy(&x);
        dv_model_destroy(&m);
    }
    printf("  worst relative difference %.3g, class flips %zu\n", worst, flips);
    DV_CHECK_EQ(failed, 0);
    DV_CHECK_EQ(flips, 0);
    DV_CHECK(worst <= 1e-5);
}

static void
test_blocks_equal_single_rows(void)
{
    enum { ROWS = 1000 };
    dv_model_t *m = mlp3();
    float off[] = {0.5f, -1, 2}, sc[] = {2, 0.25f, 1.5f};
    dv_scaler_destroy(&m->scaler);
    m->scaler = dv_scaler_new(DV_SCALE_STANDARD, 3, off, sc);
    for (size_t l = 0; l < 2; l++) {
        dv_layer_t *ly = &m->layers[l];
        for (size_t i = 0; i < ly->n_in * ly->n_out; i++) {
            ly->w[i] = sinf((float)(i + 7 * l));
        }
        for (size_t i = 0; i < ly->n_out; i++) {
            ly->b[i] = 0.1f * (float)i - 0.2f;
        }
    }
    dv_tensor_t *x = dv_tensor_new(ROWS, 3), *all = NULL;
    for (size_t i = 0; i < ROWS * 3; i++) {
        x->data[i] = 3 * cosf((float)i);
    }
    dv_error_t err = {0};
    int rc = dv_model_predict(m, x, &all, &err);
    size_t mismatches = 0, failed = 0, rows = rc ? 0 : all->rows;
    double worst = 0;
    dv_tensor_t *one = dv_tensor_new(1, 3);
    for (size_t r = 0; rc == 0 && r < ROWS; r++) {
        memcpy(one->data, x->data + r * 3, 3 * sizeof(float));
        dv_tensor_t *y = NULL;
        if (dv_model_predict(m, one, &y, NULL) != 0) {
            failed++;
            continue;
        }
        for (size_t c = 0; c < 3; c++) {
            double d = fabs((double)y->data[c] - all->data[r * 3 + c]);
            worst = d > worst ? d : worst;
            mismatches += d > 1e-6;
        }
        dv_tensor_destroy(&y);
    }
    dv_tensor_destroy(&one);
    dv_tensor_destroy(&all);
    dv_tensor_destroy(&x);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(rows, ROWS);
    DV_CHECK_EQ(failed, 0);
    if (mismatches) {
        DV_FAIL_("%zu values differ, worst by %g", mismatches, worst);
    }
}

static void
test_predict_zero_rows(void)
{
    dv_model_t *m = mlp3();
    dv_tensor_t *x = dv_tensor_new(0, 3), *y = NULL;
    dv_error_t err = {0};
    int rc = dv_model_predict(m, x, &y, &err);
    size_t rows = y ? y->rows : 99, cols = y ? y->cols : 99;
    dv_tensor_destroy(&y);
    dv_tensor_destroy(&x);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(rows, 0);
    DV_CHECK_EQ(cols, 3);
}

static void
test_outputs_and_params(void)
{
    dv_model_t *m = mlp3();
    size_t out_mlp = dv_model_n_outputs(m), par_mlp = dv_model_n_params(m);
    dv_model_destroy(&m);
    m = linear();
    size_t out_lin = dv_model_n_outputs(m), par_lin = dv_model_n_params(m);
    dv_model_destroy(&m);
    size_t w[] = {5, 1};
    dv_act_t a[] = {DV_ACT_SIGMOID};
    m = build(DV_TASK_CLASSIFICATION, 1, w, a, s_no_yes, 2);
    size_t out_bin = dv_model_n_outputs(m), par_bin = dv_model_n_params(m);
    dv_model_destroy(&m);
    dv_model_destroy(&m); // idempotent
    dv_model_destroy(NULL);
    DV_CHECK_EQ(out_mlp, 3);
    DV_CHECK_EQ(par_mlp, 3 * 4 + 4 + 4 * 3 + 3);
    DV_CHECK_EQ(out_lin, 1);
    DV_CHECK_EQ(par_lin, 2 + 1);
    DV_CHECK_EQ(out_bin, 2); // 1 sigmoid unit, 2 probabilities
    DV_CHECK_EQ(par_bin, 5 + 1);
}

static void
test_algo_names(void)
{
    static const struct {
        dv_algo_t algo;
        const char *text;
    } all[] = {
#define XX(name, text) {DV_ALGO_##name, text},
        DV_ALGO_MAP(XX)
#undef XX
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        dv_algo_t algo = (dv_algo_t)99;
        DV_CHECK_STR_EQ(dv_algo_name(all[i].algo), all[i].text);
        DV_CHECK_RC(dv_algo_parse(all[i].text, &algo), 0, NULL);
        DV_CHECK_EQ(algo, all[i].algo);
    }
    DV_CHECK_STR_EQ(dv_algo_name(DV_ALGO_RIDGE), "ridge");
    DV_CHECK_STR_EQ(dv_algo_name((dv_algo_t)99), "unknown");
    static const char *bad[] = {"svm", "", "MLP", "unknown"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dv_algo_t algo = DV_ALGO_GD;
        DV_CHECK_RC(dv_algo_parse(bad[i], &algo), DV_EINVAL, NULL);
        DV_CHECK_EQ(algo, DV_ALGO_GD);
    }
}

static void
test_act_names(void)
{
    static const struct {
        dv_act_t act;
        const char *text;
    } all[] = {
#define XX(name, text) {DV_ACT_##name, text},
        DV_ACT_MAP(XX)
#undef XX
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        dv_act_t act = (dv_act_t)99;
        DV_CHECK_STR_EQ(dv_act_name(all[i].act), all[i].text);
        DV_CHECK_RC(dv_act_parse(all[i].text, &act), 0, NULL);
        DV_CHECK_EQ(act, all[i].act);
    }
    DV_CHECK_STR_EQ(dv_act_name(DV_ACT_RELU), "relu");
    DV_CHECK_STR_EQ(dv_act_name((dv_act_t)99), "unknown");
    static const char *bad[] = {"tanh", "", "ReLU", "unknown"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dv_act_t act = DV_ACT_SIGMOID;
        DV_CHECK_RC(dv_act_parse(bad[i], &act), DV_EINVAL, NULL);
        DV_CHECK_EQ(act, DV_ACT_SIGMOID);
    }
}

static const dv_test_case_t cases[] = {
    {"validate accepts a regression model", test_validate_regression_ok},
    {"validate accepts softmax MLP and logreg", test_validate_softmax_mlp_ok},
    {"validate: widths that do not chain", test_validate_unchained},
    {"validate: NaN or Inf parameter", test_validate_nan_weight},
    {"validate: regression with softmax", test_validate_regression_softmax},
    {"validate: outputs != classes", test_validate_outputs_not_classes},
    {"validate: sigmoid with 3 classes", test_validate_sigmoid_three_classes},
    {"validate: hidden softmax", test_validate_hidden_softmax},
    {"validate: zero layers", test_validate_zero_layers},
    {"validate: too many layers", test_validate_too_many_layers},
    {"validate: scaler width", test_validate_scaler_width},
    {"validate: task, labels, output mapping", test_validate_task_and_labels},
    {"predict: linear regression by hand", test_predict_linear_by_hand},
    {"predict: wrong width is DV_ESHAPE", test_predict_wrong_width},
    {"predict: NaN input is DV_ENAN", test_predict_nan_input},
    {"predict: sigmoid gives (1-p, p)", test_predict_sigmoid_binary},
    {"predict: softmax by hand", test_predict_softmax_by_hand},
    {"predict: relu MLP by hand", test_predict_mlp_by_hand},
    {"predict: softmax with huge logits", test_softmax_huge_logits},
    {"predict: blocks equal single rows", test_blocks_equal_single_rows},
    {"predict: a row's output does not depend on its batch",
     test_rows_independent_of_batch},
    {"predict: zero rows", test_predict_zero_rows},
    {"n_outputs and n_params", test_outputs_and_params},
    {"algorithm names round trip", test_algo_names},
    {"activation names round trip", test_act_names},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
