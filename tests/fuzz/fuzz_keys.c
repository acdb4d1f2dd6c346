// fuzz_keys — CURVE key files (dv_key_load: czmq's ZPL text, then our
// checks of keys, name, roles, queues, sign-key), as the broker reads its
// authorized-keys folder and every daemon and client its own key. Byte 0
// bit 0 picks the file name (alice.key, judged as a secret file, or
// alice.pub); the rest is written to that file (mode 0600) in a private
// temporary folder and loaded. A key it accepts must be whole.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dv_fuzz.h"
#include "dv_keys.h"
#include "dv_mem.h"

static char s_dir[256];

static void
cleanup(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/alice.key", s_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/alice.pub", s_dir);
    unlink(path);
    rmdir(s_dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    if (!s_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(s_dir, sizeof s_dir, "%s/dv-fuzz-keys-XXXXXX",
                 tmp && tmp[0] ? tmp : "/tmp");
        dv_assert(mkdtemp(s_dir) != NULL);
        atexit(cleanup);
    }
    char path[300];
    snprintf(path, sizeof path, "%s/alice.%s", s_dir,
             (data[0] & 1) ? "key" : "pub");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    dv_assert(fd >= 0);
    dv_assert(write(fd, data + 1, size - 1) == (ssize_t)(size - 1));
    close(fd);
    dv_key_t k;
    dv_error_t err = {0};
    int rc = dv_key_load(&k, path, &err);
    dv_fuzz_check(rc, &err);
    if (rc == 0) {
        dv_assert(k.id[0] && strlen(k.id) <= DV_KEY_ID_MAX);
        dv_assert(strlen(k.public_z85) == 40);
        dv_assert(k.all_queues || k.n_queues > 0);
        char roles[DV_ROLES_TEXT_MAX];
        dv_assert(dv_roles_format(k.roles, roles, sizeof roles) == roles);
        (void)dv_key_allows_queue(&k, "q");
    }
    dv_key_clear(&k);
    return 0;
}
