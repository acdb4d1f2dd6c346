// dv_bench — what the benchmarks share (clock, percentiles, generated data,
// processes, a client socket and its SUBMITs).
// Processes as tests/dv_test_proc.c starts them: posix_spawn in their own
// process group, READY read from stdout with a deadline (no sleeps for
// readiness), SIGTERM then SIGKILL to the group by PID.
#define _XOPEN_SOURCE 700 // nftw
#include "dv_bench.h"

#include <ftw.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "dv_mem.h"
#include "dv_proto.h"
#include "dv_rng.h"
#include "dv_tensor.h"
#include "dv_wire.h"

extern char **environ;

void
dv_bench_sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

double
dv_bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int
dv_bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double
dv_bench_pct(const double *sorted, size_t n, double q)
{
    if (n == 0) {
        return 0;
    }
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

dv_dataset_t *
dv_bench_teacher_data(size_t rows,
                      size_t features,
                      size_t classes,
                      uint64_t seed)
{
    dv_rng_t rng;
    dv_rng_seed(&rng, seed);
    dv_dataset_t *ds = dv_calloc(1, sizeof *ds);
    ds->n_rows = rows;
    ds->n_features = features;
    ds->x = dv_tensor_new(rows, features);
    ds->feature_names = dv_malloc(features * sizeof(char *));
    for (size_t j = 0; j < features; j++) {
        char name[32];
        snprintf(name, sizeof name, "f%zu", j);
        ds->feature_names[j] = dv_strdup(name);
    }
    ds->target_name = dv_strdup("target");
    ds->target_numeric = true;
    ds->target_value = dv_malloc(rows * sizeof(double));
    ds->target_text = dv_malloc(rows * sizeof(char *));
    float *teacher = dv_malloc(features * classes * sizeof(float));
    for (size_t i = 0; i < features * classes; i++) {
        teacher[i] = (float)dv_rng_normal(&rng);
    }
    for (size_t i = 0; i < rows; i++) {
        float *row = ds->x->data + i * features;
        for (size_t j = 0; j < features; j++) {
            row[j] = (float)dv_rng_normal(&rng);
        }
        double best = -INFINITY;
        size_t cls = 0;
        for (size_t c = 0; c < classes; c++) {
            double s = 4.0 * dv_rng_normal(&rng);
            for (size_t j = 0; j < features; j++) {
                s += row[j] * teacher[j * classes + c];
            }
            if (s > best) {
                best = s;
                cls = c;
            }
        }
        char label[32];
        snprintf(label, sizeof label, "%zu", cls);
        ds->target_value[i] = (double)cls;
        ds->target_text[i] = dv_strdup(label);
    }
    free(teacher);
    return ds;
}

dv_bench_proc_t
dv_bench_spawn(const char *bin, const char *const *args)
{
    dv_bench_proc_t p = {0, -1};
    int fds[2];
    if (pipe(fds) != 0) {
        return p;
    }
    const char *argv[24] = {bin};
    for (int i = 0; args[i] && i < 22; i++) {
        argv[i + 1] = args[i];
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    if (posix_spawn(&p.pid, bin, &fa, &attr, (char *const *)argv, environ)) {
        p.pid = 0;
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(fds[1]);
    p.out = fds[0];
    return p;
}

int
dv_bench_ready(dv_bench_proc_t *p, char *rest, size_t size)
{
    char line[1024];
    size_t n = 0;
    double end = dv_bench_now_s() + 10;
    while (p->pid && dv_bench_now_s() < end) {
        struct pollfd pf = {p->out, POLLIN, 0};
        char c;
        if (poll(&pf, 1, 100) <= 0) {
            continue;
        }
        if (read(p->out, &c, 1) != 1) {
            return -1;
        }
        if (c != '\n' && n < sizeof line - 1) {
            line[n++] = c;
        } else if (line[n] = '\0', strncmp(line, "READY ", 6) == 0) {
            snprintf(rest, size, "%s", line + 6);
            return 0;
        } else {
            n = 0;
        }
    }
    return -1;
}

void
dv_bench_reap(dv_bench_proc_t *p)
{
    if (!p->pid) {
        return;
    }
    kill(p->pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
            close(p->out);
            p->pid = 0;
            p->out = -1;
            return;
        }
        dv_bench_sleep_us(10000);
    }
    kill(-p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    close(p->out);
    p->pid = 0;
    p->out = -1;
}

int
dv_bench_run(const char *bin,
             const char *const *args,
             double timeout_s,
             char *out,
             size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    dv_bench_proc_t p = dv_bench_spawn(bin, args);
    if (!p.pid) {
        close(p.out);
        return -1;
    }
    double end = dv_bench_now_s() + timeout_s;
    bool eof = false;
    while (!eof && dv_bench_now_s() < end) {
        struct pollfd pf = {p.out, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0) {
            continue;
        }
        char buf[4096];
        ssize_t got = read(p.out, buf, sizeof buf);
        eof = got <= 0;
        for (ssize_t i = 0; i < got && n + 1 < size; i++) {
            out[n++] = buf[i];
        }
        out[n] = '\0';
    }
    if (!eof) { // out of time: stop it by its PID
        dv_bench_reap(&p);
        return -1;
    }
    int status = 0;
    pid_t done = waitpid(p.pid, &status, 0);
    close(p.out);
    return done == p.pid && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Fixed-point text with 5 decimals, written by hand: fprintf("%f") of 20M
// values would take seconds of a benchmark's time.
static char *
put_fixed5(char *p, float v)
{
    long long q = llround((double)v * 1e5);
    if (q < 0) {
        *p++ = '-';
        q = -q;
    }
    char digits[24];
    int k = 0;
    for (long long ip = q / 100000; k == 0 || ip > 0; ip /= 10) {
        digits[k++] = (char)('0' + ip % 10);
    }
    while (k > 0) {
        *p++ = digits[--k];
    }
    *p++ = '.';
    long long frac = q % 100000;
    for (long long d = 10000; d > 0; d /= 10) {
        *p++ = (char)('0' + frac / d % 10);
    }
    return p;
}

int
dv_bench_write_csv(const dv_dataset_t *ds, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        return -1;
    }
    for (size_t j = 0; j < ds->n_features; j++) {
        fprintf(f, "%s,", ds->feature_names[j]);
    }
    fprintf(f, "%s\n", ds->target_name);
    // One line at a time: 5 decimals, and at most 7 digits before the
    // point (|v| < 1e4 is what dv_bench_teacher_data makes), 16 bytes each.
    char *line = dv_malloc(ds->n_features * 16 + 64);
    for (size_t i = 0; i < ds->n_rows; i++) {
        char *p = line;
        const float *row = ds->x->data + i * ds->n_features;
        for (size_t j = 0; j < ds->n_features; j++) {
            dv_assert(fabsf(row[j]) < 1e4f);
            p = put_fixed5(p, row[j]);
            *p++ = ',';
        }
        fwrite(line, 1, (size_t)(p - line), f);
        fprintf(f, "%s\n", ds->target_text[i]);
    }
    free(line);
    int rc = ferror(f) ? -1 : 0;
    return fclose(f) != 0 ? -1 : rc;
}

double
dv_bench_load_1m(void)
{
    double load = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1) {
            load = -1;
        }
        fclose(f);
    }
    return load;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
dv_bench_rmtree(const char *dir)
{
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

void *
dv_bench_dealer(void *ctx, const char *endpoint)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect(s, endpoint);
    return s;
}

void
dv_bench_submit(void *sock,
                uint64_t rid,
                const char *queue,
                const void *payload,
                size_t len)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, rid);
    dv_msgw_str(w, "queue", queue);
    dv_msgw_str(w, "kind", "echo");
    size_t hlen;
    const uint8_t *h = dv_msgw_bytes(w, &hlen);
    dv_frame_t f = {payload, len};
    while (dv_wire_send(sock, NULL, 0, h, hlen, &f, 1) != 0) {
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLOUT, 0};
        zmq_poll(&it, 1, 100);
    }
    dv_msgw_destroy(&w);
}

// ------------------------------------------------ raw ZeroMQ relay

#define RELAY_WORKERS 8  // workers a relay knows
#define RELAY_CREDITS 64 // credits per worker at most

// The relay: frontend ROUTER <-> backend ROUTER; workers announce
// themselves with "READY"; requests are dealt round-robin to known workers,
// or to workers holding credits; replies routed back by client identity;
// both sockets drained on every wake.
static int
recv_parts(void *s, zmq_msg_t *f, int max)
{
    int n = 0, more;
    do {
        zmq_msg_init(&f[n]);
        if (zmq_msg_recv(&f[n], s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f[n]);
            return n ? n : -1;
        }
        more = zmq_msg_more(&f[n]);
        n++;
    } while (more && n < max);
    return n;
}

int
dv_bench_relay_run(void *ctx,
                   const char *front_ep,
                   const char *back_ep,
                   int credits,
                   volatile int *stop,
                   bool say_ready)
{
    void *front = zmq_socket(ctx, ZMQ_ROUTER);
    void *back = zmq_socket(ctx, ZMQ_ROUTER);
    int zero = 0;
    void *socks[2] = {front, back};
    for (int i = 0; i < 2; i++) {
        zmq_setsockopt(socks[i], ZMQ_SNDHWM, &zero, sizeof zero);
        zmq_setsockopt(socks[i], ZMQ_RCVHWM, &zero, sizeof zero);
        zmq_setsockopt(socks[i], ZMQ_LINGER, &zero, sizeof zero);
    }
    if (zmq_bind(front, front_ep) != 0 || zmq_bind(back, back_ep) != 0) {
        zmq_close(front);
        zmq_close(back);
        return -1;
    }
    if (say_ready) {
        printf("READY relay\n");
        fflush(stdout);
    }
    char wid[RELAY_WORKERS][256];
    size_t wlen[RELAY_WORKERS];
    int nw = 0, next = 0;
    // Credits: a ring of worker indexes, one entry per request a worker may
    // still take (its READYs and its replies each give one).
    int ring[RELAY_WORKERS * RELAY_CREDITS], head = 0, n_ring = 0;
    zmq_msg_t f[8];
    while (!*stop) {
        bool take = credits ? n_ring > 0 : nw > 0;
        zmq_pollitem_t items[2] = {{back, 0, ZMQ_POLLIN, 0},
                                   {front, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, take ? 2 : 1, 100) <= 0) {
            continue;
        }
        int n;
        while ((n = recv_parts(back, f, 8)) > 0) {
            int w = 0; // the sender's index; registered by its first READY
            while (w < nw &&
                   !(wlen[w] == zmq_msg_size(&f[0]) &&
                     memcmp(wid[w], zmq_msg_data(&f[0]), wlen[w]) == 0)) {
                w++;
            }
            bool ready = n == 2 && zmq_msg_size(&f[1]) == 5;
            if (w == nw && ready && nw < RELAY_WORKERS) {
                wlen[nw] = zmq_msg_size(&f[0]);
                memcpy(wid[nw], zmq_msg_data(&f[0]), wlen[nw]);
                nw++;
            }
            if (credits && w < nw && n_ring < RELAY_WORKERS * RELAY_CREDITS) {
                ring[(head + n_ring++) % (RELAY_WORKERS * RELAY_CREDITS)] = w;
            }
            if (ready) {
                zmq_msg_close(&f[0]);
                zmq_msg_close(&f[1]);
                continue;
            }
            zmq_msg_close(&f[0]); // [worker][client][body] -> [client][body]
            for (int k = 1; k < n; k++) {
                zmq_msg_send(&f[k], front, k + 1 < n ? ZMQ_SNDMORE : 0);
            }
        }
        while ((credits ? n_ring > 0 : nw > 0) &&
               (n = recv_parts(front, f + 1, 7)) > 0) {
            if (credits) {
                next = ring[head];
                head = (head + 1) % (RELAY_WORKERS * RELAY_CREDITS);
                n_ring--;
            } else {
                next = (next + 1) % nw;
            }
            zmq_msg_init_size(&f[0], wlen[next]);
            memcpy(zmq_msg_data(&f[0]), wid[next], wlen[next]);
            for (int k = 0; k <= n; k++) {
                zmq_msg_send(&f[k], back, k < n ? ZMQ_SNDMORE : 0);
            }
        }
    }
    zmq_close(front);
    zmq_close(back);
    return 0;
}
