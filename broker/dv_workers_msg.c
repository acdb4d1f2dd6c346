// dv_workers_msg — the worker socket: its messages and a worker's end.
//
// Owns: the worker socket's message table (worker_handlers, type ->
// handler; its request type is dv_handlers.h's) and dv_workers_msg_on_message,
// a lookup and a call; the handlers of register, done, progress, checkpoint;
// the checks of a done's payload (infer, evaluate), a train job's result
// (its model stored, its lineage), the models and data sets a worker holds;
// liveness (silent workers, and closed connections after a grace:
// dv_workers_msg_check, dv_workers_msg_gone); a worker lost or evicted.
//
// The model and its references: dv_broker_int.h and dv_broker.c.
#include "dv_workers_msg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <zmq.h>

#include "dv_auth.h"
#include "dv_authorize.h"
#include "dv_batching.h"
#include "dv_broker_int.h"
#include "dv_commit.h"
#include "dv_dead.h"
#include "dv_fetch.h"
#include "dv_handlers.h"
#include "dv_jobs_msg.h"
#include "dv_le.h"
#include "dv_limits.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_models_msg.h"
#include "dv_monitor.h"
#include "dv_msgpack.h"
#include "dv_page.h"
#include "dv_proto.h"
#include "dv_records.h"
#include "dv_registry.h"
#include "dv_results.h"
#include "dv_sched.h"
#include "dv_store.h"
#include "dv_wire.h"
#include "dv_zwatch.h"

// Free what worker w holds and take it out of the table (the last one moves
// into its place).
static void
worker_forget(dv_broker_t *self, worker_t *w)
{
    dv_strs_free(&w->models, w->n_models);
    dv_strs_free(&w->datasets, w->n_datasets);
    dv_strs_free(&w->queues, w->n_queues);
    size_t index = (size_t)(w - self->workers);
    self->workers[index] = self->workers[--self->n_workers];
    dv_broker_workers_index(self);
}

// Forget a worker; requeue or fail what it was running. why NULL: it was
// evicted (dv_workers_msg_evict): its jobs go back to their queues with the
// lost run refunded (dv_sched_worker_evict), as the job did nothing wrong.
void
dv_workers_msg_lost(dv_broker_t *self, worker_t *w, const char *why)
{
    size_t cap = dv_sched_worker_running(self->sched, w->handle);
    dv_sched_lost_t *lost = dv_malloc((cap ? cap : 1) * sizeof *lost);
    size_t n = 0;
    if (why) {
        dv_sched_worker_remove(self->sched, w->handle, lost, &n);
    } else {
        dv_sched_worker_evict(self->sched, w->handle, lost, &n);
    }
    for (size_t i = 0; i < n; i++) {
        job_t *j = dv_broker_job_find(self, lost[i].job);
        if (j && j->cancelled) { // recorded already: not to run again
            if (!lost[i].failed) {
                dv_sched_cancel(self->sched, j->id);
            }
            dv_broker_job_remove(self, j->id);
            continue;
        }
        if (j && !why) {
            j->max_attempts++; // as the scheduler's
        } else if (j) {
            char text[256];
            snprintf(text, sizeof text, "worker %s %s while running it",
                     w->name, why);
            dv_dead_job_failed_run(self, j, DV_EIO, w->name, text, true,
                                   lost[i].failed);
        }
    }

    free(lost);
    worker_forget(self, w);
}

// Take away a worker whose key no longer lets it work (revoked, or its role
// or a queue it serves taken away by a reload). Unlike a lost worker's, its
// jobs did nothing wrong: each goes back to the front of its queue without
// using up an attempt (dv_sched_worker_evict: max_attempts grows by one, in
// memory; attempt numbers stay unique, so the evicted run's late answers
// are recognised and dropped) and without counting toward quarantine. Its
// connection stays open (libzmq closes no single ROUTER peer) but nothing
// is sent to it any more, and what it sends is refused (dv_authorize_worker).
void
dv_workers_msg_evict(dv_broker_t *self, worker_t *w, const char *why)
{
    dv_log(DV_LOG_WARN, "broker",
           "worker %s (key '%s') dropped: %s; its %zu jobs are queued again "
           "(restore the key's roles and queues to let it work)",
           w->name, w->key, why,
           dv_sched_worker_running(self->sched, w->handle));
    dv_workers_msg_lost(self, w, NULL);
}

// The fields of an infer job's result that a whole forward pass shares:
// the version that ran, the pass (batch, a hostile worker's numbers,
// checked: at least rows), the class names (many long ones as frame 2,
// *classes_frame, caller frees). Caller destroys.
dv_msgw_t *
dv_workers_msg_infer_tail(const job_t *j,
                          size_t rows,
                          const msgpack_object *batch,
                          char *const *classes,
                          size_t n_classes,
                          dv_frame_t *classes_frame)
{
    char ref[DV_MAX_WIRE_NAME + 16];
    snprintf(ref, sizeof ref, "%s@%u", j->model, j->model_version);
    dv_msgw_t *x = dv_msgw_new(DV_MSG_RESULT, 0);
    dv_msgw_str(x, "model", ref);
    uint64_t b_rows = 0, b_jobs = 0; // the forward pass it ran in (1.3)
    if (dv_msgpack_uint(dv_msgpack_get(batch, "rows"), &b_rows) &&
        dv_msgpack_uint(dv_msgpack_get(batch, "jobs"), &b_jobs) &&
        b_rows >= rows && b_rows <= UINT32_MAX && b_jobs >= 1 &&
        b_jobs <= UINT32_MAX) {
        dv_msgw_key(x, "batch");
        dv_msgw_v_map(x, 2);
        dv_msgw_v_str(x, "rows");
        dv_msgw_v_uint(x, b_rows);
        dv_msgw_v_str(x, "jobs");
        dv_msgw_v_uint(x, b_jobs);
    }
    if (n_classes) {
        dv_msgw_strs_or_frame(x, "classes", (const char *const *)classes,
                              n_classes, 2, classes_frame);
    }
    return x;
}

// An infer job's result fields: its output (rows x cols in frame 1) and
// tail's (dv_workers_msg_infer_tail). Caller destroys.
dv_msgw_t *
dv_workers_msg_infer_extra_with(size_t rows, size_t cols, dv_msgw_t *tail)
{
    dv_msgw_t *x = dv_msgw_new(DV_MSG_RESULT, 0);
    dv_msgw_tensor(x, "output", 1, rows, cols);
    size_t len = 0, n = 0;
    const uint8_t *body = dv_msgw_body(tail, &len, &n);
    dv_msgw_raw(x, n, body, len);
    return x;
}

// dv_workers_msg_infer_tail and dv_workers_msg_infer_extra_with for one job
// alone.
static dv_msgw_t *
infer_extra(const job_t *j,
            size_t rows,
            size_t cols,
            const msgpack_object *batch,
            char *const *classes,
            size_t n_classes,
            dv_frame_t *classes_frame)
{
    dv_msgw_t *tail = dv_workers_msg_infer_tail(j, rows, batch, classes,
                                                n_classes, classes_frame);
    dv_msgw_t *x = dv_workers_msg_infer_extra_with(rows, cols, tail);
    dv_msgw_destroy(&tail);
    return x;
}

// Check a worker's `done` for an infer job and collect the result fields
// the client gets (output tensor map, classes, the model that ran) in
// *extra. Returns 0 or DV_EFORMAT/DV_ESHAPE/DV_EMSGSIZE with the reason.
static int
check_infer_done(const job_t *j,
                 const dv_msg_t *m,
                 dv_msgw_t **extra,
                 dv_frame_t *classes_frame,
                 dv_error_t *err)
{
    const dv_frame_t *f = NULL;
    size_t rows = 0, cols = 0, n_classes = 0;
    char **classes = NULL;
    int rc = dv_msg_tensor_desc(m, "output", DV_MAX_INFER_ROWS, &f, &rows,
                                &cols, err);
    const msgpack_object *co = dv_msg_get(m, "classes");
    size_t want_frames = co && co->type == MSGPACK_OBJECT_MAP ? 2 : 1;
    if (rc == 0 && (rows != j->rows || dv_msg_n_frames(m) != want_frames ||
                    dv_msg_frame(m, 1) != f)) {
        rc = dv_errorf(err, DV_ESHAPE,
                       "worker returned %zu output rows for %u input rows "
                       "in frame 1 of %zu",
                       rows, j->rows, dv_msg_n_frames(m));
    }
    if (rc == 0) {
        rc = dv_msg_strs(m, "classes", DV_MAX_CLASSES, DV_MAX_NAME_BYTES,
                         &classes, &n_classes, err);
    }
    if (rc == 0 && n_classes && n_classes != cols) {
        rc = dv_errorf(err, DV_ESHAPE,
                       "worker returned %zu classes for %zu output columns",
                       n_classes, cols);
    }
    if (rc == 0) {
        *extra = infer_extra(j, rows, cols, dv_msg_get(m, "batch"), classes,
                             n_classes, classes_frame);
    } else {
        char text[DV_ERROR_TEXT_MAX];
        snprintf(text, sizeof text, "%s", err->text);
        dv_errorf(err, rc, "malformed result from the worker: %s", text);
    }
    dv_strs_free(&classes, n_classes);
    return rc;
}

// An evaluate job's `done`: its metrics map, and for many classes the
// confusion matrix as frame 1 ({frame: 1, dtype: u32, shape: [k, k]}).
// Returns 0 with *extra set (the result's fields), or the reason.
static int
check_evaluate_done(const job_t *j,
                    const dv_msg_t *m,
                    dv_msgw_t **extra,
                    dv_error_t *err)
{
    const msgpack_object *metrics = dv_msg_get(m, "metrics");
    const msgpack_object *conf = dv_msg_get(m, "confusion");
    if (!metrics || metrics->type != MSGPACK_OBJECT_MAP) {
        return dv_errorf(err, DV_EFORMAT,
                         "malformed result from the worker: no metrics map");
    }
    if (conf || dv_msg_n_frames(m)) {
        uint64_t k = 0, frame = 0, r = 0, c = 0;
        const msgpack_object *shape =
            conf ? dv_msgpack_get(conf, "shape") : NULL;
        const msgpack_object *dtype =
            conf ? dv_msgpack_get(conf, "dtype") : NULL;
        const dv_frame_t *f = dv_msg_frame(m, 1);
        if (!conf || conf->type != MSGPACK_OBJECT_MAP ||
            dv_msg_n_frames(m) != 1 ||
            !dv_msgpack_uint(dv_msgpack_get(metrics, "n_classes"), &k) ||
            !dv_msgpack_uint(dv_msgpack_get(conf, "frame"), &frame) ||
            frame != 1 || !dtype || dtype->type != MSGPACK_OBJECT_STR ||
            dtype->via.str.size != 3 ||
            memcmp(dtype->via.str.ptr, "u32", 3) != 0 || !shape ||
            shape->type != MSGPACK_OBJECT_ARRAY || shape->via.array.size != 2 ||
            !dv_msgpack_uint(&shape->via.array.ptr[0], &r) ||
            !dv_msgpack_uint(&shape->via.array.ptr[1], &c) || r != k ||
            c != k || k > DV_MAX_CLASSES || f->len != k * k * 4) {
            return dv_errorf(err, DV_EFORMAT,
                             "malformed result from the worker: the confusion "
                             "matrix must be {frame: 1, dtype: u32, shape: "
                             "[k, k]} with k x k x 4 bytes in frame 1");
        }
    }
    char ref[DV_MAX_WIRE_NAME + 16];
    snprintf(ref, sizeof ref, "%s@%u", j->model, j->model_version);
    dv_msgw_t *x = dv_msgw_new(DV_MSG_RESULT, 0);
    dv_msgw_str(x, "model", ref);
    dv_msgw_obj(x, "metrics", metrics);
    if (conf) {
        dv_msgw_obj(x, "confusion", conf);
    }
    size_t len = 0, fields = 0;
    dv_msgw_body(x, &len, &fields);
    if (len > DV_MAX_RESULT_METRICS_BYTES) {
        dv_msgw_destroy(&x);
        return dv_errorf(err, DV_EMSGSIZE,
                         "malformed result from the worker: its metrics take "
                         "%zu bytes (at most %zu)",
                         len, DV_MAX_RESULT_METRICS_BYTES);
    }
    *extra = x;
    return 0;
}

// The spec fields lineage keeps (dv_jobs_msg_spec_each): copied as they are.
static bool
lineage_field(void *arg,
              const char *key,
              const msgpack_object *value,
              const char *raw,
              size_t raw_len)
{
    static const char *wanted[] = {"train", "target", "task", "dataset",
                                   "eval_dataset"};
    (void)value;
    for (size_t k = 0; k < sizeof wanted / sizeof *wanted; k++) {
        if (strcmp(key, wanted[k]) == 0) {
            dv_msgw_raw(arg, 1, raw, raw_len);
            break;
        }
    }
    return true;
}

// A train job's worker sent the model: register it as the next version of
// the job's model name (validated and written on the pool, like a push);
// the job's result goes out once it is stored
// (dv_workers_msg_train_registered). A trained version's lineage, a msgpack
// map: the job, worker, attempts, times, what the worker reports (data checksum
// and rows, epochs, training time, the epoch it resumed from, scalar metrics on
// the eval set) and the spec's data set references, hyper-parameters (seed
// included), target and task. Caller frees.
static uint8_t *
lineage_build(const job_t *j, const worker_t *w, const dv_msg_t *m, size_t *len)
{
    dv_msgw_t *lw = dv_msgw_new(DV_MSG_RESULT, 0);
    dv_msgw_uint(lw, "job", j->id);
    dv_msgw_str(lw, "worker", w->name);
    dv_msgw_uint(lw, "attempts", j->attempts);
    dv_msgw_uint(lw, "submitted_unix_ms", j->submit_unix);
    dv_msgw_uint(lw, "finished_unix_ms", dv_broker_unix_ms_now());
    static const char *uints[] = {"epochs_run", "train_ms", "data_rows",
                                  "resumed_from"};
    for (size_t i = 0; i < sizeof uints / sizeof *uints; i++) {
        const msgpack_object *o = dv_msg_get(m, uints[i]);
        uint64_t v;
        if (dv_msgpack_uint(o, &v)) {
            dv_msgw_uint(lw, uints[i], v);
        }
    }
    const msgpack_object *sum = dv_msg_get(m, "data_sha256");
    if (sum && sum->type == MSGPACK_OBJECT_BIN &&
        sum->via.bin.size == DV_SHA256_BYTES) {
        dv_msgw_bin(lw, "data_sha256", sum->via.bin.ptr, DV_SHA256_BYTES);
    }
    const msgpack_object *ev = dv_msg_get(m, "eval_metrics");
    if (ev && ev->type == MSGPACK_OBJECT_MAP) { // scalars only
        size_t n = 0;
        for (uint32_t i = 0; i < ev->via.map.size; i++) {
            const msgpack_object_kv *kv = &ev->via.map.ptr[i];
            n += kv->key.type == MSGPACK_OBJECT_STR &&
                 kv->val.type != MSGPACK_OBJECT_ARRAY &&
                 kv->val.type != MSGPACK_OBJECT_MAP;
        }
        dv_msgw_key(lw, "eval_metrics");
        dv_msgw_v_map(lw, n);
        for (uint32_t i = 0; i < ev->via.map.size; i++) {
            const msgpack_object_kv *kv = &ev->via.map.ptr[i];
            if (kv->key.type == MSGPACK_OBJECT_STR &&
                kv->val.type != MSGPACK_OBJECT_ARRAY &&
                kv->val.type != MSGPACK_OBJECT_MAP) {
                dv_msgw_v_obj(lw, &kv->key);
                dv_msgw_v_obj(lw, &kv->val);
            }
        }
    }
    // The spec's fields the model owes its existence to, copied as they are.
    dv_jobs_msg_spec_each(j, lineage_field, lw);
    size_t bl = 0, n = 0;
    const uint8_t *body = dv_msgw_body(lw, &bl, &n);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    msgpack_sbuffer_write(&sb, (const char *)body, bl);
    dv_msgw_destroy(&lw);
    *len = sb.size;
    return (uint8_t *)msgpack_sbuffer_release(&sb);
}

// Whether a train job's spec (its payload: field count u16, spec length
// u32, the spec's key/value pairs; dv_jobs_msg.c train_spec) says
// schema_change: the model it registers may take other inputs or give
// other outputs than its name's latest.
static bool
spec_schema_change(const job_t *j)
{
    if (!j->payload || j->payload_len < 6) {
        return false;
    }
    size_t nf = dv_le_get16(j->payload);
    size_t sl = dv_le_get32(j->payload + 2);
    if (sl > j->payload_len - 6) {
        return false;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    bool yes = false, key = true, hit = false;
    for (size_t i = 0;
         i < 2 * nf && msgpack_unpack_next(&u, (const char *)j->payload + 6, sl,
                                           &off) == MSGPACK_UNPACK_SUCCESS;
         i++, key = !key) {
        const msgpack_object *o = &u.data;
        if (key) {
            hit = o->type == MSGPACK_OBJECT_STR && o->via.str.size == 13 &&
                  memcmp(o->via.str.ptr, "schema_change", 13) == 0;
        } else if (hit) {
            yes = o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
        }
    }
    msgpack_unpacked_destroy(&u);
    return yes;
}

static int
train_done(dv_broker_t *self,
           worker_t *w,
           job_t *j,
           const dv_msg_t *m,
           dv_error_t *err)
{
    const dv_frame_t *file = dv_msg_frame(m, 1);
    dv_error_t why = {0};
    uint32_t version =
        file ? dv_registry_reserve(self->registry, j->model, file->len, &why)
             : 0;
    push_t *p = version ? dv_calloc(1, sizeof *p) : NULL;
    if (p) {
        j->finishing = true;
        self->n_finishing++;
        p->job = j->id;
        snprintf(p->worker, sizeof p->worker, "%s", w->name);
        if (j->who) {
            snprintf(p->owner, sizeof p->owner, "%s", self->whos[j->who].id);
        }
        snprintf(p->name, sizeof p->name, "%s", j->model);
        p->version = version;
        p->schema_change = spec_schema_change(j);
        p->lineage = lineage_build(j, w, m, &p->lineage_len);
        if (dv_models_msg_push_queue(self, p, file, &why) != 0) {
            p = NULL;
        }
    } else if (!file) {
        dv_errorf(&why, DV_EFORMAT,
                  "malformed result from the worker: no model file in frame 1");
    }
    if (!p) {
        dv_dead_record_error(self, j, why.code ? why.code : DV_EIO, w->name,
                             why.text);
        dv_results_fail(self, j, why.code ? why.code : DV_EIO, why.text,
                        w->name);
        dv_broker_job_remove(self, j->id);
    }
    if (w->draining && dv_sched_worker_running(self->sched, w->handle) == 0) {
        dv_workers_msg_lost(self, w, "left after draining");
    }
    (void)err;
    return 0;
}

// The trained model is stored (or could not be): the job's result.
// (lineage_build, above train_done, says how it came to be.)
void
dv_workers_msg_train_registered(dv_broker_t *self, push_t *p)
{
    job_t *j = dv_broker_job_find(self, p->job);
    if (p->rc) {
        dv_registry_release(self->registry, p->name, p->version);
        if (j && !j->cancelled) {
            dv_results_fail(self, j, p->rc, p->err.text, p->worker);
        }
        free(p->image);
    } else {
        const dv_model_info_t *info =
            dv_registry_commit(self->registry, &p->info, p->image);
        dv_log(DV_LOG_INFO, "broker",
               "job %llu trained model %s@%u (%s %s, %llu bytes)",
               (unsigned long long)p->job, info->name, info->version,
               info->task, info->algo, (unsigned long long)info->bytes);
        dv_models_msg_latest_moved(self, info);
        dv_authorize_set_owner(self, self->model_owners, info->name, p->owner);
        if (j && !j->cancelled) {
            char ref[DV_MAX_WIRE_NAME + 16];
            snprintf(ref, sizeof ref, "%s@%u", info->name, info->version);
            dv_msgw_t *x = dv_msgw_new(DV_MSG_RESULT, 0);
            dv_msgw_str(x, "model", ref);
            dv_msgw_bin(x, "sha256", info->sha256, sizeof info->sha256);
            dv_results_outcome_t o = {
                .done = true, .worker = p->worker, .extra = x};
            dv_results_send(self, j, &o);
            dv_msgw_destroy(&x);
        }
    }
    if (j) {
        dv_broker_job_remove(self, j->id);
    }
}

static int
on_done(dv_broker_t *self, worker_t *w, const dv_msg_t *m, dv_error_t *err)
{
    uint64_t id, attempt = 0;
    char state[16];
    int rc;
    if ((rc = dv_msg_uint(m, "job", &id, err)) != 0 ||
        (rc = dv_msg_uint_or(m, "attempt", 0, &attempt, err)) != 0 ||
        (rc = dv_msg_str(m, "state", state, sizeof state, err)) != 0) {
        return rc;
    }
    // A late answer for a job given to someone else, or for an earlier
    // attempt of a job this worker runs again (it was declared dead, came
    // back and got the job anew): drop it.
    job_t *j = dv_broker_job_find(self, id);
    if (!j || (attempt && attempt != j->attempts) ||
        !dv_workers_msg_answers(self, w, j, attempt)) {
        return 0;
    }
    bool done = strcmp(state, "done") == 0;
    int code = DV_EFORMAT;
    char text[DV_ERROR_TEXT_MAX] = "worker reported failure";
    if (!done) {
        dv_error_t ignore;
        dv_msg_error(m, &code, text, sizeof text, &ignore);
    }
    if (!done && !j->cancelled && dv_dead_retryable(code)) {
        // Tried again after its backoff, or dead past its attempts.
        dv_sched_retry(self->sched, id, w->handle);
        dv_dead_job_failed_run(self, j, code, w->name, text, false, false);
        if (w->draining &&
            dv_sched_worker_running(self->sched, w->handle) == 0) {
            dv_workers_msg_lost(self, w, "left after draining");
        }
        return 0;
    }
    dv_sched_finish(self->sched, id, w->handle);
    if (j->cancelled) { // its outcome is already recorded
        dv_broker_job_remove(self, id);
        if (w->draining &&
            dv_sched_worker_running(self->sched, w->handle) == 0) {
            dv_workers_msg_lost(self, w, "left after draining");
        }
        return 0;
    }
    if (done && strcmp(j->kind, "train") == 0) {
        return train_done(self, w, j, m, err);
    }
    dv_msgw_t *extra = NULL;
    dv_error_t bad = {0};
    dv_frame_t classes = {NULL, 0}; // infer: class names too long to inline
    if (done && IS_INFER(j) &&
        check_infer_done(j, m, &extra, &classes, &bad) != 0) {
        done = false; // the worker's answer is unusable: say why
    }
    if (done && strcmp(j->kind, "evaluate") == 0 &&
        check_evaluate_done(j, m, &extra, &bad) != 0) {
        done = false;
    }
    if (done) {
        dv_frame_t frames[DV_MAX_FRAMES];
        size_t n = dv_msg_n_frames(m);
        for (size_t i = 0; i < n; i++) {
            frames[i] = *dv_msg_frame(m, i + 1);
        }
        if (IS_INFER(j)) { // the output, and the names as the broker wrote
            n = classes.data ? 2 : 1;
            frames[1] = classes;
            // a pass of this job alone (a pass of several comes in one
            // done_batch, counted there; a 1.3 worker's riders are not)
            const msgpack_object *b = dv_msg_get(m, "batch");
            uint64_t b_jobs = 0;
            if (!b || (dv_msgpack_uint(dv_msgpack_get(b, "jobs"), &b_jobs) &&
                       b_jobs == 1)) {
                dv_monitor_batch(self->monitor, j->rows);
            }
        }
        dv_results_outcome_t o = {.done = true,
                                  .worker = w->name,
                                  .frames = frames,
                                  .n_frames = n,
                                  .extra = extra};
        dv_results_send(self, j, &o);
    } else if (bad.code) {
        dv_results_fail(self, j, bad.code, bad.text, w->name);
    } else {
        dv_dead_record_error(self, j, code, w->name, text);
        dv_results_fail(self, j, code, text, w->name);
    }

    dv_msgw_destroy(&extra);
    free((void *)classes.data);
    dv_broker_job_remove(self, id);
    if (w->draining && dv_sched_worker_running(self->sched, w->handle) == 0) {
        dv_workers_msg_lost(self, w, "left after draining");
    }
    return 0;
}

// A training job's progress from its worker: kept with the job (job_get)
// and passed to its submitter as `progress` with the submit's rid.
static int
on_progress(dv_broker_t *self, worker_t *w, const dv_msg_t *m, dv_error_t *err)
{
    uint64_t id = 0, attempt = 0, epoch = 0, epochs = 0, ms = 0;
    double loss = 0;
    int rc;
    if ((rc = dv_msg_uint(m, "job", &id, err)) != 0 ||
        (rc = dv_msg_uint(m, "attempt", &attempt, err)) != 0 ||
        (rc = dv_msg_uint(m, "epoch", &epoch, err)) != 0 ||
        (rc = dv_msg_uint(m, "epochs", &epochs, err)) != 0 ||
        (rc = dv_msg_double(m, "loss", &loss, err)) != 0 ||
        (rc = dv_msg_uint_or(m, "ms", 0, &ms, err)) != 0) {
        return rc;
    }
    double eval = NAN;
    if (dv_msg_has(m, "eval") &&
        (rc = dv_msg_double(m, "eval", &eval, err)) != 0) {
        return rc;
    }
    job_t *j = dv_broker_job_find(self, id);
    uint64_t on = 0;
    if (!j || j->cancelled || attempt != j->attempts ||
        dv_sched_job_worker(self->sched, id, &on) != 0 || on != w->handle ||
        epoch > UINT32_MAX || epochs > UINT32_MAX) {
        return 0; // stale: drop it
    }
    j->p_epoch = (uint32_t)epoch;
    j->p_epochs = (uint32_t)epochs;
    j->p_loss = loss;
    j->p_eval = eval;
    j->p_ms = ms;
    if (j->route_len) {
        dv_msgw_t *p = dv_msgw_new(DV_MSG_PROGRESS, j->rid);
        dv_msgw_uint(p, "job", id);
        dv_msgw_uint(p, "epoch", epoch);
        dv_msgw_uint(p, "epochs", epochs);
        dv_msgw_double(p, "loss", loss);
        dv_msgw_uint(p, "ms", ms);
        dv_msgw_uint(p, "eta_ms",
                     epoch ? ms * (epochs > epoch ? epochs - epoch : 0) / epoch
                           : 0);
        if (!isnan(eval)) {
            dv_msgw_double(p, "eval", eval);
        }
        dv_broker_client_reply(self, j->route, j->route_len, p);
    }
    return 0;
}

// checkpoint {job, attempt, epoch} + frame 1: a training job's state after
// epoch, from the worker running it. Kept with the job (and stored with a
// durable one, in the next group commit); a re-run of the job on any worker
// continues from it (`resume` in run). Only the last one is kept.
static int
on_checkpoint(dv_broker_t *self,
              worker_t *w,
              const dv_msg_t *m,
              dv_error_t *err)
{
    uint64_t id, attempt, epoch;
    int rc;
    if ((rc = dv_msg_uint(m, "job", &id, err)) != 0 ||
        (rc = dv_msg_uint(m, "attempt", &attempt, err)) != 0 ||
        (rc = dv_msg_uint(m, "epoch", &epoch, err)) != 0) {
        return rc;
    }
    const dv_frame_t *blob = dv_msg_frame(m, 1);
    if (!blob || blob->len == 0) {
        return dv_errorf(err, DV_EFORMAT, "checkpoint: no state in frame 1");
    }
    job_t *j = dv_broker_job_find(self, id);
    uint64_t on = 0;
    if (!j || j->cancelled || attempt != j->attempts ||
        strcmp(j->kind, "train") != 0 ||
        dv_sched_job_worker(self->sched, id, &on) != 0 || on != w->handle ||
        epoch == 0 || epoch > UINT32_MAX || epoch <= j->ckpt_epoch) {
        return 0; // stale, or not newer than what we hold: drop it
    }
    uint8_t *copy = dv_try_malloc(blob->len, 1);
    if (!copy) {
        return 0; // the previous one stays: a re-run just redoes more
    }
    memcpy(copy, blob->data, blob->len);
    free(j->ckpt);
    j->ckpt = copy;
    j->ckpt_len = blob->len;
    j->ckpt_epoch = (uint32_t)epoch;
    if (self->store && !j->memory_only) {
        // epoch (u32) + the blob, as the worker sent it.
        uint8_t *rec = dv_malloc(4 + blob->len + DV_STORE_SPARE);
        dv_le_put32(rec, (uint32_t)epoch);
        memcpy(rec + 4, blob->data, blob->len);
        dv_store_put_owned(self->store, DV_STORE_CKPTS, id, rec, 4 + blob->len);
        if (self->n_ckpts_due == self->cap_ckpts_due) {
            self->cap_ckpts_due =
                self->cap_ckpts_due ? 2 * self->cap_ckpts_due : 8;
            self->ckpts_due = dv_realloc(
                self->ckpts_due, self->cap_ckpts_due * sizeof(ckpt_due_t));
        }
        self->ckpts_due[self->n_ckpts_due++] = (ckpt_due_t){id, j->ckpt_epoch};
        dv_commit_arm(self);
    }
    return 0;
}

// What the scheduler's affinity sees of worker w: its models, and its
// data sets as "ds:NAME@VERSION" (the key of a train job on one).
void
dv_workers_msg_sched_holdings(dv_broker_t *self, const worker_t *w)
{
    size_t n = w->n_models + w->n_datasets;
    char **keys = dv_malloc((n ? n : 1) * sizeof *keys);
    for (size_t i = 0; i < w->n_models; i++) {
        keys[i] = w->models[i];
    }
    char(*ds)[2 * DV_MAX_WIRE_NAME + 8] =
        dv_malloc((w->n_datasets ? w->n_datasets : 1) * sizeof *ds);
    for (size_t i = 0; i < w->n_datasets; i++) {
        snprintf(ds[i], sizeof ds[i], "ds:%s", w->datasets[i]);
        keys[w->n_models + i] = ds[i];
    }
    dv_sched_worker_models(self->sched, w->handle, (const char *const *)keys,
                           n);
    free(ds);
    free(keys);
}

// Add key to a worker's list (it is fetching it: count it for affinity now
// rather than at its next heartbeat).
void
dv_workers_msg_holds_add(char ***list, size_t *n, const char *key)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*list)[i], key) == 0) {
            return;
        }
    }
    if (*n < 4096) {
        *list = dv_realloc(*list, (*n + 1) * sizeof(char *));
        (*list)[(*n)++] = dv_strdup(key);
    }
}

// The models and data sets a worker holds, from its register or heartbeat.
static int
take_models(dv_broker_t *self, worker_t *w, const dv_msg_t *m, dv_error_t *err)
{
    static const char *fields[2] = {"models", "datasets"};
    char ***lists[2] = {&w->models, &w->datasets};
    size_t *counts[2] = {&w->n_models, &w->n_datasets};
    bool changed = false;
    for (int f = 0; f < 2; f++) {
        if (!dv_msg_has(m, fields[f])) {
            continue;
        }
        char **got = NULL;
        size_t n = 0;
        int rc = dv_msg_strs(m, fields[f], 4096, 2 * DV_MAX_WIRE_NAME, &got, &n,
                             err);
        if (rc) {
            return rc;
        }
        dv_strs_free(lists[f], *counts[f]);
        *lists[f] = got;
        *counts[f] = n;
        changed = true;
    }
    if (changed) {
        dv_workers_msg_sched_holdings(self, w);
    }
    if (changed && self->n_switches) {
        dv_models_msg_switches_check(self);
    }
    return 0;
}

// Wrappers: the worker table's handlers, one signature (request_t).
static int
on_done_req(request_t *r, dv_error_t *err)
{
    return on_done(r->self, r->w, r->m, err);
}

static int
dv_batching_on_done_batch_req(request_t *r, dv_error_t *err)
{
    return dv_batching_on_done_batch(r->self, r->w, r->m, err);
}

// A heartbeat's process figures (1.5; each optional): kept for /metrics,
// as the worker says them (a hostile worker can only lie about itself).
static void
take_figures(worker_t *w, const dv_msg_t *m)
{
    static const char *names[4] = {"cpu_ms", "rss_bytes", "jobs_done",
                                   "jobs_failed"};
    uint64_t *dst[4] = {&w->cpu_ms, &w->rss_bytes, &w->jobs_done,
                        &w->jobs_failed};
    for (int i = 0; i < 4; i++) {
        uint64_t v;
        dv_error_t ignored = {0};
        if (dv_msg_has(m, names[i]) &&
            dv_msg_uint(m, names[i], &v, &ignored) == 0) {
            *dst[i] = v;
        }
    }
}

// A heartbeat's `computing` (1.5, optional): the jobs on its compute
// threads now, for `workers` (the rest of what it holds waits). Capped at
// 1,000,000 so a lying worker cannot print absurd figures.
static void
take_computing(worker_t *w, const dv_msg_t *m)
{
    uint64_t v;
    dv_error_t ignored = {0};
    if (dv_msg_has(m, "computing") &&
        dv_msg_uint(m, "computing", &v, &ignored) == 0) {
        w->computing = v < 1000000 ? (uint32_t)v : 1000000;
        w->computing_known = true;
    }
}

static int
on_heartbeat_req(request_t *r, dv_error_t *err)
{
    take_figures(r->w, r->m);
    take_computing(r->w, r->m);
    return take_models(r->self, r->w, r->m, err);
}

static int
on_progress_req(request_t *r, dv_error_t *err)
{
    return on_progress(r->self, r->w, r->m, err);
}

static int
on_checkpoint_req(request_t *r, dv_error_t *err)
{
    return on_checkpoint(r->self, r->w, r->m, err);
}

static int
dv_fetch_on_model_req(request_t *r, dv_error_t *err)
{
    return dv_fetch_on_model(r->self, r->w, r->m, r->rid, err);
}

static int
dv_fetch_on_dataset_req(request_t *r, dv_error_t *err)
{
    return dv_fetch_on_dataset(r->self, r->w, r->m, r->rid, err);
}

// Draining: no new jobs; it leaves once its jobs are done. The `ok` tells
// it that no job is on its way any more.
static int
on_bye_req(request_t *r, dv_error_t *err)
{
    (void)err;
    dv_broker_t *self = r->self;
    worker_t *w = r->w;
    w->draining = true;
    dv_sched_worker_drain(self->sched, w->handle);
    dv_broker_reply(self->workers_sock, r->route, r->route_len,
                    dv_msgw_new(DV_MSG_OK, r->rid));
    if (dv_sched_worker_running(self->sched, w->handle) == 0) {
        dv_workers_msg_lost(self, w, "left");
    }
    return 0;
}

// release (1.5) {jobs: [[job, attempt], ...]}: a draining worker gives
// back jobs it holds but has not started; each goes to the front of its
// queue for another worker, its attempt refunded. Entries for jobs not
// running on this worker at that attempt are skipped (late, or foreign).
static int
on_release_req(request_t *r, dv_error_t *err)
{
    dv_broker_t *self = r->self;
    const msgpack_object *jobs = dv_msg_get(r->m, "jobs");
    if (!jobs || jobs->type != MSGPACK_OBJECT_ARRAY ||
        jobs->via.array.size > DV_MAX_BATCH_JOBS) {
        return dv_errorf(err, DV_EFORMAT,
                         "release: 'jobs' must be an array of at most %d "
                         "[job, attempt]",
                         DV_MAX_BATCH_JOBS);
    }
    size_t given = 0;
    for (uint32_t i = 0; i < jobs->via.array.size; i++) {
        const msgpack_object *e = &jobs->via.array.ptr[i];
        uint64_t id = 0, attempt = 0;
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2 ||
            !dv_msgpack_uint(&e->via.array.ptr[0], &id) ||
            !dv_msgpack_uint(&e->via.array.ptr[1], &attempt)) {
            continue;
        }
        job_t *j = dv_broker_job_find(self, id);
        if (j && !j->cancelled && j->attempts == attempt &&
            dv_sched_give_back(self->sched, id, r->w->handle) == 0) {
            j->started_unix = 0;
            given++;
        }
    }
    if (given) {
        dv_log(DV_LOG_INFO, "broker",
               "worker %s gave back %zu job(s) it had not started (draining)",
               r->w->name, given);
        dv_batching_dispatch(self);
    }
    if (r->w->draining &&
        dv_sched_worker_running(self->sched, r->w->handle) == 0) {
        dv_workers_msg_lost(self, r->w, "left");
    }
    return 0;
}

// A worker's complaint about one of our messages: nothing to do.
static int
on_error_req(request_t *r, dv_error_t *err)
{
    (void)r;
    (void)err;
    return 0;
}

// The worker socket's table: type -> handler, for a registered worker
// (every row takes the worker role and its queues: dv_authorize_worker checks
// them for each message, whatever its type). `register` is not a row: it
// makes the worker the rows need (dv_workers_msg_on_message). A type without a
// handler is not accepted from workers.
static request_fn *const worker_handlers[DV_MSG_COUNT_] = {
    [DV_MSG_DONE] = on_done_req,
    [DV_MSG_DONE_BATCH] = dv_batching_on_done_batch_req,
    [DV_MSG_HEARTBEAT] = on_heartbeat_req,
    [DV_MSG_PROGRESS] = on_progress_req,
    [DV_MSG_CHECKPOINT] = on_checkpoint_req,
    [DV_MSG_FETCH_MODEL] = dv_fetch_on_model_req,
    [DV_MSG_FETCH_DATASET] = dv_fetch_on_dataset_req,
    [DV_MSG_BYE] = on_bye_req,
    [DV_MSG_RELEASE] = on_release_req,
    [DV_MSG_ERROR] = on_error_req,
};

// The worker table's handler for type, or NULL.
static request_fn *
worker_handler(dv_msg_type_t type)
{
    return (size_t)type < DV_MSG_COUNT_ ? worker_handlers[type] : NULL;
}

// What worker w said of its load (1.5), for `worker_list`: how many map
// entries write_load writes (0..2), and writing them as map values:
// `concurrency` (its compute threads) when its register said it,
// `computing` (jobs on them) when a heartbeat did. An older worker says
// neither: a client shows what it knows (capacity, running).
static size_t
load_fields(const worker_t *w)
{
    return (w->concurrency ? 1 : 0) + (w->computing_known ? 1 : 0);
}

static void
write_load(dv_msgw_t *out, const worker_t *w)
{
    if (w->concurrency) {
        dv_msgw_v_str(out, "concurrency");
        dv_msgw_v_uint(out, w->concurrency);
    }
    if (w->computing_known) {
        dv_msgw_v_str(out, "computing");
        dv_msgw_v_uint(out, w->computing);
    }
}

// How many of names (n) a worker entry lists: those that fit
// DV_WORKER_LIST_NAMES_BYTES packed (a str costs its bytes and at most 3
// more).
static size_t
names_shown(char *const *names, size_t n)
{
    size_t bytes = 0, k = 0;
    for (; k < n; k++) {
        bytes += strlen(names[k]) + 3;
        if (bytes > DV_WORKER_LIST_NAMES_BYTES) {
            break;
        }
    }
    return k;
}

// One worker's entry of a `worker_list` page: its name lists cut to what
// DV_WORKER_LIST_NAMES_BYTES holds, with `models_total`/`datasets_total`
// (1.7) when they are.
static void
worker_item(dv_broker_t *self, dv_msgw_t *w, const worker_t *wk, uint64_t now)
{
    size_t n_models = names_shown(wk->models, wk->n_models);
    size_t n_datasets = names_shown(wk->datasets, wk->n_datasets);
    dv_msgw_v_map(w, 7 + load_fields(wk) + (n_models < wk->n_models) +
                         (n_datasets < wk->n_datasets));
    dv_msgw_v_str(w, "name");
    dv_msgw_v_str(w, wk->name);
    write_load(w, wk);
    dv_msgw_v_str(w, "datasets");
    dv_msgw_v_array(w, n_datasets);
    for (size_t k = 0; k < n_datasets; k++) {
        dv_msgw_v_str(w, wk->datasets[k]);
    }
    if (n_datasets < wk->n_datasets) {
        dv_msgw_v_str(w, "datasets_total");
        dv_msgw_v_uint(w, wk->n_datasets);
    }
    dv_msgw_v_str(w, "capacity");
    dv_msgw_v_uint(w, wk->capacity);
    dv_msgw_v_str(w, "running");
    dv_msgw_v_uint(w, dv_sched_worker_running(self->sched, wk->handle));
    dv_msgw_v_str(w, "models");
    dv_msgw_v_array(w, n_models);
    for (size_t k = 0; k < n_models; k++) {
        dv_msgw_v_str(w, wk->models[k]);
    }
    if (n_models < wk->n_models) {
        dv_msgw_v_str(w, "models_total");
        dv_msgw_v_uint(w, wk->n_models);
    }
    dv_msgw_v_str(w, "idle_ms");
    dv_msgw_v_uint(w, now - wk->last_seen_ms);
    dv_msgw_v_str(w, "state");
    dv_msgw_v_str(w, wk->draining ? "draining" : "ready");
}

static int
cmp_handle(const void *a, const void *b)
{
    const worker_t *x = *(const worker_t *const *)a;
    const worker_t *y = *(const worker_t *const *)b;
    return (x->handle > y->handle) - (x->handle < y->handle);
}

// workers {from?}: the workers in the order they registered (their
// handles, which never repeat), from the handle `from` names (a previous
// page's `next`) on, as many as fit one page; `next` is the first left out.
int
dv_workers_msg_on_list(dv_broker_t *self,
                       const void *route,
                       size_t route_len,
                       const dv_msg_t *m,
                       uint64_t rid,
                       dv_error_t *err)
{
    uint64_t from = 0;
    int rc = dv_msg_uint_or(m, "from", 0, &from, err);
    if (rc) {
        return rc;
    }
    const worker_t **order =
        dv_malloc((self->n_workers ? self->n_workers : 1) * sizeof *order);
    size_t n = 0;
    for (size_t i = 0; i < self->n_workers; i++) {
        if (self->workers[i].handle >= from) {
            order[n++] = &self->workers[i];
        }
    }
    qsort(order, n, sizeof *order, cmp_handle);
    uint64_t now = uv_now(&self->loop);
    dv_page_t *page = dv_page_new(DV_LIST_PAGE_BYTES);
    const worker_t *next = NULL;
    for (size_t i = 0; i < n && !next; i++) {
        worker_item(self, dv_page_item(page), order[i], now);
        if (!dv_page_keep(page)) {
            next = order[i];
        }
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_WORKER_LIST, rid);
    dv_msgw_uint(w, "total", self->n_workers);
    dv_page_put(page, w, "workers");
    if (next) {
        dv_msgw_uint(w, "next", next->handle);
    }
    dv_page_destroy(&page);
    free(order);
    dv_broker_client_reply(self, route, route_len, w);
    return 0;
}

// j runs on an older connection of w's worker process (the same name and
// key, a lower `conn`: the process left it for silence, and the broker
// still counts it): move it to w. need_room as dv_sched_claim's. Never from
// a newer connection to an older: a stall delivers a worker's registers of
// several connections at once, in any order.
static bool
claim_from_old(dv_broker_t *self, worker_t *w, job_t *j, bool need_room)
{
    uint64_t on = 0;
    if (!w->conn || dv_sched_job_worker(self->sched, j->id, &on) != 0 ||
        on == w->handle) {
        return false;
    }
    const worker_t *old = dv_broker_worker_by_handle(self, on);
    return old && old->conn && old->conn < w->conn &&
           strcmp(old->name, w->name) == 0 && strcmp(old->key, w->key) == 0 &&
           dv_sched_claim(self->sched, j->id, w->handle, on, need_room) == 0;
}

bool
dv_workers_msg_answers(dv_broker_t *self,
                       worker_t *w,
                       job_t *j,
                       uint64_t attempt)
{
    uint64_t on = 0;
    if (dv_sched_job_worker(self->sched, j->id, &on) == 0 && on == w->handle) {
        return true;
    }
    // A job a new leader holds for its worker (not one queued again after
    // its worker was declared dead: that attempt is recorded as failed, and
    // its late answer is dropped as before).
    if (attempt == 0 || attempt != j->attempts ||
        !((j->leader_held &&
           dv_sched_claim(self->sched, j->id, w->handle, 0, false) == 0) ||
          claim_from_old(self, w, j, false))) {
        return false;
    }
    j->leader_held = false; // claimed: its hold is over
    return true;
}

// A register (already authorized): add the worker, or refresh the one we
// know (w, or NULL), give it the queues it asked for (takes ownership of
// *asked_p, checked against its key by dv_authorize_worker) and welcome it.
// Returns 0, or DV_E* with err set for a bad register.
// A worker re-registering with a group's new leader names the jobs it
// still runs (`running`: [[job, attempt], ...], 1.6): those the log says
// were running as that attempt (held by recovery) stay on it, so their
// `done` is taken instead of the job running again elsewhere. Anything
// else in the list is ignored (a worker cannot claim a job it was not
// given: the attempt must match and the job must not run anywhere).
static void
claim_running(dv_broker_t *self, worker_t *w, const dv_msg_t *m)
{
    const msgpack_object *list = dv_msg_get(m, "running");
    if (!list || list->type != MSGPACK_OBJECT_ARRAY) {
        return;
    }
    size_t claimed = 0;
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object *e = &list->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2 ||
            e->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            e->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            continue;
        }
        uint64_t id = e->via.array.ptr[0].via.u64;
        uint64_t attempt = e->via.array.ptr[1].via.u64;
        job_t *j = dv_broker_job_find(self, id);
        if (!j || j->cancelled || j->attempts != attempt ||
            !(dv_sched_claim(self->sched, id, w->handle, 0, true) == 0 ||
              claim_from_old(self, w, j, true))) {
            continue;
        }
        j->started_unix = dv_broker_unix_ms_now();
        j->leader_held = false; // claimed: its hold is over
        claimed++;
    }
    if (claimed) {
        dv_log(DV_LOG_INFO, "broker",
               "worker %s keeps %zu running jobs (their lease survives the "
               "leader change)",
               w->name, claimed);
    }
}

static int
on_register(dv_broker_t *self,
            dv_wire_msg_t *in,
            dv_msg_t *m,
            worker_t *w,
            uint64_t rid,
            char ***asked_p,
            size_t *n_asked_p,
            dv_error_t *err)
{
    const void *route = zmq_msg_data(&in->route);
    size_t route_len = zmq_msg_size(&in->route);
    uint64_t capacity;
    char name[DV_MAX_WIRE_NAME + 1];
    int rc = dv_msg_uint(m, "capacity", &capacity, err);
    if (rc == 0) {
        rc = dv_msg_str(m, "worker", name, sizeof name, err);
    }
    if (rc == 0 && (capacity < 1 || capacity > 100000)) {
        rc = dv_errorf(err, DV_EINVAL, "register: capacity must be 1..100000");
    }
    if (rc != 0 || route_len > ROUTE_MAX) {
        return rc;
    }
    if (!w) {
        self->workers =
            dv_realloc(self->workers, (self->n_workers + 1) * sizeof(worker_t));
        w = &self->workers[self->n_workers++];
        memset(w, 0, sizeof *w);
        memcpy(w->route, route, route_len);
        w->route_len = route_len;
        w->handle = self->next_handle++;
        dv_broker_workers_index(self);
    }
    snprintf(w->name, sizeof w->name, "%s", name);
    w->last_seen_ms = uv_now(&self->loop);
    w->capacity = (uint32_t)capacity;
    w->minor = dv_msg_minor(m);
    // Its compute threads (1.5; optional, 0: not said): capacity
    // counts its prefetch too, so `workers` shows both.
    uint64_t concurrency = 0;
    dv_error_t ignored = {0};
    if (dv_msg_uint_or(m, "concurrency", 0, &concurrency, &ignored) != 0 ||
        concurrency > capacity) {
        concurrency = 0; // a bad figure: shown as not said
    }
    w->concurrency = (uint32_t)concurrency;
    uint64_t conn = 0;
    if (dv_msg_uint_or(m, "conn", 0, &conn, &ignored) != 0) {
        conn = 0; // a bad figure: as if not said (claims nothing from old)
    }
    w->conn = conn;
    w->computing_known = false;
    w->computing = 0;
    w->draining = false;
    dv_sched_worker_add(self->sched, w->handle, (uint32_t)capacity);
    take_models(self, w, m, err); // a bad list: no affinity, no harm
    uint64_t train_slots = 0;
    if (dv_msg_uint_or(m, "train_slots", 0, &train_slots, err) == 0) {
        dv_sched_worker_heavy_cap(self->sched, w->handle,
                                  train_slots > capacity
                                      ? (uint32_t)capacity
                                      : (uint32_t)train_slots);
    }
    dv_strs_free(&w->queues, w->n_queues);
    w->queues = *asked_p; // checked against its key: dv_authorize_worker
    w->n_queues = *n_asked_p;
    *asked_p = NULL;
    *n_asked_p = 0;
    const char *kid = "";
    dv_auth_message_key(self->auth, &in->header, &kid);
    snprintf(w->key, sizeof w->key, "%s", kid);
    dv_authorize_worker_serve(self, w);
    claim_running(self, w, m);
    dv_broker_send_simple(self, self->workers_sock, in, DV_MSG_WELCOME, rid);
    return 0;
}

void
dv_workers_msg_on_message(dv_broker_t *self, dv_wire_msg_t *in)
{
    const void *route = zmq_msg_data(&in->route);
    size_t route_len = zmq_msg_size(&in->route);
    dv_error_t err = {0};
    uint64_t rid = 0;
    dv_msg_t *m = NULL;
    int rc = in->no_header ? dv_errorf(&err, DV_EFORMAT, "empty message")
             : in->too_many
                 ? dv_errorf(&err, DV_EMSGSIZE, "too many payload frames")
                 : dv_msg_decode(&m, zmq_msg_data(&in->header),
                                 zmq_msg_size(&in->header), in->frames,
                                 in->n_payload, &rid, &err);
    rc = rc || !m ? rc : dv_msg_check_peer_depth(m, &err);
    int limit = dv_auth_seen(self->auth, "workers", &in->route, &in->header,
                             NULL, &err);
    if (limit) { // a connection past the limits is served nothing
        dv_wire_send_error(self->workers_sock, route, route_len, rid, 0, limit,
                           err.text);
        dv_msg_destroy(&m);
        return;
    }
    if (rc == 0 && dv_broker_not_leader(self, self->workers_sock, route,
                                        route_len, rid, dv_msg_type(m))) {
        dv_msg_destroy(&m);
        return;
    }
    worker_t *w = dv_broker_worker_by_route(self, route, route_len);
    if (w) {
        w->last_seen_ms = uv_now(&self->loop);
    }
    char **asked = NULL; // a register's queues
    size_t n_asked = 0;
    if (rc == 0 && dv_msg_type(m) == DV_MSG_REGISTER) {
        rc = dv_msg_strs(m, "queues", 256, DV_MAX_WIRE_NAME, &asked, &n_asked,
                         &err);
    }
    if (rc == 0) { // its key now, not at the handshake
        rc = dv_authorize_worker(self, in, m, &w, asked, n_asked, &err);
    }
    if (rc == 0 && dv_msg_type(m) == DV_MSG_REGISTER) {
        rc = on_register(self, in, m, w, rid, &asked, &n_asked, &err);
    } else if (rc == 0 && !w) {
        // Work from a worker we do not know (we restarted, or it was
        // declared dead): it must register again.
        rc = dv_errorf(&err, DV_EINVAL, "unknown worker: register first");
    } else if (rc == 0 && worker_handler(dv_msg_type(m))) {
        request_t r = {self, in, m, route, route_len, rid, "", w};
        rc = worker_handler(dv_msg_type(m))(&r, &err);
    } else if (rc == 0) {
        rc = dv_errorf(&err, DV_EFORMAT,
                       "message type '%s' is not accepted from workers",
                       dv_msg_name(dv_msg_type(m)));
    }
    if (rc) {
        dv_wire_send_error(self->workers_sock, route, route_len, rid, 0, rc,
                           err.text);
    }
    dv_strs_free(&asked, n_asked);
    dv_msg_destroy(&m);
}

// ----------------------------------------------------------- liveness

static bool
socket_has_input(void *sock)
{
    int events = 0;
    size_t len = sizeof events;
    dv_zwatch_used(sock); // the query may take ZMQ_FD's signal
    return zmq_getsockopt(sock, ZMQ_EVENTS, &events, &len) == 0 &&
           (events & ZMQ_POLLIN);
}

static void on_gone_timer(uv_timer_t *t);

void
dv_workers_msg_check(dv_broker_t *self, bool beat)
{
    uv_update_time(&self->loop); // their last_seen is when we read them
    for (int i = 0; i < 100000 && socket_has_input(self->workers_sock); i++) {
        dv_wire_msg_t in;
        if (dv_wire_recv(self->workers_sock, true, &in) != 1) {
            break;
        }
        dv_workers_msg_on_message(self, &in);
        dv_wire_msg_close(&in);
    }
    uv_update_time(&self->loop);
    uint64_t now = uv_now(&self->loop);
    uint64_t limit = (uint64_t)self->heartbeat_ms * self->liveness;
    uint64_t next_gone = UINT64_MAX; // the earliest grace still running
    for (size_t i = 0; i < self->n_workers;) {
        worker_t *w = &self->workers[i];
        if (now - w->last_seen_ms > limit) {
            dv_workers_msg_lost(self, w,
                                "went silent"); // moves the last into i
            continue;
        }
        if (w->gone_ms && now - w->gone_ms >= DV_WORKER_GONE_GRACE_MS) {
            dv_workers_msg_lost(self, w, "dropped its connection");
            continue;
        }
        if (w->gone_ms) {
            uint64_t at = w->gone_ms + DV_WORKER_GONE_GRACE_MS;
            next_gone = at < next_gone ? at : next_gone;
        }
        if (beat) {
            dv_msgw_t *m = dv_msgw_new(DV_MSG_HEARTBEAT, 0);
            size_t len = 0;
            const uint8_t *h = dv_msgw_bytes(m, &len);
            dv_wire_send(self->workers_sock, w->route, w->route_len, h, len,
                         NULL, 0);
            dv_msgw_destroy(&m);
        }
        i++;
    }
    if (next_gone != UINT64_MAX) {
        uv_timer_start(&self->gone_timer, on_gone_timer, next_gone - now, 0);
    }
    dv_batching_dispatch(self);
}

static void
on_gone_timer(uv_timer_t *t)
{
    dv_workers_msg_check(t->data, false);
}

void
dv_workers_msg_gone(dv_broker_t *self, uint64_t route_hash)
{
    for (size_t i = 0; i < self->n_workers; i++) {
        worker_t *w = &self->workers[i];
        if (!w->gone_ms &&
            dv_auth_route_hash(w->route, w->route_len) == route_hash) {
            w->gone_ms = uv_now(&self->loop) | 1; // never 0
            dv_log(DV_LOG_DEBUG, "broker", "worker %s: its connection closed",
                   w->name);
            if (!uv_is_active((uv_handle_t *)&self->gone_timer)) {
                uv_timer_start(&self->gone_timer, on_gone_timer,
                               DV_WORKER_GONE_GRACE_MS, 0);
            }
        }
    }
}
