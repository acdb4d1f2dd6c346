// dv-bench-group — broker group (--raft) figures on this host (never run by
// tests; `make bench` runs it). Figures only, no assertions:
//   repl: durable W1 (20,000 echo jobs of 100 bytes, durability commit, 1
//       async producer with a window of 2,000 on the members' client
//       endpoint, 2 drover-workers --concurrency 64) against one broker
//       with --data and against the leader of a 3-member group (each with
//       --data, raft over tcp 127.0.0.1, default timeouts; the workers get
//       the group's list), alternating after one warm-up round each,
//       REPL_RUNS rounds: the median jobs/s of each, and group/single as
//       the median of the rounds' ratios (each round's two runs seconds
//       apart, so a neighbour slowing the host for a while moves both;
//       the lowest and highest ratio beside it) (goal >= 0.5).
//   failover: the same group under steady load (a producer thread sending
//       LOAD_RATE jobs/s to the leader); KILLS times: kill -9 the leader, the
//       time from the kill to the first submit accepted by another member
//       (every survivor is sent a submit each PROBE_MS), then the killed
//       member restarted with the same command and waited for until it has
//       applied what the leader had committed: p50, p90, max (goal p50 <=
//       2 s).
//   single: W1 (in-memory and durable) through one broker without --raft,
//       fresh per run, median of 3; beside the same runs with an older
//       build's binaries when --baseline-bin-dir names one (e.g. the commit
//       before broker groups): what the group code costs a lone broker.
// Members and brokers listen on ipc:// in a temporary folder, raft on
// 127.0.0.1 ports found free; their stderr goes to log files there (kept
// and named when something fails). Processes are stopped by their PIDs
// only. Writes JSON (--out, default bench/results/group.json).
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "dv_addr.h"
#include "dv_bench.h"
#include "dv_proto.h"
#include "dv_wire.h"

#define W1_JOBS    20000
#define PAYLOAD    100
#define RUNS       3
#define REPL_RUNS  7    // repl: rounds (one run is ~0.5 s, noisy on 2 cores)
#define WINDOW     2000 // W1: jobs in flight before waiting for results
#define MEMBERS    3
#define WORKERS    2
#define KILLS      10
#define PROBE_MS   10   // failover: a submit to every survivor this often
#define LOAD_RATE  500  // failover: steady load, jobs/s to the leader
#define FAILOVER_S 15.0 // failover: give up on one kill after this long
#define CATCHUP_S  15.0 // restarted member: give up catching up after this
#define REPLY_S    10.0 // W1: no reply this long ends the bench

// ------------------------------------------------------------- messages

// SUBMIT of a PAYLOAD-byte echo job to queue "bench".
static void
send_submit(void *sock, uint64_t rid)
{
    static const char payload[PAYLOAD] = {'x'};
    dv_bench_submit(sock, rid, "bench", payload, PAYLOAD);
}

// One message waiting on sock (none: NULL), decoded; caller destroys it.
static dv_msg_t *
recv_now(void *sock)
{
    dv_wire_msg_t in;
    if (dv_wire_recv(sock, false, &in) != 1) {
        return NULL;
    }
    dv_msg_t *m = NULL;
    dv_error_t err = {0};
    if (dv_msg_decode(&m, zmq_msg_data(&in.header), zmq_msg_size(&in.header),
                      in.frames, in.n_payload, NULL, &err) != 0) {
        m = NULL;
    }
    dv_wire_msg_close(&in);
    return m;
}

// The next message within secs (none: NULL).
static dv_msg_t *
recv_within(void *sock, double secs)
{
    double end = dv_bench_now_s() + secs;
    for (;;) {
        dv_msg_t *m = recv_now(sock);
        double left = end - dv_bench_now_s();
        if (m || left <= 0) {
            return m;
        }
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, (long)(left * 1000) + 1);
    }
}

// W1: n jobs through the broker behind sock; jobs/s, or -1 when a submit
// was refused or replies stopped.
static double
w1(void *sock, int n)
{
    double t0 = dv_bench_now_s();
    int sent = 0, results = 0;
    while (results < n) {
        while (sent < n && sent - results < WINDOW) {
            send_submit(sock, (uint64_t)++sent);
        }
        dv_msg_t *m = recv_within(sock, REPLY_S);
        bool got = m != NULL;
        dv_msg_type_t t = got ? dv_msg_type(m) : DV_MSG_ERROR;
        dv_msg_destroy(&m);
        if (t == DV_MSG_RESULT) {
            results++;
        } else if (t != DV_MSG_ACCEPTED) {
            fprintf(stderr, "dv-bench-group: W1 got %s\n",
                    got ? "an error" : "no reply in 10 s");
            return -1;
        }
    }
    return n / (dv_bench_now_s() - t0);
}

// A member's cluster reply: leader id, applied and commit index (0s when
// it did not answer within secs).
typedef struct {
    uint64_t leader, applied, commit;
} cluster_t;

static cluster_t
cluster_of(void *ctx, const char *endpoint, double secs)
{
    cluster_t c = {0, 0, 0};
    void *s = dv_bench_dealer(ctx, endpoint);
    dv_msgw_t *w = dv_msgw_new(DV_MSG_CLUSTER, 1);
    size_t hlen;
    const uint8_t *h = dv_msgw_bytes(w, &hlen);
    dv_wire_send(s, NULL, 0, h, hlen, NULL, 0);
    dv_msgw_destroy(&w);
    dv_msg_t *m = recv_within(s, secs);
    if (m && dv_msg_type(m) == DV_MSG_CLUSTER) {
        dv_error_t err = {0};
        dv_msg_uint_or(m, "leader", 0, &c.leader, &err);
        dv_msg_uint_or(m, "applied", 0, &c.applied, &err);
        dv_msg_uint_or(m, "commit", 0, &c.commit, &err);
    }
    dv_msg_destroy(&m);
    zmq_close(s);
    return c;
}

// ------------------------------------------------------------ processes

// dv_bench_spawn with stderr appended to log.
static dv_bench_proc_t
spawn_logged(const char *bin, const char *const *args, const char *log)
{
    int saved = dup(2);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        dup2(fd, 2);
        close(fd);
    }
    dv_bench_proc_t p = dv_bench_spawn(bin, args);
    dup2(saved, 2);
    close(saved);
    return p;
}

// The last error line (" E ") of a log, from its message on; "" if none.
static void
last_error(const char *log, char *out, size_t size)
{
    char line[1024];
    FILE *f = fopen(log, "r");
    out[0] = '\0';
    while (f && fgets(line, sizeof line, f)) {
        char *e = strstr(line, " E ");
        if (e) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(out, size, "%s", e + 3);
        }
    }
    if (f) {
        fclose(f);
    }
}

// False (and reaped) when p has exited.
static bool
alive(dv_bench_proc_t *p)
{
    if (p->pid && waitpid(p->pid, NULL, WNOHANG) == p->pid) {
        close(p->out);
        p->pid = 0;
        p->out = -1;
    }
    return p->pid != 0;
}

// kill -9 by PID and reap it.
static void
kill9(dv_bench_proc_t *p)
{
    if (p->pid) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        close(p->out);
        p->pid = 0;
        p->out = -1;
    }
}

typedef struct {
    char cep[300], wep[300]; // client and worker endpoints (ipc)
    char data[300], log[300];
    char id[12], raft[64]; // --raft-id, --raft 127.0.0.1:PORT
    dv_bench_proc_t proc;
} member_t;

typedef struct {
    const char *bin_dir;
    char dir[64];        // temporary folder
    char peers[256];     // --raft-peers
    char weps[1000];     // the workers' --broker list
    member_t m[MEMBERS]; // raft ids 1..MEMBERS
    dv_bench_proc_t w[WORKERS];
    bool raft;    // false: one broker (m[0]) without --raft
    bool durable; // --data
} brokers_t;

static int
member_start(brokers_t *b, int i)
{
    member_t *m = &b->m[i];
    char bin[4200], line[1100];
    snprintf(bin, sizeof bin, "%s/drover-broker", b->bin_dir);
    const char *args[24] = {"--client", m->cep,         "--worker",
                            m->wep,     "--max-queued", "2000000"};
    int n = 6;
    if (b->durable) {
        args[n++] = "--data";
        args[n++] = m->data;
    }
    if (b->raft) {
        const char *r[] = {"--raft-id", m->id,          "--raft",
                           m->raft,     "--raft-peers", b->peers};
        for (int k = 0; k < 6; k++) {
            args[n++] = r[k];
        }
    }
    args[n] = NULL;
    m->proc = spawn_logged(bin, args, m->log);
    if (dv_bench_ready(&m->proc, line, sizeof line) != 0) {
        fprintf(stderr, "dv-bench-group: broker %d did not start (log %s)\n",
                i + 1, m->log);
        return -1;
    }
    return 0;
}

static int
workers_start(brokers_t *b)
{
    char bin[4200], line[1100], log[300];
    snprintf(bin, sizeof bin, "%s/drover-worker", b->bin_dir);
    snprintf(log, sizeof log, "%s/workers.log", b->dir);
    for (int i = 0; i < WORKERS; i++) {
        const char *args[] = {"--broker", b->weps,    "--concurrency",
                              "64",       "--queues", "bench",
                              NULL};
        b->w[i] = spawn_logged(bin, args, log);
        if (dv_bench_ready(&b->w[i], line, sizeof line) != 0) {
            fprintf(stderr,
                    "dv-bench-group: a worker did not start (log "
                    "%s)\n",
                    log);
            return -1;
        }
    }
    return 0;
}

// The index of the member that accepts a submit within secs (-1: none).
// Probes every member in live[] (NULL: all) each PROBE_MS; t_accept gets
// when the first accepted reply came.
static int
probe_leader(
    void *ctx, brokers_t *b, const bool *live, double secs, double *t_accept)
{
    void *s[MEMBERS] = {NULL};
    for (int i = 0; i < MEMBERS; i++) {
        s[i] = !live || live[i] ? dv_bench_dealer(ctx, b->m[i].cep) : NULL;
    }
    int leader = -1;
    uint64_t rid = 0;
    double end = dv_bench_now_s() + secs, next = 0;
    while (leader < 0 && dv_bench_now_s() < end) {
        if (dv_bench_now_s() >= next) {
            next = dv_bench_now_s() + PROBE_MS / 1000.0;
            for (int i = 0; i < MEMBERS; i++) {
                if (s[i]) {
                    send_submit(s[i], ++rid);
                }
            }
        }
        zmq_pollitem_t it[MEMBERS];
        int n = 0;
        for (int i = 0; i < MEMBERS; i++) {
            if (s[i]) {
                it[n++] = (zmq_pollitem_t){s[i], 0, ZMQ_POLLIN, 0};
            }
        }
        zmq_poll(it, n, 1);
        for (int i = 0; leader < 0 && i < MEMBERS; i++) {
            dv_msg_t *m;
            while (s[i] && leader < 0 && (m = recv_now(s[i]))) {
                if (dv_msg_type(m) == DV_MSG_ACCEPTED) {
                    *t_accept = dv_bench_now_s();
                    leader = i;
                }
                dv_msg_destroy(&m);
            }
        }
    }
    for (int i = 0; i < MEMBERS; i++) {
        if (s[i]) {
            zmq_close(s[i]);
        }
    }
    return leader;
}

static void
brokers_stop(brokers_t *b)
{
    for (int i = 0; i < WORKERS; i++) {
        dv_bench_reap(&b->w[i]);
    }
    for (int i = 0; i < MEMBERS; i++) {
        dv_bench_reap(&b->m[i].proc);
    }
}

// Start one broker (raft false) or a group, and the workers. Returns the
// serving member's index, or -1 (having said why; brokers_stop and
// brokers_clean either way).
static int
brokers_up(
    void *ctx, brokers_t *b, const char *bin_dir, bool raft, bool durable)
{
    memset(b, 0, sizeof *b);
    b->bin_dir = bin_dir;
    b->raft = raft;
    b->durable = durable;
    snprintf(b->dir, sizeof b->dir, "/tmp/dv-bench-group-XXXXXX");
    if (!mkdtemp(b->dir)) {
        return -1;
    }
    int n = raft ? MEMBERS : 1;
    int ports[MEMBERS];
    if (dv_addr_free_ports(ports, (size_t)n) != 0) {
        return -1;
    }
    size_t pl = 0, wl = 0;
    for (int i = 0; i < n; i++) {
        member_t *m = &b->m[i];
        snprintf(m->cep, sizeof m->cep, "ipc://%s/c%d.sock", b->dir, i + 1);
        snprintf(m->wep, sizeof m->wep, "ipc://%s/w%d.sock", b->dir, i + 1);
        snprintf(m->data, sizeof m->data, "%s/data%d", b->dir, i + 1);
        snprintf(m->log, sizeof m->log, "%s/broker%d.log", b->dir, i + 1);
        snprintf(m->id, sizeof m->id, "%d", i + 1);
        snprintf(m->raft, sizeof m->raft, "127.0.0.1:%d", ports[i]);
        pl += (size_t)snprintf(b->peers + pl, sizeof b->peers - pl, "%s%d=%s",
                               i ? "," : "", i + 1, m->raft);
        wl += (size_t)snprintf(b->weps + wl, sizeof b->weps - wl, "%s%s",
                               i ? "," : "", m->wep);
    }
    for (int i = 0; i < n; i++) {
        if (member_start(b, i) != 0) {
            return -1;
        }
    }
    double t;
    int leader = raft ? probe_leader(ctx, b, NULL, 30, &t) : 0;
    if (leader < 0) {
        fprintf(stderr,
                "dv-bench-group: no member led within 30 s (logs "
                "in %s)\n",
                b->dir);
        return -1;
    }
    return workers_start(b) == 0 ? leader : -1;
}

static void
brokers_clean(brokers_t *b)
{
    if (b->dir[0]) {
        dv_bench_rmtree(b->dir);
        b->dir[0] = '\0';
    }
}

// ------------------------------------------------------------- failover

typedef struct {
    void *ctx;
    brokers_t *b;
    atomic_int target; // member the load goes to
    atomic_bool stop;  // ends the thread
    atomic_long accepted;
} load_t;

// LOAD_RATE submits a second to the current leader; replies drained.
static void *
load_main(void *arg)
{
    load_t *l = arg;
    void *s[MEMBERS];
    for (int i = 0; i < MEMBERS; i++) {
        s[i] = dv_bench_dealer(l->ctx, l->b->m[i].cep);
    }
    uint64_t rid = 0;
    double next = dv_bench_now_s();
    while (!atomic_load(&l->stop)) {
        double now = dv_bench_now_s();
        while (next <= now) {
            send_submit(s[atomic_load(&l->target)], ++rid);
            next += 1.0 / LOAD_RATE;
        }
        for (int i = 0; i < MEMBERS; i++) {
            dv_msg_t *m;
            while ((m = recv_now(s[i]))) {
                if (dv_msg_type(m) == DV_MSG_ACCEPTED) {
                    atomic_fetch_add(&l->accepted, 1);
                }
                dv_msg_destroy(&m);
            }
        }
        dv_bench_sleep_us(1000);
    }
    for (int i = 0; i < MEMBERS; i++) {
        zmq_close(s[i]);
    }
    return NULL;
}

// Wait until member i answers cluster with a leader and has applied the
// commit index that the leader reports now. Seconds it took, -1 on time out.
static double
catch_up(void *ctx, brokers_t *b, int i, int leader)
{
    double t0 = dv_bench_now_s(), end = t0 + CATCHUP_S;
    cluster_t lc = cluster_of(ctx, b->m[leader].cep, CATCHUP_S);
    while (dv_bench_now_s() < end && alive(&b->m[i].proc)) {
        cluster_t c = cluster_of(ctx, b->m[i].cep, 1);
        if (c.leader && c.applied >= lc.commit && lc.commit) {
            return dv_bench_now_s() - t0;
        }
        dv_bench_sleep_us(20000);
    }
    return -1;
}

typedef struct {
    double secs[KILLS];   // kill to first accepted submit, sorted
    int n;                // kills measured
    double catchup_max_s; // slowest restart's catch-up
    long load_accepted;   // load jobs accepted during the kills
} failover_t;

static int
failover(void *ctx,
         brokers_t *b,
         int leader,
         failover_t *f,
         char *why,
         size_t why_size)
{
    load_t l = {.ctx = ctx, .b = b};
    atomic_init(&l.target, leader);
    atomic_init(&l.stop, false);
    atomic_init(&l.accepted, 0);
    pthread_t th;
    pthread_create(&th, NULL, load_main, &l);
    dv_bench_sleep_us(500000); // the load runs before the first kill
    int rc = 0;
    for (int k = 0; rc == 0 && k < KILLS; k++) {
        bool live[MEMBERS];
        for (int i = 0; i < MEMBERS; i++) {
            live[i] = i != leader;
        }
        double t0 = dv_bench_now_s(), t1 = 0;
        kill9(&b->m[leader].proc);
        int next = probe_leader(ctx, b, live, FAILOVER_S, &t1);
        if (next < 0) {
            snprintf(why, why_size,
                     "no new leader %.0f s after kill %d (logs in %s)",
                     FAILOVER_S, k + 1, b->dir);
            rc = -1;
            break;
        }
        f->secs[f->n++] = t1 - t0;
        atomic_store(&l.target, next);
        int dead = leader;
        leader = next;
        double c = -1;
        if (member_start(b, dead) == 0) {
            c = catch_up(ctx, b, dead, leader);
        }
        if (c < 0) {
            char last[300];
            last_error(b->m[dead].log, last, sizeof last);
            snprintf(why, why_size,
                     "after kill %d, member %d did not rejoin (log %s): %s",
                     k + 1, dead + 1, b->m[dead].log, last);
            rc = -1;
        } else if (c > f->catchup_max_s) {
            f->catchup_max_s = c;
        }
        // A stretch of plain load after the rejoin, before the next kill;
        // a member that stopped meanwhile ends the series.
        dv_bench_sleep_us(300000);
        for (int i = 0; rc == 0 && i < MEMBERS; i++) {
            if (!alive(&b->m[i].proc)) {
                char last[300];
                last_error(b->m[i].log, last, sizeof last);
                snprintf(why, why_size,
                         "after kill %d, member %d stopped (log %s): %s", k + 1,
                         i + 1, b->m[i].log, last);
                rc = -1;
            }
        }
    }
    atomic_store(&l.stop, true);
    pthread_join(th, NULL);
    f->load_accepted = atomic_load(&l.accepted);
    qsort(f->secs, (size_t)f->n, sizeof(double), dv_bench_cmp_double);
    return rc;
}

// --------------------------------------------------------------- single

// W1 through one broker without --raft from bin_dir, fresh: jobs/s or -1.
static double
single_w1(void *ctx, const char *bin_dir, bool durable)
{
    brokers_t b;
    double rate = -1;
    if (brokers_up(ctx, &b, bin_dir, false, durable) == 0) {
        void *s = dv_bench_dealer(ctx, b.m[0].cep);
        rate = w1(s, W1_JOBS);
        zmq_close(s);
    }
    brokers_stop(&b);
    brokers_clean(&b);
    return rate;
}

// The median of n figures (sorts v).
static double
median_n(double *v, size_t n)
{
    qsort(v, n, sizeof(double), dv_bench_cmp_double);
    return v[n / 2];
}

static double
median(double *v)
{
    return median_n(v, RUNS);
}

typedef struct {
    double one_w1, grp_w1; // repl: durable W1 medians, 0 when not measured
    double ratio, ratio_lo, ratio_hi; // repl: group/one per round (median)
    failover_t fo;                    // failover: the kills measured
    char fo_error[400]; // why the failover stopped early ("": it did not)
    double sm, sd;      // single: this build, in-memory and durable
    double bm, bd;      // single: the baseline build (0: none given)
} figures_t;

// repl: one durable broker and a group up side by side, W1 alternating.
static int
phase_repl(void *ctx, const char *bin_dir, figures_t *fig)
{
    brokers_t one = {0}, grp = {0};
    double r_one[REPL_RUNS + 1], r_grp[REPL_RUNS + 1], r_x[REPL_RUNS];
    int leader = -1, rc = -1;
    if (brokers_up(ctx, &one, bin_dir, false, true) == 0 &&
        (leader = brokers_up(ctx, &grp, bin_dir, true, true)) >= 0) {
        rc = 0;
    }
    // Round 0 warms both up (connections, first pages of each store).
    for (int r = 0; rc == 0 && r <= REPL_RUNS; r++) {
        void *s1 = dv_bench_dealer(ctx, one.m[0].cep);
        r_one[r] = w1(s1, W1_JOBS);
        zmq_close(s1);
        void *s3 = dv_bench_dealer(ctx, grp.m[leader].cep);
        r_grp[r] = w1(s3, W1_JOBS);
        zmq_close(s3);
        rc = r_one[r] < 0 || r_grp[r] < 0 ? -1 : 0;
        if (rc == 0 && r > 0) {
            r_x[r - 1] = r_grp[r] / r_one[r];
        }
    }
    brokers_stop(&one);
    brokers_stop(&grp);
    if (rc == 0) {
        brokers_clean(&one);
        brokers_clean(&grp);
        fig->one_w1 = median_n(r_one + 1, REPL_RUNS);
        fig->grp_w1 = median_n(r_grp + 1, REPL_RUNS);
        fig->ratio = median_n(r_x, REPL_RUNS);
        fig->ratio_lo = r_x[0];
        fig->ratio_hi = r_x[REPL_RUNS - 1];
        printf("repl: durable W1, %d echo jobs of %d bytes, 1 async producer "
               "(window %d), %d workers (median of %d rounds):\n"
               "  one broker %8.0f jobs/s   %d-member group (leader) %8.0f "
               "jobs/s   group/one %.2f (rounds %.2f-%.2f)\n",
               W1_JOBS, PAYLOAD, WINDOW, WORKERS, REPL_RUNS, fig->one_w1,
               MEMBERS, fig->grp_w1, fig->ratio, fig->ratio_lo, fig->ratio_hi);
        fflush(stdout);
    }
    return rc;
}

// failover: a fresh group's leader killed KILLS times under load. The
// figures of the kills before a failure are kept.
static int
phase_failover(void *ctx, const char *bin_dir, figures_t *fig)
{
    brokers_t grp = {0};
    failover_t *fo = &fig->fo;
    int leader = brokers_up(ctx, &grp, bin_dir, true, true);
    int rc = leader < 0 ? -1
                        : failover(ctx, &grp, leader, fo, fig->fo_error,
                                   sizeof fig->fo_error);
    brokers_stop(&grp);
    if (rc == 0) {
        brokers_clean(&grp);
    }
    if (fo->n > 0) {
        printf("failover: kill -9 of the leader under %d jobs/s, %d kills, "
               "kill to first accepted submit:\n"
               "  p50 %.2f s   p90 %.2f s   max %.2f s   (restarted member "
               "caught up in <= %.2f s; %ld load jobs accepted)\n",
               LOAD_RATE, fo->n, dv_bench_pct(fo->secs, (size_t)fo->n, 0.5),
               dv_bench_pct(fo->secs, (size_t)fo->n, 0.9), fo->secs[fo->n - 1],
               fo->catchup_max_s, fo->load_accepted);
    }
    if (fig->fo_error[0]) {
        printf("failover: stopped early: %s\n", fig->fo_error);
    }
    fflush(stdout);
    return rc;
}

// single: no --raft, this build beside the baseline build.
static int
phase_single(void *ctx,
             const char *bin_dir,
             const char *base_dir,
             figures_t *fig)
{
    double s_mem[RUNS], s_dur[RUNS], b_mem[RUNS], b_dur[RUNS];
    for (int r = 0; r < RUNS; r++) {
        s_mem[r] = single_w1(ctx, bin_dir, false);
        s_dur[r] = single_w1(ctx, bin_dir, true);
        b_mem[r] = base_dir ? single_w1(ctx, base_dir, false) : 0;
        b_dur[r] = base_dir ? single_w1(ctx, base_dir, true) : 0;
        if (s_mem[r] < 0 || s_dur[r] < 0 || b_mem[r] < 0 || b_dur[r] < 0) {
            return -1;
        }
    }
    fig->sm = median(s_mem);
    fig->sd = median(s_dur);
    fig->bm = median(b_mem);
    fig->bd = median(b_dur);
    printf("single: W1 through one broker without --raft (median of %d):\n"
           "  this build: in-memory %8.0f jobs/s   durable %8.0f jobs/s\n",
           RUNS, fig->sm, fig->sd);
    if (base_dir) {
        printf("  baseline:   in-memory %8.0f jobs/s   durable %8.0f jobs/s"
               "   this/baseline %.2f, %.2f\n",
               fig->bm, fig->bd, fig->sm / fig->bm, fig->sd / fig->bd);
    }
    return 0;
}

// a / b, 0 when b is 0 (a figure not measured).
static double
ratio(double a, double b)
{
    return b > 0 ? a / b : 0;
}

static int
write_json(const char *path, const figures_t *fig, double secs, double load0)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    const failover_t *fo = &fig->fo;
    size_t n = (size_t)fo->n;
    fprintf(f,
            "{\n  \"bench\": \"group\",\n  \"members\": %d,\n"
            "  \"repl\": {\"jobs\": %d, \"payload_bytes\": %d, \"window\": "
            "%d, \"workers\": %d, \"durability\": \"commit\", "
            "\"single_jobs_per_s\": %.0f, \"group_jobs_per_s\": %.0f, "
            "\"group_over_single\": %.3f, \"rounds\": %d, "
            "\"group_over_single_min\": %.3f, "
            "\"group_over_single_max\": %.3f},\n"
            "  \"failover\": {\"kills\": %d, \"load_jobs_per_s\": %d, "
            "\"probe_ms\": %d, \"p50_s\": %.3f, \"p90_s\": %.3f, "
            "\"max_s\": %.3f, \"catchup_max_s\": %.3f, "
            "\"load_accepted\": %ld, \"error\": \"",
            MEMBERS, W1_JOBS, PAYLOAD, WINDOW, WORKERS, fig->one_w1,
            fig->grp_w1, fig->ratio, REPL_RUNS, fig->ratio_lo, fig->ratio_hi,
            fo->n, LOAD_RATE, PROBE_MS, dv_bench_pct(fo->secs, n, 0.5),
            dv_bench_pct(fo->secs, n, 0.9), n ? fo->secs[n - 1] : 0,
            fo->catchup_max_s, fo->load_accepted);
    for (const char *c = fig->fo_error; *c; c++) {
        if (*c == '"' || *c == '\\') {
            fputc('\\', f);
        }
        fputc((unsigned char)*c >= ' ' ? *c : ' ', f);
    }
    fprintf(f,
            "\"},\n"
            "  \"single\": {\"jobs\": %d, \"in_memory_jobs_per_s\": %.0f, "
            "\"durable_jobs_per_s\": %.0f, "
            "\"baseline_in_memory_jobs_per_s\": %.0f, "
            "\"baseline_durable_jobs_per_s\": %.0f, "
            "\"in_memory_over_baseline\": %.3f, "
            "\"durable_over_baseline\": %.3f},\n"
            "  \"secs\": %.1f,\n  \"load_1m_at_start\": %.2f\n}\n",
            W1_JOBS, fig->sm, fig->sd, fig->bm, fig->bd,
            ratio(fig->sm, fig->bm), ratio(fig->sd, fig->bd), secs, load0);
    fclose(f);
    printf("wrote %s\n", path);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *out_path = "bench/results/group.json";
    const char *bin_dir = "build/release/bin", *base_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out_path = argv[++i];
        } else if (strcmp(argv[i], "--bin-dir") == 0 && i + 1 < argc) {
            bin_dir = argv[++i];
        } else if (strcmp(argv[i], "--baseline-bin-dir") == 0 && i + 1 < argc) {
            base_dir = argv[++i];
        } else {
            fprintf(stderr, "usage: dv-bench-group [--out FILE] [--bin-dir "
                            "DIR] [--baseline-bin-dir DIR]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    double t_start = dv_bench_now_s(), load0 = dv_bench_load_1m();
    void *ctx = zmq_ctx_new();
    figures_t fig = {0};
    // Every phase runs (each starts its own processes); a failed one leaves
    // its figures at 0 and makes the exit status 1.
    int rc = phase_repl(ctx, bin_dir, &fig);
    rc |= phase_failover(ctx, bin_dir, &fig);
    rc |= phase_single(ctx, bin_dir, base_dir, &fig);
    double secs = dv_bench_now_s() - t_start;
    printf("(%.0f s; load average %.2f at the start)\n", secs, load0);
    rc |= write_json(out_path, &fig, secs, load0);
    zmq_ctx_term(ctx);
    return rc ? 1 : 0;
}
