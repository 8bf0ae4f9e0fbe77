/* whsend — deliver webhooks for events read as NDJSON, one per line.
 *
 *   whsend -c CONFIG.json [-q] [--drain-timeout MS] [--dead-letter FILE]
 *          [--queue SPEC] [--producer | --worker [--idle-exit MS]] [--ssrf-guard]
 *          [EVENTS.ndjson|-]
 *
 * Each line is {"event": "...", "channel": "...", "data": <any JSON>,
 * "id": "...", "headers": {"Name": "value"}} ("event" and "data" required;
 * "headers" are sent with this event's requests, see wh_emit_ex).  Endpoints come from CONFIG
 * (the wh_config_load format).  Delivery runs while input is read; at end of
 * input whsend waits for every pending delivery (retries included), then
 * prints one JSON summary line on stdout:
 *
 *   {"emitted":N,"delivered":N,"dead":N,"rejected":N,"requests":N,
 *    "retries":N,"elapsed_ms":N}
 *
 * With --dead-letter, every dead-lettered delivery (policy exhausted, or
 * still pending at exit) is appended to FILE as an input line
 * {"event":...,"channel":...,"data":...,"id":...}, so the file can be fed
 * back to whsend unchanged (same delivery id: receivers can deduplicate).
 *
 * Exit status: 0 everything delivered, 1 something was rejected or
 * dead-lettered, 2 usage or configuration error.
 *
 * Waiting: whsend waits on its input and on the engine at once (poll(2) on
 * the input with the engine's wh_timeout_ms as the timeout), so batch
 * lingers, retries and timeouts fire on time while the input is an open,
 * idle pipe.  Input is read in chunks; the engine is polled once per chunk
 * (at most LINES_PER_ROUND lines, or LINES_PER_ROUND_DURABLE with a durable
 * queue), not after every line, so it can keep
 * max_in_flight requests running and a durable queue commits once per
 * round.
 *
 * Signals: the first SIGINT/SIGTERM stops reading and drains what is
 * pending for up to --drain-timeout; a second one aborts: what remains is
 * dead-lettered (in-memory queue) or left in the queue (durable), and the
 * counts are reported on stderr.  A third one kills at once.
 *
 * Endpoint health changes (disabled, paused, resumed) are reported on
 * stderr, one line each, unless -q.
 *
 * Durable and shared queues (--queue sqlite:PATH | redis://HOST:PORT, or the
 * "queue" member of CONFIG): --producer only stores the events (another
 * process delivers them), --worker reads no input and delivers what is in
 * the shared queue until SIGINT/SIGTERM (or --idle-exit MS with nothing to
 * do).  Jobs still pending when whsend stops stay in the queue.
 *
 * --attempts FILE appends one NDJSON line per attempt (the attempt log:
 * event id, endpoint, attempt number, outcome, HTTP status, error, latency,
 * the first bytes of the response body, Retry-After and webhook-delivery).
 * --metrics ADDR:PORT (127.0.0.1:9464, [::1]:9464; port 0 picks one, named
 * on stderr) serves the engine's Prometheus metrics at /metrics while
 * whsend runs (libmicrohttpd; a snapshot refreshed every 100 ms).
 * Lines whose "id" was accepted within the configuration's
 * dedupe_window_ms are counted as "duplicates", not delivered again.
 *
 * Uses the public API only (the <webhook/...> headers); cJSON parses the input lines. */
#include <webhook/webhook.h>
#include <webhook/sqlite.h>
#include <webhook/redis.h>

#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#ifdef WH_WHSEND_MHD
#include <microhttpd.h>
#endif
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_DRAIN_MS INT64_C(900000) /* 15 min: covers the default retry
                                            schedule (8 attempts, 2 s doubling) */
#define MAX_LINE_BYTES ((size_t)64 << 20)
#define MAX_DEAD_SHOWN 10
#define PROGRESS_EVERY_MS 200
#define READ_CHUNK ((size_t)1 << 16)   /* bytes asked of one read() */
/* Input lines between two wh_poll rounds.  In-memory queue: a round costs
 * little, and a short one keeps the receiver busy with the requests already
 * started while whsend parses the next lines (a line takes about 3 us to
 * parse and emit: 64 take 0.2 ms, less than 32 requests take at nginx on
 * loopback, about 0.5 ms at 67k/s).  Durable queue: each
 * round is one transaction, so a longer one groups more commits. */
#define LINES_PER_ROUND 64
#define LINES_PER_ROUND_DURABLE 512
#define READ_AHEAD_JOBS 100000         /* stop reading while this many wait */
#define MAX_WAIT_MS 1000               /* longest single wait (re-checks state) */
#define SLICE_MS 5                     /* engine slice while requests run and
                                          the engine's fd cannot be watched */
#define DRAIN_SLICE_MS 100             /* wh_flush slice: progress, 2nd signal */

typedef struct app {
    wh_engine *e;
    wh_queue *q;                /* created here (durable/shared), or NULL */
    int durable;
    int efd;                /* wh_fd(e), or -1 */
    unsigned lines_per_round;   /* LINES_PER_ROUND[_DURABLE] */
    int quiet;                  /* -q */
    int producer;               /* --producer: nothing is delivered here */
    int show_progress;          /* stderr is a terminal and not -q */
    int progress_visible;       /* a progress line is on screen */
    int64_t last_progress;
    uint64_t emitted, delivered, dead, rejected;
    uint64_t dead_shown;
    FILE *dead_letter;          /* --dead-letter, or NULL */
    const char *dead_letter_path;
    int dead_letter_failed;
    uint64_t duplicates;        /* lines refused as WH_E_DUPLICATE */
    FILE *attempts;             /* --attempts, or NULL */
    const char *attempts_path;
    int attempts_failed;
    /* --metrics: the text the server thread answers with, refreshed by the
     * main thread (the engine is never touched from the server thread) */
    void *metrics_daemon;
    pthread_mutex_t metrics_mu;
    char *metrics_text;
    size_t metrics_len, metrics_cap;
    int64_t metrics_at;
} app;

static void metrics_refresh(app *a, int force);

/* Signals received (SIGINT/SIGTERM): 1 = stop reading and drain, 2 = abort. */
static volatile sig_atomic_t interrupted;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig)
{
    if (interrupted < 2) interrupted++;
    if (interrupted == 2) signal(sig, SIG_DFL); /* a third one kills at once */
}

/* ---- stderr: messages and the progress line ---------------------------------- */

static void progress_clear(app *a)
{
    if (!a->progress_visible) return;
    fputs("\r\033[K", stderr);
    a->progress_visible = 0;
}

static void say(app *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(app *a, const char *fmt, ...)
{
    progress_clear(a);
    va_list ap;
    va_start(ap, fmt);
    fputs("whsend: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void progress(app *a, int force)
{
    metrics_refresh(a, force);
    if (!a->show_progress) return;
    int64_t now = mono_ms();
    if (!force && now - a->last_progress < PROGRESS_EVERY_MS) return;
    a->last_progress = now;
    wh_stats st;
    if (wh_stats_get(a->e, &st) != WH_OK) return;
    fprintf(stderr,
            "\rwhsend: %" PRIu64 " emitted, %" PRIu64 " delivered, %" PRIu64
            " retries, %" PRIu64 " dead, %" PRIu64 " in flight\033[K",
            a->emitted, a->delivered, st.retries, a->dead, st.in_flight);
    a->progress_visible = 1;
}

/* A JSON string literal for s. */
static void put_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
        else if (*c == '\n') fputs("\\n", f);
        else if (*c == '\r') fputs("\\r", f);
        else if (*c == '\t') fputs("\\t", f);
        else if (*c < 0x20 || *c == 0x7f) fprintf(f, "\\u%04x", *c);
        else fputc(*c, f);
    }
    fputc('"', f);
}

/* One dead event as an input line whsend reads back unchanged. */
static void dead_letter(app *a, const wh_outcome *o)
{
    FILE *f = a->dead_letter;
    fputs("{\"event\":", f);
    put_json_string(f, o->ev.type);
    if (o->ev.channel) {
        fputs(",\"channel\":", f);
        put_json_string(f, o->ev.channel);
    }
    fputs(",\"data\":", f);
    fwrite(o->ev.data, 1, o->ev.data_len, f);
    fputs(",\"id\":", f);
    put_json_string(f, o->ev.id);
    if (o->event_headers) { /* "Name: value" lines back to {"Name": "value"} */
        fputs(",\"headers\":{", f);
        const char *l = o->event_headers;
        for (int first = 1; *l; first = 0) {
            size_t len = strcspn(l, "\n"), nl = strcspn(l, ":");
            if (nl > len) nl = len;
            char name[256], value[8192];
            snprintf(name, sizeof name, "%.*s", (int)nl, l);
            const char *v = l + nl + (nl < len ? 1 : 0);
            while (v < l + len && (*v == ' ' || *v == '\t')) v++;
            snprintf(value, sizeof value, "%.*s", (int)(l + len - v), v);
            if (!first) fputc(',', f);
            put_json_string(f, name);
            fputc(':', f);
            put_json_string(f, value);
            l += len;
            if (*l == '\n') l++;
        }
        fputc('}', f);
    }
    fputs("}\n", f);
    if (fflush(f) != 0 && !a->dead_letter_failed) {
        a->dead_letter_failed = 1;
        say(a, "%s: cannot write: %s", a->dead_letter_path, strerror(errno));
    }
}

static const char *kind_name(wh_outcome_kind k)
{
    return k == WH_DELIVERED ? "delivered" : k == WH_RETRY ? "retry" : "dead";
}

/* --attempts: one NDJSON line per attempt made (cancellations are not
 * attempts). */
static void attempt_log(app *a, const wh_outcome *o)
{
    if (o->error == WH_E_CANCELLED && o->http_status == 0) return;
    FILE *f = a->attempts;
    fputs("{\"id\":", f);
    put_json_string(f, o->ev.id);
    fputs(",\"event\":", f);
    put_json_string(f, o->ev.type);
    fputs(",\"endpoint\":", f);
    put_json_string(f, o->endpoint_id);
    fprintf(f, ",\"attempt\":%" PRIu32 ",\"outcome\":\"%s\",\"http_status\":%d,"
            "\"error\":\"%s\",\"latency_ms\":%" PRId64, o->attempt, kind_name(o->kind),
            o->http_status, wh_status_name(o->error), o->latency_ms);
    if (o->kind == WH_RETRY) fprintf(f, ",\"retry_in_ms\":%" PRId64, o->retry_in_ms);
    fputs(",\"message\":", f);
    put_json_string(f, o->error_msg);
    /* the body's first bytes as text (NUL and invalid bytes escaped) */
    fputs(",\"response_body\":\"", f);
    for (size_t i = 0; i < o->response_body_len; i++) {
        unsigned char ch = (unsigned char)o->response_body[i];
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", f);
        else if (ch < 0x20 || ch >= 0x7f) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
    if (o->retry_after) {
        fputs(",\"retry_after\":", f);
        put_json_string(f, o->retry_after);
    }
    if (o->delivery_control) {
        fputs(",\"webhook_delivery\":", f);
        put_json_string(f, o->delivery_control);
    }
    fputs("}\n", f);
    if (fflush(f) != 0 && !a->attempts_failed) {
        a->attempts_failed = 1;
        say(a, "%s: cannot write: %s", a->attempts_path, strerror(errno));
    }
}

static void on_outcome(void *user, const wh_outcome *o)
{
    app *a = user;
    if (a->attempts) attempt_log(a, o);
    if (o->kind == WH_DELIVERED) {
        a->delivered++;
    } else if (o->kind == WH_DEAD) {
        a->dead++;
        if (a->dead_letter) dead_letter(a, o);
        if (a->dead_shown < MAX_DEAD_SHOWN)
            say(a, "dead: event %s (%s) to %s after %" PRIu32 " attempt%s: %s",
                o->ev.id, o->ev.type, o->endpoint_id, o->attempt,
                o->attempt == 1 ? "" : "s", o->error_msg);
        else if (a->dead_shown == MAX_DEAD_SHOWN)
            say(a, "dead: further dead-lettered deliveries are not shown");
        a->dead_shown++;
    }
}

static const char *state_name(wh_ep_state s)
{
    switch (s) {
    case WH_EP_ACTIVE: return "active";
    case WH_EP_PAUSED: return "paused";
    case WH_EP_PROBING: return "probing";
    case WH_EP_DISABLED: return "disabled";
    }
    return "?";
}

/* One stderr line per endpoint state change (unless -q). */
static void on_health(void *user, const wh_health *h)
{
    app *a = user;
    if (a->quiet) return;
    const char *what = h->state == WH_EP_DISABLED ? "disabled"
                       : h->state == WH_EP_PAUSED ? "paused"
                       : h->state == WH_EP_ACTIVE ? "resumed"
                                                  : "probing";
    char status[32] = "";
    if (h->http_status) snprintf(status, sizeof status, ", HTTP %d", h->http_status);
    if (h->state == WH_EP_PAUSED && h->resume_at_ms >= 0) {
        /* the engine's default clock is CLOCK_MONOTONIC in ms, like mono_ms() */
        int64_t in = h->resume_at_ms - mono_ms();
        say(a, "endpoint %s %s (was %s%s, %" PRIu32 " consecutive failure%s): %s; "
            "probe in %" PRId64 " ms",
            h->endpoint_id, what, state_name(h->previous), status, h->consecutive_failures,
            h->consecutive_failures == 1 ? "" : "s", h->reason, in < 0 ? 0 : in);
    } else {
        say(a, "endpoint %s %s (was %s%s): %s", h->endpoint_id, what,
            state_name(h->previous), status, h->reason);
    }
}

/* ---- one input line ------------------------------------------------------------ */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
    return p;
}

/* p at '"': the byte after the closing quote. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') p++;
        else if (*p == '"') return p + 1;
    }
    return end;
}

static const char *skip_value(const char *p, const char *end)
{
    if (p >= end) return end;
    if (*p == '"') return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            else if ((*p == '}' || *p == ']') && --depth == 0) return p + 1;
            p++;
        }
        return end;
    }
    while (p < end && !strchr(",}] \t\r\n", *p)) p++;
    return p;
}

/* The raw text of the value of member number `index` of the JSON object in
 * s (already validated by cJSON, whose member order it follows).  The
 * payload is passed on byte for byte: re-serialising it would turn
 * 12345678901234567890 into 1.2345678901234567e+19. */
static int member_span(const char *s, size_t len, size_t index,
                       const char **vs, size_t *vn)
{
    const char *end = s + len, *p = skip_ws(s, end);
    if (p >= end || *p != '{') return -1;
    for (size_t i = 0;; i++) {
        p = skip_ws(p + 1, end);
        if (p >= end || *p != '"') return -1;
        p = skip_ws(skip_string(p, end), end);
        if (p >= end || *p != ':') return -1;
        p = skip_ws(p + 1, end);
        const char *v = p;
        p = skip_value(p, end);
        if (i == index) {
            *vs = v;
            *vn = (size_t)(p - v);
            return 0;
        }
        p = skip_ws(p, end);
        if (p >= end || *p != ',') return -1;
    }
}

/* 1 when the raw JSON string literal [s, s+n) holds a NUL character, as
 * the escape \u0000 or as a raw byte: cJSON would decode it and the C
 * string would end there, so two different values would become one. */
static int string_has_nul(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0') return 1;
        if (s[i] != '\\' || i + 1 >= n) continue;
        if (s[i + 1] == 'u' && i + 5 < n && memcmp(s + i + 2, "0000", 4) == 0) return 1;
        i++; /* skip the escaped character (\\ included) */
    }
    return 0;
}

static int optional_string(const cJSON *it, const char **out)
{
    if (cJSON_IsNull(it)) return 0;
    if (!cJSON_IsString(it) || !it->valuestring) return -1;
    *out = it->valuestring;
    return 0;
}

static void reject(app *a, unsigned long line_no, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reject(app *a, unsigned long line_no, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    a->rejected++;
    say(a, "line %lu: %s", line_no, msg);
}

/* Hand one parsed line to the engine, waiting out WH_E_FULL (backpressure:
 * deliveries finish, then the same line is tried again). */
static void emit_line(app *a, const char *type, const char *channel, const char *data,
                      size_t data_len, const char *id, char **hdr, size_t n_hdr,
                      unsigned long line_no)
{
    int rc;
    wh_event ev;
    wh_event_init(&ev);
    ev.type = type;
    ev.channel = channel;
    ev.data = data;
    ev.len = data_len;
    ev.id = id;
    ev.headers = (const char *const *)hdr;
    ev.n_headers = n_hdr;
    for (;;) {
        rc = n_hdr ? wh_emit_ex(a->e, &ev) : wh_emit(a->e, type, channel, data, data_len, id);
        if (rc != WH_E_FULL || interrupted) break;
        wh_poll(a->e, 10);
        progress(a, 0);
    }
    if (rc >= 0) a->emitted++;
    else if (rc == WH_E_DUPLICATE) a->duplicates++;
    else reject(a, line_no, "%s", wh_last_error(a->e));
}

/* The common line, read without building a tree: one object whose members
 * are "event", "channel" and "id" as strings with no escape and no control
 * character (their bytes are their values) and "data" (any value: wh_emit
 * validates it as JSON, and since what surrounds it is checked here, the
 * line is valid JSON exactly when the data is), each at most once.  Returns
 * 1 when the line was handed to the engine (or refused by it), 0 to leave
 * it to the full parser below (escapes, null, "headers", unknown or repeated
 * keys, anything malformed: it has the detailed messages).  Saves the
 * tree's allocations, about a tenth of whsend's CPU per event in make bench. */
static int fast_line(app *a, const char *line, size_t len, unsigned long line_no)
{
    enum { F_EVENT, F_CHANNEL, F_DATA, F_ID, F_N };
    static const char *const keys[F_N] = {"event", "channel", "data", "id"};
    const char *end = line + len, *p = skip_ws(line, end);
    const char *val[F_N] = {0};
    size_t vlen[F_N] = {0};
    unsigned seen = 0;
    if (p >= end || *p != '{') return 0;
    for (;;) {
        p = skip_ws(p + 1, end);
        if (p >= end || *p != '"') return 0;
        const char *k = p + 1, *q = memchr(k, '"', (size_t)(end - k));
        if (!q) return 0;
        int f = 0;
        while (f < F_N && !(strlen(keys[f]) == (size_t)(q - k) && memcmp(k, keys[f], (size_t)(q - k)) == 0))
            f++;
        if (f == F_N || (seen & (1u << f))) return 0;
        seen |= 1u << f;
        p = skip_ws(q + 1, end);
        if (p >= end || *p != ':') return 0;
        p = skip_ws(p + 1, end);
        const char *v = p;
        if (f == F_DATA) {
            p = skip_value(p, end);
            if (p == v) return 0;
        } else {
            if (p >= end || *p != '"') return 0;
            for (p++; p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20; p++) {}
            if (p >= end || *p != '"') return 0;
            v++;
        }
        val[f] = v;
        vlen[f] = (size_t)(p - v);
        if (f != F_DATA) p++;
        p = skip_ws(p, end);
        if (p >= end) return 0;
        if (*p == '}') break;
        if (*p != ',') return 0;
    }
    if (skip_ws(p + 1, end) != end || !(seen & (1u << F_EVENT)) || !(seen & (1u << F_DATA)))
        return 0;
    char type[256], channel[256], id[256];
    char *str[F_N] = {type, channel, NULL, id};
    for (int f = 0; f < F_N; f++) {
        if (f == F_DATA || !val[f]) continue;
        if (vlen[f] >= sizeof type) return 0;
        memcpy(str[f], val[f], vlen[f]);
        str[f][vlen[f]] = '\0';
    }
    emit_line(a, type, val[F_CHANNEL] ? channel : NULL, val[F_DATA], vlen[F_DATA],
              val[F_ID] ? id : NULL, NULL, 0, line_no);
    return 1;
}

static void handle_line(app *a, char *line, size_t len, unsigned long line_no)
{
    if (line_no == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3; /* UTF-8 byte order mark */
        len -= 3;
    }
    const char *end = line + len;
    if (skip_ws(line, end) == end) return; /* blank line */
    if (fast_line(a, line, len, line_no)) return;

    char **hdr = NULL;           /* "headers" as lines, NULL-terminated */
    const cJSON *headers = NULL;
    const char *stop = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(line, len, &stop, 0);
    if (!root) {
        size_t col = stop && stop >= line && stop <= end ? (size_t)(stop - line) + 1 : 1;
        reject(a, line_no, "not valid JSON (near column %zu)", col);
        return;
    }
    const char *rest = skip_ws(stop, end);
    if (rest != end) {
        reject(a, line_no, "unexpected text after the JSON object (column %zu)",
               (size_t)(rest - line) + 1);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        reject(a, line_no, "expected a JSON object {\"event\": ..., \"data\": ...}");
        goto done;
    }
    const char *type = NULL, *channel = NULL, *id = NULL;
    long data_index = -1;
    unsigned seen = 0;
    size_t i = 0;
    for (const cJSON *it = root->child; it; it = it->next, i++) {
        static const char *const keys[] = {"event", "channel", "data", "id", "headers"};
        unsigned k = 0;
        while (k < 5 && strcmp(it->string, keys[k]) != 0) k++;
        if (k == 5) {
            reject(a, line_no, "unknown key \"%.64s\" (expected event, channel, "
                   "data, id, headers)", it->string);
            goto done;
        }
        if (seen & (1u << k)) {
            reject(a, line_no, "duplicate key \"%s\"", keys[k]);
            goto done;
        }
        seen |= 1u << k;
        if (k != 2 && cJSON_IsString(it)) {
            const char *vs;
            size_t vn;
            if (member_span(line, len, i, &vs, &vn) != 0) {
                reject(a, line_no, "cannot locate \"%s\"", keys[k]);
                goto done;
            }
            if (string_has_nul(vs, vn)) {
                reject(a, line_no, "\"%s\" contains a NUL character (\\u0000); refused "
                       "rather than cut short", keys[k]);
                goto done;
            }
        }
        if (k == 0) {
            if (!cJSON_IsString(it) || !it->valuestring) {
                reject(a, line_no, "\"event\" must be a string");
                goto done;
            }
            type = it->valuestring;
        } else if (k == 1 && optional_string(it, &channel) != 0) {
            reject(a, line_no, "\"channel\" must be a string");
            goto done;
        } else if (k == 2) {
            data_index = (long)i;
        } else if (k == 3 && optional_string(it, &id) != 0) {
            reject(a, line_no, "\"id\" must be a string");
            goto done;
        } else if (k == 4) {
            headers = it;
        }
    }
    /* "headers": {"Name": "value", ...} -> "Name: value" lines */
    size_t n_hdr = 0;
    if (headers && !cJSON_IsNull(headers)) {
        if (!cJSON_IsObject(headers)) {
            reject(a, line_no, "\"headers\" must be an object of strings");
            goto done;
        }
        size_t cnt = (size_t)cJSON_GetArraySize(headers);
        hdr = calloc(cnt + 1, sizeof *hdr);
        if (!hdr) {
            reject(a, line_no, "out of memory");
            goto done;
        }
        for (const cJSON *h = headers->child; h; h = h->next) {
            if (!cJSON_IsString(h) || !h->valuestring) {
                reject(a, line_no, "\"headers\".\"%.64s\" must be a string", h->string);
                goto done;
            }
            size_t nl = strlen(h->string), vl = strlen(h->valuestring);
            char *l = malloc(nl + vl + 3);
            if (!l) {
                reject(a, line_no, "out of memory");
                goto done;
            }
            memcpy(l, h->string, nl);
            memcpy(l + nl, ": ", 2);
            memcpy(l + nl + 2, h->valuestring, vl + 1);
            hdr[n_hdr++] = l;
        }
    }
    if (!type) {
        reject(a, line_no, "missing \"event\"");
        goto done;
    }
    if (data_index < 0) {
        reject(a, line_no, "missing \"data\"");
        goto done;
    }
    const char *data;
    size_t data_len;
    if (member_span(line, len, (size_t)data_index, &data, &data_len) != 0) {
        reject(a, line_no, "cannot locate \"data\"");
        goto done;
    }
    emit_line(a, type, channel, data, data_len, id, hdr, n_hdr, line_no);
done:
    for (size_t k = 0; hdr && hdr[k]; k++) free(hdr[k]);
    free(hdr);
    cJSON_Delete(root);
}

/* ---- input ---------------------------------------------------------------------- */

/* The engine's own pollable descriptor, if whsend used wh_fd (see main:
 * it does not, for speed): wait_input_or_engine() would watch it and the
 * input in one poll(2).  -1: the engine's sockets are not visible here and
 * a slice of wh_poll waits on them instead while requests run. */
static int engine_fd(const app *a)
{
    return a->efd;
}

/* How long the engine may be left alone: wh_timeout_ms (the next batch
 * linger, retry, rate-limit slot or transport timer), capped so that state
 * is re-checked at least every MAX_WAIT_MS (and the progress line moves). */
static int engine_wait_ms(app *a)
{
    int64_t t = wh_timeout_ms(a->e);
    int64_t cap = a->show_progress ? PROGRESS_EVERY_MS : MAX_WAIT_MS;
    if (t < 0 || t > cap) t = cap;
    return (int)t;
}

/* Wait until fd has input or the engine has work due; drive the engine
 * either way.  Returns 1 when fd is readable (or at its end or in error:
 * read() will say), 0 otherwise. */
static int wait_input_or_engine(app *a, int fd)
{
    int t = engine_wait_ms(a);
    struct pollfd p[2] = {{fd, POLLIN, 0}, {engine_fd(a), POLLIN, 0}};
    if (p[1].fd < 0) {
        wh_stats st;
        if (wh_stats_get(a->e, &st) == WH_OK && st.in_flight > 0) {
            /* Requests are running and their sockets are not ours to poll:
             * look at the input without waiting, then let wh_poll wait on
             * the sockets for a short slice.  Input waits at most a slice;
             * responses and transport timers are handled as they come. */
            if (poll(p, 1, 0) > 0) return 1;
            wh_poll(a->e, t < SLICE_MS ? t : SLICE_MS);
            progress(a, 0);
            return 0;
        }
    }
    /* Nothing in flight (or the engine's fd is watched): sleep until the
     * input moves or the engine's next deadline, whichever comes first. */
    int n = poll(p, p[1].fd >= 0 ? 2 : 1, t);
    wh_poll(a->e, 0);
    progress(a, 0);
    return n > 0 && p[0].revents != 0;
}

/* Jobs waiting or running: reading stops while READ_AHEAD_JOBS wait, so a
 * large input does not pile up in memory ahead of the deliveries. */
static int backlog_full(app *a)
{
    if (a->producer) return 0; /* nothing is delivered here: store it all */
    wh_stats st;
    return wh_stats_get(a->e, &st) == WH_OK && st.queued + st.in_flight >= READ_AHEAD_JOBS;
}

/* Read fd to the end, one event per line, polling the engine once per
 * chunk of input (at most a->lines_per_round lines).  Stops at the first
 * signal.  Returns 0, or -1 after a read error (reported). */
static int read_events(app *a, int fd, const char *name)
{
    size_t cap = READ_CHUNK * 2, len = 0, start = 0;
    char *buf = malloc(cap);
    unsigned long line_no = 0;
    int skipping = 0, eof = 0, rc = 0;
    if (!buf) {
        say(a, "out of memory");
        return -1;
    }
    while (!interrupted) {
        /* the complete lines in the buffer, a round's worth at a time */
        char *nl = NULL;
        unsigned handled = 0;
        while (!interrupted && handled < a->lines_per_round &&
               (nl = memchr(buf + start, '\n', len - start))) {
            line_no++;
            if (skipping) skipping = 0; /* the rest of an over-long line */
            else handle_line(a, buf + start, (size_t)(nl - (buf + start)), line_no);
            start = (size_t)(nl - buf) + 1;
            handled++;
        }
        if (handled) {
            wh_poll(a->e, 0); /* one engine round (and one queue commit) per chunk */
            progress(a, 0);
            if (nl) continue; /* the round ended before the buffer did */
        }
        if (interrupted) break;
        if (eof) {
            if (start < len && !skipping) handle_line(a, buf + start, len - start, ++line_no);
            break;
        }
        /* keep the partial line, make room for a whole chunk */
        memmove(buf, buf + start, len - start);
        len -= start;
        start = 0;
        if (len > MAX_LINE_BYTES) {
            if (!skipping) reject(a, line_no + 1, "longer than %zu bytes", MAX_LINE_BYTES);
            skipping = 1;
            len = 0;
        }
        if (cap - len < READ_CHUNK) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                say(a, "out of memory reading line %lu", line_no + 1);
                rc = -1;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        if (backlog_full(a)) {
            wh_poll(a->e, engine_wait_ms(a));
            progress(a, 0);
            continue;
        }
        if (!wait_input_or_engine(a, fd)) continue;
        /* poll said readable: this read returns what is there without
         * blocking (pipes, terminals, sockets; files never block) */
        ssize_t n = read(fd, buf + len, cap - len);
        if (n > 0) {
            len += (size_t)n;
        } else if (n == 0) {
            eof = 1;
        } else if (errno != EINTR && errno != EAGAIN) {
            say(a, "%s: read error: %s", name, strerror(errno));
            rc = -1;
            break;
        }
    }
    free(buf);
    return rc;
}

/* ---- queues ---------------------------------------------------------------------- */

static void on_log(void *user, wh_log_level level, const char *msg)
{
    if (level <= WH_LOG_WARN) say(user, "%s", msg);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* The queue from --queue SPEC, else from the configuration's "queue"
 * member; *out stays NULL for the default in-memory queue.  Returns 0, or
 * -1 after reporting the error. */
static int make_queue(app *a, const char *spec, const char *config, int producer,
                      wh_queue **out)
{
    *out = NULL;
    int rc = WH_OK;
    if (spec && strncmp(spec, "sqlite:", 7) == 0 && spec[7]) {
        wh_sqlite_options o;
        wh_sqlite_options_init(&o);
        o.producer_only = producer;
        o.on_log = on_log;
        o.log_user = a;
        rc = wh_queue_sqlite_new(spec + 7, &o, out);
        if (rc != WH_OK) say(a, "--queue %s: %s", spec, wh_strerror(rc));
    } else if (spec && strcmp(spec, "memory") == 0) {
        return 0;
    } else if (spec && strncmp(spec, "redis://", 8) == 0) {
        /* through the config parser, which knows the URL form */
        char json[600];
        snprintf(json, sizeof json, "{\"queue\":{\"type\":\"redis\",\"url\":\"%.500s\","
                 "\"producer_only\":%s}}", spec, producer ? "true" : "false");
        char err[256];
        rc = wh_config_queue_new(json, strlen(json), on_log, a, out, err, sizeof err);
        if (rc != WH_OK) say(a, "--queue %s: %s", spec, err);
    } else if (spec) {
        say(a, "--queue: expected memory, sqlite:PATH or redis://HOST:PORT, got \"%s\"", spec);
        return -1;
    } else {
        size_t len = 0;
        char *text = read_file(config, &len);
        if (!text) return 0; /* wh_config_load_file reports it */
        cJSON *root = cJSON_ParseWithLength(text, len);
        cJSON *qn = root ? cJSON_GetObjectItemCaseSensitive(root, "queue") : NULL;
        if (qn && producer && cJSON_IsObject(qn)) {
            /* --producer overrides the document */
            cJSON_DeleteItemFromObjectCaseSensitive(qn, "producer_only");
            cJSON_AddTrueToObject(qn, "producer_only");
        }
        char *doc = qn ? cJSON_PrintUnformatted(root) : NULL;
        if (doc) {
            char err[256];
            rc = wh_config_queue_new(doc, strlen(doc), on_log, a, out, err, sizeof err);
            if (rc != WH_OK) say(a, "%s: %s", config, err);
            cJSON_free(doc);
        }
        cJSON_Delete(root);
        free(text);
    }
    return rc == WH_OK ? 0 : -1;
}

/* --worker: deliver what the shared queue holds until a signal, or until
 * nothing was queued or in flight for idle_ms (0: never). */
static void run_worker(app *a, int64_t idle_ms)
{
    int64_t idle_since = -1;
    while (!interrupted) {
        wh_poll(a->e, 50);
        progress(a, 0);
        if (idle_ms <= 0) continue;
        wh_stats st;
        wh_stats_get(a->e, &st);
        int64_t now = mono_ms();
        if (st.queued || st.in_flight) idle_since = -1;
        else if (idle_since < 0) idle_since = now;
        else if (now - idle_since >= idle_ms) break;
    }
}

/* --producer: make sure everything accepted is written before exiting. */
static int producer_finish(app *a)
{
    wh_queue_info info;
    for (int i = 0; i < 100; i++) {
        wh_poll(a->e, 0);
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        if (wh_queue_info_get(a->q, &info) == WH_OK && info.pending == 0) return 0;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    say(a, "%" PRIu64 " accepted event job(s) could not be written to the queue",
        info.pending);
    return -1;
}

/* ---- --metrics ------------------------------------------------------------------ */

static void metrics_refresh(app *a, int force)
{
    if (!a->metrics_daemon) return;
    int64_t now = mono_ms();
    if (!force && now - a->metrics_at < 100) return;
    a->metrics_at = now;
    size_t need = wh_metrics_write(a->e, NULL, 0);
    pthread_mutex_lock(&a->metrics_mu);
    if (need + 1 > a->metrics_cap) {
        char *p = realloc(a->metrics_text, need + 1);
        if (p) {
            a->metrics_text = p;
            a->metrics_cap = need + 1;
        }
    }
    if (a->metrics_cap >= need + 1) {
        wh_metrics_write(a->e, a->metrics_text, a->metrics_cap);
        a->metrics_len = need;
    }
    pthread_mutex_unlock(&a->metrics_mu);
}

#ifdef WH_WHSEND_MHD
static enum MHD_Result metrics_answer(void *cls, struct MHD_Connection *conn,
                                      const char *url, const char *method,
                                      const char *version, const char *upload,
                                      size_t *upload_size, void **con_cls)
{
    app *a = cls;
    (void)version, (void)upload, (void)con_cls;
    if (*upload_size) return MHD_NO;
    int ok = strcmp(url, "/metrics") == 0 &&
             (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
    struct MHD_Response *r;
    if (ok) {
        pthread_mutex_lock(&a->metrics_mu);
        r = MHD_create_response_from_buffer(a->metrics_len, a->metrics_text ? a->metrics_text : "",
                                            MHD_RESPMEM_MUST_COPY);
        pthread_mutex_unlock(&a->metrics_mu);
    } else {
        static const char nf[] = "not found: GET /metrics\n";
        r = MHD_create_response_from_buffer(sizeof nf - 1, (void *)nf, MHD_RESPMEM_PERSISTENT);
    }
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type",
                            ok ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain");
    enum MHD_Result ret = MHD_queue_response(conn, ok ? MHD_HTTP_OK : MHD_HTTP_NOT_FOUND, r);
    MHD_destroy_response(r);
    return ret;
}
#endif

/* Start the --metrics server on ADDR:PORT ("127.0.0.1:9464", "[::1]:0").
 * Returns 0, or -1 after reporting the error. */
static int metrics_start(app *a, const char *spec)
{
#ifdef WH_WHSEND_MHD
    char host[64];
    const char *colon = strrchr(spec, ':');
    size_t hl = colon ? (size_t)(colon - spec) : 0;
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || hl == 0 || hl >= sizeof host || !end || *end || end == colon + 1 ||
        port < 0 || port > 65535) {
        say(a, "--metrics: expected ADDR:PORT (127.0.0.1:9464 or [::1]:9464), got \"%s\"",
            spec);
        return -1;
    }
    memcpy(host, spec, hl);
    host[hl] = '\0';
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1) port = -1;
        flags |= MHD_USE_IPv6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) port = -1;
    }
    if (port < 0) {
        say(a, "--metrics: \"%s\" is not an IPv4 or [IPv6] address", host);
        return -1;
    }
    pthread_mutex_init(&a->metrics_mu, NULL);
    struct MHD_Daemon *d = MHD_start_daemon(flags, 0, NULL, NULL, metrics_answer, a,
                                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                            MHD_OPTION_END);
    if (!d) {
        say(a, "--metrics %s: cannot listen: %s", spec, strerror(errno));
        pthread_mutex_destroy(&a->metrics_mu);
        return -1;
    }
    a->metrics_daemon = d;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    say(a, "metrics on http://%s%s%s:%u/metrics", host[0] == '[' ? "[" : "",
        host[0] == '[' ? host + 1 : host, host[0] == '[' ? "]" : "",
        info ? (unsigned)info->port : (unsigned)port);
    metrics_refresh(a, 1);
    return 0;
#else
    (void)spec;
    say(a, "--metrics: this whsend was built without libmicrohttpd");
    return -1;
#endif
}

static void metrics_stop(app *a)
{
#ifdef WH_WHSEND_MHD
    if (!a->metrics_daemon) return;
    MHD_stop_daemon(a->metrics_daemon);
    a->metrics_daemon = NULL;
    pthread_mutex_destroy(&a->metrics_mu);
#endif
    free(a->metrics_text);
    a->metrics_text = NULL;
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(FILE *to)
{
    fputs("usage: whsend -c CONFIG.json [-q] [--drain-timeout MS] [--dead-letter FILE]\n"
          "              [--queue SPEC] [--producer | --worker [--idle-exit MS]]\n"
          "              [--ssrf-guard] [EVENTS.ndjson|-]\n"
          "\n"
          "Delivers one webhook event per input line (default: standard input):\n"
          "  {\"event\": \"message.created\", \"channel\": \"room-1\", \"data\": {...}, \"id\": \"...\"}\n"
          "\"event\" and \"data\" are required; \"channel\" and \"id\" are optional.\n"
          "\n"
          "  -c FILE              endpoints configuration (JSON: {\"endpoints\": [...]})\n"
          "  -q                   quiet: no progress line on a terminal, no endpoint\n"
          "                       health lines (disabled, paused, resumed)\n"
          "  --drain-timeout MS   at end of input (or after a first SIGINT/SIGTERM),\n"
          "                       wait at most MS ms for pending deliveries (default\n"
          "                       900000; 0 = no limit); a second signal aborts\n"
          "  --dead-letter FILE   append every dead-lettered event to FILE as an input\n"
          "                       line (replay it with whsend unchanged)\n"
          "  --queue SPEC         memory, sqlite:PATH or redis://HOST:PORT (default:\n"
          "                       the configuration's \"queue\", else memory)\n"
          "  --producer           only store the events in the (durable) queue\n"
          "  --worker             read no input: deliver what the shared queue holds\n"
          "                       until SIGINT/SIGTERM\n"
          "  --idle-exit MS       with --worker: stop after MS ms with nothing to do\n"
          "  --ssrf-guard         refuse to connect to loopback, private, link-local and\n"
          "                       other non-public addresses (as \"ssrf_guard\": true)\n"
          "  --attempts FILE      append one NDJSON line per delivery attempt (status,\n"
          "                       latency, first bytes of the answer)\n"
          "  --metrics ADDR:PORT  serve Prometheus metrics at http://ADDR:PORT/metrics\n"
          "                       while running (127.0.0.1:9464; port 0: any, named\n"
          "                       on stderr)\n"
          "  -h, --help           show this help\n"
          "\n"
          "Prints one JSON summary line on standard output.  Exit status: 0 all\n"
          "delivered, 1 some lines rejected or deliveries dead-lettered, 2 usage or\n"
          "configuration error.\n",
          to);
}

static int parse_ms(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"drain-timeout", required_argument, NULL, 'd'},
        {"dead-letter", required_argument, NULL, 'D'},
        {"queue", required_argument, NULL, 'Q'},
        {"producer", no_argument, NULL, 'P'},
        {"worker", no_argument, NULL, 'W'},
        {"idle-exit", required_argument, NULL, 'I'},
        {"ssrf-guard", no_argument, NULL, 'S'},
        {"attempts", required_argument, NULL, 'A'},
        {"metrics", required_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int64_t t0 = mono_ms();
    const char *config = NULL, *input = "-", *dead_path = NULL;
    int quiet = 0, c;
    int64_t drain_ms = DEFAULT_DRAIN_MS;
    const char *queue_spec = NULL, *attempts_path = NULL, *metrics_spec = NULL;
    int producer = 0, worker = 0;
    int64_t idle_ms = 0;
    int ssrf_guard = 0;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'q': quiet = 1; break;
        case 'd':
            if (parse_ms(optarg, &drain_ms) != 0) {
                fprintf(stderr, "whsend: --drain-timeout: expected milliseconds, got \"%s\"\n",
                        optarg);
                return 2;
            }
            break;
        case 'D': dead_path = optarg; break;
        case 'Q': queue_spec = optarg; break;
        case 'A': attempts_path = optarg; break;
        case 'M': metrics_spec = optarg; break;
        case 'P': producer = 1; break;
        case 'W': worker = 1; break;
        case 'S': ssrf_guard = 1; break;
        case 'I':
            if (parse_ms(optarg, &idle_ms) != 0) {
                fprintf(stderr, "whsend: --idle-exit: expected milliseconds, got \"%s\"\n",
                        optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        case ':':
            fprintf(stderr, "whsend: option %s needs a value\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        default:
            fprintf(stderr, "whsend: unknown option %s\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (!config) {
        fprintf(stderr, "whsend: missing -c CONFIG.json\n");
        usage(stderr);
        return 2;
    }
    if (producer && worker) {
        fprintf(stderr, "whsend: --producer and --worker exclude each other\n");
        return 2;
    }
    if (!worker && optind < argc) input = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "whsend: unexpected argument %s\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    int fd = 0;
    if (!worker && strcmp(input, "-") != 0 && (fd = open(input, O_RDONLY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "whsend: %s: %s\n", input, strerror(errno));
        return 2;
    }

    app a;
    memset(&a, 0, sizeof a);
    a.quiet = quiet;
    a.producer = producer;
    a.show_progress = !quiet && isatty(2);
    if (dead_path) {
        a.dead_letter = fopen(dead_path, "a");
        if (!a.dead_letter) {
            fprintf(stderr, "whsend: %s: %s\n", dead_path, strerror(errno));
            if (fd > 0) close(fd);
            return 2;
        }
        a.dead_letter_path = dead_path;
    }
    if (attempts_path) {
        a.attempts = fopen(attempts_path, "a");
        if (!a.attempts) {
            fprintf(stderr, "whsend: %s: %s\n", attempts_path, strerror(errno));
            if (fd > 0) close(fd);
            if (a.dead_letter) fclose(a.dead_letter);
            return 2;
        }
        a.attempts_path = attempts_path;
    }
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.on_outcome = on_outcome;
    eo.outcome_user = &a;
    eo.on_log = on_log;
    eo.log_user = &a;
    eo.log_level = WH_LOG_WARN;
    eo.on_health = on_health;
    eo.health_user = &a;
    eo.ssrf_guard = ssrf_guard;
    if (make_queue(&a, queue_spec, config, producer, &a.q) != 0) {
        if (fd > 0) close(fd);
        return 2;
    }
    if (a.q) {
        wh_queue_info qi;
        memset(&qi, 0, sizeof qi);
        qi.struct_size = sizeof qi;
        a.durable = wh_queue_info_get(a.q, &qi) == WH_OK && qi.durable;
    }
    a.lines_per_round = a.durable ? LINES_PER_ROUND_DURABLE : LINES_PER_ROUND;
    if (!a.q) eo.on_log = NULL; /* the default queue: dead letters are shown above */
    if ((producer || worker) && !a.durable) {
        fprintf(stderr, "whsend: --%s needs a durable queue (--queue sqlite:PATH or "
                "redis://HOST:PORT)\n", producer ? "producer" : "worker");
        wh_queue_free(a.q);
        if (fd > 0) close(fd);
        return 2;
    }
    eo.queue = a.q;
    eo.queue_owned = 1;
    int err = 0;
    a.e = wh_engine_new(&eo, &err);
    if (!a.e) {
        fprintf(stderr, "whsend: cannot start the engine: %s\n", wh_strerror(err));
        wh_queue_free(a.q); /* wh_engine_new takes nothing on failure */
        if (fd > 0) close(fd);
        if (a.dead_letter) fclose(a.dead_letter);
        return 2;
    }
    /* Not wh_fd(a.e): measured in make bench (section 8), driving the
     * engine through its pollable descriptor costs whsend about 5 us of CPU
     * per delivery more than wh_poll's own wait (the socket hooks re-arm an
     * epoll entry per state change of every connection), 0.74x instead of
     * 0.91x the hand-written libcurl loop.  While requests run, a short
     * wh_poll slice waits on the sockets instead (wait_input_or_engine). */
    a.efd = -1;
    if (wh_config_load_file(a.e, config) != WH_OK) {
        fprintf(stderr, "whsend: %s\n", wh_last_error(a.e));
        wh_engine_free(a.e);
        if (fd > 0) close(fd);
        if (a.dead_letter) fclose(a.dead_letter);
        return 2;
    }

    if (metrics_spec && metrics_start(&a, metrics_spec) != 0) {
        wh_engine_free(a.e);
        if (fd > 0) close(fd);
        if (a.dead_letter) fclose(a.dead_letter);
        if (a.attempts) fclose(a.attempts);
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a blocked read/poll wakes up */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int input_failed = 0;
    if (worker) {
        run_worker(&a, idle_ms);
    } else {
        input_failed = read_events(&a, fd, strcmp(input, "-") ? input : "stdin") != 0;
        if (fd > 0) close(fd);
    }
    if (producer && producer_finish(&a) != 0) input_failed = 1;
    if (a.durable && !worker && !interrupted) {
        /* a round commits what was accepted; what is still only in this
         * process's memory (Redis unreachable, no spool) is said so */
        wh_poll(a.e, 0);
        wh_queue_info qi;
        memset(&qi, 0, sizeof qi);
        qi.struct_size = sizeof qi;
        uint64_t in_memory = wh_queue_info_get(a.q, &qi) == WH_OK ? qi.pending : 0;
        if (in_memory)
            say(&a, "input done: %" PRIu64 " event(s) accepted; %" PRIu64 " job(s) are "
                "not stored yet (held in this process's memory until the queue answers)",
                a.emitted, in_memory);
        else
            say(&a, "input done: %" PRIu64 " event(s) accepted and stored in the queue",
                a.emitted);
    }

    /* Drain (also after a first signal), in slices so that the progress
     * line moves and a second signal is seen within a slice. */
    int64_t deadline = drain_ms > 0 ? mono_ms() + drain_ms : INT64_MAX;
    int drained = 0, told = 0;
    while (interrupted < 2 && !producer && !worker) {
        if (interrupted && !told) {
            wh_stats ds;
            wh_stats_get(a.e, &ds);
            char limit[48] = "no time limit";
            if (drain_ms > 0)
                snprintf(limit, sizeof limit, "up to %" PRId64 " ms",
                         deadline - mono_ms() > 0 ? deadline - mono_ms() : 0);
            say(&a, "interrupted: not reading further input; draining %" PRIu64
                " pending deliveries (%s; a second signal aborts)",
                ds.queued + ds.in_flight, limit);
            told = 1;
        }
        int64_t left = deadline - mono_ms();
        if (left <= 0) break;
        int rc = wh_flush(a.e, left > DRAIN_SLICE_MS ? DRAIN_SLICE_MS : left);
        if (rc == WH_OK) {
            drained = 1;
            break;
        }
        if (rc != WH_E_TIMEOUT) {
            say(&a, "%s", wh_last_error(a.e));
            break;
        }
        progress(&a, 0);
    }
    wh_stats st;
    wh_stats_get(a.e, &st);
    const char *why = interrupted >= 2 ? "aborted by a second signal"
                      : worker         ? "stopping"
                      : interrupted    ? "interrupted"
                                       : "drain timeout reached";
    if (!drained && a.durable && !producer && (worker || st.queued + st.in_flight)) {
        say(&a, "%s with %" PRIu64 " deliveries pending (%" PRIu64 " queued, %" PRIu64
            " in flight); they stay in the queue",
            why, st.queued + st.in_flight, st.queued, st.in_flight);
    } else if (!drained && !a.durable && !producer) {
        say(&a, "%s with %" PRIu64 " deliveries pending (%" PRIu64 " queued, %" PRIu64
            " in flight); they are dead-lettered%s%s",
            why, st.queued + st.in_flight, st.queued, st.in_flight,
            a.dead_letter ? " to " : "", a.dead_letter ? a.dead_letter_path : "");
    }
    progress_clear(&a);
    metrics_stop(&a);
    wh_engine_free(a.e); /* in-memory queue: reports anything left as dead (cancelled) */
    progress_clear(&a);

    /* "duplicates" (lines refused by dedupe_window_ms) only when some were */
    char dups[48] = "";
    if (a.duplicates) snprintf(dups, sizeof dups, ",\"duplicates\":%" PRIu64, a.duplicates);
    printf("{\"emitted\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"dead\":%" PRIu64
           ",\"rejected\":%" PRIu64 ",\"requests\":%" PRIu64 ",\"retries\":%" PRIu64
           "%s,\"elapsed_ms\":%" PRId64 "}\n",
           a.emitted, a.delivered, a.dead, a.rejected, st.requests, st.retries, dups,
           mono_ms() - t0);
    fflush(stdout);
    if (a.dead_letter && fclose(a.dead_letter) != 0 && !a.dead_letter_failed) {
        fprintf(stderr, "whsend: %s: cannot write: %s\n", dead_path, strerror(errno));
        a.dead_letter_failed = 1;
    }
    if (a.attempts && fclose(a.attempts) != 0 && !a.attempts_failed) {
        fprintf(stderr, "whsend: %s: cannot write: %s\n", attempts_path, strerror(errno));
        a.attempts_failed = 1;
    }
    if (a.dead_letter_failed || a.attempts_failed) return 2;
    return a.dead || a.rejected || input_failed ? 1 : 0;
}
