// dv_datasets — the broker's data sets (see dv_datasets.h). Records sorted
// by (name, version) in one array, with the CSV bytes beside them in
// memory mode; the same shape as dv_registry.
#include "dv_datasets.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "dv_csv.h"
#include "dv_file.h"
#include "dv_mem.h"
#include "dv_registry.h" // dv_name_valid

#define PATH_BYTES 4096

typedef struct {
    char name[DV_MAX_WIRE_NAME + 1];
    uint32_t version;
} reserved_t;

struct dv_datasets {
    char *dir;                // data dir or NULL
    dv_dataset_info_t *infos; // sorted by name, version
    uint8_t **csvs;           // memory mode: the bytes, owned
    size_t n, cap;            //
    reserved_t *res;          // versions being prepared
    size_t n_res;             //
};

static void
path_of(const char *dir, const char *name, uint32_t v, char *buf, size_t size)
{
    if (v) {
        snprintf(buf, size, "%s/datasets/%s/%" PRIu32 ".csv", dir, name, v);
    } else {
        snprintf(buf, size, "%s/datasets/%s", dir, name);
    }
}

static int
cmp_info(const dv_dataset_info_t *a, const char *name, uint32_t version)
{
    int c = strcmp(a->name, name);
    return c ? c : (a->version > version) - (a->version < version);
}

static void
insert(dv_datasets_t *self, const dv_dataset_info_t *info, uint8_t *csv)
{
    if (self->n == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 16;
        self->infos = dv_realloc(self->infos, self->cap * sizeof *self->infos);
        self->csvs = dv_realloc(self->csvs, self->cap * sizeof *self->csvs);
    }
    size_t i = 0;
    while (i < self->n &&
           cmp_info(&self->infos[i], info->name, info->version) < 0) {
        i++;
    }
    memmove(&self->infos[i + 1], &self->infos[i],
            (self->n - i) * sizeof *self->infos);
    memmove(&self->csvs[i + 1], &self->csvs[i],
            (self->n - i) * sizeof *self->csvs);
    self->infos[i] = *info;
    self->csvs[i] = csv;
    self->n++;
}

int
dv_datasets_check(const uint8_t *csv,
                  size_t len,
                  const uint8_t *sha256,
                  dv_dataset_info_t *info,
                  dv_error_t *err)
{
    uint8_t sum[DV_SHA256_BYTES];
    dv_sha256(csv, len, sum);
    if (sha256 && memcmp(sum, sha256, sizeof sum) != 0) {
        return dv_errorf(err, DV_ECHECKSUM,
                         "the data set's SHA-256 does not match the one "
                         "announced (damaged in transit?)");
    }
    if (len > DV_MAX_DATASET_BYTES) {
        return dv_errorf(err, DV_EMSGSIZE,
                         "data set of %zu bytes: at most "
                         "%llu",
                         len, (unsigned long long)DV_MAX_DATASET_BYTES);
    }
    dv_dataset_t *ds = NULL;
    dv_csv_opts_t o = {0};
    int rc = dv_csv_parse(&ds, (const char *)csv, len, &o, err);
    if (rc) {
        return rc;
    }
    memcpy(info->sha256, sum, sizeof sum);
    info->bytes = len;
    info->rows = ds->n_rows;
    info->columns = (uint32_t)ds->n_features + (ds->target_name ? 1 : 0);
    snprintf(info->target, sizeof info->target, "%.128s",
             ds->target_name ? ds->target_name : "");
    dv_dataset_destroy(&ds);
    return 0;
}

static uint64_t
now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static int
scan(dv_datasets_t *self, dv_error_t *err)
{
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/datasets", self->dir);
    int rc = dv_file_mkdirs(path, 0755, err);
    DIR *d = rc ? NULL : opendir(path);
    if (rc || !d) {
        return rc ? rc : dv_file_error(err, path, errno);
    }
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!dv_name_valid(e->d_name)) {
            continue;
        }
        char sub[PATH_BYTES];
        path_of(self->dir, e->d_name, 0, sub, sizeof sub);
        DIR *sd = opendir(sub);
        if (!sd) {
            continue;
        }
        struct dirent *f;
        while (rc == 0 && (f = readdir(sd)) != NULL) {
            char *end = NULL;
            unsigned long v = strtoul(f->d_name, &end, 10);
            if (f->d_name[0] < '1' || f->d_name[0] > '9' ||
                strcmp(end, ".csv") != 0 || v > UINT32_MAX) {
                continue;
            }
            dv_dataset_info_t info = {0};
            snprintf(info.name, sizeof info.name, "%.128s", e->d_name);
            info.version = (uint32_t)v;
            char file[PATH_BYTES];
            path_of(self->dir, info.name, info.version, file, sizeof file);
            uint8_t *csv = NULL;
            size_t len = 0;
            rc = dv_file_read(file, DV_MAX_DATASET_BYTES, &csv, &len, err);
            if (rc == 0) {
                rc = dv_datasets_check(csv, len, NULL, &info, err);
                if (rc) {
                    char text[DV_ERROR_TEXT_MAX];
                    snprintf(text, sizeof text, "%s", err ? err->text : "");
                    dv_errorf(err, rc,
                              "data set store %s is damaged: %s (move the "
                              "file away to start without it)",
                              file, text);
                }
            }
            free(csv);
            if (rc == 0) { // as the push gave it (its file's mtime)
                info.created_us = dv_file_mtime_us(file);
                insert(self, &info, NULL);
            }
        }
        closedir(sd);
    }
    closedir(d);
    return rc;
}

int
dv_datasets_open(dv_datasets_t **out, const char *dir, dv_error_t *err)
{
    dv_datasets_t *self = dv_calloc(1, sizeof *self);
    if (dir) {
        self->dir = dv_strdup(dir);
        int rc = scan(self, err);
        if (rc) {
            dv_datasets_destroy(&self);
            return rc;
        }
    }
    *out = self;
    return 0;
}

void
dv_datasets_destroy(dv_datasets_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_datasets_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++) {
        free(self->csvs[i]);
    }
    free(self->csvs);
    free(self->infos);
    free(self->res);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

const dv_dataset_info_t *
dv_datasets_get(const dv_datasets_t *self, const char *name, uint32_t version)
{
    const dv_dataset_info_t *found = NULL;
    for (size_t i = 0; i < self->n; i++) {
        if (strcmp(self->infos[i].name, name) == 0 &&
            (!version || self->infos[i].version == version)) {
            found = &self->infos[i]; // sorted: the last match is the latest
        }
    }
    return found;
}

uint32_t
dv_datasets_reserve(dv_datasets_t *self, const char *name, dv_error_t *err)
{
    if (!dv_name_valid(name)) {
        dv_errorf(err, DV_EINVAL,
                  "data set name '%.160s' must match [A-Za-z0-9._-]+", name);
        return 0;
    }
    const dv_dataset_info_t *latest = dv_datasets_get(self, name, 0);
    uint32_t v = latest ? latest->version : 0;
    for (size_t i = 0; i < self->n_res; i++) {
        if (strcmp(self->res[i].name, name) == 0 && self->res[i].version > v) {
            v = self->res[i].version;
        }
    }
    self->res = dv_realloc(self->res, (self->n_res + 1) * sizeof *self->res);
    snprintf(self->res[self->n_res].name, sizeof self->res[0].name, "%s", name);
    self->res[self->n_res++].version = v + 1;
    return v + 1;
}

void
dv_datasets_release(dv_datasets_t *self, const char *name, uint32_t v)
{
    for (size_t i = 0; i < self->n_res; i++) {
        if (self->res[i].version == v && strcmp(self->res[i].name, name) == 0) {
            self->res[i] = self->res[--self->n_res];
            return;
        }
    }
}

const char *
dv_datasets_dir(const dv_datasets_t *self)
{
    return self->dir;
}

int
dv_datasets_prepare(const char *dir,
                    const char *name,
                    uint32_t version,
                    const uint8_t *csv,
                    size_t len,
                    const uint8_t *sha256,
                    dv_dataset_info_t *info,
                    dv_error_t *err)
{
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", name);
    info->version = version;
    int rc = dv_datasets_check(csv, len, sha256, info, err);
    info->created_us = now_us();
    if (rc == 0 && dir) {
        char path[PATH_BYTES];
        path_of(dir, name, 0, path, sizeof path);
        rc = dv_file_mkdirs(path, 0755, err);
        if (rc == 0) {
            path_of(dir, name, version, path, sizeof path);
            rc = dv_file_write_atomic(path, csv, len, err);
        }
        if (rc == 0) { // what a restart reads back (scan)
            info->created_us = dv_file_mtime_us(path);
        }
    }
    return rc;
}

const dv_dataset_info_t *
dv_datasets_commit(dv_datasets_t *self,
                   const dv_dataset_info_t *info,
                   uint8_t *csv)
{
    dv_datasets_release(self, info->name, info->version);
    insert(self, info, self->dir ? NULL : csv);
    if (self->dir) {
        free(csv);
    }
    return dv_datasets_get(self, info->name, info->version);
}

void
dv_datasets_discard(dv_datasets_t *self, const dv_dataset_info_t *info)
{
    if (self->dir) {
        char path[PATH_BYTES];
        path_of(self->dir, info->name, info->version, path, sizeof path);
        (void)unlink(path); // absent when the prepare did not write it
    }
    dv_datasets_release(self, info->name, info->version);
}

const dv_dataset_info_t *
dv_datasets_list(const dv_datasets_t *self, size_t *n)
{
    *n = self->n;
    return self->infos;
}

int
dv_datasets_rm(dv_datasets_t *self,
               const char *name,
               uint32_t version,
               dv_error_t *err)
{
    int removed = 0;
    for (size_t i = 0; i < self->n;) {
        dv_dataset_info_t *r = &self->infos[i];
        if (strcmp(r->name, name) != 0 || (version && r->version != version)) {
            i++;
            continue;
        }
        if (self->dir) {
            char path[PATH_BYTES];
            path_of(self->dir, r->name, r->version, path, sizeof path);
            if (unlink(path) != 0 && errno != ENOENT) {
                return dv_file_error(err, path, errno);
            }
        }
        free(self->csvs[i]);
        memmove(&self->infos[i], &self->infos[i + 1],
                (self->n - i - 1) * sizeof *self->infos);
        memmove(&self->csvs[i], &self->csvs[i + 1],
                (self->n - i - 1) * sizeof *self->csvs);
        self->n--;
        removed++;
    }
    if (!removed) {
        return dv_errorf(err, DV_ENOENT, "no data set '%s'%s", name,
                         version ? " at that version" : "");
    }
    if (self->dir && !dv_datasets_get(self, name, 0)) {
        char path[PATH_BYTES];
        path_of(self->dir, name, 0, path, sizeof path);
        (void)rmdir(path);
    }
    return removed;
}

int
dv_datasets_chunk(const dv_datasets_t *self,
                  const dv_dataset_info_t *r,
                  uint64_t offset,
                  size_t max,
                  uint8_t **out,
                  size_t *len,
                  bool *in_file,
                  dv_error_t *err)
{
    *out = NULL;
    *len = 0;
    *in_file = false;
    if (offset > r->bytes || (offset == r->bytes && r->bytes > 0)) {
        return dv_errorf(err, DV_EINVAL,
                         "data set %s@%" PRIu32 " has %" PRIu64
                         " bytes: no chunk at %" PRIu64,
                         r->name, r->version, r->bytes, offset);
    }
    if (self->dir) {
        *in_file = true;
        return 0;
    }
    size_t i = (size_t)(r - self->infos);
    uint64_t left = r->bytes - offset;
    *len = left < max ? (size_t)left : max;
    *out = dv_malloc(*len ? *len : 1);
    memcpy(*out, self->csvs[i] + offset, *len);
    return 0;
}

int
dv_datasets_read_file(const char *dir,
                      const char *name,
                      uint32_t version,
                      uint64_t offset,
                      size_t max,
                      uint8_t **out,
                      size_t *len,
                      dv_error_t *err)
{
    char path[PATH_BYTES];
    path_of(dir, name, version, path, sizeof path);
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return dv_file_error(err, path, errno);
    }
    uint8_t *buf = dv_try_malloc(max ? max : 1, 1);
    if (!buf) {
        close(fd);
        return dv_errorf(err, DV_ENOMEM, "no memory for a %zu byte chunk", max);
    }
    size_t got = 0;
    while (got < max) {
        ssize_t n = pread(fd, buf + got, max - got, (off_t)(offset + got));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int e = errno;
            close(fd);
            free(buf);
            return dv_file_error(err, path, e);
        }
        if (n == 0) {
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    *out = buf;
    *len = got;
    return 0;
}
