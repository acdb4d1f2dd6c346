// dv_names — a name -> index table for records kept in an array by index
// (the broker's queues, the scheduler's queues): looked up per job, so a
// broker with DV_MAX_QUEUES queues must not compare a name with each.
//
// Keeps its own copies of the names. An array that moves its last record
// into a removed one's place says so with dv_names_add (the new index).
// Not thread-safe.
#ifndef DV_NAMES_H
#define DV_NAMES_H

#include <stddef.h>

typedef struct dv_names dv_names_t;

// Caller owns the result (dv_names_destroy).
dv_names_t *dv_names_new(void);
void dv_names_destroy(dv_names_t **self_p);

// The index added under name, or SIZE_MAX when none was.
size_t dv_names_find(const dv_names_t *self, const char *name);

// Remember index under name (one already there gets the new index).
void dv_names_add(dv_names_t *self, const char *name, size_t index);

// Forget name (nothing when it is not there).
void dv_names_remove(dv_names_t *self, const char *name);

#endif
