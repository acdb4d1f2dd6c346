// dv_datafiles — a broker group member's model and data set files (see
// dv_datafiles.h).
#include "dv_datafiles.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "dv_file.h"
#include "dv_le.h"

#define PATH_BYTES 4096

// A relative path a peer's entry may name: under models/ or datasets/, no
// "..", no empty or hidden components, printable.
bool
dv_datafiles_path_ok(const char *rel)
{
    if (strncmp(rel, "models/", 7) != 0 && strncmp(rel, "datasets/", 9) != 0) {
        return false;
    }
    for (const char *c = rel; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == '\\') {
            return false;
        }
        if ((c == rel || c[-1] == '/') && (*c == '.' || *c == '/')) {
            return false; // "..", ".x", "//"
        }
    }
    return true;
}

static void
set_mtime(const char *path, uint64_t mtime_us)
{
    if (mtime_us) { // created times come from the files
        struct timeval tv[2] = {
            {(time_t)(mtime_us / 1000000), (suseconds_t)(mtime_us % 1000000)},
            {(time_t)(mtime_us / 1000000), (suseconds_t)(mtime_us % 1000000)}};
        (void)utimes(path, tv);
    }
}

// path.part, whose chunks came before, is whole: it becomes path.
static int
part_done(const char *path,
          uint64_t mtime_us,
          const void *data,
          size_t len,
          dv_error_t *err)
{
    char part[PATH_BYTES + 8];
    if (snprintf(part, sizeof part, "%s.part", path) >= (int)sizeof part) {
        return dv_errorf(err, DV_EFORMAT, "replicated file path too long");
    }
    struct stat st;
    uint64_t want = len == 8 ? dv_le_get64(data) : 0;
    if (len != 8 || stat(part, &st) != 0 || (uint64_t)st.st_size != want) {
        return dv_errorf(err, DV_ETRUNC,
                         "replicated file %s: its chunks do not add up to "
                         "%llu bytes",
                         path, (unsigned long long)want);
    }
    if (rename(part, path) != 0) {
        return dv_file_error(err, path, errno);
    }
    set_mtime(path, mtime_us);
    return 0;
}

// One chunk of a large file into rel.part at offset (the first one starts
// it afresh). Returns 0 or DV_E*.
int
dv_datafiles_chunk(const char *dir,
                   const char *rel,
                   uint64_t offset,
                   const uint8_t *data,
                   size_t len,
                   dv_error_t *err)
{
    if (!dv_datafiles_path_ok(rel)) {
        return dv_errorf(err, DV_EFORMAT, "replicated file path '%s' refused",
                         rel);
    }
    char path[PATH_BYTES + 8];
    char parent[PATH_BYTES + 8];
    if (snprintf(path, sizeof path, "%s/%s.part", dir, rel) >=
            (int)sizeof path ||
        snprintf(parent, sizeof parent, "%s", path) >= (int)sizeof parent) {
        return dv_errorf(err, DV_EFORMAT, "replicated file path too long");
    }
    *strrchr(parent, '/') = '\0';
    int rc = dv_file_mkdirs(parent, 0755, err);
    int fd =
        rc ? -1
           : open(path, O_WRONLY | O_CREAT | (offset ? 0 : O_TRUNC) | O_CLOEXEC,
                  0644);
    if (rc == 0 && fd < 0) {
        rc = dv_file_error(err, path, errno);
    }
    for (size_t done = 0; rc == 0 && done < len;) {
        ssize_t n = pwrite(fd, data + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno != EINTR) {
            rc = dv_file_error(err, path, errno);
        }
        done += n > 0 ? (size_t)n : 0;
    }
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}

// Apply one file change under dir. Returns 0 or DV_E*.
int
dv_datafiles_apply(const char *dir,
                   int op,
                   const char *rel,
                   uint64_t mtime_us,
                   const void *data,
                   size_t len,
                   dv_error_t *err)
{
    if (!dv_datafiles_path_ok(rel)) {
        return dv_errorf(err, DV_EFORMAT, "replicated file path '%s' refused",
                         rel);
    }
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    if (op == DV_FILE_UNLINK) {
        (void)unlink(path);
        return 0;
    }
    if (op == DV_FILE_RMDIR) {
        (void)rmdir(path);
        return 0;
    }
    if (op == DV_DATAFILES_PART_DONE) {
        return part_done(path, mtime_us, data, len, err);
    }
    char parent[PATH_BYTES];
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    *slash = '\0';
    int rc = dv_file_mkdirs(parent, 0755, err);
    if (rc == 0) {
        rc = dv_file_write_atomic(path, data, len, err);
    }
    if (rc == 0) {
        set_mtime(path, mtime_us);
    }
    return rc;
}

// Remove a folder tree (what the log rebuilds). Best effort.
void
dv_datafiles_rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        (void)unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        char sub[PATH_BYTES];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
            dv_datafiles_rm_tree(sub);
        } else {
            (void)unlink(sub);
        }
    }
    closedir(d);
    (void)rmdir(path);
}

void
dv_datafiles_walk(const char *dir,
                  const char *rel,
                  dv_datafiles_visit_fn *visit,
                  void *arg)
{
    char path[PATH_BYTES];
    DIR *d = snprintf(path, sizeof path, "%s/%s", dir, rel) < (int)sizeof path
                 ? opendir(path)
                 : NULL;
    if (!d) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue; // ".", "..", and no hidden names are ours
        }
        char sub_rel[PATH_BYTES], sub[PATH_BYTES];
        struct stat st;
        if (snprintf(sub_rel, sizeof sub_rel, "%s/%s", rel, e->d_name) >=
                (int)sizeof sub_rel ||
            snprintf(sub, sizeof sub, "%s/%s", dir, sub_rel) >=
                (int)sizeof sub ||
            lstat(sub, &st) != 0) {
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            dv_datafiles_walk(dir, sub_rel, visit, arg);
        } else {
            visit(arg, sub_rel, sub, e->d_name, &st);
        }
    }
    closedir(d);
}

static void
drop_part(void *arg,
          const char *rel,
          const char *path,
          const char *name,
          const struct stat *st)
{
    (void)arg, (void)rel, (void)st;
    size_t n = strlen(name);
    if (n > 5 && strcmp(name + n - 5, ".part") == 0) {
        (void)dv_file_unlink(path);
    }
}

// Remove the .part files under DIR/rel: chunks of a transfer whose leader
// stopped before the batch that would have completed it. Through dv_file,
// so the removal reaches the other members with the next entry.
void
dv_datafiles_drop_parts(const char *dir, const char *rel)
{
    dv_datafiles_walk(dir, rel, drop_part, NULL);
}
