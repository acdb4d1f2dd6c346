// dv_recover — a broker's start over its store: recovery.
//
// Owns: reading every record kind back (results, cursors, marks, jobs,
// checkpoints, attempts, dead letters, idempotency keys) into the tables
// the other modules own, in the order dv_recover_run() gives.
//
// May call: dv_broker.c (through dv_broker_int.h), dv_dead.h, dv_idem.h,
// dv_jobs_msg.h, dv_results.h, dv_spill.h and common/. Internal to broker/ (not
// installed); loop thread only.
#ifndef DV_RECOVER_H
#define DV_RECOVER_H

#include "dv_broker_int.h"

// Rebuild queued jobs and kept results from the store. A job that was
// running when the broker stopped counts that attempt; past max_attempts
// it fails with the reason, like a job whose worker died.
int dv_recover_run(dv_broker_t *self, dv_error_t *err);

#endif
