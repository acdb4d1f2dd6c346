// drover-broker — thin daemon over dv_broker: parse arguments, open, print
// READY, run until SIGINT/SIGTERM. Exit 0 ok, 1 failure, 2 usage.
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dv_broker.h"
#include "dv_log.h"
#include "dv_mem.h"

static void
usage(FILE *f)
{
    fprintf(f, "usage: drover-broker [--client ENDPOINT] [--worker ENDPOINT]\n"
               "                     [--data DIR] [--heartbeat-ms N] "
               "[--result-ttl-s N]\n"
               "                     [--max-queued N] [--max-queued-bytes "
               "N]\n"
               "                     [--aging-ms N] [--quarantine-after N] "
               "[--idempotency-window-s N]\n"
               "                     [--max-dead N] [--max-dead-bytes N]\n"
               "                     [--memory-window N]\n"
               "                     [--max-stored-bytes N] [--min-free-disk "
               "N]\n"
               "                     [--submit-free-disk N]\n"
               "                     [--secret-key FILE.key --authorized-keys "
               "DIR]\n"
               "                     [--max-connections N] [--max-inflight "
               "N]\n"
               "                     [--require-signed] [--plain]\n"
               "                     [--max-worker-connections N] "
               "[--max-key-connections N]\n"
               "                     [--handshake-ms N]\n"
               "                     [--log-level L] [--log-format text|json]\n"
               "                     [--http HOST:PORT [--http-token FILE]]\n"
               "                     [--raft-id N --raft HOST:PORT "
               "--raft-peers LIST|--raft-join]\n"
               "                     [--raft-election-ms N] [--raft-private] "
               "[--raft-files-port N]\n"
               "defaults: --client tcp://127.0.0.1:7470 --worker "
               "tcp://127.0.0.1:7471\n"
               "--data DIR makes jobs, results and models durable (DIR/store, "
               "DIR/models;\ncreated if missing): a submit is acknowledged "
               "once stored, and a restart\nrecovers everything. Without it "
               "all lives in memory (docs/SEMANTICS.md).\n"
               "--max-queued N (default 1000000) jobs waiting per queue and "
               "--max-queued-bytes N\n(default 1 GiB) payload bytes of a "
               "queue's unfinished jobs: past them a submit\nis refused at "
               "once with DV_EQUEUEFULL.\n"
               "--aging-ms N (default 10000): waiting this long counts as one "
               "priority level.\n"
               "--quarantine-after N (default 3): a job whose worker died N "
               "times while\nrunning it goes to the dead letters.\n"
               "--max-dead N (default and most 100000) dead letters and "
               "--max-dead-bytes N\n(default and most 256 MiB) their "
               "payload bytes: past either the oldest\ndead letters are "
               "dropped (their failed results stay kept).\n"
               "--max-stored-bytes N (default 1 TiB with --data, else 4 "
               "GiB: files live in RAM)\nmodel files, and again data set "
               "files, kept; --min-free-disk N (default\n1 GiB) free bytes a "
               "new one must leave where --data is (the job store needs\n"
               "room). Past them a push, or a train job's model, is refused "
               "(DV_ELIMIT,\nDV_ENOSPC); so is the 100,001st version of "
               "either.\n"
               "--submit-free-disk N (default 64 MiB): while less is free "
               "where --data is,\ndurable submits are refused (DV_ENOSPC) "
               "so the jobs held can still be stored.\n"
               "--idempotency-window-s N (default 86400): how long a submit's "
               "idempotency_key\nis remembered.\n"
               "--memory-window N (default 20000): with --data, durable jobs "
               "waiting per queue\nheld in memory; deeper queues wait in the "
               "store (bounded RAM).\n"
               "--secret-key FILE.key --authorized-keys DIR: CURVE on both "
               "sockets (encrypted,\nauthenticated): only the public keys in "
               "DIR (*.pub, with their roles and queues;\n`drover keygen`) may "
               "connect; SIGHUP or `drover admin reload` rereads DIR.\nWithout "
               "them: plain mode, for ipc:// and 127.0.0.1; on any other "
               "address only with\n--plain (no encryption, no "
               "authentication: a private network; docs/SECURITY.md).\n"
               "--require-signed: model files are taken only signed by an "
               "admin key\n(drover models push FILE --sign).\n"
               "--max-connections N (default 10000) client connections; "
               "--max-inflight N\n(default 100000) unfinished jobs per key: "
               "past it a submit gets DV_ELIMIT.\n"
               "--max-worker-connections N (default 10000) worker "
               "connections; --max-key-connections\nN (default 1000) "
               "connections of one key on each socket. Only authenticated\n"
               "connections count; a handshake must finish within "
               "--handshake-ms N\n(default 10000).\n"
               "--http HOST:PORT: Prometheus metrics at /metrics, a status "
               "page at / (its JSON\nat /api/status). Off unless given. "
               "Beyond loopback it needs --http-token FILE\n(a bearer "
               "token, the file's first line, mode 600) or --plain "
               "(docs/SECURITY.md).\n"
               "--raft-id N --raft HOST:PORT --raft-peers 1=HOST:PORT,2=...: "
               "a member of a\nbroker group (3 or 5; needs --data): jobs, "
               "results, models and data sets are\nreplicated by Raft, a "
               "submit is acknowledged once on a majority of disks, and\nonly "
               "the leader serves (the others answer DV_ENOTLEADER naming it). "
               "--raft-peers\nlists the whole initial group, the same on "
               "every member; a member added later\nstarts with --raft-join "
               "(drover admin member add). --raft-election-ms N\n(default "
               "1000): how long without a leader before an election. Raft\n"
               "traffic is plain TCP: a --raft address beyond loopback needs "
               "--raft-private\n(only the members reach it; "
               "docs/SECURITY.md). Files over 4 MiB travel between members\n"
               "on a files channel, a TCP port on the --raft host: "
               "--raft-files-port N\n(default: one the OS picks; the leader "
               "announces it) for a firewall.\n" DV_LOG_FLAGS_USAGE
               "Prints 'READY <client endpoint> <worker endpoint>' once "
               "bound.\n");
}

// The bearer token in path: its first line, at least 16 bytes, from a file
// only its owner may read (it is a password). Returns 0 or DV_E*.
static int
read_token(const char *path, char *out, size_t size, dv_error_t *err)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return dv_errorf(err, DV_ENOENT, "%s: %s", path, strerror(errno));
    }
    if (st.st_mode & 077) {
        return dv_errorf(err, DV_EACCES,
                         "%s: others may read it (a token is a password): "
                         "chmod 600 %s",
                         path, path);
    }
    FILE *f = fopen(path, "r");
    if (!f || !fgets(out, (int)size, f)) {
        if (f) {
            fclose(f);
        }
        return dv_errorf(err, DV_EIO, "%s: cannot read a line", path);
    }
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    if (strlen(out) < 16) {
        return dv_errorf(err, DV_EINVAL,
                         "%s: a token of at least 16 characters, please "
                         "(e.g. head -c 24 /dev/urandom | base64)",
                         path);
    }
    return 0;
}

// How an option's value is stored in dv_broker_opts_t.
typedef enum {
    ARG_STR,  // const char *: the argument itself
    ARG_FLAG, // bool: set, no value
    ARG_U32,  // uint32_t: a number >= min, times scale
    ARG_U64,  // uint64_t: likewise
    ARG_SIZE, // size_t: likewise
} arg_type_t;

// One row per option: its name, where it goes, and the least value taken.
typedef struct {
    const char *name; // "--client", ...
    arg_type_t type;  // how it is stored
    size_t off;       // offsetof its field in dv_broker_opts_t
    long long min;    // numbers: the least value accepted
    long long scale;  // numbers: stored times this (seconds to ms)
} arg_row_t;

#define OPT(f) offsetof(dv_broker_opts_t, f)

// clang-format off
static const arg_row_t args[] = {
    {"--client",                 ARG_STR,  OPT(client_endpoint),        0, 1},
    {"--worker",                 ARG_STR,  OPT(worker_endpoint),        0, 1},
    {"--max-queued",             ARG_U64,  OPT(max_queued),             1, 1},
    {"--max-queued-bytes",       ARG_U64,  OPT(max_queued_bytes),       1, 1},
    {"--data",                   ARG_STR,  OPT(data_dir),               0, 1},
    {"--heartbeat-ms",           ARG_U32,  OPT(heartbeat_ms),           1, 1},
    {"--result-ttl-s",           ARG_U64,  OPT(result_ttl_ms),          1, 1000},
    {"--aging-ms",               ARG_U64,  OPT(aging_ms),               1, 1},
    {"--quarantine-after",       ARG_U32,  OPT(quarantine_after),       1, 1},
    {"--max-dead",               ARG_U64,  OPT(max_dead),               1, 1},
    {"--max-dead-bytes",         ARG_U64,  OPT(max_dead_bytes),         1, 1},
    {"--memory-window",          ARG_SIZE, OPT(memory_window),          2, 1},
    {"--max-stored-bytes",       ARG_U64,  OPT(max_stored_bytes),       1, 1},
    {"--min-free-disk",          ARG_U64,  OPT(min_free_disk),          1, 1},
    {"--submit-free-disk",       ARG_U64,  OPT(submit_free_disk),       1, 1},
    {"--idempotency-window-s",   ARG_U64,  OPT(idempotency_window_ms),  1, 1000},
    {"--secret-key",             ARG_STR,  OPT(secret_key),             0, 1},
    {"--authorized-keys",        ARG_STR,  OPT(authorized_keys),        0, 1},
    {"--max-connections",        ARG_SIZE, OPT(max_connections),        1, 1},
    {"--max-worker-connections", ARG_SIZE, OPT(max_worker_connections), 1, 1},
    {"--max-key-connections",    ARG_SIZE, OPT(max_key_connections),    1, 1},
    {"--handshake-ms",           ARG_U32,  OPT(handshake_ms),           1, 1},
    {"--require-signed",         ARG_FLAG, OPT(require_signed),         0, 1},
    {"--plain",                  ARG_FLAG, OPT(plain),                  0, 1},
    {"--max-inflight",           ARG_U64,  OPT(max_inflight),           1, 1},
    {"--http",                   ARG_STR,  OPT(http),                   0, 1},
    {"--raft-id",                ARG_U64,  OPT(raft_id),                1, 1},
    {"--raft",                   ARG_STR,  OPT(raft),                   0, 1},
    {"--raft-peers",             ARG_STR,  OPT(raft_peers),             0, 1},
    {"--raft-join",              ARG_FLAG, OPT(raft_join),              0, 1},
    {"--raft-private",           ARG_FLAG, OPT(raft_private),           0, 1},
    {"--raft-election-ms",       ARG_U32,  OPT(raft_election_ms),      50, 1},
    {"--raft-files-port",        ARG_U32,  OPT(raft_files_port),        1, 1},
};
// clang-format on

// Store option row's value v (NULL: none given) into opts. Returns how
// many arguments it took besides its name (0 or 1), or -1 when v is
// missing or below the row's least value.
static int
arg_take(const arg_row_t *row, const char *v, dv_broker_opts_t *opts)
{
    uint8_t *at = (uint8_t *)opts + row->off;
    if (row->type == ARG_FLAG) {
        *(bool *)at = true;
        return 0;
    }
    if (!v) {
        return -1;
    }
    if (row->type == ARG_STR) {
        *(const char **)at = v;
        return 1;
    }
    long long n = atoll(v);
    if (n < row->min) {
        return -1;
    }
    if (row->type == ARG_U32) {
        *(uint32_t *)at = (uint32_t)(n * row->scale);
    } else if (row->type == ARG_U64) {
        *(uint64_t *)at = (uint64_t)n * (uint64_t)row->scale;
    } else {
        *(size_t *)at = (size_t)n * (size_t)row->scale;
    }
    return 1;
}

// Parse argv into opts. Returns -1 to go on, else the exit status (0
// after --help, 2 for a bad argument).
static int
parse_args(int argc, char **argv, dv_broker_opts_t *opts)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        dv_error_t err = {0};
        int used = dv_log_flag(argc, argv, i, &err);
        if (used == 0 && strcmp(a, "--http-token") == 0) {
            static char token[256];
            used =
                i + 1 < argc
                    ? read_token(argv[i + 1], token, sizeof token, &err)
                    : dv_errorf(&err, DV_EINVAL, "--http-token needs a FILE");
            if (used == 0) {
                opts->http_token = token;
                used = 2;
            }
        }
        if (used < 0) {
            fprintf(stderr, "drover-broker: %s\n", err.text);
            usage(stderr);
            return 2;
        }
        if (used > 0) {
            i += used - 1;
            continue;
        }
        int took = -1;
        for (size_t r = 0; r < sizeof args / sizeof args[0]; r++) {
            if (strcmp(a, args[r].name) == 0) {
                took =
                    arg_take(&args[r], i + 1 < argc ? argv[i + 1] : NULL, opts);
                break;
            }
        }
        if (took < 0) {
            fprintf(stderr, "drover-broker: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i += took;
    }
    return -1;
}

// Fault seams for tests (docs/ARCHITECTURE.md, Tests), from
// DROVER_BROKER_FAULT: stop with SIGKILL between a durable result's finish
// and its commit; fail a commit with DV_EIO. Returns 0, or 2 (usage).
static int
parse_fault(dv_broker_opts_t *opts)
{
    const char *fault = getenv("DROVER_BROKER_FAULT");
    if (!fault) {
        return 0;
    }
    const char *kill_seam = "kill-before-result-commit:";
    const char *eio_seam = "eio-commit-submit:";
    bool eio = strncmp(fault, eio_seam, strlen(eio_seam)) == 0;
    long long n = strncmp(fault, kill_seam, strlen(kill_seam)) == 0
                      ? atoll(fault + strlen(kill_seam))
                  : eio ? atoll(fault + strlen(eio_seam))
                        : 0;
    if (n <= 0) {
        fprintf(stderr,
                "drover-broker: DROVER_BROKER_FAULT '%s': the seams are "
                "kill-before-result-commit:N and eio-commit-submit:N "
                "(N > 0)\n",
                fault);
        return 2;
    }
    if (eio) {
        opts->fault_eio_submit = (uint64_t)n;
    } else {
        opts->fault_kill_result = (uint64_t)n;
    }
    return 0;
}

// A group member that stopped leading starts over as a follower: a new
// process image (nothing of the lost term survives in memory), on the same
// endpoints it had bound (a port 0 stays the port it got).
static void
restart(int argc, char **argv, dv_broker_t *broker)
{
    static char client[300], worker[300], http[300];
    snprintf(client, sizeof client, "%s", dv_broker_client_endpoint(broker));
    snprintf(worker, sizeof worker, "%s", dv_broker_worker_endpoint(broker));
    const char *h = dv_broker_http_address(broker);
    snprintf(http, sizeof http, "%s", h ? h : "");
    dv_broker_destroy(&broker);
    char **again = calloc((size_t)argc + 7, sizeof *again);
    int n = 0;
    for (int i = 0; i < argc; i++) {
        again[n++] = argv[i];
    }
    again[n++] = "--client"; // later options win
    again[n++] = client;
    again[n++] = "--worker";
    again[n++] = worker;
    if (*http) {
        again[n++] = "--http";
        again[n++] = http;
    }
    dv_log(DV_LOG_WARN, "broker",
           "no longer the group's leader: starting over as a follower");
    fflush(NULL);
    execv("/proc/self/exe", again);
    dv_log(DV_LOG_ERROR, "broker", "cannot start over (%s): exiting",
           strerror(errno));
    exit(1);
}

int
main(int argc, char **argv)
{
    dv_broker_opts_t opts = {.client_endpoint = "tcp://127.0.0.1:7470",
                             .worker_endpoint = "tcp://127.0.0.1:7471",
                             .heartbeat_ms = 1000,
                             .liveness = 3};
    dv_log_init("drover-broker", DV_LOG_INFO); // before --log-level
    dv_mem_tune_daemon();                      // large messages: dv_limits.h
    int rc = parse_args(argc, argv, &opts);
    if (rc >= 0) {
        return rc;
    }
    if (parse_fault(&opts) != 0) {
        return 2;
    }
    // Past a file size limit, writes should fail (the store then refuses
    // submits with DV_ENOSPC), not kill the broker.
    signal(SIGXFSZ, SIG_IGN);
    // A write to a peer that went away must be an error, not our death:
    // libzmq sends with MSG_NOSIGNAL, but raft's libuv TCP writes do not.
    signal(SIGPIPE, SIG_IGN);
    dv_broker_t *broker = NULL;
    dv_error_t err = {0};
    if (dv_broker_open(&broker, &opts, &err) != 0) {
        dv_log(DV_LOG_ERROR, "broker", "%s", err.text);
        return 1;
    }
    const char *http = dv_broker_http_address(broker);
    if (http) {
        dv_log(DV_LOG_INFO, "broker",
               "http: metrics at http://%s/metrics, the status page at "
               "http://%s/",
               http, http);
    }
    printf("READY %s %s%s%s\n", dv_broker_client_endpoint(broker),
           dv_broker_worker_endpoint(broker), http ? " http://" : "",
           http ? http : "");
    fflush(stdout);
    if (dv_broker_run(broker) == DV_BROKER_RESTART) {
        restart(argc, argv, broker); // does not return
    }
    dv_broker_destroy(&broker);
    dv_log(DV_LOG_INFO, "broker", "stopped");
    return 0;
}
