// dv_broker_int — the broker's own types and the functions its modules
// share (not installed; included only by broker/*.c).
//
// Owns: struct dv_broker and the records it holds (job_t, worker_t, kept_t,
// cursor_t, ...); the declarations of dv_broker.c's shared functions (the
// jobs table, replies to clients). Each module's own header (dv_results.h,
// dv_dead.h, ...) declares what it gives the others.
#ifndef DV_BROKER_INT_H
#define DV_BROKER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <uv.h>

#include "dv_audit.h"
#include "dv_auth.h"
#include "dv_broker.h"
#include "dv_datasets.h"
#include "dv_disk.h"
#include "dv_http.h"
#include "dv_monitor.h"
#include "dv_msgpack.h"
#include "dv_names.h"
#include "dv_outq.h"
#include "dv_owners.h"
#include "dv_pool.h"
#include "dv_proto.h"
#include "dv_records.h"
#include "dv_registry.h"
#include "dv_repl.h"
#include "dv_sched.h"
#include "dv_spare.h"
#include "dv_store.h"
#include "dv_timeq.h"
#include "dv_u64map.h"
#include "dv_wire.h"
#include "dv_zwatch.h"

#define ROUTE_MAX            256 // ZeroMQ routing ids are at most 255 bytes
#define DEFAULT_MAX_ATTEMPTS 3   // per job, when submit does not say
// Results kept for fetching by id (result_get) after they are pushed:
// DV_MAX_KEPT_RESULTS / DV_MAX_KEPT_BYTES (dv_limits.h), for result_ttl_ms.
#define KEPT_BUCKETS 65536 // hash buckets (power of two)

// One allocation per kept result: the fields, then the worker's name
// (NUL-terminated), then the payload frames back to back. Results are
// long-lived and numerous; one compact block each keeps the heap from
// fragmenting against the broker's per-message allocations.
typedef struct kept kept_t;
struct kept {
    uint64_t id;                       // job id
    uint64_t at_ms;                    // loop time it finished
    uint64_t unix_ms;                  // wall-clock time it finished
    kept_t *hnext;                     // hash chain ...
    kept_t **hpprev;                   // ... and what points at k in it
    kept_t *newer;                     // FIFO by finish time
    char *text;                        // failure reason (owned); NULL if done
    int code;                          // error when failed
    uint32_t attempts;                 // attempts it took
    uint32_t frame_len[DV_MAX_FRAMES]; // payload frame sizes
    uint8_t n_frames;                  // their count
    bool done;                         // else failed
    uint16_t extra_fields;             // kind-specific result fields ...
    uint32_t extra_len;                // ... packed, after the payloads
    size_t bytes;                      // payload bytes
    uint64_t seq;                      // position in its queue's stream
    uint32_t qidx;                     // its queue (qbytes index + 1; 0: none)
    uint16_t who;                      // the key that submitted it (whos
                                       // index; 0: unknown, e.g. recovered)
    uint8_t kind;                      // its job's dv_rec_kind_t + 1 (0:
                                       //   not known: an older record)
    bool unstored;                     // durable, its commit not done yet:
                                       // not sent to anyone (held_result)
    kept_t *qprev, *qnext;             // its queue's stream, by seq
    uint32_t refs; // the broker's (1 while kept) and one per frame of it
                   // that libzmq still holds (atomic; dv_outq)
    char data[];   // worker name, NUL, payloads, extra fields
};

// One allocation per job: the fields, then the submitter's routing id, the
// queue and model names and the payload, back to back. A job used to carry
// fixed buffers for the longest names (about 600 bytes before its payload);
// with tens of thousands in flight that was most of the broker's memory and
// page faults.
// One failed attempt: what went wrong, where, when.
typedef dv_rec_attempt_t attempt_err_t;

typedef struct job job_t;
struct job {
    uint64_t id;            // broker-assigned, > 0
    uint64_t rid;           // submitter's request id
    job_t *next;            // hash chain
    const char *kind;       // "echo", "infer" (static strings)
    const char *queue;      // queue name (in data)
    const char *model;      // infer: model name, else "" (in data)
    const uint8_t *route;   // submitter's routing id (in data)
    const uint8_t *payload; // frame 1 of the submit (in data, or in zpayload)
    size_t payload_len;     // its length
    zmq_msg_t *zpayload;    // a large frame 1 as received (owned; NULL:
                            //   the payload is in data): sent on to the
                            //   worker as it is, never copied
    uint32_t attempts;      // dispatches so far
    uint32_t max_attempts;  // runs before a lost job fails
    uint32_t model_version; // infer: the version resolved at submit
    uint32_t rows, cols;    // infer: input shape
    uint8_t route_len;      // routing id length (ZeroMQ: <= 255)
    uint8_t client_minor;   // the submit's protocol minor: 1.4 takes
                            //   `results` (several results in a message)
    bool from_many;         // came in a submit_many: acknowledged in an
                            //   accepted_many (a lone submit's caller may
                            //   be waiting for its own `accepted`)
    bool cancelled;         // result sent; kept only until its worker ends
    bool leader_held;       // a group's new leader holds it for the worker
                            //   that may still run it (dv_recover): if no
                            //   worker claims it, that run does not count
    bool finishing;         // train: done, its model being stored (running
                            //   to job_get until its result is recorded)
    bool memory_only;       // durability "none": never written to the store
    bool uncommitted;       // durable, its commit not done: counted in its
                            //   queue's `uncommitted` (dv_broker_job_committed)
    bool spec;              // payload = spec + CSV (train_spec): every train
                            // job, an evaluate job on a stored data set
    uint8_t model_sha[32];  // infer: SHA-256 of the model file
    int32_t priority;       // higher runs first (aged while waiting)
    uint32_t timeout_ms;    // a run longer than this ends it (0: none)
    uint32_t backoff_ms;    // first retry's delay; doubles per retry
    uint32_t sleep_ms;      // a `sleep` job's length
    uint32_t lost;          // runs lost with their worker (quarantine)
    uint32_t n_errors;      // failed attempts recorded
    uint64_t submit_unix;   // wall-clock submit time (ms)
    uint64_t started_unix;  // wall-clock start of its latest attempt (ms;
                            //   0: never sent to a worker)
    uint64_t deadline_unix; // must start by then (ms; 0: no deadline)
    attempt_err_t *errors;  // failed attempts (owned), n_errors of them
    uint32_t p_epoch;       // train: last progress (0: none yet)
    uint32_t p_epochs;      //
    double p_loss;          //
    double p_eval;          // score on its eval set (NAN: none)
    uint64_t p_ms;          //
    uint8_t *ckpt;          // train: the last checkpoint (owned; stored too
    size_t ckpt_len;        //   when durable), sent with a re-run
    uint32_t ckpt_epoch;    //   epochs it holds
    uint32_t ckpt_stored;   //   epochs of the newest one committed (0: none)
    uint16_t who;           // the key that submitted it (whos index; 0:
                            //   plain mode, or recovered)
    dv_spare_t *spare;      // where its block goes back (NULL: free())
    size_t block;           // the bytes its block was asked with
    uint8_t data[];         // route, queue, model, payload
};

// A job in the dead-letter queue: attempts used up, or quarantined.
typedef struct {
    job_t *job;       // the job as it was (owned)
    uint64_t unix_ms; // when it died
    int code;         // its final error
    char *text;       // and reason (owned)
    uint64_t seq;     // 1, 2, ... in the order they died (this run):
                      //   where a dead_list page starts (1.7)
} dead_t;

// Idempotency: a submit's key, per queue and per submitting key (its
// CURVE public key, the scope; "" in plain mode), remembered for the
// window. Scoped, so one tenant's key never answers another's submit.
typedef struct idem idem_t;
struct idem {
    idem_t *hnext;    // hash chain
    idem_t *newer;    // FIFO by time, for expiry
    uint64_t job;     // the job it made
    uint64_t unix_ms; // when
    bool stored;      // has a record in the store
    char key[];       // "QUEUE\0SCOPE\0KEY"
};

// A reply that may only go out once what it reports is stored (cancel).
typedef struct held_reply held_reply_t;
typedef struct { // a checkpoint staged for a commit
    uint64_t job;
    uint32_t epoch;
} ckpt_due_t;
struct held_reply {
    held_reply_t *next;       // FIFO
    uint8_t route[ROUTE_MAX]; // to whom
    size_t route_len;         //
    uint64_t rid;             // their request
    size_t len;               // header bytes
    uint8_t header[];         // the reply header
};

// A durable job's result that goes out once its record is committed: to
// its submitter, or to a client that asked for it meanwhile (result_get).
typedef struct held_result held_result_t;
struct held_result {
    held_result_t *next; // FIFO
    uint64_t id;         // the job (its kept result)
    uint64_t rid;        // the request it answers
    size_t route_len;    // 0: nobody to send it to
    uint8_t route[];     // to whom
};

// Per queue: payload held (backpressure) and what became of its jobs since
// the broker started.
typedef struct {
    char name[DV_MAX_WIRE_NAME + 1]; // queue
    uint64_t bytes;                  // payload bytes of its unfinished jobs
    uint64_t done, failed, expired, cancelled; // outcomes counted
    size_t dead;                               // its jobs in the dead letters
    kept_t *stream_head, *stream_tail;         // its kept results by seq
    uint64_t next_seq;                         // the next result's seq
    struct spill *spills;                      // spilled jobs by priority,
    size_t n_spills;                           //   highest first
    size_t spilled;                            // jobs in them (not skipped)
    size_t uncommitted;     // accepted jobs whose commit is not done: waiting,
                            //   for --max-queued, though not scheduled yet
    size_t recovered;       // jobs in RAM at recovery
    uint64_t seq_stored;    // its stream's seqs up to this are stored (a
                            //   result or a mark): followers get no further
    uint64_t seq_recovered; // the last seq given out before this start
    uint64_t mark_key;      // its DV_STORE_STREAMS record (0: none yet)
    bool mark_due;          // seqs given out since its mark was staged
    uint32_t *fol;          // its consumers followed now (cursor indices):
    uint32_t n_fol;         //   a result is pumped to these only
    uint32_t cap_fol;       //
} qbytes_t;

// Jobs of one priority of a queue that wait in the store only (the queue
// had SPILL_WINDOW jobs in memory already): what it takes to load them
// back and answer their submitter, FIFO. Entries: id (u64), rid (u64),
// route length (u8), route.
typedef struct spill {
    int32_t priority;
    uint8_t *buf;
    size_t head, len, cap; // live bytes are buf[head..len)
} spill_t;

// A result stream consumer: a named cursor on a queue's finished results.
// Its position (acked) is stored; the connection following it is not.
typedef struct {
    uint64_t key;                        // store key (DV_STORE_CURSORS)
    uint32_t qidx;                       // the queue (qbytes index + 1)
    char consumer[DV_MAX_WIRE_NAME + 1]; // its name
    uint64_t acked;                      // every seq <= this is consumed
    uint64_t sent;                       // highest seq sent this connection
    const kept_t *pos;                   // the kept result of `sent` (NULL:
                                         // before the stream's head)
    uint8_t route[ROUTE_MAX];            // the following connection
    size_t route_len;                    // 0: nobody follows now
    uint64_t rid;                        // its follow request
    uint32_t window;                     // unacked results in flight, max
    uint32_t inflight;                   // sent, not acked
    uint32_t fol_at;                     // its place in its queue's fol + 1
                                         //   (0: nobody follows it)
    char owner[DV_KEY_ID_MAX + 1];       // the key that first followed it
                                         // ("": none yet, plain mode)
    char follower[DV_KEY_ID_MAX + 1];    // the following connection's key
                                         // ("": plain mode)
} cursor_t;

typedef struct {
    uint8_t route[ROUTE_MAX];        // worker's routing id
    size_t route_len;                // its length
    uint64_t handle;                 // id in dv_sched
    char name[DV_MAX_WIRE_NAME + 1]; // from register
    uint64_t last_seen_ms;           // loop time of its last message
    uint32_t capacity;               // jobs at once
    char **models;                   // "NAME@VERSION" it holds
    size_t n_models;                 // their count
    char **datasets;                 // data sets it holds, "NAME@VERSION"
    size_t n_datasets;               //
    bool draining;                   // said bye: finishing, no new jobs
    char key[DV_KEY_ID_MAX + 1];     // the key it registered with ("":
                                     //   plain mode)
    char **queues;                   // the queues it asked for (owned;
    size_t n_queues;                 //   none: every queue its key allows)
    unsigned minor;                  // its protocol minor (register's v):
                                     //   1.4 takes run_batch
    uint64_t cpu_ms, rss_bytes;      // its process, from heartbeats (1.5)
    uint64_t jobs_done, jobs_failed; //   and what it ran
    uint32_t concurrency;            // its compute threads (register,
                                     //   1.5; 0: not said)
    uint32_t computing;              // jobs on them (heartbeat, 1.5)
    bool computing_known;            // a heartbeat said computing
    uint64_t conn;                   // register's `conn` (1.6): the
                                     //   worker process's connection
                                     //   number (0: not said)
    uint64_t gone_ms;                // its connection closed at this
                                     //   loop time (0: open)
    uint32_t fetches;                // fetches waiting or being read
    bool fetch_reading;              // one on the pool (one at a time)
    bool fetch_held;                 // they wait for its unread bytes
} worker_t;

// A key that submitted jobs, and how many of them are unfinished (in
// memory) for --max-inflight. Jobs point at it by index (job_t.who).
typedef struct who_s {
    char id[DV_KEY_ID_MAX + 1];
    uint64_t inflight;
} who_t;

struct dv_broker {
    uv_loop_t loop;            // the broker's loop
    dv_pool_t *pool;           // disk and bulk work off the loop (owned)
    void *ctx;                 // ZeroMQ context
    void *clients;             // ROUTER for clients
    void *workers_sock;        // ROUTER for workers
    dv_outq_t *outq;           // reply bytes queued per client
    dv_outq_t *wout;           // fetch reply bytes queued per worker
    struct fetch_s *fq_head;   // fetches waiting their turn (dv_fetch)
    struct fetch_s *fq_tail;   //
    uv_timer_t fetch_timer;    // looks at them again while bytes drain
    struct gather *coalesce;   // while a done_batch is handled:
                               // results gathered per client
    struct gather *gather_acc; // while a submit_many or a commit is
                               // handled: acceptances per client
    bool in_submit_many;       // serving a submit_many's requests
    uint64_t dropped_requests; // from clients far over their reply bytes
    dv_zwatch_t *client_watch; // clients in the loop
    dv_zwatch_t *worker_watch; // workers in the loop
    uv_timer_t heartbeat;      // liveness and heartbeats
    uv_timer_t gone_timer;     // workers whose connection closed
    uv_signal_t sigint;        // stop on SIGINT
    uv_signal_t sigterm;       // stop on SIGTERM
    char client_ep[256];       // bound client endpoint
    char worker_ep[256];       // bound worker endpoint
    uint32_t heartbeat_ms;     // interval
    uint32_t liveness;         // intervals before dead
    dv_sched_t *sched;         // what runs where
    dv_spare_t *job_spare;     // freed job blocks for reuse (DV_SPARE_BYTES)
    job_t **jobs;              // hash buckets by id
    size_t n_buckets;          // power of two
    size_t n_jobs;             // jobs in the table
    size_t n_finishing;        //   of them finishing (job_t.finishing)
    uint64_t next_job;         // next id
    worker_t *workers;         // connected workers
    size_t n_workers;          // their count
    uint32_t *by_route;        // worker index + 1 by routing id, and by
    uint32_t *by_handle;       //   handle: open addressing, 0 empty
    size_t by_cap;             //   (dv_broker_workers_index)
    uint64_t next_handle;      // next worker handle
    bool running;              // inside dv_broker_run
    kept_t **kept;             // finished results by id (hash)
    kept_t *kept_oldest;       // FIFO head: evicted first
    kept_t *kept_newest;       // FIFO tail
    size_t n_kept;             // results kept
    size_t kept_bytes;         // their payload bytes
    uint64_t result_ttl_ms;    // how long results are kept
    dv_registry_t *registry;   // models
    dv_store_t *store;         // durable jobs/results (NULL: memory only)
    uv_timer_t commit_timer;   // group commit at the next loop turn
    bool commit_armed;         // the timer is started
    bool committing;           // a batch is being written on the pool
    unsigned repl_in_flight;   // a group's entries proposed, not committed
    uint64_t max_queued;       // jobs waiting per queue
    uint64_t max_queued_bytes; // payload bytes of a queue's unfinished jobs
    qbytes_t *qbytes;          // those bytes, per queue
    dv_names_t *qnames;        // queue name -> index in qbytes
    size_t q_last;             // the queue found last (index + 1; 0: none)
    size_t n_spilled;          // the queues' spilled, added up
    size_t n_qbytes;           //
    size_t cap_qbytes;         // room in qbytes (grows by doubling)
    held_reply_t *held;        // replies waiting for the next commit
    held_reply_t **held_tail;  // where the next goes (NULL: at held)
    struct push_s *parked;     // stored versions waiting for lower ones
    ckpt_due_t *ckpts_due;     // checkpoints staged for the next commit
    size_t n_ckpts_due, cap_ckpts_due; //
    held_result_t *held_res;           // results waiting for their commit
    held_result_t **held_end;  // where the next goes (NULL: at held_res)
    uint64_t *pending;         // submits waiting for their commit
    size_t n_pending;          //
    size_t cap_pending;        //
    dv_timeq_t *timeq;         // backoffs, deadlines, run timeouts
    uv_timer_t timer;          // fires at the earliest of them
    uint64_t timer_at;         // when it is armed for (0: not armed)
    size_t timers_compact_at;  // timeq entries before stale ones go
    dead_t *dead;              // the dead-letter queue, oldest first:
    size_t n_dead;             //   dead[0..n_dead) = dead_block[dead_head
    dead_t *dead_block;        //   ..]; the room before dead_head is the
    size_t dead_head;          //   dropped oldest's (dv_dead_trim)
    size_t cap_dead;           //   dead_block's entries
    uint64_t dead_seq;         //   the last dead letter's seq
    dv_u64map_t *dead_ids;     //   a dead letter's job id -> its seq
    uint64_t dead_bytes;       // their payload bytes
    uint64_t max_dead;         // --max-dead (DV_MAX_DEAD_JOBS)
    uint64_t max_dead_bytes;   // --max-dead-bytes (DV_MAX_DEAD_BYTES)
    uint64_t max_stored_bytes; // --max-stored-bytes (0: the default)
    uint64_t min_free_disk;    // --min-free-disk (0: the default)
    uint64_t submit_free_disk; // --submit-free-disk (0: the default)
    dv_disk_t *disk;           // the data dir's free space (NULL: none)
    uint64_t dead_dropped;     // dropped past those (metrics)
    idem_t **idem;             // idempotency keys (hash)
    idem_t *idem_oldest;       // FIFO head
    idem_t *idem_newest;       // FIFO tail
    size_t n_idem;             //
    uint64_t idem_window_ms;   // how long a key is remembered
    uint32_t quarantine_after; // lost runs before a job is quarantined
    uint64_t rng;              // backoff jitter (xorshift state)
    cursor_t *cursors;         // result stream consumers (a removed one's
    size_t n_cursors;          //   place takes the last: dv_results_
    size_t cap_cursors;        //   cursor_remove); DV_MAX_CONSUMERS new
    dv_names_t *cursor_names;  // "QUEUE/CONSUMER" -> index
    uint64_t next_cursor_key;  // store keys for new ones
    dv_u64map_t *skip;         // spilled jobs already ended (cancelled,
                               //   expired; dv_spill)
    dv_u64map_t *spilled;      // spilled job -> its queue and submitting
                               //   key (dv_spill)
    job_t *scratch;            // a spilled job read for job_state
    size_t spill_window;       // jobs per queue in memory (deep queues)
    struct switch_s *switches; // alias moves waiting for workers to load
    size_t n_switches;         //
    dv_datasets_t *datasets;   // data sets
    struct upload_s *uploads;  // data sets arriving in chunks
    uint64_t uploads_bytes;    // their buffers, in all
    dv_auth_t *auth;           // handshakes, keys (dv_auth)
    dv_owners_t *model_owners; // who owns each model name ...
    dv_owners_t *data_owners;  // ... and data set name
    dv_audit_t *audit;         // the audit log
    dv_repl_t *repl;           // a broker group member (NULL: alone, or
                               // closing)
    bool group;                // a group member (stays set while closing)
    bool restart;              // stopped leading: dv_broker_run says restart
    char data_dir[4096];       // --data ("" in memory)
    uv_signal_t sighup;        // reload the authorized keys
    who_t *whos;               // keys seen (index 0: none), for limits
    size_t n_whos, cap_whos;   //   (grows by doubling)
    dv_names_t *whonames;      // key id -> index in whos
    uint64_t max_inflight;     // unfinished jobs per key
    bool require_signed;       // model_push only signed by an admin key
    const dv_key_t *current;   // the key of the client message being
                               // handled (NULL: plain mode, or none)
    bool current_closed;       // its connection closed already (dv_auth)
    uint32_t *marks_due;       // queues (qidx) whose seq mark is due
    size_t n_marks_due;        //
    size_t cap_marks_due;      //
    uint64_t last_mark_key;    // the highest DV_STORE_STREAMS key in use
    uint64_t fault_left;       // fault seam: durable results until the one
                               // whose commit SIGKILLs (0: off)
    bool fault_armed;          // that result is staged: the next commit
                               // SIGKILLs the broker
    uint64_t fault_eio_left;   // fault seam: durable submits until the one
                               // whose commit fails with DV_EIO (0: off)
    int lock_fd;               // flock on DIR/broker.lock (-1: no --data)
    dv_monitor_t *monitor;     // what /metrics counts (always kept)
    dv_http_t *http;           // the HTTP endpoint (NULL: none)
};

// A data set arriving in chunks (dataset_push with offsets) from one
// connection; kept in memory until complete, then validated and stored.
typedef struct upload_s {
    struct upload_s *next;
    uint8_t route[ROUTE_MAX];
    size_t route_len;
    char name[DV_MAX_WIRE_NAME + 1];
    uint8_t sha256[DV_SHA256_BYTES];
    char owner[DV_KEY_ID_MAX + 1]; // the key sending it ("": plain mode)
    uint8_t *buf;                  // cap bytes, grown as chunks arrive
    uint64_t cap;                  // allocated (counted in uploads_bytes)
    uint64_t total;                // announced size
    uint64_t received;             //
    uint64_t last_ms;              // loop time of the last chunk
} upload_t;

#define UPLOAD_IDLE_MS 60000 // an upload quiet this long is dropped

// An alias moved from one version to another, or a new version became the
// latest (alias ""): submits keep resolving to the old version until the
// workers that held it have loaded the new one (or SWITCH_WAIT_MS passed),
// so no request waits for a model load.
typedef struct switch_s {
    char name[DV_MAX_WIRE_NAME + 1];
    char alias[DV_MAX_WIRE_NAME + 1]; // "": the latest version (bare NAME)
    uint32_t from, to;
    uint64_t since_ms; // loop time of the move
} switch_t;

#define SWITCH_WAIT_MS 30000

// Deep queues: past this many jobs waiting in memory, a queue's durable
// jobs wait in the store only (about 25 bytes of RAM each instead of ~450
// plus payload) and are read back, REFILL_BATCH at a time, when fewer than
// REFILL_BELOW wait in memory.
#define SPILL_WINDOW (self->spill_window)
#define REFILL_BELOW (SPILL_WINDOW / 2)
#define REFILL_BATCH (SPILL_WINDOW / 2 < 2048 ? SPILL_WINDOW / 2 + 1 : 2048)

#define IDEM_BUCKETS          65536 // idempotency hash (power of two)
#define BACKOFF_CAP_MS        DV_SCHED_BACKOFF_CAP_MS // longest retry delay
#define DEFAULT_BACKOFF_MS    500   // first retry's delay by default
#define DEFAULT_CHECKPOINT_MS 10000 // a training job's checkpoints (0: none)

// An infer job (its model field is the model to run; a train job's is the
// name its result is registered under).
#define IS_INFER(j) (strcmp((j)->kind, "infer") == 0)
// A job that runs a registered model version (infer, evaluate): its model
// and version are resolved at submit and pinned.
#define USES_MODEL(j) (IS_INFER(j) || strcmp((j)->kind, "evaluate") == 0)

// Timed events (dv_timeq tags).
// T_UNCLAIMED: a job a new leader held for its worker (leader_held) is
// queued again, its run refunded, unless a worker claimed it first.
enum { T_RELEASE, T_DEADLINE, T_TIMEOUT, T_UNCLAIMED };

// ------------------------------------------- gathering per connection
// What goes to many connections at once (accepted_many, results) is
// gathered per connection in an array of slots, each starting with its
// connection's routing id.
typedef struct {
    uint8_t route[ROUTE_MAX]; // the connection's routing id
    size_t route_len;         //
} route_key_t;

// A gathering: per connection, a slot of elem bytes starting with its
// route_key_t (the rest is the gatherer's, zeroed when the slot is added).
typedef struct gather {
    void *slots; // n slots of elem bytes (owned)
    size_t elem; // bytes of one slot
    size_t n;    // slots in use
    size_t cap;  // room for slots
} gather_t;

// A new, empty gathering of slots of elem bytes (>= sizeof route_key_t).
gather_t *dv_broker_gather_new(size_t elem);

// The slot of route in g: found, or added zeroed and keyed (*added true).
// Borrowed until the next call on g.
void *dv_broker_gather_slot(gather_t *g,
                            const void *route,
                            size_t route_len,
                            bool *added);

// Sends what one slot gathered and frees what it holds (not the slot).
typedef void(gather_flush_fn)(dv_broker_t *self, void *slot);

// End the gathering *g_p (NULL: none): flush every slot, in the order they
// were added, free it and set *g_p to NULL.
void
dv_broker_gather_end(dv_broker_t *self, gather_t **g_p, gather_flush_fn *flush);

// ---------------------------------------------------------- idempotency

#define IDEM_SCOPE_MAX DV_REC_SCOPE_MAX // a scope: a CURVE key in Z85

// A model push being decoded, validated and written on the libuv pool: a
// large model takes long enough (decode, SHA-256, fsync) to starve every
// heartbeat if the loop thread did it.
typedef struct push_s {
    dv_work_t work;                    // pool request
    dv_broker_t *broker;               // owner
    uint8_t route[ROUTE_MAX];          // who asked
    size_t route_len;                  //
    uint64_t rid;                      //
    char name[DV_MAX_WIRE_NAME + 1];   // model name
    uint32_t version;                  // reserved version
    char *dir;                         // registry folder copy (or NULL)
    uint8_t *image;                    // the file (owned)
    size_t len;                        //
    dv_model_info_t info;              // prepared record
    int rc;                            // outcome
    dv_error_t err;                    //
    uint64_t job;                      // a train job's result (0: a push)
    char worker[DV_MAX_WIRE_NAME + 1]; // that job's worker
    char owner[DV_KEY_ID_MAX + 1];     // the key pushing it ("": plain)
    uint8_t *lineage;                  // its lineage map (owned)
    size_t lineage_len;                //
    struct push_s *next_parked;        // waiting for a lower version
    bool schema_change;                // may change the latest's schema
} push_t;

// ---------------------------------------------------------------
// dv_broker.c: the loop, the jobs table and what every module shares

// Wall-clock time in ms since the epoch.
uint64_t dv_broker_unix_ms_now(void);

// A job block holding copies of route, queue, model name and payload; NULL
// when the payload cannot be allocated. From spare (NULL: malloc), and
// back to it by dv_broker_job_free: it must outlive the job.
job_t *dv_broker_job_alloc(dv_spare_t *spare,
                           const void *route,
                           size_t route_len,
                           const char *queue,
                           const char *model,
                           const void *payload,
                           size_t payload_len);

// Fetch what finding job id (dv_broker_job_find, dv_sched_finish, a kept
// result for it) will touch, without waiting: round 0 the buckets, round 1
// (once round 0 has run for a batch of ids) the records they point at.
// The lines are long out of the cache when a forward pass ends ~180 jobs
// that were dispatched many messages earlier; issuing them all first lets
// the waits overlap.
void dv_broker_job_prefetch(const dv_broker_t *self, uint64_t id, int round);

// Free j and what it owns (errors, checkpoint); NULL-safe.
void dv_broker_job_free(job_t *j);

// The queue's record, or NULL when no job ever created it.
qbytes_t *dv_broker_queue_find(dv_broker_t *self, const char *name);

// j's commit is done (or it goes without one): no longer counted in its
// queue's `uncommitted`. Idempotent.
void dv_broker_job_committed(dv_broker_t *self, job_t *j);

// 0 when name exists or may be created; DV_ELIMIT past DV_MAX_QUEUES.
int dv_broker_queue_may_create(dv_broker_t *self,
                               const char *name,
                               const char *what,
                               dv_error_t *err);

// The queue's record, created when new (within DV_MAX_QUEUES: callers
// check dv_broker_queue_may_create first). Borrowed; valid until the next call.
qbytes_t *dv_broker_queue_bytes(dv_broker_t *self, const char *name);

// A queue's jobs in each state now: waiting (in memory or spilled),
// running, held for a retry, in the dead letters. For `status` and the
// metrics alike.
typedef struct {
    size_t queued, running, retrying, dead;
} dv_queue_now_t;
dv_queue_now_t dv_broker_queue_now(const dv_broker_t *self, const qbytes_t *qb);

// Take ownership of j into the jobs table (its payload counted in its
// queue's bytes).
void dv_broker_job_add(dv_broker_t *self, job_t *j);

// The job with id, or NULL. Borrowed: valid until it leaves the table.
job_t *dv_broker_job_find(const dv_broker_t *self, uint64_t id);

// Take job id out of the table and free it (its bytes and its key's
// inflight count released); nothing when absent.
void dv_broker_job_remove(dv_broker_t *self, uint64_t id);

// The connected worker with that routing id, or NULL. Borrowed.
worker_t *
dv_broker_worker_by_route(dv_broker_t *self, const void *route, size_t len);

// The connected worker with dv_sched handle, or NULL. Borrowed.
worker_t *dv_broker_worker_by_handle(dv_broker_t *self, uint64_t handle);
// Index the workers again after one was added or taken out of the table
// (the two lookups above are hash lookups: one runs for every message a
// worker sends, the other for every dispatch, and a broker may have
// thousands of workers).
void dv_broker_workers_index(dv_broker_t *self);

// Take j out of the jobs table without freeing it.
job_t *dv_broker_job_detach(dv_broker_t *self, uint64_t id);

// The whos slot of key id (added when new; 0 when the table is full).
uint16_t dv_broker_who_index(dv_broker_t *self, const char *id);

// Reply type (welcome, pong, ...) with rid to in's sender on sock.
void dv_broker_send_simple(dv_broker_t *self,
                           void *sock,
                           const dv_wire_msg_t *in,
                           dv_msg_type_t type,
                           uint64_t rid);

// Send a finished reply header to route, then free it.
void
dv_broker_reply(void *sock, const void *route, size_t route_len, dv_msgw_t *w);

// Everything sent on the client socket goes through the byte counter
// (dv_outq): a client that does not read cannot make the broker hold more
// than DV_MAX_PEER_QUEUED_BYTES of replies for it.
int dv_broker_client_send(dv_broker_t *self,
                          const void *route,
                          size_t route_len,
                          const uint8_t *header,
                          size_t header_len,
                          const dv_frame_t *frames,
                          size_t n_frames);

// A group member that does not serve (follower, election, promotion)
// answers anything but ping and cluster with DV_ENOTLEADER naming the
// leader's endpoint for this socket when it knows it. True when it did.
bool dv_broker_not_leader(dv_broker_t *self,
                          void *sock,
                          const void *route,
                          size_t route_len,
                          uint64_t rid,
                          dv_msg_type_t type);

// Send w to a client (through dv_outq's bounds). Takes ownership of w.
void dv_broker_client_reply(dv_broker_t *self,
                            const void *route,
                            size_t route_len,
                            dv_msgw_t *w);

// Send an `error` reply (rid, job, code, text) to a client.
void dv_broker_client_error(dv_broker_t *self,
                            const void *route,
                            size_t route_len,
                            uint64_t rid,
                            uint64_t job,
                            int code,
                            const char *text);

// ------------------------------------------------- the message tables
// A socket's message table (dv_handlers.c for clients, dv_workers_msg.c
// for workers) is made of these rows; the types live here, not beside the
// tables, so that what reads a row (dv_authorize) need not depend on the
// module that holds the table.

// One request, as every handler of a socket's table gets it. Borrowed: the
// handler owns none of it.
typedef struct {
    dv_broker_t *self;  // the broker
    dv_wire_msg_t *in;  // the message as it came in (route, header, frames)
    const dv_msg_t *m;  // its decoded header (one request of a submit_many)
    const void *route;  // the sender's routing id
    size_t route_len;   // its length
    uint64_t rid;       // the request id to answer with
    const char *who_id; // the sender's key id ("" in plain mode)
    worker_t *w;        // worker socket: the registered worker that sent it
} request_t;

// Serve r: 0, or DV_E* with err set (dv_broker_serve_request sends the
// `error`).
typedef int(request_fn)(request_t *r, dv_error_t *err);

// What a message acts on: the object dv_authorize_client() checks the key
// against.
typedef enum {
    ACTS_ON_NOTHING, // a read of the broker's state, or an admin action
    ACTS_ON_QUEUE,   // the queue named in its `queue` field
    ACTS_ON_JOB,     // the queue of the job in `job`; a producer reads only
                     // the jobs it submitted
    ACTS_ON_QUEUES,  // the queue in `queue`, else all of them: a key limited
                     // to some queues must name one
    ACTS_ON_DATASET, // data set `name`: only its owner or an admin changes it
    ACTS_ON_MODEL,   // model `name`: only its owner or an admin deletes it
} acts_on_t;

// Checks after the roles and the queue (msg_row_t.checks), in this order.
enum {
    CHECK_CONSUMER = 1,      // `consumer` belongs to the key that followed it
    CHECK_DATASET_READS = 2, // the data sets it reads are its key's to read
    CHECK_TRAIN_MODEL = 4,   // a train job adds versions to its model's owner
};

// msg_row_t.roles: any authorized key, whatever its roles (0: admins only).
#define ANY_KEY (~0u)

// A row of a socket's message table.
typedef struct {
    request_fn *handler; // serves it; NULL: not accepted on this socket
    unsigned roles;      // DV_ROLE_* bits, any of; admin always passes; ANY_KEY
    acts_on_t acts_on;   // what the key is checked against
    unsigned checks;     // CHECK_* bits
    bool audited;        // its outcome goes to the audit log
                         // (dv_authorize_audit_message)
} msg_row_t;

// The client handlers (on_*, declared in the header of their noun's
// module, called from dv_handlers.c's table) all have one shape,
// documented here once:
//
// Serve request m (its decoded header; payload frames through
// dv_msg_frame) from the connection route/route_len, answering with rid:
// a reply sent now or held until a commit (dv_commit_hold_reply,
// dv_commit_reply_after). Returns 0 once answered or held, or DV_E* with err
// set: nothing was sent and dv_broker_serve_request replies `error` with it.
// Loop thread; m and route are borrowed for the call.
typedef int(client_handler_fn)(dv_broker_t *self,
                               const void *route,
                               size_t route_len,
                               const dv_msg_t *m,
                               uint64_t rid,
                               dv_error_t *err);

// Serve one request from a client connection (checked against its key's
// roles, audited, answered with `error` when it fails): a message, or one
// request of a `submit_many`.
void dv_broker_serve_request(dv_broker_t *self,
                             dv_wire_msg_t *in,
                             const dv_msg_t *m);

#endif
