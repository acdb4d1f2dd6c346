// test_modelfile — the .drvm format (docs/MODEL_FORMAT.md): round trips of
// hand-built models, determinism, the byte layout, atomic save/load, and
// every kind of bad file (short, truncated, trailing bytes, corrupted,
// wrong magic or version, hostile bodies with a valid checksum) with its
// exact DV_E* code. Models are built by hand so this binary needs no
// trainer and no data files. Every decode of a damaged image runs on an
// exactly sized heap copy, so ASan catches any read past the end.
#include <dirent.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <msgpack.h>

#include "dv_limits.h"
#include "dv_modelfile.h"
#include "dv_sha256.h"
#include "dv_test.h"

// ------------------------------------------------------------ the models

// Deterministic, varied parameter values: signs and magnitudes, plus a
// negative zero and a subnormal in wider layers, so a round trip that is not
// bit-exact shows.
static float
param(size_t layer, size_t i, size_t n)
{
    if (n > 8 && i == 5) {
        return -0.0f;
    }
    if (n > 8 && i == 6) {
        return 1e-40f; // subnormal
    }
    return sinf((float)(layer * 131 + i + 1) * 0.7f) * (float)(1 + i % 5) *
           1.5f;
}

static void
fill_params(dv_model_t *m)
{
    for (size_t l = 0; l < m->n_layers; l++) {
        dv_layer_t *ly = &m->layers[l];
        for (size_t i = 0; i < ly->n_in * ly->n_out; i++) {
            ly->w[i] = param(l, i, ly->n_in * ly->n_out);
        }
        for (size_t i = 0; i < ly->n_out; i++) {
            ly->b[i] = param(l + 7, i, ly->n_out) / 10;
        }
    }
}

static void
set_names(dv_model_t *m, const char *const *features, const char *target)
{
    for (size_t j = 0; j < m->n_features; j++) {
        free(m->feature_names[j]);
        m->feature_names[j] = strdup(features[j]);
    }
    free(m->target_name);
    m->target_name = strdup(target);
}

static void
set_labels(dv_model_t *m, const char *const *labels, size_t n, bool numeric)
{
    dv_labels_destroy(&m->labels);
    m->labels = dv_labels_new((char *const *)labels, n, numeric);
}

static void
set_scaler(dv_model_t *m, dv_scale_t kind)
{
    float off[16], sc[16];
    for (size_t j = 0; j < m->n_features; j++) {
        off[j] = 5.8f - (float)j * 1.25f;
        sc[j] = 1.0f / (0.8f + (float)j);
    }
    dv_scaler_destroy(&m->scaler);
    m->scaler = dv_scaler_new(kind, m->n_features, off, sc);
}

// A 2-layer MLP classifier: 4 features, 5 ReLU units, 3 softmax classes,
// text labels, a standard scaler, every metadata field set.
static dv_model_t *
mlp_classifier(void)
{
    static const size_t widths[] = {4, 5, 3};
    static const dv_act_t acts[] = {DV_ACT_RELU, DV_ACT_SOFTMAX};
    static const char *const features[] = {"sepal length", "sepal.width",
                                           "petal \"length\"", "p\xc3\xa9tal"};
    static const char *const labels[] = {"setosa", "versicolor", "virginica"};
    dv_model_t *m = dv_test_model(DV_TASK_CLASSIFICATION, 2, widths, acts, 3);
    set_names(m, features, "species");
    set_labels(m, labels, 3, false);
    set_scaler(m, DV_SCALE_STANDARD);
    fill_params(m);
    dv_model_meta_t *meta = &m->meta;
    meta->hyper = (dv_hyper_t){
        .algo = DV_ALGO_MLP,
        .scale = DV_SCALE_STANDARD,
        .epochs = 200,
        .batch = 32,
        .lr = 1e-3,
        .l2 = 1e-4,
        .tol = 1e-6,
        .patience = 10,
        .seed = 0xdeadbeefcafe1234u,
        .n_hidden = 1,
        .hidden = {5},
        .init = DV_INIT_HE,
        .validation_fraction = 0.1,
    };
    for (int i = 0; i < DV_SHA256_BYTES; i++) {
        meta->dataset_sha256[i] = (uint8_t)(i * 37 + 1);
    }
    meta->dataset_rows = 120;
    meta->epochs_run = 57;
    meta->final_loss = 0.123456789012345;
    dv_metrics_t *tm = &meta->train_metrics;
    tm->task = DV_TASK_CLASSIFICATION;
    tm->rows = 120;
    tm->n_classes = 3;
    tm->accuracy = 0.975;
    tm->precision_macro = 0.9761;
    tm->recall_macro = 0.9752;
    tm->f1_macro = 0.9749;
    tm->log_loss = 0.0871;
    // Kept in memory only: the file holds the scalars.
    tm->confusion = calloc(9, sizeof(uint64_t));
    tm->confusion[0] = 40;
    meta->created_unix = 1700000000;
    snprintf(meta->drover_version, sizeof meta->drover_version, "0.1.0");
    return m;
}

// A 1-layer regression model (ridge): 3 features, min-max scaler, a
// standardized target mapped back by y_offset/y_scale.
static dv_model_t *
linear_regressor(void)
{
    static const size_t widths[] = {3, 1};
    static const dv_act_t acts[] = {DV_ACT_IDENTITY};
    static const char *const features[] = {"age", "bmi", "bp"};
    dv_model_t *m = dv_test_model(DV_TASK_REGRESSION, 1, widths, acts, 0);
    set_names(m, features, "progression");
    set_scaler(m, DV_SCALE_MINMAX);
    fill_params(m);
    m->y_offset = 152.133f;
    m->y_scale = 77.093f;
    dv_model_meta_t *meta = &m->meta;
    meta->hyper.algo = DV_ALGO_RIDGE;
    meta->hyper.scale = DV_SCALE_MINMAX;
    meta->hyper.l2 = 1.0;
    meta->dataset_rows = 353;
    meta->final_loss = 2859.69;
    meta->train_metrics.task = DV_TASK_REGRESSION;
    meta->train_metrics.rows = 353;
    meta->train_metrics.mse = 2859.69;
    meta->train_metrics.mae = 43.48;
    meta->train_metrics.r2 = 0.5277;
    meta->created_unix = -86400; // before the epoch: a negative integer
    snprintf(meta->drover_version, sizeof meta->drover_version, "0.1.0");
    return m;
}

// Binary logistic regression: 1 sigmoid unit, numeric labels, no scaling,
// metadata left at its defaults (the zero record).
static dv_model_t *
logreg(void)
{
    static const size_t widths[] = {2, 1};
    static const dv_act_t acts[] = {DV_ACT_SIGMOID};
    static const char *const labels[] = {"0", "1"};
    dv_model_t *m = dv_test_model(DV_TASK_CLASSIFICATION, 1, widths, acts, 2);
    set_labels(m, labels, 2, true);
    fill_params(m);
    m->meta.hyper.algo = DV_ALGO_LOGREG;
    return m;
}

typedef dv_model_t *(*builder_fn)(void);

static const struct {
    const char *name;
    builder_fn build;
} s_models[] = {
    {"mlp classifier", mlp_classifier},
    {"linear regressor", linear_regressor},
    {"logreg", logreg},
};
#define N_MODELS (sizeof s_models / sizeof s_models[0])

// ------------------------------------------------------------ comparison

static bool
same_bits(const void *a, const void *b, size_t n)
{
    return n == 0 || memcmp(a, b, n) == 0;
}

// NULL when a and b hold the same model, bit for bit; else the field.
static const char *
model_diff(const dv_model_t *a, const dv_model_t *b)
{
    if (a->task != b->task) {
        return "task";
    }
    if (a->n_features != b->n_features) {
        return "n_features";
    }
    for (size_t j = 0; j < a->n_features; j++) {
        if (strcmp(a->feature_names[j], b->feature_names[j]) != 0) {
            return "feature_names";
        }
    }
    if (strcmp(a->target_name, b->target_name) != 0) {
        return "target_name";
    }
    if ((a->labels == NULL) != (b->labels == NULL)) {
        return "labels";
    }
    if (a->labels) {
        if (a->labels->n != b->labels->n ||
            a->labels->numeric != b->labels->numeric) {
            return "labels";
        }
        for (size_t c = 0; c < a->labels->n; c++) {
            if (strcmp(a->labels->labels[c], b->labels->labels[c]) != 0) {
                return "labels";
            }
        }
    }
    const dv_scaler_t *sa = a->scaler, *sb = b->scaler;
    if (sa->kind != sb->kind || sa->n != sb->n ||
        !same_bits(sa->offset, sb->offset, sa->n * sizeof(float)) ||
        !same_bits(sa->scale, sb->scale, sa->n * sizeof(float))) {
        return "scaler";
    }
    if (!same_bits(&a->y_offset, &b->y_offset, sizeof(float)) ||
        !same_bits(&a->y_scale, &b->y_scale, sizeof(float))) {
        return "y_offset/y_scale";
    }
    if (a->n_layers != b->n_layers) {
        return "n_layers";
    }
    for (size_t l = 0; l < a->n_layers; l++) {
        const dv_layer_t *x = &a->layers[l], *y = &b->layers[l];
        if (x->n_in != y->n_in || x->n_out != y->n_out || x->act != y->act ||
            !same_bits(x->w, y->w, x->n_in * x->n_out * sizeof(float)) ||
            !same_bits(x->b, y->b, x->n_out * sizeof(float))) {
            return "layers";
        }
    }
    const dv_model_meta_t *p = &a->meta, *q = &b->meta;
    const dv_hyper_t *h = &p->hyper, *k = &q->hyper;
    if (h->algo != k->algo || h->scale != k->scale || h->epochs != k->epochs ||
        h->batch != k->batch || !same_bits(&h->lr, &k->lr, sizeof h->lr) ||
        !same_bits(&h->l2, &k->l2, sizeof h->l2) ||
        !same_bits(&h->tol, &k->tol, sizeof h->tol) ||
        h->patience != k->patience || h->seed != k->seed ||
        h->init != k->init ||
        !same_bits(&h->validation_fraction, &k->validation_fraction,
                   sizeof h->validation_fraction) ||
        h->n_hidden != k->n_hidden ||
        !same_bits(h->hidden, k->hidden, h->n_hidden * sizeof(uint32_t))) {
        return "meta.hyper";
    }
    if (!same_bits(p->dataset_sha256, q->dataset_sha256, DV_SHA256_BYTES) ||
        p->dataset_rows != q->dataset_rows || p->epochs_run != q->epochs_run ||
        !same_bits(&p->final_loss, &q->final_loss, sizeof p->final_loss) ||
        p->created_unix != q->created_unix ||
        strcmp(p->drover_version, q->drover_version) != 0) {
        return "meta";
    }
    const dv_metrics_t *s = &p->train_metrics, *t = &q->train_metrics;
    if (s->task != t->task || s->rows != t->rows) {
        return "meta.train_metrics";
    }
    // The scalars of the metrics' own task; the others are not stored.
    static const struct {
        dv_task_t task;
        size_t offset;
    } scalars[] = {
        {DV_TASK_REGRESSION, offsetof(dv_metrics_t, mse)},
        {DV_TASK_REGRESSION, offsetof(dv_metrics_t, mae)},
        {DV_TASK_REGRESSION, offsetof(dv_metrics_t, r2)},
        {DV_TASK_CLASSIFICATION, offsetof(dv_metrics_t, accuracy)},
        {DV_TASK_CLASSIFICATION, offsetof(dv_metrics_t, precision_macro)},
        {DV_TASK_CLASSIFICATION, offsetof(dv_metrics_t, recall_macro)},
        {DV_TASK_CLASSIFICATION, offsetof(dv_metrics_t, f1_macro)},
        {DV_TASK_CLASSIFICATION, offsetof(dv_metrics_t, precision)},
        {DV_TASK_CLASSIFICATION, offsetof(dv_metrics_t, recall)},
        {DV_TASK_CLASSIFICATION, offsetof(dv_metrics_t, f1)},
        {DV_TASK_CLASSIFICATION, offsetof(dv_metrics_t, log_loss)},
    };
    if (s->task == DV_TASK_CLASSIFICATION && s->n_classes != t->n_classes) {
        return "meta.train_metrics.n_classes";
    }
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        if (scalars[i].task == s->task &&
            !same_bits((const char *)s + scalars[i].offset,
                       (const char *)t + scalars[i].offset, sizeof(double))) {
            return "meta.train_metrics scalars";
        }
    }
    return NULL;
}

// ------------------------------------------------------------ helpers

static uint8_t *
encode(const dv_model_t *m, size_t *len)
{
    uint8_t *buf = NULL;
    dv_error_t err = {0};
    if (dv_model_encode(m, &buf, len, &err) != 0) {
        fprintf(stderr, "  encode: %s\n", err.text);
        return NULL;
    }
    return buf;
}

// Decode an exactly sized heap copy of src[0..n) (ASan sees any overread)
// and return the code; the reason goes to *err when err is not NULL.
static int
decode_copy(const uint8_t *src, size_t n, dv_error_t *err)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, src, n);
    dv_model_t *m = NULL;
    dv_error_t local = {0};
    int rc = dv_model_decode(&m, copy, n, err ? err : &local);
    if (rc == 0 && m == NULL) {
        rc = 1; // success must give a model
    }
    dv_model_destroy(&m);
    free(copy);
    return rc;
}

// Recompute the trailer after editing header or body.
static void
rechecksum(uint8_t *buf, size_t len)
{
    dv_sha256(buf, len - DV_SHA256_BYTES, buf + len - DV_SHA256_BYTES);
}

static uint64_t
body_len_of(const uint8_t *buf)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | buf[8 + i];
    }
    return v;
}

// ------------------------------------------------------------ round trips

static void
test_round_trip(void)
{
    for (size_t i = 0; i < N_MODELS; i++) {
        dv_model_t *m = s_models[i].build();
        size_t len = 0, len2 = 0;
        uint8_t *buf = encode(m, &len), *buf2 = NULL;
        dv_model_t *back = NULL;
        dv_error_t err = {0};
        int rc = buf ? dv_model_decode(&back, buf, len, &err) : -1;
        const char *diff = rc == 0 ? model_diff(m, back) : "decode failed";
        bool no_confusion = rc == 0 && back->meta.train_metrics.confusion == 0;
        // The decoded model encodes to the same bytes.
        if (rc == 0) {
            buf2 = encode(back, &len2);
        }
        bool stable = buf2 && len2 == len && memcmp(buf, buf2, len) == 0;
        if (diff) {
            fprintf(stderr, "  %s: %s differs\n", s_models[i].name, diff);
        }
        free(buf);
        free(buf2);
        dv_model_destroy(&m);
        dv_model_destroy(&back);
        DV_CHECK_RC(rc, 0, &err);
        DV_CHECK(diff == NULL);
        DV_CHECK(no_confusion);
        DV_CHECK(stable);
    }
}

static void
test_deterministic(void)
{
    for (size_t i = 0; i < N_MODELS; i++) {
        // The same record twice, and two records built alike.
        dv_model_t *a = s_models[i].build(), *b = s_models[i].build();
        size_t la = 0, la2 = 0, lb = 0;
        uint8_t *x = encode(a, &la), *x2 = encode(a, &la2), *y = encode(b, &lb);
        bool same = x && x2 && y && la == la2 && la == lb &&
                    memcmp(x, x2, la) == 0 && memcmp(x, y, la) == 0;
        free(x);
        free(x2);
        free(y);
        dv_model_destroy(&a);
        dv_model_destroy(&b);
        DV_CHECK(same);
    }
    // A classifier's output mapping is not part of the model: any value in
    // the record gives the bytes of 0 and 1.
    dv_model_t *a = mlp_classifier(), *b = mlp_classifier();
    b->y_offset = 3;
    b->y_scale = 2;
    size_t la = 0, lb = 0;
    uint8_t *x = encode(a, &la), *y = encode(b, &lb);
    bool same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    dv_model_destroy(&a);
    dv_model_destroy(&b);
    DV_CHECK(same);
}

// The layout docs/MODEL_FORMAT.md promises, read back with msgpack-c
// directly: header fields, checksum, and weights as bin of float32 LE.
static void
test_layout(void)
{
    dv_model_t *m = mlp_classifier();
    size_t len = 0;
    uint8_t *buf = encode(m, &len);
    DV_CHECK(buf != NULL);
    uint8_t digest[DV_SHA256_BYTES];
    dv_sha256(buf, len - DV_SHA256_BYTES, digest);
    bool header = memcmp(buf, "DRVM\x01\x00\x00\x00", 8) == 0 &&
                  body_len_of(buf) + 16 + 32 == len &&
                  memcmp(digest, buf + len - 32, 32) == 0;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int ur = msgpack_unpack_next(&up, (const char *)buf + 16, len - 48, &off);
    const msgpack_object *root = &up.data;
    bool keys = ur == MSGPACK_UNPACK_SUCCESS && off == len - 48 &&
                root->type == MSGPACK_OBJECT_MAP && root->via.map.size == 12;
    static const char *const order[] = {"kind",
                                        "algo",
                                        "task",
                                        "features",
                                        "target",
                                        "classes",
                                        "classes_numeric",
                                        "scaler",
                                        "y_offset",
                                        "y_scale",
                                        "layers",
                                        "meta"};
    for (uint32_t i = 0; keys && i < 12; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key;
        keys = k->type == MSGPACK_OBJECT_STR &&
               k->via.str.size == strlen(order[i]) &&
               memcmp(k->via.str.ptr, order[i], k->via.str.size) == 0;
    }
    bool blob = false;
    if (keys) {
        const msgpack_object *layers = &root->via.map.ptr[10].val;
        const msgpack_object *l0 = &layers->via.array.ptr[0];
        const msgpack_object *w = &l0->via.map.ptr[3].val;
        const float w3 = m->layers[0].w[3];
        uint32_t u;
        memcpy(&u, &w3, 4);
        const uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8),
                               (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
        blob = w->type == MSGPACK_OBJECT_BIN && w->via.bin.size == 4 * 5 * 4 &&
               memcmp(w->via.bin.ptr + 12, le, 4) == 0;
    }
    msgpack_unpacked_destroy(&up);
    free(buf);
    dv_model_destroy(&m);
    DV_CHECK(header);
    DV_CHECK(keys);
    DV_CHECK(blob);
}

// ------------------------------------------------------------ files

static size_t
count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    }
    if (d) {
        closedir(d);
    }
    return n;
}

static void
test_save_load(void)
{
    dv_model_t *m = mlp_classifier(), *other = linear_regressor();
    char *dir = dv_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/m.drvm", dir);
    dv_error_t err = {0};
    // Save over an existing file: the new one replaces it whole.
    int rc_first = dv_model_save(other, path, &err);
    int rc_save = dv_model_save(m, path, &err);
    dv_model_t *back = NULL;
    int rc_load = dv_model_load(&back, path, &err);
    const char *diff = rc_load == 0 ? model_diff(m, back) : "load failed";
    size_t len = 0, flen = 0;
    uint8_t *want = encode(m, &len);
    uint8_t *got = dv_test_read_file(path, &flen);
    bool bytes = want && got && len == flen && memcmp(want, got, len) == 0;
    bool one_file = count_entries(dir) == 1; // no temporary left behind
    struct stat st;
    bool readable = stat(path, &st) == 0 && (st.st_mode & 0444) == 0444;

    // A corrupted file: the reason names the path.
    got[len / 2] ^= 1;
    dv_test_write_file(path, got, flen);
    dv_model_t *none = NULL;
    int rc_corrupt = dv_model_load(&none, path, &err);
    bool named_corrupt = strstr(err.text, "m.drvm: SHA-256") != NULL;

    snprintf(path, sizeof path, "%s/nope.drvm", dir);
    int rc_missing = dv_model_load(&none, path, &err);
    bool named_missing = strstr(err.text, "nope.drvm") != NULL;
    int rc_dir = dv_model_load(&none, dir, &err);
    snprintf(path, sizeof path, "%s/no/such/dir/m.drvm", dir);
    int rc_nodir = dv_model_save(m, path, &err);
    // Saving onto a directory fails at rename: the temporary is removed.
    snprintf(path, sizeof path, "%s/sub", dir);
    mkdir(path, 0700);
    int rc_onto_dir = dv_model_save(m, path, &err);
    bool cleaned = count_entries(dir) == 2; // m.drvm and sub

    free(want);
    free(got);
    dv_model_destroy(&m);
    dv_model_destroy(&other);
    dv_model_destroy(&back);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_EQ(rc_first, 0);
    DV_CHECK_EQ(rc_save, 0);
    DV_CHECK_EQ(rc_load, 0);
    DV_CHECK(diff == NULL);
    DV_CHECK(bytes);
    DV_CHECK(one_file);
    DV_CHECK(readable);
    DV_CHECK_EQ(rc_corrupt, DV_ECHECKSUM);
    DV_CHECK(named_corrupt);
    DV_CHECK_EQ(rc_missing, DV_ENOENT);
    DV_CHECK(named_missing);
    DV_CHECK(none == NULL);
    DV_CHECK_EQ(rc_dir, DV_EIO);
    DV_CHECK_EQ(rc_nodir, DV_ENOENT);
    DV_CHECK_EQ(rc_onto_dir, DV_EIO);
    DV_CHECK(cleaned);
}

// ------------------------------------------------------------ damaged files

static void
test_damaged_frames(void)
{
    dv_model_t *m = linear_regressor();
    size_t len = 0;
    uint8_t *buf = encode(m, &len);
    dv_model_destroy(&m);
    DV_CHECK(buf != NULL);
    uint8_t *ed = malloc(len + 1);
    int failures = 0;
#define EXPECT(code, n, label)                                                 \
    do {                                                                       \
        dv_error_t e_ = {0};                                                   \
        int got_ = decode_copy(ed, (n), &e_);                                  \
        if (got_ != (code)) {                                                  \
            fprintf(stderr, "  %s: got %s (%s)\n", label, dv_err_name(got_),   \
                    e_.text);                                                  \
            failures++;                                                        \
        }                                                                      \
    } while (0)
#define RESET() memcpy(ed, buf, len)
    RESET();
    EXPECT(DV_ETRUNC, 0, "empty");
    EXPECT(DV_ETRUNC, 10, "10 bytes");
    EXPECT(DV_ETRUNC, 15, "15 bytes");
    size_t cuts[] = {16, 17, 100, len / 2, len - 33, len - 32, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        EXPECT(DV_ETRUNC, cuts[i], "truncated");
    }
    ed[len] = 0;
    EXPECT(DV_ETRUNC, len + 1, "one trailing byte");
    EXPECT(0, len, "intact");

    // Each check, and the order between them.
    ed[0] = 'X';
    EXPECT(DV_EFORMAT, len, "wrong magic");
    EXPECT(DV_EFORMAT, 16, "wrong magic, 16 bytes");
    EXPECT(DV_ETRUNC, 12, "wrong magic, too short for a header");
    RESET();
    ed[4] = 2;
    dv_error_t err = {0};
    int rc_v2 = decode_copy(ed, len, &err);
    bool v2_text =
        strstr(err.text, "model file version 2.0, this Drover reads 1.x");
    EXPECT(DV_EVERSION, 16, "major 2 before the length check");
    ed[4] = 0;
    EXPECT(DV_EVERSION, len, "major 0");
    RESET();
    ed[6] = 1; // a newer minor is read, but it is under the checksum
    EXPECT(DV_ECHECKSUM, len, "minor changed, old checksum");
    rechecksum(ed, len);
    EXPECT(0, len, "minor 1 re-checksummed");
    RESET();
    ed[15] = 0x7f; // ~9e18 bytes of body
    EXPECT(DV_EMSGSIZE, len, "absurd body length");
    RESET();
    ed[11] = 0x80; // 2 GiB + the real length: one past the limit
    EXPECT(DV_EMSGSIZE, len, "body length over the limit");
    RESET();
    ed[8]++;
    EXPECT(DV_ETRUNC, len, "body length one more");
    RESET();
    ed[8]--;
    EXPECT(DV_ETRUNC, len, "body length one less (trailing byte)");
#undef EXPECT
#undef RESET
    free(ed);
    free(buf);
    DV_CHECK_EQ(failures, 0);
    DV_CHECK_RC(rc_v2, DV_EVERSION, &err);
    DV_CHECK(v2_text);
}

// Every byte of the file, each of two bits flipped: the header fields give
// their own errors, anything else is a checksum mismatch.
static void
test_every_corrupt_byte(void)
{
    dv_model_t *m = mlp_classifier();
    size_t len = 0;
    uint8_t *buf = encode(m, &len);
    dv_model_destroy(&m);
    DV_CHECK(buf != NULL);
    uint8_t *ed = malloc(len);
    int failures = 0, tried = 0;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            memcpy(ed, buf, len);
            ed[i] ^= (uint8_t)(1u << bit);
            int want;
            if (i < 4) {
                want = DV_EFORMAT;
            } else if (i < 6) {
                want = DV_EVERSION;
            } else if (i < 8 || i >= 16) {
                want = DV_ECHECKSUM; // minor, body, trailer
            } else {
                want = body_len_of(ed) > DV_MAX_MODEL_BYTES ? DV_EMSGSIZE
                                                            : DV_ETRUNC;
            }
            int got = decode_copy(ed, len, NULL);
            if (got != want) {
                fprintf(stderr, "  byte %zu bit %d: got %s, want %s\n", i, bit,
                        dv_err_name(got), dv_err_name(want));
                failures++;
            }
            tried++;
        }
    }
    free(ed);
    free(buf);
    DV_CHECK_EQ(failures, 0);
    DV_CHECK_EQ(tried, 2 * (int)len);
}

// ------------------------------------------------------------ hostile bodies

// One change each to a valid hand-written body (2 features, a 2x3 ReLU layer
// then a 3x1 identity layer, regression), re-checksummed so the file passes
// the frame checks and reaches the field checks.
typedef enum {
    C_VALID,
    C_EXTRA_KEYS,
    C_BODY_NOT_MAP,
    C_TWO_OBJECTS,
    C_HUGE_ARRAY_HEADER,
    C_WRONG_KIND,
    C_NO_FEATURES,
    C_FEATURES_EMPTY,
    C_FEATURE_NUL,
    C_FEATURE_LONG,
    C_DUPLICATE_KEY,
    C_NO_Y_SCALE,
    C_CLASSIFICATION_NO_CLASSES,
    C_LAYERS_NOT_ARRAY,
    C_LAYERS_TOO_MANY,
    C_WEIGHTS_SHORT,
    C_WEIGHTS_AS_ARRAY,
    C_ABSURD_IN,
    C_PARAMS_OVER,
    C_NAN_WEIGHT,
    C_UNCHAINED,
    C_BAD_ACTIVATION,
    C_META_WRONG_TYPE,
    C_META_UNKNOWN_ALGO,
    C_META_UNKNOWN_INIT,
    C_TOP_ALGO_ONLY,
    C_ALGO_MISMATCH,
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
    // Little-endian host (x86_64, aarch64): the bytes are the format's.
    msgpack_pack_bin(pk, n * 4);
    msgpack_pack_bin_body(pk, v, n * 4);
}

static void
pk_layer(msgpack_packer *pk,
         craft_t c,
         uint64_t n_in,
         uint64_t n_out,
         const char *act,
         const float *w,
         const float *b)
{
    bool extra = c == C_EXTRA_KEYS;
    msgpack_pack_map(pk, 5 + extra);
    pk_str(pk, "in");
    msgpack_pack_uint64(pk, n_in);
    pk_str(pk, "out");
    msgpack_pack_uint64(pk, n_out);
    pk_str(pk, "activation");
    pk_str(pk, act);
    if (extra) {
        pk_str(pk, "dropout");
        msgpack_pack_double(pk, 0.5);
    }
    pk_str(pk, "weights");
    if (c == C_WEIGHTS_AS_ARRAY) {
        msgpack_pack_array(pk, n_in * n_out);
        for (size_t i = 0; i < n_in * n_out; i++) {
            msgpack_pack_float(pk, w[i]);
        }
    } else if (c == C_PARAMS_OVER || c == C_ABSURD_IN) {
        msgpack_pack_nil(pk); // never looked at: the sizes stop it first
    } else {
        size_t n = n_in * n_out;
        pk_floats(pk, w, c == C_WEIGHTS_SHORT ? n - 1 : n);
    }
    pk_str(pk, "bias");
    if (c == C_PARAMS_OVER) {
        msgpack_pack_nil(pk);
    } else {
        pk_floats(pk, b, n_out);
    }
}

// Wrap a body in a header and a correct trailer; caller frees the image.
static uint8_t *
frame(msgpack_sbuffer *sb, size_t *len_out)
{
    size_t len = 16 + sb->size + 32;
    uint8_t *buf = malloc(len);
    memcpy(buf, "DRVM\x01\x00\x00\x00", 8);
    for (int i = 0; i < 8; i++) {
        buf[8 + i] = (uint8_t)((uint64_t)sb->size >> (8 * i));
    }
    memcpy(buf + 16, sb->data, sb->size);
    rechecksum(buf, len);
    msgpack_sbuffer_destroy(sb);
    *len_out = len;
    return buf;
}

static uint8_t *
craft(craft_t c, size_t *len_out)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (c == C_BODY_NOT_MAP) {
        msgpack_pack_array(&pk, 0);
        return frame(&sb, len_out);
    }
    size_t keys = 9;
    keys += c == C_EXTRA_KEYS || c == C_DUPLICATE_KEY;
    keys += c == C_TOP_ALGO_ONLY || c == C_ALGO_MISMATCH;
    keys -= c == C_NO_FEATURES || c == C_NO_Y_SCALE;
    msgpack_pack_map(&pk, keys);
    pk_str(&pk, "kind");
    pk_str(&pk, c == C_WRONG_KIND ? "tree_ensemble" : "dense_stack");
    if (c == C_TOP_ALGO_ONLY || c == C_ALGO_MISMATCH) {
        pk_str(&pk, "algo");
        pk_str(&pk, c == C_ALGO_MISMATCH ? "gd" : "mlp");
    }
    pk_str(&pk, "task");
    pk_str(&pk,
           c == C_CLASSIFICATION_NO_CLASSES ? "classification" : "regression");
    if (c == C_EXTRA_KEYS) {
        pk_str(&pk, "from_the_future");
        msgpack_pack_array(&pk, 2);
        msgpack_pack_nil(&pk);
        msgpack_pack_map(&pk, 1);
        pk_str(&pk, "x");
        msgpack_pack_true(&pk);
    }
    if (c != C_NO_FEATURES) {
        pk_str(&pk, "features");
        if (c == C_HUGE_ARRAY_HEADER) {
            // array32 claiming 2^32 - 1 names, 2 present: msgpack-c 4.0
            // would allocate 96 GiB for the element table.
            static const char hdr[] = {(char)0xdd, (char)0xff, (char)0xff,
                                       (char)0xff, (char)0xff};
            msgpack_sbuffer_write(&sb, hdr, sizeof hdr);
            pk_str(&pk, "x1");
            pk_str(&pk, "x2");
        } else if (c == C_FEATURES_EMPTY) {
            msgpack_pack_array(&pk, 0);
        } else if (c == C_FEATURE_NUL) {
            msgpack_pack_array(&pk, 2);
            pk_str(&pk, "x1");
            msgpack_pack_str(&pk, 3);
            msgpack_pack_str_body(&pk, "x\0y", 3);
        } else if (c == C_FEATURE_LONG) {
            char *name = malloc(DV_MAX_NAME_BYTES + 2);
            memset(name, 'n', DV_MAX_NAME_BYTES + 1);
            name[DV_MAX_NAME_BYTES + 1] = '\0';
            msgpack_pack_array(&pk, 2);
            pk_str(&pk, name);
            pk_str(&pk, "x2");
            free(name);
        } else {
            msgpack_pack_array(&pk, 2);
            pk_str(&pk, "x1");
            pk_str(&pk, "x2");
        }
    }
    pk_str(&pk, "target");
    pk_str(&pk, "y");
    pk_str(&pk, "scaler");
    msgpack_pack_map(&pk, 3 + (c == C_EXTRA_KEYS));
    pk_str(&pk, "kind");
    pk_str(&pk, "none");
    if (c == C_EXTRA_KEYS) {
        pk_str(&pk, "clip");
        msgpack_pack_bin(&pk, 0);
    }
    const float zeros[2] = {0, 0}, ones[2] = {1, 1};
    pk_str(&pk, "offset");
    pk_floats(&pk, zeros, 2);
    pk_str(&pk, "scale");
    pk_floats(&pk, ones, 2);
    pk_str(&pk, "y_offset");
    msgpack_pack_float(&pk, 0);
    if (c != C_NO_Y_SCALE) {
        pk_str(&pk, "y_scale");
        msgpack_pack_float(&pk, 1);
    }
    pk_str(&pk, "layers");
    if (c == C_LAYERS_NOT_ARRAY) {
        pk_str(&pk, "oops");
    } else if (c == C_LAYERS_TOO_MANY) {
        msgpack_pack_array(&pk, DV_MAX_LAYERS + 1);
        for (int i = 0; i <= DV_MAX_LAYERS; i++) {
            msgpack_pack_nil(&pk);
        }
    } else {
        float w0[6] = {1, 2, 3, 4, 5, 6}, b0[3] = {0, 0, 0};
        const float w1[4] = {1, 1, 1, 1}, b1[1] = {0};
        if (c == C_NAN_WEIGHT) {
            w0[4] = NAN;
        }
        uint64_t in0 = c == C_ABSURD_IN     ? 4000000000u
                       : c == C_PARAMS_OVER ? 65536
                                            : 2;
        uint64_t out0 = c == C_PARAMS_OVER ? 65536 : 3;
        msgpack_pack_array(&pk, 2);
        pk_layer(&pk, c, in0, out0, c == C_BAD_ACTIVATION ? "gelu" : "relu", w0,
                 b0);
        pk_layer(&pk, c, c == C_UNCHAINED ? 4 : 3, 1, "identity", w1, b1);
    }
    if (c == C_DUPLICATE_KEY) {
        pk_str(&pk, "layers");
        msgpack_pack_array(&pk, 0);
    }
    pk_str(&pk, "meta");
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "hyper");
    msgpack_pack_map(&pk, c == C_TOP_ALGO_ONLY       ? 1
                          : c == C_META_UNKNOWN_INIT ? 3
                                                     : 2);
    if (c == C_META_UNKNOWN_INIT) {
        pk_str(&pk, "init");
        pk_str(&pk, "lecun");
    }
    if (c != C_TOP_ALGO_ONLY) {
        pk_str(&pk, "algo");
        pk_str(&pk, c == C_META_UNKNOWN_ALGO ? "xgboost" : "mlp");
    }
    pk_str(&pk, "lr");
    if (c == C_META_WRONG_TYPE) {
        pk_str(&pk, "0.001");
    } else {
        msgpack_pack_double(&pk, 0.001);
    }
    if (c == C_TWO_OBJECTS) {
        msgpack_pack_nil(&pk);
    }
    return frame(&sb, len_out);
}

static void
test_hostile_bodies(void)
{
    static const struct {
        craft_t c;
        int code;
        const char *needle; // expected in the reason
    } rows[] = {
        {C_VALID, 0, ""},
        {C_EXTRA_KEYS, 0, ""},
        {C_BODY_NOT_MAP, DV_EFORMAT, "body: expected a map, got an array"},
        {C_TWO_OBJECTS, DV_EFORMAT, "after the top-level map"},
        {C_HUGE_ARRAY_HEADER, DV_EFORMAT, "exceed the data left"},
        {C_WRONG_KIND, DV_EFORMAT, "kind: 'tree_ensemble'"},
        {C_NO_FEATURES, DV_EFORMAT, "features: missing"},
        {C_FEATURES_EMPTY, DV_EFORMAT, "features: empty"},
        {C_FEATURE_NUL, DV_EFORMAT, "features[1]: string holds a NUL"},
        {C_FEATURE_LONG, DV_EMSGSIZE, "features[0]: string of 1025 bytes"},
        {C_DUPLICATE_KEY, DV_EFORMAT, "layers: key appears twice"},
        {C_NO_Y_SCALE, DV_EFORMAT, "y_scale: missing"},
        {C_CLASSIFICATION_NO_CLASSES, DV_EFORMAT, "classes: missing"},
        {C_LAYERS_NOT_ARRAY, DV_EFORMAT,
         "layers: expected an array, got a string"},
        {C_LAYERS_TOO_MANY, DV_EMSGSIZE, "layers: 65 (limit 64)"},
        {C_WEIGHTS_SHORT, DV_EFORMAT,
         "layers[0].weights: expected bin of 24 bytes, got bin of 20 bytes"},
        {C_WEIGHTS_AS_ARRAY, DV_EFORMAT,
         "layers[0].weights: expected bin of 24 bytes, got an array"},
        {C_ABSURD_IN, DV_EMSGSIZE,
         "layers[0].in: 4000000000 exceeds the limit 65536"},
        {C_PARAMS_OVER, DV_EMSGSIZE, "layers[0]: the model passes"},
        {C_NAN_WEIGHT, DV_ENAN, "layer 0"},
        {C_UNCHAINED, DV_ESHAPE, "layer 1"},
        {C_BAD_ACTIVATION, DV_EFORMAT, "layers[0].activation: unknown 'gelu'"},
        {C_META_WRONG_TYPE, DV_EFORMAT,
         "meta.hyper.lr: expected a number, got a string"},
        {C_META_UNKNOWN_ALGO, DV_EFORMAT, "meta.hyper.algo: unknown 'xgboost'"},
        {C_META_UNKNOWN_INIT, DV_EFORMAT, "meta.hyper.init: unknown 'lecun'"},
        {C_TOP_ALGO_ONLY, 0, ""},
        {C_ALGO_MISMATCH, DV_EFORMAT,
         "algo: 'gd' but meta.hyper.algo is 'mlp'"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t len = 0;
        uint8_t *buf = craft(rows[i].c, &len);
        dv_model_t *m = NULL;
        dv_error_t err = {0};
        int rc = dv_model_decode(&m, buf, len, &err);
        bool said = strstr(err.text, rows[i].needle) != NULL;
        // The frame is sound in every row: verify does not read the body.
        int rc_verify = dv_model_verify(buf, len, NULL);
        if (rc != rows[i].code || !said) {
            fprintf(stderr, "  row %zu: %s \"%s\"\n", i, dv_err_name(rc),
                    err.text);
        }
        bool predicts = true;
        if (rc == 0) {
            // Row-major 2x3 weights: x = (1, 1) gives relu(1+4, 2+5, 3+6),
            // summed by the all-ones output layer.
            dv_tensor_t *x = dv_tensor_new(1, 2), *y = NULL;
            x->data[0] = 1;
            x->data[1] = 1;
            predicts = dv_model_predict(m, x, &y, &err) == 0 &&
                       y->data[0] == (1 + 4) + (2 + 5) + (3 + 6) &&
                       m->meta.hyper.algo == DV_ALGO_MLP &&
                       m->meta.hyper.lr == 0.001 &&
                       // Absent: written before init existed, so Glorot.
                       m->meta.hyper.init == DV_INIT_GLOROT &&
                       m->meta.hyper.validation_fraction == 0;
            dv_tensor_destroy(&x);
            dv_tensor_destroy(&y);
        }
        dv_model_destroy(&m);
        free(buf);
        DV_CHECK_RC(rc, rows[i].code, &err);
        DV_CHECK(said);
        DV_CHECK_EQ(rc_verify, 0);
        DV_CHECK(predicts);
    }
}

// ------------------------------------------------------------ the encoder

static void
test_encoder_refuses(void)
{
    dv_model_t *m = mlp_classifier();
    uint8_t *buf = NULL;
    size_t len = 0;
    dv_error_t err = {0};

    m->layers[1].w[2] = NAN;
    int rc_nan = dv_model_encode(m, &buf, &len, &err);
    m->layers[1].w[2] = 0;

    // A name the reader would refuse is never written.
    char *long_name = malloc(DV_MAX_NAME_BYTES + 2);
    memset(long_name, 'a', DV_MAX_NAME_BYTES + 1);
    long_name[DV_MAX_NAME_BYTES + 1] = '\0';
    char *saved = m->feature_names[2];
    m->feature_names[2] = long_name;
    int rc_long = dv_model_encode(m, &buf, &len, &err);
    bool named = strstr(err.text, "feature name 2") != NULL;
    m->feature_names[2] = saved;
    free(long_name);

    m->meta.hyper.n_hidden = DV_MAX_HIDDEN + 1;
    int rc_hidden = dv_model_encode(m, &buf, &len, &err);
    m->meta.hyper.n_hidden = 1;

    int rc_ok = dv_model_encode(m, &buf, &len, &err);
    free(buf);
    dv_model_destroy(&m);
    DV_CHECK_EQ(rc_nan, DV_ENAN);
    DV_CHECK_EQ(rc_long, DV_EMSGSIZE);
    DV_CHECK(named);
    DV_CHECK_EQ(rc_hidden, DV_EINVAL);
    DV_CHECK_RC(rc_ok, 0, &err);
}

// ------------------------------------------------------------ fuzzing

// splitmix64: a local generator, so the test depends on nothing but the
// module under test.
static uint64_t
next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

// Seeded random byte changes to the body of a valid file, re-checksummed so
// they reach the msgpack and field checks. Decoding must never crash or
// read out of bounds (ASan/UBSan watch) and must either give a valid model
// or fail with a known code and a reason.
static void
test_mutations_never_crash(void)
{
    dv_model_t *m = mlp_classifier();
    size_t len = 0;
    uint8_t *buf = encode(m, &len);
    dv_model_destroy(&m);
    DV_CHECK(buf != NULL);
    uint8_t *ed = malloc(len);
    uint64_t rng = 2026;
    size_t body = len - 48, ok = 0, refused = 0, bad = 0;
    const int iters = 5000;
    for (int it = 0; it < iters; it++) {
        memcpy(ed, buf, len);
        int n = 1 + (int)(next_random(&rng) % 4);
        for (int k = 0; k < n; k++) {
            size_t at = 16 + (size_t)(next_random(&rng) % body);
            ed[at] = (uint8_t)next_random(&rng);
        }
        rechecksum(ed, len);
        dv_model_t *out = NULL;
        dv_error_t err = {0};
        int rc = dv_model_decode(&out, ed, len, &err);
        if (rc == 0) {
            ok += out && dv_model_validate(out, NULL) == 0;
        } else if (strcmp(dv_err_name(rc), "DV_EUNKNOWN") == 0 ||
                   err.text[0] == '\0' || out != NULL) {
            bad++;
        } else {
            refused++;
        }
        dv_model_destroy(&out);
    }
    free(ed);
    free(buf);
    printf("  %zu decoded, %zu refused\n", ok, refused);
    DV_CHECK_EQ(bad, 0);
    DV_CHECK_EQ(ok + refused, (size_t)iters);
    DV_CHECK(refused > (size_t)iters / 4); // the mutations reach the checks
}

static const dv_test_case_t cases[] = {
    {"round trip keeps every field", test_round_trip},
    {"encoding is deterministic", test_deterministic},
    {"byte layout: header, key order, float32 blobs", test_layout},
    {"save then load, atomically", test_save_load},
    {"short, truncated, trailing, wrong magic or version", test_damaged_frames},
    {"every corrupted byte is caught", test_every_corrupt_byte},
    {"hostile bodies with a valid checksum", test_hostile_bodies},
    {"the encoder refuses what the reader would", test_encoder_refuses},
    {"random mutations never crash", test_mutations_never_crash},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
