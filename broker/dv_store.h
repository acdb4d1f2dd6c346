// dv_store — the broker's durable store: jobs, their attempt counts and
// kept results in LMDB under the data dir, written in group commits.
//
// Writes are staged in memory (put/del on a table) and applied together by
// dv_store_commit in one write transaction, which LMDB fsyncs before it
// returns: many submits share one fsync (group commit), and the broker
// acknowledges a submit only after the commit that holds it. Records are
// opaque bytes to the store; each is stored with a CRC-32 that reads
// verify, so a damaged record is reported, never handed back as data.
//
// The map grows as needed (doubling, from 64 MiB); a full disk is
// DV_ENOSPC and leaves the previous commit intact. Opening checks that the
// data file is as long as LMDB's meta page says (a truncated file would
// otherwise fault on first touch) and reports damage with what to do.
//
// Threads: the broker's loop thread for everything but dv_store_batch_commit,
// which runs on one other thread at a time (the loop reads meanwhile).
#ifndef DV_STORE_H
#define DV_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dv_err.h"

typedef enum {
    DV_STORE_JOBS,     // job id -> job record
    DV_STORE_ATTEMPTS, // job id -> attempts so far (u32, little-endian)
    DV_STORE_RESULTS,  // job id -> result record
    DV_STORE_DEAD,     // job id -> dead-letter record (job, why, attempts)
    DV_STORE_KEYS,     // job id -> its idempotency key and submit time
    DV_STORE_CURSORS,  // cursor id -> a result stream consumer's position
    DV_STORE_CKPTS,    // job id -> a training job's last checkpoint
    DV_STORE_AUDIT,    // sequence -> an audit log entry (append only)
    DV_STORE_STREAMS,  // mark id -> the last seq a queue's stream gave out

    DV_STORE_TABLES_
} dv_store_table_t;

typedef struct dv_store dv_store_t;

// Open (creating) the store in dir/store. Returns 0 and *out, or DV_EIO /
// DV_EFORMAT / DV_ETRUNC / DV_EACCES with the reason and the remedy.
int dv_store_open(dv_store_t **out, const char *dir, dv_error_t *err);

// Close; staged writes not committed are dropped. NULL-safe.
void dv_store_destroy(dv_store_t **self_p);

// Stage a write (the bytes are copied) or a delete. Applied in call order
// by the next commit.
void dv_store_put(dv_store_t *self,
                  dv_store_table_t table,
                  uint64_t id,
                  const void *data,
                  size_t len);
void dv_store_del(dv_store_t *self, dv_store_table_t table, uint64_t id);

// Bytes a buffer for dv_store_put_owned needs beyond its data (the CRC).
#define DV_STORE_SPARE 4

// Stage a write of buf[0..len) without copying: buf (from malloc, with
// DV_STORE_SPARE bytes after len) now belongs to the store.
void dv_store_put_owned(dv_store_t *self,
                        dv_store_table_t table,
                        uint64_t id,
                        uint8_t *buf,
                        size_t len);

// Stage the next job id (kept in the store so ids are never reused).
void dv_store_set_next_id(dv_store_t *self, uint64_t next);

// Staged operations not yet committed.
size_t dv_store_staged(const dv_store_t *self);

// Apply everything staged in one durable transaction. Returns 0, or
// DV_ENOSPC (disk full: nothing of this batch is stored) / DV_EIO; staged
// writes are dropped either way (the caller fails what depended on them).
int dv_store_commit(dv_store_t *self, dv_error_t *err);

// The next job id recorded (1 for a new store).
uint64_t dv_store_next_id(const dv_store_t *self);

// Call fn for every record of table in id order (data borrowed during the
// call). A record whose CRC does not match stops the walk with
// DV_ECHECKSUM naming it. fn returns 0 to go on, else that code stops the
// walk and is returned.
typedef int(dv_store_each_fn)(uint64_t id,
                              const void *data,
                              size_t len,
                              void *arg);
int dv_store_each(dv_store_t *self,
                  dv_store_table_t table,
                  dv_store_each_fn *fn,
                  void *arg,
                  dv_error_t *err);

// Commits off the caller's thread: take what is staged as a batch (the
// store is ready to stage the next one at once), apply it on another thread
// with dv_store_batch_commit (one batch at a time: LMDB has one writer),
// then free it. The store's next id advances when the batch is freed after
// a successful commit.
typedef struct dv_store_batch dv_store_batch_t;
dv_store_batch_t *dv_store_take(dv_store_t *self);
int dv_store_batch_commit(dv_store_t *self,
                          dv_store_batch_t *batch,
                          dv_error_t *err);
// rc: what dv_store_batch_commit returned. NULL-safe.
void dv_store_batch_done(dv_store_t *self, dv_store_batch_t **batch_p, int rc);

// Read the records of ids (one read transaction; CRC checked): fn gets
// each in order, with data NULL and len 0 for an id without a record.
// Safe while a batch commits on another thread (LMDB readers do not block
// the writer; a map growth waits for the read to end). fn returns 0 to go
// on, else that code stops and is returned.
int dv_store_get_many(dv_store_t *self,
                      dv_store_table_t table,
                      const uint64_t *ids,
                      size_t n,
                      dv_store_each_fn *fn,
                      void *arg,
                      dv_error_t *err);

// ------------------------------------------------- replication (dv_repl)
// A broker group (docs/ARCHITECTURE.md, Broker groups) replicates the
// store's batches through Raft: the leader encodes each batch, every member
// applies the bytes to its own store once a majority holds them. The
// encoding ("wire" here; not the client protocol): next id u64, op count
// u32, then per op table u8, delete u8, id u64, value length u32 and the
// value with its CRC-32; all little-endian. Puts and deletes are blind
// writes, so applying a suffix of batches again over a newer state ends in
// the same state (what a restart or a snapshot taken while batches apply
// relies on).

// Bytes batch b takes encoded, and the encoding written at p (which has
// that many bytes; returns the end). Seals b's values (their CRCs) first.
size_t dv_store_batch_wire_size(const dv_store_batch_t *b);
uint8_t *dv_store_batch_wire(dv_store_batch_t *b, uint8_t *p);

// Apply an encoding (a batch, or a snapshot with clear set: every table
// emptied first) in one transaction, checking its bounds (each value keeps
// the CRC it came with, which every read checks). *used gets the bytes it
// took. Returns 0, DV_EFORMAT (malformed: nothing applied) or the store's
// error.
int dv_store_apply_wire(dv_store_t *self,
                        const uint8_t *p,
                        size_t len,
                        bool clear,
                        size_t *used,
                        dv_error_t *err);

// Every record of every table and the next id, encoded as one batch of
// puts (caller frees *out). One read transaction: safe on another thread
// while the loop applies batches. Returns 0 or the store's error.
int dv_store_dump_wire(dv_store_t *self,
                       uint8_t **out,
                       size_t *len,
                       dv_error_t *err);

// Commits no longer fsync (a broker group's Raft log is what is durable;
// the store is rebuilt from it at every start).
void dv_store_nosync(dv_store_t *self);

// Records in table.

size_t dv_store_count(dv_store_t *self, dv_store_table_t table);

#endif
