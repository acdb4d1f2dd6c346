// test_modelfile — the .drvm format: round trips, determinism, and every
// kind of bad file (truncated, corrupted, wrong version, hostile bodies with
// a valid checksum) with its exact DV_E* code.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "dv_csv.h"
#include "dv_modelfile.h"
#include "dv_rng.h"
#include "dv_sha256.h"
#include "dv_test.h"
#include "dv_train.h"

static dv_model_t *
trained(const char *file, dv_algo_t algo)
{
    dv_dataset_t *ds = NULL;
    dv_error_t err = {0};
    if (dv_csv_load(&ds, dv_test_data(file), NULL, &err)) {
        return NULL;
    }
    dv_hyper_t h;
    dv_hyper_default(&h, algo);
    h.epochs = 5;
    dv_train_opts_t opts = {.task = -1, .created_unix = 1700000000};
    dv_model_t *m = NULL;
    dv_train(&m, ds, &h, &opts, &err);
    dv_dataset_destroy(&ds);
    return m;
}

static bool
same_model(const dv_model_t *a, const dv_model_t *b)
{
    if (a->task != b->task || a->n_features != b->n_features ||
        a->n_layers != b->n_layers || strcmp(a->target_name, b->target_name) ||
        a->y_offset != b->y_offset || a->y_scale != b->y_scale ||
        a->scaler->kind != b->scaler->kind ||
        memcmp(a->scaler->offset, b->scaler->offset,
               a->n_features * sizeof(float)) ||
        memcmp(a->scaler->scale, b->scaler->scale,
               a->n_features * sizeof(float))) {
        return false;
    }
    for (size_t j = 0; j < a->n_features; j++) {
        if (strcmp(a->feature_names[j], b->feature_names[j])) {
            return false;
        }
    }
    if ((a->labels == NULL) != (b->labels == NULL)) {
        return false;
    }
    if (a->labels) {
        if (a->labels->n != b->labels->n ||
            a->labels->numeric != b->labels->numeric) {
            return false;
        }
        for (size_t c = 0; c < a->labels->n; c++) {
            if (strcmp(a->labels->labels[c], b->labels->labels[c])) {
                return false;
            }
        }
    }
    for (size_t l = 0; l < a->n_layers; l++) {
        const dv_layer_t *x = &a->layers[l], *y = &b->layers[l];
        if (x->n_in != y->n_in || x->n_out != y->n_out || x->act != y->act ||
            memcmp(x->w, y->w, x->n_in * x->n_out * sizeof(float)) ||
            memcmp(x->b, y->b, x->n_out * sizeof(float))) {
            return false;
        }
    }
    const dv_model_meta_t *p = &a->meta, *q = &b->meta;
    return p->hyper.algo == q->hyper.algo && p->hyper.seed == q->hyper.seed &&
           p->hyper.lr == q->hyper.lr &&
           p->hyper.n_hidden == q->hyper.n_hidden &&
           p->dataset_rows == q->dataset_rows &&
           memcmp(p->dataset_sha256, q->dataset_sha256, 32) == 0 &&
           p->created_unix == q->created_unix &&
           p->epochs_run == q->epochs_run &&
           p->train_metrics.accuracy == q->train_metrics.accuracy &&
           p->train_metrics.r2 == q->train_metrics.r2 &&
           strcmp(p->drover_version, q->drover_version) == 0;
}

static void
test_round_trip(void)
{
    const struct {
        const char *file;
        dv_algo_t algo;
    } rows[] = {
        {"iris_train.csv", DV_ALGO_MLP},
        {"iris_train.csv", DV_ALGO_SOFTMAX},
        {"diabetes_train.csv", DV_ALGO_RIDGE},
        {"diabetes_train.csv", DV_ALGO_GD},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        dv_model_t *m = trained(rows[i].file, rows[i].algo);
        DV_CHECK(m != NULL);
        uint8_t *buf = NULL, *buf2 = NULL;
        size_t len = 0, len2 = 0;
        dv_error_t err = {0};
        int rc = dv_model_encode(m, &buf, &len, &err);
        dv_model_t *back = NULL;
        if (rc == 0) {
            rc = dv_model_decode(&back, buf, len, &err);
        }
        bool same = rc == 0 && same_model(m, back);
        // Encoding the decoded model gives the same bytes.
        bool stable = rc == 0 &&
                      dv_model_encode(back, &buf2, &len2, &err) == 0 &&
                      len == len2 && memcmp(buf, buf2, len) == 0;
        free(buf);
        free(buf2);
        dv_model_destroy(&m);
        dv_model_destroy(&back);
        DV_CHECK_RC(rc, 0, &err);
        DV_CHECK(same);
        DV_CHECK(stable);
    }
}

static void
test_header_layout(void)
{
    dv_model_t *m = trained("iris_train.csv", DV_ALGO_SOFTMAX);
    DV_CHECK(m != NULL);
    uint8_t *buf = NULL;
    size_t len = 0;
    dv_error_t err = {0};
    int rc = dv_model_encode(m, &buf, &len, &err);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc, 0, &err);
    uint64_t body = 0;
    for (int i = 7; i >= 0; i--) {
        body = body << 8 | buf[8 + i];
    }
    uint8_t digest[32];
    dv_sha256(buf, len - 32, digest);
    bool ok = memcmp(buf, "DRVM", 4) == 0 && buf[4] == 1 && buf[5] == 0 &&
              buf[6] == 0 && buf[7] == 0 && body + 48 == len &&
              memcmp(digest, buf + len - 32, 32) == 0 &&
              (buf[16] & 0xf0) == 0x80; // body starts with a fixmap
    free(buf);
    DV_CHECK(ok);
}

static void
test_save_load(void)
{
    dv_model_t *m = trained("iris_train.csv", DV_ALGO_MLP);
    DV_CHECK(m != NULL);
    char *dir = dv_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/m.drvm", dir);
    dv_error_t err = {0};
    int rc_save = dv_model_save(m, path, &err);
    dv_model_t *back = NULL;
    int rc_load = rc_save ? rc_save : dv_model_load(&back, path, &err);
    bool same = rc_load == 0 && same_model(m, back);
    snprintf(path, sizeof path, "%s/nope.drvm", dir);
    dv_model_t *none = NULL;
    int rc_missing = dv_model_load(&none, path, &err);
    bool named = strstr(err.text, "nope.drvm") != NULL;
    snprintf(path, sizeof path, "%s/no/such/dir/m.drvm", dir);
    int rc_nodir = dv_model_save(m, path, &err);
    dv_model_destroy(&m);
    dv_model_destroy(&back);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_EQ(rc_save, 0);
    DV_CHECK_EQ(rc_load, 0);
    DV_CHECK(same);
    DV_CHECK_EQ(rc_missing, DV_ENOENT);
    DV_CHECK(named);
    DV_CHECK(none == NULL);
    DV_CHECK_EQ(rc_nodir, DV_ENOENT);
}

static int
decode_code(const uint8_t *buf, size_t len)
{
    dv_model_t *m = NULL;
    dv_error_t err = {0};
    int rc = dv_model_decode(&m, buf, len, &err);
    dv_model_destroy(&m);
    return rc;
}

static void
test_damaged_files(void)
{
    dv_model_t *m = trained("iris_train.csv", DV_ALGO_MLP);
    DV_CHECK(m != NULL);
    uint8_t *buf = NULL;
    size_t len = 0;
    dv_error_t err = {0};
    int rc = dv_model_encode(m, &buf, &len, &err);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc, 0, &err);
    uint8_t *copy = malloc(len + 1);
    int failures = 0;
#define EXPECT(code, label)                                                    \
    do {                                                                       \
        int got_ = decode_code(copy, n);                                       \
        if (got_ != (code)) {                                                  \
            fprintf(stderr, "  %s: got %s\n", label, dv_err_name(got_));       \
            failures++;                                                        \
        }                                                                      \
    } while (0)
    size_t n = 0;
    memcpy(copy, buf, len);
    EXPECT(DV_ETRUNC, "empty");
    n = 10;
    EXPECT(DV_ETRUNC, "10 bytes");
    // Truncated anywhere after the header.
    for (n = 16; n < len; n += len / 23 + 1) {
        EXPECT(DV_ETRUNC, "truncated");
    }
    n = len + 1;
    copy[len] = 0;
    EXPECT(DV_ETRUNC, "trailing byte");
    n = len;
    copy[0] = 'X';
    EXPECT(DV_EFORMAT, "magic");
    memcpy(copy, buf, len);
    copy[4] = 2;
    EXPECT(DV_EVERSION, "major 2");
    memcpy(copy, buf, len);
    copy[6] = 7; // a newer minor is fine... but it is under the checksum
    EXPECT(DV_ECHECKSUM, "minor changed without checksum");
    memcpy(copy, buf, len);
    copy[15] = 0x7f; // body length of ~9e18
    EXPECT(DV_EMSGSIZE, "absurd body length");
    // Any flipped bit in body or trailer is caught by the checksum.
    for (size_t i = 16; i < len; i += 7) {
        memcpy(copy, buf, len);
        copy[i] ^= 0x10;
        EXPECT(DV_ECHECKSUM, "bit flip");
    }
#undef EXPECT
    free(copy);
    free(buf);
    DV_CHECK_EQ(failures, 0);
}

// ---- hostile bodies with a valid checksum: they reach the field checks.

typedef enum {
    CRAFT_VALID,
    CRAFT_LAYERS_NOT_ARRAY,
    CRAFT_SHORT_WEIGHTS,
    CRAFT_ABSURD_IN,
    CRAFT_NAN_WEIGHT,
    CRAFT_UNCHAINED,
    CRAFT_EXTRA_KEY,
    CRAFT_NO_FEATURES,
    CRAFT_HUGE_ARRAY_HEADER,
    CRAFT_BAD_ACTIVATION,
    CRAFT_TWO_OBJECTS,
} craft_t;

static void
pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void
pk_floats(msgpack_packer *pk, const float *v, size_t n)
{
    msgpack_pack_bin(pk, n * 4); // the test host is little-endian (x86_64)
    msgpack_pack_bin_body(pk, v, n * 4);
}

// A 2-feature regression model, 2 layers (2x3 relu, 3x1 identity), with one
// mutation applied; returns a complete file image (caller frees).
static uint8_t *
craft(craft_t what, size_t *len_out)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int keys = 8 + (what == CRAFT_EXTRA_KEY) - (what == CRAFT_NO_FEATURES);
    msgpack_pack_map(&pk, (size_t)keys);
    pk_str(&pk, "kind");
    pk_str(&pk, "dense_stack");
    pk_str(&pk, "task");
    pk_str(&pk, "regression");
    if (what != CRAFT_NO_FEATURES) {
        pk_str(&pk, "features");
        if (what == CRAFT_HUGE_ARRAY_HEADER) {
            // array32 claiming 2^32-1 names, with 2 present.
            const char hdr[] = {(char)0xdd, (char)0xff, (char)0xff, (char)0xff,
                                (char)0xff};
            msgpack_sbuffer_write(&sb, hdr, sizeof hdr);
        } else {
            msgpack_pack_array(&pk, 2);
        }
        pk_str(&pk, "x1");
        pk_str(&pk, "x2");
    }
    pk_str(&pk, "target");
    pk_str(&pk, "y");
    pk_str(&pk, "scaler");
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "kind");
    pk_str(&pk, "none");
    float zeros[2] = {0, 0}, ones[2] = {1, 1};
    pk_str(&pk, "offset");
    pk_floats(&pk, zeros, 2);
    pk_str(&pk, "scale");
    pk_floats(&pk, ones, 2);
    pk_str(&pk, "y_offset");
    msgpack_pack_float(&pk, 0);
    pk_str(&pk, "y_scale");
    msgpack_pack_float(&pk, 1);
    pk_str(&pk, "layers");
    if (what == CRAFT_LAYERS_NOT_ARRAY) {
        pk_str(&pk, "oops");
    } else {
        msgpack_pack_array(&pk, 2);
        float w0[6] = {1, 2, 3, 4, 5, 6}, b0[3] = {0, 0, 0};
        float w1[3] = {1, 1, 1}, b1[1] = {0};
        if (what == CRAFT_NAN_WEIGHT) {
            w0[4] = NAN;
        }
        msgpack_pack_map(&pk, 5);
        pk_str(&pk, "in");
        msgpack_pack_uint64(&pk, what == CRAFT_ABSURD_IN ? 4000000000u : 2);
        pk_str(&pk, "out");
        msgpack_pack_uint64(&pk, 3);
        pk_str(&pk, "activation");
        pk_str(&pk, what == CRAFT_BAD_ACTIVATION ? "gelu" : "relu");
        pk_str(&pk, "weights");
        pk_floats(&pk, w0, what == CRAFT_SHORT_WEIGHTS ? 5 : 6);
        pk_str(&pk, "bias");
        pk_floats(&pk, b0, 3);
        msgpack_pack_map(&pk, 5);
        pk_str(&pk, "in");
        msgpack_pack_uint64(&pk, what == CRAFT_UNCHAINED ? 4 : 3);
        pk_str(&pk, "out");
        msgpack_pack_uint64(&pk, 1);
        pk_str(&pk, "activation");
        pk_str(&pk, "identity");
        float w1big[4] = {1, 1, 1, 1};
        pk_str(&pk, "weights");
        if (what == CRAFT_UNCHAINED) {
            pk_floats(&pk, w1big, 4);
        } else {
            pk_floats(&pk, w1, 3);
        }
        pk_str(&pk, "bias");
        pk_floats(&pk, b1, 1);
    }
    if (what == CRAFT_EXTRA_KEY) {
        pk_str(&pk, "from_the_future");
        msgpack_pack_array(&pk, 2);
        msgpack_pack_nil(&pk);
        msgpack_pack_true(&pk);
    }
    if (what == CRAFT_TWO_OBJECTS) {
        msgpack_pack_nil(&pk);
    }
    size_t len = 16 + sb.size + 32;
    uint8_t *buf = malloc(len);
    memcpy(buf, "DRVM\x01\x00\x00\x00", 8);
    for (int i = 0; i < 8; i++) {
        buf[8 + i] = (uint8_t)((uint64_t)sb.size >> (8 * i));
    }
    memcpy(buf + 16, sb.data, sb.size);
    dv_sha256(buf, 16 + sb.size, buf + 16 + sb.size);
    msgpack_sbuffer_destroy(&sb);
    *len_out = len;
    return buf;
}

static void
test_hostile_bodies(void)
{
    static const struct {
        craft_t what;
        int code;
        const char *needle;
    } rows[] = {
        {CRAFT_VALID, 0, ""},
        {CRAFT_EXTRA_KEY, 0, ""},
        {CRAFT_LAYERS_NOT_ARRAY, DV_EFORMAT, "layers"},
        {CRAFT_SHORT_WEIGHTS, DV_EFORMAT, "layers[0].weights"},
        {CRAFT_ABSURD_IN, DV_EMSGSIZE, "layers[0].in"},
        {CRAFT_NAN_WEIGHT, DV_ENAN, "layer 0"},
        {CRAFT_UNCHAINED, DV_ESHAPE, "layer 1"},
        {CRAFT_NO_FEATURES, DV_EFORMAT, "features: missing"},
        {CRAFT_HUGE_ARRAY_HEADER, DV_EFORMAT, "exceed"},
        {CRAFT_BAD_ACTIVATION, DV_EFORMAT, "gelu"},
        {CRAFT_TWO_OBJECTS, DV_EFORMAT, "after the top-level map"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t len = 0;
        uint8_t *buf = craft(rows[i].what, &len);
        dv_model_t *m = NULL;
        dv_error_t err = {0};
        int rc = dv_model_decode(&m, buf, len, &err);
        bool said = strstr(err.text, rows[i].needle) != NULL;
        if (rc != rows[i].code || !said) {
            fprintf(stderr, "  craft %d: %s \"%s\"\n", (int)rows[i].what,
                    dv_err_name(rc), err.text);
        }
        bool predicts = true;
        if (rc == 0) {
            // The valid craft computes what its weights say: x = (1, 1):
            // relu([1+3, 2+4, ... ]) per the row-major 2x3 weights.
            dv_tensor_t *x = dv_tensor_new(1, 2), *y = NULL;
            x->data[0] = 1;
            x->data[1] = 1;
            predicts = dv_model_predict(m, x, &y, &err) == 0 &&
                       y->data[0] == (1 + 4) + (2 + 5) + (3 + 6);
            dv_tensor_destroy(&x);
            dv_tensor_destroy(&y);
        }
        dv_model_destroy(&m);
        free(buf);
        DV_CHECK_RC(rc, rows[i].code, &err);
        DV_CHECK(said);
        DV_CHECK(predicts);
    }
}

static void
test_invalid_model_not_encoded(void)
{
    dv_model_t *m = trained("iris_train.csv", DV_ALGO_SOFTMAX);
    DV_CHECK(m != NULL);
    m->layers[0].w[0] = NAN;
    uint8_t *buf = NULL;
    size_t len = 0;
    dv_error_t err = {0};
    int rc = dv_model_encode(m, &buf, &len, &err);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc, DV_ENAN, &err);
    DV_CHECK(buf == NULL);
}

// Seeded random mutations of a valid file (a softmax model: its body is mostly
// structure, not weight blobs), re-checksummed so they reach the msgpack and
// field checks: decoding must never crash (ASan/UBSan watch),
// and must either succeed with a valid model or fail with a known error.
static void
test_mutations_never_crash(void)
{
    dv_model_t *m = trained("iris_train.csv", DV_ALGO_SOFTMAX);
    DV_CHECK(m != NULL);
    uint8_t *buf = NULL;
    size_t len = 0;
    dv_error_t err = {0};
    int rc = dv_model_encode(m, &buf, &len, &err);
    dv_model_destroy(&m);
    DV_CHECK_RC(rc, 0, &err);
    uint8_t *copy = malloc(len);
    dv_rng_t rng;
    dv_rng_seed(&rng, 2026);
    size_t ok = 0, refused = 0, unknown = 0;
    size_t body = len - 16 - 32;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(copy, buf, len);
        int flips = 1 + (int)dv_rng_below(&rng, 4);
        for (int f = 0; f < flips; f++) {
            size_t at = 16 + (size_t)dv_rng_below(&rng, body);
            copy[at] = (uint8_t)dv_rng_next(&rng);
        }
        dv_sha256(copy, 16 + body, copy + 16 + body);
        dv_model_t *out = NULL;
        rc = dv_model_decode(&out, copy, len, &err);
        if (rc == 0) {
            ok += dv_model_validate(out, NULL) == 0;
        } else if (strcmp(dv_err_name(rc), "DV_EUNKNOWN") == 0 ||
                   err.text[0] == '\0') {
            unknown++;
        } else {
            refused++;
        }
        dv_model_destroy(&out);
    }
    free(copy);
    free(buf);
    printf("  %zu decoded, %zu refused\n", ok, refused);
    DV_CHECK_EQ(unknown, 0);
    DV_CHECK_EQ(ok + refused, 3000);
    DV_CHECK(refused > 1000); // the mutations do reach the checks
}

static const dv_test_case_t cases[] = {
    {"round trip keeps every field", test_round_trip},
    {"header layout and checksum", test_header_layout},
    {"save then load", test_save_load},
    {"truncated, corrupted, wrong version", test_damaged_files},
    {"hostile bodies with a valid checksum", test_hostile_bodies},
    {"an invalid model is not encoded", test_invalid_model_not_encoded},
    {"random mutations never crash", test_mutations_never_crash},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
