// fuzz_rec_cursor — the broker's result stream cursor records
// (dv_rec_cursor_decode), read at recovery.
#include <string.h>

#include "dv_fuzz.h"
#include "dv_records.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dv_rec_cursor_t c;
    dv_error_t err = {0};
    int rc = dv_rec_cursor_decode(&c, 1, data, size, &err);
    dv_fuzz_check(rc, &err);
    if (rc == 0) {
        dv_assert(strlen(c.queue) <= DV_MAX_WIRE_NAME);
        dv_assert(strlen(c.consumer) <= DV_MAX_WIRE_NAME);
    }
    return 0;
}
