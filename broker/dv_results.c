// dv_results — kept results and result streams.
//
// Owns: the kept results (a hash by job id and a FIFO by finish time, kept
// for result_ttl_ms within DV_MAX_KEPT_RESULTS/_BYTES), each queue's result
// stream (kept results by seq), the stream cursors (follow/ack/unfollow) and
// results held until their commit (dv_results_hold/dv_results_send). Their
// store records: DV_STORE_RESULTS, DV_STORE_CURSORS, the seq marks due.
// Handlers: result_get, follow, ack, unfollow.
//
// The model and its references: dv_broker_int.h and dv_broker.c.
#include "dv_results.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "dv_auth.h"
#include "dv_broker_int.h"
#include "dv_catalog.h"
#include "dv_commit.h"
#include "dv_hash.h"
#include "dv_le.h"
#include "dv_limits.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_monitor.h"
#include "dv_msgpack.h"
#include "dv_outq.h"
#include "dv_proto.h"
#include "dv_records.h"
#include "dv_sched.h"
#include "dv_store.h"

// -------------------------------------------------- store records (v1)
//
// Layouts: dv_records.h, which decodes them; the encoders are here.

#define REC_FORMAT  DV_REC_RESULT_FORMAT
#define RESULT_HEAD DV_REC_RESULT_HEAD

// ---------------------------------------------------------- kept results

static size_t
kept_bucket(uint64_t id)
{
    return dv_hash_slot(id, KEPT_BUCKETS);
}

kept_t *
dv_results_kept_find(const dv_broker_t *self, uint64_t id)
{
    for (kept_t *k = self->kept[kept_bucket(id)]; k; k = k->hnext) {
        if (k->id == id) {
            return k;
        }
    }
    return NULL;
}

// Drop a reference; the last one frees k. Runs on libzmq's I/O thread too
// (a shared payload written out after k left the kept results).
static void
kept_release(void *arg)
{
    kept_t *k = arg;
    if (__atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        free(k->text);
        free(k);
    }
}

static void
kept_free(kept_t *k)
{
    kept_release(k);
}

// The payload frames of k as views into its block (frames: DV_MAX_FRAMES).
static size_t
kept_frames(const kept_t *k, dv_frame_t *frames)
{
    const uint8_t *p = (const uint8_t *)k->data + strlen(k->data) + 1;
    for (size_t i = 0; i < k->n_frames; i++) {
        frames[i] = (dv_frame_t){p, k->frame_len[i]};
        p += k->frame_len[i];
    }
    return k->n_frames;
}

// ------------------------------------------------------- result streams
//
// Each queue's kept results, in the order they finished (seq), form its
// stream. Consumers follow it by name with a cursor; the broker pushes up
// to `window` results past the cursor and advances it on `ack`. Results
// leave a stream when they leave the kept results (TTL, bounds): a
// consumer away longer than that misses them (it sees the gap in seq).

// Link k (seq set) into its queue's stream, in seq order (appends, except
// while recovering).
void
dv_results_stream_link(dv_broker_t *self, kept_t *k)
{
    qbytes_t *q = &self->qbytes[k->qidx - 1];
    kept_t *after = q->stream_tail;
    while (after && after->seq > k->seq) {
        after = after->qprev;
    }
    k->qprev = after;
    k->qnext = after ? after->qnext : q->stream_head;
    if (k->qnext) {
        k->qnext->qprev = k;
    } else {
        q->stream_tail = k;
    }
    if (after) {
        after->qnext = k;
    } else {
        q->stream_head = k;
    }
    if (k->seq >= q->next_seq) {
        q->next_seq = k->seq + 1;
    }
}

static void
stream_unlink(dv_broker_t *self, kept_t *k)
{
    if (!k->qidx) {
        return;
    }
    qbytes_t *q = &self->qbytes[k->qidx - 1];
    for (uint32_t i = 0; i < q->n_fol; i++) { // pos matters while followed
        cursor_t *c = &self->cursors[q->fol[i]];
        if (c->pos == k) {
            c->pos = k->qprev; // its successor comes next
        }
    }
    if (k->qprev) {
        k->qprev->qnext = k->qnext;
    } else {
        q->stream_head = k->qnext;
    }
    if (k->qnext) {
        k->qnext->qprev = k->qprev;
    } else {
        q->stream_tail = k->qprev;
    }
}

void
dv_results_kept_prefetch(const dv_broker_t *self, uint64_t id)
{
    __builtin_prefetch(&self->kept[kept_bucket(id)]);
}

// Drop the oldest kept result.
//
// Under load every finished job evicts one result kept ~DV_MAX_KEPT_RESULTS
// jobs earlier, long gone from the cache: perf put this function at ~5% of
// the broker on 1-row serving, nearly all of it waiting for memory (most
// of it walking the hash chain to the result, the last in its chain). The
// chain is doubly linked, so an eviction touches only the result and what
// points at it, and each eviction fetches what the next two will touch:
// the result after next, and what points at the next one (its hpprev is in
// a line the eviction before fetched).
void
dv_results_kept_evict_oldest(dv_broker_t *self)
{
    kept_t *k = self->kept_oldest;
    self->kept_oldest = k->newer;
    if (!self->kept_oldest) {
        self->kept_newest = NULL;
    } else {
        const kept_t *next = self->kept_oldest;
        if (next->newer) {
            __builtin_prefetch(next->newer);
        }
        __builtin_prefetch(next->hpprev);
    }
    *k->hpprev = k->hnext;
    if (k->hnext) {
        k->hnext->hpprev = k->hpprev;
    }
    self->n_kept--;
    self->kept_bytes -= k->bytes;
    if (self->store) {
        dv_store_del(self->store, DV_STORE_RESULTS, k->id);
        dv_commit_arm(self);
    }
    stream_unlink(self, k);
    kept_free(k);
}

// Drop results past their TTL, and the oldest while over the bounds.
void
dv_results_kept_trim(dv_broker_t *self)
{
    uint64_t now = uv_now(&self->loop);
    // An unstored result stays until it went out (results_release trims).
    while (self->kept_oldest && !self->kept_oldest->unstored &&
           (self->n_kept > DV_MAX_KEPT_RESULTS ||
            self->kept_bytes > DV_MAX_KEPT_BYTES ||
            now - self->kept_oldest->at_ms >= self->result_ttl_ms)) {
        dv_results_kept_evict_oldest(self);
    }
}

kept_t *
dv_results_keep(dv_broker_t *self,
                const job_t *j,
                const dv_results_outcome_t *o)
{
    const char *worker = o->worker ? o->worker : "";
    const dv_frame_t *frames = o->frames;
    size_t n_frames = o->n_frames < DV_MAX_FRAMES ? o->n_frames : DV_MAX_FRAMES;
    dv_msgw_t *extra = o->extra;
    size_t name_len = strlen(worker) + 1, bytes = 0;
    for (size_t i = 0; i < n_frames; i++) {
        bytes += frames[i].len;
    }
    size_t extra_len = 0, extra_fields = 0;
    const uint8_t *extra_data =
        extra ? dv_msgw_body(extra, &extra_len, &extra_fields) : NULL;
    kept_t *k = dv_malloc(sizeof *k + name_len + bytes + extra_len);
    memset(k, 0, sizeof *k);
    k->id = j->id;
    k->done = o->done;
    k->code = o->code;
    k->text = o->done ? NULL : dv_strdup(o->text ? o->text : "");
    k->attempts = j->attempts;
    k->who = j->who;
    k->refs = 1;
    memcpy(k->data, worker, name_len);
    uint8_t *p = (uint8_t *)k->data + name_len;
    for (size_t i = 0; i < n_frames; i++) {
        memcpy(p, frames[i].data, frames[i].len);
        p += frames[i].len;
        k->frame_len[i] = (uint32_t)frames[i].len;
    }
    if (extra_len) {
        memcpy(p, extra_data, extra_len);
    }
    k->extra_len = (uint32_t)extra_len;
    k->extra_fields = (uint16_t)extra_fields;
    k->n_frames = (uint8_t)n_frames;
    k->bytes = bytes;
    k->at_ms = uv_now(&self->loop);
    k->unix_ms = dv_broker_unix_ms_now();
    k->kind = j->kind ? (uint8_t)(dv_rec_kind_code(j->kind) + 1) : 0;
    size_t b = kept_bucket(k->id);
    k->hnext = self->kept[b];
    if (k->hnext) {
        k->hnext->hpprev = &k->hnext;
    }
    k->hpprev = &self->kept[b];
    self->kept[b] = k;
    if (self->kept_newest) {
        self->kept_newest->newer = k;
    } else {
        self->kept_oldest = k;
    }
    self->kept_newest = k;
    self->n_kept++;
    self->kept_bytes += k->bytes;
    return k;
}

static dv_msgw_t *kept_header(dv_broker_t *self,
                              const kept_t *k,
                              uint64_t rid,
                              bool stream,
                              dv_frame_t *frames,
                              size_t *n_out);

// Send result k to route with request id rid.
static void
send_kept_as(dv_broker_t *self,
             const kept_t *k,
             const void *route,
             size_t route_len,
             uint64_t rid,
             bool stream)
{
    dv_frame_t frames[DV_MAX_FRAMES];
    size_t n = 0;
    dv_msgw_t *w = kept_header(self, k, rid, stream, frames, &n);
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    // The payloads are shared with k, not copied per reply: one reference
    // per frame, dropped when libzmq is done with it.
    __atomic_add_fetch(&((kept_t *)k)->refs, (uint32_t)n, __ATOMIC_RELAXED);
    dv_outq_send(self->outq, route, route_len, h, len, frames, n, kept_release,
                 (void *)k);
    dv_msgw_destroy(&w);
}

// ------------------------------------------------- results in one message

// One client connection's gathered results: their header maps packed back
// to back, their frames one after another.
typedef struct {
    route_key_t key;      // first: a gather_t slot
    msgpack_sbuffer maps; // n result maps
    size_t n;
    uint8_t *frame; // every result's frames, concatenated (owned)
    size_t frame_len, frame_cap;
} rgroup_t;

// Past these a connection's results go out and gathering starts again: a
// header well inside DV_MAX_HEADER_BYTES, a frame well inside a frame's.
#define RESULTS_MAX_MAP_BYTES   (DV_MAX_HEADER_BYTES / 2)
#define RESULTS_MAX_FRAME_BYTES ((size_t)64 << 20)
#define RESULTS_MAX_N           256

void
dv_results_batch_begin(dv_broker_t *self)
{
    dv_assert(!self->coalesce);
    self->coalesce = dv_broker_gather_new(sizeof(rgroup_t));
}

static void
release_frame(void *owner)
{
    free(owner);
}

// Send g's results as one `results` and empty it.
static void
rgroup_send(dv_broker_t *self, rgroup_t *g)
{
    if (!g->n) {
        return;
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_RESULTS, 0);
    dv_msgw_key(w, "results");
    dv_msgw_v_array(w, g->n);
    dv_msgw_v_raw(w, g->maps.data, g->maps.size);
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_frame_t f = {g->frame ? g->frame : (const uint8_t *)"", g->frame_len};
    if (g->frame) { // handed to libzmq: freed once written
        dv_outq_send(self->outq, g->key.route, g->key.route_len, h, len, &f, 1,
                     release_frame, g->frame);
    } else {
        dv_outq_send(self->outq, g->key.route, g->key.route_len, h, len, &f, 1,
                     NULL, NULL);
    }
    dv_msgw_destroy(&w);
    g->maps.size = 0;
    g->n = 0;
    g->frame = NULL;
    g->frame_len = g->frame_cap = 0;
}

static void
rgroup_flush(dv_broker_t *self, void *slot)
{
    rgroup_t *g = slot;
    rgroup_send(self, g);
    msgpack_sbuffer_destroy(&g->maps);
}

void
dv_results_batch_flush(dv_broker_t *self)
{
    dv_broker_gather_end(self, &self->coalesce, rgroup_flush);
}

// Add kept result k for (route, rid) to the gathered ones: its `result`
// fields plus rid and `frames` (their lengths), its frames copied (k may
// be evicted before the flush).
static void
results_batch_add(dv_broker_t *self,
                  const kept_t *k,
                  const void *route,
                  size_t route_len,
                  uint64_t rid)
{
    bool added;
    rgroup_t *g =
        dv_broker_gather_slot(self->coalesce, route, route_len, &added);
    if (added) {
        msgpack_sbuffer_init(&g->maps);
    }
    dv_frame_t frames[DV_MAX_FRAMES];
    size_t n = 0, bytes = 0;
    dv_msgw_t *w = kept_header(self, k, 0, false, frames, &n);
    dv_msgw_uint(w, "rid", rid);
    dv_msgw_key(w, "frames");
    dv_msgw_v_array(w, n);
    for (size_t i = 0; i < n; i++) {
        dv_msgw_v_uint(w, frames[i].len);
        bytes += frames[i].len;
    }
    size_t len = 0, fields = 0;
    const uint8_t *body = dv_msgw_body(w, &len, &fields);
    if (g->n && (g->n == RESULTS_MAX_N ||
                 g->maps.size + len + 8 > RESULTS_MAX_MAP_BYTES ||
                 g->frame_len + bytes > RESULTS_MAX_FRAME_BYTES)) {
        rgroup_send(self, g);
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, &g->maps, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, fields);
    msgpack_sbuffer_write(&g->maps, (const char *)body, len);
    g->n++;
    if (g->frame_len + bytes > g->frame_cap) {
        g->frame_cap = 2 * (g->frame_len + bytes) + 256;
        g->frame = dv_realloc(g->frame, g->frame_cap);
    }
    for (size_t i = 0; i < n; i++) {
        if (frames[i].len) {
            memcpy(g->frame + g->frame_len, frames[i].data, frames[i].len);
        }
        g->frame_len += frames[i].len;
    }
    dv_msgw_destroy(&w);
}

// A result's header (rid; the stream's seq and queue when stream) and its
// frames (borrowed from k) in frames[0..*n).
static dv_msgw_t *
kept_header(dv_broker_t *self,
            const kept_t *k,
            uint64_t rid,
            bool stream,
            dv_frame_t *frames,
            size_t *n_out)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_RESULT, rid);
    dv_msgw_uint(w, "job", k->id);
    if (stream) { // a result stream's event: where it is in the stream
        dv_msgw_uint(w, "seq", k->seq);
        dv_msgw_str(w, "queue", self->qbytes[k->qidx - 1].name);
    }

    dv_msgw_str(w, "state", k->done ? "done" : "failed");
    dv_msgw_uint(w, "attempts", k->attempts);
    dv_msgw_str(w, "worker", k->data);
    if (!k->done) {
        dv_msgw_error(w, "error", k->code, k->text);
    }
    size_t n = kept_frames(k, frames);
    if (k->extra_len) {
        const uint8_t *extra =
            n ? frames[n - 1].data + frames[n - 1].len
              : (const uint8_t *)k->data + strlen(k->data) + 1;
        dv_msgw_raw(w, k->extra_fields, extra, k->extra_len);
    }
    *n_out = n;
    return w;
}

void
dv_results_send_kept(dv_broker_t *self,
                     const kept_t *k,
                     const void *route,
                     size_t route_len,
                     uint64_t rid)
{
    send_kept_as(self, k, route, route_len, rid, false);
}

// Result record: format, done, frames, flags (p[3] & 1: the trailer), code,
// attempts, extra length, extra fields (u16), kind + 1 (p[18], 1.5; 0 in
// older records), finish time, text and worker lengths; then frame sizes,
// text, worker, frames, extra fields; trailer: seq (u64), queue length
// (u32), queue.
static uint8_t *
kept_encode(const dv_broker_t *self, const kept_t *k, size_t *len)
{
    size_t tlen = k->text ? strlen(k->text) : 0, wlen = strlen(k->data);
    const char *queue = k->qidx ? self->qbytes[k->qidx - 1].name : "";
    size_t qlen = strlen(queue), trailer = k->qidx ? 12 + qlen : 0;
    dv_frame_t frames[DV_MAX_FRAMES];
    size_t n = kept_frames(k, frames);
    *len =
        RESULT_HEAD + 4 * n + tlen + wlen + k->bytes + k->extra_len + trailer;
    uint8_t *p = dv_malloc(*len + DV_STORE_SPARE);
    memset(p, 0, RESULT_HEAD);
    p[0] = REC_FORMAT;
    p[1] = k->done;
    p[2] = k->n_frames;
    p[3] = k->qidx ? 1 : 0;
    dv_le_put32(p + 4, (uint32_t)k->code);
    dv_le_put32(p + 8, k->attempts);
    dv_le_put32(p + 12, k->extra_len);
    dv_le_put16(p + 16, (uint16_t)k->extra_fields);
    dv_le_put64(p + 20, k->unix_ms);
    p[18] = k->kind; // 1.5: the job's kind + 1 (0 in older records)
    dv_le_put32(p + 28, (uint32_t)tlen);
    dv_le_put32(p + 32, (uint32_t)wlen);
    uint8_t *q = p + RESULT_HEAD;
    for (size_t i = 0; i < n; i++, q += 4) {
        dv_le_put32(q, k->frame_len[i]);
    }
    if (tlen) {
        memcpy(q, k->text, tlen);
    }
    q += tlen;
    memcpy(q, k->data, wlen);
    q += wlen;
    for (size_t i = 0; i < n; i++) {
        memcpy(q, frames[i].data, frames[i].len);
        q += frames[i].len;
    }
    if (k->extra_len) {
        const uint8_t *extra = (const uint8_t *)k->data + wlen + 1 + k->bytes;
        memcpy(q, extra, k->extra_len);
    }
    q += k->extra_len;
    if (trailer) {
        dv_le_put64(q, k->seq);
        dv_le_put32(q + 8, (uint32_t)qlen);
        memcpy(q + 12, queue, qlen);
    }
    return p;
}

// Queue qidx gave out a seq: with a store, its mark (the last seq given
// out) goes with the next commit (marks_stage), and followers get that
// seq only after it (marks_done). So a seq a follower saw is never given
// to another result after a restart, even when its result was not
// durable or was dropped (TTL, bounds). arm: ask for that commit.
void
dv_results_mark_due(dv_broker_t *self, uint32_t qidx, bool arm)
{
    qbytes_t *q = &self->qbytes[qidx - 1];
    if (!self->store || q->mark_due) {
        return;
    }
    q->mark_due = true;
    if (self->n_marks_due == self->cap_marks_due) {
        self->cap_marks_due =
            self->cap_marks_due ? self->cap_marks_due * 2 : 16;
        self->marks_due = dv_realloc(
            self->marks_due, self->cap_marks_due * sizeof *self->marks_due);
    }
    self->marks_due[self->n_marks_due++] = qidx;
    if (arm) {
        dv_commit_arm(self);
    }
}

// A finished result joins its queue's stream; followers get it.
static void
stream_append(dv_broker_t *self, kept_t *k, const qbytes_t *q)
{
    k->qidx = (uint32_t)(q - self->qbytes) + 1;
    k->seq = q->next_seq;
    dv_results_stream_link(self, k);
    dv_results_mark_due(self, k->qidx, true);
    for (uint32_t i = 0; i < q->n_fol; i++) { // its followers only
        dv_results_stream_pump(self, &self->cursors[q->fol[i]]);
    }
}

// Send result k (job id) to route once its record is committed: the
// commit's results_release sends it. route_len 0: nobody is waiting.
void
dv_results_hold(dv_broker_t *self,
                uint64_t id,
                const void *route,
                size_t route_len,
                uint64_t rid)
{
    held_result_t *h = dv_malloc(sizeof *h + route_len);
    h->next = NULL;
    h->id = id;
    h->rid = rid;
    h->route_len = route_len;
    if (route_len) {
        memcpy(h->route, route, route_len);
    }
    *(self->held_end ? self->held_end : &self->held_res) = h;
    self->held_end = &h->next;
    dv_commit_arm(self);
}

void
dv_results_write_errors_value(dv_msgw_t *w, const job_t *j)
{
    // The newest that fit DV_MAX_ERRORS_LISTED_BYTES (each entry counted
    // at its strings and 64 bytes more: an upper bound).
    uint32_t first = j->n_errors;
    size_t bytes = 0;
    while (first > 0) {
        const attempt_err_t *e = &j->errors[first - 1];
        bytes += strlen(e->text) + strlen(e->worker) + 64;
        if (bytes > DV_MAX_ERRORS_LISTED_BYTES) {
            break;
        }
        first--;
    }
    dv_msgw_v_array(w, j->n_errors - first);
    for (uint32_t i = first; i < j->n_errors; i++) {
        const attempt_err_t *e = &j->errors[i];
        dv_msgw_v_map(w, 5);
        dv_msgw_v_str(w, "attempt");
        dv_msgw_v_uint(w, e->attempt);
        dv_msgw_v_str(w, "error");
        dv_msgw_v_str(w, dv_err_name(e->code));
        dv_msgw_v_str(w, "text");
        dv_msgw_v_str(w, e->text);
        dv_msgw_v_str(w, "worker");
        dv_msgw_v_str(w, e->worker);
        dv_msgw_v_str(w, "at_ms");
        dv_msgw_v_uint(w, e->unix_ms);
    }
}

void
dv_results_write_errors(dv_msgw_t *w, const job_t *j)
{
    dv_msgw_key(w, "errors");
    dv_results_write_errors_value(w, j);
}

// j's end in the metrics and, at debug, the log; now: its finish time.
static void
count_finish(dv_broker_t *self,
             const job_t *j,
             const dv_results_outcome_t *o,
             uint64_t now)
{
    const char *state = o->done                   ? "done"
                        : o->code == DV_EEXPIRED  ? "expired"
                        : o->code == DV_ECANCELED ? "cancelled"
                                                  : "failed";
    dv_monitor_finished(self->monitor, j->queue, j->kind,
                        USES_MODEL(j) ? j->model : NULL, state,
                        j->started_unix && now >= j->started_unix
                            ? (double)(now - j->started_unix) / 1000
                            : -1);
    dv_log(DV_LOG_DEBUG, "jobs",
           "job %llu %s%s%s after %u attempt(s), %llu ms since submit%s%s",
           (unsigned long long)j->id, state, o->done ? "" : ": ",
           o->done ? "" : dv_err_name(o->code), j->attempts,
           (unsigned long long)(j->submit_unix && now >= j->submit_unix
                                    ? now - j->submit_unix
                                    : 0),
           o->worker && *o->worker ? ", worker " : "",
           o->worker ? o->worker : "");
}

// The job's result: kept for result_get, then pushed to its submitter (a
// durable one once its record is committed: after a crash before that the
// job runs again, so nobody may have seen this outcome).
void
dv_results_send(dv_broker_t *self,
                const job_t *j,
                const dv_results_outcome_t *o)
{
    // The failed attempts go with the result (errors: one map each).
    dv_results_outcome_t out = *o;
    dv_msgw_t *own = NULL;
    if (j->n_errors) {
        out.extra =
            out.extra ? out.extra : (own = dv_msgw_new(DV_MSG_RESULT, 0));
        dv_results_write_errors(out.extra, j);
    }
    qbytes_t *q = j->queue ? dv_broker_queue_bytes(self, j->queue) : NULL;
    if (q) {
        *(o->done                   ? &q->done
          : o->code == DV_EEXPIRED  ? &q->expired
          : o->code == DV_ECANCELED ? &q->cancelled
                                    : &q->failed) += 1;
    }
    kept_t *k = dv_results_keep(self, j, &out);
    dv_msgw_destroy(&own);
    count_finish(self, j, o, k->unix_ms);
    k->unstored = self->store && !j->memory_only; // before its stream sends
    if (j->queue) {
        stream_append(self, k, q); // q: the job's queue, found above
    }
    if (self->store && !j->memory_only) {
        size_t len = 0;
        uint8_t *rec = kept_encode(self, k, &len);

        dv_store_del(self->store, DV_STORE_JOBS, j->id);
        dv_store_del(self->store, DV_STORE_ATTEMPTS, j->id);
        if (j->ckpt) {
            dv_store_del(self->store, DV_STORE_CKPTS, j->id);
        }
        dv_store_put_owned(self->store, DV_STORE_RESULTS, k->id, rec, len);
        dv_commit_arm(self);
        dv_results_hold(self, k->id, j->route, j->route_len, j->rid);
        if (self->fault_left && --self->fault_left == 0) {
            self->fault_armed = true; // the seam (opts.fault_kill_result)
        }
    } else if (j->route_len && self->coalesce && j->client_minor >= 4) {
        results_batch_add(self, k, j->route, j->route_len, j->rid);
    } else if (j->route_len) { // recovered jobs have no submitter connection
        dv_results_send_kept(self, k, j->route, j->route_len, j->rid);
    }
    dv_results_kept_trim(self); // after sending: k may be the one evicted
}

void
dv_results_fail(dv_broker_t *self,
                const job_t *j,
                int code,
                const char *text,
                const char *worker)
{
    dv_results_outcome_t o = {.code = code, .text = text, .worker = worker};
    dv_results_send(self, j, &o);
}

int
dv_results_on_get(dv_broker_t *self,
                  const void *route,
                  size_t route_len,
                  const dv_msg_t *m,
                  uint64_t rid,
                  dv_error_t *err)
{
    uint64_t id;
    int rc = dv_msg_uint(m, "job", &id, err);
    if (rc) {
        return rc;
    }
    const kept_t *k = dv_results_kept_find(self, id);
    if (!k) {
        return dv_errorf(err, DV_ENOENT, "no result for job %llu: %s",
                         (unsigned long long)id,
                         dv_broker_job_find(self, id)
                             ? "not finished yet"
                             : "unknown job or result expired");
    }
    size_t held = dv_outq_peer_bytes(self->outq, route, route_len);
    if (!dv_outq_room(self->outq, route, route_len, k->bytes + k->extra_len)) {
        return dv_errorf(err, DV_ELIMIT,
                         "result_get: %zu bytes of replies already wait for "
                         "you (limit %zu per connection, %zu in all): read "
                         "them first",
                         held, (size_t)DV_MAX_PEER_QUEUED_BYTES,
                         (size_t)DV_MAX_QUEUED_BYTES);
    }
    if (k->unstored) {
        dv_results_hold(self, id, route, route_len, rid); // once committed
    } else {
        dv_results_send_kept(self, k, route, route_len, rid);
    }
    return 0;
}

// Copy a kept result's `model` and `batch` fields (its extra fields,
// packed key, value, ...) into w.
void
dv_results_kept_copy_fields(const kept_t *k, dv_msgw_t *w)
{
    if (!k || !k->extra_len) {
        return;
    }
    dv_frame_t frames[DV_MAX_FRAMES];
    size_t n = kept_frames(k, frames);
    const char *extra = n ? (const char *)frames[n - 1].data + frames[n - 1].len
                          : k->data + strlen(k->data) + 1;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    for (uint16_t f = 0; f < k->extra_fields; f++) {
        if (msgpack_unpack_next(&up, extra, k->extra_len, &off) !=
                MSGPACK_UNPACK_SUCCESS ||
            up.data.type != MSGPACK_OBJECT_STR) {
            break;
        }
        bool want = (up.data.via.str.size == 5 &&
                     memcmp(up.data.via.str.ptr, "batch", 5) == 0) ||
                    (up.data.via.str.size == 5 &&
                     memcmp(up.data.via.str.ptr, "model", 5) == 0);
        char key[8];
        snprintf(key, sizeof key, "%.*s", (int)up.data.via.str.size,
                 up.data.via.str.ptr);
        size_t start = off;
        if (msgpack_unpack_next(&up, extra, k->extra_len, &off) !=
            MSGPACK_UNPACK_SUCCESS) {
            break;
        }
        if (want) {
            dv_msgw_key(w, key);
            dv_msgw_v_raw(w, (const uint8_t *)extra + start, off - start);
        }
    }
    msgpack_unpacked_destroy(&up);
}

// ------------------------------------------------- result stream handlers

// Send c's follower the results past what it has, up to its window.
void
dv_results_stream_pump(dv_broker_t *self, cursor_t *c)
{
    if (!c->route_len) {
        return;
    }
    const qbytes_t *q = &self->qbytes[c->qidx - 1];
    const kept_t *k = c->pos ? c->pos->qnext : q->stream_head;
    while (k && k->seq <= c->sent) { // only on a fresh follow
        k = k->qnext;
    }
    // Up to the first result whose record or seq mark is not committed yet:
    // results go out in seq order, and only with a seq that is stored. Also
    // bounded in bytes: a follower that does not read holds at most
    // DV_MAX_PEER_QUEUED_BYTES; the rest goes once it has read (on its
    // acks, and the heartbeat tries again).
    for (; k && c->inflight < c->window && !k->unstored &&
           (!self->store || k->seq <= q->seq_stored) &&
           dv_outq_room(self->outq, c->route, c->route_len,
                        k->bytes + k->extra_len);
         k = k->qnext) {
        send_kept_as(self, k, c->route, c->route_len, c->rid, true);
        c->sent = k->seq;
        c->pos = k;
        c->inflight++;
    }
}

// A cursor record's queue length with this bit set: an owner follows
// (format 2; format 1 records, from before owners, have none).
#define CURSOR_OWNED DV_REC_NAMED

// Format 1: u64 acked, u32 queue length, queue, consumer. Format 2 (an
// owned cursor): the length has CURSOR_OWNED set and a u32 owner length
// follows it; then queue, owner (key id), consumer.
static void
store_cursor(dv_broker_t *self, const cursor_t *c)
{
    if (!self->store) {
        return;
    }
    const char *queue = self->qbytes[c->qidx - 1].name;
    size_t ql = strlen(queue), cl = strlen(c->consumer);
    size_t ol = strlen(c->owner), head = ol ? 16 : 12;
    size_t len = head + ql + ol + cl;
    uint8_t *p = dv_malloc(len + DV_STORE_SPARE);
    dv_le_put64(p, c->acked);
    dv_le_put32(p + 8, (uint32_t)ql | (ol ? CURSOR_OWNED : 0));
    if (ol) {
        dv_le_put32(p + 12, (uint32_t)ol);
    }
    memcpy(p + head, queue, ql);
    memcpy(p + head + ql, c->owner, ol);
    memcpy(p + head + ql + ol, c->consumer, cl);
    dv_store_put_owned(self->store, DV_STORE_CURSORS, c->key, p, len);
    dv_commit_arm(self);
}

// A consumer's key in self->cursor_names: "QUEUE/CONSUMER" (names are
// [A-Za-z0-9._-]+: the slash parts them).
static void
cursor_key(char *key, size_t size, const char *queue, const char *consumer)
{
    snprintf(key, size, "%s/%s", queue, consumer);
}

#define CURSOR_KEY_MAX (2 * DV_MAX_WIRE_NAME + 2)

// The consumer on queue (by name; NULL when either is unknown), for
// dv_authorize_client(), which must not create queues.
static size_t
cursor_index(const dv_broker_t *self, const char *queue, const char *consumer)
{
    char key[CURSOR_KEY_MAX];
    cursor_key(key, sizeof key, queue, consumer);
    return dv_names_find(self->cursor_names, key);
}

const cursor_t *
dv_results_cursor_named(const dv_broker_t *self,
                        const char *queue,
                        const char *consumer)
{
    size_t i = cursor_index(self, queue, consumer);
    return i == SIZE_MAX ? NULL : &self->cursors[i];
}

static cursor_t *
cursor_find(dv_broker_t *self, uint32_t qidx, const char *consumer)
{
    size_t i = cursor_index(self, self->qbytes[qidx - 1].name, consumer);
    return i == SIZE_MAX ? NULL : &self->cursors[i];
}

cursor_t *
dv_results_cursor_add(dv_broker_t *self,
                      uint64_t key,
                      uint32_t qidx,
                      const char *consumer,
                      uint64_t acked)
{
    if (self->n_cursors == self->cap_cursors) { // doubling: no copy per add
        self->cap_cursors = self->cap_cursors ? 2 * self->cap_cursors : 16;
        self->cursors =
            dv_realloc(self->cursors, self->cap_cursors * sizeof(cursor_t));
    }
    cursor_t *c = &self->cursors[self->n_cursors++];
    memset(c, 0, sizeof *c);
    c->key = key;
    c->qidx = qidx;
    snprintf(c->consumer, sizeof c->consumer, "%s", consumer);
    c->acked = c->sent = acked;
    if (key >= self->next_cursor_key) {
        self->next_cursor_key = key + 1;
    }
    char name[CURSOR_KEY_MAX];
    cursor_key(name, sizeof name, self->qbytes[qidx - 1].name, consumer);
    dv_names_add(self->cursor_names, name, self->n_cursors - 1);
    return c;
}

void
dv_results_cursor_remove(dv_broker_t *self, cursor_t *c)
{
    dv_results_cursor_stop(self, c);
    if (self->store) {
        dv_store_del(self->store, DV_STORE_CURSORS, c->key);
        dv_commit_arm(self);
    }
    char name[CURSOR_KEY_MAX];
    cursor_key(name, sizeof name, self->qbytes[c->qidx - 1].name, c->consumer);
    dv_names_remove(self->cursor_names, name);
    size_t i = (size_t)(c - self->cursors), last = self->n_cursors - 1;
    if (i != last) { // the last one takes its place: its index changes
        *c = self->cursors[last];
        cursor_key(name, sizeof name, self->qbytes[c->qidx - 1].name,
                   c->consumer);
        dv_names_add(self->cursor_names, name, i);
        if (c->fol_at) {
            self->qbytes[c->qidx - 1].fol[c->fol_at - 1] = (uint32_t)i;
        }
    }
    self->n_cursors--;
}

// c is followed now: into its queue's followed list (once).
static void
cursor_followed(dv_broker_t *self, cursor_t *c)
{
    qbytes_t *q = &self->qbytes[c->qidx - 1];
    if (c->fol_at) {
        return;
    }
    if (q->n_fol == q->cap_fol) {
        q->cap_fol = q->cap_fol ? 2 * q->cap_fol : 4;
        q->fol = dv_realloc(q->fol, q->cap_fol * sizeof *q->fol);
    }
    q->fol[q->n_fol++] = (uint32_t)(c - self->cursors);
    c->fol_at = q->n_fol;
}

void
dv_results_cursor_stop(dv_broker_t *self, cursor_t *c)
{
    c->route_len = 0;
    if (!c->fol_at) {
        return;
    }
    qbytes_t *q = &self->qbytes[c->qidx - 1];
    uint32_t at = c->fol_at - 1, last = q->fol[q->n_fol - 1];
    q->fol[at] = last; // the last one takes its place
    self->cursors[last].fol_at = at + 1;
    q->n_fol--;
    c->fol_at = 0;
}

void
dv_results_route_gone(dv_broker_t *self, uint64_t route_hash)
{
    for (size_t i = 0; i < self->n_cursors; i++) {
        cursor_t *c = &self->cursors[i];
        if (c->route_len &&
            dv_auth_route_hash(c->route, c->route_len) == route_hash) {
            dv_log(DV_LOG_INFO, "results",
                   "consumer %s of queue %s: its follower's connection "
                   "closed; it waits for the next follow at seq %llu",
                   c->consumer, self->qbytes[c->qidx - 1].name,
                   (unsigned long long)c->acked + 1);
            dv_results_cursor_stop(self, c);
        }
    }
}

int
dv_results_stream_names(const dv_msg_t *m,
                        char *queue,
                        char *consumer,
                        dv_error_t *err)
{
    int rc;
    if ((rc = dv_msg_str(m, "queue", queue, DV_MAX_WIRE_NAME + 1, err)) ||
        (rc = dv_msg_str(m, "consumer", consumer, DV_MAX_WIRE_NAME + 1, err))) {
        return rc;
    }
    if (!dv_catalog_name_valid(queue) || !dv_catalog_name_valid(consumer)) {
        return dv_errorf(err, DV_EINVAL,
                         "%s: queue and consumer must match [A-Za-z0-9._-]+",
                         dv_msg_name(dv_msg_type(m)));
    }
    return 0;
}

// follow {queue, consumer, window?, from?}: this connection now receives
// the queue's results past the consumer's cursor (a new consumer starts at
// the oldest kept result, or with from: "latest" at the next one), as
// `result` messages with this request's rid and `seq`; at most window
// (default 100, max 10,000) unacknowledged at a time. A second follow of
// the same consumer takes over (unacknowledged results are sent again).
int
dv_results_on_follow(dv_broker_t *self,
                     const void *route,
                     size_t route_len,
                     const dv_msg_t *m,
                     uint64_t rid,
                     dv_error_t *err)
{
    char queue[DV_MAX_WIRE_NAME + 1], consumer[DV_MAX_WIRE_NAME + 1];
    char from[16] = "earliest";
    uint64_t window = 100;
    int rc = dv_results_stream_names(m, queue, consumer, err);
    if (rc == 0) {
        rc =
            dv_msg_uint_or(m, "window", DV_FOLLOW_WINDOW_DEFAULT, &window, err);
    }
    if (rc == 0 && dv_msg_has(m, "from")) {
        rc = dv_msg_str(m, "from", from, sizeof from, err);
    }
    if (rc) {
        return rc;
    }
    if (window < 1 || window > DV_MAX_FOLLOW_WINDOW || route_len > ROUTE_MAX ||
        (strcmp(from, "earliest") != 0 && strcmp(from, "latest") != 0)) {
        return dv_errorf(err, DV_EINVAL,
                         "follow: window must be 1..%d, from earliest or "
                         "latest",
                         DV_MAX_FOLLOW_WINDOW);
    }
    // A new consumer past DV_MAX_CONSUMERS is refused before anything is
    // made (neither the consumer nor its queue).
    if (self->n_cursors >= DV_MAX_CONSUMERS &&
        !dv_results_cursor_named(self, queue, consumer)) {
        return dv_errorf(err, DV_ELIMIT,
                         "follow: consumer '%s' would be new and the broker "
                         "keeps %zu stream consumers already (limit %d): "
                         "follow an existing one",
                         consumer, self->n_cursors, DV_MAX_CONSUMERS);
    }
    // A consumer may follow a queue before its first job: that creates the
    // queue (counted against DV_MAX_QUEUES), as a stored cursor needs one.
    if ((rc = dv_broker_queue_may_create(self, queue, "follow", err)) != 0) {
        return rc;
    }
    qbytes_t *q = dv_broker_queue_bytes(self, queue);
    uint32_t qidx = (uint32_t)(q - self->qbytes) + 1;
    cursor_t *c = cursor_find(self, qidx, consumer);
    bool fresh = !c;
    if (!c) {
        uint64_t start = strcmp(from, "latest") == 0 ? q->next_seq - 1 : 0;
        c = dv_results_cursor_add(self, self->next_cursor_key, qidx, consumer,
                                  start);
    }
    // The first key to follow it owns it (dv_authorize_client() holds others
    // off).
    bool claim = self->current && !c->owner[0];
    if (claim) {
        snprintf(c->owner, sizeof c->owner, "%s", self->current->id);
    }
    if (fresh || claim) {
        store_cursor(self, c);
    }
    c->sent = c->acked; // anything unacknowledged goes again
    c->pos = NULL;
    c->inflight = 0;
    memcpy(c->route, route, route_len);
    c->route_len = route_len;
    cursor_followed(self, c);
    c->rid = rid;
    c->window = (uint32_t)window;
    snprintf(c->follower, sizeof c->follower, "%s",
             self->current ? self->current->id : ""); // for reloads
    if (self->current_closed) { // read after its connection closed: moot
        dv_results_cursor_stop(self, c);
        return 0;
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_OK, rid);
    dv_msgw_str(w, "queue", queue);
    dv_msgw_str(w, "consumer", consumer);
    dv_msgw_uint(w, "acked", c->acked);
    dv_broker_client_reply(self, route, route_len, w);
    dv_results_stream_pump(self, c);
    return 0;
}

// ack {queue, consumer, seq}: every result up to seq is consumed (stored);
// more are sent. With a rid the `ok` comes once the cursor is stored. A
// seq is acknowledged once this connection was sent it, or when it was
// given out before this broker started (the follower may have seen it
// then: every seq sent is stored first, so it names the same result).
int
dv_results_on_ack(dv_broker_t *self,
                  const void *route,
                  size_t route_len,
                  const dv_msg_t *m,
                  uint64_t rid,
                  dv_error_t *err)
{
    char queue[DV_MAX_WIRE_NAME + 1], consumer[DV_MAX_WIRE_NAME + 1];
    uint64_t seq = 0;
    int rc = dv_results_stream_names(m, queue, consumer, err);
    if (rc == 0) {
        rc = dv_msg_uint(m, "seq", &seq, err);
    }
    if (rc) {
        return rc;
    }
    qbytes_t *q = dv_broker_queue_find(self, queue); // an ack creates nothing
    cursor_t *c =
        q ? cursor_find(self, (uint32_t)(q - self->qbytes) + 1, consumer)
          : NULL;
    if (!c) {
        return dv_errorf(err, DV_ENOENT, "ack: no consumer '%s' on queue '%s'",
                         consumer, queue);
    }
    if (seq > c->sent && seq > c->acked && seq > q->seq_recovered) {
        return dv_errorf(err, DV_EINVAL,
                         "ack: seq %llu was not sent (last sent %llu)",
                         (unsigned long long)seq, (unsigned long long)c->sent);
    }
    if (seq > c->acked) {
        c->acked = seq;
        if (seq > c->sent) { // seen before a restart: go on after it
            c->sent = seq;
            c->pos = NULL;
        }
        c->inflight = 0; // those sent after seq are still in flight
        for (const kept_t *p = c->pos; p && p->seq > seq; p = p->qprev) {
            c->inflight++;
        }
        store_cursor(self, c);
        dv_results_stream_pump(self, c);
    }
    if (rid) {
        dv_msgw_t *w = dv_msgw_new(DV_MSG_OK, rid);
        dv_msgw_uint(w, "acked", c->acked);
        dv_commit_reply_after(self, route, route_len, rid, w);
    }
    return 0;
}

// unfollow {queue, consumer}: stop sending; the cursor stays.
int
dv_results_on_unfollow(dv_broker_t *self,
                       const void *route,
                       size_t route_len,
                       const dv_msg_t *m,
                       uint64_t rid,
                       dv_error_t *err)
{
    char queue[DV_MAX_WIRE_NAME + 1], consumer[DV_MAX_WIRE_NAME + 1];
    int rc = dv_results_stream_names(m, queue, consumer, err);
    if (rc) {
        return rc;
    }
    qbytes_t *q = dv_broker_queue_find(self, queue);
    cursor_t *c =
        q ? cursor_find(self, (uint32_t)(q - self->qbytes) + 1, consumer)
          : NULL;
    if (c && c->route_len == route_len &&
        memcmp(c->route, route, route_len) == 0) {
        dv_results_cursor_stop(self, c);
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_OK, rid);
    dv_msgw_uint(w, "acked", c ? c->acked : 0);
    dv_broker_client_reply(self, route, route_len, w);
    return 0;
}
