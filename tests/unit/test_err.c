// test_err — the error table: names, messages, codes, dv_errorf.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dv_err.h"
#include "dv_test.h"

static void
test_error_table(void)
{
    DV_CHECK_EQ(DV_EINVAL, -EINVAL);
    DV_CHECK_STR_EQ(dv_err_name(DV_ESHAPE), "DV_ESHAPE");
    DV_CHECK_STR_EQ(dv_strerror(DV_ECHECKSUM), "checksum mismatch");
    DV_CHECK_STR_EQ(dv_err_name(0), "DV_OK");
    DV_CHECK_STR_EQ(dv_err_name(-123456), "DV_EUNKNOWN");
    DV_CHECK_STR_EQ(dv_strerror(-123456), "unknown error");
    // Every code and name in the map is distinct; Drover's own are <= -4000.
    static const struct {
        int code;
        const char *name;
    } all[] = {
#define XX(name, code, msg) {code, "DV_" #name},
        DV_ERRNO_MAP(XX)
#undef XX
    };
    size_t n = sizeof all / sizeof all[0];
    for (size_t i = 0; i < n; i++) {
        DV_CHECK(all[i].code < 0);
        DV_CHECK_STR_EQ(dv_err_name(all[i].code), all[i].name);
        for (size_t j = i + 1; j < n; j++) {
            DV_CHECK(all[i].code != all[j].code);
            DV_CHECK(strcmp(all[i].name, all[j].name) != 0);
        }
    }
    DV_CHECK(DV_ESHAPE <= -4000);
    for (size_t i = 0; i < n; i++) {
        DV_CHECK_EQ(dv_err_code(all[i].name), all[i].code);
    }
    DV_CHECK_EQ(dv_err_code("DV_EFROMTHEFUTURE"), 0);
}

static void
test_errorf(void)
{
    dv_error_t err = {0};
    DV_CHECK_EQ(dv_errorf(&err, DV_ENAN, "row %d", 7), DV_ENAN);
    DV_CHECK_EQ(err.code, DV_ENAN);
    DV_CHECK_STR_EQ(err.text, "row 7");
    DV_CHECK_EQ(dv_errorf(NULL, DV_EIO, "ignored"), DV_EIO);
    char longer[600];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    dv_errorf(&err, DV_EINVAL, "%s", longer);
    DV_CHECK_EQ(strlen(err.text), DV_ERROR_TEXT_MAX - 1);
    dv_error_clear(&err);
    DV_CHECK_EQ(err.code, 0);
    DV_CHECK_STR_EQ(err.text, "");
}

static const dv_test_case_t cases[] = {
    {"error table", test_error_table},
    {"dv_errorf", test_errorf},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
