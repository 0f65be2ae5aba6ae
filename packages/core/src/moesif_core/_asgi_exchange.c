/* The ASGI capture layer's request path in C -- the optional native half of moesif_core.asgi.
 *
 * Around a cheap app the Python capture layer was some 600 bytecodes and three coroutines a
 * call (the send wrapper awaited twice, begin_exchange, the Exchange and its annotations, the
 * response start, the sampling decision, finish). This file begins the usual HTTP call and is
 * the `send` the app gets; moesif_core.asgi's own functions (its "steps") do everything rare, so
 * each rare case is written once, in Python:
 *
 *   Capture(middleware, steps, make_record, record_from_scope, record_type, annotations,
 *           request_cap, with_transaction_id)
 *       the C request path of one MoesifMiddleware; calling it with (scope, receive, send)
 *       begins the call and returns the Send the app gets, or None for a call that is not the
 *       usual one (no HTTP scope, governance rules served, our own failure): the Python path
 *       serves those whole.
 *   Send: the app's `send`. It records the response start and the body, then returns what the
 *       server's send returned, so the app awaits the server directly: no coroutine of ours,
 *       except steps.identify_then_send (callbacks to await first) and steps.send_then_finish
 *       (the last message: the call completes once it went out). Its `receive` is what the app
 *       reads (steps.tee_receive when a request body is logged) and its `finish` ends the call
 *       (MoesifMiddleware.__call__ awaits the app, then calls it).
 *   Exchange: moesif_core.asgi.Exchange's state, for the steps.
 *
 * Held equal to the Python path by tests (test_asgi_native.py serves generated calls through
 * both). Nothing here may raise into the app: a failure of ours is one log line
 * (steps.warn_failure) and the call goes on as the Python version's would.
 */
#include "_exchange_core.h"

static PyObject *K_TYPE, *K_HTTP, *K_START, *K_BODY_MESSAGE, *K_BODY, *K_PATHSEND, *K_ZEROCOPYSEND, *K_STATUS, *K_HEADERS;
static PyObject *K_MORE_BODY, *K_ASGI, *K_PAIRS, *K_GET, *K_PY_BEGIN, *TXN_HEADER, *TXN_HEADER_TEXT, *EMPTY;

/* ------------------------------------------------------------------------------- Capture */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Core core;
    PyObject *make_record, *record_from_scope;
    /* steps (moesif_core.asgi) */
    PyObject *tee_receive, *merge_header_pairs, *identify_then_send, *send_then_finish, *identify_and_decide;
    PyObject *start_pairs_encoded;
    Py_ssize_t request_cap;
    int with_transaction_id;
} Capture;

#define CAPTURE_OBJECTS(X)                                                                                           \
    X(make_record) X(record_from_scope) X(tee_receive) X(merge_header_pairs) X(identify_then_send) X(send_then_finish) \
    X(identify_and_decide) X(start_pairs_encoded)

CAPTURE_GC_FUNCTIONS

static PyObject *Capture_vectorcall(Capture *self, PyObject *const *args, size_t nargsf, PyObject *kwnames);

static int
Capture_init(Capture *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "middleware", "steps", "make_record", "record_from_scope", "record_type", "annotations", "request_cap",
        "with_transaction_id", NULL,
    };
    PyObject *middleware, *steps, *make_record, *record_from_scope, *record_type, *annotations;
    Py_ssize_t request_cap;
    int with_transaction_id;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOO!Onp:Capture", keywords, &middleware, &steps, &make_record,
            &record_from_scope, &PyType_Type, &record_type, &annotations, &request_cap, &with_transaction_id)) {
        return -1;
    }
    if (self->core.middleware != NULL) {
        /* Exchanges made so far read this Capture's fields: it is never changed once made. */
        PyErr_SetString(PyExc_TypeError, "a Capture is initialised once");
        return -1;
    }
    if (core_init(&self->core, middleware, steps, record_type, annotations, "asgi-finish", "asgi-annotate") < 0) {
        return -1;
    }
    self->make_record = Py_NewRef(make_record);
    self->record_from_scope = Py_NewRef(record_from_scope);
    self->request_cap = request_cap;
    self->with_transaction_id = with_transaction_id;
    if (take_attr(&self->tee_receive, steps, "tee_receive") < 0
        || take_attr(&self->merge_header_pairs, steps, "merge_header_pairs") < 0
        || take_attr(&self->identify_then_send, steps, "identify_then_send") < 0
        || take_attr(&self->send_then_finish, steps, "send_then_finish") < 0
        || take_attr(&self->identify_and_decide, steps, "identify_and_decide") < 0
        || take_attr(&self->start_pairs_encoded, steps, "start_pairs_encoded") < 0) {
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

/* ------------------------------------------------------------------------------- messages */

/* message.get(key, default), a new reference; NULL on failure. */
static PyObject *
message_get(PyObject *message, PyObject *key, PyObject *default_value)
{
    if (PyDict_CheckExact(message)) {
        PyObject *value = PyDict_GetItemWithError(message, key);
        if (value == NULL) {
            return PyErr_Occurred() ? NULL : Py_NewRef(default_value);
        }
        return Py_NewRef(value);
    }
    return PyObject_CallMethodObjArgs(message, K_GET, key, default_value, NULL);
}

/* `value == text` for a message's "type" (a str, or anything else: not equal). */
static int
same_text(PyObject *value, PyObject *text)
{
    if (value == text) {
        return 1;
    }
    return PyUnicode_Check(value) && PyUnicode_Compare(value, text) == 0;
}

/* Exchange._record_start: the response's status and headers into the record (the transaction id
 * and a governance rule's headers added); the message to send (a new reference, the same one
 * when nothing was added), the headers recorded in *recorded (new); NULL on failure. */
static PyObject *
record_start(Exchange *x, PyObject *message, PyObject **recorded)
{
    Capture *c = capture_of(x);
    PyObject *status = message_get(message, K_STATUS, ZERO);
    if (status == NULL) {
        return NULL;
    }
    int failed = rset(x, R_STATUS, PyLong_Check(status) ? status : ZERO);
    Py_DECREF(status);
    if (failed) {
        return NULL;
    }
    PyObject *headers = message_get(message, K_HEADERS, Py_None);
    if (headers == NULL) {
        return NULL;
    }
    int given = PyObject_IsTrue(headers);
    if (given <= 0) {
        Py_SETREF(headers, given < 0 ? NULL : PyList_New(0));
        if (headers == NULL) {
            return NULL;
        }
    }
    PyObject *sent = NULL, *txn = NULL;
    int extra = x->extra_headers == NULL ? 0 : PyObject_IsTrue(x->extra_headers);
    if (extra < 0 || (txn = rget(x, R_TRANSACTION_ID)) == NULL) {
        goto done;
    }
    if (extra || txn != Py_None) {
        if (extra) {
            Py_SETREF(headers, PyObject_CallFunctionObjArgs(c->merge_header_pairs, headers, x->extra_headers, NULL));
            if (headers == NULL) {
                goto done;
            }
        }
        if (txn != Py_None) {
            /* [*headers, (b"x-moesif-transaction-id", txn.encode("latin-1"))] */
            PyObject *value = PyUnicode_Check(txn) ? PyUnicode_AsLatin1String(txn) : PyObject_CallMethod(txn, "encode", "s", "latin-1");
            PyObject *pair = value == NULL ? NULL : PyTuple_Pack(2, TXN_HEADER, value);
            Py_XDECREF(value);
            PyObject *list = pair == NULL ? NULL : PySequence_List(headers);
            if (list == NULL || PyList_Append(list, pair) < 0) {
                Py_XDECREF(pair);
                Py_XDECREF(list);
                goto done;
            }
            Py_DECREF(pair);
            Py_SETREF(headers, list);
        }
        /* {**message, "headers": headers} */
        PyObject *copy = PyDict_New();
        if (copy == NULL || PyDict_Update(copy, message) < 0 || PyDict_SetItem(copy, K_HEADERS, headers) < 0) {
            Py_XDECREF(copy);
            goto done;
        }
        sent = copy;
    } else {
        sent = Py_NewRef(message);
    }
    if (rset(x, R_RESPONSE_HEADERS, headers) < 0 || rset(x, R_RESPONSE_HEADER_STYLE, K_ASGI) < 0 || annotate_once(x) < 0) {
        Py_CLEAR(sent);
        goto done;
    }
    *recorded = Py_NewRef(headers);
done:
    Py_XDECREF(txn);
    Py_XDECREF(headers);
    return sent;
}

/* Exchange.keep_request_chunk: a chunk of the request body, teed when it is logged. */
static PyObject *
Exchange_keep_request_chunk(Exchange *self, PyObject *chunk)
{
    if (CLEARED(self) || self->request_body == NULL || self->request_body == Py_None) {
        Py_RETURN_NONE;
    }
    PyObject *tee = Py_NewRef(self->request_body);
    PyObject *result = PyObject_CallMethodOneArg(tee, K_ADD, chunk);
    Py_DECREF(tee);
    return result;
}

/* Exchange.start: the response start for a middleware without callbacks; the message to send. */
static PyObject *
Exchange_start(Exchange *self, PyObject *message)
{
    if (CLEARED(self)) {
        return Py_NewRef(message);
    }
    PyObject *headers = NULL;
    PyObject *sent = record_start(self, message, &headers);
    if (sent == NULL) {
        return NULL;
    }
    Py_DECREF(headers);
    if (self->keep && (apply_annotations(self) < 0 || decide(self) < 0)) {
        Py_DECREF(sent);
        return NULL;
    }
    return sent;
}

/* Exchange.on_response_start: the response start recorded now, the callbacks awaited in the
 * coroutine returned (steps.identify_and_decide), which gives the message to send. */
static PyObject *
Exchange_on_response_start(Exchange *self, PyObject *message)
{
    if (CLEARED(self)) {
        PyErr_SetString(PyExc_RuntimeError, "on_response_start() on a collected exchange");
        return NULL;
    }
    PyObject *headers = NULL;
    PyObject *sent = record_start(self, message, &headers);
    if (sent == NULL) {
        return NULL;
    }
    PyObject *awaitable = PyObject_CallFunctionObjArgs(capture_of(self)->identify_and_decide, (PyObject *)self, headers, sent, NULL);
    Py_DECREF(headers);
    Py_DECREF(sent);
    return awaitable;
}

/* Exchange.start_pairs: the response start from text pairs (Falcon's resp), for a middleware
 * without callbacks; a governance rule's headers go through steps.start_pairs_encoded. */
static PyObject *
Exchange_start_pairs(Exchange *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "start_pairs() takes 2 positional arguments but %zd were given", nargs);
        return NULL;
    }
    if (CLEARED(self)) {
        Py_RETURN_NONE;
    }
    PyObject *status = args[0], *headers = args[1];
    int extra = self->extra_headers == NULL ? 0 : PyObject_IsTrue(self->extra_headers);
    if (extra < 0) {
        return NULL;
    }
    if (extra) {
        return PyObject_CallFunctionObjArgs(capture_of(self)->start_pairs_encoded, (PyObject *)self, status, headers, NULL);
    }
    if (rset(self, R_STATUS, status) < 0) {
        return NULL;
    }
    PyObject *txn = rget(self, R_TRANSACTION_ID);
    if (txn == NULL) {
        return NULL;
    }
    PyObject *recorded;
    if (txn == Py_None) {
        recorded = Py_NewRef(headers);
    } else {
        /* [*headers, (TRANSACTION_ID_HEADER, txn)] */
        PyObject *pair = PyTuple_Pack(2, TXN_HEADER_TEXT, txn);
        recorded = pair == NULL ? NULL : PySequence_List(headers);
        if (recorded != NULL && PyList_Append(recorded, pair) < 0) {
            Py_CLEAR(recorded);
        }
        Py_XDECREF(pair);
    }
    Py_DECREF(txn);
    if (recorded == NULL) {
        return NULL;
    }
    int failed = rset(self, R_RESPONSE_HEADERS, recorded) < 0 || rset(self, R_RESPONSE_HEADER_STYLE, K_PAIRS) < 0
                 || annotate_once(self) < 0 || (self->keep && (apply_annotations(self) < 0 || decide(self) < 0));
    Py_DECREF(recorded);
    return failed ? NULL : Py_NewRef(Py_None);
}

static PyMethodDef Exchange_methods[] = {
    {"keep_request_chunk", (PyCFunction)Exchange_keep_request_chunk, METH_O, "Tee a chunk of the request body."},
    {"start", (PyCFunction)Exchange_start, METH_O,
     "start(message, /)\n--\n\nThe response start for a middleware without callbacks: the message to send."},
    {"on_response_start", (PyCFunction)Exchange_on_response_start, METH_O,
     "on_response_start(message, /)\n--\n\nRecord the start, then await the callbacks: the message to send."},
    {"start_pairs", (PyCFunction)(void (*)(void))Exchange_start_pairs, METH_FASTCALL,
     "start_pairs(status, headers, /)\n--\n\nThe response start from text pairs, for a middleware without callbacks."},
    EXCHANGE_CORE_METHODS,
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Exchange_members[] = {
    EXCHANGE_CORE_MEMBERS("scope"),
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject ExchangeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "moesif_core._asgi_exchange.Exchange",
    .tp_basicsize = sizeof(Exchange),
    .tp_dealloc = (destructor)ExchangeCore_dealloc,
    .tp_free = PyObject_GC_Del,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The state of one ASGI call while the app and server work on it; see moesif_core.asgi.Exchange.",
    .tp_traverse = (traverseproc)ExchangeCore_traverse,
    .tp_clear = (inquiry)ExchangeCore_clear,
    .tp_methods = Exchange_methods,
    .tp_members = Exchange_members,
    .tp_getset = ExchangeCore_getset,
};

/* ------------------------------------------------------------------------------- Send */

/* The `send` the app gets: records what goes out, then returns the server's send's awaitable. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Exchange *exchange;
    PyObject *send, *receive;
} Send;

static PyTypeObject SendType;

static int
Send_traverse(Send *self, visitproc visit, void *arg)
{
    Py_VISIT(self->exchange);
    Py_VISIT(self->send);
    Py_VISIT(self->receive);
    return 0;
}

static int
Send_clear(Send *self)
{
    Py_CLEAR(self->exchange);
    Py_CLEAR(self->send);
    Py_CLEAR(self->receive);
    return 0;
}

static void
Send_dealloc(Send *self)
{
    PyObject_GC_UnTrack(self);
    Send_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The response start: the message to send (new), or a coroutine of steps.identify_then_send in
 * *awaitable when callbacks are to be awaited first; NULL (an error set) on failure. */
static PyObject *
on_start(Send *self, PyObject *message, PyObject **awaitable)
{
    Exchange *x = self->exchange;
    PyObject *headers = NULL;
    PyObject *sent = record_start(x, message, &headers);
    if (sent == NULL) {
        return NULL;
    }
    if (x->keep) {
        Capture *c = capture_of(x);
        if (c->core.has_callbacks) {
            *awaitable = PyObject_CallFunctionObjArgs(c->identify_then_send, (PyObject *)x, headers, sent, message, self->send, NULL);
            Py_DECREF(headers);
            if (*awaitable == NULL) {
                Py_DECREF(sent);
                return NULL;
            }
            return sent;
        }
        if (apply_annotations(x) < 0 || decide(x) < 0) {
            Py_DECREF(headers);
            Py_DECREF(sent);
            return NULL;
        }
    }
    Py_DECREF(headers);
    return sent;
}

/* Whether a message is the response's last: not message.get("more_body", False). */
static int
is_last(PyObject *message)
{
    PyObject *more = message_get(message, K_MORE_BODY, Py_False);
    if (more == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(more);
    Py_DECREF(more);
    return truth < 0 ? -1 : !truth;
}

/* A body message: kept; whether it is the last, -1 on failure. */
static int
on_body(Exchange *x, PyObject *message, int *last)
{
    int found = is_last(message);
    if (found < 0) {
        return -1;
    }
    *last = found;
    PyObject *body = message_get(message, K_BODY, EMPTY);
    if (body == NULL) {
        return -1;
    }
    int failed = found ? keep_last_chunk(x, body) : keep_chunk(x, body);
    Py_DECREF(body);
    return failed;
}

static PyObject *
Send_vectorcall(Send *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "send() takes one message");
        return NULL;
    }
    PyObject *message = args[0];
    Exchange *x = self->exchange;
    if (self->send == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "send() called after its call was collected");
        return NULL;
    }
    if (x == NULL || CLEARED(x)) {
        return PyObject_CallOneArg(self->send, message);
    }
    PyObject *sent = NULL, *awaitable = NULL;
    int last = 0, failed = 0;
    PyObject *kind = message_get(message, K_TYPE, Py_None);
    if (kind == NULL) {
        failed = 1;
    } else if (same_text(kind, K_START)) {
        sent = on_start(self, message, &awaitable);
        failed = sent == NULL;
    } else if (same_text(kind, K_BODY_MESSAGE)) {
        failed = on_body(x, message, &last) < 0;
    } else if (same_text(kind, K_PATHSEND) || same_text(kind, K_ZEROCOPYSEND)) {
        int found = is_last(message);
        failed = found < 0;
        last = found > 0;
    }
    Py_XDECREF(kind);
    if (failed && warn_current(&capture_of(x)->core, "asgi-send", "record a response message") < 0) {
        return NULL;
    }
    if (awaitable != NULL) {
        Py_DECREF(sent);
        return awaitable;
    }
    if (sent == NULL) {
        sent = Py_NewRef(message);
    }
    PyObject *result;
    if (last) {
        result = PyObject_CallFunctionObjArgs(capture_of(x)->send_then_finish, (PyObject *)x, self->send, sent, NULL);
    } else {
        result = PyObject_CallOneArg(self->send, sent);
    }
    Py_DECREF(sent);
    return result;
}

static PyObject *
Send_finish(Send *self, PyObject *args, PyObject *kwargs)
{
    if (self->exchange == NULL) {
        Py_RETURN_NONE;
    }
    return ExchangeCore_finish(self->exchange, args, kwargs);
}

static PyMethodDef Send_methods[] = {
    {"finish", (PyCFunction)(void (*)(void))Send_finish, METH_VARARGS | METH_KEYWORDS,
     "finish(error=None)\n--\n\nComplete the call's record exactly once and hand it over; never raises."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Send_members[] = {
    {"exchange", T_OBJECT, offsetof(Send, exchange), READONLY, NULL},
    {"receive", T_OBJECT, offsetof(Send, receive), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject SendType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "moesif_core._asgi_exchange.Send",
    .tp_basicsize = sizeof(Send),
    .tp_dealloc = (destructor)Send_dealloc,
    .tp_free = PyObject_GC_Del,
    .tp_vectorcall_offset = offsetof(Send, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "The send an app gets under the capture layer; its receive is the one the app reads.",
    .tp_traverse = (traverseproc)Send_traverse,
    .tp_clear = (inquiry)Send_clear,
    .tp_methods = Send_methods,
    .tp_members = Send_members,
};

/* ------------------------------------------------------------------------------- the call */

/* Whether the usual C path takes the call of `scope`: an HTTP scope (a dict), and no
 * governance rules served; -1 on failure. */
static int
usual_call(Capture *c, PyObject *scope)
{
    if (!PyDict_CheckExact(scope)) {
        return 0;
    }
    PyObject *kind = PyDict_GetItemWithError(scope, K_TYPE);
    if (kind == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (!same_text(kind, K_HTTP)) {
        return 0;
    }
    if (plain_config(&c->core)) {
        return 1;
    }
    PyObject *governor = PyObject_CallMethodNoArgs(c->core.middleware, K_GOVERNOR);
    if (governor == NULL) {
        return -1;
    }
    Py_DECREF(governor);
    return governor == Py_None;
}

/* MoesifMiddleware.begin_exchange for a dict scope: a new Exchange (its request body teed when
 * it has one and LOG_BODY is on), *has_body set; NULL on failure. */
static Exchange *
begin_exchange(Capture *c, PyObject *scope, int *has_body)
{
    PyObject *now = PyObject_CallNoArgs(c->core.time);
    if (now == NULL) {
        return NULL;
    }
    if (start_once(&c->core) < 0) {
        Py_DECREF(now);
        return NULL;
    }
    PyObject *made = made_record(c->make_record, c->record_from_scope, scope, now, c->with_transaction_id);
    Py_DECREF(now);
    if (made == NULL) {
        return NULL;
    }
    if (!PyTuple_CheckExact(made) || PyTuple_GET_SIZE(made) != 2) {
        Py_DECREF(made);
        PyErr_SetString(PyExc_TypeError, "a scope's record is a (record, has_body) pair");
        return NULL;
    }
    *has_body = PyObject_IsTrue(PyTuple_GET_ITEM(made, 1));
    Exchange *x = *has_body < 0 ? NULL : new_exchange(&ExchangeType, (PyObject *)c, &c->core, scope, PyTuple_GET_ITEM(made, 0));
    Py_DECREF(made);
    if (x == NULL) {
        return NULL;
    }
    if (*has_body && c->request_cap >= 0) {
        PyObject *cap = PyLong_FromSsize_t(c->request_cap);
        PyObject *tee = cap == NULL ? NULL : PyObject_CallOneArg(c->core.body_tee, cap);
        Py_XDECREF(cap);
        if (tee == NULL) {
            Py_DECREF(x);
            return NULL;
        }
        Py_SETREF(x->request_body, tee);
    }
    return x;
}

/* The usual call begun: the Send the app gets, NULL on failure. */
static PyObject *
begin(Capture *c, PyObject *scope, PyObject *receive, PyObject *send)
{
    int has_body = 0;
    Exchange *x = begin_exchange(c, scope, &has_body);
    if (x == NULL) {
        return NULL;
    }
    PyObject *app_receive;
    if (has_body && x->request_body != Py_None) {
        app_receive = PyObject_CallFunctionObjArgs(c->tee_receive, (PyObject *)x, receive, NULL);
        if (app_receive == NULL) {
            Py_DECREF(x);
            return NULL;
        }
    } else {
        app_receive = Py_NewRef(receive);
    }
    Send *wrapper = PyObject_GC_New(Send, &SendType);
    if (wrapper == NULL) {
        Py_DECREF(x);
        Py_DECREF(app_receive);
        return NULL;
    }
    wrapper->vectorcall = (vectorcallfunc)Send_vectorcall;
    wrapper->exchange = x;
    wrapper->send = Py_NewRef(send);
    wrapper->receive = app_receive;
    PyObject_GC_Track(wrapper);
    return (PyObject *)wrapper;
}

/* Capture.begin(scope): MoesifMiddleware.begin_exchange, (exchange, has_body). */
static PyObject *
Capture_begin(Capture *self, PyObject *scope)
{
    if (!PyDict_Check(scope)) {
        return PyObject_CallMethodOneArg(self->core.middleware, K_PY_BEGIN, scope);
    }
    int has_body = 0;
    Exchange *x = begin_exchange(self, scope, &has_body);
    if (x == NULL) {
        return NULL;
    }
    PyObject *pair = PyTuple_Pack(2, (PyObject *)x, has_body ? Py_True : Py_False);
    Py_DECREF(x);
    return pair;
}

static PyMethodDef Capture_methods[] = {
    {"begin", (PyCFunction)Capture_begin, METH_O,
     "begin(scope, /)\n--\n\nStart recording a call (MoesifMiddleware.begin_exchange): (exchange, has_body)."},
    {NULL, NULL, 0, NULL},
};

/* The start of MoesifMiddleware.__call__: the Send of the usual call, else None. */
static PyObject *
Capture_vectorcall(Capture *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 3 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "Capture() takes (scope, receive, send)");
        return NULL;
    }
    int usual = usual_call(self, args[0]);
    PyObject *wrapper = usual > 0 ? begin(self, args[0], args[1], args[2]) : NULL;
    if (usual < 0 || (usual > 0 && wrapper == NULL)) {
        /* Our own failure: the Python path serves the call (and logs what fails there again). */
        if (warn_current(&self->core, "asgi-begin", "start capturing a call") < 0) {
            return NULL;
        }
    }
    return wrapper != NULL ? wrapper : Py_NewRef(Py_None);
}

static PyTypeObject CaptureType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "moesif_core._asgi_exchange.Capture",
    .tp_basicsize = sizeof(Capture),
    .tp_dealloc = (destructor)Capture_dealloc,
    .tp_free = PyObject_GC_Del,
    .tp_vectorcall_offset = offsetof(Capture, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "The C request path of one moesif_core.asgi.MoesifMiddleware; see the top of _asgi_exchange.c.",
    .tp_traverse = (traverseproc)Capture_traverse,
    .tp_clear = (inquiry)Capture_clear,
    .tp_methods = Capture_methods,
    .tp_init = (initproc)Capture_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "moesif_core._asgi_exchange",
    "The ASGI capture layer's request path in C; see moesif_core.asgi.",
    -1,
    NULL,
};

/* The interface this file gives its Python module (moesif_core.native.native_part): raised with
 * any change the Python side must match, so a build of older sources is refused, not called. */
#define API 1

PyMODINIT_FUNC
PyInit__asgi_exchange(void)
{
    static const Interned strings[] = {
        {&K_TYPE, "type"}, {&K_HTTP, "http"}, {&K_START, "http.response.start"}, {&K_BODY_MESSAGE, "http.response.body"}, {&K_BODY, "body"},
        {&K_PATHSEND, "http.response.pathsend"}, {&K_ZEROCOPYSEND, "http.response.zerocopysend"},
        {&K_STATUS, "status"}, {&K_HEADERS, "headers"}, {&K_MORE_BODY, "more_body"}, {&K_ASGI, "asgi"}, {&K_PAIRS, "pairs"}, {&K_GET, "get"},
        {&K_PY_BEGIN, "_py_begin_exchange"}, {&TXN_HEADER_TEXT, "x-moesif-transaction-id"},
    };
    if (core_module_init() < 0 || INTERN_ALL(strings) < 0) {
        return NULL;
    }
    if ((TXN_HEADER = PyBytes_FromString("x-moesif-transaction-id")) == NULL || (EMPTY = PyBytes_FromString("")) == NULL) {
        return NULL;
    }
    if (PyType_Ready(&CaptureType) < 0 || PyType_Ready(&ExchangeType) < 0 || PyType_Ready(&SendType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Capture", (PyObject *)&CaptureType) < 0
        || PyModule_AddObjectRef(m, "Exchange", (PyObject *)&ExchangeType) < 0
        || PyModule_AddObjectRef(m, "Send", (PyObject *)&SendType) < 0 || PyModule_AddIntConstant(m, "API", API) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
