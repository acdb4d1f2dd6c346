// dv_modelfile — the .drvm model file (docs/MODEL_FORMAT.md is the
// specification; keep the two in step).
//
//   header  16 bytes  "DRVM", u16 LE major, u16 LE minor, u64 LE body length
//   body    one msgpack map (string keys; parameters as bin of float32 LE)
//   trailer 32 bytes  SHA-256 of header + body
//
// Encoding is deterministic: keys in a fixed order, each value in the one
// msgpack form msgpack-c picks for it, and nothing the record does not hold
// (no clock, no host), so a model's bytes depend only on the model. The
// body is packed straight into the output buffer behind a reserved header,
// and every write is checked (msgpack_sbuffer drops a write it cannot grow
// for without telling the packer, which would checksum a torn body).
//
// Decoding trusts nothing, in this order: header, lengths, checksum
// (dv_model_verify); then dv_msgpack_unpack, which first walks the body
// without allocating and refuses any count or length that cannot fit in the
// bytes left, because msgpack-c 4.0 allocates an array's element table from
// its announced count before reading a single element; then the fields,
// each looked up by name, type-checked and size-checked against dv_limits.h
// before anything is allocated for it, errors naming the key path
// ("layers[1].weights"); last, dv_model_validate on the whole record.
// Unknown keys are ignored at every level (minor versions add keys).
//
// Save is atomic (temporary file in the same folder, fsync, rename), so
// after a crash the path holds the old file or the whole new one.
#include "dv_modelfile.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "dv_file.h"
#include "dv_le.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_msgpack.h"
#include "dv_sha256.h"

#define TRAILER_BYTES DV_SHA256_BYTES
// Header and trailer around the body.
#define FRAME_BYTES (DV_MODELFILE_HEADER_BYTES + TRAILER_BYTES)
// Longest key path in an error ("meta.train_metrics.precision_macro",
// "layers[63].activation") with room to spare, and the longest prefix
// ("layers[63]") a key is appended to.
#define PATH_MAX_BYTES    64
#define PATH_PREFIX_BYTES 32
// Enumeration names (algorithm, activation, scaler, task) are short; a
// longer string cannot name one.
#define ENUM_NAME_BYTES 32

// ------------------------------------------------------------------ encode

// Growable output for the packer: the file image being written.
typedef struct {
    uint8_t *data; // header (reserved) + body so far; owned
    size_t size;   // bytes used, header included
    size_t cap;    // bytes usable; TRAILER_BYTES more are allocated
    int failed;    // 0, or DV_ENOMEM / DV_EMSGSIZE once a write failed
} outbuf_t;

// msgpack_packer_write callback. Refuses to grow the body past
// DV_MAX_MODEL_BYTES, so an encoder never allocates more than a reader
// would accept.
static int
outbuf_write(void *data, const char *p, size_t n)
{
    outbuf_t *ob = data;
    if (ob->failed) {
        return -1;
    }
    size_t limit = DV_MODELFILE_HEADER_BYTES + DV_MAX_MODEL_BYTES;
    if (n > limit - ob->size) {
        ob->failed = DV_EMSGSIZE;
        return -1;
    }
    if (n > ob->cap - ob->size) {
        size_t cap = ob->cap ? ob->cap : 4096;
        while (cap - ob->size < n) {
            cap = cap > limit / 2 ? limit : cap * 2;
        }
        // The trailer goes on at the end: room for it once we are there.
        uint8_t *grown = realloc(ob->data, cap + TRAILER_BYTES);
        if (!grown) {
            ob->failed = DV_ENOMEM;
            return -1;
        }
        ob->data = grown;
        ob->cap = cap;
    }
    memcpy(ob->data + ob->size, p, n);
    ob->size += n;
    return 0;
}

static bool
host_is_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

// n floats as a bin of 4n bytes, each value IEEE-754 binary32 little-endian.
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
        memcpy(&u, &v[i], sizeof u);
        uint8_t b[4];
        dv_le_put32(b, u);
        msgpack_pack_bin_body(pk, b, sizeof b);
    }
}

// Only the scalars for m->task: the confusion matrix is not kept.
static void
pack_metrics(msgpack_packer *pk, const dv_metrics_t *m)
{
    bool cls = m->task == DV_TASK_CLASSIFICATION;
    msgpack_pack_map(pk, cls ? 11 : 5);
    dv_msgpack_pack_str(pk, "task");
    dv_msgpack_pack_str(pk, dv_task_name(m->task));
    dv_msgpack_pack_str(pk, "rows");
    msgpack_pack_uint64(pk, m->rows);
    if (!cls) {
        dv_msgpack_pack_str(pk, "mse");
        msgpack_pack_double(pk, m->mse);
        dv_msgpack_pack_str(pk, "mae");
        msgpack_pack_double(pk, m->mae);
        dv_msgpack_pack_str(pk, "r2");
        msgpack_pack_double(pk, m->r2);
        return;
    }
    dv_msgpack_pack_str(pk, "n_classes");
    msgpack_pack_uint64(pk, m->n_classes);
    dv_msgpack_pack_str(pk, "accuracy");
    msgpack_pack_double(pk, m->accuracy);
    dv_msgpack_pack_str(pk, "precision_macro");
    msgpack_pack_double(pk, m->precision_macro);
    dv_msgpack_pack_str(pk, "recall_macro");
    msgpack_pack_double(pk, m->recall_macro);
    dv_msgpack_pack_str(pk, "f1_macro");
    msgpack_pack_double(pk, m->f1_macro);
    dv_msgpack_pack_str(pk, "precision");
    msgpack_pack_double(pk, m->precision);
    dv_msgpack_pack_str(pk, "recall");
    msgpack_pack_double(pk, m->recall);
    dv_msgpack_pack_str(pk, "f1");
    msgpack_pack_double(pk, m->f1);
    dv_msgpack_pack_str(pk, "log_loss");
    msgpack_pack_double(pk, m->log_loss);
}

static void
pack_meta(msgpack_packer *pk, const dv_model_meta_t *meta)
{
    const dv_hyper_t *h = &meta->hyper;
    msgpack_pack_map(pk, 8);
    dv_msgpack_pack_str(pk, "hyper");
    msgpack_pack_map(pk, 12);
    dv_msgpack_pack_str(pk, "algo");
    dv_msgpack_pack_str(pk, dv_algo_name(h->algo));
    dv_msgpack_pack_str(pk, "scale");
    dv_msgpack_pack_str(pk, dv_scale_name(h->scale));
    dv_msgpack_pack_str(pk, "epochs");
    msgpack_pack_uint32(pk, h->epochs);
    dv_msgpack_pack_str(pk, "batch");
    msgpack_pack_uint32(pk, h->batch);
    dv_msgpack_pack_str(pk, "lr");
    msgpack_pack_double(pk, h->lr);
    dv_msgpack_pack_str(pk, "l2");
    msgpack_pack_double(pk, h->l2);
    dv_msgpack_pack_str(pk, "tol");
    msgpack_pack_double(pk, h->tol);
    dv_msgpack_pack_str(pk, "patience");
    msgpack_pack_uint32(pk, h->patience);
    dv_msgpack_pack_str(pk, "seed");
    msgpack_pack_uint64(pk, h->seed);
    dv_msgpack_pack_str(pk, "hidden");
    msgpack_pack_array(pk, h->n_hidden);
    for (uint32_t i = 0; i < h->n_hidden; i++) {
        msgpack_pack_uint32(pk, h->hidden[i]);
    }
    dv_msgpack_pack_str(pk, "init");
    dv_msgpack_pack_str(pk, dv_init_name(h->init));
    dv_msgpack_pack_str(pk, "validation_fraction");
    msgpack_pack_double(pk, h->validation_fraction);
    dv_msgpack_pack_str(pk, "dataset_sha256");
    msgpack_pack_bin(pk, DV_SHA256_BYTES);
    msgpack_pack_bin_body(pk, meta->dataset_sha256, DV_SHA256_BYTES);
    dv_msgpack_pack_str(pk, "dataset_rows");
    msgpack_pack_uint64(pk, meta->dataset_rows);
    dv_msgpack_pack_str(pk, "epochs_run");
    msgpack_pack_uint32(pk, meta->epochs_run);
    dv_msgpack_pack_str(pk, "final_loss");
    msgpack_pack_double(pk, meta->final_loss);
    dv_msgpack_pack_str(pk, "train_metrics");
    pack_metrics(pk, &meta->train_metrics);
    dv_msgpack_pack_str(pk, "created_unix");
    msgpack_pack_int64(pk, meta->created_unix);
    dv_msgpack_pack_str(pk, "drover_version");
    dv_msgpack_pack_str(pk, meta->drover_version);
}

// The body map; key order is part of the determinism promise.
static void
pack_body(msgpack_packer *pk, const dv_model_t *self)
{
    bool cls = self->task == DV_TASK_CLASSIFICATION;
    msgpack_pack_map(pk, cls ? 12 : 10);
    dv_msgpack_pack_str(pk, "kind");
    dv_msgpack_pack_str(pk, "dense_stack");
    dv_msgpack_pack_str(pk, "algo");
    dv_msgpack_pack_str(pk, dv_algo_name(self->meta.hyper.algo));
    dv_msgpack_pack_str(pk, "task");
    dv_msgpack_pack_str(pk, dv_task_name(self->task));
    dv_msgpack_pack_str(pk, "features");
    msgpack_pack_array(pk, self->n_features);
    for (size_t j = 0; j < self->n_features; j++) {
        dv_msgpack_pack_str(pk, self->feature_names[j]);
    }
    dv_msgpack_pack_str(pk, "target");
    dv_msgpack_pack_str(pk, self->target_name);
    if (cls) {
        dv_msgpack_pack_str(pk, "classes");
        msgpack_pack_array(pk, self->labels->n);
        for (size_t c = 0; c < self->labels->n; c++) {
            dv_msgpack_pack_str(pk, self->labels->labels[c]);
        }
        dv_msgpack_pack_str(pk, "classes_numeric");
        if (self->labels->numeric) {
            msgpack_pack_true(pk);
        } else {
            msgpack_pack_false(pk);
        }
    }
    dv_msgpack_pack_str(pk, "scaler");
    msgpack_pack_map(pk, 3);
    dv_msgpack_pack_str(pk, "kind");
    dv_msgpack_pack_str(pk, dv_scale_name(self->scaler->kind));
    dv_msgpack_pack_str(pk, "offset");
    pack_floats(pk, self->scaler->offset, self->scaler->n);
    dv_msgpack_pack_str(pk, "scale");
    pack_floats(pk, self->scaler->scale, self->scaler->n);
    // Classification has no output mapping: always 0 and 1, whatever the
    // record holds, so equal models give equal bytes.
    dv_msgpack_pack_str(pk, "y_offset");
    msgpack_pack_float(pk, cls ? 0.0f : self->y_offset);
    dv_msgpack_pack_str(pk, "y_scale");
    msgpack_pack_float(pk, cls ? 1.0f : self->y_scale);
    dv_msgpack_pack_str(pk, "layers");
    msgpack_pack_array(pk, self->n_layers);
    for (size_t l = 0; l < self->n_layers; l++) {
        const dv_layer_t *ly = &self->layers[l];
        msgpack_pack_map(pk, 5);
        dv_msgpack_pack_str(pk, "in");
        msgpack_pack_uint64(pk, ly->n_in);
        dv_msgpack_pack_str(pk, "out");
        msgpack_pack_uint64(pk, ly->n_out);
        dv_msgpack_pack_str(pk, "activation");
        dv_msgpack_pack_str(pk, dv_act_name(ly->act));
        dv_msgpack_pack_str(pk, "weights");
        pack_floats(pk, ly->w, ly->n_in * ly->n_out);
        dv_msgpack_pack_str(pk, "bias");
        pack_floats(pk, ly->b, ly->n_out);
    }
    dv_msgpack_pack_str(pk, "meta");
    pack_meta(pk, &self->meta);
}

static int
check_name(const char *name, const char *what, size_t i, dv_error_t *err)
{
    size_t n = strlen(name);
    if (n > DV_MAX_NAME_BYTES) {
        return dv_errorf(err, DV_EMSGSIZE,
                         "%s %zu is %zu bytes long (limit %d): the model "
                         "file cannot hold it",
                         what, i, n, DV_MAX_NAME_BYTES);
    }
    return 0;
}

// What dv_model_validate leaves to us: everything the reader would refuse
// must be refused here, so Drover never writes a file it cannot read.
static int
check_encodable(const dv_model_t *self, dv_error_t *err)
{
    int rc = 0;
    for (size_t j = 0; j < self->n_features && rc == 0; j++) {
        rc = check_name(self->feature_names[j], "feature name", j, err);
    }
    if (rc == 0) {
        rc = check_name(self->target_name, "target name", 0, err);
    }
    if (self->task == DV_TASK_CLASSIFICATION) {
        for (size_t c = 0; c < self->labels->n && rc == 0; c++) {
            rc = check_name(self->labels->labels[c], "class label", c, err);
        }
    }
    if (rc) {
        return rc;
    }
    const dv_model_meta_t *meta = &self->meta;
    dv_algo_t algo;
    dv_scale_t scale;
    if (dv_algo_parse(dv_algo_name(meta->hyper.algo), &algo) != 0 ||
        dv_scale_parse(dv_scale_name(meta->hyper.scale), &scale) != 0 ||
        dv_scale_parse(dv_scale_name(self->scaler->kind), &scale) != 0) {
        return dv_errorf(err, DV_EINVAL,
                         "unknown algorithm or scaler kind in the record");
    }
    if (meta->hyper.n_hidden > DV_MAX_HIDDEN) {
        return dv_errorf(err, DV_EINVAL, "%u hidden layers (limit %d)",
                         meta->hyper.n_hidden, DV_MAX_HIDDEN);
    }
    if (meta->train_metrics.task != DV_TASK_REGRESSION &&
        meta->train_metrics.task != DV_TASK_CLASSIFICATION) {
        return dv_errorf(err, DV_EINVAL, "unknown task in train_metrics");
    }
    if (meta->train_metrics.n_classes > DV_MAX_CLASSES) {
        return dv_errorf(err, DV_EINVAL, "train_metrics: %zu classes",
                         meta->train_metrics.n_classes);
    }
    if (!memchr(meta->drover_version, '\0', sizeof meta->drover_version)) {
        return dv_errorf(err, DV_EINVAL,
                         "drover_version is not NUL-terminated");
    }
    return 0;
}

int
dv_model_encode(const dv_model_t *self,
                uint8_t **buf,
                size_t *len,
                dv_error_t *err)
{
    int rc = dv_model_validate(self, err);
    if (rc == 0) {
        rc = check_encodable(self, err);
    }
    if (rc) {
        return rc;
    }
    outbuf_t ob = {0};
    static const uint8_t reserve[DV_MODELFILE_HEADER_BYTES] = {0};
    outbuf_write(&ob, (const char *)reserve, sizeof reserve);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &ob, outbuf_write);
    pack_body(&pk, self);
    if (ob.failed) {
        rc = ob.failed == DV_EMSGSIZE
                 ? dv_errorf(err, DV_EMSGSIZE,
                             "the encoded model exceeds %zu bytes",
                             DV_MAX_MODEL_BYTES)
                 : dv_errorf(err, DV_ENOMEM,
                             "out of memory encoding the model (%zu bytes "
                             "written)",
                             ob.size);
        free(ob.data);
        return rc;
    }
    size_t body = ob.size - DV_MODELFILE_HEADER_BYTES;
    memcpy(ob.data, DV_MODELFILE_MAGIC, 4);
    dv_le_put16(ob.data + 4, DV_MODELFILE_MAJOR);
    dv_le_put16(ob.data + 6, DV_MODELFILE_MINOR);
    dv_le_put64(ob.data + 8, body);
    // outbuf_write always leaves TRAILER_BYTES spare past cap.
    dv_sha256(ob.data, ob.size, ob.data + ob.size);
    *buf = ob.data;
    *len = ob.size + TRAILER_BYTES;
    return 0;
}

// ------------------------------------------------------------------ decode

static void
key_path(char *dst, const char *path, const char *key)
{
    snprintf(dst, PATH_MAX_BYTES, "%s%s%s", path, path[0] ? "." : "", key);
}

// The value of key in map into *out: NULL when absent (an error when
// required). A key Drover reads must appear once: a reader that took the
// first of two and one that took the last would see different models.
static int
field(const msgpack_object *map,
      const char *path,
      const char *key,
      bool required,
      const msgpack_object **out,
      dv_error_t *err)
{
    const msgpack_object *found = NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != klen ||
            memcmp(k->via.str.ptr, key, klen) != 0) {
            continue;
        }
        if (found) {
            char p[PATH_MAX_BYTES];
            key_path(p, path, key);
            return dv_errorf(err, DV_EFORMAT, "%s: key appears twice", p);
        }
        found = &map->via.map.ptr[i].val;
    }
    if (!found && required) {
        char p[PATH_MAX_BYTES];
        key_path(p, path, key);
        return dv_errorf(err, DV_EFORMAT, "%s: missing", p);
    }
    *out = found;
    return 0;
}

static const char *
type_name(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return "nil";
    case MSGPACK_OBJECT_BOOLEAN:
        return "a boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return "an integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return "a float";
    case MSGPACK_OBJECT_STR:
        return "a string";
    case MSGPACK_OBJECT_ARRAY:
        return "an array";
    case MSGPACK_OBJECT_MAP:
        return "a map";
    case MSGPACK_OBJECT_BIN:
        return "bin";
    default:
        return "an extension";
    }
}

static int
wrong_type(const char *path,
           const char *key,
           const char *want,
           const msgpack_object *o,
           dv_error_t *err)
{
    char p[PATH_MAX_BYTES];
    key_path(p, path, key);
    return dv_errorf(err, DV_EFORMAT, "%s: expected %s, got %s", p, want,
                     type_name(o));
}

// A map or array field; *out NULL when absent and optional.
static int
get_container(const msgpack_object *map,
              const char *path,
              const char *key,
              bool required,
              msgpack_object_type type,
              const msgpack_object **out,
              dv_error_t *err)
{
    int rc = field(map, path, key, required, out, err);
    if (rc == 0 && *out && (*out)->type != type) {
        rc = wrong_type(path, key,
                        type == MSGPACK_OBJECT_MAP ? "a map" : "an array", *out,
                        err);
    }
    return rc;
}

// Check a msgpack string for use as a name: at most limit bytes, no NUL.
static int
check_str(const msgpack_object *o, const char *p, size_t limit, dv_error_t *err)
{
    if (o->type != MSGPACK_OBJECT_STR) {
        return dv_errorf(err, DV_EFORMAT, "%s: expected a string, got %s", p,
                         type_name(o));
    }
    if (o->via.str.size > limit) {
        return dv_errorf(err, DV_EMSGSIZE, "%s: string of %u bytes (limit %zu)",
                         p, o->via.str.size, limit);
    }
    if (memchr(dv_msgpack_str_ptr(o), '\0', o->via.str.size)) {
        return dv_errorf(err, DV_EFORMAT, "%s: string holds a NUL byte", p);
    }
    return 0;
}

// A name (feature, target, class) at p into a new C string (caller frees).
static int
dup_name(const msgpack_object *o, const char *p, char **out, dv_error_t *err)
{
    int rc = check_str(o, p, DV_MAX_NAME_BYTES, err);
    if (rc) {
        return rc;
    }
    char *s = dv_malloc(o->via.str.size + 1);
    memcpy(s, dv_msgpack_str_ptr(o), o->via.str.size);
    s[o->via.str.size] = '\0';
    *out = s;
    return 0;
}

static int
get_name(const msgpack_object *map,
         const char *path,
         const char *key,
         char **out,
         dv_error_t *err)
{
    const msgpack_object *o;
    int rc = field(map, path, key, true, &o, err);
    if (rc == 0) {
        char p[PATH_MAX_BYTES];
        key_path(p, path, key);
        rc = dup_name(o, p, out, err);
    }
    return rc;
}

// An enumeration name (algo, activation, ...) into buf; *present false when
// absent and optional. Too long for buf means no known name.
static int
get_enum(const msgpack_object *map,
         const char *path,
         const char *key,
         bool required,
         char buf[ENUM_NAME_BYTES],
         bool *present,
         dv_error_t *err)
{
    const msgpack_object *o;
    int rc = field(map, path, key, required, &o, err);
    *present = rc == 0 && o;
    if (!*present) {
        return rc;
    }
    if (o->type != MSGPACK_OBJECT_STR) {
        return wrong_type(path, key, "a string", o, err);
    }
    size_t n = o->via.str.size < ENUM_NAME_BYTES - 1 ? o->via.str.size
                                                     : ENUM_NAME_BYTES - 1;
    memcpy(buf, dv_msgpack_str_ptr(o), n);
    buf[n] = '\0';
    if (n != o->via.str.size || memchr(buf, '\0', n)) {
        buf[0] = '?';
        buf[1] = '\0';
    }
    return 0;
}

static int
unknown_name(const char *path,
             const char *key,
             const char *name,
             dv_error_t *err)
{
    char p[PATH_MAX_BYTES];
    key_path(p, path, key);
    return dv_errorf(err, DV_EFORMAT, "%s: unknown '%s'", p, name);
}

// A non-negative integer; above max is code (DV_EMSGSIZE for counts).
static int
get_uint(const msgpack_object *map,
         const char *path,
         const char *key,
         bool required,
         uint64_t max,
         uint64_t *out,
         dv_error_t *err)
{
    const msgpack_object *o;
    int rc = field(map, path, key, required, &o, err);
    if (rc || !o) {
        return rc;
    }
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return wrong_type(path, key, "a non-negative integer", o, err);
    }
    if (o->via.u64 > max) {
        char p[PATH_MAX_BYTES];
        key_path(p, path, key);
        return dv_errorf(err, DV_EMSGSIZE, "%s: %llu exceeds the limit %llu", p,
                         (unsigned long long)o->via.u64,
                         (unsigned long long)max);
    }
    *out = o->via.u64;
    return 0;
}

// Optional u32 field into *out (left alone when absent).
static int
get_u32(const msgpack_object *map,
        const char *path,
        const char *key,
        uint32_t *out,
        dv_error_t *err)
{
    uint64_t v = *out;
    int rc = get_uint(map, path, key, false, UINT32_MAX, &v, err);
    *out = (uint32_t)v;
    return rc;
}

// A number (float, or an integer a writer used for a whole value).
static int
get_double(const msgpack_object *map,
           const char *path,
           const char *key,
           bool required,
           double *out,
           dv_error_t *err)
{
    const msgpack_object *o;
    int rc = field(map, path, key, required, &o, err);
    if (rc == 0 && o && !dv_msgpack_double(o, out)) {
        rc = wrong_type(path, key, "a number", o, err);
    }
    return rc;
}

// A bin of exactly n float32 into a new array (caller frees). n is bounded
// by the caller's limits, and the bin's size was bounded by the body.
static int
get_floats(const msgpack_object *map,
           const char *path,
           const char *key,
           size_t n,
           float **out,
           dv_error_t *err)
{
    const msgpack_object *o;
    char p[PATH_MAX_BYTES];
    key_path(p, path, key);
    int rc = field(map, path, key, true, &o, err);
    if (rc) {
        return rc;
    }
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != n * sizeof(float)) {
        return dv_errorf(err, DV_EFORMAT,
                         "%s: expected bin of %zu bytes, got %s%s%u%s", p,
                         n * sizeof(float), type_name(o),
                         o->type == MSGPACK_OBJECT_BIN ? " of " : "",
                         o->type == MSGPACK_OBJECT_BIN ? o->via.bin.size : 0,
                         o->type == MSGPACK_OBJECT_BIN ? " bytes" : "");
    }
    float *v = dv_try_malloc(n ? n : 1, sizeof(float));
    if (!v) {
        return dv_errorf(err, DV_ENOMEM, "%s: cannot allocate %zu floats", p,
                         n);
    }
    // Byte by byte: right on any host, and the bin need not be aligned.
    const uint8_t *b = (const uint8_t *)o->via.bin.ptr;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = dv_le_get32(b + 4 * i);
        memcpy(&v[i], &u, sizeof u);
    }
    *out = v;
    return 0;
}

static int
parse_task(const char *name, dv_task_t *out)
{
    if (strcmp(name, "regression") == 0) {
        *out = DV_TASK_REGRESSION;
    } else if (strcmp(name, "classification") == 0) {
        *out = DV_TASK_CLASSIFICATION;
    } else {
        return DV_EINVAL;
    }
    return 0;
}

// "features" into m->feature_names / m->n_features.
static int
read_features(const msgpack_object *root, dv_model_t *m, dv_error_t *err)
{
    const msgpack_object *a;
    int rc = get_container(root, "", "features", true, MSGPACK_OBJECT_ARRAY, &a,
                           err);
    if (rc) {
        return rc;
    }
    if (a->via.array.size == 0) {
        return dv_errorf(err, DV_EFORMAT, "features: empty");
    }
    if (a->via.array.size > DV_MAX_COLUMNS) {
        return dv_errorf(err, DV_EMSGSIZE, "features: %u names (limit %d)",
                         a->via.array.size, DV_MAX_COLUMNS);
    }
    m->feature_names = dv_calloc(a->via.array.size, sizeof(char *));
    m->n_features = a->via.array.size;
    for (size_t j = 0; j < m->n_features && rc == 0; j++) {
        char p[PATH_MAX_BYTES];
        snprintf(p, sizeof p, "features[%zu]", j);
        rc = dup_name(&a->via.array.ptr[j], p, &m->feature_names[j], err);
    }
    return rc;
}

// "classes" and "classes_numeric" into m->labels (classification only).
static int
read_classes(const msgpack_object *root, dv_model_t *m, dv_error_t *err)
{
    const msgpack_object *a, *num;
    int rc =
        get_container(root, "", "classes", true, MSGPACK_OBJECT_ARRAY, &a, err);
    if (rc == 0) {
        rc = field(root, "", "classes_numeric", true, &num, err);
    }
    if (rc) {
        return rc;
    }
    if (num->type != MSGPACK_OBJECT_BOOLEAN) {
        return wrong_type("", "classes_numeric", "a boolean", num, err);
    }
    size_t n = a->via.array.size;
    if (n > DV_MAX_CLASSES) {
        return dv_errorf(err, DV_EMSGSIZE, "classes: %zu labels (limit %d)", n,
                         DV_MAX_CLASSES);
    }
    char **labels = dv_calloc(n ? n : 1, sizeof(char *));
    for (size_t c = 0; c < n && rc == 0; c++) {
        char p[PATH_MAX_BYTES];
        snprintf(p, sizeof p, "classes[%zu]", c);
        rc = dup_name(&a->via.array.ptr[c], p, &labels[c], err);
    }
    if (rc == 0) {
        m->labels = dv_labels_new(labels, n, num->via.boolean);
    }
    for (size_t c = 0; c < n; c++) {
        free(labels[c]);
    }
    free(labels);
    return rc;
}

static int
read_scaler(const msgpack_object *root, dv_model_t *m, dv_error_t *err)
{
    const msgpack_object *sc;
    char name[ENUM_NAME_BYTES];
    bool present;
    dv_scale_t kind = DV_SCALE_NONE;
    float *offset = NULL, *scale = NULL;
    int rc =
        get_container(root, "", "scaler", true, MSGPACK_OBJECT_MAP, &sc, err);
    if (rc == 0) {
        rc = get_enum(sc, "scaler", "kind", true, name, &present, err);
    }
    if (rc == 0 && dv_scale_parse(name, &kind) != 0) {
        rc = unknown_name("scaler", "kind", name, err);
    }
    if (rc == 0) {
        rc = get_floats(sc, "scaler", "offset", m->n_features, &offset, err);
    }
    if (rc == 0) {
        rc = get_floats(sc, "scaler", "scale", m->n_features, &scale, err);
    }
    if (rc == 0) {
        m->scaler = dv_scaler_new(kind, m->n_features, offset, scale);
    }
    free(offset);
    free(scale);
    return rc;
}

static int
read_layer(const msgpack_object *lo,
           size_t l,
           dv_layer_t *ly,
           uint64_t *params,
           dv_error_t *err)
{
    char path[PATH_PREFIX_BYTES];
    snprintf(path, sizeof path, "layers[%zu]", l);
    if (lo->type != MSGPACK_OBJECT_MAP) {
        return dv_errorf(err, DV_EFORMAT, "%s: expected a map, got %s", path,
                         type_name(lo));
    }
    uint64_t n_in = 0, n_out = 0;
    int rc = get_uint(lo, path, "in", true, DV_MAX_LAYER_UNITS, &n_in, err);
    if (rc == 0) {
        rc = get_uint(lo, path, "out", true, DV_MAX_LAYER_UNITS, &n_out, err);
    }
    if (rc) {
        return rc;
    }
    // Both are at most 2^16, so the product and the running sum (at most 64
    // layers) cannot overflow 64 bits before the limit stops them. Checked
    // before any blob is allocated.
    *params += n_in * n_out + n_out;
    if (*params > DV_MAX_MODEL_PARAMS) {
        return dv_errorf(err, DV_EMSGSIZE,
                         "%s: the model passes %llu parameters (limit %zu)",
                         path, (unsigned long long)*params,
                         DV_MAX_MODEL_PARAMS);
    }
    ly->n_in = (size_t)n_in;
    ly->n_out = (size_t)n_out;
    char name[ENUM_NAME_BYTES];
    bool present;
    rc = get_enum(lo, path, "activation", true, name, &present, err);
    if (rc == 0 && dv_act_parse(name, &ly->act) != 0) {
        rc = unknown_name(path, "activation", name, err);
    }
    if (rc == 0) {
        rc = get_floats(lo, path, "weights", ly->n_in * ly->n_out, &ly->w, err);
    }
    if (rc == 0) {
        rc = get_floats(lo, path, "bias", ly->n_out, &ly->b, err);
    }
    return rc;
}

static int
read_layers(const msgpack_object *root, dv_model_t *m, dv_error_t *err)
{
    const msgpack_object *a;
    int rc =
        get_container(root, "", "layers", true, MSGPACK_OBJECT_ARRAY, &a, err);
    if (rc) {
        return rc;
    }
    size_t n = a->via.array.size;
    if (n == 0) {
        return dv_errorf(err, DV_EFORMAT, "layers: empty");
    }
    if (n > DV_MAX_LAYERS) {
        return dv_errorf(err, DV_EMSGSIZE, "layers: %zu (limit %d)", n,
                         DV_MAX_LAYERS);
    }
    m->layers = dv_calloc(n, sizeof(dv_layer_t));
    m->n_layers = n;
    uint64_t params = 0;
    for (size_t l = 0; l < n && rc == 0; l++) {
        rc = read_layer(&a->via.array.ptr[l], l, &m->layers[l], &params, err);
    }
    return rc;
}

// meta.hyper; *algo_seen tells read_body whether it named an algorithm.
static int
read_hyper(const msgpack_object *meta,
           dv_hyper_t *h,
           bool *algo_seen,
           dv_error_t *err)
{
    const char *p = "meta.hyper";
    const msgpack_object *hy, *hidden;
    int rc = get_container(meta, "meta", "hyper", false, MSGPACK_OBJECT_MAP,
                           &hy, err);
    if (rc || !hy) {
        return rc;
    }
    char name[ENUM_NAME_BYTES];
    bool present;
    if ((rc = get_enum(hy, p, "algo", false, name, algo_seen, err)) != 0) {
        return rc;
    }
    if (*algo_seen && dv_algo_parse(name, &h->algo) != 0) {
        return unknown_name(p, "algo", name, err);
    }
    if ((rc = get_enum(hy, p, "scale", false, name, &present, err)) != 0) {
        return rc;
    }
    if (present && dv_scale_parse(name, &h->scale) != 0) {
        return unknown_name(p, "scale", name, err);
    }
    // Absent in files written before it existed: those were Glorot.
    if ((rc = get_enum(hy, p, "init", false, name, &present, err)) != 0) {
        return rc;
    }
    if (present && dv_init_parse(name, &h->init) != 0) {
        return unknown_name(p, "init", name, err);
    }
    if ((rc = get_u32(hy, p, "epochs", &h->epochs, err)) ||
        (rc = get_u32(hy, p, "batch", &h->batch, err)) ||
        (rc = get_u32(hy, p, "patience", &h->patience, err)) ||
        (rc = get_uint(hy, p, "seed", false, UINT64_MAX, &h->seed, err)) ||
        (rc = get_double(hy, p, "lr", false, &h->lr, err)) ||
        (rc = get_double(hy, p, "l2", false, &h->l2, err)) ||
        (rc = get_double(hy, p, "tol", false, &h->tol, err)) ||
        (rc = get_double(hy, p, "validation_fraction", false,
                         &h->validation_fraction, err)) ||
        (rc = get_container(hy, p, "hidden", false, MSGPACK_OBJECT_ARRAY,
                            &hidden, err))) {
        return rc;
    }
    if (!hidden) {
        return 0;
    }
    if (hidden->via.array.size > DV_MAX_HIDDEN) {
        return dv_errorf(err, DV_EMSGSIZE,
                         "meta.hyper.hidden: %u layers (limit %d)",
                         hidden->via.array.size, DV_MAX_HIDDEN);
    }
    for (uint32_t i = 0; i < hidden->via.array.size; i++) {
        const msgpack_object *o = &hidden->via.array.ptr[i];
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            o->via.u64 > UINT32_MAX) {
            return dv_errorf(err, DV_EFORMAT,
                             "meta.hyper.hidden[%u]: expected an integer in "
                             "0..%u",
                             i, UINT32_MAX);
        }
        h->hidden[i] = (uint32_t)o->via.u64;
    }
    h->n_hidden = hidden->via.array.size;
    return 0;
}

static int
read_metrics(const msgpack_object *meta, dv_metrics_t *m, dv_error_t *err)
{
    const char *p = "meta.train_metrics";
    const msgpack_object *tm;
    int rc = get_container(meta, "meta", "train_metrics", false,
                           MSGPACK_OBJECT_MAP, &tm, err);
    if (rc || !tm) {
        return rc;
    }
    char name[ENUM_NAME_BYTES];
    bool present;
    if ((rc = get_enum(tm, p, "task", false, name, &present, err)) != 0) {
        return rc;
    }
    if (present && parse_task(name, &m->task) != 0) {
        return unknown_name(p, "task", name, err);
    }
    uint64_t rows = m->rows, n_classes = m->n_classes;
    if ((rc = get_uint(tm, p, "rows", false, SIZE_MAX, &rows, err)) ||
        (rc = get_uint(tm, p, "n_classes", false, DV_MAX_CLASSES, &n_classes,
                       err))) {
        return rc;
    }
    m->rows = (size_t)rows;
    m->n_classes = (size_t)n_classes;
    // Every scalar is read when present, whatever the task: a writer may
    // keep more than Drover's own does.
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
        double *d = (double *)((char *)m + doubles[i].offset);
        if ((rc = get_double(tm, p, doubles[i].key, false, d, err)) != 0) {
            return rc;
        }
    }
    return 0;
}

// Optional training record: absent keys keep their zero defaults, present
// ones must have the documented type.
static int
read_meta(const msgpack_object *root, dv_model_meta_t *out, dv_error_t *err)
{
    const msgpack_object *meta, *o;
    char name[ENUM_NAME_BYTES];
    bool top_algo, meta_algo = false;
    dv_algo_t algo = DV_ALGO_OLS;
    int rc = get_enum(root, "", "algo", false, name, &top_algo, err);
    if (rc == 0 && top_algo && dv_algo_parse(name, &algo) != 0) {
        rc = unknown_name("", "algo", name, err);
    }
    if (rc == 0) {
        rc = get_container(root, "", "meta", false, MSGPACK_OBJECT_MAP, &meta,
                           err);
    }
    if (rc == 0 && meta) {
        rc = read_hyper(meta, &out->hyper, &meta_algo, err);
    }
    if (rc) {
        return rc;
    }
    if (top_algo && meta_algo && algo != out->hyper.algo) {
        return dv_errorf(err, DV_EFORMAT,
                         "algo: '%s' but meta.hyper.algo is '%s'",
                         dv_algo_name(algo), dv_algo_name(out->hyper.algo));
    }
    if (top_algo && !meta_algo) {
        out->hyper.algo = algo;
    }
    if (!meta) {
        return 0;
    }
    uint64_t rows = out->dataset_rows;
    if ((rc = read_metrics(meta, &out->train_metrics, err)) ||
        (rc = get_uint(meta, "meta", "dataset_rows", false, UINT64_MAX, &rows,
                       err)) ||
        (rc = get_u32(meta, "meta", "epochs_run", &out->epochs_run, err)) ||
        (rc = get_double(meta, "meta", "final_loss", false, &out->final_loss,
                         err)) ||
        (rc = field(meta, "meta", "dataset_sha256", false, &o, err))) {
        return rc;
    }
    out->dataset_rows = rows;
    if (o) {
        if (o->type != MSGPACK_OBJECT_BIN ||
            o->via.bin.size != DV_SHA256_BYTES) {
            return dv_errorf(err, DV_EFORMAT,
                             "meta.dataset_sha256: expected bin of %d bytes",
                             DV_SHA256_BYTES);
        }
        memcpy(out->dataset_sha256, o->via.bin.ptr, DV_SHA256_BYTES);
    }
    if ((rc = field(meta, "meta", "created_unix", false, &o, err)) != 0) {
        return rc;
    }
    if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        out->created_unix = o->via.i64;
    } else if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
               o->via.u64 <= INT64_MAX) {
        out->created_unix = (int64_t)o->via.u64;
    } else if (o) {
        return wrong_type("meta", "created_unix", "a 64-bit integer", o, err);
    }
    if ((rc = field(meta, "meta", "drover_version", false, &o, err)) != 0) {
        return rc;
    }
    if (o) {
        rc = check_str(o, "meta.drover_version", sizeof out->drover_version - 1,
                       err);
        if (rc) {
            return rc;
        }
        memcpy(out->drover_version, dv_msgpack_str_ptr(o), o->via.str.size);
        out->drover_version[o->via.str.size] = '\0';
    }
    out->train_metrics.confusion = NULL;
    return 0;
}

// The body's object tree into a new model (*out only on success).
static int
read_body(const msgpack_object *root, dv_model_t **out, dv_error_t *err)
{
    if (root->type != MSGPACK_OBJECT_MAP) {
        return dv_errorf(err, DV_EFORMAT, "body: expected a map, got %s",
                         type_name(root));
    }
    dv_model_t *m = dv_model_new();
    char name[ENUM_NAME_BYTES];
    bool present;
    int rc = get_enum(root, "", "kind", true, name, &present, err);
    if (rc) {
        goto fail;
    }
    if (strcmp(name, "dense_stack") != 0) {
        rc = dv_errorf(err, DV_EFORMAT,
                       "kind: '%s' is not a kind this Drover reads", name);
        goto fail;
    }
    if ((rc = get_enum(root, "", "task", true, name, &present, err)) != 0) {
        goto fail;
    }
    if (parse_task(name, &m->task) != 0) {
        rc = unknown_name("", "task", name, err);
        goto fail;
    }
    if ((rc = read_features(root, m, err)) != 0 ||
        (rc = get_name(root, "", "target", &m->target_name, err)) != 0) {
        goto fail;
    }
    if (m->task == DV_TASK_CLASSIFICATION &&
        (rc = read_classes(root, m, err)) != 0) {
        goto fail;
    }
    if ((rc = read_scaler(root, m, err)) != 0) {
        goto fail;
    }
    if (m->task == DV_TASK_REGRESSION) {
        double off = 0, scale = 1;
        if ((rc = get_double(root, "", "y_offset", true, &off, err)) != 0 ||
            (rc = get_double(root, "", "y_scale", true, &scale, err)) != 0) {
            goto fail;
        }
        m->y_offset = (float)off;
        m->y_scale = (float)scale;
    }
    if ((rc = read_layers(root, m, err)) != 0 ||
        (rc = read_meta(root, &m->meta, err)) != 0 ||
        (rc = dv_model_validate(m, err)) != 0) {
        goto fail;
    }
    *out = m;
    return 0;
fail:
    dv_model_destroy(&m);
    return rc;
}

// Header, lengths and checksum: the first half of decoding, in the order
// docs/MODEL_FORMAT.md gives.
static int
check_frame(const uint8_t *buf, size_t len, dv_error_t *err)
{
    if (len < DV_MODELFILE_HEADER_BYTES) {
        return dv_errorf(err, DV_ETRUNC,
                         "%zu bytes: too short for a model file header", len);
    }
    if (memcmp(buf, DV_MODELFILE_MAGIC, 4) != 0) {
        return dv_errorf(err, DV_EFORMAT,
                         "not a Drover model file (no DRVM magic)");
    }
    uint16_t major = dv_le_get16(buf + 4), minor = dv_le_get16(buf + 6);
    if (major != DV_MODELFILE_MAJOR) {
        return dv_errorf(err, DV_EVERSION,
                         "model file version %u.%u, this Drover reads %d.x",
                         major, minor, DV_MODELFILE_MAJOR);
    }
    uint64_t body = dv_le_get64(buf + 8);
    if (body > DV_MAX_MODEL_BYTES) {
        return dv_errorf(err, DV_EMSGSIZE,
                         "body of %llu bytes exceeds the limit of %zu",
                         (unsigned long long)body, DV_MAX_MODEL_BYTES);
    }
    // body <= 2^31: the sum fits a size_t.
    size_t want = (size_t)body + FRAME_BYTES;
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
    dv_sha256(buf, want - TRAILER_BYTES, digest);
    if (memcmp(digest, buf + want - TRAILER_BYTES, DV_SHA256_BYTES) != 0) {
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
    int rc = check_frame(buf, len, err);
    if (rc) {
        return rc;
    }
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    rc = dv_msgpack_unpack(&up, buf + DV_MODELFILE_HEADER_BYTES,
                           len - FRAME_BYTES, "body", err);
    if (rc == 0) {
        rc = read_body(&up.data, out, err);
    }
    msgpack_unpacked_destroy(&up);
    return rc;
}

// ------------------------------------------------------------------ files

int
dv_model_save(const dv_model_t *self, const char *path, dv_error_t *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = dv_model_encode(self, &buf, &len, err);
    if (rc == 0) {
        rc = dv_file_write_atomic(path, buf, len, err);
    }
    free(buf);
    return rc;
}

int
dv_model_load(dv_model_t **out, const char *path, dv_error_t *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = dv_file_read(path, (size_t)DV_MAX_MODEL_BYTES + FRAME_BYTES, &buf,
                          &len, err);
    if (rc) {
        return rc;
    }
    rc = dv_model_decode(out, buf, len, err);
    if (rc && err) {
        char text[DV_ERROR_TEXT_MAX];
        snprintf(text, sizeof text, "%s", err->text);
        dv_errorf(err, rc, "%s: %s", path, text);
    }
    free(buf);
    return rc;
}

int
dv_model_verify(const uint8_t *buf, size_t len, dv_error_t *err)
{
    return check_frame(buf, len, err);
}
