/* Configuration text -> cJSON tree (wh__cfg_parse).
 *
 * cJSON is the parser.  A scan of the text beside it catches what cJSON
 * gets wrong for a configuration:
 *   - a NUL in a string, raw or as \u0000: cJSON keeps C strings, so
 *     "ab\u0000cd" would silently become "ab" (a shorter secret, a cut URL);
 *     refused, naming the key path;
 *   - nesting deeper than CJSON_NESTING_LIMIT: cJSON only says "parse
 *     error"; named as the limit it is. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct frame {
    const char *key;        /* object: the current key (raw text), or NULL */
    size_t key_len;
    size_t index;           /* array: the current element */
    char array;
    char want_key;          /* object: the next string is a key */
} frame;

/* Line and column (from 1) of byte `off` of s. */
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

/* The document path of frames [0, n): "endpoints[2].headers[\"X-A\"]". */
static void frames_path(const frame *f, size_t n, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && o + 1 < size; i++) {
        if (f[i].array) {
            int w = snprintf(out + o, size - o, "[%zu]", f[i].index);
            if (w < 0) break;
            o += (size_t)w;
        } else if (f[i].key) {
            char key[80], part[160];
            size_t kl = f[i].key_len < sizeof key - 1 ? f[i].key_len : sizeof key - 1;
            memcpy(key, f[i].key, kl);
            key[kl] = '\0';
            wh__cfg_path(part, sizeof part, o ? "x" : "", key);
            const char *add = o ? part + 1 : part; /* drop the stand-in parent */
            int w = snprintf(out + o, size - o, "%s", add);
            if (w < 0) break;
            o += (size_t)w;
        }
        if (o >= size) o = size - 1;
    }
    if (!out[0]) snprintf(out, size, "config");
}

enum { SCAN_OK, SCAN_DEEP, SCAN_NUL_VALUE, SCAN_NUL_KEY, SCAN_NOMEM };

/* Walk json[0, len) (cJSON accepted it, or is known to fail after it).
 * On a finding, *at is its byte and path its location. */
static int scan(const char *json, size_t len, size_t *at, char *path, size_t size)
{
    frame *st = calloc(CJSON_NESTING_LIMIT, sizeof *st);
    if (!st) return SCAN_NOMEM;
    size_t depth = 0;
    int rc = SCAN_OK;
    for (size_t i = 0; i < len && rc == SCAN_OK; i++) {
        char c = json[i];
        if (c == '{' || c == '[') {
            if (depth == CJSON_NESTING_LIMIT) {
                *at = i;
                rc = SCAN_DEEP;
                break;
            }
            st[depth] = (frame){NULL, 0, 0, c == '[', c == '{'};
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth) depth--;
        } else if (c == ',') {
            if (depth && st[depth - 1].array) st[depth - 1].index++;
            else if (depth) st[depth - 1].want_key = 1;
        } else if (c == '"') {
            size_t start = i + 1, j = start;
            int nul = 0;
            while (j < len && json[j] != '"') {
                if (json[j] == '\\') {
                    if (j + 5 < len && json[j + 1] == 'u' &&
                        memcmp(json + j + 2, "0000", 4) == 0)
                        nul = 1;
                    j += 2;
                    continue;
                }
                if (json[j] == '\0') nul = 1;
                j++;
            }
            int is_key = depth && !st[depth - 1].array && st[depth - 1].want_key;
            if (is_key) {
                st[depth - 1].key = json + start;
                st[depth - 1].key_len = (j < len ? j : len) - start;
                st[depth - 1].want_key = 0;
            }
            if (nul) {
                *at = i;
                rc = is_key ? SCAN_NUL_KEY : SCAN_NUL_VALUE;
                /* a key: the path of the object holding it */
                frames_path(st, is_key ? depth - 1 : depth, path, size);
                break;
            }
            i = j;
        }
    }
    free(st);
    return rc;
}

cJSON *wh__cfg_parse(const char *json, size_t len, wh__cfg_err *err)
{
    const char *end = NULL;
    char path[256];
    size_t at = 0, line, col;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t off = end && end >= json ? (size_t)(end - json) : 0;
        if (off > len) off = len;
        /* Too deep before the point of failure: say so. */
        int s = scan(json, off + 1 < len ? off + 1 : len, &at, path, sizeof path);
        if (s == SCAN_NOMEM) {
            wh__cfg_fail(err, WH_E_NOMEM, "config: out of memory");
            return NULL;
        }
        if (s == SCAN_DEEP) {
            line_col(json, at, &line, &col);
            wh__cfg_fail(err, WH_E_TOO_LARGE, "config: nesting deeper than %d "
                         "levels of arrays and objects at byte %zu (line %zu, "
                         "column %zu)", CJSON_NESTING_LIMIT, at, line, col);
            return NULL;
        }
        line_col(json, off, &line, &col);
        wh__cfg_fail(err, WH_E_JSON, "config: malformed JSON near byte %zu "
                     "(line %zu, column %zu)", off, line, col);
        return NULL;
    }
    size_t off = (size_t)(end - json);
    while (off < len && (json[off] == ' ' || json[off] == '\t' ||
                         json[off] == '\n' || json[off] == '\r'))
        off++;
    if (off < len) {
        line_col(json, off, &line, &col);
        cJSON_Delete(root);
        wh__cfg_fail(err, WH_E_JSON, "config: unexpected text after the JSON "
                     "document at byte %zu (line %zu, column %zu)", off, line, col);
        return NULL;
    }
    switch (scan(json, len, &at, path, sizeof path)) {
    case SCAN_OK: return root;
    case SCAN_NUL_VALUE:
        wh__cfg_fail(err, WH_E_CONFIG, "%s: the string contains a NUL character "
                     "(\\u0000, byte %zu); configuration strings must not",
                     path, at);
        break;
    case SCAN_NUL_KEY:
        wh__cfg_fail(err, WH_E_CONFIG, "%s: a key contains a NUL character "
                     "(\\u0000, byte %zu); configuration keys must not", path, at);
        break;
    case SCAN_DEEP: /* cannot happen: cJSON accepted it */
        wh__cfg_fail(err, WH_E_TOO_LARGE, "config: nesting deeper than %d levels",
                     CJSON_NESTING_LIMIT);
        break;
    default: wh__cfg_fail(err, WH_E_NOMEM, "config: out of memory"); break;
    }
    cJSON_Delete(root);
    return NULL;
}
