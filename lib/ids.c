/* Randomness (xoshiro256**, seeded from the OS or the host) and delivery ids
 * (UUIDv7: 48-bit Unix milliseconds, then 74 random bits). */
#include "internal.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void wh__rng_seed(wh__rng *r, uint64_t seed)
{
    if (seed == 0) {
        uint64_t buf = 0;
        if (getrandom(&buf, sizeof buf, GRND_NONBLOCK) != (ssize_t)sizeof buf) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            buf = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
                  ((uint64_t)getpid() << 16);
        }
        seed = buf ? buf : 1;
    }
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t wh__rng_next(wh__rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void wh__uuid7(wh__rng *r, int64_t wall_ms, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    uint64_t ms = (uint64_t)wall_ms;
    uint64_t a = wh__rng_next(r), c = wh__rng_next(r);
    for (int i = 0; i < 6; i++) b[i] = (uint8_t)(ms >> (40 - 8 * i));
    memcpy(b + 6, &a, 2);
    memcpy(b + 8, &c, 8);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x70); /* version 7 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 */
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}

int wh__id_valid(const char *id)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++, n++)
        if (*p < 0x21 || *p > 0x7e || n >= 128) return 0;
    return n > 0;
}
