// dv_handlers — the client socket's message table: one row per type.
//
// Owns: the client table (type -> handler, the roles that may send it, what
// it acts on, the owner checks it needs, whether it is audited), the request
// every handler gets, and the thin wrappers that give the handlers of
// dv_jobs_msg, dv_models_msg, ... that one signature. It is the one place a
// reader learns who may send what on the client socket: dv_broker_serve_request
// (dv_broker.c) looks the row up and calls it, dv_authorize_client() and
// dv_authorize_audit_message() (dv_authorize.c) read it. The worker socket's
// table is beside its handlers in dv_workers_msg.c (every row there takes the
// worker role: dv_authorize_worker).
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dv_broker_int.h"
#include "dv_proto.h"

// One request, as every handler of a socket's table gets it. Borrowed: the
// handler owns none of it.
typedef struct {
    dv_broker_t *self;  // the broker
    dv_wire_msg_t *in;  // the message as it came in (route, header, frames)
    const dv_msg_t *m;  // its decoded header (one request of a submit_many)
    const void *route;  // the sender's routing id
    size_t route_len;   // its length
    uint64_t rid;       // the request id to answer with
    const char *who_id; // the sender's key id ("" in plain mode)
    worker_t *w;        // worker socket: the registered worker that sent it
} request_t;

// Serve r: 0, or DV_E* with err set (dv_broker_serve_request sends the
// `error`).
typedef int(request_fn)(request_t *r, dv_error_t *err);

// What a message acts on: the object dv_authorize_client() checks the key
// against.
typedef enum {
    ACTS_ON_NOTHING, // a read of the broker's state, or an admin action
    ACTS_ON_QUEUE,   // the queue named in its `queue` field
    ACTS_ON_JOB,     // the queue of the job in `job`; a producer reads only
                     // the jobs it submitted
    ACTS_ON_QUEUES,  // the queue in `queue`, else all of them: a key limited
                     // to some queues must name one
    ACTS_ON_DATASET, // data set `name`: only its owner or an admin changes it
    ACTS_ON_MODEL,   // model `name`: only its owner or an admin deletes it
} acts_on_t;

// Checks after the roles and the queue (msg_row_t.checks), in this order.
enum {
    CHECK_CONSUMER = 1,      // `consumer` belongs to the key that followed it
    CHECK_DATASET_READS = 2, // the data sets it reads are its key's to read
    CHECK_TRAIN_MODEL = 4,   // a train job adds versions to its model's owner
};

// msg_row_t.roles: any authorized key, whatever its roles (0: admins only).
#define ANY_KEY (~0u)

// A row of a socket's message table.
typedef struct {
    request_fn *handler; // serves it; NULL: not accepted on this socket
    unsigned roles;      // DV_ROLE_* bits, any of; admin always passes; ANY_KEY
    acts_on_t acts_on;   // what the key is checked against
    unsigned checks;     // CHECK_* bits
    bool audited;        // its outcome goes to the audit log
                         // (dv_authorize_audit_message)
} msg_row_t;

// The client table's row for type, or NULL when clients may not send it
// (submit_many is unpacked by on_client_message into its submits).
const msg_row_t *dv_handlers_client_row(dv_msg_type_t type);

#endif
