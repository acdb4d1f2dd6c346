// test_metrics — metrics against values scikit-learn 1.2 gives for the same
// inputs (from its documentation examples), and the edge cases where the
// conventions matter (constant targets, absent classes, zero probabilities).
#include <math.h>
#include <stdlib.h>

#include "dv_metrics.h"
#include "dv_test.h"

static void
test_regression_sklearn_example(void)
{
    // sklearn docs: mean_squared_error / mean_absolute_error / r2_score with
    // y_true = [3, -0.5, 2, 7], y_pred = [2.5, 0.0, 2, 8].
    const float y[] = {3, -0.5f, 2, 7}, p[] = {2.5f, 0.0f, 2, 8};
    dv_metrics_t m;
    dv_metrics_regression(&m, y, p, 4);
    DV_CHECK_NEAR(m.mse, 0.375, 1e-12);
    DV_CHECK_NEAR(m.mae, 0.5, 1e-12);
    DV_CHECK_NEAR(m.r2, 0.9486081370449679, 1e-9);
    DV_CHECK_EQ(m.rows, 4);
    DV_CHECK_EQ(m.task, DV_TASK_REGRESSION);
}

static void
test_r2_constant_target(void)
{
    const float y[] = {2, 2, 2}, exact[] = {2, 2, 2}, off[] = {2, 3, 2};
    DV_CHECK_NEAR(dv_metric_r2(y, exact, 3), 1.0, 0);
    DV_CHECK_NEAR(dv_metric_r2(y, off, 3), 0.0, 0);
    // Worse than the mean is negative.
    const float y2[] = {1, 2, 3}, bad[] = {3, 2, 1};
    DV_CHECK_NEAR(dv_metric_r2(y2, bad, 3), -3.0, 1e-12);
}

static void
test_confusion_and_prf(void)
{
    // sklearn docs (precision_recall_fscore_support): y_true = [0,1,2,0,1,2],
    // y_pred = [0,2,1,0,0,1]: macro precision 0.2222, recall 0.3333,
    // f1 0.2667; accuracy 2/6.
    const uint32_t y[] = {0, 1, 2, 0, 1, 2}, p[] = {0, 2, 1, 0, 0, 1};
    uint64_t cm[9];
    dv_confusion_matrix(y, p, 6, 3, cm);
    const uint64_t want[9] = {2, 0, 0, 1, 0, 1, 0, 2, 0};
    for (int i = 0; i < 9; i++) {
        DV_CHECK_EQ(cm[i], want[i]);
    }
    dv_prf_t macro = dv_metric_prf_macro(cm, 3);
    DV_CHECK_NEAR(macro.precision, 2.0 / 9.0, 1e-12);
    DV_CHECK_NEAR(macro.recall, 1.0 / 3.0, 1e-12);
    DV_CHECK_NEAR(macro.f1, 4.0 / 15.0, 1e-12);
    DV_CHECK_NEAR(dv_metric_accuracy(y, p, 6), 2.0 / 6.0, 1e-12);
    // Class 2 is never predicted correctly and class 1 never right either:
    // per-class precision 0 where nothing was predicted (zero_division=0).
    dv_prf_t c2 = dv_metric_prf_class(cm, 3, 2);
    DV_CHECK_NEAR(c2.precision, 0.0, 0);
    DV_CHECK_NEAR(c2.f1, 0.0, 0);
}

static void
test_class_absent_from_truth(void)
{
    // Class 2 never occurs and is never predicted: recall 0 by convention,
    // and it still counts in the macro mean (as scikit-learn with labels=).
    const uint32_t y[] = {0, 1, 1}, p[] = {0, 1, 1};
    uint64_t cm[9];
    dv_confusion_matrix(y, p, 3, 3, cm);
    dv_prf_t macro = dv_metric_prf_macro(cm, 3);
    DV_CHECK_NEAR(macro.precision, 2.0 / 3.0, 1e-12);
    DV_CHECK_NEAR(macro.recall, 2.0 / 3.0, 1e-12);
}

static void
test_log_loss(void)
{
    // sklearn docs: log_loss(["spam","ham","ham","spam"],
    // [[.1,.9],[.9,.1],[.8,.2],[.35,.65]]) = 0.21616...; classes sorted
    // ham=0, spam=1.
    const uint32_t y[] = {1, 0, 0, 1};
    const float p[] = {.1f, .9f, .9f, .1f, .8f, .2f, .35f, .65f};
    DV_CHECK_NEAR(dv_metric_log_loss(y, p, 4, 2), 0.21616187468057912, 1e-6);
    // Zero probability for the truth: clipped, finite.
    const uint32_t y0[] = {0};
    const float p0[] = {0.0f, 1.0f};
    double l = dv_metric_log_loss(y0, p0, 1, 2);
    DV_CHECK(isfinite(l));
    DV_CHECK_NEAR(l, -log(1e-15), 1e-6);
}

static void
test_classification_summary(void)
{
    // Two classes; ties in a row go to the lower index.
    const uint32_t y[] = {0, 1, 1, 0};
    const float p[] = {0.5f, 0.5f, 0.2f, 0.8f, 0.6f, 0.4f, 0.9f, 0.1f};
    dv_metrics_t m;
    dv_metrics_classification(&m, y, p, 4, 2);
    // Predictions: 0 (tie), 1, 0, 0 -> 3 correct of 4.
    double acc = m.accuracy;
    uint64_t tp1 = m.confusion[1 * 2 + 1], fn1 = m.confusion[1 * 2 + 0];
    double recall = m.recall, precision = m.precision;
    dv_metrics_clear(&m);
    dv_metrics_clear(&m); // idempotent
    DV_CHECK_NEAR(acc, 0.75, 1e-12);
    DV_CHECK_EQ(tp1, 1);
    DV_CHECK_EQ(fn1, 1);
    DV_CHECK_NEAR(recall, 0.5, 1e-12);
    DV_CHECK_NEAR(precision, 1.0, 1e-12);
    DV_CHECK(m.confusion == NULL);
    DV_CHECK_STR_EQ(dv_task_name(DV_TASK_CLASSIFICATION), "classification");
}

static const dv_test_case_t cases[] = {
    {"regression: scikit-learn example", test_regression_sklearn_example},
    {"r2 on a constant target", test_r2_constant_target},
    {"confusion matrix and macro P/R/F1", test_confusion_and_prf},
    {"class absent from the truth", test_class_absent_from_truth},
    {"log-loss with clipping", test_log_loss},
    {"classification summary, ties", test_classification_summary},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
