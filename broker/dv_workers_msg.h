// dv_workers_msg — the worker socket: its messages and a worker's end.
//
// Owns: the worker socket's message table (worker_handlers, type ->
// handler; its request type is dv_handlers.h's) and dv_workers_msg_on_message,
// a lookup and a call; the handlers of register, done, progress, checkpoint;
// the checks of a done's payload (infer, evaluate), a train job's result
// (its model stored, its lineage), the models and data sets a worker holds;
// liveness (silent workers, and closed connections after a grace:
// dv_workers_msg_check, dv_workers_msg_gone); a worker lost or evicted; the
// `workers` listing (a page at a time).
//
// May call: dv_broker.c (through dv_broker_int.h), dv_authorize.h,
// dv_batching.h, dv_commit.h, dv_dead.h, dv_fetch.h, dv_handlers.h (its
// types), dv_models_msg.h, dv_page.h, dv_results.h and common/. Internal to
// broker/ (not installed); loop thread only.
#ifndef DV_WORKERS_MSG_H
#define DV_WORKERS_MSG_H

#include "dv_broker_int.h"

// Forget a worker; requeue or fail what it was running. why NULL: it was
// evicted (dv_workers_msg_evict): its jobs go back to their queues with the
// lost run refunded (dv_sched_worker_evict), as the job did nothing wrong.
void dv_workers_msg_lost(dv_broker_t *self, worker_t *w, const char *why);

// Take away a worker whose key no longer lets it work (revoked, or its role
// or a queue it serves taken away by a reload). Unlike a lost worker's, its
// jobs did nothing wrong: each goes back to the front of its queue without
// using up an attempt (dv_sched_worker_evict: max_attempts grows by one, in
// memory; attempt numbers stay unique, so the evicted run's late answers
// are recognised and dropped) and without counting toward quarantine. Its
// connection stays open (libzmq closes no single ROUTER peer) but nothing
// is sent to it any more, and what it sends is refused (dv_authorize_worker).
void dv_workers_msg_evict(dv_broker_t *self, worker_t *w, const char *why);

// The fields of an infer job's result that a whole forward pass shares:
// the version that ran, the pass (batch, a hostile worker's numbers,
// checked: at least rows), the class names (many long ones as frame 2,
// *classes_frame, caller frees). Caller destroys.
dv_msgw_t *dv_workers_msg_infer_tail(const job_t *j,
                                     size_t rows,
                                     const msgpack_object *batch,
                                     char *const *classes,
                                     size_t n_classes,
                                     dv_frame_t *classes_frame);

// An infer job's result fields: its output (rows x cols in frame 1) and
// tail's (dv_workers_msg_infer_tail). Caller destroys.
dv_msgw_t *
dv_workers_msg_infer_extra_with(size_t rows, size_t cols, dv_msgw_t *tail);

// The trained model is stored (or could not be): the job's result.
// (lineage_build, above train_done, says how it came to be.)
void dv_workers_msg_train_registered(dv_broker_t *self, push_t *p);

// What the scheduler's affinity sees of worker w: its models, and its
// data sets as "ds:NAME@VERSION" (the key of a train job on one).
void dv_workers_msg_sched_holdings(dv_broker_t *self, const worker_t *w);

// Add key to a worker's list (it is fetching it: count it for affinity now
// rather than at its next heartbeat).
void dv_workers_msg_holds_add(char ***list, size_t *n, const char *key);

// workers {from?}: reply the connected workers (a client_handler_fn), a
// page at a time (1.7), ordered by when they registered.
client_handler_fn dv_workers_msg_on_list;

// Whether worker w may answer for attempt `attempt` of job j (a `done` or
// a pass of `done_batch`): it runs it, or it claims it now: a group's new
// leader holds the job for its worker on that very attempt (leader_held: w
// finished it while the group had no leader and resends its done after
// registering again; a job queued again after its worker was declared dead
// is not claimed: that attempt is recorded as failed), or it runs on
// another connection of the same worker (the same name and key: w
// came back on a new socket and its old one is not yet declared silent). A
// claim takes no slot: the caller ends the job at once. attempt 0 (a
// worker older than 1.2 says none) claims nothing.
bool dv_workers_msg_answers(dv_broker_t *self,
                            worker_t *w,
                            job_t *j,
                            uint64_t attempt);

// One message from the worker socket: checked, then handled by its type;
// a malformed one gets an `error` reply. in: borrowed (the caller closes it).
void dv_workers_msg_on_message(dv_broker_t *self, dv_wire_msg_t *in);

// Read the worker messages waiting (a worker's heartbeat or register may
// be in our own queue: the loop was busy), then declare lost the workers
// silent past liveness x heartbeat_ms and those whose connection closed
// DV_WORKER_GONE_GRACE_MS ago; heartbeat the others when beat. Arms
// gone_timer for a closed connection's grace still running. From the
// heartbeat tick (beat) and gone_timer.
void dv_workers_msg_check(dv_broker_t *self, bool beat);

// The connection with routing id hash route_hash (dv_auth_route_hash)
// closed: its worker, if one, is declared lost DV_WORKER_GONE_GRACE_MS
// from now (dv_workers_msg_check, from gone_timer), unless it is by then.
void dv_workers_msg_gone(dv_broker_t *self, uint64_t route_hash);

#endif
