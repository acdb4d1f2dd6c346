// dv_err — error names, messages and the dv_errorf helper.
#include "dv_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *
dv_strerror(int code)
{
    switch (code) {
#define XX(name, c, msg)                                                       \
    case DV_##name:                                                            \
        return msg;
        DV_ERRNO_MAP(XX)
#undef XX
    case 0:
        return "success";
    default:
        return "unknown error";
    }
}

const char *
dv_err_name(int code)
{
    switch (code) {
#define XX(name, c, msg)                                                       \
    case DV_##name:                                                            \
        return "DV_" #name;
        DV_ERRNO_MAP(XX)
#undef XX
    case 0:
        return "DV_OK";
    default:
        return "DV_EUNKNOWN";
    }
}

int
dv_err_code(const char *name)
{
#define XX(n, c, msg)                                                          \
    if (strcmp(name, "DV_" #n) == 0) {                                         \
        return DV_##n;                                                         \
    }
    DV_ERRNO_MAP(XX)
#undef XX
    return 0;
}

int
dv_errorf(dv_error_t *err, int code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->text, sizeof err->text, fmt, ap);
        va_end(ap);
    }
    return code;
}

void
dv_error_clear(dv_error_t *err)
{
    if (err) {
        err->code = 0;
        err->text[0] = '\0';
    }
}
