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
#include "_exchange_core.h"

static PyObject *K_CONTENT_LENGTH, *K_TRANSFER_ENCODING, *K_FILE_WRAPPER, *K_TXN_HEADER;
static PyObject *K_PAIRS, *K_SKIP_NAME, *K_SKIPPED, *K_GOVERN, *K_COUNT, *K_PY_CALL, *K_PY_BEGIN;

/* ------------------------------------------------------------------------------- Capture */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Core core;
    PyObject *app, *callback_app, *skip, *make_record, *record_from_environ;
    /* steps (moesif_core.wsgi) */
    PyObject *identify, *status_code, *tee_request_body, *merge_header_pairs, *call_safely, *response_tee;
    Py_ssize_t request_cap;
    int with_transaction_id;
} Capture;

#define CAPTURE_OBJECTS(X)                                                                                           \
    X(app) X(callback_app) X(skip) X(make_record) X(record_from_environ) X(identify) X(status_code)                  \
    X(tee_request_body) X(merge_header_pairs) X(call_safely) X(response_tee)

CAPTURE_GC_FUNCTIONS

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
    if (self->core.middleware != NULL) {
        /* Exchanges made so far read this Capture's fields: it is never changed once made. */
        PyErr_SetString(PyExc_TypeError, "a Capture is initialised once");
        return -1;
    }
    if (core_init(&self->core, middleware, steps, record_type, annotations, "wsgi-finish", "wsgi-annotate") < 0) {
        return -1;
    }
    self->make_record = Py_NewRef(make_record);
    self->record_from_environ = Py_NewRef(record_from_environ);
    self->skip = Py_NewRef(skip);
    self->request_cap = request_cap;
    self->with_transaction_id = with_transaction_id;
    if (take_attr(&self->app, middleware, "app") < 0 || take_attr(&self->callback_app, middleware, "callback_app") < 0
        || take_attr(&self->identify, steps, "identify") < 0 || take_attr(&self->status_code, steps, "status_code") < 0
        || take_attr(&self->tee_request_body, steps, "tee_request_body") < 0
        || take_attr(&self->merge_header_pairs, steps, "merge_header_pairs") < 0
        || take_attr(&self->call_safely, steps, "call_safely") < 0
        || take_attr(&self->response_tee, steps, "ResponseTee") < 0) {
        return -1;
    }
    self->vectorcall = (vectorcallfunc)Capture_vectorcall;
    return 0;
}

/* ------------------------------------------------------------------------------- Exchange */

typedef ExchangeCore Exchange;

static PyTypeObject ExchangeType;

static Capture *
capture_of(Exchange *x)
{
    return (Capture *)x->owner;
}

/* Exchange.respond: the headers to send (new reference), NULL on failure. */
static PyObject *
respond(Exchange *x, PyObject *code, PyObject *headers)
{
    Capture *c = capture_of(x);
    if (rset(x, R_STATUS, code) < 0 || annotate_once(x) < 0) {
        return NULL;
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
    if (c->core.has_callbacks) {
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

/* -- Exchange's Python methods */

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

static PyMethodDef Exchange_methods[] = {
    {"respond", (PyCFunction)(void (*)(void))Exchange_respond, METH_FASTCALL,
     "respond(code, headers, /)\n--\n\nRecord status and headers, ask the callbacks, decide sampling; the headers to send."},
    {"keep_chunk", (PyCFunction)ExchangeCore_keep_chunk, METH_O, "Tee a chunk of a body that comes in parts."},
    {"keep_last_chunk", (PyCFunction)ExchangeCore_keep_last_chunk, METH_O, "Keep the body's last (or only) chunk."},
    EXCHANGE_CORE_METHODS,
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Exchange_members[] = {
    EXCHANGE_CORE_MEMBERS("environ"),
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject ExchangeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "moesif_core._wsgi_exchange.Exchange",
    .tp_basicsize = sizeof(Exchange),
    .tp_dealloc = (destructor)ExchangeCore_dealloc,
    .tp_free = PyObject_GC_Del,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The state of one WSGI call while the app and server work on it; see moesif_core.wsgi.Exchange.",
    .tp_traverse = (traverseproc)ExchangeCore_traverse,
    .tp_clear = (inquiry)ExchangeCore_clear,
    .tp_methods = Exchange_methods,
    .tp_members = Exchange_members,
    .tp_getset = ExchangeCore_getset,
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
        PyObject *code = code_of(capture_of(x), status);
        if (code != NULL) {
            headers = respond(x, code, given[1]);
            Py_DECREF(code);
        }
    }
    if (headers == NULL) {
        if (warn_current(&capture_of(x)->core, "wsgi-start-response", "record a response start") < 0) {
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
    PyObject *now = PyObject_CallNoArgs(c->core.time);
    if (now == NULL) {
        return NULL;
    }
    if (start_once(&c->core) < 0) {
        Py_DECREF(now);
        return NULL;
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
            if (done_with(PyObject_CallMethodOneArg(c->core.agent, K_COUNT, K_SKIPPED)) < 0) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
    }
    PyObject *record = made_record(c->make_record, c->record_from_environ, environ, now, c->with_transaction_id);
    Py_DECREF(now);
    if (record == NULL) {
        return NULL;
    }
    Exchange *x = new_exchange(&ExchangeType, (PyObject *)c, &c->core, environ, record);
    Py_DECREF(record);
    if (x == NULL) {
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
        return PyObject_CallMethodOneArg(self->core.middleware, K_PY_BEGIN, environ);
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
    if (warn_current(&c->core, "wsgi-finish", "complete an event") < 0) {
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
        PyObject *method = PyObject_GetAttr(self->core.middleware, K_PY_CALL);
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
        if (warn_current(&self->core, "wsgi-begin", "start capturing a call") < 0) {
            return NULL;
        }
    }
    if (begun == NULL || begun == Py_None) {
        Py_XDECREF(begun);
        return call_app(self, environ, start_response);
    }
    Exchange *x = (Exchange *)begun;
    if (!plain_config(&self->core)) {
        PyObject *governor = PyObject_CallMethodNoArgs(self->core.middleware, K_GOVERNOR);
        if (governor == NULL && warn_current(&self->core, "wsgi-governance", "apply governance") < 0) {
            Py_DECREF(x);
            return NULL;
        }
        if (governor != NULL && governor != Py_None) {
            PyObject *blocked = PyObject_CallMethodObjArgs(self->core.middleware, K_GOVERN, governor, (PyObject *)x, environ,
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
    static const Interned strings[] = {
        {&K_CONTENT_LENGTH, "CONTENT_LENGTH"}, {&K_TRANSFER_ENCODING, "HTTP_TRANSFER_ENCODING"},
        {&K_FILE_WRAPPER, "wsgi.file_wrapper"}, {&K_TXN_HEADER, "X-Moesif-Transaction-Id"}, {&K_PAIRS, "pairs"},
        {&K_SKIP_NAME, "SKIP"}, {&K_SKIPPED, "skipped"}, {&K_GOVERN, "_govern"}, {&K_COUNT, "count"},
        {&K_PY_CALL, "_py_call"}, {&K_PY_BEGIN, "_py_begin_exchange"},
    };
    if (core_module_init() < 0 || INTERN_ALL(strings) < 0) {
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
