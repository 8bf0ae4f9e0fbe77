/* The configuration's error channel, typed values and the key-table driven
 * object parser (see config.h). */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int wh__cfg_fail(wh__cfg_err *err, int status, const char *fmt, ...)
{
    if (err->status == WH_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

void wh__cfg_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--) *v++ = 0;
}

/* Keys come from untrusted documents and must not put a CR into a log
 * line. */
const char *wh__cfg_quote(char *out, size_t size, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, shown = 0;
    out[o++] = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (o + 8 >= size || shown >= 60) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (*c == '"' || *c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*c;
        } else if (*c < 0x20 || *c >= 0x7f) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[*c >> 4];
            out[o++] = hex[*c & 15];
        } else {
            out[o++] = (char)*c;
        }
        shown++;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

static int plain_key(const char *k)
{
    if (!*k) return 0;
    for (; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
              (*k >= '0' && *k <= '9') || *k == '_'))
            return 0;
    return 1;
}

void wh__cfg_path(char *out, size_t size, const char *parent, const char *key)
{
    if (plain_key(key)) {
        snprintf(out, size, "%s%s%s", parent, *parent ? "." : "", key);
    } else {
        char q[96];
        snprintf(out, size, "%s[%s]", parent, wh__cfg_quote(q, sizeof q, key));
    }
}

/* ---- typed values ---------------------------------------------------------- */

int wh__cfg_uint(const cJSON *item, const char *path, uint64_t min, uint64_t max,
                 uint64_t *out, wh__cfg_err *err)
{
    double d = item->valuedouble;
    if (!cJSON_IsNumber(item) || !isfinite(d) || d < (double)min || d > (double)max ||
        floor(d) != d) {
        if (min == 1)
            return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected a positive integer "
                                "(1 to %llu)", path, (unsigned long long)max);
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected an integer from %llu to "
                            "%llu", path, (unsigned long long)min,
                            (unsigned long long)max);
    }
    *out = (uint64_t)d;
    return WH_OK;
}

int wh__cfg_string(const cJSON *item, const char *path, int nonempty,
                   const char **out, wh__cfg_err *err)
{
    if (!cJSON_IsString(item) || !item->valuestring ||
        (nonempty && !*item->valuestring))
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected a %sstring", path,
                            nonempty ? "non-empty " : "");
    *out = item->valuestring;
    return WH_OK;
}

int wh__cfg_bool(const cJSON *item, const char *path, int *out, wh__cfg_err *err)
{
    if (!cJSON_IsBool(item))
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected true or false", path);
    *out = cJSON_IsTrue(item);
    return WH_OK;
}

int wh__cfg_choice(const cJSON *item, const char *path, const char *const *names,
                   size_t n, size_t *index, wh__cfg_err *err)
{
    const char *s = NULL;
    int rc = wh__cfg_string(item, path, 0, &s, err);
    if (rc != WH_OK) return rc;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *index = i;
            return WH_OK;
        }
    char q[96], list[256];
    size_t o = 0;
    for (size_t i = 0; i < n && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s\"%s\"", i ? ", " : "",
                              names[i]);
    return wh__cfg_fail(err, WH_E_CONFIG, "%s: unknown value %s (expected one of %s)",
                        path, wh__cfg_quote(q, sizeof q, s), list);
}

/* ---- objects ------------------------------------------------------------------ */

static int find_key(const wh__cfg_table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->keys[i].name, name) == 0) return (int)i;
    return -1;
}

static int read_key(const wh__cfg_key *k, const cJSON *item, const char *path,
                    void *target, wh__cfg_err *err)
{
    char *dst = (char *)target + k->offset;
    uint64_t v = 0;
    int rc;
    switch (k->type) {
    case WH__CFG_U32:
        rc = wh__cfg_uint(item, path, k->min, k->max, &v, err);
        if (rc == WH_OK) {
            uint32_t u = (uint32_t)v;
            memcpy(dst, &u, sizeof u);
        }
        return rc;
    case WH__CFG_U64:
        rc = wh__cfg_uint(item, path, k->min, k->max, &v, err);
        if (rc == WH_OK) memcpy(dst, &v, sizeof v);
        return rc;
    case WH__CFG_BOOL: {
        int b = 0;
        rc = wh__cfg_bool(item, path, &b, err);
        if (rc == WH_OK) memcpy(dst, &b, sizeof b);
        return rc;
    }
    case WH__CFG_STR: {
        const char *s = NULL;
        rc = wh__cfg_string(item, path, k->min > 0, &s, err);
        if (rc == WH_OK) memcpy(dst, &s, sizeof s);
        return rc;
    }
    case WH__CFG_OBJECT:
        return wh__cfg_object(item, path, k->table, target, err);
    case WH__CFG_FN:
        return k->fn(item, path, target, err);
    }
    return wh__cfg_fail(err, WH_E_CONFIG, "%s: unsupported key", path);
}

int wh__cfg_object(const cJSON *obj, const char *path, const wh__cfg_table *t,
                   void *target, wh__cfg_err *err)
{
    if (!cJSON_IsObject(obj))
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected an object", path);
    int rc = t->before ? t->before(obj, path, target, err) : WH_OK;
    uint64_t seen = 0;
    for (const cJSON *it = obj->child; rc == WH_OK && it; it = it->next) {
        char q[96];
        int i = find_key(t, it->string);
        if (i < 0)
            return wh__cfg_fail(err, WH_E_CONFIG, "%s: unknown key %s%s%s", path,
                                wh__cfg_quote(q, sizeof q, it->string),
                                t->scope ? " " : "", t->scope ? t->scope : "");
        /* cJSON keeps both members of {"a":1,"a":2}; a configuration must
         * not. */
        if (seen & (UINT64_C(1) << i))
            return wh__cfg_fail(err, WH_E_CONFIG, "%s: duplicate key %s", path,
                                wh__cfg_quote(q, sizeof q, it->string));
        seen |= UINT64_C(1) << i;
        const wh__cfg_key *k = &t->keys[i];
        if (k->conflicts) {
            int j = find_key(t, k->conflicts);
            if (j >= 0 && (seen & (UINT64_C(1) << j)))
                return wh__cfg_fail(err, WH_E_CONFIG, "%s: give \"%s\" or \"%s\", "
                                    "not both", path, t->keys[j].name, k->name);
        }
        char kp[160];
        wh__cfg_path(kp, sizeof kp, path, k->name);
        rc = read_key(k, it, kp, target, err);
    }
    if (rc == WH_OK && t->after) rc = t->after(obj, path, target, err);
    return rc;
}

void wh__cfg_key_kind(const wh__cfg_key *k, char *out, size_t size)
{
    switch (k->type) {
    case WH__CFG_U32:
    case WH__CFG_U64:
        if (k->max == UINT32_MAX || k->max == (UINT64_C(1) << 52))
            snprintf(out, size, "integer ≥ %llu", (unsigned long long)k->min);
        else
            snprintf(out, size, "integer %llu–%llu", (unsigned long long)k->min,
                     (unsigned long long)k->max);
        break;
    case WH__CFG_BOOL: snprintf(out, size, "boolean"); break;
    case WH__CFG_STR: snprintf(out, size, "%sstring", k->min ? "non-empty " : ""); break;
    case WH__CFG_OBJECT: snprintf(out, size, "object"); break;
    case WH__CFG_FN: snprintf(out, size, "%s", k->kind ? k->kind : "?"); break;
    }
}

void wh__cfg_table_visit(const wh__cfg_table *t, const char *prefix,
                         wh__cfg_key_visit fn, void *user)
{
    for (size_t i = 0; i < t->n; i++) {
        const wh__cfg_key *k = &t->keys[i];
        char path[160];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", k->name);
        fn(path, k, user);
        if (k->table) wh__cfg_table_visit(k->table, path, fn, user);
    }
}
