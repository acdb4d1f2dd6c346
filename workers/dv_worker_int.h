// dv_worker_int — what the worker's files share (not installed; included
// only by workers/dv_worker*.c): the types of the worker, its tasks, its
// caches and fetches, and the functions one file calls in another.
//
// The files (docs/ARCHITECTURE.md, Worker):
//   dv_worker.c        the loop: socket, register, heartbeats, signals,
//                      drain, cancel and preload, open/run/stop
//   dv_worker_runs.c   a `run` or `run_batch` becomes tasks (parsing, checks)
//   dv_worker_cache.c  models and data sets: caches, fetches, loads; a task
//                      starts once what it needs is here (wk_task_go)
//   dv_worker_infer.c  dynamic batching: ready list, forward passes, `done`
//                      and `done_batch`
//   dv_worker_tasks.c  a task's life and the other kinds: sleep, evaluate,
//                      train (progress, checkpoints)
// Threads: everything runs on the loop thread except the work_* functions,
// which run on libuv's pool and touch only their task (and atomics).
#ifndef DV_WORKER_INT_H
#define DV_WORKER_INT_H

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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
#include "dv_pool.h"
#include "dv_proto.h"
#include "dv_sha256.h"
#include "dv_spare.h"
#include "dv_train.h"
#include "dv_wire.h"
#include "dv_worker.h"
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

// What only train and evaluate jobs need (most of a task's bytes: a
// one-row infer task used to be 3.2 KiB, zeroed, per job).
typedef struct {
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
} task_train_t;

// A received frame whose bytes infer tasks read in place, the ZeroMQ
// message itself (no copy between the socket and the forward pass): held
// until the last task reading it ends. Loop thread only (pool threads read
// the bytes of a task they run, which holds a ref).
typedef struct {
    zmq_msg_t msg; // the frame, moved out of the received message
    uint32_t refs; // the taker's, plus one per task reading it
} inbuf_t;

typedef struct task task_t;
struct task {
    dv_work_t work;                  // thread-pool request
    dv_worker_t *owner;              // the worker
    uint64_t job, attempt;           // from `run`
    char key[KEY_BYTES];             // model wanted
    char name[DV_MAX_WIRE_NAME + 1]; // its name ...
    uint64_t version;                // ... and version
    uint8_t sha256[DV_SHA256_BYTES]; // expected file checksum
    uint64_t model_bytes;            // the file's size (run, 1.9; 0: unsaid)
    cached_t *model;                 // while computing (a ref is held)
    dv_tensor_t *input;              // owned, or &view (set on the pool)
    dv_tensor_t view;                // the input as floats in raw, in place
    uint8_t *raw;                    // input frame bytes: owned, or in
                                     //   inbuf's frame (then not owned)
    size_t raw_spare;                // raw's size in owner->spare (0: free())
    inbuf_t *inbuf;                  // the frame raw lies in (a ref), or NULL
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
    task_t *all_next;                // every task held (self->tasks) ...
    task_t **all_pprev;              // ... and what points at it: O(1) to
                                     //   unlink (a pass ends hundreds)
    bool cancelled;                  // the broker cancelled it (atomic)
    bool released;                   // given back unstarted (draining):
                                     //   its pool work was cancelled
    bool sleep;                      // a `sleep` job: raw is its payload
    uint64_t sleep_ms;               // how long
    bool train;                      // a `train` job: raw is the CSV
    bool evaluate;                   // an `evaluate` job: raw is the CSV
    task_train_t *tr;                // train and evaluate jobs: their
                                     //   part (owned); NULL for others
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
    bool held;                       // a model's, not sent yet: waits its
                                     //   turn (wk_model_admit)
    uint8_t sha256[DV_SHA256_BYTES]; // data set: what the job expects ...
    uint64_t total;                  // ... its size (a model's: as the run
                                     //   said, 0: unsaid)
    uint8_t *buf;                    // chunks so far (owned)
    uint64_t got;                    //
    fetch_t *next;                   // list
};

// A `done` (or `done_batch`) sent to a broker group: kept for a liveness
// period, so that one a leader took but died before committing reaches
// the next leader too (sent again after its welcome).
typedef struct kept kept_t;
struct kept {
    uint64_t sent_ms;                 // loop time
    uint8_t *header;                  // owned
    size_t header_len;                //
    dv_frame_t frames[DV_MAX_FRAMES]; // owned data
    size_t n;                         //
    kept_t *next;                     //
};

struct dv_worker {
    uv_loop_t loop;         // the worker's loop
    dv_pool_t *pool;        // compute threads, capacity of them (owned)
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
    uint64_t register_rid;  // the last register's request id
    int refused;            // DV_EPERM: the broker refused our register
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
    task_t *waiting_data;   // tasks waiting for a data set, FIFO
    bool admitting;         // in wk_data_admit
    uint64_t tick;          // LRU clock
    task_t *waiting;        // tasks waiting for a model
    task_t *ready;          // infer tasks waiting for a compute thread, FIFO
    task_t *ready_tail;     //   (linked by next)
    uint32_t batches;       // forward passes on the pool
    uv_idle_t dispatcher;   // forms batches once the socket is read
    uv_timer_t batch_delay; // a batch waiting for more (max_delay_us)
    uint64_t inline_runs;   // passes run on the loop thread
    uint64_t in_place;      // inputs read where they arrived (inbuf_t)
    uint64_t in_place_runs; // passes of several stacked there (no copy)
    uint64_t batches_run;   // counters for the log
    uint64_t batched_jobs;  // ...
    task_t *tasks;          // every task held
    dv_spare_t *spare;      // freed tasks and inputs (loop thread only)
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
    // A broker group (protocol 1.6): --broker may list its members' worker
    // endpoints; DV_ENOTLEADER's `leader` names the one to use.
    char **eps;        // the list (owned)
    size_t n_eps;      //
    size_t ep_at;      // the entry in use
    char hint[256];    // where to go next ("": the next entry)
    char left[256];    // the member last left because its connection
                       //   dropped or was refused ("": none since the
                       //   last welcome)
    uint64_t hint_ms;  // loop time we last followed a hint at once
    bool group;        // a list, or a member said DV_ENOTLEADER
    bool resend_dones; // send `kept` after the welcome (reconnected, or
                       //   a done kept while unwelcomed)
    kept_t *kept;      // dones sent lately, newest first (group only)
    // With a list, the connection is watched (zmq_socket_monitor): a
    // member that dies (its connection drops) or is not there (connect
    // refused) is left at once, not after `liveness` silent heartbeats.
    void *mon_sock;         // PAIR reading sock's monitor events, or NULL
    dv_zwatch_t *mon_watch; // mon_sock in the loop
    unsigned mon_gen;       // makes each monitor's inproc name unique
    uv_timer_t move_on;     // leaves the member in use when it fires
    uint64_t member_ms;     // loop time we came to the member in use
    size_t unwelcomed;      // members left since the last welcome
    uint64_t conn;          // this process's sockets so far (register's
                            //   `conn`: the newest one keeps our jobs)
};

// ------------------------------------------------ shared between files
// (each one's contract is in the comment at its definition)

// Give t back to the broker unstarted (`release`, 1.5) and end it.
void wk_give_back(dv_worker_t *self, task_t *t);
// Whether a task arriving while draining goes back (a 1.5 broker takes
// `release`; an older one gets it run): when the tasks held already fill
// the compute threads.
bool wk_gives_back(const dv_worker_t *self);

// dv_worker.c
void wk_send_header(dv_worker_t *self,
                    dv_msgw_t *w,
                    const dv_frame_t *frames,
                    size_t n);
void wk_send_fetch(dv_worker_t *self, const fetch_t *f);
void wk_maybe_finish_drain(dv_worker_t *self);
void wk_send_heartbeat(dv_worker_t *self);

// dv_worker_runs.c. in: the received message m was decoded from (its
// input frame may be kept, see inbuf_t).
void wk_on_run_batch(dv_worker_t *self, const dv_msg_t *m, dv_wire_msg_t *in);
void wk_on_run(dv_worker_t *self, const dv_msg_t *m, dv_wire_msg_t *in);

// dv_worker_cache.c
cached_t *wk_cache_find(cached_t *list, const char *key);
void wk_cached_free(cached_t *c);
void wk_cache_trim(dv_worker_t *self);
void wk_start_fetch(dv_worker_t *self, const task_t *t);
void wk_on_model_data(dv_worker_t *self, const dv_msg_t *m, dv_wire_msg_t *in);
void wk_on_dataset_data(dv_worker_t *self, const dv_msg_t *m);
void wk_task_go(dv_worker_t *self, task_t *t);
void wk_data_admit(dv_worker_t *self);
void wk_model_admit(dv_worker_t *self);
bool
wk_fetch_failed(dv_worker_t *self, uint64_t rid, int code, const char *text);

// dv_worker_infer.c
void wk_task_start(dv_worker_t *self, task_t *t, cached_t *c);

// dv_worker_tasks.c
dv_msgw_t *wk_done_header(uint64_t job, uint64_t attempt, const char *state);
void wk_task_free(task_t *t);
inbuf_t *wk_inbuf_take(dv_wire_msg_t *in, size_t i);
bool wk_inbuf_floats(const inbuf_t *b);
void wk_inbuf_release(inbuf_t **b_p);
void wk_send_failed(dv_worker_t *self,
                    uint64_t job,
                    uint64_t attempt,
                    int code,
                    const char *text);
void wk_send_done(dv_worker_t *self,
                  const task_t *t,
                  dv_msgw_t *w,
                  const dv_frame_t *frames,
                  size_t n);
void wk_task_end(dv_worker_t *self, task_t *t);
void wk_work_sleep(dv_work_t *req);
void wk_after_sleep(dv_work_t *req, int status);
void wk_work_evaluate(dv_work_t *req);
void wk_after_evaluate(dv_work_t *req, int status);
void wk_on_progress(uv_async_t *a);
void wk_work_train(dv_work_t *req);
void wk_after_train(dv_work_t *req, int status);

#endif
