// dv_store — the broker's durable store (see dv_store.h).
//
// LMDB environment in DIR/store (data.mdb + lock.mdb), one named database
// per table with MDB_INTEGERKEY keys (uint64 job ids) and a "meta" database
// for the next job id. A value is its bytes followed by a CRC-32 (IEEE) of
// them, little-endian.
//
// LMDB pitfalls handled here: the map size can only change while no
// transaction is open, so MDB_MAP_FULL aborts the batch, doubles the map
// and replays it; a data file shorter than the meta page's last page would
// SIGBUS on access, so open compares them first.
#include "dv_store.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <lmdb.h>

#include "dv_crc32.h"
#include "dv_file.h"
#include "dv_le.h"
#include "dv_mem.h"

#define INITIAL_MAP ((size_t)64 << 20)
#define MAX_MAP     ((size_t)1 << 40) // 1 TiB of address space
#define PATH_BYTES  4096

typedef struct {
    uint8_t table; // dv_store_table_t, or TABLES_ for meta
    bool del;      // delete instead of put
    uint64_t id;   // key
    uint8_t *data; // value with its CRC appended (puts), owned
    size_t len;    // its length, CRC included
} op_t;

struct dv_store_batch {
    op_t *ops;        // staged operations, owned
    size_t n_ops;     //
    uint64_t next_id; // 0: none
};

struct dv_store {
    MDB_env *env;                  // the environment
    MDB_dbi dbi[DV_STORE_TABLES_]; // one per table
    MDB_dbi meta;                  // next job id
    char path[PATH_BYTES];         // DIR/store, for messages
    op_t *ops;                     // staged
    size_t n_ops, cap_ops;         //
    uint64_t next_id;              // as committed
    uint64_t staged_next_id;       // 0: none staged
    size_t map_size;               // current map size
    pthread_rwlock_t map_lock;     // reads hold it shared; map growth
                                   // (no transaction may be open) alone
};

static const char *s_table_names[DV_STORE_TABLES_] = {
    "jobs",    "attempts", "results", "dead",   "keys",
    "cursors", "ckpts",    "audit",   "streams"};

// ----------------------------------------------------------------- errors

// LMDB reports a short write as EIO: that is what a full disk or a file
// size limit usually looks like. Tell them apart from real I/O errors.
static bool
out_of_space(const dv_store_t *self)
{
    struct statvfs vfs;
    if (statvfs(self->path, &vfs) == 0 &&
        (uint64_t)vfs.f_bavail * vfs.f_frsize < ((uint64_t)16 << 20)) {
        return true;
    }
    char file[PATH_BYTES + 16];
    snprintf(file, sizeof file, "%s/data.mdb", self->path);
    struct stat fs;
    struct rlimit lim;
    return stat(file, &fs) == 0 && getrlimit(RLIMIT_FSIZE, &lim) == 0 &&
           lim.rlim_cur != RLIM_INFINITY &&
           (uint64_t)fs.st_size + ((uint64_t)1 << 20) >= lim.rlim_cur;
}

static int
lmdb_error(dv_error_t *err, const dv_store_t *self, const char *what, int rc)
{
    if (rc == EIO && out_of_space(self)) {
        rc = ENOSPC;
    }
    int code;
    switch (rc) {
    case MDB_CORRUPTED:
    case MDB_INVALID:
    case MDB_PAGE_NOTFOUND:
        code = DV_EFORMAT;
        break;
    case MDB_VERSION_MISMATCH:
        code = DV_EVERSION;
        break;
    case ENOSPC:
    case EFBIG: // a file size limit (ulimit -f): as full for us
    case EDQUOT:
    case MDB_MAP_FULL:
        code = DV_ENOSPC;
        break;
    case EACCES:
    case EROFS:
        code = DV_EACCES;
        break;
    case ENOMEM:
        code = DV_ENOMEM;
        break;
    default:
        code = DV_EIO;
        break;
    }
    const char *advice =
        code == DV_EFORMAT || code == DV_EVERSION
            ? " (the store is damaged or not an LMDB store: the broker will "
              "not run on it; move the folder away and restore a copy, or "
              "salvage it with mdb_dump/mdb_load, docs/SEMANTICS.md)"
        : code == DV_ENOSPC
            ? " (no space for the store: what was stored before is intact; "
              "free space, then submit again)"
            : "";
    return dv_errorf(err, code, "store %s: %s: %s%s", self->path, what,
                     mdb_strerror(rc), advice);
}

// ------------------------------------------------------------------- open

// A data file shorter than LMDB's last used page would fault when read.
static int
check_length(dv_store_t *self, dv_error_t *err)
{
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(self->env, &info);
    mdb_env_stat(self->env, &st);
    char file[PATH_BYTES + 16];
    snprintf(file, sizeof file, "%s/data.mdb", self->path);
    struct stat fs;
    if (stat(file, &fs) != 0) {
        return dv_file_error(err, file, errno);
    }
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    if ((uint64_t)fs.st_size < need) {
        return dv_errorf(err, DV_ETRUNC,
                         "store %s: data.mdb is %lld bytes but its pages "
                         "reach %" PRIu64
                         " (truncated: the broker will not run on it; restore "
                         "a copy or move the folder away, docs/SEMANTICS.md)",
                         self->path, (long long)fs.st_size, need);
    }
    return 0;
}

int
dv_store_open(dv_store_t **out, const char *dir, dv_error_t *err)
{
    dv_store_t *self = dv_calloc(1, sizeof *self);
    pthread_rwlock_init(&self->map_lock, NULL);
    snprintf(self->path, sizeof self->path, "%s/store", dir);
    int rc = dv_file_mkdirs(self->path, 0700, err);
    if (rc) {
        free(self);
        return rc;
    }
    // Start at least as large as the file already is.
    self->map_size = INITIAL_MAP;
    char file[PATH_BYTES + 16];
    snprintf(file, sizeof file, "%s/data.mdb", self->path);
    struct stat fs;
    while (stat(file, &fs) == 0 && (uint64_t)fs.st_size > self->map_size &&
           self->map_size < MAX_MAP) {
        self->map_size *= 2;
    }
    int mrc = mdb_env_create(&self->env);
    if (mrc == 0) {
        mdb_env_set_maxdbs(self->env, DV_STORE_TABLES_ + 1);
        mrc = mdb_env_set_mapsize(self->env, self->map_size);
    }
    if (mrc == 0) {
        mrc = mdb_env_open(self->env, self->path, MDB_NOTLS, 0600);
    }
    if (mrc) {
        rc = lmdb_error(err, self, "open", mrc);
        dv_store_destroy(&self);
        return rc;
    }
    rc = check_length(self, err);
    MDB_txn *txn = NULL;
    if (rc == 0 && (mrc = mdb_txn_begin(self->env, NULL, 0, &txn)) != 0) {
        rc = lmdb_error(err, self, "begin", mrc);
    }
    for (int t = 0; rc == 0 && t < DV_STORE_TABLES_; t++) {
        mrc = mdb_dbi_open(txn, s_table_names[t], MDB_CREATE | MDB_INTEGERKEY,
                           &self->dbi[t]);
        if (mrc) {
            rc = lmdb_error(err, self, s_table_names[t], mrc);
        }
    }
    if (rc == 0 &&
        (mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &self->meta)) != 0) {
        rc = lmdb_error(err, self, "meta", mrc);
    }
    self->next_id = 1;
    if (rc == 0) {
        MDB_val k = {9, "next_job"}, v;
        mrc = mdb_get(txn, self->meta, &k, &v);
        if (mrc == 0 && v.mv_size == 8) {
            memcpy(&self->next_id, v.mv_data, 8);
        } else if (mrc != MDB_NOTFOUND && mrc != 0) {
            rc = lmdb_error(err, self, "meta", mrc);
        }
    }
    if (rc == 0 && (mrc = mdb_txn_commit(txn)) != 0) {
        txn = NULL;
        rc = lmdb_error(err, self, "commit", mrc);
    } else if (rc == 0) {
        txn = NULL;
    }
    if (txn) {
        mdb_txn_abort(txn);
    }
    if (rc) {
        dv_store_destroy(&self);
        return rc;
    }
    *out = self;
    return 0;
}

static void
drop_ops(dv_store_t *self)
{
    for (size_t i = 0; i < self->n_ops; i++) {
        free(self->ops[i].data);
    }
    self->n_ops = 0;
    self->staged_next_id = 0;
}

void
dv_store_destroy(dv_store_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_store_t *self = *self_p;
    drop_ops(self);
    free(self->ops);
    if (self->env) {
        mdb_env_close(self->env);
    }
    pthread_rwlock_destroy(&self->map_lock);
    free(self);
    *self_p = NULL;
}

// ----------------------------------------------------------------- writes

static op_t *
new_op(dv_store_t *self)
{
    if (self->n_ops == self->cap_ops) {
        self->cap_ops = self->cap_ops ? self->cap_ops * 2 : 256;
        self->ops = dv_realloc(self->ops, self->cap_ops * sizeof *self->ops);
    }
    op_t *op = &self->ops[self->n_ops++];
    memset(op, 0, sizeof *op);
    return op;
}

void
dv_store_put(dv_store_t *self,
             dv_store_table_t table,
             uint64_t id,
             const void *data,
             size_t len)
{
    uint8_t *buf = dv_malloc(len + DV_STORE_SPARE);
    if (len) {
        memcpy(buf, data, len);
    }
    dv_store_put_owned(self, table, id, buf, len);
}

void
dv_store_put_owned(dv_store_t *self,
                   dv_store_table_t table,
                   uint64_t id,
                   uint8_t *buf,
                   size_t len)
{
    op_t *op = new_op(self);
    op->table = (uint8_t)table;
    op->id = id;
    op->len = len + 4; // the CRC is written when the batch is applied
    op->data = buf;
}

// Append each put's CRC (on the committing thread: it reads every byte).
static void
seal(op_t *ops, size_t n_ops)
{
    for (size_t i = 0; i < n_ops; i++) {
        if (!ops[i].del) {
            size_t len = ops[i].len - 4;
            uint32_t c = dv_crc32(ops[i].data, len);
            dv_le_put32(ops[i].data + len, c);
        }
    }
}

void
dv_store_del(dv_store_t *self, dv_store_table_t table, uint64_t id)
{
    op_t *op = new_op(self);
    op->table = (uint8_t)table;
    op->id = id;
    op->del = true;
}

void
dv_store_set_next_id(dv_store_t *self, uint64_t next)
{
    self->staged_next_id = next;
}

size_t
dv_store_staged(const dv_store_t *self)
{
    return self->n_ops + (self->staged_next_id != 0);
}

uint64_t
dv_store_next_id(const dv_store_t *self)
{
    return self->next_id;
}

// One attempt at applying ops. Returns an LMDB code.
static int
apply(dv_store_t *self, const op_t *ops, size_t n_ops, uint64_t next_id)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(self->env, NULL, 0, &txn);
    for (size_t i = 0; rc == 0 && i < n_ops; i++) {
        const op_t *op = &ops[i];
        MDB_val k = {sizeof op->id, (void *)&op->id};
        if (op->del) {
            rc = mdb_del(txn, self->dbi[op->table], &k, NULL);
            rc = rc == MDB_NOTFOUND ? 0 : rc;
        } else {
            MDB_val v = {op->len, op->data};
            rc = mdb_put(txn, self->dbi[op->table], &k, &v, 0);
        }
    }
    if (rc == 0 && next_id) {
        MDB_val k = {9, "next_job"}, v = {8, &next_id};
        rc = mdb_put(txn, self->meta, &k, &v, 0);
    }
    if (rc == 0) {
        rc = mdb_txn_commit(txn); // fsyncs (no MDB_NOSYNC)
    } else if (txn) {
        mdb_txn_abort(txn);
    }
    return rc;
}

// Apply with map growth. Only one writer at a time (the caller's rule), and
// no read transaction is open while the broker runs, so the map may grow.
static int
apply_growing(dv_store_t *self,
              const op_t *ops,
              size_t n_ops,
              uint64_t next_id,
              dv_error_t *err)
{
    int rc;
    while ((rc = apply(self, ops, n_ops, next_id)) == MDB_MAP_FULL &&
           self->map_size < MAX_MAP) {
        // No transaction may be open anywhere in the process while the
        // map changes: wait for the loop thread's reads (dv_store_get_many).
        pthread_rwlock_wrlock(&self->map_lock);
        int grc = mdb_env_set_mapsize(self->env, self->map_size * 2);
        pthread_rwlock_unlock(&self->map_lock);
        if (grc != 0) {
            rc = grc;
            break;
        }
        self->map_size *= 2;
    }
    return rc ? lmdb_error(err, self, "commit", rc) : 0;
}

int
dv_store_commit(dv_store_t *self, dv_error_t *err)
{
    if (dv_store_staged(self) == 0) {
        return 0;
    }
    dv_store_batch_t *b = dv_store_take(self);
    int rc = dv_store_batch_commit(self, b, err);
    dv_store_batch_done(self, &b, rc);
    return rc;
}

dv_store_batch_t *
dv_store_take(dv_store_t *self)
{
    dv_store_batch_t *b = dv_calloc(1, sizeof *b);
    b->ops = self->ops;
    b->n_ops = self->n_ops;
    b->next_id = self->staged_next_id;
    self->ops = NULL;
    self->n_ops = self->cap_ops = 0;
    self->staged_next_id = 0;
    return b;
}

int
dv_store_batch_commit(dv_store_t *self, dv_store_batch_t *b, dv_error_t *err)
{
    if (b->n_ops == 0 && b->next_id == 0) {
        return 0;
    }
    seal(b->ops, b->n_ops);
    return apply_growing(self, b->ops, b->n_ops, b->next_id, err);
}

void
dv_store_batch_done(dv_store_t *self, dv_store_batch_t **batch_p, int rc)
{
    if (!batch_p || !*batch_p) {
        return;
    }
    dv_store_batch_t *b = *batch_p;
    if (rc == 0 && b->next_id) {
        self->next_id = b->next_id;
    }
    for (size_t i = 0; i < b->n_ops; i++) {
        free(b->ops[i].data);
    }
    free(b->ops);
    free(b);
    *batch_p = NULL;
}

// ------------------------------------------------------------ replication

#define WIRE_HEAD 12 // next id u64, op count u32
#define WIRE_OP   14 // table u8, delete u8, id u64, value length u32

size_t
dv_store_batch_wire_size(const dv_store_batch_t *b)
{
    size_t n = WIRE_HEAD;
    for (size_t i = 0; i < b->n_ops; i++) {
        n += WIRE_OP + (b->ops[i].del ? 0 : b->ops[i].len);
    }
    return n;
}

uint8_t *
dv_store_batch_wire(dv_store_batch_t *b, uint8_t *p)
{
    seal(b->ops, b->n_ops);
    p = dv_le_put(p, b->next_id, 8);
    p = dv_le_put(p, b->n_ops, 4);
    for (size_t i = 0; i < b->n_ops; i++) {
        const op_t *op = &b->ops[i];
        *p++ = op->table;
        *p++ = op->del;
        p = dv_le_put(p, op->id, 8);
        size_t len = op->del ? 0 : op->len;
        p = dv_le_put(p, len, 4);
        if (len) {
            memcpy(p, op->data, len);
            p += len;
        }
    }
    return p;
}

// Parse an encoding into ops pointing into p (checked: bounds, tables).
// Returns 0 or DV_EFORMAT.
static int
wire_parse(const dv_store_t *self,
           const uint8_t *p,
           size_t len,
           op_t **ops_out,
           size_t *n_out,
           uint64_t *next_id,
           size_t *used,
           dv_error_t *err)
{
    if (len < WIRE_HEAD) {
        return dv_errorf(err, DV_EFORMAT,
                         "store %s: replicated batch "
                         "shorter than its header",
                         self->path);
    }
    *next_id = dv_le_get(p, 8);
    size_t n = (size_t)dv_le_get(p + 8, 4), at = WIRE_HEAD;
    if (n > (len - at) / WIRE_OP) {
        return dv_errorf(err, DV_EFORMAT,
                         "store %s: replicated batch "
                         "names %zu ops in %zu bytes",
                         self->path, n, len);
    }
    op_t *ops = n ? dv_calloc(n, sizeof *ops) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (len - at < WIRE_OP) {
            free(ops);
            return dv_errorf(err, DV_EFORMAT,
                             "store %s: replicated batch "
                             "truncated at op %zu",
                             self->path, i);
        }
        op_t *op = &ops[i];
        op->table = p[at];
        op->del = p[at + 1] != 0;
        op->id = dv_le_get(p + at + 2, 8);
        op->len = (size_t)dv_le_get(p + at + 10, 4);
        at += WIRE_OP;
        op->data = (uint8_t *)(uintptr_t)(p + at); // read only by apply()
        // Bounds only: each value's CRC travels with it and every read
        // checks it (dv_store_each, dv_store_get_many), and raft checksums
        // its entries on disk; checking here too cost a follower a tenth
        // of its CPU.
        if (op->table >= DV_STORE_TABLES_ || op->len > len - at ||
            (!op->del && op->len < 4) || (op->del && op->len)) {
            free(ops);
            return dv_errorf(err, DV_EFORMAT,
                             "store %s: replicated batch op %zu is "
                             "malformed",
                             self->path, i);
        }
        at += op->len;
    }
    *ops_out = ops;
    *n_out = n;
    *used = at;
    return 0;
}

// Empty every table (a snapshot replaces the store).
static int
clear_tables(dv_store_t *self)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(self->env, NULL, 0, &txn);
    for (int t = 0; rc == 0 && t < DV_STORE_TABLES_; t++) {
        rc = mdb_drop(txn, self->dbi[t], 0);
    }
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
    } else if (txn) {
        mdb_txn_abort(txn);
    }
    return rc;
}

int
dv_store_apply_wire(dv_store_t *self,
                    const uint8_t *p,
                    size_t len,
                    bool clear,
                    size_t *used,
                    dv_error_t *err)
{
    op_t *ops = NULL;
    size_t n = 0;
    uint64_t next_id = 0;
    int rc = wire_parse(self, p, len, &ops, &n, &next_id, used, err);
    if (rc) {
        return rc;
    }
    int mrc = clear ? clear_tables(self) : 0;
    if (mrc) {
        rc = lmdb_error(err, self, "restore", mrc);
    } else {
        rc = apply_growing(self, ops, n, next_id, err);
    }
    if (rc == 0 && (next_id || clear)) {
        self->next_id = next_id ? next_id : 1;
    }
    free(ops);
    return rc;
}

int
dv_store_dump_wire(dv_store_t *self,
                   uint8_t **out,
                   size_t *len,
                   dv_error_t *err)
{
    pthread_rwlock_rdlock(&self->map_lock);
    MDB_txn *txn = NULL;
    int mrc = mdb_txn_begin(self->env, NULL, MDB_RDONLY, &txn);
    size_t cap = 4096, at = WIRE_HEAD, n = 0;
    uint8_t *buf = dv_malloc(cap);
    uint64_t next_id = 1;
    if (mrc == 0) {
        MDB_val k = {9, "next_job"}, v;
        if (mdb_get(txn, self->meta, &k, &v) == 0 && v.mv_size == 8) {
            memcpy(&next_id, v.mv_data, 8);
        }
    }
    for (int t = 0; mrc == 0 && t < DV_STORE_TABLES_; t++) {
        MDB_cursor *cur = NULL;
        mrc = mdb_cursor_open(txn, self->dbi[t], &cur);
        MDB_val k, v;
        int op = MDB_FIRST;
        while (mrc == 0 && (mrc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
            op = MDB_NEXT;
            if (k.mv_size != 8) {
                continue;
            }
            while (cap - at < WIRE_OP + v.mv_size) {
                cap *= 2;
                buf = dv_realloc(buf, cap);
            }
            uint8_t *p = buf + at;
            *p++ = (uint8_t)t;
            *p++ = 0;
            uint64_t id;
            memcpy(&id, k.mv_data, 8); // host order, as put
            p = dv_le_put(p, id, 8);
            p = dv_le_put(p, v.mv_size, 4);
            memcpy(p, v.mv_data, v.mv_size);
            at += WIRE_OP + v.mv_size;
            n++;
        }
        mrc = mrc == MDB_NOTFOUND ? 0 : mrc;
        if (cur) {
            mdb_cursor_close(cur);
        }
    }
    if (txn) {
        mdb_txn_abort(txn);
    }
    pthread_rwlock_unlock(&self->map_lock);
    if (mrc) {
        free(buf);
        return lmdb_error(err, self, "snapshot", mrc);
    }
    dv_le_put(buf, next_id, 8);
    dv_le_put(buf + 8, n, 4);
    *out = buf;
    *len = at;
    return 0;
}

void
dv_store_nosync(dv_store_t *self)
{
    mdb_env_set_flags(self->env, MDB_NOSYNC, 1);
}

// ------------------------------------------------------------------ reads

int
dv_store_each(dv_store_t *self,
              dv_store_table_t table,
              dv_store_each_fn *fn,
              void *arg,
              dv_error_t *err)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    int mrc = mdb_txn_begin(self->env, NULL, MDB_RDONLY, &txn);
    if (mrc == 0) {
        mrc = mdb_cursor_open(txn, self->dbi[table], &cur);
    }
    if (mrc) {
        if (txn) {
            mdb_txn_abort(txn);
        }
        return lmdb_error(err, self, s_table_names[table], mrc);
    }
    int rc = 0;
    MDB_val k, v;
    int op = MDB_FIRST;
    while (rc == 0 && (mrc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        uint64_t id = 0;
        const uint8_t *p = v.mv_data;
        if (k.mv_size != sizeof id || v.mv_size < 4) {
            rc = dv_errorf(err, DV_EFORMAT,
                           "store %s: a %s record has a malformed key or "
                           "value (the broker will not run on a damaged "
                           "store; docs/SEMANTICS.md)",
                           self->path, s_table_names[table]);
            break;
        }
        memcpy(&id, k.mv_data, sizeof id);
        size_t len = v.mv_size - 4;
        uint32_t want = dv_le_get32(p + len);
        if (dv_crc32(p, len) != want) {
            rc = dv_errorf(err, DV_ECHECKSUM,
                           "store %s: %s record of job %" PRIu64
                           " is damaged (CRC mismatch; the broker will not "
                           "run on a damaged store; docs/SEMANTICS.md)",
                           self->path, s_table_names[table], id);
            break;
        }
        rc = fn(id, p, len, arg);
    }
    if (rc == 0 && mrc != MDB_NOTFOUND && mrc != 0) {
        rc = lmdb_error(err, self, s_table_names[table], mrc);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc;
}

int
dv_store_get_many(dv_store_t *self,
                  dv_store_table_t table,
                  const uint64_t *ids,
                  size_t n,
                  dv_store_each_fn *fn,
                  void *arg,
                  dv_error_t *err)
{
    pthread_rwlock_rdlock(&self->map_lock);
    MDB_txn *txn = NULL;
    int mrc = mdb_txn_begin(self->env, NULL, MDB_RDONLY, &txn);
    if (mrc) {
        pthread_rwlock_unlock(&self->map_lock);
        return lmdb_error(err, self, s_table_names[table], mrc);
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        MDB_val k = {sizeof ids[i], (void *)&ids[i]}, v;
        mrc = mdb_get(txn, self->dbi[table], &k, &v);
        if (mrc == MDB_NOTFOUND) {
            rc = fn(ids[i], NULL, 0, arg);
            continue;
        }
        if (mrc) {
            rc = lmdb_error(err, self, s_table_names[table], mrc);
            break;
        }
        const uint8_t *p = v.mv_data;
        size_t len = v.mv_size >= 4 ? v.mv_size - 4 : 0;
        uint32_t want = v.mv_size >= 4 ? dv_le_get32(p + len) : 0;
        if (v.mv_size < 4 || dv_crc32(p, len) != want) {
            rc = dv_errorf(err, DV_ECHECKSUM,
                           "store %s: %s record of job %" PRIu64
                           " is damaged (CRC mismatch)",
                           self->path, s_table_names[table], ids[i]);
            break;
        }
        rc = fn(ids[i], p, len, arg);
    }
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&self->map_lock);
    return rc;
}

size_t
dv_store_count(dv_store_t *self, dv_store_table_t table)

{
    MDB_txn *txn = NULL;
    MDB_stat st = {0};
    if (mdb_txn_begin(self->env, NULL, MDB_RDONLY, &txn) == 0) {
        mdb_stat(txn, self->dbi[table], &st);
        mdb_txn_abort(txn);
    }
    return st.ms_entries;
}
