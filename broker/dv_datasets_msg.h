// dv_datasets_msg — the data set catalog's client handlers.
//
// Owns: dataset_push (chunked uploads held in self->uploads until complete),
// dataset_get, _list, _rm, _share.
//
// May call: dv_broker.c (through dv_broker_int.h), dv_authorize.h,
// dv_models_msg.h and common/. Internal to broker/ (not installed); loop thread
// only.
//
// The on_* handlers are client_handler_fn: their
// arguments, replies and returns are documented there (dv_broker_int.h).
#ifndef DV_DATASETS_MSG_H
#define DV_DATASETS_MSG_H

#include "dv_broker_int.h"

// dataset_push {name, sha256, bytes, offset} + frame 1: a chunk. The first
// chunk (offset 0) starts the upload; each next one must start where the
// last ended; the last one completes it (validated and stored off the
// loop thread, then answered with `dataset`); the others get `ok` with
// received.
client_handler_fn dv_datasets_msg_on_push;

// Drop uploads nobody continued.
void dv_datasets_msg_uploads_trim(dv_broker_t *self);

// dataset_get: reply a data set's record.
client_handler_fn dv_datasets_msg_on_get;

// dataset_list: reply the data sets the key may read.
client_handler_fn dv_datasets_msg_on_list;

// dataset_rm: remove a data set version.
client_handler_fn dv_datasets_msg_on_rm;

// dataset_share {name, readers: [key id or "*"]}: who besides its owner
// and admins may read data set name (train or evaluate on it, see it in
// dataset_list and dataset_get), replacing the list ([]: nobody else).
// Only its owner or an admin (dv_authorize_client()). Answered `ok` with the
// list.
client_handler_fn dv_datasets_msg_on_share;

#endif
