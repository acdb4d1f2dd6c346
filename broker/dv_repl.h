// dv_repl — a broker group member: canonical/raft on the broker's loop,
// replicating the store's group commits and the data folder's model and data
// set files (docs/ARCHITECTURE.md, Broker groups).
//
// Every member applies the committed entries to its own store (LMDB, no
// fsync: the Raft log on a majority of disks is what is durable) and files.
// A file over DV_REPL_INLINE_BYTES is not in the log: its entry carries its
// SHA-256 (a ref) and the bytes travel on the files channel (dv_blobs.h);
// the leader proposes the ref once a majority holds them.
// Only the leader serves: once it is leader and has applied every entry
// before its term (a barrier) and holds every file its log names, on_leader
// tells the broker to recover its state from the store; a leader that loses
// its majority calls on_deposed (the broker starts over as a follower). The
// store and the files are rebuilt from the last snapshot and the log at
// every start, so what a member holds never disagrees with the log.
//
// Owns: the raft instance, its uv I/O and TCP transport, the blob store and
// files channel (dv_blobs), the file changes staged for the next entry, the
// members' endpoints (from the entries each new leader appends). Its code is
// in dv_repl.c and dv_repl_status.c (status, membership), sharing
// dv_repl_int.h.
//
// May call: dv_store.h, dv_datafiles.h, dv_blobs.h, dv_endpoint.h and
// common/. Loop thread only, except the snapshot walk, which runs on the
// loop's thread pool (its own store read transaction), and the file
// observer, which runs where the catalogs write (the pool too; the staged
// changes have their lock; both hash and link blobs there).
#ifndef DV_REPL_H
#define DV_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "dv_err.h"
#include "dv_limits.h"
#include "dv_proto.h"
#include "dv_store.h"

typedef struct {
    uint64_t id;           // this member's id (1..DV_MAX_REPL_ID)
    const char *address;   // its Raft HOST:PORT (bound; what peers dial)
    const char *peers;     // the initial group, "1=HOST:PORT,2=...", self
                           // included; NULL when join
    bool join;             // wait to be added (drover admin member add)
    bool private_net;      // address beyond loopback allowed: the operator
                           // says only the members reach it (Raft traffic
                           // is plain TCP; docs/SECURITY.md)
    unsigned election_ms;  // election timeout (0: 1000); heartbeats a tenth
    unsigned files_port;   // the files channel's port on the Raft host (0:
                           // one the OS picks; the leader announces it)
    const char *data_dir;  // DIR: the log and blobs in DIR/raft; DIR/store,
                           // DIR/models and DIR/datasets are rebuilt from it
    const char *client_ep; // this member's endpoints, told to the others
    const char *worker_ep; // when it leads (followers hint at them)
    const char *http;      // "" or NULL: none
} dv_repl_opts_t;

typedef struct {
    void (*on_leader)(void *arg);  // lead and serve: recover from the store
    void (*on_deposed)(void *arg); // stopped leading: stop serving at once
    void *arg;
} dv_repl_events_t;

typedef struct dv_repl dv_repl_t;

// Before the store opens: remove DIR/store, DIR/models and DIR/datasets
// (the log rebuilds them) and check the options. Returns 0 or DV_EINVAL /
// DV_EIO with the reason.
int dv_repl_prepare(const dv_repl_opts_t *opts, dv_error_t *err);

// Start the member on loop over store (borrowed; outlives it). Returns 0 and
// *out, or DV_EINVAL (bad options) / DV_EIO (the log cannot be opened, the
// address cannot be bound) with the reason.
int dv_repl_open(dv_repl_t **out,
                 uv_loop_t *loop,
                 dv_store_t *store,
                 const dv_repl_opts_t *opts,
                 const dv_repl_events_t *ev,
                 dv_error_t *err);

// Close: raft stops, its handles close on the loop (run it afterwards for
// them to finish); the object is freed once they have. NULL-safe.
void dv_repl_close(dv_repl_t **self_p);

// Serving: leader with everything before its term applied, on_leader called.
bool dv_repl_serving(const dv_repl_t *self);

// The leader's client and worker endpoints ("" when unknown, or when this
// member leads but does not serve yet).
const char *dv_repl_leader_client(const dv_repl_t *self);
const char *dv_repl_leader_worker(const dv_repl_t *self);

// Replicate batch (taken from the store; the caller still frees it) and the
// file changes staged since the last proposal as one entry. done(arg, 0, "")
// once a majority holds it and this member applied it; done(arg, DV_ENOTLEADER
// or DV_EIO, why) when it cannot be (leadership lost). Returns 0 (done comes
// later) or that error (done is not called).
typedef void(dv_repl_done_fn)(void *arg, int rc, const char *why);
int dv_repl_propose(dv_repl_t *self,
                    dv_store_batch_t *batch,
                    dv_repl_done_fn *done,
                    void *arg,
                    dv_error_t *err);

// File changes are staged (serving only): are there any?
bool dv_repl_files_staged(dv_repl_t *self);

// The `cluster` reply's fields (PROTOCOL.md, Broker groups) into w.
void dv_repl_describe(dv_repl_t *self, dv_msgw_t *w);

// Figures for /metrics: this member's view.
typedef struct {
    uint64_t id, leader; // this member; the leader (0: unknown)
    const char *role;    // leader, follower, candidate, unavailable
    uint64_t term, commit, applied, last;
    size_t n; // members in the configuration
    uint64_t ids[DV_MAX_REPL_MEMBERS];
    uint64_t lag[DV_MAX_REPL_MEMBERS]; // the leader's view (else 0)
    uint64_t snapshots;                // taken since start
    uint64_t snapshot_bytes; // the last one's size (taken or restored)
    uint64_t log_bytes;      // entries applied since it
} dv_repl_figures_t;
void dv_repl_figures(dv_repl_t *self, dv_repl_figures_t *f);

// Add a member (as a voter, once it caught up) or remove one. done as for
// dv_repl_propose. Returns 0 or DV_ENOTLEADER / DV_EINVAL with the reason.
int dv_repl_member_add(dv_repl_t *self,
                       uint64_t id,
                       const char *address,
                       dv_repl_done_fn *done,
                       void *arg,
                       dv_error_t *err);
int dv_repl_member_remove(dv_repl_t *self,
                          uint64_t id,
                          dv_repl_done_fn *done,
                          void *arg,
                          dv_error_t *err);

#endif
