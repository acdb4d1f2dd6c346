// dv_bench — what the benchmarks share: a monotonic clock, the comparison
// percentiles sort with, generated training data, and real drover processes:
// spawned from a bin folder in their own process group with stdout on a pipe,
// their READY line read with a deadline, stopped by their PID only (never by
// name), a client's DEALER socket with the echo SUBMITs the queue
// benchmarks send, and the raw ZeroMQ relay they measure as the floor.
// Benchmarks only: figures, never assertions.
#ifndef DV_BENCH_H
#define DV_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dv_csv.h"

// Monotonic seconds.
double dv_bench_now_s(void);

// Sleep us microseconds (figures' pacing, never readiness).
void dv_bench_sleep_us(long us);

// qsort comparison of doubles, ascending.
int dv_bench_cmp_double(const void *a, const void *b);

// The value at fraction q (0..1) of n sorted values (nearest rank); 0 when
// n is 0.
double dv_bench_pct(const double *sorted, size_t n, double q);

// rows x features values ~ N(0, 1), named f0, f1, ...; the target (classes
// "0".."classes-1") is the argmax of a random linear teacher plus noise, so
// the task is learnable but not trivial. The same seed gives the same data.
// Caller owns the result (dv_dataset_destroy).
dv_dataset_t *dv_bench_teacher_data(size_t rows,
                                    size_t features,
                                    size_t classes,
                                    uint64_t seed);

typedef struct {
    pid_t pid; // process (its own group); 0 when not running
    int out;   // read end of its stdout, -1 when none
} dv_bench_proc_t;

// Start bin with args (NULL-terminated, at most 22), stdout on a pipe,
// stderr inherited. pid is 0 when it did not start.
dv_bench_proc_t dv_bench_spawn(const char *bin, const char *const *args);

// Wait (10 s at most) for its "READY ..." line and copy the rest of the
// line to rest. Returns 0, or -1 when it exited or the time ran out.
int dv_bench_ready(dv_bench_proc_t *p, char *rest, size_t size);

// Stop by PID only: SIGTERM, then SIGKILL to its group after 5 s. NULL-safe
// on a process not running.
void dv_bench_reap(dv_bench_proc_t *p);

// Run bin with args (NULL-terminated, at most 22) to its end, its stdout
// into out (NUL-terminated, cut at size - 1 bytes), stderr inherited. A run
// past timeout_s is stopped (dv_bench_reap) and counts as failed. Returns
// its exit status (0..255), or -1 when it did not start, was killed or ran
// out of time.
int dv_bench_run(const char *bin,
                 const char *const *args,
                 double timeout_s,
                 char *out,
                 size_t size);

// Write ds as CSV to path: a header of its feature names and target name,
// then one line per row, features with 5 decimals (the generated data's
// values are within +-1e4) and the target's text. Returns 0, or -1 with
// errno set when the file cannot be written.
int dv_bench_write_csv(const dv_dataset_t *ds, const char *path);

// 1-minute load average (/proc/loadavg), -1 when unknown: benchmarks print it
// so figures taken on a busy machine are read as such.
double dv_bench_load_1m(void);

// Remove dir and everything below it (a benchmark's mkdtemp folder).
void dv_bench_rmtree(const char *dir);

// A ZeroMQ DEALER on ctx connected to endpoint, with no high-water marks
// (a benchmark's window bounds what is in flight) and no linger. Caller
// closes it (zmq_close).
void *dv_bench_dealer(void *ctx, const char *endpoint);

// Send a SUBMIT of an echo job (request id rid) to queue with payload
// (len bytes) as its one frame; while the socket refuses, wait for it to
// take more (100 ms polls) and send again.
void dv_bench_submit(void *sock,
                     uint64_t rid,
                     const char *queue,
                     const void *payload,
                     size_t len);

// The floor of the queue benchmarks, as ../shared/peers/src/zmq_broker.c: a
// raw ZeroMQ relay on ctx. Binds a ROUTER at front_ep (clients) and one at
// back_ep (workers, which announce themselves with a 5-byte "READY"); replies
// [worker][client][frames...] go back to [client][frames...] by identity,
// with no validation and no store: what ZeroMQ alone costs. credits 0:
// requests are dealt round-robin to known workers with no high-water marks
// (the peers harness's relay); credits N (1..64): as Drover's credits, each
// READY and each reply lets a worker take one more request, and requests
// wait in the front socket until one may (a worker sends N READYs to hold N
// at once; at most 8 workers). With say_ready, prints "READY relay" on
// stdout once bound (a relay process, for dv_bench_ready). Runs until
// *stop; returns 0, or -1 when an endpoint cannot be bound.
int dv_bench_relay_run(void *ctx,
                       const char *front_ep,
                       const char *back_ep,
                       int credits,
                       volatile int *stop,
                       bool say_ready);

#endif
