// dv_cli — option parsing shared by the `drover` subcommands.
//
// GNU-style long options only (`--name value`, `--name=value`, `--flag`);
// `--` ends options. Small on purpose: every command lists its options in a
// table, and unknown options are usage errors, never silently ignored.
#include "dv_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dv_cli_opt_t *
find_opt(dv_cli_opt_t *opts, const char *name, size_t len)
{
    for (dv_cli_opt_t *o = opts; o->name; o++) {
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) {
            return o;
        }
    }
    return NULL;
}

int
dv_cli_parse(int argc,
             char **argv,
             dv_cli_opt_t *opts,
             const char **pos,
             size_t max_pos,
             size_t *n_pos)
{
    *n_pos = 0;
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (only_pos || strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (!only_pos && strcmp(arg, "--") == 0) {
                only_pos = true;
                continue;
            }
            if (*n_pos == max_pos) {
                fprintf(stderr, "drover: unexpected argument '%s'\n", arg);
                return DV_CLI_USAGE;
            }
            pos[(*n_pos)++] = arg;
            continue;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        dv_cli_opt_t *o = find_opt(opts, name, len);
        if (!o) {
            fprintf(stderr, "drover: unknown option '--%.*s'\n", (int)len,
                    name);
            return DV_CLI_USAGE;
        }
        if (!o->takes_value) {
            if (eq) {
                fprintf(stderr, "drover: option '--%s' takes no value\n",
                        o->name);
                return DV_CLI_USAGE;
            }
            o->value = "1";
        } else if (eq) {
            o->value = eq + 1;
        } else if (i + 1 < argc) {
            o->value = argv[++i];
        } else {
            fprintf(stderr, "drover: option '--%s' needs a value\n", o->name);
            return DV_CLI_USAGE;
        }
    }
    return 0;
}

const char *
dv_cli_get(const dv_cli_opt_t *opts, const char *name)
{
    for (const dv_cli_opt_t *o = opts; o->name; o++) {
        if (strcmp(o->name, name) == 0) {
            return o->value;
        }
    }
    return NULL;
}

bool
dv_cli_get_long(
    const dv_cli_opt_t *opts, const char *name, long lo, long hi, long *v)
{
    const char *s = dv_cli_get(opts, name);
    if (!s) {
        return true;
    }
    char *end = NULL;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (!*s || *end || errno == ERANGE || x < lo || x > hi) {
        fprintf(stderr,
                "drover: --%s '%s': must be a whole number from %ld to %ld\n",
                name, s, lo, hi);
        return false;
    }
    *v = x;
    return true;
}
