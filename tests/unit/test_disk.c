// test_disk — the data dir's free space watch: low below the reserve, back
// only past the reserve and an eighth (no flapping at the line), low at
// once when the store says it is full, off with no reserve; a submit reads
// again once the submits since the last reading may have used a quarter of
// the room, and a refusal names the figures and the flag.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "dv_disk.h"
#include "dv_test.h"

#define MB ((uint64_t)1 << 20)

static void
test_states(void)
{
    // Each step: a reading (or the store saying full), and the state after.
    enum { READ, FULL };
    const struct {
        const char *name;
        uint64_t reserve;
        struct {
            int what;
            uint64_t free;
            bool low;
        } steps[6];
        size_t n;
    } cases[] = {
        {"plenty", 64 * MB, {{READ, 1000 * MB, false}}, 1},
        {"below the reserve", 64 * MB, {{READ, 63 * MB, true}}, 1},
        {"at the reserve", 64 * MB, {{READ, 64 * MB, false}}, 1},
        {"hysteresis",
         64 * MB,
         {{READ, 60 * MB, true},
          {READ, 65 * MB, true},   // above the line, not past an eighth
          {READ, 71 * MB, true},   // 72 MiB is the way back
          {READ, 72 * MB, false},  //
          {READ, 70 * MB, false}}, // above the line: stays
         5},
        {"the store says full",
         64 * MB,
         {{READ, 1000 * MB, false},
          {FULL, 0, true},
          {READ, 1000 * MB, true}, // the reading after it: still low
          {READ, 1000 * MB, false}},
         4},
        {"no reserve", 0, {{READ, 0, false}, {FULL, 0, false}}, 2},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        dv_disk_t *d = dv_disk_new("/nonexistent-dir", cases[c].reserve);
        DV_CHECK(!dv_disk_low(d));
        DV_CHECK_EQ(dv_disk_free(d), UINT64_MAX);
        for (size_t i = 0; i < cases[c].n; i++) {
            bool low;
            if (cases[c].steps[i].what == FULL) {
                dv_disk_full(d);
                low = dv_disk_low(d);
            } else {
                low = dv_disk_update(d, cases[c].steps[i].free);
                DV_CHECK_EQ(dv_disk_free(d), cases[c].steps[i].free);
            }
            if (low != cases[c].steps[i].low) {
                fprintf(stderr, "  %s, step %zu\n", cases[c].name, i);
            }
            DV_CHECK_EQ(low, cases[c].steps[i].low);
            DV_CHECK_EQ(dv_disk_low(d), low);
            dv_error_t err = {0};
            int rc = dv_disk_admit(d, 0, &err);
            DV_CHECK_EQ(rc, low ? DV_ENOSPC : 0);
            DV_CHECK(!low || strstr(err.text, "free") != NULL);
        }
        // A reading that fails (no such folder) leaves the state as it was.
        bool before = dv_disk_low(d);
        DV_CHECK_EQ(dv_disk_check(d), before);
        dv_disk_destroy(&d);
        DV_CHECK(d == NULL);
    }
}

// Submits read again once they may have used a quarter of the room above
// the reserve: here the real file system has far less free than the
// reserve, which only a reading can tell after a made-up one said plenty.
static void
test_submits_read_again(void)
{
    char *dir = dv_test_tmpdir();
    struct statvfs vfs;
    DV_CHECK(dir && statvfs(dir, &vfs) == 0);
    uint64_t real = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    uint64_t reserve = real + ((uint64_t)1 << 40); // more than is there
    dv_disk_t *d = dv_disk_new(dir, reserve);
    uint64_t said = reserve + 400 * MB; // room: 400 MiB, a quarter 100
    DV_CHECK(!dv_disk_update(d, said));
    dv_error_t err = {0};
    // 2 x 40 MiB + 1 KiB: under a quarter, no reading.
    DV_CHECK_EQ(dv_disk_admit(d, 40 * MB, &err), 0);
    DV_CHECK_EQ(dv_disk_free(d), said); // not read again yet
    // The second brings the count past a quarter: read, and refused.
    DV_CHECK_EQ(dv_disk_admit(d, 40 * MB, &err), DV_ENOSPC);
    DV_CHECK(dv_disk_free(d) < reserve);
    DV_CHECK(strstr(err.text, "--submit-free-disk") != NULL);
    DV_CHECK(dv_disk_low(d));
    dv_disk_destroy(&d);
    dv_test_rmdir(dir);
    free(dir);
}

static const dv_test_case_t cases[] = {
    {"low, back, full, off", test_states},
    {"submits read again as they use the room", test_submits_read_again},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
