// dv_test — a tiny table-driven test harness (libuv's ASSERT_EQ style).
//
// A test binary defines its cases in a table and hands it to dv_test_main:
//
//   static const dv_test_case_t cases[] = {
//       {"push then pop keeps order", test_push_pop},
//       {NULL, NULL},
//   };
//   int main(int argc, char **argv) { return dv_test_main(argc, argv, cases); }
//
// `test_x` runs every case; `test_x "case name"` runs one; `test_x --list`
// lists them. A failed check prints both values and file:line and fails the
// case; the binary exits 1 when any case failed.
#ifndef DV_TEST_H
#define DV_TEST_H

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_err.h"
#include "dv_model.h"

typedef struct {
    const char *name; // shown in output, used to pick one case
    void (*fn)(void); // the case; checks set dv_test_failed
} dv_test_case_t;

extern int dv_test_failed; // set by a failed check in the running case

#define DV_FAIL_(...)                                                          \
    do {                                                                       \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                      \
        fprintf(stderr, __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                   \
        dv_test_failed = 1;                                                    \
    } while (0)

#define DV_CHECK(cond)                                                         \
    do {                                                                       \
        if (!(cond)) {                                                         \
            DV_FAIL_("check failed: %s", #cond);                               \
            return;                                                            \
        }                                                                      \
    } while (0)

#define DV_CHECK_EQ(a, b)                                                      \
    do {                                                                       \
        long long va_ = (long long)(a), vb_ = (long long)(b);                  \
        if (va_ != vb_) {                                                      \
            DV_FAIL_("%s == %s: %lld != %lld", #a, #b, va_, vb_);              \
            return;                                                            \
        }                                                                      \
    } while (0)

#define DV_CHECK_STR_EQ(a, b)                                                  \
    do {                                                                       \
        const char *sa_ = (a), *sb_ = (b);                                     \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                           \
            DV_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b,                     \
                     sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");              \
            return;                                                            \
        }                                                                      \
    } while (0)

// |a - b| <= tol
#define DV_CHECK_NEAR(a, b, tol)                                               \
    do {                                                                       \
        double va_ = (double)(a), vb_ = (double)(b);                           \
        if (!(fabs(va_ - vb_) <= (double)(tol))) {                             \
            DV_FAIL_("%s ~= %s: %.9g vs %.9g (tol %g)", #a, #b, va_, vb_,      \
                     (double)(tol));                                           \
            return;                                                            \
        }                                                                      \
    } while (0)

// a >= b, for quality floors
#define DV_CHECK_GE(a, b)                                                      \
    do {                                                                       \
        double va_ = (double)(a), vb_ = (double)(b);                           \
        if (!(va_ >= vb_)) {                                                   \
            DV_FAIL_("%s >= %s: %.9g < %.9g", #a, #b, va_, vb_);               \
            return;                                                            \
        }                                                                      \
    } while (0)

// A Drover call returned the expected code; on mismatch prints the err text.
#define DV_CHECK_RC(rc, want, errp)                                            \
    do {                                                                       \
        int rc_ = (rc), want_ = (want);                                        \
        const dv_error_t *ep_ = (errp);                                        \
        if (rc_ != want_) {                                                    \
            DV_FAIL_("%s: got %d (%s), want %d (%s); reason: %s", #rc, rc_,    \
                     dv_err_name(rc_), want_, dv_err_name(want_),              \
                     ep_ ? ep_->text : "");                                    \
            return;                                                            \
        }                                                                      \
    } while (0)

int dv_test_main(int argc, char **argv, const dv_test_case_t *cases);

// Path of a file under the repository's data/ folder (DV_DATA_DIR env var,
// set by CTest). Borrowed static buffer, valid until the next call.
const char *dv_test_data(const char *name);

// A fresh temporary directory (mkdtemp); caller frees the string. Remove with
// dv_test_rmdir.
char *dv_test_tmpdir(void);
void dv_test_rmdir(const char *dir);

// Read a whole file; caller frees. NULL on failure. *len_out gets the size;
// a NUL follows the bytes (not counted), so text can be used as a string.
unsigned char *dv_test_read_file(const char *path, size_t *len_out);
// Whether the file at path holds needle (false when it cannot be read).
bool dv_test_file_has(const char *path, const char *needle);
// Write bytes to path; 0 on success.
int dv_test_write_file(const char *path, const void *data, size_t len);

// Generate key pair keys_dir/NAME.key + .pub (dv_key_generate: name,
// roles, queues) and, when auth_dir is not NULL, authorize it by copying
// the .pub there. False (with the reason on stderr) on failure.
bool dv_test_key_make(const char *keys_dir,
                      const char *auth_dir,
                      const char *name,
                      unsigned roles,
                      const char *queues);

// A model record with features f0..f(widths[0]-1), target "y", no scaling,
// the given layers (weights zero) and, when n_classes > 0, text labels
// "c0".."c(k-1)". Caller owns it (dv_model_destroy).
dv_model_t *dv_test_model(dv_task_t task,
                          size_t n_layers,
                          const size_t *widths,
                          const dv_act_t *acts,
                          size_t n_classes);

#endif
