// dv_disk — the free space on the data dir's file system, watched so that
// a filling disk stops new durable submits before it stops the broker
// from storing what it already holds (--submit-free-disk).
//
// Every accepted job still has writes to come: its attempts, its result or
// failure, the retention sweep. When the disk filled up, submits were
// refused (the store's commit failed) but so were those writes: results
// went out unstored, to be run again after a restart, and dead letters
// and failures were not kept. RabbitMQ's disk alarm does the same as this
// for its publishers.
//
// Low: less than `reserve` bytes free (statvfs f_bavail: what an
// unprivileged writer may use), or the store said it is full since the
// last reading. The broker reads at each heartbeat, and again at a submit
// once the submits since the last reading may have used a quarter of the
// room above the reserve (twice their bytes, and 1 KiB each: LMDB writes
// copies of pages): a fast producer filled 24 MB between two heartbeats. It
// stays low until a reading sees reserve + reserve / 8 free (hysteresis: a disk
// hovering at the line does not flip the state, or its log lines, at each
// check). Each change of state is logged.
//
// Owns its copy of the path. Threads: one.
#ifndef DV_DISK_H
#define DV_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include "dv_err.h"

typedef struct dv_disk dv_disk_t;

// A watch on dir's file system keeping reserve bytes free (0: off; never
// low). Never NULL; starts not low, with nothing read.
dv_disk_t *dv_disk_new(const char *dir, uint64_t reserve);
void dv_disk_destroy(dv_disk_t **self_p);

// Read the free space now (one statvfs) and update the state; a reading
// that fails leaves it as it was. Returns whether it is low.
bool dv_disk_check(dv_disk_t *self);

// The state after a reading of free_bytes (dv_disk_check's step, apart for
// tests). Returns whether it is low.
bool dv_disk_update(dv_disk_t *self, uint64_t free_bytes);

// The store ran out of space: low at once, until a reading sees room.
void dv_disk_full(dv_disk_t *self);

// A durable submit of bytes: 0 while not low (reading again first when
// the submits since the last reading may have used a quarter of the room);
// DV_ENOSPC with a text naming the figures and the flag while low.
int dv_disk_admit(dv_disk_t *self, uint64_t bytes, dv_error_t *err);

bool dv_disk_low(const dv_disk_t *self);

// The last reading, in bytes (UINT64_MAX: none yet).
uint64_t dv_disk_free(const dv_disk_t *self);

#endif
