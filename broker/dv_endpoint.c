// dv_endpoint — data folder lock, ipc probe, exposure (see dv_endpoint.h).
//
// The lock is flock(2), not fcntl(2): an fcntl lock belongs to the process
// and any close() of any descriptor of the file drops it, while a flock
// belongs to the open file description we keep. Both vanish when the
// process dies, which is what makes a lock file safe after kill -9.
#include "dv_endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dv_file.h"

#define PATH_BYTES 4200

// Is host (the part of a tcp endpoint before the port) a loopback address
// literal or "localhost"?
static bool
loopback_host(const char *host, size_t len)
{
    char h[64];
    if (len == 0 || len >= sizeof h) {
        return false;
    }
    memcpy(h, host, len);
    h[len] = '\0';
    if (strcmp(h, "localhost") == 0) {
        return true;
    }
    struct in_addr a4;
    if (inet_pton(AF_INET, h, &a4) == 1) {
        return (ntohl(a4.s_addr) >> 24) == 127;
    }
    if (len > 2 && h[0] == '[' && h[len - 1] == ']') {
        h[len - 1] = '\0';
        struct in6_addr a6;
        return inet_pton(AF_INET6, h + 1, &a6) == 1 &&
               memcmp(&a6, &in6addr_loopback, sizeof a6) == 0;
    }
    return false;
}

bool
dv_endpoint_exposed(const char *endpoint)
{
    if (strncmp(endpoint, "ipc://", 6) == 0 ||
        strncmp(endpoint, "inproc://", 9) == 0) {
        return false;
    }
    if (strncmp(endpoint, "tcp://", 6) != 0) {
        return true; // ws://, wss://, udp://, pgm://, ...: judged unsafe
    }
    const char *host = endpoint + 6;
    const char *colon = strrchr(host, ':'); // the port's (IPv6 is in [])
    return !colon || !loopback_host(host, (size_t)(colon - host));
}

int
dv_endpoint_check_free(const char *endpoint, dv_error_t *err)
{
    if (strncmp(endpoint, "ipc://", 6) != 0) {
        return 0;
    }
    const char *path = endpoint + 6;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (path[0] == '@' || path[0] == '*' ||
        strlen(path) >= sizeof sa.sun_path) {
        return 0; // abstract, or a name libzmq picks: no file to take over
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    struct stat st;
    if (stat(path, &st) != 0) {
        return 0; // nothing there
    }
    if (!S_ISSOCK(st.st_mode)) {
        return dv_errorf(err, DV_EIO,
                         "cannot bind %s: %s exists and is not a socket",
                         endpoint, path);
    }
    // Non-blocking: a live server with a full backlog answers EAGAIN at
    // once instead of making us wait.
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return dv_file_error(err, path, errno);
    }
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    close(fd);
    if (rc == 0 || e == EAGAIN) { // EAGAIN: its backlog is full: alive
        return dv_errorf(err, DV_EIO,
                         "cannot bind %s: it is served by another process "
                         "(a broker, or `drover up`, already runs there); "
                         "stop it or pick another path",
                         endpoint);
    }
    return 0; // ECONNREFUSED: a stale file from a process that died
}

int
dv_endpoint_lock_dir(const char *dir, int *fd_out, dv_error_t *err)
{
    *fd_out = -1;
    int rc = dv_file_mkdirs(dir, 0755, err);
    if (rc) {
        return rc;
    }
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/%s", dir, DV_ENDPOINT_LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return dv_file_error(err, path, errno);
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = e == EWOULDBLOCK ? pread(fd, pid, sizeof pid - 1, 0) : -1;
        close(fd);
        if (e != EWOULDBLOCK) {
            return dv_file_error(err, path, e);
        }
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        return dv_errorf(err, DV_EIO,
                         "data folder %s is in use by another broker (pid "
                         "%s, holding %s): one broker per data folder",
                         dir, pid[0] ? pid : "unknown", path);
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    int e =
        ftruncate(fd, 0) != 0 ? errno : dv_file_write_all(fd, pid, (size_t)len);
    if (e) {
        rc = dv_file_error(err, path, e);
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

void
dv_endpoint_unlock_dir(int *fd_p)
{
    if (fd_p && *fd_p >= 0) {
        close(*fd_p);
        *fd_p = -1;
    }
}
