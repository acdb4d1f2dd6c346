// dv_cli_results — `drover results`: a queue's result stream as a named
// consumer (follow: print and acknowledge), and the consumers the broker
// keeps (consumers: list them with their position and lag; forget: remove
// one). See dv_cli_remote.h.
//
// follow runs until a count, an idle time or a signal; SIGINT/SIGTERM only
// set s_stop, and the loop stores the last position (a waited-for ack) and
// unfollows before it exits.

#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_cli_remote.h"

#define RESULTS_USAGE                                                          \
    "usage: drover results follow --queue Q --consumer NAME [--count N]\n"     \
    "                             [--idle-ms N] [--window N] [--from "         \
    "latest]\n"                                                                \
    "       drover results consumers [--queue Q]\n"                            \
    "       drover results forget --queue Q --consumer NAME\n"                 \
    "all take [--broker E] [--json]\n"                                         \
    "follow prints the queue's results as they finish (one line each: seq, "   \
    "job,\n"                                                                   \
    "state, and the payload size or the error) and acknowledges them; the "    \
    "broker\n"                                                                 \
    "keeps NAME's position, so the next follow resumes after the last one "    \
    "printed.\n"                                                               \
    "It stops after N results, after N ms without one (--idle-ms), or on "     \
    "Ctrl-C.\n"                                                                \
    "consumers lists the consumers the broker keeps (of queue Q): ACKED "      \
    "(every\n"                                                                 \
    "result up to it handled), LAST (the queue's last result given out), "     \
    "LAG,\n"                                                                   \
    "FOLLOWED (a connection follows it now) and OWNER (the key owning it).\n"  \
    "forget removes consumer NAME of queue Q: its position goes, a follow of " \
    "it\n"                                                                     \
    "gets nothing more, and a later follow of NAME starts anew.\n"

// --------------------------------------------------------------- follow

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

// `drover results follow`: argv after "follow".
static int
results_follow(int argc, char **argv)
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
    int rc =
        dv_cli_parse_usage(argc, argv, opts, pos, 0, &n_pos, RESULTS_USAGE);
    if (rc >= 0) {
        return rc;
    }
    long count = 0, idle = 0, window = 100;
    const char *queue = dv_cli_get(opts, "queue");
    const char *consumer = dv_cli_get(opts, "consumer");
    const char *from = dv_cli_get(opts, "from");
    if (!queue || !consumer ||
        !dv_cli_get_long(opts, "count", 1, LONG_MAX, &count) ||
        !dv_cli_get_long(opts, "idle-ms", 1, 86400000, &idle) ||
        !dv_cli_get_long(opts, "window", 1, 10000, &window) ||
        (from && strcmp(from, "latest") != 0 &&
         strcmp(from, "earliest") != 0)) {
        fputs(RESULTS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    drover_t *d = NULL;
    if ((rc = dv_cli_connect(opts, &d)) != 0) {
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
        return dv_cli_fail_d(&err);
    }
    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
    st.last_seq = acked;
    uint64_t sent_ack = acked;
    double last_event = dv_cli_seconds_now();
    while (!s_stop && (!count || st.printed < count)) {
        long before = st.printed;
        int n = drover_poll(d, 200, &err);
        if (n < 0) {
            rc = dv_cli_fail_d(&err);
            break;
        }
        fflush(stdout);
        if (st.printed > before) {
            last_event = dv_cli_seconds_now();
            if (st.last_seq > sent_ack) { // each batch, without waiting
                drover_ack(d, queue, consumer, st.last_seq, false, &err);
                sent_ack = st.last_seq;
            }
        } else if (idle && (dv_cli_seconds_now() - last_event) * 1000 >= idle) {
            break;
        }
    }
    // The position is stored before we go, and the broker told we went
    // (a ZeroMQ peer's leaving is not seen: `results consumers` would show
    // the consumer followed, and results would go on being sent here).
    if (rc == 0 && st.last_seq > acked &&
        drover_ack(d, queue, consumer, st.last_seq, true, &err) != 0) {
        rc = dv_cli_fail_d(&err);
    }
    if (rc == 0 && drover_unfollow(d, queue, consumer, &err) != 0) {
        rc = dv_cli_fail_d(&err);
    }
    drover_destroy(&d);
    return rc ? rc : DV_CLI_OK;
}

// ------------------------------------------------------------ consumers

// Results a consumer has not acknowledged (0 if the broker's numbers
// disagree: a position is never past the last seq given out).
static uint64_t
consumer_lag(const drover_consumer_t *c)
{
    return c->last > c->acked ? c->last - c->acked : 0;
}

// `--json`: an array of objects, the wire's fields plus lag; window and
// in_flight only while followed, owner only when it has one.
static void
print_consumers_json(const drover_consumer_t *v, size_t n)
{
    printf("[");
    for (size_t i = 0; i < n; i++) {
        printf("%s{\"queue\":", i ? "," : "");
        dv_cli_json_str(stdout, v[i].queue);
        printf(",\"consumer\":");
        dv_cli_json_str(stdout, v[i].consumer);
        printf(",\"acked\":%" PRIu64 ",\"last\":%" PRIu64 ",\"lag\":%" PRIu64
               ",\"followed\":%s",
               v[i].acked, v[i].last, consumer_lag(&v[i]),
               v[i].followed ? "true" : "false");
        if (v[i].followed) {
            printf(",\"window\":%" PRIu32 ",\"in_flight\":%" PRIu32,
                   v[i].window, v[i].in_flight);
        }
        if (v[i].owner[0]) {
            printf(",\"owner\":");
            dv_cli_json_str(stdout, v[i].owner);
        }
        printf("}");
    }
    printf("]\n");
}

static void
print_consumers_text(const drover_consumer_t *v, size_t n)
{
    printf("%-20s %-20s %10s %10s %10s %-8s %s\n", "QUEUE", "CONSUMER", "ACKED",
           "LAST", "LAG", "FOLLOWED", "OWNER");
    for (size_t i = 0; i < n; i++) {
        printf("%-20s %-20s %10" PRIu64 " %10" PRIu64 " %10" PRIu64
               " %-8s %s\n",
               v[i].queue, v[i].consumer, v[i].acked, v[i].last,
               consumer_lag(&v[i]), v[i].followed ? "yes" : "no",
               v[i].owner[0] ? v[i].owner : "-");
    }
}

// `drover results consumers`: argv after "consumers".
static int
results_consumers(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"queue", true, NULL}, {"broker", true, NULL}, {"json", false, NULL},
        {"help", false, NULL}, {NULL, false, NULL},
    };
    const char *pos[1];
    size_t n_pos = 0;
    int rc =
        dv_cli_parse_usage(argc, argv, opts, pos, 0, &n_pos, RESULTS_USAGE);
    if (rc >= 0) {
        return rc;
    }
    drover_t *d = NULL;
    if ((rc = dv_cli_connect(opts, &d)) != 0) {
        return rc;
    }
    drover_error_t err = {0};
    drover_consumer_t *v = NULL;
    size_t n = 0;
    rc = drover_consumer_list(d, dv_cli_get(opts, "queue"), &v, &n, &err);
    if (rc == 0 && dv_cli_get(opts, "json")) {
        print_consumers_json(v, n);
    } else if (rc == 0) {
        print_consumers_text(v, n);
    }
    free(v);
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}

// `drover results forget`: argv after "forget".
static int
results_forget(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"queue", true, NULL}, {"consumer", true, NULL}, {"broker", true, NULL},
        {"json", false, NULL}, {"help", false, NULL},    {NULL, false, NULL},
    };
    const char *pos[1];
    size_t n_pos = 0;
    int rc =
        dv_cli_parse_usage(argc, argv, opts, pos, 0, &n_pos, RESULTS_USAGE);
    if (rc >= 0) {
        return rc;
    }
    const char *queue = dv_cli_get(opts, "queue");
    const char *consumer = dv_cli_get(opts, "consumer");
    if (!queue || !*queue || !consumer || !*consumer) {
        fputs(RESULTS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    drover_t *d = NULL;
    if ((rc = dv_cli_connect(opts, &d)) != 0) {
        return rc;
    }
    drover_error_t err = {0};
    uint64_t acked = 0;
    rc = drover_consumer_forget(d, queue, consumer, &acked, &err);
    if (rc == 0 && dv_cli_get(opts, "json")) {
        printf("{\"queue\":");
        dv_cli_json_str(stdout, queue);
        printf(",\"consumer\":");
        dv_cli_json_str(stdout, consumer);
        printf(",\"acked\":%" PRIu64 "}\n", acked);
    } else if (rc == 0) {
        printf("forgot consumer %s on queue %s (acked %" PRIu64 ")\n", consumer,
               queue, acked);
    }
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}

// ---------------------------------------------------------------- group

int
dv_cli_results(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } subs[] = {
        {"follow", results_follow},
        {"consumers", results_consumers},
        {"forget", results_forget},
    };
    int start = dv_cli_group_start(argc, argv, RESULTS_USAGE);
    if (start >= 0) {
        return start;
    }
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) {
        if (strcmp(argv[0], subs[i].name) == 0) {
            return subs[i].run(argc - 1, argv + 1);
        }
    }
    fputs(RESULTS_USAGE, stderr);
    return DV_CLI_USAGE;
}
