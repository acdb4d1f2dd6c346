// drover_result — result objects (see drover.h): a `result` message (or a
// refusal) decoded into a drover_result_t the caller owns, and its
// accessors. Also the msgpack field readers the catalog shares.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover.h"
#include "drover_int.h"
#include "dv_err.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_msgpack.h"
#include "dv_proto.h"

// --------------------------------------------------------------- results

void
drover_result_destroy(drover_result_t **r_p)
{
    if (!r_p || !*r_p) {
        return;
    }
    drover_result_t *r = *r_p;
    free(r->payload);
    free(r->errors);
    dv_strs_free(&r->metric_names, r->n_metrics);
    free(r->metric_values);
    dv_tensor_destroy(&r->output);
    free(r->classes); // one block (dv_msg_strs_packed)
    free(r);
    *r_p = NULL;
}

drover_result_t *
drv_refused(int code, const char *text)
{
    drover_result_t *r = dv_calloc(1, sizeof *r);
    r->code = code;
    snprintf(r->text, sizeof r->text, "%s", text);
    return r;
}

// An `errors` array (failed attempts) into *out (calloc'd) of *n.
void
drv_errors_from(const msgpack_object *a,
                drover_attempt_error_t **out,
                size_t *n)
{
    size_t count = a && a->type == MSGPACK_OBJECT_ARRAY ? a->via.array.size : 0;
    *out = dv_calloc(count ? count : 1, sizeof **out);
    for (size_t i = 0; i < count; i++) {
        const msgpack_object *o = &a->via.array.ptr[i];
        drover_attempt_error_t *e = &(*out)[i];
        char name[64];
        e->attempt = (uint32_t)drv_obj_uint(o, "attempt");
        drv_copy_obj_str(dv_msgpack_get(o, "error"), name, sizeof name);
        e->code = dv_err_code(name);
        drv_copy_obj_str(dv_msgpack_get(o, "text"), e->text, sizeof e->text);
        drv_copy_obj_str(dv_msgpack_get(o, "worker"), e->worker,
                         sizeof e->worker);
        e->at_ms = drv_obj_uint(o, "at_ms");
    }
    *n = count;
}

// A `result` message as a result object; a malformed one becomes a failed
// result saying so (the job's outcome must not vanish).
drover_result_t *
drv_result_from(const dv_msg_t *m)
{
    drover_result_t *r = dv_calloc(1, sizeof *r);
    dv_error_t e = {0};
    char state[16] = "";
    uint64_t attempts = 0;
    int rc = dv_msg_uint(m, "job", &r->job, &e);
    if (rc == 0) {
        rc = dv_msg_str(m, "state", state, sizeof state, &e);
    }
    dv_msg_uint_or(m, "attempts", 0, &attempts, &e);
    r->attempts = (uint32_t)attempts;
    dv_msg_uint_or(m, "seq", 0, &r->seq, &e);
    const msgpack_object *errors = dv_msg_get(m, "errors");
    if (errors && errors->type == MSGPACK_OBJECT_ARRAY &&
        errors->via.array.size) { // most results have none: no block
        drv_errors_from(errors, &r->errors, &r->n_errors);
    }
    if (dv_msg_has(m, "worker")) {
        dv_msg_str(m, "worker", r->worker, sizeof r->worker, &e);
    }
    if (rc == 0 && strcmp(state, "done") == 0) {
        r->ok = true;
        if (dv_msg_has(m, "output")) {
            rc = dv_msg_tensor(m, "output", DV_MAX_INFER_ROWS, &r->output, &e);
            if (rc == 0) {
                rc = dv_msg_strs_packed(m, "classes", DV_MAX_CLASSES,
                                        DV_MAX_NAME_BYTES, &r->classes,
                                        &r->n_classes, &e);
            }
            if (rc == 0 && dv_msg_has(m, "model")) {
                rc = dv_msg_str(m, "model", r->model, sizeof r->model, &e);
            }
            const msgpack_object *b = dv_msg_get(m, "batch");
            uint64_t rows = 0, jobs = 0;
            if (dv_msgpack_uint(dv_msgpack_get(b, "rows"), &rows) &&
                dv_msgpack_uint(dv_msgpack_get(b, "jobs"), &jobs) &&
                rows <= UINT32_MAX && jobs <= UINT32_MAX) {
                r->batch_rows = (uint32_t)rows;
                r->batch_jobs = (uint32_t)jobs;
            }
        } else if (dv_msg_n_frames(m) >= 1) {
            const dv_frame_t *f = dv_msg_frame(m, 1);
            r->payload = dv_malloc(f->len ? f->len : 1);
            memcpy(r->payload, f->data, f->len);
            r->payload_len = f->len;
        }
    } else if (rc == 0) {
        int code = DV_EFORMAT;
        dv_msg_error(m, &code, r->text, sizeof r->text, &e);
        r->code = code;
    }
    if (rc == 0 && !r->model[0] && dv_msg_has(m, "model")) {
        dv_msg_str(m, "model", r->model, sizeof r->model, &e); // train
    }
    const msgpack_object *mt = dv_msg_get(m, "metrics");
    if (rc == 0 && mt && mt->type == MSGPACK_OBJECT_MAP) { // evaluate
        size_t n = mt->via.map.size;
        r->metric_names = dv_calloc(n ? n : 1, sizeof(char *));
        r->metric_values = dv_calloc(n ? n : 1, sizeof(double));
        for (size_t i = 0; i < n; i++) {
            const msgpack_object_kv *kv = &mt->via.map.ptr[i];
            double v;
            char name[64];
            drv_copy_obj_str(&kv->key, name, sizeof name);
            if (name[0] && dv_msgpack_double(&kv->val, &v)) {
                r->metric_names[r->n_metrics] = dv_strdup(name);
                r->metric_values[r->n_metrics++] = v;
            }
        }
    }
    if (rc) {
        r->ok = false;
        r->code = rc;
        snprintf(r->text, sizeof r->text,
                 "malformed result from the broker: %.200s", e.text);
    }
    return r;
}

size_t
drover_result_errors(const drover_result_t *r,
                     const drover_attempt_error_t **errors)
{
    static const drover_attempt_error_t none; // never an error's NULL
    *errors = r->errors ? r->errors : &none;
    return r->n_errors;
}

uint64_t
drover_result_job(const drover_result_t *r)
{
    return r->job;
}

bool
drover_result_ok(const drover_result_t *r)
{
    return r->ok;
}

const char *
drover_result_state(const drover_result_t *r)
{
    return r->ok ? "done" : "failed";
}

int
drover_result_error(const drover_result_t *r, const char **text)
{
    if (text) {
        *text = r->ok ? "" : r->text;
    }
    return r->ok ? 0 : r->code;
}

uint32_t
drover_result_attempts(const drover_result_t *r)
{
    return r->attempts;
}

const char *
drover_result_worker(const drover_result_t *r)
{
    return r->worker;
}

const void *
drover_result_payload(const drover_result_t *r, size_t *len)
{
    *len = r->payload_len;
    return r->payload;
}

const float *
drover_result_output(const drover_result_t *r, size_t *rows, size_t *cols)
{
    *rows = r->output ? r->output->rows : 0;
    *cols = r->output ? r->output->cols : 0;
    return r->output ? r->output->data : NULL;
}

size_t
drover_result_n_classes(const drover_result_t *r)
{
    return r->n_classes;
}

const char *
drover_result_class(const drover_result_t *r, size_t i)
{
    return i < r->n_classes ? r->classes[i] : NULL;
}

const char *
drover_result_model(const drover_result_t *r)
{
    return r->model;
}

bool
drover_result_batch(const drover_result_t *r, uint32_t *rows, uint32_t *jobs)
{
    *rows = r->batch_rows;
    *jobs = r->batch_jobs;
    return r->batch_jobs > 0;
}

uint64_t
drover_result_seq(const drover_result_t *r)
{
    return r->seq;
}

size_t
drover_result_metrics(const drover_result_t *r,
                      const char *const **names,
                      const double **values)
{
    *names = (const char *const *)r->metric_names;
    *values = r->metric_values;
    return r->n_metrics;
}

void
drv_copy_obj_str(const msgpack_object *o, char *buf, size_t size)
{
    buf[0] = '\0';
    if (o && o->type == MSGPACK_OBJECT_STR) {
        size_t n = o->via.str.size < size - 1 ? o->via.str.size : size - 1;
        memcpy(buf, dv_msgpack_str_ptr(o), n);
        buf[n] = '\0';
    }
}

uint64_t
drv_obj_uint(const msgpack_object *map, const char *key)
{
    uint64_t v = 0;
    dv_msgpack_uint(dv_msgpack_get(map, key), &v);
    return v;
}

int32_t
drv_obj_int32(const msgpack_object *map, const char *key)
{
    const msgpack_object *p = dv_msgpack_get(map, key);
    return p && p->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (int32_t)p->via.i64
           : p && p->type == MSGPACK_OBJECT_POSITIVE_INTEGER
               ? (int32_t)p->via.u64
               : 0;
}
