/* Small allocation and logging helpers. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *wh__calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

char *wh__strndup(const char *s, size_t n)
{
    if (!s) return NULL;
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Versioned options structs all begin with `size_t struct_size`. */
void wh__opts_init(void *o, size_t size, const void *defaults, size_t full)
{
    if (!o || size < sizeof(size_t)) return;
    size_t n = size < full ? size : full;
    memcpy(o, defaults, n);
    memcpy(o, &n, sizeof n); /* struct_size: what the caller's struct holds */
}

int wh__opts_copy_in(void *o, size_t full, const void *in)
{
    if (!in) return WH_OK;
    size_t size;
    memcpy(&size, in, sizeof size);
    if (size < sizeof(size_t) || size > full * 4) return WH_E_VERSION;
    memcpy(o, in, size < full ? size : full);
    return WH_OK;
}

char *wh__strdup(const char *s)
{
    return s ? wh__strndup(s, strlen(s)) : NULL;
}

void wh__logf(wh_log_fn fn, void *user, wh_log_level lvl, const char *fmt, ...)
{
    if (!fn) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fn(user, lvl, buf);
}
