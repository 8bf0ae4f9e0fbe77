/* receiver — a small webhook receiver (libmicrohttpd + libwebhook's
 * wh_verify_* helpers).  Copy it as the starting point of your own.
 *
 *   receiver --port N [--preset NAME] [--secret S] [--public-key FILE]
 *            [--expect N] [--quiet] [--fail-percent P]
 *
 * --preset names the sender's preset and so the headers and the signature
 * scheme to check (default "standard"):
 *   standard, svix   {webhook,svix}-id/-timestamp/-signature, wh_verify_standard
 *                    (secret whsec_..., timestamp within 5 minutes)
 *   stream           X-WEBHOOK-ID, X-SIGNATURE: hex HMAC, wh_verify_hmac_hex
 *   pusher           X-Pusher-Signature: hex HMAC, wh_verify_hmac_hex
 *   sendbird         x-sendbird-signature: hex HMAC, wh_verify_hmac_hex
 *   dyte             dyte-uuid, dyte-signature: RSA-SHA256 checked with the
 *                    PEM public key of --public-key, wh_verify_rsa_sha256
 * Without --secret (or --public-key for dyte) nothing is verified.
 *
 * Listens on 127.0.0.1:N (N = 0 picks a free port) and prints
 * "listening 127.0.0.1:PORT" on stdout.  Every POST is an event: when a
 * secret is given its webhook-id / webhook-timestamp / webhook-signature
 * headers are verified (204 when valid, 401 when not, 400 when the headers
 * are missing or malformed); without a secret every POST gets 204.
 *
 * On SIGINT or SIGTERM -- or, with --expect N, 200 ms after N distinct
 * ids were accepted or rejected (requests, for presets without an id
 * header) -- it prints one JSON line on stdout and exits 0:
 *   {"received":N,"verified":N,"bad_signature":N,"distinct_ids":N}
 * Unless --quiet, one line per event goes to stderr.
 *
 * --fail-percent P answers 503 to the first delivery of about P% of the
 * webhook-ids (chosen by a hash of the id), to show the sender's retries;
 * the summary then also has "failed_on_purpose":N.
 *
 * Threads: libmicrohttpd answers from its own polling thread; the counters
 * are behind one mutex.  The main thread only waits for a signal.
 *
 * Build: cc -std=c11 receiver.c $(pkg-config --cflags --libs libwebhook
 *        libmicrohttpd) -o receiver */
#include <webhook/webhook.h>
#include <webhook/verify.h>

#include <microhttpd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_BODY (1024 * 1024) /* larger requests get 413 */

/* ---- a set of strings (open addressing, FNV-1a) ---------------------------- */

typedef struct str_set {
    char **slots;   /* NULL = empty */
    size_t cap;     /* power of two */
    size_t n;
} str_set;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int set_grow(str_set *set)
{
    size_t cap = set->cap ? set->cap * 2 : 1024;
    char **slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < set->cap; i++) {
        char *s = set->slots[i];
        if (!s) continue;
        size_t j = (size_t)fnv1a(s) & (cap - 1);
        while (slots[j]) j = (j + 1) & (cap - 1);
        slots[j] = s;
    }
    free(set->slots);
    set->slots = slots;
    set->cap = cap;
    return 0;
}

/* 1 when `s` was added, 0 when it was already there, -1 out of memory. */
static int set_add(str_set *set, const char *s)
{
    if ((set->n + 1) * 10 > set->cap * 7 && set_grow(set) != 0) return -1;
    size_t j = (size_t)fnv1a(s) & (set->cap - 1);
    for (; set->slots[j]; j = (j + 1) & (set->cap - 1))
        if (strcmp(set->slots[j], s) == 0) return 0;
    size_t len = strlen(s) + 1;
    char *copy = malloc(len);
    if (!copy) return -1;
    memcpy(copy, s, len);
    set->slots[j] = copy;
    set->n++;
    return 1;
}

static void set_free(str_set *set)
{
    for (size_t i = 0; i < set->cap; i++) free(set->slots[i]);
    free(set->slots);
    memset(set, 0, sizeof *set);
}

/* ---- receiver state ------------------------------------------------------------ */

typedef enum scheme { SCHEME_STANDARD, SCHEME_HMAC_HEX, SCHEME_RSA } scheme;

typedef struct preset {
    const char *name;
    scheme scheme;
    const char *id, *ts, *sig;  /* header names (ts NULL: none) */
} preset;

static const preset presets[] = {
    {"standard", SCHEME_STANDARD, "webhook-id", "webhook-timestamp", "webhook-signature"},
    {"svix", SCHEME_STANDARD, "svix-id", "svix-timestamp", "svix-signature"},
    {"stream", SCHEME_HMAC_HEX, "X-WEBHOOK-ID", NULL, "X-SIGNATURE"},
    {"pusher", SCHEME_HMAC_HEX, NULL, NULL, "X-Pusher-Signature"},
    {"sendbird", SCHEME_HMAC_HEX, NULL, NULL, "x-sendbird-signature"},
    {"dyte", SCHEME_RSA, "dyte-uuid", NULL, "dyte-signature"},
};

typedef struct receiver {
    const preset *p;
    const char *secret;     /* NULL: no verification (HMAC schemes) */
    char *public_key;       /* PEM (RSA), NULL: no verification */
    int quiet;
    long fail_percent;      /* 503 to the first attempt of ~P% of the ids */
    pthread_mutex_t mu;     /* guards everything below */
    unsigned long received, verified, bad_signature, failed_on_purpose;
    str_set ids;            /* distinct webhook-ids accepted */
    str_set failed;         /* ids answered 503 once on purpose */
} receiver;

/* Body of one request being received (MHD's per-request pointer). */
typedef struct request {
    char *body;
    size_t len, cap;
    int too_large;
} request;

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status)
{
    struct MHD_Response *res =
        MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!res) return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(c, status, res);
    MHD_destroy_response(res);
    return rc;
}

static int append(request *rq, const char *data, size_t n)
{
    if (rq->len + n > MAX_BODY) {
        rq->too_large = 1;
        return 0;
    }
    if (rq->len + n + 1 > rq->cap) {
        size_t cap = rq->cap ? rq->cap : 1024;
        while (cap < rq->len + n + 1) cap *= 2;
        char *p = realloc(rq->body, cap);
        if (!p) return -1;
        rq->body = p;
        rq->cap = cap;
    }
    memcpy(rq->body + rq->len, data, n);
    rq->len += n;
    rq->body[rq->len] = '\0';
    return 0;
}

/* A whole event arrived: verify it, count it, pick the answer. */
static unsigned handle_event(receiver *r, struct MHD_Connection *c,
                             const request *rq)
{
    const preset *p = r->p;
    const char *id = p->id ? MHD_lookup_connection_value(c, MHD_HEADER_KIND, p->id) : NULL;
    const char *ts = p->ts ? MHD_lookup_connection_value(c, MHD_HEADER_KIND, p->ts) : NULL;
    const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, p->sig);
    const char *body = rq->body ? rq->body : "";
    int vrc = WH_OK;
    int checking = p->scheme == SCHEME_RSA ? r->public_key != NULL : r->secret != NULL;
    if (checking) {
        const char *secrets[] = {r->secret};
        if (!sig || (p->id && !id) || (p->ts && !ts))
            vrc = WH_E_INVAL;
        else if (p->scheme == SCHEME_STANDARD)
            vrc = wh_verify_standard(secrets, 1, id, ts, body, rq->len, sig,
                                     (int64_t)time(NULL), 0);
        else if (p->scheme == SCHEME_HMAC_HEX)
            vrc = wh_verify_hmac_hex(r->secret, body, rq->len, sig);
        else
            vrc = wh_verify_rsa_sha256(r->public_key, body, rq->len, sig);
    }
    unsigned status = vrc == WH_OK ? MHD_HTTP_NO_CONTENT
                      : vrc == WH_E_INVAL ? MHD_HTTP_BAD_REQUEST
                                          : MHD_HTTP_UNAUTHORIZED;

    pthread_mutex_lock(&r->mu);
    r->received++;
    if (vrc == WH_OK && id && r->fail_percent &&
        (long)(fnv1a(id) % 100) < r->fail_percent && set_add(&r->failed, id) == 1) {
        r->failed_on_purpose++;
        pthread_mutex_unlock(&r->mu);
        if (!r->quiet) fprintf(stderr, "503 %s (on purpose: first attempt)\n", id);
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    if (checking && vrc == WH_OK) r->verified++;
    if (vrc != WH_OK) r->bad_signature++;
    if (vrc == WH_OK && id && set_add(&r->ids, id) < 0)
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    pthread_mutex_unlock(&r->mu);

    if (!r->quiet) {
        const char *why = vrc == WH_OK ? ""
                          : vrc == WH_E_INVAL ? ": missing id/timestamp/signature header"
                                              : ": ";
        fprintf(stderr, "%u %s %zu bytes%s%s\n", status, id ? id : "-", rq->len,
                why, strcmp(why, ": ") == 0 ? wh_strerror(vrc) : "");
    }
    return status;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    receiver *r = cls;
    request *rq = *req_cls;
    if (!rq) { /* first call: headers only */
        rq = calloc(1, sizeof *rq);
        if (!rq) return MHD_NO;
        *req_cls = rq;
        return MHD_YES;
    }
    if (*upload_data_size) { /* a piece of the body */
        if (append(rq, upload_data, *upload_data_size) < 0) return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED);
    if (rq->too_large) return answer(c, 413);
    return answer(c, handle_event(r, c, rq));
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    request *rq = *req_cls;
    if (!rq) return;
    free(rq->body);
    free(rq);
    *req_cls = NULL;
}

/* ---- main --------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: receiver --port N [--preset standard|svix|stream|"
                    "pusher|sendbird|dyte] [--secret S] [--public-key FILE] "
                    "[--expect N] [--quiet] [--fail-percent P]\n");
    exit(2);
}

static long parse_num(const char *s, long max)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || errno || *end || v < 0 || v > max) usage();
    return v;
}

static void on_signal(int sig)
{
    (void)sig; /* never runs: the signals are blocked and taken by sigwait */
}

int main(int argc, char **argv)
{
    long port = -1, expect = 0;
    const char *key_file = NULL, *preset_name = "standard";
    receiver r;
    memset(&r, 0, sizeof r);
    for (int i = 1; i < argc; i++) {
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--port") == 0) port = parse_num(next, 65535), i++;
        else if (strcmp(argv[i], "--expect") == 0) expect = parse_num(next, 1L << 30), i++;
        else if (strcmp(argv[i], "--secret") == 0 && next) r.secret = next, i++;
        else if (strcmp(argv[i], "--public-key") == 0 && next) key_file = next, i++;
        else if (strcmp(argv[i], "--preset") == 0 && next) preset_name = next, i++;
        else if (strcmp(argv[i], "--quiet") == 0) r.quiet = 1;
        else if (strcmp(argv[i], "--fail-percent") == 0) r.fail_percent = parse_num(next, 100), i++;
        else usage();
    }
    if (port < 0) usage();
    for (size_t k = 0; k < sizeof presets / sizeof presets[0]; k++)
        if (strcmp(presets[k].name, preset_name) == 0) r.p = &presets[k];
    if (!r.p) {
        fprintf(stderr, "receiver: unknown preset \"%s\"\n", preset_name);
        return 2;
    }
    if (key_file) {
        FILE *f = fopen(key_file, "rb");
        static char pem[16384];
        size_t n = f ? fread(pem, 1, sizeof pem - 1, f) : 0;
        if (f) fclose(f);
        pem[n] = '\0';
        /* an unusable key is refused now, not on every request */
        if (!n || wh_verify_rsa_sha256(pem, "", 0, "AAAA") == WH_E_SECRET) {
            fprintf(stderr, "receiver: %s is not a PEM RSA public key\n", key_file);
            return 2;
        }
        r.public_key = pem;
    }
    if (r.secret && r.p->scheme == SCHEME_STANDARD) { /* refuse a malformed secret now, not on every request */
        const char *s[] = {r.secret};
        char sig[64];
        if (wh_sign_standard(s, 1, "check", 0, "", 0, sig, sizeof sig) != WH_OK) {
            fprintf(stderr, "receiver: invalid secret\n");
            return 2;
        }
    }
    pthread_mutex_init(&r.mu, NULL);

    /* SIGINT/SIGTERM are blocked in every thread (MHD's thread inherits the
     * mask) and taken synchronously below with sigtimedwait. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL,
        on_request, &r, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "receiver: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("listening 127.0.0.1:%u\n", info ? (unsigned)info->port : (unsigned)port);
    fflush(stdout);

    for (;;) {
        struct timespec tick = {0, 50 * 1000000L};
        int sig = sigtimedwait(&stop, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM) break;
        if (expect > 0) {
            pthread_mutex_lock(&r.mu);
            /* presets without an id header count requests; rejected
             * requests count too (a sender does not retry a 401) */
            size_t n = (r.p->id ? r.ids.n : r.received - r.bad_signature) +
                       r.bad_signature;
            pthread_mutex_unlock(&r.mu);
            if (n >= (size_t)expect) {
                struct timespec grace = {0, 200 * 1000000L};
                nanosleep(&grace, NULL); /* let the last answers go out */
                break;
            }
        }
    }
    MHD_stop_daemon(d);

    printf("{\"received\":%lu,\"verified\":%lu,\"bad_signature\":%lu,"
           "\"distinct_ids\":%zu",
           r.received, r.verified, r.bad_signature, r.ids.n);
    if (r.fail_percent) printf(",\"failed_on_purpose\":%lu", r.failed_on_purpose);
    printf("}\n");
    fflush(stdout);
    set_free(&r.ids);
    set_free(&r.failed);
    pthread_mutex_destroy(&r.mu);
    return 0;
}
