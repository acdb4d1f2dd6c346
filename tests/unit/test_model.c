// test_model — the model record: every invariant dv_model_validate enforces,
// and inference on hand-built models whose outputs are computed by hand.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dv_model.h"
#include "dv_test.h"

static dv_model_t *
linear(void)
{
    size_t w[] = {2, 1};
    dv_act_t a[] = {DV_ACT_IDENTITY};
    return dv_test_model(DV_TASK_REGRESSION, 1, w, a, 0);
}

static dv_model_t *
mlp3(void)
{
    size_t w[] = {3, 4, 3};
    dv_act_t a[] = {DV_ACT_RELU, DV_ACT_SOFTMAX};
    return dv_test_model(DV_TASK_CLASSIFICATION, 2, w, a, 3);
}

static void
test_validate(void)
{
    dv_error_t err = {0};
    dv_model_t *ok1 = linear(), *ok2 = mlp3();
    int rc1 = dv_model_validate(ok1, &err), rc2 = dv_model_validate(ok2, &err);
    dv_model_destroy(&ok1);
    dv_model_destroy(&ok2);
    DV_CHECK_RC(rc1, 0, &err);
    DV_CHECK_RC(rc2, 0, &err);

    typedef struct {
        const char *what;
        dv_model_t *m;
        int code;
    } row_t;
    row_t rows[9];
    size_t n = 0;
    dv_model_t *m;
    m = mlp3();
    m->layers[1].n_in = 5; // does not chain with layer 0's 4 outputs
    rows[n++] = (row_t){"unchained", m, DV_ESHAPE};
    m = mlp3();
    m->layers[0].w[3] = NAN;
    rows[n++] = (row_t){"nan weight", m, DV_ENAN};
    m = linear();
    m->layers[0].act = DV_ACT_SOFTMAX;
    rows[n++] = (row_t){"regression softmax", m, DV_EFORMAT};
    {
        size_t w[] = {3, 4, 2};
        dv_act_t a[] = {DV_ACT_RELU, DV_ACT_SOFTMAX};
        m = dv_test_model(DV_TASK_CLASSIFICATION, 2, w, a, 3);
    }
    rows[n++] = (row_t){"2 outputs for 3 classes", m, DV_ESHAPE};
    {
        size_t w[] = {3, 1};
        dv_act_t a[] = {DV_ACT_SIGMOID};
        m = dv_test_model(DV_TASK_CLASSIFICATION, 1, w, a, 3);
    }
    rows[n++] = (row_t){"sigmoid for 3 classes", m, DV_ESHAPE};
    {
        size_t w[] = {3, 4, 3};
        dv_act_t a[] = {DV_ACT_SOFTMAX, DV_ACT_SOFTMAX};
        m = dv_test_model(DV_TASK_CLASSIFICATION, 2, w, a, 3);
    }
    rows[n++] = (row_t){"hidden softmax", m, DV_EFORMAT};
    m = linear();
    m->n_layers = 0;
    rows[n++] = (row_t){"no layers", m, DV_EMSGSIZE};
    m = linear();
    m->scaler->n = 3;
    rows[n++] = (row_t){"scaler width", m, DV_ESHAPE};
    m = linear();
    m->y_scale = 0;
    rows[n++] = (row_t){"zero y_scale", m, DV_ENAN};
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = dv_model_validate(rows[i].m, &err);
        if (rc != rows[i].code) {
            fprintf(stderr, "  %s: got %s (%s)\n", rows[i].what,
                    dv_err_name(rc), err.text);
            failures++;
        }
        if (rows[i].m->n_layers == 0) {
            rows[i].m->n_layers = 1; // so destroy frees the layer
        }
        if (rows[i].m->scaler->n == 3) {
            rows[i].m->scaler->n = 2;
        }
        dv_model_destroy(&rows[i].m);
    }
    DV_CHECK_EQ(failures, 0);
}

static void
test_predict_linear_by_hand(void)
{
    // y = (2 * x0' - x1' + 0.5) * 10 + 100, x' = (x - (1, 2)) * (0.5, 4)
    dv_model_t *m = linear();
    float off[] = {1, 2}, sc[] = {0.5f, 4};
    dv_scaler_destroy(&m->scaler);
    m->scaler = dv_scaler_new(DV_SCALE_STANDARD, 2, off, sc);
    m->layers[0].w[0] = 2;
    m->layers[0].w[1] = -1;
    m->layers[0].b[0] = 0.5f;
    m->y_scale = 10;
    m->y_offset = 100;
    dv_tensor_t *x = dv_tensor_new(2, 2), *y = NULL;
    x->data[0] = 3; // x0' = 1
    x->data[1] = 2; // x1' = 0   -> (2 + 0.5) * 10 + 100 = 125
    x->data[2] = 1; // x0' = 0
    x->data[3] = 3; // x1' = 4   -> (-4 + 0.5) * 10 + 100 = 65
    dv_error_t err = {0};
    int rc = dv_model_predict(m, x, &y, &err);
    float a = rc ? 0 : y->data[0], b = rc ? 0 : y->data[1];
    size_t cols = rc ? 0 : y->cols;
    dv_tensor_destroy(&y);
    dv_tensor_destroy(&x);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(cols, 1);
    DV_CHECK_NEAR(a, 125, 1e-4);
    DV_CHECK_NEAR(b, 65, 1e-4);
}

static void
test_predict_bad_input(void)
{
    dv_model_t *m = linear();
    dv_tensor_t *wide = dv_tensor_new(1, 3), *x = dv_tensor_new(3, 2);
    dv_tensor_t *y = NULL;
    dv_error_t err = {0};
    int rc_shape = dv_model_predict(m, wide, &y, &err);
    bool says_width = strstr(err.text, "3 features") != NULL;
    x->data[5] = NAN; // row 3, feature 2 (f1)
    int rc_nan = dv_model_predict(m, x, &y, &err);
    bool says_where = strstr(err.text, "row 3") && strstr(err.text, "(f1)");
    dv_tensor_destroy(&wide);
    dv_tensor_destroy(&x);
    dv_model_destroy(&m);
    DV_CHECK_EQ(rc_shape, DV_ESHAPE);
    DV_CHECK(says_width);
    DV_CHECK_EQ(rc_nan, DV_ENAN);
    DV_CHECK(says_where);
    DV_CHECK(y == NULL);
}

static void
test_sigmoid_and_softmax_outputs(void)
{
    size_t w[] = {1, 1};
    dv_act_t a[] = {DV_ACT_SIGMOID};
    dv_model_t *bin = dv_test_model(DV_TASK_CLASSIFICATION, 1, w, a, 2);
    bin->layers[0].w[0] = 1;
    dv_model_t *soft = mlp3();
    // Identity-like path: hidden unit j = relu(x_j), logits = hidden[0..2].
    for (size_t j = 0; j < 3; j++) {
        soft->layers[0].w[j * 4 + j] = 1;
        soft->layers[1].w[j * 3 + j] = 1;
    }
    dv_tensor_t *x1 = dv_tensor_new(1, 1), *x3 = dv_tensor_new(2, 3);
    x1->data[0] = logf(3);         // p = 3 / 4
    float row2[] = {1000, 999, 0}; // huge logits must stay finite
    memcpy(x3->data + 3, row2, sizeof row2);
    dv_tensor_t *p1 = NULL, *p3 = NULL;
    dv_error_t err = {0};
    int rc1 = dv_model_predict(bin, x1, &p1, &err);
    int rc3 = dv_model_predict(soft, x3, &p3, &err);
    bool binary = rc1 == 0 && p1->cols == 2 &&
                  fabsf(p1->data[1] - 0.75f) < 1e-6f &&
                  fabsf(p1->data[0] + p1->data[1] - 1) < 1e-6f;
    float e = expf(-1);
    bool softmax = rc3 == 0 && fabsf(p3->data[0] - 1 / 3.0f) < 1e-6f &&
                   fabsf(p3->data[3] - 1 / (1 + e)) < 1e-5f &&
                   fabsf(p3->data[4] - e / (1 + e)) < 1e-5f &&
                   isfinite(p3->data[5]);
    dv_tensor_destroy(&p1);
    dv_tensor_destroy(&p3);
    dv_tensor_destroy(&x1);
    dv_tensor_destroy(&x3);
    dv_model_destroy(&bin);
    dv_model_destroy(&soft);
    DV_CHECK(binary);
    DV_CHECK(softmax);
}

// Inference works in blocks of 256 rows: a 1000-row batch must equal the
// rows predicted one by one.
static void
test_blocks_equal_single_rows(void)
{
    dv_model_t *m = mlp3();
    for (size_t l = 0; l < 2; l++) {
        dv_layer_t *ly = &m->layers[l];
        for (size_t i = 0; i < ly->n_in * ly->n_out; i++) {
            ly->w[i] = sinf((float)(i + 7 * l));
        }
    }
    dv_tensor_t *x = dv_tensor_new(1000, 3), *all = NULL;
    for (size_t i = 0; i < 3000; i++) {
        x->data[i] = cosf((float)i);
    }
    dv_error_t err = {0};
    int rc = dv_model_predict(m, x, &all, &err);
    size_t mismatches = 0;
    dv_tensor_t *one = dv_tensor_new(1, 3);
    for (size_t r = 0; rc == 0 && r < 1000; r += 37) {
        memcpy(one->data, x->data + r * 3, 3 * sizeof(float));
        dv_tensor_t *y = NULL;
        dv_model_predict(m, one, &y, &err);
        for (size_t c = 0; c < 3; c++) {
            mismatches += fabsf(y->data[c] - all->data[r * 3 + c]) > 1e-6f;
        }
        dv_tensor_destroy(&y);
    }
    size_t outputs = dv_model_n_outputs(m), params = dv_model_n_params(m);
    dv_tensor_destroy(&one);
    dv_tensor_destroy(&all);
    dv_tensor_destroy(&x);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(mismatches, 0);
    DV_CHECK_EQ(outputs, 3);
    DV_CHECK_EQ(params, 3 * 4 + 4 + 4 * 3 + 3);
}

static void
test_names(void)
{
    dv_algo_t algo;
    dv_act_t act;
    for (int i = 0; i <= DV_ALGO_MLP; i++) {
        DV_CHECK_EQ(dv_algo_parse(dv_algo_name((dv_algo_t)i), &algo), 0);
        DV_CHECK_EQ(algo, i);
    }
    for (int i = 0; i <= DV_ACT_SOFTMAX; i++) {
        DV_CHECK_EQ(dv_act_parse(dv_act_name((dv_act_t)i), &act), 0);
        DV_CHECK_EQ(act, i);
    }
    DV_CHECK_EQ(dv_algo_parse("svm", &algo), DV_EINVAL);
    DV_CHECK_EQ(dv_act_parse("tanh", &act), DV_EINVAL);
}

static const dv_test_case_t cases[] = {
    {"validate accepts and refuses", test_validate},
    {"linear prediction by hand", test_predict_linear_by_hand},
    {"bad input: width and NaN", test_predict_bad_input},
    {"sigmoid and softmax outputs", test_sigmoid_and_softmax_outputs},
    {"blocks equal single rows", test_blocks_equal_single_rows},
    {"algorithm and activation names", test_names},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
