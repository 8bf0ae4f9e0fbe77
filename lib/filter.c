/* Payload filters: compile a filter object into a flat program once, match
 * it against a lazily parsed payload (see filter.h for the language).
 *
 * The program is an array of instructions in prefix order.  A combinator
 * (AND / OR) is followed by its operands and records the index just past
 * them, so evaluation walks the array without pointers between nodes.  A
 * test instruction names a pre-split path (segments and array indices) and
 * an operand prepared for its operator (a number, a cJSON value, a compiled
 * regex). */
#include "filter.h"
#include "internal.h"

#include <limits.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

enum {
    OP_AND, OP_OR,
    OP_EQ, OP_NEQ, OP_GT, OP_GTE, OP_LT, OP_LTE, OP_IN, OP_NIN, OP_EXIST,
    OP_REGEX,
};

static const struct { const char *name; int op; } operators[] = {
    {"$eq", OP_EQ},   {"$neq", OP_NEQ}, {"$gt", OP_GT},     {"$gte", OP_GTE},
    {"$lt", OP_LT},   {"$lte", OP_LTE}, {"$in", OP_IN},     {"$nin", OP_NIN},
    {"$exist", OP_EXIST}, {"$regex", OP_REGEX},
};
#define OPERATOR_LIST "$eq $neq $gt $gte $lt $lte $in $nin $exist $regex"

typedef struct fpath {
    char **seg;        /* segments after "data" */
    long *idx;         /* array index of each segment, -1 when not digits */
    size_t n;
} fpath;

typedef struct ins {
    uint8_t op;
    uint8_t want;      /* EXIST: 1 present, 0 absent */
    uint32_t end;      /* AND/OR: index past the last operand */
    uint32_t path;     /* tests: index into f->paths */
    cJSON *val;        /* EQ NEQ IN NIN GT..LTE: the operand (owned) */
    regex_t *re;       /* REGEX */
} ins;

struct wh__filter {
    ins *ins;
    size_t n, cap;
    fpath *paths;
    size_t n_paths, cap_paths;
};

typedef struct cctx {
    wh__filter *f;
    char *why;
    size_t why_size;
    int depth;
} cctx;

#define MAX_DEPTH 32

static atomic_ulong parse_count;

unsigned long wh__payload_parse_count(void)
{
    return atomic_load_explicit(&parse_count, memory_order_relaxed);
}

/* ---- building ------------------------------------------------------------- */

static int fail(cctx *c, int rc, const char *fmt, ...) WH_PRINTF(3, 4);
static int fail(cctx *c, int rc, const char *fmt, ...)
{
    if (c->why && c->why_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why, c->why_size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static long emit(cctx *c, int op)
{
    wh__filter *f = c->f;
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 8;
        if (cap > UINT32_MAX) return -1;
        ins *p = realloc(f->ins, cap * sizeof *p);
        if (!p) return -1;
        f->ins = p;
        f->cap = cap;
    }
    memset(&f->ins[f->n], 0, sizeof f->ins[f->n]);
    f->ins[f->n].op = (uint8_t)op;
    return (long)f->n++;
}

/* "data" or "data.a.b": split into segments.  Returns the path index, -1
 * on a bad path (why set), -2 out of memory. */
static long add_path(cctx *c, const char *key)
{
    if (strcmp(key, "data") != 0 && strncmp(key, "data.", 5) != 0) {
        fail(c, WH_E_CONFIG, "\"%s\": a payload path starts with \"data.\"", key);
        return -1;
    }
    const char *rest = key[4] ? key + 5 : NULL;
    size_t nseg = 0;
    if (rest) {
        nseg = 1;
        for (const char *p = rest; *p; p++) nseg += *p == '.';
        for (const char *p = rest;; p++) {
            const char *dot = strchr(p, '.');
            size_t len = dot ? (size_t)(dot - p) : strlen(p);
            if (len == 0) {
                fail(c, WH_E_CONFIG, "\"%s\": empty path segment", key);
                return -1;
            }
            if (!dot) break;
            p = dot;
        }
    }
    wh__filter *f = c->f;
    if (f->n_paths == f->cap_paths) {
        size_t cap = f->cap_paths ? 2 * f->cap_paths : 4;
        fpath *p = realloc(f->paths, cap * sizeof *p);
        if (!p) return -2;
        f->paths = p;
        f->cap_paths = cap;
    }
    fpath *fp = &f->paths[f->n_paths];
    memset(fp, 0, sizeof *fp);
    if (nseg) {
        fp->seg = wh__calloc(nseg, sizeof *fp->seg);
        fp->idx = wh__calloc(nseg, sizeof *fp->idx);
        if (!fp->seg || !fp->idx) {
            free(fp->seg);
            free(fp->idx);
            return -2;
        }
        const char *p = rest;
        for (size_t i = 0; i < nseg; i++) {
            const char *dot = strchr(p, '.');
            size_t len = dot ? (size_t)(dot - p) : strlen(p);
            fp->seg[i] = wh__strndup(p, len);
            fp->n = i + 1;
            if (!fp->seg[i]) {
                f->n_paths++; /* freed with the filter */
                return -2;
            }
            long v = 0;
            size_t k = 0;
            while (k < len && p[k] >= '0' && p[k] <= '9' && v < 100000000)
                v = v * 10 + (p[k++] - '0');
            fp->idx[i] = k == len ? v : -1;
            p = dot ? dot + 1 : p + len;
        }
    }
    return (long)f->n_paths++;
}

static int is_operator_object(const cJSON *v, int *mixed)
{
    *mixed = 0;
    if (!cJSON_IsObject(v) || !v->child) return 0;
    int ops = 0, fields = 0;
    for (const cJSON *k = v->child; k; k = k->next)
        (k->string && k->string[0] == '$') ? ops++ : fields++;
    *mixed = ops && fields;
    return ops > 0;
}

static int compile_object(cctx *c, const cJSON *obj, int top, int skip_other,
                          int *n_conditions);

static int compile_test(cctx *c, const char *key, long path, int op,
                        const cJSON *operand)
{
    const char *name = "$eq";
    for (size_t i = 0; i < sizeof operators / sizeof operators[0]; i++)
        if (operators[i].op == op) name = operators[i].name;
    switch (op) {
    case OP_GT: case OP_GTE: case OP_LT: case OP_LTE:
        if (!cJSON_IsNumber(operand) && !cJSON_IsString(operand))
            return fail(c, WH_E_CONFIG, "\"%s\": %s needs a number or a string",
                        key, name);
        break;
    case OP_IN: case OP_NIN:
        if (!cJSON_IsArray(operand))
            return fail(c, WH_E_CONFIG, "\"%s\": %s needs an array", key, name);
        break;
    case OP_EXIST:
        if (!cJSON_IsBool(operand))
            return fail(c, WH_E_CONFIG, "\"%s\": $exist needs true or false", key);
        break;
    case OP_REGEX:
        if (!cJSON_IsString(operand))
            return fail(c, WH_E_CONFIG, "\"%s\": $regex needs a string", key);
        break;
    default:
        break;
    }
    long i = emit(c, op);
    if (i < 0) return WH_E_NOMEM;
    ins *in = &c->f->ins[i];
    in->path = (uint32_t)path;
    if (op == OP_EXIST) {
        in->want = (uint8_t)cJSON_IsTrue(operand);
    } else if (op == OP_REGEX) {
        in->re = malloc(sizeof *in->re);
        if (!in->re) return WH_E_NOMEM;
        int rc = regcomp(in->re, operand->valuestring, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char msg[128];
            regerror(rc, in->re, msg, sizeof msg);
            free(in->re);
            in->re = NULL;
            return fail(c, WH_E_CONFIG, "\"%s\": $regex \"%s\": %s", key,
                        operand->valuestring, msg);
        }
    } else {
        in->val = cJSON_Duplicate(operand, 1);
        if (!in->val) return WH_E_NOMEM;
    }
    return WH_OK;
}

/* One "path": value pair. */
static int compile_path(cctx *c, const cJSON *item)
{
    const char *key = item->string;
    long path = add_path(c, key);
    if (path == -2) return WH_E_NOMEM;
    if (path < 0) return WH_E_CONFIG;
    int mixed;
    if (!is_operator_object(item, &mixed))
        return compile_test(c, key, path, OP_EQ, item);
    if (mixed)
        return fail(c, WH_E_CONFIG,
                    "\"%s\": mixes operators and fields (write {\"$eq\": {...}} "
                    "to compare with an object)", key);
    long and_at = emit(c, OP_AND);
    if (and_at < 0) return WH_E_NOMEM;
    for (const cJSON *o = item->child; o; o = o->next) {
        int op = -1;
        for (size_t i = 0; i < sizeof operators / sizeof operators[0]; i++)
            if (strcmp(o->string, operators[i].name) == 0) op = operators[i].op;
        if (op < 0)
            return fail(c, WH_E_CONFIG,
                        "\"%s\": unknown operator \"%s\" (one of " OPERATOR_LIST
                        ")", key, o->string);
        int rc = compile_test(c, key, path, op, o);
        if (rc != WH_OK) return rc;
    }
    c->f->ins[and_at].end = (uint32_t)c->f->n;
    return WH_OK;
}

static int compile_combinator(cctx *c, const cJSON *item, int op)
{
    const char *name = item->string;
    if (!cJSON_IsArray(item) || !item->child)
        return fail(c, WH_E_CONFIG, "\"%s\": expected a non-empty array of filter "
                    "objects", name);
    if (++c->depth > MAX_DEPTH)
        return fail(c, WH_E_CONFIG, "\"%s\": nested deeper than %d", name, MAX_DEPTH);
    long at = emit(c, op);
    if (at < 0) return WH_E_NOMEM;
    int idx = 0;
    for (const cJSON *o = item->child; o; o = o->next, idx++) {
        if (!cJSON_IsObject(o))
            return fail(c, WH_E_CONFIG, "\"%s\"[%d]: expected a filter object",
                        name, idx);
        int n = 0;
        int rc = compile_object(c, o, 0, 0, &n);
        if (rc != WH_OK) return rc;
        if (n == 0)
            return fail(c, WH_E_CONFIG, "\"%s\"[%d]: an empty filter object", name,
                        idx);
    }
    c->f->ins[at].end = (uint32_t)c->f->n;
    c->depth--;
    return WH_OK;
}

/* An object of conditions, all of which must hold: one AND instruction
 * followed by them. */
static int compile_object(cctx *c, const cJSON *obj, int top, int skip_other,
                          int *n_conditions)
{
    long at = emit(c, OP_AND);
    if (at < 0) return WH_E_NOMEM;
    *n_conditions = 0;
    for (const cJSON *k = obj->child; k; k = k->next) {
        const char *key = k->string;
        int rc;
        if (strcmp(key, "$and") == 0) {
            rc = compile_combinator(c, k, OP_AND);
        } else if (strcmp(key, "$or") == 0) {
            rc = compile_combinator(c, k, OP_OR);
        } else if (strcmp(key, "data") == 0 || strncmp(key, "data.", 5) == 0) {
            rc = compile_path(c, k);
        } else if (top && skip_other) {
            continue;
        } else if (key[0] == '$') {
            rc = fail(c, WH_E_CONFIG, "\"%s\": unknown combinator (use $and or $or)",
                      key);
        } else {
            rc = fail(c, WH_E_CONFIG, "\"%s\": a payload path starts with \"data.\"",
                      key);
        }
        if (rc != WH_OK) return rc;
        ++*n_conditions;
    }
    c->f->ins[at].end = (uint32_t)c->f->n;
    return WH_OK;
}

void wh__filter_free(wh__filter *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) {
        cJSON_Delete(f->ins[i].val);
        if (f->ins[i].re) {
            regfree(f->ins[i].re);
            free(f->ins[i].re);
        }
    }
    for (size_t i = 0; i < f->n_paths; i++) {
        for (size_t k = 0; k < f->paths[i].n; k++) free(f->paths[i].seg[k]);
        free(f->paths[i].seg);
        free(f->paths[i].idx);
    }
    free(f->ins);
    free(f->paths);
    free(f);
}

size_t wh__filter_size(const wh__filter *f) { return f ? f->n : 0; }

int wh__filter_compile(const cJSON *obj, int skip_other_keys, wh__filter **out,
                       char *why, size_t why_size)
{
    if (!out) return WH_E_INVAL;
    *out = NULL;
    if (why && why_size) why[0] = '\0';
    cctx c = {NULL, why, why_size, 0};
    if (!cJSON_IsObject(obj))
        return fail(&c, WH_E_CONFIG, "expected a filter object");
    c.f = calloc(1, sizeof *c.f);
    if (!c.f) return WH_E_NOMEM;
    int n = 0;
    int rc = compile_object(&c, obj, 1, skip_other_keys, &n);
    if (rc == WH_E_NOMEM) fail(&c, rc, "out of memory");
    if (rc != WH_OK || n == 0) {
        wh__filter_free(c.f);
        return rc;
    }
    *out = c.f;
    return WH_OK;
}

int wh__filter_compile_json(const char *json, size_t len, wh__filter **out,
                            char *why, size_t why_size)
{
    if (!out || !json) return WH_E_INVAL;
    *out = NULL;
    cJSON *obj = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        if (why && why_size)
            snprintf(why, why_size, "not a JSON object");
        return WH_E_JSON;
    }
    int rc = wh__filter_compile(obj, 0, out, why, why_size);
    cJSON_Delete(obj);
    return rc;
}

/* ---- matching ------------------------------------------------------------- */

void wh__payload_init(wh__payload *p, const char *data, size_t len)
{
    p->data = data;
    p->len = len;
    p->root = NULL;
    p->state = 0;
}

void wh__payload_done(wh__payload *p)
{
    cJSON_Delete(p->root);
    p->root = NULL;
    p->state = 0;
}

static const cJSON *payload_root(wh__payload *p)
{
    if (p->state == 0) {
        atomic_fetch_add_explicit(&parse_count, 1, memory_order_relaxed);
        p->root = p->data ? cJSON_ParseWithLength(p->data, p->len) : NULL;
        p->state = p->root ? 1 : -1;
    }
    return p->root;
}

static const cJSON *resolve(const fpath *fp, const cJSON *v)
{
    for (size_t i = 0; v && i < fp->n; i++) {
        if (cJSON_IsObject(v))
            v = cJSON_GetObjectItemCaseSensitive(v, fp->seg[i]);
        else if (cJSON_IsArray(v) && fp->idx[i] >= 0 && fp->idx[i] <= INT_MAX)
            v = cJSON_GetArrayItem(v, (int)fp->idx[i]);
        else
            v = NULL;
    }
    return v;
}

static int json_equal(const cJSON *a, const cJSON *b)
{
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
        return a->valuedouble == b->valuedouble;
    return cJSON_Compare(a, b, 1) ? 1 : 0;
}

/* <0, 0, >0 comparing v with the operand; 2 when not comparable. */
static int order(const cJSON *v, const cJSON *operand, int *cmp)
{
    if (cJSON_IsNumber(v) && cJSON_IsNumber(operand)) {
        double a = v->valuedouble, b = operand->valuedouble;
        *cmp = a < b ? -1 : a > b ? 1 : 0;
        return 1;
    }
    if (cJSON_IsString(v) && cJSON_IsString(operand)) {
        int r = strcmp(v->valuestring, operand->valuestring);
        *cmp = r < 0 ? -1 : r > 0 ? 1 : 0;
        return 1;
    }
    return 0;
}

static int in_array(const cJSON *v, const cJSON *arr)
{
    for (const cJSON *x = arr->child; x; x = x->next)
        if (json_equal(v, x)) return 1;
    return 0;
}

static int test(const wh__filter *f, const ins *in, const cJSON *root)
{
    const cJSON *v = resolve(&f->paths[in->path], root);
    int cmp;
    switch (in->op) {
    case OP_EQ: return v && json_equal(v, in->val);
    case OP_NEQ: return !v || !json_equal(v, in->val);
    case OP_GT: return v && order(v, in->val, &cmp) && cmp > 0;
    case OP_GTE: return v && order(v, in->val, &cmp) && cmp >= 0;
    case OP_LT: return v && order(v, in->val, &cmp) && cmp < 0;
    case OP_LTE: return v && order(v, in->val, &cmp) && cmp <= 0;
    case OP_IN: return v && in_array(v, in->val);
    case OP_NIN: return !v || !in_array(v, in->val);
    case OP_EXIST: return (v != NULL) == (in->want != 0);
    case OP_REGEX:
        return cJSON_IsString(v) && regexec(in->re, v->valuestring, 0, NULL, 0) == 0;
    default: return 0;
    }
}

/* Evaluate the instruction at i; *next receives the index past it. */
static int eval(const wh__filter *f, size_t i, const cJSON *root, size_t *next)
{
    const ins *in = &f->ins[i];
    if (in->op != OP_AND && in->op != OP_OR) {
        *next = i + 1;
        return test(f, in, root);
    }
    int is_and = in->op == OP_AND;
    int result = is_and;
    size_t j = i + 1;
    while (j < in->end) {
        size_t after;
        int r = eval(f, j, root, &after);
        j = after;
        if (is_and && !r) { result = 0; break; }
        if (!is_and && r) { result = 1; break; }
    }
    *next = in->end;
    return result;
}

int wh__filter_match(const wh__filter *f, wh__payload *p)
{
    if (!f) return 1;
    const cJSON *root = payload_root(p);
    if (!root) return 0;
    size_t next;
    return eval(f, 0, root, &next);
}
