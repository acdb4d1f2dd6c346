// dv_fetch — chunked transfers of model files and data sets to workers.
//
// Owns: fetch_model and fetch_dataset: the file read on the thread pool, sent
// back in DATASET_CHUNK pieces.
//
// May call: dv_broker.c (through dv_broker_int.h), dv_workers_msg.h and
// common/. Internal to broker/ (not installed); loop thread only.
#ifndef DV_FETCH_H
#define DV_FETCH_H

#include "dv_broker_int.h"

// fetch_model from worker w: read the file on the pool, answer with
// model_data. Returns 0, or DV_E* with err set.
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

#endif
