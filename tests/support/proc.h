/* Child processes for tests (header only): run the examples (whsend) and
 * servers (redis-server) as separate processes, wait for them with a time
 * limit, kill them. */
#ifndef TH_PROC_H
#define TH_PROC_H

#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline void th_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Path of an example binary (WH_BIN, else build/bin). */
static inline const char *th_example(const char *name)
{
    static char path[512];
    const char *dir = getenv("WH_BIN");
    if (!dir || !*dir) dir = "build/bin";
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (access(path, X_OK) != 0)
        th_fail(__FILE__, __LINE__, "%s: %s (set WH_BIN)", path, strerror(errno));
    return path;
}

/* Start exe with argv (argv[0] included, NULL-terminated); stdin from
 * in_path (NULL: /dev/null), stdout/stderr to files (NULL: /dev/null). */
static inline pid_t th_spawn(const char *exe, char *const argv[], const char *in_path,
                             const char *out_path, const char *err_path)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int i = open(in_path ? in_path : "/dev/null", O_RDONLY);
        int o = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path ? err_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (i < 0 || o < 0 || e < 0) _exit(126);
        dup2(i, 0);
        dup2(o, 1);
        dup2(e, 2);
        execv(exe, argv);
        _exit(127);
    }
    return pid;
}

/* Wait up to timeout_ms for pid; kill it (and fail) when it takes longer.
 * Returns the exit status, or 128 + signal. */
static inline int th_wait_exit(pid_t pid, int timeout_ms)
{
    int64_t t0 = th_now_ms();
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) break;
        CHECK(w == 0 || errno == EINTR);
        if (th_now_ms() - t0 > timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            th_fail(__FILE__, __LINE__, "child %d still running after %d ms", (int)pid,
                    timeout_ms);
        }
        th_sleep_ms(5);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static inline void th_kill9(pid_t pid)
{
    int st;
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}

/* Contents of a file (malloc'd, "" when missing). */
static inline char *th_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        char *s = malloc(1);
        CHECK(s);
        s[0] = '\0';
        return s;
    }
    char *s = th_slurp(f);
    fclose(f);
    return s;
}

static inline int th_file_contains(const char *path, const char *needle)
{
    char *s = th_read_file(path);
    int found = strstr(s, needle) != NULL;
    free(s);
    return found;
}

/* A TCP port on 127.0.0.1 that was free a moment ago. */
static inline int th_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* 1 when something accepts TCP connections on 127.0.0.1:port. */
static inline int th_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Write text to path (fails the test on error). */
static inline void th_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK_EQ(fwrite(text, 1, strlen(text), f), strlen(text));
    CHECK_EQ(fclose(f), 0);
}

#endif
