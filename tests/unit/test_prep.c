// test_prep — scalers (standard, min-max, none) on matrices whose statistics
// are known by hand, and class label fitting and encoding.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_limits.h"
#include "dv_prep.h"
#include "dv_tensor.h"
#include "dv_test.h"

// 4 x 3. Column 0: 1 2 3 4 (mean 2.5, population variance 1.25, range 3).
// Column 1: -2 0 2 8 (mean 2, deviations -4 -2 0 6, variance 56 / 4 = 14,
// range 10). Column 2: constant 7.
static dv_tensor_t *
known_matrix(void)
{
    static const float v[4][3] = {
        {1, -2, 7},
        {2, 0, 7},
        {3, 2, 7},
        {4, 8, 7},
    };
    dv_tensor_t *x = dv_tensor_new(4, 3);
    memcpy(x->data, v, sizeof v);
    return x;
}

static void
test_standard_known(void)
{
    dv_tensor_t *x = known_matrix();
    dv_scaler_t *s = dv_scaler_fit(DV_SCALE_STANDARD, x);
    dv_tensor_destroy(&x);
    DV_CHECK_EQ(s->kind, DV_SCALE_STANDARD);
    DV_CHECK_EQ(s->n, 3);
    DV_CHECK_NEAR(s->offset[0], 2.5, 1e-6);
    DV_CHECK_NEAR(s->scale[0], 1 / sqrt(1.25), 1e-6);
    DV_CHECK_NEAR(s->offset[1], 2.0, 1e-6);
    DV_CHECK_NEAR(s->scale[1], 1 / sqrt(14.0), 1e-6);
    // Constant column: centred on its value, not divided by ~0.
    DV_CHECK_NEAR(s->offset[2], 7.0, 0);
    DV_CHECK_NEAR(s->scale[2], 1.0, 0);
    dv_scaler_destroy(&s);
    DV_CHECK(s == NULL);
}

// Applied to its own training data, a standard scaler gives columns of mean
// 0 and population std 1 (0 for the constant column).
static void
test_standard_apply(void)
{
    dv_tensor_t *x = known_matrix();
    dv_scaler_t *s = dv_scaler_fit(DV_SCALE_STANDARD, x);
    float *before = x->data;
    dv_scaler_apply(s, x);
    double mean[3] = {0}, var[3] = {0};
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < 3; j++) {
            mean[j] += x->data[i * 3 + j] / 4.0;
        }
    }
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < 3; j++) {
            double d = x->data[i * 3 + j] - mean[j];
            var[j] += d * d / 4.0;
        }
    }
    bool in_place = x->data == before && x->rows == 4 && x->cols == 3;
    float first = x->data[0];
    dv_scaler_destroy(&s);
    dv_tensor_destroy(&x);
    DV_CHECK(in_place);
    DV_CHECK_NEAR(first, (1 - 2.5) / sqrt(1.25), 1e-6);
    for (size_t j = 0; j < 3; j++) {
        DV_CHECK_NEAR(mean[j], 0, 1e-6);
    }
    DV_CHECK_NEAR(var[0], 1, 1e-6);
    DV_CHECK_NEAR(var[1], 1, 1e-6);
    DV_CHECK_NEAR(var[2], 0, 0);
}

static void
test_minmax_known(void)
{
    dv_tensor_t *x = known_matrix();
    dv_scaler_t *s = dv_scaler_fit(DV_SCALE_MINMAX, x);
    bool fitted = s->kind == DV_SCALE_MINMAX && s->offset[0] == 1.0f &&
                  fabsf(s->scale[0] - 1 / 3.0f) < 1e-7f &&
                  s->offset[1] == -2.0f && fabsf(s->scale[1] - 0.1f) < 1e-7f &&
                  s->offset[2] == 7.0f && s->scale[2] == 1.0f;
    dv_scaler_apply(s, x);
    // Rows 0 and 3 hold each column's min and max.
    float lo0 = x->data[0], lo1 = x->data[1], hi0 = x->data[9];
    float hi1 = x->data[10], mid1 = x->data[4], konst = x->data[5];
    dv_scaler_destroy(&s);
    dv_tensor_destroy(&x);
    DV_CHECK(fitted);
    DV_CHECK_NEAR(lo0, 0, 0);
    DV_CHECK_NEAR(lo1, 0, 0);
    DV_CHECK_NEAR(hi0, 1, 0);
    DV_CHECK_NEAR(hi1, 1, 0);
    DV_CHECK_NEAR(mid1, 0.2, 1e-6);
    DV_CHECK_NEAR(konst, 0, 0); // constant column: x - min = 0
}

// dv_prep.h promises min-max "mapping to [0, 1]": each column's training
// minimum lands on 0 and its maximum on 1 or the float just below it (a
// float multiplier cannot always hit 1 exactly), never above 1. In the first
// three columns (max - min) * (float)(1 / (max - min)) rounds up to
// 1.00000012; in the last it rounds down to 0.99999994, which is fine.
static void
test_minmax_max_not_above_one(void)
{
    static const float cols[][2] = {
        {124.896553f, 268.21051f},
        {43.5306129f, 140.074982f},
        {66.1041641f, 274.380615f},
        {0.0f, 41.0f},
    };
    size_t n = sizeof cols / sizeof cols[0];
    dv_tensor_t *x = dv_tensor_new(2, n);
    for (size_t j = 0; j < n; j++) {
        x->data[j] = cols[j][0];
        x->data[n + j] = cols[j][1];
    }
    dv_scaler_t *s = dv_scaler_fit(DV_SCALE_MINMAX, x);
    dv_scaler_apply(s, x);
    int bad = 0;
    for (size_t j = 0; j < n; j++) {
        float lo = x->data[j], hi = x->data[n + j];
        if (lo != 0.0f || hi > 1.0f || hi < 1.0f - 0x1.0p-24f) {
            fprintf(stderr, "  column [%.9g, %.9g] maps to [%.9g, %.9g]\n",
                    (double)cols[j][0], (double)cols[j][1], (double)lo,
                    (double)hi);
            bad++;
        }
    }
    dv_scaler_destroy(&s);
    dv_tensor_destroy(&x);
    DV_CHECK_EQ(bad, 0);
}

static void
test_none_is_identity(void)
{
    dv_tensor_t *x = known_matrix();
    dv_tensor_t *orig = dv_tensor_dup(x);
    dv_scaler_t *s = dv_scaler_fit(DV_SCALE_NONE, x);
    bool fitted = s->kind == DV_SCALE_NONE && s->n == 3;
    for (size_t j = 0; j < 3; j++) {
        fitted = fitted && s->offset[j] == 0.0f && s->scale[j] == 1.0f;
    }
    dv_scaler_apply(s, x);
    bool same = memcmp(x->data, orig->data, 12 * sizeof(float)) == 0;
    dv_scaler_destroy(&s);
    dv_tensor_destroy(&x);
    dv_tensor_destroy(&orig);
    DV_CHECK(fitted);
    DV_CHECK(same);
}

static void
test_scaler_new_copies(void)
{
    float off[] = {1, 2}, sc[] = {0.5f, 4};
    dv_scaler_t *s = dv_scaler_new(DV_SCALE_STANDARD, 2, off, sc);
    off[0] = 100;
    sc[1] = 100;
    dv_tensor_t *x = dv_tensor_new(1, 2);
    x->data[0] = 3; // (3 - 1) * 0.5 = 1
    x->data[1] = 3; // (3 - 2) * 4 = 4
    dv_scaler_apply(s, x);
    bool copied = s->offset[0] == 1.0f && s->scale[1] == 4.0f &&
                  s->offset != off && s->scale != sc;
    float a = x->data[0], b = x->data[1];
    dv_scaler_destroy(&s);
    dv_scaler_destroy(&s); // idempotent
    dv_scaler_destroy(NULL);
    dv_tensor_destroy(&x);
    DV_CHECK(copied);
    DV_CHECK_NEAR(a, 1, 0);
    DV_CHECK_NEAR(b, 4, 0);
    // NULL arrays mean offset 0, scale 1.
    s = dv_scaler_new(DV_SCALE_NONE, 3, NULL, NULL);
    bool neutral = s->offset[2] == 0.0f && s->scale[2] == 1.0f;
    dv_scaler_destroy(&s);
    DV_CHECK(neutral);
}

static void
test_scale_names(void)
{
    static const struct {
        dv_scale_t kind;
        const char *text;
    } all[] = {
#define XX(name, text) {DV_SCALE_##name, text},
        DV_SCALE_MAP(XX)
#undef XX
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        dv_scale_t k = (dv_scale_t)99;
        DV_CHECK_STR_EQ(dv_scale_name(all[i].kind), all[i].text);
        DV_CHECK_RC(dv_scale_parse(all[i].text, &k), 0, NULL);
        DV_CHECK_EQ(k, all[i].kind);
    }
    DV_CHECK_STR_EQ(dv_scale_name(DV_SCALE_STANDARD), "standard");
    DV_CHECK_STR_EQ(dv_scale_name(DV_SCALE_MINMAX), "minmax");
    DV_CHECK_STR_EQ(dv_scale_name(DV_SCALE_NONE), "none");
    DV_CHECK_STR_EQ(dv_scale_name((dv_scale_t)99), "unknown");
}

static void
test_scale_parse_bad(void)
{
    static const char *bad[] = {"zscore", "", "Standard", "minmax ", "min"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dv_scale_t k = DV_SCALE_MINMAX;
        DV_CHECK_RC(dv_scale_parse(bad[i], &k), DV_EINVAL, NULL);
        DV_CHECK_EQ(k, DV_SCALE_MINMAX); // untouched on failure
    }
}

static void
test_numeric_labels(void)
{
    // 1 and 1.0 are one class; classes in numeric order.
    char *text[] = {"2", "1.0", "1", "3"};
    double values[] = {2, 1.0, 1, 3};
    dv_labels_t *l = NULL;
    dv_error_t err = {0};
    DV_CHECK_RC(dv_labels_fit(&l, text, values, true, 4, &err), 0, &err);
    bool ok = l->n == 3 && l->numeric && strcmp(l->labels[0], "1") == 0 &&
              strcmp(l->labels[1], "2") == 0 && strcmp(l->labels[2], "3") == 0;
    uint32_t cls[4] = {99, 99, 99, 99};
    int rc = dv_labels_encode(l, text, values, 4, cls, &err);
    dv_labels_destroy(&l);
    DV_CHECK(ok);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(cls[0], 1);
    DV_CHECK_EQ(cls[1], 0);
    DV_CHECK_EQ(cls[2], 0);
    DV_CHECK_EQ(cls[3], 2);
}

static void
test_numeric_labels_sort_by_value(void)
{
    // Bytewise "10" < "2" < "9"; numerically 2 < 9 < 10.
    char *text[] = {"9", "10", "2"};
    double values[] = {9, 10, 2};
    dv_labels_t *l = NULL;
    dv_error_t err = {0};
    DV_CHECK_RC(dv_labels_fit(&l, text, values, true, 3, &err), 0, &err);
    bool order = l->n == 3 && strcmp(l->labels[0], "2") == 0 &&
                 strcmp(l->labels[1], "9") == 0 &&
                 strcmp(l->labels[2], "10") == 0;
    uint32_t cls[3];
    int rc = dv_labels_encode(l, text, values, 3, cls, &err);
    dv_labels_destroy(&l);
    DV_CHECK(order);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(cls[0], 1);
    DV_CHECK_EQ(cls[1], 2);
    DV_CHECK_EQ(cls[2], 0);
}

static void
test_text_labels_bytewise(void)
{
    // Bytewise: uppercase before lowercase, "fig" before "figs".
    char *words[] = {"pear", "apple", "figs", "Pear", "fig", "pear"};
    dv_labels_t *l = NULL;
    dv_error_t err = {0};
    DV_CHECK_RC(dv_labels_fit(&l, words, NULL, false, 6, &err), 0, &err);
    static const char *want[] = {"Pear", "apple", "fig", "figs", "pear"};
    bool order = l->n == 5 && !l->numeric;
    for (size_t c = 0; order && c < 5; c++) {
        order = strcmp(l->labels[c], want[c]) == 0;
    }
    uint32_t cls[6];
    int rc = dv_labels_encode(l, words, NULL, 6, cls, &err);
    bool back = rc == 0;
    for (size_t i = 0; back && i < 6; i++) {
        back = strcmp(l->labels[cls[i]], words[i]) == 0;
    }
    dv_labels_destroy(&l);
    DV_CHECK(order);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK(back);
    DV_CHECK_EQ(cls[0], 4);
    DV_CHECK_EQ(cls[3], 0);
}

static void
test_encode_unknown_label(void)
{
    char *words[] = {"b", "a", "c", "a"};
    dv_labels_t *l = NULL;
    dv_error_t err = {0};
    DV_CHECK_RC(dv_labels_fit(&l, words, NULL, false, 4, &err), 0, &err);
    char *rows[] = {"a", "zebra", "b"};
    uint32_t cls[3];
    int rc_text = dv_labels_encode(l, rows, NULL, 3, cls, &err);
    dv_error_t err_text = err;
    dv_labels_destroy(&l);
    DV_CHECK_RC(rc_text, DV_EFORMAT, &err_text);
    DV_CHECK(strstr(err_text.text, "row 2") != NULL);
    DV_CHECK(strstr(err_text.text, "zebra") != NULL);
    // Numeric set: 4 is not a class; rows are numbered from 1.
    char *text[] = {"1", "2", "3"};
    double values[] = {1, 2, 3};
    DV_CHECK_RC(dv_labels_fit(&l, text, values, true, 3, &err), 0, &err);
    char *q_text[] = {"3", "1", "4"};
    double q_values[] = {3, 1, 4};
    int rc_num = dv_labels_encode(l, q_text, q_values, 3, cls, &err);
    dv_labels_destroy(&l);
    DV_CHECK_RC(rc_num, DV_EFORMAT, &err);
    DV_CHECK(strstr(err.text, "row 3") != NULL);
    DV_CHECK(strstr(err.text, "'4'") != NULL);
}

static void
test_one_class(void)
{
    dv_labels_t *l = NULL;
    dv_error_t err = {0};
    char *one[] = {"a", "a", "a"};
    DV_CHECK_RC(dv_labels_fit(&l, one, NULL, false, 3, &err), DV_EFORMAT, &err);
    DV_CHECK(l == NULL);
    char *text[] = {"1", "1.0"};
    double values[] = {1, 1};
    DV_CHECK_RC(dv_labels_fit(&l, text, values, true, 2, &err), DV_EFORMAT,
                &err);
    DV_CHECK(l == NULL);
    DV_CHECK_RC(dv_labels_fit(&l, NULL, NULL, false, 0, &err), DV_EFORMAT,
                &err);
    DV_CHECK(l == NULL);
}

static void
test_too_many_classes(void)
{
    size_t n = DV_MAX_CLASSES + 1;
    double *values = malloc(n * sizeof *values);
    for (size_t i = 0; i < n; i++) {
        values[i] = (double)i;
    }
    dv_labels_t *l = NULL;
    dv_error_t err = {0};
    int rc = dv_labels_fit(&l, NULL, values, true, n, &err);
    int rc_limit = dv_labels_fit(&l, NULL, values, true, n - 1, &err);
    size_t k = l ? l->n : 0;
    dv_labels_destroy(&l);
    free(values);
    DV_CHECK_EQ(rc, DV_EMSGSIZE);
    DV_CHECK_RC(rc_limit, 0, &err);
    DV_CHECK_EQ(k, DV_MAX_CLASSES);
}

static void
test_labels_new_copies(void)
{
    char a[] = "cat", b[] = "dog";
    char *src[] = {a, b};
    dv_labels_t *l = dv_labels_new(src, 2, false);
    a[0] = 'b';
    src[1] = NULL;
    bool copied = l->n == 2 && !l->numeric && l->labels[0] != a &&
                  strcmp(l->labels[0], "cat") == 0 &&
                  strcmp(l->labels[1], "dog") == 0;
    char *q[] = {"dog", "cat"};
    uint32_t cls[2];
    dv_error_t err = {0};
    int rc = dv_labels_encode(l, q, NULL, 2, cls, &err);
    dv_labels_destroy(&l);
    dv_labels_destroy(&l); // idempotent
    DV_CHECK(l == NULL);
    DV_CHECK(copied);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(cls[0], 1);
    DV_CHECK_EQ(cls[1], 0);
}

static const dv_test_case_t cases[] = {
    {"standard scaler on a known matrix", test_standard_known},
    {"standard scaler applied in place", test_standard_apply},
    {"minmax maps min to 0 and max to 1", test_minmax_known},
    {"minmax never maps the max above 1", test_minmax_max_not_above_one},
    {"none is the identity", test_none_is_identity},
    {"dv_scaler_new copies its arrays", test_scaler_new_copies},
    {"scale names round trip", test_scale_names},
    {"scale parse refuses bad names", test_scale_parse_bad},
    {"numeric labels: 1 and 1.0 are one class", test_numeric_labels},
    {"numeric labels sort by value", test_numeric_labels_sort_by_value},
    {"text labels sort bytewise", test_text_labels_bytewise},
    {"unknown label is DV_EFORMAT with the row", test_encode_unknown_label},
    {"one class is DV_EFORMAT", test_one_class},
    {"too many classes is DV_EMSGSIZE", test_too_many_classes},
    {"dv_labels_new copies", test_labels_new_copies},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
