// dv_cli_models — `drover models` (the broker's model catalog: push, list,
// show with schema and lineage, alias, config, gc, rm) and `drover train`.
// See dv_cli_remote.h.

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dv_cli_remote.h"
#include "dv_file.h"
#include "dv_limits.h"
#include "dv_proto.h"

// ---------------------------------------------------------------- models

#define MODELS_USAGE                                                           \
    "usage: drover models push FILE.drvm [--name NAME] [--sign] "              \
    "[--schema-change]\n"                                                      \
    "       drover models list\n"                                              \
    "       drover models show NAME[@VERSION]\n"                               \
    "       drover models rm NAME[@VERSION]     (no version: every version)\n" \
    "       drover models alias NAME@VERSION ALIAS [--schema-change]\n"        \
    "                  point ALIAS at it (rollback: again)\n"                  \
    "       drover models unalias NAME ALIAS\n"                                \
    "       drover models gc NAME --keep N   remove all but the newest N "     \
    "(aliased ones stay)\n"                                                    \
    "       drover models config NAME [--max-batch-rows N] [--max-delay-us "   \
    "N]\n"                                                                     \
    "                  dynamic batching: rows one forward pass may stack "     \
    "(default 256),\n"                                                         \
    "                  how long a batch may wait for more (default 0: "        \
    "never)\n"                                                                 \
    "A push or an alias move to a version that takes other inputs or gives "   \
    "other outputs\nthan NAME's latest (the alias's version) is refused "      \
    "(DV_ESHAPE: its clients\nwould fail) unless --schema-change.\n"           \
    "NAME@ALIAS works wherever NAME@VERSION does (infer, show). --sign signs " \
    "the file\n"                                                               \
    "with --key (an admin key), as a broker run with --require-signed "        \
    "wants.\n"                                                                 \
    "all take [--broker E] [--json]\n"

static void
print_model_json(const drover_model_t *m)
{
    printf("{\"name\":");
    dv_cli_json_str(stdout, m->name);
    printf(",\"version\":%" PRIu32 ",\"sha256\":\"%s\",\"bytes\":%" PRIu64
           ",\"task\":\"%s\",\"algo\":\"%s\",\"features\":%" PRIu32
           ",\"outputs\":%" PRIu32 ",\"created_us\":%" PRIu64
           ",\"max_batch_rows\":%" PRIu32 ",\"max_delay_us\":%" PRIu32
           ",\"aliases\":[",
           m->version, m->sha256, m->bytes, m->task, m->algo, m->features,
           m->outputs, m->created_us, m->max_batch_rows, m->max_delay_us);
    for (const char *p = m->aliases; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        printf("%s\"%.*s\"", p == m->aliases ? "" : ",", (int)n, p);
        p = comma ? comma + 1 : p + n;
    }
    printf("]}");
}

static void
print_model_text(const drover_model_t *m)
{
    char when[32] = "";
    time_t t = (time_t)(m->created_us / 1000000);
    struct tm tm;
    if (gmtime_r(&t, &tm)) {
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%SZ", &tm);
    }
    char ref[200];
    snprintf(ref, sizeof ref, "%s@%" PRIu32, m->name, m->version);
    printf("%-24s %-14s %-8s %8" PRIu32 " %8" PRIu32 " %10" PRIu64
           "  %.12s  %s  %s\n",
           ref, m->task, m->algo, m->features, m->outputs, m->bytes, m->sha256,
           when, m->aliases);
}

// A version's lineage (drover models show), when it has one.
static void
print_lineage_json(const drover_lineage_t *g)
{
    if (!g->has) {
        return;
    }
    if (!g->job) {
        printf(",\"lineage\":{\"pushed_by\":");
        dv_cli_json_str(stdout, g->pushed_by);
        printf(",\"signed_by\":");
        dv_cli_json_str(stdout, g->signed_by);
        printf("}");
        return;
    }
    printf(",\"lineage\":{\"job\":%" PRIu64 ",\"worker\":", g->job);
    dv_cli_json_str(stdout, g->worker);
    printf(",\"attempts\":%" PRIu32 ",\"resumed_from\":%" PRIu32
           ",\"submitted_unix_ms\":%" PRIu64 ",\"finished_unix_ms\":%" PRIu64
           ",\"train_ms\":%" PRIu64 ",\"epochs_run\":%" PRIu32 ",\"dataset\":",
           g->attempts, g->resumed_from, g->submitted_unix_ms,
           g->finished_unix_ms, g->train_ms, g->epochs_run);
    dv_cli_json_str(stdout, g->dataset);
    printf(",\"data_sha256\":\"%s\",\"data_rows\":%" PRIu64
           ",\"algo\":\"%s\",\"hyper\":",
           g->data_sha256, g->data_rows, g->algo);
    dv_cli_json_str(stdout, g->hyper);
    printf(",\"seed\":%" PRIu64 ",\"eval_dataset\":", g->seed);
    dv_cli_json_str(stdout, g->eval_dataset);
    printf(",\"eval\":{");
    for (size_t i = 0; i < g->n_eval; i++) {
        printf("%s\"%s\":%.6g", i ? "," : "", g->eval_names[i],
               g->eval_values[i]);
    }
    printf("}}");
}

static void
print_lineage_text(const drover_lineage_t *g)
{
    if (!g->has) {
        printf("lineage  none (pushed as a file)\n");
        return;
    }
    if (!g->job) {
        printf("lineage  pushed as a file by %s%s%s\n",
               g->pushed_by[0] ? g->pushed_by : "-",
               g->signed_by[0] ? ", signed by " : ", unsigned", g->signed_by);
        return;
    }
    printf("lineage  job %" PRIu64 " on %s, %" PRIu32 " attempt(s)", g->job,
           g->worker, g->attempts);
    if (g->resumed_from) {
        printf(", resumed from the checkpoint after epoch %" PRIu32,
               g->resumed_from);
    }
    printf("\n         data %s (%" PRIu64 " rows, sha256 %.16s)\n",
           g->dataset[0] ? g->dataset : "sent with the job", g->data_rows,
           g->data_sha256);
    printf("         %s %s\n", g->algo, g->hyper);
    printf("         %" PRIu32 " epochs in %.1f s\n", g->epochs_run,
           g->train_ms / 1000.0);
    if (g->eval_dataset[0]) {
        printf("         eval on %s:", g->eval_dataset);
        for (size_t i = 0; i < g->n_eval; i++) {
            printf(" %s %.4g", g->eval_names[i], g->eval_values[i]);
        }
        printf("\n");
    }
}

static void
print_model_header(void)
{
    printf("%-24s %-14s %-8s %8s %8s %10s  %-12s  %-20s  %s\n", "MODEL", "TASK",
           "ALGO", "FEATURES", "OUTPUTS", "BYTES", "SHA256", "CREATED",
           "ALIASES");
}

// One `drover models SUB`: checks its own arguments, connects, returns the
// exit code.
typedef int (*models_fn)(const dv_cli_opt_t *opts,
                         const char *const *pos,
                         size_t n_pos,
                         bool json);

// Connect for a subcommand that names one model (NAME[@VERSION|@ALIAS] in
// pos[0]). Returns -1 with *d set, or the exit code.
static int
connect_ref(const dv_cli_opt_t *opts,
            const char *const *pos,
            size_t n_pos,
            char *name,
            size_t size,
            uint32_t *version,
            drover_t **d)
{
    if (n_pos != 1) {
        fputs(MODELS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    int rc = dv_cli_split_ref(pos[0], name, size, version);
    if (rc != 0) {
        return rc;
    }
    rc = dv_cli_connect(opts, d);
    return rc != 0 ? rc : -1;
}

// `drover models gc NAME --keep N`.
static int
models_gc(const dv_cli_opt_t *opts,
          const char *const *pos,
          size_t n_pos,
          bool json)
{
    long keep = 0;
    if (n_pos != 1 || !dv_cli_get(opts, "keep") ||
        !dv_cli_get_long(opts, "keep", 1, UINT32_MAX, &keep)) {
        fputs(MODELS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    drover_t *d = NULL;
    int rc = dv_cli_connect(opts, &d);
    if (rc != 0) {
        return rc;
    }
    drover_error_t err = {0};
    uint32_t removed[4096];
    size_t n = 0;
    rc = drover_model_gc(d, pos[0], (uint32_t)keep, removed, 4096, &n, &err);
    if (rc == 0) {
        if (json) {
            printf("{\"removed\":[");
        } else {
            printf("removed %zu version(s):", n);
        }
        for (size_t i = 0; i < n; i++) {
            printf(json ? "%s%" PRIu32 : "%s %" PRIu32, json && i ? "," : "",
                   removed[i]);
        }
        printf(json ? "]}\n" : "\n");
    }
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}

// `drover models config NAME [--max-batch-rows N] [--max-delay-us N]`.
static int
models_config(const dv_cli_opt_t *opts,
              const char *const *pos,
              size_t n_pos,
              bool json)
{
    const char *vals[2] = {dv_cli_get(opts, "max-batch-rows"),
                           dv_cli_get(opts, "max-delay-us")};
    int64_t set[2] = {-1, -1};
    for (size_t i = 0; i < 2; i++) {
        char *end = NULL;
        if (vals[i]) {
            long long v = strtoll(vals[i], &end, 10);
            if (!*vals[i] || *end || v < 0) {
                fprintf(stderr,
                        "drover: --%s wants a whole number >= 0, not "
                        "'%s'\n",
                        i ? "max-delay-us" : "max-batch-rows", vals[i]);
                return DV_CLI_USAGE;
            }
            set[i] = v;
        }
    }
    if (n_pos != 1) {
        fputs(MODELS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    drover_t *d = NULL;
    int rc = dv_cli_connect(opts, &d);
    if (rc != 0) {
        return rc;
    }
    drover_error_t err = {0};
    uint32_t rows = 0, delay = 0;
    rc = drover_model_config(d, pos[0], set[0], set[1], &rows, &delay, &err);
    if (rc == 0 && json) {
        printf("{\"name\":");
        dv_cli_json_str(stdout, pos[0]);
        printf(",\"max_batch_rows\":%" PRIu32 ",\"max_delay_us\":%" PRIu32
               "}\n",
               rows, delay);
    } else if (rc == 0) {
        printf("%s: max_batch_rows %" PRIu32 ", max_delay_us %" PRIu32 "\n",
               pos[0], rows, delay);
    }
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}

// `drover models alias NAME@VERSION ALIAS` and `unalias NAME ALIAS`.
static int
alias_or_unalias(const dv_cli_opt_t *opts,
                 const char *const *pos,
                 size_t n_pos,
                 bool json,
                 bool unalias)
{
    if (n_pos != 2) {
        fputs(MODELS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    char name[256] = "";
    uint32_t version = 0;
    int rc;
    if (unalias) {
        snprintf(name, sizeof name, "%s", pos[0]);
    } else if ((rc = dv_cli_split_ref(pos[0], name, sizeof name, &version)) !=
                   0 ||
               version == 0) {
        fprintf(stderr, "drover: models alias needs NAME@VERSION\n");
        return DV_CLI_USAGE;
    }
    drover_t *d = NULL;
    if ((rc = dv_cli_connect(opts, &d)) != 0) {
        return rc;
    }
    drover_error_t err = {0};
    uint32_t previous = 0;
    rc = drover_model_alias_ex(d, name, pos[1], version,
                               dv_cli_get(opts, "schema-change") != NULL,
                               &previous, &err);
    if (rc == 0 && json) {
        printf("{\"name\":");
        dv_cli_json_str(stdout, name);
        printf(",\"alias\":");
        dv_cli_json_str(stdout, pos[1]);
        printf(",\"version\":%" PRIu32 ",\"previous\":%" PRIu32 "}\n", version,
               previous);
    } else if (rc == 0 && !unalias) {
        if (previous) {
            printf("%s@%s -> version %" PRIu32 " (was %" PRIu32 ")\n", name,
                   pos[1], version, previous);
        } else {
            printf("%s@%s -> version %" PRIu32 " (new)\n", name, pos[1],
                   version);
        }
    } else if (rc == 0) {
        printf("%s@%s removed (it named version %" PRIu32 ")\n", name, pos[1],
               previous);
    }
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}

static int
models_alias(const dv_cli_opt_t *opts,
             const char *const *pos,
             size_t n_pos,
             bool json)
{
    return alias_or_unalias(opts, pos, n_pos, json, false);
}

static int
models_unalias(const dv_cli_opt_t *opts,
               const char *const *pos,
               size_t n_pos,
               bool json)
{
    return alias_or_unalias(opts, pos, n_pos, json, true);
}

// `drover models push FILE [--name N] [--sign] [--schema-change]`.
static int
models_push(const dv_cli_opt_t *opts,
            const char *const *pos,
            size_t n_pos,
            bool json)
{
    if (n_pos != 1) {
        fputs(MODELS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    char name[256] = "";
    const char *nm = dv_cli_get(opts, "name");
    if (nm) {
        snprintf(name, sizeof name, "%s", nm);
    } else { // FILE's base name without .drvm
        const char *base = strrchr(pos[0], '/');
        snprintf(name, sizeof name, "%s", base ? base + 1 : pos[0]);
        char *dot = strstr(name, ".drvm");
        if (dot && dot[5] == '\0') {
            *dot = '\0';
        }
    }
    drover_t *d = NULL;
    int rc = dv_cli_connect(opts, &d);
    if (rc != 0) {
        return rc;
    }
    const char *key = getenv("DROVER_KEY");
    if (dv_cli_get(opts, "sign") && (!key || !*key)) {
        fprintf(stderr, "drover: --sign signs with --key FILE.key (or "
                        "DROVER_KEY): give an admin key\n");
        drover_destroy(&d);
        return DV_CLI_USAGE;
    }
    uint8_t *image = NULL;
    size_t len = 0;
    dv_error_t ferr = {0};
    if (dv_file_read(pos[0], DV_MAX_FRAME_BYTES, &image, &len, &ferr)) {
        drover_destroy(&d);
        return dv_cli_fail_dv(&ferr);
    }
    drover_error_t err = {0};
    drover_model_t m;
    drover_push_opts_t po = {dv_cli_get(opts, "sign") ? key : NULL,
                             dv_cli_get(opts, "schema-change") != NULL};
    rc = drover_model_push_ex(d, image, len, name, &po, &m, &err);
    free(image);
    if (rc == 0 && json) {
        print_model_json(&m);
        printf("\n");
    } else if (rc == 0) {
        printf("stored %s@%" PRIu32 " (%s %s, %" PRIu32 " features, %" PRIu64
               " bytes, sha256 %.16s)\n",
               m.name, m.version, m.task, m.algo, m.features, m.bytes,
               m.sha256);
    }
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}

// `drover models list`.
static int
models_list(const dv_cli_opt_t *opts,
            const char *const *pos,
            size_t n_pos,
            bool json)
{
    (void)pos;
    if (n_pos != 0) {
        fputs(MODELS_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    drover_t *d = NULL;
    int rc = dv_cli_connect(opts, &d);
    if (rc != 0) {
        return rc;
    }
    drover_error_t err = {0};
    drover_model_t *all = NULL;
    size_t n = 0;
    rc = drover_model_list(d, &all, &n, &err);
    if (rc == 0 && json) {
        printf("[");
        for (size_t i = 0; i < n; i++) {
            printf(i ? "," : "");
            print_model_json(&all[i]);
        }
        printf("]\n");
    } else if (rc == 0) {
        print_model_header();
        for (size_t i = 0; i < n; i++) {
            print_model_text(&all[i]);
        }
    }
    free(all);
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}

// `drover models show REF --json`.
static void
print_schema_json(const drover_schema_t *sc)
{
    printf("{\"model\":");
    print_model_json(&sc->model);
    printf(",\"target\":");
    dv_cli_json_str(stdout, sc->target);
    printf(",\"features\":[");
    for (size_t i = 0; i < sc->n_features; i++) {
        printf(i ? "," : "");
        dv_cli_json_str(stdout, sc->features[i]);
    }
    printf("],\"classes\":[");
    for (size_t i = 0; i < sc->n_classes; i++) {
        printf(i ? "," : "");
        dv_cli_json_str(stdout, sc->classes[i]);
    }
    printf("]");
    print_lineage_json(&sc->lineage);
    printf("}\n");
}

// `drover models show REF`.
static void
print_schema_text(const drover_schema_t *sc)
{
    print_model_header();
    print_model_text(&sc->model);
    printf("sha256   %s\ntarget   %s\nfeatures", sc->model.sha256, sc->target);
    for (size_t i = 0; i < sc->n_features; i++) {
        printf(" %s", sc->features[i]);
    }
    if (sc->n_classes) {
        printf("\nclasses ");
        for (size_t i = 0; i < sc->n_classes; i++) {
            printf(" %s", sc->classes[i]);
        }
    }
    printf("\nbatching max_batch_rows %" PRIu32 ", max_delay_us %" PRIu32 "\n",
           sc->model.max_batch_rows, sc->model.max_delay_us);
    print_lineage_text(&sc->lineage);
}

// `drover models show REF`.
static int
models_show(const dv_cli_opt_t *opts,
            const char *const *pos,
            size_t n_pos,
            bool json)
{
    char name[256] = "";
    uint32_t version = 0;
    drover_t *d = NULL;
    int rc = connect_ref(opts, pos, n_pos, name, sizeof name, &version, &d);
    if (rc >= 0) {
        return rc;
    }
    drover_error_t err = {0};
    drover_schema_t sc;
    rc = drover_model_schema(d, name, version, &sc, &err);
    if (rc == 0 && json) {
        print_schema_json(&sc);
    } else if (rc == 0) {
        print_schema_text(&sc);
    }
    if (rc == 0) {
        drover_schema_clear(&sc);
    }
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}

// `drover models rm REF`.
static int
models_rm(const dv_cli_opt_t *opts,
          const char *const *pos,
          size_t n_pos,
          bool json)
{
    char name[256] = "";
    uint32_t version = 0;
    drover_t *d = NULL;
    int rc = connect_ref(opts, pos, n_pos, name, sizeof name, &version, &d);
    if (rc >= 0) {
        return rc;
    }
    drover_error_t err = {0};
    unsigned removed = 0;
    rc = drover_model_rm(d, name, version, &removed, &err);
    if (rc == 0) {
        printf(json ? "{\"removed\":%u}\n" : "removed %u version(s)\n",
               removed);
    }
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}

static const struct {
    const char *name;
    models_fn fn;
} s_models_subs[] = {
    {"list", models_list},     {"show", models_show},
    {"push", models_push},     {"rm", models_rm},
    {"alias", models_alias},   {"unalias", models_unalias},
    {"config", models_config}, {"gc", models_gc},
};

int
dv_cli_models(int argc, char **argv)
{
    int start = dv_cli_group_start(argc, argv, MODELS_USAGE);
    if (start >= 0) {
        return start;
    }
    const char *sub = argv[0];
    dv_cli_opt_t opts[] = {
        {"name", true, NULL},           {"broker", true, NULL},
        {"json", false, NULL},          {"help", false, NULL},
        {"keep", true, NULL},           {"sign", false, NULL},
        {"max-batch-rows", true, NULL}, {"max-delay-us", true, NULL},
        {"schema-change", false, NULL}, {NULL, false, NULL},
    };
    const char *pos[2];
    size_t n_pos = 0;
    int rc = dv_cli_parse_usage(argc - 1, argv + 1, opts, pos, 2, &n_pos,
                                MODELS_USAGE);
    if (rc >= 0) {
        return rc;
    }
    bool json = dv_cli_get(opts, "json") != NULL;
    for (size_t i = 0; i < sizeof s_models_subs / sizeof *s_models_subs; i++) {
        if (strcmp(sub, s_models_subs[i].name) == 0) {
            return s_models_subs[i].fn(opts, pos, n_pos, json);
        }
    }
    fputs(MODELS_USAGE, stderr);
    return DV_CLI_USAGE;
}

// ---------------------------------------------------------------- train

#define TRAIN_USAGE                                                            \
    "usage: drover train (--data FILE.csv | --dataset NAME[@V]) --algo ALGO "  \
    "--model NAME\n"                                                           \
    "        "                                                                 \
    "[--target COL] [--task T]\n"                                              \
    "         [--epochs N] [--batch N] [--patience N] [--seed N] [--lr X] "    \
    "[--l2 X] [--tol X]\n"                                                     \
    "         [--scale S] [--hidden 64,32] [--init I] "                        \
    "[--validation-fraction F]\n"                                              \
    "         [--checkpoint-ms N] [--queue Q]\n"                               \
    "         [--eval-dataset NAME[@V]] [--no-wait] [--schema-change]\n"       \
    "         [--broker E] [--json]\n"                                         \
    "Trains on a worker through the queue (the options of `drover local "      \
    "train`) and\n"                                                            \
    "registers the model as the next version of NAME. With "                   \
    "SOURCE_DATE_EPOCH set, the\n"                                             \
    "file is byte for byte what `drover local train` writes. The worker "      \
    "checkpoints\n"                                                            \
    "every --checkpoint-ms (default 10000, 0: never); if it dies, another "    \
    "worker\n"                                                                 \
    "goes on from the last checkpoint, to the same model. --eval-dataset "     \
    "scores the model\n"                                                       \
    "on a stored data set as it trains (progress) and at the end (its "        \
    "lineage:\n"                                                               \
    "drover models show NAME@V). The job id is printed (stderr) once the "     \
    "broker has\n"                                                             \
    "it: Ctrl-C stops waiting, not the job (`drover jobs cancel ID`); "        \
    "--no-wait\n"                                                              \
    "prints the id (stdout) and returns. A model that takes other inputs or "  \
    "gives\n"                                                                  \
    "other outputs than NAME's latest is not registered (DV_ESHAPE: its "      \
    "clients would\n"                                                          \
    "fail) unless --schema-change.\n"

static void
on_train_progress(const drover_progress_t *p, void *arg)
{
    dv_cli_print_progress(arg, p);
}

// `drover train`'s hyperparameter options: the CLI option, then the train
// option (wire key) it sets.
static const char *const s_train_hyper[][2] = {
    {"epochs", "epochs"},
    {"batch", "batch"},
    {"patience", "patience"},
    {"seed", "seed"},
    {"lr", "lr"},
    {"l2", "l2"},
    {"tol", "tol"},
    {"scale", "scale"},
    {"hidden", "hidden"},
    {"init", "init"},
    {"validation-fraction", "validation_fraction"},
};
#define N_TRAIN_HYPER (sizeof s_train_hyper / sizeof s_train_hyper[0])

// The hyperparameters given, as "key=value" strings in options (pointed
// at by ptrs). Returns how many.
static size_t
train_hyper_options(const dv_cli_opt_t *opts,
                    char options[][160],
                    const char **ptrs)
{
    size_t n_options = 0;
    for (size_t i = 0; i < N_TRAIN_HYPER; i++) {
        const char *v = dv_cli_get(opts, s_train_hyper[i][0]);
        if (v) {
            snprintf(options[n_options], 160, "%s=%s", s_train_hyper[i][1], v);
            ptrs[n_options] = options[n_options];
            n_options++;
        }
    }
    return n_options;
}

// The finished train job: the version it made, or its failure into err.
// Returns 0 or the job's error code.
static int
train_report(const dv_cli_opt_t *opts,
             const drover_result_t *r,
             double secs,
             drover_error_t *err)
{
    const char *text = "";
    int code = drover_result_error(r, &text);
    if (code) {
        err->code = code;
        snprintf(err->text, sizeof err->text, "%s", text);
        return code;
    }
    if (dv_cli_get(opts, "json")) {
        printf("{\"job\":%" PRIu64 ",\"model\":", drover_result_job(r));
        dv_cli_json_str(stdout, drover_result_model(r));
        printf(",\"worker\":");
        dv_cli_json_str(stdout, drover_result_worker(r));
        printf(",\"attempts\":%" PRIu32 ",\"seconds\":%.3f}\n",
               drover_result_attempts(r), secs);
    } else {
        printf("trained %s on worker %s (job %" PRIu64 ", %.2f s)\n",
               drover_result_model(r), drover_result_worker(r),
               drover_result_job(r), secs);
    }
    return 0;
}

int
dv_cli_train(int argc, char **argv)
{
    // clang-format off
    dv_cli_opt_t opts[] = {
        {"data", true, NULL}, {"algo", true, NULL},
        {"model", true, NULL}, {"target", true, NULL},
        {"task", true, NULL}, {"queue", true, NULL},
        {"broker", true, NULL}, {"json", false, NULL},
        {"help", false, NULL}, {"epochs", true, NULL},
        {"batch", true, NULL}, {"patience", true, NULL},
        {"seed", true, NULL}, {"lr", true, NULL},
        {"l2", true, NULL}, {"tol", true, NULL},
        {"scale", true, NULL}, {"hidden", true, NULL},
        {"dataset", true, NULL}, {"checkpoint-ms", true, NULL},
        {"eval-dataset", true, NULL}, {"no-wait", false, NULL},
        {"init", true, NULL}, {"validation-fraction", true, NULL},
        {"schema-change", false, NULL}, {NULL, false, NULL},
    };
    // clang-format on
    size_t n_pos = 0;
    int rc = dv_cli_parse_usage(argc, argv, opts, NULL, 0, &n_pos, TRAIN_USAGE);
    if (rc >= 0) {
        return rc;
    }
    const char *data = dv_cli_get(opts, "data");
    const char *dataset = dv_cli_get(opts, "dataset");
    if (!data == !dataset || !dv_cli_get(opts, "algo") ||
        !dv_cli_get(opts, "model")) {
        fputs(TRAIN_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    char options[N_TRAIN_HYPER][160];
    const char *option_ptrs[N_TRAIN_HYPER];
    size_t n_options = train_hyper_options(opts, options, option_ptrs);
    dv_error_t derr = {0};
    uint8_t *csv = NULL;
    size_t csv_len = 0;
    if (data &&
        dv_cli_read_input(data, (size_t)1 << 28, &csv, &csv_len, &derr)) {
        return dv_cli_fail_dv(&derr);
    }
    drover_train_t t = {0};
    t.dataset = dataset;
    t.eval_dataset = dv_cli_get(opts, "eval-dataset");
    t.queue = dv_cli_get(opts, "queue");
    t.model = dv_cli_get(opts, "model");
    t.algo = dv_cli_get(opts, "algo");
    t.csv = csv;
    t.csv_len = csv_len;
    t.target = dv_cli_get(opts, "target");
    t.task = dv_cli_get(opts, "task");
    t.options = option_ptrs;
    t.n_options = n_options;
    t.schema_change = dv_cli_get(opts, "schema-change") != NULL;
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    t.created_unix = sde ? atoll(sde) : 0;
    long ck = 0;
    if (!dv_cli_get_long(opts, "checkpoint-ms", 0, 86400000, &ck)) {
        free(csv);
        return DV_CLI_USAGE;
    }
    if (dv_cli_get(opts, "checkpoint-ms")) {
        t.checkpoint_ms = ck > 0 ? ck : -1;
    }
    dv_cli_progress_t po = {dv_cli_get(opts, "json") != NULL,
                            isatty(STDERR_FILENO) == 1, false};
    t.progress = on_train_progress;
    t.progress_arg = &po;
    drover_t *d = NULL;
    if ((rc = dv_cli_connect(opts, &d)) != 0) {
        free(csv);
        return rc;
    }
    drover_error_t err = {0};
    drover_result_t *r = NULL;
    double t0 = dv_cli_seconds_now();
    uint64_t job = 0;
    rc = drover_train_submit(d, &t, -1, &job, &err);
    if (rc == 0 && !dv_cli_print_submitted(opts, job)) {
        free(csv);
        drover_destroy(&d);
        return DV_CLI_OK;
    }
    if (rc == 0) {
        rc = drover_wait(d, job, -1, &r, &err);
    }
    double secs = dv_cli_seconds_now() - t0;
    if (po.drawn) {
        fputc('\n', stderr);
    }
    free(csv);
    if (rc == 0) {
        rc = train_report(opts, r, secs, &err);
    }
    drover_result_destroy(&r);
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}
