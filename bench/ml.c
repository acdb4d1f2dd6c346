// dv-bench-ml — figures for the model library on this machine (never run by
// tests; `make bench` runs it):
//   - sgemm GFLOP/s (OpenBLAS) at 1024^3 and at the MLP's own shapes
//   - MLP 256-512-256-10 training (Adam, batch 256, 3 epochs) on 80,000 x 256
//     generated rows with 10 classes, the way users train: the data goes to
//     a CSV file in a temporary folder, which is parsed (timed on its own)
//     and trained on three ways, in rounds:
//       in-process  dv_csv_load + dv_train with the options `drover local
//                   train` passes (the call drover-worker's train task makes
//                   after parsing), timed as the CLI times it
//       CLI         `drover local train` on the same file, from the bin
//                   folder, its own figure read from its output
//       job         `drover train` on the same file: a train job through a
//                   drover-broker and one drover-worker (--concurrency 1,
//                   the same BLAS threads) started from the bin folder on
//                   ipc:// endpoints in the temporary folder
//     and all three are checked to give the same model bytes
//     (SOURCE_DATE_EPOCH and created_unix pinned), so they did the same work.
//   - inference rows/s at batch 1, 32, 256, 4096
//   - each as effective GFLOP/s and as a ratio to the sgemm figure
// Prints a table and writes JSON (--out, default bench/results/ml.json).
//
// Training figures, each the best of --rounds (in-process, CLI and job runs
// alternate, so load on the machine hits all alike):
//   in-process  samples / seconds of the whole dv_train call (set-up, the
//               epochs and the final pass over the data for the model's
//               training metrics), what the CLI prints
//   loop        samples / seconds of the epochs alone (from the progress
//               callback's clock): the steady per-sample cost of the
//               optimizer loop, which earlier versions of this bench reported
//               alone (as the difference of a 1- and a 3-epoch run)
//   CLI         samples / the seconds `drover local train` prints
//   job         samples / the epochs' seconds the worker records (lineage
//               train_ms: its progress clock, so the epochs alone); the
//               job's whole time (upload, queue, parse, training, model
//               file, registration) is printed beside it
// and the ratios CLI / in-process (issue 14's goal: >= 0.9), CLI / loop and
// job / loop (the job's goal, on the figure the worker keeps).
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "dv_bench.h"
#include "dv_csv.h"
#include "dv_file.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_model.h"
#include "dv_modelfile.h"
#include "dv_sha256.h"
#include "dv_tensor.h"
#include "dv_train.h"

#define N_ROWS        80000 // generated training rows (issue 14's file)
#define N_FEATURES    256
#define N_CLASSES     10
#define N_EPOCHS      3
#define CLI_TIMEOUT_S 900 // one `drover local train`; then it is stopped
#define JOB_TIMEOUT_S 900 // one `drover train`; then it is stopped
// created_unix of both models (and SOURCE_DATE_EPOCH of the CLI's), so their
// bytes can be compared.
#define CREATED_UNIX 1764547200

// The MLP's options as `drover local train` takes them; cli_hyper is what
// dv_train gets from them (dv_hyper_default, then only these).
static const char *const s_cli_hyper[] = {
    "--algo", "mlp", "--hidden", "512,256", "--batch", "256", "--epochs", "3",
};

static void
cli_hyper(dv_hyper_t *h)
{
    dv_hyper_default(h, DV_ALGO_MLP);
    h->n_hidden = 2;
    h->hidden[0] = 512;
    h->hidden[1] = 256;
    h->batch = 256;
    h->epochs = N_EPOCHS;
}

static double
now(void)
{
    return dv_bench_now_s();
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

// Wall-clock marks of one in-process training run, in dv_bench_now_s().
typedef struct {
    double start;      // dv_train called
    double loop_start; // first epoch began
    double loop_end;   // last epoch's progress callback
    double end;        // dv_train returned
    uint32_t epochs;   // epochs run
} train_clock_t;

// dv_train's progress callback: the CLI passes one too (it draws only on a
// terminal), so this run calls the same code.
static int
on_epoch(const dv_train_progress_t *p, void *arg)
{
    train_clock_t *c = arg;
    double t = now();
    if (p->epoch == 1) {
        c->loop_start = t - p->seconds; // seconds count from the loop's start
    }
    c->loop_end = t;
    c->epochs = p->epoch;
    return 0;
}

// One in-process run: dv_train on ds as `drover local train` calls it.
// Caller owns *out.
static train_clock_t
train_inprocess(const dv_dataset_t *ds, dv_model_t **out)
{
    dv_hyper_t h;
    cli_hyper(&h);
    train_clock_t c = {0};
    dv_train_opts_t opts = {.task = -1,
                            .progress = on_epoch,
                            .progress_arg = &c,
                            .created_unix = CREATED_UNIX};
    dv_error_t err = {0};
    c.start = now();
    if (dv_train(out, ds, &h, &opts, &err) != 0) {
        fprintf(stderr, "dv-bench-ml: training failed: %s\n", err.text);
        exit(1);
    }
    c.end = now();
    return c;
}

// One `drover local train` run on csv, writing model_path. Returns the
// seconds it prints for training (parsing excluded) and sets *epochs, or
// returns -1 (with its output on stderr) when it failed or printed no figure.
static double
train_cli(const char *drover,
          const char *csv,
          const char *model_path,
          int threads,
          uint32_t *epochs)
{
    char threads_text[16];
    snprintf(threads_text, sizeof threads_text, "%d", threads);
    const char *args[24] = {"local", "train"};
    size_t n = 2;
    for (size_t i = 0; i < sizeof s_cli_hyper / sizeof *s_cli_hyper; i++) {
        args[n++] = s_cli_hyper[i];
    }
    const char *more[] = {"--data",    csv,          "--out", model_path,
                          "--threads", threads_text, NULL};
    for (size_t i = 0; more[i]; i++) {
        args[n++] = more[i];
    }
    args[n] = NULL;
    char out[4096];
    int rc = dv_bench_run(drover, args, CLI_TIMEOUT_S, out, sizeof out);
    // "trained mlp (...) on R rows x F features in S.SSs, E epochs; ..."
    const char *in = strstr(out, " features in ");
    double secs = -1;
    unsigned e = 0;
    if (rc != 0 || !in || sscanf(in, " features in %lfs, %u", &secs, &e) != 2) {
        fprintf(stderr, "dv-bench-ml: %s local train exited %d; output:\n%s\n",
                drover, rc, out);
        return -1;
    }
    *epochs = e;
    return secs;
}

// A broker and one worker from the bin folder, on ipc:// in dir.
typedef struct {
    dv_bench_proc_t broker;       // drover-broker
    dv_bench_proc_t worker;       // drover-worker, --concurrency 1
    char endpoint[PATH_MAX + 32]; // the broker's client endpoint
} cluster_t;

// Start the cluster; 0, or -1 (both stopped) when either did not get READY.
static int
cluster_start(cluster_t *c, const char *bin_dir, const char *dir, int threads)
{
    char bin[PATH_MAX + 32], wep[PATH_MAX + 32], blas[16], line[1100];
    snprintf(c->endpoint, sizeof c->endpoint, "ipc://%s/c.sock", dir);
    snprintf(wep, sizeof wep, "ipc://%s/w.sock", dir);
    snprintf(blas, sizeof blas, "%d", threads);
    snprintf(bin, sizeof bin, "%s/drover-broker", bin_dir);
    const char *bargs[] = {"--client", c->endpoint, "--worker", wep, NULL};
    c->broker = dv_bench_spawn(bin, bargs);
    int rc = dv_bench_ready(&c->broker, line, sizeof line);
    c->worker = (dv_bench_proc_t){0, -1};
    if (rc == 0) {
        snprintf(bin, sizeof bin, "%s/drover-worker", bin_dir);
        const char *wargs[] = {
            "--broker", wep, "--concurrency", "1", "--blas-threads",
            blas,       NULL};
        c->worker = dv_bench_spawn(bin, wargs);
        rc = dv_bench_ready(&c->worker, line, sizeof line);
    }
    if (rc != 0) {
        fprintf(stderr,
                "dv-bench-ml: drover-broker/worker did not start "
                "(bin dir %s)\n",
                bin_dir);
        dv_bench_reap(&c->worker);
        dv_bench_reap(&c->broker);
    }
    return rc;
}

static void
cluster_stop(cluster_t *c)
{
    dv_bench_reap(&c->worker);
    dv_bench_reap(&c->broker);
}

// The number after "key": in JSON text, or -1 when it is not there.
static double
json_number(const char *text, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *at = strstr(text, pat);
    return at ? strtod(at + strlen(pat), NULL) : -1;
}

// The string after "key":" in JSON text, into out (empty when absent).
static void
json_string(const char *text, const char *key, char *out, size_t size)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *at = strstr(text, pat);
    size_t n = 0;
    for (at = at ? at + strlen(pat) : ""; *at && *at != '"' && n + 1 < size;
         at++) {
        out[n++] = *at;
    }
    out[n] = '\0';
}

// One `drover train` job on csv through the cluster. Returns the job's whole
// seconds as drover prints them and sets *loop_s (the worker's epochs) and
// sha (the registered model's SHA-256, hex); -1 when it failed.
static double
train_job(const char *drover,
          const cluster_t *c,
          const char *csv,
          double *loop_s,
          char sha[DV_SHA256_HEX])
{
    const char *args[24] = {"train", "--model", "bench-mlp", "--json"};
    size_t n = 4;
    for (size_t i = 0; i < sizeof s_cli_hyper / sizeof *s_cli_hyper; i++) {
        args[n++] = s_cli_hyper[i];
    }
    const char *more[] = {"--data", csv, "--broker", c->endpoint, NULL};
    for (size_t i = 0; more[i]; i++) {
        args[n++] = more[i];
    }
    args[n] = NULL;
    char out[8192], ref[256];
    int rc = dv_bench_run(drover, args, JOB_TIMEOUT_S, out, sizeof out);
    // Progress lines, then {"job":..,"model":"bench-mlp@V",..,"seconds":S}.
    const char *last = strstr(out, "\"seconds\":");
    double secs = last ? json_number(last - 1, "seconds") : -1;
    json_string(out, "model", ref, sizeof ref);
    if (rc != 0 || secs < 0 || !ref[0]) {
        fprintf(stderr, "dv-bench-ml: %s train exited %d; output:\n%s\n",
                drover, rc, out);
        return -1;
    }
    const char *show[] = {"models",   "show",      ref, "--json",
                          "--broker", c->endpoint, NULL};
    static char info[65536]; // the feature names make it long
    rc = dv_bench_run(drover, show, 60, info, sizeof info);
    *loop_s = json_number(info, "train_ms") / 1000.0;
    json_string(info, "sha256", sha, DV_SHA256_HEX);
    if (rc != 0 || *loop_s <= 0 || !sha[0]) {
        fprintf(stderr, "dv-bench-ml: models show %s exited %d\n", ref, rc);
        return -1;
    }
    return secs;
}

// SHA-256 (hex) of the file at path; empty when it cannot be read.
static void
file_sha256(const char *path, char hex[DV_SHA256_HEX])
{
    uint8_t *buf = NULL, digest[DV_SHA256_BYTES];
    size_t len = 0;
    dv_error_t err = {0};
    hex[0] = '\0';
    if (dv_file_read(path, DV_MAX_MODEL_BYTES, &buf, &len, &err) == 0) {
        dv_sha256(buf, len, digest);
        dv_sha256_hex(digest, hex);
    }
    free(buf);
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

// True when the model file at path holds exactly m's encoding.
static bool
same_model_bytes(const dv_model_t *m, const char *path)
{
    uint8_t *mine = NULL, *theirs = NULL;
    size_t mine_len = 0, theirs_len = 0;
    dv_error_t err = {0};
    bool same = dv_model_encode(m, &mine, &mine_len, &err) == 0 &&
                dv_file_read(path, DV_MAX_MODEL_BYTES, &theirs, &theirs_len,
                             &err) == 0 &&
                mine_len == theirs_len && memcmp(mine, theirs, mine_len) == 0;
    free(mine);
    free(theirs);
    return same;
}

// The folder this program was started from: drover is built beside it.
static void
own_dir(char *dir, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", dir, size - 1);
    dir[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
    } else {
        snprintf(dir, size, ".");
    }
}

// Training figures of one benchmark run (see the top of the file).
typedef struct {
    double csv_bytes;    // size of the CSV file, bytes
    double parse_s;      // dv_csv_load of it (in-process), seconds
    double inproc_s;     // best whole dv_train call, seconds
    double setup_s;      // that call's work before epoch 1, seconds
    double final_s;      // that call's work after the last epoch, seconds
    double loop_s;       // best epochs alone, seconds
    double cli_s;        // best `drover local train` figure, seconds
    uint32_t cli_epochs; // epochs the CLI ran
    double job_s;        // best `drover train` job, whole, seconds
    double job_loop_s;   // best epochs on the worker (lineage), seconds
    bool same_bytes;     // every CLI and job model == its round's in-process
                         // model
    double load_before;  // 1-minute load average before the rounds
    double load_after;   // and after
} train_figures_t;

// Write the CSV, parse it, and run `rounds` in-process, CLI and job
// trainings on it, alternating. Fills *tf and returns the last in-process
// model (caller owns it) and, in *ds_out, the parsed data; NULL on failure.
static dv_model_t *
bench_training(const char *bin_dir,
               int threads,
               int rounds,
               train_figures_t *tf,
               dv_dataset_t **ds_out)
{
    const char *tmp = getenv("TMPDIR");
    char dir[PATH_MAX], csv[PATH_MAX + 32], model_path[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/dv-bench-ml-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror(dir);
        return NULL;
    }
    snprintf(csv, sizeof csv, "%s/train.csv", dir);
    snprintf(model_path, sizeof model_path, "%s/cli.drvm", dir);
    dv_dataset_t *gen =
        dv_bench_teacher_data(N_ROWS, N_FEATURES, N_CLASSES, 2026);
    int wrc = dv_bench_write_csv(gen, csv);
    dv_dataset_destroy(&gen);
    if (wrc != 0) {
        fprintf(stderr, "dv-bench-ml: %s: %s\n", csv, strerror(errno));
        dv_bench_rmtree(dir);
        return NULL;
    }
    *tf = (train_figures_t){.same_bytes = true,
                            .inproc_s = INFINITY,
                            .loop_s = INFINITY,
                            .cli_s = INFINITY,
                            .job_s = INFINITY,
                            .job_loop_s = INFINITY};
    struct stat st;
    tf->csv_bytes = stat(csv, &st) == 0 ? (double)st.st_size : 0;
    dv_dataset_t *ds = NULL;
    dv_error_t err = {0};
    double t0 = now();
    if (dv_csv_load(&ds, csv, NULL, &err) != 0) {
        fprintf(stderr, "dv-bench-ml: %s\n", err.text);
        dv_bench_rmtree(dir);
        return NULL;
    }
    tf->parse_s = now() - t0;
    printf("csv %d x %d, %.0f MB: parsed in %.2f s (%.0f MB/s, %.0f rows/s)\n",
           N_ROWS, N_FEATURES, tf->csv_bytes / 1e6, tf->parse_s,
           tf->csv_bytes / 1e6 / tf->parse_s, N_ROWS / tf->parse_s);

    // The CLI reads SOURCE_DATE_EPOCH for its model's creation time.
    char sde[32];
    snprintf(sde, sizeof sde, "%d", CREATED_UNIX);
    setenv("SOURCE_DATE_EPOCH", sde, 1);
    char drover[PATH_MAX + 16];
    snprintf(drover, sizeof drover, "%s/drover", bin_dir);
    cluster_t cluster;
    if (cluster_start(&cluster, bin_dir, dir, threads) != 0) {
        dv_dataset_destroy(&ds);
        dv_bench_rmtree(dir);
        return NULL;
    }
    tf->load_before = dv_bench_load_1m();
    dv_model_t *model = NULL;
    bool failed = false;
    for (int r = 0; r < rounds && !failed; r++) {
        dv_model_t *m = NULL;
        train_clock_t c = train_inprocess(ds, &m);
        double whole = c.end - c.start, loop = c.loop_end - c.loop_start;
        if (whole < tf->inproc_s) {
            tf->inproc_s = whole;
            tf->setup_s = c.loop_start - c.start;
            tf->final_s = c.end - c.loop_end;
        }
        tf->loop_s = loop < tf->loop_s ? loop : tf->loop_s;
        dv_model_destroy(&model);
        model = m;
        uint32_t e = 0;
        double cli = train_cli(drover, csv, model_path, threads, &e);
        double job_loop = 0;
        char job_sha[DV_SHA256_HEX] = "", cli_sha[DV_SHA256_HEX];
        double job =
            cli < 0 ? -1 : train_job(drover, &cluster, csv, &job_loop, job_sha);
        if (cli < 0 || job < 0) {
            failed = true;
            break;
        }
        tf->cli_s = cli < tf->cli_s ? cli : tf->cli_s;
        tf->cli_epochs = e;
        tf->job_s = job < tf->job_s ? job : tf->job_s;
        tf->job_loop_s = job_loop < tf->job_loop_s ? job_loop : tf->job_loop_s;
        file_sha256(model_path, cli_sha);
        tf->same_bytes = tf->same_bytes && e == c.epochs &&
                         same_model_bytes(m, model_path) &&
                         strcmp(cli_sha, job_sha) == 0;
        printf("  round %d: in-process %.2f s (epochs %.2f s), drover local "
               "train %.2f s, train job %.2f s (epochs %.2f s)\n",
               r + 1, whole, loop, cli, job, job_loop);
    }
    tf->load_after = dv_bench_load_1m();
    cluster_stop(&cluster);
    dv_bench_rmtree(dir);
    if (failed) {
        dv_model_destroy(&model);
        dv_dataset_destroy(&ds);
        return NULL;
    }
    *ds_out = ds;
    return model;
}

int
main(int argc, char **argv)
{
    const char *out_path = "bench/results/ml.json";
    // As `drover local`: --threads, else DROVER_THREADS, else every core.
    const char *env_threads = getenv("DROVER_THREADS");
    int threads =
        env_threads ? atoi(env_threads) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    int rounds = 3;
    char bin_dir[PATH_MAX];
    own_dir(bin_dir, sizeof bin_dir);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out_path = argv[++i];
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--bin-dir") == 0 && i + 1 < argc) {
            snprintf(bin_dir, sizeof bin_dir, "%s", argv[++i]);
        } else {
            fprintf(
                stderr,
                "usage: dv-bench-ml [--out FILE] [--threads N] "
                "[--rounds N] [--bin-dir DIR]\n"
                "  --threads  OpenBLAS threads, in-process and for "
                "drover (default: DROVER_THREADS, else all cores)\n"
                "  --rounds   training runs of each kind, alternating; "
                "the best counts (3)\n"
                "  --bin-dir  where drover, drover-broker and drover-worker "
                "are (default: this program's "
                "folder)\n");
            return 2;
        }
    }
    threads = threads > 0 ? threads : 1;
    rounds = rounds > 0 ? rounds : 1;
    dv_blas_set_threads(threads);
    char drover[PATH_MAX + 16];
    snprintf(drover, sizeof drover, "%s/drover", bin_dir);
    if (access(drover, X_OK) != 0) {
        fprintf(stderr, "dv-bench-ml: no %s (build it, or pass --bin-dir)\n",
                drover);
        return 1;
    }

    double gemm_square = sgemm_gflops(1024, 1024, 1024);
    double gemm_mlp = sgemm_gflops(256, 512, 256);
    printf("sgemm 1024^3:          %8.1f GFLOP/s (%d threads)\n", gemm_square,
           threads);
    printf("sgemm 256x512x256:     %8.1f GFLOP/s\n", gemm_mlp);

    train_figures_t tf;
    dv_dataset_t *ds = NULL;
    dv_model_t *model = bench_training(bin_dir, threads, rounds, &tf, &ds);
    if (!model) {
        return 1;
    }
    // FLOPs per sample: forward 2 * sum(in * out); training adds dW for
    // every layer and dX for all but the first (3x forward minus one layer).
    const double fwd = 2.0 * (256.0 * 512 + 512.0 * 256 + 256.0 * 10);
    const double train_flops = 3.0 * fwd - 2.0 * 256.0 * 512;
    const double samples = (double)N_ROWS * N_EPOCHS;
    double inproc_rate = samples / tf.inproc_s;
    double loop_rate = samples / tf.loop_s;
    double cli_rate = (double)N_ROWS * tf.cli_epochs / tf.cli_s;
    double job_rate = samples / tf.job_loop_s;
    double loop_gflops = loop_rate * train_flops / 1e9;
    double ratio = cli_rate / inproc_rate;
    printf("mlp 256-512-256-10 train (Adam, batch 256, %d epochs), best of "
           "%d, load %.2f -> %.2f:\n",
           N_EPOCHS, rounds, tf.load_before, tf.load_after);
    printf("  in-process dv_train: %8.0f samples/s (%.2f s: set-up %.2f, "
           "epochs %.2f, final pass %.2f)\n",
           inproc_rate, tf.inproc_s, tf.setup_s,
           tf.inproc_s - tf.setup_s - tf.final_s, tf.final_s);
    printf("  epoch loop alone:    %8.0f samples/s = %.1f GFLOP/s, %.2f of "
           "sgemm; train acc %.3f\n",
           loop_rate, loop_gflops, loop_gflops / gemm_square,
           model->meta.train_metrics.accuracy);
    printf("  drover local train:  %8.0f samples/s (%.2f s)\n", cli_rate,
           tf.cli_s);
    printf("  train job, epochs:   %8.0f samples/s (%.2f s; the whole job "
           "%.2f s); same model bytes, all three: %s\n",
           job_rate, tf.job_loop_s, tf.job_s, tf.same_bytes ? "yes" : "NO");
    printf("  ratio drover local train / in-process: %.2f (goal >= 0.9: %s); "
           "/ epoch loop alone: %.2f\n",
           ratio, ratio >= 0.9 ? "met" : "NOT met", cli_rate / loop_rate);
    printf("  ratio train job epochs / in-process epoch loop: %.2f (goal >= "
           "0.9: %s)\n",
           job_rate / loop_rate,
           job_rate >= 0.9 * loop_rate ? "met" : "NOT met");

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
            "  \"train_ratio_to_sgemm\": %.3f,\n",
            u.machine, u.release, sysconf(_SC_NPROCESSORS_ONLN), threads,
            gemm_square, gemm_mlp, loop_rate, loop_gflops,
            loop_gflops / gemm_square);
    fprintf(f,
            "  \"train\": {\"rows\": %d, \"features\": %d, \"epochs\": %d, "
            "\"rounds\": %d, \"load_1m_before\": %.2f, "
            "\"load_1m_after\": %.2f,\n"
            "    \"csv_bytes\": %.0f, \"parse_s\": %.3f,\n"
            "    \"inprocess_s\": %.3f, \"inprocess_samples_per_s\": %.0f, "
            "\"setup_s\": %.3f, \"final_pass_s\": %.3f,\n"
            "    \"loop_s\": %.3f, \"loop_samples_per_s\": %.0f,\n"
            "    \"cli_s\": %.3f, \"cli_samples_per_s\": %.0f,\n"
            "    \"job_s\": %.3f, \"job_loop_s\": %.3f, "
            "\"job_loop_samples_per_s\": %.0f, \"same_model_bytes\": %s,\n"
            "    \"ratio_cli_to_inprocess\": %.3f, "
            "\"ratio_cli_to_loop\": %.3f, \"ratio_job_loop_to_loop\": %.3f},\n"
            "  \"inference\": [\n",
            N_ROWS, N_FEATURES, N_EPOCHS, rounds, tf.load_before, tf.load_after,
            tf.csv_bytes, tf.parse_s, tf.inproc_s, inproc_rate, tf.setup_s,
            tf.final_s, tf.loop_s, loop_rate, tf.cli_s, cli_rate, tf.job_s,
            tf.job_loop_s, job_rate, tf.same_bytes ? "true" : "false", ratio,
            cli_rate / loop_rate, job_rate / loop_rate);
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
