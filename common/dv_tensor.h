// dv_tensor — row-major float32 matrices and the BLAS calls on them.
//
// A tensor is a transparent value (rows, cols, data): math code indexes it
// directly on hot paths, so hiding the fields behind getters would only add
// noise. It owns its data; free it with dv_tensor_destroy.
//
// BLAS threads: OpenBLAS (pthread build) runs each sgemm on its own thread
// pool. A process sets the count once with dv_blas_set_threads() before any
// math: the CLI and benchmarks use all cores; a worker running several jobs at
// once, or sharing the host with other workers, takes its share
// (dv_blas_threads_share) so jobs x BLAS threads never oversubscribe the
// cores. See docs/ARCHITECTURE.md.
#ifndef DV_TENSOR_H
#define DV_TENSOR_H

#include <stdbool.h>
#include <stddef.h>

#include "dv_err.h"

typedef struct {
    size_t rows; // number of rows
    size_t cols; // number of columns (row stride, in elements)
    float *data; // rows * cols floats, row-major; owned
} dv_tensor_t;

// Allocate a zeroed rows x cols tensor for internal, already-bounded sizes.
// Never NULL (aborts on OOM). Caller owns the result.
dv_tensor_t *dv_tensor_new(size_t rows, size_t cols);

// Allocate a zeroed rows x cols tensor whose size comes from data. Returns 0
// and sets *out (caller owns it), DV_EMSGSIZE when rows * cols exceeds
// DV_MAX_TENSOR_ELEMS, or DV_ENOMEM when the allocation fails.
int
dv_tensor_open(dv_tensor_t **out, size_t rows, size_t cols, dv_error_t *err);

// Free the tensor and set *self_p to NULL. NULL-safe, idempotent.
void dv_tensor_destroy(dv_tensor_t **self_p);

// Deep copy. Never NULL; caller owns the result.
dv_tensor_t *dv_tensor_dup(const dv_tensor_t *self);

// Element (i, j); no bounds check on this hot-path accessor beyond dv_assert
// in debug builds.
static inline float *
dv_tensor_at(const dv_tensor_t *t, size_t i, size_t j)
{
    return t->data + i * t->cols + j;
}

// Number of elements (rows * cols).
size_t dv_tensor_size(const dv_tensor_t *self);

// True when every element is finite (no NaN, no +-Inf).
bool dv_tensor_is_finite(const dv_tensor_t *self);

// Index of the first non-finite element, or dv_tensor_size() when all are
// finite.
size_t dv_tensor_first_nonfinite(const dv_tensor_t *self);

// C = alpha * op(A) * op(B) + beta * C for row-major matrices; op(X) is X or
// X^T per trans_*. Same argument order as cblas_sgemm (CblasRowMajor implied):
// M x K times K x N into M x N; lda/ldb/ldc are row strides in elements.
void dv_gemm(bool trans_a,
             bool trans_b,
             size_t m,
             size_t n,
             size_t k,
             float alpha,
             const float *a,
             size_t lda,
             const float *b,
             size_t ldb,
             float beta,
             float *c,
             size_t ldc);

// C = op(A) * op(B) (+ C when accumulate) with shapes checked. Returns 0, or
// DV_ESHAPE with the shapes in err->text when they do not line up.
int dv_tensor_matmul(dv_tensor_t *c,
                     const dv_tensor_t *a,
                     bool trans_a,
                     const dv_tensor_t *b,
                     bool trans_b,
                     bool accumulate,
                     dv_error_t *err);

// Set the number of OpenBLAS threads for this process (n >= 1). Call before
// math starts; see the policy above.
void dv_blas_set_threads(int n);

// Current OpenBLAS thread count.
int dv_blas_threads(void);

// BLAS threads for each of `jobs` jobs computing at once on this host (every
// worker's concurrency, summed), so that jobs x threads never exceed the
// online cores: online cores / jobs, at least 1; an operator's
// OPENBLAS_NUM_THREADS (a positive integer) lowers it further, never raises
// it. jobs >= 1. The one place of the rule `drover up` and drover-worker
// apply (docs/ARCHITECTURE.md, BLAS threads: the policy).
int dv_blas_threads_share(unsigned jobs);

#endif
