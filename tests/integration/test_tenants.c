// test_tenants — two tenants (keys alice and bob) sharing one broker with
// CURVE, as docs/SECURITY.md promises (issue 13, points 9 to 13): a name's
// owner is checked again when a version is stored, so the loser of a race
// into a new model or data set name stores nothing; idempotency keys are
// scoped per submitting key; a result-stream consumer belongs to the key
// that first followed it; a data set is read only by its owner, admins and
// the keys it is shared with. Each case makes the attack, then shows what
// happened instead and that the broker still serves; the durable ones
// restart the broker on its data dir in between.
//
// The races are made without timing: train jobs are queued while no
// worker runs (both pass the submit check), and two uploads' last chunks
// are sent back to back on raw sockets while the broker still validates
// the first one (megabytes of CSV against two small messages).
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "drover.h"
#include "dv_keys.h"
#include "dv_proto.h"
#include "dv_sha256.h"
#include "dv_store.h"
#include "dv_test.h"
#include "dv_test_proc.h"
#include "dv_test_worker.h"
#include "dv_train.h"
#include "dv_wire.h"

#define HB_S    "250"
#define WAIT_MS 60000

typedef struct {
    char *dir;
    char auth[4300]; // authorized keys folder
    char keys[4300]; // where every key pair lives
    char data[4300]; // broker data
    char cep[256], wep[256];
    dv_proc_t broker;
    dv_proc_t worker;
} ten_t;

// keys/NAME.key + .pub with roles and queues, authorized (copied into the
// broker's folder) unless it is the broker's own.
static bool
make_key(ten_t *t, const char *name, unsigned roles, const char *queues)
{
    bool broker = strcmp(name, "broker") == 0;
    return dv_test_key_make(t->keys, broker ? NULL : t->auth, name, roles,
                            queues);
}

static void
key_path(
    const ten_t *t, const char *name, const char *ext, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s.%s", t->keys, name, ext);
}

// The broker with CURVE (plain: without) on tcp 127.0.0.1 (ports picked
// by the system) and t->data.
static bool
broker_start_as(ten_t *t, bool plain)
{
    char secret[4400];
    key_path(t, "broker", "key", secret, sizeof secret);
    const char *args[] = {"--client",
                          "tcp://127.0.0.1:0",
                          "--worker",
                          "tcp://127.0.0.1:0",
                          "--data",
                          t->data,
                          "--heartbeat-ms",
                          HB_S,
                          "--secret-key",
                          secret,
                          "--authorized-keys",
                          t->auth,
                          NULL};
    if (plain) {
        args[8] = NULL;
    }
    t->broker = dv_proc_start("DROVER_BROKER_BIN", args, t->dir, "broker.log");
    char ready[9000] = "";
    if (!t->broker.pid ||
        !dv_proc_wait_ready(&t->broker, ready, sizeof ready)) {
        return false;
    }
    return sscanf(ready, "%255s %255s", t->cep, t->wep) == 2;
}

static bool
broker_start(ten_t *t)
{
    return broker_start_as(t, false);
}

// Stop the broker (SIGTERM: what a deploy does) and start it again.
static bool
broker_restart(ten_t *t)
{
    dv_proc_stop(&t->worker, SIGKILL);
    return dv_proc_stop(&t->broker, SIGTERM) == 0 && broker_start(t);
}

static bool
worker_start(ten_t *t)
{
    char k[4400], b[4400];
    key_path(t, "w1", "key", k, sizeof k);
    key_path(t, "broker", "pub", b, sizeof b);
    return dv_proc_worker_keyed(&t->worker, t->wep, "w", k, b, HB_S, t->dir);
}

// The broker's key, an admin, alice and bob (producers and consumers on
// queue "jobs"), carol (a producer there), a worker key.
static bool
ten_up(ten_t *t)
{
    memset(t, 0, sizeof *t);
    t->dir = dv_test_tmpdir();
    snprintf(t->auth, sizeof t->auth, "%s/authorized", t->dir);
    snprintf(t->keys, sizeof t->keys, "%s/keys", t->dir);
    snprintf(t->data, sizeof t->data, "%s/data", t->dir);
    mkdir(t->auth, 0755);
    mkdir(t->keys, 0700);
    unsigned pc = DV_ROLE_PRODUCER | DV_ROLE_CONSUMER;
    return make_key(t, "broker", 0, NULL) &&
           make_key(t, "admin", DV_ROLE_ADMIN, NULL) &&
           make_key(t, "alice", pc, "jobs") && make_key(t, "bob", pc, "jobs") &&
           make_key(t, "carol", DV_ROLE_PRODUCER, "jobs") &&
           make_key(t, "w1", DV_ROLE_WORKER, NULL) && broker_start(t);
}

static void
ten_down(ten_t *t, bool failed)
{
    dv_proc_stop(&t->worker, SIGKILL);
    dv_proc_stop(&t->broker, SIGTERM);
    if (failed) {
        dv_proc_dump_log(t->dir, "broker.log");
        dv_proc_dump_log(t->dir, "worker.log");
    }
    dv_test_rmdir(t->dir);
    free(t->dir);
}

// Connect as key through libdrover. NULL on failure (printed).
static drover_t *
connect_as(const ten_t *t, const char *key)
{
    char k[4400], b[4400];
    key_path(t, key, "key", k, sizeof k);
    key_path(t, "broker", "pub", b, sizeof b);
    drover_t *d = NULL;
    drover_error_t err = {0};
    if (drover_connect_key(&d, t->cep, 10000, k, b, &err) != 0) {
        fprintf(stderr, "  connect %s: %s\n", key, err.text);
    }
    return d;
}

// Does the audit log hold an entry by key for action whose outcome starts
// with outcome?
static bool
audited(drover_t *admin,
        const char *key,
        const char *action,
        const char *outcome)
{
    drover_audit_entry_t *e = NULL;
    size_t n = 0;
    drover_error_t err = {0};
    bool found = false;
    if (admin && drover_audit(admin, 0, &e, &n, NULL, &err) == 0) {
        for (size_t i = 0; i < n && !found; i++) {
            found = strcmp(e[i].key, key) == 0 &&
                    strcmp(e[i].action, action) == 0 &&
                    strncmp(e[i].outcome, outcome, strlen(outcome)) == 0;
        }
    }
    free(e);
    return found;
}

// ------------------------------------------------------------ raw sockets
//
// A DEALER with a key's CURVE identity, for what libdrover does not do:
// send a request and come back for its reply later.

typedef struct {
    void *ctx;
    void *sock;
} raw_t;

static bool
raw_open(raw_t *r, const ten_t *t, const char *key)
{
    char k[4400], b[4400];
    key_path(t, key, "key", k, sizeof k);
    key_path(t, "broker", "pub", b, sizeof b);
    dv_key_t me, broker;
    dv_error_t err = {0};
    memset(r, 0, sizeof *r);
    if (dv_key_load(&me, k, &err) != 0) {
        return false;
    }
    if (dv_key_load(&broker, b, &err) != 0) {
        dv_key_clear(&me);
        return false;
    }
    r->ctx = zmq_ctx_new();
    r->sock = zmq_socket(r->ctx, ZMQ_DEALER);
    dv_test_no_hwm(r->sock);
    int linger = 0;
    zmq_setsockopt(r->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(r->sock, ZMQ_CURVE_SERVERKEY, broker.public_key, 32);
    zmq_setsockopt(r->sock, ZMQ_CURVE_PUBLICKEY, me.public_key, 32);
    zmq_setsockopt(r->sock, ZMQ_CURVE_SECRETKEY, me.secret_key, 32);
    dv_key_clear(&me);
    dv_key_clear(&broker);
    return zmq_connect(r->sock, t->cep) == 0;
}

static void
raw_close(raw_t *r)
{
    if (r->sock) {
        zmq_close(r->sock);
        zmq_ctx_term(r->ctx);
    }
    memset(r, 0, sizeof *r);
}

// Send w (destroyed) with frames.
static void
raw_send(raw_t *r, dv_msgw_t *w, const dv_frame_t *frames, size_t n)
{
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_wire_send(r->sock, NULL, 0, h, len, frames, n);
    dv_msgw_destroy(&w);
}

// Wait for the reply to rid. Returns 0 for a reply of type want (*job:
// its "job" field, when asked), the error code of an `error` reply (text
// in text), or DV_ETIMEDOUT.
static int
raw_reply(raw_t *r,
          uint64_t rid,
          dv_msg_type_t want,
          uint64_t *job,
          char *text,
          size_t size)
{
    int64_t deadline = dv_test_now_ms() + WAIT_MS;
    for (;;) {
        dv_wire_msg_t in;
        while (dv_wire_recv(r->sock, false, &in) == 1) {
            dv_msg_t *m = NULL;
            dv_error_t err = {0};
            int rc = DV_ETIMEDOUT;
            if (dv_msg_decode(&m, zmq_msg_data(&in.header),
                              zmq_msg_size(&in.header), in.frames, in.n_payload,
                              NULL, &err) == 0 &&
                dv_msg_rid(m) == rid) {
                if (dv_msg_type(m) == DV_MSG_ERROR) {
                    rc = DV_EFORMAT;
                    dv_msg_error(m, &rc, text, size, &err);
                } else {
                    rc = dv_msg_type(m) == want ? 0 : DV_EFORMAT;
                    if (rc == 0 && job) {
                        dv_msg_uint(m, "job", job, &err);
                    }
                }
            }
            dv_msg_destroy(&m);
            dv_wire_msg_close(&in);
            if (rc != DV_ETIMEDOUT) {
                return rc;
            }
        }
        int64_t left = deadline - dv_test_now_ms();
        zmq_pollitem_t item = {r->sock, 0, ZMQ_POLLIN, 0};
        if (left <= 0 || zmq_poll(&item, 1, (long)left) < 0) {
            return DV_ETIMEDOUT;
        }
    }
}

// ------------------------------------------------------------------ cases

// A train job into model name, its data sent with it (iris, softmax):
// submitted on r, answered `accepted` with the job's id.
static int
raw_train(raw_t *r, uint64_t rid, const char *name, uint64_t *job)
{
    size_t len = 0;
    unsigned char *csv =
        dv_test_read_file(dv_test_data("iris_train.csv"), &len);
    if (!csv) {
        return DV_EIO;
    }
    dv_hyper_t h;
    dv_algo_t algo;
    dv_algo_parse("softmax", &algo);
    dv_hyper_default(&h, algo);
    dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, rid);
    dv_msgw_str(w, "queue", "jobs");
    dv_msgw_str(w, "kind", "train");
    dv_msgw_str(w, "model", name);
    dv_msgw_hyper(w, "train", &h);
    dv_frame_t f = {csv, len};
    raw_send(r, w, &f, 1);
    free(csv);
    char text[256] = "";
    return raw_reply(r, rid, DV_MSG_ACCEPTED, job, text, sizeof text);
}

// The result of job as key sees it: its error code (0: done) and text.
static int
wait_result(drover_t *d, uint64_t job, char *text, size_t size)
{
    drover_result_t *r = NULL;
    drover_error_t err = {0};
    int rc = drover_wait(d, job, WAIT_MS, &r, &err);
    if (rc == 0) {
        const char *t = "";
        rc = drover_result_error(r, &t);
        snprintf(text, size, "%s", t);
    } else {
        snprintf(text, size, "%s", err.text);
    }
    drover_result_destroy(&r);
    return rc;
}

// Files in the data dir's folder rel whose names end in suffix.
static size_t
files_in(const ten_t *t, const char *rel, const char *suffix)
{
    char path[4500];
    snprintf(path, sizeof path, "%s/%s", t->data, rel);
    DIR *d = opendir(path);
    struct dirent *e;
    size_t n = 0, sl = strlen(suffix);
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        n += l > sl && strcmp(e->d_name + l - sl, suffix) == 0;
    }
    if (d) {
        closedir(d);
    }
    return n;
}

// Point 9, models: bob's and alice's train jobs into the new name `shared`
// are both accepted (nobody owns it yet: no worker runs). The worker then
// runs bob's first: he owns `shared`; alice's job fails DV_EPERM naming
// bob when its version comes to be stored, and nothing of it is stored
// (one version, one file), so her `infer shared` cannot be handed
// his model as hers. The broker goes on: alice trains her own name, bob
// adds a version to his.
static void
test_model_race(void)
{
    ten_t t;
    bool up = ten_up(&t);
    raw_t rb = {0}, ra = {0};
    uint64_t jb = 0, ja = 0;
    int sb =
        up && raw_open(&rb, &t, "bob") ? raw_train(&rb, 1, "shared", &jb) : -1;
    int sa = sb == 0 && raw_open(&ra, &t, "alice")
                 ? raw_train(&ra, 1, "shared", &ja)
                 : -1;
    bool worker = sa == 0 && worker_start(&t);
    drover_t *alice = worker ? connect_as(&t, "alice") : NULL;
    drover_t *bob = worker ? connect_as(&t, "bob") : NULL;
    drover_t *admin = worker ? connect_as(&t, "admin") : NULL;
    char tb[256] = "", ta[256] = "";
    int rb_rc = bob ? wait_result(bob, jb, tb, sizeof tb) : -1;
    int ra_rc = alice ? wait_result(alice, ja, ta, sizeof ta) : -1;
    drover_model_t *models = NULL;
    size_t n_models = 0, n_shared = 0;
    drover_error_t err = {0};
    if (admin && drover_model_list(admin, &models, &n_models, &err) == 0) {
        for (size_t i = 0; i < n_models; i++) {
            n_shared += strcmp(models[i].name, "shared") == 0;
        }
    }
    free(models);
    size_t files = files_in(&t, "models/shared", ".drvm") +
                   files_in(&t, "models/shared", ".lineage");
    bool a_refused =
        audited(admin, "alice", "submit", "refused: model 'shared'");
    // Still serving, to both.
    uint64_t j3 = 0, j4 = 0;
    char t3[256] = "", t4[256] = "";
    int own = ra.sock && raw_train(&ra, 2, "alices", &j3) == 0 && alice
                  ? wait_result(alice, j3, t3, sizeof t3)
                  : -1;
    int more = rb.sock && raw_train(&rb, 2, "shared", &j4) == 0 && bob
                   ? wait_result(bob, j4, t4, sizeof t4)
                   : -1;
    raw_close(&ra);
    raw_close(&rb);
    drover_destroy(&alice);
    drover_destroy(&bob);
    drover_destroy(&admin);
    ten_down(&t, rb_rc != 0 || ra_rc != DV_EPERM || own != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(sb, 0);
    DV_CHECK_EQ(sa, 0); // both accepted: the check at submit passed
    DV_CHECK(worker);
    DV_CHECK_EQ(rb_rc, 0);
    DV_CHECK_EQ(ra_rc, DV_EPERM);
    DV_CHECK(strstr(ta, "belongs to key 'bob'") != NULL);
    DV_CHECK_EQ(n_shared, 1); // alice's version was not stored
    DV_CHECK_EQ(files, 2);    // bob's model and its lineage, no more
    DV_CHECK(a_refused);
    DV_CHECK_EQ(own, 0);
    DV_CHECK_EQ(more, 0);
}

#define RACE_ROWS 560000 // ~4.5 MB of CSV: two chunks, the last one small

// A CSV of RACE_ROWS rows (x, y, target), different per tenant (seed).
static unsigned char *
race_csv(int seed, size_t *len)
{
    size_t cap = (size_t)RACE_ROWS * 16 + 64, n = 0;
    unsigned char *p = malloc(cap);
    n += (size_t)snprintf((char *)p, cap, "x,y,target\n");
    for (int i = 0; i < RACE_ROWS; i++) {
        n += (size_t)snprintf((char *)p + n, cap - n, "%d,%d,%d\n", i % 97,
                              (i + seed) % 89, i % 2);
    }
    *len = n;
    return p;
}

// dataset_push of csv[off, off + n) to name (the whole file's size and
// SHA-256 in sum).
static void
raw_push_chunk(raw_t *r,
               uint64_t rid,
               const char *name,
               const unsigned char *csv,
               size_t len,
               const uint8_t *sum,
               size_t off,
               size_t n)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DATASET_PUSH, rid);
    dv_msgw_str(w, "name", name);
    dv_msgw_bin(w, "sha256", sum, DV_SHA256_BYTES);
    dv_msgw_uint(w, "bytes", len);
    dv_msgw_uint(w, "offset", off);
    dv_frame_t f = {csv + off, n};
    raw_send(r, w, &f, 1);
}

#define CHUNK ((size_t)4 << 20)

// Point 9, data sets: alice and bob upload a data set into the new name
// `race`; both first chunks are taken, then both last chunks go at once.
// One is stored; the other is refused DV_EPERM naming the winner and
// leaves nothing (one version, one file). The loser is then refused
// at once, the winner adds a version.
static void
test_dataset_race(void)
{
    ten_t t;
    bool up = ten_up(&t);
    raw_t r[2] = {{0}};
    const char *who[2] = {"alice", "bob"};
    unsigned char *csv[2] = {NULL, NULL};
    size_t len[2] = {0, 0};
    uint8_t sum[2][DV_SHA256_BYTES];
    int first[2] = {-1, -1}, last[2] = {-1, -1};
    char text[2][256] = {"", ""};
    for (int i = 0; i < 2; i++) {
        csv[i] = race_csv(i, &len[i]);
        dv_sha256(csv[i], len[i], sum[i]);
        if (up && raw_open(&r[i], &t, who[i])) {
            raw_push_chunk(&r[i], 1, "race", csv[i], len[i], sum[i], 0, CHUNK);
            first[i] = raw_reply(&r[i], 1, DV_MSG_OK, NULL, text[i], 256);
        }
    }
    for (int i = 0; i < 2 && first[0] == 0 && first[1] == 0; i++) {
        raw_push_chunk(&r[i], 2, "race", csv[i], len[i], sum[i], CHUNK,
                       len[i] - CHUNK);
    }
    for (int i = 0; i < 2 && first[0] == 0 && first[1] == 0; i++) {
        last[i] = raw_reply(&r[i], 2, DV_MSG_DATASET, NULL, text[i], 256);
    }
    int win = last[0] == 0 ? 0 : 1, lose = 1 - win;
    char says[128];
    snprintf(says, sizeof says, "belongs to key '%s'", who[win]);
    drover_t *admin = up ? connect_as(&t, "admin") : NULL;
    drover_dataset_t *all = NULL;
    size_t n = 0, n_race = 0;
    drover_error_t err = {0};
    if (admin && drover_dataset_list(admin, &all, &n, &err) == 0) {
        for (size_t i = 0; i < n; i++) {
            n_race += strcmp(all[i].name, "race") == 0;
        }
    }
    free(all);
    size_t files = files_in(&t, "datasets/race", ".csv");
    bool a_refused =
        audited(admin, who[lose], "dataset_push", "refused: data set 'race'");
    // The loser is refused at once now; the winner adds a version.
    drover_t *loser = up ? connect_as(&t, who[lose]) : NULL;
    drover_t *winner = up ? connect_as(&t, who[win]) : NULL;
    drover_dataset_t ds = {0};
    int again = loser ? drover_dataset_push(loser, dv_test_data("iris.csv"),
                                            "race", &ds, &err)
                      : -1;
    int more = winner ? drover_dataset_push(winner, dv_test_data("iris.csv"),
                                            "race", &ds, &err)
                      : -1;
    for (int i = 0; i < 2; i++) {
        raw_close(&r[i]);
        free(csv[i]);
    }
    drover_destroy(&admin);
    drover_destroy(&loser);
    drover_destroy(&winner);
    ten_down(&t, last[win] != 0 || last[lose] != DV_EPERM);
    DV_CHECK(up);
    DV_CHECK_EQ(first[0], 0);
    DV_CHECK_EQ(first[1], 0);
    DV_CHECK_EQ(last[win], 0);
    DV_CHECK_EQ(last[lose], DV_EPERM);
    DV_CHECK(strstr(text[lose], says) != NULL);
    DV_CHECK_EQ(n_race, 1);
    DV_CHECK_EQ(files, 1);
    DV_CHECK(a_refused);
    DV_CHECK_EQ(again, DV_EPERM);
    DV_CHECK_EQ(more, 0);
}

// An echo job with an idempotency key on queue "jobs". Returns 0 and *id
// or the refusal.
static int
submit_keyed(drover_t *d, const char *key, const char *payload, uint64_t *id)
{
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = "jobs";
    job.payload = payload;
    job.payload_len = strlen(payload);
    job.idempotency_key = key;
    drover_error_t err = {0};
    *id = 0;
    return d ? drover_submit(d, &job, WAIT_MS, id, &err) : -1;
}

// Point 10: bob submits first with the idempotency key alice is about to
// use. Alice's submit is a new job, runs and returns her payload; each
// one's retry gets their own job back, after a broker restart too.
static void
test_idempotency_scoped(void)
{
    ten_t t;
    bool up = ten_up(&t) && worker_start(&t);
    drover_t *alice = up ? connect_as(&t, "alice") : NULL;
    drover_t *bob = up ? connect_as(&t, "bob") : NULL;
    uint64_t jb = 0, ja = 0, jb2 = 0, ja2 = 0, jb3 = 0, ja3 = 0;
    int sb = submit_keyed(bob, "order-1", "bob's", &jb);
    int sa = submit_keyed(alice, "order-1", "alice's", &ja);
    drover_result_t *r = NULL;
    drover_error_t err = {0};
    size_t len = 0;
    const void *out = NULL;
    if (sa == 0 && drover_wait(alice, ja, WAIT_MS, &r, &err) == 0) {
        out = drover_result_payload(r, &len);
    }
    bool hers = out && len == 7 && memcmp(out, "alice's", 7) == 0;
    drover_result_destroy(&r);
    submit_keyed(bob, "order-1", "bob's", &jb2);
    submit_keyed(alice, "order-1", "alice's", &ja2);
    drover_destroy(&alice);
    drover_destroy(&bob);
    bool again = up && broker_restart(&t);
    alice = again ? connect_as(&t, "alice") : NULL;
    bob = again ? connect_as(&t, "bob") : NULL;
    int sb3 = submit_keyed(bob, "order-1", "bob's", &jb3);
    int sa3 = submit_keyed(alice, "order-1", "alice's", &ja3);
    drover_destroy(&alice);
    drover_destroy(&bob);
    ten_down(&t, !hers || ja3 != ja);
    DV_CHECK(up);
    DV_CHECK_EQ(sb, 0);
    DV_CHECK_EQ(sa, 0);
    DV_CHECK(ja != jb); // not answered with bob's job
    DV_CHECK(hers);     // and it ran
    DV_CHECK_EQ(jb2, jb);
    DV_CHECK_EQ(ja2, ja);
    DV_CHECK(again);
    DV_CHECK_EQ(sb3, 0);
    DV_CHECK_EQ(sa3, 0);
    DV_CHECK_EQ(jb3, jb); // scopes survive the restart
    DV_CHECK_EQ(ja3, ja);
}

// Point 10, the store format: a key record as brokers wrote them before
// scopes (format 1: time, queue length, queue, key; job 77) still loads.
// In plain mode it answers as before (duplicate: job 77); with CURVE it
// answers no key (alice's submit is a new job).
static void
test_idempotency_old_records(void)
{
    ten_t t;
    bool up = ten_up(&t);
    bool stopped = up && dv_proc_stop(&t.broker, SIGTERM) == 0;
    dv_store_t *st = NULL;
    dv_error_t e = {0};
    int opened = stopped ? dv_store_open(&st, t.data, &e) : -1;
    if (opened == 0) {
        uint8_t rec[12 + 4 + 6];
        uint64_t now = (uint64_t)time(NULL) * 1000;
        for (int i = 0; i < 8; i++) {
            rec[i] = (uint8_t)(now >> (8 * i));
        }
        rec[8] = 4;
        rec[9] = rec[10] = rec[11] = 0;
        memcpy(rec + 12, "jobs", 4);
        memcpy(rec + 16, "legacy", 6);
        dv_store_put(st, DV_STORE_KEYS, 77, rec, sizeof rec);
        opened = dv_store_commit(st, &e);
        dv_store_destroy(&st);
    }
    uint64_t plain_id = 0, keyed_id = 0;
    int plain = -1, keyed = -1;
    if (opened == 0 && broker_start_as(&t, true)) {
        drover_t *d = NULL;
        drover_error_t err = {0};
        if (drover_connect_key(&d, t.cep, 10000, NULL, NULL, &err) == 0) {
            plain = submit_keyed(d, "legacy", "x", &plain_id);
        }
        drover_destroy(&d);
    }
    if (plain == 0 && dv_proc_stop(&t.broker, SIGTERM) == 0 &&
        broker_start(&t)) {
        drover_t *alice = connect_as(&t, "alice");
        keyed = submit_keyed(alice, "legacy", "x", &keyed_id);
        drover_destroy(&alice);
    }
    ten_down(&t, plain != 0 || keyed != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(opened, 0);
    DV_CHECK_EQ(plain, 0);
    DV_CHECK_EQ(plain_id, 77);
    DV_CHECK_EQ(keyed, 0);
    DV_CHECK(keyed_id != 77);
}

static void
count_result(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    uint64_t *last = arg;
    *last = drover_result_seq(r);
}

// Follow queue "jobs" as consumer on d; results set *last to their seq.
// Returns the error code (its text in err); *acked gets the stored
// position.
static int
follow(drover_t *d,
       const char *consumer,
       uint64_t *last,
       uint64_t *acked,
       drover_error_t *err)
{
    *acked = UINT64_MAX;
    return d ? drover_follow(d, "jobs", consumer, 10, false, count_result, last,
                             acked, err)
             : -1;
}

// Point 11: alice follows consumer `billing` and acknowledges the first of
// three results. bob (a consumer on the same queue) may neither take it
// over, nor ack its results away, nor unfollow it (DV_EPERM naming alice,
// audited); his own consumer works; an admin may follow hers. After a
// restart she still owns it: bob is refused, and her position is the one
// she acknowledged. Listing (1.8) is an admin's, who sees her its owner;
// bob may not forget hers (audited), she may, and then it is gone.
static void
test_consumer_owner(void)
{
    ten_t t;
    bool up = ten_up(&t) && worker_start(&t);
    drover_t *alice = up ? connect_as(&t, "alice") : NULL;
    drover_t *bob = up ? connect_as(&t, "bob") : NULL;
    drover_t *bob2 = up ? connect_as(&t, "bob") : NULL;
    drover_t *admin = up ? connect_as(&t, "admin") : NULL;
    drover_error_t err = {0};
    int ran = 0;
    for (int i = 0; alice && i < 3; i++) {
        drover_job_t job = DROVER_JOB_INIT;
        job.queue = "jobs";
        job.payload = "x";
        job.payload_len = 1;
        drover_result_t *r = NULL;
        ran += drover_run(alice, &job, WAIT_MS, &r, &err) == 0 &&
               drover_result_ok(r);
        drover_result_destroy(&r);
    }
    uint64_t last = 0, acked = 0, b_last = 0, b_acked = 0, x = 0;
    int fa = follow(alice, "billing", &last, &acked, &err);
    int64_t end = dv_test_now_ms() + WAIT_MS;
    while (fa == 0 && last < 3 && dv_test_now_ms() < end) {
        drover_poll(alice, 200, &err);
    }
    int ack1 =
        fa == 0 ? drover_ack(alice, "jobs", "billing", 1, true, &err) : -1;
    // bob at alice's consumer.
    int fb = follow(bob, "billing", &b_last, &b_acked, &err);
    bool fb_says = strstr(err.text, "belongs to key 'alice'") != NULL;
    int ab = bob ? drover_ack(bob, "jobs", "billing", 3, true, &err) : -1;
    bool ab_says = strstr(err.text, "belongs to key 'alice'") != NULL;
    int ub = bob ? drover_unfollow(bob, "jobs", "billing", &err) : -1;
    int own = follow(bob2, "bob-reader", &b_last, &b_acked, &err);
    bool a_refused =
        audited(admin, "bob", "ack", "refused: consumer 'billing'");
    uint64_t adm_acked = 0;
    int fadm = follow(admin, "billing", &x, &adm_acked, &err);
    drover_destroy(&alice);
    drover_destroy(&bob);
    drover_destroy(&bob2);
    drover_destroy(&admin);
    // After a restart.
    bool again = up && broker_restart(&t);
    alice = again ? connect_as(&t, "alice") : NULL;
    bob = again ? connect_as(&t, "bob") : NULL;
    uint64_t after_acked = 0;
    int fb2 = follow(bob, "billing", &b_last, &b_acked, &err);
    int fa2 = follow(alice, "billing", &last, &after_acked, &err);
    admin = again ? connect_as(&t, "admin") : NULL;
    drover_consumer_t *cs = NULL;
    size_t n_cs = 0;
    int bob_lists =
        bob ? drover_consumer_list(bob, NULL, &cs, &n_cs, &err) : -1;
    free(cs);
    cs = NULL;
    int adm_lists =
        admin ? drover_consumer_list(admin, "jobs", &cs, &n_cs, &err) : -1;
    bool owner_shown = false;
    for (size_t i = 0; adm_lists == 0 && i < n_cs; i++) {
        owner_shown |= strcmp(cs[i].consumer, "billing") == 0 &&
                       strcmp(cs[i].owner, "alice") == 0 && cs[i].acked == 1 &&
                       cs[i].last == 3;
    }
    free(cs);
    int bob_forgets =
        bob ? drover_consumer_forget(bob, "jobs", "billing", NULL, &err) : -1;
    bool bf_says = strstr(err.text, "belongs to key 'alice'") != NULL;
    uint64_t forgot_at = 0;
    int alice_forgets = alice ? drover_consumer_forget(alice, "jobs", "billing",
                                                       &forgot_at, &err)
                              : -1;
    bool f_audited = audited(admin, "bob", "consumer_forget", "refused") &&
                     audited(admin, "alice", "consumer_forget", "ok");
    cs = NULL;
    n_cs = 0;
    int adm_lists2 =
        admin ? drover_consumer_list(admin, "jobs", &cs, &n_cs, &err) : -1;
    bool still_there = false;
    for (size_t i = 0; adm_lists2 == 0 && i < n_cs; i++) {
        still_there |= strcmp(cs[i].consumer, "billing") == 0;
    }
    free(cs);
    drover_destroy(&alice);
    drover_destroy(&bob);
    drover_destroy(&admin);
    ten_down(&t, fa != 0 || fb != DV_EPERM || fa2 != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(ran, 3);
    DV_CHECK_EQ(fa, 0);
    DV_CHECK_EQ(acked, 0);
    DV_CHECK_EQ(last, 3);
    DV_CHECK_EQ(ack1, 0);
    DV_CHECK_EQ(fb, DV_EPERM);
    DV_CHECK(fb_says);
    DV_CHECK_EQ(ab, DV_EPERM);
    DV_CHECK(ab_says);
    DV_CHECK_EQ(ub, DV_EPERM);
    DV_CHECK_EQ(own, 0);
    DV_CHECK(a_refused);
    DV_CHECK_EQ(fadm, 0); // admins may
    DV_CHECK_EQ(adm_acked, 1);
    DV_CHECK(again);
    DV_CHECK_EQ(fb2, DV_EPERM); // the owner is stored
    DV_CHECK_EQ(fa2, 0);
    DV_CHECK_EQ(after_acked, 1); // bob's ack moved nothing
    DV_CHECK_EQ(bob_lists, DV_EPERM);
    DV_CHECK_EQ(adm_lists, 0);
    DV_CHECK(owner_shown);
    DV_CHECK_EQ(bob_forgets, DV_EPERM);
    DV_CHECK(bf_says);
    DV_CHECK_EQ(alice_forgets, 0);
    DV_CHECK_EQ(forgot_at, 1);
    DV_CHECK(f_audited);
    DV_CHECK_EQ(adm_lists2, 0);
    DV_CHECK(!still_there);
}

// A train job into model on stored data set ds, waited for: 0, the
// refusal or the job's error (text in text).
static int
train_on(
    drover_t *d, const char *model, const char *ds, char *text, size_t size)
{
    drover_train_t t = {0};
    t.queue = "jobs";
    t.model = model;
    t.algo = "softmax";
    t.dataset = ds;
    drover_result_t *r = NULL;
    drover_error_t err = {0};
    int rc = d ? drover_train(d, &t, WAIT_MS, &r, &err) : -1;
    snprintf(text, size, "%s", err.text);
    if (rc == 0) {
        const char *why = "";
        rc = drover_result_error(r, &why);
        snprintf(text, size, "%s", why);
    }
    drover_result_destroy(&r);
    return rc;
}

// Data set name's record as key d sees it: 0, or the refusal.
static int
ds_get(drover_t *d, const char *name)
{
    drover_dataset_t ds;
    drover_error_t err = {0};
    return d ? drover_dataset_get(d, name, 0, &ds, &err) : -1;
}

// Versions of name in d's data set list (-1: the list failed).
static int
ds_listed(drover_t *d, const char *name)
{
    drover_dataset_t *all = NULL;
    size_t n = 0;
    drover_error_t err = {0};
    if (!d || drover_dataset_list(d, &all, &n, &err) != 0) {
        return -1;
    }
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        found += strcmp(all[i].name, name) == 0;
    }
    free(all);
    return found;
}

// `drover datasets share NAME --with LIST` as key.
static int
cli_share(const ten_t *t, const char *key, const char *name, const char *with)
{
    char k[4400], b[4400];
    key_path(t, key, "key", k, sizeof k);
    key_path(t, "broker", "pub", b, sizeof b);
    const char *args[] = {"datasets", "share",        name,   "--with",
                          with,       "--broker",     t->cep, "--key",
                          k,          "--broker-key", b,      NULL};
    return dv_proc_run("DROVER_BIN", args, NULL, t->dir, "cli.log");
}

// Point 13: alice's data set is hers. bob may not train on it, see its
// record or list it, nor share it with himself (DV_EPERM, audited); once
// alice shares it with him (the CLI), he trains on it, carol still may
// not. The list survives a restart; an empty list takes it back; admins
// read every data set.
static void
test_dataset_read_access(void)
{
    ten_t t;
    bool up = ten_up(&t) && worker_start(&t);
    drover_t *alice = up ? connect_as(&t, "alice") : NULL;
    drover_t *bob = up ? connect_as(&t, "bob") : NULL;
    drover_t *admin = up ? connect_as(&t, "admin") : NULL;
    drover_dataset_t ds = {0};
    drover_error_t err = {0};
    int pushed =
        alice ? drover_dataset_push(alice, dv_test_data("iris_train.csv"),
                                    "flowers", &ds, &err)
              : -1;
    char text[256] = "";
    int own = train_on(alice, "alices", "flowers", text, sizeof text);
    int b_train = train_on(bob, "bobs", "flowers", text, sizeof text);
    bool b_says = strstr(text, "not shared with key 'bob'") != NULL;
    int b_get = ds_get(bob, "flowers");
    int b_list = ds_listed(bob, "flowers");
    int a_list = ds_listed(alice, "flowers");
    const char *self_share[] = {"bob"};
    int b_share =
        bob ? drover_dataset_share(bob, "flowers", self_share, 1, &err) : -1;
    bool a_refused = audited(admin, "bob", "submit", "refused: data set");
    int shared = up ? cli_share(&t, "alice", "flowers", "bob") : -1;
    int b_train2 = train_on(bob, "bobs", "flowers", text, sizeof text);
    int b_list2 = ds_listed(bob, "flowers");
    // Read access is checked at submit only: with no worker up, bob's
    // evaluate on it is accepted, alice stops sharing, a new worker
    // fetches the data set and the job runs. Then shared again.
    dv_proc_stop(&t.worker, SIGTERM);
    drover_job_t ev = DROVER_JOB_INIT;
    ev.queue = "jobs";
    ev.kind = "evaluate";
    ev.model = "bobs@1";
    ev.dataset = "flowers";
    uint64_t ev_id = 0;
    int ev_sub =
        b_train2 == 0 ? drover_submit(bob, &ev, 10000, &ev_id, &err) : -1;
    int unshared = ev_sub == 0
                       ? drover_dataset_share(alice, "flowers", NULL, 0, &err)
                       : -1;
    int b_get2 = ds_get(bob, "flowers");
    int ev_code = -1;
    if (unshared == 0 && worker_start(&t)) {
        drover_result_t *r = NULL;
        if (drover_wait(bob, ev_id, WAIT_MS, &r, &err) == 0) {
            ev_code = drover_result_error(r, NULL);
        }
        drover_result_destroy(&r);
    }
    int reshared =
        unshared == 0 ? cli_share(&t, "alice", "flowers", "bob") : -1;
    drover_t *carol = up ? connect_as(&t, "carol") : NULL;
    int c_get = ds_get(carol, "flowers");
    drover_destroy(&alice);
    drover_destroy(&bob);
    drover_destroy(&carol);
    drover_destroy(&admin);
    // The list is stored: after a restart bob still reads it, carol not.
    bool again = up && broker_restart(&t);
    bob = again ? connect_as(&t, "bob") : NULL;
    carol = again ? connect_as(&t, "carol") : NULL;
    int b_get3 = ds_get(bob, "flowers");
    int c_get3 = ds_get(carol, "flowers");
    alice = again ? connect_as(&t, "alice") : NULL;
    int back =
        alice ? drover_dataset_share(alice, "flowers", NULL, 0, &err) : -1;
    int b_get4 = ds_get(bob, "flowers");
    admin = again ? connect_as(&t, "admin") : NULL;
    int adm_get = ds_get(admin, "flowers");
    drover_destroy(&alice);
    drover_destroy(&bob);
    drover_destroy(&carol);
    drover_destroy(&admin);
    ten_down(&t, pushed != 0 || b_train != DV_EPERM || b_train2 != 0 ||
                     ev_code != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(pushed, 0);
    DV_CHECK_EQ(own, 0);
    DV_CHECK_EQ(b_train, DV_EPERM);
    DV_CHECK(b_says);
    DV_CHECK_EQ(b_get, DV_EPERM);
    DV_CHECK_EQ(b_list, 0);
    DV_CHECK_EQ(a_list, 1);
    DV_CHECK_EQ(b_share, DV_EPERM);
    DV_CHECK(a_refused);
    DV_CHECK_EQ(shared, 0);
    DV_CHECK_EQ(b_train2, 0);
    DV_CHECK_EQ(b_list2, 1);
    DV_CHECK_EQ(ev_sub, 0);
    DV_CHECK_EQ(unshared, 0);
    DV_CHECK_EQ(b_get2, DV_EPERM); // no longer shared
    DV_CHECK_EQ(ev_code, 0);       // yet the accepted job ran
    DV_CHECK_EQ(reshared, 0);
    DV_CHECK_EQ(c_get, DV_EPERM);
    DV_CHECK(again);
    DV_CHECK_EQ(b_get3, 0);
    DV_CHECK_EQ(c_get3, DV_EPERM);
    DV_CHECK_EQ(back, 0);
    DV_CHECK_EQ(b_get4, DV_EPERM);
    DV_CHECK_EQ(adm_get, 0);
}

static const dv_test_case_t cases[] = {
    {"a model's first version decides its owner", test_model_race},
    {"a data set's first version decides its owner", test_dataset_race},
    {"idempotency keys are scoped per submitting key", test_idempotency_scoped},
    {"key records from before scopes still load", test_idempotency_old_records},
    {"a consumer belongs to the key that first followed it",
     test_consumer_owner},
    {"a data set is read by its owner and those it shares with",
     test_dataset_read_access},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
