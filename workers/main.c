// drover-worker — thin daemon over dv_worker. Exit 0 ok, 1 failure, 2 usage.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_log.h"
#include "dv_mem.h"
#include "dv_worker.h"

static void
usage(FILE *f)
{
    fprintf(f, "usage: drover-worker [--broker ENDPOINT] [--name NAME]\n"
               "                     [--concurrency N] [--heartbeat-ms N]\n"
               "                     [--prefetch N] [--model-memory MB]\n"
               "                     [--data-memory MB]\n"
               "                     [--key FILE.key --broker-key FILE.pub]\n"
               "                     [--queues Q1,Q2,...] [--train-slots N]\n"
               "                     [--blas-threads N]\n"
               "                     [--log-level L] [--log-format text|json]\n"
               "default: --broker tcp://127.0.0.1:7471 --concurrency 1 "
               "--prefetch 4 --model-memory 1024 --data-memory 1024\n"
               "--model-memory / --data-memory: cache budgets for models and "
               "for the stored\ndata sets training jobs fetch (least "
               "recently used idle ones go first; fetches in\nflight count "
               "too).\n"
               "--concurrency: jobs computed at once (threads); --prefetch: "
               "jobs held beyond\nthose so the next is ready when one ends "
               "(0 for long jobs: best balance).\n"
               "--queues: serve only these queues (default: every queue).\n"
               "--key / --broker-key (or DROVER_KEY / DROVER_BROKER_KEY): "
               "CURVE, for a broker\nrunning with --secret-key; the key needs "
               "the worker role (docs/SECURITY.md).\n"
               "--train-slots N: training jobs at once (default: concurrency "
               "- 1, at least 1),\nso inference keeps a thread while models "
               "train.\n"
               "--blas-threads N: OpenBLAS threads per job (1..1024). "
               "Default: online cores /\nconcurrency, at least 1, lowered "
               "by OPENBLAS_NUM_THREADS (DROVER_THREADS is for\n`drover "
               "local`). Workers sharing a host: give each cores / (all "
               "workers' concurrency,\nsummed), as `drover up` does, so "
               "jobs x BLAS threads never exceed the cores.\nThe worker "
               "logs what it applied ('compute: ...').\n" DV_LOG_FLAGS_USAGE
               "SIGINT/SIGTERM drain (finish the jobs held, take no new "
               "ones); a second one stops at once.\n"
               "Prints 'READY <broker endpoint>' once the broker has "
               "welcomed it.\n");
}

int
main(int argc, char **argv)
{
    dv_worker_opts_t opts = {.broker_endpoint = "tcp://127.0.0.1:7471",
                             .capacity = 1,
                             .prefetch = 4,
                             .heartbeat_ms = 1000,
                             .liveness = 3};
    dv_log_init("drover-worker", DV_LOG_INFO);
    dv_mem_tune_daemon(); // large messages: dv_limits.h
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        dv_error_t lerr = {0};
        int used = dv_log_flag(argc, argv, i, &lerr);
        if (used < 0) {
            fprintf(stderr, "drover-worker: %s\n", lerr.text);
            usage(stderr);
            return 2;
        }
        if (used > 0) {
            i += used - 1;
        } else if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--broker") == 0 && v) {
            opts.broker_endpoint = v;
            i++;
        } else if (strcmp(a, "--name") == 0 && v) {
            opts.name = v;
            i++;
        } else if (strcmp(a, "--concurrency") == 0 && v && atoi(v) > 0) {
            opts.capacity = (uint32_t)atoi(v);
            i++;
        } else if (strcmp(a, "--prefetch") == 0 && v && atoi(v) >= 0) {
            opts.prefetch = (uint32_t)atoi(v);
            i++;
        } else if (strcmp(a, "--model-memory") == 0 && v && atoi(v) > 0) {
            opts.model_memory = (size_t)atoi(v) << 20;
            i++;
        } else if (strcmp(a, "--key") == 0 && v) {
            opts.key = v;
            i++;
        } else if (strcmp(a, "--broker-key") == 0 && v) {
            opts.broker_key = v;
            i++;
        } else if (strcmp(a, "--data-memory") == 0 && v && atoi(v) > 0) {
            opts.data_memory = (size_t)atoi(v) << 20;
            i++;
        } else if (strcmp(a, "--train-slots") == 0 && v && atoi(v) > 0) {
            opts.train_slots = (uint32_t)atoi(v);
            i++;
        } else if (strcmp(a, "--blas-threads") == 0 && v && atoi(v) > 0 &&
                   atoi(v) <= 1024) {
            opts.blas_threads = (uint32_t)atoi(v);
            i++;
        } else if (strcmp(a, "--queues") == 0 && v) {
            opts.queues = v;
            i++;
        } else if (strcmp(a, "--heartbeat-ms") == 0 && v && atoi(v) > 0) {

            opts.heartbeat_ms = (uint32_t)atoi(v);
            i++;
        } else {
            fprintf(stderr, "drover-worker: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    dv_worker_t *worker = NULL;
    dv_error_t err = {0};
    if (dv_worker_open(&worker, &opts, &err) != 0) {
        dv_log(DV_LOG_ERROR, "worker", "%s", err.text);
        return 1;
    }
    // Refused (DV_EPERM): exit 1, so a supervisor shows the failure
    // instead of a worker that looks alive but never works.
    int rc = dv_worker_run(worker);
    dv_worker_destroy(&worker);
    return rc ? 1 : 0;
}
