// dv_registry — the broker's model registry (see dv_registry.h).
//
// The versions are a dv_catalog (shared with the data set store) of
// dv_model_info_t records; what is a model's own is here: decoding and
// describing an image, its lineage side file, aliases and serving
// settings (per name, in the name's folder), garbage collection.
#include "dv_registry.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

#include "dv_catalog.h"
#include "dv_file.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_model.h"
#include "dv_modelfile.h"
#include "dv_msgpack.h"

#define PATH_BYTES 4096

// A named pointer at one version of a model ("prod" -> 3).
typedef struct {
    char name[DV_MAX_WIRE_NAME + 1];
    char alias[DV_MAX_WIRE_NAME + 1];
    uint32_t version;
} alias_t;

// A model name's serving settings (only those set; others: defaults).
typedef struct {
    char name[DV_MAX_WIRE_NAME + 1];
    dv_model_config_t cfg;
} config_t;

struct dv_registry {
    dv_catalog_t *cat; // the versions (records: dv_model_info_t)
    alias_t *aliases;  // every model's aliases, sorted by name then alias
    size_t n_aliases;  //   (an infer job naming NAME@ALIAS finds it by a
                       //   binary search, a model record its aliases)
    config_t *configs; // settings of the models that have some, by name
    size_t n_configs;  //
    char *dir;         // data dir, or NULL (memory)
};

static int load_aliases(dv_registry_t *self, const char *name, dv_error_t *err);
static void sort_aliases(dv_registry_t *self);
static int load_config(dv_registry_t *self, const char *name, dv_error_t *err);
static config_t *config_find(const dv_registry_t *self, const char *name);

int
dv_model_ref_parse(const char *ref,
                   char *name,
                   uint32_t *version,
                   dv_error_t *err)
{
    const char *at = strchr(ref, '@');
    size_t n = at ? (size_t)(at - ref) : strlen(ref);
    *version = 0;
    if (n == 0 || n > DV_MAX_WIRE_NAME) {
        return dv_errorf(err, DV_EINVAL,
                         "model reference '%.160s': want NAME or NAME@VERSION",
                         ref);
    }
    memcpy(name, ref, n);
    name[n] = '\0';
    if (!dv_catalog_name_valid(name)) {
        return dv_errorf(err, DV_EINVAL,
                         "model name '%s' must match [A-Za-z0-9._-]+", name);
    }
    if (at) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(at + 1, &end, 10);
        if (at[1] < '0' || at[1] > '9' || *end || errno || v == 0 ||
            v > UINT32_MAX) {
            return dv_errorf(err, DV_EINVAL,
                             "model reference '%.160s': the version after @ "
                             "must be a number >= 1",
                             ref);
        }
        *version = (uint32_t)v;
    }
    return 0;
}

// NAME/VERSION.lineage beside the model file.
static void
lineage_path(
    const char *dir, const char *name, uint32_t version, char *buf, size_t size)
{
    snprintf(buf, size, "%s/models/%s/%" PRIu32 ".lineage", dir, name, version);
}

// A lineage file's bytes, if it holds one msgpack map (else NULL: a
// damaged lineage loses only itself, never the model).
static uint8_t *
lineage_load(const char *dir, const char *name, uint32_t version, size_t *len)
{
    char path[PATH_BYTES];
    lineage_path(dir, name, version, path, sizeof path);
    uint8_t *bytes = NULL;
    dv_error_t err = {0};
    if (access(path, F_OK) != 0 ||
        dv_file_read(path, DV_MAX_LINEAGE_BYTES, &bytes, len, &err) != 0) {
        return NULL;
    }
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    // Checked first (dv_msgpack_unpack): a count the file cannot hold must
    // not reach msgpack-c's allocator.
    bool ok = dv_msgpack_unpack(&up, bytes, *len, "lineage", NULL) == 0 &&
              up.data.type == MSGPACK_OBJECT_MAP;
    msgpack_unpacked_destroy(&up);
    if (!ok) {
        free(bytes);
        return NULL;
    }
    return bytes;
}

// Decode image and fill info (name and version set by the caller).
static int
describe(const uint8_t *image,
         size_t len,
         dv_model_info_t *info,
         dv_error_t *err)
{
    dv_model_t *m = NULL;
    int rc = dv_model_decode(&m, image, len, err);
    if (rc) {
        return rc;
    }
    dv_sha256(image, len, info->sha256);
    info->bytes = len;
    snprintf(info->task, sizeof info->task, "%s", dv_task_name(m->task));
    snprintf(info->algo, sizeof info->algo, "%s",
             dv_algo_name(m->meta.hyper.algo));
    info->features = (uint32_t)m->n_features;
    info->outputs = (uint32_t)dv_model_n_outputs(m);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, m->labels ? 4 : 2);
    dv_msgpack_pack_str(&pk, "features");
    msgpack_pack_array(&pk, m->n_features);
    for (size_t i = 0; i < m->n_features; i++) {
        dv_msgpack_pack_str(&pk, m->feature_names[i]);
    }
    dv_msgpack_pack_str(&pk, "target");
    dv_msgpack_pack_str(&pk, m->target_name ? m->target_name : "");
    if (m->labels) {
        dv_msgpack_pack_str(&pk, "classes");
        msgpack_pack_array(&pk, m->labels->n);
        for (size_t i = 0; i < m->labels->n; i++) {
            dv_msgpack_pack_str(&pk, m->labels->labels[i]);
        }
        dv_msgpack_pack_str(&pk, "labels_numeric");
        if (m->labels->numeric) {
            msgpack_pack_true(&pk);
        } else {
            msgpack_pack_false(&pk);
        }
    }
    info->schema_len = sb.size;
    info->schema = (uint8_t *)msgpack_sbuffer_release(&sb);
    msgpack_sbuffer_destroy(&sb);
    dv_model_destroy(&m);
    return 0;
}

// A model record for dv_catalog: the image decoded and validated.
static int
describe_rec(const uint8_t *image, size_t len, void *rec, dv_error_t *err)
{
    return describe(image, len, rec, err);
}

static void
rec_free(void *rec)
{
    dv_model_info_t *info = rec;
    free(info->schema);
    info->schema = NULL;
    free(info->lineage);
    info->lineage = NULL;
}

static void
load_side(const char *dir, void *rec)
{
    dv_model_info_t *info = rec;
    info->lineage =
        lineage_load(dir, info->name, info->version, &info->lineage_len);
}

static void
unlink_side(const char *dir, const dv_catalog_head_t *rec)
{
    char path[PATH_BYTES];
    lineage_path(dir, rec->name, rec->version, path, sizeof path);
    (void)dv_file_unlink(path); // absent for pushed files
}

_Static_assert(offsetof(dv_model_info_t, version) ==
                   offsetof(dv_catalog_head_t, version),
               "a model record starts with a catalog head");

static const char *const NAME_FILES[] = {"aliases", "config", NULL};

static const dv_catalog_kind_t KIND = {
    .noun = "model",
    .folder = "models",
    .ext = ".drvm",
    .rec_size = sizeof(dv_model_info_t),
    .max_bytes = DV_MAX_FRAME_BYTES,
    .created_off = offsetof(dv_model_info_t, created_us),
    .bytes_off = offsetof(dv_model_info_t, bytes),
    .missing = DV_ENOMODEL,
    .describe = describe_rec,
    .rec_free = rec_free,
    .load_side = load_side,
    .unlink_side = unlink_side,
    .name_files = NAME_FILES,
};

// After a scan found name's versions: its aliases and settings.
static int
load_name(void *arg, const char *name, dv_error_t *err)
{
    dv_registry_t *self = arg;
    int rc = load_aliases(self, name, err);
    return rc ? rc : load_config(self, name, err);
}

int
dv_registry_open(dv_registry_t **out, const char *dir, dv_error_t *err)
{
    dv_registry_t *self = dv_calloc(1, sizeof *self);
    self->dir = dir ? dv_strdup(dir) : NULL;
    self->cat = dv_catalog_new(&KIND, dir);
    int rc = dv_catalog_scan(self->cat, load_name, self, err);
    if (rc) {
        dv_registry_destroy(&self);
        return rc;
    }
    sort_aliases(self); // loaded name by name, in the folder's order
    *out = self;
    return 0;
}

void
dv_registry_destroy(dv_registry_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_registry_t *self = *self_p;
    dv_catalog_destroy(&self->cat);
    free(self->aliases);
    free(self->configs);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

uint32_t
dv_registry_reserve(dv_registry_t *self,
                    const char *name,
                    uint64_t bytes,
                    dv_error_t *err)
{
    return dv_catalog_reserve(self->cat, name, bytes, err);
}

void
dv_registry_bound(dv_registry_t *self,
                  size_t max_versions,
                  uint64_t max_bytes,
                  uint64_t min_free)
{
    dv_catalog_bound(self->cat, max_versions, max_bytes, min_free);
}

void
dv_registry_release(dv_registry_t *self, const char *name, uint32_t version)
{
    dv_catalog_release(self->cat, name, version);
}

const char *
dv_registry_dir(const dv_registry_t *self)
{
    return self->dir;
}

int
dv_registry_prepare(const char *dir,
                    const char *name,
                    uint32_t version,
                    const uint8_t *image,
                    size_t len,
                    dv_model_info_t *info,
                    dv_error_t *err)
{
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", name);
    info->version = version;
    int rc = describe(image, len, info, err);
    if (rc == 0) {
        rc = dv_catalog_write(&KIND, dir, name, version, image, len,
                              &info->created_us, err);
        if (rc) {
            free(info->schema);
            info->schema = NULL;
        }
    }
    return rc;
}

int
dv_registry_prepare_lineage(const char *dir,
                            dv_model_info_t *info,
                            const uint8_t *lineage,
                            size_t len,
                            dv_error_t *err)
{
    if (len > DV_MAX_LINEAGE_BYTES) {
        return dv_errorf(err, DV_EMSGSIZE, "lineage of %zu bytes: over %zu",
                         len, (size_t)DV_MAX_LINEAGE_BYTES);
    }
    if (dir) {
        char path[PATH_BYTES];
        lineage_path(dir, info->name, info->version, path, sizeof path);
        int rc = dv_file_write_atomic(path, lineage, len, err);
        if (rc) {
            return rc;
        }
    }
    info->lineage = dv_malloc(len ? len : 1);
    memcpy(info->lineage, lineage, len);
    info->lineage_len = len;
    return 0;
}

bool
dv_registry_reserved_below(const dv_registry_t *self,
                           const char *name,
                           uint32_t v)
{
    return dv_catalog_reserved_below(self->cat, name, v);
}

const dv_model_info_t *
dv_registry_commit(dv_registry_t *self,
                   const dv_model_info_t *info,
                   uint8_t *image)
{
    return dv_catalog_commit(self->cat, info, image);
}

void
dv_registry_discard(dv_registry_t *self, dv_model_info_t *info)
{
    dv_catalog_discard(self->cat, info);
}

int
dv_registry_push(dv_registry_t *self,
                 const char *name,
                 const uint8_t *image,
                 size_t len,
                 const dv_model_info_t **info_out,
                 dv_error_t *err)
{
    uint32_t version = dv_registry_reserve(self, name, len, err);
    if (version == 0) {
        return err ? err->code : DV_EINVAL;
    }
    dv_model_info_t info;
    int rc =
        dv_registry_prepare(self->dir, name, version, image, len, &info, err);
    if (rc) {
        dv_registry_release(self, name, version);
        return rc;
    }
    uint8_t *copy = NULL;
    if (!self->dir) {
        copy = dv_malloc(len ? len : 1);
        memcpy(copy, image, len);
    }
    const dv_model_info_t *r = dv_registry_commit(self, &info, copy);
    if (info_out) {
        *info_out = r;
    }
    return 0;
}

// image (len bytes) against the recorded sha256 of name@version: 0, or
// DV_ECHECKSUM with *image freed.
static int
verify(const char *name,
       uint32_t version,
       const uint8_t *sha256,
       uint8_t **image,
       size_t len,
       dv_error_t *err)
{
    uint8_t sum[DV_SHA256_BYTES];
    dv_sha256(*image, len, sum);
    if (memcmp(sum, sha256, sizeof sum) == 0) {
        return 0;
    }
    free(*image);
    *image = NULL;
    return dv_errorf(err, DV_ECHECKSUM,
                     "model %s@%" PRIu32 " changed on disk since it was "
                     "stored (checksum mismatch)",
                     name, version);
}

int
dv_registry_read_file(const char *dir,
                      const char *name,
                      uint32_t version,
                      const uint8_t *sha256,
                      uint8_t **image,
                      size_t *len,
                      dv_error_t *err)
{
    char path[PATH_BYTES];
    dv_catalog_path(&KIND, dir, name, version, path, sizeof path);
    int rc = dv_file_read(path, DV_MAX_FRAME_BYTES, image, len, err);
    if (rc == DV_ENOENT) {
        return dv_errorf(err, DV_ENOMODEL, "model %s@%" PRIu32 " was removed",
                         name, version);
    }
    return rc ? rc : verify(name, version, sha256, image, *len, err);
}

const dv_model_info_t *
dv_registry_get(const dv_registry_t *self, const char *name, uint32_t version)
{
    return dv_catalog_get(self->cat, name, version);
}

const dv_model_info_t *
dv_registry_resolve(const dv_registry_t *self, const char *ref, dv_error_t *err)
{
    char name[DV_MAX_WIRE_NAME + 1];
    uint32_t version = 0;
    const char *at = strchr(ref, '@');
    if (at &&
        ((at[1] >= 'A' && at[1] <= 'Z') || (at[1] >= 'a' && at[1] <= 'z'))) {
        // NAME@ALIAS
        size_t n = (size_t)(at - ref);
        if (n == 0 || n > DV_MAX_WIRE_NAME) {
            dv_errorf(err, DV_EINVAL, "model reference '%.160s': bad name",
                      ref);
            return NULL;
        }
        memcpy(name, ref, n);
        name[n] = '\0';
        version = dv_registry_alias_version(self, name, at + 1);
        if (!version) {
            dv_errorf(err, DV_ENOMODEL,
                      "model '%s' has no alias '%.128s' (drover models list "
                      "shows them)",
                      name, at + 1);
            return NULL;
        }
        return dv_registry_get(self, name, version);
    }
    if (dv_model_ref_parse(ref, name, &version, err) != 0) {
        return NULL;
    }
    const dv_model_info_t *r = dv_registry_get(self, name, version);
    if (!r) {
        if (version && dv_registry_get(self, name, 0)) {
            dv_errorf(err, DV_ENOMODEL, "model '%s' has no version %" PRIu32,
                      name, version);
        } else {
            dv_errorf(err, DV_ENOMODEL,
                      "no model named '%s' (drover models list shows them)",
                      name);
        }
    }
    return r;
}

const dv_model_info_t *
dv_registry_list(const dv_registry_t *self, size_t *n)
{
    return dv_catalog_list(self->cat, n);
}

// The last version of name went: so go its aliases and settings.
static size_t
alias_lower(const dv_registry_t *self, const char *name, const char *alias);
static size_t
alias_name_end(const dv_registry_t *self, const char *name, size_t from);

static void
forget_name(dv_registry_t *self, const char *name)
{
    size_t lo = alias_lower(self, name, ""),
           hi = alias_name_end(self, name, lo);
    if (hi > lo) {
        memmove(&self->aliases[lo], &self->aliases[hi],
                (self->n_aliases - hi) * sizeof(alias_t));
        self->n_aliases -= hi - lo;
    }
    config_t *c = config_find(self, name);
    if (c) {
        size_t i = (size_t)(c - self->configs);
        memmove(c, c + 1, (self->n_configs - i - 1) * sizeof *c);
        self->n_configs--;
    }
}

int
dv_registry_rm(dv_registry_t *self,
               const char *name,
               uint32_t version,
               dv_error_t *err)
{
    size_t lo = alias_lower(self, name, ""),
           hi = alias_name_end(self, name, lo);
    for (size_t a = lo; version && a < hi; a++) {
        if (self->aliases[a].version == version) {
            return dv_errorf(err, DV_EINVAL,
                             "model %s@%" PRIu32 " is what alias '%s' points "
                             "at: move or remove the alias first",
                             name, version, self->aliases[a].alias);
        }
    }
    int removed = dv_catalog_rm(self->cat, name, version, err);
    if (removed > 0 && !dv_registry_get(self, name, 0)) {
        forget_name(self, name);
    }
    return removed;
}

int
dv_registry_read(const dv_registry_t *self,
                 const char *name,
                 uint32_t version,
                 uint8_t **image,
                 size_t *len,
                 dv_error_t *err)
{
    const dv_model_info_t *r = dv_registry_get(self, name, version);
    if (!r) {
        return dv_errorf(err, DV_ENOMODEL, "no model %s@%" PRIu32, name,
                         version);
    }
    if (self->dir) {
        char path[PATH_BYTES];
        dv_catalog_path(&KIND, self->dir, r->name, r->version, path,
                        sizeof path);
        int rc = dv_file_read(path, DV_MAX_FRAME_BYTES, image, len, err);
        return rc ? rc : verify(name, r->version, r->sha256, image, *len, err);
    }
    *len = r->bytes;
    *image = dv_malloc(r->bytes ? r->bytes : 1);
    memcpy(*image, dv_catalog_bytes(self->cat, r), r->bytes);
    return verify(name, r->version, r->sha256, image, *len, err);
}

// ---------------------------------------------------------------- aliases

static int
alias_cmp(const alias_t *a, const char *name, const char *alias)
{
    int c = strcmp(a->name, name);
    return c ? c : strcmp(a->alias, alias);
}

static int
alias_order(const void *x, const void *y)
{
    const alias_t *b = y;
    return alias_cmp(x, b->name, b->alias);
}

static void
sort_aliases(dv_registry_t *self)
{
    if (self->n_aliases > 1) { // (none: a NULL array)
        qsort(self->aliases, self->n_aliases, sizeof(alias_t), alias_order);
    }
}

// The place of the first alias at or after (name, alias): with alias "",
// name's first.
static size_t
alias_lower(const dv_registry_t *self, const char *name, const char *alias)
{
    size_t lo = 0, hi = self->n_aliases;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (alias_cmp(&self->aliases[mid], name, alias) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

// Past name's last alias, from its first (alias_lower(name, "")).
static size_t
alias_name_end(const dv_registry_t *self, const char *name, size_t from)
{
    while (from < self->n_aliases &&
           strcmp(self->aliases[from].name, name) == 0) {
        from++;
    }
    return from;
}

static alias_t *
alias_find(const dv_registry_t *self, const char *name, const char *alias)
{
    size_t i = alias_lower(self, name, alias);
    return i < self->n_aliases && alias_cmp(&self->aliases[i], name, alias) == 0
               ? &self->aliases[i]
               : NULL;
}

// Insert a (not there yet) in its place.
static void
alias_insert(dv_registry_t *self, const alias_t *a)
{
    size_t i = alias_lower(self, a->name, a->alias);
    self->aliases =
        dv_realloc(self->aliases, (self->n_aliases + 1) * sizeof(alias_t));
    memmove(&self->aliases[i + 1], &self->aliases[i],
            (self->n_aliases - i) * sizeof(alias_t));
    self->aliases[i] = *a;
    self->n_aliases++;
}

static void
alias_remove(dv_registry_t *self, alias_t *a)
{
    size_t i = (size_t)(a - self->aliases);
    memmove(a, a + 1, (self->n_aliases - i - 1) * sizeof(alias_t));
    self->n_aliases--;
}

uint32_t
dv_registry_alias_version(const dv_registry_t *self,
                          const char *name,
                          const char *alias)
{
    const alias_t *a = alias_find(self, name, alias);
    return a ? a->version : 0;
}

size_t
dv_registry_aliases_of(const dv_registry_t *self,
                       const char *name,
                       uint32_t version,
                       const char **out,
                       size_t max)
{
    size_t n = 0;
    for (size_t a = alias_lower(self, name, "");
         a < self->n_aliases && n < max &&
         strcmp(self->aliases[a].name, name) == 0;
         a++) {
        if (self->aliases[a].version == version) {
            out[n++] = self->aliases[a].alias;
        }
    }
    return n;
}

// DIR/models/NAME/aliases: "ALIAS VERSION" lines, written atomically.
static int
save_aliases(const dv_registry_t *self, const char *name, dv_error_t *err)
{
    if (!self->dir) {
        return 0;
    }
    size_t lo = alias_lower(self, name, ""),
           hi = alias_name_end(self, name, lo);
    size_t cap = 64 + (hi - lo) * (DV_MAX_WIRE_NAME + 16), len = 0;
    char *text = dv_malloc(cap);
    for (size_t a = lo; a < hi; a++) {
        len +=
            (size_t)snprintf(text + len, cap - len, "%s %" PRIu32 "\n",
                             self->aliases[a].alias, self->aliases[a].version);
    }
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/models/%s/aliases", self->dir, name);
    int rc = dv_file_write_atomic(path, text, len, err);
    free(text);
    return rc;
}

static bool
alias_valid(const char *alias)
{
    return dv_catalog_name_valid(alias) &&
           ((alias[0] >= 'A' && alias[0] <= 'Z') ||
            (alias[0] >= 'a' && alias[0] <= 'z'));
}

int
dv_registry_alias(dv_registry_t *self,
                  const char *name,
                  const char *alias,
                  uint32_t version,
                  uint32_t *previous,
                  dv_error_t *err)
{
    if (!alias_valid(alias)) {
        return dv_errorf(err, DV_EINVAL,
                         "alias '%.128s' must start with a letter and match "
                         "[A-Za-z0-9._-]+",
                         alias);
    }
    alias_t *a = alias_find(self, name, alias);
    *previous = a ? a->version : 0;
    if (version && !dv_registry_get(self, name, version)) {
        return dv_errorf(err, DV_ENOMODEL, "model '%s' has no version %" PRIu32,
                         name, version);
    }
    if (!version && !a) {
        return dv_errorf(err, DV_ENOENT, "model '%s' has no alias '%s'", name,
                         alias);
    }
    if (version && !a && self->n_aliases >= DV_MAX_ALIASES) {
        return dv_errorf(err, DV_ELIMIT,
                         "the registry keeps %zu aliases, the most it keeps "
                         "(%d): remove some first",
                         self->n_aliases, DV_MAX_ALIASES);
    }
    alias_t before = a ? *a : (alias_t){{0}, {0}, 0};
    if (!version) {
        alias_remove(self, a);
    } else if (a) {
        a->version = version;
    } else {
        alias_t n = {{0}, {0}, version};
        snprintf(n.name, sizeof n.name, "%s", name);
        snprintf(n.alias, sizeof n.alias, "%s", alias);
        alias_insert(self, &n);
    }
    int rc = save_aliases(self, name, err);
    if (rc) { // not stored: undo
        a = alias_find(self, name, alias);
        if (before.version && a) {
            a->version = before.version;
        } else if (before.version) {
            alias_insert(self, &before);
        } else if (a) {
            alias_remove(self, a);
        }
    }
    return rc;
}

// Read DIR/models/NAME/aliases (absent: none). Aliases at versions that
// are gone are dropped.
static int
load_aliases(dv_registry_t *self, const char *name, dv_error_t *err)
{
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/models/%s/aliases", self->dir, name);
    uint8_t *text = NULL;
    size_t len = 0;
    int rc = dv_file_read(path, 1 << 20, &text, &len, err);
    if (rc == DV_ENOENT) {
        dv_error_clear(err);
        return 0;
    }
    if (rc) {
        return rc;
    }
    char *p = (char *)text, *end = (char *)text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char line[DV_MAX_WIRE_NAME + 32];
        size_t n = (size_t)((nl ? nl : end) - p);
        snprintf(line, sizeof line, "%.*s",
                 (int)(n < sizeof line - 1 ? n : sizeof line - 1), p);
        p = nl ? nl + 1 : end;
        char alias[DV_MAX_WIRE_NAME + 1];
        unsigned long v = 0;
        if (sscanf(line, "%128s %lu", alias, &v) == 2 && alias_valid(alias) &&
            v > 0 && v <= UINT32_MAX &&
            dv_registry_get(self, name, (uint32_t)v) &&
            self->n_aliases < DV_MAX_ALIASES) { // sorted once all are read
            self->aliases = dv_realloc(self->aliases,
                                       (self->n_aliases + 1) * sizeof(alias_t));
            alias_t *a = &self->aliases[self->n_aliases++];
            snprintf(a->name, sizeof a->name, "%.128s", name);
            snprintf(a->alias, sizeof a->alias, "%s", alias);
            a->version = (uint32_t)v;
        }
    }
    free(text);
    return 0;
}

int
dv_registry_gc(dv_registry_t *self,
               const char *name,
               uint32_t keep,
               uint32_t *removed,
               size_t max,
               dv_error_t *err)
{
    if (keep == 0) {
        return dv_errorf(err, DV_EINVAL, "gc: keep at least 1 version");
    }
    const dv_model_info_t *latest = dv_registry_get(self, name, 0);
    if (!latest) {
        return dv_errorf(err, DV_ENOMODEL, "no model '%s'", name);
    }
    // Versions are sorted: the newest `keep` are the last ones of name.
    uint32_t versions[4096];
    size_t n = 0, n_all = 0;
    const dv_model_info_t *all = dv_registry_list(self, &n_all);
    for (size_t i = 0; i < n_all && n < 4096; i++) {
        if (strcmp(all[i].name, name) == 0) {
            versions[n++] = all[i].version;
        }
    }
    size_t count = 0;
    for (size_t i = 0; i + keep < n; i++) {
        const char *aliases[1];
        if (dv_registry_aliases_of(self, name, versions[i], aliases, 1)) {
            continue; // an alias pins it
        }
        dv_error_t e = {0};
        if (dv_registry_rm(self, name, versions[i], &e) > 0 && count < max) {
            removed[count++] = versions[i];
        }
    }
    return (int)count;
}

// ---------------------------------------------------------- settings

// Where name's settings are in the sorted configs, or would go. Every
// infer job's batching asks (dv_registry_config): a binary search, not a
// walk of every configured model.
static size_t
config_pos(const dv_registry_t *self, const char *name)
{
    size_t lo = 0, hi = self->n_configs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(self->configs[mid].name, name) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static config_t *
config_find(const dv_registry_t *self, const char *name)
{
    size_t i = config_pos(self, name);
    return i < self->n_configs && strcmp(self->configs[i].name, name) == 0
               ? &self->configs[i]
               : NULL;
}

// name's settings, made (with the defaults) where it has none.
static config_t *
config_make(dv_registry_t *self, const char *name)
{
    size_t i = config_pos(self, name);
    if (i < self->n_configs && strcmp(self->configs[i].name, name) == 0) {
        return &self->configs[i];
    }
    self->configs =
        dv_realloc(self->configs, (self->n_configs + 1) * sizeof(config_t));
    memmove(&self->configs[i + 1], &self->configs[i],
            (self->n_configs - i) * sizeof(config_t));
    self->n_configs++;
    config_t *c = &self->configs[i];
    snprintf(c->name, sizeof c->name, "%.128s", name);
    c->cfg = (dv_model_config_t){DV_BATCH_ROWS_DEFAULT, 0};
    return c;
}

dv_model_config_t
dv_registry_config(const dv_registry_t *self, const char *name)
{
    const config_t *c = config_find(self, name);
    return c ? c->cfg : (dv_model_config_t){DV_BATCH_ROWS_DEFAULT, 0};
}

static int
config_check(const dv_model_config_t *cfg, dv_error_t *err)
{
    if (cfg->max_batch_rows == 0 || cfg->max_batch_rows > DV_MAX_INFER_ROWS) {
        return dv_errorf(err, DV_EINVAL, "max_batch_rows must be 1..%d",
                         DV_MAX_INFER_ROWS);
    }
    if (cfg->max_delay_us > DV_MAX_BATCH_DELAY_US) {
        return dv_errorf(err, DV_EINVAL, "max_delay_us must be 0..%d",
                         DV_MAX_BATCH_DELAY_US);
    }
    return 0;
}

int
dv_registry_config_set(dv_registry_t *self,
                       const char *name,
                       const dv_model_config_t *cfg,
                       dv_error_t *err)
{
    if (!dv_registry_get(self, name, 0)) {
        return dv_errorf(err, DV_ENOMODEL, "no model '%.128s'", name);
    }
    int rc = config_check(cfg, err);
    if (rc) {
        return rc;
    }
    if (self->dir) { // DIR/models/NAME/config: "KEY VALUE" lines
        char text[128], path[PATH_BYTES];
        int len =
            snprintf(text, sizeof text,
                     "max_batch_rows %" PRIu32 "\nmax_delay_us %" PRIu32 "\n",
                     cfg->max_batch_rows, cfg->max_delay_us);
        snprintf(path, sizeof path, "%s/models/%s/config", self->dir, name);
        rc = dv_file_write_atomic(path, text, (size_t)len, err);
        if (rc) {
            return rc;
        }
    }
    config_make(self, name)->cfg = *cfg;
    return 0;
}

// Read DIR/models/NAME/config (absent: the defaults). Unknown keys are
// skipped (a newer broker's settings); a value out of range is a damaged
// file, and the open stops naming it, as for a damaged model.
static int
load_config(dv_registry_t *self, const char *name, dv_error_t *err)
{
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/models/%s/config", self->dir, name);
    uint8_t *text = NULL;
    size_t len = 0;
    int rc = dv_file_read(path, 1 << 16, &text, &len, err);
    if (rc == DV_ENOENT) {
        dv_error_clear(err);
        return 0;
    }
    if (rc) {
        return rc;
    }
    dv_model_config_t cfg = dv_registry_config(self, name);
    char *p = (char *)text, *end = (char *)text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char line[128], key[64];
        size_t n = (size_t)((nl ? nl : end) - p);
        snprintf(line, sizeof line, "%.*s",
                 (int)(n < sizeof line - 1 ? n : sizeof line - 1), p);
        p = nl ? nl + 1 : end;
        unsigned long long v = 0;
        if (sscanf(line, "%63s %llu", key, &v) != 2) {
            continue;
        }
        if (strcmp(key, "max_batch_rows") == 0) {
            cfg.max_batch_rows = v > UINT32_MAX ? 0 : (uint32_t)v;
        } else if (strcmp(key, "max_delay_us") == 0) {
            cfg.max_delay_us = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
        }
    }
    free(text);
    dv_error_t why = {0};
    if (config_check(&cfg, &why) != 0) {
        return dv_errorf(err, DV_EFORMAT, "%s: %s", path, why.text);
    }
    config_make(self, name)->cfg = cfg;
    return 0;
}
