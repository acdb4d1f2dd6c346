// fuzz_rec_key — the broker's idempotency key records (dv_rec_key_decode),
// read at recovery.
#include <string.h>

#include "dv_fuzz.h"
#include "dv_records.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dv_rec_key_t k;
    dv_error_t err = {0};
    int rc = dv_rec_key_decode(&k, 1, data, size, &err);
    dv_fuzz_check(rc, &err);
    if (rc == 0) {
        dv_assert(strlen(k.queue) <= DV_MAX_WIRE_NAME);
        dv_assert(strlen(k.key) <= DV_MAX_KEY_BYTES);
    }
    return 0;
}
