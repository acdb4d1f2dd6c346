// dv_catalog — named, versioned files for the registry and the data set
// store (see dv_catalog.h).
//
// Records are kept in one byte array sorted by (name, version), each
// kind->rec_size bytes, with the in-memory bytes (memory mode) in a
// parallel array. Lookups are binary searches: every infer submit finds
// its model's version here, and a registry of a few hundred models with
// their versions made a linear scan cost more than the rest of the submit.
// Inserting moves the records after the new one (a push is rare).
#include "dv_catalog.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

#include "dv_file.h"
#include "dv_limits.h"
#include "dv_mem.h"

#define PATH_BYTES 4096

// A version being prepared (reserved, neither committed nor released).
typedef struct {
    char name[DV_MAX_WIRE_NAME + 1]; // reserved name
    uint32_t version;                // and version
    uint64_t bytes;                  // its file's, counted in held
} reservation_t;

struct dv_catalog {
    const dv_catalog_kind_t *kind; // what the records are (borrowed)
    char *dir;                     // data dir, or NULL (memory)
    uint8_t *recs;                 // n records of kind->rec_size, sorted
    uint8_t **bytes;               // memory mode: bytes per record, owned
    size_t n;                      // records
    size_t cap;                    // allocated (records)
    reservation_t *res;            // versions being prepared
    size_t n_res;                  // their count
    uint64_t held;                 // file bytes of records and reservations
    size_t max_versions;           // bounds (dv_catalog_bound)
    uint64_t max_bytes;            //
    uint64_t min_free;             //
};

bool
dv_catalog_name_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    // "." and ".." would be folders of their own on disk.
    return n > 0 && n <= DV_MAX_WIRE_NAME && strcmp(s, ".") != 0 &&
           strcmp(s, "..") != 0;
}

uint64_t
dv_catalog_now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static dv_catalog_head_t *
rec_at(const dv_catalog_t *self, size_t i)
{
    return (dv_catalog_head_t *)(self->recs + i * self->kind->rec_size);
}

// A record's file bytes (kind->bytes_off).
static uint64_t
rec_bytes(const dv_catalog_t *self, const void *rec)
{
    uint64_t b;
    memcpy(&b, (const uint8_t *)rec + self->kind->bytes_off, sizeof b);
    return b;
}

static size_t
index_of(const dv_catalog_t *self, const void *rec)
{
    return (size_t)((const uint8_t *)rec - self->recs) / self->kind->rec_size;
}

static int
cmp_head(const dv_catalog_head_t *a, const char *name, uint32_t version)
{
    int c = strcmp(a->name, name);
    return c ? c : (a->version > version) - (a->version < version);
}

// The first record not below (name, version): where it is, or would go.
static size_t
lower_bound(const dv_catalog_t *self, const char *name, uint32_t version)
{
    size_t lo = 0, hi = self->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_head(rec_at(self, mid), name, version) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static void
insert(dv_catalog_t *self, const void *rec, uint8_t *bytes)
{
    size_t size = self->kind->rec_size;
    if (self->n == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 16;
        self->recs = dv_realloc(self->recs, self->cap * size);
        self->bytes = dv_realloc(self->bytes, self->cap * sizeof *self->bytes);
    }
    const dv_catalog_head_t *h = rec;
    size_t i = lower_bound(self, h->name, h->version);
    memmove(self->recs + (i + 1) * size, self->recs + i * size,
            (self->n - i) * size);
    memmove(&self->bytes[i + 1], &self->bytes[i],
            (self->n - i) * sizeof *self->bytes);
    memcpy(self->recs + i * size, rec, size);
    self->bytes[i] = bytes;
    self->n++;
    self->held += rec_bytes(self, rec);
}

// Drop record i (what it owns is freed by the caller).
static void
remove_at(dv_catalog_t *self, size_t i)
{
    size_t size = self->kind->rec_size;
    self->held -= rec_bytes(self, rec_at(self, i));
    free(self->bytes[i]);
    memmove(self->recs + i * size, self->recs + (i + 1) * size,
            (self->n - i - 1) * size);
    memmove(&self->bytes[i], &self->bytes[i + 1],
            (self->n - i - 1) * sizeof *self->bytes);
    self->n--;
}

void
dv_catalog_path(const dv_catalog_kind_t *kind,
                const char *dir,
                const char *name,
                uint32_t version,
                char *buf,
                size_t size)
{
    if (version) {
        snprintf(buf, size, "%s/%s/%s/%" PRIu32 "%s", dir, kind->folder, name,
                 version, kind->ext);
    } else {
        snprintf(buf, size, "%s/%s/%s", dir, kind->folder, name);
    }
}

dv_catalog_t *
dv_catalog_new(const dv_catalog_kind_t *kind, const char *dir)
{
    dv_catalog_t *self = dv_calloc(1, sizeof *self);
    self->kind = kind;
    self->dir = dir ? dv_strdup(dir) : NULL;
    self->max_versions = DV_MAX_CATALOG_VERSIONS;
    self->max_bytes =
        dir ? DV_MAX_STORED_BYTES_DISK : DV_MAX_STORED_BYTES_MEMORY;
    self->min_free = DV_MIN_FREE_DISK_BYTES;
    return self;
}

void
dv_catalog_bound(dv_catalog_t *self,
                 size_t max_versions,
                 uint64_t max_bytes,
                 uint64_t min_free)
{
    self->max_versions = max_versions ? max_versions : self->max_versions;
    self->max_bytes = max_bytes ? max_bytes : self->max_bytes;
    self->min_free = min_free ? min_free : self->min_free;
}

void
dv_catalog_destroy(dv_catalog_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_catalog_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++) {
        free(self->bytes[i]);
        if (self->kind->rec_free) {
            self->kind->rec_free(rec_at(self, i));
        }
    }
    free(self->bytes);
    free(self->recs);
    free(self->res);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

// The version a file name NAME/VERSION.EXT stands for (0: another file,
// such as the leftover of an interrupted write or a side file).
static uint32_t
file_version(const dv_catalog_kind_t *kind, const char *file)
{
    char *end = NULL;
    unsigned long v = strtoul(file, &end, 10);
    if (file[0] < '1' || file[0] > '9' || strcmp(end, kind->ext) != 0 ||
        v > UINT32_MAX) {
        return 0;
    }
    return (uint32_t)v;
}

// Read, validate and add name@version from its file.
static int
load_version(dv_catalog_t *self,
             const char *name,
             uint32_t version,
             dv_error_t *err)
{
    const dv_catalog_kind_t *kind = self->kind;
    uint8_t *rec = dv_calloc(1, kind->rec_size);
    dv_catalog_head_t *h = (dv_catalog_head_t *)rec;
    snprintf(h->name, sizeof h->name, "%.128s", name);
    h->version = version;
    char file[PATH_BYTES];
    dv_catalog_path(kind, self->dir, name, version, file, sizeof file);
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc = dv_file_read(file, kind->max_bytes, &bytes, &len, err);
    if (rc == 0) {
        rc = kind->describe(bytes, len, rec, err);
        if (rc) {
            char text[DV_ERROR_TEXT_MAX];
            snprintf(text, sizeof text, "%s", err ? err->text : "");
            dv_errorf(err, rc,
                      "%s store %s is damaged: %s (move the file away to "
                      "start without it)",
                      kind->noun, file, text);
        }
    }
    free(bytes);
    if (rc == 0) {
        // As the push gave it: its file's mtime (dv_catalog_write).
        uint64_t created_us = dv_file_mtime_us(file);
        memcpy(rec + kind->created_off, &created_us, sizeof created_us);
        if (kind->load_side) {
            kind->load_side(self->dir, rec);
        }
        insert(self, rec, NULL);
    }
    free(rec);
    return rc;
}

int
dv_catalog_scan(dv_catalog_t *self,
                dv_catalog_name_fn *on_name,
                void *arg,
                dv_error_t *err)
{
    if (!self->dir) {
        return 0;
    }
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/%s", self->dir, self->kind->folder);
    int rc = dv_file_mkdirs(path, 0755, err);
    DIR *d = rc ? NULL : opendir(path);
    if (rc || !d) {
        return rc ? rc : dv_file_error(err, path, errno);
    }
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!dv_catalog_name_valid(e->d_name)) {
            continue;
        }
        char sub[PATH_BYTES];
        dv_catalog_path(self->kind, self->dir, e->d_name, 0, sub, sizeof sub);
        DIR *sd = opendir(sub);
        if (!sd) {
            continue; // a file, not a name's folder
        }
        struct dirent *f;
        while (rc == 0 && (f = readdir(sd)) != NULL) {
            uint32_t v = file_version(self->kind, f->d_name);
            if (v) {
                rc = load_version(self, e->d_name, v, err);
            }
        }
        closedir(sd);
        if (rc == 0 && on_name) {
            rc = on_name(arg, e->d_name, err);
        }
    }
    closedir(d);
    return rc;
}

const char *
dv_catalog_dir(const dv_catalog_t *self)
{
    return self->dir;
}

const void *
dv_catalog_get(const dv_catalog_t *self, const char *name, uint32_t version)
{
    uint32_t v = version ? version : UINT32_MAX;
    size_t i = lower_bound(self, name, v);
    if (i < self->n && cmp_head(rec_at(self, i), name, v) == 0) {
        return rec_at(self, i);
    }
    // The latest: the last record of name, just before where (name,
    // UINT32_MAX) would go.
    if (!version && i > 0 && strcmp(rec_at(self, i - 1)->name, name) == 0) {
        return rec_at(self, i - 1);
    }
    return NULL;
}

const void *
dv_catalog_list(const dv_catalog_t *self, size_t *n)
{
    *n = self->n;
    return self->recs;
}

const uint8_t *
dv_catalog_bytes(const dv_catalog_t *self, const void *rec)
{
    return self->bytes[index_of(self, rec)];
}

int
dv_catalog_room(const dv_catalog_t *self, uint64_t bytes, dv_error_t *err)
{
    const char *noun = self->kind->noun;
    if (self->n + self->n_res >= self->max_versions) {
        return dv_errorf(err, DV_ELIMIT,
                         "the %s store holds %zu versions, the most it "
                         "keeps: remove some first",
                         noun, self->n + self->n_res);
    }
    if (bytes >
        self->max_bytes -
            (self->held < self->max_bytes ? self->held : self->max_bytes)) {
        return dv_errorf(err, DV_ELIMIT,
                         "%" PRIu64 " bytes more would take the %s store "
                         "past %" PRIu64 " bytes (%" PRIu64
                         " held; --max-stored-bytes): remove some first",
                         bytes, noun, self->max_bytes, self->held);
    }
    struct statvfs fs;
    if (self->dir && statvfs(self->dir, &fs) == 0) {
        uint64_t avail = (uint64_t)fs.f_bavail * fs.f_frsize;
        if (avail < bytes || avail - bytes < self->min_free) {
            return dv_errorf(err, DV_ENOSPC,
                             "a %s file of %" PRIu64 " bytes would leave "
                             "less than %" PRIu64 " bytes free where the "
                             "data dir is (%" PRIu64 " free; --min-free-disk: "
                             "the job store needs room)",
                             noun, bytes, self->min_free, avail);
        }
    }
    return 0;
}

uint32_t
dv_catalog_reserve(dv_catalog_t *self,
                   const char *name,
                   uint64_t bytes,
                   dv_error_t *err)
{
    if (!dv_catalog_name_valid(name)) {
        dv_errorf(err, DV_EINVAL,
                  "%s name '%.160s' must match [A-Za-z0-9._-]+ (at most "
                  "%d bytes)",
                  self->kind->noun, name, DV_MAX_WIRE_NAME);
        return 0;
    }
    if (dv_catalog_room(self, bytes, err) != 0) {
        return 0;
    }
    const dv_catalog_head_t *latest = dv_catalog_get(self, name, 0);
    uint32_t v = latest ? latest->version : 0;
    for (size_t i = 0; i < self->n_res; i++) {
        if (strcmp(self->res[i].name, name) == 0 && self->res[i].version > v) {
            v = self->res[i].version;
        }
    }
    self->res = dv_realloc(self->res, (self->n_res + 1) * sizeof *self->res);
    reservation_t *r = &self->res[self->n_res++];
    snprintf(r->name, sizeof r->name, "%s", name);
    r->version = v + 1;
    r->bytes = bytes;
    self->held += bytes;
    return v + 1;
}

void
dv_catalog_release(dv_catalog_t *self, const char *name, uint32_t v)
{
    for (size_t i = 0; i < self->n_res; i++) {
        if (self->res[i].version == v && strcmp(self->res[i].name, name) == 0) {
            self->held -= self->res[i].bytes;
            self->res[i] = self->res[--self->n_res];
            return;
        }
    }
}

bool
dv_catalog_reserved_below(const dv_catalog_t *self,
                          const char *name,
                          uint32_t v)
{
    for (size_t i = 0; i < self->n_res; i++) {
        if (self->res[i].version < v && strcmp(self->res[i].name, name) == 0) {
            return true;
        }
    }
    return false;
}

int
dv_catalog_write(const dv_catalog_kind_t *kind,
                 const char *dir,
                 const char *name,
                 uint32_t version,
                 const uint8_t *bytes,
                 size_t len,
                 uint64_t *created_us,
                 dv_error_t *err)
{
    *created_us = dv_catalog_now_us();
    if (!dir) {
        return 0;
    }
    char path[PATH_BYTES];
    dv_catalog_path(kind, dir, name, 0, path, sizeof path);
    int rc = dv_file_mkdirs(path, 0755, err);
    if (rc == 0) {
        dv_catalog_path(kind, dir, name, version, path, sizeof path);
        rc = dv_file_write_atomic(path, bytes, len, err);
    }
    if (rc == 0) { // what a restart reads back (dv_catalog_scan)
        *created_us = dv_file_mtime_us(path);
    }
    return rc;
}

const void *
dv_catalog_commit(dv_catalog_t *self, const void *rec, uint8_t *bytes)
{
    const dv_catalog_head_t *h = rec;
    dv_catalog_release(self, h->name, h->version);
    insert(self, rec, self->dir ? NULL : bytes);
    if (self->dir) {
        free(bytes);
    }
    return dv_catalog_get(self, h->name, h->version);
}

// Remove rec's file and side files (none in memory mode).
static void
unlink_version(const dv_catalog_t *self, const dv_catalog_head_t *rec)
{
    if (!self->dir) {
        return;
    }
    char path[PATH_BYTES];
    dv_catalog_path(self->kind, self->dir, rec->name, rec->version, path,
                    sizeof path);
    (void)dv_file_unlink(path); // absent when the prepare did not write it
    if (self->kind->unlink_side) {
        self->kind->unlink_side(self->dir, rec);
    }
}

void
dv_catalog_discard(dv_catalog_t *self, void *rec)
{
    dv_catalog_head_t *h = rec;
    unlink_version(self, h);
    if (self->kind->rec_free) {
        self->kind->rec_free(rec);
    }
    dv_catalog_release(self, h->name, h->version);
}

// The last version of name is gone: so go its folder and name files.
static void
rm_name_folder(const dv_catalog_t *self, const char *name)
{
    char path[PATH_BYTES];
    for (const char *const *f = self->kind->name_files; f && *f; f++) {
        snprintf(path, sizeof path, "%s/%s/%s/%s", self->dir,
                 self->kind->folder, name, *f);
        (void)dv_file_unlink(path);
    }
    dv_catalog_path(self->kind, self->dir, name, 0, path, sizeof path);
    (void)dv_file_rmdir(path); // best effort: empty once its versions are gone
}

int
dv_catalog_rm(dv_catalog_t *self,
              const char *name,
              uint32_t version,
              dv_error_t *err)
{
    int removed = 0;
    for (size_t i = 0; i < self->n;) {
        dv_catalog_head_t *r = rec_at(self, i);
        if (strcmp(r->name, name) != 0 || (version && r->version != version)) {
            i++;
            continue;
        }
        if (self->dir) {
            char path[PATH_BYTES];
            dv_catalog_path(self->kind, self->dir, r->name, r->version, path,
                            sizeof path);
            int e = dv_file_unlink(path);
            if (e != 0 && e != ENOENT) {
                return dv_file_error(err, path, e);
            }
            if (self->kind->unlink_side) {
                self->kind->unlink_side(self->dir, r);
            }
        }
        if (self->kind->rec_free) {
            self->kind->rec_free(r);
        }
        remove_at(self, i);
        removed++;
    }
    if (removed == 0) {
        return dv_errorf(err, self->kind->missing, "no %s '%s'%s",
                         self->kind->noun, name,
                         version ? " at that version" : "");
    }
    if (self->dir && !dv_catalog_get(self, name, 0)) {
        rm_name_folder(self, name);
    }
    return removed;
}
