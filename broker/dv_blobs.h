// dv_blobs — a broker group member's content-addressed file store and the
// files channel its members move large files on (docs/ARCHITECTURE.md,
// Broker groups: files).
//
// Store: DIR/raft/blobs/<sha256 hex>, one file per content. It survives
// restarts (DIR/raft does); a model or data set file placed from a blob is
// a hard link to it, so replacing or deleting that path leaves the blob
// (dv_file writes are tmp + rename: a new inode, never the blob's).
//
// Channel: a ZeroMQ ROUTER bound on the member's Raft host (an ephemeral
// port) and, while another member leads, a DEALER connected to the
// leader's. msgpack maps, all member to member (never the client
// protocol): hello {id, client, worker, http}, offer {sha,size}, get
// {sha,off,len}, chunk {sha,off,data}, none {sha}, have {sha}. Both ends answer
// get with chunk or none; a follower fetches from its leader, a leader from the
// followers that said hello. Every message is hostile input: types, sizes and
// offsets are checked, a chunk is taken only for a transfer that asked for
// it at that offset, and a blob is kept only once its SHA-256 matched.
//
// Wants: path -> sha wishes of entries applied while their blob was absent;
// a blob that arrives is linked into every path that still wants it.
//
// Owns: the store's folder, the channel's sockets and context, the
// transfers, the wants, the sha -> last log index notes (for the garbage
// collection). May call: common/ (dv_zwatch, dv_sha256, dv_msgpack,
// dv_file). Threads: the loop thread, except the functions marked "any
// thread" (file system only: the catalogs' observer and the snapshot walk
// call them on the pool).
#ifndef DV_BLOBS_H
#define DV_BLOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <uv.h>

#include "dv_err.h"
#include "dv_sha256.h"

typedef struct dv_blobs dv_blobs_t;

typedef struct {
    // A blob arrived and was verified (its wants are placed already).
    void (*on_blob)(void *arg, const uint8_t sha[DV_SHA256_BYTES]);
    // Leader: member says it holds sha (verified on its side).
    void (*on_have)(void *arg,
                    uint64_t member,
                    const uint8_t sha[DV_SHA256_BYTES]);
    // Leader: member said hello with its endpoints ("" when it gave none;
    // checked: printable, at most DV_MAX_REPL_ADDR bytes). May be NULL.
    void (*on_hello)(void *arg,
                     uint64_t member,
                     const char *client,
                     const char *worker,
                     const char *http);
    void *arg;
} dv_blobs_events_t;

// Open the store in raft_dir/blobs (dropping transfers a crash left) and
// bind the channel on tcp://host:port (host: the Raft address's; port 0:
// one the OS picks). Returns 0 and *out, or DV_EIO with the reason.
int dv_blobs_open(dv_blobs_t **out,
                  uv_loop_t *loop,
                  const char *raft_dir,
                  const char *host,
                  unsigned port,
                  uint64_t self_id,
                  const dv_blobs_events_t *ev,
                  dv_error_t *err);

// Close the channel; closed(arg) once its handles are and self is freed.
void dv_blobs_close(dv_blobs_t *self, void (*closed)(void *), void *arg);

// The channel's bound endpoint (tcp://HOST:PORT).
const char *dv_blobs_endpoint(const dv_blobs_t *self);

// ------------------------------------------------- store (any thread)

// Is the blob here?
bool dv_blobs_has(const dv_blobs_t *self, const uint8_t sha[DV_SHA256_BYTES]);

// Make the file at path (whose content hashes to sha) the blob: a hard
// link. Any thread. Returns 0 or DV_E*.
int dv_blobs_adopt(const dv_blobs_t *self,
                   const char *path,
                   const uint8_t sha[DV_SHA256_BYTES],
                   dv_error_t *err);

// Put the blob at path (parent folders made): a link under a temporary
// name renamed over path, then mtime_us (0: left). Any thread. Returns 0
// or DV_E* (DV_ENOENT: no such blob).
int dv_blobs_place(const dv_blobs_t *self,
                   const uint8_t sha[DV_SHA256_BYTES],
                   const char *path,
                   uint64_t mtime_us,
                   dv_error_t *err);

// SHA-256 and size of the file at path, read in bounded pieces; with self,
// the file becomes the blob unless it is there already (the inode hashed:
// linked through its descriptor, Linux's /proc/self/fd). Any thread.
// Returns 0 or DV_E*.
int dv_blobs_hash_file(const dv_blobs_t *self,
                       const char *path,
                       uint8_t sha[DV_SHA256_BYTES],
                       uint64_t *size,
                       dv_error_t *err);

// Which blob a file is a link to, by its inode (a blob never changes in
// place, so the same inode is the same bytes): the snapshot walk's way to
// name a large file without hashing it again. Built by one scan of the
// store; any thread.
typedef struct dv_blobs_index dv_blobs_index_t;
dv_blobs_index_t *dv_blobs_index_new(const dv_blobs_t *self);
// True and sha, size when st (of a file) is one of the blobs' inodes.
bool dv_blobs_index_find(const dv_blobs_index_t *ix,
                         const struct stat *st,
                         uint8_t sha[DV_SHA256_BYTES],
                         uint64_t *size);
void dv_blobs_index_destroy(dv_blobs_index_t **ix_p); // NULL-safe

// ------------------------------------------------- log (loop thread)

// Applied: the entry at index (0: a snapshot) refers to sha.
void dv_blobs_note(dv_blobs_t *self,
                   const uint8_t sha[DV_SHA256_BYTES],
                   uint64_t index);

// path (absolute) should hold sha, which is absent: fetch it and place it
// then (with mtime_us), unless a later dv_blobs_unwant(path) or want
// (path NULL: every want).
void dv_blobs_want(dv_blobs_t *self,
                   const char *path,
                   const uint8_t sha[DV_SHA256_BYTES],
                   uint64_t size,
                   uint64_t mtime_us);
void dv_blobs_unwant(dv_blobs_t *self, const char *path);

// Paths still waiting for their blob.
size_t dv_blobs_n_wants(const dv_blobs_t *self);

// Remove the blobs no file links (nlink 1) that no entry at or past
// first_kept can place again, except those offered. Returns how many.
size_t dv_blobs_gc(dv_blobs_t *self, uint64_t first_kept);

// ------------------------------------------------ channel (loop thread)

// What this member's hello tells its leader besides its id: its client,
// worker and HTTP endpoints (for the leader's `cluster` reply and `drover
// status`; NULL or "": none). Copied.
void dv_blobs_set_about(dv_blobs_t *self,
                        const char *client,
                        const char *worker,
                        const char *http);

// Follow the leader whose channel is at endpoint ("" or NULL: none, this
// member leads or knows no leader): fetches go there. Reconnects only when
// it changed.
void dv_blobs_follow(dv_blobs_t *self, const char *endpoint);

// Leader: tell every follower that said hello about sha (again: followers
// answer have, at once when they hold it). The blob stays (no garbage
// collection) until dv_blobs_offer_end.
void dv_blobs_offer(dv_blobs_t *self,
                    const uint8_t sha[DV_SHA256_BYTES],
                    uint64_t size);
void dv_blobs_offer_end(dv_blobs_t *self, const uint8_t sha[DV_SHA256_BYTES]);

// Drive transfers: start fetches for wants (from the leader, or from the
// followers when there is none), drop stalled ones, say hello again.
// Called every few tens of milliseconds.
void dv_blobs_tick(dv_blobs_t *self);

#endif
