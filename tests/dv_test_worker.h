// dv_test_worker — a worker the test plays itself, on a raw ZeroMQ socket,
// for promises a real drover-worker cannot be made to show: a worker that
// reports a chosen error (DV_EIO, DV_ENAN ...), answers at a chosen moment,
// or goes silent at a moment the test knows to the millisecond.
//
// It speaks the worker protocol (docs/PROTOCOL.md): `register`, then
// `heartbeat` whenever heartbeat_ms passed since it last sent anything —
// but only while the test is inside one of the calls below: between calls
// it is silent, as a frozen worker is. `run`s that arrive while it waits are
// kept, in order, for dv_tworker_next_run. Plain (no CURVE) endpoints only.
// Threads: none of its own; one test thread uses it.
#ifndef DV_TEST_WORKER_H
#define DV_TEST_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dv_tworker dv_tworker_t;

// A run the worker received: in its own `run`, or one job of a `run_batch`
// (protocol 1.4). An infer run's input shape and its first value.
typedef struct {
    uint64_t job;        //
    uint32_t attempt;    //
    uint32_t rows, cols; // 0: no input tensor
    float first;         // input[0][0]
} dv_trun_t;

// Connect to the broker's worker endpoint, register as name with capacity
// slots, serving only queue (NULL: every queue), and wait for the `welcome`
// (DV_PROC_DEADLINE_MS). NULL on failure, with the reason on stderr. Caller
// owns the result (dv_tworker_stop).
dv_tworker_t *dv_tworker_start(const char *endpoint,
                               const char *name,
                               uint32_t capacity,
                               const char *queue,
                               int heartbeat_ms);

// As dv_tworker_start, registering as protocol 1.minor (an older worker:
// a broker sends a 1.3 worker no run_batch).
dv_tworker_t *dv_tworker_start_minor(const char *endpoint,
                                     const char *name,
                                     uint32_t capacity,
                                     const char *queue,
                                     int heartbeat_ms,
                                     unsigned minor);

// Close the socket without a word (no `bye`) and free; *self_p = NULL.
// NULL-safe.
void dv_tworker_stop(dv_tworker_t **self_p);

// Wait up to wait_ms (heartbeating) for the next `run`: true with its job
// and attempt; false at the deadline.
bool dv_tworker_next_run(dv_tworker_t *self,
                         int wait_ms,
                         uint64_t *job,
                         uint32_t *attempt);

// Like dv_tworker_next_run, with what the run carried.
bool dv_tworker_next(dv_tworker_t *self, int wait_ms, dv_trun_t *out);

// `run` and `run_batch` messages received so far.
void dv_tworker_counts(const dv_tworker_t *self, size_t *runs, size_t *batches);

// Answer n runs with one `done_batch` (1.4): job i's output is rows[i] rows
// of cols floats, one after another in out (a test may name rows that do
// not match the job's input). Returns 0 or a negative DV_E*.
int dv_tworker_done_batch(dv_tworker_t *self,
                          const dv_trun_t *runs,
                          const uint32_t *rows,
                          size_t n,
                          const float *out,
                          size_t cols);

// Answer a run: code 0 sends `done` (no output), else a failed `done` with
// that error's name and text. Returns 0 or a negative DV_E* (send failed).
int dv_tworker_answer(dv_tworker_t *self,
                      uint64_t job,
                      uint32_t attempt,
                      int code,
                      const char *text);

// Stay connected for ms: heartbeat, and keep what arrives.
void dv_tworker_idle(dv_tworker_t *self, int ms);

// Unix milliseconds (the broker's clock) taken just before its last message
// went out: the broker read that message no earlier.
uint64_t dv_tworker_last_sent_unix_ms(const dv_tworker_t *self);

// Lift socket's send high-water mark (ZMQ_SNDHWM: no limit). Every send
// in Drover's code and tests is ZMQ_DONTWAIT, and past libzmq's default of
// 1,000 queued messages a fast burst of sends is dropped. The receive side
// stays as it is: a test of a client that does not read relies on it
// (NULL-safe).
void dv_test_no_hwm(void *socket);

// Unix milliseconds now (gettimeofday, as the broker records times).
uint64_t dv_test_unix_ms(void);

#endif
