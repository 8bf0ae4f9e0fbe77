/* libFuzzer: wh_emit + wh_poll over the scripted transport on the manual
 * clock, with arbitrary answers (HTTP statuses, network errors, delays,
 * hangs, Retry-After values) and retry settings.  Beyond crashes, leaks and
 * undefined behaviour (also when the host disables, enables or removes an
 * endpoint meanwhile): every accepted job ends exactly once, delivered or
 * dead (at the latest when the engine is freed), and no retry is scheduled
 * in the past or beyond retry_max_ms (-1: the endpoint was disabled; an
 * explicit schedule is not capped). */
#include "fuzz.h"

#include <webhook/webhook.h>
#include <webhook/test.h>

typedef struct tally {
    uint64_t finals, delivered, dead, retries;
    int64_t retry_max[2]; /* of endpoint handle h[0], h[1] */
    int h[2];
    int bad_retry;
} tally;

static void on_outcome(void *user, const wh_outcome *o)
{
    tally *t = user;
    if (o->kind == WH_DELIVERED || o->kind == WH_DEAD) {
        t->finals++;
        if (o->kind == WH_DELIVERED) t->delivered++;
        else t->dead++;
    } else if (o->kind == WH_RETRY) {
        t->retries++;
        int64_t max = o->endpoint == t->h[1] ? t->retry_max[1] : t->retry_max[0];
        if (o->retry_in_ms < -1 || o->retry_in_ms > max) {
            fprintf(stderr, "retry_in_ms %lld (retry_max_ms %lld)\n", (long long)o->retry_in_ms,
                    (long long)max);
            t->bad_retry = 1;
        }
    }
}

static const char *const presets[] = {"default", "realtime", "sendbird", "dyte",
                                      "stream", "svix", "pusher"};
static const int errors[] = {WH_OK, WH_OK, WH_OK, WH_E_CONNECT, WH_E_TIMEOUT, WH_E_TRANSPORT};
static const int statuses[] = {200, 204, 299, 301, 400, 404, 408, 409, 410, 413, 425,
                               429, 500, 502, 503, 504};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz f = {data, data + size};
    wh_manual_clock *clock = wh_manual_clock_new(1000, 1700000000000LL);
    wh_transport *t = NULL;
    FZ_CHECK(clock && wh_transport_scripted_new(NULL, clock, &t) == WH_OK);
    tally ty;
    memset(&ty, 0, sizeof ty);
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.clock = wh_manual_clock_vtable(clock);
    o.transport = t;
    o.on_outcome = on_outcome;
    o.outcome_user = &ty;
    o.seed = 3;
    wh_engine *e = wh_engine_new(&o, NULL);
    FZ_CHECK(e);

    unsigned flags = fz_u8(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.id = "ep";
    ep.url = "http://127.0.0.1:9/hook";
    unsigned preset = fz_u8(&f) % 7;
    wh_endpoint_options_retry_preset(&ep, presets[preset]);
    ep.max_attempts = 1 + fz_u8(&f) % 8;
    ep.retry_initial_ms = 1 + fz_u16(&f);
    ep.retry_max_ms = ep.retry_initial_ms + fz_u16(&f) * 16u;
    ep.honor_retry_after = (flags & 1) != 0;
    ep.retry_jitter = (wh_jitter)((flags >> 1) % 3);
    ep.max_in_flight = 1 + fz_u8(&f) % 8;
    ep.timeout_ms = 100 + fz_u16(&f);
    if (flags & 8) {
        ep.mode = WH_MODE_BATCH;
        ep.batch_max_events = 1 + fz_u8(&f) % 8;
        ep.batch_linger_ms = fz_u8(&f);
    }
    ep.disable_on_410 = (flags & 16) != 0;
    int h1 = wh_endpoint_add(e, &ep);
    if (h1 <= 0) {
        /* settings some preset refuses: still a named error */
        FZ_CHECK(strcmp(wh_last_error(e), "no error") != 0);
        goto done;
    }
    /* an explicit schedule (svix) is not capped by retry_max_ms */
    ty.retry_max[0] = ep.n_retry_schedule ? INT64_MAX : (int64_t)ep.retry_max_ms;
    ty.h[0] = h1;

    unsigned n_rules = fz_u8(&f) % 8;
    for (unsigned i = 0; i < n_rules; i++) {
        unsigned k = fz_u8(&f);
        int status = k & 0x80 ? (int)(fz_u16(&f) % 1000) : statuses[k % 16];
        int err = errors[fz_u8(&f) % 6];
        int64_t delay = fz_u8(&f) & 1 ? -1 : (int64_t)fz_u16(&f);
        char *ra = fz_str(&f, 200, NULL);
        wh_scripted_rule(t, NULL, err == WH_OK ? status : 0, err, delay, *ra ? ra : NULL,
                         fz_u8(&f) % 4);
        free(ra);
    }

    /* a second endpoint with the library defaults, for some inputs */
    int h2 = 0;
    if (flags & 32) {
        wh_endpoint_options ep2;
        wh_endpoint_options_init(&ep2);
        ep2.url = "http://127.0.0.1:9/other";
        ep2.mode = flags & 64 ? WH_MODE_BATCH : WH_MODE_SINGLE;
        h2 = wh_endpoint_add(e, &ep2);
        FZ_CHECK(h2 > 0);
        ty.h[1] = h2;
        ty.retry_max[1] = ep2.retry_max_ms;
    }

    uint64_t accepted = 0;
    unsigned n_events = 1 + fz_u8(&f) % 12;
    for (unsigned i = 0; i < n_events; i++) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "{\"i\":%u}", i);
        int rc = wh_emit(e, "fuzz.event", NULL, buf, (size_t)n, NULL);
        FZ_CHECK(rc == (h2 ? 2 : 1));
        accepted += (uint64_t)rc;
    }
    /* rounds on simulated time; now and then the host disables, enables or
     * removes an endpoint */
    unsigned act_at = fz_u8(&f), act = fz_u8(&f);
    for (int i = 0; i < 3000; i++) {
        if ((unsigned)i == act_at % 64 && act) {
            int h = act & 1 && h2 ? h2 : h1;
            if (act & 2) FZ_CHECK(wh_endpoint_remove(e, h) == WH_OK);
            else FZ_CHECK(wh_endpoint_enable(e, h, (act & 4) != 0) == WH_OK);
        }
        wh_poll(e, 0);
        int64_t w = wh_timeout_ms(e);
        if (w < 0) {
            if ((unsigned)i > act_at % 64 || !act) break;
            w = 1;
        }
        FZ_CHECK(ty.finals <= accepted);
        wh_manual_clock_advance(clock, w > 0 ? w : 0);
    }
    wh_engine_free(e); /* reports what is left as dead (cancelled) */
    e = NULL;
    FZ_CHECK(!ty.bad_retry);
    if (ty.finals != accepted)
        fprintf(stderr, "accepted %llu, finals %llu (delivered %llu, dead %llu)\n",
                (unsigned long long)accepted, (unsigned long long)ty.finals,
                (unsigned long long)ty.delivered, (unsigned long long)ty.dead);
    FZ_CHECK(ty.finals == accepted);
done:
    wh_engine_free(e);
    wh_transport_free(t);
    wh_manual_clock_free(clock);
    return 0;
}
