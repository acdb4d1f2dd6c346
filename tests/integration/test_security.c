// test_security — docs/SECURITY.md with the real broker, workers and CLI:
// CURVE on tcp, keys refused at the handshake (none, unknown, a worker key
// on the client socket), roles and queues (a producer neither pushes
// models nor submits to another queue), owners of models and data sets,
// revocation by `drover admin reload` and by SIGHUP, the audit log holding
// each of these, limits (connections, unfinished jobs per key), and the
// bytes on the wire: a relay between client and broker sees a job's
// payload in plain mode and never with CURVE.
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

#define HB_S     "250"
#define WAIT_MS  30000
#define MAX_ARGS 8

typedef struct {
    char *dir;
    char auth[4300]; // authorized keys folder
    char keys[4300]; // where every key pair lives
    char data[4300]; // broker data
    char cep[256], wep[256];
    dv_proc_t broker;
    dv_proc_t worker;
    const char *extra[MAX_ARGS];
} sec_t;

static void
kill_pid(pid_t pid, int sig)
{
    if (pid > 0) {
        kill(pid, sig);
    }
}

// keys/NAME.key + .pub with roles and queues; copied into the authorized
// folder unless stranger.
static bool
make_key(sec_t *s,
         const char *name,
         unsigned roles,
         const char *queues,
         bool authorize)
{
    return dv_test_key_make(s->keys, authorize ? s->auth : NULL, name, roles,
                            queues);
}

static void
key_path(
    const sec_t *s, const char *name, const char *ext, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s.%s", s->keys, name, ext);
}

// A broker on tcp 127.0.0.1 (ports picked by the system), CURVE on when
// secure, with extra options.
static bool
broker_start(sec_t *s, bool secure)
{
    char secret[4400];
    key_path(s, "broker", "key", secret, sizeof secret);
    const char *args[20] = {"--client",       "tcp://127.0.0.1:0",
                            "--worker",       "tcp://127.0.0.1:0",
                            "--data",         s->data,
                            "--heartbeat-ms", HB_S};
    int n = 8;
    if (secure) {
        args[n++] = "--secret-key";
        args[n++] = secret;
        args[n++] = "--authorized-keys";
        args[n++] = s->auth;
    }
    for (int i = 0; i < MAX_ARGS && s->extra[i] && n < 19; i++) {
        args[n++] = s->extra[i];
    }
    s->broker = dv_proc_start("DROVER_BROKER_BIN", args, s->dir, "broker.log");
    char ready[9000] = "";
    if (!s->broker.pid ||
        !dv_proc_wait_ready(&s->broker, ready, sizeof ready)) {
        return false;
    }
    return sscanf(ready, "%255s %255s", s->cep, s->wep) == 2;
}

// A worker with key (NULL: plain).
static bool
worker_start(sec_t *s, const char *key)
{
    char k[4400], b[4400];
    key_path(s, key ? key : "", "key", k, sizeof k);
    key_path(s, "broker", "pub", b, sizeof b);
    const char *args[] = {"--broker",
                          s->wep,
                          "--name",
                          "w",
                          "--heartbeat-ms",
                          HB_S,
                          key ? "--key" : NULL,
                          k,
                          "--broker-key",
                          b,
                          NULL};
    s->worker = dv_proc_start("DROVER_WORKER_BIN", args, s->dir, "worker.log");
    char ready[9000];
    return s->worker.pid && dv_proc_wait_ready(&s->worker, ready, sizeof ready);
}

// The broker, its key, an admin, and the keys a case names.
static bool
sec_up(sec_t *s, const char *const *extra)
{
    memset(s, 0, sizeof *s);
    s->dir = dv_test_tmpdir();
    snprintf(s->auth, sizeof s->auth, "%s/authorized", s->dir);
    snprintf(s->keys, sizeof s->keys, "%s/keys", s->dir);
    snprintf(s->data, sizeof s->data, "%s/data", s->dir);
    mkdir(s->auth, 0755);
    mkdir(s->keys, 0700);
    for (int i = 0; extra && extra[i] && i < MAX_ARGS; i++) {
        s->extra[i] = extra[i];
    }
    return make_key(s, "broker", 0, NULL, false) &&
           make_key(s, "admin", DV_ROLE_ADMIN, NULL, true) &&
           make_key(s, "alice", DV_ROLE_PRODUCER | DV_ROLE_CONSUMER, "jobs",
                    true) &&
           make_key(s, "bob", DV_ROLE_PRODUCER, "jobs", true) &&
           make_key(s, "w1", DV_ROLE_WORKER, NULL, true) &&
           make_key(s, "stranger", DV_ROLE_PRODUCER, NULL, false);
}

static void
sec_down(sec_t *s, bool failed)
{
    dv_proc_stop(&s->worker, SIGKILL);
    dv_proc_stop(&s->broker, SIGTERM);
    if (failed) {
        dv_proc_dump_log(s->dir, "broker.log");
        dv_proc_dump_log(s->dir, "worker.log");
    }
    dv_test_rmdir(s->dir);
    free(s->dir);
}

// Connect as key (NULL: plain). Returns the error code (0: connected).
static int
connect_as(sec_t *s, const char *key, drover_t **d, drover_error_t *err)
{
    char k[4400], b[4400];
    key_path(s, key ? key : "", "key", k, sizeof k);
    key_path(s, "broker", "pub", b, sizeof b);
    *d = NULL;
    return drover_connect_key(d, s->cep, 5000, key ? k : NULL, key ? b : NULL,
                              err);
}

// Does the audit log hold an entry by key for action whose outcome starts
// with outcome?
static bool
audited(drover_t *admin,
        const char *key,
        const char *action,
        const char *outcome)
{
    drover_audit_entry_t *e = NULL;
    size_t n = 0;
    drover_error_t err = {0};
    bool found = false;
    if (drover_audit(admin, 0, &e, &n, NULL, &err) == 0) {
        for (size_t i = 0; i < n && !found; i++) {
            found = strcmp(e[i].key, key) == 0 &&
                    strcmp(e[i].action, action) == 0 &&
                    strncmp(e[i].outcome, outcome, strlen(outcome)) == 0;
        }
    }
    free(e);
    return found;
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

// No key, an unknown key, a worker key on the client socket: refused at
// the handshake (at once, DV_EPERM), each refusal in the audit log; an
// authorized producer runs jobs through a worker with a worker key.
static void
test_handshakes(void)
{
    sec_t s;
    bool up =
        sec_up(&s, NULL) && broker_start(&s, true) && worker_start(&s, "w1");
    drover_t *d = NULL, *admin = NULL, *alice = NULL;
    drover_error_t err = {0};
    int64_t t0 = dv_test_now_ms();
    int plain = up ? connect_as(&s, NULL, &d, &err) : -1;
    bool plain_says = strstr(err.text, "requires CURVE") != NULL;
    int64_t plain_ms = dv_test_now_ms() - t0;
    int unknown = up ? connect_as(&s, "stranger", &d, &err) : -1;
    bool unknown_says = strstr(err.text, "refused key 'stranger'") != NULL;
    int worker_key = up ? connect_as(&s, "w1", &d, &err) : -1;
    int ok = up ? connect_as(&s, "alice", &alice, &err) : -1;
    int job = ok == 0 ? submit_echo(alice, "jobs", "hello", &err) : -1;
    int adm = up ? connect_as(&s, "admin", &admin, &err) : -1;
    // The unknown key is recorded by its public key (no id), the worker
    // key by its id.
    drover_audit_entry_t *e = NULL;
    size_t n = 0;
    bool saw_unknown = false, saw_plain = false;
    if (adm == 0 && drover_audit(admin, 0, &e, &n, NULL, &err) == 0) {
        for (size_t i = 0; i < n; i++) {
            saw_unknown |= strcmp(e[i].action, "handshake") == 0 &&
                           strstr(e[i].outcome, "unknown key") != NULL;
            saw_plain |= strcmp(e[i].action, "handshake") == 0 &&
                         strstr(e[i].outcome, "before authentication") != NULL;
        }
    }
    free(e);
    bool a_worker = adm == 0 && audited(admin, "w1", "handshake", "refused");
    drover_destroy(&alice);
    drover_destroy(&admin);
    sec_down(&s, job != 0 || !saw_plain);
    DV_CHECK(up);
    DV_CHECK_EQ(plain, DV_EPERM);
    DV_CHECK(plain_says);
    DV_CHECK(plain_ms < 4000); // refused at once, not a timeout
    DV_CHECK_EQ(unknown, DV_EPERM);
    DV_CHECK(unknown_says);
    DV_CHECK_EQ(worker_key, DV_EPERM);
    DV_CHECK_EQ(ok, 0);
    DV_CHECK_EQ(job, 0);
    DV_CHECK_EQ(adm, 0);
    DV_CHECK(saw_unknown);
    DV_CHECK(saw_plain);
    DV_CHECK(a_worker);
}

// Roles and queues: a producer submits to its queue only, pushes no
// model, reads no dead letters; an admin may; owners: bob may not add to
// or delete alice's data set or model, alice and the admin may.
static void
test_roles_and_owners(void)
{
    sec_t s;
    bool up =
        sec_up(&s, NULL) && broker_start(&s, true) && worker_start(&s, "w1");
    drover_t *alice = NULL, *bob = NULL, *admin = NULL;
    drover_error_t err = {0};
    int c = up ? connect_as(&s, "alice", &alice, &err) |
                     connect_as(&s, "bob", &bob, &err) |
                     connect_as(&s, "admin", &admin, &err)
               : -1;
    if (c != 0) {
        drover_destroy(&alice);
        drover_destroy(&bob);
        drover_destroy(&admin);
        sec_down(&s, true);
        DV_CHECK_EQ(c, 0);
    }
    int own_queue = c == 0 ? submit_echo(alice, "jobs", "x", &err) : -1;
    // Job 1 is alice's: bob, a producer on the same queue, may not read it.
    drover_job_info_t ji;
    int bob_reads = drover_job_info(bob, 1, &ji, &err);
    bool bob_reads_says = strstr(err.text, "submitted by key 'alice'") != NULL;
    int alice_reads = drover_job_info(alice, 1, &ji, &err);
    int other_queue = c == 0 ? submit_echo(alice, "other", "x", &err) : -1;
    bool other_says = strstr(err.text, "queue 'other'") != NULL;
    // A model file: only an admin pushes one.
    char model[4400];
    snprintf(model, sizeof model, "%s/iris.drvm", s.dir);
    const char *largs[] = {
        "local",  "train",   "--data", dv_test_data("iris_train.csv"),
        "--algo", "softmax", "--out",  model,
        NULL};
    int trained =
        up ? dv_proc_run("DROVER_BIN", largs, NULL, s.dir, "cli.log") : -1;
    drover_model_t m = {0};
    int push_alice =
        trained == 0 ? drover_model_push(alice, model, "iris", &m, &err) : -1;
    int push_admin =
        trained == 0 ? drover_model_push(admin, model, "iris", &m, &err) : -1;
    drover_dead_t *dl = NULL;
    size_t n_dead = 0;
    int dead_alice =
        c == 0 ? drover_dead_list(alice, NULL, 0, &dl, &n_dead, &err) : -1;
    drover_dead_free(&dl, n_dead);
    // alice's data set and the model her train job makes.
    drover_dataset_t ds = {0};
    int ds_alice =
        c == 0 ? drover_dataset_push(alice, dv_test_data("iris_train.csv"),
                                     "flowers", &ds, &err)
               : -1;
    int ds_bob = c == 0
                     ? drover_dataset_push(bob, dv_test_data("iris_train.csv"),
                                           "flowers", &ds, &err)
                     : -1;
    bool bob_says = strstr(err.text, "belongs to key 'alice'") != NULL;
    drover_train_t t = {0};
    t.queue = "jobs";
    t.model = "petals";
    t.algo = "softmax";
    t.dataset = "flowers";
    drover_result_t *r = NULL;
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
    int rm_alice = drover_model_rm(alice, "petals", 0, &removed, &err);
    int rm_admin = drover_model_rm(admin, "iris", 0, &removed, &err);
    bool a_push = audited(admin, "alice", "model_push", "refused");
    bool a_queue = audited(admin, "alice", "submit", "refused");
    bool a_bob = audited(admin, "bob", "dataset_push", "refused");
    bool a_ok = audited(admin, "admin", "model_push", "ok") &&
                audited(admin, "alice", "model_rm", "ok");
    drover_destroy(&alice);
    drover_destroy(&bob);
    drover_destroy(&admin);
    sec_down(&s, own_queue != 0 || train_alice != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(c, 0);
    DV_CHECK_EQ(own_queue, 0);
    DV_CHECK_EQ(bob_reads, DV_EPERM);
    DV_CHECK(bob_reads_says);
    DV_CHECK_EQ(alice_reads, 0);
    DV_CHECK_EQ(other_queue, DV_EPERM);
    DV_CHECK(other_says);
    DV_CHECK_EQ(trained, 0);
    DV_CHECK_EQ(push_alice, DV_EPERM);
    DV_CHECK_EQ(push_admin, 0);
    DV_CHECK_EQ(dead_alice, DV_EPERM);
    DV_CHECK_EQ(ds_alice, 0);
    DV_CHECK_EQ(ds_bob, DV_EPERM);
    DV_CHECK(bob_says);
    DV_CHECK_EQ(train_alice, 0);
    DV_CHECK_EQ(train_bob, DV_EPERM);
    DV_CHECK_EQ(rm_bob, DV_EPERM);
    DV_CHECK_EQ(rm_alice_ds, 0);
    DV_CHECK_EQ(rm_alice, 0);
    DV_CHECK_EQ(rm_admin, 0);
    DV_CHECK(a_push);
    DV_CHECK(a_queue);
    DV_CHECK(a_bob);
    DV_CHECK(a_ok);
}

// Revocation: with alice's key out of the folder, `drover admin reload`
// makes her open connection's next request fail and a new connection
// refused; put back, SIGHUP lets her in again. Both reloads are audited.
static void
test_revocation(void)
{
    sec_t s;
    bool up =
        sec_up(&s, NULL) && broker_start(&s, true) && worker_start(&s, "w1");
    drover_t *alice = NULL, *again = NULL;
    drover_error_t err = {0};
    int c = up ? connect_as(&s, "alice", &alice, &err) : -1;
    if (c != 0) {
        sec_down(&s, true);
        DV_CHECK_EQ(c, 0);
    }
    int before = submit_echo(alice, "jobs", "x", &err);
    char pub[4400], saved[4400];
    snprintf(pub, sizeof pub, "%s/alice.pub", s.auth);
    snprintf(saved, sizeof saved, "%s/alice.pub.off", s.dir);
    int moved = rename(pub, saved);
    char admin_key[4400], broker_pub[4400];
    key_path(&s, "admin", "key", admin_key, sizeof admin_key);
    key_path(&s, "broker", "pub", broker_pub, sizeof broker_pub);
    const char *reload[] = {"admin",        "reload",   "--broker",
                            s.cep,          "--key",    admin_key,
                            "--broker-key", broker_pub, NULL};
    int cli =
        up ? dv_proc_run("DROVER_BIN", reload, NULL, s.dir, "cli.log") : -1;
    int after = c == 0 ? submit_echo(alice, "jobs", "x", &err) : -1;
    bool after_says = strstr(err.text, "no longer authorized") != NULL;
    int fresh = up ? connect_as(&s, "alice", &again, &err) : -1;
    // Back in, by SIGHUP.
    int back = rename(saved, pub);
    kill_pid(s.broker.pid, SIGHUP);
    int welcome = -1;
    for (int i = 0; up && i < 100 && welcome != 0; i++) { // until reloaded
        drover_destroy(&again);
        welcome = connect_as(&s, "alice", &again, &err);
    }
    int resumed = welcome == 0 ? submit_echo(again, "jobs", "x", &err) : -1;
    drover_t *admin = NULL;
    int adm = up ? connect_as(&s, "admin", &admin, &err) : -1;
    bool a_reload = adm == 0 && audited(admin, "admin", "reload", "ok");
    bool a_hup = adm == 0 && audited(admin, "", "reload", "ok");
    bool a_revoked = adm == 0 && audited(admin, "alice", "submit", "refused");
    drover_destroy(&admin);
    drover_destroy(&alice);
    drover_destroy(&again);
    sec_down(&s, resumed != 0);
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
    DV_CHECK(a_reload);
    DV_CHECK(a_hup);
    DV_CHECK(a_revoked);
}

// The wire: a relay between a client and the broker records every byte.
// In plain mode it sees a job's payload (the test can tell); with CURVE it
// never does, though the job runs.
static void
test_wire_is_encrypted(void)
{
    static const char marker[] = "drover-plaintext-marker-7f3a9c2e";
    bool seen[2] = {true, true};
    int ran[2] = {-1, -1};
    bool up[2] = {false, false};
    for (int secure = 0; secure < 2; secure++) {
        sec_t s;
        up[secure] = sec_up(&s, NULL) && broker_start(&s, secure) &&
                     worker_start(&s, secure ? "w1" : NULL);
        int port = 0, relay_port = 0;
        dv_relay_t *relay = NULL;
        if (up[secure] && sscanf(s.cep, "tcp://127.0.0.1:%d", &port) == 1) {
            relay = dv_relay_start(port, &relay_port);
        }
        if (relay) {
            snprintf(s.cep, sizeof s.cep, "tcp://127.0.0.1:%d", relay_port);
            drover_t *d = NULL;
            drover_error_t err = {0};
            if (connect_as(&s, secure ? "alice" : NULL, &d, &err) == 0) {
                ran[secure] = submit_echo(d, "jobs", marker, &err);
            }
            drover_destroy(&d);
            seen[secure] = dv_relay_saw(relay, marker, strlen(marker));
            dv_relay_stop(&relay);
        }
        sec_down(&s, ran[secure] != 0);
    }
    DV_CHECK(up[0]);
    DV_CHECK(up[1]);
    DV_CHECK_EQ(ran[0], 0);
    DV_CHECK(seen[0]); // plain: the payload crosses in the clear
    DV_CHECK_EQ(ran[1], 0);
    DV_CHECK(!seen[1]); // CURVE: never
}

// Limits: past --max-inflight unfinished jobs a key's submit is refused
// (DV_ELIMIT, no worker runs them here); past --max-connections a new
// connection is refused at the handshake, and the log says so.
static void
test_limits(void)
{
    const char *extra[] = {"--max-inflight", "5", "--max-connections", "3",
                           NULL};
    sec_t s;
    bool up = sec_up(&s, extra) && broker_start(&s, true);
    drover_t *alice = NULL, *admin = NULL, *third = NULL, *fourth = NULL;
    drover_error_t err = {0};
    int c = up ? connect_as(&s, "alice", &alice, &err) |
                     connect_as(&s, "admin", &admin, &err)
               : -1;
    if (c != 0) {
        drover_destroy(&alice);
        drover_destroy(&admin);
        sec_down(&s, true);
        DV_CHECK_EQ(c, 0);
    }
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = "jobs";
    job.payload = "x";
    job.payload_len = 1;
    int rcs[6] = {-1, -1, -1, -1, -1, -1};
    for (int i = 0; c == 0 && i < 6; i++) {
        uint64_t id = 0;
        rcs[i] = drover_submit(alice, &job, 5000, &id, &err);
    }
    bool says = strstr(err.text, "--max-inflight") != NULL;
    int n3 = c == 0 ? connect_as(&s, "alice", &third, &err) : -1;
    int n4 = n3 == 0 ? connect_as(&s, "alice", &fourth, &err) : -1;
    bool a_conn = c == 0 && audited(admin, "alice", "handshake",
                                    "refused: too many connections");
    drover_destroy(&alice);
    drover_destroy(&admin);
    drover_destroy(&third);
    drover_destroy(&fourth);
    sec_down(&s, rcs[5] != DV_ELIMIT);
    DV_CHECK(up);
    DV_CHECK_EQ(c, 0);
    for (int i = 0; i < 5; i++) {
        DV_CHECK_EQ(rcs[i], 0);
    }
    DV_CHECK_EQ(rcs[5], DV_ELIMIT);
    DV_CHECK(says);
    DV_CHECK_EQ(n3, 0);
    DV_CHECK_EQ(n4, DV_EPERM);
    DV_CHECK(a_conn);
}

// Signed model files: a broker run with --require-signed refuses an
// unsigned file and one signed by a key that is not an authorized admin,
// takes one an admin signed, and records who signed it.
static void
test_signed_models(void)
{
    const char *extra[] = {"--require-signed", NULL};
    sec_t s;
    bool up = sec_up(&s, extra) &&
              make_key(&s, "outsider", DV_ROLE_ADMIN, NULL, false) &&
              broker_start(&s, true);
    drover_t *admin = NULL;
    drover_error_t err = {0};
    int c = up ? connect_as(&s, "admin", &admin, &err) : -1;
    if (c != 0) {
        sec_down(&s, true);
        DV_CHECK_EQ(c, 0);
    }
    char model[4400], admin_key[4400], bob_key[4400], out_key[4400];
    snprintf(model, sizeof model, "%s/iris.drvm", s.dir);
    key_path(&s, "admin", "key", admin_key, sizeof admin_key);
    key_path(&s, "bob", "key", bob_key, sizeof bob_key);
    key_path(&s, "outsider", "key", out_key, sizeof out_key);
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
    bool a_refused = audited(admin, "admin", "model_push", "error: DV_EPERM");
    drover_destroy(&admin);
    sec_down(&s, signed_rc != 0);
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
    {"handshakes: no key, unknown key, worker key refused", test_handshakes},
    {"roles, queues and owners", test_roles_and_owners},
    {"revocation by reload and SIGHUP", test_revocation},
    {"the wire is encrypted", test_wire_is_encrypted},
    {"limits: connections and unfinished jobs per key", test_limits},
    {"signed model files", test_signed_models},
    {"plain mode only on loopback unless --plain", test_plain_only_on_loopback},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
