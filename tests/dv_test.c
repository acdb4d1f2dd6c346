// dv_test — runner for table-driven test binaries; see dv_test.h.
#include "dv_test.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

int dv_test_failed;

int
dv_test_main(int argc, char **argv, const dv_test_case_t *cases)
{
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (const dv_test_case_t *c = cases; c->name; c++) {
            printf("%s\n", c->name);
        }
        return 0;
    }
    int ran = 0, failed = 0;
    for (const dv_test_case_t *c = cases; c->name; c++) {
        if (argc > 1 && strcmp(argv[1], c->name) != 0) {
            continue;
        }
        dv_test_failed = 0;
        c->fn();
        ran++;
        printf("%s %s\n", dv_test_failed ? "FAIL" : "ok  ", c->name);
        fflush(stdout);
        failed += dv_test_failed;
    }
    if (ran == 0) {
        fprintf(stderr, "no test case named \"%s\"\n", argc > 1 ? argv[1] : "");
        return 2;
    }
    printf("%d/%d passed\n", ran - failed, ran);
    return failed ? 1 : 0;
}

const char *
dv_test_data(const char *name)
{
    static char path[4096];
    const char *dir = getenv("DV_DATA_DIR");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "data", name);
    return path;
}

char *
dv_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/drover-test-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        abort();
    }
    return strdup(tmpl);
}

void
dv_test_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        return;
    }
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            dv_test_rmdir(path);
        } else {
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

unsigned char *
dv_test_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    size_t cap = 4096, len = 0;
    unsigned char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    fclose(f);
    *len_out = len;
    return buf;
}

int
dv_test_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        return -1;
    }
    size_t n = fwrite(data, 1, len, f);
    return fclose(f) == 0 && n == len ? 0 : -1;
}
