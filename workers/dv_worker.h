// dv_worker — the worker: one libuv loop owning a DEALER socket to the
// broker (through dv_zwatch). Registers with its capacity, runs jobs, sends
// heartbeats, reconnects and registers again when the broker goes silent
// (a broker restart needs no operator action), says `bye` on SIGINT/SIGTERM.
//
// Runs `echo` (on the loop thread) and `infer` (models fetched from the
// broker, checksum-verified, kept in an LRU cache within a memory budget;
// predictions on its compute threads, `capacity` at once). SIGINT/SIGTERM
// drain: `bye`, finish the jobs held, stop; a second signal stops at once.
//
// Threads: the loop thread (sockets, cache, bookkeeping) inside
// dv_worker_run, plus `capacity` compute threads (dv_pool) for predictions,
// which only read a model the loop keeps alive.
// OpenBLAS gets blas_threads per job (default: this host's share for
// capacity jobs, dv_blas_threads_share), logged at start.
#ifndef DV_WORKER_H
#define DV_WORKER_H

#include <stdint.h>

#include "dv_err.h"

typedef struct {
    const char *broker_endpoint; // the broker's worker endpoint
    const char *name;            // shown by the broker; NULL: host-pid
    uint32_t capacity;           // jobs computed at once (0: 1)
    uint32_t prefetch;           // jobs held beyond those, waiting their
                                 // turn, so the next one is already here
                                 // when one finishes (hides the broker
                                 // round trip; 0: none)
    uint32_t heartbeat_ms;       // interval (0: 1000)
    uint32_t liveness;           // silent intervals before reconnecting (0: 3)
    size_t model_memory;         // model cache budget in bytes (0: 1 GiB)
    size_t data_memory;          // data set cache budget in bytes (0: 1 GiB)
    uint32_t train_slots;        // training jobs at once (0: concurrency
                                 // - 1, at least 1: a compute thread stays
                                 // free for inference)
    const char *queues;          // comma-separated queues it serves (NULL
                                 // or "": every queue)
    const char *key;             // CURVE: this worker's .key file (NULL:
                                 // plain, unless $DROVER_KEY)
    const char *broker_key;      // the broker's .pub file or Z85 key
                                 // (NULL: $DROVER_BROKER_KEY)
    uint32_t blas_threads;       // OpenBLAS threads per job (0: online
                                 // cores / capacity, at least 1, lowered by
                                 // OPENBLAS_NUM_THREADS: never more jobs x
                                 // threads than cores; `drover up` passes
                                 // the share of all its workers)
} dv_worker_opts_t;

typedef struct dv_worker dv_worker_t;

// Create the socket and connect (ZeroMQ connects in the background).
// Returns 0 and *out, or DV_EINVAL for a bad endpoint.
int dv_worker_open(dv_worker_t **out,
                   const dv_worker_opts_t *opts,
                   dv_error_t *err);

// Run until drained after SIGINT/SIGTERM, or dv_worker_stop. Prints "READY
// <endpoint>" on stdout the first time the broker welcomes it. Returns 0,
// or DV_EPERM when the broker refused our register (the key lacks the
// worker role or a queue asked for: a configuration error, logged with the
// broker's reason; retrying would not help). A silent or absent broker is
// retried for ever (reconnect, register again).
int dv_worker_run(dv_worker_t *self);

void dv_worker_stop(dv_worker_t *self);

void dv_worker_destroy(dv_worker_t **self_p);

#endif
