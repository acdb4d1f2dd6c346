// dv_addr — hints for refused endpoints (see dv_addr.h).
#include "dv_addr.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

// The transports a Drover socket can use (libzmq has more: pgm, udp, ws…,
// none of which a ROUTER/DEALER pair here speaks).
static const char *const s_transports[] = {"tcp://", "ipc://", "inproc://"};

static bool
has_transport(const char *endpoint)
{
    for (size_t i = 0; i < sizeof s_transports / sizeof *s_transports; i++) {
        if (strncmp(endpoint, s_transports[i], strlen(s_transports[i])) == 0) {
            return true;
        }
    }
    return false;
}

const char *
dv_addr_hint(const char *endpoint, int zerr, bool bind, char *buf, size_t size)
{
    if (size == 0) {
        return buf;
    }
    buf[0] = '\0';
    if (!endpoint) {
        return buf;
    }
    if (!strstr(endpoint, "://")) {
        // "localhost:7470", "127.0.0.1:7470", "/tmp/drover.sock"
        if (endpoint[0] == '/') {
            snprintf(buf, size,
                     "; an endpoint names its transport: write ipc://%s",
                     endpoint);
        } else if (strchr(endpoint, ':')) {
            snprintf(buf, size,
                     "; an endpoint names its transport: write tcp://%s",
                     endpoint);
        } else {
            snprintf(buf, size,
                     "; an endpoint names its transport: tcp://HOST:PORT or "
                     "ipc:///PATH");
        }
        return buf;
    }
    if (!has_transport(endpoint) || zerr == EPROTONOSUPPORT) {
        snprintf(buf, size, "; Drover speaks tcp://, ipc:// and inproc://");
        return buf;
    }
    if (strncmp(endpoint, "tcp://", 6) == 0) {
        if (bind && zerr == ENODEV) {
            snprintf(buf, size,
                     "; a tcp bind takes an IP address, * or an interface "
                     "name, not a host name: tcp://127.0.0.1:PORT for this "
                     "machine only, tcp://*:PORT for every interface");
        } else if (bind && zerr == EADDRINUSE) {
            snprintf(buf, size,
                     "; another process listens on that port: stop it or "
                     "pick another (port 0 picks a free one)");
        } else if (bind && zerr == EADDRNOTAVAIL) {
            snprintf(buf, size,
                     "; that address belongs to no interface of this "
                     "machine");
        } else if (zerr == EINVAL && !strchr(endpoint + 6, ':')) {
            snprintf(buf, size, "; a tcp endpoint needs a port: %s:PORT",
                     endpoint);
        } else if (zerr == EINVAL) {
            snprintf(buf, size, "; the form is tcp://HOST:PORT");
        }
    } else if (strncmp(endpoint, "ipc://", 6) == 0 && zerr == ENAMETOOLONG) {
        snprintf(buf, size,
                 "; an ipc path may be at most 107 bytes (sockaddr_un)");
    }
    return buf;
}
