// train_predict — the model library from C, without the CLI: load a CSV,
// train a softmax classifier, save it, load it back, predict a held-out
// split and print the accuracy. Build: part of the tree
// (build/<preset>/bin/dv-example-train-predict); run from the repository
// root: dv-example-train-predict data/iris_train.csv data/iris_test.csv
#include <stdio.h>
#include <stdlib.h>

#include "dv_csv.h"
#include "dv_metrics.h"
#include "dv_model.h"
#include "dv_modelfile.h"
#include "dv_train.h"

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s TRAIN.csv TEST.csv\n", argv[0]);
        return 2;
    }
    dv_blas_set_threads(1); // one job: small data, no need for more
    dv_error_t err = {0};
    dv_dataset_t *train = NULL, *test = NULL;
    dv_model_t *model = NULL, *loaded = NULL;
    dv_tensor_t *x = NULL, *proba = NULL;
    uint32_t *truth = NULL;
    int rc;
    if ((rc = dv_csv_load(&train, argv[1], NULL, &err)) != 0) {
        goto done;
    }
    dv_hyper_t h;
    dv_hyper_default(&h, DV_ALGO_SOFTMAX);
    dv_train_opts_t opts = {.task = -1};
    if ((rc = dv_train(&model, train, &h, &opts, &err)) != 0 ||
        (rc = dv_model_save(model, "example.drvm", &err)) != 0 ||
        (rc = dv_model_load(&loaded, "example.drvm", &err)) != 0) {
        goto done;
    }
    // Test data: the model's target column, features matched by name.
    dv_csv_opts_t copts = {.target = loaded->target_name};
    if ((rc = dv_csv_load(&test, argv[2], &copts, &err)) != 0 ||
        (rc = dv_dataset_select(test, loaded->feature_names, loaded->n_features,
                                &x, &err)) != 0 ||
        (rc = dv_model_predict(loaded, x, &proba, &err)) != 0) {
        goto done;
    }
    truth = malloc(test->n_rows * sizeof *truth);
    if ((rc = dv_labels_encode(loaded->labels, test->target_text,
                               test->target_value, test->n_rows, truth,
                               &err)) != 0) {
        goto done;
    }
    dv_metrics_t m;
    dv_metrics_classification(&m, truth, proba->data, test->n_rows,
                              loaded->labels->n);
    printf("accuracy %.4f on %zu rows (%zu classes)\n", m.accuracy, m.rows,
           m.n_classes);
    dv_metrics_clear(&m);
done:
    if (rc) {
        fprintf(stderr, "error: %s (%s)\n", err.text, dv_err_name(rc));
    }
    free(truth);
    dv_tensor_destroy(&proba);
    dv_tensor_destroy(&x);
    dv_model_destroy(&loaded);
    dv_model_destroy(&model);
    dv_dataset_destroy(&test);
    dv_dataset_destroy(&train);
    return rc ? 1 : 0;
}
