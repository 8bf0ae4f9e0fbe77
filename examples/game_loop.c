/* game_loop — webhooks from a 60 Hz fixed-tick loop with wh_tick().
 *
 *   game_loop URL [FRAMES] [EVENTS_PER_FRAME] [batch]
 *
 * Runs FRAMES frames (default 60: one second) of 16.7 ms; each frame
 * "simulates" (emits EVENTS_PER_FRAME events, default 50) and gives the
 * webhooks at most 0.5 ms with wh_tick(e, 500), then sleeps until the next
 * frame.  After the last frame it keeps ticking until everything is
 * delivered (at most 10 s more).  Prints what was delivered and the
 * slowest wh_tick; exits 0 when every event was delivered.
 *
 * Build: cc -std=c11 game_loop.c $(pkg-config --cflags --libs libwebhook) */
#include <webhook/webhook.h>
#include <webhook/adapters/tick.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FRAME_US 16667

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_until(int64_t t_us)
{
    int64_t d = t_us - now_us();
    if (d <= 0) return;
    struct timespec ts = {(time_t)(d / 1000000), (long)(d % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: game_loop URL [FRAMES] [EVENTS_PER_FRAME] [batch]\n");
        return 2;
    }
    long frames = argc > 2 ? strtol(argv[2], NULL, 10) : 60;
    long per = argc > 3 ? strtol(argv[3], NULL, 10) : 50;
    int batch = argc > 4 && strcmp(argv[4], "batch") == 0;
    wh_engine *e = wh_engine_new(NULL, NULL);
    if (!e) return 1;
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = argv[1];
    ep.max_in_flight = 64;
    if (batch) {
        ep.mode = WH_MODE_BATCH;
        ep.batch_max_events = 500;
        ep.batch_linger_ms = 5;
    }
    if (wh_endpoint_add(e, &ep) < 0) {
        fprintf(stderr, "game_loop: %s\n", wh_last_error(e));
        wh_engine_free(e);
        return 1;
    }
    int64_t next = now_us(), worst = 0;
    long emitted = 0;
    for (long f = 0;; f++) {
        if (f < frames) {
            for (long i = 0; i < per; i++) {           /* the simulation */
                char body[64];
                int len = snprintf(body, sizeof body, "{\"frame\":%ld,\"i\":%ld}", f, i);
                if (wh_emit(e, "player.moved", NULL, body, (size_t)len, NULL) >= 0) emitted++;
            }
        }
        int64_t t0 = now_us();
        wh_tick(e, 500);
        int64_t took = now_us() - t0;
        if (took > worst) worst = took;
        wh_stats st;
        wh_stats_get(e, &st);
        if (f >= frames && st.queued == 0 && st.in_flight == 0) break;
        if (f >= frames + 600) break;                 /* 10 s after the end */
        next += FRAME_US;
        sleep_until(next);
    }
    wh_stats st;
    wh_stats_get(e, &st);
    printf("%s: delivered %" PRIu64 " of %ld in %" PRIu64 " requests, slowest wh_tick %.3f ms\n",
           batch ? "batch" : "single", st.delivered, emitted, st.requests, (double)worst / 1000.0);
    wh_engine_free(e);
    return st.delivered == (uint64_t)emitted ? 0 : 1;
}
