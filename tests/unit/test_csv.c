// test_csv — CSV loading: the bundled data sets, target selection, quoting
// and line-end variants, and every bad input with its exact DV_E* code and a
// reason that names the line.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dv_csv.h"
#include "dv_limits.h"
#include "dv_rng.h"
#include "dv_test.h"

static dv_dataset_t *
parse(const char *text, const dv_csv_opts_t *opts, dv_error_t *err)
{
    dv_dataset_t *ds = NULL;
    int rc = dv_csv_parse(&ds, text, strlen(text), opts, err);
    return rc == 0 ? ds : NULL;
}

static void
test_iris_train(void)
{
    dv_dataset_t *ds = NULL;
    dv_error_t err = {0};
    DV_CHECK_RC(dv_csv_load(&ds, dv_test_data("iris_train.csv"), NULL, &err), 0,
                &err);
    char hex[DV_SHA256_HEX];
    dv_sha256_hex(ds->sha256, hex);
    bool shape = ds->n_rows == 120 && ds->n_features == 4 && ds->x->rows == 120;
    bool names = strcmp(ds->feature_names[0], "sepal_length_cm") == 0 &&
                 strcmp(ds->target_name, "target") == 0;
    bool numeric = ds->target_numeric;
    dv_dataset_destroy(&ds);
    DV_CHECK(shape);
    DV_CHECK(names);
    DV_CHECK(numeric);
    // sha256sum data/iris_train.csv
    DV_CHECK_STR_EQ(
        hex,
        "c2d36cf28c2f32fcc5b23b7c540096f1b117cfe302be8bff6358e2bd641e93b1");
    DV_CHECK(ds == NULL);
}

static void
test_bundled_shapes(void)
{
    static const struct {
        const char *file;
        size_t rows, features;
    } sets[] = {
        {"digits_train.csv", 1437, 64},
        {"digits_test.csv", 360, 64},
        {"diabetes_train.csv", 353, 10},
        {"diabetes.csv", 442, 10},
        {"iris.csv", 150, 4},
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        dv_dataset_t *ds = NULL;
        dv_error_t err = {0};
        DV_CHECK_RC(dv_csv_load(&ds, dv_test_data(sets[i].file), NULL, &err), 0,
                    &err);
        size_t rows = ds->n_rows, features = ds->n_features;
        dv_dataset_destroy(&ds);
        DV_CHECK_EQ(rows, sets[i].rows);
        DV_CHECK_EQ(features, sets[i].features);
    }
}

static void
test_values_and_text_target(void)
{
    dv_error_t err = {0};
    dv_dataset_t *ds =
        parse("x, y ,label\n1.5,-2e3,cat\n0,7, dog \n", NULL, &err);
    DV_CHECK(ds != NULL);
    bool ok = ds->n_rows == 2 && ds->n_features == 2 &&
              *dv_tensor_at(ds->x, 0, 0) == 1.5f &&
              *dv_tensor_at(ds->x, 0, 1) == -2000.0f &&
              *dv_tensor_at(ds->x, 1, 1) == 7.0f &&
              strcmp(ds->feature_names[1], "y") == 0 &&
              strcmp(ds->target_name, "label") == 0 &&
              strcmp(ds->target_text[1], "dog") == 0 && !ds->target_numeric;
    dv_dataset_destroy(&ds);
    DV_CHECK(ok);
}

static void
test_target_selection(void)
{
    dv_error_t err = {0};
    // "target" wins over position.
    dv_dataset_t *ds = parse("target,a,b\n1,2,3\n", NULL, &err);
    DV_CHECK(ds != NULL);
    bool named = strcmp(ds->target_name, "target") == 0 &&
                 *dv_tensor_at(ds->x, 0, 0) == 2.0f;
    dv_dataset_destroy(&ds);
    DV_CHECK(named);
    // No "target" column: the last one.
    ds = parse("a,b,price\n1,2,3\n", NULL, &err);
    DV_CHECK(ds != NULL);
    bool last = strcmp(ds->target_name, "price") == 0 && ds->n_features == 2;
    dv_dataset_destroy(&ds);
    DV_CHECK(last);
    // Asked for by name.
    dv_csv_opts_t opts = {.target = "a"};
    ds = parse("a,b,c\n1,2,3\n", &opts, &err);
    DV_CHECK(ds != NULL);
    bool by_name = strcmp(ds->target_name, "a") == 0 &&
                   ds->target_value[0] == 1.0 &&
                   strcmp(ds->feature_names[0], "b") == 0;
    dv_dataset_destroy(&ds);
    DV_CHECK(by_name);
    // Asked for but absent.
    opts.target = "zzz";
    DV_CHECK(parse("a,b,c\n1,2,3\n", &opts, &err) == NULL);
    DV_CHECK_EQ(err.code, DV_EFORMAT);
    DV_CHECK(strstr(err.text, "zzz") && strstr(err.text, "a, b, c"));
    // Optional and absent: every column is a feature.
    opts.target_optional = true;
    ds = parse("a,b,c\n1,2,3\n", &opts, &err);
    DV_CHECK(ds != NULL);
    bool none = ds->target_name == NULL && ds->target_text == NULL &&
                ds->n_features == 3;
    dv_dataset_destroy(&ds);
    DV_CHECK(none);
}

static void
test_quoting_and_line_ends(void)
{
    dv_error_t err = {0};
    const char *text = "\xEF\xBB\xBF\"a,1\",\"b \"\"q\"\"\",target\r\n"
                       "1,2,\"x, y\"\r\n"
                       "\r\n"
                       "3,\"4\",\"multi\nline\"";
    dv_dataset_t *ds = parse(text, NULL, &err);
    DV_CHECK_RC(ds ? 0 : err.code, 0, &err);
    bool ok = ds->n_rows == 2 && strcmp(ds->feature_names[0], "a,1") == 0 &&
              strcmp(ds->feature_names[1], "b \"q\"") == 0 &&
              strcmp(ds->target_text[0], "x, y") == 0 &&
              strcmp(ds->target_text[1], "multi\nline") == 0 &&
              *dv_tensor_at(ds->x, 1, 1) == 4.0f;
    dv_dataset_destroy(&ds);
    DV_CHECK(ok);
}

static void
test_numeric_target_flags(void)
{
    dv_error_t err = {0};
    dv_dataset_t *ds = parse("a,target\n1,2\n2,1.0\n", NULL, &err);
    DV_CHECK(ds != NULL);
    bool numeric = ds->target_numeric && ds->target_value[1] == 1.0;
    dv_dataset_destroy(&ds);
    DV_CHECK(numeric);
    // A word among numbers makes the target text (labels).
    ds = parse("a,target\n1,2\n2,two\n", NULL, &err);
    DV_CHECK(ds != NULL);
    bool text = !ds->target_numeric && ds->target_value[0] == 2.0;
    dv_dataset_destroy(&ds);
    DV_CHECK(text);
}

// Every rejection: input, code, and a piece of the reason.
static void
test_bad_inputs(void)
{
    char long_field[DV_MAX_CSV_FIELD + 64];
    snprintf(long_field, sizeof long_field, "a,target\n1,");
    size_t n = strlen(long_field);
    memset(long_field + n, '7', DV_MAX_CSV_FIELD + 1);
    long_field[n + DV_MAX_CSV_FIELD + 1] = '\0';
    static const struct {
        const char *what;
        const char *text;
        int code;
        const char *needle;
    } rows[] = {
        {"empty file", "", DV_EFORMAT, "empty file"},
        {"blank lines only", "\n \n\r\n", DV_EFORMAT, "empty file"},
        {"header only", "a,b,target\n", DV_EFORMAT, "no data rows"},
        {"ragged short", "a,b,target\n1,2,3\n4,5\n", DV_EFORMAT,
         "line 3: 2 fields, header has 3"},
        {"ragged long", "a,b,target\n1,2,3,4\n", DV_EFORMAT,
         "line 2: 4 fields"},
        {"not a number", "a,b,target\n1,abc,3\n", DV_EFORMAT,
         "line 2, column 2 (b): 'abc' is not a number"},
        {"trailing junk", "a,target\n1.5kg,3\n", DV_EFORMAT, "not a number"},
        {"hex float", "a,target\n0x1p3,3\n", DV_EFORMAT, "not a number"},
        {"nan feature", "a,b,target\n1,2,3\n4,nan,6\n", DV_ENAN,
         "line 3, column 2 (b)"},
        {"inf feature", "a,target\n-inf,3\n", DV_ENAN, "line 2"},
        {"float32 overflow", "a,target\n1e39,3\n", DV_ENAN, "float32"},
        {"nan target", "a,target\n1,2\n2,NaN\n", DV_ENAN, "line 3"},
        {"empty feature", "a,b,target\n1,,3\n", DV_EFORMAT, "empty field"},
        {"empty target", "a,target\n1,\n", DV_EFORMAT, "empty field"},
        {"duplicate name", "a,a,target\n1,2,3\n", DV_EFORMAT, "twice"},
        {"empty name", "a,,target\n1,2,3\n", DV_EFORMAT, "empty column name"},
        {"unterminated quote", "a,target\n\"1,2\n", DV_EFORMAT, "unterminated"},
        {"junk after quote", "a,target\n\"1\"x,2\n", DV_EFORMAT,
         "after a closing quote"},
        {"stray quote", "a,target\n1\"2,3\n", DV_EFORMAT, "quote inside"},
        {"target only", "target\n1\n", DV_EFORMAT, "no feature columns"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        dv_error_t err = {0};
        dv_dataset_t *ds = parse(rows[i].text, NULL, &err);
        if (ds || err.code != rows[i].code ||
            !strstr(err.text, rows[i].needle)) {
            fprintf(stderr, "  %s: got %s \"%s\"\n", rows[i].what,
                    dv_err_name(err.code), err.text);
            dv_dataset_destroy(&ds);
        }
        DV_CHECK(ds == NULL);
        DV_CHECK_EQ(err.code, rows[i].code);
        DV_CHECK(strstr(err.text, rows[i].needle) != NULL);
    }
    dv_error_t err = {0};
    DV_CHECK(parse(long_field, NULL, &err) == NULL);
    DV_CHECK_EQ(err.code, DV_EMSGSIZE);
    // A NUL byte: a binary file, not CSV.
    dv_dataset_t *ds = NULL;
    DV_CHECK_RC(dv_csv_parse(&ds, "a,target\n1\0,2\n", 14, NULL, &err),
                DV_EFORMAT, &err);
    // A parse never reads past len: no NUL terminator needed.
    char exact[] = {'a', ',', 't', '\n', '1', ',', '2'};
    DV_CHECK_RC(dv_csv_parse(&ds, exact, sizeof exact, NULL, &err), 0, &err);
    bool two = ds->target_value[0] == 2.0;
    dv_dataset_destroy(&ds);
    DV_CHECK(two);
}

// Column names become model feature names: over DV_MAX_NAME_BYTES they are
// refused when loading, not after training when the model is saved.
static void
test_long_column_name(void)
{
    size_t n = DV_MAX_NAME_BYTES + 1;
    char *text = malloc(n + 32);
    memset(text, 'a', n);
    snprintf(text + n, 32, ",target\n1,2\n");
    dv_dataset_t *ds = NULL;
    dv_error_t err = {0};
    int rc = dv_csv_parse(&ds, text, strlen(text), NULL, &err);
    free(text);
    DV_CHECK_RC(rc, DV_EMSGSIZE, &err);
    DV_CHECK(strstr(err.text, "line 1, column 1") != NULL);
}

static void
test_too_many_columns(void)
{
    size_t cols = DV_MAX_COLUMNS + 1, len = 0;
    char *text = malloc(cols * 8 + 16);
    for (size_t i = 0; i < cols; i++) {
        len += (size_t)sprintf(text + len, "%sc%zu", i ? "," : "", i);
    }
    len += (size_t)sprintf(text + len, "\n");
    dv_error_t err = {0};
    dv_dataset_t *ds = NULL;
    int rc = dv_csv_parse(&ds, text, len, NULL, &err);
    free(text);
    DV_CHECK_RC(rc, DV_EMSGSIZE, &err);
}

static void
test_file_errors(void)
{
    char *dir = dv_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/missing.csv", dir);
    dv_dataset_t *ds = NULL;
    dv_error_t err = {0};
    int rc_missing = dv_csv_load(&ds, path, NULL, &err);
    bool named = strstr(err.text, "missing.csv") != NULL;
    snprintf(path, sizeof path, "%s/bad.csv", dir);
    dv_test_write_file(path, "a,target\n1,x\n2\n", 15);
    int rc_bad = dv_csv_load(&ds, path, NULL, &err);
    bool prefixed = strstr(err.text, "bad.csv: line 3") != NULL;
    int rc_dir = dv_csv_load(&ds, dir, NULL, &err);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_EQ(rc_missing, DV_ENOENT);
    DV_CHECK(named);
    DV_CHECK_EQ(rc_bad, DV_EFORMAT);
    DV_CHECK(prefixed);
    DV_CHECK_EQ(rc_dir, DV_EIO);
}

// Input over DV_MAX_CSV_BYTES is refused before it is read, naming both
// sizes: a sparse file of 1 GiB + 1 (a header, then a hole) loaded, and
// the same bytes mapped and parsed.
static void
test_over_csv_bytes(void)
{
    char *dir = dv_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/big.csv", dir);
    size_t len = DV_MAX_CSV_BYTES + 1;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    bool made = fd >= 0 && write(fd, "a,target\n", 9) == 9 &&
                ftruncate(fd, (off_t)len) == 0;
    dv_dataset_t *ds = NULL;
    dv_error_t load_err = {0}, parse_err = {0};
    int rc_load = made ? dv_csv_load(&ds, path, NULL, &load_err) : 0;
    void *map =
        made ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    int rc_parse =
        map != MAP_FAILED ? dv_csv_parse(&ds, map, len, NULL, &parse_err) : 0;
    if (map != MAP_FAILED) {
        munmap(map, len);
    }
    if (fd >= 0) {
        close(fd);
    }
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK(made);
    DV_CHECK_RC(rc_load, DV_EMSGSIZE, &load_err);
    DV_CHECK(strstr(load_err.text,
                    "big.csv: 1073741825 bytes, over the limit of 1073741824"));
    DV_CHECK(map != MAP_FAILED);
    DV_CHECK_RC(rc_parse, DV_EMSGSIZE, &parse_err);
    DV_CHECK_STR_EQ(parse_err.text,
                    "1073741825 bytes, over the limit of 1073741824");
    DV_CHECK(ds == NULL);
}

static void
test_select(void)
{
    dv_error_t err = {0};
    dv_dataset_t *ds = parse("a,b,c,target\n1,2,3,0\n4,5,6,1\n", NULL, &err);
    DV_CHECK(ds != NULL);
    char *want[] = {"c", "a", "c"};
    dv_tensor_t *x = NULL;
    int rc = dv_dataset_select(ds, want, 3, &x, &err);
    bool ok = rc == 0 && x->cols == 3 && *dv_tensor_at(x, 0, 0) == 3.0f &&
              *dv_tensor_at(x, 1, 1) == 4.0f && *dv_tensor_at(x, 1, 2) == 6.0f;
    dv_tensor_destroy(&x);
    char *missing[] = {"a", "zz"};
    int rc_missing = dv_dataset_select(ds, missing, 2, &x, &err);
    dv_dataset_destroy(&ds);
    DV_CHECK(ok);
    DV_CHECK_RC(rc_missing, DV_ESHAPE, &err);
    DV_CHECK(strstr(err.text, "'zz'") != NULL);
    DV_CHECK(x == NULL);
}

// Seeded random byte mutations of a real file: the parser must never crash
// or read out of bounds (ASan watches), and every refusal carries a reason.
static void
test_mutations_never_crash(void)
{
    size_t len = 0;
    unsigned char *orig =
        dv_test_read_file(dv_test_data("iris_test.csv"), &len);
    DV_CHECK(orig != NULL);
    char *copy = malloc(len);
    static const char alphabet[] = ",\n\r\"\t 0123456789.eE+-naifx";
    dv_rng_t rng;
    dv_rng_seed(&rng, 7);
    size_t ok = 0, refused = 0, silent = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(copy, orig, len);
        size_t n = len - (size_t)dv_rng_below(&rng, 8); // sometimes cut
        int edits = 1 + (int)dv_rng_below(&rng, 6);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)dv_rng_below(&rng, n);
            copy[at] = dv_rng_below(&rng, 4) == 0
                           ? (char)dv_rng_next(&rng)
                           : alphabet[dv_rng_below(&rng, sizeof alphabet - 1)];
        }
        dv_dataset_t *ds = NULL;
        dv_error_t err = {0};
        if (dv_csv_parse(&ds, copy, n, NULL, &err) == 0) {
            ok += ds->n_rows > 0 && dv_tensor_is_finite(ds->x);
        } else if (err.text[0]) {
            refused++;
        } else {
            silent++;
        }
        dv_dataset_destroy(&ds);
    }
    free(copy);
    free(orig);
    printf("  %zu parsed, %zu refused\n", ok, refused);
    DV_CHECK_EQ(silent, 0);
    DV_CHECK_EQ(ok + refused, 3000);
    DV_CHECK(refused > 500);
}

// Random number text: sign or not, 0..21 integer digits (leading zeros
// too), a point or not, 0..25 decimals, sometimes an exponent (within
// float32 range); the
// boundaries of the decimal fast path (2^53, 19 digits, 22 decimals) too.
static void
random_number(dv_rng_t *rng, char *buf, size_t size)
{
    static const char *edges[] = {
        "9007199254740992",
        "9007199254740993",
        "-9007199254740993",
        "900719925474099.3",
        "0.0000000000000000000001",
        "0.00000000000000000000001",
        "1234567890123456789",
        "12345678901234567890",
        "-0",
        "-0.0",
        "+0",
        ".5",
        "5.",
        "+.5",
        "-.000",
        "0.1",
        "0.3",
        "2.675",
        "1e22",
        "1.5e-7",
        "-00012.34500",
    };
    if (dv_rng_below(rng, 8) == 0) {
        snprintf(buf, size, "%s",
                 edges[dv_rng_below(rng, sizeof edges / sizeof *edges)]);
        return;
    }
    size_t n = 0;
    uint64_t sign = dv_rng_below(rng, 3);
    if (sign) {
        buf[n++] = sign == 1 ? '-' : '+';
    }
    size_t int_digits = (size_t)dv_rng_below(rng, 22);
    size_t decimals = (size_t)dv_rng_below(rng, 26);
    for (size_t i = 0; i < int_digits; i++) {
        buf[n++] = (char)('0' + dv_rng_below(rng, 10));
    }
    if (decimals || int_digits == 0) {
        buf[n++] = '.';
    }
    for (size_t i = 0; i < decimals || (i == 0 && int_digits == 0); i++) {
        buf[n++] = (char)('0' + dv_rng_below(rng, 10));
    }
    if (int_digits <= 10 && dv_rng_below(rng, 10) == 0) { // < 1e31
        n += (size_t)snprintf(buf + n, size - n, "e%d",
                              (int)dv_rng_below(rng, 41) - 20);
    }
    buf[n] = '\0';
}

static void
test_numbers_as_strtod(void)
{
    // Every cell goes through the parser; the target keeps its double, so
    // it must be bit for bit what strtod gives (the decimal fast path and
    // strtod must agree, -0 included), and features its float.
    enum { ROWS = 20000 };
    dv_rng_t rng;
    dv_rng_seed(&rng, 7);
    size_t cap = (size_t)ROWS * 128 + 64, len = 0;
    char *text = malloc(cap);
    char(*cells)[64] = malloc(sizeof *cells * ROWS);
    len += (size_t)snprintf(text, cap, "a,target\n");
    for (size_t i = 0; i < ROWS; i++) {
        random_number(&rng, cells[i], sizeof cells[i]);
        len += (size_t)snprintf(text + len, cap - len, "%s,%s\n", cells[i],
                                cells[i]);
    }
    dv_dataset_t *ds = NULL;
    dv_error_t err = {0};
    DV_CHECK_RC(dv_csv_parse(&ds, text, len, NULL, &err), 0, &err);
    size_t bad = ROWS;
    for (size_t i = 0; ds && i < ROWS && bad == ROWS; i++) {
        double want = strtod(cells[i], NULL);
        float got = *dv_tensor_at(ds->x, i, 0), want_f = (float)want;
        if (memcmp(&ds->target_value[i], &want, sizeof want) != 0 ||
            memcmp(&got, &want_f, sizeof got) != 0) {
            bad = i;
        }
    }
    if (bad < ROWS) {
        fprintf(stderr, "  '%s' parsed as %.17g, strtod says %.17g\n",
                cells[bad], ds->target_value[bad], strtod(cells[bad], NULL));
    }
    dv_dataset_destroy(&ds);
    free(text);
    free(cells);
    DV_CHECK_EQ(bad, (size_t)ROWS);
}

static const dv_test_case_t cases[] = {
    {"iris_train loads with its checksum", test_iris_train},
    {"bundled data set shapes", test_bundled_shapes},
    {"values, trimming and a text target", test_values_and_text_target},
    {"target selection rules", test_target_selection},
    {"quoting, BOM, CRLF, blank lines", test_quoting_and_line_ends},
    {"numeric and text targets", test_numeric_target_flags},
    {"bad inputs give exact codes", test_bad_inputs},
    {"numbers read exactly as strtod reads them", test_numbers_as_strtod},
    {"too many columns", test_too_many_columns},
    {"column names longer than a model stores", test_long_column_name},
    {"file errors name the file", test_file_errors},
    {"input over 1 GiB is refused unread", test_over_csv_bytes},
    {"select columns by name", test_select},
    {"random mutations never crash", test_mutations_never_crash},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
