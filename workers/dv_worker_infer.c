// dv_worker_infer — dynamic batching: infer tasks whose model is here wait
// in the ready list; while a compute thread is free the next batch (same
// model version, width, priority; up to max_batch_rows; max_delay_us) runs
// as one forward pass, and its jobs are answered with one `done_batch`
// (1.4 broker) or a `done` each. A pass small enough
// (DV_INLINE_INFER_MACS) runs on the loop thread when no other is running.
// See dv_worker_int.h.
#include "dv_worker_int.h"

static void dispatch_ready(dv_worker_t *self);

// Infer tasks run as one forward pass on the pool (a batch of one too).
typedef struct {
    dv_work_t work;     // pool request
    dv_worker_t *owner; // the worker
    dv_tensor_t *y;     // the stacked output (NULL: each its own output)
    bool in_place;      // several inputs stacked where they arrived
    size_t n;           // tasks, in ready order
    task_t *tasks[];    //
} batch_t;

// Whether b's good tasks' inputs lie one after another in one held frame
// (*start: the first's), as a run_batch's do unless a bad one sits
// between: then they are stacked where they are, with no copy.
static bool
contiguous(const batch_t *b, float **start)
{
    const uint8_t *end = NULL;
    const inbuf_t *frame = NULL;
    for (size_t i = 0; i < b->n; i++) {
        const task_t *t = b->tasks[i];
        if (t->rc != 0) {
            continue;
        }
        if (!t->inbuf || t->input != &t->view ||
            (frame && (t->inbuf != frame || t->raw != end))) {
            return false;
        }
        if (!frame) {
            frame = t->inbuf;
            *start = t->view.data;
        }
        end = t->raw + t->raw_rows * t->raw_cols * 4;
    }
    return frame != NULL;
}

// Pool thread: each task's input is decoded and checked on its own (a bad
// one fails alone, with the text predicting it alone would give); the good
// ones are stacked into one input, predicted at once, and split back.
static void
work_batch(dv_work_t *req)
{
    batch_t *b = req->data;
    const dv_model_t *model = b->tasks[0]->model->model;
    size_t n_out = dv_model_n_outputs(model);
    size_t rows = 0, good = 0;
    task_t *one = NULL;
    for (size_t i = 0; i < b->n; i++) {
        task_t *t = b->tasks[i];
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        // The frame's bytes are the floats (malloc'd, or a held frame
        // found float-aligned): no copy.
        t->view = (dv_tensor_t){t->raw_rows, t->raw_cols, (float *)t->raw};
        t->input = &t->view;
        t->rc = 0;
#else
        dv_frame_t f = {t->raw, t->raw_rows * t->raw_cols * 4};
        t->rc = dv_tensor_from_frame(&f, t->raw_rows, t->raw_cols, &t->input,
                                     &t->err);
        free(t->raw);
        t->raw = NULL;
#endif
        // The broker checked this at submit; a model file is a peer too.
        if (t->rc == 0) {
            t->rc = dv_frame_check(t->input->rows, n_out, "output", &t->err);
        }
        if (t->rc == 0) {
            t->rc = dv_model_check_input(model, t->input, &t->err);
        }
        if (t->rc == 0) {
            rows += t->input->rows;
            good++;
            one = t;
        }
    }
    if (good <= 1) { // nothing to stack
        if (one) {
            one->rc =
                dv_model_predict(model, one->input, &one->output, &one->err);
            one->batch_rows = (uint32_t)rows;
            one->batch_jobs = 1;
        }
        return;
    }
    dv_tensor_t *x = NULL, *y = NULL, stacked;
    dv_error_t err = {0};
    int rc = 0;
    float *start = NULL;
    if (contiguous(b, &start)) { // one frame's rows, in order: read there
        stacked = (dv_tensor_t){rows, model->n_features, start};
        b->in_place = true;
    } else {
        rc = dv_tensor_open(&x, rows, model->n_features, &err);
    }
    for (size_t i = 0, at = 0; rc == 0 && x && i < b->n; i++) {
        const task_t *t = b->tasks[i];
        if (t->rc == 0) {
            size_t len = dv_tensor_size(t->input);
            memcpy(x->data + at, t->input->data, len * sizeof(float));
            at += len;
        }
    }
    if (rc == 0) {
        rc = dv_model_predict(model, x ? x : &stacked, &y, &err);
    }
    for (size_t i = 0, at = 0; i < b->n; i++) {
        task_t *t = b->tasks[i];
        if (t->rc != 0) {
            continue;
        }
        if (rc) {
            t->rc = dv_errorf(&t->err, rc, "%s", err.text);
            continue;
        }
        t->out_row = at; // its rows of y: no copy
        at += t->input->rows;
        t->batch_rows = (uint32_t)rows;
        t->batch_jobs = (uint32_t)good;
    }
    dv_tensor_destroy(&x);
    b->y = y;
}

// Task t's output: rows x cols floats, its own or its rows of y.
static const float *
task_output(const task_t *t, const dv_tensor_t *y, size_t *rows, size_t *cols)
{
    if (t->output) {
        *rows = t->output->rows;
        *cols = t->output->cols;
        return t->output->data;
    }
    *rows = t->input->rows;
    *cols = y->cols;
    return y->data + t->out_row * y->cols;
}

// The fields every infer `done`/`done_batch` carries beside the output:
// the version, the forward pass (1.3) and the class names (many long ones
// as frame 2, *cf: caller frees).
static void
put_infer_fields(dv_msgw_t *w, const task_t *t, dv_frame_t *cf)
{
    const dv_model_t *m = t->model->model;
    dv_msgw_str(w, "model", t->key);
    dv_msgw_key(w, "batch");
    dv_msgw_v_map(w, 2);
    dv_msgw_v_str(w, "rows");
    dv_msgw_v_uint(w, t->batch_rows);
    dv_msgw_v_str(w, "jobs");
    dv_msgw_v_uint(w, t->batch_jobs);
    if (m->labels) { // many long names go as frame 2, not in the header
        dv_msgw_strs_or_frame(w, "classes",
                              (const char *const *)m->labels->labels,
                              m->labels->n, 2, cf);
    }
}

// An infer task's outcome goes to the broker (status: the batch's; y: its
// stacked output, when it ran in one).
static void
infer_finished(dv_worker_t *self, task_t *t, int status, const dv_tensor_t *y)
{
    if (status != 0 || t->cancelled) {
        t->rc = dv_errorf(&t->err, DV_ECANCELED, "job cancelled");
    }
    if (t->rc) {
        wk_send_failed(self, t->job, t->attempt, t->rc, t->err.text);
        wk_task_end(self, t);
        return;
    }
    size_t rows = 0, cols = 0;
    const float *out = task_output(t, y, &rows, &cols);
    uint8_t *frame = dv_malloc(rows * cols * 4 + 1);
    dv_floats_to_wire(frame, out, rows * cols);
    dv_msgw_t *w = wk_done_header(t->job, t->attempt, "done");
    dv_msgw_tensor(w, "output", 1, rows, cols);
    dv_frame_t f[2] = {{frame, rows * cols * 4}, {NULL, 0}};
    put_infer_fields(w, t, &f[1]);
    wk_send_done(self, t, w, f, f[1].data ? 2 : 1);
    free(frame);
    free((void *)f[1].data);
    wk_task_end(self, t);
}

// The tasks of a forward pass that succeeded, to a 1.4 broker: one
// `done_batch` per DV_MAX_BATCH_JOBS of them instead of a `done` each (the
// failed and cancelled ones, and a lone one, go as `done`). Marks those
// sent by clearing their slot in b.
static void
send_done_batch(dv_worker_t *self, batch_t *b, int status)
{
    size_t good = 0;
    for (size_t i = 0; i < b->n; i++) {
        const task_t *t = b->tasks[i];
        good += status == 0 && t->rc == 0 && !t->cancelled;
    }
    if (good < 2 || self->broker_minor < 4) {
        return;
    }
    for (size_t from = 0; from < b->n;) {
        task_t *sent[DV_MAX_BATCH_JOBS];
        size_t at_b[DV_MAX_BATCH_JOBS]; // their places in b
        size_t n = 0, rows = 0, cols = 0, i = from;
        for (; i < b->n && n < DV_MAX_BATCH_JOBS; i++) {
            task_t *t = b->tasks[i];
            if (status == 0 && t->rc == 0 && !t->cancelled) {
                size_t r = 0;
                task_output(t, b->y, &r, &cols);
                rows += r;
                at_b[n] = i;
                sent[n++] = t;
            }
        }
        from = i;
        if (n < 2) {
            break; // a lone one: its own done
        }
        uint8_t *frame = dv_malloc(rows * cols * 4 + 1);
        dv_msgw_t *w = dv_msgw_new(DV_MSG_DONE_BATCH, 0);
        dv_msgw_key(w, "jobs"); // [job, attempt, rows], in frame 1's order
        dv_msgw_v_array(w, n);
        for (size_t k = 0, at = 0; k < n; k++) {
            size_t r = 0, c = 0;
            const float *out = task_output(sent[k], b->y, &r, &c);
            dv_floats_to_wire(frame + at * cols * 4, out, r * cols);
            at += r;
            dv_msgw_v_array(w, 3);
            dv_msgw_v_uint(w, sent[k]->job);
            dv_msgw_v_uint(w, sent[k]->attempt);
            dv_msgw_v_uint(w, r);
        }
        dv_msgw_tensor(w, "output", 1, rows, cols);
        dv_frame_t f[2] = {{frame, rows * cols * 4}, {NULL, 0}};
        put_infer_fields(w, sent[0], &f[1]);
        size_t len = 0;
        dv_msgw_bytes(w, &len);
        if (len > DV_MAX_HEADER_BYTES) { // each goes as its own done
            dv_msgw_destroy(&w);
        } else {
            wk_send_header(self, w, f, f[1].data ? 2 : 1);
            self->jobs_done += n;
            for (size_t k = 0; k < n; k++) {
                b->tasks[at_b[k]] = NULL;
                wk_task_end(self, sent[k]);
            }
        }
        free(frame);
        free((void *)f[1].data);
    }
}

// Answer b's jobs and release it (the loop thread, after the pass).
static void
finish_batch(batch_t *b, int status)
{
    dv_worker_t *self = b->owner;
    self->batches--;
    self->batches_run++;
    self->batched_jobs += b->n;
    self->in_place_runs += b->in_place;
    send_done_batch(self, b, status);
    for (size_t i = 0; i < b->n; i++) {
        if (b->tasks[i]) {
            infer_finished(self, b->tasks[i], status, b->y);
        }
    }
    dv_tensor_destroy(&b->y);
    free(b);
}

static void
after_batch(dv_work_t *req, int status)
{
    batch_t *b = req->data;
    dv_worker_t *self = b->owner;
    finish_batch(b, status);
    dispatch_ready(self);
}

// Whether ready task t may share lead's forward pass.
static bool
same_pass(const task_t *lead, const task_t *t)
{
    return t->model == lead->model && t->raw_cols == lead->raw_cols &&
           t->priority == lead->priority;
}

// How many ready tasks (from lead, skipping others) form lead's batch, and
// their rows. The lead always goes, however many rows it has.
static size_t
batch_count(const task_t *lead, size_t *rows)
{
    size_t n = 1;
    *rows = lead->raw_rows;
    for (const task_t *t = lead->next; t; t = t->next) {
        if (!same_pass(lead, t)) {
            continue;
        }
        if (*rows + t->raw_rows > lead->max_batch_rows) {
            break; // first in first out: no smaller one jumps it
        }
        *rows += t->raw_rows;
        n++;
    }
    return n;
}

static void
on_batch_delay(uv_timer_t *timer)
{
    dv_worker_t *self = timer->data;
    dispatch_ready(self);
}

// Groups of ready tasks waiting for more (max_delay_us) that one dispatch
// steps over; past this many, later groups wait their turn.
#define MAX_HELD_GROUPS 8

// While a compute thread is free, the next batch goes to the pool. A
// group (model version, width, priority) whose lead waits for more rows
// (max_delay_us) is stepped over, not waited behind: other models' jobs
// run meanwhile, and a timer wakes the dispatch when the first wait ends.
static void
dispatch_ready(dv_worker_t *self)
{
    uv_idle_stop(&self->dispatcher);
    const task_t *held[MAX_HELD_GROUPS];
    size_t n_held = 0;
    uint64_t now = uv_now(&self->loop), wake_ms = UINT64_MAX;
    while (!self->stopping && self->batches < self->capacity) {
        task_t *lead = NULL; // the first ready task of a group not held
        for (task_t *t = self->ready; t && !lead; t = t->next) {
            bool skip = false;
            for (size_t k = 0; k < n_held && !skip; k++) {
                skip = same_pass(held[k], t);
            }
            lead = skip ? NULL : t;
        }
        if (!lead) {
            break;
        }
        size_t rows = 0, n = batch_count(lead, &rows);
        if (lead->max_delay_us && rows < lead->max_batch_rows) {
            uint64_t waited_us = (now - lead->ready_ms) * 1000;
            if (waited_us < lead->max_delay_us) { // wait for more, once
                uint64_t left = (lead->max_delay_us - waited_us + 999) / 1000;
                wake_ms = now + left < wake_ms ? now + left : wake_ms;
                if (n_held == MAX_HELD_GROUPS) {
                    break;
                }
                held[n_held++] = lead;
                continue;
            }
        }
        batch_t *b = dv_malloc(sizeof *b + n * sizeof(task_t *));
        b->owner = self;
        b->y = NULL;
        b->in_place = false;
        b->n = 0;
        b->work.data = b;
        size_t taken_rows = 0;
        task_t **p = &self->ready, *prev = NULL;
        while (*p && b->n < n) {
            task_t *t = *p;
            if (!same_pass(lead, t)) {
                prev = t;
                p = &t->next;
                continue;
            }
            *p = t->next; // unlink
            t->next = NULL;
            if (self->ready_tail == t) {
                self->ready_tail = prev;
            }
            taken_rows += t->raw_rows;
            b->tasks[b->n++] = t;
        }
        dv_assert(b->n == n && taken_rows == rows);
        if (self->batches == 0 &&
            rows * dv_model_n_params(lead->model->model) <=
                DV_INLINE_INFER_MACS) {
            // Small and alone: here, without two thread hand-offs.
            self->batches++;
            self->inline_runs++;
            work_batch(&b->work);
            finish_batch(b, 0);
            continue;
        }
        if (dv_pool_queue(self->pool, &b->work, work_batch, after_batch)) {
            for (size_t i = 0; i < b->n; i++) {
                wk_send_failed(self, b->tasks[i]->job, b->tasks[i]->attempt,
                               DV_EIO, "cannot start the job");
                wk_task_end(self, b->tasks[i]);
            }
            free(b);
            continue;
        }
        self->batches++;
    }
    if (wake_ms != UINT64_MAX) {
        uv_timer_start(&self->batch_delay, on_batch_delay, wake_ms - now, 0);
    } else {
        uv_timer_stop(&self->batch_delay);
    }
}

static void
on_dispatch(uv_idle_t *idle)
{
    dispatch_ready(idle->data);
}

// Run t on the thread pool with model c.
void
wk_task_start(dv_worker_t *self, task_t *t, cached_t *c)
{
    t->model = c;
    c->refs++;
    c->used = ++self->tick;
    if (!t->evaluate) { // infer: ready; batches form once the socket is read
        t->ready_ms = uv_now(&self->loop);
        t->next = NULL;
        if (self->ready_tail) {
            self->ready_tail->next = t;
        } else {
            self->ready = t;
        }
        self->ready_tail = t;
        uv_idle_start(&self->dispatcher, on_dispatch);
        return;
    }
    t->work.data = t;
    int rc = dv_pool_queue(self->pool, &t->work, wk_work_evaluate,
                           wk_after_evaluate);
    if (rc != 0) {
        wk_send_failed(self, t->job, t->attempt, DV_EIO, uv_strerror(rc));
        wk_task_end(self, t);
    }
}
