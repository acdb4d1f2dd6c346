// test_consumers_client — the clients of consumer_list and consumer_forget
// (protocol 1.8) against `drover up` (a real broker and worker):
//   - libdrover's drover_consumer_list reads every page (260 consumers of
//     long names are more than one page holds), sorted by queue then name;
//     drover_consumer_forget returns the position the consumer had, is
//     DV_ENOENT the second time, and ends this connection's own follow of
//     it (a new follow is taken, and starts the name anew);
//   - `drover results consumers` (table and --json) and `drover results
//     forget` say what a person reads, with exit 1 and DV_ENOENT for an
//     unknown consumer, 2 for a missing flag.
// The broker's own promises (pages on the wire, a bad `from`, restarts,
// the consumer bound) are test_consumers's.
//
// Everything runs on ipc:// in a temporary folder; readiness comes from
// READY lines, and results from polling with a deadline, never sleeps.
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "drover.h"
#include "dv_test.h"
#include "dv_test_proc.h"

#define WAIT_MS 30000 // a result's deadline: generous for ASan on 2 cores
#define N_MANY  260   // consumers of ~300 wire bytes each: two pages

typedef struct {
    char *dir;     // temporary folder
    char ep[4300]; // the client endpoint
    dv_proc_t up;  // `drover up --workers 1`
} cluster_t;

// `drover up` with one worker on a fresh ipc endpoint; false unless READY.
static bool
up_start(cluster_t *c)
{
    c->dir = dv_test_tmpdir();
    snprintf(c->ep, sizeof c->ep, "ipc://%s/c.sock", c->dir);
    const char *args[] = {"up", "--workers", "1", "--endpoint", c->ep, NULL};
    c->up = dv_proc_start("DROVER_BIN", args, c->dir, "up.log");
    char ready[4400] = "";
    return c->up.pid && dv_proc_wait_ready(&c->up, ready, sizeof ready) &&
           strcmp(ready, c->ep) == 0;
}

static void
up_end(cluster_t *c, bool failed)
{
    dv_proc_stop(&c->up, SIGTERM);
    if (failed) {
        dv_proc_dump_log(c->dir, "up.log");
    }
    dv_test_rmdir(c->dir);
    free(c->dir);
}

// Run `$DROVER_BIN ARGS` (a shell fragment), stdout and stderr together;
// *out (caller frees) gets them. Returns the exit status.
static int
sh(char **out, const char *fmt, ...)
{
    char args[8192], cmd[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "\"%s\" %s 2>&1", getenv("DROVER_BIN"), args);
    FILE *p = popen(cmd, "r");
    size_t cap = 4096, n = 0, got;
    char *buf = malloc(cap);
    while (p && (got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[n] = '\0';
    int status = p ? pclose(p) : -1;
    *out = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Counts the stream results a follow gets, and the last seq.
typedef struct {
    int n;
    uint64_t last_seq;
} seen_t;

static void
on_result(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    seen_t *s = arg;
    s->n++;
    s->last_seq = drover_result_seq(r);
}

// Poll d until s has want results or WAIT_MS pass.
static bool
poll_for(drover_t *d, seen_t *s, int want)
{
    int64_t end = dv_test_now_ms() + WAIT_MS;
    drover_error_t err;
    while (s->n < want && dv_test_now_ms() < end) {
        if (drover_poll(d, 100, &err) < 0) {
            return false;
        }
    }
    return s->n >= want;
}

// Consumer k's name: 128 characters, sorting by k.
static void
many_name(char *buf, size_t size, int k)
{
    snprintf(buf, size, "%03d-%0124d", k, 0);
}

static void
test_libdrover_list_and_forget(void)
{
    cluster_t c = {0};
    bool up = up_start(&c);
    drover_t *d = NULL;
    drover_error_t err = {0};
    int rc_conn = up ? drover_connect(&d, c.ep, 10000, &err) : -1;
    char q[121];
    memset(q, 'q', 120);
    q[120] = '\0';
    // N_MANY consumers of q, made out of order; unfollowed, they stay.
    int made = 0;
    seen_t none = {0};
    for (int k = N_MANY - 1; rc_conn == 0 && k >= 0; k--) {
        char name[129];
        many_name(name, sizeof name, k);
        made += drover_follow(d, q, name, 0, false, on_result, &none, NULL,
                              &err) == 0 &&
                drover_unfollow(d, q, name, &err) == 0;
    }
    drover_consumer_t *v = NULL;
    size_t n = 0;
    int rc_list = rc_conn == 0 ? drover_consumer_list(d, q, &v, &n, &err) : -1;
    int in_order = 0, fresh = 0;
    for (size_t i = 0; rc_list == 0 && i < n; i++) {
        char want[129];
        many_name(want, sizeof want, (int)i);
        in_order +=
            strcmp(v[i].queue, q) == 0 && strcmp(v[i].consumer, want) == 0;
        fresh += v[i].acked == 0 && v[i].last == 0 && !v[i].followed &&
                 v[i].owner[0] == '\0';
    }
    free(v);
    v = NULL;

    // A consumer that this connection follows, one result in: forgetting
    // it gives its position and ends our follow, so a new one is taken
    // and starts the name anew (the same result again).
    seen_t s1 = {0}, s2 = {0};
    int rc_follow = rc_conn == 0 ? drover_follow(d, "cq", "x", 0, false,
                                                 on_result, &s1, NULL, &err)
                                 : -1;
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = "cq";
    job.payload = "hi";
    job.payload_len = 2;
    drover_result_t *r = NULL;
    int rc_run = rc_follow == 0 ? drover_run(d, &job, WAIT_MS, &r, &err) : -1;
    drover_result_destroy(&r);
    bool got1 = rc_run == 0 && poll_for(d, &s1, 1);
    int rc_ack = got1 ? drover_ack(d, "cq", "x", s1.last_seq, true, &err) : -1;
    size_t n_x = 0;
    uint64_t x_acked = 0, x_last = 0;
    bool x_followed = false;
    int rc_list_x =
        rc_ack == 0 ? drover_consumer_list(d, "cq", &v, &n_x, &err) : -1;
    if (rc_list_x == 0 && n_x == 1) {
        x_acked = v[0].acked;
        x_last = v[0].last;
        x_followed = v[0].followed;
    }
    free(v);
    v = NULL;
    uint64_t acked = 99;
    int rc_forget = rc_list_x == 0
                        ? drover_consumer_forget(d, "cq", "x", &acked, &err)
                        : -1;
    drover_error_t e2 = {0};
    int rc_again =
        rc_forget == 0 ? drover_consumer_forget(d, "cq", "x", NULL, &e2) : -1;
    uint64_t acked2 = 99;
    int rc_refollow = rc_forget == 0
                          ? drover_follow(d, "cq", "x", 0, false, on_result,
                                          &s2, &acked2, &err)
                          : -1;
    bool got_again = rc_refollow == 0 && poll_for(d, &s2, 1);
    int stale = s1.n; // the old follow's callback got nothing more
    drover_error_t e3 = {0};
    int rc_bad = d ? drover_consumer_forget(d, NULL, "x", NULL, &e3) : -1;
    // the N_MANY go, and the list of q is empty (never a NULL array)
    int forgot = 0;
    for (int k = 0; rc_list == 0 && k < N_MANY; k++) {
        char name[129];
        many_name(name, sizeof name, k);
        forgot += drover_consumer_forget(d, q, name, NULL, &err) == 0;
    }
    size_t n_after = 99;
    int rc_empty =
        rc_list == 0 ? drover_consumer_list(d, q, &v, &n_after, &err) : -1;
    bool array = v != NULL;
    free(v);
    drover_destroy(&d);
    up_end(&c, rc_list != 0 || n != N_MANY);

    DV_CHECK(up);
    DV_CHECK_EQ(rc_conn, 0);
    DV_CHECK_EQ(made, N_MANY);
    DV_CHECK_EQ(rc_list, 0);
    DV_CHECK_EQ(n, N_MANY); // every page read
    DV_CHECK_EQ(in_order, N_MANY);
    DV_CHECK_EQ(fresh, N_MANY);
    DV_CHECK_EQ(rc_follow, 0);
    DV_CHECK_EQ(rc_run, 0);
    DV_CHECK(got1);
    DV_CHECK_EQ(rc_ack, 0);
    DV_CHECK_EQ(rc_list_x, 0);
    DV_CHECK_EQ(n_x, 1);
    DV_CHECK_EQ(x_acked, s1.last_seq);
    DV_CHECK_EQ(x_last, s1.last_seq);
    DV_CHECK(x_followed);
    DV_CHECK_EQ(rc_forget, 0);
    DV_CHECK_EQ(acked, s1.last_seq);
    DV_CHECK_EQ(rc_again, DV_ENOENT);
    DV_CHECK(strstr(e2.text, "x") != NULL);
    DV_CHECK_EQ(rc_refollow, 0); // not "follows a stream already"
    DV_CHECK_EQ(acked2, 0);      // anew
    DV_CHECK(got_again);
    DV_CHECK_EQ(s2.last_seq, s1.last_seq); // from the oldest kept
    DV_CHECK_EQ(stale, 1);
    DV_CHECK_EQ(rc_bad, DV_EINVAL);
    DV_CHECK_EQ(forgot, N_MANY);
    DV_CHECK_EQ(rc_empty, 0);
    DV_CHECK_EQ(n_after, 0);
    DV_CHECK(array);
}

static void
test_cli_consumers_and_forget(void)
{
    cluster_t c = {0};
    bool up = up_start(&c);
    char *o = NULL;
    // three results on cq; consumer c1 prints and acknowledges two
    int rc_submit =
        up ? sh(&o, "submit --echo 2 --count 3 --queue cq --broker '%s'", c.ep)
           : -1;
    free(o);
    o = NULL;
    int rc_follow = rc_submit == 0
                        ? sh(&o,
                             "results follow --queue cq --consumer c1 "
                             "--count 2 --idle-ms 10000 --broker '%s'",
                             c.ep)
                        : -1;
    free(o);
    o = NULL;
    int rc_json =
        sh(&o, "results consumers --queue cq --json --broker '%s'", c.ep);
    bool json = strcmp(o, "[{\"queue\":\"cq\",\"consumer\":\"c1\",\"acked\":2,"
                          "\"last\":3,\"lag\":1,\"followed\":false}]\n") == 0;
    if (!json) {
        fprintf(stderr, "  consumers --json: %s", o);
    }
    free(o);
    o = NULL;
    int rc_text = sh(&o, "results consumers --broker '%s'", c.ep);
    char qn[64] = "", cn[64] = "", fol[16] = "", own[80] = "";
    unsigned long ack = 0, last = 0, lag = 0;
    const char *row = strchr(o, '\n');
    bool header =
        strncmp(o, "QUEUE", 5) == 0 && strstr(o, "LAG") && strstr(o, "OWNER");
    int fields = row ? sscanf(row + 1, "%63s %63s %lu %lu %lu %15s %79s", qn,
                              cn, &ack, &last, &lag, fol, own)
                     : 0;
    bool text = header && fields == 7 && strcmp(qn, "cq") == 0 &&
                strcmp(cn, "c1") == 0 && ack == 2 && last == 3 && lag == 1 &&
                strcmp(fol, "no") == 0 && strcmp(own, "-") == 0;
    if (!text) {
        fprintf(stderr, "  consumers: %s", o);
    }
    free(o);
    o = NULL;
    int rc_forget = sh(&o,
                       "results forget --queue cq --consumer c1 --broker "
                       "'%s'",
                       c.ep);
    bool said = strcmp(o, "forgot consumer c1 on queue cq (acked 2)\n") == 0;
    free(o);
    o = NULL;
    int rc_again = sh(&o,
                      "results forget --queue cq --consumer c1 --broker "
                      "'%s'",
                      c.ep);
    bool enoent = strncmp(o, "drover: DV_ENOENT: ", 19) == 0;
    free(o);
    o = NULL;
    int rc_empty = sh(&o, "results consumers --json --broker '%s'", c.ep);
    bool empty = strcmp(o, "[]\n") == 0;
    free(o);
    o = NULL;
    int rc_usage = sh(&o, "results forget --queue cq --broker '%s'", c.ep);
    bool usage = strncmp(o, "usage:", 6) == 0;
    free(o);
    o = NULL;
    up_end(&c, !json || !text);

    DV_CHECK(up);
    DV_CHECK_EQ(rc_submit, 0);
    DV_CHECK_EQ(rc_follow, 0);
    DV_CHECK_EQ(rc_json, 0);
    DV_CHECK(json);
    DV_CHECK_EQ(rc_text, 0);
    DV_CHECK(text);
    DV_CHECK_EQ(rc_forget, 0);
    DV_CHECK(said);
    DV_CHECK_EQ(rc_again, 1);
    DV_CHECK(enoent);
    DV_CHECK_EQ(rc_empty, 0);
    DV_CHECK(empty);
    DV_CHECK_EQ(rc_usage, 2);
    DV_CHECK(usage);
}

static const dv_test_case_t cases[] = {
    {"libdrover: every page, sorted; forget ends our own follow",
     test_libdrover_list_and_forget},
    {"drover results consumers and forget", test_cli_consumers_and_forget},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
