// dv_dead — failed attempts, retries and the dead-letter queue.
//
// Owns: a job's failed attempts (job_t.errors and their DV_STORE_ATTEMPTS
// record), the retry decision and backoff (dv_dead_job_failed_run,
// retry_later), and the dead-letter queue (self->dead, oldest first, and its
// DV_STORE_DEAD records). Handlers: dead_list, dead_requeue, dead_purge.
//
// The model and its references: dv_broker_int.h and dv_broker.c.
#include "dv_dead.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "dv_broker_int.h"
#include "dv_commit.h"
#include "dv_jobs_msg.h"
#include "dv_le.h"
#include "dv_limits.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_msgpack.h"
#include "dv_page.h"
#include "dv_proto.h"
#include "dv_records.h"
#include "dv_results.h"
#include "dv_sched.h"
#include "dv_store.h"
#include "dv_timers.h"

// ------------------------------------------------- retries, dead letters

// Errors that may not happen again elsewhere or later (a worker's I/O or
// memory trouble, a model damaged in transit, a lost worker): the job is
// retried. Any other error is the job's own (bad input, unknown model) and
// would fail the same way again: it ends the job at once.
bool
dv_dead_retryable(int code)
{
    return code == DV_EIO || code == DV_ENOMEM || code == DV_ECHECKSUM ||
           code == DV_ETIMEDOUT || code == DV_ENOSPC;
}

// Attempts record: attempts, lost runs, then each failed attempt (attempt,
// code, time, worker and text lengths, worker, text). Little-endian.
static uint8_t *
attempts_encode(const job_t *j, size_t *len)
{
    size_t n = 12;
    for (uint32_t i = 0; i < j->n_errors; i++) {
        n += 20 + strlen(j->errors[i].worker) + strlen(j->errors[i].text);
    }
    uint8_t *p = dv_malloc(n + DV_STORE_SPARE), *q = p + 12;
    dv_le_put32(p, j->attempts);
    dv_le_put32(p + 4, j->lost);
    dv_le_put32(p + 8, j->n_errors);
    for (uint32_t i = 0; i < j->n_errors; i++) {
        const attempt_err_t *e = &j->errors[i];
        size_t wl = strlen(e->worker), tl = strlen(e->text);
        dv_le_put32(q, e->attempt);
        dv_le_put32(q + 4, (uint32_t)e->code);
        dv_le_put64(q + 8, e->unix_ms);
        dv_le_put32(q + 16, (uint32_t)(wl | tl << 16));
        memcpy(q + 20, e->worker, wl);
        memcpy(q + 20 + wl, e->text, tl);
        q += 20 + wl + tl;
    }
    *len = n;
    return p;
}

// Read an attempts record into j (a 4-byte record is the older format:
// the count only). Returns 0 or DV_EFORMAT.
int
dv_dead_attempts_decode(job_t *j, const uint8_t *p, size_t len)
{
    dv_rec_attempts_t r;
    int rc =
        dv_rec_attempts_decode(&r, j->id, p, len, DV_MAX_ATTEMPTS * 2, NULL);
    if (rc == 0 && !r.count_only) {
        free(j->errors);
        j->errors = r.errors;
        j->n_errors = r.n_errors;
        j->lost = r.lost;
        if (j->n_errors > DV_MAX_ERRORS_KEPT) { // stored before the bound
            memmove(j->errors, j->errors + j->n_errors - DV_MAX_ERRORS_KEPT,
                    DV_MAX_ERRORS_KEPT * sizeof *j->errors);
            j->n_errors = DV_MAX_ERRORS_KEPT;
        }
    }
    if (rc == 0) {
        j->attempts = r.attempts;
    }
    return rc;
}

void
dv_dead_store_attempts(dv_broker_t *self, const job_t *j)
{
    if (self->store && !j->memory_only) { // counted across a crash
        size_t len = 0;
        uint8_t *rec = attempts_encode(j, &len);
        dv_store_put_owned(self->store, DV_STORE_ATTEMPTS, j->id, rec, len);
        dv_commit_arm(self);
    }
}

// Note a failed attempt of j (kept with the job, its result and its
// dead-letter entry; stored): the newest DV_MAX_ERRORS_KEPT.
void
dv_dead_record_error(
    dv_broker_t *self, job_t *j, int code, const char *worker, const char *text)
{
    if (j->n_errors >= DV_MAX_ERRORS_KEPT) { // the oldest goes
        memmove(j->errors, j->errors + 1,
                (DV_MAX_ERRORS_KEPT - 1) * sizeof *j->errors);
        j->n_errors = DV_MAX_ERRORS_KEPT - 1;
    } else {
        j->errors =
            dv_realloc(j->errors, (j->n_errors + 1) * sizeof *j->errors);
    }
    attempt_err_t *e = &j->errors[j->n_errors++];
    memset(e, 0, sizeof *e);
    e->attempt = j->attempts;
    e->code = code;
    e->unix_ms = dv_broker_unix_ms_now();
    snprintf(e->worker, sizeof e->worker, "%s", worker ? worker : "");
    snprintf(e->text, sizeof e->text, "%s", text ? text : "");
    dv_dead_store_attempts(self, j);
}

// Wait before the next attempt (dv_sched_backoff_ms: doubling, capped,
// equal jitter).
uint64_t
dv_dead_backoff_ms(dv_broker_t *self, const job_t *j)
{
    // n_errors stops at DV_MAX_ERRORS_KEPT: long past the backoff's cap.
    return dv_sched_backoff_ms(j->backoff_ms, j->n_errors, &self->rng);
}

// j is held in the scheduler: release it when its backoff ends.
static void
retry_later(dv_broker_t *self, job_t *j)
{
    uint64_t delay = dv_dead_backoff_ms(self, j);
    dv_timers_add(self, uv_now(&self->loop) + delay, j->id, T_RELEASE,
                  j->attempts);
}

// Dead-letter record: death time, code, text length, text, job record
// length, job record, attempts record.
static void
store_dead(dv_broker_t *self, const dead_t *d)
{
    if (!self->store || d->job->memory_only) {
        return;
    }
    size_t jl = 0, al = 0, tl = strlen(d->text);
    uint8_t *jrec = dv_jobs_msg_encode(d->job, &jl);
    uint8_t *arec = attempts_encode(d->job, &al);
    size_t len = 20 + tl + jl + al;
    uint8_t *p = dv_malloc(len + DV_STORE_SPARE);
    dv_le_put64(p, d->unix_ms);
    dv_le_put32(p + 8, (uint32_t)d->code);
    dv_le_put32(p + 12, (uint32_t)tl);
    memcpy(p + 16, d->text, tl);
    dv_le_put32(p + 16 + tl, (uint32_t)jl);
    memcpy(p + 20 + tl, jrec, jl);
    memcpy(p + 20 + tl + jl, arec, al);
    free(jrec);
    free(arec);
    dv_store_put_owned(self->store, DV_STORE_DEAD, d->job->id, p, len);
    dv_commit_arm(self);
}

void
dv_dead_push(dv_broker_t *self, dead_t d)
{
    if (self->dead_head + self->n_dead == self->cap_dead) {
        if (self->dead_head) { // the dropped ones' room first: amortized
            memmove(self->dead_block, self->dead, // O(1) a push
                    self->n_dead * sizeof(dead_t));
        } else {
            self->cap_dead = self->cap_dead ? self->cap_dead * 2 : 16;
            self->dead_block =
                dv_realloc(self->dead_block, self->cap_dead * sizeof(dead_t));
        }
        self->dead_head = 0;
    }
    self->dead = self->dead_block + self->dead_head;
    d.seq = ++self->dead_seq;
    self->dead[self->n_dead++] = d;
    dv_u64map_put(self->dead_ids, d.job->id, d.seq);
    self->dead_bytes += d.job->payload_len;
    dv_broker_queue_bytes(self, d.job->queue)->dead++;
}

// d has left the dead-letter queue: its counts, its store record, its text
// and (free_job) its job.
static void
dead_forget(dv_broker_t *self, dead_t *d, bool free_job)
{
    self->dead_bytes -= d->job->payload_len;
    dv_u64map_del(self->dead_ids, d->job->id);
    qbytes_t *qb = dv_broker_queue_find(self, d->job->queue);
    if (qb && qb->dead) {
        qb->dead--;
    }
    if (self->store && !d->job->memory_only) {
        dv_store_del(self->store, DV_STORE_DEAD, d->job->id);
        dv_commit_arm(self);
    }
    free(d->text);
    if (free_job) {
        dv_broker_job_free(d->job);
    }
}

void
dv_dead_trim(dv_broker_t *self)
{
    size_t dropped = 0;
    uint64_t first = 0, last = 0;
    while (self->n_dead && (self->n_dead > self->max_dead ||
                            self->dead_bytes > self->max_dead_bytes)) {
        dead_t d = self->dead[0];
        self->dead_head++; // O(1): the room is reused at the next push
        self->dead = self->dead_block + self->dead_head;
        self->n_dead--;
        first = dropped++ ? first : d.job->id;
        last = d.job->id;
        dead_forget(self, &d, true);
    }
    if (dropped) {
        self->dead_dropped += dropped;
        dv_log(DV_LOG_WARN, "broker",
               "dead letters: dropped the oldest %zu (jobs %llu..%llu; their "
               "failed results stay kept) past --max-dead %llu / "
               "--max-dead-bytes %llu",
               dropped, (unsigned long long)first, (unsigned long long)last,
               (unsigned long long)self->max_dead,
               (unsigned long long)self->max_dead_bytes);
    }
}

// The job ends failed and goes to the dead-letter queue (its attempts are
// used up, or it is quarantined), where `drover dead` can inspect, requeue
// or purge it. Not in the scheduler any more.
void
dv_dead_job(
    dv_broker_t *self, job_t *j, int code, const char *text, const char *worker)
{
    dv_results_fail(self, j, code, text, worker);
    dv_broker_job_detach(self, j->id);
    dead_t d = {j, dv_broker_unix_ms_now(), code, dv_strdup(text), 0};
    store_dead(self, &d);
    dv_dead_push(self, d);
    dv_log(DV_LOG_WARN, "broker", "job %llu is dead: %s (drover dead requeue)",
           (unsigned long long)j->id, text);
    dv_dead_trim(self);
}

// A run of j ended in a retryable failure (a lost worker, or a worker's
// retryable error): quarantine it, send it to the dead letters, or hold it
// for its backoff. The scheduler already took it off the worker: held
// (retry_held) or back at the front of its queue.
void
dv_dead_job_failed_run(dv_broker_t *self,
                       job_t *j,
                       int code,
                       const char *worker,
                       const char *text,
                       bool worker_died,
                       bool sched_removed)
{
    dv_dead_record_error(self, j, code, worker, text);
    if (worker_died) {
        j->lost++;
    }
    char why[DV_ERROR_TEXT_MAX + 64];
    if (worker_died && j->lost >= self->quarantine_after) {
        if (!sched_removed) {
            dv_sched_cancel(self->sched, j->id);
        }
        snprintf(why, sizeof why,
                 "quarantined: %u workers died while running it (last: %s)",
                 j->lost, text);
        dv_dead_job(self, j, DV_EQUARANTINED, why, worker);
    } else if (sched_removed || j->attempts >= j->max_attempts) {
        if (!sched_removed) {
            dv_sched_cancel(self->sched, j->id);
        }
        snprintf(why, sizeof why, "%s; no attempts left (%u)", text,
                 j->attempts);
        dv_dead_job(self, j, code, why, worker);
    } else {
        dv_sched_hold(self->sched, j->id); // no-op when already held
        retry_later(self, j);
    }
}

dead_t *
dv_dead_find(const dv_broker_t *self, uint64_t id, size_t *index)
{
    // id -> its seq (dead_ids), then a binary search: seq rises along the
    // array, whatever left it. A walk here cost O(dead letters) for every
    // job_get and result_get, and job_list asked it once per kept result.
    uint64_t seq = 0;
    if (!dv_u64map_get(self->dead_ids, id, &seq)) {
        return NULL;
    }
    size_t lo = 0, hi = self->n_dead;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->dead[mid].seq < seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == self->n_dead || self->dead[lo].job->id != id) {
        return NULL;
    }
    if (index) {
        *index = lo;
    }
    return &self->dead[lo];
}

// --------------------------------------------------------- dead letters

// Which dead letters a dead_* request means: {job: ID} one (DV_ENOENT when
// it is not dead), or {all: true, queue?: Q} every one (of Q). *one gets
// the id or 0, *queue the filter.
static int
dead_select(const dv_broker_t *self,
            const dv_msg_t *m,
            bool need_all,
            uint64_t *one,
            char *queue,
            size_t queue_size,
            dv_error_t *err)
{
    *one = 0;
    queue[0] = '\0';
    int rc = 0;
    if (dv_msg_has(m, "job")) {
        if ((rc = dv_msg_uint(m, "job", one, err)) != 0) {
            return rc;
        }
        if (!dv_dead_find(self, *one, NULL)) {
            return dv_errorf(err, DV_ENOENT,
                             "job %llu is not in the dead-letter queue",
                             (unsigned long long)*one);
        }
        return 0;
    }
    if (dv_msg_has(m, "queue") &&
        (rc = dv_msg_str(m, "queue", queue, queue_size, err)) != 0) {
        return rc;
    }
    const msgpack_object *all = dv_msg_get(m, "all");
    if (need_all &&
        (!all || all->type != MSGPACK_OBJECT_BOOLEAN || !all->via.boolean)) {
        return dv_errorf(err, DV_EINVAL,
                         "%s: name a job, or say all: true (with queue to "
                         "limit it to one queue)",
                         dv_msg_name(dv_msg_type(m)));
    }
    return 0;
}

static bool
dead_matches(const dead_t *d, uint64_t one, const char *queue)
{
    return one ? d->job->id == one
               : !queue[0] || strcmp(d->job->queue, queue) == 0;
}

// One dead_jobs entry.
static void
dead_item(dv_msgw_t *w, const dead_t *d)
{
    const job_t *j = d->job;
    dv_msgw_v_map(w, 9);
    dv_msgw_v_str(w, "job");
    dv_msgw_v_uint(w, j->id);
    dv_msgw_v_str(w, "queue");
    dv_msgw_v_str(w, j->queue);
    dv_msgw_v_str(w, "kind");
    dv_msgw_v_str(w, j->kind);
    dv_msgw_v_str(w, "attempts");
    dv_msgw_v_uint(w, j->attempts);
    dv_msgw_v_str(w, "priority");
    dv_msgw_v_int(w, j->priority);
    dv_msgw_v_str(w, "died_ms");
    dv_msgw_v_uint(w, d->unix_ms);
    dv_msgw_v_str(w, "submitted_ms");
    dv_msgw_v_uint(w, j->submit_unix);
    dv_msgw_v_str(w, "error");
    dv_msgw_v_map(w, 2);
    dv_msgw_v_str(w, "name");
    dv_msgw_v_str(w, dv_err_name(d->code));
    dv_msgw_v_str(w, "text");
    dv_msgw_v_str(w, d->text);
    dv_msgw_v_str(w, "errors"); // the ninth field
    dv_results_write_errors_value(w, j);
}

// dead_list {job?, queue?, limit?, from?}: dead letters, oldest first, each
// with its final error and its failed attempts; at most limit and one page
// (1.7: `next` is where the next page starts, `from` asks for it; the
// dead letters keep their order, and those that leave meanwhile are
// skipped, never the others).
int
dv_dead_on_list(dv_broker_t *self,
                const void *route,
                size_t route_len,
                const dv_msg_t *m,
                uint64_t rid,
                dv_error_t *err)
{
    uint64_t one = 0, limit = 0, from = 0;
    char queue[DV_MAX_WIRE_NAME + 1];
    int rc = dead_select(self, m, false, &one, queue, sizeof queue, err);
    if (rc == 0) {
        rc = dv_msg_uint_or(m, "limit", 1000, &limit, err);
    }
    if (rc == 0) {
        rc = dv_msg_uint_or(m, "from", 0, &from, err);
    }
    if (rc) {
        return rc;
    }
    size_t count = 0;
    for (size_t i = 0; i < self->n_dead; i++) {
        count += dead_matches(&self->dead[i], one, queue);
    }
    // The first at or after from: seq rises along the array.
    size_t lo = 0, hi = self->n_dead;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->dead[mid].seq < from) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    dv_page_t *page = dv_page_new(DV_LIST_PAGE_BYTES);
    uint64_t next = 0;
    for (size_t i = lo; i < self->n_dead; i++) {
        const dead_t *d = &self->dead[i];
        if (!dead_matches(d, one, queue)) {
            continue;
        }
        if (dv_page_count(page) == limit) {
            next = d->seq;
            break;
        }
        dead_item(dv_page_item(page), d);
        if (!dv_page_keep(page)) {
            next = d->seq;
            break;
        }
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DEAD_JOBS, rid);
    dv_msgw_uint(w, "total", count);
    dv_page_put(page, w, "jobs");
    dv_page_destroy(&page);
    if (next) {
        dv_msgw_uint(w, "next", next);
    }
    dv_broker_client_reply(self, route, route_len, w);
    return 0;
}

// dead_requeue {job | all, queue?}: each selected dead letter becomes a new
// job (a new id, attempts from zero, same queue, kind, payload, priority
// and options; a deadline counts again from now) and leaves the dead-letter
// queue. The old id keeps its failed result. Answered once stored.
int
dv_dead_on_requeue(dv_broker_t *self,
                   const void *route,
                   size_t route_len,
                   const dv_msg_t *m,
                   uint64_t rid,
                   dv_error_t *err)
{
    uint64_t one = 0;
    char queue[DV_MAX_WIRE_NAME + 1];
    int rc = dead_select(self, m, true, &one, queue, sizeof queue, err);
    if (rc) {
        return rc;
    }
    size_t count = 0;
    for (size_t i = 0; i < self->n_dead; i++) {
        count += dead_matches(&self->dead[i], one, queue);
    }
    // `requeued` pairs the old ids with the new while they fit one page
    // (100,000 dead letters would take ~2 MB); `count` counts them all.
    dv_page_t *page = dv_page_new(DV_LIST_PAGE_BYTES);
    uint64_t now = dv_broker_unix_ms_now();
    // One pass, the kept ones moved down (as in purge).
    size_t k = 0, n = self->n_dead;
    bool full = false;
    for (size_t i = 0; i < n; i++) {
        dead_t d = self->dead[i];
        if (full || !dead_matches(&d, one, queue)) {
            self->dead[k++] = d;
            continue;
        }
        job_t *old = d.job;
        job_t *j =
            dv_broker_job_alloc(self->job_spare, NULL, 0, old->queue,
                                old->model, old->payload, old->payload_len);
        if (!j) { // it and the rest stay dead letters
            full = true;
            self->dead[k++] = d;
            continue;
        }
        j->id = self->next_job++;
        j->kind = old->kind;
        j->spec = old->spec;
        j->max_attempts = old->max_attempts;
        j->model_version = old->model_version;
        j->rows = old->rows;
        j->cols = old->cols;
        j->memory_only = old->memory_only;
        memcpy(j->model_sha, old->model_sha, sizeof j->model_sha);
        j->priority = old->priority;
        j->timeout_ms = old->timeout_ms;
        j->backoff_ms = old->backoff_ms;
        j->sleep_ms = old->sleep_ms;
        j->submit_unix = now;
        j->deadline_unix = old->deadline_unix
                               ? now + (old->deadline_unix - old->submit_unix)
                               : 0;
        dv_msgw_t *item = dv_page_item(page);
        dv_msgw_v_map(item, 2);
        dv_msgw_v_str(item, "job");
        dv_msgw_v_uint(item, old->id);
        dv_msgw_v_str(item, "new_job");
        dv_msgw_v_uint(item, j->id);
        (void)dv_page_keep(page);
        dv_broker_job_add(self, j);
        if (self->store) {
            if (!j->memory_only) {
                size_t len = 0;
                uint8_t *rec = dv_jobs_msg_encode(j, &len);
                dv_store_put_owned(self->store, DV_STORE_JOBS, j->id, rec, len);
            }
            dv_store_set_next_id(self->store, self->next_job);
            dv_commit_arm(self);
        }
        dv_jobs_msg_schedule(self, j, false); // its record is not committed yet
        dead_forget(self, &d, true);
    }
    dv_assert(self->n_dead == n); // nothing died while this ran
    self->n_dead = k;
    if (full) {
        dv_page_destroy(&page);
        return dv_errorf(err, DV_ENOMEM,
                         "dead_requeue: no memory (some were requeued)");
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_OK, rid);
    dv_msgw_uint(w, "count", count);
    dv_page_put(page, w, "requeued");
    dv_page_destroy(&page);
    dv_commit_reply_after(self, route, route_len, rid, w);
    return 0;
}

// dead_purge {job | all, queue?}: drop dead letters for good (their failed
// results stay until their TTL). Answered once stored.
int
dv_dead_on_purge(dv_broker_t *self,
                 const void *route,
                 size_t route_len,
                 const dv_msg_t *m,
                 uint64_t rid,
                 dv_error_t *err)
{
    uint64_t one = 0;
    char queue[DV_MAX_WIRE_NAME + 1];
    int rc = dead_select(self, m, true, &one, queue, sizeof queue, err);
    if (rc) {
        return rc;
    }
    // One pass, the kept ones moved down: removing them one by one moved
    // the rest each time, O(n^2) for --all (~200 GB moved for 100,000).
    size_t count = 0, k = 0;
    for (size_t i = 0; i < self->n_dead; i++) {
        dead_t d = self->dead[i];
        if (dead_matches(&d, one, queue)) {
            dead_forget(self, &d, true);
            count++;
        } else {
            self->dead[k++] = d;
        }
    }
    self->n_dead = k;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_OK, rid);
    dv_msgw_uint(w, "purged", count);
    dv_commit_reply_after(self, route, route_len, rid, w);
    return 0;
}
