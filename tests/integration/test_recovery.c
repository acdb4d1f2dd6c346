// test_recovery — what a data dir keeps, and how the broker fails when it
// cannot keep it (docs/SEMANTICS.md "Durable and in-memory brokers", "A
// damaged store"; docs/SECURITY.md, the audit log): after a kill -9 the
// restarted broker has the same attempt counts, audit entries, model
// versions, aliases, owners, data sets and readers; a commit failing with
// DV_EIO (through the broker's fault seam) refuses what it held and loses
// nothing stored; a model file damaged on disk is refused to the worker
// that fetches it and stops a restart, naming the file; a data dir the
// broker cannot create stops it with the reason; a kept result's TTL
// counts from its finish across restarts.
//
// Real processes with CURVE keys (owners are key ids) on 127.0.0.1 ports
// the system picks.
#include <errno.h>
#include <signal.h>
#include <stdint.h>
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

#define HB      "1000"
#define WAIT_MS 60000

typedef struct {
    char *dir;
    char auth[4300]; // authorized keys folder
    char keys[4300]; // every key pair
    char data[4300]; // the broker's data dir
    char cep[256], wep[256];
    dv_proc_t broker, worker;
} rec_t;

static void
key_path(
    const rec_t *t, const char *name, const char *ext, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s.%s", t->keys, name, ext);
}

// The broker on t->data with CURVE; extra1/extra2: one more option (NULL:
// none). Its log goes on in broker.log across restarts.
static bool
broker_start(rec_t *t, const char *extra1, const char *extra2)
{
    char secret[4400];
    key_path(t, "broker", "key", secret, sizeof secret);
    const char *args[] = {"--client",
                          "tcp://127.0.0.1:0",
                          "--worker",
                          "tcp://127.0.0.1:0",
                          "--data",
                          t->data,
                          "--heartbeat-ms",
                          HB,
                          "--secret-key",
                          secret,
                          "--authorized-keys",
                          t->auth,
                          extra1,
                          extra2,
                          NULL};
    t->broker = dv_proc_start("DROVER_BROKER_BIN", args, t->dir, "broker.log");
    char ready[9000] = "";
    return t->broker.pid &&
           dv_proc_wait_ready(&t->broker, ready, sizeof ready) &&
           sscanf(ready, "%255s %255s", t->cep, t->wep) == 2;
}

static bool
worker_start(rec_t *t)
{
    char k[4400], b[4400];
    key_path(t, "w1", "key", k, sizeof k);
    key_path(t, "broker", "pub", b, sizeof b);
    return dv_proc_worker_keyed(&t->worker, t->wep, "w1", k, b, HB, t->dir);
}

// kill -9 of the broker (and its worker, which knows the old port).
static void
broker_kill(rec_t *t)
{
    dv_proc_stop(&t->worker, SIGKILL);
    dv_proc_stop(&t->broker, SIGKILL);
}

// Keys: the broker's, an admin, alice and bob (producers and consumers on
// queue "jobs"), carol (a producer there), a worker key.
static bool
rec_up(rec_t *t)
{
    memset(t, 0, sizeof *t);
    t->dir = dv_test_tmpdir();
    snprintf(t->auth, sizeof t->auth, "%s/authorized", t->dir);
    snprintf(t->keys, sizeof t->keys, "%s/keys", t->dir);
    snprintf(t->data, sizeof t->data, "%s/data", t->dir);
    mkdir(t->auth, 0755);
    mkdir(t->keys, 0700);
    unsigned pc = DV_ROLE_PRODUCER | DV_ROLE_CONSUMER;
    return dv_test_key_make(t->keys, NULL, "broker", 0, NULL) &&
           dv_test_key_make(t->keys, t->auth, "admin", DV_ROLE_ADMIN, NULL) &&
           dv_test_key_make(t->keys, t->auth, "alice", pc, "jobs") &&
           dv_test_key_make(t->keys, t->auth, "bob", pc, "jobs") &&
           dv_test_key_make(t->keys, t->auth, "carol", DV_ROLE_PRODUCER,
                            "jobs") &&
           dv_test_key_make(t->keys, t->auth, "w1", DV_ROLE_WORKER, NULL);
}

static void
rec_down(rec_t *t, bool failed)
{
    dv_proc_stop(&t->worker, SIGKILL);
    dv_proc_stop(&t->broker, SIGTERM);
    if (failed) {
        dv_proc_dump_log(t->dir, "broker.log");
        dv_proc_dump_log(t->dir, "worker.log");
    }
    dv_test_rmdir(t->dir);
    free(t->dir);
}

// Connect as key; NULL on failure (printed).
static drover_t *
as(rec_t *t, const char *key)
{
    char k[4400], b[4400];
    key_path(t, key, "key", k, sizeof k);
    key_path(t, "broker", "pub", b, sizeof b);
    drover_t *d = NULL;
    drover_error_t err = {0};
    if (drover_connect_key(&d, t->cep, 10000, k, b, &err) != 0) {
        fprintf(stderr, "  connect as %s: %s\n", key, err.text);
        return NULL;
    }
    return d;
}

// A durable echo job on queue "jobs"; its id, 0 when refused (*code and
// text get why).
static uint64_t
submit_echo(
    drover_t *d, const char *payload, int *code, char *text, size_t size)
{
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = "jobs";
    job.payload = payload;
    job.payload_len = strlen(payload);
    uint64_t id = 0;
    drover_error_t err = {0};
    int rc = d ? drover_submit(d, &job, 10000, &id, &err) : -1;
    if (code) {
        *code = rc;
    }
    if (text) {
        snprintf(text, size, "%s", rc ? err.text : "");
    }
    return rc == 0 ? id : 0;
}

// The error code of job's result within WAIT_MS (0: done; -99999: none).
// text (may be NULL) gets its reason, attempts (may be NULL) its count.
static int
result_of(
    drover_t *d, uint64_t job, char *text, size_t size, uint32_t *attempts)
{
    drover_result_t *r = NULL;
    drover_error_t err = {0};
    int code = -99999;
    int rc = d ? drover_wait(d, job, WAIT_MS, &r, &err) : -1;
    if (rc == 0) {
        const char *why = NULL;
        code = drover_result_error(r, &why);
        if (text) {
            snprintf(text, size, "%s", why ? why : "");
        }
        if (attempts) {
            *attempts = drover_result_attempts(r);
        }
    } else {
        code = rc; // DV_ENOENT: not kept
        if (text) {
            snprintf(text, size, "%s", err.text);
        }
    }
    drover_result_destroy(&r);
    return code;
}

// Poll (short sleeps, with a deadline) until job is in state.
static bool
await_state(drover_t *d, uint64_t job, const char *state)
{
    drover_job_info_t info = {0};
    drover_error_t err = {0};
    int64_t end = dv_test_now_ms() + WAIT_MS;
    while (dv_test_now_ms() < end) {
        if (drover_job_info(d, job, &info, &err) == 0 &&
            strcmp(info.state, state) == 0) {
            return true;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

// What a data dir must give back after a kill -9: every field as before.
typedef struct {
    drover_model_t *models;
    size_t n_models;
    drover_dataset_t *sets;
    size_t n_sets;
    drover_audit_entry_t *audit;
    size_t n_audit;
    drover_job_info_t sleeper, trained;
    int refusals[3];      // bob's model_rm, bob's dataset_rm, carol's get
    char refused[3][256]; // their reasons
    int bob_reads;        // bob's dataset_get (shared with him)
} snap_t;

static bool
snap_take(rec_t *t, uint64_t sleeper, uint64_t trained, snap_t *s)
{
    memset(s, 0, sizeof *s);
    drover_t *admin = as(t, "admin"), *bob = as(t, "bob"),
             *carol = as(t, "carol");
    drover_error_t err = {0};
    bool more = false;
    bool ok =
        admin && bob && carol &&
        drover_model_list(admin, &s->models, &s->n_models, &err) == 0 &&
        drover_dataset_list(admin, &s->sets, &s->n_sets, &err) == 0 &&
        drover_audit(admin, 0, &s->audit, &s->n_audit, &more, &err) == 0 &&
        drover_job_info(admin, sleeper, &s->sleeper, &err) == 0 &&
        drover_job_info(admin, trained, &s->trained, &err) == 0;
    if (ok) {
        unsigned removed = 0;
        drover_dataset_t ds;
        s->refusals[0] = drover_model_rm(bob, "am", 0, &removed, &err);
        snprintf(s->refused[0], sizeof s->refused[0], "%s", err.text);
        s->refusals[1] = drover_dataset_rm(bob, "ds", 0, &removed, &err);
        snprintf(s->refused[1], sizeof s->refused[1], "%s", err.text);
        s->refusals[2] = drover_dataset_get(carol, "ds", 0, &ds, &err);
        snprintf(s->refused[2], sizeof s->refused[2], "%s", err.text);
        s->bob_reads = drover_dataset_get(bob, "ds", 0, &ds, &err);
    }
    drover_destroy(&admin);
    drover_destroy(&bob);
    drover_destroy(&carol);
    return ok;
}

static void
snap_free(snap_t *s)
{
    free(s->models);
    free(s->sets);
    free(s->audit);
}

// Entries of a (the first n of b) that differ in any field.
static int
audit_differs(const snap_t *a, const snap_t *b)
{
    int n = 0;
    for (size_t i = 0; i < a->n_audit; i++) {
        const drover_audit_entry_t *x = &a->audit[i], *y = &b->audit[i];
        n += i >= b->n_audit || x->seq != y->seq || x->unix_ms != y->unix_ms ||
             strcmp(x->key, y->key) != 0 || strcmp(x->action, y->action) != 0 ||
             strcmp(x->object, y->object) != 0 ||
             strcmp(x->outcome, y->outcome) != 0;
    }
    return n;
}

// Model versions (aliases too) and data sets of a that differ from b's.
static int
records_differ(const snap_t *a, const snap_t *b)
{
    int n = a->n_models != b->n_models || a->n_sets != b->n_sets;
    for (size_t i = 0; !n && i < a->n_models; i++) {
        const drover_model_t *x = &a->models[i], *y = &b->models[i];
        n += strcmp(x->name, y->name) != 0 || x->version != y->version ||
             strcmp(x->sha256, y->sha256) != 0 || x->bytes != y->bytes ||
             strcmp(x->task, y->task) != 0 || strcmp(x->algo, y->algo) != 0 ||
             x->features != y->features || x->outputs != y->outputs ||
             x->created_us != y->created_us ||
             strcmp(x->aliases, y->aliases) != 0;
    }
    for (size_t i = 0; !n && i < a->n_sets; i++) {
        const drover_dataset_t *x = &a->sets[i], *y = &b->sets[i];
        n += strcmp(x->name, y->name) != 0 || x->version != y->version ||
             strcmp(x->sha256, y->sha256) != 0 || x->bytes != y->bytes ||
             x->rows != y->rows || x->columns != y->columns ||
             strcmp(x->target, y->target) != 0 ||
             x->created_us != y->created_us;
    }
    return n;
}

// alice trains model am from her data set ds (ridge: quick); the result's
// job id, 0 on failure.
static uint64_t
train_am(drover_t *alice)
{
    drover_train_t tr = {0};
    tr.queue = "jobs";
    tr.model = "am";
    tr.algo = "ridge";
    tr.dataset = "ds";
    tr.target = "target";
    drover_result_t *r = NULL;
    drover_error_t err = {0};
    uint64_t job = 0;
    if (drover_train(alice, &tr, WAIT_MS, &r, &err) == 0 &&
        drover_result_error(r, NULL) == 0) {
        job = drover_result_job(r);
    } else {
        fprintf(stderr, "  train: %s\n", err.text);
    }
    drover_result_destroy(&r);
    return job;
}

// Populate a data dir with everything it keeps, kill -9 the broker,
// restart it on the same dir: the model versions with their aliases and
// created times, data sets, owners and readers, every audit entry and the
// attempt counts read back exactly as before. The job running when the
// broker died counts that attempt and is queued again.
static void
test_kill9_keeps_everything(void)
{
    rec_t t;
    bool up = rec_up(&t) && broker_start(&t, NULL, NULL) && worker_start(&t);
    drover_t *alice = up ? as(&t, "alice") : NULL;
    drover_t *admin = up ? as(&t, "admin") : NULL;
    drover_error_t err = {0};
    const char *bob = "bob";
    bool populated =
        alice && admin &&
        drover_dataset_push(alice, dv_test_data("diabetes_train.csv"), "ds",
                            NULL, &err) == 0 &&
        drover_dataset_share(alice, "ds", &bob, 1, &err) == 0;
    uint64_t trained = populated ? train_am(alice) : 0;
    populated = trained && train_am(alice) &&
                drover_model_alias(admin, "am", "prod", 1, NULL, &err) == 0;
    // A job running when the broker dies.
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = "jobs";
    job.kind = "sleep";
    job.sleep_ms = 3600000;
    job.max_attempts = 5;
    uint64_t sleeper = 0;
    populated = populated &&
                drover_submit(alice, &job, 10000, &sleeper, &err) == 0 &&
                await_state(alice, sleeper, "running");
    snap_t before = {0}, after = {0};
    bool took = populated && snap_take(&t, sleeper, trained, &before);
    // A durable submit's acknowledgement: everything staged before it (the
    // sleeper's attempt, the refusals' audit entries) is on disk.
    uint64_t sync = took ? submit_echo(alice, "sync", NULL, NULL, 0) : 0;
    drover_destroy(&alice);
    drover_destroy(&admin);
    broker_kill(&t);
    bool again = sync && broker_start(&t, NULL, NULL);
    bool took2 = again && snap_take(&t, sleeper, trained, &after);
    printf("  %zu model versions, %zu data sets, %zu audit entries; the "
           "sleeper %s after %u attempt(s)\n",
           after.n_models, after.n_sets, after.n_audit, after.sleeper.state,
           after.sleeper.attempts);
    int differ = took2 ? records_differ(&before, &after) : -1;
    int audit = took2 ? audit_differs(&before, &after) : -1;
    rec_down(&t, !took2 || differ || audit);
    // What the checks read of the lists (freed first: a failed check
    // returns).
    char alias1[256] = "";
    if (before.n_models) {
        snprintf(alias1, sizeof alias1, "%s", before.models[0].aliases);
    }
    snap_free(&before);
    snap_free(&after);
    DV_CHECK(up);
    DV_CHECK(populated);
    DV_CHECK(took);
    DV_CHECK(sync != 0);
    DV_CHECK(again);
    DV_CHECK(took2);
    DV_CHECK_EQ(before.n_models, 2);
    DV_CHECK_STR_EQ(alias1, "prod");
    DV_CHECK_EQ(before.n_sets, 1);
    DV_CHECK(before.n_audit >= 3); // data set push, share, alias, ...
    DV_CHECK_EQ(differ, 0);
    DV_CHECK(after.n_audit >= before.n_audit + 3); // and the 3 refusals
    DV_CHECK_EQ(audit, 0);
    DV_CHECK_STR_EQ(before.sleeper.state, "running");
    DV_CHECK_EQ(before.sleeper.attempts, 1);
    DV_CHECK_STR_EQ(after.sleeper.state, "queued"); // that attempt counted
    DV_CHECK_EQ(after.sleeper.attempts, 1);
    DV_CHECK_STR_EQ(after.trained.state, before.trained.state);
    DV_CHECK_EQ(after.trained.attempts, before.trained.attempts);
    for (int i = 0; i < 3; i++) { // owners and readers, as before
        DV_CHECK_EQ(before.refusals[i], DV_EPERM);
        DV_CHECK_EQ(after.refusals[i], DV_EPERM);
        DV_CHECK_STR_EQ(after.refused[i], before.refused[i]);
    }
    DV_CHECK(strstr(after.refused[0], "alice") != NULL); // names the owner
    DV_CHECK_EQ(before.bob_reads, 0);
    DV_CHECK_EQ(after.bob_reads, 0);
}

// A commit failing with DV_EIO (fault seam eio-commit-submit:3: the commit
// holding the third submit fails as a failed write would): that submit is
// refused with DV_EIO and the reason, the broker goes on taking submits,
// and after a kill -9 what was stored before and after is all there and
// runs; the refused job is not.
static void
test_failed_commit_refuses(void)
{
    rec_t t;
    bool up = rec_up(&t);
    setenv("DROVER_BROKER_FAULT", "eio-commit-submit:3", 1);
    up = up && broker_start(&t, NULL, NULL); // inherits the seam
    unsetenv("DROVER_BROKER_FAULT");
    drover_t *d = up ? as(&t, "alice") : NULL;
    int code[4] = {0};
    char text[256] = "";
    uint64_t ids[4] = {0};
    const char *payloads[4] = {"one", "two", "three", "four"};
    for (int i = 0; d && i < 4; i++) {
        ids[i] = submit_echo(d, payloads[i], &code[i], i == 2 ? text : NULL,
                             sizeof text);
    }
    drover_destroy(&d);
    broker_kill(&t);
    bool again = up && broker_start(&t, NULL, NULL) && worker_start(&t);
    d = again ? as(&t, "alice") : NULL;
    int ran = 0;
    for (int i = 0; d && i < 4; i++) {
        ran += i != 2 && result_of(d, ids[i], NULL, 0, NULL) == 0;
    }
    drover_job_info_t info;
    drover_error_t err = {0};
    int refused_rc = d ? drover_job_info(d, ids[1] + 1, &info, &err) : -1;
    drover_destroy(&d);
    rec_down(&t, ran != 3);
    DV_CHECK(up);
    DV_CHECK_EQ(code[0], 0);
    DV_CHECK_EQ(code[1], 0);
    DV_CHECK_EQ(code[2], DV_EIO);
    DV_CHECK(strstr(text, "Input/output error") != NULL);
    DV_CHECK_EQ(ids[2], 0);
    DV_CHECK_EQ(code[3], 0); // the broker goes on
    DV_CHECK(again);
    DV_CHECK_EQ(ran, 3);
    DV_CHECK(ids[3] > ids[1] + 1); // the refused one had the id between
    DV_CHECK_EQ(refused_rc, DV_ENOENT);
}

// A data dir the broker cannot create or use stops it at once with exit 1
// and the reason naming the path (a path under a regular file: refused
// even to root, where permissions are not).
static void
test_unwritable_data_dir(void)
{
    static const struct {
        const char *under; // the data dir, under the test's folder
        const char *says;  // in the log
    } rows[] = {
        {"file/data", "Not a directory"},
        {"file", "file"},
    };
    char *dir = dv_test_tmpdir();
    char file[4400];
    snprintf(file, sizeof file, "%s/file", dir);
    dv_test_write_file(file, "x", 1);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char data[4400], log[4400];
        snprintf(data, sizeof data, "%s/%s", dir, rows[i].under);
        const char *args[] = {"--client", "tcp://127.0.0.1:0",
                              "--worker", "tcp://127.0.0.1:0",
                              "--data",   data,
                              NULL};
        int rc = dv_proc_run("DROVER_BROKER_BIN", args, NULL, dir, "d.log");
        snprintf(log, sizeof log, "%s/d.log", dir);
        size_t len = 0;
        char *text = (char *)dv_test_read_file(log, &len);
        bool says = text && strstr(text, rows[i].says) && strstr(text, data);
        if (rc != 1 || !says) {
            fprintf(stderr, "  --data %s: exit %d, log: %s\n", data, rc,
                    text ? text : "(none)");
        }
        free(text);
        DV_CHECK_EQ(rc, 1);
        DV_CHECK(says);
    }
    dv_test_rmdir(dir);
    free(dir);
}

// A kept result's TTL counts from when its job finished, across restarts:
// kept over a kill -9 and restart; and once the wall clock is past its
// finish plus 2 s, a broker restarted with --result-ttl-s 2 no longer has
// it (counted from the restart, it would have 2 s left).
static void
test_result_ttl_across_restart(void)
{
    rec_t t;
    bool up = rec_up(&t) && broker_start(&t, "--result-ttl-s", "3600") &&
              worker_start(&t);
    drover_t *d = up ? as(&t, "alice") : NULL;
    uint64_t id = submit_echo(d, "kept", NULL, NULL, 0);
    int first = id ? result_of(d, id, NULL, 0, NULL) : -1;
    int64_t done_ms = dv_test_now_ms(); // at or after its finish
    drover_destroy(&d);
    broker_kill(&t);
    bool again = first == 0 && broker_start(&t, "--result-ttl-s", "3600");
    d = again ? as(&t, "alice") : NULL;
    int kept = d ? result_of(d, id, NULL, 0, NULL) : -1;
    drover_destroy(&d);
    broker_kill(&t);
    while (dv_test_now_ms() < done_ms + 2100) { // the broker is down
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    bool third = kept == 0 && broker_start(&t, "--result-ttl-s", "2");
    d = third ? as(&t, "alice") : NULL;
    char text[256] = "";
    int gone = d ? result_of(d, id, text, sizeof text, NULL) : -1;
    drover_destroy(&d);
    printf("  after the TTL: %s\n", text);
    rec_down(&t, gone != DV_ENOENT);
    DV_CHECK(up);
    DV_CHECK_EQ(first, 0);
    DV_CHECK(again);
    DV_CHECK_EQ(kept, 0);
    DV_CHECK(third);
    DV_CHECK_EQ(gone, DV_ENOENT);
}

// An infer job on model ref with one row of zeros (diabetes: 10
// features); its result's code, text in text.
static int
infer(drover_t *d, const char *ref, char *text, size_t size)
{
    static const float x[10] = {0};
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = "jobs";
    job.kind = "infer";
    job.model = ref;
    job.input = x;
    job.rows = 1;
    job.cols = 10;
    job.max_attempts = 1;
    uint64_t id = 0;
    drover_error_t err = {0};
    if (drover_submit(d, &job, 10000, &id, &err) != 0) {
        snprintf(text, size, "%s", err.text);
        return err.code;
    }
    return result_of(d, id, text, size, NULL);
}

// A model file changed on disk (one byte flipped in DIR/models/m/1.drvm):
// a worker fetching it is refused with DV_ECHECKSUM ("changed on disk"),
// and the job fails with it while m@2 still runs; a restart stops (exit 1)
// naming the file; with the file moved away the broker starts without
// that version.
static void
test_damaged_model_file(void)
{
    rec_t t;
    bool up = rec_up(&t) && broker_start(&t, NULL, NULL) && worker_start(&t);
    char model[4400], file[4400], away[4400];
    snprintf(model, sizeof model, "%s/m.drvm", t.dir);
    snprintf(file, sizeof file, "%s/models/m/1.drvm", t.data);
    snprintf(away, sizeof away, "%s/1.drvm.damaged", t.dir);
    const char *train[] = {
        "local", "train",  "--algo",
        "ridge", "--data", dv_test_data("diabetes_train.csv"),
        "--out", model,    NULL};
    up = up && dv_proc_run("DROVER_BIN", train, NULL, t.dir, "cli.log") == 0;
    drover_t *admin = up ? as(&t, "admin") : NULL;
    drover_error_t err = {0};
    up = admin && drover_model_push(admin, model, "m", NULL, &err) == 0 &&
         drover_model_push(admin, model, "m", NULL, &err) == 0;
    size_t len = 0;
    unsigned char *bytes = up ? dv_test_read_file(file, &len) : NULL;
    bool damaged = bytes && len > 0;
    if (damaged) {
        bytes[len / 2] ^= 0x5a;
        damaged = dv_test_write_file(file, bytes, len) == 0;
    }
    free(bytes);
    char text1[256] = "", text2[256] = "";
    int good = damaged ? infer(admin, "m@2", text2, sizeof text2) : -1;
    int bad = damaged ? infer(admin, "m@1", text1, sizeof text1) : -1;
    drover_destroy(&admin);
    dv_proc_stop(&t.worker, SIGKILL);
    int stopped = up ? dv_proc_stop(&t.broker, SIGTERM) : -1;
    bool started = stopped == 0 && broker_start(&t, NULL, NULL);
    int refused = started ? 0 : dv_proc_stop(&t.broker, 0); // its exit code
    char log[4400];
    snprintf(log, sizeof log, "%s/broker.log", t.dir);
    char *text = (char *)dv_test_read_file(log, &len);
    bool names = text && strstr(text, "model store") &&
                 strstr(text, "is damaged") && strstr(text, "m/1.drvm");
    free(text);
    bool moved = rename(file, away) == 0;
    bool again = moved && broker_start(&t, NULL, NULL);
    admin = again ? as(&t, "admin") : NULL;
    drover_model_t m;
    int v1 = admin ? drover_model_get(admin, "m", 1, &m, &err) : -1;
    int v2 = admin ? drover_model_get(admin, "m", 2, &m, &err) : -1;
    drover_destroy(&admin);
    printf("  m@1 on fetch: %s\n", text1);
    rec_down(&t, bad != DV_ECHECKSUM || !names);
    DV_CHECK(up);
    DV_CHECK_EQ(good, 0);
    DV_CHECK_EQ(bad, DV_ECHECKSUM);
    DV_CHECK(strstr(text1, "changed on disk") != NULL);
    DV_CHECK_EQ(stopped, 0);
    DV_CHECK(!started);
    DV_CHECK_EQ(refused, 1);
    DV_CHECK(names);
    DV_CHECK(again);
    DV_CHECK_EQ(v1, DV_ENOMODEL);
    DV_CHECK_EQ(v2, 0);
}

static const dv_test_case_t cases[] = {
    {"kill -9 keeps attempts, audit, registry, aliases, owners and data sets",
     test_kill9_keeps_everything},
    {"a failed commit (DV_EIO) refuses, loses nothing",
     test_failed_commit_refuses},
    {"an unwritable data dir stops the broker", test_unwritable_data_dir},
    {"a damaged model file: refused on fetch, stops a restart",
     test_damaged_model_file},
    {"a kept result's TTL counts across a restart",
     test_result_ttl_across_restart},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
