// dv_test — runner for table-driven test binaries; see dv_test.h.
#include "dv_test.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dv_keys.h"

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
    if (getenv("DV_TEST_KEEP")) { // debugging: keep logs and stores
        fprintf(stderr, "  kept %s\n", dir);
        return;
    }
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
    buf[len] = '\0'; // len < cap always: text files can be used as strings
    *len_out = len;
    return buf;
}

bool
dv_test_file_has(const char *path, const char *needle)
{
    size_t len = 0;
    char *text = (char *)dv_test_read_file(path, &len);
    bool has = text && strstr(text, needle);
    free(text);
    return has;
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

dv_model_t *
dv_test_model(dv_task_t task,
              size_t n_layers,
              const size_t *widths,
              const dv_act_t *acts,
              size_t n_classes)
{
    dv_model_t *m = dv_model_new();
    m->task = task;
    m->n_features = widths[0];
    m->feature_names = calloc(widths[0], sizeof(char *));
    for (size_t j = 0; j < widths[0]; j++) {
        char name[32];
        snprintf(name, sizeof name, "f%zu", j);
        m->feature_names[j] = strdup(name);
    }
    m->target_name = strdup("y");
    m->scaler = dv_scaler_new(DV_SCALE_NONE, widths[0], NULL, NULL);
    if (n_classes) {
        char **labels = calloc(n_classes, sizeof(char *));
        for (size_t c = 0; c < n_classes; c++) {
            labels[c] = malloc(32);
            snprintf(labels[c], 32, "c%zu", c);
        }
        m->labels = dv_labels_new(labels, n_classes, false);
        for (size_t c = 0; c < n_classes; c++) {
            free(labels[c]);
        }
        free(labels);
    }
    dv_model_set_layers(m, n_layers, widths, acts);
    return m;
}

bool
dv_test_key_make(const char *keys_dir,
                 const char *auth_dir,
                 const char *name,
                 unsigned roles,
                 const char *queues)
{
    char stem[4400], from[4500], to[4500];
    snprintf(stem, sizeof stem, "%s/%s", keys_dir, name);
    dv_error_t err = {0};
    if (dv_key_generate(stem, name, roles, queues, &err) != 0) {
        fprintf(stderr, "  keygen %s: %s\n", name, err.text);
        return false;
    }
    if (!auth_dir) {
        return true;
    }
    snprintf(from, sizeof from, "%s.pub", stem);
    snprintf(to, sizeof to, "%s/%s.pub", auth_dir, name);
    size_t len = 0;
    unsigned char *bytes = dv_test_read_file(from, &len);
    bool ok = bytes && dv_test_write_file(to, bytes, len) == 0;
    free(bytes);
    return ok;
}
