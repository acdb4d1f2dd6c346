// dv-bench-queue — queue figures on loopback (never run by tests; `make
// bench` runs it):
//   W1  20,000 no-op (echo) jobs of 100 bytes from 1 producer submitting
//       asynchronously, 2 workers, until the producer has every result:
//       jobs/s, median of 3 runs
//   W2  2,000 sequential round trips with 1 worker: p50/p99 latency (us)
//   train: the digits MLP (64-128-10, 200 epochs) trained through the queue
//       (`drover train`, one worker) and in-process (`drover local train`):
//       training samples/s, median of 3
//   deep: durable W1 again while 1,000,000 jobs of 100 bytes wait in
//       another queue (workers serve only W1's, --queues): the broker's
//       RSS and W1 beside the empty-queue durable figure
//   queues: in-memory W1 in one queue, then 100,000 jobs spread over
//       4,000 queues in turn, then W1 in one queue while the 4,000 exist
//       (workers serve every queue): each beside the first, so a broker
//       with a queue per tenant is seen to pay per job what one queue does
//   curve: W1 over tcp 127.0.0.1, plain beside CURVE (keys for the broker,
//       the workers and the producer): the cost of encryption
//   floor: the same W1/W2 through a raw ZeroMQ relay (ROUTER/ROUTER,
//       round-robin to workers, as ../shared/peers/src/zmq_broker.c) with
//       echo workers, all in this process: what ZeroMQ alone costs.
// Drover's workers run with --concurrency 64: credits let the broker keep
// each worker's pipe full, as the relay's round-robin does.
// Drover runs as real processes (drover-broker, drover-worker from
// --bin-dir) on ipc:// endpoints in a temporary folder. Writes JSON
// (--out, default bench/results/queue.json) and prints Drover / floor.
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "dv_bench.h"
#include "dv_keys.h"
#include "dv_proto.h"
#include "dv_wire.h"

#define W1_JOBS  20000
#define W2_TRIPS 2000
#define PAYLOAD  100
#define RUNS     3
#define WINDOW   2000    // W1: jobs in flight before waiting for results
#define BACKLOG  1000000 // deep: jobs waiting in the other queue
#define QUEUES   4000    // queues: named queues the broker holds

// ------------------------------------------------------ drover processes

static void
send_submit(void *sock, uint64_t rid, const char *payload)
{
    dv_bench_submit(sock, rid, "bench", payload, PAYLOAD);
}

// Read one message; true when it is a result.
static bool
recv_is_result(void *sock)
{
    dv_wire_msg_t in;
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    while (dv_wire_recv(sock, false, &in) != 1) {
        if (zmq_poll(&it, 1, 10000) <= 0) {
            fprintf(stderr, "dv-bench-queue: no reply in 10 s\n");
            exit(1);
        }
    }
    dv_msg_t *m = NULL;
    dv_error_t err = {0};
    bool result =
        dv_msg_decode(&m, zmq_msg_data(&in.header), zmq_msg_size(&in.header),
                      in.frames, in.n_payload, NULL, &err) == 0 &&
        dv_msg_type(m) == DV_MSG_RESULT;
    dv_msg_destroy(&m);
    dv_wire_msg_close(&in);
    return result;
}

// W1 through Drover: n jobs, jobs/s.
static double
drover_w1(void *sock, int n)
{
    char payload[PAYLOAD];
    memset(payload, 'x', sizeof payload);
    double t0 = dv_bench_now_s();
    int sent = 0, results = 0;
    while (results < n) {
        while (sent < n && sent - results < WINDOW) {
            send_submit(sock, (uint64_t)++sent, payload);
        }
        results += recv_is_result(sock);
    }
    return n / (dv_bench_now_s() - t0);
}

// W1 with its jobs spread over queue names q-0 .. q-(queues - 1) in turn
// (queues 0: all in "bench"), jobs/s.
static double
drover_w1_over(void *sock, int n, int queues)
{
    char payload[PAYLOAD], name[32];
    memset(payload, 'x', sizeof payload);
    double t0 = dv_bench_now_s();
    int sent = 0, results = 0;
    while (results < n) {
        while (sent < n && sent - results < WINDOW) {
            snprintf(name, sizeof name, "q-%d", queues ? sent % queues : 0);
            dv_bench_submit(sock, (uint64_t)++sent, queues ? name : "bench",
                            payload, PAYLOAD);
        }
        results += recv_is_result(sock);
    }
    return n / (dv_bench_now_s() - t0);
}

// W2 through Drover: fills lat[] with n round trip times (us).
static void
drover_w2(void *sock, double *lat, int n)
{
    char payload[PAYLOAD];
    memset(payload, 'y', sizeof payload);
    for (int i = 0; i < n; i++) {
        double t0 = dv_bench_now_s();
        send_submit(sock, (uint64_t)i + 1, payload);
        while (!recv_is_result(sock)) {
        }
        lat[i] = (dv_bench_now_s() - t0) * 1e6;
    }
}

// Run bin with args to completion (stdout drained): wall seconds, or -1.
static double
run_timed(const char *bin, const char *const *args)
{
    double t0 = dv_bench_now_s();
    dv_bench_proc_t p = dv_bench_spawn(bin, args);
    if (!p.pid) {
        return -1;
    }
    char buf[4096];
    while (read(p.out, buf, sizeof buf) > 0) {
    }
    close(p.out);
    int status = 0;
    waitpid(p.pid, &status, 0);
    double secs = dv_bench_now_s() - t0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? secs : -1;
}

#define TRAIN_EPOCHS "200"
#define TRAIN_ROWS   1437 // data/digits_train.csv

// train: samples/s through the queue (*queue) and in-process (*local).
static int
run_train(const char *bin_dir, double *queue, double *local)
{
    char dir[] = "/tmp/dv-bench-train-XXXXXX";
    if (!mkdtemp(dir)) {
        return -1;
    }
    char cep[256], wep[256], broker_bin[4200], worker_bin[4200], cli[4200];
    char line[1100], bcep[300], out[300];
    snprintf(cep, sizeof cep, "ipc://%s/c.sock", dir);
    snprintf(wep, sizeof wep, "ipc://%s/w.sock", dir);
    snprintf(bcep, sizeof bcep, "--broker=%s", cep);
    snprintf(out, sizeof out, "--out=%s/local.drvm", dir);
    snprintf(broker_bin, sizeof broker_bin, "%s/drover-broker", bin_dir);
    snprintf(worker_bin, sizeof worker_bin, "%s/drover-worker", bin_dir);
    snprintf(cli, sizeof cli, "%s/drover", bin_dir);
    const char *bargs[] = {"--client", cep, "--worker", wep, NULL};
    const char *wargs[] = {"--broker", wep, NULL};
    dv_bench_proc_t broker = dv_bench_spawn(broker_bin, bargs), w = {0, -1};
    int rc = dv_bench_ready(&broker, line, sizeof line);
    if (rc == 0) {
        w = dv_bench_spawn(worker_bin, wargs);
        rc = dv_bench_ready(&w, line, sizeof line);
    }
    double q[RUNS], l[RUNS];
    for (int r = 0; rc == 0 && r < RUNS; r++) {
        const char *qargs[] = {"train",
                               "--data=data/digits_train.csv",
                               "--algo=mlp",
                               "--hidden=128",
                               "--epochs=" TRAIN_EPOCHS,
                               "--patience=0",
                               "--model=bench",
                               bcep,
                               NULL};
        const char *largs[] = {"local",
                               "train",
                               "--data=data/digits_train.csv",
                               "--algo=mlp",
                               "--hidden=128",
                               "--epochs=" TRAIN_EPOCHS,
                               "--patience=0",
                               out,
                               NULL};
        q[r] = run_timed(cli, qargs);
        l[r] = run_timed(cli, largs);
        rc = q[r] > 0 && l[r] > 0 ? 0 : -1;
    }
    dv_bench_reap(&w);
    dv_bench_reap(&broker);
    char path[300];
    snprintf(path, sizeof path, "%s/c.sock", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/w.sock", dir);
    unlink(path);
    dv_bench_rmtree(dir);
    if (rc == 0) {
        qsort(q, RUNS, sizeof(double), dv_bench_cmp_double);
        qsort(l, RUNS, sizeof(double), dv_bench_cmp_double);
        double samples = (double)TRAIN_ROWS * atoi(TRAIN_EPOCHS);
        *queue = samples / q[RUNS / 2];
        *local = samples / l[RUNS / 2];
    } else {
        fprintf(stderr, "dv-bench-queue: the training runs failed\n");
    }
    return rc;
}

// The broker's resident and peak memory (kB) from /proc.
static void
rss_kb(pid_t pid, long *rss, long *hwm)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    *rss = *hwm = -1;
    while (f && fgets(line, sizeof line, f)) {
        sscanf(line, "VmRSS: %ld", rss);
        sscanf(line, "VmHWM: %ld", hwm);
    }
    if (f) {
        fclose(f);
    }
}

// deep: n jobs into queue "backlog", window 10,000 unacknowledged; s.
static double
preload(void *sock, int n)
{
    char payload[PAYLOAD];
    memset(payload, 'b', sizeof payload);
    double t0 = dv_bench_now_s();
    int sent = 0, acked = 0;
    while (acked < n) {
        while (sent < n && sent - acked < 10000) {
            dv_bench_submit(sock, (uint64_t)++sent, "backlog", payload,
                            PAYLOAD);
        }
        dv_wire_msg_t in;
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        while (dv_wire_recv(sock, false, &in) != 1) {
            if (zmq_poll(&it, 1, 30000) <= 0) {
                fprintf(stderr, "dv-bench-queue: no ack in 30 s\n");
                exit(1);
            }
        }
        dv_msg_t *m = NULL;
        dv_error_t err = {0};
        if (dv_msg_decode(&m, zmq_msg_data(&in.header),
                          zmq_msg_size(&in.header), in.frames, in.n_payload,
                          NULL, &err) == 0 &&
            dv_msg_type(m) == DV_MSG_ACCEPTED) {
            acked++;
        } else if (m && dv_msg_type(m) == DV_MSG_ERROR) {
            fprintf(stderr, "dv-bench-queue: backlog submit refused\n");
            exit(1);
        }
        dv_msg_destroy(&m);
        dv_wire_msg_close(&in);
    }
    return dv_bench_now_s() - t0;
}

// queues: in-memory W1 in one queue before any other exists, then over
// QUEUES queues in turn, then in one queue while the QUEUES others exist
// (empty): what a broker with one queue per tenant pays per job.
typedef struct {
    double one, spread, one_of_many; // jobs/s
} queues_t;

typedef struct {
    double preload_s;    // time to get BACKLOG jobs acknowledged
    long rss_kb, hwm_kb; // broker after the preload
    long rss_after_kb;   // and after the W1 runs
    double w1[RUNS];     // W1 with the backlog waiting
} deep_t;

// durable: the broker gets --data (jobs and results in LMDB, group commits
// with fsync; a submit is acknowledged once stored). deep: durable, with
// BACKLOG jobs waiting in another queue during RUNS W1 runs.
static int
run_drover(const char *bin_dir,
           int workers,
           bool durable,
           double *w1_rate,
           double *lat,
           deep_t *deep,
           queues_t *queues)
{
    char dir[] = "/tmp/dv-bench-queue-XXXXXX";
    if (!mkdtemp(dir)) {
        return -1;
    }
    char cep[256], wep[256], broker_bin[4200], worker_bin[4200], line[1100];
    snprintf(cep, sizeof cep, "ipc://%s/c.sock", dir);
    snprintf(wep, sizeof wep, "ipc://%s/w.sock", dir);
    snprintf(broker_bin, sizeof broker_bin, "%s/drover-broker", bin_dir);
    snprintf(worker_bin, sizeof worker_bin, "%s/drover-worker", bin_dir);
    char data[300];
    snprintf(data, sizeof data, "%s/data", dir);
    const char *bargs[] = {"--client",
                           cep,
                           "--worker",
                           wep,
                           "--max-queued",
                           "2000000",
                           durable ? "--data" : NULL,
                           data,
                           NULL};
    dv_bench_proc_t broker = dv_bench_spawn(broker_bin, bargs),
                    w[2] = {{0, -1}, {0, -1}};
    int rc = dv_bench_ready(&broker, line, sizeof line);
    for (int i = 0; rc == 0 && i < workers; i++) {
        const char *wargs[] = {"--broker",
                               wep,
                               "--concurrency",
                               "64",
                               queues ? NULL : "--queues", // queues: all
                               "bench",
                               NULL};
        w[i] = dv_bench_spawn(worker_bin, wargs);
        rc = dv_bench_ready(&w[i], line, sizeof line);
    }
    if (rc == 0) {
        void *ctx = zmq_ctx_new();
        void *sock = dv_bench_dealer(ctx, cep);
        if (queues) {
            queues->one = drover_w1_over(sock, W1_JOBS, 0);
            queues->spread = drover_w1_over(sock, 5 * W1_JOBS, QUEUES);
            queues->one_of_many = drover_w1_over(sock, W1_JOBS, 0);
        } else if (deep) {
            deep->preload_s = preload(sock, BACKLOG);
            rss_kb(broker.pid, &deep->rss_kb, &deep->hwm_kb);
            for (int r = 0; r < RUNS; r++) {
                deep->w1[r] = drover_w1(sock, W1_JOBS);
            }
            long hwm;
            rss_kb(broker.pid, &deep->rss_after_kb, &hwm);
            deep->hwm_kb = hwm;
            qsort(deep->w1, RUNS, sizeof(double), dv_bench_cmp_double);
        } else if (w1_rate) {
            *w1_rate = drover_w1(sock, W1_JOBS);
        } else {
            drover_w2(sock, lat, W2_TRIPS);
        }
        zmq_close(sock);
        zmq_ctx_term(ctx);
    } else {
        fprintf(stderr, "dv-bench-queue: drover did not start (bin dir %s)\n",
                bin_dir);
    }
    for (int i = 0; i < 2; i++) {
        dv_bench_reap(&w[i]);
    }
    dv_bench_reap(&broker);
    char path[300];
    snprintf(path, sizeof path, "%s/c.sock", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/w.sock", dir);
    unlink(path);
    dv_bench_rmtree(dir);
    return rc;
}

// ------------------------------------------------------------- CURVE

// W1 over tcp 127.0.0.1 with CURVE on (broker --secret-key, workers and the
// producer with keys of their own) or off (plain): what encryption and
// authentication cost. In-memory broker, 2 workers.
static int
run_curve(const char *bin_dir, bool curve, double *w1_rate)
{
    char dir[] = "/tmp/dv-bench-curve-XXXXXX";
    if (!mkdtemp(dir)) {
        return -1;
    }
    char auth[300], stem[300], bkey[300], bpub[300], wkey[300], pkey[300];
    snprintf(auth, sizeof auth, "%s/authorized", dir);
    mkdir(auth, 0755);
    dv_error_t err = {0};
    struct {
        const char *name;
        unsigned roles;
    } keys[] = {{"broker", 0},
                {"worker", DV_ROLE_WORKER},
                {"producer", DV_ROLE_PRODUCER}};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        snprintf(stem, sizeof stem, "%s/%s", dir, keys[i].name);
        rc = dv_key_generate(stem, keys[i].name, keys[i].roles, NULL, &err);
        if (rc == 0 && i > 0) { // authorize it
            char from[320], to[320];
            snprintf(from, sizeof from, "%s.pub", stem);
            snprintf(to, sizeof to, "%s/%s.pub", auth, keys[i].name);
            rc = link(from, to);
        }
    }
    snprintf(bkey, sizeof bkey, "%s/broker.key", dir);
    snprintf(bpub, sizeof bpub, "%s/broker.pub", dir);
    snprintf(wkey, sizeof wkey, "%s/worker.key", dir);
    snprintf(pkey, sizeof pkey, "%s/producer.key", dir);
    char broker_bin[4200], worker_bin[4200], line[1100];
    snprintf(broker_bin, sizeof broker_bin, "%s/drover-broker", bin_dir);
    snprintf(worker_bin, sizeof worker_bin, "%s/drover-worker", bin_dir);
    const char *bargs[] = {"--client",
                           "tcp://127.0.0.1:0",
                           "--worker",
                           "tcp://127.0.0.1:0",
                           "--max-queued",
                           "2000000",
                           curve ? "--secret-key" : NULL,
                           bkey,
                           "--authorized-keys",
                           auth,
                           NULL};
    dv_bench_proc_t broker = {0, -1}, w[2] = {{0, -1}, {0, -1}};
    char cep[256] = "", wep[256] = "";
    if (rc == 0) {
        broker = dv_bench_spawn(broker_bin, bargs);
        rc = dv_bench_ready(&broker, line, sizeof line);
    }
    if (rc == 0 && sscanf(line, "%255s %255s", cep, wep) != 2) {
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < 2; i++) {
        const char *wargs[] = {"--broker",
                               wep,
                               "--concurrency",
                               "64",
                               "--queues",
                               "bench",
                               curve ? "--key" : NULL,
                               wkey,
                               "--broker-key",
                               bpub,
                               NULL};
        w[i] = dv_bench_spawn(worker_bin, wargs);
        rc = dv_bench_ready(&w[i], line, sizeof line);
    }
    if (rc == 0) {
        void *ctx = zmq_ctx_new();
        void *sock = zmq_socket(ctx, ZMQ_DEALER);
        int zero = 0;
        zmq_setsockopt(sock, ZMQ_SNDHWM, &zero, sizeof zero);
        zmq_setsockopt(sock, ZMQ_RCVHWM, &zero, sizeof zero);
        zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
        dv_key_t k = {0}, b = {0};
        if (curve && dv_key_load(&k, pkey, &err) == 0 &&
            dv_key_load(&b, bpub, &err) == 0) {
            zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, b.public_key, 32);
            zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, k.public_key, 32);
            zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, k.secret_key, 32);
        }
        dv_key_clear(&k);
        dv_key_clear(&b);
        zmq_connect(sock, cep);
        *w1_rate = drover_w1(sock, W1_JOBS);
        zmq_close(sock);
        zmq_ctx_term(ctx);
    } else {
        fprintf(stderr, "dv-bench-queue: the CURVE run did not start: %s\n",
                err.text);
    }
    for (int i = 0; i < 2; i++) {
        dv_bench_reap(&w[i]);
    }
    dv_bench_reap(&broker);
    dv_bench_rmtree(dir);
    return rc;
}

// --------------------------------------------------- raw ZeroMQ floor

typedef struct {
    void *ctx;         // shared context (inproc is not used: ipc like
                       // Drover, so both pay the same transport)
    char front[256];   // clients connect here
    char back[256];    // workers connect here
    volatile int stop; // set to end threads
} relay_t;

static void *
relay_worker(void *arg)
{
    relay_t *r = arg;
    void *s = zmq_socket(r->ctx, ZMQ_DEALER);
    int zero = 0, timeout = 100;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_connect(s, r->back);
    zmq_send(s, "READY", 5, 0);
    while (!r->stop) {
        zmq_msg_t parts[3];
        int n = 0, more = 1;
        while (more && n < 3) {
            zmq_msg_init(&parts[n]);
            if (zmq_msg_recv(&parts[n], s, 0) < 0) {
                zmq_msg_close(&parts[n]);
                break;
            }
            more = zmq_msg_more(&parts[n]);
            n++;
        }
        for (int i = 0; i < n; i++) {
            zmq_msg_send(&parts[i], s, i + 1 < n ? ZMQ_SNDMORE : 0);
        }
    }
    zmq_close(s);
    return NULL;
}

static void *
relay_main(void *arg)
{
    relay_t *r = arg;
    dv_bench_relay_run(r->ctx, r->front, r->back, 0, &r->stop, false);
    return NULL;
}

static void
floor_run(int workers, double *w1_rate, double *lat)
{
    relay_t r = {zmq_ctx_new(), "", "", 0};
    char dir[] = "/tmp/dv-bench-relay-XXXXXX";
    if (!mkdtemp(dir)) {
        exit(1);
    }
    snprintf(r.front, sizeof r.front, "ipc://%s/f.sock", dir);
    snprintf(r.back, sizeof r.back, "ipc://%s/b.sock", dir);
    pthread_t relay, w[2];
    pthread_create(&relay, NULL, relay_main, &r);
    dv_bench_sleep_us(50000); // the relay binds before workers connect (ipc)
    for (int i = 0; i < workers; i++) {
        pthread_create(&w[i], NULL, relay_worker, &r);
    }
    void *sock = dv_bench_dealer(r.ctx, r.front);
    char payload[PAYLOAD];
    memset(payload, 'z', sizeof payload);
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    char buf[PAYLOAD];
    if (w1_rate) {
        double t0 = dv_bench_now_s();
        int sent = 0, got = 0;
        while (got < W1_JOBS) {
            while (sent < W1_JOBS && sent - got < WINDOW) {
                zmq_send(sock, payload, PAYLOAD, 0);
                sent++;
            }
            if (zmq_poll(&it, 1, 10000) <= 0) {
                fprintf(stderr, "dv-bench-queue: relay stalled\n");
                exit(1);
            }
            while (zmq_recv(sock, buf, sizeof buf, ZMQ_DONTWAIT) >= 0) {
                got++;
            }
        }
        *w1_rate = W1_JOBS / (dv_bench_now_s() - t0);
    } else {
        for (int i = 0; i < W2_TRIPS; i++) {
            double t0 = dv_bench_now_s();
            zmq_send(sock, payload, PAYLOAD, 0);
            zmq_recv(sock, buf, sizeof buf, 0);
            lat[i] = (dv_bench_now_s() - t0) * 1e6;
        }
    }
    r.stop = 1;
    pthread_join(relay, NULL);
    for (int i = 0; i < workers; i++) {
        pthread_join(w[i], NULL);
    }
    zmq_close(sock);
    zmq_ctx_term(r.ctx);
    char path[300];
    snprintf(path, sizeof path, "%s/f.sock", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/b.sock", dir);
    unlink(path);
    rmdir(dir);
}

// Producer for ../shared/peers (bench/peers/drover.sh): one workload
// against a running broker, one JSON line in the harness's format.
static int
producer(const char *workload, int n, const char *endpoint)
{
    if (n < 1 || n > 10000000) {
        fprintf(stderr, "dv-bench-queue: bad job count %d\n", n);
        return 2;
    }
    void *ctx = zmq_ctx_new();
    void *sock = dv_bench_dealer(ctx, endpoint);
    int rc = 0;
    if (strcmp(workload, "w1") == 0) {
        double t0 = dv_bench_now_s();
        double rate = drover_w1(sock, n);
        printf("{\"jobs\":%d,\"secs\":%.6f,\"jobs_per_s\":%.1f,"
               "\"results_returned\":true}\n",
               n, dv_bench_now_s() - t0, rate);
    } else if (strcmp(workload, "w2") == 0) {
        double *lat = malloc((size_t)n * sizeof(double)), sum = 0;
        drover_w2(sock, lat, n);
        qsort(lat, (size_t)n, sizeof(double), dv_bench_cmp_double);
        for (int i = 0; i < n; i++) {
            sum += lat[i];
        }
        int i50 = (int)(0.50 * (n - 1) + 0.5),
            i99 = (int)(0.99 * (n - 1) + 0.5);
        printf("{\"n\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,"
               "\"min_us\":%.1f,\"max_us\":%.1f}\n",
               n, lat[i50], lat[i99], sum / n, lat[0], lat[n - 1]);
        free(lat);
    } else {
        fprintf(stderr, "dv-bench-queue: workload must be w1 or w2\n");
        rc = 2;
    }
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return rc;
}

int
main(int argc, char **argv)
{
    const char *out_path = "bench/results/queue.json";
    const char *bin_dir = "build/release/bin";
    const char *endpoint = NULL, *workload = NULL;
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out_path = argv[++i];
        } else if (strcmp(argv[i], "--bin-dir") == 0 && i + 1 < argc) {
            bin_dir = argv[++i];
        } else if (strcmp(argv[i], "--producer") == 0 && i + 2 < argc) {
            workload = argv[++i];
            n = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc) {
            endpoint = argv[++i];
        } else {
            fprintf(stderr,
                    "usage: dv-bench-queue [--out FILE] [--bin-dir DIR]\n"
                    "       dv-bench-queue --producer w1|w2 N --endpoint "
                    "CLIENT_ENDPOINT\n");
            return 2;
        }
    }
    if (workload) {
        return endpoint ? producer(workload, n, endpoint) : 2;
    }
    double dv_w1[RUNS], fl_w1[RUNS], du_w1[RUNS];
    for (int r = 0; r < RUNS; r++) {
        if (run_drover(bin_dir, 2, false, &dv_w1[r], NULL, NULL, NULL) != 0 ||
            run_drover(bin_dir, 2, true, &du_w1[r], NULL, NULL, NULL) != 0) {
            return 1;
        }
        floor_run(2, &fl_w1[r], NULL);
    }
    qsort(dv_w1, RUNS, sizeof(double), dv_bench_cmp_double);
    qsort(du_w1, RUNS, sizeof(double), dv_bench_cmp_double);
    qsort(fl_w1, RUNS, sizeof(double), dv_bench_cmp_double);
    static double dv_lat[W2_TRIPS], fl_lat[W2_TRIPS];
    if (run_drover(bin_dir, 1, false, NULL, dv_lat, NULL, NULL) != 0) {
        return 1;
    }
    deep_t deep = {0};
    if (run_drover(bin_dir, 2, true, NULL, NULL, &deep, NULL) != 0) {
        return 1;
    }
    queues_t qs = {0};
    if (run_drover(bin_dir, 2, false, NULL, NULL, NULL, &qs) != 0) {
        return 1;
    }
    double train_queue = 0, train_local = 0;
    if (run_train(bin_dir, &train_queue, &train_local) != 0) {
        return 1;
    }
    double plain_tcp[RUNS], curve_tcp[RUNS];
    for (int r = 0; r < RUNS; r++) {
        if (run_curve(bin_dir, false, &plain_tcp[r]) != 0 ||
            run_curve(bin_dir, true, &curve_tcp[r]) != 0) {
            return 1;
        }
    }
    qsort(plain_tcp, RUNS, sizeof(double), dv_bench_cmp_double);
    qsort(curve_tcp, RUNS, sizeof(double), dv_bench_cmp_double);
    double deep_w1 = deep.w1[RUNS / 2];
    floor_run(1, NULL, fl_lat);
    qsort(dv_lat, W2_TRIPS, sizeof(double), dv_bench_cmp_double);
    qsort(fl_lat, W2_TRIPS, sizeof(double), dv_bench_cmp_double);
    double d50 = dv_lat[W2_TRIPS / 2], d99 = dv_lat[W2_TRIPS * 99 / 100];
    double f50 = fl_lat[W2_TRIPS / 2], f99 = fl_lat[W2_TRIPS * 99 / 100];
    printf("W1 %d echo jobs, 1 async producer, 2 workers (median of %d):\n",
           W1_JOBS, RUNS);
    printf("  drover %8.0f jobs/s   raw zmq relay %8.0f jobs/s   drover/floor "
           "%.2f\n",
           dv_w1[RUNS / 2], fl_w1[RUNS / 2], dv_w1[RUNS / 2] / fl_w1[RUNS / 2]);
    printf("  drover durable (--data: LMDB, group commit, fsync) %8.0f jobs/s "
           "(%.2f of in-memory)\n",
           du_w1[RUNS / 2], du_w1[RUNS / 2] / dv_w1[RUNS / 2]);
    printf("deep: %d jobs of %d bytes waiting in another queue (acknowledged "
           "in %.1f s):\n",
           BACKLOG, PAYLOAD, deep.preload_s);
    printf("  broker RSS %.0f MB (peak %.0f MB); durable W1 %8.0f jobs/s "
           "(%.2f of the empty-queue figure)\n",
           deep.rss_after_kb / 1024.0, deep.hwm_kb / 1024.0, deep_w1,
           deep_w1 / du_w1[RUNS / 2]);
    printf("queues: W1 in one queue %8.0f jobs/s; over %d queues in turn "
           "%8.0f (%.2f); in one of them %8.0f (%.2f)\n",
           qs.one, QUEUES, qs.spread, qs.spread / qs.one, qs.one_of_many,
           qs.one_of_many / qs.one);
    printf("train: digits MLP 64-128-10, %s epochs over %d rows (median of "
           "%d):\n  through the queue %8.0f samples/s   in-process %8.0f "
           "samples/s   queue/in-process %.2f\n",
           TRAIN_EPOCHS, TRAIN_ROWS, RUNS, train_queue, train_local,
           train_queue / train_local);
    printf("curve: W1 over tcp 127.0.0.1 (median of %d):\n  plain %8.0f "
           "jobs/s   CURVE (encrypted, authenticated) %8.0f jobs/s   "
           "curve/plain %.2f\n",
           RUNS, plain_tcp[RUNS / 2], curve_tcp[RUNS / 2],
           curve_tcp[RUNS / 2] / plain_tcp[RUNS / 2]);
    printf("W2 %d sequential round trips, 1 worker:\n", W2_TRIPS);
    printf("  drover p50 %6.0f us p99 %6.0f us   raw zmq relay p50 %6.0f us "
           "p99 %6.0f us\n",
           d50, d99, f50, f99);
    FILE *f = fopen(out_path, "w");
    if (!f) {
        perror(out_path);
        return 1;
    }
    fprintf(
        f,
        "{\n  \"bench\": \"queue\",\n  \"transport\": \"ipc\",\n"
        "  \"w1\": {\"jobs\": %d, \"payload_bytes\": %d, \"workers\": 2, "
        "\"drover_jobs_per_s\": %.0f, \"floor_jobs_per_s\": %.0f, "
        "\"drover_over_floor\": %.3f, \"drover_durable_jobs_per_s\": "
        "%.0f},\n"
        "  \"train\": {\"model\": \"digits mlp 64-128-10\", \"epochs\": %s, "
        "\"rows\": %d, \"queue_samples_per_s\": %.0f, "
        "\"local_samples_per_s\": %.0f, \"queue_over_local\": %.3f},\n"
        "  \"deep\": {\"backlog_jobs\": %d, \"payload_bytes\": %d, "
        "\"preload_s\": %.2f, \"broker_rss_mb\": %.1f, "
        "\"broker_peak_rss_mb\": %.1f, \"durable_w1_jobs_per_s\": %.0f, "
        "\"over_empty_queue\": %.3f},\n"
        "  \"queues\": {\"queues\": %d, \"one_jobs_per_s\": %.0f, "
        "\"spread_jobs_per_s\": %.0f, \"spread_over_one\": %.3f, "
        "\"one_of_many_jobs_per_s\": %.0f, \"one_of_many_over_one\": "
        "%.3f},\n"
        "  \"curve\": {\"transport\": \"tcp\", \"jobs\": %d, "
        "\"plain_jobs_per_s\": %.0f, \"curve_jobs_per_s\": %.0f, "
        "\"curve_over_plain\": %.3f},\n"
        "  \"w2\": {\"trips\": %d, \"drover_p50_us\": %.0f, "
        "\"drover_p99_us\": %.0f, \"floor_p50_us\": %.0f, "
        "\"floor_p99_us\": %.0f}\n}\n",
        W1_JOBS, PAYLOAD, dv_w1[RUNS / 2], fl_w1[RUNS / 2],
        dv_w1[RUNS / 2] / fl_w1[RUNS / 2], du_w1[RUNS / 2], TRAIN_EPOCHS,
        TRAIN_ROWS, train_queue, train_local, train_queue / train_local,
        BACKLOG, PAYLOAD, deep.preload_s, deep.rss_after_kb / 1024.0,
        deep.hwm_kb / 1024.0, deep_w1, deep_w1 / du_w1[RUNS / 2], QUEUES,
        qs.one, qs.spread, qs.spread / qs.one, qs.one_of_many,
        qs.one_of_many / qs.one, W1_JOBS, plain_tcp[RUNS / 2],
        curve_tcp[RUNS / 2], curve_tcp[RUNS / 2] / plain_tcp[RUNS / 2],
        W2_TRIPS, d50, d99, f50, f99);
    fclose(f);
    printf("wrote %s\n", out_path);
    return 0;
}
