// drover — the command-line client. Thin: picks the subcommand and hands
// over; each subcommand lives in its own dv_cli_*.c.
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover.h"
#include "dv_cli.h"

static void
usage(FILE *f)
{
    fprintf(
        f, "usage: drover <command> [options]\n"
           "\n"
           "commands:\n"
           "  local train|eval|predict|inspect   train and run models in "
           "this process\n"
           "                                     (no broker needed)\n"
           "  up                                 run a local cluster: "
           "broker + workers\n"
           "  infer                              run a model on a CSV "
           "through the broker\n"
           "  train                              train a model on a worker, "
           "register it\n"
           "  evaluate                           a model's metrics on a CSV, "
           "as a job\n"
           "  submit                             submit echo or sleep jobs "
           "(tests, load)\n"
           "  models push|list|show|rm|alias|unalias|gc|config\n"
           "                                     the broker's model registry\n"
           "  datasets push|list|show|rm|share   stored training data sets\n"
           "  jobs show|list|result|cancel|watch jobs: state, results, "
           "cancel, progress\n"
           "  dead list|show|requeue|purge       the dead-letter queue\n"
           "  results follow|consumers|forget    result streams: follow one "
           "(resumable),\n"
           "                                     list or forget consumers\n"
           "  workers                            connected workers\n"
           "  status                             the broker's queues and "
           "counts\n"
           "  top                                a live view: queues, workers, "
           "jobs running\n"
           "  audit                              the broker's audit log "
           "(admin)\n"
           "  admin reload                       reload the authorized keys "
           "(admin)\n"
           "  keygen                             a CURVE key pair for "
           "the broker, a client\n"
           "                                     or a worker (.key + .pub)\n"
           "  version                            print the version\n"
           "\n"
           "`drover COMMAND --help` shows a command's options. Commands "
           "that talk to a\nbroker take --broker ENDPOINT (before or after "
           "the command; default\n"
           "$DROVER_BROKER, else " DROVER_DEFAULT_ENDPOINT ")"
           " and --json; with CURVE on,\n--key FILE.key --broker-key "
           "FILE.pub (or DROVER_KEY / DROVER_BROKER_KEY;\ndocs/SECURITY.md)"
           "; `drover --keys DIR COMMAND`: the admin key of a\n"
           "`drover up --secure` cluster (DIR = its --data DIR/keys).\n"
           "Exit codes: 0 ok, 1 failure (reason on stderr), 2 usage.\n");
}

// The options before the command, for every command that talks to a
// broker: `--broker E` (as DROVER_BROKER; a --broker after the command
// still wins) and `--keys DIR` (DIR/admin.key and DIR/broker.pub as --key
// and --broker-key: the keys `drover up --secure` keeps; DROVER_KEY and
// DROVER_BROKER_KEY win). Removes them from argv. Returns 0, or -1 after
// saying what is wrong.
static int
global_options(int *argc, char **argv)
{
    for (;;) {
        const char *a = *argc >= 2 ? argv[1] : "";
        int used = 0;
        if (strncmp(a, "--broker=", 9) == 0) {
            setenv("DROVER_BROKER", a + 9, 1);
            used = 1;
        } else if (strcmp(a, "--broker") == 0 && *argc >= 3) {
            setenv("DROVER_BROKER", argv[2], 1);
            used = 2;
        } else if (strcmp(a, "--keys") == 0 && *argc >= 3) {
            char key[4096], pub[4096];
            int k = snprintf(key, sizeof key, "%s/admin.key", argv[2]);
            int b = snprintf(pub, sizeof pub, "%s/broker.pub", argv[2]);
            if (k < 0 || b < 0 || (size_t)k >= sizeof key ||
                (size_t)b >= sizeof pub) {
                fprintf(stderr, "drover: --keys %s: path too long\n", argv[2]);
                return -1;
            }
            setenv("DROVER_KEY", key, 0);
            setenv("DROVER_BROKER_KEY", pub, 0);
            used = 2;
        }
        if (used == 0) {
            return 0;
        }
        memmove(argv + 1, argv + 1 + used,
                (size_t)(*argc - 1 - used + 1) * sizeof *argv);
        *argc -= used;
    }
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return DV_CLI_USAGE;
    }
    // --key FILE / --broker-key FILE.pub anywhere: this client's CURVE key
    // and the broker's, for every command that talks to a broker (as
    // DROVER_KEY / DROVER_BROKER_KEY, which libdrover reads).
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        static const char *names[2] = {"--key", "--broker-key"};
        static const char *envs[2] = {"DROVER_KEY", "DROVER_BROKER_KEY"};
        bool taken = false;
        for (int k = 0; k < 2 && !taken; k++) {
            size_t nl = strlen(names[k]);
            if (strcmp(argv[i], names[k]) == 0 && i + 1 < argc) {
                setenv(envs[k], argv[++i], 1);
                taken = true;
            } else if (strncmp(argv[i], names[k], nl) == 0 &&
                       argv[i][nl] == '=') {
                setenv(envs[k], argv[i] + nl + 1, 1);
                taken = true;
            }
        }
        if (!taken) {
            argv[kept++] = argv[i];
        }
    }
    argc = kept;
    argv[argc] = NULL;
    if (argc < 2) {
        usage(stderr);
        return DV_CLI_USAGE;
    }
    if (global_options(&argc, argv) != 0) {
        return DV_CLI_USAGE;
    }
    if (argc < 2) {
        usage(stderr);
        return DV_CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        usage(stdout);
        return DV_CLI_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("drover %s\n", DV_VERSION_STRING);
        return DV_CLI_OK;
    }
    if (strcmp(cmd, "local") == 0) {
        return dv_cli_local(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "up") == 0) {
        return dv_cli_up(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "keygen") == 0) {
        return dv_cli_keygen(argc - 2, argv + 2);
    }
    int rc = dv_cli_remote(cmd, argc - 2, argv + 2);
    if (rc >= 0) {
        return rc;
    }
    fprintf(stderr, "drover: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return DV_CLI_USAGE;
}
