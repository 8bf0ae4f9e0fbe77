/* Payload filters (internal): Convoy-style conditions on an event's JSON
 * payload, compiled once (at endpoint add) into a flat program and matched
 * against a payload parsed at most once per emit.
 *
 * A filter is a JSON object.  Each key is a path or a combinator:
 *   "data"            the whole payload, as emitted;
 *   "data.a.b"        payload["a"]["b"]; a segment of digits indexes an array
 *                     ("data.items.0.sku");
 *   "$and" / "$or"    an array of filter objects (at least one).
 * Several keys in one object must all hold.  Each path's value is either a
 * literal (shorthand for $eq) or an object of operators, all of which must
 * hold:
 *   $eq $neq        JSON equality (numbers by value); $neq also holds when
 *                   the field is missing;
 *   $gt $gte $lt $lte  numbers by value, or strings byte-wise, against a
 *                   number or string operand; other types never match;
 *   $in $nin        operand is an array: equal to one element / to none
 *                   ($nin also holds when the field is missing);
 *   $exist          operand true: the field is present (null counts),
 *                   false: absent;
 *   $regex          operand is a POSIX extended regular expression
 *                   (regcomp REG_EXTENDED, unanchored); matches strings only.
 * A payload that is not valid JSON matches no filter. */
#ifndef WH_FILTER_H
#define WH_FILTER_H

#include <stddef.h>

struct cJSON;

typedef struct wh__filter wh__filter;

/* Compile `obj` (a cJSON object).  When skip_other_keys is set, top-level
 * keys that are neither paths ("data", "data.…") nor "$and"/"$or" are left
 * to the caller (the channel keys of a JSON "filter" object); otherwise they
 * are errors.  *out is NULL when obj holds no payload condition.
 * Returns 0, WH_E_CONFIG (why: a message naming the path and the operator,
 * e.g. "\"data.amount\": unknown operator \"$gtx\"") or WH_E_NOMEM. */
int wh__filter_compile(const struct cJSON *obj, int skip_other_keys,
                       wh__filter **out, char *why, size_t why_size);
/* Same from JSON text; WH_E_JSON when it is not a JSON object. */
int wh__filter_compile_json(const char *json, size_t len, wh__filter **out,
                            char *why, size_t why_size);
void wh__filter_free(wh__filter *f);      /* NULL ok */
/* Number of instructions (for tests and sizing). */
size_t wh__filter_size(const wh__filter *f);

/* A payload shared by the candidate endpoints of one emit: parsed on the
 * first filter that needs it, never when no endpoint has a filter. */
typedef struct wh__payload {
    const char *data;
    size_t len;
    struct cJSON *root;  /* parsed payload, NULL before parsing / if invalid */
    int state;           /* 0 not parsed, 1 parsed, -1 not valid JSON */
} wh__payload;

void wh__payload_init(wh__payload *p, const char *data, size_t len);
void wh__payload_done(wh__payload *p);
/* 1 when the payload satisfies the filter (a NULL filter always matches),
 * 0 when not. */
int wh__filter_match(const wh__filter *f, wh__payload *p);
/* How many times payloads were parsed by this process (tests, bench). */
unsigned long wh__payload_parse_count(void);

#endif /* WH_FILTER_H */
