// dv_repl_int — dv_repl's own types, shared by its two files (not
// installed; included only by dv_repl.c and dv_repl_status.c).
//
// dv_repl.c: the FSM, the entries, proposing, roles and the lifecycle;
// dv_repl_status.c: what the member tells (cluster, /metrics) and the
// membership changes. Same threads as dv_repl.h.
#ifndef DV_REPL_INT_H
#define DV_REPL_INT_H

#include <pthread.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "dv_blobs.h"
#include "dv_limits.h"
#include "dv_repl.h"
#include "dv_sha256.h"

#define DV_REPL_PATH_BYTES 4096

typedef struct file_op_s {
    struct file_op_s *next; //
    uint8_t op;             // DV_FILE_*
    uint64_t mtime_us;      //
    char *path;             // relative, owned
    uint8_t *data;          // owned (puts)
    size_t len;             //
} file_op_t;

// An entry waiting its turn behind a large file's blob: a blob still
// short of a majority (ref set), else a batch entry ready to propose.
typedef struct pend_s {
    struct pend_s *next;                 //
    bool ref;                            // a blob to wait for
    uint8_t sha[DV_SHA256_BYTES];        // (ref)
    uint64_t size;                       //
    uint64_t deadline_ms;                // no majority by then: failed
    uint64_t offered_ms;                 // last offer
    uint64_t haves[DV_MAX_REPL_MEMBERS]; // members that said have
    size_t n_haves;                      //
    char path[64];                       // for the error (shortened)
    uint8_t *buf;                        // a batch entry (raft_malloc)
    size_t len;                          //
    dv_repl_done_fn *done;               // its callback
    void *arg;                           //
} pend_t;

typedef struct {
    uint64_t id;
    char raft[DV_MAX_REPL_ADDR + 1];
    char client[DV_MAX_REPL_ADDR + 1];
    char worker[DV_MAX_REPL_ADDR + 1];
    char http[DV_MAX_REPL_ADDR + 1];
    char files[DV_MAX_REPL_ADDR + 1]; // its files channel (dv_blobs)
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
    char dir[DV_REPL_PATH_BYTES];          // the data folder
    char raft_dir[DV_REPL_PATH_BYTES];     // DIR/raft
    uint64_t origin;                       // this process, in its entries
    member_t self_info;                    // what it tells when it leads
    member_t members[DV_MAX_REPL_MEMBERS]; // learnt from member entries
    size_t n_members;                      //
    file_op_t *files, **files_end;         // staged for the next entry
    size_t n_files;                        // (files_lock: the catalogs write
    pthread_mutex_t files_lock;            // files on the thread pool)
    struct pend_s *pend, **pend_end;       // entries waiting for a large
                                           // file's blob to go first
    dv_blobs_t *blobs;                     // blobs, files channel
    dv_blobs_index_t *snap_blobs;          // the walk's (on the pool)
    uint64_t snap_index;                   // of the snapshot being taken
    member_t snap_members[DV_MAX_REPL_MEMBERS]; // (its copy of members)
    size_t snap_n_members;                      //
    uint64_t snap_bytes;     // the last snapshot's size (taken or restored)
    uint64_t snap_taken;     // the one being taken (set on the pool)
    uint64_t log_bytes;      // applied since the last snapshot: when the
    uint64_t log_entries;    // next is due (DV_REPL_LOG_BYTES)
    uint64_t snapshots;      // taken since start
    uint64_t awaiting_until; // leading, fetching blobs
                             // before serving (0: not)
    bool promoting;          // barrier in flight
    bool serving;            // on_leader called
    bool closing;            //
    int handles;             // open: raft, poll timer,
                             // blobs
};

// The member entry of id (NULL: none learnt).
const member_t *dv_repl_member_find(const dv_repl_t *self, uint64_t id);

#endif
