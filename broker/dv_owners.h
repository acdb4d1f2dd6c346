// dv_owners — who owns each model and data set name.
//
// With keys (CURVE), the key that creates a name (the first version of a
// model or data set) owns it: only the owner or an admin may add versions
// to it, alias or delete it. One small file per name, DIR/NAME/owner
// holding the key id, beside the versions (DIR is the registry's models/
// or datasets/ folder); without a DIR the table is kept in memory.
//
// Threads: the broker's loop thread only.
#ifndef DV_OWNERS_H
#define DV_OWNERS_H

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

// Forget name's owner (its last version is gone): the file is removed,
// and the folder with it when empty.
void dv_owners_forget(dv_owners_t *self, const char *name);

#endif
