// dv_log — one line per event, to stderr.
//
//   2025-06-01T12:00:00.123Z drover-broker[812] W queue: job 42 rejected: ...
//
// or, with the JSON format (one object per line, for log shippers):
//
//   {"ts":"2025-06-01T12:00:00.123Z","level":"warn","proc":"drover-broker",
//    "pid":812,"module":"queue","msg":"job 42 rejected: ..."}
//
// For daemons and the CLI only: common/ and clients/ libraries return errors
// and do not log. The level is tested before the arguments are evaluated
// (Redis serverLog), so disabled debug lines cost one comparison.
#ifndef DV_LOG_H
#define DV_LOG_H

#include "dv_err.h"

typedef enum {
    DV_LOG_DEBUG = 0,
    DV_LOG_INFO = 1,
    DV_LOG_WARN = 2,
    DV_LOG_ERROR = 3,
} dv_log_level_t;

typedef enum {
    DV_LOG_TEXT = 0,
    DV_LOG_JSON = 1,
} dv_log_format_t;

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

// Change the minimum level or the line format (main(), before threads).
void dv_log_set_level(dv_log_level_t min_level);
void dv_log_set_format(dv_log_format_t format);

// The logging flags every daemon takes, `--log-level debug|info|warn|error`
// and `--log-format text|json`: when argv[i] is one of them, apply it and
// return 2 (the words it used, its value being argv[i + 1]); 0 when
// argv[i] is another argument; DV_EINVAL with the reason in *err when the
// value is missing or unknown. Usage text for them: DV_LOG_FLAGS_USAGE.
int dv_log_flag(int argc, char **argv, int i, dv_error_t *err);

#define DV_LOG_FLAGS_USAGE                                                     \
    "--log-level debug|info|warn|error (default info; debug adds each "        \
    "job's\nlifecycle), --log-format text|json (default text: one JSON "       \
    "object per line\nfor log shippers).\n"

// Parse "debug"/"info"/"warn"/"error" into *out. Returns 0 or DV_EINVAL.
int dv_log_level_parse(const char *text, dv_log_level_t *out);

// Write one line (use dv_log, which checks the level first). Thread-safe:
// each line goes out in one write.
void
dv_log_write(dv_log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
