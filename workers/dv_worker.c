// dv_worker — the worker's loop (see dv_worker.h).
//
// Model: a DEALER socket watched by dv_zwatch, a heartbeat timer and signal
// handles on one libuv loop. Any message from the broker counts as a sign of
// life; after `liveness` silent intervals the worker closes its socket,
// opens a new one and registers again, so a restarted broker gets its
// workers back by itself.
//
// Jobs: `echo` is answered on the loop thread (no compute). `infer` becomes
// a task: its input is decoded on the loop thread, the model is taken from
// the cache (or fetched from the broker first: the task waits in `waiting`
// until `model_data` arrives and its SHA-256 checks out), the prediction runs
// on the libuv thread pool (uv_queue_work), and the `done` goes out from the
// loop thread when it completes. The loop thread never does math, so
// heartbeats keep flowing while jobs run.
//
// Dynamic batching: infer tasks whose model is here wait in `ready` for a
// compute thread. When one is free, the first ready task and the ready tasks
// after it for the same model version, input width and priority (up to the
// model's max_batch_rows) run as one forward pass; each job still gets its
// own `done` with its own rows, and a task whose input is bad (NaN, wrong
// width) fails alone before the pass. Nothing waits for a batch to fill
// unless the model's max_delay_us says so: what is ready when a thread is
// free is the batch (docs/ARCHITECTURE.md, Dynamic batching).
//
// Model cache: models by "NAME@VERSION", each with a count of tasks using
// it and a last-used tick; past the memory budget the least recently used
// idle model is evicted (a model in use never is).
//
// Draining: on SIGINT/SIGTERM the worker says `bye` (the broker sends no new
// jobs), finishes what it holds, then stops. A second signal stops at once.
#include "dv_worker.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>
#include <zmq.h>

#include "dv_csv.h"
#include "dv_keys.h"
#include "dv_limits.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_metrics.h"
#include "dv_model.h"
#include "dv_modelfile.h"
#include "dv_msgpack.h"
#include "dv_proto.h"
#include "dv_sha256.h"
#include "dv_train.h"
#include "dv_wire.h"
#include "dv_zwatch.h"

#define KEY_BYTES (DV_MAX_WIRE_NAME + 16) // "NAME@VERSION"

typedef struct cached cached_t;
struct cached {
    char key[KEY_BYTES];             // NAME@VERSION
    uint8_t sha256[DV_SHA256_BYTES]; // of the file it came from
    dv_model_t *model;               // loaded model, owned (model cache)
    uint8_t *data;                   // data set CSV, owned (data cache)
    size_t bytes;                    // memory charged to the budget
    uint32_t refs;                   // tasks using it
    uint64_t used;                   // LRU tick of the last use
    cached_t *next;                  // cache list
};

// A stored data set a job names, and the cache entry once it is here (a
// ref is held).
typedef struct {
    char key[KEY_BYTES];             // "NAME@VERSION" ("": none)
    char name[DV_MAX_WIRE_NAME + 1]; //
    uint64_t version, bytes;         //
    uint8_t sha256[DV_SHA256_BYTES]; //
    cached_t *entry;                 //
} dsref_t;

typedef struct task task_t;
struct task {
    uv_work_t work;                  // thread-pool request
    dv_worker_t *owner;              // the worker
    uint64_t job, attempt;           // from `run`
    char key[KEY_BYTES];             // model wanted
    char name[DV_MAX_WIRE_NAME + 1]; // its name ...
    uint64_t version;                // ... and version
    uint8_t sha256[DV_SHA256_BYTES]; // expected file checksum
    cached_t *model;                 // while computing (a ref is held)
    dv_tensor_t *input;              // owned, or &view (set on the pool)
    dv_tensor_t view;                // the input as floats in raw, in place
    uint8_t *raw;                    // input frame bytes, owned
    size_t raw_rows, raw_cols;       // its shape
    int32_t priority;                // infer: never batched across these
    uint32_t max_batch_rows;         // infer: the model's batch settings
    uint64_t max_delay_us;           //   (run's `model` map, or defaults)
    uint64_t ready_ms;               // loop time it became ready
    uint32_t batch_rows, batch_jobs; // the forward pass it ran in
    dv_tensor_t *output;             // set by the pool thread (alone) ...
    size_t out_row;                  // ... or its first row in batch_t.y
    int rc;                          // its result
    dv_error_t err;                  // and reason
    task_t *next;                    // waiting list
    task_t *all_next;                // every task held
    bool cancelled;                  // the broker cancelled it (atomic)
    bool sleep;                      // a `sleep` job: raw is its payload
    uint64_t sleep_ms;               // how long
    bool train;                      // a `train` job: raw is the CSV
    bool evaluate;                   // an `evaluate` job: raw is the CSV
    // Stored data sets: [0] the job's data (else its CSV is in raw), [1]
    // a train job's eval set (scored while it trains and at the end).
    dsref_t ds[2];                        //
    dv_dataset_t *eval_ds;                // pool thread: ds[1] parsed
    dv_metrics_t eval;                    // final metrics on it
    uint64_t e_next_ns;                   // pool thread: eval pacing
    double train_s;                       // pool thread: training time
    uint32_t resumed_from;                // epoch the trainer went on from
    uint8_t data_sha256[DV_SHA256_BYTES]; // what it trained on ...
    uint64_t data_rows;                   // ... for the model's lineage
    dv_metrics_t metrics;                 // its outcome
    dv_hyper_t hyper;                     // its hyper-parameters
    int task_kind;                        // -1: from algo and data
    int64_t created_unix;                 // stored in the model
    char target[DV_MAX_NAME_BYTES + 1];   // target column ("": default)
    uint8_t *model_file;                  // the trained .drvm (owned)
    size_t model_len;                     //
    uint32_t epochs_run;                  // what training did
    // Training progress, written on the pool thread, read on the loop
    // thread (atomics; loss as its bits); sent at most 5 times a second.
    uint32_t p_epoch, p_epochs; //
    uint64_t p_loss_bits, p_ms; //
    uint64_t p_eval_bits;       // score on the eval set (as its bits)
    bool p_has_eval;            //
    bool p_new;                 // not sent yet
    uint64_t p_last_ns;         // pool thread only: last report
    // Checkpoints: every checkpoint_ms (0: none) the trainer's state goes
    // to the broker; a re-run arrives with the last one (resume). The
    // newest not yet sent waits in ck_* (made on the pool thread, sent from
    // the loop thread; under ck_lock).
    uint64_t checkpoint_ms; //
    uint8_t *resume;        // owned
    size_t resume_len;      //
    uint64_t resume_epoch;  //
    uv_mutex_t ck_lock;     //
    bool ck_lock_ready;     // ck_lock initialized
    uint8_t *ck_buf;        // owned
    size_t ck_len;          //
    uint32_t ck_epoch;      //
};

// A fetch_model or fetch_dataset in flight.
typedef struct fetch fetch_t;
struct fetch {
    uint64_t rid;                    // request id
    char key[KEY_BYTES];             // what it fetches
    char name[DV_MAX_WIRE_NAME + 1]; // name
    uint64_t version;                // version
    bool loading;                    // answered; decoding on the pool
    bool dataset;                    // a data set (chunks), not a model
    uint8_t sha256[DV_SHA256_BYTES]; // data set: what the job expects ...
    uint64_t total;                  // ... its size
    uint8_t *buf;                    // chunks so far (owned)
    uint64_t got;                    //
    fetch_t *next;                   // list
};

struct dv_worker {
    uv_loop_t loop;         // the worker's loop
    void *ctx;              // ZeroMQ context
    void *sock;             // DEALER to the broker
    dv_zwatch_t *watch;     // sock in the loop
    uv_timer_t heartbeat;   // heartbeats and broker liveness
    uv_signal_t sigint;     // drain on SIGINT
    uv_signal_t sigterm;    // drain on SIGTERM
    char endpoint[256];     // broker's worker endpoint
    char name[128];         // our name
    uint32_t capacity;      // jobs computed at once
    uint32_t prefetch;      // jobs held beyond those
    uint32_t heartbeat_ms;  // interval
    uint32_t liveness;      // silent intervals before reconnecting
    uint64_t last_heard_ms; // loop time of the broker's last message
    bool ready_printed;     // READY went out
    unsigned broker_minor;  // welcome's v: 1.4 takes done_batch
    bool draining;          // said bye: finish, then stop
    uint64_t bye_rid;       // the bye's request id
    bool bye_acked;         // the broker answered it: no more jobs coming
    uint64_t bye_ms;        // loop time it was sent
    bool stopping;          // the loop is being stopped
    size_t running;         // infer tasks held (waiting or computing)
    size_t loading;         // model loads on the pool
    size_t model_budget;    // bytes of models to keep
    size_t cached_bytes;    // bytes held
    cached_t *cache;        // loaded models
    size_t data_budget;     // bytes of data sets to keep
    size_t data_bytes;      // bytes held
    cached_t *dcache;       // fetched data sets
    task_t *waiting_data;   // tasks waiting for a data set
    uint64_t tick;          // LRU clock
    task_t *waiting;        // tasks waiting for a model
    task_t *ready;          // infer tasks waiting for a compute thread, FIFO
    task_t *ready_tail;     //   (linked by next)
    uint32_t batches;       // forward passes on the pool
    uv_idle_t dispatcher;   // forms batches once the socket is read
    uv_timer_t batch_delay; // a batch waiting for more (max_delay_us)
    uint64_t batches_run;   // counters for the log
    uint64_t batched_jobs;  // ...
    task_t *tasks;          // every task held
    fetch_t *fetches;       // fetches in flight
    uint64_t next_rid;      // request ids
    uint64_t jobs_done;     // counters for the log
    uint64_t jobs_failed;   // ...
    char **queues;          // queues served (none: all)
    size_t n_queues;        //
    uv_async_t progress;    // a training task has progress to report
    uint32_t train_slots;   // training jobs at once
    bool curve;             // CURVE on: keys below
    uint8_t public_key[32], secret_key[32], broker_key[32];
    char key_id[65]; // our key's id, for logs
};

static int on_ready(dv_zwatch_t *zw, int events, void *arg);

// A `done` header for attempt of job in state ("done" or "failed").
static dv_msgw_t *
done_header(uint64_t job, uint64_t attempt, const char *state)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DONE, 0);
    dv_msgw_uint(w, "job", job);
    dv_msgw_uint(w, "attempt", attempt);
    dv_msgw_str(w, "state", state);
    return w;
}
static void send_heartbeat(dv_worker_t *self);

static void
send_header(dv_worker_t *self, dv_msgw_t *w, const dv_frame_t *frames, size_t n)
{
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    if (self->sock && dv_wire_send(self->sock, NULL, 0, h, len, frames, n)) {
        dv_log(DV_LOG_WARN, "worker", "could not send a message to %s: %s",
               self->endpoint, zmq_strerror(zmq_errno()));
    }
    dv_msgw_destroy(&w);
}

// The entries of a cache, as "NAME@VERSION" (borrowed keys; free the
// array).
static const char **
cache_keys(const cached_t *list, size_t *n)
{
    size_t count = 0;
    for (const cached_t *c = list; c; c = c->next) {
        count++;
    }
    const char **keys = dv_malloc((count ? count : 1) * sizeof *keys);
    count = 0;
    for (const cached_t *c = list; c; c = c->next) {
        keys[count++] = c->key;
    }
    *n = count;
    return keys;
}

// What we hold, for the broker's affinity: models, and (1.1) data sets.
static void
write_models(const dv_worker_t *self, dv_msgw_t *w)
{
    size_t n = 0;
    const char **keys = cache_keys(self->cache, &n);
    dv_msgw_strs(w, "models", keys, n);
    free(keys);
    keys = cache_keys(self->dcache, &n);
    dv_msgw_strs(w, "datasets", keys, n);
    free(keys);
}

static void
send_register(dv_worker_t *self)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_REGISTER, 0);
    dv_msgw_str(w, "worker", self->name);
    // Credits: the broker sends at most this many at a time. The pool runs
    // `capacity` of them; the rest wait in its queue.
    dv_msgw_uint(w, "capacity", self->capacity + self->prefetch);
    // Training jobs at once: fewer than the compute threads, so a thread
    // stays free for inference while models train.
    dv_msgw_uint(w, "train_slots", self->train_slots);
    write_models(self, w);
    if (self->n_queues) {
        dv_msgw_strs(w, "queues", (const char *const *)self->queues,
                     self->n_queues);
    }
    send_header(self, w, NULL, 0);
}

// Ask for a model, or for a data set's next chunk (from f->got).
static void
send_fetch(dv_worker_t *self, const fetch_t *f)
{
    dv_msgw_t *w = dv_msgw_new(
        f->dataset ? DV_MSG_FETCH_DATASET : DV_MSG_FETCH_MODEL, f->rid);
    dv_msgw_str(w, "name", f->name);
    dv_msgw_uint(w, "version", f->version);
    if (f->dataset) {
        dv_msgw_uint(w, "offset", f->got);
    }
    send_header(self, w, NULL, 0);
}

static int
open_socket(dv_worker_t *self, dv_error_t *err)
{
    self->sock = zmq_socket(self->ctx, ZMQ_DEALER);
    // Long enough for a final `bye` or `done` to leave on shutdown, short
    // enough not to hang when the broker is gone.
    int linger = 1000;
    int64_t maxmsg = (int64_t)DV_MAX_FRAME_BYTES;
    // Sends never block the loop (ZMQ_DONTWAIT), so at libzmq's default
    // high-water mark of 1,000 messages a burst of `done`s (a batch of
    // many one-row jobs for a 1.3 broker, echo floods) was dropped, and
    // each dropped job stayed running at the broker while we heartbeat.
    // What we send is bounded by the jobs we hold: no message limit.
    int hwm = 0;
    zmq_setsockopt(self->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (self->curve) {
        zmq_setsockopt(self->sock, ZMQ_CURVE_SERVERKEY, self->broker_key, 32);
        zmq_setsockopt(self->sock, ZMQ_CURVE_PUBLICKEY, self->public_key, 32);
        zmq_setsockopt(self->sock, ZMQ_CURVE_SECRETKEY, self->secret_key, 32);
    }
    if (zmq_connect(self->sock, self->endpoint) != 0) {
        int e = zmq_errno();
        zmq_close(self->sock);
        self->sock = NULL;
        return dv_errorf(err, DV_EINVAL, "cannot connect to %s: %s",
                         self->endpoint, zmq_strerror(e));
    }
    return dv_zwatch_open(&self->watch, &self->loop, self->sock,
                          DV_ZWATCH_READABLE, on_ready, self, err);
}

// Stop once a draining worker holds nothing more.
static void
maybe_finish_drain(dv_worker_t *self)
{
    // Jobs sent before the broker read our bye may still be on their way;
    // its answer comes after them (one connection keeps order).
    if (self->draining && self->running == 0 && self->loading == 0 &&
        self->bye_acked) {
        dv_log(DV_LOG_INFO, "worker",
               "drained: %" PRIu64 " jobs done, %" PRIu64 " failed",
               self->jobs_done, self->jobs_failed);
        dv_worker_stop(self);
    }
}

// ------------------------------------------------------------ model cache

static cached_t *
cache_find(cached_t *list, const char *key)
{
    for (cached_t *c = list; c; c = c->next) {
        if (strcmp(c->key, key) == 0) {
            return c;
        }
    }
    return NULL;
}

static void
cached_free(cached_t *c)
{
    dv_model_destroy(&c->model);
    free(c->data);
    free(c);
}

// Evict idle entries of one cache (models or data sets), least recently
// used first, while over its budget.
static void
trim_list(cached_t **list, size_t *bytes, size_t budget, const char *what)
{
    while (*bytes > budget) {
        cached_t **victim = NULL;
        for (cached_t **p = list; *p; p = &(*p)->next) {
            if ((*p)->refs == 0 && (!victim || (*p)->used < (*victim)->used)) {
                victim = p;
            }
        }
        if (!victim) {
            return; // everything is in use: over budget until tasks end
        }
        cached_t *c = *victim;
        *victim = c->next;
        *bytes -= c->bytes;
        dv_log(DV_LOG_INFO, "worker", "%s %s evicted (cache over %zu MiB)",
               what, c->key, budget >> 20);
        cached_free(c);
    }
}

static void
cache_trim(dv_worker_t *self)
{
    trim_list(&self->cache, &self->cached_bytes, self->model_budget, "model");
    trim_list(&self->dcache, &self->data_bytes, self->data_budget, "data set");
}

// --------------------------------------------------------------- tasks

static void
task_free(task_t *t)
{
    dv_metrics_clear(&t->metrics);
    dv_metrics_clear(&t->eval);
    dv_dataset_destroy(&t->eval_ds);
    if (t->ck_lock_ready) {
        uv_mutex_destroy(&t->ck_lock);
    }
    free(t->ck_buf);
    free(t->resume);
    free(t->raw);
    free(t->model_file);
    if (t->input == &t->view) {
        t->input = NULL; // raw's bytes
    }
    dv_tensor_destroy(&t->input);
    dv_tensor_destroy(&t->output);
    free(t);
}

static void
send_failed(dv_worker_t *self,
            uint64_t job,
            uint64_t attempt,
            int code,
            const char *text)
{
    dv_msgw_t *w = done_header(job, attempt, "failed");
    dv_msgw_error(w, "error", code, text);
    send_header(self, w, NULL, 0);
    self->jobs_failed++;
}

// A finished task's `done` (w, taking it) with its frames — unless its
// header is over DV_MAX_HEADER_BYTES: the broker could not read it and the
// job would stay running forever, so the job fails with the numbers.
static void
send_done(dv_worker_t *self,
          const task_t *t,
          dv_msgw_t *w,
          const dv_frame_t *frames,
          size_t n)
{
    size_t len = 0;
    dv_msgw_bytes(w, &len);
    if (len > DV_MAX_HEADER_BYTES) {
        dv_msgw_destroy(&w);
        char text[DV_ERROR_TEXT_MAX];
        snprintf(text, sizeof text,
                 "the result's header would be %zu bytes, over the limit of "
                 "%d",
                 len, DV_MAX_HEADER_BYTES);
        dv_log(DV_LOG_WARN, "worker", "job %" PRIu64 ": %s", t->job, text);
        send_failed(self, t->job, t->attempt, DV_EMSGSIZE, text);
        return;
    }
    send_header(self, w, frames, n);
    self->jobs_done++;
}

// A task is over (done or failed): account for it.
static void
task_end(dv_worker_t *self, task_t *t)
{
    for (task_t **p = &self->tasks; *p; p = &(*p)->all_next) {
        if (*p == t) {
            *p = t->all_next;
            break;
        }
    }
    if (t->model) {
        t->model->refs--;
    }
    for (size_t i = 0; i < 2; i++) {
        if (t->ds[i].entry) {
            t->ds[i].entry->refs--;
        }
    }
    task_free(t);
    self->running--;
    cache_trim(self);
    maybe_finish_drain(self);
}

// Infer tasks run as one forward pass on the pool (a batch of one too).
typedef struct {
    uv_work_t work;     // pool request
    dv_worker_t *owner; // the worker
    dv_tensor_t *y;     // the stacked output (NULL: each its own output)
    size_t n;           // tasks, in ready order
    task_t *tasks[];    //
} batch_t;

// Pool thread: each task's input is decoded and checked on its own (a bad
// one fails alone, with the text predicting it alone would give); the good
// ones are stacked into one input, predicted at once, and split back.
static void
work_batch(uv_work_t *req)
{
    batch_t *b = req->data;
    const dv_model_t *model = b->tasks[0]->model->model;
    size_t n_out = dv_model_n_outputs(model);
    size_t rows = 0, good = 0;
    task_t *one = NULL;
    for (size_t i = 0; i < b->n; i++) {
        task_t *t = b->tasks[i];
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        // The frame's bytes are the floats (malloc'd: aligned): no copy.
        t->view = (dv_tensor_t){t->raw_rows, t->raw_cols, (float *)t->raw};
        t->input = &t->view;
        t->rc = 0;
#else
        dv_frame_t f = {t->raw, t->raw_rows * t->raw_cols * 4};
        t->rc = dv_tensor_from_frame(&f, t->raw_rows, t->raw_cols, &t->input,
                                     &t->err);
        free(t->raw);
        t->raw = NULL;
#endif
        // The broker checked this at submit; a model file is a peer too.
        if (t->rc == 0) {
            t->rc = dv_frame_check(t->input->rows, n_out, "output", &t->err);
        }
        if (t->rc == 0) {
            t->rc = dv_model_check_input(model, t->input, &t->err);
        }
        if (t->rc == 0) {
            rows += t->input->rows;
            good++;
            one = t;
        }
    }
    if (good <= 1) { // nothing to stack
        if (one) {
            one->rc =
                dv_model_predict(model, one->input, &one->output, &one->err);
            one->batch_rows = (uint32_t)rows;
            one->batch_jobs = 1;
        }
        return;
    }
    dv_tensor_t *x = NULL, *y = NULL;
    dv_error_t err = {0};
    int rc = dv_tensor_open(&x, rows, model->n_features, &err);
    for (size_t i = 0, at = 0; rc == 0 && i < b->n; i++) {
        const task_t *t = b->tasks[i];
        if (t->rc == 0) {
            size_t len = dv_tensor_size(t->input);
            memcpy(x->data + at, t->input->data, len * sizeof(float));
            at += len;
        }
    }
    if (rc == 0) {
        rc = dv_model_predict(model, x, &y, &err);
    }
    for (size_t i = 0, at = 0; i < b->n; i++) {
        task_t *t = b->tasks[i];
        if (t->rc != 0) {
            continue;
        }
        if (rc) {
            t->rc = dv_errorf(&t->err, rc, "%s", err.text);
            continue;
        }
        t->out_row = at; // its rows of y: no copy
        at += t->input->rows;
        t->batch_rows = (uint32_t)rows;
        t->batch_jobs = (uint32_t)good;
    }
    dv_tensor_destroy(&x);
    b->y = y;
}

// A `sleep` job: waits ms in short slices, checking the cancel flag
// between them, the way model code checks it between batches.
static void
work_sleep(uv_work_t *req)
{
    task_t *t = req->data;
    uint64_t start = uv_hrtime();
    while (!__atomic_load_n(&t->cancelled, __ATOMIC_RELAXED)) {
        uint64_t spent = (uv_hrtime() - start) / 1000000;
        if (spent >= t->sleep_ms) {
            return;
        }
        uint64_t slice = t->sleep_ms - spent < 10 ? t->sleep_ms - spent : 10;
        uv_sleep((unsigned)slice);
    }
}

static void
after_sleep(uv_work_t *req, int status)
{
    task_t *t = req->data;
    dv_worker_t *self = t->owner;
    if (status != 0 || __atomic_load_n(&t->cancelled, __ATOMIC_RELAXED)) {
        send_failed(self, t->job, t->attempt, DV_ECANCELED, "job cancelled");
    } else {
        dv_msgw_t *w = done_header(t->job, t->attempt, "done");
        dv_frame_t f = {t->raw, t->raw_rows};
        send_header(self, w, &f, 1);
        self->jobs_done++;
    }
    task_end(self, t);
}

// On the pool: the job's CSV (its own, or the cached data set's) parsed.
static int
parse_task_csv(task_t *t, const dv_csv_opts_t *copts, dv_dataset_t **ds)
{
    const cached_t *d = t->ds[0].entry;
    const uint8_t *csv = d ? d->data : t->raw;
    size_t len = d ? d->bytes : t->raw_rows;
    return dv_csv_parse(ds, (const char *)csv, len, copts, &t->err);
}

// An `evaluate` job on the pool: the CSV against the model's features and
// target, then its metrics.
static void
work_evaluate(uv_work_t *req)
{
    task_t *t = req->data;
    const dv_model_t *m = t->model->model;
    dv_csv_opts_t copts = {.target = m->target_name};
    dv_dataset_t *ds = NULL;
    t->rc = parse_task_csv(t, &copts, &ds);
    if (t->rc == 0) {
        t->rc = dv_model_evaluate(m, ds, &t->metrics, &t->err);
    }
    dv_dataset_destroy(&ds);
}

static void
after_evaluate(uv_work_t *req, int status)
{
    task_t *t = req->data;
    dv_worker_t *self = t->owner;
    if (status != 0 || t->cancelled) {
        t->rc = dv_errorf(&t->err, DV_ECANCELED, "job cancelled");
    }
    if (t->rc) {
        send_failed(self, t->job, t->attempt, t->rc, t->err.text);
    } else {
        dv_msgw_t *w = done_header(t->job, t->attempt, "done");
        dv_msgw_metrics(w, "metrics", &t->metrics);
        size_t clen = 0;
        uint8_t *conf = dv_confusion_frame(&t->metrics, &clen);
        if (conf) { // too many classes for the header: a u32 frame
            size_t k = t->metrics.n_classes;
            dv_msgw_key(w, "confusion");
            dv_msgw_v_map(w, 3);
            dv_msgw_v_str(w, "frame");
            dv_msgw_v_uint(w, 1);
            dv_msgw_v_str(w, "dtype");
            dv_msgw_v_str(w, "u32");
            dv_msgw_v_str(w, "shape");
            dv_msgw_v_array(w, 2);
            dv_msgw_v_uint(w, k);
            dv_msgw_v_uint(w, k);
        }
        dv_frame_t f = {conf, clen};
        send_done(self, t, w, &f, conf ? 1 : 0);
        free(conf);
    }
    task_end(self, t);
}

// dv_train checks the cancel flag before every mini-batch (opts.cancel)
// and the progress callback's answer after every epoch.
static int
train_progress(const dv_train_progress_t *p, void *arg)
{
    task_t *t = arg;
    uint64_t now = uv_hrtime();
    t->train_s = p->seconds;
    if (t->eval_ds && p->model &&
        (now >= t->e_next_ns || p->epoch == p->epochs)) {
        // The held-out score as training goes: at most once a second, and
        // never more than a tenth of the time (a large eval set is costly).
        dv_metrics_t met = {0};
        dv_error_t e = {0};
        if (dv_model_evaluate(p->model, t->eval_ds, &met, &e) == 0) {
            double v =
                met.task == DV_TASK_CLASSIFICATION ? met.accuracy : met.r2;
            uint64_t vb;
            memcpy(&vb, &v, sizeof vb);
            __atomic_store_n(&t->p_eval_bits, vb, __ATOMIC_RELAXED);
            __atomic_store_n(&t->p_has_eval, true, __ATOMIC_RELAXED);
        }
        dv_metrics_clear(&met);
        uint64_t after = uv_hrtime(), cost = after - now;
        t->e_next_ns =
            after + (cost * 10 > 1000000000ULL ? cost * 10 : 1000000000ULL);
        now = after;
    }
    if (now - t->p_last_ns >= 200000000ULL || p->epoch == p->epochs) {
        uint64_t bits;
        memcpy(&bits, &p->loss, sizeof bits);
        __atomic_store_n(&t->p_epoch, p->epoch, __ATOMIC_RELAXED);
        __atomic_store_n(&t->p_epochs, p->epochs, __ATOMIC_RELAXED);
        __atomic_store_n(&t->p_loss_bits, bits, __ATOMIC_RELAXED);
        __atomic_store_n(&t->p_ms, (uint64_t)(p->seconds * 1000),
                         __ATOMIC_RELAXED);
        __atomic_store_n(&t->p_new, true, __ATOMIC_RELEASE);
        uv_async_send(&t->owner->progress); // thread-safe
        t->p_last_ns = now;
    }
    return __atomic_load_n(&t->cancelled, __ATOMIC_RELAXED) ? 1 : 0;
}

// On the pool thread: keep the newest checkpoint for the loop thread.
static void
train_checkpoint(const uint8_t *blob, size_t len, uint32_t epoch, void *arg)
{
    task_t *t = arg;
    uint8_t *copy = dv_try_malloc(len, 1);
    if (!copy) {
        return; // the next one may fit; a re-run redoes a little more
    }
    memcpy(copy, blob, len);
    uv_mutex_lock(&t->ck_lock);
    free(t->ck_buf);
    t->ck_buf = copy;
    t->ck_len = len;
    t->ck_epoch = epoch;
    uv_mutex_unlock(&t->ck_lock);
    uv_async_send(&t->owner->progress);
}

// On the loop thread: a training task's newest checkpoint to the broker.
static void
send_checkpoint(dv_worker_t *self, task_t *t)
{
    uv_mutex_lock(&t->ck_lock);
    uint8_t *blob = t->ck_buf;
    size_t len = t->ck_len;
    uint32_t epoch = t->ck_epoch;
    t->ck_buf = NULL;
    uv_mutex_unlock(&t->ck_lock);
    if (!blob) {
        return;
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_CHECKPOINT, 0);
    dv_msgw_uint(w, "job", t->job);
    dv_msgw_uint(w, "attempt", t->attempt);
    dv_msgw_uint(w, "epoch", epoch);
    dv_frame_t f = {blob, len};
    send_header(self, w, &f, 1);
    free(blob);
}

// A training task's progress, if it has some not sent yet.
static void
send_progress(dv_worker_t *self, task_t *t)
{
    if (!__atomic_exchange_n(&t->p_new, false, __ATOMIC_ACQUIRE)) {
        return;
    }
    uint64_t bits = __atomic_load_n(&t->p_loss_bits, __ATOMIC_RELAXED);
    double loss;
    memcpy(&loss, &bits, sizeof loss);
    dv_msgw_t *w = dv_msgw_new(DV_MSG_PROGRESS, 0);
    dv_msgw_uint(w, "job", t->job);
    dv_msgw_uint(w, "attempt", t->attempt);
    dv_msgw_uint(w, "epoch", __atomic_load_n(&t->p_epoch, __ATOMIC_RELAXED));
    dv_msgw_uint(w, "epochs", __atomic_load_n(&t->p_epochs, __ATOMIC_RELAXED));
    dv_msgw_double(w, "loss", loss);
    dv_msgw_uint(w, "ms", __atomic_load_n(&t->p_ms, __ATOMIC_RELAXED));
    if (__atomic_load_n(&t->p_has_eval, __ATOMIC_RELAXED)) {
        uint64_t eb = __atomic_load_n(&t->p_eval_bits, __ATOMIC_RELAXED);
        double ev;
        memcpy(&ev, &eb, sizeof ev);
        dv_msgw_double(w, "eval", ev);
    }
    send_header(self, w, NULL, 0);
}

// On the loop thread: send what training tasks reported.
static void
on_progress(uv_async_t *a)
{
    dv_worker_t *self = a->data;
    for (task_t *t = self->tasks; t; t = t->all_next) {
        if (t->train && t->ck_lock_ready) {
            send_checkpoint(self, t);
        }
        if (t->train) {
            send_progress(self, t);
        }
    }
}

// A `train` job on the pool: parse the CSV, train, encode the model file.
static void
work_train(uv_work_t *req)
{
    task_t *t = req->data;
    dv_csv_opts_t copts = {.target = t->target[0] ? t->target : NULL};
    dv_dataset_t *ds = NULL;
    t->rc = parse_task_csv(t, &copts, &ds);
    const cached_t *ev = t->ds[1].entry;
    if (t->rc == 0 && ev) { // the eval set: same target column
        t->rc = dv_csv_parse(&t->eval_ds, (const char *)ev->data, ev->bytes,
                             &copts, &t->err);
        if (t->rc) {
            char why[DV_ERROR_TEXT_MAX];
            snprintf(why, sizeof why, "%s", t->err.text);
            dv_errorf(&t->err, t->rc, "eval data set %s: %s", t->ds[1].key,
                      why);
        }
    }
    dv_model_t *model = NULL;
    if (t->rc == 0) {
        dv_train_opts_t o = {.task = t->task_kind,
                             .progress = train_progress,
                             .progress_arg = t,
                             .created_unix = t->created_unix,
                             .cancel = &t->cancelled,
                             .resume = t->resume,
                             .resume_len = t->resume_len};
        if (t->checkpoint_ms) {
            o.checkpoint = train_checkpoint;
            o.checkpoint_arg = t;
            o.checkpoint_every_s = (double)t->checkpoint_ms / 1000.0;
        }
        t->rc = dv_train(&model, ds, &t->hyper, &o, &t->err);
        if (t->resume && (t->rc == DV_EFORMAT || t->rc == DV_ECHECKSUM ||
                          t->rc == DV_EINVAL)) {
            // A checkpoint this trainer cannot take (damaged, or from
            // another build's format): start over rather than fail a job
            // that can still be done.
            dv_log(DV_LOG_WARN, "worker",
                   "job %" PRIu64 ": checkpoint refused (%s); training from "
                   "the start",
                   t->job, t->err.text);
            o.resume = NULL;
            o.resume_len = 0;
            t->rc = dv_train(&model, ds, &t->hyper, &o, &t->err);
        }
        t->resumed_from = o.resume ? (uint32_t)t->resume_epoch : 0;
    }
    if (t->rc == 0) {
        memcpy(t->data_sha256, ds->sha256, sizeof t->data_sha256);
        t->data_rows = ds->n_rows;
        t->epochs_run = model->meta.epochs_run;
        t->rc = dv_model_encode(model, &t->model_file, &t->model_len, &t->err);
    }
    if (t->rc == 0 && t->eval_ds) {
        t->rc = dv_model_evaluate(model, t->eval_ds, &t->eval, &t->err);
    }
    dv_model_destroy(&model);
    dv_dataset_destroy(&ds);
}

static void
after_train(uv_work_t *req, int status)
{
    task_t *t = req->data;
    dv_worker_t *self = t->owner;
    if (status != 0 || __atomic_load_n(&t->cancelled, __ATOMIC_RELAXED)) {
        t->rc = dv_errorf(&t->err, DV_ECANCELED, "job cancelled");
    }
    if (t->rc) {
        send_failed(self, t->job, t->attempt, t->rc, t->err.text);
    } else {
        send_progress(self, t); // the last epoch's, before the result
        dv_msgw_t *w = done_header(t->job, t->attempt, "done");
        dv_msgw_uint(w, "epochs_run", t->epochs_run);
        dv_msgw_uint(w, "train_ms", (uint64_t)(t->train_s * 1000));
        dv_msgw_bin(w, "data_sha256", t->data_sha256, DV_SHA256_BYTES);
        dv_msgw_uint(w, "data_rows", t->data_rows);
        if (t->resumed_from) {
            dv_msgw_uint(w, "resumed_from", t->resumed_from);
        }
        if (t->eval_ds) {
            dv_msgw_metrics(w, "eval_metrics", &t->eval);
        }
        dv_frame_t f = {t->model_file, t->model_len};
        send_done(self, t, w, &f, 1);
    }
    task_end(self, t);
}

// Task t's output: rows x cols floats, its own or its rows of y.
static const float *
task_output(const task_t *t, const dv_tensor_t *y, size_t *rows, size_t *cols)
{
    if (t->output) {
        *rows = t->output->rows;
        *cols = t->output->cols;
        return t->output->data;
    }
    *rows = t->input->rows;
    *cols = y->cols;
    return y->data + t->out_row * y->cols;
}

// The fields every infer `done`/`done_batch` carries beside the output:
// the version, the forward pass (1.3) and the class names (many long ones
// as frame 2, *cf: caller frees).
static void
put_infer_fields(dv_msgw_t *w, const task_t *t, dv_frame_t *cf)
{
    const dv_model_t *m = t->model->model;
    dv_msgw_str(w, "model", t->key);
    dv_msgw_key(w, "batch");
    dv_msgw_v_map(w, 2);
    dv_msgw_v_str(w, "rows");
    dv_msgw_v_uint(w, t->batch_rows);
    dv_msgw_v_str(w, "jobs");
    dv_msgw_v_uint(w, t->batch_jobs);
    if (m->labels) { // many long names go as frame 2, not in the header
        dv_msgw_strs_or_frame(w, "classes",
                              (const char *const *)m->labels->labels,
                              m->labels->n, 2, cf);
    }
}

// An infer task's outcome goes to the broker (status: the batch's; y: its
// stacked output, when it ran in one).
static void
infer_finished(dv_worker_t *self, task_t *t, int status, const dv_tensor_t *y)
{
    if (status != 0 || t->cancelled) {
        t->rc = dv_errorf(&t->err, DV_ECANCELED, "job cancelled");
    }
    if (t->rc) {
        send_failed(self, t->job, t->attempt, t->rc, t->err.text);
        task_end(self, t);
        return;
    }
    size_t rows = 0, cols = 0;
    const float *out = task_output(t, y, &rows, &cols);
    uint8_t *frame = dv_malloc(rows * cols * 4 + 1);
    dv_floats_to_wire(frame, out, rows * cols);
    dv_msgw_t *w = done_header(t->job, t->attempt, "done");
    dv_msgw_tensor(w, "output", 1, rows, cols);
    dv_frame_t f[2] = {{frame, rows * cols * 4}, {NULL, 0}};
    put_infer_fields(w, t, &f[1]);
    send_done(self, t, w, f, f[1].data ? 2 : 1);
    free(frame);
    free((void *)f[1].data);
    task_end(self, t);
}

// The tasks of a forward pass that succeeded, to a 1.4 broker: one
// `done_batch` per DV_MAX_BATCH_JOBS of them instead of a `done` each (the
// failed and cancelled ones, and a lone one, go as `done`). Marks those
// sent by clearing their slot in b.
static void
send_done_batch(dv_worker_t *self, batch_t *b, int status)
{
    size_t good = 0;
    for (size_t i = 0; i < b->n; i++) {
        const task_t *t = b->tasks[i];
        good += status == 0 && t->rc == 0 && !t->cancelled;
    }
    if (good < 2 || self->broker_minor < 4) {
        return;
    }
    for (size_t from = 0; from < b->n;) {
        task_t *sent[DV_MAX_BATCH_JOBS];
        size_t at_b[DV_MAX_BATCH_JOBS]; // their places in b
        size_t n = 0, rows = 0, cols = 0, i = from;
        for (; i < b->n && n < DV_MAX_BATCH_JOBS; i++) {
            task_t *t = b->tasks[i];
            if (status == 0 && t->rc == 0 && !t->cancelled) {
                size_t r = 0;
                task_output(t, b->y, &r, &cols);
                rows += r;
                at_b[n] = i;
                sent[n++] = t;
            }
        }
        from = i;
        if (n < 2) {
            break; // a lone one: its own done
        }
        uint8_t *frame = dv_malloc(rows * cols * 4 + 1);
        dv_msgw_t *w = dv_msgw_new(DV_MSG_DONE_BATCH, 0);
        dv_msgw_key(w, "jobs"); // [job, attempt, rows], in frame 1's order
        dv_msgw_v_array(w, n);
        for (size_t k = 0, at = 0; k < n; k++) {
            size_t r = 0, c = 0;
            const float *out = task_output(sent[k], b->y, &r, &c);
            dv_floats_to_wire(frame + at * cols * 4, out, r * cols);
            at += r;
            dv_msgw_v_array(w, 3);
            dv_msgw_v_uint(w, sent[k]->job);
            dv_msgw_v_uint(w, sent[k]->attempt);
            dv_msgw_v_uint(w, r);
        }
        dv_msgw_tensor(w, "output", 1, rows, cols);
        dv_frame_t f[2] = {{frame, rows * cols * 4}, {NULL, 0}};
        put_infer_fields(w, sent[0], &f[1]);
        size_t len = 0;
        dv_msgw_bytes(w, &len);
        if (len > DV_MAX_HEADER_BYTES) { // each goes as its own done
            dv_msgw_destroy(&w);
        } else {
            send_header(self, w, f, f[1].data ? 2 : 1);
            self->jobs_done += n;
            for (size_t k = 0; k < n; k++) {
                b->tasks[at_b[k]] = NULL;
                task_end(self, sent[k]);
            }
        }
        free(frame);
        free((void *)f[1].data);
    }
}

static void dispatch_ready(dv_worker_t *self);

static void
after_batch(uv_work_t *req, int status)
{
    batch_t *b = req->data;
    dv_worker_t *self = b->owner;
    self->batches--;
    self->batches_run++;
    self->batched_jobs += b->n;
    send_done_batch(self, b, status);
    for (size_t i = 0; i < b->n; i++) {
        if (b->tasks[i]) {
            infer_finished(self, b->tasks[i], status, b->y);
        }
    }
    dv_tensor_destroy(&b->y);
    free(b);
    dispatch_ready(self);
}

// Whether ready task t may share lead's forward pass.
static bool
same_pass(const task_t *lead, const task_t *t)
{
    return t->model == lead->model && t->raw_cols == lead->raw_cols &&
           t->priority == lead->priority;
}

// How many ready tasks (from lead, skipping others) form lead's batch, and
// their rows. The lead always goes, however many rows it has.
static size_t
batch_count(const task_t *lead, size_t *rows)
{
    size_t n = 1;
    *rows = lead->raw_rows;
    for (const task_t *t = lead->next; t; t = t->next) {
        if (!same_pass(lead, t)) {
            continue;
        }
        if (*rows + t->raw_rows > lead->max_batch_rows) {
            break; // first in first out: no smaller one jumps it
        }
        *rows += t->raw_rows;
        n++;
    }
    return n;
}

static void
on_batch_delay(uv_timer_t *timer)
{
    dv_worker_t *self = timer->data;
    dispatch_ready(self);
}

// Groups of ready tasks waiting for more (max_delay_us) that one dispatch
// steps over; past this many, later groups wait their turn.
#define MAX_HELD_GROUPS 8

// While a compute thread is free, the next batch goes to the pool. A
// group (model version, width, priority) whose lead waits for more rows
// (max_delay_us) is stepped over, not waited behind: other models' jobs
// run meanwhile, and a timer wakes the dispatch when the first wait ends.
static void
dispatch_ready(dv_worker_t *self)
{
    uv_idle_stop(&self->dispatcher);
    const task_t *held[MAX_HELD_GROUPS];
    size_t n_held = 0;
    uint64_t now = uv_now(&self->loop), wake_ms = UINT64_MAX;
    while (!self->stopping && self->batches < self->capacity) {
        task_t *lead = NULL; // the first ready task of a group not held
        for (task_t *t = self->ready; t && !lead; t = t->next) {
            bool skip = false;
            for (size_t k = 0; k < n_held && !skip; k++) {
                skip = same_pass(held[k], t);
            }
            lead = skip ? NULL : t;
        }
        if (!lead) {
            break;
        }
        size_t rows = 0, n = batch_count(lead, &rows);
        if (lead->max_delay_us && rows < lead->max_batch_rows) {
            uint64_t waited_us = (now - lead->ready_ms) * 1000;
            if (waited_us < lead->max_delay_us) { // wait for more, once
                uint64_t left = (lead->max_delay_us - waited_us + 999) / 1000;
                wake_ms = now + left < wake_ms ? now + left : wake_ms;
                if (n_held == MAX_HELD_GROUPS) {
                    break;
                }
                held[n_held++] = lead;
                continue;
            }
        }
        batch_t *b = dv_malloc(sizeof *b + n * sizeof(task_t *));
        b->owner = self;
        b->y = NULL;
        b->n = 0;
        b->work.data = b;
        size_t taken_rows = 0;
        task_t **p = &self->ready, *prev = NULL;
        while (*p && b->n < n) {
            task_t *t = *p;
            if (!same_pass(lead, t)) {
                prev = t;
                p = &t->next;
                continue;
            }
            *p = t->next; // unlink
            t->next = NULL;
            if (self->ready_tail == t) {
                self->ready_tail = prev;
            }
            taken_rows += t->raw_rows;
            b->tasks[b->n++] = t;
        }
        dv_assert(b->n == n && taken_rows == rows);
        if (uv_queue_work(&self->loop, &b->work, work_batch, after_batch)) {
            for (size_t i = 0; i < b->n; i++) {
                send_failed(self, b->tasks[i]->job, b->tasks[i]->attempt,
                            DV_EIO, "cannot start the job");
                task_end(self, b->tasks[i]);
            }
            free(b);
            continue;
        }
        self->batches++;
    }
    if (wake_ms != UINT64_MAX) {
        uv_timer_start(&self->batch_delay, on_batch_delay, wake_ms - now, 0);
    } else {
        uv_timer_stop(&self->batch_delay);
    }
}

static void
on_dispatch(uv_idle_t *idle)
{
    dispatch_ready(idle->data);
}

// Run t on the thread pool with model c.
static void
task_start(dv_worker_t *self, task_t *t, cached_t *c)
{
    t->model = c;
    c->refs++;
    c->used = ++self->tick;
    if (!t->evaluate) { // infer: ready; batches form once the socket is read
        t->ready_ms = uv_now(&self->loop);
        t->next = NULL;
        if (self->ready_tail) {
            self->ready_tail->next = t;
        } else {
            self->ready = t;
        }
        self->ready_tail = t;
        uv_idle_start(&self->dispatcher, on_dispatch);
        return;
    }
    t->work.data = t;
    int rc =
        uv_queue_work(&self->loop, &t->work, work_evaluate, after_evaluate);
    if (rc != 0) {
        send_failed(self, t->job, t->attempt, DV_EIO, uv_strerror(rc));
        task_end(self, t);
    }
}

// The model for key arrived (c) or could not be had (c NULL, code/text):
// start or fail every task waiting for it.
static void
release_waiting(
    dv_worker_t *self, const char *key, cached_t *c, int code, const char *text)
{
    task_t **p = &self->waiting;
    while (*p) {
        task_t *t = *p;
        if (strcmp(t->key, key) != 0) {
            p = &t->next;
            continue;
        }
        *p = t->next;
        if (c && memcmp(c->sha256, t->sha256, DV_SHA256_BYTES) == 0) {
            task_start(self, t, c);
        } else {
            send_failed(self, t->job, t->attempt, c ? DV_ECHECKSUM : code,
                        c ? "the model file's checksum is not the one the "
                            "job names"
                          : text);
            task_end(self, t);
        }
    }
}

static void
start_fetch(dv_worker_t *self, const task_t *t)
{
    for (fetch_t *f = self->fetches; f; f = f->next) {
        if (strcmp(f->key, t->key) == 0) {
            return; // already on its way
        }
    }
    fetch_t *f = dv_calloc(1, sizeof *f);
    f->rid = ++self->next_rid;
    snprintf(f->key, sizeof f->key, "%s", t->key);
    snprintf(f->name, sizeof f->name, "%s", t->name);
    f->version = t->version;
    f->next = self->fetches;
    self->fetches = f;
    send_fetch(self, f);
}

static fetch_t *
find_fetch(dv_worker_t *self, uint64_t rid)
{
    for (fetch_t *f = self->fetches; f; f = f->next) {
        if (f->rid == rid) {
            return f;
        }
    }
    return NULL;
}

static void
drop_fetch(dv_worker_t *self, fetch_t *f)
{
    for (fetch_t **p = &self->fetches; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            break;
        }
    }
    free(f->buf);
    free(f);
}

// A model file being verified and decoded on the pool (a large model takes
// long enough to starve heartbeats if the loop thread did it).
typedef struct {
    uv_work_t work;                  // pool request
    dv_worker_t *owner;              // the worker
    fetch_t *fetch;                  // what it answers (owned)
    uint8_t *file;                   // the .drvm bytes (owned)
    size_t len;                      //
    uint8_t sha256[DV_SHA256_BYTES]; // the broker's checksum
    dv_model_t *model;               // result
    int rc;                          //
    dv_error_t err;                  //
} load_t;

static void
work_load(uv_work_t *req)
{
    load_t *l = req->data;
    uint8_t got[DV_SHA256_BYTES];
    dv_sha256(l->file, l->len, got);
    if (memcmp(got, l->sha256, sizeof got) != 0) {
        l->rc = dv_errorf(&l->err, DV_ECHECKSUM,
                          "model %s: the file's SHA-256 does not match the "
                          "broker's (damaged in transit)",
                          l->fetch->key);
        return;
    }
    l->rc = dv_model_decode(&l->model, l->file, l->len, &l->err);
}

static void
after_load(uv_work_t *req, int status)
{
    load_t *l = req->data;
    dv_worker_t *self = l->owner;
    if (status != 0 && l->rc == 0) {
        l->rc = dv_errorf(&l->err, DV_ECANCELED, "model load cancelled");
        dv_model_destroy(&l->model);
    }
    cached_t *c = NULL;
    if (l->rc == 0) {
        c = dv_calloc(1, sizeof *c);
        snprintf(c->key, sizeof c->key, "%s", l->fetch->key);
        memcpy(c->sha256, l->sha256, sizeof c->sha256);
        c->model = l->model;
        c->bytes = l->len;
        c->used = ++self->tick;
        c->next = self->cache;
        self->cache = c;
        self->cached_bytes += c->bytes;
        dv_log(DV_LOG_INFO, "worker", "model %s loaded (%zu bytes)", c->key,
               c->bytes);
    } else {
        dv_log(DV_LOG_WARN, "worker", "model %s not loaded: %s", l->fetch->key,
               l->err.text);
    }
    release_waiting(self, l->fetch->key, c, l->rc, l->err.text);
    if (c) {
        cache_trim(self); // after its tasks took their refs
        if (self->watch) {
            send_heartbeat(self); // the broker learns at once what we hold
        }
    }
    self->loading--;
    drop_fetch(self, l->fetch);
    free(l->file);
    free(l);
}

static void
on_model_data(dv_worker_t *self, const dv_msg_t *m)
{
    fetch_t *f = find_fetch(self, dv_msg_rid(m));
    if (!f || f->loading) {
        return; // an answer to a fetch we gave up on, or a duplicate
    }
    dv_error_t err = {0};
    const uint8_t *sum = NULL;
    size_t sum_len = 0;
    const dv_frame_t *file = dv_msg_frame(m, 1);
    int rc = dv_msg_bin(m, "sha256", &sum, &sum_len, DV_SHA256_BYTES, &err);
    if (rc == 0 && !file) {
        rc = dv_errorf(&err, DV_EFORMAT, "model_data without a file frame");
    }
    load_t *l = NULL;
    if (rc == 0) {
        l = dv_calloc(1, sizeof *l);
        l->owner = self;
        l->fetch = f;
        l->file = dv_try_malloc(file->len ? file->len : 1, 1);
        if (!l->file) {
            rc = dv_errorf(&err, DV_ENOMEM,
                           "model %s: no memory for %zu "
                           "bytes",
                           f->key, file->len);
            free(l);
            l = NULL;
        }
    }
    if (rc == 0) {
        memcpy(l->file, file->data, file->len);
        l->len = file->len;
        memcpy(l->sha256, sum, sizeof l->sha256);
        l->work.data = l;
        f->loading = true;
        self->loading++;
        if (uv_queue_work(&self->loop, &l->work, work_load, after_load) != 0) {
            self->loading--;
            f->loading = false;
            rc = dv_errorf(&err, DV_EIO, "cannot queue the model load");
            free(l->file);
            free(l);
        }
    }
    if (rc) {
        dv_log(DV_LOG_WARN, "worker", "model %s not loaded: %s", f->key,
               err.text);
        release_waiting(self, f->key, NULL, rc, err.text);
        drop_fetch(self, f);
    }
}

// ------------------------------------------------------------ data sets
//
// A train or evaluate job on a stored data set names it; the CSV comes
// from the data cache or is fetched from the broker in chunks
// (fetch_dataset / dataset_data, one chunk in flight), checked against the
// SHA-256 the job names on the pool, then kept (LRU, --data-memory) for the
// next job on it. Tasks wait in waiting_data meanwhile.

static void task_go(dv_worker_t *self, task_t *t);

// The data set t waits for: the first it names that is not here yet.
static dsref_t *
waited_ref(task_t *t)
{
    for (size_t i = 0; i < 2; i++) {
        if (t->ds[i].key[0] && !t->ds[i].entry) {
            return &t->ds[i];
        }
    }
    return NULL;
}

// The data set for key arrived (c) or could not be had (c NULL,
// code/text): go on with or fail every task waiting for it.
static void
release_waiting_data(
    dv_worker_t *self, const char *key, cached_t *c, int code, const char *text)
{
    task_t **p = &self->waiting_data;
    while (*p) {
        task_t *t = *p;
        dsref_t *r = waited_ref(t);
        if (!r || strcmp(r->key, key) != 0) {
            p = &t->next;
            continue;
        }
        *p = t->next;
        t->next = NULL;
        if (c && memcmp(c->sha256, r->sha256, DV_SHA256_BYTES) == 0) {
            r->entry = c;
            c->refs++;
            c->used = ++self->tick;
            task_go(self, t);
        } else {
            send_failed(self, t->job, t->attempt, c ? DV_ECHECKSUM : code,
                        c ? "the data set's checksum is not the one the job "
                            "names"
                          : text);
            task_end(self, t);
        }
    }
}

static void
start_dataset_fetch(dv_worker_t *self, const dsref_t *r)
{
    for (fetch_t *f = self->fetches; f; f = f->next) {
        if (f->dataset && strcmp(f->key, r->key) == 0) {
            return; // already on its way
        }
    }
    fetch_t *f = dv_calloc(1, sizeof *f);
    f->rid = ++self->next_rid;
    f->dataset = true;
    snprintf(f->key, sizeof f->key, "%s", r->key);
    snprintf(f->name, sizeof f->name, "%s", r->name);
    f->version = r->version;
    memcpy(f->sha256, r->sha256, sizeof f->sha256);
    f->total = r->bytes;
    f->next = self->fetches;
    self->fetches = f;
    dv_log(DV_LOG_INFO, "worker", "fetching data set %s (%" PRIu64 " bytes)",
           f->key, f->total);
    send_fetch(self, f);
}

// A complete data set being checked against its SHA-256 on the pool.
typedef struct {
    uv_work_t work;     // pool request
    dv_worker_t *owner; //
    fetch_t *fetch;     // what it completes
    int rc;             //
    dv_error_t err;     //
} dsload_t;

static void
work_dsload(uv_work_t *req)
{
    dsload_t *l = req->data;
    uint8_t got[DV_SHA256_BYTES];
    dv_sha256(l->fetch->buf, (size_t)l->fetch->total, got);
    if (memcmp(got, l->fetch->sha256, sizeof got) != 0) {
        l->rc = dv_errorf(&l->err, DV_ECHECKSUM,
                          "data set %s: the bytes' SHA-256 does not match "
                          "the job's (changed or damaged in transit)",
                          l->fetch->key);
    }
}

static void
after_dsload(uv_work_t *req, int status)
{
    dsload_t *l = req->data;
    dv_worker_t *self = l->owner;
    fetch_t *f = l->fetch;
    if (status != 0 && l->rc == 0) {
        l->rc = dv_errorf(&l->err, DV_ECANCELED, "data set load cancelled");
    }
    cached_t *c = NULL;
    if (l->rc == 0) {
        c = dv_calloc(1, sizeof *c);
        snprintf(c->key, sizeof c->key, "%s", f->key);
        memcpy(c->sha256, f->sha256, sizeof c->sha256);
        c->data = f->buf; // moves
        f->buf = NULL;
        c->bytes = (size_t)f->total;
        c->used = ++self->tick;
        c->next = self->dcache; // first: found before an older namesake
        self->dcache = c;
        self->data_bytes += c->bytes;
        dv_log(DV_LOG_INFO, "worker", "data set %s cached (%zu bytes)", c->key,
               c->bytes);
    } else {
        dv_log(DV_LOG_WARN, "worker", "data set %s not loaded: %s", f->key,
               l->err.text);
    }
    release_waiting_data(self, f->key, c, l->rc, l->err.text);
    cache_trim(self); // after its tasks took their refs
    self->loading--;
    drop_fetch(self, f);
    free(l);
}

// dataset_data {name, version, sha256, bytes, offset} + frame 1: the next
// chunk of a data set we fetch.
static void
on_dataset_data(dv_worker_t *self, const dv_msg_t *m)
{
    fetch_t *f = find_fetch(self, dv_msg_rid(m));
    if (!f || !f->dataset || f->loading) {
        return; // an answer to a fetch we gave up on
    }
    dv_error_t err = {0};
    const uint8_t *sum = NULL;
    size_t sum_len = 0;
    uint64_t bytes = 0, offset = 0;
    const dv_frame_t *chunk = dv_msg_frame(m, 1);
    int rc = dv_msg_bin(m, "sha256", &sum, &sum_len, DV_SHA256_BYTES, &err);
    if (rc == 0) {
        rc = dv_msg_uint(m, "bytes", &bytes, &err);
    }
    if (rc == 0) {
        rc = dv_msg_uint(m, "offset", &offset, &err);
    }
    if (rc == 0 && offset != f->got) {
        return; // a duplicate of a chunk we have (resent on reconnect)
    }
    if (rc == 0 &&
        (bytes != f->total || memcmp(sum, f->sha256, DV_SHA256_BYTES) != 0)) {
        rc = dv_errorf(&err, DV_ECHECKSUM,
                       "data set %s is not the one the job names (changed "
                       "since it was submitted?)",
                       f->key);
    }
    if (rc == 0 && (!chunk || (chunk->len == 0 && f->total > 0) ||
                    chunk->len > f->total - f->got)) {
        rc = dv_errorf(&err, DV_EFORMAT,
                       "dataset_data: a chunk of %zu bytes at %" PRIu64
                       " does not fit a data set of %" PRIu64,
                       chunk ? chunk->len : 0, offset, f->total);
    }
    if (rc == 0 && !f->buf) {
        f->buf = dv_try_malloc(f->total ? (size_t)f->total : 1, 1);
        if (!f->buf) {
            rc = dv_errorf(&err, DV_ENOMEM,
                           "data set %s: no memory for %" PRIu64 " bytes",
                           f->key, f->total);
        }
    }
    if (rc == 0) {
        if (chunk->len) {
            memcpy(f->buf + f->got, chunk->data, chunk->len);
        }
        f->got += chunk->len;
        if (f->got < f->total) {
            send_fetch(self, f); // the next chunk
            return;
        }
        dsload_t *l = dv_calloc(1, sizeof *l);
        l->owner = self;
        l->fetch = f;
        l->work.data = l;
        f->loading = true;
        self->loading++;
        if (uv_queue_work(&self->loop, &l->work, work_dsload, after_dsload) ==
            0) {
            return;
        }
        self->loading--;
        f->loading = false;
        free(l);
        rc = dv_errorf(&err, DV_EIO, "cannot queue the data set check");
    }
    dv_log(DV_LOG_WARN, "worker", "data set %s not loaded: %s", f->key,
           err.text);
    release_waiting_data(self, f->key, NULL, rc, err.text);
    drop_fetch(self, f);
}

// Start t, or park it until what it needs is here: its data set (train,
// evaluate on a stored one), then its model (infer, evaluate).
static void
task_go(dv_worker_t *self, task_t *t)
{
    dsref_t *r;
    while ((r = waited_ref(t)) != NULL) {
        cached_t *d = cache_find(self->dcache, r->key);
        if (!d || memcmp(d->sha256, r->sha256, DV_SHA256_BYTES) != 0) {
            t->next = self->waiting_data;
            self->waiting_data = t;
            start_dataset_fetch(self, r);
            return;
        }
        r->entry = d;
        d->refs++;
        d->used = ++self->tick;
    }
    if (t->train) {
        t->work.data = t;
        if (uv_queue_work(&self->loop, &t->work, work_train, after_train)) {
            send_failed(self, t->job, t->attempt, DV_EIO,
                        "cannot start the job");
            task_end(self, t);
        }
        return;
    }
    cached_t *c = cache_find(self->cache, t->key);
    if (c && memcmp(c->sha256, t->sha256, DV_SHA256_BYTES) == 0) {
        task_start(self, t, c);
        return;
    }
    t->next = self->waiting;
    self->waiting = t;
    start_fetch(self, t);
}

// The broker's `error` answering one of our fetches: its tasks fail.
static bool
fetch_failed(dv_worker_t *self, uint64_t rid, int code, const char *text)
{
    fetch_t *f = rid ? find_fetch(self, rid) : NULL;
    if (!f || f->loading) {
        return false;
    }
    if (f->dataset) {
        release_waiting_data(self, f->key, NULL, code, text);
    } else {
        release_waiting(self, f->key, NULL, code, text);
    }
    drop_fetch(self, f);
    return true;
}

// A `dataset` map {name, version, sha256, bytes} into r.
static int
take_ref(const msgpack_object *ds,
         dsref_t *r,
         const char *what,
         dv_error_t *err)
{
    const msgpack_object *name = dv_msgpack_get(ds, "name");
    const msgpack_object *sha = dv_msgpack_get(ds, "sha256");
    if (!name || name->type != MSGPACK_OBJECT_STR || name->via.str.size == 0 ||
        name->via.str.size > DV_MAX_WIRE_NAME ||
        memchr(name->via.str.ptr, '\0', name->via.str.size) || !sha ||
        sha->type != MSGPACK_OBJECT_BIN ||
        sha->via.bin.size != DV_SHA256_BYTES ||
        !dv_msgpack_uint(dv_msgpack_get(ds, "version"), &r->version) ||
        !dv_msgpack_uint(dv_msgpack_get(ds, "bytes"), &r->bytes) ||
        r->version == 0 || r->bytes > DV_MAX_CSV_BYTES) {
        return dv_errorf(err, DV_EFORMAT,
                         "run: '%s' must be {name, version, sha256, bytes <= "
                         "%zu}",
                         what, DV_MAX_CSV_BYTES);
    }
    memcpy(r->name, name->via.str.ptr, name->via.str.size);
    r->name[name->via.str.size] = '\0';
    memcpy(r->sha256, sha->via.bin.ptr, DV_SHA256_BYTES);
    snprintf(r->key, sizeof r->key, "%s@%" PRIu64, r->name, r->version);
    return 0;
}

// A train or evaluate job's data: a stored data set it names (`dataset`
// {name, version, sha256, bytes}: fetched and cached), or its own CSV in
// frame 1 (copied to raw); a train job's `eval_dataset` likewise.
static int
take_data(const dv_msg_t *m, task_t *t, dv_error_t *err)
{
    if (dv_msg_has(m, "eval_dataset")) {
        int rc = take_ref(dv_msg_get(m, "eval_dataset"), &t->ds[1],
                          "eval_dataset", err);
        if (rc) {
            return rc;
        }
    }
    if (dv_msg_has(m, "dataset")) {
        return take_ref(dv_msg_get(m, "dataset"), &t->ds[0], "dataset", err);
    }
    const dv_frame_t *csv = dv_msg_frame(m, 1);
    if (!csv) {
        return dv_errorf(err, DV_EFORMAT,
                         "run: no CSV in frame 1 and no 'dataset'");
    }
    t->raw = dv_try_malloc(csv->len ? csv->len : 1, 1);
    if (!t->raw) {
        return dv_errorf(err, DV_ENOMEM, "no memory for a %zu byte data set",
                         csv->len);
    }
    memcpy(t->raw, csv->data, csv->len);
    t->raw_rows = csv->len;
    return 0;
}

// A re-run's checkpoint: `resume` {epoch}, the state in frame 2 (dv_train
// checks it: a damaged or foreign one fails the job with the reason).
static int
take_resume(const dv_msg_t *m, task_t *t, dv_error_t *err)
{
    const dv_frame_t *blob = dv_msg_frame(m, 2);
    if (!dv_msgpack_uint(dv_msgpack_get(dv_msg_get(m, "resume"), "epoch"),
                         &t->resume_epoch) ||
        !blob || blob->len == 0) {
        return dv_errorf(err, DV_EFORMAT,
                         "run: 'resume' must be {epoch} with the checkpoint "
                         "in frame 2");
    }
    t->resume = dv_try_malloc(blob->len, 1);
    if (!t->resume) {
        return dv_errorf(err, DV_ENOMEM, "no memory for a %zu byte checkpoint",
                         blob->len);
    }
    memcpy(t->resume, blob->data, blob->len);
    t->resume_len = blob->len;
    dv_log(DV_LOG_INFO, "worker",
           "job %" PRIu64 " resumes from its checkpoint after epoch %" PRIu64,
           t->job, t->resume_epoch);
    return 0;
}

// A run's model map {name, version, sha256}.
static int
parse_model(const dv_msg_t *m, task_t *t, dv_error_t *err)
{
    const msgpack_object *model = dv_msg_get(m, "model");
    const msgpack_object *name = dv_msgpack_get(model, "name");
    const msgpack_object *sha = dv_msgpack_get(model, "sha256");
    if (!name || name->type != MSGPACK_OBJECT_STR ||
        name->via.str.size > DV_MAX_WIRE_NAME || !sha ||
        sha->type != MSGPACK_OBJECT_BIN ||
        sha->via.bin.size != DV_SHA256_BYTES ||
        !dv_msgpack_uint(dv_msgpack_get(model, "version"), &t->version) ||
        memchr(name->via.str.ptr, '\0', name->via.str.size)) {
        return dv_errorf(err, DV_EFORMAT,
                         "run: 'model' must be {name, version, sha256}");
    }
    memcpy(t->name, name->via.str.ptr, name->via.str.size);
    t->name[name->via.str.size] = '\0';
    memcpy(t->sha256, sha->via.bin.ptr, DV_SHA256_BYTES);
    snprintf(t->key, sizeof t->key, "%s@%" PRIu64, t->name, t->version);
    return 0;
}

// An infer run's batch settings (the model map's) and priority.
static int
parse_serving(const dv_msg_t *m, task_t *t, dv_error_t *err)
{
    const msgpack_object *model = dv_msg_get(m, "model");
    // The model's batch settings and the job's priority (1.3; a 1.2 broker
    // sends none: the defaults, and priority 0 for every job).
    uint64_t rows_cap = DV_BATCH_ROWS_DEFAULT, delay = 0;
    const msgpack_object *o = dv_msgpack_get(model, "max_batch_rows");
    if (o && (!dv_msgpack_uint(o, &rows_cap) || rows_cap == 0 ||
              rows_cap > DV_MAX_INFER_ROWS)) {
        return dv_errorf(err, DV_EFORMAT, "run: 'max_batch_rows' must be 1..%d",
                         DV_MAX_INFER_ROWS);
    }
    o = dv_msgpack_get(model, "max_delay_us");
    if (o && (!dv_msgpack_uint(o, &delay) || delay > DV_MAX_BATCH_DELAY_US)) {
        return dv_errorf(err, DV_EFORMAT, "run: 'max_delay_us' must be 0..%d",
                         DV_MAX_BATCH_DELAY_US);
    }
    t->max_batch_rows = (uint32_t)rows_cap;
    t->max_delay_us = delay;
    int64_t prio = 0;
    int rc0 = dv_msg_int_or(m, "priority", 0, &prio, err);
    if (rc0) {
        return rc0;
    }
    t->priority = (int32_t)(prio < INT32_MIN   ? INT32_MIN
                            : prio > INT32_MAX ? INT32_MAX
                                               : prio);
    return 0;
}

// t's input: rows x cols floats, copied from bytes (the frame's).
static int
take_input(
    task_t *t, const uint8_t *bytes, size_t rows, size_t cols, dv_error_t *err)
{
    size_t len = rows * cols * 4;
    t->raw = dv_try_malloc(len ? len : 1, 1);
    if (!t->raw) {
        return dv_errorf(err, DV_ENOMEM, "no memory for a %zu x %zu input",
                         rows, cols);
    }
    if (len) {
        memcpy(t->raw, bytes, len);
    }
    t->raw_rows = rows;
    t->raw_cols = cols;
    return 0;
}

// An infer job's model map, settings and input tensor; an evaluate job's
// model map and data.
static int
parse_infer(const dv_msg_t *m, task_t *t, dv_error_t *err)
{
    int rc = parse_model(m, t, err);
    if (rc || t->evaluate) { // the data: a CSV with the model's target
        return rc ? rc : take_data(m, t, err);
    }
    if ((rc = parse_serving(m, t, err)) != 0) {
        return rc;
    }
    const dv_frame_t *f = NULL;
    size_t rows = 0, cols = 0;
    rc = dv_msg_tensor_desc(m, "input", DV_MAX_INFER_ROWS, &f, &rows, &cols,
                            err);
    return rc ? rc : take_input(t, f->data, rows, cols, err);
}

// A new task for attempt of job, held (in self->tasks).
static task_t *
task_new(dv_worker_t *self, uint64_t job, uint64_t attempt)
{
    task_t *t = dv_calloc(1, sizeof *t);
    t->owner = self;
    t->job = job;
    t->attempt = attempt;
    t->all_next = self->tasks;
    self->tasks = t;
    self->running++;
    return t;
}

// run_batch (1.4): infer jobs of one model version, their inputs one after
// another in frame 1, `jobs` [[job, attempt, rows], ...]. Each becomes a
// task of its own (its own cancel, its own result), exactly as if it came
// in its own `run`; a message that cannot be used fails every job it names.
static void
on_run_batch(dv_worker_t *self, const dv_msg_t *m)
{
    const msgpack_object *list = dv_msg_get(m, "jobs");
    if (!list || list->type != MSGPACK_OBJECT_ARRAY ||
        list->via.array.size > DV_MAX_BATCH_JOBS) {
        dv_log(DV_LOG_WARN, "worker",
               "bad run_batch: 'jobs' must be at most %d [job, attempt, rows]",
               DV_MAX_BATCH_JOBS);
        return;
    }
    size_t n = list->via.array.size, sum = 0;
    uint64_t v[DV_MAX_BATCH_JOBS][3];
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *e = &list->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 3 ||
            !dv_msgpack_uint(&e->via.array.ptr[0], &v[i][0]) ||
            !dv_msgpack_uint(&e->via.array.ptr[1], &v[i][1]) ||
            !dv_msgpack_uint(&e->via.array.ptr[2], &v[i][2]) ||
            v[i][2] > DV_MAX_INFER_ROWS) {
            dv_log(DV_LOG_WARN, "worker",
                   "bad run_batch: jobs[%zu] must be [job, attempt, rows]", i);
            return;
        }
        sum += v[i][2];
    }
    task_t proto;
    memset(&proto, 0, sizeof proto);
    dv_error_t err = {0};
    char kind[16] = "";
    const dv_frame_t *f = NULL;
    size_t rows = 0, cols = 0;
    int rc = dv_msg_str(m, "kind", kind, sizeof kind, &err);
    if (rc == 0 && strcmp(kind, "infer") != 0) {
        rc =
            dv_errorf(&err, DV_EINVAL, "run_batch: kind '%s', not infer", kind);
    }
    if (rc == 0) {
        rc = parse_model(m, &proto, &err);
    }
    if (rc == 0) {
        rc = parse_serving(m, &proto, &err);
    }
    if (rc == 0) {
        rc = dv_msg_tensor_desc(m, "input", DV_MAX_INFER_ROWS, &f, &rows, &cols,
                                &err);
    }
    if (rc == 0 && rows != sum) {
        rc = dv_errorf(&err, DV_ESHAPE,
                       "run_batch: an input of %zu rows for jobs of %zu", rows,
                       sum);
    }
    for (size_t i = 0, at = 0; i < n; i++) {
        if (rc) {
            send_failed(self, v[i][0], v[i][1], rc, err.text);
            continue;
        }
        task_t *t = task_new(self, v[i][0], v[i][1]);
        memcpy(t->key, proto.key, sizeof t->key);
        memcpy(t->name, proto.name, sizeof t->name);
        memcpy(t->sha256, proto.sha256, sizeof t->sha256);
        t->version = proto.version;
        t->priority = proto.priority;
        t->max_batch_rows = proto.max_batch_rows;
        t->max_delay_us = proto.max_delay_us;
        dv_error_t terr = {0};
        if (take_input(t, f->data + at * cols * 4, v[i][2], cols, &terr)) {
            send_failed(self, t->job, t->attempt, terr.code, terr.text);
            task_end(self, t);
        } else {
            task_go(self, t);
        }
        at += v[i][2];
    }
}

static void
on_run(dv_worker_t *self, const dv_msg_t *m)
{
    uint64_t job = 0, attempt = 0;
    char kind[16] = "";
    dv_error_t err = {0};
    int rc = dv_msg_uint(m, "job", &job, &err);
    if (rc == 0) {
        rc = dv_msg_uint(m, "attempt", &attempt, &err);
    }
    if (rc == 0) {
        rc = dv_msg_str(m, "kind", kind, sizeof kind, &err);
    }
    if (rc == 0 && strcmp(kind, "echo") == 0) {
        dv_msgw_t *w = done_header(job, attempt, "done");
        const dv_frame_t *payload = dv_msg_frame(m, 1);
        send_header(self, w, payload, payload ? 1 : 0);
        self->jobs_done++;
        return;
    }
    bool sleep = rc == 0 && strcmp(kind, "sleep") == 0;
    bool train = rc == 0 && strcmp(kind, "train") == 0;
    bool evaluate = rc == 0 && strcmp(kind, "evaluate") == 0;
    if (rc == 0 && !sleep && !train && !evaluate &&
        strcmp(kind, "infer") != 0) {
        rc = dv_errorf(&err, DV_EINVAL,
                       "job kind '%s' is not supported by this worker", kind);
    }
    uint64_t sleep_ms = 0;
    if (sleep && rc == 0) {
        rc = dv_msg_uint(m, "ms", &sleep_ms, &err);
        if (rc == 0 && sleep_ms > DV_MAX_SLEEP_MS) {
            rc = dv_errorf(&err, DV_EINVAL, "sleep: ms must be <= %d",
                           DV_MAX_SLEEP_MS);
        }
    }
    if (rc) {
        send_failed(self, job, attempt, rc, err.text);
        return;
    }
    task_t *t = task_new(self, job, attempt);
    if (train) {
        uint64_t created = 0;
        char task[32] = "";
        t->train = true;
        t->task_kind = -1;
        rc = dv_msg_hyper(m, "train", &t->hyper, &err);
        if (rc == 0 && dv_msg_has(m, "target")) {
            rc = dv_msg_str(m, "target", t->target, sizeof t->target, &err);
        }
        if (rc == 0 && dv_msg_has(m, "task")) {
            rc = dv_msg_str(m, "task", task, sizeof task, &err);
            t->task_kind = strcmp(task, "classification") == 0
                               ? DV_TASK_CLASSIFICATION
                               : DV_TASK_REGRESSION;
        }
        if (rc == 0) {
            rc = dv_msg_uint_or(m, "created_unix", 0, &created, &err);
            t->created_unix = (int64_t)created;
        }
        if (rc == 0) {
            rc = dv_msg_uint_or(m, "checkpoint_ms", 0, &t->checkpoint_ms, &err);
        }
        if (rc == 0 && dv_msg_has(m, "resume")) {
            rc = take_resume(m, t, &err);
        }
        if (rc == 0) {
            rc = take_data(m, t, &err);
        }
        if (rc == 0) {
            uv_mutex_init(&t->ck_lock);
            t->ck_lock_ready = true;
        }
        if (rc) {
            send_failed(self, job, attempt, rc, err.text);
            task_end(self, t);
            return;
        }
        task_go(self, t);
        return;
    }
    if (sleep) {
        const dv_frame_t *payload = dv_msg_frame(m, 1);
        size_t len = payload ? payload->len : 0;
        t->sleep = true;
        t->sleep_ms = sleep_ms;
        t->raw = dv_try_malloc(len ? len : 1, 1);
        t->raw_rows = len;
        t->work.data = t;
        if (t->raw && len) {
            memcpy(t->raw, payload->data, len);
        }
        if (!t->raw ||
            uv_queue_work(&self->loop, &t->work, work_sleep, after_sleep)) {
            send_failed(self, job, attempt, DV_ENOMEM, "cannot start the job");
            task_end(self, t);
        }
        return;
    }
    t->evaluate = evaluate;
    rc = parse_infer(m, t, &err);
    if (rc) {
        send_failed(self, job, attempt, rc, err.text);
        task_end(self, t);
        return;
    }
    task_go(self, t);
}

// The broker asks us to load a model version before jobs need it (an
// alias is moving to it): fetch it like a job would, with no job waiting.
static void
on_preload(dv_worker_t *self, const dv_msg_t *m)
{
    task_t t;
    memset(&t, 0, sizeof t);
    dv_error_t err = {0};
    const uint8_t *sum = NULL;
    size_t sum_len = 0;
    if (dv_msg_str(m, "name", t.name, sizeof t.name, &err) != 0 ||
        dv_msg_uint(m, "version", &t.version, &err) != 0 ||
        dv_msg_bin(m, "sha256", &sum, &sum_len, DV_SHA256_BYTES, &err) != 0) {
        dv_log(DV_LOG_WARN, "worker", "bad preload: %s", err.text);
        return;
    }
    snprintf(t.key, sizeof t.key, "%s@%" PRIu64, t.name, t.version);
    cached_t *c = cache_find(self->cache, t.key);
    if (c && memcmp(c->sha256, sum, DV_SHA256_BYTES) == 0) {
        c->used = ++self->tick;
        return;
    }
    dv_log(DV_LOG_INFO, "worker", "preloading %s", t.key);
    start_fetch(self, &t);
}

// The broker cancelled a job: drop it if it has not started computing
// (waiting for its model, or queued on the pool); one already computing
// finishes and is reported as cancelled (its output is discarded).
static void
on_cancel(dv_worker_t *self, const dv_msg_t *m)
{
    uint64_t job = 0;
    dv_error_t err = {0};
    if (dv_msg_uint(m, "job", &job, &err) != 0) {
        return;
    }
    task_t *prev = NULL; // ready: infer tasks not in a batch yet
    for (task_t **p = &self->ready; *p; prev = *p, p = &(*p)->next) {
        if ((*p)->job == job) {
            task_t *t = *p;
            *p = t->next;
            if (self->ready_tail == t) {
                self->ready_tail = prev;
            }
            send_failed(self, t->job, t->attempt, DV_ECANCELED,
                        "job cancelled");
            task_end(self, t);
            return;
        }
    }
    task_t **lists[2] = {&self->waiting, &self->waiting_data};
    for (size_t i = 0; i < 2; i++) {
        for (task_t **p = lists[i]; *p; p = &(*p)->next) {
            if ((*p)->job == job) {
                task_t *t = *p;
                *p = t->next;
                t->next = NULL;
                send_failed(self, t->job, t->attempt, DV_ECANCELED,
                            "job cancelled");
                task_end(self, t);
                return;
            }
        }
    }
    for (task_t *t = self->tasks; t; t = t->all_next) {
        if (t->job == job) {
            __atomic_store_n(&t->cancelled, true, __ATOMIC_RELAXED);

            uv_cancel((uv_req_t *)&t->work); // fails once it has started
            return;
        }
    }
}

static int
on_ready(dv_zwatch_t *zw, int events, void *arg)
{
    (void)events;
    dv_worker_t *self = arg;
    dv_wire_msg_t in;
    if (dv_wire_recv(dv_zwatch_socket(zw), false, &in) != 1) {
        return 0;
    }
    self->last_heard_ms = uv_now(&self->loop);
    dv_msg_t *m = NULL;
    dv_error_t err = {0};
    if (in.too_many) {
        dv_log(DV_LOG_WARN, "worker", "dropped a message with too many frames");
    } else if (dv_msg_decode(&m, zmq_msg_data(&in.header),
                             zmq_msg_size(&in.header), in.frames, in.n_payload,
                             NULL, &err) != 0) {
        dv_log(DV_LOG_WARN, "worker", "bad message from the broker: %s",
               err.text);
    } else {
        switch (dv_msg_type(m)) {
        case DV_MSG_WELCOME:
            self->broker_minor = dv_msg_minor(m);
            if (!self->ready_printed) {
                printf("READY %s\n", self->endpoint);
                fflush(stdout);
                self->ready_printed = true;
            }
            break;
        case DV_MSG_RUN:
            on_run(self, m);
            break;
        case DV_MSG_RUN_BATCH:
            on_run_batch(self, m);
            break;
        case DV_MSG_MODEL_DATA:
            on_model_data(self, m);
            break;
        case DV_MSG_DATASET_DATA:
            on_dataset_data(self, m);
            break;
        case DV_MSG_CANCEL:
            on_cancel(self, m);
            break;
        case DV_MSG_PRELOAD:
            on_preload(self, m);
            break;
        case DV_MSG_OK:
            if (self->draining && dv_msg_rid(m) == self->bye_rid) {
                self->bye_acked = true;
                maybe_finish_drain(self);
            }
            break;
        case DV_MSG_ERROR: {
            int code = DV_EFORMAT;
            char text[DV_ERROR_TEXT_MAX] = "";
            dv_msg_error(m, &code, text, sizeof text, &err);
            if (!strstr(text, "register first") &&
                fetch_failed(self, dv_msg_rid(m), code, text)) {
                break;
            }
            dv_log(DV_LOG_WARN, "worker", "broker says %s: %s",
                   dv_err_name(code), text);
            if (strstr(text, "register first") && !self->draining) {
                send_register(self); // the broker restarted or forgot us
                for (fetch_t *f = self->fetches; f; f = f->next) {
                    if (!f->loading) {
                        send_fetch(self, f); // refused before we registered
                    }
                }
            }
            break;
        }
        default:
            break; // heartbeat and anything newer: a sign of life is enough
        }
    }
    dv_msg_destroy(&m);
    dv_wire_msg_close(&in);
    return 1;
}

static void
on_closed_reconnect(void *arg)
{
    dv_worker_t *self = arg;
    zmq_close(self->sock);
    self->sock = NULL;
    if (self->stopping) {
        return;
    }
    dv_error_t err = {0};
    if (open_socket(self, &err) != 0) {
        dv_log(DV_LOG_ERROR, "worker", "%s", err.text);
        uv_stop(&self->loop);
        return;
    }
    self->last_heard_ms = uv_now(&self->loop);
    send_register(self);
    for (fetch_t *f = self->fetches; f; f = f->next) {
        if (!f->loading) {
            send_fetch(self, f); // the old socket's requests are gone
        }
    }
}

static void
send_heartbeat(dv_worker_t *self)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_HEARTBEAT, 0);
    dv_msgw_uint(w, "running", self->running);
    write_models(self, w);
    send_header(self, w, NULL, 0);
}

static void
on_heartbeat(uv_timer_t *t)
{
    dv_worker_t *self = t->data;
    uint64_t silent = uv_now(&self->loop) - self->last_heard_ms;
    uint64_t limit = (uint64_t)self->heartbeat_ms * self->liveness;
    if (self->draining && !self->bye_acked &&
        uv_now(&self->loop) - self->bye_ms > limit) {
        // No answer to our bye: the broker is gone; nothing more will come.
        self->bye_acked = true;
        maybe_finish_drain(self);
    }
    // Messages waiting unread (the loop was busy) may be signs of life:
    // give them a second period, no more.
    int events = 0;
    size_t elen = sizeof events;
    if (self->sock &&
        zmq_getsockopt(self->sock, ZMQ_EVENTS, &events, &elen) == 0 &&
        (events & ZMQ_POLLIN)) {
        limit *= 2;
    }
    if (self->watch && silent > limit) {
        dv_log(DV_LOG_WARN, "worker",
               "no word from the broker for %llu ms: reconnecting%s",
               (unsigned long long)silent,
               self->ready_printed ? ""
               : self->curve
                   ? " (never welcomed: if the broker refuses our key, its "
                     "audit log says why; check --broker-key)"
                   : " (never welcomed: a broker running CURVE needs --key "
                     "and --broker-key)");
        dv_zwatch_close(self->watch, on_closed_reconnect, self);
        self->watch = NULL;
        return;
    }
    if (self->watch) {
        send_heartbeat(self);
    }
}

static void
on_signal(uv_signal_t *s, int signum)
{
    dv_worker_t *self = s->data;
    if (self->draining) {
        dv_log(DV_LOG_WARN, "worker", "second signal: stopping now");
        dv_worker_stop(self);
        return;
    }
    dv_log(DV_LOG_INFO, "worker",
           "%s: draining (%zu jobs to finish, no new ones)",
           signum == SIGINT ? "SIGINT" : "SIGTERM", self->running);
    self->draining = true;
    self->bye_rid = ++self->next_rid;
    self->bye_ms = uv_now(&self->loop);
    dv_msgw_t *w = dv_msgw_new(DV_MSG_BYE, self->bye_rid);
    dv_msgw_str(w, "reason", "stopping");
    dv_msgw_uint(w, "running", self->running);
    send_header(self, w, NULL, 0);
    maybe_finish_drain(self);
}

// CURVE: our key pair from key (a .key file) and the broker's public key
// from bkey (a .pub file, or the key in Z85).
static int
load_keys(dv_worker_t *self, const char *key, const char *bkey, dv_error_t *err)
{
    if (!key || !*key || !bkey || !*bkey) {
        return dv_errorf(err, DV_EINVAL,
                         "CURVE needs both --key FILE.key and --broker-key "
                         "FILE.pub (or DROVER_KEY and DROVER_BROKER_KEY)");
    }
    dv_key_t k;
    int rc = dv_key_load(&k, key, err);
    if (rc) {
        return rc;
    }
    if (!k.has_secret) {
        dv_key_clear(&k);
        return dv_errorf(err, DV_EINVAL,
                         "%s holds no secret key: give the .key file", key);
    }
    memcpy(self->public_key, k.public_key, 32);
    memcpy(self->secret_key, k.secret_key, 32);
    snprintf(self->key_id, sizeof self->key_id, "%s", k.id);
    dv_key_clear(&k);
    struct stat st;
    if (strlen(bkey) == 40 && stat(bkey, &st) != 0) {
        if (!zmq_z85_decode(self->broker_key, bkey)) {
            return dv_errorf(err, DV_EINVAL,
                             "--broker-key '%s' is neither a file nor a Z85 "
                             "key",
                             bkey);
        }
    } else {
        rc = dv_key_load(&k, bkey, err);
        if (rc) {
            return rc;
        }
        memcpy(self->broker_key, k.public_key, 32);
        dv_key_clear(&k);
    }
    self->curve = true;
    return 0;
}

int
dv_worker_open(dv_worker_t **out, const dv_worker_opts_t *opts, dv_error_t *err)
{
    dv_worker_t *self = dv_calloc(1, sizeof *self);
    snprintf(self->endpoint, sizeof self->endpoint, "%s",
             opts->broker_endpoint);
    if (opts->name) {
        snprintf(self->name, sizeof self->name, "%s", opts->name);
    } else {
        char host[64] = "worker";
        gethostname(host, sizeof host - 1);
        snprintf(self->name, sizeof self->name, "%.64s-%ld", host,
                 (long)getpid());
    }
    self->capacity = opts->capacity ? opts->capacity : 1;
    self->prefetch = opts->prefetch;
    self->train_slots = opts->train_slots    ? opts->train_slots
                        : self->capacity > 1 ? self->capacity - 1
                                             : 1;
    for (const char *p = opts->queues; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char name[DV_MAX_WIRE_NAME + 1];
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        bool valid = len > 0 && len <= DV_MAX_WIRE_NAME;
        for (size_t i = 0; valid && i < len; i++) {
            valid = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
                           "YZ0123456789._-",
                           name[i]) != NULL;
        }
        if (!valid) {
            dv_errorf(err, DV_EINVAL,
                      "--queues: '%.*s' is not a queue name "
                      "([A-Za-z0-9._-]+)",
                      (int)(len < 200 ? len : 200), p);
            dv_strs_free(&self->queues, self->n_queues);
            free(self);
            return DV_EINVAL;
        }
        self->queues =
            dv_realloc(self->queues, (self->n_queues + 1) * sizeof(char *));
        self->queues[self->n_queues++] = dv_strdup(name);
        p = end ? end + 1 : p + len;
    }

    const char *key = opts->key ? opts->key : getenv("DROVER_KEY");
    const char *bkey =
        opts->broker_key ? opts->broker_key : getenv("DROVER_BROKER_KEY");
    if ((key && *key) || (bkey && *bkey)) {
        int krc = load_keys(self, key, bkey, err);
        if (krc) {
            dv_strs_free(&self->queues, self->n_queues);
            free(self);
            return krc;
        }
    }
    self->heartbeat_ms = opts->heartbeat_ms ? opts->heartbeat_ms : 1000;
    self->liveness = opts->liveness ? opts->liveness : 3;
    self->model_budget =
        opts->model_memory ? opts->model_memory : (size_t)1 << 30;
    self->data_budget = opts->data_memory ? opts->data_memory : (size_t)1 << 30;
    // Compute threads: one pool thread per concurrent job. libuv reads this
    // once, when the pool first starts; an operator's setting wins.
    char pool[16];
    snprintf(pool, sizeof pool, "%u",
             self->capacity < 1024 ? self->capacity : 1024);
    setenv("UV_THREADPOOL_SIZE", pool, 0);
    // capacity jobs at once, each sgemm on this job's share of the cores, so
    // jobs x BLAS threads never oversubscribe the host (docs/ARCHITECTURE.md,
    // BLAS threads). Logged: an operator checks what a worker applied.
    dv_blas_set_threads(opts->blas_threads
                            ? (int)opts->blas_threads
                            : dv_blas_threads_share(self->capacity));
    dv_log(DV_LOG_INFO, "worker",
           "compute: %u jobs at once, %d BLAS threads each, %ld cores online",
           self->capacity, dv_blas_threads(), sysconf(_SC_NPROCESSORS_ONLN));
    self->ctx = zmq_ctx_new();
    uv_loop_init(&self->loop);
    int rc = open_socket(self, err);
    if (rc) {
        dv_worker_destroy(&self);
        return rc;
    }
    uv_timer_init(&self->loop, &self->heartbeat);
    uv_signal_init(&self->loop, &self->sigint);
    uv_signal_init(&self->loop, &self->sigterm);
    uv_async_init(&self->loop, &self->progress, on_progress);
    uv_idle_init(&self->loop, &self->dispatcher);
    uv_timer_init(&self->loop, &self->batch_delay);
    self->heartbeat.data = self->sigint.data = self->sigterm.data = self;
    self->progress.data = self->dispatcher.data = self->batch_delay.data = self;
    *out = self;
    return 0;
}

int
dv_worker_run(dv_worker_t *self)
{
    self->last_heard_ms = uv_now(&self->loop);
    send_register(self);
    uv_timer_start(&self->heartbeat, on_heartbeat, self->heartbeat_ms,
                   self->heartbeat_ms);
    uv_signal_start(&self->sigint, on_signal, SIGINT);
    uv_signal_start(&self->sigterm, on_signal, SIGTERM);
    uv_run(&self->loop, UV_RUN_DEFAULT);
    return 0;
}

void
dv_worker_stop(dv_worker_t *self)
{
    self->stopping = true;
    uv_stop(&self->loop);
}

void
dv_worker_destroy(dv_worker_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_worker_t *self = *self_p;
    if (self->watch) {
        dv_zwatch_close(self->watch, NULL, NULL);
    }
    uv_handle_t *handles[] = {
        (uv_handle_t *)&self->heartbeat,  (uv_handle_t *)&self->sigint,
        (uv_handle_t *)&self->sigterm,    (uv_handle_t *)&self->progress,
        (uv_handle_t *)&self->dispatcher, (uv_handle_t *)&self->batch_delay};
    for (size_t i = 0; i < sizeof handles / sizeof *handles; i++) {
        if (handles[i]->loop == &self->loop && !uv_is_closing(handles[i])) {
            uv_close(handles[i], NULL);
        }
    }
    // Runs close callbacks and waits for computing tasks: their
    // after-work callbacks free them (the socket is still open).
    uv_run(&self->loop, UV_RUN_DEFAULT);
    uv_loop_close(&self->loop);
    task_t **held[2] = {&self->waiting, &self->ready};
    for (size_t i = 0; i < 2; i++) {
        while (*held[i]) {
            task_t *t = *held[i];
            *held[i] = t->next;
            task_free(t);
        }
    }
    while (self->fetches) {
        fetch_t *f = self->fetches;
        self->fetches = f->next;
        free(f->buf);
        free(f);
    }
    while (self->waiting_data) {
        task_t *t = self->waiting_data;
        self->waiting_data = t->next;
        task_free(t);
    }
    cached_t *lists[2] = {self->cache, self->dcache};
    for (size_t i = 0; i < 2; i++) {
        while (lists[i]) {
            cached_t *c = lists[i];
            lists[i] = c->next;
            cached_free(c);
        }
    }
    if (self->sock) {
        zmq_close(self->sock);
    }
    zmq_ctx_term(self->ctx);
    dv_strs_free(&self->queues, self->n_queues);
    free(self);
    *self_p = NULL;
}
