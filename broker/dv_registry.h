// dv_registry — the broker's model registry: named models, each a list of
// immutable versions (1, 2, ...), each a validated .drvm image.
//
// With a data dir, versions live as files DIR/models/NAME/VERSION.drvm
// (written atomically) and are found again on open, so models survive
// broker restarts; without one (tests, benchmarks) images are kept in
// memory. Every pushed image is decoded and validated first: the registry
// never hands a worker a file it could not load.
//
// Threads: one (the broker's loop thread).
#ifndef DV_REGISTRY_H
#define DV_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dv_err.h"
#include "dv_proto.h"
#include "dv_sha256.h"

typedef struct {
    char name[DV_MAX_WIRE_NAME + 1]; // model name
    uint32_t version;                // 1, 2, ... per name
    uint8_t sha256[DV_SHA256_BYTES]; // of the whole file
    uint64_t bytes;                  // file size
    char task[16];                   // "regression" / "classification"
    char algo[16];                   // "ols", "mlp", ...
    uint32_t features;               // input width
    uint32_t outputs;                // output width
    uint64_t created_us;             // pushed (unix microseconds)
    uint8_t *schema;                 // msgpack {features, target, classes,
    size_t schema_len;               // labels_numeric}; owned by registry
    uint8_t *lineage;                // msgpack map: how a version trained
    size_t lineage_len;              // through the queue came to be (job,
                                     // data set, hyper-parameters, worker,
                                     // times, eval metrics); NULL for a
                                     // pushed file. Owned by the registry
} dv_model_info_t;

typedef struct dv_registry dv_registry_t;

// Open the registry under dir (created if missing; NULL: in memory).
// Existing versions are verified (checksum, decode); a damaged file stops
// the open with DV_ECHECKSUM/DV_EFORMAT/... naming it, rather than being
// silently skipped. Returns 0 and *out, or DV_E*.
int dv_registry_open(dv_registry_t **out, const char *dir, dv_error_t *err);

void dv_registry_destroy(dv_registry_t **self_p);

// A record's `schema` is what a client needs to build inputs and read
// outputs without the model file: a msgpack map {"features": [str],
// "target": str, "classes": [str] (classification), "labels_numeric":
// bool}. It can be large (one name per feature), so it travels as a payload
// frame, not in a header.

// Store image (len bytes) as the next version of name. The name must match
// [A-Za-z0-9._-]+ (DV_EINVAL); the image must decode and validate (its
// DV_E*); DV_EIO/DV_ENOSPC on storage failure. *info (may be NULL) gets the
// new version's record.
int dv_registry_push(dv_registry_t *self,
                     const char *name,
                     const uint8_t *image,
                     size_t len,
                     const dv_model_info_t **info,
                     dv_error_t *err);

// The same in three steps, so the slow part (decode, validate, write and
// fsync a file that may be hundreds of MB) can run on another thread:
// reserve the version on the registry's thread, prepare anywhere, then
// commit (or release) on the registry's thread again.
//
// Reserve the next version of name, for a file of bytes (0 and DV_EINVAL
// for a bad name, DV_ELIMIT / DV_ENOSPC past the bounds: dv_catalog).
uint32_t dv_registry_reserve(dv_registry_t *self,
                             const char *name,
                             uint64_t bytes,
                             dv_error_t *err);
// Bound what the registry stores (dv_catalog_bound: versions, file bytes,
// free bytes left on the data dir's file system; 0 keeps the default).
void dv_registry_bound(dv_registry_t *self,
                       size_t max_versions,
                       uint64_t max_bytes,
                       uint64_t min_free);
// Give a reservation back (the prepare failed).
void dv_registry_release(dv_registry_t *self, const char *name, uint32_t v);
// Whether a version of name below v is reserved (being prepared): its
// commit or release comes first, so versions of a name are stored in the
// order they were reserved.
bool dv_registry_reserved_below(const dv_registry_t *self,
                                const char *name,
                                uint32_t v);
// The registry's folder (NULL in memory mode); copy it for dv_registry_prepare.
const char *dv_registry_dir(const dv_registry_t *self);
// Thread-safe: decode and validate image, fill *info (name, version set
// here; caller frees info->schema on failure paths after success), and
// write the file under dir (NULL: nothing to write). Returns 0 or DV_E*.
int dv_registry_prepare(const char *dir,
                        const char *name,
                        uint32_t version,
                        const uint8_t *image,
                        size_t len,
                        dv_model_info_t *info,
                        dv_error_t *err);
// Thread-safe, after dv_registry_prepare: keep lineage (a msgpack map of
// len bytes, copied) with the version, written as dir's NAME/VERSION.lineage
// (dir NULL: memory only). Returns 0 or the write error.
int dv_registry_prepare_lineage(const char *dir,
                                dv_model_info_t *info,
                                const uint8_t *lineage,
                                size_t len,
                                dv_error_t *err);
// Add a prepared version (its reservation ends). image: memory mode's copy
// (ownership taken; NULL with a dir). Returns the stored record.
const dv_model_info_t *dv_registry_commit(dv_registry_t *self,
                                          const dv_model_info_t *info,
                                          uint8_t *image);
// A prepared version that will not be committed after all (refused when
// it came to be stored): the files dv_registry_prepare and
// _prepare_lineage wrote are removed, info's schema and lineage freed and
// the reservation released. Nothing of it remains, on disk or here.
void dv_registry_discard(dv_registry_t *self, dv_model_info_t *info);
// Thread-safe: read dir's file for name@version and check it against
// sha256. Returns 0 and *image (caller frees), or DV_E*.
int dv_registry_read_file(const char *dir,
                          const char *name,
                          uint32_t version,
                          const uint8_t *sha256,
                          uint8_t **image,
                          size_t *len,
                          dv_error_t *err);

// Version of name (0: the latest). Returns the record (borrowed until the
// next push or rm) or NULL.
const dv_model_info_t *
dv_registry_get(const dv_registry_t *self, const char *name, uint32_t version);

// Resolve "NAME", "NAME@VERSION" or "NAME@ALIAS". Returns the record or NULL
// with DV_ENOMODEL / DV_EINVAL (malformed reference) in err.
const dv_model_info_t *dv_registry_resolve(const dv_registry_t *self,
                                           const char *ref,
                                           dv_error_t *err);

// Every version, sorted by name then version. Borrowed array of *n.
const dv_model_info_t *dv_registry_list(const dv_registry_t *self, size_t *n);

// Remove one version of name (version 0: all, with its aliases). Returns
// the number removed (> 0), DV_ENOMODEL, or DV_EINVAL when an alias points
// at that version (move the alias first: a rollback target is never
// deleted by accident).
int dv_registry_rm(dv_registry_t *self,
                   const char *name,
                   uint32_t version,
                   dv_error_t *err);

// The image of a version: a new copy (caller frees) and its length,
// re-verified against the recorded SHA-256. Returns 0, DV_ENOMODEL, or the
// read/verify error.
int dv_registry_read(const dv_registry_t *self,
                     const char *name,
                     uint32_t version,
                     uint8_t **image,
                     size_t *len,
                     dv_error_t *err);

// Aliases: a named pointer at one version of a model (NAME@prod), which
// dv_registry_resolve follows. Alias names start with a letter (versions
// are numbers). Stored in DIR/models/NAME/aliases.
//
// Point alias of name at version (0: remove the alias). *previous gets
// the version it pointed at before (0: new). Returns 0, DV_EINVAL (bad
// alias), DV_ENOMODEL (no such version), DV_ENOENT (removing an unknown
// alias), or the storage error (nothing changed).
int dv_registry_alias(dv_registry_t *self,
                      const char *name,
                      const char *alias,
                      uint32_t version,
                      uint32_t *previous,
                      dv_error_t *err);
// The version alias points at (0: none).
uint32_t dv_registry_alias_version(const dv_registry_t *self,
                                   const char *name,
                                   const char *alias);
// The aliases pointing at name@version (borrowed until the next change),
// at most max into out; returns how many.
size_t dv_registry_aliases_of(const dv_registry_t *self,
                              const char *name,
                              uint32_t version,
                              const char **out,
                              size_t max);

// Serving settings of a model name, for all its versions: dynamic batching
// (docs/ARCHITECTURE.md). Stored in DIR/models/NAME/config; a model without
// one has the defaults (DV_BATCH_ROWS_DEFAULT rows, no delay).
typedef struct {
    uint32_t max_batch_rows; // rows one forward pass may stack (>= 1)
    uint32_t max_delay_us;   // longest a batch waits for more (0: never)
} dv_model_config_t;

// name's settings (the defaults when it has none); name need not exist.
dv_model_config_t dv_registry_config(const dv_registry_t *self,
                                     const char *name);
// Set name's settings. Returns 0, DV_ENOMODEL (no such model), DV_EINVAL
// (max_batch_rows 0 or over DV_MAX_INFER_ROWS, max_delay_us over
// DV_MAX_BATCH_DELAY_US: the reason names the bound), or the storage error
// (nothing changed).
int dv_registry_config_set(dv_registry_t *self,
                           const char *name,
                           const dv_model_config_t *cfg,
                           dv_error_t *err);

// Garbage-collect name's old versions: remove all but the newest keep
// (>= 1), except versions an alias names (an alias pins a version). The
// removed versions go to removed (at most max). Returns how many were
// removed, DV_EINVAL (keep 0) or DV_ENOMODEL.
int dv_registry_gc(dv_registry_t *self,
                   const char *name,
                   uint32_t keep,
                   uint32_t *removed,
                   size_t max,
                   dv_error_t *err);

// Split "NAME[@VERSION]" into name (size DV_MAX_WIRE_NAME + 1) and version
// (0 when absent). Returns 0 or DV_EINVAL.
int dv_model_ref_parse(const char *ref,
                       char *name,
                       uint32_t *version,
                       dv_error_t *err);

#endif
