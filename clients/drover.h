// drover.h — libdrover, the C client of a Drover broker.
//
// Submit jobs (echo, infer), wait for their results or take them
// asynchronously through a callback, look jobs up, and manage the broker's
// model registry. This is the only header Drover installs; it speaks the
// protocol in docs/PROTOCOL.md over one ZeroMQ DEALER socket.
//
//     drover_t *d = NULL;
//     drover_error_t err;
//     if (drover_connect(&d, NULL, 5000, &err) != 0) { ... err.text ... }
//     drover_job_t job = DROVER_JOB_INIT;
//     job.kind = "infer";
//     job.model = "iris";            // NAME or NAME@VERSION
//     job.input = x;                 // rows x cols float32, row-major
//     job.rows = rows;
//     job.cols = cols;
//     drover_result_t *r = NULL;
//     if (drover_run(d, &job, 10000, &r, &err) == 0) {
//         size_t n, k;
//         const float *p = drover_result_output(r, &n, &k);
//         ...
//         drover_result_destroy(&r);
//     }
//     drover_destroy(&d);
//
// Conventions: functions returning int give 0 or a negative error code
// (drover_err_name() gives its wire name, e.g. "DV_ENOMODEL") and fill
// *err (which may be NULL) with the code and a reason. Objects are opaque,
// created by a function that takes `**out` and freed with their _destroy
// (which sets the pointer to NULL). Strings and arrays a function returns
// are borrowed from the object they came from unless the comment says
// otherwise.
//
// Threads: a drover_t is used by one thread at a time. Use one per thread
// (they are cheap: a socket each). All of a process's connections share one
// ZeroMQ context, so one I/O thread, made by the first drover_connect and
// ended by the last drover_destroy (which waits, as any, for its unsent
// messages' linger); a child after fork() connects with its own.
#ifndef DROVER_H
#define DROVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Default broker endpoint when neither the caller nor $DROVER_BROKER names
// one: what `drover up` and drover-broker bind by default.
#define DROVER_DEFAULT_ENDPOINT "tcp://127.0.0.1:7470"

typedef struct {
    int code;       // 0 or a negative error code
    char text[256]; // reason, NUL-terminated
} drover_error_t;

// Wire name of an error code ("DV_ENOMODEL"), "DV_EUNKNOWN" if not known.
const char *drover_err_name(int code);

// ------------------------------------------------------------ connection

typedef struct drover drover_t;

// Connect to the broker at endpoint (NULL: $DROVER_BROKER, else
// DROVER_DEFAULT_ENDPOINT; a comma-separated list names a broker group:
// see "broker groups" below) and say hello; waits up to timeout_ms (<0:
// forever) for the broker's welcome. With $DROVER_KEY and
// $DROVER_BROKER_KEY set, as drover_connect_key with them. Returns 0 and
// *out, DV_ETIMEDOUT (no broker answered), DV_EVERSION (the broker speaks
// another protocol major), DV_EINVAL (bad endpoint), DV_EPERM (the broker
// refused the key, or requires one).
int drover_connect(drover_t **out,
                   const char *endpoint,
                   int timeout_ms,
                   drover_error_t *err);

// The same over CURVE (encrypted, authenticated; docs/SECURITY.md):
// key_file is this client's secret key file (`drover keygen`: NAME.key),
// broker_key the broker's public key: its .pub file, or the key itself in
// Z85 (40 characters). Both NULL: plain, as drover_connect without the
// environment. A refused handshake fails at once with DV_EPERM saying why.
int drover_connect_key(drover_t **out,
                       const char *endpoint,
                       int timeout_ms,
                       const char *key_file,
                       const char *broker_key,
                       drover_error_t *err);

// Close the connection; results not yet received are dropped (the broker
// keeps them for drover_wait from another connection). NULL-safe.
void drover_destroy(drover_t **self_p);

// The endpoint in use (with a list: the member connected now). Borrowed;
// valid until the next call on self.
const char *drover_endpoint(const drover_t *self);

// ------------------------------------------------------------------ jobs

// What to run. Fields not used by a kind are ignored; pointers are read
// during the submit call only (the library copies what it sends).
typedef struct {
    const char *queue;           // queue name; NULL: "default"
    const char *kind;            // "echo", "infer", "evaluate" (the model's
                                 // metrics on the CSV in payload) or
                                 // "sleep" (waits sleep_ms, then answers
                                 // like echo: a diagnostic job)
    const void *payload;         // echo: bytes sent back as the result;
                                 // evaluate: the CSV (with the target)
    size_t payload_len;          //   their count
    const char *model;           // infer, evaluate: "NAME" (latest),
                                 // "NAME@VERSION" or "NAME@ALIAS"
    const float *input;          // infer: rows x cols, row-major, host floats
    size_t rows, cols;           //   its shape (cols = the model's features)
    uint32_t max_attempts;       // runs before a lost job fails (0: broker's 3)
    const char *durability;      // "commit" (NULL: the default: acknowledged
                                 // once stored, with a broker data dir) or
                                 // "none" (memory only: faster, lost if the
                                 // broker stops)
    int32_t priority;            // -1000..1000, higher first (0: default)
    uint32_t deadline_ms;        // must start within this many ms of the
                                 // submit, else it ends DV_EEXPIRED (0: none)
    uint32_t timeout_ms;         // a run longer than this ends it with
                                 // DV_ETIMEDOUT (0: none)
    int32_t backoff_ms;          // first retry's delay, doubling (0: the
                                 // broker's 500 ms; <0: retry at once)
    const char *idempotency_key; // a key seen on this queue within the
                                 // broker's window returns that job's id
    uint32_t sleep_ms;           // kind "sleep": how long
    const char *dataset;         // evaluate: a stored data set
                                 // "NAME[@VERSION]" instead of payload
} drover_job_t;

#define DROVER_JOB_INIT                                                        \
    {                                                                          \
        NULL, "echo", NULL, 0, NULL, NULL, 0, 0, 0, NULL, 0, 0, 0, 0, NULL, 0, \
            NULL                                                               \
    }

// A job's final outcome. Owned by whoever got it (see each function).
typedef struct drover_result drover_result_t;

// One failed attempt of a job.
typedef struct {
    uint32_t attempt; // 1-based
    int code;         // its error (DV_E* value; drover_err_name names it)
    char text[256];   // the reason
    char worker[129]; // "" when no worker was involved
    uint64_t at_ms;   // unix milliseconds
} drover_attempt_error_t;

// The job's failed attempts (retried ones included), oldest first
// (borrowed); returns their count.
size_t drover_result_errors(const drover_result_t *r,
                            const drover_attempt_error_t **errors);

uint64_t drover_result_job(const drover_result_t *r); // 0: never accepted
// True when the job ran to completion.
bool drover_result_ok(const drover_result_t *r);
// "done" or "failed".
const char *drover_result_state(const drover_result_t *r);
// Error code (0 when ok) and its reason (borrowed; "" when ok).
int drover_result_error(const drover_result_t *r, const char **text);
uint32_t drover_result_attempts(const drover_result_t *r);
const char *drover_result_worker(const drover_result_t *r); // "" if none
// echo: the payload (borrowed). NULL when there is none.
const void *drover_result_payload(const drover_result_t *r, size_t *len);
// infer: rows x cols outputs (borrowed): one value per row (regression)
// or cols class probabilities per row. NULL for other kinds.
const float *
drover_result_output(const drover_result_t *r, size_t *rows, size_t *cols);
// infer: the classes naming the output columns (classification; 0 for
// regression) and the model version that ran ("iris@3").
size_t drover_result_n_classes(const drover_result_t *r);
const char *drover_result_class(const drover_result_t *r, size_t i);
const char *drover_result_model(const drover_result_t *r);
// infer: the forward pass the job ran in (dynamic batching): its rows and
// how many jobs shared it (1: alone). False (both 0) when the worker did
// not say (a worker before protocol 1.3).
bool
drover_result_batch(const drover_result_t *r, uint32_t *rows, uint32_t *jobs);
void drover_result_destroy(drover_result_t **r_p);

// Submit and wait until the broker accepted the job (not until it ran).
// Returns 0 and *job_id, or the broker's refusal (DV_ENOMODEL, DV_ESHAPE,
// DV_EINVAL, ...) or DV_ETIMEDOUT after timeout_ms.
int drover_submit(drover_t *self,
                  const drover_job_t *job,
                  int timeout_ms,
                  uint64_t *job_id,
                  drover_error_t *err);

// Wait for the result of job (submitted on any connection) up to
// timeout_ms (<0: forever). Returns 0 and *out (caller destroys; it may be
// a failed job: see drover_result_ok), DV_ETIMEDOUT, or DV_ENOENT (no such
// job, or its result expired).
int drover_wait(drover_t *self,
                uint64_t job_id,
                int timeout_ms,
                drover_result_t **out,
                drover_error_t *err);

// drover_submit then drover_wait, within timeout_ms in all.
int drover_run(drover_t *self,
               const drover_job_t *job,
               int timeout_ms,
               drover_result_t **out,
               drover_error_t *err);

// Called from drover_poll with a job's result (borrowed: valid during the
// call) — also for a submit the broker refused, as a failed result with job
// id 0 and the refusal as its error.
typedef void(drover_result_fn)(drover_t *self,
                               const drover_result_t *result,
                               void *arg);

// Submit without waiting: the request is queued on the socket and the
// result reaches fn from a later drover_poll. Returns 0, or DV_EINVAL for
// a job that cannot be sent (checked here: kind, sizes).
int drover_submit_async(drover_t *self,
                        const drover_job_t *job,
                        drover_result_fn *fn,
                        void *arg,
                        drover_error_t *err);

// Like drover_submit_async, but fn runs as soon as the broker has accepted
// the job (stored, with a data dir and the default durability), with a
// result holding only the job id (drover_result_ok true, no output) — or
// with the refusal. The job's outcome is not awaited on this connection:
// fetch it later with drover_wait, from anywhere.
int drover_submit_nowait(drover_t *self,
                         const drover_job_t *job,
                         drover_result_fn *fn,
                         void *arg,
                         drover_error_t *err);

// Submit n jobs in as few messages as the limits allow: to a broker of
// protocol 1.4 or later `submit_many` messages of up to 256 jobs, one
// `submit` each to an older one. Each job is still accepted or refused on
// its own, exactly as by drover_submit_async: fn runs once per job from
// drover_poll, with args[i] (args NULL: NULL). Nothing is sent when a job
// cannot be (DV_EINVAL naming jobs[i]).
int drover_submit_many_async(drover_t *self,
                             const drover_job_t *jobs,
                             size_t n,
                             drover_result_fn *fn,
                             void *const *args,
                             drover_error_t *err);

// Blocking drover_submit_many_async: waits until every job is accepted or
// refused (within timeout_ms in all). ids[i] gets job i's id, 0 when it
// was refused. Returns 0 when every job was accepted, else the first
// refusal's code (err names jobs[i] and the reason) or DV_ETIMEDOUT; the
// accepted ones' results come to drover_wait as a drover_submit's do.
int drover_submit_many(drover_t *self,
                       const drover_job_t *jobs,
                       size_t n,
                       int timeout_ms,
                       uint64_t *ids,
                       drover_error_t *err);

// Receive for up to timeout_ms (0: only what is waiting; <0: until at

// least one callback ran) and run the callbacks of results that arrived.
// Returns the number of callbacks run (>= 0) or an error.
int drover_poll(drover_t *self, int timeout_ms, drover_error_t *err);

// Async submits whose result has not been delivered yet.
size_t drover_pending(const drover_t *self);

// Where a job is: state "queued", "running", "retrying" (waiting for its
// backoff), "done", "failed", "dead" (in the dead-letter queue),
// "expired" (not started by its deadline) or "cancelled".
typedef struct {
    uint64_t job;
    char state[16];
    uint32_t attempts;
    char queue[129];           // "" once finished (before broker 1.5)
    char kind[16];             // "" once finished
    int32_t priority;          // while unfinished or dead
    uint32_t epoch, epochs;    // a train job's last progress (0: none)
    double loss;               //
    uint64_t progress_ms;      //
    double eval;               // its eval-set score (NAN: none)
    uint32_t checkpoint_epoch; // a train job's last checkpoint (0: none) ...
    uint64_t checkpoint_bytes; // ... and its size
    char model[260];           // done infer/evaluate: NAME@VERSION
    uint32_t batch_rows, batch_jobs;  // done infer: the pass it ran in (1.3)
    uint32_t checkpoint_stored_epoch; // the newest one on the broker's disk
                                      //   (0: none yet, or memory only): what a
                                      //   broker restart resumes from
    char worker[129];                 // running: where; finished: where it
                                      //   ran ("" unknown; broker 1.5)
    uint64_t submitted_unix_ms;       // while unfinished (0: not said)
    uint64_t started_unix_ms;         // running: its attempt's start
    uint64_t finished_unix_ms;        // finished: when (0: not said)
} drover_job_info_t;

int drover_job_info(drover_t *self,
                    uint64_t job_id,
                    drover_job_info_t *out,
                    drover_error_t *err);

// Cancel a job that has not finished: a queued one is removed, a running
// one's worker is told to drop it. Either way it ends at once as failed
// with DV_ECANCELED (its submitter gets that result), durably with a data
// dir. *was (may be NULL, 16 bytes) gets "queued" or "running". Returns 0
// or DV_ENOENT (unknown, or already finished).
int drover_job_cancel(drover_t *self,
                      uint64_t job_id,
                      char *was,
                      drover_error_t *err);

// Jobs newest first: a state (as in drover_job_info_t) or NULL (all),
// queue name or NULL (all; finished jobs do not keep their queue),
// at most limit (0: 100; at most 10,000: more are read in turns with
// drover_job_list_from). *jobs (caller frees with free()) of *n.
int drover_job_list(drover_t *self,
                    const char *state,
                    const char *queue,
                    unsigned limit,
                    drover_job_info_t **jobs,
                    size_t *n,
                    drover_error_t *err);
// The same from job id `from` down (0: the newest). *next (may be NULL)
// gets where the list goes on, to pass as `from` for more (0: nothing is
// left). Needs a 1.7 broker for from; an older one lists from the newest
// and says no next.
int drover_job_list_from(drover_t *self,
                         const char *state,
                         const char *queue,
                         unsigned limit,
                         uint64_t from,
                         drover_job_info_t **jobs,
                         size_t *n,
                         uint64_t *next,
                         drover_error_t *err);

// Point alias (a name starting with a letter) of model name at version;
// version 0 removes the alias. Infer jobs for "NAME@ALIAS" then run the
// version it names when they are submitted; pointing it back is a
// rollback. *previous (may be NULL) gets the version it named before (0:
// none). Errors: DV_ENOMODEL (no such version), DV_EINVAL (bad alias),
// DV_ENOENT (removing an unknown alias). A version an alias names cannot
// be removed (drover_model_rm gives DV_EINVAL).
int drover_model_alias(drover_t *self,
                       const char *name,
                       const char *alias,
                       uint32_t version,
                       uint32_t *previous,
                       drover_error_t *err);
// The same; schema_change lets the alias move to a version that takes other
// inputs or gives other outputs than the one it names now (refused with
// DV_ESHAPE otherwise: its clients would fail; broker 1.5).
int drover_model_alias_ex(drover_t *self,
                          const char *name,
                          const char *alias,
                          uint32_t version,
                          bool schema_change,
                          uint32_t *previous,
                          drover_error_t *err);

// A model's serving settings (all its versions): dynamic batching stacks
// up to max_batch_rows rows of waiting infer jobs into one forward pass and
// waits at most max_delay_us for more (0: never waits; only what is already
// there is batched). -1 keeps a setting; both -1 just reads them. *rows_out
// and *delay_out (may be NULL) get the settings now. Admins only. Errors:
// DV_ENOMODEL, DV_EINVAL (out of range: the reason names the bound).
int drover_model_config(drover_t *self,
                        const char *name,
                        int64_t max_batch_rows,
                        int64_t max_delay_us,
                        uint32_t *rows_out,
                        uint32_t *delay_out,
                        drover_error_t *err);

// Remove old versions of name: all but the newest keep (>= 1), except the
// versions an alias names (an alias pins a version). The removed versions
// go to removed (at most max), their count to *n.
int drover_model_gc(drover_t *self,
                    const char *name,
                    uint32_t keep,
                    uint32_t *removed,
                    size_t max,
                    size_t *n,
                    drover_error_t *err);

// ------------------------------------------------------------- data sets

typedef struct {
    char name[129];
    uint32_t version;
    char sha256[65]; // hex
    uint64_t bytes, rows;
    uint32_t columns;
    char target[129]; // the column training takes as target by default
    uint64_t created_us;
} drover_dataset_t;

// Store the CSV file at path as the next version of name in the broker
// (uploaded in chunks of 4 MiB with its SHA-256, validated there: every
// column but the target numeric). *out (may be NULL) gets the record.
// Errors: DV_EFORMAT naming line and column, DV_EMSGSIZE (over 1 GiB),
// DV_ECHECKSUM, the file's errors.
int drover_dataset_push(drover_t *self,
                        const char *path,
                        const char *name,
                        drover_dataset_t *out,
                        drover_error_t *err);
// One version (0: the latest) into *out; DV_ENOENT when there is none.
int drover_dataset_get(drover_t *self,
                       const char *name,
                       uint32_t version,
                       drover_dataset_t *out,
                       drover_error_t *err);
// Every version (caller frees *all with free()).
int drover_dataset_list(drover_t *self,
                        drover_dataset_t **all,
                        size_t *n,
                        drover_error_t *err);
// Remove a version (0: all). *removed (may be NULL) gets how many.
int drover_dataset_rm(drover_t *self,
                      const char *name,
                      uint32_t version,
                      unsigned *removed,
                      drover_error_t *err);
// Share data set name for reading (training, evaluating, listing) with n
// keys (ids; "*": every key), replacing its list (n 0: its owner and
// admins only again). With keys a data set is read only by its owner,
// admins and these. Its owner or an admin may; DV_EPERM otherwise,
// DV_ENOENT (no such data set, or it has no owner: stored without keys,
// everyone reads it), DV_EINVAL (a bad id, more than 256).
int drover_dataset_share(drover_t *self,
                         const char *name,
                         const char *const *readers,
                         size_t n,
                         drover_error_t *err);

// -------------------------------------------------------------- training

// Training progress, as the worker reports it (at most 5 times a second).
typedef struct {
    uint64_t job;
    uint32_t epoch, epochs; // epochs finished, maximum
    double loss;            // mean training loss of the last epoch
    uint64_t ms, eta_ms;    // since training started; estimated left
    double eval;            // score on the eval data set (accuracy or R^2;
                            // NAN: none, or not yet)
} drover_progress_t;

typedef void(drover_progress_fn)(const drover_progress_t *p, void *arg);

// A model trained by a worker through the queue, on data sent with the
// job. Options are "key=value" strings as `drover local train` takes them:
// epochs, batch, patience, seed, lr, l2, tol, scale (standard, minmax,
// none), hidden ("64,32"), init (glorot, he, uniform-fan-in),
// validation_fraction; unset ones take the algorithm's defaults.
typedef struct {
    const char *queue;            // NULL: "default"
    const char *model;            // register the result as the next
                                  // version of this name
    const char *algo;             // ols, gd, ridge, logreg, softmax, mlp
    const void *csv;              // the training data: CSV text
    size_t csv_len;               //   its length (<= 256 MiB)
    const char *dataset;          // or a stored data set, "NAME[@VERSION]"
                                  // (then csv is NULL)
    const char *eval_dataset;     // a stored data set to score the model
                                  // on while it trains (progress eval) and
                                  // at the end (kept in its lineage); NULL
    const char *target;           // target column (NULL: "target", else
                                  // the last column)
    const char *task;             // "classification"/"regression" (NULL:
                                  // from the algorithm and the data)
    const char *const *options;   // "key=value" hyper-parameters
    size_t n_options;             //
    int64_t created_unix;         // stored in the model (0: now): the same
                                  // value, data and options give the same
                                  // file bytes as `drover local train` with
                                  // SOURCE_DATE_EPOCH set to it
    uint32_t max_attempts;        // 0: the broker's default
    int64_t checkpoint_ms;        // the worker sends its state this often,
                                  // so a re-run (its worker died) goes on
                                  // from there: 0: the broker's default
                                  // (10 s), < 0: never
    drover_progress_fn *progress; // called while drover_train waits (may
    void *progress_arg;           //   be NULL)
    bool schema_change;           // the model may take other inputs or give
                                  // other outputs than NAME's latest (else
                                  // the job fails DV_ESHAPE, nothing stored)
} drover_train_t;

// Submit a train job and wait (timeout_ms; <0 forever) for its result:
// done with drover_result_model naming the new version ("iris@3"), or the
// training error (DV_EFORMAT for a malformed CSV with line and column,
// DV_EDIVERGED, ...). Bad options are refused here with DV_EINVAL.
int drover_train(drover_t *self,
                 const drover_train_t *t,
                 int timeout_ms,
                 drover_result_t **out,
                 drover_error_t *err);

// drover_train's first half: submit and return once the broker accepted it
// (within timeout_ms; <0 forever), with *job_id. Its result comes to
// drover_wait (its progress to t->progress while drover_wait or
// drover_poll runs on this connection), from anywhere with the id.
int drover_train_submit(drover_t *self,
                        const drover_train_t *t,
                        int timeout_ms,
                        uint64_t *job_id,
                        drover_error_t *err);

// ---------------------------------------------------------- result streams
//
// Every queue's finished jobs form a stream, in the order they finished.
// A named consumer follows it from anywhere (not only the submitter) and
// acknowledges what it has handled; the broker stores its position, so a
// consumer that goes away resumes where it left off, on any connection,
// after a broker restart too. Delivery is at least once: results sent but
// not acknowledged are sent again on the next follow. Results leave the
// stream when the broker drops them (TTL, bounds: `limits` in welcome).

// Follow queue's results as consumer (names: [A-Za-z0-9._-]+); a consumer
// new to the broker starts at the oldest kept result, or with from_latest
// at the next one. fn gets each result from drover_poll, with
// drover_result_seq; at most window (0: 100) are sent ahead of the
// acknowledgements. *acked (may be NULL) gets the stored position. One
// stream per connection. With a group's endpoint list the follow is sent
// again to each new leader, which resumes after the acknowledged position.
int drover_follow(drover_t *self,
                  const char *queue,
                  const char *consumer,
                  unsigned window,
                  bool from_latest,
                  drover_result_fn *fn,
                  void *arg,
                  uint64_t *acked,
                  drover_error_t *err);

// The consumer has handled every result up to seq. With wait, returns once
// the broker has stored it (use before exiting); else it is sent and not
// waited for.
int drover_ack(drover_t *self,
               const char *queue,
               const char *consumer,
               uint64_t seq,
               bool wait,
               drover_error_t *err);

// Stop following (the position stays stored).
int drover_unfollow(drover_t *self,
                    const char *queue,
                    const char *consumer,
                    drover_error_t *err);

// An evaluate job's metrics (borrowed): names ("accuracy", "f1_macro",
// "r2", "rows", ...) and values; returns their count (0 for other kinds).
size_t drover_result_metrics(const drover_result_t *r,
                             const char *const **names,
                             const double **values);

// A streamed result's position in its queue's stream (0 for results not
// from a stream).
uint64_t drover_result_seq(const drover_result_t *r);

// One consumer the broker keeps (protocol 1.8): where it stands in its
// queue's stream. lag = last - acked results are not yet acknowledged.
typedef struct {
    char queue[129];    // its queue
    char consumer[129]; // its name
    uint64_t acked;     // every result up to this seq is handled
    uint64_t last;      // the queue's last seq given out
    bool followed;      // a connection follows it now; then:
    uint32_t window;    //   results it may have beyond the last ack
    uint32_t in_flight; //   results sent, not acknowledged
    char owner[65];     // the key id owning it ("": none, plain mode)
} drover_consumer_t;

// The consumers the broker keeps: of queue (NULL: all), sorted by queue
// then name (byte order), every page of the list read (1.8). *consumers
// (caller frees with free(); never NULL on success) of *n. With CURVE an
// admin's key may list; in plain mode anyone. A broker before 1.8 answers
// DV_EFORMAT (an unknown message type).
int drover_consumer_list(drover_t *self,
                         const char *queue,
                         drover_consumer_t **consumers,
                         size_t *n,
                         drover_error_t *err);

// Remove consumer of queue for good (1.8): its stored position goes, a
// connection following it gets no more results, its name and its place
// among the broker's consumers are free, and a later drover_follow of it
// starts anew (from the oldest kept result, or with from_latest the next).
// Returns once the removal is stored, with *acked (may be NULL) the
// position it had. If this connection follows that consumer, the follow
// is dropped here too: a new drover_follow may be made, and with a group's
// endpoint list it is not sent again to a new leader (results it received
// before still reach its callback from drover_poll). Errors: DV_ENOENT
// (no such consumer or queue), DV_EPERM (with CURVE: neither its owner
// with the consumer role on queue, nor an admin), DV_EFORMAT from a broker
// before 1.8.
int drover_consumer_forget(drover_t *self,
                           const char *queue,
                           const char *consumer,
                           uint64_t *acked,
                           drover_error_t *err);

// ---------------------------------------------------------- dead letters

// A job in the dead-letter queue: its attempts were used up by retryable
// failures (lost workers, worker I/O errors), or it was quarantined after
// workers died running it.
typedef struct {
    uint64_t job;
    char queue[129];
    char kind[16];
    uint32_t attempts;
    int32_t priority;
    uint64_t submitted_ms, died_ms; // unix milliseconds
    int code;                       // the final error
    char text[256];                 // and its reason
    drover_attempt_error_t *errors; // every failed attempt
    size_t n_errors;
} drover_dead_t;

// Dead letters, oldest first: of queue (NULL: all), or only job_id (0:
// all). *dead (free with drover_dead_free) of *n. A job_id not dead is
// DV_ENOENT.
int drover_dead_list(drover_t *self,
                     const char *queue,
                     uint64_t job_id,
                     drover_dead_t **dead,
                     size_t *n,
                     drover_error_t *err);
void drover_dead_free(drover_dead_t **dead, size_t n);

// Requeue dead letters as new jobs (new ids, attempts from zero, the same
// queue, payload and options): job_id, or every one (of queue, NULL: all)
// when job_id is 0. *count (may be NULL) gets how many; *new_job (may be
// NULL) the new id when one job was named. Answered once stored.
int drover_dead_requeue(drover_t *self,
                        uint64_t job_id,
                        const char *queue,
                        size_t *count,
                        uint64_t *new_job,
                        drover_error_t *err);

// Drop dead letters for good: job_id, or all (of queue) when 0.
int drover_dead_purge(drover_t *self,
                      uint64_t job_id,
                      const char *queue,
                      size_t *count,
                      drover_error_t *err);

// ---------------------------------------------------------------- models

typedef struct {
    char name[129];
    uint32_t version;
    char sha256[65]; // hex
    uint64_t bytes;
    char task[16]; // "regression" / "classification"
    char algo[16]; // "ols", "mlp", ...
    uint32_t features, outputs;
    uint64_t created_us; // unix microseconds
    char aliases[256];   // aliases pointing at this version, comma-separated
                         // ("" when none)
    uint32_t max_batch_rows; // the model's serving settings (all versions;
    uint32_t max_delay_us;   //   drover_model_config); 0: an older broker
} drover_model_t;

// Store the .drvm file at path (or len bytes at image) as the next version
// of name. The broker validates it first. Returns 0 and *out (may be NULL).
int drover_model_push(drover_t *self,
                      const char *path,
                      const char *name,
                      drover_model_t *out,
                      drover_error_t *err);
int drover_model_push_bytes(drover_t *self,
                            const void *image,
                            size_t len,
                            const char *name,
                            drover_model_t *out,
                            drover_error_t *err);

// A push's options: key_file signs it (an admin's .key, as
// drover_model_push_signed); schema_change lets it become NAME's latest
// though it takes other inputs or gives other outputs than the latest
// (features, outputs, task): refused with DV_ESHAPE otherwise, since every
// client not pinned to a version would fail (broker 1.5).
typedef struct {
    const char *key_file;
    bool schema_change;
} drover_push_opts_t;

int drover_model_push_ex(drover_t *self,
                         const void *image,
                         size_t len,
                         const char *name,
                         const drover_push_opts_t *opts,
                         drover_model_t *out,
                         drover_error_t *err);

// The same, signed: the file's SHA-256 is signed with the Ed25519 pair of
// key_file (an admin's .key; dv_keys), so a broker run with
// --require-signed takes it, and its record names the signer. DV_EPERM
// when the broker does not take the signature (not an admin key, or the
// file changed).
int drover_model_push_signed(drover_t *self,
                             const char *path,
                             const char *name,
                             const char *key_file,
                             drover_model_t *out,
                             drover_error_t *err);

// Every version of every model: *models (caller frees with free()) of *n.
int drover_model_list(drover_t *self,
                      drover_model_t **models,
                      size_t *n,
                      drover_error_t *err);

// One version (0: the latest). DV_ENOMODEL when there is none.
int drover_model_get(drover_t *self,
                     const char *name,
                     uint32_t version,
                     drover_model_t *out,
                     drover_error_t *err);

// How a model version came to be: trained through the queue (job > 0), or
// pushed as a file by a key, maybe signed (has false for a file pushed in
// plain mode): drover_model_schema fills it.
typedef struct {
    char pushed_by[65]; // a pushed file: the key that pushed it
    char signed_by[65]; //   and the admin key that signed it
    bool has;
    uint64_t job;          // the train job
    char worker[129];      // that ran it to the end
    uint32_t attempts;     // runs it took
    uint32_t resumed_from; // epoch of the checkpoint the
                           // last run went on from (0)
    uint64_t submitted_unix_ms, finished_unix_ms;
    uint64_t train_ms;       // training time
    uint32_t epochs_run;     //
    char dataset[160];       // "NAME@V" ("": its own CSV)
    char data_sha256[65];    // hex: the training bytes
    uint64_t data_rows;      //
    char algo[16];           //
    char hyper[512];         // "epochs=200 lr=0.001 ..."
    uint64_t seed;           //
    char eval_dataset[160];  // "NAME@V" ("": none)
    size_t n_eval;           // metrics on it:
    char eval_names[24][24]; //   names
    double eval_values[24];  //   values
} drover_lineage_t;

// What a model takes and gives, to build its input from a table.
typedef struct {
    drover_model_t model;     // the version described
    char **features;          // input column names, in the model's order
    size_t n_features;        //   their count
    char *target;             // target column name
    char **classes;           // output columns (classification), else NULL
    size_t n_classes;         //   their count
    bool labels_numeric;      // classes were numbers in the training data
    drover_lineage_t lineage; // how it came to be
} drover_schema_t;

// Returns 0 and fills *out (free its contents with drover_schema_clear).
int drover_model_schema(drover_t *self,
                        const char *name,
                        uint32_t version,
                        drover_schema_t *out,
                        drover_error_t *err);
void drover_schema_clear(drover_schema_t *s);

// Remove one version (0: all versions). *removed (may be NULL) gets the
// count. DV_ENOMODEL when nothing matched.
int drover_model_rm(drover_t *self,
                    const char *name,
                    uint32_t version,
                    unsigned *removed,
                    drover_error_t *err);

// ------------------------------------------------------- workers, status

typedef struct {
    char name[129];
    uint32_t capacity; // jobs at once
    uint32_t running;  // jobs now
    char **models;     // "NAME@VERSION" loaded
    size_t n_models;
    char **datasets; // stored data sets it holds, "NAME@VERSION"
    size_t n_datasets;
    uint64_t idle_ms; // since its last message
    char state[16];   // "ready" or "draining"
    // Its load as the worker says it (protocol 1.5; added fields, at the
    // end). capacity counts the jobs it may hold (its compute threads plus
    // prefetch), running the jobs it holds; of those, computing are on its
    // concurrency compute threads now and the rest wait.
    uint32_t concurrency; // compute threads (0: not said, an older worker)
    uint32_t computing;   // jobs computing now (valid if computing_known)
    bool computing_known; // false: an older worker, not said
    // All it holds (protocol 1.7; added fields, at the end): a worker
    // holding many lists only the names that fit 8 KiB each
    // (n_models <= models_total).
    size_t models_total;
    size_t datasets_total;
} drover_worker_t;

// Connected workers: *workers of *n (free with drover_workers_free).
int drover_workers(drover_t *self,
                   drover_worker_t **workers,
                   size_t *n,
                   drover_error_t *err);
void drover_workers_free(drover_worker_t **workers, size_t n);

// One queue: jobs in each state now, and outcomes since the broker
// started.
typedef struct {
    char name[129];
    uint64_t queued, running, retrying, dead;  // now
    uint64_t done, failed, expired, cancelled; // since the broker started
    uint64_t bytes;                            // payload of unfinished jobs
} drover_queue_t;

typedef struct {
    char broker[64];       // "drover-broker 0.1.0"
    uint64_t workers;      // connected
    uint64_t queued;       // jobs waiting, all queues
    uint64_t running;      // jobs on workers
    uint64_t retrying;     // jobs waiting for a retry's backoff
    uint64_t dead;         // jobs in the dead-letter queue
    uint64_t kept_results; // results kept for fetching

    uint64_t models;        // model versions stored
    drover_queue_t *queues; // per queue (free with drover_status_clear)
    size_t n_queues;
} drover_status_t;

int drover_status(drover_t *self, drover_status_t *out, drover_error_t *err);
void drover_status_clear(drover_status_t *s);

// ------------------------------------------------------- security (admin)

// One audit log entry: who (key id; "" in plain mode) did what to which
// object, and how it ended ("ok", "refused: ...", "error: ...").
typedef struct {
    uint64_t seq;
    uint64_t unix_ms;
    char key[65];
    char action[32];
    char object[256];
    char outcome[320];
} drover_audit_entry_t;

// Audit entries from since_unix_ms on (0: all the broker holds in memory),
// oldest first, at most the newest 200 of them (*more set when older ones
// were left out: ask again from a later time). *entries: free() it.
// DV_EPERM without the admin role.
int drover_audit(drover_t *self,
                 uint64_t since_unix_ms,
                 drover_audit_entry_t **entries,
                 size_t *n,
                 bool *more,
                 drover_error_t *err);

// Reload the broker's authorized keys (as SIGHUP does); *keys (may be
// NULL) gets how many it holds now. DV_EPERM without the admin role;
// DV_EINVAL in plain mode; a bad key file: its error (the old keys stay).
int drover_admin_reload(drover_t *self, size_t *keys, drover_error_t *err);

// ---------------------------------------------------------- broker groups
//
// A group is 3 or 5 drover-brokers replicating one state (raft; protocol
// 1.6); only its leader serves. Give drover_connect every member's client
// endpoint, comma-separated ("tcp://a:7470,tcp://b:7470,tcp://c:7470"; so
// does $DROVER_BROKER): the connection finds the leader, follows it when
// it changes (a member answering DV_ENOTLEADER, a dropped or silent
// connection: a `ping` after 400 ms of silence), and sends again what it
// safely can: reads, requests a member refused with DV_ENOTLEADER, and
// submits not yet accepted — with a list every submit without an
// idempotency_key gets a random one, so a resent job never runs twice.
// Jobs accepted before the change get their results from the new leader by
// job id (it does not push them). Any other write whose answer never came
// fails with DV_EIO, saying the leader changed and its outcome is unknown:
// check, then retry. Blocking calls keep trying within their timeout. One
// endpoint behaves as without groups (DV_ENOTLEADER is an error).

// One member of a group, as `cluster` reports it. Strings are "" when not
// known yet.
typedef struct {
    uint64_t id;
    char raft[256];   // HOST:PORT of its raft traffic
    char client[256]; // its endpoints
    char worker[256]; //
    char http[256];   //
    bool voter;       // counts for the majority
    char role[16];    // "leader", "follower", "candidate" or "unknown"
    uint64_t match;   // the leader's view: highest log index it holds
} drover_member_t;

typedef struct {
    uint64_t self;            // the answering member's id (0: not in a group)
    uint64_t leader;          // the leader's id (0: none known)
    uint64_t term;            // raft term
    uint64_t commit;          // highest committed log index
    uint64_t applied;         // highest applied
    uint64_t last;            // last in the log (a member's lag: last - match)
    drover_member_t *members; // owned: drover_cluster_clear frees them
    size_t n_members;         // 0 for a single broker
} drover_cluster_t;

// The group as the connected member sees it (any member answers, leader or
// not). A single broker of 1.6 answers with no members; an older one with
// its error for an unknown request. Fills *out (free its members with
// drover_cluster_clear, also after a failure).
int drover_cluster(drover_t *self, drover_cluster_t *out, drover_error_t *err);
void drover_cluster_clear(drover_cluster_t *c);

// Add member id, whose raft traffic is at raft ("HOST:PORT"; start it with
// --raft-join), to the group / remove member id. Returns once the change is
// committed (the admin role with CURVE), or the broker's error.
int drover_member_add(drover_t *self,
                      uint64_t id,
                      const char *raft,
                      drover_error_t *err);
int drover_member_remove(drover_t *self, uint64_t id, drover_error_t *err);

#ifdef __cplusplus
}
#endif

#endif
