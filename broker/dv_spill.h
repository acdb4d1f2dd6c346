// dv_spill — deep queues: durable jobs that wait in the store only.
//
// Owns: each queue's spills (past SPILL_WINDOW jobs in memory), their refill
// (REFILL_BATCH at a time below REFILL_BELOW) and the skip set of spilled
// jobs already ended (cancelled, expired).
//
// May call: dv_broker.c (through dv_broker_int.h), dv_dead.h, dv_jobs_msg.h,
// dv_results.h, dv_timers.h and common/. Internal to broker/ (not installed);
// loop thread only.
#ifndef DV_SPILL_H
#define DV_SPILL_H

#include "dv_broker_int.h"

// Whether spilled job id already ended (cancelled, expired).
bool dv_spill_skip_has(const dv_broker_t *self, uint64_t id);

// The queue of spilled job id (borrowed), and in *who the key that
// submitted it (0: plain mode, or from before a restart); NULL when id is
// not a spilled job. A spilled job still counts against its key's
// --max-inflight, and only its key (or a consumer or admin) reads or
// cancels it, as while it was in memory.
const char *dv_spill_owner(const dv_broker_t *self, uint64_t id, uint16_t *who);

// Spill j when its queue is deep (see SPILL_WINDOW); j's record must be
// committed. Returns true when j went to the store (and was freed).
bool dv_spill_job(dv_broker_t *self, job_t *j, bool force);

// Keep every deep queue's in-memory window filled.
void dv_spill_refill(dv_broker_t *self);

// A spilled job (queued, in the store only) read back; NULL when id is not
// one. Caller frees it (dv_broker_job_free).
job_t *dv_spill_read(dv_broker_t *self, uint64_t id);

// End a spilled job now (cancelled, expired): its result is recorded, its
// entry is skipped when its turn comes (and its submitter told then).
void dv_spill_end(dv_broker_t *self, job_t *j, int code, const char *text);

#endif
