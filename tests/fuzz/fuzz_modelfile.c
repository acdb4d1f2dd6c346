// fuzz_modelfile — .drvm model files (dv_model_decode, dv_model_verify), as
// the broker's registry, a worker and `drover local` read them. Byte 0 holds
// flags, the rest is the file: flag 1 sets the header's body length to the
// bytes present, flag 2 rewrites the SHA-256 trailer, so mutated bodies get
// past the length and checksum checks to the msgpack decoder behind them.
// A model it accepts must encode, decode again, and predict.
#include <stdlib.h>
#include <string.h>

#include "dv_fuzz.h"
#include "dv_mem.h"
#include "dv_modelfile.h"
#include "dv_sha256.h"

#define TRAILER DV_SHA256_BYTES

// Predict two rows of zeros: a model that passed validation runs.
static void
predict(const dv_model_t *m)
{
    if (m->n_features > 4096) {
        return; // fine, but slow to fuzz
    }
    dv_tensor_t *x = dv_tensor_new(2, m->n_features), *y = NULL;
    dv_error_t err = {0};
    int rc = dv_model_predict(m, x, &y, &err);
    dv_fuzz_check(rc, &err);
    dv_assert(rc || (y->rows == 2 && y->cols == dv_model_n_outputs(m)));
    dv_tensor_destroy(&y);
    dv_tensor_destroy(&x);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t n = 0;
    uint8_t *buf = dv_fuzz_tail(data, size, &n);
    if ((data[0] & 1) && n >= DV_MODELFILE_HEADER_BYTES + TRAILER) {
        uint64_t body = n - DV_MODELFILE_HEADER_BYTES - TRAILER;
        for (int i = 0; i < 8; i++) {
            buf[8 + i] = (uint8_t)(body >> (8 * i));
        }
    }
    if ((data[0] & 2) && n >= TRAILER) {
        dv_fuzz_fix_sha256(buf, n);
    }
    dv_error_t err = {0};
    int vrc = dv_model_verify(buf, n, &err);
    dv_fuzz_check(vrc, &err);
    dv_model_t *m = NULL;
    int rc = dv_model_decode(&m, buf, n, &err);
    dv_fuzz_check(rc, &err);
    if (rc == 0) {
        dv_assert(vrc == 0);
        uint8_t *again = NULL;
        size_t len = 0;
        rc = dv_model_encode(m, &again, &len, &err);
        if (rc != DV_ENOMEM) {
            dv_assert(rc == 0);
            dv_model_t *m2 = NULL;
            rc = dv_model_decode(&m2, again, len, &err);
            dv_assert(rc == 0);
            dv_assert(m2->n_features == m->n_features &&
                      m2->n_layers == m->n_layers);
            dv_model_destroy(&m2);
            free(again);
        }
        predict(m);
    }
    dv_model_destroy(&m);
    free(buf);
    return 0;
}
