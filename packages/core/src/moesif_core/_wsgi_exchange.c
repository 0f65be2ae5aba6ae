/* The WSGI capture layer's request path in C -- the optional native half of moesif_core.wsgi.
 *
 * Around a cheap app the Python capture layer was some 500 bytecodes a call (its __call__ and
 * start_response wrapper, begin_exchange, the Exchange and its annotations, respond, the
 * sampling decision, finish), most of what it cost. This file does the usual call itself and
 * calls moesif_core.wsgi's own functions (its "steps") for everything else, so each rare case is
 * written once, in Python:
 *
 *   Capture(middleware, steps, make_record, record_from_environ, record_type, annotations,
 *           skip, request_cap, with_transaction_id)
 *       the C request path of one MoesifMiddleware; calling it is MoesifMiddleware.__call__,
 *       .begin(environ) is MoesifMiddleware.begin_exchange.
 *   Exchange: moesif_core.wsgi.Exchange's state and methods (respond, keep_chunk,
 *       keep_last_chunk, finish), the same way.
 *
 * What it reads of the middleware (app, agent, callback_app, annotate, has_callbacks,
 * response_cap) is read once, when the Capture is made: the middleware sets them in __init__
 * and never again. The agent's `submit` and `plain_config` are read at every call (a test or a
 * benchmark may replace `submit`; the served config changes). `plain_config` True (no
 * governance rules, every call kept) lets the usual call skip the governance gate and
 * call_filter.keep_call, which would both answer "nothing to do".
 *
 * Held equal to the Python path by tests (test_wsgi_native.py runs the WSGI capture tests on
 * both). Nothing here may raise into the app: a failure of ours is one log line
 * (steps.warn_failure) and the call goes on as the Python version's would.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include "structmember.h"

/* The record's slots this file reads and writes. */
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

static PyObject *K_ANNOTATIONS, *K_CONTENT_LENGTH, *K_TRANSFER_ENCODING, *K_FILE_WRAPPER, *K_TXN_HEADER;
static PyObject *K_PAIRS, *K_SKIP_NAME, *K_SKIPPED, *K_SUBMIT, *K_PLAIN_CONFIG, *K_GOVERNOR;
static PyObject *K_GOVERN, *K_ENSURE_STARTED, *K_COUNT, *K_STARTED, *K_TO_REQUEST, *K_TO_RESPONSE, *K_ADD;
static PyObject *K_NAME, *K_PY_CALL, *K_PY_BEGIN;
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

/* ------------------------------------------------------------------------------- Capture */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *middleware, *app, *agent, *callback_app, *annotate, *skip;
    PyObject *make_record, *record_from_environ, *record_type, *annotations, *time;
    /* steps (moesif_core.wsgi) */
    PyObject *warn_failure, *annotate_step, *identify, *decide_unstarted, *status_code, *tee_request_body;
    PyObject *keep_call, *merge_header_pairs, *keep_whole_response, *call_safely, *body_tee, *response_tee;
    Py_ssize_t response_cap, request_cap;
    int has_callbacks, with_transaction_id, started;
    Py_ssize_t record_offsets[R_COUNT];
    Py_ssize_t annotation_offsets[A_COUNT];
    Py_ssize_t annotation_slots[MAX_SLOTS];
    int annotation_slot_count;
} Capture;

#define CAPTURE_OBJECTS(X)                                                                                           \
    X(middleware) X(app) X(agent) X(callback_app) X(annotate) X(skip) X(make_record) X(record_from_environ)          \
    X(record_type) X(annotations) X(time) X(warn_failure) X(annotate_step) X(identify) X(decide_unstarted)            \
    X(status_code) X(tee_request_body) X(keep_call) X(merge_header_pairs) X(keep_whole_response) X(call_safely)       \
    X(body_tee) X(response_tee)

static int
Capture_traverse(Capture *self, visitproc visit, void *arg)
{
#define VISIT(name) Py_VISIT(self->name);
    CAPTURE_OBJECTS(VISIT)
#undef VISIT
    return 0;
}

static int
Capture_clear(Capture *self)
{
#define CLEAR(name) Py_CLEAR(self->name);
    CAPTURE_OBJECTS(CLEAR)
#undef CLEAR
    return 0;
}

static void
Capture_dealloc(Capture *self)
{
    PyObject_GC_UnTrack(self);
    Capture_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

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

static PyObject *Capture_vectorcall(Capture *self, PyObject *const *args, size_t nargsf, PyObject *kwnames);

static int
Capture_init(Capture *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "middleware", "steps", "make_record", "record_from_environ", "record_type", "annotations", "skip",
        "request_cap", "with_transaction_id", NULL,
    };
    PyObject *middleware, *steps, *make_record, *record_from_environ, *record_type, *annotations, *skip;
    Py_ssize_t request_cap;
    int with_transaction_id;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOO!OOnp:Capture", keywords, &middleware, &steps, &make_record,
            &record_from_environ, &PyType_Type, &record_type, &annotations, &skip, &request_cap, &with_transaction_id)) {
        return -1;
    }
    if (self->middleware != NULL) {
        /* Exchanges made so far read this Capture's fields: it is never changed once made. */
        PyErr_SetString(PyExc_TypeError, "a Capture is initialised once");
        return -1;
    }
    if (find_offsets((PyTypeObject *)record_type, RECORD_NAMES, R_COUNT, self->record_offsets, NULL, NULL) < 0
        || find_offsets(Py_TYPE(annotations), ANNOTATION_NAMES, A_COUNT, self->annotation_offsets, self->annotation_slots,
               &self->annotation_slot_count) < 0) {
        return -1;
    }
    for (int i = 0; i < self->annotation_slot_count; i++) {
        PyObject *value = *(PyObject **)((char *)annotations + self->annotation_slots[i]);
        if (value == NULL) {
            PyErr_SetString(PyExc_TypeError, "every slot of the annotations prototype must be set");
            return -1;
        }
    }
    self->middleware = Py_NewRef(middleware);
    self->make_record = Py_NewRef(make_record);
    self->record_from_environ = Py_NewRef(record_from_environ);
    self->record_type = Py_NewRef(record_type);
    self->annotations = Py_NewRef(annotations);
    self->skip = Py_NewRef(skip);
    self->request_cap = request_cap;
    self->with_transaction_id = with_transaction_id;
    self->started = 0;
    PyObject *time_module = PyImport_ImportModule("time");
    if (time_module == NULL) {
        return -1;
    }
    int failed = take_attr(&self->time, time_module, "time");
    Py_DECREF(time_module);
    PyObject *has_callbacks = NULL, *response_cap = NULL;
    if (failed || take_attr(&self->app, middleware, "app") < 0 || take_attr(&self->agent, middleware, "agent") < 0
        || take_attr(&self->callback_app, middleware, "callback_app") < 0
        || take_attr(&self->annotate, middleware, "annotate") < 0 || take_attr(&has_callbacks, middleware, "has_callbacks") < 0
        || take_attr(&response_cap, middleware, "response_cap") < 0) {
        Py_XDECREF(has_callbacks);
        Py_XDECREF(response_cap);
        return -1;
    }
    self->has_callbacks = PyObject_IsTrue(has_callbacks);
    self->response_cap = PyLong_AsSsize_t(response_cap);
    Py_DECREF(has_callbacks);
    Py_DECREF(response_cap);
    if (self->has_callbacks < 0 || (self->response_cap == -1 && PyErr_Occurred())) {
        return -1;
    }
    if (take_attr(&self->warn_failure, steps, "warn_failure") < 0 || take_attr(&self->annotate_step, steps, "annotate") < 0
        || take_attr(&self->identify, steps, "identify") < 0 || take_attr(&self->decide_unstarted, steps, "decide_unstarted") < 0
        || take_attr(&self->status_code, steps, "status_code") < 0
        || take_attr(&self->tee_request_body, steps, "tee_request_body") < 0
        || take_attr(&self->keep_call, steps, "keep_call") < 0
        || take_attr(&self->merge_header_pairs, steps, "merge_header_pairs") < 0
        || take_attr(&self->keep_whole_response, steps, "keep_whole_response") < 0
        || take_attr(&self->call_safely, steps, "call_safely") < 0 || take_attr(&self->body_tee, steps, "BodyTee") < 0
        || take_attr(&self->response_tee, steps, "ResponseTee") < 0) {
        return -1;
    }
    self->vectorcall = (vectorcallfunc)Capture_vectorcall;
    return 0;
}

/* ------------------------------------------------------------------------------- Exchange */

typedef struct {
    PyObject_HEAD
    Capture *capture;
    PyObject *environ, *record, *annotations, *request_body, *response_body, *extra_headers;
    char keep, done;
    char fast_record; /* the record is of the class the offsets were read from */
} Exchange;

static PyTypeObject ExchangeType;

static int
Exchange_traverse(Exchange *self, visitproc visit, void *arg)
{
    Py_VISIT(self->capture);
    Py_VISIT(self->environ);
    Py_VISIT(self->record);
    Py_VISIT(self->annotations);
    Py_VISIT(self->request_body);
    Py_VISIT(self->response_body);
    Py_VISIT(self->extra_headers);
    return 0;
}

static int
Exchange_clear(Exchange *self)
{
    Py_CLEAR(self->capture);
    Py_CLEAR(self->environ);
    Py_CLEAR(self->record);
    Py_CLEAR(self->annotations);
    Py_CLEAR(self->request_body);
    Py_CLEAR(self->response_body);
    Py_CLEAR(self->extra_headers);
    return 0;
}

static void
Exchange_dealloc(Exchange *self)
{
    PyObject_GC_UnTrack(self);
    Exchange_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* record.<slot i> = value; -1 on failure. */
static int
rset(Exchange *x, int i, PyObject *value)
{
    if (x->fast_record) {
        PyObject **slot = (PyObject **)((char *)x->record + x->capture->record_offsets[i]);
        Py_INCREF(value);
        Py_XSETREF(*slot, value);
        return 0;
    }
    return PyObject_SetAttr(x->record, RECORD_KEYS[i], value);
}

/* record.<slot i>, a new reference; NULL on failure. */
static PyObject *
rget(Exchange *x, int i)
{
    if (x->fast_record) {
        PyObject *value = *(PyObject **)((char *)x->record + x->capture->record_offsets[i]);
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
aget(Exchange *x, int i)
{
    PyObject *value = *(PyObject **)((char *)x->annotations + x->capture->annotation_offsets[i]);
    if (value == NULL) {
        PyErr_Format(PyExc_AttributeError, "%s", ANNOTATION_NAMES[i]);
    }
    return value;
}

/* A new RequestAnnotations: a copy of the prototype's slots (its defaults), no __init__. */
static PyObject *
new_annotations(Capture *c)
{
    PyTypeObject *type = Py_TYPE(c->annotations);
    PyObject *made = type->tp_alloc(type, 0);
    if (made == NULL) {
        return NULL;
    }
    for (int i = 0; i < c->annotation_slot_count; i++) {
        PyObject *value = *(PyObject **)((char *)c->annotations + c->annotation_slots[i]);
        *(PyObject **)((char *)made + c->annotation_slots[i]) = Py_XNewRef(value);
    }
    return made;
}

static Exchange *
new_exchange(Capture *c, PyObject *environ, PyObject *record)
{
    PyObject *annotations = new_annotations(c);
    if (annotations == NULL) {
        return NULL;
    }
    Exchange *x = PyObject_GC_New(Exchange, &ExchangeType);
    if (x == NULL) {
        Py_DECREF(annotations);
        return NULL;
    }
    x->capture = (Capture *)Py_NewRef(c);
    x->environ = Py_NewRef(environ);
    x->record = Py_NewRef(record);
    x->annotations = annotations;
    x->request_body = Py_NewRef(Py_None);
    x->response_body = Py_NewRef(Py_None);
    x->extra_headers = Py_NewRef(Py_None);
    x->keep = 1;
    x->done = 0;
    x->fast_record = (PyObject *)Py_TYPE(record) == c->record_type;
    PyObject_GC_Track(x);
    return x;
}

/* Logs the exception being raised through steps.warn_failure and clears it, when it is an
 * Exception (what the Python version catches); anything else (KeyboardInterrupt) stays raised:
 * -1 then. */
static int
warn_current(Capture *c, const char *kind, const char *what)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    PyObject *result = PyObject_CallFunction(c->warn_failure, "ssO", kind, what, value != NULL ? value : Py_None);
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
plain_config(Capture *c)
{
    PyObject *plain = PyObject_GetAttr(c->agent, K_PLAIN_CONFIG);
    if (plain == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(plain);
    return plain == Py_True;
}

/* The sampling decision (call_filter.keep_call), without a call for the usual config. */
static int
decide(Exchange *x)
{
    Capture *c = x->capture;
    PyObject *skip = aget(x, A_SKIP);
    if (skip == NULL) {
        return -1;
    }
    if (skip == Py_False && plain_config(c)) {
        x->keep = 1;
        return rset(x, R_WEIGHT, ONE);
    }
    PyObject *kept = PyObject_CallFunctionObjArgs(c->keep_call, c->agent, x->record, x->annotations, NULL);
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
apply_annotations(Exchange *x)
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

/* Exchange.respond: the headers to send (new reference), NULL on failure. */
static PyObject *
respond(Exchange *x, PyObject *code, PyObject *headers)
{
    Capture *c = x->capture;
    if (rset(x, R_STATUS, code) < 0) {
        return NULL;
    }
    if (c->annotate != Py_None) {
        if (done_with(PyObject_CallOneArg(c->annotate_step, (PyObject *)x)) < 0) {
            return NULL;
        }
    }
    int extra = x->extra_headers == NULL ? 0 : PyObject_IsTrue(x->extra_headers);
    if (extra < 0) {
        return NULL;
    }
    if (extra) {
        headers = PyObject_CallFunctionObjArgs(c->merge_header_pairs, headers, x->extra_headers, NULL);
        if (headers == NULL) {
            return NULL;
        }
    } else {
        Py_INCREF(headers);
    }
    PyObject *txn = rget(x, R_TRANSACTION_ID);
    if (txn == NULL) {
        goto fail;
    }
    if (txn != Py_None) {
        /* [*headers, (X-Moesif-Transaction-Id, txn)] */
        PyObject *pair = PyTuple_Pack(2, K_TXN_HEADER, txn);
        PyObject *sent = pair == NULL ? NULL : PySequence_List(headers);
        if (sent == NULL || PyList_Append(sent, pair) < 0) {
            Py_XDECREF(sent);
            Py_XDECREF(pair);
            Py_DECREF(txn);
            goto fail;
        }
        Py_DECREF(pair);
        Py_SETREF(headers, sent);
    }
    Py_DECREF(txn);
    if (rset(x, R_RESPONSE_HEADERS, headers) < 0 || rset(x, R_RESPONSE_HEADER_STYLE, K_PAIRS) < 0) {
        goto fail;
    }
    if (!x->keep) {
        return headers;
    }
    if (c->has_callbacks) {
        if (done_with(PyObject_CallFunctionObjArgs(c->identify, (PyObject *)x, headers, NULL)) < 0) {
            goto fail;
        }
    } else if (apply_annotations(x) < 0) {
        goto fail;
    }
    if (decide(x) < 0) {
        goto fail;
    }
    return headers;
fail:
    Py_DECREF(headers);
    return NULL;
}

/* Exchange.keep_chunk: a chunk of a body that comes in parts, teed up to the cap. */
static int
keep_chunk(Exchange *x, PyObject *chunk)
{
    Capture *c = x->capture;
    if (!x->keep || c->response_cap < 0) {
        return 0;
    }
    if (x->response_body == NULL || x->response_body == Py_None) {
        PyObject *cap = PyLong_FromSsize_t(c->response_cap);
        PyObject *tee = cap == NULL ? NULL : PyObject_CallOneArg(c->body_tee, cap);
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

/* Exchange.keep_last_chunk: the body's last chunk, or its only one (then kept as it is, no tee). */
static int
keep_last_chunk(Exchange *x, PyObject *chunk)
{
    Capture *c = x->capture;
    Py_ssize_t cap = c->response_cap;
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
    int failed = done_with(PyObject_CallFunctionObjArgs(c->keep_whole_response, x->record, chunk, limit, NULL));
    Py_DECREF(limit);
    return failed;
}

/* Completes the record and hands it to the agent (the part of finish that may fail). */
static int
finish_steps(Exchange *x, PyObject *error)
{
    Capture *c = x->capture;
    PyObject *now = PyObject_CallNoArgs(c->time);
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
        if (done_with(PyObject_CallFunctionObjArgs(c->decide_unstarted, (PyObject *)x, error, NULL)) < 0) {
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
    return done_with(PyObject_CallMethodOneArg(c->agent, K_SUBMIT, x->record));
}

/* Exchange.finish: completes the record exactly once; -1 only for what Python would not catch. */
static int
finish(Exchange *x, PyObject *error)
{
    if (x->done) {
        return 0;
    }
    x->done = 1;
    if (finish_steps(x, error) < 0) {
        return warn_current(x->capture, "wsgi-finish", "complete an event");
    }
    return 0;
}

/* -- Exchange's Python methods */

/* An exchange the cyclic GC cleared (its last reference in a collected cycle) records nothing more. */
#define CLEARED(x) ((x)->capture == NULL)

static PyObject *
Exchange_respond(Exchange *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "respond() takes 2 positional arguments but %zd were given", nargs);
        return NULL;
    }
    if (CLEARED(self)) {
        return Py_NewRef(args[1]);
    }
    return respond(self, args[0], args[1]);
}

static PyObject *
Exchange_keep_chunk(Exchange *self, PyObject *chunk)
{
    return !CLEARED(self) && keep_chunk(self, chunk) < 0 ? NULL : Py_NewRef(Py_None);
}

static PyObject *
Exchange_keep_last_chunk(Exchange *self, PyObject *chunk)
{
    return !CLEARED(self) && keep_last_chunk(self, chunk) < 0 ? NULL : Py_NewRef(Py_None);
}

static PyObject *
Exchange_finish(Exchange *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"error", NULL};
    PyObject *error = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:finish", keywords, &error)) {
        return NULL;
    }
    return !CLEARED(self) && finish(self, error) < 0 ? NULL : Py_NewRef(Py_None);
}

static PyObject *
Exchange_get_middleware(Exchange *self, void *closure)
{
    return Py_NewRef(CLEARED(self) ? Py_None : self->capture->middleware);
}

static PyMethodDef Exchange_methods[] = {
    {"respond", (PyCFunction)(void (*)(void))Exchange_respond, METH_FASTCALL,
     "respond(code, headers, /)\n--\n\nRecord status and headers, ask the callbacks, decide sampling; the headers to send."},
    {"keep_chunk", (PyCFunction)Exchange_keep_chunk, METH_O, "Tee a chunk of a body that comes in parts."},
    {"keep_response_chunk", (PyCFunction)Exchange_keep_chunk, METH_O, "Tee a chunk of a body that comes in parts."},
    {"keep_last_chunk", (PyCFunction)Exchange_keep_last_chunk, METH_O, "Keep the body's last (or only) chunk."},
    {"keep_last_response_chunk", (PyCFunction)Exchange_keep_last_chunk, METH_O, "Keep the body's last (or only) chunk."},
    {"finish", (PyCFunction)(void (*)(void))Exchange_finish, METH_VARARGS | METH_KEYWORDS,
     "finish(error=None)\n--\n\nComplete the record exactly once and hand it over; never raises."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Exchange_members[] = {
    {"environ", T_OBJECT_EX, offsetof(Exchange, environ), READONLY, NULL},
    {"record", T_OBJECT_EX, offsetof(Exchange, record), READONLY, NULL},
    {"annotations", T_OBJECT_EX, offsetof(Exchange, annotations), READONLY, NULL},
    {"request_body", T_OBJECT, offsetof(Exchange, request_body), 0, NULL},
    {"response_body", T_OBJECT, offsetof(Exchange, response_body), 0, NULL},
    {"extra_headers", T_OBJECT, offsetof(Exchange, extra_headers), 0, NULL},
    {"keep", T_BOOL, offsetof(Exchange, keep), 0, NULL},
    {"done", T_BOOL, offsetof(Exchange, done), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Exchange_getset[] = {
    {"middleware", (getter)Exchange_get_middleware, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ExchangeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "moesif_core._wsgi_exchange.Exchange",
    .tp_basicsize = sizeof(Exchange),
    .tp_dealloc = (destructor)Exchange_dealloc,
    .tp_free = PyObject_GC_Del,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The state of one WSGI call while the app and server work on it; see moesif_core.wsgi.Exchange.",
    .tp_traverse = (traverseproc)Exchange_traverse,
    .tp_clear = (inquiry)Exchange_clear,
    .tp_methods = Exchange_methods,
    .tp_members = Exchange_members,
    .tp_getset = Exchange_getset,
};

/* ------------------------------------------------------------------------------- StartResponse */

/* The start_response the app gets: records the response start, then calls the server's. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Exchange *exchange;
    PyObject *start_response;
} StartResponse;

static PyTypeObject StartResponseType;

static int
StartResponse_traverse(StartResponse *self, visitproc visit, void *arg)
{
    Py_VISIT(self->exchange);
    Py_VISIT(self->start_response);
    return 0;
}

static int
StartResponse_clear(StartResponse *self)
{
    Py_CLEAR(self->exchange);
    Py_CLEAR(self->start_response);
    return 0;
}

static void
StartResponse_dealloc(StartResponse *self)
{
    PyObject_GC_UnTrack(self);
    StartResponse_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The code of a status line: its first three characters when they are ASCII digits, else
 * steps.status_code (int(status[:3]), 0 when that fails). */
static PyObject *
code_of(Capture *c, PyObject *status)
{
    if (PyUnicode_CheckExact(status) && PyUnicode_GET_LENGTH(status) >= 3) {
        int kind = PyUnicode_KIND(status);
        const void *data = PyUnicode_DATA(status);
        Py_UCS4 a = PyUnicode_READ(kind, data, 0), b = PyUnicode_READ(kind, data, 1), d = PyUnicode_READ(kind, data, 2);
        if (a >= '0' && a <= '9' && b >= '0' && b <= '9' && d >= '0' && d <= '9') {
            return PyLong_FromLong((long)((a - '0') * 100 + (b - '0') * 10 + (d - '0')));
        }
    }
    return PyObject_CallOneArg(c->status_code, status);
}

static PyObject *
StartResponse_vectorcall(StartResponse *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *given[3] = {NULL, NULL, NULL}; /* status, headers, exc_info */
    static const char *names[3] = {"status", "headers", "exc_info"};
    if (nargs > 3) {
        PyErr_Format(PyExc_TypeError, "start_response() takes from 2 to 3 positional arguments but %zd were given", nargs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        given[i] = args[i];
    }
    Py_ssize_t keywords = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < keywords; k++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, k);
        int found = -1;
        for (int i = 0; i < 3; i++) {
            if (PyUnicode_CompareWithASCIIString(name, names[i]) == 0) {
                found = i;
            }
        }
        if (found < 0 || given[found] != NULL) {
            PyErr_Format(PyExc_TypeError, "start_response() got an unexpected or repeated argument %R", name);
            return NULL;
        }
        given[found] = args[nargs + k];
    }
    if (given[0] == NULL || given[1] == NULL) {
        PyErr_SetString(PyExc_TypeError, "start_response() missing its status or headers");
        return NULL;
    }
    PyObject *status = given[0], *exc_info = given[2];
    Exchange *x = self->exchange;
    if (self->start_response == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "start_response() called after its call was collected");
        return NULL;
    }
    PyObject *headers = NULL;
    if (x == NULL || CLEARED(x)) {
        headers = Py_NewRef(given[1]);
    } else {
        PyObject *code = code_of(x->capture, status);
        if (code != NULL) {
            headers = respond(x, code, given[1]);
            Py_DECREF(code);
        }
    }
    if (headers == NULL) {
        if (warn_current(x->capture, "wsgi-start-response", "record a response start") < 0) {
            return NULL;
        }
        headers = Py_NewRef(given[1]);
    }
    PyObject *result;
    if (exc_info != NULL && exc_info != Py_None) {
        result = PyObject_CallFunctionObjArgs(self->start_response, status, headers, exc_info, NULL);
    } else {
        result = PyObject_CallFunctionObjArgs(self->start_response, status, headers, NULL);
    }
    Py_DECREF(headers);
    return result;
}

static PyTypeObject StartResponseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "moesif_core._wsgi_exchange.StartResponse",
    .tp_basicsize = sizeof(StartResponse),
    .tp_dealloc = (destructor)StartResponse_dealloc,
    .tp_free = PyObject_GC_Del,
    .tp_vectorcall_offset = offsetof(StartResponse, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "The start_response an app gets under the capture layer.",
    .tp_traverse = (traverseproc)StartResponse_traverse,
    .tp_clear = (inquiry)StartResponse_clear,
};

/* ------------------------------------------------------------------------------- the call */

/* environ[key] (borrowed), NULL when absent or on error (then set). */
static PyObject *
entry(PyObject *environ, PyObject *key)
{
    return PyDict_GetItemWithError(environ, key);
}

/* Whether a request surely has no body by its headers: no Content-Length (or "" or "0") and no
 * Transfer-Encoding; anything else goes to steps.tee_request_body, which decides exactly. */
static int
surely_no_body(PyObject *environ)
{
    PyObject *length = entry(environ, K_CONTENT_LENGTH);
    if (length == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (length != NULL && length != Py_None) {
        if (!PyUnicode_CheckExact(length)) {
            return 0;
        }
        Py_ssize_t n = PyUnicode_GET_LENGTH(length);
        if (n > 1 || (n == 1 && PyUnicode_READ_CHAR(length, 0) != '0')) {
            return 0;
        }
    }
    PyObject *coding = entry(environ, K_TRANSFER_ENCODING);
    if (coding == NULL && PyErr_Occurred()) {
        return -1;
    }
    return coding == NULL || coding == Py_None || (PyUnicode_CheckExact(coding) && PyUnicode_GET_LENGTH(coding) == 0);
}

/* MoesifMiddleware.begin_exchange for a dict environ: a new Exchange, None (SKIP said no), NULL. */
static PyObject *
begin(Capture *c, PyObject *environ)
{
    PyObject *now = PyObject_CallNoArgs(c->time);
    if (now == NULL) {
        return NULL;
    }
    if (!c->started) {
        /* The first call starts the sender and the config fetch. */
        c->started = 1;
        if (PyObject_SetAttr(c->middleware, K_STARTED, Py_True) < 0
            || done_with(PyObject_CallMethodNoArgs(c->agent, K_ENSURE_STARTED)) < 0) {
            Py_DECREF(now);
            return NULL;
        }
    }
    if (c->skip != Py_None) {
        PyObject *skipped = PyObject_CallFunctionObjArgs(c->call_safely, K_SKIP_NAME, c->skip, c->callback_app, environ, NULL);
        int truth = skipped == NULL ? -1 : PyObject_IsTrue(skipped);
        Py_XDECREF(skipped);
        if (truth != 0) {
            Py_DECREF(now);
            if (truth < 0) {
                return NULL;
            }
            if (done_with(PyObject_CallMethodOneArg(c->agent, K_COUNT, K_SKIPPED)) < 0) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
    }
    PyObject *with_id = c->with_transaction_id ? Py_True : Py_False;
    PyObject *record = Py_None;
    if (c->make_record != Py_None) {
        PyObject *made_args[] = {environ, now, with_id};
        record = PyObject_Vectorcall(c->make_record, made_args, 3, NULL);
        if (record == NULL) {
            Py_DECREF(now);
            return NULL;
        }
    } else {
        Py_INCREF(record);
    }
    if (record == Py_None) {
        Py_DECREF(record);
        record = PyObject_CallFunctionObjArgs(c->record_from_environ, environ, now, with_id, NULL);
    }
    Py_DECREF(now);
    if (record == NULL) {
        return NULL;
    }
    Exchange *x = new_exchange(c, environ, record);
    Py_DECREF(record);
    if (x == NULL) {
        return NULL;
    }
    if (PyDict_SetItem(environ, K_ANNOTATIONS, x->annotations) < 0) {
        Py_DECREF(x);
        return NULL;
    }
    if (c->request_cap >= 0) {
        int none = surely_no_body(environ);
        if (none < 0) {
            Py_DECREF(x);
            return NULL;
        }
        if (!none) {
            PyObject *cap = PyLong_FromSsize_t(c->request_cap);
            int failed = cap == NULL
                         || done_with(PyObject_CallFunctionObjArgs(c->tee_request_body, (PyObject *)x, environ, cap, NULL)) < 0;
            Py_XDECREF(cap);
            if (failed) {
                Py_DECREF(x);
                return NULL;
            }
        }
    }
    return (PyObject *)x;
}

static PyObject *
Capture_begin(Capture *self, PyObject *environ)
{
    if (!PyDict_Check(environ)) {
        return PyObject_CallMethodOneArg(self->middleware, K_PY_BEGIN, environ);
    }
    return begin(self, environ);
}

/* After the app returned `result` with the response started or not: what the server gets (a new
 * reference; never NULL once the app succeeded -- a failure of ours is logged, and the server
 * gets the app's own iterable). */
static PyObject *
after_app(Capture *c, Exchange *x, PyObject *environ, PyObject *result)
{
    PyObject *status = rget(x, R_STATUS);
    int started = status == NULL ? -1 : PyObject_IsTrue(status);
    Py_XDECREF(status);
    if (started < 0) {
        goto failed;
    }
    if (!x->keep && started) {
        /* Dropped (sampling or SKIP) once the response started: the app's own iterable. */
        x->done = 1;
        return result;
    }
    if ((PyList_CheckExact(result) || PyTuple_CheckExact(result)) && started) {
        /* The whole body is here (Bottle, Pyramid, most plain apps): kept, the call completed now. */
        Py_ssize_t n = Py_SIZE(result);
        PyObject **items = PyList_CheckExact(result) ? ((PyListObject *)result)->ob_item : ((PyTupleObject *)result)->ob_item;
        if (n == 1) {
            PyObject *chunk = Py_NewRef(items[0]);
            int failed = keep_last_chunk(x, chunk);
            Py_DECREF(chunk);
            if (failed < 0) {
                goto failed;
            }
        } else {
            for (Py_ssize_t i = 0; i < Py_SIZE(result); i++) {
                items = PyList_CheckExact(result) ? ((PyListObject *)result)->ob_item : ((PyTupleObject *)result)->ob_item;
                PyObject *chunk = Py_NewRef(items[i]);
                int failed = keep_chunk(x, chunk);
                Py_DECREF(chunk);
                if (failed < 0) {
                    goto failed;
                }
            }
        }
        if (finish(x, Py_None) < 0) {
            goto failed;
        }
        return result;
    }
    PyObject *wrapper = entry(environ, K_FILE_WRAPPER);
    if (wrapper == NULL && PyErr_Occurred()) {
        goto failed;
    }
    if (wrapper != NULL && wrapper != Py_None && PyType_Check(wrapper)) {
        Py_INCREF(wrapper);
        int is_file = PyObject_IsInstance(result, wrapper);
        Py_DECREF(wrapper);
        if (is_file < 0) {
            goto failed;
        }
        if (is_file) {
            /* The server's sendfile path stays: the call is logged without its body. */
            if (finish(x, Py_None) < 0) {
                goto failed;
            }
            return result;
        }
    }
    PyObject *tee = PyObject_CallFunctionObjArgs(c->response_tee, result, (PyObject *)x, NULL);
    if (tee == NULL) {
        goto failed;
    }
    Py_DECREF(result);
    return tee;
failed:
    if (warn_current(c, "wsgi-finish", "complete an event") < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

static PyObject *
call_app(Capture *c, PyObject *environ, PyObject *start_response)
{
    PyObject *args[] = {environ, start_response};
    return PyObject_Vectorcall(c->app, args, 2, NULL);
}

/* MoesifMiddleware.__call__. */
static PyObject *
Capture_vectorcall(Capture *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 2 || kwnames != NULL || !PyDict_Check(args[0])) {
        /* Not the usual call: MoesifMiddleware's Python version takes it as it is. */
        PyObject *method = PyObject_GetAttr(self->middleware, K_PY_CALL);
        if (method == NULL) {
            return NULL;
        }
        PyObject *result = PyObject_Vectorcall(method, args, nargsf, kwnames);
        Py_DECREF(method);
        return result;
    }
    PyObject *environ = args[0], *start_response = args[1];
    PyObject *begun = begin(self, environ);
    if (begun == NULL) {
        if (warn_current(self, "wsgi-begin", "start capturing a call") < 0) {
            return NULL;
        }
    }
    if (begun == NULL || begun == Py_None) {
        Py_XDECREF(begun);
        return call_app(self, environ, start_response);
    }
    Exchange *x = (Exchange *)begun;
    if (!plain_config(self)) {
        PyObject *governor = PyObject_CallMethodNoArgs(self->middleware, K_GOVERNOR);
        if (governor == NULL && warn_current(self, "wsgi-governance", "apply governance") < 0) {
            Py_DECREF(x);
            return NULL;
        }
        if (governor != NULL && governor != Py_None) {
            PyObject *blocked = PyObject_CallMethodObjArgs(self->middleware, K_GOVERN, governor, (PyObject *)x, environ,
                                                           start_response, NULL);
            Py_DECREF(governor);
            if (blocked == NULL || blocked != Py_None) {
                Py_DECREF(x);
                return blocked;
            }
            Py_DECREF(blocked);
        } else {
            Py_XDECREF(governor);
        }
    }
    StartResponse *wrapper = PyObject_GC_New(StartResponse, &StartResponseType);
    if (wrapper == NULL) {
        Py_DECREF(x);
        return NULL;
    }
    wrapper->vectorcall = (vectorcallfunc)StartResponse_vectorcall;
    wrapper->exchange = (Exchange *)Py_NewRef(x);
    wrapper->start_response = Py_NewRef(start_response);
    PyObject_GC_Track(wrapper);
    PyObject *result = call_app(self, environ, (PyObject *)wrapper);
    Py_DECREF(wrapper);
    if (result == NULL) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        if (traceback != NULL && value != NULL) {
            PyException_SetTraceback(value, traceback);
        }
        if (finish(x, value != NULL ? value : Py_None) < 0) {
            /* finish raised what Python would not catch: that one goes on instead */
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(traceback);
        } else {
            PyErr_Restore(type, value, traceback);
        }
        Py_DECREF(x);
        return NULL;
    }
    result = after_app(self, x, environ, result);
    Py_DECREF(x);
    return result;
}

static PyMethodDef Capture_methods[] = {
    {"begin", (PyCFunction)Capture_begin, METH_O,
     "begin(environ, /)\n--\n\nStart recording a call (MoesifMiddleware.begin_exchange): an Exchange, or None."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CaptureType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "moesif_core._wsgi_exchange.Capture",
    .tp_basicsize = sizeof(Capture),
    .tp_dealloc = (destructor)Capture_dealloc,
    .tp_free = PyObject_GC_Del,
    .tp_vectorcall_offset = offsetof(Capture, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "The C request path of one moesif_core.wsgi.MoesifMiddleware; see the top of _wsgi_exchange.c.",
    .tp_traverse = (traverseproc)Capture_traverse,
    .tp_clear = (inquiry)Capture_clear,
    .tp_methods = Capture_methods,
    .tp_init = (initproc)Capture_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "moesif_core._wsgi_exchange",
    "The WSGI capture layer's request path in C; see moesif_core.wsgi.",
    -1,
    NULL,
};

/* The interface this file gives its Python module (moesif_core.native.native_part): raised with
 * any change the Python side must match, so a build of older sources is refused, not called. */
#define API 1

PyMODINIT_FUNC
PyInit__wsgi_exchange(void)
{
    struct {
        PyObject **target;
        const char *text;
    } strings[] = {
        {&K_ANNOTATIONS, "moesif"}, {&K_CONTENT_LENGTH, "CONTENT_LENGTH"}, {&K_TRANSFER_ENCODING, "HTTP_TRANSFER_ENCODING"},
        {&K_FILE_WRAPPER, "wsgi.file_wrapper"}, {&K_TXN_HEADER, "X-Moesif-Transaction-Id"}, {&K_PAIRS, "pairs"},
        {&K_SKIP_NAME, "SKIP"}, {&K_SKIPPED, "skipped"}, {&K_SUBMIT, "submit"},
        {&K_PLAIN_CONFIG, "plain_config"}, {&K_GOVERNOR, "governor"}, {&K_GOVERN, "_govern"},
        {&K_ENSURE_STARTED, "ensure_started"}, {&K_COUNT, "count"}, {&K_STARTED, "_started"},
        {&K_TO_REQUEST, "to_request"}, {&K_TO_RESPONSE, "to_response"}, {&K_ADD, "add"}, {&K_NAME, "__name__"},
        {&K_PY_CALL, "_py_call"}, {&K_PY_BEGIN, "_py_begin_exchange"},
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        if ((*strings[i].target = PyUnicode_InternFromString(strings[i].text)) == NULL) {
            return NULL;
        }
    }
    for (int i = 0; i < R_COUNT; i++) {
        if ((RECORD_KEYS[i] = PyUnicode_InternFromString(RECORD_NAMES[i])) == NULL) {
            return NULL;
        }
    }
    if ((ZERO = PyLong_FromLong(0)) == NULL || (ONE = PyLong_FromLong(1)) == NULL) {
        return NULL;
    }
    if (PyType_Ready(&CaptureType) < 0 || PyType_Ready(&ExchangeType) < 0 || PyType_Ready(&StartResponseType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Capture", (PyObject *)&CaptureType) < 0
        || PyModule_AddObjectRef(m, "Exchange", (PyObject *)&ExchangeType) < 0
        || PyModule_AddIntConstant(m, "API", API) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
