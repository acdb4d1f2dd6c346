// fuzz_rec_job — the broker's job records (dv_rec_job_decode), as recovery
// reads them from the store after a restart. What it accepts must lie
// within the record, and a training spec must be well-formed msgpack.
#include <string.h>

#include "dv_fuzz.h"
#include "dv_records.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dv_rec_job_t r;
    dv_error_t err = {0};
    int rc = dv_rec_job_decode(&r, 1, data, size, &err);
    dv_fuzz_check(rc, &err);
    if (rc == 0) {
        dv_assert(r.kind < DV_REC_KIND_COUNT_);
        dv_assert(r.queue[0] && strlen(r.queue) <= DV_MAX_WIRE_NAME);
        dv_assert(strlen(r.model) <= DV_MAX_WIRE_NAME);
        dv_assert(r.payload >= data &&
                  r.payload + r.payload_len == data + size);
    }
    return 0;
}
