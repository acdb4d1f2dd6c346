// test_tensor — tensors: GEMM against a naive loop, shape checks,
// limits, finiteness, the BLAS thread setting.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dv_rng.h"
#include "dv_tensor.h"
#include "dv_test.h"

static void
naive_gemm(bool ta,
           bool tb,
           size_t m,
           size_t n,
           size_t k,
           double alpha,
           const float *a,
           const float *b,
           double beta,
           double *c)
{
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t p = 0; p < k; p++) {
                double av = ta ? a[p * m + i] : a[i * k + p];
                double bv = tb ? b[j * k + p] : b[p * n + j];
                s += av * bv;
            }
            c[i * n + j] = alpha * s + beta * c[i * n + j];
        }
    }
}

static void
test_gemm_all_transposes(void)
{
    const size_t m = 5, n = 3, k = 7;
    float a[35], b[21], c[15];
    double want[15];
    dv_rng_t rng;
    dv_rng_seed(&rng, 1);
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = t & 2;
        for (size_t i = 0; i < 35; i++) {
            a[i] = (float)dv_rng_normal(&rng);
        }
        for (size_t i = 0; i < 21; i++) {
            b[i] = (float)dv_rng_normal(&rng);
        }
        for (size_t i = 0; i < 15; i++) {
            c[i] = (float)dv_rng_normal(&rng);
            want[i] = c[i];
        }
        naive_gemm(ta, tb, m, n, k, 0.5, a, b, 2.0, want);
        dv_gemm(ta, tb, m, n, k, 0.5f, a, ta ? m : k, b, tb ? k : n, 2.0f, c,
                n);
        for (size_t i = 0; i < 15; i++) {
            DV_CHECK_NEAR(c[i], want[i], 1e-4);
        }
    }
}

static void
test_matmul_shapes(void)
{
    dv_tensor_t *a = dv_tensor_new(2, 3), *b = dv_tensor_new(3, 4);
    dv_tensor_t *c = dv_tensor_new(2, 4), *bad = dv_tensor_new(2, 2);
    for (size_t i = 0; i < 6; i++) {
        a->data[i] = (float)i;
    }
    for (size_t i = 0; i < 12; i++) {
        b->data[i] = 1.0f;
    }
    dv_error_t err = {0};
    int rc = dv_tensor_matmul(c, a, false, b, false, false, &err);
    float first = c->data[0], last = c->data[7]; // 0+1+2, 3+4+5
    int rc_acc = dv_tensor_matmul(c, a, false, b, false, true, &err);
    float doubled = c->data[7];
    int rc_bad = dv_tensor_matmul(bad, a, false, b, false, false, &err);
    bool says = strstr(err.text, "2 x 3") && strstr(err.text, "into 2 x 2");
    dv_tensor_destroy(&a);
    dv_tensor_destroy(&b);
    dv_tensor_destroy(&c);
    dv_tensor_destroy(&bad);
    dv_tensor_destroy(&bad); // idempotent
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_NEAR(first, 3, 0);
    DV_CHECK_NEAR(last, 12, 0);
    DV_CHECK_EQ(rc_acc, 0);
    DV_CHECK_NEAR(doubled, 24, 0);
    DV_CHECK_EQ(rc_bad, DV_ESHAPE);
    DV_CHECK(says);
    DV_CHECK(bad == NULL);
}

static void
test_tensor_open_and_finite(void)
{
    dv_tensor_t *t = NULL;
    dv_error_t err = {0};
    DV_CHECK_RC(dv_tensor_open(&t, SIZE_MAX / 2, 4, &err), DV_EMSGSIZE, &err);
    DV_CHECK(t == NULL);
    DV_CHECK_RC(dv_tensor_open(&t, 3, 4, &err), 0, &err);
    bool zero = t->data[11] == 0.0f && dv_tensor_is_finite(t);
    t->data[6] = NAN;
    size_t at_nan = dv_tensor_first_nonfinite(t);
    t->data[6] = 1;
    t->data[9] = INFINITY;
    size_t at_inf = dv_tensor_first_nonfinite(t);
    dv_tensor_t *copy = dv_tensor_dup(t);
    bool deep = copy->data != t->data && copy->data[9] == INFINITY;
    dv_tensor_destroy(&copy);
    dv_tensor_destroy(&t);
    DV_CHECK(zero);
    DV_CHECK_EQ(at_nan, 6);
    DV_CHECK_EQ(at_inf, 9);
    DV_CHECK(deep);
}

static void
test_blas_threads(void)
{
    int before = dv_blas_threads();
    dv_blas_set_threads(1);
    int now = dv_blas_threads();
    dv_blas_set_threads(before);
    DV_CHECK_EQ(now, 1);
}

static const dv_test_case_t cases[] = {
    {"gemm matches a naive loop, all transposes", test_gemm_all_transposes},
    {"matmul checks shapes", test_matmul_shapes},
    {"tensor limits and finiteness", test_tensor_open_and_finite},
    {"BLAS thread count", test_blas_threads},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
