/* libFuzzer: whsend's input-line parser (handle_line in tools/whsend.c,
 * compiled into this target with its main renamed) on arbitrary lines,
 * feeding an engine on the scripted transport.  Beyond crashes, leaks and
 * undefined behaviour: every line is either emitted or rejected (counted
 * once). */
#include "fuzz.h"

#include <webhook/test.h>

/* whsend's messages (one per rejected line) go to /dev/null; the
 * sanitizers' reports still reach file descriptor 2 */
static FILE *fz_devnull;
int whsend_main(int argc, char **argv);
#define main whsend_main
#undef stderr
#define stderr fz_devnull
#include "../../tools/whsend.c"
#undef stderr
#define stderr stderr
#undef main

static wh_engine *engine;
static wh_transport *transport;
static wh_manual_clock *mclock;

static void setup(void)
{
    if (engine) return;
    fz_devnull = fopen(getenv("WH_FUZZ_VERBOSE") ? "/dev/stderr" : "/dev/null", "w");
    FZ_CHECK(fz_devnull);
    mclock = wh_manual_clock_new(1000, 1700000000000LL);
    FZ_CHECK(mclock && wh_transport_scripted_new(NULL, mclock, &transport) == WH_OK);
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.clock = wh_manual_clock_vtable(mclock);
    o.transport = transport;
    engine = wh_engine_new(&o, NULL);
    FZ_CHECK(engine);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/hook";
    FZ_CHECK(wh_endpoint_add(engine, &ep) > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    app a;
    memset(&a, 0, sizeof a);
    a.e = engine;
    char *line = malloc(size + 1);
    FZ_CHECK(line);
    memcpy(line, data, size);
    line[size] = '\0';
    handle_line(&a, line, size, 1);
    FZ_CHECK(a.emitted + a.rejected <= 1);
    free(line);
    /* deliver what was accepted, so the queue does not grow */
    for (int i = 0; i < 4; i++) {
        wh_poll(engine, 0);
        int64_t w = wh_timeout_ms(engine);
        if (w < 0) break;
        wh_manual_clock_advance(mclock, w);
    }
    return 0;
}
