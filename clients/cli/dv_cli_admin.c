// dv_cli_admin — `drover workers`, `drover status`, `drover audit` and
// `drover admin` (keys reload): looking at and steering the broker. See
// dv_cli_remote.h.

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dv_cli_remote.h"

// ------------------------------------------------------- workers, status

#define WORKERS_USAGE "usage: drover workers [--broker E] [--json]\n"
#define STATUS_USAGE  "usage: drover status [--broker E] [--json]\n"

void
dv_cli_worker_computing(const drover_worker_t *w, char *buf, size_t size)
{
    if (w->concurrency && w->computing_known) {
        snprintf(buf, size, "%" PRIu32 "/%" PRIu32, w->computing,
                 w->concurrency);
    } else if (w->concurrency) {
        snprintf(buf, size, "-/%" PRIu32, w->concurrency);
    } else {
        snprintf(buf, size, "-");
    }
}

uint32_t
dv_cli_worker_held(const drover_worker_t *w)
{
    if (!w->computing_known) {
        return w->running;
    }
    return w->running > w->computing ? w->running - w->computing : 0;
}

void
dv_cli_worker_load_json(const drover_worker_t *w)
{
    if (w->concurrency) {
        printf(",\"concurrency\":%" PRIu32, w->concurrency);
    }
    if (w->computing_known) {
        printf(",\"computing\":%" PRIu32, w->computing);
    }
    printf(",\"held\":%" PRIu32, dv_cli_worker_held(w));
}

int
dv_cli_workers(int argc, char **argv)
{
    drover_t *d = NULL;
    bool json = false;
    int rc = dv_cli_open_plain(argc, argv, WORKERS_USAGE, &json, &d);
    if (rc >= 0) {
        return rc;
    }
    drover_error_t err = {0};
    drover_worker_t *w = NULL;
    size_t n = 0;
    rc = drover_workers(d, &w, &n, &err);
    if (rc == 0 && json) {
        printf("[");
        for (size_t i = 0; i < n; i++) {
            printf(i ? ",{\"name\":" : "{\"name\":");
            dv_cli_json_str(stdout, w[i].name);
            printf(",\"state\":\"%s\",\"capacity\":%" PRIu32
                   ",\"running\":%" PRIu32 ",\"idle_ms\":%" PRIu64,
                   w[i].state, w[i].capacity, w[i].running, w[i].idle_ms);
            dv_cli_worker_load_json(&w[i]);
            printf(",\"models\":[");
            for (size_t k = 0; k < w[i].n_models; k++) {
                printf(k ? "," : "");
                dv_cli_json_str(stdout, w[i].models[k]);
            }
            printf("],\"datasets\":[");
            for (size_t k = 0; k < w[i].n_datasets; k++) {
                printf(k ? "," : "");
                dv_cli_json_str(stdout, w[i].datasets[k]);
            }
            printf("]");
            if (w[i].models_total > w[i].n_models) { // lists cut (1.7)
                printf(",\"models_total\":%zu", w[i].models_total);
            }
            if (w[i].datasets_total > w[i].n_datasets) {
                printf(",\"datasets_total\":%zu", w[i].datasets_total);
            }
            printf("}");
        }
        printf("]\n");
    } else if (rc == 0) {
        printf("%-32s %-9s %9s %4s %8s  %s\n", "WORKER", "STATE", "COMPUTING",
               "HELD", "IDLE_MS", "MODELS");
        for (size_t i = 0; i < n; i++) {
            char load[32];
            dv_cli_worker_computing(&w[i], load, sizeof load);
            printf("%-32s %-9s %9s %4" PRIu32 " %8" PRIu64 " ", w[i].name,
                   w[i].state, load, dv_cli_worker_held(&w[i]), w[i].idle_ms);
            for (size_t k = 0; k < w[i].n_models; k++) {
                printf(" %s", w[i].models[k]);
            }
            if (w[i].models_total > w[i].n_models) { // cut (1.7)
                printf(" (%zu more)", w[i].models_total - w[i].n_models);
            }
            for (size_t k = 0; k < w[i].n_datasets; k++) {
                printf(" data:%s", w[i].datasets[k]);
            }
            if (w[i].datasets_total > w[i].n_datasets) {
                printf(" (%zu more data sets)",
                       w[i].datasets_total - w[i].n_datasets);
            }
            printf("\n");
        }
    }
    drover_workers_free(&w, n);
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}

// A group's members: ID ROLE CLIENT COMMIT LAG, the leader marked with
// '*'.
static void
print_members(const drover_cluster_t *cl)
{
    printf("\n  broker group: term %" PRIu64 ", commit index %" PRIu64
           ", member %" PRIu64 " answering\n",
           cl->term, cl->commit, cl->self);
    printf("  %-4s %-10s %-32s %8s %6s\n", "ID", "ROLE", "CLIENT", "COMMIT",
           "LAG");
    for (size_t i = 0; i < cl->n_members; i++) {
        const drover_member_t *m = &cl->members[i];
        char lag[32] = "-", commit[32] = "-";
        if (cl->leader && m->match <= cl->last) {
            snprintf(lag, sizeof lag, "%" PRIu64, cl->last - m->match);
        }
        if (cl->leader == cl->self && cl->leader) {
            // The leader's view: a member has committed what it holds, up
            // to the group's commit index.
            snprintf(commit, sizeof commit, "%" PRIu64,
                     m->match < cl->commit ? m->match : cl->commit);
        } else if (m->id == cl->self) {
            snprintf(commit, sizeof commit, "%" PRIu64, cl->commit);
        }
        printf("  %-4" PRIu64 " %-10s %-32s %8s %6s%s\n", m->id,
               m->role[0] ? m->role : "unknown", m->client[0] ? m->client : "-",
               commit, lag,
               m->id == cl->leader ? "  * leader"
               : m->voter          ? ""
                                   : "  (non-voter)");
    }
}

static void
print_members_json(const drover_cluster_t *cl)
{
    printf(",\"group\":{\"self\":%" PRIu64 ",\"leader\":%" PRIu64
           ",\"term\":%" PRIu64 ",\"commit\":%" PRIu64 ",\"applied\":%" PRIu64
           ",\"last\":%" PRIu64 ",\"members\":[",
           cl->self, cl->leader, cl->term, cl->commit, cl->applied, cl->last);
    for (size_t i = 0; i < cl->n_members; i++) {
        const drover_member_t *m = &cl->members[i];
        printf("%s{\"id\":%" PRIu64 ",\"role\":", i ? "," : "", m->id);
        dv_cli_json_str(stdout, m->role);
        printf(",\"raft\":");
        dv_cli_json_str(stdout, m->raft);
        printf(",\"client\":");
        dv_cli_json_str(stdout, m->client);
        printf(",\"worker\":");
        dv_cli_json_str(stdout, m->worker);
        printf(",\"voter\":%s,\"match\":%" PRIu64 "}",
               m->voter ? "true" : "false", m->match);
    }
    printf("]}");
}

int
dv_cli_status(int argc, char **argv)
{
    drover_t *d = NULL;
    bool json = false;
    int rc = dv_cli_open_plain(argc, argv, STATUS_USAGE, &json, &d);
    if (rc >= 0) {
        return rc;
    }
    drover_error_t err = {0};
    drover_status_t s;
    rc = drover_status(d, &s, &err);
    // A broker group's members (1.6); a single or older broker has none.
    drover_cluster_t cl = {0};
    drover_error_t cerr = {0};
    if (rc == 0 && drover_cluster(d, &cl, &cerr) != 0) {
        drover_cluster_clear(&cl);
    }
    if (rc == 0 && json) {
        printf("{\"broker\":");
        dv_cli_json_str(stdout, s.broker);
        printf(",\"endpoint\":");
        dv_cli_json_str(stdout, drover_endpoint(d));
        printf(",\"workers\":%" PRIu64 ",\"queued\":%" PRIu64
               ",\"running\":%" PRIu64 ",\"retrying\":%" PRIu64
               ",\"dead\":%" PRIu64 ",\"kept_results\":%" PRIu64
               ",\"models\":%" PRIu64 ",\"queues\":{",
               s.workers, s.queued, s.running, s.retrying, s.dead,
               s.kept_results, s.models);
        for (size_t i = 0; i < s.n_queues; i++) {
            const drover_queue_t *q = &s.queues[i];
            printf(i ? "," : "");
            dv_cli_json_str(stdout, q->name);
            printf(":{\"queued\":%" PRIu64 ",\"running\":%" PRIu64
                   ",\"retrying\":%" PRIu64 ",\"dead\":%" PRIu64
                   ",\"done\":%" PRIu64 ",\"failed\":%" PRIu64
                   ",\"expired\":%" PRIu64 ",\"cancelled\":%" PRIu64
                   ",\"bytes\":%" PRIu64 "}",
                   q->queued, q->running, q->retrying, q->dead, q->done,
                   q->failed, q->expired, q->cancelled, q->bytes);
        }
        printf("}");
        if (cl.n_members) {
            print_members_json(&cl);
        }
        printf("}\n");
    } else if (rc == 0) {
        printf("%s at %s\n", s.broker, drover_endpoint(d));
        printf("  workers        %" PRIu64 "\n  jobs queued    %" PRIu64
               "\n  jobs running   %" PRIu64 "\n  jobs retrying  %" PRIu64
               "\n  dead letters   %" PRIu64 "\n  kept results   %" PRIu64
               "\n  model versions %" PRIu64 "\n",
               s.workers, s.queued, s.running, s.retrying, s.dead,
               s.kept_results, s.models);
        if (s.n_queues) {
            printf("\n  %-20s %8s %8s %8s %6s | since start: %8s %8s %8s "
                   "%9s\n",
                   "QUEUE", "queued", "running", "retrying", "dead", "done",
                   "failed", "expired", "cancelled");
        }
        for (size_t i = 0; i < s.n_queues; i++) {
            const drover_queue_t *q = &s.queues[i];
            printf("  %-20s %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %6" PRIu64
                   " |              %8" PRIu64 " %8" PRIu64 " %8" PRIu64
                   " %9" PRIu64 "\n",
                   q->name, q->queued, q->running, q->retrying, q->dead,
                   q->done, q->failed, q->expired, q->cancelled);
        }
        if (cl.n_members) {
            print_members(&cl);
        }
    }
    drover_cluster_clear(&cl);
    if (rc == 0) {
        drover_status_clear(&s);
    }
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}

// ------------------------------------------------------------ security

#define AUDIT_USAGE                                                            \
    "usage: drover audit [--since T] [--broker E] [--json]\n"                  \
    "The broker's audit log (admin keys only): handshakes refused, "           \
    "permission\n"                                                             \
    "refusals, model and data set changes, reloads; oldest first. T: "         \
    "seconds since\n"                                                          \
    "1970 (UTC), or a duration back from now: 30s, 15m, 2h, 7d.\n"

// "1700000000" (unix seconds) or "15m" (that long ago) -> unix ms.
static int
since_ms(const char *t, uint64_t *out)
{
    char *end = NULL;
    double v = strtod(t, &end);
    if (end == t || v < 0) {
        return -1;
    }
    double unit = *end == '\0'  ? 0
                  : *end == 's' ? 1
                  : *end == 'm' ? 60
                  : *end == 'h' ? 3600
                  : *end == 'd' ? 86400
                                : -1;
    if (unit < 0 || (*end && end[1])) {
        return -1;
    }
    if (unit == 0) {
        *out = (uint64_t)(v * 1000);
        return 0;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
    double at = now - v * unit * 1000;
    *out = at > 0 ? (uint64_t)at : 0;
    return 0;
}

int
dv_cli_audit(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"since", true, NULL}, {"broker", true, NULL}, {"json", false, NULL},
        {"help", false, NULL}, {NULL, false, NULL},
    };
    size_t n_pos;
    int rc = dv_cli_parse_usage(argc, argv, opts, NULL, 0, &n_pos, AUDIT_USAGE);
    if (rc >= 0) {
        return rc;
    }
    uint64_t since = 0;
    const char *t = dv_cli_get(opts, "since");
    if (t && since_ms(t, &since) != 0) {
        fprintf(stderr, "drover: --since %s: unix seconds, or 30s/15m/2h/7d\n",
                t);
        return DV_CLI_USAGE;
    }
    drover_t *d = NULL;
    if ((rc = dv_cli_connect(opts, &d)) != 0) {
        return rc;
    }
    drover_error_t err = {0};
    drover_audit_entry_t *e = NULL;
    size_t n = 0;
    bool more = false;
    rc = drover_audit(d, since, &e, &n, &more, &err);
    bool json = dv_cli_get(opts, "json") != NULL;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (json) {
            printf("{\"seq\":%" PRIu64 ",\"unix_ms\":%" PRIu64 ",\"key\":",
                   e[i].seq, e[i].unix_ms);
            dv_cli_json_str(stdout, e[i].key);
            printf(",\"action\":");
            dv_cli_json_str(stdout, e[i].action);
            printf(",\"object\":");
            dv_cli_json_str(stdout, e[i].object);
            printf(",\"outcome\":");
            dv_cli_json_str(stdout, e[i].outcome);
            printf("}\n");
        } else {
            time_t secs = (time_t)(e[i].unix_ms / 1000);
            struct tm tm;
            char when[32];
            gmtime_r(&secs, &tm);
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%SZ", &tm);
            printf("%-6" PRIu64 " %s  %-12s %-14s %s: %s\n", e[i].seq, when,
                   e[i].key[0] ? e[i].key : "-", e[i].action, e[i].object,
                   e[i].outcome);
        }
    }
    if (rc == 0 && more && !json) {
        printf("(older entries left out: use --since)\n");
    }
    free(e);
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}

#define ADMIN_USAGE                                                            \
    "usage: drover admin reload [--broker E] [--json]\n"                       \
    "       drover admin member add ID HOST:PORT [--broker E] [--json]\n"      \
    "       drover admin member remove ID [--broker E] [--json]\n"             \
    "Reload the broker's authorized keys (as SIGHUP does; admin keys "         \
    "only). A key\n"                                                           \
    "removed from the folder is refused from its connection's next "           \
    "message on.\n"                                                            \
    "member add/remove: change a broker group's members (a new member's "      \
    "broker joins\n"                                                           \
    "the group as drover-broker(8) says); answered once the change is "        \
    "committed.\n"

// `admin member add ID HOST:PORT` / `admin member remove ID`.
static int
admin_member(const dv_cli_opt_t *opts, const char *const *pos, size_t n_pos)
{
    bool add = n_pos == 4 && strcmp(pos[1], "add") == 0;
    bool remove = n_pos == 3 && strcmp(pos[1], "remove") == 0;
    char *end = NULL;
    unsigned long long id = add || remove ? strtoull(pos[2], &end, 10) : 0;
    if ((!add && !remove) || id == 0 || !end || *end ||
        (add && !strchr(pos[3], ':'))) {
        fputs(ADMIN_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    drover_t *d = NULL;
    int rc = dv_cli_connect(opts, &d);
    if (rc != 0) {
        return rc;
    }
    drover_error_t err = {0};
    rc = add ? drover_member_add(d, id, pos[3], &err)
             : drover_member_remove(d, id, &err);
    if (rc == 0) {
        printf(dv_cli_get(opts, "json") ? "{\"member\":%llu,\"%s\":true}\n"
                                        : "member %llu %s\n",
               id, add ? "added" : "removed");
    }
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}

int
dv_cli_admin(int argc, char **argv)
{
    dv_cli_opt_t opts[] = {
        {"broker", true, NULL},
        {"json", false, NULL},
        {"help", false, NULL},
        {NULL, false, NULL},
    };
    const char *pos[4] = {NULL};
    size_t n_pos = 0;
    int rc = dv_cli_parse_usage(argc, argv, opts, pos, 4, &n_pos, ADMIN_USAGE);
    if (rc >= 0) {
        return rc;
    }
    if (n_pos >= 1 && strcmp(pos[0], "member") == 0) {
        return admin_member(opts, pos, n_pos);
    }
    if (n_pos != 1 || strcmp(pos[0], "reload") != 0) {
        fputs(ADMIN_USAGE, stderr);
        return DV_CLI_USAGE;
    }
    drover_t *d = NULL;
    if ((rc = dv_cli_connect(opts, &d)) != 0) {
        return rc;
    }
    drover_error_t err = {0};
    size_t keys = 0;
    rc = drover_admin_reload(d, &keys, &err);
    if (rc == 0) {
        printf(dv_cli_get(opts, "json") ? "{\"keys\":%zu}\n"
                                        : "reloaded: %zu authorized keys\n",
               keys);
    }
    drover_destroy(&d);
    return rc ? dv_cli_fail_d(&err) : DV_CLI_OK;
}
