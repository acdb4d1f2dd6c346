// dv_auth — the broker's ZAP handler and connection counts (see dv_auth.h).
//
// czmq ships a ZAP handler (zauth), but as an actor thread on czmq's own
// global context, taking its policy through commands; the broker owns its
// context and runs everything on one libuv loop. The handler's whole job is
// a table lookup, so it runs here, on the loop, where the keyring can be
// swapped on reload without locks. Key files are still czmq's (dv_keys).
//
// Counting (dv_auth.h): per socket, a table indexed by file descriptor
// (open: the monitor's ACCEPTED..DISCONNECTED; seen: counted under a key,
// with a hash of the routing id it was seen with) and per key id the
// connections seen and those admitted but not seen yet. What must stay
// true: a descriptor counts at most once (a message from an earlier
// connection on a reused descriptor moves the count instead of adding
// one), and DISCONNECTED uncounts it, so the totals never leak.
#include "dv_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_hash.h"
#include "dv_limits.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_zwatch.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_FRAMES                                                             \
    8 // version, id, domain, address, identity, mechanism,
      // credentials (CURVE: one)

// One key's connections on one socket.
typedef struct {
    char id[DV_KEY_ID_MAX + 1]; // key id ("": plain mode)
    size_t seen;                // connections counted by descriptor
    size_t admitted;            // handshakes admitted, not seen yet
    uint64_t admitted_ms;       // loop time of the newest admission
} keycount_t;

// One file descriptor of a socket.
typedef struct {
    bool open;      // accepted and not disconnected (monitor)
    bool seen;      // counted under keys[key]
    uint32_t key;   // index in the socket's keys
    uint64_t route; // hash of the routing id it was seen with
} conn_t;

// A socket's connection counts.
typedef struct {
    size_t max;       // authenticated connections at once (0: unlimited)
    const char *flag; // the option setting max, for refusals
    conn_t *conns;    // by descriptor (owned), n_conns of them
    size_t n_conns;   //
    keycount_t *keys; // per key id (owned): ids of the keyrings so far
    size_t n_keys;    //
    size_t seen;      // sum of keys[].seen
    size_t admitted;  // sum of keys[].admitted
} sock_t;

struct dv_auth {
    void *ctx;                     // the broker's (borrowed)
    uv_loop_t *loop;               //
    bool secure;                   // CURVE on
    dv_key_t server;               // the broker's key pair
    char *keys_dir;                // authorized keys folder (owned)
    dv_keyring_t *keyring;         // current keys
    void *zap;                     // REP on ZAP_ENDPOINT
    dv_zwatch_t *zap_watch;        //
    void *monitor[2];              // PAIR: each socket's monitor (clients,
    dv_zwatch_t *monitor_watch[2]; //   workers)
    void *watched[2];              // the sockets they monitor (borrowed)
    char monitor_domain[2][16];
    sock_t socks[2];  // counts (clients, workers)
    size_t max_key;   // per key per socket (0: unlimited)
    int handshake_ms; // ZMQ_HANDSHAKE_IVL, and how long an admitted
                      // connection counts before its first message
    dv_auth_refused_fn refused;
    void *refused_arg;
    dv_auth_gone_fn gone; // NULL once closing
    void *gone_arg;
};

// The entry for descriptor fd (grown on demand; fds are small integers
// bounded by the process's descriptor limit).
static conn_t *
conn_at(sock_t *s, int fd)
{
    size_t i = (size_t)fd;
    if (i >= s->n_conns) {
        size_t n = s->n_conns ? s->n_conns : 64;
        while (n <= i) {
            n *= 2;
        }
        s->conns = dv_realloc(s->conns, n * sizeof *s->conns);
        memset(s->conns + s->n_conns, 0, (n - s->n_conns) * sizeof *s->conns);
        s->n_conns = n;
    }
    return &s->conns[i];
}

// The index of key id's counts (added at first use).
static uint32_t
key_at(sock_t *s, const char *id)
{
    for (size_t i = 0; i < s->n_keys; i++) {
        if (strcmp(s->keys[i].id, id) == 0) {
            return (uint32_t)i;
        }
    }
    s->keys = dv_realloc(s->keys, (s->n_keys + 1) * sizeof *s->keys);
    keycount_t *k = &s->keys[s->n_keys];
    memset(k, 0, sizeof *k);
    snprintf(k->id, sizeof k->id, "%s", id);
    return (uint32_t)s->n_keys++;
}

// A connection on fd stopped counting (it disconnected, or a message shows
// the descriptor now belongs to another connection).
static void
unsee(sock_t *s, conn_t *c)
{
    if (c->seen) {
        s->keys[c->key].seen--;
        s->seen--;
        c->seen = false;
    }
}

// FNV-1a: a routing id tells two connections on one descriptor apart.
uint64_t
dv_auth_route_hash(const void *route, size_t len)
{
    return dv_hash_bytes(route, len, DV_HASH_BYTES_INIT);
}

// c's connection, which had spoken, is gone: stop counting it, and tell.
static void
gone(dv_auth_t *self, int i, conn_t *c)
{
    bool was = c->seen;
    uint64_t route = c->route;
    unsee(&self->socks[i], c);
    if (was && self->gone) {
        self->gone(self->monitor_domain[i], route, self->gone_arg);
    }
}

// Admissions older than the handshake time whose connection never spoke
// stop counting (dv_auth.h).
static void
expire(dv_auth_t *self, sock_t *s)
{
    uint64_t now = uv_now(self->loop);
    for (size_t i = 0; i < s->n_keys; i++) {
        keycount_t *k = &s->keys[i];
        if (k->admitted &&
            now - k->admitted_ms > (uint64_t)self->handshake_ms) {
            s->admitted -= k->admitted;
            k->admitted = 0;
        }
    }
}

// Would one more connection for key id pass socket s's limits? If not,
// why says which, with the numbers.
static bool
over_limit(dv_auth_t *self, sock_t *s, const char *id, char *why, size_t size)
{
    expire(self, s);
    uint32_t ki = key_at(s, id); // before taking s->keys: it may move
    const keycount_t *k = &s->keys[ki];
    if (s->max && s->seen + s->admitted >= s->max) {
        snprintf(why, size,
                 "too many connections (%zu authenticated open, %s %zu)",
                 s->seen + s->admitted, s->flag, s->max);
        return true;
    }
    if (self->secure && self->max_key &&
        k->seen + k->admitted >= self->max_key) {
        snprintf(why, size,
                 "too many connections for key '%s' (%zu open, "
                 "--max-key-connections %zu)",
                 id, k->seen + k->admitted, self->max_key);
        return true;
    }
    return false;
}

// Read monitor i's events: which descriptors are open (ACCEPTED and
// DISCONNECTED carry the descriptor), and handshakes that failed before
// authentication could run (a peer without a key, or with another
// mechanism: libzmq never asks the ZAP handler).
static void
drain_one(dv_auth_t *self, int i)
{
    while (self->monitor[i]) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, self->monitor[i], ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&ev) >= 6) {
            memcpy(&event, zmq_msg_data(&ev), sizeof event);
            memcpy(&value, (const uint8_t *)zmq_msg_data(&ev) + 2,
                   sizeof value);
        }
        bool more = zmq_msg_more(&ev);
        zmq_msg_close(&ev);
        if (more) { // the endpoint frame
            zmq_msg_init(&addr);
            zmq_msg_recv(&addr, self->monitor[i], 0);
            zmq_msg_close(&addr);
        }
        sock_t *s = &self->socks[i];
        if (event == ZMQ_EVENT_ACCEPTED && value < INT32_MAX) {
            conn_t *c = conn_at(s, (int)value);
            gone(self, i, c); // a binding left from the fd's last connection
            c->open = true;
        } else if (event == ZMQ_EVENT_DISCONNECTED && value < s->n_conns) {
            conn_t *c = &s->conns[value];
            gone(self, i, c);
            c->open = false;
        } else if (!self->secure &&
                   (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                    event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)) {
            // Plain mode authenticates nobody, so nothing was refused: a
            // port probe or a health check that connects and closes.
            dv_log(DV_LOG_DEBUG, "auth",
                   "a connection on %s closed before its ZeroMQ handshake "
                   "(a probe?)",
                   self->monitor_domain[i]);
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                   event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
            char why[128];
            // Which side notices first varies (the peer may hang up at
            // once): the reason is a guess, the failure is not.
            snprintf(why, sizeof why, "%s",
                     value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
                         ? "handshake failed before authentication: "
                           "mechanism mismatch (a peer without a key)"
                         : "handshake failed before authentication (a peer "
                           "without a key, or with the wrong broker key)");
            dv_log(
                DV_LOG_WARN, "auth",
                "refused on %s: %s (check the peer's --key and --broker-key)",
                self->monitor_domain[i], why);
            if (self->refused) {
                self->refused(self->monitor_domain[i], "(unknown)", "", why,
                              self->refused_arg);
            }
        }
    }
}

// Both monitors, from their watcher or from on_zap (which must see the
// descriptors a handshake reports before deciding); a read from on_zap is
// outside the monitors' sole watchers, so it is reported.
static void
drain_monitor(dv_auth_t *self)
{
    for (int i = 0; i < 2; i++) {
        drain_one(self, i);
        dv_zwatch_used(self->monitor[i]); // NULL: matches no watcher
    }
}

static int
on_monitor(dv_zwatch_t *zw, int events, void *arg)
{
    (void)zw;
    (void)events;
    drain_monitor(arg);
    return 0;
}

// The connection property naming the public key a peer proved at its
// handshake (Z85). libzmq attaches ZAP metadata to every message of the
// connection, as it does the User-Id: dv_auth_message_key compares it with
// the id's key now, so a key replaced under the same id cuts off the
// connections the old key opened.
#define KEY_PROPERTY "X-Drover-Key"

// A ZAP reply. pub_z85: the admitted key's public key ("" when refused),
// sent as metadata (RFC 27: ZMTP 3.0 metadata, name-size octet, name,
// 4-octet big-endian value-size, value).
static void
zap_reply(dv_auth_t *self,
          const zmq_msg_t *reqid,
          const char *code,
          const char *text,
          const char *user,
          const char *pub_z85)
{
    uint8_t meta[1 + sizeof KEY_PROPERTY + 4 + 40];
    size_t name_len = strlen(KEY_PROPERTY), value_len = strlen(pub_z85);
    size_t meta_len = 0;
    if (value_len == 40) {
        meta[0] = (uint8_t)name_len;
        memcpy(meta + 1, KEY_PROPERTY, name_len);
        uint8_t *v = meta + 1 + name_len;
        v[0] = v[1] = v[2] = 0;
        v[3] = (uint8_t)value_len;
        memcpy(v + 4, pub_z85, value_len);
        meta_len = 1 + name_len + 4 + value_len;
    }
    zmq_send(self->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(self->zap, zmq_msg_data((zmq_msg_t *)reqid),
             zmq_msg_size((zmq_msg_t *)reqid), ZMQ_SNDMORE);
    zmq_send(self->zap, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(self->zap, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(self->zap, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(self->zap, meta, meta_len, 0);
}

static void
frame_str(zmq_msg_t *f, char *buf, size_t size)
{
    size_t n = zmq_msg_size(f) < size - 1 ? zmq_msg_size(f) : size - 1;
    memcpy(buf, zmq_msg_data(f), n);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)buf[i] < 32 || (unsigned char)buf[i] > 126) {
            buf[i] = '?'; // goes to logs and the audit
        }
    }
}

// Decide one handshake.
static void
zap_decide(dv_auth_t *self, zmq_msg_t *f, size_t n)
{
    char domain[32], address[64], mech[16];
    frame_str(&f[2], domain, sizeof domain);
    frame_str(&f[3], address, sizeof address);
    frame_str(&f[5], mech, sizeof mech);
    char why[160] = "", key[DV_KEY_ID_MAX + 1] = "";
    const char *user = "";
    bool clients = strcmp(domain, "clients") == 0;
    drain_monitor(self);
    const dv_key_t *k = NULL;
    bool curve =
        strcmp(mech, "CURVE") == 0 && n >= 7 && zmq_msg_size(&f[6]) == 32;
    if (curve) { // who it is, for the log either way
        const uint8_t *pub = zmq_msg_data(&f[6]);
        k = dv_keyring_find(self->keyring, pub);
        if (k) {
            snprintf(key, sizeof key, "%s", k->id);
        } else {
            char z85[41];
            zmq_z85_encode(z85, pub, 32);
            snprintf(key, sizeof key, "%s", z85);
        }
    }
    if (strcmp(mech, "NULL") == 0) {
        if (self->secure) {
            snprintf(why, sizeof why, "plain connection to a CURVE broker");
        }
    } else if (!curve) {
        snprintf(why, sizeof why, "mechanism %s is not accepted", mech);
    } else if (!k) {
        snprintf(why, sizeof why, "unknown key %.12s...", key);
    } else {
        // A known key without the worker role is admitted on the workers
        // socket: a refused handshake tells a worker nothing (it would
        // retry for ever), while its `register` is answered DV_EPERM naming
        // the missing role (dv_authorize_worker refuses every message of
        // such a key), and the worker stops with that reason.
        unsigned need = DV_ROLE_PRODUCER | DV_ROLE_CONSUMER | DV_ROLE_ADMIN;
        if (clients && !(k->roles & need)) {
            char roles[64];
            snprintf(why, sizeof why,
                     "key '%s' (%s) may not connect as a client", k->id,
                     dv_roles_format(k->roles, roles, sizeof roles));
        } else {
            user = k->id;
        }
    }
    // Limits last: only a peer that proved its key (or, in plain mode,
    // finished the greeting) takes a slot or is refused for lack of one.
    sock_t *s = &self->socks[clients ? 0 : 1];
    if (!why[0] && !over_limit(self, s, user, why, sizeof why)) {
        uint32_t ki = key_at(s, user);
        keycount_t *kc = &s->keys[ki];
        kc->admitted++;
        kc->admitted_ms = uv_now(self->loop);
        s->admitted++;
    }
    if (why[0]) {
        dv_log(DV_LOG_WARN, "auth",
               "refused %s on %s from %s: %s (authorize its key or fix the "
               "peer's --key/--broker-key: docs/SECURITY.md)",
               mech, domain, address, why);
        if (self->refused) {
            self->refused(domain, address, key, why, self->refused_arg);
        }
        // 400 for limits too: libzmq answers a 300 ("temporary") by a
        // silent disconnect, and the client would retry blindly forever.
        zap_reply(self, &f[1], "400", why, "", "");
    } else {
        zap_reply(self, &f[1], "200", "OK", user, k ? k->public_z85 : "");
    }
}

static int
on_zap(dv_zwatch_t *zw, int events, void *arg)
{
    (void)zw;
    (void)events;
    dv_auth_t *self = arg;
    zmq_msg_t f[ZAP_FRAMES];
    size_t n = 0;
    bool more = true;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, self->zap, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&part);
            if (n == 0) {
                return 0; // nothing waiting
            }
            break;
        }
        more = zmq_msg_more(&part);
        if (n < ZAP_FRAMES) {
            f[n++] = part;
        } else {
            zmq_msg_close(&part);
        }
    }
    if (n >= 6) {
        zap_decide(self, f, n);
    } else if (n >= 2) {
        zap_reply(self, &f[1], "500", "malformed ZAP request", "", "");
    }
    for (size_t i = 0; i < n; i++) {
        zmq_msg_close(&f[i]);
    }
    return 1;
}

int
dv_auth_open(dv_auth_t **out,
             void *ctx,
             uv_loop_t *loop,
             const dv_auth_opts_t *opts,
             dv_error_t *err)
{
    dv_auth_t *self = dv_calloc(1, sizeof *self);
    self->ctx = ctx;
    self->loop = loop;
    self->socks[0].max = opts->max_connections;
    self->socks[0].flag = "--max-connections";
    self->socks[1].max = opts->max_worker_connections;
    self->socks[1].flag = "--max-worker-connections";
    self->max_key = opts->max_key_connections;
    self->handshake_ms =
        opts->handshake_ms > 0 ? opts->handshake_ms : DV_HANDSHAKE_MS;
    self->refused = opts->refused;
    self->refused_arg = opts->refused_arg;
    self->gone = opts->gone;
    self->gone_arg = opts->gone_arg;
    int rc = 0;
    if (opts->secret_key) {
        self->secure = true;
        if (!opts->keys_dir) {
            rc = dv_errorf(err, DV_EINVAL,
                           "--secret-key needs --authorized-keys DIR (the "
                           "public keys allowed in, with their roles)");
        }
        if (rc == 0) {
            rc = dv_key_load(&self->server, opts->secret_key, err);
        }
        if (rc == 0 && !self->server.has_secret) {
            rc = dv_errorf(err, DV_EINVAL,
                           "%s holds no secret key: give the broker its "
                           ".key file, not the .pub",
                           opts->secret_key);
        }
        if (rc == 0) {
            self->keys_dir = dv_strdup(opts->keys_dir);
            rc = dv_keyring_load(&self->keyring, self->keys_dir, err);
        }
    }
    if (rc == 0) {
        self->zap = zmq_socket(ctx, ZMQ_REP);
        int linger = 0;
        zmq_setsockopt(self->zap, ZMQ_LINGER, &linger, sizeof linger);
        if (zmq_bind(self->zap, ZAP_ENDPOINT) != 0) {
            rc = dv_errorf(err, DV_EIO, "cannot bind the ZAP handler: %s",
                           zmq_strerror(zmq_errno()));
        }
    }
    if (rc == 0) {
        rc = dv_zwatch_open(&self->zap_watch, loop, self->zap,
                            DV_ZWATCH_READABLE, on_zap, self, err);
    }
    if (rc == 0) {
        dv_zwatch_set_sole(self->zap_watch); // replies only from on_zap
    }
    if (rc) {
        dv_auth_destroy(&self);
        return rc;
    }
    *out = self;
    return 0;
}

void
dv_auth_close(dv_auth_t *self)
{
    if (!self) {
        return;
    }
    self->gone = NULL; // the owner is closing: nothing to tell
    if (self->zap_watch) {
        dv_zwatch_close(self->zap_watch, NULL, NULL);
        self->zap_watch = NULL;
    }
    for (int i = 0; i < 2; i++) {
        if (self->monitor_watch[i]) {
            dv_zwatch_close(self->monitor_watch[i], NULL, NULL);
            self->monitor_watch[i] = NULL;
        }
        // Stop the monitor before the socket closes, and read what it sent:
        // closing a socket emits DISCONNECTED for each connection, and an
        // event left unread in the inproc pipe at zmq_ctx_term is leaked by
        // libzmq (4.3.4; LeakSanitizer saw its 41-byte endpoint frame). No
        // event comes after zmq_socket_monitor(NULL): drained, nothing is
        // left.
        if (self->watched[i]) {
            zmq_socket_monitor(self->watched[i], NULL, 0);
            self->watched[i] = NULL;
            drain_one(self, i);
        }
    }
}

void
dv_auth_destroy(dv_auth_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_auth_t *self = *self_p;
    dv_auth_close(self);
    if (self->zap) {
        zmq_close(self->zap);
    }
    for (int i = 0; i < 2; i++) {
        if (self->monitor[i]) {
            zmq_close(self->monitor[i]);
        }
    }
    for (int i = 0; i < 2; i++) {
        free(self->socks[i].conns);
        free(self->socks[i].keys);
    }
    dv_keyring_destroy(&self->keyring);
    dv_key_clear(&self->server);
    free(self->keys_dir);
    free(self);
    *self_p = NULL;
}

int
dv_auth_socket(dv_auth_t *self,
               void *socket,
               const char *domain,
               dv_error_t *err)
{
    bool clients = strcmp(domain, "clients") == 0;
    int rc = 0;
    if (self->secure) {
        int on = 1;
        rc |= zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &on, sizeof on);
        rc |= zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY,
                             self->server.secret_key, 32);
    }
    int i = clients ? 0 : 1;
    if (self->secure || self->socks[i].max) {
        // Plain mode asks the handler too (for NULL connections libzmq
        // consults ZAP only when a domain is set): the connection limit.
        rc |= zmq_setsockopt(socket, ZMQ_ZAP_DOMAIN, domain, strlen(domain));
    }
    // A peer that never finishes its handshake is dropped after this, so
    // it holds a descriptor for a bounded time (it never holds a slot).
    rc |= zmq_setsockopt(socket, ZMQ_HANDSHAKE_IVL, &self->handshake_ms,
                         sizeof self->handshake_ms);
    if (rc == 0 && !self->monitor[i]) {
        char ep[80];
        snprintf(ep, sizeof ep, "inproc://dv-auth-monitor-%s-%p", domain,
                 (void *)self);
        snprintf(self->monitor_domain[i], sizeof self->monitor_domain[i], "%s",
                 domain);
        rc = zmq_socket_monitor(socket, ep,
                                ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED |
                                    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                    ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL);
        if (rc == 0) {
            self->watched[i] = socket;
            self->monitor[i] = zmq_socket(self->ctx, ZMQ_PAIR);
            // No receive limit: libzmq drops monitor events past the
            // pipe's limit, and a lost DISCONNECTED would leak a slot. The
            // loop reads them every turn; they pile up only while it is
            // blocked, a few dozen bytes per connection event.
            int unlimited = 0;
            zmq_setsockopt(self->monitor[i], ZMQ_RCVHWM, &unlimited,
                           sizeof unlimited);
            rc = zmq_connect(self->monitor[i], ep);
        }
        if (rc == 0 && dv_zwatch_open(&self->monitor_watch[i], self->loop,
                                      self->monitor[i], DV_ZWATCH_READABLE,
                                      on_monitor, self, err) != 0) {
            return err ? err->code : DV_EIO;
        }
        if (rc == 0) {
            dv_zwatch_set_sole(self->monitor_watch[i]); // read by on_monitor
        }
    }
    if (rc != 0) {
        return dv_errorf(err, DV_EIO, "cannot secure the %s socket: %s", domain,
                         zmq_strerror(zmq_errno()));
    }
    return 0;
}

bool
dv_auth_secure(const dv_auth_t *self)
{
    return self && self->secure;
}

const char *
dv_auth_public_z85(const dv_auth_t *self)
{
    return self && self->secure ? self->server.public_z85 : "";
}

int
dv_auth_reload(dv_auth_t *self, size_t *n, dv_error_t *err)
{
    if (!self->secure) {
        return dv_errorf(err, DV_EINVAL,
                         "the broker runs in plain mode: there are no keys "
                         "to reload (start it with --secret-key and "
                         "--authorized-keys)");
    }
    dv_keyring_t *fresh = NULL;
    int rc = dv_keyring_load(&fresh, self->keys_dir, err);
    if (rc) {
        return rc; // the old keys stay
    }
    dv_keyring_destroy(&self->keyring);
    self->keyring = fresh;
    if (n) {
        *n = dv_keyring_size(fresh);
    }
    return 0;
}

const dv_key_t *
dv_auth_message_key(const dv_auth_t *self, zmq_msg_t *frame, const char **id)
{
    const char *user =
        self && self->secure ? zmq_msg_gets(frame, "User-Id") : NULL;
    if (id) {
        *id = user ? user : "";
    }
    const dv_key_t *k = user ? dv_keyring_find_id(self->keyring, user) : NULL;
    // The id's key now must be the one the connection proved: a .pub
    // replaced under the same id in one reload leaves the id, not the key.
    const char *proved = k ? zmq_msg_gets(frame, KEY_PROPERTY) : NULL;
    return proved && strcmp(proved, k->public_z85) == 0 ? k : NULL;
}

const dv_key_t *
dv_auth_key_by_id(const dv_auth_t *self, const char *id)
{
    return self && self->keyring ? dv_keyring_find_id(self->keyring, id) : NULL;
}

int
dv_auth_seen(dv_auth_t *self,
             const char *domain,
             zmq_msg_t *route,
             zmq_msg_t *frame,
             bool *closed,
             dv_error_t *err)
{
    int i = strcmp(domain, "clients") == 0 ? 0 : 1;
    sock_t *s = &self->socks[i];
    if (closed) {
        *closed = false;
    }
    int fd = zmq_msg_get(frame, ZMQ_SRCFD);
    if (fd < 0) {
        return 0; // no descriptor (inproc): nothing to count by
    }
    uint64_t h = dv_auth_route_hash(zmq_msg_data(route), zmq_msg_size(route));
    conn_t *c = conn_at(s, fd);
    if (c->seen && c->route == h) {
        return 0; // counted already: the common case
    }
    drain_one(self, i); // its ACCEPTED, or a DISCONNECTED since
    c = conn_at(s, fd);
    if (!c->open) { // gone already: a message left from a closed connection
        if (closed) {
            *closed = true;
        }
        return 0;
    }
    gone(self, i, c); // the descriptor's earlier connection, if any
    const char *id = self->secure ? zmq_msg_gets(frame, "User-Id") : NULL;
    id = id ? id : "";
    uint32_t ki = key_at(s, id);
    expire(self, s);
    if (s->keys[ki].admitted) { // its handshake: admitted, now seen
        s->keys[ki].admitted--;
        s->admitted--;
    } else {
        char why[160];
        if (over_limit(self, s, id, why, sizeof why)) {
            dv_log(DV_LOG_WARN, "auth",
                   "refused a message on %s: %s (raise the --max-*-connections "
                   "limits, or find the peer opening so many)",
                   self->monitor_domain[i], why);
            if (self->refused) {
                self->refused(self->monitor_domain[i], "(unknown)", id, why,
                              self->refused_arg);
            }
            return dv_errorf(err, DV_ELIMIT,
                             "%s: this connection stayed silent past the "
                             "handshake time and lost its slot; reconnect",
                             why);
        }
    }
    c = conn_at(s, fd);
    c->seen = true;
    c->key = ki;
    c->route = h;
    s->keys[ki].seen++;
    s->seen++;
    return 0;
}

size_t
dv_auth_connections(const dv_auth_t *self)
{
    return self ? self->socks[0].seen + self->socks[0].admitted : 0;
}
