// dv_timeq — a min-heap of timed events for the broker: a job's retry
// backoff ending, its deadline, its run timeout. Entries are plain values
// (time, job id, tag, attempt); none is removed when its job moves on:
// whoever pops an entry checks that the job is still in the state the
// entry was for (the job may have finished, been cancelled or retried
// since), which keeps every other path free of timer bookkeeping. Stale
// entries go in bulk instead (dv_timeq_filter, which the owner runs when
// the heap has doubled), so a job that ends long before its deadline or
// timeout does not hold an entry until then.
// Threads: one (the broker's loop thread).
#ifndef DV_TIMEQ_H
#define DV_TIMEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t at;      // when, in the owner's clock (ms)
    uint64_t id;      // the job
    uint32_t tag;     // what is due (the owner's enum)
    uint32_t attempt; // the attempt it was set for
} dv_timeq_entry_t;

typedef struct dv_timeq dv_timeq_t;

// Never NULL; caller owns it.
dv_timeq_t *dv_timeq_new(void);

// Free it; *self_p = NULL. NULL-safe.
void dv_timeq_destroy(dv_timeq_t **self_p);

// Add an entry (copied).
void dv_timeq_push(dv_timeq_t *self, dv_timeq_entry_t entry);

// The earliest entry into *out without removing it; false when empty.
bool dv_timeq_peek(const dv_timeq_t *self, dv_timeq_entry_t *out);

// Remove the earliest entry into *out (when due by now: at <= now); false
// when empty or nothing is due.
bool dv_timeq_pop_due(dv_timeq_t *self, uint64_t now, dv_timeq_entry_t *out);

// Entries held.
size_t dv_timeq_size(const dv_timeq_t *self);

// Whether an entry is still wanted (arg: the caller's).
typedef bool dv_timeq_keep_fn(const dv_timeq_entry_t *entry, void *arg);

// Keep only the entries keep says yes to (each asked once), and make the
// heap again: O(entries). Returns how many were dropped.
size_t dv_timeq_filter(dv_timeq_t *self, dv_timeq_keep_fn *keep, void *arg);

#endif
