// dv_cli_up — `drover up`: a local cluster in the foreground. Starts
// drover-broker and N drover-workers, prints `READY <client endpoint>` once
// every worker is connected, restarts a worker that dies, and on
// SIGINT/SIGTERM drains the workers (they finish their jobs) before
// stopping the broker.
//
// --replicas 3 or 5: a broker group (protocol 1.6, Raft) instead of one
// broker: the members run side by side on this host, each with its own
// ports and its copy of the store under DATA/broker-<id>; the workers get
// the list of their worker endpoints, `READY` the list of client
// endpoints. A member that dies is said and started again (it rejoins).
//
// The children run in their own process group, so a Ctrl-C on the
// terminal reaches only `drover up`, which then stops them in order; they
// get SIGTERM if `drover up` itself dies (PR_SET_PDEATHSIG).
#define _XOPEN_SOURCE 700 // nftw
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drover.h"
#include "dv_addr.h"
#include "dv_cli.h"
#include "dv_cli_remote.h"
#include "dv_file.h"
#include "dv_keys.h"
#include "dv_mem.h"
#include "dv_tensor.h"

#define UP_USAGE                                                               \
    "usage: drover up [--workers N] [--concurrency N] [--prefetch N] "         \
    "[--data DIR]\n"                                                           \
    "                 [--replicas 1|3|5] [--endpoint E] [--worker-endpoint "   \
    "E]\n"                                                                     \
    "                 [--heartbeat-ms N] [--model-memory MB] [--data-memory "  \
    "MB]\n"                                                                    \
    "                 [--train-slots N] [--log-level L] "                      \
    "[--log-format text|json]\n"                                               \
    "                 [--secure] [--http HOST:PORT|off] [--http-token FILE]\n" \
    "Runs a broker and N workers (default 2; 0: the broker alone) in the "     \
    "foreground\nand prints 'READY <client endpoint>' once the workers are "   \
    "connected.\n--endpoint is where clients connect "                         \
    "(default " DROVER_DEFAULT_ENDPOINT                                        \
    "); workers use\n--worker-endpoint (default: "                             \
    "the next tcp port, or PATH-workers for ipc).\n--data DIR: the broker's "  \
    "durable store (jobs, results, models, data sets) lives\nthere and "       \
    "survives restarts; without it, memory only.\n"                            \
    "--concurrency, --prefetch, --model-memory, --data-memory, --train-slots " \
    "and\n--heartbeat-ms go to every worker (drover-worker --help); "          \
    "--log-level and\n--log-format to the broker and the workers. Each "       \
    "worker gets\n--blas-threads cores / (workers x concurrency), at least "   \
    "1, so the host is never\noversubscribed. Ctrl-C or SIGTERM: the "         \
    "workers finish the jobs they run (up to\n30 s), then the broker stops; "  \
    "a second Ctrl-C stops everything at once.\n"                              \
    "--http HOST:PORT|off: the broker's status page and /metrics (default "    \
    "127.0.0.1:7480\nfor the default endpoint, else a free port; the "         \
    "address is printed), --http-token\nFILE to serve beyond loopback.\n"      \
    "--secure: CURVE on both sockets, with keys made on first use and kept "   \
    "under\nDIR/keys (needs --data): the broker's, the workers', and an "      \
    "admin key for the\nCLI (`drover --keys DIR/keys COMMAND`).\n"             \
    "--replicas N (1, 3 or 5; default 1): a broker group of N members "        \
    "(Raft) instead\nof one broker: each keeps its copy of the store under "   \
    "DIR/broker-<id> (without\n--data, in a temporary folder removed at the "  \
    "end) and has its own ports: client\nand worker from --endpoint's port "   \
    "in steps of 2 (else free ones), status page\nfrom --http's port in "      \
    "steps of 1 (else free ones), raft a free one; with --data\nthey are "     \
    "kept in DIR/up-group for the next start. The workers get every\n"         \
    "member's worker endpoint. Prints 'READY <client endpoint list>' (to "     \
    "export as\nDROVER_BROKER) and each member's pid; a member that dies "     \
    "is said and started\nagain (it rejoins the group).\n"

#define READY_TIMEOUT_MS 60000
#define MAX_WORKERS      256
// How long stopping waits for the workers, all together, to finish the
// jobs they run (then SIGKILL: their jobs are retried elsewhere), and for
// the broker to close its store.
#define DRAIN_MS       30000
#define BROKER_STOP_MS 10000
// --replicas: a group of 1, 3 or 5 (odd: a majority of N survives the loss
// of (N-1)/2 members; 5 on one host is already plenty for trying it).
#define MAX_REPLICAS 5
// A member that exits is started again MEMBER_RESTART_S later, twice that
// after each exit within MEMBER_QUICK_S of its start; after MEMBER_GIVE_UP
// such exits in a row (a port taken, a bad --data) it is not started
// again: each try would fail the same way.
#define MEMBER_RESTART_S 1
#define MEMBER_QUICK_S   10
#define MEMBER_GIVE_UP   5

typedef struct {
    pid_t pid;      // 0 when not running
    int out;        // read end of its stdout (kept open: no SIGPIPE)
    time_t started; // for restart pacing
} child_t;

// Path of a sibling binary: $ENV, else next to this executable, else PATH.
static void
find_bin(const char *env, const char *name, char *buf, size_t size)
{
    const char *e = getenv(env);
    if (e && *e) {
        snprintf(buf, size, "%s", e);
        return;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            size_t dir_len = strlen(self);
            if (dir_len + 1 + strlen(name) < size) {
                memcpy(buf, self, dir_len);
                buf[dir_len] = '/';
                strcpy(buf + dir_len + 1, name);
            }
            if (dir_len + 1 + strlen(name) < size && access(buf, X_OK) == 0) {
                return;
            }
        }
    }
    snprintf(buf, size, "%s", name);
}

// Start argv with stdout on a pipe. Returns 0 or -1.
static int
spawn(char *const *argv, child_t *c)
{
    int fds[2];
    if (pipe(fds) != 0) {
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "drover up: cannot run %s: %s\n", argv[0],
                strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    c->pid = pid;
    c->out = fds[0];
    c->started = time(NULL);
    return 0;
}

// Read one line starting "READY" from c's stdout within timeout_ms.
static int
wait_ready(child_t *c, char *line, size_t size, int timeout_ms)
{
    size_t used = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long spent = (now.tv_sec - t0.tv_sec) * 1000 +
                     (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (spent >= timeout_ms) {
            return -1;
        }
        struct pollfd p = {c->out, POLLIN, 0};
        if (poll(&p, 1, (int)(timeout_ms - spent)) <= 0) {
            continue;
        }
        ssize_t r = read(c->out, line + used, 1);
        if (r <= 0) {
            return -1; // it exited
        }
        if (line[used] == '\n') {
            line[used] = '\0';
            if (strncmp(line, "READY", 5) == 0) {
                return 0;
            }
            used = 0;
            continue;
        }
        used = used + 1 < size - 1 ? used + 1 : used;
    }
}

static void
stop_child(child_t *c, int sig)
{
    if (c->pid > 0) {
        kill(c->pid, sig);
    }
}

// c has exited (or was never started): forget it.
static void
forget(child_t *c)
{
    c->pid = 0;
    if (c->out >= 0) {
        close(c->out);
        c->out = -1;
    }
}

// Stop the n children cs (what: "worker" or "broker"), all at once: SIGTERM,
// then wait up to timeout_ms in all for them to exit, saying what it waits
// for every few seconds; past that, or on a second SIGINT/SIGTERM from set
// (*hurry, which stays set for later calls), SIGKILL, said on stderr.
static void
stop_all(child_t *cs,
         size_t n,
         const char *what,
         int timeout_ms,
         const sigset_t *set,
         bool *hurry)
{
    size_t alive = 0;
    for (size_t i = 0; i < n; i++) {
        if (cs[i].pid > 0) {
            stop_child(&cs[i], *hurry ? SIGKILL : SIGTERM);
            alive++;
        }
    }
    if (alive == 0) {
        return;
    }
    if (!*hurry && strcmp(what, "worker") == 0) {
        fprintf(stderr,
                "drover up: stopping: %zu worker(s) finish the jobs they run "
                "(up to %d s; Ctrl-C again stops now)\n",
                alive, timeout_ms / 1000);
    }
    double start = dv_cli_seconds_now(), said = start;
    while (alive > 0) {
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (size_t i = 0; i < n; i++) {
                if (cs[i].pid == pid) {
                    forget(&cs[i]);
                    alive--;
                }
            }
        }
        if (pid < 0 && errno == ECHILD) {
            for (size_t i = 0; i < n; i++) {
                forget(&cs[i]);
            }
            return;
        }
        if (alive == 0) {
            break;
        }
        double now = dv_cli_seconds_now();
        bool late = (now - start) * 1000 >= timeout_ms;
        if (late || *hurry) {
            for (size_t i = 0; i < n; i++) {
                if (cs[i].pid > 0) {
                    char who[64];
                    snprintf(who, sizeof who, n > 1 ? "%s %zu" : "%s", what,
                             i + 1);
                    fprintf(stderr, "drover up: %s (pid %ld) %s: killed\n", who,
                            (long)cs[i].pid,
                            *hurry ? "told to stop now"
                                   : "did not stop in time");
                    kill(cs[i].pid, SIGKILL);
                    waitpid(cs[i].pid, &status, 0);
                    forget(&cs[i]);
                }
            }
            return;
        }
        if (now - said >= 5) {
            fprintf(stderr, "drover up: waiting for %zu %s(s) to finish\n",
                    alive, what);
            said = now;
        }
        struct timespec tick = {0, 100 * 1000000L};
        int sig = sigtimedwait(set, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            *hurry = true;
        }
    }
}

// The worker endpoint for a client endpoint: next tcp port, PATH-workers.
static void
derive_worker_endpoint(const char *client, char *buf, size_t size)
{
    const char *colon = strrchr(client, ':');
    if (strncmp(client, "tcp://", 6) == 0 && colon && colon > client + 5) {
        char *end = NULL;
        long port = strtol(colon + 1, &end, 10);
        if (*end == '\0' && port > 0 && port < 65535) {
            snprintf(buf, size, "%.*s:%ld", (int)(colon - client), client,
                     port + 1);
            return;
        }
        snprintf(buf, size, "%.*s:*", (int)(colon - client), client);
        return;
    }
    snprintf(buf, size, "%s-workers", client);
}

// buf = a + b (a path and what follows it). False when it does not fit.
static bool
path_cat(char *buf, size_t size, const char *a, const char *b)
{
    int n = snprintf(buf, size, "%s%s", a, b);
    return n >= 0 && (size_t)n < size;
}

// --secure: the cluster's CURVE keys under DATA/keys, made on first use and
// kept (a restart reuses them, so clients keep working): broker.key (its
// --secret-key), worker.key (every worker's), admin.key (for the CLI), and
// authorized/ holding worker.pub and admin.pub (the broker's
// --authorized-keys). keys gets DATA/keys. Returns 0, or DV_CLI_FAIL after
// saying why.
static int
secure_keys(const char *data, char *keys, size_t size)
{
    static const struct {
        const char *file; // under keys/
        const char *id;
        unsigned roles;
    } made[] = {
        {"/broker", "broker", 0},
        {"/worker", "worker", DV_ROLE_WORKER},
        {"/admin", "admin", DV_ROLE_ADMIN},
    };
    char stem[PATH_MAX], pub[PATH_MAX], auth[PATH_MAX], to_stem[PATH_MAX],
        to[PATH_MAX];
    if (!path_cat(keys, size, data, "/keys") ||
        !path_cat(auth, sizeof auth, keys, "/authorized")) {
        fprintf(stderr, "drover up: --data %s: path too long\n", data);
        return DV_CLI_FAIL;
    }
    if ((mkdir(data, 0700) != 0 && errno != EEXIST) ||
        (mkdir(keys, 0700) != 0 && errno != EEXIST) ||
        (mkdir(auth, 0700) != 0 && errno != EEXIST)) {
        fprintf(stderr, "drover up: cannot make %s: %s\n", auth,
                strerror(errno));
        return DV_CLI_FAIL;
    }
    dv_error_t err = {0};
    int rc = 0;
    for (size_t i = 0; i < sizeof made / sizeof *made && rc == 0; i++) {
        if (!path_cat(stem, sizeof stem, keys, made[i].file) ||
            !path_cat(pub, sizeof pub, stem, ".pub") ||
            !path_cat(to_stem, sizeof to_stem, auth, made[i].file) ||
            !path_cat(to, sizeof to, to_stem, ".pub")) {
            rc = dv_errorf(&err, DV_EINVAL, "%s: path too long", keys);
            break;
        }
        if (access(pub, F_OK) != 0) {
            rc = dv_key_generate(stem, made[i].id, made[i].roles, NULL, &err);
        }
        if (rc == 0 && made[i].roles) {
            uint8_t *bytes = NULL;
            size_t len = 0;
            rc = dv_file_read(pub, 1 << 16, &bytes, &len, &err);
            if (rc == 0) {
                rc = dv_file_write_atomic(to, bytes, len, &err);
            }
            free(bytes);
        }
    }
    if (rc) {
        fprintf(stderr, "drover up: --secure: %s\n", err.text);
        return DV_CLI_FAIL;
    }
    return 0;
}

// One member of a group (--replicas): where it listens and how it starts.
typedef struct {
    char id[12];              // --raft-id, 1-based
    char client[512];         // its client endpoint
    char worker[512];         // its worker endpoint
    char raft[64];            // its raft address, 127.0.0.1:PORT
    char http[300];           // its --http HOST:PORT, "" for none
    char data[PATH_MAX + 16]; // its --data, DIR/broker-<id>
    char bound_http[512];     // its status page, from its READY line
    char *argv[40];           // its drover-broker argv, NULL-ended
    int quick_exits;          // exits soon after a start, in a row
    time_t restart_at;        // when to start it again after an exit
    bool given_up;            // exited too often: not started again
} member_t;

// What `drover up` runs: its options resolved, the two argv vectors (they
// point into this struct, so it stays where it is), the children.
typedef struct {
    long n_workers;       // --workers (0: a broker alone)
    long n_conc;          // --concurrency, per worker
    bool secure;          // --secure: CURVE with keys under --data
    const char *conc;     // --concurrency as given, or NULL
    const char *hb;       // --heartbeat-ms as given, or NULL
    const char *endpoint; // the client endpoint asked for
    // The four key paths have room for keys[] and their file name, so GCC
    // (-Wformat-truncation, in release builds) sees path_cat cannot cut them.
    char keys[PATH_MAX];           // --secure: the keys folder, else ""
    char bkey[PATH_MAX + 16];      // broker's secret key file
    char bpub[PATH_MAX + 16];      // broker's public key file
    char auth[PATH_MAX + 16];      // the authorized keys file
    char wkey[PATH_MAX + 16];      // workers' secret key file
    char wep[512];                 // the worker endpoint asked for
    char broker_bin[PATH_MAX];     // drover-broker's path
    char worker_bin[PATH_MAX];     // drover-worker's path
    char *bargv[26];               // drover-broker's argv, NULL-ended
    int http_at;                   // bargv index of a default --http, or -1
    char bflags[2][16];            // "--log-level", "--log-format" for bargv
    char bound_client[512];        // from the broker's READY line
    char bound_worker[512];        // from the broker's READY line
    char bound_http[512];          // from the broker's READY line ("" if off)
    char name[64];                 // the next worker's --name (wargv uses it)
    char *wargv[28];               // drover-worker's argv, NULL-ended
    char flags[6][32];             // "--prefetch" ... for wargv
    char blas[16];                 // --blas-threads for wargv
    char line[1024];               // the last READY line read
    child_t broker;                // the drover-broker (one, not a group)
    long n_replicas;               // --replicas (1: one broker)
    char group_dir[PATH_MAX];      // a group's --data, or a temporary one
    bool group_tmp;                // group_dir is ours to remove at the end
    char peers[MAX_REPLICAS * 80]; // --raft-peers, the same for all
    member_t meta[MAX_REPLICAS];   // the group's members ...
    child_t members[MAX_REPLICAS]; // ... and their processes
    char client_list[MAX_REPLICAS * 520]; // their client endpoints, a list
    char worker_list[MAX_REPLICAS * 520]; // their worker endpoints, a list
    child_t workers[MAX_WORKERS];         // the first n_workers are used
    sigset_t set; // SIGINT, SIGTERM, SIGCHLD: blocked, waited
} up_t;

// Check the options and resolve what they leave out (keys, endpoints,
// binaries). Returns -1 to go on, else the exit code.
static int
up_configure(up_t *up, const dv_cli_opt_t *opts)
{
    up->conc = dv_cli_get(opts, "concurrency");
    up->hb = dv_cli_get(opts, "heartbeat-ms");
    long n_hb = 1000, n_prefetch = 0;
    up->n_workers = 2;
    up->n_conc = 1;
    up->n_replicas = 1;
    // --workers 0: a broker alone (workers join from elsewhere)
    if (!dv_cli_get_long(opts, "workers", 0, MAX_WORKERS, &up->n_workers) ||
        !dv_cli_get_long(opts, "concurrency", 1, 1024, &up->n_conc) ||
        !dv_cli_get_long(opts, "heartbeat-ms", 1, 3600000, &n_hb) ||
        !dv_cli_get_long(opts, "prefetch", 0, 100000, &n_prefetch) ||
        !dv_cli_get_long(opts, "replicas", 1, MAX_REPLICAS, &up->n_replicas)) {
        fputs(UP_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    if (up->n_replicas % 2 == 0) {
        fprintf(stderr,
                "drover up: --replicas %ld: a group has 1, 3 or 5 "
                "members (an odd number: a majority must survive a "
                "member's loss)\n",
                up->n_replicas);
        return DV_CLI_USAGE;
    }
    if (up->n_replicas > 1 && dv_cli_get(opts, "worker-endpoint")) {
        fprintf(stderr, "drover up: --worker-endpoint does not go with "
                        "--replicas: each member's worker port is its client "
                        "port + 1\n");
        return DV_CLI_USAGE;
    }
    up->secure = dv_cli_get(opts, "secure") != NULL;
    if (up->secure && !dv_cli_get(opts, "data")) {
        fprintf(stderr, "drover up: --secure keeps the cluster's keys under "
                        "--data DIR: name one\n");
        fputs(UP_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    if (up->secure &&
        secure_keys(dv_cli_get(opts, "data"), up->keys, sizeof up->keys) != 0) {
        return DV_CLI_FAIL;
    }
    // (secure_keys checked that these fit)
    path_cat(up->bkey, sizeof up->bkey, up->keys, "/broker.key");
    path_cat(up->bpub, sizeof up->bpub, up->keys, "/broker.pub");
    path_cat(up->auth, sizeof up->auth, up->keys, "/authorized");
    path_cat(up->wkey, sizeof up->wkey, up->keys, "/worker.key");
    up->endpoint = dv_cli_get(opts, "endpoint");
    up->endpoint = up->endpoint ? up->endpoint : DROVER_DEFAULT_ENDPOINT;
    if (dv_cli_get(opts, "worker-endpoint")) {
        snprintf(up->wep, sizeof up->wep, "%s",
                 dv_cli_get(opts, "worker-endpoint"));
    } else {
        derive_worker_endpoint(up->endpoint, up->wep, sizeof up->wep);
    }
    find_bin("DROVER_BROKER_BIN", "drover-broker", up->broker_bin,
             sizeof up->broker_bin);
    find_bin("DROVER_WORKER_BIN", "drover-worker", up->worker_bin,
             sizeof up->worker_bin);
    return -1;
}

// drover-broker's argv, from the options.
static void
up_broker_argv(up_t *up, const dv_cli_opt_t *opts)
{
    char **bargv = up->bargv;
    int k = 0;
    bargv[k++] = up->broker_bin;
    bargv[k++] = "--client";
    bargv[k++] = (char *)up->endpoint;
    bargv[k++] = "--worker";
    bargv[k++] = up->wep;
    if (dv_cli_get(opts, "data")) {
        bargv[k++] = "--data";
        bargv[k++] = (char *)dv_cli_get(opts, "data");
    }
    // The status page and /metrics: the default cluster on the default
    // port, any other on a free one (so clusters side by side never
    // collide); --http off: none.
    const char *http = dv_cli_get(opts, "http");
    if (!http) {
        http = strcmp(up->endpoint, DROVER_DEFAULT_ENDPOINT) == 0
                   ? "127.0.0.1:7480"
                   : "127.0.0.1:0";
    }
    up->http_at = -1; // where the default port is, to fall back from
    if (strcmp(http, "off") != 0) {
        bargv[k++] = "--http";
        if (!dv_cli_get(opts, "http") && strcmp(http, "127.0.0.1:0") != 0) {
            up->http_at = k;
        }
        bargv[k++] = (char *)http;
    }
    if (dv_cli_get(opts, "http-token")) {
        bargv[k++] = "--http-token";
        bargv[k++] = (char *)dv_cli_get(opts, "http-token");
    }
    if (up->hb) {
        bargv[k++] = "--heartbeat-ms";
        bargv[k++] = (char *)up->hb;
    }
    if (up->secure) {
        bargv[k++] = "--secret-key";
        bargv[k++] = up->bkey;
        bargv[k++] = "--authorized-keys";
        bargv[k++] = up->auth;
    }
    static const char *const log_flags[] = {"log-level", "log-format"};
    for (size_t i = 0; i < 2; i++) {
        if (dv_cli_get(opts, log_flags[i])) {
            snprintf(up->bflags[i], sizeof up->bflags[i], "--%s", log_flags[i]);
            bargv[k++] = up->bflags[i];
            bargv[k++] = (char *)dv_cli_get(opts, log_flags[i]);
        }
    }
    bargv[k] = NULL;
}

// SIGKILL the broker if it runs, and forget it.
static void
kill_broker(child_t *broker)
{
    if (broker->pid > 0) {
        kill(broker->pid, SIGKILL);
        waitpid(broker->pid, NULL, 0);
    }
    forget(broker);
}

// Start the broker and read its READY line (the bound endpoints). Returns
// 0, or DV_CLI_FAIL with the broker gone.
static int
up_start_broker(up_t *up)
{
    bool ready = spawn(up->bargv, &up->broker) == 0 &&
                 wait_ready(&up->broker, up->line, sizeof up->line,
                            READY_TIMEOUT_MS) == 0;
    if (!ready && up->http_at >= 0) {
        // The default status page port may be another program's: the
        // cluster matters more than the port (an explicit --http does not
        // fall back).
        kill_broker(&up->broker);
        fprintf(stderr, "drover up: trying again with the status page on a "
                        "free port\n");
        up->bargv[up->http_at] = "127.0.0.1:0";
        ready = spawn(up->bargv, &up->broker) == 0 &&
                wait_ready(&up->broker, up->line, sizeof up->line,
                           READY_TIMEOUT_MS) == 0;
    }
    if (!ready) {
        fprintf(stderr, "drover up: the broker did not start (%s)\n",
                up->broker_bin);
        kill_broker(&up->broker);
        return DV_CLI_FAIL;
    }
    // "READY <client> <worker>": the bound endpoints (tcp "*" resolved).
    sscanf(up->line, "READY %511s %511s %511s", up->bound_client,
           up->bound_worker, up->bound_http);
    return 0;
}

// ------------------------------------------------------------ a group

// "tcp://HOST:PORT" into host (with its tcp:// prefix) and *port (0 for
// "*" or 0: free ones). False when ep is not of that form.
static bool
split_tcp(const char *ep, char *host, size_t size, long *port)
{
    const char *colon = strrchr(ep, ':');
    if (strncmp(ep, "tcp://", 6) != 0 || !colon || colon <= ep + 5 ||
        (size_t)(colon - ep) >= size) {
        return false;
    }
    snprintf(host, size, "%.*s", (int)(colon - ep), ep);
    if (strcmp(colon + 1, "*") == 0) {
        *port = 0;
        return true;
    }
    char *end = NULL;
    *port = strtol(colon + 1, &end, 10);
    return *end == '\0' && colon[1] && *port >= 0 && *port <= 65535;
}

// The members' endpoints and raft addresses, as asked (--endpoint,
// --http) or free ports. Returns 0, or DV_CLI_USAGE after saying why.
static int
group_plan(up_t *up, const dv_cli_opt_t *opts)
{
    int spare[MAX_REPLICAS * 4];
    size_t n = (size_t)up->n_replicas;
    if (dv_addr_free_ports(spare, 4 * n) != 0) {
        fprintf(stderr, "drover up: cannot find free ports: %s\n",
                strerror(errno));
        return DV_CLI_FAIL;
    }
    const char *ep = dv_cli_get(opts, "endpoint");
    const char *http = dv_cli_get(opts, "http");
    char host[256] = "tcp://127.0.0.1", hhost[256] = "127.0.0.1";
    long port = 0, hport = 0;
    bool ipc = ep && strncmp(ep, "ipc://", 6) == 0;
    if (ep && !ipc && !split_tcp(ep, host, sizeof host, &port)) {
        fprintf(stderr,
                "drover up: --endpoint %s with --replicas: give "
                "tcp://HOST:PORT (members on PORT, PORT+2, ...) or "
                "ipc://PATH (PATH-1, PATH-2, ...)\n",
                ep);
        return DV_CLI_USAGE;
    }
    if (port && port + 2 * (long)n > 65535) {
        fprintf(stderr,
                "drover up: --endpoint %s: no room for %zu members' "
                "ports above it\n",
                ep, n);
        return DV_CLI_USAGE;
    }
    if (http && strcmp(http, "off") != 0) {
        const char *colon = strrchr(http, ':');
        char *end = NULL;
        hport = colon ? strtol(colon + 1, &end, 10) : -1;
        if (!colon || colon == http || !end || *end || hport < 0 ||
            hport + (long)n > 65535 || (size_t)(colon - http) >= sizeof hhost) {
            fprintf(stderr,
                    "drover up: --http %s: give HOST:PORT (members "
                    "on PORT, PORT+1, ...) or off\n",
                    http);
            return DV_CLI_USAGE;
        }
        snprintf(hhost, sizeof hhost, "%.*s", (int)(colon - http), http);
    }
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        member_t *m = &up->meta[i];
        snprintf(m->id, sizeof m->id, "%d", (int)i + 1);
        if (ipc) {
            snprintf(m->client, sizeof m->client, "%.490s-%d", ep, (int)i + 1);
            snprintf(m->worker, sizeof m->worker, "%.490s-%d-workers", ep,
                     (int)i + 1);
        } else {
            long c = port ? port + 2 * (long)i : spare[4 * i];
            long w = port ? c + 1 : spare[4 * i + 1];
            snprintf(m->client, sizeof m->client, "%s:%ld", host, c);
            snprintf(m->worker, sizeof m->worker, "%s:%ld", host, w);
        }
        // Every member is on this host: raft over loopback.
        snprintf(m->raft, sizeof m->raft, "127.0.0.1:%d", spare[4 * i + 2]);
        if (!http || strcmp(http, "off") != 0) {
            snprintf(m->http, sizeof m->http, "%s:%ld", hhost,
                     hport ? hport + (long)i : spare[4 * i + 3]);
        }
        int k = snprintf(up->peers + used, sizeof up->peers - used, "%s%s=%s",
                         i ? "," : "", m->id, m->raft);
        used += k > 0 ? (size_t)k : 0;
    }
    return 0;
}

// DIR/up-group: the members' endpoints as first chosen, one line each
// (ID CLIENT WORKER RAFT HTTP|-). A group's raft log names its members by
// their raft addresses, so a restart must use the same ones. Returns 1
// when read, 0 when there is none, DV_CLI_FAIL after saying why.
static int
group_load(up_t *up)
{
    char path[PATH_MAX + 16];
    if (!path_cat(path, sizeof path, up->group_dir, "/up-group")) {
        return 0;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        return 0;
    }
    size_t n = 0;
    member_t m;
    char line[2048];
    size_t used = 0;
    while (fgets(line, sizeof line, f)) {
        memset(&m, 0, sizeof m);
        if (sscanf(line, "%11s %511s %511s %63s %299s", m.id, m.client,
                   m.worker, m.raft, m.http) != 5) {
            continue;
        }
        if (n == MAX_REPLICAS) {
            n++;
            break;
        }
        if (strcmp(m.http, "-") == 0) {
            m.http[0] = '\0';
        }
        up->meta[n] = m;
        int k = snprintf(up->peers + used, sizeof up->peers - used, "%s%s=%s",
                         n ? "," : "", m.id, m.raft);
        used += k > 0 ? (size_t)k : 0;
        n++;
    }
    fclose(f);
    if (n != (size_t)up->n_replicas) {
        fprintf(stderr,
                "drover up: %s holds a group of %zu member(s), not %ld: "
                "start it with --replicas %zu (or use another --data)\n",
                path, n, up->n_replicas, n);
        return DV_CLI_FAIL;
    }
    fprintf(stderr, "drover up: the group's endpoints as first chosen (%s)\n",
            path);
    return 1;
}

static int
group_save(const up_t *up)
{
    char path[PATH_MAX + 16], text[MAX_REPLICAS * 1500];
    size_t used = 0;
    for (long i = 0; i < up->n_replicas; i++) {
        const member_t *m = &up->meta[i];
        int k =
            snprintf(text + used, sizeof text - used, "%s %s %s %s %s\n", m->id,
                     m->client, m->worker, m->raft, m->http[0] ? m->http : "-");
        used += k > 0 ? (size_t)k : 0;
    }
    dv_error_t err = {0};
    if (!path_cat(path, sizeof path, up->group_dir, "/up-group") ||
        dv_file_write_atomic(path, text, used, &err) != 0) {
        fprintf(stderr,
                "drover up: cannot keep the group's endpoints in "
                "%s/up-group: %s\n",
                up->group_dir, err.text);
        return DV_CLI_FAIL;
    }
    return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

// Member m's drover-broker argv.
static void
member_argv(up_t *up, member_t *m)
{
    char **a = m->argv;
    int k = 0;
    a[k++] = up->broker_bin;
    a[k++] = "--client";
    a[k++] = m->client;
    a[k++] = "--worker";
    a[k++] = m->worker;
    a[k++] = "--data";
    a[k++] = m->data;
    a[k++] = "--raft-id";
    a[k++] = m->id;
    a[k++] = "--raft";
    a[k++] = m->raft;
    a[k++] = "--raft-peers";
    a[k++] = up->peers;
    if (m->http[0]) {
        a[k++] = "--http";
        a[k++] = m->http;
    }
    // The rest as one broker gets them (up_broker_argv's tail).
    for (int i = 0; up->bargv[i]; i++) {
        static const char *const passed[] = {
            "--http-token",      "--heartbeat-ms", "--secret-key",
            "--authorized-keys", "--log-level",    "--log-format"};
        for (size_t j = 0; j < sizeof passed / sizeof *passed; j++) {
            if (strcmp(up->bargv[i], passed[j]) == 0 && up->bargv[i + 1]) {
                a[k++] = up->bargv[i];
                a[k++] = up->bargv[i + 1];
            }
        }
    }
    a[k] = NULL;
}

// Where the group lives (--data, or a temporary folder), its members'
// endpoints (kept from the first start, or chosen now) and argv. Returns
// 0, or the exit code after saying why.
static int
group_configure(up_t *up, const dv_cli_opt_t *opts)
{
    const char *data = dv_cli_get(opts, "data");
    if (data) {
        snprintf(up->group_dir, sizeof up->group_dir, "%s", data);
        if (mkdir(data, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "drover up: cannot make %s: %s\n", data,
                    strerror(errno));
            return DV_CLI_FAIL;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(up->group_dir, sizeof up->group_dir, "%s/drover-up-XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(up->group_dir)) {
            fprintf(stderr,
                    "drover up: cannot make a folder for the group: "
                    "%s\n",
                    strerror(errno));
            return DV_CLI_FAIL;
        }
        up->group_tmp = true;
    }
    int rc = data ? group_load(up) : 0;
    if (rc == 0) {
        rc = group_plan(up, opts);
        if (rc == 0 && data) {
            rc = group_save(up);
        }
    } else if (rc == 1) {
        rc = 0;
    }
    if (rc) {
        return rc;
    }
    size_t cu = 0, wu = 0;
    for (long i = 0; i < up->n_replicas; i++) {
        member_t *m = &up->meta[i];
        // (group_dir fits: it is shorter than data by more than the rest)
        size_t dir_len = strlen(up->group_dir);
        memcpy(m->data, up->group_dir, dir_len);
        snprintf(m->data + dir_len, sizeof m->data - dir_len, "/broker-%ld",
                 i + 1); // = its id
        member_argv(up, m);
        up->members[i] = (child_t){0, -1, 0};
        int k = snprintf(up->client_list + cu, sizeof up->client_list - cu,
                         "%s%s", i ? "," : "", m->client);
        cu += k > 0 ? (size_t)k : 0;
        k = snprintf(up->worker_list + wu, sizeof up->worker_list - wu, "%s%s",
                     i ? "," : "", m->worker);
        wu += k > 0 ? (size_t)k : 0;
    }
    return 0;
}

// Start every member together (they elect a leader among themselves), then
// read each one's READY line (followers say it too). Returns 0, or
// DV_CLI_FAIL with them all gone.
static int
group_start(up_t *up)
{
    int rc = 0;
    for (long i = 0; i < up->n_replicas && rc == 0; i++) {
        if (spawn(up->meta[i].argv, &up->members[i]) != 0) {
            fprintf(stderr, "drover up: cannot start member %ld: %s\n", i + 1,
                    strerror(errno));
            rc = DV_CLI_FAIL;
        }
    }
    for (long i = 0; i < up->n_replicas && rc == 0; i++) {
        char client[512] = "", worker[512] = "";
        if (wait_ready(&up->members[i], up->line, sizeof up->line,
                       READY_TIMEOUT_MS) != 0) {
            fprintf(stderr, "drover up: member %ld did not start (%s)\n", i + 1,
                    up->broker_bin);
            rc = DV_CLI_FAIL;
            break;
        }
        sscanf(up->line, "READY %511s %511s %511s", client, worker,
               up->meta[i].bound_http);
    }
    if (rc) {
        for (long i = 0; i < up->n_replicas; i++) {
            kill_broker(&up->members[i]);
        }
    }
    return rc;
}

// A member exited: say so, and whether it is started again.
static void
member_exited(up_t *up, long i, int status, bool stopping)
{
    member_t *m = &up->meta[i];
    child_t *c = &up->members[i];
    bool quick = time(NULL) - c->started < MEMBER_QUICK_S;
    m->quick_exits = quick ? m->quick_exits + 1 : 0;
    m->given_up = m->quick_exits >= MEMBER_GIVE_UP;
    m->restart_at = time(NULL) + ((time_t)MEMBER_RESTART_S << m->quick_exits);
    fprintf(stderr, "drover up: member %s (pid %ld) exited (status %d)%s\n",
            m->id, (long)c->pid,
            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
            stopping      ? ""
            : m->given_up ? "; it keeps exiting: not starting it again"
                          : "; starting it again (it rejoins the group)");
    forget(c);
}

// Start the members that exited again (at most once a second each); they
// rejoin the group with their data. False once none runs or will.
static bool
group_restart(up_t *up)
{
    bool any = false;
    for (long i = 0; i < up->n_replicas; i++) {
        child_t *c = &up->members[i];
        if (c->pid == 0 && !up->meta[i].given_up &&
            time(NULL) >= up->meta[i].restart_at) {
            if (spawn(up->meta[i].argv, c) == 0) {
                fprintf(stderr,
                        "drover up: member %s started again (pid "
                        "%ld)\n",
                        up->meta[i].id, (long)c->pid);
            }
        }
        any = any || c->pid > 0 || !up->meta[i].given_up;
    }
    if (!any) {
        fprintf(stderr, "drover up: no member of the group is left\n");
    }
    return any;
}

// drover-worker's argv, from the options and the broker's bound worker
// endpoint; --name points at up->name, set before each start.
static void
up_worker_argv(up_t *up, const dv_cli_opt_t *opts)
{
    char **wargv = up->wargv;
    int k = 0;
    wargv[k++] = up->worker_bin;
    wargv[k++] = "--broker";
    wargv[k++] = up->n_replicas > 1 ? up->worker_list : up->bound_worker;
    wargv[k++] = "--name";
    wargv[k++] = up->name;
    if (up->conc) {
        wargv[k++] = "--concurrency";
        wargv[k++] = (char *)up->conc;
    }
    if (up->hb) {
        wargv[k++] = "--heartbeat-ms";
        wargv[k++] = (char *)up->hb;
    }
    if (up->secure) {
        wargv[k++] = "--key";
        wargv[k++] = up->wkey;
        wargv[k++] = "--broker-key";
        wargv[k++] = up->bpub;
    }
    // Passed to every worker as they are (drover-worker checks them).
    static const char *const passed[] = {"prefetch",    "model-memory",
                                         "data-memory", "train-slots",
                                         "log-level",   "log-format"};
    for (size_t i = 0; i < sizeof passed / sizeof *passed; i++) {
        if (dv_cli_get(opts, passed[i])) {
            snprintf(up->flags[i], sizeof up->flags[i], "--%s", passed[i]);
            wargv[k++] = up->flags[i];
            wargv[k++] = (char *)dv_cli_get(opts, passed[i]);
        }
    }
    // Every worker's jobs share this host's cores (docs/ARCHITECTURE.md,
    // BLAS threads: the policy); each worker alone would take them all.
    unsigned long long jobs =
        (unsigned long long)(up->n_workers ? up->n_workers : 1) *
        (unsigned)up->n_conc;
    snprintf(
        up->blas, sizeof up->blas, "%d",
        dv_blas_threads_share(jobs < UINT_MAX ? (unsigned)jobs : UINT_MAX));
    wargv[k++] = "--blas-threads";
    wargv[k++] = up->blas;
    wargv[k] = NULL;
}

// Start worker i (0-based) under its name, w<i+1>-<our pid>.
static int
up_spawn_worker(up_t *up, int i)
{
    snprintf(up->name, sizeof up->name, "w%d-%ld", i + 1, (long)getpid());
    return spawn(up->wargv, &up->workers[i]);
}

// Start every worker, then wait for each to connect. Returns DV_CLI_OK or
// DV_CLI_FAIL.
static int
up_start_workers(up_t *up)
{
    int rc = DV_CLI_OK;
    for (int i = 0; i < up->n_workers && rc == DV_CLI_OK; i++) {
        if (up_spawn_worker(up, i) != 0) {
            rc = DV_CLI_FAIL;
        }
    }
    for (int i = 0; i < up->n_workers && rc == DV_CLI_OK; i++) {
        if (wait_ready(&up->workers[i], up->line, sizeof up->line,
                       READY_TIMEOUT_MS) != 0) {
            fprintf(stderr, "drover up: worker %d did not connect\n", i + 1);
            rc = DV_CLI_FAIL;
        }
    }
    return rc;
}

// `READY <client endpoint>` on stdout, and what runs where on stderr.
static void
up_announce(const up_t *up)
{
    if (up->n_replicas > 1) {
        printf("READY %s\n", up->client_list);
        fflush(stdout);
        fprintf(stderr,
                "drover up: a broker group of %ld members (data in %s%s), "
                "%d worker(s); Ctrl-C stops\n",
                up->n_replicas, up->group_dir,
                up->group_tmp ? ", removed at the end" : "",
                (int)up->n_workers);
        for (long i = 0; i < up->n_replicas; i++) {
            const member_t *m = &up->meta[i];
            fprintf(stderr,
                    "drover up: member %s (pid %ld): clients %s, workers %s, "
                    "raft %s%s%s\n",
                    m->id, (long)up->members[i].pid, m->client, m->worker,
                    m->raft, m->bound_http[0] ? ", status page " : "",
                    m->bound_http);
        }
        fprintf(stderr,
                "drover up: export DROVER_BROKER=%s\n"
                "  (or drover --broker LIST ...; `drover status` shows the "
                "members)\n",
                up->client_list);
    } else {
        printf("READY %s\n", up->bound_client);
        fflush(stdout);
        fprintf(stderr,
                "drover up: broker at %s (workers at %s), %d worker(s); "
                "Ctrl-C stops\n",
                up->bound_client, up->bound_worker, (int)up->n_workers);
    }
    if (up->n_replicas == 1 && up->bound_http[0]) {
        fprintf(stderr,
                "drover up: status page %s/ , Prometheus metrics "
                "%s/metrics\n",
                up->bound_http, up->bound_http);
    }
    if (up->secure) {
        const char *keys = up->keys;
        fprintf(stderr,
                "drover up: CURVE on; the CLI talks to it with `drover "
                "--keys %s COMMAND` (the admin key), or\n"
                "  export DROVER_KEY=%s/admin.key "
                "DROVER_BROKER_KEY=%s/broker.pub\n"
                "  more keys: drover keygen --out %s/NAME --roles ..., copy "
                "NAME.pub into %s/authorized, drover admin reload\n",
                keys, keys, keys, keys, keys);
    }
}

// Reap the children that exited: the broker ends the cluster (returns
// true), a worker is marked for restart.
static bool
up_reap(up_t *up, bool stopping)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == up->broker.pid) {
            fprintf(stderr, "drover up: the broker exited (status %d)\n",
                    WIFEXITED(status) ? WEXITSTATUS(status)
                                      : 128 + WTERMSIG(status));
            up->broker.pid = 0;
            stopping = true;
        }
        for (long i = 0; i < up->n_replicas; i++) {
            if (up->members[i].pid == pid) {
                member_exited(up, i, status, stopping);
            }
        }
        for (int i = 0; i < up->n_workers; i++) {
            child_t *w = &up->workers[i];
            if (w->pid == pid) {
                fprintf(stderr, "drover up: worker %d exited (status %d)%s\n",
                        i + 1,
                        WIFEXITED(status) ? WEXITSTATUS(status)
                                          : 128 + WTERMSIG(status),
                        stopping ? "" : "; restarting it");
                w->pid = 0;
                close(w->out);
                w->out = -1;
            }
        }
    }
    return stopping;
}

// Until SIGINT/SIGTERM or the broker's exit: restart dead workers (and a
// group's dead members), at most one start per worker per second. Returns
// DV_CLI_FAIL if the broker exited (every member gave up), else DV_CLI_OK.
static int
up_supervise(up_t *up)
{
    for (;;) {
        struct timespec tick = {1, 0};
        int sig = sigtimedwait(&up->set, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            return DV_CLI_OK;
        }
        if (up_reap(up, false) || (up->n_replicas > 1 && !group_restart(up))) {
            return DV_CLI_FAIL;
        }
        for (int i = 0; i < up->n_workers; i++) {
            if (up->workers[i].pid == 0 &&
                time(NULL) > up->workers[i].started) {
                up_spawn_worker(up, i);
            }
        }
    }
}

int
dv_cli_up(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"workers", true, NULL},
        {"concurrency", true, NULL},
        {"data", true, NULL},
        {"endpoint", true, NULL},
        {"worker-endpoint", true, NULL},
        {"heartbeat-ms", true, NULL},
        {"prefetch", true, NULL},
        {"model-memory", true, NULL},
        {"data-memory", true, NULL},
        {"train-slots", true, NULL},
        {"log-level", true, NULL},
        {"log-format", true, NULL},
        {"secure", false, NULL},
        {"http", true, NULL},
        {"http-token", true, NULL},
        {"replicas", true, NULL},
        {"help", false, NULL},
        {NULL, false, NULL},
    };
    size_t n_pos;
    if (dv_cli_parse(argc, argv, opts, NULL, 0, &n_pos)) {
        fputs(UP_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    if (dv_cli_get(opts, "help")) {
        fputs(UP_USAGE, stdout);
        return DV_CLI_OK;
    }
    up_t *up = dv_calloc(1, sizeof *up);
    int rc = up_configure(up, opts);
    if (rc >= 0) {
        free(up);
        return rc;
    }
    // Signals are taken synchronously (sigtimedwait) from here on.
    sigemptyset(&up->set);
    sigaddset(&up->set, SIGINT);
    sigaddset(&up->set, SIGTERM);
    sigaddset(&up->set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &up->set, NULL);
    up->broker = (child_t){0, -1, 0};
    for (int i = 0; i < MAX_WORKERS; i++) {
        up->workers[i] = (child_t){0, -1, 0};
    }
    up_broker_argv(up, opts);
    if (up->n_replicas > 1) {
        for (int i = 0; i < MAX_REPLICAS; i++) {
            up->members[i] = (child_t){0, -1, 0};
        }
        rc = group_configure(up, opts);
        if (rc == 0) {
            rc = group_start(up);
        }
    } else {
        rc = up_start_broker(up);
    }
    if (rc != 0) {
        if (up->group_tmp) {
            nftw(up->group_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        }
        free(up);
        return rc;
    }
    up_worker_argv(up, opts);
    rc = up_start_workers(up);
    if (rc == DV_CLI_OK) {
        up_announce(up);
        rc = up_supervise(up);
    }
    // Drain the workers, all at once (each finishes the jobs it runs and
    // says bye), then the broker. A second Ctrl-C stops them at once.
    bool hurry = false;
    stop_all(up->workers, (size_t)up->n_workers, "worker", DRAIN_MS, &up->set,
             &hurry);
    stop_all(&up->broker, 1, "broker", BROKER_STOP_MS, &up->set, &hurry);
    stop_all(up->members, (size_t)up->n_replicas, "member", BROKER_STOP_MS,
             &up->set, &hurry);
    if (up->group_tmp) {
        nftw(up->group_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    free(up);
    return rc;
}
