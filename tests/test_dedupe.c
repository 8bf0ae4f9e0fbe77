/* The bounded id memory behind dedupe_window_ms (lib/dedupe.c): window
 * expiry, the max_ids bound (oldest forgotten first), forget, growth, and a
 * randomized comparison with a brute-force model. */
#include "harness.h"
#include "dedupe.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_window(void)
{
    wh__dedupe *d = wh__dedupe_new(1000, 100);
    CHECK(d);
    CHECK_EQ(wh__dedupe_check(d, "evt_1", 0), 0);
    CHECK_EQ(wh__dedupe_check(d, "evt_1", 1), 1);
    CHECK_EQ(wh__dedupe_check(d, "evt_2", 10), 0);
    CHECK_EQ(wh__dedupe_check(d, "evt_1", 999), 1);
    CHECK_EQ(wh__dedupe_count(d), 2);
    /* at accepted + window it is new again, remembered anew */
    CHECK_EQ(wh__dedupe_check(d, "evt_1", 1000), 0);
    CHECK_EQ(wh__dedupe_count(d), 2);       /* evt_2 (until 1010), evt_1 */
    CHECK_EQ(wh__dedupe_check(d, "evt_2", 1009), 1);
    CHECK_EQ(wh__dedupe_check(d, "evt_1", 1999), 1);
    CHECK_EQ(wh__dedupe_count(d), 1);       /* evt_2 expired at 1010 */
    CHECK_EQ(wh__dedupe_check(d, "evt_2", 2000), 0);
    /* ids are compared exactly */
    CHECK_EQ(wh__dedupe_check(d, "EVT_1", 2001), 0);
    CHECK_EQ(wh__dedupe_check(d, "evt_1 ", 2001), 0);
    CHECK_EQ(wh__dedupe_check(d, "evt_1", 2001), 0); /* expired at 2000 */
    wh__dedupe_free(d);
}

static void test_bound_forgets_oldest(void)
{
    wh__dedupe *d = wh__dedupe_new(1000000, 3);
    CHECK_EQ(wh__dedupe_check(d, "a", 0), 0);
    CHECK_EQ(wh__dedupe_check(d, "b", 1), 0);
    CHECK_EQ(wh__dedupe_check(d, "c", 2), 0);
    CHECK_EQ(wh__dedupe_check(d, "d", 3), 0);   /* "a" forgotten early */
    CHECK_EQ(wh__dedupe_count(d), 3);
    CHECK_EQ(wh__dedupe_check(d, "b", 4), 1);
    CHECK_EQ(wh__dedupe_check(d, "c", 4), 1);
    CHECK_EQ(wh__dedupe_check(d, "d", 4), 1);
    CHECK_EQ(wh__dedupe_check(d, "a", 5), 0);   /* new again; "b" goes */
    CHECK_EQ(wh__dedupe_check(d, "b", 6), 0);
    wh__dedupe_free(d);
}

static void test_forget(void)
{
    wh__dedupe *d = wh__dedupe_new(1000, 10);
    CHECK_EQ(wh__dedupe_check(d, "x", 0), 0);
    CHECK_EQ(wh__dedupe_check(d, "y", 0), 0);
    wh__dedupe_forget(d, "x");
    wh__dedupe_forget(d, "never");
    CHECK_EQ(wh__dedupe_count(d), 1);
    CHECK_EQ(wh__dedupe_check(d, "x", 1), 0);
    CHECK_EQ(wh__dedupe_check(d, "y", 1), 1);
    CHECK_EQ(wh__dedupe_check(d, "x", 2), 1);
    wh__dedupe_free(d);
    CHECK(wh__dedupe_new(0, 10) == NULL);
    CHECK(wh__dedupe_new(10, 0) == NULL);
    CHECK_EQ(wh__dedupe_check(NULL, "x", 0), WH_E_INVAL);
}

/* Brute force: the time each id was last accepted. */
static void test_random_against_model(void)
{
    enum { IDS = 700, OPS = 200000 };
    const int64_t window = 5000;
    wh__dedupe *d = wh__dedupe_new(window, 1u << 20);
    int64_t *accepted = malloc(IDS * sizeof *accepted);
    for (int i = 0; i < IDS; i++) accepted[i] = -1;
    uint64_t s = 88172645463325252ull;
    int64_t now = 0;
    long dups = 0;
    for (int op = 0; op < OPS; op++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        now += (int64_t)(s % 7);
        int id = (int)((s >> 8) % IDS);
        char name[32];
        snprintf(name, sizeof name, "evt_%d", id);
        int want = accepted[id] >= 0 && now < accepted[id] + window;
        if ((s >> 40) % 50 == 0 && accepted[id] >= 0) {
            wh__dedupe_forget(d, name);
            accepted[id] = -1;
            continue;
        }
        int got = wh__dedupe_check(d, name, now);
        if (got != want)
            th_fail(__FILE__, __LINE__, "op %d id %d now %lld: got %d want %d", op, id,
                    (long long)now, got, want);
        if (!want) accepted[id] = now;
        dups += want;
    }
    CHECK(dups > OPS / 4);       /* the model exercised both answers */
    CHECK(dups < OPS - OPS / 10);
    /* the memory holds exactly the ids within the window */
    size_t live = 0;
    for (int i = 0; i < IDS; i++) live += accepted[i] >= 0 && now < accepted[i] + window;
    char probe[8];
    snprintf(probe, sizeof probe, "zz");
    CHECK_EQ(wh__dedupe_check(d, probe, now), 0);   /* drops the expired ones */
    CHECK_EQ(wh__dedupe_count(d), live + 1);
    free(accepted);
    wh__dedupe_free(d);
}

static void test_growth_many_ids(void)
{
    wh__dedupe *d = wh__dedupe_new(1 << 30, 300000);
    char name[32];
    for (int i = 0; i < 250000; i++) {
        snprintf(name, sizeof name, "id-%d", i);
        CHECK_EQ(wh__dedupe_check(d, name, i), 0);
    }
    for (int i = 0; i < 250000; i += 997) {
        snprintf(name, sizeof name, "id-%d", i);
        CHECK_EQ(wh__dedupe_check(d, name, 250000), 1);
    }
    CHECK_EQ(wh__dedupe_count(d), 250000);
    wh__dedupe_free(d);
}

TH_MAIN(TH_CASE(test_window), TH_CASE(test_bound_forgets_oldest), TH_CASE(test_forget),
        TH_CASE(test_random_against_model), TH_CASE(test_growth_many_ids))
