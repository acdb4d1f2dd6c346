// drover-broker — thin daemon over dv_broker: parse arguments, open, print
// READY, run until SIGINT/SIGTERM. Exit 0 ok, 1 failure, 2 usage.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dv_broker.h"
#include "dv_log.h"

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
               "                     [--memory-window N]\n"
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
               "(docs/SECURITY.md).\n" DV_LOG_FLAGS_USAGE
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

int
main(int argc, char **argv)
{
    static char token[256];
    dv_broker_opts_t opts = {.client_endpoint = "tcp://127.0.0.1:7470",
                             .worker_endpoint = "tcp://127.0.0.1:7471",
                             .heartbeat_ms = 1000,
                             .liveness = 3};
    dv_log_init("drover-broker", DV_LOG_INFO);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        dv_error_t lerr = {0};
        int used = dv_log_flag(argc, argv, i, &lerr);
        if (used < 0) {
            fprintf(stderr, "drover-broker: %s\n", lerr.text);
            usage(stderr);
            return 2;
        }
        if (used > 0) {
            i += used - 1;
        } else if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--client") == 0 && v) {
            opts.client_endpoint = v;
            i++;
        } else if (strcmp(a, "--worker") == 0 && v) {
            opts.worker_endpoint = v;
            i++;
        } else if (strcmp(a, "--max-queued") == 0 && v && atoll(v) > 0) {
            opts.max_queued = (uint64_t)atoll(v);
            i++;
        } else if (strcmp(a, "--max-queued-bytes") == 0 && v && atoll(v) > 0) {
            opts.max_queued_bytes = (uint64_t)atoll(v);
            i++;
        } else if (strcmp(a, "--data") == 0 && v) {
            opts.data_dir = v;
            i++;
        } else if (strcmp(a, "--heartbeat-ms") == 0 && v && atoi(v) > 0) {
            opts.heartbeat_ms = (uint32_t)atoi(v);
            i++;
        } else if (strcmp(a, "--result-ttl-s") == 0 && v && atoi(v) > 0) {
            opts.result_ttl_ms = (uint64_t)atoi(v) * 1000;
            i++;
        } else if (strcmp(a, "--aging-ms") == 0 && v && atoll(v) > 0) {
            opts.aging_ms = (uint64_t)atoll(v);
            i++;
        } else if (strcmp(a, "--quarantine-after") == 0 && v && atoi(v) > 0) {
            opts.quarantine_after = (uint32_t)atoi(v);
            i++;
        } else if (strcmp(a, "--memory-window") == 0 && v && atoll(v) > 1) {
            opts.memory_window = (size_t)atoll(v);
            i++;
        } else if (strcmp(a, "--idempotency-window-s") == 0 && v &&
                   atoll(v) > 0) {
            opts.idempotency_window_ms = (uint64_t)atoll(v) * 1000;
            i++;
        } else if (strcmp(a, "--secret-key") == 0 && v) {
            opts.secret_key = v;
            i++;
        } else if (strcmp(a, "--authorized-keys") == 0 && v) {
            opts.authorized_keys = v;
            i++;
        } else if (strcmp(a, "--max-connections") == 0 && v && atoll(v) > 0) {
            opts.max_connections = (size_t)atoll(v);
            i++;
        } else if (strcmp(a, "--max-worker-connections") == 0 && v &&
                   atoll(v) > 0) {
            opts.max_worker_connections = (size_t)atoll(v);
            i++;
        } else if (strcmp(a, "--max-key-connections") == 0 && v &&
                   atoll(v) > 0) {
            opts.max_key_connections = (size_t)atoll(v);
            i++;
        } else if (strcmp(a, "--handshake-ms") == 0 && v && atoi(v) > 0) {
            opts.handshake_ms = (uint32_t)atoi(v);
            i++;
        } else if (strcmp(a, "--http") == 0 && v) {
            opts.http = v;
            i++;
        } else if (strcmp(a, "--http-token") == 0 && v) {
            dv_error_t terr = {0};
            if (read_token(v, token, sizeof token, &terr) != 0) {
                fprintf(stderr, "drover-broker: --http-token: %s\n", terr.text);
                return 2;
            }
            opts.http_token = token;
            i++;
        } else if (strcmp(a, "--require-signed") == 0) {
            opts.require_signed = true;
        } else if (strcmp(a, "--plain") == 0) {
            opts.plain = true;
        } else if (strcmp(a, "--max-inflight") == 0 && v && atoll(v) > 0) {
            opts.max_inflight = (uint64_t)atoll(v);
            i++;

        } else {
            fprintf(stderr, "drover-broker: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    // Fault seams for tests (docs/ARCHITECTURE.md, Tests): stop with SIGKILL
    // between a durable result's finish and its commit; fail a commit with
    // DV_EIO.
    const char *fault = getenv("DROVER_BROKER_FAULT");
    if (fault) {
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
            opts.fault_eio_submit = (uint64_t)n;
        } else {
            opts.fault_kill_result = (uint64_t)n;
        }
    }
    // Past a file size limit, writes should fail (the store then refuses
    // submits with DV_ENOSPC), not kill the broker.
    signal(SIGXFSZ, SIG_IGN);
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
    dv_broker_run(broker);
    dv_broker_destroy(&broker);
    dv_log(DV_LOG_INFO, "broker", "stopped");
    return 0;
}
