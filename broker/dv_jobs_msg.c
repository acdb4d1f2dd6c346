// dv_jobs_msg — jobs from clients: submit, and what clients ask of jobs.
//
// Owns: submit (checks, the job record, acceptance into dv_sched or a spill),
// job_list, job_get, job_cancel, workers, status; a job's store record
// (dv_jobs_msg_encode/dv_jobs_msg_decode).
//
// The model and its references: dv_broker_int.h and dv_broker.c.
#include "dv_jobs_msg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <zmq.h>

#include "dv_broker_int.h"
#include "dv_catalog.h"
#include "dv_commit.h"
#include "dv_datasets.h"
#include "dv_dead.h"
#include "dv_idem.h"
#include "dv_le.h"
#include "dv_limits.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_models_msg.h"
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
#define JOB_FORMAT DV_REC_JOB_FORMAT
#define JOB_HEAD   DV_REC_JOB_HEAD

void
dv_jobs_msg_spec_each(const job_t *j, dv_jobs_msg_spec_field_fn *fn, void *arg)
{
    size_t nf = dv_le_get16(j->payload);
    size_t sl = dv_le_get32(j->payload + 2), off = 0;
    const char *spec = (const char *)j->payload + 6;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    for (size_t f = 0; f < nf; f++) {
        size_t start = off;
        if (msgpack_unpack_next(&up, spec, sl, &off) !=
                MSGPACK_UNPACK_SUCCESS ||
            up.data.type != MSGPACK_OBJECT_STR) {
            break;
        }
        char key[32] = ""; // spec keys are short words ("dataset", ...)
        if (up.data.via.str.size < sizeof key &&
            !memchr(dv_msgpack_str_ptr(&up.data), 0, up.data.via.str.size)) {
            memcpy(key, dv_msgpack_str_ptr(&up.data), up.data.via.str.size);
            key[up.data.via.str.size] = '\0';
        }
        if (msgpack_unpack_next(&up, spec, sl, &off) !=
                MSGPACK_UNPACK_SUCCESS ||
            !fn(arg, key, &up.data, spec + start, off - start)) {
            break;
        }
    }
    msgpack_unpacked_destroy(&up);
}

// Where spec_dataset_key writes: key, size bytes.
typedef struct {
    char *key;
    size_t size;
} ds_key_t;

static bool
ds_key_field(void *arg,
             const char *key,
             const msgpack_object *value,
             const char *raw,
             size_t raw_len)
{
    (void)raw;
    (void)raw_len;
    const ds_key_t *out = arg;
    const msgpack_object *name = dv_msgpack_get(value, "name");
    uint64_t version = 0;
    if (strcmp(key, "dataset") == 0 && name &&
        name->type == MSGPACK_OBJECT_STR &&
        dv_msgpack_uint(dv_msgpack_get(value, "version"), &version)) {
        snprintf(out->key, out->size, "ds:%.*s@%llu", (int)name->via.str.size,
                 name->via.str.ptr, (unsigned long long)version);
        return false;
    }
    return true;
}

// A train job's stored data set as an affinity key, "ds:NAME@VERSION"
// (key[0] stays 0 when it carries its CSV): read from its spec.
static void
spec_dataset_key(const job_t *j, char *key, size_t size)
{
    ds_key_t out = {key, size};
    dv_jobs_msg_spec_each(j, ds_key_field, &out);
}

// "NAME@VERSION" into key (what snprintf "%s@%u" writes, without its
// format parsing: once per submit, ~1% of the broker's CPU on one-row
// requests).
static void
model_key(char *key, size_t size, const char *name, unsigned version)
{
    char digits[12];
    size_t nd = 0;
    do {
        digits[nd++] = (char)('0' + version % 10);
        version /= 10;
    } while (version);
    size_t n = strlen(name);
    dv_assert(n + 1 + nd < size); // names are checked at submit
    memcpy(key, name, n);
    key[n++] = '@';
    while (nd) {
        key[n++] = digits[--nd];
    }
    key[n] = '\0';
}

// Schedule an accepted job. A durable one whose record is committed
// (may_spill) goes to the store only when its queue is deep: then j is
// freed and true returned.
bool
dv_jobs_msg_schedule(dv_broker_t *self, job_t *j, bool may_spill)
{
    if (may_spill && dv_spill_job(self, j, false)) {
        return true;
    }
    char key[2 * DV_MAX_WIRE_NAME + 8] = "";
    if (USES_MODEL(j)) {
        model_key(key, sizeof key, j->model, j->model_version);
    } else if (j->spec) {
        spec_dataset_key(j, key, sizeof key); // "ds:NAME@V", or ""
    }
    dv_sched_submit_prio(self->sched, j->id, j->queue, key, j->max_attempts,
                         j->priority);
    if (strcmp(j->kind, "train") == 0) {
        dv_sched_set_heavy(self->sched, j->id);
    }
    if (j->deadline_unix) {
        uint64_t now = dv_broker_unix_ms_now();
        uint64_t in = j->deadline_unix > now ? j->deadline_unix - now : 0;
        dv_timers_add(self, uv_now(&self->loop) + in, j->id, T_DEADLINE, 0);
    }
    return false;
}

// Gathered acceptances: per connection, [rid, job] pairs.
typedef struct {
    route_key_t key; // first: a gather_t slot
    uint64_t *pairs; // rid, job, rid, job, ...
    size_t n, cap;   // pairs held, room
} agroup_t;

// Pairs in one accepted_many: ~20 header bytes each, well inside
// DV_MAX_HEADER_BYTES.
#define ACCEPTS_MAX_N 1024

bool
dv_jobs_msg_accepts_begin(dv_broker_t *self)
{
    if (self->gather_acc) {
        return false;
    }
    self->gather_acc = dv_broker_gather_new(sizeof(agroup_t));
    return true;
}

static void
agroup_send(dv_broker_t *self, agroup_t *g)
{
    if (!g->n) {
        return;
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_ACCEPTED_MANY, 0);
    dv_msgw_key(w, "accepted");
    dv_msgw_v_array(w, g->n);
    for (size_t i = 0; i < g->n; i++) {
        dv_msgw_v_array(w, 2);
        dv_msgw_v_uint(w, g->pairs[2 * i]);
        dv_msgw_v_uint(w, g->pairs[2 * i + 1]);
    }
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_broker_client_send(self, g->key.route, g->key.route_len, h, len, NULL,
                          0);
    dv_msgw_destroy(&w);
    g->n = 0;
}

static void
agroup_flush(dv_broker_t *self, void *slot)
{
    agroup_t *g = slot;
    agroup_send(self, g);
    free(g->pairs);
}

void
dv_jobs_msg_accepts_flush(dv_broker_t *self)
{
    dv_broker_gather_end(self, &self->gather_acc, agroup_flush);
}

static void
accepts_add(dv_broker_t *self, const job_t *j)
{
    bool added;
    agroup_t *g =
        dv_broker_gather_slot(self->gather_acc, j->route, j->route_len, &added);
    if (g->n == ACCEPTS_MAX_N) {
        agroup_send(self, g);
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 64;
        g->pairs = dv_realloc(g->pairs, 2 * g->cap * sizeof(uint64_t));
    }
    g->pairs[2 * g->n] = j->rid;
    g->pairs[2 * g->n + 1] = j->id;
    g->n++;
}

// Tell its submitter, then schedule it (committed, when there is a store).
void
dv_jobs_msg_accept(dv_broker_t *self, job_t *j)
{
    dv_monitor_submitted(self->monitor, j->queue, j->kind);
    dv_log(DV_LOG_DEBUG, "jobs", "job %llu submitted: queue %s, kind %s%s%s",
           (unsigned long long)j->id, j->queue, j->kind,
           USES_MODEL(j) ? ", model " : "", USES_MODEL(j) ? j->model : "");
    if (self->gather_acc && j->from_many && j->route_len) {
        accepts_add(self, j);
        dv_jobs_msg_schedule(self, j, self->store != NULL);
        return;
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_ACCEPTED, j->rid);
    dv_msgw_uint(w, "job", j->id);
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_broker_client_send(self, j->route, j->route_len, h, len, NULL, 0);
    dv_msgw_destroy(&w);
    dv_jobs_msg_schedule(self, j, self->store != NULL);
}

uint8_t *
dv_jobs_msg_encode(const job_t *j, size_t *len)
{

    size_t qlen = strlen(j->queue), mlen = strlen(j->model);
    *len = JOB_HEAD + qlen + mlen + j->payload_len;
    uint8_t *p = dv_malloc(*len + DV_STORE_SPARE);
    memset(p, 0, JOB_HEAD);
    p[0] = JOB_FORMAT;
    p[1] = (uint8_t)dv_rec_kind_code(j->kind);
    p[2] = j->spec ? 1 : 0; // flags (0 in older records)
    dv_le_put32(p + 4, j->max_attempts);
    dv_le_put32(p + 8, j->model_version);
    dv_le_put32(p + 12, j->rows);
    dv_le_put32(p + 16, j->cols);
    dv_le_put32(p + 20, (uint32_t)qlen);
    dv_le_put32(p + 24, (uint32_t)mlen);
    dv_le_put64(p + 28, j->payload_len);
    memcpy(p + 36, j->model_sha, 32);
    dv_le_put32(p + 68, (uint32_t)j->priority);
    dv_le_put32(p + 72, j->timeout_ms);
    dv_le_put32(p + 76, j->backoff_ms);
    dv_le_put32(p + 80, j->sleep_ms);
    dv_le_put64(p + 84, j->submit_unix);
    dv_le_put64(p + 92, j->deadline_unix);
    memcpy(p + JOB_HEAD, j->queue, qlen);
    memcpy(p + JOB_HEAD + qlen, j->model, mlen);
    if (j->payload_len) {
        memcpy(p + JOB_HEAD + qlen + mlen, j->payload, j->payload_len);
    }
    return p;
}

// A job from its store record (no submitter connection: its result is
// kept for result_get). NULL with the reason on a bad record.
job_t *
dv_jobs_msg_decode(uint64_t id,
                   const uint8_t *p,
                   size_t len,
                   const uint8_t *route,
                   size_t route_len,
                   dv_error_t *err)
{
    dv_rec_job_t r;
    if (dv_rec_job_decode(&r, id, p, len, err) != 0) {
        return NULL;
    }
    job_t *j = dv_broker_job_alloc(NULL, route, route_len, r.queue, r.model,
                                   r.payload, r.payload_len);
    if (!j) {
        dv_errorf(err, DV_ENOMEM, "job %llu: no memory",
                  (unsigned long long)id);
        return NULL;
    }
    j->id = id;
    j->kind = dv_rec_kind_name(r.kind);
    j->spec = r.spec;
    j->backoff_ms = DEFAULT_BACKOFF_MS;
    if (r.has_sched) {
        j->priority = r.priority;
        j->timeout_ms = r.timeout_ms;
        j->backoff_ms = r.backoff_ms;
        j->sleep_ms = r.sleep_ms;
        j->submit_unix = r.submit_unix;
        j->deadline_unix = r.deadline_unix;
    }
    j->max_attempts = r.max_attempts;

    j->model_version = r.model_version;
    j->rows = r.rows;
    j->cols = r.cols;
    memcpy(j->model_sha, r.model_sha, 32);
    if (j->max_attempts == 0 || j->max_attempts > DV_MAX_ATTEMPTS) {
        j->max_attempts = DEFAULT_MAX_ATTEMPTS;
    }
    return j;
}

// A train job's checked fields into its spec (what its worker reads).
static void
write_train_fields(dv_msgw_t *spec,
                   const dv_hyper_t *hp,
                   const char *target,
                   const char *task,
                   uint64_t created,
                   uint64_t ck_ms,
                   bool schema_change)
{
    dv_msgw_hyper(spec, "train", hp);
    if (target[0]) {
        dv_msgw_str(spec, "target", target);
    }
    if (task[0]) {
        dv_msgw_str(spec, "task", task);
    }
    dv_msgw_uint(spec, "created_unix", created);
    dv_msgw_uint(spec, "checkpoint_ms", ck_ms);
    if (schema_change) { // read back when the model is registered
        dv_msgw_key(spec, "schema_change");
        dv_msgw_v_bool(spec, true);
    }
}

// The payload of a train job, or of an evaluate job on a stored data set:
// field count (u16), spec length (u32), the spec's msgpack fields (train,
// target, task, created_unix for training; dataset {name, version, sha256,
// bytes} when ds), then the CSV the submit carried (none with ds); a train
// job's eval set goes as `eval_dataset` like `dataset`. Checks the training
// fields; sets name (the model to register). *out: caller frees.
static int
train_spec(const dv_msg_t *m,
           bool train,
           const dv_dataset_info_t *ds,
           const dv_dataset_info_t *eval,
           const dv_frame_t *csv,
           char name[DV_MAX_WIRE_NAME + 1],
           uint8_t **out,
           size_t *out_len,
           dv_error_t *err)
{
    dv_msgw_t *spec = dv_msgw_new(DV_MSG_RUN, 0);
    if (train) {
        dv_hyper_t hp;
        char target[DV_MAX_NAME_BYTES + 1] = "", task[32] = "";
        uint64_t created = 0, ck_ms = 0;
        bool schema_change = false;
        int rc;
        if ((rc = dv_msg_str(m, "model", name, DV_MAX_WIRE_NAME + 1, err)) !=
                0 ||
            (rc = dv_msg_hyper(m, "train", &hp, err)) != 0 ||
            (dv_msg_has(m, "target") &&
             (rc = dv_msg_str(m, "target", target, sizeof target, err)) != 0) ||
            (dv_msg_has(m, "task") &&
             (rc = dv_msg_str(m, "task", task, sizeof task, err)) != 0) ||
            (rc = dv_msg_uint_or(m, "created_unix",
                                 dv_broker_unix_ms_now() / 1000, &created,
                                 err)) != 0 ||
            (rc = dv_msg_uint_or(m, "checkpoint_ms", DEFAULT_CHECKPOINT_MS,
                                 &ck_ms, err)) != 0 ||
            (rc = dv_msg_bool_or(m, "schema_change", false, &schema_change,
                                 err)) != 0) {
            dv_msgw_destroy(&spec);
            return rc;
        }
        if (ck_ms > DV_MAX_DEADLINE_MS) {
            dv_msgw_destroy(&spec);
            return dv_errorf(err, DV_EINVAL,
                             "submit: checkpoint_ms must be <= %llu (0: none)",
                             (unsigned long long)DV_MAX_DEADLINE_MS);
        }
        if (!dv_catalog_name_valid(name)) {
            dv_msgw_destroy(&spec);
            return dv_errorf(err, DV_EINVAL,
                             "submit: model name '%s' must match "
                             "[A-Za-z0-9._-]+",
                             name);
        }
        if (task[0] && strcmp(task, "classification") != 0 &&
            strcmp(task, "regression") != 0) {
            dv_msgw_destroy(&spec);
            return dv_errorf(err, DV_EINVAL,
                             "submit: task '%s': classification or regression",
                             task);
        }
        write_train_fields(spec, &hp, target, task, created, ck_ms,
                           schema_change);
    }
    const dv_dataset_info_t *refs[2] = {ds, eval};
    static const char *keys[2] = {"dataset", "eval_dataset"};
    for (size_t i = 0; i < 2; i++) {
        if (refs[i]) {
            dv_msgw_key(spec, keys[i]);
            dv_msgw_v_map(spec, 4);
            dv_msgw_v_str(spec, "name");
            dv_msgw_v_str(spec, refs[i]->name);
            dv_msgw_v_str(spec, "version");
            dv_msgw_v_uint(spec, refs[i]->version);
            dv_msgw_v_str(spec, "sha256");
            dv_msgw_v_bin(spec, refs[i]->sha256, DV_SHA256_BYTES);
            dv_msgw_v_str(spec, "bytes");
            dv_msgw_v_uint(spec, refs[i]->bytes);
        }
    }
    size_t sl = 0, nf = 0;
    const uint8_t *body = dv_msgw_body(spec, &sl, &nf);
    size_t len = 6 + sl + csv->len;
    uint8_t *p = dv_try_malloc(len, 1);
    if (!p) {
        dv_msgw_destroy(&spec);
        return dv_errorf(err, DV_ENOMEM, "submit: no memory");
    }
    dv_le_put16(p, (uint16_t)nf);
    dv_le_put32(p + 2, (uint32_t)sl);
    memcpy(p + 6, body, sl);
    if (csv->len) {
        memcpy(p + 6 + sl, csv->data, csv->len);
    }
    dv_msgw_destroy(&spec);
    *out = p;
    *out_len = len;
    return 0;
}

// A submit's fields, read and checked before a job is made (submit_job's
// steps fill it in order).
typedef struct {
    char queue[DV_MAX_WIRE_NAME + 1];   // where it goes
    char kind[16];                      // as sent
    bool infer, sleep, train, evaluate; // which kind (else echo)
    bool memory_only;                   // durability "none"
    uint64_t max_attempts;              // 1 .. DV_MAX_ATTEMPTS
    int64_t priority;                   // -1000 .. 1000
    uint64_t deadline_ms;               // 0: none
    uint64_t timeout_ms;                // 0: none
    uint64_t backoff_ms;                // between attempts
    uint64_t sleep_ms;                  // a sleep job's length
    char key[DV_MAX_KEY_BYTES + 1];     // idempotency key ("": none)
    const dv_frame_t *payload;          // frame 1 (or none: empty)
    const dv_model_info_t *model;       // infer/evaluate: the version
    size_t rows, cols;                  // infer: the input's shape
} submit_t;

// Queue, kind, max_attempts and durability.
static int
submit_read_kind(const dv_msg_t *m, submit_t *s, dv_error_t *err)
{
    int rc;
    if ((rc = dv_msg_str(m, "queue", s->queue, sizeof s->queue, err)) != 0 ||
        (rc = dv_msg_str(m, "kind", s->kind, sizeof s->kind, err)) != 0 ||
        (rc = dv_msg_uint_or(m, "max_attempts", DEFAULT_MAX_ATTEMPTS,
                             &s->max_attempts, err)) != 0) {
        return rc;
    }
    char durability[16] = "commit";
    if (dv_msg_has(m, "durability") &&
        (rc = dv_msg_str(m, "durability", durability, sizeof durability,
                         err)) != 0) {
        return rc;
    }
    s->memory_only = strcmp(durability, "none") == 0;
    if (!s->memory_only && strcmp(durability, "commit") != 0) {
        return dv_errorf(err, DV_EINVAL,
                         "submit: durability '%s': commit or none", durability);
    }
    if (!dv_catalog_name_valid(s->queue)) {
        return dv_errorf(err, DV_EINVAL,
                         "submit: queue '%s' must match [A-Za-z0-9._-]+",
                         s->queue);
    }
    s->infer = strcmp(s->kind, "infer") == 0;
    s->sleep = strcmp(s->kind, "sleep") == 0;
    s->train = strcmp(s->kind, "train") == 0;
    s->evaluate = strcmp(s->kind, "evaluate") == 0;
    if (!s->infer && !s->sleep && !s->train && !s->evaluate &&
        strcmp(s->kind, "echo") != 0) {
        return dv_errorf(err, DV_EINVAL,
                         "submit: job kind '%s' is not supported by this "
                         "broker (echo, infer, evaluate, sleep, train)",
                         s->kind);
    }
    if (s->max_attempts < 1 || s->max_attempts > DV_MAX_ATTEMPTS) {
        return dv_errorf(err, DV_EINVAL, "submit: max_attempts must be 1..%d",
                         DV_MAX_ATTEMPTS);
    }
    return 0;
}

// Scheduling options (docs/SEMANTICS.md) and the idempotency key.
static int
submit_read_sched(const dv_msg_t *m, submit_t *s, dv_error_t *err)
{
    int rc;
    s->backoff_ms = DEFAULT_BACKOFF_MS;
    if ((rc = dv_msg_int_or(m, "priority", 0, &s->priority, err)) != 0 ||
        (rc = dv_msg_uint_or(m, "deadline_ms", 0, &s->deadline_ms, err)) != 0 ||
        (rc = dv_msg_uint_or(m, "timeout_ms", 0, &s->timeout_ms, err)) != 0 ||
        (rc = dv_msg_uint_or(m, "backoff_ms", DEFAULT_BACKOFF_MS,
                             &s->backoff_ms, err)) != 0 ||
        (s->sleep && (rc = dv_msg_uint(m, "ms", &s->sleep_ms, err)) != 0) ||
        (dv_msg_has(m, "idempotency_key") &&
         (rc = dv_msg_str(m, "idempotency_key", s->key, sizeof s->key, err)) !=
             0)) {
        return rc;
    }
    if (s->priority < DV_PRIORITY_MIN || s->priority > DV_PRIORITY_MAX) {
        return dv_errorf(err, DV_EINVAL, "submit: priority must be %d..%d",
                         DV_PRIORITY_MIN, DV_PRIORITY_MAX);
    }
    const struct { // the field that is out of range, and its bound
        const char *field;
        uint64_t value, max;
    } bounds[] = {
        {"deadline_ms", s->deadline_ms, DV_MAX_DEADLINE_MS},
        {"timeout_ms", s->timeout_ms, DV_MAX_DEADLINE_MS},
        {"backoff_ms", s->backoff_ms, BACKOFF_CAP_MS},
        {"ms (a sleep job's length)", s->sleep_ms, DV_MAX_SLEEP_MS},
    };
    for (size_t i = 0; i < sizeof bounds / sizeof *bounds; i++) {
        if (bounds[i].value > bounds[i].max) {
            return dv_errorf(err, DV_EINVAL,
                             "submit: %s must be <= %llu, not %llu",
                             bounds[i].field, (unsigned long long)bounds[i].max,
                             (unsigned long long)bounds[i].value);
        }
    }
    if (dv_msg_has(m, "idempotency_key") && !s->key[0]) {
        return dv_errorf(err, DV_EINVAL, "submit: empty idempotency_key");
    }
    return 0;
}

// The version a `model` reference serves now (dv_models_msg_resolve_serving);
// an infer job's input tensor is described first (its shape, its payload
// frame).
static int
submit_model(dv_broker_t *self, const dv_msg_t *m, submit_t *s, dv_error_t *err)
{
    char ref[2 * DV_MAX_WIRE_NAME];
    int rc = dv_msg_str(m, "model", ref, sizeof ref, err);
    if (rc == 0 && s->infer) {
        rc = dv_msg_tensor_desc(m, "input", DV_MAX_INFER_ROWS, &s->payload,
                                &s->rows, &s->cols, err);
    }
    if (rc) {
        return rc;
    }
    s->model = dv_models_msg_resolve_serving(self, ref, err);
    return s->model ? 0 : err ? err->code : DV_ENOMODEL;
}

// The payload, and the model an infer or evaluate job runs (an infer's
// input checked against it).
static int
submit_read_payload(dv_broker_t *self,
                    const dv_msg_t *m,
                    submit_t *s,
                    const dv_dataset_info_t *ds,
                    const dv_dataset_info_t *eval,
                    dv_error_t *err)
{
    static const dv_frame_t no_payload = {NULL, 0};
    s->payload = ds ? &no_payload : dv_msg_frame(m, 1);
    if (eval && !s->train) {
        return dv_errorf(err, DV_EINVAL,
                         "submit: only train jobs take an eval_dataset");
    }
    if (ds && !s->train && !s->evaluate) {
        return dv_errorf(err, DV_EINVAL,
                         "submit: only train and evaluate jobs take a data "
                         "set");
    }
    if (s->sleep && !s->payload) {
        s->payload = &no_payload;
    }
    if (!s->infer && !s->payload) {
        return dv_errorf(err, DV_EFORMAT,
                         "submit: an %s job needs its payload in frame 1",
                         s->kind);
    }
    if (!s->infer && !s->evaluate) {
        return 0;
    }
    int rc = submit_model(self, m, s, err); // evaluate: a model and a CSV
    if (rc || !s->infer) {                  // with its target
        return rc;
    }
    const dv_model_info_t *model = s->model;
    if (s->cols != model->features) {
        return dv_errorf(err, DV_ESHAPE,
                         "submit: model %s@%u takes %u features per row, "
                         "the input has %zu",
                         model->name, model->version, model->features, s->cols);
    }
    if (dv_frame_check(s->rows, model->outputs, "", NULL) == 0) {
        return 0; // (the name is formatted only for the error: per submit)
    }
    char what[2 * DV_MAX_WIRE_NAME];
    snprintf(what, sizeof what, "submit: the output of %s@%u", model->name,
             model->version);
    return dv_frame_check(s->rows, model->outputs, what, err);
}

// Backpressure and bounds: refuse at once, with the numbers, rather than
// queue without bound; the producer decides what to do. *who: the
// submitting key's index (0: none).
static int
submit_admit(dv_broker_t *self,
             const dv_wire_msg_t *in,
             const submit_t *s,
             uint16_t *who,
             dv_error_t *err)
{
    // Looked up, not created: only an accepted job creates a queue.
    const qbytes_t *qb = dv_broker_queue_find(self, s->queue);
    int rc = dv_broker_queue_may_create(self, s->queue, "submit", err);
    if (rc) {
        return rc;
    }
    // Waiting: scheduled, spilled, and accepted but not committed yet (a
    // count kept per queue: walking the uncommitted jobs on every submit
    // cost O(uncommitted) each, most of a group leader's time in bursts).
    size_t waiting = dv_sched_queue_waiting(self->sched, s->queue) +
                     (qb ? qb->spilled + qb->uncommitted : 0);
    if (waiting >= self->max_queued) {
        return dv_errorf(err, DV_EQUEUEFULL,
                         "queue '%s' has %zu jobs waiting, the limit is %llu "
                         "(--max-queued): retry later",
                         s->queue, waiting,
                         (unsigned long long)self->max_queued);
    }
    uint64_t held = qb ? qb->bytes : 0;
    if (held + s->payload->len > self->max_queued_bytes) {
        return dv_errorf(err, DV_EQUEUEFULL,
                         "queue '%s' holds %llu payload bytes; %zu more would "
                         "pass the limit of %llu (--max-queued-bytes): retry "
                         "later",
                         s->queue, (unsigned long long)held, s->payload->len,
                         (unsigned long long)self->max_queued_bytes);
    }
    if (zmq_msg_size((zmq_msg_t *)&in->route) > ROUTE_MAX - 1) {
        return dv_errorf(err, DV_EINVAL, "routing id too long");
    }
    // A filling disk stops new durable jobs while those held can still be
    // stored to the end (dv_disk.h); memory-only ones need no disk.
    if (!s->memory_only && self->disk &&
        (rc = dv_disk_admit(self->disk, s->payload->len, err)) != 0) {
        return rc;
    }
    // A key's unfinished jobs are bounded (--max-inflight): one producer
    // cannot take the whole broker.
    *who = self->current ? dv_broker_who_index(self, self->current->id) : 0;
    if (*who && self->whos[*who].inflight >= self->max_inflight) {
        return dv_errorf(err, DV_ELIMIT,
                         "submit: key '%s' has %llu unfinished jobs, the "
                         "limit is %llu (--max-inflight): wait for results",
                         self->whos[*who].id,
                         (unsigned long long)self->whos[*who].inflight,
                         (unsigned long long)self->max_inflight);
    }
    return 0;
}

// The job s describes, from in's sender (a train job's spec travels with
// its payload: train_spec). Returns 0 and *out, or DV_E*.
static int
submit_make_job(dv_broker_t *self,
                const dv_wire_msg_t *in,
                const dv_msg_t *m,
                const submit_t *s,
                const dv_dataset_info_t *ds,
                const dv_dataset_info_t *eval,
                job_t **out,
                dv_error_t *err)
{
    char train_name[DV_MAX_WIRE_NAME + 1] = "";
    bool spec_payload = s->train || (s->evaluate && ds);
    uint8_t *spec_bytes = NULL;
    size_t spec_len = 0;
    if (spec_payload) {
        int rc = train_spec(m, s->train, ds, eval, s->payload, train_name,
                            &spec_bytes, &spec_len, err);
        if (rc) {
            return rc;
        }
    }
    const dv_model_info_t *model = s->model;
    // A large frame 1 stays the message it came in (DV_ZEROCOPY_MIN_BYTES).
    zmq_msg_t *frame1 = in->n_payload ? (zmq_msg_t *)&in->payload[0] : NULL;
    bool keep = !spec_payload && frame1 &&
                s->payload->len >= DV_ZEROCOPY_MIN_BYTES &&
                s->payload->data == zmq_msg_data(frame1) &&
                s->payload->len == zmq_msg_size(frame1);
    job_t *j = dv_broker_job_alloc(self->job_spare,
                                   zmq_msg_data((zmq_msg_t *)&in->route),
                                   zmq_msg_size((zmq_msg_t *)&in->route),
                                   s->queue, model ? model->name : train_name,
                                   spec_payload ? spec_bytes
                                   : keep       ? NULL
                                                : s->payload->data,
                                   spec_payload ? spec_len
                                   : keep       ? 0
                                                : s->payload->len);
    free(spec_bytes);
    if (j && keep) {
        j->zpayload = dv_try_malloc(1, sizeof *j->zpayload);
        if (!j->zpayload || zmq_msg_init(j->zpayload) != 0 ||
            zmq_msg_copy(j->zpayload, frame1) != 0) { // shared, not copied
            free(j->zpayload);
            free(j);
            j = NULL;
        } else {
            j->payload = zmq_msg_data(j->zpayload);
            j->payload_len = zmq_msg_size(j->zpayload);
        }
    }
    if (!j) {
        return dv_errorf(err, DV_ENOMEM,
                         "submit: no memory for a job of %zu bytes",
                         s->payload->len);
    }
    j->spec = spec_payload;
    j->max_attempts = (uint32_t)s->max_attempts;
    if (model) {
        j->model_version = model->version;
        memcpy(j->model_sha, model->sha256, sizeof j->model_sha);
        j->rows = (uint32_t)s->rows;
        j->cols = (uint32_t)s->cols;
    }
    j->rid = dv_msg_rid(m);
    j->client_minor = (uint8_t)(dv_msg_minor(m) > 255 ? 255 : dv_msg_minor(m));
    j->memory_only = s->memory_only;
    j->kind = s->infer      ? "infer"
              : s->sleep    ? "sleep"
              : s->train    ? "train"
              : s->evaluate ? "evaluate"
                            : "echo";
    j->priority = (int32_t)s->priority;
    j->timeout_ms = (uint32_t)s->timeout_ms;
    j->backoff_ms = (uint32_t)s->backoff_ms;
    j->sleep_ms = (uint32_t)s->sleep_ms;
    *out = j;
    return 0;
}

// A new job j (id given): in the table, its idempotency key noted, and
// accepted now (memory only, or no store) or once its record is committed.
static void
submit_enter(dv_broker_t *self, job_t *j, const submit_t *s, uint16_t who)
{
    j->who = who;
    if (who) {
        self->whos[who].inflight++;
    }
    j->id = self->next_job++;
    j->from_many = self->in_submit_many;
    j->submit_unix = dv_broker_unix_ms_now();
    j->deadline_unix = s->deadline_ms ? j->submit_unix + s->deadline_ms : 0;
    dv_broker_job_add(self, j);
    if (s->key[0]) {
        dv_idem_add(self, s->queue, dv_idem_scope(self), s->key, j->id,
                    j->submit_unix, !s->memory_only);
    }
    if (self->store && s->memory_only) {
        // Acknowledged at once, never stored (lost if the broker stops);
        // its id is recorded all the same so ids are never reused.
        dv_store_set_next_id(self->store, self->next_job);
        dv_commit_arm(self);
    } else if (self->store) {
        // Durable: acknowledged and scheduled once its commit is done.
        size_t len = 0;
        uint8_t *rec = dv_jobs_msg_encode(j, &len);
        dv_store_put_owned(self->store, DV_STORE_JOBS, j->id, rec, len);
        dv_store_set_next_id(self->store, self->next_job);
        if (self->n_pending == self->cap_pending) {
            self->cap_pending = self->cap_pending ? self->cap_pending * 2 : 64;
            self->pending =
                dv_realloc(self->pending, self->cap_pending * sizeof(uint64_t));
        }
        self->pending[self->n_pending++] = j->id;
        j->uncommitted = true;
        dv_broker_queue_bytes(self, j->queue)->uncommitted++;
        dv_commit_arm(self);
        return;
    }
    dv_jobs_msg_accept(self, j);
}

// One submit, in named steps: read and check its fields, answer a repeated
// idempotency key with the job it made, admit it (backpressure, bounds),
// make the job and enter it.
static int
submit_job(dv_broker_t *self,
           const dv_wire_msg_t *in,
           const dv_msg_t *m,
           const dv_dataset_info_t *ds,
           const dv_dataset_info_t *eval,
           dv_error_t *err)
{
    submit_t s = {0};
    uint16_t who = 0;
    job_t *j = NULL;
    int rc;
    if ((rc = submit_read_kind(m, &s, err)) != 0 ||
        (rc = submit_read_sched(m, &s, err)) != 0 ||
        (rc = submit_read_payload(self, m, &s, ds, eval, err)) != 0) {
        return rc;
    }
    // A key seen within the window: the job it made, not a new one.
    if (s.key[0] && dv_idem_reply(self, in, m, s.queue, s.key)) {
        return 0;
    }
    if ((rc = submit_admit(self, in, &s, &who, err)) != 0 ||
        (rc = submit_make_job(self, in, m, &s, ds, eval, &j, err)) != 0) {
        return rc;
    }
    submit_enter(self, j, &s, who);
    return 0;
}

// submit; a train or evaluate job may name a stored data set (`dataset`:
// NAME or NAME@VERSION) instead of carrying its CSV: the version is
// resolved now and the job names it; workers fetch it (fetch_dataset).
int
dv_jobs_msg_on_submit(dv_broker_t *self,
                      const dv_wire_msg_t *in,
                      const dv_msg_t *m,
                      dv_error_t *err)
{
    const dv_dataset_info_t *ds[2] = {NULL, NULL};
    static const char *keys[2] = {"dataset", "eval_dataset"};
    for (size_t i = 0; i < 2; i++) {
        if (!dv_msg_has(m, keys[i])) {
            continue;
        }
        char ref[2 * DV_MAX_WIRE_NAME], name[DV_MAX_WIRE_NAME + 1];
        uint32_t version = 0;
        int rc = dv_msg_str(m, keys[i], ref, sizeof ref, err);
        if (rc == 0) {
            rc = dv_model_ref_parse(ref, name, &version, err); // same syntax
        }
        if (rc) {
            return rc;
        }
        ds[i] = dv_datasets_get(self->datasets, name, version);
        if (!ds[i]) {
            return dv_errorf(err, DV_ENOENT, "submit: no data set %s", ref);
        }
    }
    return submit_job(self, in, m, ds[0], ds[1], err);
}

// The protocol's names of dv_job_state_t.
static const char *s_job_states[DV_JOB_STATES_] = {
    "queued", "running", "retrying", "done",
    "failed", "dead",    "expired",  "cancelled"};

const char *
dv_jobs_msg_state_name(int state)
{
    return state >= 0 && state < DV_JOB_STATES_ ? s_job_states[state] : "";
}

// Whether job id ended but its outcome is not committed yet: a reply that
// reports it waits for the commit, like the result itself.
bool
dv_jobs_msg_outcome_unstored(const dv_broker_t *self, uint64_t id)
{
    const kept_t *k = dv_results_kept_find(self, id);
    return k && k->unstored;
}

int
dv_jobs_msg_state(dv_broker_t *self,
                  uint64_t id,
                  const job_t **live,
                  uint32_t *attempts)
{
    const job_t *j = dv_broker_job_find(self, id);
    dv_sched_state_t st;
    *live = NULL;
    *attempts = 0;
    if (j && !j->cancelled &&
        dv_sched_job_state(self->sched, id, &st, attempts) == 0) {
        *live = j;
        return st == DV_SCHED_RUNNING ? DV_JOB_RUNNING
               : st == DV_SCHED_HELD  ? DV_JOB_RETRYING
                                      : DV_JOB_QUEUED;
    }
    if (j && !j->cancelled && j->finishing) { // off the scheduler, its
        *live = j;                            // model on the way to disk
        *attempts = j->attempts;
        return DV_JOB_RUNNING;
    }
    const dead_t *d = dv_dead_find(self, id, NULL);
    if (d) {
        *live = d->job;
        *attempts = d->job->attempts;
        return DV_JOB_DEAD;
    }
    const kept_t *k =
        dv_results_kept_find(self, id); // a cancelled job's is recorded
    if (k) {
        *attempts = k->attempts;
        return k->done                   ? DV_JOB_DONE
               : k->code == DV_EEXPIRED  ? DV_JOB_EXPIRED
               : k->code == DV_ECANCELED ? DV_JOB_CANCELLED
                                         : DV_JOB_FAILED;
    }
    dv_broker_job_free(self->scratch); // a deep queue's job, in the store only
    self->scratch = dv_spill_read(self, id);
    if (self->scratch) {
        *live = self->scratch;
        return DV_JOB_QUEUED;
    }
    return -1;
}

// Where and when (1.5): a live job's submit time, and while running its
// worker and start; a finished one's queue, worker and finish time (its
// kept result holds them; the kind is not kept with results).
static void
job_where(dv_broker_t *self, uint64_t id, const job_t *j, int st, dv_msgw_t *w)
{
    if (j && j->submit_unix) {
        dv_msgw_uint(w, "submitted_unix_ms", j->submit_unix);
    }
    uint64_t handle = 0;
    if (j && st == DV_JOB_RUNNING &&
        dv_sched_job_worker(self->sched, id, &handle) == 0) {
        const worker_t *wk = dv_broker_worker_by_handle(self, handle);
        if (wk) {
            dv_msgw_str(w, "worker", wk->name);
        }
        if (j->started_unix) {
            dv_msgw_uint(w, "started_unix_ms", j->started_unix);
        }
    }
    const kept_t *k = st >= DV_JOB_DONE && st != DV_JOB_DEAD
                          ? dv_results_kept_find(self, id)
                          : NULL;
    if (k) {
        if (!j && k->qidx && k->qidx <= self->n_qbytes) {
            dv_msgw_str(w, "queue", self->qbytes[k->qidx - 1].name);
        }
        if (!j && k->kind) {
            dv_msgw_str(w, "kind", dv_rec_kind_name(k->kind - 1));
        }
        if (k->data[0]) {
            dv_msgw_str(w, "worker", k->data);
        }
        dv_msgw_uint(w, "finished_unix_ms", k->unix_ms);
    }
}

int
dv_jobs_msg_on_get(dv_broker_t *self,
                   const void *route,
                   size_t route_len,
                   const dv_msg_t *m,
                   uint64_t rid,
                   dv_error_t *err)
{
    uint64_t id;
    int rc = dv_msg_uint(m, "job", &id, err);
    if (rc) {
        return rc;
    }
    const job_t *j = NULL;
    uint32_t attempts = 0;
    int st = dv_jobs_msg_state(self, id, &j, &attempts);
    if (st < 0) {
        return dv_errorf(err, DV_ENOENT,
                         "unknown job %llu (or its result expired)",
                         (unsigned long long)id);
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_JOB, rid);
    dv_msgw_uint(w, "job", id);
    dv_msgw_str(w, "state", s_job_states[st]);
    dv_msgw_uint(w, "attempts", attempts);
    if (j) {
        dv_msgw_str(w, "queue", j->queue);
        dv_msgw_str(w, "kind", j->kind);
        dv_msgw_key(w, "priority");
        dv_msgw_v_int(w, j->priority);
        dv_msgw_uint(w, "max_attempts", j->max_attempts);
        if (j->deadline_unix) {
            dv_msgw_uint(w, "deadline_unix_ms", j->deadline_unix);
        }
        if (j->timeout_ms) {
            dv_msgw_uint(w, "timeout_ms", j->timeout_ms);
        }
        dv_results_write_errors(w, j);
        if (USES_MODEL(j) && j->model_version) {
            char ref[DV_MAX_WIRE_NAME + 16];
            snprintf(ref, sizeof ref, "%s@%u", j->model, j->model_version);
            if (st != DV_JOB_DONE) { // a done one's comes with its result
                dv_msgw_str(w, "model", ref);
            }
        }
        if (j->p_epoch) {
            dv_msgw_key(w, "progress");
            dv_msgw_v_map(w, isnan(j->p_eval) ? 4 : 5);
            if (!isnan(j->p_eval)) {
                dv_msgw_v_str(w, "eval");
                dv_msgw_v_double(w, j->p_eval);
            }
            dv_msgw_v_str(w, "epoch");
            dv_msgw_v_uint(w, j->p_epoch);
            dv_msgw_v_str(w, "epochs");
            dv_msgw_v_uint(w, j->p_epochs);
            dv_msgw_v_str(w, "loss");
            dv_msgw_v_double(w, j->p_loss);
            dv_msgw_v_str(w, "ms");
            dv_msgw_v_uint(w, j->p_ms);
        }
        if (j->ckpt) {
            dv_msgw_key(w, "checkpoint");
            dv_msgw_v_map(w, 3);
            dv_msgw_v_str(w, "epoch");
            dv_msgw_v_uint(w, j->ckpt_epoch);
            dv_msgw_v_str(w, "bytes");
            dv_msgw_v_uint(w, j->ckpt_len);
            dv_msgw_v_str(w, "stored_epoch"); // what a broker restart keeps
            dv_msgw_v_uint(w, j->ckpt_stored);
        }
    }
    job_where(self, id, j, st, w);
    const dead_t *d = st == DV_JOB_DEAD ? dv_dead_find(self, id, NULL) : NULL;
    if (d) {
        dv_msgw_error(w, "error", d->code, d->text);
    }
    if (st == DV_JOB_DONE) { // an infer job's pass and the version that ran
        dv_results_kept_copy_fields(dv_results_kept_find(self, id), w);
    }
    if (dv_jobs_msg_outcome_unstored(self, id)) {
        dv_commit_reply_after(self, route, route_len, rid, w);
        return 0;
    }

    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_broker_client_send(self, route, route_len, h, len, NULL, 0);
    dv_msgw_destroy(&w);
    return 0;
}

// Cancel a job: a queued one leaves its queue; a running one's worker is
// told to drop it (its slot stays taken until the worker answers). Either
// way the job ends now as failed with DV_ECANCELED, and that outcome is
// stored with the result, so the cancel survives a restart.
int
dv_jobs_msg_on_cancel(dv_broker_t *self,
                      const void *route,
                      size_t route_len,
                      const dv_msg_t *m,
                      uint64_t rid,
                      dv_error_t *err)
{
    uint64_t id;
    int rc = dv_msg_uint(m, "job", &id, err);
    if (rc) {
        return rc;
    }
    job_t *j = dv_broker_job_find(self, id);
    bool running = false;
    uint32_t attempts = 0;
    job_t *spilled = j ? NULL : dv_spill_read(self, id);
    if (spilled) { // queued in the store only (a deep queue)
        dv_spill_end(self, spilled, DV_ECANCELED, "cancelled by a client");
        dv_broker_job_free(spilled);
        dv_msgw_t *w = dv_msgw_new(DV_MSG_OK, rid);
        dv_msgw_uint(w, "job", id);
        dv_msgw_str(w, "was", "queued");
        dv_commit_reply_after(self, route, route_len, rid, w);
        return 0;
    }
    if (!j || dv_sched_job(self->sched, id, &running, &attempts) != 0) {

        return dv_errorf(err, DV_ENOENT, "job %llu: %s", (unsigned long long)id,
                         !j             ? "unknown, or already finished"
                         : j->finishing ? "already finished (its model is "
                                          "being stored)"
                                        : "not accepted yet: retry");
    }
    const char *was = running ? "running" : "queued";
    if (!j->cancelled) {
        if (running) {
            dv_timers_cancel_on_worker(self, j);
        } else {
            dv_sched_cancel(self->sched, id);
        }
        dv_results_fail(self, j, DV_ECANCELED, "cancelled by a client", "");
        if (running) {
            j->cancelled = true;
        } else {
            dv_broker_job_remove(self, id);
        }
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_OK, rid);
    dv_msgw_uint(w, "job", id);
    dv_msgw_str(w, "was", was);
    // Answered once the cancel is stored: a cancel that is acknowledged
    // survives a crash.
    dv_commit_reply_after(self, route, route_len, rid, w);
    return 0;
}

int
dv_jobs_msg_on_status(dv_broker_t *self,
                      const void *route,
                      size_t route_len,
                      const dv_msg_t *m,
                      uint64_t rid,
                      dv_error_t *err)
{
    uint64_t from = 0;
    int rc = dv_msg_uint_or(m, "queues_from", 0, &from, err);
    if (rc) {
        return rc;
    }
    size_t n_models = 0;
    dv_registry_list(self->registry, &n_models);
    size_t nq = dv_sched_queue_count(self->sched);
    dv_msgw_t *w = dv_msgw_new(DV_MSG_STATUS_INFO, rid);
    dv_msgw_str(w, "broker", "drover-broker " DV_VERSION_STRING);
    dv_msgw_uint(w, "workers", self->n_workers);
    size_t spilled = 0;
    for (size_t q = 0; q < self->n_qbytes; q++) {
        spilled += self->qbytes[q].spilled;
    }
    dv_msgw_uint(w, "queued", dv_sched_queued(self->sched) + spilled);
    dv_msgw_uint(w, "running", dv_sched_running(self->sched));
    dv_msgw_uint(w, "kept_results", self->n_kept);
    dv_msgw_uint(w, "models", n_models);
    dv_msgw_uint(w, "next_job", self->next_job);
    dv_msgw_uint(w, "retrying", dv_sched_held(self->sched));
    dv_msgw_uint(w, "dead", self->n_dead);
    // Per queue: jobs in each state now (queued, running, retrying, dead)
    // and outcomes since the broker started (done, failed, expired,
    // cancelled). Every queue that ever held a job since then is listed.
    for (size_t i = 0; i < nq; i++) {
        size_t queued = 0, running = 0;
        dv_broker_queue_bytes(
            self, dv_sched_queue_info(self->sched, i, &queued, &running));
    }
    // A page of queues (1.2): queues_from..+DV_STATUS_QUEUES_PAGE, in the
    // broker's order; queues_total says how many there are.
    size_t first = from < self->n_qbytes ? (size_t)from : self->n_qbytes;
    size_t last = self->n_qbytes - first > DV_STATUS_QUEUES_PAGE
                      ? first + DV_STATUS_QUEUES_PAGE
                      : self->n_qbytes;
    dv_msgw_uint(w, "queues_total", self->n_qbytes);
    dv_msgw_uint(w, "queues_from", first);
    dv_msgw_key(w, "queues");
    dv_msgw_v_map(w, last - first);
    for (size_t q = first; q < last; q++) {
        const qbytes_t *qb = &self->qbytes[q];
        dv_queue_now_t now = dv_broker_queue_now(self, qb);
        const struct {
            const char *key;
            uint64_t value;
        } fields[] = {
            {"queued", now.queued},     {"running", now.running},
            {"retrying", now.retrying}, {"dead", now.dead},
            {"done", qb->done},         {"failed", qb->failed},
            {"expired", qb->expired},   {"cancelled", qb->cancelled},
            {"bytes", qb->bytes},
        };
        size_t nf = sizeof fields / sizeof fields[0];
        dv_msgw_v_str(w, qb->name);
        dv_msgw_v_map(w, nf);
        for (size_t f = 0; f < nf; f++) {
            dv_msgw_v_str(w, fields[f].key);
            dv_msgw_v_uint(w, fields[f].value);
        }
    }

    dv_broker_client_reply(self, route, route_len, w);
    return 0;
}
