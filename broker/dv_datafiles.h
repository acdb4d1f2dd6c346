// dv_datafiles — a broker group member's model and data set files: the
// changes replicated entries carry, applied under the data folder.
//
// Paths come from other members' entries, so each is checked
// (dv_datafiles_path_ok) before anything is written. Writes are atomic
// (tmp + rename) or, for a large file's chunks, into NAME.part until the
// batch that completes it renames it.
//
// May call: common/. Threads: the loop thread (applying entries), and the
// snapshot walk's checks on the pool (dv_datafiles_path_ok is pure;
// dv_datafiles_walk keeps no state of its own).
#ifndef DV_DATAFILES_H
#define DV_DATAFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "dv_err.h"

// File ops of batch entries only (beside dv_file's DV_FILE_*). PART_DONE
// (logs of earlier versions only): NAME.part, whose chunks came before,
// becomes NAME; its data is the size, u64 LE. REF: NAME is the blob whose
// SHA-256 and size (u64 LE) are its data (dv_repl applies it: dv_blobs).
#define DV_DATAFILES_PART_DONE 4
#define DV_DATAFILES_REF       5
#define DV_DATAFILES_REF_BYTES 40

// A relative path a peer's entry may name: under models/ or datasets/, no
// "..", no empty or hidden components, printable.
bool dv_datafiles_path_ok(const char *rel);

// Apply one change (DV_FILE_PUT / _UNLINK / _RMDIR, or
// DV_DATAFILES_PART_DONE) to rel under dir; puts and completed files get
// mtime_us (created times come from the files). Returns 0 or DV_E*.
int dv_datafiles_apply(const char *dir,
                       int op,
                       const char *rel,
                       uint64_t mtime_us,
                       const void *data,
                       size_t len,
                       dv_error_t *err);

// One chunk of a large file into rel.part at offset (offset 0 starts it
// afresh). Returns 0 or DV_E*.
int dv_datafiles_chunk(const char *dir,
                       const char *rel,
                       uint64_t offset,
                       const uint8_t *data,
                       size_t len,
                       dv_error_t *err);

// Remove a folder tree (what the log rebuilds). Best effort.
void dv_datafiles_rm_tree(const char *path);

// Called for each file below a walked folder: its path relative to the
// walk's dir (rel), its full path, its name, and what lstat said of it.
typedef void(dv_datafiles_visit_fn)(void *arg,
                                    const char *rel,
                                    const char *path,
                                    const char *name,
                                    const struct stat *st);

// Call visit for everything below dir/rel that is not a folder (symbolic
// links and other non-regular entries included: visit judges), depth
// first in readdir order. Names starting with '.' are none of ours and are
// skipped (with what is below them), as are paths too long to name and
// entries gone before lstat.
void dv_datafiles_walk(const char *dir,
                       const char *rel,
                       dv_datafiles_visit_fn *visit,
                       void *arg);

// Remove the .part files under dir/rel through dv_file (so a leader's
// removal reaches the other members with its next entry).
void dv_datafiles_drop_parts(const char *dir, const char *rel);

#endif
