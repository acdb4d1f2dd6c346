// dv_authorize — enforcing who may send what (dv_handlers.c), and audit.
//
// Owns: dv_authorize_client() (a client message against its key's roles and the
// owners of the queue, model or data set it names), a worker's key and
// queues (dv_authorize_worker), re-checks after a key reload, the audit
// records of client messages and audit_list.
//
// Reads the client table's rows (msg_row_t in dv_broker_int.h: roles, what a
// message acts on, its checks, audited); calls nothing there.
//
// May call: dv_broker.c (through dv_broker_int.h), dv_batching.h, dv_commit.h,
// dv_results.h, dv_spill.h, dv_workers_msg.h and common/. Internal to broker/
// (not installed); loop thread only.
//
// The on_* handlers are client_handler_fn: their
// arguments, replies and returns are documented there (dv_broker_int.h).
#ifndef DV_AUTHORIZE_H
#define DV_AUTHORIZE_H

#include "dv_broker_int.h"

// With keys, every client message is checked against its key's roles
// (docs/SECURITY.md has the table) before it is handled; refusals, admin
// actions and changes to models and data sets go to the audit log.
void dv_authorize_audit(dv_broker_t *self,
                        const char *key,
                        const char *action,
                        const char *object,
                        const char *outcome);

// The first version of name was stored by key owner: it owns the name
// from now on (nothing in plain mode, nothing if it has an owner).
void dv_authorize_set_owner(dv_broker_t *self,
                            dv_owners_t *owners,
                            const char *name,
                            const char *owner);

// The owner check again, when a version is stored. Ownership was checked
// when the push or train job came in, but the name's owner is set by
// whichever version is stored first: a version of another key that got
// there in between makes this one the loser (issue 13, point 9). 0 when
// key may add it (plain mode, a name nobody owns, its own, an admin key),
// else DV_EPERM naming the owner (audited as action: submit for a train
// job's model, model_push, dataset_push).
int dv_authorize_store_refused(dv_broker_t *self,
                               const dv_owners_t *owners,
                               const char *action,
                               const char *name,
                               const char *key,
                               dv_error_t *err);

// dv_auth's refused-handshake hook (arg: the broker): one audit record.
void dv_authorize_on_handshake_refused(const char *domain,
                                       const char *address,
                                       const char *key,
                                       const char *why,
                                       void *arg);

// Can other machines reach endpoint? (Only ipc://, inproc:// and loopback
// tcp are private: dv_endpoint_exposed.)
bool dv_authorize_exposed(const char *endpoint);

// Plain mode on an address other machines reach (--plain): say so, loudly.
void dv_authorize_warn_if_exposed(const char *endpoint);

// A key reload by key ended (rc; n keys, or text why not): re-check the
// connected workers and followers, log and audit it.
void dv_authorize_reload_done(
    dv_broker_t *self, const char *key, int rc, size_t n, const char *text);

// Check client message m against its key, as its row in the client table
// says (row NULL: a type clients may not send, left to
// dv_broker_serve_request): the roles, then what it acts on, then the row's
// checks. *who gets the key (NULL in plain mode).
int dv_authorize_client(dv_broker_t *self,
                        dv_wire_msg_t *in,
                        const dv_msg_t *m,
                        const msg_row_t *row,
                        const dv_key_t **who,
                        dv_error_t *err);

// The queues w gets jobs from: those it asked for (all allowed by its key:
// worker_allowed), else every queue its key allows.
void dv_authorize_worker_serve(dv_broker_t *self, const worker_t *w);

// Check a worker message against its key's current roles and queues (a
// reload may have changed them since the handshake): DV_EPERM with why, and
// a registered worker that may no longer work is dropped (dv_workers_msg_evict;
// *w becomes NULL). asked: a register's queues. Audited when a worker is
// dropped or a register refused, not for each heartbeat of a dropped one.
int dv_authorize_worker(dv_broker_t *self,
                        dv_wire_msg_t *in,
                        const dv_msg_t *m,
                        worker_t **w,
                        char *const *asked,
                        size_t n_asked,
                        dv_error_t *err);

// After a client message was handled: those its row marks audited (admin
// actions, changes to models and data sets) go to the audit log, with their
// outcome. row NULL: not audited.
void dv_authorize_audit_message(dv_broker_t *self,
                                const msg_row_t *row,
                                const char *id,
                                const dv_msg_t *m,
                                int rc,
                                const dv_error_t *err);

// audit_list {since_ms}: the entries held in memory from then on.
client_handler_fn dv_authorize_on_audit_list;

#endif
