// dv_log — one line per event, to stderr.
//
//   2025-06-01T12:00:00.123Z drover-broker[812] W queue: job 42 rejected: ...
//
// For daemons and the CLI only: common/ and clients/ libraries return errors
// and do not log. The level is tested before the arguments are evaluated
// (Redis serverLog), so disabled debug lines cost one comparison.
#ifndef DV_LOG_H
#define DV_LOG_H

typedef enum {
    DV_LOG_DEBUG = 0,
    DV_LOG_INFO = 1,
    DV_LOG_WARN = 2,
    DV_LOG_ERROR = 3,
} dv_log_level_t;

#define dv_log(level, module, ...)                                             \
    do {                                                                       \
        if ((level) >= dv_log_level()) {                                       \
            dv_log_write((level), (module), __VA_ARGS__);                      \
        }                                                                      \
    } while (0)

// Set the process name shown in each line (borrowed: must outlive logging)
// and the minimum level. Call once from main(), before other threads start.
void dv_log_init(const char *progname, dv_log_level_t min_level);

// Current minimum level.
dv_log_level_t dv_log_level(void);

// Parse "debug"/"info"/"warn"/"error" into *out. Returns 0 or DV_EINVAL.
int dv_log_level_parse(const char *text, dv_log_level_t *out);

// Write one line (use dv_log, which checks the level first). Thread-safe:
// each line goes out in one write.
void
dv_log_write(dv_log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
