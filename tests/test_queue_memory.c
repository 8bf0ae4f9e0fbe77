/* Tests of lib/queue_memory.c through its wh_queue vtable: what is claimed
 * is exactly what was enqueued (ids kept as text or as binary UUIDs, types
 * and channels interned), FIFO and retry-heap order, release keeps the
 * place, bounds, and everything is freed (LeakSanitizer in the ASan run). */
#include "harness.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static wh_queue *new_queue(size_t max_events, size_t max_bytes)
{
    wh_queue *q = NULL;
    CHECK_EQ(wh__queue_memory_new(max_events, max_bytes, &q), WH_OK);
    CHECK(q != NULL);
    return q;
}

static int enq(wh_queue *q, const char *id, const char *type, const char *channel,
               const char *data, const uint32_t *slots, size_t n, int64_t due)
{
    wh_event_view ev = {id, type, channel, data, strlen(data), 1700000000123};
    return q->enqueue(q->user, &ev, slots, NULL, n, due);
}

/* Every kind of id comes back byte for byte: the engine's lowercase UUIDs
 * (stored binary), an uppercase UUID, near-UUIDs and free-form ids (stored
 * as text); types and channels too, NULL channel included. */
static void test_fields_round_trip(void)
{
    static const char *ids[] = {
        "0190b6b2-6f2a-7c3e-9d4f-0123456789ab", /* canonical lowercase */
        "0190B6B2-6F2A-7C3E-9D4F-0123456789AB", /* uppercase: kept as text */
        "0190b6b2-6f2a-7c3e-9d4f-0123456789a",  /* one short */
        "0190b6b2-6f2a-7c3e-9d4f-0123456789abc", /* one long */
        "0190b6b2x6f2a-7c3e-9d4f-0123456789ab", /* bad dash */
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "a",
    };
    static const char *channels[] = {"room-1", NULL, "room-2", "room-1", "", NULL, "x"};
    static const char *types[] = {"message.created", "message.created", "member.joined",
                                  "message.created", "t", "member.joined", "t"};
    const size_t n = sizeof ids / sizeof ids[0];
    wh_queue *q = new_queue(100, 1 << 20);
    const uint32_t slot[] = {3};
    char data[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(data, sizeof data, "{\"i\":%zu}", i);
        CHECK_EQ(enq(q, ids[i], types[i], channels[i], data, slot, 1, 10), WH_OK);
    }
    CHECK_EQ(q->size(q->user), n);
    CHECK_EQ(q->next_due(q->user, 3), 10);
    CHECK_EQ(q->next_due(q->user, 2), INT64_MAX);
    wh_job jobs[16];
    CHECK_EQ(q->claim(q->user, 3, 9, jobs, 16), 0); /* not due yet */
    CHECK_EQ(q->claim(q->user, 3, 10, jobs, 16), n);
    for (size_t i = 0; i < n; i++) {
        snprintf(data, sizeof data, "{\"i\":%zu}", i);
        CHECK_STR(jobs[i].ev.id, ids[i]);
        CHECK_STR(jobs[i].ev.type, types[i]);
        if (channels[i]) CHECK_STR(jobs[i].ev.channel, channels[i]);
        else CHECK(jobs[i].ev.channel == NULL);
        CHECK_EQ(jobs[i].ev.data_len, strlen(data));
        CHECK_STR(jobs[i].ev.data, data); /* NUL-terminated copy */
        CHECK_EQ(jobs[i].ev.created_ms, 1700000000123);
        CHECK_EQ(jobs[i].endpoint, 3);
        CHECK_EQ(jobs[i].attempts, 0);
        CHECK_EQ(jobs[i].first_attempt_ms, -1);
    }
    /* interned strings are shared, not copied per event */
    CHECK(jobs[0].ev.type == jobs[1].ev.type);
    CHECK(jobs[0].ev.channel == jobs[3].ev.channel);
    for (size_t i = 0; i < n; i++) q->ack(q->user, &jobs[i]);
    CHECK_EQ(q->size(q->user), 0);
    q->destroy(q->user);
}

/* One event for several endpoints: stored once (same data pointer for every
 * endpoint), freed after the last ack; each endpoint's FIFO keeps order. */
static void test_fan_out_shared_payload(void)
{
    wh_queue *q = new_queue(100, 1 << 20);
    const uint32_t slots[] = {0, 5, 17};
    CHECK_EQ(enq(q, "e1", "t", "c", "{\"a\":1}", slots, 3, 0), WH_OK);
    CHECK_EQ(enq(q, "e2", "t", "c", "{\"a\":2}", slots, 3, 0), WH_OK);
    CHECK_EQ(q->size(q->user), 6);
    wh_job a[4], b[4], c[4];
    CHECK_EQ(q->claim(q->user, 0, 0, a, 4), 2);
    CHECK_EQ(q->claim(q->user, 5, 0, b, 4), 2);
    CHECK_EQ(q->claim(q->user, 17, 0, c, 4), 2);
    CHECK(a[0].ev.data == b[0].ev.data && b[0].ev.data == c[0].ev.data);
    CHECK_STR(a[0].ev.id, "e1");
    CHECK_STR(a[1].ev.id, "e2");
    CHECK_STR(c[1].ev.data, "{\"a\":2}");
    for (int i = 0; i < 2; i++) {
        q->ack(q->user, &a[i]);
        q->ack(q->user, &b[i]);
    }
    CHECK_STR(c[0].ev.data, "{\"a\":1}"); /* still alive: one job left */
    q->ack(q->user, &c[0]);
    q->ack(q->user, &c[1]);
    CHECK_EQ(q->size(q->user), 0);
    q->destroy(q->user);
}

/* Retried jobs come back by due time, with their attempt count and first
 * attempt time; a released job keeps its place (fresh: FIFO front; retried:
 * its due time). */
static void test_retry_and_release_order(void)
{
    wh_queue *q = new_queue(100, 1 << 20);
    const uint32_t s[] = {1};
    const char *ids[] = {"j0", "j1", "j2", "j3"};
    for (int i = 0; i < 4; i++) CHECK_EQ(enq(q, ids[i], "t", NULL, "[]", s, 1, 100), WH_OK);
    wh_job j[8];
    CHECK_EQ(q->claim(q->user, 1, 100, j, 2), 2); /* j0 j1 */
    j[0].first_attempt_ms = 100;
    q->retry(q->user, &j[0], 500);
    j[1].first_attempt_ms = 100;
    q->retry(q->user, &j[1], 300);
    CHECK_EQ(q->next_due(q->user, 1), 100); /* j2, j3 fresh */
    CHECK_EQ(q->claim(q->user, 1, 200, j, 8), 2);
    CHECK_STR(j[0].ev.id, "j2");
    CHECK_STR(j[1].ev.id, "j3");
    q->release(q->user, &j[1]); /* reverse order restores j2, j3 */
    q->release(q->user, &j[0]);
    CHECK_EQ(q->claim(q->user, 1, 200, j, 1), 1);
    CHECK_STR(j[0].ev.id, "j2");
    q->release(q->user, &j[0]);
    CHECK_EQ(q->size(q->user), 4);
    CHECK_EQ(q->claim(q->user, 1, 400, j, 8), 3); /* j2 j3 fresh (100) then j1 (300) */
    CHECK_STR(j[0].ev.id, "j2");
    CHECK_STR(j[1].ev.id, "j3");
    CHECK_STR(j[2].ev.id, "j1");
    CHECK_EQ(j[2].attempts, 1);
    CHECK_EQ(j[2].first_attempt_ms, 100);
    q->release(q->user, &j[2]); /* retried job back at due 300 */
    CHECK_EQ(q->next_due(q->user, 1), 300);
    q->ack(q->user, &j[0]);
    q->ack(q->user, &j[1]);
    CHECK_EQ(q->claim(q->user, 1, 1000, j, 8), 2);
    CHECK_STR(j[0].ev.id, "j1");
    CHECK_EQ(j[0].attempts, 1);
    CHECK_STR(j[1].ev.id, "j0");
    CHECK_EQ(j[1].attempts, 1);
    j[1].first_attempt_ms = 100;
    q->retry(q->user, &j[1], 2000);
    q->ack(q->user, &j[0]);
    CHECK_EQ(q->claim(q->user, 1, 2000, j, 8), 1);
    CHECK_STR(j[0].ev.id, "j0");
    CHECK_EQ(j[0].attempts, 2);
    q->ack(q->user, &j[0]);
    CHECK_EQ(q->size(q->user), 0);
    CHECK_EQ(q->next_due(q->user, 1), INT64_MAX);
    q->destroy(q->user);
}

/* Bounds: events and payload bytes; nothing stored on refusal. */
static void test_bounds(void)
{
    wh_queue *q = new_queue(2, 1 << 20);
    const uint32_t s[] = {0};
    CHECK_EQ(enq(q, "a", "t", NULL, "1", s, 1, 0), WH_OK);
    CHECK_EQ(enq(q, "b", "t", NULL, "2", s, 1, 0), WH_OK);
    CHECK_EQ(enq(q, "c", "t", NULL, "3", s, 1, 0), WH_E_FULL);
    CHECK_EQ(q->size(q->user), 2);
    q->destroy(q->user); /* queued jobs are freed */
    q = new_queue(100, 10);
    CHECK_EQ(enq(q, "a", "t", NULL, "\"12345\"", s, 1, 0), WH_OK);
    CHECK_EQ(enq(q, "b", "t", NULL, "\"12345\"", s, 1, 0), WH_E_FULL);
    CHECK_EQ(q->size(q->user), 1);
    q->destroy(q->user);
}

/* Many distinct channels come and go: interned strings are released with
 * their last event (LeakSanitizer in the ASan run checks that none is left
 * behind), and lookups stay right across the table's deletions. */
static void test_many_channels(void)
{
    wh_queue *q = new_queue(100000, 1 << 26);
    const uint32_t s[] = {0};
    char ch[32], id[32];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 5000; i++) {
            snprintf(ch, sizeof ch, "room-%d", (i * 7919) % 3000);
            snprintf(id, sizeof id, "id-%d", i);
            CHECK_EQ(enq(q, id, i % 2 ? "odd" : "even", ch, "0", s, 1, 0), WH_OK);
        }
        wh_job j[64];
        size_t n, seen = 0;
        while ((n = q->claim(q->user, 0, 0, j, 64)) > 0) {
            for (size_t k = 0; k < n; k++) {
                int i = (int)(seen + k);
                snprintf(ch, sizeof ch, "room-%d", (i * 7919) % 3000);
                snprintf(id, sizeof id, "id-%d", i);
                CHECK_STR(j[k].ev.channel, ch);
                CHECK_STR(j[k].ev.id, id);
                CHECK_STR(j[k].ev.type, i % 2 ? "odd" : "even");
                q->ack(q->user, &j[k]);
            }
            seen += n;
        }
        CHECK_EQ(seen, 5000);
        CHECK_EQ(q->size(q->user), 0);
    }
    q->destroy(q->user);
}

/* The engine's own ids, handed over as 16 bytes (wh__queue_memory_enqueue_uuid),
 * come back as the text wh__uuid7 would have made of the same bytes, with
 * per-message headers too; an interned type still matches after another
 * type came between (the one-entry cache). */
static void test_uuid_bytes_enqueue(void)
{
    wh_queue *q = new_queue(100, 1 << 20);
    CHECK(wh__queue_memory_is(q));
    const uint32_t slot[] = {0};
    wh__rng a, b;
    wh__rng_seed(&a, 99);
    wh__rng_seed(&b, 99);
    char want[3][37];
    static const char *types[] = {"message.created", "other", "message.created"};
    for (int i = 0; i < 3; i++) {
        uint8_t u[16];
        wh__uuid7_bytes(&a, 1700000000123 + i, u);
        wh__uuid7(&b, 1700000000123 + i, want[i]);
        wh_event_view ev = {NULL, types[i], "room", "{}", 2, 1700000000123 + i};
        CHECK_EQ(wh__queue_memory_enqueue_uuid(q, &ev, u, i == 1 ? "X-A: 1" : NULL,
                                               i == 1 ? 6 : 0, slot, 1, 5),
                 WH_OK);
    }
    wh_job jobs[4];
    CHECK_EQ(q->claim(q->user, 0, 5, jobs, 4), 3);
    for (int i = 0; i < 3; i++) {
        CHECK_STR(jobs[i].ev.id, want[i]);
        CHECK_STR(jobs[i].ev.type, types[i]);
        CHECK_EQ(jobs[i].ev.created_ms, 1700000000123 + i);
    }
    CHECK(jobs[1].headers && strcmp(jobs[1].headers, "X-A: 1") == 0);
    CHECK(jobs[0].ev.type == jobs[2].ev.type); /* one interned copy */
    for (int i = 0; i < 3; i++) q->ack(q->user, &jobs[i]);
    CHECK_EQ(q->size(q->user), 0);
    q->destroy(q->user);
}

TH_MAIN(TH_CASE(test_fields_round_trip), TH_CASE(test_fan_out_shared_payload),
        TH_CASE(test_retry_and_release_order), TH_CASE(test_bounds),
        TH_CASE(test_many_channels), TH_CASE(test_uuid_bytes_enqueue))
