// dv_idem — idempotency keys of submits.
//
// Owns: the keys remembered for idem_window_ms (a hash and a FIFO, scoped
// per queue and per submitting key) and their DV_STORE_KEYS records; the
// reply that a repeated submit gets (dv_idem_reply).
//
// The model and its references: dv_broker_int.h and dv_broker.c.
#include "dv_idem.h"

#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "dv_broker_int.h"
#include "dv_commit.h"
#include "dv_hash.h"
#include "dv_le.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_proto.h"
#include "dv_records.h"
#include "dv_sched.h"
#include "dv_store.h"
#include "dv_wire.h"
// A key record's queue length with this bit set: a scope follows (format
// 2, written since keys are scoped; format 1 records have no scope).
#define IDEM_SCOPED DV_REC_NAMED

static size_t
idem_hash(const char *queue, const char *scope, const char *key)
{
    uint64_t h = DV_HASH_BYTES_INIT; // over "queue\0scope\0key\0"
    const char *parts[3] = {queue, scope, key};
    for (size_t i = 0; i < 3; i++) {
        h = dv_hash_bytes(parts[i], strlen(parts[i]) + 1, h);
    }
    return (size_t)h & (IDEM_BUCKETS - 1);
}

// The scope and key of e (its queue is e->key).
static void
idem_parts(const idem_t *e, const char **scope, const char **key)
{
    *scope = e->key + strlen(e->key) + 1;
    *key = *scope + strlen(*scope) + 1;
}

// The scope of the submit being handled: who sent it.
const char *
dv_idem_scope(const dv_broker_t *self)
{
    return self->current ? self->current->public_z85 : "";
}

static idem_t *
idem_find(const dv_broker_t *self,
          const char *queue,
          const char *scope,
          const char *key)
{
    if (!self->idem) {
        return NULL;
    }
    for (idem_t *e = self->idem[idem_hash(queue, scope, key)]; e;
         e = e->hnext) {
        const char *s, *k;
        idem_parts(e, &s, &k);
        if (strcmp(e->key, queue) == 0 && strcmp(s, scope) == 0 &&
            strcmp(k, key) == 0) {
            return e;
        }
    }
    return NULL;
}

static void
idem_unlink(dv_broker_t *self, idem_t *e)
{
    const char *queue = e->key, *scope, *key;
    idem_parts(e, &scope, &key);
    for (idem_t **p = &self->idem[idem_hash(queue, scope, key)]; *p;
         p = &(*p)->hnext) {
        if (*p == e) {
            *p = e->hnext;
            break;
        }
    }
    self->n_idem--;
}

// Drop the oldest key (past the window, or over DV_MAX_IDEM_KEYS).
static void
idem_drop_oldest(dv_broker_t *self)
{
    idem_t *e = self->idem_oldest;
    self->idem_oldest = e->newer;
    if (!self->idem_oldest) {
        self->idem_newest = NULL;
    }
    idem_unlink(self, e);
    if (e->stored && self->store) {
        dv_store_del(self->store, DV_STORE_KEYS, e->job);
        dv_commit_arm(self);
    }
    free(e);
}

void
dv_idem_trim(dv_broker_t *self)
{
    uint64_t now = dv_broker_unix_ms_now();
    while (self->idem_oldest &&
           (self->n_idem > DV_MAX_IDEM_KEYS ||
            now - self->idem_oldest->unix_ms >= self->idem_window_ms)) {
        idem_drop_oldest(self);
    }
}

// Remember that key on queue, sent by scope, made job at unix_ms (stored
// with it when durable: format 1, as before scopes, when scope is "").
void
dv_idem_add(dv_broker_t *self,
            const char *queue,
            const char *scope,
            const char *key,
            uint64_t job,
            uint64_t unix_ms,
            bool durable)
{
    if (!self->idem) {
        self->idem = dv_calloc(IDEM_BUCKETS, sizeof(idem_t *));
    }
    size_t ql = strlen(queue) + 1, sl = strlen(scope) + 1, kl = strlen(key) + 1;
    idem_t *e = dv_malloc(sizeof *e + ql + sl + kl);
    memset(e, 0, sizeof *e);
    memcpy(e->key, queue, ql);
    memcpy(e->key + ql, scope, sl);
    memcpy(e->key + ql + sl, key, kl);
    e->job = job;
    e->unix_ms = unix_ms;
    size_t b = idem_hash(queue, scope, key);
    e->hnext = self->idem[b];
    self->idem[b] = e;
    if (self->idem_newest) {
        self->idem_newest->newer = e;
    } else {
        self->idem_oldest = e;
    }
    self->idem_newest = e;
    self->n_idem++;
    if (durable && self->store) {
        // Format 1: u64 unix_ms, u32 queue length, queue, key. Format 2
        // (scoped): the length has IDEM_SCOPED set and a u32 scope length
        // follows it; then queue, scope, key.
        size_t head = sl > 1 ? 16 : 12;
        size_t len = head + ql - 1 + sl - 1 + kl - 1;
        uint8_t *p = dv_malloc(len + DV_STORE_SPARE);
        dv_le_put64(p, unix_ms);
        dv_le_put32(p + 8, (uint32_t)(ql - 1) | (sl > 1 ? IDEM_SCOPED : 0));
        if (sl > 1) {
            dv_le_put32(p + 12, (uint32_t)(sl - 1));
        }
        memcpy(p + head, queue, ql - 1);
        memcpy(p + head + ql - 1, scope, sl - 1);
        memcpy(p + head + ql - 1 + sl - 1, key, kl - 1);
        dv_store_put_owned(self->store, DV_STORE_KEYS, job, p, len);
        e->stored = true;
        dv_commit_arm(self);
    }
    dv_idem_trim(self);
}

// Forget the key that made job (its submit was refused after all).
void
dv_idem_forget_job(dv_broker_t *self, uint64_t job)
{
    idem_t **p = &self->idem_oldest, *prev = NULL;
    while (*p && (*p)->job != job) {
        prev = *p;
        p = &(*p)->newer;
    }
    idem_t *e = *p;
    if (!e) {
        return;
    }
    *p = e->newer;
    if (self->idem_newest == e) {
        self->idem_newest = prev;
    }
    idem_unlink(self, e);
    free(e);
}

// A submit whose key was seen within the window, from the same submitting
// key, gets the job that key made (`accepted` with duplicate: true) and no
// new job. With a store the answer waits for the next commit, so it never
// names a job not yet stored. Returns true when it answered.
bool
dv_idem_reply(dv_broker_t *self,
              const dv_wire_msg_t *in,
              const dv_msg_t *m,
              const char *queue,
              const char *key)
{
    idem_t *e = idem_find(self, queue, dv_idem_scope(self), key);
    if (!e || dv_broker_unix_ms_now() - e->unix_ms >= self->idem_window_ms) {
        return false;
    }
    const void *route = zmq_msg_data((zmq_msg_t *)&in->route);
    size_t route_len = zmq_msg_size((zmq_msg_t *)&in->route);
    dv_msgw_t *w = dv_msgw_new(DV_MSG_ACCEPTED, dv_msg_rid(m));
    dv_msgw_uint(w, "job", e->job);
    dv_msgw_key(w, "duplicate");
    dv_msgw_v_bool(w, true);
    dv_commit_reply_after(self, route, route_len, dv_msg_rid(m), w);
    return true;
}
