// dv_http — libmicrohttpd on the libuv loop (see dv_http.h).
#include "dv_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_limits.h"
#include "dv_mem.h"

struct dv_http {
    struct MHD_Daemon *mhd;
    uv_poll_t poll;   // MHD's epoll descriptor
    uv_timer_t timer; // MHD's next timeout
    int open_handles; // libuv handles not yet closed
    char *token;      // owned; NULL: none
    bool exposed;     // bound beyond loopback
    dv_http_fn *fn;
    void *arg;
    char address[80]; // bound, "HOST:PORT"
};

int
dv_http_parse_address(const char *address,
                      struct sockaddr_storage *sa,
                      bool *exposed,
                      dv_error_t *err)
{
    memset(sa, 0, sizeof *sa);
    const char *colon = address ? strrchr(address, ':') : NULL;
    if (!colon || colon == address || !colon[1]) {
        return dv_errorf(err, DV_EINVAL,
                         "HTTP address '%s': HOST:PORT, e.g. 127.0.0.1:7480",
                         address ? address : "");
    }
    char *end = NULL;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || port > 65535) {
        return dv_errorf(err, DV_EINVAL, "HTTP address '%s': bad port",
                         address);
    }
    char host[64];
    size_t hl = (size_t)(colon - address);
    if (hl >= sizeof host) {
        return dv_errorf(err, DV_EINVAL, "HTTP address '%s': host too long",
                         address);
    }
    memcpy(host, address, hl);
    host[hl] = '\0';
    bool loopback = false;
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1) {
            return dv_errorf(err, DV_EINVAL,
                             "HTTP address '%s': bad IPv6 address", address);
        }
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
        const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
        if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1) {
            return dv_errorf(err, DV_EINVAL,
                             "HTTP address '%s': the host must be an IPv4 "
                             "address, [IPv6] or localhost",
                             address);
        }
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    }
    if (exposed) {
        *exposed = !loopback;
    }
    return 0;
}

static void run_mhd(dv_http_t *self);

static void
on_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    run_mhd(p->data);
}

static void
on_timer(uv_timer_t *t)
{
    run_mhd(t->data);
}

// Let MHD do what is ready, then wake again by its next timeout.
static void
run_mhd(dv_http_t *self)
{
    MHD_run(self->mhd);
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (MHD_get_timeout(self->mhd, &ms) == MHD_YES) {
        uv_timer_start(&self->timer, on_timer, ms, 0);
    } else {
        uv_timer_stop(&self->timer);
    }
}

// Whether the request carries the bearer token (constant-time compare).
static bool
authorized(const dv_http_t *self, struct MHD_Connection *c)
{
    if (!self->token) {
        return true;
    }
    const char *h =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    static const char bearer[] = "Bearer ";
    if (!h || strncmp(h, bearer, sizeof bearer - 1) != 0) {
        return false;
    }
    h += sizeof bearer - 1;
    size_t n = strlen(self->token);
    return strlen(h) == n && sodium_memcmp(h, self->token, n) == 0;
}

static enum MHD_Result
query_arg(void *cls,
          enum MHD_ValueKind kind,
          const char *key,
          const char *value)
{
    (void)kind;
    char *q = cls;
    size_t used = strlen(q);
    snprintf(q + used, 1024 - used, "%s%s%s%s", used ? "&" : "", key,
             value ? "=" : "", value ? value : "");
    return MHD_YES;
}

static enum MHD_Result
answer(void *cls,
       struct MHD_Connection *c,
       const char *url,
       const char *method,
       const char *version,
       const char *upload_data,
       size_t *upload_data_size,
       void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)con_cls;
    dv_http_t *self = cls;
    dv_http_reply_t r = {404, "text/plain; charset=utf-8", NULL, 0};
    bool head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!head && strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
        r.status = MHD_HTTP_METHOD_NOT_ALLOWED;
        r.body = dv_strdup("only GET and HEAD\n");
    } else if (*upload_data_size) {
        *upload_data_size = 0; // a GET with a body: ignore it
        r.status = MHD_HTTP_BAD_REQUEST;
        r.body = dv_strdup("no request body expected\n");
    } else if (!authorized(self, c)) {
        r.status = MHD_HTTP_UNAUTHORIZED;
        r.body = dv_strdup("this endpoint needs Authorization: Bearer TOKEN "
                           "(drover-broker --http-token)\n");
    } else {
        char query[1024] = "";
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_arg, query);
        self->fn(self->arg, url, query, &r);
    }
    if (r.body && !r.len) {
        r.len = strlen(r.body);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        head ? 0 : r.len, head ? (void *)"" : (r.body ? r.body : ""),
        MHD_RESPMEM_MUST_COPY);
    free(r.body);
    if (!resp) {
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (r.status == MHD_HTTP_UNAUTHORIZED) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer");
    }
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)r.status, resp);
    MHD_destroy_response(resp);
    return rc;
}

int
dv_http_open(dv_http_t **out,
             uv_loop_t *loop,
             const dv_http_opts_t *opts,
             dv_error_t *err)
{
    *out = NULL;
    struct sockaddr_storage sa;
    bool exposed = false;
    int rc = dv_http_parse_address(opts->address, &sa, &exposed, err);
    if (rc) {
        return rc;
    }
    if (exposed && !(opts->token && *opts->token) && !opts->allow_exposed) {
        return dv_errorf(err, DV_EINVAL,
                         "HTTP address %s is reachable from other machines: "
                         "give it a token (--http-token FILE) or run in "
                         "--plain mode (a private network), or bind "
                         "127.0.0.1",
                         opts->address);
    }
    dv_http_t *self = dv_calloc(1, sizeof *self);
    self->fn = opts->fn;
    self->arg = opts->arg;
    self->exposed = exposed;
    self->token = opts->token && *opts->token ? dv_strdup(opts->token) : NULL;
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     (sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    self->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, answer, self, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)DV_MAX_HTTP_CONNECTIONS, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        DV_MAX_HTTP_REQUEST_BYTES, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)DV_HTTP_IDLE_S, MHD_OPTION_END);
    if (!self->mhd) {
        free(self->token);
        free(self);
        return dv_errorf(err, DV_EIO,
                         "cannot serve HTTP on %s (address in use, or not "
                         "one of this machine's)",
                         opts->address);
    }
    const union MHD_DaemonInfo *epfd =
        MHD_get_daemon_info(self->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *port =
        MHD_get_daemon_info(self->mhd, MHD_DAEMON_INFO_BIND_PORT);
    char host[64];
    const char *colon = strrchr(opts->address, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - opts->address),
             opts->address);
    snprintf(self->address, sizeof self->address, "%s:%u", host,
             port ? (unsigned)port->port : 0u);
    uv_timer_init(loop, &self->timer);
    self->timer.data = self;
    self->open_handles = 1;
    if (!epfd || uv_poll_init(loop, &self->poll, epfd->epoll_fd) != 0) {
        dv_http_close(self);
        return dv_errorf(err, DV_EIO, "cannot watch the HTTP server's epoll");
    }
    self->poll.data = self;
    self->open_handles++;
    uv_poll_start(&self->poll, UV_READABLE, on_poll);
    run_mhd(self);
    *out = self;
    return 0;
}

const char *
dv_http_address(const dv_http_t *self)
{
    return self->address;
}

bool
dv_http_exposed(const dv_http_t *self)
{
    return self->exposed;
}

static void
on_closed(uv_handle_t *h)
{
    dv_http_t *self = h->data;
    if (--self->open_handles == 0) {
        MHD_stop_daemon(self->mhd);
        free(self->token);
        free(self);
    }
}

void
dv_http_close(dv_http_t *self)
{
    if (!self) {
        return;
    }
    if (self->open_handles == 2) {
        uv_close((uv_handle_t *)&self->poll, on_closed);
    }
    uv_close((uv_handle_t *)&self->timer, on_closed);
}
