// dv_recover — a broker's start over its store: recovery.
//
// Owns: reading every record kind back (results, cursors, marks, jobs,
// checkpoints, attempts, dead letters, idempotency keys) into the tables
// the other modules own, in the order dv_recover_run() gives.
//
// The model and its references: dv_broker_int.h and dv_broker.c.
#include "dv_recover.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "dv_broker_int.h"
#include "dv_commit.h"
#include "dv_dead.h"
#include "dv_idem.h"
#include "dv_jobs_msg.h"
#include "dv_le.h"
#include "dv_limits.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_proto.h"
#include "dv_records.h"
#include "dv_registry.h"
#include "dv_results.h"
#include "dv_sched.h"
#include "dv_spill.h"
#include "dv_store.h"
#include "dv_timers.h"

typedef struct {
    dv_broker_t *self;
    uint64_t now_unix, now_loop;
    size_t jobs, results, requeued, failed;
    uint64_t *ids; // jobs in id order
    size_t n_ids, cap_ids;
} recovery_t;

static int
recover_result(uint64_t id, const void *data, size_t len, void *arg)
{
    recovery_t *r = arg;
    dv_rec_result_t rec;
    dv_error_t err = {0};
    if (dv_rec_result_decode(&rec, id, data, len, &err) != 0) {
        dv_log(DV_LOG_ERROR, "broker",
               "store: %s (check disk space and permissions under --data; a "
               "damaged store: restore a backup)",
               err.text);
        return err.code;
    }
    dv_msgw_t *extra = NULL;
    if (rec.extra_len) {
        extra = dv_msgw_new(DV_MSG_RESULT, 0);
        dv_msgw_raw(extra, rec.extra_fields, rec.extra, rec.extra_len);
    }
    job_t placeholder; // only what dv_results_keep reads
    memset(&placeholder, 0, sizeof placeholder);
    placeholder.id = id;
    placeholder.attempts = rec.attempts;
    dv_results_outcome_t o = {rec.done,   rec.code,     rec.text, rec.worker,
                              rec.frames, rec.n_frames, extra};
    kept_t *k = dv_results_keep(r->self, &placeholder, &o);
    dv_msgw_destroy(&extra);
    // Its age carries over the restart (the TTL counts from the finish).
    uint64_t finished = rec.finished_unix;
    uint64_t age = r->now_unix > finished ? r->now_unix - finished : 0;
    k->unix_ms = finished;
    k->kind = rec.kind;
    k->at_ms = r->now_loop > age ? r->now_loop - age : 0;
    if (rec.streamed) {
        qbytes_t *qb = dv_broker_queue_bytes(r->self, rec.queue);
        k->qidx = (uint32_t)(qb - r->self->qbytes) + 1;
        k->seq = rec.seq;
        dv_results_stream_link(r->self, k);
    }
    r->results++;
    return 0;
}

// A cursor record (format 1 or 2: store_cursor). A format 1 record, from
// before consumers had owners, loads without one: the next key to follow
// it owns it.
static int
recover_cursor(uint64_t id, const void *data, size_t len, void *arg)
{
    recovery_t *r = arg;
    dv_rec_cursor_t c;
    dv_error_t err = {0};
    if (dv_rec_cursor_decode(&c, id, data, len, &err) != 0) {
        dv_log(DV_LOG_ERROR, "broker",
               "store: %s (check disk space and permissions under --data; a "
               "damaged store: restore a backup)",
               err.text);
        return err.code;
    }
    qbytes_t *q = dv_broker_queue_bytes(r->self, c.queue);
    cursor_t *cur = dv_results_cursor_add(
        r->self, id, (uint32_t)(q - r->self->qbytes) + 1, c.consumer, c.acked);
    snprintf(cur->owner, sizeof cur->owner, "%s", c.owner);
    // New results continue after everything a consumer has seen, even if
    // the results themselves have expired.
    if (c.acked >= q->next_seq) {
        q->next_seq = c.acked + 1;
    }
    return 0;
}

// A queue's seq mark (marks_stage): its stream goes on after that seq,
// even if every result up to it has left the store.
static int
recover_mark(uint64_t id, const void *data, size_t len, void *arg)
{
    recovery_t *r = arg;
    const uint8_t *p = data;
    uint64_t ql = len >= 12 ? dv_le_get32(p + 8) : 0;
    if (len < 12 || ql == 0 || ql > DV_MAX_WIRE_NAME || len - 12 != ql) {
        return DV_EFORMAT;
    }
    char queue[DV_MAX_WIRE_NAME + 1];
    memcpy(queue, p + 12, ql);
    queue[ql] = '\0';
    qbytes_t *q = dv_broker_queue_bytes(r->self, queue);
    q->mark_key = id;
    if (dv_le_get64(p) >= q->next_seq) {
        q->next_seq = dv_le_get64(p) + 1;
    }
    if (id > r->self->last_mark_key) {
        r->self->last_mark_key = id;
    }
    return 0;
}

static int
recover_job(uint64_t id, const void *data, size_t len, void *arg)
{
    recovery_t *r = arg;
    dv_error_t err = {0};
    job_t *j = dv_jobs_msg_decode(id, data, len, NULL, 0, &err);
    if (!j) {
        dv_log(DV_LOG_ERROR, "broker",
               "store: %s (check disk space and permissions under --data; a "
               "damaged store: restore a backup)",
               err.text);
        return err.code;
    }
    // A deep queue: past SPILL_WINDOW its jobs stay in the store and are
    // read back when their turn comes (RAM stays bounded after a restart).
    qbytes_t *q = dv_broker_queue_bytes(r->self, j->queue);
    if (q->spilled || q->recovered >= r->self->spill_window) {
        dv_spill_job(r->self, j, true);
        r->jobs++;
        r->requeued++;
        return 0;
    }
    q->recovered++;
    dv_broker_job_add(r->self, j);
    if (r->n_ids == r->cap_ids) {
        r->cap_ids = r->cap_ids ? r->cap_ids * 2 : 1024;
        r->ids = dv_realloc(r->ids, r->cap_ids * sizeof *r->ids);
    }
    r->ids[r->n_ids++] = id;
    r->jobs++;
    return 0;
}

// A training job's last checkpoint. One whose job is not in memory (it
// finished, or waits in a deep queue's store) is left as it is.
static int
recover_ckpt(uint64_t id, const void *data, size_t len, void *arg)
{
    recovery_t *r = arg;
    job_t *j = dv_broker_job_find(r->self, id);
    if (!j || len <= 4) {
        return 0;
    }
    j->ckpt = dv_try_malloc(len - 4, 1);
    if (j->ckpt) {
        memcpy(j->ckpt, (const uint8_t *)data + 4, len - 4);
        j->ckpt_len = len - 4;
        j->ckpt_epoch = dv_le_get32(data);
        j->ckpt_stored = j->ckpt_epoch;
    }
    return 0;
}

static int
recover_attempts(uint64_t id, const void *data, size_t len, void *arg)
{
    recovery_t *r = arg;
    job_t *j = dv_broker_job_find(r->self, id);
    if (j && dv_dead_attempts_decode(j, data, len) != 0) {
        dv_log(DV_LOG_ERROR, "broker",
               "store: job %llu: bad attempts record (the store under --data "
               "is damaged: restore a backup)",
               (unsigned long long)id);
        return DV_EFORMAT;
    }
    return 0;
}

static int
recover_dead(uint64_t id, const void *data, size_t len, void *arg)
{
    recovery_t *r = arg;
    dv_rec_dead_t d;
    dv_error_t err = {0};
    job_t *j = NULL;
    if (dv_rec_dead_decode(&d, id, data, len, &err) != 0 ||
        !(j = dv_jobs_msg_decode(id, d.job, d.job_len, NULL, 0, &err)) ||
        dv_dead_attempts_decode(j, d.attempts, d.attempts_len) != 0) {
        dv_broker_job_free(j);
        dv_log(DV_LOG_ERROR, "broker",
               "store: dead letter %llu: bad record (the store under --data is "
               "damaged: restore a backup)",
               (unsigned long long)id);
        return DV_EFORMAT;
    }
    dv_dead_push(r->self, (dead_t){j, d.unix_ms, d.code, dv_strdup(d.text), 0});
    return 0;
}

// An idempotency key record (format 1 or 2: dv_idem_add). A format 1 record,
// written before keys were scoped, loads with scope "": it answers plain
// mode's submits as before, and no keyed submit (docs/SEMANTICS.md).
static int
recover_key(uint64_t id, const void *data, size_t len, void *arg)
{
    recovery_t *r = arg;
    dv_rec_key_t k;
    dv_error_t err = {0};
    if (dv_rec_key_decode(&k, id, data, len, &err) != 0) {
        dv_log(DV_LOG_ERROR, "broker",
               "store: %s (check disk space and permissions under --data; a "
               "damaged store: restore a backup)",
               err.text);
        return err.code;
    }
    if (r->now_unix - k.unix_ms >= r->self->idem_window_ms) {
        dv_store_del(r->self->store, DV_STORE_KEYS, id); // past the window
        return 0;
    }
    dv_idem_add(r->self, k.queue, k.scope, k.key, id, k.unix_ms, false);
    r->self->idem_newest->stored = true;
    return 0;
}

// A group's new leader: a job its log says was running (its last attempt
// has no outcome) may still run on its worker, or have run there (its
// `done` kept by the worker for the next leader): the worker claims it when
// it registers (`running`) or answers it after (dv_workers_msg_answers).
// Held until then, at most a worker's liveness time and
// DV_GROUP_HOLD_EXTRA_MS, then queued again
// with that run refunded (T_UNCLAIMED): a leader change is not the job's
// doing, and must not use up its attempts (its last one included). True
// when j was held so.
static bool
hold_for_its_worker(dv_broker_t *self, job_t *j)
{
    bool was_running =
        j->attempts > 0 &&
        (j->n_errors == 0 || j->errors[j->n_errors - 1].attempt < j->attempts);
    if (!self->group || !was_running) {
        return false;
    }
    dv_jobs_msg_schedule(self, j, false);
    dv_sched_set_attempts(self->sched, j->id, j->attempts);
    dv_sched_hold(self->sched, j->id);
    j->leader_held = true;
    dv_timers_add(self,
                  uv_now(&self->loop) +
                      (uint64_t)self->heartbeat_ms * self->liveness +
                      DV_GROUP_HOLD_EXTRA_MS,
                  j->id, T_UNCLAIMED, j->attempts);
    return true;
}

// Rebuild queued jobs and kept results from the store. A job that was
// running when the broker stopped counts that attempt; past max_attempts
// it fails with the reason, like a job whose worker died.
int
dv_recover_run(dv_broker_t *self, dv_error_t *err)
{
    recovery_t r = {
        self, dv_broker_unix_ms_now(), uv_now(&self->loop), 0, 0, 0, 0, NULL, 0,
        0};
    self->next_job = dv_store_next_id(self->store);
    int rc =
        dv_store_each(self->store, DV_STORE_RESULTS, recover_result, &r, err);
    if (rc == 0) {
        rc = dv_store_each(self->store, DV_STORE_JOBS, recover_job, &r, err);
    }
    if (rc == 0) {
        rc = dv_store_each(self->store, DV_STORE_ATTEMPTS, recover_attempts, &r,
                           err);
    }
    if (rc == 0) {
        rc = dv_store_each(self->store, DV_STORE_CKPTS, recover_ckpt, &r, err);
    }
    if (rc == 0) {
        rc = dv_store_each(self->store, DV_STORE_DEAD, recover_dead, &r, err);
    }
    if (rc == 0) {
        rc = dv_store_each(self->store, DV_STORE_KEYS, recover_key, &r, err);
    }
    if (rc == 0) {
        rc = dv_store_each(self->store, DV_STORE_CURSORS, recover_cursor, &r,
                           err);
    }
    if (rc == 0) {
        rc =
            dv_store_each(self->store, DV_STORE_STREAMS, recover_mark, &r, err);
    }
    for (size_t i = 0; i < self->n_qbytes; i++) { // every seq so far: stored
        qbytes_t *q = &self->qbytes[i];
        q->seq_stored = q->seq_recovered = q->next_seq - 1;
    }
    if (rc && err && !err->text[0]) {
        dv_errorf(err, rc,
                  "the store holds a record this broker cannot read; it will "
                  "not run on it (docs/SEMANTICS.md)");
    }
    for (size_t i = 0; rc == 0 && i < r.n_ids; i++) {
        job_t *j = dv_broker_job_find(self, r.ids[i]);
        if (USES_MODEL(j) &&
            !dv_registry_get(self->registry, j->model, j->model_version)) {
            char text[256];
            snprintf(text, sizeof text,
                     "model %s@%u is gone (removed while the broker was down)",
                     j->model, j->model_version);
            dv_results_fail(self, j, DV_ENOMODEL, text, "");
            dv_broker_job_remove(self, j->id);
            r.failed++;
            continue;
        }
        if (hold_for_its_worker(self, j)) {
            r.requeued++;
            continue;
        }
        if (j->attempts >= j->max_attempts) {
            // Its attempts are used up (the last by this stop): a dead
            // letter, like a job whose worker died on its last attempt.
            char text[256];
            snprintf(text, sizeof text,
                     "the broker stopped while it ran; no attempts left (%u)",
                     j->attempts);
            dv_dead_job(self, j, DV_EIO, text, "");
            r.failed++;
            continue;
        }

        dv_jobs_msg_schedule(self, j, false);
        dv_sched_set_attempts(self->sched, j->id, j->attempts);
        r.requeued++;
    }
    free(r.ids);
    if (rc == 0) {
        dv_results_kept_trim(
            self);          // results whose TTL ran out while it was down
        dv_dead_trim(self); // past lower --max-dead/--max-dead-bytes now
        // The failures just recorded: a group member's go through the log
        // like every other write.
        if (self->group) {
            dv_commit_arm(self);
        } else {
            rc = dv_store_commit(self->store, err);
        }
    }
    if (rc == 0 && (r.jobs || r.results || self->n_dead)) {
        dv_log(DV_LOG_INFO, "broker",
               "store: recovered %zu jobs (%zu queued again, %zu failed), "
               "%zu results, %zu dead letters and %zu idempotency keys",
               r.jobs, r.requeued, r.failed, r.results, self->n_dead,
               self->n_idem);
    }
    return rc;
}
