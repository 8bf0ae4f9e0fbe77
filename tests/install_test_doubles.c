/* Built by .ci/run from an install through `pkg-config libwebhook-test`: a
 * host's own test, on the manual clock and the scripted transport (linked
 * from libwebhook-test.a against libwebhook.so), without any network. */
#include <webhook/webhook.h>
#include <webhook/test.h>

#include <stdio.h>

static int delivered;
static void on_outcome(void *user, const wh_outcome *o)
{
    (void)user;
    if (o->kind == WH_DELIVERED && o->attempt == 2) delivered++;
}

int main(void)
{
    wh_manual_clock *c = wh_manual_clock_new(1000, 1700000000000LL);
    wh_transport *t = NULL;
    if (!c || wh_transport_scripted_new(NULL, c, &t) != WH_OK) return 1;
    wh_scripted_rule(t, NULL, 503, WH_OK, 0, NULL, 1); /* first attempt fails */
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.clock = wh_manual_clock_vtable(c);
    o.transport = t;
    o.on_outcome = on_outcome;
    wh_engine *e = wh_engine_new(&o, NULL);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/hook"; /* never contacted */
    if (!e || wh_endpoint_add(e, &ep) < 0 || wh_emit(e, "t", NULL, "{}", 2, NULL) != 1) return 1;
    wh_flush(e, 60000); /* simulated time: returns at once */
    long long now = (long long)wh_manual_clock_now(c);
    wh_engine_free(e);
    wh_transport_free(t);
    wh_manual_clock_free(c);
    printf("delivered on attempt 2: %d, clock %lld\n", delivered, now);
    return delivered == 1 && now == 3000 ? 0 : 1;
}
