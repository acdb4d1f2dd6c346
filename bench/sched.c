// dv-bench-sched — what the broker's scheduler (dv_sched) costs per job as
// an operator adds workers and models: each cell registers W workers (4
// slots each) holding M model keys each (a seventh of them hold the key a
// job asks for: affinity matters), then submits, dispatches and finishes
// jobs one at a time, every job needing one of the M models (none when M
// is 0). Every free worker is a candidate for every job, so this is the
// dispatch path at its widest. In-process, one thread, no I/O.
//
// Prints microseconds per job and each cell's cost against the 2-worker
// cell of the same M (how the cost grows with the fleet); writes JSON
// (--out, default bench/results/sched.json). Figures, never assertions.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_bench.h"
#include "dv_sched.h"

#define KEY_BYTES 64

// Seconds per job for W workers holding M keys each, over jobs jobs.
static double
cell(size_t W, size_t M, size_t jobs)
{
    dv_sched_t *s = dv_sched_new();
    char **keys = malloc((M ? M : 1) * sizeof *keys);
    for (size_t m = 0; m < M; m++) {
        keys[m] = malloc(KEY_BYTES);
    }
    for (size_t w = 0; w < W; w++) {
        dv_sched_worker_add(s, w + 1, 4);
        for (size_t m = 0; m < M; m++) { // worker w's keys: 7 variants
            snprintf(keys[m], KEY_BYTES, "model-%04zu-%zu@1", m, w % 7);
        }
        dv_sched_worker_models(s, w + 1, (const char *const *)keys, M);
    }
    double t0 = dv_bench_now_s();
    for (size_t i = 0; i < jobs; i++) {
        char model[KEY_BYTES] = "";
        if (M) {
            snprintf(model, sizeof model, "model-%04zu-%zu@1", i % M, i % 7);
        }
        dv_sched_submit(s, i + 1, "q", model, 3);
        uint64_t job = 0, worker = 0;
        uint32_t attempt = 0;
        if (dv_sched_next(s, &job, &worker, &attempt)) {
            dv_sched_finish(s, job, worker);
        }
    }
    double t = (dv_bench_now_s() - t0) / (double)jobs;
    for (size_t m = 0; m < M; m++) {
        free(keys[m]);
    }
    free(keys);
    dv_sched_destroy(&s);
    return t;
}

int
main(int argc, char **argv)
{
    const char *out = "bench/results/sched.json";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else {
            fprintf(stderr, "usage: dv-bench-sched [--out FILE]\n");
            return 2;
        }
    }
    static const size_t workers[] = {2, 10, 100, 1000, 5000};
    static const size_t models[] = {0, 10, 100, 1000};
    enum { NW = sizeof workers / sizeof *workers };
    enum { NM = sizeof models / sizeof *models };
    double us[NW][NM];
    printf("scheduler cost per job (submit, dispatch, finish), microseconds; "
           "x: against 2 workers\n%8s",
           "workers");
    for (size_t m = 0; m < NM; m++) {
        printf("  %5zu models     ", models[m]);
    }
    printf("\n");
    for (size_t w = 0; w < NW; w++) {
        printf("%8zu", workers[w]);
        for (size_t m = 0; m < NM; m++) {
            if (workers[w] * models[m] > 1000000) { // ~100 MB of keys
                us[w][m] = -1;
                printf("  %8s %7s", "-", "");
                continue;
            }
            // Fewer jobs in the wide cells: each a second or less.
            size_t jobs = workers[w] >= 1000  ? 20000
                          : workers[w] >= 100 ? 100000
                                              : 300000;
            us[w][m] = cell(workers[w], models[m], jobs) * 1e6;
            printf("  %8.2f (%5.1fx)", us[w][m], us[w][m] / us[0][m]);
            fflush(stdout);
        }
        printf("\n");
    }
    FILE *f = fopen(out, "w");
    if (!f) {
        perror(out);
        return 1;
    }
    fprintf(f, "{\n  \"bench\": \"sched\",\n  \"unit\": \"us per job\",\n"
               "  \"cells\": [\n");
    for (size_t w = 0; w < NW; w++) {
        for (size_t m = 0; m < NM; m++) {
            if (us[w][m] < 0) {
                continue; // not run
            }
            fprintf(f,
                    "    {\"workers\": %zu, \"models\": %zu, \"us\": %.3f, "
                    "\"x_2_workers\": %.2f}%s\n",
                    workers[w], models[m], us[w][m], us[w][m] / us[0][m],
                    w == NW - 1 && m == NM - 2 ? "" : ",");
        }
    }
    fprintf(f, "  ]\n}\n");
    fclose(f);
    printf("wrote %s\n", out);
    return 0;
}
