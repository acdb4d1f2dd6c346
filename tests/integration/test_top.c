// test_top — `drover top` against a real `drover up` cluster: with stdout
// not a terminal it prints one plain block per tick (--count of them) with
// no escape codes, naming the queue with its job counts, the worker with
// its load and the jobs running; --json prints one object per tick, the
// first without a rate (no earlier snapshot), the next with one; bad
// options are usage errors. Long sleep jobs keep the view steady: they stay
// running until the test cancels them, so nothing depends on timing.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dv_test.h"
#include "dv_test_proc.h"

#define N_JOBS 3

typedef struct {
    char *dir;
    char ep[4300];
    dv_proc_t up;
} cluster_t;

// Run `drover ARGS... --broker EP` with stdout to dir/out.txt; returns the
// exit status and *text (caller frees) what it printed.
static int
cli(cluster_t *c, const char *const *args, char **text)
{
    const char *argv[20];
    int n = 0;
    for (; args[n] && n < 16; n++) {
        argv[n] = args[n];
    }
    argv[n++] = "--broker";
    argv[n++] = c->ep;
    argv[n] = NULL;
    char out[4400];
    snprintf(out, sizeof out, "%s/out.txt", c->dir);
    int rc = dv_proc_run("DROVER_BIN", argv, out, c->dir, "cli.log");
    size_t len = 0;
    char *t = (char *)dv_test_read_file(out, &len);
    *text = t ? t : calloc(1, 1);
    return rc;
}

static int
count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)); p++) {
        n++;
    }
    return n;
}

// The line of text that starts with prefix (a copy in buf), or NULL.
static const char *
line_starting(const char *text, const char *prefix, char *buf, size_t size)
{
    size_t pl = strlen(prefix);
    for (const char *p = text; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= pl && strncmp(p, prefix, pl) == 0) {
            snprintf(buf, size, "%.*s", (int)len, p);
            return buf;
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

// In a --json tick from text on: the value of topq's "per_s" (borrowed).
static const char *
topq_rate(const char *text)
{
    const char *q = strstr(text, "{\"name\":\"topq\"");
    const char *r = q ? strstr(q, "\"per_s\":") : NULL;
    return r ? r + 8 : NULL;
}

// Wait (DV_PROC_DEADLINE_MS) until the broker says want jobs are running.
static bool
wait_running(cluster_t *c, int want)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\"running\":%d,", want);
    int64_t end = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
    while (dv_test_now_ms() < end) {
        const char *args[] = {"status", "--json", NULL};
        char *out = NULL;
        int rc = cli(c, args, &out);
        bool ok = rc == 0 && strstr(out, needle) != NULL;
        free(out);
        if (ok) {
            return true;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

// Wait (DV_PROC_DEADLINE_MS) until `drover workers --json` holds needle
// (the worker's load arrives with its heartbeats); *text: the last output
// (caller frees).
static bool
wait_workers(cluster_t *c, const char *needle, char **text)
{
    int64_t end = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
    *text = NULL;
    while (dv_test_now_ms() < end) {
        const char *args[] = {"workers", "--json", NULL};
        free(*text);
        int rc = cli(c, args, text);
        if (rc == 0 && strstr(*text, needle) != NULL) {
            return true;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static void
test_top_plain_json_and_usage(void)
{
    cluster_t c = {0};
    c.dir = dv_test_tmpdir();
    snprintf(c.ep, sizeof c.ep, "ipc://%s/c.sock", c.dir);
    const char *args[] = {"up",  "--workers",  "1",  "--prefetch",
                          "4",   "--endpoint", c.ep, "--heartbeat-ms",
                          "400", NULL};
    c.up = dv_proc_start("DROVER_BIN", args, c.dir, "up.log");
    char ready[9000] = "";
    bool up = c.up.pid && dv_proc_wait_ready(&c.up, ready, sizeof ready);

    // The worker's name, as `drover workers` gives it.
    char worker[160] = "";
    const char *wargs[] = {"workers", "--json", NULL};
    char *wout = NULL;
    int wrc = up ? cli(&c, wargs, &wout) : -1;
    const char *np = wout ? strstr(wout, "\"name\":\"") : NULL;
    if (wrc == 0 && np) {
        np += 8;
        size_t len = strcspn(np, "\"");
        snprintf(worker, sizeof worker, "%.*s", (int)len, np);
    }
    free(wout);

    // Sleep jobs that run until cancelled: the worker holds all of them
    // (concurrency 1 + prefetch 4 >= N_JOBS), so all are "running".
    const char *sargs[] = {"submit",  "--sleep", "600000",    "--count", "3",
                           "--queue", "topq",    "--no-wait", NULL};
    char *ids = NULL;
    int src = up ? cli(&c, sargs, &ids) : -1;
    bool running = src == 0 && wait_running(&c, N_JOBS);
    // Of the three it holds, one computes on its one thread: `workers`
    // says so (not "3/5": those are credits, prefetch included).
    char *wjson = NULL;
    bool load = running && wait_workers(&c,
                                        "\"concurrency\":1,\"computing\":1,"
                                        "\"held\":2,",
                                        &wjson);
    bool load_json = load && strstr(wjson, "\"running\":3,") &&
                     strstr(wjson, "\"capacity\":5,");
    if (!load) {
        fprintf(stderr, "  workers --json: %s\n", wjson ? wjson : "");
    }
    free(wjson);
    const char *wtargs[] = {"workers", NULL};
    char *wtext = NULL, wtline[512] = "";
    int wt_rc = load ? cli(&c, wtargs, &wtext) : -1;
    bool has_wt = wtext && worker[0] &&
                  line_starting(wtext, worker, wtline, sizeof wtline);
    bool wt_header = wtext && strstr(wtext, " COMPUTING HELD ") != NULL;
    free(wtext);

    // Plain: two blocks, no escape codes.
    const char *targs[] = {"top", "--count", "2", "--interval-ms", "100", NULL};
    char *top = NULL;
    int top_rc = running ? cli(&c, targs, &top) : -1;
    char qline[512] = "", wline[512] = "", jline[512] = "";
    bool has_q = top && line_starting(top, "topq ", qline, sizeof qline);
    bool has_w =
        top && worker[0] && line_starting(top, worker, wline, sizeof wline);
    char first_id[32] = "";
    snprintf(first_id, sizeof first_id, "%.*s",
             ids ? (int)strcspn(ids, "\n") : 0, ids ? ids : "");
    char id_prefix[40];
    snprintf(id_prefix, sizeof id_prefix, "%s ", first_id);
    bool has_j = top && first_id[0] &&
                 line_starting(top, id_prefix, jline, sizeof jline);
    int blocks = top ? count(top, "\nQUEUE ") : 0;
    int escapes = top ? count(top, "\033") : -1;
    // topq: 0 queued, 3 running, 0 retrying, 0 dead, 0 done.
    long q_queued = -1, q_running = -1;
    if (has_q) {
        sscanf(qline, "topq %ld %ld", &q_queued, &q_running);
    }

    // JSON: one object a tick; a rate from the second on.
    const char *jargs[] = {"top",           "--count", "2", "--json",
                           "--interval-ms", "100",     NULL};
    char *js = NULL;
    int json_rc = running ? cli(&c, jargs, &js) : -1;
    int json_lines = js ? count(js, "\n") : 0;
    int objects = js ? count(js, "{\"unix_ms\":") : 0;
    const char *rate1 = js ? topq_rate(js) : NULL;
    const char *line2 = js ? strchr(js, '\n') : NULL;
    const char *rate2 = line2 ? topq_rate(line2) : NULL;
    bool first_no_rate =
        rate1 && rate1 < line2 && strncmp(rate1, "null", 4) == 0;
    bool second_rate = rate2 && rate2[0] >= '0' && rate2[0] <= '9';
    bool second_zero = rate2 && strncmp(rate2, "0.000}", 6) == 0;
    bool json_jobs = js && count(js, "\"kind\":\"sleep\"") == 2 * N_JOBS;

    // Usage errors.
    const char *bad1[] = {"top", "--interval-ms", "0", NULL};
    const char *bad2[] = {"top", "extra", NULL};
    char *junk = NULL;
    int bad1_rc = up ? cli(&c, bad1, &junk) : -1;
    free(junk);
    junk = NULL;
    int bad2_rc = up ? cli(&c, bad2, &junk) : -1;
    free(junk);

    // Cancel the sleep jobs so the drain is quick, then stop.
    for (char *p = ids; p && *p;) {
        char id[32];
        size_t len = strcspn(p, "\n");
        snprintf(id, sizeof id, "%.*s", (int)len, p);
        if (len > 0) {
            const char *cargs[] = {"jobs", "cancel", id, NULL};
            char *o = NULL;
            cli(&c, cargs, &o);
            free(o);
        }
        p += len;
        p += *p == '\n';
    }
    int exit_rc = dv_proc_stop(&c.up, SIGTERM);
    if (!(up && running && top_rc == 0 && has_q && has_w && has_j)) {
        dv_proc_dump_log(c.dir, "up.log");
        dv_proc_dump_log(c.dir, "cli.log");
        fprintf(stderr, "--- top:\n%s--- json:\n%s", top ? top : "",
                js ? js : "");
    }
    dv_test_rmdir(c.dir);
    free(c.dir);
    free(ids);
    free(top);
    free(js);
    DV_CHECK(up);
    DV_CHECK(worker[0] != '\0');
    DV_CHECK_EQ(src, 0);
    DV_CHECK(running);
    DV_CHECK_EQ(top_rc, 0);
    DV_CHECK_EQ(blocks, 2);
    DV_CHECK_EQ(escapes, 0);
    DV_CHECK(has_q);
    DV_CHECK_EQ(q_queued, 0);
    DV_CHECK_EQ(q_running, N_JOBS);
    DV_CHECK(has_w);
    DV_CHECK(strstr(wline, " ready ") != NULL);
    DV_CHECK(strstr(wline, " 1/1    2 ") != NULL); // COMPUTING, HELD
    DV_CHECK(load);
    DV_CHECK(load_json);
    DV_CHECK_EQ(wt_rc, 0);
    DV_CHECK(has_wt);
    DV_CHECK(wt_header);
    DV_CHECK(strstr(wtline, " 1/1    2 ") != NULL);
    DV_CHECK(has_j);
    DV_CHECK(strstr(jline, " topq ") != NULL);
    DV_CHECK(strstr(jline, " sleep ") != NULL);
    DV_CHECK_EQ(json_rc, 0);
    DV_CHECK_EQ(objects, 2);
    DV_CHECK_EQ(json_lines, 2);
    DV_CHECK(json_jobs);
    // The first tick has no rate for topq (no earlier snapshot), the
    // second has one (0 here: nothing finished meanwhile).
    DV_CHECK(first_no_rate);
    DV_CHECK(second_rate);
    DV_CHECK(second_zero);
    DV_CHECK_EQ(bad1_rc, 2);
    DV_CHECK_EQ(bad2_rc, 2);
    DV_CHECK_EQ(exit_rc, 0);
}

static const dv_test_case_t cases[] = {
    {"drover top: plain blocks, JSON ticks, usage",
     test_top_plain_json_and_usage},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
