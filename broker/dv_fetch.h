// dv_fetch — chunked transfers of model files and data sets to workers.
//
// Owns: fetch_model and fetch_dataset: the file read on the thread pool, sent
// back in DATASET_CHUNK pieces; fetches wait their turn while their worker
// holds DV_MAX_WORKER_QUEUED_BYTES of replies unread (self->wout) or has a
// read on the pool.
//
// May call: dv_broker.c (through dv_broker_int.h), dv_workers_msg.h and
// common/. Internal to broker/ (not installed); loop thread only.
#ifndef DV_FETCH_H
#define DV_FETCH_H

#include "dv_broker_int.h"

// fetch_model from worker w: queue it (see dv_fetch_pump); it is read on
// the pool and answered with model_data. Returns 0, or DV_E* with err set
// (DV_ELIMIT: DV_MAX_WORKER_FETCHES of this worker already wait).
int dv_fetch_on_model(dv_broker_t *self,
                      worker_t *w,
                      const dv_msg_t *m,
                      uint64_t rid,
                      dv_error_t *err);

// fetch_dataset {name, version, offset}: answered by dataset_data {name,
// version, sha256, bytes, offset} + frame 1 with up to 4 MiB from offset.
int dv_fetch_on_dataset(dv_broker_t *self,
                        worker_t *w,
                        const dv_msg_t *m,
                        uint64_t rid,
                        dv_error_t *err);

// Start the waiting fetches that may go now (their worker has room and no
// read in progress); those held back by bytes look again in FETCH_RETRY_MS.
void dv_fetch_pump(dv_broker_t *self);

// Drop the waiting fetches (the broker is closing). Reads already on the
// pool still finish and answer.
void dv_fetch_close(dv_broker_t *self);

#endif
