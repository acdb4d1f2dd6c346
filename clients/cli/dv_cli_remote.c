// dv_cli_remote — the `drover` commands that talk to a broker through
// libdrover: infer, submit, models, jobs, workers, status.
//
// Every command takes --broker ENDPOINT (default $DROVER_BROKER, else
// DROVER_DEFAULT_ENDPOINT) and --json (one JSON document on stdout instead
// of text). Errors go to stderr as "drover: DV_ENAME: reason", exit 1.
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "drover.h"
#include "dv_cli.h"
#include "dv_csv.h"
#include "dv_file.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_metrics.h"
#include "dv_prep.h"
#include "dv_tensor.h"

#define CONNECT_MS 5000

static int
fail_d(const drover_error_t *err)
{
    fprintf(stderr, "drover: %s: %s\n", drover_err_name(err->code), err->text);
    return DV_CLI_FAIL;
}

static int
fail_dv(const dv_error_t *err)
{
    fprintf(stderr, "drover: %s: %s\n", dv_err_name(err->code), err->text);
    return DV_CLI_FAIL;
}

static double
seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// Parse argv with opts (which must have "broker", "json", "help"); on
// --help print usage_text. Returns -1 to go on, else an exit code.
static int
parse(int argc,
      char **argv,
      dv_cli_opt_t *opts,
      const char **pos,
      size_t max_pos,
      size_t *n_pos,
      const char *usage_text)
{
    if (dv_cli_parse(argc, argv, opts, pos, max_pos, n_pos)) {
        fputs(usage_text, stderr);
        return DV_CLI_USAGE;
    }
    if (dv_cli_get(opts, "help")) {
        fputs(usage_text, stdout);
        return DV_CLI_OK;
    }
    return -1;
}

static int
connect_to(const dv_cli_opt_t *opts, drover_t **d)
{
    drover_error_t err = {0};
    if (drover_connect(d, dv_cli_get(opts, "broker"), CONNECT_MS, &err) != 0) {
        return fail_d(&err);
    }
    return DV_CLI_OK;
}

// "NAME" or "NAME@VERSION" into name and version (0: latest).
static int
split_ref(const char *ref, char *name, size_t size, uint32_t *version)
{
    const char *at = strchr(ref, '@');
    size_t n = at ? (size_t)(at - ref) : strlen(ref);
    *version = 0;
    if (n == 0 || n >= size) {
        fprintf(stderr, "drover: bad model reference '%s'\n", ref);
        return DV_CLI_USAGE;
    }
    memcpy(name, ref, n);
    name[n] = '\0';
    if (at &&
        ((at[1] >= 'a' && at[1] <= 'z') || (at[1] >= 'A' && at[1] <= 'Z'))) {
        // NAME@ALIAS: the broker resolves it
        if (strlen(ref) >= size) {
            fprintf(stderr, "drover: bad model reference '%s'\n", ref);
            return DV_CLI_USAGE;
        }
        snprintf(name, size, "%s", ref);
        return DV_CLI_OK;
    }
    if (at) {
        char *end = NULL;
        unsigned long v = strtoul(at + 1, &end, 10);
        if (!at[1] || *end || v == 0 || v > UINT32_MAX) {
            fprintf(stderr, "drover: bad version in '%s'\n", ref);
            return DV_CLI_USAGE;
        }
        *version = (uint32_t)v;
    }
    return DV_CLI_OK;
}

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

static int
cmd_infer(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"model", true, NULL},  {"data", true, NULL},  {"out", true, NULL},
        {"eval", false, NULL},  {"batch", true, NULL}, {"queue", true, NULL},
        {"broker", true, NULL}, {"json", false, NULL}, {"help", false, NULL},
        {NULL, false, NULL},
    };
    size_t n_pos;
    int rc = parse(argc, argv, opts, NULL, 0, &n_pos, INFER_USAGE);
    if (rc >= 0) {
        return rc;
    }
    const char *ref = dv_cli_get(opts, "model");
    const char *data = dv_cli_get(opts, "data");
    const char *out_path = dv_cli_get(opts, "out");
    bool eval = dv_cli_get(opts, "eval") != NULL;
    long batch =
        dv_cli_get(opts, "batch") ? atol(dv_cli_get(opts, "batch")) : 4096;
    if (!ref || !data || batch < 1) {
        fputs(INFER_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    char name[256];
    uint32_t version = 0;
    if ((rc = split_ref(ref, name, sizeof name, &version)) != 0) {
        return rc;
    }
    drover_t *d = NULL;
    if ((rc = connect_to(opts, &d)) != 0) {
        return rc;
    }
    drover_error_t derr = {0};
    dv_error_t err = {0};
    drover_schema_t sc;
    dv_dataset_t *ds = NULL;
    dv_tensor_t *x = NULL;
    infer_state_t st = {0};
    infer_arg_t *args = NULL;
    drover_job_t *jobs = NULL;
    void **cb_args = NULL;
    if (drover_model_schema(d, name, version, &sc, &derr) != 0) {
        drover_destroy(&d);
        return fail_d(&derr);
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
        rc = fail_dv(&err);
        goto done;
    }
    size_t rows = x->rows, cols = x->cols;
    size_t per = (size_t)batch;
    size_t frame_rows = ((size_t)1 << 27) / (cols * 4); // half a frame
    per = per < frame_rows ? per : (frame_rows ? frame_rows : 1);
    size_t n_batches = (rows + per - 1) / per;
    erc = dv_tensor_open(&st.pred, rows, sc.model.outputs, &err);
    if (erc) {
        rc = fail_dv(&err);
        goto done;
    }
    st.rows_per_batch = per;
    args = dv_calloc(n_batches, sizeof *args);
    jobs = dv_calloc(n_batches, sizeof *jobs);
    cb_args = dv_calloc(n_batches, sizeof *cb_args);
    double t0 = seconds_now();
    for (size_t b = 0; b < n_batches; b++) {
        drover_job_t job = DROVER_JOB_INIT;
        job.kind = "infer";
        job.queue = dv_cli_get(opts, "queue");
        job.model = pinned;
        job.input = x->data + b * per * cols;
        job.rows = b + 1 < n_batches ? per : rows - b * per;
        job.cols = cols;
        jobs[b] = job;
        args[b] = (infer_arg_t){&st, b};
        cb_args[b] = &args[b];
    }
    // Many batches in few messages (submit_many; one each to an older
    // broker), each still its own job and result.
    if (drover_submit_many_async(d, jobs, n_batches, on_infer_result, cb_args,
                                 &derr)) {
        rc = fail_d(&derr);
        goto done;
    }
    while (drover_pending(d) > 0) {
        if (drover_poll(d, 60000, &derr) < 0) {
            rc = fail_d(&derr);
            goto done;
        }
    }
    double secs = seconds_now() - t0;
    if (st.failed) {
        fprintf(stderr, "drover: %zu of %zu batches failed\n", st.failed,
                n_batches);
        rc = fail_d(&st.first);
        goto done;
    }
    fprintf(stderr, "drover: %zu rows in %zu jobs on %s: %.3f s\n", rows,
            n_batches, st.model, secs);
    if (!eval || out_path) {
        FILE *f = out_path ? fopen(out_path, "w") : stdout;
        if (!f) {
            dv_errorf(&err, DV_EIO, "%s: cannot write", out_path);
            rc = fail_dv(&err);
            goto done;
        }
        dv_cli_write_predictions(f, st.pred, st.n_classes ? st.classes : NULL,
                                 st.n_classes);
        if (f != stdout ? fclose(f) != 0 : fflush(f) != 0) {
            dv_errorf(&err, DV_EIO, "%s: write failed",
                      out_path ? out_path : "stdout");
            rc = fail_dv(&err);
            goto done;
        }
    }
    if (eval && print_eval(&sc, ds, st.pred, st.classes, st.n_classes,
                           dv_cli_get(opts, "json") != NULL, &err) != 0) {
        rc = fail_dv(&err);
        goto done;
    }
    rc = DV_CLI_OK;
done:
    free(args);
    free(jobs);
    free(cb_args);
    for (size_t c = 0; c < st.n_classes; c++) {
        free(st.classes[c]);
    }
    free(st.classes);
    dv_tensor_destroy(&st.pred);
    dv_tensor_destroy(&x);
    dv_dataset_destroy(&ds);
    drover_schema_clear(&sc);
    drover_destroy(&d);
    return rc;
}

// ---------------------------------------------------------------- submit

#define SUBMIT_USAGE                                                           \
    "usage: drover submit (--echo BYTES | --sleep MS [--echo BYTES]) "         \
    "[--count N] [--queue Q]\n"                                                \
    "         [--window N] [--no-wait] [--durability commit|none] "            \
    "[--priority P]\n"                                                         \
    "         [--deadline-ms N] [--timeout-ms N] [--max-attempts N] "          \
    "[--backoff-ms N]\n"                                                       \
    "         [--idempotency-key K] [--broker E] [--json]\n"                   \
    "Submits N jobs asynchronously (at most --window in flight, default "      \
    "10000): echo\n"                                                           \
    "jobs answer with BYTES bytes; sleep jobs wait MS first (a diagnostic "    \
    "job that\n"                                                               \
    "checks for cancel every 10 ms). Waits for every result and prints "       \
    "done/failed\n"                                                            \
    "and jobs/s; with --no-wait it returns once every job is accepted "        \
    "(stored, by\n"                                                            \
    "default) and prints their ids, one per line. --idempotency-key K sets "   \
    "the key\n"                                                                \
    "(K-1, K-2, ... with --count): resubmitting returns the same jobs. "       \
    "--backoff-ms 0\n"                                                         \
    "retries at once.\n"

typedef struct {
    size_t done, failed;
    drover_error_t first;
    uint64_t *ids; // --no-wait: accepted ids, in submit order
} submit_state_t;

typedef struct {
    submit_state_t *st;
    size_t index;
} submit_arg_t;

static void
on_submit_result(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    submit_arg_t *a = arg;
    submit_state_t *st = a->st;
    const char *text = "";
    int code = drover_result_error(r, &text);
    if (code) {
        if (st->failed++ == 0) {
            st->first.code = code;
            snprintf(st->first.text, sizeof st->first.text, "%s", text);
        }
    } else {
        st->done++;
        if (st->ids) {
            st->ids[a->index] = drover_result_job(r);
        }
    }
}

static bool
opt_long(const dv_cli_opt_t *opts, const char *name, long lo, long hi, long *v)
{
    const char *s = dv_cli_get(opts, name);
    if (!s) {
        return true;
    }
    char *end = NULL;
    long x = strtol(s, &end, 10);
    if (!*s || *end || x < lo || x > hi) {
        fprintf(stderr, "drover: --%s must be an integer in %ld..%ld\n", name,
                lo, hi);
        return false;
    }
    *v = x;
    return true;
}

static int
cmd_submit(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"echo", true, NULL},       {"count", true, NULL},
        {"queue", true, NULL},      {"window", true, NULL},
        {"broker", true, NULL},     {"json", false, NULL},
        {"durability", true, NULL}, {"help", false, NULL},
        {"sleep", true, NULL},      {"no-wait", false, NULL},
        {"priority", true, NULL},   {"deadline-ms", true, NULL},
        {"timeout-ms", true, NULL}, {"max-attempts", true, NULL},
        {"backoff-ms", true, NULL}, {"idempotency-key", true, NULL},
        {NULL, false, NULL},
    };
    size_t n_pos;
    int rc = parse(argc, argv, opts, NULL, 0, &n_pos, SUBMIT_USAGE);
    if (rc >= 0) {
        return rc;
    }
    const char *echo = dv_cli_get(opts, "echo");
    const char *sleep = dv_cli_get(opts, "sleep");
    long bytes = echo ? -1 : 0, count = 1, window = 10000, priority = 0;
    long deadline = 0, timeout = 0, attempts = 0, backoff = 0, sleep_ms = 0;
    if (!opt_long(opts, "echo", 0, 1L << 28, &bytes) ||
        !opt_long(opts, "count", 1, 100000000, &count) ||
        !opt_long(opts, "window", 1, 1000000, &window) ||
        !opt_long(opts, "priority", -1000, 1000, &priority) ||
        !opt_long(opts, "deadline-ms", 1, 7L * 86400000, &deadline) ||
        !opt_long(opts, "timeout-ms", 1, 7L * 86400000, &timeout) ||
        !opt_long(opts, "max-attempts", 1, 100, &attempts) ||
        !opt_long(opts, "backoff-ms", 0, 60000, &backoff) ||
        !opt_long(opts, "sleep", 0, 3600000, &sleep_ms) || (!echo && !sleep) ||
        bytes < 0) {
        fputs(SUBMIT_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    bool no_wait = dv_cli_get(opts, "no-wait") != NULL;
    const char *key = dv_cli_get(opts, "idempotency-key");
    drover_t *d = NULL;
    if ((rc = connect_to(opts, &d)) != 0) {
        return rc;
    }
    uint8_t *payload = dv_malloc(bytes ? (size_t)bytes : 1);
    memset(payload, 'x', (size_t)bytes);
    submit_state_t st = {0};
    submit_arg_t *args = dv_calloc((size_t)count, sizeof *args);
    if (no_wait) {
        st.ids = dv_calloc((size_t)count, sizeof *st.ids);
    }
    drover_error_t derr = {0};
    double t0 = seconds_now();
    rc = DV_CLI_OK;
    for (long i = 0; i < count && rc == DV_CLI_OK; i++) {
        while (drover_pending(d) >= (size_t)window) {
            if (drover_poll(d, 60000, &derr) < 0) {
                rc = fail_d(&derr);
                break;
            }
        }
        drover_job_t job = DROVER_JOB_INIT;
        job.queue = dv_cli_get(opts, "queue");
        job.kind = sleep ? "sleep" : "echo";
        job.sleep_ms = (uint32_t)sleep_ms;
        job.payload = payload;
        job.payload_len = (size_t)bytes;
        job.durability = dv_cli_get(opts, "durability");
        job.priority = (int32_t)priority;
        job.deadline_ms = (uint32_t)deadline;
        job.timeout_ms = (uint32_t)timeout;
        job.max_attempts = (uint32_t)attempts;
        job.backoff_ms = dv_cli_get(opts, "backoff-ms")
                             ? (backoff ? (int32_t)backoff : -1)
                             : 0;
        char keybuf[400];
        if (key) {
            if (count > 1) {
                snprintf(keybuf, sizeof keybuf, "%s-%ld", key, i + 1);
            } else {
                snprintf(keybuf, sizeof keybuf, "%s", key);
            }
            job.idempotency_key = keybuf;
        }
        args[i] = (submit_arg_t){&st, (size_t)i};
        if (rc == DV_CLI_OK &&
            (no_wait ? drover_submit_nowait(d, &job, on_submit_result, &args[i],
                                            &derr)
                     : drover_submit_async(d, &job, on_submit_result, &args[i],
                                           &derr))) {
            rc = fail_d(&derr);
        }
        drover_poll(d, 0, &derr); // take what is back, keep memory flat
    }
    while (rc == DV_CLI_OK && drover_pending(d) > 0) {
        if (drover_poll(d, 60000, &derr) < 0) {
            rc = fail_d(&derr);
        }
    }
    double secs = seconds_now() - t0;
    if (rc == DV_CLI_OK && no_wait) {
        bool json = dv_cli_get(opts, "json") != NULL;
        if (json) {
            printf("{\"accepted\":%zu,\"refused\":%zu,\"seconds\":%.6f,"
                   "\"jobs\":[",
                   st.done, st.failed, secs);
        }
        for (long i = 0, n = 0; i < count; i++) {
            if (st.ids[i]) {
                printf(json ? "%s%" PRIu64 : "%s%" PRIu64 "\n",
                       json && n++ ? "," : "", st.ids[i]);
            }
        }
        if (json) {
            printf("]}\n");
        }
        fprintf(stderr, "drover: %zu jobs accepted, %zu refused in %.3f s\n",
                st.done, st.failed, secs);
        if (st.failed) {
            fprintf(stderr, "drover: first refusal: %s: %s\n",
                    drover_err_name(st.first.code), st.first.text);
            rc = DV_CLI_FAIL;
        }
    } else if (rc == DV_CLI_OK) {
        double rate = secs > 0 ? (double)count / secs : 0;
        if (dv_cli_get(opts, "json")) {
            printf("{\"count\":%ld,\"done\":%zu,\"failed\":%zu,"
                   "\"seconds\":%.6f,\"jobs_per_s\":%.1f}\n",
                   count, st.done, st.failed, secs, rate);
        } else {
            printf("%ld jobs: %zu done, %zu failed in %.3f s (%.0f jobs/s)\n",
                   count, st.done, st.failed, secs, rate);
        }
        if (st.failed) {
            fprintf(stderr, "drover: first failure: %s: %s\n",
                    drover_err_name(st.first.code), st.first.text);
            rc = DV_CLI_FAIL;
        }
    }
    free(payload);
    free(args);
    free(st.ids);
    drover_destroy(&d);
    return rc;
}

// ---------------------------------------------------------------- models

#define MODELS_USAGE                                                           \
    "usage: drover models push FILE.drvm [--name NAME] [--sign]\n"             \
    "       drover models list\n"                                              \
    "       drover models show NAME[@VERSION]\n"                               \
    "       drover models rm NAME[@VERSION]     (no version: every version)\n" \
    "       drover models alias NAME@VERSION ALIAS   point ALIAS at it "       \
    "(rollback: again)\n"                                                      \
    "       drover models unalias NAME ALIAS\n"                                \
    "       drover models gc NAME --keep N   remove all but the newest N "     \
    "(aliased ones stay)\n"                                                    \
    "       drover models config NAME [--max-batch-rows N] [--max-delay-us "   \
    "N]\n"                                                                     \
    "                  dynamic batching: rows one forward pass may stack "     \
    "(default 256),\n"                                                         \
    "                  how long a batch may wait for more (default 0: "        \
    "never)\n"                                                                 \
    "NAME@ALIAS works wherever NAME@VERSION does (infer, show). --sign signs " \
    "the file\n"                                                               \
    "with --key (an admin key), as a broker run with --require-signed "        \
    "wants.\n"                                                                 \
    "all take [--broker E] [--json]\n"

static void
print_model_json(const drover_model_t *m)
{
    printf("{\"name\":");
    dv_cli_json_str(stdout, m->name);
    printf(",\"version\":%" PRIu32 ",\"sha256\":\"%s\",\"bytes\":%" PRIu64
           ",\"task\":\"%s\",\"algo\":\"%s\",\"features\":%" PRIu32
           ",\"outputs\":%" PRIu32 ",\"created_us\":%" PRIu64
           ",\"max_batch_rows\":%" PRIu32 ",\"max_delay_us\":%" PRIu32
           ",\"aliases\":[",
           m->version, m->sha256, m->bytes, m->task, m->algo, m->features,
           m->outputs, m->created_us, m->max_batch_rows, m->max_delay_us);
    for (const char *p = m->aliases; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        printf("%s\"%.*s\"", p == m->aliases ? "" : ",", (int)n, p);
        p = comma ? comma + 1 : p + n;
    }
    printf("]}");
}

static void
print_model_text(const drover_model_t *m)
{
    char when[32] = "";
    time_t t = (time_t)(m->created_us / 1000000);
    struct tm tm;
    if (gmtime_r(&t, &tm)) {
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%SZ", &tm);
    }
    char ref[200];
    snprintf(ref, sizeof ref, "%s@%" PRIu32, m->name, m->version);
    printf("%-24s %-14s %-8s %8" PRIu32 " %8" PRIu32 " %10" PRIu64
           "  %.12s  %s  %s\n",
           ref, m->task, m->algo, m->features, m->outputs, m->bytes, m->sha256,
           when, m->aliases);
}

// A version's lineage (drover models show), when it has one.
static void
print_lineage_json(const drover_lineage_t *g)
{
    if (!g->has) {
        return;
    }
    if (!g->job) {
        printf(",\"lineage\":{\"pushed_by\":");
        dv_cli_json_str(stdout, g->pushed_by);
        printf(",\"signed_by\":");
        dv_cli_json_str(stdout, g->signed_by);
        printf("}");
        return;
    }
    printf(",\"lineage\":{\"job\":%" PRIu64 ",\"worker\":", g->job);
    dv_cli_json_str(stdout, g->worker);
    printf(",\"attempts\":%" PRIu32 ",\"resumed_from\":%" PRIu32
           ",\"submitted_unix_ms\":%" PRIu64 ",\"finished_unix_ms\":%" PRIu64
           ",\"train_ms\":%" PRIu64 ",\"epochs_run\":%" PRIu32 ",\"dataset\":",
           g->attempts, g->resumed_from, g->submitted_unix_ms,
           g->finished_unix_ms, g->train_ms, g->epochs_run);
    dv_cli_json_str(stdout, g->dataset);
    printf(",\"data_sha256\":\"%s\",\"data_rows\":%" PRIu64
           ",\"algo\":\"%s\",\"hyper\":",
           g->data_sha256, g->data_rows, g->algo);
    dv_cli_json_str(stdout, g->hyper);
    printf(",\"seed\":%" PRIu64 ",\"eval_dataset\":", g->seed);
    dv_cli_json_str(stdout, g->eval_dataset);
    printf(",\"eval\":{");
    for (size_t i = 0; i < g->n_eval; i++) {
        printf("%s\"%s\":%.6g", i ? "," : "", g->eval_names[i],
               g->eval_values[i]);
    }
    printf("}}");
}

static void
print_lineage_text(const drover_lineage_t *g)
{
    if (!g->has) {
        printf("lineage  none (pushed as a file)\n");
        return;
    }
    if (!g->job) {
        printf("lineage  pushed as a file by %s%s%s\n",
               g->pushed_by[0] ? g->pushed_by : "-",
               g->signed_by[0] ? ", signed by " : ", unsigned", g->signed_by);
        return;
    }
    printf("lineage  job %" PRIu64 " on %s, %" PRIu32 " attempt(s)", g->job,
           g->worker, g->attempts);
    if (g->resumed_from) {
        printf(", resumed from the checkpoint after epoch %" PRIu32,
               g->resumed_from);
    }
    printf("\n         data %s (%" PRIu64 " rows, sha256 %.16s)\n",
           g->dataset[0] ? g->dataset : "sent with the job", g->data_rows,
           g->data_sha256);
    printf("         %s %s\n", g->algo, g->hyper);
    printf("         %" PRIu32 " epochs in %.1f s\n", g->epochs_run,
           g->train_ms / 1000.0);
    if (g->eval_dataset[0]) {
        printf("         eval on %s:", g->eval_dataset);
        for (size_t i = 0; i < g->n_eval; i++) {
            printf(" %s %.4g", g->eval_names[i], g->eval_values[i]);
        }
        printf("\n");
    }
}

static void
print_model_header(void)
{
    printf("%-24s %-14s %-8s %8s %8s %10s  %-12s  %-20s  %s\n", "MODEL", "TASK",
           "ALGO", "FEATURES", "OUTPUTS", "BYTES", "SHA256", "CREATED",
           "ALIASES");
}

static int
cmd_models(int argc, char **argv)
{
    if (argc < 1) {
        fputs(MODELS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    const char *sub = argv[0];
    dv_cli_opt_t opts[] = {
        {"name", true, NULL},
        {"broker", true, NULL},
        {"json", false, NULL},
        {"help", false, NULL},
        {"keep", true, NULL},
        {"sign", false, NULL},
        {"max-batch-rows", true, NULL},
        {"max-delay-us", true, NULL},
        {NULL, false, NULL},
    };
    const char *pos[2];
    size_t n_pos = 0;
    int rc = parse(argc - 1, argv + 1, opts, pos, 2, &n_pos, MODELS_USAGE);
    if (rc >= 0) {
        return rc;
    }
    bool json = dv_cli_get(opts, "json") != NULL;
    bool list = strcmp(sub, "list") == 0;
    bool alias = strcmp(sub, "alias") == 0,
         unalias = strcmp(sub, "unalias") == 0;
    if (strcmp(sub, "gc") == 0) {
        const char *keep = dv_cli_get(opts, "keep");
        if (n_pos != 1 || !keep || atoi(keep) < 1) {
            fputs(MODELS_USAGE, stderr);
            return DV_CLI_USAGE;
        }
        drover_t *d = NULL;
        if ((rc = connect_to(opts, &d)) != 0) {
            return rc;
        }
        drover_error_t err = {0};
        uint32_t removed[4096];
        size_t n = 0;
        rc = drover_model_gc(d, pos[0], (uint32_t)atoi(keep), removed, 4096, &n,
                             &err);
        if (rc == 0) {
            if (json) {
                printf("{\"removed\":[");
            } else {
                printf("removed %zu version(s):", n);
            }
            for (size_t i = 0; i < n; i++) {
                printf(json ? "%s%" PRIu32 : "%s %" PRIu32,
                       json && i ? "," : "", removed[i]);
            }
            printf(json ? "]}\n" : "\n");
        }
        drover_destroy(&d);
        return rc ? fail_d(&err) : DV_CLI_OK;
    }
    if (strcmp(sub, "config") == 0) {
        const char *vals[2] = {dv_cli_get(opts, "max-batch-rows"),
                               dv_cli_get(opts, "max-delay-us")};
        int64_t set[2] = {-1, -1};
        for (size_t i = 0; i < 2; i++) {
            char *end = NULL;
            if (vals[i]) {
                long long v = strtoll(vals[i], &end, 10);
                if (!*vals[i] || *end || v < 0) {
                    fprintf(stderr,
                            "drover: --%s wants a whole number >= 0, not "
                            "'%s'\n",
                            i ? "max-delay-us" : "max-batch-rows", vals[i]);
                    return DV_CLI_USAGE;
                }
                set[i] = v;
            }
        }
        if (n_pos != 1) {
            fputs(MODELS_USAGE, stderr);
            return DV_CLI_USAGE;
        }
        drover_t *d = NULL;
        if ((rc = connect_to(opts, &d)) != 0) {
            return rc;
        }
        drover_error_t err = {0};
        uint32_t rows = 0, delay = 0;
        rc =
            drover_model_config(d, pos[0], set[0], set[1], &rows, &delay, &err);
        if (rc == 0 && json) {
            printf("{\"name\":");
            dv_cli_json_str(stdout, pos[0]);
            printf(",\"max_batch_rows\":%" PRIu32 ",\"max_delay_us\":%" PRIu32
                   "}\n",
                   rows, delay);
        } else if (rc == 0) {
            printf("%s: max_batch_rows %" PRIu32 ", max_delay_us %" PRIu32 "\n",
                   pos[0], rows, delay);
        }
        drover_destroy(&d);
        return rc ? fail_d(&err) : DV_CLI_OK;
    }
    if (!list && !alias && !unalias && strcmp(sub, "push") != 0 &&
        strcmp(sub, "show") != 0 && strcmp(sub, "rm") != 0) {
        fputs(MODELS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    if (list ? n_pos != 0 : alias || unalias ? n_pos != 2 : n_pos != 1) {
        fputs(MODELS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    if (alias || unalias) {
        char name[256] = "";
        uint32_t version = 0;
        if (unalias) {
            snprintf(name, sizeof name, "%s", pos[0]);
        } else if ((rc = split_ref(pos[0], name, sizeof name, &version)) != 0 ||
                   version == 0) {
            fprintf(stderr, "drover: models alias needs NAME@VERSION\n");
            return DV_CLI_USAGE;
        }
        drover_t *d = NULL;
        if ((rc = connect_to(opts, &d)) != 0) {
            return rc;
        }
        drover_error_t err = {0};
        uint32_t previous = 0;
        rc = drover_model_alias(d, name, pos[1], version, &previous, &err);
        if (rc == 0 && json) {
            printf("{\"name\":");
            dv_cli_json_str(stdout, name);
            printf(",\"alias\":");
            dv_cli_json_str(stdout, pos[1]);
            printf(",\"version\":%" PRIu32 ",\"previous\":%" PRIu32 "}\n",
                   version, previous);
        } else if (rc == 0 && alias) {
            if (previous) {
                printf("%s@%s -> version %" PRIu32 " (was %" PRIu32 ")\n", name,
                       pos[1], version, previous);
            } else {
                printf("%s@%s -> version %" PRIu32 " (new)\n", name, pos[1],
                       version);
            }
        } else if (rc == 0) {
            printf("%s@%s removed (it named version %" PRIu32 ")\n", name,
                   pos[1], previous);
        }
        drover_destroy(&d);
        return rc ? fail_d(&err) : DV_CLI_OK;
    }
    char name[256] = "";
    uint32_t version = 0;
    if (!list && strcmp(sub, "push") == 0) {
        const char *nm = dv_cli_get(opts, "name");
        if (nm) {
            snprintf(name, sizeof name, "%s", nm);
        } else { // FILE's base name without .drvm
            const char *base = strrchr(pos[0], '/');
            snprintf(name, sizeof name, "%s", base ? base + 1 : pos[0]);
            char *dot = strstr(name, ".drvm");
            if (dot && dot[5] == '\0') {
                *dot = '\0';
            }
        }
    } else if (!list &&
               (rc = split_ref(pos[0], name, sizeof name, &version)) != 0) {
        return rc;
    }
    drover_t *d = NULL;
    if ((rc = connect_to(opts, &d)) != 0) {
        return rc;
    }
    drover_error_t err = {0};
    drover_model_t m;
    if (strcmp(sub, "push") == 0) {
        const char *key = getenv("DROVER_KEY");
        if (dv_cli_get(opts, "sign") && (!key || !*key)) {
            fprintf(stderr, "drover: --sign signs with --key FILE.key (or "
                            "DROVER_KEY): give an admin key\n");
            drover_destroy(&d);
            return DV_CLI_USAGE;
        }
        rc = dv_cli_get(opts, "sign")
                 ? drover_model_push_signed(d, pos[0], name, key, &m, &err)
                 : drover_model_push(d, pos[0], name, &m, &err);
        if (rc == 0 && json) {
            print_model_json(&m);
            printf("\n");
        } else if (rc == 0) {
            printf("stored %s@%" PRIu32 " (%s %s, %" PRIu32
                   " features, %" PRIu64 " bytes, sha256 %.16s)\n",
                   m.name, m.version, m.task, m.algo, m.features, m.bytes,
                   m.sha256);
        }
    } else if (list) {
        drover_model_t *all = NULL;
        size_t n = 0;
        rc = drover_model_list(d, &all, &n, &err);
        if (rc == 0 && json) {
            printf("[");
            for (size_t i = 0; i < n; i++) {
                printf(i ? "," : "");
                print_model_json(&all[i]);
            }
            printf("]\n");
        } else if (rc == 0) {
            print_model_header();
            for (size_t i = 0; i < n; i++) {
                print_model_text(&all[i]);
            }
        }
        free(all);
    } else if (strcmp(sub, "show") == 0) {
        drover_schema_t sc;
        rc = drover_model_schema(d, name, version, &sc, &err);
        if (rc == 0 && json) {
            printf("{\"model\":");
            print_model_json(&sc.model);
            printf(",\"target\":");
            dv_cli_json_str(stdout, sc.target);
            printf(",\"features\":[");
            for (size_t i = 0; i < sc.n_features; i++) {
                printf(i ? "," : "");
                dv_cli_json_str(stdout, sc.features[i]);
            }
            printf("],\"classes\":[");
            for (size_t i = 0; i < sc.n_classes; i++) {
                printf(i ? "," : "");
                dv_cli_json_str(stdout, sc.classes[i]);
            }
            printf("]");
            print_lineage_json(&sc.lineage);
            printf("}\n");
        } else if (rc == 0) {
            print_model_header();
            print_model_text(&sc.model);
            printf("sha256   %s\ntarget   %s\nfeatures", sc.model.sha256,
                   sc.target);
            for (size_t i = 0; i < sc.n_features; i++) {
                printf(" %s", sc.features[i]);
            }
            if (sc.n_classes) {
                printf("\nclasses ");
                for (size_t i = 0; i < sc.n_classes; i++) {
                    printf(" %s", sc.classes[i]);
                }
            }
            printf("\nbatching max_batch_rows %" PRIu32
                   ", max_delay_us %" PRIu32 "\n",
                   sc.model.max_batch_rows, sc.model.max_delay_us);
            print_lineage_text(&sc.lineage);
        }
        if (rc == 0) {
            drover_schema_clear(&sc);
        }
    } else {
        unsigned removed = 0;
        rc = drover_model_rm(d, name, version, &removed, &err);
        if (rc == 0) {
            printf(json ? "{\"removed\":%u}\n" : "removed %u version(s)\n",
                   removed);
        }
    }
    drover_destroy(&d);
    return rc ? fail_d(&err) : DV_CLI_OK;
}

// ------------------------------------------------------------------ jobs

// Failed attempts, as JSON (`,"errors":[...]`) or indented lines.
static void
print_errors_json(FILE *f, const drover_attempt_error_t *e, size_t n)
{
    fprintf(f, ",\"errors\":[");
    for (size_t i = 0; i < n; i++) {
        fprintf(f,
                "%s{\"attempt\":%" PRIu32 ",\"error\":\"%s\",\"at_ms\":%" PRIu64
                ",\"worker\":",
                i ? "," : "", e[i].attempt, drover_err_name(e[i].code),
                e[i].at_ms);
        dv_cli_json_str(f, e[i].worker);
        fprintf(f, ",\"text\":");
        dv_cli_json_str(f, e[i].text);
        fprintf(f, "}");
    }
    fprintf(f, "]");
}

static void
print_errors_text(FILE *f, const drover_attempt_error_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "  attempt %" PRIu32 ": %s: %s%s%s%s\n", e[i].attempt,
                drover_err_name(e[i].code), e[i].text,
                e[i].worker[0] ? " (worker " : "", e[i].worker,
                e[i].worker[0] ? ")" : "");
    }
}

// A progress line: a redrawn bar on a terminal, JSON lines with --json.
typedef struct {
    bool json, tty, drawn;
} progress_out_t;

static void
print_progress(progress_out_t *o, const drover_progress_t *p)
{
    uint32_t epoch = p->epoch, epochs = p->epochs;
    if (o->json) {
        printf("{\"job\":%" PRIu64 ",\"epoch\":%" PRIu32 ",\"epochs\":%" PRIu32
               ",\"loss\":%.6g,\"ms\":%" PRIu64 ",\"eta_ms\":%" PRIu64,
               p->job, epoch, epochs, p->loss, p->ms, p->eta_ms);
        if (!isnan(p->eval)) {
            printf(",\"eval\":%.6g", p->eval);
        }
        printf("}\n");
        fflush(stdout);
    } else if (o->tty) {
        int width = 24,
            done = epochs ? (int)((uint64_t)width * epoch / epochs) : width;
        char bar[32];
        for (int i = 0; i < width; i++) {
            bar[i] = i < done ? '#' : '.';
        }
        bar[width] = '\0';
        char ev[32] = "";
        if (!isnan(p->eval)) {
            snprintf(ev, sizeof ev, "  eval %.4f", p->eval);
        }
        fprintf(stderr,
                "\r  [%s] epoch %" PRIu32 "/%" PRIu32
                "  loss %.6f%s  %.1fs  ETA %.0fs   ",
                bar, epoch, epochs, p->loss, ev, p->ms / 1000.0,
                p->eta_ms / 1000.0);
        fflush(stderr);
        o->drawn = true;
    }
}

#define JOBS_USAGE                                                             \
    "usage: drover jobs show ID      where the job is (queued, running, "      \
    "retrying, done,\n"                                                        \
    "                                failed, dead, expired, cancelled)\n"      \
    "       drover jobs list [--state S] [--queue Q] [--limit N]\n"            \
    "       drover jobs watch ID     follow it until it ends (training: "      \
    "progress bar,\n"                                                          \
    "                                JSON lines with --json)\n"                \
    "       drover jobs cancel ID    end a queued or running job now "         \
    "(DV_ECANCELED)\n"                                                         \
    "       drover jobs result ID [--wait-ms N] [--out FILE]\n"                \
    "                                its result: an echo payload as bytes, "   \
    "infer\n"                                                                  \
    "                                outputs as CSV (as `drover infer`)\n"     \
    "all take [--broker E] [--json]\n"

static int
cmd_jobs(int argc, char **argv)
{
    if (argc < 1) {
        fputs(JOBS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    const char *sub = argv[0];
    dv_cli_opt_t opts[] = {
        {"wait-ms", true, NULL}, {"out", true, NULL},   {"broker", true, NULL},
        {"json", false, NULL},   {"help", false, NULL}, {"state", true, NULL},
        {"queue", true, NULL},   {"limit", true, NULL}, {NULL, false, NULL},
    };
    const char *pos[1];
    size_t n_pos = 0;
    int rc = parse(argc - 1, argv + 1, opts, pos, 1, &n_pos, JOBS_USAGE);
    if (rc >= 0) {
        return rc;
    }
    if (strcmp(sub, "list") == 0) {
        if (n_pos != 0) {
            fputs(JOBS_USAGE, stderr);
            return DV_CLI_USAGE;
        }
        drover_t *d = NULL;
        if ((rc = connect_to(opts, &d)) != 0) {
            return rc;
        }
        drover_error_t err = {0};
        drover_job_info_t *v = NULL;
        size_t n = 0;
        const char *lim = dv_cli_get(opts, "limit");
        rc = drover_job_list(d, dv_cli_get(opts, "state"),
                             dv_cli_get(opts, "queue"),
                             lim ? (unsigned)atoi(lim) : 0, &v, &n, &err);
        bool json = dv_cli_get(opts, "json") != NULL;
        if (rc == 0 && json) {
            printf("[");
            for (size_t i = 0; i < n; i++) {
                printf("%s{\"job\":%" PRIu64 ",\"state\":\"%s\","
                       "\"attempts\":%" PRIu32,
                       i ? "," : "", v[i].job, v[i].state, v[i].attempts);
                if (v[i].queue[0]) {
                    printf(",\"queue\":");
                    dv_cli_json_str(stdout, v[i].queue);
                    printf(",\"kind\":\"%s\",\"priority\":%" PRId32, v[i].kind,
                           v[i].priority);
                }
                printf("}");
            }
            printf("]\n");
        } else if (rc == 0) {
            printf("%-10s %-9s %8s  %-20s %-6s %s\n", "JOB", "STATE",
                   "ATTEMPTS", "QUEUE", "KIND", "PRIORITY");
            for (size_t i = 0; i < n; i++) {
                printf("%-10" PRIu64 " %-9s %8" PRIu32 "  %-20s %-6s ",
                       v[i].job, v[i].state, v[i].attempts, v[i].queue,
                       v[i].kind);
                if (v[i].queue[0]) {
                    printf("%" PRId32, v[i].priority);
                }
                printf("\n");
            }
        }
        free(v);
        drover_destroy(&d);
        return rc ? fail_d(&err) : DV_CLI_OK;
    }
    char *end = NULL;
    unsigned long long id = n_pos == 1 ? strtoull(pos[0], &end, 10) : 0;
    if (n_pos != 1 || *end || id == 0 ||
        (strcmp(sub, "show") != 0 && strcmp(sub, "result") != 0 &&
         strcmp(sub, "cancel") != 0 && strcmp(sub, "watch") != 0)) {
        fputs(JOBS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    bool json = dv_cli_get(opts, "json") != NULL;
    drover_t *d = NULL;
    if ((rc = connect_to(opts, &d)) != 0) {
        return rc;
    }
    drover_error_t err = {0};
    if (strcmp(sub, "cancel") == 0) {
        char was[16] = "";
        rc = drover_job_cancel(d, id, was, &err);
        if (rc == 0) {
            printf(json ? "{\"job\":%llu,\"cancelled\":true,\"was\":\"%s\"}\n"
                        : "job %llu cancelled (it was %s)\n",
                   id, was);
        }
        drover_destroy(&d);
        return rc ? fail_d(&err) : DV_CLI_OK;
    }
    if (strcmp(sub, "watch") == 0) {
        progress_out_t po = {json, isatty(STDERR_FILENO) == 1, false};
        drover_job_info_t info;
        uint32_t last_epoch = UINT32_MAX;
        char last_state[16] = "";
        for (;;) {
            rc = drover_job_info(d, id, &info, &err);
            if (rc) {
                break;
            }
            bool over = strcmp(info.state, "queued") != 0 &&
                        strcmp(info.state, "running") != 0 &&
                        strcmp(info.state, "retrying") != 0;
            if (info.epochs && info.epoch != last_epoch) {
                uint64_t eta = info.epoch
                                   ? info.progress_ms *
                                         (info.epochs - info.epoch) / info.epoch
                                   : 0;
                drover_progress_t pg = {
                    id,  info.epoch, info.epochs, info.loss, info.progress_ms,
                    eta, info.eval};
                print_progress(&po, &pg);
                last_epoch = info.epoch;
            }
            if (strcmp(info.state, last_state) != 0 && (json || !po.tty)) {
                printf(json ? "{\"job\":%llu,\"state\":\"%s\"}\n"
                            : "job %llu: %s\n",
                       id, info.state);
                fflush(stdout);
            }
            snprintf(last_state, sizeof last_state, "%s", info.state);
            if (over) {
                if (po.drawn) {
                    fprintf(stderr, "\n");
                }
                if (po.tty && !json) {
                    printf("job %llu: %s\n", id, info.state);
                }
                drover_destroy(&d);
                return strcmp(info.state, "done") == 0 ? DV_CLI_OK
                                                       : DV_CLI_FAIL;
            }
            struct timespec ts = {0, 200 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        drover_destroy(&d);
        return fail_d(&err);
    }
    if (strcmp(sub, "show") == 0) {
        drover_job_info_t info;
        rc = drover_job_info(d, id, &info, &err);
        if (rc == 0 && json) {
            printf("{\"job\":%" PRIu64
                   ",\"state\":\"%s\",\"attempts\":%" PRIu32,
                   info.job, info.state, info.attempts);
            if (info.queue[0]) {
                printf(",\"queue\":");
                dv_cli_json_str(stdout, info.queue);
                printf(",\"kind\":\"%s\",\"priority\":%" PRId32, info.kind,
                       info.priority);
            }
            if (info.epochs) {
                printf(",\"epoch\":%" PRIu32 ",\"epochs\":%" PRIu32
                       ",\"loss\":%.6g",
                       info.epoch, info.epochs, info.loss);
            }
            if (info.model[0]) {
                printf(",\"model\":");
                dv_cli_json_str(stdout, info.model);
            }
            if (info.batch_jobs) {
                printf(",\"batch\":{\"rows\":%" PRIu32 ",\"jobs\":%" PRIu32 "}",
                       info.batch_rows, info.batch_jobs);
            }
            if (info.checkpoint_epoch) {
                printf(",\"checkpoint\":{\"epoch\":%" PRIu32
                       ",\"bytes\":%" PRIu64 ",\"stored_epoch\":%" PRIu32 "}",
                       info.checkpoint_epoch, info.checkpoint_bytes,
                       info.checkpoint_stored_epoch);
            }
            printf("}\n");
        } else if (rc == 0) {
            printf("job %" PRIu64 ": %s after %" PRIu32 " attempt(s)%s%s%s%s",
                   info.job, info.state, info.attempts,
                   info.queue[0] ? ", queue " : "", info.queue,
                   info.kind[0] ? ", kind " : "", info.kind);
            if (info.queue[0]) {
                printf(", priority %" PRId32, info.priority);
            }
            if (info.epochs) {
                printf(", epoch %" PRIu32 "/%" PRIu32 " (loss %.6g)",
                       info.epoch, info.epochs, info.loss);
            }
            if (info.model[0]) {
                printf(", ran %s", info.model);
            }
            if (info.batch_jobs) {
                printf(" in a pass of %" PRIu32 " row(s), %" PRIu32 " job(s)",
                       info.batch_rows, info.batch_jobs);
            }
            if (info.checkpoint_epoch) {
                printf(", checkpoint after epoch %" PRIu32 " (%" PRIu64
                       " bytes; stored: %s)",
                       info.checkpoint_epoch, info.checkpoint_bytes,
                       info.checkpoint_stored_epoch == info.checkpoint_epoch
                           ? "yes"
                       : info.checkpoint_stored_epoch ? "an older one"
                                                      : "no");
            }
            printf("\n");
        }
        drover_destroy(&d);
        return rc ? fail_d(&err) : DV_CLI_OK;
    }
    int wait_ms =
        dv_cli_get(opts, "wait-ms") ? atoi(dv_cli_get(opts, "wait-ms")) : 0;
    drover_result_t *r = NULL;
    rc = drover_wait(d, id, wait_ms, &r, &err);
    if (rc) {
        drover_destroy(&d);
        return fail_d(&err);
    }
    const char *text = "";
    int code = drover_result_error(r, &text);
    size_t rows = 0, cols = 0, len = 0;
    const float *out = drover_result_output(r, &rows, &cols);
    const void *payload = drover_result_payload(r, &len);
    const char *out_path = dv_cli_get(opts, "out");
    FILE *f = out_path ? fopen(out_path, "w") : stdout;
    if (!f) {
        fprintf(stderr, "drover: cannot write %s\n", out_path);
        drover_result_destroy(&r);
        drover_destroy(&d);
        return DV_CLI_FAIL;
    }
    if (json) {
        fprintf(f,
                "{\"job\":%" PRIu64 ",\"state\":\"%s\",\"attempts\":%" PRIu32
                ",\"worker\":",
                drover_result_job(r), drover_result_state(r),
                drover_result_attempts(r));
        dv_cli_json_str(f, drover_result_worker(r));
        const drover_attempt_error_t *errs = NULL;
        size_t n_errs = drover_result_errors(r, &errs);
        if (n_errs) {
            print_errors_json(f, errs, n_errs);
        }
        if (code) {
            fprintf(f, ",\"error\":{\"name\":\"%s\",\"text\":",
                    drover_err_name(code));
            dv_cli_json_str(f, text);
            fprintf(f, "}");
        } else if (out) {
            fprintf(f, ",\"model\":");
            dv_cli_json_str(f, drover_result_model(r));
            fprintf(f, ",\"rows\":%zu,\"cols\":%zu", rows, cols);
            uint32_t b_rows = 0, b_jobs = 0;
            if (drover_result_batch(r, &b_rows, &b_jobs)) {
                fprintf(
                    f, ",\"batch\":{\"rows\":%" PRIu32 ",\"jobs\":%" PRIu32 "}",
                    b_rows, b_jobs);
            }
        } else {
            fprintf(f, ",\"payload_bytes\":%zu", len);
        }
        fprintf(f, "}\n");
    } else if (code) {
        fprintf(stderr, "drover: job %llu failed: %s: %s\n", id,
                drover_err_name(code), text);
        const drover_attempt_error_t *errs = NULL;
        size_t n_errs = drover_result_errors(r, &errs);
        print_errors_text(stderr, errs, n_errs);
    } else if (out) {
        dv_tensor_t view = {.rows = rows, .cols = cols, .data = (float *)out};
        size_t k = drover_result_n_classes(r);
        char **labels = k ? dv_calloc(k, sizeof(char *)) : NULL;
        for (size_t c = 0; c < k; c++) {
            labels[c] = (char *)drover_result_class(r, c);
        }
        dv_cli_write_predictions(f, &view, labels, k);
        free(labels);
    } else if (len) {
        fwrite(payload, 1, len, f);
    }
    if (f != stdout) {
        fclose(f);
    }
    drover_result_destroy(&r);
    drover_destroy(&d);
    return code && !json ? DV_CLI_FAIL : DV_CLI_OK;
}

// ---------------------------------------------------------------- train

#define TRAIN_USAGE                                                            \
    "usage: drover train (--data FILE.csv | --dataset NAME[@V]) --algo ALGO "  \
    "--model NAME\n"                                                           \
    "        "                                                                 \
    "[--target COL] [--task T]\n"                                              \
    "         [--epochs N] [--batch N] [--patience N] [--seed N] [--lr X] "    \
    "[--l2 X] [--tol X]\n"                                                     \
    "         [--scale S] [--hidden 64,32] [--checkpoint-ms N] [--queue Q]\n"  \
    "         [--eval-dataset NAME[@V]]\n"                                     \
    "         [--broker E] [--json]\n"                                         \
    "Trains on a worker through the queue (the options of `drover local "      \
    "train`) and\n"                                                            \
    "registers the model as the next version of NAME. With "                   \
    "SOURCE_DATE_EPOCH set, the\n"                                             \
    "file is byte for byte what `drover local train` writes. The worker "      \
    "checkpoints\n"                                                            \
    "every --checkpoint-ms (default 10000, 0: never); if it dies, another "    \
    "worker\n"                                                                 \
    "goes on from the last checkpoint, to the same model. --eval-dataset "     \
    "scores the model\n"                                                       \
    "on a stored data set as it trains (progress) and at the end (its "        \
    "lineage:\n"                                                               \
    "drover models show NAME@V).\n"

static void
on_train_progress(const drover_progress_t *p, void *arg)
{
    print_progress(arg, p);
}

static int
cmd_train(int argc, char **argv)
{
    static const char *hyper[] = {"epochs", "batch", "patience", "seed",  "lr",
                                  "l2",     "tol",   "scale",    "hidden"};
    dv_cli_opt_t opts[] = {
        {"data", true, NULL},         {"algo", true, NULL},
        {"model", true, NULL},        {"target", true, NULL},
        {"task", true, NULL},         {"queue", true, NULL},
        {"broker", true, NULL},       {"json", false, NULL},
        {"help", false, NULL},        {"epochs", true, NULL},
        {"batch", true, NULL},        {"patience", true, NULL},
        {"seed", true, NULL},         {"lr", true, NULL},
        {"l2", true, NULL},           {"tol", true, NULL},
        {"scale", true, NULL},        {"hidden", true, NULL},
        {"dataset", true, NULL},      {"checkpoint-ms", true, NULL},
        {"eval-dataset", true, NULL}, {NULL, false, NULL},
    };
    size_t n_pos = 0;
    int rc = parse(argc, argv, opts, NULL, 0, &n_pos, TRAIN_USAGE);
    if (rc >= 0) {
        return rc;
    }
    const char *data = dv_cli_get(opts, "data");
    const char *dataset = dv_cli_get(opts, "dataset");
    if (!data == !dataset || !dv_cli_get(opts, "algo") ||
        !dv_cli_get(opts, "model")) {
        fputs(TRAIN_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    char options[9][160];
    const char *option_ptrs[9];
    size_t n_options = 0;
    for (size_t i = 0; i < 9; i++) {
        const char *v = dv_cli_get(opts, hyper[i]);
        if (v) {
            snprintf(options[n_options], sizeof options[0], "%s=%s", hyper[i],
                     v);
            option_ptrs[n_options] = options[n_options];
            n_options++;
        }
    }
    dv_error_t derr = {0};
    uint8_t *csv = NULL;
    size_t csv_len = 0;
    if (data && dv_file_read(data, (size_t)1 << 28, &csv, &csv_len, &derr)) {
        return fail_dv(&derr);
    }
    drover_train_t t = {0};
    t.dataset = dataset;
    t.eval_dataset = dv_cli_get(opts, "eval-dataset");
    t.queue = dv_cli_get(opts, "queue");
    t.model = dv_cli_get(opts, "model");
    t.algo = dv_cli_get(opts, "algo");
    t.csv = csv;
    t.csv_len = csv_len;
    t.target = dv_cli_get(opts, "target");
    t.task = dv_cli_get(opts, "task");
    t.options = option_ptrs;
    t.n_options = n_options;
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    t.created_unix = sde ? atoll(sde) : 0;
    const char *ck = dv_cli_get(opts, "checkpoint-ms");
    if (ck) {
        long long v = atoll(ck);
        t.checkpoint_ms = v > 0 ? v : -1;
    }
    progress_out_t po = {dv_cli_get(opts, "json") != NULL,
                         isatty(STDERR_FILENO) == 1, false};
    t.progress = on_train_progress;
    t.progress_arg = &po;
    drover_t *d = NULL;
    if ((rc = connect_to(opts, &d)) != 0) {
        free(csv);
        return rc;
    }
    drover_error_t err = {0};
    drover_result_t *r = NULL;
    double t0 = seconds_now();
    rc = drover_train(d, &t, -1, &r, &err);
    double secs = seconds_now() - t0;
    if (po.drawn) {
        fputc('\n', stderr);
    }
    free(csv);
    if (rc == 0) {
        const char *text = "";
        int code = drover_result_error(r, &text);
        if (code) {
            err.code = code;
            snprintf(err.text, sizeof err.text, "%s", text);
            rc = code;
        } else if (dv_cli_get(opts, "json")) {
            printf("{\"job\":%" PRIu64 ",\"model\":", drover_result_job(r));
            dv_cli_json_str(stdout, drover_result_model(r));
            printf(",\"worker\":");
            dv_cli_json_str(stdout, drover_result_worker(r));
            printf(",\"attempts\":%" PRIu32 ",\"seconds\":%.3f}\n",
                   drover_result_attempts(r), secs);
        } else {
            printf("trained %s on worker %s (job %" PRIu64 ", %.2f s)\n",
                   drover_result_model(r), drover_result_worker(r),
                   drover_result_job(r), secs);
        }
    }
    drover_result_destroy(&r);
    drover_destroy(&d);
    return rc ? fail_d(&err) : DV_CLI_OK;
}

// ------------------------------------------------------------ data sets

#define DATASETS_USAGE                                                         \
    "usage: drover datasets push FILE.csv [--name NAME]   store a version "    \
    "(validated)\n"                                                            \
    "       drover datasets list | show NAME[@VERSION]\n"                      \
    "       drover datasets rm NAME[@VERSION]            (no version: all)\n"  \
    "       drover datasets share NAME --with KEY[,KEY...]  who else may "     \
    "read it\n"                                                                \
    "                                     ('*': every key; '': owner only)\n"  \
    "all take [--broker E] [--json]; `drover train --dataset NAME[@V]` "       \
    "trains on one.\n"

static void
print_dataset(const drover_dataset_t *d, bool json)
{
    if (json) {
        printf("{\"name\":");
        dv_cli_json_str(stdout, d->name);
        printf(",\"version\":%" PRIu32 ",\"sha256\":\"%s\",\"bytes\":%" PRIu64
               ",\"rows\":%" PRIu64 ",\"columns\":%" PRIu32 ",\"target\":",
               d->version, d->sha256, d->bytes, d->rows, d->columns);
        dv_cli_json_str(stdout, d->target);
        printf(",\"created_us\":%" PRIu64 "}", d->created_us);
    } else {
        char ref[200];
        snprintf(ref, sizeof ref, "%s@%" PRIu32, d->name, d->version);
        printf("%-24s %8" PRIu64 " %8" PRIu32 " %10" PRIu64 "  %-16s %.12s\n",
               ref, d->rows, d->columns, d->bytes, d->target, d->sha256);
    }
}

// `drover datasets share NAME --with LIST`: LIST split at commas ("": no
// one besides the owner).
static int
share_dataset(drover_t *d,
              const char *name,
              const char *with,
              bool json,
              drover_error_t *err)
{
    char *copy = dv_strdup(with);
    const char *readers[DV_MAX_READERS + 1]; // one more: the broker refuses
    size_t n = 0;
    char *save = NULL;
    for (char *id = strtok_r(copy, ",", &save); id && n <= DV_MAX_READERS;
         id = strtok_r(NULL, ",", &save)) {
        readers[n++] = id;
    }
    int rc = drover_dataset_share(d, name, readers, n, err);
    if (rc == 0 && json) {
        printf("{\"name\":");
        dv_cli_json_str(stdout, name);
        printf(",\"readers\":[");
        for (size_t i = 0; i < n; i++) {
            printf(i ? "," : "");
            dv_cli_json_str(stdout, readers[i]);
        }
        printf("]}\n");
    } else if (rc == 0) {
        printf("%s: read by its owner and admins%s%s\n", name,
               n ? ", and " : " only", n ? with : "");
    }
    free(copy);
    return rc;
}

static int
cmd_datasets(int argc, char **argv)
{
    if (argc < 1) {
        fputs(DATASETS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    const char *sub = argv[0];
    dv_cli_opt_t opts[] = {
        {"name", true, NULL},  {"broker", true, NULL}, {"json", false, NULL},
        {"help", false, NULL}, {"with", true, NULL},   {NULL, false, NULL},
    };
    const char *pos[1];
    size_t n_pos = 0;
    int rc = parse(argc - 1, argv + 1, opts, pos, 1, &n_pos, DATASETS_USAGE);
    if (rc >= 0) {
        return rc;
    }
    bool list = strcmp(sub, "list") == 0, push = strcmp(sub, "push") == 0;
    bool rm = strcmp(sub, "rm") == 0, show = strcmp(sub, "show") == 0;
    bool share = strcmp(sub, "share") == 0;
    const char *with = dv_cli_get(opts, "with");
    if (!(list || push || rm || show || share) ||
        (list ? n_pos != 0 : n_pos != 1) || (share && !with)) {
        fputs(DATASETS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    bool json = dv_cli_get(opts, "json") != NULL;
    char name[256] = "";
    uint32_t version = 0;
    if (push) {
        const char *nm = dv_cli_get(opts, "name");
        const char *base = strrchr(pos[0], '/');
        snprintf(name, sizeof name, "%s", nm ? nm : base ? base + 1 : pos[0]);
        char *dot = nm ? NULL : strstr(name, ".csv");
        if (dot && dot[4] == '\0') {
            *dot = '\0';
        }
    } else if ((rm || show) &&
               (rc = split_ref(pos[0], name, sizeof name, &version))) {
        return rc;
    } else if (share) {
        snprintf(name, sizeof name, "%s", pos[0]);
    }
    drover_t *d = NULL;
    if ((rc = connect_to(opts, &d)) != 0) {
        return rc;
    }
    drover_error_t err = {0};
    if (push) {
        drover_dataset_t ds;
        rc = drover_dataset_push(d, pos[0], name, &ds, &err);
        if (rc == 0 && json) {
            print_dataset(&ds, true);
            printf("\n");
        } else if (rc == 0) {
            printf("stored %s@%" PRIu32 " (%" PRIu64 " rows, %" PRIu32
                   " columns, target %s, %" PRIu64 " bytes, sha256 %.16s)\n",
                   ds.name, ds.version, ds.rows, ds.columns, ds.target,
                   ds.bytes, ds.sha256);
        }
    } else if (show) {
        drover_dataset_t ds;
        rc = drover_dataset_get(d, name, version, &ds, &err);
        if (rc == 0 && json) {
            print_dataset(&ds, true);
            printf("\n");
        } else if (rc == 0) {
            printf("%-24s %8s %8s %10s  %-16s %s\n", "DATASET", "ROWS",
                   "COLUMNS", "BYTES", "TARGET", "SHA256");
            print_dataset(&ds, false);
            printf("sha256 %s\n", ds.sha256);
        }
    } else if (list) {
        drover_dataset_t *all = NULL;
        size_t n = 0;
        rc = drover_dataset_list(d, &all, &n, &err);
        if (rc == 0 && json) {
            printf("[");
            for (size_t i = 0; i < n; i++) {
                printf(i ? "," : "");
                print_dataset(&all[i], true);
            }
            printf("]\n");
        } else if (rc == 0) {
            printf("%-24s %8s %8s %10s  %-16s %s\n", "DATASET", "ROWS",
                   "COLUMNS", "BYTES", "TARGET", "SHA256");
            for (size_t i = 0; i < n; i++) {
                print_dataset(&all[i], false);
            }
        }
        free(all);
    } else if (share) {
        rc = share_dataset(d, name, with, json, &err);
    } else {
        unsigned removed = 0;
        rc = drover_dataset_rm(d, name, version, &removed, &err);
        if (rc == 0) {
            printf(json ? "{\"removed\":%u}\n" : "removed %u version(s)\n",
                   removed);
        }
    }
    drover_destroy(&d);
    return rc ? fail_d(&err) : DV_CLI_OK;
}

// ------------------------------------------------------------- evaluate

#define EVALUATE_USAGE                                                         \
    "usage: drover evaluate --model NAME[@VERSION|@ALIAS] (--data FILE.csv | " \
    "--dataset NAME[@V])\n"                                                    \
    "                       "                                                  \
    "[--queue Q]\n"                                                            \
    "                       [--broker E] [--json]\n"                           \
    "The model's metrics on the file (it must hold the model's target), "      \
    "computed by a\nworker as a job: the figures `drover local eval` "         \
    "prints.\n"

static int
cmd_evaluate(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"model", true, NULL},   {"data", true, NULL},  {"queue", true, NULL},
        {"broker", true, NULL},  {"json", false, NULL}, {"help", false, NULL},
        {"dataset", true, NULL}, {NULL, false, NULL},
    };
    size_t n_pos = 0;
    int rc = parse(argc, argv, opts, NULL, 0, &n_pos, EVALUATE_USAGE);
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
    if (data && dv_file_read(data, (size_t)1 << 28, &csv, &csv_len, &derr)) {
        return fail_dv(&derr);
    }
    drover_t *d = NULL;
    if ((rc = connect_to(opts, &d)) != 0) {
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
    rc = drover_run(d, &job, -1, &r, &err);
    free(csv);
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
    return rc ? fail_d(&err) : DV_CLI_OK;
}

// -------------------------------------------------------- result streams

#define RESULTS_USAGE                                                          \
    "usage: drover results follow --queue Q --consumer NAME [--count N]\n"     \
    "                             [--idle-ms N] [--window N] [--from "         \
    "latest] [--broker E] [--json]\n"                                          \
    "Prints the queue's results as they finish (one line each: seq, job, "     \
    "state, and\n"                                                             \
    "the payload size or the error) and acknowledges them; the broker keeps "  \
    "NAME's\n"                                                                 \
    "position, so the next follow resumes after the last one printed. Stops "  \
    "after\n"                                                                  \
    "N results, after N ms without one (--idle-ms), or on Ctrl-C.\n"

static volatile sig_atomic_t s_stop;

static void
on_stop_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

typedef struct {
    bool json;
    uint64_t last_seq;
    long printed;
    long limit; // 0: none
} follow_state_t;

static void
on_stream_result(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    follow_state_t *st = arg;
    if (st->limit && st->printed >= st->limit) {
        return; // past --count: not printed, not acknowledged
    }
    const char *text = "";
    int code = drover_result_error(r, &text);
    size_t len = 0;
    drover_result_payload(r, &len);
    if (st->json) {
        printf("{\"seq\":%" PRIu64 ",\"job\":%" PRIu64
               ",\"state\":\"%s\",\"attempts\":%" PRIu32,
               drover_result_seq(r), drover_result_job(r),
               drover_result_state(r), drover_result_attempts(r));
        if (code) {
            printf(",\"error\":{\"name\":\"%s\",\"text\":",
                   drover_err_name(code));
            dv_cli_json_str(stdout, text);
            printf("}");
        } else {
            printf(",\"payload_bytes\":%zu", len);
        }
        printf("}\n");
    } else if (code) {
        printf("%" PRIu64 " job %" PRIu64 " failed %s: %s\n",
               drover_result_seq(r), drover_result_job(r),
               drover_err_name(code), text);
    } else {
        printf("%" PRIu64 " job %" PRIu64 " done (%zu bytes)\n",
               drover_result_seq(r), drover_result_job(r), len);
    }
    st->last_seq = drover_result_seq(r);
    st->printed++;
}

static int
cmd_results(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"queue", true, NULL},  {"consumer", true, NULL},
        {"count", true, NULL},  {"idle-ms", true, NULL},
        {"window", true, NULL}, {"from", true, NULL},
        {"broker", true, NULL}, {"json", false, NULL},
        {"help", false, NULL},  {NULL, false, NULL},
    };
    const char *pos[1];
    size_t n_pos = 0;
    if (argc < 1 || strcmp(argv[0], "follow") != 0) {
        fputs(RESULTS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    int rc = parse(argc - 1, argv + 1, opts, pos, 0, &n_pos, RESULTS_USAGE);
    if (rc >= 0) {
        return rc;
    }
    long count = 0, idle = 0, window = 100;
    const char *queue = dv_cli_get(opts, "queue");
    const char *consumer = dv_cli_get(opts, "consumer");
    const char *from = dv_cli_get(opts, "from");
    if (!queue || !consumer || !opt_long(opts, "count", 1, LONG_MAX, &count) ||
        !opt_long(opts, "idle-ms", 1, 86400000, &idle) ||
        !opt_long(opts, "window", 1, 10000, &window) ||
        (from && strcmp(from, "latest") != 0 &&
         strcmp(from, "earliest") != 0)) {
        fputs(RESULTS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    drover_t *d = NULL;
    if ((rc = connect_to(opts, &d)) != 0) {
        return rc;
    }
    follow_state_t st = {dv_cli_get(opts, "json") != NULL, 0, 0, count};
    drover_error_t err = {0};
    uint64_t acked = 0;
    rc = drover_follow(d, queue, consumer, (unsigned)window,
                       from && strcmp(from, "latest") == 0, on_stream_result,
                       &st, &acked, &err);
    if (rc) {
        drover_destroy(&d);
        return fail_d(&err);
    }
    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
    st.last_seq = acked;
    uint64_t sent_ack = acked;
    double last_event = seconds_now();
    while (!s_stop && (!count || st.printed < count)) {
        long before = st.printed;
        int n = drover_poll(d, 200, &err);
        if (n < 0) {
            rc = fail_d(&err);
            break;
        }
        fflush(stdout);
        if (st.printed > before) {
            last_event = seconds_now();
            if (st.last_seq > sent_ack) { // each batch, without waiting
                drover_ack(d, queue, consumer, st.last_seq, false, &err);
                sent_ack = st.last_seq;
            }
        } else if (idle && (seconds_now() - last_event) * 1000 >= idle) {
            break;
        }
    }
    // The position is stored before we go.
    if (rc == 0 && st.last_seq > acked &&
        drover_ack(d, queue, consumer, st.last_seq, true, &err) != 0) {
        rc = fail_d(&err);
    }
    drover_destroy(&d);
    return rc ? rc : DV_CLI_OK;
}

// ---------------------------------------------------------- dead letters

#define DEAD_USAGE                                                             \
    "usage: drover dead list [--queue Q]     jobs in the dead-letter queue\n"  \
    "       drover dead show ID              one, with every failed attempt\n" \
    "       drover dead requeue ID | --all [--queue Q]\n"                      \
    "                                        run again as new jobs (new "      \
    "ids)\n"                                                                   \
    "       drover dead purge ID | --all [--queue Q]\n"                        \
    "                                        drop for good\n"                  \
    "all take [--broker E] [--json]\n"

static void
print_dead_json(const drover_dead_t *v, size_t n)
{
    printf("[");
    for (size_t i = 0; i < n; i++) {
        printf("%s{\"job\":%" PRIu64 ",\"queue\":", i ? "," : "", v[i].job);
        dv_cli_json_str(stdout, v[i].queue);
        printf(",\"kind\":\"%s\",\"attempts\":%" PRIu32 ",\"priority\":%" PRId32
               ",\"submitted_ms\":%" PRIu64 ",\"died_ms\":%" PRIu64
               ",\"error\":{\"name\":\"%s\","
               "\"text\":",
               v[i].kind, v[i].attempts, v[i].priority, v[i].submitted_ms,
               v[i].died_ms, drover_err_name(v[i].code));
        dv_cli_json_str(stdout, v[i].text);
        printf("}");
        print_errors_json(stdout, v[i].errors, v[i].n_errors);
        printf("}");
    }
    printf("]\n");
}

static int
cmd_dead(int argc, char **argv)
{
    if (argc < 1) {
        fputs(DEAD_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    const char *sub = argv[0];
    dv_cli_opt_t opts[] = {
        {"queue", true, NULL}, {"all", false, NULL},  {"broker", true, NULL},
        {"json", false, NULL}, {"help", false, NULL}, {NULL, false, NULL},
    };
    const char *pos[1];
    size_t n_pos = 0;
    int rc = parse(argc - 1, argv + 1, opts, pos, 1, &n_pos, DEAD_USAGE);
    if (rc >= 0) {
        return rc;
    }
    char *end = NULL;
    unsigned long long id = n_pos == 1 ? strtoull(pos[0], &end, 10) : 0;
    bool all = dv_cli_get(opts, "all") != NULL;
    bool list = strcmp(sub, "list") == 0, show = strcmp(sub, "show") == 0;
    bool requeue = strcmp(sub, "requeue") == 0;
    bool purge = strcmp(sub, "purge") == 0;
    if ((n_pos == 1 && (*end || id == 0)) || (list && n_pos) ||
        (show && n_pos != 1) || ((requeue || purge) && (n_pos == 1) == all) ||
        !(list || show || requeue || purge)) {
        fputs(DEAD_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    bool json = dv_cli_get(opts, "json") != NULL;
    const char *queue = dv_cli_get(opts, "queue");
    drover_t *d = NULL;
    if ((rc = connect_to(opts, &d)) != 0) {
        return rc;
    }
    drover_error_t err = {0};
    if (list || show) {
        drover_dead_t *v = NULL;
        size_t n = 0;
        rc = drover_dead_list(d, queue, id, &v, &n, &err);
        if (rc == 0 && json) {
            print_dead_json(v, n);
        } else if (rc == 0 && list) {
            printf("%-10s %-20s %-6s %8s  %-16s %s\n", "JOB", "QUEUE", "KIND",
                   "ATTEMPTS", "ERROR", "REASON");
            for (size_t i = 0; i < n; i++) {
                printf("%-10" PRIu64 " %-20s %-6s %8" PRIu32 "  %-16s %s\n",
                       v[i].job, v[i].queue, v[i].kind, v[i].attempts,
                       drover_err_name(v[i].code), v[i].text);
            }
        } else if (rc == 0 && n == 1) {
            printf("job %" PRIu64 " (queue %s, kind %s, priority %" PRId32
                   "): dead after %" PRIu32 " attempt(s)\n  %s: %s\n",
                   v[0].job, v[0].queue, v[0].kind, v[0].priority,
                   v[0].attempts, drover_err_name(v[0].code), v[0].text);
            print_errors_text(stdout, v[0].errors, v[0].n_errors);
        }
        drover_dead_free(&v, n);
    } else if (requeue) {
        size_t count = 0;
        uint64_t new_job = 0;
        rc = drover_dead_requeue(d, id, queue, &count, &new_job, &err);
        if (rc == 0 && json) {
            printf("{\"requeued\":%zu", count);
            if (id) {
                printf(",\"job\":%llu,\"new_job\":%" PRIu64, id, new_job);
            }
            printf("}\n");
        } else if (rc == 0 && id) {
            printf("job %llu requeued as job %" PRIu64 "\n", id, new_job);
        } else if (rc == 0) {
            printf("%zu jobs requeued\n", count);
        }
    } else {
        size_t count = 0;
        rc = drover_dead_purge(d, id, queue, &count, &err);
        if (rc == 0) {
            printf(json ? "{\"purged\":%zu}\n" : "%zu jobs purged\n", count);
        }
    }
    drover_destroy(&d);
    return rc ? fail_d(&err) : DV_CLI_OK;
}

// ------------------------------------------------------- workers, status

#define WORKERS_USAGE "usage: drover workers [--broker E] [--json]\n"
#define STATUS_USAGE  "usage: drover status [--broker E] [--json]\n"

static int
cmd_workers(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"broker", true, NULL},
        {"json", false, NULL},
        {"help", false, NULL},
        {NULL, false, NULL},
    };
    size_t n_pos;
    int rc = parse(argc, argv, opts, NULL, 0, &n_pos, WORKERS_USAGE);
    if (rc >= 0) {
        return rc;
    }
    drover_t *d = NULL;
    if ((rc = connect_to(opts, &d)) != 0) {
        return rc;
    }
    drover_error_t err = {0};
    drover_worker_t *w = NULL;
    size_t n = 0;
    rc = drover_workers(d, &w, &n, &err);
    if (rc == 0 && dv_cli_get(opts, "json")) {
        printf("[");
        for (size_t i = 0; i < n; i++) {
            printf(i ? ",{\"name\":" : "{\"name\":");
            dv_cli_json_str(stdout, w[i].name);
            printf(",\"state\":\"%s\",\"capacity\":%" PRIu32
                   ",\"running\":%" PRIu32 ",\"idle_ms\":%" PRIu64
                   ",\"models\":[",
                   w[i].state, w[i].capacity, w[i].running, w[i].idle_ms);
            for (size_t k = 0; k < w[i].n_models; k++) {
                printf(k ? "," : "");
                dv_cli_json_str(stdout, w[i].models[k]);
            }
            printf("],\"datasets\":[");
            for (size_t k = 0; k < w[i].n_datasets; k++) {
                printf(k ? "," : "");
                dv_cli_json_str(stdout, w[i].datasets[k]);
            }
            printf("]}");
        }
        printf("]\n");
    } else if (rc == 0) {
        printf("%-32s %-9s %7s %8s  %s\n", "WORKER", "STATE", "RUNNING",
               "IDLE_MS", "MODELS");
        for (size_t i = 0; i < n; i++) {
            char load[32];
            snprintf(load, sizeof load, "%" PRIu32 "/%" PRIu32, w[i].running,
                     w[i].capacity);
            printf("%-32s %-9s %7s %8" PRIu64 " ", w[i].name, w[i].state, load,
                   w[i].idle_ms);
            for (size_t k = 0; k < w[i].n_models; k++) {
                printf(" %s", w[i].models[k]);
            }
            for (size_t k = 0; k < w[i].n_datasets; k++) {
                printf(" data:%s", w[i].datasets[k]);
            }
            printf("\n");
        }
    }
    drover_workers_free(&w, n);
    drover_destroy(&d);
    return rc ? fail_d(&err) : DV_CLI_OK;
}

static int
cmd_status(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"broker", true, NULL},
        {"json", false, NULL},
        {"help", false, NULL},
        {NULL, false, NULL},
    };
    size_t n_pos;
    int rc = parse(argc, argv, opts, NULL, 0, &n_pos, STATUS_USAGE);
    if (rc >= 0) {
        return rc;
    }
    drover_t *d = NULL;
    if ((rc = connect_to(opts, &d)) != 0) {
        return rc;
    }
    drover_error_t err = {0};
    drover_status_t s;
    rc = drover_status(d, &s, &err);
    if (rc == 0 && dv_cli_get(opts, "json")) {
        printf("{\"broker\":");
        dv_cli_json_str(stdout, s.broker);
        printf(",\"endpoint\":");
        dv_cli_json_str(stdout, drover_endpoint(d));
        printf(",\"workers\":%" PRIu64 ",\"queued\":%" PRIu64
               ",\"running\":%" PRIu64 ",\"retrying\":%" PRIu64
               ",\"dead\":%" PRIu64 ",\"kept_results\":%" PRIu64
               ",\"models\":%" PRIu64 ",\"queues\":{",
               s.workers, s.queued, s.running, s.retrying, s.dead,
               s.kept_results, s.models);
        for (size_t i = 0; i < s.n_queues; i++) {
            const drover_queue_t *q = &s.queues[i];
            printf(i ? "," : "");
            dv_cli_json_str(stdout, q->name);
            printf(":{\"queued\":%" PRIu64 ",\"running\":%" PRIu64
                   ",\"retrying\":%" PRIu64 ",\"dead\":%" PRIu64
                   ",\"done\":%" PRIu64 ",\"failed\":%" PRIu64
                   ",\"expired\":%" PRIu64 ",\"cancelled\":%" PRIu64
                   ",\"bytes\":%" PRIu64 "}",
                   q->queued, q->running, q->retrying, q->dead, q->done,
                   q->failed, q->expired, q->cancelled, q->bytes);
        }
        printf("}}\n");
    } else if (rc == 0) {
        printf("%s at %s\n", s.broker, drover_endpoint(d));
        printf("  workers        %" PRIu64 "\n  jobs queued    %" PRIu64
               "\n  jobs running   %" PRIu64 "\n  jobs retrying  %" PRIu64
               "\n  dead letters   %" PRIu64 "\n  kept results   %" PRIu64
               "\n  model versions %" PRIu64 "\n",
               s.workers, s.queued, s.running, s.retrying, s.dead,
               s.kept_results, s.models);
        if (s.n_queues) {
            printf("\n  %-20s %8s %8s %8s %6s | since start: %8s %8s %8s "
                   "%9s\n",
                   "QUEUE", "queued", "running", "retrying", "dead", "done",
                   "failed", "expired", "cancelled");
        }
        for (size_t i = 0; i < s.n_queues; i++) {
            const drover_queue_t *q = &s.queues[i];
            printf("  %-20s %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %6" PRIu64
                   " |              %8" PRIu64 " %8" PRIu64 " %8" PRIu64
                   " %9" PRIu64 "\n",
                   q->name, q->queued, q->running, q->retrying, q->dead,
                   q->done, q->failed, q->expired, q->cancelled);
        }
    }
    if (rc == 0) {
        drover_status_clear(&s);
    }
    drover_destroy(&d);
    return rc ? fail_d(&err) : DV_CLI_OK;
}

// ------------------------------------------------------------ security

#define AUDIT_USAGE                                                            \
    "usage: drover audit [--since T] [--broker E] [--json]\n"                  \
    "The broker's audit log (admin keys only): handshakes refused, "           \
    "permission\n"                                                             \
    "refusals, model and data set changes, reloads; oldest first. T: "         \
    "seconds since\n"                                                          \
    "1970 (UTC), or a duration back from now: 30s, 15m, 2h, 7d.\n"

// "1700000000" (unix seconds) or "15m" (that long ago) -> unix ms.
static int
since_ms(const char *t, uint64_t *out)
{
    char *end = NULL;
    double v = strtod(t, &end);
    if (end == t || v < 0) {
        return -1;
    }
    double unit = *end == '\0'  ? 0
                  : *end == 's' ? 1
                  : *end == 'm' ? 60
                  : *end == 'h' ? 3600
                  : *end == 'd' ? 86400
                                : -1;
    if (unit < 0 || (*end && end[1])) {
        return -1;
    }
    if (unit == 0) {
        *out = (uint64_t)(v * 1000);
        return 0;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
    double at = now - v * unit * 1000;
    *out = at > 0 ? (uint64_t)at : 0;
    return 0;
}

static int
cmd_audit(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"since", true, NULL}, {"broker", true, NULL}, {"json", false, NULL},
        {"help", false, NULL}, {NULL, false, NULL},
    };
    size_t n_pos;
    int rc = parse(argc, argv, opts, NULL, 0, &n_pos, AUDIT_USAGE);
    if (rc >= 0) {
        return rc;
    }
    uint64_t since = 0;
    const char *t = dv_cli_get(opts, "since");
    if (t && since_ms(t, &since) != 0) {
        fprintf(stderr, "drover: --since %s: unix seconds, or 30s/15m/2h/7d\n",
                t);
        return DV_CLI_USAGE;
    }
    drover_t *d = NULL;
    if ((rc = connect_to(opts, &d)) != 0) {
        return rc;
    }
    drover_error_t err = {0};
    drover_audit_entry_t *e = NULL;
    size_t n = 0;
    bool more = false;
    rc = drover_audit(d, since, &e, &n, &more, &err);
    bool json = dv_cli_get(opts, "json") != NULL;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (json) {
            printf("{\"seq\":%" PRIu64 ",\"unix_ms\":%" PRIu64 ",\"key\":",
                   e[i].seq, e[i].unix_ms);
            dv_cli_json_str(stdout, e[i].key);
            printf(",\"action\":");
            dv_cli_json_str(stdout, e[i].action);
            printf(",\"object\":");
            dv_cli_json_str(stdout, e[i].object);
            printf(",\"outcome\":");
            dv_cli_json_str(stdout, e[i].outcome);
            printf("}\n");
        } else {
            time_t secs = (time_t)(e[i].unix_ms / 1000);
            struct tm tm;
            char when[32];
            gmtime_r(&secs, &tm);
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%SZ", &tm);
            printf("%-6" PRIu64 " %s  %-12s %-14s %s: %s\n", e[i].seq, when,
                   e[i].key[0] ? e[i].key : "-", e[i].action, e[i].object,
                   e[i].outcome);
        }
    }
    if (rc == 0 && more && !json) {
        printf("(older entries left out: use --since)\n");
    }
    free(e);
    drover_destroy(&d);
    return rc ? fail_d(&err) : DV_CLI_OK;
}

#define ADMIN_USAGE                                                            \
    "usage: drover admin reload [--broker E] [--json]\n"                       \
    "Reload the broker's authorized keys (as SIGHUP does; admin keys "         \
    "only). A key\n"                                                           \
    "removed from the folder is refused from its connection's next "           \
    "message on.\n"

static int
cmd_admin(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"broker", true, NULL},
        {"json", false, NULL},
        {"help", false, NULL},
        {NULL, false, NULL},
    };
    const char *pos[1] = {NULL};
    size_t n_pos = 0;
    int rc = parse(argc, argv, opts, pos, 1, &n_pos, ADMIN_USAGE);
    if (rc >= 0) {
        return rc;
    }
    if (n_pos != 1 || strcmp(pos[0], "reload") != 0) {
        fputs(ADMIN_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    drover_t *d = NULL;
    if ((rc = connect_to(opts, &d)) != 0) {
        return rc;
    }
    drover_error_t err = {0};
    size_t keys = 0;
    rc = drover_admin_reload(d, &keys, &err);
    if (rc == 0) {
        printf(dv_cli_get(opts, "json") ? "{\"keys\":%zu}\n"
                                        : "reloaded: %zu authorized keys\n",
               keys);
    }
    drover_destroy(&d);
    return rc ? fail_d(&err) : DV_CLI_OK;
}

int
dv_cli_remote(const char *cmd, int argc, char **argv)
{
    if (strcmp(cmd, "infer") == 0) {
        return cmd_infer(argc, argv);
    }
    if (strcmp(cmd, "submit") == 0) {
        return cmd_submit(argc, argv);
    }
    if (strcmp(cmd, "models") == 0) {
        return cmd_models(argc, argv);
    }
    if (strcmp(cmd, "jobs") == 0) {
        return cmd_jobs(argc, argv);
    }
    if (strcmp(cmd, "workers") == 0) {
        return cmd_workers(argc, argv);
    }
    if (strcmp(cmd, "audit") == 0) {
        return cmd_audit(argc, argv);
    }
    if (strcmp(cmd, "admin") == 0) {
        return cmd_admin(argc, argv);
    }
    if (strcmp(cmd, "status") == 0) {
        return cmd_status(argc, argv);
    }
    if (strcmp(cmd, "dead") == 0) {
        return cmd_dead(argc, argv);
    }
    if (strcmp(cmd, "results") == 0) {
        return cmd_results(argc, argv);
    }
    if (strcmp(cmd, "train") == 0) {
        return cmd_train(argc, argv);
    }
    if (strcmp(cmd, "evaluate") == 0) {
        return cmd_evaluate(argc, argv);
    }
    if (strcmp(cmd, "datasets") == 0) {
        return cmd_datasets(argc, argv);
    }
    return -1;
}
