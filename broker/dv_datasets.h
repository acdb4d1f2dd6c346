// dv_datasets — the broker's data sets: named CSV files, each a list of
// immutable versions (1, 2, ...), validated before they are stored (every
// column but the target numeric, as training needs).
//
// With a data dir, versions live as DIR/datasets/NAME/VERSION.csv (written
// atomically) and are found (and validated) again on open; without one
// they are kept in memory.
//
// Threads: one (the broker's loop thread), except dv_datasets_prepare.
#ifndef DV_DATASETS_H
#define DV_DATASETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dv_err.h"
#include "dv_limits.h"
#include "dv_proto.h"
#include "dv_sha256.h"

// Largest data set accepted (bytes of CSV): what a worker parses.
#define DV_MAX_DATASET_BYTES ((uint64_t)DV_MAX_CSV_BYTES)

typedef struct {
    char name[DV_MAX_WIRE_NAME + 1];   // data set name
    uint32_t version;                  // 1, 2, ... per name
    uint8_t sha256[DV_SHA256_BYTES];   // of the CSV bytes
    uint64_t bytes;                    // CSV size
    uint64_t rows;                     // data rows
    uint32_t columns;                  // columns (features + target)
    char target[DV_MAX_WIRE_NAME + 1]; // the column training would take as
                                       // target by default
    uint64_t created_us;               // pushed (unix microseconds)
} dv_dataset_info_t;

typedef struct dv_datasets dv_datasets_t;

// Open under dir (NULL: in memory). Stored versions are validated; a
// damaged one stops the open naming the file. Returns 0 and *out or DV_E*.
int dv_datasets_open(dv_datasets_t **out, const char *dir, dv_error_t *err);
void dv_datasets_destroy(dv_datasets_t **self_p);

// Storing a version in three steps, so the slow part (parsing and writing
// a file of up to 1 GiB) runs off the loop thread: reserve the next version
// of name for a file of bytes (0 and DV_EINVAL for a bad name, DV_ELIMIT /
// DV_ENOSPC past the bounds: dv_catalog), prepare anywhere, then commit or
// release on the loop thread.
uint32_t dv_datasets_reserve(dv_datasets_t *self,
                             const char *name,
                             uint64_t bytes,
                             dv_error_t *err);
// Whether a file of bytes more fits the bounds now (dv_catalog_room).
int
dv_datasets_room(const dv_datasets_t *self, uint64_t bytes, dv_error_t *err);
// Bound what the store keeps (dv_catalog_bound: versions, file bytes, free
// bytes left on the data dir's file system; 0 keeps the default).
void dv_datasets_bound(dv_datasets_t *self,
                       size_t max_versions,
                       uint64_t max_bytes,
                       uint64_t min_free);
void dv_datasets_release(dv_datasets_t *self, const char *name, uint32_t v);
// The folder (NULL in memory mode), to copy for dv_datasets_prepare.
const char *dv_datasets_dir(const dv_datasets_t *self);
// Thread-safe: check csv against sha256 (DV_ECHECKSUM), validate it
// (DV_EFORMAT naming line and column, DV_EMSGSIZE), fill *info and write
// dir/datasets/NAME/VERSION.csv (dir NULL: nothing written).
int dv_datasets_prepare(const char *dir,
                        const char *name,
                        uint32_t version,
                        const uint8_t *csv,
                        size_t len,
                        const uint8_t *sha256,
                        dv_dataset_info_t *info,
                        dv_error_t *err);
// Add a prepared version; csv (malloc'd) is kept in memory mode, else
// freed. Returns the record (borrowed).
const dv_dataset_info_t *dv_datasets_commit(dv_datasets_t *self,
                                            const dv_dataset_info_t *info,
                                            uint8_t *csv);
// A prepared version that will not be committed after all (refused when
// it came to be stored): the file dv_datasets_prepare wrote is removed and
// the reservation released. csv is not touched (the caller frees it).
void dv_datasets_discard(dv_datasets_t *self, const dv_dataset_info_t *info);

// Thread-safe: check csv against sha256 (NULL: no check; DV_ECHECKSUM),
// validate it as training data (every column but the target numeric:
// DV_EFORMAT naming line and column; DV_EMSGSIZE) and fill info's figures
// (not its name, version or time).
int dv_datasets_check(const uint8_t *csv,
                      size_t len,
                      const uint8_t *sha256,
                      dv_dataset_info_t *info,
                      dv_error_t *err);

// Version of name (0: the latest), or NULL.
const dv_dataset_info_t *
dv_datasets_get(const dv_datasets_t *self, const char *name, uint32_t version);

// Every version, sorted by name then version (borrowed).
const dv_dataset_info_t *dv_datasets_list(const dv_datasets_t *self, size_t *n);

// Remove a version (0: all). Returns the number removed or DV_ENOENT.
int dv_datasets_rm(dv_datasets_t *self,
                   const char *name,
                   uint32_t version,
                   dv_error_t *err);

// Workers fetch a version in chunks of at most `max` bytes from `offset`
// (what `dataset_data` carries). In memory mode the chunk is copied here,
// on the loop thread; with a dir *in_file is set instead and the caller
// reads it with dv_datasets_read_file, anywhere. Returns 0 and *out (caller
// frees) / *len, or DV_ENOENT (no such version), DV_EINVAL (offset past
// the end).
int dv_datasets_chunk(const dv_datasets_t *self,
                      const dv_dataset_info_t *r,
                      uint64_t offset,
                      size_t max,
                      uint8_t **out,
                      size_t *len,
                      bool *in_file,
                      dv_error_t *err);
// Thread-safe: bytes [offset, offset + max) of dir/datasets/NAME/V.csv
// (fewer at its end). Returns 0 and *out (caller frees) / *len, or the
// read error (DV_ENOENT once the version is removed).
int dv_datasets_read_file(const char *dir,
                          const char *name,
                          uint32_t version,
                          uint64_t offset,
                          size_t max,
                          uint8_t **out,
                          size_t *len,
                          dv_error_t *err);

#endif
