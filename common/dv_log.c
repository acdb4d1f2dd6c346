// dv_log — timestamped single-line log records on stderr.
//
// Each record is formatted into a stack buffer and written with one write(2),
// so lines from several threads never interleave.
#include "dv_log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dv_err.h"

static const char *s_progname = "drover";        // shown before [pid]
static dv_log_level_t s_min_level = DV_LOG_INFO; // lines below are dropped
static dv_log_format_t s_format = DV_LOG_TEXT;

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

void
dv_log_set_level(dv_log_level_t min_level)
{
    s_min_level = min_level;
}

void
dv_log_set_format(dv_log_format_t format)
{
    s_format = format;
}

int
dv_log_flag(int argc, char **argv, int i, dv_error_t *err)
{
    bool level = strcmp(argv[i], "--log-level") == 0;
    bool format = strcmp(argv[i], "--log-format") == 0;
    if (!level && !format) {
        return 0;
    }
    const char *v = i + 1 < argc ? argv[i + 1] : "";
    if (level) {
        dv_log_level_t l;
        if (dv_log_level_parse(v, &l) != 0) {
            return dv_errorf(err, DV_EINVAL,
                             "--log-level '%s': debug, info, warn or error", v);
        }
        s_min_level = l;
    } else if (strcmp(v, "text") == 0 || strcmp(v, "json") == 0) {
        s_format = v[0] == 'j' ? DV_LOG_JSON : DV_LOG_TEXT;
    } else {
        return dv_errorf(err, DV_EINVAL, "--log-format '%s': text or json", v);
    }
    return 2;
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

// s as the inside of a JSON string into out (at most size - 1 bytes, always
// terminated; a cut never splits an escape). Returns the length written.
static size_t
json_escape(char *out, size_t size, const char *s)
{
    size_t n = 0;
    for (; *s && n + 7 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, size - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c; // UTF-8 passes through
        }
    }
    out[n] = '\0';
    return n;
}

void
dv_log_write(dv_log_level_t level, const char *module, const char *fmt, ...)
{
    char msg[1024], line[2304], stamp[40];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t sn = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + sn, sizeof stamp - sn, ".%03ldZ", ts.tv_nsec / 1000000);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0) {
        msg[0] = '\0';
    }
    size_t n;
    if (s_format == DV_LOG_JSON) {
        static const char *const names[] = {"debug", "info", "warn", "error"};
        n = (size_t)snprintf(line, sizeof line,
                             "{\"ts\":\"%s\",\"level\":\"%s\",\"proc\":\"%s\","
                             "\"pid\":%ld,\"module\":\"%s\",\"msg\":\"",
                             stamp, names[level & 3], s_progname,
                             (long)getpid(), module);
        if (n < sizeof line) {
            n += json_escape(line + n, sizeof line - n - 3, msg);
            line[n++] = '"';
            line[n++] = '}';
        }
    } else {
        n = (size_t)snprintf(line, sizeof line, "%s %s[%ld] %c %s: %s", stamp,
                             s_progname, (long)getpid(), "DIWE"[level & 3],
                             module, msg);
    }
    if (n > sizeof line - 2) {
        n = sizeof line - 2; // truncated: keep the newline
    }
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w; // nowhere to report a failed log write
}
