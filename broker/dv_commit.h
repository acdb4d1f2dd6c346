// dv_commit — the group-commit pipeline.
//
// Owns: the commit timer (one commit per loop turn), the batch written on
// the thread pool, and what waits for it: held replies, held results,
// pending submits, staged checkpoints and seq marks.
//
// May call: dv_broker.c (through dv_broker_int.h), dv_batching.h, dv_idem.h,
// dv_jobs_msg.h, dv_results.h and common/. Internal to broker/ (not installed);
// loop thread only.
#ifndef DV_COMMIT_H
#define DV_COMMIT_H

#include "dv_broker_int.h"

// Commit what is staged at the next turn of the loop: every submit, result
// and delete of this turn shares one fsync (group commit). A 0 ms timer
// runs before the loop next polls, and before dv_zwatch's prepare re-reads
// the sockets' state, so the sends that follow a commit cannot hide input.
void dv_commit_arm(dv_broker_t *self);

// Queue a reply to go out after the next commit (what it reports is then
// stored).
void dv_commit_hold_reply(dv_broker_t *self,
                          const void *route,
                          size_t route_len,
                          uint64_t rid,
                          dv_msgw_t *w);

// Send w to a client now, or after the next commit when there is a store
// (what it reports is then durable). Takes ownership of w.
void dv_commit_reply_after(dv_broker_t *self,
                           const void *route,
                           size_t route_len,
                           uint64_t rid,
                           dv_msgw_t *w);

// The reply to a change of files (a model or data set pushed, removed,
// aliased, shared): sent now by a broker alone (its files are written),
// after the next commit by a group member (the entry carrying the files is
// then on a majority). Takes ownership of w.
void dv_commit_reply_stored(dv_broker_t *self,
                            const void *route,
                            size_t route_len,
                            uint64_t rid,
                            dv_msgw_t *w);

// Commit what is left, synchronously (shutdown, after the loop stopped).
void dv_commit_flush(dv_broker_t *self);

#endif
