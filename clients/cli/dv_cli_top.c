// dv_cli_top — `drover top`: a live view of one broker, redrawn every
// --interval-ms. See dv_cli_remote.h.
//
// Each tick takes three snapshots through libdrover: drover_status (jobs per
// state and finished counters, per queue), drover_workers (load, models
// held, time since each worker was last heard from) and drover_job_list
// (state "running": the jobs in flight). Rates come from the difference of
// two status snapshots' finished counters (done + failed + expired +
// cancelled) over the monotonic time between them, so the first tick has
// none. The broker's status does not carry the age of the oldest waiting
// job, so neither does this view.
//
// Output: on a terminal the screen is cleared and redrawn each tick (ANSI
// "home, clear"); otherwise one plain block per tick, blocks separated by a
// blank line, no escape codes (logs, pipes, tests); --json: one JSON object
// per tick, one per line. --count N stops after N ticks (0: until Ctrl-C).

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dv_cli_remote.h"
#include "dv_mem.h"

#define TOP_USAGE                                                              \
    "usage: drover top [--interval-ms N] [--count N] [--jobs N] [--broker E] " \
    "[--json]\n"                                                               \
    "A live view of the broker, refreshed every --interval-ms (default "       \
    "1000):\n"                                                                 \
    "queues (jobs per state, finished jobs per second since the last "         \
    "tick),\n"                                                                 \
    "workers (load, models held, last heard from) and the jobs running "       \
    "(at most\n"                                                               \
    "--jobs, default 20). Redraws the screen on a terminal; otherwise "        \
    "prints one\n"                                                             \
    "block per tick (no escape codes); --json: one JSON object per tick.\n"    \
    "--count N: stop after N ticks (default 0: until Ctrl-C).\n"

// A queue's finished jobs at one snapshot, to compute its rate.
typedef struct {
    char name[129]; // the queue
    uint64_t ended; // done + failed + expired + cancelled since start
} top_mark_t;

// What the previous tick saw.
typedef struct {
    top_mark_t *marks; // one per queue then
    size_t n_marks;    //   their count
    double at_s;       // monotonic seconds of that snapshot (0: none yet)
} top_prev_t;

static uint64_t
ended(const drover_queue_t *q)
{
    return q->done + q->failed + q->expired + q->cancelled;
}

// Finished jobs per second on q since prev (< 0: not known yet: first tick,
// or the queue is new, or the broker restarted and its counters went back).
static double
rate(const top_prev_t *prev, const drover_queue_t *q, double now_s)
{
    if (prev->at_s <= 0 || now_s <= prev->at_s) {
        return -1;
    }
    for (size_t i = 0; i < prev->n_marks; i++) {
        if (strcmp(prev->marks[i].name, q->name) == 0) {
            if (ended(q) < prev->marks[i].ended) {
                return -1;
            }
            return (double)(ended(q) - prev->marks[i].ended) /
                   (now_s - prev->at_s);
        }
    }
    return -1;
}

static void
remember(top_prev_t *prev, const drover_status_t *s, double now_s)
{
    free(prev->marks);
    prev->marks = dv_calloc(s->n_queues ? s->n_queues : 1, sizeof *prev->marks);
    for (size_t i = 0; i < s->n_queues; i++) {
        snprintf(prev->marks[i].name, sizeof prev->marks[i].name, "%s",
                 s->queues[i].name);
        prev->marks[i].ended = ended(&s->queues[i]);
    }
    prev->n_marks = s->n_queues;
    prev->at_s = now_s;
}

static void
print_json(const drover_status_t *s,
           const double *rates,
           const drover_worker_t *w,
           size_t n_w,
           const drover_job_info_t *jobs,
           size_t n_jobs,
           const char *endpoint)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t unix_ms =
        (uint64_t)ts.tv_sec * 1000 + (uint64_t)(ts.tv_nsec / 1000000);
    printf("{\"unix_ms\":%" PRIu64 ",\"broker\":", unix_ms);
    dv_cli_json_str(stdout, s->broker);
    printf(",\"endpoint\":");
    dv_cli_json_str(stdout, endpoint);
    printf(",\"queued\":%" PRIu64 ",\"running\":%" PRIu64
           ",\"retrying\":%" PRIu64 ",\"dead\":%" PRIu64 ",\"queues\":[",
           s->queued, s->running, s->retrying, s->dead);
    for (size_t i = 0; i < s->n_queues; i++) {
        const drover_queue_t *q = &s->queues[i];
        printf(i ? ",{\"name\":" : "{\"name\":");
        dv_cli_json_str(stdout, q->name);
        printf(",\"queued\":%" PRIu64 ",\"running\":%" PRIu64
               ",\"retrying\":%" PRIu64 ",\"dead\":%" PRIu64
               ",\"done\":%" PRIu64 ",\"failed\":%" PRIu64
               ",\"expired\":%" PRIu64 ",\"cancelled\":%" PRIu64,
               q->queued, q->running, q->retrying, q->dead, q->done, q->failed,
               q->expired, q->cancelled);
        if (rates[i] >= 0) {
            printf(",\"per_s\":%.3f}", rates[i]);
        } else {
            printf(",\"per_s\":null}");
        }
    }
    printf("],\"workers\":[");
    for (size_t i = 0; i < n_w; i++) {
        printf(i ? ",{\"name\":" : "{\"name\":");
        dv_cli_json_str(stdout, w[i].name);
        printf(",\"state\":\"%s\",\"running\":%" PRIu32 ",\"capacity\":%" PRIu32
               ",\"idle_ms\":%" PRIu64,
               w[i].state, w[i].running, w[i].capacity, w[i].idle_ms);
        dv_cli_worker_load_json(&w[i]);
        printf(",\"models\":[");
        for (size_t k = 0; k < w[i].n_models; k++) {
            printf(k ? "," : "");
            dv_cli_json_str(stdout, w[i].models[k]);
        }
        printf("]}");
    }
    printf("],\"jobs\":[");
    for (size_t i = 0; i < n_jobs; i++) {
        printf(i ? ",{\"job\":%" PRIu64 : "{\"job\":%" PRIu64, jobs[i].job);
        printf(",\"queue\":");
        dv_cli_json_str(stdout, jobs[i].queue);
        printf(",\"kind\":");
        dv_cli_json_str(stdout, jobs[i].kind);
        printf(",\"attempts\":%" PRIu32 ",\"priority\":%" PRId32,
               jobs[i].attempts, jobs[i].priority);
        if (jobs[i].epochs) {
            printf(",\"epoch\":%" PRIu32 ",\"epochs\":%" PRIu32
                   ",\"loss\":%.6g",
                   jobs[i].epoch, jobs[i].epochs, jobs[i].loss);
        }
        printf("}");
    }
    printf("]}\n");
}

static void
print_text(const drover_status_t *s,
           const double *rates,
           const drover_worker_t *w,
           size_t n_w,
           const drover_job_info_t *jobs,
           size_t n_jobs,
           const char *endpoint)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%s at %s  %s\n", s->broker, endpoint, when);
    printf("jobs: %" PRIu64 " queued, %" PRIu64 " running, %" PRIu64
           " retrying, %" PRIu64 " dead; %" PRIu64 " workers\n\n",
           s->queued, s->running, s->retrying, s->dead, s->workers);
    printf("%-20s %8s %8s %8s %6s %8s %8s %8s %8s\n", "QUEUE", "QUEUED",
           "RUNNING", "RETRYING", "DEAD", "DONE", "FAILED", "OTHER", "PER_S");
    for (size_t i = 0; i < s->n_queues; i++) {
        const drover_queue_t *q = &s->queues[i];
        char per_s[32] = "-";
        if (rates[i] >= 0) {
            snprintf(per_s, sizeof per_s, "%.1f", rates[i]);
        }
        printf("%-20s %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %6" PRIu64
               " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8s\n",
               q->name, q->queued, q->running, q->retrying, q->dead, q->done,
               q->failed, q->expired + q->cancelled, per_s);
    }
    printf("\n%-24s %-9s %9s %4s %9s  %s\n", "WORKER", "STATE", "COMPUTING",
           "HELD", "HEARD", "MODELS");
    for (size_t i = 0; i < n_w; i++) {
        char load[32], heard[32];
        dv_cli_worker_computing(&w[i], load, sizeof load);
        snprintf(heard, sizeof heard, "%.1fs ago",
                 (double)w[i].idle_ms / 1000.0);
        printf("%-24s %-9s %9s %4" PRIu32 " %9s ", w[i].name, w[i].state, load,
               dv_cli_worker_held(&w[i]), heard);
        for (size_t k = 0; k < w[i].n_models; k++) {
            printf(" %s", w[i].models[k]);
        }
        printf(w[i].n_models ? "\n" : " -\n");
    }
    printf("\n%-10s %-20s %-9s %8s  %s\n", "JOB", "QUEUE", "KIND", "ATTEMPTS",
           "PROGRESS");
    for (size_t i = 0; i < n_jobs; i++) {
        char progress[64] = "-";
        if (jobs[i].epochs) {
            snprintf(progress, sizeof progress,
                     "epoch %" PRIu32 "/%" PRIu32 " loss %.4g", jobs[i].epoch,
                     jobs[i].epochs, jobs[i].loss);
        }
        printf("%-10" PRIu64 " %-20s %-9s %8" PRIu32 "  %s\n", jobs[i].job,
               jobs[i].queue, jobs[i].kind, jobs[i].attempts, progress);
    }
}

// One tick: take the snapshots and print them as mode says. Returns 0 or
// the failing call's error (err says why).
static int
tick(drover_t *d,
     top_prev_t *prev,
     unsigned max_jobs,
     bool json,
     bool tty,
     drover_error_t *err)
{
    drover_status_t s;
    int rc = drover_status(d, &s, err);
    if (rc != 0) {
        return rc;
    }
    double now_s = dv_cli_seconds_now();
    drover_worker_t *w = NULL;
    size_t n_w = 0;
    drover_job_info_t *jobs = NULL;
    size_t n_jobs = 0;
    rc = drover_workers(d, &w, &n_w, err);
    if (rc == 0 && max_jobs > 0) {
        rc = drover_job_list(d, "running", NULL, max_jobs, &jobs, &n_jobs, err);
    }
    if (rc == 0) {
        double *rates = dv_calloc(s.n_queues ? s.n_queues : 1, sizeof *rates);
        for (size_t i = 0; i < s.n_queues; i++) {
            rates[i] = rate(prev, &s.queues[i], now_s);
        }
        if (json) {
            print_json(&s, rates, w, n_w, jobs, n_jobs, drover_endpoint(d));
        } else {
            if (tty) {
                fputs("\033[H\033[2J", stdout); // home, clear screen
            }
            print_text(&s, rates, w, n_w, jobs, n_jobs, drover_endpoint(d));
            if (!tty) {
                putchar('\n'); // a blank line between blocks
            }
        }
        fflush(stdout);
        free(rates);
        remember(prev, &s, now_s);
    }
    free(jobs);
    drover_workers_free(&w, n_w);
    drover_status_clear(&s);
    return rc;
}

int
dv_cli_top(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"interval-ms", true, NULL}, {"count", true, NULL},
        {"jobs", true, NULL},        {"broker", true, NULL},
        {"json", false, NULL},       {"help", false, NULL},
        {NULL, false, NULL},
    };
    size_t n_pos;
    int rc = dv_cli_parse_usage(argc, argv, opts, NULL, 0, &n_pos, TOP_USAGE);
    if (rc >= 0) {
        return rc;
    }
    long interval_ms = 1000, count = 0, max_jobs = 20;
    if (!dv_cli_get_long(opts, "interval-ms", 10, 3600000, &interval_ms) ||
        !dv_cli_get_long(opts, "count", 0, 1000000000, &count) ||
        !dv_cli_get_long(opts, "jobs", 0, 10000, &max_jobs)) {
        fputs(TOP_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    drover_t *d = NULL;
    if ((rc = dv_cli_connect(opts, &d)) != 0) {
        return rc;
    }
    bool json = dv_cli_get(opts, "json") != NULL;
    bool tty = !json && isatty(STDOUT_FILENO) == 1;
    top_prev_t prev = {NULL, 0, 0};
    drover_error_t err = {0};
    for (long n = 0; rc == 0 && (count == 0 || n < count); n++) {
        if (n > 0) {
            struct timespec ts = {interval_ms / 1000,
                                  (interval_ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
        }
        rc = tick(d, &prev, (unsigned)max_jobs, json, tty, &err);
    }
    free(prev.marks);
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}
