/* loop_bench — the host-loop integrations, measured (bench/loop_run.py runs
 * it and writes bench/LOOP.md).  Prints "key=value" lines.
 *
 *   loop_bench idle KIND SECS            KIND: uv | poll1ms | fd | tick
 *   loop_bench lat KIND RATE SECS URL    KIND: uv | poll1ms; emit->2xx
 *   loop_bench lone URL N                a lone event through the uv adapter
 *   loop_bench game MODE FRAMES PER URL  MODE: single | batch; 60 Hz wh_tick
 *   loop_bench threads N TOTAL           emit_any_thread, N producers
 */
#include <webhook/webhook.h>
#include <webhook/test.h>
#include <webhook/adapters/libuv.h>
#include <webhook/adapters/tick.h>

#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t pct(int64_t *v, size_t n, double p)
{
    if (!n) return -1;
    qsort(v, n, sizeof *v, cmp64);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

/* ---- recording outcomes --------------------------------------------------------- */
static int64_t *lat;
static size_t n_lat, cap_lat;
static long delivered, failed;

static void on_outcome(void *user, const wh_outcome *o)
{
    (void)user;
    if (o->kind != WH_DELIVERED) {
        if (o->kind == WH_DEAD) failed++;
        return;
    }
    delivered++;
    long long t = 0;
    if (sscanf(o->ev.data, "{\"t\":%lld", &t) == 1 && t > 0) {
        if (n_lat == cap_lat) {
            cap_lat = cap_lat ? cap_lat * 2 : 4096;
            lat = realloc(lat, cap_lat * sizeof *lat);
        }
        lat[n_lat++] = now_ns() - t;
    }
}

static wh_transport_kind transport_kind = WH_TRANSPORT_DEFAULT;

/* batch mode: one report per request (on_batch_outcome), as a game that
 * does not look at each event's fate would ask for */
static long batch_events;
static void on_batch(void *user, const wh_batch_outcome *b)
{
    (void)user;
    if (b->kind == WH_DELIVERED) batch_events += (long)b->n_events;
}

static wh_engine *engine(const char *url, wh_mode mode, uint32_t in_flight)
{
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.on_outcome = on_outcome;
    if (mode == WH_MODE_BATCH) o.on_batch_outcome = on_batch;
    o.transport_kind = transport_kind;
    int err;
    wh_engine *e = wh_engine_new(&o, &err);
    if (!e) {
        fprintf(stderr, "engine: %s\n", wh_strerror(err));
        exit(1);
    }
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = url;
    ep.max_in_flight = in_flight;
    ep.mode = mode;
    if (mode == WH_MODE_BATCH) {
        ep.batch_max_events = 500;
        ep.batch_linger_ms = 2;
    }
    if (wh_endpoint_add(e, &ep) < 0) {
        fprintf(stderr, "endpoint: %s\n", wh_last_error(e));
        exit(1);
    }
    return e;
}

static void emit_stamped(wh_engine *e)
{
    char b[64];
    int n = snprintf(b, sizeof b, "{\"t\":%" PRId64 ",\"x\":\"hello\"}", now_ns());
    if (wh_emit(e, "bench", NULL, b, (size_t)n, NULL) < 0) failed++;
}

/* ---- idle ------------------------------------------------------------------------ */
static long iterations;
static void on_prepare(uv_prepare_t *p) { (void)p; iterations++; }
static void on_stop(uv_timer_t *t) { uv_stop(t->loop); }
static void on_poll_timer(uv_timer_t *t) { wh_poll(t->data, 0); iterations++; }

static int idle(const char *kind, double secs)
{
    wh_engine *e = engine("http://127.0.0.1:9/never", WH_MODE_SINGLE, 32);
    uv_loop_t *loop = uv_default_loop();
    uv_prepare_t prep;
    uv_timer_t stop, poller;
    double c0 = cpu_s();
    int64_t t0 = now_ns();
    if (!strcmp(kind, "uv") || !strcmp(kind, "poll1ms")) {
        if (!strcmp(kind, "uv")) {
            wh_libuv_attach(e, loop);
            uv_prepare_init(loop, &prep);
            uv_prepare_start(&prep, on_prepare);
            uv_unref((uv_handle_t *)&prep);
        } else {
            uv_timer_init(loop, &poller);
            poller.data = e;
            uv_timer_start(&poller, on_poll_timer, 1, 1);
        }
        uv_timer_init(loop, &stop);
        uv_timer_start(&stop, on_stop, (uint64_t)(secs * 1000), 0);
        uv_run(loop, UV_RUN_DEFAULT);
        /* uv_run's first iteration and the stop timer's are the benchmark's own */
        if (!strcmp(kind, "uv")) iterations = iterations > 2 ? iterations - 2 : 0;
    } else if (!strcmp(kind, "fd")) {
        int fd = wh_fd(e);
        while (now_ns() - t0 < (int64_t)(secs * 1e9)) {
            struct pollfd p = {fd, POLLIN, 0};
            int left = (int)((secs * 1e9 - (double)(now_ns() - t0)) / 1e6) + 1;
            if (poll(&p, 1, left) > 0) {
                iterations++;
                wh_poll(e, 0);
            }
        }
    } else { /* tick: a 60 Hz frame loop; count ticks that had work */
        int64_t next = now_ns();
        while (now_ns() - t0 < (int64_t)(secs * 1e9)) {
            if (wh_work_due(e)) iterations++;
            wh_tick(e, 500);
            next += 16666667;
            int64_t d = next - now_ns();
            if (d > 0) {
                struct timespec ts = {(time_t)(d / 1000000000), (long)(d % 1000000000)};
                nanosleep(&ts, NULL);
            }
        }
    }
    double el = (double)(now_ns() - t0) / 1e9;
    printf("cpu_pct=%.3f\nwakeups_per_s=%.1f\n", 100.0 * (cpu_s() - c0) / el,
           (double)iterations / el);
    if (!strcmp(kind, "uv")) {
        wh_libuv_detach(e);
        uv_close((uv_handle_t *)&prep, NULL);
    }
    if (!strcmp(kind, "poll1ms")) uv_close((uv_handle_t *)&poller, NULL);
    if (strcmp(kind, "fd") && strcmp(kind, "tick")) {
        uv_close((uv_handle_t *)&stop, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
    }
    wh_engine_free(e);
    return 0;
}

/* ---- latency at a rate ----------------------------------------------------------- */
typedef struct pacer {
    wh_engine *e;
    double rate, owed;
    int64_t start, end;
    int poll;          /* 1: also wh_poll(e, 0) here (the 1 ms timer integration) */
} pacer;

static void on_pace(uv_timer_t *t)
{
    pacer *p = t->data;
    int64_t now = now_ns();
    if (now < p->end) {
        double want = p->rate * (double)(now - p->start) / 1e9;
        while (p->owed < want) {
            emit_stamped(p->e);
            p->owed += 1;
        }
    } else {
        wh_stats st;
        wh_stats_get(p->e, &st);
        if ((st.queued == 0 && st.in_flight == 0) || now > p->end + 5000000000LL) {
            uv_timer_stop(t);
            uv_stop(t->loop);
        }
    }
    if (p->poll) wh_poll(p->e, 0);
}

static int latency(const char *kind, double rate, double secs, const char *url)
{
    wh_engine *e = engine(url, WH_MODE_SINGLE, 64);
    uv_loop_t *loop = uv_default_loop();
    pacer p = {e, rate, 0, now_ns(), 0, strcmp(kind, "uv") != 0};
    p.end = p.start + (int64_t)(secs * 1e9);
    if (!p.poll) wh_libuv_attach(e, loop);
    uv_timer_t t;
    uv_timer_init(loop, &t);
    t.data = &p;
    uv_timer_start(&t, on_pace, 1, 1);
    double c0 = cpu_s();
    uv_run(loop, UV_RUN_DEFAULT);
    double cpu = cpu_s() - c0;
    printf("delivered=%ld\nfailed=%ld\np50_ms=%.3f\np99_ms=%.3f\ncpu_s=%.3f\n", delivered, failed,
           (double)pct(lat, n_lat, 0.5) / 1e6, (double)pct(lat, n_lat, 0.99) / 1e6, cpu);
    if (!p.poll) wh_libuv_detach(e);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    wh_engine_free(e);
    return 0;
}

/* ---- a lone event ---------------------------------------------------------------- */
static int lone(const char *url, int n)
{
    wh_engine *e = engine(url, WH_MODE_SINGLE, 8);
    uv_loop_t *loop = uv_default_loop();
    wh_libuv_attach(e, loop);
    for (int i = 0; i < n; i++) {
        emit_stamped(e);
        uv_run(loop, UV_RUN_DEFAULT); /* returns when delivered: nothing else alive */
    }
    printf("delivered=%ld\nlone_p50_ms=%.3f\nlone_max_ms=%.3f\n", delivered,
           (double)pct(lat, n_lat, 0.5) / 1e6, (double)pct(lat, n_lat, 1.0) / 1e6);
    wh_libuv_detach(e);
    uv_run(loop, UV_RUN_NOWAIT);
    wh_engine_free(e);
    return 0;
}

/* ---- 60 Hz game loop ------------------------------------------------------------- */
/* MODE: single | batch, with "-lean" for the lean transport (single-lean,
 * batch-lean); BUDGET_US: wh_tick's budget per frame. */
static int game(const char *mode, long frames, long per, const char *url, int64_t budget_us)
{
    int batch = !strncmp(mode, "batch", 5);
    if (strstr(mode, "-lean")) transport_kind = WH_TRANSPORT_LEAN;
    wh_engine *e = engine(url, batch ? WH_MODE_BATCH : WH_MODE_SINGLE, 64);
    int64_t *ticks = calloc((size_t)frames + 2000, sizeof *ticks);
    int64_t *cpu = calloc((size_t)frames + 2000, sizeof *cpu);
    size_t n_ticks = 0;
    int64_t start = now_ns(), next = start;
    long emitted = 0, f;
    for (f = 0; f < frames + 1200; f++) {
        if (f < frames)
            for (long i = 0; i < per; i++) {
                emit_stamped(e);
                emitted++;
            }
        int64_t t0 = now_ns(), c0 = thread_cpu_ns();
        wh_tick(e, budget_us);
        cpu[n_ticks] = thread_cpu_ns() - c0;
        ticks[n_ticks++] = now_ns() - t0;
        wh_stats st;
        wh_stats_get(e, &st);
        if (f >= frames && st.queued == 0 && st.in_flight == 0) break;
        next += 16666667;
        int64_t d = next - now_ns();
        if (d > 0) {
            struct timespec ts = {(time_t)(d / 1000000000), (long)(d % 1000000000)};
            nanosleep(&ts, NULL);
        }
    }
    double el = (double)(now_ns() - start) / 1e9;
    wh_stats st;
    wh_stats_get(e, &st);
    uint64_t in_frames = st.delivered;
    /* what the drain frames did not reach (a small budget): delivered by a
     * final wh_flush, outside the frame figures, so nothing is lost */
    wh_flush(e, 60000);
    wh_stats_get(e, &st);
    if (getenv("WH_BENCH_SLOW_TICKS"))
        for (long i = 0; i < frames; i++)
            if (ticks[i] > 1000000) fprintf(stderr, "tick %ld: %.3f ms\n", i, ticks[i] / 1e6);
    int64_t *during = malloc((size_t)frames * sizeof *during);
    memcpy(during, ticks, (size_t)frames * sizeof *during);
    printf("emitted=%ld\ndelivered=%" PRIu64 "\ndelivered_in_frames=%" PRIu64 "\nrequests=%" PRIu64
           "\ndelivered_per_s=%.0f\ndrain_frames=%ld\ntick_p50_ms=%.3f\ntick_p99_ms=%.3f\ntick_max_ms=%.3f\n",
           emitted, st.delivered, in_frames, st.requests, (double)in_frames / el, f - frames,
           (double)pct(during, (size_t)frames, 0.5) / 1e6,
           (double)pct(during, (size_t)frames, 0.99) / 1e6,
           (double)pct(during, (size_t)frames, 1.0) / 1e6);
    printf("tick_cpu_p50_ms=%.3f\ntick_cpu_p99_ms=%.3f\n",
           (double)pct(cpu, (size_t)frames, 0.5) / 1e6, (double)pct(cpu, (size_t)frames, 0.99) / 1e6);
    free(during);
    free(ticks);
    free(cpu);
    wh_engine_free(e);
    return 0;
}

/* ---- emit_any_thread ------------------------------------------------------------- */
typedef struct prod {
    wh_engine *e;
    long n, fulls;
    int64_t *samples;   /* every 16th event: first call to acceptance */
    int64_t *calls;     /* the same events: their first wh_emit call alone */
    size_t n_samples;
} prod;

static void *producer(void *arg)
{
    prod *p = arg;
    for (long i = 0; i < p->n; i++) {
        int64_t t0 = (i & 15) == 0 ? now_ns() : 0, c = 0;
        int rc;
        for (int k = 0;; k++) {
            rc = wh_emit(p->e, "t", NULL, "{\"x\":\"hello\"}", 13, NULL);
            if (t0 && k == 0) c = now_ns() - t0;
            if (rc != WH_E_FULL) break;
            p->fulls++;
            sched_yield(); /* the inbox is full: let the engine's thread drain it */
        }
        if (t0) {
            p->calls[p->n_samples] = c;
            p->samples[p->n_samples++] = now_ns() - t0;
        }
    }
    return NULL;
}

static volatile int producers_done;

static int threads(int n, long total)
{
    wh_transport *t;
    wh_transport_scripted_new(NULL, NULL, &t);
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.transport = t;
    o.emit_any_thread = 1;
    int err;
    wh_engine *e = wh_engine_new(&o, &err);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/x";
    ep.mode = WH_MODE_BATCH; /* the consumer keeps up cheaply */
    ep.batch_max_events = 1000;
    ep.batch_linger_ms = 1;
    wh_endpoint_add(e, &ep);
    int fd = wh_fd(e);
    prod *p = calloc((size_t)n, sizeof *p);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    int64_t t0 = now_ns();
    for (int i = 0; i < n; i++) {
        p[i].e = e;
        p[i].n = total / n;
        p[i].samples = calloc((size_t)(p[i].n / 16 + 2), sizeof(int64_t));
        p[i].calls = calloc((size_t)(p[i].n / 16 + 2), sizeof(int64_t));
        pthread_create(&th[i], NULL, producer, &p[i]);
    }
    /* the engine's thread drains while they produce */
    wh_stats st;
    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 10) > 0) wh_poll(e, 0);
        wh_stats_get(e, &st);
        if (st.emitted >= (uint64_t)(total / n * n)) break;
    }
    int64_t el = now_ns() - t0;
    size_t ns = 0;
    long fulls = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        ns += p[i].n_samples;
        fulls += p[i].fulls;
    }
    int64_t *all = malloc(ns * sizeof *all), *calls = malloc(ns * sizeof *calls);
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        memcpy(all + k, p[i].samples, p[i].n_samples * sizeof *all);
        memcpy(calls + k, p[i].calls, p[i].n_samples * sizeof *calls);
        k += p[i].n_samples;
        free(p[i].samples);
        free(p[i].calls);
    }
    wh_flush(e, 10000);
    wh_stats_get(e, &st);
    printf("events_per_s=%.0f\nproducer_p50_us=%.3f\nproducer_p99_us=%.3f\nfulls=%ld\n"
           "emitted=%" PRIu64 "\nlost=%" PRId64 "\n",
           (double)(total / n * n) / ((double)el / 1e9), (double)pct(all, ns, 0.5) / 1e3,
           (double)pct(all, ns, 0.99) / 1e3, fulls, st.emitted,
           (int64_t)(total / n * n) - (int64_t)st.delivered);
    printf("call_p50_us=%.3f\ncall_p99_us=%.3f\n", (double)pct(calls, ns, 0.5) / 1e3,
           (double)pct(calls, ns, 0.99) / 1e3);
    free(all);
    free(calls);
    free(p);
    free(th);
    wh_engine_free(e);
    wh_transport_free(t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "idle")) return idle(argv[2], atof(argv[3]));
    if (argc >= 6 && !strcmp(argv[1], "lat"))
        return latency(argv[2], atof(argv[3]), atof(argv[4]), argv[5]);
    if (argc >= 4 && !strcmp(argv[1], "lone")) return lone(argv[2], atoi(argv[3]));
    if (argc >= 6 && !strcmp(argv[1], "game"))
        return game(argv[2], atol(argv[3]), atol(argv[4]), argv[5], argc >= 7 ? atol(argv[6]) : 500);
    if (argc >= 4 && !strcmp(argv[1], "threads")) return threads(atoi(argv[2]), atol(argv[3]));
    fprintf(stderr, "usage: see the comment at the top of bench/loop_bench.c\n");
    return 2;
}
