// dv_batching — jobs on their way to workers, alone or in batches.
//
// Owns: dispatch (dv_sched_next drained into `run` messages), the riders that
// an infer job takes along (dv_sched_ride, up to max_batch_rows) and their
// `run_batch` to 1.4 workers; the batch messages both ways: a client's
// submit_many and a worker's done_batch.
//
// May call: dv_broker.c (through dv_broker_int.h), dv_dead.h, dv_results.h,
// dv_spill.h, dv_timers.h, dv_workers_msg.h and common/. Internal to broker/
// (not installed); loop thread only.
#ifndef DV_BATCHING_H
#define DV_BATCHING_H

#include "dv_broker_int.h"

// Send every job that can run now. An infer job takes the infer jobs
// waiting behind it for the same model version along (up to the model's
// max_batch_rows): they ride on its slot, and the worker runs them as one
// forward pass (docs/ARCHITECTURE.md, Dynamic batching).
void dv_batching_dispatch(dv_broker_t *self);

// submit_many (1.4): `requests`, each a `submit`'s fields with its own
// `rid` and `bytes` (its payload's length; the payloads lie one after
// another in frame 1). Each is served as the submit it would be alone —
// authorized, accepted or refused, its result sent — under its own rid.
// When the payloads do not add up to frame 1, each request is refused
// under its rid; a message whose requests cannot all be told apart (no
// array, a request without a rid) is refused as a whole.
int dv_batching_on_submit_many(dv_broker_t *self,
                               dv_wire_msg_t *in,
                               const dv_msg_t *m,
                               dv_error_t *err);

// done_batch (1.4): the infer jobs of one forward pass that succeeded,
// `jobs` [[job, attempt, rows], ...] in the order of their outputs' rows in
// frame 1. Each is checked as its own `done` would be (a stale or foreign
// one is dropped, its rows skipped); a job whose rows disagree with its
// input, or a message whose rows do not add up, fails the jobs it names
// that run here (malformed result).
int dv_batching_on_done_batch(dv_broker_t *self,
                              worker_t *w,
                              const dv_msg_t *m,
                              dv_error_t *err);

#endif
