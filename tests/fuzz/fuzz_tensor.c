// fuzz_tensor — tensor descriptors: a {frame, dtype, shape} map in a
// message header naming a payload frame (dv_msg_tensor_desc, dv_msg_tensor,
// dv_tensor_from_frame), tried on every key of the header with the row
// limit infer uses and with a small one. What is accepted must describe
// exactly the frame it names.
#include <string.h>

#include "dv_fuzz.h"
#include "dv_proto.h"

static void
tensor(const dv_msg_t *m, const char *key)
{
    static const size_t max_rows[] = {DV_MAX_INFER_ROWS, 2};
    for (size_t i = 0; i < sizeof max_rows / sizeof *max_rows; i++) {
        const dv_frame_t *f = NULL;
        size_t rows = 0, cols = 0;
        dv_error_t err = {0};
        int rc =
            dv_msg_tensor_desc(m, key, max_rows[i], &f, &rows, &cols, &err);
        dv_fuzz_check(rc, &err);
        if (rc) {
            continue;
        }
        dv_assert(rows <= max_rows[i] && cols >= 1);
        dv_assert(f->len == rows * cols * 4);
        dv_tensor_t *t = NULL;
        rc = dv_tensor_from_frame(f, rows, cols, &t, &err);
        dv_fuzz_check(rc, &err);
        dv_assert(rc ||
                  (t->rows == rows && t->cols == cols &&
                   (f->len == 0 || memcmp(t->data, f->data, f->len) == 0)));
        dv_tensor_destroy(&t);
        rc = dv_msg_tensor(m, key, max_rows[i], &t, &err);
        dv_fuzz_check(rc, &err);
        dv_tensor_destroy(&t);
    }
}

static void
decoded(const dv_msg_t *m, const dv_fuzz_msg_t *in, uint64_t rid)
{
    (void)in;
    (void)rid;
    dv_fuzz_each_key(m, tensor);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dv_fuzz_msg_run(data, size, decoded);
    return 0;
}
