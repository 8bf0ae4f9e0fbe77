/* minimal — deliver one webhook:  minimal https://example.com/hook */
#include <webhook/webhook.h>

#include <inttypes.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: minimal URL\n");
        return 2;
    }
    wh_engine *e = wh_engine_new(NULL, NULL);           /* all defaults */
    if (!e) return 1;
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = argv[1];                                   /* every event type */
    if (wh_endpoint_add(e, &ep) < 0) {
        fprintf(stderr, "minimal: %s\n", wh_last_error(e));
        wh_engine_free(e);
        return 1;
    }
    const char *json = "{\"hello\":\"world\"}";
    wh_emit(e, "hello", NULL, json, 17, NULL);
    wh_flush(e, 10000);                                 /* wait up to 10 s */
    wh_stats st;
    wh_stats_get(e, &st);
    printf("delivered %" PRIu64 ", dead %" PRIu64 "\n", st.delivered, st.dead);
    wh_engine_free(e);
    return st.delivered ? 0 : 1;
}
