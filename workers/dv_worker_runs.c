// dv_worker_runs — a `run` or `run_batch` from the broker becomes tasks:
// its fields parsed and checked, one task per job (dv_worker_int.h).
#include "dv_worker_int.h"

// A map's name (a string of at most DV_MAX_WIRE_NAME bytes, no NUL),
// version and sha256 (DV_SHA256_BYTES) into name, *version and sha256, and
// key = "NAME@VERSION". False when any is missing or malformed.
static bool
take_named(const msgpack_object *o,
           char *name,
           uint64_t *version,
           uint8_t *sha256,
           char *key)
{
    const msgpack_object *n = dv_msgpack_get(o, "name");
    const msgpack_object *sha = dv_msgpack_get(o, "sha256");
    if (!n || n->type != MSGPACK_OBJECT_STR ||
        n->via.str.size > DV_MAX_WIRE_NAME ||
        memchr(dv_msgpack_str_ptr(n), '\0', n->via.str.size) || !sha ||
        sha->type != MSGPACK_OBJECT_BIN ||
        sha->via.bin.size != DV_SHA256_BYTES ||
        !dv_msgpack_uint(dv_msgpack_get(o, "version"), version)) {
        return false;
    }
    memcpy(name, dv_msgpack_str_ptr(n), n->via.str.size);
    name[n->via.str.size] = '\0';
    memcpy(sha256, sha->via.bin.ptr, DV_SHA256_BYTES);
    snprintf(key, KEY_BYTES, "%s@%" PRIu64, name, *version);
    return true;
}

// A `dataset` map {name, version, sha256, bytes} into r.
static int
take_ref(const msgpack_object *ds,
         dsref_t *r,
         const char *what,
         dv_error_t *err)
{
    if (!take_named(ds, r->name, &r->version, r->sha256, r->key) ||
        r->name[0] == '\0' ||
        !dv_msgpack_uint(dv_msgpack_get(ds, "bytes"), &r->bytes) ||
        r->version == 0 || r->bytes > DV_MAX_CSV_BYTES) {
        r->key[0] = '\0'; // names no data set to fetch
        return dv_errorf(err, DV_EFORMAT,
                         "run: '%s' must be {name, version, sha256, bytes <= "
                         "%zu}",
                         what, DV_MAX_CSV_BYTES);
    }
    return 0;
}

// A train or evaluate job's data: a stored data set it names (`dataset`
// {name, version, sha256, bytes}: fetched and cached), or its own CSV in
// frame 1 (copied to raw); a train job's `eval_dataset` likewise.
static int
take_data(const dv_msg_t *m, task_t *t, dv_error_t *err)
{
    if (dv_msg_has(m, "eval_dataset")) {
        int rc = take_ref(dv_msg_get(m, "eval_dataset"), &t->tr->ds[1],
                          "eval_dataset", err);
        if (rc) {
            return rc;
        }
    }
    if (dv_msg_has(m, "dataset")) {
        return take_ref(dv_msg_get(m, "dataset"), &t->tr->ds[0], "dataset",
                        err);
    }
    const dv_frame_t *csv = dv_msg_frame(m, 1);
    if (!csv) {
        return dv_errorf(err, DV_EFORMAT,
                         "run: no CSV in frame 1 and no 'dataset'");
    }
    t->raw = dv_try_malloc(csv->len ? csv->len : 1, 1);
    if (!t->raw) {
        return dv_errorf(err, DV_ENOMEM, "no memory for a %zu byte data set",
                         csv->len);
    }
    memcpy(t->raw, csv->data, csv->len);
    t->raw_rows = csv->len;
    return 0;
}

// A re-run's checkpoint: `resume` {epoch}, the state in frame 2 (dv_train
// checks it: a damaged or foreign one fails the job with the reason).
static int
take_resume(const dv_msg_t *m, task_t *t, dv_error_t *err)
{
    const dv_frame_t *blob = dv_msg_frame(m, 2);
    if (!dv_msgpack_uint(dv_msgpack_get(dv_msg_get(m, "resume"), "epoch"),
                         &t->tr->resume_epoch) ||
        !blob || blob->len == 0) {
        return dv_errorf(err, DV_EFORMAT,
                         "run: 'resume' must be {epoch} with the checkpoint "
                         "in frame 2");
    }
    t->tr->resume = dv_try_malloc(blob->len, 1);
    if (!t->tr->resume) {
        return dv_errorf(err, DV_ENOMEM, "no memory for a %zu byte checkpoint",
                         blob->len);
    }
    memcpy(t->tr->resume, blob->data, blob->len);
    t->tr->resume_len = blob->len;
    dv_log(DV_LOG_INFO, "worker",
           "job %" PRIu64 " resumes from its checkpoint after epoch %" PRIu64,
           t->job, t->tr->resume_epoch);
    return 0;
}

// A run's model map {name, version, sha256} and, from a 1.9 broker, the
// file's `bytes` (what its fetch will hold: wk_model_admit).
static int
parse_model(const dv_msg_t *m, task_t *t, dv_error_t *err)
{
    const msgpack_object *model = dv_msg_get(m, "model");
    const msgpack_object *bytes = dv_msgpack_get(model, "bytes");
    if (!take_named(model, t->name, &t->version, t->sha256, t->key) ||
        (bytes &&
         (!dv_msgpack_uint(bytes, &t->model_bytes) || t->model_bytes == 0 ||
          t->model_bytes > DV_MAX_FRAME_BYTES))) {
        return dv_errorf(err, DV_EFORMAT,
                         "run: 'model' must be {name, version, sha256, "
                         "bytes 1..%zu}",
                         (size_t)DV_MAX_FRAME_BYTES);
    }
    return 0;
}

// An infer run's batch settings (the model map's) and priority.
static int
parse_serving(const dv_msg_t *m, task_t *t, dv_error_t *err)
{
    const msgpack_object *model = dv_msg_get(m, "model");
    // The model's batch settings and the job's priority (1.3; a 1.2 broker
    // sends none: the defaults, and priority 0 for every job).
    uint64_t rows_cap = DV_BATCH_ROWS_DEFAULT, delay = 0;
    const msgpack_object *o = dv_msgpack_get(model, "max_batch_rows");
    if (o && (!dv_msgpack_uint(o, &rows_cap) || rows_cap == 0 ||
              rows_cap > DV_MAX_INFER_ROWS)) {
        return dv_errorf(err, DV_EFORMAT, "run: 'max_batch_rows' must be 1..%d",
                         DV_MAX_INFER_ROWS);
    }
    o = dv_msgpack_get(model, "max_delay_us");
    if (o && (!dv_msgpack_uint(o, &delay) || delay > DV_MAX_BATCH_DELAY_US)) {
        return dv_errorf(err, DV_EFORMAT, "run: 'max_delay_us' must be 0..%d",
                         DV_MAX_BATCH_DELAY_US);
    }
    t->max_batch_rows = (uint32_t)rows_cap;
    t->max_delay_us = delay;
    int64_t prio = 0;
    int rc0 = dv_msg_int_or(m, "priority", 0, &prio, err);
    if (rc0) {
        return rc0;
    }
    t->priority = (int32_t)(prio < INT32_MIN   ? INT32_MIN
                            : prio > INT32_MAX ? INT32_MAX
                                               : prio);
    return 0;
}

// t's input: rows x cols floats from byte off of b's frame (a held frame:
// read in place when its bytes are floats, t taking a ref; no copy), or of
// bytes when b is NULL (copied).
static int
take_input(task_t *t,
           inbuf_t *b,
           const uint8_t *bytes,
           size_t off,
           size_t rows,
           size_t cols,
           dv_error_t *err)
{
    size_t len = rows * cols * 4;
    t->raw_rows = rows;
    t->raw_cols = cols;
    if (b && wk_inbuf_floats(b)) {
        t->raw = (uint8_t *)zmq_msg_data(&b->msg) + off; // not owned
        t->inbuf = b;
        b->refs++;
        t->owner->in_place++;
        return 0;
    }
    const uint8_t *src =
        b ? (const uint8_t *)zmq_msg_data(&b->msg) + off : bytes + off;
    t->raw = dv_spare_get(t->owner->spare, len);
    t->raw_spare = len; // dv_spare_put takes the size asked
    if (!t->raw) {
        return dv_errorf(err, DV_ENOMEM, "no memory for a %zu x %zu input",
                         rows, cols);
    }
    if (len) {
        memcpy(t->raw, src, len);
    }
    return 0;
}

// Frame 1 of m (in's first payload frame) as a held frame, when a task
// should read its input there in place: it is big enough that a copy
// costs (BY_REF_MIN_BYTES); NULL: copy it.
#define BY_REF_MIN_BYTES 8192
static inbuf_t *
hold_input(const dv_msg_t *m, const dv_frame_t *f, dv_wire_msg_t *in)
{
    if (!in || f != dv_msg_frame(m, 1) || in->n_payload < 1 ||
        f->len < BY_REF_MIN_BYTES) {
        return NULL;
    }
    return wk_inbuf_take(in, 0);
}

// An infer job's model map, settings and input tensor; an evaluate job's
// model map and data.
static int
parse_infer(const dv_msg_t *m, task_t *t, dv_wire_msg_t *in, dv_error_t *err)
{
    int rc = parse_model(m, t, err);
    if (rc || t->evaluate) { // the data: a CSV with the model's target
        return rc ? rc : take_data(m, t, err);
    }
    if ((rc = parse_serving(m, t, err)) != 0) {
        return rc;
    }
    const dv_frame_t *f = NULL;
    size_t rows = 0, cols = 0;
    rc = dv_msg_tensor_desc(m, "input", DV_MAX_INFER_ROWS, &f, &rows, &cols,
                            err);
    if (rc) {
        return rc;
    }
    inbuf_t *b = hold_input(m, f, in);
    rc = take_input(t, b, f->data, 0, rows, cols, err);
    wk_inbuf_release(&b);
    return rc;
}

// A train job's fields: hyper-parameters, target, task, created_unix,
// checkpoint_ms, a re-run's checkpoint, its data.
static int
parse_train(const dv_msg_t *m, task_t *t, dv_error_t *err)
{
    uint64_t created = 0;
    char task[32] = "";
    t->train = true;
    t->tr->task_kind = -1;
    int rc = dv_msg_hyper(m, "train", &t->tr->hyper, err);
    if (rc == 0 && dv_msg_has(m, "target")) {
        rc = dv_msg_str(m, "target", t->tr->target, sizeof t->tr->target, err);
    }
    if (rc == 0 && dv_msg_has(m, "task")) {
        rc = dv_msg_str(m, "task", task, sizeof task, err);
        t->tr->task_kind = strcmp(task, "classification") == 0
                               ? DV_TASK_CLASSIFICATION
                               : DV_TASK_REGRESSION;
    }
    if (rc == 0) {
        rc = dv_msg_uint_or(m, "created_unix", 0, &created, err);
        t->tr->created_unix = (int64_t)created;
    }
    if (rc == 0) {
        rc = dv_msg_uint_or(m, "checkpoint_ms", 0, &t->tr->checkpoint_ms, err);
    }
    if (rc == 0 && dv_msg_has(m, "resume")) {
        rc = take_resume(m, t, err);
    }
    if (rc == 0) {
        rc = take_data(m, t, err);
    }
    if (rc == 0) {
        uv_mutex_init(&t->tr->ck_lock);
        t->tr->ck_lock_ready = true;
    }
    return rc;
}

// A new task for attempt of job, held (in self->tasks); heavy: a train or
// evaluate job, with its part (tr).
static task_t *
task_new(dv_worker_t *self, uint64_t job, uint64_t attempt, bool heavy)
{
    task_t *t = dv_spare_get(self->spare, sizeof *t); // never NULL
    memset(t, 0, sizeof *t);
    t->tr = heavy ? dv_calloc(1, sizeof *t->tr) : NULL;
    t->owner = self;
    t->job = job;
    t->attempt = attempt;
    t->all_next = self->tasks;
    if (t->all_next) {
        t->all_next->all_pprev = &t->all_next;
    }
    t->all_pprev = &self->tasks;
    self->tasks = t;
    self->running++;
    return t;
}

// run_batch (1.4): infer jobs of one model version, their inputs one after
// another in frame 1, `jobs` [[job, attempt, rows], ...]. Each becomes a
// task of its own (its own cancel, its own result), exactly as if it came
// in its own `run`; a message that cannot be used fails every job it names.
void
wk_on_run_batch(dv_worker_t *self, const dv_msg_t *m, dv_wire_msg_t *in)
{
    const msgpack_object *list = dv_msg_get(m, "jobs");
    if (!list || list->type != MSGPACK_OBJECT_ARRAY ||
        list->via.array.size > DV_MAX_BATCH_JOBS) {
        dv_log(DV_LOG_WARN, "worker",
               "bad run_batch: 'jobs' must be at most %d [job, attempt, "
               "rows]; is the broker a Drover of this version?",
               DV_MAX_BATCH_JOBS);
        return;
    }
    size_t n = list->via.array.size, sum = 0;
    uint64_t v[DV_MAX_BATCH_JOBS][3];
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *e = &list->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 3 ||
            !dv_msgpack_uint(&e->via.array.ptr[0], &v[i][0]) ||
            !dv_msgpack_uint(&e->via.array.ptr[1], &v[i][1]) ||
            !dv_msgpack_uint(&e->via.array.ptr[2], &v[i][2]) ||
            v[i][2] > DV_MAX_INFER_ROWS) {
            dv_log(DV_LOG_WARN, "worker",
                   "bad run_batch: jobs[%zu] must be [job, attempt, rows]; "
                   "is the broker a Drover of this version?",
                   i);
            return;
        }
        sum += v[i][2];
    }
    task_t proto;
    memset(&proto, 0, sizeof proto);
    dv_error_t err = {0};
    char kind[16] = "";
    const dv_frame_t *f = NULL;
    size_t rows = 0, cols = 0;
    int rc = dv_msg_str(m, "kind", kind, sizeof kind, &err);
    if (rc == 0 && strcmp(kind, "infer") != 0) {
        rc =
            dv_errorf(&err, DV_EINVAL, "run_batch: kind '%s', not infer", kind);
    }
    if (rc == 0) {
        rc = parse_model(m, &proto, &err);
    }
    if (rc == 0) {
        rc = parse_serving(m, &proto, &err);
    }
    if (rc == 0) {
        rc = dv_msg_tensor_desc(m, "input", DV_MAX_INFER_ROWS, &f, &rows, &cols,
                                &err);
    }
    if (rc == 0 && rows != sum) {
        rc = dv_errorf(&err, DV_ESHAPE,
                       "run_batch: an input of %zu rows for jobs of %zu", rows,
                       sum);
    }
    inbuf_t *b = rc == 0 ? hold_input(m, f, in) : NULL;
    for (size_t i = 0, at = 0; i < n; i++) {
        if (rc) {
            wk_send_failed(self, v[i][0], v[i][1], rc, err.text);
            continue;
        }
        task_t *t = task_new(self, v[i][0], v[i][1], false);
        memcpy(t->key, proto.key, sizeof t->key);
        memcpy(t->name, proto.name, sizeof t->name);
        memcpy(t->sha256, proto.sha256, sizeof t->sha256);
        t->version = proto.version;
        t->priority = proto.priority;
        t->max_batch_rows = proto.max_batch_rows;
        t->max_delay_us = proto.max_delay_us;
        dv_error_t terr = {0};
        if (take_input(t, b, f->data, at * cols * 4, v[i][2], cols, &terr)) {
            wk_send_failed(self, t->job, t->attempt, terr.code, terr.text);
            wk_task_end(self, t);
        } else {
            wk_task_go(self, t);
        }
        at += v[i][2];
    }
    wk_inbuf_release(&b); // each task reading it holds its own ref
}

void
wk_on_run(dv_worker_t *self, const dv_msg_t *m, dv_wire_msg_t *in)
{
    uint64_t job = 0, attempt = 0;
    char kind[16] = "";
    dv_error_t err = {0};
    int rc = dv_msg_uint(m, "job", &job, &err);
    if (rc == 0) {
        rc = dv_msg_uint(m, "attempt", &attempt, &err);
    }
    if (rc == 0) {
        rc = dv_msg_str(m, "kind", kind, sizeof kind, &err);
    }
    if (rc == 0 && strcmp(kind, "echo") == 0) {
        dv_msgw_t *w = wk_done_header(job, attempt, "done");
        const dv_frame_t *payload = dv_msg_frame(m, 1);
        wk_send_header(self, w, payload, payload ? 1 : 0);
        self->jobs_done++;
        return;
    }
    bool sleep = rc == 0 && strcmp(kind, "sleep") == 0;
    bool train = rc == 0 && strcmp(kind, "train") == 0;
    bool evaluate = rc == 0 && strcmp(kind, "evaluate") == 0;
    if (rc == 0 && !sleep && !train && !evaluate &&
        strcmp(kind, "infer") != 0) {
        rc = dv_errorf(&err, DV_EINVAL,
                       "job kind '%s' is not supported by this worker", kind);
    }
    uint64_t sleep_ms = 0;
    if (sleep && rc == 0) {
        rc = dv_msg_uint(m, "ms", &sleep_ms, &err);
        if (rc == 0 && sleep_ms > DV_MAX_SLEEP_MS) {
            rc = dv_errorf(&err, DV_EINVAL, "sleep: ms must be <= %d",
                           DV_MAX_SLEEP_MS);
        }
    }
    if (rc) {
        wk_send_failed(self, job, attempt, rc, err.text);
        return;
    }
    task_t *t = task_new(self, job, attempt, train || evaluate);
    if (train) {
        rc = parse_train(m, t, &err);
        if (rc) {
            wk_send_failed(self, job, attempt, rc, err.text);
            wk_task_end(self, t);
            return;
        }
        wk_task_go(self, t);
        return;
    }
    if (sleep && wk_gives_back(self)) {
        wk_give_back(self, t);
        return;
    }
    if (sleep) {
        const dv_frame_t *payload = dv_msg_frame(m, 1);
        size_t len = payload ? payload->len : 0;
        t->sleep = true;
        t->sleep_ms = sleep_ms;
        t->raw = dv_try_malloc(len ? len : 1, 1);
        t->raw_rows = len;
        t->work.data = t;
        if (t->raw && len) {
            memcpy(t->raw, payload->data, len);
        }
        if (!t->raw || dv_pool_queue(self->pool, &t->work, wk_work_sleep,
                                     wk_after_sleep)) {
            wk_send_failed(self, job, attempt, DV_ENOMEM,
                           "cannot start the job");
            wk_task_end(self, t);
        }
        return;
    }
    t->evaluate = evaluate;
    rc = parse_infer(m, t, in, &err);
    if (rc) {
        wk_send_failed(self, job, attempt, rc, err.text);
        wk_task_end(self, t);
        return;
    }
    wk_task_go(self, t);
}
