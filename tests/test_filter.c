/* Payload filters (lib/filter.c): every operator, paths into objects and
 * arrays, $and/$or, the shorthand literal, the error messages (operator and
 * path named), and the lazily parsed payload shared by several filters. */
#include "harness.h"
#include "filter.h"
#include "internal.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

static const char *const PAYLOAD =
    "{\"amount\": 150, \"currency\": \"EUR\", \"ok\": true, \"none\": null,"
    " \"customer\": {\"name\": \"Ada Lovelace\", \"tier\": \"gold\", \"age\": 36},"
    " \"items\": [{\"sku\": \"A-1\", \"qty\": 2}, {\"sku\": \"B-7\", \"qty\": 1}],"
    " \"tags\": [\"x\", \"y\"], \"ratio\": 0.25}";

static wh__filter *compile(const char *json)
{
    wh__filter *f = NULL;
    char why[256];
    int rc = wh__filter_compile_json(json, strlen(json), &f, why, sizeof why);
    if (rc != WH_OK) th_fail(__FILE__, __LINE__, "compile %s: %d %s", json, rc, why);
    CHECK(f);
    return f;
}

/* 1/0: does the filter match PAYLOAD (or `payload` when given). */
static int match_on(const char *filter, const char *payload)
{
    wh__filter *f = compile(filter);
    wh__payload p;
    wh__payload_init(&p, payload, strlen(payload));
    int r = wh__filter_match(f, &p);
    wh__payload_done(&p);
    wh__filter_free(f);
    return r;
}
static int match(const char *filter) { return match_on(filter, PAYLOAD); }

/* The status and message of a filter that must not compile. */
static void refuse(const char *filter, int want_rc, const char *want_in_why)
{
    wh__filter *f = (wh__filter *)1;
    char why[256] = "";
    int rc = wh__filter_compile_json(filter, strlen(filter), &f, why, sizeof why);
    if (rc != want_rc || f != NULL || !strstr(why, want_in_why))
        th_fail(__FILE__, __LINE__, "%s: rc %d (want %d), why \"%s\" (want \"%s\")",
                filter, rc, want_rc, why, want_in_why);
}

static void test_eq_neq(void)
{
    CHECK_EQ(match("{\"data.amount\": {\"$eq\": 150}}"), 1);
    CHECK_EQ(match("{\"data.amount\": {\"$eq\": 150.0}}"), 1);   /* by value */
    CHECK_EQ(match("{\"data.amount\": {\"$eq\": 151}}"), 0);
    CHECK_EQ(match("{\"data.amount\": {\"$eq\": \"150\"}}"), 0); /* types differ */
    CHECK_EQ(match("{\"data.currency\": \"EUR\"}"), 1);          /* shorthand */
    CHECK_EQ(match("{\"data.currency\": \"eur\"}"), 0);
    CHECK_EQ(match("{\"data.ok\": true}"), 1);
    CHECK_EQ(match("{\"data.ok\": false}"), 0);
    CHECK_EQ(match("{\"data.none\": null}"), 1);
    CHECK_EQ(match("{\"data.tags\": [\"x\", \"y\"]}"), 1);
    CHECK_EQ(match("{\"data.tags\": [\"y\", \"x\"]}"), 0);
    CHECK_EQ(match("{\"data.customer\": {\"$eq\": {\"name\": \"Ada Lovelace\", "
                   "\"tier\": \"gold\", \"age\": 36}}}"), 1);
    CHECK_EQ(match("{\"data.missing\": {\"$eq\": 1}}"), 0);
    CHECK_EQ(match("{\"data.amount\": {\"$neq\": 151}}"), 1);
    CHECK_EQ(match("{\"data.amount\": {\"$neq\": 150}}"), 0);
    CHECK_EQ(match("{\"data.missing\": {\"$neq\": 1}}"), 1);     /* absent */
}

static void test_order(void)
{
    CHECK_EQ(match("{\"data.amount\": {\"$gt\": 100}}"), 1);
    CHECK_EQ(match("{\"data.amount\": {\"$gt\": 150}}"), 0);
    CHECK_EQ(match("{\"data.amount\": {\"$gte\": 150}}"), 1);
    CHECK_EQ(match("{\"data.amount\": {\"$gte\": 150.5}}"), 0);
    CHECK_EQ(match("{\"data.amount\": {\"$lt\": 150}}"), 0);
    CHECK_EQ(match("{\"data.amount\": {\"$lt\": 1e3}}"), 1);
    CHECK_EQ(match("{\"data.amount\": {\"$lte\": 150}}"), 1);
    CHECK_EQ(match("{\"data.ratio\": {\"$lt\": 0.5, \"$gt\": 0.2}}"), 1); /* range */
    CHECK_EQ(match("{\"data.ratio\": {\"$lt\": 0.5, \"$gt\": 0.3}}"), 0);
    CHECK_EQ(match("{\"data.currency\": {\"$gt\": \"DKK\"}}"), 1);   /* strings */
    CHECK_EQ(match("{\"data.currency\": {\"$lte\": \"EUA\"}}"), 0);
    CHECK_EQ(match("{\"data.currency\": {\"$gt\": 1}}"), 0);         /* mixed types */
    CHECK_EQ(match("{\"data.missing\": {\"$lt\": 1}}"), 0);
}

static void test_in_nin(void)
{
    CHECK_EQ(match("{\"data.currency\": {\"$in\": [\"USD\", \"EUR\"]}}"), 1);
    CHECK_EQ(match("{\"data.currency\": {\"$in\": [\"USD\", \"GBP\"]}}"), 0);
    CHECK_EQ(match("{\"data.amount\": {\"$in\": [1, 150]}}"), 1);
    CHECK_EQ(match("{\"data.amount\": {\"$in\": []}}"), 0);
    CHECK_EQ(match("{\"data.currency\": {\"$nin\": [\"USD\", \"GBP\"]}}"), 1);
    CHECK_EQ(match("{\"data.currency\": {\"$nin\": [\"EUR\"]}}"), 0);
    CHECK_EQ(match("{\"data.missing\": {\"$nin\": [\"EUR\"]}}"), 1);
    CHECK_EQ(match("{\"data.missing\": {\"$in\": [null]}}"), 0);
}

static void test_exist(void)
{
    CHECK_EQ(match("{\"data.customer.tier\": {\"$exist\": true}}"), 1);
    CHECK_EQ(match("{\"data.customer.email\": {\"$exist\": true}}"), 0);
    CHECK_EQ(match("{\"data.customer.email\": {\"$exist\": false}}"), 1);
    CHECK_EQ(match("{\"data.none\": {\"$exist\": true}}"), 1);       /* null counts */
    CHECK_EQ(match("{\"data\": {\"$exist\": true}}"), 1);            /* the root */
    CHECK_EQ(match("{\"data.amount.x\": {\"$exist\": true}}"), 0);   /* through a number */
}

static void test_regex(void)
{
    CHECK_EQ(match("{\"data.customer.name\": {\"$regex\": \"^Ada\"}}"), 1);
    CHECK_EQ(match("{\"data.customer.name\": {\"$regex\": \"Love\"}}"), 1); /* unanchored */
    CHECK_EQ(match("{\"data.customer.name\": {\"$regex\": \"^Love\"}}"), 0);
    CHECK_EQ(match("{\"data.items.1.sku\": {\"$regex\": \"^[A-Z]-[0-9]+$\"}}"), 1);
    CHECK_EQ(match("{\"data.amount\": {\"$regex\": \"150\"}}"), 0); /* strings only */
    CHECK_EQ(match("{\"data.customer.tier\": {\"$regex\": \"(gold|platinum)\"}}"), 1);
}

static void test_paths_and_arrays(void)
{
    CHECK_EQ(match("{\"data.customer.age\": {\"$gte\": 18}}"), 1);
    CHECK_EQ(match("{\"data.items.0.sku\": \"A-1\"}"), 1);
    CHECK_EQ(match("{\"data.items.1.qty\": 1}"), 1);
    CHECK_EQ(match("{\"data.items.2.qty\": {\"$exist\": true}}"), 0); /* out of range */
    CHECK_EQ(match("{\"data.tags.0\": \"x\"}"), 1);
    CHECK_EQ(match("{\"data.customer.0\": {\"$exist\": true}}"), 0);  /* object, key "0" */
    CHECK_EQ(match_on("{\"data.0\": 5}", "{\"0\": 5}"), 1);            /* digits as a key */
    CHECK_EQ(match_on("{\"data.1\": 7}", "[6, 7]"), 1);                /* array root */
    CHECK_EQ(match_on("{\"data\": 42}", "42"), 1);
}

static void test_and_or(void)
{
    /* several keys: all must hold */
    CHECK_EQ(match("{\"data.amount\": {\"$gt\": 100}, \"data.currency\": \"EUR\"}"), 1);
    CHECK_EQ(match("{\"data.amount\": {\"$gt\": 100}, \"data.currency\": \"USD\"}"), 0);
    CHECK_EQ(match("{\"$or\": [{\"data.currency\": \"USD\"}, {\"data.amount\": 150}]}"), 1);
    CHECK_EQ(match("{\"$or\": [{\"data.currency\": \"USD\"}, {\"data.amount\": 1}]}"), 0);
    CHECK_EQ(match("{\"$and\": [{\"data.currency\": \"EUR\"}, {\"data.amount\": 150}]}"), 1);
    CHECK_EQ(match("{\"$and\": [{\"data.currency\": \"EUR\"}, {\"data.amount\": 1}]}"), 0);
    /* nested: (tier gold and age >= 30) or amount > 1000 */
    const char *nested =
        "{\"$or\": [{\"$and\": [{\"data.customer.tier\": \"gold\"},"
        " {\"data.customer.age\": {\"$gte\": 30}}]}, {\"data.amount\": {\"$gt\": 1000}}],"
        " \"data.ok\": true}";
    CHECK_EQ(match(nested), 1);
    CHECK_EQ(match_on(nested, "{\"customer\": {\"tier\": \"gold\", \"age\": 20}, "
                              "\"amount\": 5, \"ok\": true}"), 0);
    CHECK_EQ(match_on(nested, "{\"customer\": {\"tier\": \"gold\", \"age\": 20}, "
                              "\"amount\": 5000, \"ok\": true}"), 1);
    CHECK_EQ(match_on(nested, "{\"amount\": 5000, \"ok\": false}"), 0);
}

static void test_errors_name_operator_and_path(void)
{
    refuse("{\"data.amount\": {\"$gtx\": 1}}", WH_E_CONFIG,
           "\"data.amount\": unknown operator \"$gtx\"");
    refuse("{\"data.amount\": {\"$in\": 1}}", WH_E_CONFIG,
           "\"data.amount\": $in needs an array");
    refuse("{\"data.amount\": {\"$nin\": \"x\"}}", WH_E_CONFIG,
           "\"data.amount\": $nin needs an array");
    refuse("{\"data.amount\": {\"$gt\": [1]}}", WH_E_CONFIG,
           "\"data.amount\": $gt needs a number or a string");
    refuse("{\"data.amount\": {\"$lte\": null}}", WH_E_CONFIG, "$lte needs");
    refuse("{\"data.x\": {\"$exist\": 1}}", WH_E_CONFIG,
           "\"data.x\": $exist needs true or false");
    refuse("{\"data.x\": {\"$regex\": 5}}", WH_E_CONFIG, "\"data.x\": $regex needs a string");
    refuse("{\"data.x\": {\"$regex\": \"a(\"}}", WH_E_CONFIG, "\"data.x\": $regex \"a(\":");
    refuse("{\"data.x\": {\"$eq\": 1, \"y\": 2}}", WH_E_CONFIG,
           "\"data.x\": mixes operators and fields");
    refuse("{\"amount\": 1}", WH_E_CONFIG, "\"amount\": a payload path starts with \"data.\"");
    refuse("{\"data..x\": 1}", WH_E_CONFIG, "\"data..x\": empty path segment");
    refuse("{\"data.x.\": 1}", WH_E_CONFIG, "\"data.x.\": empty path segment");
    refuse("{\"$not\": []}", WH_E_CONFIG, "\"$not\": unknown combinator");
    refuse("{\"$or\": []}", WH_E_CONFIG, "\"$or\": expected a non-empty array");
    refuse("{\"$and\": {}}", WH_E_CONFIG, "\"$and\": expected a non-empty array");
    refuse("{\"$or\": [1]}", WH_E_CONFIG, "\"$or\"[0]: expected a filter object");
    refuse("{\"$or\": [{}]}", WH_E_CONFIG, "\"$or\"[0]: an empty filter object");
    refuse("{\"$or\": [{\"data.a\": {\"$bad\": 1}}]}", WH_E_CONFIG,
           "\"data.a\": unknown operator \"$bad\"");
    refuse("[1]", WH_E_JSON, "not a JSON object");
    refuse("{\"data.a\": ", WH_E_JSON, "not a JSON object");
    /* an operator list in the message */
    refuse("{\"data.a\": {\"$exists\": true}}", WH_E_CONFIG, "$exist $regex");
}

static void test_nesting_bounded(void)
{
    char buf[4096];
    size_t o = 0;
    for (int i = 0; i < 40; i++) o += (size_t)snprintf(buf + o, sizeof buf - o, "{\"$or\": [");
    o += (size_t)snprintf(buf + o, sizeof buf - o, "{\"data.a\": 1}");
    for (int i = 0; i < 40; i++) o += (size_t)snprintf(buf + o, sizeof buf - o, "]}");
    refuse(buf, WH_E_CONFIG, "nested deeper than 32");
}

static void test_skip_other_keys_and_empty(void)
{
    /* a JSON config "filter" object: channel keys are left to the caller */
    cJSON *obj = cJSON_Parse("{\"channel_name_starts_with\": \"room-\","
                             " \"data.amount\": {\"$gt\": 100}}");
    CHECK(obj);
    wh__filter *f = NULL;
    char why[128];
    CHECK_EQ(wh__filter_compile(obj, 1, &f, why, sizeof why), WH_OK);
    CHECK(f);
    wh__payload p;
    wh__payload_init(&p, PAYLOAD, strlen(PAYLOAD));
    CHECK_EQ(wh__filter_match(f, &p), 1);
    wh__payload_done(&p);
    wh__filter_free(f);
    /* not skipped: named */
    CHECK_EQ(wh__filter_compile(obj, 0, &f, why, sizeof why), WH_E_CONFIG);
    CHECK(strstr(why, "\"channel_name_starts_with\": a payload path"));
    cJSON_Delete(obj);
    /* channel keys only: no payload filter at all */
    obj = cJSON_Parse("{\"channel_name_starts_with\": \"room-\"}");
    f = (wh__filter *)1;
    CHECK_EQ(wh__filter_compile(obj, 1, &f, why, sizeof why), WH_OK);
    CHECK(f == NULL);
    cJSON_Delete(obj);
    /* the NULL filter matches everything and parses nothing */
    unsigned long before = wh__payload_parse_count();
    wh__payload_init(&p, "not json", 8);
    CHECK_EQ(wh__filter_match(NULL, &p), 1);
    CHECK_EQ(wh__payload_parse_count(), before);
    wh__payload_done(&p);
}

static void test_payload_parsed_once_shared(void)
{
    wh__filter *f[3] = {compile("{\"data.amount\": {\"$gt\": 100}}"),
                        compile("{\"data.currency\": \"USD\"}"),
                        compile("{\"data.items.0.qty\": {\"$gte\": 2}}")};
    unsigned long before = wh__payload_parse_count();
    wh__payload p;
    wh__payload_init(&p, PAYLOAD, strlen(PAYLOAD));
    CHECK_EQ(wh__payload_parse_count(), before); /* lazily */
    CHECK_EQ(wh__filter_match(f[0], &p), 1);
    CHECK_EQ(wh__filter_match(f[1], &p), 0);
    CHECK_EQ(wh__filter_match(f[2], &p), 1);
    CHECK_EQ(wh__payload_parse_count(), before + 1);
    wh__payload_done(&p);
    /* a payload that is not JSON matches no filter, and is parsed once */
    wh__payload_init(&p, "{\"amount\": ", 11);
    CHECK_EQ(wh__filter_match(f[0], &p), 0);
    CHECK_EQ(wh__filter_match(f[1], &p), 0);
    CHECK_EQ(wh__payload_parse_count(), before + 2);
    wh__payload_done(&p);
    for (int i = 0; i < 3; i++) wh__filter_free(f[i]);
}

static void test_program_is_compact(void)
{
    /* AND(root) + AND(path ops) + GT + LT, and AND(root) + EQ */
    wh__filter *f = compile("{\"data.a\": {\"$gt\": 1, \"$lt\": 5}}");
    CHECK_EQ(wh__filter_size(f), 4);
    wh__filter_free(f);
    f = compile("{\"data.a\": 1}");
    CHECK_EQ(wh__filter_size(f), 2);
    wh__filter_free(f);
}

TH_MAIN(TH_CASE(test_eq_neq), TH_CASE(test_order), TH_CASE(test_in_nin),
        TH_CASE(test_exist), TH_CASE(test_regex), TH_CASE(test_paths_and_arrays),
        TH_CASE(test_and_or), TH_CASE(test_errors_name_operator_and_path),
        TH_CASE(test_nesting_bounded), TH_CASE(test_skip_other_keys_and_empty),
        TH_CASE(test_payload_parsed_once_shared), TH_CASE(test_program_is_compact))
