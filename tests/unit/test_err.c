// test_err — the error table (names, messages, codes) and dv_errorf.
//
// The table is DV_ERRNO_MAP; these cases iterate it with a local XX so a code
// added later is covered without touching this file.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dv_err.h"
#include "dv_test.h"

// One row of DV_ERRNO_MAP, with the code's spelling as written in the map.
typedef struct {
    int code;          // DV_<name>
    const char *name;  // "DV_<name>"
    const char *spelt; // the code expression as text: "-EINVAL", "-4000"
    const char *bare;  // "<name>" without the DV_ prefix
    const char *msg;   // the message column
} entry_t;

static const entry_t s_map[] = {
#define XX(name, code, msg) {code, "DV_" #name, #code, #name, msg},
    DV_ERRNO_MAP(XX)
#undef XX
};
#define N_MAP (sizeof s_map / sizeof s_map[0])

static void
test_names_and_messages(void)
{
    DV_CHECK_STR_EQ(dv_err_name(DV_ESHAPE), "DV_ESHAPE");
    DV_CHECK_STR_EQ(dv_strerror(DV_ESHAPE), "shape mismatch");
    DV_CHECK_STR_EQ(dv_err_name(DV_EINVAL), "DV_EINVAL");
    DV_CHECK_STR_EQ(dv_strerror(DV_EINVAL), "invalid argument");
    DV_CHECK_STR_EQ(dv_err_name(DV_ENAN), "DV_ENAN");
    DV_CHECK_STR_EQ(dv_strerror(DV_ENAN), "value is NaN or infinite");
    DV_CHECK_STR_EQ(dv_err_name(DV_ECHECKSUM), "DV_ECHECKSUM");
    DV_CHECK_STR_EQ(dv_strerror(DV_ECHECKSUM), "checksum mismatch");
    DV_CHECK_STR_EQ(dv_err_name(DV_EMSGSIZE), "DV_EMSGSIZE");
    DV_CHECK_STR_EQ(dv_strerror(DV_EMSGSIZE), "size exceeds limit");
}

static void
test_zero_is_success(void)
{
    DV_CHECK_STR_EQ(dv_err_name(0), "DV_OK");
    DV_CHECK_STR_EQ(dv_strerror(0), "success");
}

static void
test_unknown_code(void)
{
    static const int unknown[] = {-123456, 1, -3999, -4999, INT32_MIN};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        DV_CHECK_STR_EQ(dv_err_name(unknown[i]), "DV_EUNKNOWN");
        DV_CHECK_STR_EQ(dv_strerror(unknown[i]), "unknown error");
    }
    DV_CHECK_EQ(dv_err_code("DV_EFROMTHEFUTURE"), 0);
    DV_CHECK_EQ(dv_err_code("DV_OK"), 0);
    DV_CHECK_EQ(dv_err_code(""), 0);
    DV_CHECK_EQ(dv_err_code("dv_eshape"), 0); // names are case-sensitive
}

static void
test_os_codes_are_negative_errno(void)
{
    DV_CHECK_EQ(DV_EINVAL, -EINVAL);
    DV_CHECK_EQ(DV_ENOMEM, -ENOMEM);
    DV_CHECK_EQ(DV_ENOENT, -ENOENT);
    DV_CHECK_EQ(DV_EACCES, -EACCES);
    DV_CHECK_EQ(DV_EIO, -EIO);
    DV_CHECK_EQ(DV_ENOSPC, -ENOSPC);
    DV_CHECK_EQ(DV_EMSGSIZE, -EMSGSIZE);
    DV_CHECK_EQ(DV_ECANCELED, -ECANCELED);
}

// Every entry is either an OS condition spelt -E<name> (so it is exactly
// -errno of the same name) or one of Drover's own codes at -4000 or below,
// clear of every errno value.
static void
test_drover_codes_below_4000(void)
{
    size_t own = 0;
    for (size_t i = 0; i < N_MAP; i++) {
        const entry_t *e = &s_map[i];
        DV_CHECK(e->code < 0);
        bool os = e->spelt[0] == '-' && strcmp(e->spelt + 1, e->bare) == 0;
        if (os) {
            DV_CHECK(e->code > -4000);
        } else {
            DV_CHECK_GE(-4000, e->code);
            own++;
        }
    }
    DV_CHECK_GE(-4000, DV_ESHAPE);
    DV_CHECK_GE(-4000, DV_EDTYPE);
    DV_CHECK_GE(-4000, DV_ENAN);
    DV_CHECK_GE(-4000, DV_ENOMODEL);
    DV_CHECK_GE(-4000, DV_EFORMAT);
    DV_CHECK_GE(-4000, DV_EDIVERGED);
    DV_CHECK_GE(own, 9);
}

static void
test_map_unique(void)
{
    DV_CHECK_GE(N_MAP, 2);
    for (size_t i = 0; i < N_MAP; i++) {
        for (size_t j = i + 1; j < N_MAP; j++) {
            if (s_map[i].code == s_map[j].code) {
                DV_FAIL_("%s and %s share code %d", s_map[i].name,
                         s_map[j].name, s_map[i].code);
                return;
            }
            if (strcmp(s_map[i].name, s_map[j].name) == 0) {
                DV_FAIL_("name %s appears twice", s_map[i].name);
                return;
            }
        }
    }
}

// The table drives dv_err_name, dv_strerror and dv_err_code consistently.
static void
test_map_round_trip(void)
{
    for (size_t i = 0; i < N_MAP; i++) {
        const entry_t *e = &s_map[i];
        DV_CHECK_STR_EQ(dv_err_name(e->code), e->name);
        DV_CHECK_STR_EQ(dv_strerror(e->code), e->msg);
        DV_CHECK(e->msg[0] != '\0');
        DV_CHECK_EQ(dv_err_code(e->name), e->code);
    }
}

static void
test_errorf_formats(void)
{
    dv_error_t err = {0};
    int rc = dv_errorf(&err, DV_ESHAPE, "input has %u features, %s wants %d",
                       3u, "model", 4);
    DV_CHECK_EQ(rc, DV_ESHAPE);
    DV_CHECK_EQ(err.code, DV_ESHAPE);
    DV_CHECK_STR_EQ(err.text, "input has 3 features, model wants 4");
    // A second call replaces both fields.
    DV_CHECK_EQ(dv_errorf(&err, DV_ENAN, "row %d", 7), DV_ENAN);
    DV_CHECK_EQ(err.code, DV_ENAN);
    DV_CHECK_STR_EQ(err.text, "row 7");
}

static void
test_errorf_truncates(void)
{
    // Guard bytes right after the struct: an overflow would change them (ASan
    // does not see writes that stay inside one object).
    struct {
        dv_error_t err;
        unsigned char guard[64];
    } box;
    memset(&box, 0xA5, sizeof box);
    char longer[3 * DV_ERROR_TEXT_MAX];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    DV_CHECK_EQ(dv_errorf(&box.err, DV_EINVAL, "%s!", longer), DV_EINVAL);
    DV_CHECK_EQ(box.err.code, DV_EINVAL);
    DV_CHECK_EQ(box.err.text[DV_ERROR_TEXT_MAX - 1], '\0');
    DV_CHECK_EQ(strlen(box.err.text), DV_ERROR_TEXT_MAX - 1);
    DV_CHECK(strncmp(box.err.text, longer, DV_ERROR_TEXT_MAX - 1) == 0);
    for (size_t i = 0; i < sizeof box.guard; i++) {
        DV_CHECK_EQ(box.guard[i], 0xA5);
    }
}

static void
test_errorf_null_err(void)
{
    DV_CHECK_EQ(dv_errorf(NULL, DV_EIO, "ignored %d", 1), DV_EIO);
    DV_CHECK_EQ(dv_errorf(NULL, 0, "no error"), 0);
    dv_error_clear(NULL);
}

static void
test_error_clear(void)
{
    dv_error_t err;
    dv_errorf(&err, DV_EFORMAT, "line %d, column %d: bad", 12, 3);
    dv_error_clear(&err);
    DV_CHECK_EQ(err.code, 0);
    DV_CHECK_STR_EQ(err.text, "");
}

static const dv_test_case_t cases[] = {
    {"names and messages of several codes", test_names_and_messages},
    {"0 is DV_OK, success", test_zero_is_success},
    {"unknown codes and names", test_unknown_code},
    {"OS codes are -errno", test_os_codes_are_negative_errno},
    {"Drover codes are <= -4000", test_drover_codes_below_4000},
    {"map codes and names are unique", test_map_unique},
    {"map drives name, message and code", test_map_round_trip},
    {"dv_errorf returns the code and formats", test_errorf_formats},
    {"dv_errorf truncates a long reason", test_errorf_truncates},
    {"dv_errorf and clear accept NULL", test_errorf_null_err},
    {"dv_error_clear", test_error_clear},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
