/* One endpoint object of a configuration document -> wh_endpoint_options.
 *
 * The key tables below are the whole format: every key, its type, bounds,
 * where it goes, and the line that documents it (tests/test_config.c checks
 * that README.md has each one).  Values that need the engine (the URL's
 * syntax, the id in use, signing consistency) are checked by the caller
 * with wh__endpoint_check. */
#include "config.h"
#include "filter.h"
#include "sign_ed25519.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EP(member) offsetof(wh__cfg_ep, o.member)
#define U32_ALL UINT32_MAX

/* event_types [] : a non-NULL pointer with a count of 0 (subscribes to
 * nothing). */
static const char *const no_types[1] = {NULL};

static wh__cfg_ep *ep_of(void *target) { return target; }

/* ---- values that are not plain fields ------------------------------------ */

static int parse_event_types(const cJSON *item, const char *path, void *target,
                             wh__cfg_err *err)
{
    wh__cfg_ep *c = ep_of(target);
    if (!cJSON_IsArray(item))
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected an array of strings", path);
    int n = cJSON_GetArraySize(item);
    if (n == 0) {
        c->o.event_types = no_types;
        c->o.n_event_types = 0;
        return WH_OK;
    }
    c->types = wh__calloc((size_t)n, sizeof *c->types);
    if (!c->types) return wh__cfg_fail(err, WH_E_NOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *t = item->child; t; t = t->next, i++) {
        if (!cJSON_IsString(t) || !t->valuestring)
            return wh__cfg_fail(err, WH_E_CONFIG, "%s[%zu]: expected a string", path, i);
        if (!*t->valuestring)
            return wh__cfg_fail(err, WH_E_CONFIG, "%s[%zu]: empty event type", path, i);
        c->types[i] = t->valuestring;
    }
    c->o.event_types = c->types;
    c->o.n_event_types = i;
    return WH_OK;
}

int wh__cfg_check_secret(const char *s, const char *path, wh__cfg_err *err)
{
    if (wh__ed_is_key(s)) { /* an ed25519 key: whsk_ (signs) or whpk_ */
        wh__edkey *k = NULL;
        const char *why = NULL;
        int rc = wh__edkey_new(s, &k, &why);
        wh__edkey_free(k);
        if (rc == WH_E_NOMEM) return wh__cfg_fail(err, rc, "out of memory");
        if (rc != WH_OK)
            return wh__cfg_fail(err, WH_E_CONFIG, "%s: %s", path,
                                why ? why : "not a valid ed25519 key");
        return WH_OK;
    }
    wh__hmac *h = NULL;
    int rc = wh__hmac_new(s, &h);
    wh__hmac_free(h);
    if (rc == WH_E_NOMEM) return wh__cfg_fail(err, rc, "out of memory");
    if (rc != WH_OK)
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: not a valid secret (expected "
                            "whsec_<base64> or a non-empty string)", path);
    return WH_OK;
}

/* "secret" / "secrets": a string or an array of strings.  The table makes
 * the two keys exclusive, so this runs at most once per endpoint. */
static int parse_secret(const cJSON *item, const char *path, void *target,
                        wh__cfg_err *err)
{
    wh__cfg_ep *c = ep_of(target);
    if (cJSON_IsString(item) && item->valuestring) {
        c->secrets = wh__calloc(1, sizeof *c->secrets);
        if (!c->secrets) return wh__cfg_fail(err, WH_E_NOMEM, "out of memory");
        c->secrets[0] = item->valuestring;
        c->o.secrets = c->secrets;
        c->o.n_secrets = 1;
        return wh__cfg_check_secret(item->valuestring, path, err);
    }
    if (!cJSON_IsArray(item))
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected a string or an array of "
                            "strings", path);
    int n = cJSON_GetArraySize(item);
    c->secrets = wh__calloc(n ? (size_t)n : 1, sizeof *c->secrets);
    if (!c->secrets) return wh__cfg_fail(err, WH_E_NOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *s = item->child; s; s = s->next, i++) {
        char key[200];
        snprintf(key, sizeof key, "%s[%zu]", path, i);
        if (!cJSON_IsString(s) || !s->valuestring)
            return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected a string", key);
        c->secrets[i] = s->valuestring;
        c->o.n_secrets = i + 1; /* so that the free wipes what was seen */
        int rc = wh__cfg_check_secret(s->valuestring, key, err);
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
static int check_duplicate_headers(const cJSON *obj, size_t n, const char *path,
                                   wh__cfg_err *err)
{
    const char **names = wh__calloc(n, sizeof *names);
    if (!names) return wh__cfg_fail(err, WH_E_NOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *h = obj->child; h && i < n; h = h->next) names[i++] = h->string;
    qsort(names, i, sizeof *names, name_cmp);
    int rc = WH_OK;
    for (size_t j = 1; j < i; j++)
        if (strcasecmp(names[j - 1], names[j]) == 0) {
            char q[96];
            rc = wh__cfg_fail(err, WH_E_CONFIG, "%s: header %s appears twice", path,
                              wh__cfg_quote(q, sizeof q, names[j]));
            break;
        }
    free(names);
    return rc;
}

static int parse_headers(const cJSON *item, const char *path, void *target,
                         wh__cfg_err *err)
{
    wh__cfg_ep *c = ep_of(target);
    if (!cJSON_IsObject(item))
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected an object of string "
                            "values", path);
    int n = cJSON_GetArraySize(item);
    if (n == 0) return WH_OK;
    c->headers = wh__calloc((size_t)n, sizeof *c->headers);
    if (!c->headers) return wh__cfg_fail(err, WH_E_NOMEM, "out of memory");
    for (const cJSON *h = item->child; h; h = h->next) {
        char q[96];
        if (!cJSON_IsString(h) || !h->valuestring)
            return wh__cfg_fail(err, WH_E_CONFIG, "%s[%s]: expected a string", path,
                                wh__cfg_quote(q, sizeof q, h->string));
        const char *why = NULL;
        if (wh__header_pair_valid(h->string, h->valuestring, &why) != WH_OK)
            return wh__cfg_fail(err, WH_E_CONFIG, "%s[%s]: %s", path,
                                wh__cfg_quote(q, sizeof q, h->string), why);
        size_t nl = strlen(h->string), vl = strlen(h->valuestring);
        char *line = malloc(nl + vl + 3);
        if (!line) return wh__cfg_fail(err, WH_E_NOMEM, "out of memory");
        memcpy(line, h->string, nl);
        memcpy(line + nl, ": ", 2);
        memcpy(line + nl + 2, h->valuestring, vl + 1);
        c->headers[c->n_headers++] = line;
    }
    int rc = check_duplicate_headers(item, c->n_headers, path, err);
    if (rc != WH_OK) return rc;
    c->o.headers = (const char *const *)c->headers;
    c->o.n_headers = c->n_headers;
    return WH_OK;
}

static int parse_mode(const cJSON *item, const char *path, void *target,
                      wh__cfg_err *err)
{
    static const char *const names[] = {"single", "batch"};
    static const wh_mode values[] = {WH_MODE_SINGLE, WH_MODE_BATCH};
    size_t i;
    int rc = wh__cfg_choice(item, path, names, 2, &i, err);
    if (rc == WH_OK) ep_of(target)->o.mode = values[i];
    return rc;
}

int wh__cfg_transport(const cJSON *item, const char *path, wh_transport_kind *out,
                      wh__cfg_err *err)
{
    static const char *const names[] = {"curl", "lean", "auto"};
    static const wh_transport_kind values[] = {WH_TRANSPORT_CURL, WH_TRANSPORT_LEAN,
                                               WH_TRANSPORT_AUTO};
    size_t i;
    int rc = wh__cfg_choice(item, path, names, 3, &i, err);
    if (rc == WH_OK) *out = values[i];
    return rc;
}

static int parse_transport(const cJSON *item, const char *path, void *target,
                           wh__cfg_err *err)
{
    return wh__cfg_transport(item, path, &ep_of(target)->o.transport, err);
}

static int parse_body(const cJSON *item, const char *path, void *target,
                      wh__cfg_err *err)
{
    static const char *const names[] = {"raw", "standard", "pusher", "array"};
    static const wh_body values[] = {WH_BODY_RAW, WH_BODY_STANDARD, WH_BODY_PUSHER,
                                     WH_BODY_RAW};
    size_t i;
    int rc = wh__cfg_choice(item, path, names, 4, &i, err);
    if (rc == WH_OK) ep_of(target)->o.body = values[i];
    return rc;
}

static int parse_signing(const cJSON *item, const char *path, void *target,
                         wh__cfg_err *err)
{
    static const char *const names[] = {"none", "standard", "pusher",
                                        "hmac-sha256-hex", "rsa-sha256"};
    static const wh_sign_scheme values[] = {WH_SIGN_NONE, WH_SIGN_STANDARD,
                                            WH_SIGN_HMAC_HEX, WH_SIGN_HMAC_HEX,
                                            WH_SIGN_RSA_SHA256};
    size_t i;
    int rc = wh__cfg_choice(item, path, names, 5, &i, err);
    if (rc == WH_OK) ep_of(target)->o.signing = values[i];
    return rc;
}

/* private_key_file: read the PEM into memory owned by the wh__cfg_ep. */
static int parse_private_key_file(const cJSON *item, const char *path, void *target,
                                  wh__cfg_err *err)
{
    wh__cfg_ep *c = ep_of(target);
    const char *file = NULL;
    int rc = wh__cfg_string(item, path, 0, &file, err);
    if (rc != WH_OK) return rc;
    char q[96];
    FILE *f = fopen(file, "rb");
    if (!f)
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: cannot open %s: %s", path,
                            wh__cfg_quote(q, sizeof q, file), strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    rc = buf ? WH_OK : wh__cfg_fail(err, WH_E_NOMEM, "out of memory");
    while (rc == WH_OK) {
        if (n + 1 >= cap) {
            if (cap >= ((size_t)1 << 20)) {
                rc = wh__cfg_fail(err, WH_E_CONFIG, "%s: %s is larger than 1 MiB",
                                  path, wh__cfg_quote(q, sizeof q, file));
                break;
            }
            char *nb = malloc(cap * 2);
            if (!nb) {
                rc = wh__cfg_fail(err, WH_E_NOMEM, "out of memory");
                break;
            }
            memcpy(nb, buf, n);
            wh__cfg_wipe(buf, cap);
            free(buf);
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    if (rc == WH_OK && ferror(f))
        rc = wh__cfg_fail(err, WH_E_CONFIG, "%s: cannot read %s", path,
                          wh__cfg_quote(q, sizeof q, file));
    fclose(f);
    if (rc != WH_OK) {
        if (buf) {
            wh__cfg_wipe(buf, cap);
            free(buf);
        }
        return rc;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        wh__cfg_wipe(buf, cap);
        free(buf);
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: %s contains a NUL byte", path,
                            wh__cfg_quote(q, sizeof q, file));
    }
    c->key_pem = buf;
    c->key_pem_cap = cap;
    c->o.private_key_pem = buf;
    return WH_OK;
}

/* ---- retry ------------------------------------------------------------------ */

static const char *const jitter_names[] = {"none", "full", "equal", "percent"};

static int parse_jitter(const cJSON *item, const char *path, void *target,
                        wh__cfg_err *err)
{
    static const wh_jitter values[] = {WH_JITTER_NONE, WH_JITTER_FULL,
                                       WH_JITTER_EQUAL, WH_JITTER_PERCENT};
    if (cJSON_IsString(item) && item->valuestring)
        for (size_t i = 0; i < 4; i++)
            if (strcmp(item->valuestring, jitter_names[i]) == 0) {
                ep_of(target)->o.retry_jitter = values[i];
                return WH_OK;
            }
    return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected \"none\", \"full\", \"equal\" "
                        "or \"percent\"", path);
}

static int parse_schedule(const cJSON *item, const char *path, void *target,
                          wh__cfg_err *err)
{
    wh__cfg_ep *c = ep_of(target);
    int n = cJSON_GetArraySize(item);
    if (!cJSON_IsArray(item) || n == 0)
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected a non-empty array of "
                            "delays in milliseconds", path);
    c->schedule = wh__calloc((size_t)n, sizeof *c->schedule);
    if (!c->schedule) return wh__cfg_fail(err, WH_E_NOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *t = item->child; t; t = t->next, i++) {
        char p[200];
        uint64_t v;
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        int rc = wh__cfg_uint(t, p, 0, U32_ALL, &v, err);
        if (rc != WH_OK) return rc;
        c->schedule[i] = (uint32_t)v;
    }
    c->o.retry_schedule_ms = c->schedule;
    c->o.n_retry_schedule = i;
    return WH_OK;
}

static int parse_statuses(const cJSON *item, const char *path, void *target,
                          wh__cfg_err *err)
{
    wh__cfg_ep *c = ep_of(target);
    int n = cJSON_GetArraySize(item);
    if (!cJSON_IsArray(item))
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected an array of HTTP "
                            "statuses", path);
    c->statuses = wh__calloc(n ? (size_t)n : 1, sizeof *c->statuses);
    if (!c->statuses) return wh__cfg_fail(err, WH_E_NOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *t = item->child; t; t = t->next, i++) {
        char p[200];
        uint64_t v;
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        wh__cfg_err range = {WH_OK, ""};
        if (wh__cfg_uint(t, p, 300, 599, &v, &range) != WH_OK)
            return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected an HTTP status from "
                                "300 to 599", p);
        c->statuses[i] = (int)v;
    }
    c->o.retry_statuses = c->statuses;
    c->o.n_retry_statuses = i;
    return WH_OK;
}

/* "preset" is applied before every other key (retry_preset below). */
static int retry_preset_seen(const cJSON *item, const char *path, void *target,
                             wh__cfg_err *err)
{
    (void)item, (void)path, (void)target, (void)err;
    return WH_OK;
}

static const wh__cfg_key retry_keys[] = {
    {"preset", WH__CFG_FN, 0, 0, 0, NULL, retry_preset_seen, NULL, "string",
     "a retry preset; the other keys override it"},
    {"initial_ms", WH__CFG_U32, EP(retry_initial_ms), 0, U32_ALL, NULL, NULL, NULL,
     NULL, "first delay of the formula `initial * multiplier^(n-1)` (default 2000)"},
    {"max_ms", WH__CFG_U32, EP(retry_max_ms), 0, U32_ALL, NULL, NULL, NULL, NULL,
     "cap of the formula and of `Retry-After`, not below `initial_ms` (default 300000)"},
    {"multiplier", WH__CFG_U32, EP(retry_multiplier), 1, U32_ALL, NULL, NULL, NULL,
     NULL, "growth factor of the delay (default 2)"},
    {"jitter", WH__CFG_FN, 0, 0, 0, NULL, parse_jitter, NULL,
     "`none`, `full`, `equal`, `percent`", "randomise each delay (default `none`)"},
    {"jitter_percent", WH__CFG_U32, EP(retry_jitter_percent), 0, 100, NULL, NULL,
     NULL, NULL, "± this % for `percent` (default 20)"},
    {"schedule_ms", WH__CFG_FN, 0, 0, 0, NULL, parse_schedule, NULL,
     "non-empty array of integers ≥ 0", "explicit delays instead of the formula"},
    {"max_attempts_status", WH__CFG_U32, EP(max_attempts_status), 0, U32_ALL, NULL,
     NULL, NULL, NULL, "attempts in all when the latest failure is a retryable HTTP status (0: no extra limit)"},
    {"max_attempts_network", WH__CFG_U32, EP(max_attempts_network), 0, U32_ALL, NULL,
     NULL, NULL, NULL, "… a connection or other network error"},
    {"max_attempts_timeout", WH__CFG_U32, EP(max_attempts_timeout), 0, U32_ALL, NULL,
     NULL, NULL, NULL, "… a timed-out attempt"},
    {"budget_ms", WH__CFG_U32, EP(retry_budget_ms), 0, U32_ALL, NULL, NULL, NULL, NULL,
     "from the start of attempt 1: no attempt starts after it (0: none)"},
    {"retry_3xx", WH__CFG_BOOL, EP(retry_3xx), 0, 0, NULL, NULL, NULL, NULL,
     "retry 3xx answers (default false)"},
    {"retry_4xx", WH__CFG_BOOL, EP(retry_4xx), 0, 0, NULL, NULL, NULL, NULL,
     "retry every 4xx (default false)"},
    {"statuses", WH__CFG_FN, 0, 0, 0, NULL, parse_statuses, NULL,
     "array of integers 300–599", "further statuses retried"},
    {"retry_after", WH__CFG_BOOL, EP(honor_retry_after), 0, 0, NULL, NULL, NULL, NULL,
     "a `Retry-After` on 429/503 sets the next delay (default true)"},
};
static const wh__cfg_table retry_table = {
    retry_keys, sizeof retry_keys / sizeof retry_keys[0], NULL, NULL, NULL};

/* "retry": "<preset>" or an object. */
static int parse_retry(const cJSON *item, const char *path, void *target,
                       wh__cfg_err *err)
{
    if (cJSON_IsString(item)) return WH_OK; /* a preset: applied first */
    if (!cJSON_IsObject(item))
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected a preset name or an "
                            "object", path);
    return wh__cfg_object(item, path, &retry_table, target, err);
}

/* The endpoint's "before": "retry": "<preset>" or {"preset": ...} is applied
 * before any other key, so explicit keys override it whatever their order. */
static int apply_retry_preset(const cJSON *obj, const char *path, void *target,
                              wh__cfg_err *err)
{
    wh__cfg_ep *c = ep_of(target);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(obj, "retry");
    const cJSON *name = NULL;
    if (cJSON_IsString(r)) name = r;
    else if (cJSON_IsObject(r)) name = cJSON_GetObjectItemCaseSensitive(r, "preset");
    if (!name) return WH_OK;
    char q[96];
    if (!cJSON_IsString(name) || !name->valuestring)
        return wh__cfg_fail(err, WH_E_CONFIG, "%s.retry.preset: expected a string",
                            path);
    if (wh_endpoint_options_retry_preset(&c->o, name->valuestring) != WH_OK)
        return wh__cfg_fail(err, WH_E_CONFIG, "%s.retry%s: unknown retry preset %s "
                            "(default, realtime, sendbird, dyte, stream, svix, "
                            "pusher)", path, name == r ? "" : ".preset",
                            wh__cfg_quote(q, sizeof q, name->valuestring));
    return WH_OK;
}

/* ---- plain sub-objects ---------------------------------------------------------- */

/* The payload keys of "filter" never reach the table parser (parse_filter
 * takes them out); their rows document them. */
static const wh__cfg_key filter_keys[] = {
    {"channel_name_starts_with", WH__CFG_STR, EP(channel_prefix), 0, 0, NULL, NULL,
     NULL, NULL, "deliver events whose channel starts with this"},
    {"channel_name_ends_with", WH__CFG_STR, EP(channel_suffix), 0, 0, NULL, NULL, NULL,
     NULL, "… and ends with this"},
    {"data.<path>", WH__CFG_FN, 0, 0, 0, NULL, NULL, NULL, "value or operator object",
     "payload condition on a dotted path (`data.amount`): `$eq $neq $gt $gte $lt $lte $in $nin $exist $regex`; a value means `$eq`"},
    {"$and", WH__CFG_FN, 0, 0, 0, NULL, NULL, NULL, "array of filter objects",
     "all of these payload conditions"},
    {"$or", WH__CFG_FN, 0, 0, 0, NULL, NULL, NULL, "array of filter objects",
     "any of these payload conditions"},
};
static const wh__cfg_table filter_table = {filter_keys, 2, NULL, NULL, NULL};
static const wh__cfg_table filter_doc_table = {filter_keys, 5, NULL, NULL, NULL};

static int is_payload_key(const char *k)
{
    return strcmp(k, "data") == 0 || strncmp(k, "data.", 5) == 0 ||
           strcmp(k, "$and") == 0 || strcmp(k, "$or") == 0;
}

/* "filter": the channel keys through filter_table, the payload conditions
 * compiled (filter.c) to check them now and handed to the endpoint as
 * payload_filter_json. */
static int parse_filter(const cJSON *item, const char *path, void *target,
                        wh__cfg_err *err)
{
    wh__cfg_ep *c = ep_of(target);
    if (!cJSON_IsObject(item))
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected an object", path);
    cJSON *chan = cJSON_CreateObject(), *pay = cJSON_CreateObject();
    int rc = chan && pay ? WH_OK : wh__cfg_fail(err, WH_E_NOMEM, "out of memory");
    for (cJSON *k = item->child; rc == WH_OK && k; k = k->next)
        if (!cJSON_AddItemReferenceToObject(is_payload_key(k->string) ? pay : chan,
                                            k->string, k))
            rc = wh__cfg_fail(err, WH_E_NOMEM, "out of memory");
    if (rc == WH_OK) rc = wh__cfg_object(chan, path, &filter_table, target, err);
    if (rc == WH_OK && pay->child) {
        wh__filter *f = NULL;
        char why[200];
        rc = wh__filter_compile(pay, 0, &f, why, sizeof why);
        wh__filter_free(f);
        if (rc != WH_OK)
            rc = wh__cfg_fail(err, rc == WH_E_NOMEM ? rc : WH_E_CONFIG, "%s: %s", path, why);
        else if (!(c->payload_filter = cJSON_PrintUnformatted(pay)))
            rc = wh__cfg_fail(err, WH_E_NOMEM, "out of memory");
        else
            c->o.payload_filter_json = c->payload_filter;
    }
    cJSON_Delete(chan);
    cJSON_Delete(pay);
    return rc;
}

static int parse_delivery(const cJSON *item, const char *path, void *target,
                          wh__cfg_err *err)
{
    static const char *const names[] = {"at_least_once", "at_most_once"};
    size_t i;
    int rc = wh__cfg_choice(item, path, names, 2, &i, err);
    if (rc == WH_OK)
        ep_of(target)->o.delivery = i ? WH_DELIVERY_AT_MOST_ONCE : WH_DELIVERY_AT_LEAST_ONCE;
    return rc;
}

static const wh__cfg_key limits_keys[] = {
    {"rate", WH__CFG_U32, EP(rate_limit), 0, U32_ALL, NULL, NULL, NULL, NULL,
     "token bucket: requests per `period_ms` (0: none)"},
    {"period_ms", WH__CFG_U32, EP(rate_period_ms), 1, U32_ALL, NULL, NULL, NULL, NULL,
     "the period (default 1000)"},
    {"burst", WH__CFG_U32, EP(rate_burst), 0, U32_ALL, NULL, NULL, NULL, NULL,
     "bucket size (0: `rate`)"},
    {"ordered", WH__CFG_BOOL, EP(ordered), 0, 0, NULL, NULL, NULL, NULL,
     "strict FIFO, one request at a time (default false)"},
};
static const wh__cfg_table limits_table = {limits_keys, 4, NULL, NULL, NULL};

static const wh__cfg_key health_keys[] = {
    {"disable_on_410", WH__CFG_BOOL, EP(disable_on_410), 0, 0, NULL, NULL, NULL, NULL,
     "HTTP 410 disables the endpoint at once (default true)"},
    {"breaker_failures", WH__CFG_U32, EP(breaker_failures), 0, U32_ALL, NULL, NULL,
     NULL, NULL, "consecutive failed attempts that open the breaker (0: none)"},
    {"breaker_cooldown_ms", WH__CFG_U32, EP(breaker_cooldown_ms), 1, U32_ALL, NULL,
     NULL, NULL, NULL, "pause before one probe request (default 30000)"},
    {"disable_after_ms", WH__CFG_U32, EP(disable_after_ms), 0, U32_ALL, NULL, NULL,
     NULL, NULL, "failing this long without a success disables it (0: never)"},
};
static const wh__cfg_table health_table = {health_keys, 4, NULL, NULL, NULL};

/* "batch": {...} implies batch mode. */
static int batch_after(const cJSON *obj, const char *path, void *target,
                       wh__cfg_err *err)
{
    (void)obj, (void)path, (void)err;
    ep_of(target)->o.mode = WH_MODE_BATCH;
    return WH_OK;
}

static const wh__cfg_key batch_keys[] = {
    {"max_events", WH__CFG_U32, EP(batch_max_events), 1, U32_ALL, NULL, NULL, NULL,
     NULL, "events per request (default 1000)"},
    {"max_bytes", WH__CFG_U32, EP(batch_max_bytes), 1, U32_ALL, NULL, NULL, NULL, NULL,
     "payload bytes per request (default 1048576)"},
    {"linger_ms", WH__CFG_U32, EP(batch_linger_ms), 0, U32_ALL, NULL, NULL, NULL, NULL,
     "wait for more events (default 50; 0: send when polled)"},
};
static const wh__cfg_table batch_table = {batch_keys, 3, NULL, batch_after, NULL};

static const wh__cfg_key header_name_keys[] = {
    {"id", WH__CFG_STR, EP(id_header), 0, 0, NULL, NULL, NULL, NULL,
     "delivery id header"},
    {"timestamp", WH__CFG_STR, EP(timestamp_header), 0, 0, NULL, NULL, NULL, NULL,
     "timestamp header"},
    {"attempt", WH__CFG_STR, EP(attempt_header), 0, 0, NULL, NULL, NULL, NULL,
     "attempt number header"},
    {"signature", WH__CFG_STR, EP(signature_header), 0, 0, NULL, NULL, NULL, NULL,
     "signature header"},
    {"api_key", WH__CFG_STR, EP(api_key_header), 0, 0, NULL, NULL, NULL, NULL,
     "API-key header"},
};
static const wh__cfg_table header_names_table = {header_name_keys, 5, NULL, NULL, NULL};

/* ---- the endpoint object -------------------------------------------------------- */

static int endpoint_after(const cJSON *obj, const char *path, void *target,
                          wh__cfg_err *err)
{
    (void)obj;
    wh__cfg_ep *c = ep_of(target);
    if (!c->o.url)
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: missing required key \"url\"", path);
    if (c->o.retry_max_ms < c->o.retry_initial_ms)
        return wh__cfg_fail(err, WH_E_CONFIG, "%s.retry: max_ms (%lu) is smaller than "
                            "initial_ms (%lu)", path, (unsigned long)c->o.retry_max_ms,
                            (unsigned long)c->o.retry_initial_ms);
    return WH_OK;
}

static const wh__cfg_key endpoint_keys[] = {
    {"id", WH__CFG_STR, EP(id), 0, 0, NULL, NULL, NULL, NULL,
     "stable endpoint id (default `ep-<n>`)"},
    {"url", WH__CFG_STR, EP(url), 0, 0, NULL, NULL, NULL, NULL,
     "`http://` or `https://` URL (required)"},
    {"event_types", WH__CFG_FN, 0, 0, 0, NULL, parse_event_types, NULL,
     "array of strings", "event types to receive, `\"*\"` for all; `[]` none (default all)"},
    {"filter", WH__CFG_FN, 0, 0, 0, &filter_doc_table, parse_filter, NULL, "object",
     "channel and payload filter (every key must hold)"},
    {"secret", WH__CFG_FN, 0, 0, 0, NULL, parse_secret, "secrets",
     "string or array of strings", "`whsec_<base64>` (HMAC, `v1`), `whsk_<base64>` (ed25519, `v1a`) or raw key; several: key rotation, one signature each (default unsigned)"},
    {"secrets", WH__CFG_FN, 0, 0, 0, NULL, parse_secret, "secret",
     "string or array of strings", "same as `secret` (not both)"},
    {"headers", WH__CFG_FN, 0, 0, 0, NULL, parse_headers, NULL,
     "object of strings", "static extra headers (names are tokens; no CR/LF/NUL)"},
    {"timeout_ms", WH__CFG_U32, EP(timeout_ms), 1, U32_ALL, NULL, NULL, NULL, NULL,
     "one attempt, connection included (default 10000)"},
    {"connect_timeout_ms", WH__CFG_U32, EP(connect_timeout_ms), 1, U32_ALL, NULL, NULL,
     NULL, NULL, "connection phase of one attempt (default 5000)"},
    {"max_attempts", WH__CFG_U32, EP(max_attempts), 1, U32_ALL, NULL, NULL, NULL, NULL,
     "attempts in all (default 8)"},
    {"max_in_flight", WH__CFG_U32, EP(max_in_flight), 1, U32_ALL, NULL, NULL, NULL,
     NULL, "concurrent requests to this endpoint (default 30)"},
    {"retry", WH__CFG_FN, 0, 0, 0, &retry_table, parse_retry, NULL,
     "preset name or object", "retry policy: a preset (`\"stream\"`) or the keys below"},
    {"limits", WH__CFG_OBJECT, 0, 0, 0, &limits_table, NULL, NULL, NULL,
     "rate limit and ordering"},
    {"health", WH__CFG_OBJECT, 0, 0, 0, &health_table, NULL, NULL, NULL,
     "circuit breaker and disabling"},
    {"transport", WH__CFG_FN, 0, 0, 0, NULL, parse_transport, NULL,
     "`curl`, `lean`, `auto`",
     "HTTP client: libcurl, the lean HTTP/1.1 transport, or lean where it can (http://, IP or localhost) and curl elsewhere (default: the document's `transport`, else the engine's)"},
    {"mode", WH__CFG_FN, 0, 0, 0, NULL, parse_mode, NULL, "`single`, `batch`",
     "one request per event, or batches (default `single`)"},
    {"batch", WH__CFG_OBJECT, 0, 0, 0, &batch_table, NULL, NULL, NULL,
     "batch limits (implies `\"mode\": \"batch\"`)"},
    {"body", WH__CFG_FN, 0, 0, 0, NULL, parse_body, NULL,
     "`raw`, `standard`, `pusher`, `array`", "`raw`: the data as emitted; `standard`: `{\"type\",\"timestamp\",\"data\"}`; `pusher`: `{\"time_ms\",\"events\"}`; `array`: `raw` (default `raw`)"},
    {"preset", WH__CFG_STR, EP(preset), 0, 0, NULL, NULL, NULL, NULL,
     "header names and signing scheme: `standard` (default), `svix`, `stream`, `dyte`, `pusher`, `sendbird`"},
    {"header_names", WH__CFG_OBJECT, 0, 0, 0, &header_names_table, NULL, NULL, NULL,
     "override the preset's header names (`\"\"`: no such header)"},
    {"api_key", WH__CFG_STR, EP(api_key), 0, 0, NULL, NULL, NULL, NULL,
     "value of the API-key header (`X-API-KEY` for stream, `X-Pusher-Key` for pusher)"},
    {"signing", WH__CFG_FN, 0, 0, 0, NULL, parse_signing, NULL,
     "`none`, `standard`, `pusher`, `hmac-sha256-hex`, `rsa-sha256`",
     "signing scheme (default: the preset's)"},
    {"private_key", WH__CFG_STR, EP(private_key_pem), 0, 0, NULL, NULL,
     "private_key_file", NULL, "PEM RSA private key for `rsa-sha256`"},
    {"private_key_file", WH__CFG_FN, 0, 0, 0, NULL, parse_private_key_file,
     "private_key", "string (a path)", "the same, read from a file"},
    /* TLS (README "TLS"); the document's keys of the same names are the
     * defaults */
    {"ca_file", WH__CFG_STR, EP(ca_file), 1, 0, NULL, NULL, NULL, NULL,
     "PEM bundle of the CAs to trust; replaces the system store"},
    {"ca_path", WH__CFG_STR, EP(ca_path), 1, 0, NULL, NULL, NULL, NULL,
     "directory of hashed CA certificates; replaces the system store"},
    {"client_cert_file", WH__CFG_STR, EP(client_cert_file), 1, 0, NULL, NULL, NULL, NULL,
     "PEM client certificate (mutual TLS)"},
    {"client_key_file", WH__CFG_STR, EP(client_key_file), 1, 0, NULL, NULL, NULL, NULL,
     "PEM private key of `client_cert_file`"},
    {"tls_min_version", WH__CFG_STR, EP(tls_min_version), 1, 0, NULL, NULL, NULL, NULL,
     "`\"1.2\"` (default) or `\"1.3\"`"},
    {"pinned_public_key", WH__CFG_STR, EP(pinned_public_key), 1, 0, NULL, NULL, NULL, NULL,
     "`sha256//<base64>` (several joined by `;`): the server's key must match one"},
    {"insecure_skip_verify_DANGEROUS", WH__CFG_BOOL, EP(insecure_skip_verify_DANGEROUS), 0,
     0, NULL, NULL, NULL, NULL,
     "`true`: accept any certificate and host name (test servers only)"},
    {"delivery", WH__CFG_FN, 0, 0, 0, NULL, parse_delivery, NULL,
     "`at_least_once`, `at_most_once`",
     "`at_most_once`: retry only when the connection failed before any byte was sent (default `at_least_once`)"},
    {"ignore_delivery_control", WH__CFG_BOOL, EP(ignore_delivery_control), 0, 0, NULL,
     NULL, NULL, NULL,
     "ignore the receiver's `webhook-delivery: disable` / `abort-message` answers (default false)"},
};

const wh__cfg_table wh__cfg_endpoint_table = {
    endpoint_keys, sizeof endpoint_keys / sizeof endpoint_keys[0], apply_retry_preset,
    endpoint_after, NULL};

int wh__cfg_endpoint_parse(const cJSON *obj, wh__cfg_ep *c, wh__cfg_err *err)
{
    return wh__cfg_object(obj, c->where, &wh__cfg_endpoint_table, c, err);
}

void wh__cfg_endpoint_free(wh__cfg_ep *p)
{
    if (p->secrets)
        for (size_t j = 0; j < p->o.n_secrets; j++)
            if (p->secrets[j]) wh__cfg_wipe((char *)p->secrets[j], strlen(p->secrets[j]));
    for (size_t j = 0; j < p->n_headers; j++) free(p->headers[j]);
    free(p->headers);
    if (p->key_pem) {
        wh__cfg_wipe(p->key_pem, p->key_pem_cap);
        free(p->key_pem);
    }
    free(p->secrets);
    free(p->types);
    free(p->schedule);
    free(p->statuses);
    free(p->payload_filter);
}
