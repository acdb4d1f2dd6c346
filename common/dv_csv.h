// dv_csv — load tabular data from CSV into a data set (features + target).
//
// Format: one header row of column names, then one row per sample; fields
// separated by commas; "\n" or "\r\n" line ends; optional UTF-8 BOM; fields may
// be double-quoted (RFC 4180: "" inside quotes is one quote). Every column but
// the target must hold finite numbers in every row. The target column keeps
// its text too, so class labels may be words ("setosa") or numbers.
//
// Every rejection is a DV_E* code with a reason naming the line (1-based, the
// header is line 1) and column (1-based, with its name):
//   DV_EFORMAT   empty file, no data rows, ragged row, not a number, empty
//                field, duplicate column name, unterminated quote, target
//                column missing
//   DV_ENAN      NaN or +-Inf in a feature (or in a numeric target)
//   DV_EMSGSIZE  file, field, column or row count over dv_limits.h
//   DV_ENOENT/DV_EACCES/DV_EIO  file cannot be read
#ifndef DV_CSV_H
#define DV_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "dv_err.h"
#include "dv_sha256.h"
#include "dv_tensor.h"

typedef struct {
    // Name of the target column. NULL: the column named "target" when there
    // is one, else the last column.
    const char *target;
    // When true, a file without the target column is fine (prediction input):
    // every column is a feature and the data set has no target.
    bool target_optional;
} dv_csv_opts_t;

// A loaded data set. A plain record: fields are read directly; all memory is
// owned by the data set and freed by dv_dataset_destroy.
typedef struct {
    size_t n_rows;        // data rows (header excluded), >= 1
    size_t n_features;    // feature columns (all but the target)
    char **feature_names; // n_features names, in file order
    dv_tensor_t *x;       // n_rows x n_features feature values
    char *target_name;    // target column name; NULL when none
    char **target_text;   // n_rows target cells as text (trimmed,
                          // unquoted); NULL when no target
    double *target_value; // n_rows numbers; NAN where the cell is not a
                          // number; NULL when no target
    bool target_numeric;  // every target cell is a finite number
    uint8_t sha256[DV_SHA256_BYTES]; // checksum of the input bytes
} dv_dataset_t;

// Parse len bytes of CSV text. Returns 0 and sets *out (caller owns it), or a
// DV_E* code with err->text set (nothing allocated survives).
int dv_csv_parse(dv_dataset_t **out,
                 const char *buf,
                 size_t len,
                 const dv_csv_opts_t *opts,
                 dv_error_t *err);

// Read and parse the file at path ("-": standard input, named "stdin" in
// reasons) (at most DV_MAX_CSV_BYTES). Same results as
// dv_csv_parse, plus DV_ENOENT/DV_EACCES/DV_EIO for the file itself; reasons
// start with the path.
int dv_csv_load(dv_dataset_t **out,
                const char *path,
                const dv_csv_opts_t *opts,
                dv_error_t *err);

// Free the data set and set *self_p to NULL. NULL-safe, idempotent.
void dv_dataset_destroy(dv_dataset_t **self_p);

// Build an n_rows x n_names tensor of the named feature columns, in the order
// given (how a model maps a file's columns onto its own feature order).
// Returns 0 and sets *out (caller owns it), or DV_ESHAPE naming the first
// missing column.
int dv_dataset_select(const dv_dataset_t *self,
                      char *const *names,
                      size_t n_names,
                      dv_tensor_t **out,
                      dv_error_t *err);

#endif
