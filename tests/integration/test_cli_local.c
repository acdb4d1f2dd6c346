// test_cli_local — the real `drover` binary, run as a process: `drover local
// train|eval|predict|inspect` on the bundled data sets, the quality floors of
// the foundation issue through the CLI, exit codes (0 ok, 1 failure with the
// reason on stderr, 2 usage), and bad files.
//
// Each run is posix_spawn'ed in its own process group with stdout/stderr
// redirected to files in a per-test mkdtemp folder; a run that outlives its
// deadline is killed (SIGKILL to its process group) and fails the case.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dv_test.h"

extern char **environ;

// Deadline for one CLI run. Generous: the suite runs under ASan on 2 cores.
#define RUN_DEADLINE_S 300

static char *s_dir;      // this case's temporary folder
static char s_out[4200]; // path of the last run's stdout
static char s_err[4200]; // path of the last run's stderr

static const char *
drover_bin(void)
{
    const char *bin = getenv("DROVER_BIN");
    return bin ? bin : "drover";
}

static const char *
tmp_path(const char *name)
{
    static char paths[4][4200];
    static int next;
    char *p = paths[next++ & 3];
    snprintf(p, sizeof paths[0], "%s/%s", s_dir, name);
    return p;
}

// Run drover with argv (argv[0] is the binary; NULL-terminated); returns
// its exit status, or -1 when it crashed or hit the deadline.
static int
run_argv(const char *const *argv)
{
    snprintf(s_out, sizeof s_out, "%s/stdout", s_dir);
    snprintf(s_err, sizeof s_err, "%s/stderr", s_dir);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, s_out,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, s_err,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid;
    int rc =
        posix_spawn(&pid, argv[0], &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        fprintf(stderr, "  cannot spawn %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    time_t deadline = time(NULL) + RUN_DEADLINE_S;
    int status;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            break;
        }
        if (time(NULL) > deadline) {
            kill(-pid, SIGKILL); // its process group
            waitpid(pid, &status, 0);
            fprintf(stderr, "  drover %s: deadline passed\n", argv[1]);
            return -1;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!WIFEXITED(status)) {
        fprintf(stderr, "  drover %s died (signal %d)\n", argv[1],
                WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        return -1;
    }
    return WEXITSTATUS(status);
}

// Run drover with the NULL-terminated arguments (run_argv).
static int
run(const char *arg, ...)
{
    const char *argv[64];
    int argc = 0;
    argv[argc++] = drover_bin();
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a && argc < 63; a = va_arg(ap, const char *)) {
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    return run_argv(argv);
}

// Contents of the last run's stdout/stderr (static buffer, NUL-terminated).
static const char *
slurp(const char *path)
{
    static char buf[1 << 20];
    size_t len = 0;
    unsigned char *data = dv_test_read_file(path, &len);
    len = len < sizeof buf - 1 ? len : sizeof buf - 1;
    if (data) {
        memcpy(buf, data, len);
    }
    buf[data ? len : 0] = '\0';
    free(data);
    return buf;
}

// Number after "key": in a JSON object, or NAN.
static double
json_number(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

static void
setup(void)
{
    s_dir = dv_test_tmpdir();
}

static void
teardown(void)
{
    dv_test_rmdir(s_dir);
    free(s_dir);
    s_dir = NULL;
}

// Train on the _train split, evaluate on _test with --json; returns the
// named metric from the JSON (NAN on any failure).
static double
train_eval(const char *set,
           const char *algo,
           const char *metric,
           const char *extra_opt,
           const char *extra_val)
{
    char train[256], test[256];
    snprintf(train, sizeof train, "%s", dv_test_data(set));
    strncat(train, "_train.csv", sizeof train - strlen(train) - 1);
    snprintf(test, sizeof test, "%s", dv_test_data(set));
    strncat(test, "_test.csv", sizeof test - strlen(test) - 1);
    const char *model = tmp_path("m.drvm");
    int rc = extra_opt ? run("local", "train", "--algo", algo, "--data", train,
                             "--out", model, extra_opt, extra_val, NULL)
                       : run("local", "train", "--algo", algo, "--data", train,
                             "--out", model, NULL);
    if (rc != 0) {
        fprintf(stderr, "  train: rc %d: %s\n", rc, slurp(s_err));
        return NAN;
    }
    // Piped, so no progress: stderr stays empty on success.
    if (slurp(s_err)[0] != '\0') {
        fprintf(stderr, "  train wrote to stderr: %s\n", slurp(s_err));
        return NAN;
    }
    rc = run("local", "eval", "--model", model, "--data", test, "--json", NULL);
    if (rc != 0) {
        fprintf(stderr, "  eval: rc %d: %s\n", rc, slurp(s_err));
        return NAN;
    }
    const char *json = slurp(s_out);
    printf("  %s %s: %s", set, algo, json);
    return json_number(json, metric);
}

static void
test_diabetes_ols_r2(void)
{
    setup();
    double r2 = train_eval("diabetes", "ols", "r2", NULL, NULL);
    teardown();
    DV_CHECK_GE(r2, 0.32);
}

static void
test_iris_softmax_accuracy(void)
{
    setup();
    double acc = train_eval("iris", "softmax", "accuracy", NULL, NULL);
    teardown();
    DV_CHECK_GE(acc, 0.93);
}

static void
test_digits_mlp_accuracy(void)
{
    setup();
    double acc = train_eval("digits", "mlp", "accuracy", "--hidden", "128");
    teardown();
    DV_CHECK_GE(acc, 0.96);
}

static void
test_eval_json_keys(void)
{
    setup();
    double acc = train_eval("iris", "mlp", "accuracy", NULL, NULL);
    const char *json = slurp(s_out);
    bool keys = strstr(json, "\"task\":\"classification\"") &&
                strstr(json, "\"precision_macro\":") &&
                strstr(json, "\"recall_macro\":") &&
                strstr(json, "\"f1_macro\":") && strstr(json, "\"rows\":30");
    double r2 = train_eval("diabetes", "ridge", "r2", NULL, NULL);
    json = slurp(s_out);
    bool reg_keys = strstr(json, "\"task\":\"regression\"") &&
                    strstr(json, "\"mse\":") && strstr(json, "\"mae\":") &&
                    strstr(json, "\"rows\":89");
    teardown();
    DV_CHECK(acc == acc && r2 == r2);
    DV_CHECK(keys);
    DV_CHECK(reg_keys);
}

static void
test_predict_csv(void)
{
    setup();
    const char *model = tmp_path("iris.drvm");
    const char *preds = tmp_path("preds.csv");
    int rc1 = run("local", "train", "--algo", "softmax", "--data",
                  dv_test_data("iris_train.csv"), "--out", model, NULL);
    int rc2 = run("local", "predict", "--model", model, "--data",
                  dv_test_data("iris_test.csv"), "--out", preds, NULL);
    const char *text = slurp(preds);
    size_t lines = 0;
    for (const char *p = text; *p; p++) {
        lines += *p == '\n';
    }
    bool header = strncmp(text, "class,label,p_0,p_1,p_2\n", 24) == 0;
    // Prediction input without the target column works too (features are
    // matched by name).
    const char *nolabel = tmp_path("nolabel.csv");
    const char *rows = "petal_width_cm,petal_length_cm,sepal_width_cm,"
                       "sepal_length_cm\n0.2,1.4,3.5,5.1\n2.3,5.9,3.0,6.8\n";
    dv_test_write_file(nolabel, rows, strlen(rows));
    int rc3 =
        run("local", "predict", "--model", model, "--data", nolabel, NULL);
    const char *out = slurp(s_out);
    bool setosa = strstr(out, "\n0,0,") != NULL;
    bool virginica = strstr(out, "\n2,2,") != NULL;
    teardown();
    DV_CHECK_EQ(rc1, 0);
    DV_CHECK_EQ(rc2, 0);
    DV_CHECK_EQ(lines, 31);
    DV_CHECK(header);
    DV_CHECK_EQ(rc3, 0);
    DV_CHECK(setosa);
    DV_CHECK(virginica);
}

static void
test_inspect(void)
{
    setup();
    const char *model = tmp_path("d.drvm");
    int rc1 = run("local", "train", "--algo", "ridge", "--data",
                  dv_test_data("diabetes_train.csv"), "--out", model, NULL);
    int rc2 = run("local", "inspect", model, NULL);
    const char *out = slurp(s_out);
    bool ok = strstr(out, "checksum      ok") && strstr(out, "ridge") &&
              strstr(out, "regression") &&
              // sha256sum of data/diabetes_train.csv
              strstr(out, "a0e729aa5adff512b97d8ee61eea8ef684c8a2931ce5190bd8"
                          "37c2f767af81d3");
    int rc3 = run("local", "inspect", model, "--json", NULL);
    bool json = strstr(slurp(s_out), "\"algo\":\"ridge\"") != NULL;
    teardown();
    DV_CHECK_EQ(rc1, 0);
    DV_CHECK_EQ(rc2, 0);
    DV_CHECK(ok);
    DV_CHECK_EQ(rc3, 0);
    DV_CHECK(json);
}

static bool
same_file(const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    unsigned char *da = dv_test_read_file(a, &la);
    unsigned char *db = dv_test_read_file(b, &lb);
    bool same = da && db && la == lb && memcmp(da, db, la) == 0;
    free(da);
    free(db);
    return same;
}

static void
test_same_seed_same_file(void)
{
    setup();
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    const char *a = tmp_path("a.drvm"), *b = tmp_path("b.drvm");
    const char *data = dv_test_data("iris_train.csv");
    int rc1 = run("local", "train", "--algo", "mlp", "--data", data, "--hidden",
                  "16,8", "--epochs", "30", "--seed", "5", "--threads", "1",
                  "--out", a, NULL);
    int rc2 = run("local", "train", "--algo", "mlp", "--data", data, "--hidden",
                  "16,8", "--epochs", "30", "--seed", "5", "--threads", "1",
                  "--out", b, NULL);
    bool same = same_file(a, b);
    int rc3 = run("local", "train", "--algo", "mlp", "--data", data, "--hidden",
                  "16,8", "--epochs", "30", "--seed", "6", "--threads", "1",
                  "--out", b, NULL);
    bool differs = !same_file(a, b);
    unsetenv("SOURCE_DATE_EPOCH");
    teardown();
    DV_CHECK_EQ(rc1, 0);
    DV_CHECK_EQ(rc2, 0);
    DV_CHECK_EQ(rc3, 0);
    DV_CHECK(same);
    DV_CHECK(differs);
}

// Usage errors exit 2 and say what is wrong, each one: the table's
// arguments ("DATA" and "MODEL" stand for a real CSV and a model path in
// the case's folder) and the text stderr must hold.
static void
test_usage_errors(void)
{
    static const struct {
        const char *args[16]; // after the binary, NULL-terminated
        const char *needle;   // in stderr
    } cases[] = {
        {{NULL}, "usage"},
        {{"local", "train", "--algo", "svm", "--data", "DATA", "--out",
          "MODEL"},
         "--algo 'svm'"},
        {{"local", "train", "--algo", "mlp", "--out", "MODEL"},
         "needs --algo, --data and --out"},
        {{"local", "train", "--algo", "mlp", "--data", "DATA", "--out", "MODEL",
          "--epochs", "ten"},
         "--epochs 'ten'"},
        {{"local", "train", "--algo", "mlp", "--data", "DATA", "--out", "MODEL",
          "--hidden", "128,,4"},
         "--hidden '128,,4': expected comma-separated layer widths"},
        {{"local", "eval", "--model", "MODEL", "--data", "DATA", "--bogus"},
         "unknown option '--bogus'"},
        {{"frobnicate"}, "unknown command 'frobnicate'"},
        {{"local", "train", "--algo", "mlp", "--data", "DATA", "--out", "MODEL",
          "--lr", "-3"},
         "learning rate"},
    };
    enum { N = sizeof cases / sizeof cases[0] };
    setup();
    const char *data = dv_test_data("iris_train.csv");
    const char *m = tmp_path("m.drvm");
    int rcs[N];
    bool said[N];
    for (size_t i = 0; i < N; i++) {
        const char *argv[18];
        size_t n = 0;
        argv[n++] = drover_bin();
        for (const char *const *a = cases[i].args; *a; a++) {
            argv[n++] = strcmp(*a, "DATA") == 0    ? data
                        : strcmp(*a, "MODEL") == 0 ? m
                                                   : *a;
        }
        argv[n] = NULL;
        rcs[i] = run_argv(argv);
        const char *err = slurp(s_err);
        said[i] = strstr(err, cases[i].needle) != NULL;
        if (rcs[i] != 2 || !said[i]) {
            fprintf(stderr, "  case %zu (%s): rc %d, stderr: %s\n", i,
                    cases[i].needle, rcs[i], err);
        }
    }
    teardown();
    for (size_t i = 0; i < N; i++) {
        DV_CHECK_EQ(rcs[i], 2);
        DV_CHECK(said[i]);
    }
}

// `local eval --help` and `local predict --help` print their own usage
// (their options, not the list of every `local` command) and exit 0; a
// mistake prints that usage on stderr.
static void
test_subcommand_help(void)
{
    setup();
    int rc_eval = run("local", "eval", "--help", NULL);
    const char *out = slurp(s_out);
    bool eval_own = strstr(out, "usage: drover local eval") != NULL &&
                    strstr(out, "--json") && strstr(out, "--threads") &&
                    !strstr(out, "local train") && !strstr(out, "--out");
    if (!eval_own) {
        fprintf(stderr, "  local eval --help printed: %s\n", out);
    }
    int rc_pred = run("local", "predict", "--help", NULL);
    out = slurp(s_out);
    bool pred_own = strstr(out, "usage: drover local predict") != NULL &&
                    strstr(out, "--out") && strstr(out, "--threads") &&
                    !strstr(out, "local train") && !strstr(out, "--json");
    if (!pred_own) {
        fprintf(stderr, "  local predict --help printed: %s\n", out);
    }
    int rc_bad = run("local", "predict", "--bogus", NULL);
    bool bad_own = strstr(slurp(s_err), "usage: drover local predict") != NULL;
    teardown();
    DV_CHECK_EQ(rc_eval, 0);
    DV_CHECK(eval_own);
    DV_CHECK_EQ(rc_pred, 0);
    DV_CHECK(pred_own);
    DV_CHECK_EQ(rc_bad, 2);
    DV_CHECK(bad_own);
}

// Failures exit 1 with the reason and the error name on stderr, and never
// leave a partial model behind.
static void
test_failures(void)
{
    setup();
    const char *m = tmp_path("m.drvm");
    int rc_missing = run("local", "train", "--algo", "ols", "--data",
                         tmp_path("nope.csv"), "--out", m, NULL);
    bool enoent = strstr(slurp(s_err), "DV_ENOENT") != NULL;

    const char *nan_csv = tmp_path("nan.csv");
    const char *text = "a,b,target\n1,2,3\n4,nan,6\n";
    dv_test_write_file(nan_csv, text, strlen(text));
    int rc_nan = run("local", "train", "--algo", "ols", "--data", nan_csv,
                     "--out", m, NULL);
    const char *e = slurp(s_err);
    bool enan = strstr(e, "DV_ENAN") && strstr(e, "line 3");
    bool no_model = access(m, F_OK) != 0;

    // A model file with one byte changed is refused by every command.
    int rc_train = run("local", "train", "--algo", "softmax", "--data",
                       dv_test_data("iris_train.csv"), "--out", m, NULL);
    size_t len = 0;
    unsigned char *bytes = dv_test_read_file(m, &len);
    bool corrupt_ok = bytes && len > 100;
    if (corrupt_ok) {
        bytes[len / 2] ^= 0x40;
        dv_test_write_file(m, bytes, len);
    }
    free(bytes);
    int rc_eval = run("local", "eval", "--model", m, "--data",
                      dv_test_data("iris_test.csv"), NULL);
    bool checksum = strstr(slurp(s_err), "DV_ECHECKSUM") != NULL;
    int rc_inspect = run("local", "inspect", m, NULL);

    // A data file whose columns do not match the model.
    const char *good = tmp_path("good.drvm");
    run("local", "train", "--algo", "softmax", "--data",
        dv_test_data("iris_train.csv"), "--out", good, NULL);
    int rc_cols = run("local", "predict", "--model", good, "--data",
                      dv_test_data("diabetes_test.csv"), NULL);
    bool eshape = strstr(slurp(s_err), "DV_ESHAPE") != NULL;
    teardown();
    DV_CHECK_EQ(rc_missing, 1);
    DV_CHECK(enoent);
    DV_CHECK_EQ(rc_nan, 1);
    DV_CHECK(enan);
    DV_CHECK(no_model);
    DV_CHECK_EQ(rc_train, 0);
    DV_CHECK(corrupt_ok);
    DV_CHECK_EQ(rc_eval, 1);
    DV_CHECK(checksum);
    DV_CHECK_EQ(rc_inspect, 1);
    DV_CHECK_EQ(rc_cols, 1);
    DV_CHECK(eshape);
}

static const dv_test_case_t cases[] = {
    {"diabetes ols test r2 >= 0.32", test_diabetes_ols_r2},
    {"iris softmax test accuracy >= 0.93", test_iris_softmax_accuracy},
    {"digits mlp 128 test accuracy >= 0.96", test_digits_mlp_accuracy},
    {"eval --json has the documented keys", test_eval_json_keys},
    {"predict writes one row per input", test_predict_csv},
    {"inspect shows checksum and lineage", test_inspect},
    {"same seed gives the same file", test_same_seed_same_file},
    {"usage errors exit 2", test_usage_errors},
    {"eval and predict --help print their own usage", test_subcommand_help},
    {"failures exit 1 with the reason", test_failures},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
