// client — libdrover from a user's program: only <drover.h> and -ldrover.
//
//     drover up &                                   # a local cluster
//     drover local train --data data/iris_train.csv --algo softmax
//         --out iris.drvm
//     drover models push iris.drvm
//     ./client iris 5.1 3.5 1.4 0.2                # one row, 4 features
//
// Submits one infer job (the row given on the command line) to the broker
// at $DROVER_BROKER (default tcp://127.0.0.1:7470), waits for its result
// and prints the class probabilities.
#include <drover.h>
#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: client MODEL[@VERSION] X1 X2 ...\n");
        return 2;
    }
    size_t cols = (size_t)argc - 2;
    float *x = malloc(cols * sizeof *x);
    for (size_t i = 0; i < cols; i++) {
        x[i] = strtof(argv[i + 2], NULL);
    }
    drover_t *d = NULL;
    drover_error_t err;
    if (drover_connect(&d, NULL, 5000, &err) != 0) {
        fprintf(stderr, "client: %s: %s\n", drover_err_name(err.code),
                err.text);
        free(x);
        return 1;
    }
    drover_job_t job = DROVER_JOB_INIT;
    job.kind = "infer";
    job.model = argv[1];
    job.input = x;
    job.rows = 1;
    job.cols = cols;
    drover_result_t *r = NULL;
    int rc = drover_run(d, &job, 30000, &r, &err);
    if (rc == 0 && drover_result_ok(r)) {
        size_t rows, k;
        const float *p = drover_result_output(r, &rows, &k);
        printf("%s ran on %s:", drover_result_model(r),
               drover_result_worker(r));
        for (size_t c = 0; c < k; c++) {
            const char *name = drover_result_class(r, c);
            printf(" %s=%.4f", name ? name : "value", (double)p[c]);
        }
        printf("\n");
    } else if (rc == 0) {
        const char *text;
        rc = drover_result_error(r, &text);
        fprintf(stderr, "client: job failed: %s: %s\n", drover_err_name(rc),
                text);
    } else {
        fprintf(stderr, "client: %s: %s\n", drover_err_name(rc), err.text);
    }
    drover_result_destroy(&r);
    drover_destroy(&d);
    free(x);
    return rc ? 1 : 0;
}
