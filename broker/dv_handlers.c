// dv_handlers — the client socket's message table: one row per type.
//
// A row reads: type, handler, roles (any of; admin always passes), what it
// acts on, the owner checks after that, audited. docs/SECURITY.md's roles
// table is this table in words.
#include "dv_handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_auth.h"
#include "dv_authorize.h"
#include "dv_broker_int.h"
#include "dv_consumers.h"
#include "dv_datasets_msg.h"
#include "dv_dead.h"
#include "dv_joblist.h"
#include "dv_jobs_msg.h"
#include "dv_keys.h"
#include "dv_mem.h"
#include "dv_models_msg.h"
#include "dv_proto.h"
#include "dv_results.h"
#include "dv_workers_msg.h"

// Wrappers: a handler that takes (self, route, route_len, m, rid, err) ...
#define ROUTED(fn)                                                             \
    static int fn##_req(request_t *r, dv_error_t *err)                         \
    {                                                                          \
        return fn(r->self, r->route, r->route_len, r->m, r->rid, err);         \
    }
ROUTED(dv_authorize_on_audit_list)
ROUTED(dv_results_on_get)
ROUTED(dv_jobs_msg_on_get)
ROUTED(dv_models_msg_on_push)
ROUTED(dv_models_msg_on_get)
ROUTED(dv_models_msg_on_rm)
ROUTED(dv_models_msg_on_alias)
ROUTED(dv_models_msg_on_gc)
ROUTED(dv_models_msg_on_config)
ROUTED(dv_datasets_msg_on_push)
ROUTED(dv_datasets_msg_on_get)
ROUTED(dv_datasets_msg_on_rm)
ROUTED(dv_datasets_msg_on_share)
ROUTED(dv_joblist_on_list)
ROUTED(dv_jobs_msg_on_cancel)
ROUTED(dv_jobs_msg_on_status)
ROUTED(dv_dead_on_list)
ROUTED(dv_dead_on_requeue)
ROUTED(dv_dead_on_purge)
ROUTED(dv_results_on_follow)
ROUTED(dv_results_on_ack)
ROUTED(dv_results_on_unfollow)
ROUTED(dv_consumers_on_list)
ROUTED(dv_consumers_on_forget)
ROUTED(dv_models_msg_on_list)
ROUTED(dv_datasets_msg_on_list)
ROUTED(dv_workers_msg_on_list)

static int
dv_jobs_msg_on_submit_req(request_t *r, dv_error_t *err)
{
    return dv_jobs_msg_on_submit(r->self, r->in, r->m, err);
}

static int
on_hello_req(request_t *r, dv_error_t *err)
{
    (void)err;
    dv_broker_send_simple(r->self, r->self->clients, r->in, DV_MSG_WELCOME,
                          r->rid);
    return 0;
}

static int
on_ping_req(request_t *r, dv_error_t *err)
{
    (void)err;
    dv_broker_send_simple(r->self, r->self->clients, r->in, DV_MSG_PONG,
                          r->rid);
    return 0;
}

static int
on_admin_reload_req(request_t *r, dv_error_t *err)
{
    size_t n = 0;
    int rc = dv_auth_reload(r->self->auth, &n, err);
    r->self->current = NULL; // the old keyring is gone
    dv_authorize_reload_done(r->self, r->who_id, rc, n, err->text);
    if (rc == 0) {
        dv_msgw_t *w = dv_msgw_new(DV_MSG_OK, r->rid);
        dv_msgw_uint(w, "keys", n);
        dv_broker_client_reply(r->self, r->route, r->route_len, w);
    }
    return rc;
}

// The group's members, roles, term and replication (PROTOCOL.md, Broker
// groups); a broker alone has no members.
static int
on_cluster_req(request_t *r, dv_error_t *err)
{
    (void)err;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_CLUSTER, r->rid);
    if (r->self->repl) {
        dv_repl_describe(r->self->repl, w);
    } else {
        dv_msgw_uint(w, "self", 0);
        dv_msgw_uint(w, "leader", 0);
        dv_msgw_key(w, "members");
        dv_msgw_v_array(w, 0);
    }
    dv_broker_client_reply(r->self, r->route, r->route_len, w);
    return 0;
}

// A membership change in flight: whom to answer once it is committed.
typedef struct {
    dv_broker_t *self;
    uint64_t rid;
    size_t route_len;
    uint8_t route[ROUTE_MAX];
} change_reply_t;

static void
on_member_changed(void *arg, int rc, const char *why)
{
    change_reply_t *c = arg;
    if (c->self->repl) { // else the broker is starting over: no reply
        if (rc == 0) {
            dv_broker_client_reply(c->self, c->route, c->route_len,
                                   dv_msgw_new(DV_MSG_OK, c->rid));
        } else {
            dv_broker_client_error(c->self, c->route, c->route_len, c->rid, 0,
                                   rc, why);
        }
    }
    free(c);
}

static int
on_member_change_req(request_t *r, dv_error_t *err)
{
    if (!r->self->repl) {
        return dv_errorf(err, DV_EINVAL,
                         "this broker is not a group member (start the "
                         "members with --raft-id; docs/ARCHITECTURE.md)");
    }
    uint64_t id = 0;
    char raft[DV_MAX_REPL_ADDR + 1] = "";
    bool add = dv_msg_type(r->m) == DV_MSG_MEMBER_ADD;
    int rc = dv_msg_uint(r->m, "id", &id, err);
    if (rc == 0 && add) {
        rc = dv_msg_str(r->m, "raft", raft, sizeof raft, err);
    }
    if (rc || r->route_len > ROUTE_MAX) {
        return rc ? rc : dv_errorf(err, DV_EINVAL, "route too long");
    }
    change_reply_t *c = dv_calloc(1, sizeof *c);
    c->self = r->self;
    c->rid = r->rid;
    c->route_len = r->route_len;
    memcpy(c->route, r->route, r->route_len);
    rc = add ? dv_repl_member_add(r->self->repl, id, raft, on_member_changed, c,
                                  err)
             : dv_repl_member_remove(r->self->repl, id, on_member_changed, c,
                                     err);
    if (rc) {
        free(c);
    }
    return rc;
}

#define P     DV_ROLE_PRODUCER
#define C     DV_ROLE_CONSUMER
#define ADMIN 0 // admins only

// clang-format off
static const msg_row_t client_rows[DV_MSG_COUNT_] = {
//  type                      handler                roles    acts on          checks                                    audited
    [DV_MSG_HELLO]         = {on_hello_req,          ANY_KEY, ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_PING]          = {on_ping_req,           ANY_KEY, ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_STATUS]        = {dv_jobs_msg_on_status_req,         ANY_KEY, ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_WORKERS]       = {dv_workers_msg_on_list_req,        ANY_KEY, ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_SUBMIT]        = {dv_jobs_msg_on_submit_req,         P,       ACTS_ON_QUEUE,   CHECK_DATASET_READS | CHECK_TRAIN_MODEL,  false},
    [DV_MSG_RESULT_GET]    = {dv_results_on_get_req,     P | C,   ACTS_ON_JOB,     0,                                        false},
    [DV_MSG_JOB_GET]       = {dv_jobs_msg_on_get_req,        P | C,   ACTS_ON_JOB,     0,                                        false},
    [DV_MSG_JOB_CANCEL]    = {dv_jobs_msg_on_cancel_req,     P | C,   ACTS_ON_JOB,     0,                                        false},
    [DV_MSG_JOB_LIST]      = {dv_joblist_on_list_req,          P | C,   ACTS_ON_QUEUES,  0,                                        false},
    [DV_MSG_FOLLOW]        = {dv_results_on_follow_req,         C,       ACTS_ON_QUEUE,   CHECK_CONSUMER,                           false},
    [DV_MSG_ACK]           = {dv_results_on_ack_req,            C,       ACTS_ON_QUEUE,   CHECK_CONSUMER,                           false},
    [DV_MSG_UNFOLLOW]      = {dv_results_on_unfollow_req,       C,       ACTS_ON_QUEUE,   CHECK_CONSUMER,                           false},
    [DV_MSG_CONSUMER_LIST] = {dv_consumers_on_list_req,         ADMIN,   ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_CONSUMER_FORGET] = {dv_consumers_on_forget_req,     C,       ACTS_ON_QUEUE,   CHECK_CONSUMER,                           true},
    [DV_MSG_MODEL_GET]     = {dv_models_msg_on_get_req,      ANY_KEY, ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_MODEL_LIST]    = {dv_models_msg_on_list_req,     ANY_KEY, ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_MODEL_PUSH]    = {dv_models_msg_on_push_req,     ADMIN,   ACTS_ON_NOTHING, 0,                                        true},
    [DV_MSG_MODEL_RM]      = {dv_models_msg_on_rm_req,       P,       ACTS_ON_MODEL,   0,                                        true},
    [DV_MSG_MODEL_ALIAS]   = {dv_models_msg_on_alias_req,    ADMIN,   ACTS_ON_NOTHING, 0,                                        true},
    [DV_MSG_MODEL_GC]      = {dv_models_msg_on_gc_req,       ADMIN,   ACTS_ON_NOTHING, 0,                                        true},
    [DV_MSG_MODEL_CONFIG]  = {dv_models_msg_on_config_req,   ADMIN,   ACTS_ON_NOTHING, 0,                                        true},
    [DV_MSG_DATASET_GET]   = {dv_datasets_msg_on_get_req,    P | C,   ACTS_ON_NOTHING, CHECK_DATASET_READS,                      false},
    [DV_MSG_DATASET_LIST]  = {dv_datasets_msg_on_list_req,   ANY_KEY, ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_DATASET_PUSH]  = {dv_datasets_msg_on_push_req,   P,       ACTS_ON_DATASET, 0,                                        true},
    [DV_MSG_DATASET_RM]    = {dv_datasets_msg_on_rm_req,     P,       ACTS_ON_DATASET, 0,                                        true},
    [DV_MSG_DATASET_SHARE] = {dv_datasets_msg_on_share_req,  P,       ACTS_ON_DATASET, 0,                                        true},
    [DV_MSG_DEAD_LIST]     = {dv_dead_on_list_req,      ADMIN,   ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_DEAD_REQUEUE]  = {dv_dead_on_requeue_req,   ADMIN,   ACTS_ON_NOTHING, 0,                                        true},
    [DV_MSG_DEAD_PURGE]    = {dv_dead_on_purge_req,     ADMIN,   ACTS_ON_NOTHING, 0,                                        true},
    [DV_MSG_AUDIT_LIST]    = {dv_authorize_on_audit_list_req,     ADMIN,   ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_ADMIN_RELOAD]  = {on_admin_reload_req,   ADMIN,   ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_CLUSTER]       = {on_cluster_req,        ANY_KEY, ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_MEMBER_ADD]    = {on_member_change_req,  ADMIN,   ACTS_ON_NOTHING, 0,                                        true},
    [DV_MSG_MEMBER_REMOVE] = {on_member_change_req,  ADMIN,   ACTS_ON_NOTHING, 0,                                        true},
};
// clang-format on

#undef P
#undef C
#undef ADMIN

const msg_row_t *
dv_handlers_client_row(dv_msg_type_t type)
{
    if ((unsigned)type >= DV_MSG_COUNT_ || !client_rows[type].handler) {
        return NULL;
    }
    return &client_rows[type];
}
