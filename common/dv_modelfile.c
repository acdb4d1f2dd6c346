// dv_modelfile — the .drvm model file (docs/MODEL_FORMAT.md).
//
//   header  16 bytes  "DRVM", u16 LE major, u16 LE minor, u64 LE body length
//   body    one msgpack map (string keys; parameters as bin of float32 LE)
//   trailer 32 bytes  SHA-256 of header + body
//
// Encoding is deterministic (fixed key order, nothing added by the encoder),
// so a model's bytes depend only on the model.
//
// Decoding trusts nothing: the header and lengths are checked, then the
// checksum, then dv_msgpack_check bounds every announced array/map/str/bin
// length by the bytes that remain (see dv_msgpack.h for why). Only then
// does msgpack-c build the object tree, from which fields are read with their
// types and sizes checked against dv_limits.h before anything is allocated,
// and finally dv_model_validate checks the model's own invariants.
#include "dv_modelfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_msgpack.h"
#include "dv_sha256.h"

#define TRAILER_BYTES DV_SHA256_BYTES

// ------------------------------------------------------------------ encode

static bool
host_is_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static void
pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void
pack_key(msgpack_packer *pk, const char *key)
{
    pack_str(pk, key);
}

// n floats as a bin of little-endian float32.
static void
pack_floats(msgpack_packer *pk, const float *v, size_t n)
{
    msgpack_pack_bin(pk, n * sizeof(float));
    if (host_is_little_endian()) {
        msgpack_pack_bin_body(pk, v, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16),
                        (uint8_t)(u >> 24)};
        msgpack_pack_bin_body(pk, b, 4);
    }
}

static void
pack_metrics(msgpack_packer *pk, const dv_metrics_t *m)
{
    bool cls = m->task == DV_TASK_CLASSIFICATION;
    msgpack_pack_map(pk, cls ? 11 : 5);
    pack_key(pk, "task");
    pack_str(pk, dv_task_name(m->task));
    pack_key(pk, "rows");
    msgpack_pack_uint64(pk, m->rows);
    if (!cls) {
        pack_key(pk, "mse");
        msgpack_pack_double(pk, m->mse);
        pack_key(pk, "mae");
        msgpack_pack_double(pk, m->mae);
        pack_key(pk, "r2");
        msgpack_pack_double(pk, m->r2);
        return;
    }
    pack_key(pk, "n_classes");
    msgpack_pack_uint64(pk, m->n_classes);
    pack_key(pk, "accuracy");
    msgpack_pack_double(pk, m->accuracy);
    pack_key(pk, "precision_macro");
    msgpack_pack_double(pk, m->precision_macro);
    pack_key(pk, "recall_macro");
    msgpack_pack_double(pk, m->recall_macro);
    pack_key(pk, "f1_macro");
    msgpack_pack_double(pk, m->f1_macro);
    pack_key(pk, "precision");
    msgpack_pack_double(pk, m->precision);
    pack_key(pk, "recall");
    msgpack_pack_double(pk, m->recall);
    pack_key(pk, "f1");
    msgpack_pack_double(pk, m->f1);
    pack_key(pk, "log_loss");
    msgpack_pack_double(pk, m->log_loss);
}

static void
pack_meta(msgpack_packer *pk, const dv_model_meta_t *meta)
{
    const dv_hyper_t *h = &meta->hyper;
    msgpack_pack_map(pk, 7);
    pack_key(pk, "hyper");
    msgpack_pack_map(pk, 10);
    pack_key(pk, "algo");
    pack_str(pk, dv_algo_name(h->algo));
    pack_key(pk, "scale");
    pack_str(pk, dv_scale_name(h->scale));
    pack_key(pk, "epochs");
    msgpack_pack_uint32(pk, h->epochs);
    pack_key(pk, "batch");
    msgpack_pack_uint32(pk, h->batch);
    pack_key(pk, "lr");
    msgpack_pack_double(pk, h->lr);
    pack_key(pk, "l2");
    msgpack_pack_double(pk, h->l2);
    pack_key(pk, "tol");
    msgpack_pack_double(pk, h->tol);
    pack_key(pk, "patience");
    msgpack_pack_uint32(pk, h->patience);
    pack_key(pk, "seed");
    msgpack_pack_uint64(pk, h->seed);
    uint32_t n_hidden =
        h->n_hidden < DV_MAX_HIDDEN ? h->n_hidden : DV_MAX_HIDDEN;
    pack_key(pk, "hidden");
    msgpack_pack_array(pk, n_hidden);
    for (uint32_t i = 0; i < n_hidden; i++) {
        msgpack_pack_uint32(pk, h->hidden[i]);
    }
    pack_key(pk, "dataset_sha256");
    msgpack_pack_bin(pk, DV_SHA256_BYTES);
    msgpack_pack_bin_body(pk, meta->dataset_sha256, DV_SHA256_BYTES);
    pack_key(pk, "dataset_rows");
    msgpack_pack_uint64(pk, meta->dataset_rows);
    pack_key(pk, "epochs_run");
    msgpack_pack_uint32(pk, meta->epochs_run);
    pack_key(pk, "final_loss");
    msgpack_pack_double(pk, meta->final_loss);
    pack_key(pk, "train_metrics");
    pack_metrics(pk, &meta->train_metrics);
    pack_key(pk, "created_unix");
    msgpack_pack_int64(pk, meta->created_unix);
}

static void
put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void
put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint16_t
get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t
get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

int
dv_model_encode(const dv_model_t *self,
                uint8_t **buf,
                size_t *len,
                dv_error_t *err)
{
    int rc = dv_model_validate(self, err);
    if (rc) {
        return rc;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    bool cls = self->task == DV_TASK_CLASSIFICATION;

    // kind algo task features target [classes classes_numeric] scaler
    // y_offset y_scale layers meta drover_version
    msgpack_pack_map(&pk, cls ? 13 : 11);
    pack_key(&pk, "kind");
    pack_str(&pk, "dense_stack");
    pack_key(&pk, "algo");
    pack_str(&pk, dv_algo_name(self->meta.hyper.algo));
    pack_key(&pk, "task");
    pack_str(&pk, dv_task_name(self->task));
    pack_key(&pk, "features");
    msgpack_pack_array(&pk, self->n_features);
    for (size_t j = 0; j < self->n_features; j++) {
        pack_str(&pk, self->feature_names[j]);
    }
    pack_key(&pk, "target");
    pack_str(&pk, self->target_name);
    if (cls) {
        pack_key(&pk, "classes");
        msgpack_pack_array(&pk, self->labels->n);
        for (size_t c = 0; c < self->labels->n; c++) {
            pack_str(&pk, self->labels->labels[c]);
        }
        pack_key(&pk, "classes_numeric");
        if (self->labels->numeric) {
            msgpack_pack_true(&pk);
        } else {
            msgpack_pack_false(&pk);
        }
    }
    pack_key(&pk, "scaler");
    msgpack_pack_map(&pk, 3);
    pack_key(&pk, "kind");
    pack_str(&pk, dv_scale_name(self->scaler->kind));
    pack_key(&pk, "offset");
    pack_floats(&pk, self->scaler->offset, self->scaler->n);
    pack_key(&pk, "scale");
    pack_floats(&pk, self->scaler->scale, self->scaler->n);
    pack_key(&pk, "y_offset");
    msgpack_pack_float(&pk, self->y_offset);
    pack_key(&pk, "y_scale");
    msgpack_pack_float(&pk, self->y_scale);
    pack_key(&pk, "layers");
    msgpack_pack_array(&pk, self->n_layers);
    for (size_t l = 0; l < self->n_layers; l++) {
        const dv_layer_t *ly = &self->layers[l];
        msgpack_pack_map(&pk, 5);
        pack_key(&pk, "in");
        msgpack_pack_uint64(&pk, ly->n_in);
        pack_key(&pk, "out");
        msgpack_pack_uint64(&pk, ly->n_out);
        pack_key(&pk, "activation");
        pack_str(&pk, dv_act_name(ly->act));
        pack_key(&pk, "weights");
        pack_floats(&pk, ly->w, ly->n_in * ly->n_out);
        pack_key(&pk, "bias");
        pack_floats(&pk, ly->b, ly->n_out);
    }
    pack_key(&pk, "meta");
    pack_meta(&pk, &self->meta);
    pack_key(&pk, "drover_version");
    pack_str(&pk, self->meta.drover_version);

    if (sb.size > DV_MAX_MODEL_BYTES) {
        msgpack_sbuffer_destroy(&sb);
        return dv_errorf(err, DV_EMSGSIZE,
                         "encoded model is %zu bytes, over the limit of %zu",
                         sb.size, DV_MAX_MODEL_BYTES);
    }
    size_t total = DV_MODELFILE_HEADER_BYTES + sb.size + TRAILER_BYTES;
    uint8_t *out = dv_try_malloc(total, 1);
    if (!out) {
        msgpack_sbuffer_destroy(&sb);
        return dv_errorf(err, DV_ENOMEM, "cannot allocate %zu bytes", total);
    }
    memcpy(out, DV_MODELFILE_MAGIC, 4);
    put_le16(out + 4, DV_MODELFILE_MAJOR);
    put_le16(out + 6, DV_MODELFILE_MINOR);
    put_le64(out + 8, sb.size);
    memcpy(out + DV_MODELFILE_HEADER_BYTES, sb.data, sb.size);
    dv_sha256(out, DV_MODELFILE_HEADER_BYTES + sb.size,
              out + DV_MODELFILE_HEADER_BYTES + sb.size);
    msgpack_sbuffer_destroy(&sb);
    *buf = out;
    *len = total;
    return 0;
}

// ------------------------------------------------------------------ decode

static int
get_str(const msgpack_object *map,
        const char *key,
        const char *path,
        char **out,
        dv_error_t *err)
{
    const msgpack_object *o = dv_msgpack_get(map, key);
    if (!o || o->type != MSGPACK_OBJECT_STR) {
        return dv_errorf(err, DV_EFORMAT, "%s%s: %s", path, key,
                         o ? "expected a string" : "missing");
    }
    if (o->via.str.size > DV_MAX_NAME_BYTES) {
        return dv_errorf(err, DV_EMSGSIZE,
                         "%s%s: string of %u bytes (limit %d)", path, key,
                         o->via.str.size, DV_MAX_NAME_BYTES);
    }
    if (memchr(o->via.str.ptr, '\0', o->via.str.size)) {
        return dv_errorf(err, DV_EFORMAT, "%s%s: string holds a NUL byte", path,
                         key);
    }
    char *s = dv_malloc(o->via.str.size + 1);
    memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = '\0';
    *out = s;
    return 0;
}

// A string element of an array (names, classes).
static int
str_elem(const msgpack_object *o,
         const char *what,
         size_t i,
         char **out,
         dv_error_t *err)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > DV_MAX_NAME_BYTES ||
        memchr(o->via.str.ptr, '\0', o->via.str.size)) {
        return dv_errorf(err, DV_EFORMAT,
                         "%s[%zu]: expected a string of at most %d bytes", what,
                         i, DV_MAX_NAME_BYTES);
    }
    char *s = dv_malloc(o->via.str.size + 1);
    memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = '\0';
    *out = s;
    return 0;
}

static int
get_uint(const msgpack_object *map,
         const char *key,
         const char *path,
         uint64_t max,
         uint64_t *out,
         dv_error_t *err)
{
    const msgpack_object *o = dv_msgpack_get(map, key);
    if (!dv_msgpack_uint(o, out)) {
        return dv_errorf(err, DV_EFORMAT, "%s%s: %s", path, key,
                         o ? "expected a non-negative integer" : "missing");
    }
    if (*out > max) {
        return dv_errorf(err, DV_EMSGSIZE, "%s%s: %llu exceeds the limit %llu",
                         path, key, (unsigned long long)*out,
                         (unsigned long long)max);
    }
    return 0;
}

// A bin of exactly n float32 into a new array (caller frees).
static int
get_floats(const msgpack_object *map,
           const char *key,
           const char *path,
           size_t n,
           float **out,
           dv_error_t *err)
{
    const msgpack_object *o = dv_msgpack_get(map, key);
    if (!o || o->type != MSGPACK_OBJECT_BIN) {
        return dv_errorf(err, DV_EFORMAT, "%s%s: %s", path, key,
                         o ? "expected bin" : "missing");
    }
    if (o->via.bin.size != n * sizeof(float)) {
        return dv_errorf(err, DV_EFORMAT,
                         "%s%s: expected bin of %zu bytes, got %u", path, key,
                         n * sizeof(float), o->via.bin.size);
    }
    float *v = dv_try_malloc(n ? n : 1, sizeof(float));
    if (!v) {
        return dv_errorf(err, DV_ENOMEM, "%s%s: cannot allocate %zu floats",
                         path, key, n);
    }
    const uint8_t *b = (const uint8_t *)o->via.bin.ptr;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
                     (uint32_t)b[4 * i + 2] << 16 |
                     (uint32_t)b[4 * i + 3] << 24;
        memcpy(&v[i], &u, 4);
    }
    *out = v;
    return 0;
}

// Optional training metadata: missing or mistyped fields keep their zero
// defaults, so a reader never refuses a model over bookkeeping.
static void
read_meta(const msgpack_object *meta, dv_model_meta_t *out)
{
    uint64_t u;
    double d;
    const msgpack_object *h = dv_msgpack_get(meta, "hyper");
    const msgpack_object *o;
    if ((o = dv_msgpack_get(h, "algo")) && o->type == MSGPACK_OBJECT_STR &&
        o->via.str.size < 16) {
        char name[16];
        memcpy(name, o->via.str.ptr, o->via.str.size);
        name[o->via.str.size] = '\0';
        dv_algo_parse(name, &out->hyper.algo);
    }
    if ((o = dv_msgpack_get(h, "scale")) && o->type == MSGPACK_OBJECT_STR &&
        o->via.str.size < 16) {
        char name[16];
        memcpy(name, o->via.str.ptr, o->via.str.size);
        name[o->via.str.size] = '\0';
        dv_scale_parse(name, &out->hyper.scale);
    }
    if (dv_msgpack_uint(dv_msgpack_get(h, "epochs"), &u) && u <= UINT32_MAX) {
        out->hyper.epochs = (uint32_t)u;
    }
    if (dv_msgpack_uint(dv_msgpack_get(h, "batch"), &u) && u <= UINT32_MAX) {
        out->hyper.batch = (uint32_t)u;
    }
    if (dv_msgpack_uint(dv_msgpack_get(h, "patience"), &u) && u <= UINT32_MAX) {
        out->hyper.patience = (uint32_t)u;
    }
    if (dv_msgpack_uint(dv_msgpack_get(h, "seed"), &u)) {
        out->hyper.seed = u;
    }
    if (dv_msgpack_double(dv_msgpack_get(h, "lr"), &d)) {
        out->hyper.lr = d;
    }
    if (dv_msgpack_double(dv_msgpack_get(h, "l2"), &d)) {
        out->hyper.l2 = d;
    }
    if (dv_msgpack_double(dv_msgpack_get(h, "tol"), &d)) {
        out->hyper.tol = d;
    }
    if ((o = dv_msgpack_get(h, "hidden")) && o->type == MSGPACK_OBJECT_ARRAY &&
        o->via.array.size <= DV_MAX_HIDDEN) {
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (dv_msgpack_uint(&o->via.array.ptr[i], &u) && u <= UINT32_MAX) {
                out->hyper.hidden[out->hyper.n_hidden++] = (uint32_t)u;
            }
        }
    }
    if ((o = dv_msgpack_get(meta, "dataset_sha256")) &&
        o->type == MSGPACK_OBJECT_BIN && o->via.bin.size == DV_SHA256_BYTES) {
        memcpy(out->dataset_sha256, o->via.bin.ptr, DV_SHA256_BYTES);
    }
    if (dv_msgpack_uint(dv_msgpack_get(meta, "dataset_rows"), &u)) {
        out->dataset_rows = u;
    }
    if (dv_msgpack_uint(dv_msgpack_get(meta, "epochs_run"), &u) &&
        u <= UINT32_MAX) {
        out->epochs_run = (uint32_t)u;
    }
    if (dv_msgpack_double(dv_msgpack_get(meta, "final_loss"), &d)) {
        out->final_loss = d;
    }
    if ((o = dv_msgpack_get(meta, "created_unix"))) {
        if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
            o->via.u64 <= INT64_MAX) {
            out->created_unix = (int64_t)o->via.u64;
        } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            out->created_unix = o->via.i64;
        }
    }
    const msgpack_object *tm = dv_msgpack_get(meta, "train_metrics");
    dv_metrics_t *m = &out->train_metrics;
    if ((o = dv_msgpack_get(tm, "task")) && o->type == MSGPACK_OBJECT_STR) {
        m->task = o->via.str.size == 14 &&
                          memcmp(o->via.str.ptr, "classification", 14) == 0
                      ? DV_TASK_CLASSIFICATION
                      : DV_TASK_REGRESSION;
    }
    static const struct {
        const char *key;
        size_t offset;
    } doubles[] = {
        {"mse", offsetof(dv_metrics_t, mse)},
        {"mae", offsetof(dv_metrics_t, mae)},
        {"r2", offsetof(dv_metrics_t, r2)},
        {"accuracy", offsetof(dv_metrics_t, accuracy)},
        {"precision_macro", offsetof(dv_metrics_t, precision_macro)},
        {"recall_macro", offsetof(dv_metrics_t, recall_macro)},
        {"f1_macro", offsetof(dv_metrics_t, f1_macro)},
        {"precision", offsetof(dv_metrics_t, precision)},
        {"recall", offsetof(dv_metrics_t, recall)},
        {"f1", offsetof(dv_metrics_t, f1)},
        {"log_loss", offsetof(dv_metrics_t, log_loss)},
    };
    for (size_t i = 0; i < sizeof doubles / sizeof doubles[0]; i++) {
        if (dv_msgpack_double(dv_msgpack_get(tm, doubles[i].key), &d)) {
            memcpy((char *)m + doubles[i].offset, &d, sizeof d);
        }
    }
    if (dv_msgpack_uint(dv_msgpack_get(tm, "rows"), &u)) {
        m->rows = u;
    }
    if (dv_msgpack_uint(dv_msgpack_get(tm, "n_classes"), &u) &&
        u <= DV_MAX_CLASSES) {
        m->n_classes = u;
    }
    m->confusion = NULL;
}

// Read the body's object tree into a new model.
static int
read_body(const msgpack_object *root, dv_model_t **out, dv_error_t *err)
{
    if (root->type != MSGPACK_OBJECT_MAP) {
        return dv_errorf(err, DV_EFORMAT, "body: expected a map");
    }
    dv_model_t *m = dv_model_new();
    char *text = NULL;
    float *offset = NULL, *scale = NULL;
    char **classes = NULL;
    size_t n_classes = 0;
    int rc = get_str(root, "kind", "", &text, err);
    if (rc) {
        goto fail;
    }
    if (strcmp(text, "dense_stack") != 0) {
        rc = dv_errorf(err, DV_EFORMAT,
                       "kind: '%.32s' is not a kind this "
                       "Drover reads",
                       text);
        goto fail;
    }
    free(text);
    text = NULL;
    if ((rc = get_str(root, "task", "", &text, err)) != 0) {
        goto fail;
    }
    if (strcmp(text, "regression") == 0) {
        m->task = DV_TASK_REGRESSION;
    } else if (strcmp(text, "classification") == 0) {
        m->task = DV_TASK_CLASSIFICATION;
    } else {
        rc = dv_errorf(err, DV_EFORMAT, "task: unknown task '%.32s'", text);
        goto fail;
    }
    free(text);
    text = NULL;

    const msgpack_object *feats = dv_msgpack_get(root, "features");
    if (!feats || feats->type != MSGPACK_OBJECT_ARRAY) {
        rc = dv_errorf(err, DV_EFORMAT, "features: %s",
                       feats ? "expected an array" : "missing");
        goto fail;
    }
    if (feats->via.array.size == 0 || feats->via.array.size > DV_MAX_COLUMNS) {
        rc = dv_errorf(err, DV_EMSGSIZE, "features: %u names (limit 1..%d)",
                       feats->via.array.size, DV_MAX_COLUMNS);
        goto fail;
    }
    m->feature_names = dv_calloc(feats->via.array.size, sizeof(char *));
    m->n_features = feats->via.array.size;
    for (size_t j = 0; j < m->n_features; j++) {
        rc = str_elem(&feats->via.array.ptr[j], "features", j,
                      &m->feature_names[j], err);
        if (rc) {
            goto fail;
        }
    }
    if ((rc = get_str(root, "target", "", &m->target_name, err)) != 0) {
        goto fail;
    }

    if (m->task == DV_TASK_CLASSIFICATION) {
        const msgpack_object *cl = dv_msgpack_get(root, "classes");
        if (!cl || cl->type != MSGPACK_OBJECT_ARRAY) {
            rc = dv_errorf(err, DV_EFORMAT, "classes: %s",
                           cl ? "expected an array" : "missing");
            goto fail;
        }
        if (cl->via.array.size > DV_MAX_CLASSES) {
            rc = dv_errorf(err, DV_EMSGSIZE, "classes: %u (limit %d)",
                           cl->via.array.size, DV_MAX_CLASSES);
            goto fail;
        }
        classes = dv_calloc(cl->via.array.size, sizeof(char *));
        for (size_t c = 0; c < cl->via.array.size; c++) {
            rc =
                str_elem(&cl->via.array.ptr[c], "classes", c, &classes[c], err);
            if (rc) {
                goto fail;
            }
            n_classes++;
        }
        const msgpack_object *num = dv_msgpack_get(root, "classes_numeric");
        bool numeric =
            num && num->type == MSGPACK_OBJECT_BOOLEAN && num->via.boolean;
        m->labels = dv_labels_new(classes, n_classes, numeric);
    }

    const msgpack_object *sc = dv_msgpack_get(root, "scaler");
    if (!sc || sc->type != MSGPACK_OBJECT_MAP) {
        rc = dv_errorf(err, DV_EFORMAT, "scaler: %s",
                       sc ? "expected a map" : "missing");
        goto fail;
    }
    dv_scale_t kind;
    if ((rc = get_str(sc, "kind", "scaler.", &text, err)) != 0) {
        goto fail;
    }
    if (dv_scale_parse(text, &kind) != 0) {
        rc = dv_errorf(err, DV_EFORMAT, "scaler.kind: unknown '%.32s'", text);
        goto fail;
    }
    free(text);
    text = NULL;
    if ((rc = get_floats(sc, "offset", "scaler.", m->n_features, &offset,
                         err)) != 0 ||
        (rc = get_floats(sc, "scale", "scaler.", m->n_features, &scale, err)) !=
            0) {
        goto fail;
    }
    m->scaler = dv_scaler_new(kind, m->n_features, offset, scale);
    double d;
    if (m->task == DV_TASK_REGRESSION) {
        if (!dv_msgpack_double(dv_msgpack_get(root, "y_offset"), &d)) {
            rc = dv_errorf(err, DV_EFORMAT,
                           "y_offset: missing or not a "
                           "number");
            goto fail;
        }
        m->y_offset = (float)d;
        if (!dv_msgpack_double(dv_msgpack_get(root, "y_scale"), &d)) {
            rc = dv_errorf(err, DV_EFORMAT,
                           "y_scale: missing or not a "
                           "number");
            goto fail;
        }
        m->y_scale = (float)d;
    }

    const msgpack_object *layers = dv_msgpack_get(root, "layers");
    if (!layers || layers->type != MSGPACK_OBJECT_ARRAY) {
        rc = dv_errorf(err, DV_EFORMAT, "layers: %s",
                       layers ? "expected an array" : "missing");
        goto fail;
    }
    size_t n_layers = layers->via.array.size;
    if (n_layers == 0 || n_layers > DV_MAX_LAYERS) {
        rc = dv_errorf(err, DV_EMSGSIZE, "layers: %zu (limit 1..%d)", n_layers,
                       DV_MAX_LAYERS);
        goto fail;
    }
    m->layers = dv_calloc(n_layers, sizeof(dv_layer_t));
    m->n_layers = n_layers;
    size_t params = 0;
    for (size_t l = 0; l < n_layers; l++) {
        const msgpack_object *lo = &layers->via.array.ptr[l];
        dv_layer_t *ly = &m->layers[l];
        char path[32];
        snprintf(path, sizeof path, "layers[%zu].", l);
        uint64_t n_in, n_out;
        if (lo->type != MSGPACK_OBJECT_MAP) {
            rc = dv_errorf(err, DV_EFORMAT, "%s: expected a map", path);
            goto fail;
        }
        if ((rc = get_uint(lo, "in", path, DV_MAX_LAYER_UNITS, &n_in, err)) ||
            (rc = get_uint(lo, "out", path, DV_MAX_LAYER_UNITS, &n_out, err))) {
            goto fail;
        }
        ly->n_in = (size_t)n_in;
        ly->n_out = (size_t)n_out;
        params += ly->n_in * ly->n_out + ly->n_out;
        if (params > DV_MAX_MODEL_PARAMS) {
            rc = dv_errorf(err, DV_EMSGSIZE,
                           "%sover %zu parameters in all (limit %zu)", path,
                           params, DV_MAX_MODEL_PARAMS);
            goto fail;
        }
        if ((rc = get_str(lo, "activation", path, &text, err)) != 0) {
            goto fail;
        }
        if (dv_act_parse(text, &ly->act) != 0) {
            rc = dv_errorf(err, DV_EFORMAT, "%sactivation: unknown '%.32s'",
                           path, text);
            goto fail;
        }
        free(text);
        text = NULL;
        if ((rc = get_floats(lo, "weights", path, ly->n_in * ly->n_out, &ly->w,
                             err)) ||
            (rc = get_floats(lo, "bias", path, ly->n_out, &ly->b, err))) {
            goto fail;
        }
    }
    const msgpack_object *meta = dv_msgpack_get(root, "meta");
    if (meta && meta->type == MSGPACK_OBJECT_MAP) {
        read_meta(meta, &m->meta);
    }
    const msgpack_object *ver = dv_msgpack_get(root, "drover_version");
    if (ver && ver->type == MSGPACK_OBJECT_STR &&
        ver->via.str.size < sizeof m->meta.drover_version) {
        memcpy(m->meta.drover_version, ver->via.str.ptr, ver->via.str.size);
        m->meta.drover_version[ver->via.str.size] = '\0';
    }
    if ((rc = dv_model_validate(m, err)) != 0) {
        goto fail;
    }
    for (size_t c = 0; c < n_classes; c++) {
        free(classes[c]);
    }
    free(classes);
    free(offset);
    free(scale);
    *out = m;
    return 0;
fail:
    for (size_t c = 0; c < n_classes; c++) {
        free(classes[c]);
    }
    free(classes);
    free(text);
    free(offset);
    free(scale);
    dv_model_destroy(&m);
    return rc;
}

int
dv_model_verify(const uint8_t *buf, size_t len, dv_error_t *err)
{
    if (len < DV_MODELFILE_HEADER_BYTES) {
        return dv_errorf(err, DV_ETRUNC,
                         "%zu bytes: too short for a model file header", len);
    }
    if (memcmp(buf, DV_MODELFILE_MAGIC, 4) != 0) {
        return dv_errorf(err, DV_EFORMAT,
                         "not a Drover model file (no DRVM magic)");
    }
    uint16_t major = get_le16(buf + 4), minor = get_le16(buf + 6);
    if (major != DV_MODELFILE_MAJOR) {
        return dv_errorf(err, DV_EVERSION,
                         "model file version %u.%u; this Drover reads %d.x",
                         major, minor, DV_MODELFILE_MAJOR);
    }
    uint64_t body = get_le64(buf + 8);
    if (body > DV_MAX_MODEL_BYTES) {
        return dv_errorf(err, DV_EMSGSIZE,
                         "body of %llu bytes exceeds the limit of %zu",
                         (unsigned long long)body, DV_MAX_MODEL_BYTES);
    }
    size_t want = DV_MODELFILE_HEADER_BYTES + (size_t)body + TRAILER_BYTES;
    if (len < want) {
        return dv_errorf(err, DV_ETRUNC,
                         "truncated: %zu bytes, the header announces %zu", len,
                         want);
    }
    if (len > want) {
        return dv_errorf(err, DV_ETRUNC,
                         "%zu trailing bytes after the checksum", len - want);
    }
    uint8_t digest[DV_SHA256_BYTES];
    dv_sha256(buf, DV_MODELFILE_HEADER_BYTES + (size_t)body, digest);
    if (memcmp(digest, buf + DV_MODELFILE_HEADER_BYTES + body,
               DV_SHA256_BYTES) != 0) {
        return dv_errorf(err, DV_ECHECKSUM,
                         "SHA-256 mismatch: the file is corrupted");
    }
    return 0;
}

int
dv_model_decode(dv_model_t **out,
                const uint8_t *buf,
                size_t len,
                dv_error_t *err)
{
    int rc = dv_model_verify(buf, len, err);
    if (rc) {
        return rc;
    }
    size_t body_len = len - DV_MODELFILE_HEADER_BYTES - TRAILER_BYTES;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    rc = dv_msgpack_unpack(&up, buf + DV_MODELFILE_HEADER_BYTES, body_len,
                           "body", err);
    if (rc == 0) {
        rc = read_body(&up.data, out, err);
    }
    msgpack_unpacked_destroy(&up);
    return rc;
}

static int
io_error(dv_error_t *err, const char *path, int e)
{
    int code = e == ENOENT   ? DV_ENOENT
               : e == EACCES ? DV_EACCES
               : e == ENOSPC ? DV_ENOSPC
                             : DV_EIO;
    return dv_errorf(err, code, "%s: %s", path, strerror(e));
}

int
dv_model_save(const dv_model_t *self, const char *path, dv_error_t *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = dv_model_encode(self, &buf, &len, err);
    if (rc) {
        return rc;
    }
    size_t plen = strlen(path);
    char *tmp = dv_malloc(plen + 16);
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = io_error(err, path, errno);
        goto done;
    }
    // mkstemp creates 0600; model files are ordinary readable files.
    fchmod(fd, 0644);
    size_t done_bytes = 0;
    while (done_bytes < len) {
        ssize_t w = write(fd, buf + done_bytes, len - done_bytes);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = io_error(err, path, errno);
            break;
        }
        done_bytes += (size_t)w;
    }
    // fsync before rename: after a crash the path holds the old file or the
    // whole new one, never a torn write.
    if (rc == 0 && fsync(fd) != 0) {
        rc = io_error(err, path, errno);
    }
    if (close(fd) != 0 && rc == 0) {
        rc = io_error(err, path, errno);
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = io_error(err, path, errno);
    }
    if (rc) {
        unlink(tmp);
    }
done:
    free(tmp);
    free(buf);
    return rc;
}

int
dv_model_load(dv_model_t **out, const char *path, dv_error_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return io_error(err, path, errno);
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return dv_errorf(err, DV_EIO, "%s: not a regular file", path);
    }
    uint64_t max =
        DV_MAX_MODEL_BYTES + DV_MODELFILE_HEADER_BYTES + TRAILER_BYTES;
    if ((uint64_t)st.st_size > max) {
        fclose(f);
        return dv_errorf(err, DV_EMSGSIZE,
                         "%s: %lld bytes, over the model size limit", path,
                         (long long)st.st_size);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = dv_try_malloc(size ? size : 1, 1);
    if (!buf) {
        fclose(f);
        return dv_errorf(err, DV_ENOMEM, "%s: cannot allocate %zu bytes", path,
                         size);
    }
    size_t got = fread(buf, 1, size, f);
    int bad = ferror(f);
    fclose(f);
    int rc;
    if (bad || got != size) {
        rc = dv_errorf(err, DV_EIO, "%s: read failed", path);
    } else {
        rc = dv_model_decode(out, buf, size, err);
        if (rc && err) {
            char text[DV_ERROR_TEXT_MAX];
            snprintf(text, sizeof text, "%s", err->text);
            dv_errorf(err, rc, "%s: %s", path, text);
        }
    }
    free(buf);
    return rc;
}
