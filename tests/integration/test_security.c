// test_security — docs/SECURITY.md with the real broker, workers and CLI:
// CURVE on tcp, keys refused at the handshake (none, unknown, a worker key
// on the client socket, a client key on the worker socket, the wrong broker
// key on either), roles and queues (a producer neither pushes models nor
// submits to another queue; what a consumer may and may not do; only admins
// move aliases, collect garbage and reload keys), owners of models and data
// sets (and an admin overriding them), revocation by `drover admin reload`
// and by SIGHUP, a failed reload changing nothing, the audit log holding
// each of these (limits per key: test_key_limits), and the
// bytes on the wire: relays between client and broker and between worker
// and broker see a job's payload and a model's bytes in plain mode and never
// with CURVE; a relay that damages a model on its way to the worker gets it
// refused by the worker's SHA-256 check and the job retried.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "drover.h"
#include "dv_keys.h"
#include "dv_test.h"
#include "dv_test_proc.h"
#include "dv_test_relay.h"
#include "dv_test_sec.h"

// Liveness: DV_TSEC_HB_S (dv_test_sec). Workers that are meant to be
// refused use HB_FAST_S: they say "never welcomed" after 3 of theirs.
#define HB_S      DV_TSEC_HB_S
#define HB_FAST_S "250"
#define WAIT_MS   30000

static void
kill_pid(pid_t pid, int sig)
{
    if (pid > 0) {
        kill(pid, sig);
    }
}

static int
submit_echo(drover_t *d,
            const char *queue,
            const char *payload,
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
    drover_result_destroy(&r);
    return rc;
}

// A relay in front of endpoint ep ("tcp://127.0.0.1:PORT"), which then
// names the relay instead. NULL on failure.
static dv_relay_t *
relay_in_front(char *ep, size_t size)
{
    int port = 0, relay_port = 0;
    dv_relay_t *relay = NULL;
    if (sscanf(ep, "tcp://127.0.0.1:%d", &port) == 1) {
        relay = dv_relay_start(port, &relay_port);
    }
    if (relay) {
        snprintf(ep, size, "tcp://127.0.0.1:%d", relay_port);
    }
    return relay;
}

// A softmax model of iris trained by `drover local train` into path, read
// back (caller frees; NULL on failure).
static unsigned char *
iris_model(const dv_tsec_t *s, char *path, size_t size, size_t *len)
{
    snprintf(path, size, "%s/iris.drvm", s->dir);
    const char *largs[] = {
        "local",  "train",   "--data", dv_test_data("iris_train.csv"),
        "--algo", "softmax", "--out",  path,
        NULL};
    if (dv_proc_run("DROVER_BIN", largs, NULL, s->dir, "cli.log") != 0) {
        return NULL;
    }
    unsigned char *bytes = dv_test_read_file(path, len);
    if (bytes && *len < 64) { // the needle below takes 32 from its middle
        free(bytes);
        bytes = NULL;
    }
    return bytes;
}

// An infer job on model "iris" for one flower; *r gets its result.
static int
infer_iris(drover_t *d, uint32_t max_attempts, drover_result_t **r)
{
    static const float x[4] = {5.1f, 3.5f, 1.4f, 0.2f};
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = "jobs";
    job.kind = "infer";
    job.model = "iris";
    job.input = x;
    job.rows = 1;
    job.cols = 4;
    job.max_attempts = max_attempts;
    job.backoff_ms = -1; // retry at once: the test waits for the retry
    drover_error_t err = {0};
    int rc = drover_run(d, &job, WAIT_MS, r, &err);
    if (rc == 0 && !drover_result_ok(*r)) {
        rc = drover_result_error(*r, NULL);
    }
    return rc;
}

// Workers the broker refuses. One whose handshake fails (the wrong broker
// key) is never welcomed and keeps trying (its log says so and where to
// look); one whose key is known but may not work (no worker role, a queue
// its key does not allow) has its `register` answered DV_EPERM: it logs the
// broker's reason and exits 1 (a configuration error: retrying cannot fix
// it). The broker audits each refusal, and none joins the workers.
static const struct {
    const char *what;       // the case, for messages
    const char *key;        // the worker's key
    const char *broker_key; // the .pub it pins as the broker's
    const char *queues;     // its --queues (NULL: none)
    const char *audit_key;  // the refusal's key in the audit ("": unknown)
    const char *action;     // the refusal's audited action
    const char *object;     // the refusal's object starts so
    const char *outcome;    // the refusal's outcome starts so
    const char *log;        // the worker's log says so
    int exit_status;        // -1: keeps running (killed by the test)
} refused_workers[] = {
    {"the wrong broker key", "w1", "stranger", NULL, "", "handshake",
     "workers socket", "refused: handshake failed before authentication",
     "never welcomed: if the broker refuses our key, its audit log says "
     "why; check --broker-key",
     -1},
    {"a producer key", "alice", "broker", NULL, "alice", "register", "worker w",
     "refused: key 'alice' (producer,consumer) may not take jobs: that "
     "takes worker,admin",
     "the broker refuses this worker: key 'alice' (producer,consumer) may "
     "not take jobs",
     1},
    {"a consumer key", "carol", "broker", NULL, "carol", "register", "worker w",
     "refused: key 'carol' (consumer) may not take jobs: that takes "
     "worker,admin",
     "the broker refuses this worker: key 'carol' (consumer) may not take "
     "jobs",
     1},
    {"a queue its key does not allow", "w2", "broker", "jobs,other", "w2",
     "register", "worker w", "refused: key 'w2' may not serve queue 'other'",
     "the broker refuses this worker: key 'w2' may not serve queue 'other'", 1},
};
#define N_REFUSED_WORKERS (sizeof refused_workers / sizeof refused_workers[0])

// No key, an unknown key, a worker key on the client socket, the wrong
// broker key: refused at the handshake (at once, DV_EPERM), each refusal in
// the audit log; on the worker socket, the wrong broker key is refused at
// the handshake and keys that may not work at `register` (refused_workers).
// An authorized producer runs jobs through a worker with a worker key.
static void
test_handshakes(void)
{
    dv_tsec_t s;
    // w2: a worker key for queue "jobs" only.
    bool up = dv_tsec_up(&s, NULL) &&
              dv_tsec_key_make(&s, "w2", DV_ROLE_WORKER, "jobs", true) &&
              dv_tsec_broker_start(&s, true) && dv_tsec_worker_start(&s, "w1");
    drover_t *d = NULL, *admin = NULL, *alice = NULL;
    drover_error_t err = {0};
    int plain = up ? dv_tsec_connect_as(&s, NULL, &d, &err) : -1;
    bool plain_says = strstr(err.text, "requires CURVE") != NULL;
    int unknown = up ? dv_tsec_connect_as(&s, "stranger", &d, &err) : -1;
    bool unknown_says = strstr(err.text, "refused key 'stranger'") != NULL;
    int worker_key = up ? dv_tsec_connect_as(&s, "w1", &d, &err) : -1;
    int ok = up ? dv_tsec_connect_as(&s, "alice", &alice, &err) : -1;
    int job = ok == 0 ? submit_echo(alice, "jobs", "hello", &err) : -1;
    int adm = up ? dv_tsec_connect_as(&s, "admin", &admin, &err) : -1;
    // The plain client is recorded without a key (its handshake failed
    // before authentication), the unknown key by its public key (no id),
    // the worker key by its id.
    bool saw_plain = adm == 0 && dv_tsec_audit_shows(
                                     admin, "", "handshake", "clients socket",
                                     "refused: handshake failed before "
                                     "authentication");
    bool saw_unknown =
        adm == 0 &&
        dv_tsec_audit_has(admin, NULL, "handshake", "clients socket",
                          "refused: unknown key", NULL);
    // alice's own key, but stranger's public key pinned as the broker's.
    int wrong_broker =
        up ? dv_tsec_connect_with(&s, "alice", "stranger", &d, &err) : -1;
    bool wrong_broker_says = strstr(err.text, "is --broker-key") != NULL;
    bool a_worker =
        adm == 0 && dv_tsec_audited(admin, "w1", "handshake", "refused");
    bool w_never[N_REFUSED_WORKERS] = {false};
    bool w_audited[N_REFUSED_WORKERS] = {false};
    int w_exit[N_REFUSED_WORKERS] = {0};
    for (size_t i = 0; adm == 0 && i < N_REFUSED_WORKERS; i++) {
        char log[64];
        snprintf(log, sizeof log, "refused-worker-%zu.log", i);
        dv_proc_t w = dv_tsec_worker_spawn_queues(
            &s, refused_workers[i].key, refused_workers[i].broker_key,
            HB_FAST_S, refused_workers[i].queues, log);
        w_never[i] =
            w.pid && dv_tsec_log_says(s.dir, log, refused_workers[i].log);
        w_audited[i] = dv_tsec_audit_shows(
            admin, refused_workers[i].audit_key, refused_workers[i].action,
            refused_workers[i].object, refused_workers[i].outcome);
        // One that exits does so by itself (signal 0: only waited for); one
        // that keeps trying is killed.
        w_exit[i] = dv_proc_stop(
            &w, refused_workers[i].exit_status == -1 ? SIGKILL : 0);
        if (!w_never[i] || !w_audited[i] ||
            w_exit[i] != refused_workers[i].exit_status) {
            fprintf(stderr, "  refused worker, %s:\n", refused_workers[i].what);
            dv_proc_dump_log(s.dir, log);
        }
    }
    drover_worker_t *ws = NULL;
    size_t n_workers = 0;
    int listed = adm == 0 ? drover_workers(admin, &ws, &n_workers, &err) : -1;
    drover_workers_free(&ws, n_workers);
    drover_destroy(&alice);
    drover_destroy(&admin);
    dv_tsec_down(&s, job != 0 || !saw_plain);
    DV_CHECK(up);
    DV_CHECK_EQ(plain, DV_EPERM); // not DV_ETIMEDOUT: refused at once
    DV_CHECK(plain_says);
    DV_CHECK_EQ(unknown, DV_EPERM);
    DV_CHECK(unknown_says);
    DV_CHECK_EQ(worker_key, DV_EPERM);
    DV_CHECK_EQ(wrong_broker, DV_EPERM); // not DV_ETIMEDOUT: at once
    DV_CHECK(wrong_broker_says);
    DV_CHECK_EQ(ok, 0);
    DV_CHECK_EQ(job, 0);
    DV_CHECK_EQ(adm, 0);
    DV_CHECK(saw_unknown);
    DV_CHECK(saw_plain);
    DV_CHECK(a_worker);
    for (size_t i = 0; i < N_REFUSED_WORKERS; i++) {
        DV_CHECK(w_never[i]);
        DV_CHECK(w_audited[i]);
        DV_CHECK_EQ(w_exit[i], refused_workers[i].exit_status);
    }
    DV_CHECK_EQ(listed, 0);
    DV_CHECK_EQ(n_workers, 1); // w1 only: none of the refused ones
}

// The clients of a roles case, and the job the admin ran on queue
// "other" (none of carol's queues).
typedef struct {
    drover_t *alice, *bob, *carol, *admin;
    uint64_t other_job;
} roles_t;

static void
ignore_result(drover_t *d, const drover_result_t *r, void *arg)
{
    (void)d;
    (void)r;
    (void)arg;
}

// What a consumer key may not do (docs/SECURITY.md, Roles).
static int
carol_submits(roles_t *c, drover_error_t *err)
{
    return submit_echo(c->carol, "jobs", "x", err);
}

static int
carol_pushes_dataset(roles_t *c, drover_error_t *err)
{
    return drover_dataset_push(c->carol, dv_test_data("iris_train.csv"),
                               "carols", NULL, err);
}

static int
carol_removes_model(roles_t *c, drover_error_t *err)
{
    return drover_model_rm(c->carol, "iris", 0, NULL, err);
}

static int
carol_follows_other(roles_t *c, drover_error_t *err)
{
    return drover_follow(c->carol, "other", "c-other", 0, false, ignore_result,
                         NULL, NULL, err);
}

static int
carol_reads_other(roles_t *c, drover_error_t *err)
{
    drover_job_info_t ji;
    return drover_job_info(c->carol, c->other_job, &ji, err);
}

static int
carol_lists_all(roles_t *c, drover_error_t *err)
{
    drover_job_info_t *jobs = NULL;
    size_t n = 0;
    int rc = drover_job_list(c->carol, NULL, NULL, 0, &jobs, &n, err);
    free(jobs);
    return rc;
}

static int
carol_lists_dead(roles_t *c, drover_error_t *err)
{
    drover_dead_t *dl = NULL;
    size_t n = 0;
    int rc = drover_dead_list(c->carol, NULL, 0, &dl, &n, err);
    drover_dead_free(&dl, n);
    return rc;
}

static int
carol_reads_audit(roles_t *c, drover_error_t *err)
{
    drover_audit_entry_t *e = NULL;
    size_t n = 0;
    int rc = drover_audit(c->carol, 0, &e, &n, NULL, err);
    free(e);
    return rc;
}

// What only admins do: move aliases, collect garbage, reload keys.
static int
alice_moves_alias(roles_t *c, drover_error_t *err)
{
    return drover_model_alias(c->alice, "iris", "prod", 1, NULL, err);
}

static int
carol_moves_alias(roles_t *c, drover_error_t *err)
{
    return drover_model_alias(c->carol, "iris", "prod", 1, NULL, err);
}

static int
bob_collects_garbage(roles_t *c, drover_error_t *err)
{
    uint32_t removed[8];
    size_t n = 0;
    return drover_model_gc(c->bob, "iris", 1, removed, 8, &n, err);
}

static int
carol_collects_garbage(roles_t *c, drover_error_t *err)
{
    uint32_t removed[8];
    size_t n = 0;
    return drover_model_gc(c->carol, "iris", 1, removed, 8, &n, err);
}

static int
alice_reloads(roles_t *c, drover_error_t *err)
{
    return drover_admin_reload(c->alice, NULL, err);
}

static int
carol_reloads(roles_t *c, drover_error_t *err)
{
    return drover_admin_reload(c->carol, NULL, err);
}

// Requests refused with DV_EPERM, the reason naming what was refused and
// what it takes, and audited (action, by key, outcome "refused: " + says).
static const struct {
    const char *what;                           // the case, for messages
    int (*op)(roles_t *c, drover_error_t *err); // makes the request
    const char *key;                            // who makes it
    const char *action;                         // its audit action
    const char *says;                           // in the reason
} refusals[] = {
    {"a consumer submits", carol_submits, "carol", "submit",
     "key 'carol' (consumer) may not submit: that takes producer,admin"},
    {"a consumer pushes a data set", carol_pushes_dataset, "carol",
     "dataset_push",
     "key 'carol' (consumer) may not dataset_push: that takes "
     "producer,admin"},
    {"a consumer removes a model", carol_removes_model, "carol", "model_rm",
     "key 'carol' (consumer) may not model_rm: that takes producer,admin"},
    {"a consumer follows another queue", carol_follows_other, "carol", "follow",
     "key 'carol' may not use queue 'other'"},
    {"a consumer reads a job of another queue", carol_reads_other, "carol",
     "job_get", "key 'carol' may not use queue 'other'"},
    {"a consumer lists every queue", carol_lists_all, "carol", "job_list",
     "key 'carol' may list only its queues"},
    {"a consumer reads dead letters", carol_lists_dead, "carol", "dead_list",
     "key 'carol' (consumer) may not dead_list: that takes admin"},
    {"a consumer reads the audit log", carol_reads_audit, "carol", "audit_list",
     "key 'carol' (consumer) may not audit_list: that takes admin"},
    {"a producer moves an alias", alice_moves_alias, "alice", "model_alias",
     "key 'alice' (producer,consumer) may not model_alias: that takes admin"},
    {"a consumer moves an alias", carol_moves_alias, "carol", "model_alias",
     "key 'carol' (consumer) may not model_alias: that takes admin"},
    {"a producer collects garbage", bob_collects_garbage, "bob", "model_gc",
     "key 'bob' (producer) may not model_gc: that takes admin"},
    {"a consumer collects garbage", carol_collects_garbage, "carol", "model_gc",
     "key 'carol' (consumer) may not model_gc: that takes admin"},
    {"a producer reloads keys", alice_reloads, "alice", "admin_reload",
     "key 'alice' (producer,consumer) may not admin_reload: that takes "
     "admin"},
    {"a consumer reloads keys", carol_reloads, "carol", "admin_reload",
     "key 'carol' (consumer) may not admin_reload: that takes admin"},
};
#define N_REFUSALS (sizeof refusals / sizeof refusals[0])

// Roles and queues: a producer submits to its queue only, pushes no
// model, reads no dead letters; an admin may. A consumer reads and follows
// its queues' jobs and results and does nothing else (the refusals table);
// non-admins neither move aliases, collect garbage nor reload keys, and
// their attempts change nothing. Owners: bob may not add to or delete
// alice's data set or model, alice may, and an admin may add a version to
// alice's model and delete one of hers, alice staying its owner.
static void
test_roles_and_owners(void)
{
    dv_tsec_t s;
    bool up = dv_tsec_up(&s, NULL) && dv_tsec_broker_start(&s, true) &&
              dv_tsec_worker_start(&s, "w1");
    roles_t c = {0};
    drover_t *alice = NULL, *bob = NULL, *carol = NULL, *admin = NULL;
    drover_error_t err = {0};
    int conn = up ? dv_tsec_connect_as(&s, "alice", &alice, &err) |
                        dv_tsec_connect_as(&s, "bob", &bob, &err) |
                        dv_tsec_connect_as(&s, "carol", &carol, &err) |
                        dv_tsec_connect_as(&s, "admin", &admin, &err)
                  : -1;
    if (conn != 0) {
        drover_destroy(&alice);
        drover_destroy(&bob);
        drover_destroy(&carol);
        drover_destroy(&admin);
        dv_tsec_down(&s, true);
        DV_CHECK_EQ(conn, 0);
    }
    c.alice = alice;
    c.bob = bob;
    c.carol = carol;
    c.admin = admin;
    int own_queue = submit_echo(alice, "jobs", "x", &err);
    // Job 1 is alice's: bob, a producer on the same queue, may not read it;
    // carol, a consumer of the queue, may, and its result too.
    drover_job_info_t ji;
    int bob_reads = drover_job_info(bob, 1, &ji, &err);
    bool bob_reads_says = strstr(err.text, "submitted by key 'alice'") != NULL;
    int alice_reads = drover_job_info(alice, 1, &ji, &err);
    int carol_reads = drover_job_info(carol, 1, &ji, &err);
    drover_result_t *r = NULL;
    int carol_waits = drover_wait(carol, 1, WAIT_MS, &r, &err);
    bool carol_result = carol_waits == 0 && drover_result_ok(r);
    drover_result_destroy(&r);
    drover_job_info_t *jobs = NULL;
    size_t n_jobs = 0;
    int carol_lists =
        drover_job_list(carol, NULL, "jobs", 0, &jobs, &n_jobs, &err);
    free(jobs);
    int other_queue = submit_echo(alice, "other", "x", &err);
    bool other_says = strstr(err.text, "queue 'other'") != NULL;
    drover_job_t oj = DROVER_JOB_INIT;
    oj.queue = "other";
    oj.payload = "x";
    oj.payload_len = 1;
    int admin_other = drover_submit(admin, &oj, WAIT_MS, &c.other_job, &err);
    // A model file: only an admin pushes one (twice: versions 1 and 2, and
    // alias prod at 2, which gc would keep: version 1 is what gc removes).
    char model[4400];
    size_t model_len = 0;
    unsigned char *model_bytes =
        iris_model(&s, model, sizeof model, &model_len);
    int trained = model_bytes ? 0 : -1;
    free(model_bytes);
    drover_model_t m = {0};
    int push_alice =
        trained == 0 ? drover_model_push(alice, model, "iris", &m, &err) : -1;
    int push_admin = trained == 0
                         ? drover_model_push(admin, model, "iris", &m, &err) |
                               drover_model_push(admin, model, "iris", &m, &err)
                         : -1;
    int alias_admin = drover_model_alias(admin, "iris", "prod", 2, NULL, &err);
    drover_dead_t *dl = NULL;
    size_t n_dead = 0;
    int dead_alice = drover_dead_list(alice, NULL, 0, &dl, &n_dead, &err);
    drover_dead_free(&dl, n_dead);
    // The refusals, with bob's key out of the folder: a reload that went
    // through would lock bob out.
    char pub[4400], saved[4400];
    snprintf(pub, sizeof pub, "%s/bob.pub", s.auth);
    snprintf(saved, sizeof saved, "%s/bob.pub.off", s.dir);
    int moved = rename(pub, saved);
    int rcs[N_REFUSALS];
    bool says[N_REFUSALS], logged[N_REFUSALS];
    for (size_t i = 0; i < N_REFUSALS; i++) {
        err.text[0] = '\0';
        rcs[i] = refusals[i].op(&c, &err);
        says[i] = strstr(err.text, refusals[i].says) != NULL;
        logged[i] =
            dv_tsec_audit_has(admin, refusals[i].key, refusals[i].action, NULL,
                              "refused: ", refusals[i].says);
        if (!says[i] || !logged[i]) {
            fprintf(stderr, "  %s: %s\n", refusals[i].what, err.text);
        }
    }
    // (One stream per connection: the refused follow came first.)
    int carol_follows = drover_follow(carol, "jobs", "c-jobs", 0, false,
                                      ignore_result, NULL, NULL, &err);
    drover_t *bob2 = NULL;
    int bob_still =
        dv_tsec_connect_as(&s, "bob", &bob2, &err); // no reload happened
    drover_destroy(&bob2);
    int back = rename(saved, pub);
    // Nothing changed: both versions stored, prod still at 2.
    drover_model_t v1 = {0}, v2 = {0};
    int v1_kept = drover_model_get(admin, "iris", 1, &v1, &err);
    int v2_kept = drover_model_get(admin, "iris", 2, &v2, &err);
    // alice's data set and the model her train job makes.
    drover_dataset_t ds = {0};
    int ds_alice = drover_dataset_push(alice, dv_test_data("iris_train.csv"),
                                       "flowers", &ds, &err);
    int ds_bob = drover_dataset_push(bob, dv_test_data("iris_train.csv"),
                                     "flowers", &ds, &err);
    bool bob_says = strstr(err.text, "belongs to key 'alice'") != NULL;
    drover_train_t t = {0};
    t.queue = "jobs";
    t.model = "petals";
    t.algo = "softmax";
    t.dataset = "flowers";
    int train_alice = -1, train_bob = -1;
    if (ds_alice == 0 && drover_train(alice, &t, WAIT_MS, &r, &err) == 0) {
        train_alice = drover_result_error(r, NULL);
    }
    drover_result_destroy(&r);
    train_bob = drover_train(bob, &t, WAIT_MS, &r, &err);
    drover_result_destroy(&r);
    unsigned removed = 0;
    int rm_bob = drover_model_rm(bob, "petals", 0, &removed, &err);
    int rm_alice_ds = drover_dataset_rm(alice, "flowers", 0, &removed, &err);
    // The admin overrides alice's ownership: adds version 2 to her model,
    // removes her version 1. The model stays hers: bob still may not
    // delete it, she may.
    drover_model_t pm = {0};
    int push_over = drover_model_push(admin, model, "petals", &pm, &err);
    unsigned rm_over_n = 0;
    int rm_over = drover_model_rm(admin, "petals", 1, &rm_over_n, &err);
    int rm_bob_after = drover_model_rm(bob, "petals", 0, &removed, &err);
    bool rm_bob_says = strstr(err.text, "belongs to key 'alice'") != NULL;
    unsigned rm_alice_n = 0;
    int rm_alice = drover_model_rm(alice, "petals", 0, &rm_alice_n, &err);
    bool a_push = dv_tsec_audited(admin, "alice", "model_push", "refused");
    bool a_queue = dv_tsec_audited(admin, "alice", "submit", "refused");
    bool a_bob = dv_tsec_audited(admin, "bob", "dataset_push", "refused");
    bool a_ok = dv_tsec_audited(admin, "admin", "model_push", "ok") &&
                dv_tsec_audited(admin, "alice", "model_rm", "ok");
    bool a_over = dv_tsec_audit_has(admin, "admin", "model_push", "name petals",
                                    "ok", NULL) &&
                  dv_tsec_audit_has(admin, "admin", "model_rm", "name petals",
                                    "ok", NULL);
    drover_destroy(&alice);
    drover_destroy(&bob);
    drover_destroy(&carol);
    drover_destroy(&admin);
    dv_tsec_down(&s, own_queue != 0 || train_alice != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(own_queue, 0);
    DV_CHECK_EQ(bob_reads, DV_EPERM);
    DV_CHECK(bob_reads_says);
    DV_CHECK_EQ(alice_reads, 0);
    DV_CHECK_EQ(carol_reads, 0);
    DV_CHECK_EQ(carol_waits, 0);
    DV_CHECK(carol_result);
    DV_CHECK_EQ(carol_lists, 0);
    DV_CHECK_EQ(carol_follows, 0);
    DV_CHECK_EQ(other_queue, DV_EPERM);
    DV_CHECK(other_says);
    DV_CHECK_EQ(admin_other, 0);
    DV_CHECK_EQ(trained, 0);
    DV_CHECK_EQ(push_alice, DV_EPERM);
    DV_CHECK_EQ(push_admin, 0);
    DV_CHECK_EQ(alias_admin, 0);
    DV_CHECK_EQ(dead_alice, DV_EPERM);
    DV_CHECK_EQ(moved, 0);
    for (size_t i = 0; i < N_REFUSALS; i++) {
        DV_CHECK_EQ(rcs[i], DV_EPERM);
        DV_CHECK(says[i]);
        DV_CHECK(logged[i]);
    }
    DV_CHECK_EQ(bob_still, 0);
    DV_CHECK_EQ(back, 0);
    DV_CHECK_EQ(v1_kept, 0); // gc did not remove it
    DV_CHECK_EQ(v2_kept, 0);
    DV_CHECK_STR_EQ(v1.aliases, "");
    DV_CHECK_STR_EQ(v2.aliases, "prod"); // the alias did not move
    DV_CHECK_EQ(ds_alice, 0);
    DV_CHECK_EQ(ds_bob, DV_EPERM);
    DV_CHECK(bob_says);
    DV_CHECK_EQ(train_alice, 0);
    DV_CHECK_EQ(train_bob, DV_EPERM);
    DV_CHECK_EQ(rm_bob, DV_EPERM);
    DV_CHECK_EQ(rm_alice_ds, 0);
    DV_CHECK_EQ(push_over, 0);
    DV_CHECK_EQ(pm.version, 2);
    DV_CHECK_EQ(rm_over, 0);
    DV_CHECK_EQ(rm_over_n, 1);
    DV_CHECK_EQ(rm_bob_after, DV_EPERM);
    DV_CHECK(rm_bob_says);
    DV_CHECK_EQ(rm_alice, 0);
    DV_CHECK_EQ(rm_alice_n, 1); // the admin's version 2, on her model
    DV_CHECK(a_push);
    DV_CHECK(a_queue);
    DV_CHECK(a_bob);
    DV_CHECK(a_ok);
    DV_CHECK(a_over);
}

// Folders a reload must refuse (docs/SECURITY.md, Rotation and
// revocation): file (in the authorized folder) is written as a copy of
// keys/from, or with text when from is NULL.
static const struct {
    const char *what; // the case, for messages
    const char *file; // put into the authorized folder
    const char *from; // a copy of keys/FROM; NULL: text
    const char *text; //
    int want;         // the reload's error
    const char *says; // in its reason and the audit entry
} bad_reloads[] = {
    {"a malformed file", "garbage.pub", NULL, "this is not a key file\n",
     DV_EFORMAT, "garbage.pub"},
    {"a secret key in the folder", "stranger.key", "stranger.key", NULL,
     DV_EACCES, "stranger.key"},
    {"two files with the same id", "alice-again.pub", "alice.pub", NULL,
     DV_EINVAL, "alice-again.pub"},
};
#define N_BAD_RELOADS (sizeof bad_reloads / sizeof bad_reloads[0])

// Put bad_reloads[i]'s file into the authorized folder (at, its path).
static bool
bad_reload_write(const dv_tsec_t *s, size_t i, char *at, size_t size)
{
    snprintf(at, size, "%s/%s", s->auth, bad_reloads[i].file);
    if (!bad_reloads[i].from) {
        return dv_test_write_file(at, bad_reloads[i].text,
                                  strlen(bad_reloads[i].text)) == 0;
    }
    char from[4400];
    snprintf(from, sizeof from, "%s/%s", s->keys, bad_reloads[i].from);
    size_t len = 0;
    unsigned char *bytes = dv_test_read_file(from, &len);
    bool ok = bytes && dv_test_write_file(at, bytes, len) == 0;
    free(bytes);
    return ok;
}

// A reload that fails changes nothing: with bob's key out of the folder and
// a bad file in it, `admin_reload` fails with the file's error, bob still
// connects and submits, and the audit log has the reload's error.
static void
test_failed_reload(void)
{
    dv_tsec_t s;
    bool up = dv_tsec_up(&s, NULL) && dv_tsec_broker_start(&s, true) &&
              dv_tsec_worker_start(&s, "w1");
    drover_t *admin = NULL;
    drover_error_t err = {0};
    int c = up ? dv_tsec_connect_as(&s, "admin", &admin, &err) : -1;
    if (c != 0) {
        dv_tsec_down(&s, true);
        DV_CHECK_EQ(c, 0);
    }
    char pub[4400], saved[4400];
    snprintf(pub, sizeof pub, "%s/bob.pub", s.auth);
    snprintf(saved, sizeof saved, "%s/bob.pub.off", s.dir);
    int moved = rename(pub, saved);
    int rcs[N_BAD_RELOADS], bob[N_BAD_RELOADS];
    bool written[N_BAD_RELOADS], says[N_BAD_RELOADS], logged[N_BAD_RELOADS];
    for (size_t i = 0; i < N_BAD_RELOADS; i++) {
        char at[4400];
        written[i] = bad_reload_write(&s, i, at, sizeof at);
        err.text[0] = '\0';
        rcs[i] = drover_admin_reload(admin, NULL, &err);
        says[i] = strstr(err.text, bad_reloads[i].says) != NULL;
        char outcome[64];
        snprintf(outcome, sizeof outcome,
                 "error: %s: ", dv_err_name(bad_reloads[i].want));
        logged[i] =
            dv_tsec_audit_has(admin, "admin", "reload", "authorized keys",
                              outcome, bad_reloads[i].says);
        if (!says[i] || !logged[i]) {
            fprintf(stderr, "  %s: %s\n", bad_reloads[i].what, err.text);
        }
        drover_t *b = NULL;
        bob[i] = dv_tsec_connect_as(&s, "bob", &b, &err);
        if (bob[i] == 0) {
            bob[i] = submit_echo(b, "jobs", "x", &err);
        }
        drover_destroy(&b);
        unlink(at);
    }
    // With the folder clean again the same reload goes through: bob is out.
    size_t keys = 0;
    int reload = drover_admin_reload(admin, &keys, &err);
    drover_t *b = NULL;
    int bob_out = dv_tsec_connect_as(&s, "bob", &b, &err);
    drover_destroy(&b);
    drover_destroy(&admin);
    dv_tsec_down(&s, reload != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(moved, 0);
    for (size_t i = 0; i < N_BAD_RELOADS; i++) {
        DV_CHECK(written[i]);
        DV_CHECK_EQ(rcs[i], bad_reloads[i].want);
        DV_CHECK(says[i]);
        DV_CHECK(logged[i]);
        DV_CHECK_EQ(bob[i], 0); // the old keys stayed
    }
    DV_CHECK_EQ(reload, 0);
    DV_CHECK_EQ(keys, 4); // admin, alice, carol and w1: not bob
    DV_CHECK_EQ(bob_out, DV_EPERM);
}

// `drover admin reload` as the admin key: the CLI's exit status.
static int
reload_keys(dv_tsec_t *s)
{
    char admin_key[4400], broker_pub[4400];
    dv_tsec_key_path(s, "admin", "key", admin_key, sizeof admin_key);
    dv_tsec_key_path(s, "broker", "pub", broker_pub, sizeof broker_pub);
    const char *reload[] = {"admin",        "reload",   "--broker",
                            s->cep,         "--key",    admin_key,
                            "--broker-key", broker_pub, NULL};
    return dv_proc_run("DROVER_BIN", reload, NULL, s->dir, "cli.log");
}

// A new key pair named alice (producer on "jobs") as KEYS/alice-new.key and
// .pub, the .pub's path into new_pub: the CLI's exit status.
static int
keygen_new_alice(dv_tsec_t *s, char *new_pub, size_t size)
{
    char stem[4400];
    snprintf(stem, sizeof stem, "%s/alice-new", s->keys);
    snprintf(new_pub, size, "%s.pub", stem);
    const char *keygen[] = {"keygen", "--out",   stem,       "--name",
                            "alice",  "--roles", "producer", "--queues",
                            "jobs",   NULL};
    return dv_proc_run("DROVER_BIN", keygen, NULL, s->dir, "cli.log");
}

// Revocation: with alice's key out of the folder, `drover admin reload`
// makes her open connection's next request fail and a new connection
// refused; put back, SIGHUP lets her in again. Both reloads are audited.
static void
test_revocation(void)
{
    dv_tsec_t s;
    bool up = dv_tsec_up(&s, NULL) && dv_tsec_broker_start(&s, true) &&
              dv_tsec_worker_start(&s, "w1");
    drover_t *alice = NULL, *again = NULL;
    drover_error_t err = {0};
    int c = up ? dv_tsec_connect_as(&s, "alice", &alice, &err) : -1;
    if (c != 0) {
        dv_tsec_down(&s, true);
        DV_CHECK_EQ(c, 0);
    }
    int before = submit_echo(alice, "jobs", "x", &err);
    char pub[4400], saved[4400];
    snprintf(pub, sizeof pub, "%s/alice.pub", s.auth);
    snprintf(saved, sizeof saved, "%s/alice.pub.off", s.dir);
    int moved = rename(pub, saved);
    int cli = up ? reload_keys(&s) : -1;
    int after = c == 0 ? submit_echo(alice, "jobs", "x", &err) : -1;
    bool after_says = strstr(err.text, "no longer authorized") != NULL;
    int fresh = up ? dv_tsec_connect_as(&s, "alice", &again, &err) : -1;
    // Back in, by SIGHUP: the signal is handled on the broker's loop, so
    // try until it has been (a deadline, not a count).
    int back = rename(saved, pub);
    kill_pid(s.broker.pid, SIGHUP);
    int welcome = -1;
    int64_t deadline = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
    while (up && welcome != 0 && dv_test_now_ms() < deadline) {
        drover_destroy(&again);
        welcome = dv_tsec_connect_as(&s, "alice", &again, &err);
        if (welcome != 0) {
            dv_tsec_nap();
        }
    }
    int resumed = welcome == 0 ? submit_echo(again, "jobs", "x", &err) : -1;
    // Rotation keeping the id: remove alice.pub and reload (her open
    // connections are cut off: the id is gone), then put a new pair's
    // .pub named alice in its place and reload: the new key connects, the
    // old one is refused at the handshake.
    char new_pub[4410];
    int gen = resumed == 0 ? keygen_new_alice(&s, new_pub, sizeof new_pub) : -1;
    int removed = gen == 0 ? unlink(pub) : -1;
    int cli2 = removed == 0 ? reload_keys(&s) : -1;
    int old_key = cli2 == 0 ? submit_echo(again, "jobs", "x", &err) : -1;
    bool old_says = strstr(err.text, "no longer authorized") != NULL;
    size_t pub_len = 0;
    unsigned char *pub_bytes =
        cli2 == 0 ? dv_test_read_file(new_pub, &pub_len) : NULL;
    int added = pub_bytes ? dv_test_write_file(pub, pub_bytes, pub_len) : -1;
    free(pub_bytes);
    int cli3 = added == 0 ? reload_keys(&s) : -1;
    drover_t *rotated = NULL, *old = NULL;
    int new_conn =
        cli3 == 0 ? dv_tsec_connect_as(&s, "alice-new", &rotated, &err) : -1;
    int new_key = new_conn == 0 ? submit_echo(rotated, "jobs", "x", &err) : -1;
    int old_conn = cli3 == 0 ? dv_tsec_connect_as(&s, "alice", &old, &err) : -1;
    drover_destroy(&old);
    drover_destroy(&rotated);
    drover_t *admin = NULL;
    int adm = up ? dv_tsec_connect_as(&s, "admin", &admin, &err) : -1;
    bool a_reload = adm == 0 && dv_tsec_audited(admin, "admin", "reload", "ok");
    bool a_hup = adm == 0 && dv_tsec_audited(admin, "", "reload", "ok");
    bool a_revoked =
        adm == 0 && dv_tsec_audited(admin, "alice", "submit", "refused");
    drover_destroy(&admin);
    drover_destroy(&alice);
    drover_destroy(&again);
    dv_tsec_down(&s, resumed != 0 || new_key != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(before, 0);
    DV_CHECK_EQ(moved, 0);
    DV_CHECK_EQ(cli, 0);
    DV_CHECK_EQ(after, DV_EPERM);
    DV_CHECK(after_says);
    DV_CHECK_EQ(fresh, DV_EPERM);
    DV_CHECK_EQ(back, 0);
    DV_CHECK_EQ(welcome, 0);
    DV_CHECK_EQ(resumed, 0);
    DV_CHECK_EQ(gen, 0);
    DV_CHECK_EQ(removed, 0);
    DV_CHECK_EQ(cli2, 0);
    DV_CHECK_EQ(old_key, DV_EPERM);
    DV_CHECK(old_says);
    DV_CHECK_EQ(added, 0);
    DV_CHECK_EQ(cli3, 0);
    DV_CHECK_EQ(new_conn, 0);
    DV_CHECK_EQ(new_key, 0);
    DV_CHECK_EQ(old_conn, DV_EPERM);
    DV_CHECK(a_reload);
    DV_CHECK(a_hup);
    DV_CHECK(a_revoked);
}

// Rotation in one step: alice.pub replaced by a new pair's .pub under the
// same id, one reload. A connection is matched to the key it proved at its
// handshake, not only to its id: the connection alice opened with the old
// key is refused at its next request, and the new key connects and works.
static void
test_replaced_key_cuts_old_connections(void)
{
    dv_tsec_t s;
    bool up = dv_tsec_up(&s, NULL) && dv_tsec_broker_start(&s, true) &&
              dv_tsec_worker_start(&s, "w1");
    drover_t *alice = NULL, *rotated = NULL, *admin = NULL;
    drover_error_t err = {0};
    int c = up ? dv_tsec_connect_as(&s, "alice", &alice, &err) : -1;
    int before = c == 0 ? submit_echo(alice, "jobs", "x", &err) : -1;
    char new_pub[4410], pub[4400], tmp[4410];
    snprintf(pub, sizeof pub, "%s/alice.pub", s.auth);
    snprintf(tmp, sizeof tmp, "%s/alice.pub.tmp", s.dir);
    int gen = before == 0 ? keygen_new_alice(&s, new_pub, sizeof new_pub) : -1;
    size_t pub_len = 0;
    unsigned char *pub_bytes =
        gen == 0 ? dv_test_read_file(new_pub, &pub_len) : NULL;
    int replaced = pub_bytes && dv_test_write_file(tmp, pub_bytes, pub_len) == 0
                       ? rename(tmp, pub) // one step: the id never leaves
                       : -1;
    free(pub_bytes);
    int cli = replaced == 0 ? reload_keys(&s) : -1;
    int old_key = cli == 0 ? submit_echo(alice, "jobs", "x", &err) : -1;
    bool old_says = strstr(err.text, "no longer authorized") != NULL;
    int new_conn =
        cli == 0 ? dv_tsec_connect_as(&s, "alice-new", &rotated, &err) : -1;
    int new_key = new_conn == 0 ? submit_echo(rotated, "jobs", "x", &err) : -1;
    int adm = up ? dv_tsec_connect_as(&s, "admin", &admin, &err) : -1;
    bool a_refused =
        adm == 0 && dv_tsec_audited(admin, "alice", "submit", "refused");
    drover_destroy(&admin);
    drover_destroy(&rotated);
    drover_destroy(&alice);
    dv_tsec_down(&s, old_key != DV_EPERM || new_key != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(c, 0);
    DV_CHECK_EQ(before, 0);
    DV_CHECK_EQ(gen, 0);
    DV_CHECK_EQ(replaced, 0);
    DV_CHECK_EQ(cli, 0);
    DV_CHECK_EQ(old_key, DV_EPERM);
    DV_CHECK(old_says);
    DV_CHECK_EQ(new_conn, 0);
    DV_CHECK_EQ(new_key, 0);
    DV_CHECK(a_refused);
}

// The wire: relays between a client and the broker and between the worker
// and the broker record every byte. A model is pushed and run by an infer
// job, and an echo job carries a marker. In plain mode both relays see the
// marker and the model's bytes (the test can tell); with CURVE neither ever
// does, though both jobs run.
static void
test_wire_is_encrypted(void)
{
    static const char marker[] = "drover-plaintext-marker-7f3a9c2e";
    enum { CLIENT, WORKER };
    bool marker_seen[2][2] = {{true, true}, {true, true}};
    bool model_seen[2][2] = {{true, true}, {true, true}};
    bool overflowed[2] = {true, true};
    int ran[2] = {-1, -1}, inferred[2] = {-1, -1};
    bool up[2] = {false, false};
    for (int secure = 0; secure < 2; secure++) {
        dv_tsec_t s;
        up[secure] = dv_tsec_up(&s, NULL) && dv_tsec_broker_start(&s, secure);
        dv_relay_t *relays[2] = {NULL, NULL};
        if (up[secure]) {
            relays[CLIENT] = relay_in_front(s.cep, sizeof s.cep);
            relays[WORKER] = relay_in_front(s.wep, sizeof s.wep);
        }
        up[secure] = relays[CLIENT] && relays[WORKER] &&
                     dv_tsec_worker_start(&s, secure ? "w1" : NULL);
        char model[4400];
        size_t len = 0;
        unsigned char *bytes =
            up[secure] ? iris_model(&s, model, sizeof model, &len) : NULL;
        drover_t *d = NULL, *admin = NULL;
        drover_error_t err = {0};
        if (bytes &&
            dv_tsec_connect_as(&s, secure ? "alice" : NULL, &d, &err) == 0 &&
            dv_tsec_connect_as(&s, secure ? "admin" : NULL, &admin, &err) ==
                0 &&
            drover_model_push(admin, model, "iris", NULL, &err) == 0) {
            ran[secure] = submit_echo(d, "jobs", marker, &err);
            drover_result_t *r = NULL;
            inferred[secure] = infer_iris(d, 1, &r);
            drover_result_destroy(&r);
        }
        drover_destroy(&d);
        drover_destroy(&admin);
        overflowed[secure] = false;
        for (int i = 0; bytes && i < 2; i++) {
            marker_seen[secure][i] =
                dv_relay_saw(relays[i], marker, strlen(marker));
            model_seen[secure][i] =
                dv_relay_saw(relays[i], bytes + len / 2, 32);
            overflowed[secure] |= dv_relay_overflowed(relays[i]);
        }
        free(bytes);
        dv_relay_stop(&relays[CLIENT]);
        dv_relay_stop(&relays[WORKER]);
        dv_tsec_down(&s, ran[secure] != 0 || inferred[secure] != 0);
    }
    for (int secure = 0; secure < 2; secure++) {
        DV_CHECK(up[secure]);
        DV_CHECK_EQ(ran[secure], 0);
        DV_CHECK_EQ(inferred[secure], 0);
        DV_CHECK(!overflowed[secure]);
    }
    // Plain: the payload and the model cross both sockets in the clear.
    DV_CHECK(marker_seen[0][CLIENT]);
    DV_CHECK(marker_seen[0][WORKER]);
    DV_CHECK(model_seen[0][CLIENT]);
    DV_CHECK(model_seen[0][WORKER]);
    // CURVE: never, on either socket.
    DV_CHECK(!marker_seen[1][CLIENT]);
    DV_CHECK(!marker_seen[1][WORKER]);
    DV_CHECK(!model_seen[1][CLIENT]);
    DV_CHECK(!model_seen[1][WORKER]);
}

// A model damaged on its way to the worker: a relay in front of the worker
// socket (plain tcp: with CURVE a changed byte fails the frame's MAC and
// the connection instead) inverts one byte of the first model file it
// passes. The worker's SHA-256 check refuses it (DV_ECHECKSUM, "damaged in
// transit"), the broker retries the job (a retryable error,
// docs/SEMANTICS.md), the worker fetches the model again and the second
// attempt gives the same output as an undamaged run.
static void
test_model_damaged_in_transit(void)
{
    dv_tsec_t s;
    bool up = dv_tsec_up(&s, NULL) && dv_tsec_broker_start(&s, false);
    dv_relay_t *relay = up ? relay_in_front(s.wep, sizeof s.wep) : NULL;
    char model[4400];
    size_t len = 0;
    unsigned char *bytes =
        relay ? iris_model(&s, model, sizeof model, &len) : NULL;
    if (bytes) {
        dv_relay_corrupt(relay, bytes + len / 2, 32, 1);
    }
    up = bytes && dv_tsec_worker_start(&s, NULL);
    drover_t *d = NULL;
    drover_error_t err = {0};
    int pushed = up && dv_tsec_connect_as(&s, NULL, &d, &err) == 0
                     ? drover_model_push(d, model, "iris", NULL, &err)
                     : -1;
    drover_result_t *r1 = NULL, *r2 = NULL;
    int first = pushed == 0 ? infer_iris(d, 3, &r1) : -1;
    int second = pushed == 0 ? infer_iris(d, 3, &r2) : -1; // cached: clean
    unsigned damaged = relay ? dv_relay_corrupted(relay) : 0;
    uint32_t attempts = r1 ? drover_result_attempts(r1) : 0;
    const drover_attempt_error_t *errs = NULL;
    size_t n_errs = r1 ? drover_result_errors(r1, &errs) : 0;
    int code = n_errs ? errs[0].code : 0;
    uint32_t attempt = n_errs ? errs[0].attempt : 0;
    bool says =
        n_errs && strstr(errs[0].text, "the file's SHA-256 does not match the "
                                       "broker's (damaged in transit)");
    size_t rows1 = 0, cols1 = 0, rows2 = 0, cols2 = 0;
    const float *o1 = r1 ? drover_result_output(r1, &rows1, &cols1) : NULL;
    const float *o2 = r2 ? drover_result_output(r2, &rows2, &cols2) : NULL;
    bool same = o1 && o2 && rows1 == 1 && rows2 == 1 && cols1 == 3 &&
                cols2 == 3 && memcmp(o1, o2, 3 * sizeof *o1) == 0;
    bool logged = up && dv_tsec_log_says(s.dir, "worker.log",
                                         "the file's SHA-256 does not match");
    drover_result_destroy(&r1);
    drover_result_destroy(&r2);
    drover_destroy(&d);
    free(bytes);
    dv_relay_stop(&relay);
    dv_tsec_down(&s, first != 0 || code != DV_ECHECKSUM);
    DV_CHECK(up);
    DV_CHECK_EQ(pushed, 0);
    DV_CHECK_EQ(damaged, 1);
    DV_CHECK_EQ(first, 0);
    DV_CHECK_EQ(attempts, 2);
    DV_CHECK_EQ(n_errs, 1);
    DV_CHECK_EQ(attempt, 1);
    DV_CHECK_EQ(code, DV_ECHECKSUM);
    DV_CHECK(says);
    DV_CHECK(logged);
    DV_CHECK_EQ(second, 0);
    DV_CHECK(same);
}

// Signed model files: a broker run with --require-signed refuses an
// unsigned file and one signed by a key that is not an authorized admin,
// takes one an admin signed, and records who signed it.
static void
test_signed_models(void)
{
    const char *extra[] = {"--require-signed", NULL};
    dv_tsec_t s;
    bool up = dv_tsec_up(&s, extra) &&
              dv_tsec_key_make(&s, "outsider", DV_ROLE_ADMIN, NULL, false) &&
              dv_tsec_broker_start(&s, true);
    drover_t *admin = NULL;
    drover_error_t err = {0};
    int c = up ? dv_tsec_connect_as(&s, "admin", &admin, &err) : -1;
    if (c != 0) {
        dv_tsec_down(&s, true);
        DV_CHECK_EQ(c, 0);
    }
    char model[4400], admin_key[4400], bob_key[4400], out_key[4400];
    snprintf(model, sizeof model, "%s/iris.drvm", s.dir);
    dv_tsec_key_path(&s, "admin", "key", admin_key, sizeof admin_key);
    dv_tsec_key_path(&s, "bob", "key", bob_key, sizeof bob_key);
    dv_tsec_key_path(&s, "outsider", "key", out_key, sizeof out_key);
    const char *largs[] = {
        "local",  "train",   "--data", dv_test_data("iris_train.csv"),
        "--algo", "softmax", "--out",  model,
        NULL};
    int trained = dv_proc_run("DROVER_BIN", largs, NULL, s.dir, "cli.log");
    drover_model_t m = {0};
    int unsigned_rc = drover_model_push(admin, model, "iris", &m, &err);
    bool unsigned_says = strstr(err.text, "--require-signed") != NULL;
    int by_bob =
        drover_model_push_signed(admin, model, "iris", bob_key, &m, &err);
    int by_outsider =
        drover_model_push_signed(admin, model, "iris", out_key, &m, &err);
    bool outsider_says = strstr(err.text, "not an authorized admin") != NULL;
    int signed_rc =
        drover_model_push_signed(admin, model, "iris", admin_key, &m, &err);
    drover_schema_t sc;
    memset(&sc, 0, sizeof sc);
    int show = signed_rc == 0
                   ? drover_model_schema(admin, "iris", m.version, &sc, &err)
                   : -1;
    drover_lineage_t g = sc.lineage;
    if (show == 0) {
        drover_schema_clear(&sc);
    }
    bool a_refused =
        dv_tsec_audited(admin, "admin", "model_push", "error: DV_EPERM");
    drover_destroy(&admin);
    dv_tsec_down(&s, signed_rc != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(trained, 0);
    DV_CHECK_EQ(unsigned_rc, DV_EPERM);
    DV_CHECK(unsigned_says);
    DV_CHECK_EQ(by_bob, DV_EPERM); // a producer's signature
    DV_CHECK_EQ(by_outsider, DV_EPERM);
    DV_CHECK(outsider_says);
    DV_CHECK_EQ(signed_rc, 0);
    DV_CHECK_EQ(m.version, 1); // the refused ones stored nothing
    DV_CHECK_EQ(show, 0);
    DV_CHECK(g.has);
    DV_CHECK_STR_EQ(g.pushed_by, "admin");
    DV_CHECK_STR_EQ(g.signed_by, "admin");
    DV_CHECK(a_refused);
}

// Plain mode is the default only on loopback and ipc://: a broker told to
// listen on every address without keys refuses to start unless --plain,
// and then warns in its log.
static void
test_plain_only_on_loopback(void)
{
    char *dir = dv_test_tmpdir();
    const char *refused[] = {"--client", "tcp://0.0.0.0:0", "--worker",
                             "tcp://127.0.0.1:0", NULL};
    int rc =
        dv_proc_run("DROVER_BROKER_BIN", refused, NULL, dir, "refused.log");
    size_t len = 0;
    char path[4300];
    snprintf(path, sizeof path, "%s/refused.log", dir);
    char *log = (char *)dv_test_read_file(path, &len);
    bool says = log && strstr(log, "--plain") && strstr(log, "--secret-key");
    free(log);
    const char *allowed[] = {"--client",          "tcp://0.0.0.0:0", "--worker",
                             "tcp://127.0.0.1:0", "--plain",         NULL};
    dv_proc_t b = dv_proc_start("DROVER_BROKER_BIN", allowed, dir, "plain.log");
    char ready[9000];
    bool up = b.pid && dv_proc_wait_ready(&b, ready, sizeof ready);
    int stop = dv_proc_stop(&b, SIGTERM);
    snprintf(path, sizeof path, "%s/plain.log", dir);
    log = (char *)dv_test_read_file(path, &len);
    bool warned = log && strstr(log, "NO ENCRYPTION, NO AUTHENTICATION");
    free(log);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK(rc != 0);
    DV_CHECK(says);
    DV_CHECK(up);
    DV_CHECK_EQ(stop, 0);
    DV_CHECK(warned);
}

static const dv_test_case_t cases[] = {
    {"handshakes: no key, unknown key, wrong broker key, wrong socket "
     "refused",
     test_handshakes},
    {"roles, queues and owners", test_roles_and_owners},
    {"a failed reload changes nothing and is audited", test_failed_reload},
    {"revocation by reload and SIGHUP", test_revocation},
    {"a key replaced under its id cuts off the old key's connections",
     test_replaced_key_cuts_old_connections},
    {"the wire is encrypted", test_wire_is_encrypted},
    {"a model damaged in transit is refused by the worker, the job retried",
     test_model_damaged_in_transit},
    {"signed model files", test_signed_models},
    {"plain mode only on loopback unless --plain", test_plain_only_on_loopback},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
