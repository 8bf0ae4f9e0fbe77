/* HTTP-date (RFC 9110 section 5.6.7) and Retry-After (section 10.2.3).
 *
 * A recipient must accept all three formats:
 *   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"
 *   RFC 850      "Sunday, 06-Nov-94 08:49:37 GMT"  (two-digit year)
 *   asctime      "Sun Nov  6 08:49:37 1994"         (day padded with a space)
 * Every field has its exact number of digits (no sign, no spaces inside),
 * names are case-sensitive, and the day must exist in its month ("31 Feb"
 * is refused).  Nothing here allocates. */
#include "internal.h"

#include <string.h>

static const char *const wday_short[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const wday_long[7] = {"Monday", "Tuesday", "Wednesday", "Thursday",
                                         "Friday", "Saturday", "Sunday"};
static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

typedef struct cur {
    const char *p, *end;
} cur;

static int lit(cur *c, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0) return 0;
    c->p += n;
    return 1;
}

/* exactly n digits */
static int num(cur *c, int n, int *out)
{
    if (c->end - c->p < n) return 0;
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = c->p[i];
        if (ch < '0' || ch > '9') return 0;
        v = v * 10 + (ch - '0');
    }
    c->p += n;
    *out = v;
    return 1;
}

static int month(cur *c, int *out)
{
    if (c->end - c->p < 3) return 0;
    for (int i = 0; i < 12; i++)
        if (memcmp(c->p, months + 3 * i, 3) == 0) {
            c->p += 3;
            *out = i + 1;
            return 1;
        }
    return 0;
}

static int wday(cur *c, const char *const *names)
{
    for (int i = 0; i < 7; i++)
        if (lit(c, names[i])) return 1;
    return 0;
}

/* "HH:MM:SS" */
static int hms(cur *c, int *h, int *m, int *s)
{
    return num(c, 2, h) && lit(c, ":") && num(c, 2, m) && lit(c, ":") && num(c, 2, s);
}

static int leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int mdays(int64_t y, int m)
{
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : d[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The year of Unix time t (seconds). */
static int64_t year_of(int64_t t)
{
    int64_t days = t / 86400 - (t % 86400 < 0);
    int64_t y = 1970 + days / 366;
    while (days_from_civil(y + 1, 1, 1) <= days) y++;
    while (days_from_civil(y, 1, 1) > days) y--;
    return y;
}

int wh__http_date_parse(const char *s, size_t n, int64_t now_s, int64_t *out)
{
    if (!s || !out) return 0;
    cur c = {s, s + n};
    int day = 0, mon = 0, year = 0, hh = 0, mm = 0, ss = 0;
    int64_t y;
    cur save = c;
    if (wday(&c, wday_short) && lit(&c, ", ")) {
        /* IMF-fixdate */
        if (!(num(&c, 2, &day) && lit(&c, " ") && month(&c, &mon) && lit(&c, " ") &&
              num(&c, 4, &year) && lit(&c, " ") && hms(&c, &hh, &mm, &ss) &&
              lit(&c, " GMT")))
            return 0;
        y = year;
    } else if ((c = save, wday(&c, wday_long)) && lit(&c, ", ")) {
        /* RFC 850: a year that looks more than 50 years ahead is the most
         * recent past year with those two digits */
        if (!(num(&c, 2, &day) && lit(&c, "-") && month(&c, &mon) && lit(&c, "-") &&
              num(&c, 2, &year) && lit(&c, " ") && hms(&c, &hh, &mm, &ss) &&
              lit(&c, " GMT")))
            return 0;
        int64_t cy = year_of(now_s);
        y = cy - cy % 100 + year;
        if (y > cy + 50) y -= 100;
    } else if ((c = save, wday(&c, wday_short)) && lit(&c, " ")) {
        /* asctime */
        if (!(month(&c, &mon) && lit(&c, " "))) return 0;
        if (c.p < c.end && *c.p == ' ') {
            c.p++;
            if (!num(&c, 1, &day)) return 0;
        } else if (!num(&c, 2, &day)) {
            return 0;
        }
        if (!(lit(&c, " ") && hms(&c, &hh, &mm, &ss) && lit(&c, " ") && num(&c, 4, &year)))
            return 0;
        y = year;
    } else {
        return 0;
    }
    if (c.p != c.end) return 0;
    if (day < 1 || day > mdays(y, mon) || hh > 23 || mm > 59 || ss > 60) return 0;
    *out = days_from_civil(y, mon, day) * 86400 + hh * 3600 + mm * 60 + ss;
    return 1;
}

int wh__retry_after_parse(const char *v, int64_t wall_ms, int64_t *ms)
{
    if (!v || !ms) return 0;
    const char *end = v + strlen(v);
    while (*v == ' ' || *v == '\t') v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if (v == end) return 0;
    if (*v >= '0' && *v <= '9') { /* delay-seconds = 1*DIGIT */
        int64_t s = 0;
        for (; v < end; v++) {
            if (*v < '0' || *v > '9') return 0;
            if (s < 1000000000) s = s * 10 + (*v - '0');
        }
        *ms = s * 1000;
        return 1;
    }
    int64_t wall_s = wall_ms / 1000 - (wall_ms % 1000 < 0), t;
    if (!wh__http_date_parse(v, (size_t)(end - v), wall_s, &t)) return 0;
    if (t > INT64_MAX / 1000 - 1) t = INT64_MAX / 1000 - 1;
    int64_t at = t * 1000;
    *ms = at > wall_ms ? at - wall_ms : 0;
    return 1;
}
