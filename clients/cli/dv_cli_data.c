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
    bool list = strcmp(sub, "list") == 0, push = strcmp(sub, "push") == 0;
    bool rm = strcmp(sub, "rm") == 0, show = strcmp(sub, "show") == 0;
    bool share = strcmp(sub, "share") == 0;
    const char *with = dv_cli_get(opts, "with");
    if (!(list || push || rm || show || share) ||
        (list ? n_pos != 0 : n_pos != 1) || (share && !with)) {
        fputs(DATASETS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    bool json = dv_cli_get(opts, "json") != NULL;
    char name[256] = "";
    uint32_t version = 0;
    if (push) {
        const char *nm = dv_cli_get(opts, "name");
        const char *base = strrchr(pos[0], '/');
        snprintf(name, sizeof name, "%s", nm ? nm : base ? base + 1 : pos[0]);
        char *dot = nm ? NULL : strstr(name, ".csv");
        if (dot && dot[4] == '\0') {
            *dot = '\0';
        }
    } else if ((rm || show) &&
               (rc = dv_cli_split_ref(pos[0], name, sizeof name, &version))) {
        return rc;
    } else if (share) {
        snprintf(name, sizeof name, "%s", pos[0]);
    }
    drover_t *d = NULL;
    if ((rc = dv_cli_connect(opts, &d)) != 0) {
        return rc;
    }
    drover_error_t err = {0};
    if (push) {
        drover_dataset_t ds;
        rc = drover_dataset_push(d, pos[0], name, &ds, &err);
        if (rc == 0 && json) {
            print_dataset(&ds, true);
            printf("\n");
        } else if (rc == 0) {
            printf("stored %s@%" PRIu32 " (%" PRIu64 " rows, %" PRIu32
                   " columns, target %s, %" PRIu64 " bytes, sha256 %.16s)\n",
                   ds.name, ds.version, ds.rows, ds.columns, ds.target,
                   ds.bytes, ds.sha256);
        }
    } else if (show) {
        drover_dataset_t ds;
        rc = drover_dataset_get(d, name, version, &ds, &err);
        if (rc == 0 && json) {
            print_dataset(&ds, true);
            printf("\n");
        } else if (rc == 0) {
            printf("%-24s %8s %8s %10s  %-16s %s\n", "DATASET", "ROWS",
                   "COLUMNS", "BYTES", "TARGET", "SHA256");
            print_dataset(&ds, false);
            printf("sha256 %s\n", ds.sha256);
        }
    } else if (list) {
        drover_dataset_t *all = NULL;
        size_t n = 0;
        rc = drover_dataset_list(d, &all, &n, &err);
        if (rc == 0 && json) {
            printf("[");
            for (size_t i = 0; i < n; i++) {
                printf(i ? "," : "");
                print_dataset(&all[i], true);
            }
            printf("]\n");
        } else if (rc == 0) {
            printf("%-24s %8s %8s %10s  %-16s %s\n", "DATASET", "ROWS",
                   "COLUMNS", "BYTES", "TARGET", "SHA256");
            for (size_t i = 0; i < n; i++) {
                print_dataset(&all[i], false);
            }
        }
        free(all);
    } else if (share) {
        rc = share_dataset(d, name, with, json, &err);
    } else {
        unsigned removed = 0;
        rc = drover_dataset_rm(d, name, version, &removed, &err);
        if (rc == 0) {
            printf(json ? "{\"removed\":%u}\n" : "removed %u version(s)\n",
                   removed);
        }
    }
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}
