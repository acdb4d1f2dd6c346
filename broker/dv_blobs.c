// dv_blobs — a broker group member's blob store and files channel (see
// dv_blobs.h).
//
// A transfer asks for DV_BLOB_WINDOW chunks at a time and takes them only
// in order (a ZeroMQ connection keeps them in order; one that does not
// come is a stall), so the SHA-256 is computed as the bytes arrive and
// the loop thread writes at most one chunk per message. The finished
// file's fsync runs on the thread pool (uv_fs_fsync) before it is renamed
// into the store and announced with have.
#include "dv_blobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <msgpack.h>
#include <zmq.h>

#include "dv_file.h"
#include "dv_limits.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_msgpack.h"
#include "dv_zwatch.h"

#define PATH_BYTES 4096
#define EP_BYTES   300
#define RID_BYTES  256 // a ZeroMQ routing id is at most 255 bytes

typedef uint8_t sha_t[DV_SHA256_BYTES];

// Where a message came from: a routing id on the ROUTER, or the DEALER
// (rid_len 0) to the leader.
typedef struct {
    uint8_t rid[RID_BYTES];
    size_t rid_len;
} src_t;

typedef struct {
    src_t src;        // its connection
    uint64_t id;      // the member id it said hello with
    uint64_t seen_ms; // last hello (the oldest is forgotten first)
} peer_t;

typedef struct {
    bool used;         //
    bool syncing;      // complete: fsync on the pool, then into the store
    sha_t sha;         //
    uint64_t size;     // bytes expected
    uint64_t asked;    // bytes asked for (get sent)
    uint64_t got;      // bytes received, written and hashed, in order
    uint64_t last_ms;  // last progress (stall detection)
    int fd;            // the .part file
    src_t src;         // who serves it
    dv_sha256_t hash;  // over got bytes
    uv_fs_t req;       // the fsync
    dv_blobs_t *owner; //
} xfer_t;

typedef struct want_s {
    struct want_s *next; //
    char *path;          // absolute, owned
    sha_t sha;           //
    uint64_t size;       //
    uint64_t mtime_us;   //
    unsigned tries;      // fetches that failed (picks the next peer)
    uint64_t retry_ms;   // not before
} want_t;

typedef struct {
    sha_t sha;      // a blob an applied entry named
    uint64_t index; // last entry that refers to it (0: a snapshot)
} note_t;

typedef struct {
    sha_t sha;     // a blob the leader waits for a majority to hold
    uint64_t size; // its bytes (told to followers that say hello later)
} offer_t;

struct dv_blobs {
    uv_loop_t *loop;                     // borrowed
    char dir[PATH_BYTES];                // raft_dir/blobs
    uint64_t self_id;                    // told in hello
    char about[3][DV_MAX_REPL_ADDR + 1]; // and these: client, worker, http
    dv_blobs_events_t ev;                //
    void *ctx;                           // the channel's ZeroMQ context
    void *router;                        // bound: peers come here
    void *dealer;                        // to the leader (NULL: none)
    dv_zwatch_t *rwatch, *dwatch;        //
    char endpoint[EP_BYTES];             // the router's, bound
    char following[EP_BYTES];            // the dealer's ("" none)
    peer_t peers[DV_BLOB_MAX_PEERS];     // hello'd (on the router)
    size_t n_peers;                      //
    xfer_t xfers[DV_BLOB_MAX_TRANSFERS]; //
    want_t *wants;                       // list
    size_t n_wants;                      //
    note_t *notes;                       // sha -> last index
    size_t n_notes, cap_notes;           //
    offer_t *offers;                     // the leader's, until offer_end
    size_t n_offers, cap_offers;         //
    uint64_t hello_ms;                   // last hello sent
    int open_handles;                    // zwatches, fsyncs
    bool closing;                        //
    void (*closed)(void *);              //
    void *closed_arg;                    //
};

static uint64_t
now_ms(const dv_blobs_t *self)
{
    return uv_now(self->loop);
}

static void
blob_path(const dv_blobs_t *self, const uint8_t *sha, char *out, size_t size)
{
    char hex[DV_SHA256_HEX];
    dv_sha256_hex(sha, hex);
    snprintf(out, size, "%s/%s", self->dir, hex);
}

static bool
src_eq(const src_t *a, const src_t *b)
{
    return a->rid_len == b->rid_len && memcmp(a->rid, b->rid, a->rid_len) == 0;
}

// ------------------------------------------------------------------ store

bool
dv_blobs_has(const dv_blobs_t *self, const uint8_t sha[DV_SHA256_BYTES])
{
    char path[PATH_BYTES + 80];
    blob_path(self, sha, path, sizeof path);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static unsigned
tmp_serial(void)
{
    static unsigned n;
    return __atomic_add_fetch(&n, 1, __ATOMIC_RELAXED);
}

int
dv_blobs_adopt(const dv_blobs_t *self,
               const char *path,
               const uint8_t sha[DV_SHA256_BYTES],
               dv_error_t *err)
{
    char blob[PATH_BYTES + 80], tmp[PATH_BYTES + 120];
    blob_path(self, sha, blob, sizeof blob);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d.%u", blob, (int)getpid(),
             tmp_serial());
    if (link(path, tmp) != 0) {
        return dv_file_error(err, path, errno);
    }
    if (rename(tmp, blob) != 0) {
        int e = errno;
        (void)unlink(tmp);
        return dv_file_error(err, blob, e);
    }
    (void)unlink(tmp); // left when it was the blob's link already
    return 0;
}

static void
set_mtime(const char *path, uint64_t mtime_us)
{
    if (mtime_us) {
        struct timeval tv[2] = {
            {(time_t)(mtime_us / 1000000), (suseconds_t)(mtime_us % 1000000)},
            {(time_t)(mtime_us / 1000000), (suseconds_t)(mtime_us % 1000000)}};
        (void)utimes(path, tv);
    }
}

int
dv_blobs_place(const dv_blobs_t *self,
               const uint8_t sha[DV_SHA256_BYTES],
               const char *path,
               uint64_t mtime_us,
               dv_error_t *err)
{
    char blob[PATH_BYTES + 80], tmp[PATH_BYTES + 40], parent[PATH_BYTES];
    blob_path(self, sha, blob, sizeof blob);
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d.%u", path, (int)getpid(),
                 tmp_serial()) >= (int)sizeof tmp ||
        snprintf(parent, sizeof parent, "%s", path) >= (int)sizeof parent) {
        return dv_errorf(err, DV_EINVAL, "path too long: %s", path);
    }
    char *slash = strrchr(parent, '/');
    if (slash) {
        *slash = '\0';
        int rc = dv_file_mkdirs(parent, 0755, err);
        if (rc) {
            return rc;
        }
    }
    if (link(blob, tmp) != 0) {
        return dv_file_error(err, blob, errno);
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        (void)unlink(tmp);
        return dv_file_error(err, path, e);
    }
    (void)unlink(tmp); // left when path was the blob's link already
    set_mtime(path, mtime_us);
    return 0;
}

int
dv_blobs_hash_file(const dv_blobs_t *self,
                   const char *path,
                   uint8_t sha[DV_SHA256_BYTES],
                   uint64_t *size,
                   dv_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return dv_file_error(err, path, errno);
    }
    uint8_t *buf = dv_malloc(DV_BLOB_CHUNK_BYTES);
    dv_sha256_t h;
    dv_sha256_init(&h);
    uint64_t n = 0;
    int rc = 0;
    for (;;) {
        ssize_t got = read(fd, buf, DV_BLOB_CHUNK_BYTES);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            rc = dv_file_error(err, path, errno);
        }
        if (got <= 0) {
            break;
        }
        dv_sha256_update(&h, buf, (size_t)got);
        n += (uint64_t)got;
    }
    free(buf);
    dv_sha256_final(&h, sha);
    *size = n;
    if (rc == 0 && self && !dv_blobs_has(self, sha)) {
        // The inode just hashed, not whatever path names now (a rename
        // may have replaced it meanwhile): linked through its descriptor.
        char fdpath[64];
        snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
        char blob[PATH_BYTES + 80], tmp[PATH_BYTES + 120];
        blob_path(self, sha, blob, sizeof blob);
        snprintf(tmp, sizeof tmp, "%s.tmp.%d.%u", blob, (int)getpid(),
                 tmp_serial());
        if (linkat(AT_FDCWD, fdpath, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) != 0) {
            rc = dv_file_error(err, path, errno);
        } else if (rename(tmp, blob) != 0) {
            rc = dv_file_error(err, blob, errno);
            (void)unlink(tmp);
        }
    }
    close(fd);
    return rc;
}

// ------------------------------------------------------------------ index

typedef struct {
    dev_t dev;     // the blob's file system
    ino_t ino;     // and inode: what a file linked to it shares
    uint64_t size; // its bytes
    sha_t sha;     // its name
} inode_t;

struct dv_blobs_index {
    inode_t *v; // sorted by (dev, ino), owned
    size_t n;   // entries in v
    size_t cap; // room in v
};

static int
inode_cmp(const void *a, const void *b)
{
    const inode_t *x = a, *y = b;
    if (x->dev != y->dev) {
        return x->dev < y->dev ? -1 : 1;
    }
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static bool unhex(const char *hex, uint8_t *out);

// Each blob in the store (a file named by 64 hex digits), with its path
// and stat, to visit (which may unlink it).
typedef void(blob_visit_fn)(void *arg,
                            const uint8_t sha[DV_SHA256_BYTES],
                            const char *path,
                            const struct stat *st);

static void
each_blob(const dv_blobs_t *self, blob_visit_fn *visit, void *arg)
{
    DIR *d = opendir(self->dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        sha_t sha;
        char path[PATH_BYTES + 300];
        struct stat st;
        if (strlen(e->d_name) == 2 * DV_SHA256_BYTES && unhex(e->d_name, sha) &&
            snprintf(path, sizeof path, "%s/%s", self->dir, e->d_name) <
                (int)sizeof path &&
            stat(path, &st) == 0) {
            visit(arg, sha, path, &st);
        }
    }
    if (d) {
        closedir(d);
    }
}

static void
index_add(void *arg,
          const uint8_t sha[DV_SHA256_BYTES],
          const char *path,
          const struct stat *st)
{
    (void)path;
    dv_blobs_index_t *ix = arg;
    if (ix->n == ix->cap) {
        ix->cap = ix->cap ? 2 * ix->cap : 16;
        ix->v = dv_realloc(ix->v, ix->cap * sizeof *ix->v);
    }
    inode_t *v = &ix->v[ix->n++];
    v->dev = st->st_dev;
    v->ino = st->st_ino;
    v->size = (uint64_t)st->st_size;
    memcpy(v->sha, sha, DV_SHA256_BYTES);
}

dv_blobs_index_t *
dv_blobs_index_new(const dv_blobs_t *self)
{
    dv_blobs_index_t *ix = dv_calloc(1, sizeof *ix);
    each_blob(self, index_add, ix);
    if (ix->n) {
        qsort(ix->v, ix->n, sizeof *ix->v, inode_cmp);
    }
    return ix;
}

bool
dv_blobs_index_find(const dv_blobs_index_t *ix,
                    const struct stat *st,
                    uint8_t sha[DV_SHA256_BYTES],
                    uint64_t *size)
{
    inode_t key = {.dev = st->st_dev, .ino = st->st_ino};
    const inode_t *v =
        ix->n ? bsearch(&key, ix->v, ix->n, sizeof *ix->v, inode_cmp) : NULL;
    if (!v || v->size != (uint64_t)st->st_size) {
        return false;
    }
    memcpy(sha, v->sha, DV_SHA256_BYTES);
    *size = v->size;
    return true;
}

void
dv_blobs_index_destroy(dv_blobs_index_t **ix_p)
{
    if (ix_p && *ix_p) {
        free((*ix_p)->v);
        free(*ix_p);
        *ix_p = NULL;
    }
}

// ------------------------------------------------------------------ notes

static note_t *
note_find(dv_blobs_t *self, const uint8_t *sha)
{
    for (size_t i = 0; i < self->n_notes; i++) {
        if (memcmp(self->notes[i].sha, sha, DV_SHA256_BYTES) == 0) {
            return &self->notes[i];
        }
    }
    return NULL;
}

void
dv_blobs_note(dv_blobs_t *self,
              const uint8_t sha[DV_SHA256_BYTES],
              uint64_t index)
{
    note_t *n = note_find(self, sha);
    if (!n) {
        if (self->n_notes == self->cap_notes) {
            self->cap_notes = self->cap_notes ? 2 * self->cap_notes : 16;
            self->notes =
                dv_realloc(self->notes, self->cap_notes * sizeof *self->notes);
        }
        n = &self->notes[self->n_notes++];
        memcpy(n->sha, sha, DV_SHA256_BYTES);
        n->index = 0;
    }
    n->index = index > n->index ? index : n->index;
}

static bool
offered(const dv_blobs_t *self, const uint8_t *sha)
{
    for (size_t i = 0; i < self->n_offers; i++) {
        if (memcmp(self->offers[i].sha, sha, DV_SHA256_BYTES) == 0) {
            return true;
        }
    }
    return false;
}

static bool
unhex(const char *hex, uint8_t *out)
{
    for (size_t i = 0; i < DV_SHA256_BYTES; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = hex[2 * i + (size_t)k];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                           : -1;
            if (d < 0) {
                return false;
            }
            v = v * 16 + (unsigned)d;
        }
        out[i] = (uint8_t)v;
    }
    return hex[2 * DV_SHA256_BYTES] == '\0';
}

typedef struct {
    dv_blobs_t *self;
    uint64_t first_kept;
    size_t removed;
} gc_t;

static void
gc_one(void *arg,
       const uint8_t sha[DV_SHA256_BYTES],
       const char *path,
       const struct stat *st)
{
    gc_t *g = arg;
    const note_t *n = note_find(g->self, sha);
    if (offered(g->self, sha) || (n && n->index >= g->first_kept) ||
        st->st_nlink > 1) {
        return; // offered, a file links it, or the log may place it again
    }
    if (unlink(path) == 0) {
        g->removed++;
    }
}

size_t
dv_blobs_gc(dv_blobs_t *self, uint64_t first_kept)
{
    gc_t g = {self, first_kept, 0};
    each_blob(self, gc_one, &g);
    size_t removed = g.removed;
    size_t k = 0; // notes of entries no longer in the log: not needed
    for (size_t i = 0; i < self->n_notes; i++) {
        if (self->notes[i].index >= first_kept) {
            self->notes[k++] = self->notes[i];
        }
    }
    self->n_notes = k;
    return removed;
}

// ------------------------------------------------------------------ wants

void
dv_blobs_unwant(dv_blobs_t *self, const char *path)
{
    for (want_t **w = &self->wants; *w;) {
        if (!path || strcmp((*w)->path, path) == 0) {
            want_t *gone = *w;
            *w = gone->next;
            free(gone->path);
            free(gone);
            self->n_wants--;
        } else {
            w = &(*w)->next;
        }
    }
}

void
dv_blobs_want(dv_blobs_t *self,
              const char *path,
              const uint8_t sha[DV_SHA256_BYTES],
              uint64_t size,
              uint64_t mtime_us)
{
    dv_blobs_unwant(self, path);
    want_t *w = dv_calloc(1, sizeof *w);
    w->path = dv_strdup(path);
    memcpy(w->sha, sha, DV_SHA256_BYTES);
    w->size = size;
    w->mtime_us = mtime_us;
    w->next = self->wants;
    self->wants = w;
    self->n_wants++;
}

size_t
dv_blobs_n_wants(const dv_blobs_t *self)
{
    return self->n_wants;
}

// sha is here: every path that wants it gets it.
static void
place_wants(dv_blobs_t *self, const uint8_t *sha)
{
    for (want_t **w = &self->wants; *w;) {
        want_t *x = *w;
        if (memcmp(x->sha, sha, DV_SHA256_BYTES) != 0) {
            w = &x->next;
            continue;
        }
        dv_error_t err = {0};
        if (dv_blobs_place(self, sha, x->path, x->mtime_us, &err) != 0) {
            dv_log(DV_LOG_WARN, "blobs", "cannot place %s: %s", x->path,
                   err.text);
        }
        *w = x->next;
        free(x->path);
        free(x);
        self->n_wants--;
    }
}

// --------------------------------------------------------------- messages

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} out_t;

static void
out_begin(out_t *o, const char *type, size_t n_fields)
{
    msgpack_sbuffer_init(&o->sb);
    msgpack_packer_init(&o->pk, &o->sb, msgpack_sbuffer_write);
    msgpack_pack_map(&o->pk, n_fields + 1);
    dv_msgpack_pack_str(&o->pk, "t");
    dv_msgpack_pack_str(&o->pk, type);
}

static void
out_sha(out_t *o, const uint8_t *sha)
{
    dv_msgpack_pack_str(&o->pk, "sha");
    msgpack_pack_bin(&o->pk, DV_SHA256_BYTES);
    msgpack_pack_bin_body(&o->pk, sha, DV_SHA256_BYTES);
}

static void
out_uint(out_t *o, const char *key, uint64_t v)
{
    dv_msgpack_pack_str(&o->pk, key);
    msgpack_pack_uint64(&o->pk, v);
}

// Send and release o. Never blocks: past the queue's bound the message is
// dropped (the other end stalls and asks again).
static void
out_send(dv_blobs_t *self, const src_t *to, out_t *o)
{
    if (to->rid_len) {
        if (zmq_send(self->router, to->rid, to->rid_len,
                     ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) {
            (void)zmq_send(self->router, o->sb.data, o->sb.size, ZMQ_DONTWAIT);
        }
        dv_zwatch_used(self->router); // sole watchers: see dv_zwatch.h
    } else if (self->dealer) {
        (void)zmq_send(self->dealer, o->sb.data, o->sb.size, ZMQ_DONTWAIT);
        dv_zwatch_used(self->dealer);
    }
    msgpack_sbuffer_destroy(&o->sb);
}

static void
send_sha(dv_blobs_t *self,
         const src_t *to,
         const char *type,
         const uint8_t *sha)
{
    out_t o;
    out_begin(&o, type, 1);
    out_sha(&o, sha);
    out_send(self, to, &o);
}

static const src_t dealer_src = {.rid_len = 0};

static void handle_done(dv_blobs_t *self);

// A message's sha field: a bin of 32 bytes.
static bool
get_sha(const msgpack_object *m, uint8_t *sha)
{
    const msgpack_object *o = dv_msgpack_get(m, "sha");
    if (!o || o->type != MSGPACK_OBJECT_BIN ||
        o->via.bin.size != DV_SHA256_BYTES) {
        return false;
    }
    memcpy(sha, o->via.bin.ptr, DV_SHA256_BYTES);
    return true;
}

// -------------------------------------------------------------- transfers

static xfer_t *
xfer_find(dv_blobs_t *self, const uint8_t *sha)
{
    for (size_t i = 0; i < DV_BLOB_MAX_TRANSFERS; i++) {
        xfer_t *x = &self->xfers[i];
        if (x->used && memcmp(x->sha, sha, DV_SHA256_BYTES) == 0) {
            return x;
        }
    }
    return NULL;
}

static void
part_path(const dv_blobs_t *self, const uint8_t *sha, char *out, size_t size)
{
    char hex[DV_SHA256_HEX];
    dv_sha256_hex(sha, hex);
    snprintf(out, size, "%s/.part.%s", self->dir, hex);
}

// The wants for sha try again (the next peer) a little later.
static void
defer_wants(dv_blobs_t *self, const uint8_t *sha)
{
    for (want_t *w = self->wants; w; w = w->next) {
        if (memcmp(w->sha, sha, DV_SHA256_BYTES) == 0) {
            w->tries++;
            w->retry_ms = now_ms(self) + DV_BLOB_RETRY_MS;
        }
    }
}

// Drop x; its wants try again later.
static void
xfer_abort(dv_blobs_t *self, xfer_t *x, const char *why)
{
    char path[PATH_BYTES + 80], hex[DV_SHA256_HEX];
    part_path(self, x->sha, path, sizeof path);
    dv_sha256_hex(x->sha, hex);
    dv_log(DV_LOG_INFO, "blobs",
           "transfer of %.12s dropped at %" PRIu64 "/%" PRIu64 " bytes: %s",
           hex, x->got, x->size, why);
    close(x->fd);
    (void)unlink(path);
    x->used = false;
    defer_wants(self, x->sha);
}

// Ask for the next chunks, up to the window.
static void
xfer_pump(dv_blobs_t *self, xfer_t *x)
{
    while (x->asked < x->size &&
           x->asked - x->got < DV_BLOB_WINDOW * DV_BLOB_CHUNK_BYTES) {
        uint64_t n = x->size - x->asked < DV_BLOB_CHUNK_BYTES
                         ? x->size - x->asked
                         : DV_BLOB_CHUNK_BYTES;
        out_t o;
        out_begin(&o, "get", 3);
        out_sha(&o, x->sha);
        out_uint(&o, "off", x->asked);
        out_uint(&o, "len", n);
        out_send(self, &x->src, &o);
        x->asked += n;
    }
}

static void
xfer_start(dv_blobs_t *self,
           const uint8_t *sha,
           uint64_t size,
           const src_t *src)
{
    if (size == 0 || size > DV_MAX_MODEL_BYTES || xfer_find(self, sha) ||
        self->closing) {
        return;
    }
    xfer_t *x = NULL;
    for (size_t i = 0; !x && i < DV_BLOB_MAX_TRANSFERS; i++) {
        x = self->xfers[i].used ? NULL : &self->xfers[i];
    }
    if (!x) {
        return; // a later tick (or offer) starts it
    }
    char path[PATH_BYTES + 80];
    part_path(self, sha, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        dv_log(DV_LOG_WARN, "blobs", "%s: %s", path, strerror(errno));
        defer_wants(self, sha); // not every tick
        return;
    }
    memset(x, 0, sizeof *x);
    x->used = true;
    x->owner = self;
    x->fd = fd;
    memcpy(x->sha, sha, DV_SHA256_BYTES);
    x->size = size;
    x->src = *src;
    x->last_ms = now_ms(self);
    dv_sha256_init(&x->hash);
    xfer_pump(self, x);
}

static void
on_synced(uv_fs_t *req)
{
    xfer_t *x = req->data;
    dv_blobs_t *self = x->owner;
    int status = (int)req->result;
    sha_t sha;
    memcpy(sha, x->sha, DV_SHA256_BYTES); // the slot is free from here
    uv_fs_req_cleanup(req);
    close(x->fd);
    x->used = false;
    x->syncing = false;
    char part[PATH_BYTES + 80], blob[PATH_BYTES + 80];
    part_path(self, sha, part, sizeof part);
    blob_path(self, sha, blob, sizeof blob);
    bool ok = status == 0 && !self->closing && rename(part, blob) == 0;
    if (!ok) {
        (void)unlink(part);
    }
    if (ok) {
        if (self->dealer) {
            send_sha(self, &dealer_src, "have", sha);
        }
        place_wants(self, sha);
        self->ev.on_blob(self->ev.arg, sha);
    }
    handle_done(self);
}

static void
xfer_done(dv_blobs_t *self, xfer_t *x)
{
    sha_t got;
    dv_sha256_final(&x->hash, got);
    if (memcmp(got, x->sha, DV_SHA256_BYTES) != 0) {
        xfer_abort(self, x, "its SHA-256 does not match");
        return;
    }
    x->syncing = true;
    x->req.data = x;
    if (uv_fs_fsync(self->loop, &x->req, x->fd, on_synced) != 0) {
        x->syncing = false;
        xfer_abort(self, x, "fsync refused");
        return;
    }
    self->open_handles++;
}

// ------------------------------------------------------------- handlers

typedef void(handler_fn)(dv_blobs_t *self,
                         const src_t *from,
                         const msgpack_object *m);

// The endpoints a hello names besides the id, in dv_blobs.about's order.
static const char *const s_about_keys[3] = {"client", "worker", "http"};

// An endpoint a hello names: a string of printable bytes, at most
// DV_MAX_REPL_ADDR of them, into out. False otherwise.
static bool
about_str(const msgpack_object *o, char out[DV_MAX_REPL_ADDR + 1])
{
    if (!o || o->type != MSGPACK_OBJECT_STR ||
        o->via.str.size > DV_MAX_REPL_ADDR) {
        return false;
    }
    for (uint32_t i = 0; i < o->via.str.size; i++) {
        if ((unsigned char)o->via.str.ptr[i] < 33 ||
            (unsigned char)o->via.str.ptr[i] > 126) {
            return false;
        }
    }
    memcpy(out, dv_msgpack_str_ptr(o), o->via.str.size);
    out[o->via.str.size] = '\0';
    return true;
}

static void
on_hello(dv_blobs_t *self, const src_t *from, const msgpack_object *m)
{
    uint64_t id = 0;
    if (!dv_msgpack_uint(dv_msgpack_get(m, "id"), &id) || id == 0 ||
        id > DV_MAX_REPL_ID) {
        return;
    }
    peer_t *p = NULL, *oldest = &self->peers[0];
    for (size_t i = 0; i < self->n_peers && !p; i++) {
        p = src_eq(&self->peers[i].src, from) ? &self->peers[i] : NULL;
        oldest =
            self->peers[i].seen_ms < oldest->seen_ms ? &self->peers[i] : oldest;
    }
    if (!p) {
        p = self->n_peers < DV_BLOB_MAX_PEERS ? &self->peers[self->n_peers++]
                                              : oldest;
        p->src = *from;
        for (size_t i = 0; i < self->n_offers; i++) { // what it missed
            out_t o;
            out_begin(&o, "offer", 2);
            out_sha(&o, self->offers[i].sha);
            out_uint(&o, "size", self->offers[i].size);
            out_send(self, from, &o);
        }
    }
    p->id = id;
    p->seen_ms = now_ms(self);
    char about[3][DV_MAX_REPL_ADDR + 1];
    for (int k = 0; k < 3; k++) {
        if (!about_str(dv_msgpack_get(m, s_about_keys[k]), about[k])) {
            return; // an older member's hello, or a hostile one: no endpoints
        }
    }
    if (self->ev.on_hello) {
        self->ev.on_hello(self->ev.arg, id, about[0], about[1], about[2]);
    }
}

void
dv_blobs_set_about(dv_blobs_t *self,
                   const char *client,
                   const char *worker,
                   const char *http)
{
    const char *v[3] = {client, worker, http};
    for (int k = 0; k < 3; k++) {
        snprintf(self->about[k], sizeof self->about[k], "%s", v[k] ? v[k] : "");
    }
}

static void
on_offer(dv_blobs_t *self, const src_t *from, const msgpack_object *m)
{
    sha_t sha;
    uint64_t size = 0;
    if (!get_sha(m, sha) ||
        !dv_msgpack_uint(dv_msgpack_get(m, "size"), &size)) {
        return;
    }
    if (dv_blobs_has(self, sha)) {
        send_sha(self, from, "have", sha);
    } else {
        xfer_start(self, sha, size, from);
    }
}

static void
on_get(dv_blobs_t *self, const src_t *from, const msgpack_object *m)
{
    sha_t sha;
    uint64_t off = 0, len = 0;
    if (!get_sha(m, sha) || !dv_msgpack_uint(dv_msgpack_get(m, "off"), &off) ||
        !dv_msgpack_uint(dv_msgpack_get(m, "len"), &len)) {
        return;
    }
    len = len < DV_BLOB_CHUNK_BYTES ? len : DV_BLOB_CHUNK_BYTES;
    char path[PATH_BYTES + 80];
    blob_path(self, sha, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || off >= (uint64_t)st.st_size ||
        len == 0) {
        if (fd >= 0) {
            close(fd);
        }
        send_sha(self, from, "none", sha);
        return;
    }
    uint64_t n =
        (uint64_t)st.st_size - off < len ? (uint64_t)st.st_size - off : len;
    uint8_t *buf = dv_malloc((size_t)n);
    ssize_t got = pread(fd, buf, (size_t)n, (off_t)off);
    close(fd);
    if (got != (ssize_t)n) {
        free(buf);
        send_sha(self, from, "none", sha);
        return;
    }
    out_t o;
    out_begin(&o, "chunk", 3);
    out_sha(&o, sha);
    out_uint(&o, "off", off);
    dv_msgpack_pack_str(&o.pk, "data");
    msgpack_pack_bin(&o.pk, (size_t)n);
    msgpack_pack_bin_body(&o.pk, buf, (size_t)n);
    free(buf);
    out_send(self, from, &o);
}

static void
on_chunk(dv_blobs_t *self, const src_t *from, const msgpack_object *m)
{
    sha_t sha;
    uint64_t off = 0;
    const msgpack_object *d = dv_msgpack_get(m, "data");
    if (!get_sha(m, sha) || !dv_msgpack_uint(dv_msgpack_get(m, "off"), &off) ||
        !d || d->type != MSGPACK_OBJECT_BIN) {
        return;
    }
    xfer_t *x = xfer_find(self, sha);
    size_t n = d->via.bin.size;
    if (!x || x->syncing || !src_eq(&x->src, from)) {
        return; // not asked for (of this peer)
    }
    if (off != x->got || n == 0 || n > DV_BLOB_CHUNK_BYTES ||
        n > x->size - x->got || x->got + n > x->asked) {
        xfer_abort(self, x, "a chunk that was not asked for");
        return;
    }
    for (size_t done = 0; done < n;) {
        ssize_t w =
            pwrite(x->fd, d->via.bin.ptr + done, n - done, (off_t)(off + done));
        if (w < 0 && errno != EINTR) {
            xfer_abort(self, x, strerror(errno));
            return;
        }
        done += w > 0 ? (size_t)w : 0;
    }
    dv_sha256_update(&x->hash, d->via.bin.ptr, n);
    x->got += n;
    x->last_ms = now_ms(self);
    if (x->got == x->size) {
        xfer_done(self, x);
    } else {
        xfer_pump(self, x);
    }
}

static void
on_none(dv_blobs_t *self, const src_t *from, const msgpack_object *m)
{
    sha_t sha;
    xfer_t *x = get_sha(m, sha) ? xfer_find(self, sha) : NULL;
    if (x && !x->syncing && src_eq(&x->src, from)) {
        xfer_abort(self, x, "the peer does not hold it");
    }
}

static void
on_have(dv_blobs_t *self, const src_t *from, const msgpack_object *m)
{
    sha_t sha;
    if (!get_sha(m, sha)) {
        return;
    }
    for (size_t i = 0; i < self->n_peers; i++) {
        if (src_eq(&self->peers[i].src, from)) {
            self->ev.on_have(self->ev.arg, self->peers[i].id, sha);
        }
    }
}

// The channel's messages: which socket may carry each (R: the router, from
// followers and strangers; D: the dealer, from the leader).
#define ON_ROUTER 1
#define ON_DEALER 2
static const struct {
    const char *type;
    handler_fn *handler;
    int sockets;
} handlers[] = {
    {"hello", on_hello, ON_ROUTER},             // F->L: {id}
    {"offer", on_offer, ON_DEALER},             // L->F: {sha,size}
    {"get", on_get, ON_ROUTER | ON_DEALER},     // {sha,off,len}
    {"chunk", on_chunk, ON_ROUTER | ON_DEALER}, // {sha,off,data}
    {"none", on_none, ON_ROUTER | ON_DEALER},   // {sha}
    {"have", on_have, ON_ROUTER},               // F->L: {sha}
};

static void
dispatch(dv_blobs_t *self, const src_t *from, const uint8_t *p, size_t len)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    dv_error_t err = {0};
    const msgpack_object *t = NULL;
    if (dv_msgpack_unpack(&u, p, len, "files message", &err) == 0) {
        t = dv_msgpack_get(&u.data, "t");
    }
    for (size_t i = 0; t && t->type == MSGPACK_OBJECT_STR &&
                       i < sizeof handlers / sizeof handlers[0];
         i++) {
        if (t->via.str.size == strlen(handlers[i].type) &&
            memcmp(t->via.str.ptr, handlers[i].type, t->via.str.size) == 0 &&
            (handlers[i].sockets & (from->rid_len ? ON_ROUTER : ON_DEALER))) {
            handlers[i].handler(self, from, &u.data);
            break;
        }
    }
    msgpack_unpacked_destroy(&u);
}

// One message from a socket: [routing id] body (more frames: dropped).
static int
on_readable(dv_zwatch_t *zw, int events, void *arg)
{
    dv_blobs_t *self = arg;
    (void)events;
    void *s = dv_zwatch_socket(zw);
    bool router = s == self->router;
    src_t from = {.rid_len = 0};
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, s, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return 0;
    }
    if (router) {
        from.rid_len = zmq_msg_size(&msg);
        memcpy(from.rid, zmq_msg_data(&msg),
               from.rid_len < RID_BYTES ? from.rid_len : RID_BYTES);
        bool more = zmq_msg_more(&msg);
        zmq_msg_close(&msg);
        zmq_msg_init(&msg);
        if (!more || from.rid_len == 0 || from.rid_len >= RID_BYTES ||
            zmq_msg_recv(&msg, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return 1;
        }
    }
    bool extra = zmq_msg_more(&msg);
    if (!extra) {
        dispatch(self, &from, zmq_msg_data(&msg), zmq_msg_size(&msg));
    }
    while (extra) { // a message of more frames than ours: drained, dropped
        zmq_msg_close(&msg);
        zmq_msg_init(&msg);
        extra = zmq_msg_recv(&msg, s, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&msg);
    }
    zmq_msg_close(&msg);
    return 1;
}

// ---------------------------------------------------------------- channel

static void
bound_socket(void *s)
{
    int linger = 0, hwm = DV_BLOB_HWM;
    int64_t max = (int64_t)DV_BLOB_CHUNK_BYTES + 4096;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof max);
}

// Every watcher and fsync is done: the sockets, the context, the rest.
static void
finish(dv_blobs_t *self)
{
    zmq_close(self->router);
    zmq_ctx_term(self->ctx);
    while (self->wants) {
        want_t *w = self->wants;
        self->wants = w->next;
        free(w->path);
        free(w);
    }
    free(self->notes);
    free(self->offers);
    void (*closed)(void *) = self->closed;
    void *arg = self->closed_arg;
    free(self);
    if (closed) {
        closed(arg);
    }
}

static void
handle_done(dv_blobs_t *self)
{
    if (--self->open_handles == 0 && self->closing) {
        finish(self);
    }
}

static void
on_watch_closed(void *arg)
{
    handle_done(arg);
}

typedef struct {
    dv_blobs_t *self;
    void *socket;
} old_dealer_t;

// A dealer's watcher closed: its socket may close now.
static void
on_dealer_closed(void *arg)
{
    old_dealer_t *d = arg;
    zmq_close(d->socket);
    handle_done(d->self);
    free(d);
}

static void
dealer_close(dv_blobs_t *self)
{
    old_dealer_t *d = dv_calloc(1, sizeof *d);
    d->self = self;
    d->socket = self->dealer;
    dv_zwatch_close(self->dwatch, on_dealer_closed, d);
    self->dealer = NULL;
    self->dwatch = NULL;
}

void
dv_blobs_follow(dv_blobs_t *self, const char *endpoint)
{
    endpoint = endpoint ? endpoint : "";
    if (strcmp(endpoint, self->following) == 0 || self->closing) {
        return;
    }
    for (size_t i = 0; i < DV_BLOB_MAX_TRANSFERS; i++) {
        xfer_t *x = &self->xfers[i];
        if (x->used && !x->syncing && x->src.rid_len == 0) {
            xfer_abort(self, x, "the leader changed");
        }
    }
    if (self->dealer) {
        dealer_close(self);
    }
    snprintf(self->following, sizeof self->following, "%s", endpoint);
    if (!*endpoint) {
        return;
    }
    void *s = zmq_socket(self->ctx, ZMQ_DEALER);
    dv_error_t err = {0};
    if (!s) {
        return;
    }
    bound_socket(s);
    if (zmq_connect(s, endpoint) != 0 ||
        dv_zwatch_open(&self->dwatch, self->loop, s, DV_ZWATCH_READABLE,
                       on_readable, self, &err) != 0) {
        dv_log(DV_LOG_WARN, "blobs", "cannot follow %s: %s", endpoint,
               err.code ? err.text : zmq_strerror(zmq_errno()));
        zmq_close(s);
        self->following[0] = '\0';
        return;
    }
    dv_zwatch_set_sole(self->dwatch); // out_send reports its sends
    self->dealer = s;
    self->open_handles++;
    self->hello_ms = 0; // at the next tick
}

void
dv_blobs_offer(dv_blobs_t *self,
               const uint8_t sha[DV_SHA256_BYTES],
               uint64_t size)
{
    if (!offered(self, sha)) {
        if (self->n_offers == self->cap_offers) {
            self->cap_offers = self->cap_offers ? 2 * self->cap_offers : 8;
            self->offers = dv_realloc(self->offers,
                                      self->cap_offers * sizeof *self->offers);
        }
        memcpy(self->offers[self->n_offers].sha, sha, DV_SHA256_BYTES);
        self->offers[self->n_offers++].size = size;
    }
    for (size_t i = 0; i < self->n_peers; i++) {
        out_t o;
        out_begin(&o, "offer", 2);
        out_sha(&o, sha);
        out_uint(&o, "size", size);
        out_send(self, &self->peers[i].src, &o);
    }
}

void
dv_blobs_offer_end(dv_blobs_t *self, const uint8_t sha[DV_SHA256_BYTES])
{
    for (size_t i = 0; i < self->n_offers; i++) {
        if (memcmp(self->offers[i].sha, sha, DV_SHA256_BYTES) == 0) {
            self->offers[i] = self->offers[--self->n_offers];
            return;
        }
    }
}

void
dv_blobs_tick(dv_blobs_t *self)
{
    uint64_t now = now_ms(self);
    if (self->closing) {
        return;
    }
    if (self->dealer && now - self->hello_ms >= DV_BLOB_RETRY_MS) {
        self->hello_ms = now;
        out_t o;
        out_begin(&o, "hello", 4);
        out_uint(&o, "id", self->self_id);
        for (int k = 0; k < 3; k++) {
            dv_msgpack_pack_str(&o.pk, s_about_keys[k]);
            dv_msgpack_pack_str(&o.pk, self->about[k]);
        }
        out_send(self, &dealer_src, &o);
    }
    for (size_t i = 0; i < DV_BLOB_MAX_TRANSFERS; i++) {
        xfer_t *x = &self->xfers[i];
        if (x->used && !x->syncing && now - x->last_ms > DV_BLOB_STALL_MS) {
            xfer_abort(self, x, "stalled");
        }
    }
    for (want_t *w = self->wants; w; w = w->next) {
        // (a blob that arrives is placed at once: on_synced)
        if (xfer_find(self, w->sha) || now < w->retry_ms) {
            continue;
        }
        if (self->dealer) {
            xfer_start(self, w->sha, w->size, &dealer_src);
        } else if (self->n_peers) { // leading: ask the followers in turn
            xfer_start(self, w->sha, w->size,
                       &self->peers[w->tries % self->n_peers].src);
        }
    }
}

// --------------------------------------------------------------- lifecycle

// Drop what a crash left: transfers' .part files, adoptions' temporaries.
static void
drop_partials(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' ? strncmp(e->d_name, ".part.", 6) == 0
                                : strstr(e->d_name, ".tmp.") != NULL) {
            char path[PATH_BYTES + 300];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            (void)unlink(path);
        }
    }
    if (d) {
        closedir(d);
    }
}

int
dv_blobs_open(dv_blobs_t **out,
              uv_loop_t *loop,
              const char *raft_dir,
              const char *host,
              unsigned port,
              uint64_t self_id,
              const dv_blobs_events_t *ev,
              dv_error_t *err)
{
    dv_blobs_t *self = dv_calloc(1, sizeof *self);
    self->loop = loop;
    self->self_id = self_id;
    self->ev = *ev;
    if (snprintf(self->dir, sizeof self->dir, "%s/blobs", raft_dir) >=
        (int)sizeof self->dir - 80) {
        free(self);
        return dv_errorf(err, DV_EINVAL, "data folder path too long");
    }
    int rc = dv_file_mkdirs(self->dir, 0700, err);
    if (rc) {
        free(self);
        return rc;
    }
    drop_partials(self->dir);
    self->ctx = zmq_ctx_new();
    self->router = self->ctx ? zmq_socket(self->ctx, ZMQ_ROUTER) : NULL;
    char ep[EP_BYTES];
    if (port) {
        snprintf(ep, sizeof ep, "tcp://%s:%u", host, port);
    } else {
        snprintf(ep, sizeof ep, "tcp://%s:*", host);
    }
    size_t ep_len = sizeof self->endpoint;
    if (self->router) {
        bound_socket(self->router);
    }
    if (!self->router || zmq_bind(self->router, ep) != 0 ||
        zmq_getsockopt(self->router, ZMQ_LAST_ENDPOINT, self->endpoint,
                       &ep_len) != 0 ||
        dv_zwatch_open(&self->rwatch, loop, self->router, DV_ZWATCH_READABLE,
                       on_readable, self, err) != 0) {
        rc = dv_errorf(err, DV_EIO, "files channel: cannot bind %s (%s)", ep,
                       zmq_strerror(zmq_errno()));
        if (self->router) {
            zmq_close(self->router);
        }
        if (self->ctx) {
            zmq_ctx_term(self->ctx);
        }
        free(self);
        return rc;
    }
    self->open_handles = 1;
    dv_zwatch_set_sole(self->rwatch); // out_send reports its sends
    dv_log(DV_LOG_INFO, "blobs", "files channel on %s", self->endpoint);
    *out = self;
    return 0;
}

const char *
dv_blobs_endpoint(const dv_blobs_t *self)
{
    return self->endpoint;
}

void
dv_blobs_close(dv_blobs_t *self, void (*closed)(void *), void *arg)
{
    self->closing = true;
    self->closed = closed;
    self->closed_arg = arg;
    for (size_t i = 0; i < DV_BLOB_MAX_TRANSFERS; i++) {
        xfer_t *x = &self->xfers[i];
        if (x->used && !x->syncing) {
            xfer_abort(self, x, "closing");
        }
    }
    if (self->dealer) {
        dealer_close(self);
    }
    dv_zwatch_close(self->rwatch, on_watch_closed, self);
}
