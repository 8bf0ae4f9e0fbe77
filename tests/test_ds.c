/* The primitives of lib/ds.h (heap, hash map, intrusive list, growable
 * array) against brute-force references, with random operations. */
#include "ds.h"
#include "harness.h"
#include "internal.h"
#include <webhook/webhook.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the library's generator, fixed seed: the same operations every run */
static uint32_t rnd(uint32_t n)
{
    static wh__rng rng;
    static int seeded;
    if (!seeded) {
        wh__rng_seed(&rng, 12345);
        seeded = 1;
    }
    return (uint32_t)(wh__rng_next(&rng) % n);
}

#define N 500

typedef struct item {
    wh__heap_node node;
    wh__link link;
    int in_list;
    char key[16];
    size_t len;
} item;

/* Random push/update/remove/pop; the top is always the smallest key among
 * the members and every member's idx points at itself. */
static void test_heap_matches_reference(void)
{
    static item it[N];
    wh__heap h = {0};
    CHECK_EQ(wh__heap_reserve(&h, N), WH_OK);
    for (int i = 0; i < N; i++) it[i].node = (wh__heap_node)WH__HEAP_NODE_INIT;
    for (int round = 0; round < 20000; round++) {
        item *x = &it[rnd(N)];
        int64_t key = (int64_t)rnd(1000) - 500;
        switch (rnd(4)) {
        case 0:
            if (x->node.idx == SIZE_MAX) wh__heap_push(&h, &x->node, key);
            break;
        case 1:
            if (x->node.idx != SIZE_MAX) wh__heap_update(&h, &x->node, key);
            break;
        case 2:
            if (x->node.idx != SIZE_MAX) wh__heap_remove(&h, &x->node);
            break;
        default:
            if (h.n) {
                int64_t min = INT64_MAX;
                for (int i = 0; i < N; i++)
                    if (it[i].node.idx != SIZE_MAX && it[i].node.key < min) min = it[i].node.key;
                wh__heap_node *t = wh__heap_pop(&h);
                CHECK_EQ(t->key, min);
                CHECK_EQ(t->idx, SIZE_MAX);
            }
        }
        size_t members = 0;
        for (int i = 0; i < N; i++) {
            if (it[i].node.idx == SIZE_MAX) continue;
            members++;
            CHECK(it[i].node.idx < h.n && h.a[it[i].node.idx] == &it[i].node);
            CHECK(wh__heap_top(&h)->key <= it[i].node.key);
        }
        CHECK_EQ(members, h.n);
    }
    wh__heap_free(&h);
}

/* Random put/del/get over a small key space (collisions and
 * backward-shift deletion get exercised); get agrees with a flag array. */
static void test_map_matches_reference(void)
{
    static item it[N];
    static int present[N];
    wh__map m = {0};
    for (int i = 0; i < N; i++) {
        it[i].len = (size_t)snprintf(it[i].key, sizeof it[i].key, "k%d", i);
        present[i] = 0;
    }
    for (int round = 0; round < 50000; round++) {
        int i = (int)rnd(N);
        item *x = &it[i];
        uint64_t hh = wh__hash(x->key, x->len);
        void *got = wh__map_get(&m, x->key, x->len, hh);
        CHECK(got == (present[i] ? x : NULL));
        if (!present[i] && rnd(2)) {
            CHECK_EQ(wh__map_put(&m, x->key, x->len, hh, x), WH_OK);
            present[i] = 1;
        } else if (present[i] && rnd(3) == 0) {
            CHECK(wh__map_del(&m, x->key, x->len, hh) == x);
            present[i] = 0;
        }
    }
    size_t n = 0;
    for (int i = 0; i < N; i++) {
        n += (size_t)present[i];
        void *got = wh__map_get(&m, it[i].key, it[i].len, wh__hash(it[i].key, it[i].len));
        CHECK(got == (present[i] ? &it[i] : NULL));
    }
    CHECK_EQ(m.n, n);
    CHECK(wh__map_del(&m, "absent", 6, wh__hash("absent", 6)) == NULL);
    wh__map_free(&m);
}

/* Random pushes at both ends, unlinks, pops and splices; the list reads the
 * same forwards and backwards as a reference array. */
static void test_list_matches_reference(void)
{
    static item it[64];
    item *ref[64];
    size_t n = 0;
    wh__list l = {0};
    for (int round = 0; round < 20000; round++) {
        item *x = &it[rnd(64)];
        int op = (int)rnd(4);
        if (!x->in_list && op == 0) {
            wh__list_push_front(&l, &x->link);
            memmove(ref + 1, ref, n * sizeof *ref);
            ref[0] = x;
            n++;
            x->in_list = 1;
        } else if (!x->in_list && op == 1) {
            wh__list_push_back(&l, &x->link);
            ref[n++] = x;
            x->in_list = 1;
        } else if (x->in_list && op == 2) {
            wh__list_unlink(&l, &x->link);
            size_t k = 0;
            while (ref[k] != x) k++;
            memmove(ref + k, ref + k + 1, (n - k - 1) * sizeof *ref);
            n--;
            x->in_list = 0;
        } else if (op == 3 && n) {
            item *y = WH__CONTAINER_OF(wh__list_pop_front(&l), item, link);
            CHECK(y == ref[0]);
            memmove(ref, ref + 1, (n - 1) * sizeof *ref);
            n--;
            y->in_list = 0;
        }
        CHECK_EQ(l.n, n);
        size_t k = 0;
        for (wh__link *p = l.head; p; p = p->next, k++)
            CHECK(k < n && WH__CONTAINER_OF(p, item, link) == ref[k]);
        CHECK_EQ(k, n);
        for (wh__link *p = l.tail; p; p = p->prev)
            CHECK(WH__CONTAINER_OF(p, item, link) == ref[--k]);
    }
    /* splice: src's elements go in front, in src's order */
    wh__list src = {0};
    item a, b;
    wh__list_push_back(&src, &a.link);
    wh__list_push_back(&src, &b.link);
    wh__list_splice_front(&l, &src);
    CHECK(src.head == NULL && src.tail == NULL && src.n == 0);
    CHECK(l.head == &a.link && a.link.next == &b.link);
    CHECK_EQ(l.n, n + 2);
    wh__list empty = {0};
    wh__list_splice_front(&empty, &src);
    CHECK(empty.head == NULL && empty.n == 0);
}

/* Growth doubles from `first`, keeps the contents, zeroes new room. */
static void test_array_reserve(void)
{
    int *a = NULL;
    size_t cap = 0;
    CHECK_EQ(wh__array_reserve(&a, &cap, 3, sizeof *a, 4), WH_OK);
    CHECK_EQ(cap, 4);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(a[i], 0);
        a[i] = i + 1;
    }
    CHECK_EQ(wh__array_reserve(&a, &cap, 4, sizeof *a, 4), WH_OK);
    CHECK_EQ(cap, 4);
    CHECK_EQ(wh__array_reserve(&a, &cap, 9, sizeof *a, 4), WH_OK);
    CHECK_EQ(cap, 16);
    for (int i = 0; i < 16; i++) CHECK_EQ(a[i], i < 4 ? i + 1 : 0);
    /* a size that cannot be allocated fails and leaves the array alone */
    CHECK_EQ(wh__array_reserve(&a, &cap, SIZE_MAX / 2, sizeof *a, 4), WH_E_NOMEM);
    CHECK_EQ(cap, 16);
    CHECK_EQ(a[3], 4);
    free(a);
}

TH_MAIN(TH_CASE(test_heap_matches_reference), TH_CASE(test_map_matches_reference),
        TH_CASE(test_list_matches_reference), TH_CASE(test_array_reserve))
