// dv_cli_data — `drover datasets`: the broker's data sets (push, list,
// get, share, rm). See dv_cli_remote.h.

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_cli_remote.h"
#include "dv_limits.h"
#include "dv_mem.h"

// ------------------------------------------------------------ data sets

#define DATASETS_USAGE                                                         \
    "usage: drover datasets push FILE.csv [--name NAME]   store a version "    \
    "(validated)\n"                                                            \
    "       drover datasets list | show NAME[@VERSION]\n"                      \
    "       drover datasets rm NAME[@VERSION]            (no version: all)\n"  \
    "       drover datasets share NAME --with KEY[,KEY...]  who else may "     \
    "read it\n"                                                                \
    "                                     ('*': every key; '': owner only)\n"  \
    "all take [--broker E] [--json]; `drover train --dataset NAME[@V]` "       \
    "trains on one.\n"

static void
print_dataset(const drover_dataset_t *d, bool json)
{
    if (json) {
        printf("{\"name\":");
        dv_cli_json_str(stdout, d->name);
        printf(",\"version\":%" PRIu32 ",\"sha256\":\"%s\",\"bytes\":%" PRIu64
               ",\"rows\":%" PRIu64 ",\"columns\":%" PRIu32 ",\"target\":",
               d->version, d->sha256, d->bytes, d->rows, d->columns);
        dv_cli_json_str(stdout, d->target);
        printf(",\"created_us\":%" PRIu64 "}", d->created_us);
    } else {
        char ref[200];
        snprintf(ref, sizeof ref, "%s@%" PRIu32, d->name, d->version);
        printf("%-24s %8" PRIu64 " %8" PRIu32 " %10" PRIu64 "  %-16s %.12s\n",
               ref, d->rows, d->columns, d->bytes, d->target, d->sha256);
    }
}

// `drover datasets share NAME --with LIST`: LIST split at commas ("": no
// one besides the owner).
static int
share_dataset(drover_t *d,
              const char *name,
              const char *with,
              bool json,
              drover_error_t *err)
{
    char *copy = dv_strdup(with);
    const char *readers[DV_MAX_READERS + 1]; // one more: the broker refuses
    size_t n = 0;
    char *save = NULL;
    for (char *id = strtok_r(copy, ",", &save); id && n <= DV_MAX_READERS;
         id = strtok_r(NULL, ",", &save)) {
        readers[n++] = id;
    }
    int rc = drover_dataset_share(d, name, readers, n, err);
    if (rc == 0 && json) {
        printf("{\"name\":");
        dv_cli_json_str(stdout, name);
        printf(",\"readers\":[");
        for (size_t i = 0; i < n; i++) {
            printf(i ? "," : "");
            dv_cli_json_str(stdout, readers[i]);
        }
        printf("]}\n");
    } else if (rc == 0) {
        printf("%s: read by its owner and admins%s%s\n", name,
               n ? ", and " : " only", n ? with : "");
    }
    free(copy);
    return rc;
}

// What a `drover datasets SUB` acts on, resolved before it connects.
typedef struct {
    const char *arg;  // its positional argument (FILE, REF or NAME), or NULL
    char name[256];   // the data set's name ("" for list)
    uint32_t version; // from NAME@VERSION (0: the latest)
    const char *with; // --with (share)
    bool json;        // --json
} datasets_args_t;

typedef int (*datasets_fn)(drover_t *d,
                           const datasets_args_t *a,
                           drover_error_t *err);

// `drover datasets push FILE`.
static int
datasets_push(drover_t *d, const datasets_args_t *a, drover_error_t *err)
{
    drover_dataset_t ds;
    int rc = drover_dataset_push(d, a->arg, a->name, &ds, err);
    if (rc == 0 && a->json) {
        print_dataset(&ds, true);
        printf("\n");
    } else if (rc == 0) {
        printf("stored %s@%" PRIu32 " (%" PRIu64 " rows, %" PRIu32
               " columns, target %s, %" PRIu64 " bytes, sha256 %.16s)\n",
               ds.name, ds.version, ds.rows, ds.columns, ds.target, ds.bytes,
               ds.sha256);
    }
    return rc;
}

// `drover datasets show REF`.
static int
datasets_show(drover_t *d, const datasets_args_t *a, drover_error_t *err)
{
    drover_dataset_t ds;
    int rc = drover_dataset_get(d, a->name, a->version, &ds, err);
    if (rc == 0 && a->json) {
        print_dataset(&ds, true);
        printf("\n");
    } else if (rc == 0) {
        printf("%-24s %8s %8s %10s  %-16s %s\n", "DATASET", "ROWS", "COLUMNS",
               "BYTES", "TARGET", "SHA256");
        print_dataset(&ds, false);
        printf("sha256 %s\n", ds.sha256);
    }
    return rc;
}

// `drover datasets list`.
static int
datasets_list(drover_t *d, const datasets_args_t *a, drover_error_t *err)
{
    drover_dataset_t *all = NULL;
    size_t n = 0;
    int rc = drover_dataset_list(d, &all, &n, err);
    if (rc == 0 && a->json) {
        printf("[");
        for (size_t i = 0; i < n; i++) {
            printf(i ? "," : "");
            print_dataset(&all[i], true);
        }
        printf("]\n");
    } else if (rc == 0) {
        printf("%-24s %8s %8s %10s  %-16s %s\n", "DATASET", "ROWS", "COLUMNS",
               "BYTES", "TARGET", "SHA256");
        for (size_t i = 0; i < n; i++) {
            print_dataset(&all[i], false);
        }
    }
    free(all);
    return rc;
}

// `drover datasets share NAME --with TENANT`.
static int
datasets_share(drover_t *d, const datasets_args_t *a, drover_error_t *err)
{
    return share_dataset(d, a->name, a->with, a->json, err);
}

// `drover datasets rm REF`.
static int
datasets_rm(drover_t *d, const datasets_args_t *a, drover_error_t *err)
{
    unsigned removed = 0;
    int rc = drover_dataset_rm(d, a->name, a->version, &removed, err);
    if (rc == 0) {
        printf(a->json ? "{\"removed\":%u}\n" : "removed %u version(s)\n",
               removed);
    }
    return rc;
}

// How a subcommand's positional argument names the data set.
typedef enum {
    DATASETS_ARG_NONE, // no argument (list)
    DATASETS_ARG_FILE, // a CSV file: --name, else its base name less .csv
    DATASETS_ARG_REF,  // NAME[@VERSION]
    DATASETS_ARG_NAME, // NAME as it is
} datasets_arg_t;

static const struct {
    const char *name;
    datasets_fn fn;
    datasets_arg_t arg;
    bool needs_with; // --with is required
} s_datasets_subs[] = {
    {"list", datasets_list, DATASETS_ARG_NONE, false},
    {"push", datasets_push, DATASETS_ARG_FILE, false},
    {"show", datasets_show, DATASETS_ARG_REF, false},
    {"rm", datasets_rm, DATASETS_ARG_REF, false},
    {"share", datasets_share, DATASETS_ARG_NAME, true},
};

// The data set's name from a FILE argument: --name, else FILE's base name
// without .csv.
static void
name_from_file(datasets_args_t *a, const char *nm)
{
    const char *base = strrchr(a->arg, '/');
    snprintf(a->name, sizeof a->name, "%s", nm ? nm : base ? base + 1 : a->arg);
    char *dot = nm ? NULL : strstr(a->name, ".csv");
    if (dot && dot[4] == '\0') {
        *dot = '\0';
    }
}

int
dv_cli_datasets(int argc, char **argv)
{
    int start = dv_cli_group_start(argc, argv, DATASETS_USAGE);
    if (start >= 0) {
        return start;
    }
    const char *sub = argv[0];
    dv_cli_opt_t opts[] = {
        {"name", true, NULL},  {"broker", true, NULL}, {"json", false, NULL},
        {"help", false, NULL}, {"with", true, NULL},   {NULL, false, NULL},
    };
    const char *pos[1];
    size_t n_pos = 0;
    int rc = dv_cli_parse_usage(argc - 1, argv + 1, opts, pos, 1, &n_pos,
                                DATASETS_USAGE);
    if (rc >= 0) {
        return rc;
    }
    size_t row = 0, n_rows = sizeof s_datasets_subs / sizeof *s_datasets_subs;
    while (row < n_rows && strcmp(sub, s_datasets_subs[row].name) != 0) {
        row++;
    }
    datasets_args_t a = {.with = dv_cli_get(opts, "with")};
    if (row == n_rows ||
        n_pos != (s_datasets_subs[row].arg == DATASETS_ARG_NONE ? 0 : 1) ||
        (s_datasets_subs[row].needs_with && !a.with)) {
        fputs(DATASETS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    a.json = dv_cli_get(opts, "json") != NULL;
    a.arg = n_pos ? pos[0] : NULL;
    switch (s_datasets_subs[row].arg) {
    case DATASETS_ARG_FILE:
        name_from_file(&a, dv_cli_get(opts, "name"));
        break;
    case DATASETS_ARG_REF:
        rc = dv_cli_split_ref(a.arg, a.name, sizeof a.name, &a.version);
        if (rc) {
            return rc;
        }
        break;
    case DATASETS_ARG_NAME:
        snprintf(a.name, sizeof a.name, "%s", a.arg);
        break;
    case DATASETS_ARG_NONE:
        break;
    }
    drover_t *d = NULL;
    if ((rc = dv_cli_connect(opts, &d)) != 0) {
        return rc;
    }
    drover_error_t err = {0};
    rc = s_datasets_subs[row].fn(d, &a, &err);
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}
