// fuzz_ckpt — training checkpoint blobs (DVCK, dv_ckpt.c), which a worker
// resumes from after a broker or another worker handed them over. Byte 0
// picks the training run (dv_fuzz_ckpt_run: its data set and
// hyper-parameters, so the seed generator's checkpoints belong to it) and,
// with bit 7, rewrites the blob's SHA-256 trailer so mutations reach the
// checks behind it (run fingerprint, epoch, RNG state, row permutation).
// A blob that passes resumes training for the epochs left.
#include <stdlib.h>
#include <string.h>

#include "dv_fuzz.h"
#include "dv_mem.h"
#include "dv_sha256.h"
#include "dv_train.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t n = 0;
    uint8_t *blob = dv_fuzz_tail(data, size, &n);
    if ((data[0] & 0x80) && n >= DV_SHA256_BYTES) {
        dv_fuzz_fix_sha256(blob, n);
    }
    dv_hyper_t h;
    const dv_dataset_t *ds = dv_fuzz_ckpt_run(data[0] & 0x7f, &h);
    dv_train_opts_t o = {.task = -1, .created_unix = 1};
    o.resume = blob;
    o.resume_len = n;
    dv_model_t *m = NULL;
    dv_error_t err = {0};
    int rc = dv_train(&m, ds, &h, &o, &err);
    // A forged but intact checkpoint may make training diverge: that is
    // a clean DV_EDIVERGED, not a finding.
    dv_fuzz_check(rc, &err);
    dv_model_destroy(&m);
    free(blob);
    return 0;
}
