// test_log — log lines: format, level filtering, one write per line.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dv_log.h"
#include "dv_test.h"

static int s_evaluated; // counts argument evaluations

static int
side_effect(void)
{
    return ++s_evaluated;
}

// Run the logging calls with stderr redirected to a file; return its text.
static const char *
capture(void (*fn)(void))
{
    static char text[4096];
    char *dir = dv_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/log", dir);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *f = fopen(path, "w");
    dup2(fileno(f), STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    fclose(f);
    size_t len = 0;
    unsigned char *data = dv_test_read_file(path, &len);
    len = len < sizeof text - 1 ? len : sizeof text - 1;
    memcpy(text, data, len);
    text[len] = '\0';
    free(data);
    dv_test_rmdir(dir);
    free(dir);
    return text;
}

static void
write_lines(void)
{
    dv_log_init("drover-test", DV_LOG_INFO);
    dv_log(DV_LOG_WARN, "queue", "job %d rejected: %s", 42, "full");
    dv_log(DV_LOG_DEBUG, "queue", "hidden %d", side_effect());
    dv_log(DV_LOG_ERROR, "store", "%s", "disk full");
}

static void
test_format_and_filter(void)
{
    s_evaluated = 0;
    const char *text = capture(write_lines);
    // 2026-11-24T12:00:00.123Z drover-test[812] W queue: job 42 rejected: full
    int year = 0, pid = 0;
    char level = 0;
    int n =
        sscanf(text, "%4d-%*2d-%*2dT%*2d:%*2d:%*2d.%*3dZ drover-test[%d] %c",
               &year, &pid, &level);
    DV_CHECK_EQ(n, 3);
    DV_CHECK(year >= 2024);
    DV_CHECK_EQ(pid, getpid());
    DV_CHECK_EQ(level, 'W');
    DV_CHECK(strstr(text, " W queue: job 42 rejected: full\n") != NULL);
    DV_CHECK(strstr(text, " E store: disk full\n") != NULL);
    DV_CHECK(strstr(text, "hidden") == NULL);
    DV_CHECK_EQ(s_evaluated, 0); // filtered lines never evaluate arguments
}

static void
test_level_parse(void)
{
    dv_log_level_t lvl;
    DV_CHECK_EQ(dv_log_level_parse("debug", &lvl), 0);
    DV_CHECK_EQ(lvl, DV_LOG_DEBUG);
    DV_CHECK_EQ(dv_log_level_parse("error", &lvl), 0);
    DV_CHECK_EQ(lvl, DV_LOG_ERROR);
    DV_CHECK_EQ(dv_log_level_parse("loud", &lvl), DV_EINVAL);
}

static void
write_json_lines(void)
{
    dv_log_init("drover-test", DV_LOG_DEBUG);
    dv_log_set_format(DV_LOG_JSON);
    dv_log(DV_LOG_DEBUG, "jobs", "job %d: \"quoted\" \\ tab\there", 7);
    dv_log(DV_LOG_ERROR, "store", "two\nlines");
    dv_log_set_format(DV_LOG_TEXT);
}

static void
test_json_format(void)
{
    const char *text = capture(write_json_lines);
    // one object per line, strings escaped, newline inside msg escaped
    const char *second = strchr(text, '\n');
    DV_CHECK(second != NULL);
    DV_CHECK(strncmp(text, "{\"ts\":\"", 7) == 0);
    DV_CHECK(strstr(text, "\"level\":\"debug\",\"proc\":\"drover-test\","
                          "\"pid\":") != NULL);
    DV_CHECK(strstr(text, "\"module\":\"jobs\",\"msg\":\"job 7: "
                          "\\\"quoted\\\" \\\\ tab\\u0009here\"}\n") != NULL);
    DV_CHECK(strstr(text, "\"level\":\"error\"") != NULL);
    DV_CHECK(strstr(text, "\"msg\":\"two\\nlines\"}\n") != NULL);
    DV_CHECK_EQ(strchr(second + 1, '\n')[1], '\0'); // exactly two lines
}

static void
test_flags(void)
{
    static const struct {
        const char *flag, *value;
        int rc;
    } rows[] = {
        {"--log-level", "debug", 2},        {"--log-level", "warn", 2},
        {"--log-level", "loud", DV_EINVAL}, {"--log-level", NULL, DV_EINVAL},
        {"--log-format", "json", 2},        {"--log-format", "text", 2},
        {"--log-format", "xml", DV_EINVAL}, {"--other", "x", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        char *argv[] = {"prog", (char *)rows[i].flag, (char *)rows[i].value,
                        NULL};
        int argc = rows[i].value ? 3 : 2;
        dv_error_t err = {0};
        DV_CHECK_EQ(dv_log_flag(argc, argv, 1, &err), rows[i].rc);
        if (rows[i].rc < 0) {
            DV_CHECK(strstr(err.text, rows[i].flag) != NULL);
        }
    }
    char *argv[] = {"prog", "--log-level", "error", NULL};
    dv_error_t err = {0};
    dv_log_flag(3, argv, 1, &err);
    DV_CHECK_EQ(dv_log_level(), DV_LOG_ERROR);
    dv_log_set_level(DV_LOG_INFO);
}

static const dv_test_case_t cases[] = {
    {"format and level filter", test_format_and_filter},
    {"level names", test_level_parse},
    {"JSON lines: escaped, one object per line", test_json_format},
    {"--log-level / --log-format", test_flags},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
