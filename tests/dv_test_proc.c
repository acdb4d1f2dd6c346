// dv_test_proc — real processes for integration tests (see dv_test_proc.h).
#include "dv_test_proc.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int64_t
dv_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pid_t
spawn(const char *env_bin,
      const char *const *args,
      int out_fd,
      int close_fd,
      const char *out_path,
      const char *dir,
      const char *log_name)
{
    const char *bin = getenv(env_bin);
    if (!bin) {
        fprintf(stderr, "  %s is not set\n", env_bin);
        return 0;
    }
    char log[4200];
    snprintf(log, sizeof log, "%s/%s", dir, log_name);
    const char *argv[32] = {bin};
    for (int i = 0; args[i] && i < 30; i++) {
        argv[i + 1] = args[i];
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_fd >= 0) {
        posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    } else {
        posix_spawn_file_actions_addopen(&fa, 1,
                                         out_path ? out_path : "/dev/null",
                                         O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    if (close_fd >= 0) {
        posix_spawn_file_actions_addclose(&fa, close_fd);
    }
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid = 0;
    if (posix_spawn(&pid, bin, &fa, &attr, (char *const *)argv, environ)) {
        pid = 0;
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return pid;
}

dv_proc_t
dv_proc_start(const char *env_bin,
              const char *const *args,
              const char *dir,
              const char *log_name)
{
    dv_proc_t p = {0, -1};
    int fds[2];
    if (pipe(fds) != 0) {
        return p;
    }
    p.pid = spawn(env_bin, args, fds[1], fds[0], NULL, dir, log_name);
    close(fds[1]);
    p.out = fds[0];
    if (!p.pid) {
        close(p.out);
        p.out = -1;
    }
    return p;
}

bool
dv_proc_wait_ready(dv_proc_t *p, char *rest, size_t size)
{
    char line[1024];
    size_t n = 0;
    int64_t end = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
    while (p->out >= 0 && dv_test_now_ms() < end) {
        struct pollfd pf = {p->out, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0) {
            continue;
        }
        char c;
        if (read(p->out, &c, 1) != 1) {
            return false; // exited before READY
        }
        if (c != '\n' && n < sizeof line - 1) {
            line[n++] = c;
            continue;
        }
        line[n] = '\0';
        if (strncmp(line, "READY ", 6) == 0) {
            snprintf(rest, size, "%s", line + 6);
            return true;
        }
        n = 0;
    }
    return false;
}

int
dv_proc_stop(dv_proc_t *p, int sig)
{
    if (!p->pid) {
        return -1;
    }
    kill(p->pid, sig);
    int64_t end = dv_test_now_ms() + DV_PROC_DEADLINE_MS;
    int status = 0;
    int rc = -1;
    bool exited = false;
    while (dv_test_now_ms() < end) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            exited = true;
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            break;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!exited) {
        kill(-p->pid, SIGKILL);
        waitpid(p->pid, &status, 0);
    }
    if (p->out >= 0) {
        close(p->out);
    }
    p->out = -1;
    p->pid = 0;
    return rc;
}

int
dv_proc_run(const char *env_bin,
            const char *const *args,
            const char *out_path,
            const char *dir,
            const char *log_name)
{
    pid_t pid = spawn(env_bin, args, -1, -1, out_path, dir, log_name);
    if (!pid) {
        return -1;
    }
    int status = 0;
    int64_t end = dv_test_now_ms() + 10 * DV_PROC_DEADLINE_MS;
    while (waitpid(pid, &status, WNOHANG) != pid) {
        if (dv_test_now_ms() > end) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void
dv_proc_dump_log(const char *dir, const char *log_name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, log_name);
    FILE *f = fopen(path, "r");
    if (!f) {
        return;
    }
    char buf[4096];
    size_t n;
    fprintf(stderr, "  --- %s ---\n", log_name);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        fwrite(buf, 1, n, stderr);
    }
    fclose(f);
}

bool
dv_proc_worker_keyed(dv_proc_t *p,
                     const char *wep,
                     const char *name,
                     const char *key,
                     const char *broker_pub,
                     const char *hb_ms,
                     const char *dir)
{
    const char *args[] = {
        "--broker",     wep,        "--name",         name,  "--key", key,
        "--broker-key", broker_pub, "--heartbeat-ms", hb_ms, NULL};
    *p = dv_proc_start("DROVER_WORKER_BIN", args, dir, "worker.log");
    char ready[9000];
    return p->pid && dv_proc_wait_ready(p, ready, sizeof ready);
}
