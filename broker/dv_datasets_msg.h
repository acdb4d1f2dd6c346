// dv_datasets_msg — the data set catalog's client handlers.
//
// Owns: dataset_push (chunked uploads held in self->uploads until complete),
// dataset_get, _list, _rm, _share.
//
// May call: dv_broker.c (through dv_broker_int.h), dv_authorize.h,
// dv_models_msg.h and common/. Internal to broker/ (not installed); loop thread
// only.
#ifndef DV_DATASETS_MSG_H
#define DV_DATASETS_MSG_H

#include "dv_broker_int.h"

// dataset_push {name, sha256, bytes, offset} + frame 1: a chunk. The first
// chunk (offset 0) starts the upload; each next one must start where the
// last ended; the last one completes it (validated and stored off the
// loop thread, then answered with `dataset`); the others get `ok` with
// received.
int on_dataset_push(dv_broker_t *self,
                    const void *route,
                    size_t route_len,
                    const dv_msg_t *m,
                    uint64_t rid,
                    dv_error_t *err);

// Drop uploads nobody continued.
void uploads_trim(dv_broker_t *self);

// dataset_get: reply a data set's record. Returns 0, or DV_E* with err set
// (the caller replies `error`).
int on_dataset_get(dv_broker_t *self,
                   const void *route,
                   size_t route_len,
                   const dv_msg_t *m,
                   uint64_t rid,
                   dv_error_t *err);

// dataset_list: reply the data sets the key may read. Returns 0.
int on_dataset_list(dv_broker_t *self,
                    const void *route,
                    size_t route_len,
                    uint64_t rid);

// dataset_rm: remove a data set version. Returns 0, or DV_E* with err set.
int on_dataset_rm(dv_broker_t *self,
                  const void *route,
                  size_t route_len,
                  const dv_msg_t *m,
                  uint64_t rid,
                  dv_error_t *err);

// dataset_share {name, readers: [key id or "*"]}: who besides its owner
// and admins may read data set name (train or evaluate on it, see it in
// dataset_list and dataset_get), replacing the list ([]: nobody else).
// Only its owner or an admin (authorize()). Answered `ok` with the list.
int on_dataset_share(dv_broker_t *self,
                     const void *route,
                     size_t route_len,
                     const dv_msg_t *m,
                     uint64_t rid,
                     dv_error_t *err);

#endif
