// dv_worker_cache — the models and data sets a worker holds: LRU caches
// within their memory budgets, fetches from the broker (checked against
// the SHA-256 the job names), loads on the pool; a task starts once what
// it needs is here (wk_task_go). See dv_worker_int.h.
#include "dv_worker_int.h"

// ------------------------------------------------------------ model cache

cached_t *
wk_cache_find(cached_t *list, const char *key)
{
    for (cached_t *c = list; c; c = c->next) {
        if (strcmp(c->key, key) == 0) {
            return c;
        }
    }
    return NULL;
}

void
wk_cached_free(cached_t *c)
{
    dv_model_destroy(&c->model);
    free(c->data);
    free(c);
}

// Evict idle entries of one cache (models or data sets), least recently
// used first, while over its budget.
static void
trim_list(cached_t **list, size_t *bytes, size_t budget, const char *what)
{
    while (*bytes > budget) {
        cached_t **victim = NULL;
        for (cached_t **p = list; *p; p = &(*p)->next) {
            if ((*p)->refs == 0 && (!victim || (*p)->used < (*victim)->used)) {
                victim = p;
            }
        }
        if (!victim) {
            return; // everything is in use: over budget until tasks end
        }
        cached_t *c = *victim;
        *victim = c->next;
        *bytes -= c->bytes;
        dv_log(DV_LOG_INFO, "worker", "%s %s evicted (cache over %zu MiB)",
               what, c->key, budget >> 20);
        wk_cached_free(c);
    }
}

void
wk_cache_trim(dv_worker_t *self)
{
    trim_list(&self->cache, &self->cached_bytes, self->model_budget, "model");
    trim_list(&self->dcache, &self->data_bytes, self->data_budget, "data set");
}

// The model for key arrived (c) or could not be had (c NULL, code/text):
// start or fail every task waiting for it.
static void
release_waiting(
    dv_worker_t *self, const char *key, cached_t *c, int code, const char *text)
{
    task_t **p = &self->waiting;
    while (*p) {
        task_t *t = *p;
        if (strcmp(t->key, key) != 0) {
            p = &t->next;
            continue;
        }
        *p = t->next;
        if (c && memcmp(c->sha256, t->sha256, DV_SHA256_BYTES) == 0) {
            wk_task_start(self, t, c);
        } else {
            wk_send_failed(self, t->job, t->attempt, c ? DV_ECHECKSUM : code,
                           c ? "the model file's checksum is not the one the "
                               "job names"
                             : text);
            wk_task_end(self, t);
        }
    }
}

// Model files come in one frame of up to DV_MAX_FRAME_BYTES, held about
// twice while they load (the frame, read where it arrived, and the decoded
// model).
// Every task that waits for a model used to fetch it at once, and preloads
// (a new version, an alias moved) added more: up to the broker's 64
// fetches a worker, tens of GiB. Now fetches wait their turn (held), oldest
// first, and one goes when
// - fewer than DV_WORKER_MODEL_FETCHES are out (what loads at once), and
// - its file, which the run names (1.9), fits --model-memory beside the
//   models cached (in use or idle: idle ones are evicted to make room) and
//   the fetches out; else it waits for running tasks to let theirs go
//   (wk_task_end). A model larger than the whole budget is never fetched
//   (wk_task_go fails its job DV_ENOMEM). From a broker that does not say
//   sizes, only the count holds.
// Tasks waiting for a model hold none, so they cannot hold each other up.
static size_t
model_fetches_out(const dv_worker_t *self, uint64_t *bytes)
{
    size_t n = 0;
    *bytes = 0;
    for (const fetch_t *f = self->fetches; f; f = f->next) {
        if (!f->dataset && !f->held) {
            n++;
            *bytes += f->total;
        }
    }
    return n;
}

static void
send_model_fetch(dv_worker_t *self, fetch_t *f)
{
    f->held = false;
    if (f->total) {
        dv_log(DV_LOG_INFO, "worker", "fetching model %s (%" PRIu64 " bytes)",
               f->key, f->total);
    } else {
        dv_log(DV_LOG_INFO, "worker", "fetching model %s", f->key);
    }
    wk_send_fetch(self, f);
}

// Send the held model fetches whose turn it is (the list is newest
// first). Called when a fetch is asked for or ends and when a task ends.
void
wk_model_admit(dv_worker_t *self)
{
    for (;;) {
        uint64_t fetching = 0;
        if (model_fetches_out(self, &fetching) >= DV_WORKER_MODEL_FETCHES) {
            return;
        }
        fetch_t *oldest = NULL;
        for (fetch_t *f = self->fetches; f; f = f->next) {
            oldest = f->held ? f : oldest;
        }
        if (!oldest) {
            return;
        }
        uint64_t need = fetching + oldest->total;
        if (oldest->total && need <= self->model_budget) { // idle ones go
            trim_list(&self->cache, &self->cached_bytes,
                      (size_t)(self->model_budget - need), "model");
        }
        if (oldest->total && self->cached_bytes + need > self->model_budget) {
            return; // until running tasks let theirs go
        }
        send_model_fetch(self, oldest);
    }
}

void
wk_start_fetch(dv_worker_t *self, const task_t *t)
{
    for (fetch_t *f = self->fetches; f; f = f->next) {
        if (strcmp(f->key, t->key) == 0) {
            return; // already on its way
        }
    }
    fetch_t *f = dv_calloc(1, sizeof *f);
    f->rid = ++self->next_rid;
    snprintf(f->key, sizeof f->key, "%s", t->key);
    snprintf(f->name, sizeof f->name, "%s", t->name);
    f->version = t->version;
    f->total = t->model_bytes;
    f->held = true;
    f->next = self->fetches;
    self->fetches = f;
    wk_model_admit(self);
}

static fetch_t *
find_fetch(dv_worker_t *self, uint64_t rid)
{
    for (fetch_t *f = self->fetches; f; f = f->next) {
        if (f->rid == rid) {
            return f;
        }
    }
    return NULL;
}

static void
drop_fetch(dv_worker_t *self, fetch_t *f)
{
    for (fetch_t **p = &self->fetches; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            break;
        }
    }
    bool model = !f->dataset;
    free(f->buf);
    free(f);
    if (model) {
        wk_model_admit(self);
    }
}

// A model file being verified and decoded on the pool (a large model takes
// long enough to starve heartbeats if the loop thread did it).
typedef struct {
    dv_work_t work;                  // pool request
    dv_worker_t *owner;              // the worker
    fetch_t *fetch;                  // what it answers (owned)
    inbuf_t *frame;                  // the model_data frame (a ref) ...
    const uint8_t *file;             // ... holding the .drvm bytes
    size_t len;                      //
    uint8_t sha256[DV_SHA256_BYTES]; // the broker's checksum
    dv_model_t *model;               // result
    int rc;                          //
    dv_error_t err;                  //
} load_t;

static void
work_load(dv_work_t *req)
{
    load_t *l = req->data;
    uint8_t got[DV_SHA256_BYTES];
    dv_sha256(l->file, l->len, got);
    if (memcmp(got, l->sha256, sizeof got) != 0) {
        l->rc = dv_errorf(&l->err, DV_ECHECKSUM,
                          "model %s: the file's SHA-256 does not match the "
                          "broker's (damaged in transit)",
                          l->fetch->key);
        return;
    }
    l->rc = dv_model_decode(&l->model, l->file, l->len, &l->err);
}

static void
after_load(dv_work_t *req, int status)
{
    load_t *l = req->data;
    dv_worker_t *self = l->owner;
    if (status != 0 && l->rc == 0) {
        l->rc = dv_errorf(&l->err, DV_ECANCELED, "model load cancelled");
        dv_model_destroy(&l->model);
    }
    cached_t *c = NULL;
    if (l->rc == 0) {
        c = dv_calloc(1, sizeof *c);
        snprintf(c->key, sizeof c->key, "%s", l->fetch->key);
        memcpy(c->sha256, l->sha256, sizeof c->sha256);
        c->model = l->model;
        c->bytes = l->len;
        c->used = ++self->tick;
        c->next = self->cache;
        self->cache = c;
        self->cached_bytes += c->bytes;
        dv_log(DV_LOG_INFO, "worker", "model %s loaded (%zu bytes)", c->key,
               c->bytes);
    } else {
        dv_log(DV_LOG_WARN, "worker",
               "model %s not loaded: %s (its jobs fail; check --model-memory "
               "and the file: drover local inspect)",
               l->fetch->key, l->err.text);
    }
    release_waiting(self, l->fetch->key, c, l->rc, l->err.text);
    if (c) {
        wk_cache_trim(self); // after its tasks took their refs
        if (self->watch) {
            wk_send_heartbeat(self); // the broker learns at once what we hold
        }
    }
    self->loading--;
    wk_inbuf_release(&l->frame); // before the next held fetch goes
    drop_fetch(self, l->fetch);
    free(l);
}

// The file frame is moved out of in and read where it arrived, on the
// pool: copying it (up to DV_MAX_FRAME_BYTES) held up the loop thread.
void
wk_on_model_data(dv_worker_t *self, const dv_msg_t *m, dv_wire_msg_t *in)
{
    fetch_t *f = find_fetch(self, dv_msg_rid(m));
    if (!f || f->loading) {
        return; // an answer to a fetch we gave up on, or a duplicate
    }
    dv_error_t err = {0};
    const uint8_t *sum = NULL;
    size_t sum_len = 0;
    const dv_frame_t *file = dv_msg_frame(m, 1);
    int rc = dv_msg_bin(m, "sha256", &sum, &sum_len, DV_SHA256_BYTES, &err);
    if (rc == 0 && !file) {
        rc = dv_errorf(&err, DV_EFORMAT, "model_data without a file frame");
    }
    if (rc == 0 && f->total && file->len != f->total) { // as admitted
        rc = dv_errorf(&err, DV_EFORMAT,
                       "model %s: the file is %zu bytes, the run said %" PRIu64,
                       f->key, file->len, f->total);
    }
    if (rc == 0) {
        load_t *l = dv_calloc(1, sizeof *l);
        l->owner = self;
        l->fetch = f;
        memcpy(l->sha256, sum, sizeof l->sha256);
        l->frame = wk_inbuf_take(in, 0); // moves the bytes: no view of in
        l->file = zmq_msg_data(&l->frame->msg);
        l->len = zmq_msg_size(&l->frame->msg);
        l->work.data = l;
        f->loading = true;
        self->loading++;
        if (dv_pool_queue(self->pool, &l->work, work_load, after_load) != 0) {
            self->loading--;
            f->loading = false;
            rc = dv_errorf(&err, DV_EIO, "cannot queue the model load");
            wk_inbuf_release(&l->frame);
            free(l);
        }
    }
    if (rc) {
        dv_log(DV_LOG_WARN, "worker",
               "model %s not loaded: %s (its jobs fail; check --model-memory "
               "and the file: drover local inspect)",
               f->key, err.text);
        release_waiting(self, f->key, NULL, rc, err.text);
        drop_fetch(self, f);
    }
}

// ------------------------------------------------------------ data sets
// A train or evaluate job on a stored data set names it; the CSV comes
// from the data cache or is fetched from the broker in chunks
// (fetch_dataset / dataset_data, one chunk in flight), checked against the
// SHA-256 the job names on the pool, then kept (LRU, --data-memory) for the
// next job on it.
//
// --data-memory bounds every data set byte the worker holds: cached ones
// (in use or idle) and those on their way, which count in full from the
// moment their fetch starts (the first chunk allocates the whole file). A
// task whose data sets are all cached starts at once. The others wait in
// waiting_data, first come first served, and only the first of them may
// fetch: its fetches start when its missing bytes fit beside what tasks use
// and fetches bring (idle entries are evicted to make room), else it waits
// for running tasks to let theirs go (wk_task_end). Only that first task
// holds data sets while it waits, so waiting tasks cannot hold each other
// up; a task needing more than the whole budget fails at once (DV_ENOMEM,
// retryable: a worker with more memory may take it).

// Bytes of the data set fetches in flight.
static uint64_t
data_fetching(const dv_worker_t *self)
{
    uint64_t n = 0;
    for (const fetch_t *f = self->fetches; f; f = f->next) {
        n += f->dataset ? f->total : 0;
    }
    return n;
}

static bool
dataset_on_its_way(const dv_worker_t *self, const char *key)
{
    for (const fetch_t *f = self->fetches; f; f = f->next) {
        if (f->dataset && strcmp(f->key, key) == 0) {
            return true;
        }
    }
    return false;
}

// The cache entry ref r names, when it is here (checksum and all).
static cached_t *
dataset_here(const dv_worker_t *self, const dsref_t *r)
{
    cached_t *d = wk_cache_find(self->dcache, r->key);
    return d && memcmp(d->sha256, r->sha256, DV_SHA256_BYTES) == 0 ? d : NULL;
}

// ds[1] names the same data set as ds[0]: one entry, one fetch serve both.
static bool
same_as_first(const task_t *t, size_t i)
{
    return i == 1 && strcmp(t->tr->ds[0].key, t->tr->ds[1].key) == 0;
}

// Bytes of every data set t names (each once).
static uint64_t
data_needed(const task_t *t)
{
    uint64_t n = 0;
    for (size_t i = 0; t->tr && i < 2; i++) {
        n += t->tr->ds[i].key[0] && !same_as_first(t, i) ? t->tr->ds[i].bytes
                                                         : 0;
    }
    return n;
}

// Every data set t names is here (or it names none).
static bool
data_all_here(const dv_worker_t *self, const task_t *t)
{
    for (size_t i = 0; t->tr && i < 2; i++) {
        const dsref_t *r = &t->tr->ds[i];
        if (r->key[0] && !r->entry && !dataset_here(self, r)) {
            return false;
        }
    }
    return true;
}

// Take a ref on each data set of t that is here; the bytes of those
// missing and not on their way (each once).
static uint64_t
data_pin(dv_worker_t *self, task_t *t)
{
    uint64_t missing = 0;
    for (size_t i = 0; t->tr && i < 2; i++) {
        dsref_t *r = &t->tr->ds[i];
        if (!r->key[0] || r->entry) {
            continue;
        }
        cached_t *d = dataset_here(self, r);
        if (d) {
            r->entry = d;
            d->refs++;
            d->used = ++self->tick;
        } else if (!dataset_on_its_way(self, r->key) && !same_as_first(t, i)) {
            missing += r->bytes;
        }
    }
    return missing;
}

static void
start_dataset_fetch(dv_worker_t *self, const dsref_t *r)
{
    if (dataset_on_its_way(self, r->key)) {
        return;
    }
    fetch_t *f = dv_calloc(1, sizeof *f);
    f->rid = ++self->next_rid;
    f->dataset = true;
    snprintf(f->key, sizeof f->key, "%s", r->key);
    snprintf(f->name, sizeof f->name, "%s", r->name);
    f->version = r->version;
    memcpy(f->sha256, r->sha256, sizeof f->sha256);
    f->total = r->bytes;
    f->next = self->fetches;
    self->fetches = f;
    dv_log(DV_LOG_INFO, "worker", "fetching data set %s (%" PRIu64 " bytes)",
           f->key, f->total);
    wk_send_fetch(self, f);
}

static void go_after_data(dv_worker_t *self, task_t *t);

// Move the tasks waiting for data sets along, first come first served:
// the first one takes what is here, then starts its fetches when they fit
// the budget (see above). Called when a task arrives or ends and when a
// fetch ends; not re-entered (a task that ends in here calls it, and the
// loop here goes on).
void
wk_data_admit(dv_worker_t *self)
{
    if (self->admitting) {
        return;
    }
    self->admitting = true;
    task_t *t;
    while ((t = self->waiting_data) != NULL) {
        uint64_t missing = data_pin(self, t);
        if (data_all_here(self, t)) {
            self->waiting_data = t->next;
            t->next = NULL;
            go_after_data(self, t);
            continue;
        }
        if (missing == 0) {
            break; // its fetches are on their way
        }
        uint64_t fetching = data_fetching(self);
        if (fetching + missing <= self->data_budget) { // idle entries go
            trim_list(&self->dcache, &self->data_bytes,
                      (size_t)(self->data_budget - fetching - missing),
                      "data set");
        }
        if (self->data_bytes + fetching + missing > self->data_budget) {
            break; // until running tasks let theirs go
        }
        for (size_t i = 0; i < 2; i++) {
            const dsref_t *r = &t->tr->ds[i];
            if (r->key[0] && !r->entry) {
                start_dataset_fetch(self, r);
            }
        }
        break;
    }
    self->admitting = false;
}

// The fetch of key ended (c: it arrived and is cached) or failed
// (code/text): the tasks waiting for it fail when it did not come, or
// came other than they name; the others move along.
static void
release_waiting_data(
    dv_worker_t *self, const char *key, cached_t *c, int code, const char *text)
{
    task_t *failed = NULL;
    task_t **p = &self->waiting_data;
    while (*p) { // unlinked first: ending a task moves the queue along
        task_t *t = *p;
        bool hit = false;
        for (size_t i = 0; i < 2; i++) {
            const dsref_t *r = &t->tr->ds[i];
            hit |= r->key[0] && !r->entry && strcmp(r->key, key) == 0 &&
                   (!c || memcmp(c->sha256, r->sha256, DV_SHA256_BYTES) != 0);
        }
        if (!hit) {
            p = &t->next;
            continue;
        }
        *p = t->next;
        t->next = failed;
        failed = t;
    }
    while (failed) {
        task_t *t = failed;
        failed = t->next;
        t->next = NULL;
        wk_send_failed(self, t->job, t->attempt, c ? DV_ECHECKSUM : code,
                       c ? "the data set's checksum is not the one the job "
                           "names"
                         : text);
        wk_task_end(self, t);
    }
    wk_data_admit(self);
}

// A complete data set being checked against its SHA-256 on the pool.
typedef struct {
    dv_work_t work;     // pool request
    dv_worker_t *owner; //
    fetch_t *fetch;     // what it completes
    int rc;             //
    dv_error_t err;     //
} dsload_t;

static void
work_dsload(dv_work_t *req)
{
    dsload_t *l = req->data;
    uint8_t got[DV_SHA256_BYTES];
    dv_sha256(l->fetch->buf, (size_t)l->fetch->total, got);
    if (memcmp(got, l->fetch->sha256, sizeof got) != 0) {
        l->rc = dv_errorf(&l->err, DV_ECHECKSUM,
                          "data set %s: the bytes' SHA-256 does not match "
                          "the job's (changed or damaged in transit)",
                          l->fetch->key);
    }
}

static void
after_dsload(dv_work_t *req, int status)
{
    dsload_t *l = req->data;
    dv_worker_t *self = l->owner;
    fetch_t *f = l->fetch;
    if (status != 0 && l->rc == 0) {
        l->rc = dv_errorf(&l->err, DV_ECANCELED, "data set load cancelled");
    }
    cached_t *c = NULL;
    if (l->rc == 0) {
        c = dv_calloc(1, sizeof *c);
        snprintf(c->key, sizeof c->key, "%s", f->key);
        memcpy(c->sha256, f->sha256, sizeof c->sha256);
        c->data = f->buf; // moves
        f->buf = NULL;
        c->bytes = (size_t)f->total;
        c->used = ++self->tick;
        c->next = self->dcache; // first: found before an older namesake
        self->dcache = c;
        self->data_bytes += c->bytes;
        dv_log(DV_LOG_INFO, "worker", "data set %s cached (%zu bytes)", c->key,
               c->bytes);
    } else {
        dv_log(
            DV_LOG_WARN, "worker",
            "data set %s not loaded: %s (its jobs fail; check --data-memory)",
            f->key, l->err.text);
    }
    char key[KEY_BYTES];
    snprintf(key, sizeof key, "%s", f->key);
    self->loading--;
    drop_fetch(self, f); // its bytes are the cache's now (or gone)
    release_waiting_data(self, key, c, l->rc, l->err.text);
    wk_cache_trim(self); // after its tasks took their refs
    free(l);
}

// dataset_data {name, version, sha256, bytes, offset} + frame 1: the next
// chunk of a data set we fetch.
void
wk_on_dataset_data(dv_worker_t *self, const dv_msg_t *m)
{
    fetch_t *f = find_fetch(self, dv_msg_rid(m));
    if (!f || !f->dataset || f->loading) {
        return; // an answer to a fetch we gave up on
    }
    dv_error_t err = {0};
    const uint8_t *sum = NULL;
    size_t sum_len = 0;
    uint64_t bytes = 0, offset = 0;
    const dv_frame_t *chunk = dv_msg_frame(m, 1);
    int rc = dv_msg_bin(m, "sha256", &sum, &sum_len, DV_SHA256_BYTES, &err);
    if (rc == 0) {
        rc = dv_msg_uint(m, "bytes", &bytes, &err);
    }
    if (rc == 0) {
        rc = dv_msg_uint(m, "offset", &offset, &err);
    }
    if (rc == 0 && offset != f->got) {
        return; // a duplicate of a chunk we have (resent on reconnect)
    }
    if (rc == 0 &&
        (bytes != f->total || memcmp(sum, f->sha256, DV_SHA256_BYTES) != 0)) {
        rc = dv_errorf(&err, DV_ECHECKSUM,
                       "data set %s is not the one the job names (changed "
                       "since it was submitted?)",
                       f->key);
    }
    if (rc == 0 && (!chunk || (chunk->len == 0 && f->total > 0) ||
                    chunk->len > f->total - f->got)) {
        rc = dv_errorf(&err, DV_EFORMAT,
                       "dataset_data: a chunk of %zu bytes at %" PRIu64
                       " does not fit a data set of %" PRIu64,
                       chunk ? chunk->len : 0, offset, f->total);
    }
    if (rc == 0 && !f->buf) {
        f->buf = dv_try_malloc(f->total ? (size_t)f->total : 1, 1);
        if (!f->buf) {
            rc = dv_errorf(&err, DV_ENOMEM,
                           "data set %s: no memory for %" PRIu64 " bytes",
                           f->key, f->total);
        }
    }
    if (rc == 0) {
        if (chunk->len) {
            memcpy(f->buf + f->got, chunk->data, chunk->len);
        }
        f->got += chunk->len;
        if (f->got < f->total) {
            wk_send_fetch(self, f); // the next chunk
            return;
        }
        dsload_t *l = dv_calloc(1, sizeof *l);
        l->owner = self;
        l->fetch = f;
        l->work.data = l;
        f->loading = true;
        self->loading++;
        if (dv_pool_queue(self->pool, &l->work, work_dsload, after_dsload) ==
            0) {
            return;
        }
        self->loading--;
        f->loading = false;
        free(l);
        rc = dv_errorf(&err, DV_EIO, "cannot queue the data set check");
    }
    dv_log(DV_LOG_WARN, "worker",
           "data set %s not loaded: %s (its jobs fail; check --data-memory)",
           f->key, err.text);
    char key[KEY_BYTES];
    snprintf(key, sizeof key, "%s", f->key);
    drop_fetch(self, f);
    release_waiting_data(self, key, NULL, rc, err.text);
}

// Start t, or park it until what it needs is here: its data set (train,
// evaluate on a stored one), then its model (infer, evaluate).
void
wk_task_go(dv_worker_t *self, task_t *t)
{
    if (wk_gives_back(self)) { // sent before the broker read our bye
        wk_give_back(self, t);
        return;
    }
    if (t->model_bytes > self->model_budget) {
        char text[DV_ERROR_TEXT_MAX];
        snprintf(text, sizeof text,
                 "the model file takes %" PRIu64 " bytes, more than this "
                 "worker keeps (--model-memory %zu MiB)",
                 t->model_bytes, self->model_budget >> 20);
        wk_send_failed(self, t->job, t->attempt, DV_ENOMEM, text);
        wk_task_end(self, t);
        return;
    }
    uint64_t need = data_needed(t);
    if (need > self->data_budget) {
        char text[DV_ERROR_TEXT_MAX];
        snprintf(text, sizeof text,
                 "the job's data sets take %" PRIu64 " bytes, more than "
                 "this worker keeps (--data-memory %zu MiB)",
                 need, self->data_budget >> 20);
        wk_send_failed(self, t->job, t->attempt, DV_ENOMEM, text);
        wk_task_end(self, t);
        return;
    }
    if (need && !data_all_here(self, t)) { // waits its turn
        task_t **p = &self->waiting_data;
        while (*p) {
            p = &(*p)->next;
        }
        t->next = NULL;
        *p = t;
        wk_data_admit(self);
        return;
    }
    data_pin(self, t);
    go_after_data(self, t);
}

// t has its data sets (or needs none): train, or its model next.
static void
go_after_data(dv_worker_t *self, task_t *t)
{
    if (t->train) {
        t->work.data = t;
        if (dv_pool_queue(self->pool, &t->work, wk_work_train,
                          wk_after_train)) {
            wk_send_failed(self, t->job, t->attempt, DV_EIO,
                           "cannot start the job");
            wk_task_end(self, t);
        }
        return;
    }
    cached_t *c = wk_cache_find(self->cache, t->key);
    if (c && memcmp(c->sha256, t->sha256, DV_SHA256_BYTES) == 0) {
        wk_task_start(self, t, c);
        return;
    }
    t->next = self->waiting;
    self->waiting = t;
    wk_start_fetch(self, t);
}

// The broker's `error` answering one of our fetches: its tasks fail.
bool
wk_fetch_failed(dv_worker_t *self, uint64_t rid, int code, const char *text)
{
    fetch_t *f = rid ? find_fetch(self, rid) : NULL;
    if (!f || f->loading) {
        return false;
    }
    if (f->dataset) {
        char key[KEY_BYTES];
        snprintf(key, sizeof key, "%s", f->key);
        drop_fetch(self, f);
        release_waiting_data(self, key, NULL, code, text);
        return true;
    }
    release_waiting(self, f->key, NULL, code, text);
    drop_fetch(self, f);
    return true;
}
