// fuzz_rec_dead — the broker's dead-letter records (dv_rec_dead_decode),
// then the job and attempts records nested in one, as recovery reads them.
#include <stdlib.h>
#include <string.h>

#include "dv_fuzz.h"
#include "dv_records.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dv_rec_dead_t d;
    dv_error_t err = {0};
    int rc = dv_rec_dead_decode(&d, 1, data, size, &err);
    dv_fuzz_check(rc, &err);
    if (rc != 0) {
        return 0;
    }
    dv_assert(strlen(d.text) < DV_REC_TEXT_MAX);
    dv_assert(d.job >= data && d.job + d.job_len <= data + size);
    dv_assert(d.attempts + d.attempts_len == data + size);
    dv_rec_job_t j;
    dv_fuzz_check(dv_rec_job_decode(&j, 1, d.job, d.job_len, &err), &err);
    dv_rec_attempts_t a;
    rc = dv_rec_attempts_decode(&a, 1, d.attempts, d.attempts_len, 200, &err);
    dv_fuzz_check(rc, &err);
    if (rc == 0) {
        free(a.errors);
    }
    return 0;
}
