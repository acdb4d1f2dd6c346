// dv_addr — hints for refused endpoints, free ports (see dv_addr.h).
#include "dv_addr.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dv_mem.h"
#include "dv_rng.h"

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

// A socket bound to port on every address (port 0: the kernel picks one),
// its port in *got. Returns the socket or -1.
static int
bind_port(unsigned port, int *got)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_ANY)};
    socklen_t len = sizeof sa;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        *got = ntohs(sa.sin_port);
        return fd;
    }
    if (fd >= 0) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    return -1;
}

int
dv_addr_free_ports(int *ports, size_t n)
{
    unsigned low = 32768, high = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%u %u", &low, &high) != 2 || low > 65535) {
            low = 32768;
        }
        fclose(f);
    }
    unsigned floor = low > 1024 + 12000 ? low - 12000 : 1024;
    dv_rng_t rng;
    dv_rng_seed(&rng, (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL));
    int *fds = dv_malloc((n ? n : 1) * sizeof *fds);
    size_t opened = 0;
    int rc = 0;
    for (; opened < n; opened++) {
        fds[opened] = -1;
        for (int tries = 0; low > floor && fds[opened] < 0 && tries < 1000;
             tries++) {
            unsigned port =
                floor + (unsigned)dv_rng_below(&rng, (uint64_t)(low - floor));
            fds[opened] = bind_port(port, &ports[opened]);
        }
        if (fds[opened] < 0) {
            fds[opened] = bind_port(0, &ports[opened]);
        }
        if (fds[opened] < 0) {
            rc = -1;
            break;
        }
    }
    int saved = errno;
    for (size_t i = 0; i < opened; i++) {
        close(fds[i]);
    }
    free(fds);
    errno = saved;
    return rc;
}
