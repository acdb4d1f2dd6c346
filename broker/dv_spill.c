// dv_spill — deep queues: durable jobs that wait in the store only.
//
// Owns: each queue's spills (past SPILL_WINDOW jobs in memory), their refill
// (REFILL_BATCH at a time below REFILL_BELOW) and the skip set of spilled
// jobs already ended (cancelled, expired).
//
// The model and its references: dv_broker_int.h and dv_broker.c.
#include "dv_spill.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "dv_broker_int.h"
#include "dv_dead.h"
#include "dv_hash.h"
#include "dv_jobs_msg.h"
#include "dv_le.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_proto.h"
#include "dv_records.h"
#include "dv_registry.h"
#include "dv_results.h"
#include "dv_sched.h"
#include "dv_store.h"
#include "dv_timers.h"

// ------------------------------------------------------------ deep queues

// Spilled jobs already ended (cancelled, expired) while in the store:
// their entry is skipped when its turn comes.
bool
dv_spill_skip_has(const dv_broker_t *self, uint64_t id)
{
    return dv_u64map_get(self->skip, id, NULL);
}

static void
skip_add(dv_broker_t *self, uint64_t id)
{
    dv_u64map_put(self->skip, id, 0);
}

static void
skip_del(dv_broker_t *self, uint64_t id)
{
    dv_u64map_del(self->skip, id);
}

// ------------------------------------------- spilled jobs' owners
//
// A spilled job leaves the jobs table, and its store record does not say
// which key submitted it: this map keeps that, with its queue, until the
// job comes back into memory or ends. Without it a spilled job stopped
// counting against its key's --max-inflight (one producer could queue
// millions), and a producer could read or cancel another key's spilled
// jobs (their queue and owner were unknown to the role checks).

// The map's value: the queue's index in the high bits, the key's below.
static void
spilled_put(dv_broker_t *self, uint64_t id, uint32_t qidx, uint16_t who)
{
    dv_u64map_put(self->spilled, id, (uint64_t)qidx << 16 | who);
}

// Forget id; returns the key it was submitted by (0: none, or not
// spilled).
static uint16_t
spilled_take(dv_broker_t *self, uint64_t id)
{
    uint64_t v = 0;
    if (!dv_u64map_get(self->spilled, id, &v)) {
        return 0;
    }
    dv_u64map_del(self->spilled, id);
    return (uint16_t)(v & 0xffff);
}

const char *
dv_spill_owner(const dv_broker_t *self, uint64_t id, uint16_t *who)
{
    uint64_t v = 0;
    bool there = dv_u64map_get(self->spilled, id, &v);
    uint64_t qidx = v >> 16;
    *who = there ? (uint16_t)(v & 0xffff) : 0;
    return there && qidx < self->n_qbytes ? self->qbytes[qidx].name : NULL;
}

static spill_t *
spill_of(qbytes_t *q, int32_t priority)
{
    size_t i = 0;
    while (i < q->n_spills && q->spills[i].priority > priority) {
        i++;
    }
    if (i < q->n_spills && q->spills[i].priority == priority) {
        return &q->spills[i];
    }
    q->spills = dv_realloc(q->spills, (q->n_spills + 1) * sizeof(spill_t));
    memmove(&q->spills[i + 1], &q->spills[i],
            (q->n_spills - i) * sizeof(spill_t));
    memset(&q->spills[i], 0, sizeof(spill_t));
    q->spills[i].priority = priority;
    q->n_spills++;
    return &q->spills[i];
}

// Spill j when its queue is deep (see SPILL_WINDOW); j's record must be
// committed. Returns true when j went to the store (and was freed).
bool
dv_spill_job(dv_broker_t *self, job_t *j, bool force)
{
    if (!self->store || j->memory_only) {
        return false;
    }
    qbytes_t *q = dv_broker_queue_bytes(self, j->queue);
    if (!force && q->spilled == 0 &&
        dv_sched_queue_waiting(self->sched, j->queue) < SPILL_WINDOW) {
        return false;
    }
    spill_t *s = spill_of(q, j->priority);
    size_t need = 17 + j->route_len;
    if (s->len + need > s->cap) {
        if (s->head > s->cap / 2) { // reuse what was consumed
            memmove(s->buf, s->buf + s->head, s->len - s->head);
            s->len -= s->head;
            s->head = 0;
        }
        while (s->len + need > s->cap) {
            s->cap = s->cap ? s->cap * 2 : 4096;
        }
        s->buf = dv_realloc(s->buf, s->cap);
    }
    uint8_t *p = s->buf + s->len;
    dv_le_put64(p, j->id);
    dv_le_put64(p + 8, j->rid);
    p[16] = j->route_len;
    memcpy(p + 17, j->route, j->route_len);
    s->len += need;
    q->spilled++;
    self->n_spilled++;
    if (j->deadline_unix) {
        uint64_t now = dv_broker_unix_ms_now();
        uint64_t in = j->deadline_unix > now ? j->deadline_unix - now : 0;
        dv_timers_add(self, uv_now(&self->loop) + in, j->id, T_DEADLINE, 0);
    }
    size_t bytes = j->payload_len;
    uint16_t who = j->who;
    spilled_put(self, j->id, (uint32_t)(q - self->qbytes), who);
    dv_broker_job_detach(self, j->id); // not in the table during recovery
    if (who) { // still unfinished: still its key's (detach stopped that)
        self->whos[who].inflight++;
    }
    dv_broker_job_free(j);
    q->bytes += bytes; // still the queue's payload
    return true;
}

typedef struct {
    dv_broker_t *self;
    uint64_t *rids;
    uint8_t (*routes)[ROUTE_MAX];
    uint8_t *route_lens;
    job_t **jobs; // decoded, in order (NULL: no record)
    size_t i;
} load_t;

static int
load_job(uint64_t id, const void *data, size_t len, void *arg)
{
    load_t *l = arg;
    dv_error_t err = {0};
    job_t *j = NULL;
    if (data) {
        j = dv_jobs_msg_decode(id, data, len, l->routes[l->i],
                               l->route_lens[l->i], &err);
        if (j) {
            j->rid = l->rids[l->i];
        }
        if (!j) {
            dv_log(DV_LOG_ERROR, "broker",
                   "store: job %llu: %s (check disk space and permissions "
                   "under --data)",
                   (unsigned long long)id,
                   err.text[0] ? err.text : "no memory");
        }
    }
    l->jobs[l->i++] = j;
    return 0;
}

static int
load_attempts(uint64_t id, const void *data, size_t len, void *arg)
{
    load_t *l = arg;
    job_t *j = l->jobs[l->i++];
    if (j && data && dv_dead_attempts_decode(j, data, len) != 0) {
        dv_log(DV_LOG_WARN, "broker",
               "store: job %llu: bad attempts record (the store under --data "
               "is damaged: restore a backup)",
               (unsigned long long)id);
    }
    return 0;
}

// Bring spilled jobs of q back into memory, highest priority first.
static void
refill_queue(dv_broker_t *self, qbytes_t *q)
{
    size_t n = 0, cap = REFILL_BATCH;
    uint64_t *ids = dv_malloc(cap * sizeof *ids);
    load_t l = {self,
                dv_malloc(cap * sizeof(uint64_t)),
                dv_malloc(cap * ROUTE_MAX),
                dv_malloc(cap),
                dv_calloc(cap, sizeof(job_t *)),
                0};
    for (size_t s = 0; s < q->n_spills && n < cap;) {
        spill_t *sp = &q->spills[s];
        if (sp->head == sp->len) {
            free(sp->buf);
            memmove(sp, sp + 1, (q->n_spills - s - 1) * sizeof *sp);
            q->n_spills--;
            continue;
        }
        const uint8_t *p = sp->buf + sp->head;
        uint64_t id = dv_le_get64(p);
        uint8_t rl = p[16];
        sp->head += 17 + (size_t)rl;
        if (dv_spill_skip_has(self,
                              id)) { // ended while spilled: tell its submitter
            skip_del(self, id);
            const kept_t *k = dv_results_kept_find(self, id);
            if (k && rl && k->unstored) {
                dv_results_hold(self, id, p + 17, rl, dv_le_get64(p + 8));
            } else if (k && rl) {
                dv_results_send_kept(self, k, p + 17, rl, dv_le_get64(p + 8));
            }
            continue;
        }
        ids[n] = id;
        l.rids[n] = dv_le_get64(p + 8);
        l.route_lens[n] = rl;
        memcpy(l.routes[n], p + 17, rl);
        n++;
        q->spilled--;
        self->n_spilled--;
    }
    dv_error_t err = {0};
    if (n && dv_store_get_many(self->store, DV_STORE_JOBS, ids, n, load_job, &l,
                               &err) != 0) {
        dv_log(DV_LOG_ERROR, "broker",
               "store: %s (check disk space and permissions under --data; a "
               "damaged store: restore a backup)",
               err.text);
    }
    l.i = 0;
    if (n && dv_store_get_many(self->store, DV_STORE_ATTEMPTS, ids, n,
                               load_attempts, &l, &err) != 0) {
        dv_log(DV_LOG_ERROR, "broker",
               "store: %s (check disk space and permissions under --data; a "
               "damaged store: restore a backup)",
               err.text);
    }
    uint64_t now = dv_broker_unix_ms_now();
    for (size_t i = 0; i < n; i++) {
        job_t *j = l.jobs[i];
        uint16_t who = spilled_take(self, ids[i]);
        if (!j) {
            if (who) { // logged: a record gone or unreadable; it will not
                self->whos[who].inflight--; // end any other way
            }
            continue;
        }
        j->who = who;               // counted in its key's inflight all along
        q->bytes -= j->payload_len; // dv_broker_job_add counts it again
        dv_broker_job_add(self, j);
        if (USES_MODEL(j) &&
            !dv_registry_get(self->registry, j->model, j->model_version)) {
            char text[256];
            snprintf(text, sizeof text, "model %s@%u is gone", j->model,
                     j->model_version);
            dv_results_fail(self, j, DV_ENOMODEL, text, "");
            dv_broker_job_remove(self, j->id);
        } else if (j->attempts >= j->max_attempts) {
            char text[256];
            snprintf(text, sizeof text,
                     "the broker stopped while it ran; no attempts left (%u)",
                     j->attempts);
            dv_dead_job(self, j, DV_EIO, text, "");
        } else if (j->deadline_unix && now > j->deadline_unix) {
            dv_timers_job_expire(self, j);
        } else {
            char key[DV_MAX_WIRE_NAME + 16] = "";
            if (USES_MODEL(j)) {
                snprintf(key, sizeof key, "%s@%u", j->model, j->model_version);
            }
            dv_sched_submit_prio(self->sched, j->id, j->queue, key,
                                 j->max_attempts, j->priority);
            if (strcmp(j->kind, "train") == 0) {
                dv_sched_set_heavy(self->sched, j->id);
            }
            dv_sched_set_attempts(self->sched, j->id, j->attempts);
        }
    }
    free(ids);
    free(l.rids);
    free(l.routes);
    free(l.route_lens);
    free(l.jobs);
}

// Keep every deep queue's in-memory window filled.
void
dv_spill_refill(dv_broker_t *self)
{
    if (self->n_spilled == 0) { // each dispatch: no walk of every queue
        return;
    }
    for (size_t i = 0; i < self->n_qbytes; i++) {
        qbytes_t *q = &self->qbytes[i];
        if (q->spilled &&
            dv_sched_queue_waiting(self->sched, q->name) < REFILL_BELOW) {
            refill_queue(self, &self->qbytes[i]); // may add qbytes: re-index
        }
    }
}

// A spilled job (queued, in the store only) read back; NULL when id is not
// one. Caller frees it (dv_broker_job_free).
job_t *
dv_spill_read(dv_broker_t *self, uint64_t id)
{
    if (!self->store || dv_broker_job_find(self, id) ||
        dv_spill_skip_has(self, id)) {
        return NULL;
    }
    uint64_t rid = 0;
    uint8_t route[ROUTE_MAX], rl = 0;
    job_t *j = NULL;
    load_t l = {self, &rid, &route, &rl, &j, 0};
    dv_error_t err = {0};
    dv_store_get_many(self->store, DV_STORE_JOBS, &id, 1, load_job, &l, &err);
    if (j && dv_broker_queue_bytes(self, j->queue)->spilled == 0) {
        dv_broker_job_free(j); // a record whose delete is not committed yet
        j = NULL;
    }
    if (j) { // whose it is (a copy: nothing is counted for it)
        dv_spill_owner(self, id, &j->who);
    }
    return j;
}

// End a spilled job now (cancelled, expired): its result is recorded, its
// entry is skipped when its turn comes (and its submitter told then).
void
dv_spill_end(dv_broker_t *self, job_t *j, int code, const char *text)
{
    qbytes_t *q = dv_broker_queue_bytes(self, j->queue);
    skip_add(self, j->id);
    q->spilled--;
    self->n_spilled--;
    q->bytes -= j->payload_len;
    j->who = spilled_take(self, j->id); // its kept result stays its key's
    if (j->who) {
        self->whos[j->who].inflight--; // ended: no longer in flight
    }
    dv_results_fail(self, j, code, text, "");
}
