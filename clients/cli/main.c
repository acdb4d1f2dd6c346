// drover — the command-line client. Thin: picks the subcommand and hands
// over; each subcommand lives in its own dv_cli_*.c.
#include <stdio.h>
#include <string.h>

#include "dv_cli.h"

static void
usage(FILE *f)
{
    fprintf(f, "usage: drover <command> [options]\n"
               "\n"
               "commands:\n"
               "  local train|eval|predict|inspect   train and run models in "
               "this process\n"
               "                                     (no broker needed)\n"
               "  version                            print the version\n"
               "\n"
               "`drover local --help` and `drover local train --help` show "
               "the options.\n"
               "Exit codes: 0 ok, 1 failure (reason on stderr), 2 usage.\n");
}

int
main(int argc, char **argv)
{
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
    fprintf(stderr, "drover: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return DV_CLI_USAGE;
}
