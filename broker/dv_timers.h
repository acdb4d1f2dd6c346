// dv_timers — timed events: retry backoffs, deadlines, run timeouts.
//
// Owns: self->timeq (T_RELEASE, T_DEADLINE, T_TIMEOUT, T_UNCLAIMED
// entries) and the one uv timer armed for the earliest of them; what each
// does when due.
//
// May call: dv_broker.c (through dv_broker_int.h), dv_batching.h, dv_dead.h,
// dv_results.h, dv_spill.h and common/. Internal to broker/ (not installed);
// loop thread only.
#ifndef DV_TIMERS_H
#define DV_TIMERS_H

#include "dv_broker_int.h"

// Fire tag (T_*) for job id at loop time at; attempt tells a stale run's
// timer from the current one.
void dv_timers_add(dv_broker_t *self,
                   uint64_t at,
                   uint64_t id,
                   uint32_t tag,
                   uint32_t attempt);

// A job not started by its deadline ends as expired (it is in no queue and
// on no worker when this is called).
void dv_timers_job_expire(dv_broker_t *self, job_t *j);

// Tell the worker running j to drop it.
void dv_timers_cancel_on_worker(dv_broker_t *self, const job_t *j);

#endif
