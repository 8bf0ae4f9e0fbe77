/* libFuzzer: the lean transport's HTTP/1.1 response parser (lib/http1.c).
 * The input is split into pieces at positions its first bytes choose, fed
 * with limits its first bytes choose, and parsed again in one piece: both
 * runs must agree, and every result must be in range (a result code the
 * parser defines, a final status 200-599, the body within its cap and its
 * read limit, no keep-alive after a truncated body).  `make fuzz` runs it
 * with the others; alone:
 *   make build/fuzz/fuzz_http1 && build/fuzz/fuzz_http1 tests/fuzz/corpus/fuzz_http1 */
#include "fuzz.h"
#include "http1.h"

typedef struct run_out {
    int rc;
    size_t used;
    int status, keep_alive, truncated;
    size_t body_len;
    uint64_t body_read;
    char body[64];
} run_out;

static wh__http1 parsers[2];

static void run(const uint8_t *in, size_t n, const uint8_t *cuts, size_t n_cuts,
                size_t max_line, size_t max_headers, uint64_t max_body, int eof,
                wh__http1 *p, run_out *o)
{
    wh__http1_init(p);
    p->body = o->body;
    p->body_cap = sizeof o->body;
    p->max_line = max_line;
    p->max_headers = max_headers;
    p->max_body_read = max_body;
    size_t pos = 0, c = 0;
    int rc = WH__H1_MORE;
    while (pos < n && rc == WH__H1_MORE) {
        size_t k = n - pos;
        if (c < n_cuts) {
            size_t want = (size_t)cuts[c++] + 1;
            if (want < k) k = want;
        }
        size_t used = 0;
        rc = wh__http1_feed(p, (const char *)in + pos, k, &used);
        FZ_CHECK(!(used > k));
        FZ_CHECK(!(rc == WH__H1_MORE && used != k));
        pos += used;
    }
    if (rc == WH__H1_MORE && eof) rc = wh__http1_eof(p);
    FZ_CHECK(!(rc < WH__H1_E_DONE || rc > WH__H1_DONE));
    FZ_CHECK(!(rc == WH__H1_DONE && (p->status < 200 || p->status > 599)));
    FZ_CHECK(!(p->body_len > p->body_cap || p->body_len > p->body_read));
    FZ_CHECK(!(p->body_read > max_body));
    FZ_CHECK(!(p->truncated && p->keep_alive));
    o->rc = rc;
    o->used = pos;
    o->status = p->status;
    o->keep_alive = p->keep_alive;
    o->truncated = p->truncated;
    o->body_len = p->body_len;
    o->body_read = p->body_read;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    size_t max_line = 16 + (size_t)data[0] * 40;
    size_t max_headers = 1 + data[1] % 120;
    uint64_t max_body = data[2] & 0x80 ? UINT64_MAX : (uint64_t)(data[2] & 0x7f) * 3;
    int eof = data[3] & 1;
    size_t n_cuts = (data[3] >> 1) % 16;
    data += 4;
    size = size - 4;
    if (n_cuts > size) n_cuts = size;
    const uint8_t *cuts = data;
    data += n_cuts;
    size -= n_cuts;
    run_out a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    run(data, size, cuts, n_cuts, max_line, max_headers, max_body, eof, &parsers[0], &a);
    run(data, size, NULL, 0, max_line, max_headers, max_body, eof, &parsers[1], &b);
    FZ_CHECK(!(a.rc != b.rc));
    if (a.rc >= 0 && (a.used != b.used || a.status != b.status ||
                      a.keep_alive != b.keep_alive || a.truncated != b.truncated ||
                      a.body_len != b.body_len || a.body_read != b.body_read ||
                      memcmp(a.body, b.body, a.body_len) != 0))
        FZ_CHECK(0);
    return 0;
}
