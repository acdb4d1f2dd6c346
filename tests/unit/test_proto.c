// test_proto — protocol headers: writer/reader round trip, tensors as raw
// float32 frames, and every malformed header with its exact DV_E* code.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "dv_limits.h"
#include "dv_msgpack.h"
#include "dv_proto.h"
#include "dv_rng.h"
#include "dv_test.h"
#include "dv_train.h"

static void
test_round_trip(void)
{
    dv_tensor_t *t = dv_tensor_new(2, 3);
    for (size_t i = 0; i < 6; i++) {
        t->data[i] = (float)i - 2.5f;
    }
    size_t flen = 0;
    uint8_t *fbytes = dv_frame_from_tensor(t, &flen);
    dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, 77);
    dv_msgw_str(w, "queue", "default");
    dv_msgw_str(w, "kind", "infer");
    dv_msgw_str(w, "model", "iris@3");
    dv_msgw_uint(w, "max_attempts", 5);
    dv_msgw_bin(w, "sha256", "0123456789abcdef0123456789abcdef", 32);
    dv_msgw_tensor(w, "input", 1, 2, 3);
    dv_msgw_error(w, "error", DV_ESHAPE, "input has 3 features");
    size_t hlen = 0;
    const uint8_t *h = dv_msgw_bytes(w, &hlen);
    dv_frame_t frames[1] = {{fbytes, flen}};
    dv_msg_t *m = NULL;
    dv_error_t err = {0};
    uint64_t rid = 0;
    int rc = dv_msg_decode(&m, h, hlen, frames, 1, &rid, &err);
    char queue[DV_MAX_WIRE_NAME + 1] = "", model[64] = "", text[128] = "";
    uint64_t attempts = 0, deflt = 0;
    const uint8_t *sha = NULL;
    size_t sha_len = 0;
    dv_tensor_t *back = NULL;
    int code = 0;
    bool fields = rc == 0 && dv_msg_type(m) == DV_MSG_SUBMIT &&
                  dv_msg_rid(m) == 77 && rid == 77 &&
                  dv_msg_minor(m) == DV_PROTOCOL_MINOR &&
                  dv_msg_str(m, "queue", queue, sizeof queue, &err) == 0 &&
                  dv_msg_str(m, "model", model, sizeof model, &err) == 0 &&
                  dv_msg_uint(m, "max_attempts", &attempts, &err) == 0 &&
                  dv_msg_uint_or(m, "priority", 9, &deflt, &err) == 0 &&
                  dv_msg_bin(m, "sha256", &sha, &sha_len, 32, &err) == 0 &&
                  dv_msg_error(m, &code, text, sizeof text, &err) == 0 &&
                  dv_msg_tensor(m, "input", 10, &back, &err) == 0;
    bool values = fields && strcmp(queue, "default") == 0 &&
                  strcmp(model, "iris@3") == 0 && attempts == 5 && deflt == 9 &&
                  memcmp(sha, "0123", 4) == 0 && code == DV_ESHAPE &&
                  strcmp(text, "input has 3 features") == 0 &&
                  back->rows == 2 && back->cols == 3 &&
                  memcmp(back->data, t->data, 6 * sizeof(float)) == 0 &&
                  dv_msg_has(m, "kind") && !dv_msg_has(m, "nope");
    // Little-endian on the wire whatever the host: -2.5f is 0xc0200000.
    bool le = fbytes[0] == 0x00 && fbytes[3] == 0xc0 && fbytes[2] == 0x20;
    dv_tensor_destroy(&back);
    dv_msg_destroy(&m);
    dv_msgw_destroy(&w);
    dv_tensor_destroy(&t);
    free(fbytes);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK(fields);
    DV_CHECK(values);
    DV_CHECK(le);
}

// Build a header map by hand: n pairs of (key, packer action).
typedef enum {
    H_GOOD,
    H_NOT_MSGPACK,
    H_ARRAY,
    H_NO_V,
    H_V_STRING,
    H_MAJOR_2,
    H_NO_T,
    H_UNKNOWN_T,
    H_T_NUMBER,
    H_RID_NEGATIVE,
    H_HUGE_COUNT,
    H_EXTRA_KEYS,
} hdr_t;

static void
pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void
craft(hdr_t what, msgpack_sbuffer *sb)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (what == H_NOT_MSGPACK) {
        msgpack_sbuffer_write(sb, "\xc1\xc1", 2);
        return;
    }
    if (what == H_ARRAY) {
        msgpack_pack_array(&pk, 1);
        msgpack_pack_nil(&pk);
        return;
    }
    if (what == H_HUGE_COUNT) {
        // map with 3 pairs, the last value an array32 claiming 2^32-1 items
        msgpack_pack_map(&pk, 3);
        pk_str(&pk, "v");
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint32(&pk, 1);
        msgpack_pack_uint32(&pk, 0);
        pk_str(&pk, "t");
        pk_str(&pk, "ping");
        pk_str(&pk, "x");
        msgpack_sbuffer_write(sb, "\xdd\xff\xff\xff\xff\xc0", 6);
        return;
    }
    int pairs =
        3 - (what == H_NO_V) - (what == H_NO_T) + 2 * (what == H_EXTRA_KEYS);
    msgpack_pack_map(&pk, (size_t)pairs);
    if (what != H_NO_V) {
        pk_str(&pk, "v");
        if (what == H_V_STRING) {
            pk_str(&pk, "1.0");
        } else {
            msgpack_pack_array(&pk, 2);
            msgpack_pack_uint32(&pk, what == H_MAJOR_2 ? 2 : 1);
            msgpack_pack_uint32(&pk, 0);
        }
    }
    if (what != H_NO_T) {
        pk_str(&pk, "t");
        if (what == H_T_NUMBER) {
            msgpack_pack_uint32(&pk, 7);
        } else {
            pk_str(&pk, what == H_UNKNOWN_T ? "teleport" : "ping");
        }
    }
    pk_str(&pk, "rid");
    if (what == H_RID_NEGATIVE) {
        msgpack_pack_int64(&pk, -4);
    } else {
        msgpack_pack_uint64(&pk, 12);
    }
    if (what == H_EXTRA_KEYS) {
        pk_str(&pk, "from_2030");
        msgpack_pack_map(&pk, 0);
        pk_str(&pk, "also");
        msgpack_pack_true(&pk);
    }
}

static void
test_bad_headers(void)
{
    static const struct {
        hdr_t what;
        int code;
        const char *needle;
        uint64_t rid; // rid the decoder still reports
    } rows[] = {
        {H_GOOD, 0, "", 12},
        {H_EXTRA_KEYS, 0, "", 12},
        {H_NOT_MSGPACK, DV_EFORMAT, "header", 0},
        {H_ARRAY, DV_EFORMAT, "expected a msgpack map", 0},
        {H_NO_V, DV_EFORMAT, "'v'", 12},
        {H_V_STRING, DV_EFORMAT, "'v'", 12},
        {H_MAJOR_2, DV_EVERSION, "protocol 2.0", 12},
        {H_NO_T, DV_EFORMAT, "'t' (message type) missing", 12},
        {H_T_NUMBER, DV_EFORMAT, "'t' (message type) must be a string", 12},
        {H_UNKNOWN_T, DV_EFORMAT, "unknown message type 'teleport'", 12},
        {H_RID_NEGATIVE, DV_EFORMAT, "'rid'", 0},
        {H_HUGE_COUNT, DV_EFORMAT, "exceed", 0},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        msgpack_sbuffer sb;
        craft(rows[i].what, &sb);
        dv_msg_t *m = NULL;
        dv_error_t err = {0};
        uint64_t rid = 99;
        int rc = dv_msg_decode(&m, (const uint8_t *)sb.data, sb.size, NULL, 0,
                               &rid, &err);
        if (rc != rows[i].code || !strstr(err.text, rows[i].needle) ||
            rid != rows[i].rid || (rc == 0) != (m != NULL)) {
            fprintf(stderr, "  case %zu: %s rid %llu \"%s\"\n", i,
                    dv_err_name(rc), (unsigned long long)rid, err.text);
            failures++;
        }
        dv_msg_destroy(&m);
        msgpack_sbuffer_destroy(&sb);
    }
    DV_CHECK_EQ(failures, 0);
}

static void
test_size_limits(void)
{
    uint8_t *big = calloc(1, DV_MAX_HEADER_BYTES + 1);
    dv_msg_t *m = NULL;
    dv_error_t err = {0};
    int rc =
        dv_msg_decode(&m, big, DV_MAX_HEADER_BYTES + 1, NULL, 0, NULL, &err);
    free(big);
    DV_CHECK_RC(rc, DV_EMSGSIZE, &err);
    dv_msgw_t *w = dv_msgw_new(DV_MSG_PING, 1);
    size_t hlen = 0;
    const uint8_t *h = dv_msgw_bytes(w, &hlen);
    dv_frame_t frames[DV_MAX_FRAMES + 1];
    memset(frames, 0, sizeof frames);
    rc = dv_msg_decode(&m, h, hlen, frames, DV_MAX_FRAMES + 1, NULL, &err);
    int rc_ok = dv_msg_decode(&m, h, hlen, frames, DV_MAX_FRAMES, NULL, &err);
    size_t n = rc_ok == 0 ? dv_msg_n_frames(m) : 0;
    bool range = rc_ok == 0 && dv_msg_frame(m, 0) == NULL &&
                 dv_msg_frame(m, DV_MAX_FRAMES) != NULL &&
                 dv_msg_frame(m, DV_MAX_FRAMES + 1) == NULL;
    dv_msg_destroy(&m);
    dv_msgw_destroy(&w);
    DV_CHECK_RC(rc, DV_EMSGSIZE, &err);
    DV_CHECK_EQ(n, DV_MAX_FRAMES);
    DV_CHECK(range);
}

// A submit with the given tensor map and frames; returns dv_msg_tensor's
// code.
static int
tensor_case(size_t frame,
            const char *dtype,
            uint64_t rows,
            uint64_t cols,
            size_t frame_len,
            dv_error_t *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "v");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint32(&pk, 1);
    msgpack_pack_uint32(&pk, 0);
    pk_str(&pk, "t");
    pk_str(&pk, "submit");
    pk_str(&pk, "input");
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "frame");
    msgpack_pack_uint64(&pk, frame);
    pk_str(&pk, "dtype");
    pk_str(&pk, dtype);
    pk_str(&pk, "shape");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, rows);
    msgpack_pack_uint64(&pk, cols);
    uint8_t *data = calloc(1, frame_len + 1);
    dv_frame_t f = {data, frame_len};
    dv_msg_t *m = NULL;
    int rc =
        dv_msg_decode(&m, (const uint8_t *)sb.data, sb.size, &f, 1, NULL, err);
    dv_tensor_t *t = NULL;
    if (rc == 0) {
        rc = dv_msg_tensor(m, "input", DV_MAX_INFER_ROWS, &t, err);
    }
    dv_tensor_destroy(&t);
    dv_msg_destroy(&m);
    msgpack_sbuffer_destroy(&sb);
    free(data);
    return rc;
}

static void
test_tensor_checks(void)
{
    dv_error_t err = {0};
    DV_CHECK_RC(tensor_case(1, "f32", 2, 4, 32, &err), 0, &err);
    DV_CHECK_RC(tensor_case(2, "f32", 2, 4, 32, &err), DV_EFORMAT, &err);
    DV_CHECK(strstr(err.text, "frame 2") != NULL);
    DV_CHECK_RC(tensor_case(0, "f32", 2, 4, 32, &err), DV_EFORMAT, &err);
    DV_CHECK_RC(tensor_case(1, "f64", 2, 4, 64, &err), DV_EDTYPE, &err);
    DV_CHECK_RC(tensor_case(1, "f32", 2, 4, 31, &err), DV_ESHAPE, &err);
    DV_CHECK(strstr(err.text, "needs 32 bytes") != NULL);
    DV_CHECK_RC(tensor_case(1, "f32", 4000000000ull, 1, 16, &err), DV_EMSGSIZE,
                &err);
    DV_CHECK_RC(tensor_case(1, "f32", 1, 0, 0, &err), DV_EMSGSIZE, &err);
    // rows * cols * 4 would wrap 64 bits without the limits checked first.
    DV_CHECK_RC(tensor_case(1, "f32", (uint64_t)1 << 62, 8, 0, &err),
                DV_EMSGSIZE, &err);
}

static void
test_field_errors(void)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_MODEL_GET, 3);
    dv_msgw_uint(w, "name", 5); // wrong type
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    dv_msgw_str(w, "queue", longname);
    dv_msgw_error(w, "error", -4999, "from a newer peer");
    size_t hlen = 0;
    const uint8_t *h = dv_msgw_bytes(w, &hlen);
    dv_msg_t *m = NULL;
    dv_error_t err = {0};
    int rc = dv_msg_decode(&m, h, hlen, NULL, 0, NULL, &err);
    char buf[DV_MAX_WIRE_NAME + 1];
    int rc_type = dv_msg_str(m, "name", buf, sizeof buf, &err);
    bool says_type = strstr(err.text, "model_get: 'name' must be a string");
    int rc_missing = dv_msg_str(m, "version", buf, sizeof buf, &err);
    bool says_missing = strstr(err.text, "'version' is missing") != NULL;
    int rc_long = dv_msg_str(m, "queue", buf, sizeof buf, &err);
    uint64_t u;
    int rc_uint = dv_msg_uint(m, "queue", &u, &err);
    int code = 0;
    char text[128];
    int rc_err = dv_msg_error(m, &code, text, sizeof text, &err);
    bool kept = strstr(text, "DV_EUNKNOWN: from a newer peer") != NULL;
    dv_msg_destroy(&m);
    dv_msgw_destroy(&w);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(rc_type, DV_EFORMAT);
    DV_CHECK(says_type);
    DV_CHECK_EQ(rc_missing, DV_EFORMAT);
    DV_CHECK(says_missing);
    DV_CHECK_EQ(rc_long, DV_EMSGSIZE);
    DV_CHECK_EQ(rc_uint, DV_EFORMAT);
    DV_CHECK_EQ(rc_err, 0);
    DV_CHECK_EQ(code, DV_EFORMAT);
    DV_CHECK(kept);
}

// Hostile error maps (a worker's failed `done`, a broker's `error`): every
// shape leaves code and text defined, never reads past a string, and says
// what was wrong. An 80-byte name with no text used to crash the broker.
static void
test_hostile_error_maps(void)
{
    char name80[81], long_text[600];
    memset(name80, 'N', 80);
    name80[80] = '\0';
    memset(long_text, 't', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    static const char nul_text[] = {'a', 'b', '\0', 'c'};
    struct {
        const char *what;
        int shape;         // 0 no error key, 1 error is a string, 2 a map
        const char *name;  // NULL: absent
        const char *text;  // NULL: absent
        int text_uint;     // 1: text is an integer
        int rc;            // dv_msg_error's return
        int code;          // *code
        const char *shows; // text must contain this
    } rows[] = {
        {"no error key", 0, NULL, NULL, 0, DV_EFORMAT, DV_EFORMAT,
         "without an 'error' map"},
        {"error not a map", 1, NULL, NULL, 0, DV_EFORMAT, DV_EFORMAT,
         "without an 'error' map"},
        {"80-byte name, no text", 2, name80, NULL, 0, DV_EFORMAT, DV_EFORMAT,
         "NNNN"},
        {"80-byte name, short text", 2, name80, "ab", 0, 0, DV_EFORMAT, ": ab"},
        {"known name, no text", 2, "DV_ENAN", NULL, 0, DV_EFORMAT, DV_ENAN, ""},
        {"known name, text not a string", 2, "DV_ENAN", NULL, 1, DV_EFORMAT,
         DV_ENAN, ""},
        {"no name", 2, NULL, "why", 0, DV_EFORMAT, DV_EFORMAT,
         "without an error name"},
        {"long text is cut", 2, "DV_ESHAPE", long_text, 0, 0, DV_ESHAPE,
         "tttt"},
        {"text with a NUL is cut there", 2, "DV_ESHAPE", nul_text, 0, 0,
         DV_ESHAPE, "ab"},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        dv_msgw_t *w = dv_msgw_new(DV_MSG_DONE, 1);
        if (rows[r].shape == 1) {
            dv_msgw_str(w, "error", "oops");
        } else if (rows[r].shape == 2) {
            size_t n = (rows[r].name != NULL) +
                       (rows[r].text != NULL || rows[r].text_uint);
            dv_msgw_key(w, "error");
            dv_msgw_v_map(w, n);
            if (rows[r].name) {
                dv_msgw_v_str(w, "name");
                dv_msgw_v_str(w, rows[r].name);
            }
            if (rows[r].text_uint) {
                dv_msgw_v_str(w, "text");
                dv_msgw_v_uint(w, 7);
            } else if (rows[r].text == nul_text) {
                dv_msgw_v_str(w, "text");
                dv_msgw_v_raw(w,
                              "\xa4"
                              "ab\0c",
                              5);
            } else if (rows[r].text) {
                dv_msgw_v_str(w, "text");
                dv_msgw_v_str(w, rows[r].text);
            }
        }
        size_t hlen = 0;
        const uint8_t *h = dv_msgw_bytes(w, &hlen);
        dv_msg_t *m = NULL;
        dv_error_t err = {0};
        DV_CHECK_RC(dv_msg_decode(&m, h, hlen, NULL, 0, NULL, &err), 0, &err);
        int code = 12345;
        char text[DV_ERROR_TEXT_MAX];
        memset(text, 'X', sizeof text); // uninitialized-looking on purpose
        int rc = dv_msg_error(m, &code, text, sizeof text, &err);
        printf("  %-32s rc %d code %d text \"%.40s\"\n", rows[r].what, rc, code,
               text);
        DV_CHECK_EQ(rc, rows[r].rc);
        DV_CHECK_EQ(code, rows[r].code);
        DV_CHECK(memchr(text, '\0', sizeof text) != NULL);
        DV_CHECK(strstr(text, rows[r].shows) != NULL);
        DV_CHECK(strchr(text, 'X') == NULL);
        dv_msg_destroy(&m);
        dv_msgw_destroy(&w);
    }
}

// Seeded mutations of a valid header: decoding never crashes, and every
// refusal has a reason.
static void
test_mutations_never_crash(void)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, 42);
    dv_msgw_str(w, "queue", "q");
    dv_msgw_str(w, "kind", "infer");
    dv_msgw_tensor(w, "input", 1, 1, 2);
    dv_msgw_error(w, "error", DV_ENAN, "x");
    size_t hlen = 0;
    const uint8_t *h = dv_msgw_bytes(w, &hlen);
    uint8_t *copy = malloc(hlen);
    uint8_t data[8] = {0};
    dv_frame_t f = {data, sizeof data};
    dv_rng_t rng;
    dv_rng_seed(&rng, 11);
    size_t ok = 0, refused = 0, silent = 0;
    for (int i = 0; i < 5000; i++) {
        memcpy(copy, h, hlen);
        int flips = 1 + (int)dv_rng_below(&rng, 3);
        for (int k = 0; k < flips; k++) {
            copy[dv_rng_below(&rng, hlen)] = (uint8_t)dv_rng_next(&rng);
        }
        size_t n = hlen - (size_t)dv_rng_below(&rng, 3);
        dv_msg_t *m = NULL;
        dv_error_t err = {0};
        if (dv_msg_decode(&m, copy, n, &f, 1, NULL, &err) == 0) {
            dv_tensor_t *t = NULL;
            char q[DV_MAX_WIRE_NAME + 1], text[64];
            int code;
            dv_msg_str(m, "queue", q, sizeof q, &err);
            dv_msg_error(m, &code, text, sizeof text, &err);
            if (dv_msg_tensor(m, "input", 10, &t, &err) == 0) {
                ok++;
            } else {
                refused += err.text[0] != '\0';
                silent += err.text[0] == '\0';
            }
            dv_tensor_destroy(&t);
        } else {
            refused += err.text[0] != '\0';
            silent += err.text[0] == '\0';
        }
        dv_msg_destroy(&m);
    }
    free(copy);
    dv_msgw_destroy(&w);
    printf("  %zu decoded, %zu refused\n", ok, refused);
    DV_CHECK_EQ(silent, 0);
    DV_CHECK_EQ(ok + refused, 5000);
    DV_CHECK(refused > 2000);
}

static void
test_names_unique(void)
{
    for (int i = 0; i < DV_MSG_COUNT_; i++) {
        for (int j = i + 1; j < DV_MSG_COUNT_; j++) {
            DV_CHECK(strcmp(dv_msg_name((dv_msg_type_t)i),
                            dv_msg_name((dv_msg_type_t)j)) != 0);
        }
    }
    DV_CHECK_STR_EQ(dv_msg_name(DV_MSG_RUN), "run");
    DV_CHECK_STR_EQ(dv_msg_name(DV_MSG_COUNT_), "unknown");
}

// A genuine document (no lying counts) of many tiny objects: refused by
// count before msgpack-c would allocate ~24 bytes for each.
static void
test_too_many_objects(void)
{
    size_t n = DV_MAX_MSGPACK_ITEMS + 1;
    uint8_t *buf = malloc(n + 5);
    buf[0] = 0xdd; // array32 of n - 1 nils: n objects with the array
    buf[1] = (uint8_t)((n - 1) >> 24);
    buf[2] = (uint8_t)((n - 1) >> 16);
    buf[3] = (uint8_t)((n - 1) >> 8);
    buf[4] = (uint8_t)(n - 1);
    memset(buf + 5, 0xc0, n - 1);
    dv_error_t err = {0};
    int rc = dv_msgpack_check(buf, n + 4, "body", &err);
    int rc_ok = dv_msgpack_check(buf, 5 + 1000, "body", &err); // shorter
    buf[1] = buf[2] = 0; // a 1000-element array is fine
    buf[3] = (uint8_t)(1000 >> 8);
    buf[4] = (uint8_t)(1000 & 0xff);
    int rc_small = dv_msgpack_check(buf, 5 + 1000, "body", &err);
    free(buf);
    DV_CHECK_EQ(rc, DV_EMSGSIZE);
    DV_CHECK_EQ(rc_ok, DV_EFORMAT); // count does not fit the bytes left
    DV_CHECK_RC(rc_small, 0, &err);
}

// A header whose "deep" field is depth - 1 nested one-element arrays around
// a nil: depth levels with the header's map. Caller destroys.
static dv_msgw_t *
deep_header(size_t depth)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_RESULT, 1);
    uint8_t nest[64];
    memset(nest, 0x91, depth - 1); // fixarray of 1
    nest[depth - 1] = 0xc0;
    dv_msgw_key(w, "deep");
    dv_msgw_v_raw(w, nest, depth);
    return w;
}

// Arrays and maps nested DV_MAX_MSGPACK_DEPTH deep decode (msgpack-c's own
// stack), one more is refused by the check as malformed (msgpack-c called
// it out of memory). What the broker takes from a peer nests at most
// DV_MAX_PEER_MSGPACK_DEPTH, so the copies it makes a few levels deeper
// still decode. Siblings do not add up: many shallow arrays side by side.
static void
test_nesting_depth(void)
{
    static const struct {
        size_t depth; // with the header's map
        int rc;       // decoding
        int peer_rc;  // dv_msg_check_peer_depth
    } cases[] = {
        {2, 0, 0},
        {DV_MAX_PEER_MSGPACK_DEPTH, 0, 0},
        {DV_MAX_PEER_MSGPACK_DEPTH + 1, 0, DV_EFORMAT},
        {DV_MAX_MSGPACK_DEPTH, 0, DV_EFORMAT},
        {DV_MAX_MSGPACK_DEPTH + 1, DV_EFORMAT, 0},
        {40, DV_EFORMAT, 0},
    };
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        dv_msgw_t *w = deep_header(cases[t].depth);
        size_t len = 0;
        const uint8_t *h = dv_msgw_bytes(w, &len);
        dv_msg_t *m = NULL;
        dv_error_t err = {0}, perr = {0};
        int rc = dv_msg_decode(&m, h, len, NULL, 0, NULL, &err);
        int peer_rc = m ? dv_msg_check_peer_depth(m, &perr) : 0;
        printf("  depth %zu: decode %d%s%s, peer %d%s%s\n", cases[t].depth, rc,
               rc ? ": " : "", err.text, peer_rc, peer_rc ? ": " : "",
               perr.text);
        DV_CHECK_EQ(rc, cases[t].rc);
        DV_CHECK_EQ(peer_rc, cases[t].peer_rc);
        DV_CHECK_EQ(m ? dv_msg_depth(m) : cases[t].depth, cases[t].depth);
        // Copied as another header's field one to three levels deeper, as
        // the broker passes a peer's fields on: it decodes.
        for (int wrap = 1; m && peer_rc == 0 && wrap <= 3; wrap++) {
            dv_msgw_t *c = dv_msgw_new(DV_MSG_RESULTS, 2);
            dv_msgw_key(c, "results");
            for (int i = 1; i < wrap; i++) {
                dv_msgw_v_array(c, 1);
            }
            dv_msgw_v_obj(c, dv_msg_root(m));
            size_t clen = 0;
            const uint8_t *ch = dv_msgw_bytes(c, &clen);
            dv_msg_t *again = NULL;
            DV_CHECK_RC(dv_msg_decode(&again, ch, clen, NULL, 0, NULL, &err), 0,
                        &err);
            dv_msg_destroy(&again);
            dv_msgw_destroy(&c);
        }
        dv_msg_destroy(&m);
        dv_msgw_destroy(&w);
    }
    // Side by side: 1,000 arrays of 1 in one array, two levels in all.
    uint8_t wide[3 + 2000];
    wide[0] = 0xdc;
    wide[1] = 1000 >> 8;
    wide[2] = 1000 & 0xff;
    for (size_t i = 0; i < 1000; i++) {
        wide[3 + 2 * i] = 0x91;
        wide[4 + 2 * i] = 0xc0;
    }
    dv_error_t err = {0};
    DV_CHECK_RC(dv_msgpack_check(wide, sizeof wide, "body", &err), 0, &err);
}

// A writer's body starts in its own block and moves to the heap as it
// grows; the common keys go in front of it (a map16 past 15 fields, a
// 9-byte rid, the longest type name). Every size from empty to ~45 KiB
// (the header limit is 64 KiB) decodes to the same fields, in a header
// built in one piece or in raw parts (dv_msgw_raw, as submit_many and
// results are).
static void
test_writer_growth(void)
{
    static const size_t counts[] = {0, 1, 12, 13, 14, 15, 16, 40, 300, 2000};
    dv_msg_type_t longest = DV_MSG_SUBMIT;
    for (int t = 0; t < DV_MSG_COUNT_; t++) {
        if (strlen(dv_msg_name(t)) > strlen(dv_msg_name(longest))) {
            longest = t;
        }
    }
    for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
        size_t n = counts[c];
        dv_msgw_t *w = dv_msgw_new(longest, UINT64_MAX);
        dv_msgw_t *part = dv_msgw_new(DV_MSG_RESULT, 0);
        for (size_t i = 0; i < n; i++) {
            char key[32], value[40];
            snprintf(key, sizeof key, "k%zu", i);
            snprintf(value, sizeof value, "value number %zu", i);
            dv_msgw_str(i % 2 ? part : w, key, value);
        }
        size_t plen = 0, pfields = 0;
        const uint8_t *body = dv_msgw_body(part, &plen, &pfields);
        dv_msgw_raw(w, pfields, body, plen);
        size_t hlen = 0;
        const uint8_t *h = dv_msgw_bytes(w, &hlen);
        size_t hlen2 = 0;
        const uint8_t *h2 = dv_msgw_bytes(w, &hlen2); // the same, again
        dv_msg_t *m = NULL;
        dv_error_t err = {0};
        int rc = dv_msg_decode(&m, h, hlen, NULL, 0, NULL, &err);
        bool ok = rc == 0 && h2 == h && hlen2 == hlen &&
                  dv_msg_type(m) == longest && dv_msg_rid(m) == UINT64_MAX;
        for (size_t i = 0; ok && i < n; i++) {
            char key[32], want[40], got[40] = "";
            snprintf(key, sizeof key, "k%zu", i);
            snprintf(want, sizeof want, "value number %zu", i);
            ok = dv_msg_str(m, key, got, sizeof got, &err) == 0 &&
                 strcmp(got, want) == 0;
        }
        ok = ok && !dv_msg_has(m, "k-1");
        dv_msg_destroy(&m);
        dv_msgw_destroy(&part);
        dv_msgw_destroy(&w);
        if (!ok) {
            fprintf(stderr, "  %zu fields: rc %d (%s)\n", n, rc, err.text);
        }
        DV_CHECK(ok);
    }
}

// Trees of every shape decode whole: the zone is sized from the check's
// count (nested arrays and maps, strings referenced in the buffer).
static void
test_nested_decode(void)
{
    static const size_t sizes[] = {0, 1, 30, 37, 38, 1000, 20000};
    for (size_t c = 0; c < sizeof sizes / sizeof *sizes; c++) {
        size_t n = sizes[c];
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 2);
        msgpack_pack_str_with_body(&pk, "list", 4);
        msgpack_pack_array(&pk, n);
        for (size_t i = 0; i < n; i++) { // [i, {"s": "i"}]
            char v[24];
            int len = snprintf(v, sizeof v, "%zu", i);
            msgpack_pack_array(&pk, 2);
            msgpack_pack_uint64(&pk, i);
            msgpack_pack_map(&pk, 1);
            msgpack_pack_str_with_body(&pk, "s", 1);
            msgpack_pack_str_with_body(&pk, v, (size_t)len);
        }
        msgpack_pack_str_with_body(&pk, "end", 3);
        msgpack_pack_true(&pk);
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        dv_error_t err = {0};
        int rc = dv_msgpack_unpack(&up, (const uint8_t *)sb.data, sb.size,
                                   "tree", &err);
        const msgpack_object *l =
            rc == 0 ? dv_msgpack_get(&up.data, "list") : NULL;
        bool ok = l && l->type == MSGPACK_OBJECT_ARRAY &&
                  l->via.array.size == n &&
                  dv_msgpack_get(&up.data, "end") != NULL;
        for (size_t i = 0; ok && i < n; i++) {
            const msgpack_object *e = &l->via.array.ptr[i];
            const msgpack_object *s = dv_msgpack_get(&e->via.array.ptr[1], "s");
            char want[24];
            int len = snprintf(want, sizeof want, "%zu", i);
            ok = e->via.array.size == 2 && e->via.array.ptr[0].via.u64 == i &&
                 s && s->type == MSGPACK_OBJECT_STR &&
                 s->via.str.size == (uint32_t)len &&
                 memcmp(s->via.str.ptr, want, (size_t)len) == 0;
        }
        msgpack_unpacked_destroy(&up);
        msgpack_sbuffer_destroy(&sb);
        DV_CHECK_RC(rc, 0, &err);
        DV_CHECK(ok);
    }
}

// Decode a train map {algo: mlp, <key>: <value>} (value a string, or a
// double when text is NULL) into *h; returns dv_msg_hyper's code.
static int
hyper_with(const char *key,
           const char *text,
           double value,
           dv_hyper_t *h,
           dv_error_t *err)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, 1);
    dv_msgw_key(w, "train");
    dv_msgw_v_map(w, 2);
    dv_msgw_v_str(w, "algo");
    dv_msgw_v_str(w, "mlp");
    dv_msgw_v_str(w, key);
    if (text) {
        dv_msgw_v_str(w, text);
    } else {
        dv_msgw_v_double(w, value);
    }
    size_t hlen = 0;
    const uint8_t *hb = dv_msgw_bytes(w, &hlen);
    dv_msg_t *m = NULL;
    int rc = dv_msg_decode(&m, hb, hlen, NULL, 0, NULL, err);
    if (rc == 0) {
        rc = dv_msg_hyper(m, "train", h, err);
    }
    dv_msg_destroy(&m);
    dv_msgw_destroy(&w);
    return rc;
}

// 1.5's init and validation_fraction travel both ways; an absent one takes
// the algorithm's default; bad values are refused naming the field.
static void
test_hyper_init_validation(void)
{
    dv_hyper_t h, back;
    dv_hyper_default(&h, DV_ALGO_MLP);
    h.init = DV_INIT_HE;
    h.validation_fraction = 0.2;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, 1);
    dv_msgw_hyper(w, "train", &h);
    size_t hlen = 0;
    const uint8_t *hb = dv_msgw_bytes(w, &hlen);
    dv_msg_t *m = NULL;
    dv_error_t err = {0};
    DV_CHECK_RC(dv_msg_decode(&m, hb, hlen, NULL, 0, NULL, &err), 0, &err);
    DV_CHECK_RC(dv_msg_hyper(m, "train", &back, &err), 0, &err);
    DV_CHECK_EQ(back.init, DV_INIT_HE);
    DV_CHECK(back.validation_fraction == 0.2);
    dv_msg_destroy(&m);
    dv_msgw_destroy(&w);

    DV_CHECK_RC(hyper_with("tol", NULL, 0.01, &back, &err), 0, &err);
    DV_CHECK_EQ(back.init, DV_INIT_FAN_IN);
    DV_CHECK(back.validation_fraction == 0);
    DV_CHECK_RC(hyper_with("init", "glorot", 0, &back, &err), 0, &err);
    DV_CHECK_EQ(back.init, DV_INIT_GLOROT);
    DV_CHECK_EQ(hyper_with("init", "lecun", 0, &back, &err), DV_EINVAL);
    DV_CHECK(strstr(err.text, "train.init") != NULL);
    DV_CHECK_EQ(hyper_with("validation_fraction", "0.1", 0, &back, &err),
                DV_EINVAL);
    DV_CHECK(strstr(err.text, "train.validation_fraction") != NULL);
    DV_CHECK_EQ(hyper_with("validation_fraction", NULL, 0.5, &back, &err),
                DV_EINVAL);
    DV_CHECK(strstr(err.text, "validation fraction") != NULL);
    DV_CHECK_EQ(hyper_with("validation_fraction", NULL, NAN, &back, &err),
                DV_EINVAL);
}

// Optional booleans (schema_change): absent is the default, true/false
// are read, any other type is DV_EFORMAT naming the field.
static void
test_bool_or(void)
{
    static const struct {
        int kind; // 0 absent, 1 true, 2 false, 3 an integer, 4 a string
        bool dflt;
        int rc;
        bool want;
    } rows[] = {
        {0, false, 0, false},          {0, true, 0, true},
        {1, false, 0, true},           {2, true, 0, false},
        {3, false, DV_EFORMAT, false}, {4, false, DV_EFORMAT, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        dv_msgw_t *w = dv_msgw_new(DV_MSG_MODEL_PUSH, 1);
        if (rows[i].kind == 1 || rows[i].kind == 2) {
            dv_msgw_key(w, "schema_change");
            dv_msgw_v_bool(w, rows[i].kind == 1);
        } else if (rows[i].kind == 3) {
            dv_msgw_uint(w, "schema_change", 1);
        } else if (rows[i].kind == 4) {
            dv_msgw_str(w, "schema_change", "yes");
        }
        size_t hlen = 0;
        const uint8_t *h = dv_msgw_bytes(w, &hlen);
        dv_msg_t *m = NULL;
        dv_error_t err = {0};
        DV_CHECK_EQ(dv_msg_decode(&m, h, hlen, NULL, 0, NULL, &err), 0);
        bool got = !rows[i].want;
        int rc = dv_msg_bool_or(m, "schema_change", rows[i].dflt, &got, &err);
        DV_CHECK_EQ(rc, rows[i].rc);
        if (rc == 0) {
            DV_CHECK_EQ(got, rows[i].want);
        } else {
            DV_CHECK(strstr(err.text, "schema_change") != NULL);
        }
        dv_msg_destroy(&m);
        dv_msgw_destroy(&w);
    }
}

// String lists, inline or in a payload frame, read per string
// (dv_msg_strs) and packed in one block (dv_msg_strs_packed): the same
// strings, the same refusals; the packed block goes with one free (ASan
// counts what is left).
static void
test_string_lists(void)
{
    char long_name[200];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    const char *inline_v[] = {"setosa", "", "virginica"};
    const char *many_v[600];
    for (size_t i = 0; i < 600; i++) {
        many_v[i] = long_name; // past DV_MAX_INLINE_LIST_BYTES: a frame
    }
    const struct {
        const char *const *values;
        size_t n;
        size_t max_n;
        int want;
    } cases[] = {
        {inline_v, 3, 16, 0},
        {inline_v, 3, 2, DV_EMSGSIZE},
        {many_v, 600, 1000, 0},
        {many_v, 600, 10, DV_EMSGSIZE},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        dv_msgw_t *w = dv_msgw_new(DV_MSG_RESULT, 1);
        dv_frame_t extra = {0};
        bool framed = dv_msgw_strs_or_frame(w, "classes", cases[c].values,
                                            cases[c].n, 1, &extra);
        DV_CHECK(framed == (cases[c].n == 600));
        size_t hlen = 0;
        const uint8_t *h = dv_msgw_bytes(w, &hlen);
        dv_msg_t *m = NULL;
        dv_error_t err = {0};
        DV_CHECK_EQ(
            dv_msg_decode(&m, h, hlen, &extra, framed ? 1 : 0, NULL, &err), 0);
        char **v = NULL, **p = NULL;
        size_t n = 0, pn = 0;
        int rc = dv_msg_strs(m, "classes", cases[c].max_n, 256, &v, &n, &err);
        int prc = dv_msg_strs_packed(m, "classes", cases[c].max_n, 256, &p, &pn,
                                     &err);
        DV_CHECK_EQ(rc, cases[c].want);
        DV_CHECK_EQ(prc, cases[c].want);
        DV_CHECK(rc != 0 || (n == cases[c].n && pn == cases[c].n));
        for (size_t i = 0; rc == 0 && i < n; i++) {
            DV_CHECK_STR_EQ(v[i], cases[c].values[i]);
            DV_CHECK_STR_EQ(p[i], cases[c].values[i]);
        }
        DV_CHECK(rc == 0 || (!v && !p && n == 0 && pn == 0));
        dv_strs_free(&v, n);
        free(p);
        dv_msg_destroy(&m);
        dv_msgw_destroy(&w);
        free((void *)extra.data);
    }
    // A string with a NUL, or too long, is refused both ways.
    const char *bad[] = {"ok", long_name};
    dv_msgw_t *w = dv_msgw_new(DV_MSG_RESULT, 1);
    dv_msgw_strs(w, "classes", bad, 2);
    size_t hlen = 0;
    const uint8_t *h = dv_msgw_bytes(w, &hlen);
    dv_msg_t *m = NULL;
    dv_error_t err = {0};
    DV_CHECK_EQ(dv_msg_decode(&m, h, hlen, NULL, 0, NULL, &err), 0);
    char **v = NULL;
    size_t n = 0;
    DV_CHECK_EQ(dv_msg_strs(m, "classes", 16, 64, &v, &n, &err), DV_EFORMAT);
    DV_CHECK_EQ(dv_msg_strs_packed(m, "classes", 16, 64, &v, &n, &err),
                DV_EFORMAT);
    DV_CHECK(!v && n == 0);
    dv_msg_destroy(&m);
    dv_msgw_destroy(&w);
}

// A submit_many's requests as views in one block: each reads its own map
// and frame under its own rid; the first request that is not a map or has
// no non-zero rid is named by index, and the block is freed either way.
enum { V_OK, V_NOT_MAP, V_NO_RID, V_RID_ZERO };
static const struct {
    size_t n;   // requests
    size_t bad; // the broken one (n: none)
    int how;    // how it is broken
} s_views[] = {
    {1, 1, V_OK},      {180, 180, V_OK},      {1024, 1024, V_OK},
    {1, 0, V_NOT_MAP}, {20, 19, V_NO_RID},    {20, 7, V_RID_ZERO},
    {5, 0, V_NO_RID},  {300, 150, V_NOT_MAP},
};

static void
test_views(void)
{
    for (size_t r = 0; r < sizeof s_views / sizeof s_views[0]; r++) {
        size_t n = s_views[r].n;
        dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT_MANY, 5);
        dv_msgw_key(w, "requests");
        dv_msgw_v_array(w, n);
        for (size_t i = 0; i < n; i++) {
            int how = i == s_views[r].bad ? s_views[r].how : V_OK;
            if (how == V_NOT_MAP) {
                dv_msgw_v_uint(w, 1000 + i);
                continue;
            }
            dv_msgw_v_map(w, 2);
            dv_msgw_v_str(w, how == V_NO_RID ? "rod" : "rid");
            dv_msgw_v_uint(w, how == V_RID_ZERO ? 0 : 1000 + i);
            dv_msgw_v_str(w, "bytes");
            dv_msgw_v_uint(w, i);
        }
        size_t hlen = 0;
        const uint8_t *h = dv_msgw_bytes(w, &hlen);
        dv_msg_t *m = NULL;
        dv_error_t err = {0};
        DV_CHECK_EQ(dv_msg_decode(&m, h, hlen, NULL, 0, NULL, &err), 0);
        const struct msgpack_object *list = dv_msg_get(m, "requests");
        DV_CHECK(list && list->type == MSGPACK_OBJECT_ARRAY &&
                 list->via.array.size == n);
        dv_msg_t **views = calloc(n, sizeof *views);
        dv_frame_t *frames = calloc(n, sizeof *frames);
        uint8_t byte = 7;
        for (size_t i = 0; i < n; i++) {
            frames[i] = (dv_frame_t){&byte, i % 2};
        }
        size_t bad = 12345;
        int rc = dv_msg_views(views, m, list->via.array.ptr, n, DV_MSG_SUBMIT,
                              frames, &bad, &err);
        if (s_views[r].bad == n) {
            DV_CHECK_EQ(rc, 0);
            for (size_t i = 0; i < n; i++) {
                uint64_t bytes = 99;
                DV_CHECK(dv_msg_type(views[i]) == DV_MSG_SUBMIT);
                DV_CHECK_EQ(dv_msg_rid(views[i]), 1000 + i);
                DV_CHECK_EQ(dv_msg_uint(views[i], "bytes", &bytes, &err), 0);
                DV_CHECK_EQ(bytes, i);
                DV_CHECK_EQ(dv_msg_n_frames(views[i]), 1);
                DV_CHECK(dv_msg_frame(views[i], 1) == &frames[i]);
                DV_CHECK_EQ(dv_msg_minor(views[i]), dv_msg_minor(m));
            }
        } else {
            DV_CHECK_EQ(rc, DV_EFORMAT);
            DV_CHECK_EQ(bad, s_views[r].bad);
            DV_CHECK(strstr(err.text, s_views[r].how == V_NOT_MAP
                                          ? "must be a map"
                                          : "'rid'") != NULL);
        }
        dv_msg_views_free(views, n);
        DV_CHECK(views[0] == NULL);
        free(views);
        free(frames);
        dv_msg_destroy(&m);
        dv_msgw_destroy(&w);
    }
}

static const dv_test_case_t cases[] = {
    {"round trip of every field kind", test_round_trip},
    {"optional booleans", test_bool_or},
    {"train map: init and validation_fraction", test_hyper_init_validation},
    {"malformed headers give exact codes", test_bad_headers},
    {"header and frame limits", test_size_limits},
    {"tensor descriptors are checked", test_tensor_checks},
    {"field errors name the field", test_field_errors},
    {"hostile error maps", test_hostile_error_maps},
    {"random mutations never crash", test_mutations_never_crash},
    {"message names are unique", test_names_unique},
    {"too many msgpack objects", test_too_many_objects},
    {"msgpack nesting: bounded, with room for relayed copies",
     test_nesting_depth},
    {"a writer grows past its own block", test_writer_growth},
    {"nested trees decode whole", test_nested_decode},
    {"string lists, inline, in a frame, packed", test_string_lists},
    {"a submit_many's requests as views in one block", test_views},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
