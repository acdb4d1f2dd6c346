// dv_records — decoding of the broker's store records: what recovery reads
// back from LMDB (dv_store) after a restart — jobs, attempts, kept results,
// dead letters, idempotency keys and result stream cursors.
//
// Records are written by dv_broker.c (dv_jobs_msg_encode, attempts_encode,
// kept_encode, ...) and the store checks their CRC, but the data dir is a
// file on disk like any other: a decoder here trusts no count or length,
// checks every one against the bytes present and the limits before copying,
// and says what was wrong. The functions are pure (bytes in, a plain value
// out), so tests/fuzz drives them directly.
//
// Layouts (all little-endian; the writers in dv_broker.c are the other
// half, and a format change updates both, with a new format byte):
//   job       u8 format (1, 2), u8 kind, u8 flags, u8 0, u32 max_attempts,
//             u32 model version, u32 rows, u32 cols, u32 queue length,
//             u32 model length, u64 payload length, 32 bytes model SHA-256
//             (68 bytes: format 1), then format 2: i32 priority, u32
//             timeout_ms, u32 dv_dead_backoff_ms, u32 sleep_ms, u64 submit
//             time, u64 deadline (100 bytes); then queue, model, payload. A
//             spec payload (flags & 1, every train job): u16 field count, u32
//             spec length, the spec's msgpack fields, then the CSV.
//   attempts  u32 attempts (alone: the older format), u32 lost, u32 n, then
//             n x (u32 attempt, i32 code, u64 time, u32 worker length |
//             text length << 16, worker, text).
//   result    u8 format (1), u8 done, u8 frames, u8 flags, i32 code, u32
//             attempts, u32 extra length, u16 extra field count, u16 0, u64
//             finish time, u32 text length, u32 worker length (36 bytes),
//             u32 per frame, text, worker, frames, extra fields; flags & 1:
//             u64 seq, u32 queue length, queue (its stream).
//   dead      u64 time, i32 code, u32 text length, text, u32 job length, a
//             job record, an attempts record.
//   key       u64 submit time, u32 queue length, queue, idempotency key.
//   cursor    u64 acked seq, u32 queue length, queue, consumer name.
//
// Threads: any; nothing is shared.
#ifndef DV_RECORDS_H
#define DV_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dv_err.h"
#include "dv_keys.h"
#include "dv_proto.h"

#define DV_REC_RESULT_FORMAT 1   // result records
#define DV_REC_JOB_FORMAT    2   // job records: 1 had no scheduling fields
#define DV_REC_JOB_HEAD_V1   68  // a format 1 job record's fixed part
#define DV_REC_JOB_HEAD      100 // a format 2 job record's fixed part
#define DV_REC_RESULT_HEAD   36  // a result record's fixed part
// Longest stored failure text of a result or dead letter: a peer's reason
// (DV_ERROR_TEXT_MAX) with the broker's words around it.
#define DV_REC_TEXT_MAX (DV_ERROR_TEXT_MAX * 4)

// Job kinds; a record stores the index (append only, never reorder).
#define DV_REC_KIND_MAP(XX)                                                    \
    XX(ECHO, "echo")                                                           \
    XX(INFER, "infer")                                                         \
    XX(SLEEP, "sleep")                                                         \
    XX(TRAIN, "train")                                                         \
    XX(EVALUATE, "evaluate")

typedef enum {
#define XX(name, text) DV_REC_KIND_##name,
    DV_REC_KIND_MAP(XX)
#undef XX
        DV_REC_KIND_COUNT_
} dv_rec_kind_t;

// A kind's name ("echo", ...; "" out of range), and the code of a name
// (DV_REC_KIND_ECHO for an unknown one, as records always did).
const char *dv_rec_kind_name(dv_rec_kind_t kind);
dv_rec_kind_t dv_rec_kind_code(const char *name);

// A job record. Strings are copied; payload is borrowed from the record.
typedef struct {
    dv_rec_kind_t kind;               // what it runs
    bool spec;                        // payload = spec + CSV (checked)
    uint32_t max_attempts;            // as stored (0: the default)
    uint32_t model_version;           // infer: the version resolved
    uint32_t rows, cols;              // infer: input shape
    char queue[DV_MAX_WIRE_NAME + 1]; // its queue, never ""
    char model[DV_MAX_WIRE_NAME + 1]; // its model, "" when none
    const uint8_t *payload;           // borrowed from the record
    size_t payload_len;               // bytes at payload
    uint8_t model_sha[32];            // infer: SHA-256 of the model
    bool has_sched;                   // format 2: the fields below are
    int32_t priority;                 //   stored (else zero)
    uint32_t timeout_ms;              // a run longer than this ends it
    uint32_t backoff_ms;              // first retry's delay
    uint32_t sleep_ms;                // a `sleep` job's length
    uint64_t submit_unix;             // wall-clock submit time (ms)
    uint64_t deadline_unix;           // must start by then (ms; 0: none)
} dv_rec_job_t;

// Decode job record id (named in errors) from p[0..len) into *out. Returns
// 0, or DV_EFORMAT: unknown format or kind, lengths that disagree with the
// record's size, a queue name that is empty or over DV_MAX_WIRE_NAME, a
// NUL byte in a name, a payload over DV_MAX_FRAME_BYTES, a damaged
// training spec. (Every decoder here refuses a NUL byte in a name: the
// broker writes none, and one would cut the name to another.)
int dv_rec_job_decode(dv_rec_job_t *out,
                      uint64_t id,
                      const uint8_t *p,
                      size_t len,
                      dv_error_t *err);

// One failed attempt of a job: what went wrong, where, when.
typedef struct {
    uint32_t attempt;                  // 1-based
    int32_t code;                      // DV_E*
    uint64_t unix_ms;                  // when it was recorded
    char worker[DV_MAX_WIRE_NAME + 1]; // "" when no worker was involved
    char text[DV_ERROR_TEXT_MAX];      // the reason
} dv_rec_attempt_t;

// An attempts record.
typedef struct {
    uint32_t attempts;        // dispatches so far
    bool count_only;          // the older 4-byte record: nothing below
    uint32_t lost;            // runs lost with their worker
    uint32_t n_errors;        // entries in errors
    dv_rec_attempt_t *errors; // caller owns (free()); NULL when count_only
} dv_rec_attempts_t;

// Decode an attempts record of job id holding at most max_errors failed
// attempts. Returns 0 and *out (free out->errors), or DV_EFORMAT (too
// short, more than max_errors entries, an entry past the end or with a
// worker over DV_MAX_WIRE_NAME or a text of DV_ERROR_TEXT_MAX or more
// bytes), and then nothing is allocated. Texts are cut at a NUL byte.
int dv_rec_attempts_decode(dv_rec_attempts_t *out,
                           uint64_t id,
                           const uint8_t *p,
                           size_t len,
                           uint32_t max_errors,
                           dv_error_t *err);

// A kept result's record. Frames and extra fields are borrowed from it.
typedef struct {
    bool done;                         // else failed
    int code;                          // its error when failed
    uint32_t attempts;                 // attempts it took
    uint64_t finished_unix;            // when it finished (ms)
    char text[DV_REC_TEXT_MAX];        // failure reason ("" when done)
    char worker[DV_MAX_WIRE_NAME + 1]; // the worker that ran it
    dv_frame_t frames[DV_MAX_FRAMES];  // payload frames (borrowed)
    size_t n_frames;                   // their count
    const uint8_t *extra;              // extra result fields, packed msgpack
    size_t extra_len;                  //   key/value pairs (checked), bytes
    size_t extra_fields;               //   and pairs
    bool streamed;                     // in its queue's result stream:
    uint64_t seq;                      //   its position
    char queue[DV_MAX_WIRE_NAME + 1];  //   and queue ("" when not streamed)
    uint8_t kind;                      // its job's kind + 1 (0: not
                                       //   recorded: an older record)
} dv_rec_result_t;

// Decode result record id. Returns 0 or DV_EFORMAT (unknown format, more
// than DV_MAX_FRAMES frames, lengths that disagree with the record's size,
// a text or name over its limit, extra fields that are not that many
// well-formed msgpack key/value pairs).
int dv_rec_result_decode(dv_rec_result_t *out,
                         uint64_t id,
                         const uint8_t *p,
                         size_t len,
                         dv_error_t *err);

// A dead letter's record: the job and its attempts are records of their
// own, borrowed (decode them with the functions above).
typedef struct {
    uint64_t unix_ms;           // when it died
    int code;                   // its final error
    char text[DV_REC_TEXT_MAX]; // and reason
    const uint8_t *job;         // job record
    size_t job_len;             //   bytes
    const uint8_t *attempts;    // attempts record
    size_t attempts_len;        //   bytes
} dv_rec_dead_t;

// Decode dead-letter record id. Returns 0 or DV_EFORMAT (too short, a text
// over DV_REC_TEXT_MAX, a job record running past the end).
int dv_rec_dead_decode(dv_rec_dead_t *out,
                       uint64_t id,
                       const uint8_t *p,
                       size_t len,
                       dv_error_t *err);

// Key and cursor records: a queue length with this bit set means format 2,
// a u32 length and a middle name (a key's scope, a cursor's owner) follow.
#define DV_REC_NAMED 0x80000000u
// A key record's scope: a CURVE public key in Z85.
#define DV_REC_SCOPE_MAX 40

// An idempotency key's record. Format 1: u64 time, u32 queue length,
// queue, key. Format 2 (scoped): the length has DV_REC_NAMED set, a u32
// scope length follows, then queue, scope, key.
typedef struct {
    uint64_t unix_ms;                 // when the submit was accepted
    char queue[DV_MAX_WIRE_NAME + 1]; // its queue
    char scope[DV_REC_SCOPE_MAX + 1]; // the submitting key ("": format 1)
    char key[DV_MAX_KEY_BYTES + 1];   // the key
} dv_rec_key_t;

// Decode idempotency key record id. Returns 0 or DV_EFORMAT (too short, an
// empty or too long queue, scope or key).
int dv_rec_key_decode(dv_rec_key_t *out,
                      uint64_t id,
                      const uint8_t *p,
                      size_t len,
                      dv_error_t *err);

// A result stream consumer's record.
// Format 1: u64 acked, u32 queue length, queue, consumer. Format 2 (owned):
// the length has DV_REC_NAMED set, a u32 owner length follows, then queue,
// owner (key id), consumer.
typedef struct {
    uint64_t acked;                      // last seq it acknowledged
    char queue[DV_MAX_WIRE_NAME + 1];    // the queue it follows
    char owner[DV_KEY_ID_MAX + 1];       // the key owning it ("": none)
    char consumer[DV_MAX_WIRE_NAME + 1]; // its name
} dv_rec_cursor_t;

// Decode cursor record id. Returns 0 or DV_EFORMAT (too short, an empty or
// too long queue or consumer name).
int dv_rec_cursor_decode(dv_rec_cursor_t *out,
                         uint64_t id,
                         const uint8_t *p,
                         size_t len,
                         dv_error_t *err);

#endif
