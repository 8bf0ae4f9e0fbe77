/* Request bodies: the payloads are copied in as emitted, never re-parsed.
 *
 *   raw       D
 *   standard  {"type":T,"timestamp":"2024-05-17T20:56:59.006Z","data":D}
 *   pusher    {"time_ms":N,"events":[{"name":T,"channel":C,"event":T,"data":D},...]}
 *   batch     [item,item,...] of raw or standard items, or one pusher envelope
 *
 * Leaf: reads an endpoint's configuration, calls nothing of the library. */
#include "engine.h"

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

static size_t item_max(wh_body body, const wh_event_view *ev)
{
    switch (body) {
    case WH_BODY_STANDARD:
        return 48 + esc_max(ev->type) + 40 + ev->data_len;
    case WH_BODY_PUSHER:
        return 64 + 2 * esc_max(ev->type) + esc_max(ev->channel) + ev->data_len;
    default:
        return ev->data_len;
    }
}

static char *item(char *o, wh_body body, const wh_event_view *ev)
{
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
    memcpy(o, ev->data, ev->data_len);
    o += ev->data_len;
    if (body != WH_BODY_RAW) *o++ = '}';
    return o;
}

size_t wh__body_max(const wh_ep_conf *ep, const wh_job *jobs, size_t n)
{
    size_t total = 64; /* envelope, brackets */
    for (size_t i = 0; i < n; i++) total += item_max(ep->body, &jobs[i].ev) + 1;
    return total;
}

size_t wh__body_build(const wh_ep_conf *ep, const wh_job *jobs, size_t n,
                      int64_t wall_ms, char *out)
{
    char *o = out;
    if (ep->body == WH_BODY_PUSHER) {
        o += sprintf(o, "{\"time_ms\":%" PRId64 ",\"events\":[", wall_ms);
        for (size_t i = 0; i < n; i++) {
            if (i) *o++ = ',';
            o = item(o, WH_BODY_PUSHER, &jobs[i].ev);
        }
        o = put(o, "]}");
    } else if (ep->mode == WH_MODE_BATCH) {
        *o++ = '[';
        for (size_t i = 0; i < n; i++) {
            if (i) *o++ = ',';
            o = item(o, ep->body, &jobs[i].ev);
        }
        *o++ = ']';
    } else {
        o = item(o, ep->body, &jobs[0].ev);
    }
    *o = '\0';
    return (size_t)(o - out);
}
