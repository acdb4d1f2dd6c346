// dv_cli_jobs — `drover submit` (jobs from the command line), `drover
// jobs` (show, cancel, list, wait) and `drover dead` (dead letters: list,
// requeue, purge). See dv_cli_remote.h.

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dv_cli_remote.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_tensor.h"

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

// `drover submit`'s numbers, checked.
typedef struct {
    const char *sleep; // --sleep as given (a sleep job), or NULL (echo)
    const char *key;   // --idempotency-key, or NULL
    long bytes;        // --echo BYTES (payload size)
    long count;        // --count
    long window;       // --window: most jobs in flight
    long priority;     // --priority
    long deadline;     // --deadline-ms (0: none)
    long timeout;      // --timeout-ms (0: the broker's)
    long attempts;     // --max-attempts (0: the broker's)
    long backoff;      // --backoff-ms
    long sleep_ms;     // --sleep MS
    bool no_wait;      // --no-wait: stop once every job is accepted
} submit_opts_t;

// Read and check the options into so. Returns false if they are not usable.
static bool
submit_options(const dv_cli_opt_t *opts, submit_opts_t *so)
{
    const char *echo = dv_cli_get(opts, "echo");
    so->sleep = dv_cli_get(opts, "sleep");
    so->bytes = echo ? -1 : 0;
    so->count = 1;
    so->window = 10000;
    if (!dv_cli_get_long(opts, "echo", 0, 1L << 28, &so->bytes) ||
        !dv_cli_get_long(opts, "count", 1, 100000000, &so->count) ||
        !dv_cli_get_long(opts, "window", 1, 1000000, &so->window) ||
        !dv_cli_get_long(opts, "priority", DV_PRIORITY_MIN, DV_PRIORITY_MAX,
                         &so->priority) ||
        !dv_cli_get_long(opts, "deadline-ms", 1, 7L * 86400000,
                         &so->deadline) ||
        !dv_cli_get_long(opts, "timeout-ms", 1, 7L * 86400000, &so->timeout) ||
        !dv_cli_get_long(opts, "max-attempts", 1, 100, &so->attempts) ||
        !dv_cli_get_long(opts, "backoff-ms", 0, 60000, &so->backoff) ||
        !dv_cli_get_long(opts, "sleep", 0, 3600000, &so->sleep_ms) ||
        (!echo && !so->sleep) || so->bytes < 0) {
        return false;
    }
    so->no_wait = dv_cli_get(opts, "no-wait") != NULL;
    so->key = dv_cli_get(opts, "idempotency-key");
    return true;
}

// Job i (0-based) of the run; keybuf holds its idempotency key.
static drover_job_t
submit_job(const dv_cli_opt_t *opts,
           const submit_opts_t *so,
           const uint8_t *payload,
           long i,
           char *keybuf,
           size_t keysize)
{
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = dv_cli_get(opts, "queue");
    job.kind = so->sleep ? "sleep" : "echo";
    job.sleep_ms = (uint32_t)so->sleep_ms;
    job.payload = payload;
    job.payload_len = (size_t)so->bytes;
    job.durability = dv_cli_get(opts, "durability");
    job.priority = (int32_t)so->priority;
    job.deadline_ms = (uint32_t)so->deadline;
    job.timeout_ms = (uint32_t)so->timeout;
    job.max_attempts = (uint32_t)so->attempts;
    job.backoff_ms = dv_cli_get(opts, "backoff-ms")
                         ? (so->backoff ? (int32_t)so->backoff : -1)
                         : 0;
    if (so->key) {
        if (so->count > 1) {
            snprintf(keybuf, keysize, "%s-%ld", so->key, i + 1);
        } else {
            snprintf(keybuf, keysize, "%s", so->key);
        }
        job.idempotency_key = keybuf;
    }
    return job;
}

// --no-wait: the accepted ids (or one JSON object), and the refusals.
static int
submit_report_accepted(const submit_opts_t *so,
                       const submit_state_t *st,
                       double secs,
                       bool json)
{
    if (json) {
        printf("{\"accepted\":%zu,\"refused\":%zu,\"seconds\":%.6f,"
               "\"jobs\":[",
               st->done, st->failed, secs);
    }
    for (long i = 0, n = 0; i < so->count; i++) {
        if (st->ids[i]) {
            printf(json ? "%s%" PRIu64 : "%s%" PRIu64 "\n",
                   json && n++ ? "," : "", st->ids[i]);
        }
    }
    if (json) {
        printf("]}\n");
    }
    fprintf(stderr, "drover: %zu jobs accepted, %zu refused in %.3f s\n",
            st->done, st->failed, secs);
    if (st->failed) {
        fprintf(stderr, "drover: first refusal: %s: %s\n",
                drover_err_name(st->first.code), st->first.text);
        return DV_CLI_FAIL;
    }
    return DV_CLI_OK;
}

// Waited for every result: done/failed and jobs/s.
static int
submit_report_done(const submit_opts_t *so,
                   const submit_state_t *st,
                   double secs,
                   bool json)
{
    double rate = secs > 0 ? (double)so->count / secs : 0;
    if (json) {
        printf("{\"count\":%ld,\"done\":%zu,\"failed\":%zu,"
               "\"seconds\":%.6f,\"jobs_per_s\":%.1f}\n",
               so->count, st->done, st->failed, secs, rate);
    } else {
        printf("%ld jobs: %zu done, %zu failed in %.3f s (%.0f jobs/s)\n",
               so->count, st->done, st->failed, secs, rate);
    }
    if (st->failed) {
        fprintf(stderr, "drover: first failure: %s: %s\n",
                drover_err_name(st->first.code), st->first.text);
        return DV_CLI_FAIL;
    }
    return DV_CLI_OK;
}

int
dv_cli_submit(int argc, char **argv)
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
    int rc =
        dv_cli_parse_usage(argc, argv, opts, NULL, 0, &n_pos, SUBMIT_USAGE);
    if (rc >= 0) {
        return rc;
    }
    submit_opts_t so = {0};
    if (!submit_options(opts, &so)) {
        fputs(SUBMIT_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    drover_t *d = NULL;
    if ((rc = dv_cli_connect(opts, &d)) != 0) {
        return rc;
    }
    uint8_t *payload = dv_malloc(so.bytes ? (size_t)so.bytes : 1);
    memset(payload, 'x', (size_t)so.bytes);
    submit_state_t st = {0};
    submit_arg_t *args = dv_calloc((size_t)so.count, sizeof *args);
    if (so.no_wait) {
        st.ids = dv_calloc((size_t)so.count, sizeof *st.ids);
    }
    drover_error_t derr = {0};
    double t0 = dv_cli_seconds_now();
    rc = DV_CLI_OK;
    for (long i = 0; i < so.count && rc == DV_CLI_OK; i++) {
        while (drover_pending(d) >= (size_t)so.window) {
            if (drover_poll(d, 60000, &derr) < 0) {
                rc = dv_cli_fail_d(&derr);
                break;
            }
        }
        char keybuf[400];
        drover_job_t job =
            submit_job(opts, &so, payload, i, keybuf, sizeof keybuf);
        args[i] = (submit_arg_t){&st, (size_t)i};
        if (rc == DV_CLI_OK &&
            (so.no_wait ? drover_submit_nowait(d, &job, on_submit_result,
                                               &args[i], &derr)
                        : drover_submit_async(d, &job, on_submit_result,
                                              &args[i], &derr))) {
            rc = dv_cli_fail_d(&derr);
        }
        drover_poll(d, 0, &derr); // take what is back, keep memory flat
    }
    while (rc == DV_CLI_OK && drover_pending(d) > 0) {
        if (drover_poll(d, 60000, &derr) < 0) {
            rc = dv_cli_fail_d(&derr);
        }
    }
    double secs = dv_cli_seconds_now() - t0;
    bool json = dv_cli_get(opts, "json") != NULL;
    if (rc == DV_CLI_OK && so.no_wait) {
        rc = submit_report_accepted(&so, &st, secs, json);
    } else if (rc == DV_CLI_OK) {
        rc = submit_report_done(&so, &st, secs, json);
    }
    free(payload);
    free(args);
    free(st.ids);
    drover_destroy(&d);
    return rc;
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

#define JOBS_USAGE                                                             \
    "usage: drover jobs show ID      where the job is (queued, running, "      \
    "retrying, done,\n"                                                        \
    "                                failed, dead, expired, cancelled)\n"      \
    "       drover jobs list [--state S] [--queue Q] [--limit N] [--from "     \
    "ID]\n"                                                                    \
    "                                newest first, from job ID down\n"         \
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

// ", WHAT 2026-12-05 12:00:00.123 UTC" for a wall-clock time (nothing for 0).
static void
print_when(const char *what, uint64_t unix_ms)
{
    if (!unix_ms) {
        return;
    }
    time_t s = (time_t)(unix_ms / 1000);
    struct tm tm;
    char buf[32];
    gmtime_r(&s, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    printf(", %s %s.%03u UTC", what, buf, (unsigned)(unix_ms % 1000));
}

// `drover jobs list`: the broker's job table, filtered by state and queue.
static int
jobs_list(dv_cli_opt_t *opts, size_t n_pos)
{
    static const char *const states[] = {"queued",  "running",  "retrying",
                                         "done",    "failed",   "dead",
                                         "expired", "cancelled"};
    const char *state = dv_cli_get(opts, "state");
    bool known = state == NULL;
    for (size_t i = 0; !known && i < sizeof states / sizeof *states; i++) {
        known = strcmp(state, states[i]) == 0;
    }
    long limit = 0;
    if (!known) {
        fprintf(stderr,
                "drover: --state '%s': one of queued, running, retrying, "
                "done, failed, dead, expired, cancelled\n",
                state);
    }
    long from = 0;
    if (n_pos != 0 || !known ||
        !dv_cli_get_long(opts, "limit", 1, 10000, &limit) ||
        !dv_cli_get_long(opts, "from", 1, LONG_MAX, &from)) {
        fputs(JOBS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    drover_t *d = NULL;
    int rc = dv_cli_connect(opts, &d);
    if (rc != 0) {
        return rc;
    }
    drover_error_t err = {0};
    drover_job_info_t *v = NULL;
    size_t n = 0;
    uint64_t next = 0;
    rc = drover_job_list_from(d, dv_cli_get(opts, "state"),
                              dv_cli_get(opts, "queue"), (unsigned)limit,
                              (uint64_t)from, &v, &n, &next, &err);
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
        printf("%-10s %-9s %8s  %-20s %-6s %s\n", "JOB", "STATE", "ATTEMPTS",
               "QUEUE", "KIND", "PRIORITY");
        for (size_t i = 0; i < n; i++) {
            printf("%-10" PRIu64 " %-9s %8" PRIu32 "  %-20s %-6s ", v[i].job,
                   v[i].state, v[i].attempts, v[i].queue, v[i].kind);
            if (v[i].queue[0]) {
                printf("%" PRId32, v[i].priority);
            }
            printf("\n");
        }
    }
    if (rc == 0 && next) { // more than the limit: where to go on
        fprintf(stderr, "drover: more jobs: --from %" PRIu64 "\n", next);
    }
    free(v);
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}

// The subcommands that act on one job ID: each gets the connection (the
// caller destroys it) and returns the exit code.
typedef int (*jobs_id_fn)(drover_t *d,
                          unsigned long long id,
                          const dv_cli_opt_t *opts,
                          bool json);

// `drover jobs cancel ID`.
static int
jobs_cancel(drover_t *d,
            unsigned long long id,
            const dv_cli_opt_t *opts,
            bool json)
{
    (void)opts;
    drover_error_t err = {0};
    char was[16] = "";
    int rc = drover_job_cancel(d, id, was, &err);
    if (rc == 0) {
        printf(json ? "{\"job\":%llu,\"cancelled\":true,\"was\":\"%s\"}\n"
                    : "job %llu cancelled (it was %s)\n",
               id, was);
    }
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}

// `drover jobs watch ID`: poll every 200 ms, draw training progress, print
// each new state; exit 0 once it is done, 1 if it ended any other way.
static int
jobs_watch(drover_t *d,
           unsigned long long id,
           const dv_cli_opt_t *opts,
           bool json)
{
    (void)opts;
    drover_error_t err = {0};
    dv_cli_progress_t po = {json, isatty(STDERR_FILENO) == 1, false};
    drover_job_info_t info;
    uint32_t last_epoch = UINT32_MAX;
    char last_state[16] = "";
    while (drover_job_info(d, id, &info, &err) == 0) {
        bool over = strcmp(info.state, "queued") != 0 &&
                    strcmp(info.state, "running") != 0 &&
                    strcmp(info.state, "retrying") != 0;
        if (info.epochs && info.epoch != last_epoch) {
            uint64_t eta =
                info.epoch
                    ? info.progress_ms * (info.epochs - info.epoch) / info.epoch
                    : 0;
            drover_progress_t pg = {id,        info.epoch,       info.epochs,
                                    info.loss, info.progress_ms, eta,
                                    info.eval};
            dv_cli_print_progress(&po, &pg);
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
            return strcmp(info.state, "done") == 0 ? DV_CLI_OK : DV_CLI_FAIL;
        }
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return dv_cli_fail_d(&err);
}

// `drover jobs show ID --json`: one object, optional keys only when set.
static void
show_json(const drover_job_info_t *info)
{
    printf("{\"job\":%" PRIu64 ",\"state\":\"%s\",\"attempts\":%" PRIu32,
           info->job, info->state, info->attempts);
    if (info->queue[0]) {
        printf(",\"queue\":");
        dv_cli_json_str(stdout, info->queue);
    }
    if (info->kind[0]) {
        printf(",\"kind\":\"%s\",\"priority\":%" PRId32, info->kind,
               info->priority);
    }
    if (info->worker[0]) {
        printf(",\"worker\":");
        dv_cli_json_str(stdout, info->worker);
    }
    const struct {
        const char *key;
        uint64_t ms;
    } times[] = {{"submitted_unix_ms", info->submitted_unix_ms},
                 {"started_unix_ms", info->started_unix_ms},
                 {"finished_unix_ms", info->finished_unix_ms}};
    for (size_t t = 0; t < 3; t++) {
        if (times[t].ms) {
            printf(",\"%s\":%" PRIu64, times[t].key, times[t].ms);
        }
    }
    if (info->epochs) {
        printf(",\"epoch\":%" PRIu32 ",\"epochs\":%" PRIu32 ",\"loss\":%.6g",
               info->epoch, info->epochs, info->loss);
    }
    if (info->model[0]) {
        printf(",\"model\":");
        dv_cli_json_str(stdout, info->model);
    }
    if (info->batch_jobs) {
        printf(",\"batch\":{\"rows\":%" PRIu32 ",\"jobs\":%" PRIu32 "}",
               info->batch_rows, info->batch_jobs);
    }
    if (info->checkpoint_epoch) {
        printf(",\"checkpoint\":{\"epoch\":%" PRIu32 ",\"bytes\":%" PRIu64
               ",\"stored_epoch\":%" PRIu32 "}",
               info->checkpoint_epoch, info->checkpoint_bytes,
               info->checkpoint_stored_epoch);
    }
    printf("}\n");
}

// `drover jobs show ID`: one line of text.
static void
show_text(const drover_job_info_t *info)
{
    printf("job %" PRIu64 ": %s after %" PRIu32 " attempt(s)%s%s%s%s",
           info->job, info->state, info->attempts,
           info->queue[0] ? ", queue " : "", info->queue,
           info->kind[0] ? ", kind " : "", info->kind);
    if (info->kind[0]) {
        printf(", priority %" PRId32, info->priority);
    }
    if (info->worker[0]) {
        printf(", %s %s", info->finished_unix_ms ? "ran on" : "on",
               info->worker);
    }
    print_when("submitted", info->submitted_unix_ms);
    print_when("started", info->started_unix_ms);
    print_when("finished", info->finished_unix_ms);
    if (info->epochs) {
        printf(", epoch %" PRIu32 "/%" PRIu32 " (loss %.6g)", info->epoch,
               info->epochs, info->loss);
    }
    if (info->model[0]) {
        printf(", ran %s", info->model);
    }
    if (info->batch_jobs) {
        printf(" in a pass of %" PRIu32 " row(s), %" PRIu32 " job(s)",
               info->batch_rows, info->batch_jobs);
    }
    if (info->checkpoint_epoch) {
        printf(", checkpoint after epoch %" PRIu32 " (%" PRIu64
               " bytes; stored: %s)",
               info->checkpoint_epoch, info->checkpoint_bytes,
               info->checkpoint_stored_epoch == info->checkpoint_epoch ? "yes"
               : info->checkpoint_stored_epoch ? "an older one"
                                               : "no");
    }
    printf("\n");
}

// `drover jobs show ID`.
static int
jobs_show(drover_t *d,
          unsigned long long id,
          const dv_cli_opt_t *opts,
          bool json)
{
    (void)opts;
    drover_error_t err = {0};
    drover_job_info_t info;
    int rc = drover_job_info(d, id, &info, &err);
    if (rc == 0 && json) {
        show_json(&info);
    } else if (rc == 0) {
        show_text(&info);
    }
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}

// `drover jobs result ID --json`: the result's facts, not its bytes.
static void
result_json(FILE *f, const drover_result_t *r)
{
    const char *text = "";
    int code = drover_result_error(r, &text);
    size_t rows = 0, cols = 0, len = 0;
    const float *out = drover_result_output(r, &rows, &cols);
    drover_result_payload(r, &len);
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
        fprintf(f,
                ",\"error\":{\"name\":\"%s\",\"text\":", drover_err_name(code));
        dv_cli_json_str(f, text);
        fprintf(f, "}");
    } else if (out) {
        fprintf(f, ",\"model\":");
        dv_cli_json_str(f, drover_result_model(r));
        fprintf(f, ",\"rows\":%zu,\"cols\":%zu", rows, cols);
        uint32_t b_rows = 0, b_jobs = 0;
        if (drover_result_batch(r, &b_rows, &b_jobs)) {
            fprintf(f, ",\"batch\":{\"rows\":%" PRIu32 ",\"jobs\":%" PRIu32 "}",
                    b_rows, b_jobs);
        }
    } else {
        const char *model = drover_result_model(r);
        if (model && *model) { // train: the version it made; evaluate
            fprintf(f, ",\"model\":");
            dv_cli_json_str(f, model);
        }
        fprintf(f, ",\"payload_bytes\":%zu", len);
    }
    fprintf(f, "}\n");
}

// `drover jobs result ID`: the failure on stderr, or the result itself (infer
// outputs as CSV, an echo payload as bytes, a train job's model version).
static void
result_text(FILE *f, unsigned long long id, const drover_result_t *r)
{
    const char *text = "";
    int code = drover_result_error(r, &text);
    size_t rows = 0, cols = 0, len = 0;
    const float *out = drover_result_output(r, &rows, &cols);
    const void *payload = drover_result_payload(r, &len);
    if (code) {
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
    } else if (drover_result_model(r) && *drover_result_model(r)) {
        fprintf(f, "%s\n", drover_result_model(r)); // a train job's version
    }
}

// `drover jobs result ID [--wait-ms N] [--out FILE]`.
static int
jobs_result(drover_t *d,
            unsigned long long id,
            const dv_cli_opt_t *opts,
            bool json)
{
    drover_error_t err = {0};
    long wait_ms = 0;
    if (!dv_cli_get_long(opts, "wait-ms", 0, 7L * 86400000, &wait_ms)) {
        return DV_CLI_USAGE;
    }
    drover_result_t *r = NULL;
    int rc = drover_wait(d, id, (int)wait_ms, &r, &err);
    if (rc == DV_ETIMEDOUT) {
        // Not finished: say where it is rather than a bare timeout.
        drover_job_info_t info;
        drover_error_t ierr = {0};
        if (drover_job_info(d, id, &info, &ierr) == 0) {
            fprintf(stderr,
                    "drover: job %" PRIu64 " is %s%s: no result yet; "
                    "`drover jobs result %" PRIu64
                    " --wait-ms N` waits for it, `drover jobs watch %" PRIu64
                    "` follows it\n",
                    (uint64_t)id, info.state, wait_ms ? " after --wait-ms" : "",
                    (uint64_t)id, (uint64_t)id);
            return DV_CLI_FAIL;
        }
    }
    if (rc) {
        return dv_cli_fail_d(&err);
    }
    const char *out_path = dv_cli_get(opts, "out");
    FILE *f = out_path ? fopen(out_path, "w") : stdout;
    if (!f) {
        fprintf(stderr, "drover: cannot write %s\n", out_path);
        drover_result_destroy(&r);
        return DV_CLI_FAIL;
    }
    if (json) {
        result_json(f, r);
    } else {
        result_text(f, id, r);
    }
    if (f != stdout) {
        fclose(f);
    }
    const char *text = "";
    int code = drover_result_error(r, &text);
    drover_result_destroy(&r);
    return code && !json ? DV_CLI_FAIL : DV_CLI_OK;
}

// `drover jobs SUB ID`: the subcommands that take a job ID (`list` does not).
static const struct {
    const char *name;
    jobs_id_fn fn;
} s_jobs_id_subs[] = {
    {"show", jobs_show},
    {"result", jobs_result},
    {"cancel", jobs_cancel},
    {"watch", jobs_watch},
};

int
dv_cli_jobs(int argc, char **argv)
{
    int start = dv_cli_group_start(argc, argv, JOBS_USAGE);
    if (start >= 0) {
        return start;
    }
    const char *sub = argv[0];
    dv_cli_opt_t opts[] = {
        {"wait-ms", true, NULL}, {"out", true, NULL},   {"broker", true, NULL},
        {"json", false, NULL},   {"help", false, NULL}, {"state", true, NULL},
        {"queue", true, NULL},   {"limit", true, NULL}, {"from", true, NULL},
        {NULL, false, NULL},
    };
    const char *pos[1];
    size_t n_pos = 0;
    int rc = dv_cli_parse_usage(argc - 1, argv + 1, opts, pos, 1, &n_pos,
                                JOBS_USAGE);
    if (rc >= 0) {
        return rc;
    }
    if (strcmp(sub, "list") == 0) {
        return jobs_list(opts, n_pos);
    }
    jobs_id_fn fn = NULL;
    for (size_t i = 0; i < sizeof s_jobs_id_subs / sizeof *s_jobs_id_subs;
         i++) {
        if (strcmp(sub, s_jobs_id_subs[i].name) == 0) {
            fn = s_jobs_id_subs[i].fn;
        }
    }
    char *end = NULL;
    unsigned long long id = n_pos == 1 ? strtoull(pos[0], &end, 10) : 0;
    if (n_pos != 1 || *end || id == 0 || !fn) {
        fputs(JOBS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    drover_t *d = NULL;
    if ((rc = dv_cli_connect(opts, &d)) != 0) {
        return rc;
    }
    rc = fn(d, id, opts, dv_cli_get(opts, "json") != NULL);
    drover_destroy(&d);
    return rc;
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

int
dv_cli_dead(int argc, char **argv)
{
    int start = dv_cli_group_start(argc, argv, DEAD_USAGE);
    if (start >= 0) {
        return start;
    }
    const char *sub = argv[0];
    dv_cli_opt_t opts[] = {
        {"queue", true, NULL}, {"all", false, NULL},  {"broker", true, NULL},
        {"json", false, NULL}, {"help", false, NULL}, {NULL, false, NULL},
    };
    const char *pos[1];
    size_t n_pos = 0;
    int rc = dv_cli_parse_usage(argc - 1, argv + 1, opts, pos, 1, &n_pos,
                                DEAD_USAGE);
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
    if ((rc = dv_cli_connect(opts, &d)) != 0) {
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
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}
