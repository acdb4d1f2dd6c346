// test_peers — hostile peers and second owners against real processes
// (issue 13): connections that never finish a handshake, a worker key that
// is revoked or restricted to some queues, refusal texts naming the right
// role, plain mode on exposed transports, and a second broker on the same
// data folder or ipc path. Each case makes the attack, then proves the
// broker and its workers are alive and still serve.
#include <errno.h>
#include <netinet/in.h>
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
    char stem[4400], from[4500], to[4500];
    snprintf(stem, sizeof stem, "%s/%s", p->keys, name);
    dv_error_t err = {0};
    if (dv_key_generate(stem, name, roles, queues, &err) != 0) {
        fprintf(stderr, "  keygen %s: %s\n", name, err.text);
        return false;
    }
    if (roles == 0) {
        return true; // the broker's own pair
    }
    snprintf(from, sizeof from, "%s.pub", stem);
    snprintf(to, sizeof to, "%s/%s.pub", p->auth, name);
    size_t len = 0;
    unsigned char *bytes = dv_test_read_file(from, &len);
    bool ok = bytes && dv_test_write_file(to, bytes, len) == 0;
    free(bytes);
    return ok;
}

static void
key_path(const peers_t *p,
         const char *name,
         const char *ext,
         char *buf,
         size_t size)
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
    const char *args[12 + MAX_EXTRA] = {
        "--client",       "tcp://127.0.0.1:0", "--worker",
        "tcp://127.0.0.1:0", "--data",         p->data,
        "--heartbeat-ms", HB_MS,               "--secret-key",
        secret,           "--authorized-keys", p->auth};
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
    const char *args[16] = {"--broker",     p->wep, "--name",       name,
                            "--heartbeat-ms", HB_MS, "--key",        k,
                            "--broker-key", b};
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
            fprintf(stderr, "  refusal %d: %d '%s'\n    want '%s'\n", i,
                    rcs[i], texts[i], want[i]);
        }
        DV_CHECK_EQ(rcs[i], DV_EPERM);
        DV_CHECK(strstr(texts[i], want[i]) != NULL);
    }
    DV_CHECK_EQ(alive, 0);
}

static const dv_test_case_t cases[] = {
    {"refusals name the role the table gives", test_refusals_name_the_role},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
