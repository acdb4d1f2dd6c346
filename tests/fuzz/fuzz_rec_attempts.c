// fuzz_rec_attempts — the broker's attempts records (failed attempts of a
// job: dv_rec_attempts_decode), read at recovery and inside dead letters.
#include <stdlib.h>
#include <string.h>

#include "dv_fuzz.h"
#include "dv_records.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dv_rec_attempts_t r;
    dv_error_t err = {0};
    int rc = dv_rec_attempts_decode(&r, 1, data, size, 200, &err);
    dv_fuzz_check(rc, &err);
    if (rc == 0) {
        dv_assert(r.n_errors <= 200);
        dv_assert(!r.count_only || (r.errors == NULL && r.n_errors == 0));
        for (uint32_t i = 0; i < r.n_errors; i++) {
            dv_assert(strlen(r.errors[i].worker) <= DV_MAX_WIRE_NAME);
            dv_assert(strlen(r.errors[i].text) < DV_ERROR_TEXT_MAX);
        }
        free(r.errors);
    }
    return 0;
}
