// fuzz_csv — CSV data sets (dv_csv_parse), as a worker reads a training
// payload and the broker a pushed data set. Byte 0 picks the options
// (target column: default, "target", "y" or "a"; bit 2: target optional),
// the rest is the text, in a buffer of exactly its size (no NUL after it).
// A data set it accepts must be whole, and select its own columns.
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dv_csv.h"
#include "dv_fuzz.h"
#include "dv_mem.h"

static void
check_dataset(const dv_dataset_t *ds)
{
    dv_assert(ds->n_rows >= 1 && ds->x->rows == ds->n_rows &&
              ds->x->cols == ds->n_features);
    dv_assert(dv_tensor_first_nonfinite(ds->x) == dv_tensor_size(ds->x));
    for (size_t j = 0; j < ds->n_features; j++) {
        dv_assert(ds->feature_names[j] != NULL);
    }
    if (ds->target_name) {
        for (size_t i = 0; i < ds->n_rows; i++) {
            dv_assert(ds->target_text[i] != NULL);
        }
    }
    // The columns back to front, then one that is not there.
    size_t n = ds->n_features;
    char **names = dv_calloc(n + 1, sizeof *names);
    for (size_t j = 0; j < n; j++) {
        names[j] = ds->feature_names[n - 1 - j];
    }
    names[n] = "\x01 not a column";
    dv_tensor_t *x = NULL;
    dv_error_t err = {0};
    int rc = dv_dataset_select(ds, names, n, &x, &err);
    dv_assert(rc == 0 && x->rows == ds->n_rows && x->cols == n);
    dv_tensor_destroy(&x);
    bool taken = false; // the input may name a column so too
    for (size_t j = 0; j < n; j++) {
        taken = taken || strcmp(names[j], names[n]) == 0;
    }
    rc = dv_dataset_select(ds, names, n + 1, &x, &err);
    dv_assert(taken ? rc == 0 : rc == DV_ESHAPE && err.text[0]);
    dv_tensor_destroy(&x);
    free(names);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    static const char *targets[] = {NULL, "target", "y", "a"};
    dv_csv_opts_t o = {.target = targets[data[0] & 3],
                       .target_optional = (data[0] & 4) != 0};
    size_t n = 0;
    char *text = (char *)dv_fuzz_tail(data, size, &n);
    dv_dataset_t *ds = NULL;
    dv_error_t err = {0};
    int rc = dv_csv_parse(&ds, text, n, &o, &err);
    dv_fuzz_check(rc, &err);
    if (rc == 0) {
        check_dataset(ds);
    }
    dv_dataset_destroy(&ds);
    free(text);
    return 0;
}
