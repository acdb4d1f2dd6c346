// dv_repl — a broker group member (see dv_repl.h).
//
// Entries (RAFT_COMMAND buffers), all little-endian:
//   "DVR1", kind u8, then by kind
//   1 batch:  origin u64 (the proposing process, random per start), the store
//             batch (dv_store_batch_wire), file count u32, files
//   2 member: id u64, then 5 strings (u16 length + bytes): Raft address,
//             client, worker and HTTP endpoints, and files channel of a
//             member that now leads
//   3 chunk:  (read only, logs of earlier versions) a piece of NAME.part
// A file: op u8 (DV_FILE_*, DV_DATAFILES_REF), mtime µs u64, path u16 +
// bytes (relative to the data folder, under models/ or datasets/), length
// u32 + bytes (puts: the file; refs: its SHA-256 and size u64, the bytes
// being a blob, dv_blobs.h).
// A snapshot: "DVS1", store dump length u64, the dump (dv_store_dump_wire),
// file count u32, files (every file under models/ and datasets/, a ref for
// each over DV_REPL_INLINE_BYTES), member count u32, members (as in member
// entries: a member restored from a snapshot knows where the leader is).
//
// A put over DV_REPL_INLINE_BYTES leaves the log: the leader links the file
// into its blobs, offers it on the files channel, and proposes the batch
// with the ref only once a majority of the voters holds the blob (batches
// proposed meanwhile wait behind it, in order); past DV_BLOB_WAIT_MS (and
// per MiB) the batch fails as a lost commit does.
//
// The leader writes its own files as it always did, and applies only the
// store part of its own entries (origin == this process); every other entry
// is applied whole. Puts and deletes are blind writes, so a snapshot taken
// while entries apply, then those entries again, ends in the same state.
#include "dv_repl.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dv_blobs.h"
#include "dv_datafiles.h"
#include "dv_endpoint.h"
#include "dv_file.h"
#include "dv_le.h"
#include "dv_limits.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_repl_int.h"
#include "dv_rng.h"
#include "dv_sha256.h"

#define PATH_BYTES   DV_REPL_PATH_BYTES
#define POLL_MS      20 // how often the role is looked at
#define ENTRY_BATCH  1
#define ENTRY_MEMBER 2
#define ENTRY_CHUNK  3

// --------------------------------------------------------------- encoding

// A bounds-checked reader over an entry.
typedef struct {
    const uint8_t *p;
    size_t len, at;
    bool bad;
} rd_t;

static uint64_t
get_n(rd_t *r, int bytes)
{
    if (r->bad || r->len - r->at < (size_t)bytes) {
        r->bad = true;
        return 0;
    }
    uint64_t v = dv_le_get(r->p + r->at, bytes);
    r->at += (size_t)bytes;
    return v;
}

static const uint8_t *
get_bytes(rd_t *r, size_t n)
{
    if (r->bad || r->len - r->at < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *q = r->p + r->at;
    r->at += n;
    return q;
}

static void
get_str(rd_t *r, char *out, size_t size)
{
    size_t n = (size_t)get_n(r, 2);
    const uint8_t *q = get_bytes(r, n);
    if (!q || n >= size) {
        r->bad = true;
        out[0] = '\0';
        return;
    }
    memcpy(out, q, n);
    out[n] = '\0';
}

static uint8_t *
put_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    p = dv_le_put(p, n, 2);
    memcpy(p, s, n);
    return p + n;
}

static size_t
file_size(const file_op_t *f)
{
    return 1 + 8 + 2 + strlen(f->path) + 4 + f->len;
}

static uint8_t *
put_file(uint8_t *p, const file_op_t *f)
{
    *p++ = f->op;
    p = dv_le_put(p, f->mtime_us, 8);
    p = put_str(p, f->path);
    p = dv_le_put(p, f->len, 4);
    if (f->len) {
        memcpy(p, f->data, f->len);
    }
    return p + f->len;
}

static void
file_free(file_op_t *f)
{
    free(f->path);
    free(f->data);
    free(f);
}

// id u64 and 5 strings (a member entry's body; at most 8 + 5 * 257 bytes).
static uint8_t *
put_member(uint8_t *p, const member_t *m)
{
    p = dv_le_put(p, m->id, 8);
    p = put_str(p, m->raft);
    p = put_str(p, m->client);
    p = put_str(p, m->worker);
    p = put_str(p, m->http);
    return put_str(p, m->files);
}

// ------------------------------------------------------------------ files
// The leader's own changes, staged for its next entry (serving only: a
// follower's writes are the log's).
static void
on_file_change(int op, const char *path, const void *buf, size_t len, void *arg)
{
    dv_repl_t *self = arg;
    size_t dl = strlen(self->dir);
    if (!self->serving || strncmp(path, self->dir, dl) != 0 ||
        path[dl] != '/' || !dv_datafiles_path_ok(path + dl + 1)) {
        return;
    }
    file_op_t *f = dv_calloc(1, sizeof *f);
    f->op = (uint8_t)op;
    f->path = dv_strdup(path + dl + 1);
    uint8_t sha[DV_SHA256_BYTES];
    dv_error_t err = {0};
    if (op == DV_FILE_PUT && len > DV_REPL_INLINE_BYTES &&
        (dv_sha256(buf, len, sha),
         dv_blobs_adopt(self->blobs, path, sha, &err) == 0)) {
        f->op = DV_DATAFILES_REF; // the bytes go as a blob
        f->data = dv_malloc(DV_SHA256_BYTES + 8);
        memcpy(f->data, sha, DV_SHA256_BYTES);
        dv_le_put(f->data + DV_SHA256_BYTES, len, 8);
        f->len = DV_SHA256_BYTES + 8;
        f->mtime_us = dv_file_mtime_us(path);
    } else if (op == DV_FILE_PUT) {
        if (err.code) {
            dv_log(DV_LOG_WARN, "repl",
                   "%s goes inside the log (%zu bytes): not a blob: %s", path,
                   len, err.text);
        }
        f->data = len ? dv_malloc(len) : NULL;
        if (len) {
            memcpy(f->data, buf, len);
        }
        f->len = len;
        f->mtime_us = dv_file_mtime_us(path);
    }
    pthread_mutex_lock(&self->files_lock);
    *self->files_end = f;
    self->files_end = &f->next;
    self->n_files++;
    pthread_mutex_unlock(&self->files_lock);
}

// ---------------------------------------------------------------- members

static member_t *
member_slot(dv_repl_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->n_members; i++) {
        if (self->members[i].id == id) {
            return &self->members[i];
        }
    }
    if (self->n_members == DV_MAX_REPL_MEMBERS) {
        return NULL;
    }
    member_t *m = &self->members[self->n_members++];
    memset(m, 0, sizeof *m);
    m->id = id;
    return m;
}

const member_t *
dv_repl_member_find(const dv_repl_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->n_members; i++) {
        if (self->members[i].id == id) {
            return &self->members[i];
        }
    }
    return NULL;
}

// ---------------------------------------------------------------------- FSM

// One file change of an entry at index (0: of a snapshot); own: the
// leader's own entry (it wrote its files). A ref's blob is linked into
// place, or, absent, wanted (fetched in the background, placed once
// verified; the path holds nothing meanwhile).
static int
apply_file(dv_repl_t *self,
           int op,
           const char *rel,
           uint64_t mtime,
           const uint8_t *data,
           size_t len,
           bool own,
           uint64_t index,
           dv_error_t *err)
{
    char path[PATH_BYTES];
    if (!dv_datafiles_path_ok(rel) ||
        snprintf(path, sizeof path, "%s/%s", self->dir, rel) >=
            (int)sizeof path) {
        return dv_errorf(err, DV_EFORMAT, "replicated file path '%s' refused",
                         rel);
    }
    if (op == DV_DATAFILES_REF && len != DV_DATAFILES_REF_BYTES) {
        return dv_errorf(err, DV_EFORMAT, "file ref of %zu bytes", len);
    }
    if (op == DV_DATAFILES_REF) {
        dv_blobs_note(self->blobs, data, index);
    }
    if (own) {
        return 0;
    }
    dv_blobs_unwant(self->blobs, path); // a later change replaces the wish
    if (op != DV_DATAFILES_REF) {
        return dv_datafiles_apply(self->dir, op, rel, mtime, data, len, err);
    }
    dv_error_t why = {0};
    if (dv_blobs_place(self->blobs, data, path, mtime, &why) != 0) {
        (void)unlink(path); // never the content it replaces
        rd_t r = {data + DV_SHA256_BYTES, 8, 0, false};
        dv_blobs_want(self->blobs, path, data, get_n(&r, 8), mtime);
    }
    return 0;
}

static int
apply_batch(dv_repl_t *self, rd_t *r, dv_error_t *err)
{
    uint64_t origin = get_n(r, 8);
    if (r->bad) {
        return dv_errorf(err, DV_EFORMAT, "batch entry truncated");
    }
    size_t used = 0;
    int rc = dv_store_apply_wire(self->store, r->p + r->at, r->len - r->at,
                                 false, &used, err);
    if (rc) {
        return rc;
    }
    r->at += used;
    uint32_t n = (uint32_t)get_n(r, 4);
    for (uint32_t i = 0; rc == 0 && i < n && !r->bad; i++) {
        int op = (int)get_n(r, 1);
        uint64_t mtime = get_n(r, 8);
        char rel[PATH_BYTES];
        get_str(r, rel, sizeof rel);
        size_t len = (size_t)get_n(r, 4);
        const uint8_t *data = get_bytes(r, len);
        if (!r->bad) {
            rc = apply_file(self, op, rel, mtime, data, len,
                            origin == self->origin,
                            raft_last_applied(&self->raft) + 1, err);
        }
    }
    return rc       ? rc
           : r->bad ? dv_errorf(err, DV_EFORMAT,
                                "batch entry "
                                "truncated")
                    : 0;
}

static int
apply_member(dv_repl_t *self, rd_t *r)
{
    member_t m = {0};
    m.id = get_n(r, 8);
    get_str(r, m.raft, sizeof m.raft);
    get_str(r, m.client, sizeof m.client);
    get_str(r, m.worker, sizeof m.worker);
    get_str(r, m.http, sizeof m.http);
    rd_t more = *r; // 5 strings since the files channel; 4 before
    get_str(&more, m.files, sizeof m.files);
    if (!more.bad) {
        *r = more;
    }
    member_t *slot = r->bad ? NULL : member_slot(self, m.id);
    if (slot) {
        *slot = m;
    }
    return 0;
}

// A chunk of a large file (origin u64, path, offset u64, length u32, the
// bytes); the leader that sent it has the file already.
static int
apply_chunk(dv_repl_t *self, rd_t *r, dv_error_t *err)
{
    uint64_t origin = get_n(r, 8);
    char rel[PATH_BYTES];
    get_str(r, rel, sizeof rel);
    uint64_t offset = get_n(r, 8);
    size_t len = (size_t)get_n(r, 4);
    const uint8_t *data = get_bytes(r, len);
    if (r->bad) {
        return dv_errorf(err, DV_EFORMAT, "chunk entry truncated");
    }
    return origin == self->origin
               ? 0
               : dv_datafiles_chunk(self->dir, rel, offset, data, len, err);
}

// Whether the log since the last snapshot pays for the next one
// (DV_REPL_SNAPSHOT_ENTRIES, DV_REPL_LOG_BYTES): raft takes it once the
// entries being applied are, at a threshold of one entry; until then the
// threshold is out of reach.
static void
snapshot_schedule(dv_repl_t *self)
{
    bool due = self->log_bytes >= DV_REPL_LOG_BYTES ||
               (self->log_entries >= DV_REPL_SNAPSHOT_ENTRIES &&
                self->log_bytes >= self->snap_bytes);
    raft_set_snapshot_threshold(&self->raft, due ? 1 : UINT_MAX);
}

// The log starts again at a snapshot of bytes (taken or restored).
static void
snapshot_at(dv_repl_t *self, uint64_t bytes)
{
    self->snap_bytes = bytes;
    self->log_bytes = 0;
    self->log_entries = 0;
    snapshot_schedule(self);
}

// A committed entry. An entry this member cannot apply leaves its store
// behind the log: it stops (exit 1) and, restarted, rebuilds from the log
// and the others — what etcd and Consul do.
static int
fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    dv_repl_t *self = fsm->data;
    *result = NULL;
    rd_t r = {buf->base, buf->len, 0, false};
    const uint8_t *magic = get_bytes(&r, 4);
    int kind = (int)get_n(&r, 1);
    dv_error_t err = {0};
    int rc = 0;
    if (!magic || memcmp(magic, "DVR1", 4) != 0) {
        const uint8_t *b = buf->base;
        rc = dv_errorf(&err, DV_EFORMAT,
                       "entry of %zu bytes without its magic (%02x %02x %02x "
                       "%02x)",
                       buf->len, buf->len > 0 ? b[0] : 0,
                       buf->len > 1 ? b[1] : 0, buf->len > 2 ? b[2] : 0,
                       buf->len > 3 ? b[3] : 0);
    } else if (kind == ENTRY_BATCH) {
        rc = apply_batch(self, &r, &err);
    } else if (kind == ENTRY_MEMBER) {
        rc = apply_member(self, &r);
    } else if (kind == ENTRY_CHUNK) {
        rc = apply_chunk(self, &r, &err);
    } // other kinds: from a newer version, nothing for this one
    if (rc) {
        dv_log(DV_LOG_ERROR, "repl",
               "cannot apply a committed entry (%s): stopping; restarted, "
               "this member rebuilds its store from the others",
               err.text);
        _exit(1);
    }
    self->log_bytes += buf->len;
    self->log_entries++;
    snapshot_schedule(self);
    return 0;
}

// Loop thread, before fsm_snapshot_async: what the walk needs of the loop's
// state (its index for the blobs' collection, the members).
static int
fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    dv_repl_t *self = fsm->data;
    self->snap_index = raft_last_applied(&self->raft);
    memcpy(self->snap_members, self->members, sizeof self->members);
    self->snap_n_members = self->n_members;
    self->snap_taken = 0;
    // The next window starts here; its bar is this snapshot's size, known
    // at fsm_snapshot_finalize (the last one's until then).
    snapshot_at(self, self->snap_bytes);
    *bufs = NULL; // taken in fsm_snapshot_async, on the thread pool
    *n = 0;
    return 0;
}

// A file over DV_REPL_INLINE_BYTES as a ref in f: a link to a blob is
// named by its inode; another (from a log of a version before blobs, or
// an adoption that failed) is hashed and becomes a blob.
static int
file_ref(dv_repl_t *self, const char *path, const struct stat *st, file_op_t *f)
{
    uint8_t sha[DV_SHA256_BYTES];
    uint64_t size = 0;
    dv_error_t err = {0};
    int rc = dv_blobs_index_find(self->snap_blobs, st, sha, &size)
                 ? 0 // a link to its blob: no need to hash it again
                 : dv_blobs_hash_file(self->blobs, path, sha, &size, &err);
    if (rc == 0) {
        f->op = DV_DATAFILES_REF;
        f->data = dv_malloc(DV_DATAFILES_REF_BYTES);
        memcpy(f->data, sha, DV_SHA256_BYTES);
        dv_le_put(f->data + DV_SHA256_BYTES, size, 8);
        f->len = DV_DATAFILES_REF_BYTES;
    }
    return rc;
}

// The snapshot buffer that snap_file appends to.
typedef struct {
    dv_repl_t *self;
    uint8_t **buf;
    size_t *cap, *at;
    uint32_t *n;
} snap_files_t;

// One file of the walk (dv_datafiles_walk), appended to the snapshot.
static void
snap_file(void *arg,
          const char *rel,
          const char *path,
          const char *name,
          const struct stat *st)
{
    snap_files_t *s = arg;
    if (!S_ISREG(st->st_mode) || strstr(name, ".tmp.") ||
        !dv_datafiles_path_ok(rel)) {
        return; // a write in progress: its entry carries it
    }
    file_op_t f = {0};
    f.op = DV_FILE_PUT;
    f.path = (char *)rel; // only read (put_file copies it), never freed
    dv_error_t err;
    if ((uint64_t)st->st_size > DV_REPL_INLINE_BYTES
            ? file_ref(s->self, path, st, &f) != 0
            : dv_file_read(path, DV_MAX_MODEL_BYTES, &f.data, &f.len, &err) !=
                  0) {
        return; // removed meanwhile: its entry removes it again
    }
    f.mtime_us = dv_file_stat_mtime_us(st); // the walk's stat: a regular file
    size_t need = file_size(&f);
    while (*s->cap - *s->at < need) {
        *s->cap *= 2;
        *s->buf = dv_realloc(*s->buf, *s->cap);
    }
    *s->at = (size_t)(put_file(*s->buf + *s->at, &f) - *s->buf);
    (*s->n)++;
    free(f.data);
}

// Every file under DIR/rel, appended to the snapshot buffer.
static void
walk_files(dv_repl_t *self,
           const char *rel,
           uint8_t **buf,
           size_t *cap,
           size_t *at,
           uint32_t *n)
{
    snap_files_t s = {self, buf, cap, at, n};
    dv_datafiles_walk(self->dir, rel, snap_file, &s);
}

static int
fsm_snapshot_async(struct raft_fsm *fsm,
                   struct raft_buffer *bufs[],
                   unsigned *n_bufs)
{
    dv_repl_t *self = fsm->data;
    uint8_t *dump = NULL;
    size_t dump_len = 0;
    dv_error_t err = {0};
    if (dv_store_dump_wire(self->store, &dump, &dump_len, &err) != 0) {
        dv_log(DV_LOG_WARN, "repl", "snapshot not taken: %s", err.text);
        return RAFT_IOERR;
    }
    size_t cap = dump_len + 4096, at = 0;
    uint8_t *buf = dv_malloc(cap);
    memcpy(buf, "DVS1", 4);
    dv_le_put(buf + 4, dump_len, 8);
    memcpy(buf + 12, dump, dump_len);
    free(dump);
    at = 12 + dump_len;
    size_t count_at = at;
    at += 4;
    uint32_t n = 0;
    self->snap_blobs = dv_blobs_index_new(self->blobs);
    walk_files(self, "models", &buf, &cap, &at, &n);
    walk_files(self, "datasets", &buf, &cap, &at, &n);
    dv_blobs_index_destroy(&self->snap_blobs);
    dv_le_put(buf + count_at, n, 4);
    size_t need = 4 + self->snap_n_members * (8 + 5 * (2 + DV_MAX_REPL_ADDR));
    if (cap - at < need) {
        cap = at + need;
        buf = dv_realloc(buf, cap);
    }
    uint8_t *p = dv_le_put(buf + at, self->snap_n_members, 4);
    for (size_t i = 0; i < self->snap_n_members; i++) {
        p = put_member(p, &self->snap_members[i]);
    }
    at = (size_t)(p - buf);
    struct raft_buffer *b = raft_malloc(sizeof *b);
    b->base = raft_malloc(at);
    if (!b->base) {
        raft_free(b);
        free(buf);
        return RAFT_NOMEM;
    }
    memcpy(b->base, buf, at);
    b->len = at;
    free(buf);
    self->snap_taken = at; // read by fsm_snapshot_finalize, after this
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

// The snapshot is stored (loop thread): raft drops the entries before
// snap_index - DV_REPL_SNAPSHOT_TRAILING, so blobs only they named, and
// that no file links, can go.
static int
fsm_snapshot_finalize(struct raft_fsm *fsm,
                      struct raft_buffer *bufs[],
                      unsigned *n_bufs)
{
    dv_repl_t *self = fsm->data;
    uint64_t first = self->snap_index > DV_REPL_SNAPSHOT_TRAILING
                         ? self->snap_index - DV_REPL_SNAPSHOT_TRAILING
                         : 0;
    if (self->snap_taken) {
        self->snap_bytes = self->snap_taken;
        self->snapshots++;
        snapshot_schedule(self);
    }
    size_t gone = dv_blobs_gc(self->blobs, first);
    if (gone) {
        dv_log(DV_LOG_INFO, "repl", "%zu blobs no file or entry needs removed",
               gone);
    }
    for (unsigned i = 0; *bufs && i < *n_bufs; i++) {
        raft_free((*bufs)[i].base);
    }
    raft_free(*bufs);
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

// A snapshot replaces the store and the files (at start, or sent by the
// leader to a member that is too far behind).
static int
fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    dv_repl_t *self = fsm->data;
    rd_t r = {buf->base, buf->len, 0, false};
    const uint8_t *magic = get_bytes(&r, 4);
    size_t dump_len = (size_t)get_n(&r, 8);
    const uint8_t *dump = get_bytes(&r, dump_len);
    dv_error_t err = {0};
    int rc = 0;
    if (!magic || memcmp(magic, "DVS1", 4) != 0 || !dump) {
        rc = dv_errorf(&err, DV_EFORMAT, "snapshot without its header");
    }
    size_t used = 0;
    if (rc == 0) {
        rc =
            dv_store_apply_wire(self->store, dump, dump_len, true, &used, &err);
    }
    if (rc == 0) {
        char path[PATH_BYTES + 16];
        dv_blobs_unwant(self->blobs, NULL); // the snapshot says what is
        snprintf(path, sizeof path, "%s/models", self->dir);
        dv_datafiles_rm_tree(path);
        snprintf(path, sizeof path, "%s/datasets", self->dir);
        dv_datafiles_rm_tree(path);
    }
    uint32_t n = rc ? 0 : (uint32_t)get_n(&r, 4);
    for (uint32_t i = 0; rc == 0 && i < n && !r.bad; i++) {
        int op = (int)get_n(&r, 1);
        uint64_t mtime = get_n(&r, 8);
        char rel[PATH_BYTES];
        get_str(&r, rel, sizeof rel);
        size_t len = (size_t)get_n(&r, 4);
        const uint8_t *data = get_bytes(&r, len);
        if (!r.bad) {
            rc = apply_file(self, op, rel, mtime, data, len, false, 0, &err);
        }
    }
    uint32_t n_members =
        rc || r.bad || r.at == r.len ? 0 : (uint32_t)get_n(&r, 4);
    for (uint32_t i = 0; i < n_members && !r.bad; i++) {
        rc = apply_member(self, &r);
    }
    if (rc == 0 && r.bad) {
        rc = dv_errorf(&err, DV_EFORMAT, "snapshot truncated");
    }
    if (rc) {
        dv_log(DV_LOG_ERROR, "repl", "cannot restore a snapshot: %s", err.text);
        return RAFT_CORRUPT;
    }
    raft_free(buf->base);
    snapshot_at(self, buf->len);
    dv_log(DV_LOG_INFO, "repl", "store restored from a snapshot (%zu bytes)",
           buf->len);
    return 0;
}

// ------------------------------------------------------------------- roles

static void propose_member(dv_repl_t *self);

static void pend_pump(dv_repl_t *self);
static void pend_fail(dv_repl_t *self, int rc, const char *why);

static void
serve(dv_repl_t *self)
{
    self->awaiting_until = 0;
    self->serving = true;
    dv_datafiles_drop_parts(self->dir, "models");
    dv_datafiles_drop_parts(self->dir, "datasets");
    dv_log(DV_LOG_INFO, "repl", "leading (term %" PRIu64 "): serving",
           (uint64_t)self->raft.current_term);
    self->ev.on_leader(self->ev.arg);
}

// Everything before this term is applied. A leader serves only files it
// holds: blobs its entries named that it lacks (it was down, or wiped) are
// fetched from the followers first -- before on_leader, since the catalogs
// open every file when the broker recovers -- for at most
// DV_BLOB_LEAD_WAIT_MS.
static void
on_barrier(struct raft_barrier *req, int status)
{
    dv_repl_t *self = req->data;
    free(req);
    self->promoting = false;
    if (status != 0 || self->closing ||
        raft_state(&self->raft) != RAFT_LEADER) {
        return; // the poll timer tries again while it leads
    }
    propose_member(self); // the followers learn its files channel
    dv_blobs_follow(self->blobs, NULL);
    size_t n = dv_blobs_n_wants(self->blobs);
    if (n == 0) {
        serve(self);
        return;
    }
    self->awaiting_until = uv_now(self->loop) + DV_BLOB_LEAD_WAIT_MS;
    dv_log(DV_LOG_INFO, "repl",
           "leading (term %" PRIu64 "): fetching %zu files from the "
           "followers before serving",
           (uint64_t)self->raft.current_term, n);
}

// The files channel follows the leader (none while this member leads).
static void
follow_leader(dv_repl_t *self, int state)
{
    raft_id id = 0;
    const char *addr = NULL;
    raft_leader(&self->raft, &id, &addr);
    const member_t *m =
        id && id != self->raft.id ? dv_repl_member_find(self, id) : NULL;
    if (state == RAFT_LEADER) {
        dv_blobs_follow(self->blobs, NULL);
    } else if (m && m->files[0]) {
        dv_blobs_follow(self->blobs, m->files);
    }
}

static void
on_poll(uv_timer_t *t)
{
    dv_repl_t *self = t->data;
    int state = raft_state(&self->raft);
    follow_leader(self, state);
    dv_blobs_tick(self->blobs);
    if (self->awaiting_until && state != RAFT_LEADER) {
        self->awaiting_until = 0; // deposed before it served
    } else if (self->awaiting_until &&
               (dv_blobs_n_wants(self->blobs) == 0 ||
                uv_now(self->loop) >= self->awaiting_until)) {
        size_t n = dv_blobs_n_wants(self->blobs);
        if (n) {
            dv_log(DV_LOG_WARN, "repl",
                   "serving without %zu files no follower sent (fetched "
                   "and placed when one does)",
                   n);
        }
        serve(self);
    }
    if (self->pend && state != RAFT_LEADER) {
        pend_fail(self, DV_ENOTLEADER,
                  "not stored: this broker stopped leading the group");
    } else if (self->pend) {
        pend_pump(self); // offers again; fails a blob past its time
    }
    if (state == RAFT_LEADER && !self->serving && !self->promoting &&
        !self->awaiting_until) {
        struct raft_barrier *req = dv_calloc(1, sizeof *req);
        req->data = self;
        if (raft_barrier(&self->raft, req, on_barrier) == 0) {
            self->promoting = true;
        } else {
            free(req);
        }
    } else if (state != RAFT_LEADER && self->serving) {
        self->serving = false;
        dv_log(DV_LOG_WARN, "repl",
               "no longer the leader (term %" PRIu64 "): stopping serving",
               (uint64_t)self->raft.current_term);
        self->ev.on_deposed(self->ev.arg);
    }
}

// Files channel events.
static void
on_blob(void *arg, const uint8_t sha[DV_SHA256_BYTES])
{
    (void)arg;
    char hex[DV_SHA256_HEX];
    dv_sha256_hex(sha, hex);
    dv_log(DV_LOG_DEBUG, "repl", "blob %.12s arrived", hex);
}

static void
on_have(void *arg, uint64_t member, const uint8_t sha[DV_SHA256_BYTES])
{
    dv_repl_t *self = arg;
    for (pend_t *q = self->pend; q; q = q->next) {
        bool known = false;
        for (size_t k = 0; q->ref && k < q->n_haves; k++) {
            known = known || q->haves[k] == member;
        }
        if (q->ref && !known && q->n_haves < DV_MAX_REPL_MEMBERS &&
            memcmp(q->sha, sha, DV_SHA256_BYTES) == 0) {
            q->haves[q->n_haves++] = member;
        }
    }
    pend_pump(self);
}

// Copy value into an endpoint field of a member that has none yet.
static void
fill_in(char field[DV_MAX_REPL_ADDR + 1], const char *value)
{
    if (!field[0] && value[0]) {
        snprintf(field, DV_MAX_REPL_ADDR + 1, "%s", value);
    }
}

// A follower's hello on the files channel names its endpoints: the leader
// shows them (cluster, drover status) before that member ever leads and
// appends its own member entry. Only fills in: a member entry, which the
// log carries, stays what it says. Only for another member of the
// configuration: a hello naming any other id must not take one of the
// members table's slots (the member entries of the log need them).
static void
on_hello(void *arg,
         uint64_t member,
         const char *client,
         const char *worker,
         const char *http)
{
    dv_repl_t *self = arg;
    const struct raft_configuration *c = &self->raft.configuration;
    bool known = false;
    for (unsigned i = 0; i < c->n && !known; i++) {
        known = c->servers[i].id == member;
    }
    member_t *m =
        known && member != self->raft.id ? member_slot(self, member) : NULL;
    if (m) {
        fill_in(m->client, client);
        fill_in(m->worker, worker);
        fill_in(m->http, http);
    }
}

// ----------------------------------------------------------------- propose

typedef struct {
    struct raft_apply req;
    dv_repl_done_fn *done;
    void *arg;
} apply_t;

static void
on_applied(struct raft_apply *req, int status, void *result)
{
    (void)result;
    apply_t *a = (apply_t *)req;
    if (status == 0) {
        a->done(a->arg, 0, "");
    } else {
        char why[160];
        snprintf(why, sizeof why,
                 "not stored: this broker stopped leading the group (%s); "
                 "ask the new leader",
                 raft_strerror(status));
        a->done(a->arg, DV_ENOTLEADER, why);
    }
    free(a);
}

// An entry's buffer: raft's uv log stores entries whole 8-byte words (its
// encoder asserts it, compiled out in Debian's build, and its decoder skips
// to the next word: an entry of another length shifts every later one), so
// the length is rounded up and the tail zeroed (the parsers stop before it).
static uint8_t *
entry_alloc(size_t len, size_t *padded)
{
    *padded = (len + 7) & ~(size_t)7;
    uint8_t *buf = raft_malloc(*padded);
    if (buf && *padded > len) {
        memset(buf + len, 0, *padded - len);
    }
    return buf;
}

static int
apply_buf(dv_repl_t *self,
          uint8_t *buf,
          size_t len,
          dv_repl_done_fn *done,
          void *arg,
          dv_error_t *err)
{
    struct raft_buffer b = {buf, len};
    apply_t *a = dv_calloc(1, sizeof *a);
    a->done = done;
    a->arg = arg;
    int rv = raft_apply(&self->raft, &a->req, &b, 1, on_applied);
    if (rv != 0) {
        free(a);
        raft_free(buf);
        return dv_errorf(err, DV_ENOTLEADER,
                         "not stored: this broker does not lead the group "
                         "(%s)",
                         raft_strerror(rv));
    }
    return 0;
}

static void
ignore_done(void *arg, int rc, const char *why)
{
    (void)arg;
    if (rc) {
        dv_log(DV_LOG_DEBUG, "repl", "member entry: %s", why);
    }
}

// Tell the group this member's endpoints (it now leads).
static void
propose_member(dv_repl_t *self)
{
    const member_t *m = &self->self_info;
    size_t len = 4 + 1 + 8 + 2 * 5 + strlen(m->raft) + strlen(m->client) +
                 strlen(m->worker) + strlen(m->http) + strlen(m->files);
    uint8_t *buf = entry_alloc(len, &len), *p = buf;
    if (!buf) {
        return;
    }
    memcpy(p, "DVR1", 4);
    p[4] = ENTRY_MEMBER;
    put_member(p + 5, m);
    dv_error_t err;
    (void)apply_buf(self, buf, len, ignore_done, NULL, &err);
}

static void
pend_free(pend_t *q)
{
    raft_free(q->buf);
    free(q);
}

// Every waiting entry fails (a blob reached no majority in time, or this
// member no longer leads), each batch's callback with the reason.
static void
pend_fail(dv_repl_t *self, int rc, const char *why)
{
    while (self->pend) {
        pend_t *q = self->pend;
        self->pend = q->next;
        if (q->ref) {
            dv_blobs_offer_end(self->blobs, q->sha);
        }
        if (q->done) {
            q->done(q->arg, rc, why);
        }
        pend_free(q);
    }
    self->pend_end = &self->pend;
}

// Does a majority of the voters hold q's blob (this member does)?
static bool
ref_majority(const dv_repl_t *self, const pend_t *q)
{
    const struct raft_configuration *c = &self->raft.configuration;
    unsigned voters = 0, have = 0;
    for (unsigned i = 0; i < c->n; i++) {
        if (c->servers[i].role != RAFT_VOTER) {
            continue;
        }
        voters++;
        bool has = c->servers[i].id == self->raft.id;
        for (size_t k = 0; !has && k < q->n_haves; k++) {
            has = q->haves[k] == c->servers[i].id;
        }
        have += has;
    }
    return have > voters / 2;
}

// Propose what waits, in order: a ref's batch once a majority holds its
// blob, the batch entries behind it after.
static void
pend_pump(dv_repl_t *self)
{
    dv_error_t err = {0};
    while (self->pend) {
        pend_t *q = self->pend;
        if (q->ref && !ref_majority(self, q)) {
            uint64_t now = uv_now(self->loop);
            if (now >= q->deadline_ms) {
                char why[200];
                snprintf(why, sizeof why,
                         "not stored: %s reached no majority of the group "
                         "within %.1f s",
                         q->path,
                         (double)DV_BLOB_WAIT_MS / 1000 +
                             (double)(q->size >> 20) * DV_BLOB_WAIT_MS_PER_MIB /
                                 1000);
                pend_fail(self, DV_EIO, why);
            } else if (now - q->offered_ms >= DV_BLOB_RETRY_MS) {
                q->offered_ms = now;
                dv_blobs_offer(self->blobs, q->sha, q->size);
            }
            return;
        }
        self->pend = q->next;
        if (!self->pend) {
            self->pend_end = &self->pend;
        }
        int rc = 0;
        if (q->ref) {
            dv_blobs_offer_end(self->blobs, q->sha);
        } else if (q->buf) {
            uint8_t *buf = q->buf;
            q->buf = NULL; // raft's now (freed by apply_buf on failure)
            rc = apply_buf(self, buf, q->len, q->done, q->arg, &err);
            if (rc) {
                q->done(q->arg, rc, err.text);
            }
        }
        pend_free(q);
        if (rc) {
            pend_fail(self, rc, err.text);
        }
    }
}

static void
pend_push(dv_repl_t *self, pend_t *q)
{
    *self->pend_end = q;
    self->pend_end = &q->next;
}

// A ref's blob goes to the followers before its batch: the batch waits
// (behind it, in order) until a majority holds it.
static void
wait_blob(dv_repl_t *self, const file_op_t *f)
{
    pend_t *q = dv_calloc(1, sizeof *q);
    q->ref = true;
    memcpy(q->sha, f->data, DV_SHA256_BYTES);
    rd_t r = {f->data + DV_SHA256_BYTES, 8, 0, false};
    q->size = get_n(&r, 8);
    q->deadline_ms = uv_now(self->loop) + DV_BLOB_WAIT_MS +
                     (q->size >> 20) * DV_BLOB_WAIT_MS_PER_MIB;
    q->offered_ms = uv_now(self->loop);
    snprintf(q->path, sizeof q->path, "%s", f->path);
    pend_push(self, q);
    dv_blobs_offer(self->blobs, q->sha, q->size);
}

int
dv_repl_propose(dv_repl_t *self,
                dv_store_batch_t *batch,
                dv_repl_done_fn *done,
                void *arg,
                dv_error_t *err)
{
    pthread_mutex_lock(&self->files_lock);
    file_op_t *files = self->files;
    size_t n_files = self->n_files;
    self->files = NULL;
    self->files_end = &self->files;
    self->n_files = 0;
    pthread_mutex_unlock(&self->files_lock);
    size_t len = 4 + 1 + 8 + dv_store_batch_wire_size(batch) + 4;
    for (file_op_t *f = files; f; f = f->next) {
        if (f->op == DV_DATAFILES_REF) {
            wait_blob(self, f);
        }
        len += file_size(f);
    }
    uint8_t *buf = entry_alloc(len, &len);
    uint8_t *p = buf;
    if (buf) {
        memcpy(buf, "DVR1", 4);
        buf[4] = ENTRY_BATCH;
        p = dv_le_put(buf + 5, self->origin, 8);
        p = dv_store_batch_wire(batch, p);
        p = dv_le_put(p, n_files, 4);
    }
    while (files) {
        file_op_t *f = files;
        files = f->next;
        p = buf ? put_file(p, f) : p;
        file_free(f);
    }
    if (!buf) {
        pend_fail(self, DV_ENOMEM, "no memory for a replicated batch");
        return dv_errorf(err, DV_ENOMEM, "replicated batch of %zu bytes", len);
    }
    if (!self->pend) { // nothing waits: straight to raft
        return apply_buf(self, buf, len, done, arg, err);
    }
    pend_t *q = dv_calloc(1, sizeof *q);
    q->buf = buf;
    q->len = len;
    q->done = done;
    q->arg = arg;
    pend_push(self, q);
    pend_pump(self);
    return 0;
}

bool
dv_repl_files_staged(dv_repl_t *self)
{
    pthread_mutex_lock(&self->files_lock);
    bool any = self->n_files > 0;
    pthread_mutex_unlock(&self->files_lock);
    return any;
}

// -------------------------------------------------------------- lifecycle

// True when path is a folder holding anything, or a non-empty file.
static bool
holds_data(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        return st.st_size > 0;
    }
    DIR *d = opendir(path);
    bool any = false;
    struct dirent *e;
    while (d && !any && (e = readdir(d)) != NULL) {
        any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    }
    if (d) {
        closedir(d);
    }
    return any;
}

// A member rebuilds DIR/store, DIR/models and DIR/datasets from the group's
// log at every start, so a folder that a broker alone used (no DIR/raft
// yet, but jobs or models) is refused instead of emptied.
static int
refuse_lone_data(const char *dir, dv_error_t *err)
{
    char path[PATH_BYTES + 32];
    snprintf(path, sizeof path, "%s/raft", dir);
    if (holds_data(path)) {
        return 0; // a member's folder: what is there came from the log
    }
    const char *kept[] = {"store/data.mdb", "models", "datasets"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, kept[i]);
        if (holds_data(path)) {
            return dv_errorf(err, DV_EINVAL,
                             "%s holds a broker's data (%s) and no group "
                             "log: a group member rebuilds its store and "
                             "files from the group and would drop them. "
                             "Start the member on an empty --data; to bring "
                             "models along, push them to the group",
                             dir, kept[i]);
        }
    }
    return 0;
}

int
dv_repl_prepare(const dv_repl_opts_t *opts, dv_error_t *err)
{
    if (!opts->data_dir) {
        return dv_errorf(err, DV_EINVAL,
                         "a broker group member needs --data DIR (its "
                         "Raft log lives there)");
    }
    if (opts->id == 0 || opts->id > DV_MAX_REPL_ID) {
        return dv_errorf(err, DV_EINVAL, "--raft-id: 1..%d, please",
                         DV_MAX_REPL_ID);
    }
    if (!opts->address || !*opts->address ||
        strlen(opts->address) > DV_MAX_REPL_ADDR ||
        !strchr(opts->address, ':')) {
        return dv_errorf(err, DV_EINVAL,
                         "--raft HOST:PORT, please (this member's Raft "
                         "address, e.g. 127.0.0.1:7481)");
    }
    char ep[DV_MAX_REPL_ADDR + 8];
    snprintf(ep, sizeof ep, "tcp://%s", opts->address);
    if (!opts->private_net && dv_endpoint_exposed(ep)) {
        return dv_errorf(err, DV_EINVAL,
                         "--raft %s is reachable from other machines, and "
                         "Raft traffic is neither encrypted nor "
                         "authenticated: give --raft-private if only the "
                         "group's members can reach it (docs/SECURITY.md)",
                         opts->address);
    }
    if (!opts->join && (!opts->peers || !*opts->peers)) {
        return dv_errorf(err, DV_EINVAL,
                         "--raft-peers 1=HOST:PORT,2=HOST:PORT,... (the "
                         "whole group, this member included), or "
                         "--raft-join to be added later");
    }
    char path[PATH_BYTES];
    int rc = refuse_lone_data(opts->data_dir, err);
    if (rc) {
        return rc;
    }
    const char *rebuilt[] = {"store", "models", "datasets"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", opts->data_dir, rebuilt[i]);
        dv_datafiles_rm_tree(path);
    }
    snprintf(path, sizeof path, "%s/raft", opts->data_dir);
    rc = dv_file_mkdirs(path, 0700, err);
    if (rc == 0) { // this folder is a member's from now on
        char mark[PATH_BYTES + 32], text[64];
        snprintf(mark, sizeof mark, "%s/raft/drover-member", opts->data_dir);
        int n =
            snprintf(text, sizeof text, "%llu\n", (unsigned long long)opts->id);
        rc = dv_file_write_atomic(mark, text, (size_t)n, err);
    }
    return rc;
}

// "1=HOST:PORT,2=HOST:PORT" into conf. Returns 0 or DV_EINVAL.
static int
parse_peers(const dv_repl_opts_t *opts,
            struct raft_configuration *conf,
            dv_error_t *err)
{
    char buf[4096];
    if (strlen(opts->peers) >= sizeof buf) {
        return dv_errorf(err, DV_EINVAL, "--raft-peers: too long");
    }
    snprintf(buf, sizeof buf, "%s", opts->peers);
    bool self_in = false;
    unsigned n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        char *end = NULL;
        unsigned long long id = eq ? strtoull(tok, &end, 10) : 0;
        if (!eq || end != eq || id == 0 || id > DV_MAX_REPL_ID ||
            !strchr(eq + 1, ':') || strlen(eq + 1) > DV_MAX_REPL_ADDR ||
            ++n > DV_MAX_REPL_MEMBERS) {
            return dv_errorf(err, DV_EINVAL,
                             "--raft-peers: '%s' is not ID=HOST:PORT (ids "
                             "1..%d, at most %d members)",
                             tok, DV_MAX_REPL_ID, DV_MAX_REPL_MEMBERS);
        }
        if (raft_configuration_add(conf, id, eq + 1, RAFT_VOTER) != 0) {
            return dv_errorf(err, DV_EINVAL,
                             "--raft-peers: id %llu or %s given twice", id,
                             eq + 1);
        }
        if (id == opts->id) {
            self_in = strcmp(eq + 1, opts->address) == 0;
            if (!self_in) {
                return dv_errorf(err, DV_EINVAL,
                                 "--raft-peers names member %llu at %s, "
                                 "but --raft says %s",
                                 id, eq + 1, opts->address);
            }
        }
    }
    if (!self_in) {
        return dv_errorf(err, DV_EINVAL,
                         "--raft-peers does not name this member (%" PRIu64
                         "=%s)",
                         opts->id, opts->address);
    }
    return 0;
}

static void
fill_self(dv_repl_t *self, const dv_repl_opts_t *opts)
{
    member_t *m = &self->self_info;
    m->id = opts->id;
    snprintf(m->raft, sizeof m->raft, "%s", opts->address);
    snprintf(m->client, sizeof m->client, "%s",
             opts->client_ep ? opts->client_ep : "");
    snprintf(m->worker, sizeof m->worker, "%s",
             opts->worker_ep ? opts->worker_ep : "");
    snprintf(m->http, sizeof m->http, "%s", opts->http ? opts->http : "");
}

static int
start_raft(dv_repl_t *self, const dv_repl_opts_t *opts, dv_error_t *err)
{
    struct raft *r = &self->raft;
    unsigned election = opts->election_ms ? opts->election_ms : 1000;
    raft_set_election_timeout(r, election);
    raft_set_heartbeat_timeout(r, election / 10 ? election / 10 : 1);
    raft_set_snapshot_threshold(r, UINT_MAX); // snapshot_schedule
    raft_set_snapshot_trailing(r, DV_REPL_SNAPSHOT_TRAILING);
    raft_set_pre_vote(r, true);
    int rv = 0;
    if (!opts->join) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        int rc = parse_peers(opts, &conf, err);
        if (rc) {
            raft_configuration_close(&conf);
            return rc;
        }
        rv = raft_bootstrap(r, &conf); // once: later starts have a log
        raft_configuration_close(&conf);
        rv = rv == RAFT_CANTBOOTSTRAP ? 0 : rv;
    }
    if (rv == 0) {
        rv = raft_start(r);
    }
    if (rv != 0) {
        const char *why = raft_errmsg(r);
        return dv_errorf(err, DV_EIO, "raft: %s (--raft %s, log in %s)",
                         why && *why ? why : raft_strerror(rv), opts->address,
                         self->raft_dir);
    }
    return 0;
}

int
dv_repl_open(dv_repl_t **out,
             uv_loop_t *loop,
             dv_store_t *store,
             const dv_repl_opts_t *opts,
             const dv_repl_events_t *ev,
             dv_error_t *err)
{
    dv_repl_t *self = dv_calloc(1, sizeof *self);
    self->loop = loop;
    self->store = store;
    self->ev = *ev;
    self->files_end = &self->files;
    self->pend_end = &self->pend;
    pthread_mutex_init(&self->files_lock, NULL);
    snprintf(self->dir, sizeof self->dir, "%s", opts->data_dir);
    snprintf(self->raft_dir, sizeof self->raft_dir, "%s/raft", opts->data_dir);
    dv_rng_t rng;
    dv_rng_seed(&rng, (uint64_t)getpid() << 32 ^ uv_hrtime());
    self->origin = dv_rng_next(&rng) | 1; // never 0
    fill_self(self, opts);
    dv_store_nosync(store);
    self->fsm = (struct raft_fsm){.version = 3,
                                  .data = self,
                                  .apply = fsm_apply,
                                  .snapshot = fsm_snapshot,
                                  .restore = fsm_restore,
                                  .snapshot_finalize = fsm_snapshot_finalize,
                                  .snapshot_async = fsm_snapshot_async};
    int rv = raft_uv_tcp_init(&self->transport, loop);
    if (rv == 0) {
        rv = raft_uv_init(&self->io, loop, self->raft_dir, &self->transport);
        if (rv != 0) {
            raft_uv_tcp_close(&self->transport);
        } else if (self->io.async_work) {
            // raft 0.15's uv backend implements async_work (snapshots on
            // the thread pool) but still says version 1, which raft_init
            // then refuses with a version 3 FSM; later releases say 2.
            self->io.version = self->io.version < 2 ? 2 : self->io.version;
        }
    }
    if (rv == 0) {
        rv = raft_init(&self->raft, &self->io, &self->fsm, opts->id,
                       opts->address);
        if (rv != 0) {
            raft_uv_close(&self->io);
            raft_uv_tcp_close(&self->transport);
        }
    }
    if (rv != 0) {
        int rc = dv_errorf(err, DV_EIO,
                           "raft: cannot open its log in %s (%s, code %d)",
                           self->raft_dir, raft_strerror(rv), rv);
        free(self);
        return rc;
    }
    self->handles = 1;
    self->raft.data = self;
    char host[DV_MAX_REPL_ADDR + 1];
    snprintf(host, sizeof host, "%s", opts->address);
    *strrchr(host, ':') = '\0'; // checked by dv_repl_prepare
    dv_blobs_events_t bev = {.on_blob = on_blob,
                             .on_have = on_have,
                             .on_hello = on_hello,
                             .arg = self};
    int rc = dv_blobs_open(&self->blobs, loop, self->raft_dir, host,
                           opts->files_port, opts->id, &bev, err);
    if (rc == 0) {
        self->handles++;
        snprintf(self->self_info.files, sizeof self->self_info.files, "%s",
                 dv_blobs_endpoint(self->blobs));
        dv_blobs_set_about(self->blobs, self->self_info.client,
                           self->self_info.worker, self->self_info.http);
        rc = start_raft(self, opts, err);
    }
    uv_timer_init(loop, &self->poll);
    self->poll.data = self;
    self->handles++;
    if (rc) {
        dv_repl_close(&self);
        return rc;
    }
    uv_timer_start(&self->poll, on_poll, POLL_MS, POLL_MS);
    dv_file_observe(on_file_change, self);
    *out = self;
    return 0;
}

static void
handle_closed(dv_repl_t *self)
{
    if (--self->handles > 0) {
        return;
    }
    raft_uv_close(&self->io);
    raft_uv_tcp_close(&self->transport);
    while (self->files) {
        file_op_t *f = self->files;
        self->files = f->next;
        file_free(f);
    }
    pthread_mutex_destroy(&self->files_lock);
    free(self);
}

static void on_blobs_closed(void *arg);

// Raft is done (no snapshot or apply can come): the files channel closes.
static void
on_raft_closed(struct raft *r)
{
    dv_repl_t *self = r->data;
    if (self->blobs) {
        dv_blobs_close(self->blobs, on_blobs_closed, self);
        self->blobs = NULL;
    }
    handle_closed(self);
}

static void
on_poll_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void
on_blobs_closed(void *arg)
{
    handle_closed(arg);
}

void
dv_repl_close(dv_repl_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_repl_t *self = *self_p;
    *self_p = NULL;
    dv_file_observe(NULL, NULL);
    self->closing = true;
    self->serving = false;
    pend_fail(self, DV_ENOTLEADER, "not stored: this broker is stopping");
    uv_close((uv_handle_t *)&self->poll, on_poll_closed);
    raft_close(&self->raft, on_raft_closed);
}
