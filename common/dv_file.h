// dv_file — whole-file reads and crash-safe writes, with errors that name
// the path and map errno to DV_E* (ENOENT -> DV_ENOENT, EACCES/EPERM/EROFS
// -> DV_EACCES, ENOSPC/EDQUOT -> DV_ENOSPC, else DV_EIO).
//
// Used by the model file codec and the broker's registry. Threads: any.
#ifndef DV_FILE_H
#define DV_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "dv_err.h"

// Write buf to path atomically: a temporary file in the same folder, fsync,
// rename, fsync of the folder (best effort). After a crash path holds the
// old file or the whole new one, never a torn write. Mode 0644. Returns 0 or
// DV_E* naming the path.
int dv_file_write_atomic(const char *path,
                         const void *buf,
                         size_t len,
                         dv_error_t *err);

// Read the regular file at path into a new buffer (caller frees; *len gets
// its size). The size is checked against max before allocating: larger is
// DV_EMSGSIZE. Returns 0 or DV_E* naming the path.
int dv_file_read(
    const char *path, size_t max, uint8_t **buf, size_t *len, dv_error_t *err);

// mkdir -p with mode 0755 (0700 for nothing: the caller picks). Returns 0
// or DV_E* naming the path.
int dv_file_mkdirs(const char *path, unsigned mode, dv_error_t *err);

// Read all of f (a pipe, standard input, any stream of unknown size) into
// a new buffer (caller frees; *len its size), at most max bytes: more is
// DV_EMSGSIZE. name is what reasons call it ("stdin", a path). Returns 0,
// DV_EMSGSIZE, DV_ENOMEM or DV_EIO.
int dv_file_read_stream(FILE *f,
                        const char *name,
                        size_t max,
                        uint8_t **buf,
                        size_t *len,
                        dv_error_t *err);

// An errno value as a DV_E* with "path: strerror" as the reason.
int dv_file_error(dv_error_t *err, const char *path, int e);

// The modification time of path in unix microseconds (0 when it cannot be
// read). The registry and data set store take a version's created time from
// its file, so it reads back the same after a restart.
uint64_t dv_file_mtime_us(const char *path);

// The same from a stat the caller already has.
uint64_t dv_file_stat_mtime_us(const struct stat *st);

// A process-wide observer of the changes made through dv_file_write_atomic,
// dv_file_unlink and dv_file_rmdir: a broker group replicates the model and
// data set files of its data folder that way (broker/dv_repl.h). op is one
// of DV_FILE_PUT (buf, len: the whole new file), DV_FILE_UNLINK, DV_FILE_RMDIR;
// called on the thread that made the change, after it succeeded. NULL: none.
enum { DV_FILE_PUT = 1, DV_FILE_UNLINK = 2, DV_FILE_RMDIR = 3 };
typedef void(dv_file_observer_fn)(
    int op, const char *path, const void *buf, size_t len, void *arg);
void dv_file_observe(dv_file_observer_fn *fn, void *arg);

// unlink(2) and rmdir(2) that the observer sees. Return 0 or the errno
// value (ENOENT included: nothing was there).
int dv_file_unlink(const char *path);
int dv_file_rmdir(const char *path);

// Write all len bytes of p to fd (retrying short writes and EINTR).
// Returns 0 or the errno value.
int dv_file_write_all(int fd, const void *p, size_t len);

// Read len bytes from fd into p, or fewer where the file ends first
// (retrying short reads and EINTR); *got: the bytes read (also on error).
// Returns 0 or the errno value.
int dv_file_read_all(int fd, void *p, size_t len, size_t *got);

#endif
