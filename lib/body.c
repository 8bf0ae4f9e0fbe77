/* Request bodies: the payloads are copied in as emitted, never re-parsed.
 *
 *   raw       D
 *   standard  {"type":T,"timestamp":"2024-05-17T20:56:59.006Z","data":D}
 *   pusher    {"time_ms":N,"events":[E,...]}, each E shaped as Pusher documents
 *             its kind (pusher_kind below); other types
 *             {"name":T,"channel":C,"event":T,"data":D}
 *   batch     [item,item,...] of raw or standard items, or one pusher envelope
 *
 * Built contiguous (wh__body_build), or in pieces for a transport that
 * takes them (wh__body_build_pieces): the same bytes, from the same code,
 * the envelope text written to a fragment buffer and each payload of
 * WH__PIECE_MIN bytes or more (or its members, for Pusher's member kinds)
 * pointed to where the queue stores it instead of copied.
 *
 * Leaf: reads an endpoint's configuration, calls nothing of the library. */
#include "engine.h"

#include <cjson/cJSON.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Bytes needed for s as the inside of a JSON string (worst case 6 per byte:
 * \u00XX). */
static size_t esc_max(const char *s) { return s ? strlen(s) * 6 : 0; }

static char *esc(char *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            *o++ = '\\';
            switch (c) {
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
            }
        } else {
            *o++ = (char)c;
        }
    }
    return o;
}

/* Where a body goes: one buffer (pieces == NULL), or fragments in a buffer
 * between payloads left in place. */
typedef struct bb {
    wh_body_piece *pieces;     /* NULL: contiguous */
    size_t n;                  /* pieces written */
    const char *frag;          /* start of the fragment not yet a piece */
} bb;

/* n payload bytes at p: copied to o, or (pieces, n >= WH__PIECE_MIN) the
 * text since the last piece becomes one and the payload another. */
static char *payload(bb *b, char *o, const char *p, size_t n)
{
    if (!b->pieces || n < WH__PIECE_MIN) {
        memcpy(o, p, n);
        return o + n;
    }
    if (o > b->frag) {
        b->pieces[b->n].data = b->frag;
        b->pieces[b->n++].len = (size_t)(o - b->frag);
    }
    b->pieces[b->n].data = p;
    b->pieces[b->n++].len = n;
    b->frag = o;
    return o;
}

static char *put(char *o, const char *lit)
{
    size_t n = strlen(lit);
    memcpy(o, lit, n);
    return o + n;
}

/* RFC 3339 UTC with milliseconds, 24 characters. */
static char *rfc3339(char *o, int64_t wall_ms)
{
    time_t secs = (time_t)(wall_ms / 1000);
    int ms = (int)(wall_ms % 1000);
    if (ms < 0) ms += 1000, secs--;
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[40];
    int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ms);
    memcpy(o, buf, (size_t)n);
    return o + n;
}

/* Pusher's webhook events (pusher.com/docs/channels/server_api/webhooks):
 *   channel_occupied, channel_vacated, cache_miss  {"name","channel"}
 *   member_added, member_removed                   {"name","channel","user_id"}
 *   subscription_count            {"name","channel","subscription_count"}
 *   client_event  {"name","channel","event","data" (a string),"socket_id",
 *                  "user_id" (presence channels)}
 * The emitted data supplies the members after "channel": an object's
 * members are copied in (client_event: a "data" member that is not a
 * string is sent as its JSON text in a string); for member_* a non-object
 * payload is the user_id. */
enum { PK_OTHER, PK_PLAIN, PK_MEMBER, PK_CLIENT };

static int pusher_kind(const char *type)
{
    static const char *const plain[] = {"channel_occupied", "channel_vacated", "cache_miss",
                                        "subscription_count"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (strcmp(type, plain[i]) == 0) return PK_PLAIN;
    if (strcmp(type, "member_added") == 0 || strcmp(type, "member_removed") == 0)
        return PK_MEMBER;
    if (strcmp(type, "client_event") == 0) return PK_CLIENT;
    return PK_OTHER;
}

/* The members of a JSON object's text, without the braces and the
 * surrounding blanks ("" for {}), or NULL when d is not an object. */
static const char *object_inner(const char *d, size_t n, size_t *len)
{
    size_t a = 0, b = n;
    while (a < b && strchr(" \t\r\n", d[a])) a++;
    while (b > a && strchr(" \t\r\n", d[b - 1])) b--;
    if (b - a < 2 || d[a] != '{' || d[b - 1] != '}') return NULL;
    a++, b--;
    while (a < b && strchr(" \t\r\n", d[a])) a++;
    while (b > a && strchr(" \t\r\n", d[b - 1])) b--;
    *len = b - a;
    return d + a;
}

static size_t item_max(wh_body body, const wh_event_view *ev)
{
    if (body == WH_BODY_PUSHER && pusher_kind(ev->type) == PK_CLIENT)
        /* re-printed members (a number may grow ~3.4x) escaped into a
         * string (2x) */
        return 64 + esc_max(ev->type) + esc_max(ev->channel) + 12 * ev->data_len + 64;
    switch (body) {
    case WH_BODY_STANDARD:
        return 48 + esc_max(ev->type) + 40 + ev->data_len;
    case WH_BODY_PUSHER:
        return 64 + 2 * esc_max(ev->type) + esc_max(ev->channel) + ev->data_len;
    default:
        return ev->data_len;
    }
}

/* client_event: the data object's members, "data" as a string. */
static char *client_members(char *o, const wh_event_view *ev)
{
    cJSON *root = cJSON_ParseWithLength(ev->data, ev->data_len);
    for (const cJSON *m = cJSON_IsObject(root) ? root->child : NULL; m; m = m->next) {
        char *v = cJSON_PrintUnformatted(m);
        if (!v) continue;
        o = put(o, ",\"");
        o = esc(o, m->string);
        o = put(o, "\":");
        if (strcmp(m->string, "data") == 0 && !cJSON_IsString(m)) {
            *o++ = '"';
            o = esc(o, v);
            *o++ = '"';
        } else {
            o = put(o, v);
        }
        cJSON_free(v);
    }
    cJSON_Delete(root);
    return o;
}

static char *pusher_item(bb *b, char *o, const wh_event_view *ev, int kind)
{
    o = put(o, "{\"name\":\"");
    o = esc(o, ev->type);
    o = put(o, "\",\"channel\":");
    if (ev->channel) {
        *o++ = '"';
        o = esc(o, ev->channel);
        *o++ = '"';
    } else {
        o = put(o, "null");
    }
    size_t n;
    const char *inner = object_inner(ev->data, ev->data_len, &n);
    if (kind == PK_CLIENT) {
        o = client_members(o, ev);
    } else if (inner) {
        if (n) {
            *o++ = ',';
            o = payload(b, o, inner, n);
        }
    } else if (kind == PK_MEMBER) {
        o = put(o, ",\"user_id\":");
        o = payload(b, o, ev->data, ev->data_len);
    }
    *o++ = '}';
    return o;
}

static char *item(bb *b, char *o, wh_body body, const wh_event_view *ev)
{
    int kind = body == WH_BODY_PUSHER ? pusher_kind(ev->type) : PK_OTHER;
    if (kind != PK_OTHER) return pusher_item(b, o, ev, kind);
    switch (body) {
    case WH_BODY_STANDARD:
        o = put(o, "{\"type\":\"");
        o = esc(o, ev->type);
        o = put(o, "\",\"timestamp\":\"");
        o = rfc3339(o, ev->created_ms);
        o = put(o, "\",\"data\":");
        break;
    case WH_BODY_PUSHER:
        o = put(o, "{\"name\":\"");
        o = esc(o, ev->type);
        o = put(o, "\",\"channel\":");
        if (ev->channel) {
            *o++ = '"';
            o = esc(o, ev->channel);
            *o++ = '"';
        } else {
            o = put(o, "null");
        }
        o = put(o, ",\"event\":\"");
        o = esc(o, ev->type);
        o = put(o, "\",\"data\":");
        break;
    default:
        break;
    }
    o = payload(b, o, ev->data, ev->data_len);
    if (body != WH_BODY_RAW) *o++ = '}';
    return o;
}

size_t wh__body_max(const wh_ep_conf *ep, const wh_job *jobs, size_t n)
{
    size_t total = 64; /* envelope, brackets */
    for (size_t i = 0; i < n; i++) total += item_max(ep->body, &jobs[i].ev) + 1;
    return total;
}

size_t wh__body_frag_max(const wh_ep_conf *ep, const wh_job *jobs, size_t n)
{
    size_t total = 64;
    for (size_t i = 0; i < n; i++) {
        const wh_event_view *ev = &jobs[i].ev;
        total += item_max(ep->body, ev) + 1;
        /* the whole payload is a piece (the member kinds may pass a part
         * shorter than WH__PIECE_MIN: counted as copied) */
        if (ev->data_len >= WH__PIECE_MIN &&
            (ep->body != WH_BODY_PUSHER || pusher_kind(ev->type) == PK_OTHER))
            total -= ev->data_len;
    }
    return total;
}

static size_t build(bb *b, const wh_ep_conf *ep, const wh_job *jobs, size_t n,
                    int64_t wall_ms, char *out)
{
    char *o = out;
    if (ep->body == WH_BODY_PUSHER) {
        o += sprintf(o, "{\"time_ms\":%" PRId64 ",\"events\":[", wall_ms);
        for (size_t i = 0; i < n; i++) {
            if (i) *o++ = ',';
            o = item(b, o, WH_BODY_PUSHER, &jobs[i].ev);
        }
        o = put(o, "]}");
    } else if (ep->mode == WH_MODE_BATCH) {
        *o++ = '[';
        for (size_t i = 0; i < n; i++) {
            if (i) *o++ = ',';
            o = item(b, o, ep->body, &jobs[i].ev);
        }
        *o++ = ']';
    } else {
        o = item(b, o, ep->body, &jobs[0].ev);
    }
    *o = '\0';
    return (size_t)(o - out);
}

size_t wh__body_build(const wh_ep_conf *ep, const wh_job *jobs, size_t n,
                      int64_t wall_ms, char *out)
{
    bb b = {NULL, 0, out};
    return build(&b, ep, jobs, n, wall_ms, out);
}

size_t wh__body_build_pieces(const wh_ep_conf *ep, const wh_job *jobs, size_t n,
                             int64_t wall_ms, char *frag, wh_body_piece *pieces,
                             size_t *len)
{
    bb b = {pieces, 0, frag};
    size_t text = build(&b, ep, jobs, n, wall_ms, frag);
    const char *end = frag + text;
    if (end > b.frag) {
        pieces[b.n].data = b.frag;
        pieces[b.n++].len = (size_t)(end - b.frag);
    }
    size_t total = 0;
    for (size_t i = 0; i < b.n; i++) total += pieces[i].len;
    *len = total;
    return b.n;
}
