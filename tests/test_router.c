/* The routing index (lib/router.c) against a brute-force reference: random
 * endpoints (type lists, "*", empty lists, prefix and suffix filters), adds
 * and removals, random events; the index must return exactly the endpoints
 * the reference does, in insertion order.  Plus Soketi's filter example and
 * Sendbird's empty list through the public API. */
#include "engine.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static const char *const TYPES[] = {"a", "b", "message.created", "member_added",
                                    "channel_occupied", "x.y.z"};
static const char *const PREFIXES[] = {"beta-", "b", "presence-", "chat", "beta-chat"};
static const char *const SUFFIXES[] = {"-app", "p", "room"};
static const char *const CHANNELS[] = {"chat-room", "beta-chat-room", "chat-room-app",
                                       "beta-chat-room-app", "presence-x", "b",
                                       "beta-", "", "p"};
#define N_OF(a) (sizeof a / sizeof a[0])

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* A wh_ep with only the routing fields set. */
static wh_ep *make_ep(uint32_t slot)
{
    wh_ep *ep = calloc(1, sizeof *ep);
    CHECK(ep);
    ep->slot = slot;
    ep->conf.id = malloc(16);
    CHECK(ep->conf.id);
    snprintf(ep->conf.id, 16, "ep%u", slot);
    uint32_t kind = rnd(4);
    if (kind == 0) {
        ep->conf.all_types = 1; /* no list */
    } else {
        ep->conf.n_types = rnd(4); /* 0: subscribes to nothing */
        ep->conf.types = calloc(ep->conf.n_types ? ep->conf.n_types : 1, sizeof *ep->conf.types);
        CHECK(ep->conf.types);
        for (size_t i = 0; i < ep->conf.n_types; i++) {
            if (rnd(8) == 0) {
                ep->conf.types[i] = strdup("*");
                ep->conf.all_types = 1;
            } else {
                ep->conf.types[i] = strdup(TYPES[rnd(N_OF(TYPES))]); /* repeats allowed */
            }
        }
    }
    if (rnd(2)) {
        ep->conf.ch_prefix = strdup(PREFIXES[rnd(N_OF(PREFIXES))]);
        ep->conf.ch_prefix_len = strlen(ep->conf.ch_prefix);
    }
    if (rnd(3) == 0) {
        ep->conf.ch_suffix = strdup(SUFFIXES[rnd(N_OF(SUFFIXES))]);
        ep->conf.ch_suffix_len = strlen(ep->conf.ch_suffix);
    }
    return ep;
}

static void free_ep(wh_ep *ep)
{
    for (size_t i = 0; i < ep->conf.n_types; i++) free(ep->conf.types[i]);
    free(ep->conf.types);
    free(ep->conf.ch_prefix);
    free(ep->conf.ch_suffix);
    free(ep->conf.id);
    free(ep);
}

static int ref_match(const wh_ep *ep, const char *type, const char *ch)
{
    int t = ep->conf.all_types;
    for (size_t i = 0; !t && i < ep->conf.n_types; i++) t = strcmp(ep->conf.types[i], type) == 0;
    if (!t) return 0;
    size_t cl = ch ? strlen(ch) : 0;
    if (ep->conf.ch_prefix &&
        (!ch || cl < ep->conf.ch_prefix_len || strncmp(ch, ep->conf.ch_prefix, ep->conf.ch_prefix_len)))
        return 0;
    if (ep->conf.ch_suffix && (!ch || cl < ep->conf.ch_suffix_len ||
                          strcmp(ch + cl - ep->conf.ch_suffix_len, ep->conf.ch_suffix)))
        return 0;
    return 1;
}

static void test_index_equals_brute_force(void)
{
    enum { MAX_EPS = 400 };
    wh__router r;
    memset(&r, 0, sizeof r);
    wh_ep *eps[MAX_EPS] = {0};
    uint32_t next_slot = 0;
    uint32_t out[MAX_EPS];
    const char *ids[MAX_EPS];
    size_t checked = 0, nonempty = 0;
    for (int round = 0; round < 3000; round++) {
        uint32_t op = rnd(10);
        if (op < 4 && next_slot < MAX_EPS) {
            wh_ep *ep = make_ep(next_slot);
            CHECK_EQ(wh__router_add(&r, ep), WH_OK);
            eps[next_slot++] = ep;
        } else if (op < 5 && next_slot) {
            uint32_t s = rnd(next_slot);
            if (eps[s]) {
                wh__router_remove(&r, eps[s]);
                free_ep(eps[s]);
                eps[s] = NULL;
            }
        }
        const char *type = TYPES[rnd(N_OF(TYPES))];
        const char *ch = rnd(5) == 0 ? NULL : CHANNELS[rnd(N_OF(CHANNELS))];
        size_t n = wh__router_match(&r, type, ch, out, ids, MAX_EPS);
        size_t k = 0;
        for (uint32_t s = 0; s < next_slot; s++) {
            if (!eps[s] || !ref_match(eps[s], type, ch)) continue;
            if (k >= n || out[k] != s)
                th_fail(__FILE__, __LINE__, "round %d type %s channel %s: expected "
                        "slot %u at %zu, index gave %ld (n=%zu)", round, type,
                        ch ? ch : "(none)", s, k, k < n ? (long)out[k] : -1L, n);
            CHECK_STR(ids[k], eps[s]->conf.id);
            k++;
        }
        CHECK_EQ(n, k);
        checked++;
        if (n) nonempty++;
        /* a too-small buffer still reports the full count */
        if (n > 1) CHECK_EQ(wh__router_match(&r, type, ch, out, ids, 1), n);
    }
    CHECK_EQ(checked, 3000);
    CHECK_INT(nonempty, >, 300); /* the random mix does match things */
    for (uint32_t s = 0; s < next_slot; s++)
        if (eps[s]) {
            wh__router_remove(&r, eps[s]);
            free_ep(eps[s]);
        }
    CHECK_EQ(r.n, 0);
    wh__router_free(&r);
}

/* Many distinct prefix lengths (more than the merge handles at once) still
 * route correctly. */
static void test_many_prefix_lengths(void)
{
    wh__router r;
    memset(&r, 0, sizeof r);
    enum { N = 80 };
    wh_ep *eps[N];
    char chan[N + 2];
    memset(chan, 'c', N);
    chan[N] = '\0';
    for (uint32_t i = 0; i < N; i++) {
        eps[i] = calloc(1, sizeof *eps[i]);
        CHECK(eps[i]);
        eps[i]->slot = i;
        eps[i]->conf.id = strdup("x");
        eps[i]->conf.all_types = 1;
        eps[i]->conf.ch_prefix = strndup(chan, i + 1);
        eps[i]->conf.ch_prefix_len = i + 1;
        CHECK_EQ(wh__router_add(&r, eps[i]), WH_OK);
    }
    uint32_t out[N];
    const char *ids[N];
    CHECK_EQ(wh__router_match(&r, "t", chan, out, ids, N), N);
    chan[40] = '\0';
    CHECK_EQ(wh__router_match(&r, "t", chan, out, ids, N), 40);
    for (uint32_t i = 0; i < N; i++) {
        wh__router_remove(&r, eps[i]);
        free(eps[i]->conf.ch_prefix);
        free(eps[i]->conf.id);
        free(eps[i]);
    }
    wh__router_free(&r);
}

/* Through the public API: 10,000 endpoints, one type each; an event reaches
 * only its own endpoint; Sendbird's empty list subscribes to nothing. */
static void test_ten_thousand_endpoints(void)
{
    wh_engine *e = wh_engine_new(NULL, NULL);
    CHECK(e);
    for (int i = 0; i < 10000; i++) {
        char type[32];
        snprintf(type, sizeof type, "type.%d", i);
        const char *types[] = {type};
        wh_endpoint_options ep;
        wh_endpoint_options_init(&ep);
        ep.url = "http://127.0.0.1:9/";
        ep.event_types = types;
        ep.n_event_types = 1;
        CHECK_INT(wh_endpoint_add(e, &ep), >, 0);
    }
    const char *none[] = {NULL};
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/";
    ep.event_types = none;
    ep.n_event_types = 0;
    CHECK_INT(wh_endpoint_add(e, &ep), >, 0);
    CHECK_EQ(wh_emit(e, "type.4242", NULL, "{}", 2, NULL), 1);
    CHECK_EQ(wh_emit(e, "type.10000", NULL, "{}", 2, NULL), 0);
    CHECK_EQ(wh_emit(e, "other", NULL, "{}", 2, NULL), 0);
    CHECK_EQ(wh_endpoint_remove(e, 4243), WH_OK); /* type.4242's handle */
    CHECK_EQ(wh_emit(e, "type.4242", NULL, "{}", 2, NULL), 0);
    wh_engine_free(e);
}

TH_MAIN(TH_CASE(test_index_equals_brute_force),
        TH_CASE(test_many_prefix_lengths),
        TH_CASE(test_ten_thousand_endpoints))
