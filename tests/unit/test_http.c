// test_http — the broker's HTTP endpoint (dv_http) on a libuv loop running
// in a thread, asked by plain sockets: GET answered by the handler, other
// methods refused, the bearer token on an address that needs one, exposed
// addresses refused without a token, and the address parser's table.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "dv_http.h"
#include "dv_mem.h"
#include "dv_test.h"

typedef struct {
    uv_loop_t loop;
    uv_async_t stop;
    dv_http_t *http;
    pthread_t thread;
    int calls;
} server_t;

static void
handler(void *arg, const char *path, const char *query, dv_http_reply_t *r)
{
    server_t *s = arg;
    s->calls++;
    if (strcmp(path, "/hello") == 0) {
        r->status = 200;
        r->content_type = "text/plain; version=0.0.4";
        size_t n = strlen(query) + 16;
        r->body = dv_malloc(n);
        snprintf(r->body, n, "hi [%s]\n", query);
    }
}

static void
on_stop(uv_async_t *a)
{
    server_t *s = a->data;
    dv_http_close(s->http);
    uv_close((uv_handle_t *)&s->stop, NULL);
}

static void *
run(void *arg)
{
    server_t *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int
start(server_t *s, const char *address, const char *token, dv_error_t *err)
{
    memset(s, 0, sizeof *s);
    uv_loop_init(&s->loop);
    dv_http_opts_t o = {address, token, false, handler, s};
    int rc = dv_http_open(&s->http, &s->loop, &o, err);
    if (rc) {
        uv_loop_close(&s->loop);
        return rc;
    }
    uv_async_init(&s->loop, &s->stop, on_stop);
    s->stop.data = s;
    pthread_create(&s->thread, NULL, run, s);
    return 0;
}

static void
stop(server_t *s)
{
    uv_async_send(&s->stop);
    pthread_join(s->thread, NULL);
    DV_CHECK_EQ(uv_loop_close(&s->loop), 0); // every handle closed
}

// Send request to the server's port; return the whole answer (caller
// frees; the server closes after it: Connection: close).
static char *
ask(server_t *s, const char *request)
{
    const char *colon = strrchr(dv_http_address(s->http), ':');
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return NULL;
    }
    size_t len = strlen(request);
    if (write(fd, request, len) != (ssize_t)len) {
        close(fd);
        return NULL;
    }
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    ssize_t got;
    while ((got = read(fd, buf + n, cap - n - 1)) > 0) {
        n += (size_t)got;
    }
    buf[n] = '\0';
    close(fd);
    return buf;
}

static void
test_get_and_methods(void)
{
    server_t s;
    dv_error_t err = {0};
    DV_CHECK_EQ(start(&s, "127.0.0.1:0", NULL, &err), 0);
    DV_CHECK(strncmp(dv_http_address(s.http), "127.0.0.1:", 10) == 0);
    DV_CHECK(strcmp(dv_http_address(s.http), "127.0.0.1:0") != 0);
    DV_CHECK(!dv_http_exposed(s.http));
    char *a = ask(&s, "GET /hello?x=1 HTTP/1.1\r\nHost: t\r\n"
                      "Connection: close\r\n\r\n");
    DV_CHECK(a && strncmp(a, "HTTP/1.1 200", 12) == 0);
    DV_CHECK(a && strstr(a, "text/plain; version=0.0.4"));
    DV_CHECK(a && strstr(a, "\r\n\r\nhi [x=1]\n"));
    free(a);
    a = ask(&s, "GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    DV_CHECK(a && strncmp(a, "HTTP/1.1 404", 12) == 0);
    free(a);
    a = ask(&s, "POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n");
    DV_CHECK(a && strncmp(a, "HTTP/1.1 405", 12) == 0);
    free(a);
    a = ask(&s, "HEAD /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    DV_CHECK(a && strncmp(a, "HTTP/1.1 200", 12) == 0);
    DV_CHECK(a && !strstr(a, "hi ["));
    free(a);
    // not HTTP: closed (libmicrohttpd answers nothing or 400), and the
    // server goes on serving
    a = ask(&s, "garbage\r\n\r\n");
    DV_CHECK(a && (a[0] == '\0' || strncmp(a, "HTTP/1.1 400", 12) == 0));
    free(a);
    a = ask(&s, "GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    DV_CHECK(a && strncmp(a, "HTTP/1.1 404", 12) == 0);
    free(a);
    stop(&s);
    DV_CHECK_EQ(s.calls, 4); // GET /hello, GET /nope twice, HEAD
}

static void
test_token(void)
{
    server_t s;
    dv_error_t err = {0};
    DV_CHECK_EQ(start(&s, "127.0.0.1:0", "s3cret", &err), 0);
    static const struct {
        const char *auth;
        const char *status;
    } rows[] = {
        {"", "HTTP/1.1 401"},
        {"Authorization: Bearer wrong\r\n", "HTTP/1.1 401"},
        {"Authorization: Bearer s3cre\r\n", "HTTP/1.1 401"},
        {"Authorization: Bearer s3cret2\r\n", "HTTP/1.1 401"},
        {"Authorization: Basic s3cret\r\n", "HTTP/1.1 401"},
        {"Authorization: Bearer s3cret\r\n", "HTTP/1.1 200"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        char req[512];
        snprintf(req, sizeof req,
                 "GET /hello HTTP/1.1\r\nHost: t\r\n%sConnection: "
                 "close\r\n\r\n",
                 rows[i].auth);
        char *a = ask(&s, req);
        DV_CHECK(a && strncmp(a, rows[i].status, 12) == 0);
        free(a);
    }
    stop(&s);
    DV_CHECK_EQ(s.calls, 1);
    // an exposed address needs a token (or allow_exposed)
    DV_CHECK_EQ(start(&s, "0.0.0.0:0", NULL, &err), DV_EINVAL);
    DV_CHECK(strstr(err.text, "--http-token") != NULL);
}

static void
test_addresses(void)
{
    static const struct {
        const char *address;
        int rc;
        bool exposed;
    } rows[] = {
        {"127.0.0.1:7480", 0, false},
        {"localhost:7480", 0, false},
        {"127.9.9.9:1", 0, false},
        {"[::1]:7480", 0, false},
        {"0.0.0.0:7480", 0, true},
        {"10.0.0.5:7480", 0, true},
        {"[::]:7480", 0, true},
        {"example.com:80", DV_EINVAL, false},
        {":7480", DV_EINVAL, false},
        {"127.0.0.1", DV_EINVAL, false},
        {"127.0.0.1:", DV_EINVAL, false},
        {"127.0.0.1:70000", DV_EINVAL, false},
        {"127.0.0.1:80x", DV_EINVAL, false},
        {"[::1:80", DV_EINVAL, false},
        {"", DV_EINVAL, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        struct sockaddr_storage sa;
        bool exposed = !rows[i].exposed;
        dv_error_t err = {0};
        int rc = dv_http_parse_address(rows[i].address, &sa, &exposed, &err);
        if (rc != rows[i].rc) {
            fprintf(stderr, "  %s: %d %s\n", rows[i].address, rc, err.text);
        }
        DV_CHECK_EQ(rc, rows[i].rc);
        if (rc == 0) {
            DV_CHECK_EQ(exposed, rows[i].exposed);
        } else {
            DV_CHECK(strstr(err.text, "HTTP address") != NULL);
        }
    }
}

static const dv_test_case_t cases[] = {
    {"GET answered, other methods and garbage refused", test_get_and_methods},
    {"bearer token; exposed address needs one", test_token},
    {"address table", test_addresses},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
