// dv-bench-serve — serving figures: infer jobs through the queue beside the
// same kernel in-process, in the same run (never run by tests; `make bench`
// runs it; issue 14 item 1).
//
// Cluster: drover-broker and --workers W drover-workers (--concurrency C
// each; default 1 broker + 2 workers x 1, the measured shape on the 2-core
// development machine) from --bin-dir, on ipc:// in a temporary folder, each
// worker with --blas-threads = this host's share (dv_blas_threads_share(W x
// C), as `drover up` gives). Two models, made here with the model library
// and pushed with drover_model_push_bytes: MLP 256-512-256-10 (float32,
// trained for one epoch on generated data) and iris softmax (trained on
// data/iris_train.csv).
//
// Grid: producers P in {1, 8, 32}, each its own libdrover connection on its
// own thread submitting asynchronously and keeping R requests in flight
// (R = 256 / P, at least 1, fewer when P x R x B would pass 65,536 rows, or
// --in-flight N in all); rows per request B in {1, 8, 32, 256, 4096}. Each
// cell warms up (0.25 s at least, and until as many results came back as
// requests are in flight: the pipeline is full), then counts the results
// that arrive in the next --seconds (default 1.5): rows/s, requests/s,
// p50/p99/p99.9 latency from submit to result (us), the average batch the
// job ran in (the result's batch_rows when libdrover reports it; "-" when
// not), and "kept": rows/s over the in-process kernel's.
//
// The in-process kernel: dv_model_predict on the same B rows of the same
// model, with the BLAS threads a worker's compute thread has, on as many
// threads at once as the cluster computes jobs (W x C): what the same cores
// do with the same kernel and no queue. It is measured for 0.5 s right
// after each cell (and, for a 1-row cell, at 256 rows too: the 1-row
// goal's yardstick), with the cluster idle: on a shared host the speed
// drifts by a fifth within minutes (one kernel figure taken before all the
// cells moved between 301k and 378k rows/s from run to run), so each ratio
// takes its kernel from its own minute. The table measured once before the
// cells, with the 1-thread figures, is in the JSON's "kernel".
//
// Goals (issue 14), printed with the measured ratio: 256- and 4096-row
// requests >= 0.8 x the kernel at the same batch; 1-row requests with >= 256
// in flight over >= 8 producers >= 0.5 x the kernel at batch 256 with p99 <=
// 10 ms; 1-row requests one at a time: p50 <= 1.5 x an echo round trip's
// p50 (W2 style, 100 bytes, measured here in the same run: five rounds of
// echo then each model, the median round's ratio).
//
// The floor: the same requests through a raw ZeroMQ relay process before
// relay worker processes running the same kernel (below), 8 producers,
// every request size: what the transport alone allows on this machine.
//
// Writes JSON (--out, default bench/results/serve.json) with the machine's
// load average before and after; binds only ipc:// in its folder; stops the
// processes it started, by PID.
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <zmq.h>

#include "drover.h"
#include "dv_bench.h"
#include "dv_csv.h"
#include "dv_mem.h"
#include "dv_model.h"
#include "dv_modelfile.h"
#include "dv_tensor.h"
#include "dv_train.h"

// The batch each job ran in: drover_result_batch (libdrover, protocol 1.3).

#define N_ROWS       4096  // input rows per model (the largest request)
#define MLP_FEATURES 256   // MLP 256-512-256-10
#define MLP_CLASSES  10    //
#define MAX_ROWS_OUT 65536 // rows in flight per cell at most
#define IN_FLIGHT    256   // requests in flight per cell (all producers)
#define WARM_S       0.25  // per cell, before counting
#define KERNEL_S     0.5   // per in-process figure
#define ECHO_BYTES   100   // W2 style
#define WAIT_MS      30000 // a cell's drain, a connect
#define MAX_WORKERS  16
#define N_BATCHES    5
#define N_PRODUCERS  3
#define N_MODELS     2
// A relay worker's credits: drover-worker's default capacity
// (--concurrency 1 + --prefetch 4).
#define RELAY_CREDITS 5
// One-at-a-time rounds (odd: there is a median round).
#define IDLE_ROUNDS 5
_Static_assert(IDLE_ROUNDS == 5, "serve.json writes five rounds");

#define GOAL_BULK      0.8 // 256 / 4096 rows: kept >= this
#define GOAL_SMALL     0.5 // 1 row, >= 256 in flight: x kernel at 256
#define GOAL_SMALL_P99 1e4 // us
#define GOAL_IDLE      1.5 // 1 row one at a time: p50 / echo p50

// The 1-row goal asks for >= 256 requests in flight: the MLP's 1-row
// submit_many cell at 8 producers also runs with these many in flight (all
// producers), and the goal takes the highest throughput whose p99 is within
// GOAL_SMALL_P99 — throughput under a latency bound, as serving benchmarks
// report it (a load sweep), the 256 figure printed beside it.
static const int s_sweep[] = {512, 1024};
#define N_SWEEP (sizeof s_sweep / sizeof s_sweep[0])

static const size_t s_batches[N_BATCHES] = {1, 8, 32, 256, 4096};
static const int s_producers[N_PRODUCERS] = {1, 8, 32};

typedef struct {
    const char *label;          // "mlp 256-512-256-10", "iris softmax"
    char ref[160];              // "serve-mlp@1": what jobs name
    dv_model_t *model;          // in-process copy
    dv_tensor_t *x;             // N_ROWS x features: every request's rows
    double kernel[N_BATCHES];   // rows/s, W x C threads at once
    double kernel_1[N_BATCHES]; // rows/s, one thread
} model_t;

// One cell's settings and what it measured.
typedef struct {
    const char *endpoint; // broker's client endpoint
    const model_t *m;     // NULL: echo jobs
    size_t rows;          // per request
    int producers;        // threads, one connection each
    int in_flight;        // requests per producer
    bool many;            // free slots refilled with one submit_many
    bool relay;           // the floor: raw frames through a ZeroMQ relay
    double seconds;       // counted
    // results
    double rows_s, req_s, p50, p99, p999; // rows/s, requests/s, latency us
    double batch_rows;                    // average; < 0: not reported
    uint64_t counted, failed;             // results in the window; failures
    char error[320];                      // the first failure's reason
    // CPU time per result over the whole cell (warm-up included), us: the
    // broker, the workers together, this process (the producers). Robust
    // where rates are not: another load on the host slows a cell, but
    // hardly changes what each request costs.
    double cpu_broker_us, cpu_workers_us, cpu_producers_us;
    // The in-process kernel (W x C threads) measured right after this cell,
    // on its rows and, for 1-row cells, on 256 (the 1-row goal's yardstick):
    // the host's speed drifts by a fifth within minutes, so a ratio takes
    // its kernel from the same minute as its cell. 0: not measured.
    double kernel, kernel_256;
} cell_t;

// The processes whose CPU time the cells account (set once they run).
static pid_t s_broker_pid;
// Threads the in-process kernel runs on: as many as the cluster computes
// jobs at once (workers x concurrency).
static int s_kernel_threads = 1;
static pid_t s_worker_pids[MAX_WORKERS];
static int s_n_workers;

// utime + stime of pid in seconds (0 when it cannot be read).
static double
proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return 0;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); // comm may hold spaces
    unsigned long ut = 0, st = 0;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st) != 2) {
        return 0;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

// CPU seconds so far: the broker, the workers, this process.
static void
cpu_now(double out[3])
{
    out[0] = proc_cpu_s(s_broker_pid);
    out[1] = 0;
    for (int i = 0; i < s_n_workers; i++) {
        out[1] += proc_cpu_s(s_worker_pids[i]);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    out[2] = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
             (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

// When a cell counts, shared by its producers (under mu): from the later of
// WARM_S after the start and the moment as many results have come back as
// requests are in flight (the pipeline is full: every counted request
// waited behind a full queue, as in a steady state), for `seconds`.
typedef struct {
    pthread_mutex_t mu; //
    double start_s;     // producers connected (monotonic s)
    double from_s;      // counting starts; INFINITY until known
    double to_s;        // counting ends; INFINITY until known
    uint64_t received;  // results so far, all producers
    uint64_t need;      // results before counting: requests in flight
    double seconds;     // counted
} window_t;

// A result came back at now: true when it is counted.
static bool
window_note(window_t *w, double now)
{
    pthread_mutex_lock(&w->mu);
    w->received++;
    if (isinf(w->from_s) && w->received >= w->need &&
        now >= w->start_s + WARM_S) {
        w->from_s = now;
        w->to_s = now + w->seconds;
    }
    bool counted = now > w->from_s && now <= w->to_s;
    pthread_mutex_unlock(&w->mu);
    return counted;
}

// True once the window has ended (it starts anyway WAIT_MS after the
// start, so a stalled cell ends and shows what it got).
static bool
window_over(window_t *w, double now)
{
    pthread_mutex_lock(&w->mu);
    if (isinf(w->from_s) && now > w->start_s + WAIT_MS / 1000.0) {
        w->from_s = now;
        w->to_s = now + w->seconds;
    }
    bool over = now > w->to_s;
    pthread_mutex_unlock(&w->mu);
    return over;
}

// A producer thread: its connection, its requests in flight, its samples.
typedef struct producer producer_t;
typedef struct {
    producer_t *p; // owner
    double t0;     // submitted (monotonic s)
    bool busy;     // awaiting its result
} slot_t;

struct producer {
    cell_t *cell;          // shared settings (read-only while running)
    drover_t *d;           // own connection
    pthread_barrier_t *go; // connected -> start together
    window_t *window;      // when results count (shared)
    slot_t *slots;         // in_flight of them
    double *lat;           // latencies of counted results (us)
    size_t n_lat, cap_lat; //
    uint64_t failed;       // failed results, counted or not
    uint64_t batch_sum;    // batch_rows summed over counted results
    uint64_t batch_n;      //   how many reported one
    char error[320];       // first failure
    int connect_rc;        // drover_connect's
};

// A counted result's latency (us).
static void
note_latency(producer_t *p, double us)
{
    if (p->n_lat == p->cap_lat) {
        p->cap_lat = p->cap_lat ? 2 * p->cap_lat : 4096;
        p->lat = dv_realloc(p->lat, p->cap_lat * sizeof(double));
    }
    p->lat[p->n_lat++] = us;
}

static void
on_result(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    slot_t *s = arg;
    producer_t *p = s->p;
    double now = dv_bench_now_s();
    s->busy = false;
    size_t rows = 0, cols = 0;
    bool ok = drover_result_ok(r);
    if (ok && p->cell->m) {
        ok = drover_result_output(r, &rows, &cols) && rows == p->cell->rows;
    }
    if (!ok) {
        if (!p->failed++) {
            const char *text = "";
            int code = drover_result_error(r, &text);
            snprintf(p->error, sizeof p->error, "%s (%s)",
                     code ? text : "wrong output shape", drover_err_name(code));
        }
        return;
    }
    if (!window_note(p->window, now)) {
        return;
    }
    note_latency(p, (now - s->t0) * 1e6);
    uint32_t b_rows = 0, b_jobs = 0;
    size_t batch = drover_result_batch(r, &b_rows, &b_jobs) ? b_rows : 0;
    if (batch) {
        p->batch_sum += batch;
        p->batch_n++;
    }
}

static drover_job_t
make_job(const cell_t *c)
{
    static const char echo[ECHO_BYTES] = {0};
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = "serve";
    if (c->m) {
        job.kind = "infer";
        job.model = c->m->ref;
        job.input = c->m->x->data;
        job.rows = c->rows;
        job.cols = c->m->x->cols;
    } else {
        job.payload = echo;
        job.payload_len = sizeof echo;
    }
    job.durability = "none";
    return job;
}

static int
submit(producer_t *p, slot_t *s)
{
    drover_job_t job = make_job(p->cell);
    s->busy = true;
    s->t0 = dv_bench_now_s();
    drover_error_t err;
    if (drover_submit_async(p->d, &job, on_result, s, &err) != 0) {
        s->busy = false;
        if (!p->failed++) {
            snprintf(p->error, sizeof p->error, "submit: %s", err.text);
        }
        return -1;
    }
    return 0;
}

static void *
producer_main(void *arg)
{
    producer_t *p = arg;
    drover_error_t err;
    p->connect_rc = drover_connect(&p->d, p->cell->endpoint, WAIT_MS, &err);
    pthread_barrier_wait(p->go); // connected (or not): main sets the start
    pthread_barrier_wait(p->go); // start set
    if (p->connect_rc != 0) {
        snprintf(p->error, sizeof p->error, "connect: %s", err.text);
        p->failed++;
        return NULL;
    }
    int n = p->cell->in_flight;
    drover_job_t *jobs = dv_calloc((size_t)n, sizeof *jobs);
    void **args = dv_calloc((size_t)n, sizeof *args);
    while (!window_over(p->window, dv_bench_now_s())) {
        size_t k = 0;
        for (int i = 0; i < n; i++) {
            slot_t *s = &p->slots[i];
            if (!s->busy && p->cell->many) { // gathered: one message
                s->busy = true;
                s->t0 = dv_bench_now_s();
                jobs[k] = make_job(p->cell);
                args[k++] = s;
            } else if (!s->busy && submit(p, s) != 0) {
                free(jobs);
                free(args);
                return NULL;
            }
        }
        if (k && drover_submit_many_async(p->d, jobs, k, on_result, args,
                                          &err) != 0) {
            snprintf(p->error, sizeof p->error, "submit_many: %s", err.text);
            p->failed++;
            break;
        }
        if (drover_poll(p->d, 100, &err) < 0) {
            snprintf(p->error, sizeof p->error, "poll: %s", err.text);
            p->failed++;
            return NULL;
        }
    }
    free(jobs);
    free(args);
    // Drain: what is in flight comes back (not counted) before the next
    // cell starts, so cells do not overlap.
    double end = dv_bench_now_s() + WAIT_MS / 1000.0;
    while (drover_pending(p->d) > 0 && dv_bench_now_s() < end) {
        drover_poll(p->d, 100, &err);
    }
    return NULL;
}

// ------------------------------------------------------------ the floor
//
// What any ZeroMQ queue pays on this machine for the same requests: a raw
// relay process (dv_bench_relay_run: ROUTER/ROUTER, RELAY_CREDITS credits
// per worker as a drover-worker has by default, no validation, no store, no
// batching) in front of --workers relay worker processes that run the same
// kernel (dv_model_predict, same BLAS threads, one request at a time) on
// each message's rows where they lie in the ZeroMQ frame. Producers send
// [t0][rows as raw float32] and get [t0][outputs] back. Drover / relay is
// what Drover itself costs; relay / kernel is what the transport allows.

// Send one request: its submit time, then rows x cols floats.
static int
relay_send(void *s, const cell_t *c)
{
    double t0 = dv_bench_now_s();
    size_t bytes = c->rows * c->m->x->cols * sizeof(float);
    if (zmq_send(s, &t0, sizeof t0, ZMQ_SNDMORE) < 0 ||
        zmq_send(s, c->m->x->data, bytes, 0) < 0) {
        return -1;
    }
    return 0;
}

static void *
relay_producer_main(void *arg)
{
    producer_t *p = arg;
    const cell_t *c = p->cell;
    void *ctx = zmq_ctx_new();
    void *s = dv_bench_dealer(ctx, c->endpoint);
    pthread_barrier_wait(p->go);
    pthread_barrier_wait(p->go);
    size_t want = c->rows * dv_model_n_outputs(c->m->model) * sizeof(float);
    int out = 0;
    for (int i = 0; i < c->in_flight && relay_send(s, c) == 0; i++) {
        out++;
    }
    double end = INFINITY; // the drain's deadline, once the window is over
    while (out > 0 && dv_bench_now_s() < end) {
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) <= 0) {
            if (isinf(end) && window_over(p->window, dv_bench_now_s())) {
                end = dv_bench_now_s() + WAIT_MS / 1000.0;
            }
            continue;
        }
        double t0 = 0;
        zmq_msg_t body;
        zmq_msg_init(&body);
        int more = 0;
        size_t more_len = sizeof more;
        if (zmq_recv(s, &t0, sizeof t0, ZMQ_DONTWAIT) != sizeof t0 ||
            zmq_getsockopt(s, ZMQ_RCVMORE, &more, &more_len) != 0 || !more ||
            zmq_msg_recv(&body, s, 0) < 0) {
            zmq_msg_close(&body);
            continue;
        }
        out--;
        double now = dv_bench_now_s();
        if (zmq_msg_size(&body) != want) {
            if (!p->failed++) {
                snprintf(p->error, sizeof p->error,
                         "relay: %zu bytes of output, not %zu",
                         zmq_msg_size(&body), want);
            }
        } else if (window_note(p->window, now)) {
            note_latency(p, (now - t0) * 1e6);
        }
        zmq_msg_close(&body);
        if (!window_over(p->window, now)) {
            out += relay_send(s, c) == 0;
        } else if (isinf(end)) {
            end = now + WAIT_MS / 1000.0;
        }
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    return NULL;
}

// `dv-bench-serve --relay-broker FRONT BACK`: the relay, with credits as
// Drover's, until SIGTERM.
static int
relay_broker_main(const char *front, const char *back)
{
    void *ctx = zmq_ctx_new();
    static volatile int never;
    return dv_bench_relay_run(ctx, front, back, RELAY_CREDITS, &never, true)
               ? 1
               : 0;
}

// `dv-bench-serve --relay-worker BACK MODEL BLAS`: the kernel behind the
// relay, one request at a time, until SIGTERM.
static int
relay_worker_main(const char *back, const char *model_path, int blas)
{
    dv_blas_set_threads(blas);
    dv_model_t *model = NULL;
    dv_error_t err = {0};
    if (dv_model_load(&model, model_path, &err) != 0) {
        fprintf(stderr, "dv-bench-serve: relay worker: %s\n", err.text);
        return 1;
    }
    void *ctx = zmq_ctx_new();
    void *s = dv_bench_dealer(ctx, back);
    for (int i = 0; i < RELAY_CREDITS; i++) {
        zmq_send(s, "READY", 5, 0); // one credit each
    }
    printf("READY relay worker\n");
    fflush(stdout);
    size_t width = model->n_features * sizeof(float);
    for (;;) {
        zmq_msg_t f[3];
        int n = 0;
        do {
            zmq_msg_init(&f[n]);
            if (zmq_msg_recv(&f[n], s, 0) < 0) {
                return 1;
            }
        } while (zmq_msg_more(&f[n++]) && n < 3);
        // [client][t0][rows]; the rows are used where they lie when aligned
        // (a ZeroMQ frame of this size is its own allocation).
        dv_tensor_t x = {0};
        float *copy = NULL;
        if (n == 3 && zmq_msg_size(&f[2]) % width == 0) {
            x.rows = zmq_msg_size(&f[2]) / width;
            x.cols = model->n_features;
            x.data = zmq_msg_data(&f[2]);
            if ((uintptr_t)x.data % sizeof(float)) {
                copy = dv_malloc(zmq_msg_size(&f[2]));
                memcpy(copy, x.data, zmq_msg_size(&f[2]));
                x.data = copy;
            }
        }
        dv_tensor_t *y = NULL;
        if (x.rows && dv_model_predict(model, &x, &y, &err) == 0) {
            zmq_msg_send(&f[0], s, ZMQ_SNDMORE);
            zmq_msg_send(&f[1], s, ZMQ_SNDMORE);
            zmq_send(s, y->data, dv_tensor_size(y) * sizeof(float), 0);
        }
        dv_tensor_destroy(&y);
        free(copy);
        for (int i = 0; i < n; i++) {
            zmq_msg_close(&f[i]); // no-ops for the frames sent
        }
    }
}

// Run one cell: producers connect, start together, warm up, count.
static int
run_cell(cell_t *c)
{
    int n = c->producers;
    producer_t *ps = dv_calloc((size_t)n, sizeof *ps);
    pthread_t *th = dv_calloc((size_t)n, sizeof *th);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)n + 1);
    window_t window = {.from_s = INFINITY,
                       .to_s = INFINITY,
                       .need = (uint64_t)n * (uint64_t)c->in_flight,
                       .seconds = c->seconds};
    pthread_mutex_init(&window.mu, NULL);
    for (int i = 0; i < n; i++) {
        ps[i].cell = c;
        ps[i].go = &go;
        ps[i].window = &window;
        ps[i].slots = dv_calloc((size_t)c->in_flight, sizeof(slot_t));
        for (int j = 0; j < c->in_flight; j++) {
            ps[i].slots[j].p = &ps[i];
        }
        pthread_create(&th[i], NULL,
                       c->relay ? relay_producer_main : producer_main, &ps[i]);
    }
    pthread_barrier_wait(&go);
    double cpu0[3], cpu1[3];
    cpu_now(cpu0);
    window.start_s = dv_bench_now_s();
    pthread_barrier_wait(&go);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        total += ps[i].n_lat;
    }
    cpu_now(cpu1);
    double per = window.received ? 1e6 / (double)window.received : 0;
    c->cpu_broker_us = (cpu1[0] - cpu0[0]) * per;
    c->cpu_workers_us = (cpu1[1] - cpu0[1]) * per;
    c->cpu_producers_us = (cpu1[2] - cpu0[2]) * per;
    double *lat = dv_malloc((total ? total : 1) * sizeof(double));
    uint64_t batch_sum = 0, batch_n = 0;
    size_t k = 0;
    c->failed = 0;
    c->error[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (ps[i].n_lat) { // lat is NULL when nothing counted
            memcpy(lat + k, ps[i].lat, ps[i].n_lat * sizeof(double));
            k += ps[i].n_lat;
        }
        batch_sum += ps[i].batch_sum;
        batch_n += ps[i].batch_n;
        if (ps[i].failed && !c->failed) {
            snprintf(c->error, sizeof c->error, "%s", ps[i].error);
        }
        c->failed += ps[i].failed;
        drover_destroy(&ps[i].d);
        free(ps[i].lat);
        free(ps[i].slots);
    }
    qsort(lat, total, sizeof(double), dv_bench_cmp_double);
    c->counted = total;
    c->req_s = (double)total / c->seconds;
    c->rows_s = c->req_s * (double)c->rows;
    c->p50 = dv_bench_pct(lat, total, 0.50);
    c->p99 = dv_bench_pct(lat, total, 0.99);
    c->p999 = dv_bench_pct(lat, total, 0.999);
    c->batch_rows = batch_n ? (double)batch_sum / (double)batch_n : -1;
    free(lat);
    free(ps);
    free(th);
    pthread_barrier_destroy(&go);
    pthread_mutex_destroy(&window.mu);
    return c->failed ? -1 : 0;
}

// ------------------------------------------------------ in-process kernel

typedef struct {
    const model_t *m;
    size_t rows;
    pthread_barrier_t *go;
    double rows_s; // result
} kernel_t;

static void *
kernel_main(void *arg)
{
    kernel_t *k = arg;
    dv_tensor_t *x = dv_tensor_new(k->rows, k->m->x->cols);
    memcpy(x->data, k->m->x->data, k->rows * x->cols * sizeof(float));
    dv_error_t err = {0};
    dv_tensor_t *out = NULL;
    dv_model_predict(k->m->model, x, &out, &err); // warm up
    dv_tensor_destroy(&out);
    pthread_barrier_wait(k->go);
    size_t rows = 0;
    double t0 = dv_bench_now_s(), t;
    do {
        if (dv_model_predict(k->m->model, x, &out, &err) != 0) {
            fprintf(stderr, "dv-bench-serve: predict: %s\n", err.text);
            exit(1);
        }
        dv_tensor_destroy(&out);
        rows += k->rows;
    } while ((t = dv_bench_now_s()) - t0 < KERNEL_S);
    k->rows_s = (double)rows / (t - t0);
    dv_tensor_destroy(&x);
    return NULL;
}

// Rows/s of n threads running dv_model_predict on `rows` rows at once.
static double
kernel_rows_s(const model_t *m, size_t rows, int n)
{
    kernel_t k[MAX_WORKERS * 64];
    pthread_t th[MAX_WORKERS * 64];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)n);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        k[i] = (kernel_t){.m = m, .rows = rows, .go = &go};
        pthread_create(&th[i], NULL, kernel_main, &k[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        sum += k[i].rows_s;
    }
    pthread_barrier_destroy(&go);
    return sum;
}

// run_cell, then the kernel beside it (see cell_t.kernel).
static int
run_cell_beside(cell_t *c)
{
    int rc = run_cell(c);
    if (c->m) {
        c->kernel = kernel_rows_s(c->m, c->rows, s_kernel_threads);
        c->kernel_256 =
            c->rows == 1 ? kernel_rows_s(c->m, 256, s_kernel_threads) : 0;
    }
    return rc;
}

// ------------------------------------------------------------- models

static void
train_or_die(dv_model_t **out, const dv_dataset_t *ds, const dv_hyper_t *h)
{
    dv_train_opts_t opts = {.task = DV_TASK_CLASSIFICATION};
    dv_error_t err = {0};
    if (dv_train(out, ds, h, &opts, &err) != 0) {
        fprintf(stderr, "dv-bench-serve: training failed: %s\n", err.text);
        exit(1);
    }
}

// MLP 256-512-256-10, one epoch on N_ROWS generated rows (bench/ml's
// data). Its rows are the requests' rows.
static void
make_mlp(model_t *m)
{
    dv_dataset_t *ds =
        dv_bench_teacher_data(N_ROWS, MLP_FEATURES, MLP_CLASSES, 2026);
    dv_hyper_t h;
    dv_hyper_default(&h, DV_ALGO_MLP);
    h.n_hidden = 2;
    h.hidden[0] = 512;
    h.hidden[1] = 256;
    h.batch = 256;
    h.epochs = 1;
    h.patience = 0;
    train_or_die(&m->model, ds, &h);
    m->label = "mlp 256-512-256-10";
    m->x = dv_tensor_dup(ds->x);
    dv_dataset_destroy(&ds);
}

// Iris softmax on data_dir/iris_train.csv; requests cycle its rows.
static void
make_iris(model_t *m, const char *data_dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/iris_train.csv", data_dir);
    dv_dataset_t *ds = NULL;
    dv_error_t err = {0};
    if (dv_csv_load(&ds, path, NULL, &err) != 0) {
        fprintf(stderr, "dv-bench-serve: %s\n", err.text);
        exit(1);
    }
    dv_hyper_t h;
    dv_hyper_default(&h, DV_ALGO_SOFTMAX);
    train_or_die(&m->model, ds, &h);
    m->label = "iris softmax";
    m->x = dv_tensor_new(N_ROWS, ds->n_features);
    for (size_t i = 0; i < N_ROWS; i++) {
        memcpy(m->x->data + i * ds->n_features,
               ds->x->data + (i % ds->n_rows) * ds->n_features,
               ds->n_features * sizeof(float));
    }
    dv_dataset_destroy(&ds);
}

static int
push(drover_t *d, model_t *m, const char *name)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    dv_error_t err = {0};
    drover_error_t derr;
    drover_model_t info;
    if (dv_model_encode(m->model, &buf, &len, &err) != 0) {
        fprintf(stderr, "dv-bench-serve: encode: %s\n", err.text);
        return -1;
    }
    int rc = drover_model_push_bytes(d, buf, len, name, &info, &derr);
    free(buf);
    if (rc != 0) {
        fprintf(stderr, "dv-bench-serve: push %s: %s\n", name, derr.text);
        return -1;
    }
    snprintf(m->ref, sizeof m->ref, "%s@%u", info.name, info.version);
    return 0;
}

// ------------------------------------------------------------- output

static void
print_cell(const cell_t *c)
{
    double kernel = c->kernel;
    char batch[32] = "-";
    if (c->batch_rows >= 0) {
        snprintf(batch, sizeof batch, "%.1f", c->batch_rows);
    }
    printf("%5zu %3d %5d %4s %10.0f %9.0f %8.0f %8.0f %8.0f %7s %10.0f "
           "%5.2f %6.1f %6.1f %6.1f%s\n",
           c->rows, c->producers, c->producers * c->in_flight,
           c->many ? "many" : "one", c->rows_s, c->req_s, c->p50, c->p99,
           c->p999, batch, kernel, kernel > 0 ? c->rows_s / kernel : 0,
           c->cpu_broker_us, c->cpu_workers_us, c->cpu_producers_us,
           c->failed ? "  FAILED" : "");
    if (c->kernel_256 > 0) {
        printf("%26s %.2f x the kernel at 256 rows (%.0f rows/s beside it)\n",
               "", c->rows_s / c->kernel_256, c->kernel_256);
    }
}

static void
json_cell(FILE *f, const cell_t *c, bool last)
{
    double kernel = c->kernel;
    char batch[32] = "null";
    if (c->batch_rows >= 0) {
        snprintf(batch, sizeof batch, "%.2f", c->batch_rows);
    }
    fprintf(f,
            "    {\"model\": \"%s\", \"through\": \"%s\", \"rows\": %zu, "
            "\"producers\": %d, "
            "\"in_flight\": %d, \"submit_many\": %s, \"rows_per_s\": %.0f, "
            "\"requests_per_s\": "
            "%.0f, \"p50_us\": %.0f, \"p99_us\": %.0f, \"p999_us\": %.0f, "
            "\"avg_batch_rows\": %s, \"kernel_rows_per_s\": %.0f, \"kept\": "
            "%.3f, \"kernel_256_rows_per_s\": %.0f, \"kept_of_256\": %.3f, "
            "\"results\": %" PRIu64 ", \"failed\": %" PRIu64
            ", \"cpu_us_per_request\": {\"broker\": %.2f, \"workers\": %.2f, "
            "\"producers\": %.2f}}%s\n",
            c->m ? c->m->label : "echo", c->relay ? "relay" : "drover", c->rows,
            c->producers, c->producers * c->in_flight,
            c->many ? "true" : "false", c->rows_s, c->req_s, c->p50, c->p99,
            c->p999, batch, kernel, kernel > 0 ? c->rows_s / kernel : 0,
            c->kernel_256, c->kernel_256 > 0 ? c->rows_s / c->kernel_256 : 0,
            c->counted, c->failed, c->cpu_broker_us, c->cpu_workers_us,
            c->cpu_producers_us, last ? "" : ",");
}

// Start the relay and its workers (this binary, --relay-*) in dir, run the
// MLP's relay cells with the settings of grid[b][1] (8 producers) for every
// request size (only_rows: that one), print them, stop the processes.
// Returns how many cells ran into out (indexed by request size), -1 when
// the relay did not start.
static int
run_relay(const char *dir,
          const model_t *m,
          cell_t grid[N_BATCHES][N_PRODUCERS],
          cell_t out[N_BATCHES],
          int workers,
          int blas,
          long only_rows)
{
    char self[4096], front[256], back[256], model_path[300], nblas[16],
        line[1100];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        return -1;
    }
    self[len] = '\0';
    snprintf(front, sizeof front, "ipc://%s/relay-f.sock", dir);
    snprintf(back, sizeof back, "ipc://%s/relay-b.sock", dir);
    snprintf(model_path, sizeof model_path, "%s/relay-mlp.dvm", dir);
    snprintf(nblas, sizeof nblas, "%d", blas);
    dv_error_t err = {0};
    if (dv_model_save(m->model, model_path, &err) != 0) {
        fprintf(stderr, "dv-bench-serve: %s\n", err.text);
        return -1;
    }
    const char *bargs[] = {"--relay-broker", front, back, NULL};
    dv_bench_proc_t broker = dv_bench_spawn(self, bargs);
    dv_bench_proc_t w[MAX_WORKERS] = {{0, -1}};
    int rc = dv_bench_ready(&broker, line, sizeof line);
    s_broker_pid = broker.pid;
    s_n_workers = 0;
    for (int i = 0; rc == 0 && i < workers; i++) {
        const char *wargs[] = {"--relay-worker", back, model_path, nblas, NULL};
        w[i] = dv_bench_spawn(self, wargs);
        s_worker_pids[s_n_workers++] = w[i].pid;
        rc = dv_bench_ready(&w[i], line, sizeof line);
    }
    int n = 0;
    if (rc == 0) {
        printf("\nthe floor: a raw ZeroMQ relay (no batching, no checks, no "
               "store) before %d worker process(es)\nrunning the same kernel "
               "(%s) on each message's rows (cpu r: the relay)\n",
               workers, m->label);
        printf("%5s %3s %5s %4s %10s %9s %8s %8s %8s %7s %10s %5s %20s\n",
               "rows", "P", "infl", "msg", "rows/s", "req/s", "p50 us",
               "p99 us", "p99.9us", "batch", "kernel r/s", "kept",
               "cpu us/req: r  w  p");
    }
    for (int b = 0; rc == 0 && b < N_BATCHES; b++) {
        if (only_rows && (long)s_batches[b] != only_rows) {
            continue;
        }
        out[b] = grid[b][1];
        out[b].endpoint = front;
        out[b].relay = true;
        out[b].many = false;
        int crc = run_cell_beside(&out[b]);
        print_cell(&out[b]);
        printf("%26s drover/relay %.2f (drover's cell of the same shape)\n", "",
               out[b].rows_s > 0 ? grid[b][1].rows_s / out[b].rows_s : 0);
        if (crc) {
            fprintf(stderr, "  relay: %s\n", out[b].error);
        }
        n++;
    }
    for (int i = 0; i < s_n_workers; i++) {
        dv_bench_reap(&w[i]);
    }
    dv_bench_reap(&broker);
    return rc == 0 ? n : -1;
}

static const char *
verdict(bool met)
{
    return met ? "met" : "NOT met";
}

static void
usage(FILE *f)
{
    fprintf(
        f,
        "usage: dv-bench-serve [--out FILE] [--bin-dir DIR] "
        "[--data DIR] [--workers N]\n"
        "                      [--concurrency N] [--blas-threads N] "
        "[--seconds S]\n"
        "                      [--in-flight N] [--max-delay-us N]\n"
        "                      [--only-many | --only-rows N | --only-idle]\n"
        "defaults: --out bench/results/serve.json --bin-dir "
        "build/release/bin --data data\n"
        "--workers 2 --concurrency 1 --seconds 1.5 (counted per "
        "cell); --blas-threads: each\nworker's and the in-process "
        "kernel's (default: cores / (workers x concurrency));\n"
        "--in-flight: requests in flight per cell, all producers "
        "(default 256, fewer for\nlarge requests); --only-many, --only-rows N, "
        "--only-idle: the submit_many cells\nalone, the cells of N-row "
        "requests alone (and their relay), or the one-at-a-time\ncells "
        "alone (for profiling; no goals, no JSON); --max-delay-us: both "
        "models'\nbatching wait (drover models config; default 0: never "
        "wait).\n");
}

int
main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--relay-broker") == 0) {
        return relay_broker_main(argv[2], argv[3]);
    }
    if (argc == 5 && strcmp(argv[1], "--relay-worker") == 0) {
        return relay_worker_main(argv[2], argv[3], atoi(argv[4]));
    }
    const char *out_path = "bench/results/serve.json";
    const char *bin_dir = "build/release/bin", *data_dir = "data";
    int workers = 2, conc = 1, blas = 0, in_flight = 0;
    long max_delay_us = 0; // the models' batching wait (0: the default)
    double seconds = 1.5;
    // Profiling: only the submit_many cells, or only the grid's cells of
    // one request size (no goals, no JSON: not every cell ran).
    bool only_many = false, only_idle = false;
    long only_rows = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--only-many") == 0) {
            only_many = true;
            continue;
        }
        if (strcmp(a, "--only-idle") == 0) {
            only_idle = true;
            continue;
        }
        if (v && strcmp(a, "--only-rows") == 0) {
            only_rows = atol(v);
        } else if (v && strcmp(a, "--out") == 0) {
            out_path = v;
        } else if (v && strcmp(a, "--bin-dir") == 0) {
            bin_dir = v;
        } else if (v && strcmp(a, "--data") == 0) {
            data_dir = v;
        } else if (v && strcmp(a, "--workers") == 0) {
            workers = atoi(v);
        } else if (v && strcmp(a, "--concurrency") == 0) {
            conc = atoi(v);
        } else if (v && strcmp(a, "--blas-threads") == 0) {
            blas = atoi(v);
        } else if (v && strcmp(a, "--in-flight") == 0) {
            in_flight = atoi(v);
        } else if (v && strcmp(a, "--seconds") == 0) {
            seconds = atof(v);
        } else if (v && strcmp(a, "--max-delay-us") == 0) {
            max_delay_us = atol(v);
        } else {
            usage(strcmp(a, "--help") == 0 ? stdout : stderr);
            return strcmp(a, "--help") == 0 ? 0 : 2;
        }
        i++;
    }
    if (workers < 1 || workers > MAX_WORKERS || conc < 1 || conc > 64 ||
        blas < 0 || blas > 1024 || in_flight < 0 || in_flight > 100000 ||
        !(seconds >= 0.1 && seconds <= 60)) {
        usage(stderr);
        return 2;
    }
    blas = blas ? blas : dv_blas_threads_share((unsigned)(workers * conc));
    s_kernel_threads = workers * conc;
    dv_blas_set_threads(blas);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    double load_before = dv_bench_load_1m();
    setvbuf(stdout, NULL, _IOLBF, 0); // lines in order with the daemons' logs
    printf("dv-bench-serve: %ld cores, load %.2f; 1 broker + %d worker(s) x "
           "concurrency %d, %d BLAS thread(s) per job; %.1f s per cell\n",
           cores, load_before, workers, conc, blas, seconds);
    if (load_before > 1.5) {
        printf("  (the machine is busy: these figures are distorted)\n");
    }

    model_t models[N_MODELS] = {{0}};
    make_mlp(&models[0]);
    make_iris(&models[1], data_dir);
    for (int mi = 0; mi < N_MODELS; mi++) {
        for (int b = 0; b < N_BATCHES; b++) {
            models[mi].kernel[b] =
                kernel_rows_s(&models[mi], s_batches[b], workers * conc);
            models[mi].kernel_1[b] =
                kernel_rows_s(&models[mi], s_batches[b], 1);
        }
    }

    char dir[] = "/tmp/dv-bench-serve-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char cep[256], wep[256], bbin[4200], wbin[4200], line[1100], nblas[16],
        nconc[16];
    snprintf(cep, sizeof cep, "ipc://%s/c.sock", dir);
    snprintf(wep, sizeof wep, "ipc://%s/w.sock", dir);
    snprintf(bbin, sizeof bbin, "%s/drover-broker", bin_dir);
    snprintf(wbin, sizeof wbin, "%s/drover-worker", bin_dir);
    snprintf(nblas, sizeof nblas, "%d", blas);
    snprintf(nconc, sizeof nconc, "%d", conc);
    const char *bargs[] = {"--client", cep, "--worker", wep, NULL};
    dv_bench_proc_t broker = dv_bench_spawn(bbin, bargs);
    s_broker_pid = broker.pid;
    dv_bench_proc_t w[MAX_WORKERS] = {{0, -1}};
    int rc = dv_bench_ready(&broker, line, sizeof line);
    for (int i = 0; rc == 0 && i < workers; i++) {
        const char *wargs[] = {
            "--broker", wep, "--concurrency", nconc, "--blas-threads",
            nblas,      NULL};
        w[i] = dv_bench_spawn(wbin, wargs);
        s_worker_pids[s_n_workers++] = w[i].pid;
        rc = dv_bench_ready(&w[i], line, sizeof line);
    }
    drover_t *d = NULL;
    drover_error_t derr;
    if (rc == 0 && drover_connect(&d, cep, WAIT_MS, &derr) != 0) {
        fprintf(stderr, "dv-bench-serve: connect: %s\n", derr.text);
        rc = -1;
    }
    if (rc == 0) {
        static const char *const names[N_MODELS] = {"serve-mlp", "serve-iris"};
        for (int mi = 0; rc == 0 && mi < N_MODELS; mi++) {
            rc = push(d, &models[mi], names[mi]);
        }
        for (int mi = 0; rc == 0 && max_delay_us > 0 && mi < N_MODELS; mi++) {
            const char *name = names[mi];
            rc = drover_model_config(d, name, -1, max_delay_us, NULL, NULL,
                                     &derr);
            if (rc != 0) {
                fprintf(stderr, "dv-bench-serve: config %s: %s\n", name,
                        derr.text);
            }
        }
    } else {
        fprintf(stderr, "dv-bench-serve: drover did not start (bin dir %s)\n",
                bin_dir);
    }
    drover_destroy(&d);

    // The grid, then the idle path: one request at a time, echo and infer.
    cell_t grid[N_MODELS][N_BATCHES][N_PRODUCERS];
    // Small requests again, each producer refilling its free slots with
    // one submit_many (a front end gathering its concurrent requests):
    // rows 1 and 8, producers 8 and 32.
    cell_t many[N_MODELS][2][2];
    cell_t sweep[N_SWEEP]; // the MLP's many[0][0][0] with more in flight
    cell_t echo = {.endpoint = cep,
                   .rows = 1,
                   .producers = 1,
                   .in_flight = 1,
                   .seconds = seconds};
    cell_t idle[N_MODELS];
    int failures = 0;
    for (int mi = 0; rc == 0 && mi < N_MODELS; mi++) {
        printf("\n%s (%s): through the queue beside the kernel in-process "
               "on %d thread(s)\n",
               models[mi].label, models[mi].ref, workers * conc);
        printf("%5s %3s %5s %4s %10s %9s %8s %8s %8s %7s %10s %5s %20s\n",
               "rows", "P", "infl", "msg", "rows/s", "req/s", "p50 us",
               "p99 us", "p99.9us", "batch", "kernel r/s", "kept",
               "cpu us/req: b  w  p");
        // Both workers fetch and load the model before anything counts.
        cell_t warm = {.endpoint = cep,
                       .m = &models[mi],
                       .rows = 1,
                       .producers = 1,
                       .in_flight = 16,
                       .seconds = WARM_S};
        failures += run_cell(&warm) != 0;
        for (int b = 0; b < N_BATCHES; b++) {
            for (int p = 0; p < N_PRODUCERS; p++) {
                int np = s_producers[p];
                int r = (in_flight ? in_flight : IN_FLIGHT) / np;
                r = r >= 1 ? r : 1;
                while (r > 1 &&
                       (size_t)(np * r) * s_batches[b] > (size_t)MAX_ROWS_OUT) {
                    r--;
                }
                cell_t *c = &grid[mi][b][p];
                *c = (cell_t){.endpoint = cep,
                              .m = &models[mi],
                              .rows = s_batches[b],
                              .producers = np,
                              .in_flight = r,
                              .seconds = seconds};
                if (only_many || only_idle ||
                    (only_rows && (long)s_batches[b] != only_rows)) {
                    continue; // settings only: the many cells copy them
                }
                failures += run_cell_beside(c) != 0;
                print_cell(c);
                if (c->failed) {
                    fprintf(stderr, "  %" PRIu64 " failed: %s\n", c->failed,
                            c->error);
                }
            }
        }
        for (int b = 0; b < 2 && !only_rows && !only_idle; b++) {
            for (int p = 0; p < 2; p++) {
                cell_t *c = &many[mi][b][p];
                *c = grid[mi][b][p + 1]; // same settings, fresh figures
                c->many = true;
                failures += run_cell_beside(c) != 0;
                print_cell(c);
                if (c->failed) {
                    fprintf(stderr, "  %" PRIu64 " failed: %s\n", c->failed,
                            c->error);
                }
            }
        }
        for (size_t k = 0; mi == 0 && !only_rows && !only_idle && k < N_SWEEP;
             k++) {
            cell_t *c = &sweep[k];
            *c = many[0][0][0]; // 1 row, 8 producers, submit_many
            c->in_flight = s_sweep[k] / c->producers;
            failures += run_cell_beside(c) != 0;
            print_cell(c);
            if (c->failed) {
                fprintf(stderr, "  %" PRIu64 " failed: %s\n", c->failed,
                        c->error);
            }
        }
    }
    bool partial = only_many || only_rows || only_idle;
    // One at a time: IDLE_ROUNDS rounds of echo then each model, half a
    // cell's seconds each; a round's ratio (model p50 / echo p50) compares
    // neighbours in time, and the goal takes the median round (the host's
    // noise moves an echo's p50 by a third between minutes).
    cell_t echo_r[IDLE_ROUNDS], idle_r[IDLE_ROUNDS][N_MODELS];
    double idle_ratio[IDLE_ROUNDS];
    int median_round = 0;
    if (rc == 0 && (!partial || only_idle)) {
        for (int k = 0; k < IDLE_ROUNDS; k++) {
            echo_r[k] = echo;
            echo_r[k].seconds = seconds / 2;
            failures += run_cell(&echo_r[k]) != 0;
            for (int mi = 0; mi < N_MODELS; mi++) {
                idle_r[k][mi] = (cell_t){.endpoint = cep,
                                         .m = &models[mi],
                                         .rows = 1,
                                         .producers = 1,
                                         .in_flight = 1,
                                         .seconds = seconds / 2};
                failures += run_cell(&idle_r[k][mi]) != 0;
            }
            idle_ratio[k] =
                echo_r[k].p50 > 0 ? idle_r[k][0].p50 / echo_r[k].p50 : INFINITY;
        }
        double sorted[IDLE_ROUNDS];
        memcpy(sorted, idle_ratio, sizeof sorted);
        qsort(sorted, IDLE_ROUNDS, sizeof(double), dv_bench_cmp_double);
        for (int k = 0; k < IDLE_ROUNDS; k++) {
            median_round =
                idle_ratio[k] == sorted[IDLE_ROUNDS / 2] ? k : median_round;
        }
        echo = echo_r[median_round];
        for (int mi = 0; mi < N_MODELS; mi++) {
            idle[mi] = idle_r[median_round][mi];
        }
        printf("\none at a time, %d rounds (echo, then each model):",
               IDLE_ROUNDS);
        for (int k = 0; k < IDLE_ROUNDS; k++) {
            printf(" %.2f", idle_ratio[k]);
        }
        printf(" x echo p50 (%s); the median round follows\n", models[0].label);
        for (int mi = -1; only_idle && mi < N_MODELS; mi++) {
            const cell_t *c = mi < 0 ? &echo : &idle[mi];
            printf("%s, one at a time: p50 %.0f us, p99 %.0f us\n",
                   mi < 0 ? "echo" : models[mi].label, c->p50, c->p99);
        }
    }
    for (int i = 0; i < workers; i++) {
        dv_bench_reap(&w[i]);
    }
    dv_bench_reap(&broker);
    // The floor for the MLP, 8 producers (the 1-row goal's shape) at every
    // request size, once Drover's processes have stopped.
    cell_t relay[N_BATCHES];
    int n_relay = 0;
    if (rc == 0 && !only_many && !only_idle) {
        n_relay = run_relay(dir, &models[0], grid[0], relay, workers, blas,
                            only_rows);
        if (n_relay < 0) {
            fprintf(stderr, "dv-bench-serve: the relay did not start\n");
            failures++;
        }
    }
    dv_bench_rmtree(dir);
    if (rc != 0) {
        return 1;
    }
    if (partial) {
        return failures ? 1 : 0; // no goals, no JSON: not every cell ran
    }
    double load_after = dv_bench_load_1m();

    // Goals (issue 14), for the MLP: the best producer count for bulk
    // requests, each >= 256-in-flight cell for 1-row ones.
    const model_t *mlp = &models[0];
    double bulk[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        int b = k == 0 ? 3 : 4; // 256, 4096
        for (int p = 0; p < N_PRODUCERS; p++) {
            double kept = grid[0][b][p].rows_s / grid[0][b][p].kernel;
            bulk[k] = kept > bulk[k] ? kept : bulk[k];
        }
    }
    printf("\nechoes one at a time (W2 style, %d bytes): p50 %.0f us, p99 "
           "%.0f us\n",
           ECHO_BYTES, echo.p50, echo.p99);
    for (int mi = 0; mi < N_MODELS; mi++) {
        printf("%s, 1 row one at a time: p50 %.0f us, p99 %.0f us (%.2f x "
               "echo p50; %.0f us over echo, the kernel alone on one row: "
               "%.0f us)\n",
               models[mi].label, idle[mi].p50, idle[mi].p99,
               idle[mi].p50 / echo.p50, idle[mi].p50 - echo.p50,
               models[mi].kernel_1[0] > 0 ? 1e6 / models[mi].kernel_1[0] : 0);
    }
    printf("\ngoals (issue 14, %s):\n", mlp->label);
    // What the raw relay keeps in the same shapes (8 producers): the
    // transport's own ceiling on this machine.
    double relay_kept[N_BATCHES] = {0};
    for (int b = 0; b < N_BATCHES && n_relay == N_BATCHES; b++) {
        relay_kept[b] = relay[b].rows_s / relay[b].kernel;
    }
    printf("  256-row requests: best kept %.2f (goal >= %.1f): %s; the raw "
           "relay keeps %.2f\n",
           bulk[0], GOAL_BULK, verdict(bulk[0] >= GOAL_BULK), relay_kept[3]);
    printf("  4096-row requests: best kept %.2f (goal >= %.1f): %s; the raw "
           "relay keeps %.2f\n",
           bulk[1], GOAL_BULK, verdict(bulk[1] >= GOAL_BULK), relay_kept[4]);
    bool small_met_k[2] = {true, true}; // one per message, submit_many
    for (int k = 0; k < 4; k++) {       // 8 and 32 producers, one / many
        const cell_t *c = k < 2 ? &grid[0][0][k + 1] : &many[0][0][k - 2];
        double x = c->rows_s / c->kernel_256;
        bool met = x >= GOAL_SMALL && c->p99 <= GOAL_SMALL_P99;
        small_met_k[k / 2] = small_met_k[k / 2] && met;
        printf("  1-row requests, %d in flight over %d producers, %s: %.2f "
               "x kernel at 256 (goal >= %.1f), p99 %.0f us (goal <= %.0f): "
               "%s\n",
               c->producers * c->in_flight, c->producers,
               c->many ? "submit_many" : "one per message", x, GOAL_SMALL,
               c->p99, GOAL_SMALL_P99, verdict(met));
    }
    // Throughput under the latency bound: the best >= 256-in-flight
    // submit_many cell (8 producers) whose p99 is within it.
    const cell_t *best = NULL;
    for (size_t k = 0; k <= N_SWEEP; k++) {
        const cell_t *c = k == 0 ? &many[0][0][0] : &sweep[k - 1];
        if (c->p99 <= GOAL_SMALL_P99 && (!best || c->rows_s > best->rows_s)) {
            best = c;
        }
    }
    double best_x = best ? best->rows_s / best->kernel_256 : 0;
    bool best_met = best_x >= GOAL_SMALL;
    printf("  1-row requests, submit_many over 8 producers, the most "
           "throughput with p99 <= %.0f us (256, ",
           GOAL_SMALL_P99);
    for (size_t k = 0; k < N_SWEEP; k++) {
        printf("%d%s", s_sweep[k], k + 1 < N_SWEEP ? ", " : "");
    }
    if (best) {
        printf(" in flight): %.2f x kernel at 256 with %d in flight, p99 %.0f "
               "us (goal >= %.1f): %s\n",
               best_x, best->producers * best->in_flight, best->p99, GOAL_SMALL,
               verdict(best_met));
    } else {
        printf(" in flight): none within the bound: %s\n", verdict(false));
    }
    printf("  (1-row requests through the raw relay, one per message: %.2f "
           "x kernel at 256)\n",
           n_relay == N_BATCHES ? relay[0].rows_s / relay[0].kernel_256 : 0);
    bool small_met = small_met_k[0] || small_met_k[1] || best_met;
    double idle_x = idle[0].p50 / echo.p50;
    printf("  1-row requests one at a time: p50 %.2f x echo p50 (goal <= "
           "%.1f): %s\n",
           idle_x, GOAL_IDLE, verdict(idle_x <= GOAL_IDLE));
    printf("load average (1 min): %.2f before, %.2f after\n", load_before,
           load_after);

    FILE *f = fopen(out_path, "w");
    if (!f) {
        perror(out_path);
        return 1;
    }
    fprintf(f,
            "{\n  \"bench\": \"serve\",\n  \"transport\": \"ipc\",\n"
            "  \"cores\": %ld,\n  \"load_1m_before\": %.2f,\n"
            "  \"load_1m_after\": %.2f,\n  \"workers\": %d,\n"
            "  \"concurrency\": %d,\n  \"blas_threads\": %d,\n"
            "  \"seconds_per_cell\": %.2f,\n  \"max_delay_us\": %ld,\n"
            "  \"kernel\": [\n",
            cores, load_before, load_after, workers, conc, blas, seconds,
            max_delay_us);
    for (int mi = 0; mi < N_MODELS; mi++) {
        for (int b = 0; b < N_BATCHES; b++) {
            fprintf(f,
                    "    {\"model\": \"%s\", \"rows\": %zu, \"threads\": %d, "
                    "\"rows_per_s\": %.0f, \"rows_per_s_1_thread\": %.0f}%s\n",
                    models[mi].label, s_batches[b], workers * conc,
                    models[mi].kernel[b], models[mi].kernel_1[b],
                    mi + 1 == N_MODELS && b + 1 == N_BATCHES ? "" : ",");
        }
    }
    fprintf(f, "  ],\n  \"cells\": [\n");
    for (int mi = 0; mi < N_MODELS; mi++) {
        for (int b = 0; b < N_BATCHES; b++) {
            for (int p = 0; p < N_PRODUCERS; p++) {
                json_cell(f, &grid[mi][b][p], false);
            }
        }
    }
    for (int mi = 0; mi < N_MODELS; mi++) {
        for (int k = 0; k < 4; k++) {
            json_cell(f, &many[mi][k / 2][k % 2], mi + 1 == N_MODELS && k == 3);
        }
    }
    fprintf(f, "  ],\n  \"sweep\": [\n");
    for (size_t k = 0; k < N_SWEEP; k++) {
        json_cell(f, &sweep[k], k + 1 == N_SWEEP);
    }
    fprintf(f, "  ],\n  \"relay\": [\n");
    for (int b = 0; b < n_relay; b++) {
        json_cell(f, &relay[b], b + 1 == n_relay);
    }
    fprintf(f, "  ],\n  \"one_at_a_time\": [\n");
    json_cell(f, &echo, false);
    for (int mi = 0; mi < N_MODELS; mi++) {
        idle[mi].kernel = models[mi].kernel[0]; // from before the cells
        json_cell(f, &idle[mi], mi + 1 == N_MODELS);
    }
    fprintf(f,
            "  ],\n  \"goals\": {\"kept_256_rows\": %.3f, "
            "\"kept_4096_rows\": %.3f, \"one_row_8x32_over_kernel_256\": "
            "%.3f, \"one_row_8x32_p99_us\": %.0f, "
            "\"one_row_32x8_over_kernel_256\": %.3f, "
            "\"one_row_32x8_p99_us\": %.0f, "
            "\"one_row_many_8x32_over_kernel_256\": %.3f, "
            "\"one_row_many_8x32_p99_us\": %.0f, "
            "\"one_row_many_best_over_kernel_256\": %.3f, "
            "\"one_row_many_best_in_flight\": %d, "
            "\"one_row_many_best_p99_us\": %.0f, "
            "\"one_row_idle_p50_over_echo_p50\": %.3f, "
            "\"one_row_idle_rounds\": [%.3f, %.3f, %.3f, %.3f, %.3f], "
            "\"relay_kept_256_rows\": %.3f, \"relay_kept_4096_rows\": %.3f, "
            "\"relay_one_row_8x32_over_kernel_256\": %.3f, \"met\": %s}\n}\n",
            bulk[0], bulk[1], grid[0][0][1].rows_s / grid[0][0][1].kernel_256,
            grid[0][0][1].p99, grid[0][0][2].rows_s / grid[0][0][2].kernel_256,
            grid[0][0][2].p99, many[0][0][0].rows_s / many[0][0][0].kernel_256,
            many[0][0][0].p99, best_x,
            best ? best->producers * best->in_flight : 0, best ? best->p99 : 0,
            idle_x, idle_ratio[0], idle_ratio[1], idle_ratio[2], idle_ratio[3],
            idle_ratio[4], relay_kept[3], relay_kept[4],
            n_relay == N_BATCHES ? relay[0].rows_s / relay[0].kernel_256 : 0,
            bulk[0] >= GOAL_BULK && bulk[1] >= GOAL_BULK && small_met &&
                    idle_x <= GOAL_IDLE
                ? "true"
                : "false");
    fclose(f);
    printf("wrote %s\n", out_path);
    for (int mi = 0; mi < N_MODELS; mi++) {
        dv_model_destroy(&models[mi].model);
        dv_tensor_destroy(&models[mi].x);
    }
    return failures ? 1 : 0;
}
