// dv_http — a small HTTP/1.1 endpoint on the broker's libuv loop, for
// GET requests only (Prometheus /metrics, the status page and its JSON).
//
// libmicrohttpd does the HTTP (parsing, keep-alive, limits): it runs in
// its "external epoll" mode, its one epoll descriptor watched by a
// uv_poll_t and its timeouts by a uv_timer_t, so every request is answered
// on the loop thread and the handler may read broker state without locks.
//
// Who may ask: an address on loopback is open to local processes; any
// other needs a bearer token (`Authorization: Bearer TOKEN`, compared in
// constant time) unless the caller allows it unauthenticated (the broker's
// --plain: a private network). dv_http_open refuses an exposed address
// without either, so a metrics port never ends up on the internet by
// accident (docs/SECURITY.md).
//
// Ownership: dv_http_t is owned by its creator; dv_http_close starts an
// asynchronous close (libuv handles), the loop frees it.
#ifndef DV_HTTP_H
#define DV_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "dv_err.h"

typedef struct dv_http dv_http_t;

// One answer. The handler sets status (200, 404, ...), content_type (a
// static string) and body: malloc'd bytes dv_http takes (frees), len of
// them. A NULL body is an empty one.
typedef struct {
    int status;
    const char *content_type;
    char *body;
    size_t len;
} dv_http_reply_t;

// Called on the loop thread for each authorized GET or HEAD. path is the
// URL path without the query ("/metrics"); query is the raw query string
// ("" when none). reply starts as 404 text/plain with no body.
typedef void dv_http_fn(void *arg,
                        const char *path,
                        const char *query,
                        dv_http_reply_t *reply);

typedef struct {
    const char *address; // "HOST:PORT": an IPv4 address, [IPv6], or
                         // localhost; port 0 picks a free one
    const char *token;   // bearer token, or NULL
    bool allow_exposed;  // serve an exposed address without a token
    dv_http_fn *fn;      // the handler
    void *arg;           //   and its argument
} dv_http_opts_t;

// Listen on opts->address on loop. Returns 0 and *out, or DV_EINVAL (bad
// address; an exposed one with no token and no allow_exposed), DV_EIO
// (cannot bind: the reason says why), DV_ENOMEM.
int dv_http_open(dv_http_t **out,
                 uv_loop_t *loop,
                 const dv_http_opts_t *opts,
                 dv_error_t *err);

// The bound address ("127.0.0.1:41234": the port picked for port 0).
const char *dv_http_address(const dv_http_t *self);

// Whether the bound address is reachable from other machines.
bool dv_http_exposed(const dv_http_t *self);

// Stop serving; the handles close on the loop, which frees self. NULL-safe.
void dv_http_close(dv_http_t *self);

// Parse "HOST:PORT" into a socket address (numeric IPv4, [IPv6] or
// localhost). Returns 0 or DV_EINVAL with the reason. exposed (may be
// NULL) tells whether it is reachable from other machines (anything but
// loopback).
int dv_http_parse_address(const char *address,
                          struct sockaddr_storage *sa,
                          bool *exposed,
                          dv_error_t *err);

#endif
