/* libwebhook._native — the CPython extension under the libwebhook package.
 *
 * A thin layer: the Python package (libwebhook/__init__.py) builds the
 * user-facing API (Engine, Endpoint, asyncio glue, exceptions) on the
 * _native.Engine type defined here.  Only the hot path (emit) and the parts
 * that touch C structs live in C.  Exceptions are the package's classes,
 * registered at import with _set_errors().
 *
 * Outcomes: the engine keeps them (wh_engine_options.outcome_queue, the pull
 * API) when the library has it (WH_POLL_IN defined: the host-loop API);
 * otherwise an outcome callback collects them into a list.  Either way
 * Engine._take() hands them to Python after the engine call returned, so a
 * Python callback never runs inside the engine and its exception is raised
 * from the call that ran it. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <webhook/webhook.h>
#include <webhook/verify.h>

#include <stdint.h>
#include <string.h>
#include <time.h>

#ifdef WH_POLL_IN
#define HAVE_LOOP_API 1
#else
#define HAVE_LOOP_API 0
#endif

static PyObject *error_base;    /* libwebhook.Error */
static PyObject *error_classes; /* dict: status int -> class */
static PyObject *json_dumps;    /* JSONEncoder(separators=(",", ":")).iterencode */
static PyObject *empty_str;
static PyTypeObject *outcome_type;

/* ---- errors ---------------------------------------------------------------- */

/* Raise the package exception for `status` with `msg` (NULL: wh_strerror). */
static PyObject *raise_status(int status, const char *msg)
{
    PyObject *key = PyLong_FromLong(status);
    PyObject *cls = key && error_classes ? PyDict_GetItemWithError(error_classes, key) : NULL;
    Py_XDECREF(key);
    if (PyErr_Occurred()) return NULL;
    if (!cls) cls = error_base ? error_base : PyExc_RuntimeError;
    if (!msg || !*msg) msg = wh_strerror(status);
    PyObject *exc = PyObject_CallFunction(cls, "sis", msg, status, wh_status_name(status));
    if (!exc) return NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

/* ---- outcomes -------------------------------------------------------------- */

static PyStructSequence_Field outcome_fields[] = {
    {"kind", "'delivered', 'retry' or 'dead'"},
    {"endpoint_id", "the endpoint's stable id"},
    {"endpoint", "the endpoint handle (Endpoint.handle)"},
    {"url", "the endpoint's URL"},
    {"id", "the delivery id (the same on every retry)"},
    {"type", "the event type"},
    {"channel", "the event's channel, or None"},
    {"data", "the payload as emitted (bytes)"},
    {"attempt", "number of the attempt just made, from 1"},
    {"http_status", "the HTTP status, 0 when no response arrived"},
    {"error", "None, or the status name of the failure ('WH_E_CONNECT', ...)"},
    {"error_msg", "human-readable detail ('' on success)"},
    {"retry_in_ms", "for 'retry': delay until the next attempt (-1: endpoint disabled)"},
    {"latency_ms", "duration of the attempt"},
    {NULL, NULL}};

static PyStructSequence_Desc outcome_desc = {
    "libwebhook.Outcome",
    "The result of one delivery attempt (a named tuple).",
    outcome_fields, 14};

static PyObject *str_or_none(const char *s)
{
    if (!s) Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

static PyObject *make_outcome(const wh_outcome *o)
{
    PyObject *t = PyStructSequence_New(outcome_type);
    if (!t) return NULL;
    const char *kind = o->kind == WH_DELIVERED ? "delivered" : o->kind == WH_RETRY ? "retry" : "dead";
    PyObject *v[14];
    v[0] = PyUnicode_FromString(kind);
    v[1] = str_or_none(o->endpoint_id);
    v[2] = PyLong_FromLong(o->endpoint);
    v[3] = str_or_none(o->url);
    v[4] = str_or_none(o->ev.id);
    v[5] = str_or_none(o->ev.type);
    v[6] = str_or_none(o->ev.channel);
    v[7] = PyBytes_FromStringAndSize(o->ev.data ? o->ev.data : "", (Py_ssize_t)o->ev.data_len);
    v[8] = PyLong_FromUnsignedLong(o->attempt);
    v[9] = PyLong_FromLong(o->http_status);
    if (o->error == WH_OK) { v[10] = Py_None; Py_INCREF(Py_None); }
    else v[10] = PyUnicode_FromString(wh_status_name(o->error));
    v[11] = str_or_none(o->error == WH_OK ? "" : o->error_msg);
    v[12] = PyLong_FromLongLong(o->retry_in_ms);
    v[13] = PyLong_FromLongLong(o->latency_ms);
    int bad = 0;
    for (int i = 0; i < 14; i++) {
        if (!v[i]) bad = 1;
        PyStructSequence_SET_ITEM(t, i, v[i] ? v[i] : (Py_INCREF(Py_None), Py_None));
    }
    if (bad) { Py_DECREF(t); return NULL; }
    return t;
}

/* ---- Engine ---------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    wh_engine *e;
    PyObject *pending;   /* list of outcomes collected by the callback */
    PyObject *kick;      /* attached to asyncio: called (once) after an emit */
    PyObject *log_cb;    /* callable(level, message) or NULL */
    int kicked;          /* kick called, _service not yet run */
    int keep_outcomes;   /* 0: outcomes are neither kept nor reported */
    int in_call;         /* an engine call is running (re-entry guard) */
    PyObject *weakrefs;
    PyObject *dict;
} EngineObject;

#if !HAVE_LOOP_API
static void c_on_outcome(void *user, const wh_outcome *o)
{
    EngineObject *self = user;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *exc_t, *exc_v, *exc_tb;
    PyErr_Fetch(&exc_t, &exc_v, &exc_tb);
    PyObject *t = make_outcome(o);
    if (t) {
        if (PyList_Append(self->pending, t) < 0) PyErr_Clear();
        Py_DECREF(t);
    } else {
        PyErr_Clear();
    }
    PyErr_Restore(exc_t, exc_v, exc_tb);
    PyGILState_Release(g);
}

#endif

static void c_on_log(void *user, wh_log_level level, const char *msg)
{
    EngineObject *self = user;
    PyGILState_STATE g = PyGILState_Ensure();
    if (self->log_cb) {
        PyObject *exc_t, *exc_v, *exc_tb;
        PyErr_Fetch(&exc_t, &exc_v, &exc_tb);
        PyObject *r = PyObject_CallFunction(self->log_cb, "is", (int)level, msg);
        if (!r) PyErr_WriteUnraisable(self->log_cb);
        Py_XDECREF(r);
        PyErr_Restore(exc_t, exc_v, exc_tb);
    }
    PyGILState_Release(g);
}

static int closed(EngineObject *self)
{
    if (self->e) return 0;
    PyErr_SetString(PyExc_ValueError, "the engine is closed");
    return 1;
}

static int Engine_init(EngineObject *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"max_queued_events", "max_queued_bytes", "max_payload_bytes",
                            "validate_json", "seed", "log_level", "queue",
                            "keep_outcomes", "on_log", NULL};
    unsigned long long max_ev = 0, max_bytes = 0, max_payload = 0, seed = 0;
    int validate = -1, log_level = -1, keep = 1;
    const char *queue_json = NULL;
    Py_ssize_t queue_len = 0;
    PyObject *log_cb = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|$KKKiKiz#pO", names, &max_ev, &max_bytes,
                                     &max_payload, &validate, &seed, &log_level,
                                     &queue_json, &queue_len, &keep, &log_cb))
        return -1;
    if (log_cb != Py_None && !PyCallable_Check(log_cb)) {
        PyErr_SetString(PyExc_TypeError, "on_log must be callable");
        return -1;
    }
    if (self->e) {
        PyErr_SetString(PyExc_RuntimeError, "Engine.__init__ called twice");
        return -1;
    }
    wh_engine_options o;
    wh_engine_options_init(&o);
    if (max_ev) o.max_queued_events = (size_t)max_ev;
    if (max_bytes) o.max_queued_bytes = (size_t)max_bytes;
    if (max_payload) o.max_payload_bytes = (size_t)max_payload;
    if (validate >= 0) o.validate_json = validate;
    if (log_level >= 0) o.log_level = (wh_log_level)log_level;
    o.seed = seed;
    self->keep_outcomes = keep;
    if (log_cb != Py_None) {
        Py_INCREF(log_cb);
        Py_XSETREF(self->log_cb, log_cb);
        o.on_log = c_on_log;
        o.log_user = self;
    }
#if HAVE_LOOP_API
    o.outcome_queue = keep;
#else
    if (keep) {
        o.on_outcome = c_on_outcome;
        o.outcome_user = self;
    }
#endif
    if (queue_json) {
        char err[512];
        wh_queue *q = NULL;
        int st = wh_config_queue_new(queue_json, (size_t)queue_len, NULL, NULL, &q, err, sizeof err);
        if (st != WH_OK) { raise_status(st, err); return -1; }
        o.queue = q;
        o.queue_owned = 1;
    }
    int err = 0;
    self->e = wh_engine_new(&o, &err);
    if (!self->e) {
        if (o.queue) wh_queue_free(o.queue);
        raise_status(err, NULL);
        return -1;
    }
    return 0;
}

static PyObject *Engine_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    EngineObject *self = (EngineObject *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    self->pending = PyList_New(0);
    if (!self->pending) { Py_DECREF(self); return NULL; }
    return (PyObject *)self;
}

static void engine_free_now(EngineObject *self)
{
    if (self->e) {
        wh_engine *e = self->e;
        self->e = NULL;
        wh_engine_free(e); /* reports cancelled jobs through the callback */
    }
}

static int Engine_traverse(EngineObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->pending);
    Py_VISIT(self->kick);
    Py_VISIT(self->log_cb);
    Py_VISIT(self->dict);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int Engine_clear(EngineObject *self)
{
    Py_CLEAR(self->pending);
    Py_CLEAR(self->kick);
    Py_CLEAR(self->log_cb);
    Py_CLEAR(self->dict);
    return 0;
}

static void Engine_dealloc(EngineObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs) PyObject_ClearWeakRefs((PyObject *)self);
    if (self->e) {
        /* no callback into a dying object */
        wh_engine *e = self->e;
        self->e = NULL;
        PyObject *keep = self->pending;
        self->pending = PyList_New(0);
        wh_engine_free(e);
        Py_XDECREF(self->pending);
        self->pending = keep;
    }
    Engine_clear(self);
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* emit(type, data, channel=None, id=None) -> int */
static PyObject *Engine_emit(EngineObject *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    PyObject *type = NULL, *data = NULL, *channel = Py_None, *id = Py_None;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "emit() takes 2 positional arguments (type, data), %zd given", nargs);
        return NULL;
    }
    type = args[0];
    data = args[1];
    if (kwnames) {
        Py_ssize_t n = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *k = PyTuple_GET_ITEM(kwnames, i);
            if (PyUnicode_CompareWithASCIIString(k, "channel") == 0) channel = args[nargs + i];
            else if (PyUnicode_CompareWithASCIIString(k, "id") == 0) id = args[nargs + i];
            else {
                PyErr_Format(PyExc_TypeError, "emit() got an unexpected keyword argument '%U'", k);
                return NULL;
            }
        }
    }
    if (closed(self)) return NULL;
    if (!PyUnicode_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "emit(): type must be a str");
        return NULL;
    }
    const char *t = PyUnicode_AsUTF8(type);
    if (!t) return NULL;
    const char *ch = NULL, *ident = NULL;
    if (channel != Py_None) {
        if (!PyUnicode_Check(channel)) {
            PyErr_SetString(PyExc_TypeError, "emit(): channel must be a str or None");
            return NULL;
        }
        if (!(ch = PyUnicode_AsUTF8(channel))) return NULL;
    }
    if (id != Py_None) {
        if (!PyUnicode_Check(id)) {
            PyErr_SetString(PyExc_TypeError, "emit(): id must be a str or None");
            return NULL;
        }
        if (!(ident = PyUnicode_AsUTF8(id))) return NULL;
    }
    const char *d;
    Py_ssize_t len;
    PyObject *tmp = NULL;
    if (PyBytes_Check(data)) {
        d = PyBytes_AS_STRING(data);
        len = PyBytes_GET_SIZE(data);
    } else if (PyUnicode_Check(data)) {
        if (!(d = PyUnicode_AsUTF8AndSize(data, &len))) return NULL;
    } else if (PyByteArray_Check(data)) {
        d = PyByteArray_AS_STRING(data);
        len = PyByteArray_GET_SIZE(data);
    } else {
        /* json_dumps is a JSONEncoder's iterencode: (obj, _one_shot=True)
         * gives the chunks of the C encoder, joined here */
        PyObject *chunks = PyObject_CallFunctionObjArgs(json_dumps, data, Py_True, NULL);
        if (!chunks) return NULL;
        tmp = PyUnicode_Join(empty_str, chunks);
        Py_DECREF(chunks);
        if (!tmp) return NULL;
        if (!(d = PyUnicode_AsUTF8AndSize(tmp, &len))) { Py_DECREF(tmp); return NULL; }
    }
    int n = wh_emit(self->e, t, ch, d, (size_t)len, ident);
    Py_XDECREF(tmp);
    if (n < 0) return raise_status(n, wh_last_error(self->e));
    if (self->kick && !self->kicked) {
        self->kicked = 1;
        PyObject *r = PyObject_CallNoArgs(self->kick);
        if (!r) return NULL;
        Py_DECREF(r);
    }
    return PyLong_FromLong(n);
}

static PyObject *Engine_poll(EngineObject *self, PyObject *arg)
{
    int ms = PyLong_AsLong(arg) ;
    if (ms == -1 && PyErr_Occurred()) return NULL;
    if (closed(self)) return NULL;
    int n;
    self->kicked = 0;
    if (ms > 0) {
        Py_BEGIN_ALLOW_THREADS
        n = wh_poll(self->e, ms);
        Py_END_ALLOW_THREADS
    } else {
        n = wh_poll(self->e, 0);
    }
    if (n < 0) return raise_status(n, wh_last_error(self->e));
    return PyLong_FromLong(n);
}

static PyObject *Engine_flush(EngineObject *self, PyObject *arg)
{
    long long ms = PyLong_AsLongLong(arg);
    if (ms == -1 && PyErr_Occurred()) return NULL;
    if (closed(self)) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = wh_flush(self->e, ms);
    Py_END_ALLOW_THREADS
    if (st == WH_E_TIMEOUT) Py_RETURN_FALSE;
    if (st < 0) return raise_status(st, wh_last_error(self->e));
    Py_RETURN_TRUE;
}

static PyObject *Engine_timeout_ms(EngineObject *self, PyObject *unused)
{
    if (closed(self)) return NULL;
    return PyLong_FromLongLong(wh_timeout_ms(self->e));
}

/* _take() -> list of the outcomes waiting (the pull API) */
static PyObject *Engine_take(EngineObject *self, PyObject *unused)
{
#if HAVE_LOOP_API
    if (self->e) {
        wh_outcome o;
        while (wh_outcome_next(self->e, &o) == 1) {
            PyObject *t = make_outcome(&o);
            if (!t) return NULL;
            int r = PyList_Append(self->pending, t);
            Py_DECREF(t);
            if (r < 0) return NULL;
        }
    }
#endif
    if (PyList_GET_SIZE(self->pending) == 0) return PyList_New(0);
    PyObject *out = self->pending;
    self->pending = PyList_New(0);
    if (!self->pending) { self->pending = out; return NULL; }
    return out;
}

static PyObject *Engine_config_load(EngineObject *self, PyObject *arg)
{
    const char *d;
    Py_ssize_t len;
    if (closed(self)) return NULL;
    if (PyBytes_Check(arg)) { d = PyBytes_AS_STRING(arg); len = PyBytes_GET_SIZE(arg); }
    else if (PyUnicode_Check(arg)) { if (!(d = PyUnicode_AsUTF8AndSize(arg, &len))) return NULL; }
    else { PyErr_SetString(PyExc_TypeError, "expected str or bytes"); return NULL; }
    int st = wh_config_load(self->e, d, (size_t)len);
    if (st < 0) return raise_status(st, wh_last_error(self->e));
    Py_RETURN_NONE;
}

static PyObject *Engine_config_load_file(EngineObject *self, PyObject *arg)
{
    PyObject *b = NULL;
    if (closed(self)) return NULL;
    if (!PyUnicode_FSConverter(arg, &b)) return NULL;
    int st = wh_config_load_file(self->e, PyBytes_AS_STRING(b));
    Py_DECREF(b);
    if (st < 0) return raise_status(st, wh_last_error(self->e));
    Py_RETURN_NONE;
}

static PyObject *Engine_endpoint_find(EngineObject *self, PyObject *arg)
{
    if (closed(self)) return NULL;
    const char *id = PyUnicode_AsUTF8(arg);
    if (!id) return NULL;
    return PyLong_FromLong(wh_endpoint_find(self->e, id));
}

static PyObject *Engine_endpoint_remove(EngineObject *self, PyObject *arg)
{
    if (closed(self)) return NULL;
    int h = PyLong_AsLong(arg);
    if (h == -1 && PyErr_Occurred()) return NULL;
    int st = wh_endpoint_remove(self->e, h);
    if (st < 0) return raise_status(st, wh_last_error(self->e));
    Py_RETURN_NONE;
}

static PyObject *Engine_endpoint_state(EngineObject *self, PyObject *arg)
{
    if (closed(self)) return NULL;
    int h = PyLong_AsLong(arg);
    if (h == -1 && PyErr_Occurred()) return NULL;
    int st = wh_endpoint_state(self->e, h);
    if (st < 0) return raise_status(st, wh_last_error(self->e));
    return PyLong_FromLong(st);
}

static PyObject *Engine_endpoint_enable(EngineObject *self, PyObject *args)
{
    int h, on;
    if (!PyArg_ParseTuple(args, "ip", &h, &on)) return NULL;
    if (closed(self)) return NULL;
    int st = wh_endpoint_enable(self->e, h, on);
    if (st < 0) return raise_status(st, wh_last_error(self->e));
    Py_RETURN_NONE;
}

static PyObject *Engine_stats(EngineObject *self, PyObject *unused)
{
    if (closed(self)) return NULL;
    wh_stats s;
    int st = wh_stats_get(self->e, &s);
    if (st < 0) return raise_status(st, wh_last_error(self->e));
    return Py_BuildValue("{sKsKsKsKsKsKsKsKsKsK}",
                         "emitted", (unsigned long long)s.emitted,
                         "rejected", (unsigned long long)s.rejected,
                         "enqueued", (unsigned long long)s.enqueued,
                         "requests", (unsigned long long)s.requests,
                         "delivered", (unsigned long long)s.delivered,
                         "retries", (unsigned long long)s.retries,
                         "dead", (unsigned long long)s.dead,
                         "queued", (unsigned long long)s.queued,
                         "in_flight", (unsigned long long)s.in_flight,
                         "bytes_sent", (unsigned long long)s.bytes_sent);
}

static PyObject *Engine_close(EngineObject *self, PyObject *unused)
{
    engine_free_now(self);
    Py_RETURN_NONE;
}

static PyObject *Engine_last_error(EngineObject *self, PyObject *unused)
{
    return str_or_none(self->e ? wh_last_error(self->e) : "");
}

static PyObject *Engine_fd(EngineObject *self, PyObject *unused)
{
    if (closed(self)) return NULL;
#if HAVE_LOOP_API
    int fd = wh_fd(self->e);
    if (fd < 0) return raise_status(fd, wh_last_error(self->e));
    return PyLong_FromLong(fd);
#else
    return raise_status(WH_E_UNSUPPORTED, "wh_fd: this libwebhook has no host-loop API");
#endif
}

static PyObject *Engine_set_kick(EngineObject *self, PyObject *arg)
{
    Py_XDECREF(self->kick);
    self->kick = NULL;
    self->kicked = 0;
    if (arg != Py_None) { Py_INCREF(arg); self->kick = arg; }
    Py_RETURN_NONE;
}

static PyObject *Engine_closed(EngineObject *self, void *unused)
{
    return PyBool_FromLong(self->e == NULL);
}

static PyMethodDef Engine_methods[] = {
    {"emit", (PyCFunction)(void (*)(void))Engine_emit, METH_FASTCALL | METH_KEYWORDS,
     "emit(type, data, *, channel=None, id=None) -> int\n\n"
     "Accept an event; data is bytes/str (sent as is) or a JSON-serialisable\n"
     "object.  Returns the number of endpoints it was queued for."},
    {"_poll", (PyCFunction)Engine_poll, METH_O, NULL},
    {"_flush", (PyCFunction)Engine_flush, METH_O, NULL},
    {"_take", (PyCFunction)Engine_take, METH_NOARGS, NULL},
    {"_config_load", (PyCFunction)Engine_config_load, METH_O, NULL},
    {"_config_load_file", (PyCFunction)Engine_config_load_file, METH_O, NULL},
    {"_endpoint_find", (PyCFunction)Engine_endpoint_find, METH_O, NULL},
    {"_endpoint_remove", (PyCFunction)Engine_endpoint_remove, METH_O, NULL},
    {"_endpoint_state", (PyCFunction)Engine_endpoint_state, METH_O, NULL},
    {"_endpoint_enable", (PyCFunction)Engine_endpoint_enable, METH_VARARGS, NULL},
    {"_close", (PyCFunction)Engine_close, METH_NOARGS, NULL},
    {"_fd", (PyCFunction)Engine_fd, METH_NOARGS, NULL},
    {"_set_kick", (PyCFunction)Engine_set_kick, METH_O, NULL},
    {"timeout_ms", (PyCFunction)Engine_timeout_ms, METH_NOARGS,
     "timeout_ms() -> int: milliseconds until the engine must next be polled\n"
     "(0: now, -1: nothing queued or in flight)."},
    {"stats", (PyCFunction)Engine_stats, METH_NOARGS,
     "stats() -> dict of the engine's counters (emitted, delivered, queued, ...)."},
    {"last_error", (PyCFunction)Engine_last_error, METH_NOARGS,
     "last_error() -> str: message of the engine's most recent failure."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Engine_getset[] = {
    {"closed", (getter)Engine_closed, NULL, "True once close() ran.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMemberDef Engine_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(EngineObject, weakrefs), READONLY, NULL},
    {"__dictoffset__", T_PYSSIZET, offsetof(EngineObject, dict), READONLY, NULL},
    {NULL, 0, 0, 0, NULL}};

static PyType_Slot Engine_slots[] = {
    {Py_tp_new, Engine_new},
    {Py_tp_init, Engine_init},
    {Py_tp_dealloc, Engine_dealloc},
    {Py_tp_traverse, Engine_traverse},
    {Py_tp_clear, Engine_clear},
    {Py_tp_methods, Engine_methods},
    {Py_tp_getset, Engine_getset},
    {Py_tp_members, Engine_members},
    {Py_tp_doc, "The native engine (use libwebhook.Engine)."},
    {0, NULL}};

static PyType_Spec Engine_spec = {
    "libwebhook._native.Engine", sizeof(EngineObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, Engine_slots};

/* ---- verification ---------------------------------------------------------- */

static int buffer_arg(PyObject *o, const char **d, Py_ssize_t *len, const char *what)
{
    if (PyBytes_Check(o)) { *d = PyBytes_AS_STRING(o); *len = PyBytes_GET_SIZE(o); return 0; }
    if (PyByteArray_Check(o)) { *d = PyByteArray_AS_STRING(o); *len = PyByteArray_GET_SIZE(o); return 0; }
    if (PyUnicode_Check(o)) { *d = PyUnicode_AsUTF8AndSize(o, len); return *d ? 0 : -1; }
    PyErr_Format(PyExc_TypeError, "%s must be bytes or str", what);
    return -1;
}

/* _verify_standard(secrets: list[str], id, timestamp, body, signature, now_s, tolerance_s) */
static PyObject *mod_verify_standard(PyObject *m, PyObject *args)
{
    PyObject *secrets, *body;
    const char *id, *ts, *sig;
    long long now, tol;
    if (!PyArg_ParseTuple(args, "O!ssOsLL", &PyList_Type, &secrets, &id, &ts, &body, &sig, &now, &tol))
        return NULL;
    const char *d;
    Py_ssize_t len;
    if (buffer_arg(body, &d, &len, "body") < 0) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(secrets);
    if (n == 0 || n > 64) {
        PyErr_SetString(PyExc_ValueError, "secrets: give 1 to 64 secrets");
        return NULL;
    }
    const char *s[64];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = PyList_GET_ITEM(secrets, i);
        if (!PyUnicode_Check(it)) { PyErr_SetString(PyExc_TypeError, "secrets must be str"); return NULL; }
        if (!(s[i] = PyUnicode_AsUTF8(it))) return NULL;
    }
    int st = wh_verify_standard(s, (size_t)n, id, ts, d, (size_t)len, sig, now, tol);
    return PyLong_FromLong(st);
}

static PyObject *mod_verify_hmac_hex(PyObject *m, PyObject *args)
{
    const char *secret, *sig;
    PyObject *body;
    if (!PyArg_ParseTuple(args, "sOs", &secret, &body, &sig)) return NULL;
    const char *d;
    Py_ssize_t len;
    if (buffer_arg(body, &d, &len, "body") < 0) return NULL;
    return PyLong_FromLong(wh_verify_hmac_hex(secret, d, (size_t)len, sig));
}

static PyObject *mod_verify_rsa_sha256(PyObject *m, PyObject *args)
{
    const char *key, *sig;
    PyObject *body;
    if (!PyArg_ParseTuple(args, "sOs", &key, &body, &sig)) return NULL;
    const char *d;
    Py_ssize_t len;
    if (buffer_arg(body, &d, &len, "body") < 0) return NULL;
    return PyLong_FromLong(wh_verify_rsa_sha256(key, d, (size_t)len, sig));
}

static PyObject *mod_sign_standard(PyObject *m, PyObject *args)
{
    PyObject *secrets, *body;
    const char *id;
    long long ts;
    if (!PyArg_ParseTuple(args, "O!sLO", &PyList_Type, &secrets, &id, &ts, &body)) return NULL;
    const char *d;
    Py_ssize_t len;
    if (buffer_arg(body, &d, &len, "body") < 0) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(secrets);
    if (n == 0 || n > 64) { PyErr_SetString(PyExc_ValueError, "secrets: give 1 to 64 secrets"); return NULL; }
    const char *s[64];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = PyList_GET_ITEM(secrets, i);
        if (!PyUnicode_Check(it)) { PyErr_SetString(PyExc_TypeError, "secrets must be str"); return NULL; }
        if (!(s[i] = PyUnicode_AsUTF8(it))) return NULL;
    }
    char out[64 * 64];
    int st = wh_sign_standard(s, (size_t)n, id, ts, d, (size_t)len, out, sizeof out);
    if (st < 0) return raise_status(st, NULL);
    return PyUnicode_FromString(out);
}

static PyObject *mod_set_errors(PyObject *m, PyObject *args)
{
    PyObject *base, *classes, *dumps;
    if (!PyArg_ParseTuple(args, "OO!O", &base, &PyDict_Type, &classes, &dumps)) return NULL;
    Py_INCREF(dumps);
    Py_XSETREF(json_dumps, dumps);
    Py_XDECREF(error_base);
    Py_XDECREF(error_classes);
    Py_INCREF(base);
    Py_INCREF(classes);
    error_base = base;
    error_classes = classes;
    Py_RETURN_NONE;
}

static PyObject *mod_status_name(PyObject *m, PyObject *arg)
{
    int st = PyLong_AsLong(arg);
    if (st == -1 && PyErr_Occurred()) return NULL;
    return PyUnicode_FromString(wh_status_name(st));
}

static PyObject *mod_strerror(PyObject *m, PyObject *arg)
{
    int st = PyLong_AsLong(arg);
    if (st == -1 && PyErr_Occurred()) return NULL;
    return PyUnicode_FromString(wh_strerror(st));
}

static PyMethodDef mod_methods[] = {
    {"_verify_standard", mod_verify_standard, METH_VARARGS, NULL},
    {"_verify_hmac_hex", mod_verify_hmac_hex, METH_VARARGS, NULL},
    {"_verify_rsa_sha256", mod_verify_rsa_sha256, METH_VARARGS, NULL},
    {"_sign_standard", mod_sign_standard, METH_VARARGS, NULL},
    {"_set_errors", mod_set_errors, METH_VARARGS, NULL},
    {"status_name", mod_status_name, METH_O, "status_name(status) -> 'WH_E_URL', ..."},
    {"strerror", mod_strerror, METH_O, "strerror(status) -> 'invalid URL', ..."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "libwebhook._native",
    "Native part of libwebhook (see the libwebhook package).", -1, mod_methods,
    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void);
PyMODINIT_FUNC PyInit__native(void)
{
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    PyObject *json = PyImport_ImportModule("json");
    if (!json) goto fail;
    json_dumps = PyObject_GetAttrString(json, "dumps");
    Py_DECREF(json);
    if (!json_dumps) goto fail;
    empty_str = PyUnicode_FromString("");
    if (!empty_str) goto fail;
    outcome_type = PyStructSequence_NewType(&outcome_desc);
    if (!outcome_type) goto fail;
    if (PyModule_AddObjectRef(m, "Outcome", (PyObject *)outcome_type) < 0) goto fail;
    PyObject *et = PyType_FromSpec(&Engine_spec);
    if (!et) goto fail;
    if (PyModule_AddObject(m, "Engine", et) < 0) { Py_DECREF(et); goto fail; }
    PyModule_AddStringConstant(m, "library_version", wh_version(0));
    PyModule_AddIntConstant(m, "HAVE_LOOP_API", HAVE_LOOP_API);
#define XX(name, val, msg) PyModule_AddIntConstant(m, "WH_" #name, val);
    WH_STATUS_MAP(XX)
#undef XX
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
