// dv_cli_remote — the `drover` commands that talk to a broker through
// libdrover: what they share, and the table that finds them by name (the
// commands live in dv_cli_<group>.c; see dv_cli_remote.h).
//
// Every command takes --broker ENDPOINT (default $DROVER_BROKER, else
// DROVER_DEFAULT_ENDPOINT) and --json (one JSON document on stdout instead
// of text). Errors go to stderr as "drover: DV_ENAME: reason", exit 1.

#include "dv_cli_remote.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dv_file.h"

#define CONNECT_MS 5000

int
dv_cli_fail_d(const drover_error_t *err)
{
    fprintf(stderr, "drover: %s: %s\n", drover_err_name(err->code), err->text);
    return DV_CLI_FAIL;
}

int
dv_cli_fail_dv(const dv_error_t *err)
{
    fprintf(stderr, "drover: %s: %s\n", dv_err_name(err->code), err->text);
    return DV_CLI_FAIL;
}

double
dv_cli_seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// Parse argv with opts (which must have "broker", "json", "help"); on
// --help print usage_text. Returns -1 to go on, else an exit code.
int
dv_cli_parse_usage(int argc,
                   char **argv,
                   dv_cli_opt_t *opts,
                   const char **pos,
                   size_t max_pos,
                   size_t *n_pos,
                   const char *usage_text)
{
    if (dv_cli_parse(argc, argv, opts, pos, max_pos, n_pos)) {
        fputs(usage_text, stderr);
        return DV_CLI_USAGE;
    }
    if (dv_cli_get(opts, "help")) {
        fputs(usage_text, stdout);
        return DV_CLI_OK;
    }
    return -1;
}

int
dv_cli_group_start(int argc, char **argv, const char *usage_text)
{
    if (argc < 1) {
        fputs(usage_text, stderr);
        return DV_CLI_USAGE;
    }
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
        strcmp(argv[0], "help") == 0) {
        fputs(usage_text, stdout);
        return DV_CLI_OK;
    }
    return -1;
}

int
dv_cli_read_input(
    const char *path, size_t max, uint8_t **buf, size_t *len, dv_error_t *err)
{
    return strcmp(path, "-") == 0
               ? dv_file_read_stream(stdin, "stdin", max, buf, len, err)
               : dv_file_read(path, max, buf, len, err);
}

bool
dv_cli_print_submitted(const dv_cli_opt_t *opts, uint64_t job)
{
    if (dv_cli_get(opts, "no-wait")) {
        printf(dv_cli_get(opts, "json") ? "{\"job\":%" PRIu64 "}\n"
                                        : "%" PRIu64 "\n",
               job);
        return false;
    }
    if (!dv_cli_get(opts, "json")) {
        fprintf(stderr,
                "drover: job %" PRIu64 " submitted (Ctrl-C stops waiting, "
                "not the job)\n",
                job);
    }
    return true;
}

int
dv_cli_connect(const dv_cli_opt_t *opts, drover_t **d)
{
    drover_error_t err = {0};
    if (drover_connect(d, dv_cli_get(opts, "broker"), CONNECT_MS, &err) != 0) {
        return dv_cli_fail_d(&err);
    }
    return DV_CLI_OK;
}

int
dv_cli_open_plain(
    int argc, char **argv, const char *usage, bool *json, drover_t **d)
{
    dv_cli_opt_t opts[] = {
        {"broker", true, NULL},
        {"json", false, NULL},
        {"help", false, NULL},
        {NULL, false, NULL},
    };
    size_t n_pos;
    int rc = dv_cli_parse_usage(argc, argv, opts, NULL, 0, &n_pos, usage);
    if (rc >= 0) {
        return rc;
    }
    if ((rc = dv_cli_connect(opts, d)) != 0) {
        return rc;
    }
    *json = dv_cli_get(opts, "json") != NULL;
    return -1;
}

// "NAME" or "NAME@VERSION" into name and version (0: latest).
int
dv_cli_split_ref(const char *ref, char *name, size_t size, uint32_t *version)
{
    const char *at = strchr(ref, '@');
    size_t n = at ? (size_t)(at - ref) : strlen(ref);
    *version = 0;
    if (n == 0 || n >= size) {
        fprintf(stderr, "drover: bad model reference '%s'\n", ref);
        return DV_CLI_USAGE;
    }
    memcpy(name, ref, n);
    name[n] = '\0';
    if (at &&
        ((at[1] >= 'a' && at[1] <= 'z') || (at[1] >= 'A' && at[1] <= 'Z'))) {
        // NAME@ALIAS: the broker resolves it
        if (strlen(ref) >= size) {
            fprintf(stderr, "drover: bad model reference '%s'\n", ref);
            return DV_CLI_USAGE;
        }
        snprintf(name, size, "%s", ref);
        return DV_CLI_OK;
    }
    if (at) {
        char *end = NULL;
        unsigned long v = strtoul(at + 1, &end, 10);
        if (!at[1] || *end || v == 0 || v > UINT32_MAX) {
            fprintf(stderr, "drover: bad version in '%s'\n", ref);
            return DV_CLI_USAGE;
        }
        *version = (uint32_t)v;
    }
    return DV_CLI_OK;
}

void
dv_cli_print_progress(dv_cli_progress_t *o, const drover_progress_t *p)
{
    uint32_t epoch = p->epoch, epochs = p->epochs;
    if (o->json) {
        printf("{\"job\":%" PRIu64 ",\"epoch\":%" PRIu32 ",\"epochs\":%" PRIu32
               ",\"loss\":%.6g,\"ms\":%" PRIu64 ",\"eta_ms\":%" PRIu64,
               p->job, epoch, epochs, p->loss, p->ms, p->eta_ms);
        if (!isnan(p->eval)) {
            printf(",\"eval\":%.6g", p->eval);
        }
        printf("}\n");
        fflush(stdout);
    } else if (o->tty) {
        int width = 24,
            done = epochs ? (int)((uint64_t)width * epoch / epochs) : width;
        char bar[32];
        for (int i = 0; i < width; i++) {
            bar[i] = i < done ? '#' : '.';
        }
        bar[width] = '\0';
        char ev[32] = "";
        if (!isnan(p->eval)) {
            snprintf(ev, sizeof ev, "  eval %.4f", p->eval);
        }
        fprintf(stderr,
                "\r  [%s] epoch %" PRIu32 "/%" PRIu32
                "  loss %.6f%s  %.1fs  ETA %.0fs   ",
                bar, epoch, epochs, p->loss, ev, p->ms / 1000.0,
                p->eta_ms / 1000.0);
        fflush(stderr);
        o->drawn = true;
    }
}

// The commands that talk to a broker, by name (main.c tries the others
// first).
static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"infer", dv_cli_infer},       {"submit", dv_cli_submit},
    {"models", dv_cli_models},     {"jobs", dv_cli_jobs},
    {"workers", dv_cli_workers},   {"audit", dv_cli_audit},
    {"admin", dv_cli_admin},       {"status", dv_cli_status},
    {"dead", dv_cli_dead},         {"results", dv_cli_results},
    {"train", dv_cli_train},       {"evaluate", dv_cli_evaluate},
    {"datasets", dv_cli_datasets}, {"top", dv_cli_top},
};

int
dv_cli_remote(const char *cmd, int argc, char **argv)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) == 0) {
            return commands[i].run(argc, argv);
        }
    }
    return -1;
}
