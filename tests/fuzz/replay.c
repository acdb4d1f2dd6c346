// replay — main() for a fuzz target built without libFuzzer (gcc, every
// preset but fuzz): feed each file of the folders (or files) on the command
// line to LLVMFuzzerTestOneInput, in name order, each in a buffer of
// exactly its size. This is how `make test` replays the committed corpus,
// crash inputs included, under ASan and UBSan. Exits 1 when an argument
// cannot be read or holds no input (a replay of nothing proves nothing).
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dv_file.h"
#include "dv_fuzz.h"

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// Replay one file. Returns 0, or 1 when it cannot be read.
static int
replay_file(const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    dv_error_t err = {0};
    if (dv_file_read(path, (size_t)1 << 26, &data, &len, &err) != 0) {
        fprintf(stderr, "replay: %s\n", err.text);
        return 1;
    }
    // An exact-size copy: dv_file_read may allocate more than len.
    uint8_t *exact = dv_malloc(len ? len : 1);
    memcpy(exact, data, len);
    free(data);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

// Replay every regular, non-hidden file in dir; *n counts them.
static int
replay_dir(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: cannot open %s\n", dir);
        return 1;
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        if (count == cap) {
            cap = cap ? 2 * cap : 64;
            names = dv_realloc(names, cap * sizeof *names);
        }
        names[count++] = dv_strdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof *names, cmp_str);
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            rc |= replay_file(path);
            (*n)++;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 2;
    }
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        size_t n = 0;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            rc |= replay_dir(argv[i], &n);
        } else {
            rc |= replay_file(argv[i]);
            n = 1;
        }
        printf("replayed %zu inputs from %s\n", n, argv[i]);
        if (n == 0) {
            fprintf(stderr, "replay: no inputs in %s\n", argv[i]);
            rc = 1;
        }
    }
    return rc;
}
