// dv_proto — Drover's wire protocol (docs/PROTOCOL.md): message types,
// limits, and the codec for message headers and tensor payloads.
//
// A message is a msgpack header (frame 0) plus raw payload frames. This
// module knows nothing of sockets: it turns a header and borrowed frames into
// a validated dv_msg_t, and builds headers with dv_msgw_t. Field accessors
// check presence, type and size, and say what was wrong in err, so broker and
// worker answer a bad peer with a precise `error` message.
#ifndef DV_PROTO_H
#define DV_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dv_err.h"
#include "dv_model.h"
#include "dv_tensor.h"

struct msgpack_object; // <msgpack.h>, for dv_msg_get

#define DV_PROTOCOL_MAJOR 1 // a peer with another major is refused
#define DV_PROTOCOL_MINOR 9 // minors only add

// Limits (announced to peers in `welcome`; docs/PROTOCOL.md, Limits).
#define DV_MAX_HEADER_BYTES 65536             // frame 0
#define DV_MAX_FRAMES       8                 // payload frames per message
#define DV_MAX_FRAME_BYTES  ((size_t)1 << 28) // one frame (ZMQ_MAXMSGSIZE)
#define DV_MAX_INFER_ROWS   1000000           // rows in one infer input
#define DV_MAX_WIRE_NAME    128               // queue/model names
#define DV_MAX_SLEEP_MS     3600000           // a `sleep` job's length
#define DV_MAX_KEY_BYTES    256               // an idempotency key
// Dynamic batching (per model, `model_config`): rows one forward pass may
// stack by default — 256 rows is where a dense layer's sgemm reaches its
// per-row cost on a CPU (bench/ml), so bigger batches add latency without
// adding throughput — and the longest a model may ask a batch to wait for
// more (a second: past that it is a queue, not a batch).
#define DV_BATCH_ROWS_DEFAULT 256
#define DV_MAX_BATCH_DELAY_US 1000000
// A list of names (an infer result's classes) longer than this, packed,
// travels as a payload frame, not in the header: 10,000 classes of long
// names would not fit DV_MAX_HEADER_BYTES, and a result that cannot be sent
// would leave its job running forever.
#define DV_MAX_INLINE_LIST_BYTES 16384
// An evaluate result's confusion matrix stays in the header up to this many
// classes (32 x 32 counts, at most 9 bytes each: 9 KiB); a larger one is a
// u32 payload frame (PROTOCOL.md, evaluate).
#define DV_MAX_INLINE_CONFUSION 32

// XX(NAME, "wire name"). Names are unique across both sockets.
#define DV_MSG_MAP(XX)                                                         \
    XX(HELLO, "hello")                                                         \
    XX(WELCOME, "welcome")                                                     \
    XX(SUBMIT, "submit")                                                       \
    XX(ACCEPTED, "accepted")                                                   \
    XX(RESULT, "result")                                                       \
    XX(JOB_GET, "job_get")                                                     \
    XX(JOB, "job")                                                             \
    XX(RESULT_GET, "result_get")                                               \
    XX(MODEL_PUSH, "model_push")                                               \
    XX(MODEL_LIST, "model_list")                                               \
    XX(MODELS, "models")                                                       \
    XX(MODEL_GET, "model_get")                                                 \
    XX(MODEL, "model")                                                         \
    XX(MODEL_RM, "model_rm")                                                   \
    XX(WORKERS, "workers")                                                     \
    XX(WORKER_LIST, "worker_list")                                             \
    XX(STATUS, "status")                                                       \
    XX(STATUS_INFO, "status_info")                                             \
    XX(OK, "ok")                                                               \
    XX(ERROR, "error")                                                         \
    XX(PING, "ping")                                                           \
    XX(PONG, "pong")                                                           \
    XX(REGISTER, "register")                                                   \
    XX(RUN, "run")                                                             \
    XX(DONE, "done")                                                           \
    XX(FETCH_MODEL, "fetch_model")                                             \
    XX(MODEL_DATA, "model_data")                                               \
    XX(HEARTBEAT, "heartbeat")                                                 \
    XX(BYE, "bye")                                                             \
    XX(JOB_CANCEL, "job_cancel")                                               \
    XX(CANCEL, "cancel")                                                       \
    XX(JOB_LIST, "job_list")                                                   \
    XX(JOBS, "jobs")                                                           \
    XX(DEAD_LIST, "dead_list")                                                 \
    XX(DEAD_JOBS, "dead_jobs")                                                 \
    XX(DEAD_REQUEUE, "dead_requeue")                                           \
    XX(DEAD_PURGE, "dead_purge")                                               \
    XX(FOLLOW, "follow")                                                       \
    XX(ACK, "ack")                                                             \
    XX(UNFOLLOW, "unfollow")                                                   \
    XX(MODEL_ALIAS, "model_alias")                                             \
    XX(PRELOAD, "preload")                                                     \
    XX(PROGRESS, "progress")                                                   \
    XX(MODEL_GC, "model_gc")                                                   \
    XX(DATASET_PUSH, "dataset_push")                                           \
    XX(DATASET_LIST, "dataset_list")                                           \
    XX(DATASETS, "datasets")                                                   \
    XX(DATASET_GET, "dataset_get")                                             \
    XX(DATASET, "dataset")                                                     \
    XX(DATASET_RM, "dataset_rm")                                               \
    XX(FETCH_DATASET, "fetch_dataset")                                         \
    XX(DATASET_DATA, "dataset_data")                                           \
    XX(CHECKPOINT, "checkpoint")                                               \
    XX(ADMIN_RELOAD, "admin_reload")                                           \
    XX(AUDIT_LIST, "audit_list")                                               \
    XX(AUDIT, "audit")                                                         \
    XX(DATASET_SHARE, "dataset_share")                                         \
    XX(MODEL_CONFIG, "model_config")                                           \
    XX(RUN_BATCH, "run_batch")                                                 \
    XX(DONE_BATCH, "done_batch")                                               \
    XX(SUBMIT_MANY, "submit_many")                                             \
    XX(RESULTS, "results")                                                     \
    XX(ACCEPTED_MANY, "accepted_many")                                         \
    XX(RELEASE, "release")                                                     \
    XX(CLUSTER, "cluster")                                                     \
    XX(MEMBER_ADD, "member_add")                                               \
    XX(MEMBER_REMOVE, "member_remove")                                         \
    XX(CONSUMER_LIST, "consumer_list")                                         \
    XX(CONSUMERS, "consumers")                                                 \
    XX(CONSUMER_FORGET, "consumer_forget")

typedef enum {
#define XX(name, text) DV_MSG_##name,
    DV_MSG_MAP(XX)
#undef XX
        DV_MSG_COUNT_
} dv_msg_type_t;

// Wire name of a type ("submit"); "unknown" when out of range.
const char *dv_msg_name(dv_msg_type_t type);

// A payload frame: borrowed bytes (the caller keeps the zmq_msg_t alive).
typedef struct {
    const uint8_t *data; // frame bytes
    size_t len;          // their count
} dv_frame_t;

// A received message. Borrows the header bytes and frames given to
// dv_msg_decode: they must outlive it.
typedef struct dv_msg dv_msg_t;

// Decode and validate the common part of a message: header size, frame
// count, msgpack well-formedness, "v" (major must match: DV_EVERSION
// otherwise), "t" (a known type: DV_EFORMAT otherwise), "rid". Returns 0 and
// *out (free with dv_msg_destroy), or DV_EMSGSIZE/DV_EFORMAT/DV_EVERSION with
// a reason. *rid_out (may be NULL) gets the request id whenever it could be
// read, even on failure, so the error reply can carry it.
int dv_msg_decode(dv_msg_t **out,
                  const uint8_t *header,
                  size_t header_len,
                  const dv_frame_t *frames,
                  size_t n_frames,
                  uint64_t *rid_out,
                  dv_error_t *err);

void dv_msg_destroy(dv_msg_t **self_p);

// A message made of one map inside parent's header — a `submit_many`
// request (1.4) — read like a message of its own: type as given, "rid"
// from the map (required, non-zero: each request is answered on its own),
// parent's minor version, frames borrowed. Borrows parent's decoded
// header: destroy the view first. Returns 0 and *out (dv_msg_destroy), or
// DV_EFORMAT.
int dv_msg_view(dv_msg_t **out,
                const dv_msg_t *parent,
                const struct msgpack_object *map,
                dv_msg_type_t type,
                const dv_frame_t *frames,
                size_t n_frames,
                dv_error_t *err);

// dv_msg_view for each of the n maps of maps[] (a submit_many's requests),
// all in one block: views[i] reads maps[i] with the one frame &frames[i].
// Returns 0, or the first refusal's DV_EFORMAT with *bad its index. Either
// way free them with dv_msg_views_free (never one by one: dv_msg_destroy).
int dv_msg_views(dv_msg_t **views,
                 const dv_msg_t *parent,
                 const struct msgpack_object *maps,
                 size_t n,
                 dv_msg_type_t type,
                 const dv_frame_t *frames,
                 size_t *bad,
                 dv_error_t *err);
void dv_msg_views_free(dv_msg_t **views, size_t n);

dv_msg_type_t dv_msg_type(const dv_msg_t *self);
uint64_t dv_msg_rid(const dv_msg_t *self);
// Sender's minor version (they may send keys this side does not know).
unsigned dv_msg_minor(const dv_msg_t *self);
size_t dv_msg_n_frames(const dv_msg_t *self);
// Payload frame i, 1-based as in headers; NULL when out of range. Borrowed.
const dv_frame_t *dv_msg_frame(const dv_msg_t *self, size_t i);

// True when the header has key (of any type).
bool dv_msg_has(const dv_msg_t *self, const char *key);

// Copy string field key into buf (NUL-terminated). Returns 0, DV_EFORMAT
// (missing, not a string, holds NUL), DV_EMSGSIZE (does not fit in size).
int dv_msg_str(const dv_msg_t *self,
               const char *key,
               char *buf,
               size_t size,
               dv_error_t *err);

// Unsigned field key. Returns 0, or DV_EFORMAT when missing or not a
// non-negative integer.
int dv_msg_uint(const dv_msg_t *self,
                const char *key,
                uint64_t *out,
                dv_error_t *err);

// Like dv_msg_uint, but an absent key gives dflt.
int dv_msg_uint_or(const dv_msg_t *self,
                   const char *key,
                   uint64_t dflt,
                   uint64_t *out,
                   dv_error_t *err);

// Boolean field key, absent: dflt. Returns 0, or DV_EFORMAT when present
// and not a boolean.
int dv_msg_bool_or(const dv_msg_t *self,
                   const char *key,
                   bool dflt,
                   bool *out,
                   dv_error_t *err);

// Signed field key, absent: dflt. Returns 0, or DV_EFORMAT when not an
// integer in int64 range.
int dv_msg_int_or(const dv_msg_t *self,
                  const char *key,
                  int64_t dflt,
                  int64_t *out,
                  dv_error_t *err);

// A training request's hyper-parameters, field key: a map {algo: str,
// scale?: str, epochs?, batch?, patience?, seed?: uint, lr?, l2?, tol?:
// float, hidden?: [uint]}; absent fields take dv_hyper_default(algo).
// Returns 0 with *h checked (dv_hyper_check), or DV_EFORMAT/DV_EINVAL
// naming the field.
int dv_msg_hyper(const dv_msg_t *self,
                 const char *key,
                 dv_hyper_t *h,
                 dv_error_t *err);

// Borrowed bin field key of exactly want_len bytes (any length when

// want_len is 0). Returns 0 or DV_EFORMAT.
int dv_msg_bin(const dv_msg_t *self,
               const char *key,
               const uint8_t **data,
               size_t *len,
               size_t want_len,
               dv_error_t *err);

// Error map {"name", "text"} (in `error` and failed `result`/`done`
// messages): *code gets the DV_E* for name (DV_EFORMAT if unknown — the name
// is kept in text), text is copied. Returns 0 or DV_EFORMAT.
int dv_msg_error(
    const dv_msg_t *self, int *code, char *text, size_t size, dv_error_t *err);

// Tensor field key (a {frame, dtype, shape} map) into a new tensor (caller
// owns it). Returns 0, or DV_EFORMAT (bad map, frame index out of range),
// DV_EDTYPE (dtype other than "f32"), DV_EMSGSIZE (rows over max_rows, cols
// over DV_MAX_COLUMNS), DV_ESHAPE (frame size != rows * cols * 4),
// DV_ENOMEM. Values are not checked for NaN here (models do that).
int dv_msg_tensor(const dv_msg_t *self,
                  const char *key,
                  size_t max_rows,
                  dv_tensor_t **out,
                  dv_error_t *err);

// Like dv_msg_tensor, without copying: the checked frame (borrowed from the
// message) and its shape. Same errors.
int dv_msg_tensor_desc(const dv_msg_t *self,
                       const char *key,
                       size_t max_rows,
                       const dv_frame_t **frame,
                       size_t *rows,
                       size_t *cols,
                       dv_error_t *err);

// A new rows x cols tensor from a frame of exactly rows * cols * 4
// little-endian float32 bytes (checked by dv_msg_tensor_desc). Returns 0 and
// *out (caller owns it) or DV_ENOMEM/DV_EMSGSIZE.
int dv_tensor_from_frame(const dv_frame_t *f,
                         size_t rows,
                         size_t cols,
                         dv_tensor_t **out,
                         dv_error_t *err);

// Array-of-strings field key, copied: *out gets n strings (free with
// dv_strs_free). The array may instead be in a payload frame, the field
// then being {frame: i} (dv_msgw_strs_or_frame). An absent key gives 0
// strings. Returns 0, DV_EFORMAT (not
// an array of NUL-free strings of at most max_len bytes) or DV_EMSGSIZE
// (more than max_n).
int dv_msg_strs(const dv_msg_t *self,
                const char *key,
                size_t max_n,
                size_t max_len,
                char ***out,
                size_t *n,
                dv_error_t *err);

// The same in one allocation: the pointers, then the strings; free(*out)
// releases them all (not dv_strs_free). For lists made per message on a
// hot path (a result's classes: one block, not one malloc per class).
int dv_msg_strs_packed(const dv_msg_t *self,
                       const char *key,
                       size_t max_n,
                       size_t max_len,
                       char ***out,
                       size_t *n,
                       dv_error_t *err);

// The same for an object already in hand (an array nested in a map); what
// names it in errors.
int dv_strs_from_obj(const struct msgpack_object *o,
                     const char *what,
                     size_t max_n,
                     size_t max_len,
                     char ***out,
                     size_t *n,
                     dv_error_t *err);

// n strings as one msgpack array (a payload frame's bytes). Caller frees.
uint8_t *dv_strs_pack(const char *const *values, size_t n, size_t *len);

// Free n strings from dv_msg_strs; *v_p = NULL. NULL-safe.
void dv_strs_free(char ***v_p, size_t n);

// Field key as a decoded msgpack object (borrowed; NULL when absent), for
// nested replies (model and worker lists) that typed accessors don't cover.
// Read it with dv_msgpack.h's checked readers.
const struct msgpack_object *dv_msg_get(const dv_msg_t *self, const char *key);
// The whole header map (borrowed).
const struct msgpack_object *dv_msg_root(const dv_msg_t *self);
// How deep the header's arrays and maps nest, its map counted (a view: its
// parent's). At most DV_MAX_MSGPACK_DEPTH: what any decode takes.
size_t dv_msg_depth(const dv_msg_t *self);
// 0, or DV_EFORMAT when the header nests deeper than
// DV_MAX_PEER_MSGPACK_DEPTH: the broker's check on what clients and workers
// send, since it passes their fields on a few levels deeper.
int dv_msg_check_peer_depth(const dv_msg_t *self, dv_error_t *err);

// A message header under construction. Fields are written in call order;
// the writer counts them, so no count is needed up front.
typedef struct dv_msgw dv_msgw_t;

// Start a header of type with request id rid. Never NULL.
dv_msgw_t *dv_msgw_new(dv_msg_type_t type, uint64_t rid);
void dv_msgw_destroy(dv_msgw_t **self_p);
void dv_msgw_str(dv_msgw_t *self, const char *key, const char *value);
// Array of n strings.
void dv_msgw_strs(dv_msgw_t *self,
                  const char *key,
                  const char *const *values,
                  size_t n);
// Field key holding n strings: inline when they pack into at most
// DV_MAX_INLINE_LIST_BYTES, else {frame: frame} and *out gets the packed
// array (caller frees out->data) to send as that payload frame; returns
// whether it did. dv_msg_strs reads either form.
bool dv_msgw_strs_or_frame(dv_msgw_t *self,
                           const char *key,
                           const char *const *values,
                           size_t n,
                           size_t frame,
                           dv_frame_t *out);

// Nested values: dv_msgw_key counts one field whose value the dv_msgw_v_*
// calls then write (a map of n takes n key/value pairs of v_* calls, an
// array of n takes n values). The caller keeps the counts right.
void dv_msgw_key(dv_msgw_t *self, const char *key);
void dv_msgw_v_str(dv_msgw_t *self, const char *value);
void dv_msgw_v_uint(dv_msgw_t *self, uint64_t value);
void dv_msgw_v_int(dv_msgw_t *self, int64_t value);
void dv_msgw_v_bool(dv_msgw_t *self, bool value);
void dv_msgw_v_double(dv_msgw_t *self, double value);
void dv_msgw_v_bin(dv_msgw_t *self, const void *data, size_t len);
void dv_msgw_v_array(dv_msgw_t *self, size_t n);
void dv_msgw_v_map(dv_msgw_t *self, size_t n);
void dv_msgw_uint(dv_msgw_t *self, const char *key, uint64_t value);
void dv_msgw_double(dv_msgw_t *self, const char *key, double value);
// A copy of a decoded msgpack value, as a value (inside a container).
void dv_msgw_v_obj(dv_msgw_t *self, const struct msgpack_object *value);
// Field key holding a copy of a decoded msgpack value (a relayed map).
void dv_msgw_obj(dv_msgw_t *self,
                 const char *key,
                 const struct msgpack_object *value);
// Float field key (an integer is accepted too). Returns 0 or DV_EFORMAT.
int dv_msg_double(const dv_msg_t *self,
                  const char *key,
                  double *out,
                  dv_error_t *err);
void
dv_msgw_bin(dv_msgw_t *self, const char *key, const void *data, size_t len);
// A whole `error` reply header: {rid, job (when nonzero), error: {name,
// text}}. Caller owns it.
dv_msgw_t *
dv_msgw_error_reply(uint64_t rid, uint64_t job, int code, const char *text);
// {"name": dv_err_name(code), "text": text}
void
dv_msgw_error(dv_msgw_t *self, const char *key, int code, const char *text);
// Metrics as a map: {task: str, rows: uint, and the figures of the task
// (regression: mse, mae, r2; classification: n_classes, accuracy,
// precision_macro, recall_macro, f1_macro, log_loss, and for two classes
// precision, recall, f1 of class 1) as float64, confusion: [uint] (k x k,
// row-major)}.
void dv_msgw_metrics(dv_msgw_t *self, const char *key, const void *metrics);
// The confusion matrix of metrics (a dv_metrics_t) with more than
// DV_MAX_INLINE_CONFUSION classes, which dv_msgw_metrics leaves out of the
// header: k x k u32 counts, little-endian, row-major (rows: true class) —
// a payload frame described by {frame, dtype: "u32", shape: [k, k]}. NULL
// (and *len 0) when it is small enough to be inline, or too big for a frame
// (over 8,192 classes). Caller frees.
uint8_t *dv_confusion_frame(const void *metrics, size_t *len);
// Hyper-parameters as the map dv_msg_hyper reads (every field written).
void dv_msgw_hyper(dv_msgw_t *self, const char *key, const dv_hyper_t *h);
// A tensor map pointing at payload frame `frame` (1-based) holding rows x
// cols float32; dv_frame_from_tensor gives the frame bytes.
void dv_msgw_tensor(
    dv_msgw_t *self, const char *key, size_t frame, size_t rows, size_t cols);

// The fields written so far, without the common keys: n_fields key/value
// pairs packed back to back (borrowed). With dv_msgw_raw this lets a relay
// keep a fragment of fields and splice it into another header later.
const uint8_t *
dv_msgw_body(const dv_msgw_t *self, size_t *len, size_t *n_fields);
// Append one pre-packed msgpack value (after dv_msgw_key or inside a
// container): the bytes are trusted to hold exactly one object.
void dv_msgw_v_raw(dv_msgw_t *self, const void *data, size_t len);
// Drop the values written after the body held len bytes (a length from
// dv_msgw_body, taken since the last field key): what a list reply that
// found its item too big takes back (broker/dv_page).
void dv_msgw_v_cut(dv_msgw_t *self, size_t len);
// Append n_fields pre-packed key/value pairs (from dv_msgw_body).
void
dv_msgw_raw(dv_msgw_t *self, size_t n_fields, const void *data, size_t len);

// The finished header. Borrowed: valid until the writer is destroyed; no
// field may be added after this call.
const uint8_t *dv_msgw_bytes(dv_msgw_t *self, size_t *len);
// Name protocol 1.minor in "v" instead of this side's DV_PROTOCOL_MINOR
// (before dv_msgw_bytes): a peer playing an older one, as tests do.
void dv_msgw_set_minor(dv_msgw_t *self, unsigned minor);

// Whether a rows x cols float32 tensor fits one frame (DV_MAX_FRAME_BYTES):
// 0, or DV_EMSGSIZE naming the numbers and what it is ("output of model
// m@3"). Checked before such a tensor is computed: an infer request whose
// answer could never be sent is refused at submit, and again by the worker
// before it allocates the output.
int dv_frame_check(size_t rows, size_t cols, const char *what, dv_error_t *err);

// The little-endian float32 bytes of t, as a tensor payload frame. Caller
// frees the result (free()); *len gets rows * cols * 4.
uint8_t *dv_frame_from_tensor(const dv_tensor_t *t, size_t *len);

// n floats to/from their wire form (little-endian float32): a plain copy on
// a little-endian host, byte by byte elsewhere. dst holds n * 4 bytes / n
// floats.
void dv_floats_to_wire(uint8_t *dst, const float *src, size_t n);
void dv_floats_from_wire(float *dst, const uint8_t *src, size_t n);

#endif
