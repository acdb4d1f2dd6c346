// dv_datasets — the broker's data sets (see dv_datasets.h). Records sorted
// by (name, version) in a dv_catalog (as the model registry's), with the
// CSV bytes beside them in memory mode; what is a data set's own is here:
// validation (dv_datasets_check) and reading a version in chunks.
#include "dv_datasets.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dv_catalog.h"
#include "dv_csv.h"
#include "dv_file.h"
#include "dv_mem.h"

#define PATH_BYTES 4096

struct dv_datasets {
    dv_catalog_t *cat; // the versions (records: dv_dataset_info_t)
};

// A data set record for dv_catalog: validated as training data.
static int
describe(const uint8_t *csv, size_t len, void *rec, dv_error_t *err)
{
    return dv_datasets_check(csv, len, NULL, rec, err);
}

_Static_assert(offsetof(dv_dataset_info_t, version) ==
                   offsetof(dv_catalog_head_t, version),
               "a data set record starts with a catalog head");

static const dv_catalog_kind_t KIND = {
    .noun = "data set",
    .folder = "datasets",
    .ext = ".csv",
    .rec_size = sizeof(dv_dataset_info_t),
    .max_bytes = DV_MAX_DATASET_BYTES,
    .created_off = offsetof(dv_dataset_info_t, created_us),
    .bytes_off = offsetof(dv_dataset_info_t, bytes),
    .missing = DV_ENOENT,
    .describe = describe,
};

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

int
dv_datasets_open(dv_datasets_t **out, const char *dir, dv_error_t *err)
{
    dv_datasets_t *self = dv_calloc(1, sizeof *self);
    self->cat = dv_catalog_new(&KIND, dir);
    int rc = dv_catalog_scan(self->cat, NULL, NULL, err);
    if (rc) {
        dv_datasets_destroy(&self);
        return rc;
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
    dv_catalog_destroy(&(*self_p)->cat);
    free(*self_p);
    *self_p = NULL;
}

const dv_dataset_info_t *
dv_datasets_get(const dv_datasets_t *self, const char *name, uint32_t version)
{
    return dv_catalog_get(self->cat, name, version);
}

uint32_t
dv_datasets_reserve(dv_datasets_t *self,
                    const char *name,
                    uint64_t bytes,
                    dv_error_t *err)
{
    return dv_catalog_reserve(self->cat, name, bytes, err);
}

int
dv_datasets_room(const dv_datasets_t *self, uint64_t bytes, dv_error_t *err)
{
    return dv_catalog_room(self->cat, bytes, err);
}

void
dv_datasets_bound(dv_datasets_t *self,
                  size_t max_versions,
                  uint64_t max_bytes,
                  uint64_t min_free)
{
    dv_catalog_bound(self->cat, max_versions, max_bytes, min_free);
}

void
dv_datasets_release(dv_datasets_t *self, const char *name, uint32_t v)
{
    dv_catalog_release(self->cat, name, v);
}

const char *
dv_datasets_dir(const dv_datasets_t *self)
{
    return dv_catalog_dir(self->cat);
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
    if (rc) {
        info->created_us = dv_catalog_now_us();
        return rc;
    }
    return dv_catalog_write(&KIND, dir, name, version, csv, len,
                            &info->created_us, err);
}

const dv_dataset_info_t *
dv_datasets_commit(dv_datasets_t *self,
                   const dv_dataset_info_t *info,
                   uint8_t *csv)
{
    return dv_catalog_commit(self->cat, info, csv);
}

void
dv_datasets_discard(dv_datasets_t *self, const dv_dataset_info_t *info)
{
    dv_dataset_info_t copy = *info; // records own nothing: a copy will do
    dv_catalog_discard(self->cat, &copy);
}

const dv_dataset_info_t *
dv_datasets_list(const dv_datasets_t *self, size_t *n)
{
    return dv_catalog_list(self->cat, n);
}

int
dv_datasets_rm(dv_datasets_t *self,
               const char *name,
               uint32_t version,
               dv_error_t *err)
{
    return dv_catalog_rm(self->cat, name, version, err);
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
    if (dv_catalog_dir(self->cat)) {
        *in_file = true;
        return 0;
    }
    uint64_t left = r->bytes - offset;
    *len = left < max ? (size_t)left : max;
    *out = dv_malloc(*len ? *len : 1);
    memcpy(*out, dv_catalog_bytes(self->cat, r) + offset, *len);
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
    dv_catalog_path(&KIND, dir, name, version, path, sizeof path);
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
