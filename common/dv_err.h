// dv_err — Drover's error codes and the error-with-reason type.
//
// Every int-returning Drover function returns 0 or a negative DV_E* code.
// OS conditions reuse -errno (DV_EINVAL == -EINVAL, as libuv does); Drover's
// own codes start at -4000. dv_err_name() strings are the error names used on
// the wire and in docs/PROTOCOL.md: never rename one, only add.
#ifndef DV_ERR_H
#define DV_ERR_H

#include <errno.h>
#include <stddef.h>

// XX(name, code, message). One list drives the enum, dv_strerror and
// dv_err_name (libuv UV_ERRNO_MAP).
#define DV_ERRNO_MAP(XX)                                                       \
    XX(EINVAL, -EINVAL, "invalid argument")                                    \
    XX(ENOMEM, -ENOMEM, "out of memory")                                       \
    XX(ENOENT, -ENOENT, "no such file or directory")                           \
    XX(EACCES, -EACCES, "permission denied")                                   \
    XX(EPERM, -EPERM, "operation not permitted")                               \
    XX(EIO, -EIO, "input/output error")                                        \
    XX(ENOSPC, -ENOSPC, "no space left on device")                             \
    XX(EMSGSIZE, -EMSGSIZE, "size exceeds limit")                              \
    XX(ECANCELED, -ECANCELED, "operation canceled")                            \
    XX(ETIMEDOUT, -ETIMEDOUT, "timed out")                                     \
    XX(ESHAPE, -4000, "shape mismatch")                                        \
    XX(EDTYPE, -4001, "unsupported data type")                                 \
    XX(ENAN, -4002, "value is NaN or infinite")                                \
    XX(ENOMODEL, -4003, "unknown model")                                       \
    XX(EFORMAT, -4004, "malformed input")                                      \
    XX(EVERSION, -4005, "unsupported format version")                          \
    XX(ECHECKSUM, -4006, "checksum mismatch")                                  \
    XX(ETRUNC, -4007, "truncated input")                                       \
    XX(EDIVERGED, -4008, "training diverged")                                  \
    XX(EQUEUEFULL, -4009, "queue full")                                        \
    XX(EEXPIRED, -4010, "deadline passed before the job started")              \
    XX(EQUARANTINED, -4011, "quarantined: workers died running it")            \
    XX(ELIMIT, -4012, "a per-client limit was reached")                        \
    XX(ENOTLEADER, -4013, "not the leader of the broker group")

typedef enum {
#define XX(name, code, msg) DV_##name = (code),
    DV_ERRNO_MAP(XX)
#undef XX
} dv_errno_t;

// Length of dv_error_t.text, including the terminating NUL.
#define DV_ERROR_TEXT_MAX 256

// An error code plus a human-readable reason ("line 12, column 3: ...").
// Plain value type: lives on the caller's stack, nothing to free.
typedef struct {
    int code;                     // 0 or DV_E*
    char text[DV_ERROR_TEXT_MAX]; // reason, NUL-terminated; "" when code is 0
} dv_error_t;

// Static message for code ("shape mismatch"); "unknown error" for codes not in
// the table. Never NULL.
const char *dv_strerror(int code);

// Wire name for code ("DV_ESHAPE"); "DV_EUNKNOWN" for codes not in the table.
// Never NULL.
const char *dv_err_name(int code);

// Code for a wire name ("DV_ESHAPE" -> DV_ESHAPE); 0 when name is not in the
// table (a newer peer's error: callers keep the name in the text).
int dv_err_code(const char *name);

// Set err (which may be NULL) to code and the printf-formatted reason, and
// return code, so callers can write `return dv_errorf(err, DV_ESHAPE, ...)`.
int dv_errorf(dv_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Reset err (may be NULL) to "no error".
void dv_error_clear(dv_error_t *err);

#endif
