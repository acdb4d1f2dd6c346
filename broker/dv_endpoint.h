// dv_endpoint — one owner per data folder and per endpoint, and which
// endpoints other machines can reach; what the broker checks before it
// touches its store or binds a socket.
//
// - A data folder has one broker: two on one --data DIR would both open
//   its LMDB store (LMDB allows several processes), hand out the same job
//   ids and lose accepted jobs. dv_endpoint_lock_dir takes an exclusive
//   flock(2) on DIR/broker.lock (with the holder's pid written in it) for
//   as long as the broker runs; the kernel drops it when the process ends,
//   however it ends, so a kill -9 leaves no stale lock.
// - An ipc:// path has one server: libzmq's ipc bind unlinks an existing
//   socket file, so a second broker (or `drover up`) would silently take a
//   running broker's endpoint over. dv_endpoint_check_free probes the path
//   with connect(2) first.
// - Plain mode (no CURVE) is allowed without --plain only where no other
//   machine can connect: dv_endpoint_exposed.
//
// Threads: any; nothing is shared between calls.
#ifndef DV_ENDPOINT_H
#define DV_ENDPOINT_H

#include <stdbool.h>

#include "dv_err.h"

#define DV_ENDPOINT_LOCK_FILE "broker.lock" // in the data folder

// Can other machines reach endpoint? False only for ipc://, inproc:// and
// tcp:// on a loopback address literal (127.0.0.0/8, [::1]) or
// "localhost"; every other transport (ws://, wss://, udp://, pgm://, ...)
// and every other tcp host (*, an interface name, any other address) counts
// as exposed, since a name or interface cannot be judged safely here.
bool dv_endpoint_exposed(const char *endpoint);

// Before binding endpoint. For ipc://PATH: DV_EIO "... is served by another
// process" when something accepts connections on PATH (connect(2)
// succeeds). A missing file, or a stale socket file nobody listens on
// (ECONNREFUSED), is free: libzmq replaces it. Other transports: 0 (the
// kernel refuses a second tcp bind by itself; inproc is per process).
int dv_endpoint_check_free(const char *endpoint, dv_error_t *err);

// Take the data folder dir for this process: create dir (0700) if missing,
// open DIR/broker.lock, flock(LOCK_EX | LOCK_NB) it and write our pid into
// it. Returns 0 and *fd_out (keep it open while the broker runs; closing
// it releases the lock), or DV_EIO naming the holder's pid when another
// process holds the lock, or the file error.
int dv_endpoint_lock_dir(const char *dir, int *fd_out, dv_error_t *err);

// Release the lock: close *fd_p (when >= 0) and set it to -1. The lock file
// stays (the next broker reuses it); NULL-safe.
void dv_endpoint_unlock_dir(int *fd_p);

#endif
