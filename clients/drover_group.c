// drover_group — libdrover and a broker group (protocol 1.6; see drover.h,
// drover_int.h, docs/PROTOCOL.md "Broker groups").
//
// A group is 3 or 5 drover-brokers of which only the leader serves; the
// others answer DV_ENOTLEADER, with the leader's client endpoint when they
// know it. Given a comma-separated endpoint list, the connection follows
// the leader:
//   - connecting, and whenever the member in use answers DV_ENOTLEADER,
//     drops the connection (the socket monitor says so: a killed process)
//     or stays silent past a `ping` (a stopped one), it opens a fresh
//     socket to the hint, else to the next list entry, and says hello until
//     a member welcomes it (drv_group_reach);
//   - then it sends again what may be sent again (resend_all): the blocking
//     request if it is a read, a submit (with its idempotency key: every
//     submit gets one when there is a list) or was answered DV_ENOTLEADER,
//     and every async submit not yet accepted (a copy is kept until then);
//     a blocking write whose answer never came fails (want_lost), since it
//     may or may not have been applied. Accepted jobs whose results have not
//     come become orphans: the new leader does not know this connection, so
//     drv_orphans_poll asks for their results with `result_get`.
// With one endpoint nothing here runs (drv_pump checks n_eps), except
// drv_orphans_poll, which also serves a duplicate idempotency key's job.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <zmq.h>

#include "drover.h"
#include "drover_int.h"
#include "dv_err.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_proto.h"
#include "dv_wire.h"

int
drv_group_parse(drover_t *self, const char *endpoint, dv_error_t *e)
{
    const char *p = endpoint;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (*p == ' ')) {
            p++, len--;
        }
        while (len && p[len - 1] == ' ') {
            len--;
        }
        if (len == 0 || len >= sizeof self->endpoint) {
            return dv_errorf(e, DV_EINVAL,
                             "endpoint list '%s': an entry is empty or over "
                             "%zu bytes",
                             endpoint, sizeof self->endpoint - 1);
        }
        if (self->n_eps == DV_MAX_GROUP_ENDPOINTS) {
            return dv_errorf(e, DV_EINVAL,
                             "endpoint list '%s': more than %d entries",
                             endpoint, DV_MAX_GROUP_ENDPOINTS);
        }
        self->eps = realloc(self->eps, (self->n_eps + 1) * sizeof *self->eps);
        dv_assert(self->eps);
        char *ep = dv_malloc(len + 1);
        memcpy(ep, p, len);
        ep[len] = '\0';
        self->eps[self->n_eps++] = ep;
        if (!end) {
            return 0;
        }
        p = end + 1;
    }
}

// The port of a tcp:// endpoint ("" when it has none): what follows the
// last ':'.
static const char *
port_of(const char *ep)
{
    const char *c = strrchr(ep, ':');
    return c && strncmp(ep, "tcp://", 6) == 0 && c > ep + 5 ? c + 1 : "";
}

// The endpoint to use for a leader hint: the hint itself, unless it names
// a wildcard host (a leader bound to 0.0.0.0 or *): then the list entry
// with the same port, else the current endpoint's host with that port.
// Also points self->ep_at at the list entry it matches.
static void
resolve_hint(drover_t *self, const char *hint, char *out, size_t size)
{
    const char *port = port_of(hint);
    bool wild = strncmp(hint, "tcp://0.0.0.0:", 14) == 0 ||
                strncmp(hint, "tcp://*:", 8) == 0 ||
                strncmp(hint, "tcp://[::]:", 11) == 0;
    snprintf(out, size, "%s", hint);
    for (size_t i = 0; i < self->n_eps; i++) {
        if (strcmp(self->eps[i], hint) == 0 ||
            (wild && *port && strcmp(port_of(self->eps[i]), port) == 0)) {
            snprintf(out, size, "%s", self->eps[i]);
            self->ep_at = i;
            return;
        }
    }
    const char *cur = self->endpoint, *cp = strrchr(cur, ':');
    if (wild && *port && cp && strncmp(cur, "tcp://", 6) == 0) {
        snprintf(out, size, "%.*s:%s", (int)(cp - cur), cur, port);
    }
}

static void
sleep_ms(int64_t ms)
{
    if (ms > 0) {
        struct timespec ts = {(time_t)(ms / 1000),
                              (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

// DV_ENOTLEADER's hint into self->hint (cleared when m has none).
static void
take_hint(drover_t *self, const dv_msg_t *m)
{
    dv_error_t e = {0};
    if (dv_msg_str(m, "leader", self->hint, sizeof self->hint, &e) != 0) {
        self->hint[0] = '\0';
    }
}

static bool
is_notleader(const dv_msg_t *m)
{
    if (dv_msg_type(m) != DV_MSG_ERROR) {
        return false;
    }
    int code = 0;
    char text[8];
    dv_error_t e = {0};
    dv_msg_error(m, &code, text, sizeof text, &e);
    return code == DV_ENOTLEADER;
}

// What one hello to the member just connected came to.
typedef enum {
    HELLO_WELCOME,  // the leader
    HELLO_NEXT,     // no answer, dropped: the next entry
    HELLO_NOLEADER, // DV_ENOTLEADER without a hint: pause, then the next
    HELLO_HINT,     // DV_ENOTLEADER naming the leader (self->hint)
} hello_t;

// Wait until `until` for the answer to hello rid on the fresh socket.
// Returns a hello_t, or <0: DV_EPERM (refused handshake) or the error the
// member answered with (in *e).
static int
hello_wait(drover_t *self, uint64_t rid, int64_t until, dv_error_t *e)
{
    for (;;) {
        dv_wire_msg_t in;
        int got;
        while ((got = dv_wire_recv(self->sock, false, &in)) == 1) {
            dv_msg_t *m = NULL;
            uint64_t mrid = 0;
            dv_error_t de = {0};
            if (in.too_many ||
                dv_msg_decode(&m, zmq_msg_data(&in.header),
                              zmq_msg_size(&in.header), in.frames, in.n_payload,
                              &mrid, &de) != 0 ||
                mrid != rid) {
                dv_msg_destroy(&m);
                dv_wire_msg_close(&in);
                continue;
            }
            int rc = HELLO_NEXT;
            if (dv_msg_type(m) == DV_MSG_WELCOME) {
                self->broker_minor = dv_msg_minor(m);
                rc = HELLO_WELCOME;
            } else if (is_notleader(m)) {
                take_hint(self, m);
                rc = self->hint[0] ? HELLO_HINT : HELLO_NOLEADER;
            } else if (dv_msg_type(m) == DV_MSG_ERROR) {
                int code = DV_EFORMAT;
                dv_msg_error(m, &code, e->text, sizeof e->text, &de);
                rc = e->code = code;
            }
            dv_msg_destroy(&m);
            dv_wire_msg_close(&in);
            return rc;
        }
        if (got < 0) {
            return HELLO_NEXT;
        }
        int64_t left = until - drv_now_ms();
        if (left <= 0) {
            return HELLO_NEXT;
        }
        zmq_pollitem_t items[2] = {{self->sock, 0, ZMQ_POLLIN, 0},
                                   {self->monitor, 0, ZMQ_POLLIN, 0}};
        zmq_poll(items, self->monitor ? 2 : 1, (long)left);
        if (self->monitor && drv_monitor_failed(self)) {
            return dv_errorf(e, DV_EPERM, "handshake refused by %s",
                             self->endpoint);
        }
        if (self->dropped) {
            return HELLO_NEXT; // refused or dropped: nobody there
        }
    }
}

int
drv_group_reach(drover_t *self, bool first, int64_t deadline, dv_error_t *e)
{
    size_t quick = 0;    // entries passed over at once in a row
    size_t refused = 0;  // handshakes refused by a member's keys
    unsigned rounds = 0; // whole rounds refused at once
    char dead[256] = ""; // the last entry that failed us, and when
    int64_t dead_at = 0;
    for (;;) {
        char ep[256];
        if (self->hint[0]) {
            resolve_hint(self, self->hint, ep, sizeof ep);
            self->hint[0] = '\0';
            if (strcmp(ep, dead) == 0 &&
                drv_now_ms() - dead_at < DV_GROUP_TRY_MS) {
                // A follower still names the leader that just failed us:
                // the election has not ended. Pause, then the next entry.
                sleep_ms(DV_GROUP_NOLEADER_PAUSE_MS);
                self->ep_at = (self->ep_at + 1) % self->n_eps;
                snprintf(ep, sizeof ep, "%s", self->eps[self->ep_at]);
            }
        } else {
            self->ep_at = first ? 0 : (self->ep_at + 1) % self->n_eps;
            snprintf(ep, sizeof ep, "%s", self->eps[self->ep_at]);
        }
        first = false;
        int rc = drv_sock_open(self, ep, e);
        if (rc) {
            return rc;
        }
        uint64_t rid = ++self->next_rid;
        dv_msgw_t *w = dv_msgw_new(DV_MSG_HELLO, rid);
        dv_msgw_str(w, "client", "libdrover " DV_VERSION_STRING);
        drv_send_msg(self, w, NULL, 0);
        int64_t start = drv_now_ms(), until = start + DV_GROUP_TRY_MS;
        if (deadline >= 0 && deadline < until) {
            until = deadline;
        }
        rc = hello_wait(self, rid, until, e);
        if (rc == HELLO_WELCOME) {
            self->last_rx_ms = drv_now_ms();
            return 0;
        }
        if (rc == DV_EPERM &&
            (self->hs_failed != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
             ++refused < self->n_eps)) {
            // A member that closed mid-handshake (dying, starting over),
            // or one whose keys refuse ours while others may not: the next
            // one. Only a whole round of refusals is the caller's error.
            rc = HELLO_NEXT;
        }
        if (rc < 0) {
            return rc;
        }
        int64_t now = drv_now_ms();
        if (rc == HELLO_NEXT) { // nobody there (or silent): not the leader
            snprintf(dead, sizeof dead, "%s", ep);
            dead_at = now;
        }
        if (deadline >= 0 && now >= deadline) {
            return dv_errorf(e, DV_ETIMEDOUT,
                             "no leader of the broker group answered (last "
                             "tried %s)",
                             ep);
        }
        if (rc == HELLO_NOLEADER) {
            sleep_ms(DV_GROUP_NOLEADER_PAUSE_MS);
        }
        // Every entry refused at once (all down, or restarting): do not
        // spin through them.
        // Each try is a new socket (and its monitor), which libzmq reaps
        // later: rounds back off (50, 100, 200, 400 ms) so a long election
        // cannot exhaust the context's sockets.
        quick = rc == HELLO_NEXT && now - start < 20 ? quick + 1 : 0;
        if (quick >= self->n_eps) {
            sleep_ms(50 << (rounds < 3 ? rounds : 3));
            rounds++;
            quick = 0;
        }
    }
}

// Whether a blocking request of this type may be sent again to a new
// leader although the old one may have acted on it: reads, and submits
// carrying an idempotency key (the new leader answers a duplicate).
static bool
resendable(const dv_msg_t *m)
{
    switch (dv_msg_type(m)) {
    case DV_MSG_HELLO:
    case DV_MSG_PING:
    case DV_MSG_JOB_GET:
    case DV_MSG_RESULT_GET:
    case DV_MSG_MODEL_LIST:
    case DV_MSG_MODEL_GET:
    case DV_MSG_WORKER_LIST:
    case DV_MSG_STATUS:
    case DV_MSG_JOB_LIST:
    case DV_MSG_DEAD_LIST:
    case DV_MSG_DATASET_LIST:
    case DV_MSG_DATASET_GET:
    case DV_MSG_AUDIT_LIST:
    case DV_MSG_CLUSTER:
    case DV_MSG_CONSUMER_LIST:
        return true;
    case DV_MSG_SUBMIT:
        return dv_msg_has(m, "idempotency_key");
    default:
        return false;
    }
}

// After reaching a new leader: send again what may be, orphan the rest.
static void
resend_all(drover_t *self)
{
    if (self->want_rid && self->want_copy) {
        dv_msg_t *m = NULL;
        dv_error_t e = {0};
        bool again = self->want_notleader;
        if (!again &&
            dv_msg_decode(&m, self->want_copy, self->want_copy_len,
                          self->want_frames, self->want_n, NULL, &e) == 0) {
            again = resendable(m);
        }
        dv_msg_destroy(&m);
        if (again) {
            dv_wire_send(self->sock, NULL, 0, self->want_copy,
                         self->want_copy_len, self->want_frames, self->want_n);
        } else {
            self->want_lost = true;
        }
    }
    self->want_notleader = false;
    for (size_t b = 0; b < self->n_buckets; b++) {
        for (req_t *r = self->buckets[b]; r; r = r->next) {
            if (r->stream && r->resend && r->rid != self->want_rid) {
                // The follow again (its `ok` is ignored: a stream request
                // takes only results); delivery resumes after what was
                // acknowledged.
                dv_wire_send(self->sock, NULL, 0, r->resend, r->resend_len,
                             NULL, 0);
                continue;
            }
            if (r->rid == self->want_rid || r->stream) {
                continue;
            }
            if (r->job == 0 && r->resend) {
                dv_frame_t f = {r->resend_frame, r->resend_frame_len};
                dv_wire_send(self->sock, NULL, 0, r->resend, r->resend_len, &f,
                             1);
            } else if (r->job && !r->result && !r->ready && !r->ack_only) {
                drv_req_orphan(self, r);
            }
        }
    }
}

int
drv_group_check(drover_t *self, int64_t deadline)
{
    if (self->monitor) {
        drv_monitor_failed(self);
    }
    if (self->dropped) {
        self->failover_due = true;
    }
    int64_t now = drv_now_ms();
    bool pending = self->want_rid || self->n_reqs;
    if (!self->failover_due && pending) {
        if (!self->probe_sent_ms &&
            now - self->last_rx_ms >= DV_GROUP_SILENCE_MS) {
            dv_msgw_t *w = dv_msgw_new(DV_MSG_PING, ++self->next_rid);
            drv_send_msg(self, w, NULL, 0);
            self->probe_sent_ms = now;
        } else if (self->probe_sent_ms &&
                   now - self->probe_sent_ms >= DV_GROUP_PROBE_MS) {
            self->failover_due = true; // silent past a ping: stopped
        }
    }
    if (!self->failover_due) {
        return 0;
    }
    dv_error_t e = {0};
    int rc = drv_group_reach(self, false, deadline, &e);
    if (rc) {
        snprintf(self->group_why, sizeof self->group_why, "%s", e.text);
        return rc; // failover stays due: the next pump tries again
    }
    self->failover_due = false;
    resend_all(self);
    return 0;
}

bool
drv_group_saw(drover_t *self, const dv_msg_t *m)
{
    self->last_rx_ms = drv_now_ms();
    self->probe_sent_ms = 0;
    if (!is_notleader(m)) {
        return false;
    }
    take_hint(self, m);
    if (dv_msg_rid(m) && dv_msg_rid(m) == self->want_rid) {
        self->want_notleader = true;
    }
    if (!self->hint[0]) {
        sleep_ms(DV_GROUP_NOLEADER_PAUSE_MS); // an election: give it time
    }
    self->failover_due = true;
    return true;
}

void
drv_group_keep(drover_t *self, req_t *r, dv_msgw_t *w, const dv_frame_t *f)
{
    (void)self;
    size_t bl = 0, nf = 0, len = 0;
    const uint8_t *body = dv_msgw_body(w, &bl, &nf);
    dv_msgw_t *c = dv_msgw_new(DV_MSG_SUBMIT, r->rid);
    dv_msgw_raw(c, nf, body, bl);
    const uint8_t *h = dv_msgw_bytes(c, &len);
    r->resend = dv_malloc(len);
    memcpy(r->resend, h, len);
    r->resend_len = len;
    dv_msgw_destroy(&c);
    r->resend_frame = dv_malloc(f->len ? f->len : 1);
    if (f->len) {
        memcpy(r->resend_frame, f->data, f->len);
    }
    r->resend_frame_len = f->len;
}

void
drv_group_key(char buf[33])
{
    uint8_t raw[16];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        dv_assert(n > 0); // only EINTR before 256 bytes; never on Linux >= 3.17
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof raw; i++) {
        snprintf(buf + 2 * i, 3, "%02x", raw[i]);
    }
}

long
drv_orphans_poll(drover_t *self)
{
    int64_t now = drv_now_ms(), next = -1;
    for (size_t b = 0; b < self->n_buckets; b++) {
        for (req_t *r = self->buckets[b]; r; r = r->next) {
            if (!r->orphan || r->poll_at_ms == 0) {
                continue;
            }
            if (r->poll_at_ms <= now) {
                dv_msgw_t *w = dv_msgw_new(DV_MSG_RESULT_GET, r->rid);
                dv_msgw_uint(w, "job", r->job);
                drv_send_msg(self, w, NULL, 0);
                r->poll_at_ms = 0;
            } else if (next < 0 || r->poll_at_ms - now < next) {
                next = r->poll_at_ms - now;
            }
        }
    }
    return (long)next;
}
