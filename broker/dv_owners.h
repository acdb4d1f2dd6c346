// dv_owners — who owns each model and data set name, and who may read it.
//
// With keys (CURVE), the key that creates a name (the first version of a
// model or data set) owns it: only the owner or an admin may add versions
// to it, alias or delete it. One small file per name, DIR/NAME/owner
// holding the key id, beside the versions (DIR is the registry's models/
// or datasets/ folder); without a DIR the table is kept in memory.
//
// An owned name may be shared for reading with other keys (data sets:
// dataset_share): DIR/NAME/readers, one key id a line ("*": every key).
// Readers are the owner's business: they go with the owner when the name
// is forgotten.
//
// Threads: the broker's loop thread only.
#ifndef DV_OWNERS_H
#define DV_OWNERS_H

#include <stdbool.h>
#include <stddef.h>

#include "dv_err.h"

typedef struct dv_owners dv_owners_t;

// Read the owner files under dir (NULL: memory only; a missing dir is
// empty). Returns 0 and *out, or DV_EIO naming a file it cannot read.
int dv_owners_open(dv_owners_t **out, const char *dir, dv_error_t *err);
void dv_owners_destroy(dv_owners_t **self_p);

// The owner's key id of name, or NULL when it has none (created in plain
// mode, or not created yet).
const char *dv_owners_get(const dv_owners_t *self, const char *name);

// Record owner for name (written atomically). Returns 0 or the write
// error.
int dv_owners_set(dv_owners_t *self,
                  const char *name,
                  const char *owner,
                  dv_error_t *err);

// Forget name's owner and readers (its last version is gone): the files
// are removed, and the folder with them when empty.
void dv_owners_forget(dv_owners_t *self, const char *name);

// Share owned name with readers (n key ids, or "*" for every key),
// replacing its list (n 0: its owner and admins only again); written
// atomically. Returns 0, DV_ENOENT (name has no owner: everyone reads it
// already), DV_EINVAL (a bad id; more than DV_MAX_READERS) or the write
// error. Copies what it keeps.
int dv_owners_share(dv_owners_t *self,
                    const char *name,
                    char *const *readers,
                    size_t n,
                    dv_error_t *err);

// May key id read name? Its owner and the keys it is shared with may; so
// may everyone when it has no owner (plain mode, or not created yet) or is
// shared with "*". (Admins are the caller's business.)
bool
dv_owners_may_read(const dv_owners_t *self, const char *name, const char *id);

#endif
