// dv_audit — the audit log (see dv_audit.h).
//
// Record (little-endian): u64 unix_ms, then key, action, object, outcome,
// each as u16 length + bytes. In memory an entry is one allocation: the
// header fields and the four strings, NUL-terminated, back to back; a ring
// of the newest DV_AUDIT_MEMORY.
#include "dv_audit.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dv_le.h"
#include "dv_mem.h"

#define FIELD_MAX 1024

typedef struct {
    uint64_t seq;
    uint64_t unix_ms;
    uint16_t off[4]; // where each string starts in text
    char text[];
} rec_t;

struct dv_audit {
    dv_store_t *store;               // borrowed (NULL: memory only)
    rec_t **ring;                    // DV_AUDIT_MEMORY slots
    size_t head;                     // index of the oldest
    size_t n;                        // entries held
    uint64_t last_seq;               //
    uint64_t first_stored, n_stored; // the store's oldest seq, and count
    uint64_t max_stored;             // kept in the store at most
};

// Delete the store's oldest entries while it holds more than max_stored
// (seqs are given one after another, so the oldest is first_stored).
static void
store_trim(dv_audit_t *self)
{
    while (self->store && self->n_stored > self->max_stored) {
        dv_store_del(self->store, DV_STORE_AUDIT, self->first_stored++);
        self->n_stored--;
    }
}

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static rec_t *
rec_new(uint64_t seq, uint64_t unix_ms, const char *s[4], const size_t len[4])
{
    size_t total = len[0] + len[1] + len[2] + len[3] + 4;
    rec_t *r = dv_malloc(sizeof *r + total);
    r->seq = seq;
    r->unix_ms = unix_ms;
    size_t at = 0;
    for (int i = 0; i < 4; i++) {
        r->off[i] = (uint16_t)at;
        for (size_t k = 0; k < len[i]; k++) {
            // Fields may quote what a peer sent: no control bytes (or NULs)
            // reach a terminal reading the log (`drover audit`).
            unsigned char c = (unsigned char)s[i][k];
            r->text[at + k] = c < 32 || c == 127 ? '?' : (char)c;
        }
        r->text[at + len[i]] = '\0';
        at += len[i] + 1;
    }
    return r;
}

static void
ring_push(dv_audit_t *self, rec_t *r)
{
    if (self->n == DV_AUDIT_MEMORY) {
        free(self->ring[self->head]);
        self->ring[self->head] = r;
        self->head = (self->head + 1) % DV_AUDIT_MEMORY;
    } else {
        self->ring[(self->head + self->n) % DV_AUDIT_MEMORY] = r;
        self->n++;
    }
    if (r->seq > self->last_seq) {
        self->last_seq = r->seq;
    }
}

static int
load_one(uint64_t id, const void *data, size_t len, void *arg)
{
    dv_audit_t *self = arg;
    const uint8_t *p = data;
    if (len < 8) {
        return DV_EFORMAT;
    }
    uint64_t unix_ms = dv_le_get64(p);
    size_t at = 8;
    const char *s[4];
    size_t l[4];
    for (int i = 0; i < 4; i++) {
        if (len - at < 2) {
            return DV_EFORMAT;
        }
        l[i] = dv_le_get16(p + at);
        at += 2;
        if (len - at < l[i]) {
            return DV_EFORMAT;
        }
        s[i] = (const char *)p + at;
        at += l[i];
    }
    ring_push(self, rec_new(id, unix_ms, s, l));
    if (self->n_stored++ == 0) { // the walk is in id order
        self->first_stored = id;
    }
    return 0;
}

int
dv_audit_open(dv_audit_t **out,
              dv_store_t *store,
              uint64_t max_stored,
              dv_error_t *err)
{
    dv_audit_t *self = dv_calloc(1, sizeof *self);
    self->store = store;
    self->max_stored = max_stored ? max_stored : 1;
    self->ring = dv_calloc(DV_AUDIT_MEMORY, sizeof(rec_t *));
    if (store) {
        int rc = dv_store_each(store, DV_STORE_AUDIT, load_one, self, err);
        if (rc) {
            if (err && !err->text[0]) {
                dv_errorf(err, rc, "the audit log holds a damaged entry");
            }
            dv_audit_destroy(&self);
            return rc;
        }
        if (self->n_stored &&
            self->n_stored != self->last_seq - self->first_stored + 1) {
            // Not one run of seqs (edited by hand?): trim by the count
            // from the oldest as found; a missing key deletes nothing.
            self->first_stored = self->last_seq + 1 - self->n_stored;
        }
        store_trim(self); // a lower bound than the store was written with
    }
    *out = self;
    return 0;
}

void
dv_audit_destroy(dv_audit_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_audit_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++) {
        free(self->ring[(self->head + i) % DV_AUDIT_MEMORY]);
    }
    free(self->ring);
    free(self);
    *self_p = NULL;
}

void
dv_audit_add(dv_audit_t *self,
             const char *key,
             const char *action,
             const char *object,
             const char *outcome)
{
    const char *s[4] = {key ? key : "", action ? action : "",
                        object ? object : "", outcome ? outcome : ""};
    size_t l[4];
    for (int i = 0; i < 4; i++) {
        l[i] = strlen(s[i]);
        l[i] = l[i] > FIELD_MAX ? FIELD_MAX : l[i];
    }
    rec_t *r = rec_new(self->last_seq + 1, now_ms(), s, l);
    if (self->store) {
        size_t len = 8 + 8 + l[0] + l[1] + l[2] + l[3];
        uint8_t *p = dv_malloc(len + DV_STORE_SPARE);
        dv_le_put64(p, r->unix_ms);
        size_t at = 8;
        for (int i = 0; i < 4; i++) {
            dv_le_put16(p + at, (uint16_t)l[i]);
            memcpy(p + at + 2, r->text + r->off[i], l[i]); // cleaned
            at += 2 + l[i];
        }
        dv_store_put_owned(self->store, DV_STORE_AUDIT, r->seq, p, len);
        if (self->n_stored++ == 0) {
            self->first_stored = r->seq;
        }
        store_trim(self);
    }
    ring_push(self, r);
}

uint64_t
dv_audit_stored(const dv_audit_t *self)
{
    return self->n_stored;
}

void
dv_audit_since(const dv_audit_t *self,
               uint64_t since_ms,
               size_t *first,
               size_t *n)
{
    // Times only grow (a wall clock stepped back is rare; a few entries
    // may then be listed out of time order, never lost): binary search.
    size_t lo = 0, hi = self->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->ring[(self->head + mid) % DV_AUDIT_MEMORY]->unix_ms <
            since_ms) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *first = lo;
    *n = self->n - lo;
}

void
dv_audit_at(const dv_audit_t *self, size_t i, dv_audit_entry_t *out)
{
    const rec_t *r = self->ring[(self->head + i) % DV_AUDIT_MEMORY];
    out->seq = r->seq;
    out->unix_ms = r->unix_ms;
    out->key = r->text + r->off[0];
    out->action = r->text + r->off[1];
    out->object = r->text + r->off[2];
    out->outcome = r->text + r->off[3];
}

size_t
dv_audit_count(const dv_audit_t *self)
{
    return self->n;
}

uint64_t
dv_audit_last_seq(const dv_audit_t *self)
{
    return self->last_seq;
}
