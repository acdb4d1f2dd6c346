// test_metrics — metrics against values scikit-learn 1.2 gives for the same
// inputs (its documentation examples, and small cases derived by hand in the
// comments), and the edge cases where the conventions matter: constant
// targets, classes never predicted or absent from the truth, zero
// probabilities, rows that do not sum to 1, ties in the argmax.
#include <math.h>
#include <stdlib.h>

#include "dv_metrics.h"
#include "dv_test.h"

// Check the k * k confusion matrix cm against want, entry by entry.
#define CHECK_CM(cm, want, k)                                                  \
    do {                                                                       \
        for (size_t e_ = 0; e_ < (size_t)(k) * (k); e_++) {                    \
            DV_CHECK_EQ((cm)[e_], (want)[e_]);                                 \
        }                                                                      \
    } while (0)

static void
test_regression_sklearn_example(void)
{
    // sklearn docs (mean_squared_error, mean_absolute_error, r2_score):
    // y_true = [3, -0.5, 2, 7], y_pred = [2.5, 0.0, 2, 8].
    //   errors 0.5, -0.5, 0, -1    MSE = (.25 + .25 + 0 + 1) / 4 = 0.375
    //                              MAE = (.5 + .5 + 0 + 1) / 4 = 0.5
    //   mean y = 2.875, SS_tot = 29.1875, SS_res = 1.5
    //   R2 = 1 - 1.5 / 29.1875 = 0.9486081370449679
    // All inputs are exact in float, so the figures are exact in double.
    const float y[] = {3, -0.5f, 2, 7}, p[] = {2.5f, 0.0f, 2, 8};
    DV_CHECK_NEAR(dv_metric_mse(y, p, 4), 0.375, 1e-15);
    DV_CHECK_NEAR(dv_metric_mae(y, p, 4), 0.5, 1e-15);
    DV_CHECK_NEAR(dv_metric_r2(y, p, 4), 0.9486081370449679, 1e-15);
    dv_metrics_t m;
    dv_metrics_regression(&m, y, p, 4);
    DV_CHECK_NEAR(m.mse, 0.375, 1e-15);
    DV_CHECK_NEAR(m.mae, 0.5, 1e-15);
    DV_CHECK_NEAR(m.r2, 0.9486081370449679, 1e-15);
    DV_CHECK_EQ(m.rows, 4);
    DV_CHECK_EQ(m.task, DV_TASK_REGRESSION);
    DV_CHECK_EQ(m.n_classes, 0);
    DV_CHECK(m.confusion == NULL);
    dv_metrics_clear(&m); // nothing allocated: a no-op
    DV_CHECK(m.confusion == NULL);
    DV_CHECK_STR_EQ(dv_task_name(DV_TASK_REGRESSION), "regression");
}

static void
test_regression_accumulates_in_double(void)
{
    // Errors of 0.1f (0.100000001490116...) squared and summed: a float
    // accumulator is off in the 4th digit after 10^5 terms, double in about
    // the 13th.
    enum { N = 100000 };
    float *y = malloc(N * sizeof *y), *p = malloc(N * sizeof *p);
    DV_CHECK(y && p);
    for (size_t i = 0; i < N; i++) {
        y[i] = 0.1f;
        p[i] = 0.0f;
    }
    double e = (double)0.1f;
    double mse = dv_metric_mse(y, p, N), mae = dv_metric_mae(y, p, N);
    free(y);
    free(p);
    DV_CHECK_NEAR(mse, e * e, 1e-12);
    DV_CHECK_NEAR(mae, e, 1e-12);
}

static void
test_r2_conventions(void)
{
    static const struct {
        const char *what;
        float y[3], pred[3];
        double want;
    } rows[] = {
        // Constant y: SS_tot = 0; exact fit -> 1, else 0 (sklearn's
        // force_finite=True instead of nan / -inf).
        {"constant y, exact", {2, 2, 2}, {2, 2, 2}, 1.0},
        {"constant y, off", {2, 2, 2}, {2, 3, 2}, 0.0},
        // Exact fit of a varying y.
        {"exact", {1, 2, 3}, {1, 2, 3}, 1.0},
        // Predicting the mean: SS_res = SS_tot = 2 -> 0.
        {"mean", {1, 2, 3}, {2, 2, 2}, 0.0},
        // Worse than the mean: SS_res = 4 + 0 + 4 = 8, SS_tot = 2 -> -3.
        {"reversed", {1, 2, 3}, {3, 2, 1}, -3.0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        double got = dv_metric_r2(rows[i].y, rows[i].pred, 3);
        if (fabs(got - rows[i].want) > 1e-15) {
            DV_FAIL_("%s: r2 %.17g, want %.17g", rows[i].what, got,
                     rows[i].want);
            return;
        }
    }
    // One row is a constant y too (scikit-learn itself returns nan for fewer
    // than two samples; Drover keeps the figure finite).
    const float one[] = {5}, hit[] = {5}, miss[] = {4};
    DV_CHECK_NEAR(dv_metric_r2(one, hit, 1), 1.0, 0);
    DV_CHECK_NEAR(dv_metric_r2(one, miss, 1), 0.0, 0);
}

static void
test_accuracy(void)
{
    const uint32_t y[] = {0, 1, 2, 3, 1}, p[] = {0, 2, 1, 3, 1};
    DV_CHECK_NEAR(dv_metric_accuracy(y, p, 5), 3.0 / 5.0, 1e-15);
    DV_CHECK_NEAR(dv_metric_accuracy(y, y, 5), 1.0, 0);
}

static void
test_confusion_and_prf(void)
{
    // sklearn docs (precision_recall_fscore_support): y_true = [cat, dog,
    // pig, cat, dog, pig], y_pred = [cat, pig, dog, cat, cat, dog]; with
    // cat=0, dog=1, pig=2:
    //   true \ pred  0  1  2      class  P     R    F1
    //   0            2  0  0      0      2/3   1    0.8
    //   1            1  0  1      1      0/2   0/2  0
    //   2            0  2  0      2      0/1   0/2  0
    // macro P = 2/9 (0.2222), R = 1/3, F1 = 0.8 / 3 = 4/15 (0.2667);
    // accuracy 2/6.
    const uint32_t y[] = {0, 1, 2, 0, 1, 2}, p[] = {0, 2, 1, 0, 0, 1};
    uint64_t cm[9];
    dv_confusion_matrix(y, p, 6, 3, cm);
    const uint64_t want[9] = {2, 0, 0, 1, 0, 1, 0, 2, 0};
    CHECK_CM(cm, want, 3);
    dv_prf_t c0 = dv_metric_prf_class(cm, 3, 0);
    DV_CHECK_NEAR(c0.precision, 2.0 / 3.0, 1e-15);
    DV_CHECK_NEAR(c0.recall, 1.0, 1e-15);
    DV_CHECK_NEAR(c0.f1, 0.8, 1e-15);
    dv_prf_t c1 = dv_metric_prf_class(cm, 3, 1);
    DV_CHECK_NEAR(c1.precision, 0.0, 0);
    DV_CHECK_NEAR(c1.recall, 0.0, 0);
    DV_CHECK_NEAR(c1.f1, 0.0, 0);
    dv_prf_t macro = dv_metric_prf_macro(cm, 3);
    DV_CHECK_NEAR(macro.precision, 2.0 / 9.0, 1e-15);
    DV_CHECK_NEAR(macro.recall, 1.0 / 3.0, 1e-15);
    DV_CHECK_NEAR(macro.f1, 4.0 / 15.0, 1e-15);
    DV_CHECK_NEAR(dv_metric_accuracy(y, p, 6), 2.0 / 6.0, 1e-15);
}

static void
test_class_never_predicted(void)
{
    // y = [0, 1, 2, 2], pred = [0, 1, 1, 1]: nothing is predicted as 2.
    //   class  TP  predicted  actual  P          R    F1
    //   0      1   1          1       1          1    1
    //   1      1   3          1       1/3        1    2(1/3)/(4/3) = 1/2
    //   2      0   0          2       0 (0/0)    0    0
    // macro P = (1 + 1/3 + 0) / 3 = 4/9, R = 2/3, F1 = 1.5 / 3 = 1/2.
    const uint32_t y[] = {0, 1, 2, 2}, p[] = {0, 1, 1, 1};
    uint64_t cm[9];
    dv_confusion_matrix(y, p, 4, 3, cm);
    const uint64_t want[9] = {1, 0, 0, 0, 1, 0, 0, 2, 0};
    CHECK_CM(cm, want, 3);
    dv_prf_t c2 = dv_metric_prf_class(cm, 3, 2);
    DV_CHECK_NEAR(c2.precision, 0.0, 0);
    DV_CHECK_NEAR(c2.recall, 0.0, 0);
    DV_CHECK_NEAR(c2.f1, 0.0, 0);
    dv_prf_t c1 = dv_metric_prf_class(cm, 3, 1);
    DV_CHECK_NEAR(c1.precision, 1.0 / 3.0, 1e-15);
    DV_CHECK_NEAR(c1.recall, 1.0, 0);
    DV_CHECK_NEAR(c1.f1, 0.5, 1e-15);
    dv_prf_t macro = dv_metric_prf_macro(cm, 3);
    DV_CHECK_NEAR(macro.precision, 4.0 / 9.0, 1e-15);
    DV_CHECK_NEAR(macro.recall, 2.0 / 3.0, 1e-15);
    DV_CHECK_NEAR(macro.f1, 0.5, 1e-15);
}

static void
test_class_absent_from_truth(void)
{
    // y = [0, 0, 1], pred = [0, 2, 1]: class 2 is predicted once but never
    // occurs (scikit-learn's default labels, the union, include it too).
    //   class  TP  predicted  actual  P    R          F1
    //   0      1   1          2       1    1/2        2(1/2)/(3/2) = 2/3
    //   1      1   1          1       1    1          1
    //   2      0   1          0       0    0 (0/0)    0
    // macro P = 2/3, R = 1/2, F1 = (2/3 + 1) / 3 = 5/9.
    const uint32_t y[] = {0, 0, 1}, p[] = {0, 2, 1};
    uint64_t cm[9];
    dv_confusion_matrix(y, p, 3, 3, cm);
    dv_prf_t c2 = dv_metric_prf_class(cm, 3, 2);
    DV_CHECK_NEAR(c2.precision, 0.0, 0);
    DV_CHECK_NEAR(c2.recall, 0.0, 0);
    DV_CHECK_NEAR(c2.f1, 0.0, 0);
    dv_prf_t macro = dv_metric_prf_macro(cm, 3);
    DV_CHECK_NEAR(macro.precision, 2.0 / 3.0, 1e-15);
    DV_CHECK_NEAR(macro.recall, 0.5, 1e-15);
    DV_CHECK_NEAR(macro.f1, 5.0 / 9.0, 1e-15);

    // Class 2 neither occurs nor is predicted: all its figures are 0 and it
    // still counts in the macro mean over k (scikit-learn with
    // labels=[0, 1, 2]): classes 0 and 1 are perfect -> 2/3 each.
    const uint32_t y2[] = {0, 1, 1};
    dv_confusion_matrix(y2, y2, 3, 3, cm);
    macro = dv_metric_prf_macro(cm, 3);
    DV_CHECK_NEAR(macro.precision, 2.0 / 3.0, 1e-15);
    DV_CHECK_NEAR(macro.recall, 2.0 / 3.0, 1e-15);
    DV_CHECK_NEAR(macro.f1, 2.0 / 3.0, 1e-15);
}

static void
test_confusion_ignores_out_of_range(void)
{
    // Labels >= k in either array are skipped; stale contents are cleared.
    const uint32_t y[] = {0, 5, 1, 1}, p[] = {0, 0, 7, 1};
    uint64_t cm[4] = {9, 9, 9, 9};
    dv_confusion_matrix(y, p, 4, 2, cm);
    const uint64_t want[4] = {1, 0, 0, 1};
    CHECK_CM(cm, want, 2);
}

static void
test_log_loss(void)
{
    static const struct {
        const char *what;
        uint32_t y;  // true class of the single row
        float p[3];  // its probabilities (k == 3)
        double want; // expected loss
    } rows[] = {
        // Half the mass on the truth: ln 2.
        {"proper row", 2, {0.25f, 0.25f, 0.5f}, 0.69314718055994531},
        // Rows are renormalized after clipping: [0.2, 0.2, 0] ->
        // [0.2, 0.2, 1e-15] / 0.4 -> p(0) = 0.5 (within 1e-15): ln 2.
        {"renormalized", 0, {0.2f, 0.2f, 0.0f}, 0.69314718055994531},
        // All zero: every entry clips to 1e-15, renormalized to 1/3: ln 3.
        {"all zero", 1, {0, 0, 0}, 1.0986122886681098},
        // Zero for the truth: clipped to 1e-15, the row sums to 1 + 1e-15,
        // loss -ln(1e-15) = 34.538776394910684 (finite).
        {"zero for the truth", 0, {0, 1, 0}, 34.538776394910684},
        // Certain and right: 1 clips to 1 - 1e-15; loss ~ 2e-15.
        {"certain and right", 1, {0, 1, 0}, 0.0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        double got = dv_metric_log_loss(&rows[i].y, rows[i].p, 1, 3);
        if (!isfinite(got) || fabs(got - rows[i].want) > 1e-9) {
            DV_FAIL_("%s: log_loss %.17g, want %.17g", rows[i].what, got,
                     rows[i].want);
            return;
        }
    }

    // sklearn docs: log_loss(["spam", "ham", "ham", "spam"],
    // [[.1, .9], [.9, .1], [.8, .2], [.35, .65]]) = 0.21616...; classes sort
    // ham=0, spam=1, so the truth gets .9, .9, .8, .65:
    // (ln(1/.9) * 2 + ln(1/.8) + ln(1/.65)) / 4 = 0.21616187468057912.
    const uint32_t y[] = {1, 0, 0, 1};
    const float p[] = {.1f, .9f, .9f, .1f, .8f, .2f, .35f, .65f};
    DV_CHECK_NEAR(dv_metric_log_loss(y, p, 4, 2), 0.21616187468057912, 1e-7);
}

static void
test_classification_binary(void)
{
    // Two classes; row 0 is a tie and goes to the lower index.
    //   y     = 0, 1, 1, 0
    //   proba = [.5 .5] [.2 .8] [.6 .4] [.9 .1] -> pred 0, 1, 0, 0
    //   confusion [[2, 0], [1, 1]]; accuracy 3/4
    //   class 1: P = 1/1, R = 1/2, F1 = 2(1/2)/(3/2) = 2/3
    //   class 0: P = 2/3, R = 1,   F1 = 0.8
    //   macro P = 5/6, R = 3/4, F1 = (0.8 + 2/3) / 2 = 11/15
    //   log_loss = (ln 2 + ln 1.25 + ln 2.5 + ln(1/.9)) / 4 = 0.5108256...
    const uint32_t y[] = {0, 1, 1, 0};
    const float p[] = {0.5f, 0.5f, 0.2f, 0.8f, 0.6f, 0.4f, 0.9f, 0.1f};
    dv_metrics_t m;
    dv_metrics_classification(&m, y, p, 4, 2);
    const uint64_t want[4] = {2, 0, 1, 1};
    uint64_t cm[4];
    for (size_t i = 0; i < 4; i++) {
        cm[i] = m.confusion[i];
    }
    dv_metrics_t s = m; // scalars, checked after the clear
    dv_metrics_clear(&m);
    DV_CHECK(m.confusion == NULL);
    dv_metrics_clear(&m); // idempotent
    CHECK_CM(cm, want, 2);
    DV_CHECK_EQ(s.task, DV_TASK_CLASSIFICATION);
    DV_CHECK_EQ(s.rows, 4);
    DV_CHECK_EQ(s.n_classes, 2);
    DV_CHECK_NEAR(s.accuracy, 0.75, 1e-15);
    DV_CHECK_NEAR(s.precision, 1.0, 1e-15);
    DV_CHECK_NEAR(s.recall, 0.5, 1e-15);
    DV_CHECK_NEAR(s.f1, 2.0 / 3.0, 1e-15);
    DV_CHECK_NEAR(s.precision_macro, 5.0 / 6.0, 1e-15);
    DV_CHECK_NEAR(s.recall_macro, 0.75, 1e-15);
    DV_CHECK_NEAR(s.f1_macro, 11.0 / 15.0, 1e-15);
    double ll = (log(2.0) + log(1.25) + log(2.5) + log(1 / 0.9)) / 4;
    DV_CHECK_NEAR(s.log_loss, ll, 1e-7);
    DV_CHECK_STR_EQ(dv_task_name(s.task), "classification");
}

static void
test_classification_multiclass_ties(void)
{
    // k = 3, ties resolve to the lowest index:
    //   y = 0, 1, 2, 2
    //   [.4 .4 .2] -> 0 (tie 0/1)    [.1 .45 .45] -> 1 (tie 1/2)
    //   [.3 .3 .4] -> 2              [.5 .25 .25] -> 0 (wrong)
    //   confusion [[1,0,0], [0,1,0], [1,0,1]]; accuracy 3/4
    //   class 0: P 1/2, R 1, F1 2/3; class 1: 1, 1, 1;
    //   class 2: P 1, R 1/2, F1 2/3
    //   macro P = 5/6, R = 5/6, F1 = 7/9; binary figures 0 (k != 2)
    //   log_loss = -(ln .4 + ln .45 + ln .4 + ln .25) / 4 = 1.0043458802...
    const uint32_t y[] = {0, 1, 2, 2};
    const float p[] = {.4f, .4f, .2f, .1f, .45f, .45f,
                       .3f, .3f, .4f, .5f, .25f, .25f};
    dv_metrics_t m;
    dv_metrics_classification(&m, y, p, 4, 3);
    const uint64_t want[9] = {1, 0, 0, 0, 1, 0, 1, 0, 1};
    uint64_t cm[9];
    for (size_t i = 0; i < 9; i++) {
        cm[i] = m.confusion[i];
    }
    dv_metrics_t s = m;
    dv_metrics_clear(&m);
    CHECK_CM(cm, want, 3);
    DV_CHECK_EQ(s.n_classes, 3);
    DV_CHECK_NEAR(s.accuracy, 0.75, 1e-15);
    DV_CHECK_NEAR(s.precision_macro, 5.0 / 6.0, 1e-15);
    DV_CHECK_NEAR(s.recall_macro, 5.0 / 6.0, 1e-15);
    DV_CHECK_NEAR(s.f1_macro, 7.0 / 9.0, 1e-15);
    DV_CHECK_NEAR(s.precision, 0.0, 0);
    DV_CHECK_NEAR(s.recall, 0.0, 0);
    DV_CHECK_NEAR(s.f1, 0.0, 0);
    double ll = -(log(0.4) + log(0.45) + log(0.4) + log(0.25)) / 4;
    DV_CHECK_NEAR(s.log_loss, ll, 1e-7);
    DV_CHECK_NEAR(s.log_loss, 1.0043458802714933, 1e-7);
}

static void
test_classification_nan_row(void)
{
    // numpy.argmax (sklearn's predict) takes the first NaN as the maximum;
    // so does Drover, whatever comes after it.
    const uint32_t y[] = {1, 0};
    const float p[] = {0.1f, NAN, 0.9f, NAN, 0.2f, 0.8f};
    dv_metrics_t m;
    dv_metrics_classification(&m, y, p, 2, 3);
    uint64_t r0_pred1 = m.confusion[1 * 3 + 1], r1_pred0 = m.confusion[0];
    double acc = m.accuracy;
    dv_metrics_clear(&m);
    DV_CHECK_EQ(r0_pred1, 1);
    DV_CHECK_EQ(r1_pred0, 1);
    DV_CHECK_NEAR(acc, 1.0, 0);
}

static const dv_test_case_t cases[] = {
    {"regression: scikit-learn example", test_regression_sklearn_example},
    {"regression accumulates in double", test_regression_accumulates_in_double},
    {"r2 conventions", test_r2_conventions},
    {"accuracy", test_accuracy},
    {"confusion matrix and macro P/R/F1", test_confusion_and_prf},
    {"class never predicted", test_class_never_predicted},
    {"class absent from the truth", test_class_absent_from_truth},
    {"confusion ignores labels >= k", test_confusion_ignores_out_of_range},
    {"log-loss: clipping and renormalizing", test_log_loss},
    {"classification summary, binary", test_classification_binary},
    {"classification summary, ties", test_classification_multiclass_ties},
    {"classification summary, NaN row", test_classification_nan_row},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
