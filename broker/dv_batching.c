// dv_batching — jobs on their way to workers, alone or in batches.
//
// Owns: dispatch (dv_sched_next drained into `run` messages), the riders that
// an infer job takes along (dv_sched_ride, up to max_batch_rows) and their
// `run_batch` to 1.4 workers; the batch messages both ways: a client's
// submit_many and a worker's done_batch.
//
// The model and its references: dv_broker_int.h and dv_broker.c.
#include "dv_batching.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <zmq.h>

#include "dv_broker_int.h"
#include "dv_dead.h"
#include "dv_jobs_msg.h"
#include "dv_le.h"
#include "dv_limits.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_monitor.h"
#include "dv_msgpack.h"
#include "dv_proto.h"
#include "dv_records.h"
#include "dv_registry.h"
#include "dv_results.h"
#include "dv_sched.h"
#include "dv_spill.h"
#include "dv_store.h"
#include "dv_timers.h"
#include "dv_wire.h"
#include "dv_workers_msg.h"

// j is on its way to worker w as attempt: the attempt is stored, its run
// timeout armed, its wait counted (and logged at debug).
static void
run_starts(dv_broker_t *self, job_t *j, const worker_t *w, uint32_t attempt)
{
    j->attempts = attempt;
    uint64_t now = dv_broker_unix_ms_now();
    if (attempt == 1 && j->submit_unix && now >= j->submit_unix) {
        dv_monitor_started(self->monitor, j->kind,
                           (double)(now - j->submit_unix) / 1000);
    }
    dv_log(DV_LOG_DEBUG, "jobs",
           "job %llu dispatched: attempt %u on worker %s after %llu ms "
           "waiting",
           (unsigned long long)j->id, attempt, w->name,
           (unsigned long long)(j->submit_unix && now >= j->submit_unix
                                    ? now - j->submit_unix
                                    : 0));
    j->started_unix = now;
    dv_dead_store_attempts(self, j);
    if (j->timeout_ms) {
        dv_timers_add(self, uv_now(&self->loop) + j->timeout_ms, j->id,
                      T_TIMEOUT, attempt);
    }
}

// The `model` map of a run of j (infer: with the model's batch settings,
// then the job's priority, which batches are never mixed across).
static void
put_run_model(dv_broker_t *self, dv_msgw_t *m, const job_t *j)
{
    dv_model_config_t cfg = dv_registry_config(self->registry, j->model);
    // The file's size (1.9), so the worker fetches it within its
    // --model-memory; absent when the version is gone (the fetch fails).
    const dv_model_info_t *info =
        dv_registry_get(self->registry, j->model, j->model_version);
    dv_msgw_key(m, "model");
    dv_msgw_v_map(m, (IS_INFER(j) ? 5 : 3) + (info != NULL));
    dv_msgw_v_str(m, "name");
    dv_msgw_v_str(m, j->model);
    dv_msgw_v_str(m, "version");
    dv_msgw_v_uint(m, j->model_version);
    dv_msgw_v_str(m, "sha256");
    dv_msgw_v_bin(m, j->model_sha, sizeof j->model_sha);
    if (info) {
        dv_msgw_v_str(m, "bytes");
        dv_msgw_v_uint(m, info->bytes);
    }
    if (IS_INFER(j)) { // its batching, and what it is not mixed with
        dv_msgw_v_str(m, "max_batch_rows");
        dv_msgw_v_uint(m, cfg.max_batch_rows);
        dv_msgw_v_str(m, "max_delay_us");
        dv_msgw_v_uint(m, cfg.max_delay_us);
        dv_msgw_key(m, "priority");
        dv_msgw_v_int(m, j->priority);
    }
}

// Send j's `run` (attempt) to w.
static void
send_run(dv_broker_t *self, job_t *j, worker_t *w, uint32_t attempt)
{
    run_starts(self, j, w, attempt);
    dv_msgw_t *m = dv_msgw_new(DV_MSG_RUN, 0);
    dv_msgw_uint(m, "job", j->id);
    dv_msgw_uint(m, "attempt", attempt);
    dv_msgw_str(m, "kind", j->kind);
    if (strcmp(j->kind, "sleep") == 0) {
        dv_msgw_uint(m, "ms", j->sleep_ms);
    }

    if (USES_MODEL(j)) {
        put_run_model(self, m, j);
        if (IS_INFER(j)) {
            dv_msgw_tensor(m, "input", 1, j->rows, j->cols);
        }
    }
    dv_frame_t f = {j->payload, j->payload_len};
    if (j->spec) {
        // Payload: field count (u16), spec length (u32), the spec's
        // fields (train_spec), then the CSV (none on a stored data set).
        size_t nf = dv_le_get16(j->payload);
        size_t sl = dv_le_get32(j->payload + 2);
        if (!USES_MODEL(j)) {
            dv_msgw_str(m, "model", j->model);
        }
        dv_msgw_raw(m, nf, j->payload + 6, sl);
        f = (dv_frame_t){j->payload + 6 + sl, j->payload_len - 6 - sl};
    }
    dv_frame_t frames[2] = {f, {j->ckpt, j->ckpt_len}};
    if (j->ckpt) { // a re-run continues from the last checkpoint
        dv_msgw_key(m, "resume");
        dv_msgw_v_map(m, 1);
        dv_msgw_v_str(m, "epoch");
        dv_msgw_v_uint(m, j->ckpt_epoch);
    }
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(m, &len);
    zmq_msg_t z;
    if (j->zpayload && !j->spec && !j->ckpt && zmq_msg_init(&z) == 0 &&
        zmq_msg_copy(&z, j->zpayload) == 0) { // the submit's frame, shared
        dv_wire_send_msgs(self->workers_sock, w->route, w->route_len, h, len,
                          &z, 1);
    } else {
        dv_wire_send(self->workers_sock, w->route, w->route_len, h, len, frames,
                     j->ckpt ? 2 : 1);
    }
    dv_msgw_destroy(&m);
}

// An infer job and its riders on their way to one worker: to a 1.4 worker
// as `run_batch` messages (DV_MAX_BATCH_JOBS jobs, one frame's bytes at
// most each), to an older one as one `run` each.
typedef struct {
    job_t *jobs[DV_MAX_BATCH_JOBS]; //
    uint32_t attempts[DV_MAX_BATCH_JOBS];
    size_t n;     // held
    size_t bytes; // their inputs
} run_batch_t;

// Send what b holds: one job alone as `run`; several as one `run_batch`
// whose frame 1 is their inputs, one after another.
static void
run_batch_flush(dv_broker_t *self, run_batch_t *b, worker_t *w)
{
    if (b->n == 1) {
        send_run(self, b->jobs[0], w, b->attempts[0]);
    }
    if (b->n <= 1) {
        b->n = b->bytes = 0;
        return;
    }
    const job_t *lead = b->jobs[0];
    uint8_t *input = dv_wire_buf_get(b->bytes); // adopted below
    size_t at = 0, rows = 0;
    dv_msgw_t *m = dv_msgw_new(DV_MSG_RUN_BATCH, 0);
    dv_msgw_str(m, "kind", "infer");
    put_run_model(self, m, lead);
    dv_msgw_key(m, "jobs"); // [job, attempt, rows], in input order
    dv_msgw_v_array(m, b->n);
    for (size_t i = 0; i < b->n; i++) {
        job_t *j = b->jobs[i];
        run_starts(self, j, w, b->attempts[i]);
        dv_msgw_v_array(m, 3);
        dv_msgw_v_uint(m, j->id);
        dv_msgw_v_uint(m, b->attempts[i]);
        dv_msgw_v_uint(m, j->rows);
        memcpy(input + at, j->payload, j->payload_len);
        at += j->payload_len;
        rows += j->rows;
    }
    dv_msgw_tensor(m, "input", 1, rows, lead->cols);
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(m, &len);
    zmq_msg_t f; // handed to ZeroMQ: not copied again
    if (dv_wire_msg_adopt(&f, input, at) == 0) {
        dv_wire_send_msgs(self->workers_sock, w->route, w->route_len, h, len,
                          &f, 1);
    }
    dv_msgw_destroy(&m);
    b->n = b->bytes = 0;
}

// Add j (attempt) to b, sending b first when j would not fit it.
static void
run_batch_add(
    dv_broker_t *self, run_batch_t *b, worker_t *w, job_t *j, uint32_t attempt)
{
    if (w->minor < 4) { // a 1.3 worker: each in its own run
        send_run(self, j, w, attempt);
        return;
    }
    if (b->n == DV_MAX_BATCH_JOBS ||
        (b->n && b->bytes + j->payload_len > DV_MAX_FRAME_BYTES)) {
        run_batch_flush(self, b, w);
    }
    b->jobs[b->n] = j;
    b->attempts[b->n++] = attempt;
    b->bytes += j->payload_len;
}

// Batch riders (dv_sched_ride): infer jobs for the lead's model version
// while their rows fit its max_batch_rows.
typedef struct {
    dv_broker_t *self;
    uint64_t rows, max_rows, now_unix;
} ride_t;

static bool
ride_fits(uint64_t id, void *arg)
{
    ride_t *r = arg;
    const job_t *j = dv_broker_job_find(r->self, id);
    if (!j || !IS_INFER(j) || j->cancelled || r->rows + j->rows > r->max_rows ||
        (j->deadline_unix && r->now_unix > j->deadline_unix)) {
        return false; // an expired one ends by its timer, not on a worker
    }
    r->rows += j->rows;
    return true;
}

// Send every job that can run now. An infer job takes the infer jobs
// waiting behind it for the same model version along (up to the model's
// max_batch_rows): they ride on its slot, and the worker runs them as one
// forward pass (docs/ARCHITECTURE.md, Dynamic batching).
void
dv_batching_dispatch(dv_broker_t *self)
{
    uint64_t id, handle;
    uint32_t attempt;
    dv_sched_tick(self->sched, uv_now(&self->loop));
    dv_spill_refill(self);
    uint64_t now_unix = 0;
    while (dv_sched_next(self->sched, &id, &handle, &attempt)) {
        job_t *j = dv_broker_job_find(self, id);
        worker_t *w = dv_broker_worker_by_handle(self, handle);
        dv_assert(j && w);
        if (j->deadline_unix) {
            now_unix = now_unix ? now_unix : dv_broker_unix_ms_now();
            if (now_unix > j->deadline_unix) { // its timer has not fired yet
                dv_sched_finish(self->sched, id, handle);
                dv_timers_job_expire(self, j);
                continue;
            }
        }
        if (!IS_INFER(j)) {
            send_run(self, j, w, attempt);
            continue;
        }
        dv_model_config_t cfg = dv_registry_config(self->registry, j->model);
        now_unix = now_unix ? now_unix : dv_broker_unix_ms_now();
        ride_t ride = {self, j->rows, cfg.max_batch_rows, now_unix};
        run_batch_t b = {.n = 0};
        run_batch_add(self, &b, w, j, attempt);
        uint64_t ids[64];
        uint32_t attempts[64];
        size_t n;
        while (ride.rows < ride.max_rows &&
               (n = dv_sched_ride(self->sched, id, ride_fits, &ride, ids,
                                  attempts, 64)) > 0) {
            for (size_t i = 0; i < n; i++) {
                run_batch_add(self, &b, w, dv_broker_job_find(self, ids[i]),
                              attempts[i]);
            }
            if (n < 64) {
                break;
            }
        }
        run_batch_flush(self, &b, w);
    }
}

// submit_many (1.4): `requests`, each a `submit`'s fields with its own
// `rid` and `bytes` (its payload's length; the payloads lie one after
// another in frame 1). Each is served as the submit it would be alone —
// authorized, accepted or refused, its result sent — under its own rid.
// When the payloads do not add up to frame 1, each request is refused
// under its rid; a message whose requests cannot all be told apart (no
// array, a request without a rid) is refused as a whole.
int
dv_batching_on_submit_many(dv_broker_t *self,
                           dv_wire_msg_t *in,
                           const dv_msg_t *m,
                           dv_error_t *err)
{
    const msgpack_object *list = dv_msg_get(m, "requests");
    if (!list || list->type != MSGPACK_OBJECT_ARRAY ||
        list->via.array.size == 0 ||
        list->via.array.size > DV_MAX_SUBMIT_MANY) {
        return dv_errorf(err, DV_EFORMAT,
                         "submit_many: 'requests' must be an array of 1..%d "
                         "submits",
                         DV_MAX_SUBMIT_MANY);
    }
    const dv_frame_t *all = dv_msg_frame(m, 1);
    size_t n = list->via.array.size, total = 0;
    dv_msg_t **views = dv_calloc(n, sizeof *views);
    dv_frame_t *slices = dv_calloc(n, sizeof *slices);
    size_t bad = 0;
    int rc = dv_msg_views(views, m, list->via.array.ptr, n, DV_MSG_SUBMIT,
                          slices, &bad, err);
    if (rc) {
        char text[DV_ERROR_TEXT_MAX];
        snprintf(text, sizeof text, "%s", err->text);
        dv_errorf(err, rc, "submit_many: requests[%zu]: %s", bad, text);
    }
    bool sizes_ok = true;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const msgpack_object *r = &list->via.array.ptr[i];
        uint64_t bytes = 0;
        if (!dv_msgpack_uint(dv_msgpack_get(r, "bytes"), &bytes) ||
            bytes > DV_MAX_FRAME_BYTES) {
            sizes_ok = false;
        } else {
            slices[i].len = bytes;
            total += bytes;
        }
    }
    sizes_ok =
        sizes_ok && dv_msg_n_frames(m) <= 1 && total == (all ? all->len : 0);
    // The requests accepted now are acknowledged in one accepted_many.
    bool gather = rc == 0 && dv_jobs_msg_accepts_begin(self);
    self->in_submit_many = true;
    for (size_t i = 0, at = 0; rc == 0 && i < n; i++) {
        if (!sizes_ok) {
            char text[DV_ERROR_TEXT_MAX];
            snprintf(text, sizeof text,
                     "submit_many: each request needs 'bytes', the length of "
                     "its payload; together they must be frame 1's %zu bytes "
                     "(no other frame)",
                     all ? all->len : 0);
            dv_broker_client_error(self, zmq_msg_data(&in->route),
                                   zmq_msg_size(&in->route),
                                   dv_msg_rid(views[i]), 0, DV_EFORMAT, text);
            continue;
        }
        slices[i].data = all ? all->data + at : NULL;
        at += slices[i].len;
        dv_broker_serve_request(self, in, views[i]);
    }
    self->in_submit_many = false;
    if (gather) {
        dv_jobs_msg_accepts_flush(self);
    }
    dv_msg_views_free(views, n);
    free(views);
    free(slices);
    return rc;
}

// One forward pass's outputs, as a done_batch carries them, and the
// result fields its jobs share.
typedef struct {
    const msgpack_object *list;  // `jobs`: [[job, attempt, rows], ...]
    size_t n;                    // their count
    size_t sum;                  // their rows, added up
    const dv_frame_t *f;         // the outputs (frame 1), row-major float
    size_t rows, cols;           // its shape
    char **classes;              // `classes` (owned), n_classes of them
    size_t n_classes;            //
    int rc;                      // 0, or why the outputs are malformed
    dv_error_t bad;              // that reason
    const msgpack_object *batch; // the pass's `batch` fields (or NULL)
    // The fields every job of the pass shares, built once per version (a
    // hostile worker may mix versions: each job names its own).
    dv_msgw_t *tail;                       // owned
    char tail_model[DV_MAX_WIRE_NAME + 1]; // whose they are
    uint32_t tail_version;                 //
    dv_frame_t tail_classes;               // owned data
} pass_t;

// `jobs`: 1..DV_MAX_BATCH_JOBS [job, attempt, rows] (p->list, n, sum).
static int
pass_jobs(const dv_msg_t *m, pass_t *p, dv_error_t *err)
{
    const msgpack_object *list = dv_msg_get(m, "jobs");
    if (!list || list->type != MSGPACK_OBJECT_ARRAY ||
        list->via.array.size == 0 || list->via.array.size > DV_MAX_BATCH_JOBS) {
        return dv_errorf(err, DV_EFORMAT,
                         "done_batch: 'jobs' must be 1..%d [job, attempt, "
                         "rows]",
                         DV_MAX_BATCH_JOBS);
    }
    p->list = list;
    p->n = list->via.array.size;
    for (size_t i = 0; i < p->n; i++) {
        const msgpack_object *e = &list->via.array.ptr[i];
        uint64_t v[3];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 3 ||
            !dv_msgpack_uint(&e->via.array.ptr[0], &v[0]) ||
            !dv_msgpack_uint(&e->via.array.ptr[1], &v[1]) ||
            !dv_msgpack_uint(&e->via.array.ptr[2], &v[2]) ||
            v[2] > DV_MAX_INFER_ROWS) {
            return dv_errorf(err, DV_EFORMAT,
                             "done_batch: jobs[%zu] must be [job, attempt, "
                             "rows]",
                             i);
        }
        p->sum += v[2];
    }
    return 0;
}

// The outputs and classes, checked against the jobs' rows: a mismatch is
// not refused but kept in p->rc / p->bad, as the jobs' failure.
static void
pass_outputs(const dv_msg_t *m, pass_t *p)
{
    int rc = dv_msg_tensor_desc(m, "output", DV_MAX_INFER_ROWS, &p->f, &p->rows,
                                &p->cols, &p->bad);
    const msgpack_object *co = dv_msg_get(m, "classes");
    size_t want_frames = co && co->type == MSGPACK_OBJECT_MAP ? 2 : 1;
    if (rc == 0 && (p->rows != p->sum || dv_msg_n_frames(m) != want_frames ||
                    dv_msg_frame(m, 1) != p->f)) {
        rc = dv_errorf(&p->bad, DV_ESHAPE,
                       "%zu output rows for jobs of %zu rows, in frame 1 of "
                       "%zu",
                       p->rows, p->sum, dv_msg_n_frames(m));
    }
    if (rc == 0) {
        rc = dv_msg_strs(m, "classes", DV_MAX_CLASSES, DV_MAX_NAME_BYTES,
                         &p->classes, &p->n_classes, &p->bad);
    }
    if (rc == 0 && p->n_classes && p->n_classes != p->cols) {
        rc = dv_errorf(&p->bad, DV_ESHAPE, "%zu classes for %zu output columns",
                       p->n_classes, p->cols);
    }
    p->rc = rc;
    p->batch = dv_msg_get(m, "batch");
}

// Job j's result from the pass: its r output rows from row off, or its
// failure (malformed result).
static void
pass_result(dv_broker_t *self,
            const worker_t *w,
            pass_t *p,
            job_t *j,
            uint64_t r,
            size_t off)
{
    if (p->rc == 0 && r != j->rows) {
        char text[DV_ERROR_TEXT_MAX];
        snprintf(text, sizeof text,
                 "malformed result from the worker: %llu output rows "
                 "for %u input rows",
                 (unsigned long long)r, j->rows);
        dv_results_fail(self, j, DV_ESHAPE, text, w->name);
        return;
    }
    if (p->rc) {
        char text[DV_ERROR_TEXT_MAX + 40];
        snprintf(text, sizeof text, "malformed result from the worker: %s",
                 p->bad.text);
        dv_results_fail(self, j, p->rc, text, w->name);
        return;
    }
    if (!p->tail || p->tail_version != j->model_version ||
        strcmp(p->tail_model, j->model) != 0) {
        dv_msgw_destroy(&p->tail);
        free((void *)p->tail_classes.data);
        p->tail_classes = (dv_frame_t){NULL, 0};
        p->tail = dv_workers_msg_infer_tail(j, p->sum, p->batch, p->classes,
                                            p->n_classes, &p->tail_classes);
        snprintf(p->tail_model, sizeof p->tail_model, "%s", j->model);
        p->tail_version = j->model_version;
    }
    size_t cols = p->cols;
    dv_frame_t frames[2] = {{p->f->data + off * cols * 4, r * cols * 4},
                            p->tail_classes};
    dv_msgw_t *x = dv_workers_msg_infer_extra_with(r, cols, p->tail);
    dv_results_outcome_t o = {.done = true,
                              .worker = w->name,
                              .frames = frames,
                              .n_frames = p->tail_classes.data ? 2 : 1,
                              .extra = x};
    dv_results_send(self, j, &o);
    dv_msgw_destroy(&x);
}

// done_batch (1.4): the infer jobs of one forward pass that succeeded,
// `jobs` [[job, attempt, rows], ...] in the order of their outputs' rows in
// frame 1. Each is checked as its own `done` would be (a stale or foreign
// one is dropped, its rows skipped); a job whose rows disagree with its
// input, or a message whose rows do not add up, fails the jobs it names
// that run here (malformed result).
int
dv_batching_on_done_batch(dv_broker_t *self,
                          worker_t *w,
                          const dv_msg_t *m,
                          dv_error_t *err)
{
    pass_t p = {0};
    int rc = pass_jobs(m, &p, err);
    if (rc) {
        return rc;
    }
    pass_outputs(m, &p);
    uint64_t pass_rows = 0;
    if (p.rc == 0) { // the pass's rows as the worker says (at least theirs)
        dv_monitor_batch(
            self->monitor,
            dv_msgpack_uint(dv_msgpack_get(p.batch, "rows"), &pass_rows) &&
                    pass_rows >= p.sum && pass_rows <= UINT32_MAX
                ? (uint32_t)pass_rows
                : (uint32_t)p.sum);
    }
    // The results of the pass go to each client in one `results` (1.4).
    bool gather = !self->coalesce;
    if (gather) {
        dv_results_batch_begin(self);
    }
    for (int round = 0; round < 2; round++) { // dv_broker_job_prefetch
        for (size_t i = 0; i < p.n; i++) {
            dv_broker_job_prefetch(
                self, p.list->via.array.ptr[i].via.array.ptr[0].via.u64, round);
        }
    }
    for (size_t i = 0, at = 0; i < p.n; i++) {
        const msgpack_object *e = p.list->via.array.ptr[i].via.array.ptr;
        uint64_t id = e[0].via.u64, attempt = e[1].via.u64, r = e[2].via.u64;
        size_t off = at;
        at += r;
        job_t *j = dv_broker_job_find(self, id);
        if (!j || !IS_INFER(j) || attempt != j->attempts ||
            !dv_workers_msg_answers(self, w, j, attempt)) {
            continue; // late, or not this worker's: as for `done`
        }
        dv_sched_finish(self->sched, id, w->handle);
        if (!j->cancelled) { // else its outcome is already recorded
            pass_result(self, w, &p, j, r, off);
        }
        dv_broker_job_remove(self, id);
    }
    if (gather) {
        dv_results_batch_flush(self);
    }
    dv_msgw_destroy(&p.tail);
    free((void *)p.tail_classes.data);
    dv_strs_free(&p.classes, p.n_classes);
    if (w->draining && dv_sched_worker_running(self->sched, w->handle) == 0) {
        dv_workers_msg_lost(self, w, "left after draining");
    }
    return 0;
}
