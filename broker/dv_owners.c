// dv_owners — name owners (see dv_owners.h). A handful of names per
// broker: a plain array, searched linearly.
#include "dv_owners.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dv_file.h"
#include "dv_keys.h"
#include "dv_mem.h"
#include "dv_proto.h"
#include "dv_registry.h" // dv_name_valid

#define PATH_BYTES 4096

typedef struct {
    char name[DV_MAX_WIRE_NAME + 1];
    char owner[DV_KEY_ID_MAX + 1];
} entry_t;

struct dv_owners {
    char *dir; // NULL: memory only
    entry_t *entries;
    size_t n;
};

static entry_t *
find(const dv_owners_t *self, const char *name)
{
    for (size_t i = 0; i < self->n; i++) {
        if (strcmp(self->entries[i].name, name) == 0) {
            return &self->entries[i];
        }
    }
    return NULL;
}

static void
put(dv_owners_t *self, const char *name, const char *owner)
{
    entry_t *e = find(self, name);
    if (!e) {
        self->entries =
            dv_realloc(self->entries, (self->n + 1) * sizeof *self->entries);
        e = &self->entries[self->n++];
        snprintf(e->name, sizeof e->name, "%s", name);
    }
    snprintf(e->owner, sizeof e->owner, "%s", owner);
}

int
dv_owners_open(dv_owners_t **out, const char *dir, dv_error_t *err)
{
    dv_owners_t *self = dv_calloc(1, sizeof *self);
    self->dir = dir ? dv_strdup(dir) : NULL;
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    int rc = 0;
    while (d && rc == 0 && (e = readdir(d)) != NULL) {
        if (!dv_name_valid(e->d_name)) {
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
    free((*self_p)->dir);
    free((*self_p)->entries);
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
    if (e) {
        *e = self->entries[--self->n];
    }
    if (self->dir) {
        char path[PATH_BYTES];
        snprintf(path, sizeof path, "%s/%s/owner", self->dir, name);
        (void)unlink(path);
        snprintf(path, sizeof path, "%s/%s", self->dir, name);
        (void)rmdir(path); // best effort: empty once its versions are gone
    }
}
