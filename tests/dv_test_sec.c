// dv_test_sec — the security tests' CURVE fixture (see dv_test_sec.h).
#include "dv_test_sec.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dv_keys.h"
#include "dv_test.h"

#define DV_TSEC_POLL_MS 50 // the short sleep of a deadline-bounded wait

// keys/NAME.key + .pub with roles and queues; copied into the authorized
// folder unless stranger.
bool
dv_tsec_key_make(dv_tsec_t *s,
                 const char *name,
                 unsigned roles,
                 const char *queues,
                 bool authorize)
{
    return dv_test_key_make(s->keys, authorize ? s->auth : NULL, name, roles,
                            queues);
}

void
dv_tsec_key_path(const dv_tsec_t *s,
                 const char *name,
                 const char *ext,
                 char *buf,
                 size_t size)
{
    snprintf(buf, size, "%s/%s.%s", s->keys, name, ext);
}

// A broker on tcp 127.0.0.1 (ports picked by the system), CURVE on when
// secure, with extra options.
bool
dv_tsec_broker_start(dv_tsec_t *s, bool secure)
{
    char secret[4400];
    dv_tsec_key_path(s, "broker", "key", secret, sizeof secret);
    const char *args[20] = {"--client",       "tcp://127.0.0.1:0",
                            "--worker",       "tcp://127.0.0.1:0",
                            "--data",         s->data,
                            "--heartbeat-ms", DV_TSEC_HB_S};
    int n = 8;
    if (secure) {
        args[n++] = "--secret-key";
        args[n++] = secret;
        args[n++] = "--authorized-keys";
        args[n++] = s->auth;
    }
    for (int i = 0; i < DV_TSEC_MAX_ARGS && s->extra[i] && n < 19; i++) {
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

// A worker with key (NULL: plain) pinning keys/BROKER_KEY.pub as the
// broker's, on s->wep, logging to log. Not waited for.
dv_proc_t
dv_tsec_worker_spawn_queues(dv_tsec_t *s,
                            const char *key,
                            const char *broker_key,
                            const char *heartbeat_ms,
                            const char *queues,
                            const char *log)
{
    char k[4400], b[4400];
    dv_tsec_key_path(s, key ? key : "", "key", k, sizeof k);
    dv_tsec_key_path(s, broker_key, "pub", b, sizeof b);
    const char *args[16] = {"--broker", s->wep,           "--name",
                            "w",        "--heartbeat-ms", heartbeat_ms};
    int n = 6;
    if (queues) {
        args[n++] = "--queues";
        args[n++] = queues;
    }
    if (key) {
        args[n++] = "--key";
        args[n++] = k;
        args[n++] = "--broker-key";
        args[n++] = b;
    }
    args[n] = NULL;
    return dv_proc_start("DROVER_WORKER_BIN", args, s->dir, log);
}

// worker_spawn_queues serving every queue its key allows.
dv_proc_t
dv_tsec_worker_spawn(dv_tsec_t *s,
                     const char *key,
                     const char *broker_key,
                     const char *heartbeat_ms,
                     const char *log)
{
    return dv_tsec_worker_spawn_queues(s, key, broker_key, heartbeat_ms, NULL,
                                       log);
}

// A worker with key (NULL: plain), READY.
bool
dv_tsec_worker_start(dv_tsec_t *s, const char *key)
{
    s->worker =
        dv_tsec_worker_spawn(s, key, "broker", DV_TSEC_HB_S, "worker.log");
    char ready[9000];
    return s->worker.pid && dv_proc_wait_ready(&s->worker, ready, sizeof ready);
}

void
dv_tsec_nap(void)
{
    struct timespec ts = {0, DV_TSEC_POLL_MS * 1000000L};
    nanosleep(&ts, NULL);
}

// Wait (deadline DV_PROC_DEADLINE_MS, polling) until dir/log holds text.
bool
dv_tsec_log_says(const char *dir, const char *log, const char *text)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, log);
    int64_t deadline = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
    bool found = false;
    while (!found && dv_test_now_ms() < deadline) {
        size_t len = 0;
        char *got = (char *)dv_test_read_file(path, &len);
        found = got && strstr(got, text);
        free(got);
        if (!found) {
            dv_tsec_nap();
        }
    }
    return found;
}

// The broker, its key, an admin, and the keys a case names.
bool
dv_tsec_up(dv_tsec_t *s, const char *const *extra)
{
    memset(s, 0, sizeof *s);
    s->dir = dv_test_tmpdir();
    snprintf(s->auth, sizeof s->auth, "%s/authorized", s->dir);
    snprintf(s->keys, sizeof s->keys, "%s/keys", s->dir);
    snprintf(s->data, sizeof s->data, "%s/data", s->dir);
    mkdir(s->auth, 0755);
    mkdir(s->keys, 0700);
    for (int i = 0; extra && extra[i] && i < DV_TSEC_MAX_ARGS; i++) {
        s->extra[i] = extra[i];
    }
    return dv_tsec_key_make(s, "broker", 0, NULL, false) &&
           dv_tsec_key_make(s, "admin", DV_ROLE_ADMIN, NULL, true) &&
           dv_tsec_key_make(s, "alice", DV_ROLE_PRODUCER | DV_ROLE_CONSUMER,
                            "jobs", true) &&
           dv_tsec_key_make(s, "bob", DV_ROLE_PRODUCER, "jobs", true) &&
           dv_tsec_key_make(s, "carol", DV_ROLE_CONSUMER, "jobs", true) &&
           dv_tsec_key_make(s, "w1", DV_ROLE_WORKER, NULL, true) &&
           dv_tsec_key_make(s, "stranger", DV_ROLE_PRODUCER, NULL, false);
}

void
dv_tsec_down(dv_tsec_t *s, bool failed)
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

// Connect as key (NULL: plain), pinning keys/BROKER_KEY.pub as the
// broker's. Returns the error code (0: connected).
int
dv_tsec_connect_with(dv_tsec_t *s,
                     const char *key,
                     const char *broker_key,
                     drover_t **d,
                     drover_error_t *err)
{
    char k[4400], b[4400];
    dv_tsec_key_path(s, key ? key : "", "key", k, sizeof k);
    dv_tsec_key_path(s, broker_key, "pub", b, sizeof b);
    *d = NULL;
    return drover_connect_key(d, s->cep, 5000, key ? k : NULL, key ? b : NULL,
                              err);
}

// Connect as key (NULL: plain). Returns the error code (0: connected).
int
dv_tsec_connect_as(dv_tsec_t *s,
                   const char *key,
                   drover_t **d,
                   drover_error_t *err)
{
    return dv_tsec_connect_with(s, key, "broker", d, err);
}

// Does the audit log hold an entry by key (NULL: any) for action, on an
// object starting with object (NULL: any), whose outcome starts with
// outcome and holds says (NULL: anything)?
bool
dv_tsec_audit_has(drover_t *admin,
                  const char *key,
                  const char *action,
                  const char *object,
                  const char *outcome,
                  const char *says)
{
    drover_audit_entry_t *e = NULL;
    size_t n = 0;
    drover_error_t err = {0};
    bool found = false;
    if (drover_audit(admin, 0, &e, &n, NULL, &err) == 0) {
        for (size_t i = 0; i < n && !found; i++) {
            found = (!key || strcmp(e[i].key, key) == 0) &&
                    strcmp(e[i].action, action) == 0 &&
                    (!object ||
                     strncmp(e[i].object, object, strlen(object)) == 0) &&
                    strncmp(e[i].outcome, outcome, strlen(outcome)) == 0 &&
                    (!says || strstr(e[i].outcome, says));
        }
    }
    free(e);
    return found;
}

// audit_has, asked again (deadline DV_PROC_DEADLINE_MS, polling) until it
// holds: the broker audits a handshake that failed before authentication
// when its socket monitor reports it, which may be after the peer knows.
bool
dv_tsec_audit_shows(drover_t *admin,
                    const char *key,
                    const char *action,
                    const char *object,
                    const char *outcome)
{
    int64_t deadline = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
    bool found = dv_tsec_audit_has(admin, key, action, object, outcome, NULL);
    while (!found && dv_test_now_ms() < deadline) {
        dv_tsec_nap();
        found = dv_tsec_audit_has(admin, key, action, object, outcome, NULL);
    }
    return found;
}

// Does the audit log hold an entry by key for action whose outcome starts
// with outcome?
bool
dv_tsec_audited(drover_t *admin,
                const char *key,
                const char *action,
                const char *outcome)
{
    return dv_tsec_audit_has(admin, key, action, NULL, outcome, NULL);
}
