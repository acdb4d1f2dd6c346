// dv_fuzz — input layouts and fixtures shared by the fuzz targets and the
// seed generator (see dv_fuzz.h).
#include "dv_fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "dv_mem.h"
#include "dv_sha256.h"

static uint32_t
get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void
put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

// The next length-prefixed piece of data[*at..size): an exact-size copy
// (NULL when empty) and its length, cut at the end of data.
static uint8_t *
take(const uint8_t *data, size_t size, size_t *at, size_t *len)
{
    size_t n = 0;
    if (size - *at >= 4) {
        n = get_u32(data + *at);
        *at += 4;
    } else {
        *at = size;
    }
    n = n < size - *at ? n : size - *at;
    *len = n;
    uint8_t *copy = NULL;
    if (n) {
        copy = dv_malloc(n);
        memcpy(copy, data + *at, n);
    }
    *at += n;
    return copy;
}

void
dv_fuzz_msg_split(dv_fuzz_msg_t *m, const uint8_t *data, size_t size)
{
    memset(m, 0, sizeof *m);
    if (size == 0) {
        return;
    }
    size_t at = 1;
    m->n_frames = data[0] % (DV_MAX_FRAMES + 2);
    m->header = take(data, size, &at, &m->header_len);
    for (size_t i = 0; i < m->n_frames; i++) {
        m->frames[i].data = take(data, size, &at, &m->frames[i].len);
    }
}

void
dv_fuzz_msg_free(dv_fuzz_msg_t *m)
{
    free(m->header);
    for (size_t i = 0; i < m->n_frames; i++) {
        free((void *)m->frames[i].data);
    }
    memset(m, 0, sizeof *m);
}

uint8_t *
dv_fuzz_msg_join(const uint8_t *header,
                 size_t header_len,
                 const dv_frame_t *frames,
                 size_t n_frames,
                 size_t *len)
{
    dv_assert(n_frames <= DV_MAX_FRAMES + 1);
    size_t n = 1 + 4 + header_len;
    for (size_t i = 0; i < n_frames; i++) {
        n += 4 + frames[i].len;
    }
    uint8_t *buf = dv_malloc(n), *p = buf;
    *p++ = (uint8_t)n_frames;
    put_u32(p, (uint32_t)header_len);
    memcpy(p + 4, header, header_len);
    p += 4 + header_len;
    for (size_t i = 0; i < n_frames; i++) {
        put_u32(p, (uint32_t)frames[i].len);
        if (frames[i].len) {
            memcpy(p + 4, frames[i].data, frames[i].len);
        }
        p += 4 + frames[i].len;
    }
    *len = n;
    return buf;
}

void
dv_fuzz_msg_run(const uint8_t *data,
                size_t size,
                void (*fn)(const dv_msg_t *m,
                           const dv_fuzz_msg_t *in,
                           uint64_t rid))
{
    dv_fuzz_msg_t in;
    dv_fuzz_msg_split(&in, data, size);
    dv_msg_t *m = NULL;
    dv_error_t err = {0};
    uint64_t rid = 1;
    int rc = dv_msg_decode(&m, in.header, in.header_len, in.frames, in.n_frames,
                           &rid, &err);
    dv_fuzz_check(rc, &err);
    if (rc == 0) {
        fn(m, &in, rid);
    }
    dv_msg_destroy(&m);
    dv_fuzz_msg_free(&in);
}

uint8_t *
dv_fuzz_tail(const uint8_t *data, size_t size, size_t *n)
{
    dv_assert(size >= 1);
    *n = size - 1;
    uint8_t *buf = dv_malloc(*n ? *n : 1);
    memcpy(buf, data + 1, *n);
    return buf;
}

void
dv_fuzz_check(int rc, const dv_error_t *err)
{
    if (rc == 0) {
        return;
    }
    if (rc > 0 || err->code != rc || err->text[0] == '\0') {
        fprintf(stderr, "refusal without a reason: rc %d, err %d \"%s\"\n", rc,
                err->code, err->text);
        abort();
    }
}

void
dv_fuzz_each_key(const dv_msg_t *m,
                 void (*fn)(const dv_msg_t *m, const char *key))
{
    const msgpack_object *root = dv_msg_root(m);
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR) {
            continue;
        }
        char key[256];
        size_t n =
            k->via.str.size < sizeof key ? k->via.str.size : sizeof key - 1;
        if (n) { // msgpack-c gives an empty string a NULL ptr
            memcpy(key, k->via.str.ptr, n);
        }
        key[n] = '\0';
        fn(m, key);
    }
}

void
dv_fuzz_fix_sha256(uint8_t *buf, size_t len)
{
    dv_assert(len >= DV_SHA256_BYTES);
    dv_sha256(buf, len - DV_SHA256_BYTES, buf + len - DV_SHA256_BYTES);
}

// Twelve rows, two features and a three-class target: enough for every
// algorithm (binary logreg takes the first two classes' rows by config).
static const char s_csv[] = "a,b,target\n"
                            "0.1,1.0,0\n0.2,0.9,0\n0.3,1.1,0\n0.0,0.8,0\n"
                            "1.1,0.1,1\n0.9,0.2,1\n1.0,0.0,1\n1.2,0.3,1\n"
                            "2.0,2.1,2\n1.9,2.2,2\n2.1,1.8,2\n2.2,2.0,2\n";

const dv_dataset_t *
dv_fuzz_ckpt_run(size_t config, dv_hyper_t *h)
{
    static dv_dataset_t *s_all, *s_binary;
    if (!s_all) {
        dv_csv_opts_t o = {0};
        dv_error_t err = {0};
        // The first 9 lines: header and the rows of classes 0 and 1.
        const char *cut = s_csv;
        for (int i = 0; i < 9; i++) {
            cut = strchr(cut, '\n') + 1;
        }
        int rc = dv_csv_parse(&s_all, s_csv, strlen(s_csv), &o, &err);
        rc = rc ? rc
                : dv_csv_parse(&s_binary, s_csv, (size_t)(cut - s_csv), &o,
                               &err);
        dv_assert(rc == 0);
    }
    static const dv_algo_t algos[DV_FUZZ_CKPT_CONFIGS] = {
        DV_ALGO_GD, DV_ALGO_LOGREG, DV_ALGO_SOFTMAX, DV_ALGO_MLP};
    dv_algo_t algo = algos[config % DV_FUZZ_CKPT_CONFIGS];
    dv_hyper_default(h, algo);
    h->epochs = 4;
    h->batch = 4;
    h->patience = 0;
    h->seed = 7;
    if (algo == DV_ALGO_MLP) {
        h->n_hidden = 1;
        h->hidden[0] = 3;
    }
    return algo == DV_ALGO_LOGREG ? s_binary : s_all;
}
