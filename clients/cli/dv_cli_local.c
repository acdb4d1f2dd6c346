// dv_cli_local — `drover local train|eval|predict|inspect`: the model library
// used in-process, without a broker.
//
// Output contract: results go to stdout (eval's --json is one JSON object on
// one line; predict writes CSV), progress and errors to stderr. Progress is
// drawn only when stderr is a terminal, so piped runs stay quiet.
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dv_cli.h"
#include "dv_csv.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_metrics.h"
#include "dv_model.h"
#include "dv_modelfile.h"
#include "dv_sha256.h"
#include "dv_tensor.h"
#include "dv_train.h"

static void
local_usage(FILE *f)
{
    fprintf(f, "usage:\n"
               "  drover local train --algo ALGO --data FILE.csv --out "
               "MODEL.drvm [options]\n"
               "  drover local eval --model MODEL.drvm --data FILE.csv "
               "[--json]\n"
               "  drover local predict --model MODEL.drvm --data FILE.csv "
               "[--out PREDS.csv]\n"
               "  drover local inspect MODEL.drvm [--json]\n"
               "\n"
               "Common options: --threads N (OpenBLAS threads; default: "
               "DROVER_THREADS or all cores)\n"
               "`drover local train --help` lists the algorithms and their "
               "defaults.\n");
}

static void
eval_usage(FILE *f)
{
    fprintf(f, "usage: drover local eval --model MODEL.drvm --data FILE.csv "
               "[--json] [--threads N]\n"
               "\n"
               "Evaluate a model on a labelled CSV (header line; the target "
               "column as at\ntraining) and print its metrics.\n"
               "\n"
               "options:\n"
               "  --model FILE   the model (.drvm)\n"
               "  --data FILE    the CSV to evaluate on\n"
               "  --json         one JSON object on one line\n"
               "  --threads N    OpenBLAS threads (default: DROVER_THREADS "
               "or all cores)\n");
}

static void
predict_usage(FILE *f)
{
    fprintf(f, "usage: drover local predict --model MODEL.drvm --data "
               "FILE.csv [--out PREDS.csv] [--threads N]\n"
               "\n"
               "Predict each row of a CSV (header line; a target column, if "
               "present, is\nignored) and write the predictions as CSV.\n"
               "\n"
               "options:\n"
               "  --model FILE   the model (.drvm)\n"
               "  --data FILE    the CSV to predict\n"
               "  --out FILE     write the predictions there (default: "
               "stdout)\n"
               "  --threads N    OpenBLAS threads (default: DROVER_THREADS "
               "or all cores)\n");
}

static void
train_usage(FILE *f)
{
    dv_hyper_t h[6];
    for (int a = 0; a < 6; a++) {
        dv_hyper_default(&h[a], (dv_algo_t)a);
    }
    fprintf(
        f,
        "usage: drover local train --algo ALGO --data FILE.csv --out "
        "MODEL.drvm [options]\n"
        "\n"
        "algorithms:\n"
        "  ols      linear least squares (QR, LAPACK)\n"
        "  ridge    least squares + L2 penalty (Cholesky, LAPACK)\n"
        "  gd       linear regression by mini-batch gradient descent\n"
        "  logreg   binary logistic regression (Adam)\n"
        "  softmax  multinomial logistic regression (Adam)\n"
        "  mlp      dense ReLU network; softmax + cross-entropy or MSE "
        "(Adam)\n"
        "\n"
        "options:\n"
        "  --target COL      target column (default: 'target' if present, "
        "else the last)\n"
        "  --task T          classification|regression (mlp only; default: "
        "classification\n"
        "                    when the target is text or has <= %d distinct "
        "integers)\n"
        "  --hidden LIST     mlp hidden layer widths, e.g. 128,64 (default "
        "%u)\n"
        "  --epochs N        maximum epochs   (gd %u, logreg/softmax %u, mlp "
        "%u)\n"
        "  --batch N         mini-batch rows  (gd %u, logreg/softmax %u, mlp "
        "%u)\n"
        "  --lr X            learning rate    (gd %g, logreg/softmax %g, "
        "mlp %g)\n"
        "  --l2 X            L2 penalty       (ridge %g, gd %g, "
        "logreg/softmax %g, mlp %g)\n"
        "  --patience N      stop after N epochs without loss improvement "
        "> tol (%u; 0 = off)\n"
        "  --tol X           improvement that counts (%g)\n"
        "  --validation-fraction F  hold out F of the rows (0 <= F < 0.5) "
        "and stop on\n"
        "                    their loss instead, keeping the best epoch's "
        "model (%g)\n"
        "  --init I          mlp initial weights: glorot|he|uniform-fan-in "
        "(%s)\n"
        "  --seed N          RNG seed for init and shuffling (%" PRIu64 ")\n"
        "  --scale S         standard|minmax|none feature scaling (standard)\n"
        "  --threads N       OpenBLAS threads (default: DROVER_THREADS or all "
        "cores)\n"
        "\n"
        "Progress (epoch, loss) is shown when stderr is a terminal. The model "
        "records\n"
        "SOURCE_DATE_EPOCH as its creation time when set, for reproducible "
        "files.\n",
        DV_TRAIN_AUTO_MAX_CLASSES, h[DV_ALGO_MLP].hidden[0],
        h[DV_ALGO_GD].epochs, h[DV_ALGO_SOFTMAX].epochs, h[DV_ALGO_MLP].epochs,
        h[DV_ALGO_GD].batch, h[DV_ALGO_SOFTMAX].batch, h[DV_ALGO_MLP].batch,
        h[DV_ALGO_GD].lr, h[DV_ALGO_SOFTMAX].lr, h[DV_ALGO_MLP].lr,
        h[DV_ALGO_RIDGE].l2, h[DV_ALGO_GD].l2, h[DV_ALGO_SOFTMAX].l2,
        h[DV_ALGO_MLP].l2, h[DV_ALGO_MLP].patience, h[DV_ALGO_MLP].tol,
        h[DV_ALGO_MLP].validation_fraction, dv_init_name(h[DV_ALGO_MLP].init),
        h[DV_ALGO_MLP].seed);
}

static int
fail(const dv_error_t *err)
{
    fprintf(stderr, "drover: %s (%s)\n", err->text, dv_err_name(err->code));
    return DV_CLI_FAIL;
}

static int
bad_value(const char *opt, const char *value, const char *want)
{
    fprintf(stderr, "drover: --%s '%s': expected %s\n", opt, value, want);
    return DV_CLI_USAGE;
}

// Parse a whole decimal integer in [lo, hi].
static bool
parse_u64(const char *text, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!text || !*text || *text == '-') {
        return false;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        return false;
    }
    *out = v;
    return true;
}

static bool
parse_double(const char *text, double *out)
{
    if (!text || !*text) {
        return false;
    }
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || *end || !isfinite(v)) {
        return false;
    }
    *out = v;
    return true;
}

// --threads, else DROVER_THREADS, else every online core.
static int
set_threads(const char *opt)
{
    const char *text = opt ? opt : getenv("DROVER_THREADS");
    uint64_t n;
    if (text) {
        if (!parse_u64(text, 1, 1024, &n)) {
            return bad_value("threads", text, "an integer 1..1024");
        }
    } else {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (uint64_t)cores : 1;
    }
    dv_blas_set_threads((int)n);
    return 0;
}

typedef struct {
    bool tty;         // draw progress
    double last_draw; // seconds of the last redraw
} progress_t;

static int
on_progress(const dv_train_progress_t *p, void *arg)
{
    progress_t *pr = arg;
    if (!pr->tty) {
        return 0;
    }
    // Redraw at most 10 times a second, and always for the last epoch.
    if (p->seconds - pr->last_draw < 0.1 && p->epoch != p->epochs) {
        return 0;
    }
    pr->last_draw = p->seconds;
    double eta = p->seconds / p->epoch * (p->epochs - p->epoch);
    fprintf(stderr, "\r  epoch %u/%u  loss %.6f  %.1fs (max %.0fs left)  ",
            p->epoch, p->epochs, p->loss, p->seconds, eta);
    fflush(stderr);
    return 0;
}

static double
seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) +
           (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

static int
parse_hidden(const char *text, dv_hyper_t *h)
{
    h->n_hidden = 0;
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || errno || v < 1 || v > DV_MAX_LAYER_UNITS ||
            h->n_hidden == DV_MAX_HIDDEN || (*end && *end != ',')) {
            return bad_value("hidden", text,
                             "comma-separated layer widths, e.g. 128,64 "
                             "(at most 16 layers of 1..65536)");
        }
        h->hidden[h->n_hidden++] = (uint32_t)v;
        p = *end ? end + 1 : end;
    }
    return h->n_hidden ? 0 : bad_value("hidden", text, "at least one width");
}

// --epochs, --batch, --patience, --seed into h. Returns -1, or the exit
// code after saying which value is wrong.
static int
train_counts(const dv_cli_opt_t *opts, dv_hyper_t *h)
{
    const char *v;
    uint64_t u;
    if ((v = dv_cli_get(opts, "epochs"))) {
        if (!parse_u64(v, 1, DV_MAX_EPOCHS, &u)) {
            return bad_value("epochs", v, "an integer 1..1000000");
        }
        h->epochs = (uint32_t)u;
    }
    if ((v = dv_cli_get(opts, "batch"))) {
        if (!parse_u64(v, 1, UINT32_MAX, &u)) {
            return bad_value("batch", v, "a positive integer");
        }
        h->batch = (uint32_t)u;
    }
    if ((v = dv_cli_get(opts, "patience"))) {
        if (!parse_u64(v, 0, DV_MAX_EPOCHS, &u)) {
            return bad_value("patience", v, "an integer 0..1000000");
        }
        h->patience = (uint32_t)u;
    }
    if ((v = dv_cli_get(opts, "seed"))) {
        if (!parse_u64(v, 0, UINT64_MAX, &u)) {
            return bad_value("seed", v, "a non-negative integer");
        }
        h->seed = u;
    }
    return -1;
}

// --lr, --l2, --tol, --scale, --init, --validation-fraction into h.
// Returns -1, or the exit code after saying which value is wrong.
static int
train_reals(const dv_cli_opt_t *opts, dv_hyper_t *h)
{
    const char *v;
    if ((v = dv_cli_get(opts, "lr")) && !parse_double(v, &h->lr)) {
        return bad_value("lr", v, "a number");
    }
    if ((v = dv_cli_get(opts, "l2")) && !parse_double(v, &h->l2)) {
        return bad_value("l2", v, "a number");
    }
    if ((v = dv_cli_get(opts, "tol")) && !parse_double(v, &h->tol)) {
        return bad_value("tol", v, "a number");
    }
    if ((v = dv_cli_get(opts, "scale")) && dv_scale_parse(v, &h->scale)) {
        return bad_value("scale", v, "standard, minmax or none");
    }
    if ((v = dv_cli_get(opts, "init")) && dv_init_parse(v, &h->init)) {
        return bad_value("init", v, "glorot, he or uniform-fan-in");
    }
    if ((v = dv_cli_get(opts, "validation-fraction")) &&
        !parse_double(v, &h->validation_fraction)) {
        return bad_value("validation-fraction", v, "a number");
    }
    return -1;
}

// Every option after --algo, into h and topts, checked together at the
// end. Returns -1 to go on, else the exit code.
static int
train_options(const dv_cli_opt_t *opts,
              dv_algo_t algo,
              dv_hyper_t *h,
              dv_train_opts_t *topts)
{
    const char *v;
    if ((v = dv_cli_get(opts, "task"))) {
        if (strcmp(v, "classification") == 0) {
            topts->task = DV_TASK_CLASSIFICATION;
        } else if (strcmp(v, "regression") == 0) {
            topts->task = DV_TASK_REGRESSION;
        } else {
            return bad_value("task", v, "classification or regression");
        }
    }
    if ((v = dv_cli_get(opts, "hidden"))) {
        if (algo != DV_ALGO_MLP) {
            fprintf(stderr, "drover: --hidden is only for --algo mlp\n");
            return DV_CLI_USAGE;
        }
        if (parse_hidden(v, h)) {
            return DV_CLI_USAGE;
        }
    }
    int rc = train_counts(opts, h);
    if (rc < 0) {
        rc = train_reals(opts, h);
    }
    if (rc >= 0) {
        return rc;
    }
    dv_error_t err = {0};
    if (dv_hyper_check(h, &err)) {
        fprintf(stderr, "drover: %s\n", err.text);
        return DV_CLI_USAGE;
    }
    if (set_threads(dv_cli_get(opts, "threads"))) {
        return DV_CLI_USAGE;
    }
    // SOURCE_DATE_EPOCH (reproducible-builds.org): a fixed creation time
    // makes the same training run give the same file bytes.
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    uint64_t u;
    if (sde && parse_u64(sde, 1, INT64_MAX, &u)) {
        topts->created_unix = (int64_t)u;
    }
    return -1;
}

// "trained ALGO (TASK...) on R rows x F features ..." and "wrote FILE".
static void
train_report(const dv_model_t *model,
             const dv_dataset_t *ds,
             const char *algo_text,
             double secs,
             const char *out_path)
{
    const dv_metrics_t *tm = &model->meta.train_metrics;
    printf("trained %s (%s", algo_text, dv_task_name(model->task));
    if (model->labels) {
        printf(", %zu classes", model->labels->n);
    }
    printf(") on %zu rows x %zu features in %.2fs, %u epoch%s", ds->n_rows,
           ds->n_features, secs, model->meta.epochs_run,
           model->meta.epochs_run == 1 ? "" : "s");
    if (model->task == DV_TASK_REGRESSION) {
        printf("; train R2 %.4f, MSE %.4g\n", tm->r2, tm->mse);
    } else {
        printf("; train accuracy %.4f\n", tm->accuracy);
    }
    printf("wrote %s\n", out_path);
}

static int
cmd_train(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"algo", true, NULL},
        {"data", true, NULL},
        {"target", true, NULL},
        {"task", true, NULL},
        {"hidden", true, NULL},
        {"epochs", true, NULL},
        {"batch", true, NULL},
        {"lr", true, NULL},
        {"l2", true, NULL},
        {"seed", true, NULL},
        {"scale", true, NULL},
        {"patience", true, NULL},
        {"tol", true, NULL},
        {"out", true, NULL},
        {"threads", true, NULL},
        {"init", true, NULL},
        {"validation-fraction", true, NULL},
        {"help", false, NULL},
        {NULL, false, NULL},
    };
    const char *pos[1];
    size_t n_pos;
    if (dv_cli_parse(argc, argv, opts, pos, 0, &n_pos)) {
        train_usage(stderr);
        return DV_CLI_USAGE;
    }
    if (dv_cli_get(opts, "help")) {
        train_usage(stdout);
        return DV_CLI_OK;
    }
    const char *algo_text = dv_cli_get(opts, "algo");
    const char *data = dv_cli_get(opts, "data");
    const char *out_path = dv_cli_get(opts, "out");
    if (!algo_text || !data || !out_path) {
        fprintf(stderr, "drover: train needs --algo, --data and --out\n");
        train_usage(stderr);
        return DV_CLI_USAGE;
    }
    dv_algo_t algo;
    if (dv_algo_parse(algo_text, &algo)) {
        return bad_value("algo", algo_text,
                         "ols, gd, ridge, logreg, softmax or mlp");
    }
    dv_hyper_t h;
    dv_hyper_default(&h, algo);
    dv_train_opts_t topts = {.task = -1};
    int rc = train_options(opts, algo, &h, &topts);
    if (rc >= 0) {
        return rc;
    }
    dv_error_t err = {0};
    dv_csv_opts_t copts = {.target = dv_cli_get(opts, "target")};
    dv_dataset_t *ds = NULL;
    if (dv_csv_load(&ds, data, &copts, &err)) {
        return fail(&err);
    }
    progress_t pr = {.tty = isatty(STDERR_FILENO) == 1};
    topts.progress = on_progress;
    topts.progress_arg = &pr;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dv_model_t *model = NULL;
    rc = dv_train(&model, ds, &h, &topts, &err);
    double secs = seconds_since(&t0);
    if (pr.tty && rc == 0) {
        // The last redraw may be up to 0.1 s stale: draw the final state.
        bool early = model->meta.epochs_run < h.epochs;
        fprintf(stderr, "\r  epoch %u/%u  loss %.6f  %.1fs%-24s\n",
                model->meta.epochs_run, h.epochs, model->meta.final_loss, secs,
                early ? "  (stopped: converged)" : "");
    } else if (pr.tty) {
        fputc('\n', stderr);
    }
    if (rc) {
        dv_dataset_destroy(&ds);
        return fail(&err);
    }
    rc = dv_model_save(model, out_path, &err);
    if (rc == 0) {
        train_report(model, ds, algo_text, secs, out_path);
    }
    dv_model_destroy(&model);
    dv_dataset_destroy(&ds);
    return rc ? fail(&err) : DV_CLI_OK;
}

// Load the model and the data, mapping the file's columns onto the model's
// features by name. *ds keeps the target when the file has it.
static int
load_model_and_data(const char *model_path,
                    const char *data_path,
                    bool need_target,
                    dv_model_t **model,
                    dv_dataset_t **ds,
                    dv_tensor_t **x,
                    dv_error_t *err)
{
    int rc = dv_model_load(model, model_path, err);
    if (rc) {
        return rc;
    }
    dv_csv_opts_t copts = {.target = (*model)->target_name,
                           .target_optional = !need_target};
    rc = dv_csv_load(ds, data_path, &copts, err);
    if (rc == 0) {
        rc = dv_dataset_select(*ds, (*model)->feature_names,
                               (*model)->n_features, x, err);
    }
    if (rc) {
        dv_dataset_destroy(ds);
        dv_model_destroy(model);
    }
    return rc;
}

// eval and predict: parse opts (model, data, threads, help among them),
// the command's usage on a mistake or --help; --model and --data required;
// --threads applied. Returns -1 to go on, else the exit code.
static int
model_data_args(int argc,
                char **argv,
                dv_cli_opt_t *opts,
                const char *what,
                void (*usage)(FILE *),
                const char **model_path,
                const char **data)
{
    const char *pos[1];
    size_t n_pos;
    if (dv_cli_parse(argc, argv, opts, pos, 0, &n_pos)) {
        usage(stderr);
        return DV_CLI_USAGE;
    }
    if (dv_cli_get(opts, "help")) {
        usage(stdout);
        return DV_CLI_OK;
    }
    *model_path = dv_cli_get(opts, "model");
    *data = dv_cli_get(opts, "data");
    if (!*model_path || !*data) {
        fprintf(stderr, "drover: %s needs --model and --data\n", what);
        return DV_CLI_USAGE;
    }
    if (set_threads(dv_cli_get(opts, "threads"))) {
        return DV_CLI_USAGE;
    }
    return -1;
}

static int
cmd_eval(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"model", true, NULL},   {"data", true, NULL},  {"json", false, NULL},
        {"threads", true, NULL}, {"help", false, NULL}, {NULL, false, NULL},
    };
    const char *model_path = NULL, *data = NULL;
    int arc = model_data_args(argc, argv, opts, "eval", eval_usage, &model_path,
                              &data);
    if (arc >= 0) {
        return arc;
    }
    dv_error_t err = {0};
    dv_model_t *model = NULL;
    dv_dataset_t *ds = NULL;
    dv_tensor_t *x = NULL;
    dv_metrics_t m = {0};
    int rc = load_model_and_data(model_path, data, true, &model, &ds, &x, &err);
    if (rc == 0) {
        rc = dv_model_evaluate(model, ds, &m, &err);
    }
    if (rc == 0) {
        if (dv_cli_get(opts, "json")) {
            dv_cli_print_metrics_json(&m, model->labels ? model->labels->labels
                                                        : NULL);
        } else {
            dv_cli_print_metrics_text(&m, model->labels ? model->labels->labels
                                                        : NULL);
        }
    }
    dv_metrics_clear(&m);
    dv_tensor_destroy(&x);
    dv_dataset_destroy(&ds);
    dv_model_destroy(&model);
    return rc ? fail(&err) : DV_CLI_OK;
}

static int
cmd_predict(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"model", true, NULL},   {"data", true, NULL},  {"out", true, NULL},
        {"threads", true, NULL}, {"help", false, NULL}, {NULL, false, NULL},
    };
    const char *model_path = NULL, *data = NULL;
    int arc = model_data_args(argc, argv, opts, "predict", predict_usage,
                              &model_path, &data);
    if (arc >= 0) {
        return arc;
    }
    const char *out_path = dv_cli_get(opts, "out");
    dv_error_t err = {0};
    dv_model_t *model = NULL;
    dv_dataset_t *ds = NULL;
    dv_tensor_t *x = NULL, *pred = NULL;
    int rc =
        load_model_and_data(model_path, data, false, &model, &ds, &x, &err);
    if (rc == 0) {
        rc = dv_model_predict(model, x, &pred, &err);
    }
    FILE *f = stdout;
    if (rc == 0 && out_path && !(f = fopen(out_path, "w"))) {
        rc = dv_errorf(&err, DV_EIO, "%s: %s", out_path, strerror(errno));
        f = stdout;
    }
    if (rc == 0) {
        dv_cli_write_predictions(
            f, pred,
            model->task == DV_TASK_CLASSIFICATION ? model->labels->labels
                                                  : NULL,
            model->task == DV_TASK_CLASSIFICATION ? model->labels->n : 0);
        if (f != stdout && fclose(f) != 0) {
            rc = dv_errorf(&err, DV_EIO, "%s: %s", out_path, strerror(errno));
        } else if (f == stdout && fflush(stdout) != 0) {
            rc = dv_errorf(&err, DV_EIO, "stdout: %s", strerror(errno));
        }
    }
    dv_tensor_destroy(&pred);
    dv_tensor_destroy(&x);
    dv_dataset_destroy(&ds);
    dv_model_destroy(&model);
    return rc ? fail(&err) : DV_CLI_OK;
}

// `drover local inspect FILE --json`: one object.
static void
inspect_json(const dv_model_t *model, const char *path, const char *hex)
{
    const dv_model_meta_t *meta = &model->meta;
    printf("{\"file\":");
    dv_cli_json_str(stdout, path);
    printf(",\"checksum\":\"ok\",\"algo\":\"%s\",\"task\":\"%s\","
           "\"features\":%zu,\"outputs\":%zu,\"params\":%zu,"
           "\"layers\":[",
           dv_algo_name(meta->hyper.algo), dv_task_name(model->task),
           model->n_features, dv_model_n_outputs(model),
           dv_model_n_params(model));
    for (size_t l = 0; l < model->n_layers; l++) {
        const dv_layer_t *ly = &model->layers[l];
        printf("%s{\"in\":%zu,\"out\":%zu,\"activation\":\"%s\"}", l ? "," : "",
               ly->n_in, ly->n_out, dv_act_name(ly->act));
    }
    printf("],\"target\":");
    dv_cli_json_str(stdout, model->target_name);
    printf(",\"scale\":\"%s\",\"dataset_sha256\":\"%s\","
           "\"dataset_rows\":%" PRIu64 ",\"epochs_run\":%u,"
           "\"seed\":%" PRIu64 ",\"created_unix\":%" PRId64
           ",\"drover_version\":",
           dv_scale_name(model->scaler->kind), hex, meta->dataset_rows,
           meta->epochs_run, meta->hyper.seed, meta->created_unix);
    dv_cli_json_str(stdout, meta->drover_version);
    printf("}\n");
}

// `drover local inspect FILE`: what the model is (task, features, target,
// scaling, layers), one fact a line.
static void
inspect_shape(const dv_model_t *model)
{
    printf("task          %s", dv_task_name(model->task));
    if (model->labels) {
        printf(", %zu classes:", model->labels->n);
        for (size_t c = 0; c < model->labels->n && c < 20; c++) {
            printf(" %s", model->labels->labels[c]);
        }
        printf(model->labels->n > 20 ? " ...\n" : "\n");
    } else {
        printf("\n");
    }
    printf("features      %zu (", model->n_features);
    for (size_t j = 0; j < model->n_features && j < 8; j++) {
        printf(j ? ", %s" : "%s", model->feature_names[j]);
    }
    printf(model->n_features > 8 ? ", ...)\n" : ")\n");
    printf("target        %s\n", model->target_name);
    printf("scaling       %s\n", dv_scale_name(model->scaler->kind));
    printf("layers       ");
    for (size_t l = 0; l < model->n_layers; l++) {
        const dv_layer_t *ly = &model->layers[l];
        printf(" %zux%zu %s", ly->n_in, ly->n_out, dv_act_name(ly->act));
    }
    printf("\nparameters    %zu\n", dv_model_n_params(model));
}

// `drover local inspect FILE`: how it was trained (hyperparameters, data,
// metrics, when and by which drover).
static void
inspect_training(const dv_model_t *model, const char *hex)
{
    const dv_model_meta_t *meta = &model->meta;
    const dv_hyper_t *h = &meta->hyper;
    printf("hyper         epochs %u, batch %u, lr %g, l2 %g, seed %" PRIu64,
           h->epochs, h->batch, h->lr, h->l2, h->seed);
    if (h->algo == DV_ALGO_MLP) {
        printf(", init %s", dv_init_name(h->init));
    }
    if (h->validation_fraction > 0) {
        printf(", validation fraction %g", h->validation_fraction);
    }
    printf("\n");
    printf("trained on    %" PRIu64 " rows, data sha256 %s\n",
           meta->dataset_rows, hex);
    printf("epochs run    %u, final loss %.6g\n", meta->epochs_run,
           meta->final_loss);
    if (model->task == DV_TASK_REGRESSION) {
        printf("train metrics r2 %.4f, mse %.6g, mae %.6g\n",
               meta->train_metrics.r2, meta->train_metrics.mse,
               meta->train_metrics.mae);
    } else {
        printf("train metrics accuracy %.4f, f1_macro %.4f\n",
               meta->train_metrics.accuracy, meta->train_metrics.f1_macro);
    }
    char when[32] = "?";
    time_t t = (time_t)meta->created_unix;
    struct tm tm;
    if (gmtime_r(&t, &tm)) {
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    printf("created       %s by drover %s\n", when, meta->drover_version);
}

static int
cmd_inspect(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"json", false, NULL},
        {"help", false, NULL},
        {NULL, false, NULL},
    };
    const char *pos[1];
    size_t n_pos;
    if (dv_cli_parse(argc, argv, opts, pos, 1, &n_pos) || n_pos != 1) {
        if (!dv_cli_get(opts, "help")) {
            fprintf(stderr, "usage: drover local inspect MODEL.drvm\n");
            return DV_CLI_USAGE;
        }
    }
    if (dv_cli_get(opts, "help")) {
        printf("usage: drover local inspect MODEL.drvm [--json]\n");
        return DV_CLI_OK;
    }
    const char *path = pos[0];
    dv_error_t err = {0};
    dv_model_t *model = NULL;
    if (dv_model_load(&model, path, &err)) {
        return fail(&err);
    }
    char hex[DV_SHA256_HEX];
    dv_sha256_hex(model->meta.dataset_sha256, hex);
    if (dv_cli_get(opts, "json")) {
        inspect_json(model, path, hex);
    } else {
        printf("file          %s\n", path);
        printf("checksum      ok (SHA-256 verified)\n");
        printf("algorithm     %s\n", dv_algo_name(model->meta.hyper.algo));
        inspect_shape(model);
        inspect_training(model, hex);
    }
    dv_model_destroy(&model);
    return DV_CLI_OK;
}

int
dv_cli_local(int argc, char **argv)
{
    if (argc < 1) {
        local_usage(stderr);
        return DV_CLI_USAGE;
    }
    const char *sub = argv[0];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 ||
        strcmp(sub, "help") == 0) {
        local_usage(stdout);
        return DV_CLI_OK;
    }
    if (strcmp(sub, "train") == 0) {
        return cmd_train(argc - 1, argv + 1);
    }
    if (strcmp(sub, "eval") == 0) {
        return cmd_eval(argc - 1, argv + 1);
    }
    if (strcmp(sub, "predict") == 0) {
        return cmd_predict(argc - 1, argv + 1);
    }
    if (strcmp(sub, "inspect") == 0) {
        return cmd_inspect(argc - 1, argv + 1);
    }
    fprintf(stderr, "drover: unknown local command '%s'\n", sub);
    local_usage(stderr);
    return DV_CLI_USAGE;
}
