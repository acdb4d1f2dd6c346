// dv_cli_keys — `drover keygen`: a new CURVE key pair as STEM.key (secret,
// mode 0600) and STEM.pub (public, for the broker's --authorized-keys
// folder), with the key's id, roles and queues in both (dv_keys.h).
//
// Output contract: what was written goes to stdout (text, or one JSON
// object on one line with --json); errors to stderr.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_cli.h"
#include "dv_err.h"
#include "dv_keys.h"
#include "dv_mem.h"

#define KEYGEN_USAGE                                                           \
    "usage: drover keygen --out STEM [--name ID] "                             \
    "[--roles producer,consumer,worker,admin]\n"                               \
    "                     [--queues q1,q2|*] [--json]\n"                       \
    "Writes a new CURVE key pair: STEM.key (secret, mode 0600: keep it "       \
    "private)\n"                                                               \
    "and STEM.pub (public). A client's or worker's .pub goes in the "          \
    "broker's\n"                                                               \
    "--authorized-keys folder; the broker's own key (made without --roles) "   \
    "is its\n--secret-key, and its .pub goes to clients and workers as "       \
    "--broker-key.\n"                                                          \
    "Existing files are never overwritten.\n"                                  \
    "  --name ID      the key's id (default: STEM's file name); 1 to 64 of "   \
    "A-Z a-z 0-9 . _ -\n"                                                      \
    "  --roles LIST   producer (submit, read its jobs), consumer (follow "     \
    "results),\n"                                                              \
    "                 worker (take jobs), admin (everything); default: none\n" \
    "  --queues LIST  queues it may submit to / follow, or * for all "         \
    "(default *)\n"                                                            \
    "  --json         print one JSON object\n"

static int
fail(const dv_error_t *err)
{
    fprintf(stderr, "drover: %s (%s)\n", err->text, dv_err_name(err->code));
    return DV_CLI_FAIL;
}

// The role names of roles as a JSON array.
static void
print_roles_json(unsigned roles)
{
    char buf[DV_ROLES_TEXT_MAX];
    printf("[");
    if (roles) {
        dv_roles_format(roles, buf, sizeof buf);
        bool first = true;
        for (char *name = strtok(buf, ","); name; name = strtok(NULL, ",")) {
            if (!first) {
                fputc(',', stdout);
            }
            dv_cli_json_str(stdout, name);
            first = false;
        }
    }
    printf("]");
}

static void
print_json(const char *key_path, const char *pub_path, const dv_key_t *k)
{
    printf("{\"secret\":");
    dv_cli_json_str(stdout, key_path);
    printf(",\"public\":");
    dv_cli_json_str(stdout, pub_path);
    printf(",\"id\":");
    dv_cli_json_str(stdout, k->id);
    printf(",\"roles\":");
    print_roles_json(k->roles);
    printf(",\"queues\":[");
    if (k->all_queues) {
        dv_cli_json_str(stdout, "*");
    }
    for (size_t i = 0; i < k->n_queues; i++) {
        if (i > 0) {
            fputc(',', stdout);
        }
        dv_cli_json_str(stdout, k->queues[i]);
    }
    printf("],\"public_key\":");
    dv_cli_json_str(stdout, k->public_z85);
    printf("}\n");
}

static void
print_text(const char *key_path, const char *pub_path, const dv_key_t *k)
{
    char roles[DV_ROLES_TEXT_MAX];
    printf("wrote %s (secret, mode 0600: keep it private) and %s (public: "
           "%s)\n",
           key_path, pub_path,
           k->roles ? "put it in the broker's --authorized-keys folder"
                    : "no roles, so a broker's key: run the broker with "
                      "--secret-key on the .key, give clients and workers "
                      "the .pub as --broker-key");
    printf("id:         %s\n", k->id);
    printf("roles:      %s\n", dv_roles_format(k->roles, roles, sizeof roles));
    printf("queues:     ");
    if (k->all_queues) {
        printf("* (every queue)");
    }
    for (size_t i = 0; i < k->n_queues; i++) {
        printf(i ? ",%s" : "%s", k->queues[i]);
    }
    printf("\npublic key: %s\n", k->public_z85);
}

int
dv_cli_keygen(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"out", true, NULL},    {"name", true, NULL},  {"roles", true, NULL},
        {"queues", true, NULL}, {"json", false, NULL}, {"help", false, NULL},
        {NULL, false, NULL},
    };
    const char *pos[1];
    size_t n_pos;
    if (dv_cli_parse(argc, argv, opts, pos, 0, &n_pos)) {
        fputs(KEYGEN_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    if (dv_cli_get(opts, "help")) {
        fputs(KEYGEN_USAGE, stdout);
        return DV_CLI_OK;
    }
    const char *stem = dv_cli_get(opts, "out");
    if (!stem || !*stem) {
        fprintf(stderr, "drover: keygen needs --out STEM\n");
        fputs(KEYGEN_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    dv_error_t err = {0};
    unsigned roles = 0;
    const char *roles_text = dv_cli_get(opts, "roles");
    if (roles_text && dv_roles_parse(roles_text, &roles, &err) != 0) {
        return fail(&err);
    }
    if (dv_key_generate(stem, dv_cli_get(opts, "name"), roles,
                        dv_cli_get(opts, "queues"), &err) != 0) {
        return fail(&err);
    }
    size_t n = strlen(stem) + sizeof ".key";
    char *key_path = dv_malloc(n), *pub_path = dv_malloc(n);
    snprintf(key_path, n, "%s.key", stem);
    snprintf(pub_path, n, "%s.pub", stem);
    // Read back what was written: the output shows the file, not our
    // arguments (normalized lists, the id it got), and proves it loads.
    dv_key_t k;
    int rc = dv_key_load(&k, pub_path, &err);
    if (rc == 0) {
        if (dv_cli_get(opts, "json")) {
            print_json(key_path, pub_path, &k);
        } else {
            print_text(key_path, pub_path, &k);
        }
        dv_key_clear(&k);
    }
    free(key_path);
    free(pub_path);
    return rc == 0 ? DV_CLI_OK : fail(&err);
}
