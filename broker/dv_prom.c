// dv_prom — Prometheus text format writer and histograms (see dv_prom.h).
#include "dv_prom.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_mem.h"

struct dv_prom {
    char *buf;
    size_t len, cap;
};

const double dv_hist_seconds[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25,   0.5,     1,      2.5,   5,      10,    30,   60,    300};
const size_t dv_hist_seconds_n =
    sizeof dv_hist_seconds / sizeof dv_hist_seconds[0];
const double dv_hist_rows[] = {1,   2,   4,    8,    16,   32,    64,   128,
                               256, 512, 1024, 2048, 4096, 16384, 65536};
const size_t dv_hist_rows_n = sizeof dv_hist_rows / sizeof dv_hist_rows[0];

void
dv_hist_init(dv_hist_t *h, const double *bounds, size_t n)
{
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n_bounds = n < DV_HIST_MAX_BUCKETS ? n : DV_HIST_MAX_BUCKETS;
}

void
dv_hist_observe(dv_hist_t *h, double v)
{
    if (isnan(v)) {
        return;
    }
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i]) {
        i++;
    }
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

dv_prom_t *
dv_prom_new(void)
{
    dv_prom_t *self = dv_calloc(1, sizeof *self);
    self->cap = 4096;
    self->buf = dv_malloc(self->cap);
    self->buf[0] = '\0';
    return self;
}

void
dv_prom_destroy(dv_prom_t **self_p)
{
    if (self_p && *self_p) {
        free((*self_p)->buf);
        free(*self_p);
        *self_p = NULL;
    }
}

static void vput(dv_prom_t *self, const char *fmt, va_list args)
    __attribute__((format(printf, 2, 0)));

static void
vput(dv_prom_t *self, const char *fmt, va_list args)
{
    for (;;) {
        va_list ap;
        va_copy(ap, args);
        int n =
            vsnprintf(self->buf + self->len, self->cap - self->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            return;
        }
        if ((size_t)n < self->cap - self->len) {
            self->len += (size_t)n;
            return;
        }
        self->cap = (self->cap + (size_t)n + 1) * 2;
        self->buf = dv_realloc(self->buf, self->cap);
    }
}

static void put(dv_prom_t *self, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
put(dv_prom_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vput(self, fmt, ap);
    va_end(ap);
}

void
dv_prom_printf(dv_prom_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vput(self, fmt, ap);
    va_end(ap);
}

// v in the fewest digits that read back as v (%.17g always does, but
// prints 0.1 as 0.10000000000000001).
static void
shortest(char *buf, size_t size, double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(buf, size, "%.0f", v); // 10, not 1e+01
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) {
            return;
        }
    }
}

// A value as the format reads it: integers exactly, else shortest
// round-trip, +Inf/-Inf/NaN spelt as Prometheus does.
static void
put_value(dv_prom_t *self, double v)
{
    if (isnan(v)) {
        put(self, "NaN");
    } else if (isinf(v)) {
        put(self, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        put(self, "%.0f", v);
    } else {
        char buf[40];
        shortest(buf, sizeof buf, v);
        put(self, "%s", buf);
    }
}

static void
put_escaped(dv_prom_t *self, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            put(self, "\\%c", *s);
        } else if (*s == '\n') {
            put(self, "\\n");
        } else {
            put(self, "%c", *s);
        }
    }
}

// {k="v",...} with one more pair (extra_k, extra_v) when extra_k is set.
static void
put_labels(dv_prom_t *self,
           const char *const *labels,
           size_t n,
           const char *extra_k,
           const char *extra_v)
{
    if (n == 0 && !extra_k) {
        return;
    }
    put(self, "{");
    for (size_t i = 0; i < n; i++) {
        put(self, "%s%s=\"", i ? "," : "", labels[2 * i]);
        put_escaped(self, labels[2 * i + 1] ? labels[2 * i + 1] : "");
        put(self, "\"");
    }
    if (extra_k) {
        put(self, "%s%s=\"%s\"", n ? "," : "", extra_k, extra_v);
    }
    put(self, "}");
}

void
dv_prom_family(dv_prom_t *self,
               const char *name,
               const char *type,
               const char *help)
{
    put(self, "# HELP %s ", name);
    for (const char *s = help; *s; s++) { // HELP escapes \ and newline
        put(self, *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : "%c", *s);
    }
    put(self, "\n# TYPE %s %s\n", name, type);
}

void
dv_prom_sample(dv_prom_t *self,
               const char *name,
               const char *const *labels,
               size_t n_labels,
               double value)
{
    put(self, "%s", name);
    put_labels(self, labels, n_labels, NULL, NULL);
    put(self, " ");
    put_value(self, value);
    put(self, "\n");
}

void
dv_prom_hist(dv_prom_t *self,
             const char *name,
             const char *const *labels,
             size_t n_labels,
             const dv_hist_t *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cum += h->counts[i];
        char le[40];
        if (i < h->n_bounds) {
            shortest(le, sizeof le, h->bounds[i]);
        } else {
            snprintf(le, sizeof le, "+Inf");
        }
        put(self, "%s_bucket", name);
        put_labels(self, labels, n_labels, "le", le);
        put(self, " %llu\n", (unsigned long long)cum);
    }
    put(self, "%s_sum", name);
    put_labels(self, labels, n_labels, NULL, NULL);
    put(self, " ");
    put_value(self, h->sum);
    put(self, "\n%s_count", name);
    put_labels(self, labels, n_labels, NULL, NULL);
    put(self, " %llu\n", (unsigned long long)h->count);
}

void
dv_prom_raw(dv_prom_t *self, const char *text)
{
    put(self, "%s", text);
}

char *
dv_prom_take(dv_prom_t *self, size_t *len)
{
    char *out = self->buf;
    *len = self->len;
    self->cap = 4096;
    self->len = 0;
    self->buf = dv_malloc(self->cap);
    self->buf[0] = '\0';
    return out;
}
