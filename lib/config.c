/* Endpoints from a JSON document (wh_config_load, wh_config_load_file).
 *
 * Two passes, all or nothing: every endpoint object is turned into a
 * wh_endpoint_options and checked (types here, values by
 * wh__endpoint_check) before the first one is added.  Every error names its
 * path in the document ("endpoints[2].timeout_ms: ..."). */
#include "internal.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CFG_MAX_FILE_BYTES ((size_t)16 << 20)

/* One endpoint of the document while it is being validated.  The strings
 * point into the cJSON tree, except the header lines which are built here. */
typedef struct cfg_ep {
    wh_endpoint_options o;
    const char **types;
    const char **secrets;
    char **headers;
    size_t n_headers;
    char *key_pem;          /* private_key_file contents (wiped on free) */
    size_t key_pem_cap;
    char where[40];         /* "endpoints[2]" or "webhooks[0]" */
    uint32_t *schedule;     /* retry.schedule_ms */
    int *statuses;          /* retry.statuses */
} cfg_ep;

typedef struct cfg {
    wh_engine *e;
    cfg_ep *eps;
    size_t n;
} cfg;

/* event_types [] : a non-NULL pointer with a count of 0 (subscribes to
 * nothing). */
static const char *const no_types[1] = {NULL};

/* ---- helpers ------------------------------------------------------------- */

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--) *v++ = 0;
}

/* Copy `s` into out[size] for an error message: quoted, control and
 * non-ASCII bytes escaped, truncated with "..." after ~60 characters.  Keys
 * come from untrusted documents and must not put a CR into a log line. */
static const char *quote(char *out, size_t size, const char *s)
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

/* Keys of a fixed set seen so far in one object (bit i: keys[i]).  Returns
 * the key's index, or -1 after reporting an unknown or repeated key (cJSON
 * keeps both members of {"a":1,"a":2}; a configuration must not). */
static int key_index(wh_engine *e, const char *where, const cJSON *item,
                     const char *const *keys, size_t n, uint32_t *seen)
{
    char q[96];
    for (size_t i = 0; i < n; i++) {
        if (strcmp(item->string, keys[i]) != 0) continue;
        if (*seen & (UINT32_C(1) << i)) {
            wh__fail(e, WH_E_CONFIG, "%s: duplicate key %s", where,
                     quote(q, sizeof q, item->string));
            return -1;
        }
        *seen |= UINT32_C(1) << i;
        return (int)i;
    }
    wh__fail(e, WH_E_CONFIG, "%s: unknown key %s", where,
             quote(q, sizeof q, item->string));
    return -1;
}

static int want_string(wh_engine *e, const char *where, const cJSON *item,
                       const char **out)
{
    if (!cJSON_IsString(item) || !item->valuestring)
        return wh__fail(e, WH_E_CONFIG, "%s.%s: expected a string", where,
                        item->string);
    *out = item->valuestring;
    return WH_OK;
}

/* A positive integer that fits uint32 (1 .. 4294967295). */
static int want_u32(wh_engine *e, const char *where, const cJSON *item,
                    uint32_t *out)
{
    double d = item->valuedouble;
    if (!cJSON_IsNumber(item) || !isfinite(d) || d < 1 || d > 4294967295.0 ||
        floor(d) != d)
        return wh__fail(e, WH_E_CONFIG, "%s.%s: expected a positive integer "
                        "(1 to 4294967295)", where, item->string);
    *out = (uint32_t)d;
    return WH_OK;
}

/* The engine's last message without the "WH_E_...: " prefix wh__fail puts
 * before it, so it can be wrapped in another message. */
static void last_detail(wh_engine *e, int status, char *out, size_t size)
{
    const char *m = wh_last_error(e);
    const char *name = wh_status_name(status);
    size_t n = strlen(name);
    if (m && strncmp(m, name, n) == 0 && m[n] == ':' && m[n + 1] == ' ')
        m += n + 2;
    snprintf(out, size, "%s", m ? m : "");
}

/* ---- one endpoint ---------------------------------------------------------- */

static int parse_event_types(wh_engine *e, const char *where,
                             const cJSON *item, cfg_ep *c)
{
    if (!cJSON_IsArray(item))
        return wh__fail(e, WH_E_CONFIG,
                        "%s.event_types: expected an array of strings", where);
    int n = cJSON_GetArraySize(item);
    if (n == 0) {
        c->o.event_types = no_types;
        c->o.n_event_types = 0;
        return WH_OK;
    }
    c->types = wh__calloc((size_t)n, sizeof *c->types);
    if (!c->types) return wh__fail(e, WH_E_NOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *t = item->child; t; t = t->next, i++) {
        if (!cJSON_IsString(t) || !t->valuestring)
            return wh__fail(e, WH_E_CONFIG,
                            "%s.event_types[%zu]: expected a string", where, i);
        if (!*t->valuestring)
            return wh__fail(e, WH_E_CONFIG,
                            "%s.event_types[%zu]: empty event type", where, i);
        c->types[i] = t->valuestring;
    }
    c->o.event_types = c->types;
    c->o.n_event_types = i;
    return WH_OK;
}

static int check_secret(wh_engine *e, const char *where, const char *s,
                        const char *key_path)
{
    wh__hmac *h = NULL;
    int rc = wh__hmac_new(s, &h);
    wh__hmac_free(h);
    if (rc == WH_E_NOMEM) return wh__fail(e, rc, "out of memory");
    if (rc != WH_OK)
        return wh__fail(e, WH_E_CONFIG, "%s.%s: not a valid secret (expected "
                        "whsec_<base64> or a non-empty string)", where,
                        key_path);
    return WH_OK;
}

static int parse_secret(wh_engine *e, const char *where, const cJSON *item,
                        cfg_ep *c)
{
    if (cJSON_IsString(item) && item->valuestring) {
        c->secrets = wh__calloc(1, sizeof *c->secrets);
        if (!c->secrets) return wh__fail(e, WH_E_NOMEM, "out of memory");
        c->secrets[0] = item->valuestring;
        c->o.secrets = c->secrets;
        c->o.n_secrets = 1;
        return check_secret(e, where, item->valuestring, item->string);
    }
    if (!cJSON_IsArray(item))
        return wh__fail(e, WH_E_CONFIG, "%s.secret: expected a string or an "
                        "array of strings", where);
    int n = cJSON_GetArraySize(item);
    c->secrets = wh__calloc((size_t)n, sizeof *c->secrets);
    if (!c->secrets) return wh__fail(e, WH_E_NOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *s = item->child; s; s = s->next, i++) {
        if (!cJSON_IsString(s) || !s->valuestring)
            return wh__fail(e, WH_E_CONFIG, "%s.%s[%zu]: expected a string",
                            where, item->string, i);
        c->secrets[i] = s->valuestring;
        c->o.n_secrets = i + 1; /* so the caller wipes what was seen */
        char key[40];
        snprintf(key, sizeof key, "%s[%zu]", item->string, i);
        int rc = check_secret(e, where, s->valuestring, key);
        if (rc != WH_OK) return rc;
    }
    c->o.secrets = n ? c->secrets : NULL;
    c->o.n_secrets = i;
    return WH_OK;
}

static int name_cmp(const void *a, const void *b)
{
    return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

/* Header names are case-insensitive: "X-A" and "x-a" are the same header. */
static int check_duplicate_headers(wh_engine *e, const char *where,
                                   const cJSON *obj, size_t n)
{
    const char **names = wh__calloc(n, sizeof *names);
    if (!names) return wh__fail(e, WH_E_NOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *h = obj->child; h && i < n; h = h->next) names[i++] = h->string;
    qsort(names, i, sizeof *names, name_cmp);
    int rc = WH_OK;
    for (size_t j = 1; j < i; j++)
        if (strcasecmp(names[j - 1], names[j]) == 0) {
            char q[96];
            rc = wh__fail(e, WH_E_CONFIG, "%s.headers: header %s appears twice",
                          where, quote(q, sizeof q, names[j]));
            break;
        }
    free(names);
    return rc;
}

static int parse_headers(wh_engine *e, const char *where, const cJSON *item,
                         cfg_ep *c)
{
    if (!cJSON_IsObject(item))
        return wh__fail(e, WH_E_CONFIG, "%s.headers: expected an object of "
                        "string values", where);
    int n = cJSON_GetArraySize(item);
    if (n == 0) return WH_OK;
    c->headers = wh__calloc((size_t)n, sizeof *c->headers);
    if (!c->headers) return wh__fail(e, WH_E_NOMEM, "out of memory");
    for (const cJSON *h = item->child; h; h = h->next) {
        char q[96];
        if (!cJSON_IsString(h) || !h->valuestring)
            return wh__fail(e, WH_E_CONFIG, "%s.headers[%s]: expected a string",
                            where, quote(q, sizeof q, h->string));
        const char *why = NULL;
        if (wh__header_pair_valid(h->string, h->valuestring, &why) != WH_OK)
            return wh__fail(e, WH_E_CONFIG, "%s.headers[%s]: %s", where,
                            quote(q, sizeof q, h->string), why);
        size_t nl = strlen(h->string), vl = strlen(h->valuestring);
        char *line = malloc(nl + vl + 3);
        if (!line) return wh__fail(e, WH_E_NOMEM, "out of memory");
        memcpy(line, h->string, nl);
        memcpy(line + nl, ": ", 2);
        memcpy(line + nl + 2, h->valuestring, vl + 1);
        c->headers[c->n_headers++] = line;
    }
    int rc = check_duplicate_headers(e, where, item, c->n_headers);
    if (rc != WH_OK) return rc;
    c->o.headers = (const char *const *)c->headers;
    c->o.n_headers = c->n_headers;
    return WH_OK;
}

static int parse_filter(wh_engine *e, const char *where, const cJSON *item,
                        cfg_ep *c)
{
    static const char *const keys[] = {"channel_name_starts_with",
                                       "channel_name_ends_with"};
    char path[64];
    snprintf(path, sizeof path, "%s.filter", where);
    if (!cJSON_IsObject(item))
        return wh__fail(e, WH_E_CONFIG, "%s: expected an object", path);
    uint32_t seen = 0;
    int rc = WH_OK;
    for (const cJSON *f = item->child; rc == WH_OK && f; f = f->next) {
        switch (key_index(e, path, f, keys, 2, &seen)) {
        case 0: rc = want_string(e, path, f, &c->o.channel_prefix); break;
        case 1: rc = want_string(e, path, f, &c->o.channel_suffix); break;
        default: rc = WH_E_CONFIG; break;
        }
    }
    return rc;
}

/* ---- retry policy, limits, health ------------------------------------------ */

/* A non-negative integer that fits uint32 (0 .. 4294967295). */
static int want_u32_0(wh_engine *e, const char *where, const cJSON *item,
                      uint32_t *out)
{
    double d = item->valuedouble;
    if (!cJSON_IsNumber(item) || !isfinite(d) || d < 0 || d > 4294967295.0 ||
        floor(d) != d)
        return wh__fail(e, WH_E_CONFIG, "%s.%s: expected an integer from 0 to "
                        "4294967295", where, item->string);
    *out = (uint32_t)d;
    return WH_OK;
}

static int want_bool(wh_engine *e, const char *where, const cJSON *item, int *out)
{
    if (!cJSON_IsBool(item))
        return wh__fail(e, WH_E_CONFIG, "%s.%s: expected true or false", where,
                        item->string);
    *out = cJSON_IsTrue(item);
    return WH_OK;
}

/* "retry": "<preset>" or {"preset": "<preset>", ...}: the preset is applied
 * before any other key of the endpoint, so explicit keys override it
 * whatever their order. */
static int apply_retry_preset(wh_engine *e, const char *where, const cJSON *obj,
                              cfg_ep *c)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(obj, "retry");
    const cJSON *name = NULL;
    if (cJSON_IsString(r)) name = r;
    else if (cJSON_IsObject(r)) name = cJSON_GetObjectItemCaseSensitive(r, "preset");
    if (!name) return WH_OK;
    char q[96];
    if (!cJSON_IsString(name) || !name->valuestring)
        return wh__fail(e, WH_E_CONFIG, "%s.retry.preset: expected a string", where);
    if (wh_endpoint_options_retry_preset(&c->o, name->valuestring) != WH_OK)
        return wh__fail(e, WH_E_CONFIG, "%s.retry%s: unknown retry preset %s (default, "
                        "realtime, sendbird, dyte, stream, svix, pusher)", where,
                        name == r ? "" : ".preset",
                        quote(q, sizeof q, name->valuestring));
    return WH_OK;
}

static int parse_schedule(wh_engine *e, const char *path, const cJSON *item, cfg_ep *c)
{
    int n = cJSON_GetArraySize(item);
    if (!cJSON_IsArray(item) || n == 0)
        return wh__fail(e, WH_E_CONFIG, "%s.schedule_ms: expected a non-empty array of "
                        "delays in milliseconds", path);
    c->schedule = wh__calloc((size_t)n, sizeof *c->schedule);
    if (!c->schedule) return wh__fail(e, WH_E_NOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *t = item->child; t; t = t->next, i++) {
        double d = t->valuedouble;
        if (!cJSON_IsNumber(t) || !isfinite(d) || d < 0 || d > 4294967295.0 || floor(d) != d)
            return wh__fail(e, WH_E_CONFIG, "%s.schedule_ms[%zu]: expected an integer "
                            "from 0 to 4294967295", path, i);
        c->schedule[i] = (uint32_t)d;
    }
    c->o.retry_schedule_ms = c->schedule;
    c->o.n_retry_schedule = i;
    return WH_OK;
}

static int parse_statuses(wh_engine *e, const char *path, const cJSON *item, cfg_ep *c)
{
    int n = cJSON_GetArraySize(item);
    if (!cJSON_IsArray(item))
        return wh__fail(e, WH_E_CONFIG, "%s.statuses: expected an array of HTTP statuses",
                        path);
    c->statuses = wh__calloc(n ? (size_t)n : 1, sizeof *c->statuses);
    if (!c->statuses) return wh__fail(e, WH_E_NOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *t = item->child; t; t = t->next, i++) {
        double d = t->valuedouble;
        if (!cJSON_IsNumber(t) || !isfinite(d) || d < 300 || d > 599 || floor(d) != d)
            return wh__fail(e, WH_E_CONFIG, "%s.statuses[%zu]: expected an HTTP status "
                            "from 300 to 599", path, i);
        c->statuses[i] = (int)d;
    }
    c->o.retry_statuses = c->statuses;
    c->o.n_retry_statuses = i;
    return WH_OK;
}

static int parse_jitter(wh_engine *e, const char *path, const cJSON *item, cfg_ep *c)
{
    static const char *const names[] = {"none", "full", "equal", "percent"};
    if (cJSON_IsString(item) && item->valuestring)
        for (int i = 0; i < 4; i++)
            if (strcmp(item->valuestring, names[i]) == 0) {
                c->o.retry_jitter = (wh_jitter)i;
                return WH_OK;
            }
    return wh__fail(e, WH_E_CONFIG, "%s.jitter: expected \"none\", \"full\", \"equal\" "
                    "or \"percent\"", path);
}

static int parse_retry(wh_engine *e, const char *where, const cJSON *item,
                       cfg_ep *c)
{
    static const char *const keys[] = {
        "preset", "initial_ms", "max_ms", "multiplier", "jitter", "jitter_percent",
        "schedule_ms", "max_attempts_status", "max_attempts_network",
        "max_attempts_timeout", "budget_ms", "retry_3xx", "retry_4xx", "statuses",
        "retry_after"};
    char path[64];
    snprintf(path, sizeof path, "%s.retry", where);
    if (cJSON_IsString(item)) return WH_OK; /* a preset: apply_retry_preset */
    if (!cJSON_IsObject(item))
        return wh__fail(e, WH_E_CONFIG, "%s: expected a preset name or an object", path);
    uint32_t seen = 0;
    int rc = WH_OK;
    for (const cJSON *r = item->child; rc == WH_OK && r; r = r->next) {
        switch (key_index(e, path, r, keys, sizeof keys / sizeof keys[0], &seen)) {
        case 0: break; /* applied first by apply_retry_preset */
        case 1: rc = want_u32_0(e, path, r, &c->o.retry_initial_ms); break;
        case 2: rc = want_u32_0(e, path, r, &c->o.retry_max_ms); break;
        case 3: rc = want_u32(e, path, r, &c->o.retry_multiplier); break;
        case 4: rc = parse_jitter(e, path, r, c); break;
        case 5:
            rc = want_u32_0(e, path, r, &c->o.retry_jitter_percent);
            if (rc == WH_OK && c->o.retry_jitter_percent > 100)
                rc = wh__fail(e, WH_E_CONFIG, "%s.jitter_percent: at most 100", path);
            break;
        case 6: rc = parse_schedule(e, path, r, c); break;
        case 7: rc = want_u32_0(e, path, r, &c->o.max_attempts_status); break;
        case 8: rc = want_u32_0(e, path, r, &c->o.max_attempts_network); break;
        case 9: rc = want_u32_0(e, path, r, &c->o.max_attempts_timeout); break;
        case 10: rc = want_u32_0(e, path, r, &c->o.retry_budget_ms); break;
        case 11: rc = want_bool(e, path, r, &c->o.retry_3xx); break;
        case 12: rc = want_bool(e, path, r, &c->o.retry_4xx); break;
        case 13: rc = parse_statuses(e, path, r, c); break;
        case 14: rc = want_bool(e, path, r, &c->o.honor_retry_after); break;
        default: rc = WH_E_CONFIG; break;
        }
    }
    return rc;
}

/* An object of plain fields of wh_endpoint_options: "<where>.<name>": {...}.
 * Unknown and repeated keys, and values of the wrong kind, are errors naming
 * the key. */
typedef enum cfg_kind { F_U32, F_U32_0, F_BOOL, F_STR } cfg_kind;
typedef struct cfg_field {
    const char *key;
    cfg_kind kind;
    size_t offset;            /* in wh_endpoint_options */
} cfg_field;
#define FIELD(k, kind, member) {k, kind, offsetof(wh_endpoint_options, member)}

static int parse_fields(wh_engine *e, const char *where, const char *name,
                        const cJSON *item, const cfg_field *fields, size_t n,
                        cfg_ep *c)
{
    const char *keys[8];
    char path[64];
    snprintf(path, sizeof path, "%s.%s", where, name);
    if (!cJSON_IsObject(item))
        return wh__fail(e, WH_E_CONFIG, "%s: expected an object", path);
    for (size_t i = 0; i < n && i < 8; i++) keys[i] = fields[i].key;
    uint32_t seen = 0;
    int rc = WH_OK;
    for (const cJSON *f = item->child; rc == WH_OK && f; f = f->next) {
        int k = key_index(e, path, f, keys, n, &seen);
        if (k < 0) return WH_E_CONFIG;
        char *dst = (char *)&c->o + fields[k].offset;
        switch (fields[k].kind) {
        case F_U32: rc = want_u32(e, path, f, (uint32_t *)(void *)dst); break;
        case F_U32_0: rc = want_u32_0(e, path, f, (uint32_t *)(void *)dst); break;
        case F_BOOL: rc = want_bool(e, path, f, (int *)(void *)dst); break;
        case F_STR: rc = want_string(e, path, f, (const char **)(void *)dst); break;
        }
    }
    return rc;
}

/* "limits": {"rate": N, "period_ms": N, "burst": N, "ordered": bool} */
static int parse_limits(wh_engine *e, const char *where, const cJSON *item, cfg_ep *c)
{
    static const cfg_field f[] = {
        FIELD("rate", F_U32_0, rate_limit), FIELD("period_ms", F_U32, rate_period_ms),
        FIELD("burst", F_U32_0, rate_burst), FIELD("ordered", F_BOOL, ordered)};
    return parse_fields(e, where, "limits", item, f, 4, c);
}

/* "health": {"disable_on_410": bool, "breaker_failures": N,
 *            "breaker_cooldown_ms": N, "disable_after_ms": N} */
static int parse_health(wh_engine *e, const char *where, const cJSON *item, cfg_ep *c)
{
    static const cfg_field f[] = {
        FIELD("disable_on_410", F_BOOL, disable_on_410),
        FIELD("breaker_failures", F_U32_0, breaker_failures),
        FIELD("breaker_cooldown_ms", F_U32, breaker_cooldown_ms),
        FIELD("disable_after_ms", F_U32_0, disable_after_ms)};
    return parse_fields(e, where, "health", item, f, 4, c);
}

/* A string from a fixed list; its index, or -1 after reporting. */
static int want_choice(wh_engine *e, const char *where, const cJSON *item,
                       const char *const *names, const int *values, size_t n,
                       int *out)
{
    const char *s = NULL;
    if (want_string(e, where, item, &s) != WH_OK) return WH_E_CONFIG;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = values[i];
            return WH_OK;
        }
    char q[96], list[256];
    size_t o = 0;
    for (size_t i = 0; i < n && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s\"%s\"", i ? ", " : "",
                              names[i]);
    return wh__fail(e, WH_E_CONFIG, "%s.%s: unknown value %s (expected one of %s)",
                    where, item->string, quote(q, sizeof q, s), list);
}

static int parse_mode(wh_engine *e, const char *where, const cJSON *item, cfg_ep *c)
{
    static const char *const names[] = {"single", "batch"};
    static const int values[] = {WH_MODE_SINGLE, WH_MODE_BATCH};
    int v;
    int rc = want_choice(e, where, item, names, values, 2, &v);
    if (rc == WH_OK) c->o.mode = (wh_mode)v;
    return rc;
}

static int parse_body(wh_engine *e, const char *where, const cJSON *item, cfg_ep *c)
{
    static const char *const names[] = {"raw", "standard", "pusher", "array"};
    static const int values[] = {WH_BODY_RAW, WH_BODY_STANDARD, WH_BODY_PUSHER,
                                 WH_BODY_RAW};
    int v;
    int rc = want_choice(e, where, item, names, values, 4, &v);
    if (rc == WH_OK) c->o.body = (wh_body)v;
    return rc;
}

static int parse_signing(wh_engine *e, const char *where, const cJSON *item,
                         cfg_ep *c)
{
    static const char *const names[] = {"none", "standard", "pusher",
                                        "hmac-sha256-hex", "rsa-sha256"};
    static const int values[] = {WH_SIGN_NONE, WH_SIGN_STANDARD, WH_SIGN_HMAC_HEX,
                                 WH_SIGN_HMAC_HEX, WH_SIGN_RSA_SHA256};
    int v;
    int rc = want_choice(e, where, item, names, values, 5, &v);
    if (rc == WH_OK) c->o.signing = (wh_sign_scheme)v;
    return rc;
}

static int parse_batch(wh_engine *e, const char *where, const cJSON *item,
                       cfg_ep *c)
{
    static const cfg_field f[] = {
        FIELD("max_events", F_U32, batch_max_events),
        FIELD("max_bytes", F_U32, batch_max_bytes),
        FIELD("linger_ms", F_U32_0, batch_linger_ms)}; /* 0: send when polled */
    int rc = parse_fields(e, where, "batch", item, f, 3, c);
    if (rc == WH_OK) c->o.mode = WH_MODE_BATCH; /* "batch": {...} implies batch mode */
    return rc;
}

static int parse_header_names(wh_engine *e, const char *where, const cJSON *item,
                              cfg_ep *c)
{
    static const cfg_field f[] = {
        FIELD("id", F_STR, id_header), FIELD("timestamp", F_STR, timestamp_header),
        FIELD("attempt", F_STR, attempt_header),
        FIELD("signature", F_STR, signature_header),
        FIELD("api_key", F_STR, api_key_header)};
    return parse_fields(e, where, "header_names", item, f, 5, c);
}

/* private_key_file: read the PEM into memory owned by the cfg_ep. */
static int parse_private_key_file(wh_engine *e, const char *where,
                                  const cJSON *item, cfg_ep *c)
{
    const char *path = NULL;
    if (want_string(e, where, item, &path) != WH_OK) return WH_E_CONFIG;
    char q[96];
    FILE *f = fopen(path, "rb");
    if (!f)
        return wh__fail(e, WH_E_CONFIG, "%s.private_key_file: cannot open %s: %s",
                        where, quote(q, sizeof q, path), strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = buf ? WH_OK : wh__fail(e, WH_E_NOMEM, "out of memory");
    while (rc == WH_OK) {
        if (n + 1 >= cap) {
            if (cap >= ((size_t)1 << 20)) {
                rc = wh__fail(e, WH_E_CONFIG, "%s.private_key_file: %s is larger "
                              "than 1 MiB", where, quote(q, sizeof q, path));
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) { rc = wh__fail(e, WH_E_NOMEM, "out of memory"); break; }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    if (rc == WH_OK && ferror(f))
        rc = wh__fail(e, WH_E_CONFIG, "%s.private_key_file: cannot read %s", where,
                      quote(q, sizeof q, path));
    fclose(f);
    if (rc != WH_OK) {
        if (buf) { wipe(buf, cap); free(buf); }
        return rc;
    }
    buf[n] = '\0';
    c->key_pem = buf;
    c->key_pem_cap = cap;
    c->o.private_key_pem = buf;
    return WH_OK;
}

enum {
    K_ID, K_URL, K_EVENT_TYPES, K_SECRET, K_HEADERS, K_FILTER, K_TIMEOUT,
    K_CONNECT_TIMEOUT, K_MAX_ATTEMPTS, K_MAX_IN_FLIGHT, K_RETRY, K_LIMITS,
    K_HEALTH, K_SECRETS, K_MODE, K_BATCH, K_BODY, K_PRESET, K_HEADER_NAMES,
    K_API_KEY, K_SIGNING, K_PRIVATE_KEY, K_PRIVATE_KEY_FILE, K_COUNT_
};
static const char *const endpoint_keys[K_COUNT_] = {
    "id", "url", "event_types", "secret", "headers", "filter", "timeout_ms",
    "connect_timeout_ms", "max_attempts", "max_in_flight", "retry", "limits",
    "health", "secrets", "mode", "batch", "body", "preset", "header_names",
    "api_key", "signing", "private_key", "private_key_file"};

static int parse_endpoint(wh_engine *e, const cJSON *obj, cfg_ep *c)
{
    const char *where = c->where;
    if (!cJSON_IsObject(obj))
        return wh__fail(e, WH_E_CONFIG, "%s: expected an object", where);
    uint32_t seen = 0;
    int rc = apply_retry_preset(e, where, obj, c);
    if (rc != WH_OK) return rc;
    for (const cJSON *it = obj->child; it; it = it->next) {
        switch (key_index(e, where, it, endpoint_keys, K_COUNT_, &seen)) {
        case K_ID: rc = want_string(e, where, it, &c->o.id); break;
        case K_URL: rc = want_string(e, where, it, &c->o.url); break;
        case K_EVENT_TYPES: rc = parse_event_types(e, where, it, c); break;
        case K_SECRET: rc = parse_secret(e, where, it, c); break;
        case K_HEADERS: rc = parse_headers(e, where, it, c); break;
        case K_FILTER: rc = parse_filter(e, where, it, c); break;
        case K_TIMEOUT: rc = want_u32(e, where, it, &c->o.timeout_ms); break;
        case K_CONNECT_TIMEOUT:
            rc = want_u32(e, where, it, &c->o.connect_timeout_ms);
            break;
        case K_MAX_ATTEMPTS: rc = want_u32(e, where, it, &c->o.max_attempts); break;
        case K_MAX_IN_FLIGHT:
            rc = want_u32(e, where, it, &c->o.max_in_flight);
            break;
        case K_RETRY: rc = parse_retry(e, where, it, c); break;
        case K_SECRETS:
            if (seen & (UINT32_C(1) << K_SECRET)) {
                rc = wh__fail(e, WH_E_CONFIG, "%s: give \"secret\" or "
                              "\"secrets\", not both", where);
                break;
            }
            rc = parse_secret(e, where, it, c);
            break;
        case K_MODE: rc = parse_mode(e, where, it, c); break;
        case K_BATCH: rc = parse_batch(e, where, it, c); break;
        case K_BODY: rc = parse_body(e, where, it, c); break;
        case K_PRESET: rc = want_string(e, where, it, &c->o.preset); break;
        case K_HEADER_NAMES: rc = parse_header_names(e, where, it, c); break;
        case K_API_KEY: rc = want_string(e, where, it, &c->o.api_key); break;
        case K_SIGNING: rc = parse_signing(e, where, it, c); break;
        case K_PRIVATE_KEY:
            if (seen & (UINT32_C(1) << K_PRIVATE_KEY_FILE)) {
                rc = wh__fail(e, WH_E_CONFIG, "%s: give \"private_key\" or "
                              "\"private_key_file\", not both", where);
                break;
            }
            rc = want_string(e, where, it, &c->o.private_key_pem);
            break;
        case K_PRIVATE_KEY_FILE:
            if (seen & (UINT32_C(1) << K_PRIVATE_KEY)) {
                rc = wh__fail(e, WH_E_CONFIG, "%s: give \"private_key\" or "
                              "\"private_key_file\", not both", where);
                break;
            }
            rc = parse_private_key_file(e, where, it, c);
            break;
        case K_LIMITS: rc = parse_limits(e, where, it, c); break;
        case K_HEALTH: rc = parse_health(e, where, it, c); break;
        default: rc = WH_E_CONFIG; break;
        }
        if (rc != WH_OK) return rc;
    }
    if (!c->o.url)
        return wh__fail(e, WH_E_CONFIG, "%s: missing required key \"url\"",
                        where);
    if (c->o.retry_max_ms < c->o.retry_initial_ms)
        return wh__fail(e, WH_E_CONFIG, "%s.retry: max_ms (%lu) is smaller "
                        "than initial_ms (%lu)", where,
                        (unsigned long)c->o.retry_max_ms,
                        (unsigned long)c->o.retry_initial_ms);
    rc = wh__endpoint_check(e, &c->o, where);
    /* An id already used by the engine stays WH_E_EXISTS and a failed
     * allocation WH_E_NOMEM; any other rejected value is a configuration
     * error, with wh__endpoint_check's message naming the key. */
    if (rc != WH_OK && rc != WH_E_EXISTS && rc != WH_E_NOMEM) {
        char msg[512];
        last_detail(e, rc, msg, sizeof msg);
        rc = wh__fail(e, WH_E_CONFIG, "%s", msg);
    }
    return rc;
}

/* ---- the document ---------------------------------------------------------- */

typedef struct id_ref {
    const char *id;
    size_t index;
} id_ref;

static int id_ref_cmp(const void *a, const void *b)
{
    const id_ref *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c) return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Two endpoints of the document with the same id: report the pair a
 * front-to-back reading finds first (the smallest second index). */
static int check_duplicate_ids(cfg *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->eps[i].o.id) n++;
    if (n < 2) return WH_OK;
    id_ref *refs = wh__calloc(n, sizeof *refs);
    if (!refs) return wh__fail(c->e, WH_E_NOMEM, "out of memory");
    n = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->eps[i].o.id) refs[n++] = (id_ref){c->eps[i].o.id, i};
    qsort(refs, n, sizeof *refs, id_ref_cmp);
    size_t best = SIZE_MAX;
    for (size_t i = 1; i < n; i++)
        if (strcmp(refs[i - 1].id, refs[i].id) == 0 &&
            (i == 1 || strcmp(refs[i - 2].id, refs[i].id) != 0) &&
            (best == SIZE_MAX || refs[i].index < refs[best].index))
            best = i;
    int rc = WH_OK;
    if (best != SIZE_MAX) {
        char q[96];
        rc = wh__fail(c->e, WH_E_CONFIG,
                      "endpoints[%zu].id: %s is also the id of endpoints[%zu]",
                      refs[best].index, quote(q, sizeof q, refs[best].id),
                      refs[best - 1].index);
    }
    free(refs);
    return rc;
}

static void cfg_free(cfg *c)
{
    for (size_t i = 0; i < c->n; i++) {
        cfg_ep *p = &c->eps[i];
        for (size_t j = 0; j < p->o.n_secrets; j++)
            if (p->secrets && p->secrets[j])
                wipe((char *)p->secrets[j], strlen(p->secrets[j]));
        for (size_t j = 0; j < p->n_headers; j++) free(p->headers[j]);
        free(p->headers);
        if (p->key_pem) {
            wipe(p->key_pem, p->key_pem_cap);
            free(p->key_pem);
        }
        free(p->secrets);
        free(p->types);
        free(p->schedule);
        free(p->statuses);
    }
    free(c->eps);
}

/* Line and column (from 1) of byte `off` of s, for error messages. */
static void line_col(const char *s, size_t off, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n') {
            ++*line;
            *col = 1;
        } else {
            ++*col;
        }
    }
}

/* cJSON decodes "\u0000" into a NUL that silently cuts the string short
 * ("http://a\u0000b" would become "http://a").  Find one inside a string. */
static int find_escaped_nul(const char *s, size_t len, size_t *at)
{
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        if (!in_string) {
            if (s[i] == '"') in_string = 1;
        } else if (s[i] == '"') {
            in_string = 0;
        } else if (s[i] == '\\' && i + 1 < len) {
            if (s[i + 1] == 'u' && i + 5 < len && memcmp(s + i + 2, "0000", 4) == 0) {
                *at = i;
                return 1;
            }
            i++;
        }
    }
    return 0;
}

/* Remove endpoints [0, n) of handles (rollback after a failed add). */
static void rollback(wh_engine *e, const int *handles, size_t n)
{
    while (n--) wh_endpoint_remove(e, handles[n]);
}

static int config_queue_check(wh_engine *e, const cJSON *item);

int wh_config_load(wh_engine *e, const char *json, size_t len)
{
    if (!e) return WH_E_INVAL;
    if (!json) return wh__fail(e, WH_E_INVAL, "wh_config_load: json is NULL");

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t off = end && end >= json ? (size_t)(end - json) : 0;
        if (off > len) off = len;
        size_t line, col;
        line_col(json, off, &line, &col);
        return wh__fail(e, WH_E_JSON, "config: malformed JSON near byte %zu "
                        "(line %zu, column %zu)", off, line, col);
    }
    size_t off = (size_t)(end - json);
    while (off < len && (json[off] == ' ' || json[off] == '\t' ||
                         json[off] == '\n' || json[off] == '\r'))
        off++;
    if (off < len) {
        size_t line, col;
        line_col(json, off, &line, &col);
        cJSON_Delete(root);
        return wh__fail(e, WH_E_JSON, "config: unexpected text after the JSON "
                        "document at byte %zu (line %zu, column %zu)", off, line,
                        col);
    }

    cfg c = {e, NULL, 0};
    int rc = WH_OK;
    int *handles = NULL;
    const char *app_secret = NULL; /* the root "secret", wiped at the end */
    const cJSON *eps = NULL;
    size_t nul_at;
    if (find_escaped_nul(json, len, &nul_at)) {
        rc = wh__fail(e, WH_E_CONFIG, "config: a string contains \\u0000 "
                      "(byte %zu); NUL characters are not allowed", nul_at);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        rc = wh__fail(e, WH_E_CONFIG, "config: expected an object with the key "
                      "\"endpoints\"");
        goto done;
    }
    /* "endpoints": this library's endpoint objects.  "webhooks": entries of
     * a Soketi app's webhooks array, verbatim (url, event_types, filter,
     * headers, plus any endpoint key), sent as Pusher webhooks: Pusher body,
     * X-Pusher-Key / X-Pusher-Signature from the app's "key" and "secret";
     * "batching" {"enabled", "duration_ms"} mirrors Soketi's
     * WEBHOOKS_BATCHING / WEBHOOKS_BATCHING_DURATION (default 50 ms). */
    enum { R_ENDPOINTS, R_WEBHOOKS, R_BATCHING, R_KEY, R_SECRET, R_QUEUE, R_COUNT_ };
    static const char *const root_keys[R_COUNT_] = {"endpoints", "webhooks",
                                                    "batching", "key", "secret",
                                                    "queue"};
    const cJSON *hooks = NULL;
    const char *app_key = NULL;
    int batching = 0;
    uint32_t batching_ms = 50;
    uint32_t seen = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        rc = WH_OK;
        switch (key_index(e, "config", it, root_keys, R_COUNT_, &seen)) {
        case R_ENDPOINTS: eps = it; break;
        case R_WEBHOOKS: hooks = it; break;
        case R_QUEUE: /* used by wh_config_queue_new(); checked here too */
            rc = config_queue_check(e, it);
            break;
        case R_KEY: rc = want_string(e, "config", it, &app_key); break;
        case R_SECRET:
            rc = want_string(e, "config", it, &app_secret);
            if (rc == WH_OK) rc = check_secret(e, "config", app_secret, "secret");
            break;
        case R_BATCHING: {
            static const char *const bkeys[] = {"enabled", "duration_ms"};
            uint32_t bseen = 0;
            if (!cJSON_IsObject(it)) {
                rc = wh__fail(e, WH_E_CONFIG, "config.batching: expected an object");
                break;
            }
            for (const cJSON *b = it->child; rc == WH_OK && b; b = b->next) {
                switch (key_index(e, "config.batching", b, bkeys, 2, &bseen)) {
                case 0:
                    if (!cJSON_IsBool(b))
                        rc = wh__fail(e, WH_E_CONFIG, "config.batching.enabled: "
                                      "expected true or false");
                    else
                        batching = cJSON_IsTrue(b);
                    break;
                case 1: rc = want_u32(e, "config.batching", b, &batching_ms); break;
                default: rc = WH_E_CONFIG; break;
                }
            }
            break;
        }
        default: rc = WH_E_CONFIG; break;
        }
        if (rc != WH_OK) goto done;
    }
    if (!eps && !hooks) {
        rc = wh__fail(e, WH_E_CONFIG, "config: missing required key "
                      "\"endpoints\" (or \"webhooks\")");
        goto done;
    }
    if ((eps && !cJSON_IsArray(eps)) || (hooks && !cJSON_IsArray(hooks))) {
        rc = wh__fail(e, WH_E_CONFIG, "%s: expected an array of endpoint objects",
                      eps && !cJSON_IsArray(eps) ? "endpoints" : "webhooks");
        goto done;
    }

    size_t n = (size_t)(eps ? cJSON_GetArraySize(eps) : 0) +
               (size_t)(hooks ? cJSON_GetArraySize(hooks) : 0);
    c.eps = wh__calloc(n ? n : 1, sizeof *c.eps);
    handles = wh__calloc(n ? n : 1, sizeof *handles);
    if (!c.eps || !handles) {
        rc = wh__fail(e, WH_E_NOMEM, "out of memory");
        goto done;
    }
    /* Pass 1: build and check every endpoint. */
    const char *secret_list[1] = {app_secret};
    for (int list = 0; list < 2; list++) {
        const cJSON *arr = list == 0 ? eps : hooks;
        size_t i = 0;
        for (const cJSON *it = arr ? arr->child : NULL; it; it = it->next, i++) {
            cfg_ep *p = &c.eps[c.n++];
            wh_endpoint_options_init(&p->o);
            snprintf(p->where, sizeof p->where, "%s[%zu]",
                     list == 0 ? "endpoints" : "webhooks", i);
            if (list == 1) { /* Soketi defaults; the entry's keys override */
                p->o.preset = "pusher";
                p->o.body = WH_BODY_PUSHER;
                p->o.api_key = app_key;
                if (app_secret) {
                    p->o.secrets = secret_list;
                    p->o.n_secrets = 1;
                }
                if (batching) {
                    p->o.mode = WH_MODE_BATCH;
                    p->o.batch_linger_ms = batching_ms;
                }
            }
            if ((rc = parse_endpoint(e, it, p)) != WH_OK) goto done;
        }
    }
    if ((rc = check_duplicate_ids(&c)) != WH_OK) goto done;

    /* Pass 2: add them; undo this call's additions if one fails. */
    for (size_t i = 0; i < c.n; i++) {
        int h = wh_endpoint_add(e, &c.eps[i].o);
        if (h < 0) {
            char msg[512];
            last_detail(e, h, msg, sizeof msg);
            rollback(e, handles, i);
            rc = wh__fail(e, h, "%s: %s", c.eps[i].where, msg);
            goto done;
        }
        handles[i] = h;
    }
    rc = WH_OK;
done:
    if (app_secret) wipe((char *)app_secret, strlen(app_secret));
    free(handles);
    cfg_free(&c);
    cJSON_Delete(root);
    return rc;
}

int wh_config_load_file(wh_engine *e, const char *path)
{
    if (!e) return WH_E_INVAL;
    if (!path) return wh__fail(e, WH_E_INVAL, "wh_config_load_file: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f)
        return wh__fail(e, WH_E_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = WH_OK;
    for (;;) {
        if (len == cap) {
            if (cap > CFG_MAX_FILE_BYTES) {
                rc = wh__fail(e, WH_E_TOO_LARGE, "%s: larger than %zu bytes",
                              path, CFG_MAX_FILE_BYTES);
                break;
            }
            size_t ncap = cap ? cap * 2 : 16384;
            if (ncap > CFG_MAX_FILE_BYTES + 1) ncap = CFG_MAX_FILE_BYTES + 1;
            char *nb = malloc(ncap);
            if (!nb) {
                rc = wh__fail(e, WH_E_NOMEM, "%s: out of memory", path);
                break;
            }
            if (buf) {
                memcpy(nb, buf, len);
                wipe(buf, len);
                free(buf);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                rc = wh__fail(e, WH_E_IO, "%s: cannot read: %s", path,
                              strerror(errno));
            break;
        }
    }
    fclose(f);
    if (rc == WH_OK) {
        rc = wh_config_load(e, buf ? buf : "", len);
        if (rc != WH_OK) {
            char msg[512];
            last_detail(e, rc, msg, sizeof msg);
            rc = wh__fail(e, rc, "%s: %s", path, msg);
        }
    }
    if (buf) {
        wipe(buf, len); /* the file may hold secrets */
        free(buf);
    }
    return rc;
}

/* ---- "queue": the queue backend (wh_config_queue_new) ----------------------- */

typedef struct qcfg {
    int type;                    /* 0 memory, 1 sqlite, 2 redis */
    wh_sqlite_options sqlite;
    wh_redis_options redis;
    const char *path;
    char host[256];
    uint64_t mem_events, mem_bytes;
} qcfg;

static int qfail(char *err, size_t size, int status, const char *fmt, ...)
    WH_PRINTF(4, 5);
static int qfail(char *err, size_t size, int status, const char *fmt, ...)
{
    if (err && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, size, fmt, ap);
        va_end(ap);
    }
    return status;
}

static int q_u64(const cJSON *it, uint64_t max, uint64_t *out, char *err, size_t size)
{
    double d = it->valuedouble;
    if (!cJSON_IsNumber(it) || !isfinite(d) || d < 1 || d > (double)max || floor(d) != d)
        return qfail(err, size, WH_E_CONFIG, "queue.%s: expected a positive integer "
                     "(1 to %llu)", it->string, (unsigned long long)max);
    *out = (uint64_t)d;
    return WH_OK;
}

static int q_str(const cJSON *it, const char **out, char *err, size_t size)
{
    if (!cJSON_IsString(it) || !it->valuestring || !*it->valuestring)
        return qfail(err, size, WH_E_CONFIG, "queue.%s: expected a non-empty string",
                     it->string);
    *out = it->valuestring;
    return WH_OK;
}

/* "redis://HOST[:PORT][/]" */
static int q_redis_url(const char *url, qcfg *c, char *err, size_t size)
{
    static const char scheme[] = "redis://";
    if (strncmp(url, scheme, sizeof scheme - 1) != 0)
        return qfail(err, size, WH_E_CONFIG, "queue.url: expected redis://HOST:PORT");
    const char *h = url + sizeof scheme - 1;
    const char *colon = strrchr(h, ':');
    const char *end = h + strlen(h);
    if (end > h && end[-1] == '/') end--;
    const char *hend = colon && colon < end ? colon : end;
    if (hend == h || (size_t)(hend - h) >= sizeof c->host || memchr(h, '/', (size_t)(hend - h)) ||
        memchr(h, '@', (size_t)(hend - h)))
        return qfail(err, size, WH_E_CONFIG, "queue.url: expected redis://HOST:PORT");
    memcpy(c->host, h, (size_t)(hend - h));
    c->host[hend - h] = '\0';
    c->redis.host = c->host;
    if (colon && colon < end) {
        long port = 0;
        const char *p = colon + 1;
        if (p == end) return qfail(err, size, WH_E_CONFIG, "queue.url: missing port");
        for (; p < end; p++) {
            if (*p < '0' || *p > '9' || port > 65535)
                return qfail(err, size, WH_E_CONFIG, "queue.url: bad port");
            port = port * 10 + (*p - '0');
        }
        if (port < 1 || port > 65535)
            return qfail(err, size, WH_E_CONFIG, "queue.url: bad port");
        c->redis.port = (int)port;
    }
    return WH_OK;
}

/* Parse and check the "queue" object into c (strings point into the
 * tree). */
static int q_parse(const cJSON *q, qcfg *c, char *err, size_t size)
{
    memset(c, 0, sizeof *c);
    wh_sqlite_options_init(&c->sqlite);
    wh_redis_options_init(&c->redis);
    if (!cJSON_IsObject(q))
        return qfail(err, size, WH_E_CONFIG, "queue: expected an object with a \"type\"");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(q, "type");
    if (!type || !cJSON_IsString(type) || !type->valuestring)
        return qfail(err, size, WH_E_CONFIG, "queue.type: expected \"memory\", \"sqlite\" "
                     "or \"redis\"");
    if (strcmp(type->valuestring, "memory") == 0) c->type = 0;
    else if (strcmp(type->valuestring, "sqlite") == 0) c->type = 1;
    else if (strcmp(type->valuestring, "redis") == 0) c->type = 2;
    else
        return qfail(err, size, WH_E_CONFIG, "queue.type: expected \"memory\", \"sqlite\" "
                     "or \"redis\"");
    static const char *const keys[3][12] = {
        {"type", "max_events", "max_bytes"},
        {"type", "path", "max_jobs", "max_bytes", "lease_ms", "poll_interval_ms",
         "synchronous", "producer_only", "busy_timeout_ms"},
        {"type", "url", "prefix", "consumer", "lease_ms", "poll_interval_ms", "timeout_ms",
         "max_buffered", "max_jobs", "producer_only", "reconnect_ms", "spool"},
    };
    uint32_t seen = 0;
    int rc = WH_OK;
    for (const cJSON *it = q->child; it && rc == WH_OK; it = it->next) {
        int k = -1;
        for (int i = 0; i < 12 && keys[c->type][i]; i++)
            if (strcmp(it->string, keys[c->type][i]) == 0) k = i;
        if (k < 0)
            return qfail(err, size, WH_E_CONFIG, "queue: unknown key \"%.60s\" for type "
                         "\"%s\"", it->string, type->valuestring);
        if (seen & (UINT32_C(1) << k))
            return qfail(err, size, WH_E_CONFIG, "queue: duplicate key \"%s\"", it->string);
        seen |= UINT32_C(1) << k;
        const char *key = it->string;
        uint64_t v = 0;
        if (strcmp(key, "type") == 0) continue;
        if (strcmp(key, "producer_only") == 0) {
            if (!cJSON_IsBool(it))
                return qfail(err, size, WH_E_CONFIG, "queue.producer_only: expected true "
                             "or false");
            c->sqlite.producer_only = c->redis.producer_only = cJSON_IsTrue(it);
        } else if (strcmp(key, "synchronous") == 0) {
            if (!cJSON_IsString(it) || (strcmp(it->valuestring, "normal") != 0 &&
                                        strcmp(it->valuestring, "full") != 0))
                return qfail(err, size, WH_E_CONFIG, "queue.synchronous: expected "
                             "\"normal\" or \"full\"");
            c->sqlite.synchronous_full = strcmp(it->valuestring, "full") == 0;
        } else if (strcmp(key, "path") == 0) {
            rc = q_str(it, &c->path, err, size);
        } else if (strcmp(key, "url") == 0) {
            const char *url = NULL;
            rc = q_str(it, &url, err, size);
            if (rc == WH_OK) rc = q_redis_url(url, c, err, size);
        } else if (strcmp(key, "prefix") == 0) {
            rc = q_str(it, &c->redis.prefix, err, size);
        } else if (strcmp(key, "consumer") == 0) {
            rc = q_str(it, &c->redis.consumer, err, size);
        } else if (strcmp(key, "spool") == 0) {
            rc = q_str(it, &c->redis.spool_path, err, size);
        } else if (strcmp(key, "max_events") == 0) {
            rc = q_u64(it, SIZE_MAX > UINT32_MAX ? UINT64_C(1) << 52 : UINT32_MAX,
                       &c->mem_events, err, size);
        } else if (strcmp(key, "max_bytes") == 0) {
            rc = q_u64(it, UINT64_C(1) << 52, &v, err, size);
            c->mem_bytes = c->sqlite.max_bytes = v;
        } else if (strcmp(key, "max_jobs") == 0) {
            rc = q_u64(it, UINT64_C(1) << 52, &v, err, size);
            c->sqlite.max_jobs = c->redis.max_jobs = v;
        } else if (strcmp(key, "max_buffered") == 0) {
            rc = q_u64(it, UINT64_C(1) << 52, &c->redis.max_buffered, err, size);
        } else { /* the uint32 millisecond keys */
            rc = q_u64(it, UINT32_MAX, &v, err, size);
            uint32_t ms = (uint32_t)v;
            if (strcmp(key, "lease_ms") == 0) c->sqlite.lease_ms = c->redis.lease_ms = ms;
            else if (strcmp(key, "poll_interval_ms") == 0)
                c->sqlite.poll_interval_ms = c->redis.poll_interval_ms = ms;
            else if (strcmp(key, "busy_timeout_ms") == 0) c->sqlite.busy_timeout_ms = ms;
            else if (strcmp(key, "timeout_ms") == 0) c->redis.timeout_ms = ms;
            else if (strcmp(key, "reconnect_ms") == 0) c->redis.reconnect_ms = ms;
        }
    }
    if (rc != WH_OK) return rc;
    if (c->type == 1 && !c->path)
        return qfail(err, size, WH_E_CONFIG, "queue.path: required for type \"sqlite\"");
    return WH_OK;
}

static int config_queue_check(wh_engine *e, const cJSON *item)
{
    qcfg c;
    char msg[256];
    int rc = q_parse(item, &c, msg, sizeof msg);
    if (rc != WH_OK) return wh__fail(e, rc, "%s", msg);
    return WH_OK;
}

int wh_config_queue_new(const char *json, size_t len, wh_log_fn on_log, void *log_user,
                        wh_queue **out, char *err, size_t err_size)
{
    if (err && err_size) err[0] = '\0';
    if (!out) return qfail(err, err_size, WH_E_INVAL, "wh_config_queue_new: out is NULL");
    *out = NULL;
    if (!json) return qfail(err, err_size, WH_E_INVAL, "wh_config_queue_new: json is NULL");
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return qfail(err, err_size, WH_E_JSON, "config: malformed JSON");
    const cJSON *q = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "queue")
                                          : NULL;
    int rc = WH_OK;
    qcfg c;
    if (q && (rc = q_parse(q, &c, err, err_size)) == WH_OK) {
        if (c.type == 0) {
            rc = wh__queue_memory_new(c.mem_events ? (size_t)c.mem_events : 1000000,
                                      c.mem_bytes ? (size_t)c.mem_bytes : ((size_t)1 << 30),
                                      out);
        } else if (c.type == 1) {
            c.sqlite.on_log = on_log;
            c.sqlite.log_user = log_user;
            rc = wh_queue_sqlite_new(c.path, &c.sqlite, out);
            if (rc != WH_OK)
                qfail(err, err_size, rc, "queue.path: cannot open %.200s: %s", c.path,
                      wh_strerror(rc));
        } else {
            c.redis.on_log = on_log;
            c.redis.log_user = log_user;
            rc = wh_queue_redis_new(&c.redis, out);
            if (rc != WH_OK) qfail(err, err_size, rc, "queue: %s", wh_strerror(rc));
        }
    }
    cJSON_Delete(root);
    return rc;
}
