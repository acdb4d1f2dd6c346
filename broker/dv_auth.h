// dv_auth — who may connect to the broker, and as whom.
//
// The broker's ZeroMQ sockets run the CURVE mechanism (encryption and
// authentication, RFC 26) with the broker's secret key; libzmq asks a ZAP
// handler (RFC 27) about every handshake. dv_auth is that handler: a REP
// socket on inproc://zeromq.zap.01 in the broker's context, served on the
// broker's libuv loop (no thread, so a reload swaps the keyring without a
// lock). It admits a client or worker whose public key is in the
// authorized-keys folder (dv_keyring) with a role fit for the socket it
// connects to (domain "clients": producer, consumer or admin; "workers":
// worker or admin), and names it by its key id (the ZAP User-Id, which
// libzmq attaches to every message from that connection:
// dv_auth_message_key).
//
// Without a secret key the broker runs in plain mode (no encryption, anyone
// may connect: for ipc:// and 127.0.0.1 development); the handler still
// runs, to enforce the connection limits.
//
// Connection limits count authenticated connections only, so peers that
// open TCP connections and never finish a handshake cannot lock authorized
// ones out (libzmq closes those after handshake_ms: ZMQ_HANDSHAKE_IVL).
// A connection counts from the handshake this handler admits: first as
// "admitted" under its key, then, from its first message
// (dv_auth_seen), by its file descriptor (the message's ZMQ_SRCFD), until
// the socket monitor reports that descriptor disconnected. libzmq tells
// the handler nothing that ties a handshake to a descriptor, so an
// admitted connection that sends nothing within handshake_ms stops
// counting until it speaks; if by then its socket or key is full, its
// messages are refused (dv_auth_seen: DV_ELIMIT). Past max_connections on
// a socket, or max_key_connections for one key on it, a new handshake is
// refused (audited).
//
// Threads: the broker's loop thread only.
#ifndef DV_AUTH_H
#define DV_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>
#include <zmq.h>

#include "dv_err.h"
#include "dv_keys.h"

typedef struct dv_auth dv_auth_t;

// A refused handshake, for the audit log: the domain, the peer's address,
// the key id (or the public key in Z85 for an unknown key, "" in plain
// mode) and why.
typedef void (*dv_auth_refused_fn)(const char *domain,
                                   const char *address,
                                   const char *key,
                                   const char *why,
                                   void *arg);

// A connection that had spoken (dv_auth_seen) closed: route_hash
// (dv_auth_route_hash) names the routing id it spoke under, which libzmq
// never gives another connection of that socket. Called on the loop
// thread, from the monitor's watcher or from dv_auth_seen (before the
// message it counts is served); never while closing.
typedef void (*dv_auth_gone_fn)(const char *domain,
                                uint64_t route_hash,
                                void *arg);

typedef struct {
    const char *secret_key;     // the broker's .key file (NULL: plain mode)
    const char *keys_dir;       // authorized keys (*.pub; required with a key)
    size_t max_connections;     // on the client socket (0: unlimited)
    dv_auth_refused_fn refused; // may be NULL
    void *refused_arg;
    size_t max_worker_connections; // on the worker socket (0: unlimited)
    size_t max_key_connections;    // per key per socket (0: unlimited; not
                                   // in plain mode, which has no keys)
    int handshake_ms;     // a handshake's time limit (0: DV_HANDSHAKE_MS)
    dv_auth_gone_fn gone; // may be NULL
    void *gone_arg;
} dv_auth_opts_t;

// The hash of a routing id that dv_auth_gone_fn names.
uint64_t dv_auth_route_hash(const void *route, size_t len);

// Load the keys and bind the ZAP handler in ctx (before any socket that
// uses it binds). Returns 0 and *out, or the key/keyring error.
int dv_auth_open(dv_auth_t **out,
                 void *ctx,
                 uv_loop_t *loop,
                 const dv_auth_opts_t *opts,
                 dv_error_t *err);
// Stop watching (before the owner's last uv_run, which frees the
// watchers, and before the owner closes the sockets it secured: their
// monitors are stopped and drained here); then destroy closes the
// sockets (before zmq_ctx_term) and frees. NULL-safe.
void dv_auth_close(dv_auth_t *self);
void dv_auth_destroy(dv_auth_t **self_p);

// Before socket binds: CURVE server with the broker's key (when there is
// one) in domain "clients" or "workers", the handshake time limit, and a
// monitor for connection counts. Returns 0 or DV_EIO.
int dv_auth_socket(dv_auth_t *self,
                   void *socket,
                   const char *domain,
                   dv_error_t *err);

// True when the broker runs CURVE.
bool dv_auth_secure(const dv_auth_t *self);
// The broker's public key in Z85 ("" in plain mode).
const char *dv_auth_public_z85(const dv_auth_t *self);

// Reload the authorized keys. On failure the old ones stay (err says
// why). *n (may be NULL) gets the count loaded.
int dv_auth_reload(dv_auth_t *self, size_t *n, dv_error_t *err);

// The key a message came from: its frame's User-Id looked up in the
// current keyring, if that id's key is still the public key the connection
// proved at its handshake (ZAP metadata). NULL in plain mode, or when the
// key was revoked or replaced under its id since the connection was made
// (*id, may be NULL, still names it then).
const dv_key_t *
dv_auth_message_key(const dv_auth_t *self, zmq_msg_t *frame, const char **id);

// The current keyring's key with id (NULL: none, or plain mode).
const dv_key_t *dv_auth_key_by_id(const dv_auth_t *self, const char *id);

// A message arrived on the socket of domain ("clients" or "workers");
// route is its routing id frame and frame one it carried, read from the
// connection (its header): libzmq sets ZMQ_SRCFD on those, and not always
// on the routing id ROUTER makes, which left every connection uncounted
// once its handshake's admission expired. Counts the connection under its
// key from now on. *closed (may be NULL): the connection had closed
// already (libzmq reported it gone before its last messages were read).
// Returns 0, or DV_ELIMIT with the numbers when the connection was
// admitted, stayed silent past the handshake time and now finds its
// socket or key full (logged and audited; the caller refuses the
// message).
int dv_auth_seen(dv_auth_t *self,
                 const char *domain,
                 zmq_msg_t *route,
                 zmq_msg_t *frame,
                 bool *closed,
                 dv_error_t *err);

// Authenticated connections on the client socket now (admitted ones
// included).
size_t dv_auth_connections(const dv_auth_t *self);

#endif
