// dv-bench-ml — figures for the model library on this machine (never run by
// tests; `make bench` runs it):
//   - sgemm GFLOP/s (OpenBLAS) at 1024^3 and at the MLP's own shapes
//   - MLP 256-512-256-10 training samples/s (Adam, batch 256) on generated
//     data of 100k x 256 with 10 classes
//   - inference rows/s at batch 1, 32, 256, 4096
//   - each as effective GFLOP/s and as a ratio to the sgemm figure
// Prints a table and writes JSON (--out, default bench/results/ml.json).
//
// Training rate = extra samples / extra time between a 1-epoch and a
// 3-epoch run of dv_train, so fixed costs (scaler fit, label encoding, the
// final training metrics pass) cancel out and the figure is the steady
// per-sample cost of the optimizer loop.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "dv_bench.h"
#include "dv_csv.h"
#include "dv_mem.h"
#include "dv_model.h"
#include "dv_tensor.h"
#include "dv_train.h"

#define N_ROWS     100000 // generated training rows
#define N_FEATURES 256
#define N_CLASSES  10

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// Best GFLOP/s of C = A * B (m x k times k x n) over repeats lasting >= 1 s.
static double
sgemm_gflops(size_t m, size_t n, size_t k)
{
    float *a = dv_malloc(m * k * sizeof(float));
    float *b = dv_malloc(k * n * sizeof(float));
    float *c = dv_calloc(m * n, sizeof(float));
    for (size_t i = 0; i < m * k; i++) {
        a[i] = (float)(i % 13) * 0.01f;
    }
    for (size_t i = 0; i < k * n; i++) {
        b[i] = (float)(i % 7) * 0.01f;
    }
    dv_gemm(false, false, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n); // warm up
    double best = 0, t_start = now();
    while (now() - t_start < 1.0) {
        double t0 = now();
        int reps = 0;
        do {
            dv_gemm(false, false, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
            reps++;
        } while (now() - t0 < 0.1);
        double g =
            2.0 * (double)m * (double)n * (double)k * reps / (now() - t0) / 1e9;
        best = g > best ? g : best;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

static void
hyper(dv_hyper_t *h, uint32_t epochs)
{
    dv_hyper_default(h, DV_ALGO_MLP);
    h->n_hidden = 2;
    h->hidden[0] = 512;
    h->hidden[1] = 256;
    h->batch = 256;
    h->epochs = epochs;
    h->patience = 0;
}

static double
train_seconds(const dv_dataset_t *ds, uint32_t epochs, dv_model_t **keep)
{
    dv_hyper_t h;
    hyper(&h, epochs);
    dv_train_opts_t opts = {.task = DV_TASK_CLASSIFICATION};
    dv_model_t *m = NULL;
    dv_error_t err = {0};
    double t0 = now();
    if (dv_train(&m, ds, &h, &opts, &err) != 0) {
        fprintf(stderr, "dv-bench-ml: training failed: %s\n", err.text);
        exit(1);
    }
    double t = now() - t0;
    if (keep) {
        *keep = m;
    } else {
        dv_model_destroy(&m);
    }
    return t;
}

// Rows per second of dv_model_predict at the given batch size, over >= 1 s.
static double
infer_rows_per_s(const dv_model_t *m, const dv_dataset_t *ds, size_t batch)
{
    dv_tensor_t *x = dv_tensor_new(batch, N_FEATURES);
    memcpy(x->data, ds->x->data, batch * N_FEATURES * sizeof(float));
    dv_error_t err = {0};
    size_t rows = 0;
    double t0 = now();
    do {
        for (int i = 0; i < 16; i++) {
            dv_tensor_t *out = NULL;
            if (dv_model_predict(m, x, &out, &err) != 0) {
                fprintf(stderr, "dv-bench-ml: predict: %s\n", err.text);
                exit(1);
            }
            dv_tensor_destroy(&out);
            rows += batch;
        }
    } while (now() - t0 < 1.0);
    double rate = (double)rows / (now() - t0);
    dv_tensor_destroy(&x);
    return rate;
}

int
main(int argc, char **argv)
{
    const char *out_path = "bench/results/ml.json";
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out_path = argv[++i];
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: dv-bench-ml [--out FILE] [--threads N]\n");
            return 2;
        }
    }
    threads = threads > 0 ? threads : 1;
    dv_blas_set_threads(threads);

    double gemm_square = sgemm_gflops(1024, 1024, 1024);
    double gemm_mlp = sgemm_gflops(256, 512, 256);
    printf("sgemm 1024^3:          %8.1f GFLOP/s (%d threads)\n", gemm_square,
           threads);
    printf("sgemm 256x512x256:     %8.1f GFLOP/s\n", gemm_mlp);

    dv_dataset_t *ds =
        dv_bench_teacher_data(N_ROWS, N_FEATURES, N_CLASSES, 2026);
    // FLOPs per sample: forward 2 * sum(in * out); training adds dW for
    // every layer and dX for all but the first (3x forward minus one layer).
    const double fwd = 2.0 * (256.0 * 512 + 512.0 * 256 + 256.0 * 10);
    const double train_flops = 3.0 * fwd - 2.0 * 256.0 * 512;
    dv_model_t *model = NULL;
    double t1 = train_seconds(ds, 1, NULL);
    double t3 = train_seconds(ds, 3, &model);
    double train_rate = 2.0 * N_ROWS / (t3 - t1);
    double train_gflops = train_rate * train_flops / 1e9;
    printf("mlp 256-512-256-10 train: %8.0f samples/s (Adam, batch 256) = "
           "%.1f GFLOP/s, %.2f of sgemm; train acc %.3f after 3 epochs\n",
           train_rate, train_gflops, train_gflops / gemm_square,
           model->meta.train_metrics.accuracy);

    static const size_t batches[] = {1, 32, 256, 4096};
    double infer[4];
    for (int i = 0; i < 4; i++) {
        infer[i] = infer_rows_per_s(model, ds, batches[i]);
        printf("mlp inference batch %-5zu %10.0f rows/s = %6.1f GFLOP/s, "
               "%.2f of sgemm\n",
               batches[i], infer[i], infer[i] * fwd / 1e9,
               infer[i] * fwd / 1e9 / gemm_square);
    }
    printf("reference (same kind of machine): PyTorch trains ~93k samples/s "
           "(2 threads), numpy infers ~212k rows/s at batch 256\n");

    FILE *f = fopen(out_path, "w");
    if (!f) {
        perror(out_path);
        return 1;
    }
    struct utsname u;
    uname(&u);
    fprintf(f,
            "{\n  \"bench\": \"ml\",\n  \"machine\": \"%s %s\",\n"
            "  \"cores\": %ld,\n  \"blas_threads\": %d,\n"
            "  \"sgemm_gflops_1024\": %.2f,\n"
            "  \"sgemm_gflops_256x512x256\": %.2f,\n"
            "  \"mlp\": \"256-512-256-10\",\n"
            "  \"train_samples_per_s\": %.0f,\n"
            "  \"train_gflops\": %.2f,\n"
            "  \"train_ratio_to_sgemm\": %.3f,\n"
            "  \"inference\": [\n",
            u.machine, u.release, sysconf(_SC_NPROCESSORS_ONLN), threads,
            gemm_square, gemm_mlp, train_rate, train_gflops,
            train_gflops / gemm_square);
    for (int i = 0; i < 4; i++) {
        fprintf(f,
                "    {\"batch\": %zu, \"rows_per_s\": %.0f, \"gflops\": %.2f, "
                "\"ratio_to_sgemm\": %.3f}%s\n",
                batches[i], infer[i], infer[i] * fwd / 1e9,
                infer[i] * fwd / 1e9 / gemm_square, i < 3 ? "," : "");
    }
    fprintf(f,
            "  ],\n  \"reference\": {\"pytorch_train_samples_per_s\": 93000, "
            "\"numpy_infer_rows_per_s_batch256\": 212000}\n}\n");
    fclose(f);
    printf("wrote %s\n", out_path);
    dv_model_destroy(&model);
    dv_dataset_destroy(&ds);
    return 0;
}
