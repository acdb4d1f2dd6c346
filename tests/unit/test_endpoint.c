// test_endpoint — which endpoints count as exposed (plain mode needs
// --plain there), the data folder lock (a second holder is refused with the
// first one's pid; closing frees it), and the ipc probe (a served path is
// refused, a stale socket file and a missing one are free).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dv_endpoint.h"
#include "dv_test.h"

static void
test_exposed(void)
{
    static const struct {
        const char *endpoint;
        bool exposed;
    } rows[] = {
        {"ipc:///tmp/x", false},
        {"inproc://x", false},
        {"tcp://127.0.0.1:7470", false},
        {"tcp://127.9.8.7:0", false},
        {"tcp://localhost:7470", false},
        {"tcp://[::1]:7470", false},
        {"tcp://0.0.0.0:7470", true},
        {"tcp://*:7470", true},
        {"tcp://10.0.0.5:7470", true},
        {"tcp://eth0:7470", true},
        {"tcp://lo:7470", true}, // an interface name: not judged here
        {"tcp://[::]:7470", true},
        {"tcp://[::ffff:127.0.0.1]:7470", true},
        {"tcp://127.0.0.1.example.com:7470", true},
        {"tcp://1270.0.0.1:7470", true},
        {"tcp://127.0.0.1", true}, // no port: not a bind we judge safe
        {"ws://0.0.0.0:7470", true},
        {"ws://127.0.0.1:7470", true},
        {"wss://127.0.0.1:7470", true},
        {"udp://127.0.0.1:7470", true},
        {"pgm://eth0;239.192.1.1:5555", true},
        {"", true},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        if (dv_endpoint_exposed(rows[i].endpoint) != rows[i].exposed) {
            fprintf(stderr, "  %s\n", rows[i].endpoint);
        }
        DV_CHECK_EQ(dv_endpoint_exposed(rows[i].endpoint), rows[i].exposed);
    }
}

static void
test_lock_dir(void)
{
    char *dir = dv_test_tmpdir();
    char sub[4300];
    snprintf(sub, sizeof sub, "%s/data/deeper", dir); // created
    int a = -1, b = -1, c = -1;
    dv_error_t err = {0};
    int first = dv_endpoint_lock_dir(sub, &a, &err);
    int second = dv_endpoint_lock_dir(sub, &b, &err); // another description
    char pid[64];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    bool names_pid = strstr(err.text, pid) != NULL;
    dv_endpoint_unlock_dir(&a);
    int third = dv_endpoint_lock_dir(sub, &c, &err);
    dv_endpoint_unlock_dir(&c);
    dv_endpoint_unlock_dir(&c); // idempotent
    dv_endpoint_unlock_dir(NULL);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_EQ(first, 0);
    DV_CHECK_EQ(second, DV_EIO);
    DV_CHECK_EQ(b, -1);
    DV_CHECK(names_pid);
    DV_CHECK_EQ(a, -1);
    DV_CHECK_EQ(third, 0);
    DV_CHECK_EQ(c, -1);
}

static int
listen_on(const char *path, bool do_listen)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        (do_listen && listen(fd, 4) != 0)) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

static void
test_ipc_probe(void)
{
    char *dir = dv_test_tmpdir();
    char served[4300], stale[4300], file[4300], ep[4400];
    snprintf(served, sizeof served, "%s/served", dir);
    snprintf(stale, sizeof stale, "%s/stale", dir);
    snprintf(file, sizeof file, "%s/file", dir);
    int s = listen_on(served, true);
    int t = listen_on(stale, false); // bound, never listening: refused
    FILE *f = fopen(file, "w");
    if (f) {
        fclose(f);
    }
    dv_error_t err = {0};
    snprintf(ep, sizeof ep, "ipc://%s", served);
    int rc_served = dv_endpoint_check_free(ep, &err);
    bool says = strstr(err.text, "served by another process") != NULL;
    snprintf(ep, sizeof ep, "ipc://%s", stale);
    int rc_stale = dv_endpoint_check_free(ep, &err);
    snprintf(ep, sizeof ep, "ipc://%s/missing", dir);
    int rc_missing = dv_endpoint_check_free(ep, &err);
    snprintf(ep, sizeof ep, "ipc://%s", file);
    int rc_file = dv_endpoint_check_free(ep, &err);
    int rc_tcp = dv_endpoint_check_free("tcp://127.0.0.1:1", &err);
    close(s);
    close(t);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK(s >= 0);
    DV_CHECK(t >= 0);
    DV_CHECK_EQ(rc_served, DV_EIO);
    DV_CHECK(says);
    DV_CHECK_EQ(rc_stale, 0);
    DV_CHECK_EQ(rc_missing, 0);
    DV_CHECK_EQ(rc_file, DV_EIO); // not a socket: never unlinked for us
    DV_CHECK_EQ(rc_tcp, 0);
}

static const dv_test_case_t cases[] = {
    {"exposed: only ipc, inproc and loopback tcp are private", test_exposed},
    {"lock dir: one holder, named; free once closed", test_lock_dir},
    {"ipc probe: served refused, stale and missing free", test_ipc_probe},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
