// dv_handlers — the client socket's message table: one row per type.
//
// Owns: the client table (type -> handler, the roles that may send it, what
// it acts on, the owner checks it needs, whether it is audited; the row
// and request types are dv_broker_int.h's), and the thin wrappers that give the
// handlers of dv_jobs_msg, dv_models_msg, ... that one signature. It is the one
// place a reader learns who may send what on the client socket:
// dv_broker_serve_request (dv_broker.c) looks the row up and calls it,
// dv_authorize_client() and dv_authorize_audit_message() (dv_authorize.c) read
// it. The worker socket's table is beside its handlers in dv_workers_msg.c
// (every row there takes the worker role: dv_authorize_worker).
//
// To add a client message: its handler in the module of its noun, a row in
// client_rows (dv_handlers.c); authorization and audit follow from the row.
//
// May call: the handlers' modules (dv_authorize.h, dv_datasets_msg.h,
// dv_dead.h, dv_jobs_msg.h, dv_models_msg.h, dv_results.h), dv_auth.h,
// dv_broker.c (through dv_broker_int.h) and common/. Internal to broker/
// (not installed); loop thread only.
#ifndef DV_HANDLERS_H
#define DV_HANDLERS_H

#include "dv_broker_int.h"
#include "dv_proto.h"

// The client table's row for type, or NULL when clients may not send it
// (submit_many is unpacked by on_client_message into its submits).
const msg_row_t *dv_handlers_client_row(dv_msg_type_t type);

#endif
