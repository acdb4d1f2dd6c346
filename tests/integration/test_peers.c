// test_peers — hostile peers and second owners against real processes
// (issue 13): connections that never finish a handshake, a worker key that
// is revoked or restricted to some queues, refusal texts naming the right
// role, plain mode on exposed transports, and a second broker on the same
// data folder or ipc path. Each case makes the attack, then proves the
// broker and its workers are alive and still serve.
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drover.h"
#include "dv_keys.h"
#include "dv_test.h"
#include "dv_test_proc.h"

#define HB_MS       "250"
#define WAIT_MS     30000
#define MAX_EXTRA   8
#define MAX_WORKERS 3

typedef struct {
    char *dir;
    char auth[4300]; // authorized keys folder
    char keys[4300]; // every key pair
    char data[4300]; // broker data
    char cep[256], wep[256];
    dv_proc_t broker;
    dv_proc_t workers[MAX_WORKERS];
} peers_t;

// keys/NAME.key + .pub with roles and queues (NULL: all), copied into the
// authorized folder.
static bool
make_key(peers_t *p, const char *name, unsigned roles, const char *queues)
{
    // roles 0: the broker's own pair, not authorized
    return dv_test_key_make(p->keys, roles ? p->auth : NULL, name, roles,
                            queues);
}

static void
key_path(
    const peers_t *p, const char *name, const char *ext, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s.%s", p->keys, name, ext);
}

// A fresh folder with the broker's pair and the keys every case uses:
// admin; alice (producer+consumer, queue jobs); bob (producer, jobs);
// carol (consumer, jobs); w1, w2 (workers, every queue); wq (a worker
// restricted to queue "other").
static bool
peers_init(peers_t *p)
{
    memset(p, 0, sizeof *p);
    p->dir = dv_test_tmpdir();
    snprintf(p->auth, sizeof p->auth, "%s/authorized", p->dir);
    snprintf(p->keys, sizeof p->keys, "%s/keys", p->dir);
    snprintf(p->data, sizeof p->data, "%s/data", p->dir);
    mkdir(p->auth, 0755);
    mkdir(p->keys, 0700);
    return make_key(p, "broker", 0, NULL) &&
           make_key(p, "admin", DV_ROLE_ADMIN, NULL) &&
           make_key(p, "alice", DV_ROLE_PRODUCER | DV_ROLE_CONSUMER, "jobs") &&
           make_key(p, "bob", DV_ROLE_PRODUCER, "jobs") &&
           make_key(p, "carol", DV_ROLE_CONSUMER, "jobs") &&
           make_key(p, "w1", DV_ROLE_WORKER, NULL) &&
           make_key(p, "w2", DV_ROLE_WORKER, NULL) &&
           make_key(p, "wq", DV_ROLE_WORKER, "other");
}

// A CURVE broker on tcp 127.0.0.1 (ports picked by the system) with extra
// options (NULL-terminated, may be NULL).
static bool
broker_start(peers_t *p, const char *const *extra)
{
    char secret[4400];
    key_path(p, "broker", "key", secret, sizeof secret);
    const char *args[12 + MAX_EXTRA] = {"--client",
                                        "tcp://127.0.0.1:0",
                                        "--worker",
                                        "tcp://127.0.0.1:0",
                                        "--data",
                                        p->data,
                                        "--heartbeat-ms",
                                        HB_MS,
                                        "--secret-key",
                                        secret,
                                        "--authorized-keys",
                                        p->auth};
    int n = 12;
    for (int i = 0; extra && extra[i] && i < MAX_EXTRA; i++) {
        args[n++] = extra[i];
    }
    args[n] = NULL;
    p->broker = dv_proc_start("DROVER_BROKER_BIN", args, p->dir, "broker.log");
    char ready[9000] = "";
    return p->broker.pid &&
           dv_proc_wait_ready(&p->broker, ready, sizeof ready) &&
           sscanf(ready, "%255s %255s", p->cep, p->wep) == 2;
}

// Worker i named NAME with key NAME (its log: worker-NAME.log), serving
// queue (NULL: every queue). False when it did not get in.
static bool
worker_start(peers_t *p, int i, const char *name, const char *queue)
{
    char k[4400], b[4400], log[128];
    key_path(p, name, "key", k, sizeof k);
    key_path(p, "broker", "pub", b, sizeof b);
    snprintf(log, sizeof log, "worker-%s.log", name);
    const char *args[16] = {"--broker",       p->wep, "--name", name,
                            "--heartbeat-ms", HB_MS,  "--key",  k,
                            "--broker-key",   b};
    int n = 10;
    if (queue) {
        args[n++] = "--queues";
        args[n++] = queue;
    }
    args[n] = NULL;
    p->workers[i] = dv_proc_start("DROVER_WORKER_BIN", args, p->dir, log);
    char ready[9000];
    return p->workers[i].pid &&
           dv_proc_wait_ready(&p->workers[i], ready, sizeof ready);
}

static void
peers_down(peers_t *p, bool failed)
{
    for (int i = 0; i < MAX_WORKERS; i++) {
        dv_proc_stop(&p->workers[i], SIGKILL);
    }
    dv_proc_stop(&p->broker, SIGTERM);
    if (failed) {
        dv_proc_dump_log(p->dir, "broker.log");
    }
    dv_test_rmdir(p->dir);
    free(p->dir);
}

// Connect as key. Returns the error code (0: connected).
static int
connect_as(peers_t *p, const char *key, drover_t **d, drover_error_t *err)
{
    char k[4400], b[4400];
    key_path(p, key, "key", k, sizeof k);
    key_path(p, "broker", "pub", b, sizeof b);
    *d = NULL;
    return drover_connect_key(d, p->cep, 5000, k, b, err);
}

// Run an echo job on queue; 0 when it ran, with the worker's name in
// worker (may be NULL).
static int
run_echo(drover_t *d,
         const char *queue,
         const char *payload,
         char *worker,
         size_t size,
         drover_error_t *err)
{
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = queue;
    job.payload = payload;
    job.payload_len = strlen(payload);
    drover_result_t *r = NULL;
    int rc = drover_run(d, &job, WAIT_MS, &r, err);
    if (rc == 0 && !drover_result_ok(r)) {
        const char *text = "";
        rc = drover_result_error(r, &text);
        snprintf(err->text, sizeof err->text, "%s", text);
    }
    if (rc == 0 && worker) {
        snprintf(worker, size, "%s", drover_result_worker(r));
    }
    drover_result_destroy(&r);
    return rc;
}

// Does dir/name hold text?
static bool
log_says(const char *dir, const char *name, const char *text)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len = 0;
    char *log = (char *)dv_test_read_file(path, &len);
    bool found = log && strstr(log, text) != NULL;
    free(log);
    return found;
}

// Start $env_bin with args where it must refuse to start: its exit status,
// or -2 when it printed READY after all (then it is stopped again), so an
// unrefused start fails the case instead of hanging it.
static int
refuses(const char *env_bin,
        const char *const *args,
        const char *dir,
        const char *log)
{
    dv_proc_t b = dv_proc_start(env_bin, args, dir, log);
    char ready[9000];
    bool started = b.pid && dv_proc_wait_ready(&b, ready, sizeof ready);
    int rc = dv_proc_stop(&b, SIGKILL);
    return started ? -2 : rc;
}

// Open n raw TCP connections to tcp://127.0.0.1:PORT endpoint ep that
// never say a word (fds[] gets them; -1 where connect failed). Returns how
// many connected.
static int
raw_connect(const char *ep, int *fds, int n)
{
    int port = 0, ok = 0;
    if (sscanf(ep, "tcp://127.0.0.1:%d", &port) != 1) {
        return 0;
    }
    for (int i = 0; i < n; i++) {
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] >= 0 &&
            connect(fds[i], (struct sockaddr *)&sa, sizeof sa) != 0) {
            close(fds[i]);
            fds[i] = -1;
        }
        ok += fds[i] >= 0;
    }
    return ok;
}

static void
raw_close(int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
}

// Poll the audit log (as admin) until an entry by key for action with
// outcome starting with outcome shows up, up to DV_PROC_DEADLINE_MS (each
// try is a round trip to the broker: no sleeping).
static bool
audit_shows(drover_t *admin,
            const char *key,
            const char *action,
            const char *outcome)
{
    int64_t end = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
    bool found = false;
    while (!found && dv_test_now_ms() < end) {
        drover_audit_entry_t *e = NULL;
        size_t n = 0;
        drover_error_t err = {0};
        if (drover_audit(admin, 0, &e, &n, NULL, &err) != 0) {
            break;
        }
        for (size_t i = 0; i < n && !found; i++) {
            found = strcmp(e[i].key, key) == 0 &&
                    strcmp(e[i].action, action) == 0 &&
                    strncmp(e[i].outcome, outcome, strlen(outcome)) == 0;
        }
        free(e);
    }
    return found;
}

static void
on_result(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    (void)r;
    (void)arg;
}

// ---------------------------------------------------------------- cases

// Point 14: each refusal names the role the roles table in docs/SECURITY.md
// gives the request (once, a buffer shared by two arguments made "may not
// follow: that takes producer" out of a producer's own roles).
static void
test_refusals_name_the_role(void)
{
    peers_t p;
    bool up = peers_init(&p) && broker_start(&p, NULL) &&
              worker_start(&p, 0, "w1", NULL);
    drover_t *bob = NULL, *carol = NULL;
    drover_error_t err = {0};
    int c = up ? connect_as(&p, "bob", &bob, &err) |
                     connect_as(&p, "carol", &carol, &err)
               : -1;
    char texts[6][sizeof err.text];
    int rcs[6] = {-1, -1, -1, -1, -1, -1};
    if (c == 0) {
        rcs[0] = drover_follow(bob, "jobs", "c1", 0, false, on_result, NULL,
                               NULL, &err);
        snprintf(texts[0], sizeof texts[0], "%s", err.text);
        drover_job_t job = DROVER_JOB_INIT;
        job.queue = "jobs";
        job.payload = "x";
        job.payload_len = 1;
        uint64_t id = 0;
        rcs[1] = drover_submit(carol, &job, 5000, &id, &err);
        snprintf(texts[1], sizeof texts[1], "%s", err.text);
        drover_dataset_t ds = {0};
        rcs[2] = drover_dataset_push(carol, dv_test_data("iris_train.csv"),
                                     "flowers", &ds, &err);
        snprintf(texts[2], sizeof texts[2], "%s", err.text);
        drover_dead_t *dl = NULL;
        size_t n = 0;
        rcs[3] = drover_dead_list(bob, NULL, 0, &dl, &n, &err);
        drover_dead_free(&dl, n);
        snprintf(texts[3], sizeof texts[3], "%s", err.text);
        unsigned removed = 0;
        rcs[4] = drover_model_rm(carol, "iris", 0, &removed, &err);
        snprintf(texts[4], sizeof texts[4], "%s", err.text);
        rcs[5] = drover_model_rm(bob, "iris", 0, &removed, &err);
        snprintf(texts[5], sizeof texts[5], "%s", err.text);
    }
    // Still serving: bob's own job runs on w1.
    int alive = c == 0 ? run_echo(bob, "jobs", "y", NULL, 0, &err) : -1;
    drover_destroy(&bob);
    drover_destroy(&carol);
    peers_down(&p, c != 0 || alive != 0);
    static const char *want[6] = {
        "key 'bob' (producer) may not follow: that takes consumer,admin",
        "key 'carol' (consumer) may not submit: that takes producer,admin",
        "key 'carol' (consumer) may not dataset_push: that takes "
        "producer,admin",
        "key 'bob' (producer) may not dead_list: that takes admin",
        "key 'carol' (consumer) may not model_rm: that takes producer,admin",
        "model 'iris' has no owner key",
    };
    DV_CHECK(up);
    DV_CHECK_EQ(c, 0);
    for (int i = 0; i < 6; i++) {
        if (rcs[i] != DV_EPERM || !strstr(texts[i], want[i])) {
            fprintf(stderr, "  refusal %d: %d '%s'\n    want '%s'\n", i, rcs[i],
                    texts[i], want[i]);
        }
        DV_CHECK_EQ(rcs[i], DV_EPERM);
        DV_CHECK(strstr(texts[i], want[i]) != NULL);
    }
    DV_CHECK_EQ(alive, 0);
}

// Point 12: plain mode (no keys) on any transport but ipc:// and loopback
// tcp needs --plain: ws:// on every address, and ws:// even on loopback
// (a browser on the machine reaches it), are refused at start; loopback
// tcp still starts.
static void
test_plain_refused_on_ws(void)
{
    char *dir = dv_test_tmpdir();
    static const char *eps[] = {"ws://0.0.0.0:0", "ws://127.0.0.1:0",
                                "udp://0.0.0.0:0", "tcp://*:0"};
    int rcs[4];
    bool says[4];
    for (int i = 0; i < 4; i++) {
        const char *args[] = {"--client", eps[i], "--worker",
                              "tcp://127.0.0.1:0", NULL};
        char log[32];
        snprintf(log, sizeof log, "refused%d.log", i);
        rcs[i] = refuses("DROVER_BROKER_BIN", args, dir, log);
        says[i] = log_says(dir, log, "is reachable from other machines") &&
                  log_says(dir, log, "--plain");
    }
    const char *ok[] = {"--client", "tcp://127.0.0.1:0", "--worker",
                        "tcp://127.0.0.1:0", NULL};
    dv_proc_t b = dv_proc_start("DROVER_BROKER_BIN", ok, dir, "ok.log");
    char ready[9000];
    bool up = b.pid && dv_proc_wait_ready(&b, ready, sizeof ready);
    char cep[256] = "";
    sscanf(ready, "%255s", cep);
    drover_t *d = NULL;
    drover_error_t err = {0};
    int hello = up ? drover_connect_key(&d, cep, 5000, NULL, NULL, &err) : -1;
    drover_destroy(&d);
    int stop = dv_proc_stop(&b, SIGTERM);
    dv_test_rmdir(dir);
    free(dir);
    for (int i = 0; i < 4; i++) {
        DV_CHECK_EQ(rcs[i], 1);
        DV_CHECK(says[i]);
    }
    DV_CHECK(up);
    DV_CHECK_EQ(hello, 0);
    DV_CHECK_EQ(stop, 0);
}

// A plain broker on ipc endpoints in dir/NAME-c and NAME-w with data in
// dir/data_name (NULL: none), its log NAME.log.
static dv_proc_t
plain_broker(const char *dir,
             const char *name,
             const char *data_name,
             char *cep,
             size_t size)
{
    char c[4400], w[4400], data[4400], log[64];
    snprintf(c, sizeof c, "ipc://%s/%s-c", dir, name);
    snprintf(w, sizeof w, "ipc://%s/%s-w", dir, name);
    snprintf(data, sizeof data, "%s/%s", dir, data_name ? data_name : "");
    snprintf(log, sizeof log, "%s.log", name);
    const char *args[] = {"--client", c, "--worker", w, "--data", data, NULL};
    if (!data_name) {
        args[4] = NULL;
    }
    snprintf(cep, size, "%s", c);
    return dv_proc_start("DROVER_BROKER_BIN", args, dir, log);
}

// A plain client on ep submits one job and gets its id; 0 when taken.
static int
plain_submit(const char *ep, uint64_t *id)
{
    drover_t *d = NULL;
    drover_error_t err = {0};
    int rc = drover_connect_key(&d, ep, 5000, NULL, NULL, &err);
    if (rc == 0) {
        drover_job_t job = DROVER_JOB_INIT;
        job.queue = "jobs";
        job.payload = "x";
        job.payload_len = 1;
        rc = drover_submit(d, &job, 5000, id, &err);
    }
    drover_destroy(&d);
    return rc;
}

// Point 15: one broker per data folder. A second broker on the same
// --data refuses to start (exit 1) naming the first one's pid, and the
// first keeps serving with its job ids going on; once the first is killed
// (-9: no clean exit, the kernel drops the lock), the folder is free again
// and the next broker recovers every accepted job.
static void
test_one_broker_per_data_dir(void)
{
    char *dir = dv_test_tmpdir();
    char a_ep[4400], c_ep[4400];
    dv_proc_t a = plain_broker(dir, "a", "data", a_ep, sizeof a_ep);
    char ready[9000];
    bool a_up = a.pid && dv_proc_wait_ready(&a, ready, sizeof ready);
    uint64_t id1 = 0, id2 = 0, id3 = 0;
    int s1 = a_up ? plain_submit(a_ep, &id1) : -1;
    char bc[4400], bw[4400], data[4400];
    snprintf(bc, sizeof bc, "ipc://%s/b-c", dir);
    snprintf(bw, sizeof bw, "ipc://%s/b-w", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    const char *b_args[] = {"--client", bc,   "--worker", bw,
                            "--data",   data, NULL};
    int b_exit = a_up ? refuses("DROVER_BROKER_BIN", b_args, dir, "b.log") : -1;
    char pid[64];
    snprintf(pid, sizeof pid, "pid %ld", (long)a.pid);
    bool b_says = log_says(dir, "b.log", "in use by another broker") &&
                  log_says(dir, "b.log", pid);
    int s2 = a_up ? plain_submit(a_ep, &id2) : -1; // a still serves
    dv_proc_stop(&a, SIGKILL);
    dv_proc_t c = plain_broker(dir, "c", "data", c_ep, sizeof c_ep);
    bool c_up = c.pid && dv_proc_wait_ready(&c, ready, sizeof ready);
    int s3 = c_up ? plain_submit(c_ep, &id3) : -1;
    drover_t *d = NULL;
    drover_error_t err = {0};
    drover_job_info_t ji = {0};
    int kept = -1;
    if (c_up && drover_connect_key(&d, c_ep, 5000, NULL, NULL, &err) == 0) {
        kept = drover_job_info(d, id1, &ji, &err) |
               drover_job_info(d, id2, &ji, &err);
    }
    drover_destroy(&d);
    dv_proc_stop(&c, SIGTERM);
    if (!b_says || kept != 0) {
        dv_proc_dump_log(dir, "b.log");
        dv_proc_dump_log(dir, "c.log");
    }
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK(a_up);
    DV_CHECK_EQ(s1, 0);
    DV_CHECK_EQ(b_exit, 1);
    DV_CHECK(b_says);
    DV_CHECK_EQ(s2, 0);
    DV_CHECK_EQ(id2, id1 + 1);
    DV_CHECK(c_up);
    DV_CHECK_EQ(s3, 0);
    DV_CHECK(id3 > id2); // no id handed out twice
    DV_CHECK_EQ(kept, 0);
}

// Point 15: one server per ipc path. A broker, and `drover up`, on a path
// a running broker serves refuse to start and leave it serving; a stale
// socket file (its broker killed -9) is taken over.
static void
test_one_broker_per_ipc_path(void)
{
    char *dir = dv_test_tmpdir();
    char a_ep[4400], b_ep[4400], c_ep[4400];
    dv_proc_t a = plain_broker(dir, "a", NULL, a_ep, sizeof a_ep);
    char ready[9000];
    bool a_up = a.pid && dv_proc_wait_ready(&a, ready, sizeof ready);
    uint64_t id = 0;
    // Another broker on a's client path (its own worker path).
    char w2[4400];
    snprintf(w2, sizeof w2, "ipc://%s/b-w", dir);
    const char *args[] = {"--client", a_ep, "--worker", w2, NULL};
    int b_exit = a_up ? refuses("DROVER_BROKER_BIN", args, dir, "b.log") : -1;
    bool b_says = log_says(dir, "b.log", "served by another process");
    // drover up on it.
    const char *up_args[] = {"up", "--endpoint", a_ep, "--workers", "1", NULL};
    int up_exit = a_up ? refuses("DROVER_BIN", up_args, dir, "up.log") : -1;
    int served = a_up ? plain_submit(a_ep, &id) : -1;
    dv_proc_stop(&a, SIGKILL); // leaves its socket files behind
    struct stat st;
    bool stale = stat(a_ep + 6, &st) == 0;
    snprintf(b_ep, sizeof b_ep, "%s", a_ep);
    dv_proc_t c = plain_broker(dir, "a", NULL, c_ep, sizeof c_ep);
    bool c_up = c.pid && dv_proc_wait_ready(&c, ready, sizeof ready);
    int taken = c_up ? plain_submit(b_ep, &id) : -1;
    dv_proc_stop(&c, SIGTERM);
    if (!b_says || up_exit == 0) {
        dv_proc_dump_log(dir, "b.log");
        dv_proc_dump_log(dir, "up.log");
    }
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK(a_up);
    DV_CHECK_EQ(b_exit, 1);
    DV_CHECK(b_says);
    DV_CHECK(up_exit > 0);
    DV_CHECK_EQ(served, 0);
    DV_CHECK(stale);
    DV_CHECK(c_up);
    DV_CHECK_EQ(taken, 0);
}

// Point 7: connections that never handshake hold no slot. 60 raw TCP
// connections on each socket of a broker allowing 50 clients and 2
// workers: a worker and clients still get in and run jobs. The limits
// count authenticated connections: one key gets at most
// --max-key-connections (refused at the handshake, audited; another key
// still gets in), a third worker is refused until one of the two leaves
// (its slot is given back on disconnect).
static void
test_keyless_connections_hold_no_slot(void)
{
    const char *extra[] = {"--max-connections",
                           "50",
                           "--max-worker-connections",
                           "2",
                           "--max-key-connections",
                           "2",
                           NULL};
    peers_t p;
    bool up = peers_init(&p) && broker_start(&p, extra);
    enum { RAW = 60 };
    int craw[RAW], wraw[RAW];
    int n_c = up ? raw_connect(p.cep, craw, RAW) : 0;
    int n_w = up ? raw_connect(p.wep, wraw, RAW) : 0;
    bool w1 = up && worker_start(&p, 0, "w1", NULL);
    drover_t *a1 = NULL, *a2 = NULL, *a3 = NULL, *bob = NULL, *admin = NULL;
    drover_error_t err = {0};
    int c1 = up ? connect_as(&p, "alice", &a1, &err) : -1;
    int ran = c1 == 0 ? run_echo(a1, "jobs", "through", NULL, 0, &err) : -1;
    int c2 = up ? connect_as(&p, "alice", &a2, &err) : -1;
    int c3 = up ? connect_as(&p, "alice", &a3, &err) : -1;
    bool c3_says = strstr(err.text, "connection limits") != NULL;
    int cb = up ? connect_as(&p, "bob", &bob, &err) : -1;
    int ca = up ? connect_as(&p, "admin", &admin, &err) : -1;
    bool a_key = ca == 0 && audit_shows(admin, "alice", "handshake",
                                        "refused: too many connections for "
                                        "key 'alice'");
    // Workers: w1 and w2 fill the socket; wq is refused until w2 leaves.
    bool w2 = up && worker_start(&p, 1, "w2", NULL);
    char k[4400], b[4400];
    key_path(&p, "wq", "key", k, sizeof k);
    key_path(&p, "broker", "pub", b, sizeof b);
    const char *wq_args[] = {
        "--broker",     p.wep, "--name",         "wq",  "--key", k,
        "--broker-key", b,     "--heartbeat-ms", HB_MS, NULL};
    p.workers[2] =
        dv_proc_start("DROVER_WORKER_BIN", wq_args, p.dir, "worker-wq.log");
    bool a_worker = ca == 0 && audit_shows(admin, "wq", "handshake",
                                           "refused: too many connections "
                                           "(2 authenticated open, "
                                           "--max-worker-connections 2)");
    dv_proc_stop(&p.workers[1], SIGKILL);
    char ready[9000];
    bool wq_in = p.workers[2].pid &&
                 dv_proc_wait_ready(&p.workers[2], ready, sizeof ready);
    // Everyone still served, the raw connections still open.
    int ran2 = cb == 0 ? run_echo(bob, "jobs", "after", NULL, 0, &err) : -1;
    drover_destroy(&a1);
    drover_destroy(&a2);
    drover_destroy(&a3);
    drover_destroy(&bob);
    drover_destroy(&admin);
    raw_close(craw, n_c);
    raw_close(wraw, n_w);
    peers_down(&p, ran2 != 0 || !wq_in || !a_worker);
    DV_CHECK(up);
    DV_CHECK_EQ(n_c, RAW);
    DV_CHECK_EQ(n_w, RAW);
    DV_CHECK(w1);
    DV_CHECK_EQ(c1, 0);
    DV_CHECK_EQ(ran, 0);
    DV_CHECK_EQ(c2, 0);
    DV_CHECK_EQ(c3, DV_EPERM);
    DV_CHECK(c3_says);
    DV_CHECK_EQ(cb, 0);
    DV_CHECK_EQ(ca, 0);
    DV_CHECK(a_key);
    DV_CHECK(w2);
    DV_CHECK(a_worker);
    DV_CHECK(wq_in);
    DV_CHECK_EQ(ran2, 0);
}

// Point 7: a peer that never finishes its handshake is dropped after
// --handshake-ms (ZMQ_HANDSHAKE_IVL; libzmq's own default is 30 s): the
// broker closes a silent raw connection well within the wait below, and
// still serves.
static void
test_handshake_times_out(void)
{
    const char *extra[] = {"--handshake-ms", "200", NULL};
    peers_t p;
    bool up = peers_init(&p) && broker_start(&p, extra) &&
              worker_start(&p, 0, "w1", NULL);
    int fd = -1;
    int n = up ? raw_connect(p.cep, &fd, 1) : 0;
    // The broker sends its greeting, then hangs up: read() until it
    // returns 0 (or a reset). libzmq's own default would wait 30 s.
    int64_t end = dv_test_now_ms() + 10000;
    ssize_t got = 1;
    size_t greeting = 0;
    while (n == 1 && got > 0 && dv_test_now_ms() < end) {
        struct pollfd pf = {fd, POLLIN, 0};
        char buf[256];
        got = poll(&pf, 1, 1000) == 1 ? read(fd, buf, sizeof buf) : 1;
        greeting += got > 1 ? (size_t)got : 0;
    }
    raw_close(&fd, n);
    drover_t *alice = NULL;
    drover_error_t err = {0};
    int ran = up && connect_as(&p, "alice", &alice, &err) == 0
                  ? run_echo(alice, "jobs", "x", NULL, 0, &err)
                  : -1;
    drover_destroy(&alice);
    peers_down(&p, ran != 0 || got > 0);
    DV_CHECK(up);
    DV_CHECK_EQ(n, 1);
    DV_CHECK(greeting > 0); // it was a ZeroMQ peer talking to us
    DV_CHECK(got <= 0);     // and it hung up
    DV_CHECK_EQ(ran, 0);
}

// Replace old with new in file path (a key's .pub metadata). True when
// done.
static bool
edit_file(const char *path, const char *old, const char *new_text)
{
    size_t len = 0;
    char *text = (char *)dv_test_read_file(path, &len);
    char *at = text ? strstr(text, old) : NULL;
    bool ok = false;
    if (at) {
        size_t head = (size_t)(at - text), tail = len - head - strlen(old);
        size_t out_len = head + strlen(new_text) + tail;
        char *out = malloc(out_len + 1);
        memcpy(out, text, head);
        memcpy(out + head, new_text, strlen(new_text));
        memcpy(out + head + strlen(new_text), at + strlen(old), tail);
        ok = dv_test_write_file(path, out, out_len) == 0;
        free(out);
    }
    free(text);
    return ok;
}

// Poll job id until its state is state (each try a round trip).
static bool
job_reaches(drover_t *d, uint64_t id, const char *state)
{
    int64_t end = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
    drover_job_info_t ji;
    drover_error_t err = {0};
    while (dv_test_now_ms() < end) {
        memset(&ji, 0, sizeof ji);
        if (drover_job_info(d, id, &ji, &err) != 0) {
            return false;
        }
        if (strcmp(ji.state, state) == 0) {
            return true;
        }
    }
    return false;
}

// Point 8: a revoked worker key's open connection is dropped at the reload.
// A job runs on w1 (registered first: the tie rule); w1 is frozen
// (SIGSTOP) so it can neither finish nor be declared dead in time (the
// broker's liveness here is 6 s), its key is revoked and reloaded: the job
// goes to w2 at once, with no failed attempt recorded (the evicted run is
// not counted) and a new attempt number; w1, thawed, answers too late to
// reach anyone, and every later job runs on w2. Without the check, w1 kept
// the job and its answer reached the submitter.
static void
test_revoked_worker_is_dropped(void)
{
    const char *extra[] = {"--heartbeat-ms", "2000", NULL};
    peers_t p;
    bool up = peers_init(&p) && broker_start(&p, extra) &&
              worker_start(&p, 0, "w1", NULL) &&
              worker_start(&p, 1, "w2", NULL);
    drover_t *alice = NULL, *admin = NULL;
    drover_error_t err = {0};
    int c = up ? connect_as(&p, "alice", &alice, &err) |
                     connect_as(&p, "admin", &admin, &err)
               : -1;
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = "jobs";
    job.kind = "sleep";
    job.sleep_ms = 300;
    uint64_t id = 0;
    int sub = c == 0 ? drover_submit(alice, &job, 5000, &id, &err) : -1;
    bool running = sub == 0 && job_reaches(alice, id, "running");
    if (running) {
        kill(p.workers[0].pid, SIGSTOP);
    }
    char pub[4400], off[4400];
    snprintf(pub, sizeof pub, "%s/w1.pub", p.auth);
    snprintf(off, sizeof off, "%s/w1.pub.off", p.dir);
    int moved = running ? rename(pub, off) : -1;
    size_t keys = 0;
    int reload = moved == 0 ? drover_admin_reload(admin, &keys, &err) : -1;
    drover_result_t *r = NULL;
    int waited = reload == 0 ? drover_wait(alice, id, WAIT_MS, &r, &err) : -1;
    char worker[64] = "";
    size_t errors = 99;
    uint32_t attempts = 0;
    if (waited == 0) {
        snprintf(worker, sizeof worker, "%s", drover_result_worker(r));
        const drover_attempt_error_t *errs = NULL;
        errors = drover_result_errors(r, &errs);
        attempts = drover_result_attempts(r);
    }
    drover_result_destroy(&r);
    if (p.workers[0].pid) {
        kill(p.workers[0].pid, SIGCONT); // its late answer goes nowhere
    }
    char later[3][64] = {"", "", ""};
    int rans = 0;
    for (int i = 0; i < 3 && waited == 0; i++) {
        rans |=
            run_echo(alice, "jobs", "later", later[i], sizeof later[i], &err);
    }
    bool a_drop = c == 0 && audit_shows(admin, "w1", "reload",
                                        "refused: key 'w1' is no longer "
                                        "authorized");
    drover_destroy(&alice);
    drover_destroy(&admin);
    peers_down(&p, waited != 0 || strcmp(worker, "w2") != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(c, 0);
    DV_CHECK_EQ(sub, 0);
    DV_CHECK(running);
    DV_CHECK_EQ(moved, 0);
    DV_CHECK_EQ(reload, 0);
    DV_CHECK_EQ(waited, 0);
    DV_CHECK_STR_EQ(worker, "w2");
    DV_CHECK_EQ(errors, 0);
    DV_CHECK_EQ(attempts, 2);
    DV_CHECK_EQ(rans, 0);
    for (int i = 0; i < 3; i++) {
        DV_CHECK_STR_EQ(later[i], "w2");
    }
    DV_CHECK(a_drop);
}

// Point 8: a worker key's queues list is enforced. wq's key allows queue
// "other": registered without --queues it gets "other" jobs and never a
// "jobs" job; registering with --queues jobs is refused (audited). Once its
// .pub allows "jobs" too and the keys are reloaded, the waiting "jobs" job
// goes to it.
static void
test_worker_key_queues(void)
{
    peers_t p;
    bool up = peers_init(&p) && broker_start(&p, NULL) &&
              worker_start(&p, 0, "wq", NULL);
    drover_t *admin = NULL;
    drover_error_t err = {0};
    int c = up ? connect_as(&p, "admin", &admin, &err) : -1;
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = "jobs";
    job.payload = "j";
    job.payload_len = 1;
    uint64_t id = 0;
    int sub = c == 0 ? drover_submit(admin, &job, 5000, &id, &err) : -1;
    char other[64] = "";
    int ran =
        c == 0 ? run_echo(admin, "other", "o", other, sizeof other, &err) : -1;
    // Submitted first and dispatched at once if wq could take it: still
    // queued after the later job finished.
    drover_job_info_t ji = {0};
    int info = sub == 0 ? drover_job_info(admin, id, &ji, &err) : -1;
    // The same key asking for queue "jobs".
    char k[4400], b[4400];
    key_path(&p, "wq", "key", k, sizeof k);
    key_path(&p, "broker", "pub", b, sizeof b);
    const char *args[] = {"--broker",     p.wep, "--name",   "wq-jobs",
                          "--key",        k,     "--queues", "jobs",
                          "--broker-key", b,     NULL};
    p.workers[1] =
        c == 0 ? dv_proc_start("DROVER_WORKER_BIN", args, p.dir, "wqj.log")
               : (dv_proc_t){0, -1};
    bool a_reg = c == 0 && audit_shows(admin, "wq", "register",
                                       "refused: key 'wq' may not serve "
                                       "queue 'jobs'");
    char pub[4400];
    snprintf(pub, sizeof pub, "%s/wq.pub", p.auth);
    bool edited = edit_file(pub, "\"other\"", "\"other,jobs\"");
    size_t keys = 0;
    int reload = edited ? drover_admin_reload(admin, &keys, &err) : -1;
    drover_result_t *r = NULL;
    int waited = reload == 0 ? drover_wait(admin, id, WAIT_MS, &r, &err) : -1;
    char worker[64] = "";
    if (waited == 0) {
        snprintf(worker, sizeof worker, "%s", drover_result_worker(r));
    }
    drover_result_destroy(&r);
    drover_destroy(&admin);
    peers_down(&p, waited != 0 || !a_reg);
    DV_CHECK(up);
    DV_CHECK_EQ(c, 0);
    DV_CHECK_EQ(sub, 0);
    DV_CHECK_EQ(ran, 0);
    DV_CHECK_STR_EQ(other, "wq");
    DV_CHECK_EQ(info, 0);
    DV_CHECK_STR_EQ(ji.state, "queued");
    DV_CHECK(a_reg);
    DV_CHECK(edited);
    DV_CHECK_EQ(reload, 0);
    DV_CHECK_EQ(waited, 0);
    DV_CHECK_STR_EQ(worker, "wq");
}

static void
count_result(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    (void)r;
    (*(int *)arg)++;
}

// Point 8, the client socket's pushes: a consumer whose key is revoked
// stops receiving its stream's results at the reload. carol follows
// "jobs" and gets the first result; after the reload the next job's result
// is not pushed to her (it would arrive before the answer to her next
// request on the same connection, which is refused), and the broker and
// worker still serve alice.
static void
test_revoked_follower_stops(void)
{
    peers_t p;
    bool up = peers_init(&p) && broker_start(&p, NULL) &&
              worker_start(&p, 0, "w1", NULL);
    drover_t *alice = NULL, *carol = NULL, *admin = NULL;
    drover_error_t err = {0};
    int c = up ? connect_as(&p, "alice", &alice, &err) |
                     connect_as(&p, "carol", &carol, &err) |
                     connect_as(&p, "admin", &admin, &err)
               : -1;
    int got = 0;
    int fol = c == 0 ? drover_follow(carol, "jobs", "c1", 0, false,
                                     count_result, &got, NULL, &err)
                     : -1;
    int first = fol == 0 ? run_echo(alice, "jobs", "one", NULL, 0, &err) : -1;
    for (int i = 0; first == 0 && got < 1 && i < 1000; i++) {
        drover_poll(carol, 100, &err); // until her first result is in
    }
    int got_before = got;
    char pub[4400], off[4400];
    snprintf(pub, sizeof pub, "%s/carol.pub", p.auth);
    snprintf(off, sizeof off, "%s/carol.pub.off", p.dir);
    int moved = rename(pub, off);
    size_t keys = 0;
    int reload = moved == 0 ? drover_admin_reload(admin, &keys, &err) : -1;
    int second =
        reload == 0 ? run_echo(alice, "jobs", "two", NULL, 0, &err) : -1;
    drover_job_info_t ji;
    int asked = drover_job_info(carol, 1, &ji, &err); // refused: revoked
    drover_poll(carol, 0, &err);                      // what came before
    bool a_stop = c == 0 && audit_shows(admin, "carol", "reload",
                                        "refused: the key may no longer "
                                        "follow");
    drover_destroy(&alice);
    drover_destroy(&carol);
    drover_destroy(&admin);
    peers_down(&p, got != 1 || second != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(c, 0);
    DV_CHECK_EQ(fol, 0);
    DV_CHECK_EQ(first, 0);
    DV_CHECK_EQ(got_before, 1);
    DV_CHECK_EQ(reload, 0);
    DV_CHECK_EQ(second, 0);
    DV_CHECK_EQ(asked, DV_EPERM);
    DV_CHECK_EQ(got, 1);
    DV_CHECK(a_stop);
}

static const dv_test_case_t cases[] = {
    {"refusals name the role the table gives", test_refusals_name_the_role},
    {"plain mode refused on ws:// and other transports",
     test_plain_refused_on_ws},
    {"one broker per data folder", test_one_broker_per_data_dir},
    {"one broker per ipc path", test_one_broker_per_ipc_path},
    {"keyless connections hold no slot; limits per socket and key",
     test_keyless_connections_hold_no_slot},
    {"a handshake that never finishes is dropped", test_handshake_times_out},
    {"a revoked worker is dropped, its job requeued",
     test_revoked_worker_is_dropped},
    {"a worker key's queues are enforced", test_worker_key_queues},
    {"a revoked follower's stream stops", test_revoked_follower_stops},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
