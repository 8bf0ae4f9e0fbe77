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
