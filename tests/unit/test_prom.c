// test_prom — the Prometheus text writer: families, escaped labels, values
// as the format spells them, cumulative histograms. (The integration test
// test_metrics parses a live broker's /metrics with prometheus_client.)
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_prom.h"
#include "dv_test.h"

static void
test_samples(void)
{
    dv_prom_t *p = dv_prom_new();
    dv_prom_family(p, "drover_jobs_total", "counter", "Jobs.\nBy \\ state");
    const char *l[] = {"queue", "a\"b\\c\nd", "state", "done"};
    dv_prom_sample(p, "drover_jobs_total", l, 2, 42);
    dv_prom_sample(p, "drover_up", NULL, 0, 1);
    dv_prom_sample(p, "drover_x", NULL, 0, 0.5);
    dv_prom_sample(p, "drover_y", NULL, 0, INFINITY);
    dv_prom_sample(p, "drover_z", NULL, 0, NAN);
    dv_prom_sample(p, "drover_big", NULL, 0, 12345678901.0);
    size_t len = 0;
    char *text = dv_prom_take(p, &len);
    DV_CHECK_EQ(len, strlen(text));
    DV_CHECK_STR_EQ(text, "# HELP drover_jobs_total Jobs.\\nBy \\\\ state\n"
                          "# TYPE drover_jobs_total counter\n"
                          "drover_jobs_total{queue=\"a\\\"b\\\\c\\nd\","
                          "state=\"done\"} 42\n"
                          "drover_up 1\n"
                          "drover_x 0.5\n"
                          "drover_y +Inf\n"
                          "drover_z NaN\n"
                          "drover_big 12345678901\n");
    free(text);
    text = dv_prom_take(p, &len); // empty again
    DV_CHECK_EQ(len, 0u);
    free(text);
    dv_prom_destroy(&p);
    DV_CHECK(p == NULL);
}

static void
test_histogram(void)
{
    static const double bounds[] = {0.1, 1, 10};
    dv_hist_t h;
    dv_hist_init(&h, bounds, 3);
    double obs[] = {0.05, 0.1, 0.5, 5, 50, NAN};
    for (size_t i = 0; i < sizeof obs / sizeof *obs; i++) {
        dv_hist_observe(&h, obs[i]);
    }
    DV_CHECK_EQ(h.count, 5u); // NaN is not observed
    dv_prom_t *p = dv_prom_new();
    const char *l[] = {"kind", "infer"};
    dv_prom_hist(p, "drover_wait_seconds", l, 1, &h);
    size_t len = 0;
    char *text = dv_prom_take(p, &len);
    DV_CHECK_STR_EQ(text,
                    "drover_wait_seconds_bucket{kind=\"infer\",le=\"0.1\"} 2\n"
                    "drover_wait_seconds_bucket{kind=\"infer\",le=\"1\"} 3\n"
                    "drover_wait_seconds_bucket{kind=\"infer\",le=\"10\"} 4\n"
                    "drover_wait_seconds_bucket{kind=\"infer\",le=\"+Inf\"} 5\n"
                    "drover_wait_seconds_sum{kind=\"infer\"} 55.65\n"
                    "drover_wait_seconds_count{kind=\"infer\"} 5\n");
    free(text);
    dv_prom_destroy(&p);
}

static void
test_grows(void)
{
    dv_prom_t *p = dv_prom_new();
    char name[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "drover_m%d", i);
        dv_prom_sample(p, name, NULL, 0, i);
    }
    size_t len = 0;
    char *text = dv_prom_take(p, &len);
    DV_CHECK(strstr(text, "\ndrover_m4999 4999\n") != NULL);
    DV_CHECK_EQ(len, strlen(text));
    free(text);
    dv_prom_destroy(&p);
}

static const dv_test_case_t cases[] = {
    {"samples: escaping and values", test_samples},
    {"histogram: cumulative buckets, sum, count", test_histogram},
    {"the buffer grows", test_grows},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
