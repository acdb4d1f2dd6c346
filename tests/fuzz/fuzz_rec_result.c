// fuzz_rec_result — the broker's kept-result records (dv_rec_result_decode),
// read at recovery: frames and extra fields must lie within the record, and
// extra fields (spliced into `result` headers) must be well-formed msgpack.
#include <string.h>

#include "dv_fuzz.h"
#include "dv_records.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dv_rec_result_t r;
    dv_error_t err = {0};
    int rc = dv_rec_result_decode(&r, 1, data, size, &err);
    dv_fuzz_check(rc, &err);
    if (rc == 0) {
        dv_assert(r.n_frames <= DV_MAX_FRAMES);
        for (size_t i = 0; i < r.n_frames; i++) {
            dv_assert(r.frames[i].data >= data &&
                      r.frames[i].data + r.frames[i].len <= data + size);
        }
        dv_assert(!r.extra_len ||
                  (r.extra >= data && r.extra + r.extra_len <= data + size));
        dv_assert(strlen(r.text) < DV_REC_TEXT_MAX);
        dv_assert(strlen(r.worker) <= DV_MAX_WIRE_NAME);
        dv_assert(r.streamed == (r.queue[0] != '\0'));
    }
    return 0;
}
