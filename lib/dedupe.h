/* Emit idempotency (internal): the delivery ids accepted within the last
 * window_ms, remembered in memory with bounded size.
 *
 * A FIFO ring holds the ids in acceptance order (their expiry times are then
 * in order too, since the window is fixed), and an open-addressing table of
 * ring positions finds an id in O(1).  Expired ids leave from the ring's
 * head.  At most max_ids are remembered: when full, the oldest id is
 * forgotten early (the window shrinks under a flood of distinct ids rather
 * than memory growing).
 *
 * Cost per remembered id: a 24-byte ring entry + its id string (length + 1,
 * plus the allocator's overhead, typically 16 bytes) + 8-16 bytes of table
 * (4-byte slots, load at most 1/2), and up to twice the ring while it grows
 * by doubling: 50 to 80 bytes + strlen(id) per id; 1,000,000 36-character
 * UUIDs take 86 to 116 MB. */
#ifndef WH_DEDUPE_H
#define WH_DEDUPE_H

#include <stddef.h>
#include <stdint.h>

typedef struct wh__dedupe wh__dedupe;

/* window_ms > 0, max_ids > 0.  NULL when out of memory. */
wh__dedupe *wh__dedupe_new(int64_t window_ms, size_t max_ids);
void wh__dedupe_free(wh__dedupe *d);       /* NULL ok */
/* 1: `id` was accepted within the window before now_ms (not remembered
 * again); 0: it was not, and is now remembered until now_ms + window_ms;
 * WH_E_NOMEM. */
int wh__dedupe_check(wh__dedupe *d, const char *id, int64_t now_ms);
/* Forget `id` (its emit failed after the check).  No-op when absent. */
void wh__dedupe_forget(wh__dedupe *d, const char *id);
/* Ids remembered now (expired ones are dropped lazily, by check). */
size_t wh__dedupe_count(const wh__dedupe *d);

#endif /* WH_DEDUPE_H */
