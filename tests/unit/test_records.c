// test_records — the broker's store record decoders (dv_records): the seed
// records of tests/fuzz/corpus (written in the encoders' layouts by
// dv-fuzz-seeds) decode to what they hold, and each kind of damage is
// refused with DV_EFORMAT: every truncation, unknown formats and kinds,
// lengths past the end, names with a NUL or over their limit, a training
// spec or extra fields that are not the msgpack fields they claim.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_records.h"
#include "dv_test.h"

typedef struct {
    uint8_t *p;
    size_t len;
} rec_t;

// A seed record of tests/fuzz/corpus (via DV_DATA_DIR/..).
static rec_t
seed(const char *target, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "../tests/fuzz/corpus/%s/%s", target, name);
    rec_t r = {NULL, 0};
    r.p = dv_test_read_file(dv_test_data(path), &r.len);
    return r;
}

static void
put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void
test_job_seeds(void)
{
    rec_t train = seed("rec_job", "train"),
          v1 = seed("rec_job", "echo-format1");
    DV_CHECK(train.p && v1.p);
    dv_rec_job_t j;
    dv_error_t err = {0};
    int rc = dv_rec_job_decode(&j, 7, train.p, train.len, &err);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(j.kind, DV_REC_KIND_TRAIN);
    DV_CHECK(j.spec && j.has_sched);
    DV_CHECK_STR_EQ(j.queue, "train");
    DV_CHECK_STR_EQ(j.model, "iris");
    DV_CHECK_EQ(j.priority, -5);
    DV_CHECK_EQ(j.timeout_ms, 60000);
    DV_CHECK(j.payload + j.payload_len == train.p + train.len);
    rc = dv_rec_job_decode(&j, 8, v1.p, v1.len, &err);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(j.kind, DV_REC_KIND_ECHO);
    DV_CHECK(!j.spec && !j.has_sched);
    DV_CHECK_EQ(j.payload_len, 5);
    free(train.p);
    free(v1.p);
}

// Every proper prefix of a job or result record is refused.
static void
test_truncations(void)
{
    rec_t job = seed("rec_job", "train"),
          res = seed("rec_result", "done-streamed");
    DV_CHECK(job.p && res.p);
    for (size_t n = 0; n < job.len; n++) {
        dv_rec_job_t j;
        dv_error_t err = {0};
        int rc = dv_rec_job_decode(&j, 1, job.p, n, &err);
        DV_CHECK_RC(rc, DV_EFORMAT, &err);
    }
    for (size_t n = 0; n < res.len; n++) {
        dv_rec_result_t r;
        dv_error_t err = {0};
        int rc = dv_rec_result_decode(&r, 1, res.p, n, &err);
        DV_CHECK_RC(rc, DV_EFORMAT, &err);
    }
    free(job.p);
    free(res.p);
}

static void
test_job_damage(void)
{
    rec_t train = seed("rec_job", "train"),
          v1 = seed("rec_job", "echo-format1");
    DV_CHECK(train.p && v1.p);
    // Queue "train", model "iris", then the payload: field count (u16),
    // spec length (u32), spec.
    const size_t head = DV_REC_JOB_HEAD, qlen = 5, pay = head + qlen + 4;
    const struct {
        const char *what;
        rec_t *rec;
        size_t at;     // byte to change
        uint8_t value; // its new value
    } cases[] = {
        {"format 3", &train, 0, 3},
        {"kind past the table", &train, 1, DV_REC_KIND_COUNT_},
        {"format 1 with a kind it did not have", &v1, 1, DV_REC_KIND_SLEEP},
        {"queue length 0", &train, 20, 0},
        {"queue length past the end", &train, 20, 200},
        {"a NUL in the queue name", &train, head + 1, 0},
        {"a NUL in the model name", &train, head + qlen + 2, 0},
        {"spec field count wrong", &train, pay, 0xff},
        {"spec length past the payload", &train, pay + 5, 0x7f},
        {"spec msgpack damaged", &train, pay + 6, 0xc1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rec_t *r = cases[i].rec;
        uint8_t old = r->p[cases[i].at];
        r->p[cases[i].at] = cases[i].value;
        dv_rec_job_t j;
        dv_error_t err = {0};
        int rc = dv_rec_job_decode(&j, 1, r->p, r->len, &err);
        r->p[cases[i].at] = old;
        if (rc != DV_EFORMAT || !err.text[0]) {
            fprintf(stderr, "  case: %s\n", cases[i].what);
        }
        DV_CHECK_RC(rc, DV_EFORMAT, &err);
    }
    free(train.p);
    free(v1.p);
}

static void
test_attempts(void)
{
    rec_t two = seed("rec_attempts", "two-failed"),
          old = seed("rec_attempts", "count-only");
    DV_CHECK(two.p && old.p);
    dv_rec_attempts_t a;
    dv_error_t err = {0};
    int rc = dv_rec_attempts_decode(&a, 1, two.p, two.len, 200, &err);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(a.n_errors, 2);
    DV_CHECK_EQ(a.attempts, 3);
    DV_CHECK_STR_EQ(a.errors[1].worker, "w2");
    DV_CHECK_EQ(a.errors[0].code, DV_EIO);
    free(a.errors);
    rc = dv_rec_attempts_decode(&a, 1, old.p, old.len, 200, &err);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK(a.count_only && a.errors == NULL);
    DV_CHECK_EQ(a.attempts, 2);
    // More failed attempts than allowed; the last entry cut short; a text
    // length over DV_ERROR_TEXT_MAX; a NUL in a worker name.
    rc = dv_rec_attempts_decode(&a, 1, two.p, two.len, 1, &err);
    DV_CHECK_RC(rc, DV_EFORMAT, &err);
    rc = dv_rec_attempts_decode(&a, 1, two.p, two.len - 1, 200, &err);
    DV_CHECK_RC(rc, DV_EFORMAT, &err);
    put_u32(two.p + 12 + 16, 2 | (uint32_t)DV_ERROR_TEXT_MAX << 16);
    rc = dv_rec_attempts_decode(&a, 1, two.p, two.len, 200, &err);
    DV_CHECK_RC(rc, DV_EFORMAT, &err);
    free(two.p);
    two = seed("rec_attempts", "two-failed");
    two.p[12 + 20] = 0; // "w1" -> "\0" "1"
    rc = dv_rec_attempts_decode(&a, 1, two.p, two.len, 200, &err);
    DV_CHECK_RC(rc, DV_EFORMAT, &err);
    free(two.p);
    free(old.p);
}

static void
test_results(void)
{
    rec_t done = seed("rec_result", "done-streamed");
    DV_CHECK(done.p);
    dv_rec_result_t r;
    dv_error_t err = {0};
    int rc = dv_rec_result_decode(&r, 1, done.p, done.len, &err);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK(r.done && r.streamed);
    DV_CHECK_EQ(r.seq, 17);
    DV_CHECK_STR_EQ(r.queue, "default");
    DV_CHECK_STR_EQ(r.worker, "w1");
    DV_CHECK_EQ(r.n_frames, 1);
    DV_CHECK(r.frames[0].len == 13 &&
             memcmp(r.frames[0].data, "payload bytes", 13) == 0);
    DV_CHECK_EQ(r.extra_fields, 2);
    // Extra fields one more than packed; frames past the limit; an empty
    // stream queue name (its length is the record's last but one u32).
    done.p[16] = 3;
    rc = dv_rec_result_decode(&r, 1, done.p, done.len, &err);
    DV_CHECK_RC(rc, DV_EFORMAT, &err);
    done.p[16] = 2;
    done.p[2] = DV_MAX_FRAMES + 1;
    rc = dv_rec_result_decode(&r, 1, done.p, done.len, &err);
    DV_CHECK_RC(rc, DV_EFORMAT, &err);
    done.p[2] = 1;
    put_u32(done.p + done.len - 7 - 4, 0);
    rc = dv_rec_result_decode(&r, 1, done.p, done.len, &err);
    DV_CHECK_RC(rc, DV_EFORMAT, &err);
    free(done.p);
}

static void
test_dead_letters(void)
{
    rec_t dead = seed("rec_dead", "train-two-failed");
    DV_CHECK(dead.p);
    dv_rec_dead_t d;
    dv_error_t err = {0};
    int rc = dv_rec_dead_decode(&d, 1, dead.p, dead.len, &err);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(d.code, DV_EIO);
    dv_rec_job_t j;
    rc = dv_rec_job_decode(&j, 1, d.job, d.job_len, &err);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(j.kind, DV_REC_KIND_TRAIN);
    dv_rec_attempts_t a;
    rc = dv_rec_attempts_decode(&a, 1, d.attempts, d.attempts_len, 200, &err);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(a.n_errors, 2);
    free(a.errors);
    // The job's length past the end; the text's length past the end.
    size_t tl = strlen(d.text);
    put_u32(dead.p + 16 + tl, (uint32_t)dead.len);
    rc = dv_rec_dead_decode(&d, 1, dead.p, dead.len, &err);
    DV_CHECK_RC(rc, DV_EFORMAT, &err);
    put_u32(dead.p + 12, (uint32_t)dead.len);
    rc = dv_rec_dead_decode(&d, 1, dead.p, dead.len, &err);
    DV_CHECK_RC(rc, DV_EFORMAT, &err);
    free(dead.p);
}

static void
test_keys_and_cursors(void)
{
    rec_t key = seed("rec_key", "key"), cur = seed("rec_cursor", "cursor");
    DV_CHECK(key.p && cur.p);
    dv_rec_key_t k;
    dv_rec_cursor_t c;
    dv_error_t err = {0};
    int rc = dv_rec_key_decode(&k, 1, key.p, key.len, &err);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_STR_EQ(k.queue, "default");
    DV_CHECK_STR_EQ(k.key, "order-17");
    rc = dv_rec_cursor_decode(&c, 1, cur.p, cur.len, &err);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_STR_EQ(c.consumer, "c1");
    DV_CHECK_EQ(c.acked, 17);
    // No second name; a queue length that takes the whole record; a NUL.
    rc = dv_rec_cursor_decode(&c, 1, cur.p, 12 + 7, &err);
    DV_CHECK_RC(rc, DV_EFORMAT, &err);
    put_u32(key.p + 8, (uint32_t)(key.len - 12));
    rc = dv_rec_key_decode(&k, 1, key.p, key.len, &err);
    DV_CHECK_RC(rc, DV_EFORMAT, &err);
    cur.p[cur.len - 1] = 0;
    rc = dv_rec_cursor_decode(&c, 1, cur.p, cur.len, &err);
    DV_CHECK_RC(rc, DV_EFORMAT, &err);
    free(key.p);
    free(cur.p);
}

static const dv_test_case_t cases[] = {
    {"job seeds decode to their fields", test_job_seeds},
    {"every truncated job or result record is refused", test_truncations},
    {"damaged job records are refused", test_job_damage},
    {"attempts records", test_attempts},
    {"result records", test_results},
    {"dead letters and their nested records", test_dead_letters},
    {"idempotency key and cursor records", test_keys_and_cursors},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
