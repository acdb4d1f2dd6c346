// test_prep — scalers and label encoding.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dv_prep.h"
#include "dv_tensor.h"
#include "dv_test.h"

static void
test_scalers(void)
{
    // Columns: 1,2,3,4 (mean 2.5, population std sqrt(1.25)); constant 5.
    dv_tensor_t *x = dv_tensor_new(4, 2);
    for (size_t i = 0; i < 4; i++) {
        x->data[2 * i] = (float)(i + 1);
        x->data[2 * i + 1] = 5.0f;
    }
    dv_scaler_t *st = dv_scaler_fit(DV_SCALE_STANDARD, x);
    dv_scaler_t *mm = dv_scaler_fit(DV_SCALE_MINMAX, x);
    dv_scaler_t *none = dv_scaler_fit(DV_SCALE_NONE, x);
    bool standard = fabsf(st->offset[0] - 2.5f) < 1e-6f &&
                    fabsf(st->scale[0] - 1.0f / sqrtf(1.25f)) < 1e-6f &&
                    st->offset[1] == 5.0f && st->scale[1] == 1.0f;
    bool minmax = mm->offset[0] == 1.0f &&
                  fabsf(mm->scale[0] - 1 / 3.0f) < 1e-7f &&
                  mm->scale[1] == 1.0f;
    bool identity = none->offset[0] == 0.0f && none->scale[0] == 1.0f;
    dv_tensor_t *y = dv_tensor_dup(x);
    dv_scaler_apply(mm, y);
    bool ends = y->data[0] == 0.0f && y->data[6] == 1.0f && y->data[1] == 0.0f;
    dv_scaler_apply(st, x);
    double mean = 0;
    for (size_t i = 0; i < 4; i++) {
        mean += x->data[2 * i];
    }
    dv_scaler_destroy(&st);
    dv_scaler_destroy(&mm);
    dv_scaler_destroy(&none);
    dv_scaler_destroy(&none);
    dv_tensor_destroy(&x);
    dv_tensor_destroy(&y);
    DV_CHECK(standard);
    DV_CHECK(minmax);
    DV_CHECK(identity);
    DV_CHECK(ends);
    DV_CHECK_NEAR(mean, 0, 1e-6);
    dv_scale_t k;
    DV_CHECK_EQ(dv_scale_parse("minmax", &k), 0);
    DV_CHECK_EQ(k, DV_SCALE_MINMAX);
    DV_CHECK_STR_EQ(dv_scale_name(DV_SCALE_STANDARD), "standard");
    DV_CHECK_EQ(dv_scale_parse("zscore", &k), DV_EINVAL);
}

static void
test_labels(void)
{
    dv_error_t err = {0};
    // Numeric labels sort by value (10 after 9) and 1 == 1.0.
    char *text[] = {"9", "10", "2", "1.0", "1"};
    double values[] = {9, 10, 2, 1, 1};
    dv_labels_t *l = NULL;
    DV_CHECK_RC(dv_labels_fit(&l, text, values, true, 5, &err), 0, &err);
    uint32_t cls[5];
    int rc = dv_labels_encode(l, text, values, 5, cls, &err);
    bool order = l->n == 4 && strcmp(l->labels[0], "1") == 0 &&
                 strcmp(l->labels[3], "10") == 0;
    bool coded = cls[0] == 2 && cls[1] == 3 && cls[3] == 0 && cls[4] == 0;
    double unknown_v[] = {3};
    char *unknown_t[] = {"3"};
    int rc_unknown = dv_labels_encode(l, unknown_t, unknown_v, 1, cls, &err);
    bool row = strstr(err.text, "row 1") && strstr(err.text, "'3'");
    dv_labels_t *copy = dv_labels_new(l->labels, l->n, l->numeric);
    bool copied = copy->labels[0] != l->labels[0] && copy->n == 4;
    dv_labels_destroy(&copy);
    dv_labels_destroy(&l);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK(order);
    DV_CHECK(coded);
    DV_CHECK_EQ(rc_unknown, DV_EFORMAT);
    DV_CHECK(row);
    DV_CHECK(copied);
    // Text labels sort bytewise.
    char *words[] = {"pear", "apple", "pear", "fig"};
    DV_CHECK_RC(dv_labels_fit(&l, words, NULL, false, 4, &err), 0, &err);
    bool bytewise =
        strcmp(l->labels[0], "apple") == 0 && strcmp(l->labels[2], "pear") == 0;
    dv_labels_destroy(&l);
    DV_CHECK(bytewise);
    // One class is not a classification problem.
    char *one[] = {"a", "a"};
    DV_CHECK_RC(dv_labels_fit(&l, one, NULL, false, 2, &err), DV_EFORMAT, &err);
    DV_CHECK(l == NULL);
}

static const dv_test_case_t cases[] = {
    {"scalers", test_scalers},
    {"labels", test_labels},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
