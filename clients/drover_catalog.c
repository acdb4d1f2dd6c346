// drover_catalog — the broker's catalog through libdrover (see drover.h):
// models (push, plain or signed; list, get, schema with lineage, alias,
// config, gc, rm) and data sets (push in chunks, list, get, share, rm).
// Each call is one request/reply (drv_request, drover_conn.c).

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover.h"
#include "drover_int.h"
#include "dv_err.h"
#include "dv_file.h"
#include "dv_keys.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_msgpack.h"
#include "dv_proto.h"
#include "dv_sha256.h"

// ---------------------------------------------------------------- models

// What a model's and a data set's record share: name, version, the file's
// SHA-256 (as hex, into sha256_hex[65]; left as it is when absent) and
// its size in bytes.
static void
stored_from_obj(const msgpack_object *o,
                char *name,
                size_t name_size,
                uint32_t *version,
                char *sha256_hex,
                uint64_t *bytes)
{
    drv_copy_obj_str(dv_msgpack_get(o, "name"), name, name_size);
    *version = (uint32_t)drv_obj_uint(o, "version");
    const msgpack_object *sum = dv_msgpack_get(o, "sha256");
    if (sum && sum->type == MSGPACK_OBJECT_BIN &&
        sum->via.bin.size == DV_SHA256_BYTES) {
        dv_sha256_hex((const uint8_t *)sum->via.bin.ptr, sha256_hex);
    }
    *bytes = drv_obj_uint(o, "bytes");
}

// A model record from a map (nested) or from the header root.
static void
model_from_obj(const msgpack_object *o, drover_model_t *out)
{
    memset(out, 0, sizeof *out);
    stored_from_obj(o, out->name, sizeof out->name, &out->version, out->sha256,
                    &out->bytes);
    drv_copy_obj_str(dv_msgpack_get(o, "task"), out->task, sizeof out->task);
    drv_copy_obj_str(dv_msgpack_get(o, "algo"), out->algo, sizeof out->algo);
    out->features = (uint32_t)drv_obj_uint(o, "features");
    out->outputs = (uint32_t)drv_obj_uint(o, "outputs");
    out->created_us = drv_obj_uint(o, "created_us");
    const msgpack_object *cfg = dv_msgpack_get(o, "config");
    out->max_batch_rows = (uint32_t)drv_obj_uint(cfg, "max_batch_rows");
    out->max_delay_us = (uint32_t)drv_obj_uint(cfg, "max_delay_us");
    const msgpack_object *a = dv_msgpack_get(o, "aliases");
    size_t len = 0;
    for (uint32_t i = 0;
         a && a->type == MSGPACK_OBJECT_ARRAY && i < a->via.array.size; i++) {
        char one[129];
        drv_copy_obj_str(&a->via.array.ptr[i], one, sizeof one);
        int n = snprintf(out->aliases + len, sizeof out->aliases - len, "%s%s",
                         len ? "," : "", one);
        if (n < 0 || (size_t)n >= sizeof out->aliases - len) {
            break;
        }
        len += (size_t)n;
    }
}

// model_push; with signer, signed over "drover-model-v1:" + the SHA-256.
static int
model_push(drover_t *self,
           const void *image,
           size_t len,
           const char *name,
           const dv_key_t *signer,
           bool schema_change,
           drover_model_t *out,
           drover_error_t *err)
{
    uint8_t sum[DV_SHA256_BYTES];
    dv_sha256(image, len, sum);
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_MODEL_PUSH, rid);
    dv_msgw_str(w, "name", name);
    dv_msgw_bin(w, "sha256", sum, sizeof sum);
    if (schema_change) {
        dv_msgw_key(w, "schema_change");
        dv_msgw_v_bool(w, true);
    }
    if (signer) {
        uint8_t msg[16 + DV_SHA256_BYTES], sig[64];
        memcpy(msg, "drover-model-v1:", 16);
        memcpy(msg + 16, sum, sizeof sum);
        dv_error_t e = {0};
        if (dv_key_sign(signer, msg, sizeof msg, sig, &e) != 0) {
            dv_msgw_destroy(&w);
            return drv_set_err(err, &e);
        }
        dv_msgw_bin(w, "signature", sig, sizeof sig);
        dv_msgw_str(w, "signer", signer->id);
    }
    dv_frame_t f = {image, len};
    int rc = drv_request(self, w, rid, &f, 1, DV_MSG_MODEL,
                         drv_deadline_of(60000), err);
    if (rc == 0 && out) {
        model_from_obj(drv_reply_root(self), out);
    }
    drv_drop_reply(self);
    return rc;
}

int
drover_model_push_bytes(drover_t *self,
                        const void *image,
                        size_t len,
                        const char *name,
                        drover_model_t *out,
                        drover_error_t *err)
{
    return model_push(self, image, len, name, NULL, false, out, err);
}

int
drover_model_push_ex(drover_t *self,
                     const void *image,
                     size_t len,
                     const char *name,
                     const drover_push_opts_t *opts,
                     drover_model_t *out,
                     drover_error_t *err)
{
    dv_key_t k;
    dv_error_t e = {0};
    if (opts && opts->key_file && dv_key_load(&k, opts->key_file, &e) != 0) {
        return drv_set_err(err, &e);
    }
    bool signed_ = opts && opts->key_file;
    int rc = model_push(self, image, len, name, signed_ ? &k : NULL,
                        opts && opts->schema_change, out, err);
    if (signed_) {
        dv_key_clear(&k);
    }
    return rc;
}

int
drover_model_push_signed(drover_t *self,
                         const char *path,
                         const char *name,
                         const char *key_file,
                         drover_model_t *out,
                         drover_error_t *err)
{
    dv_key_t k;
    dv_error_t e = {0};
    int rc = dv_key_load(&k, key_file, &e);
    uint8_t *image = NULL;
    size_t len = 0;
    if (rc == 0) {
        rc = dv_file_read(path, DV_MAX_FRAME_BYTES, &image, &len, &e);
    }
    if (rc) {
        dv_key_clear(&k);
        return drv_set_err(err, &e);
    }
    rc = model_push(self, image, len, name, &k, false, out, err);
    dv_key_clear(&k);
    free(image);
    return rc;
}

int
drover_model_push(drover_t *self,
                  const char *path,
                  const char *name,
                  drover_model_t *out,
                  drover_error_t *err)
{
    uint8_t *image = NULL;
    size_t len = 0;
    dv_error_t e = {0};
    int rc = dv_file_read(path, DV_MAX_FRAME_BYTES, &image, &len, &e);
    if (rc) {
        return drv_set_err(err, &e);
    }
    rc = drover_model_push_bytes(self, image, len, name, out, err);
    free(image);
    return rc;
}

// model_from_obj as a drv_item_fn.
static void
model_item(const msgpack_object *o, void *item)
{
    model_from_obj(o, item);
}

int
drover_model_list(drover_t *self,
                  drover_model_t **models,
                  size_t *n,
                  drover_error_t *err)
{
    const drv_list_t list = {.type = DV_MSG_MODEL_LIST,
                             .want = DV_MSG_MODELS,
                             .key = "models",
                             .item_size = sizeof **models,
                             .fill = model_item};
    void *v = NULL;
    int rc = drv_request_list(self, &list, &v, n, NULL, err);
    *models = v;
    return rc;
}

static int
model_get(drover_t *self,
          const char *name,
          uint32_t version,
          bool schema,
          drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_MODEL_GET, rid);
    dv_msgw_str(w, "name", name);
    if (version) {
        dv_msgw_uint(w, "version", version);
    }
    if (schema) {
        dv_msgw_uint(w, "schema", 1);
    }
    return drv_request(self, w, rid, NULL, 0, DV_MSG_MODEL,
                       drv_deadline_of(10000), err);
}

int
drover_model_get(drover_t *self,
                 const char *name,
                 uint32_t version,
                 drover_model_t *out,
                 drover_error_t *err)
{
    int rc = model_get(self, name, version, false, err);
    if (rc == 0) {
        model_from_obj(drv_reply_root(self), out);
    }
    drv_drop_reply(self);
    return rc;
}

// "NAME@V" of a data set reference map {name, version, ...}.
static void
dataset_ref_of(const msgpack_object *o, char *buf, size_t size)
{
    char name[DV_MAX_WIRE_NAME + 1] = "";
    drv_copy_obj_str(dv_msgpack_get(o, "name"), name, sizeof name);
    if (name[0]) {
        snprintf(buf, size, "%s@%" PRIu64, name, drv_obj_uint(o, "version"));
    }
}

// A version's lineage map (model_get), when it has one.
static void
lineage_from_obj(const msgpack_object *l, drover_schema_t *out)
{
    if (!l || l->type != MSGPACK_OBJECT_MAP) {
        return;
    }
    drover_lineage_t *g = &out->lineage;
    g->has = true;
    g->job = drv_obj_uint(l, "job");
    drv_copy_obj_str(dv_msgpack_get(l, "pushed_by"), g->pushed_by,
                     sizeof g->pushed_by);
    drv_copy_obj_str(dv_msgpack_get(l, "signed_by"), g->signed_by,
                     sizeof g->signed_by);
    drv_copy_obj_str(dv_msgpack_get(l, "worker"), g->worker, sizeof g->worker);
    g->attempts = (uint32_t)drv_obj_uint(l, "attempts");
    g->resumed_from = (uint32_t)drv_obj_uint(l, "resumed_from");
    g->submitted_unix_ms = drv_obj_uint(l, "submitted_unix_ms");
    g->finished_unix_ms = drv_obj_uint(l, "finished_unix_ms");
    g->train_ms = drv_obj_uint(l, "train_ms");
    g->epochs_run = (uint32_t)drv_obj_uint(l, "epochs_run");
    g->data_rows = drv_obj_uint(l, "data_rows");
    const msgpack_object *sum = dv_msgpack_get(l, "data_sha256");
    if (sum && sum->type == MSGPACK_OBJECT_BIN &&
        sum->via.bin.size == DV_SHA256_BYTES) {
        dv_sha256_hex((const uint8_t *)sum->via.bin.ptr, g->data_sha256);
    }
    dataset_ref_of(dv_msgpack_get(l, "dataset"), g->dataset, sizeof g->dataset);
    dataset_ref_of(dv_msgpack_get(l, "eval_dataset"), g->eval_dataset,
                   sizeof g->eval_dataset);
    const msgpack_object *h = dv_msgpack_get(l, "train");
    size_t used = 0;
    for (uint32_t i = 0; h && h->type == MSGPACK_OBJECT_MAP &&
                         i < h->via.map.size && used < sizeof g->hyper;
         i++) {
        const msgpack_object_kv *kv = &h->via.map.ptr[i];
        char key[32] = "", val[96] = "";
        drv_copy_obj_str(&kv->key, key, sizeof key);
        if (strcmp(key, "algo") == 0) {
            drv_copy_obj_str(&kv->val, g->algo, sizeof g->algo);
            continue;
        }
        if (kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            snprintf(val, sizeof val, "%" PRIu64, kv->val.via.u64);
            if (strcmp(key, "seed") == 0) {
                g->seed = kv->val.via.u64;
            }
        } else if (kv->val.type == MSGPACK_OBJECT_FLOAT64 ||
                   kv->val.type == MSGPACK_OBJECT_FLOAT32) {
            snprintf(val, sizeof val, "%g", kv->val.via.f64);
        } else if (kv->val.type == MSGPACK_OBJECT_STR) {
            drv_copy_obj_str(&kv->val, val, sizeof val);
        } else if (kv->val.type == MSGPACK_OBJECT_ARRAY) {
            size_t vl = 0;
            for (uint32_t a = 0; a < kv->val.via.array.size; a++) {
                const msgpack_object *e = &kv->val.via.array.ptr[a];
                vl += (size_t)snprintf(
                    val + vl, vl < sizeof val ? sizeof val - vl : 0,
                    "%s%" PRIu64, a ? "," : "",
                    e->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? e->via.u64
                                                               : 0);
            }
            if (vl == 0) {
                continue; // no hidden layers
            }
        } else {
            continue;
        }
        used += (size_t)snprintf(g->hyper + used, sizeof g->hyper - used,
                                 "%s%s=%s", used ? " " : "", key, val);
    }
    const msgpack_object *ev = dv_msgpack_get(l, "eval_metrics");
    for (uint32_t i = 0; ev && ev->type == MSGPACK_OBJECT_MAP &&
                         i < ev->via.map.size && g->n_eval < 24;
         i++) {
        const msgpack_object_kv *kv = &ev->via.map.ptr[i];
        double v;
        if (dv_msgpack_double(&kv->val, &v)) {
            drv_copy_obj_str(&kv->key, g->eval_names[g->n_eval],
                             sizeof g->eval_names[0]);
            g->eval_values[g->n_eval++] = v;
        }
    }
}

int
drover_model_schema(drover_t *self,
                    const char *name,
                    uint32_t version,
                    drover_schema_t *out,
                    drover_error_t *err)
{
    memset(out, 0, sizeof *out);
    int rc = model_get(self, name, version, true, err);
    dv_error_t e = {0};
    const dv_frame_t *f = rc == 0 ? dv_msg_frame(self->reply, 1) : NULL;
    if (rc == 0 && !f) {
        rc = dv_errorf(&e, DV_EFORMAT, "the broker sent no model schema");
        drv_set_err(err, &e);
    }
    if (rc == 0) {
        model_from_obj(drv_reply_root(self), &out->model);
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        rc = dv_msgpack_unpack(&up, f->data, f->len, "schema", &e);
        const msgpack_object *root = rc == 0 ? &up.data : NULL;
        if (rc == 0) {
            rc = dv_strs_from_obj(dv_msgpack_get(root, "features"), "features",
                                  DV_MAX_COLUMNS, DV_MAX_NAME_BYTES,
                                  &out->features, &out->n_features, &e);
        }
        if (rc == 0) {
            rc = dv_strs_from_obj(dv_msgpack_get(root, "classes"), "classes",
                                  DV_MAX_CLASSES, DV_MAX_NAME_BYTES,
                                  &out->classes, &out->n_classes, &e);
        }
        if (rc == 0) {
            char target[DV_MAX_NAME_BYTES + 1];
            drv_copy_obj_str(dv_msgpack_get(root, "target"), target,
                             sizeof target);
            out->target = dv_strdup(target);
            const msgpack_object *num = dv_msgpack_get(root, "labels_numeric");
            out->labels_numeric =
                num && num->type == MSGPACK_OBJECT_BOOLEAN && num->via.boolean;
            lineage_from_obj(dv_msg_get(self->reply, "lineage"), out);
        }
        msgpack_unpacked_destroy(&up);
        if (rc) {
            drv_set_err(err, &e);
            drover_schema_clear(out);
        }
    }
    drv_drop_reply(self);
    return rc;
}

void
drover_schema_clear(drover_schema_t *s)
{
    dv_strs_free(&s->features, s->n_features);
    dv_strs_free(&s->classes, s->n_classes);
    free(s->target);
    memset(s, 0, sizeof *s);
}

// model_rm / dataset_rm: name's version (0: all); *removed the count.
static int
catalog_rm(drover_t *self,
           dv_msg_type_t type,
           const char *name,
           uint32_t version,
           unsigned *removed,
           drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(type, rid);
    dv_msgw_str(w, "name", name);
    if (version) {
        dv_msgw_uint(w, "version", version);
    }
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_OK,
                         drv_deadline_of(10000), err);
    if (rc == 0 && removed) {
        *removed = (unsigned)drv_obj_uint(drv_reply_root(self), "removed");
    }
    drv_drop_reply(self);
    return rc;
}

int
drover_model_rm(drover_t *self,
                const char *name,
                uint32_t version,
                unsigned *removed,
                drover_error_t *err)
{
    return catalog_rm(self, DV_MSG_MODEL_RM, name, version, removed, err);
}

int
drover_model_alias(drover_t *self,
                   const char *name,
                   const char *alias,
                   uint32_t version,
                   uint32_t *previous,
                   drover_error_t *err)
{
    return drover_model_alias_ex(self, name, alias, version, false, previous,
                                 err);
}

int
drover_model_alias_ex(drover_t *self,
                      const char *name,
                      const char *alias,
                      uint32_t version,
                      bool schema_change,
                      uint32_t *previous,
                      drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_MODEL_ALIAS, rid);
    dv_msgw_str(w, "name", name);
    dv_msgw_str(w, "alias", alias);
    if (version) {
        dv_msgw_uint(w, "version", version);
    }
    if (schema_change) {
        dv_msgw_key(w, "schema_change");
        dv_msgw_v_bool(w, true);
    }
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_OK,
                         drv_deadline_of(10000), err);
    if (rc == 0 && previous) {
        *previous = (uint32_t)drv_obj_uint(drv_reply_root(self), "previous");
    }
    drv_drop_reply(self);
    return rc;
}

int
drover_model_config(drover_t *self,
                    const char *name,
                    int64_t max_batch_rows,
                    int64_t max_delay_us,
                    uint32_t *rows_out,
                    uint32_t *delay_out,
                    drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_MODEL_CONFIG, rid);
    dv_msgw_str(w, "name", name);
    if (max_batch_rows >= 0) {
        dv_msgw_uint(w, "max_batch_rows", (uint64_t)max_batch_rows);
    }
    if (max_delay_us >= 0) {
        dv_msgw_uint(w, "max_delay_us", (uint64_t)max_delay_us);
    }
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_OK,
                         drv_deadline_of(10000), err);
    if (rc == 0 && rows_out) {
        *rows_out =
            (uint32_t)drv_obj_uint(drv_reply_root(self), "max_batch_rows");
    }
    if (rc == 0 && delay_out) {
        *delay_out =
            (uint32_t)drv_obj_uint(drv_reply_root(self), "max_delay_us");
    }
    drv_drop_reply(self);
    return rc;
}

int
drover_model_gc(drover_t *self,
                const char *name,
                uint32_t keep,
                uint32_t *removed,
                size_t max,
                size_t *n,
                drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_MODEL_GC, rid);
    dv_msgw_str(w, "name", name);
    dv_msgw_uint(w, "keep", keep);
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_OK,
                         drv_deadline_of(30000), err);
    *n = 0;
    if (rc == 0) {
        const msgpack_object *a =
            dv_msgpack_get(drv_reply_root(self), "removed");
        for (uint32_t i = 0;
             a && a->type == MSGPACK_OBJECT_ARRAY && i < a->via.array.size;
             i++) {
            uint64_t v = 0;
            if (dv_msgpack_uint(&a->via.array.ptr[i], &v) && *n < max) {
                removed[(*n)++] = (uint32_t)v;
            }
        }
    }
    drv_drop_reply(self);
    return rc;
}

// ------------------------------------------------------------ data sets

static void
dataset_from_obj(const msgpack_object *o, drover_dataset_t *out)
{
    memset(out, 0, sizeof *out);
    stored_from_obj(o, out->name, sizeof out->name, &out->version, out->sha256,
                    &out->bytes);
    out->rows = drv_obj_uint(o, "rows");
    out->columns = (uint32_t)drv_obj_uint(o, "columns");
    drv_copy_obj_str(dv_msgpack_get(o, "target"), out->target,
                     sizeof out->target);
    out->created_us = drv_obj_uint(o, "created_us");
}

#define DATASET_CHUNK ((size_t)4 << 20)

int
drover_dataset_push(drover_t *self,
                    const char *path,
                    const char *name,
                    drover_dataset_t *out,
                    drover_error_t *err)
{
    dv_error_t e = {0};
    uint8_t *csv = NULL;
    size_t len = 0;
    if (dv_file_read(path, DV_MAX_CSV_BYTES, &csv, &len, &e) != 0) {
        return drv_set_err(err, &e);
    }
    if (len == 0) {
        free(csv);
        return drv_set_err(err, &(dv_error_t){DV_EFORMAT, "the file is empty"});
    }
    uint8_t sum[DV_SHA256_BYTES];
    dv_sha256(csv, len, sum);
    int rc = 0;
    for (size_t off = 0; rc == 0 && off < len; off += DATASET_CHUNK) {
        size_t n = len - off < DATASET_CHUNK ? len - off : DATASET_CHUNK;
        bool last = off + n == len;
        uint64_t rid = ++self->next_rid;
        dv_msgw_t *w = dv_msgw_new(DV_MSG_DATASET_PUSH, rid);
        dv_msgw_str(w, "name", name);
        dv_msgw_bin(w, "sha256", sum, sizeof sum);
        dv_msgw_uint(w, "bytes", len);
        dv_msgw_uint(w, "offset", off);
        dv_frame_t f = {csv + off, n};
        rc = drv_request(self, w, rid, &f, 1, last ? DV_MSG_DATASET : DV_MSG_OK,
                         drv_deadline_of(last ? 600000 : 60000), err);
        if (rc == 0 && last && out) {
            dataset_from_obj(drv_reply_root(self), out);
        }
        drv_drop_reply(self);
    }
    free(csv);
    return rc;
}

// dataset_from_obj as a drv_item_fn.
static void
dataset_item(const msgpack_object *o, void *item)
{
    dataset_from_obj(o, item);
}

int
drover_dataset_list(drover_t *self,
                    drover_dataset_t **all,
                    size_t *n,
                    drover_error_t *err)
{
    const drv_list_t list = {.type = DV_MSG_DATASET_LIST,
                             .want = DV_MSG_DATASETS,
                             .key = "datasets",
                             .item_size = sizeof **all,
                             .fill = dataset_item};
    void *v = NULL;
    int rc = drv_request_list(self, &list, &v, n, NULL, err);
    *all = v;
    return rc;
}

int
drover_dataset_rm(drover_t *self,
                  const char *name,
                  uint32_t version,
                  unsigned *removed,
                  drover_error_t *err)
{
    return catalog_rm(self, DV_MSG_DATASET_RM, name, version, removed, err);
}

int
drover_dataset_share(drover_t *self,
                     const char *name,
                     const char *const *readers,
                     size_t n,
                     drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DATASET_SHARE, rid);
    dv_msgw_str(w, "name", name);
    dv_msgw_strs(w, "readers", readers, n);
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_OK,
                         drv_deadline_of(10000), err);
    drv_drop_reply(self);
    return rc;
}

int
drover_dataset_get(drover_t *self,
                   const char *name,
                   uint32_t version,
                   drover_dataset_t *out,
                   drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_DATASET_GET, rid);
    dv_msgw_str(w, "name", name);
    if (version) {
        dv_msgw_uint(w, "version", version);
    }
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_DATASET,
                         drv_deadline_of(10000), err);
    if (rc == 0) {
        dataset_from_obj(drv_reply_root(self), out);
    }
    drv_drop_reply(self);
    return rc;
}
