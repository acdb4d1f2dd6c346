// dv_tensor — row-major float32 matrices; GEMM goes to OpenBLAS cblas_sgemm.
//
// Sizes from data are checked against DV_MAX_TENSOR_ELEMS before allocating,
// and a failed large allocation is DV_ENOMEM for the caller to report, not an
// abort: a worker fails that job and keeps serving.
#include "dv_tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "dv_limits.h"
#include "dv_mem.h"

dv_tensor_t *
dv_tensor_new(size_t rows, size_t cols)
{
    dv_assert(cols == 0 || rows <= DV_MAX_TENSOR_ELEMS / cols);
    dv_tensor_t *t = dv_malloc(sizeof *t);
    t->rows = rows;
    t->cols = cols;
    t->data = dv_calloc(rows * cols, sizeof(float));
    return t;
}

int
dv_tensor_open(dv_tensor_t **out, size_t rows, size_t cols, dv_error_t *err)
{
    if (cols != 0 && rows > DV_MAX_TENSOR_ELEMS / cols) {
        return dv_errorf(err, DV_EMSGSIZE,
                         "tensor of %zu x %zu exceeds the limit of %zu "
                         "elements",
                         rows, cols, DV_MAX_TENSOR_ELEMS);
    }
    size_t n = rows * cols;
    float *data = calloc(n ? n : 1, sizeof(float));
    if (!data) {
        return dv_errorf(err, DV_ENOMEM, "cannot allocate a %zu x %zu tensor",
                         rows, cols);
    }
    dv_tensor_t *t = dv_malloc(sizeof *t);
    t->rows = rows;
    t->cols = cols;
    t->data = data;
    *out = t;
    return 0;
}

void
dv_tensor_destroy(dv_tensor_t **self_p)
{
    if (self_p && *self_p) {
        free((*self_p)->data);
        free(*self_p);
        *self_p = NULL;
    }
}

dv_tensor_t *
dv_tensor_dup(const dv_tensor_t *self)
{
    dv_tensor_t *t = dv_tensor_new(self->rows, self->cols);
    memcpy(t->data, self->data, dv_tensor_size(self) * sizeof(float));
    return t;
}

size_t
dv_tensor_size(const dv_tensor_t *self)
{
    return self->rows * self->cols;
}

// Whether any of the 64 floats at x is NaN or infinite, without a branch
// per element (the compiler vectorizes it): its exponent is all ones exactly
// when (bits & 0x7fffffff) + 0x00800000 carries into bit 31.
#define NONFINITE_BLOCK 64
static bool
block_nonfinite(const float *x)
{
    uint32_t any = 0;
    for (size_t j = 0; j < NONFINITE_BLOCK; j++) {
        uint32_t b;
        memcpy(&b, &x[j], sizeof b);
        any |= ((b & 0x7fffffffu) + 0x00800000u) & 0x80000000u;
    }
    return any != 0;
}

// Every input row is checked before a forward pass (a 256 x 256 input: 65k
// floats), so blocks are tested at once and only a block that has one is
// searched element by element.
size_t
dv_tensor_first_nonfinite(const dv_tensor_t *self)
{
    size_t n = dv_tensor_size(self), i = 0;
    while (i + NONFINITE_BLOCK <= n && !block_nonfinite(self->data + i)) {
        i += NONFINITE_BLOCK;
    }
    for (; i < n; i++) {
        if (!isfinite(self->data[i])) {
            return i;
        }
    }
    return n;
}

bool
dv_tensor_is_finite(const dv_tensor_t *self)
{
    return dv_tensor_first_nonfinite(self) == dv_tensor_size(self);
}

void
dv_gemm(bool trans_a,
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
        size_t ldc)
{
    if (m == 0 || n == 0) {
        return;
    }
    // CBLAS takes int dimensions; our limits keep every dimension far below
    // INT_MAX, so this is an invariant, not a data check.
    dv_assert(m <= (size_t)1 << 30 && n <= (size_t)1 << 30 &&
              k <= (size_t)1 << 30);
    if (m == 1 && k > 0) {
        // One row (a single inference request): C = alpha op(B)^T a + beta C
        // as a matrix-vector product. OpenBLAS 0.3.21's sgemm packs all of
        // B even for one row: MLP 256-512-256-10 took 88 us a row that way
        // and 15 us with sgemv on this machine (bench/serve prints "the
        // kernel alone on one row"). beta 0 must not read C (it may hold
        // anything, NaN too), as with sgemm: C is zeroed first.
        size_t inc_a = trans_a ? (lda ? lda : 1) : 1;
        if (beta == 0.0f) {
            memset(c, 0, n * sizeof *c);
        }
        if (trans_b) { // B is n x k
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)k, alpha, b,
                        (int)(ldb ? ldb : 1), a, (int)inc_a, beta, c, 1);
        } else { // B is k x n
            cblas_sgemv(CblasRowMajor, CblasTrans, (int)k, (int)n, alpha, b,
                        (int)(ldb ? ldb : 1), a, (int)inc_a, beta, c, 1);
        }
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                alpha, a, (int)(lda ? lda : 1), b, (int)(ldb ? ldb : 1), beta,
                c, (int)(ldc ? ldc : 1));
}

int
dv_tensor_matmul(dv_tensor_t *c,
                 const dv_tensor_t *a,
                 bool trans_a,
                 const dv_tensor_t *b,
                 bool trans_b,
                 bool accumulate,
                 dv_error_t *err)
{
    size_t m = trans_a ? a->cols : a->rows;
    size_t ka = trans_a ? a->rows : a->cols;
    size_t kb = trans_b ? b->cols : b->rows;
    size_t n = trans_b ? b->rows : b->cols;
    if (ka != kb || c->rows != m || c->cols != n) {
        return dv_errorf(err, DV_ESHAPE,
                         "cannot multiply %zu x %zu%s by %zu x %zu%s into "
                         "%zu x %zu",
                         a->rows, a->cols, trans_a ? " (transposed)" : "",
                         b->rows, b->cols, trans_b ? " (transposed)" : "",
                         c->rows, c->cols);
    }
    dv_gemm(trans_a, trans_b, m, n, ka, 1.0f, a->data, a->cols, b->data,
            b->cols, accumulate ? 1.0f : 0.0f, c->data, c->cols);
    return 0;
}

void
dv_blas_set_threads(int n)
{
    dv_assert(n >= 1);
    openblas_set_num_threads(n);
}

int
dv_blas_threads(void)
{
    return openblas_get_num_threads();
}

int
dv_blas_threads_share(unsigned jobs)
{
    dv_assert(jobs >= 1);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long share = cores > 0 ? cores / (long)jobs : 1;
    share = share >= 1 ? share : 1;
    // The operator's cap (containers often set it to the CPU quota); text
    // that is not a positive integer is ignored.
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    char *end = NULL;
    long cap = env ? strtol(env, &end, 10) : 0;
    if (env && *env && *end == '\0' && cap >= 1 && cap < share) {
        share = cap;
    }
    return (int)share;
}
