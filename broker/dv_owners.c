// dv_owners — name owners and readers (see dv_owners.h). An array of
// names found through a hash index: a producer may make 100,000 names
// (DV_MAX_CATALOG_VERSIONS), and dataset_list asks once per data set, so a
// linear search made one list O(n^2), seconds of the loop. Readers (at
// most DV_MAX_READERS a name) are searched linearly.
#include "dv_owners.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dv_catalog.h"
#include "dv_file.h"
#include "dv_keys.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_names.h"
#include "dv_proto.h"

#define PATH_BYTES 4096

#define READERS_FILE_MAX (DV_MAX_READERS * (DV_KEY_ID_MAX + 1))

typedef char key_id_t[DV_KEY_ID_MAX + 1];

typedef struct {
    char name[DV_MAX_WIRE_NAME + 1];
    char owner[DV_KEY_ID_MAX + 1];
    key_id_t *readers; // shared with (owned; "*": every key)
    size_t n_readers;  // entries in readers
} entry_t;

struct dv_owners {
    char *dir; // NULL: memory only
    entry_t *entries;
    size_t n, cap;
    dv_names_t *index; // name -> its place in entries
};

static entry_t *
find(const dv_owners_t *self, const char *name)
{
    size_t i = dv_names_find(self->index, name);
    return i == SIZE_MAX ? NULL : &self->entries[i];
}

static void
put(dv_owners_t *self, const char *name, const char *owner)
{
    entry_t *e = find(self, name);
    if (!e) {
        if (self->n == self->cap) {
            self->cap = self->cap ? 2 * self->cap : 16;
            self->entries =
                dv_realloc(self->entries, self->cap * sizeof *self->entries);
        }
        e = &self->entries[self->n];
        memset(e, 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "%s", name);
        dv_names_add(self->index, e->name, self->n++);
    }
    snprintf(e->owner, sizeof e->owner, "%s", owner);
}

// A reader id as dataset_share takes it: a key id, or "*".
static bool
reader_valid(const char *id)
{
    return strcmp(id, "*") == 0 ||
           (strlen(id) <= DV_KEY_ID_MAX && dv_catalog_name_valid(id));
}

// Replace e's readers with n of them (checked by the caller).
static void
set_readers(entry_t *e, char *const *readers, size_t n)
{
    free(e->readers);
    e->readers = n ? dv_calloc(n, sizeof *e->readers) : NULL;
    e->n_readers = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(e->readers[i], sizeof e->readers[i], "%s", readers[i]);
    }
}

// DIR/NAME/readers into e (a missing file: none). Lines that are not a
// reader id are skipped (the file is ours; a hand edit loses only itself).
static int
load_readers(entry_t *e, const char *path, dv_error_t *err)
{
    if (access(path, F_OK) != 0) {
        return 0;
    }
    uint8_t *text = NULL;
    size_t len = 0;
    int rc = dv_file_read(path, READERS_FILE_MAX, &text, &len, err);
    if (rc) {
        return rc;
    }
    char *lines = dv_malloc(len + 1);
    memcpy(lines, text, len);
    lines[len] = '\0';
    free(text);
    char *ids[DV_MAX_READERS];
    size_t n = 0;
    char *save = NULL;
    for (char *id = strtok_r(lines, "\r\n", &save); id && n < DV_MAX_READERS;
         id = strtok_r(NULL, "\r\n", &save)) {
        if (reader_valid(id)) {
            ids[n++] = id;
        }
    }
    set_readers(e, ids, n);
    free(lines);
    return 0;
}

int
dv_owners_open(dv_owners_t **out, const char *dir, dv_error_t *err)
{
    dv_owners_t *self = dv_calloc(1, sizeof *self);
    self->dir = dir ? dv_strdup(dir) : NULL;
    self->index = dv_names_new();
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    int rc = 0;
    while (d && rc == 0 && (e = readdir(d)) != NULL) {
        if (!dv_catalog_name_valid(e->d_name)) {
            continue;
        }
        char path[PATH_BYTES];
        snprintf(path, sizeof path, "%s/%s/owner", dir, e->d_name);
        if (access(path, F_OK) != 0) {
            continue;
        }
        uint8_t *text = NULL;
        size_t len = 0;
        rc = dv_file_read(path, DV_KEY_ID_MAX, &text, &len, err);
        if (rc == 0) {
            char owner[DV_KEY_ID_MAX + 1];
            snprintf(owner, sizeof owner, "%.*s", (int)len, (char *)text);
            owner[strcspn(owner, "\r\n")] = '\0';
            if (owner[0]) {
                put(self, e->d_name, owner);
                snprintf(path, sizeof path, "%s/%s/readers", dir, e->d_name);
                rc = load_readers(find(self, e->d_name), path, err);
            }
        }
        free(text);
    }
    if (d) {
        closedir(d);
    }
    if (rc) {
        dv_owners_destroy(&self);
        return rc;
    }
    *out = self;
    return 0;
}

void
dv_owners_destroy(dv_owners_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    for (size_t i = 0; i < (*self_p)->n; i++) {
        free((*self_p)->entries[i].readers);
    }
    free((*self_p)->dir);
    free((*self_p)->entries);
    dv_names_destroy(&(*self_p)->index);
    free(*self_p);
    *self_p = NULL;
}

const char *
dv_owners_get(const dv_owners_t *self, const char *name)
{
    const entry_t *e = find(self, name);
    return e ? e->owner : NULL;
}

int
dv_owners_set(dv_owners_t *self,
              const char *name,
              const char *owner,
              dv_error_t *err)
{
    if (self->dir) {
        char path[PATH_BYTES];
        snprintf(path, sizeof path, "%s/%s", self->dir, name);
        int rc = dv_file_mkdirs(path, 0755, err);
        if (rc) {
            return rc;
        }
        snprintf(path, sizeof path, "%s/%s/owner", self->dir, name);
        char line[DV_KEY_ID_MAX + 2];
        int n = snprintf(line, sizeof line, "%s\n", owner);
        rc = dv_file_write_atomic(path, line, (size_t)n, err);
        if (rc) {
            return rc;
        }
    }
    put(self, name, owner);
    return 0;
}

void
dv_owners_forget(dv_owners_t *self, const char *name)
{
    entry_t *e = find(self, name);
    if (e) { // the last entry takes its place
        size_t i = (size_t)(e - self->entries);
        free(e->readers);
        dv_names_remove(self->index, name);
        *e = self->entries[--self->n];
        if (i != self->n) {
            dv_names_add(self->index, e->name, i);
        }
    }
    if (self->dir) {
        char path[PATH_BYTES];
        snprintf(path, sizeof path, "%s/%s/readers", self->dir, name);
        (void)dv_file_unlink(path);
        snprintf(path, sizeof path, "%s/%s/owner", self->dir, name);
        (void)dv_file_unlink(path);
        snprintf(path, sizeof path, "%s/%s", self->dir, name);
        (void)dv_file_rmdir(
            path); // best effort: empty once its versions are gone
    }
}

int
dv_owners_share(dv_owners_t *self,
                const char *name,
                char *const *readers,
                size_t n,
                dv_error_t *err)
{
    entry_t *e = find(self, name);
    if (!e) {
        return dv_errorf(err, DV_ENOENT,
                         "'%s' has no owner (stored without keys, or not "
                         "at all): every key reads it already",
                         name);
    }
    if (n > DV_MAX_READERS) {
        return dv_errorf(err, DV_EINVAL,
                         "%zu readers: a name is shared with at most %d keys "
                         "(or \"*\": every key)",
                         n, DV_MAX_READERS);
    }
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (!reader_valid(readers[i])) {
            return dv_errorf(err, DV_EINVAL,
                             "reader '%.80s' is not a key id "
                             "([A-Za-z0-9._-], at most %d bytes) or \"*\"",
                             readers[i], DV_KEY_ID_MAX);
        }
        bytes += strlen(readers[i]) + 1;
    }
    if (self->dir) {
        char path[PATH_BYTES];
        snprintf(path, sizeof path, "%s/%s/readers", self->dir, name);
        char *text = dv_malloc(bytes + 1);
        size_t len = 0;
        for (size_t i = 0; i < n; i++) {
            len += (size_t)snprintf(text + len, bytes + 1 - len, "%s\n",
                                    readers[i]);
        }
        int rc = dv_file_write_atomic(path, text, len, err);
        free(text);
        if (rc) {
            return rc;
        }
    }
    set_readers(e, readers, n);
    return 0;
}

bool
dv_owners_may_read(const dv_owners_t *self, const char *name, const char *id)
{
    const entry_t *e = find(self, name);
    if (!e || strcmp(e->owner, id) == 0) {
        return true;
    }
    for (size_t i = 0; i < e->n_readers; i++) {
        if (strcmp(e->readers[i], "*") == 0 || strcmp(e->readers[i], id) == 0) {
            return true;
        }
    }
    return false;
}
