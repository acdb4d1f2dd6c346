// dv_test_proc — real processes for integration tests: start a binary
// (named by an environment variable CTest sets, e.g. DROVER_BROKER_BIN) in
// its own process group with stdout on a pipe and stderr in a log file,
// wait for its READY line with a deadline (no sleeps), stop it, or run one
// to completion.
#ifndef DV_TEST_PROC_H
#define DV_TEST_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DV_PROC_DEADLINE_MS 30000 // per wait; generous for ASan on 2 cores

typedef struct {
    pid_t pid; // 0 when not running
    int out;   // read end of its stdout, -1 when none
} dv_proc_t;

// Monotonic milliseconds.
int64_t dv_test_now_ms(void);

// Start the binary at $env_bin with args (NULL-terminated, at most 30),
// stdout to a pipe, stderr appended to dir/log_name. pid is 0 on failure.
dv_proc_t dv_proc_start(const char *env_bin,
                        const char *const *args,
                        const char *dir,
                        const char *log_name);

// Read stdout until a line starting "READY " (the rest goes to rest) or
// the deadline. False when it exited first or timed out.
bool dv_proc_wait_ready(dv_proc_t *p, char *rest, size_t size);

// Start drover-worker with CURVE key files (key: its secret key,
// broker_pub: the broker's public key) on worker endpoint wep, named name,
// heartbeats every hb_ms, logging to dir/worker.log, and wait for READY.
// *p is the process (pid 0 when it did not start). False unless it is ready.
bool dv_proc_worker_keyed(dv_proc_t *p,
                          const char *wep,
                          const char *name,
                          const char *key,
                          const char *broker_pub,
                          const char *hb_ms,
                          const char *dir);

// Send sig and wait for the exit (DV_PROC_DEADLINE_MS, then SIGKILL to the
// group). Returns the exit status, or -1 when it was killed by a signal or
// had to be. NULL-safe on processes not running (-1).
int dv_proc_stop(dv_proc_t *p, int sig);

// Run $env_bin with args to completion, stdout to out_path (NULL: discard),
// stderr appended to dir/log_name. Returns the exit status or -1.
int dv_proc_run(const char *env_bin,
                const char *const *args,
                const char *out_path,
                const char *dir,
                const char *log_name);

// Print dir/log_name to stderr (after a failure).
void dv_proc_dump_log(const char *dir, const char *log_name);

#endif
