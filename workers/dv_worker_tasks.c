// dv_worker_tasks — a task's life (made, answered, ended) and the job
// kinds besides infer: sleep, evaluate, train (progress and checkpoints
// sent from the loop thread). See dv_worker_int.h.
#include "dv_worker_int.h"

// A `done` header for attempt of job in state ("done" or "failed").
dv_msgw_t *
wk_done_header(uint64_t job, uint64_t attempt, const char *state)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DONE, 0);
    dv_msgw_uint(w, "job", job);
    dv_msgw_uint(w, "attempt", attempt);
    dv_msgw_str(w, "state", state);
    return w;
}

// --------------------------------------------------------------- tasks

// Payload frame i (0: frame 1) of in, moved out of it into a held frame
// with one ref, the caller's (wk_inbuf_release it). The frame's bytes move
// with it when ZeroMQ kept them inside the message: read them from
// zmq_msg_data(&b->msg), never from views of in made before. Never NULL.
inbuf_t *
wk_inbuf_take(dv_wire_msg_t *in, size_t i)
{
    dv_assert(i < in->n_payload);
    inbuf_t *b = dv_malloc(sizeof *b);
    zmq_msg_init(&b->msg);
    zmq_msg_move(&b->msg, &in->payload[i]);
    in->frames[i] = (dv_frame_t){zmq_msg_data(&b->msg), zmq_msg_size(&b->msg)};
    b->refs = 1;
    return b;
}

// Whether tasks may read b's bytes as floats in place: a little-endian
// host (the wire's order) and float-aligned bytes. ZeroMQ gives a frame
// over its 8 KiB receive batch its own malloc'd block (aligned); a smaller
// one may lie at any offset of a shared buffer (and is cheap to copy).
bool
wk_inbuf_floats(const inbuf_t *b)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const void *p = zmq_msg_data((zmq_msg_t *)&b->msg);
    return (uintptr_t)p % _Alignof(float) == 0;
#else
    (void)b;
    return false;
#endif
}

// Drop one ref of *b_p; the last closes the frame. Sets *b_p to NULL.
void
wk_inbuf_release(inbuf_t **b_p)
{
    inbuf_t *b = *b_p;
    *b_p = NULL;
    if (b && --b->refs == 0) {
        zmq_msg_close(&b->msg);
        free(b);
    }
}

void
wk_task_free(task_t *t)
{
    task_train_t *tr = t->tr;
    if (tr) {
        dv_metrics_clear(&tr->metrics);
        dv_metrics_clear(&tr->eval);
        dv_dataset_destroy(&tr->eval_ds);
        if (tr->ck_lock_ready) {
            uv_mutex_destroy(&tr->ck_lock);
        }
        free(tr->ck_buf);
        free(tr->resume);
        free(tr->model_file);
        free(tr);
    }
    dv_spare_t *spare = t->owner->spare;
    if (t->inbuf) {
        wk_inbuf_release(&t->inbuf); // raw lay in its frame
    } else if (t->raw_spare) {
        dv_spare_put(spare, t->raw, t->raw_spare);
    } else {
        free(t->raw);
    }
    if (t->input == &t->view) {
        t->input = NULL; // raw's bytes
    }
    dv_tensor_destroy(&t->input);
    dv_tensor_destroy(&t->output);
    dv_spare_put(spare, t, sizeof *t);
}

void
wk_send_failed(dv_worker_t *self,
               uint64_t job,
               uint64_t attempt,
               int code,
               const char *text)
{
    dv_msgw_t *w = wk_done_header(job, attempt, "failed");
    dv_msgw_error(w, "error", code, text);
    wk_send_header(self, w, NULL, 0);
    self->jobs_failed++;
}

// A finished task's `done` (w, taking it) with its frames — unless its
// header is over DV_MAX_HEADER_BYTES: the broker could not read it and the
// job would stay running forever, so the job fails with the numbers.
void
wk_send_done(dv_worker_t *self,
             const task_t *t,
             dv_msgw_t *w,
             const dv_frame_t *frames,
             size_t n)
{
    size_t len = 0;
    dv_msgw_bytes(w, &len);
    if (len > DV_MAX_HEADER_BYTES) {
        dv_msgw_destroy(&w);
        char text[DV_ERROR_TEXT_MAX];
        snprintf(text, sizeof text,
                 "the result's header would be %zu bytes, over the limit of "
                 "%d",
                 len, DV_MAX_HEADER_BYTES);
        dv_log(DV_LOG_WARN, "worker", "job %" PRIu64 ": %s", t->job, text);
        wk_send_failed(self, t->job, t->attempt, DV_EMSGSIZE, text);
        return;
    }
    wk_send_header(self, w, frames, n);
    self->jobs_done++;
}

// A task is over (done or failed): account for it.
void
wk_task_end(dv_worker_t *self, task_t *t)
{
    *t->all_pprev = t->all_next;
    if (t->all_next) {
        t->all_next->all_pprev = t->all_pprev;
    }
    if (t->model) {
        t->model->refs--;
    }
    for (size_t i = 0; t->tr && i < 2; i++) {
        if (t->tr->ds[i].entry) {
            t->tr->ds[i].entry->refs--;
        }
    }
    wk_task_free(t);
    self->running--;
    wk_cache_trim(self);
    if (self->waiting_data) { // its data sets may make room for theirs
        wk_data_admit(self);
    }
    wk_model_admit(self); // and its model for a held fetch
    wk_maybe_finish_drain(self);
}

// How every after-work callback starts. True when that was all: a task
// the drain released before it began (its `release` went already) ended,
// or the task
// failed (cancelled, or not run: DV_ECANCELED) and its failure was sent
// and it ended. False: it succeeded, and the caller sends its result.
static bool
after_work_over(dv_worker_t *self, task_t *t, int status)
{
    if (status == UV_ECANCELED && t->released) { // draining: not started
        wk_task_end(self, t);
        return true;
    }
    if (status != 0 || __atomic_load_n(&t->cancelled, __ATOMIC_RELAXED)) {
        t->rc = dv_errorf(&t->err, DV_ECANCELED, "job cancelled");
    }
    if (t->rc) {
        wk_send_failed(self, t->job, t->attempt, t->rc, t->err.text);
        wk_task_end(self, t);
        return true;
    }
    return false;
}

// A `sleep` job: waits ms in short slices, checking the cancel flag
// between them, the way model code checks it between batches.
void
wk_work_sleep(dv_work_t *req)
{
    task_t *t = req->data;
    uint64_t start = uv_hrtime();
    while (!__atomic_load_n(&t->cancelled, __ATOMIC_RELAXED)) {
        uint64_t spent = (uv_hrtime() - start) / 1000000;
        if (spent >= t->sleep_ms) {
            return;
        }
        uint64_t slice = t->sleep_ms - spent < 10 ? t->sleep_ms - spent : 10;
        uv_sleep((unsigned)slice);
    }
}

void
wk_after_sleep(dv_work_t *req, int status)
{
    task_t *t = req->data;
    dv_worker_t *self = t->owner;
    if (after_work_over(self, t, status)) {
        return;
    }
    dv_msgw_t *w = wk_done_header(t->job, t->attempt, "done");
    dv_frame_t f = {t->raw, t->raw_rows};
    wk_send_header(self, w, &f, 1);
    self->jobs_done++;
    wk_task_end(self, t);
}

// On the pool: the job's CSV (its own, or the cached data set's) parsed.
static int
parse_task_csv(task_t *t, const dv_csv_opts_t *copts, dv_dataset_t **ds)
{
    const cached_t *d = t->tr->ds[0].entry;
    const uint8_t *csv = d ? d->data : t->raw;
    size_t len = d ? d->bytes : t->raw_rows;
    return dv_csv_parse(ds, (const char *)csv, len, copts, &t->err);
}

// An `evaluate` job on the pool: the CSV against the model's features and
// target, then its metrics.
void
wk_work_evaluate(dv_work_t *req)
{
    task_t *t = req->data;
    const dv_model_t *m = t->model->model;
    dv_csv_opts_t copts = {.target = m->target_name};
    dv_dataset_t *ds = NULL;
    t->rc = parse_task_csv(t, &copts, &ds);
    if (t->rc == 0) {
        t->rc = dv_model_evaluate(m, ds, &t->tr->metrics, &t->err);
    }
    dv_dataset_destroy(&ds);
}

void
wk_after_evaluate(dv_work_t *req, int status)
{
    task_t *t = req->data;
    dv_worker_t *self = t->owner;
    if (after_work_over(self, t, status)) {
        return;
    }
    dv_msgw_t *w = wk_done_header(t->job, t->attempt, "done");
    dv_msgw_metrics(w, "metrics", &t->tr->metrics);
    size_t clen = 0;
    uint8_t *conf = dv_confusion_frame(&t->tr->metrics, &clen);
    if (conf) { // too many classes for the header: a u32 frame
        size_t k = t->tr->metrics.n_classes;
        dv_msgw_key(w, "confusion");
        dv_msgw_v_map(w, 3);
        dv_msgw_v_str(w, "frame");
        dv_msgw_v_uint(w, 1);
        dv_msgw_v_str(w, "dtype");
        dv_msgw_v_str(w, "u32");
        dv_msgw_v_str(w, "shape");
        dv_msgw_v_array(w, 2);
        dv_msgw_v_uint(w, k);
        dv_msgw_v_uint(w, k);
    }
    dv_frame_t f = {conf, clen};
    wk_send_done(self, t, w, &f, conf ? 1 : 0);
    free(conf);
    wk_task_end(self, t);
}

// dv_train checks the cancel flag before every mini-batch (opts.cancel)
// and the progress callback's answer after every epoch.
static int
train_progress(const dv_train_progress_t *p, void *arg)
{
    task_t *t = arg;
    uint64_t now = uv_hrtime();
    t->tr->train_s = p->seconds;
    if (t->tr->eval_ds && p->model &&
        (now >= t->tr->e_next_ns || p->epoch == p->epochs)) {
        // The held-out score as training goes: at most once a second, and
        // never more than a tenth of the time (a large eval set is costly).
        dv_metrics_t met = {0};
        dv_error_t e = {0};
        if (dv_model_evaluate(p->model, t->tr->eval_ds, &met, &e) == 0) {
            double v =
                met.task == DV_TASK_CLASSIFICATION ? met.accuracy : met.r2;
            uint64_t vb;
            memcpy(&vb, &v, sizeof vb);
            __atomic_store_n(&t->tr->p_eval_bits, vb, __ATOMIC_RELAXED);
            __atomic_store_n(&t->tr->p_has_eval, true, __ATOMIC_RELAXED);
        }
        dv_metrics_clear(&met);
        uint64_t after = uv_hrtime(), cost = after - now;
        t->tr->e_next_ns =
            after + (cost * 10 > 1000000000ULL ? cost * 10 : 1000000000ULL);
        now = after;
    }
    if (now - t->tr->p_last_ns >= 200000000ULL || p->epoch == p->epochs) {
        uint64_t bits;
        memcpy(&bits, &p->loss, sizeof bits);
        __atomic_store_n(&t->tr->p_epoch, p->epoch, __ATOMIC_RELAXED);
        __atomic_store_n(&t->tr->p_epochs, p->epochs, __ATOMIC_RELAXED);
        __atomic_store_n(&t->tr->p_loss_bits, bits, __ATOMIC_RELAXED);
        __atomic_store_n(&t->tr->p_ms, (uint64_t)(p->seconds * 1000),
                         __ATOMIC_RELAXED);
        __atomic_store_n(&t->tr->p_new, true, __ATOMIC_RELEASE);
        uv_async_send(&t->owner->progress); // thread-safe
        t->tr->p_last_ns = now;
    }
    return __atomic_load_n(&t->cancelled, __ATOMIC_RELAXED) ? 1 : 0;
}

// On the pool thread: keep the newest checkpoint for the loop thread.
static void
train_checkpoint(const uint8_t *blob, size_t len, uint32_t epoch, void *arg)
{
    task_t *t = arg;
    uint8_t *copy = dv_try_malloc(len, 1);
    if (!copy) {
        return; // the next one may fit; a re-run redoes a little more
    }
    memcpy(copy, blob, len);
    uv_mutex_lock(&t->tr->ck_lock);
    free(t->tr->ck_buf);
    t->tr->ck_buf = copy;
    t->tr->ck_len = len;
    t->tr->ck_epoch = epoch;
    uv_mutex_unlock(&t->tr->ck_lock);
    uv_async_send(&t->owner->progress);
}

// On the loop thread: a training task's newest checkpoint to the broker.
static void
send_checkpoint(dv_worker_t *self, task_t *t)
{
    uv_mutex_lock(&t->tr->ck_lock);
    uint8_t *blob = t->tr->ck_buf;
    size_t len = t->tr->ck_len;
    uint32_t epoch = t->tr->ck_epoch;
    t->tr->ck_buf = NULL;
    uv_mutex_unlock(&t->tr->ck_lock);
    if (!blob) {
        return;
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_CHECKPOINT, 0);
    dv_msgw_uint(w, "job", t->job);
    dv_msgw_uint(w, "attempt", t->attempt);
    dv_msgw_uint(w, "epoch", epoch);
    dv_frame_t f = {blob, len};
    wk_send_header(self, w, &f, 1);
    free(blob);
}

// A training task's progress, if it has some not sent yet.
static void
send_progress(dv_worker_t *self, task_t *t)
{
    if (!__atomic_exchange_n(&t->tr->p_new, false, __ATOMIC_ACQUIRE)) {
        return;
    }
    uint64_t bits = __atomic_load_n(&t->tr->p_loss_bits, __ATOMIC_RELAXED);
    double loss;
    memcpy(&loss, &bits, sizeof loss);
    dv_msgw_t *w = dv_msgw_new(DV_MSG_PROGRESS, 0);
    dv_msgw_uint(w, "job", t->job);
    dv_msgw_uint(w, "attempt", t->attempt);
    dv_msgw_uint(w, "epoch",
                 __atomic_load_n(&t->tr->p_epoch, __ATOMIC_RELAXED));
    dv_msgw_uint(w, "epochs",
                 __atomic_load_n(&t->tr->p_epochs, __ATOMIC_RELAXED));
    dv_msgw_double(w, "loss", loss);
    dv_msgw_uint(w, "ms", __atomic_load_n(&t->tr->p_ms, __ATOMIC_RELAXED));
    if (__atomic_load_n(&t->tr->p_has_eval, __ATOMIC_RELAXED)) {
        uint64_t eb = __atomic_load_n(&t->tr->p_eval_bits, __ATOMIC_RELAXED);
        double ev;
        memcpy(&ev, &eb, sizeof ev);
        dv_msgw_double(w, "eval", ev);
    }
    wk_send_header(self, w, NULL, 0);
}

// On the loop thread: send what training tasks reported.
void
wk_on_progress(uv_async_t *a)
{
    dv_worker_t *self = a->data;
    for (task_t *t = self->tasks; t; t = t->all_next) {
        if (t->train && t->tr->ck_lock_ready) {
            send_checkpoint(self, t);
        }
        if (t->train) {
            send_progress(self, t);
        }
    }
}

// A `train` job on the pool: parse the CSV, train, encode the model file.
void
wk_work_train(dv_work_t *req)
{
    task_t *t = req->data;
    dv_csv_opts_t copts = {.target = t->tr->target[0] ? t->tr->target : NULL};
    dv_dataset_t *ds = NULL;
    t->rc = parse_task_csv(t, &copts, &ds);
    const cached_t *ev = t->tr->ds[1].entry;
    if (t->rc == 0 && ev) { // the eval set: same target column
        t->rc = dv_csv_parse(&t->tr->eval_ds, (const char *)ev->data, ev->bytes,
                             &copts, &t->err);
        if (t->rc) {
            char why[DV_ERROR_TEXT_MAX];
            snprintf(why, sizeof why, "%s", t->err.text);
            dv_errorf(&t->err, t->rc, "eval data set %s: %s", t->tr->ds[1].key,
                      why);
        }
    }
    dv_model_t *model = NULL;
    if (t->rc == 0) {
        dv_train_opts_t o = {.task = t->tr->task_kind,
                             .progress = train_progress,
                             .progress_arg = t,
                             .created_unix = t->tr->created_unix,
                             .cancel = &t->cancelled,
                             .resume = t->tr->resume,
                             .resume_len = t->tr->resume_len};
        if (t->tr->checkpoint_ms) {
            o.checkpoint = train_checkpoint;
            o.checkpoint_arg = t;
            o.checkpoint_every_s = (double)t->tr->checkpoint_ms / 1000.0;
        }
        t->rc = dv_train(&model, ds, &t->tr->hyper, &o, &t->err);
        if (t->tr->resume && (t->rc == DV_EFORMAT || t->rc == DV_ECHECKSUM ||
                              t->rc == DV_EINVAL)) {
            // A checkpoint this trainer cannot take (damaged, or from
            // another build's format): start over rather than fail a job
            // that can still be done.
            dv_log(DV_LOG_WARN, "worker",
                   "job %" PRIu64 ": checkpoint refused (%s); training from "
                   "the start (same result, more time; nothing to do)",
                   t->job, t->err.text);
            o.resume = NULL;
            o.resume_len = 0;
            t->rc = dv_train(&model, ds, &t->tr->hyper, &o, &t->err);
        }
        t->tr->resumed_from = o.resume ? (uint32_t)t->tr->resume_epoch : 0;
    }
    if (t->rc == 0) {
        memcpy(t->tr->data_sha256, ds->sha256, sizeof t->tr->data_sha256);
        t->tr->data_rows = ds->n_rows;
        t->tr->epochs_run = model->meta.epochs_run;
        t->rc = dv_model_encode(model, &t->tr->model_file, &t->tr->model_len,
                                &t->err);
    }
    if (t->rc == 0 && t->tr->eval_ds) {
        t->rc = dv_model_evaluate(model, t->tr->eval_ds, &t->tr->eval, &t->err);
    }
    dv_model_destroy(&model);
    dv_dataset_destroy(&ds);
}

void
wk_after_train(dv_work_t *req, int status)
{
    task_t *t = req->data;
    dv_worker_t *self = t->owner;
    if (after_work_over(self, t, status)) {
        return;
    }
    send_progress(self, t); // the last epoch's, before the result
    dv_msgw_t *w = wk_done_header(t->job, t->attempt, "done");
    dv_msgw_uint(w, "epochs_run", t->tr->epochs_run);
    dv_msgw_uint(w, "train_ms", (uint64_t)(t->tr->train_s * 1000));
    dv_msgw_bin(w, "data_sha256", t->tr->data_sha256, DV_SHA256_BYTES);
    dv_msgw_uint(w, "data_rows", t->tr->data_rows);
    if (t->tr->resumed_from) {
        dv_msgw_uint(w, "resumed_from", t->tr->resumed_from);
    }
    if (t->tr->eval_ds) {
        dv_msgw_metrics(w, "eval_metrics", &t->tr->eval);
    }
    dv_frame_t f = {t->tr->model_file, t->tr->model_len};
    wk_send_done(self, t, w, &f, 1);
    wk_task_end(self, t);
}
