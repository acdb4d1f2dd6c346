// test_consumers — result stream consumers can be listed and forgotten
// (protocol 1.8), against a real drover-broker with a data dir and a real
// drover-worker, on raw sockets (the messages themselves are the promise):
//   - consumer_list gives every consumer once, sorted by queue then
//     consumer, in pages that fit a header, filtered by queue; a bad
//     `from` is DV_EFORMAT;
//   - consumer_forget removes one (DV_ENOENT the second time): it is gone
//     from the list, after a restart too (its stored position deleted),
//     its follower gets no more results, and the name follows anew from
//     the start;
//   - a forgotten consumer's slot is free again (DV_MAX_CONSUMERS);
//   - a consumer whose follower's connection closed is listed as not
//     followed (the broker's socket monitor).
//
// Everything runs on ipc:// in a temporary folder; readiness comes from
// READY lines, never from sleeps.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "drover.h"
#include "dv_limits.h"
#include "dv_msgpack.h"
#include "dv_proto.h"
#include "dv_test.h"
#include "dv_test_proc.h"

#define WAIT_MS 60000 // generous for ASan on 2 cores
#define N_QUEUE 250   // consumers on each of two queues: two pages

typedef struct {
    char *dir;                 // temporary folder
    char data[4300];           // the broker's data dir
    char cep[4300], wep[4300]; // endpoints
    dv_proc_t broker;          // drover-broker
    void *ctx;                 // raw sockets
    void *s;                   // a raw client socket
} cluster_t;

static bool
broker_up(cluster_t *c)
{
    const char *args[] = {"--client", c->cep,  "--worker", c->wep,
                          "--data",   c->data, NULL};
    c->broker = dv_proc_start("DROVER_BROKER_BIN", args, c->dir, "broker.log");
    char ready[9000];
    return c->broker.pid && dv_proc_wait_ready(&c->broker, ready, sizeof ready);
}

static void *
raw_socket(cluster_t *c)
{
    void *s = zmq_socket(c->ctx, ZMQ_DEALER);
    int linger = 0, tmo = WAIT_MS;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    zmq_connect(s, c->cep);
    return s;
}

static bool
cluster_up(cluster_t *c)
{
    memset(c, 0, sizeof *c);
    c->dir = dv_test_tmpdir();
    snprintf(c->data, sizeof c->data, "%s/data", c->dir);
    snprintf(c->cep, sizeof c->cep, "ipc://%s/client.sock", c->dir);
    snprintf(c->wep, sizeof c->wep, "ipc://%s/worker.sock", c->dir);
    c->ctx = zmq_ctx_new();
    if (!broker_up(c)) {
        fprintf(stderr, "  broker did not get ready\n");
        return false;
    }
    c->s = raw_socket(c);
    return true;
}

static int
cluster_down(cluster_t *c, bool failed)
{
    if (c->s) {
        zmq_close(c->s);
    }
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

// Send w on s; the next message on s whose rid is rid (streamed results of
// other requests are skipped), decoded into *m (msg keeps its bytes: the
// caller closes both). False when none came in time.
static bool
request(void *s, dv_msgw_t *w, uint64_t rid, zmq_msg_t *msg, dv_msg_t **m)
{
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    zmq_send(s, h, len, 0);
    dv_msgw_destroy(&w);
    *m = NULL;
    for (;;) {
        zmq_msg_init(msg);
        if (zmq_msg_recv(msg, s, 0) < 0) {
            zmq_msg_close(msg);
            return false;
        }
        int more = zmq_msg_more(msg);
        dv_error_t err = {0};
        if (dv_msg_decode(m, zmq_msg_data(msg), zmq_msg_size(msg), NULL, 0,
                          NULL, &err) == 0 &&
            dv_msg_rid(*m) == rid && !more) {
            return true;
        }
        dv_msg_destroy(m);
        while (more) { // the frames of a streamed result
            zmq_msg_close(msg);
            zmq_msg_init(msg);
            zmq_msg_recv(msg, s, 0);
            more = zmq_msg_more(msg);
        }
        zmq_msg_close(msg);
    }
}

// An error reply's code (0: not an error).
static int
error_code(const dv_msg_t *m)
{
    if (!m || dv_msg_type(m) != DV_MSG_ERROR) {
        return 0;
    }
    const msgpack_object *e = dv_msg_get(m, "error");
    const msgpack_object *n = e ? dv_msgpack_get(e, "name") : NULL;
    char name[64] = "";
    if (n && n->type == MSGPACK_OBJECT_STR && n->via.str.size < 64) {
        memcpy(name, n->via.str.ptr, n->via.str.size);
    }
    return dv_err_code(name);
}

// follow {queue, consumer} on s with rid (its streamed results carry it):
// the `ok`'s acked, or -1 (the error's code in *code).
static int64_t
follow(
    void *s, uint64_t rid, const char *queue, const char *consumer, int *code)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_FOLLOW, rid);
    dv_msgw_str(w, "queue", queue);
    dv_msgw_str(w, "consumer", consumer);
    zmq_msg_t msg;
    dv_msg_t *m = NULL;
    int64_t acked = -1;
    *code = -1;
    if (request(s, w, rid, &msg, &m)) {
        uint64_t a = 0;
        dv_error_t err = {0};
        *code = error_code(m);
        if (dv_msg_type(m) == DV_MSG_OK &&
            dv_msg_uint(m, "acked", &a, &err) == 0) {
            acked = (int64_t)a;
        }
        dv_msg_destroy(&m);
        zmq_msg_close(&msg);
    }
    return acked;
}

// consumer_forget: 0, or the error's code (-1: no answer).
static int
forget(void *s, const char *queue, const char *consumer)
{
    static uint64_t rid = 5000;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_CONSUMER_FORGET, ++rid);
    dv_msgw_str(w, "queue", queue);
    dv_msgw_str(w, "consumer", consumer);
    zmq_msg_t msg;
    dv_msg_t *m = NULL;
    if (!request(s, w, rid, &msg, &m)) {
        return -1;
    }
    int code = dv_msg_type(m) == DV_MSG_OK ? 0 : error_code(m);
    dv_msg_destroy(&m);
    zmq_msg_close(&msg);
    return code;
}

typedef struct {
    char queue[DV_MAX_WIRE_NAME + 1], consumer[DV_MAX_WIRE_NAME + 1];
    uint64_t acked, last;
    bool followed;
} entry_t;

typedef struct {
    entry_t *e;
    size_t n, cap;
    size_t pages, total;
    size_t biggest; // a page's header bytes, the most
    bool bad;       // an entry or a page was malformed
    int code;       // an error's code (0: none)
} listing_t;

static void
str_of(const msgpack_object *o, char *out, size_t size)
{
    out[0] = '\0';
    if (o && o->type == MSGPACK_OBJECT_STR && o->via.str.size < size) {
        memcpy(out, o->via.str.ptr, o->via.str.size);
        out[o->via.str.size] = '\0';
    }
}

// Every page of consumer_list (of queue, NULL: all) into l.
static void
list_all(void *s, const char *queue, listing_t *l)
{
    memset(l, 0, sizeof *l);
    char fq[DV_MAX_WIRE_NAME + 1] = "", fc[DV_MAX_WIRE_NAME + 1] = "";
    bool more = true;
    for (uint64_t rid = 1; more && l->pages < 100; rid++) {
        dv_msgw_t *w = dv_msgw_new(DV_MSG_CONSUMER_LIST, rid);
        if (queue) {
            dv_msgw_str(w, "queue", queue);
        }
        if (l->pages) {
            dv_msgw_key(w, "from");
            dv_msgw_v_array(w, 2);
            dv_msgw_v_str(w, fq);
            dv_msgw_v_str(w, fc);
        }
        zmq_msg_t msg;
        dv_msg_t *m = NULL;
        if (!request(s, w, rid, &msg, &m)) {
            l->bad = true;
            return;
        }
        l->pages++;
        size_t bytes = zmq_msg_size(&msg);
        l->biggest = bytes > l->biggest ? bytes : l->biggest;
        l->code = error_code(m);
        const msgpack_object *a = dv_msg_get(m, "consumers");
        const msgpack_object *next = dv_msg_get(m, "next");
        uint64_t total = 0;
        dv_error_t err = {0};
        l->bad |= l->code != 0 || !a || a->type != MSGPACK_OBJECT_ARRAY ||
                  dv_msg_uint(m, "total", &total, &err) != 0;
        l->total = (size_t)total;
        for (uint32_t i = 0; !l->bad && i < a->via.array.size; i++) {
            const msgpack_object *o = &a->via.array.ptr[i];
            if (l->n == l->cap) {
                l->cap = l->cap ? 2 * l->cap : 256;
                l->e = realloc(l->e, l->cap * sizeof *l->e);
            }
            entry_t *e = &l->e[l->n++];
            str_of(dv_msgpack_get(o, "queue"), e->queue, sizeof e->queue);
            str_of(dv_msgpack_get(o, "consumer"), e->consumer,
                   sizeof e->consumer);
            const msgpack_object *ak = dv_msgpack_get(o, "acked");
            const msgpack_object *la = dv_msgpack_get(o, "last");
            const msgpack_object *fo = dv_msgpack_get(o, "followed");
            l->bad |= !ak || ak->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
                      !la || la->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
                      !fo || fo->type != MSGPACK_OBJECT_BOOLEAN;
            e->acked = ak ? ak->via.u64 : 0;
            e->last = la ? la->via.u64 : 0;
            e->followed = fo && fo->via.boolean;
        }
        more = next != NULL;
        if (more) {
            l->bad |=
                next->type != MSGPACK_OBJECT_ARRAY || next->via.array.size != 2;
            if (!l->bad) {
                str_of(&next->via.array.ptr[0], fq, sizeof fq);
                str_of(&next->via.array.ptr[1], fc, sizeof fc);
            }
            more = !l->bad;
        }
        dv_msg_destroy(&m);
        zmq_msg_close(&msg);
    }
}

// Sorted by queue then consumer, each once.
static bool
in_order(const listing_t *l)
{
    for (size_t i = 1; i < l->n; i++) {
        int q = strcmp(l->e[i - 1].queue, l->e[i].queue);
        if (q > 0 ||
            (q == 0 && strcmp(l->e[i - 1].consumer, l->e[i].consumer) >= 0)) {
            return false;
        }
    }
    return true;
}

static const entry_t *
find(const listing_t *l, const char *queue, const char *consumer)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->e[i].queue, queue) == 0 &&
            strcmp(l->e[i].consumer, consumer) == 0) {
            return &l->e[i];
        }
    }
    return NULL;
}

static void
consumer_name(char *out, size_t size, size_t i)
{
    snprintf(out, size,
             "consumer-%04zu-with-a-name-long-enough-to-fill-pages-quickly-"
             "abcdefghijklmnopqrstuvwxyz",
             i);
}

// Listed in pages, sorted, filtered; forgotten for good (a restart does
// not bring it back); followed anew from the start.
static void
test_list_and_forget(void)
{
    cluster_t c;
    bool up = cluster_up(&c);
    const char *queues[2] = {"qb", "qa"}; // followed qb first: sorted after
    size_t made = 0;
    int code = 0;
    char name[160];
    for (size_t q = 0; up && q < 2; q++) {
        for (size_t i = N_QUEUE; i-- > 0;) {
            consumer_name(name, sizeof name, i);
            made += follow(c.s, 1000 + made, queues[q], name, &code) == 0;
        }
    }
    listing_t all, qa, after, again;
    list_all(c.s, NULL, &all);
    list_all(c.s, "qa", &qa);
    // A bad from.
    dv_msgw_t *w = dv_msgw_new(DV_MSG_CONSUMER_LIST, 77);
    dv_msgw_str(w, "from", "qa");
    zmq_msg_t msg;
    dv_msg_t *m = NULL;
    int bad_from = request(c.s, w, 77, &msg, &m) ? error_code(m) : -1;
    if (m) {
        dv_msg_destroy(&m);
        zmq_msg_close(&msg);
    }
    consumer_name(name, sizeof name, 7);
    int forgot = forget(c.s, "qa", name);
    int forgot_again = forget(c.s, "qa", name);
    int forgot_unknown_queue = forget(c.s, "nowhere", name);
    list_all(c.s, NULL, &after);
    // A restart reads the store: the forgotten one stays gone.
    zmq_close(c.s);
    c.s = NULL;
    int stopped = dv_proc_stop(&c.broker, SIGTERM);
    bool up2 = stopped == 0 && broker_up(&c);
    c.s = up2 ? raw_socket(&c) : NULL;
    if (up2) {
        list_all(c.s, NULL, &again);
    } else {
        memset(&again, 0, sizeof again);
    }
    int64_t anew = up2 ? follow(c.s, 999, "qa", name, &code) : -1;
    listing_t last;
    if (up2) {
        list_all(c.s, "qa", &last);
    } else {
        memset(&last, 0, sizeof last);
    }
    bool gone = !find(&after, "qa", name) && !find(&again, "qa", name);
    bool back = find(&last, "qa", name) != NULL;
    printf("  %zu consumers in %zu pages (largest %zu bytes); after a "
           "forget %zu, after a restart %zu\n",
           all.n, all.pages, all.biggest, after.n, again.n);
    int exit_rc = cluster_down(&c, !up || all.bad || after.bad);
    DV_CHECK(up);
    DV_CHECK_EQ(made, 2 * N_QUEUE);
    DV_CHECK(!all.bad);
    DV_CHECK_EQ(all.n, 2 * N_QUEUE);
    DV_CHECK_EQ(all.total, 2 * N_QUEUE);
    DV_CHECK(all.pages >= 2);
    DV_CHECK(all.biggest <= DV_MAX_HEADER_BYTES);
    DV_CHECK(in_order(&all));
    DV_CHECK(all.n && strcmp(all.e[0].queue, "qa") == 0);
    DV_CHECK(!qa.bad);
    DV_CHECK_EQ(qa.n, N_QUEUE);
    DV_CHECK_EQ(qa.total, N_QUEUE);
    DV_CHECK(in_order(&qa));
    DV_CHECK_EQ(bad_from, DV_EFORMAT);
    DV_CHECK_EQ(forgot, 0);
    DV_CHECK_EQ(forgot_again, DV_ENOENT);
    DV_CHECK_EQ(forgot_unknown_queue, DV_ENOENT);
    DV_CHECK_EQ(after.n, 2 * N_QUEUE - 1);
    DV_CHECK(in_order(&after));
    DV_CHECK(up2);
    DV_CHECK_EQ(again.n, 2 * N_QUEUE - 1);
    DV_CHECK(gone);
    DV_CHECK_EQ(anew, 0);
    DV_CHECK(back);
    DV_CHECK_EQ(last.n, N_QUEUE);
    DV_CHECK_EQ(exit_rc, 0);
    free(all.e);
    free(qa.e);
    free(after.e);
    free(again.e);
    free(last.e);
}

// Whether a streamed result for rid arrives on s within ms; its seq in
// *seq.
static bool
streamed(void *s, uint64_t rid, int ms, uint64_t *seq)
{
    int64_t end = dv_test_now_ms() + ms;
    for (;;) {
        int64_t left = end - dv_test_now_ms();
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        if (left <= 0 || zmq_poll(&it, 1, (long)left) <= 0) {
            return false;
        }
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        zmq_msg_recv(&msg, s, 0);
        int more = zmq_msg_more(&msg);
        dv_msg_t *m = NULL;
        dv_error_t err = {0};
        bool hit = dv_msg_decode(&m, zmq_msg_data(&msg), zmq_msg_size(&msg),
                                 NULL, 0, NULL, &err) == 0 &&
                   dv_msg_type(m) == DV_MSG_RESULT && dv_msg_rid(m) == rid &&
                   dv_msg_uint(m, "seq", seq, &err) == 0;
        dv_msg_destroy(&m);
        while (more) {
            zmq_msg_close(&msg);
            zmq_msg_init(&msg);
            zmq_msg_recv(&msg, s, 0);
            more = zmq_msg_more(&msg);
        }
        zmq_msg_close(&msg);
        if (hit) {
            return true;
        }
    }
}

// The follower of a forgotten consumer gets no more results (the next one
// goes to a consumer following after it, and not to it), and a forgotten
// consumer's slot among DV_MAX_CONSUMERS is free for a new name.
static void
test_forgotten_follower_and_slot(void)
{
    cluster_t c;
    bool up = cluster_up(&c);
    const char *wargs[] = {"--broker", c.wep, "--name", "w0", NULL};
    dv_proc_t worker =
        up ? dv_proc_start("DROVER_WORKER_BIN", wargs, c.dir, "worker.log")
           : (dv_proc_t){0, -1};
    char ready[9000];
    up = up && worker.pid && dv_proc_wait_ready(&worker, ready, sizeof ready);
    drover_t *d = NULL;
    drover_error_t err = {0};
    up = up && drover_connect(&d, c.cep, 10000, &err) == 0;
    void *f = up ? raw_socket(&c) : NULL;
    // f follows "live"; job 1's result reaches it.
    enum { RID_LIVE = 11, RID_OTHER = 12 };
    int code = 0;
    int64_t followed = f ? follow(f, RID_LIVE, "q", "live", &code) : -1;
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = "q";
    job.payload = "one";
    job.payload_len = 3;
    drover_result_t *r = NULL;
    int ran1 = up ? drover_run(d, &job, WAIT_MS, &r, &err) : -1;
    drover_result_destroy(&r);
    uint64_t seq1 = 0, seq2 = 0, late = 0;
    bool got1 = f && streamed(f, RID_LIVE, WAIT_MS, &seq1);
    int forgot = up ? forget(c.s, "q", "live") : -1;
    int64_t other = up ? follow(c.s, RID_OTHER, "q", "other", &code) : -1;
    job.payload = "two";
    int ran2 = up ? drover_run(d, &job, WAIT_MS, &r, &err) : -1;
    drover_result_destroy(&r);
    // other gets both, from the start; then f must have nothing new: the
    // pushes of one result go out in one turn of the broker loop.
    bool other1 = up && streamed(c.s, RID_OTHER, WAIT_MS, &seq2);
    bool other2 = up && streamed(c.s, RID_OTHER, WAIT_MS, &seq2);
    bool stale = f && streamed(f, RID_LIVE, 300, &late);
    // Slots: new consumers (on a queue of no results: nothing is pushed)
    // until one is refused; the broker then keeps DV_MAX_CONSUMERS ("other"
    // and the new ones). Forget one, and the refused name fits.
    size_t kept = 1, i = 0;
    int refused_code = 0;
    char name[64];
    while (up && i < DV_MAX_CONSUMERS + 10) {
        snprintf(name, sizeof name, "fill-%zu", i++);
        if (follow(c.s, 100 + i, "quiet", name, &refused_code) != 0) {
            break;
        }
        kept++;
    }
    int freed = up ? forget(c.s, "quiet", "fill-0") : -1;
    int64_t fits = up ? follow(c.s, 99, "quiet", name, &code) : -1;
    if (f) {
        zmq_close(f);
    }
    drover_destroy(&d);
    int wrc = worker.pid ? dv_proc_stop(&worker, SIGTERM) : -1;
    printf("  follower got seq %llu, then %s after the forget; %zu "
           "consumers filled the broker\n",
           (unsigned long long)seq1, stale ? "more" : "nothing", kept);
    int exit_rc = cluster_down(&c, !up || stale);
    DV_CHECK(up);
    DV_CHECK_EQ(followed, 0);
    DV_CHECK_EQ(ran1, 0);
    DV_CHECK(got1);
    DV_CHECK_EQ(seq1, 1);
    DV_CHECK_EQ(forgot, 0);
    DV_CHECK_EQ(other, 0);
    DV_CHECK_EQ(ran2, 0);
    DV_CHECK(other1);
    DV_CHECK(other2);
    DV_CHECK_EQ(seq2, 2);
    DV_CHECK(!stale);
    DV_CHECK_EQ(kept, DV_MAX_CONSUMERS);
    DV_CHECK_EQ(refused_code, DV_ELIMIT);
    DV_CHECK_EQ(freed, 0);
    DV_CHECK_EQ(fits, 0);
    DV_CHECK_EQ(wrc, 0);
    DV_CHECK_EQ(exit_rc, 0);
}

// Whether queue/consumer is listed as followed (-1: not listed, or the
// listing failed).
static int
followed(void *s, const char *queue, const char *consumer)
{
    listing_t l;
    list_all(s, queue, &l);
    const entry_t *e = l.bad ? NULL : find(&l, queue, consumer);
    int f = e ? e->followed : -1;
    free(l.e);
    return f;
}

// A follower's connection closes (its process died, or it never said
// unfollow): the broker reads the disconnect from its socket monitor and
// lists the consumer as no longer followed, and logs it; a follower on
// another connection stays followed, and a new follow takes the consumer
// again. Before, it stayed `followed` until the next follow.
static void
test_closed_follower_unfollowed(void)
{
    cluster_t c;
    bool up = cluster_up(&c);
    void *gone = up ? raw_socket(&c) : NULL;
    int code = 0;
    int64_t a1 = up ? follow(gone, 7, "qc", "gone-one", &code) : -1;
    int64_t a2 = up ? follow(c.s, 8, "qc", "stays", &code) : -1;
    int before = up ? followed(c.s, "qc", "gone-one") : -1;
    if (gone) {
        zmq_close(gone); // linger 0: the connection closes now
    }
    int after = -1;
    int64_t end = dv_test_now_ms() + WAIT_MS;
    while (up && (after = followed(c.s, "qc", "gone-one")) == 1 &&
           dv_test_now_ms() < end) {
        zmq_poll(NULL, 0, 20); // the monitor's event is on its way
    }
    int stays = up ? followed(c.s, "qc", "stays") : -1;
    void *again = up ? raw_socket(&c) : NULL;
    int64_t a3 = again ? follow(again, 9, "qc", "gone-one", &code) : -1;
    int retaken = again ? followed(c.s, "qc", "gone-one") : -1;
    if (again) {
        zmq_close(again);
    }
    char path[4400];
    snprintf(path, sizeof path, "%s/broker.log", c.dir);
    bool logged = dv_test_file_has(path, "consumer gone-one of queue qc: "
                                         "its follower's connection closed");
    printf("  followed %d, after its connection closed %d; the other %d, "
           "followed again %d\n",
           before, after, stays, retaken);
    int exit_rc = cluster_down(&c, after != 0 || !logged);
    DV_CHECK(up);
    DV_CHECK_EQ(a1, 0);
    DV_CHECK_EQ(a2, 0);
    DV_CHECK_EQ(before, 1);
    DV_CHECK_EQ(after, 0);
    DV_CHECK(logged);
    DV_CHECK_EQ(stays, 1);
    DV_CHECK_EQ(a3, 0);
    DV_CHECK_EQ(retaken, 1);
    DV_CHECK_EQ(exit_rc, 0);
}

static const dv_test_case_t cases[] = {
    {"consumers listed in pages and forgotten for good", test_list_and_forget},
    {"a forgotten consumer's follower stops, and its slot is free",
     test_forgotten_follower_and_slot},
    {"a follower whose connection closes is followed no more",
     test_closed_follower_unfollowed},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
