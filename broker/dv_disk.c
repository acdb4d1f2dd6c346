// dv_disk — the data dir's free space, watched. See dv_disk.h.
#include "dv_disk.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "dv_log.h"
#include "dv_mem.h"

struct dv_disk {
    char *dir;        // owned
    uint64_t reserve; // bytes kept free (0: off)
    uint64_t free;    // last reading (UINT64_MAX: none)
    bool low;         // durable submits refused
    bool store_full;  // the store said so since the last reading
    uint64_t since;   // bytes submits may have written since it
};

// What a durable submit may cost the store per job beyond twice its bytes.
#define RECORD_BYTES 1024

dv_disk_t *
dv_disk_new(const char *dir, uint64_t reserve)
{
    dv_disk_t *self = dv_calloc(1, sizeof *self);
    self->dir = dv_strdup(dir);
    self->reserve = reserve;
    self->free = UINT64_MAX;
    return self;
}

void
dv_disk_destroy(dv_disk_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_disk_t *self = *self_p;
    free(self->dir);
    free(self);
    *self_p = NULL;
}

static void
set_low(dv_disk_t *self, bool low, const char *why)
{
    if (low == self->low) {
        return;
    }
    self->low = low;
    if (low) {
        dv_log(DV_LOG_ERROR, "broker",
               "%s under %s: durable submits are refused (DV_ENOSPC) until "
               "%" PRIu64 " bytes are free; the jobs held go on and are "
               "stored (--submit-free-disk %" PRIu64 ")",
               why, self->dir, self->reserve + self->reserve / 8,
               self->reserve);
    } else {
        dv_log(DV_LOG_INFO, "broker",
               "%" PRIu64 " bytes free under %s: durable submits are "
               "accepted again",
               self->free, self->dir);
    }
}

bool
dv_disk_update(dv_disk_t *self, uint64_t free_bytes)
{
    self->free = free_bytes;
    self->since = 0;
    bool full = self->store_full;
    self->store_full = false;
    if (self->reserve == 0) {
        return self->low;
    }
    char why[96];
    if (!self->low && free_bytes < self->reserve) {
        snprintf(why, sizeof why, "only %" PRIu64 " bytes free", free_bytes);
        set_low(self, true, why);
    } else if (self->low && !full &&
               free_bytes >= self->reserve + self->reserve / 8) {
        set_low(self, false, NULL);
    }
    return self->low;
}

bool
dv_disk_check(dv_disk_t *self)
{
    struct statvfs vfs;
    if (statvfs(self->dir, &vfs) != 0) {
        return self->low;
    }
    return dv_disk_update(self, (uint64_t)vfs.f_bavail * vfs.f_frsize);
}

void
dv_disk_full(dv_disk_t *self)
{
    if (self->reserve == 0) {
        return;
    }
    self->store_full = true;
    set_low(self, true, "the store is out of space");
}

int
dv_disk_admit(dv_disk_t *self, uint64_t bytes, dv_error_t *err)
{
    if (self->reserve == 0) {
        return 0;
    }
    self->since += 2 * bytes + RECORD_BYTES;
    if (!self->low && self->free != UINT64_MAX) {
        uint64_t room =
            self->free > self->reserve ? self->free - self->reserve : 0;
        if (self->since >= room / 4) {
            dv_disk_check(self);
        }
    }
    if (!self->low) {
        return 0;
    }
    if (self->free == UINT64_MAX) {
        return dv_errorf(err, DV_ENOSPC,
                         "the broker's data dir is out of space: durable "
                         "submits wait until space is freed (the jobs held "
                         "still finish)");
    }
    return dv_errorf(err, DV_ENOSPC,
                     "the broker's data dir has %" PRIu64 " bytes free, "
                     "below --submit-free-disk %" PRIu64 ": durable submits "
                     "wait until %" PRIu64 " are free (the jobs held still "
                     "finish)",
                     self->free, self->reserve,
                     self->reserve + self->reserve / 8);
}

bool
dv_disk_low(const dv_disk_t *self)
{
    return self->low;
}

uint64_t
dv_disk_free(const dv_disk_t *self)
{
    return self->free;
}
