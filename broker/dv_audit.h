// dv_audit — the broker's audit log: who did what to which object, and how
// it ended. Every admin action, model and data set push / alias / delete,
// permission refusal and refused handshake gets an entry.
//
// Entries are appended to the store's `audit` table (sequence -> record),
// committed with the broker's next group commit, and never changed or
// deleted through any API: the protocol can only read them (audit_list).
// The store keeps the newest max_stored (DV_MAX_AUDIT_STORED for the
// broker), deleting the oldest as new ones come; the newest
// DV_AUDIT_MEMORY are also held in memory for reading (older ones are
// readable with mdb_dump). Without a store (in-memory broker) only the
// memory copy exists.
//
// Threads: the broker's loop thread.
#ifndef DV_AUDIT_H
#define DV_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "dv_err.h"
#include "dv_store.h"

#define DV_AUDIT_MEMORY 100000 // entries held in memory

typedef struct {
    uint64_t seq;        // 1, 2, ... in the order they happened
    uint64_t unix_ms;    // when
    const char *key;     // who: key id ("" in plain mode)
    const char *action;  // "model_push", "handshake", "reload", ...
    const char *object;  // what it acted on ("iris@3", "queue q1", an
                         // address)
    const char *outcome; // "ok", "refused: ...", "error: ..."
} dv_audit_entry_t;

typedef struct dv_audit dv_audit_t;

// Open over store (NULL: memory only), reading back the entries it holds;
// past max_stored (>= 1) the oldest are deleted (staged: the caller
// commits). Returns 0 and *out, or the store's error (a damaged entry:
// DV_EFORMAT).
int dv_audit_open(dv_audit_t **out,
                  dv_store_t *store,
                  uint64_t max_stored,
                  dv_error_t *err);
void dv_audit_destroy(dv_audit_t **self_p);

// Append an entry (strings copied; long ones cut at 1 KiB). Staged in the
// store, with the delete of the oldest when past max_stored: the caller
// commits (the broker's group commit).
void dv_audit_add(dv_audit_t *self,
                  const char *key,
                  const char *action,
                  const char *object,
                  const char *outcome);

// Entries in memory with unix_ms >= since_ms, oldest first: *n of them,
// starting at index *first of dv_audit_at.
void dv_audit_since(const dv_audit_t *self,
                    uint64_t since_ms,
                    size_t *first,
                    size_t *n);
// Entry i (0: the oldest in memory) into *out (strings borrowed until the
// next add).
void dv_audit_at(const dv_audit_t *self, size_t i, dv_audit_entry_t *out);
// Entries in memory, and the last sequence number given.
size_t dv_audit_count(const dv_audit_t *self);
uint64_t dv_audit_last_seq(const dv_audit_t *self);
// Entries the store holds (0 without one).
uint64_t dv_audit_stored(const dv_audit_t *self);

#endif
