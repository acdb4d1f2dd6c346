// test_tensor — tensors: allocation and limits, GEMM against a naive loop in
// double for every transpose combination, checked matmul, finiteness, deep
// copies, the BLAS thread setting and each job's share of the cores.
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dv_limits.h"
#include "dv_rng.h"
#include "dv_tensor.h"
#include "dv_test.h"

// C = alpha * op(A) * op(B) + beta * C in double, row-major, with explicit
// leading dimensions: op(A) is m x k (A stored k x m when transposed), op(B)
// is k x n (B stored n x k when transposed).
static void
naive_gemm(bool ta,
           bool tb,
           size_t m,
           size_t n,
           size_t k,
           double alpha,
           const float *a,
           size_t lda,
           const float *b,
           size_t ldb,
           double beta,
           double *c,
           size_t ldc)
{
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t p = 0; p < k; p++) {
                double av = ta ? a[p * lda + i] : a[i * lda + p];
                double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                s += av * bv;
            }
            c[i * ldc + j] = alpha * s + beta * c[i * ldc + j];
        }
    }
}

static void
fill_normal(dv_rng_t *rng, float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        v[i] = (float)dv_rng_normal(rng);
    }
}

static void
test_new_zeroed(void)
{
    dv_tensor_t *t = dv_tensor_new(7, 9);
    size_t rows = t->rows, cols = t->cols, size = dv_tensor_size(t);
    size_t nonzero = 0;
    for (size_t i = 0; i < size; i++) {
        nonzero += t->data[i] != 0.0f;
    }
    *dv_tensor_at(t, 6, 8) = 5.0f;
    float last = t->data[size - 1];
    dv_tensor_destroy(&t);
    DV_CHECK(t == NULL);
    DV_CHECK_EQ(rows, 7);
    DV_CHECK_EQ(cols, 9);
    DV_CHECK_EQ(size, 63);
    DV_CHECK_EQ(nonzero, 0);
    DV_CHECK_NEAR(last, 5.0, 0);
}

static void
test_open_ok_zeroed(void)
{
    dv_tensor_t *t = NULL;
    dv_error_t err = {0};
    DV_CHECK_RC(dv_tensor_open(&t, 3, 4, &err), 0, &err);
    DV_CHECK(t != NULL);
    bool ok = t->rows == 3 && t->cols == 4 && dv_tensor_is_finite(t);
    for (size_t i = 0; i < 12; i++) {
        ok = ok && t->data[i] == 0.0f;
    }
    dv_tensor_destroy(&t);
    DV_CHECK(ok);
    // An empty tensor is valid too.
    DV_CHECK_RC(dv_tensor_open(&t, 0, 4, &err), 0, &err);
    size_t size = dv_tensor_size(t);
    dv_tensor_destroy(&t);
    DV_CHECK_EQ(size, 0);
}

static void
test_open_absurd_shape(void)
{
    dv_tensor_t *t = NULL;
    dv_error_t err = {0};
    // rows * cols would wrap size_t: must be refused before any allocation
    // (the leak checker would also catch a stray buffer).
    DV_CHECK_RC(dv_tensor_open(&t, SIZE_MAX / 2, 4, &err), DV_EMSGSIZE, &err);
    DV_CHECK(t == NULL);
    DV_CHECK_EQ(err.code, DV_EMSGSIZE);
    DV_CHECK(strstr(err.text, "exceeds") != NULL);
    DV_CHECK_RC(dv_tensor_open(&t, 4, SIZE_MAX / 2, &err), DV_EMSGSIZE, &err);
    DV_CHECK(t == NULL);
    // One element over the limit.
    DV_CHECK_RC(dv_tensor_open(&t, DV_MAX_TENSOR_ELEMS / 2 + 1, 2, &err),
                DV_EMSGSIZE, &err);
    DV_CHECK(t == NULL);
}

// All four transpose combinations with non-square shapes, alpha/beta not
// 1/0, and leading dimensions equal to the stored row widths.
static void
test_gemm_all_transposes(void)
{
    enum { M = 5, N = 3, K = 7 };
    float a[M * K], b[K * N], c[M * N];
    double want[M * N];
    dv_rng_t rng;
    dv_rng_seed(&rng, 1);
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = (t & 2) != 0;
        size_t lda = ta ? M : K; // A stored K x M when transposed
        size_t ldb = tb ? K : N; // B stored N x K when transposed
        fill_normal(&rng, a, M * K);
        fill_normal(&rng, b, K * N);
        fill_normal(&rng, c, M * N);
        for (size_t i = 0; i < M * N; i++) {
            want[i] = c[i];
        }
        naive_gemm(ta, tb, M, N, K, 0.75, a, lda, b, ldb, -1.5, want, N);
        dv_gemm(ta, tb, M, N, K, 0.75f, a, lda, b, ldb, -1.5f, c, N);
        for (size_t i = 0; i < M * N; i++) {
            if (fabs(c[i] - want[i]) > 1e-4 * (1 + fabs(want[i]))) {
                DV_FAIL_("trans_a=%d trans_b=%d: c[%zu] = %.9g, want %.9g",
                         (int)ta, (int)tb, i, (double)c[i], want[i]);
                return;
            }
        }
    }
}

// One row (the matrix-vector path): every transpose, a padded lda (a
// transposed A's row is a strided column), beta 0 over a C full of NaN
// (never read, as with sgemm), and beta -1.5 (read).
static void
test_gemm_one_row(void)
{
    enum { N = 9, K = 13, LDA = 4, LDB = 16 }; // B: K or N rows of LDB
    float a[K * LDA], b[K * LDB], c[N];
    double want[N];
    dv_rng_t rng;
    dv_rng_seed(&rng, 3);
    for (int t = 0; t < 8; t++) {
        bool ta = t & 1, tb = (t & 2) != 0, zero = (t & 4) != 0;
        size_t lda = ta ? LDA : K; // A stored K x 1 (stride LDA) if ta
        fill_normal(&rng, a, K * LDA);
        fill_normal(&rng, b, K * LDB);
        fill_normal(&rng, c, N);
        for (size_t i = 0; i < N; i++) {
            want[i] = zero ? 0 : c[i];
            c[i] = zero ? NAN : c[i];
        }
        double beta = zero ? 0 : -1.5;
        naive_gemm(ta, tb, 1, N, K, 0.75, a, lda, b, LDB, beta, want, N);
        dv_gemm(ta, tb, 1, N, K, 0.75f, a, lda, b, LDB, (float)beta, c, N);
        for (size_t i = 0; i < N; i++) {
            if (!(fabs(c[i] - want[i]) <= 1e-4 * (1 + fabs(want[i])))) {
                DV_FAIL_("trans_a=%d trans_b=%d beta=%g: c[%zu] = %.9g, "
                         "want %.9g",
                         (int)ta, (int)tb, beta, i, (double)c[i], want[i]);
                return;
            }
        }
    }
}

// Row strides wider than the rows: padding must be skipped and left alone.
static void
test_gemm_padded_strides(void)
{
    enum { M = 4, N = 6, K = 3, LDA = 5, LDB = 8, LDC = 9 };
    float a[M * LDA], b[K * LDB], c[M * LDC];
    double want[M * LDC];
    dv_rng_t rng;
    dv_rng_seed(&rng, 2);
    fill_normal(&rng, a, M * LDA);
    fill_normal(&rng, b, K * LDB);
    fill_normal(&rng, c, M * LDC);
    for (size_t i = 0; i < M * LDC; i++) {
        want[i] = c[i];
    }
    naive_gemm(false, false, M, N, K, 2.0, a, LDA, b, LDB, 0.5, want, LDC);
    dv_gemm(false, false, M, N, K, 2.0f, a, LDA, b, LDB, 0.5f, c, LDC);
    for (size_t i = 0; i < M; i++) {
        for (size_t j = 0; j < LDC; j++) {
            DV_CHECK_NEAR(c[i * LDC + j], want[i * LDC + j], 1e-4);
        }
    }
}

static void
test_matmul(void)
{
    // [0 1 2; 3 4 5] * ones(3, 4) = rows of 3 and 12.
    dv_tensor_t *a = dv_tensor_new(2, 3), *b = dv_tensor_new(3, 4);
    dv_tensor_t *c = dv_tensor_new(2, 4), *at = dv_tensor_new(3, 2);
    for (size_t i = 0; i < 6; i++) {
        a->data[i] = (float)i;
        at->data[(i % 3) * 2 + i / 3] = (float)i; // a transposed
    }
    for (size_t i = 0; i < 12; i++) {
        b->data[i] = 1.0f;
    }
    dv_error_t err = {0};
    int rc = dv_tensor_matmul(c, a, false, b, false, false, &err);
    float first = c->data[0], last = c->data[7];
    int rc_t = dv_tensor_matmul(c, at, true, b, false, false, &err);
    float first_t = c->data[0], last_t = c->data[7];
    dv_tensor_destroy(&a);
    dv_tensor_destroy(&b);
    dv_tensor_destroy(&c);
    dv_tensor_destroy(&at);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_NEAR(first, 3, 0);
    DV_CHECK_NEAR(last, 12, 0);
    DV_CHECK_RC(rc_t, 0, &err);
    DV_CHECK_NEAR(first_t, 3, 0);
    DV_CHECK_NEAR(last_t, 12, 0);
}

static void
test_matmul_accumulate(void)
{
    dv_tensor_t *a = dv_tensor_new(2, 3), *b = dv_tensor_new(3, 4);
    dv_tensor_t *c = dv_tensor_new(2, 4);
    for (size_t i = 0; i < 6; i++) {
        a->data[i] = (float)i;
    }
    for (size_t i = 0; i < 12; i++) {
        b->data[i] = 1.0f;
    }
    for (size_t i = 0; i < 8; i++) {
        c->data[i] = 100.0f;
    }
    dv_error_t err = {0};
    int rc_acc = dv_tensor_matmul(c, a, false, b, false, true, &err);
    float acc0 = c->data[0], acc7 = c->data[7];
    int rc_set = dv_tensor_matmul(c, a, false, b, false, false, &err);
    float set0 = c->data[0], set7 = c->data[7];
    dv_tensor_destroy(&a);
    dv_tensor_destroy(&b);
    dv_tensor_destroy(&c);
    DV_CHECK_RC(rc_acc, 0, &err);
    DV_CHECK_NEAR(acc0, 103, 0);
    DV_CHECK_NEAR(acc7, 112, 0);
    DV_CHECK_RC(rc_set, 0, &err);
    DV_CHECK_NEAR(set0, 3, 0);
    DV_CHECK_NEAR(set7, 12, 0);
}

static void
test_matmul_shape_mismatch(void)
{
    dv_tensor_t *a = dv_tensor_new(2, 3), *b = dv_tensor_new(3, 4);
    dv_tensor_t *bad_c = dv_tensor_new(2, 2), *bad_b = dv_tensor_new(5, 4);
    dv_tensor_t *c = dv_tensor_new(2, 4);
    dv_error_t err = {0}, err_k = {0}, err_t = {0};
    int rc_c = dv_tensor_matmul(bad_c, a, false, b, false, false, &err);
    int rc_k = dv_tensor_matmul(c, a, false, bad_b, false, false, &err_k);
    // a^T is 3 x 2: does not chain with b (3 x 4).
    int rc_t = dv_tensor_matmul(c, a, true, b, false, false, &err_t);
    float untouched = bad_c->data[0] + c->data[0];
    dv_tensor_destroy(&a);
    dv_tensor_destroy(&b);
    dv_tensor_destroy(&c);
    dv_tensor_destroy(&bad_c);
    dv_tensor_destroy(&bad_b);
    DV_CHECK_RC(rc_c, DV_ESHAPE, &err);
    DV_CHECK(strstr(err.text, "2 x 3") != NULL);
    DV_CHECK(strstr(err.text, "3 x 4") != NULL);
    DV_CHECK(strstr(err.text, "into 2 x 2") != NULL);
    DV_CHECK_RC(rc_k, DV_ESHAPE, &err_k);
    DV_CHECK(strstr(err_k.text, "5 x 4") != NULL);
    DV_CHECK_RC(rc_t, DV_ESHAPE, &err_t);
    DV_CHECK(strstr(err_t.text, "transposed") != NULL);
    DV_CHECK_NEAR(untouched, 0, 0);
}

static void
test_nonfinite_positions(void)
{
    dv_tensor_t *t = dv_tensor_new(3, 4);
    bool clean = dv_tensor_is_finite(t);
    size_t none = dv_tensor_first_nonfinite(t);
    t->data[9] = INFINITY;
    size_t at_inf = dv_tensor_first_nonfinite(t);
    bool finite_inf = dv_tensor_is_finite(t);
    t->data[6] = NAN;
    size_t at_nan = dv_tensor_first_nonfinite(t);
    t->data[6] = 1.0f;
    t->data[9] = -INFINITY;
    size_t at_ninf = dv_tensor_first_nonfinite(t);
    t->data[9] = 3.4e38f; // large but finite
    bool finite_big = dv_tensor_is_finite(t);
    dv_tensor_destroy(&t);
    DV_CHECK(clean);
    DV_CHECK_EQ(none, 12);
    DV_CHECK_EQ(at_inf, 9);
    DV_CHECK(!finite_inf);
    DV_CHECK_EQ(at_nan, 6);
    DV_CHECK_EQ(at_ninf, 9);
    DV_CHECK(finite_big);
}

// The block scan (64 at a time) against the plain rule, for every size and
// position that sits at or beside a block's edge, each kind of non-finite
// value, and finite values whose bits come close (FLT_MAX, denormals, -0).
static void
test_nonfinite_blocks_match_the_rule(void)
{
    const size_t sizes[] = {1, 2, 63, 64, 65, 127, 128, 129, 200, 4103};
    const float bad[] = {NAN, -NAN, INFINITY, -INFINITY};
    const float edge[] = {FLT_MAX, -FLT_MAX, FLT_MIN / 4, -0.0f, 1.0f};
    size_t cases = 0, wrong = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s];
        dv_tensor_t *t = dv_tensor_new(1, n);
        for (size_t i = 0; i < n; i++) {
            t->data[i] = edge[i % (sizeof edge / sizeof *edge)];
        }
        size_t at[] = {0, 1, 62, 63, 64, 65, 127, 128, n / 2, n - 2, n - 1};
        wrong += dv_tensor_first_nonfinite(t) != n; // every one finite
        cases++;
        for (size_t a = 0; a < sizeof at / sizeof *at; a++) {
            for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
                size_t p = at[a];
                if (p >= n) {
                    continue;
                }
                float keep = t->data[p];
                t->data[p] = bad[b];
                size_t want = n; // the plain rule
                for (size_t i = 0; i < n && want == n; i++) {
                    want = isfinite(t->data[i]) ? n : i;
                }
                wrong += dv_tensor_first_nonfinite(t) != want || want != p;
                if (p + 70 < n) { // a second one further on: the first wins
                    float keep2 = t->data[p + 70];
                    t->data[p + 70] = NAN;
                    wrong += dv_tensor_first_nonfinite(t) != p;
                    t->data[p + 70] = keep2;
                }
                t->data[p] = keep;
                cases++;
            }
        }
        dv_tensor_destroy(&t);
    }
    DV_CHECK(cases > 300);
    DV_CHECK_EQ(wrong, 0);
}

static void
test_dup_is_deep(void)
{
    dv_tensor_t *t = dv_tensor_new(2, 3);
    for (size_t i = 0; i < 6; i++) {
        t->data[i] = (float)i + 0.5f;
    }
    dv_tensor_t *copy = dv_tensor_dup(t);
    bool same = copy != t && copy->data != t->data && copy->rows == 2 &&
                copy->cols == 3 &&
                memcmp(copy->data, t->data, 6 * sizeof(float)) == 0;
    t->data[4] = -1.0f;
    float kept = copy->data[4];
    dv_tensor_destroy(&t);
    float after = copy->data[5]; // still readable with the original gone
    dv_tensor_destroy(&copy);
    DV_CHECK(same);
    DV_CHECK_NEAR(kept, 4.5, 0);
    DV_CHECK_NEAR(after, 5.5, 0);
}

static void
test_destroy_null_safe(void)
{
    dv_tensor_destroy(NULL);
    dv_tensor_t *t = NULL;
    dv_tensor_destroy(&t);
    DV_CHECK(t == NULL);
    t = dv_tensor_new(1, 1);
    dv_tensor_destroy(&t);
    DV_CHECK(t == NULL);
    dv_tensor_destroy(&t); // idempotent
    DV_CHECK(t == NULL);
}

static void
test_blas_threads(void)
{
    int before = dv_blas_threads();
    dv_blas_set_threads(1);
    int now = dv_blas_threads();
    dv_blas_set_threads(before >= 1 ? before : 1);
    DV_CHECK_GE(before, 1);
    DV_CHECK_EQ(now, 1);
}

// The share: cores / jobs, at least 1, never above cores, lowered (never
// raised) by OPENBLAS_NUM_THREADS; junk in it is ignored.
static void
test_blas_threads_share(void)
{
    const char *had = getenv("OPENBLAS_NUM_THREADS");
    char *saved = had ? strdup(had) : NULL;
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    unsetenv("OPENBLAS_NUM_THREADS");
    int one = dv_blas_threads_share(1), two = dv_blas_threads_share(2);
    int many = dv_blas_threads_share(100000), all = dv_blas_threads_share(1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    int capped = dv_blas_threads_share(1);
    setenv("OPENBLAS_NUM_THREADS", "100000", 1);
    int not_raised = dv_blas_threads_share(1);
    setenv("OPENBLAS_NUM_THREADS", "2x", 1);
    int junk = dv_blas_threads_share(1);
    setenv("OPENBLAS_NUM_THREADS", "0", 1);
    int zero = dv_blas_threads_share(1);
    if (saved) {
        setenv("OPENBLAS_NUM_THREADS", saved, 1);
    } else {
        unsetenv("OPENBLAS_NUM_THREADS");
    }
    free(saved);
    DV_CHECK_EQ(one, cores);
    DV_CHECK_EQ(two, cores / 2 >= 1 ? cores / 2 : 1);
    DV_CHECK_EQ(many, 1);
    DV_CHECK_EQ(all, cores);
    DV_CHECK_EQ(capped, 1);
    DV_CHECK_EQ(not_raised, cores);
    DV_CHECK_EQ(junk, cores);
    DV_CHECK_EQ(zero, cores);
}

static const dv_test_case_t cases[] = {
    {"dv_tensor_new is zeroed", test_new_zeroed},
    {"dv_tensor_open allocates zeroed", test_open_ok_zeroed},
    {"dv_tensor_open refuses an absurd shape", test_open_absurd_shape},
    {"gemm matches a naive loop, all transposes", test_gemm_all_transposes},
    {"the non-finite scan by blocks matches the plain rule",
     test_nonfinite_blocks_match_the_rule},
    {"gemm honours padded leading dimensions", test_gemm_padded_strides},
    {"gemm of one row (matrix-vector), every transpose and beta",
     test_gemm_one_row},
    {"matmul, plain and transposed", test_matmul},
    {"matmul accumulate adds into C", test_matmul_accumulate},
    {"matmul shape mismatch is DV_ESHAPE", test_matmul_shape_mismatch},
    {"NaN and Inf found at their index", test_nonfinite_positions},
    {"dup is a deep copy", test_dup_is_deep},
    {"destroy is NULL-safe and sets NULL", test_destroy_null_safe},
    {"BLAS thread count", test_blas_threads},
    {"BLAS threads share: cores / jobs, env lowers", test_blas_threads_share},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
