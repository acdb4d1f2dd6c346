// drover_int — what libdrover's files share; not installed (drover.h is the
// API, this header is how its implementation is laid out).
//
// libdrover is one module split by area, each file serving one part of
// drover.h:
//   drover_conn.c     the connection: socket, handshake, the requests table,
//                     receiving and dispatching (pump/handle), request(),
//                     drover_poll
//   drover_result.c   result objects: decoding `result` messages, accessors
//   drover_jobs.c     submit/submit_many/wait/run, follow/ack, consumers
//                     (list, forget), job info, cancel and list, dead
//                     letters, train
//   drover_catalog.c  models (push, list, get, schema and lineage, alias,
//                     config, gc, rm) and data sets
//   drover_admin.c    workers, status, audit, keys reload
// This header owns struct drover (one connection), req_t (one request
// awaiting its result) and struct drover_result; the area files may call
// what is declared here, drover.h and common/ (never broker/ or workers/).
// Names declared here take the drv_ prefix: they are libdrover's own, and
// the pragma below keeps them out of libdrover.so's exported symbols (the
// API stays exactly drover.h's drover_* functions).

#ifndef DROVER_INT_H
#define DROVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "drover.h"
#include "dv_err.h"
#include "dv_limits.h"
#include "dv_proto.h"
#include "dv_tensor.h"
#include "dv_wire.h"

struct drover_result {
    uint64_t job;                 // 0 when the submit was refused
    bool ok;                      // done
    int code;                     // error when failed
    char text[DV_ERROR_TEXT_MAX]; // its reason
    uint32_t attempts;            // runs
    char worker[DV_MAX_WIRE_NAME + 1];
    uint8_t *payload; // echo payload (owned)
    size_t payload_len;
    dv_tensor_t *output; // infer output (owned)
    char **classes;      // infer classes (owned: one block, free())
    size_t n_classes;
    char model[2 * DV_MAX_WIRE_NAME]; // NAME@VERSION that ran
    uint32_t batch_rows, batch_jobs;  // infer: the forward pass it ran in
    drover_attempt_error_t *errors;   // failed attempts (owned)
    size_t n_errors;
    uint64_t seq;          // position in a result stream (0: not from one)
    char **metric_names;   // evaluate: the metrics (owned)
    double *metric_values; //
    size_t n_metrics;      //
};

// A result stream's result waiting for drover_poll.
typedef struct event event_t;
struct event {
    drover_result_fn *fn;
    void *arg;
    drover_result_t *res; // owned
    event_t *next;
};

typedef struct req req_t;
struct req {
    uint64_t rid;            // request id of the submit
    uint64_t job;            // job id once accepted
    drover_result_fn *fn;    // async: callback
    void *arg;               //   its argument
    drover_result_t *result; // sync: result once it arrived
    drover_result_t *ready;  // async: result waiting for drover_poll
    req_t *next;             // hash chain
    req_t *ready_next;       // ready list
    bool ack_only;           // async: fn runs on `accepted`, not the result
    bool stream;             // a follow: every result with its rid
    char *queue;             //   its queue (owned; NULL: not a follow)
    char *consumer;          //   and consumer (owned)
    drover_progress_fn *progress; // train: progress callback
    void *progress_arg;           //
    // A broker group (several endpoints) only: an async submit's message,
    // kept until `accepted` to send again to a new leader.
    uint8_t *resend;       // its header (owned; NULL: none kept)
    size_t resend_len;     //
    uint8_t *resend_frame; // its payload frame (owned)
    size_t resend_frame_len;
    // Accepted, but its result will not be pushed (the leader changed, or
    // the broker answered a duplicate idempotency key): drv_pump asks for
    // it with `result_get` under this rid until it is there.
    bool orphan;        //
    int64_t poll_at_ms; // next ask (0: one is in flight)
    int poll_pause_ms;  // the pause after a "not finished"
};

struct drover {
    void *ctx;                // ZeroMQ context
    void *sock;               // DEALER
    uint64_t sends;           // messages sent on it (drv_pump's wait)
    char endpoint[256];       // connected to
    uint64_t next_rid;        // request ids
    req_t **buckets;          // submits by rid
    size_t n_buckets;         // power of two
    size_t n_reqs;            // submits remembered
    size_t n_async;           // async ones without a delivered result
    req_t *ready_head;        // async results to deliver
    req_t *ready_tail;        //
    event_t *events_head;     // stream results to deliver
    event_t *events_tail;     //
    uint64_t want_rid;        // blocking call's request
    dv_wire_msg_t reply_wire; // its reply's frames
    dv_msg_t *reply;          // and decoded header (NULL: none yet)
    bool have_reply_wire;     //
    void *monitor;            // PAIR: handshake events while connecting
    char key_id[65];          // our key's id ("": plain)
    int hs_failed;            // a handshake failed: the monitor's event
    int hs_status;            //   and value (ZAP status for auth)
    unsigned broker_minor;    // welcome's v: 1.4 takes submit_many
    size_t n_orphans;         // reqs with orphan set
    // A broker group (protocol 1.6; drover_group.c). n_eps > 1 turns on
    // leader following, failover and resending; with one endpoint none of
    // it runs and nothing below is used.
    char **eps;             // the endpoint list (owned)
    size_t n_eps;           //
    size_t ep_at;           // the list entry last tried
    bool curve;             // the keys below are set
    uint8_t server_key[32]; //   the broker's public key
    uint8_t public_key[32]; //   ours
    uint8_t secret_key[32]; //   (wiped on destroy)
    bool dropped;           // the monitor saw the connection drop
    bool failover_due;      // leave this member (drv_pump acts on it)
    char group_why[DV_ERROR_TEXT_MAX]; // why reaching the leader failed
    char hint[256];                    // DV_ENOTLEADER's `leader` ("": none)
    int64_t last_rx_ms;                // when a message last came
    int64_t probe_sent_ms;         // silence: when the `ping` went (0: none)
    uint8_t *want_copy;            // the blocking request's header (owned)
    size_t want_copy_len;          //
    dv_msg_type_t want_type;       //   its type
    const dv_frame_t *want_frames; // and frames (borrowed from the caller)
    size_t want_n;                 //
    bool want_notleader;           // it was answered DV_ENOTLEADER: resend it
    bool want_lost;                // failover dropped it: outcome unknown
};

// A condition drv_pump waits for: true once it holds (arg is the waiter's).
typedef bool(drv_done_fn)(const drover_t *self, const void *arg);

#pragma GCC visibility push(hidden)

// ------------------------------------------------- drover_conn.c: errors

// Copy e into *err (may be NULL). Returns e->code.
int drv_set_err(drover_error_t *err, const dv_error_t *e);

// Milliseconds on the monotonic clock.
int64_t drv_now_ms(void);

// The deadline timeout_ms from now on drv_now_ms's clock (<0: none, -1).
int64_t drv_deadline_of(int timeout_ms);

// ---------------------------------------- drover_conn.c: requests table

// Remember r (takes ownership) under r->rid until drv_req_remove.
void drv_req_add(drover_t *self, req_t *r);

// Forget r and free it with its results.
void drv_req_remove(drover_t *self, req_t *r);

// -------------------------------------------------- drover_conn.c: socket

// Send w (consumed) with frames (borrowed) on the socket, no request kept.
void
drv_send_msg(drover_t *self, dv_msgw_t *w, const dv_frame_t *frames, size_t n);
// Send w's header and one frame of len bytes at data, which ZeroMQ takes
// (freed once sent or dropped: no copy of a large input); w is consumed.
void drv_send_adopt(drover_t *self, dv_msgw_t *w, void *data, size_t len);

// Send w (and frames) as a request and wait for its reply, which must be of
// type want (an `error` reply becomes its error). The reply stays in
// self->reply until the next request.
int drv_request(drover_t *self,
                dv_msgw_t *w,
                uint64_t rid,
                const dv_frame_t *frames,
                size_t n,
                dv_msg_type_t want,
                int64_t deadline,
                drover_error_t *err);

// Free the kept reply (self->reply and its frames), if any.
void drv_drop_reply(drover_t *self);

// The root map of the current reply. Borrowed; valid until the next
// request.
const msgpack_object *drv_reply_root(const drover_t *self);

// The items of array field key of the current reply (NULL and *n 0 when
// it has none). Borrowed; valid until the next request.
const msgpack_object *
drv_reply_array(const drover_t *self, const char *key, size_t *n);

// Fills one list item (item_size bytes of zeros) from its map in a reply.
typedef void(drv_item_fn)(const msgpack_object *o, void *item);

// The array at key of the current reply as a new array (calloc'd, never
// empty) of *n items of item_size bytes, each filled by fill.
void *drv_reply_list(const drover_t *self,
                     const char *key,
                     size_t item_size,
                     drv_item_fn *fill,
                     size_t *n);

// A list request's own fields (besides `from`), written into w; have:
// the items read so far (a list with a limit asks for the rest).
typedef void(drv_fields_fn)(dv_msgw_t *w, const void *arg, size_t have);
// Frees what drv_item_fn allocated inside one item.
typedef void(drv_item_free_fn)(void *item);

// A list request answered a page at a time (1.7): while a reply names
// `next`, the request is sent again with `from` set to it. A broker before
// 1.7 sends one reply and no `next`.
typedef struct {
    dv_msg_type_t type;          // the request
    drv_fields_fn *fields;       // its own fields (NULL: none)
    const void *arg;             //   their argument
    uint64_t from;               // a uint `from` for the first page (0: none)
    dv_msg_type_t want;          // the reply's type
    const char *key;             //   its array of items
    size_t item_size;            // one item's bytes
    drv_item_fn *fill;           //   read from its map
    drv_item_free_fn *item_free; //   what fill allocated (NULL: nothing)
    size_t max;                  // items wanted (0: all)
} drv_list_t;

// Read list's items into *items (calloc'd, never NULL on success) and *n,
// page after page until a reply names no `next` or max items are read; 10
// s deadline per page. *next (may be NULL) gets the last reply's `next`
// when that is a uint (0: none, the list is complete). On failure *items is
// NULL, *n 0, and what was read is freed.
int drv_request_list(drover_t *self,
                     const drv_list_t *list,
                     void **items,
                     size_t *n,
                     uint64_t *next,
                     drover_error_t *err);

// Receive and handle messages until done(self, arg) holds (checked after
// each batch; NULL: one batch of what is waiting) or the deadline (ms on
// the monotonic clock; <0: none) passes. Returns 0, DV_ETIMEDOUT or DV_EIO.
int
drv_pump(drover_t *self, int64_t deadline, drv_done_fn *done, const void *arg);

// Read the socket monitor's events: records a failed handshake
// (self->hs_failed) and a group's dropped connection (self->dropped).
// Returns true once a handshake failed (waiting longer would not help).
bool drv_monitor_failed(drover_t *self);

// drv_pump's condition for a blocking submit: arg (a req_t) has its result.
bool drv_have_result(const drover_t *self, const void *arg);

// Mark r (accepted as r->job) as awaited by `result_get` (drv_pump asks).
void drv_req_orphan(drover_t *self, req_t *r);

// ------------------------------------------------------ drover_group.c

// Split endpoint (a comma-separated list) into self->eps. Returns 0, or
// DV_EINVAL (an empty entry, more than DV_MAX_GROUP_ENDPOINTS).
int drv_group_parse(drover_t *self, const char *endpoint, dv_error_t *e);

// Open self->sock connected to ep (closing any previous socket), with the
// options and keys of this connection; a group's socket gets a monitor
// watching for drops. Returns 0 or DV_EINVAL (bad endpoint).
int drv_sock_open(drover_t *self, const char *ep, dv_error_t *e);

// Reach the group's leader: say hello to self->hint, else the list entry
// after the last one tried (first: entry 0), following DV_ENOTLEADER's
// hints, until one welcomes us or deadline passes. Returns 0, DV_ETIMEDOUT,
// DV_EPERM (a refused handshake) or the error a member answered hello with.
int
drv_group_reach(drover_t *self, bool first, int64_t deadline, dv_error_t *e);

// With a group: act on what drv_pump saw (self->failover_due, a drop,
// silence), probing a silent member; a new leader is reached and every
// request that may be is sent again. Returns 0 (or nothing to do), or what
// drv_group_reach returned.
int drv_group_check(drover_t *self, int64_t deadline);

// A message came: note it (silence detection). Returns true when it was
// DV_ENOTLEADER (then failover is due and the message must not be acted
// on).
bool drv_group_saw(drover_t *self, const dv_msg_t *m);

// Keep a copy of submit w (not yet sent) and its frame in r for a resend.
void
drv_group_keep(drover_t *self, req_t *r, dv_msgw_t *w, const dv_frame_t *f);

// A fresh idempotency key (128 random bits, hex) into buf[33].
void drv_group_key(char buf[33]);

// Send result_get for orphans whose time has come; the poll timeout
// (ms) until the next (-1: none pending).
long drv_orphans_poll(drover_t *self);

// ----------------------------------------------------- drover_result.c

// A failed result (the submit refused with code and text). Caller owns it.
drover_result_t *drv_refused(int code, const char *text);

// A `result` message as a result object; a malformed one becomes a failed
// result saying so (the job's outcome must not vanish). Caller owns it.
drover_result_t *drv_result_from(const dv_msg_t *m);

// An `errors` array (failed attempts) into *out (calloc'd, caller frees) of
// *n.
void drv_errors_from(const msgpack_object *a,
                     drover_attempt_error_t **out,
                     size_t *n);

// String object o into buf (truncated to size; "" when o is not a string).
void drv_copy_obj_str(const msgpack_object *o, char *buf, size_t size);

// Unsigned field key of map (0 when absent or not one).
uint64_t drv_obj_uint(const msgpack_object *map, const char *key);

// Integer field key of map as int32, either sign (0 when absent or not
// one; a job's priority).
int32_t drv_obj_int32(const msgpack_object *map, const char *key);

#pragma GCC visibility pop

#endif
