// dv_cli_infer — `drover infer` (rows of a CSV through a model on the
// broker's workers, predictions out) and `drover evaluate` (a model scored
// on a labelled CSV). See dv_cli_remote.h.

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_cli_remote.h"
#include "dv_csv.h"
#include "dv_file.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_metrics.h"
#include "dv_prep.h"
#include "dv_tensor.h"

// ----------------------------------------------------------------- infer

#define INFER_USAGE                                                            \
    "usage: drover infer --model NAME[@VERSION] --data FILE.csv [--out "       \
    "PREDS.csv]\n"                                                             \
    "                    [--eval] [--batch ROWS] [--queue Q] [--broker E] "    \
    "[--json]\n"                                                               \
    "Runs the model on every row through the broker's workers. Output is "     \
    "the\n"                                                                    \
    "format of `drover local predict`; --eval prints the metrics against "     \
    "the\n"                                                                    \
    "file's target column instead (predictions still go to --out).\n"

typedef struct {
    dv_tensor_t *pred;     // all outputs, filled by batches
    size_t rows_per_batch; // batch b covers rows [b * rows_per_batch, ...)
    size_t done, failed;   // batches
    char **classes;        // from the first result (owned)
    size_t n_classes;      //
    char model[300];       // NAME@VERSION that ran
    drover_error_t first;  // first failure
} infer_state_t;

typedef struct {
    infer_state_t *st;
    size_t batch;
} infer_arg_t;

static void
on_infer_result(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    infer_arg_t *a = arg;
    infer_state_t *st = a->st;
    const char *text = "";
    int code = drover_result_error(r, &text);
    size_t rows = 0, cols = 0;
    const float *out = drover_result_output(r, &rows, &cols);
    size_t first = a->batch * st->rows_per_batch;
    if (code == 0 &&
        (!out || cols != st->pred->cols || first + rows > st->pred->rows)) {
        code = DV_EFORMAT;
        text = "result shape does not match the request";
    }
    if (code) {
        if (st->failed++ == 0) {
            st->first.code = code;
            snprintf(st->first.text, sizeof st->first.text, "rows %zu..: %s",
                     first, text);
        }
        return;
    }
    memcpy(st->pred->data + first * cols, out, rows * cols * sizeof(float));
    if (!st->classes && drover_result_n_classes(r)) {
        st->n_classes = drover_result_n_classes(r);
        st->classes = dv_calloc(st->n_classes, sizeof(char *));
        for (size_t c = 0; c < st->n_classes; c++) {
            st->classes[c] = dv_strdup(drover_result_class(r, c));
        }
    }
    snprintf(st->model, sizeof st->model, "%s", drover_result_model(r));
    st->done++;
}

static int
print_eval(const drover_schema_t *sc,
           const dv_dataset_t *ds,
           const dv_tensor_t *pred,
           char *const *classes,
           size_t n_classes,
           bool json,
           dv_error_t *err)
{
    dv_metrics_t m = {0};
    int rc = 0;
    if (n_classes) {
        dv_labels_t *labels =
            dv_labels_new(classes, n_classes, sc->labels_numeric);
        uint32_t *cls = dv_malloc(ds->n_rows * sizeof *cls);
        rc = dv_labels_encode(labels, ds->target_text, ds->target_value,
                              ds->n_rows, cls, err);
        if (rc == 0) {
            dv_metrics_classification(&m, cls, pred->data, ds->n_rows,
                                      n_classes);
        }
        free(cls);
        dv_labels_destroy(&labels);
    } else if (!ds->target_numeric) {
        rc = dv_errorf(err, DV_EFORMAT,
                       "target '%s' must be numeric for a regression model",
                       sc->target);
    } else {
        float *y = dv_malloc(ds->n_rows * sizeof *y);
        for (size_t i = 0; i < ds->n_rows; i++) {
            y[i] = (float)ds->target_value[i];
        }
        dv_metrics_regression(&m, y, pred->data, ds->n_rows);
        free(y);
    }
    if (rc == 0) {
        if (json) {
            dv_cli_print_metrics_json(&m, n_classes ? classes : NULL);
        } else {
            dv_cli_print_metrics_text(&m, n_classes ? classes : NULL);
        }
    }
    dv_metrics_clear(&m);
    return rc;
}

// Run x as infer jobs on the pinned model, in batches of at most `batch`
// rows (and half a frame), and wait for every result; the outputs land in
// st->pred. Returns DV_CLI_OK, or DV_CLI_FAIL after saying why.
static int
infer_batches(drover_t *d,
              const char *queue,
              const char *pinned,
              const dv_tensor_t *x,
              size_t outputs,
              long batch,
              infer_state_t *st)
{
    dv_error_t err = {0};
    drover_error_t derr = {0};
    size_t rows = x->rows, cols = x->cols;
    size_t per = (size_t)batch;
    size_t frame_rows = ((size_t)1 << 27) / (cols * 4); // half a frame
    per = per < frame_rows ? per : (frame_rows ? frame_rows : 1);
    size_t n_batches = (rows + per - 1) / per;
    if (dv_tensor_open(&st->pred, rows, outputs, &err)) {
        return dv_cli_fail_dv(&err);
    }
    st->rows_per_batch = per;
    infer_arg_t *args = dv_calloc(n_batches, sizeof *args);
    drover_job_t *jobs = dv_calloc(n_batches, sizeof *jobs);
    void **cb_args = dv_calloc(n_batches, sizeof *cb_args);
    double t0 = dv_cli_seconds_now();
    for (size_t b = 0; b < n_batches; b++) {
        drover_job_t job = DROVER_JOB_INIT;
        job.kind = "infer";
        job.queue = queue;
        job.model = pinned;
        job.input = x->data + b * per * cols;
        job.rows = b + 1 < n_batches ? per : rows - b * per;
        job.cols = cols;
        jobs[b] = job;
        args[b] = (infer_arg_t){st, b};
        cb_args[b] = &args[b];
    }
    int rc = DV_CLI_OK;
    // Many batches in few messages (submit_many; one each to an older
    // broker), each still its own job and result.
    if (drover_submit_many_async(d, jobs, n_batches, on_infer_result, cb_args,
                                 &derr)) {
        rc = dv_cli_fail_d(&derr);
    }
    while (rc == DV_CLI_OK && drover_pending(d) > 0) {
        if (drover_poll(d, 60000, &derr) < 0) {
            rc = dv_cli_fail_d(&derr);
        }
    }
    double secs = dv_cli_seconds_now() - t0;
    if (rc == DV_CLI_OK && st->failed) {
        fprintf(stderr, "drover: %zu of %zu batches failed\n", st->failed,
                n_batches);
        rc = dv_cli_fail_d(&st->first);
    } else if (rc == DV_CLI_OK) {
        fprintf(stderr, "drover: %zu rows in %zu jobs on %s: %.3f s\n", rows,
                n_batches, st->model, secs);
    }
    free(args);
    free(jobs);
    free(cb_args);
    return rc;
}

// Write the predictions to *out (closing it, and setting *out to NULL) or
// to stdout. Returns DV_CLI_OK, or DV_CLI_FAIL after saying why.
static int
infer_write(FILE **out, const char *out_path, const infer_state_t *st)
{
    FILE *f = *out ? *out : stdout;
    dv_cli_write_predictions(f, st->pred, st->n_classes ? st->classes : NULL,
                             st->n_classes);
    *out = NULL;
    if (f != stdout ? fclose(f) != 0 : fflush(f) != 0) {
        dv_error_t err = {0};
        dv_errorf(&err, DV_EIO, "%s: write failed",
                  out_path ? out_path : "stdout");
        return dv_cli_fail_dv(&err);
    }
    return DV_CLI_OK;
}

int
dv_cli_infer(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"model", true, NULL},  {"data", true, NULL},  {"out", true, NULL},
        {"eval", false, NULL},  {"batch", true, NULL}, {"queue", true, NULL},
        {"broker", true, NULL}, {"json", false, NULL}, {"help", false, NULL},
        {NULL, false, NULL},
    };
    size_t n_pos;
    int rc = dv_cli_parse_usage(argc, argv, opts, NULL, 0, &n_pos, INFER_USAGE);
    if (rc >= 0) {
        return rc;
    }
    const char *ref = dv_cli_get(opts, "model");
    const char *data = dv_cli_get(opts, "data");
    const char *out_path = dv_cli_get(opts, "out");
    bool eval = dv_cli_get(opts, "eval") != NULL;
    long batch = 4096;
    if (!ref || !data ||
        !dv_cli_get_long(opts, "batch", 1, (long)DV_MAX_ROWS, &batch)) {
        fputs(INFER_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    char name[256];
    uint32_t version = 0;
    if ((rc = dv_cli_split_ref(ref, name, sizeof name, &version)) != 0) {
        return rc;
    }
    // --out is opened first: a path that cannot be written is said before
    // any job runs, not after.
    FILE *out = out_path ? fopen(out_path, "w") : NULL;
    if (out_path && !out) {
        fprintf(stderr, "drover: --out %s: %s\n", out_path, strerror(errno));
        return DV_CLI_FAIL;
    }
    drover_t *d = NULL;
    if ((rc = dv_cli_connect(opts, &d)) != 0) {
        if (out) {
            fclose(out);
        }
        return rc;
    }
    drover_error_t derr = {0};
    dv_error_t err = {0};
    drover_schema_t sc;
    dv_dataset_t *ds = NULL;
    dv_tensor_t *x = NULL;
    infer_state_t st = {0};
    if (drover_model_schema(d, name, version, &sc, &derr) != 0) {
        drover_destroy(&d);
        if (out) {
            fclose(out);
        }
        return dv_cli_fail_d(&derr);
    }
    // Pin the version: every batch runs on the same model even if a new
    // one is pushed meanwhile.
    char pinned[300];
    snprintf(pinned, sizeof pinned, "%s@%" PRIu32, sc.model.name,
             sc.model.version);
    dv_csv_opts_t copts = {.target = sc.target, .target_optional = !eval};
    int erc = dv_csv_load(&ds, data, &copts, &err);
    if (erc == 0) {
        erc = dv_dataset_select(ds, sc.features, sc.n_features, &x, &err);
    }
    if (erc) {
        rc = dv_cli_fail_dv(&err);
        goto done;
    }
    rc = infer_batches(d, dv_cli_get(opts, "queue"), pinned, x,
                       sc.model.outputs, batch, &st);
    if (rc == DV_CLI_OK && (!eval || out_path)) {
        rc = infer_write(&out, out_path, &st);
    }
    if (rc == DV_CLI_OK && eval &&
        print_eval(&sc, ds, st.pred, st.classes, st.n_classes,
                   dv_cli_get(opts, "json") != NULL, &err) != 0) {
        rc = dv_cli_fail_dv(&err);
    }
done:
    for (size_t c = 0; c < st.n_classes; c++) {
        free(st.classes[c]);
    }
    free(st.classes);
    dv_tensor_destroy(&st.pred);
    dv_tensor_destroy(&x);
    dv_dataset_destroy(&ds);
    drover_schema_clear(&sc);
    drover_destroy(&d);
    if (out) {
        fclose(out); // a failure before the predictions were written
    }
    return rc;
}

// ------------------------------------------------------------- evaluate

#define EVALUATE_USAGE                                                         \
    "usage: drover evaluate --model NAME[@VERSION|@ALIAS] (--data FILE.csv | " \
    "--dataset NAME[@V])\n"                                                    \
    "                       "                                                  \
    "[--queue Q]\n"                                                            \
    "                       [--no-wait] [--broker E] [--json]\n"               \
    "The model's metrics on the file (it must hold the model's target), "      \
    "computed by a\nworker as a job: the figures `drover local eval` "         \
    "prints. The job id goes to stderr once the broker has it; --no-wait "     \
    "prints it\n(stdout) and returns: `drover jobs result ID` later.\n"

int
dv_cli_evaluate(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"model", true, NULL},   {"data", true, NULL},
        {"queue", true, NULL},   {"broker", true, NULL},
        {"json", false, NULL},   {"help", false, NULL},
        {"dataset", true, NULL}, {"no-wait", false, NULL},
        {NULL, false, NULL},
    };
    size_t n_pos = 0;
    int rc =
        dv_cli_parse_usage(argc, argv, opts, NULL, 0, &n_pos, EVALUATE_USAGE);
    if (rc >= 0) {
        return rc;
    }
    const char *model = dv_cli_get(opts, "model");
    const char *data = dv_cli_get(opts, "data");
    const char *dataset = dv_cli_get(opts, "dataset");
    if (!model || !data == !dataset) {
        fputs(EVALUATE_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    dv_error_t derr = {0};
    uint8_t *csv = NULL;
    size_t csv_len = 0;
    if (data &&
        dv_cli_read_input(data, (size_t)1 << 28, &csv, &csv_len, &derr)) {
        return dv_cli_fail_dv(&derr);
    }
    drover_t *d = NULL;
    if ((rc = dv_cli_connect(opts, &d)) != 0) {
        free(csv);
        return rc;
    }
    drover_job_t job = DROVER_JOB_INIT;
    job.kind = "evaluate";
    job.queue = dv_cli_get(opts, "queue");
    job.model = model;
    job.payload = csv;
    job.payload_len = csv_len;
    job.dataset = dataset;
    drover_error_t err = {0};
    drover_result_t *r = NULL;
    uint64_t id = 0;
    rc = drover_submit(d, &job, -1, &id, &err);
    free(csv);
    if (rc == 0 && !dv_cli_print_submitted(opts, id)) {
        drover_destroy(&d);
        return DV_CLI_OK;
    }
    if (rc == 0) {
        rc = drover_wait(d, id, -1, &r, &err);
    }
    if (rc == 0) {
        const char *text = "";
        int code = drover_result_error(r, &text);
        const char *const *names = NULL;
        const double *values = NULL;
        size_t n = drover_result_metrics(r, &names, &values);
        if (code) {
            err.code = rc = code;
            snprintf(err.text, sizeof err.text, "%s", text);
        } else if (dv_cli_get(opts, "json")) {
            printf("{\"model\":");
            dv_cli_json_str(stdout, drover_result_model(r));
            printf(",\"metrics\":{");
            for (size_t i = 0; i < n; i++) {
                printf("%s\"%s\":%.17g", i ? "," : "", names[i], values[i]);
            }
            printf("}}\n");
        } else {
            printf("%s on %s\n", drover_result_model(r), data ? data : dataset);
            for (size_t i = 0; i < n; i++) {
                bool count = strcmp(names[i], "rows") == 0 ||
                             strcmp(names[i], "n_classes") == 0;
                printf(count ? "  %-16s %.0f\n" : "  %-16s %.4f\n", names[i],
                       values[i]);
            }
        }
    }
    drover_result_destroy(&r);
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}
