/* Operational events as JSON, and the webhook-delivery response header (see
 * opevents.h). */
#include "opevents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

static const char *const state_names[] = {"active", "paused", "probing", "disabled"};

static const char *state_name(wh_ep_state s)
{
    return (unsigned)s < 4 ? state_names[s] : "unknown";
}

/* RFC 3339 UTC with milliseconds. */
static void iso_time(int64_t wall_ms, char out[32])
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(wall_ms % 1000));
}

static char *finish(cJSON *o, int ok)
{
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

char *wh__opevent_outcome(const wh_outcome *o, int64_t wall_ms, const char **type)
{
    *type = NULL;
    const char *t;
    if (o->kind == WH_DEAD && o->error != WH_E_CANCELLED)
        t = "message.attempt.exhausted";
    else if (o->kind == WH_RETRY && o->attempt == WH__OPEVENT_FAILING_ATTEMPT)
        t = "message.attempt.failing";
    else
        return NULL;
    char ts[32];
    iso_time(wall_ms, ts);
    cJSON *j = cJSON_CreateObject();
    int ok = j &&
             cJSON_AddStringToObject(j, "endpoint_id", o->endpoint_id ? o->endpoint_id : "") &&
             cJSON_AddStringToObject(j, "message_id", o->ev.id ? o->ev.id : "") &&
             cJSON_AddStringToObject(j, "event_type", o->ev.type ? o->ev.type : "") &&
             (o->ev.channel ? cJSON_AddStringToObject(j, "channel", o->ev.channel) != NULL
                            : cJSON_AddNullToObject(j, "channel") != NULL) &&
             cJSON_AddNumberToObject(j, "attempts", o->attempt) &&
             cJSON_AddNumberToObject(j, "http_status", o->http_status) &&
             cJSON_AddStringToObject(j, "error", wh_status_name(o->error)) &&
             cJSON_AddStringToObject(j, "error_msg", o->error_msg ? o->error_msg : "") &&
             cJSON_AddStringToObject(j, "timestamp", ts);
    char *s = finish(j, ok);
    if (s) *type = t;
    return s;
}

char *wh__opevent_health(const wh_health *h, int64_t wall_ms, const char **type)
{
    *type = NULL;
    const char *t;
    if (h->state == WH_EP_DISABLED && h->previous != WH_EP_DISABLED)
        t = "endpoint.disabled";
    else if (h->state == WH_EP_ACTIVE && h->previous != WH_EP_ACTIVE)
        t = "endpoint.recovered";
    else
        return NULL;
    char ts[32];
    iso_time(wall_ms, ts);
    cJSON *j = cJSON_CreateObject();
    int ok = j &&
             cJSON_AddStringToObject(j, "endpoint_id", h->endpoint_id ? h->endpoint_id : "") &&
             cJSON_AddStringToObject(j, "state", state_name(h->state)) &&
             cJSON_AddStringToObject(j, "previous", state_name(h->previous)) &&
             cJSON_AddStringToObject(j, "reason", h->reason ? h->reason : "") &&
             cJSON_AddNumberToObject(j, "http_status", h->http_status) &&
             cJSON_AddNumberToObject(j, "consecutive_failures", h->consecutive_failures) &&
             cJSON_AddStringToObject(j, "timestamp", ts);
    char *s = finish(j, ok);
    if (s) *type = t;
    return s;
}

unsigned wh__delivery_control(const char *value)
{
    unsigned bits = 0;
    if (!value) return 0;
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        const char *start = p;
        while (*p && *p != ',') p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
        size_t n = (size_t)(end - start);
        if (n == 7 && strncasecmp(start, "disable", 7) == 0) bits |= WH__CTL_DISABLE;
        else if (n == 13 && strncasecmp(start, "abort-message", 13) == 0)
            bits |= WH__CTL_ABORT;
    }
    return bits;
}
