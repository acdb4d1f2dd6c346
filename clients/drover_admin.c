// drover_admin — looking at and steering the broker through libdrover
// (see drover.h): workers, status (paged), audit records, keys reload.
// Each call is one request/reply (drv_request, drover_conn.c).

#include <stdlib.h>
#include <string.h>

#include "drover.h"
#include "drover_int.h"
#include "dv_err.h"
#include "dv_mem.h"
#include "dv_msgpack.h"
#include "dv_proto.h"

// ------------------------------------------------------- workers, status

// One item of a `worker_list` reply.
static void
worker_from_obj(const msgpack_object *o, void *item)
{
    drover_worker_t *v = item;
    drv_copy_obj_str(dv_msgpack_get(o, "name"), v->name, sizeof v->name);
    v->capacity = (uint32_t)drv_obj_uint(o, "capacity");
    v->running = (uint32_t)drv_obj_uint(o, "running");
    v->idle_ms = drv_obj_uint(o, "idle_ms");
    // 1.5 (a 1.4 broker or an older worker: absent, left 0/false)
    const msgpack_object *c = dv_msgpack_get(o, "concurrency");
    if (c && c->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        c->via.u64 <= UINT32_MAX) {
        v->concurrency = (uint32_t)c->via.u64;
    }
    c = dv_msgpack_get(o, "computing");
    if (c && c->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        c->via.u64 <= UINT32_MAX) {
        v->computing = (uint32_t)c->via.u64;
        v->computing_known = true;
    }
    drv_copy_obj_str(dv_msgpack_get(o, "state"), v->state, sizeof v->state);
    dv_error_t e;
    dv_strs_from_obj(dv_msgpack_get(o, "models"), "models", 4096,
                     2 * DV_MAX_WIRE_NAME, &v->models, &v->n_models, &e);
    dv_strs_from_obj(dv_msgpack_get(o, "datasets"), "datasets", 4096,
                     2 * DV_MAX_WIRE_NAME, &v->datasets, &v->n_datasets, &e);
    // 1.7: a long list is cut, and the total said
    uint64_t total = drv_obj_uint(o, "models_total");
    v->models_total = total > v->n_models ? (size_t)total : v->n_models;
    total = drv_obj_uint(o, "datasets_total");
    v->datasets_total = total > v->n_datasets ? (size_t)total : v->n_datasets;
}

static void
worker_free(void *item)
{
    drover_worker_t *v = item;
    dv_strs_free(&v->models, v->n_models);
    dv_strs_free(&v->datasets, v->n_datasets);
}

int
drover_workers(drover_t *self,
               drover_worker_t **workers,
               size_t *n,
               drover_error_t *err)
{
    const drv_list_t list = {.type = DV_MSG_WORKERS,
                             .want = DV_MSG_WORKER_LIST,
                             .key = "workers",
                             .item_size = sizeof **workers,
                             .fill = worker_from_obj,
                             .item_free = worker_free};
    void *v = NULL;
    int rc = drv_request_list(self, &list, &v, n, NULL, err);
    *workers = v;
    return rc;
}

void
drover_workers_free(drover_worker_t **workers, size_t n)
{
    if (!workers || !*workers) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        worker_free(&(*workers)[i]);
    }
    free(*workers);
    *workers = NULL;
}

// One item of an `audit` reply.
static void
audit_from_obj(const msgpack_object *o, void *item)
{
    drover_audit_entry_t *e = item;
    e->seq = drv_obj_uint(o, "seq");
    e->unix_ms = drv_obj_uint(o, "unix_ms");
    drv_copy_obj_str(dv_msgpack_get(o, "key"), e->key, sizeof e->key);
    drv_copy_obj_str(dv_msgpack_get(o, "action"), e->action, sizeof e->action);
    drv_copy_obj_str(dv_msgpack_get(o, "object"), e->object, sizeof e->object);
    drv_copy_obj_str(dv_msgpack_get(o, "outcome"), e->outcome,
                     sizeof e->outcome);
}

int
drover_audit(drover_t *self,
             uint64_t since_unix_ms,
             drover_audit_entry_t **entries,
             size_t *n,
             bool *more,
             drover_error_t *err)
{
    *entries = NULL;
    *n = 0;
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_AUDIT_LIST, rid);
    dv_msgw_uint(w, "since_ms", since_unix_ms);
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_AUDIT,
                         drv_deadline_of(10000), err);
    if (rc == 0) {
        *entries = drv_reply_list(self, "entries", sizeof **entries,
                                  audit_from_obj, n);
        if (more) {
            *more = drv_obj_uint(drv_reply_root(self), "more") != 0;
        }
    }
    drv_drop_reply(self);
    return rc;
}

int
drover_admin_reload(drover_t *self, size_t *keys, drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    int rc = drv_request(self, dv_msgw_new(DV_MSG_ADMIN_RELOAD, rid), rid, NULL,
                         0, DV_MSG_OK, drv_deadline_of(10000), err);
    if (rc == 0 && keys) {
        *keys = (size_t)drv_obj_uint(drv_reply_root(self), "keys");
    }
    drv_drop_reply(self);
    return rc;
}

static void status_page(const msgpack_object *root, drover_status_t *out);

int
drover_status(drover_t *self, drover_status_t *out, drover_error_t *err)
{
    memset(out, 0, sizeof *out);
    // The queues come a page at a time (1.2: queues_total, queues_from);
    // a 1.1 broker sends them all at once and no queues_total.
    uint64_t total = 0;
    int rc = 0;
    do {
        uint64_t rid = ++self->next_rid;
        dv_msgw_t *w = dv_msgw_new(DV_MSG_STATUS, rid);
        if (out->n_queues) {
            dv_msgw_uint(w, "queues_from", out->n_queues);
        }
        rc = drv_request(self, w, rid, NULL, 0, DV_MSG_STATUS_INFO,
                         drv_deadline_of(10000), err);
        if (rc) {
            break;
        }
        const msgpack_object *root = drv_reply_root(self);
        total = drv_obj_uint(root, "queues_total");
        size_t had = out->n_queues;
        status_page(root, out);
        drv_drop_reply(self);
        if (out->n_queues == had) {
            break; // nothing new: the list shrank meanwhile
        }
    } while (out->n_queues < total);
    if (rc) {
        drover_status_clear(out);
    }
    return rc;
}

// One status reply into out: the totals, and its page of queues appended.
static void
status_page(const msgpack_object *root, drover_status_t *out)
{
    drv_copy_obj_str(dv_msgpack_get(root, "broker"), out->broker,
                     sizeof out->broker);
    out->workers = drv_obj_uint(root, "workers");
    out->queued = drv_obj_uint(root, "queued");
    out->running = drv_obj_uint(root, "running");
    out->retrying = drv_obj_uint(root, "retrying");
    out->dead = drv_obj_uint(root, "dead");
    out->kept_results = drv_obj_uint(root, "kept_results");
    out->models = drv_obj_uint(root, "models");
    const msgpack_object *q = dv_msgpack_get(root, "queues");
    size_t count = q && q->type == MSGPACK_OBJECT_MAP ? q->via.map.size : 0;
    size_t had = out->n_queues;
    out->queues =
        dv_realloc(out->queues, (had + count + 1) * sizeof *out->queues);
    memset(out->queues + had, 0, (count + 1) * sizeof *out->queues);
    for (size_t i = 0; i < count; i++) {
        const msgpack_object_kv *kv = &q->via.map.ptr[i];
        drover_queue_t *dq = &out->queues[had + i];
        drv_copy_obj_str(&kv->key, dq->name, sizeof dq->name);
        dq->queued = drv_obj_uint(&kv->val, "queued");
        dq->running = drv_obj_uint(&kv->val, "running");
        dq->retrying = drv_obj_uint(&kv->val, "retrying");
        dq->dead = drv_obj_uint(&kv->val, "dead");
        dq->done = drv_obj_uint(&kv->val, "done");
        dq->failed = drv_obj_uint(&kv->val, "failed");
        dq->expired = drv_obj_uint(&kv->val, "expired");
        dq->cancelled = drv_obj_uint(&kv->val, "cancelled");
        dq->bytes = drv_obj_uint(&kv->val, "bytes");
    }
    out->n_queues = had + count;
    out->n_queues = had + count;
}

void
drover_status_clear(drover_status_t *s)
{
    free(s->queues);
    memset(s, 0, sizeof *s);
}

// ------------------------------------------------------- broker groups

static void
member_from_obj(const msgpack_object *o, void *item)
{
    drover_member_t *m = item;
    m->id = drv_obj_uint(o, "id");
    drv_copy_obj_str(dv_msgpack_get(o, "raft"), m->raft, sizeof m->raft);
    drv_copy_obj_str(dv_msgpack_get(o, "client"), m->client, sizeof m->client);
    drv_copy_obj_str(dv_msgpack_get(o, "worker"), m->worker, sizeof m->worker);
    drv_copy_obj_str(dv_msgpack_get(o, "http"), m->http, sizeof m->http);
    const msgpack_object *v = dv_msgpack_get(o, "voter");
    m->voter = v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
    drv_copy_obj_str(dv_msgpack_get(o, "role"), m->role, sizeof m->role);
    m->match = drv_obj_uint(o, "match");
}

int
drover_cluster(drover_t *self, drover_cluster_t *out, drover_error_t *err)
{
    memset(out, 0, sizeof *out);
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_CLUSTER, rid);
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_CLUSTER,
                         drv_deadline_of(10000), err);
    if (rc == 0) {
        const msgpack_object *root = drv_reply_root(self);
        out->self = drv_obj_uint(root, "self");
        out->leader = drv_obj_uint(root, "leader");
        out->term = drv_obj_uint(root, "term");
        out->commit = drv_obj_uint(root, "commit");
        out->applied = drv_obj_uint(root, "applied");
        out->last = drv_obj_uint(root, "last");
        out->members = drv_reply_list(self, "members", sizeof *out->members,
                                      member_from_obj, &out->n_members);
    }
    drv_drop_reply(self);
    return rc;
}

void
drover_cluster_clear(drover_cluster_t *c)
{
    free(c->members);
    memset(c, 0, sizeof *c);
}

int
drover_member_add(drover_t *self,
                  uint64_t id,
                  const char *raft,
                  drover_error_t *err)
{
    if (id == 0 || !raft || !*raft) {
        return drv_set_err(err, &(dv_error_t){DV_EINVAL,
                                              "a member needs an id (> 0) "
                                              "and its raft HOST:PORT"});
    }
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_MEMBER_ADD, rid);
    dv_msgw_uint(w, "id", id);
    dv_msgw_str(w, "raft", raft);
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_OK,
                         drv_deadline_of(30000), err);
    drv_drop_reply(self);
    return rc;
}

int
drover_member_remove(drover_t *self, uint64_t id, drover_error_t *err)
{
    uint64_t rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_MEMBER_REMOVE, rid);
    dv_msgw_uint(w, "id", id);
    int rc = drv_request(self, w, rid, NULL, 0, DV_MSG_OK,
                         drv_deadline_of(30000), err);
    drv_drop_reply(self);
    return rc;
}
