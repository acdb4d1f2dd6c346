// dv_commit — the group-commit pipeline.
//
// Owns: the commit timer (one commit per loop turn), the batch written on
// the thread pool, and what waits for it: held replies, held results,
// pending submits, staged checkpoints and seq marks.
//
// The model and its references: dv_broker_int.h and dv_broker.c.
#include "dv_commit.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "dv_batching.h"
#include "dv_broker_int.h"
#include "dv_idem.h"
#include "dv_jobs_msg.h"
#include "dv_le.h"
#include "dv_limits.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_monitor.h"
#include "dv_proto.h"
#include "dv_records.h"
#include "dv_results.h"
#include "dv_sched.h"
#include "dv_store.h"

static void on_commit(uv_timer_t *t);

// Commit what is staged at the next turn of the loop: every submit, result
// and delete of this turn shares one fsync (group commit). A 0 ms timer
// runs before the loop next polls, and before dv_zwatch's prepare re-reads
// the sockets' state, so the sends that follow a commit cannot hide input.
void
dv_commit_arm(dv_broker_t *self)
{
    if (self->store && !self->commit_armed) {
        uv_timer_start(&self->commit_timer, on_commit, 0, 0);
        self->commit_armed = true;
    }
}

// Queue a reply to go out after the next commit (what it reports is then
// stored).
void
dv_commit_hold_reply(dv_broker_t *self,
                     const void *route,
                     size_t route_len,
                     uint64_t rid,
                     dv_msgw_t *w)
{
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    held_reply_t *hr = dv_malloc(sizeof *hr + len);
    memset(hr, 0, sizeof *hr);
    memcpy(hr->route, route, route_len);
    hr->route_len = route_len;
    hr->rid = rid;
    hr->len = len;
    memcpy(hr->header, h, len);
    *(self->held_tail ? self->held_tail : &self->held) = hr; // FIFO, O(1)
    self->held_tail = &hr->next;
    dv_msgw_destroy(&w);
    dv_commit_arm(self);
}

void
dv_commit_reply_stored(dv_broker_t *self,
                       const void *route,
                       size_t route_len,
                       uint64_t rid,
                       dv_msgw_t *w)
{
    if (self->group && route_len <= ROUTE_MAX) {
        dv_commit_hold_reply(self, route, route_len, rid, w);
    } else {
        dv_broker_client_reply(self, route, route_len, w);
    }
}

void
dv_commit_reply_after(dv_broker_t *self,
                      const void *route,
                      size_t route_len,
                      uint64_t rid,
                      dv_msgw_t *w)
{
    if (self->store && route_len <= ROUTE_MAX) {
        dv_commit_hold_reply(self, route, route_len, rid, w);
    } else {
        dv_broker_client_reply(self, route, route_len, w);
    }
}

// ------------------------------------------------------------- public

// ------------------------------------------------------------- store

// A batch being made durable on the libuv pool, with the submits it holds.
typedef struct {
    dv_work_t work;          // pool request
    dv_broker_t *broker;     // owner
    dv_store_batch_t *batch; // the writes
    uint64_t *pending;       // submits to acknowledge after it (owned)
    held_reply_t *held;      // replies to send after it (owned)
    held_result_t *results;  // results to send after it (owned)
    struct mark_s *marks;    // seq marks it stores (owned)
    ckpt_due_t *ckpts;       // checkpoints it stores (owned)
    size_t n_ckpts;          //
    size_t n_marks;          //
    size_t n_pending;        //
    bool fault_eio;          // the fault seam: fail instead of writing
    double seconds;          // how long the write and fsync took
    uint64_t t0;             // a group's: when the entry was proposed
    int rc;                  // outcome
    dv_error_t err;          //
} commit_t;

static void
work_commit(dv_work_t *req)
{
    commit_t *c = req->data;
    if (c->fault_eio) { // opts.fault_eio_submit: as a failed write would
        c->rc = dv_errorf(&c->err, DV_EIO,
                          "store commit: Input/output error (fault seam "
                          "DROVER_BROKER_FAULT)");
        return;
    }
    uint64_t t0 = uv_hrtime();
    c->rc = dv_store_batch_commit(c->broker->store, c->batch, &c->err);
    c->seconds = (double)(uv_hrtime() - t0) / 1e9;
}

// A queue's seq mark in a batch: the last seq it gave out.
typedef struct mark_s {
    uint32_t qidx; // the queue
    uint64_t seq;  // its stream's last seq when staged
} mark_t;

// Stage the seq marks due (dv_results_mark_due) into the batch c is about to
// take. Record: last seq (u64), queue length (u32), queue.
static void
marks_stage(dv_broker_t *self, commit_t *c)
{
    c->n_marks = self->n_marks_due;
    c->marks = c->n_marks ? dv_malloc(c->n_marks * sizeof *c->marks) : NULL;
    for (size_t i = 0; i < c->n_marks; i++) {
        qbytes_t *q = &self->qbytes[self->marks_due[i] - 1];
        q->mark_due = false;
        q->mark_key = q->mark_key ? q->mark_key : ++self->last_mark_key;
        c->marks[i] = (mark_t){self->marks_due[i], q->next_seq - 1};
        size_t ql = strlen(q->name);
        uint8_t *p = dv_malloc(12 + ql + DV_STORE_SPARE);
        dv_le_put64(p, q->next_seq - 1);
        dv_le_put32(p + 8, (uint32_t)ql);
        memcpy(p + 12, q->name, ql);
        dv_store_put_owned(self->store, DV_STORE_STREAMS, q->mark_key, p,
                           12 + ql);
    }
    self->n_marks_due = 0;
}

// After a batch: its queues' streams go on up to the seqs it stored. A
// failed mark is due again (with the next commit, whatever arms it: a
// full disk must not spin the loop).
static void
marks_done(dv_broker_t *self, commit_t *c)
{
    for (size_t i = 0; i < c->n_marks; i++) {
        qbytes_t *q = &self->qbytes[c->marks[i].qidx - 1];
        if (c->rc) {
            dv_results_mark_due(self, c->marks[i].qidx, false);
            continue;
        }
        q->seq_stored =
            c->marks[i].seq > q->seq_stored ? c->marks[i].seq : q->seq_stored;
        for (uint32_t j = 0; j < q->n_fol; j++) { // its followers
            dv_results_stream_pump(self, &self->cursors[q->fol[j]]);
        }
    }
    free(c->marks);
}

// After a batch: the results it stored go out (dv_results_hold). A failed
// commit does not hold them back (their jobs ran, and their submitters would
// wait until space is freed), but the log says that a restart before then runs
// those jobs again.
static void
results_release(dv_broker_t *self, held_result_t *h, int rc)
{
    size_t unstored = 0;
    while (h) {
        held_result_t *next = h->next;
        if (rc && self->group) {
            // A group member that lost its leadership: these outcomes are
            // not committed, and the new leader may record others (it runs
            // the jobs again). Nothing goes out; the broker starts over.
            free(h);
            h = next;
            continue;
        }
        kept_t *k = dv_results_kept_find(self, h->id);
        if (k && k->unstored) {
            k->unstored = false; // its stream goes on in marks_done
            unstored++;
        }
        if (k && h->route_len) {
            dv_results_send_kept(self, k, h->route, h->route_len, h->rid);
        } else if (h->route_len) { // dropped since (TTL, bounds)
            char text[64];
            snprintf(text, sizeof text, "no result for job %llu: expired",
                     (unsigned long long)h->id);
            dv_broker_client_error(self, h->route, h->route_len, h->rid, 0,
                                   DV_ENOENT, text);
        }
        free(h);
        h = next;
    }
    if (rc && unstored) {
        dv_log(DV_LOG_ERROR, "broker",
               "%zu results sent although not stored: a restart before the "
               "store takes writes again runs their jobs again; free disk "
               "space under --data (see the store error above)",
               unstored);
    }
    dv_results_kept_trim(self); // what results_release held back
}

// After a batch: acknowledge and schedule its submits, or refuse them with
// the store's reason (disk full, I/O error): nothing is acknowledged that is
// not stored.
static void
commit_finished(dv_broker_t *self, commit_t *c)
{
    dv_store_batch_done(self->store, &c->batch, c->rc);
    if (c->rc) {
        dv_log(DV_LOG_ERROR, "broker",
               "%s (check free disk space and permissions under --data)",
               c->err.text);
    }
    if (c->rc == DV_ENOSPC && self->disk) {
        dv_disk_full(self->disk); // no new durable jobs until there is room
    }
    bool gather =
        dv_jobs_msg_accepts_begin(self); // one accepted_many per client
    for (size_t i = 0; i < c->n_pending; i++) {
        job_t *j = dv_broker_job_find(self, c->pending[i]);
        if (!j) {
            continue;
        }
        dv_broker_job_committed(self, j);
        if (c->rc == 0) {
            dv_jobs_msg_accept(self, j);
        } else {
            dv_broker_client_error(self, j->route, j->route_len, j->rid, 0,
                                   c->rc, c->err.text);
            dv_idem_forget_job(self, j->id);
            dv_broker_job_remove(self, j->id);
        }
    }
    if (gather) {
        dv_jobs_msg_accepts_flush(self);
    }
    results_release(self, c->results, c->rc);
    marks_done(self, c);
    for (size_t i = 0; c->rc == 0 && i < c->n_ckpts; i++) {
        job_t *j = dv_broker_job_find(self, c->ckpts[i].job); // now on disk
        if (j && c->ckpts[i].epoch > j->ckpt_stored) {
            j->ckpt_stored = c->ckpts[i].epoch;
        }
    }
    free(c->ckpts);
    while (c->held) {
        held_reply_t *h = c->held;
        c->held = h->next;
        if (c->rc == 0) {
            dv_broker_client_send(self, h->route, h->route_len, h->header,
                                  h->len, NULL, 0);
        } else {
            dv_broker_client_error(self, h->route, h->route_len, h->rid, 0,
                                   c->rc, c->err.text);
        }
        free(h);
    }
    free(c->pending);
    free(c);
}

static commit_t *
commit_take(dv_broker_t *self)
{
    commit_t *c = dv_calloc(1, sizeof *c);
    c->broker = self;
    marks_stage(self, c); // into this batch
    c->batch = dv_store_take(self->store);
    c->pending = self->pending;
    c->n_pending = self->n_pending;
    c->held = self->held;
    self->held = NULL;
    self->held_tail = NULL;
    c->results = self->held_res;
    self->held_res = NULL;
    self->held_end = NULL;
    self->pending = NULL;
    self->n_pending = self->cap_pending = 0;
    c->ckpts = self->ckpts_due;
    c->n_ckpts = self->n_ckpts_due;
    self->ckpts_due = NULL;
    self->n_ckpts_due = self->cap_ckpts_due = 0;
    c->work.data = c;
    return c;
}

static void commit_done(dv_broker_t *self, commit_t *c);

static void
after_commit(dv_work_t *req, int status)
{
    commit_t *c = req->data;
    if (status != 0 && c->rc == 0) {
        c->rc = dv_errorf(&c->err, DV_ECANCELED, "commit cancelled");
    }
    commit_done(c->broker, c);
}

// A group's batch: on a majority of disks (rc 0), or never (this member
// stopped leading: what it held is refused, and the broker starts over).
static void
on_replicated(void *arg, int rc, const char *why)
{
    commit_t *c = arg;
    c->seconds = (double)(uv_hrtime() - c->t0) / 1e9;
    if (rc) {
        c->rc = dv_errorf(&c->err, rc, "%s", why);
    }
    commit_done(c->broker, c);
}

static bool
anything_to_commit(dv_broker_t *self)
{
    return dv_store_staged(self->store) || self->n_pending || self->held ||
           self->held_res || self->n_marks_due ||
           (self->repl && dv_repl_files_staged(self->repl));
}

static void
commit_done(dv_broker_t *self, commit_t *c)
{
    if (self->group) {
        self->repl_in_flight--;
    } else {
        self->committing = false;
    }
    if (self->group && c->rc) {
        // Not the leader any more (or its log failed): what this batch
        // held is refused, and the broker starts over as a follower at
        // once -- committing again would fail the same way, on a 0 ms
        // timer that never lets the loop poll.
        dv_monitor_commit(self->monitor, c->seconds, c->rc);
        commit_finished(self, c);
        self->restart = true;
        uv_stop(&self->loop);
        return;
    }
    dv_monitor_commit(self->monitor, c->seconds, c->rc);
    bool marks = self->n_marks_due > 0; // due before a failure adds more
    commit_finished(self, c);
    if (anything_to_commit(self) || marks) {
        dv_commit_arm(self); // what was staged meanwhile: the next group
    }
    dv_batching_dispatch(self);
}

// The group commit: everything staged since the last one goes to the pool
// as one batch, one fsync. While a batch is being written the next one
// gathers, so commits pipeline and grow with the load; the loop thread
// never waits on the disk.
static void
on_commit(uv_timer_t *t)
{
    dv_broker_t *self = t->data;
    self->commit_armed = false;
    if (self->committing || !anything_to_commit(self) ||
        self->repl_in_flight >= DV_REPL_PIPELINE) {
        return; // commit_done re-arms when a batch in flight is done
    }
    commit_t *c = commit_take(self);
    if (self->fault_eio_left && c->n_pending) { // the fault seam
        c->fault_eio = self->fault_eio_left <= c->n_pending;
        self->fault_eio_left =
            c->fault_eio ? 0 : self->fault_eio_left - c->n_pending;
        if (c->fault_eio) {
            dv_log(DV_LOG_WARN, "broker",
                   "fault seam: this commit fails with DV_EIO");
        }
    }
    if (self->fault_armed) { // the fault seam: die between finish and commit
        dv_log(DV_LOG_WARN, "broker",
               "fault seam: SIGKILL before the commit of a durable result");
        raise(SIGKILL);
    }
    if (self->group) {          // a group: the batch is an entry of its log
        self->repl_in_flight++; // raft applies entries in order
        c->t0 = uv_hrtime();
        int prc = self->repl // NULL: closing, raft is gone
                      ? dv_repl_propose(self->repl, c->batch, on_replicated, c,
                                        &c->err)
                      : dv_errorf(&c->err, DV_ENOTLEADER,
                                  "not stored: this broker is stopping");
        if (prc != 0) {
            c->rc = prc;
            commit_done(self, c);
        }
        return;
    }
    self->committing = true;
    if (dv_pool_queue(self->pool, &c->work, work_commit, after_commit) != 0) {
        self->committing = false;
        c->rc = dv_store_batch_commit(self->store, c->batch, &c->err);
        commit_finished(self, c);
        dv_batching_dispatch(self);
    }
}

// Commit what is left, synchronously (shutdown, after the loop stopped).
void
dv_commit_flush(dv_broker_t *self)
{
    if (self->store && (dv_store_staged(self->store) || self->n_pending ||
                        self->held || self->held_res || self->n_marks_due)) {
        commit_t *c = commit_take(self);
        c->rc = dv_store_batch_commit(self->store, c->batch, &c->err);
        commit_finished(self, c);
    }
}
