/* Shared by the libFuzzer targets of tests/fuzz/: the entry point's
 * prototype, a reader that cuts the input into fields, and a check that
 * aborts (libFuzzer then saves the input as a reproducer). */
#ifndef WH_FUZZ_H
#define WH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c)                                                             \
    do {                                                                        \
        if (!(c)) {                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                            \
        }                                                                       \
    } while (0)

typedef struct fz {
    const uint8_t *p, *end;
} fz;

static inline unsigned fz_u8(fz *f)
{
    return f->p < f->end ? *f->p++ : 0;
}

static inline unsigned fz_u16(fz *f)
{
    unsigned v = fz_u8(f);
    return v | fz_u8(f) << 8;
}

/* The next field up to a 0xff byte (or the end), as a malloc'd NUL-terminated
 * string of at most max bytes; *len receives its length. */
static inline char *fz_str(fz *f, size_t max, size_t *len)
{
    const uint8_t *s = f->p;
    while (f->p < f->end && *f->p != 0xff) f->p++;
    size_t n = (size_t)(f->p - s);
    if (f->p < f->end) f->p++;
    if (n > max) n = max;
    char *out = malloc(n + 1);
    if (!out) abort();
    memcpy(out, s, n);
    out[n] = '\0';
    if (len) *len = n;
    return out;
}

#endif
