// dv_sched — the broker's scheduling state: queued jobs per named queue,
// workers with their capacity (credits) and held models, and which job runs
// where. Pure bookkeeping, no I/O and no clock: the broker feeds it events
// (submit, worker joined/left, job done) and asks it what to send where, so
// every scheduling rule is unit-testable without sockets.
//
// Rules (docs/PROTOCOL.md, "Credit-based scheduling"):
//   - a job goes only to a worker with a free slot (running < capacity);
//   - among those, one that already holds the job's model wins (affinity),
//     else the least loaded (running / capacity, then fewest running, then
//     the longest-registered worker, so ties are deterministic);
//   - queues take turns (round robin); within a queue the highest priority
//     goes first, first in first out within a priority, and waiting ages a
//     job: every aging_ms waited counts as one priority level more, so low
//     priority work is never starved by a stream of higher priority work;
//   - a job whose worker leaves goes back to the front of its queue with its
//     attempt count kept; past max_attempts it fails instead;
//   - a job can be held (waiting for a retry's backoff: in no queue, taking
//     no slot) and released into its queue later.
// Threads: one (the broker's loop thread). The scheduler reads no clock:
// the broker tells it the time (dv_sched_tick).
#ifndef DV_SCHED_H
#define DV_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dv_err.h"

typedef struct dv_sched dv_sched_t;

// Never NULL; caller owns it.
dv_sched_t *dv_sched_new(void);

// Frees all bookkeeping (not the broker's job bodies); *self_p = NULL.
void dv_sched_destroy(dv_sched_t **self_p);

// Queue job id on queue (created on first use), needing model ("" for jobs
// that need none, like echo). Strings are copied. Returns 0, or DV_EINVAL
// when the id is already known or max_attempts is 0.
int dv_sched_submit(dv_sched_t *self,
                    uint64_t job,
                    const char *queue,
                    const char *model,
                    uint32_t max_attempts);

// dv_sched_submit with a priority (higher runs first; dv_sched_submit uses
// 0).
int dv_sched_submit_prio(dv_sched_t *self,
                         uint64_t job,
                         const char *queue,
                         const char *model,
                         uint32_t max_attempts,
                         int32_t priority);

// The current time in ms on any monotonic clock (never goes back; earlier
// values are ignored). Aging measures waiting with it.
void dv_sched_tick(dv_sched_t *self, uint64_t now_ms);

// Waiting aging_ms is worth one priority level (0: no aging, strict
// priorities). Default 0.
void dv_sched_set_aging(dv_sched_t *self, uint64_t aging_ms);

// A worker joined (or re-registered: its running jobs are kept) with
// capacity slots. Returns 0 or DV_EINVAL (capacity 0).
int dv_sched_worker_add(dv_sched_t *self, uint64_t worker, uint32_t capacity);

// Replace the set of models worker holds (from register/heartbeat).
// Unknown workers are ignored.
void dv_sched_worker_models(dv_sched_t *self,
                            uint64_t worker,
                            const char *const *models,
                            size_t n);

// What happened to one job when its worker left.
typedef struct {
    uint64_t job;      // the job
    bool failed;       // true: attempts exhausted; false: queued again
    uint32_t attempts; // attempts made so far
} dv_sched_lost_t;

// The queues worker serves (from register; strings copied). None (n 0):
// every queue. Unknown workers are ignored.
void dv_sched_worker_queues(dv_sched_t *self,
                            uint64_t worker,
                            const char *const *queues,
                            size_t n);

// A worker left or was declared dead. Its running jobs go back to the front

// of their queues, or fail past max_attempts; each is reported through lost
// (caller-owned array of at least dv_sched_worker_running(worker) entries;
// may be NULL), the count in *n_lost. Unknown workers: nothing happens.
void dv_sched_worker_remove(dv_sched_t *self,
                            uint64_t worker,
                            dv_sched_lost_t *lost,
                            size_t *n_lost);

// The broker took the worker away (its key was revoked): as
// dv_sched_worker_remove, but the run each job loses does not count
// against it: its max_attempts grows by one (attempt numbers are never
// reused, so a late answer from the evicted run stays recognisable), so
// every job goes back to the front of its queue and none fails here.
void dv_sched_worker_evict(dv_sched_t *self,
                           uint64_t worker,
                           dv_sched_lost_t *lost,
                           size_t *n_lost);

// Pick the next dispatch: sets *job, *worker and *attempt (1-based) and
// marks the job running there. Returns true, or false when no queued job
// can go anywhere now.
bool dv_sched_next(dv_sched_t *self,
                   uint64_t *job,
                   uint64_t *worker,
                   uint32_t *attempt);

// Whether a queued job may join a batch (dv_sched_ride): the caller's
// rule (rows, kind), asked in queue order.
typedef bool(dv_sched_fits_fn)(uint64_t job, void *arg);

// Dynamic batching: after dv_sched_next gave lead to a worker, take queued
// jobs of the same queue, priority and model (not heavy) to run there too,
// in the same forward pass: they take no slot (riders), so what waits
// behind a busy worker goes in one pass instead of one by one. Jobs are
// offered to fits in first-in-first-out order (other models' jobs are
// skipped and keep their places); the first it refuses ends the ride. At
// most max; their ids and attempt numbers (1-based) go to jobs and
// attempts. Each then runs, finishes, fails and is lost like any running
// job. Returns how many (0 when lead is not running, is heavy or needs no
// model).
size_t dv_sched_ride(dv_sched_t *self,
                     uint64_t lead,
                     dv_sched_fits_fn *fits,
                     void *arg,
                     uint64_t *jobs,
                     uint32_t *attempts,
                     size_t max);

// Start fetching what finding job will touch: round 0 its table slot,
// round 1 (after round 0 for a batch of ids) the entry there. A hint: it
// changes nothing (dv_broker_job_prefetch says why).
void dv_sched_prefetch(const dv_sched_t *self, uint64_t job, int round);

// The job finished (done or failed by its own error) on worker: frees the
// slot and forgets the job. Returns 0, or DV_ENOENT when the job is not
// running on that worker (a late answer from a worker declared dead: the
// caller drops it).
int dv_sched_finish(dv_sched_t *self, uint64_t job, uint64_t worker);

// The job failed on worker and will be retried: frees the slot and holds
// the job (in no queue) until dv_sched_release. Returns 0 or DV_ENOENT as
// dv_sched_finish.
int dv_sched_retry(dv_sched_t *self, uint64_t job, uint64_t worker);

// The worker gives job back unstarted (it is draining): the job goes to the
// front of its queue with its run refunded (max_attempts grows by one, so
// attempt numbers stay unique and the give-back costs no attempt). Returns
// 0 or DV_ENOENT as dv_sched_finish.
int dv_sched_give_back(dv_sched_t *self, uint64_t job, uint64_t worker);

// Hold a queued job (given back by a lost worker, to wait for its backoff).
// Returns 0 or DV_ENOENT (unknown, running or held).
int dv_sched_hold(dv_sched_t *self, uint64_t job);

// worker says it runs job as its current attempt, or has just run it (its
// `done` came): a broker group's new leader (the job recovered from the log,
// held or queued) or a worker back on a new connection (the job on its old
// one, from: that connection's handle; 0: the job must not be running). The
// job runs on worker from now on, its attempt count unchanged. A claim that
// takes a slot (need_room) is refused while worker's slots are full; a done
// ends the job at once and takes none. The caller checks the attempt and,
// for from, that both connections are the same worker's.
// Returns 0, or DV_ENOENT (unknown job, or not where from says),
// DV_EINVAL (unknown worker), DV_EPERM (worker does not serve the job's
// queue), DV_ELIMIT (no free slot).
int dv_sched_claim(dv_sched_t *self,
                   uint64_t job,
                   uint64_t worker,
                   uint64_t from,
                   bool need_room);

// A waiting or held job's current attempt does not count (it was lost to a
// broker's leader change, not to the job): max_attempts grows by one.
// Returns 0 or DV_ENOENT (unknown or running).
int dv_sched_refund(dv_sched_t *self, uint64_t job);

// Put a held job at the back of its queue (its priority level). Returns 0
// or DV_ENOENT (not held).
int dv_sched_release(dv_sched_t *self, uint64_t job);

// Longest wait before a retry, whatever dv_dead_backoff_ms and failures say.
#define DV_SCHED_BACKOFF_CAP_MS 60000

// How long a job waits (held) before its next attempt: base_ms x
// 2^(failures - 1), capped at DV_SCHED_BACKOFF_CAP_MS, with "equal jitter":
// half of it fixed, the other half random (uniform, from the xorshift64
// state *rng, which it advances; *rng must not be 0), so retries of many
// jobs that failed together do not arrive together. base_ms 0: 0 (retry at
// once; *rng untouched). failures: failed attempts so far (>= 1).
uint64_t
dv_sched_backoff_ms(uint32_t base_ms, uint32_t failures, uint64_t *rng);

// Set the attempts a queued job has used (a job recovered from the store
// after a restart). Returns 0 or DV_ENOENT (unknown or running).
int dv_sched_set_attempts(dv_sched_t *self, uint64_t job, uint32_t attempts);

// Remove a queued or held (not running) job, e.g. cancelled or expired.
// Returns 0 or DV_ENOENT.
int dv_sched_cancel(dv_sched_t *self, uint64_t job);

typedef enum {
    DV_SCHED_QUEUED,
    DV_SCHED_RUNNING,
    DV_SCHED_HELD
} dv_sched_state_t;

// State of a job and attempts so far. Returns 0 or DV_ENOENT as dv_sched_job.
int dv_sched_job_state(const dv_sched_t *self,
                       uint64_t job,
                       dv_sched_state_t *state,
                       uint32_t *attempts);

// State of a job the scheduler holds: *running (else queued) and attempts so
// far. Returns 0, or DV_ENOENT for jobs it does not hold (finished, failed,
// cancelled or never submitted).
int dv_sched_job(const dv_sched_t *self,
                 uint64_t job,
                 bool *running,
                 uint32_t *attempts);

// Mark a queued job heavy (training): a worker runs at most its heavy cap
// of those at once, so its other slots stay for light work (inference).
// Returns 0 or DV_ENOENT (unknown or running).
int dv_sched_set_heavy(dv_sched_t *self, uint64_t job);

// Heavy jobs worker runs at once (0: no limit, the default).
void dv_sched_worker_heavy_cap(dv_sched_t *self, uint64_t worker, uint32_t cap);

// The worker is draining (it said `bye`): it gets no new jobs; those it
// runs finish normally. A new dv_sched_worker_add ends draining.
void dv_sched_worker_drain(dv_sched_t *self, uint64_t worker);

// The worker a running job runs on. Returns 0 or DV_ENOENT (not running).
int dv_sched_job_worker(const dv_sched_t *self, uint64_t job, uint64_t *worker);

// Jobs waiting in the queue named name, held ones included (0 for unknown
// queues).
size_t dv_sched_queue_waiting(const dv_sched_t *self, const char *name);

// Queues known (created by submits; never removed while the broker runs).
size_t dv_sched_queue_count(const dv_sched_t *self);

// The index of the queue named name (for dv_sched_queue_info), found
// without a walk of every queue; SIZE_MAX for an unknown one.
size_t dv_sched_queue_find(const dv_sched_t *self, const char *name);

// Queue i (0-based): its name (borrowed) and jobs waiting/running; NULL
// when i is out of range.
const char *dv_sched_queue_info(const dv_sched_t *self,
                                size_t i,
                                size_t *queued,
                                size_t *running);

// Jobs of queue i held for a retry (0 when out of range).
size_t dv_sched_queue_held(const dv_sched_t *self, size_t i);

size_t dv_sched_queued(const dv_sched_t *self); // jobs waiting
size_t dv_sched_held(const dv_sched_t *self);   // jobs held for a retry

size_t dv_sched_running(const dv_sched_t *self); // jobs on workers

// Write the ids of the jobs on workers (when running) and of those held for
// a retry (when held) to ids, which has room for dv_sched_running() +
// dv_sched_held() of them; returns how many. In no order. Costs those jobs,
// not every job: job_list by state reads these.
size_t
dv_sched_ids(const dv_sched_t *self, bool running, bool held, uint64_t *ids);
size_t dv_sched_workers(const dv_sched_t *self); // workers known
// Jobs running on one worker (0 for unknown workers).
size_t dv_sched_worker_running(const dv_sched_t *self, uint64_t worker);

#endif
