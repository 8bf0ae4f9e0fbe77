/* Operational events (lib/opevents.c): which outcomes and health changes
 * become events, their JSON (parsed back with cJSON), and the
 * webhook-delivery response header tokens. */
#include "harness.h"
#include "opevents.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static wh_outcome outcome(wh_outcome_kind kind, uint32_t attempt, int status, int error)
{
    wh_outcome o;
    memset(&o, 0, sizeof o);
    o.kind = kind;
    o.attempt = attempt;
    o.http_status = status;
    o.error = error;
    o.endpoint_id = "billing";
    o.ev.id = "evt_42";
    o.ev.type = "invoice.paid";
    o.ev.channel = "acct-7";
    o.error_msg = "HTTP 503";
    return o;
}

static void test_outcome_events(void)
{
    const int64_t wall = 1700000000123;
    const char *type;
    wh_outcome o = outcome(WH_DEAD, 5, 503, WH_E_HTTP_STATUS);
    char *s = wh__opevent_outcome(&o, wall, &type);
    CHECK(s);
    CHECK_STR(type, "message.attempt.exhausted");
    cJSON *j = cJSON_Parse(s);
    CHECK(j);
    CHECK_STR(cJSON_GetObjectItem(j, "endpoint_id")->valuestring, "billing");
    CHECK_STR(cJSON_GetObjectItem(j, "message_id")->valuestring, "evt_42");
    CHECK_STR(cJSON_GetObjectItem(j, "event_type")->valuestring, "invoice.paid");
    CHECK_STR(cJSON_GetObjectItem(j, "channel")->valuestring, "acct-7");
    CHECK_EQ(cJSON_GetObjectItem(j, "attempts")->valueint, 5);
    CHECK_EQ(cJSON_GetObjectItem(j, "http_status")->valueint, 503);
    CHECK_STR(cJSON_GetObjectItem(j, "error")->valuestring, "WH_E_HTTP_STATUS");
    CHECK_STR(cJSON_GetObjectItem(j, "timestamp")->valuestring, "2023-11-14T22:13:20.123Z");
    cJSON_Delete(j);
    free(s);
    /* the 4th failed attempt, once */
    o = outcome(WH_RETRY, 4, 0, WH_E_CONNECT);
    o.ev.channel = NULL;
    s = wh__opevent_outcome(&o, wall, &type);
    CHECK(s);
    CHECK_STR(type, "message.attempt.failing");
    j = cJSON_Parse(s);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "channel")));
    cJSON_Delete(j);
    free(s);
    for (uint32_t a = 1; a < 10; a++) {
        if (a == 4) continue;
        o = outcome(WH_RETRY, a, 500, WH_E_HTTP_STATUS);
        CHECK(wh__opevent_outcome(&o, wall, &type) == NULL);
        CHECK(type == NULL);
    }
    o = outcome(WH_DELIVERED, 4, 200, WH_OK);
    CHECK(wh__opevent_outcome(&o, wall, &type) == NULL);
    o = outcome(WH_DEAD, 0, 0, WH_E_CANCELLED);       /* cancelled: no event */
    CHECK(wh__opevent_outcome(&o, wall, &type) == NULL);
}

static void test_health_events(void)
{
    wh_health h;
    memset(&h, 0, sizeof h);
    h.endpoint_id = "billing";
    h.reason = "HTTP 410 Gone";
    h.http_status = 410;
    h.consecutive_failures = 1;
    h.state = WH_EP_DISABLED;
    h.previous = WH_EP_ACTIVE;
    const char *type;
    char *s = wh__opevent_health(&h, 0, &type);
    CHECK(s);
    CHECK_STR(type, "endpoint.disabled");
    cJSON *j = cJSON_Parse(s);
    CHECK_STR(cJSON_GetObjectItem(j, "state")->valuestring, "disabled");
    CHECK_STR(cJSON_GetObjectItem(j, "previous")->valuestring, "active");
    CHECK_STR(cJSON_GetObjectItem(j, "reason")->valuestring, "HTTP 410 Gone");
    CHECK_EQ(cJSON_GetObjectItem(j, "http_status")->valueint, 410);
    CHECK_STR(cJSON_GetObjectItem(j, "timestamp")->valuestring, "1970-01-01T00:00:00.000Z");
    cJSON_Delete(j);
    free(s);
    h.state = WH_EP_ACTIVE;
    h.previous = WH_EP_PROBING;
    s = wh__opevent_health(&h, 0, &type);
    CHECK(s);
    CHECK_STR(type, "endpoint.recovered");
    free(s);
    h.state = WH_EP_PAUSED;
    h.previous = WH_EP_ACTIVE;
    CHECK(wh__opevent_health(&h, 0, &type) == NULL);
    h.state = WH_EP_PROBING;
    h.previous = WH_EP_PAUSED;
    CHECK(wh__opevent_health(&h, 0, &type) == NULL);
}

static void test_delivery_control_header(void)
{
    CHECK_EQ(wh__delivery_control(NULL), 0);
    CHECK_EQ(wh__delivery_control(""), 0);
    CHECK_EQ(wh__delivery_control("disable"), WH__CTL_DISABLE);
    CHECK_EQ(wh__delivery_control(" Disable "), WH__CTL_DISABLE);
    CHECK_EQ(wh__delivery_control("abort-message"), WH__CTL_ABORT);
    CHECK_EQ(wh__delivery_control("ABORT-MESSAGE"), WH__CTL_ABORT);
    CHECK_EQ(wh__delivery_control("abort-message, disable"),
             WH__CTL_ABORT | WH__CTL_DISABLE);
    CHECK_EQ(wh__delivery_control("disabled"), 0);
    CHECK_EQ(wh__delivery_control("dis able"), 0);
    CHECK_EQ(wh__delivery_control("abort"), 0);
    CHECK_EQ(wh__delivery_control(",,disable,,"), WH__CTL_DISABLE);
}

TH_MAIN(TH_CASE(test_outcome_events), TH_CASE(test_health_events),
        TH_CASE(test_delivery_control_header))
