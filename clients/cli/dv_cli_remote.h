// dv_cli_remote — what the `drover` commands that talk to a broker share
// (not a public API: only clients/cli/ includes it).
//
// One file per command group, each calling libdrover (drover.h), dv_cli.h's
// parsing and output helpers, common/ and what is declared here:
//   dv_cli_remote.c   the helpers below and dv_cli_remote(), the table of
//                     these commands
//   dv_cli_infer.c    infer, evaluate
//   dv_cli_jobs.c     submit, jobs, dead (letters)
//   dv_cli_results.c  results (streams: follow; consumers, forget)
//   dv_cli_models.c   models, train
//   dv_cli_data.c     datasets
//   dv_cli_admin.c    workers, status, audit, admin
//   dv_cli_top.c      top (a live view: status, workers, running jobs)
// Every command takes argv after its name and returns an exit code
// (DV_CLI_OK, DV_CLI_FAIL or DV_CLI_USAGE).

#ifndef DV_CLI_REMOTE_H
#define DV_CLI_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "drover.h"
#include "dv_cli.h"
#include "dv_err.h"

// A progress line: a redrawn bar on a terminal, JSON lines with --json.
typedef struct {
    bool json, tty, drawn;
} dv_cli_progress_t;

// Print "drover: DV_ENAME: reason" for err to stderr. Returns DV_CLI_FAIL.
int dv_cli_fail_d(const drover_error_t *err);
// The same for an error from common/.
int dv_cli_fail_dv(const dv_error_t *err);

// Seconds on the monotonic clock.
double dv_cli_seconds_now(void);

// Parse argv with opts (which must have "broker", "json", "help"); on
// --help print usage_text. Returns -1 to go on, else an exit code.
int dv_cli_parse_usage(int argc,
                       char **argv,
                       dv_cli_opt_t *opts,
                       const char **pos,
                       size_t max_pos,
                       size_t *n_pos,
                       const char *usage_text);

// The start of a command with subcommands (models, jobs, dead, results,
// datasets, admin): no subcommand is a usage error (usage on stderr, 2);
// `--help`, `-h` or `help` in its place prints usage on stdout (0).
// Returns -1 to go on with argv[0] as the subcommand, else an exit code.
int dv_cli_group_start(int argc, char **argv, const char *usage_text);

// A long job (train, evaluate) was accepted as job: with --no-wait print
// its id on stdout (JSON with --json) and return false (the command ends
// there); else say it on stderr (so Ctrl-C leaves the id behind) and
// return true (wait for it).
bool dv_cli_print_submitted(const dv_cli_opt_t *opts, uint64_t job);

// The bytes of the file at path, or of standard input for "-", at most max
// (*buf: caller frees). Returns 0 or DV_E* naming the path.
int dv_cli_read_input(
    const char *path, size_t max, uint8_t **buf, size_t *len, dv_error_t *err);

// Connect *d (caller destroys it) to --broker. Returns DV_CLI_OK, or
// DV_CLI_FAIL after printing why.
int dv_cli_connect(const dv_cli_opt_t *opts, drover_t **d);

// A command whose only options are --broker, --json and --help: parse
// argv (usage on a mistake or --help), then connect. Returns -1 with *d
// connected and *json set: go on; else the exit code to return.
int dv_cli_open_plain(
    int argc, char **argv, const char *usage, bool *json, drover_t **d);

// "NAME" or "NAME@VERSION" into name and version (0: latest).
int
dv_cli_split_ref(const char *ref, char *name, size_t size, uint32_t *version);

// Show one training progress report as o says (updates o->drawn).
void dv_cli_print_progress(dv_cli_progress_t *o, const drover_progress_t *p);

// The commands (argv starts after the command's name).
int dv_cli_infer(int argc, char **argv);    // dv_cli_infer.c
int dv_cli_evaluate(int argc, char **argv); //
int dv_cli_submit(int argc, char **argv);   // dv_cli_jobs.c
int dv_cli_jobs(int argc, char **argv);     //
int dv_cli_dead(int argc, char **argv);     //
int dv_cli_results(int argc, char **argv);  // dv_cli_results.c
int dv_cli_models(int argc, char **argv);   // dv_cli_models.c
int dv_cli_train(int argc, char **argv);    //
int dv_cli_datasets(int argc, char **argv); // dv_cli_data.c
// A worker's load, for `workers` and `top` (dv_cli_admin.c): COMPUTING as
// "c/threads" into buf ("-/threads", or "-", for what a worker older than
// protocol 1.5 does not say), and HELD: the jobs it holds beyond those
// computing (all it holds when it does not say what computes).
void dv_cli_worker_computing(const drover_worker_t *w, char *buf, size_t size);
uint32_t dv_cli_worker_held(const drover_worker_t *w);
// Its JSON members `,"concurrency":N,"computing":N` (each only when known)
// and `,"held":N` to stdout.
void dv_cli_worker_load_json(const drover_worker_t *w);

int dv_cli_workers(int argc, char **argv); // dv_cli_admin.c
int dv_cli_status(int argc, char **argv);  //
int dv_cli_audit(int argc, char **argv);   //
int dv_cli_admin(int argc, char **argv);   //
int dv_cli_top(int argc, char **argv);     // dv_cli_top.c

#endif
