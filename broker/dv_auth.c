// dv_auth — the broker's ZAP handler and connection counts (see dv_auth.h).
//
// czmq ships a ZAP handler (zauth), but as an actor thread on czmq's own
// global context, taking its policy through commands; the broker owns its
// context and runs everything on one libuv loop. The handler's whole job is
// a table lookup, so it runs here, on the loop, where the keyring can be
// swapped on reload without locks. Key files are still czmq's (dv_keys).
#include "dv_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_log.h"
#include "dv_mem.h"
#include "dv_zwatch.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_FRAMES                                                             \
    8 // version, id, domain, address, identity, mechanism,
      // credentials (CURVE: one)

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
    char monitor_domain[2][16];
    size_t open;            // client connections now
    size_t max_connections; // 0: unlimited
    dv_auth_refused_fn refused;
    void *refused_arg;
};

// Read monitor i's events: connection counts (the client socket), and
// handshakes that failed before authentication could run (a peer without
// a key, or with another mechanism: libzmq never asks the ZAP handler).
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
        bool clients = i == 0;
        if (event == ZMQ_EVENT_ACCEPTED && clients) {
            self->open++;
        } else if (event == ZMQ_EVENT_DISCONNECTED && clients &&
                   self->open > 0) {
            self->open--;
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
            dv_log(DV_LOG_WARN, "auth", "refused on %s: %s",
                   self->monitor_domain[i], why);
            if (self->refused) {
                self->refused(self->monitor_domain[i], "(unknown)", "", why,
                              self->refused_arg);
            }
        }
    }
}

static void
drain_monitor(dv_auth_t *self)
{
    drain_one(self, 0);
    drain_one(self, 1);
}

static int
on_monitor(dv_zwatch_t *zw, int events, void *arg)
{
    (void)zw;
    (void)events;
    drain_monitor(arg);
    return 0;
}

static void
zap_reply(dv_auth_t *self,
          const zmq_msg_t *reqid,
          const char *code,
          const char *text,
          const char *user)
{
    zmq_send(self->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(self->zap, zmq_msg_data((zmq_msg_t *)reqid),
             zmq_msg_size((zmq_msg_t *)reqid), ZMQ_SNDMORE);
    zmq_send(self->zap, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(self->zap, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(self->zap, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(self->zap, "", 0, 0); // no metadata
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
    if (clients && self->max_connections &&
        self->open > self->max_connections) {
        snprintf(why, sizeof why,
                 "too many connections (%zu open, --max-connections %zu)",
                 self->open, self->max_connections);
    } else if (strcmp(mech, "NULL") == 0) {
        if (self->secure) {
            snprintf(why, sizeof why, "plain connection to a CURVE broker");
        }
    } else if (!curve) {
        snprintf(why, sizeof why, "mechanism %s is not accepted", mech);
    } else if (!k) {
        snprintf(why, sizeof why, "unknown key %.12s...", key);
    } else {
        unsigned need =
            clients ? DV_ROLE_PRODUCER | DV_ROLE_CONSUMER | DV_ROLE_ADMIN
                    : DV_ROLE_WORKER | DV_ROLE_ADMIN;
        if (!(k->roles & need)) {
            char roles[64];
            snprintf(why, sizeof why, "key '%s' (%s) may not connect as %s",
                     k->id, dv_roles_format(k->roles, roles, sizeof roles),
                     clients ? "a client" : "a worker");
        } else {
            user = k->id;
        }
    }
    if (why[0]) {
        dv_log(DV_LOG_WARN, "auth", "refused %s on %s from %s: %s", mech,
               domain, address, why);
        if (self->refused) {
            self->refused(domain, address, key, why, self->refused_arg);
        }
        zap_reply(self, &f[1], "400", why, "");
    } else {
        zap_reply(self, &f[1], "200", "OK", user);
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
        zap_reply(self, &f[1], "500", "malformed ZAP request", "");
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
    self->max_connections = opts->max_connections;
    self->refused = opts->refused;
    self->refused_arg = opts->refused_arg;
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
    if (self->zap_watch) {
        dv_zwatch_close(self->zap_watch, NULL, NULL);
        self->zap_watch = NULL;
    }
    for (int i = 0; i < 2; i++) {
        if (self->monitor_watch[i]) {
            dv_zwatch_close(self->monitor_watch[i], NULL, NULL);
            self->monitor_watch[i] = NULL;
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
    if (self->secure || (clients && self->max_connections)) {
        // Plain mode asks the handler too (for NULL connections libzmq
        // consults ZAP only when a domain is set): the connection limit.
        rc |= zmq_setsockopt(socket, ZMQ_ZAP_DOMAIN, domain, strlen(domain));
    }
    int i = clients ? 0 : 1;
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
            self->monitor[i] = zmq_socket(self->ctx, ZMQ_PAIR);
            rc = zmq_connect(self->monitor[i], ep);
        }
        if (rc == 0 && dv_zwatch_open(&self->monitor_watch[i], self->loop,
                                      self->monitor[i], DV_ZWATCH_READABLE,
                                      on_monitor, self, err) != 0) {
            return err ? err->code : DV_EIO;
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
    return user ? dv_keyring_find_id(self->keyring, user) : NULL;
}

const dv_key_t *
dv_auth_key_by_id(const dv_auth_t *self, const char *id)
{
    return self && self->keyring ? dv_keyring_find_id(self->keyring, id) : NULL;
}

size_t
dv_auth_connections(const dv_auth_t *self)
{
    return self ? self->open : 0;
}
