/* What the WSGI and the ASGI capture layers' C request paths share (_wsgi_exchange.c,
 * _asgi_exchange.c): the exchange of one call -- its record and annotations, its response body
 * kept, the sampling decision and its completion -- and the middleware's fields both read.
 *
 * Each file is its own extension module and includes this once: the functions are static, so
 * each module has its own copy, with nothing shared between the two at run time. A module's
 * Capture embeds a Core (read once from the middleware and its Python module, the "steps"), and
 * its Exchange type is an ExchangeCore with the members and methods its Python counterpart has
 * (moesif_core.exchange_core.ExchangeCore and the module's Exchange).
 */
#ifndef MOESIF_EXCHANGE_CORE_H
#define MOESIF_EXCHANGE_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include "structmember.h"

/* The record's slots these files read and write. */
enum {
    R_STATUS, R_RESPONSE_HEADERS, R_RESPONSE_HEADER_STYLE, R_TRANSACTION_ID, R_USER_ID, R_COMPANY_ID,
    R_SESSION_TOKEN, R_METADATA, R_ROUTE, R_WEIGHT, R_RESPONSE_TIME, R_ERROR, R_RESPONSE_BODY,
    R_RESPONSE_BODY_SIZE, R_RESPONSE_BODY_TRUNCATED, R_COUNT
};
static const char *RECORD_NAMES[R_COUNT] = {
    "status", "response_headers", "response_header_style", "transaction_id", "user_id", "company_id",
    "session_token", "metadata", "route", "weight", "response_time", "error", "response_body",
    "response_body_size", "response_body_truncated",
};
static PyObject *RECORD_KEYS[R_COUNT];

/* RequestAnnotations' slots, in the order apply_to copies them (skip first, not copied). */
enum { A_SKIP, A_USER_ID, A_COMPANY_ID, A_SESSION_TOKEN, A_METADATA, A_ROUTE, A_COUNT };
static const char *ANNOTATION_NAMES[A_COUNT] = {"skip", "user_id", "company_id", "session_token", "metadata", "route"};
#define MAX_SLOTS 16

static PyObject *K_ANNOTATIONS, *K_SUBMIT, *K_PLAIN_CONFIG, *K_TO_REQUEST, *K_TO_RESPONSE, *K_ADD, *K_NAME;
static PyObject *K_ENSURE_STARTED, *K_STARTED, *K_GOVERNOR;
static PyObject *ZERO, *ONE;

/* For a call whose result is not needed: -1 when it failed, else 0 with the result released. */
static inline int
done_with(PyObject *result)
{
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/* A module's interned names: where each goes and its text. */
typedef struct {
    PyObject **target;
    const char *text;
} Interned;

/* Interns every name of `table`; -1 on failure. */
static int
intern_all(const Interned *table, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if ((*table[i].target = PyUnicode_InternFromString(table[i].text)) == NULL) {
            return -1;
        }
    }
    return 0;
}

#define INTERN_ALL(table) intern_all((table), sizeof(table) / sizeof((table)[0]))

/* The shared module state: interned names and small numbers; -1 on failure. */
static int
core_module_init(void)
{
    static const Interned strings[] = {
        {&K_ANNOTATIONS, "moesif"}, {&K_SUBMIT, "submit"}, {&K_PLAIN_CONFIG, "plain_config"},
        {&K_TO_REQUEST, "to_request"}, {&K_TO_RESPONSE, "to_response"}, {&K_ADD, "add"}, {&K_NAME, "__name__"},
        {&K_ENSURE_STARTED, "ensure_started"}, {&K_STARTED, "_started"}, {&K_GOVERNOR, "governor"},
    };
    if (INTERN_ALL(strings) < 0) {
        return -1;
    }
    for (int i = 0; i < R_COUNT; i++) {
        if ((RECORD_KEYS[i] = PyUnicode_InternFromString(RECORD_NAMES[i])) == NULL) {
            return -1;
        }
    }
    if ((ZERO = PyLong_FromLong(0)) == NULL || (ONE = PyLong_FromLong(1)) == NULL) {
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------- Core */

/* What a Capture reads once, when made: the middleware sets these in __init__ and never again.
 * The agent's `submit` and `plain_config` are read at every call (a test or a benchmark may
 * replace `submit`; the served config changes). */
typedef struct {
    PyObject *middleware, *agent, *annotate, *record_type, *annotations, *time;
    /* steps (the Python module of the capture layer) */
    PyObject *warn_failure, *decide_unstarted, *keep_call, *keep_whole_response, *body_tee;
    Py_ssize_t response_cap;
    int has_callbacks, started;
    const char *finish_kind;   /* the log key of a failure to complete an event */
    const char *annotate_kind; /* the log key of a failing annotate */
    Py_ssize_t record_offsets[R_COUNT];
    Py_ssize_t annotation_offsets[A_COUNT];
    Py_ssize_t annotation_slots[MAX_SLOTS];
    int annotation_slot_count;
} Core;

#define CORE_OBJECTS(X)                                                                                              \
    X(middleware) X(agent) X(annotate) X(record_type) X(annotations) X(time) X(warn_failure)                          \
    X(decide_unstarted) X(keep_call) X(keep_whole_response) X(body_tee)

static int
core_traverse(Core *core, visitproc visit, void *arg)
{
#define VISIT(name) Py_VISIT(core->name);
    CORE_OBJECTS(VISIT)
#undef VISIT
    return 0;
}

static void
core_clear(Core *core)
{
#define CLEAR(name) Py_CLEAR(core->name);
    CORE_OBJECTS(CLEAR)
#undef CLEAR
}

/* Capture_traverse, Capture_clear and Capture_dealloc of a module's Capture: a struct with a
 * `Core core` and the objects its CAPTURE_OBJECTS(X) macro lists. */
#define CAPTURE_GC_FUNCTIONS                                                                                          \
    static int Capture_traverse(Capture *self, visitproc visit, void *arg)                                           \
    {                                                                                                                \
        CAPTURE_OBJECTS(CAPTURE_VISIT)                                                                               \
        return core_traverse(&self->core, visit, arg);                                                               \
    }                                                                                                                \
    static int Capture_clear(Capture *self)                                                                          \
    {                                                                                                                \
        CAPTURE_OBJECTS(CAPTURE_CLEAR)                                                                               \
        core_clear(&self->core);                                                                                     \
        return 0;                                                                                                    \
    }                                                                                                                \
    static void Capture_dealloc(Capture *self)                                                                       \
    {                                                                                                                \
        PyObject_GC_UnTrack(self);                                                                                   \
        Capture_clear(self);                                                                                         \
        Py_TYPE(self)->tp_free((PyObject *)self);                                                                    \
    }
#define CAPTURE_VISIT(name) Py_VISIT(self->name);
#define CAPTURE_CLEAR(name) Py_CLEAR(self->name);

/* The offset of each of `names` among the slots of `type` (a class with __slots__ only). */
static int
find_offsets(PyTypeObject *type, const char **names, int count, Py_ssize_t *offsets, Py_ssize_t *all, int *all_count)
{
    if (!(type->tp_flags & Py_TPFLAGS_HEAPTYPE) || type->tp_base != &PyBaseObject_Type || type->tp_dictoffset != 0
        || type->tp_weaklistoffset != 0 || type->tp_members == NULL) {
        PyErr_Format(PyExc_TypeError, "%s must be a class with __slots__ only, directly under object", type->tp_name);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        offsets[i] = -1;
    }
    if (all_count != NULL) {
        *all_count = 0;
    }
    for (PyMemberDef *member = type->tp_members; member->name != NULL; member++) {
        if (member->type != T_OBJECT_EX || (member->flags & READONLY)) {
            PyErr_Format(PyExc_TypeError, "slot %s of %s cannot be used", member->name, type->tp_name);
            return -1;
        }
        if (all != NULL) {
            if (*all_count == MAX_SLOTS) {
                PyErr_Format(PyExc_TypeError, "%s has too many slots", type->tp_name);
                return -1;
            }
            all[(*all_count)++] = member->offset;
        }
        for (int i = 0; i < count; i++) {
            if (strcmp(member->name, names[i]) == 0) {
                offsets[i] = member->offset;
            }
        }
    }
    for (int i = 0; i < count; i++) {
        if (offsets[i] < 0) {
            PyErr_Format(PyExc_TypeError, "%s has no slot %s", type->tp_name, names[i]);
            return -1;
        }
    }
    return 0;
}

/* getattr(obj, name) as a new reference stored in *target; -1 on failure. */
static int
take_attr(PyObject **target, PyObject *obj, const char *name)
{
    PyObject *value = PyObject_GetAttrString(obj, name);
    if (value == NULL) {
        return -1;
    }
    Py_XSETREF(*target, value);
    return 0;
}

/* Fills `core` from the middleware and its steps; -1 on failure. */
static int
core_init(Core *core, PyObject *middleware, PyObject *steps, PyObject *record_type, PyObject *annotations,
          const char *finish_kind, const char *annotate_kind)
{
    if (find_offsets((PyTypeObject *)record_type, RECORD_NAMES, R_COUNT, core->record_offsets, NULL, NULL) < 0
        || find_offsets(Py_TYPE(annotations), ANNOTATION_NAMES, A_COUNT, core->annotation_offsets, core->annotation_slots,
               &core->annotation_slot_count) < 0) {
        return -1;
    }
    for (int i = 0; i < core->annotation_slot_count; i++) {
        PyObject *value = *(PyObject **)((char *)annotations + core->annotation_slots[i]);
        if (value == NULL) {
            PyErr_SetString(PyExc_TypeError, "every slot of the annotations prototype must be set");
            return -1;
        }
    }
    core->middleware = Py_NewRef(middleware);
    core->record_type = Py_NewRef(record_type);
    core->annotations = Py_NewRef(annotations);
    core->finish_kind = finish_kind;
    core->annotate_kind = annotate_kind;
    core->started = 0;
    PyObject *time_module = PyImport_ImportModule("time");
    if (time_module == NULL) {
        return -1;
    }
    int failed = take_attr(&core->time, time_module, "time");
    Py_DECREF(time_module);
    PyObject *has_callbacks = NULL, *response_cap = NULL;
    if (failed || take_attr(&core->agent, middleware, "agent") < 0 || take_attr(&core->annotate, middleware, "annotate") < 0
        || take_attr(&has_callbacks, middleware, "has_callbacks") < 0
        || take_attr(&response_cap, middleware, "response_cap") < 0) {
        Py_XDECREF(has_callbacks);
        Py_XDECREF(response_cap);
        return -1;
    }
    core->has_callbacks = PyObject_IsTrue(has_callbacks);
    core->response_cap = PyLong_AsSsize_t(response_cap);
    Py_DECREF(has_callbacks);
    Py_DECREF(response_cap);
    if (core->has_callbacks < 0 || (core->response_cap == -1 && PyErr_Occurred())) {
        return -1;
    }
    if (take_attr(&core->warn_failure, steps, "warn_failure") < 0
        || take_attr(&core->decide_unstarted, steps, "decide_unstarted") < 0
        || take_attr(&core->keep_call, steps, "keep_call") < 0
        || take_attr(&core->keep_whole_response, steps, "keep_whole_response") < 0
        || take_attr(&core->body_tee, steps, "BodyTee") < 0) {
        return -1;
    }
    return 0;
}

/* The first call starts the sender and the config fetch (governance and sampling need them);
 * making the middleware never touches the network. -1 on failure. */
static int
start_once(Core *core)
{
    if (core->started) {
        return 0;
    }
    core->started = 1;
    if (PyObject_SetAttr(core->middleware, K_STARTED, Py_True) < 0
        || done_with(PyObject_CallMethodNoArgs(core->agent, K_ENSURE_STARTED)) < 0) {
        return -1;
    }
    return 0;
}

/* The record of the call of `source` at `now` (a new reference): the native maker's, or the
 * Python one's (`fallback`) when there is no native maker or it handed the source back (None). */
static PyObject *
made_record(PyObject *make_record, PyObject *fallback, PyObject *source, PyObject *now, int with_transaction_id)
{
    PyObject *with_id = with_transaction_id ? Py_True : Py_False;
    if (make_record != Py_None) {
        PyObject *args[] = {source, now, with_id};
        PyObject *made = PyObject_Vectorcall(make_record, args, 3, NULL);
        if (made != Py_None) {
            return made; /* the record, or NULL on failure */
        }
        Py_DECREF(made);
    }
    return PyObject_CallFunctionObjArgs(fallback, source, now, with_id, NULL);
}

/* Logs the exception being raised through steps.warn_failure and clears it, when it is an
 * Exception (what the Python version catches); anything else (KeyboardInterrupt) stays raised:
 * -1 then. */
static int
warn_current(Core *core, const char *kind, const char *what)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    PyObject *result = PyObject_CallFunction(core->warn_failure, "ssO", kind, what, value != NULL ? value : Py_None);
    Py_XDECREF(result);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    if (result == NULL) {
        PyErr_Clear(); /* the log itself failed: nothing more to do */
    }
    return 0;
}

/* agent.plain_config is True: no governance rules, every call kept. An agent stand-in without
 * the attribute is not plain. */
static int
plain_config(Core *core)
{
    PyObject *plain = PyObject_GetAttr(core->agent, K_PLAIN_CONFIG);
    if (plain == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(plain);
    return plain == Py_True;
}

/* ------------------------------------------------------------------------------- ExchangeCore */

/* One call's state. `owner` is the Capture whose Core `core` points into (kept alive by the
 * reference); `source` is the WSGI environ or the ASGI scope. */
typedef struct {
    PyObject_HEAD
    PyObject *owner;
    Core *core;
    PyObject *source, *record, *annotations, *request_body, *response_body, *extra_headers;
    char keep, done;
    char fast_record; /* the record is of the class the offsets were read from */
} ExchangeCore;

/* An exchange the cyclic GC cleared (its last reference in a collected cycle) records nothing more. */
#define CLEARED(x) ((x)->owner == NULL)

static int
ExchangeCore_traverse(ExchangeCore *self, visitproc visit, void *arg)
{
    Py_VISIT(self->owner);
    Py_VISIT(self->source);
    Py_VISIT(self->record);
    Py_VISIT(self->annotations);
    Py_VISIT(self->request_body);
    Py_VISIT(self->response_body);
    Py_VISIT(self->extra_headers);
    return 0;
}

static int
ExchangeCore_clear(ExchangeCore *self)
{
    Py_CLEAR(self->owner);
    Py_CLEAR(self->source);
    Py_CLEAR(self->record);
    Py_CLEAR(self->annotations);
    Py_CLEAR(self->request_body);
    Py_CLEAR(self->response_body);
    Py_CLEAR(self->extra_headers);
    return 0;
}

static void
ExchangeCore_dealloc(ExchangeCore *self)
{
    PyObject_GC_UnTrack(self);
    ExchangeCore_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* record.<slot i> = value; -1 on failure. */
static int
rset(ExchangeCore *x, int i, PyObject *value)
{
    if (x->fast_record) {
        PyObject **slot = (PyObject **)((char *)x->record + x->core->record_offsets[i]);
        Py_INCREF(value);
        Py_XSETREF(*slot, value);
        return 0;
    }
    return PyObject_SetAttr(x->record, RECORD_KEYS[i], value);
}

/* record.<slot i>, a new reference; NULL on failure. */
static PyObject *
rget(ExchangeCore *x, int i)
{
    if (x->fast_record) {
        PyObject *value = *(PyObject **)((char *)x->record + x->core->record_offsets[i]);
        if (value == NULL) {
            PyErr_SetObject(PyExc_AttributeError, RECORD_KEYS[i]);
            return NULL;
        }
        return Py_NewRef(value);
    }
    return PyObject_GetAttr(x->record, RECORD_KEYS[i]);
}

/* annotations.<slot i>, borrowed; NULL (AttributeError set) when deleted. */
static PyObject *
aget(ExchangeCore *x, int i)
{
    PyObject *value = *(PyObject **)((char *)x->annotations + x->core->annotation_offsets[i]);
    if (value == NULL) {
        PyErr_Format(PyExc_AttributeError, "%s", ANNOTATION_NAMES[i]);
    }
    return value;
}

/* A new RequestAnnotations: a copy of the prototype's slots (its defaults), no __init__. */
static PyObject *
new_annotations(Core *core)
{
    PyTypeObject *type = Py_TYPE(core->annotations);
    PyObject *made = type->tp_alloc(type, 0);
    if (made == NULL) {
        return NULL;
    }
    for (int i = 0; i < core->annotation_slot_count; i++) {
        PyObject *value = *(PyObject **)((char *)core->annotations + core->annotation_slots[i]);
        *(PyObject **)((char *)made + core->annotation_slots[i]) = Py_XNewRef(value);
    }
    return made;
}

/* A new exchange of `type` (an ExchangeCore layout) for `record`, its annotations also put in
 * `source` (the environ or scope) under "moesif", where the app finds them. */
static ExchangeCore *
new_exchange(PyTypeObject *type, PyObject *owner, Core *core, PyObject *source, PyObject *record)
{
    PyObject *annotations = new_annotations(core);
    if (annotations == NULL) {
        return NULL;
    }
    ExchangeCore *x = PyObject_GC_New(ExchangeCore, type);
    if (x == NULL) {
        Py_DECREF(annotations);
        return NULL;
    }
    x->owner = Py_NewRef(owner);
    x->core = core;
    x->source = Py_NewRef(source);
    x->record = Py_NewRef(record);
    x->annotations = annotations;
    x->request_body = Py_NewRef(Py_None);
    x->response_body = Py_NewRef(Py_None);
    x->extra_headers = Py_NewRef(Py_None);
    x->keep = 1;
    x->done = 0;
    x->fast_record = (PyObject *)Py_TYPE(record) == core->record_type;
    PyObject_GC_Track(x);
    if (PyObject_SetItem(source, K_ANNOTATIONS, annotations) < 0) {
        Py_DECREF(x);
        return NULL;
    }
    return x;
}

/* The sampling decision (call_filter.keep_call), without a call for the usual config. */
static int
decide(ExchangeCore *x)
{
    Core *core = x->core;
    PyObject *skip = aget(x, A_SKIP);
    if (skip == NULL) {
        return -1;
    }
    if (skip == Py_False && plain_config(core)) {
        x->keep = 1;
        return rset(x, R_WEIGHT, ONE);
    }
    PyObject *kept = PyObject_CallFunctionObjArgs(core->keep_call, core->agent, x->record, x->annotations, NULL);
    if (kept == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(kept);
    Py_DECREF(kept);
    if (truth < 0) {
        return -1;
    }
    x->keep = (char)truth;
    return 0;
}

/* RequestAnnotations.apply_to(record). */
static int
apply_annotations(ExchangeCore *x)
{
    static const int targets[] = {R_USER_ID, R_COMPANY_ID, R_SESSION_TOKEN, R_METADATA, R_ROUTE};
    for (int i = A_USER_ID; i <= A_ROUTE; i++) {
        PyObject *value = aget(x, i);
        if (value == NULL || rset(x, targets[i - A_USER_ID], value) < 0) {
            return -1;
        }
    }
    return 0;
}

/* The integration's annotate(source, annotations), as steps.annotate calls it: what it raises
 * is logged, never lost the call over (a route name). -1 only for what Python would not catch. */
static int
annotate_once(ExchangeCore *x)
{
    Core *core = x->core;
    if (core->annotate == Py_None) {
        return 0;
    }
    PyObject *args[] = {x->source, x->annotations};
    if (done_with(PyObject_Vectorcall(core->annotate, args, 2, NULL)) < 0) {
        return warn_current(core, core->annotate_kind, "read the route of a call");
    }
    return 0;
}

/* ExchangeCore.keep_response_chunk: a chunk of a body that comes in parts, teed up to the cap. */
static int
keep_chunk(ExchangeCore *x, PyObject *chunk)
{
    Core *core = x->core;
    if (!x->keep || core->response_cap < 0) {
        return 0;
    }
    if (x->response_body == NULL || x->response_body == Py_None) {
        PyObject *cap = PyLong_FromSsize_t(core->response_cap);
        PyObject *tee = cap == NULL ? NULL : PyObject_CallOneArg(core->body_tee, cap);
        Py_XDECREF(cap);
        if (tee == NULL) {
            return -1;
        }
        Py_XSETREF(x->response_body, tee);
    }
    PyObject *tee = Py_NewRef(x->response_body);
    int failed = done_with(PyObject_CallMethodOneArg(tee, K_ADD, chunk));
    Py_DECREF(tee);
    return failed;
}

/* ExchangeCore.keep_last_response_chunk: the body's last chunk, or its only one (then kept
 * as it is, no tee). */
static int
keep_last_chunk(ExchangeCore *x, PyObject *chunk)
{
    Core *core = x->core;
    Py_ssize_t cap = core->response_cap;
    if (!x->keep || cap < 0 || x->done) {
        return 0;
    }
    if (x->response_body != NULL && x->response_body != Py_None) {
        return keep_chunk(x, chunk);
    }
    if (PyBytes_CheckExact(chunk) && PyBytes_GET_SIZE(chunk) <= cap) {
        Py_ssize_t size = PyBytes_GET_SIZE(chunk);
        PyObject *length = PyLong_FromSsize_t(size);
        if (length == NULL) {
            return -1;
        }
        int failed = rset(x, R_RESPONSE_BODY, size ? chunk : Py_None) < 0 || rset(x, R_RESPONSE_BODY_SIZE, length) < 0
                     || rset(x, R_RESPONSE_BODY_TRUNCATED, Py_False) < 0;
        Py_DECREF(length);
        return failed ? -1 : 0;
    }
    PyObject *limit = PyLong_FromSsize_t(cap);
    if (limit == NULL) {
        return -1;
    }
    int failed = done_with(PyObject_CallFunctionObjArgs(core->keep_whole_response, x->record, chunk, limit, NULL));
    Py_DECREF(limit);
    return failed;
}

/* Completes the record and hands it to the agent (the part of finish that may fail). */
static int
finish_steps(ExchangeCore *x, PyObject *error)
{
    Core *core = x->core;
    PyObject *now = PyObject_CallNoArgs(core->time);
    if (now == NULL) {
        return -1;
    }
    int failed = rset(x, R_RESPONSE_TIME, now);
    Py_DECREF(now);
    if (failed) {
        return -1;
    }
    if (error != Py_None) {
        PyObject *name = PyObject_GetAttr((PyObject *)Py_TYPE(error), K_NAME);
        if (name == NULL) {
            return -1;
        }
        failed = rset(x, R_ERROR, name);
        Py_DECREF(name);
        if (failed) {
            return -1;
        }
    }
    if (!x->keep) {
        return 0;
    }
    PyObject *status = rget(x, R_STATUS);
    if (status == NULL) {
        return -1;
    }
    int unstarted = PyObject_RichCompareBool(status, ZERO, Py_EQ);
    Py_DECREF(status);
    if (unstarted < 0) {
        return -1;
    }
    if (unstarted) {
        if (done_with(PyObject_CallFunctionObjArgs(core->decide_unstarted, (PyObject *)x, error, NULL)) < 0) {
            return -1;
        }
        if (!x->keep) {
            return 0;
        }
    }
    struct {
        PyObject *tee;
        PyObject *method;
    } bodies[] = {{x->request_body, K_TO_REQUEST}, {x->response_body, K_TO_RESPONSE}};
    for (int i = 0; i < 2; i++) {
        if (bodies[i].tee != NULL && bodies[i].tee != Py_None) {
            PyObject *tee = Py_NewRef(bodies[i].tee);
            int failed = done_with(PyObject_CallMethodOneArg(tee, bodies[i].method, x->record));
            Py_DECREF(tee);
            if (failed) {
                return -1;
            }
        }
    }
    /* Looked up at every call: a test or a benchmark may replace the agent's submit. */
    return done_with(PyObject_CallMethodOneArg(core->agent, K_SUBMIT, x->record));
}

/* Exchange.finish: completes the record exactly once; -1 only for what Python would not catch. */
static int
finish(ExchangeCore *x, PyObject *error)
{
    if (x->done) {
        return 0;
    }
    x->done = 1;
    if (finish_steps(x, error) < 0) {
        return warn_current(x->core, x->core->finish_kind, "complete an event");
    }
    return 0;
}

/* -- the Python methods and members both exchange types have */

static PyObject *
ExchangeCore_keep_chunk(ExchangeCore *self, PyObject *chunk)
{
    return !CLEARED(self) && keep_chunk(self, chunk) < 0 ? NULL : Py_NewRef(Py_None);
}

static PyObject *
ExchangeCore_keep_last_chunk(ExchangeCore *self, PyObject *chunk)
{
    return !CLEARED(self) && keep_last_chunk(self, chunk) < 0 ? NULL : Py_NewRef(Py_None);
}

static PyObject *
ExchangeCore_finish(ExchangeCore *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"error", NULL};
    PyObject *error = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:finish", keywords, &error)) {
        return NULL;
    }
    return !CLEARED(self) && finish(self, error) < 0 ? NULL : Py_NewRef(Py_None);
}

static PyObject *
ExchangeCore_get_middleware(ExchangeCore *self, void *closure)
{
    return Py_NewRef(CLEARED(self) ? Py_None : self->core->middleware);
}

#define EXCHANGE_CORE_METHODS                                                                                         \
    {"keep_response_chunk", (PyCFunction)ExchangeCore_keep_chunk, METH_O, "Tee a chunk of a body that comes in parts."}, \
        {"keep_last_response_chunk", (PyCFunction)ExchangeCore_keep_last_chunk, METH_O,                               \
         "Keep the body's last (or only) chunk."},                                                                    \
        {"finish", (PyCFunction)(void (*)(void))ExchangeCore_finish, METH_VARARGS | METH_KEYWORDS,                   \
         "finish(error=None)\n--\n\nComplete the record exactly once and hand it over; never raises."}

/* The members both have; `source` is named by the module ("environ", "scope"). */
#define EXCHANGE_CORE_MEMBERS(source_name)                                                                            \
    {source_name, T_OBJECT_EX, offsetof(ExchangeCore, source), READONLY, NULL},                                      \
        {"record", T_OBJECT_EX, offsetof(ExchangeCore, record), READONLY, NULL},                                     \
        {"annotations", T_OBJECT_EX, offsetof(ExchangeCore, annotations), READONLY, NULL},                           \
        {"request_body", T_OBJECT, offsetof(ExchangeCore, request_body), 0, NULL},                                   \
        {"response_body", T_OBJECT, offsetof(ExchangeCore, response_body), 0, NULL},                                 \
        {"extra_headers", T_OBJECT, offsetof(ExchangeCore, extra_headers), 0, NULL},                                 \
        {"keep", T_BOOL, offsetof(ExchangeCore, keep), 0, NULL}, {"done", T_BOOL, offsetof(ExchangeCore, done), 0, NULL}

static PyGetSetDef ExchangeCore_getset[] = {
    {"middleware", (getter)ExchangeCore_get_middleware, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

#endif /* MOESIF_EXCHANGE_CORE_H */
