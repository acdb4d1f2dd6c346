// test_cli_edges — the `drover` CLI where a newcomer trips: endpoints
// written without a transport, usage errors that name the flag, `--help` on
// command groups, a result asked for before the job ends, train/evaluate
// that return at once (--no-wait) or print the job id before waiting, --out
// checked before any job runs, CSV from standard input, `drover up` with no
// workers, and a second Ctrl-C that stops `drover up` at once.
//
// Commands run through /bin/sh so stdin can be redirected; each case
// asserts the exit status and the words a person reads.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dv_test.h"
#include "dv_test_proc.h"

typedef struct {
    char *dir;
    char ep[4300];
    dv_proc_t up;
} cluster_t;

// Run `$DROVER_BIN ARGS` (a shell fragment) with stdout and stderr
// together (unless ARGS redirects stderr); *out (caller frees) gets them.
// Returns the exit status.
static int
sh(char **out, const char *fmt, ...)
{
    char args[8192], cmd[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    // stderr joins stdout unless the fragment redirects it itself
    snprintf(cmd, sizeof cmd, "\"%s\" %s%s", getenv("DROVER_BIN"), args,
             strstr(args, "2>") ? "" : " 2>&1");
    FILE *p = popen(cmd, "r");
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (p && (got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[n] = '\0';
    int status = p ? pclose(p) : -1;
    *out = buf;
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (getenv("DV_TEST_VERBOSE")) {
        fprintf(stderr, "  $ drover %s -> %d\n%s", args, rc, buf);
    }
    return rc;
}

// `drover up` with args on a fresh ipc endpoint; false unless READY.
static bool
up_start(cluster_t *c, const char *workers)
{
    c->dir = dv_test_tmpdir();
    snprintf(c->ep, sizeof c->ep, "ipc://%s/c.sock", c->dir);
    const char *args[] = {"up",         "--workers", workers,
                          "--endpoint", c->ep,       NULL};
    c->up = dv_proc_start("DROVER_BIN", args, c->dir, "up.log");
    char ready[4400] = "";
    return c->up.pid && dv_proc_wait_ready(&c->up, ready, sizeof ready) &&
           strcmp(ready, c->ep) == 0;
}

static void
up_end(cluster_t *c)
{
    dv_proc_stop(&c->up, SIGTERM);
    dv_test_rmdir(c->dir);
    free(c->dir);
}

// The first whole number in text (0 when none).
static unsigned long
first_number(const char *text)
{
    while (*text && (*text < '0' || *text > '9')) {
        text++;
    }
    return strtoul(text, NULL, 10);
}

static void
nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void
test_usage_and_endpoints(void)
{
    cluster_t c = {0};
    bool up = up_start(&c, "1");
    char *o = NULL;
    // --broker before the command
    int rc = sh(&o, "--broker '%s' status --json", c.ep);
    DV_CHECK(up);
    DV_CHECK_EQ(rc, 0);
    DV_CHECK(strstr(o, "\"workers\":1") != NULL);
    free(o);
    // an endpoint without its transport: the fix is named
    rc = sh(&o, "status --broker localhost:7470");
    DV_CHECK_EQ(rc, 1);
    DV_CHECK(strstr(o, "write tcp://localhost:7470") != NULL);
    free(o);
    // --help on a command group is help, not a usage error
    static const char *const groups[] = {"models",  "jobs",     "dead",
                                         "results", "datasets", "local"};
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++) {
        rc = sh(&o, "%s --help", groups[i]);
        DV_CHECK_EQ(rc, 0);
        DV_CHECK(strncmp(o, "usage:", 6) == 0);
        free(o);
    }
    // usage errors exit 2 and name the flag and what it takes
    static const struct {
        const char *args;
        const char *says;
    } bad[] = {
        {"infer --model m --data x.csv --batch 0", "--batch '0'"},
        {"jobs list --state bogus", "--state 'bogus'"},
        {"jobs list --limit lots", "--limit 'lots'"},
        {"models gc m --keep 0", "--keep '0'"},
        {"up --workers -1 --endpoint", "--workers '-1'"},
        {"jobs result 1 --wait-ms soon", "--wait-ms 'soon'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rc = sh(&o,
                strncmp(bad[i].args, "up ", 3) == 0 ? "%s '%s'"
                                                    : "%s --broker '%s'",
                bad[i].args, c.ep);
        if (rc != 2 || !strstr(o, bad[i].says)) {
            fprintf(stderr, "  drover %s -> %d: %s\n", bad[i].args, rc, o);
        }
        DV_CHECK_EQ(rc, 2);
        DV_CHECK(strstr(o, bad[i].says) != NULL);
        free(o);
    }
    up_end(&c);
}

static void
test_jobs_without_waiting(void)
{
    cluster_t c = {0};
    bool up = up_start(&c, "1");
    DV_CHECK(up);
    char *o = NULL;
    // a long job: its result asked for early says where it is
    int rc = sh(&o, "submit --sleep 60000 --no-wait --broker '%s'", c.ep);
    DV_CHECK_EQ(rc, 0);
    free(o);
    rc = sh(&o, "jobs result 1 --broker '%s'", c.ep);
    DV_CHECK_EQ(rc, 1);
    DV_CHECK(strstr(o, "job 1 is running: no result yet") ||
             strstr(o, "job 1 is queued: no result yet"));
    free(o);
    rc = sh(&o, "jobs cancel 1 --broker '%s'", c.ep);
    DV_CHECK_EQ(rc, 0);
    free(o);
    // train --no-wait: the id on stdout, the result later from anywhere
    rc = sh(&o,
            "train --data '%s' --algo softmax --model iris --no-wait "
            "--broker '%s' 2>/dev/null",
            dv_test_data("iris_train.csv"), c.ep);
    DV_CHECK_EQ(rc, 0);
    unsigned long train_id = first_number(o);
    DV_CHECK_EQ(train_id, 2ul);
    free(o);
    rc = sh(&o, "jobs result %lu --wait-ms 60000 --json --broker '%s'",
            train_id, c.ep);
    DV_CHECK_EQ(rc, 0);
    DV_CHECK(strstr(o, "iris@1") != NULL);
    free(o);
    // waiting: the id is said on stderr before the result
    rc = sh(&o, "evaluate --model iris --data '%s' --broker '%s'",
            dv_test_data("iris_test.csv"), c.ep);
    DV_CHECK_EQ(rc, 0);
    DV_CHECK(strstr(o, "drover: job 3 submitted") != NULL);
    DV_CHECK(strstr(o, "accuracy") != NULL);
    free(o);
    rc = sh(&o,
            "evaluate --model iris --data '%s' --no-wait --json "
            "--broker '%s'",
            dv_test_data("iris_test.csv"), c.ep);
    DV_CHECK_EQ(rc, 0);
    DV_CHECK(strcmp(o, "{\"job\":4}\n") == 0);
    free(o);
    // --out where it cannot be written: refused before a job is submitted
    rc = sh(&o,
            "infer --model iris --data '%s' --out '%s/no/such/p.csv' "
            "--broker '%s'",
            dv_test_data("iris_test.csv"), c.dir, c.ep);
    DV_CHECK_EQ(rc, 1);
    DV_CHECK(strstr(o, "--out") && strstr(o, "No such file or directory"));
    free(o);
    rc = sh(&o, "jobs list --json --broker '%s'", c.ep);
    DV_CHECK_EQ(rc, 0);
    DV_CHECK(strstr(o, "\"job\":4,") != NULL);
    DV_CHECK(strstr(o, "\"job\":5,") == NULL); // no infer job ran
    free(o);
    // CSV from standard input: the same predictions as from the file
    char *from_file = NULL, *from_stdin = NULL;
    int rc_file = sh(&from_file,
                     "infer --model iris --data '%s' "
                     "--broker '%s' 2>/dev/null",
                     dv_test_data("iris_test.csv"), c.ep);
    int rc_stdin = sh(&from_stdin,
                      "infer --model iris --data - "
                      "--broker '%s' < '%s' 2>/dev/null",
                      c.ep, dv_test_data("iris_test.csv"));
    DV_CHECK_EQ(rc_file, 0);
    DV_CHECK_EQ(rc_stdin, 0);
    DV_CHECK(strncmp(from_file, "class,label,", 12) == 0);
    DV_CHECK_STR_EQ(from_stdin, from_file);
    free(from_file);
    free(from_stdin);
    up_end(&c);
}

// Wait (up to the proc deadline) for needle in dir/log.
static bool
log_has(const char *dir, const char *log, const char *needle)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, log);
    for (int64_t end = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
         dv_test_now_ms() < end;) {
        if (dv_test_file_has(path, needle)) {
            return true;
        }
        nap_ms(20);
    }
    return false;
}

static void
test_up_alone_and_second_signal(void)
{
    // --workers 0: a broker alone, ready at once
    cluster_t a = {0};
    bool alone = up_start(&a, "0");
    char *o = NULL;
    int rc = alone ? sh(&o, "status --json --broker '%s'", a.ep) : -1;
    DV_CHECK(alone);
    DV_CHECK_EQ(rc, 0);
    DV_CHECK(o && strstr(o, "\"workers\":0"));
    free(o);
    o = NULL;
    DV_CHECK_EQ(dv_proc_stop(&a.up, SIGINT), 0);
    dv_test_rmdir(a.dir);
    free(a.dir);

    // A worker busy for a minute: the first Ctrl-C waits for it, the
    // second stops everything now and says so.
    cluster_t c = {0};
    bool up = up_start(&c, "1");
    o = NULL;
    rc = up ? sh(&o, "submit --sleep 60000 --no-wait --broker '%s'", c.ep) : -1;
    free(o);
    o = NULL;
    bool running = false;
    for (int64_t end = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
         up && !running && dv_test_now_ms() < end;) {
        sh(&o, "jobs show 1 --json --broker '%s'", c.ep);
        running = strstr(o, "\"state\":\"running\"") != NULL;
        free(o);
        nap_ms(20);
    }
    kill(c.up.pid, SIGINT);
    bool draining = log_has(c.dir, "up.log", "finish the jobs they run");
    int exit_rc = dv_proc_stop(&c.up, SIGINT);
    bool said = log_has(c.dir, "up.log", "told to stop now: killed");
    if (!said) {
        dv_proc_dump_log(c.dir, "up.log");
    }
    DV_CHECK(up);
    DV_CHECK_EQ(rc, 0);
    DV_CHECK(running);
    DV_CHECK(draining);
    DV_CHECK(said);
    DV_CHECK_EQ(exit_rc, 0);
    dv_test_rmdir(c.dir);
    free(c.dir);
}

// `drover up --secure --data D`: CURVE keys made under D/keys and kept; the
// CLI gets in with `--keys D/keys`, a plain client is refused, and a
// restart on the same folder keeps the keys (clients keep working).
static void
test_up_secure(void)
{
    char *dir = dv_test_tmpdir();
    char ep[4400], data[4400], keys[4500], pub_path[4600];
    snprintf(ep, sizeof ep, "ipc://%s/c.sock", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(keys, sizeof keys, "%s/keys", data);
    snprintf(pub_path, sizeof pub_path, "%s/broker.pub", keys);
    const char *args[] = {"up", "--secure", "--workers", "1", "--endpoint",
                          ep,   "--data",   data,        NULL};
    unsigned char *first_pub = NULL;
    for (int round = 0; round < 2; round++) {
        dv_proc_t up = dv_proc_start("DROVER_BIN", args, dir, "up.log");
        char ready[4400] = "";
        bool ok = up.pid && dv_proc_wait_ready(&up, ready, sizeof ready);
        char *o = NULL;
        int rc = sh(&o, "--keys '%s' --broker '%s' submit --echo 8 --count 3",
                    keys, ep);
        DV_CHECK(ok);
        DV_CHECK_EQ(rc, 0);
        DV_CHECK(strstr(o, "3 jobs: 3 done, 0 failed") != NULL);
        free(o);
        rc = sh(&o, "--broker '%s' status", ep);
        DV_CHECK_EQ(rc, 1);
        DV_CHECK(strstr(o, "DV_EPERM") && strstr(o, "requires CURVE"));
        free(o);
        size_t len = 0;
        unsigned char *pub = dv_test_read_file(pub_path, &len);
        DV_CHECK(pub != NULL && len > 0);
        if (round == 0) {
            first_pub = pub;
        } else {
            DV_CHECK(pub && first_pub && memcmp(pub, first_pub, len) == 0);
            free(pub);
        }
        DV_CHECK_EQ(dv_proc_stop(&up, SIGTERM), 0);
    }
    free(first_pub);
    // --secure needs a folder to keep the keys in
    char *o = NULL;
    int rc = sh(&o, "up --secure --endpoint '%s'", ep);
    DV_CHECK_EQ(rc, 2);
    DV_CHECK(strstr(o, "--data") != NULL);
    free(o);
    dv_test_rmdir(dir);
    free(dir);
}

// A plain broker probed by a bare TCP connect (a port check, a load
// balancer's health check) has refused nobody: no "auth: refused" warning,
// only a debug line.
static void
test_plain_probe_quiet(void)
{
    char *dir = dv_test_tmpdir();
    char wep[4400];
    snprintf(wep, sizeof wep, "ipc://%s/w.sock", dir);
    const char *args[] = {"--client", "tcp://127.0.0.1:0", "--worker",
                          wep,        "--log-level",       "debug",
                          NULL};
    dv_proc_t b = dv_proc_start("DROVER_BROKER_BIN", args, dir, "broker.log");
    char ready[9000] = "";
    bool up = b.pid && dv_proc_wait_ready(&b, ready, sizeof ready);
    int port = 0; // READY tcp://127.0.0.1:PORT ipc://...
    sscanf(ready, "tcp://127.0.0.1:%d", &port);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool connected =
        up && port && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    bool noticed =
        connected && log_has(dir, "broker.log", "closed before its ZeroMQ");
    DV_CHECK_EQ(dv_proc_stop(&b, SIGTERM), 0);
    size_t len = 0;
    char path[4500];
    snprintf(path, sizeof path, "%s/broker.log", dir);
    char *text = (char *)dv_test_read_file(path, &len);
    DV_CHECK(up);
    DV_CHECK(connected);
    DV_CHECK(noticed);
    DV_CHECK(text && !strstr(text, "refused"));
    free(text);
    dv_test_rmdir(dir);
    free(dir);
}

// A push of another model's file under a busy name (iris's clients send 4
// features; digits takes 64) is refused, and so is moving an alias to such
// a version, unless --schema-change says it is meant.
static void
test_schema_change(void)
{
    cluster_t c = {0};
    bool up = up_start(&c, "1");
    DV_CHECK(up);
    char *o = NULL;
    int rc = 0;
    static const char *const sets[] = {"iris", "digits"};
    for (int i = 0; i < 2; i++) {
        char csv[64];
        snprintf(csv, sizeof csv, "%s_train.csv", sets[i]);
        rc = sh(&o, "local train --algo softmax --data '%s' --out '%s/%s.drvm'",
                dv_test_data(csv), c.dir, sets[i]);
        DV_CHECK_EQ(rc, 0);
        free(o);
    }
    rc = sh(&o, "models push '%s/iris.drvm' --name iris --broker '%s'", c.dir,
            c.ep);
    DV_CHECK_EQ(rc, 0);
    free(o);
    rc = sh(&o, "models alias iris@1 prod --broker '%s'", c.ep);
    DV_CHECK_EQ(rc, 0);
    free(o);
    rc = sh(&o, "models push '%s/digits.drvm' --name iris --broker '%s'", c.dir,
            c.ep);
    DV_CHECK_EQ(rc, 1);
    DV_CHECK(strstr(o, "DV_ESHAPE") && strstr(o, "takes 4 features") &&
             strstr(o, "--schema-change"));
    free(o);
    rc = sh(&o, "models list --json --broker '%s'", c.ep); // still one
    DV_CHECK(strstr(o, "\"version\":1") && !strstr(o, "\"version\":2"));
    free(o);
    rc = sh(&o,
            "models push '%s/digits.drvm' --name iris --schema-change "
            "--broker '%s'",
            c.dir, c.ep);
    DV_CHECK_EQ(rc, 0);
    DV_CHECK(strstr(o, "stored iris@2") != NULL);
    free(o);
    rc = sh(&o, "models alias iris@2 prod --broker '%s'", c.ep);
    DV_CHECK_EQ(rc, 1);
    DV_CHECK(strstr(o, "model_alias") && strstr(o, "DV_ESHAPE"));
    free(o);
    rc = sh(&o, "models alias iris@2 prod --schema-change --broker '%s'", c.ep);
    DV_CHECK_EQ(rc, 0);
    free(o);
    up_end(&c);
}

// Draining workers give back the jobs they hold but have not started
// (prefetch) instead of running them before they stop: with --data those
// jobs are still waiting after a restart, never run, and run then.
static void
test_drain_gives_back(void)
{
    char *dir = dv_test_tmpdir();
    char ep[4400], data[4400];
    snprintf(ep, sizeof ep, "ipc://%s/c.sock", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    const char *args[] = {"up", "--workers",  "1", "--prefetch",
                          "3",  "--endpoint", ep,  "--data",
                          data, NULL};
    dv_proc_t up = dv_proc_start("DROVER_BIN", args, dir, "up.log");
    char ready[4400] = "";
    bool ok = up.pid && dv_proc_wait_ready(&up, ready, sizeof ready);
    char *o = NULL;
    int rc = ok ? sh(&o,
                     "submit --sleep 1500 --count 4 --no-wait --broker "
                     "'%s'",
                     ep)
                : -1;
    free(o);
    o = NULL;
    // all four on the worker: one sleeping, three held
    bool held = false;
    for (int64_t end = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
         ok && !held && dv_test_now_ms() < end;) {
        sh(&o, "jobs list --state running --json --broker '%s'", ep);
        held = o && strstr(o, "\"job\":4,") && strstr(o, "\"job\":1,");
        free(o);
        o = NULL;
        nap_ms(20);
    }
    int stop_rc = dv_proc_stop(&up, SIGTERM);
    bool gave = log_has(dir, "up.log", "gave back");
    // restarted: job 1 ran; the three given back were kept, not run
    up = dv_proc_start("DROVER_BIN", args, dir, "up2.log");
    bool again = up.pid && dv_proc_wait_ready(&up, ready, sizeof ready);
    int done_rc = again ? sh(&o,
                             "jobs result 4 --wait-ms 60000 --json "
                             "--broker '%s'",
                             ep)
                        : -1;
    bool four_done = o && strstr(o, "\"state\":\"done\"");
    free(o);
    o = NULL;
    sh(&o, "jobs show 1 --json --broker '%s'", ep);
    bool one_ran_first =
        o && strstr(o, "\"state\":\"done\"") && strstr(o, "\"attempts\":1");
    // a finished job keeps its queue and kind across the restart (1.5)
    bool kind_kept = o && strstr(o, "\"queue\":\"default\"") &&
                     strstr(o, "\"kind\":\"sleep\"");
    free(o);
    DV_CHECK_EQ(dv_proc_stop(&up, SIGTERM), 0);
    if (!gave) {
        dv_proc_dump_log(dir, "up.log");
    }
    DV_CHECK(ok);
    DV_CHECK_EQ(rc, 0);
    DV_CHECK(held);
    DV_CHECK_EQ(stop_rc, 0);
    DV_CHECK(gave);
    DV_CHECK(again);
    DV_CHECK_EQ(done_rc, 0);
    DV_CHECK(four_done);
    DV_CHECK(one_ran_first);
    DV_CHECK(kind_kept);
    dv_test_rmdir(dir);
    free(dir);
}

static const dv_test_case_t cases[] = {
    {"draining workers give back the jobs they have not started",
     test_drain_gives_back},
    {"a push or alias move to another schema needs --schema-change",
     test_schema_change},
    {"a plain broker probed by TCP logs no refusal", test_plain_probe_quiet},
    {"drover up --secure: keys kept, --keys gets in", test_up_secure},
    {"usage errors name the flag; endpoints; group --help",
     test_usage_and_endpoints},
    {"results early, --no-wait, --out first, --data -",
     test_jobs_without_waiting},
    {"drover up: no workers; a second Ctrl-C stops at once",
     test_up_alone_and_second_signal},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
