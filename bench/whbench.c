/* whbench — libwebhook's benchmarks (driven by bench/run.py, `make bench`).
 *
 *   whbench payload                      print the 300-byte JSON payload
 *   whbench single URL N INFLIGHT        N signed events, single mode
 *   whbench batch URL N                  N signed events in batches of 1000
 *   whbench emit [warm|cold]             ns per wh_emit (1 / 10,000 / fan-out 10)
 *   whbench filter                       ns per wh_emit with 1,000 endpoints, without
 *                                        and with payload filters
 *   whbench memory [ENDPOINTS]           bytes per queued event
 *   whbench backend                      HMAC backend of the library linked
 *   whbench idle                         ns per idle wh_poll(e, 0)
 *   whbench latency URL RATE SECONDS [block]  emit -> 2xx latency at a fixed rate
 *   whbench jitter [N]                   how late a 200 us sleep wakes up
 *
 * Environment (the HTTPS section of run.py): WH_BENCH_CA_FILE sets the
 * endpoint's ca_file; WH_BENCH_HTTP2=0|1 creates the libcurl transport
 * with that http2 setting; WH_BENCH_ALLOW_FAIL=1 counts failed deliveries
 * (failed=N in the RESULT line) instead of stopping; WH_BENCH_BATCH_OUTCOME=1
 * takes batch mode's outcomes one per batch (on_batch_outcome).
 *
 * Every measurement prints one line "RESULT <name> key=value ..." that
 * run.py parses; runs are repeated by run.py (or inside, for the
 * micro-benchmarks) and the median is reported.  Nothing here is hard-coded
 * into a result: each figure is measured. */
#include <webhook/webhook.h>
#include <webhook/curl.h>

#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef WH_BENCH_HMAC
#define WH_BENCH_HMAC "?"
#endif

#define PAYLOAD_LEN 300
#define TYPE "message.created"
#define CHANNEL "room-42"
/* "whsec_" + base64 of 32 bytes */
#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw8T9zbBjnQE4="

static char payload[PAYLOAD_LEN + 1];

static void make_payload(void)
{
    int n = snprintf(payload, sizeof payload,
                     "{\"room\":\"room-42\",\"user\":{\"id\":\"u-1234567\",\"name\":"
                     "\"Ada\"},\"seq\":1234567,\"sent_at\":\"2024-05-17T20:56:59Z\","
                     "\"text\":\"");
    while (n < PAYLOAD_LEN - 2) {
        payload[n] = (char)('a' + n % 26);
        n++;
    }
    payload[n++] = '"';
    payload[n++] = '}';
    payload[n] = '\0';
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "whbench: %s: %s\n", what, wh_strerror(rc));
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- delivery runs ---------------------------------------------------------- */
typedef struct counts {
    uint64_t delivered, failed;
} counts;

static void count_outcome(void *user, const wh_outcome *o)
{
    counts *c = user;
    if (o->kind == WH_DELIVERED) c->delivered++;
    else if (c->failed++ == 0)
        fprintf(stderr, "whbench: first failure: HTTP %d, %s\n", o->http_status, o->error_msg);
}

/* WH_BENCH_BATCH_OUTCOME=1: one callback per batch (on_batch_outcome) */
static void count_batch(void *user, const wh_batch_outcome *b)
{
    counts *c = user;
    if (b->kind == WH_DELIVERED) c->delivered += b->n_events;
    else if ((c->failed += b->n_events) == b->n_events)
        fprintf(stderr, "whbench: first failure: HTTP %d, %s\n", b->http_status, b->error_msg);
}

static wh_engine *engine_for(counts *c, size_t max_queued)
{
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.on_outcome = count_outcome;
    eo.outcome_user = c;
    eo.max_queued_events = max_queued;
    const char *bo = getenv("WH_BENCH_BATCH_OUTCOME");
    if (bo && atoi(bo)) {
        eo.on_batch_outcome = count_batch;
        eo.batch_outcome_user = c;
    }
    /* WH_BENCH_TRANSPORT=lean|curl|auto: the engine's transport (run.py's
     * lean transport section); default: the library's default */
    const char *tk = getenv("WH_BENCH_TRANSPORT");
    if (tk && !strcmp(tk, "lean")) eo.transport_kind = WH_TRANSPORT_LEAN;
    else if (tk && !strcmp(tk, "curl")) eo.transport_kind = WH_TRANSPORT_CURL;
    else if (tk && !strcmp(tk, "auto")) eo.transport_kind = WH_TRANSPORT_AUTO;
    const char *h2 = getenv("WH_BENCH_HTTP2");
    if (h2 && *h2) {
        wh_curl_options co;
        wh_curl_options_init(&co);
        co.http2 = atoi(h2);
        int rc = wh_transport_curl_new(&co, &eo.transport);
        if (rc != WH_OK) die("wh_transport_curl_new", rc);
        eo.transport_owned = 1;
    }
    int err;
    wh_engine *e = wh_engine_new(&eo, &err);
    if (!e) die("wh_engine_new", err);
    return e;
}

static void add_endpoint(wh_engine *e, const char *url, wh_mode mode, uint32_t inflight)
{
    static const char *secrets[] = {SECRET};
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = url;
    ep.secrets = secrets;
    ep.n_secrets = 1;
    ep.mode = mode;
    ep.max_in_flight = inflight;
    ep.max_attempts = 1;          /* a failure must show, not be retried */
    ep.ca_file = getenv("WH_BENCH_CA_FILE");
    if (mode == WH_MODE_BATCH) {
        ep.batch_max_events = 1000;
        ep.batch_max_bytes = 4u << 20;
    }
    int h = wh_endpoint_add(e, &ep);
    if (h < 0) {
        fprintf(stderr, "whbench: wh_endpoint_add: %s\n", wh_last_error(e));
        exit(1);
    }
}

/* Emit n events while polling, keeping at most `backlog` undelivered, until
 * all are reported: the loop of a busy server, which emits what happened
 * since its last turn (up to `chunk` events), then waits in wh_poll for the
 * network. */
static void drive(wh_engine *e, counts *c, uint64_t n, uint64_t backlog, uint64_t chunk)
{
    uint64_t emitted = 0;
    while (c->delivered + c->failed < n) {
        uint64_t pending = emitted - (c->delivered + c->failed);
        if (emitted < n && pending + chunk <= backlog) {
            uint64_t k = backlog - pending;
            if (k > chunk) k = chunk;
            if (k > n - emitted) k = n - emitted;
            for (uint64_t i = 0; i < k; i++) {
                int rc = wh_emit(e, TYPE, CHANNEL, payload, PAYLOAD_LEN, NULL);
                if (rc == WH_E_FULL) break;
                if (rc != 1) die("wh_emit", rc);
                emitted++;
            }
        }
        wh_poll(e, 10);
    }
}

static void run_delivery(const char *name, const char *url, uint64_t n, wh_mode mode,
                         uint32_t inflight)
{
    counts c = {0, 0};
    wh_engine *e = engine_for(&c, 8u << 20);
    add_endpoint(e, url, mode, inflight);
    /* warm the connections up (not timed) */
    for (uint32_t i = 0; i < inflight * 4 + 1; i++)
        wh_emit(e, TYPE, CHANNEL, payload, PAYLOAD_LEN, NULL);
    const char *af = getenv("WH_BENCH_ALLOW_FAIL");
    int allow_fail = af && atoi(af) != 0;
    int fl = wh_flush(e, 10000);
    if ((fl != WH_OK || c.failed) && !allow_fail) die("warm-up", fl != WH_OK ? fl : WH_E_TRANSPORT);
    c.delivered = 0;
    c.failed = 0;
    double t0 = mono_s(), c0 = cpu_s();
    if (mode == WH_MODE_BATCH) drive(e, &c, n, 100000, 4000);
    else drive(e, &c, n, 4 * (uint64_t)inflight + 64, 2 * (uint64_t)inflight + 32);
    double t1 = mono_s(), c1 = cpu_s();
    wh_stats st;
    wh_stats_get(e, &st);
    if (c.failed && !allow_fail) {
        fprintf(stderr, "whbench: %" PRIu64 " deliveries failed\n", c.failed);
        exit(1);
    }
    printf("RESULT %s inflight=%u events=%" PRIu64 " seconds=%.4f eps=%.0f "
           "cpu_ns_per_event=%.0f requests=%" PRIu64 " failed=%" PRIu64 "\n",
           name, inflight, n, t1 - t0, (double)n / (t1 - t0), (c1 - c0) * 1e9 / (double)n,
           st.requests, c.failed);
    wh_engine_free(e);
}

/* ---- wh_emit cost ------------------------------------------------------------ */
/* A payload filter for every endpoint emit_cost makes (whbench filter), or
 * NULL.  Built against a library without payload filters, never set. */
#ifdef WH_OUTCOME_BODY_MAX
static const char *bench_payload_filter;
#endif

/* Median ns per call over blocks of `block` calls.  warm: the engine's
 * queue memory was used before (freed chunks reused, pages already mapped),
 * as in a server whose queue drains; cold: every event lands on pages the
 * kernel maps and zeroes on first touch (a queue growing into new memory). */
static double emit_cost(int n_other, int n_match, int validate, size_t blocks, size_t block,
                        int warm)
{
    if (warm) {
        /* keep freed memory in the allocator instead of returning it */
        mallopt(M_TRIM_THRESHOLD, 1 << 30);
        mallopt(M_MMAP_THRESHOLD, 1 << 30);
        mallopt(M_TOP_PAD, 0);
        double cold = emit_cost(n_other, n_match, validate, blocks, block, 0);
        (void)cold;
    }
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.max_queued_events = blocks * block + 16;
    eo.max_queued_bytes = (size_t)8 << 30;
    eo.validate_json = validate;
    int err;
    wh_engine *e = wh_engine_new(&eo, &err);
    if (!e) die("wh_engine_new", err);
    static const char *secrets[] = {SECRET};
    char type[64];
    const char *types[1] = {type};
    wh_endpoint_options ep;
    for (int i = 0; i < n_other + n_match; i++) {
        wh_endpoint_options_init(&ep);
        /* never contacted: the engine is not polled */
        ep.url = "http://127.0.0.1:9/hook";
        ep.secrets = secrets;
        ep.n_secrets = 1;
        if (i < n_other) snprintf(type, sizeof type, "other.type-%d", i);
        else snprintf(type, sizeof type, "%s", TYPE);
        ep.event_types = types;
        ep.n_event_types = 1;
#ifdef WH_OUTCOME_BODY_MAX /* the library has payload filters */
        ep.payload_filter_json = bench_payload_filter;
#endif
        if (wh_endpoint_add(e, &ep) < 0) die("wh_endpoint_add", WH_E_INVAL);
    }
    double *v = malloc(blocks * sizeof *v);
    for (size_t b = 0; b < blocks; b++) {
        double t0 = mono_s();
        for (size_t i = 0; i < block; i++) {
            int rc = wh_emit(e, TYPE, CHANNEL, payload, PAYLOAD_LEN, NULL);
            if (rc != n_match) die("wh_emit", rc < 0 ? rc : WH_E_INVAL);
        }
        v[b] = (mono_s() - t0) * 1e9 / (double)block;
    }
    double m = median(v, blocks);
    free(v);
    wh_engine_free(e);
    return m;
}

static void run_emit(const char *which)
{
    const size_t blocks = 200, block = 1000;
    int warm = strcmp(which, "cold") != 0;
    const char *w = warm ? "warm" : "cold";
    printf("RESULT emit mem=%s endpoints=1 matching=1 validate=1 ns=%.1f\n", w,
           emit_cost(0, 1, 1, blocks, block, warm));
    printf("RESULT emit mem=%s endpoints=10000 matching=1 validate=1 ns=%.1f\n", w,
           emit_cost(9999, 1, 1, blocks, block, warm));
    printf("RESULT emit mem=%s endpoints=10 matching=10 validate=1 ns=%.1f\n", w,
           emit_cost(0, 10, 1, blocks / 2, block, warm));
    printf("RESULT emit mem=%s endpoints=1 matching=1 validate=0 ns=%.1f\n", w,
           emit_cost(0, 1, 0, blocks, block, warm));
}

/* wh_emit with 1,000 endpoints: none with a payload filter (the cost the
 * filters must not change), then every one with a filter that the payload
 * satisfies (parsed once per call).  1 matching: the other 999 subscribe to
 * other types; 1,000 matching: every event is queued for all of them. */
static void run_filter(void)
{
    printf("RESULT filter endpoints=1000 matching=1 payload_filters=0 ns=%.1f\n",
           emit_cost(999, 1, 1, 200, 1000, 1));
    printf("RESULT filter endpoints=1000 matching=1000 payload_filters=0 ns=%.1f\n",
           emit_cost(0, 1000, 1, 20, 50, 1));
#ifdef WH_OUTCOME_BODY_MAX
    bench_payload_filter = "{\"data.seq\": {\"$gte\": 1000}, \"data.user.name\": \"Ada\"}";
    printf("RESULT filter endpoints=1000 matching=1 payload_filters=1 ns=%.1f\n",
           emit_cost(999, 1, 1, 200, 1000, 1));
    printf("RESULT filter endpoints=1000 matching=1000 payload_filters=1000 ns=%.1f\n",
           emit_cost(0, 1000, 1, 20, 50, 1));
    bench_payload_filter = NULL;
#endif
}

/* ---- memory ----------------------------------------------------------------- */
static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

static size_t heap_used(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void run_memory(int n_eps, size_t n)
{
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.max_queued_events = n + 16;
    eo.max_queued_bytes = (size_t)8 << 30;
    int err;
    wh_engine *e = wh_engine_new(&eo, &err);
    if (!e) die("wh_engine_new", err);
    for (int i = 0; i < n_eps; i++) {
        wh_endpoint_options ep;
        wh_endpoint_options_init(&ep);
        ep.url = "http://127.0.0.1:9/hook"; /* paused: never polled */
        if (wh_endpoint_add(e, &ep) < 0) die("wh_endpoint_add", WH_E_INVAL);
    }
    /* one event first so that lazily made structures are not counted */
    wh_emit(e, TYPE, CHANNEL, payload, PAYLOAD_LEN, NULL);
    size_t h0 = heap_used();
    long r0 = rss_bytes();
    for (size_t i = 0; i < n; i++) {
        int rc = wh_emit(e, TYPE, CHANNEL, payload, PAYLOAD_LEN, NULL);
        if (rc != n_eps) die("wh_emit", rc < 0 ? rc : WH_E_INVAL);
    }
    size_t h1 = heap_used();
    long r1 = rss_bytes();
    double per = (double)(h1 - h0) / (double)n;
    printf("RESULT memory endpoints=%d events=%zu payload=%d heap_bytes_per_event=%.1f "
           "overhead_per_event=%.1f overhead_per_job=%.1f rss_bytes_per_event=%.1f\n",
           n_eps, n, PAYLOAD_LEN, per, per - PAYLOAD_LEN, (per - PAYLOAD_LEN) / n_eps,
           (double)(r1 - r0) / (double)n);
    wh_engine_free(e);
}

/* ---- idle poll -------------------------------------------------------------- */
static void run_idle(void)
{
    int err;
    wh_engine *e = wh_engine_new(NULL, &err);
    if (!e) die("wh_engine_new", err);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/hook";
    if (wh_endpoint_add(e, &ep) < 0) die("wh_endpoint_add", WH_E_INVAL);
    const size_t blocks = 200, block = 10000;
    double v[200];
    for (size_t b = 0; b < blocks; b++) {
        double t0 = mono_s();
        for (size_t i = 0; i < block; i++) wh_poll(e, 0);
        v[b] = (mono_s() - t0) * 1e9 / (double)block;
    }
    printf("RESULT idle ns=%.1f\n", median(v, blocks));
    wh_engine_free(e);
}

/* ---- latency ---------------------------------------------------------------- */
typedef struct lat {
    double *emitted_at;   /* by event index */
    double *lat;
    size_t n_lat;
    uint64_t failed;
} lat;

static void lat_outcome(void *user, const wh_outcome *o)
{
    lat *l = user;
    if (o->kind != WH_DELIVERED) {
        l->failed++;
        return;
    }
    size_t i = (size_t)strtoull(o->ev.id + 2, NULL, 10);
    l->lat[l->n_lat++] = mono_s() - l->emitted_at[i];
}

static void run_latency(const char *url, double rate, double seconds, int block)
{
    size_t n = (size_t)(rate * seconds);
    if (n < 1000) n = 1000;
    lat l = {calloc(n, sizeof(double)), calloc(n, sizeof(double)), 0, 0};
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.on_outcome = lat_outcome;
    eo.outcome_user = &l;
    int err;
    wh_engine *e = wh_engine_new(&eo, &err);
    if (!e) die("wh_engine_new", err);
    add_endpoint(e, url, WH_MODE_SINGLE, 32);
    /* warm-up */
    for (int i = 0; i < 64; i++) wh_emit(e, TYPE, CHANNEL, payload, PAYLOAD_LEN, NULL);
    wh_flush(e, 10000);
    l.n_lat = 0;
    l.failed = 0;
    double t0 = mono_s();
    size_t sent = 0;
    char id[32];
    while (l.n_lat + l.failed < n) {
        double now = mono_s();
        size_t due = (size_t)((now - t0) * rate);
        if (due > n) due = n;
        while (sent < due) {
            snprintf(id, sizeof id, "b-%zu", sent);
            l.emitted_at[sent] = mono_s();
            int rc = wh_emit(e, TYPE, CHANNEL, payload, PAYLOAD_LEN, id);
            if (rc != 1) die("wh_emit", rc);
            sent++;
        }
        /* a game-loop host polls every turn without blocking; an event-loop
         * host sleeps in wh_poll until the network or its next event */
        wh_poll(e, block ? 1 : 0);
        if (now - t0 > seconds * 4 + 10) break;
    }
    double t1 = mono_s();
    qsort(l.lat, l.n_lat, sizeof(double), cmp_double);
    double p50 = l.n_lat ? l.lat[l.n_lat / 2] : 0;
    double p99 = l.n_lat ? l.lat[(size_t)((double)l.n_lat * 0.99)] : 0;
    double mx = l.n_lat ? l.lat[l.n_lat - 1] : 0;
    printf("RESULT latency loop=%s rate=%.0f achieved=%.0f events=%zu failed=%" PRIu64
           " p50_us=%.1f p99_us=%.1f max_us=%.1f\n",
           block ? "block" : "spin", rate, (double)l.n_lat / (t1 - t0), l.n_lat, l.failed, p50 * 1e6, p99 * 1e6,
           mx * 1e6);
    wh_engine_free(e);
    free(l.emitted_at);
    free(l.lat);
}

/* ---- scheduling jitter of the machine ------------------------------------- */
/* What any process on this machine gets from the scheduler right now,
 * independent of libwebhook (context for the latency tail): how late a
 * 200 us sleep wakes up, and how much a process that never sleeps (like the
 * latency benchmark's polling loop) is preempted: gaps between consecutive
 * clock reads over 2 seconds. */
static void run_jitter(size_t n)
{
    double *late = calloc(n, sizeof *late);
    struct timespec req = {0, 200000};
    for (size_t i = 0; i < n; i++) {
        double t0 = mono_s();
        nanosleep(&req, NULL);
        late[i] = mono_s() - t0 - 200e-6;
    }
    qsort(late, n, sizeof *late, cmp_double);
    double t_end = mono_s() + 2.0, prev = mono_s(), stolen = 0, longest = 0;
    size_t gaps_1ms = 0;
    for (;;) {
        double t = mono_s();
        double gap = t - prev;
        prev = t;
        if (gap > 50e-6) stolen += gap;
        if (gap > 1e-3) gaps_1ms++;
        if (gap > longest) longest = gap;
        if (t >= t_end) break;
    }
    printf("RESULT jitter samples=%zu p50_us=%.1f p99_us=%.1f max_us=%.1f "
           "spin_gaps_over_1ms=%zu spin_stolen_pct=%.2f spin_longest_us=%.1f\n", n,
           late[n / 2] * 1e6, late[(size_t)((double)n * 0.99)] * 1e6, late[n - 1] * 1e6,
           gaps_1ms, stolen / 2.0 * 100, longest * 1e6);
    free(late);
}

int main(int argc, char **argv)
{
    make_payload();
    if (strlen(payload) != PAYLOAD_LEN) {
        fprintf(stderr, "whbench: payload length %zu\n", strlen(payload));
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "payload")) {
        fputs(payload, stdout);
    } else if (!strcmp(cmd, "single") && argc == 5) {
        run_delivery("single", argv[2], strtoull(argv[3], NULL, 10), WH_MODE_SINGLE,
                     (uint32_t)atoi(argv[4]));
    } else if (!strcmp(cmd, "batch") && argc == 4) {
        run_delivery("batch", argv[2], strtoull(argv[3], NULL, 10), WH_MODE_BATCH, 8);
    } else if (!strcmp(cmd, "emit")) {
        run_emit(argc > 2 ? argv[2] : "warm");
    } else if (!strcmp(cmd, "filter")) {
        run_filter();
    } else if (!strcmp(cmd, "memory")) {
        int n_eps = argc > 2 ? atoi(argv[2]) : 1;
        run_memory(n_eps > 0 ? n_eps : 1, 1000000);
    } else if (!strcmp(cmd, "backend")) {
        puts(WH_BENCH_HMAC);
    } else if (!strcmp(cmd, "jitter")) {
        run_jitter(argc > 2 ? (size_t)atol(argv[2]) : 5000);
    } else if (!strcmp(cmd, "idle")) {
        run_idle();
    } else if (!strcmp(cmd, "latency") && (argc == 5 || argc == 6)) {
        run_latency(argv[2], atof(argv[3]), atof(argv[4]), argc > 5 && !strcmp(argv[5], "block"));
    } else {
        fprintf(stderr, "usage: whbench payload | single URL N INFLIGHT | batch URL N |"
                        " emit | memory | idle | latency URL RATE SECONDS\n");
        return 2;
    }
    return 0;
}
