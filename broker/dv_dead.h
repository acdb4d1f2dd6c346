// dv_dead — failed attempts, retries and the dead-letter queue.
//
// Owns: a job's failed attempts (job_t.errors and their DV_STORE_ATTEMPTS
// record), the retry decision and backoff (dv_dead_job_failed_run,
// retry_later), and the dead-letter queue (self->dead, oldest first, and its
// DV_STORE_DEAD records). Handlers: dead_list, dead_requeue, dead_purge.
//
// May call: dv_broker.c (through dv_broker_int.h), dv_commit.h, dv_jobs_msg.h,
// dv_page.h, dv_results.h, dv_timers.h and common/. Internal to broker/ (not
// installed); loop thread only.
//
// The on_* handlers are client_handler_fn: their
// arguments, replies and returns are documented there (dv_broker_int.h).
#ifndef DV_DEAD_H
#define DV_DEAD_H

#include "dv_broker_int.h"

// Errors that may not happen again elsewhere or later (a worker's I/O or
// memory trouble, a model damaged in transit, a lost worker): the job is
// retried. Any other error is the job's own (bad input, unknown model) and
// would fail the same way again: it ends the job at once.
bool dv_dead_retryable(int code);

// Read an attempts record into j (a 4-byte record is the older format:
// the count only). Returns 0 or DV_EFORMAT.
int dv_dead_attempts_decode(job_t *j, const uint8_t *p, size_t len);

// Stage j's failed attempts for the next commit (durable jobs only).
void dv_dead_store_attempts(dv_broker_t *self, const job_t *j);

// Note a failed attempt of j (kept with the job, its result and its
// dead-letter entry; stored).
void dv_dead_record_error(dv_broker_t *self,
                          job_t *j,
                          int code,
                          const char *worker,
                          const char *text);

// Wait before the next attempt (dv_sched_backoff_ms: doubling, capped,
// equal jitter).
uint64_t dv_dead_backoff_ms(dv_broker_t *self, const job_t *j);

// Append d to the dead-letter queue; takes ownership of its job and text.
// Counts it in its queue's and the total bytes; dv_dead_trim bounds them.
void dv_dead_push(dv_broker_t *self, dead_t d);

// Drop the oldest dead letters while more than self->max_dead or
// self->max_dead_bytes of payload are held (--max-dead, --max-dead-bytes,
// DV_MAX_DEAD_*): from memory and the store (staged for the next commit);
// their failed results stay kept. Counted in dead_dropped, logged.
void dv_dead_trim(dv_broker_t *self);

// The job ends failed and goes to the dead-letter queue (its attempts are
// used up, or it is quarantined), where `drover dead` can inspect, requeue
// or purge it. Not in the scheduler any more.
void dv_dead_job(dv_broker_t *self,
                 job_t *j,
                 int code,
                 const char *text,
                 const char *worker);

// A run of j ended in a retryable failure (a lost worker, or a worker's
// retryable error): quarantine it, send it to the dead letters, or hold it
// for its backoff. The scheduler already took it off the worker: held
// (retry_held) or back at the front of its queue.
void dv_dead_job_failed_run(dv_broker_t *self,
                            job_t *j,
                            int code,
                            const char *worker,
                            const char *text,
                            bool worker_died,
                            bool sched_removed);

// The dead letter of job id (its index in *index when not NULL), or NULL.
// Borrowed.
dead_t *dv_dead_find(const dv_broker_t *self, uint64_t id, size_t *index);

// dead_list {job?, queue?, limit?}: dead letters, oldest first, each with
// its final error and every failed attempt.
client_handler_fn dv_dead_on_list;

// dead_requeue {job | all, queue?}: each selected dead letter becomes a new
// job (a new id, attempts from zero, same queue, kind, payload, priority
// and options; a deadline counts again from now) and leaves the dead-letter
// queue. The old id keeps its failed result. Answered once stored.
client_handler_fn dv_dead_on_requeue;

// dead_purge {job | all, queue?}: drop dead letters for good (their failed
// results stay until their TTL). Answered once stored.
client_handler_fn dv_dead_on_purge;

#endif
