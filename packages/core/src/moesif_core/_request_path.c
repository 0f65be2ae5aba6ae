/* Steps of recording a call that cost the request path more in Python than anything else it
 * does -- the optional native half of moesif_core.request_path (see its docstring).
 *
 *   header_entries(environ) -> a new dict of the request headers of `environ`, in its order: the
 *       entries whose key is exactly a str starting with "HTTP_" or equal to CONTENT_TYPE or
 *       CONTENT_LENGTH, and whose value is exactly a str (request_path._py_header_entries). A
 *       dict (PEP 3333 says the environ is one) is read directly; any other mapping through its
 *       items().
 *   uuid4_text(getrandbits) -> the text of a version-4 UUID of 128 bits from getrandbits(128)
 *       (version and variant bits set): str(uuid.UUID(int=getrandbits(128), version=4)).
 *
 *   untrack(object) -> None: the object out of the cyclic GC's view (for records, which hold no cycle).
 *   RecordFactory(prototype, getrandbits).from_environ(environ, now, with_id) -> a record of the
 *       WSGI call, or None for the Python version (see the comment above RecordFactory);
 *       .from_scope(scope, now, with_id) -> (record, has_body) of an ASGI call, or None likewise;
 *       .hand_over(record) -> its size for the queue, untracked (RawExchange.estimated_size with
 *       `overhead` for RECORD_OVERHEAD_BYTES; that method itself for anything unusual).
 *
 * The first two only read their argument and build one new object. Hashing a key that is not a str may run
 * Python code that changes the environ: the entry is held while it is copied, and PyDict_Next
 * stays memory-safe over a changed dict (the result is then whatever the comprehension might give).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include "structmember.h"

/* Whether an environ key names a request header: HTTP_* and the two CGI content keys, as
 * moesif_core.headers reads an environ. Exact str keys only, like the values kept. */
static int
is_header_key(PyObject *key)
{
    if (!PyUnicode_CheckExact(key)) {
        return 0;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(key);
    if (n < 5) {
        return 0;
    }
    int kind = PyUnicode_KIND(key);
    const void *data = PyUnicode_DATA(key);
    if (PyUnicode_READ(kind, data, 0) == 'H' && PyUnicode_READ(kind, data, 1) == 'T' && PyUnicode_READ(kind, data, 2) == 'T'
        && PyUnicode_READ(kind, data, 3) == 'P' && PyUnicode_READ(kind, data, 4) == '_') {
        return 1;
    }
    if (kind != PyUnicode_1BYTE_KIND || (n != 12 && n != 14)) {
        return 0;
    }
    return n == 12 ? memcmp(data, "CONTENT_TYPE", 12) == 0 : memcmp(data, "CONTENT_LENGTH", 14) == 0;
}

static int
copy_if_header(PyObject *out, PyObject *key, PyObject *value)
{
    if (!PyUnicode_CheckExact(value) || !is_header_key(key)) {
        return 0;
    }
    Py_INCREF(key);
    Py_INCREF(value);
    int result = PyDict_SetItem(out, key, value);
    Py_DECREF(key);
    Py_DECREF(value);
    return result;
}

static PyObject *
header_entries(PyObject *module, PyObject *environ)
{
    PyObject *out = PyDict_New();
    if (out == NULL) {
        return NULL;
    }
    if (PyDict_Check(environ)) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(environ, &pos, &key, &value)) {
            if (copy_if_header(out, key, value) < 0) {
                Py_DECREF(out);
                return NULL;
            }
        }
        return out;
    }
    PyObject *items = PyMapping_Items(environ);
    if (items == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (PyTuple_Check(item) && PyTuple_GET_SIZE(item) == 2
            && copy_if_header(out, PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1)) < 0) {
            Py_DECREF(items);
            Py_DECREF(out);
            return NULL;
        }
    }
    Py_DECREF(items);
    return out;
}

static const char HEX[] = "0123456789abcdef";

static PyObject *
uuid4_text(PyObject *module, PyObject *getrandbits)
{
    PyObject *bits = PyObject_CallFunction(getrandbits, "i", 128);
    if (bits == NULL) {
        return NULL;
    }
    if (!PyLong_Check(bits)) {
        Py_DECREF(bits);
        PyErr_SetString(PyExc_TypeError, "getrandbits(128) did not return an int");
        return NULL;
    }
    unsigned long long lo = PyLong_AsUnsignedLongLongMask(bits);
    PyObject *shift = PyLong_FromLong(64);
    PyObject *high = shift == NULL ? NULL : PyNumber_Rshift(bits, shift);
    Py_XDECREF(shift);
    Py_DECREF(bits);
    if (high == NULL) {
        return NULL;
    }
    unsigned long long hi = PyLong_AsUnsignedLongLongMask(high);
    Py_DECREF(high);
    if (PyErr_Occurred()) {
        return NULL;
    }
    unsigned char b[16];
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(hi >> (56 - 8 * i));
        b[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
    }
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    PyObject *text = PyUnicode_New(36, 127);
    if (text == NULL) {
        return NULL;
    }
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[o++] = '-';
        }
        out[o++] = (Py_UCS1)HEX[b[i] >> 4];
        out[o++] = (Py_UCS1)HEX[b[i] & 0x0F];
    }
    return text;
}

/* Takes an object out of the cyclic GC's view. A record waits in the sender's queue long enough to
 * survive young collections and reach the old generation, where it makes full collections come
 * sooner and take longer; it can hold no reference cycle (nothing it refers to refers back to it),
 * so reference counting alone frees it. */
static PyObject *
untrack(PyObject *module, PyObject *object)
{
    if (PyObject_IS_GC(object) && PyObject_GC_IsTracked(object)) {
        PyObject_GC_UnTrack(object);
    }
    Py_RETURN_NONE;
}


/* ------------------------------------------------------------------ records made from an environ */

/* RecordFactory(prototype): new records of the prototype's exact type whose slots start as the
 * prototype's (its defaults: immutable values, shared), so no __init__ runs; from_environ fills
 * what moesif_core.record.record_from_environ fills, the same way, or answers None for anything
 * it does not handle exactly (a value that is not a str where a str is read), and the caller
 * then runs the Python version. */
#define MAX_SLOTS 64
#define NAMED 14 /* slots found by name */

typedef struct {
    PyObject_HEAD
    PyObject *prototype;
    PyObject *getrandbits;
    Py_ssize_t slots[MAX_SLOTS];
    int slot_count;
    Py_ssize_t request_time, method, scheme, host, root_path, path, query_string;
    Py_ssize_t request_headers, request_header_style, client_addr, transaction_id;
    Py_ssize_t request_body, response_body, response_headers;
    Py_ssize_t overhead; /* hand_over: the fixed weight of a record in the queue */
} RecordFactory;

static PyObject *K_METHOD, *K_SCHEME, *K_HOST, *K_SERVER_NAME, *K_SERVER_PORT, *K_SCRIPT_NAME;
static PyObject *K_PATH_INFO, *K_QUERY_STRING, *K_REMOTE_ADDR, *K_TRANSACTION_ID;
static PyObject *V_GET, *V_HTTP, *V_EMPTY, *V_SLASH, *V_ENVIRON;
static PyObject *S_METHOD, *S_SCHEME, *S_HEADERS, *S_ROOT_PATH, *S_PATH, *S_QUERY_STRING, *S_CLIENT, *S_SERVER;
static PyObject *V_ASGI;

static int
RecordFactory_traverse(RecordFactory *self, visitproc visit, void *arg)
{
    Py_VISIT(self->prototype);
    Py_VISIT(self->getrandbits);
    return 0;
}

static int
RecordFactory_clear(RecordFactory *self)
{
    Py_CLEAR(self->prototype);
    Py_CLEAR(self->getrandbits);
    self->slot_count = 0;
    return 0;
}

static void
RecordFactory_dealloc(RecordFactory *self)
{
    PyObject_GC_UnTrack(self);
    RecordFactory_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
RecordFactory_init(RecordFactory *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"prototype", "getrandbits", "overhead", NULL};
    PyObject *prototype, *getrandbits;
    Py_ssize_t overhead = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|n:RecordFactory", keywords, &prototype, &getrandbits, &overhead)) {
        return -1;
    }
    PyTypeObject *type = Py_TYPE(prototype);
    if (!(type->tp_flags & Py_TPFLAGS_HEAPTYPE) || type->tp_base != &PyBaseObject_Type || type->tp_dictoffset != 0
        || type->tp_weaklistoffset != 0 || type->tp_members == NULL) {
        PyErr_SetString(PyExc_TypeError, "the prototype must be of a class with __slots__ only, directly under object");
        return -1;
    }
    RecordFactory_clear(self);
    Py_ssize_t *named[] = {
        &self->request_time, &self->method, &self->scheme, &self->host, &self->root_path, &self->path,
        &self->query_string, &self->request_headers, &self->request_header_style, &self->client_addr,
        &self->transaction_id, &self->request_body, &self->response_body, &self->response_headers,
    };
    const char *names[] = {
        "request_time", "method", "scheme", "host", "root_path", "path", "query_string", "request_headers",
        "request_header_style", "client_addr", "transaction_id", "request_body", "response_body", "response_headers",
    };
    for (int i = 0; i < NAMED; i++) {
        *named[i] = -1;
    }
    for (PyMemberDef *member = type->tp_members; member->name != NULL; member++) {
        if (member->type != T_OBJECT_EX || (member->flags & READONLY) || self->slot_count == MAX_SLOTS) {
            PyErr_Format(PyExc_TypeError, "slot %s of the prototype cannot be copied", member->name);
            return -1;
        }
        if (*(PyObject **)((char *)prototype + member->offset) == NULL) {
            PyErr_Format(PyExc_TypeError, "slot %s of the prototype is not set", member->name);
            return -1;
        }
        self->slots[self->slot_count++] = member->offset;
        for (int i = 0; i < NAMED; i++) {
            if (strcmp(member->name, names[i]) == 0) {
                *named[i] = member->offset;
            }
        }
    }
    for (int i = 0; i < NAMED; i++) {
        if (*named[i] < 0) {
            PyErr_Format(PyExc_TypeError, "the prototype has no slot %s", names[i]);
            return -1;
        }
    }
    Py_INCREF(prototype);
    Py_INCREF(getrandbits);
    self->prototype = prototype;
    self->getrandbits = getrandbits;
    self->overhead = overhead;
    return 0;
}

/* environ[key], or `fallback` when it is not there (borrowed); NULL with an error set on failure. */
static PyObject *
lookup(PyObject *environ, PyObject *key, PyObject *fallback)
{
    PyObject *value = PyDict_GetItemWithError(environ, key);
    if (value == NULL && !PyErr_Occurred()) {
        return fallback;
    }
    return value;
}

/* Stores a new reference to `value` in the slot at `offset`, replacing the prototype's. */
static void
set_slot(PyObject *record, Py_ssize_t offset, PyObject *value)
{
    PyObject **slot = (PyObject **)((char *)record + offset);
    Py_INCREF(value);
    Py_XSETREF(*slot, value);
}

#define HAND_OVER ((PyObject *)1) /* not handled here: the Python version decides */

/* The host as moesif_core.record.record_from_environ takes it (new reference), HAND_OVER, or NULL. */
static PyObject *
host_of(PyObject *environ)
{
    PyObject *host = lookup(environ, K_HOST, Py_None);
    if (host == NULL) {
        return NULL;
    }
    if (host != Py_None && !PyUnicode_CheckExact(host)) {
        return HAND_OVER;
    }
    if (host != Py_None && PyUnicode_GET_LENGTH(host) > 0) {
        Py_INCREF(host);
        return host;
    }
    PyObject *name = lookup(environ, K_SERVER_NAME, V_EMPTY);
    PyObject *port = name == NULL ? NULL : lookup(environ, K_SERVER_PORT, V_EMPTY);
    if (port == NULL) {
        return NULL;
    }
    if (!PyUnicode_CheckExact(name) || !PyUnicode_CheckExact(port)) {
        return HAND_OVER;
    }
    /* f"{name}:{port}".rstrip(":") */
    PyObject *joined = PyUnicode_FromFormat("%U:%U", name, port);
    if (joined == NULL) {
        return NULL;
    }
    Py_ssize_t end = PyUnicode_GET_LENGTH(joined);
    while (end > 0 && PyUnicode_READ_CHAR(joined, end - 1) == ':') {
        end--;
    }
    if (end == PyUnicode_GET_LENGTH(joined)) {
        return joined;
    }
    PyObject *cut = PyUnicode_Substring(joined, 0, end);
    Py_DECREF(joined);
    return cut;
}

/* A new record with the prototype's slots (new references); NULL with an error set on failure. */
static PyObject *
new_record(RecordFactory *self)
{
    PyTypeObject *type = Py_TYPE(self->prototype);
    PyObject *record = type->tp_alloc(type, 0);
    if (record == NULL) {
        return NULL;
    }
    for (int i = 0; i < self->slot_count; i++) {
        PyObject *value = *(PyObject **)((char *)self->prototype + self->slots[i]);
        Py_XINCREF(value);
        *(PyObject **)((char *)record + self->slots[i]) = value;
    }
    return record;
}

enum { F_METHOD, F_SCHEME, F_ROOT, F_PATH, F_QUERY, F_PEER, F_INCOMING, F_HOST, F_HEADERS, F_ID, F_COUNT };

static void
release(PyObject **fields)
{
    for (int i = 0; i < F_COUNT; i++) {
        Py_CLEAR(fields[i]);
    }
}

static PyObject *
RecordFactory_from_environ(RecordFactory *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "from_environ(environ, now, with_transaction_id)");
        return NULL;
    }
    PyObject *environ = args[0], *now = args[1];
    int with_id = PyObject_IsTrue(args[2]);
    if (with_id < 0) {
        return NULL;
    }
    if (self->prototype == NULL || !PyDict_CheckExact(environ) || !PyFloat_CheckExact(now)) {
        Py_RETURN_NONE;
    }
    /* Everything read first and held (a key's __eq__ may change the environ), so nothing is
     * half made when the Python version must decide. */
    PyObject *fields[F_COUNT] = {NULL};
    PyObject *keys[] = {K_METHOD, K_SCHEME, K_SCRIPT_NAME, K_PATH_INFO, K_QUERY_STRING, K_REMOTE_ADDR, K_TRANSACTION_ID};
    PyObject *fallbacks[] = {V_GET, V_HTTP, V_EMPTY, V_EMPTY, V_EMPTY, Py_None, Py_None};
    for (int i = 0; i <= F_INCOMING; i++) {
        PyObject *value = lookup(environ, keys[i], fallbacks[i]);
        if (value == NULL) {
            release(fields);
            return NULL;
        }
        Py_INCREF(value);
        fields[i] = value;
    }
    PyObject *incoming = fields[F_INCOMING];
    if (!PyUnicode_CheckExact(fields[F_PATH]) || (incoming != Py_None && !PyUnicode_CheckExact(incoming))) {
        release(fields);
        Py_RETURN_NONE; /* `or "/"` and len() on other types: the Python version */
    }
    if (PyUnicode_GET_LENGTH(fields[F_PATH]) == 0) {
        Py_INCREF(V_SLASH);
        Py_SETREF(fields[F_PATH], V_SLASH);
    }
    PyObject *host = host_of(environ);
    if (host == HAND_OVER || host == NULL) {
        release(fields);
        if (host == NULL) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    fields[F_HOST] = host;
    if ((fields[F_HEADERS] = header_entries(NULL, environ)) == NULL) {
        release(fields);
        return NULL;
    }
    if (with_id) {
        Py_ssize_t length = incoming == Py_None ? 0 : PyUnicode_GET_LENGTH(incoming);
        if (length > 0 && length <= 128) {
            Py_INCREF(incoming);
            fields[F_ID] = incoming;
        } else if ((fields[F_ID] = uuid4_text(NULL, self->getrandbits)) == NULL) {
            release(fields);
            return NULL;
        }
    }
    PyObject *record = new_record(self);
    if (record == NULL) {
        release(fields);
        return NULL;
    }
    set_slot(record, self->request_time, now);
    set_slot(record, self->method, fields[F_METHOD]);
    set_slot(record, self->scheme, fields[F_SCHEME]);
    set_slot(record, self->host, fields[F_HOST]);
    set_slot(record, self->root_path, fields[F_ROOT]);
    set_slot(record, self->path, fields[F_PATH]);
    set_slot(record, self->query_string, fields[F_QUERY]);
    set_slot(record, self->request_headers, fields[F_HEADERS]);
    set_slot(record, self->request_header_style, V_ENVIRON);
    set_slot(record, self->client_addr, fields[F_PEER]);
    if (fields[F_ID] != NULL) {
        set_slot(record, self->transaction_id, fields[F_ID]);
    }
    release(fields);
    return record;
}

/* True when `name` (exact bytes) equals the C string `text` of `size` bytes. */
static int
bytes_is(PyObject *name, const char *text, Py_ssize_t size)
{
    return PyBytes_GET_SIZE(name) == size && memcmp(PyBytes_AS_STRING(name), text, (size_t)size) == 0;
}

enum { A_METHOD, A_SCHEME, A_HEADERS, A_ROOT, A_PATH, A_QUERY, A_CLIENT, A_SERVER, A_COUNT };

/* from_scope(scope, now, with_id) -> (record, has_body) of an ASGI HTTP call, or None when the
 * Python version (moesif_core.record._record_from_scope) must decide: a scope that is not a dict,
 * a header list that is not a list of (bytes, bytes) tuples, a text field that is not a str, a
 * query string that is not bytes, a client that is not a tuple, or no Host header. Reads only:
 * the Python version also replaces a header iterable in the scope by a list. */
static PyObject *
RecordFactory_from_scope(RecordFactory *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "from_scope(scope, now, with_transaction_id)");
        return NULL;
    }
    PyObject *scope = args[0], *now = args[1];
    int with_id = PyObject_IsTrue(args[2]);
    if (with_id < 0) {
        return NULL;
    }
    if (self->prototype == NULL || !PyDict_CheckExact(scope) || !PyFloat_CheckExact(now)) {
        Py_RETURN_NONE;
    }
    PyObject *fields[A_COUNT] = {NULL};
    PyObject *keys[] = {S_METHOD, S_SCHEME, S_HEADERS, S_ROOT_PATH, S_PATH, S_QUERY_STRING, S_CLIENT, S_SERVER};
    PyObject *fallbacks[] = {V_GET, V_HTTP, Py_None, V_EMPTY, V_SLASH, Py_None, Py_None, Py_None};
    PyObject *host = NULL, *incoming = NULL, *path = NULL, *query = NULL, *peer = NULL, *id = NULL;
    PyObject *result = NULL;
    int has_body = 0;
    for (int i = 0; i < A_COUNT; i++) {
        PyObject *value = lookup(scope, keys[i], fallbacks[i]);
        if (value == NULL) {
            goto done;
        }
        Py_INCREF(value);
        fields[i] = value;
    }
    PyObject *headers = fields[A_HEADERS];
    PyObject *client = fields[A_CLIENT];
    if (!PyUnicode_CheckExact(fields[A_METHOD]) || !PyUnicode_CheckExact(fields[A_SCHEME])
        || !PyList_CheckExact(headers) || !PyUnicode_CheckExact(fields[A_ROOT]) || !PyUnicode_CheckExact(fields[A_PATH])
        || (fields[A_QUERY] != Py_None && !PyBytes_CheckExact(fields[A_QUERY]))
        || (client != Py_None && !(PyTuple_CheckExact(client) && PyTuple_GET_SIZE(client) > 0))) {
        result = HAND_OVER;
        goto done;
    }
    /* Each pair read as the Python loop reads it; the list is read, never changed, by this loop. */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(headers); i++) {
        PyObject *pair = PyList_GET_ITEM(headers, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
            result = HAND_OVER;
            goto done;
        }
        PyObject *name = PyTuple_GET_ITEM(pair, 0), *value = PyTuple_GET_ITEM(pair, 1);
        if (!PyBytes_CheckExact(name) || !PyBytes_CheckExact(value)) {
            result = HAND_OVER;
            goto done;
        }
        if (bytes_is(name, "host", 4)) {
            Py_XSETREF(host, PyUnicode_DecodeLatin1(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value), NULL));
            if (host == NULL) {
                goto done;
            }
        } else if (bytes_is(name, "content-length", 14)) {
            has_body = !bytes_is(value, "0", 1);
        } else if (bytes_is(name, "transfer-encoding", 17)) {
            has_body = 1;
        } else if (bytes_is(name, "x-moesif-transaction-id", 23)) {
            Py_XSETREF(incoming, PyUnicode_DecodeLatin1(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value), NULL));
            if (incoming == NULL) {
                goto done;
            }
        }
    }
    if (host == NULL || PyUnicode_GET_LENGTH(host) == 0) {
        result = HAND_OVER; /* the host from scope["server"]: the Python version */
        goto done;
    }
    /* root_path = scope.get("root_path", "") or ""; path = scope.get("path", "/") or "/";
     * a path under root_path loses it (newer servers put the mount point in both). */
    PyObject *root = fields[A_ROOT];
    path = fields[A_PATH];
    Py_INCREF(path);
    if (PyUnicode_GET_LENGTH(path) == 0) {
        Py_SETREF(path, Py_NewRef(V_SLASH));
    }
    Py_ssize_t root_length = PyUnicode_GET_LENGTH(root);
    if (root_length > 0) {
        Py_ssize_t starts = PyUnicode_Tailmatch(path, root, 0, PY_SSIZE_T_MAX, -1);
        if (starts < 0) {
            goto done;
        }
        if (starts) {
            if (PyUnicode_GET_LENGTH(path) == root_length) {
                Py_SETREF(path, Py_NewRef(V_SLASH));
            } else {
                Py_SETREF(path, PyUnicode_Substring(path, root_length, PyUnicode_GET_LENGTH(path)));
                if (path == NULL) {
                    goto done;
                }
            }
        }
    }
    PyObject *raw_query = fields[A_QUERY];
    if (raw_query == Py_None || PyBytes_GET_SIZE(raw_query) == 0) {
        query = Py_NewRef(V_EMPTY);
    } else if ((query = PyUnicode_DecodeLatin1(PyBytes_AS_STRING(raw_query), PyBytes_GET_SIZE(raw_query), NULL)) == NULL) {
        goto done;
    }
    peer = Py_NewRef(client == Py_None ? Py_None : PyTuple_GET_ITEM(client, 0));
    if (with_id) {
        Py_ssize_t length = incoming == NULL ? 0 : PyUnicode_GET_LENGTH(incoming);
        if (length > 0 && length <= 128) {
            id = Py_NewRef(incoming);
        } else if ((id = uuid4_text(NULL, self->getrandbits)) == NULL) {
            goto done;
        }
    }
    PyObject *record = new_record(self);
    if (record == NULL) {
        goto done;
    }
    set_slot(record, self->request_time, now);
    set_slot(record, self->method, fields[A_METHOD]);
    set_slot(record, self->scheme, fields[A_SCHEME]);
    set_slot(record, self->host, host);
    set_slot(record, self->root_path, root);
    set_slot(record, self->path, path);
    set_slot(record, self->query_string, query);
    set_slot(record, self->request_headers, headers);
    set_slot(record, self->request_header_style, V_ASGI);
    set_slot(record, self->client_addr, peer);
    if (id != NULL) {
        set_slot(record, self->transaction_id, id);
    }
    result = PyTuple_Pack(2, record, has_body ? Py_True : Py_False);
    Py_DECREF(record);
done:
    for (int i = 0; i < A_COUNT; i++) {
        Py_XDECREF(fields[i]);
    }
    Py_XDECREF(host);
    Py_XDECREF(incoming);
    Py_XDECREF(path);
    Py_XDECREF(query);
    Py_XDECREF(peer);
    Py_XDECREF(id);
    if (result == HAND_OVER) {
        Py_RETURN_NONE;
    }
    return result;
}

/* len() of a slot's value as RawExchange.estimated_size takes it, for the types the request path
 * stores (None counted as 0 only where `none_is_empty`); -1 for anything else. */
static Py_ssize_t
usual_length(PyObject *record, Py_ssize_t offset, int none_is_empty)
{
    PyObject *value = *(PyObject **)((char *)record + offset);
    if (value == NULL) {
        return -1;
    }
    if (PyBytes_CheckExact(value)) {
        return PyBytes_GET_SIZE(value);
    }
    if (PyDict_CheckExact(value)) {
        return PyDict_GET_SIZE(value);
    }
    if (PyList_CheckExact(value) || PyTuple_CheckExact(value)) {
        return Py_SIZE(value);
    }
    return value == Py_None && none_is_empty ? 0 : -1;
}

/* hand_over(record): what Agent.submit does before the queue takes a record -- take it out of the
 * cyclic GC's view (see untrack) and answer its weight, record.estimated_size(), which is called
 * for a record of another type or with a value of another type in a weighed slot. */
static PyObject *
RecordFactory_hand_over(RecordFactory *self, PyObject *record)
{
    Py_DECREF(untrack(NULL, record)); /* None */
    if (self->prototype != NULL && Py_TYPE(record) == Py_TYPE(self->prototype)) {
        Py_ssize_t request_body = usual_length(record, self->request_body, 1);
        Py_ssize_t response_body = usual_length(record, self->response_body, 1);
        Py_ssize_t request_headers = usual_length(record, self->request_headers, 0);
        Py_ssize_t response_headers = usual_length(record, self->response_headers, 0);
        if (request_body >= 0 && response_body >= 0 && request_headers >= 0 && response_headers >= 0) {
            return PyLong_FromSsize_t(self->overhead + request_body + response_body + 64 * (request_headers + response_headers));
        }
    }
    return PyObject_CallMethod(record, "estimated_size", NULL);
}

static PyMethodDef RecordFactory_methods[] = {
    {"hand_over", (PyCFunction)RecordFactory_hand_over, METH_O,
     "hand_over(record, /)\n--\n\nTake a record about to be queued out of the cyclic GC's view; its estimated size."},
    {"from_environ", (PyCFunction)(void (*)(void))RecordFactory_from_environ, METH_FASTCALL,
     "from_environ(environ, now, with_transaction_id, /)\n--\n\nA new record of the call of environ, or None: "
     "then the Python version must make it."},
    {"from_scope", (PyCFunction)(void (*)(void))RecordFactory_from_scope, METH_FASTCALL,
     "from_scope(scope, now, with_transaction_id, /)\n--\n\n(A new record of the call of an ASGI HTTP scope, "
     "whether its request has a body), or None: then the Python version must make it."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RecordFactoryType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "moesif_core._request_path.RecordFactory",
    .tp_basicsize = sizeof(RecordFactory),
    .tp_dealloc = (destructor)RecordFactory_dealloc,
    .tp_free = PyObject_GC_Del,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "RecordFactory(prototype, getrandbits, overhead=0)\n--\n\nNew records from WSGI environs and ASGI scopes; see moesif_core.record.",
    .tp_traverse = (traverseproc)RecordFactory_traverse,
    .tp_clear = (inquiry)RecordFactory_clear,
    .tp_methods = RecordFactory_methods,
    .tp_init = (initproc)RecordFactory_init,
    .tp_new = PyType_GenericNew,
};

static PyMethodDef methods[] = {
    {"header_entries", header_entries, METH_O, "The request headers of a WSGI environ (HTTP_*, CONTENT_TYPE, CONTENT_LENGTH; str keys and values), as a new dict."},
    {"untrack", untrack, METH_O, "Take an object that can be in no reference cycle out of the cyclic GC's view."},
    {"uuid4_text", uuid4_text, METH_O, "The text of a version-4 UUID from getrandbits(128)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "moesif_core._request_path",
    "Native steps of recording a call; see moesif_core.request_path.",
    -1,
    methods,
};

/* The interface this file gives its Python module (moesif_core.native.native_part): raised with
 * any change the Python side must match, so a build of older sources is refused, not called. */
#define API 2

PyMODINIT_FUNC
PyInit__request_path(void)
{
    struct {
        PyObject **target;
        const char *text;
    } strings[] = {
        {&K_METHOD, "REQUEST_METHOD"}, {&K_SCHEME, "wsgi.url_scheme"}, {&K_HOST, "HTTP_HOST"},
        {&K_SERVER_NAME, "SERVER_NAME"}, {&K_SERVER_PORT, "SERVER_PORT"}, {&K_SCRIPT_NAME, "SCRIPT_NAME"},
        {&K_PATH_INFO, "PATH_INFO"}, {&K_QUERY_STRING, "QUERY_STRING"}, {&K_REMOTE_ADDR, "REMOTE_ADDR"},
        {&K_TRANSACTION_ID, "HTTP_X_MOESIF_TRANSACTION_ID"}, {&V_GET, "GET"}, {&V_HTTP, "http"}, {&V_EMPTY, ""},
        {&V_SLASH, "/"}, {&V_ENVIRON, "environ"}, {&V_ASGI, "asgi"}, {&S_METHOD, "method"}, {&S_SCHEME, "scheme"},
        {&S_HEADERS, "headers"}, {&S_ROOT_PATH, "root_path"}, {&S_PATH, "path"}, {&S_QUERY_STRING, "query_string"},
        {&S_CLIENT, "client"}, {&S_SERVER, "server"},
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        if ((*strings[i].target = PyUnicode_InternFromString(strings[i].text)) == NULL) {
            return NULL;
        }
    }
    if (PyType_Ready(&RecordFactoryType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "RecordFactory", (PyObject *)&RecordFactoryType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "API", API) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
