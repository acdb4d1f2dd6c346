// dv_csv — strict CSV loading into a dv_dataset_t.
//
// One pass over the bytes with a cursor that yields one field at a time
// (RFC 4180 quoting, "\n" or "\r\n" records, leading/trailing blanks trimmed
// outside quotes). Memory is sized before parsing from the newline count (an
// upper bound on rows; quoted newlines only make it larger) and trimmed at
// the end, so the feature matrix is allocated once, with dv_tensor_open, and
// a file too big for memory is DV_ENOMEM rather than an abort. Lines that are
// empty (or only blanks) are skipped anywhere in the file, as pandas does.
//
// Numbers go through strtod (the C locale: the programs never call
// setlocale), on a NUL-terminated copy of the field, so parsing never reads
// past the caller's buffer, after a fast path for plain decimals that gives
// the same doubles (parse_decimal). Hex floats, "nan" and "inf" are refused in
// features; values beyond float32 range are refused rather than becoming Inf.
#include "dv_csv.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dv_file.h"
#include "dv_limits.h"
#include "dv_mem.h"

// Cursor over the input, yielding fields.
typedef struct {
    const char *p;    // next byte to read
    const char *end;  // one past the last byte
    size_t line;      // line of p, 1-based (header is line 1)
    char *field;      // current field, unquoted, trimmed, NUL-terminated
    size_t field_len; // its length
} cursor_t;

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

// Read the field at c->p into c->field. Sets *eor when the field ended its
// record (newline or end of input consumed). Returns 0 or DV_E*.
static int
next_field(cursor_t *c, bool *eor, dv_error_t *err)
{
    size_t n = 0;
    while (c->p < c->end && is_blank(*c->p)) {
        c->p++;
    }
    if (c->p < c->end && *c->p == '"') {
        size_t start_line = c->line;
        c->p++;
        for (;;) {
            if (c->p == c->end) {
                return dv_errorf(err, DV_EFORMAT,
                                 "line %zu: unterminated quoted field",
                                 start_line);
            }
            char ch = *c->p++;
            if (ch == '"') {
                if (c->p < c->end && *c->p == '"') {
                    c->p++; // "" is one quote
                } else {
                    break;
                }
            } else if (ch == '\n') {
                c->line++;
            }
            if (n == DV_MAX_CSV_FIELD) {
                return dv_errorf(err, DV_EMSGSIZE,
                                 "line %zu: field longer than %d bytes",
                                 start_line, DV_MAX_CSV_FIELD);
            }
            c->field[n++] = ch;
        }
        while (c->p < c->end && (is_blank(*c->p) || *c->p == '\r')) {
            c->p++;
        }
        if (c->p < c->end && *c->p != ',' && *c->p != '\n') {
            return dv_errorf(err, DV_EFORMAT,
                             "line %zu: unexpected '%c' after a closing quote",
                             c->line, *c->p);
        }
    } else {
        while (c->p < c->end && *c->p != ',' && *c->p != '\n') {
            if (*c->p == '"') {
                return dv_errorf(err, DV_EFORMAT,
                                 "line %zu: quote inside an unquoted field "
                                 "(quote the whole field)",
                                 c->line);
            }
            if (n == DV_MAX_CSV_FIELD) {
                return dv_errorf(err, DV_EMSGSIZE,
                                 "line %zu: field longer than %d bytes",
                                 c->line, DV_MAX_CSV_FIELD);
            }
            c->field[n++] = *c->p++;
        }
        while (n > 0 &&
               (is_blank(c->field[n - 1]) || c->field[n - 1] == '\r')) {
            n--;
        }
    }
    c->field[n] = '\0';
    c->field_len = n;
    if (c->p == c->end) {
        *eor = true;
    } else if (*c->p == '\n') {
        c->p++;
        c->line++;
        *eor = true;
    } else {
        c->p++; // the comma
        *eor = false;
    }
    return 0;
}

// Skip lines holding nothing but blanks. Returns true at end of input.
static bool
skip_blank_lines(cursor_t *c)
{
    for (;;) {
        const char *q = c->p;
        while (q < c->end && (is_blank(*q) || *q == '\r')) {
            q++;
        }
        if (q == c->end) {
            c->p = q;
            return true;
        }
        if (*q != '\n') {
            return false;
        }
        c->p = q + 1;
        c->line++;
    }
}

typedef enum {
    NUM_OK,       // finite float32
    NUM_NOT,      // not a number at all
    NUM_NONFINITE // nan/inf text, or beyond float32 range
} num_kind_t;

// 10^0 .. 10^22: the powers of ten a double holds exactly.
static const double s_pow10[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

// Plain decimals, [+-]digits[.digits], the bulk of any numeric CSV: with
// the digits as an integer m <= 2^53 and k <= 22 of them after the point,
// m and 10^k are exact doubles and one IEEE division rounds m / 10^k
// correctly (Clinger's fast path, PLDI 1990), the value glibc's correctly
// rounded strtod returns, sign of zero included. strtod spent ~40% of a
// large file's parse (perf of `drover local train` on 80,000 x 256). False
// for anything else (exponents, more digits, blanks, text): strtod decides.
static bool
parse_decimal(const char *s, size_t len, double *out)
{
    size_t i = 0;
    bool neg = false;
    if (len > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    uint64_t m = 0;
    size_t digits = 0, decimals = 0;
    bool point = false;
    for (; i < len; i++) {
        char ch = s[i];
        if (ch >= '0' && ch <= '9') {
            if (digits == 19) {
                return false; // m could overflow 64 bits
            }
            m = m * 10 + (uint64_t)(ch - '0');
            digits++;
            decimals += point;
        } else if (ch == '.' && !point) {
            point = true;
        } else {
            return false;
        }
    }
    if (digits == 0 || m > ((uint64_t)1 << 53) || decimals > 22) {
        return false;
    }
    double v = (double)m / s_pow10[decimals];
    *out = neg ? -v : v;
    return true;
}

static num_kind_t
parse_number(const char *s, size_t len, double *out)
{
    if (parse_decimal(s, len, out)) {
        return NUM_OK; // below 2^53 in magnitude: finite float32 range
    }
    if (len == 0 || memchr(s, 'x', len) || memchr(s, 'X', len)) {
        return NUM_NOT; // strtod would take hex floats; CSV data never has them
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end != s + len) {
        return NUM_NOT;
    }
    *out = v;
    if (!isfinite(v) || fabs(v) > FLT_MAX) {
        return NUM_NONFINITE;
    }
    return NUM_OK;
}

static int
cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
free_names(char **names, size_t n)
{
    if (names) {
        for (size_t i = 0; i < n; i++) {
            free(names[i]);
        }
        free(names);
    }
}

// Parse the header into *names_out / *n_out.
static int
parse_header(cursor_t *c, char ***names_out, size_t *n_out, dv_error_t *err)
{
    size_t cap = 16, n = 0;
    char **names = dv_malloc(cap * sizeof(char *));
    bool eor = false;
    int rc = 0;
    while (!eor) {
        if ((rc = next_field(c, &eor, err)) != 0) {
            goto fail;
        }
        if (n == DV_MAX_COLUMNS) {
            rc = dv_errorf(err, DV_EMSGSIZE, "line 1: more than %d columns",
                           DV_MAX_COLUMNS);
            goto fail;
        }
        if (c->field_len == 0) {
            rc = dv_errorf(err, DV_EFORMAT,
                           "line 1, column %zu: empty column name", n + 1);
            goto fail;
        }
        if (c->field_len > DV_MAX_NAME_BYTES) {
            // A model stores column names; refuse here rather than after
            // training, when the model is saved.
            rc = dv_errorf(err, DV_EMSGSIZE,
                           "line 1, column %zu: name of %zu bytes (limit %d)",
                           n + 1, c->field_len, DV_MAX_NAME_BYTES);
            goto fail;
        }
        if (n == cap) {
            cap *= 2;
            names = dv_realloc(names, cap * sizeof(char *));
        }
        names[n++] = dv_strdup(c->field);
    }
    char **sorted = dv_malloc(n * sizeof(char *));
    memcpy(sorted, names, n * sizeof(char *));
    qsort(sorted, n, sizeof(char *), cmp_str_ptr);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            rc = dv_errorf(err, DV_EFORMAT,
                           "line 1: column name '%.64s' appears twice",
                           sorted[i]);
            break;
        }
    }
    free(sorted);
    if (rc) {
        goto fail;
    }
    *names_out = names;
    *n_out = n;
    return 0;
fail:
    free_names(names, n);
    return rc;
}

// Index of the target column, n_cols when there is none (optional target).
static int
find_target(char **names,
            size_t n_cols,
            const dv_csv_opts_t *opts,
            size_t *out,
            dv_error_t *err)
{
    const char *want = opts->target ? opts->target : "target";
    for (size_t i = 0; i < n_cols; i++) {
        if (strcmp(names[i], want) == 0) {
            *out = i;
            return 0;
        }
    }
    if (opts->target_optional) {
        *out = n_cols;
        return 0;
    }
    if (!opts->target) {
        *out = n_cols - 1; // no "target" column: the last one
        return 0;
    }
    char list[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < n_cols && used < sizeof list - 8; i++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                         names[i]);
        used += w > 0 ? (size_t)w : 0;
    }
    if (used >= sizeof list - 8) {
        snprintf(list + sizeof list - 8, 8, ", ...");
    }
    return dv_errorf(err, DV_EFORMAT, "no column named '%.64s' (columns: %s)",
                     want, list);
}

// Upper bound on the data rows after the cursor: one per newline plus one
// for a last line without it, capped at DV_MAX_ROWS + 1 (a file counted past
// the limit is refused when its rows are read).
static size_t
count_rows(const cursor_t *c)
{
    size_t max_rows = 1;
    for (const char *q = c->p; (q = memchr(q, '\n', (size_t)(c->end - q)));
         q++) {
        max_rows++;
    }
    if (max_rows > DV_MAX_ROWS + 1) {
        max_rows = DV_MAX_ROWS + 1; // counted past the limit: refused below
    }
    return max_rows;
}

// Give ds the header's names (takes names and its strings, whatever the
// result): features in file order, and the target when target < n_cols.
// Then allocate room for max_rows rows of features and target.
static int
take_columns(dv_dataset_t *ds,
             char **names,
             size_t n_cols,
             size_t target,
             size_t max_rows,
             dv_error_t *err)
{
    bool has_target = target < n_cols;
    size_t n_feat = has_target ? n_cols - 1 : n_cols;
    ds->n_features = n_feat;
    ds->feature_names = dv_malloc(n_feat * sizeof(char *));
    for (size_t i = 0, j = 0; i < n_cols; i++) {
        if (i != target) {
            ds->feature_names[j++] = names[i];
        }
    }
    if (has_target) {
        ds->target_name = names[target];
    }
    free(names);
    int rc = dv_tensor_open(&ds->x, max_rows, n_feat, err);
    if (rc) {
        return rc;
    }
    if (has_target) {
        ds->target_text = dv_try_malloc(max_rows, sizeof(char *));
        ds->target_value = dv_try_malloc(max_rows, sizeof(double));
        if (!ds->target_text || !ds->target_value) {
            return dv_errorf(err, DV_ENOMEM, "cannot allocate %zu targets",
                             max_rows);
        }
    }
    return 0;
}

// What the rows read so far say about the target column.
typedef struct {
    bool any_text;               // some target field is not a number
    size_t first_nonfinite_line; // first line with a NaN/inf target, or 0
} target_seen_t;

// Read the data line at the cursor into row `rows` of ds: the features into
// ds->x, the target (column `target`; none when it is n_cols) into
// ds->target_text and ds->target_value, noting in *seen what it holds.
static int
parse_row(cursor_t *c,
          dv_dataset_t *ds,
          size_t n_cols,
          size_t target,
          size_t rows,
          target_seen_t *seen,
          dv_error_t *err)
{
    size_t line = c->line, col = 0, j = 0;
    float *xrow = ds->x->data + rows * ds->n_features;
    bool eor = false;
    int rc;
    while (!eor) {
        if ((rc = next_field(c, &eor, err)) != 0) {
            return rc;
        }
        if (col >= n_cols) {
            col++;
            continue; // count the extra fields for the message
        }
        const char *name =
            col == target ? ds->target_name : ds->feature_names[j];
        double v = NAN;
        num_kind_t kind = parse_number(c->field, c->field_len, &v);
        if (c->field_len == 0) {
            return dv_errorf(err, DV_EFORMAT,
                             "line %zu, column %zu (%.64s): empty field "
                             "(missing values are not supported)",
                             line, col + 1, name);
        }
        if (col == target) {
            ds->target_text[rows] = dv_strdup(c->field);
            ds->n_rows = rows + 1; // so the text is freed on failure
            ds->target_value[rows] = kind == NUM_OK ? v : NAN;
            seen->any_text = seen->any_text || kind == NUM_NOT;
            if (kind == NUM_NONFINITE && !seen->first_nonfinite_line) {
                seen->first_nonfinite_line = line;
            }
        } else if (kind == NUM_OK) {
            xrow[j++] = (float)v;
        } else {
            return dv_errorf(err, kind == NUM_NOT ? DV_EFORMAT : DV_ENAN,
                             "line %zu, column %zu (%.64s): '%.32s' %s", line,
                             col + 1, name, c->field,
                             kind == NUM_NOT
                                 ? "is not a number"
                                 : "is NaN, infinite or beyond float32");
        }
        col++;
    }
    if (col != n_cols) {
        return dv_errorf(err, DV_EFORMAT,
                         "line %zu: %zu fields, header has %zu", line, col,
                         n_cols);
    }
    return 0;
}

// After the last row: refuse a file without rows, or whose numeric target
// holds NaN or infinity; set the row counts and whether the target is
// numeric, and give back the rows between `rows` and the max_rows estimate.
static int
finish_rows(dv_dataset_t *ds,
            size_t rows,
            size_t max_rows,
            const target_seen_t *seen,
            dv_error_t *err)
{
    bool has_target = ds->target_name != NULL;
    if (rows == 0) {
        return dv_errorf(err, DV_EFORMAT, "no data rows after the header");
    }
    if (has_target && !seen->any_text && seen->first_nonfinite_line) {
        return dv_errorf(err, DV_ENAN,
                         "line %zu, column '%.64s': numeric target is NaN or "
                         "infinite",
                         seen->first_nonfinite_line, ds->target_name);
    }
    ds->n_rows = rows;
    ds->x->rows = rows;
    ds->target_numeric =
        has_target && !seen->any_text && !seen->first_nonfinite_line;
    if (rows < max_rows) { // give back what the newline count overestimated
        float *shrunk =
            realloc(ds->x->data, rows * ds->n_features * sizeof(float));
        ds->x->data = shrunk ? shrunk : ds->x->data;
    }
    return 0;
}

int
dv_csv_parse(dv_dataset_t **out,
             const char *buf,
             size_t len,
             const dv_csv_opts_t *opts,
             dv_error_t *err)
{
    static const dv_csv_opts_t no_opts = {NULL, false};
    opts = opts ? opts : &no_opts;
    if (len > DV_MAX_CSV_BYTES) {
        return dv_errorf(err, DV_EMSGSIZE, "%zu bytes, over the limit of %zu",
                         len, DV_MAX_CSV_BYTES);
    }
    if (memchr(buf, '\0', len)) {
        return dv_errorf(err, DV_EFORMAT,
                         "NUL byte in the input: not a text CSV file");
    }
    cursor_t c = {buf, buf + len, 1, NULL, 0};
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
        c.p += 3; // UTF-8 byte order mark
    }
    if (skip_blank_lines(&c)) {
        return dv_errorf(err, DV_EFORMAT, "empty file: no header row");
    }
    c.field = dv_malloc(DV_MAX_CSV_FIELD + 1);
    dv_dataset_t *ds = dv_calloc(1, sizeof *ds);
    char **names = NULL;
    size_t n_cols = 0, target = 0, max_rows = 0;
    int rc = parse_header(&c, &names, &n_cols, err);
    if (rc || (rc = find_target(names, n_cols, opts, &target, err)) != 0) {
        goto fail;
    }
    bool has_target = target < n_cols;
    size_t n_feat = has_target ? n_cols - 1 : n_cols;
    if (n_feat == 0) {
        rc = dv_errorf(err, DV_EFORMAT,
                       "no feature columns: the file has only the target "
                       "'%.64s'",
                       names[target]);
        goto fail;
    }
    max_rows = count_rows(&c);
    rc = take_columns(ds, names, n_cols, target, max_rows, err);
    names = NULL; // ds owns them now
    if (rc) {
        goto fail;
    }

    size_t rows = 0;
    target_seen_t seen = {false, 0};
    while (!skip_blank_lines(&c)) {
        if (rows == DV_MAX_ROWS) {
            rc = dv_errorf(err, DV_EMSGSIZE, "more than %zu data rows",
                           DV_MAX_ROWS);
            goto fail;
        }
        if ((rc = parse_row(&c, ds, n_cols, target, rows, &seen, err)) != 0) {
            goto fail;
        }
        rows++;
    }
    if ((rc = finish_rows(ds, rows, max_rows, &seen, err)) != 0) {
        goto fail;
    }
    dv_sha256(buf, len, ds->sha256);
    free(c.field);
    *out = ds;
    return 0;
fail:
    free(c.field);
    free_names(names, n_cols);
    dv_dataset_destroy(&ds);
    return rc;
}

// Prefix err->text with "path: ".
static int
with_path(dv_error_t *err, const char *path, int rc)
{
    if (err) {
        char text[DV_ERROR_TEXT_MAX];
        snprintf(text, sizeof text, "%s", err->text);
        dv_errorf(err, rc, "%s: %s", path, text);
    }
    return rc;
}

// Close what dv_csv_load opened (never standard input).
static void
close_input(FILE *f)
{
    if (f != stdin) {
        fclose(f);
    }
}

int
dv_csv_load(dv_dataset_t **out,
            const char *path,
            const dv_csv_opts_t *opts,
            dv_error_t *err)
{
    // "-": standard input (`drover infer --data -`)
    bool use_stdin = strcmp(path, "-") == 0;
    FILE *f = use_stdin ? stdin : fopen(path, "rb");
    if (use_stdin) {
        path = "stdin";
    }
    if (!f) {
        int e = errno;
        return dv_errorf(err,
                         e == ENOENT   ? DV_ENOENT
                         : e == EACCES ? DV_EACCES
                                       : DV_EIO,
                         "%s: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        close_input(f);
        return dv_errorf(err, DV_EIO, "%s: is a directory", path);
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > DV_MAX_CSV_BYTES) {
        close_input(f);
        return dv_errorf(err, DV_EMSGSIZE,
                         "%s: %lld bytes, over the limit of %zu", path,
                         (long long)st.st_size, DV_MAX_CSV_BYTES);
    }
    // Regular files and pipes alike: read to EOF (a regular file's size is
    // only a hint, it may change while we read).
    uint8_t *buf = NULL;
    size_t size = 0;
    int rc = dv_file_read_stream(f, path, DV_MAX_CSV_BYTES, &buf, &size, err);
    close_input(f);
    if (rc) {
        return rc;
    }
    rc = dv_csv_parse(out, (const char *)buf, size, opts, err);
    free(buf);
    return rc ? with_path(err, path, rc) : 0;
}

void
dv_dataset_destroy(dv_dataset_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_dataset_t *ds = *self_p;
    free_names(ds->feature_names, ds->feature_names ? ds->n_features : 0);
    if (ds->target_text) {
        for (size_t i = 0; i < ds->n_rows; i++) {
            free(ds->target_text[i]);
        }
        free(ds->target_text);
    }
    free(ds->target_value);
    free(ds->target_name);
    dv_tensor_destroy(&ds->x);
    free(ds);
    *self_p = NULL;
}

typedef struct {
    const char *name; // feature name
    size_t index;     // its column in x
} name_index_t;

static int
cmp_name_index(const void *a, const void *b)
{
    return strcmp(((const name_index_t *)a)->name,
                  ((const name_index_t *)b)->name);
}

int
dv_dataset_select(const dv_dataset_t *self,
                  char *const *names,
                  size_t n_names,
                  dv_tensor_t **out,
                  dv_error_t *err)
{
    name_index_t *sorted = dv_malloc(self->n_features * sizeof *sorted);
    for (size_t j = 0; j < self->n_features; j++) {
        sorted[j].name = self->feature_names[j];
        sorted[j].index = j;
    }
    qsort(sorted, self->n_features, sizeof *sorted, cmp_name_index);
    size_t *pick = dv_malloc((n_names ? n_names : 1) * sizeof(size_t));
    int rc = 0;
    for (size_t k = 0; k < n_names && rc == 0; k++) {
        name_index_t key = {names[k], 0};
        const name_index_t *hit = bsearch(&key, sorted, self->n_features,
                                          sizeof *sorted, cmp_name_index);
        if (!hit) {
            rc = dv_errorf(err, DV_ESHAPE,
                           "the data has no column '%.64s' that the model "
                           "needs",
                           names[k]);
        } else {
            pick[k] = hit->index;
        }
    }
    dv_tensor_t *x = NULL;
    if (rc == 0) {
        rc = dv_tensor_open(&x, self->n_rows, n_names, err);
    }
    if (rc == 0) {
        for (size_t i = 0; i < self->n_rows; i++) {
            const float *src = self->x->data + i * self->n_features;
            float *dst = x->data + i * n_names;
            for (size_t k = 0; k < n_names; k++) {
                dst[k] = src[pick[k]];
            }
        }
        *out = x;
    }
    free(sorted);
    free(pick);
    return rc;
}
