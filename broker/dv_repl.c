// dv_repl — a broker group member (see dv_repl.h).
//
// Entries (RAFT_COMMAND buffers), all little-endian:
//   "DVR1", kind u8, then by kind
//   1 batch:  origin u64 (the proposing process, random per start), the store
//             batch (dv_store_batch_wire), file count u32, files
//   2 member: id u64, then 4 strings (u16 length + bytes): Raft address,
//             client, worker and HTTP endpoints of a member that now leads
// A file: op u8 (DV_FILE_*), mtime µs u64, path u16 + bytes (relative to the
// data folder, under models/ or datasets/), length u32 + bytes (puts).
// A snapshot: "DVS1", store dump length u64, the dump (dv_store_dump_wire),
// file count u32, files (every file under models/ and datasets/).
//
// The leader writes its own files as it always did, and applies only the
// store part of its own entries (origin == this process); every other entry
// is applied whole. Puts and deletes are blind writes, so a snapshot taken
// while entries apply, then those entries again, ends in the same state.
#include "dv_repl.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dv_datafiles.h"
#include "dv_endpoint.h"
#include "dv_file.h"
#include "dv_limits.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_rng.h"

#define PATH_BYTES   4096
#define POLL_MS      20 // how often the role is looked at
#define ENTRY_BATCH  1
#define ENTRY_MEMBER 2
#define ENTRY_CHUNK  3

typedef struct file_op_s {
    struct file_op_s *next; //
    uint8_t op;             // DV_FILE_*
    uint64_t mtime_us;      //
    char *path;             // relative, owned
    uint8_t *data;          // owned (puts)
    size_t len;             //
} file_op_t;

// An entry waiting its turn behind a large file's chunks: the chunks of
// big (when set), else a batch entry ready to propose.
typedef struct pend_s {
    struct pend_s *next;   //
    struct file_op_s *big; // a large file still to send, owned
    size_t off;            // its next chunk
    uint8_t *buf;          // a batch entry (raft_malloc), owned
    size_t len;            //
    dv_repl_done_fn *done; // its callback
    void *arg;             //
} pend_t;

typedef struct {
    uint64_t id;
    char raft[DV_MAX_REPL_ADDR + 1];
    char client[DV_MAX_REPL_ADDR + 1];
    char worker[DV_MAX_REPL_ADDR + 1];
    char http[DV_MAX_REPL_ADDR + 1];
} member_t;

struct dv_repl {
    uv_loop_t *loop;                       // borrowed
    dv_store_t *store;                     // borrowed
    struct raft raft;                      //
    struct raft_io io;                     //
    struct raft_uv_transport transport;    //
    struct raft_fsm fsm;                   //
    uv_timer_t poll;                       // role changes
    dv_repl_events_t ev;                   //
    char dir[PATH_BYTES];                  // the data folder
    char raft_dir[PATH_BYTES];             // DIR/raft
    uint64_t origin;                       // this process, in its entries
    member_t self_info;                    // what it tells when it leads
    member_t members[DV_MAX_REPL_MEMBERS]; // learnt from member entries
    size_t n_members;                      //
    file_op_t *files, **files_end;         // staged for the next entry
    size_t n_files;                        // (files_lock: the catalogs write
    pthread_mutex_t files_lock;            // files on the thread pool)
    struct pend_s *pend, **pend_end;       // entries waiting for a large
                                           // file's chunks to go first
    bool chunk_in_flight;                  // one chunk at a time
    bool promoting;                        // barrier in flight
    bool serving;                          // on_leader called
    bool closing;                          //
    int handles;                           // open: raft, poll timer
};

// --------------------------------------------------------------- encoding

static uint8_t *
put_n(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) {
        *p++ = (uint8_t)(v >> (8 * i));
    }
    return p;
}

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
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) {
        v |= (uint64_t)r->p[r->at + (size_t)i] << (8 * i);
    }
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
    p = put_n(p, n, 2);
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
    p = put_n(p, f->mtime_us, 8);
    p = put_str(p, f->path);
    p = put_n(p, f->len, 4);
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
    if (op == DV_FILE_PUT) {
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

static const member_t *
member_find(const dv_repl_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->n_members; i++) {
        if (self->members[i].id == id) {
            return &self->members[i];
        }
    }
    return NULL;
}

// ---------------------------------------------------------------------- FSM

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
        if (!r->bad && origin != self->origin) {
            rc = dv_datafiles_apply(self->dir, op, rel, mtime, data, len, err);
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
    return 0;
}

static int
fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    (void)fsm;
    *bufs = NULL; // taken in fsm_snapshot_async, on the thread pool
    *n = 0;
    return 0;
}

// Every file under DIR/sub, appended to the snapshot buffer.
static void
walk_files(const char *dir,
           const char *rel,
           uint8_t **buf,
           size_t *cap,
           size_t *at,
           uint32_t *n)
{
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    DIR *d = opendir(path);
    if (!d) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue; // ".", "..", and no hidden names are ours
        }
        char sub_rel[PATH_BYTES];
        char sub[PATH_BYTES];
        struct stat st;
        if (snprintf(sub_rel, sizeof sub_rel, "%s/%s", rel, e->d_name) >=
                (int)sizeof sub_rel ||
            snprintf(sub, sizeof sub, "%s/%s", dir, sub_rel) >=
                (int)sizeof sub ||
            lstat(sub, &st) != 0) {
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            walk_files(dir, sub_rel, buf, cap, at, n);
            continue;
        }
        if (!S_ISREG(st.st_mode) || strstr(e->d_name, ".tmp.") ||
            !dv_datafiles_path_ok(sub_rel)) {
            continue; // a write in progress: its entry carries it
        }
        file_op_t f = {0};
        f.op = DV_FILE_PUT;
        f.path = sub_rel;
        dv_error_t err;
        if (dv_file_read(sub, DV_MAX_MODEL_BYTES, &f.data, &f.len, &err) != 0) {
            continue; // removed meanwhile: its entry removes it again
        }
        f.mtime_us = dv_file_mtime_us(sub);
        size_t need = file_size(&f);
        while (*cap - *at < need) {
            *cap *= 2;
            *buf = dv_realloc(*buf, *cap);
        }
        *at = (size_t)(put_file(*buf + *at, &f) - *buf);
        (*n)++;
        free(f.data);
    }
    closedir(d);
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
    put_n(buf + 4, dump_len, 8);
    memcpy(buf + 12, dump, dump_len);
    free(dump);
    at = 12 + dump_len;
    size_t count_at = at;
    at += 4;
    uint32_t n = 0;
    walk_files(self->dir, "models", &buf, &cap, &at, &n);
    walk_files(self->dir, "datasets", &buf, &cap, &at, &n);
    put_n(buf + count_at, n, 4);
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
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

static int
fsm_snapshot_finalize(struct raft_fsm *fsm,
                      struct raft_buffer *bufs[],
                      unsigned *n_bufs)
{
    (void)fsm;
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
            rc = dv_datafiles_apply(self->dir, op, rel, mtime, data, len, &err);
        }
    }
    if (rc == 0 && r.bad) {
        rc = dv_errorf(&err, DV_EFORMAT, "snapshot truncated");
    }
    if (rc) {
        dv_log(DV_LOG_ERROR, "repl", "cannot restore a snapshot: %s", err.text);
        return RAFT_CORRUPT;
    }
    raft_free(buf->base);
    dv_log(DV_LOG_INFO, "repl", "store restored from a snapshot (%zu bytes)",
           buf->len);
    return 0;
}

// ------------------------------------------------------------------- roles

static void propose_member(dv_repl_t *self);

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
    self->serving = true;
    dv_datafiles_drop_parts(self->dir, "models");
    dv_datafiles_drop_parts(self->dir, "datasets");
    propose_member(self);
    dv_log(DV_LOG_INFO, "repl", "leading (term %" PRIu64 "): serving",
           (uint64_t)self->raft.current_term);
    self->ev.on_leader(self->ev.arg);
}

static void
on_poll(uv_timer_t *t)
{
    dv_repl_t *self = t->data;
    int state = raft_state(&self->raft);
    if (state == RAFT_LEADER && !self->serving && !self->promoting) {
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
    size_t len = 4 + 1 + 8 + 2 * 4 + strlen(m->raft) + strlen(m->client) +
                 strlen(m->worker) + strlen(m->http);
    uint8_t *buf = entry_alloc(len, &len), *p = buf;
    if (!buf) {
        return;
    }
    memcpy(p, "DVR1", 4);
    p[4] = ENTRY_MEMBER;
    p = put_n(p + 5, m->id, 8);
    p = put_str(p, m->raft);
    p = put_str(p, m->client);
    p = put_str(p, m->worker);
    put_str(p, m->http);
    dv_error_t err;
    (void)apply_buf(self, buf, len, ignore_done, NULL, &err);
}

static void
pend_free(pend_t *q)
{
    if (q->big) {
        file_free(q->big);
    }
    raft_free(q->buf);
    free(q);
}

// Every waiting entry fails (a chunk could not be proposed or committed:
// this member no longer leads), each batch's callback with the reason.
static void
pend_fail(dv_repl_t *self, int rc, const char *why)
{
    while (self->pend) {
        pend_t *q = self->pend;
        self->pend = q->next;
        if (q->done) {
            q->done(q->arg, rc, why);
        }
        pend_free(q);
    }
    self->pend_end = &self->pend;
}

static void pend_pump(dv_repl_t *self);

static void
on_chunk(void *arg, int rc, const char *why)
{
    dv_repl_t *self = arg;
    self->chunk_in_flight = false;
    if (rc) {
        pend_fail(self, rc, why);
    } else {
        pend_pump(self);
    }
}

// The next chunk of q's file as an entry (at most DV_REPL_CHUNK_BYTES: a
// file of gigabytes goes as many entries, each committed before the next
// is sent, so heartbeats never wait behind it). Returns 0 or DV_E*.
static int
propose_chunk(dv_repl_t *self, pend_t *q, dv_error_t *err)
{
    const file_op_t *f = q->big;
    size_t n = f->len - q->off < DV_REPL_CHUNK_BYTES ? f->len - q->off
                                                     : DV_REPL_CHUNK_BYTES;
    size_t len = 4 + 1 + 8 + 2 + strlen(f->path) + 8 + 4 + n;
    uint8_t *buf = entry_alloc(len, &len);
    if (!buf) {
        return dv_errorf(err, DV_ENOMEM, "chunk of %zu bytes", n);
    }
    memcpy(buf, "DVR1", 4);
    buf[4] = ENTRY_CHUNK;
    uint8_t *p = put_n(buf + 5, self->origin, 8);
    p = put_str(p, f->path);
    p = put_n(p, q->off, 8);
    p = put_n(p, n, 4);
    memcpy(p, f->data + q->off, n);
    q->off += n;
    self->chunk_in_flight = true;
    int rc = apply_buf(self, buf, len, on_chunk, self, err);
    if (rc) {
        self->chunk_in_flight = false;
    }
    return rc;
}

// Propose what waits, in order: a file's chunks one at a time, then the
// batch entries behind them.
static void
pend_pump(dv_repl_t *self)
{
    dv_error_t err = {0};
    while (self->pend && !self->chunk_in_flight) {
        pend_t *q = self->pend;
        int rc = 0;
        if (q->big && q->off < q->big->len) {
            rc = propose_chunk(self, q, &err);
        } else {
            self->pend = q->next;
            if (!self->pend) {
                self->pend_end = &self->pend;
            }
            if (q->buf) {
                uint8_t *buf = q->buf;
                q->buf = NULL; // raft's now (freed by apply_buf on failure)
                rc = apply_buf(self, buf, q->len, q->done, q->arg, &err);
                if (rc) {
                    q->done(q->arg, rc, err.text);
                }
            }
            pend_free(q);
        }
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

// A put of a large file leaves the batch: its bytes go as chunks before
// it, and the batch says only "NAME.part is whole" (its size).
static void
take_big(dv_repl_t *self, file_op_t *f)
{
    pend_t *q = dv_calloc(1, sizeof *q);
    file_op_t *big = dv_calloc(1, sizeof *big);
    *big = *f;
    big->next = NULL;
    q->big = big;
    pend_push(self, q);
    f->path = dv_strdup(big->path);
    f->op = DV_DATAFILES_PART_DONE;
    f->data = dv_malloc(8);
    put_n(f->data, big->len, 8);
    f->len = 8;
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
        if (f->op == DV_FILE_PUT && f->len > DV_REPL_CHUNK_BYTES) {
            take_big(self, f);
        }
        len += file_size(f);
    }
    uint8_t *buf = entry_alloc(len, &len);
    uint8_t *p = buf;
    if (buf) {
        memcpy(buf, "DVR1", 4);
        buf[4] = ENTRY_BATCH;
        p = put_n(buf + 5, self->origin, 8);
        p = dv_store_batch_wire(batch, p);
        p = put_n(p, n_files, 4);
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

// ------------------------------------------------------------------ status

bool
dv_repl_serving(const dv_repl_t *self)
{
    return self->serving;
}

static const member_t *
leader_member(const dv_repl_t *self)
{
    struct raft *r = (struct raft *)&self->raft;
    raft_id id = 0;
    const char *addr = NULL;
    raft_leader(r, &id, &addr);
    if (id == 0 || (id == self->raft.id && !self->serving)) {
        return NULL;
    }
    // A follower that has not heard from its leader for two heartbeats
    // does not send clients there: it is most likely dead, and following
    // the hint would only bounce them between it and us until the election
    // ends (raft forgets the leader only at the election timeout).
    if (id != self->raft.id && r->io->time(r->io) - r->election_timer_start >
                                   2 * (raft_time)r->heartbeat_timeout) {
        return NULL;
    }
    return member_find(self, id);
}

const char *
dv_repl_leader_client(const dv_repl_t *self)
{
    const member_t *m = leader_member(self);
    return m ? m->client : "";
}

const char *
dv_repl_leader_worker(const dv_repl_t *self)
{
    const member_t *m = leader_member(self);
    return m ? m->worker : "";
}

static const char *
role_of(const dv_repl_t *self, unsigned i, uint64_t id, uint64_t leader)
{
    if (id == leader) {
        return "leader";
    }
    const struct raft *r = &self->raft;
    if (r->state == RAFT_LEADER && r->leader_state.progress &&
        !r->leader_state.progress[i].recent_recv) {
        return "unknown"; // not heard from within an election timeout
    }
    if (id == self->raft.id) {
        int s = raft_state((struct raft *)&self->raft);
        return s == RAFT_CANDIDATE ? "candidate" : "follower";
    }
    return leader == self->raft.id ? "follower" : "unknown";
}

void
dv_repl_describe(dv_repl_t *self, dv_msgw_t *w)
{
    struct raft *r = &self->raft;
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(r, &leader, &addr);
    dv_msgw_uint(w, "self", r->id);
    dv_msgw_uint(w, "leader", leader);
    dv_msgw_uint(w, "term", r->current_term);
    dv_msgw_uint(w, "commit", r->commit_index);
    dv_msgw_uint(w, "applied", raft_last_applied(r));
    dv_msgw_uint(w, "last", raft_last_index(r));
    unsigned n = r->configuration.n;
    dv_msgw_key(w, "members");
    dv_msgw_v_array(w, n);
    for (unsigned i = 0; i < n; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        const member_t *m = s->id == r->id ? &self->self_info // it knows
                                           : member_find(self, s->id);
        dv_msgw_v_map(w, 8);
        dv_msgw_v_str(w, "id");
        dv_msgw_v_uint(w, s->id);
        dv_msgw_v_str(w, "raft");
        dv_msgw_v_str(w, s->address ? s->address : "");
        dv_msgw_v_str(w, "client");
        dv_msgw_v_str(w, m ? m->client : "");
        dv_msgw_v_str(w, "worker");
        dv_msgw_v_str(w, m ? m->worker : "");
        dv_msgw_v_str(w, "http");
        dv_msgw_v_str(w, m ? m->http : "");
        dv_msgw_v_str(w, "voter");
        dv_msgw_v_bool(w, s->role == RAFT_VOTER);
        dv_msgw_v_str(w, "role");
        dv_msgw_v_str(w, role_of(self, i, s->id, leader));
        uint64_t match = 0;
        if (r->state == RAFT_LEADER && r->leader_state.progress) {
            match = s->id == r->id ? raft_last_index(r)
                                   : r->leader_state.progress[i].match_index;
        } else if (s->id == r->id) {
            match = raft_last_index(r);
        }
        dv_msgw_v_str(w, "match");
        dv_msgw_v_uint(w, match);
    }
}

void
dv_repl_figures(dv_repl_t *self, dv_repl_figures_t *f)
{
    struct raft *r = &self->raft;
    static const char *roles[] = {"unavailable", "follower", "candidate",
                                  "leader"};
    int state = raft_state(r);
    const char *addr = NULL;
    raft_id leader = 0;
    raft_leader(r, &leader, &addr);
    memset(f, 0, sizeof *f);
    f->id = r->id;
    f->leader = leader;
    f->role = state >= 0 && state <= 3 ? roles[state] : "unavailable";
    f->term = r->current_term;
    f->commit = r->commit_index;
    f->applied = raft_last_applied(r);
    f->last = raft_last_index(r);
    for (unsigned i = 0; i < r->configuration.n && i < DV_MAX_REPL_MEMBERS;
         i++) {
        f->ids[f->n] = r->configuration.servers[i].id;
        if (state == RAFT_LEADER && r->leader_state.progress &&
            r->configuration.servers[i].id != r->id) {
            uint64_t m = r->leader_state.progress[i].match_index;
            f->lag[f->n] = f->last > m ? f->last - m : 0;
        }
        f->n++;
    }
}

// ----------------------------------------------------------------- members

typedef struct {
    struct raft_change req;
    dv_repl_t *self;
    uint64_t id;
    bool assign; // added as a spare: make it a voter next
    dv_repl_done_fn *done;
    void *arg;
} change_t;

static void
on_changed(struct raft_change *req, int status)
{
    change_t *c = (change_t *)req;
    if (status == 0 && c->assign) {
        c->assign = false;
        memset(&c->req, 0, sizeof c->req);
        int rv =
            raft_assign(&c->self->raft, &c->req, c->id, RAFT_VOTER, on_changed);
        if (rv == 0) {
            return;
        }
        status = rv;
    }
    if (status == 0) {
        c->done(c->arg, 0, "");
    } else {
        char why[160];
        snprintf(why, sizeof why, "membership change of %" PRIu64 ": %s", c->id,
                 raft_strerror(status));
        c->done(c->arg,
                status == RAFT_NOTLEADER || status == RAFT_LEADERSHIPLOST
                    ? DV_ENOTLEADER
                    : DV_EINVAL,
                why);
    }
    free(c);
}

static int
change_error(dv_error_t *err, int rv, uint64_t id)
{
    return dv_errorf(err, rv == RAFT_NOTLEADER ? DV_ENOTLEADER : DV_EINVAL,
                     "membership change of %" PRIu64 ": %s", id,
                     raft_strerror(rv));
}

int
dv_repl_member_add(dv_repl_t *self,
                   uint64_t id,
                   const char *address,
                   dv_repl_done_fn *done,
                   void *arg,
                   dv_error_t *err)
{
    if (id == 0 || id > DV_MAX_REPL_ID || !address || !*address ||
        strlen(address) > DV_MAX_REPL_ADDR) {
        return dv_errorf(err, DV_EINVAL,
                         "member_add: an id 1..%d and a HOST:PORT, please",
                         DV_MAX_REPL_ID);
    }
    change_t *c = dv_calloc(1, sizeof *c);
    *c = (change_t){
        .self = self, .id = id, .assign = true, .done = done, .arg = arg};
    int rv = raft_add(&self->raft, &c->req, id, address, on_changed);
    if (rv != 0) {
        free(c);
        return change_error(err, rv, id);
    }
    return 0;
}

int
dv_repl_member_remove(dv_repl_t *self,
                      uint64_t id,
                      dv_repl_done_fn *done,
                      void *arg,
                      dv_error_t *err)
{
    change_t *c = dv_calloc(1, sizeof *c);
    *c = (change_t){.self = self, .id = id, .done = done, .arg = arg};
    int rv = raft_remove(&self->raft, &c->req, id, on_changed);
    if (rv != 0) {
        free(c);
        return change_error(err, rv, id);
    }
    return 0;
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
    raft_set_snapshot_threshold(r, DV_REPL_SNAPSHOT_ENTRIES);
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
        free(self);
        return dv_errorf(err, DV_EIO,
                         "raft: cannot open its log in %s (%s, code %d)",
                         self->raft_dir, raft_strerror(rv), rv);
    }
    self->handles = 1;
    self->raft.data = self;
    int rc = start_raft(self, opts, err);
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

static void
on_raft_closed(struct raft *r)
{
    handle_closed(r->data);
}

static void
on_poll_closed(uv_handle_t *h)
{
    handle_closed(h->data);
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
