/* The configuration document: wh_config_load, wh_config_load_file and
 * wh_config_queue_new.
 *
 * Two passes, all or nothing: every endpoint object is read
 * (config_endpoint.c) and checked (wh__endpoint_check) before the first one
 * is added.  Every error, whichever function reports it, is one
 * wh__cfg_err: a status and a message starting with the key path
 * ("endpoints[2].timeout_ms: ..."). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_MAX_FILE_BYTES ((size_t)16 << 20)

/* The root object's members. */
typedef struct doc {
    const cJSON *endpoints, *webhooks;
    const char *app_key, *app_secret;
    int batching;
    uint32_t batching_ms;
    /* network safety (README "Security", "TLS"): -1 / NULL when absent */
    int https_only, ssrf_guard;
    const char **ssrf_allow;     /* owned array; strings in the tree */
    size_t n_ssrf_allow;
    int have_allow;
    const char *proxy;
    const char *ca_file, *ca_path, *client_cert_file, *client_key_file;
    const char *tls_min_version, *pinned_public_key;
    int insecure;
    wh_transport_kind transport;  /* default of the document's endpoints */
    uint64_t dedupe_window_ms;
    const char *op_endpoint;
    const char *app_id;
    int soketi_setting;     /* unused: Soketi app settings read and ignored */
} doc;

static doc *doc_of(void *target) { return target; }

static int root_array(const cJSON *item, const char *name, const cJSON **out,
                      wh__cfg_err *err)
{
    if (!cJSON_IsArray(item))
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected an array of endpoint "
                            "objects", name);
    *out = item;
    return WH_OK;
}

static int root_endpoints(const cJSON *item, const char *path, void *target,
                          wh__cfg_err *err)
{
    (void)path;
    return root_array(item, "endpoints", &doc_of(target)->endpoints, err);
}

static int root_webhooks(const cJSON *item, const char *path, void *target,
                         wh__cfg_err *err)
{
    (void)path;
    return root_array(item, "webhooks", &doc_of(target)->webhooks, err);
}

static int root_secret(const cJSON *item, const char *path, void *target,
                       wh__cfg_err *err)
{
    doc *d = doc_of(target);
    int rc = wh__cfg_string(item, path, 0, &d->app_secret, err);
    return rc == WH_OK ? wh__cfg_check_secret(d->app_secret, path, err) : rc;
}

/* Read by wh_config_queue_new(); checked here too, so that a document
 * wh_config_load accepts has a usable queue. */
static int root_queue(const cJSON *item, const char *path, void *target,
                      wh__cfg_err *err)
{
    (void)path, (void)target;
    wh__cfg_queue q;
    return wh__cfg_queue_parse(item, &q, err);
}

static int root_transport(const cJSON *item, const char *path, void *target,
                          wh__cfg_err *err)
{
    return wh__cfg_transport(item, path, &doc_of(target)->transport, err);
}

static int root_ssrf_allow(const cJSON *item, const char *path, void *target,
                           wh__cfg_err *err)
{
    doc *d = doc_of(target);
    if (!cJSON_IsArray(item))
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected an array of CIDR strings", path);
    int n = cJSON_GetArraySize(item);
    d->ssrf_allow = wh__calloc(n ? (size_t)n : 1, sizeof *d->ssrf_allow);
    if (!d->ssrf_allow) return wh__cfg_fail(err, WH_E_NOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *t = item->child; t; t = t->next, i++) {
        wh__cidr c;
        const char *why = NULL;
        char q[96];
        if (!cJSON_IsString(t) || !t->valuestring)
            return wh__cfg_fail(err, WH_E_CONFIG, "%s[%zu]: expected a string", path, i);
        if (wh__cidr_parse(t->valuestring, &c, &why) != WH_OK)
            return wh__cfg_fail(err, WH_E_CONFIG, "%s[%zu]: %s: %s", path, i,
                                wh__cfg_quote(q, sizeof q, t->valuestring), why);
        d->ssrf_allow[i] = t->valuestring;
    }
    d->n_ssrf_allow = i;
    d->have_allow = 1;
    return WH_OK;
}

static int root_proxy(const cJSON *item, const char *path, void *target, wh__cfg_err *err)
{
    doc *d = doc_of(target);
    int rc = wh__cfg_string(item, path, 0, &d->proxy, err);
    if (rc != WH_OK) return rc;
    const char *p = d->proxy;
    static const char *const schemes[] = {"http://", "https://", "socks4://", "socks4a://",
                                          "socks5://", "socks5h://"};
    if (!*p || strcmp(p, "env") == 0) return WH_OK;
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        if (strncmp(p, schemes[i], strlen(schemes[i])) == 0 && p[strlen(schemes[i])] &&
            !strpbrk(p, " \t\r\n"))
            return WH_OK;
    return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected \"\" (none), \"env\" or a proxy URL "
                        "(http://, https://, socks5://...)", path);
}

#define D(member) offsetof(doc, member)

static const wh__cfg_key batching_keys[] = {
    {"enabled", WH__CFG_BOOL, D(batching), 0, 0, NULL, NULL, NULL, NULL,
     "Soketi's `WEBHOOKS_BATCHING`: `webhooks` entries send batches"},
    {"duration_ms", WH__CFG_U32, D(batching_ms), 1, UINT32_MAX, NULL, NULL, "duration",
     NULL, "Soketi's `WEBHOOKS_BATCHING_DURATION` (default 50)"},
    {"duration", WH__CFG_U32, D(batching_ms), 1, UINT32_MAX, NULL, NULL, "duration_ms",
     NULL, "the same, as Soketi's config file names it (`webhooks.batching.duration`)"},
};
static const wh__cfg_table batching_table = {batching_keys, 3, NULL, NULL, NULL};

/* A whole Soketi app object may be given: its settings for the websocket
 * server are read (their types checked) and not used. */
static int soketi_setting(const cJSON *item, const char *path, void *target,
                          wh__cfg_err *err)
{
    (void)target;
    if (!cJSON_IsNumber(item) && !cJSON_IsBool(item) && !cJSON_IsNull(item))
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected a number or a boolean (a "
                            "Soketi app setting)", path);
    return WH_OK;
}
#define SOKETI_SETTING(name) \
    {name, WH__CFG_FN, 0, 0, 0, NULL, soketi_setting, NULL, "number or boolean", \
     "Soketi app setting for the websocket server: accepted, not used"}

/* "endpoints": this library's endpoint objects.  "webhooks": entries of a
 * Soketi app's webhooks array, verbatim (url, event_types, filter, headers,
 * plus any endpoint key), sent as Pusher webhooks: Pusher body, X-Pusher-Key
 * / X-Pusher-Signature from the app's "key" and "secret"; "batching"
 * {"enabled", "duration_ms"} mirrors Soketi's WEBHOOKS_BATCHING /
 * WEBHOOKS_BATCHING_DURATION (default 50 ms). */
static const wh__cfg_key root_keys[] = {
    {"endpoints", WH__CFG_FN, 0, 0, 0, &wh__cfg_endpoint_table, root_endpoints, NULL,
     "array of endpoint objects", "the endpoints (keys below)"},
    {"webhooks", WH__CFG_FN, 0, 0, 0, NULL, root_webhooks, NULL,
     "array of endpoint objects", "a Soketi app's `webhooks`, sent as Pusher webhooks"},
    {"batching", WH__CFG_OBJECT, 0, 0, 0, &batching_table, NULL, NULL, NULL,
     "Soketi batching of the `webhooks` entries"},
    {"key", WH__CFG_STR, D(app_key), 0, 0, NULL, NULL, NULL, NULL,
     "Soketi app key (`X-Pusher-Key` of the `webhooks` entries)"},
    {"secret", WH__CFG_FN, 0, 0, 0, NULL, root_secret, NULL, "string",
     "Soketi app secret (signs the `webhooks` entries)"},
    {"queue", WH__CFG_FN, 0, 0, 0, &wh__cfg_queue_table, root_queue, NULL,
     "object", "the queue backend (`wh_config_queue_new`)"},
    {"https_only", WH__CFG_BOOL, D(https_only), 0, 0, NULL, NULL, NULL, NULL,
     "`true`: `http://` endpoint URLs are refused"},
    {"ssrf_guard", WH__CFG_BOOL, D(ssrf_guard), 0, 0, NULL, NULL, NULL, NULL,
     "`true`: no connection to loopback, private, link-local or reserved addresses (README \"Security\")"},
    {"ssrf_allow", WH__CFG_FN, 0, 0, 0, NULL, root_ssrf_allow, NULL, "array of strings",
     "CIDR ranges let through despite `ssrf_guard`"},
    {"proxy", WH__CFG_FN, 0, 0, 0, NULL, root_proxy, NULL, "string",
     "`\"env\"`: the environment's `http_proxy` & co.; a URL: that proxy (default: none, environment ignored)"},
    {"ca_file", WH__CFG_STR, D(ca_file), 1, 0, NULL, NULL, NULL, NULL,
     "default `ca_file` of the endpoints"},
    {"ca_path", WH__CFG_STR, D(ca_path), 1, 0, NULL, NULL, NULL, NULL,
     "default `ca_path` of the endpoints"},
    {"client_cert_file", WH__CFG_STR, D(client_cert_file), 1, 0, NULL, NULL, NULL, NULL,
     "default `client_cert_file` of the endpoints"},
    {"client_key_file", WH__CFG_STR, D(client_key_file), 1, 0, NULL, NULL, NULL, NULL,
     "default `client_key_file` of the endpoints"},
    {"tls_min_version", WH__CFG_STR, D(tls_min_version), 1, 0, NULL, NULL, NULL, NULL,
     "default `tls_min_version` of the endpoints"},
    {"pinned_public_key", WH__CFG_STR, D(pinned_public_key), 1, 0, NULL, NULL, NULL, NULL,
     "default `pinned_public_key` of the endpoints"},
    {"insecure_skip_verify_DANGEROUS", WH__CFG_BOOL, D(insecure), 0, 0, NULL, NULL, NULL,
     NULL, "default `insecure_skip_verify_DANGEROUS` of the endpoints"},
    {"transport", WH__CFG_FN, 0, 0, 0, NULL, root_transport, NULL, "`curl`, `lean`, `auto`",
     "`transport` of every endpoint of the document that sets none"},
    {"dedupe_window_ms", WH__CFG_U64, D(dedupe_window_ms), 0, (uint64_t)1 << 53, NULL,
     NULL, NULL, NULL,
     "an event id accepted this recently is not delivered again (`wh_emit` returns `WH_E_DUPLICATE`; 0: off)"},
    {"operational_endpoint", WH__CFG_STR, D(op_endpoint), 1, 0, NULL, NULL, NULL, NULL,
     "id of the endpoint that receives operational events (`endpoint.disabled`, ...)"},
    {"id", WH__CFG_STR, D(app_id), 0, 0, NULL, NULL, NULL, NULL,
     "Soketi app id: accepted, not used"},
    SOKETI_SETTING("enabled"),
    SOKETI_SETTING("maxConnections"),
    SOKETI_SETTING("enableClientMessages"),
    SOKETI_SETTING("enableUserAuthentication"),
    SOKETI_SETTING("maxBackendEventsPerSecond"),
    SOKETI_SETTING("maxClientEventsPerSecond"),
    SOKETI_SETTING("maxReadRequestsPerSecond"),
    SOKETI_SETTING("maxPresenceMembersPerChannel"),
    SOKETI_SETTING("maxPresenceMemberSizeInKb"),
    SOKETI_SETTING("maxChannelNameLength"),
    SOKETI_SETTING("maxEventChannelsAtOnce"),
    SOKETI_SETTING("maxEventNameLength"),
    SOKETI_SETTING("maxEventPayloadInKb"),
    SOKETI_SETTING("maxEventBatchSize"),
};
const wh__cfg_table wh__cfg_root_table = {
    root_keys, sizeof root_keys / sizeof root_keys[0], NULL, NULL, NULL};

/* ---- pass 1 helpers ---------------------------------------------------------- */

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
static int check_duplicate_ids(const wh__cfg_ep *eps, size_t count, wh__cfg_err *err)
{
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (eps[i].o.id) n++;
    if (n < 2) return WH_OK;
    id_ref *refs = wh__calloc(n, sizeof *refs);
    if (!refs) return wh__cfg_fail(err, WH_E_NOMEM, "out of memory");
    n = 0;
    for (size_t i = 0; i < count; i++)
        if (eps[i].o.id) refs[n++] = (id_ref){eps[i].o.id, i};
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
        rc = wh__cfg_fail(err, WH_E_CONFIG,
                          "endpoints[%zu].id: %s is also the id of endpoints[%zu]",
                          refs[best].index, wh__cfg_quote(q, sizeof q, refs[best].id),
                          refs[best - 1].index);
    }
    free(refs);
    return rc;
}

/* The engine's last message without the "WH_E_...: " prefix wh__fail puts
 * before it. */
static const char *last_detail(wh_engine *e, int status)
{
    const char *m = wh_last_error(e);
    const char *name = wh_status_name(status);
    size_t n = strlen(name);
    if (m && strncmp(m, name, n) == 0 && m[n] == ':' && m[n + 1] == ' ') m += n + 2;
    return m ? m : "";
}

/* Values only the engine can judge (URL syntax, id in use, signing).  An id
 * already used stays WH_E_EXISTS and a failed allocation WH_E_NOMEM; any
 * other rejected value is a configuration error. */
static int engine_check(wh_engine *e, const wh__cfg_ep *p, wh__cfg_err *err)
{
    int rc = wh__endpoint_check(e, &p->o, p->where);
    if (rc == WH_OK) return WH_OK;
    return wh__cfg_fail(err, rc == WH_E_EXISTS || rc == WH_E_NOMEM ? rc : WH_E_CONFIG,
                        "%s", last_detail(e, rc));
}

/* ---- network safety: document-level keys ---------------------------------------- */

/* Before any endpoint: the document's TLS defaults are valid, and the
 * guard and proxy have a transport to go to. */
static int network_check(wh_engine *e, const doc *d, wh__cfg_err *err)
{
    if ((d->ssrf_guard != -1 || d->have_allow || d->proxy) && !wh__net_has_curl(e))
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: applies to the default libcurl transport "
                            "only (this engine has another)",
                            d->ssrf_guard != -1 ? "ssrf_guard"
                                                : d->have_allow ? "ssrf_allow" : "proxy");
    char buf[400];
    int rc = wh__net_tls_check(d->ca_file, d->ca_path, d->client_cert_file, d->client_key_file,
                               d->tls_min_version, d->pinned_public_key, "config", buf,
                               sizeof buf);
    if (rc != WH_OK)
        /* "config.ca_file: ..." -> "ca_file: ..." (document keys have no prefix) */
        return wh__cfg_fail(err, rc == WH_E_NOMEM ? rc : WH_E_CONFIG, "%s", buf + 7);
    return WH_OK;
}

/* The document's TLS keys are the defaults of its endpoints. */
static void network_defaults(const doc *d, wh__cfg_ep *p)
{
    wh_endpoint_options *o = &p->o;
    if (!o->ca_file && !o->ca_path) {
        o->ca_file = d->ca_file;
        o->ca_path = d->ca_path;
    }
    if (!o->client_cert_file) {
        o->client_cert_file = d->client_cert_file;
        if (!o->client_key_file) o->client_key_file = d->client_key_file;
    }
    if (!o->tls_min_version) o->tls_min_version = d->tls_min_version;
    if (!o->pinned_public_key) o->pinned_public_key = d->pinned_public_key;
    if (d->insecure == 1) o->insecure_skip_verify_DANGEROUS = 1;
}

static int network_apply(wh_engine *e, const doc *d, wh__cfg_err *err)
{
    int rc = WH_OK;
    if (d->https_only != -1) rc = wh__net_set_https_only(e, d->https_only);
    if (rc == WH_OK && (d->ssrf_guard != -1 || d->have_allow))
        rc = wh__net_set_guard(e, d->ssrf_guard, d->ssrf_allow, d->n_ssrf_allow,
                               d->have_allow, "config");
    if (rc == WH_OK && d->proxy) rc = wh__net_set_proxy(e, d->proxy, "config");
    if (rc != WH_OK) return wh__cfg_fail(err, rc, "%s", last_detail(e, rc));
    return WH_OK;
}

/* ---- the document ---------------------------------------------------------------- */

static int load(wh_engine *e, const char *json, size_t len, wh__cfg_err *err)
{
    cJSON *root = wh__cfg_parse(json, len, err);
    if (!root) return err->status;
    doc d = {NULL, NULL, NULL, NULL, 0, 50, -1, -1, NULL, 0, 0, NULL,
             NULL, NULL, NULL, NULL, NULL, NULL, 0, WH_TRANSPORT_DEFAULT,
             0, NULL, NULL, 0};
    wh__cfg_ep *eps = NULL;
    size_t n_eps = 0;
    int *handles = NULL;
    int rc;
    if (!cJSON_IsObject(root)) {
        rc = wh__cfg_fail(err, WH_E_CONFIG, "config: expected an object with the key "
                          "\"endpoints\"");
        goto done;
    }
    if ((rc = wh__cfg_object(root, "config", &wh__cfg_root_table, &d, err)) != WH_OK)
        goto done;
    if (!d.endpoints && !d.webhooks) {
        rc = wh__cfg_fail(err, WH_E_CONFIG, "config: missing required key "
                          "\"endpoints\" (or \"webhooks\")");
        goto done;
    }
    if ((rc = network_check(e, &d, err)) != WH_OK) goto done;
    size_t n = (size_t)(d.endpoints ? cJSON_GetArraySize(d.endpoints) : 0) +
               (size_t)(d.webhooks ? cJSON_GetArraySize(d.webhooks) : 0);
    eps = wh__calloc(n ? n : 1, sizeof *eps);
    handles = wh__calloc(n ? n : 1, sizeof *handles);
    if (!eps || !handles) {
        rc = wh__cfg_fail(err, WH_E_NOMEM, "out of memory");
        goto done;
    }
    /* Pass 1: read and check every endpoint. */
    const char *secret_list[1] = {d.app_secret};
    for (int list = 0; list < 2; list++) {
        const cJSON *arr = list == 0 ? d.endpoints : d.webhooks;
        size_t i = 0;
        for (const cJSON *it = arr ? arr->child : NULL; it; it = it->next, i++) {
            wh__cfg_ep *p = &eps[n_eps++];
            wh_endpoint_options_init(&p->o);
            p->o.transport = d.transport;
            snprintf(p->where, sizeof p->where, "%s[%zu]",
                     list == 0 ? "endpoints" : "webhooks", i);
            if (list == 1) { /* Soketi defaults; the entry's keys override */
                p->o.preset = "pusher";
                p->o.body = WH_BODY_PUSHER;
                p->o.api_key = d.app_key;
                if (d.app_secret) {
                    p->o.secrets = secret_list;
                    p->o.n_secrets = 1;
                }
                if (d.batching) {
                    p->o.mode = WH_MODE_BATCH;
                    p->o.batch_linger_ms = d.batching_ms;
                }
            }
            if ((rc = wh__cfg_endpoint_parse(it, p, err)) != WH_OK) goto done;
            network_defaults(&d, p);
            if (d.https_only == 1 && strncmp(p->o.url, "https://", 8) != 0) {
                rc = wh__cfg_fail(err, WH_E_CONFIG, "%s.url: only https:// URLs are "
                                  "accepted (https_only)", p->where);
                goto done;
            }
            if ((rc = engine_check(e, p, err)) != WH_OK) goto done;
        }
    }
    if ((rc = check_duplicate_ids(eps, n_eps, err)) != WH_OK) goto done;

    /* Pass 2: add them; undo this call's additions if one fails. */
    for (size_t i = 0; i < n_eps; i++) {
        int h = wh_endpoint_add(e, &eps[i].o);
        if (h < 0) {
            rc = wh__cfg_fail(err, h, "%s: %s", eps[i].where, last_detail(e, h));
            while (i--) wh_endpoint_remove(e, handles[i]); /* this call's only */
            goto done;
        }
        handles[i] = h;
    }
    /* the engine-wide settings, once everything else succeeded */
    if ((rc = network_apply(e, &d, err)) != WH_OK) {
        for (size_t i = n_eps; i--;) wh_endpoint_remove(e, handles[i]);
        goto done;
    }
    rc = WH_OK;
    if (d.dedupe_window_ms || d.op_endpoint) {
        rc = wh__engine_configure(e, (int64_t)d.dedupe_window_ms, d.op_endpoint);
        if (rc != WH_OK) {
            rc = wh__cfg_fail(err, rc, "config: out of memory");
            for (size_t i = n_eps; i-- > 0;) wh_endpoint_remove(e, handles[i]);
        }
    }
done:
    free(d.ssrf_allow);
    if (d.app_secret) wh__cfg_wipe((char *)d.app_secret, strlen(d.app_secret));
    for (size_t i = 0; i < n_eps; i++) wh__cfg_endpoint_free(&eps[i]);
    free(eps);
    free(handles);
    cJSON_Delete(root);
    return rc;
}

int wh_config_load(wh_engine *e, const char *json, size_t len)
{
    if (!e) return WH_E_INVAL;
    if (!json) return wh__fail(e, WH_E_INVAL, "wh_config_load: json is NULL");
    wh__cfg_err err = {WH_OK, ""};
    int rc = load(e, json, len, &err);
    return rc == WH_OK ? WH_OK : wh__fail(e, rc, "%s", err.msg);
}

int wh_config_load_file(wh_engine *e, const char *path)
{
    if (!e) return WH_E_INVAL;
    if (!path) return wh__fail(e, WH_E_INVAL, "wh_config_load_file: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f)
        return wh__fail(e, WH_E_IO, "%s: cannot open: %s", path, strerror(errno));
    wh__cfg_err err = {WH_OK, ""};
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = WH_OK;
    for (;;) {
        if (len == cap) {
            if (cap > CFG_MAX_FILE_BYTES) {
                rc = wh__cfg_fail(&err, WH_E_TOO_LARGE, "larger than %zu bytes",
                                  CFG_MAX_FILE_BYTES);
                break;
            }
            size_t ncap = cap ? cap * 2 : 16384;
            if (ncap > CFG_MAX_FILE_BYTES + 1) ncap = CFG_MAX_FILE_BYTES + 1;
            char *nb = malloc(ncap);
            if (!nb) {
                rc = wh__cfg_fail(&err, WH_E_NOMEM, "out of memory");
                break;
            }
            if (buf) {
                memcpy(nb, buf, len);
                wh__cfg_wipe(buf, len);
                free(buf);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                rc = wh__cfg_fail(&err, WH_E_IO, "cannot read: %s", strerror(errno));
            break;
        }
    }
    fclose(f);
    if (rc == WH_OK) rc = load(e, buf ? buf : "", len, &err);
    if (buf) {
        wh__cfg_wipe(buf, len); /* the file may hold secrets */
        free(buf);
    }
    return rc == WH_OK ? WH_OK : wh__fail(e, rc, "%s: %s", path, err.msg);
}

int wh_config_queue_new(const char *json, size_t len, wh_log_fn on_log, void *log_user,
                        wh_queue **out, char *err_buf, size_t err_size)
{
    wh__cfg_err err = {WH_OK, ""};
    int rc = WH_OK;
    if (!out) {
        rc = wh__cfg_fail(&err, WH_E_INVAL, "wh_config_queue_new: out is NULL");
    } else {
        *out = NULL;
        if (!json) {
            rc = wh__cfg_fail(&err, WH_E_INVAL, "wh_config_queue_new: json is NULL");
        } else {
            cJSON *root = wh__cfg_parse(json, len, &err);
            const cJSON *item = cJSON_IsObject(root)
                                    ? cJSON_GetObjectItemCaseSensitive(root, "queue")
                                    : NULL;
            wh__cfg_queue q;
            if (!root) rc = err.status;
            else if (item && (rc = wh__cfg_queue_parse(item, &q, &err)) == WH_OK)
                rc = wh__cfg_queue_create(&q, on_log, log_user, out, &err);
            cJSON_Delete(root);
        }
    }
    if (err_buf && err_size) snprintf(err_buf, err_size, "%s", rc ? err.msg : "");
    return rc;
}
