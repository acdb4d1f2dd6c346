// dv_jobs_msg — jobs from clients: submit, and what clients ask of jobs.
//
// Owns: submit (checks, the job record, acceptance into dv_sched or a spill),
// job_get, job_cancel, status; a job's store record
// (dv_jobs_msg_encode/dv_jobs_msg_decode); where a job stands
// (dv_jobs_msg_state, also for job_list: dv_joblist).
//
// May call: dv_broker.c (through dv_broker_int.h), dv_commit.h, dv_dead.h,
// dv_idem.h, dv_models_msg.h, dv_results.h,
// dv_spill.h, dv_timers.h and common/. Internal to broker/ (not installed);
// loop thread only.
//
// The on_* handlers are client_handler_fn: their
// arguments, replies and returns are documented there (dv_broker_int.h).
#ifndef DV_JOBS_MSG_H
#define DV_JOBS_MSG_H

#include <stdbool.h>
#include <stddef.h>

#include <msgpack.h>

#include "dv_broker_int.h"

// A field of a job's training spec (dv_jobs_msg_spec_each): its key
// (NUL-terminated;
// "" when longer than a spec key can be, or holding a NUL), its value
// (borrowed for the call), and the field's packed bytes, key and value.
// Returns whether to go on.
typedef bool(dv_jobs_msg_spec_field_fn)(void *arg,
                                        const char *key,
                                        const msgpack_object *value,
                                        const char *raw,
                                        size_t raw_len);

// Call fn for each field of j's spec (j->spec: train_spec's layout at the
// head of its payload), in order, until fn says stop or a field is damaged.
void
dv_jobs_msg_spec_each(const job_t *j, dv_jobs_msg_spec_field_fn *fn, void *arg);

// Schedule an accepted job. A durable one whose record is committed
// (may_spill) goes to the store only when its queue is deep: then j is
// freed and true returned.
bool dv_jobs_msg_schedule(dv_broker_t *self, job_t *j, bool may_spill);

// Tell its submitter, then schedule it (committed, when there is a store).
void dv_jobs_msg_accept(dv_broker_t *self, job_t *j);

// While a submit_many or a commit's acceptances are handled (1.4): the
// `accepted` of jobs that came in a submit_many are gathered per
// connection and sent as one `accepted_many` each ([rid, job] pairs)
// when flushed. Begin returns false when gathering is on already (the
// caller then does not flush).
bool dv_jobs_msg_accepts_begin(dv_broker_t *self);
void dv_jobs_msg_accepts_flush(dv_broker_t *self);

// j as its DV_STORE_JOBS record (dv_records.h). Caller owns the result
// (DV_STORE_SPARE bytes of room after *len).
uint8_t *dv_jobs_msg_encode(const job_t *j, size_t *len);

// A job from its store record (no submitter connection: its result is
// kept for result_get). NULL with the reason on a bad record.
job_t *dv_jobs_msg_decode(uint64_t id,
                          const uint8_t *p,
                          size_t len,
                          const uint8_t *route,
                          size_t route_len,
                          dv_error_t *err);

// submit; a train or evaluate job may name a stored data set (`dataset`:
// NAME or NAME@VERSION) instead of carrying its CSV: the version is
// resolved now and the job names it; workers fetch it (fetch_dataset).
int dv_jobs_msg_on_submit(dv_broker_t *self,
                          const dv_wire_msg_t *in,
                          const dv_msg_t *m,
                          dv_error_t *err);

// A job's state as job_get and job_list name it (dv_jobs_msg_state_name).
typedef enum {
    DV_JOB_QUEUED,
    DV_JOB_RUNNING,
    DV_JOB_RETRYING,
    DV_JOB_DONE,
    DV_JOB_FAILED,
    DV_JOB_DEAD,
    DV_JOB_EXPIRED,
    DV_JOB_CANCELLED,
    DV_JOB_STATES_
} dv_job_state_t;

// The protocol's name of state ("queued", ...; "" out of range).
const char *dv_jobs_msg_state_name(int state);

// Where job id stands (a dv_job_state_t); -1 when the broker knows nothing
// of it (unknown, result expired, or accepted but not committed yet).
// *live gets the job while it is unfinished or dead, else NULL (borrowed:
// valid until the next call); *attempts the runs so far.
int dv_jobs_msg_state(dv_broker_t *self,
                      uint64_t id,
                      const job_t **live,
                      uint32_t *attempts);

// Whether job id ended but its outcome is not committed yet: a reply that
// reports it waits for the commit, like the result itself.
bool dv_jobs_msg_outcome_unstored(const dv_broker_t *self, uint64_t id);

// job_get: reply a job's state.
client_handler_fn dv_jobs_msg_on_get;

// Cancel a job: a queued one leaves its queue; a running one's worker is
// told to drop it (its slot stays taken until the worker answers). Either
// way the job ends now as failed with DV_ECANCELED, and that outcome is
// stored with the result, so the cancel survives a restart.
client_handler_fn dv_jobs_msg_on_cancel;

// status: reply the broker's figures.
client_handler_fn dv_jobs_msg_on_status;

#endif
