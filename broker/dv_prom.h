// dv_prom — Prometheus text exposition (format 0.0.4) and the histograms
// behind it.
//
// A dv_prom_t is a growing text buffer: declare a family (HELP and TYPE
// once), then write its samples with their labels; dv_prom_take hands the
// text over. Label values are escaped (backslash, quote, newline) and
// numbers written so Prometheus' parser reads them back exactly (integers
// as integers, +Inf, NaN). Names are the caller's: `drover_` prefix, base
// units, `_total` on counters (docs/ARCHITECTURE.md, Metrics).
//
// dv_hist_t is a fixed-bucket histogram (cumulative when written, as the
// format wants). Plain value type; observing is O(buckets).
#ifndef DV_PROM_H
#define DV_PROM_H

#include <stddef.h>
#include <stdint.h>

typedef struct dv_prom dv_prom_t;

// Histogram bucket upper bounds (ascending; +Inf is implicit), at most
// DV_HIST_MAX_BUCKETS of them.
#define DV_HIST_MAX_BUCKETS 24

typedef struct {
    const double *bounds; // borrowed, static: n_bounds ascending bounds
    size_t n_bounds;
    uint64_t counts[DV_HIST_MAX_BUCKETS + 1]; // per bucket (last: +Inf)
    uint64_t count;                           // observations
    double sum;                               // their sum
} dv_hist_t;

// Bounds for durations in seconds (100 µs .. 5 min) and for sizes in rows
// (1 .. 65,536), shared by the broker's histograms.
extern const double dv_hist_seconds[];
extern const size_t dv_hist_seconds_n;
extern const double dv_hist_rows[];
extern const size_t dv_hist_rows_n;

// A histogram over bounds (n of them, at most DV_HIST_MAX_BUCKETS).
void dv_hist_init(dv_hist_t *h, const double *bounds, size_t n);
void dv_hist_observe(dv_hist_t *h, double v);

// A new empty buffer (never NULL: aborts on OOM like dv_malloc).
dv_prom_t *dv_prom_new(void);
void dv_prom_destroy(dv_prom_t **self_p);

// `# HELP name help` and `# TYPE name type` (type: "counter", "gauge",
// "histogram").
void dv_prom_family(dv_prom_t *self,
                    const char *name,
                    const char *type,
                    const char *help);

// One sample: name{k1="v1",...} value. labels: n_labels pairs, key then
// value (NULL-terminated array not needed: labels[2 * i], labels[2 * i + 1]).
void dv_prom_sample(dv_prom_t *self,
                    const char *name,
                    const char *const *labels,
                    size_t n_labels,
                    double value);

// A histogram's samples: name_bucket{...,le="b"} (cumulative, +Inf last),
// name_sum, name_count.
void dv_prom_hist(dv_prom_t *self,
                  const char *name,
                  const char *const *labels,
                  size_t n_labels,
                  const dv_hist_t *h);

// Append raw text (already in the format), or formatted text: the buffer
// also serves the status page's JSON (dv_monitor.c).
void dv_prom_raw(dv_prom_t *self, const char *text);
void dv_prom_printf(dv_prom_t *self, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

// The text so far (caller frees; *len its length); the buffer is empty
// again.
char *dv_prom_take(dv_prom_t *self, size_t *len);

#endif
