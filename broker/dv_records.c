// dv_records — decoders of the broker's store records (layouts in
// dv_records.h; the encoders are in dv_broker.c).
//
// Every decoder reads a length before the bytes it announces, checks it
// against what is left of the record and against the limit of what it
// fills, and only then copies. Strings are copied into fixed buffers sized
// by those limits and NUL-terminated; bulk bytes (payloads, frames, nested
// records) are borrowed. Packed msgpack fields that the broker splices into
// headers as they are (a train job's spec, a result's extra fields) are
// walked with dv_msgpack_check first, so a damaged record cannot make the
// broker send a broken header or unpack hostile counts.
#include "dv_records.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_le.h"
#include "dv_mem.h"
#include "dv_msgpack.h"

// Copy n bytes at p into buf (of more than n bytes) as a C string.
static void
copy_text(char *buf, const uint8_t *p, size_t n)
{
    memcpy(buf, p, n);
    buf[n] = '\0';
}

// copy_text for a name (queue, model, worker, consumer, key): false when
// it holds a NUL byte, which would silently cut it to another name ("" or
// a prefix). The broker never writes one: every name is checked first.
static bool
copy_name(char *buf, const uint8_t *p, size_t n)
{
    copy_text(buf, p, n);
    return memchr(p, '\0', n) == NULL;
}

// Check that p[0..len) holds exactly n well-formed msgpack key/value pairs
// (a map's body): checked as the map they become once spliced into a
// header. Returns 0, DV_EFORMAT / DV_EMSGSIZE naming what, or DV_ENOMEM.
static int
fields_check(
    const uint8_t *p, size_t len, size_t n, const char *what, dv_error_t *err)
{
    uint8_t *map = dv_try_malloc(len + 5, 1);
    if (!map) {
        return dv_errorf(err, DV_ENOMEM, "%s: no memory for %zu bytes", what,
                         len + 5);
    }
    map[0] = 0xdf; // map32, big-endian count
    for (int i = 0; i < 4; i++) {
        map[1 + i] = (uint8_t)(n >> (8 * (3 - i)));
    }
    memcpy(map + 5, p, len);
    int rc = dv_msgpack_check(map, len + 5, what, err);
    free(map);
    return rc;
}

// fields_check for record rec (id): 0, DV_ENOMEM, or DV_EFORMAT saying
// that its part (`desc`) is damaged and why.
static int
fields_damaged(const uint8_t *p,
               size_t len,
               size_t n,
               const char *what,
               const char *rec,
               unsigned long long id,
               const char *desc,
               dv_error_t *err)
{
    dv_error_t why = {0};
    int rc = fields_check(p, len, n, what, &why);
    if (rc) {
        return dv_errorf(err, rc == DV_ENOMEM ? rc : DV_EFORMAT,
                         "%s %llu: %s damaged: %s", rec, id, desc, why.text);
    }
    return 0;
}

int
dv_rec_job_decode(dv_rec_job_t *out,
                  uint64_t id,
                  const uint8_t *p,
                  size_t len,
                  dv_error_t *err)
{
    memset(out, 0, sizeof *out);
    unsigned long long idl = (unsigned long long)id;
    size_t head = len >= 1 && p[0] == 1 ? DV_REC_JOB_HEAD_V1 : DV_REC_JOB_HEAD;
    if (len < head || (p[0] != 1 && p[0] != DV_REC_JOB_FORMAT) ||
        p[1] >= DV_REC_KIND_COUNT_ || (p[0] == 1 && p[1] > 1)) {
        return dv_errorf(err, DV_EFORMAT, "job %llu: unknown record format",
                         idl);
    }
    uint64_t qlen = dv_le_get32(p + 20), mlen = dv_le_get32(p + 24);
    uint64_t plen = dv_le_get64(p + 28);
    if (qlen == 0 || qlen > DV_MAX_WIRE_NAME || mlen > DV_MAX_WIRE_NAME ||
        plen > DV_MAX_FRAME_BYTES || head + qlen + mlen + plen != len) {
        return dv_errorf(err, DV_EFORMAT, "job %llu: record lengths disagree",
                         idl);
    }
    out->kind = (dv_rec_kind_t)p[1];
    out->spec = (p[2] & 1) || out->kind == DV_REC_KIND_TRAIN;
    out->max_attempts = dv_le_get32(p + 4);
    out->model_version = dv_le_get32(p + 8);
    out->rows = dv_le_get32(p + 12);
    out->cols = dv_le_get32(p + 16);
    memcpy(out->model_sha, p + 36, 32);
    if (!copy_name(out->queue, p + head, (size_t)qlen) ||
        !copy_name(out->model, p + head + qlen, (size_t)mlen)) {
        return dv_errorf(err, DV_EFORMAT,
                         "job %llu: a NUL byte in its queue or model name",
                         idl);
    }
    out->payload = p + head + qlen + mlen;
    out->payload_len = (size_t)plen;
    if (head == DV_REC_JOB_HEAD) {
        out->has_sched = true;
        out->priority = (int32_t)dv_le_get32(p + 68);
        out->timeout_ms = dv_le_get32(p + 72);
        out->backoff_ms = dv_le_get32(p + 76);
        out->sleep_ms = dv_le_get32(p + 80);
        out->submit_unix = dv_le_get64(p + 84);
        out->deadline_unix = dv_le_get64(p + 92);
    }
    if (out->spec) {
        // The spec's fields go into `run` headers as they are.
        const uint8_t *s = out->payload;
        size_t nf = plen >= 6 ? dv_le_get16(s) : 0;
        size_t sl = plen >= 6 ? dv_le_get32(s + 2) : 0;
        if (plen < 6 || sl > plen - 6) {
            return dv_errorf(err, DV_EFORMAT,
                             "job %llu: training spec damaged (%zu of %llu "
                             "payload bytes)",
                             idl, sl, (unsigned long long)plen);
        }
        return fields_damaged(s + 6, sl, nf, "spec", "job", idl,
                              "training spec", err);
    }
    return 0;
}

int
dv_rec_attempts_decode(dv_rec_attempts_t *out,
                       uint64_t id,
                       const uint8_t *p,
                       size_t len,
                       uint32_t max_errors,
                       dv_error_t *err)
{
    memset(out, 0, sizeof *out);
    unsigned long long idl = (unsigned long long)id;
    if (len == 4) {
        out->attempts = dv_le_get32(p);
        out->count_only = true;
        return 0;
    }
    if (len < 12 || dv_le_get32(p + 8) > max_errors) {
        return dv_errorf(err, DV_EFORMAT,
                         "job %llu: attempts record of %zu bytes, or over %u "
                         "failed attempts",
                         idl, len, max_errors);
    }
    uint32_t n = dv_le_get32(p + 8);
    dv_rec_attempt_t *errors = dv_calloc(n ? n : 1, sizeof *errors);
    const uint8_t *q = p + 12, *end = p + len;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t lens = end - q >= 20 ? dv_le_get32(q + 16) : 0;
        uint32_t wl = lens & 0xffff, tl = lens >> 16;
        if (end - q < 20 || wl > DV_MAX_WIRE_NAME || tl >= DV_ERROR_TEXT_MAX ||
            (size_t)(end - q) < 20 + (size_t)wl + tl ||
            !copy_name(errors[i].worker, q + 20, wl)) {
            free(errors);
            return dv_errorf(err, DV_EFORMAT,
                             "job %llu: failed attempt %u of its attempts "
                             "record is damaged",
                             idl, i + 1);
        }
        errors[i].attempt = dv_le_get32(q);
        errors[i].code = (int32_t)dv_le_get32(q + 4);
        errors[i].unix_ms = dv_le_get64(q + 8);
        copy_text(errors[i].text, q + 20 + wl, tl);
        q += 20 + wl + tl;
    }
    out->attempts = dv_le_get32(p);
    out->lost = dv_le_get32(p + 4);
    out->n_errors = n;
    out->errors = errors;
    return 0;
}

static const char *const s_kind_names[] = {
#define XX(name, text) text,
    DV_REC_KIND_MAP(XX)
#undef XX
};

const char *
dv_rec_kind_name(dv_rec_kind_t kind)
{
    return (unsigned)kind < DV_REC_KIND_COUNT_ ? s_kind_names[kind] : "";
}

dv_rec_kind_t
dv_rec_kind_code(const char *name)
{
    for (int i = 0; i < DV_REC_KIND_COUNT_; i++) {
        if (strcmp(name, s_kind_names[i]) == 0) {
            return (dv_rec_kind_t)i;
        }
    }
    return DV_REC_KIND_ECHO;
}

int
dv_rec_result_decode(dv_rec_result_t *out,
                     uint64_t id,
                     const uint8_t *p,
                     size_t len,
                     dv_error_t *err)
{
    memset(out, 0, sizeof *out);
    unsigned long long idl = (unsigned long long)id;
    size_t n = len >= DV_REC_RESULT_HEAD ? p[2] : 0;
    if (len < DV_REC_RESULT_HEAD + 4 * n || p[0] != DV_REC_RESULT_FORMAT ||
        n > DV_MAX_FRAMES) {
        return dv_errorf(err, DV_EFORMAT, "result %llu: unknown record format",
                         idl);
    }
    uint64_t tlen = dv_le_get32(p + 28), wlen = dv_le_get32(p + 32);
    uint64_t elen = dv_le_get32(p + 12);
    uint64_t total = DV_REC_RESULT_HEAD + 4 * n + tlen + wlen;
    for (size_t i = 0; i < n; i++) {
        out->frames[i].len = dv_le_get32(p + DV_REC_RESULT_HEAD + 4 * i);
        total += out->frames[i].len;
    }
    // The stream trailer: seq and queue.
    if (p[3] & 1) {
        uint64_t at = total + elen;
        uint64_t ql = at + 12 <= len ? dv_le_get32(p + at + 8) : 0;
        if (at + 12 > len || ql == 0 || ql > DV_MAX_WIRE_NAME ||
            at + 12 + ql != len ||
            !copy_name(out->queue, p + at + 12, (size_t)ql)) {
            return dv_errorf(err, DV_EFORMAT,
                             "result %llu: stream position damaged", idl);
        }
        out->streamed = true;
        out->seq = dv_le_get64(p + at);
        len = (size_t)at; // the rest is checked as before
    }
    if (total + elen != len || wlen > DV_MAX_WIRE_NAME ||
        tlen >= DV_REC_TEXT_MAX) {
        return dv_errorf(err, DV_EFORMAT,
                         "result %llu: record lengths disagree", idl);
    }
    out->done = p[1] != 0;
    out->code = (int)dv_le_get32(p + 4);
    out->attempts = dv_le_get32(p + 8);
    out->finished_unix = dv_le_get64(p + 20);
    out->kind = p[18] <= DV_REC_KIND_COUNT_ ? p[18] : 0; // 0 before 1.5
    const uint8_t *q = p + DV_REC_RESULT_HEAD + 4 * n;
    copy_text(out->text, q, (size_t)tlen);
    q += tlen;
    if (!copy_name(out->worker, q, (size_t)wlen)) {
        return dv_errorf(err, DV_EFORMAT,
                         "result %llu: a NUL byte in its worker name", idl);
    }
    q += wlen;
    for (size_t i = 0; i < n; i++) {
        out->frames[i].data = q;
        q += out->frames[i].len;
    }
    out->n_frames = n;
    if (elen) {
        // Extra fields go into `result` headers as they are.
        out->extra = q;
        out->extra_len = (size_t)elen;
        out->extra_fields = dv_le_get16(p + 16);
        return fields_damaged(q, out->extra_len, out->extra_fields, "extra",
                              "result", idl, "extra fields", err);
    }
    return 0;
}

int
dv_rec_dead_decode(dv_rec_dead_t *out,
                   uint64_t id,
                   const uint8_t *p,
                   size_t len,
                   dv_error_t *err)
{
    memset(out, 0, sizeof *out);
    size_t tl = len >= 16 ? dv_le_get32(p + 12) : 0;
    size_t jl = len >= 20 && tl <= len - 20 ? dv_le_get32(p + 16 + tl) : 0;
    if (len < 20 || tl >= DV_REC_TEXT_MAX || tl > len - 20 ||
        jl > len - 20 - tl) {
        return dv_errorf(err, DV_EFORMAT, "dead letter %llu: bad record",
                         (unsigned long long)id);
    }
    out->unix_ms = dv_le_get64(p);
    out->code = (int)dv_le_get32(p + 8);
    copy_text(out->text, p + 16, tl);
    out->job = p + 20 + tl;
    out->job_len = jl;
    out->attempts = p + 20 + tl + jl;
    out->attempts_len = len - 20 - tl - jl;
    return 0;
}

// Records of a fixed head (u64, u32 queue length), a queue name, in format
// 2 (DV_REC_NAMED) a middle name of 1..max_middle bytes, and a last name
// of 1..max_last bytes (key and cursor records).
static int
three_names(const uint8_t *p,
            size_t len,
            char *queue,
            char *middle,
            size_t max_middle,
            char *last,
            size_t max_last)
{
    uint32_t word = len >= 12 ? dv_le_get32(p + 8) : 0;
    bool named = (word & DV_REC_NAMED) != 0;
    size_t head = named ? 16 : 12;
    size_t ql = word & ~DV_REC_NAMED;
    size_t ml = named && len >= 16 ? dv_le_get32(p + 12) : 0;
    middle[0] = '\0';
    if (len < head || ql == 0 || ql > DV_MAX_WIRE_NAME || ml > max_middle ||
        (named && ml == 0) || len - head <= ql + ml ||
        len - head - ql - ml > max_last || !copy_name(queue, p + head, ql) ||
        (ml && !copy_name(middle, p + head + ql, ml)) ||
        !copy_name(last, p + head + ql + ml, len - head - ql - ml)) {
        return DV_EFORMAT;
    }
    return 0;
}

int
dv_rec_key_decode(dv_rec_key_t *out,
                  uint64_t id,
                  const uint8_t *p,
                  size_t len,
                  dv_error_t *err)
{
    memset(out, 0, sizeof *out);
    if (three_names(p, len, out->queue, out->scope, DV_REC_SCOPE_MAX, out->key,
                    DV_MAX_KEY_BYTES) != 0) {
        return dv_errorf(err, DV_EFORMAT, "idempotency key %llu: bad record",
                         (unsigned long long)id);
    }
    out->unix_ms = dv_le_get64(p);
    return 0;
}

int
dv_rec_cursor_decode(dv_rec_cursor_t *out,
                     uint64_t id,
                     const uint8_t *p,
                     size_t len,
                     dv_error_t *err)
{
    memset(out, 0, sizeof *out);
    if (three_names(p, len, out->queue, out->owner, DV_KEY_ID_MAX,
                    out->consumer, DV_MAX_WIRE_NAME) != 0) {
        return dv_errorf(err, DV_EFORMAT, "cursor %llu: bad record",
                         (unsigned long long)id);
    }
    out->acked = dv_le_get64(p);
    return 0;
}
