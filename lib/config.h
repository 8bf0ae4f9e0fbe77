/* The JSON configuration, shared by its four files (internal).
 *
 *   config_value.c     the one error channel, typed values, the key-table
 *                      driven object parser
 *   config_json.c      text -> cJSON tree, refusing what cJSON would accept
 *                      wrongly (NUL in strings) or refuse without saying why
 *                      (nesting depth)
 *   config_endpoint.c  one endpoint object -> wh_endpoint_options
 *   config_queue.c     the "queue" object -> a queue
 *   config.c           the document: wh_config_load(_file),
 *                      wh_config_queue_new
 *
 * Calls go one way: config.c -> config_json.c, config_endpoint.c,
 * config_queue.c; all of them -> config_value.c (which calls back only
 * through the function pointers of the tables it is given).  Only config.c
 * touches an engine: every error lands in a wh__cfg_err, and config.c
 * hands it to wh_last_error() (wh_config_load*) or to the caller's buffer
 * (wh_config_queue_new), the same text either way. */
#ifndef WH_CONFIG_H
#define WH_CONFIG_H

#include "internal.h"

#include <cjson/cJSON.h>

#include <stddef.h>
#include <stdint.h>

/* ---- the error channel ---------------------------------------------------- */

/* Every configuration error: a status and a message that starts with the
 * key path ("endpoints[2].retry.initial_ms: expected ..."). */
typedef struct wh__cfg_err {
    int status;
    char msg[512];
} wh__cfg_err;

/* Record the first error (later calls keep it) and return its status. */
int wh__cfg_fail(wh__cfg_err *err, int status, const char *fmt, ...)
    WH_PRINTF(3, 4);

/* `s` quoted for a message: control and non-ASCII bytes as \xNN, cut after
 * ~60 characters.  Returns out. */
const char *wh__cfg_quote(char *out, size_t size, const char *s);

/* "<parent>.<key>" or "<parent>[\"<key>\"]" (keys that are not plain
 * identifiers) into out. */
void wh__cfg_path(char *out, size_t size, const char *parent, const char *key);

/* Overwrite n bytes (secrets). */
void wh__cfg_wipe(void *p, size_t n);

/* ---- the document text ---------------------------------------------------- */

/* Parse `len` bytes into a tree (free with cJSON_Delete), or NULL with err
 * set: WH_E_JSON (malformed, or text after the document; the message gives
 * byte, line and column), WH_E_TOO_LARGE (nesting deeper than
 * CJSON_NESTING_LIMIT), WH_E_CONFIG (a string or key holding a NUL
 * character, named by its path), WH_E_NOMEM. */
cJSON *wh__cfg_parse(const char *json, size_t len, wh__cfg_err *err);

/* ---- typed values --------------------------------------------------------- */

/* An integer min..max (at most 2^53) of item into *out; err names `path`. */
int wh__cfg_uint(const cJSON *item, const char *path, uint64_t min, uint64_t max,
                 uint64_t *out, wh__cfg_err *err);
/* A string (non-empty when nonempty is set). */
int wh__cfg_string(const cJSON *item, const char *path, int nonempty,
                   const char **out, wh__cfg_err *err);
int wh__cfg_bool(const cJSON *item, const char *path, int *out, wh__cfg_err *err);
/* One of n names: its index in *index. */
int wh__cfg_choice(const cJSON *item, const char *path, const char *const *names,
                   size_t n, size_t *index, wh__cfg_err *err);

/* ---- key tables ------------------------------------------------------------ */

typedef enum wh__cfg_type {
    WH__CFG_U32,     /* uint32_t at offset, min..max */
    WH__CFG_U64,     /* uint64_t at offset, min..max */
    WH__CFG_BOOL,    /* int at offset, 0 or 1 */
    WH__CFG_STR,     /* const char * at offset (into the tree); min 1: non-empty */
    WH__CFG_OBJECT,  /* an object parsed with `table` into the same target */
    WH__CFG_FN       /* parsed by fn */
} wh__cfg_type;

struct wh__cfg_table;

typedef int (*wh__cfg_fn)(const cJSON *item, const char *path, void *target,
                          wh__cfg_err *err);

/* One key of an object: how it is read, where it goes, what it means. */
typedef struct wh__cfg_key {
    const char *name;
    wh__cfg_type type;
    size_t offset;                       /* U32, U64, BOOL, STR */
    uint64_t min, max;                   /* U32, U64; STR: min 1 = non-empty */
    const struct wh__cfg_table *table;   /* OBJECT */
    wh__cfg_fn fn;                       /* FN */
    const char *conflicts;               /* a key of the same object that
                                            must not be given with this one */
    const char *kind;                    /* README "type" column (FN keys) */
    const char *doc;                     /* README "meaning" column */
} wh__cfg_key;

typedef struct wh__cfg_table {
    const wh__cfg_key *keys;
    size_t n;                            /* at most 64 */
    /* called with the object before its keys are read (may be NULL) */
    int (*before)(const cJSON *obj, const char *path, void *target,
                  wh__cfg_err *err);
    /* called after every key was read (may be NULL) */
    int (*after)(const cJSON *obj, const char *path, void *target,
                 wh__cfg_err *err);
    const char *scope;                   /* appended to "unknown key" messages
                                            (e.g. "for type \"sqlite\""), or NULL */
} wh__cfg_table;

/* Read every member of obj through the table into target.  Unknown and
 * repeated keys, conflicting pairs and wrong values are WH_E_CONFIG naming
 * the key path ("<path>.<key>"). */
int wh__cfg_object(const cJSON *obj, const char *path, const wh__cfg_table *t,
                   void *target, wh__cfg_err *err);

/* The README "type" column of a key. */
void wh__cfg_key_kind(const wh__cfg_key *k, char *out, size_t size);

/* Every documented key, depth first: calls fn with the dotted path
 * ("retry.initial_ms", "queue.lease_ms") and the key.  For tests and docs. */
typedef void (*wh__cfg_key_visit)(const char *path, const wh__cfg_key *k,
                                  void *user);
void wh__cfg_table_visit(const wh__cfg_table *t, const char *prefix,
                         wh__cfg_key_visit fn, void *user);

/* ---- endpoint objects (config_endpoint.c) --------------------------------- */

/* One endpoint being read.  Strings point into the tree, except header
 * lines and the private key file's contents, owned here. */
typedef struct wh__cfg_ep {
    wh_endpoint_options o;
    const char **types;
    const char **secrets;
    char **headers;
    size_t n_headers;
    char *key_pem;          /* private_key_file contents (wiped on free) */
    size_t key_pem_cap;
    uint32_t *schedule;     /* retry.schedule_ms */
    int *statuses;          /* retry.statuses */
    char *payload_filter;   /* filter's payload conditions as JSON (owned) */
    char where[40];         /* "endpoints[2]" or "webhooks[0]" */
} wh__cfg_ep;

extern const wh__cfg_table wh__cfg_endpoint_table;

/* Read obj into c (c->o initialised by the caller, c->where set).  Types,
 * ranges and the url are checked here; values that need the engine
 * (wh__endpoint_check) are checked by the caller. */
int wh__cfg_endpoint_parse(const cJSON *obj, wh__cfg_ep *c, wh__cfg_err *err);
/* "curl" | "lean" | "auto" at path into *out; WH_E_CONFIG naming path. */
int wh__cfg_transport(const cJSON *item, const char *path, wh_transport_kind *out,
                      wh__cfg_err *err);
/* Free what c owns (secrets wiped). */
void wh__cfg_endpoint_free(wh__cfg_ep *c);
/* Is s a usable HMAC secret?  WH_OK, or WH_E_CONFIG naming path. */
int wh__cfg_check_secret(const char *s, const char *path, wh__cfg_err *err);

/* ---- the queue spec (config_queue.c) -------------------------------------- */

typedef enum wh__cfg_qtype { WH__Q_MEMORY, WH__Q_SQLITE, WH__Q_REDIS } wh__cfg_qtype;

/* The "queue" object, read; strings point into the tree. */
typedef struct wh__cfg_queue {
    wh__cfg_qtype type;
    const char *type_name;
    const char *path, *url, *prefix, *consumer, *spool;
    const char *synchronous;
    uint64_t max_events, max_bytes, max_jobs, max_buffered;
    uint32_t lease_ms, poll_interval_ms, busy_timeout_ms, timeout_ms, reconnect_ms;
    int producer_only;
    char host[256];
    int port;
} wh__cfg_queue;

extern const wh__cfg_table wh__cfg_queue_table;

/* Read and check the "queue" object. */
int wh__cfg_queue_parse(const cJSON *obj, wh__cfg_queue *q, wh__cfg_err *err);
/* Create the queue q describes; errors name "queue.<key>". */
int wh__cfg_queue_create(const wh__cfg_queue *q, wh_log_fn on_log, void *log_user,
                         wh_queue **out, wh__cfg_err *err);

/* ---- the document (config.c) ---------------------------------------------- */

extern const wh__cfg_table wh__cfg_root_table;

#endif /* WH_CONFIG_H */
