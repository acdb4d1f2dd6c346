// drover-worker — thin daemon over dv_worker. Exit 0 ok, 1 failure, 2 usage.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_log.h"
#include "dv_worker.h"

static void
usage(FILE *f)
{
    fprintf(f, "usage: drover-worker [--broker ENDPOINT] [--name NAME]\n"
               "                     [--concurrency N] [--heartbeat-ms N]\n"
               "default: --broker tcp://127.0.0.1:7471 --concurrency 1\n"
               "Prints 'READY <broker endpoint>' once the broker has "
               "welcomed it.\n");
}

int
main(int argc, char **argv)
{
    dv_worker_opts_t opts = {"tcp://127.0.0.1:7471", NULL, 1, 1000, 3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
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
        } else if (strcmp(a, "--heartbeat-ms") == 0 && v && atoi(v) > 0) {
            opts.heartbeat_ms = (uint32_t)atoi(v);
            i++;
        } else {
            fprintf(stderr, "drover-worker: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    dv_log_init("drover-worker", DV_LOG_INFO);
    dv_worker_t *worker = NULL;
    dv_error_t err = {0};
    if (dv_worker_open(&worker, &opts, &err) != 0) {
        dv_log(DV_LOG_ERROR, "worker", "%s", err.text);
        return 1;
    }
    dv_worker_run(worker);
    dv_worker_destroy(&worker);
    return 0;
}
