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
#include <stdint.h>

typedef struct dv_tworker dv_tworker_t;

// Connect to the broker's worker endpoint, register as name with capacity
// slots, serving only queue (NULL: every queue), and wait for the `welcome`
// (DV_PROC_DEADLINE_MS). NULL on failure, with the reason on stderr. Caller
// owns the result (dv_tworker_stop).
dv_tworker_t *dv_tworker_start(const char *endpoint,
                               const char *name,
                               uint32_t capacity,
                               const char *queue,
                               int heartbeat_ms);

// Close the socket without a word (no `bye`) and free; *self_p = NULL.
// NULL-safe.
void dv_tworker_stop(dv_tworker_t **self_p);

// Wait up to wait_ms (heartbeating) for the next `run`: true with its job
// and attempt; false at the deadline.
bool dv_tworker_next_run(dv_tworker_t *self,
                         int wait_ms,
                         uint64_t *job,
                         uint32_t *attempt);

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

// Unix milliseconds now (gettimeofday, as the broker records times).
uint64_t dv_test_unix_ms(void);

#endif
