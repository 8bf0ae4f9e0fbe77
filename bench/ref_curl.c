/* ref_curl — the reference: a hand-written libcurl multi loop delivering the
 * same Standard-Webhooks-signed events as `whbench single`, written the way
 * a careful engineer would for one endpoint:
 *   - one easy handle per concurrency slot, configured once and reused
 *     (keep-alive connections stay in the multi handle's cache);
 *   - the header list is built once per handle; each request rewrites the
 *     fixed-width id, timestamp and signature values in place;
 *   - HMAC-SHA256 with Mbed TLS, keyed once (ipad/opad precomputed), reset
 *     per message, over "id.timestamp.body" (base64, "v1," prefix);
 *   - curl_multi_poll + curl_multi_perform, completions via info_read.
 * No queue, no routing, no retries, no outcome reporting: the floor of what
 * a sender built on libcurl costs.
 *
 *   ref_curl URL N CONCURRENCY [--unsigned]
 * prints: RESULT ref inflight=C events=N seconds=S eps=E cpu_ns_per_event=X */
#include <curl/curl.h>
#include <mbedtls/md.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define PAYLOAD_LEN 300
/* same key as whbench: base64 decoded at start-up */
#define SECRET_B64 "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw8T9zbBjnQE4="

static char payload[PAYLOAD_LEN + 1];

static void make_payload(void) /* identical to whbench's */
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

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = b64[v & 63];
    }
    if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = '=';
    } else if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = '=';
        out[o++] = '=';
    }
    return o;
}

static size_t b64_decode(const char *in, unsigned char *out)
{
    unsigned acc = 0, bits = 0;
    size_t o = 0;
    for (; *in && *in != '='; in++) {
        const char *p = strchr(b64, *in);
        if (!p) break;
        acc = acc << 6 | (unsigned)(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o;
}

/* header lines with fixed-width values, rewritten in place per request */
#define H_ID "webhook-id: "
#define H_TS "webhook-timestamp: "
#define H_SIG "webhook-signature: v1,"
#define ID_W 20

typedef struct slot {
    CURL *easy;
    struct curl_slist *hdrs;
    char *id_val, *ts_val, *sig_val; /* inside the slist's strings */
} slot;

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

static mbedtls_md_context_t md;
static int sign = 1;

static void start(CURLM *multi, slot *s, uint64_t seq)
{
    char id[ID_W + 1], ts[16];
    snprintf(id, sizeof id, "%0*" PRIu64, ID_W, seq);
    memcpy(s->id_val, id, ID_W);
    snprintf(ts, sizeof ts, "%010lld", (long long)time(NULL));
    memcpy(s->ts_val, ts, 10);
    if (sign) {
        unsigned char mac[32];
        mbedtls_md_hmac_reset(&md);
        mbedtls_md_hmac_update(&md, (const unsigned char *)id, ID_W);
        mbedtls_md_hmac_update(&md, (const unsigned char *)".", 1);
        mbedtls_md_hmac_update(&md, (const unsigned char *)ts, 10);
        mbedtls_md_hmac_update(&md, (const unsigned char *)".", 1);
        mbedtls_md_hmac_update(&md, (const unsigned char *)payload, PAYLOAD_LEN);
        mbedtls_md_hmac_finish(&md, mac);
        b64_encode(mac, 32, s->sig_val);
    }
    curl_multi_add_handle(multi, s->easy);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: ref_curl URL N CONCURRENCY [--unsigned]\n");
        return 2;
    }
    make_payload();
    const char *url = argv[1];
    uint64_t n = strtoull(argv[2], NULL, 10);
    int conc = atoi(argv[3]);
    if (argc > 4 && !strcmp(argv[4], "--unsigned")) sign = 0;

    unsigned char key[64];
    size_t key_len = b64_decode(SECRET_B64, key);
    mbedtls_md_init(&md);
    mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
    mbedtls_md_hmac_starts(&md, key, key_len);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    slot *slots = calloc((size_t)conc, sizeof *slots);
    for (int i = 0; i < conc; i++) {
        slot *s = &slots[i];
        char line[128];
        s->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        snprintf(line, sizeof line, H_ID "%0*d", ID_W, 0);
        s->hdrs = curl_slist_append(s->hdrs, line);
        s->id_val = s->hdrs->next->data + strlen(H_ID);
        s->hdrs = curl_slist_append(s->hdrs, H_TS "0000000000");
        s->ts_val = s->hdrs->next->next->data + strlen(H_TS);
        if (sign) {
            snprintf(line, sizeof line, H_SIG "%044d", 0);
            s->hdrs = curl_slist_append(s->hdrs, line);
            s->sig_val = s->hdrs->next->next->next->data + strlen(H_SIG);
        }
        s->hdrs = curl_slist_append(s->hdrs, "Expect:");
        CURL *h = s->easy = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)PAYLOAD_LEN);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, s->hdrs);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(h, CURLOPT_PRIVATE, (void *)s);
    }

    uint64_t started = 0, done = 0, failed = 0;
    double t0 = 0, c0 = 0;
    /* warm-up: one round per slot (not timed), then the timed run */
    uint64_t warm = (uint64_t)conc, total = n + warm;
    for (int i = 0; i < conc && started < total; i++) start(multi, &slots[i], started++);
    int running = 1;
    while (done < total) {
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            CURL *h = m->easy_handle;
            long code = 0;
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
            if (m->data.result != CURLE_OK || code < 200 || code >= 300) failed++;
            slot *s;
            curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&s);
            curl_multi_remove_handle(multi, h);
            done++;
            if (done == warm) {
                t0 = mono_s();
                c0 = cpu_s();
            }
            if (started < total) start(multi, s, started++);
        }
        if (done < total) curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    double t1 = mono_s(), c1 = cpu_s();
    if (failed) {
        fprintf(stderr, "ref_curl: %" PRIu64 " requests failed\n", failed);
        return 1;
    }
    printf("RESULT ref%s inflight=%d events=%" PRIu64 " seconds=%.4f eps=%.0f "
           "cpu_ns_per_event=%.0f\n",
           sign ? "" : "_unsigned", conc, n, t1 - t0, (double)n / (t1 - t0),
           (c1 - c0) * 1e9 / (double)n);
    for (int i = 0; i < conc; i++) {
        curl_easy_cleanup(slots[i].easy);
        curl_slist_free_all(slots[i].hdrs);
    }
    free(slots);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    mbedtls_md_free(&md);
    return 0;
}
