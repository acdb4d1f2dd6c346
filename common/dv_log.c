// dv_log — timestamped single-line log records on stderr.
//
// Each record is formatted into a stack buffer and written with one write(2),
// so lines from several threads never interleave.
#include "dv_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dv_err.h"

static const char *s_progname = "drover";        // shown before [pid]
static dv_log_level_t s_min_level = DV_LOG_INFO; // lines below are dropped

void
dv_log_init(const char *progname, dv_log_level_t min_level)
{
    s_progname = progname;
    s_min_level = min_level;
}

dv_log_level_t
dv_log_level(void)
{
    return s_min_level;
}

int
dv_log_level_parse(const char *text, dv_log_level_t *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = (dv_log_level_t)i;
            return 0;
        }
    }
    return DV_EINVAL;
}

void
dv_log_write(dv_log_level_t level, const char *module, const char *fmt, ...)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n +=
        (size_t)snprintf(line + n, sizeof line - n,
                         ".%03ldZ %s[%ld] %c %s: ", ts.tv_nsec / 1000000,
                         s_progname, (long)getpid(), "DIWE"[level & 3], module);
    if (n < sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
        va_end(ap);
        n = m < 0 ? n : n + (size_t)m;
    }
    if (n > sizeof line - 2) {
        n = sizeof line - 2; // truncated: keep the newline
    }
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w; // nowhere to report a failed log write
}
