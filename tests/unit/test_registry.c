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

static const dv_test_case_t cases[] = {
    {"lineage files: kept when one map, else dropped", test_lineage_files},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
