// test_pages — lists longer than one header come in pages (protocol 1.7),
// against a real drover-broker. A reply header holds at most 64 KiB and
// every client drops a longer one, so a long list of models, data sets,
// workers or dead letters used to go unanswered. Each case makes a list
// two or three headers long and checks that:
//   - libdrover (which follows `next` with `from`) reads every item exactly
//     once, in the list's order;
//   - the broker's first page itself fits one header and names `next`;
//   - a `from` of the wrong type is refused with DV_EFORMAT.
// Workers holding many models are listed with their names cut to 8 KiB and
// the full count (`models_total`).
//
// Everything runs on ipc:// in a temporary folder; readiness comes from
// READY lines, never from sleeps.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "drover.h"
#include "dv_model.h"
#include "dv_modelfile.h"
#include "dv_msgpack.h"
#include "dv_proto.h"
#include "dv_test.h"
#include "dv_test_cluster.h"
#include "dv_test_proc.h"
#include "dv_test_worker.h"

#define WAIT_MS 60000 // generous for ASan on 2 cores

typedef struct {
    char *dir;                 // temporary folder
    char cep[4300], wep[4300]; // endpoints
    dv_proc_t broker;          // drover-broker
    drover_t *d;               // a client
    void *ctx;                 // for raw sockets
} cluster_t;

static bool
cluster_up(cluster_t *c)
{
    memset(c, 0, sizeof *c);
    c->dir = dv_test_tmpdir();
    snprintf(c->cep, sizeof c->cep, "ipc://%s/client.sock", c->dir);
    snprintf(c->wep, sizeof c->wep, "ipc://%s/worker.sock", c->dir);
    // Raw workers here send one register and no heartbeat: a minute of
    // silence is allowed.
    const char *args[] = {"--client",       c->cep,  "--worker", c->wep,
                          "--heartbeat-ms", "20000", NULL};
    c->broker = dv_proc_start("DROVER_BROKER_BIN", args, c->dir, "broker.log");
    char ready[9000];
    if (!c->broker.pid ||
        !dv_proc_wait_ready(&c->broker, ready, sizeof ready)) {
        fprintf(stderr, "  broker did not get ready\n");
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
cluster_down(cluster_t *c, bool failed)
{
    drover_destroy(&c->d);
    if (c->ctx) {
        zmq_ctx_term(c->ctx);
    }
    int rc = c->broker.pid ? dv_proc_stop(&c->broker, SIGTERM) : -1;
    if (rc != 0 || failed) {
        dv_proc_dump_log(c->dir, "broker.log");
    }
    dv_test_rmdir(c->dir);
    free(c->dir);
    return rc;
}

// A raw DEALER on endpoint (closed by the caller).
static void *
raw_socket(cluster_t *c, const char *endpoint)
{
    void *s = zmq_socket(c->ctx, ZMQ_DEALER);
    int linger = 0, tmo = WAIT_MS;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    zmq_connect(s, endpoint);
    return s;
}

static void
raw_send(void *s, dv_msgw_t *w)
{
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    zmq_send(s, h, len, 0);
    dv_msgw_destroy(&w);
}

// The next reply on s, into msg (the caller closes it, after destroying
// what this returns, which points into it): its header's length in *len
// (how big the broker made it) and the header decoded, or NULL (none in
// time, or one no client would read: over the header limit).
static dv_msg_t *
raw_reply(void *s, zmq_msg_t *msg, size_t *len)
{
    zmq_msg_init(msg);
    *len = 0;
    dv_msg_t *m = NULL;
    if (zmq_msg_recv(msg, s, 0) >= 0) {
        *len = zmq_msg_size(msg);
        dv_error_t err = {0};
        if (dv_msg_decode(&m, zmq_msg_data(msg), *len, NULL, 0, NULL, &err)) {
            fprintf(stderr, "  reply of %zu bytes: %s\n", *len, err.text);
            m = NULL;
        }
    }
    return m;
}

// A list request's first page on a raw socket: its header's bytes, whether
// it names `next`, how many items it holds under key; and the answer to the
// same request with a bad from (*bad_code: its error, 0 when none).
static void
first_page(cluster_t *c,
           dv_msg_type_t type,
           const char *key,
           size_t *bytes,
           bool *has_next,
           size_t *items,
           int *bad_code)
{
    void *s = raw_socket(c, c->cep);
    raw_send(s, dv_msgw_new(type, 1));
    zmq_msg_t msg;
    dv_msg_t *m = raw_reply(s, &msg, bytes);
    const msgpack_object *a = m ? dv_msg_get(m, key) : NULL;
    *items = a && a->type == MSGPACK_OBJECT_ARRAY ? a->via.array.size : 0;
    *has_next = m && dv_msg_get(m, "next") != NULL;
    dv_msg_destroy(&m);
    zmq_msg_close(&msg);
    dv_msgw_t *w = dv_msgw_new(type, 2);
    dv_msgw_str(w, "from", "not a place in any list");
    raw_send(s, w);
    size_t len = 0;
    m = raw_reply(s, &msg, &len);
    *bad_code = 0;
    if (m && dv_msg_type(m) == DV_MSG_ERROR) {
        const msgpack_object *e = dv_msg_get(m, "error");
        const msgpack_object *n = e ? dv_msgpack_get(e, "name") : NULL;
        char name[64] = "";
        if (n && n->type == MSGPACK_OBJECT_STR && n->via.str.size < 64) {
            memcpy(name, n->via.str.ptr, n->via.str.size);
        }
        *bad_code = dv_err_code(name);
    }
    dv_msg_destroy(&m);
    zmq_msg_close(&msg);
    zmq_close(s);
}

// A name of about 100 characters, number i in it: long names make a long
// list from a few hundred entries.
static void
long_name(char *out, size_t size, const char *what, size_t i)
{
    snprintf(out, size,
             "%s-%04zu-with-a-name-long-enough-to-fill-a-header-quickly-"
             "abcdefghijklmnopqrstuvwxyz-0123456789",
             what, i);
}

// ------------------------------------------------- models and data sets

enum { N_MODELS = 300, N_DATASETS = 450 };

static void
test_models_and_datasets_in_pages(void)
{
    cluster_t c;
    bool up = cluster_up(&c);
    size_t widths[] = {2, 3};
    dv_act_t acts[] = {DV_ACT_SOFTMAX};
    dv_model_t *m = dv_test_model(DV_TASK_CLASSIFICATION, 1, widths, acts, 3);
    uint8_t *image = NULL;
    size_t image_len = 0;
    dv_error_t derr = {0};
    int rc = up ? dv_model_encode(m, &image, &image_len, &derr) : -1;
    dv_model_destroy(&m);
    char path[4400];
    snprintf(path, sizeof path, "%s/tiny.csv", c.dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("a,b,y\n1,2,0\n3,4,1\n", f);
        fclose(f);
    }
    drover_error_t err = {0};
    // Pushed in reverse name order: the list is sorted by the broker.
    for (size_t i = N_MODELS; rc == 0 && i-- > 0;) {
        char name[160];
        long_name(name, sizeof name, "model", i);
        rc = drover_model_push_bytes(c.d, image, image_len, name, NULL, &err);
    }
    for (size_t i = N_DATASETS; rc == 0 && i-- > 0;) {
        char name[160];
        long_name(name, sizeof name, "set", i);
        rc = drover_dataset_push(c.d, path, name, NULL, &err);
    }
    free(image);
    if (rc) {
        fprintf(stderr, "  push: %s\n", err.text);
    }
    drover_model_t *models = NULL;
    drover_dataset_t *sets = NULL;
    size_t n_models = 0, n_sets = 0, models_wrong = 0, sets_wrong = 0;
    int lrc = rc ? rc : drover_model_list(c.d, &models, &n_models, &err);
    int drc = rc ? rc : drover_dataset_list(c.d, &sets, &n_sets, &err);
    for (size_t i = 0; lrc == 0 && i < n_models; i++) {
        char name[160];
        long_name(name, sizeof name, "model", i);
        models_wrong +=
            strcmp(models[i].name, name) != 0 || models[i].version != 1;
    }
    for (size_t i = 0; drc == 0 && i < n_sets; i++) {
        char name[160];
        long_name(name, sizeof name, "set", i);
        sets_wrong += strcmp(sets[i].name, name) != 0 || sets[i].version != 1;
    }
    free(models);
    free(sets);
    size_t mbytes = 0, mitems = 0, dbytes = 0, ditems = 0;
    bool mnext = false, dnext = false;
    int mbad = 0, dbad = 0;
    if (rc == 0) {
        first_page(&c, DV_MSG_MODEL_LIST, "models", &mbytes, &mnext, &mitems,
                   &mbad);
        first_page(&c, DV_MSG_DATASET_LIST, "datasets", &dbytes, &dnext,
                   &ditems, &dbad);
    }
    printf("  models: %zu listed (%zu wrong); first page %zu of them in %zu "
           "bytes%s; a bad from: %s\n",
           n_models, models_wrong, mitems, mbytes, mnext ? ", next" : "",
           dv_err_name(mbad));
    printf("  data sets: %zu listed (%zu wrong); first page %zu of them in "
           "%zu bytes%s; a bad from: %s\n",
           n_sets, sets_wrong, ditems, dbytes, dnext ? ", next" : "",
           dv_err_name(dbad));
    bool failed = rc || lrc || drc || n_models != N_MODELS ||
                  n_sets != N_DATASETS || models_wrong || sets_wrong;
    int down = cluster_down(&c, failed);
    DV_CHECK(up);
    DV_CHECK_EQ(rc, 0);
    DV_CHECK_EQ(lrc, 0);
    DV_CHECK_EQ(drc, 0);
    DV_CHECK_EQ(n_models, N_MODELS);
    DV_CHECK_EQ(models_wrong, 0);
    DV_CHECK_EQ(n_sets, N_DATASETS);
    DV_CHECK_EQ(sets_wrong, 0);
    // Several pages: the first one fits a header, names next, holds part.
    DV_CHECK(mbytes > 0 && mbytes <= DV_MAX_HEADER_BYTES);
    DV_CHECK(mnext && mitems > 0 && mitems < N_MODELS);
    DV_CHECK(dbytes > 0 && dbytes <= DV_MAX_HEADER_BYTES);
    DV_CHECK(dnext && ditems > 0 && ditems < N_DATASETS);
    DV_CHECK_EQ(mbad, DV_EFORMAT);
    DV_CHECK_EQ(dbad, DV_EFORMAT);
    DV_CHECK_EQ(down, 0);
}

// ------------------------------------------------------------- workers

enum { N_WORKERS = 12, HELD = 300 };

static void
test_workers_in_pages(void)
{
    cluster_t c;
    bool up = cluster_up(&c);
    // Raw workers, each saying it holds 300 models of ~100-character
    // names (30 KB): listed in full, two would fill a header.
    void *raw[N_WORKERS] = {0};
    size_t welcomed = 0;
    for (size_t i = 0; up && i < N_WORKERS; i++) {
        raw[i] = raw_socket(&c, c.wep);
        dv_msgw_t *w = dv_msgw_new(DV_MSG_REGISTER, 1);
        char name[32];
        snprintf(name, sizeof name, "holder-%02zu", i);
        dv_msgw_str(w, "worker", name);
        dv_msgw_uint(w, "capacity", 1);
        dv_msgw_key(w, "models");
        dv_msgw_v_array(w, HELD);
        for (size_t k = 0; k < HELD; k++) {
            char held[180];
            long_name(held, sizeof held - 8, "held", k);
            strcat(held, "@1");
            dv_msgw_v_str(w, held);
        }
        raw_send(raw[i], w);
        size_t len = 0;
        zmq_msg_t msg;
        dv_msg_t *m = raw_reply(raw[i], &msg, &len);
        welcomed += m && dv_msg_type(m) == DV_MSG_WELCOME;
        dv_msg_destroy(&m);
        zmq_msg_close(&msg);
    }
    drover_worker_t *ws = NULL;
    size_t n = 0, wrong = 0;
    drover_error_t err = {0};
    int lrc = welcomed == N_WORKERS ? drover_workers(c.d, &ws, &n, &err) : -1;
    for (size_t i = 0; lrc == 0 && i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "holder-%02zu", i); // in register order
        bool cut = ws[i].n_models > 0 && ws[i].n_models < HELD &&
                   ws[i].models_total == HELD;
        char first[180];
        long_name(first, sizeof first - 8, "held", 0);
        strcat(first, "@1");
        wrong += strcmp(ws[i].name, name) != 0 || !cut ||
                 strcmp(ws[i].models[0], first) != 0;
        if (i == 0) {
            printf("  worker %s: %zu of its %zu models listed\n", ws[i].name,
                   ws[i].n_models, ws[i].models_total);
        }
    }
    drover_workers_free(&ws, n);
    size_t bytes = 0, items = 0;
    bool next = false;
    int bad = 0;
    if (lrc == 0) {
        first_page(&c, DV_MSG_WORKERS, "workers", &bytes, &next, &items, &bad);
    }
    printf("  workers: %zu of %d listed (%zu wrong); first page %zu of them "
           "in %zu bytes%s; a bad from: %s\n",
           n, N_WORKERS, wrong, items, bytes, next ? ", next" : "",
           dv_err_name(bad));
    for (size_t i = 0; i < N_WORKERS; i++) {
        if (raw[i]) {
            zmq_close(raw[i]);
        }
    }
    bool failed = lrc || n != N_WORKERS || wrong;
    int down = cluster_down(&c, failed);
    DV_CHECK(up);
    DV_CHECK_EQ(welcomed, N_WORKERS);
    DV_CHECK_EQ(lrc, 0);
    DV_CHECK_EQ(n, N_WORKERS);
    DV_CHECK_EQ(wrong, 0);
    DV_CHECK(bytes > 0 && bytes <= DV_MAX_HEADER_BYTES);
    DV_CHECK(next && items > 0 && items < N_WORKERS);
    DV_CHECK_EQ(bad, DV_EFORMAT);
    DV_CHECK_EQ(down, 0);
}

// --------------------------------------------------------- dead letters

enum { N_DEAD = 150 };

static void
test_dead_letters_in_pages(void)
{
    cluster_t c;
    bool up = cluster_up(&c);
    // A worker with a 128-character name fails every job once, with a
    // 255-byte reason: each dead letter carries ~800 bytes of text.
    char wname[129];
    memset(wname, 'w', 128);
    wname[128] = '\0';
    dv_tworker_t *tw =
        up ? dv_tworker_start(c.wep, wname, 8, "doomed", 5000) : NULL;
    drover_job_t jobs[N_DEAD];
    for (size_t i = 0; i < N_DEAD; i++) {
        jobs[i] = (drover_job_t)DROVER_JOB_INIT;
        jobs[i].queue = "doomed";
        jobs[i].payload = "x";
        jobs[i].payload_len = 1;
        jobs[i].max_attempts = 1;
    }
    uint64_t ids[N_DEAD];
    drover_error_t err = {0};
    int rc =
        tw ? drover_submit_many(c.d, jobs, N_DEAD, WAIT_MS, ids, &err) : -1;
    char text[256];
    memset(text, 'r', 255);
    text[255] = '\0';
    size_t failed_runs = 0;
    while (rc == 0 && failed_runs < N_DEAD) {
        uint64_t job = 0;
        uint32_t attempt = 0;
        if (!dv_tworker_next_run(tw, WAIT_MS, &job, &attempt)) {
            break;
        }
        failed_runs += dv_tworker_answer(tw, job, attempt, DV_EIO, text) == 0;
    }
    // Dead once the broker has them all (dead_list counts them).
    drover_dead_t *dead = NULL;
    size_t n = 0, wrong = 0;
    int lrc = -1;
    for (uint64_t t0 = dv_test_now_ms();
         rc == 0 && dv_test_now_ms() - t0 < WAIT_MS;) {
        drover_dead_free(&dead, n);
        lrc = drover_dead_list(c.d, "doomed", 0, &dead, &n, &err);
        if (lrc != 0 || n >= N_DEAD) {
            break;
        }
        dv_tworker_idle(tw, 50);
    }
    for (size_t i = 0; lrc == 0 && i < n; i++) {
        wrong +=
            dead[i].job != ids[i] || dead[i].n_errors != 1; // died in order
    }
    drover_dead_free(&dead, n);
    size_t bytes = 0, items = 0;
    bool next = false;
    int bad = 0;
    if (lrc == 0) {
        first_page(&c, DV_MSG_DEAD_LIST, "jobs", &bytes, &next, &items, &bad);
    }
    printf("  dead letters: %zu of %d listed (%zu wrong); first page %zu of "
           "them in %zu bytes%s; a bad from: %s\n",
           n, N_DEAD, wrong, items, bytes, next ? ", next" : "",
           dv_err_name(bad));
    dv_tworker_stop(&tw);
    bool failed = rc || lrc || n != N_DEAD || wrong;
    int down = cluster_down(&c, failed);
    DV_CHECK(up);
    DV_CHECK_EQ(rc, 0);
    DV_CHECK_EQ(failed_runs, N_DEAD);
    DV_CHECK_EQ(lrc, 0);
    DV_CHECK_EQ(n, N_DEAD);
    DV_CHECK_EQ(wrong, 0);
    DV_CHECK(bytes > 0 && bytes <= DV_MAX_HEADER_BYTES);
    DV_CHECK(next && items > 0 && items < N_DEAD);
    DV_CHECK_EQ(bad, DV_EFORMAT);
    DV_CHECK_EQ(down, 0);
}

static const dv_test_case_t cases[] = {
    {"models and data sets in pages", test_models_and_datasets_in_pages},
    {"workers in pages, long holdings cut", test_workers_in_pages},
    {"dead letters in pages", test_dead_letters_in_pages},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
