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

/* Two lowercase hex digits per byte value. */
static const char hex_pairs[513] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

void wh__uuid7_bytes(wh__rng *r, int64_t wall_ms, uint8_t b[16])
{
    uint64_t ms = (uint64_t)wall_ms;
    uint64_t a = wh__rng_next(r), c = wh__rng_next(r);
    for (int i = 0; i < 6; i++) b[i] = (uint8_t)(ms >> (40 - 8 * i));
    memcpy(b + 6, &a, 2);
    memcpy(b + 8, &c, 8);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x70); /* version 7 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 */
}

void wh__uuid7(wh__rng *r, int64_t wall_ms, char out[37])
{
    /* output offset of each byte's two digits (dashes at 8, 13, 18, 23) */
    static const uint8_t pos[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
    uint8_t b[16];
    wh__uuid7_bytes(r, wall_ms, b);
    for (int i = 0; i < 16; i++) memcpy(out + pos[i], hex_pairs + 2 * b[i], 2);
    out[8] = out[13] = out[18] = out[23] = '-';
    out[36] = '\0';
}

int wh__id_valid(const char *id)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++, n++)
        if (*p < 0x21 || *p > 0x7e || n >= 128) return 0;
    return n > 0;
}
