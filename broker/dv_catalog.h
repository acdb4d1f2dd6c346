// dv_catalog — one store of named, versioned, immutable files, as the
// model registry (dv_registry) and the data set store (dv_datasets) both
// keep them: versions 1, 2, ... per name, reserved before the slow part of
// storing one (validate, write) and committed after it, in the order they
// were reserved; removed one at a time or a whole name at once.
//
// A kind (dv_catalog_kind_t) says what differs between the two: the noun
// in messages, the folder and file suffix on disk, the size of a record,
// how a file's bytes become a record (validation included), what a record
// owns, and the side files a version or a name has beside its file.
//
// With a data dir, versions live as DIR/FOLDER/NAME/VERSION.EXT (written
// atomically) and are found and validated again on scan, so a catalog
// survives broker restarts; without one (tests, benchmarks) the bytes are
// kept in memory beside the records.
//
// Records are opaque to the catalog beyond their head: every record type
// starts with the fields of dv_catalog_head_t (name, then version), which
// its module checks with _Static_assert.
//
// Threads: one (the broker's loop thread), except the functions marked
// thread-safe (they take the folder, not the catalog).
#ifndef DV_CATALOG_H
#define DV_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dv_err.h"
#include "dv_proto.h"

// The fields every record starts with.
typedef struct {
    char name[DV_MAX_WIRE_NAME + 1]; // the name versions are kept under
    uint32_t version;                // 1, 2, ... per name
} dv_catalog_head_t;

// What one catalog's records are: the table of what differs by kind.
typedef struct {
    const char *noun;   // "model", "data set": in error texts
    const char *folder; // under the data dir: "models", "datasets"
    const char *ext;    // a version file's suffix: ".drvm", ".csv"
    size_t rec_size;    // bytes of one record (a dv_catalog_head_t first)
    uint64_t max_bytes; // largest version file read back on scan
    size_t created_off; // offsetof the record's uint64_t created_us (unix
                        // microseconds: when it was stored)
    size_t bytes_off;   // offsetof the record's uint64_t bytes (its file's)
    int missing;        // the code for "no such name/version"
    // Validate a file's bytes and fill the record's figures (its head is
    // set). Returns 0 or DV_E* with err set; on failure the record owns
    // nothing.
    int (*describe)(const uint8_t *bytes,
                    size_t len,
                    void *rec,
                    dv_error_t *err);
    // Free what a record owns (NULL: records own nothing).
    void (*rec_free)(void *rec);
    // Scan: read a version's side files beside its file (NULL: none).
    void (*load_side)(const char *dir, void *rec);
    // Remove a version's side files (NULL: none); absent ones are fine.
    void (*unlink_side)(const char *dir, const dv_catalog_head_t *rec);
    // Files a name keeps in its folder besides its versions (NULL-ended;
    // NULL: none), removed with its last version.
    const char *const *name_files;
} dv_catalog_kind_t;

typedef struct dv_catalog dv_catalog_t;

// Called once per name folder a scan found, after its versions are in:
// the owner's own per-name state (aliases, settings). Returns 0 or DV_E*.
typedef int(dv_catalog_name_fn)(void *arg, const char *name, dv_error_t *err);

// A new catalog of kind (borrowed; a static table) under dir (copied;
// NULL: in memory). Empty until dv_catalog_scan. Never NULL.
dv_catalog_t *dv_catalog_new(const dv_catalog_kind_t *kind, const char *dir);
// Frees every record (kind->rec_free) and the in-memory bytes. NULL-safe.
void dv_catalog_destroy(dv_catalog_t **self_p);

// Load every DIR/FOLDER/NAME/VERSION.EXT (the folder is created if
// missing), validated with kind->describe: a damaged file stops the scan
// with its error, naming the file, rather than being skipped. on_name (may
// be NULL) runs for each name folder after its versions. Returns 0 or
// DV_E*. Nothing to do in memory mode.
int dv_catalog_scan(dv_catalog_t *self,
                    dv_catalog_name_fn *on_name,
                    void *arg,
                    dv_error_t *err);

// The folder (NULL in memory mode); copy it for the thread-safe calls.
const char *dv_catalog_dir(const dv_catalog_t *self);

// DIR/FOLDER/NAME/VERSION.EXT (version 0: the name's folder) into buf.
void dv_catalog_path(const dv_catalog_kind_t *kind,
                     const char *dir,
                     const char *name,
                     uint32_t version,
                     char *buf,
                     size_t size);

// Version of name (0: the latest). Borrowed until the next commit or rm.
const void *
dv_catalog_get(const dv_catalog_t *self, const char *name, uint32_t version);
// Every record, sorted by name then version: a borrowed array of *n
// records of kind->rec_size bytes.
const void *dv_catalog_list(const dv_catalog_t *self, size_t *n);
// Memory mode: the bytes of rec (borrowed; NULL with a data dir).
const uint8_t *dv_catalog_bytes(const dv_catalog_t *self, const void *rec);

// What a catalog may hold (dv_catalog_new sets the defaults): versions
// stored and reserved together (DV_MAX_CATALOG_VERSIONS), their files'
// bytes (DV_MAX_STORED_BYTES_DISK with a data dir, else
// DV_MAX_STORED_BYTES_MEMORY: memory mode keeps every file in RAM), and
// with a data dir the bytes its file system must keep free after a new
// file (DV_MIN_FREE_DISK_BYTES: the job store writes there too). 0 keeps a
// bound as it is.
void dv_catalog_bound(dv_catalog_t *self,
                      size_t max_versions,
                      uint64_t max_bytes,
                      uint64_t min_free);

// Whether a file of bytes more fits the bounds now: 0, or DV_ELIMIT /
// DV_ENOSPC with err set (an upload checks before it takes the bytes in).
int dv_catalog_room(const dv_catalog_t *self, uint64_t bytes, dv_error_t *err);

// Reserve the next version of name, for a file of bytes: above both the
// stored ones and those already reserved. Returns it, or 0 and DV_EINVAL
// for a bad name, DV_ELIMIT past the version or byte bound, DV_ENOSPC when
// the file would leave the data dir's file system short of its free bytes.
uint32_t dv_catalog_reserve(dv_catalog_t *self,
                            const char *name,
                            uint64_t bytes,
                            dv_error_t *err);
// Give a reservation back (a prepare failed). Unknown ones are ignored.
void dv_catalog_release(dv_catalog_t *self, const char *name, uint32_t v);
// Whether a version of name below v is reserved: its commit or release
// comes first, so versions of a name are stored in the order reserved.
bool dv_catalog_reserved_below(const dv_catalog_t *self,
                               const char *name,
                               uint32_t v);

// Thread-safe: write bytes as dir's file for name@version (the folders
// made as needed) and set *created_us to the file's mtime, which a scan
// reads back. dir NULL: nothing written, *created_us is now. Returns 0 or
// the storage error.
int dv_catalog_write(const dv_catalog_kind_t *kind,
                     const char *dir,
                     const char *name,
                     uint32_t version,
                     const uint8_t *bytes,
                     size_t len,
                     uint64_t *created_us,
                     dv_error_t *err);

// Add a prepared record (copied; what it points at becomes the catalog's)
// and end its reservation. bytes: memory mode's copy (ownership taken;
// freed with a data dir). Returns the stored record (borrowed).
const void *
dv_catalog_commit(dv_catalog_t *self, const void *rec, uint8_t *bytes);
// A prepared record that will not be committed after all: its files are
// removed, what it owns freed (kind->rec_free) and its reservation
// released. Nothing of it remains.
void dv_catalog_discard(dv_catalog_t *self, void *rec);

// Remove a version of name (0: all). With the last version of a name go
// its folder and kind->name_files. Returns how many were removed (> 0),
// kind->missing, or the storage error.
int dv_catalog_rm(dv_catalog_t *self,
                  const char *name,
                  uint32_t version,
                  dv_error_t *err);

// True for names matching [A-Za-z0-9._-]+ of at most DV_MAX_WIRE_NAME
// bytes, other than "." and "..": what may name a folder on disk.
bool dv_catalog_name_valid(const char *name);

// Microseconds since the epoch (the clock records are stamped with).
uint64_t dv_catalog_now_us(void);

#endif
