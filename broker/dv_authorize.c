// dv_authorize — enforcing who may send what (dv_handlers.c), and audit.
//
// Owns: dv_authorize_client() (a client message against its key's roles and the
// owners of the queue, model or data set it names), a worker's key and
// queues (dv_authorize_worker), re-checks after a key reload, the audit
// records of client messages and audit_list.
//
// The model and its references: dv_broker_int.h and dv_broker.c.
#include "dv_authorize.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dv_audit.h"
#include "dv_auth.h"
#include "dv_batching.h"
#include "dv_broker_int.h"
#include "dv_commit.h"
#include "dv_endpoint.h"
#include "dv_log.h"
#include "dv_monitor.h"
#include "dv_owners.h"
#include "dv_proto.h"
#include "dv_records.h"
#include "dv_registry.h"
#include "dv_results.h"
#include "dv_sched.h"
#include "dv_spill.h"
#include "dv_store.h"
#include "dv_wire.h"
#include "dv_workers_msg.h"

// ------------------------------------------------------------ security
//
// With keys, every client message is checked against its key's roles
// (docs/SECURITY.md has the table) before it is handled; refusals, admin
// actions and changes to models and data sets go to the audit log.

void
dv_authorize_audit(dv_broker_t *self,
                   const char *key,
                   const char *action,
                   const char *object,
                   const char *outcome)
{
    dv_audit_add(self->audit, key, action, object, outcome);
    if (self->store) {
        dv_commit_arm(self);
    }
}

// The first version of name was stored by key owner: it owns the name
// from now on (nothing in plain mode, nothing if it has an owner).
void
dv_authorize_set_owner(dv_broker_t *self,
                       dv_owners_t *owners,
                       const char *name,
                       const char *owner)
{
    (void)self;
    if (!owner[0] || dv_owners_get(owners, name)) {
        return;
    }
    dv_error_t err = {0};
    if (dv_owners_set(owners, name, owner, &err) != 0) {
        dv_log(DV_LOG_ERROR, "broker",
               "%s: owner not recorded: %s (check free disk space and "
               "permissions under --data)",
               name, err.text);
    }
}

// The owner check again, when a version is stored. Ownership was checked
// when the push or train job came in, but the name's owner is set by
// whichever version is stored first: a version of another key that got
// there in between makes this one the loser (issue 13, point 9). 0 when
// key may add it (plain mode, a name nobody owns, its own, an admin key),
// else DV_EPERM naming the owner (audited as action: submit for a train
// job's model, model_push, dataset_push).
int
dv_authorize_store_refused(dv_broker_t *self,
                           const dv_owners_t *owners,
                           const char *action,
                           const char *name,
                           const char *key,
                           dv_error_t *err)
{
    const char *owner = dv_owners_get(owners, name);
    if (!key[0] || !owner || strcmp(owner, key) == 0) {
        return 0;
    }
    const dv_key_t *k = dv_auth_key_by_id(self->auth, key);
    if (k && (k->roles & DV_ROLE_ADMIN)) {
        return 0;
    }
    const char *what = owners == self->data_owners ? "data set" : "model";
    dv_errorf(err, DV_EPERM,
              "%s '%s' belongs to key '%s' (it stored the first version "
              "while this one was being made): only it or an admin may add "
              "versions; nothing was stored",
              what, name, owner);
    char outcome[DV_ERROR_TEXT_MAX + 16];
    snprintf(outcome, sizeof outcome, "refused: %s", err->text);
    dv_authorize_audit(self, key, action, name, outcome);
    dv_log(DV_LOG_WARN, "broker",
           "%s %s: version by key '%s' refused: %s (use the owner's key or an "
           "admin key)",
           what, name, key, err->text);
    return DV_EPERM;
}

void
dv_authorize_on_handshake_refused(const char *domain,
                                  const char *address,
                                  const char *key,
                                  const char *why,
                                  void *arg)
{
    char object[128], outcome[DV_ERROR_TEXT_MAX + 16];
    snprintf(object, sizeof object, "%s socket, from %s", domain, address);
    snprintf(outcome, sizeof outcome, "refused: %s", why);
    dv_authorize_audit(arg, key, "handshake", object, outcome);
    dv_monitor_refused(((dv_broker_t *)arg)->monitor, why);
}

// Can other machines reach endpoint? (Only ipc://, inproc:// and loopback
// tcp are private: dv_endpoint_exposed.)
bool
dv_authorize_exposed(const char *endpoint)
{
    return dv_endpoint_exposed(endpoint);
}

// Plain mode on an address other machines reach (--plain): say so, loudly.
void
dv_authorize_warn_if_exposed(const char *endpoint)
{
    if (!dv_authorize_exposed(endpoint)) {
        return;
    }
    for (int i = 0; i < 3; i++) {
        dv_log(DV_LOG_WARN, "broker",
               "%s: NO ENCRYPTION, NO AUTHENTICATION: anyone who reaches "
               "this address can submit jobs, read results and replace "
               "models. Run with --secret-key and --authorized-keys "
               "(docs/SECURITY.md)",
               endpoint);
    }
}

static void keys_reloaded(dv_broker_t *self);

void
dv_authorize_reload_done(
    dv_broker_t *self, const char *key, int rc, size_t n, const char *text)
{
    if (rc == 0) {
        keys_reloaded(self); // before anything goes out again
    }
    char outcome[DV_ERROR_TEXT_MAX + 32];
    if (rc == 0) {
        dv_log(DV_LOG_INFO, "broker", "authorized keys reloaded: %zu", n);
        snprintf(outcome, sizeof outcome, "ok: %zu keys", n);
    } else {
        dv_log(DV_LOG_ERROR, "broker",
               "authorized keys not reloaded (the old ones stay): %s; fix the "
               "keys folder, then reload again",
               text);
        snprintf(outcome, sizeof outcome, "error: %s: %s", dv_err_name(rc),
                 text);
    }
    dv_authorize_audit(self, key, "reload", "authorized keys", outcome);
}

// What a message acts on, for the audit log: its name/version/alias/queue/
// job fields, as far as it has them.
static void
message_object(const dv_msg_t *m, char *buf, size_t size)
{
    static const char *keys[] = {"name",  "model", "dataset",
                                 "alias", "queue", "consumer"};
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof keys / sizeof *keys && at < size; i++) {
        char v[160];
        dv_error_t e;
        if (dv_msg_has(m, keys[i]) &&
            dv_msg_str(m, keys[i], v, sizeof v, &e) == 0) {
            at += (size_t)snprintf(buf + at, size - at, "%s%s %s",
                                   at ? ", " : "", keys[i], v);
        }
    }
    static const char *nums[] = {"version", "job", "keep"};
    for (size_t i = 0; i < sizeof nums / sizeof *nums && at < size; i++) {
        uint64_t v;
        dv_error_t e;
        if (dv_msg_has(m, nums[i]) && dv_msg_uint(m, nums[i], &v, &e) == 0) {
            at += (size_t)snprintf(buf + at, size - at, "%s%s %llu",
                                   at ? ", " : "", nums[i],
                                   (unsigned long long)v);
        }
    }
}

// Refuse m for key id with the reason fmt..., audited. Returns DV_EPERM.
static int refuse(dv_broker_t *self,
                  const char *id,
                  const dv_msg_t *m,
                  dv_error_t *err,
                  const char *fmt,
                  ...) __attribute__((format(printf, 5, 6)));

static int
refuse(dv_broker_t *self,
       const char *id,
       const dv_msg_t *m,
       dv_error_t *err,
       const char *fmt,
       ...)
{
    char why[DV_ERROR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    char object[DV_ERROR_TEXT_MAX], outcome[DV_ERROR_TEXT_MAX + 16];
    message_object(m, object, sizeof object);
    snprintf(outcome, sizeof outcome, "refused: %s", why);
    dv_authorize_audit(self, id, dv_msg_name(dv_msg_type(m)), object, outcome);
    return dv_errorf(err, DV_EPERM, "%s", why);
}

// The queue a job is in (live, spilled or finished), or NULL; *who the key
// that submitted it (0: unknown: plain mode, or from before a restart).
static const char *
job_queue_of(dv_broker_t *self, uint64_t id, uint16_t *who)
{
    *who = 0;
    const job_t *j = dv_broker_job_find(self, id);
    if (j) {
        *who = j->who;
        return j->queue;
    }
    const kept_t *k = dv_results_kept_find(self, id);
    if (k && k->qidx) {
        *who = k->who;
        return self->qbytes[k->qidx - 1].name;
    }
    return dv_spill_owner(self, id, who); // queued in the store only
}

// May key k (id) change name in owners? Admins may; else only its owner,
// or anyone for a name nobody owns yet.
static bool
owns(const dv_owners_t *owners, const dv_key_t *k, const char *name)
{
    const char *owner = dv_owners_get(owners, name);
    return (k->roles & DV_ROLE_ADMIN) || !owner || strcmp(owner, k->id) == 0;
}

// Read access to stored data sets (issue 13, point 13): a data set is read
// (trained or evaluated on, shown by dataset_get) by its owner, the keys
// it is shared with (dataset_share) and admins; one nobody owns by every
// key. DV_EPERM (audited) when m (a dataset_get, or a submit naming
// `dataset` or `eval_dataset`) reads one key k may not.
static int
dataset_reads_refused(dv_broker_t *self,
                      const dv_key_t *k,
                      const dv_msg_t *m,
                      dv_error_t *err)
{
    static const char *fields[] = {"name", "dataset", "eval_dataset"};
    bool get = dv_msg_type(m) == DV_MSG_DATASET_GET;
    for (size_t i = get ? 0 : 1; i < (get ? 1u : 3u); i++) {
        char ref[2 * DV_MAX_WIRE_NAME], name[DV_MAX_WIRE_NAME + 1];
        uint32_t version = 0;
        dv_error_t ignore;
        if (!dv_msg_has(m, fields[i]) ||
            dv_msg_str(m, fields[i], ref, sizeof ref, &ignore) != 0 ||
            dv_model_ref_parse(ref, name, &version, &ignore) != 0 ||
            dv_owners_may_read(self->data_owners, name, k->id)) {
            continue; // a malformed one is the handler's to refuse
        }
        return refuse(self, k->id, m, err,
                      "data set '%s' belongs to key '%s' and is not shared "
                      "with key '%s': its owner may share it (drover "
                      "datasets share %s --with %s)",
                      name, dv_owners_get(self->data_owners, name), k->id, name,
                      k->id);
    }
    return 0;
}

// ACTS_ON_JOB: the queue of the job m names (NULL: unknown, the handler
// says so) into *queue. A producer reads its own jobs; a consumer (or
// admin) its queues'.
static int
job_read_refused(dv_broker_t *self,
                 const dv_key_t *k,
                 const dv_msg_t *m,
                 const char **queue,
                 dv_error_t *err)
{
    uint64_t job = 0;
    uint16_t owner = 0;
    dv_error_t ignore;
    if (dv_msg_uint(m, "job", &job, &ignore) == 0) {
        *queue = job_queue_of(self, job, &owner);
    }
    if (owner && !(k->roles & (DV_ROLE_CONSUMER | DV_ROLE_ADMIN)) &&
        strcmp(self->whos[owner].id, k->id) != 0) {
        return refuse(self, k->id, m, err,
                      "job %llu was submitted by key '%s': a producer "
                      "reads only its own jobs",
                      (unsigned long long)job, self->whos[owner].id);
    }
    return 0;
}

// ACTS_ON_MODEL: the owner (a producer whose train jobs made it) or an
// admin; the refusal says which of the two it lacks.
static int
model_change_refused(dv_broker_t *self,
                     const dv_key_t *k,
                     const dv_msg_t *m,
                     dv_error_t *err)
{
    char name[DV_MAX_WIRE_NAME + 1] = "";
    dv_error_t ignore;
    if (!(k->roles & DV_ROLE_PRODUCER) || (k->roles & DV_ROLE_ADMIN) ||
        dv_msg_str(m, "name", name, sizeof name, &ignore) != 0 ||
        (dv_owners_get(self->model_owners, name) &&
         owns(self->model_owners, k, name))) {
        return 0;
    }
    const char *owner = dv_owners_get(self->model_owners, name);
    if (owner) {
        return refuse(self, k->id, m, err,
                      "model '%s' belongs to key '%s': only its owner or an "
                      "admin may delete it",
                      name, owner);
    }
    return refuse(self, k->id, m, err,
                  "model '%s' has no owner key (pushed by an admin, or not "
                  "there): only an admin may delete it",
                  name);
}

// What row says m acts on, checked against k: the queue to check next
// into qbuf (size DV_MAX_WIRE_NAME + 1) and *queue (NULL: none); the job,
// data set or model it changes refused here when it is not k's.
static int
acts_on_refused(dv_broker_t *self,
                const dv_key_t *k,
                const dv_msg_t *m,
                const msg_row_t *row,
                char *qbuf,
                const char **queue,
                dv_error_t *err)
{
    char name[DV_MAX_WIRE_NAME + 1] = "";
    dv_error_t ignore;
    *queue = NULL;
    switch (row->acts_on) {
    case ACTS_ON_NOTHING:
        return 0;
    case ACTS_ON_QUEUE:
        if (dv_msg_str(m, "queue", qbuf, DV_MAX_WIRE_NAME + 1, &ignore) == 0) {
            *queue = qbuf;
        }
        return 0;
    case ACTS_ON_JOB:
        return job_read_refused(self, k, m, queue, err);
    case ACTS_ON_QUEUES:
        if (dv_msg_has(m, "queue") &&
            dv_msg_str(m, "queue", qbuf, DV_MAX_WIRE_NAME + 1, &ignore) == 0) {
            *queue = qbuf;
        } else if (!k->all_queues && !(k->roles & DV_ROLE_ADMIN)) {
            return refuse(self, k->id, m, err,
                          "key '%s' may list only its queues: name one "
                          "(--queue)",
                          k->id);
        }
        return 0;
    case ACTS_ON_DATASET:
        if (dv_msg_str(m, "name", name, sizeof name, &ignore) == 0 &&
            !owns(self->data_owners, k, name)) {
            return refuse(self, k->id, m, err,
                          "data set '%s' belongs to key '%s': only it or an "
                          "admin may change it",
                          name, dv_owners_get(self->data_owners, name));
        }
        return 0;
    case ACTS_ON_MODEL:
        return model_change_refused(self, k, m, err);
    }
    return 0;
}

// The row's owner checks (CHECK_*), in order, for a key that is not an
// admin's; qbuf: the queue m names.
static int
checks_refused(dv_broker_t *self,
               const dv_key_t *k,
               const dv_msg_t *m,
               const msg_row_t *row,
               const char *qbuf,
               dv_error_t *err)
{
    char name[DV_MAX_WIRE_NAME + 1] = "";
    dv_error_t ignore;
    if ((row->checks & CHECK_CONSUMER) &&
        dv_msg_str(m, "consumer", name, sizeof name, &ignore) == 0) {
        // A consumer belongs to the key that first followed it.
        const cursor_t *c = dv_results_cursor_named(self, qbuf, name);
        if (c && c->owner[0] && strcmp(c->owner, k->id) != 0) {
            return refuse(self, k->id, m, err,
                          "consumer '%s' on queue '%s' belongs to key '%s' "
                          "(it followed it first): only it or an admin may "
                          "follow, ack, unfollow or forget it",
                          name, qbuf, c->owner);
        }
    }
    if (row->checks & CHECK_DATASET_READS) {
        int rc = dataset_reads_refused(self, k, m, err);
        if (rc) {
            return rc;
        }
    }
    if (row->checks & CHECK_TRAIN_MODEL) { // a train job adds a version
        char kind[16] = "";
        if (dv_msg_str(m, "kind", kind, sizeof kind, &ignore) == 0 &&
            strcmp(kind, "train") == 0 &&
            dv_msg_str(m, "model", name, sizeof name, &ignore) == 0 &&
            !owns(self->model_owners, k, name)) {
            return refuse(self, k->id, m, err,
                          "model '%s' belongs to key '%s': only it or an "
                          "admin may add versions",
                          name, dv_owners_get(self->model_owners, name));
        }
    }
    return 0;
}

// Check client message m against its key. *who gets the key (NULL in
// plain mode). In order: the key is still authorized; what the row says
// the message acts on is the key's; then (not for admins) the roles, the
// queue and the row's owner checks.
int
dv_authorize_client(dv_broker_t *self,
                    dv_wire_msg_t *in,
                    const dv_msg_t *m,
                    const msg_row_t *row,
                    const dv_key_t **who,
                    dv_error_t *err)
{
    *who = NULL;
    if (!dv_auth_secure(self->auth)) {
        return 0;
    }
    const char *id = "";
    const dv_key_t *k = dv_auth_message_key(self->auth, &in->header, &id);
    if (!k) {
        return refuse(self, id, m, err,
                      "key '%s' is no longer authorized (revoked or "
                      "removed from the authorized keys)",
                      id);
    }
    *who = k;
    if (!row || row->roles == ANY_KEY) {
        return 0; // reading: hello, ping, status, workers, models, data sets
    } // (a type clients may not send: dv_broker_serve_request says so)
    unsigned need = row->roles; // any of (admin always passes; 0: admin only)
    const char *queue = NULL;   // the queue it acts on, to check
    char qbuf[DV_MAX_WIRE_NAME + 1] = "";
    int rc = acts_on_refused(self, k, m, row, qbuf, &queue, err);
    if (rc || (k->roles & DV_ROLE_ADMIN)) {
        return rc;
    }
    char roles[64], takes[64]; // two buffers: both go into one format
    if (!(k->roles & need)) {
        return refuse(
            self, k->id, m, err, "key '%s' (%s) may not %s: that takes %s",
            k->id, dv_roles_format(k->roles, roles, sizeof roles),
            dv_msg_name(dv_msg_type(m)),
            need ? dv_roles_format(need | DV_ROLE_ADMIN, takes, sizeof takes)
                 : "admin");
    }
    if (queue && !dv_key_allows_queue(k, queue)) {
        return refuse(self, k->id, m, err,
                      "key '%s' may not use queue '%s' (its queues are in "
                      "its .pub file)",
                      k->id, queue);
    }
    return checks_refused(self, k, m, row, qbuf, err);
}

// May key k (id; NULL: not in the keyring) serve as a worker on queues (n
// 0: every queue its key allows)? If not, why says so, naming the role or
// queue as docs/SECURITY.md's roles table does.
static bool
worker_allowed(const dv_key_t *k,
               const char *id,
               char *const *queues,
               size_t n,
               char *why,
               size_t size)
{
    char roles[DV_ROLES_TEXT_MAX];
    if (!k) {
        snprintf(why, size,
                 "key '%s' is no longer authorized (revoked or removed from "
                 "the authorized keys)",
                 id);
        return false;
    }
    if (!(k->roles & (DV_ROLE_WORKER | DV_ROLE_ADMIN))) {
        snprintf(why, size,
                 "key '%s' (%s) may not take jobs: that takes worker,admin", id,
                 dv_roles_format(k->roles, roles, sizeof roles));
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!dv_key_allows_queue(k, queues[i])) {
            snprintf(why, size,
                     "key '%s' may not serve queue '%s' (its queues are in "
                     "its .pub file)",
                     id, queues[i]);
            return false;
        }
    }
    if (n == 0 && !k->all_queues && !(k->roles & DV_ROLE_ADMIN) &&
        k->n_queues == 0) {
        snprintf(why, size, "key '%s' allows no queue", id);
        return false;
    }
    return true;
}

// The queues w gets jobs from: those it asked for (all allowed by its key:
// worker_allowed), else every queue its key allows.
void
dv_authorize_worker_serve(dv_broker_t *self, const worker_t *w)
{
    const dv_key_t *k = dv_auth_key_by_id(self->auth, w->key);
    if (w->n_queues || !k || k->all_queues || (k->roles & DV_ROLE_ADMIN)) {
        dv_sched_worker_queues(self->sched, w->handle,
                               (const char *const *)w->queues, w->n_queues);
    } else {
        dv_sched_worker_queues(self->sched, w->handle,
                               (const char *const *)k->queues, k->n_queues);
    }
}

// Check a worker message against its key's current roles and queues (a
// reload may have changed them since the handshake): DV_EPERM with why, and
// a registered worker that may no longer work is dropped (dv_workers_msg_evict;
// *w becomes NULL). asked: a register's queues. Audited when a worker is
// dropped or a register refused, not for each heartbeat of a dropped one.
int
dv_authorize_worker(dv_broker_t *self,
                    dv_wire_msg_t *in,
                    const dv_msg_t *m,
                    worker_t **w,
                    char *const *asked,
                    size_t n_asked,
                    dv_error_t *err)
{
    if (!dv_auth_secure(self->auth)) {
        return 0;
    }
    const char *id = "";
    const dv_key_t *k = dv_auth_message_key(self->auth, &in->header, &id);
    bool reg = dv_msg_type(m) == DV_MSG_REGISTER;
    char why[DV_ERROR_TEXT_MAX];
    if (worker_allowed(k, id, reg ? asked : (*w ? (*w)->queues : NULL),
                       reg ? n_asked : (*w ? (*w)->n_queues : 0), why,
                       sizeof why)) {
        return 0;
    }
    if (*w || reg) {
        char object[DV_MAX_WIRE_NAME + 16], outcome[DV_ERROR_TEXT_MAX + 16];
        char name[DV_MAX_WIRE_NAME + 1] = "";
        dv_error_t ignore;
        if (*w) {
            snprintf(name, sizeof name, "%s", (*w)->name);
        } else if (dv_msg_str(m, "worker", name, sizeof name, &ignore) != 0) {
            snprintf(name, sizeof name, "?");
        }
        snprintf(object, sizeof object, "worker %s", name);
        snprintf(outcome, sizeof outcome, "refused: %s", why);
        dv_authorize_audit(self, id, dv_msg_name(dv_msg_type(m)), object,
                           outcome);
    }
    if (*w) {
        dv_workers_msg_evict(self, *w, why);
        *w = NULL;
    }
    return dv_errorf(err, DV_EPERM, "%s", why);
}

// After a reload: every registered worker is checked against its key's new
// roles and queues; one that may no longer work is dropped and its jobs
// queued again at once, so no job is sent to a revoked key after the
// reload returns. Workers that asked for no queues follow their key's list.
static void
workers_reauthorize(dv_broker_t *self)
{
    size_t dropped = 0;
    for (size_t i = 0; i < self->n_workers;) {
        worker_t *w = &self->workers[i];
        const dv_key_t *k = dv_auth_key_by_id(self->auth, w->key);
        char why[DV_ERROR_TEXT_MAX];
        if (!dv_auth_secure(self->auth) ||
            worker_allowed(k, w->key, w->queues, w->n_queues, why,
                           sizeof why)) {
            dv_authorize_worker_serve(self, w);
            i++;
            continue;
        }
        char object[DV_MAX_WIRE_NAME + 16], outcome[DV_ERROR_TEXT_MAX + 16];
        snprintf(object, sizeof object, "worker %s", w->name);
        snprintf(outcome, sizeof outcome, "refused: %s", why);
        dv_authorize_audit(self, w->key, "reload", object, outcome);
        dv_workers_msg_evict(self, w, why); // moves the last into i
        dropped++;
    }
    if (self->n_workers || dropped) {
        dv_batching_dispatch(
            self); // dropped workers' jobs, and queues newly allowed
    }
}

// After a reload: a result stream followed by a key that may no longer
// follow it (revoked, consumer role or the queue taken away) stops at once:
// nothing more is pushed to that connection (its position stays stored).
// Pushes are the broker's own messages, so no request of the follower's
// would be refused in time otherwise.
static void
followers_reauthorize(dv_broker_t *self)
{
    for (size_t i = 0; i < self->n_cursors; i++) {
        cursor_t *c = &self->cursors[i];
        if (!c->route_len || !dv_auth_secure(self->auth)) {
            continue;
        }
        const char *queue = self->qbytes[c->qidx - 1].name;
        const dv_key_t *k = dv_auth_key_by_id(self->auth, c->follower);
        if (k && (k->roles & (DV_ROLE_CONSUMER | DV_ROLE_ADMIN)) &&
            dv_key_allows_queue(k, queue)) {
            continue;
        }
        char object[2 * DV_MAX_WIRE_NAME + 32];
        snprintf(object, sizeof object, "queue %s, consumer %s", queue,
                 c->consumer);
        dv_authorize_audit(self, c->follower, "reload", object,
                           "refused: the key may no longer follow this stream");
        dv_log(DV_LOG_WARN, "broker",
               "stream %s/%s: key '%s' may no longer follow it: stopped (give "
               "it the consumer role for the queue to follow again)",
               queue, c->consumer, c->follower);
        dv_results_cursor_stop(self, c);
    }
}

static void
keys_reloaded(dv_broker_t *self)
{
    workers_reauthorize(self);
    followers_reauthorize(self);
}

// After a client message was handled: admin actions and changes to models
// and data sets go to the audit log, with their outcome.
void
dv_authorize_audit_message(dv_broker_t *self,
                           const msg_row_t *row,
                           const char *id,
                           const dv_msg_t *m,
                           int rc,
                           const dv_error_t *err)
{
    if (!row || !row->audited) {
        return;
    }
    char object[DV_ERROR_TEXT_MAX], outcome[DV_ERROR_TEXT_MAX + 32];
    message_object(m, object, sizeof object);
    if (rc) {
        snprintf(outcome, sizeof outcome, "error: %s: %s", dv_err_name(rc),
                 err->text);
    } else {
        snprintf(outcome, sizeof outcome, "ok");
    }
    dv_authorize_audit(self, id, dv_msg_name(dv_msg_type(m)), object, outcome);
}

// audit_list {since_ms}: the entries held in memory from then on.
int
dv_authorize_on_audit_list(dv_broker_t *self,
                           const void *route,
                           size_t route_len,
                           const dv_msg_t *m,
                           uint64_t rid,
                           dv_error_t *err)
{
    uint64_t since = 0;
    int rc = dv_msg_uint_or(m, "since_ms", 0, &since, err);
    if (rc) {
        return rc;
    }
    size_t first = 0, n = 0;
    dv_audit_since(self->audit, since, &first, &n);
    // One header holds at most ~64 KiB: the newest entries that fit.
    size_t cap = 200;
    if (n > cap) {
        first += n - cap;
        n = cap;
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_AUDIT, rid);
    dv_msgw_uint(w, "more", first > 0 && since > 0 ? 1 : 0);
    dv_msgw_key(w, "entries");
    dv_msgw_v_array(w, n);
    for (size_t i = 0; i < n; i++) {
        dv_audit_entry_t e;
        dv_audit_at(self->audit, first + i, &e);
        dv_msgw_v_map(w, 6);
        dv_msgw_v_str(w, "seq");
        dv_msgw_v_uint(w, e.seq);
        dv_msgw_v_str(w, "unix_ms");
        dv_msgw_v_uint(w, e.unix_ms);
        dv_msgw_v_str(w, "key");
        dv_msgw_v_str(w, e.key);
        dv_msgw_v_str(w, "action");
        dv_msgw_v_str(w, e.action);
        dv_msgw_v_str(w, "object");
        dv_msgw_v_str(w, e.object);
        dv_msgw_v_str(w, "outcome");
        dv_msgw_v_str(w, e.outcome);
    }
    dv_broker_client_reply(self, route, route_len, w);
    return 0;
}
