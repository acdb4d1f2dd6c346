// dv-bench-sched — what the broker's scheduler (dv_sched) costs per job as
// an operator adds workers and models: each cell registers W workers (4
// slots each) holding M model keys each (a seventh of them hold the key a
// job asks for: affinity matters), then submits, dispatches and finishes
// jobs one at a time, every job needing one of the M models (none when M
// is 0). Every free worker is a candidate for every job, so this is the
// dispatch path at its widest. In-process, one thread, no I/O.
//
// Prints microseconds per job and each cell's cost against the 2-worker
// cell of the same M (how the cost grows with the fleet). Then deep
// queues: an echo job dispatched beside D train jobs that wait at their
// workers' train cap (in its own queue, and in theirs, behind them), and
// a job whose batch looks through D jobs of another model for riders
// (dv_sched_ride). Writes JSON (--out, default
// bench/results/sched.json). Figures, never assertions.
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

// Seconds per echo job on queue "q" (among: on "train" itself, behind
// them) while queue "train" holds depth train jobs that cannot start (the
// one worker runs one, at its train cap of 1): every dispatch round meets
// the train queue's heavy head first.
static double
cell_heavy(size_t depth, size_t jobs, bool among)
{
    dv_sched_t *s = dv_sched_new();
    dv_sched_worker_add(s, 1, 4);
    dv_sched_worker_heavy_cap(s, 1, 1);
    uint64_t id = 1, job = 0, worker = 0;
    uint32_t attempt = 0;
    for (size_t i = 0; i <= depth; i++, id++) {
        dv_sched_submit(s, id, "train", "", 1);
        dv_sched_set_heavy(s, id);
    }
    dv_sched_next(s, &job, &worker, &attempt); // the one that runs
    double t0 = dv_bench_now_s();
    for (size_t i = 0; i < jobs; i++, id++) {
        dv_sched_submit(s, id, among ? "train" : "q", "", 3);
        if (dv_sched_next(s, &job, &worker, &attempt)) {
            dv_sched_finish(s, job, worker);
        }
        dv_sched_next(s, &job, &worker, &attempt); // a round finding none
    }
    double t = (dv_bench_now_s() - t0) / (double)jobs;
    dv_sched_destroy(&s);
    return t;
}

static bool
fits_all(uint64_t job, void *arg)
{
    (void)job;
    (void)arg;
    return true;
}

// Seconds per dispatch of a job of model "b" with a ride offered, while
// depth jobs of model "a" wait behind it in its queue and level (their
// worker busy): its batch looks through them for more of b. The b job is
// given back after each ride (to the front again), so every round
// dispatches it anew.
static double
cell_ride(size_t depth, size_t jobs)
{
    dv_sched_t *s = dv_sched_new();
    dv_sched_worker_add(s, 1, 1);
    dv_sched_worker_add(s, 2, 1);
    uint64_t id = 1, job = 0, worker = 0, riders[64];
    uint32_t attempt = 0, attempts[64];
    dv_sched_submit(s, id++, "q", "a@1", 3);
    dv_sched_next(s, &job, &worker, &attempt); // a worker busy with an a
    dv_sched_submit(s, id++, "q", "b@1", 3);
    for (size_t i = 0; i < depth; i++) {
        dv_sched_submit(s, id++, "q", "a@1", 3);
    }
    double t0 = dv_bench_now_s();
    for (size_t i = 0; i < jobs; i++) {
        if (!dv_sched_next(s, &job, &worker, &attempt)) {
            break;
        }
        dv_sched_ride(s, job, fits_all, NULL, riders, attempts, 64);
        dv_sched_give_back(s, job, worker);
    }
    double t = (dv_bench_now_s() - t0) / (double)jobs;
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
    static const size_t depths[] = {1000, 10000, 100000};
    enum { ND = sizeof depths / sizeof *depths };
    double heavy[ND], among[ND], ride[ND];
    printf("\ndeep queues, microseconds per job: an echo job beside D "
           "train jobs held at\ntheir cap (its own queue), among them (the "
           "same queue, behind them); a\nmodel-b job whose batch may take "
           "more of b among D jobs of a\n%8s  %12s  %12s  %12s\n",
           "D", "echo beside", "echo among", "ride");
    for (size_t d = 0; d < ND; d++) {
        heavy[d] = cell_heavy(depths[d], 20000, false) * 1e6;
        among[d] = cell_heavy(depths[d], 20000, true) * 1e6;
        ride[d] = cell_ride(depths[d], 20000) * 1e6;
        printf("%8zu  %12.2f  %12.2f  %12.2f\n", depths[d], heavy[d], among[d],
               ride[d]);
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
    fprintf(f, "  ],\n  \"deep\": [\n");
    for (size_t d = 0; d < ND; d++) {
        fprintf(f,
                "    {\"depth\": %zu, \"echo_beside_train_us\": %.3f, "
                "\"echo_among_train_us\": %.3f, \"ride_us\": %.3f}%s\n",
                depths[d], heavy[d], among[d], ride[d], d == ND - 1 ? "" : ",");
    }
    fprintf(f, "  ]\n}\n");
    fclose(f);
    printf("wrote %s\n", out);
    return 0;
}
