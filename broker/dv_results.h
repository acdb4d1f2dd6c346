// dv_results — kept results and result streams.
//
// Owns: the kept results (a hash by job id and a FIFO by finish time, kept
// for result_ttl_ms within DV_MAX_KEPT_RESULTS/_BYTES), each queue's result
// stream (kept results by seq), the stream cursors (follow/ack/unfollow) and
// results held until their commit (dv_results_hold/dv_results_send). Their
// store records: DV_STORE_RESULTS, DV_STORE_CURSORS, the seq marks due.
// Handlers: result_get, follow, ack, unfollow.
//
// May call: dv_broker.c (through dv_broker_int.h), dv_commit.h and common/
// (not dv_dead.h: dv_dead calls here, and a job's failed attempts are
// written here, as they go with its result). Internal to broker/ (not
// installed); loop thread only.
//
// The on_* handlers are client_handler_fn: their
// arguments, replies and returns are documented there (dv_broker_int.h).
#ifndef DV_RESULTS_H
#define DV_RESULTS_H

#include "dv_broker_int.h"

// The kept result of job id, or NULL. Borrowed: valid until it is
// evicted (dv_results_kept_trim) or the loop turns.
kept_t *dv_results_kept_find(const dv_broker_t *self, uint64_t id);

// Each queue's kept results, in the order they finished (seq), form its
// stream. Consumers follow it by name with a cursor; the broker pushes up
// to `window` results past the cursor and advances it on `ack`. Results
// leave a stream when they leave the kept results (TTL, bounds): a
// consumer away longer than that misses them (it sees the gap in seq).
// Link k (seq set) into its queue's stream, in seq order (appends, except
// while recovering).
void dv_results_stream_link(dv_broker_t *self, kept_t *k);

// Start fetching the bucket a result for job id will join (a hint).
void dv_results_kept_prefetch(const dv_broker_t *self, uint64_t id);

// Drop the oldest kept result.
void dv_results_kept_evict_oldest(dv_broker_t *self);

// Drop results past their TTL, and the oldest while over the bounds.
void dv_results_kept_trim(dv_broker_t *self);

// A job's outcome, as dv_results_keep and dv_results_send take it.
// Borrowed for the call.
typedef struct {
    bool done;                // else failed
    int code;                 // failed: its DV_E* code
    const char *text;         // failed: why (NULL: "")
    const char *worker;       // the worker that ran it (NULL or "": none)
    const dv_frame_t *frames; // done: the payload frames (copied)
    size_t n_frames;          // their count (at most DV_MAX_FRAMES kept)
    dv_msgw_t *extra;         // extra `result` fields (NULL: none)
} dv_results_outcome_t;

// Keep j's result o for result_get and its queue's stream; copies frames
// and extra (still the caller's). Returns it, borrowed.
kept_t *dv_results_keep(dv_broker_t *self,
                        const job_t *j,
                        const dv_results_outcome_t *o);

// Results that go out while a done_batch is handled (1.4): gathered per
// client connection and sent as one `results` message each, instead of a
// `result` per job. Only for clients whose submit said 1.4 or later, and
// only results sent at once (not those held for a commit, nor stream
// pushes). Begin sets self->coalesce; flush sends and ends it.
void dv_results_batch_begin(dv_broker_t *self);
void dv_results_batch_flush(dv_broker_t *self);

// Send kept result k to route as the `result` answering rid.
void dv_results_send_kept(dv_broker_t *self,
                          const kept_t *k,
                          const void *route,
                          size_t route_len,
                          uint64_t rid);

// Queue qidx gave out a seq: with a store, its mark (the last seq given
// out) goes with the next commit (marks_stage), and followers get that
// seq only after it (marks_done). So a seq a follower saw is never given
// to another result after a restart, even when its result was not
// durable or was dropped (TTL, bounds). arm: ask for that commit.
void dv_results_mark_due(dv_broker_t *self, uint32_t qidx, bool arm);

// Send result k (job id) to route once its record is committed: the
// commit's results_release sends it. route_len 0: nobody is waiting.
void dv_results_hold(dv_broker_t *self,
                     uint64_t id,
                     const void *route,
                     size_t route_len,
                     uint64_t rid);

// A job's failed attempts (job_t.errors), as they go with its result, in
// job_get and in dead_list: the top-level field `errors` ...
void dv_results_write_errors(dv_msgw_t *w, const job_t *j);
// ... or the array alone, as a value inside a nested map.
void dv_results_write_errors_value(dv_msgw_t *w, const job_t *j);

// The job's result: kept for result_get, then pushed to its submitter (a
// durable one once its record is committed: after a crash before that the
// job runs again, so nobody may have seen this outcome). o->extra gets
// the job's failed attempts (errors) when it has some.
void dv_results_send(dv_broker_t *self,
                     const job_t *j,
                     const dv_results_outcome_t *o);

// dv_results_send of j's failure: code, text, and the worker that ran it
// (NULL or "": none).
void dv_results_fail(dv_broker_t *self,
                     const job_t *j,
                     int code,
                     const char *text,
                     const char *worker);

// result_get: reply a kept result, or hold the reply until its commit.
client_handler_fn dv_results_on_get;

// Copy a kept result's `model` and `batch` fields (its extra fields,
// packed key, value, ...) into w.
void dv_results_kept_copy_fields(const kept_t *k, dv_msgw_t *w);

// Send c's follower the results past what it has, up to its window.
void dv_results_stream_pump(dv_broker_t *self, cursor_t *c);

// The consumer on queue (by name; NULL when either is unknown), for
// dv_authorize_client(), which must not create queues.
const cursor_t *dv_results_cursor_named(const dv_broker_t *self,
                                        const char *queue,
                                        const char *consumer);

// c's follower stops (unfollow, a reload that takes the right away):
// nothing more is pushed to it; it leaves its queue's followed list.
void dv_results_cursor_stop(dv_broker_t *self, cursor_t *c);

// The client connection whose routing id hashes to route_hash
// (dv_auth_route_hash) closed: the consumers it followed stop (logged).
void dv_results_route_gone(dv_broker_t *self, uint64_t route_hash);

// {queue, consumer} of a stream request (follow, ack, unfollow,
// consumer_forget) into buffers of DV_MAX_WIRE_NAME + 1: 0, or the
// field's error, or DV_EINVAL for a name outside [A-Za-z0-9._-]+.
int dv_results_stream_names(const dv_msg_t *m,
                            char *queue,
                            char *consumer,
                            dv_error_t *err);

// Remove c (consumer_forget): its follower stops, its stored record is
// deleted (with the next commit), its name and slot are free. The last
// cursor moves into c's place: pointers to it are stale afterwards.
void dv_results_cursor_remove(dv_broker_t *self, cursor_t *c);

// Add a cursor (store key, queue qidx, consumer, acked; not there yet).
// Returns it, borrowed: valid until the next dv_results_cursor_add. The
// caller keeps to DV_MAX_CONSUMERS for new ones (recovery loads what the
// store holds).
cursor_t *dv_results_cursor_add(dv_broker_t *self,
                                uint64_t key,
                                uint32_t qidx,
                                const char *consumer,
                                uint64_t acked);

// follow {queue, consumer, window?, from?}: this connection now receives
// the queue's results past the consumer's cursor (a new consumer starts at
// the oldest kept result, or with from: "latest" at the next one), as
// `result` messages with this request's rid and `seq`; at most window
// (default 100, max 10,000) unacknowledged at a time. A second follow of
// the same consumer takes over (unacknowledged results are sent again).
client_handler_fn dv_results_on_follow;

// ack {queue, consumer, seq}: every result up to seq is consumed (stored);
// more are sent. With a rid the `ok` comes once the cursor is stored. A
// seq is acknowledged once this connection was sent it, or when it was
// given out before this broker started (the follower may have seen it
// then: every seq sent is stored first, so it names the same result).
client_handler_fn dv_results_on_ack;

// unfollow {queue, consumer}: stop sending; the cursor stays.
client_handler_fn dv_results_on_unfollow;

#endif
