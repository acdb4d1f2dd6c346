// test_attack — what a hostile peer did to a real drover-broker and
// drover-worker (issue 13), each case the attack and then proof that the
// daemons are alive and still serve:
//   - a worker connection's failed `done` with an 80-byte error name and no
//     text (was a SIGSEGV in the broker), or a short text (was read past);
//   - results too big for a header: evaluate on a model with 300 classes
//     (the confusion matrix) and infer on one with long class names — they
//     used to leave the job running forever; now they travel as frames;
//   - producers asking workers for absurd allocations: a train job whose
//     hidden layers total 64 G parameters, an infer input whose output
//     would not fit a frame — refused at submit, naming the numbers.
//
// Everything runs on ipc:// in a temporary folder; readiness comes from
// READY lines, never from sleeps.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <zmq.h>

#include "drover.h"
#include "dv_limits.h"
#include "dv_model.h"
#include "dv_modelfile.h"
#include "dv_proto.h"
#include "dv_test.h"
#include "dv_test_cluster.h"
#include "dv_test_proc.h"
#include "dv_test_worker.h"
#include "dv_wire.h"

#define WAIT_MS      60000 // generous for ASan on 2 cores
#define HEARTBEAT_MS "1000"

typedef struct {
    char *dir;                 // temporary folder
    char cep[4300], wep[4300]; // endpoints
    dv_proc_t broker;          // drover-broker
    dv_proc_t worker;          // a real drover-worker (when started)
    drover_t *d;               // a client
    void *ctx;                 // for raw sockets
} cluster_t;

static bool
worker_start(cluster_t *c)
{
    const char *args[] = {"--broker",       c->wep,       "--name", "w0",
                          "--heartbeat-ms", HEARTBEAT_MS, NULL};
    c->worker = dv_proc_start("DROVER_WORKER_BIN", args, c->dir, "worker.log");
    char ready[9000];
    return c->worker.pid && dv_proc_wait_ready(&c->worker, ready, sizeof ready);
}

static bool
cluster_up(cluster_t *c, bool with_worker)
{
    memset(c, 0, sizeof *c);
    c->dir = dv_test_tmpdir();
    snprintf(c->cep, sizeof c->cep, "ipc://%s/client.sock", c->dir);
    snprintf(c->wep, sizeof c->wep, "ipc://%s/worker.sock", c->dir);
    const char *args[] = {"--client",       c->cep,       "--worker", c->wep,
                          "--heartbeat-ms", HEARTBEAT_MS, NULL};
    c->broker = dv_proc_start("DROVER_BROKER_BIN", args, c->dir, "broker.log");
    char ready[9000];
    if (!c->broker.pid ||
        !dv_proc_wait_ready(&c->broker, ready, sizeof ready)) {
        fprintf(stderr, "  broker did not get ready\n");
        return false;
    }
    if (with_worker && !worker_start(c)) {
        fprintf(stderr, "  worker did not get ready\n");
        return false;
    }
    c->ctx = zmq_ctx_new();
    drover_error_t err = {0};
    if (drover_connect(&c->d, c->cep, 10000, &err) != 0) {
        fprintf(stderr, "  connect: %s\n", err.text);
        return false;
    }
    return true;
}

// Stop everything; returns the broker's exit status on SIGTERM (0: it was
// alive and stopped cleanly).
static int
cluster_down(cluster_t *c)
{
    drover_destroy(&c->d);
    if (c->ctx) {
        zmq_ctx_term(c->ctx);
    }
    dv_proc_stop(&c->worker, SIGTERM);
    int rc = c->broker.pid ? dv_proc_stop(&c->broker, SIGTERM) : -1;
    if (rc != 0) {
        dv_proc_dump_log(c->dir, "broker.log");
        dv_proc_dump_log(c->dir, "worker.log");
    }
    dv_test_rmdir(c->dir);
    free(c->dir);
    return rc;
}

// An echo job through the queue comes back: the cluster still serves.
static bool
echo_ok(cluster_t *c)
{
    drover_job_t job = DROVER_JOB_INIT;
    job.payload = "still here";
    job.payload_len = 10;
    drover_result_t *r = NULL;
    drover_error_t err = {0};
    bool ok =
        drover_run(c->d, &job, WAIT_MS, &r, &err) == 0 && drover_result_ok(r);
    size_t len = 0;
    const void *p = ok ? drover_result_payload(r, &len) : NULL;
    ok = ok && len == 10 && memcmp(p, "still here", 10) == 0;
    if (!ok) {
        fprintf(stderr, "  echo failed: %s\n", err.text);
    }
    drover_result_destroy(&r);
    return ok;
}

static void
send_header(void *sock, dv_msgw_t *w)
{
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_wire_send(sock, NULL, 0, h, len, NULL, 0);
    dv_msgw_destroy(&w);
}

// A raw DEALER connected to endpoint (linger 0, no send limit): a hostile
// peer's socket. NULL when it could not be made.
static void *
raw_dealer(cluster_t *c, const char *endpoint)
{
    void *s = zmq_socket(c->ctx, ZMQ_DEALER);
    int linger = 0;
    dv_test_no_hwm(s);
    if (s && (zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
              zmq_connect(s, endpoint) != 0)) {
        zmq_close(s);
        s = NULL;
    }
    return s;
}

// A raw worker connection registered as "evil" with one slot. NULL when
// it could not be made.
static void *
evil_worker(cluster_t *c)
{
    void *s = raw_dealer(c, c->wep);
    if (s) {
        dv_msgw_t *w = dv_msgw_new(DV_MSG_REGISTER, 0);
        dv_msgw_str(w, "worker", "evil");
        dv_msgw_uint(w, "capacity", 1);
        send_header(s, w);
    }
    return s;
}

// Called by read_replies with each message (m NULL: it did not decode) and
// its frames; returns whether it counts towards the messages wanted.
typedef bool(reply_fn)(const dv_msg_t *m, const dv_wire_msg_t *in, void *arg);

// Read messages on sock until fn counted want of them or the deadline;
// returns how many it counted.
static int
read_replies(void *sock, int want, reply_fn *fn, void *arg)
{
    int got = 0;
    int64_t end = dv_test_now_ms() + WAIT_MS;
    while (got < want && dv_test_now_ms() < end) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 1000) <= 0) {
            continue;
        }
        dv_wire_msg_t in;
        if (dv_wire_recv(sock, false, &in) != 1) {
            continue;
        }
        dv_msg_t *m = NULL;
        dv_error_t err = {0};
        if (dv_msg_decode(&m, zmq_msg_data(&in.header),
                          zmq_msg_size(&in.header), in.frames, in.n_payload,
                          NULL, &err) != 0) {
            m = NULL;
        }
        got += fn(m, &in, arg);
        dv_msg_destroy(&m);
        dv_wire_msg_close(&in);
    }
    return got;
}

typedef struct {
    uint64_t job, attempt;
} run_t;

static bool
on_run_msg(const dv_msg_t *m, const dv_wire_msg_t *in, void *arg)
{
    (void)in;
    run_t *r = arg;
    dv_error_t err = {0};
    return m && dv_msg_type(m) == DV_MSG_RUN &&
           dv_msg_uint(m, "job", &r->job, &err) == 0 &&
           dv_msg_uint(m, "attempt", &r->attempt, &err) == 0;
}

// Read messages on a fake worker's socket until a `run`; its job and
// attempt. False on the deadline.
static bool
await_run(void *sock, uint64_t *job, uint64_t *attempt)
{
    run_t r = {0, 0};
    bool got = read_replies(sock, 1, on_run_msg, &r) == 1;
    *job = r.job;
    *attempt = r.attempt;
    return got;
}

// Replies sorted by kind: `ok`, `accepted`, results whose one frame is
// `big` bytes, errors with code `code` (the first one's text printed), and
// anything else.
typedef struct {
    int code;   // the refusal counted
    size_t big; // the result size counted (0: none)
    int ok, accepted, results, refused, other;
} tally_t;

static bool
on_tally(const dv_msg_t *m, const dv_wire_msg_t *in, void *arg)
{
    tally_t *t = arg;
    dv_error_t e = {0};
    int code = 0;
    char text[256] = "";
    dv_msg_type_t type = m ? dv_msg_type(m) : DV_MSG_COUNT_;
    if (type == DV_MSG_OK) {
        t->ok++;
    } else if (type == DV_MSG_ACCEPTED) {
        t->accepted++;
    } else if (type == DV_MSG_RESULT && t->big && in->n_payload == 1 &&
               in->frames[0].len == t->big) {
        t->results++;
    } else if (type == DV_MSG_ERROR &&
               dv_msg_error(m, &code, text, sizeof text, &e) == 0 &&
               code == t->code) {
        if (t->refused++ == 0) {
            printf("  refusal: %.150s\n", text);
        }
    } else {
        t->other++;
    }
    return true;
}

typedef struct {
    bool got;
    bool ok;
    int code;
    char text[256];
} outcome_t;

static void
on_result(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    outcome_t *o = arg;
    const char *text = "";
    o->got = true;
    o->ok = drover_result_ok(r);
    o->code = drover_result_error(r, &text);
    snprintf(o->text, sizeof o->text, "%s", text ? text : "");
}

// A worker connection sends a failed `done` whose error map is hostile:
// the job ends failed with what could be read, and the broker lives on.
static void
test_hostile_error_map(void)
{
    cluster_t c;
    bool up = cluster_up(&c, false);
    void *evil = up ? evil_worker(&c) : NULL;
    up = evil != NULL;
    char name80[81];
    memset(name80, 'N', 80);
    name80[80] = '\0';
    // Two attacks: no text at all (the SIGSEGV), then a 2-byte text (read
    // past its end into an uninitialized buffer).
    const char *texts[2] = {NULL, "ab"};
    outcome_t out[2] = {{0}, {0}};
    bool ran[2] = {false, false};
    for (int i = 0; up && i < 2; i++) {
        drover_job_t job = DROVER_JOB_INIT;
        job.payload = "x";
        job.payload_len = 1;
        drover_error_t err = {0};
        drover_submit_async(c.d, &job, on_result, &out[i], &err);
        drover_poll(c.d, 0, &err); // sends it
        uint64_t id = 0, attempt = 0;
        ran[i] = await_run(evil, &id, &attempt);
        dv_msgw_t *w = dv_msgw_new(DV_MSG_DONE, 0);
        dv_msgw_uint(w, "job", id);
        dv_msgw_uint(w, "attempt", attempt);
        dv_msgw_str(w, "state", "failed");
        dv_msgw_key(w, "error");
        dv_msgw_v_map(w, texts[i] ? 2 : 1);
        dv_msgw_v_str(w, "name");
        dv_msgw_v_str(w, name80);
        if (texts[i]) {
            dv_msgw_v_str(w, "text");
            dv_msgw_v_str(w, texts[i]);
        }
        send_header(evil, w);
        int64_t end = dv_test_now_ms() + WAIT_MS;
        while (!out[i].got && dv_test_now_ms() < end) {
            drover_poll(c.d, 500, &err);
        }
        printf("  attack %d: ok %d, %s: %.60s\n", i + 1, out[i].ok,
               drover_err_name(out[i].code), out[i].text);
    }
    if (evil) {
        zmq_close(evil);
    }
    bool real = up && worker_start(&c);
    bool serves = real && echo_ok(&c);
    int exit_rc = cluster_down(&c);
    DV_CHECK(up);
    for (int i = 0; i < 2; i++) {
        DV_CHECK(ran[i]);
        DV_CHECK(out[i].got);
        DV_CHECK(!out[i].ok);
        DV_CHECK_EQ(out[i].code, DV_EFORMAT);              // an unknown name
        DV_CHECK(strstr(out[i].text, "NNNNNNNN") != NULL); // shown, cut
    }
    DV_CHECK(strstr(out[1].text, ": ab") != NULL);
    DV_CHECK(serves);
    DV_CHECK_EQ(exit_rc, 0); // the broker was alive to the end
}

// A worker connection answers an evaluate job with a `metrics` map of
// ~40 KB (2,000 made-up metrics): the broker would have kept and passed on
// a result header that, near the header limit, no client could read. The
// job fails DV_EMSGSIZE with the reason, its submitter reads that, and the
// broker lives on.
static void
test_hostile_metrics(void)
{
    cluster_t c;
    bool up = cluster_up(&c, false);
    size_t widths[] = {2, 2};
    dv_act_t acts[] = {DV_ACT_SOFTMAX};
    int push =
        up ? dv_tcluster_push_model(
                 c.d, dv_test_model(DV_TASK_CLASSIFICATION, 1, widths, acts, 2),
                 "judged")
           : -1;
    void *evil = push == 0 ? evil_worker(&c) : NULL;
    static const char csv[] = "f0,f1,y\n1,2,c0\n3,4,c1\n";
    drover_job_t ej = DROVER_JOB_INIT;
    ej.kind = "evaluate";
    ej.model = "judged";
    ej.payload = csv;
    ej.payload_len = sizeof csv - 1;
    outcome_t out = {0};
    drover_error_t err = {0};
    uint64_t id = 0, attempt = 0;
    bool ran = false;
    if (evil) {
        drover_submit_async(c.d, &ej, on_result, &out, &err);
        drover_poll(c.d, 0, &err); // sends it
        ran = await_run(evil, &id, &attempt);
    }
    if (ran) {
        enum { N = 2000 };
        dv_msgw_t *w = dv_msgw_new(DV_MSG_DONE, 0);
        dv_msgw_uint(w, "job", id);
        dv_msgw_uint(w, "attempt", attempt);
        dv_msgw_str(w, "state", "done");
        dv_msgw_str(w, "model", "judged@1");
        dv_msgw_key(w, "metrics");
        dv_msgw_v_map(w, N);
        for (int i = 0; i < N; i++) {
            char name[32];
            snprintf(name, sizeof name, "made-up-metric-%04d", i);
            dv_msgw_v_str(w, name);
            dv_msgw_v_double(w, 0.5);
        }
        send_header(evil, w);
        int64_t end = dv_test_now_ms() + WAIT_MS;
        while (!out.got && dv_test_now_ms() < end) {
            drover_poll(c.d, 500, &err);
        }
    }
    printf("  evaluate with %s metrics: ok %d, %s: %.100s\n", "2,000", out.ok,
           drover_err_name(out.code), out.text);
    if (evil) {
        zmq_close(evil);
    }
    bool real = up && worker_start(&c);
    bool serves = real && echo_ok(&c);
    int exit_rc = cluster_down(&c);
    DV_CHECK(up);
    DV_CHECK_EQ(push, 0);
    DV_CHECK(ran);
    DV_CHECK(out.got);
    DV_CHECK(!out.ok);
    DV_CHECK_EQ(out.code, DV_EMSGSIZE);
    DV_CHECK(strstr(out.text, "metrics take") != NULL);
    DV_CHECK(serves);
    DV_CHECK_EQ(exit_rc, 0);
}

// Results bigger than a header go as frames: evaluate on 300 classes (the
// confusion matrix), infer on a model whose class names take 60 KB. Both
// used to leave the job "running" forever, holding the worker's slot.
static void
test_big_results_travel_as_frames(void)
{
    cluster_t c;
    bool up = cluster_up(&c, true);
    // 300 classes "c0".."c299" over 2 features (zero weights: every row
    // predicts class 0), and an evaluation set that uses all of them.
    const size_t k = 300;
    size_t widths[] = {2, k};
    dv_act_t acts[] = {DV_ACT_SOFTMAX};
    int push1 = dv_tcluster_push_model(
        c.d, dv_test_model(DV_TASK_CLASSIFICATION, 1, widths, acts, k), "many");
    size_t cap = 64 + k * 32, len = 0;
    char *csv = malloc(cap);
    len += (size_t)snprintf(csv, cap, "f0,f1,y\n");
    for (size_t i = 0; i < k; i++) {
        len += (size_t)snprintf(csv + len, cap - len, "%zu,1,c%zu\n", i, i);
    }
    drover_job_t ej = DROVER_JOB_INIT;
    ej.kind = "evaluate";
    ej.model = "many";
    ej.payload = csv;
    ej.payload_len = len;
    drover_result_t *r = NULL;
    drover_error_t err = {0};
    int eval_rc = -1, eval_code = -1;
    double acc = -1;
    if (push1 == 0) {
        eval_rc = drover_run(c.d, &ej, WAIT_MS, &r, &err);
        const char *text = NULL;
        eval_code = eval_rc == 0 ? drover_result_error(r, &text) : eval_rc;
        if (eval_code) {
            fprintf(stderr, "  evaluate: %s %s\n", err.text, text ? text : "");
        }
        const char *const *names = NULL;
        const double *values = NULL;
        size_t n = eval_rc == 0 ? drover_result_metrics(r, &names, &values) : 0;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(names[i], "accuracy") == 0) {
                acc = values[i];
            }
        }
        // The confusion matrix came as frame 1: 300 x 300 u32 counts, all
        // in column 0 (every row predicted c0), one per true class.
        size_t plen = 0;
        const uint8_t *p =
            eval_rc == 0 ? drover_result_payload(r, &plen) : NULL;
        bool conf_ok = p && plen == k * k * 4;
        for (size_t i = 0; conf_ok && i < k; i++) {
            const uint8_t *e = p + (i * k) * 4;
            conf_ok = e[0] == 1 && e[1] == 0 && e[2] == 0 && e[3] == 0;
        }
        DV_CHECK(conf_ok);
        drover_result_destroy(&r);
    }
    free(csv);
    printf("  evaluate on %zu classes: rc %d code %d accuracy %.4f\n", k,
           eval_rc, eval_code, acc);

    // 60 classes of 1,000-byte names: 60 KB of names, more than fits a
    // header with the rest of the result.
    const size_t kn = 60;
    size_t w2[] = {2, kn};
    dv_model_t *m = dv_test_model(DV_TASK_CLASSIFICATION, 1, w2, acts, kn);
    for (size_t i = 0; i < kn; i++) {
        free(m->labels->labels[i]);
        m->labels->labels[i] = malloc(1001);
        memset(m->labels->labels[i], 'a' + (int)(i % 26), 1000);
        snprintf(m->labels->labels[i], 12, "%03zu", i); // unique, sorted
        m->labels->labels[i][3] = '-';
        m->labels->labels[i][1000] = '\0';
    }
    int push2 = dv_tcluster_push_model(c.d, m, "longnames");
    float x[4] = {1, 2, 3, 4};
    drover_job_t ij = DROVER_JOB_INIT;
    ij.kind = "infer";
    ij.model = "longnames";
    ij.input = x;
    ij.rows = 2;
    ij.cols = 2;
    int infer_rc = -1;
    bool names_ok = false, infer_ok = false;
    if (push2 == 0) {
        infer_rc = drover_run(c.d, &ij, WAIT_MS, &r, &err);
        infer_ok = infer_rc == 0 && drover_result_ok(r);
        names_ok = infer_ok && drover_result_n_classes(r) == kn;
        for (size_t i = 0; names_ok && i < kn; i++) {
            const char *s = drover_result_class(r, i);
            names_ok = strlen(s) == 1000 && (size_t)atoi(s) == i;
        }
        if (!infer_ok) {
            const char *text = NULL;
            drover_result_error(r, &text);
            fprintf(stderr, "  infer: %s %s\n", err.text, text ? text : "");
        }
        drover_result_destroy(&r);
    }
    bool serves = up && echo_ok(&c);
    int exit_rc = cluster_down(&c);
    DV_CHECK(up);
    DV_CHECK_EQ(push1, 0);
    DV_CHECK_EQ(eval_rc, 0);
    DV_CHECK_EQ(eval_code, 0);
    DV_CHECK(acc > 0.003 && acc < 0.004); // 1 of 300 right
    DV_CHECK_EQ(push2, 0);
    DV_CHECK(infer_ok);
    DV_CHECK(names_ok);
    DV_CHECK(serves);
    DV_CHECK_EQ(exit_rc, 0);
}

// A producer cannot make a worker allocate absurd amounts: refused at
// submit with the numbers; the worker never sees the job.
static void
test_absurd_allocations_refused(void)
{
    cluster_t c;
    bool up = cluster_up(&c, true);
    const char csv[] = "a,b,target\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n";
    const char *opts[] = {"hidden=65536,65536,65536,65536,65536,65536,65536,"
                          "65536,65536,65536,65536,65536,65536,65536,65536,"
                          "65536",
                          "epochs=1"};
    drover_train_t t = {0};
    t.model = "huge";
    t.algo = "mlp";
    t.csv = csv;
    t.csv_len = sizeof csv - 1;
    t.options = opts;
    t.n_options = 2;
    drover_result_t *r = NULL;
    drover_error_t err = {0};
    int train_rc = up ? drover_train(c.d, &t, WAIT_MS, &r, &err) : -1;
    int train_code = train_rc;
    const char *text = NULL;
    if (train_rc == 0) { // accepted: it must not have been
        train_code = drover_result_error(r, &text);
    }
    printf("  train hidden [65536]*16: %s: %s\n", drover_err_name(train_code),
           train_rc ? err.text : text);
    bool says_params = strstr(err.text, "parameters") != NULL &&
                       strstr(err.text, "268435456") != NULL;
    drover_result_destroy(&r);

    // 1 feature, 1,000 classes, 100,000 rows: a 400 KB input whose output
    // would be 400 MB, over the 256 MiB frame limit.
    size_t widths[] = {1, 1000};
    dv_act_t acts[] = {DV_ACT_SOFTMAX};
    int push = dv_tcluster_push_model(
        c.d, dv_test_model(DV_TASK_CLASSIFICATION, 1, widths, acts, 1000),
        "wide");
    size_t rows = 100000;
    float *x = calloc(rows, sizeof *x);
    drover_job_t ij = DROVER_JOB_INIT;
    ij.kind = "infer";
    ij.model = "wide";
    ij.input = x;
    ij.rows = rows;
    ij.cols = 1;
    uint64_t id = 0;
    drover_error_t ierr = {0};
    int infer_rc =
        push == 0 ? drover_submit(c.d, &ij, WAIT_MS, &id, &ierr) : -1;
    printf("  infer 100,000 x 1,000 outputs: %s: %s\n",
           drover_err_name(infer_rc), ierr.text);
    bool says_bytes = strstr(ierr.text, "400000000 bytes") != NULL;
    free(x);
    bool serves = up && echo_ok(&c);
    bool worker_alive = up && kill(c.worker.pid, 0) == 0;
    int exit_rc = cluster_down(&c);
    DV_CHECK(up);
    DV_CHECK_EQ(train_rc, DV_EINVAL);
    DV_CHECK(says_params);
    DV_CHECK_EQ(push, 0);
    DV_CHECK_EQ(infer_rc, DV_EMSGSIZE);
    DV_CHECK(says_bytes);
    DV_CHECK(serves);
    DV_CHECK(worker_alive);
    DV_CHECK_EQ(exit_rc, 0);
}

// The broker's resident memory in KiB (/proc), for the log.
static long
rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = atol(line + 6);
        }
    }
    if (f) {
        fclose(f);
    }
    return kib;
}

// Amplification: 100 29-byte result_gets for an 8 MiB kept result from a
// connection that does not read. The replies share the result's bytes, and
// what the connection may hold unread is bounded in bytes: past it,
// result_get is refused with DV_ELIMIT. Others are served meanwhile.
static void
test_unread_replies_are_bounded(void)
{
    cluster_t c;
    bool up = cluster_up(&c, true);
    size_t big = (size_t)8 << 20;
    char *payload = malloc(big);
    memset(payload, 'p', big);
    drover_job_t job = DROVER_JOB_INIT;
    job.payload = payload;
    job.payload_len = big;
    drover_result_t *r = NULL;
    drover_error_t err = {0};
    bool ran = up && drover_run(c.d, &job, WAIT_MS, &r, &err) == 0 &&
               drover_result_ok(r);
    uint64_t id = ran ? drover_result_job(r) : 0;
    drover_result_destroy(&r);
    free(payload);
    // The attacker: a DEALER whose libzmq reads one message ahead at most.
    void *a = up ? zmq_socket(c.ctx, ZMQ_DEALER) : NULL;
    dv_test_no_hwm(a);
    int one = 1, small = 4096, linger = 0;
    if (a) {
        zmq_setsockopt(a, ZMQ_RCVHWM, &one, sizeof one);
        zmq_setsockopt(a, ZMQ_RCVBUF, &small, sizeof small);
        zmq_setsockopt(a, ZMQ_LINGER, &linger, sizeof linger);
        zmq_connect(a, c.cep);
    }
    long before = up ? rss_kib(c.broker.pid) : -1;
    const int n = 100;
    for (int i = 0; a && ran && i < n; i++) {
        dv_msgw_t *w = dv_msgw_new(DV_MSG_RESULT_GET, (uint64_t)i + 1);
        dv_msgw_uint(w, "job", id);
        send_header(a, w);
    }
    // Another client is served while the attacker holds its replies (and
    // the round trip orders it after the attacker's requests).
    bool serves = ran && echo_ok(&c);
    long after = up ? rss_kib(c.broker.pid) : -1;
    // Now read everything: results up to the byte bound, then refusals.
    tally_t t = {.code = DV_ELIMIT, .big = big};
    if (a && ran) {
        read_replies(a, n, on_tally, &t);
    }
    int results = t.results, limited = t.refused, other = t.other + t.ok;
    printf("  %d result_gets of 8 MiB unread: broker RSS %ld -> %ld MiB; "
           "then %d results, %d refused, %d other\n",
           n, before / 1024, after / 1024, results, limited, other);
    if (a) {
        zmq_close(a);
    }
    bool still = up && echo_ok(&c);
    int exit_rc = cluster_down(&c);
    DV_CHECK(up);
    DV_CHECK(ran);
    DV_CHECK(serves);
    // 256 MiB / 8 MiB replies fit, plus the one a peer holding nothing may
    // always get; every other request was refused, none lost.
    DV_CHECK(results >= 1 && results <= 33);
    DV_CHECK_EQ(results + limited, n);
    DV_CHECK_EQ(other, 0);
    DV_CHECK(still);
    DV_CHECK_EQ(exit_rc, 0);
}

// What a fake worker got back for its fetches: model files (frame of at
// least `big` bytes), refusals with DV_ELIMIT, anything else.
typedef struct {
    size_t big;
    int files, refused, other;
} fetched_t;

static bool
on_fetched(const dv_msg_t *m, const dv_wire_msg_t *in, void *arg)
{
    fetched_t *t = arg;
    dv_error_t e = {0};
    int code = 0;
    char text[256] = "";
    dv_msg_type_t type = m ? dv_msg_type(m) : DV_MSG_COUNT_;
    if (type == DV_MSG_MODEL_DATA && in->n_payload == 1 &&
        in->frames[0].len >= t->big) {
        t->files++;
    } else if (type == DV_MSG_ERROR &&
               dv_msg_error(m, &code, text, sizeof text, &e) == 0 &&
               code == DV_ELIMIT) {
        if (t->refused++ == 0) {
            printf("  refusal: %.150s\n", text);
        }
    } else if (type == DV_MSG_WELCOME || type == DV_MSG_HEARTBEAT) {
        return false; // not an answer to a fetch
    } else {
        t->other++;
    }
    return true;
}

static bool
on_welcome(const dv_msg_t *m, const dv_wire_msg_t *in, void *arg)
{
    (void)in;
    (void)arg;
    return m && dv_msg_type(m) == DV_MSG_WELCOME;
}

// Read a fake worker's socket for want replies (on_fetched), heartbeating
// so the broker keeps it, until the deadline.
static void
read_fetched(void *sock, int want, fetched_t *t)
{
    int got = 0;
    int64_t end = dv_test_now_ms() + WAIT_MS, beat = 0;
    while (got < want && dv_test_now_ms() < end) {
        if (dv_test_now_ms() - beat >= 300) {
            dv_msgw_t *w = dv_msgw_new(DV_MSG_HEARTBEAT, 0);
            dv_msgw_uint(w, "running", 0);
            send_header(sock, w);
            beat = dv_test_now_ms();
        }
        got += read_replies(sock, 1, on_fetched, t);
    }
}

// Amplification on the worker socket: a worker asks 100 times for an
// 8 MiB model file and reads nothing. The replies wait once it holds
// DV_MAX_WORKER_QUEUED_BYTES unread (the broker says so in its log), at
// most DV_MAX_WORKER_FETCHES wait, the rest are refused; when the worker
// reads, every fetch not refused is answered, none lost.
static void
test_unread_fetches_are_bounded(void)
{
    cluster_t c;
    bool up = cluster_up(&c, false);
    size_t widths[] = {2048, 1024}; // 8 MiB of weights
    dv_act_t acts[] = {DV_ACT_SOFTMAX};
    int push = up ? dv_tcluster_push_model(c.d,
                                           dv_test_model(DV_TASK_CLASSIFICATION,
                                                         1, widths, acts, 1024),
                                           "big")
                  : -1;
    void *a = push == 0 ? zmq_socket(c.ctx, ZMQ_DEALER) : NULL;
    dv_test_no_hwm(a);
    int one = 1, small = 4096, linger = 0;
    fetched_t t = {.big = (size_t)8 << 20};
    const char *queue = "nothing-runs-here";
    if (a) {
        zmq_setsockopt(a, ZMQ_RCVHWM, &one, sizeof one);
        zmq_setsockopt(a, ZMQ_RCVBUF, &small, sizeof small);
        zmq_setsockopt(a, ZMQ_LINGER, &linger, sizeof linger);
        zmq_connect(a, c.wep);
        dv_msgw_t *w = dv_msgw_new(DV_MSG_REGISTER, 0);
        dv_msgw_str(w, "worker", "hoarder");
        dv_msgw_uint(w, "capacity", 1);
        dv_msgw_strs(w, "queues", &queue, 1);
        send_header(a, w);
        read_replies(a, 1, on_welcome, NULL);
    }
    long before = a ? rss_kib(c.broker.pid) : -1;
    const int n = 100;
    for (int i = 0; a && i < n; i++) {
        dv_msgw_t *w = dv_msgw_new(DV_MSG_FETCH_MODEL, (uint64_t)i + 1);
        dv_msgw_str(w, "name", "big");
        dv_msgw_uint(w, "version", 1);
        send_header(a, w);
    }
    // The broker says so once the worker's unread replies reach the bound
    // (poll its log); a client is still served meanwhile.
    char log[4300];
    snprintf(log, sizeof log, "%s/broker.log", c.dir);
    bool said = false;
    int64_t end = dv_test_now_ms() + WAIT_MS;
    while (a && !said && dv_test_now_ms() < end) {
        size_t log_len = 0;
        char *text = (char *)dv_test_read_file(log, &log_len);
        said = text && strstr(text, "worker hoarder holds") &&
               strstr(text, "its fetches wait");
        free(text);
        struct timespec ts = {0, 100 * 1000 * 1000}; // a log poll
        if (!said) {
            nanosleep(&ts, NULL);
        }
    }
    long after = a ? rss_kib(c.broker.pid) : -1;
    drover_status_t st = {0};
    drover_error_t err = {0};
    bool serves = a && drover_status(c.d, &st, &err) == 0;
    drover_status_clear(&st);
    if (a) {
        read_fetched(a, n, &t);
    }
    printf("  %d fetches of an 8 MiB model unread: broker RSS %ld -> %ld MiB; "
           "then %d files, %d refused, %d other\n",
           n, before / 1024, after / 1024, t.files, t.refused, t.other);
    if (a) {
        zmq_close(a);
    }
    int exit_rc = cluster_down(&c);
    DV_CHECK(up);
    DV_CHECK_EQ(push, 0);
    DV_CHECK(serves);
    DV_CHECK(said);
    // At most 32 files fit the bound (plus the one a worker holding nothing
    // may always get) and DV_MAX_WORKER_FETCHES wait: some are refused,
    // every other one is answered.
    DV_CHECK(t.refused >= n - 33 - DV_MAX_WORKER_FETCHES);
    DV_CHECK(t.refused > 0);
    DV_CHECK_EQ(t.files + t.refused, n);
    DV_CHECK_EQ(t.other, 0);
    DV_CHECK_EQ(exit_rc, 0);
}

// 40 data set uploads announcing 1 GiB each, one byte sent: the broker
// holds what arrived, not what was announced, and at most
// DV_MAX_UPLOADS_PER_KEY open per sender. A real upload still works.
static void
test_upload_reservations_are_bounded(void)
{
    cluster_t c;
    bool up = cluster_up(&c, false);
    void *a = up ? zmq_socket(c.ctx, ZMQ_DEALER) : NULL;
    dv_test_no_hwm(a);
    int linger = 0;
    if (a) {
        zmq_setsockopt(a, ZMQ_LINGER, &linger, sizeof linger);
        zmq_connect(a, c.cep);
    }
    long before = up ? rss_kib(c.broker.pid) : -1;
    const int n = 40;
    uint8_t sum[32] = {0};
    for (int i = 0; a && i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "ds%d", i);
        dv_msgw_t *w = dv_msgw_new(DV_MSG_DATASET_PUSH, (uint64_t)i + 1);
        dv_msgw_str(w, "name", name);
        dv_msgw_bin(w, "sha256", sum, sizeof sum);
        dv_msgw_uint(w, "bytes", (uint64_t)1 << 30);
        dv_msgw_uint(w, "offset", 0);
        size_t len = 0;
        const uint8_t *h = dv_msgw_bytes(w, &len);
        dv_frame_t f = {(const uint8_t *)"x", 1};
        dv_wire_send(a, NULL, 0, h, len, &f, 1);
        dv_msgw_destroy(&w);
    }
    tally_t t = {.code = DV_ELIMIT};
    if (a) {
        read_replies(a, n, on_tally, &t);
    }
    int ok = t.ok, refused = t.refused, other = t.other + t.accepted;
    long after = up ? rss_kib(c.broker.pid) : -1;
    printf("  %d uploads of 1 GiB announced: %d open, %d refused, %d other; "
           "broker RSS %ld -> %ld MiB\n",
           n, ok, refused, other, before / 1024, after / 1024);
    if (a) {
        zmq_close(a);
    }
    drover_error_t err = {0};
    int push = up ? drover_dataset_push(c.d, dv_test_data("iris_train.csv"),
                                        "iris", NULL, &err)
                  : -1;
    if (push) {
        fprintf(stderr, "  push: %s\n", err.text);
    }
    int exit_rc = cluster_down(&c);
    DV_CHECK(up);
    DV_CHECK_EQ(ok, DV_MAX_UPLOADS_PER_KEY);
    DV_CHECK_EQ(refused, n - DV_MAX_UPLOADS_PER_KEY);
    DV_CHECK_EQ(other, 0);
    DV_CHECK_EQ(push, 0);
    DV_CHECK_EQ(exit_rc, 0);
}

// Send a submit of an echo job to queue on a raw socket.
static void
submit_raw(void *sock, uint64_t rid, const char *queue, const char *kind)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, rid);
    dv_msgw_str(w, "queue", queue);
    dv_msgw_str(w, "kind", kind);
    dv_msgw_str(w, "durability", "none");
    if (strcmp(kind, "infer") == 0) {
        dv_msgw_str(w, "model", "nosuchmodel");
        dv_msgw_tensor(w, "input", 1, 1, 1);
    }
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    float x = 1;
    dv_frame_t f = {(const uint8_t *)&x, sizeof x};
    dv_wire_send(sock, NULL, 0, h, len, &f, 1);
    dv_msgw_destroy(&w);
}

// Refused requests create no queue; accepted jobs create them up to
// DV_MAX_QUEUES, then a new name is refused; status comes in pages that
// libdrover puts together.
static void
test_queues_only_from_accepted_jobs(void)
{
    cluster_t c;
    bool up = cluster_up(&c, false);
    void *a = up ? zmq_socket(c.ctx, ZMQ_DEALER) : NULL;
    dv_test_no_hwm(a);
    int linger = 0;
    if (a) {
        zmq_setsockopt(a, ZMQ_LINGER, &linger, sizeof linger);
        zmq_connect(a, c.cep);
    }
    // 500 refused submits (unknown model) and 500 acks of unknown
    // consumers, each on a new queue name.
    const int n_bad = 500;
    for (int i = 0; a && i < n_bad; i++) {
        char q[32];
        snprintf(q, sizeof q, "bad-%d", i);
        submit_raw(a, (uint64_t)i + 1, q, "infer");
        snprintf(q, sizeof q, "ack-%d", i);
        dv_msgw_t *w = dv_msgw_new(DV_MSG_ACK, 0);
        dv_msgw_str(w, "queue", q);
        dv_msgw_str(w, "consumer", "c");
        dv_msgw_uint(w, "seq", 1);
        send_header(a, w);
    }
    tally_t bad = {.code = DV_ELIMIT};
    if (a) {
        // DV_ENOMODEL for each submit, DV_ENOENT for each ack
        read_replies(a, 2 * n_bad, on_tally, &bad);
    }
    int refused = bad.other;
    drover_status_t st = {0};
    drover_error_t err = {0};
    int s1 = up ? drover_status(c.d, &st, &err) : -1;
    size_t queues_after_bad = st.n_queues;
    drover_status_clear(&st);
    // Accepted jobs on DV_MAX_QUEUES + 10 names: the last 10 are refused.
    const int n_good = DV_MAX_QUEUES + 10;
    for (int i = 0; a && i < n_good; i++) {
        char q[32];
        snprintf(q, sizeof q, "q%05d", i);
        submit_raw(a, 100000 + (uint64_t)i, q, "echo");
    }
    tally_t good = {.code = DV_ELIMIT};
    if (a) {
        read_replies(a, n_good, on_tally, &good);
        zmq_close(a);
    }
    int accepted = good.accepted, limited = good.refused,
        other = good.other + good.ok;
    int s2 = up ? drover_status(c.d, &st, &err) : -1;
    bool all_there = s2 == 0 && st.n_queues == DV_MAX_QUEUES &&
                     strcmp(st.queues[0].name, "q00000") == 0 &&
                     strcmp(st.queues[DV_MAX_QUEUES - 1].name, "q04095") == 0 &&
                     st.queues[DV_MAX_QUEUES - 1].queued == 1;
    printf("  after %d refused submits and %d acks: %zu queues; %d jobs on "
           "new queues: %d accepted, %d refused; status lists %zu queues\n",
           n_bad, n_bad, queues_after_bad, n_good, accepted, limited,
           st.n_queues);
    drover_status_clear(&st);
    int exit_rc = cluster_down(&c);
    DV_CHECK(up);
    DV_CHECK_EQ(refused, 2 * n_bad);
    DV_CHECK_EQ(s1, 0);
    DV_CHECK_EQ(queues_after_bad, 0);
    DV_CHECK_EQ(accepted, DV_MAX_QUEUES);
    DV_CHECK_EQ(limited, 10);
    DV_CHECK_EQ(other, 0);
    DV_CHECK(all_there);
    DV_CHECK_EQ(exit_rc, 0);
}

// A submit whose extra field "x" nests the header depth deep (its map
// counted): depth - 1 one-element arrays around a nil.
static void
submit_deep(void *sock, uint64_t rid, size_t depth)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, rid);
    dv_msgw_str(w, "queue", "deep");
    dv_msgw_str(w, "kind", "echo");
    dv_msgw_str(w, "durability", "none");
    uint8_t nest[64];
    memset(nest, 0x91, depth - 1);
    nest[depth - 1] = 0xc0;
    dv_msgw_key(w, "x");
    dv_msgw_v_raw(w, nest, depth);
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_frame_t f = {(const uint8_t *)"x", 1};
    dv_wire_send(sock, NULL, 0, h, len, &f, 1);
    dv_msgw_destroy(&w);
}

// The broker passes a peer's fields on a few levels deeper than they came,
// so it takes headers nested at most DV_MAX_PEER_MSGPACK_DEPTH deep: one
// at the limit is served, deeper ones (up to what msgpack-c can decode at
// all, and past it) are refused with the reason, and the broker goes on.
static void
test_deep_headers_refused(void)
{
    cluster_t c;
    bool up = cluster_up(&c, true);
    void *a = up ? raw_dealer(&c, c.cep) : NULL;
    static const size_t depths[] = {DV_MAX_PEER_MSGPACK_DEPTH,
                                    DV_MAX_PEER_MSGPACK_DEPTH + 1,
                                    DV_MAX_MSGPACK_DEPTH, 40};
    tally_t t = {.code = DV_EFORMAT};
    for (size_t i = 0; a && i < 4; i++) {
        submit_deep(a, i + 1, depths[i]);
    }
    int replies = a ? read_replies(a, 4, on_tally, &t) : 0;
    if (a) {
        zmq_close(a);
    }
    bool serves = up && echo_ok(&c);
    int exit_rc = cluster_down(&c);
    printf("  %d replies: %d accepted, %d refused DV_EFORMAT, %d other\n",
           replies, t.accepted, t.refused, t.other + t.ok);
    DV_CHECK(up);
    DV_CHECK_EQ(replies, 4);
    DV_CHECK_EQ(t.accepted, 1);
    DV_CHECK_EQ(t.refused, 3);
    DV_CHECK(serves);
    DV_CHECK_EQ(exit_rc, 0);
}

// A follow naming consumer on queue (rid).
static void
follow_raw(void *sock, uint64_t rid, const char *queue, const char *consumer)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_FOLLOW, rid);
    dv_msgw_str(w, "queue", queue);
    dv_msgw_str(w, "consumer", consumer);
    send_header(sock, w);
}

// Stream consumers are kept for good, so new ones stop at
// DV_MAX_CONSUMERS: past it a follow naming a new consumer is refused
// (DV_ELIMIT) and makes nothing, not even its queue; one the broker has
// still follows.
static void
test_consumers_are_bounded(void)
{
    cluster_t c;
    bool up = cluster_up(&c, false);
    void *a = up ? zmq_socket(c.ctx, ZMQ_DEALER) : NULL;
    dv_test_no_hwm(a);
    int linger = 0;
    if (a) {
        zmq_setsockopt(a, ZMQ_LINGER, &linger, sizeof linger);
        zmq_connect(a, c.cep);
    }
    const int n = DV_MAX_CONSUMERS + 10;
    for (int i = 0; a && i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "c%05d", i);
        follow_raw(a, (uint64_t)i + 1, "s", name);
    }
    tally_t t = {.code = DV_ELIMIT};
    if (a) {
        read_replies(a, n, on_tally, &t);
    }
    // Past the bound: a new consumer on a new queue (refused, no queue),
    // and the first consumer again (followed).
    tally_t t2 = {.code = DV_ELIMIT};
    if (a) {
        follow_raw(a, 900001, "t", "c00000");
        follow_raw(a, 900002, "s", "c00000");
        read_replies(a, 2, on_tally, &t2);
        zmq_close(a);
    }
    drover_status_t st = {0};
    drover_error_t err = {0};
    int s_rc = up ? drover_status(c.d, &st, &err) : -1;
    size_t queues = st.n_queues;
    bool only_s = queues == 1 && strcmp(st.queues[0].name, "s") == 0;
    drover_status_clear(&st);
    printf("  %d follows of new consumers: %d ok, %d refused; then %d ok, "
           "%d refused; %zu queue(s)\n",
           n, t.ok, t.refused, t2.ok, t2.refused, queues);
    int exit_rc = cluster_down(&c);
    DV_CHECK(up);
    DV_CHECK_EQ(t.ok, DV_MAX_CONSUMERS);
    DV_CHECK_EQ(t.refused, 10);
    DV_CHECK_EQ(t.other, 0);
    DV_CHECK_EQ(t2.ok, 1);
    DV_CHECK_EQ(t2.refused, 1);
    DV_CHECK_EQ(s_rc, 0);
    DV_CHECK(only_s);
    DV_CHECK_EQ(exit_rc, 0);
}

static const dv_test_case_t cases[] = {
    {"a hostile error map from a worker", test_hostile_error_map},
    {"hostile evaluate metrics from a worker", test_hostile_metrics},
    {"big results travel as frames", test_big_results_travel_as_frames},
    {"absurd allocations refused at submit", test_absurd_allocations_refused},
    {"unread replies are bounded in bytes", test_unread_replies_are_bounded},
    {"unread fetches are bounded in bytes", test_unread_fetches_are_bounded},
    {"upload reservations are bounded", test_upload_reservations_are_bounded},
    {"queues only from accepted jobs", test_queues_only_from_accepted_jobs},
    {"stream consumers are bounded", test_consumers_are_bounded},
    {"deep headers refused, the broker goes on", test_deep_headers_refused},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
