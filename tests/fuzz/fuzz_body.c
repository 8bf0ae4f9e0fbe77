/* libFuzzer: the request body builder (lib/body.c) through wh_emit, in
 * single and batch mode with the raw, standard and pusher bodies, with
 * arbitrary event types, channels and JSON payloads.  Beyond crashes: an
 * accepted event only ever produces request bodies that are valid JSON,
 * and a refused one names its reason; and every body the engine sent,
 * rebuilt in pieces (what a transport with body_pieces gets), joins to the
 * same bytes, within the builder's bounds. */
#include "engine.h"
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
    /* the accepted events, for the piece builder below */
    wh_job jobs[16];
    char *keep[16][3];
    size_t n_ok = 0;
    for (unsigned i = 0; i < n && f.p < f.end; i++) {
        char *type = fz_str(&f, 256, NULL), *channel = fz_str(&f, 256, NULL);
        size_t dl;
        char *d = fz_str(&f, 4096, &dl);
        int with_channel = fz_u8(&f) & 1;
        int rc = wh_emit(e, type, with_channel ? channel : NULL, d, dl, NULL);
        if (rc < 0) FZ_CHECK(strcmp(wh_last_error(e), "no error") != 0);
        if (rc > 0) {
            memset(&jobs[n_ok], 0, sizeof jobs[n_ok]);
            jobs[n_ok].ev.id = "msg_1";
            jobs[n_ok].ev.type = type;
            jobs[n_ok].ev.channel = with_channel ? channel : NULL;
            jobs[n_ok].ev.data = d;
            jobs[n_ok].ev.data_len = dl;
            jobs[n_ok].ev.created_ms = 1700000000000LL;
            keep[n_ok][0] = type, keep[n_ok][1] = channel, keep[n_ok][2] = d;
            n_ok++;
            continue;
        }
        free(type);
        free(channel);
        free(d);
    }
    /* pieces against contiguous, for runs of the accepted events */
    wh_ep_conf c;
    memset(&c, 0, sizeof c);
    c.body = ep.body;
    c.mode = ep.mode;
    for (size_t at = 0; at < n_ok; at += c.mode == WH_MODE_BATCH ? n_ok : 1) {
        size_t k = c.mode == WH_MODE_BATCH ? n_ok - at : 1;
        size_t max = wh__body_max(&c, jobs + at, k);
        size_t fmax = wh__body_frag_max(&c, jobs + at, k);
        char *flat = malloc(max + 1), *frag = malloc(fmax + 1);
        wh_body_piece *pc = malloc((2 * k + 1) * sizeof *pc);
        FZ_CHECK(flat && frag && pc);
        size_t flen = wh__body_build(&c, jobs + at, k, 1700000000000LL, flat);
        FZ_CHECK(flen <= max);
        size_t plen = 0;
        size_t np = wh__body_build_pieces(&c, jobs + at, k, 1700000000000LL, frag, pc, &plen);
        FZ_CHECK(np <= 2 * k + 1);
        FZ_CHECK(plen == flen);
        size_t off = 0, text = 0;
        for (size_t i = 0; i < np; i++) {
            FZ_CHECK(off + pc[i].len <= flen && memcmp(flat + off, pc[i].data, pc[i].len) == 0);
            off += pc[i].len;
            if ((const char *)pc[i].data >= frag && (const char *)pc[i].data <= frag + fmax)
                text += pc[i].len;
        }
        FZ_CHECK(off == flen);
        FZ_CHECK(text <= fmax);
        free(flat);
        free(frag);
        free(pc);
    }
    for (size_t i = 0; i < n_ok; i++)
        for (int j = 0; j < 3; j++) free(keep[i][j]);
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
