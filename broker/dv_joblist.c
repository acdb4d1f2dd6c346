// dv_joblist — the job_list handler: jobs by id, newest first, in pages,
// filtered by state and queue.
//
// Owns nothing beyond one request: it reads the jobs table, the
// scheduler's running and held jobs, dead letters, deep queues' spilled
// jobs and kept results (dv_broker_int.h), and names each job's state
// with dv_jobs_msg_state. A page costs about its own length (a scan down
// from the newest id), or, when the scan finds too few, the candidates
// collected (dv_newest).
#include "dv_joblist.h"

#include <stdlib.h>
#include <string.h>

#include "dv_broker_int.h"
#include "dv_commit.h"
#include "dv_dead.h"
#include "dv_jobs_msg.h"
#include "dv_le.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_newest.h"
#include "dv_page.h"
#include "dv_proto.h"
#include "dv_results.h"
#include "dv_sched.h"
#include "dv_spill.h"

// job_list's filter: the states wanted (want[DV_JOB_STATES_]), queue ("": all),
// limit (1 .. 10,000; default 100) and from (1.7: the newest id listed, a
// previous page's `next`; 0: no bound).
static int
job_list_filter(const dv_msg_t *m,
                bool *want,
                char *queue,
                size_t queue_size,
                uint64_t *limit,
                uint64_t *from,
                dv_error_t *err)
{
    char state[16] = "";
    int rc = 0;
    if (dv_msg_has(m, "state")) {
        rc = dv_msg_str(m, "state", state, sizeof state, err);
    }
    if (rc == 0 && dv_msg_has(m, "queue")) {
        rc = dv_msg_str(m, "queue", queue, queue_size, err);
    }
    if (rc == 0) {
        rc = dv_msg_uint_or(m, "limit", 100, limit, err);
    }
    if (rc == 0) {
        rc = dv_msg_uint_or(m, "from", 0, from, err);
    }
    if (rc) {
        return rc;
    }
    bool any = false;
    for (int i = 0; i < DV_JOB_STATES_; i++) {
        want[i] = !state[0] || strcmp(state, dv_jobs_msg_state_name(i)) == 0;
        any = any || want[i];
    }
    if (!any) {
        return dv_errorf(err, DV_EINVAL,
                         "job_list: state '%s': queued, running, retrying, "
                         "done, failed, dead, expired or cancelled",
                         state);
    }
    *limit = *limit < 1 ? 1 : *limit > 10000 ? 10000 : *limit;
    return 0;
}

// Whether the live job j is a job_list candidate: not cancelled, id at
// most top, on queue ("": all).
static bool
live_listed(const job_t *j, const char *queue, uint64_t top)
{
    return j && !j->cancelled && j->id <= top &&
           (!queue[0] || strcmp(j->queue, queue) == 0);
}

// job_list's candidates in the states wanted (want[DV_JOB_STATES_]) on queue
// ("": all) with an id up to from (0: any), in no order: live jobs, dead
// letters, deep queues' spilled jobs and (all queues only: finished jobs do
// not keep their queue name) kept results, each source read only when it
// may hold a state wanted. Running and retrying jobs alone come from the
// scheduler's lists: `drover top` asks for the running jobs every second,
// and reading every live job for them took 0.4 s of the loop behind a
// million queued ones. Caller frees; *n of them.
// Which sources may hold a state wanted: every live job (*live: queued,
// or running while a training job's model is stored, off the scheduler),
// dead letters (*dead), kept results (*finished).
static void
job_list_sources(const dv_broker_t *self,
                 const bool *want,
                 bool *live,
                 bool *dead,
                 bool *finished)
{
    *live = want[DV_JOB_QUEUED] || (want[DV_JOB_RUNNING] && self->n_finishing);
    *dead = want[DV_JOB_DEAD];
    *finished = want[DV_JOB_DONE] || want[DV_JOB_FAILED] ||
                want[DV_JOB_EXPIRED] || want[DV_JOB_CANCELLED];
}

static uint64_t *
job_list_ids(const dv_broker_t *self,
             const char *queue,
             uint64_t from,
             const bool *want,
             size_t *n_out)
{
    bool live_all, dead, finished;
    job_list_sources(self, want, &live_all, &dead, &finished);
    bool sched_ids =
        !live_all && (want[DV_JOB_RUNNING] || want[DV_JOB_RETRYING]);
    size_t cap = (live_all ? self->n_jobs : 0) +
                 (sched_ids ? dv_sched_running(self->sched) +
                                  dv_sched_held(self->sched)
                            : 0) +
                 (finished ? self->n_kept : 0) + (dead ? self->n_dead : 0),
           n = 0;
    for (size_t q = 0; want[DV_JOB_QUEUED] && q < self->n_qbytes; q++) {
        cap += self->qbytes[q].spilled;
    }
    uint64_t top = from ? from : UINT64_MAX;
    uint64_t *ids = dv_malloc((cap ? cap : 1) * sizeof *ids);
    for (size_t b = 0; live_all && b < self->n_buckets; b++) {
        for (const job_t *j = self->jobs[b]; j; j = j->next) {
            if (live_listed(j, queue, top)) {
                ids[n++] = j->id;
            }
        }
    }
    if (sched_ids) {
        size_t got = dv_sched_ids(self->sched, want[DV_JOB_RUNNING],
                                  want[DV_JOB_RETRYING], ids);
        for (size_t i = 0; i < got; i++) {
            if (live_listed(dv_broker_job_find(self, ids[i]), queue, top)) {
                ids[n++] = ids[i];
            }
        }
    }
    for (size_t i = 0; dead && i < self->n_dead; i++) {
        const job_t *j = self->dead[i].job;
        if (j->id <= top && (!queue[0] || strcmp(j->queue, queue) == 0)) {
            ids[n++] = j->id;
        }
    }
    for (size_t q = 0; want[DV_JOB_QUEUED] && q < self->n_qbytes; q++) {
        const qbytes_t *qb = &self->qbytes[q];
        if (!qb->spilled || (queue[0] && strcmp(qb->name, queue) != 0)) {
            continue;
        }
        for (size_t s = 0; s < qb->n_spills; s++) {
            const spill_t *sp = &qb->spills[s];
            for (size_t at = sp->head; at < sp->len;
                 at += 17 + sp->buf[at + 16]) {
                uint64_t id = dv_le_get64(sp->buf + at);
                if (id <= top && !dv_spill_skip_has(self, id)) {
                    ids[n++] = id;
                }
            }
        }
    }
    for (const kept_t *k = finished && !queue[0] ? self->kept_oldest : NULL; k;
         k = k->newer) {
        if (k->id <= top &&
            (!dv_broker_job_find(self, k->id) ||
             dv_broker_job_find(self, k->id)->cancelled) &&
            !dv_dead_find(self, k->id, NULL)) {
            ids[n++] = k->id;
        }
    }
    *n_out = n;
    return ids;
}

// One job_list entry: id in state s (j: live, else finished).
static void
job_list_item(dv_broker_t *self,
              dv_msgw_t *w,
              uint64_t id,
              int s,
              const job_t *j,
              uint32_t attempts)
{
    const kept_t *k = j ? NULL : dv_results_kept_find(self, id);
    const char *kq = k && k->qidx && k->qidx <= self->n_qbytes
                         ? self->qbytes[k->qidx - 1].name
                         : NULL;
    bool kk = k && k->kind; // a finished job's kind (1.5)
    dv_msgw_v_map(w, j ? 6 : 3 + (kq ? 1 : 0) + (kk ? 1 : 0));
    dv_msgw_v_str(w, "job");
    dv_msgw_v_uint(w, id);
    dv_msgw_v_str(w, "state");
    dv_msgw_v_str(w, dv_jobs_msg_state_name(s));
    dv_msgw_v_str(w, "attempts");
    dv_msgw_v_uint(w, attempts);
    if (j) {
        dv_msgw_v_str(w, "queue");
        dv_msgw_v_str(w, j->queue);
        dv_msgw_v_str(w, "kind");
        dv_msgw_v_str(w, j->kind);
        dv_msgw_v_str(w, "priority");
        dv_msgw_v_int(w, j->priority);
        return;
    }
    if (kq) { // finished: its queue and kind (1.5)
        dv_msgw_v_str(w, "queue");
        dv_msgw_v_str(w, kq);
    }
    if (kk) {
        dv_msgw_v_str(w, "kind");
        dv_msgw_v_str(w, dv_rec_kind_name(k->kind - 1));
    }
}

// Where job_list_write takes its candidates from, newest first: the ones
// job_list_ids collected (heap), or a scan down the ids from top (ids are
// given in rising order, so the newest are the highest).
//
// The scan: `drover jobs list` (every state) or --state queued behind a
// million queued jobs collected and heaped them all, ~50 ms of the loop
// for a page of 100. The scan looks at one id after another and asks the
// same sources whether it is a candidate (a deep queue's spilled jobs by
// the map of their owners, dv_spill_owner), so a page costs about its own
// length. It gives up after `budget` ids (the newest ids mostly gone or in
// other states: a wide gap), and the collected candidates answer instead.
typedef struct {
    dv_newest_t heap; // heap mode: the candidates
    size_t left;      //   not taken yet
    bool scan;        // scan mode:
    uint64_t at;      //   the next id to look at (0: none left)
    size_t budget;    //   ids it may still look at
    bool gave_up;     //   the budget ran out
    const char *queue;
    bool live, dead, finished; // the sources (job_list_sources)
    bool spilled;              //   and spilled jobs (queued wanted)
} list_ids_t;

// Whether id is a candidate of job_list_ids's sources.
static bool
list_candidate(const dv_broker_t *self, const list_ids_t *it, uint64_t id)
{
    const job_t *j = dv_broker_job_find(self, id);
    if (j && !j->cancelled) {
        return it->live && live_listed(j, it->queue, UINT64_MAX);
    }
    const dead_t *d = dv_dead_find(self, id, NULL);
    if (d) {
        return it->dead &&
               (!it->queue[0] || strcmp(d->job->queue, it->queue) == 0);
    }
    uint16_t who = 0;
    const char *q = it->spilled ? dv_spill_owner(self, id, &who) : NULL;
    if (q && !dv_spill_skip_has(self, id)) { // in its queue's spill
        return !it->queue[0] || strcmp(q, it->queue) == 0;
    }
    return it->finished && !it->queue[0] && dv_results_kept_find(self, id);
}

// The next candidate, newest first; 0 when none is left (scan: or when
// the budget ran out, with gave_up).
static uint64_t
list_next(const dv_broker_t *self, list_ids_t *it)
{
    if (!it->scan) {
        return it->left ? dv_newest_at(&it->heap, --it->left) : 0;
    }
    for (; it->at; it->at--) {
        if (!it->budget--) {
            it->gave_up = true;
            return 0;
        }
        if (list_candidate(self, it, it->at)) {
            return it->at--;
        }
    }
    return 0;
}

// Write the candidates of it in a wanted state into reply w, newest first,
// at most limit and at most one page (dv_page: a list of 10,000 was ~700
// KB, which no client reads, so the request went unanswered). When the
// list stopped before the last candidate, `next` (1.7) names the one it
// stopped at; a next page asked from there may hold nothing, as the
// candidates left may be in other states. Returns whether an outcome
// listed is not committed yet. A scan that gave up (it->gave_up) wrote
// nothing.
static bool
job_list_write(dv_broker_t *self,
               dv_msgw_t *w,
               list_ids_t *it,
               const bool *want,
               uint64_t limit)
{
    dv_page_t *page = dv_page_new(DV_LIST_PAGE_BYTES);
    bool unstored = false;
    uint64_t next = 0;
    for (uint64_t id; (id = list_next(self, it)) != 0;) {
        if (dv_page_count(page) == limit) {
            next = id;
            break;
        }
        const job_t *j = NULL;
        uint32_t attempts = 0;
        int s = dv_jobs_msg_state(self, id, &j, &attempts);
        if (s < 0 || !want[s]) {
            continue; // s < 0: accepted, not committed yet
        }
        job_list_item(self, dv_page_item(page), id, s, j, attempts);
        if (!dv_page_keep(page)) {
            next = id;
            break;
        }
        unstored = unstored || dv_jobs_msg_outcome_unstored(self, id);
    }
    if (!it->gave_up) {
        dv_page_put(page, w, "jobs");
        if (next) {
            dv_msgw_uint(w, "next", next);
        }
    }
    dv_page_destroy(&page);
    return unstored;
}

// At most this many ids looked at by a scan for a page of limit entries:
// a few times the page, and room for the ids of jobs gone since.
#define LIST_SCAN_BUDGET(limit) (4 * (size_t)(limit) + 4096)

// job_list {state?, queue?, limit?, from?}: jobs by id, newest first, at
// most limit (default 100, at most 10,000) and one page. Finished jobs are
// the kept results.
int
dv_joblist_on_list(dv_broker_t *self,
                   const void *route,
                   size_t route_len,
                   const dv_msg_t *m,
                   uint64_t rid,
                   dv_error_t *err)
{
    char queue[DV_MAX_WIRE_NAME + 1] = "";
    bool want[DV_JOB_STATES_];
    uint64_t limit = 100, from = 0;
    int rc = job_list_filter(m, want, queue, sizeof queue, &limit, &from, err);
    if (rc) {
        return rc;
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_JOBS, rid);
    list_ids_t it = {.queue = queue};
    job_list_sources(self, want, &it.live, &it.dead, &it.finished);
    it.spilled = want[DV_JOB_QUEUED];
    bool unstored = false;
    if (it.live && self->next_job > 1) {
        it.scan = true;
        it.at = from && from < self->next_job ? from : self->next_job - 1;
        it.budget = LIST_SCAN_BUDGET(limit);
        unstored = job_list_write(self, w, &it, want, limit);
    }
    if (!it.scan || it.gave_up) {
        size_t n = 0;
        uint64_t *ids = job_list_ids(self, queue, from, want, &n);
        it = (list_ids_t){.heap = dv_newest_of(ids, n), .left = n};
        unstored = job_list_write(self, w, &it, want, limit);
        free(ids);
    }
    if (unstored) {
        dv_commit_reply_after(self, route, route_len, rid, w);
    } else {
        dv_broker_client_reply(self, route, route_len, w);
    }
    return 0;
}
