// test_store — the broker's LMDB store: staged writes applied by one
// commit, persistence across reopen (records, deletes, next id), a batch
// larger than the map (it grows), and damage reported with the right code:
// a flipped byte in a record (CRC), a truncated file, a file that is not
// LMDB at all.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dv_store.h"
#include "dv_test.h"

typedef struct {
    uint64_t ids[64];
    size_t lens[64];
    char first[64][32];
    size_t n;
} seen_t;

static int
collect(uint64_t id, const void *data, size_t len, void *arg)
{
    seen_t *s = arg;
    if (s->n < 64) {
        s->ids[s->n] = id;
        s->lens[s->n] = len;
        snprintf(s->first[s->n], sizeof s->first[0], "%.*s",
                 (int)(len < 31 ? len : 31), data ? (const char *)data : "");
    }
    s->n++;
    return 0;
}

static void
test_commit_and_reopen(void)
{
    char *dir = dv_test_tmpdir();
    dv_error_t err = {0};
    dv_store_t *st = NULL;
    int open_rc = dv_store_open(&st, dir, &err);
    DV_CHECK_RC(open_rc, 0, &err);
    uint64_t first_next = dv_store_next_id(st);
    dv_store_put(st, DV_STORE_JOBS, 1, "job-one", 7);
    dv_store_put(st, DV_STORE_JOBS, 2, "job-two", 7);
    dv_store_put(st, DV_STORE_JOBS, 3, "job-three", 9);
    dv_store_del(st, DV_STORE_JOBS, 2);
    dv_store_del(st, DV_STORE_JOBS, 99); // absent: fine
    dv_store_put(st, DV_STORE_RESULTS, 2, "result-two", 10);
    dv_store_put(st, DV_STORE_JOBS, 4, "", 0); // empty record
    dv_store_set_next_id(st, 5);
    size_t staged = dv_store_staged(st);
    int before = (int)dv_store_count(st, DV_STORE_JOBS);
    int crc = dv_store_commit(st, &err);
    int after = (int)dv_store_count(st, DV_STORE_JOBS);
    dv_store_destroy(&st);

    int rc2 = dv_store_open(&st, dir, &err);
    seen_t jobs = {0}, results = {0}, got = {0};
    // Reads by id: missing ids come back with no data.
    const uint64_t want[] = {3, 2, 99, 1};
    int gm = rc2 ? -1
                 : dv_store_get_many(st, DV_STORE_JOBS, want, 4, collect, &got,
                                     &err);
    int e1 = rc2 ? -1 : dv_store_each(st, DV_STORE_JOBS, collect, &jobs, &err);
    int e2 =
        rc2 ? -1 : dv_store_each(st, DV_STORE_RESULTS, collect, &results, &err);
    uint64_t next = rc2 ? 0 : dv_store_next_id(st);
    // Uncommitted writes vanish with the process.
    dv_store_put(st, DV_STORE_JOBS, 50, "lost", 4);
    dv_store_destroy(&st);
    dv_store_open(&st, dir, &err);
    size_t n_after_drop = dv_store_count(st, DV_STORE_JOBS);
    dv_store_destroy(&st);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_EQ(first_next, 1);
    DV_CHECK_EQ(staged, 8);
    DV_CHECK_EQ(before, 0);
    DV_CHECK_EQ(crc, 0);
    DV_CHECK_EQ(after, 3);
    DV_CHECK_RC(rc2, 0, &err);
    DV_CHECK_EQ(e1, 0);
    DV_CHECK_EQ(e2, 0);
    DV_CHECK_EQ(jobs.n, 3);
    DV_CHECK_EQ(jobs.ids[0], 1);
    DV_CHECK_STR_EQ(jobs.first[0], "job-one");
    DV_CHECK_EQ(jobs.ids[1], 3);
    DV_CHECK_STR_EQ(jobs.first[1], "job-three");
    DV_CHECK_EQ(jobs.ids[2], 4);
    DV_CHECK_EQ(jobs.lens[2], 0);
    DV_CHECK_EQ(results.n, 1);
    DV_CHECK_STR_EQ(results.first[0], "result-two");
    DV_CHECK_EQ(next, 5);
    DV_CHECK_EQ(n_after_drop, 3);
    DV_CHECK_EQ(gm, 0);
    DV_CHECK_EQ(got.n, 4);
    DV_CHECK_STR_EQ(got.first[0], "job-three");
    DV_CHECK_EQ(got.lens[1], 0); // 2 was deleted
    DV_CHECK_EQ(got.lens[2], 0); // 99 never existed
    DV_CHECK_STR_EQ(got.first[3], "job-one");
}

static void
test_map_grows(void)
{
    char *dir = dv_test_tmpdir();
    dv_error_t err = {0};
    dv_store_t *st = NULL;
    int rc = dv_store_open(&st, dir, &err);
    DV_CHECK_RC(rc, 0, &err);
    // 96 MiB in one batch: over the initial 64 MiB map.
    size_t len = (size_t)1 << 20;
    char *big = malloc(len);
    memset(big, 'b', len);
    for (uint64_t id = 1; id <= 96; id++) {
        dv_store_put(st, DV_STORE_JOBS, id, big, len);
    }
    int crc = dv_store_commit(st, &err);
    size_t n = dv_store_count(st, DV_STORE_JOBS);
    dv_store_destroy(&st);
    int rc2 = dv_store_open(&st, dir, &err); // reopens a file > 64 MiB
    seen_t s = {0};
    int e = rc2 ? -1 : dv_store_each(st, DV_STORE_JOBS, collect, &s, &err);
    dv_store_destroy(&st);
    free(big);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_RC(crc, 0, &err);
    DV_CHECK_EQ(n, 96);
    DV_CHECK_EQ(rc2, 0);
    DV_CHECK_EQ(e, 0);
    DV_CHECK_EQ(s.n, 96);
    DV_CHECK_EQ(s.lens[63], len);
}

static unsigned char *
find(unsigned char *hay, size_t n, const char *needle, size_t m)
{
    for (size_t i = 0; hay && i + m <= n; i++) {
        if (memcmp(hay + i, needle, m) == 0) {
            return hay + i;
        }
    }
    return NULL;
}

// Path of dir/store/data.mdb (static buffer).
static const char *
data_file(const char *dir)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/store/data.mdb", dir);
    return path;
}

static void
test_damage_is_reported(void)
{
    char *dir = dv_test_tmpdir();
    dv_error_t err = {0};
    dv_store_t *st = NULL;
    dv_store_open(&st, dir, &err);
    const char marker[] = "MARKER-0123456789-MARKER";
    dv_store_put(st, DV_STORE_JOBS, 7, marker, sizeof marker - 1);
    dv_store_commit(st, &err);
    dv_store_destroy(&st);
    // Flip a byte inside the record's value.
    size_t len = 0;
    unsigned char *file = dv_test_read_file(data_file(dir), &len);
    unsigned char *at =
        file ? find(file, len, marker, sizeof marker - 1) : NULL;
    if (at) {
        at[3] ^= 0x20;
        dv_test_write_file(data_file(dir), file, len);
    }
    int rc_open = dv_store_open(&st, dir, &err);
    seen_t s = {0};
    int rc_each =
        rc_open ? -1 : dv_store_each(st, DV_STORE_JOBS, collect, &s, &err);
    // The message docs/SEMANTICS.md's table names.
    bool names_job =
        strstr(err.text, "jobs record of job 7 is damaged (CRC mismatch") !=
        NULL;
    dv_store_destroy(&st);
    // Truncated: half the file.
    if (file) {
        dv_test_write_file(data_file(dir), file, len / 2);
    }
    dv_error_t terr = {0};
    int rc_trunc = dv_store_open(&st, dir, &terr);
    dv_store_destroy(&st);
    // Not LMDB at all.
    char junk[8192];
    memset(junk, 0x5a, sizeof junk);
    dv_test_write_file(data_file(dir), junk, sizeof junk);
    dv_error_t jerr = {0};
    int rc_junk = dv_store_open(&st, dir, &jerr);
    dv_store_destroy(&st);
    free(file);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK(at != NULL);
    DV_CHECK_EQ(rc_open, 0);
    DV_CHECK_EQ(rc_each, DV_ECHECKSUM);
    DV_CHECK(names_job);
    DV_CHECK_EQ(s.n, 0);
    DV_CHECK_EQ(rc_trunc, DV_ETRUNC);
    DV_CHECK(strstr(terr.text, "data.mdb is ") != NULL);
    DV_CHECK(strstr(terr.text, " bytes but its pages reach ") != NULL);
    DV_CHECK(strstr(terr.text, "(truncated") != NULL);
    DV_CHECK(rc_junk == DV_EFORMAT || rc_junk == DV_EVERSION);
    DV_CHECK(strstr(jerr.text, "damaged or not an LMDB store") != NULL);
    DV_CHECK(strstr(jerr.text, "will not run") != NULL);
}

static const dv_test_case_t cases[] = {
    {"commit and reopen", test_commit_and_reopen},
    {"the map grows", test_map_grows},
    {"damage is reported", test_damage_is_reported},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
