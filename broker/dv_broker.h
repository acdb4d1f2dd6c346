// dv_broker — the broker: two ROUTER sockets (clients, workers) in one
// libuv loop, jobs scheduled by dv_sched, messages per docs/PROTOCOL.md.
//
// Carries `echo` and `infer` jobs: hello, submit, accepted, run, done,
// result, result_get and job_get (results are kept, bounded, with a TTL),
// the model registry (model_push/list/get/rm, fetch_model for workers, in
// the data dir), workers and status listings, ping/pong, register,
// heartbeats (with the models each worker holds, for affinity), draining
// workers (bye) and worker liveness (a silent worker is declared dead and
// its jobs requeued or failed). Jobs are in memory; durable storage comes
// with the durable-jobs issue.
//
// Threads: everything runs on the loop thread inside dv_broker_run.
#ifndef DV_BROKER_H
#define DV_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "dv_err.h"

typedef struct {
    const char *client_endpoint; // bind address for clients (ipc:// or tcp://)
    const char *worker_endpoint; // bind address for workers
    uint32_t heartbeat_ms;       // heartbeat interval (0: 1000)
    uint32_t liveness;           // silent intervals before a worker is dead
                                 // (0: 3)
    uint64_t result_ttl_ms;      // results kept for result_get (0: 1 hour;
                                 // also bounded to 100,000 / 256 MiB)
    const char *data_dir;        // jobs, results, models; NULL: in memory
    uint64_t max_queued;         // jobs waiting per queue (0: 1,000,000)
    uint64_t max_queued_bytes;   // payload bytes of a queue's unfinished
                                 // jobs (0: 1 GiB)
    uint64_t aging_ms;           // waiting this long = one priority level
                                 // (0: 10 s)
    uint32_t quarantine_after;   // runs lost with their worker before a
                                 // job is quarantined (0: 3)
    uint64_t max_dead;           // dead letters held, the oldest dropped
                                 // past it (0, or over: DV_MAX_DEAD_JOBS)
    uint64_t max_dead_bytes;     // their payload bytes (0, or over:
                                 // DV_MAX_DEAD_BYTES)
    uint64_t idempotency_window_ms; // keys remembered this long (0: 24 h)
    size_t memory_window;           // durable jobs waiting per queue held in
                                    // memory; the rest wait in the store only
                                    // (0: 20,000)
    const char *secret_key;         // the broker's CURVE key file (.key);
                                    // NULL: plain mode (no encryption, no
                                    // authentication: local development)
    const char *authorized_keys;    // folder of allowed public keys (*.pub,
                                    // with roles); required with secret_key
    size_t max_connections;         // authenticated client connections at
                                    // once (0: DV_MAX_CONNECTIONS)
    uint64_t max_inflight;          // unfinished jobs per key (0: 100,000)
    bool require_signed;            // model_push only with a valid signature
                                    // by an admin key (docs/SECURITY.md)
    bool plain;                     // no CURVE on an address other machines
                                    // reach (else refused: plain mode is the
                                    // default only on ipc:// and loopback)
    uint64_t fault_kill_result;     // fault seam for tests (0: off): SIGKILL
                                    // itself when about to commit the batch
                                    // holding the Nth durable result since
                                    // start (finished, not yet stored or
                                    // sent); main.c reads it from
                                    // DROVER_BROKER_FAULT
    uint64_t fault_eio_submit;      // fault seam for tests (0: off): the
                                    // commit of the batch holding the Nth
                                    // durable submit since start fails with
                                    // DV_EIO instead of writing (the store
                                    // is left as it was); DROVER_BROKER_FAULT
    size_t max_worker_connections;  // authenticated worker connections at
                                    // once (0: DV_MAX_WORKER_CONNECTIONS)
    size_t max_key_connections;     // per key per socket (0:
                                    // DV_MAX_KEY_CONNECTIONS)
    uint32_t handshake_ms;          // handshake time limit (0:
                                    // DV_HANDSHAKE_MS)
    uint64_t max_stored_bytes;      // model files, and data set files,
                                    // kept (0: DV_MAX_STORED_BYTES_DISK or
                                    // _MEMORY)
    uint64_t min_free_disk;         // bytes a new model or data set file
                                    // leaves free on the data dir's file
                                    // system (0: DV_MIN_FREE_DISK_BYTES)
    uint64_t submit_free_disk;      // below this many bytes free there,
                                    // durable submits are refused (0:
                                    // DV_SUBMIT_FREE_DISK_BYTES; dv_disk.h)
    const char *http;               // HTTP endpoint for /metrics and the
                                    // status page, "HOST:PORT" (NULL: none;
                                    // dv_http.h)
    const char *http_token;         // its bearer token (NULL: none; needed
                                    // beyond loopback unless plain)
    uint64_t raft_id;               // a broker group member (dv_repl.h): its
                                    // id, 0: a broker alone
    const char *raft;               // its Raft HOST:PORT
    const char *raft_peers;         // the initial group "1=HOST:PORT,..."
    bool raft_join;                 // wait to be added instead
    bool raft_private;              // --raft beyond loopback is on a
                                    // private network (docs/SECURITY.md)
    uint32_t raft_election_ms;      // election timeout (0: 1000)
    uint32_t raft_files_port;       // the files channel's TCP port on the
                                    // --raft host (0: one the OS picks)
} dv_broker_opts_t;

typedef struct dv_broker dv_broker_t;

// Open the registry and bind both endpoints. Returns 0 and *out (caller
// destroys), or DV_EINVAL (bad endpoint) / DV_EIO (cannot bind) / the
// registry's error (an unreadable or damaged data dir) with the reason.
int dv_broker_open(dv_broker_t **out,
                   const dv_broker_opts_t *opts,
                   dv_error_t *err);

// The endpoint clients connect to, as bound (a tcp "*" port resolved).
// Borrowed; valid while the broker lives.
const char *dv_broker_client_endpoint(const dv_broker_t *self);
const char *dv_broker_worker_endpoint(const dv_broker_t *self);

// The bound HTTP address ("127.0.0.1:7480"), or NULL without opts.http.
const char *dv_broker_http_address(const dv_broker_t *self);

// Run until SIGINT/SIGTERM or dv_broker_stop. Returns 0, or
// DV_BROKER_RESTART when a group member stopped leading: the caller destroys
// the broker and starts it again (drover-broker re-executes itself), so a
// deposed leader keeps nothing of the term it lost.
#define DV_BROKER_RESTART 1
int dv_broker_run(dv_broker_t *self);

// Ask a running broker to stop (loop thread only).
void dv_broker_stop(dv_broker_t *self);

// Close sockets and free everything; *self_p = NULL. NULL-safe.
void dv_broker_destroy(dv_broker_t **self_p);

#endif
