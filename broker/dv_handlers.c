// dv_handlers — the client socket's message table: one row per type.
//
// A row reads: type, handler, roles (any of; admin always passes), what it
// acts on, the owner checks after that, audited. docs/SECURITY.md's roles
// table is this table in words.
#include "dv_handlers.h"

#include <stdio.h>

#include "dv_auth.h"
#include "dv_authorize.h"
#include "dv_broker_int.h"
#include "dv_datasets_msg.h"
#include "dv_dead.h"
#include "dv_jobs_msg.h"
#include "dv_keys.h"
#include "dv_models_msg.h"
#include "dv_proto.h"
#include "dv_results.h"

// Wrappers: a handler that takes (self, route, route_len, m, rid, err) ...
#define ROUTED(fn)                                                             \
    static int fn##_req(request_t *r, dv_error_t *err)                         \
    {                                                                          \
        return fn(r->self, r->route, r->route_len, r->m, r->rid, err);         \
    }
// ... or (self, route, route_len, rid): a listing that cannot fail on input.
#define LISTING(fn)                                                            \
    static int fn##_req(request_t *r, dv_error_t *err)                         \
    {                                                                          \
        (void)err;                                                             \
        return fn(r->self, r->route, r->route_len, r->rid);                    \
    }

ROUTED(on_audit_list)
ROUTED(on_result_get)
ROUTED(on_job_get)
ROUTED(on_model_push)
ROUTED(on_model_get)
ROUTED(on_model_rm)
ROUTED(on_model_alias)
ROUTED(on_model_gc)
ROUTED(on_model_config)
ROUTED(on_dataset_push)
ROUTED(on_dataset_get)
ROUTED(on_dataset_rm)
ROUTED(on_dataset_share)
ROUTED(on_job_list)
ROUTED(on_job_cancel)
ROUTED(on_status)
ROUTED(on_dead_list)
ROUTED(on_dead_requeue)
ROUTED(on_dead_purge)
ROUTED(on_follow)
ROUTED(on_ack)
ROUTED(on_unfollow)
LISTING(on_model_list)
LISTING(on_dataset_list)
LISTING(on_workers)

static int
on_submit_req(request_t *r, dv_error_t *err)
{
    return on_submit(r->self, r->in, r->m, err);
}

static int
on_hello_req(request_t *r, dv_error_t *err)
{
    (void)err;
    send_simple(r->self, r->self->clients, r->in, DV_MSG_WELCOME, r->rid);
    return 0;
}

static int
on_ping_req(request_t *r, dv_error_t *err)
{
    (void)err;
    send_simple(r->self, r->self->clients, r->in, DV_MSG_PONG, r->rid);
    return 0;
}

static int
on_admin_reload_req(request_t *r, dv_error_t *err)
{
    size_t n = 0;
    int rc = dv_auth_reload(r->self->auth, &n, err);
    r->self->current = NULL; // the old keyring is gone
    reload_done(r->self, r->who_id, rc, n, err->text);
    if (rc == 0) {
        dv_msgw_t *w = dv_msgw_new(DV_MSG_OK, r->rid);
        dv_msgw_uint(w, "keys", n);
        client_reply(r->self, r->route, r->route_len, w);
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
    [DV_MSG_STATUS]        = {on_status_req,         ANY_KEY, ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_WORKERS]       = {on_workers_req,        ANY_KEY, ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_SUBMIT]        = {on_submit_req,         P,       ACTS_ON_QUEUE,   CHECK_DATASET_READS | CHECK_TRAIN_MODEL,  false},
    [DV_MSG_RESULT_GET]    = {on_result_get_req,     P | C,   ACTS_ON_JOB,     0,                                        false},
    [DV_MSG_JOB_GET]       = {on_job_get_req,        P | C,   ACTS_ON_JOB,     0,                                        false},
    [DV_MSG_JOB_CANCEL]    = {on_job_cancel_req,     P | C,   ACTS_ON_JOB,     0,                                        false},
    [DV_MSG_JOB_LIST]      = {on_job_list_req,       P | C,   ACTS_ON_QUEUES,  0,                                        false},
    [DV_MSG_FOLLOW]        = {on_follow_req,         C,       ACTS_ON_QUEUE,   CHECK_CONSUMER,                           false},
    [DV_MSG_ACK]           = {on_ack_req,            C,       ACTS_ON_QUEUE,   CHECK_CONSUMER,                           false},
    [DV_MSG_UNFOLLOW]      = {on_unfollow_req,       C,       ACTS_ON_QUEUE,   CHECK_CONSUMER,                           false},
    [DV_MSG_MODEL_GET]     = {on_model_get_req,      ANY_KEY, ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_MODEL_LIST]    = {on_model_list_req,     ANY_KEY, ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_MODEL_PUSH]    = {on_model_push_req,     ADMIN,   ACTS_ON_NOTHING, 0,                                        true},
    [DV_MSG_MODEL_RM]      = {on_model_rm_req,       P,       ACTS_ON_MODEL,   0,                                        true},
    [DV_MSG_MODEL_ALIAS]   = {on_model_alias_req,    ADMIN,   ACTS_ON_NOTHING, 0,                                        true},
    [DV_MSG_MODEL_GC]      = {on_model_gc_req,       ADMIN,   ACTS_ON_NOTHING, 0,                                        true},
    [DV_MSG_MODEL_CONFIG]  = {on_model_config_req,   ADMIN,   ACTS_ON_NOTHING, 0,                                        true},
    [DV_MSG_DATASET_GET]   = {on_dataset_get_req,    P | C,   ACTS_ON_NOTHING, CHECK_DATASET_READS,                      false},
    [DV_MSG_DATASET_LIST]  = {on_dataset_list_req,   ANY_KEY, ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_DATASET_PUSH]  = {on_dataset_push_req,   P,       ACTS_ON_DATASET, 0,                                        true},
    [DV_MSG_DATASET_RM]    = {on_dataset_rm_req,     P,       ACTS_ON_DATASET, 0,                                        true},
    [DV_MSG_DATASET_SHARE] = {on_dataset_share_req,  P,       ACTS_ON_DATASET, 0,                                        true},
    [DV_MSG_DEAD_LIST]     = {on_dead_list_req,      ADMIN,   ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_DEAD_REQUEUE]  = {on_dead_requeue_req,   ADMIN,   ACTS_ON_NOTHING, 0,                                        true},
    [DV_MSG_DEAD_PURGE]    = {on_dead_purge_req,     ADMIN,   ACTS_ON_NOTHING, 0,                                        true},
    [DV_MSG_AUDIT_LIST]    = {on_audit_list_req,     ADMIN,   ACTS_ON_NOTHING, 0,                                        false},
    [DV_MSG_ADMIN_RELOAD]  = {on_admin_reload_req,   ADMIN,   ACTS_ON_NOTHING, 0,                                        false},
};
// clang-format on

#undef P
#undef C
#undef ADMIN

const msg_row_t *
client_row(dv_msg_type_t type)
{
    if ((unsigned)type >= DV_MSG_COUNT_ || !client_rows[type].handler) {
        return NULL;
    }
    return &client_rows[type];
}
