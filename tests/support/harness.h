/* Minimal test harness: every test case runs in its own child process with a
 * time limit, so a crash, a hang or a leak (under LeakSanitizer) fails that
 * case only.  Each binary prints "ok - name", "FAIL - name" or
 * "skip - name (reason)" per case and ends with the line "N passed, N failed"
 * (", N skipped" appended when some were).  Exit status: 1 when a case
 * failed, 77 (skipped, as meson and automake read it) when every case was
 * skipped, else 0. */
#ifndef TH_HARNESS_H
#define TH_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct th_case {
    const char *name;
    void (*fn)(void);
} th_case;

#define TH_CASE(f) { #f, f }

/* Report a failed check and end the test case (exit status 1). */
void th_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/* Skip the current test case (something it needs is not built or not
 * installed): reported as "skip - name (reason)", never as passed. */
void th_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
#define TH_SKIP_STATUS 77

#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c)) th_fail(__FILE__, __LINE__, "CHECK(%s)", #c);               \
    } while (0)
#define CHECK_INT(a, op, b)                                                   \
    do {                                                                      \
        long long th_a_ = (long long)(a), th_b_ = (long long)(b);             \
        if (!(th_a_ op th_b_))                                                \
            th_fail(__FILE__, __LINE__, "%s %s %s: %lld vs %lld", #a, #op,   \
                    #b, th_a_, th_b_);                                        \
    } while (0)
#define CHECK_EQ(a, b) CHECK_INT(a, ==, b)
#define CHECK_STR(a, b)                                                       \
    do {                                                                      \
        const char *th_a_ = (a), *th_b_ = (b);                                \
        if (!th_a_ || !th_b_ || strcmp(th_a_, th_b_) != 0)                    \
            th_fail(__FILE__, __LINE__, "%s == %s: \"%s\" vs \"%s\"", #a, #b, \
                    th_a_ ? th_a_ : "(null)", th_b_ ? th_b_ : "(null)");      \
    } while (0)

/* Run the cases (or only those named on the command line).  Per-case time
 * limit: TH_TIMEOUT seconds (default 60).  Returns the exit status. */
int th_main(const th_case *cases, size_t n, int argc, char **argv);

#define TH_MAIN(...)                                                          \
    int main(int argc, char **argv) {                                         \
        static const th_case th_cases_[] = {__VA_ARGS__};                     \
        return th_main(th_cases_, sizeof th_cases_ / sizeof th_cases_[0],     \
                       argc, argv);                                           \
    }

/* Monotonic milliseconds (for bounding waits in tests, never for asserting
 * speed). */
int64_t th_now_ms(void);
/* Read the rest of a stream into a malloc'd NUL-terminated string (fails the
 * test on error). */
char *th_slurp(FILE *f);
/* A scratch directory for the current test case: th_tmp_init() creates
 * /tmp/<tag>XXXXXX and returns its path, th_tmp_path() names a file in it
 * (16 rotating buffers), th_tmp_cleanup() removes it and everything in it. */
const char *th_tmp_init(const char *tag);
char *th_tmp_path(const char *name);
void th_tmp_cleanup(void);
/* Number of threads of this process (from /proc/self/status). */
int th_thread_count(void);

#endif
