// dv_file — whole-file reads and crash-safe writes (see dv_file.h).
#include "dv_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dv_mem.h"

int
dv_file_error(dv_error_t *err, const char *path, int e)
{
    int code;
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        code = DV_ENOENT;
        break;
    case EACCES:
    case EPERM:
    case EROFS:
        code = DV_EACCES;
        break;
    case ENOSPC:
    case EDQUOT:
        code = DV_ENOSPC;
        break;
    default:
        code = DV_EIO;
        break;
    }
    return dv_errorf(err, code, "%s: %s", path, strerror(e));
}

int
dv_file_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int
dv_file_read_all(int fd, void *buf, size_t len, size_t *got)
{
    uint8_t *p = buf;
    *got = 0;
    while (*got < len) {
        ssize_t r = read(fd, p + *got, len - *got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return errno;
        }
        if (r == 0) {
            break; // the file ends (or shrank since its size was read)
        }
        *got += (size_t)r;
    }
    return 0;
}

// Make the rename itself durable. Best effort: some file systems refuse
// fsync on a directory, and the file is complete either way.
static void
sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? dv_strdup(path) : dv_strdup(".");
    if (slash) {
        dir[slash == path ? 1 : slash - path] = '\0';
    }
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

static dv_file_observer_fn *s_observer;
static void *s_observer_arg;

void
dv_file_observe(dv_file_observer_fn *fn, void *arg)
{
    s_observer = fn;
    s_observer_arg = arg;
}

int
dv_file_unlink(const char *path)
{
    if (unlink(path) != 0) {
        return errno;
    }
    if (s_observer) {
        s_observer(DV_FILE_UNLINK, path, NULL, 0, s_observer_arg);
    }
    return 0;
}

int
dv_file_rmdir(const char *path)
{
    if (rmdir(path) != 0) {
        return errno;
    }
    if (s_observer) {
        s_observer(DV_FILE_RMDIR, path, NULL, 0, s_observer_arg);
    }
    return 0;
}

int
dv_file_write_atomic(const char *path,
                     const void *buf,
                     size_t len,
                     dv_error_t *err)
{
    size_t n = strlen(path) + sizeof ".tmp.XXXXXX";
    char *tmp = dv_malloc(n);
    snprintf(tmp, n, "%s.tmp.XXXXXX", path);
    int rc = 0;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = dv_file_error(err, path, errno);
        goto done;
    }
    // mkstemp creates the file 0600; these are ordinary readable files. A
    // failure here leaves it private, which is safe.
    (void)fchmod(fd, 0644);
    int e = dv_file_write_all(fd, buf, len);
    // fsync before rename: after a crash the path holds the old file or the
    // whole new one, never a torn write.
    if (e == 0 && fsync(fd) != 0) {
        e = errno;
    }
    if (close(fd) != 0 && e == 0) {
        e = errno;
    }
    if (e == 0 && rename(tmp, path) != 0) {
        e = errno;
    }
    if (e) {
        unlink(tmp);
        rc = dv_file_error(err, path, e);
        goto done;
    }
    sync_parent(path);
    if (s_observer) {
        s_observer(DV_FILE_PUT, path, buf, len, s_observer_arg);
    }
done:
    free(tmp);
    return rc;
}

int
dv_file_read(const char *path,
             size_t max,
             uint8_t **buf_out,
             size_t *len_out,
             dv_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return dv_file_error(err, path, errno);
    }
    uint8_t *buf = NULL;
    int rc = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = dv_file_error(err, path, errno);
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = dv_errorf(err, DV_EIO, "%s: not a regular file", path);
        goto fail;
    }
    // Checked before allocating: a file's size is data, not a promise.
    if ((uint64_t)st.st_size > (uint64_t)max) {
        rc =
            dv_errorf(err, DV_EMSGSIZE, "%s: %lld bytes, over the limit of %zu",
                      path, (long long)st.st_size, max);
        goto fail;
    }
    size_t size = (size_t)st.st_size, got = 0;
    buf = dv_try_malloc(size ? size : 1, 1);
    if (!buf) {
        rc = dv_errorf(err, DV_ENOMEM, "%s: cannot allocate %zu bytes", path,
                       size);
        goto fail;
    }
    // Shrunk since fstat: fewer bytes, and the caller's decoder sees it.
    int e = dv_file_read_all(fd, buf, size, &got);
    if (e) {
        rc = dv_file_error(err, path, e);
        goto fail;
    }
    *buf_out = buf;
    *len_out = got;
    buf = NULL;
fail:
    free(buf);
    close(fd);
    return rc;
}

uint64_t
dv_file_mtime_us(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? dv_file_stat_mtime_us(&st) : 0;
}

uint64_t
dv_file_stat_mtime_us(const struct stat *st)
{
    return (uint64_t)st->st_mtim.tv_sec * 1000000u +
           (uint64_t)st->st_mtim.tv_nsec / 1000u;
}

int
dv_file_mkdirs(const char *path, unsigned mode, dv_error_t *err)
{
    char *p = dv_strdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        bool end = *s == '\0';
        if (*s == '/' || end) {
            *s = '\0';
            if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST) {
                rc = dv_file_error(err, p, errno);
                break;
            }
            if (end) {
                break;
            }
            *s = '/';
        }
    }
    if (rc == 0) {
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            rc = dv_errorf(err, DV_EIO, "%s: not a directory", path);
        }
    }
    free(p);
    return rc;
}

int
dv_file_read_stream(FILE *f,
                    const char *name,
                    size_t max,
                    uint8_t **buf_out,
                    size_t *len_out,
                    dv_error_t *err)
{
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = dv_malloc(cap);
    for (;;) {
        if (len > max) {
            free(buf);
            return dv_errorf(err, DV_EMSGSIZE,
                             "%s: over the limit of %zu bytes", name, max);
        }
        if (len == cap) {
            uint8_t *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                return dv_errorf(err, DV_ENOMEM,
                                 "%s: cannot allocate %zu bytes", name,
                                 cap * 2);
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            break;
        }
    }
    if (ferror(f)) {
        int e = errno;
        free(buf);
        return dv_errorf(err, DV_EIO, "%s: %s", name, strerror(e));
    }
    *buf_out = buf;
    *len_out = len;
    return 0;
}
