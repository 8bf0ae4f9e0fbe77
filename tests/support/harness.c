#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void th_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    exit(1);
}

/* the child tells the parent why it skipped through this pipe */
static int th_skip_fd = -1;

void th_skip(const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (th_skip_fd >= 0) {
        ssize_t n = write(th_skip_fd, msg, strlen(msg));
        (void)n;
    }
    fflush(stdout);
    fflush(stderr);
    exit(TH_SKIP_STATUS);
}

int64_t th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *th_slurp(FILE *f)
{
    size_t cap = 4096, len = 0, n;
    char *s = malloc(cap);
    if (!f || !s) th_fail(__FILE__, __LINE__, "th_slurp: no stream or no memory");
    while ((n = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            char *t = realloc(s, cap *= 2);
            if (!t) th_fail(__FILE__, __LINE__, "th_slurp: no memory");
            s = t;
        }
    }
    s[len] = '\0';
    return s;
}

int th_thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    fclose(f);
    return n;
}

/* 1 passed, 0 failed, -1 skipped (reason in why) */
static int run_case(const th_case *c, int timeout_s, char *why, size_t why_size)
{
    int fds[2];
    why[0] = '\0';
    if (pipe2(fds, O_CLOEXEC) != 0) return 0;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return 0;
    }
    if (pid == 0) {
        close(fds[0]);
        th_skip_fd = fds[1];
        alarm((unsigned)timeout_s);
        c->fn();
        fflush(stdout);
        exit(0);
    }
    close(fds[1]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    /* read after the child ended (a process it started may still hold the
     * pipe open): the reason, if any, is already in the pipe */
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    ssize_t n = read(fds[0], why, why_size - 1);
    why[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == TH_SKIP_STATUS && why[0]) return -1;
    if (WIFSIGNALED(st))
        fprintf(stderr, "    killed by signal %d%s\n", WTERMSIG(st),
                WTERMSIG(st) == SIGALRM ? " (time limit)" : "");
    return 0;
}

int th_main(const th_case *cases, size_t n, int argc, char **argv)
{
    int timeout_s = 60;
    const char *t = getenv("TH_TIMEOUT");
    if (t && atoi(t) > 0) timeout_s = atoi(t);
    int passed = 0, failed = 0, skipped = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1) {
            int want = 0;
            for (int a = 1; a < argc; a++)
                if (strcmp(argv[a], cases[i].name) == 0) want = 1;
            if (!want) continue;
        }
        int64_t t0 = th_now_ms();
        char why[256];
        int ok = run_case(&cases[i], timeout_s, why, sizeof why);
        if (ok < 0)
            printf("skip - %s (%s)\n", cases[i].name, why);
        else
            printf("%s - %s (%lld ms)\n", ok ? "ok  " : "FAIL", cases[i].name,
                   (long long)(th_now_ms() - t0));
        fflush(stdout);
        if (ok > 0) passed++;
        else if (ok < 0) skipped++;
        else failed++;
    }
    if (skipped) printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    else printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
    if (failed) return 1;
    return skipped && !passed ? TH_SKIP_STATUS : 0;
}

static char th_tmpdir[96];

const char *th_tmp_init(const char *tag)
{
    snprintf(th_tmpdir, sizeof th_tmpdir, "/tmp/%sXXXXXX", tag);
    CHECK(mkdtemp(th_tmpdir) != NULL);
    return th_tmpdir;
}

char *th_tmp_path(const char *name)
{
    static char bufs[16][192];
    static int next;
    char *p = bufs[next++ % 16];
    snprintf(p, sizeof bufs[0], "%s/%s", th_tmpdir, name);
    return p;
}

void th_tmp_cleanup(void)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", th_tmpdir);
    CHECK_EQ(system(cmd), 0);
}
