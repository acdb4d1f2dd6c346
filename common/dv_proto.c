// dv_proto — message header codec (docs/PROTOCOL.md).
//
// Reading: the header goes through dv_msgpack_unpack (bounded allocation on
// hostile counts), then the common keys are checked once in dv_msg_decode;
// typed accessors check each further field when the handler asks for it, so
// a handler's first failed accessor gives the reply's error text.
//
// Writing: fields are packed into a body buffer as they come and counted;
// dv_msgw_bytes prepends the map header (its count is only known then) and
// the common keys v, t, rid, which always come first.
#include "dv_proto.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "dv_le.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_metrics.h"
#include "dv_msgpack.h"
#include "dv_prep.h"
#include "dv_train.h"

static const char *s_names[] = {
#define XX(name, text) text,
    DV_MSG_MAP(XX)
#undef XX
};

const char *
dv_msg_name(dv_msg_type_t type)
{
    return (size_t)type < DV_MSG_COUNT_ ? s_names[type] : "unknown";
}

struct dv_msg {
    msgpack_unpacked up;        // decoded header tree (points into header)
    const msgpack_object *root; // the header map
    dv_msg_type_t type;         // "t"
    uint64_t rid;               // "rid", 0 when absent
    unsigned minor;             // sender's minor version
    const dv_frame_t *frames;   // payload frames, borrowed
    size_t n_frames;            // their count
    bool view;                  // dv_msg_view: up is its parent's
    size_t depth;               // how deep the header nests (dv_msg_depth)
};

static bool
str_is(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

int
dv_msg_decode(dv_msg_t **out,
              const uint8_t *header,
              size_t header_len,
              const dv_frame_t *frames,
              size_t n_frames,
              uint64_t *rid_out,
              dv_error_t *err)
{
    if (rid_out) {
        *rid_out = 0;
    }
    if (header_len > DV_MAX_HEADER_BYTES) {
        return dv_errorf(err, DV_EMSGSIZE,
                         "header of %zu bytes exceeds the limit of %d",
                         header_len, DV_MAX_HEADER_BYTES);
    }
    if (n_frames > DV_MAX_FRAMES) {
        return dv_errorf(err, DV_EMSGSIZE,
                         "%zu payload frames exceed the limit of %d", n_frames,
                         DV_MAX_FRAMES);
    }
    dv_msg_t *self = dv_calloc(1, sizeof *self);
    msgpack_unpacked_init(&self->up);
    int rc = dv_msgpack_unpack_depth(&self->up, header, header_len, "header",
                                     &self->depth, err);
    if (rc) {
        goto fail;
    }
    self->root = &self->up.data;
    if (self->root->type != MSGPACK_OBJECT_MAP) {
        rc = dv_errorf(err, DV_EFORMAT, "header: expected a msgpack map");
        goto fail;
    }
    const msgpack_object *rid = dv_msgpack_get(self->root, "rid");
    if (rid && !dv_msgpack_uint(rid, &self->rid)) {
        rc = dv_errorf(err, DV_EFORMAT,
                       "header: 'rid' must be an unsigned "
                       "integer");
        goto fail;
    }
    if (rid_out) {
        *rid_out = self->rid;
    }
    const msgpack_object *v = dv_msgpack_get(self->root, "v");
    uint64_t major = 0, minor = 0;
    if (!v || v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size < 2 ||
        !dv_msgpack_uint(&v->via.array.ptr[0], &major) ||
        !dv_msgpack_uint(&v->via.array.ptr[1], &minor)) {
        rc = dv_errorf(err, DV_EFORMAT,
                       "header: 'v' must be [major, minor] (protocol %d.%d)",
                       DV_PROTOCOL_MAJOR, DV_PROTOCOL_MINOR);
        goto fail;
    }
    if (major != DV_PROTOCOL_MAJOR) {
        rc = dv_errorf(err, DV_EVERSION,
                       "protocol %llu.%llu; this side speaks %d.x",
                       (unsigned long long)major, (unsigned long long)minor,
                       DV_PROTOCOL_MAJOR);
        goto fail;
    }
    self->minor = minor > 65535 ? 65535 : (unsigned)minor;
    const msgpack_object *t = dv_msgpack_get(self->root, "t");
    if (!t || t->type != MSGPACK_OBJECT_STR) {
        rc = dv_errorf(err, DV_EFORMAT, "header: 't' (message type) %s",
                       t ? "must be a string" : "missing");
        goto fail;
    }
    self->type = DV_MSG_COUNT_;
    for (size_t i = 0; i < DV_MSG_COUNT_; i++) {
        if (str_is(t, s_names[i])) {
            self->type = (dv_msg_type_t)i;
            break;
        }
    }
    if (self->type == DV_MSG_COUNT_) {
        rc = dv_errorf(err, DV_EFORMAT, "unknown message type '%.*s'",
                       (int)(t->via.str.size < 32 ? t->via.str.size : 32),
                       t->via.str.ptr);
        goto fail;
    }
    self->frames = frames;
    self->n_frames = n_frames;
    *out = self;
    return 0;
fail:
    dv_msg_destroy(&self);
    return rc;
}

// Point self (zeroed by the caller) at map as a view of parent's header.
static int
view_init(dv_msg_t *self,
          const dv_msg_t *parent,
          const struct msgpack_object *map,
          dv_msg_type_t type,
          const dv_frame_t *frames,
          size_t n_frames,
          dv_error_t *err)
{
    uint64_t rid = 0;
    const msgpack_object *r = dv_msgpack_get(map, "rid");
    if (!map || map->type != MSGPACK_OBJECT_MAP) {
        return dv_errorf(err, DV_EFORMAT, "a request must be a map");
    }
    if (!r || !dv_msgpack_uint(r, &rid) || rid == 0) {
        return dv_errorf(err, DV_EFORMAT,
                         "a request needs its own 'rid' (a non-zero "
                         "unsigned integer)");
    }
    self->view = true;
    self->root = map;
    self->type = type;
    self->rid = rid;
    self->minor = parent->minor;
    self->depth = parent->depth;
    self->frames = frames;
    self->n_frames = n_frames;
    return 0;
}

int
dv_msg_view(dv_msg_t **out,
            const dv_msg_t *parent,
            const struct msgpack_object *map,
            dv_msg_type_t type,
            const dv_frame_t *frames,
            size_t n_frames,
            dv_error_t *err)
{
    dv_msg_t *self = dv_calloc(1, sizeof *self);
    int rc = view_init(self, parent, map, type, frames, n_frames, err);
    if (rc) {
        free(self);
        return rc;
    }
    *out = self;
    return 0;
}

// One block for all: a submit_many's views were ~180 allocations made
// together and freed together, past what glibc's per-thread cache holds
// (7 a size), so each went through _int_malloc (perf: ~4% of the broker).
int
dv_msg_views(dv_msg_t **views,
             const dv_msg_t *parent,
             const struct msgpack_object *maps,
             size_t n,
             dv_msg_type_t type,
             const dv_frame_t *frames,
             size_t *bad,
             dv_error_t *err)
{
    dv_msg_t *block = dv_calloc(n ? n : 1, sizeof *block);
    for (size_t i = 0; i < n; i++) {
        views[i] = &block[i];
        int rc =
            view_init(views[i], parent, &maps[i], type, &frames[i], 1, err);
        if (rc) {
            *bad = i;
            return rc;
        }
    }
    return 0;
}

void
dv_msg_views_free(dv_msg_t **views, size_t n)
{
    if (views && n) {
        free(views[0]);
        memset(views, 0, n * sizeof *views);
    }
}

void
dv_msg_destroy(dv_msg_t **self_p)
{
    if (self_p && *self_p) {
        if (!(*self_p)->view) {
            msgpack_unpacked_destroy(&(*self_p)->up);
        }
        free(*self_p);
        *self_p = NULL;
    }
}

dv_msg_type_t
dv_msg_type(const dv_msg_t *self)
{
    return self->type;
}

uint64_t
dv_msg_rid(const dv_msg_t *self)
{
    return self->rid;
}

unsigned
dv_msg_minor(const dv_msg_t *self)
{
    return self->minor;
}

size_t
dv_msg_n_frames(const dv_msg_t *self)
{
    return self->n_frames;
}

const dv_frame_t *
dv_msg_frame(const dv_msg_t *self, size_t i)
{
    return i >= 1 && i <= self->n_frames ? &self->frames[i - 1] : NULL;
}

bool
dv_msg_has(const dv_msg_t *self, const char *key)
{
    return dv_msgpack_get(self->root, key) != NULL;
}

// Copy a msgpack string into buf; what names it in errors.
static int
copy_str(const msgpack_object *o,
         const char *type,
         const char *what,
         char *buf,
         size_t size,
         dv_error_t *err)
{
    if (!o || o->type != MSGPACK_OBJECT_STR) {
        return dv_errorf(err, DV_EFORMAT, "%s: '%s' %s", type, what,
                         o ? "must be a string" : "is missing");
    }
    if (o->via.str.size >= size) {
        return dv_errorf(err, DV_EMSGSIZE,
                         "%s: '%s' is %u bytes, the limit is %zu", type, what,
                         o->via.str.size, size - 1);
    }
    if (memchr(dv_msgpack_str_ptr(o), '\0', o->via.str.size)) {
        return dv_errorf(err, DV_EFORMAT, "%s: '%s' holds a NUL byte", type,
                         what);
    }
    memcpy(buf, dv_msgpack_str_ptr(o), o->via.str.size);
    buf[o->via.str.size] = '\0';
    return 0;
}

int
dv_msg_str(const dv_msg_t *self,
           const char *key,
           char *buf,
           size_t size,
           dv_error_t *err)
{
    return copy_str(dv_msgpack_get(self->root, key), s_names[self->type], key,
                    buf, size, err);
}

int
dv_msg_uint(const dv_msg_t *self,
            const char *key,
            uint64_t *out,
            dv_error_t *err)
{
    const msgpack_object *o = dv_msgpack_get(self->root, key);
    if (!dv_msgpack_uint(o, out)) {
        return dv_errorf(err, DV_EFORMAT, "%s: '%s' %s", s_names[self->type],
                         key, o ? "must be an unsigned integer" : "is missing");
    }
    return 0;
}

int
dv_msg_uint_or(const dv_msg_t *self,
               const char *key,
               uint64_t dflt,
               uint64_t *out,
               dv_error_t *err)
{
    if (!dv_msgpack_get(self->root, key)) {
        *out = dflt;
        return 0;
    }
    return dv_msg_uint(self, key, out, err);
}

int
dv_msg_bool_or(const dv_msg_t *self,
               const char *key,
               bool dflt,
               bool *out,
               dv_error_t *err)
{
    const msgpack_object *o = dv_msgpack_get(self->root, key);
    if (!o) {
        *out = dflt;
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_BOOLEAN) {
        return dv_errorf(err, DV_EFORMAT, "'%s' must be a boolean", key);
    }
    *out = o->via.boolean;
    return 0;
}

int
dv_msg_int_or(const dv_msg_t *self,
              const char *key,
              int64_t dflt,
              int64_t *out,
              dv_error_t *err)
{
    const msgpack_object *o = dv_msgpack_get(self->root, key);
    if (!o) {
        *out = dflt;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        o->via.u64 <= (uint64_t)INT64_MAX) {
        *out = (int64_t)o->via.u64;
        return 0;
    }
    return dv_errorf(err, DV_EFORMAT, "%s: '%s' must be an integer",
                     s_names[self->type], key);
}

int
dv_msg_bin(const dv_msg_t *self,

           const char *key,
           const uint8_t **data,
           size_t *len,
           size_t want_len,
           dv_error_t *err)
{
    const msgpack_object *o = dv_msgpack_get(self->root, key);
    if (!o || o->type != MSGPACK_OBJECT_BIN ||
        (want_len && o->via.bin.size != want_len)) {
        return dv_errorf(err, DV_EFORMAT, "%s: '%s' must be bin%s",
                         s_names[self->type], key,
                         want_len ? " of the documented size" : "");
    }
    *data = (const uint8_t *)o->via.bin.ptr;
    *len = o->via.bin.size;
    return 0;
}

// Copy at most size - 1 bytes of string o into buf, cut at a NUL byte (a
// peer's reason is shown, never trusted to fit). Returns false when o is not
// a string.
static bool
copy_cut(const msgpack_object *o, char *buf, size_t size)
{
    if (!o || o->type != MSGPACK_OBJECT_STR || size == 0) {
        return false;
    }
    size_t n = o->via.str.size < size - 1 ? o->via.str.size : size - 1;
    const char *nul = memchr(dv_msgpack_str_ptr(o), '\0', n);
    if (nul) {
        n = (size_t)(nul - o->via.str.ptr);
    }
    memcpy(buf, dv_msgpack_str_ptr(o), n);
    buf[n] = '\0';
    return true;
}

int
dv_msg_error(
    const dv_msg_t *self, int *code, char *text, size_t size, dv_error_t *err)
{
    // Whatever the peer sent, *code and text are defined on return: callers
    // record the failure with them even when the map is malformed.
    *code = DV_EFORMAT;
    if (size > 0) {
        text[0] = '\0';
    }
    const char *type = s_names[self->type];
    const msgpack_object *e = dv_msgpack_get(self->root, "error");
    if (!e || e->type != MSGPACK_OBJECT_MAP) {
        snprintf(text, size, "%s from peer without an 'error' map", type);
        return dv_errorf(err, DV_EFORMAT, "%s: 'error' must be a map", type);
    }
    const msgpack_object *n = dv_msgpack_get(e, "name");
    const msgpack_object *t = dv_msgpack_get(e, "text");
    char name[64]; // longer than any DV_E name: an unknown one is cut
    if (!copy_cut(n, name, sizeof name) || name[0] == '\0') {
        snprintf(text, size, "%s from peer without an error name", type);
        return dv_errorf(err, DV_EFORMAT, "%s: 'error.name' must be a string",
                         type);
    }
    char reason[DV_ERROR_TEXT_MAX] = "";
    bool has_text = copy_cut(t, reason, sizeof reason);
    *code = dv_err_code(name);
    if (*code == 0) {
        // A newer peer's error (or a long made-up name, cut): keep its name
        // visible to the user.
        snprintf(text, size, "%s: %s", name, reason);
        *code = DV_EFORMAT;
    } else {
        snprintf(text, size, "%s", reason);
    }
    if (!has_text) {
        return dv_errorf(err, DV_EFORMAT, "%s: 'error.text' %s", type,
                         t ? "must be a string" : "is missing");
    }
    return 0;
}

int
dv_msg_tensor_desc(const dv_msg_t *self,
                   const char *key,
                   size_t max_rows,
                   const dv_frame_t **frame_out,
                   size_t *rows_out,
                   size_t *cols_out,
                   dv_error_t *err)
{
    const char *type = s_names[self->type];
    const msgpack_object *m = dv_msgpack_get(self->root, key);
    if (!m || m->type != MSGPACK_OBJECT_MAP) {
        return dv_errorf(err, DV_EFORMAT, "%s: '%s' must be a tensor map", type,
                         key);
    }
    uint64_t frame = 0, rows = 0, cols = 0;
    const msgpack_object *dtype = dv_msgpack_get(m, "dtype");
    const msgpack_object *shape = dv_msgpack_get(m, "shape");
    if (!dv_msgpack_uint(dv_msgpack_get(m, "frame"), &frame) || !dtype ||
        !shape || shape->type != MSGPACK_OBJECT_ARRAY ||
        shape->via.array.size != 2 ||
        !dv_msgpack_uint(&shape->via.array.ptr[0], &rows) ||
        !dv_msgpack_uint(&shape->via.array.ptr[1], &cols)) {
        return dv_errorf(err, DV_EFORMAT,
                         "%s: '%s' needs frame, dtype and shape [rows, cols]",
                         type, key);
    }
    if (!str_is(dtype, "f32")) {
        return dv_errorf(err, DV_EDTYPE,
                         "%s: '%s' dtype must be \"f32\" (float32, "
                         "little-endian)",
                         type, key);
    }
    const dv_frame_t *f = dv_msg_frame(self, frame);
    if (!f) {
        return dv_errorf(err, DV_EFORMAT,
                         "%s: '%s' names frame %llu; the message has %zu", type,
                         key, (unsigned long long)frame, self->n_frames);
    }
    if (rows > max_rows || cols == 0 || cols > DV_MAX_COLUMNS) {
        return dv_errorf(err, DV_EMSGSIZE,
                         "%s: '%s' shape [%llu, %llu] exceeds the limits "
                         "(rows <= %zu, 1 <= cols <= %d)",
                         type, key, (unsigned long long)rows,
                         (unsigned long long)cols, max_rows, DV_MAX_COLUMNS);
    }
    if (f->len != rows * cols * 4) {
        return dv_errorf(err, DV_ESHAPE,
                         "%s: '%s' shape [%llu, %llu] needs %llu bytes, frame "
                         "%llu has %zu",
                         type, key, (unsigned long long)rows,
                         (unsigned long long)cols,
                         (unsigned long long)(rows * cols * 4),
                         (unsigned long long)frame, f->len);
    }
    *frame_out = f;
    *rows_out = (size_t)rows;
    *cols_out = (size_t)cols;
    return 0;
}

int
dv_tensor_from_frame(const dv_frame_t *f,
                     size_t rows,
                     size_t cols,
                     dv_tensor_t **out,
                     dv_error_t *err)
{
    dv_assert(f->len == rows * cols * 4);
    dv_tensor_t *t = NULL;
    int rc = dv_tensor_open(&t, rows, cols, err);
    if (rc) {
        return rc;
    }
    dv_floats_from_wire(t->data, f->data, rows * cols);
    *out = t;
    return 0;
}

int
dv_msg_tensor(const dv_msg_t *self,
              const char *key,
              size_t max_rows,
              dv_tensor_t **out,
              dv_error_t *err)
{
    const dv_frame_t *f = NULL;
    size_t rows = 0, cols = 0;
    int rc = dv_msg_tensor_desc(self, key, max_rows, &f, &rows, &cols, err);
    return rc ? rc : dv_tensor_from_frame(f, rows, cols, out, err);
}

const struct msgpack_object *
dv_msg_get(const dv_msg_t *self, const char *key)
{
    return dv_msgpack_get(self->root, key);
}

const struct msgpack_object *
dv_msg_root(const dv_msg_t *self)
{
    return self->root;
}

size_t
dv_msg_depth(const dv_msg_t *self)
{
    return self->depth;
}

int
dv_msg_check_peer_depth(const dv_msg_t *self, dv_error_t *err)
{
    if (self->depth > DV_MAX_PEER_MSGPACK_DEPTH) {
        return dv_errorf(err, DV_EFORMAT,
                         "header: arrays and maps nested %zu deep (at most "
                         "%d in what the broker takes)",
                         self->depth, DV_MAX_PEER_MSGPACK_DEPTH);
    }
    return 0;
}

// The strings of array o, each copied (packed: into one block after the
// pointers, freed by one free()).
static int
strs_from_obj(const struct msgpack_object *o,
              const char *what,
              size_t max_n,
              size_t max_len,
              bool packed,
              char ***out,
              size_t *n_out,
              dv_error_t *err)
{
    *out = NULL;
    *n_out = 0;
    if (!o) {
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_ARRAY) {
        return dv_errorf(err, DV_EFORMAT, "'%s' must be an array of strings",
                         what);
    }
    size_t n = o->via.array.size;
    if (n > max_n) {
        return dv_errorf(err, DV_EMSGSIZE,
                         "'%s' has %zu entries, the limit is %zu", what, n,
                         max_n);
    }
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_STR || e->via.str.size > max_len ||
            memchr(dv_msgpack_str_ptr(e), '\0', e->via.str.size)) {
            return dv_errorf(err, DV_EFORMAT,
                             "'%s'[%zu] must be a string of at most %zu "
                             "bytes without NUL",
                             what, i, max_len);
        }
        bytes += e->via.str.size + 1;
    }
    size_t slots = n ? n : 1;
    char **v = dv_calloc(1, slots * sizeof *v + (packed ? bytes : 0));
    char *at = (char *)(v + slots); // packed: the strings' block
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        size_t len = e->via.str.size;
        v[i] = packed ? at : dv_malloc(len + 1);
        memcpy(v[i], dv_msgpack_str_ptr(e), len);
        v[i][len] = '\0';
        at = packed ? at + len + 1 : at;
    }
    *out = v;
    *n_out = n;
    return 0;
}

int
dv_strs_from_obj(const struct msgpack_object *o,
                 const char *what,
                 size_t max_n,
                 size_t max_len,
                 char ***out,
                 size_t *n_out,
                 dv_error_t *err)
{
    return strs_from_obj(o, what, max_n, max_len, false, out, n_out, err);
}

static int
msg_strs(const dv_msg_t *self,
         const char *key,
         size_t max_n,
         size_t max_len,
         bool packed,
         char ***out,
         size_t *n_out,
         dv_error_t *err)
{
    const msgpack_object *o = dv_msgpack_get(self->root, key);
    if (!o || o->type != MSGPACK_OBJECT_MAP) {
        return strs_from_obj(o, key, max_n, max_len, packed, out, n_out, err);
    }
    // A list too long for a header: {frame: i} names the payload frame that
    // holds it as one msgpack array (1.2).
    *out = NULL;
    *n_out = 0;
    uint64_t i = 0;
    const dv_frame_t *f = NULL;
    if (!dv_msgpack_uint(dv_msgpack_get(o, "frame"), &i) ||
        !(f = dv_msg_frame(self, (size_t)i))) {
        return dv_errorf(err, DV_EFORMAT,
                         "%s: '%s' must be an array of strings or {frame: "
                         "1..%zu}",
                         s_names[self->type], key, self->n_frames);
    }
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int rc = dv_msgpack_unpack(&up, f->data, f->len, key, err);
    if (rc == 0) {
        rc = strs_from_obj(&up.data, key, max_n, max_len, packed, out, n_out,
                           err);
    }
    msgpack_unpacked_destroy(&up);
    return rc;
}

int
dv_msg_strs(const dv_msg_t *self,
            const char *key,
            size_t max_n,
            size_t max_len,
            char ***out,
            size_t *n_out,
            dv_error_t *err)
{
    return msg_strs(self, key, max_n, max_len, false, out, n_out, err);
}

int
dv_msg_strs_packed(const dv_msg_t *self,
                   const char *key,
                   size_t max_n,
                   size_t max_len,
                   char ***out,
                   size_t *n_out,
                   dv_error_t *err)
{
    return msg_strs(self, key, max_n, max_len, true, out, n_out, err);
}

uint8_t *
dv_strs_pack(const char *const *values, size_t n, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(values[i]);
        msgpack_pack_str(&pk, l);
        msgpack_pack_str_body(&pk, values[i], l);
    }
    *len = sb.size;
    if (!sb.data) { // msgpack-c allocates on the first write; n >= 0 writes
        return dv_calloc(1, 1);
    }
    return (uint8_t *)sb.data;
}

bool
dv_msgw_strs_or_frame(dv_msgw_t *self,
                      const char *key,
                      const char *const *values,
                      size_t n,
                      size_t frame,
                      dv_frame_t *out)
{
    size_t len = 0;
    uint8_t *packed = dv_strs_pack(values, n, &len);
    if (len <= DV_MAX_INLINE_LIST_BYTES) {
        dv_msgw_key(self, key);
        dv_msgw_v_raw(self, packed, len);
        free(packed);
        out->data = NULL;
        out->len = 0;
        return false;
    }
    dv_msgw_key(self, key);
    dv_msgw_v_map(self, 1);
    dv_msgw_v_str(self, "frame");
    dv_msgw_v_uint(self, frame);
    out->data = packed;
    out->len = len;
    return true;
}

void
dv_strs_free(char ***v_p, size_t n)
{
    if (!v_p || !*v_p) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free((*v_p)[i]);
    }
    free(*v_p);
    *v_p = NULL;
}

// A writer is one block: the struct, then its buffer, MSGW_ROOM bytes of
// room for the common keys and the body after it. dv_msgw_bytes packs "v",
// "t" and "rid" into the room, right before the body, so the finished
// header is never copied; most headers are tens of bytes and fit the
// inline buffer, so a writer costs one allocation (it was three, and a
// copy of the body: perf put them among the broker's largest costs per
// 1-row job, two writers each). A body that outgrows it moves to the heap.
// Room for the longest common keys (dv_msgw_bytes checks it).
#define MSGW_ROOM 96
// Body bytes in the writer's own block.
#define MSGW_INLINE_BYTES 448

struct dv_msgw {
    dv_msg_type_t type; // "t"
    uint64_t rid;       // "rid"
    uint8_t *buf;       // MSGW_ROOM bytes of room, then the body: inline,
                        //   or (once grown) owned
    size_t len;         // body bytes
    size_t cap;         // body bytes buf holds
    msgpack_packer pk;  // packs into the body (msgw_write)
    size_t n_fields;    // fields in the body
    size_t head;        // the common keys' bytes (done)
    bool done;          // dv_msgw_bytes was called
    unsigned minor;     // the minor version "v" names
    uint8_t inline_buf[MSGW_ROOM + MSGW_INLINE_BYTES];
};

// msgpack's write callback: append to the body, growing buf.
static int
msgw_write(void *data, const char *bytes, size_t n)
{
    dv_msgw_t *self = data;
    if (n > self->cap - self->len) {
        size_t cap = self->cap * 2;
        if (cap - self->len < n) {
            cap = self->len + n;
        }
        if (self->buf == self->inline_buf) {
            self->buf = dv_malloc(MSGW_ROOM + cap);
            memcpy(self->buf, self->inline_buf, MSGW_ROOM + self->len);
        } else {
            self->buf = dv_realloc(self->buf, MSGW_ROOM + cap);
        }
        self->cap = cap;
    }
    if (n) {
        memcpy(self->buf + MSGW_ROOM + self->len, bytes, n);
        self->len += n;
    }
    return 0;
}

// Writers a thread freed, kept for its next ones (a stack through their
// first bytes): a submit_many makes a writer per request and frees them
// all at once, past glibc's per-thread cache (7 blocks of a size), so
// most went through _int_free and later malloc_consolidate: ~6% of a
// producer's CPU at 1-row serving (perf). At most DV_MSGW_KEEP a thread;
// the key frees a thread's when it ends.
typedef struct {
    void *top;
    size_t n;
} msgw_keep_t;
static _Thread_local msgw_keep_t s_keep;
static pthread_key_t s_keep_key;
static pthread_once_t s_keep_once = PTHREAD_ONCE_INIT;

static void
keep_free(void *arg)
{
    msgw_keep_t *k = arg;
    while (k->top) {
        void *next = *(void **)k->top;
        free(k->top);
        k->top = next;
    }
    k->n = 0;
}

static void
keep_key_init(void)
{
    if (pthread_key_create(&s_keep_key, keep_free) != 0) {
        abort(); // only with PTHREAD_KEYS_MAX keys taken
    }
}

static void
keep_put(dv_msgw_t *self)
{
    if (s_keep.n >= DV_MSGW_KEEP) {
        free(self);
        return;
    }
    if (!s_keep.top) { // the first kept (again): the key frees them
        pthread_once(&s_keep_once, keep_key_init);
        pthread_setspecific(s_keep_key, &s_keep);
    }
    *(void **)self = s_keep.top;
    s_keep.top = self;
    s_keep.n++;
}

dv_msgw_t *
dv_msgw_new(dv_msg_type_t type, uint64_t rid)
{
    dv_assert((size_t)type < DV_MSG_COUNT_);
    dv_msgw_t *self = s_keep.top;
    if (self) {
        s_keep.top = *(void **)self;
        s_keep.n--;
    } else {
        self = dv_malloc(sizeof *self);
    }
    memset(self, 0, offsetof(dv_msgw_t, inline_buf));
    self->type = type;
    self->rid = rid;
    self->minor = DV_PROTOCOL_MINOR;
    self->buf = self->inline_buf;
    self->cap = MSGW_INLINE_BYTES;
    msgpack_packer_init(&self->pk, self, msgw_write);
    return self;
}

void
dv_msgw_destroy(dv_msgw_t **self_p)
{
    if (self_p && *self_p) {
        if ((*self_p)->buf != (*self_p)->inline_buf) {
            free((*self_p)->buf);
        }
        keep_put(*self_p);
        *self_p = NULL;
    }
}

static void
key(dv_msgw_t *self, const char *k)
{
    dv_assert(!self->done);
    self->n_fields++;
    dv_msgpack_pack_str(&self->pk, k);
}

void
dv_msgw_key(dv_msgw_t *self, const char *k)
{
    key(self, k);
}

void
dv_msgw_v_str(dv_msgw_t *self, const char *value)
{
    dv_msgpack_pack_str(&self->pk, value);
}

void
dv_msgw_v_uint(dv_msgw_t *self, uint64_t value)
{
    msgpack_pack_uint64(&self->pk, value);
}

void
dv_msgw_v_int(dv_msgw_t *self, int64_t value)
{
    msgpack_pack_int64(&self->pk, value);
}

void
dv_msgw_v_bool(dv_msgw_t *self, bool value)
{
    if (value) {
        msgpack_pack_true(&self->pk);
    } else {
        msgpack_pack_false(&self->pk);
    }
}

void
dv_msgw_v_bin(dv_msgw_t *self, const void *data, size_t len)

{
    msgpack_pack_bin(&self->pk, len);
    msgpack_pack_bin_body(&self->pk, data, len);
}

void
dv_msgw_v_raw(dv_msgw_t *self, const void *data, size_t len)
{
    dv_assert(!self->done);
    msgw_write(self, data, len);
}

void
dv_msgw_v_cut(dv_msgw_t *self, size_t len)
{
    dv_assert(!self->done && len <= self->len);
    self->len = len;
}

void
dv_msgw_v_array(dv_msgw_t *self, size_t n)
{
    msgpack_pack_array(&self->pk, n);
}

void
dv_msgw_v_map(dv_msgw_t *self, size_t n)
{
    msgpack_pack_map(&self->pk, n);
}

void
dv_msgw_strs(dv_msgw_t *self,
             const char *k,
             const char *const *values,
             size_t n)
{
    key(self, k);
    msgpack_pack_array(&self->pk, n);
    for (size_t i = 0; i < n; i++) {
        dv_msgpack_pack_str(&self->pk, values[i]);
    }
}

void
dv_msgw_str(dv_msgw_t *self, const char *k, const char *value)
{
    key(self, k);
    dv_msgpack_pack_str(&self->pk, value);
}

void
dv_msgw_uint(dv_msgw_t *self, const char *k, uint64_t value)
{
    key(self, k);
    msgpack_pack_uint64(&self->pk, value);
}

void
dv_msgw_bin(dv_msgw_t *self, const char *k, const void *data, size_t len)
{
    key(self, k);
    msgpack_pack_bin(&self->pk, len);
    msgpack_pack_bin_body(&self->pk, data, len);
}

dv_msgw_t *
dv_msgw_error_reply(uint64_t rid, uint64_t job, int code, const char *text)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_ERROR, rid);
    if (job) {
        dv_msgw_uint(w, "job", job);
    }
    dv_msgw_error(w, "error", code, text);
    return w;
}

void
dv_msgw_error(dv_msgw_t *self, const char *k, int code, const char *text)
{
    key(self, k);
    msgpack_pack_map(&self->pk, 2);
    dv_msgpack_pack_str(&self->pk, "name");
    dv_msgpack_pack_str(&self->pk, dv_err_name(code));
    dv_msgpack_pack_str(&self->pk, "text");
    dv_msgpack_pack_str(&self->pk, text);
}

void
dv_msgw_tensor(
    dv_msgw_t *self, const char *k, size_t frame, size_t rows, size_t cols)
{
    key(self, k);
    msgpack_pack_map(&self->pk, 3);
    dv_msgpack_pack_str(&self->pk, "frame");
    msgpack_pack_uint64(&self->pk, frame);
    dv_msgpack_pack_str(&self->pk, "dtype");
    dv_msgpack_pack_str(&self->pk, "f32");
    dv_msgpack_pack_str(&self->pk, "shape");
    msgpack_pack_array(&self->pk, 2);
    msgpack_pack_uint64(&self->pk, rows);
    msgpack_pack_uint64(&self->pk, cols);
}

void
dv_msgw_raw(dv_msgw_t *self, size_t n_fields, const void *data, size_t len)
{
    dv_assert(!self->done);
    self->n_fields += n_fields;
    msgw_write(self, data, len);
}

const uint8_t *
dv_msgw_body(const dv_msgw_t *self, size_t *len, size_t *n_fields)
{
    *len = self->len;
    *n_fields = self->n_fields;
    return self->buf + MSGW_ROOM;
}

void
dv_msgw_set_minor(dv_msgw_t *self, unsigned minor)
{
    self->minor = minor;
}

// A packer's write callback into a fixed buffer (dv_msgw_bytes' room).
typedef struct {
    uint8_t *p;
    size_t len, cap;
} fixed_t;

static int
fixed_write(void *data, const char *bytes, size_t n)
{
    fixed_t *f = data;
    dv_assert(n <= f->cap - f->len);
    memcpy(f->p + f->len, bytes, n);
    f->len += n;
    return 0;
}

const uint8_t *
dv_msgw_bytes(dv_msgw_t *self, size_t *len)
{
    if (!self->done) {
        uint8_t head[MSGW_ROOM];
        fixed_t f = {head, 0, sizeof head};
        msgpack_packer pk;
        msgpack_packer_init(&pk, &f, fixed_write);
        msgpack_pack_map(&pk, 3 + self->n_fields);
        dv_msgpack_pack_str(&pk, "v");
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint32(&pk, DV_PROTOCOL_MAJOR);
        msgpack_pack_uint32(&pk, self->minor);
        dv_msgpack_pack_str(&pk, "t");
        dv_msgpack_pack_str(&pk, s_names[self->type]);
        dv_msgpack_pack_str(&pk, "rid");
        msgpack_pack_uint64(&pk, self->rid);
        memcpy(self->buf + MSGW_ROOM - f.len, head, f.len);
        self->head = f.len;
        self->done = true;
    }
    *len = self->head + self->len;
    return self->buf + MSGW_ROOM - self->head;
}

int
dv_frame_check(size_t rows, size_t cols, const char *what, dv_error_t *err)
{
    // rows and cols come from checked descriptors and model files (each far
    // below 2^32), so the product cannot overflow.
    if (cols && rows > DV_MAX_FRAME_BYTES / 4 / cols) {
        return dv_errorf(err, DV_EMSGSIZE,
                         "%s: %zu rows x %zu columns of float32 is %zu bytes, "
                         "over the frame limit of %zu; send fewer rows",
                         what, rows, cols, rows * cols * 4,
                         (size_t)DV_MAX_FRAME_BYTES);
    }
    return 0;
}

uint8_t *
dv_frame_from_tensor(const dv_tensor_t *t, size_t *len)
{
    size_t n = dv_tensor_size(t);
    uint8_t *buf = dv_malloc(n > 0 ? n * 4 : 1);
    dv_floats_to_wire(buf, t->data, n);
    *len = n * 4;
    return buf;
}

void
dv_floats_to_wire(uint8_t *dst, const float *src, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n) {
        memcpy(dst, src, n * 4);
    }
#else
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], 4);
        dv_le_put32(dst + 4 * i, u);
    }
#endif
}

void
dv_floats_from_wire(float *dst, const uint8_t *src, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n) {
        memcpy(dst, src, n * 4);
    }
#else
    for (size_t i = 0; i < n; i++) {
        uint32_t u = dv_le_get32(src + 4 * i);
        memcpy(&dst[i], &u, 4);
    }
#endif
}

// ---------------------------------------------------------------- hyper

void
dv_msgw_hyper(dv_msgw_t *self, const char *key, const dv_hyper_t *h)
{
    dv_msgw_key(self, key);
    dv_msgw_v_map(self, 12);
    dv_msgw_v_str(self, "algo");
    dv_msgw_v_str(self, dv_algo_name(h->algo));
    dv_msgw_v_str(self, "scale");
    dv_msgw_v_str(self, dv_scale_name(h->scale));
    dv_msgw_v_str(self, "epochs");
    dv_msgw_v_uint(self, h->epochs);
    dv_msgw_v_str(self, "batch");
    dv_msgw_v_uint(self, h->batch);
    dv_msgw_v_str(self, "patience");
    dv_msgw_v_uint(self, h->patience);
    dv_msgw_v_str(self, "seed");
    dv_msgw_v_uint(self, h->seed);
    // 1.5; a 1.4 peer ignores both and trains with its own defaults.
    dv_msgw_v_str(self, "init");
    dv_msgw_v_str(self, dv_init_name(h->init));
    // Doubles travel as float64: a model trained from them is the same as
    // one trained locally with the same flags.
    const char *names[4] = {"lr", "l2", "tol", "validation_fraction"};
    const double values[4] = {h->lr, h->l2, h->tol, h->validation_fraction};
    for (int i = 0; i < 4; i++) {
        dv_msgw_v_str(self, names[i]);
        msgpack_pack_double(&self->pk, values[i]);
    }
    dv_msgw_v_str(self, "hidden");
    dv_msgw_v_array(self, h->n_hidden);
    for (uint32_t i = 0; i < h->n_hidden; i++) {
        dv_msgw_v_uint(self, h->hidden[i]);
    }
}

static bool
hyper_str(const msgpack_object *o, char *buf, size_t size)
{
    if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= size ||
        memchr(dv_msgpack_str_ptr(o), '\0', o->via.str.size)) {
        return false;
    }
    memcpy(buf, dv_msgpack_str_ptr(o), o->via.str.size);
    buf[o->via.str.size] = '\0';
    return true;
}

int
dv_msg_hyper(const dv_msg_t *self,
             const char *key,
             dv_hyper_t *h,
             dv_error_t *err)
{
    const msgpack_object *map = dv_msgpack_get(self->root, key);
    char text[32];
    dv_algo_t algo;
    if (!map || map->type != MSGPACK_OBJECT_MAP ||
        !hyper_str(dv_msgpack_get(map, "algo"), text, sizeof text) ||
        dv_algo_parse(text, &algo) != 0) {
        return dv_errorf(err, DV_EFORMAT,
                         "%s: '%s' must be a map with 'algo' (ols, gd, "
                         "ridge, logreg, softmax or mlp)",
                         s_names[self->type], key);
    }
    dv_hyper_default(h, algo);
    const msgpack_object *o;
    if ((o = dv_msgpack_get(map, "scale")) &&
        (!hyper_str(o, text, sizeof text) || dv_scale_parse(text, &h->scale))) {
        return dv_errorf(err, DV_EINVAL, "%s.scale: standard, minmax or none",
                         key);
    }
    if ((o = dv_msgpack_get(map, "init")) &&
        (!hyper_str(o, text, sizeof text) || dv_init_parse(text, &h->init))) {
        return dv_errorf(err, DV_EINVAL,
                         "%s.init: glorot, he or uniform-fan-in", key);
    }
    struct {
        const char *name;
        uint32_t *u32;
        uint64_t *u64;
    } ints[] = {{"epochs", &h->epochs, NULL},
                {"batch", &h->batch, NULL},
                {"patience", &h->patience, NULL},
                {"seed", NULL, &h->seed}};
    for (size_t i = 0; i < 4; i++) {
        uint64_t v;
        if (!(o = dv_msgpack_get(map, ints[i].name))) {
            continue;
        }
        if (!dv_msgpack_uint(o, &v) || (ints[i].u32 && v > UINT32_MAX)) {
            return dv_errorf(err, DV_EINVAL, "%s.%s: a non-negative integer",
                             key, ints[i].name);
        }
        if (ints[i].u32) {
            *ints[i].u32 = (uint32_t)v;
        } else {
            *ints[i].u64 = v;
        }
    }
    struct {
        const char *name;
        double *v;
    } reals[] = {{"lr", &h->lr},
                 {"l2", &h->l2},
                 {"tol", &h->tol},
                 {"validation_fraction", &h->validation_fraction}};
    for (size_t i = 0; i < 4; i++) {
        if ((o = dv_msgpack_get(map, reals[i].name)) &&
            !dv_msgpack_double(o, reals[i].v)) {
            return dv_errorf(err, DV_EINVAL, "%s.%s: a number", key,
                             reals[i].name);
        }
    }
    if ((o = dv_msgpack_get(map, "hidden"))) {
        if (o->type != MSGPACK_OBJECT_ARRAY ||
            o->via.array.size > DV_MAX_HIDDEN) {
            return dv_errorf(err, DV_EINVAL,
                             "%s.hidden: at most %d layer sizes", key,
                             DV_MAX_HIDDEN);
        }
        h->n_hidden = o->via.array.size;
        for (uint32_t i = 0; i < h->n_hidden; i++) {
            uint64_t v;
            if (!dv_msgpack_uint(&o->via.array.ptr[i], &v) || v == 0 ||
                v > UINT32_MAX) {
                return dv_errorf(err, DV_EINVAL,
                                 "%s.hidden: positive layer sizes", key);
            }
            h->hidden[i] = (uint32_t)v;
        }
    }
    return dv_hyper_check(h, err);
}

void
dv_msgw_double(dv_msgw_t *self, const char *key, double value)
{
    dv_msgw_key(self, key);
    msgpack_pack_double(&self->pk, value);
}

int
dv_msg_double(const dv_msg_t *self,
              const char *key,
              double *out,
              dv_error_t *err)
{
    if (!dv_msgpack_double(dv_msgpack_get(self->root, key), out)) {
        return dv_errorf(err, DV_EFORMAT, "%s: '%s' must be a number",
                         s_names[self->type], key);
    }
    return 0;
}

void
dv_msgw_v_double(dv_msgw_t *self, double value)
{
    msgpack_pack_double(&self->pk, value);
}

void
dv_msgw_metrics(dv_msgw_t *self, const char *key, const void *metrics)
{
    const dv_metrics_t *m = metrics;
    bool cls = m->task == DV_TASK_CLASSIFICATION;
    bool binary = cls && m->n_classes == 2;
    dv_msgw_key(self, key);
    dv_msgw_v_map(self, cls ? (binary ? 12 : 9) : 5);
    dv_msgw_v_str(self, "task");
    dv_msgw_v_str(self, dv_task_name(m->task));
    dv_msgw_v_str(self, "rows");
    dv_msgw_v_uint(self, m->rows);
    if (!cls) {
        const char *names[3] = {"mse", "mae", "r2"};
        const double values[3] = {m->mse, m->mae, m->r2};
        for (int i = 0; i < 3; i++) {
            dv_msgw_v_str(self, names[i]);
            dv_msgw_v_double(self, values[i]);
        }
        return;
    }
    dv_msgw_v_str(self, "n_classes");
    dv_msgw_v_uint(self, m->n_classes);
    const char *names[8] = {
        "accuracy", "precision_macro", "recall_macro", "f1_macro",
        "log_loss", "precision",       "recall",       "f1"};
    const double values[8] = {
        m->accuracy, m->precision_macro, m->recall_macro, m->f1_macro,
        m->log_loss, m->precision,       m->recall,       m->f1};
    for (int i = 0; i < (binary ? 8 : 5); i++) {
        dv_msgw_v_str(self, names[i]);
        dv_msgw_v_double(self, values[i]);
    }
    dv_msgw_v_str(self, "confusion");
    size_t k = m->confusion ? m->n_classes : 0;
    if (k > DV_MAX_INLINE_CONFUSION) {
        k = 0; // it travels as a frame (dv_confusion_frame) or not at all
    }
    dv_msgw_v_array(self, k * k);
    for (size_t i = 0; i < k * k; i++) {
        dv_msgw_v_uint(self, m->confusion[i]);
    }
}

uint8_t *
dv_confusion_frame(const void *metrics, size_t *len)
{
    const dv_metrics_t *m = metrics;
    size_t k = m->confusion ? m->n_classes : 0;
    *len = 0;
    if (m->task != DV_TASK_CLASSIFICATION || k <= DV_MAX_INLINE_CONFUSION ||
        k > DV_MAX_FRAME_BYTES / 4 / k) {
        return NULL;
    }
    uint8_t *p = dv_malloc(k * k * 4);
    for (size_t i = 0; i < k * k; i++) {
        // Counts are at most DV_MAX_ROWS (< 2^32): u32, little-endian.
        dv_le_put32(p + 4 * i, (uint32_t)m->confusion[i]);
    }
    *len = k * k * 4;
    return p;
}

void
dv_msgw_v_obj(dv_msgw_t *self, const msgpack_object *value)
{
    msgpack_pack_object(&self->pk, *value);
}

void
dv_msgw_obj(dv_msgw_t *self, const char *key, const msgpack_object *value)
{
    dv_msgw_key(self, key);
    msgpack_pack_object(&self->pk, *value);
}
