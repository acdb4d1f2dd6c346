// fuzz_msg — a peer's message: the header decoder (dv_msg_decode: size,
// frame count, msgpack, v, t, rid) and, on a message it accepts, every field
// accessor of dv_proto.h run on every key the header holds, with the sizes
// and limits the broker, worker and libdrover use — str, uint, int, double,
// bin, strs, hyper, error — and the relay path (dv_msgw_obj copies fields
// into a new header, which must decode again).
#include <stdlib.h>
#include <string.h>

#include "dv_fuzz.h"
#include "dv_limits.h"
#include "dv_proto.h"

static void
fields(const dv_msg_t *m, const char *key)
{
    dv_error_t err = {0};
    char buf[DV_MAX_NAME_BYTES + 1], small[8];
    uint64_t u = 0;
    int64_t i = 0;
    double d = 0;
    const uint8_t *bin = NULL;
    size_t len = 0;
    (void)dv_msg_has(m, key);
    (void)dv_msg_get(m, key);
    int rc = dv_msg_str(m, key, buf, sizeof buf, &err);
    dv_fuzz_check(rc, &err);
    dv_assert(rc || strlen(buf) < sizeof buf);
    rc = dv_msg_str(m, key, small, sizeof small, &err);
    dv_fuzz_check(rc, &err);
    dv_assert(rc || strlen(small) < sizeof small);
    dv_fuzz_check(dv_msg_uint(m, key, &u, &err), &err);
    dv_fuzz_check(dv_msg_uint_or(m, key, 1, &u, &err), &err);
    dv_fuzz_check(dv_msg_int_or(m, key, -1, &i, &err), &err);
    dv_fuzz_check(dv_msg_double(m, key, &d, &err), &err);
    dv_fuzz_check(dv_msg_bin(m, key, &bin, &len, 0, &err), &err);
    dv_fuzz_check(dv_msg_bin(m, key, &bin, &len, 32, &err), &err);
    char **v = NULL;
    size_t n = 0;
    rc = dv_msg_strs(m, key, DV_MAX_CLASSES, DV_MAX_NAME_BYTES, &v, &n, &err);
    dv_fuzz_check(rc, &err);
    dv_strs_free(&v, n);
    rc = dv_msg_strs(m, key, 2, DV_MAX_WIRE_NAME, &v, &n, &err);
    dv_fuzz_check(rc, &err);
    dv_strs_free(&v, n);
    rc = dv_msg_strs_packed(m, key, DV_MAX_CLASSES, DV_MAX_NAME_BYTES, &v, &n,
                            &err);
    dv_fuzz_check(rc, &err);
    free(v);
    v = NULL;
    dv_hyper_t h;
    dv_fuzz_check(dv_msg_hyper(m, key, &h, &err), &err);
}

// dv_msg_error into buffers of several sizes: code and text are defined
// whatever the map holds, and text always ends within its buffer.
static void
error_map(const dv_msg_t *m)
{
    static const size_t sizes[] = {DV_ERROR_TEXT_MAX, 16, 1};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        char text[DV_ERROR_TEXT_MAX];
        memset(text, 'x', sizeof text);
        int code = 1;
        dv_error_t err = {0};
        int rc = dv_msg_error(m, &code, text, sizes[s], &err);
        dv_fuzz_check(rc, &err);
        dv_assert(code < 0);
        dv_assert(memchr(text, '\0', sizes[s]) != NULL);
    }
}

// Copy every field into a new header of the same type, one level deeper,
// as the broker relays a worker's fields to a submitter: the copy of what
// the broker takes from a peer (DV_MAX_PEER_MSGPACK_DEPTH) must decode;
// of something deeper, it may be refused as nested too deep.
static void
relay(const dv_msg_t *m)
{
    dv_msgw_t *w = dv_msgw_new(dv_msg_type(m), dv_msg_rid(m));
    const struct msgpack_object *root = dv_msg_root(m);
    dv_msgw_key(w, "copy");
    dv_msgw_v_obj(w, root);
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    dv_msg_t *again = NULL;
    dv_error_t err = {0};
    int rc = dv_msg_decode(&again, h, len, NULL, 0, NULL, &err);
    dv_assert(
        rc == 0 || (len > DV_MAX_HEADER_BYTES && rc == DV_EMSGSIZE) ||
        (dv_msg_depth(m) > DV_MAX_PEER_MSGPACK_DEPTH && rc == DV_EFORMAT));
    dv_msg_destroy(&again);
    dv_msgw_destroy(&w);
}

static void
decoded(const dv_msg_t *m, const dv_fuzz_msg_t *in, uint64_t rid)
{
    dv_assert(rid == dv_msg_rid(m));
    dv_assert(dv_msg_n_frames(m) == in->n_frames);
    dv_assert(dv_msg_frame(m, 0) == NULL);
    dv_assert(dv_msg_frame(m, in->n_frames + 1) == NULL);
    (void)dv_msg_name(dv_msg_type(m));
    (void)dv_msg_minor(m);
    dv_fuzz_each_key(m, fields);
    fields(m, "absent"); // the missing-field paths
    error_map(m);
    relay(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dv_fuzz_msg_run(data, size, decoded);
    return 0;
}
