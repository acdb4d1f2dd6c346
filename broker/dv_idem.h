// dv_idem — idempotency keys of submits.
//
// Owns: the keys remembered for idem_window_ms (a hash and a FIFO, scoped
// per queue and per submitting key) and their DV_STORE_KEYS records; the
// reply that a repeated submit gets (dv_idem_reply).
//
// May call: dv_broker.c (through dv_broker_int.h), dv_commit.h and common/.
// Internal to broker/ (not installed); loop thread only.
#ifndef DV_IDEM_H
#define DV_IDEM_H

#include "dv_broker_int.h"

// The scope of the submit being handled: who sent it.
const char *dv_idem_scope(const dv_broker_t *self);

// Forget keys past their window, and the oldest while over DV_MAX_IDEM_KEYS.
void dv_idem_trim(dv_broker_t *self);

// Remember that key on queue, sent by scope, made job at unix_ms (stored
// with it when durable: format 1, as before scopes, when scope is "").
void dv_idem_add(dv_broker_t *self,
                 const char *queue,
                 const char *scope,
                 const char *key,
                 uint64_t job,
                 uint64_t unix_ms,
                 bool durable);

// Forget the key that made job (its submit was refused after all).
void dv_idem_forget_job(dv_broker_t *self, uint64_t job);

// A submit whose key was seen within the window, from the same submitting
// key, gets the job that key made (`accepted` with duplicate: true) and no
// new job. With a store the answer waits for the next commit, so it never
// names a job not yet stored. Returns true when it answered.
bool dv_idem_reply(dv_broker_t *self,
                   const dv_wire_msg_t *in,
                   const dv_msg_t *m,
                   const char *queue,
                   const char *key);

#endif
