/* libFuzzer: wh_config_load (the JSON configuration document) on an engine
 * with the scripted transport and the manual clock.  Beyond crashes, leaks
 * and undefined behaviour: a refused document always leaves a message
 * naming the problem in wh_last_error, and the engine stays usable (an
 * event can be emitted and the engine freed). */
#include "fuzz.h"

#include <webhook/webhook.h>
#include <webhook/test.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wh_manual_clock *clock = wh_manual_clock_new(1000, 1700000000000LL);
    wh_transport *t = NULL;
    FZ_CHECK(clock && wh_transport_scripted_new(NULL, clock, &t) == WH_OK);
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.clock = wh_manual_clock_vtable(clock);
    o.transport = t;
    o.seed = 1;
    wh_engine *e = wh_engine_new(&o, NULL);
    FZ_CHECK(e);
    int rc = wh_config_load(e, (const char *)data, size);
    if (rc < 0) {
        const char *m = wh_last_error(e);
        FZ_CHECK(m && *m && strcmp(m, "no error") != 0);
        FZ_CHECK(strcmp(wh_status_name(rc), "unknown status") != 0);
    }
    /* still usable: one event, a few rounds on simulated time */
    wh_emit(e, "fuzz.event", NULL, "{}", 2, NULL);
    for (int i = 0; i < 4; i++) {
        wh_poll(e, 0);
        int64_t w = wh_timeout_ms(e);
        if (w < 0) break;
        wh_manual_clock_advance(clock, w);
    }
    wh_engine_free(e);
    wh_transport_free(t);
    wh_manual_clock_free(clock);
    return 0;
}
