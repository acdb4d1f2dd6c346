// dv_timers — timed events: retry backoffs, deadlines, run timeouts.
//
// Owns: self->timeq (T_RELEASE, T_DEADLINE, T_TIMEOUT, T_UNCLAIMED
// entries) and the one uv timer armed for the earliest of them; what each
// does when due.
//
// The model and its references: dv_broker_int.h and dv_broker.c.
#include "dv_timers.h"

#include <stdio.h>

#include <uv.h>

#include "dv_batching.h"
#include "dv_broker_int.h"
#include "dv_dead.h"
#include "dv_log.h"
#include "dv_proto.h"
#include "dv_records.h"
#include "dv_results.h"
#include "dv_sched.h"
#include "dv_spill.h"
#include "dv_timeq.h"
#include "dv_wire.h"

static void timers_arm(dv_broker_t *self);

// Whether timer entry e can still do something when due (timer_due would
// not ignore it): its job is in memory and, for a run's timeout, a
// backoff's end or a leader change's hold, still at that attempt; or it is
// a deadline of a job waiting in the store (a deep queue's).
static bool
timer_live(const dv_timeq_entry_t *e, void *arg)
{
    dv_broker_t *self = arg;
    if (e->tag == T_DEADLINE) {
        if (dv_broker_job_find(self, e->id)) {
            return true;
        }
        job_t *s = self->n_spilled ? dv_spill_read(self, e->id) : NULL;
        dv_broker_job_free(s);
        return s != NULL;
    }
    dv_sched_state_t st;
    uint32_t attempts = 0;
    return dv_broker_job_find(self, e->id) &&
           dv_sched_job_state(self->sched, e->id, &st, &attempts) == 0 &&
           attempts == e->attempt;
}

// Entries a heap may hold before the stale ones are dropped: 1,024 at
// first, then twice what the last pass kept.
#define TIMERS_COMPACT_MIN 1024

void
dv_timers_add(
    dv_broker_t *self, uint64_t at, uint64_t id, uint32_t tag, uint32_t attempt)
{
    dv_timeq_push(self->timeq, (dv_timeq_entry_t){at, id, tag, attempt});
    // Entries stay until due, and a job's deadline or timeout may be days
    // away (DV_MAX_DEADLINE_MS) while the job ends in a millisecond: past
    // twice the entries the last pass kept, the stale ones go (amortized
    // O(1) a push), so the heap holds about what live jobs need.
    size_t n = dv_timeq_size(self->timeq);
    if (n >= self->timers_compact_at) {
        dv_timeq_filter(self->timeq, timer_live, self);
        n = dv_timeq_size(self->timeq);
        self->timers_compact_at =
            2 * n > TIMERS_COMPACT_MIN ? 2 * n : TIMERS_COMPACT_MIN;
    }
    timers_arm(self);
}

// ------------------------------------------------------------ timed events

// A job not started by its deadline ends as expired (it is in no queue and
// on no worker when this is called).
void
dv_timers_job_expire(dv_broker_t *self, job_t *j)
{
    char text[160];
    snprintf(text, sizeof text,
             "not started by its deadline (%llu ms after the submit); "
             "%u attempts made",
             (unsigned long long)(j->deadline_unix - j->submit_unix),
             j->attempts);
    dv_results_fail(self, j, DV_EEXPIRED, text, "");
    dv_broker_job_remove(self, j->id);
}

// Tell the worker running j to drop it.
void
dv_timers_cancel_on_worker(dv_broker_t *self, const job_t *j)
{
    uint64_t handle = 0;
    if (dv_sched_job_worker(self->sched, j->id, &handle) != 0) {
        return;
    }
    worker_t *w = dv_broker_worker_by_handle(self, handle);
    if (w) {
        dv_msgw_t *c = dv_msgw_new(DV_MSG_CANCEL, 0);
        dv_msgw_uint(c, "job", j->id);
        dv_msgw_uint(c, "attempt", j->attempts);
        size_t len = 0;
        const uint8_t *h = dv_msgw_bytes(c, &len);
        dv_wire_send(self->workers_sock, w->route, w->route_len, h, len, NULL,
                     0);
        dv_msgw_destroy(&c);
    }
}

// One due event; stale ones (the job moved on since) are ignored.
static void
timer_due(dv_broker_t *self, const dv_timeq_entry_t *e)
{
    job_t *j = dv_broker_job_find(self, e->id);
    dv_sched_state_t st;
    uint32_t attempts = 0;
    if (!j && e->tag == T_DEADLINE) { // a deep queue's job, in the store
        job_t *s = dv_spill_read(self, e->id);
        if (s) {
            char text[160];
            snprintf(text, sizeof text,
                     "not started by its deadline (%llu ms after the "
                     "submit); 0 attempts made",
                     (unsigned long long)(s->deadline_unix - s->submit_unix));
            dv_spill_end(self, s, DV_EEXPIRED, text);
            dv_broker_job_free(s);
        }
        return;
    }
    if (!j || j->cancelled ||
        dv_sched_job_state(self->sched, e->id, &st, &attempts) != 0) {
        return;
    }
    if (e->tag == T_RELEASE && st == DV_SCHED_HELD && attempts == e->attempt) {
        dv_sched_release(self->sched, j->id);
    } else if (e->tag == T_UNCLAIMED && j->leader_held && st == DV_SCHED_HELD &&
               attempts == e->attempt) {
        // No worker claimed it after the leader change (its run message
        // may have died with the old leader): runs again, and the lost run
        // does not count (max_attempts grows by one, in memory, as for an
        // evicted worker's job; attempt numbers stay unique).
        j->leader_held = false;
        j->max_attempts++;
        dv_sched_refund(self->sched, j->id);
        dv_sched_release(self->sched, j->id);
        dv_log(DV_LOG_INFO, "broker",
               "job %llu: no worker claimed attempt %u after the leader "
               "change: queued again, that run not counted",
               (unsigned long long)j->id, attempts);
    } else if (e->tag == T_DEADLINE && st != DV_SCHED_RUNNING) {
        dv_sched_cancel(self->sched, j->id);
        dv_timers_job_expire(self, j);
    } else if (e->tag == T_TIMEOUT && st == DV_SCHED_RUNNING &&
               attempts == e->attempt) {
        // Ends the job (not retried: it would most likely run as long
        // again); its slot stays taken until the worker answers.
        uint64_t handle = 0;
        dv_sched_job_worker(self->sched, j->id, &handle);
        worker_t *w = dv_broker_worker_by_handle(self, handle);
        char text[DV_ERROR_TEXT_MAX];
        snprintf(text, sizeof text,
                 "ran longer than its timeout of %u ms (attempt %u)",
                 j->timeout_ms, attempts);
        dv_dead_record_error(self, j, DV_ETIMEDOUT, w ? w->name : "", text);
        dv_timers_cancel_on_worker(self, j);
        dv_results_fail(self, j, DV_ETIMEDOUT, text, w ? w->name : "");
        j->cancelled = true;
    }
}

static void
on_timer(uv_timer_t *t)
{
    dv_broker_t *self = t->data;
    self->timer_at = 0;
    uint64_t now = uv_now(&self->loop);
    dv_timeq_entry_t e;
    while (dv_timeq_pop_due(self->timeq, now, &e)) {
        timer_due(self, &e);
    }
    timers_arm(self);
    dv_batching_dispatch(self);
}

// Arm the loop timer for the earliest event (if it is not armed earlier).
static void
timers_arm(dv_broker_t *self)
{
    dv_timeq_entry_t e;
    if (!dv_timeq_peek(self->timeq, &e)) {
        return;
    }
    uint64_t at = e.at ? e.at : 1;
    if (self->timer_at && self->timer_at <= at) {
        return;
    }
    uint64_t now = uv_now(&self->loop);
    uv_timer_start(&self->timer, on_timer, at > now ? at - now : 0, 0);
    self->timer_at = at;
}
