// dv-fuzz-seeds — write the fuzz targets' seed corpora from real messages
// and files: headers built with dv_msgw as the broker, workers and
// libdrover build them; model files and checkpoints from real training on
// the bundled data sets; key files from dv_key_generate; store records in
// the layouts of dv_records.h, as dv_broker.c's encoders write them.
//
//   dv-fuzz-seeds CORPUS_DIR DATA_DIR    (tests/fuzz/corpus data)
//
// Seeds are small on purpose (the fuzzer grows them) and, except key
// files (fresh keys each run), the same on every run. Files already in
// CORPUS_DIR (crash inputs of past findings) are left alone.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dv_csv.h"
#include "dv_file.h"
#include "dv_fuzz.h"
#include "dv_keys.h"
#include "dv_mem.h"
#include "dv_modelfile.h"
#include "dv_proto.h"
#include "dv_records.h"
#include "dv_train.h"

static const char *s_corpus;

// Write corpus/target/name, or exit.
static void
emit(const char *target, const char *name, const void *data, size_t len)
{
    char path[1024];
    dv_error_t err = {0};
    snprintf(path, sizeof path, "%s/%s", s_corpus, target);
    if (dv_file_mkdirs(path, 0755, &err) == 0) {
        snprintf(path, sizeof path, "%s/%s/%s", s_corpus, target, name);
        dv_file_write_atomic(path, data, len, &err);
    }
    if (err.code) {
        fprintf(stderr, "dv-fuzz-seeds: %s\n", err.text);
        exit(1);
    }
}

// A flag byte, then data.
static void
emit_flagged(const char *target,
             const char *name,
             uint8_t flags,
             const void *data,
             size_t len)
{
    uint8_t *buf = dv_malloc(len + 1);
    buf[0] = flags;
    memcpy(buf + 1, data, len);
    emit(target, name, buf, len + 1);
    free(buf);
}

// The message w (destroyed) with frames, as a fuzz_msg/fuzz_tensor input.
static void
emit_msg(const char *target,
         const char *name,
         dv_msgw_t *w,
         const dv_frame_t *frames,
         size_t n)
{
    size_t hl = 0, len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &hl);
    uint8_t *buf = dv_fuzz_msg_join(h, hl, frames, n, &len);
    emit(target, name, buf, len);
    free(buf);
    dv_msgw_destroy(&w);
}

// An error map {name, text} with a made-up name of n_name bytes.
static void
error_map(dv_msgw_t *w, const char *name, const char *text)
{
    dv_msgw_key(w, "error");
    dv_msgw_v_map(w, text ? 2 : 1);
    dv_msgw_v_str(w, "name");
    dv_msgw_v_str(w, name);
    if (text) {
        dv_msgw_v_str(w, "text");
        dv_msgw_v_str(w, text);
    }
}

static void
tensor_msgs(const char *target)
{
    float in[8] = {5.1f, 3.5f, 1.4f, 0.2f, 6.7f, 3.0f, 5.2f, 2.3f};
    dv_frame_t f = {(const uint8_t *)in, sizeof in};

    dv_msgw_t *w = dv_msgw_new(DV_MSG_SUBMIT, 7);
    dv_msgw_str(w, "queue", "default");
    dv_msgw_str(w, "kind", "infer");
    dv_msgw_str(w, "model", "iris@2");
    dv_msgw_tensor(w, "input", 1, 2, 4);
    emit_msg(target, "submit-infer", w, &f, 1);

    w = dv_msgw_new(DV_MSG_DONE, 0);
    dv_msgw_uint(w, "job", 42);
    dv_msgw_str(w, "state", "done");
    dv_msgw_str(w, "model", "iris@2");
    dv_msgw_tensor(w, "output", 1, 2, 4);
    const char *classes[] = {"setosa", "versicolor", "virginica", "other"};
    dv_msgw_strs(w, "classes", classes, 4);
    emit_msg(target, "done-infer", w, &f, 1);

    w = dv_msgw_new(DV_MSG_SUBMIT, 8);
    dv_msgw_str(w, "kind", "infer");
    dv_msgw_tensor(w, "input", 1, 0, 4);
    dv_frame_t empty = {NULL, 0};
    emit_msg(target, "submit-infer-no-rows", w, &empty, 1);

    w = dv_msgw_new(DV_MSG_SUBMIT, 9);
    dv_msgw_tensor(w, "input", 1, 3, 4); // frame holds 2 rows
    emit_msg(target, "submit-infer-short-frame", w, &f, 1);

    w = dv_msgw_new(DV_MSG_SUBMIT, 10);
    dv_msgw_tensor(w, "input", 2, 2, 4); // no frame 2
    emit_msg(target, "submit-infer-no-frame", w, &f, 1);

    w = dv_msgw_new(DV_MSG_SUBMIT, 11);
    dv_msgw_key(w, "input");
    dv_msgw_v_map(w, 3);
    dv_msgw_v_str(w, "frame");
    dv_msgw_v_uint(w, 1);
    dv_msgw_v_str(w, "dtype");
    dv_msgw_v_str(w, "f64");
    dv_msgw_v_str(w, "shape");
    dv_msgw_v_array(w, 2);
    dv_msgw_v_uint(w, 1);
    dv_msgw_v_uint(w, 4);
    emit_msg(target, "submit-infer-f64", w, &f, 1);
}

static void
msg_seeds(void)
{
    const char *t = "msg";
    uint8_t bytes[64];
    for (size_t i = 0; i < sizeof bytes; i++) {
        bytes[i] = (uint8_t)(i * 37);
    }
    dv_frame_t f = {bytes, 16}, sig = {bytes, 64};

    dv_msgw_t *w = dv_msgw_new(DV_MSG_HELLO, 1);
    dv_msgw_str(w, "client", "drover-cli");
    emit_msg(t, "hello", w, NULL, 0);

    w = dv_msgw_new(DV_MSG_WELCOME, 1);
    dv_msgw_str(w, "broker", "drover-broker 0.1.0");
    dv_msgw_key(w, "limits");
    dv_msgw_v_map(w, 2);
    dv_msgw_v_str(w, "max_header_bytes");
    dv_msgw_v_uint(w, DV_MAX_HEADER_BYTES);
    dv_msgw_v_str(w, "max_frames");
    dv_msgw_v_uint(w, DV_MAX_FRAMES);
    dv_msgw_uint(w, "heartbeat_ms", 1000);
    emit_msg(t, "welcome", w, NULL, 0);

    w = dv_msgw_new(DV_MSG_SUBMIT, 2);
    dv_msgw_str(w, "queue", "default");
    dv_msgw_str(w, "kind", "echo");
    dv_msgw_uint(w, "max_attempts", 3);
    dv_msgw_str(w, "durability", "commit");
    dv_msgw_key(w, "priority");
    dv_msgw_v_int(w, -5);
    dv_msgw_uint(w, "deadline_ms", 60000);
    dv_msgw_uint(w, "timeout_ms", 1000);
    dv_msgw_uint(w, "backoff_ms", 500);
    dv_msgw_str(w, "idempotency_key", "order-17");
    emit_msg(t, "submit-echo", w, &f, 1);

    w = dv_msgw_new(DV_MSG_SUBMIT, 3);
    dv_msgw_str(w, "queue", "train");
    dv_msgw_str(w, "kind", "train");
    dv_msgw_str(w, "model", "iris");
    dv_hyper_t h;
    dv_hyper_default(&h, DV_ALGO_MLP);
    h.n_hidden = 2;
    h.hidden[0] = 8;
    h.hidden[1] = 4;
    dv_msgw_hyper(w, "train", &h);
    dv_msgw_str(w, "target", "target");
    dv_msgw_str(w, "task", "classification");
    dv_msgw_uint(w, "created_unix", 1700000000);
    dv_msgw_uint(w, "checkpoint_ms", 10000);
    dv_msgw_str(w, "eval_dataset", "iris_test@1");
    const char csv[] = "a,b,target\n1,2,x\n3,4,y\n";
    dv_frame_t cf = {(const uint8_t *)csv, sizeof csv - 1};
    emit_msg(t, "submit-train", w, &cf, 1);

    w = dv_msgw_new(DV_MSG_DONE, 0);
    dv_msgw_uint(w, "job", 42);
    dv_msgw_str(w, "state", "failed");
    dv_msgw_uint(w, "attempt", 2);
    error_map(w, "DV_ESHAPE", "input has 3 features, model iris@2 expects 4");
    emit_msg(t, "done-failed", w, NULL, 0);

    // issue 13, 1: an 80-byte error name, without a text and with a short
    // one, crashed the broker in dv_msg_error.
    char name80[81];
    memset(name80, 'A', 80);
    name80[80] = '\0';
    w = dv_msgw_new(DV_MSG_DONE, 0);
    dv_msgw_uint(w, "job", 43);
    dv_msgw_str(w, "state", "failed");
    error_map(w, name80, NULL);
    emit_msg(t, "issue13-done-error-name80-no-text", w, NULL, 0);
    w = dv_msgw_new(DV_MSG_DONE, 0);
    dv_msgw_uint(w, "job", 44);
    dv_msgw_str(w, "state", "failed");
    error_map(w, name80, "x");
    emit_msg(t, "issue13-done-error-name80-short-text", w, NULL, 0);

    w = dv_msgw_new(DV_MSG_ERROR, 5);
    dv_msgw_error(w, "error", DV_EQUEUEFULL, "queue default is full");
    dv_msgw_uint(w, "job", 9);
    emit_msg(t, "error", w, NULL, 0);

    w = dv_msgw_new(DV_MSG_REGISTER, 1);
    dv_msgw_str(w, "name", "w1");
    dv_msgw_uint(w, "capacity", 4);
    dv_msgw_uint(w, "train_slots", 1);
    const char *models[] = {"iris@1", "iris@2"};
    dv_msgw_strs(w, "models", models, 2);
    const char *datasets[] = {"iris@1"};
    dv_msgw_strs(w, "datasets", datasets, 1);
    const char *queues[] = {"default", "train"};
    dv_msgw_strs(w, "queues", queues, 2);
    emit_msg(t, "register", w, NULL, 0);

    w = dv_msgw_new(DV_MSG_HEARTBEAT, 0);
    dv_msgw_uint(w, "running", 2);
    dv_msgw_strs(w, "models", models, 2);
    emit_msg(t, "heartbeat", w, NULL, 0);

    w = dv_msgw_new(DV_MSG_MODEL_PUSH, 6);
    dv_msgw_str(w, "name", "iris");
    dv_msgw_bin(w, "sha256", bytes, 32);
    dv_msgw_bin(w, "signature", bytes, 64);
    dv_msgw_str(w, "signer", "admin");
    emit_msg(t, "model-push", w, &sig, 1);

    w = dv_msgw_new(DV_MSG_FOLLOW, 7);
    dv_msgw_str(w, "queue", "default");
    dv_msgw_str(w, "consumer", "c1");
    dv_msgw_uint(w, "window", 100);
    dv_msgw_str(w, "from", "earliest");
    emit_msg(t, "follow", w, NULL, 0);

    w = dv_msgw_new(DV_MSG_ACK, 0);
    dv_msgw_str(w, "queue", "default");
    dv_msgw_str(w, "consumer", "c1");
    dv_msgw_uint(w, "seq", 17);
    emit_msg(t, "ack", w, NULL, 0);

    w = dv_msgw_new(DV_MSG_PROGRESS, 0);
    dv_msgw_uint(w, "job", 42);
    dv_msgw_uint(w, "epoch", 3);
    dv_msgw_uint(w, "epochs", 50);
    dv_msgw_double(w, "loss", 0.25);
    dv_msgw_uint(w, "ms", 1200);
    dv_msgw_uint(w, "eta_ms", 18000);
    dv_msgw_double(w, "eval", 0.93);
    emit_msg(t, "progress", w, NULL, 0);

    w = dv_msgw_new(DV_MSG_DATASET_PUSH, 8);
    dv_msgw_str(w, "name", "iris");
    dv_msgw_bin(w, "sha256", bytes, 32);
    dv_msgw_uint(w, "bytes", 4096);
    dv_msgw_uint(w, "offset", 0);
    emit_msg(t, "dataset-push", w, &cf, 1);

    w = dv_msgw_new(DV_MSG_JOB_LIST, 9);
    dv_msgw_str(w, "state", "queued");
    dv_msgw_str(w, "queue", "default");
    dv_msgw_uint(w, "limit", 100);
    emit_msg(t, "job-list", w, NULL, 0);

    w = dv_msgw_new(DV_MSG_CHECKPOINT, 0);
    dv_msgw_uint(w, "job", 42);
    dv_msgw_uint(w, "epoch", 3);
    emit_msg(t, "checkpoint", w, &f, 1);

    w = dv_msgw_new(DV_MSG_MODEL_ALIAS, 10);
    dv_msgw_str(w, "name", "iris");
    dv_msgw_str(w, "alias", "prod");
    dv_msgw_uint(w, "version", 2);
    emit_msg(t, "model-alias", w, NULL, 0);

    // What dv_msg_decode refuses: another major, an unknown type, no map.
    static const uint8_t v2[] = {0x83, 0xa1, 'v',  0x92, 0x02, 0x00,
                                 0xa1, 't',  0xa4, 'p',  'i',  'n',
                                 'g',  0xa3, 'r',  'i',  'd',  0x01};
    static const uint8_t unknown[] = {0x82, 0xa1, 'v',  0x92, 0x01, 0x01,
                                      0xa1, 't',  0xa3, 'z',  'z',  'z'};
    static const uint8_t array[] = {0x92, 0xa1, 'v', 0xc0};
    const struct {
        const char *name;
        const uint8_t *h;
        size_t len;
    } raw[] = {{"bad-version", v2, sizeof v2},
               {"bad-type", unknown, sizeof unknown},
               {"bad-not-a-map", array, sizeof array}};
    for (size_t i = 0; i < sizeof raw / sizeof *raw; i++) {
        size_t len = 0;
        uint8_t *buf = dv_fuzz_msg_join(raw[i].h, raw[i].len, NULL, 0, &len);
        emit(t, raw[i].name, buf, len);
        free(buf);
    }
    tensor_msgs("msg");
}

// A data set from the first n_lines lines of DATA_DIR/file.
static dv_dataset_t *
load_head(const char *data_dir, const char *file, size_t n_lines)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", data_dir, file);
    uint8_t *text = NULL;
    size_t len = 0, cut = 0;
    dv_error_t err = {0};
    if (dv_file_read(path, (size_t)1 << 24, &text, &len, &err) != 0) {
        fprintf(stderr, "dv-fuzz-seeds: %s\n", err.text);
        exit(1);
    }
    for (size_t lines = 0; cut < len && lines < n_lines; cut++) {
        lines += text[cut] == '\n';
    }
    dv_dataset_t *ds = NULL;
    dv_csv_opts_t o = {0};
    if (dv_csv_parse(&ds, (const char *)text, cut, &o, &err) != 0) {
        fprintf(stderr, "dv-fuzz-seeds: %s: %s\n", path, err.text);
        exit(1);
    }
    free(text);
    return ds;
}

static void
model_seeds(const char *data_dir)
{
    // Rows of every class: iris holds them in class order, 50 each.
    dv_dataset_t *iris = load_head(data_dir, "iris.csv", 151);
    dv_dataset_t *diabetes = load_head(data_dir, "diabetes.csv", 41);
    const struct {
        const char *name;
        dv_algo_t algo;
        dv_dataset_t *ds;
    } runs[] = {{"iris-softmax", DV_ALGO_SOFTMAX, iris},
                {"iris-mlp", DV_ALGO_MLP, iris},
                {"diabetes-ols", DV_ALGO_OLS, diabetes},
                {"diabetes-ridge", DV_ALGO_RIDGE, diabetes},
                {"diabetes-gd", DV_ALGO_GD, diabetes}};
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        dv_hyper_t h;
        dv_hyper_default(&h, runs[i].algo);
        h.epochs = 5;
        h.seed = 1;
        if (runs[i].algo == DV_ALGO_MLP) {
            h.n_hidden = 1;
            h.hidden[0] = 4;
        }
        dv_train_opts_t o = {.task = -1, .created_unix = 1700000000};
        dv_model_t *m = NULL;
        uint8_t *buf = NULL;
        size_t len = 0;
        dv_error_t err = {0};
        if (dv_train(&m, runs[i].ds, &h, &o, &err) != 0 ||
            dv_model_encode(m, &buf, &len, &err) != 0) {
            fprintf(stderr, "dv-fuzz-seeds: %s: %s\n", runs[i].name, err.text);
            exit(1);
        }
        char name[64];
        snprintf(name, sizeof name, "%s.drvm", runs[i].name);
        emit_flagged("modelfile", name, 3, buf, len); // fix length, SHA
        snprintf(name, sizeof name, "%s-raw.drvm", runs[i].name);
        emit_flagged("modelfile", name, 0, buf, len);
        free(buf);
        dv_model_destroy(&m);
    }
    dv_dataset_destroy(&iris);
    dv_dataset_destroy(&diabetes);
}

typedef struct {
    uint8_t *blob; // the first checkpoint (owned)
    size_t len;
} first_ckpt_t;

static void
on_checkpoint(const uint8_t *blob, size_t len, uint32_t epoch, void *arg)
{
    (void)epoch;
    first_ckpt_t *c = arg;
    if (!c->blob) {
        c->blob = dv_malloc(len);
        memcpy(c->blob, blob, len);
        c->len = len;
    }
}

static void
ckpt_seeds(void)
{
    static const char *names[DV_FUZZ_CKPT_CONFIGS] = {"gd", "logreg", "softmax",
                                                      "mlp"};
    for (size_t i = 0; i < DV_FUZZ_CKPT_CONFIGS; i++) {
        dv_hyper_t h;
        const dv_dataset_t *ds = dv_fuzz_ckpt_run(i, &h);
        first_ckpt_t c = {NULL, 0};
        dv_train_opts_t o = {.task = -1,
                             .created_unix = 1,
                             .checkpoint = on_checkpoint,
                             .checkpoint_arg = &c,
                             .checkpoint_every_s = 0};
        dv_model_t *m = NULL;
        dv_error_t err = {0};
        if (dv_train(&m, ds, &h, &o, &err) != 0 || !c.blob) {
            fprintf(stderr, "dv-fuzz-seeds: checkpoint %s: %s\n", names[i],
                    err.text);
            exit(1);
        }
        char name[64];
        snprintf(name, sizeof name, "%s", names[i]);
        emit_flagged("ckpt", name, (uint8_t)(0x80 | i), c.blob, c.len);
        snprintf(name, sizeof name, "%s-raw", names[i]);
        emit_flagged("ckpt", name, (uint8_t)i, c.blob, c.len);
        snprintf(name, sizeof name, "%s-truncated", names[i]);
        emit_flagged("ckpt", name, (uint8_t)(0x80 | i), c.blob, c.len / 2);
        free(c.blob);
        dv_model_destroy(&m);
    }
}

static void
csv_seeds(void)
{
    const struct {
        const char *name;
        uint8_t flags; // fuzz_csv: target choice, bit 2 optional
        const char *text;
    } seeds[] = {
        {"iris", 0,
         "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm,"
         "target\n5.1,3.5,1.4,0.2,0\n7,3.2,4.7,1.4,1\n6.3,3.3,6,2.5,2\n"},
        {"labels-words", 1,
         "a,b,target\n1.5,-2e3,setosa\n0.25,1E-2,versicolor\n"},
        {"crlf-bom-quoted", 2,
         "\xef\xbb\xbf\"x\",\"y, the target\",y\r\n\"1\",2,3\r\n4,\"5\",6\r\n"},
        {"quotes-inside", 3, "a,\"b\"\"c\",d\n1,2,\"x\"\"y\"\n"},
        {"no-target-optional", 4, "f1,f2\n1,2\n3,4\n"},
        {"nan", 0, "a,target\nnan,1\n"},
        {"ragged", 0, "a,b,target\n1,2\n"},
        {"unterminated-quote", 0, "a,target\n\"1,2\n"},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
        emit_flagged("csv", seeds[i].name, seeds[i].flags, seeds[i].text,
                     strlen(seeds[i].text));
    }
}

static void
key_seeds(void)
{
    char dir[] = "/tmp/dv-fuzz-seeds-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("dv-fuzz-seeds: mkdtemp");
        exit(1);
    }
    const struct {
        const char *stem;
        unsigned roles;
        const char *queues;
    } keys[] = {{"alice", DV_ROLE_PRODUCER | DV_ROLE_CONSUMER, "default,train"},
                {"worker", DV_ROLE_WORKER, NULL},
                {"root", DV_ROLE_ADMIN, "*"}};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char stem[256], path[300], name[64];
        snprintf(stem, sizeof stem, "%s/%s", dir, keys[i].stem);
        dv_error_t err = {0};
        if (dv_key_generate(stem, NULL, keys[i].roles, keys[i].queues, &err) !=
            0) {
            fprintf(stderr, "dv-fuzz-seeds: %s\n", err.text);
            exit(1);
        }
        static const char *ext[] = {"pub", "key"};
        for (uint8_t secret = 0; secret < 2; secret++) {
            uint8_t *text = NULL;
            size_t len = 0;
            snprintf(path, sizeof path, "%s.%s", stem, ext[secret]);
            if (dv_file_read(path, 1 << 16, &text, &len, &err) != 0) {
                fprintf(stderr, "dv-fuzz-seeds: %s\n", err.text);
                exit(1);
            }
            snprintf(name, sizeof name, "%s.%s", keys[i].stem, ext[secret]);
            emit_flagged("keys", name, secret, text, len);
            free(text);
            unlink(path);
        }
    }
    rmdir(dir);
}

// ---------------------------------------------------------- store records
// Written in the layouts of dv_records.h, field by field as dv_broker.c's
// encoders do.

typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf_t;

static void
put(buf_t *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = dv_realloc(b->p, b->cap);
    }
    if (n) {
        memcpy(b->p + b->len, data, n);
    }
    b->len += n;
}

static void
put_uint(buf_t *b, uint64_t v, size_t bytes)
{
    uint8_t le[8];
    for (size_t i = 0; i < bytes; i++) {
        le[i] = (uint8_t)(v >> (8 * i));
    }
    put(b, le, bytes);
}

static void
put_str(buf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

// A job record of format 2 (1 when v1); payload borrowed.
static buf_t
job_record(dv_rec_kind_t kind,
           bool spec,
           const char *queue,
           const char *model,
           const buf_t *payload,
           bool v1)
{
    buf_t b = {0};
    put_uint(&b, v1 ? 1 : DV_REC_JOB_FORMAT, 1);
    put_uint(&b, kind, 1);
    put_uint(&b, spec ? 1 : 0, 1);
    put_uint(&b, 0, 1);
    put_uint(&b, 3, 4);                                 // max_attempts
    put_uint(&b, model[0] ? 2 : 0, 4);                  // model version
    put_uint(&b, kind == DV_REC_KIND_INFER ? 2 : 0, 4); // rows
    put_uint(&b, kind == DV_REC_KIND_INFER ? 4 : 0, 4); // cols
    put_uint(&b, strlen(queue), 4);
    put_uint(&b, strlen(model), 4);
    put_uint(&b, payload->len, 8);
    for (int i = 0; i < 32; i++) {
        put_uint(&b, (uint64_t)i * 7, 1); // model SHA-256
    }
    if (!v1) {
        put_uint(&b, (uint32_t)-5, 4);  // priority
        put_uint(&b, 60000, 4);         // timeout_ms
        put_uint(&b, 500, 4);           // backoff_ms
        put_uint(&b, 0, 4);             // sleep_ms
        put_uint(&b, 1700000000000, 8); // submit time
        put_uint(&b, 0, 8);             // deadline
    }
    put_str(&b, queue);
    put_str(&b, model);
    put(&b, payload->p, payload->len);
    return b;
}

// A train job's payload: its spec fields (as train_spec writes them), then
// the CSV.
static buf_t
train_payload(void)
{
    dv_msgw_t *spec = dv_msgw_new(DV_MSG_RUN, 0);
    dv_hyper_t h;
    dv_hyper_default(&h, DV_ALGO_SOFTMAX);
    dv_msgw_hyper(spec, "train", &h);
    dv_msgw_str(spec, "target", "target");
    dv_msgw_uint(spec, "created_unix", 1700000000);
    dv_msgw_uint(spec, "checkpoint_ms", 10000);
    size_t sl = 0, nf = 0;
    const uint8_t *body = dv_msgw_body(spec, &sl, &nf);
    buf_t b = {0};
    put_uint(&b, nf, 2);
    put_uint(&b, sl, 4);
    put(&b, body, sl);
    put_str(&b, "a,b,target\n1,2,x\n3,4,y\n");
    dv_msgw_destroy(&spec);
    return b;
}

static buf_t
attempts_record(uint32_t n_errors)
{
    buf_t b = {0};
    put_uint(&b, n_errors + 1, 4); // attempts
    put_uint(&b, 1, 4);            // lost
    put_uint(&b, n_errors, 4);
    for (uint32_t i = 0; i < n_errors; i++) {
        const char *worker = i ? "w2" : "w1";
        const char *text = "worker w1 was lost while running it";
        put_uint(&b, i + 1, 4);
        put_uint(&b, (uint32_t)DV_EIO, 4);
        put_uint(&b, 1700000000000 + i, 8);
        put_uint(&b, strlen(worker) | strlen(text) << 16, 4);
        put_str(&b, worker);
        put_str(&b, text);
    }
    return b;
}

// A result record: done with one frame and extra fields, or failed; in
// queue's stream when queue is set.
static buf_t
result_record(bool done, const char *queue)
{
    const char *text = done ? "" : "input has 3 features, model expects 4";
    const char *frame = "payload bytes";
    dv_msgw_t *extra = dv_msgw_new(DV_MSG_RESULT, 0);
    dv_msgw_str(extra, "model", "iris@2");
    const char *classes[] = {"a", "b"};
    dv_msgw_strs(extra, "classes", classes, 2);
    size_t el = 0, ef = 0;
    const uint8_t *fields = dv_msgw_body(extra, &el, &ef);
    buf_t b = {0};
    put_uint(&b, DV_REC_RESULT_FORMAT, 1);
    put_uint(&b, done, 1);
    put_uint(&b, done ? 1 : 0, 1); // frames
    put_uint(&b, queue ? 1 : 0, 1);
    put_uint(&b, done ? 0 : (uint32_t)DV_ESHAPE, 4);
    put_uint(&b, 1, 4); // attempts
    put_uint(&b, done ? el : 0, 4);
    put_uint(&b, done ? ef : 0, 2);
    put_uint(&b, 0, 2);
    put_uint(&b, 1700000000000, 8);
    put_uint(&b, strlen(text), 4);
    put_uint(&b, 2, 4); // worker length
    if (done) {
        put_uint(&b, strlen(frame), 4);
    }
    put_str(&b, text);
    put_str(&b, "w1");
    if (done) {
        put_str(&b, frame);
        put(&b, fields, el);
    }
    if (queue) {
        put_uint(&b, 17, 8); // seq
        put_uint(&b, strlen(queue), 4);
        put_str(&b, queue);
    }
    dv_msgw_destroy(&extra);
    return b;
}

// An idempotency key or cursor record: u64, queue, second name.
static buf_t
names_record(uint64_t v, const char *queue, const char *second)
{
    buf_t b = {0};
    put_uint(&b, v, 8);
    put_uint(&b, strlen(queue), 4);
    put_str(&b, queue);
    put_str(&b, second);
    return b;
}

static void
emit_buf(const char *target, const char *name, buf_t *b)
{
    emit(target, name, b->p, b->len);
    free(b->p);
    *b = (buf_t){0};
}

static void
record_seeds(void)
{
    buf_t echo = {0}, csv = {0};
    put_str(&echo, "hello");
    put_str(&csv, "a,target\n1,2\n");
    buf_t tp = train_payload(), b;
    b = job_record(DV_REC_KIND_ECHO, false, "default", "", &echo, false);
    emit_buf("rec_job", "echo", &b);
    b = job_record(DV_REC_KIND_ECHO, false, "default", "", &echo, true);
    emit_buf("rec_job", "echo-format1", &b);
    float in[8] = {0};
    buf_t tensor = {0};
    put(&tensor, in, sizeof in);
    b = job_record(DV_REC_KIND_INFER, false, "default", "iris", &tensor, false);
    emit_buf("rec_job", "infer", &b);
    b = job_record(DV_REC_KIND_TRAIN, true, "train", "iris", &tp, false);
    buf_t train_job = b; // kept for the dead letter
    emit("rec_job", "train", b.p, b.len);
    b = job_record(DV_REC_KIND_EVALUATE, false, "default", "iris", &csv, false);
    emit_buf("rec_job", "evaluate", &b);

    buf_t a = {0};
    put_uint(&a, 2, 4);
    emit_buf("rec_attempts", "count-only", &a);
    a = attempts_record(0);
    emit_buf("rec_attempts", "none-failed", &a);
    a = attempts_record(2);
    emit("rec_attempts", "two-failed", a.p, a.len);

    b = result_record(true, NULL);
    emit_buf("rec_result", "done", &b);
    b = result_record(false, NULL);
    emit_buf("rec_result", "failed", &b);
    b = result_record(true, "default");
    emit_buf("rec_result", "done-streamed", &b);

    // Dead letter: time, code, text, the job, its attempts.
    const char *why = "no attempts left (3): worker w1 was lost";
    b = (buf_t){0};
    put_uint(&b, 1700000000000, 8);
    put_uint(&b, (uint32_t)DV_EIO, 4);
    put_uint(&b, strlen(why), 4);
    put_str(&b, why);
    put_uint(&b, train_job.len, 4);
    put(&b, train_job.p, train_job.len);
    put(&b, a.p, a.len);
    emit_buf("rec_dead", "train-two-failed", &b);

    b = names_record(1700000000000, "default", "order-17");
    emit_buf("rec_key", "key", &b);
    b = names_record(17, "default", "c1");
    emit_buf("rec_cursor", "cursor", &b);

    free(train_job.p);
    free(a.p);
    free(echo.p);
    free(csv.p);
    free(tp.p);
    free(tensor.p);
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: dv-fuzz-seeds CORPUS_DIR DATA_DIR\n");
        return 2;
    }
    s_corpus = argv[1];
    msg_seeds();
    tensor_msgs("tensor");
    model_seeds(argv[2]);
    ckpt_seeds();
    csv_seeds();
    key_seeds();
    record_seeds();
    return 0;
}
