// dv_models_msg — the model catalog's client handlers.
//
// Owns: model_push (stored on the thread pool, in version order), model_gc,
// _alias, _config, _get, _list, _rm; the alias switches that wait for
// workers to load a new version (self->switches); which version a submit
// serves (dv_models_msg_resolve_serving).
//
// May call: dv_broker.c (through dv_broker_int.h), dv_authorize.h,
// dv_workers_msg.h and common/. Internal to broker/ (not installed); loop
// thread only.
//
// The on_* handlers are client_handler_fn: their
// arguments, replies and returns are documented there (dv_broker_int.h).
#ifndef DV_MODELS_MSG_H
#define DV_MODELS_MSG_H

#include "dv_broker_int.h"

// dv_registry_resolve, except that an alias being switched still names
// the version that serves (see switch_t).
const dv_model_info_t *dv_models_msg_resolve_serving(dv_broker_t *self,
                                                     const char *ref,
                                                     dv_error_t *err);

// End the switches whose new version every worker holding the old one has
// loaded (or that waited long enough).
void dv_models_msg_switches_check(dv_broker_t *self);

// A new version of name was stored: if an older one was the latest, bare
// NAME moves to it the same way an alias does.
void dv_models_msg_latest_moved(dv_broker_t *self, const dv_model_info_t *info);

// Store model file (copied) as p->name@p->version (reserved) on the pool
// (decoded, validated and written there), then (after_push, on the loop
// thread) commit it in the order versions were reserved: a version waits
// (parked) while a lower one of its name is still being prepared. So the
// first version of a new name is the first stored, and its key the owner
// (two trainers racing for a name: the job that finished first wins, as
// its version number says), and versions never appear out of order.
// p (allocated, who asked and lineage set) is taken. Returns 0, or DV_EIO
// with p freed and the reservation released.
int dv_models_msg_push_queue(dv_broker_t *self,
                             push_t *p,
                             const dv_frame_t *file,
                             dv_error_t *err);

// model_push: check it, then store it on the pool (answered from
// after_push).
client_handler_fn dv_models_msg_on_push;

// model_gc {name, keep}: remove all but the newest keep versions of name,
// except those an alias names. `ok` with removed: [version].
client_handler_fn dv_models_msg_on_gc;

// model_alias {name, alias, version?}: point the alias at name@version
// (absent version: remove the alias). `ok` with name, alias, version and
// previous (0: none). Submits by NAME@ALIAS resolve to the version the
// alias names at submit time; a switch back is the rollback.
client_handler_fn dv_models_msg_on_alias;

// model_config {name, max_batch_rows?, max_delay_us?}: a model's serving
// settings (all its versions); absent fields keep their values, and none
// at all just reads them. `ok` with name and both settings. Jobs
// dispatched from then on carry them to their workers.
client_handler_fn dv_models_msg_on_config;

// model_get: reply a model version's record. Returns 0, or DV_E* with
// err set.
client_handler_fn dv_models_msg_on_get;

// model_list: reply the models.
client_handler_fn dv_models_msg_on_list;

// model_rm: remove a model version.
client_handler_fn dv_models_msg_on_rm;

#endif
