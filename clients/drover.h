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
// (they are cheap: a socket each).
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
// DROVER_DEFAULT_ENDPOINT) and say hello; waits up to timeout_ms (<0:
// forever) for the broker's welcome. Returns 0 and *out, DV_ETIMEDOUT (no
// broker answered), DV_EVERSION (the broker speaks another protocol major),
// DV_EINVAL (bad endpoint).
int drover_connect(drover_t **out,
                   const char *endpoint,
                   int timeout_ms,
                   drover_error_t *err);

// Close the connection; results not yet received are dropped (the broker
// keeps them for drover_wait from another connection). NULL-safe.
void drover_destroy(drover_t **self_p);

// The endpoint in use. Borrowed.
const char *drover_endpoint(const drover_t *self);

// ------------------------------------------------------------------ jobs

// What to run. Fields not used by a kind are ignored; pointers are read
// during the submit call only (the library copies what it sends).
typedef struct {
    const char *queue;      // queue name; NULL: "default"
    const char *kind;       // "echo" or "infer"
    const void *payload;    // echo: bytes sent back as the result
    size_t payload_len;     //   their count
    const char *model;      // infer: "NAME" (latest) or "NAME@VERSION"
    const float *input;     // infer: rows x cols, row-major, host floats
    size_t rows, cols;      //   its shape (cols = the model's features)
    uint32_t max_attempts;  // runs before a lost job fails (0: broker's 3)
    const char *durability; // "commit" (NULL: the default: acknowledged
                            // once stored, with a broker data dir) or
                            // "none" (memory only: faster, lost if the
                            // broker stops)
} drover_job_t;

#define DROVER_JOB_INIT                                                        \
    {                                                                          \
        NULL, "echo", NULL, 0, NULL, NULL, 0, 0, 0, NULL                       \
    }

// A job's final outcome. Owned by whoever got it (see each function).
typedef struct drover_result drover_result_t;

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

// Receive for up to timeout_ms (0: only what is waiting; <0: until at
// least one callback ran) and run the callbacks of results that arrived.
// Returns the number of callbacks run (>= 0) or an error.
int drover_poll(drover_t *self, int timeout_ms, drover_error_t *err);

// Async submits whose result has not been delivered yet.
size_t drover_pending(const drover_t *self);

// Where a job is: state "queued", "running", "done" or "failed".
typedef struct {
    uint64_t job;
    char state[16];
    uint32_t attempts;
    char queue[129]; // "" once finished
    char kind[16];   // "" once finished
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

// Jobs newest first: state "queued", "running", "done", "failed" or NULL
// (all), queue name or NULL (all; finished jobs do not keep their queue),
// at most limit (0: 100; the broker caps it at 10,000). *jobs (caller
// frees with free()) of *n.
int drover_job_list(drover_t *self,
                    const char *state,
                    const char *queue,
                    unsigned limit,
                    drover_job_info_t **jobs,
                    size_t *n,
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

// What a model takes and gives, to build its input from a table.
typedef struct {
    drover_model_t model; // the version described
    char **features;      // input column names, in the model's order
    size_t n_features;    //   their count
    char *target;         // target column name
    char **classes;       // output columns (classification), else NULL
    size_t n_classes;     //   their count
    bool labels_numeric;  // classes were numbers in the training data
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
    uint64_t idle_ms; // since its last message
    char state[16];   // "ready" or "draining"
} drover_worker_t;

// Connected workers: *workers of *n (free with drover_workers_free).
int drover_workers(drover_t *self,
                   drover_worker_t **workers,
                   size_t *n,
                   drover_error_t *err);
void drover_workers_free(drover_worker_t **workers, size_t n);

typedef struct {
    char name[129];
    uint64_t queued, running;
} drover_queue_t;

typedef struct {
    char broker[64];        // "drover-broker 0.1.0"
    uint64_t workers;       // connected
    uint64_t queued;        // jobs waiting, all queues
    uint64_t running;       // jobs on workers
    uint64_t kept_results;  // results kept for fetching
    uint64_t models;        // model versions stored
    drover_queue_t *queues; // per queue (free with drover_status_clear)
    size_t n_queues;
} drover_status_t;

int drover_status(drover_t *self, drover_status_t *out, drover_error_t *err);
void drover_status_clear(drover_status_t *s);

#ifdef __cplusplus
}
#endif

#endif
