// dv_cli — the `drover` command line: argument parsing shared by every
// subcommand, and the subcommands themselves.
//
// Exit codes for every command: DV_CLI_OK (0), DV_CLI_FAIL (1, with the
// reason on stderr), DV_CLI_USAGE (2, bad arguments; usage on stderr).
#ifndef DV_CLI_H
#define DV_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "dv_metrics.h"
#include "dv_tensor.h"

#define DV_CLI_OK    0
#define DV_CLI_FAIL  1
#define DV_CLI_USAGE 2

// One `--name value` / `--name=value` / `--flag` option a command accepts.
typedef struct {
    const char *name;  // without the leading dashes
    bool takes_value;  // false: a flag
    const char *value; // parsed value (borrowed from argv); "1" for a flag
                       // that was given; NULL when absent
} dv_cli_opt_t;

// Parse argv[0..argc) into opts (terminated by a NULL name). Positional
// arguments go to pos (at most max_pos, borrowed from argv), their count to
// *n_pos. Returns 0, or DV_CLI_USAGE after printing the problem to stderr.
int dv_cli_parse(int argc,
                 char **argv,
                 dv_cli_opt_t *opts,
                 const char **pos,
                 size_t max_pos,
                 size_t *n_pos);

// Value of option name in opts (NULL when absent).
const char *dv_cli_get(const dv_cli_opt_t *opts, const char *name);

// The value of option name as a whole number in lo..hi into *v (left as
// it is when the option is absent: set the default first). Returns true, or
// false after naming the option and its range on stderr (a usage error).
bool dv_cli_get_long(
    const dv_cli_opt_t *opts, const char *name, long lo, long hi, long *v);

// Output shared by commands (dv_cli_out.c).
// s as a JSON string literal.
void dv_cli_json_str(FILE *f, const char *s);
// s as a CSV field, quoted when it holds a comma, quote or newline.
void dv_cli_csv_field(FILE *f, const char *s);
// Predictions as CSV: `value` per row (labels NULL: regression) or
// `class,label,p_<label>...` (n_labels classes).
void dv_cli_write_predictions(FILE *f,
                              const dv_tensor_t *pred,
                              char *const *labels,
                              size_t n_labels);
// Metrics as one JSON line, or as text; labels name the classes
// (classification), NULL for regression.
void dv_cli_print_metrics_json(const dv_metrics_t *m, char *const *labels);
void dv_cli_print_metrics_text(const dv_metrics_t *m, char *const *labels);

// `drover local ...`: argv starts after "local". Returns an exit code.
int dv_cli_local(int argc, char **argv);

// `drover up ...` (dv_cli_up.c): argv starts after "up".
int dv_cli_up(int argc, char **argv);

// `drover keygen ...` (dv_cli_keys.c): argv starts after "keygen".
int dv_cli_keygen(int argc, char **argv);

// The commands that talk to a broker (dv_cli_remote.c, one file per
// command group: see dv_cli_remote.h): infer, evaluate, submit, jobs,
// results, dead, models, train, datasets, workers, status, audit, admin.
// argv starts after cmd. Returns an exit code, or -1 when cmd is not one of
// them.
int dv_cli_remote(const char *cmd, int argc, char **argv);

#endif
