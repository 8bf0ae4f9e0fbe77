/* libFuzzer: the request body builder (lib/body.c) through wh_emit, in
 * single and batch mode with the raw, standard and pusher bodies, with
 * arbitrary event types, channels and JSON payloads.  Beyond crashes: an
 * accepted event only ever produces request bodies that are valid JSON,
 * and a refused one names its reason. */
#include "fuzz.h"
#include "internal.h"

#include <webhook/webhook.h>
#include <webhook/test.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz f = {data, data + size};
    wh_manual_clock *clock = wh_manual_clock_new(1000, 1700000000000LL);
    wh_transport *t = NULL;
    FZ_CHECK(clock && wh_transport_scripted_new(NULL, clock, &t) == WH_OK);
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.clock = wh_manual_clock_vtable(clock);
    o.transport = t;
    o.seed = 5;
    wh_engine *e = wh_engine_new(&o, NULL);
    FZ_CHECK(e);
    unsigned flags = fz_u8(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/hook";
    ep.body = (wh_body)(flags % 3);
    if (flags & 4) {
        ep.mode = WH_MODE_BATCH;
        ep.batch_max_events = 1 + fz_u8(&f) % 16;
        ep.batch_max_bytes = 1 + fz_u16(&f) * 4u;
    }
    FZ_CHECK(wh_endpoint_add(e, &ep) > 0);
    unsigned n = 1 + fz_u8(&f) % 16;
    for (unsigned i = 0; i < n && f.p < f.end; i++) {
        char *type = fz_str(&f, 256, NULL), *channel = fz_str(&f, 256, NULL);
        size_t dl;
        char *d = fz_str(&f, 4096, &dl);
        int rc = wh_emit(e, type, fz_u8(&f) & 1 ? channel : NULL, d, dl, NULL);
        if (rc < 0) FZ_CHECK(strcmp(wh_last_error(e), "no error") != 0);
        free(type);
        free(channel);
        free(d);
    }
    wh_flush(e, 60000);
    for (size_t i = 0; i < wh_scripted_count(t); i++) {
        wh_scripted_request r;
        FZ_CHECK(wh_scripted_get(t, i, &r) == WH_OK);
        size_t off;
        if (wh__json_valid(r.body, r.body_len, &off) != WH_OK) {
            fprintf(stderr, "request %zu: body not valid JSON at byte %zu: %.*s\n", i, off,
                    (int)(r.body_len > 400 ? 400 : r.body_len), r.body);
            abort();
        }
    }
    wh_engine_free(e);
    wh_transport_free(t);
    wh_manual_clock_free(clock);
    return 0;
}
