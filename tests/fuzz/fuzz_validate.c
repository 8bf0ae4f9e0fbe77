/* libFuzzer: the JSON validator's two string scans (SSE2 where compiled in,
 * and the portable SWAR one) give the same status and, for invalid input,
 * the same offset, which lies within the input; wh__json_valid agrees. */
#include "fuzz.h"

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly `size` bytes: reading past it is caught by ASan */
    char *s = malloc(size ? size : 1);
    if (!s) return 0;
    if (size) memcpy(s, data, size);
    size_t o1 = 0, o2 = 0, o3 = 0;
    int a = wh__json_valid_path(s, size, &o1, WH__JSON_SIMD);
    int b = wh__json_valid_path(s, size, &o2, WH__JSON_PORTABLE);
    int c = wh__json_valid(s, size, &o3);
    FZ_CHECK(a == WH_OK || a == WH_E_JSON);
    FZ_CHECK(a == b && a == c);
    if (a != WH_OK) {
        FZ_CHECK(o1 == o2 && o1 == o3);
        FZ_CHECK(o1 <= size);
    }
    free(s);
    return 0;
}
