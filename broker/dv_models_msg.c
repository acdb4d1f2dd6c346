// dv_models_msg — the model catalog's client handlers.
//
// Owns: model_push (stored on the thread pool, in version order), model_gc,
// _alias, _config, _get, _list, _rm; the alias switches that wait for
// workers to load a new version (self->switches); which version a submit
// serves (dv_models_msg_resolve_serving).
//
// The model and its references: dv_broker_int.h and dv_broker.c.
#include "dv_models_msg.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "dv_auth.h"
#include "dv_authorize.h"
#include "dv_broker_int.h"
#include "dv_catalog_msg.h"
#include "dv_commit.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_msgpack.h"
#include "dv_owners.h"
#include "dv_proto.h"
#include "dv_records.h"
#include "dv_registry.h"
#include "dv_sched.h"
#include "dv_store.h"
#include "dv_wire.h"
#include "dv_workers_msg.h"

// dv_registry_resolve, except that an alias being switched still names
// the version that serves (see switch_t).
const dv_model_info_t *
dv_models_msg_resolve_serving(dv_broker_t *self,
                              const char *ref,
                              dv_error_t *err)
{
    const char *at = strchr(ref, '@');
    size_t nl = at ? (size_t)(at - ref) : strlen(ref);
    const char *alias = at ? at + 1 : "";
    for (size_t i = 0; i < self->n_switches; i++) {
        const switch_t *sw = &self->switches[i];
        if (strlen(sw->name) == nl && strncmp(ref, sw->name, nl) == 0 &&
            strcmp(alias, sw->alias) == 0) {
            const dv_model_info_t *old =
                dv_registry_get(self->registry, sw->name, sw->from);
            if (old) {
                return old;
            }
        }
    }
    return dv_registry_resolve(self->registry, ref, err);
}

static bool
worker_holds(const worker_t *w, const char *key)
{
    for (size_t i = 0; i < w->n_models; i++) {
        if (strcmp(w->models[i], key) == 0) {
            return true;
        }
    }
    return false;
}

// End the switches whose new version every worker holding the old one has
// loaded (or that waited long enough).
void
dv_models_msg_switches_check(dv_broker_t *self)
{
    uint64_t now = uv_now(&self->loop);
    for (size_t i = 0; i < self->n_switches;) {
        const switch_t *sw = &self->switches[i];
        char from[DV_MAX_WIRE_NAME + 16], to[DV_MAX_WIRE_NAME + 16];
        snprintf(from, sizeof from, "%s@%u", sw->name, sw->from);
        snprintf(to, sizeof to, "%s@%u", sw->name, sw->to);
        bool ready = true;
        for (size_t k = 0; k < self->n_workers && ready; k++) {
            const worker_t *w = &self->workers[k];
            ready =
                w->draining || !worker_holds(w, from) || worker_holds(w, to);
        }
        bool late = now - sw->since_ms >= SWITCH_WAIT_MS;
        const dv_model_info_t *latest =
            sw->alias[0] ? NULL : dv_registry_get(self->registry, sw->name, 0);
        uint32_t points =
            sw->alias[0]
                ? dv_registry_alias_version(self->registry, sw->name, sw->alias)
            : latest ? latest->version
                     : 0;
        if (ready || late || points != sw->to) {
            if (late && !ready) {
                dv_log(DV_LOG_WARN, "broker",
                       "%s@%s: workers have not loaded version %u in "
                       "%d s; switching anyway (see the workers' logs)",
                       sw->name, sw->alias[0] ? sw->alias : "latest", sw->to,
                       SWITCH_WAIT_MS / 1000);
            }
            self->switches[i] = self->switches[--self->n_switches];
        } else {
            i++;
        }
    }
}

// What name@alias resolves to moves from version `previous` to `version`
// (alias "": a new latest version): workers holding the old one are told
// to preload the new one, and until they hold it submits get the old one.
// Returns the version that serves now (an unfinished earlier move's).
static uint32_t
switch_begin(dv_broker_t *self,
             const char *name,
             const char *alias,
             uint32_t previous,
             uint32_t version)
{
    char from[DV_MAX_WIRE_NAME + 16];
    snprintf(from, sizeof from, "%s@%u", name, previous);
    const dv_model_info_t *to = dv_registry_get(self->registry, name, version);
    for (size_t k = 0; to && k < self->n_workers; k++) {
        worker_t *wk = &self->workers[k];
        if (!wk->draining && worker_holds(wk, from)) {
            dv_msgw_t *p = dv_msgw_new(DV_MSG_PRELOAD, 0);
            dv_msgw_str(p, "name", name);
            dv_msgw_uint(p, "version", version);
            dv_msgw_bin(p, "sha256", to->sha256, sizeof to->sha256);
            dv_msgw_uint(p, "bytes", to->bytes); // 1.9
            size_t len = 0;
            const uint8_t *h = dv_msgw_bytes(p, &len);
            dv_wire_send(self->workers_sock, wk->route, wk->route_len, h, len,
                         NULL, 0);
            dv_msgw_destroy(&p);
        }
    }
    for (size_t i = 0; i < self->n_switches; i++) { // a newer move wins
        if (strcmp(self->switches[i].name, name) == 0 &&
            strcmp(self->switches[i].alias, alias) == 0) {
            previous = self->switches[i].from; // still what serves
            self->switches[i] = self->switches[--self->n_switches];
            break;
        }
    }
    self->switches =
        dv_realloc(self->switches, (self->n_switches + 1) * sizeof(switch_t));
    switch_t *sw = &self->switches[self->n_switches++];
    memset(sw, 0, sizeof *sw);
    snprintf(sw->name, sizeof sw->name, "%s", name);
    snprintf(sw->alias, sizeof sw->alias, "%s", alias);
    sw->from = previous;
    sw->to = version;
    sw->since_ms = uv_now(&self->loop);
    dv_models_msg_switches_check(self); // nobody held the old version: at once
    return previous;
}

// A new version of name was stored: if an older one was the latest, bare
// NAME moves to it the same way an alias does.
void
dv_models_msg_latest_moved(dv_broker_t *self, const dv_model_info_t *info)
{
    const dv_model_info_t *prev = NULL;
    size_t n = 0;
    const dv_model_info_t *all = dv_registry_list(self->registry, &n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(all[i].name, info->name) == 0 &&
            all[i].version < info->version &&
            (!prev || all[i].version > prev->version)) {
            prev = &all[i];
        }
    }
    const dv_model_info_t *latest =
        dv_registry_get(self->registry, info->name, 0);
    if (prev && latest && latest->version == info->version) {
        switch_begin(self, info->name, "", prev->version, info->version);
    }
}

// A model record's own fields, in the order replies carry them; then come
// its aliases and config (MODEL_FIELDS in all), and lineage in a `model`.
static const dv_catalog_field_t MODEL_INFO_FIELDS[] = {
    {"name", DV_CATALOG_FIELD_STR, offsetof(dv_model_info_t, name)},
    {"version", DV_CATALOG_FIELD_U32, offsetof(dv_model_info_t, version)},
    {"sha256", DV_CATALOG_FIELD_SHA256, offsetof(dv_model_info_t, sha256)},
    {"bytes", DV_CATALOG_FIELD_U64, offsetof(dv_model_info_t, bytes)},
    {"task", DV_CATALOG_FIELD_STR, offsetof(dv_model_info_t, task)},
    {"algo", DV_CATALOG_FIELD_STR, offsetof(dv_model_info_t, algo)},
    {"features", DV_CATALOG_FIELD_U32, offsetof(dv_model_info_t, features)},
    {"outputs", DV_CATALOG_FIELD_U32, offsetof(dv_model_info_t, outputs)},
    {"created_us", DV_CATALOG_FIELD_U64, offsetof(dv_model_info_t, created_us)},
};
#define N_MODEL_INFO_FIELDS                                                    \
    (sizeof MODEL_INFO_FIELDS / sizeof MODEL_INFO_FIELDS[0])
#define MODEL_FIELDS (N_MODEL_INFO_FIELDS + 2)

static void
write_model_info(dv_msgw_t *w,
                 const dv_registry_t *reg,
                 const dv_model_info_t *r,
                 bool nested)
{
    dv_catalog_msg_fields(w, MODEL_INFO_FIELDS, N_MODEL_INFO_FIELDS, r, nested);
    const char *aliases[64];
    size_t n = dv_registry_aliases_of(reg, r->name, r->version, aliases, 64);
    dv_catalog_msg_key(w, "aliases", nested);
    dv_msgw_v_array(w, n);
    for (size_t a = 0; a < n; a++) {
        dv_msgw_v_str(w, aliases[a]);
    }
    dv_model_config_t cfg = dv_registry_config(reg, r->name); // 1.3
    dv_catalog_msg_key(w, "config", nested);
    dv_msgw_v_map(w, 2);
    dv_msgw_v_str(w, "max_batch_rows");
    dv_msgw_v_uint(w, cfg.max_batch_rows);
    dv_msgw_v_str(w, "max_delay_us");
    dv_msgw_v_uint(w, cfg.max_delay_us);
    if (!nested && r->lineage) {
        dv_msgw_key(w, "lineage");
        dv_msgw_v_raw(w, r->lineage, r->lineage_len);
    }
}

static void
work_push(dv_work_t *req)
{
    push_t *p = req->data;
    p->rc = dv_registry_prepare(p->dir, p->name, p->version, p->image, p->len,
                                &p->info, &p->err);
    if (p->rc == 0 && p->lineage) {
        dv_error_t e = {0};
        if (dv_registry_prepare_lineage(p->dir, &p->info, p->lineage,
                                        p->lineage_len, &e) != 0) {
            // The model is what matters: keep it, say what was lost.
            dv_log(DV_LOG_WARN, "broker",
                   "model %s@%u: lineage not kept: %s (the model is stored; "
                   "check free space under --data)",
                   p->name, p->version, e.text);
        }
    }
}

static void push_finish(dv_broker_t *self, push_t *p);

// Prepared versions of a name are stored in the order they were reserved,
// whatever order the pool finished them in: a version waits (parked) while
// a lower one of its name is still being prepared. So the first version of
// a new name is the first stored, and its key the owner (two trainers
// racing for a name: the job that finished first wins, as its version
// number says), and versions never appear out of order.
static void
after_push(dv_work_t *req, int status)
{
    push_t *p = req->data;
    dv_broker_t *self = p->broker;
    if (status != 0 && p->rc == 0) {
        p->rc = dv_errorf(&p->err, DV_ECANCELED, "model push cancelled");
        free(p->info.schema);
        free(p->info.lineage);
    }
    if (dv_registry_reserved_below(self->registry, p->name, p->version)) {
        p->next_parked = self->parked;
        self->parked = p;
        return;
    }
    char name[DV_MAX_WIRE_NAME + 1];
    snprintf(name, sizeof name, "%s", p->name);
    push_finish(self, p); // frees p
    // Its reservation is gone: the parked versions of its name it held
    // up go now, lowest first (each may release the next).
    for (bool again = true; again;) {
        again = false;
        for (push_t **q = &self->parked; *q; q = &(*q)->next_parked) {
            push_t *w = *q;
            if (strcmp(w->name, name) == 0 &&
                !dv_registry_reserved_below(self->registry, w->name,
                                            w->version)) {
                *q = w->next_parked;
                push_finish(self, w);
                again = true;
                break;
            }
        }
    }
}

// A version that takes other inputs or gives other outputs than the one
// its clients use (to): refused unless the request says schema_change, so
// a push of the wrong file under a busy name cannot break every unpinned
// client (DV_ESHAPE on each request). Returns 0 or DV_ESHAPE naming both.
static int
schema_same(const dv_model_info_t *from,
            const dv_model_info_t *to,
            const char *how,
            dv_error_t *err)
{
    if (!from || !to ||
        (from->features == to->features && from->outputs == to->outputs &&
         strcmp(from->task, to->task) == 0)) {
        return 0;
    }
    return dv_errorf(err, DV_ESHAPE,
                     "%s: %s@%u takes %u features and gives %u outputs (%s); "
                     "this version takes %u and gives %u (%s): its clients "
                     "would fail. Use another name, or say so with "
                     "--schema-change (schema_change: true)",
                     how, from->name, from->version, from->features,
                     from->outputs, from->task, to->features, to->outputs,
                     to->task);
}

static void
push_finish(dv_broker_t *self, push_t *p)
{
    if (p->rc == 0 && !p->schema_change &&
        (p->rc =
             schema_same(dv_registry_get(self->registry, p->name, 0), &p->info,
                         p->job ? "train" : "model_push", &p->err))) {
        dv_registry_discard(self->registry, &p->info);
    }
    if (p->rc == 0 &&
        (p->rc = dv_authorize_store_refused(self, self->model_owners,
                                            p->job ? "submit" : "model_push",
                                            p->name, p->owner, &p->err))) {
        dv_registry_discard(self->registry, &p->info);
    }
    if (p->job) {
        dv_workers_msg_train_registered(self, p);
    } else if (p->rc) {
        dv_registry_release(self->registry, p->name, p->version);
        dv_broker_client_error(self, p->route, p->route_len, p->rid, 0, p->rc,
                               p->err.text);
        free(p->image);
    } else {
        const dv_model_info_t *info =
            dv_registry_commit(self->registry, &p->info, p->image);
        dv_log(DV_LOG_INFO, "broker", "model %s@%u stored (%llu bytes, %s %s)",
               info->name, info->version, (unsigned long long)info->bytes,
               info->task, info->algo);
        dv_models_msg_latest_moved(self, info);
        dv_authorize_set_owner(self, self->model_owners, info->name, p->owner);
        dv_msgw_t *w = dv_msgw_new(DV_MSG_MODEL, p->rid);
        write_model_info(w, self->registry, info, false);
        dv_commit_reply_stored(self, p->route, p->route_len, p->rid, w);
    }
    free(p->lineage);
    free(p->dir);
    free(p);
}

int
dv_models_msg_push_queue(dv_broker_t *self,
                         push_t *p,
                         const dv_frame_t *file,
                         dv_error_t *err)
{
    const char *dir = dv_registry_dir(self->registry);
    p->broker = self;
    p->dir = dir ? dv_strdup(dir) : NULL;
    p->image = dv_malloc(file->len ? file->len : 1);
    memcpy(p->image, file->data, file->len);
    p->len = file->len;
    p->work.data = p;
    if (dv_pool_queue(self->pool, &p->work, work_push, after_push) == 0) {
        return 0;
    }
    const char *what = p->job ? "model's registration" : "model push";
    dv_registry_release(self->registry, p->name, p->version);
    free(p->dir);
    free(p->image);
    free(p->lineage);
    free(p);
    return dv_errorf(err, DV_EIO, "cannot queue the %s", what);
}

// A pushed file's lineage: who pushed it and who signed it (NULL when
// neither is known: plain mode, unsigned).
static uint8_t *
push_lineage(const char *owner,
             const char *signer,
             const dv_msg_t *m,
             size_t *len)
{
    *len = 0;
    if (!owner[0] && !signer[0]) {
        return NULL;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, signer[0] ? 4 : 2);
    dv_msgpack_pack_str(&pk, "pushed_by");
    dv_msgpack_pack_str(&pk, owner);
    dv_msgpack_pack_str(&pk, "pushed_unix_ms");
    msgpack_pack_uint64(&pk, dv_broker_unix_ms_now());
    if (signer[0]) {
        const msgpack_object *sig = dv_msg_get(m, "signature");
        dv_msgpack_pack_str(&pk, "signed_by");
        dv_msgpack_pack_str(&pk, signer);
        dv_msgpack_pack_str(&pk, "signature");
        msgpack_pack_bin(&pk, sig->via.bin.size);
        msgpack_pack_bin_body(&pk, sig->via.bin.ptr, sig->via.bin.size);
    }
    *len = sb.size;
    return (uint8_t *)msgpack_sbuffer_release(&sb);
}

int
dv_models_msg_on_push(dv_broker_t *self,
                      const void *route,
                      size_t route_len,
                      const dv_msg_t *m,
                      uint64_t rid,
                      dv_error_t *err)
{
    char name[DV_MAX_WIRE_NAME + 1];
    const uint8_t *sum = NULL;
    size_t sum_len = 0;
    int rc;
    if ((rc = dv_msg_str(m, "name", name, sizeof name, err)) != 0 ||
        (rc = dv_msg_bin(m, "sha256", &sum, &sum_len, DV_SHA256_BYTES, err)) !=
            0) {
        return rc;
    }
    const dv_frame_t *file = dv_msg_frame(m, 1);
    if (!file) {
        return dv_errorf(err, DV_EFORMAT,
                         "model_push: the .drvm file goes in frame 1");
    }
    if (route_len > ROUTE_MAX) {
        return dv_errorf(err, DV_EINVAL, "routing id too long");
    }
    uint8_t got[DV_SHA256_BYTES];
    dv_sha256(file->data, file->len, got);
    if (memcmp(got, sum, sizeof got) != 0) {
        return dv_errorf(err, DV_ECHECKSUM,
                         "model_push: the file's SHA-256 does not match "
                         "'sha256' (damaged in transit?)");
    }
    // A signature (Ed25519 over "drover-model-v1:" + the SHA-256) must be
    // an authorized admin's and hold; --require-signed wants one.
    char signer[DV_KEY_ID_MAX + 1] = "";
    if (dv_msg_has(m, "signature")) {
        const uint8_t *sig = NULL;
        size_t sig_len = 0;
        if ((rc = dv_msg_bin(m, "signature", &sig, &sig_len, 64, err)) != 0 ||
            (rc = dv_msg_str(m, "signer", signer, sizeof signer, err)) != 0) {
            return rc;
        }
        const dv_key_t *k = dv_auth_key_by_id(self->auth, signer);
        uint8_t msg[16 + DV_SHA256_BYTES];
        memcpy(msg, "drover-model-v1:", 16);
        memcpy(msg + 16, got, sizeof got);
        if (!k || !(k->roles & DV_ROLE_ADMIN)) {
            return dv_errorf(err, DV_EPERM,
                             "model_push: signer '%s' is not an authorized "
                             "admin key",
                             signer);
        }
        if (sig_len != 64 || !dv_key_verify(k, msg, sizeof msg, sig)) {
            return dv_errorf(err, DV_EPERM,
                             "model_push: the signature by '%s' does not "
                             "verify (the file changed after signing, or "
                             "another key signed it)",
                             signer);
        }
    } else if (self->require_signed) {
        return dv_errorf(err, DV_EPERM,
                         "model_push: this broker takes only model files "
                         "signed by an admin key (--require-signed): drover "
                         "models push FILE --sign --key ADMIN.key");
    }
    bool change = false; // may change the latest's schema
    if ((rc = dv_msg_bool_or(m, "schema_change", false, &change, err)) != 0) {
        return rc;
    }
    uint32_t version =
        dv_registry_reserve(self->registry, name, file->len, err);
    if (version == 0) {
        return err->code;
    }
    push_t *p = dv_calloc(1, sizeof *p);
    memcpy(p->route, route, route_len);
    p->route_len = route_len;
    if (self->current) {
        snprintf(p->owner, sizeof p->owner, "%s", self->current->id);
    }
    p->rid = rid;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->version = version;
    p->lineage = push_lineage(p->owner, signer, m, &p->lineage_len);
    p->schema_change = change;
    return dv_models_msg_push_queue(self, p, file, err);
}

// A model_get/model_rm name may be a reference: "NAME@VERSION" or
// "NAME@ALIAS" (resolved to the version it names now).
static int
read_model_ref_resolved(dv_broker_t *self,
                        const dv_msg_t *m,
                        char *name,
                        size_t size,
                        uint32_t *version,
                        dv_error_t *err)
{
    int rc =
        dv_catalog_msg_ref(m, "model", DV_ENOMODEL, name, size, version, err);
    if (rc || !strchr(name, '@')) {
        return rc;
    }
    const dv_model_info_t *r = dv_registry_resolve(self->registry, name, err);
    if (!r) {
        return err ? err->code : DV_ENOMODEL;
    }
    snprintf(name, size, "%s", r->name);
    *version = r->version;
    return 0;
}

// model_gc {name, keep}: remove all but the newest keep versions of name,
// except those an alias names. `ok` with removed: [version].
int
dv_models_msg_on_gc(dv_broker_t *self,
                    const void *route,
                    size_t route_len,
                    const dv_msg_t *m,
                    uint64_t rid,
                    dv_error_t *err)
{
    char name[DV_MAX_WIRE_NAME + 1];
    uint64_t keep = 0;
    int rc;
    if ((rc = dv_msg_str(m, "name", name, sizeof name, err)) != 0 ||
        (rc = dv_msg_uint(m, "keep", &keep, err)) != 0) {
        return rc;
    }
    uint32_t removed[4096];
    rc = dv_registry_gc(self->registry, name,
                        keep > UINT32_MAX ? UINT32_MAX : (uint32_t)keep,
                        removed, 4096, err);
    if (rc < 0) {
        return rc;
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_OK, rid);
    dv_msgw_key(w, "removed");
    dv_msgw_v_array(w, (size_t)rc);
    for (int i = 0; i < rc; i++) {
        dv_msgw_v_uint(w, removed[i]);
    }
    dv_commit_reply_stored(self, route, route_len, rid, w);
    return 0;
}

// model_alias {name, alias, version?}: point the alias at name@version
// (absent version: remove the alias). `ok` with name, alias, version and
// previous (0: none). Submits by NAME@ALIAS resolve to the version the
// alias names at submit time; a switch back is the rollback.
int
dv_models_msg_on_alias(dv_broker_t *self,
                       const void *route,
                       size_t route_len,
                       const dv_msg_t *m,
                       uint64_t rid,
                       dv_error_t *err)
{
    char name[DV_MAX_WIRE_NAME + 1], alias[DV_MAX_WIRE_NAME + 1];
    uint64_t version = 0;
    int rc;
    if ((rc = dv_msg_str(m, "name", name, sizeof name, err)) != 0 ||
        (rc = dv_msg_str(m, "alias", alias, sizeof alias, err)) != 0 ||
        (rc = dv_msg_uint_or(m, "version", 0, &version, err)) != 0) {
        return rc;
    }
    if (version > UINT32_MAX) {
        return dv_errorf(err, DV_ENOMODEL, "model '%s' has no such version",
                         name);
    }
    // Moving an alias to a version of another schema breaks its clients
    // the same way: the same check as a push.
    bool change = false;
    uint32_t now_at = dv_registry_alias_version(self->registry, name, alias);
    if ((rc = dv_msg_bool_or(m, "schema_change", false, &change, err)) != 0 ||
        (!change && now_at && version &&
         (rc = schema_same(
              dv_registry_get(self->registry, name, now_at),
              dv_registry_get(self->registry, name, (uint32_t)version),
              "model_alias", err)) != 0)) {
        return rc;
    }
    uint32_t previous = 0;
    rc = dv_registry_alias(self->registry, name, alias, (uint32_t)version,
                           &previous, err);
    if (rc) {
        return rc;
    }
    dv_log(DV_LOG_INFO, "broker", "alias %s@%s: %u -> %u", name, alias,
           previous, (unsigned)version);
    if (previous && version && previous != version) {
        previous = switch_begin(self, name, alias, previous, (uint32_t)version);
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_OK, rid);
    dv_msgw_str(w, "name", name);
    dv_msgw_str(w, "alias", alias);
    dv_msgw_uint(w, "version", version);
    dv_msgw_uint(w, "previous", previous);
    dv_commit_reply_stored(self, route, route_len, rid, w);
    return 0;
}

// model_config {name, max_batch_rows?, max_delay_us?}: a model's serving
// settings (all its versions); absent fields keep their values, and none
// at all just reads them. `ok` with name and both settings. Jobs
// dispatched from then on carry them to their workers.
int
dv_models_msg_on_config(dv_broker_t *self,
                        const void *route,
                        size_t route_len,
                        const dv_msg_t *m,
                        uint64_t rid,
                        dv_error_t *err)
{
    char name[DV_MAX_WIRE_NAME + 1];
    int rc = dv_msg_str(m, "name", name, sizeof name, err);
    if (rc) {
        return rc;
    }
    if (!dv_registry_get(self->registry, name, 0)) {
        return dv_errorf(err, DV_ENOMODEL, "no model '%s'", name);
    }
    dv_model_config_t cfg = dv_registry_config(self->registry, name);
    uint64_t rows = cfg.max_batch_rows, delay = cfg.max_delay_us;
    if ((rc = dv_msg_uint_or(m, "max_batch_rows", rows, &rows, err)) != 0 ||
        (rc = dv_msg_uint_or(m, "max_delay_us", delay, &delay, err)) != 0) {
        return rc;
    }
    if (dv_msg_has(m, "max_batch_rows") || dv_msg_has(m, "max_delay_us")) {
        dv_model_config_t want = {rows > UINT32_MAX ? 0 : (uint32_t)rows,
                                  delay > UINT32_MAX ? UINT32_MAX
                                                     : (uint32_t)delay};
        rc = dv_registry_config_set(self->registry, name, &want, err);
        if (rc) {
            return rc;
        }
        dv_log(DV_LOG_INFO, "broker",
               "model %s: max_batch_rows %u, max_delay_us %u", name,
               want.max_batch_rows, want.max_delay_us);
        cfg = want;
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_OK, rid);
    dv_msgw_str(w, "name", name);
    dv_msgw_uint(w, "max_batch_rows", cfg.max_batch_rows);
    dv_msgw_uint(w, "max_delay_us", cfg.max_delay_us);
    dv_commit_reply_stored(self, route, route_len, rid, w);
    return 0;
}

int
dv_models_msg_on_get(dv_broker_t *self,
                     const void *route,
                     size_t route_len,
                     const dv_msg_t *m,
                     uint64_t rid,
                     dv_error_t *err)
{
    char name[DV_MAX_WIRE_NAME + 1];
    uint32_t version = 0;
    int rc = read_model_ref_resolved(self, m, name, sizeof name, &version, err);
    if (rc) {
        return rc;
    }
    const dv_model_info_t *r = dv_registry_get(self->registry, name, version);
    if (!r) {
        return dv_errorf(err, DV_ENOMODEL, "no model '%s'%s", name,
                         version ? " at that version" : "");
    }
    // The schema (feature names, classes) rides in frame 1 when asked
    // for: it can outgrow a header.
    uint64_t schema = 0;
    dv_error_t ignore;
    dv_msg_uint_or(m, "schema", 0, &schema, &ignore);
    dv_msgw_t *w = dv_msgw_new(DV_MSG_MODEL, rid);
    write_model_info(w, self->registry, r, false);
    if (schema) {
        dv_msgw_uint(w, "schema", 1);
    }
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_frame_t f = {r->schema, r->schema_len};
    dv_broker_client_send(self, route, route_len, h, len, &f, schema ? 1 : 0);
    dv_msgw_destroy(&w);
    return 0;
}

// One model_list item.
static void
list_item(void *arg, dv_msgw_t *item, const void *rec)
{
    dv_msgw_v_map(item, MODEL_FIELDS);
    write_model_info(item, arg, rec, true);
}

int
dv_models_msg_on_list(dv_broker_t *self,
                      const void *route,
                      size_t route_len,
                      const dv_msg_t *m,
                      uint64_t rid,
                      dv_error_t *err)
{
    size_t n = 0;
    const dv_model_info_t *all = dv_registry_list(self->registry, &n);
    dv_msgw_t *w = dv_msgw_new(DV_MSG_MODELS, rid);
    int rc = dv_catalog_msg_page(w, m, "models", all, n, sizeof *all, NULL,
                                 list_item, self->registry, err);
    if (rc) {
        dv_msgw_destroy(&w);
        return rc;
    }
    dv_broker_client_reply(self, route, route_len, w);
    return 0;
}

int
dv_models_msg_on_rm(dv_broker_t *self,
                    const void *route,
                    size_t route_len,
                    const dv_msg_t *m,
                    uint64_t rid,
                    dv_error_t *err)
{
    char name[DV_MAX_WIRE_NAME + 1];
    uint32_t version = 0;
    int rc = read_model_ref_resolved(self, m, name, sizeof name, &version, err);
    if (rc) {
        return rc;
    }
    rc = dv_registry_rm(self->registry, name, version, err);
    if (rc < 0) {
        return rc;
    }
    dv_log(DV_LOG_INFO, "broker", "model %s: %d version(s) removed", name, rc);
    dv_catalog_msg_removed(self, route, route_len, rid, self->model_owners,
                           name, !dv_registry_get(self->registry, name, 0), rc);
    return 0;
}
