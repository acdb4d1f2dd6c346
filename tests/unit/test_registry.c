// test_registry — what dv_registry_open reads back from a models folder
// beside the model files: a version's lineage file is kept when it holds
// one msgpack map and dropped otherwise — including a file whose msgpack
// counts claim more than it holds, which must never reach msgpack-c's
// allocator (a 5-byte array32 header asks it for ~100 GB).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dv_modelfile.h"
#include "dv_registry.h"
#include "dv_test.h"

// A models folder under dir holding m@1 (a small regression model) and
// lineage as 1.lineage. Returns 0, or -1 when a file cannot be written.
static int
make_store(const char *dir, const void *lineage, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/models", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/models/m", dir);
    mkdir(path, 0755);
    size_t widths[] = {2, 1};
    dv_act_t acts[] = {DV_ACT_IDENTITY};
    dv_model_t *m = dv_test_model(DV_TASK_REGRESSION, 1, widths, acts, 0);
    snprintf(path, sizeof path, "%s/models/m/1.drvm", dir);
    dv_error_t err = {0};
    int rc = dv_model_save(m, path, &err);
    dv_model_destroy(&m);
    snprintf(path, sizeof path, "%s/models/m/1.lineage", dir);
    return rc == 0 && dv_test_write_file(path, lineage, len) == 0 ? 0 : -1;
}

// The file of a small regression model into *image (caller frees) and
// *len. Returns 0 or dv_model_encode's error.
static int
tiny_image(uint8_t **image, size_t *len, dv_error_t *err)
{
    size_t widths[] = {2, 1};
    dv_act_t acts[] = {DV_ACT_IDENTITY};
    dv_model_t *m = dv_test_model(DV_TASK_REGRESSION, 1, widths, acts, 0);
    int rc = dv_model_encode(m, image, len, err);
    dv_model_destroy(&m);
    return rc;
}

static void
test_lineage_files(void)
{
    const struct {
        const char *what;
        const char *bytes;
        size_t len;
        bool kept;
    } cases[] = {
        {"a map", "\x81\xa3job\x07", 6, true},
        {"not a map", "\x93\x01\x02\x03", 4, false},
        {"trailing bytes", "\x81\xa3job\x07\x00", 7, false},
        {"array32 claiming 2^32 - 1 items", "\xdd\xff\xff\xff\xff", 5, false},
        {"map32 claiming 2^32 - 1 pairs", "\xdf\xff\xff\xff\xff\xa1k", 7,
         false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *dir = dv_test_tmpdir();
        dv_registry_t *r = NULL;
        dv_error_t err = {0};
        int rc = make_store(dir, cases[i].bytes, cases[i].len);
        rc = rc ? rc : dv_registry_open(&r, dir, &err);
        const dv_model_info_t *info = rc ? NULL : dv_registry_get(r, "m", 1);
        bool kept = info && info->lineage && info->lineage_len == cases[i].len;
        dv_registry_destroy(&r);
        dv_test_rmdir(dir);
        free(dir);
        if (rc != 0 || !info || kept != cases[i].kept) {
            fprintf(stderr, "  case: %s\n", cases[i].what);
        }
        DV_CHECK_RC(rc, 0, &err);
        DV_CHECK(info != NULL);
        DV_CHECK_EQ(kept, cases[i].kept);
    }
}

// 60 models pushed in a scrambled order, 1 to 4 versions each (memory
// mode): every version is found by name and number, the latest by 0, and
// names beside them (a prefix, a longer name, one between two) find
// nothing; serving settings are found by name; after a version or a
// model is removed the others are still found.
static void
test_versions_found_among_many(void)
{
    dv_registry_t *r = NULL;
    dv_error_t err = {0};
    int rc = dv_registry_open(&r, NULL, &err);
    uint8_t *image = NULL;
    size_t len = 0;
    rc = rc ? rc : tiny_image(&image, &len, &err);
    enum { N = 60 };
    for (unsigned v = 1; rc == 0 && v <= 4; v++) {
        for (unsigned k = 0; rc == 0 && k < N; k++) {
            unsigned i = (k * 37u) % N; // 37 is prime to 60: a permutation
            char name[16];
            snprintf(name, sizeof name, "m%02u", i);
            if (v <= 1 + i % 4) { // model i has 1 + i % 4 versions
                rc = dv_registry_push(r, name, image, len, NULL, &err);
            }
        }
    }
    free(image);
    DV_CHECK_RC(rc, 0, &err);
    int wrong = 0;
    for (unsigned i = 0; rc == 0 && i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%02u", i);
        unsigned versions = 1 + i % 4;
        for (unsigned v = 0; v <= versions + 1; v++) {
            const dv_model_info_t *info = dv_registry_get(r, name, v);
            unsigned want = v == 0 ? versions : v <= versions ? v : 0;
            bool ok = want ? info && strcmp(info->name, name) == 0 &&
                                 info->version == want
                           : info == NULL;
            if (!ok && wrong++ < 5) {
                fprintf(stderr, "  %s@%u: got %s@%u\n", name, v,
                        info ? info->name : "-", info ? info->version : 0);
            }
        }
    }
    const char *absent[] = {"m", "m0", "m000", "m05a", "m59x", "m60", "a", "z"};
    for (size_t i = 0; i < sizeof absent / sizeof *absent; i++) {
        if (dv_registry_get(r, absent[i], 0) ||
            dv_registry_get(r, absent[i], 1)) {
            fprintf(stderr, "  %s found\n", absent[i]);
            wrong++;
        }
    }
    // Settings for every third model, set in a scrambled order: each
    // finds its own, the others the defaults; removing m03 forgets its.
    for (unsigned k = 0; rc == 0 && k < N; k++) {
        unsigned i = (k * 37u) % N;
        char name[16];
        snprintf(name, sizeof name, "m%02u", i);
        dv_model_config_t cfg = {10 + i, i};
        rc = i % 3 ? 0 : dv_registry_config_set(r, name, &cfg, &err);
    }
    DV_CHECK_RC(rc, 0, &err);
    for (unsigned i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%02u", i);
        dv_model_config_t cfg = dv_registry_config(r, name);
        bool ok = i % 3 ? cfg.max_batch_rows == DV_BATCH_ROWS_DEFAULT &&
                              cfg.max_delay_us == 0
                        : cfg.max_batch_rows == 10 + i && cfg.max_delay_us == i;
        if (!ok && wrong++ < 5) {
            fprintf(stderr, "  %s: %u rows, %u us\n", name, cfg.max_batch_rows,
                    cfg.max_delay_us);
        }
    }
    int rm0 = dv_registry_rm(r, "m06", 0, &err); // all 3 versions
    bool forgot =
        dv_registry_config(r, "m06").max_batch_rows == DV_BATCH_ROWS_DEFAULT &&
        dv_registry_config(r, "m03").max_batch_rows == 13 &&
        dv_registry_config(r, "m09").max_batch_rows == 19 &&
        !dv_registry_get(r, "m06", 0);
    // m03 has 4 versions: without 4 its latest is 3; without 2, 1 and 3 stay.
    int rm1 = dv_registry_rm(r, "m03", 4, &err);
    const dv_model_info_t *latest = dv_registry_get(r, "m03", 0);
    uint32_t latest_v = latest ? latest->version : 0; // borrowed until rm
    int rm2 = dv_registry_rm(r, "m03", 2, &err);
    bool after = dv_registry_get(r, "m03", 1) &&
                 !dv_registry_get(r, "m03", 2) &&
                 dv_registry_get(r, "m03", 3) && dv_registry_get(r, "m02", 3) &&
                 dv_registry_get(r, "m04", 1);
    dv_registry_destroy(&r);
    DV_CHECK_EQ(wrong, 0);
    DV_CHECK_EQ(rm1, 1);
    DV_CHECK_EQ(latest_v, 3);
    DV_CHECK_EQ(rm2, 1);
    DV_CHECK(after);
    DV_CHECK_EQ(rm0, 3);
    DV_CHECK(forgot);
}

// What the registry stores is bounded (dv_registry_bound): versions,
// file bytes, and with a folder the free bytes its file system keeps. Past
// a bound a push is refused (DV_ELIMIT, DV_ENOSPC) and stores nothing;
// removing versions makes room again.
static void
test_bounded(void)
{
    uint8_t *image = NULL;
    size_t len = 0;
    dv_error_t err = {0};
    int rc = tiny_image(&image, &len, &err);
    DV_CHECK_RC(rc, 0, &err);
    const struct {
        const char *what;
        bool on_disk;
        size_t versions; // bound (0: default)
        uint64_t bytes;  // bound in files (0: default)
        uint64_t free;   // bound: bytes left free (0: default)
        int pushed;      // pushes that succeed of 5
        int refusal;     // the code of the others
    } cases[] = {
        {"3 versions", false, 3, 0, 0, 3, DV_ELIMIT},
        {"2 files' bytes", false, 0, 2 * len + len / 2, 0, 2, DV_ELIMIT},
        {"no bound reached", false, 0, 0, 0, 5, 0},
        {"a disk that cannot keep 1 EiB free", true, 0, 0, 1ULL << 60, 0,
         DV_ENOSPC},
        {"on disk, 4 versions", true, 4, 0, 0, 4, DV_ELIMIT},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char *dir = cases[c].on_disk ? dv_test_tmpdir() : NULL;
        dv_registry_t *r = NULL;
        rc = dv_registry_open(&r, dir, &err);
        DV_CHECK_RC(rc, 0, &err);
        dv_registry_bound(r, cases[c].versions, cases[c].bytes, cases[c].free);
        int pushed = 0, refusal = 0;
        for (int i = 0; i < 5; i++) {
            dv_error_t e = {0};
            int prc =
                dv_registry_push(r, i % 2 ? "b" : "a", image, len, NULL, &e);
            pushed += prc == 0;
            refusal = prc ? prc : refusal;
        }
        size_t n = 0;
        dv_registry_list(r, &n);
        // Room again once some are removed (a version bound, a byte bound).
        int again = -1;
        if (cases[c].refusal == DV_ELIMIT) {
            dv_registry_rm(r, "a", 0, &err);
            again = dv_registry_push(r, "c", image, len, NULL, &err);
        }
        printf("  %s: %d of 5 pushed (%zu stored), then %s%s\n", cases[c].what,
               pushed, n, dv_err_name(refusal),
               again == 0 ? "; room again after a removal" : "");
        dv_registry_destroy(&r);
        if (dir) {
            dv_test_rmdir(dir);
            free(dir);
        }
        DV_CHECK_EQ(pushed, cases[c].pushed);
        DV_CHECK_EQ(n, (size_t)cases[c].pushed);
        DV_CHECK_EQ(refusal, cases[c].refusal);
        if (cases[c].refusal == DV_ELIMIT) {
            DV_CHECK_EQ(again, 0);
        }
    }
    free(image);
}

// Aliases against a model: 40 models of 3 versions, 5 aliases each set
// in a scrambled order, then moved, some removed, one model removed whole
// (an aliased version alone is not); every alias finds its version (absent ones
// 0), each version lists exactly its aliases, and a reopen of the folder
// (aliases read back name by name) finds the same.
enum { A_MODELS = 40, A_PER = 5 };

static int
alias_want(unsigned i, unsigned a)
{
    if (i == 7) {
        return 0; // its versions removed: its aliases went with them
    }
    if ((i + a) % 4 == 0) {
        return 0; // removed
    }
    return (int)(1 + (i + 2 * a) % 3) % 3 + 1; // moved from 1 + (i+2a) % 3
}

static size_t
aliases_wrong(const dv_registry_t *r)
{
    size_t wrong = 0;
    for (unsigned i = 0; i < A_MODELS; i++) {
        char name[16], alias[16];
        snprintf(name, sizeof name, "m%02u", i);
        for (unsigned a = 0; a < A_PER + 1; a++) {
            snprintf(alias, sizeof alias, "a%u", a);
            int want = a < A_PER ? alias_want(i, a) : 0;
            wrong +=
                dv_registry_alias_version(r, name, alias) != (unsigned)want;
        }
        for (uint32_t v = 1; v <= 3; v++) {
            const char *got[8];
            size_t n = dv_registry_aliases_of(r, name, v, got, 8), expect = 0;
            for (unsigned a = 0; a < A_PER; a++) {
                expect += alias_want(i, a) == (int)v;
            }
            wrong += n != expect;
            for (size_t k = 0; k < n; k++) {
                unsigned a = (unsigned)atoi(got[k] + 1);
                wrong += got[k][0] != 'a' || alias_want(i, a) != (int)v;
            }
        }
    }
    return wrong;
}

static void
test_aliases_among_many(void)
{
    char *dir = dv_test_tmpdir();
    char models[4200];
    snprintf(models, sizeof models, "%s/models", dir);
    mkdir(models, 0755);
    dv_registry_t *r = NULL;
    dv_error_t err = {0};
    int rc = dv_registry_open(&r, dir, &err);
    uint8_t *image = NULL;
    size_t len = 0;
    rc = rc ? rc : tiny_image(&image, &len, &err);
    char name[16], alias[16];
    for (unsigned v = 1; rc == 0 && v <= 3; v++) {
        for (unsigned i = 0; rc == 0 && i < A_MODELS; i++) {
            snprintf(name, sizeof name, "m%02u", i);
            rc = dv_registry_push(r, name, image, len, NULL, &err);
        }
    }
    free(image);
    uint32_t prev = 0;
    for (unsigned k = 0; rc == 0 && k < A_MODELS * A_PER; k++) {
        unsigned x = (k * 37u) % (A_MODELS * A_PER); // scrambled
        unsigned i = x / A_PER, a = x % A_PER;
        snprintf(name, sizeof name, "m%02u", i);
        snprintf(alias, sizeof alias, "a%u", a);
        rc =
            dv_registry_alias(r, name, alias, 1 + (i + 2 * a) % 3, &prev, &err);
    }
    for (unsigned k = 0; rc == 0 && k < A_MODELS * A_PER; k++) {
        unsigned i = k / A_PER, a = k % A_PER;
        snprintf(name, sizeof name, "m%02u", i);
        snprintf(alias, sizeof alias, "a%u", a);
        uint32_t to = (i + a) % 4 == 0 ? 0 : (1 + (i + 2 * a) % 3) % 3 + 1;
        if (i != 7) {
            rc = dv_registry_alias(r, name, alias, to, &prev, &err);
        }
    }
    // A version an alias points at is not removed; removing m07 whole
    // takes its aliases with it.
    int refused = rc ? rc : dv_registry_rm(r, "m07", 1 + (7 + 2 * 1) % 3, &err);
    int removed = rc ? rc : dv_registry_rm(r, "m07", 0, &err);
    rc = removed == 3 ? 0 : removed;
    size_t wrong = rc ? 1 : aliases_wrong(r);
    dv_registry_destroy(&r);
    int reopen = rc ? rc : dv_registry_open(&r, dir, &err);
    size_t wrong_after = reopen ? 1 : aliases_wrong(r);
    dv_registry_destroy(&r);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(refused, DV_EINVAL);
    DV_CHECK_EQ(wrong, 0);
    DV_CHECK_EQ(reopen, 0);
    DV_CHECK_EQ(wrong_after, 0);
}

static const dv_test_case_t cases[] = {
    {"aliases among many names, moved, removed, reopened",
     test_aliases_among_many},
    {"lineage files: kept when one map, else dropped", test_lineage_files},
    {"versions and settings found among many models",
     test_versions_found_among_many},
    {"bounded in versions, bytes and free disk", test_bounded},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
