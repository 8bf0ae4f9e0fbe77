/* poll_loop — wh_fd() in a plain poll(2) loop.
 *
 *   poll_loop URL [N]
 *
 * Emits N events (default 1000) to URL, then waits on the engine's one fd
 * with poll(2) beside the host's own fds (here: stdin, ignored) and calls
 * wh_poll(e, 0) whenever it is readable, until wh_stats says nothing is
 * queued or in flight (at most 30 s).  Exits 0 when every event was
 * delivered.
 *
 * Build: cc -std=c11 poll_loop.c $(pkg-config --cflags --libs libwebhook) */
#include <webhook/webhook.h>

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: poll_loop URL [N]\n");
        return 2;
    }
    long n = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
    wh_engine *e = wh_engine_new(NULL, NULL);
    if (!e) return 1;
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = argv[1];
    ep.max_in_flight = 64;
    if (wh_endpoint_add(e, &ep) < 0) {
        fprintf(stderr, "poll_loop: %s\n", wh_last_error(e));
        wh_engine_free(e);
        return 1;
    }
    int fd = wh_fd(e);                       /* before the first wh_poll */
    if (fd < 0) {
        fprintf(stderr, "poll_loop: %s\n", wh_last_error(e));
        wh_engine_free(e);
        return 1;
    }
    for (long i = 0; i < n; i++) {
        char body[64];
        int len = snprintf(body, sizeof body, "{\"seq\":%ld}", i);
        wh_emit(e, "tick", NULL, body, (size_t)len, NULL);
    }
    int64_t deadline = now_ms() + 30000;
    long wakeups = 0;
    for (;;) {
        wh_stats st;
        wh_stats_get(e, &st);
        if (st.queued == 0 && st.in_flight == 0) break;
        if (now_ms() > deadline) break;
        struct pollfd p[2] = {{fd, POLLIN, 0}, {0, 0, 0}}; /* + the host's fds */
        if (poll(p, 2, 1000) > 0 && (p[0].revents & POLLIN)) {
            wakeups++;
            wh_poll(e, 0);
        }
    }
    wh_stats st;
    wh_stats_get(e, &st);
    printf("delivered %" PRIu64 " of %ld, dead %" PRIu64 ", %ld wakeups\n", st.delivered, n,
           st.dead, wakeups);
    wh_engine_free(e);
    return st.delivered == (uint64_t)n ? 0 : 1;
}
