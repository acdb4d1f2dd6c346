// dv_monitor — counters, histograms, /metrics and /api/status (see
// dv_monitor.h).
#include "dv_monitor.h"

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dv_broker_int.h"
#include "dv_hash.h"
#include "dv_limits.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_prom.h"
#include "dv_sched.h"

// ------------------------------------------------------------- series

// The families counted from events. Labels are joined with '\x1f' in a
// series' key; a family's series share its label names.
typedef enum {
    F_SUBMITTED,  // counter {queue, kind}
    F_FINISHED,   // counter {queue, kind, state}
    F_WAIT,       // histogram {kind}
    F_RUN,        // histogram {kind, model}
    F_BATCH,      // histogram {}
    F_COMMIT,     // histogram {}
    F_COMMIT_ERR, // counter {}
    F_REFUSED,    // counter {reason}
    N_FAMILIES
} family_t;

static const struct {
    const char *name, *type, *help;
    const char *labels[3];
    size_t n_labels;
    const double *bounds; // histograms
    const size_t *n_bounds;
} s_families[N_FAMILIES] = {
    [F_SUBMITTED] = {"drover_jobs_submitted_total",
                     "counter",
                     "Jobs accepted, by queue and kind.",
                     {"queue", "kind"},
                     2,
                     NULL,
                     NULL},
    [F_FINISHED] = {"drover_jobs_finished_total",
                    "counter",
                    "Jobs ended, by queue, kind and final state (done, "
                    "failed, expired, cancelled).",
                    {"queue", "kind", "state"},
                    3,
                    NULL,
                    NULL},
    [F_WAIT] = {"drover_job_queue_wait_seconds",
                "histogram",
                "Time from submit to a job's first run, by kind.",
                {"kind"},
                1,
                dv_hist_seconds,
                &dv_hist_seconds_n},
    [F_RUN] = {"drover_job_run_seconds",
               "histogram",
               "Run time of a job's last attempt, by kind and (infer, "
               "evaluate) model.",
               {"kind", "model"},
               2,
               dv_hist_seconds,
               &dv_hist_seconds_n},
    [F_BATCH] = {"drover_infer_batch_rows",
                 "histogram",
                 "Rows in each forward pass workers ran.",
                 {NULL},
                 0,
                 dv_hist_rows,
                 &dv_hist_rows_n},
    [F_COMMIT] = {"drover_store_commit_seconds",
                  "histogram",
                  "Group commits to the store (one fsync each): latency.",
                  {NULL},
                  0,
                  dv_hist_seconds,
                  &dv_hist_seconds_n},
    [F_COMMIT_ERR] = {"drover_store_commit_errors_total",
                      "counter",
                      "Group commits that failed (submits refused).",
                      {NULL},
                      0,
                      NULL,
                      NULL},
    [F_REFUSED] = {"drover_handshakes_refused_total",
                   "counter",
                   "Connections and messages refused by authentication, by "
                   "reason.",
                   {"reason"},
                   1,
                   NULL,
                   NULL},
};

typedef struct {
    char *key; // family byte, then labels joined by \x1f (owned); NULL: free
    uint32_t hash;
    uint64_t count;  // counters
    dv_hist_t *hist; // histograms (owned)
} series_t;

#define SLOTS (2 * DV_MAX_METRIC_SERIES) // open addressing, power of two

// A series' key: the family byte, then each label after a separator.
#define KEY_MAX (4 * (DV_MAX_WIRE_NAME + 2))

struct dv_monitor {
    series_t *slots;
    size_t n_series;
    // The series each family found last, with its label values: a job's
    // labels are those of the jobs around it (a pass's jobs share queue,
    // kind and model), so most lookups end here, comparing the values in
    // place, without building a key, hashing or probing.
    struct {
        char values[3][DV_MAX_WIRE_NAME + 1];
        series_t *s; // NULL: none yet
    } last[N_FAMILIES];
    char *data_dir; // owned; NULL: memory only
    time_t started; // wall clock at open
};

dv_monitor_t *
dv_monitor_new(const char *data_dir)
{
    dv_monitor_t *self = dv_calloc(1, sizeof *self);
    self->slots = dv_calloc(SLOTS, sizeof *self->slots);
    self->data_dir = data_dir ? dv_strdup(data_dir) : NULL;
    self->started = time(NULL);
    return self;
}

void
dv_monitor_destroy(dv_monitor_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_monitor_t *self = *self_p;
    for (size_t i = 0; i < SLOTS; i++) {
        free(self->slots[i].key);
        free(self->slots[i].hist);
    }
    free(self->slots);
    free(self->data_dir);
    free(self);
    *self_p = NULL;
}

static uint32_t
fnv1a(const char *s, size_t n)
{
    return (uint32_t)dv_hash_bytes(s, n, DV_HASH_BYTES_INIT);
}

// The series with this key (n bytes, NUL-terminated) of family f, made on
// first use.
static series_t *
lookup(dv_monitor_t *self, family_t f, const char *key, size_t n)
{
    uint32_t h = fnv1a(key, n);
    for (size_t i = h & (SLOTS - 1);; i = (i + 1) & (SLOTS - 1)) {
        series_t *s = &self->slots[i];
        if (!s->key) {
            s->key = dv_strdup(key);
            s->hash = h;
            if (s_families[f].bounds) {
                s->hist = dv_calloc(1, sizeof *s->hist);
                dv_hist_init(s->hist, s_families[f].bounds,
                             *s_families[f].n_bounds);
            }
            self->n_series++;
            return s;
        }
        if (s->hash == h && strcmp(s->key, key) == 0) {
            return s;
        }
    }
}

// The series of family f with these label values (created on first use;
// past DV_MAX_METRIC_SERIES, every value becomes "_other").
static series_t *
series(dv_monitor_t *self, family_t f, const char *const *values)
{
    bool full = self->n_series >= DV_MAX_METRIC_SERIES;
    size_t n_labels = s_families[f].n_labels;
    const char *v[3];
    size_t i = 0;
    for (; i < n_labels; i++) {
        v[i] = full ? "_other" : values[i] ? values[i] : "";
    }
    // The last one's values, compared where they lie: building the key
    // first cost ~7% of the broker at 1-row serving (perf: the compare's
    // wide load waited on the key's byte stores just made).
    if (self->last[f].s) {
        for (i = 0; i < n_labels; i++) {
            if (strncmp(v[i], self->last[f].values[i], DV_MAX_WIRE_NAME)) {
                break;
            }
        }
        if (i == n_labels) {
            return self->last[f].s;
        }
    }
    char key[KEY_MAX];
    size_t n = 0;
    key[n++] = (char)('A' + f);
    for (i = 0; i < n_labels; i++) {
        size_t l = strnlen(v[i], DV_MAX_WIRE_NAME);
        key[n++] = '\x1f';
        memcpy(key + n, v[i], l);
        n += l;
        memcpy(self->last[f].values[i], v[i], l);
        self->last[f].values[i][l] = '\0';
    }
    key[n] = '\0';
    series_t *s = lookup(self, f, key, n);
    self->last[f].s = s;
    return s;
}

void
dv_monitor_submitted(dv_monitor_t *self, const char *queue, const char *kind)
{
    if (self) {
        series(self, F_SUBMITTED, (const char *[]){queue, kind})->count++;
    }
}

void
dv_monitor_started(dv_monitor_t *self, const char *kind, double wait_s)
{
    if (self) {
        dv_hist_observe(series(self, F_WAIT, (const char *[]){kind})->hist,
                        wait_s < 0 ? 0 : wait_s);
    }
}

void
dv_monitor_finished(dv_monitor_t *self,
                    const char *queue,
                    const char *kind,
                    const char *model,
                    const char *state,
                    double run_s)
{
    if (!self) {
        return;
    }
    series(self, F_FINISHED, (const char *[]){queue, kind, state})->count++;
    if (run_s >= 0) {
        dv_hist_observe(
            series(self, F_RUN, (const char *[]){kind, model ? model : ""})
                ->hist,
            run_s);
    }
}

void
dv_monitor_batch(dv_monitor_t *self, uint32_t rows)
{
    if (self) {
        dv_hist_observe(series(self, F_BATCH, NULL)->hist, rows);
    }
}

void
dv_monitor_commit(dv_monitor_t *self, double seconds, int rc)
{
    if (self) {
        dv_hist_observe(series(self, F_COMMIT, NULL)->hist, seconds);
        if (rc) {
            series(self, F_COMMIT_ERR, NULL)->count++;
        }
    }
}

void
dv_monitor_refused(dv_monitor_t *self, const char *why)
{
    if (!self) {
        return;
    }
    // A bounded set of reasons, from the text dv_auth gives.
    const char *reason =
        strstr(why, "handshake") ? "handshake"
        : strstr(why, "not authorized") || strstr(why, "unknown key")
            ? "unknown_key"
        : strstr(why, "revoked")                          ? "revoked"
        : strstr(why, "limit") || strstr(why, "too many") ? "limit"
                                                          : "other";
    series(self, F_REFUSED, (const char *[]){reason})->count++;
}

// ------------------------------------------------------------- state

// A queue's jobs in each state now, and how long its oldest has waited.
typedef struct {
    dv_queue_now_t now; // jobs in each state
    double oldest_s;    // oldest job waiting (0: none)
} qstate_t;

// Every queue's state: st[i] for self->qbytes[i].
static qstate_t *
queue_states(dv_broker_t *b)
{
    qstate_t *st = dv_calloc(b->n_qbytes ? b->n_qbytes : 1, sizeof *st);
    for (size_t q = 0; q < b->n_qbytes; q++) {
        st[q].now = dv_broker_queue_now(b, &b->qbytes[q]);
    }
    // The oldest job waiting per queue: one pass over the jobs table.
    uint64_t now = dv_broker_unix_ms_now();
    for (size_t k = 0; k < b->n_buckets; k++) {
        for (const job_t *j = b->jobs[k]; j; j = j->next) {
            bool running = false;
            uint32_t attempts = 0;
            if (j->cancelled || !j->queue ||
                dv_sched_job(b->sched, j->id, &running, &attempts) != 0 ||
                running) {
                continue;
            }
            for (size_t q = 0; q < b->n_qbytes; q++) {
                if (strcmp(j->queue, b->qbytes[q].name) == 0) {
                    double age = j->submit_unix && now > j->submit_unix
                                     ? (double)(now - j->submit_unix) / 1000
                                     : 0;
                    if (age > st[q].oldest_s) {
                        st[q].oldest_s = age;
                    }
                    break;
                }
            }
        }
    }
    return st;
}

// This process: CPU seconds, resident bytes, open descriptors.
static void
process_figures(double *cpu_s, double *rss, double *fds, double *max_fds)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
             (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    *rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f && fscanf(f, "%ld %ld", &pages, &res) == 2) {
        *rss = (double)res * (double)sysconf(_SC_PAGESIZE);
    }
    if (f) {
        fclose(f);
    }
    *fds = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));) {
        *fds += e->d_name[0] != '.';
    }
    if (d) {
        closedir(d);
        *fds -= 1; // the descriptor reading the folder
    }
    struct rlimit rl;
    *max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (double)rl.rlim_cur : 0;
}

static double
store_bytes(const dv_monitor_t *self)
{
    if (!self->data_dir) {
        return 0;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/store/data.mdb", self->data_dir);
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_size : 0;
}

// ------------------------------------------------------------- /metrics

static void
gauge(dv_prom_t *p, const char *name, const char *help, double v)
{
    dv_prom_family(p, name, "gauge", help);
    dv_prom_sample(p, name, NULL, 0, v);
}

static void
render_events(const dv_monitor_t *self, dv_prom_t *p)
{
    for (int f = 0; f < N_FAMILIES; f++) {
        dv_prom_family(p, s_families[f].name,
                       s_families[f].bounds ? "histogram" : s_families[f].type,
                       s_families[f].help);
        for (size_t i = 0; i < SLOTS; i++) {
            const series_t *s = &self->slots[i];
            if (!s->key || s->key[0] != (char)('A' + f)) {
                continue;
            }
            // split the key back into label pairs
            char vals[3][DV_MAX_WIRE_NAME + 1] = {"", "", ""};
            const char *k = s->key + 1;
            for (size_t l = 0; l < s_families[f].n_labels && *k; l++) {
                k++; // the separator
                size_t n = strcspn(k, "\x1f");
                snprintf(vals[l], sizeof vals[l], "%.*s", (int)n, k);
                k += n;
            }
            const char *labels[6];
            for (size_t l = 0; l < s_families[f].n_labels; l++) {
                labels[2 * l] = s_families[f].labels[l];
                labels[2 * l + 1] = vals[l];
            }
            if (s->hist) {
                dv_prom_hist(p, s_families[f].name, labels,
                             s_families[f].n_labels, s->hist);
            } else {
                dv_prom_sample(p, s_families[f].name, labels,
                               s_families[f].n_labels, (double)s->count);
            }
        }
    }
}

static void
render_queues(dv_broker_t *b, dv_prom_t *p)
{
    qstate_t *st = queue_states(b);
    dv_prom_family(p, "drover_queue_jobs", "gauge",
                   "Jobs in each queue now, by state.");
    for (size_t q = 0; q < b->n_qbytes; q++) {
        const struct {
            const char *state;
            size_t n;
        } rows[] = {{"queued", st[q].now.queued},
                    {"running", st[q].now.running},
                    {"retrying", st[q].now.retrying},
                    {"dead", st[q].now.dead}};
        for (size_t r = 0; r < 4; r++) {
            const char *l[] = {"queue", b->qbytes[q].name, "state",
                               rows[r].state};
            dv_prom_sample(p, "drover_queue_jobs", l, 2, (double)rows[r].n);
        }
    }
    dv_prom_family(p, "drover_queue_oldest_waiting_seconds", "gauge",
                   "Age of the oldest job waiting in each queue (0: none).");
    for (size_t q = 0; q < b->n_qbytes; q++) {
        const char *l[] = {"queue", b->qbytes[q].name};
        dv_prom_sample(p, "drover_queue_oldest_waiting_seconds", l, 1,
                       st[q].oldest_s);
    }
    dv_prom_family(p, "drover_queue_bytes", "gauge",
                   "Payload bytes of each queue's unfinished jobs.");
    for (size_t q = 0; q < b->n_qbytes; q++) {
        const char *l[] = {"queue", b->qbytes[q].name};
        dv_prom_sample(p, "drover_queue_bytes", l, 1,
                       (double)b->qbytes[q].bytes);
    }
    free(st);
}

// Each result stream consumer's lag (at most DV_MAX_CONSUMERS series):
// the results of its queue past its position. Kafka's consumer lag, the
// figure a stream's operator watches.
static void
render_consumers(dv_broker_t *b, dv_prom_t *p)
{
    dv_prom_family(p, "drover_consumer_lag", "gauge",
                   "Results of the queue past each stream consumer's "
                   "acknowledged position (its queue's last seq - acked).");
    for (size_t i = 0; i < b->n_cursors; i++) {
        const cursor_t *c = &b->cursors[i];
        const qbytes_t *q = &b->qbytes[c->qidx - 1];
        uint64_t last = q->next_seq ? q->next_seq - 1 : 0;
        const char *l[] = {"queue", q->name, "consumer", c->consumer};
        dv_prom_sample(p, "drover_consumer_lag", l, 2,
                       (double)(last > c->acked ? last - c->acked : 0));
    }
}

static void
render_workers(dv_broker_t *b, dv_prom_t *p)
{
    size_t ready = 0, draining = 0, slots = 0, busy = 0;
    for (size_t i = 0; i < b->n_workers; i++) {
        const worker_t *w = &b->workers[i];
        draining += w->draining;
        ready += !w->draining;
        slots += w->capacity;
        busy += dv_sched_worker_running(b->sched, w->handle);
    }
    dv_prom_family(p, "drover_workers", "gauge",
                   "Workers connected, by state.");
    dv_prom_sample(p, "drover_workers", (const char *[]){"state", "ready"}, 1,
                   (double)ready);
    dv_prom_sample(p, "drover_workers", (const char *[]){"state", "draining"},
                   1, (double)draining);
    dv_prom_family(p, "drover_worker_slots", "gauge",
                   "Job slots (credits) of all workers, by state.");
    dv_prom_sample(p, "drover_worker_slots", (const char *[]){"state", "busy"},
                   1, (double)busy);
    dv_prom_sample(p, "drover_worker_slots", (const char *[]){"state", "total"},
                   1, (double)slots);
    static const struct {
        const char *name, *help;
    } per[] = {
        {"drover_worker_running_jobs", "Jobs each worker runs now."},
        {"drover_worker_capacity", "Each worker's job slots."},
        {"drover_worker_models_held", "Model versions each worker holds."},
        {"drover_worker_datasets_held", "Data sets each worker holds."},
        {"drover_worker_last_heartbeat_seconds",
         "Seconds since each worker was last heard from."},
        {"drover_worker_resident_memory_bytes",
         "Each worker process's resident memory (its heartbeats)."},
        {"drover_worker_cpu_seconds_total",
         "Each worker process's CPU time (its heartbeats)."},
    };
    uint64_t now = uv_now(&b->loop);
    dv_prom_family(p, "drover_worker_jobs_total", "counter",
                   "Jobs each worker finished, by outcome (its heartbeats).");
    for (size_t i = 0; i < b->n_workers; i++) {
        const worker_t *w = &b->workers[i];
        dv_prom_sample(p, "drover_worker_jobs_total",
                       (const char *[]){"worker", w->name, "state", "done"}, 2,
                       (double)w->jobs_done);
        dv_prom_sample(p, "drover_worker_jobs_total",
                       (const char *[]){"worker", w->name, "state", "failed"},
                       2, (double)w->jobs_failed);
    }
    for (size_t f = 0; f < sizeof per / sizeof *per; f++) {
        dv_prom_family(p, per[f].name, f == 6 ? "counter" : "gauge",
                       per[f].help);
        for (size_t i = 0; i < b->n_workers; i++) {
            const worker_t *w = &b->workers[i];
            double v =
                f == 0   ? (double)dv_sched_worker_running(b->sched, w->handle)
                : f == 1 ? (double)w->capacity
                : f == 2 ? (double)w->n_models
                : f == 3 ? (double)w->n_datasets
                : f == 4 ? (double)(now - w->last_seen_ms) / 1000
                : f == 5 ? (double)w->rss_bytes
                         : (double)w->cpu_ms / 1000;
            dv_prom_sample(p, per[f].name, (const char *[]){"worker", w->name},
                           1, v);
        }
    }
}

// A broker group member's view of Raft (nothing for a broker alone).
static void
render_group(dv_broker_t *b, dv_prom_t *p)
{
    if (!b->repl) {
        return;
    }
    dv_repl_figures_t f;
    dv_repl_figures(b->repl, &f);
    dv_prom_family(p, "drover_group_role", "gauge",
                   "1 for this member's Raft role (leader, follower, "
                   "candidate, unavailable).");
    dv_prom_sample(p, "drover_group_role", (const char *[]){"role", f.role}, 1,
                   1);
    gauge(p, "drover_group_serving",
          "1 when this member leads and serves (applied its predecessors' "
          "entries).",
          dv_repl_serving(b->repl) ? 1 : 0);
    gauge(p, "drover_group_member_id", "This member's --raft-id.",
          (double)f.id);
    gauge(p, "drover_group_leader_id", "The leader's id (0: none known).",
          (double)f.leader);
    gauge(p, "drover_group_term", "The Raft term.", (double)f.term);
    gauge(p, "drover_group_commit_index", "Raft commit index.",
          (double)f.commit);
    gauge(p, "drover_group_applied_index",
          "Last Raft entry applied to this member's store.", (double)f.applied);
    gauge(p, "drover_group_last_index", "Last Raft entry in this log.",
          (double)f.last);
    dv_prom_family(p, "drover_group_snapshots_total", "counter",
                   "Snapshots this member took since it started (one once "
                   "the log since the last holds as many bytes as it and "
                   "1,024 entries, or 256 MiB).");
    dv_prom_sample(p, "drover_group_snapshots_total", NULL, 0,
                   (double)f.snapshots);
    gauge(p, "drover_group_snapshot_bytes",
          "Size of this member's last snapshot (taken or restored).",
          (double)f.snapshot_bytes);
    gauge(p, "drover_group_log_bytes",
          "Bytes of the entries applied since this member's last snapshot.",
          (double)f.log_bytes);
    dv_prom_family(p, "drover_group_member_lag_entries", "gauge",
                   "Entries a member lacks (the leader's view; 0 "
                   "elsewhere).");
    for (size_t i = 0; i < f.n; i++) {
        char id[24];
        snprintf(id, sizeof id, "%llu", (unsigned long long)f.ids[i]);
        dv_prom_sample(p, "drover_group_member_lag_entries",
                       (const char *[]){"member", id}, 1, (double)f.lag[i]);
    }
}

static void
render_metrics(dv_broker_t *b, dv_http_reply_t *r)
{
    dv_monitor_t *self = b->monitor;
    dv_prom_t *p = dv_prom_new();
    dv_prom_family(p, "drover_build_info", "gauge",
                   "Always 1; the version in a label.");
    dv_prom_sample(p, "drover_build_info",
                   (const char *[]){"version", DV_VERSION_STRING}, 1, 1);
    render_events(self, p);
    render_queues(b, p);
    render_workers(b, p);
    render_consumers(b, p);
    gauge(p, "drover_kept_results", "Results kept for result_get.",
          (double)b->n_kept);
    gauge(p, "drover_kept_result_bytes", "Payload bytes of the kept results.",
          (double)b->kept_bytes);
    gauge(p, "drover_dead_letters", "Jobs in the dead-letter queue.",
          (double)b->n_dead);
    gauge(p, "drover_timer_entries",
          "Timed events held: retry backoffs, deadlines, run timeouts "
          "(stale ones are dropped once they double).",
          (double)dv_timeq_size(b->timeq));
    dv_prom_family(p, "drover_dead_letters_dropped_total", "counter",
                   "Dead letters dropped as the oldest past --max-dead or "
                   "--max-dead-bytes since the broker started.");
    dv_prom_sample(p, "drover_dead_letters_dropped_total", NULL, 0,
                   (double)b->dead_dropped);
    gauge(p, "drover_client_connections",
          "Authenticated client and worker connections (CURVE; 0 in plain "
          "mode).",
          (double)dv_auth_connections(b->auth));
    gauge(p, "drover_store_size_bytes",
          "Size of the store's data file (0 without --data).",
          store_bytes(self));
    if (b->disk && dv_disk_free(b->disk) != UINT64_MAX) {
        gauge(p, "drover_data_disk_free_bytes",
              "Free bytes on the data dir's file system at the last check "
              "(each heartbeat).",
              (double)dv_disk_free(b->disk));
    }
    gauge(p, "drover_submits_paused",
          "1 while durable submits are refused for want of disk space "
          "(--submit-free-disk), else 0.",
          b->disk && dv_disk_low(b->disk) ? 1 : 0);
    render_group(b, p);
    size_t n_models = 0;
    dv_registry_list(b->registry, &n_models);
    gauge(p, "drover_model_versions", "Model versions in the registry.",
          (double)n_models);
    double cpu, rss, fds, max_fds;
    process_figures(&cpu, &rss, &fds, &max_fds);
    dv_prom_family(p, "process_cpu_seconds_total", "counter",
                   "User and system CPU time of the broker.");
    dv_prom_sample(p, "process_cpu_seconds_total", NULL, 0, cpu);
    gauge(p, "process_resident_memory_bytes", "Resident memory.", rss);
    gauge(p, "process_open_fds", "Open file descriptors.", fds);
    gauge(p, "process_max_fds", "The descriptor limit.", max_fds);
    gauge(p, "process_start_time_seconds", "Start time, Unix seconds.",
          (double)self->started);
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    r->body = dv_prom_take(p, &r->len);
    dv_prom_destroy(&p);
}

// ------------------------------------------------------------- /api/status

static void
json_str(dv_prom_t *p, const char *s)
{
    dv_prom_raw(p, "\"");
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            dv_prom_printf(p, "\\%c", c);
        } else if (c < 0x20) {
            dv_prom_printf(p, "\\u%04x", c);
        } else {
            dv_prom_printf(p, "%c", c);
        }
    }
    dv_prom_raw(p, "\"");
}

static void
json_strs(dv_prom_t *p, const char *const *v, size_t n)
{
    dv_prom_raw(p, "[");
    for (size_t i = 0; i < n; i++) {
        dv_prom_raw(p, i ? "," : "");
        json_str(p, v[i]);
    }
    dv_prom_raw(p, "]");
}

#define STATUS_RECENT 20 // failures and dead letters the page lists

static void
status_queues(dv_broker_t *b, dv_prom_t *p)
{
    qstate_t *st = queue_states(b);
    dv_prom_raw(p, "\"queues\":[");
    for (size_t q = 0; q < b->n_qbytes; q++) {
        const qbytes_t *qb = &b->qbytes[q];
        dv_prom_raw(p, q ? ",{\"name\":" : "{\"name\":");
        json_str(p, qb->name);
        dv_prom_printf(p,
                       ",\"queued\":%zu,\"running\":%zu,\"retrying\":%zu,"
                       "\"dead\":%zu,\"done\":%" PRIu64 ",\"failed\":%" PRIu64
                       ",\"expired\":%" PRIu64 ",\"cancelled\":%" PRIu64
                       ",\"oldest_waiting_s\":%.3f}",
                       st[q].now.queued, st[q].now.running, st[q].now.retrying,
                       st[q].now.dead, qb->done, qb->failed, qb->expired,
                       qb->cancelled, st[q].oldest_s);
    }
    dv_prom_raw(p, "]");
    free(st);
}

static void
status_workers(dv_broker_t *b, dv_prom_t *p)
{
    uint64_t now = uv_now(&b->loop);
    dv_prom_raw(p, "\"workers\":[");
    for (size_t i = 0; i < b->n_workers; i++) {
        const worker_t *w = &b->workers[i];
        dv_prom_raw(p, i ? ",{\"name\":" : "{\"name\":");
        json_str(p, w->name);
        dv_prom_printf(
            p,
            ",\"running\":%zu,\"capacity\":%" PRIu32
            ",\"state\":\"%s\",\"last_heartbeat_s\":%.3f,\"models\":",
            dv_sched_worker_running(b->sched, w->handle), w->capacity,
            w->draining ? "draining" : "ready",
            (double)(now - w->last_seen_ms) / 1000);
        json_strs(p, (const char *const *)w->models, w->n_models);
        dv_prom_raw(p, ",\"datasets\":");
        json_strs(p, (const char *const *)w->datasets, w->n_datasets);
        // Its compute threads and the jobs on them (1.5 workers; absent
        // for older ones: running counts held jobs, prefetch included).
        if (w->concurrency) {
            dv_prom_printf(p, ",\"concurrency\":%" PRIu32, w->concurrency);
        }
        if (w->computing_known) {
            dv_prom_printf(p, ",\"computing\":%" PRIu32, w->computing);
        }
        dv_prom_raw(p, "}");
    }
    dv_prom_raw(p, "]");
}

static void
status_models(dv_broker_t *b, dv_prom_t *p)
{
    size_t n = 0;
    const dv_model_info_t *v = dv_registry_list(b->registry, &n);
    dv_prom_raw(p, "\"models\":[");
    for (size_t i = 0; i < n; i++) {
        dv_prom_raw(p, i ? ",{\"name\":" : "{\"name\":");
        json_str(p, v[i].name);
        dv_prom_printf(p, ",\"version\":%" PRIu32 ",\"task\":", v[i].version);
        json_str(p, v[i].task);
        const char *aliases[16];
        size_t na = dv_registry_aliases_of(b->registry, v[i].name, v[i].version,
                                           aliases, 16);
        dv_prom_raw(p, ",\"aliases\":");
        json_strs(p, aliases, na);
        dv_prom_raw(p, "}");
    }
    dv_prom_raw(p, "]");
}

static void
status_failures(dv_broker_t *b, dv_prom_t *p)
{
    // The newest failed results: the kept FIFO runs oldest to newest.
    const kept_t *ring[STATUS_RECENT];
    size_t n = 0;
    for (const kept_t *k = b->kept_oldest; k; k = k->newer) {
        if (!k->done) {
            ring[n++ % STATUS_RECENT] = k;
        }
    }
    size_t shown = n < STATUS_RECENT ? n : STATUS_RECENT;
    dv_prom_raw(p, "\"recent_failures\":[");
    for (size_t i = 0; i < shown; i++) {
        const kept_t *k = ring[(n - 1 - i) % STATUS_RECENT];
        dv_prom_printf(p,
                       "%s{\"job\":%" PRIu64 ",\"unix_ms\":%" PRIu64
                       ",\"error\":\"%s\",\"text\":",
                       i ? "," : "", k->id, k->unix_ms, dv_err_name(k->code));
        json_str(p, k->text ? k->text : "");
        dv_prom_raw(p, ",\"queue\":");
        json_str(p, k->qidx && k->qidx <= b->n_qbytes
                        ? b->qbytes[k->qidx - 1].name
                        : "");
        dv_prom_raw(p, "}");
    }
    dv_prom_raw(p, "],\"dead_letters\":[");
    size_t first = b->n_dead > STATUS_RECENT ? b->n_dead - STATUS_RECENT : 0;
    for (size_t i = b->n_dead; i-- > first;) {
        const dead_t *d = &b->dead[i];
        dv_prom_printf(p,
                       "%s{\"job\":%" PRIu64 ",\"unix_ms\":%" PRIu64
                       ",\"error\":\"%s\",\"queue\":",
                       i + 1 == b->n_dead ? "" : ",", d->job->id, d->unix_ms,
                       dv_err_name(d->code));
        json_str(p, d->job->queue);
        dv_prom_raw(p, ",\"text\":");
        json_str(p, d->text ? d->text : "");
        dv_prom_raw(p, "}");
    }
    dv_prom_printf(p, "],\"dead_total\":%zu", b->n_dead);
}

static void
render_status(dv_broker_t *b, dv_http_reply_t *r)
{
    dv_prom_t *p = dv_prom_new();
    dv_prom_printf(p,
                   "{\"broker\":\"drover-broker %s\",\"unix_ms\":%" PRIu64
                   ",\"client_endpoint\":",
                   DV_VERSION_STRING, dv_broker_unix_ms_now());
    json_str(p, b->client_ep);
    dv_prom_printf(p, ",\"kept_results\":%zu,\"next_job\":%" PRIu64 ",",
                   b->n_kept, b->next_job);
    status_queues(b, p);
    dv_prom_raw(p, ",");
    status_workers(b, p);
    dv_prom_raw(p, ",");
    status_models(b, p);
    dv_prom_raw(p, ",");
    status_failures(b, p);
    dv_prom_raw(p, "}\n");
    r->status = 200;
    r->content_type = "application/json";
    r->body = dv_prom_take(p, &r->len);
    dv_prom_destroy(&p);
}

void
dv_monitor_http(void *arg,
                const char *path,
                const char *query,
                dv_http_reply_t *r)
{
    (void)query;
    dv_broker_t *b = arg;
    if (strcmp(path, "/metrics") == 0) {
        render_metrics(b, r);
    } else if (strcmp(path, "/api/status") == 0) {
        render_status(b, r);
    } else if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        r->status = 200;
        r->content_type = "text/html; charset=utf-8";
        r->body = dv_strdup(dv_status_page_html);
    } else if (strcmp(path, "/healthz") == 0) {
        r->status = 200;
        r->body = dv_strdup("ok\n");
    } else {
        r->body = dv_strdup("not found: /, /api/status, /metrics, /healthz\n");
    }
}
