// dv_test_sec — the CURVE fixture of the security tests (test_security,
// test_key_limits): a temporary folder with the broker's key pair and the
// keys a case uses (admin; alice, producer and consumer on "jobs"; bob,
// producer there; carol, consumer there; a worker key w1; and stranger,
// not authorized), a drover-broker on tcp 127.0.0.1 with CURVE on or off,
// a drover-worker keyed or plain, clients connected as a key, and reads of
// the audit log. Readiness comes from READY lines; waits poll until a
// deadline (DV_PROC_DEADLINE_MS), never a count.
// Threads: one test thread.
#ifndef DV_TEST_SEC_H
#define DV_TEST_SEC_H

#include <stdbool.h>
#include <stddef.h>

#include "drover.h"
#include "dv_test_proc.h"

// Liveness = 3 heartbeats: 1 s, as test_infer and test_echo, so that a
// busy broker on 2 loaded cores is not taken for a dead one (exact attempt
// counts are asserted).
#define DV_TSEC_HB_S     "1000"
#define DV_TSEC_MAX_ARGS 8 // extra broker options

typedef struct {
    char *dir;
    char auth[4300]; // authorized keys folder
    char keys[4300]; // where every key pair lives
    char data[4300]; // broker data
    char cep[256], wep[256];
    dv_proc_t broker;
    dv_proc_t worker;
    const char *extra[DV_TSEC_MAX_ARGS];
} dv_tsec_t;

// The folder, the broker's key, an admin and the keys above; extra broker
// options (NULL-ended, at most DV_TSEC_MAX_ARGS; NULL: none) for
// dv_tsec_broker_start. False when a key could not be made.
bool dv_tsec_up(dv_tsec_t *s, const char *const *extra);
// Stop the worker and the broker, show their logs when failed, remove the
// folder.
void dv_tsec_down(dv_tsec_t *s, bool failed);

// keys/NAME.key + .pub with roles and queues (NULL: all); copied into the
// authorized folder when authorize.
bool dv_tsec_key_make(dv_tsec_t *s,
                      const char *name,
                      unsigned roles,
                      const char *queues,
                      bool authorize);
// keys/NAME.EXT into buf.
void dv_tsec_key_path(const dv_tsec_t *s,
                      const char *name,
                      const char *ext,
                      char *buf,
                      size_t size);

// A broker on tcp 127.0.0.1 (ports picked by the system; s->cep, s->wep),
// CURVE on when secure, with the extra options; true once READY.
bool dv_tsec_broker_start(dv_tsec_t *s, bool secure);
// A worker with key (NULL: plain) pinning keys/BROKER_KEY.pub as the
// broker's, serving queues (NULL: every queue its key allows), logging to
// log. Not waited for.
dv_proc_t dv_tsec_worker_spawn_queues(dv_tsec_t *s,
                                      const char *key,
                                      const char *broker_key,
                                      const char *heartbeat_ms,
                                      const char *queues,
                                      const char *log);
dv_proc_t dv_tsec_worker_spawn(dv_tsec_t *s,
                               const char *key,
                               const char *broker_key,
                               const char *heartbeat_ms,
                               const char *log);
// s->worker with key (NULL: plain); true once READY.
bool dv_tsec_worker_start(dv_tsec_t *s, const char *key);

// The short sleep of a deadline-bounded wait.
void dv_tsec_nap(void);
// Wait (DV_PROC_DEADLINE_MS, polling) until dir/log holds text.
bool dv_tsec_log_says(const char *dir, const char *log, const char *text);

// Connect as key (NULL: plain), pinning keys/BROKER_KEY.pub as the
// broker's (dv_tsec_connect_as: "broker"). Returns the error code (0:
// connected).
int dv_tsec_connect_with(dv_tsec_t *s,
                         const char *key,
                         const char *broker_key,
                         drover_t **d,
                         drover_error_t *err);
int dv_tsec_connect_as(dv_tsec_t *s,
                       const char *key,
                       drover_t **d,
                       drover_error_t *err);

// Does the audit log hold an entry by key (NULL: any) for action, on an
// object starting with object (NULL: any), whose outcome starts with
// outcome and holds says (NULL: anything)?
bool dv_tsec_audit_has(drover_t *admin,
                       const char *key,
                       const char *action,
                       const char *object,
                       const char *outcome,
                       const char *says);
// dv_tsec_audit_has (says NULL), asked again until it holds
// (DV_PROC_DEADLINE_MS): a handshake that failed before authentication is
// audited when the broker's socket monitor reports it, which may be after
// the peer knows.
bool dv_tsec_audit_shows(drover_t *admin,
                         const char *key,
                         const char *action,
                         const char *object,
                         const char *outcome);
// An entry by key for action whose outcome starts with outcome, any object.
bool dv_tsec_audited(drover_t *admin,
                     const char *key,
                     const char *action,
                     const char *outcome);

#endif
