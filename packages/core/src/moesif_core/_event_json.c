/* One record -> the JSON text of its event, the common event only -- the optional native half of
 * moesif_core.event_builder.EventBuilder.build_json (see moesif_core/event_json.py).
 *
 * Writer(...).event(record) returns the bytes orjson would write for the event the Python builder
 * makes, or None when the record holds anything this file does not handle exactly, and the
 * caller then runs the Python builder, which handles everything. So None is always safe, and
 * bytes must be byte for byte what the Python builder gives (the tests hold them to it).
 *
 * Handled: header lists the native normalisation takes (it is called, not copied); no callback
 * values but a user or company id that is a non-empty str; no GET_METADATA dict; bodies that are
 * empty, or bytes with no Content-Encoding that the native body check lets go in as they are;
 * str fields (exact type) with ASCII paths and queries; float times from 1970 to 9999; an int
 * status and weight in range; bodies not cut by the capture cap. Ids from the authorization
 * header and a client address from proxy headers are asked of the Python functions the builder
 * uses, only when such a header is there. Never raises: any error is cleared and gives None.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ the output buffer */

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
    char local[8192];
} Buf;

static void
buf_init(Buf *b)
{
    b->data = b->local;
    b->len = 0;
    b->cap = (Py_ssize_t)sizeof(b->local);
}

static void
buf_free(Buf *b)
{
    if (b->data != b->local) {
        PyMem_Free(b->data);
    }
}

/* Room for `extra` more bytes; -1 (MemoryError set) when there is none. */
static int
buf_reserve(Buf *b, Py_ssize_t extra)
{
    if (b->len + extra <= b->cap) {
        return 0;
    }
    if (extra > PY_SSIZE_T_MAX / 2 - b->len) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t cap = b->cap * 2;
    while (cap < b->len + extra) {
        cap *= 2;
    }
    char *data;
    if (b->data == b->local) {
        data = PyMem_Malloc((size_t)cap);
        if (data != NULL) {
            memcpy(data, b->local, (size_t)b->len);
        }
    } else {
        data = PyMem_Realloc(b->data, (size_t)cap);
    }
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int
put(Buf *b, const char *s, Py_ssize_t n)
{
    if (buf_reserve(b, n) < 0) {
        return -1;
    }
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

#define PUT_LITERAL(b, s) put((b), (s), (Py_ssize_t)(sizeof(s) - 1))

/* ------------------------------------------------------------------ JSON text, as orjson writes it */

static const char HEX[] = "0123456789abcdef";

/* 1 for the bytes orjson escapes: control characters, '"' and '\\' (not DEL, not '/', not UTF-8). */
static unsigned char ESCAPED[256];

static void
init_escaped(void)
{
    for (int c = 0; c < 0x20; c++) {
        ESCAPED[c] = 1;
    }
    ESCAPED['"'] = 1;
    ESCAPED['\\'] = 1;
}

/* `s[0:n]` (UTF-8) escaped for the inside of a JSON string. */
static int
put_escaped(Buf *b, const unsigned char *s, Py_ssize_t n)
{
    Py_ssize_t start = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (!ESCAPED[c]) {
            continue;
        }
        if (put(b, (const char *)s + start, i - start) < 0) {
            return -1;
        }
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        Py_ssize_t len = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\t': esc[1] = 't'; break;
        case '\n': esc[1] = 'n'; break;
        case '\f': esc[1] = 'f'; break;
        case '\r': esc[1] = 'r'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = HEX[c >> 4];
            esc[5] = HEX[c & 0x0F];
            len = 6;
        }
        if (put(b, esc, len) < 0) {
            return -1;
        }
        start = i + 1;
    }
    return put(b, (const char *)s + start, n - start);
}

/* An exact str escaped, without quotes; -1 for lone surrogates (orjson refuses them: the Python
 * path decides). */
static int
put_str_inside(Buf *b, PyObject *str)
{
    Py_ssize_t n;
    const char *s;
    if (PyUnicode_IS_ASCII(str)) {
        s = (const char *)PyUnicode_1BYTE_DATA(str);
        n = PyUnicode_GET_LENGTH(str);
    } else {
        s = PyUnicode_AsUTF8AndSize(str, &n);
        if (s == NULL) {
            return -1;
        }
    }
    return put_escaped(b, (const unsigned char *)s, n);
}

/* An exact str as a JSON string. */
static int
put_str(Buf *b, PyObject *str)
{
    if (PUT_LITERAL(b, "\"") < 0 || put_str_inside(b, str) < 0) {
        return -1;
    }
    return PUT_LITERAL(b, "\"");
}

/* None as null, an exact str as a string; -1 for anything else. */
static int
put_str_or_null(Buf *b, PyObject *value)
{
    if (value == Py_None) {
        return PUT_LITERAL(b, "null");
    }
    if (!PyUnicode_CheckExact(value)) {
        return -1;
    }
    return put_str(b, value);
}

static int
put_int(Buf *b, long long value)
{
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%lld", value);
    return put(b, digits, n);
}

/* ------------------------------------------------------------------ the event's times */

/* 10000-01-01T00:00:00: moesif_core.timefmt formats every second below it the same way. */
#define LAST_TIME 253402300800.0

static long long cached_second = -1;
static char cached_prefix[32];

/* A time.time() float as "2026-11-21T18:16:46.871", as moesif_core.timefmt.format_event_time. */
static int
put_time(Buf *b, PyObject *value)
{
    if (!PyFloat_CheckExact(value)) {
        return -1;
    }
    double timestamp = PyFloat_AS_DOUBLE(value);
    if (!(timestamp >= 0.0 && timestamp < LAST_TIME)) {
        return -1;
    }
    long long second = (long long)timestamp;
    int millis = (int)((timestamp - (double)second) * 1000.0);
    if (millis > 999) {
        millis = 999;
    }
    if (second != cached_second) {
        time_t t = (time_t)second;
        struct tm tm;
        if (gmtime_r(&t, &tm) == NULL
            || strftime(cached_prefix, sizeof(cached_prefix), "%Y-%m-%dT%H:%M:%S", &tm) != 19) {
            cached_second = -1;
            return -1;
        }
        cached_second = second;
    }
    char text[26];
    text[0] = '"';
    memcpy(text + 1, cached_prefix, 19);
    text[20] = '.';
    text[21] = (char)('0' + millis / 100);
    text[22] = (char)('0' + millis / 10 % 10);
    text[23] = (char)('0' + millis % 10);
    text[24] = '"';
    return put(b, text, 25);
}

/* ------------------------------------------------------------------ the writer */

typedef struct {
    PyObject_HEAD
    PyObject *normalize;        /* moesif_core._headers.normalize */
    PyObject *api_version;      /* None or str */
    PyObject *request_masks;    /* frozenset of lower-case header names */
    PyObject *response_masks;
    PyObject *identity_names;   /* tuple of the headers the identifier reads */
    PyObject *identify;         /* Identifier.identify(headers) -> (user, company) */
    PyObject *ip_names;         /* tuple of the proxy headers client_ip reads */
    PyObject *client_ip;        /* client_ip(headers, peer) -> str | None */
    PyObject *request_plain;    /* the body check for request bodies, or None */
    PyObject *response_plain;
} Writer;

static PyObject *TRANSACTION_ID_HEADER; /* "x-moesif-transaction-id" */
static PyObject *CONTENT_ENCODING;      /* "content-encoding" */
static PyObject *ENVIRON;               /* "environ" */
static PyObject *INCOMING;
static PyObject *OUTGOING;

/* The record's attributes, looked up by interned name. */
enum {
    A_BLOCKED_BY, A_CLIENT_ADDR, A_COMPANY_ID, A_DIRECTION, A_FULL_URL, A_HOST, A_METADATA,
    A_METHOD, A_PATH, A_QUERY_STRING, A_REQUEST_BODY, A_REQUEST_BODY_TRUNCATED,
    A_REQUEST_HEADER_STYLE, A_REQUEST_HEADERS, A_REQUEST_TIME, A_RESPONSE_BODY,
    A_RESPONSE_BODY_TRUNCATED, A_RESPONSE_HEADER_STYLE, A_RESPONSE_HEADERS, A_RESPONSE_TIME,
    A_ROOT_PATH, A_ROUTE, A_SCHEME, A_SESSION_TOKEN, A_STATUS, A_TRANSACTION_ID, A_USER_ID,
    A_WEIGHT, A_COUNT
};

static const char *ATTRIBUTE_NAMES[A_COUNT] = {
    "blocked_by", "client_addr", "company_id", "direction", "full_url", "host", "metadata",
    "method", "path", "query_string", "request_body", "request_body_truncated",
    "request_header_style", "request_headers", "request_time", "response_body",
    "response_body_truncated", "response_header_style", "response_headers", "response_time",
    "root_path", "route", "scheme", "session_token", "status", "transaction_id", "user_id",
    "weight",
};

static PyObject *attribute_names[A_COUNT];

static void
Writer_dealloc(Writer *self)
{
    Py_XDECREF(self->normalize);
    Py_XDECREF(self->api_version);
    Py_XDECREF(self->request_masks);
    Py_XDECREF(self->response_masks);
    Py_XDECREF(self->identity_names);
    Py_XDECREF(self->identify);
    Py_XDECREF(self->ip_names);
    Py_XDECREF(self->client_ip);
    Py_XDECREF(self->request_plain);
    Py_XDECREF(self->response_plain);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Writer_init(Writer *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "normalize", "api_version", "request_masks", "response_masks", "identity_names", "identify",
        "ip_names", "client_ip", "request_plain", "response_plain", NULL,
    };
    PyObject *normalize, *api_version, *request_masks, *response_masks, *identity_names, *identify;
    PyObject *ip_names, *client_ip, *request_plain, *response_plain;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "$OOO!O!O!OO!OOO:Writer", keywords, &normalize, &api_version,
            &PyFrozenSet_Type, &request_masks, &PyFrozenSet_Type, &response_masks, &PyTuple_Type,
            &identity_names, &identify, &PyTuple_Type, &ip_names, &client_ip, &request_plain,
            &response_plain)) {
        return -1;
    }
    if (api_version != Py_None && !PyUnicode_CheckExact(api_version)) {
        PyErr_SetString(PyExc_TypeError, "api_version must be None or a str");
        return -1;
    }
    PyObject *tuples[2] = {identity_names, ip_names};
    for (int t = 0; t < 2; t++) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuples[t]); i++) {
            if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(tuples[t], i))) {
                PyErr_SetString(PyExc_TypeError, "header names must be str");
                return -1;
            }
        }
    }
#define SET(field, value) do { Py_INCREF(value); Py_XSETREF(self->field, value); } while (0)
    SET(normalize, normalize);
    SET(api_version, api_version);
    SET(request_masks, request_masks);
    SET(response_masks, response_masks);
    SET(identity_names, identity_names);
    SET(identify, identify);
    SET(ip_names, ip_names);
    SET(client_ip, client_ip);
    SET(request_plain, request_plain);
    SET(response_plain, response_plain);
#undef SET
    return 0;
}

/* The event's header dict, as moesif_core.headers.normalize_headers gives it; NULL to hand over. */
static PyObject *
header_dict(Writer *self, PyObject *headers, PyObject *style)
{
    int is_dict = PyDict_CheckExact(headers);
    if (!is_dict && !PyList_CheckExact(headers) && !PyTuple_CheckExact(headers)) {
        return NULL;
    }
    if (Py_SIZE(headers) == 0 && !is_dict) {
        return PyDict_New();
    }
    if (is_dict && PyDict_GET_SIZE(headers) == 0) {
        return PyDict_New();
    }
    if (!PyUnicode_CheckExact(style)) {
        return NULL;
    }
    int environ = PyUnicode_Compare(style, ENVIRON) == 0;
    if (environ != is_dict) {
        return NULL; /* the Python path reads other shapes item by item */
    }
    PyObject *out = PyObject_CallFunctionObjArgs(self->normalize, headers, style, NULL);
    if (out == Py_None) {
        Py_DECREF(out);
        return NULL;
    }
    if (out != NULL && !PyDict_CheckExact(out)) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

/* `headers` as a JSON object, masked names' values as "*****". */
static int
put_headers(Buf *b, PyObject *headers, PyObject *masks)
{
    if (PUT_LITERAL(b, "{") < 0) {
        return -1;
    }
    Py_ssize_t pos = 0;
    PyObject *name, *value;
    int first = 1;
    int masking = PySet_GET_SIZE(masks) > 0;
    while (PyDict_Next(headers, &pos, &name, &value)) {
        if (!PyUnicode_CheckExact(name) || !PyUnicode_CheckExact(value)) {
            return -1;
        }
        if (!first && PUT_LITERAL(b, ",") < 0) {
            return -1;
        }
        first = 0;
        if (put_str(b, name) < 0 || PUT_LITERAL(b, ":") < 0) {
            return -1;
        }
        int masked = masking ? PySet_Contains(masks, name) : 0;
        if (masked < 0) {
            return -1;
        }
        if ((masked ? PUT_LITERAL(b, "\"*****\"") : put_str(b, value)) < 0) {
            return -1;
        }
    }
    return PUT_LITERAL(b, "}");
}

/* A body and its transfer encoding: `"body":...,` is written by the caller. */
static int
put_body(Buf *b, PyObject *data, PyObject *headers, PyObject *plain, const char *body_key, Py_ssize_t key_len,
         const char *encoding_key, Py_ssize_t encoding_key_len)
{
    if (put(b, body_key, key_len) < 0) {
        return -1;
    }
    if (data == Py_None || (PyBytes_CheckExact(data) && PyBytes_GET_SIZE(data) == 0)) {
        if (PUT_LITERAL(b, "null") < 0 || put(b, encoding_key, encoding_key_len) < 0) {
            return -1;
        }
        return PUT_LITERAL(b, "null");
    }
    if (!PyBytes_CheckExact(data) || plain == Py_None) {
        return -1;
    }
    PyObject *coding = PyDict_GetItemWithError(headers, CONTENT_ENCODING);
    if (coding != NULL) {
        if (!PyUnicode_CheckExact(coding) || PyUnicode_GET_LENGTH(coding) != 0) {
            return -1; /* compressed: the Python path undoes it */
        }
    } else if (PyErr_Occurred()) {
        return -1;
    }
    PyObject *verdict = PyObject_CallOneArg(plain, data);
    if (verdict == NULL) {
        return -1;
    }
    Py_DECREF(verdict);
    if (verdict != Py_True) {
        return -1;
    }
    if (put(b, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data)) < 0 || put(b, encoding_key, encoding_key_len) < 0) {
        return -1;
    }
    return PUT_LITERAL(b, "\"json\"");
}

/* 1 when `headers` holds a value that is not empty under one of `names`, 0 if not, -1 on error. */
static int
has_any(PyObject *headers, PyObject *names, int truthy)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        PyObject *value = PyDict_GetItemWithError(headers, PyTuple_GET_ITEM(names, i));
        if (value == NULL) {
            if (PyErr_Occurred()) {
                return -1;
            }
            continue;
        }
        if (!truthy) {
            return 1;
        }
        int true_ = PyObject_IsTrue(value);
        if (true_ != 0) {
            return true_;
        }
    }
    return 0;
}

/* A callback id as the builder takes it: None, or a non-empty str; 0 for anything else. */
static int
usable_id(PyObject *value)
{
    return value == Py_None || (PyUnicode_CheckExact(value) && PyUnicode_GET_LENGTH(value) > 0);
}

/* None, or a str that is not empty, as the builder's _str_or_none leaves it: NULL (None) when
 * empty; `*ok` = 0 for anything else. Borrowed. */
static PyObject *
str_or_none(PyObject *value, int *ok)
{
    if (value == Py_None) {
        return NULL;
    }
    if (!PyUnicode_CheckExact(value)) {
        *ok = 0;
        return NULL;
    }
    return PyUnicode_GET_LENGTH(value) > 0 ? value : NULL;
}

/* The integer `value` when it is an exact int in [low, high]; `*ok` = 0 otherwise. */
static long long
int_in(PyObject *value, long long low, long long high, int *ok)
{
    if (!PyLong_CheckExact(value)) {
        *ok = 0;
        return 0;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred()) || v < low || v > high) {
        PyErr_Clear();
        *ok = 0;
        return 0;
    }
    return v;
}

/* Everything below but the output buffer, so one exit releases it all. */
typedef struct {
    PyObject *attrs[A_COUNT];
    PyObject *request_headers;
    PyObject *response_headers;
    PyObject *identity;
    PyObject *ip;
} Parts;

static void
parts_clear(Parts *p)
{
    for (int i = 0; i < A_COUNT; i++) {
        Py_XDECREF(p->attrs[i]);
    }
    Py_XDECREF(p->request_headers);
    Py_XDECREF(p->response_headers);
    Py_XDECREF(p->identity);
    Py_XDECREF(p->ip);
}

/* The URI the builder assembles (or the full URL the record holds); -1 to hand over. */
static int
put_uri(Buf *b, PyObject **a)
{
    PyObject *full = a[A_FULL_URL];
    if (full != Py_None) {
        if (!PyUnicode_CheckExact(full)) {
            return -1;
        }
        if (PyUnicode_GET_LENGTH(full) > 0) {
            return put_str(b, full);
        }
    }
    PyObject *scheme = a[A_SCHEME], *host = a[A_HOST], *root = a[A_ROOT_PATH], *path = a[A_PATH];
    PyObject *query = a[A_QUERY_STRING];
    PyObject *pieces[5] = {scheme, host, root, path, query};
    for (int i = 0; i < 5; i++) {
        if (!PyUnicode_CheckExact(pieces[i])) {
            return -1;
        }
    }
    /* Non-ASCII paths are percent-encoded by the Python path; hosts and schemes go as they are. */
    if (!PyUnicode_IS_ASCII(root) || !PyUnicode_IS_ASCII(path) || !PyUnicode_IS_ASCII(query)) {
        return -1;
    }
    /* Each piece escaped on its own is the whole escaped: escapes never span characters. */
    if (PUT_LITERAL(b, "\"") < 0 || put_str_inside(b, scheme) < 0 || PUT_LITERAL(b, "://") < 0
        || put_str_inside(b, host) < 0 || put_str_inside(b, root) < 0 || put_str_inside(b, path) < 0) {
        return -1;
    }
    if (PyUnicode_GET_LENGTH(query) > 0 && (PUT_LITERAL(b, "?") < 0 || put_str_inside(b, query) < 0)) {
        return -1;
    }
    return PUT_LITERAL(b, "\"");
}

/* The event of the record as JSON into `b`; -1 to hand the record to the Python builder. */
static int
write_event(Writer *self, PyObject *record, Buf *b, Parts *p)
{
    PyObject **a = p->attrs;
    for (int i = 0; i < A_COUNT; i++) {
        a[i] = PyObject_GetAttr(record, attribute_names[i]);
        if (a[i] == NULL) {
            return -1;
        }
    }
    int ok = 1;
    /* What only the Python builder does: callback metadata, cut bodies, other directions. */
    if (a[A_METADATA] != Py_None) {
        return -1;
    }
    if (a[A_REQUEST_BODY_TRUNCATED] != Py_False || a[A_RESPONSE_BODY_TRUNCATED] != Py_False) {
        return -1;
    }
    PyObject *direction = a[A_DIRECTION];
    if (!PyUnicode_CheckExact(direction)) {
        return -1;
    }
    int outgoing = PyUnicode_Compare(direction, OUTGOING) == 0;
    if (!outgoing && PyUnicode_Compare(direction, INCOMING) != 0) {
        return -1;
    }
    if (!PyUnicode_CheckExact(a[A_METHOD])) {
        return -1;
    }
    long long status = int_in(a[A_STATUS], 0, 999, &ok);
    long long weight = int_in(a[A_WEIGHT], 1, PY_LLONG_MAX, &ok);
    PyObject *session_token = str_or_none(a[A_SESSION_TOKEN], &ok);
    PyObject *blocked_by = str_or_none(a[A_BLOCKED_BY], &ok);
    PyObject *transaction_id = str_or_none(a[A_TRANSACTION_ID], &ok);
    PyObject *route = str_or_none(a[A_ROUTE], &ok);
    PyObject *user = a[A_USER_ID], *company = a[A_COMPANY_ID];
    if (!ok || !usable_id(user) || !usable_id(company)) {
        return -1;
    }

    p->request_headers = header_dict(self, a[A_REQUEST_HEADERS], a[A_REQUEST_HEADER_STYLE]);
    if (p->request_headers == NULL) {
        return -1;
    }
    p->response_headers = header_dict(self, a[A_RESPONSE_HEADERS], a[A_RESPONSE_HEADER_STYLE]);
    if (p->response_headers == NULL) {
        return -1;
    }
    if (transaction_id != NULL) {
        if (PyDict_SetDefault(p->request_headers, TRANSACTION_ID_HEADER, transaction_id) == NULL
            || PyDict_SetDefault(p->response_headers, TRANSACTION_ID_HEADER, transaction_id) == NULL) {
            return -1;
        }
    }

    /* Ids from the token, before masking hides it; only when a callback left one unnamed. */
    if ((user == Py_None || company == Py_None) && !outgoing) {
        int present = has_any(p->request_headers, self->identity_names, 1);
        if (present < 0) {
            return -1;
        }
        if (present) {
            p->identity = PyObject_CallOneArg(self->identify, p->request_headers);
            if (p->identity == NULL || !PyTuple_CheckExact(p->identity) || PyTuple_GET_SIZE(p->identity) != 2) {
                return -1;
            }
            PyObject *found_user = PyTuple_GET_ITEM(p->identity, 0);
            PyObject *found_company = PyTuple_GET_ITEM(p->identity, 1);
            if (!usable_id(found_user) || !usable_id(found_company)) {
                return -1;
            }
            if (user == Py_None) {
                user = found_user;
            }
            if (company == Py_None) {
                company = found_company;
            }
        }
    }

    /* The client address: the peer's, unless a proxy header is there (then as client_ip says). */
    PyObject *peer = a[A_CLIENT_ADDR];
    int proxied = has_any(p->request_headers, self->ip_names, 0);
    if (proxied < 0) {
        return -1;
    }
    PyObject *ip;
    if (proxied) {
        /* client_ip reads the masked dict: a masked proxy header is left to the Python path. */
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(self->ip_names); i++) {
            int masked = PySet_Contains(self->request_masks, PyTuple_GET_ITEM(self->ip_names, i));
            if (masked != 0) {
                return -1;
            }
        }
        p->ip = PyObject_CallFunctionObjArgs(self->client_ip, p->request_headers, peer, NULL);
        if (p->ip == NULL || (p->ip != Py_None && !PyUnicode_CheckExact(p->ip))) {
            return -1;
        }
        ip = p->ip;
    } else if (PyUnicode_CheckExact(peer)) {
        ip = PyUnicode_GET_LENGTH(peer) > 0 ? peer : Py_None;
    } else if (peer == Py_None) {
        ip = Py_None;
    } else {
        return -1;
    }

    /* {"request":{...},"response":{...},...} in the builder's key order. */
    if (PUT_LITERAL(b, "{\"request\":{\"time\":") < 0 || put_time(b, a[A_REQUEST_TIME]) < 0
        || PUT_LITERAL(b, ",\"uri\":") < 0 || put_uri(b, a) < 0
        || PUT_LITERAL(b, ",\"verb\":") < 0 || put_str(b, a[A_METHOD]) < 0
        || PUT_LITERAL(b, ",\"api_version\":") < 0 || put_str_or_null(b, self->api_version) < 0
        || PUT_LITERAL(b, ",\"ip_address\":") < 0 || put_str_or_null(b, ip) < 0
        || PUT_LITERAL(b, ",\"headers\":") < 0 || put_headers(b, p->request_headers, self->request_masks) < 0) {
        return -1;
    }
    static const char BODY[] = ",\"body\":";
    static const char REQUEST_ENCODING[] = ",\"transfer_encoding\":";
    if (put_body(b, a[A_REQUEST_BODY], p->request_headers, self->request_plain, BODY, sizeof(BODY) - 1,
                 REQUEST_ENCODING, sizeof(REQUEST_ENCODING) - 1) < 0) {
        return -1;
    }
    if (PUT_LITERAL(b, "},\"response\":{\"time\":") < 0 || put_time(b, a[A_RESPONSE_TIME]) < 0
        || PUT_LITERAL(b, ",\"status\":") < 0 || put_int(b, status) < 0
        || PUT_LITERAL(b, ",\"headers\":") < 0 || put_headers(b, p->response_headers, self->response_masks) < 0) {
        return -1;
    }
    static const char RESPONSE_ENCODING[] = ",\"ip_address\":null,\"transfer_encoding\":";
    if (put_body(b, a[A_RESPONSE_BODY], p->response_headers, self->response_plain, BODY, sizeof(BODY) - 1,
                 RESPONSE_ENCODING, sizeof(RESPONSE_ENCODING) - 1) < 0) {
        return -1;
    }
    if (PUT_LITERAL(b, "},\"user_id\":") < 0 || put_str_or_null(b, user) < 0
        || PUT_LITERAL(b, ",\"company_id\":") < 0 || put_str_or_null(b, company) < 0
        || PUT_LITERAL(b, ",\"session_token\":") < 0
        || put_str_or_null(b, session_token == NULL ? Py_None : session_token) < 0
        || PUT_LITERAL(b, ",\"metadata\":") < 0) {
        return -1;
    }
    if (route == NULL) {
        if (PUT_LITERAL(b, "null") < 0) {
            return -1;
        }
    } else if (PUT_LITERAL(b, "{\"_moesif\":{\"route\":") < 0 || put_str(b, route) < 0 || PUT_LITERAL(b, "}}") < 0) {
        return -1;
    }
    if (PUT_LITERAL(b, ",\"tags\":null,\"direction\":") < 0 || put_str(b, direction) < 0
        || PUT_LITERAL(b, ",\"weight\":") < 0 || put_int(b, weight) < 0
        || PUT_LITERAL(b, ",\"blocked_by\":") < 0
        || put_str_or_null(b, blocked_by == NULL ? Py_None : blocked_by) < 0
        || PUT_LITERAL(b, ",\"transaction_id\":") < 0
        || put_str_or_null(b, transaction_id == NULL ? Py_None : transaction_id) < 0
        || PUT_LITERAL(b, "}") < 0) {
        return -1;
    }
    return 0;
}

static PyObject *
Writer_event(Writer *self, PyObject *record)
{
    Buf b;
    Parts p;
    buf_init(&b);
    memset(&p, 0, sizeof(p));
    PyObject *result = NULL;
    if (write_event(self, record, &b, &p) == 0) {
        result = PyBytes_FromStringAndSize(b.data, b.len);
    }
    parts_clear(&p);
    buf_free(&b);
    if (result == NULL) {
        PyErr_Clear(); /* whatever went wrong, the Python builder decides */
        Py_RETURN_NONE;
    }
    return result;
}

static PyMethodDef Writer_methods[] = {
    {"event", (PyCFunction)Writer_event, METH_O,
     "The event of a RawExchange as JSON bytes, or None: then the Python builder must build it."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "moesif_core._event_json.Writer",
    .tp_basicsize = sizeof(Writer),
    .tp_dealloc = (destructor)Writer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Writes the JSON of common events for one settings object; see moesif_core.event_json.",
    .tp_methods = Writer_methods,
    .tp_init = (initproc)Writer_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "moesif_core._event_json",
    "The JSON of the common event in one pass; see moesif_core.event_json.",
    -1,
    NULL,
};

static PyObject *
intern(const char *text)
{
    PyObject *s = PyUnicode_InternFromString(text);
    return s;
}

PyMODINIT_FUNC
PyInit__event_json(void)
{
    init_escaped();
    for (int i = 0; i < A_COUNT; i++) {
        if ((attribute_names[i] = intern(ATTRIBUTE_NAMES[i])) == NULL) {
            return NULL;
        }
    }
    if ((TRANSACTION_ID_HEADER = intern("x-moesif-transaction-id")) == NULL
        || (CONTENT_ENCODING = intern("content-encoding")) == NULL || (ENVIRON = intern("environ")) == NULL
        || (INCOMING = intern("Incoming")) == NULL || (OUTGOING = intern("Outgoing")) == NULL) {
        return NULL;
    }
    if (PyType_Ready(&WriterType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Writer", (PyObject *)&WriterType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
