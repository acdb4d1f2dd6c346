// test_group_client — libdrover and drover-worker given an endpoint list
// (a broker group, protocol 1.6), against a real single drover-broker plus
// a FAKE group member: a ROUTER socket in a thread of this test that
// answers as a follower does (DV_ENOTLEADER with the leader's endpoint),
// or welcomes and then redirects, or welcomes and then stays silent (a
// stopped process). What the fake received is recorded and checked: that
// the hint was followed, that submits carried automatic idempotency keys,
// that every job got exactly one result. The raft side is not needed.
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include <msgpack.h>
#include <zmq.h>

#include "drover.h"
#include "dv_msgpack.h"
#include "dv_proto.h"
#include "dv_test.h"
#include "dv_test_cluster.h"
#include "dv_test_proc.h"
#include "dv_wire.h"

// DV_CHECK_RC for libdrover's error type.
#define CHECK_DRC(rc, want, errp)                                              \
    do {                                                                       \
        int rc_ = (rc), want_ = (want);                                        \
        if (rc_ != want_) {                                                    \
            DV_FAIL_("%s: got %d (%s), want %d (%s); reason: %s", #rc, rc_,    \
                     dv_err_name(rc_), want_, dv_err_name(want_),              \
                     (errp)->text);                                            \
            return;                                                            \
        }                                                                      \
    } while (0)

#define WAIT_MS 60000 // a result, generous for ASan on 2 cores
#define N_ASYNC 30

typedef enum {
    FAKE_FOLLOWER, // every request but ping: DV_ENOTLEADER + leader
    FAKE_REDIRECT, // welcomes hello, then DV_ENOTLEADER + leader
    FAKE_SILENT,   // welcomes hello, then answers nothing (SIGSTOP)
} fake_mode_t;

typedef struct {
    void *ctx;
    char ep[600];     // bound here
    char leader[600]; // the hint it gives
    fake_mode_t mode;
    void *sock;       // ROUTER, bound before the thread starts
    pthread_t thread; //   (which then owns it)
    atomic_bool stop;
    atomic_int hellos, notleaders, submits, keyed, registers;
    atomic_bool bad_key; // a submit's key was not 32 hex characters
} fake_t;

static bool
key_ok(const msgpack_object *k)
{
    if (!k || k->type != MSGPACK_OBJECT_STR || k->via.str.size != 32) {
        return false;
    }
    for (uint32_t i = 0; i < 32; i++) {
        if (!strchr("0123456789abcdef", k->via.str.ptr[i])) {
            return false;
        }
    }
    return true;
}

// Record a submit's (or each of a submit_many's) idempotency key.
static void
record_submits(fake_t *f, const dv_msg_t *m)
{
    if (dv_msg_type(m) == DV_MSG_SUBMIT) {
        atomic_fetch_add(&f->submits, 1);
        const msgpack_object *k = dv_msg_get(m, "idempotency_key");
        if (k) {
            atomic_fetch_add(&f->keyed, 1);
            if (!key_ok(k)) {
                atomic_store(&f->bad_key, true);
            }
        }
        return;
    }
    const msgpack_object *a = dv_msg_get(m, "requests");
    for (uint32_t i = 0;
         a && a->type == MSGPACK_OBJECT_ARRAY && i < a->via.array.size; i++) {
        atomic_fetch_add(&f->submits, 1);
        const msgpack_object *k =
            dv_msgpack_get(&a->via.array.ptr[i], "idempotency_key");
        if (k) {
            atomic_fetch_add(&f->keyed, 1);
            if (!key_ok(k)) {
                atomic_store(&f->bad_key, true);
            }
        }
    }
}

static void
reply(void *s, const dv_wire_msg_t *in, dv_msgw_t *w)
{
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_wire_send(s, zmq_msg_data((zmq_msg_t *)&in->route),
                 zmq_msg_size((zmq_msg_t *)&in->route), h, len, NULL, 0);
    dv_msgw_destroy(&w);
}

// `cluster` as a follower (member 2) of a group led by member 1 answers.
static dv_msgw_t *
cluster_reply(uint64_t rid)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_CLUSTER, rid);
    dv_msgw_uint(w, "self", 2);
    dv_msgw_uint(w, "leader", 1);
    dv_msgw_uint(w, "term", 7);
    dv_msgw_uint(w, "commit", 40);
    dv_msgw_uint(w, "applied", 39);
    dv_msgw_uint(w, "last", 41);
    dv_msgw_key(w, "members");
    dv_msgw_v_array(w, 2);
    for (unsigned i = 1; i <= 2; i++) {
        char ep[64];
        dv_msgw_v_map(w, 8);
        dv_msgw_v_str(w, "id");
        dv_msgw_v_uint(w, i);
        snprintf(ep, sizeof ep, "127.0.0.1:%u", 7480 + i);
        dv_msgw_v_str(w, "raft");
        dv_msgw_v_str(w, ep);
        snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", 7470 + i);
        dv_msgw_v_str(w, "client");
        dv_msgw_v_str(w, ep);
        dv_msgw_v_str(w, "worker");
        dv_msgw_v_str(w, "");
        dv_msgw_v_str(w, "http");
        dv_msgw_v_str(w, "");
        dv_msgw_v_str(w, "voter");
        dv_msgw_v_bool(w, true);
        dv_msgw_v_str(w, "role");
        dv_msgw_v_str(w, i == 1 ? "leader" : "follower");
        dv_msgw_v_str(w, "match");
        dv_msgw_v_uint(w, i == 1 ? 41 : 38);
    }
    return w;
}

static void *
fake_run(void *arg)
{
    fake_t *f = arg;
    void *s = f->sock;
    while (!atomic_load(&f->stop)) {
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 50);
        dv_wire_msg_t in;
        while (dv_wire_recv(s, true, &in) == 1) {
            dv_msg_t *m = NULL;
            uint64_t rid = 0;
            dv_error_t e = {0};
            if (in.no_header ||
                dv_msg_decode(&m, zmq_msg_data(&in.header),
                              zmq_msg_size(&in.header), in.frames, in.n_payload,
                              &rid, &e) != 0) {
                dv_wire_msg_close(&in);
                continue;
            }
            dv_msg_type_t t = dv_msg_type(m);
            if (t == DV_MSG_HELLO) {
                atomic_fetch_add(&f->hellos, 1);
            } else if (t == DV_MSG_REGISTER) {
                atomic_fetch_add(&f->registers, 1);
            } else if (t == DV_MSG_SUBMIT || t == DV_MSG_SUBMIT_MANY) {
                record_submits(f, m);
            }
            if (t == DV_MSG_CLUSTER && f->mode != FAKE_SILENT) {
                reply(s, &in, cluster_reply(rid));
            } else if (t == DV_MSG_PING && f->mode != FAKE_SILENT) {
                reply(s, &in, dv_msgw_new(DV_MSG_PONG, rid));
            } else if (t == DV_MSG_HELLO && f->mode != FAKE_FOLLOWER) {
                reply(s, &in, dv_msgw_new(DV_MSG_WELCOME, rid));
            } else if (f->mode != FAKE_SILENT) {
                dv_msgw_t *w = dv_msgw_error_reply(rid, 0, DV_ENOTLEADER,
                                                   "not the leader (a fake)");
                dv_msgw_str(w, "leader", f->leader);
                atomic_fetch_add(&f->notleaders, 1); // counted before seen
                reply(s, &in, w);
            }
            dv_msg_destroy(&m);
            dv_wire_msg_close(&in);
        }
    }
    zmq_close(s);
    return NULL;
}

static void
fake_start(fake_t *f,
           const char *dir,
           const char *name,
           const char *leader,
           fake_mode_t mode)
{
    memset(f, 0, sizeof *f);
    f->ctx = zmq_ctx_new();
    snprintf(f->ep, sizeof f->ep, "ipc://%s/%s", dir, name);
    snprintf(f->leader, sizeof f->leader, "%s", leader);
    f->mode = mode;
    // Bound here, so a client started next finds it (pthread_create is the
    // memory barrier a socket needs to move to another thread).
    f->sock = zmq_socket(f->ctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(f->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(f->sock, f->ep) != 0) {
        fprintf(stderr, "  fake: cannot bind %s\n", f->ep);
    }
    pthread_create(&f->thread, NULL, fake_run, f);
}

static void
fake_stop(fake_t *f)
{
    atomic_store(&f->stop, true);
    pthread_join(f->thread, NULL);
    zmq_ctx_term(f->ctx);
}

// ------------------------------------------------------------ the client

typedef struct {
    int count[N_ASYNC]; // results per job
    int bad;            // results not ok or with a wrong payload
    int done;           // distinct jobs with a result
} tally_t;

static tally_t s_tally;

static void
on_result(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    int i = (int)(intptr_t)arg;
    size_t len = 0;
    const void *p = drover_result_payload(r, &len);
    char want[32];
    snprintf(want, sizeof want, "job-%d", i);
    if (!drover_result_ok(r) || !p || len != strlen(want) ||
        memcmp(p, want, len) != 0) {
        s_tally.bad++;
    }
    if (s_tally.count[i]++ == 0) {
        s_tally.done++;
    }
}

// N_ASYNC async echo jobs and 3 blocking runs on d: each gets exactly one
// result, its own.
static void
check_jobs(drover_t *d)
{
    memset(&s_tally, 0, sizeof s_tally);
    drover_error_t err = {0};
    char payloads[N_ASYNC][32];
    for (int i = 0; i < N_ASYNC; i++) {
        drover_job_t job = DROVER_JOB_INIT;
        snprintf(payloads[i], sizeof payloads[i], "job-%d", i);
        job.payload = payloads[i];
        job.payload_len = strlen(payloads[i]);
        CHECK_DRC(
            drover_submit_async(d, &job, on_result, (void *)(intptr_t)i, &err),
            0, &err);
    }
    int64_t deadline = dv_test_now_ms() + WAIT_MS;
    while (s_tally.done < N_ASYNC && dv_test_now_ms() < deadline) {
        DV_CHECK(drover_poll(d, 200, &err) >= 0);
    }
    // Anything sent twice would come within this: the jobs are echoes.
    DV_CHECK(drover_poll(d, 300, &err) >= 0);
    DV_CHECK_EQ(s_tally.done, N_ASYNC);
    DV_CHECK_EQ(s_tally.bad, 0);
    for (int i = 0; i < N_ASYNC; i++) {
        DV_CHECK_EQ(s_tally.count[i], 1);
    }
    for (int i = 0; i < 3; i++) {
        drover_job_t job = DROVER_JOB_INIT;
        job.payload = "run";
        job.payload_len = 3;
        drover_result_t *r = NULL;
        CHECK_DRC(drover_run(d, &job, WAIT_MS, &r, &err), 0, &err);
        DV_CHECK(drover_result_ok(r));
        drover_result_destroy(&r);
    }
}

static void
test_dead_follower_leader(void)
{
    dv_tcluster_t c;
    fake_t f;
    bool up = dv_tcluster_up(&c, 1, "0");
    fake_start(&f, c.dir, "fake.sock", c.cep, FAKE_FOLLOWER);
    if (up) {
        char list[12000];
        snprintf(list, sizeof list, "ipc://%s/dead.sock,%s,%s", c.dir, f.ep,
                 c.cep);
        drover_t *d = NULL;
        drover_error_t err = {0};
        int rc = drover_connect(&d, list, 20000, &err);
        CHECK_DRC(rc, 0, &err);
        DV_CHECK_STR_EQ(drover_endpoint(d), c.cep);
        DV_CHECK_GE(atomic_load(&f.hellos), 1);
        DV_CHECK_GE(atomic_load(&f.notleaders), 1);
        check_jobs(d);
        drover_destroy(&d);
    }
    fake_stop(&f);
    DV_CHECK(up);
    DV_CHECK_EQ(dv_tcluster_down(&c, dv_test_failed), 0);
}

static void
test_redirected_submits_keep_keys(void)
{
    dv_tcluster_t c;
    fake_t f;
    bool up = dv_tcluster_up(&c, 1, "0");
    fake_start(&f, c.dir, "fake.sock", c.cep, FAKE_REDIRECT);
    if (up) {
        char list[12000];
        snprintf(list, sizeof list, "%s,%s", f.ep, c.cep);
        drover_t *d = NULL;
        drover_error_t err = {0};
        CHECK_DRC(drover_connect(&d, list, 20000, &err), 0, &err);
        DV_CHECK_STR_EQ(drover_endpoint(d), f.ep); // it welcomed us
        check_jobs(d);
        DV_CHECK_STR_EQ(drover_endpoint(d), c.cep); // the hint, followed
        drover_destroy(&d);
        DV_CHECK_GE(atomic_load(&f.submits), 1);
        DV_CHECK_EQ(atomic_load(&f.keyed), atomic_load(&f.submits));
        DV_CHECK(!atomic_load(&f.bad_key));

        // One endpoint is today's behaviour: no key added, no following.
        int before = atomic_load(&f.submits);
        CHECK_DRC(drover_connect(&d, f.ep, 20000, &err), 0, &err);
        drover_job_t job = DROVER_JOB_INIT;
        uint64_t id = 0;
        int rc = drover_submit(d, &job, 10000, &id, &err);
        drover_destroy(&d);
        CHECK_DRC(rc, DV_ENOTLEADER, &err);
        DV_CHECK_EQ(atomic_load(&f.submits), before + 1);
        DV_CHECK_EQ(atomic_load(&f.keyed), before);

        // `cluster`, answered by a follower too.
        CHECK_DRC(drover_connect(&d, f.ep, 20000, &err), 0, &err);
        drover_cluster_t cl;
        rc = drover_cluster(d, &cl, &err);
        drover_destroy(&d);
        CHECK_DRC(rc, 0, &err);
        bool ok = cl.self == 2 && cl.leader == 1 && cl.term == 7 &&
                  cl.commit == 40 && cl.applied == 39 && cl.last == 41 &&
                  cl.n_members == 2 && cl.members[0].id == 1 &&
                  strcmp(cl.members[0].role, "leader") == 0 &&
                  strcmp(cl.members[1].raft, "127.0.0.1:7482") == 0 &&
                  strcmp(cl.members[1].client, "tcp://127.0.0.1:7472") == 0 &&
                  cl.members[1].voter && cl.members[1].match == 38;
        drover_cluster_clear(&cl);
        DV_CHECK(ok);
    }
    fake_stop(&f);
    DV_CHECK(up);
    DV_CHECK_EQ(dv_tcluster_down(&c, dv_test_failed), 0);
}

static void
test_silent_member_left(void)
{
    dv_tcluster_t c;
    fake_t f;
    bool up = dv_tcluster_up(&c, 1, "0");
    fake_start(&f, c.dir, "fake.sock", c.cep, FAKE_SILENT);
    if (up) {
        char list[12000];
        snprintf(list, sizeof list, "%s,%s", f.ep, c.cep);
        drover_t *d = NULL;
        drover_error_t err = {0};
        CHECK_DRC(drover_connect(&d, list, 20000, &err), 0, &err);
        DV_CHECK_STR_EQ(drover_endpoint(d), f.ep);
        check_jobs(d); // the silent one is probed and left
        DV_CHECK_STR_EQ(drover_endpoint(d), c.cep);
        drover_destroy(&d);

        // A write whose answer never came is not sent again: its outcome
        // is unknown, and the caller is told so.
        CHECK_DRC(drover_connect(&d, list, 20000, &err), 0, &err);
        DV_CHECK_STR_EQ(drover_endpoint(d), f.ep);
        int rc = drover_job_cancel(d, 12345, NULL, &err);
        CHECK_DRC(rc, DV_EIO, &err);
        DV_CHECK(strstr(err.text, "leader changed") != NULL);
        // and the connection goes on with the new leader
        DV_CHECK_STR_EQ(drover_endpoint(d), c.cep);
        rc = drover_job_cancel(d, 12345, NULL, &err);
        CHECK_DRC(rc, DV_ENOENT, &err);
        drover_destroy(&d);
    }
    fake_stop(&f);
    DV_CHECK(up);
    DV_CHECK_EQ(dv_tcluster_down(&c, dv_test_failed), 0);
}

static void
test_worker_follows_hint(void)
{
    dv_tcluster_t c;
    fake_t f;
    bool up = dv_tcluster_up(&c, 0, "0"); // no worker but ours
    fake_start(&f, c.dir, "fakew.sock", c.wep, FAKE_FOLLOWER);
    if (up) {
        // A one-entry list naming a follower: its hint is followed.
        const char *args[] = {"--broker",
                              f.ep,
                              "--name",
                              "wg",
                              "--heartbeat-ms",
                              DV_TCLUSTER_HEARTBEAT_MS,
                              NULL};
        c.workers[0] =
            dv_proc_start("DROVER_WORKER_BIN", args, c.dir, "worker0.log");
        char ready[9000] = "";
        DV_CHECK(c.workers[0].pid &&
                 dv_proc_wait_ready(&c.workers[0], ready, sizeof ready));
        DV_CHECK(strstr(ready, c.wep) != NULL); // welcomed by the leader
        DV_CHECK_GE(atomic_load(&f.registers), 1);
        DV_CHECK_GE(atomic_load(&f.notleaders), 1);
        drover_error_t err = {0};
        for (int i = 0; i < 3; i++) {
            drover_job_t job = DROVER_JOB_INIT;
            job.payload = "w";
            job.payload_len = 1;
            drover_result_t *r = NULL;
            CHECK_DRC(drover_run(c.d, &job, WAIT_MS, &r, &err), 0, &err);
            bool ok = drover_result_ok(r) &&
                      strcmp(drover_result_worker(r), "wg") == 0;
            drover_result_destroy(&r);
            DV_CHECK(ok);
        }
    }
    fake_stop(&f);
    DV_CHECK(up);
    DV_CHECK_EQ(dv_tcluster_down(&c, dv_test_failed), 0);
}

static const dv_test_case_t cases[] = {
    {"a worker follows a follower's hint to the leader",
     test_worker_follows_hint},
    {"a list: dead endpoint, follower, leader", test_dead_follower_leader},
    {"redirected submits keep their automatic keys",
     test_redirected_submits_keep_keys},
    {"a silent member is left for the next", test_silent_member_left},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
