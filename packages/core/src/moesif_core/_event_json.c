/* One record -> the JSON text of its event, the common event only -- the optional native half of
 * moesif_core.event_builder.EventBuilder.build_json (see moesif_core/event_json.py).
 *
 * Writer(...).event(record) returns the bytes orjson would write for the event the Python builder
 * makes, or None when the record holds anything this file does not handle exactly, and the
 * caller then runs the Python builder, which handles everything. So None is always safe, and
 * bytes must be byte for byte what the Python builder gives (the tests hold them to it).
 *
 * Handled: header lists of the usual shapes, read as the server built them (a list with a
 * repeated name, or an odd item, goes through moesif_core._headers.normalize, the dict the Python
 * builder starts from); no callback values but a user or company id that is a non-empty str; no
 * GET_METADATA dict; bodies that are empty, or bytes with no Content-Encoding that the native body
 * check lets go in as they are; str fields (exact type) with ASCII paths and queries; float times
 * from 1970 to 9999; an int status and weight in range; bodies not cut by the capture cap. Ids
 * from the authorization header and a client address from proxy headers are asked of the Python
 * functions the builder uses, with just the headers they read, only when such a header is there.
 * Never raises: any error is cleared and gives None.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <time.h>
#include "structmember.h"

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

/* buf_reserve when the buffer must grow: kept out of line, so the usual case stays a compare. */
static int
buf_grow(Buf *b, Py_ssize_t extra)
{
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

/* Room for `extra` more bytes; -1 (MemoryError set) when there is none. */
static inline int
buf_reserve(Buf *b, Py_ssize_t extra)
{
    return b->len + extra <= b->cap ? 0 : buf_grow(b, extra);
}

/* Inline: most pieces are a few bytes known at compile time (punctuation, literals), which the
 * compiler then copies without a call. */
static inline int
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
    if (PyUnicode_IS_ASCII(str)) {
        /* The usual header name or value: nothing to escape, written with its quotes at once. */
        const unsigned char *s = PyUnicode_1BYTE_DATA(str);
        Py_ssize_t n = PyUnicode_GET_LENGTH(str);
        Py_ssize_t i = 0;
        while (i < n && !ESCAPED[s[i]]) {
            i++;
        }
        if (i == n) {
            if (buf_reserve(b, n + 2) < 0) {
                return -1;
            }
            char *out = b->data + b->len;
            out[0] = '"';
            memcpy(out + 1, s, (size_t)n);
            out[n + 1] = '"';
            b->len += n + 2;
            return 0;
        }
    }
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

/* A non-negative integer in decimal. */
static int
put_int(Buf *b, unsigned long long value)
{
    char digits[24];
    int at = (int)sizeof(digits);
    do {
        digits[--at] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    return put(b, digits + at, (Py_ssize_t)sizeof(digits) - at);
}

/* Latin-1 bytes (an ASGI header value) as the inside of a JSON string: UTF-8, escaped. */
static int
put_latin1_inside(Buf *b, const unsigned char *s, Py_ssize_t n)
{
    Py_ssize_t start = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c < 0x80 && !ESCAPED[c]) {
            continue;
        }
        if (put_escaped(b, s + start, i - start) < 0) {
            return -1;
        }
        if (c < 0x80) {
            if (put_escaped(b, s + i, 1) < 0) {
                return -1;
            }
        } else {
            char two[2] = {(char)(0xC0 | (c >> 6)), (char)(0x80 | (c & 0x3F))};
            if (put(b, two, 2) < 0) {
                return -1;
            }
        }
        start = i + 1;
    }
    return put_escaped(b, s + start, n - start);
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

/* What a header name means to the event: flags of the names the writer knows. */
#define F_MASK_REQUEST 1   /* masked in requests */
#define F_MASK_RESPONSE 2  /* masked in responses */
#define F_IDENTITY 4       /* read by the identifier */
#define F_PROXY 8          /* read by client_ip */
#define F_CODING 16        /* content-encoding */
#define F_TRANSACTION 32   /* x-moesif-transaction-id */
#define MAX_NAMES 96
#define MAX_HEADERS 64

typedef struct {
    PyObject *text;  /* the lower-case name, an ASCII str */
    int flags;
} Name;

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
    PyTypeObject *record_type;  /* RawExchange: its slots are read at their offsets */
    Py_ssize_t offsets[32];
    Name names[MAX_NAMES];      /* every name above with its flags, ASCII ones only */
    int name_count;
    /* The names by length, so a header name is compared only with the names as long as it:
     * order[by_length[n]:by_length[n + 1]] index the names n long (n < 64), order[by_length[64]:]
     * the longer ones. */
    unsigned char order[MAX_NAMES];
    unsigned char by_length[65];
    int direct;                 /* header lists are read as they are (else through normalize) */
    int proxy_masked;           /* a proxy header is masked in requests: client_ip sees "*****" */
} Writer;

static PyObject *TRANSACTION_ID_HEADER; /* "x-moesif-transaction-id" */
static PyObject *CONTENT_ENCODING;      /* "content-encoding" */
static PyObject *ENVIRON;               /* "environ" */
static PyObject *PAIRS;
static PyObject *ASGI;
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

static int
Writer_traverse(Writer *self, visitproc visit, void *arg)
{
    Py_VISIT(self->identify);
    Py_VISIT(self->client_ip);
    Py_VISIT(self->request_plain);
    Py_VISIT(self->response_plain);
    Py_VISIT(self->normalize);
    Py_VISIT(self->record_type);
    return 0;
}

static int
Writer_clear(Writer *self)
{
    Py_CLEAR(self->normalize);
    Py_CLEAR(self->api_version);
    Py_CLEAR(self->request_masks);
    Py_CLEAR(self->response_masks);
    Py_CLEAR(self->identity_names);
    Py_CLEAR(self->identify);
    Py_CLEAR(self->ip_names);
    Py_CLEAR(self->client_ip);
    Py_CLEAR(self->request_plain);
    Py_CLEAR(self->response_plain);
    Py_CLEAR(self->record_type);
    for (int i = 0; i < self->name_count; i++) {
        Py_CLEAR(self->names[i].text);
    }
    self->name_count = 0;
    memset(self->by_length, 0, sizeof(self->by_length));
    return 0;
}

static void
Writer_dealloc(Writer *self)
{
    PyObject_GC_UnTrack(self);
    Writer_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Adds `flags` to the name `text` (a str) in the table; names that are not ASCII cannot match an
 * ASCII header name and are left out. 0, or -1 when the table is full (the direct path is off). */
static int
note_name(Writer *self, PyObject *text, int flags)
{
    if (!PyUnicode_CheckExact(text)) {
        return -1;
    }
    if (!PyUnicode_IS_ASCII(text)) {
        return 0;
    }
    for (int i = 0; i < self->name_count; i++) {
        if (PyUnicode_Compare(self->names[i].text, text) == 0) {
            self->names[i].flags |= flags;
            return 0;
        }
    }
    if (self->name_count == MAX_NAMES) {
        return -1;
    }
    Py_INCREF(text);
    self->names[self->name_count].text = text;
    self->names[self->name_count].flags = flags;
    self->name_count++;
    return 0;
}

static int
note_names(Writer *self, PyObject *names, int flags)
{
    PyObject *iterator = PyObject_GetIter(names);
    if (iterator == NULL) {
        return -2;
    }
    PyObject *name;
    int result = 0;
    while ((name = PyIter_Next(iterator)) != NULL) {
        if (note_name(self, name, flags) < 0) {
            result = -1;
        }
        Py_DECREF(name);
    }
    Py_DECREF(iterator);
    return PyErr_Occurred() ? -2 : result;
}

static int
Writer_init(Writer *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "normalize", "api_version", "request_masks", "response_masks", "identity_names", "identify",
        "ip_names", "client_ip", "request_plain", "response_plain", "record_type", NULL,
    };
    PyObject *normalize, *api_version, *request_masks, *response_masks, *identity_names, *identify;
    PyObject *ip_names, *client_ip, *request_plain, *response_plain, *record_type;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "$OOO!O!O!OO!OOOO!:Writer", keywords, &normalize, &api_version,
            &PyFrozenSet_Type, &request_masks, &PyFrozenSet_Type, &response_masks, &PyTuple_Type,
            &identity_names, &identify, &PyTuple_Type, &ip_names, &client_ip, &request_plain,
            &response_plain, &PyType_Type, &record_type)) {
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
    Writer_clear(self);
#define SET(field, value) do { Py_INCREF(value); self->field = (void *)(value); } while (0)
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
    SET(record_type, record_type);
#undef SET

    /* Where each attribute sits in a record of exactly that type (-1: looked up by name). */
    for (int i = 0; i < A_COUNT; i++) {
        self->offsets[i] = -1;
        PyObject *descr = PyObject_GetAttr(record_type, attribute_names[i]);
        if (descr == NULL) {
            PyErr_Clear();
            continue;
        }
        if (Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
            PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
            if (member->type == T_OBJECT_EX) {
                self->offsets[i] = member->offset;
            }
        }
        Py_DECREF(descr);
    }

    /* The names a header list is read for; with too many, the header lists go through normalize. */
    int full = 0;
    int results[6] = {
        note_names(self, request_masks, F_MASK_REQUEST),
        note_names(self, response_masks, F_MASK_RESPONSE),
        note_names(self, identity_names, F_IDENTITY),
        note_names(self, ip_names, F_PROXY),
        note_name(self, CONTENT_ENCODING, F_CODING),
        note_name(self, TRANSACTION_ID_HEADER, F_TRANSACTION),
    };
    for (int i = 0; i < 6; i++) {
        if (results[i] == -2) {
            return -1;
        }
        full |= results[i] == -1;
    }
    /* by_length and order: a counting sort of the names by length (64 and over together). */
    int counts[65] = {0};
    for (int i = 0; i < self->name_count; i++) {
        Py_ssize_t length = PyUnicode_GET_LENGTH(self->names[i].text);
        counts[length < 64 ? length : 64]++;
    }
    int next[65];
    int at = 0;
    for (int n = 0; n <= 64; n++) {
        self->by_length[n] = (unsigned char)at;
        next[n] = at;
        at += counts[n];
    }
    for (int i = 0; i < self->name_count; i++) {
        Py_ssize_t length = PyUnicode_GET_LENGTH(self->names[i].text);
        self->order[next[length < 64 ? length : 64]++] = (unsigned char)i;
    }
    self->proxy_masked = 0;
    int transaction_read = 0;
    for (int i = 0; i < self->name_count; i++) {
        int flags = self->names[i].flags;
        if ((flags & F_PROXY) && (flags & F_MASK_REQUEST)) {
            self->proxy_masked = 1;
        }
        /* The builder adds the transaction id to the dict before the identifier and client_ip read it. */
        if ((flags & F_TRANSACTION) && (flags & (F_IDENTITY | F_PROXY))) {
            transaction_read = 1;
        }
    }
    self->direct = !full && !transaction_read;
    return 0;
}

/* ------------------------------------------------------------------ header lists, read as they are */

typedef struct {
    const char *name;  /* the name as the list spells it (an environ key without "HTTP_") */
    Py_ssize_t len;
    PyObject *key;     /* owned: keeps `name` alive */
    PyObject *value;   /* owned: a str, or bytes for ASGI */
    int known;         /* the writer's name it spells (index into Writer.names), or -1 */
    int flags;         /* that name's flags, 0 for none */
} Header;

typedef struct {
    Header items[MAX_HEADERS];
    int count;
    int cgi;           /* names are CGI keys: "_" means "-" */
    int asgi;          /* values are latin-1 bytes */
    PyObject *dict;    /* owned: the normalised dict when the list is not read as it is */
} Headers;

static void
headers_clear(Headers *h)
{
    for (int i = 0; i < h->count; i++) {
        Py_DECREF(h->items[i].key);
        Py_DECREF(h->items[i].value);
    }
    h->count = 0;
    Py_CLEAR(h->dict);
}

static inline unsigned char
name_char(unsigned char c, int cgi)
{
    if (c >= 'A' && c <= 'Z') {
        return (unsigned char)(c + ('a' - 'A'));
    }
    return cgi && c == '_' ? '-' : c;
}

/* Whether two list names are the same header name once lower-cased. */
static int
same_name(const Header *x, const Header *y, int cgi)
{
    if (x->len != y->len) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < x->len; i++) {
        if (name_char((unsigned char)x->name[i], cgi) != name_char((unsigned char)y->name[i], cgi)) {
            return 0;
        }
    }
    return 1;
}

/* The writer's name a header's name spells (an index into Writer.names), or -1. */
static int
known_name(const Writer *self, const char *name, Py_ssize_t len, int cgi)
{
    int from = self->by_length[len < 64 ? len : 64];
    int to = len < 64 ? self->by_length[len + 1] : self->name_count;
    for (int k = from; k < to; k++) {
        int i = self->order[k];
        PyObject *text = self->names[i].text;
        if (PyUnicode_GET_LENGTH(text) != len) {
            continue;
        }
        const Py_UCS1 *known = PyUnicode_1BYTE_DATA(text);
        Py_ssize_t j = 0;
        while (j < len && name_char((unsigned char)name[j], cgi) == known[j]) {
            j++;
        }
        if (j == len) {
            return i;
        }
    }
    return -1;
}

#define READ_AS_IS 0
#define NORMALIZE 1 /* let the native normalisation decide (repeats, odd items) */

/* Takes one header into `h`: NORMALIZE when it is not the usual kind. */
static int
take(const Writer *self, Headers *h, const char *name, Py_ssize_t len, PyObject *key, PyObject *value)
{
    if (h->count == MAX_HEADERS) {
        return NORMALIZE;
    }
    Header *item = &h->items[h->count];
    item->name = name;
    item->len = len;
    for (Py_ssize_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c >= 0x80 || ESCAPED[c]) {
            return NORMALIZE;
        }
    }
    for (int i = 0; i < h->count; i++) {
        if (same_name(&h->items[i], item, h->cgi)) {
            return NORMALIZE; /* a repeat: joined (or replaced) by the normalisation */
        }
    }
    item->known = known_name(self, name, len, h->cgi);
    item->flags = item->known < 0 ? 0 : self->names[item->known].flags;
    Py_INCREF(key);
    Py_INCREF(value);
    item->key = key;
    item->value = value;
    h->count++;
    return READ_AS_IS;
}

static int
read_environ(const Writer *self, PyObject *environ, Headers *h)
{
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    h->cgi = 1;
    while (PyDict_Next(environ, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key) || !PyUnicode_IS_ASCII(key)) {
            return NORMALIZE;
        }
        const char *s = (const char *)PyUnicode_1BYTE_DATA(key);
        Py_ssize_t n = PyUnicode_GET_LENGTH(key);
        if (n > 5 && memcmp(s, "HTTP_", 5) == 0) {
            s += 5;
            n -= 5;
        } else if (!((n == 12 && memcmp(s, "CONTENT_TYPE", 12) == 0) || (n == 14 && memcmp(s, "CONTENT_LENGTH", 14) == 0))) {
            continue;
        }
        if (!PyUnicode_CheckExact(value) || take(self, h, s, n, key, value) != READ_AS_IS) {
            return NORMALIZE;
        }
    }
    return READ_AS_IS;
}

static int
read_pairs(const Writer *self, PyObject *list, Headers *h, int asgi)
{
    h->asgi = asgi;
    for (Py_ssize_t i = 0; i < Py_SIZE(list); i++) {
        PyObject *item = PyList_CheckExact(list) ? PyList_GET_ITEM(list, i) : PyTuple_GET_ITEM(list, i);
        PyObject *key, *value;
        if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 2) {
            key = PyTuple_GET_ITEM(item, 0);
            value = PyTuple_GET_ITEM(item, 1);
        } else {
            return NORMALIZE;
        }
        const char *s;
        Py_ssize_t n;
        if (asgi) {
            if (!PyBytes_CheckExact(key) || !PyBytes_CheckExact(value)) {
                return NORMALIZE;
            }
            s = PyBytes_AS_STRING(key);
            n = PyBytes_GET_SIZE(key);
        } else {
            if (!PyUnicode_CheckExact(key) || !PyUnicode_IS_ASCII(key) || !PyUnicode_CheckExact(value)) {
                return NORMALIZE;
            }
            s = (const char *)PyUnicode_1BYTE_DATA(key);
            n = PyUnicode_GET_LENGTH(key);
        }
        if (take(self, h, s, n, key, value) != READ_AS_IS) {
            return NORMALIZE;
        }
    }
    return READ_AS_IS;
}

/* The header list of a record into `h`, as it is when it can be, else as the normalised dict
 * (h->dict); -1 to hand the record over. */
static int
read_headers(const Writer *self, PyObject *headers, PyObject *style, Headers *h)
{
    int is_dict = PyDict_CheckExact(headers);
    if (!is_dict && !PyList_CheckExact(headers) && !PyTuple_CheckExact(headers)) {
        return -1;
    }
    if (is_dict ? PyDict_GET_SIZE(headers) == 0 : Py_SIZE(headers) == 0) {
        return 0; /* no headers, whatever the style */
    }
    if (!PyUnicode_CheckExact(style)) {
        return -1;
    }
    int environ = PyUnicode_Compare(style, ENVIRON) == 0;
    if (environ != is_dict) {
        return -1; /* the Python path reads other shapes item by item */
    }
    if (self->direct) {
        int how = NORMALIZE;
        if (environ) {
            how = read_environ(self, headers, h);
        } else if (PyUnicode_Compare(style, PAIRS) == 0) {
            how = read_pairs(self, headers, h, 0);
        } else if (PyUnicode_Compare(style, ASGI) == 0) {
            how = read_pairs(self, headers, h, 1);
        }
        if (how == READ_AS_IS) {
            return 0;
        }
        headers_clear(h);
    }
    PyObject *out = PyObject_CallFunctionObjArgs(self->normalize, headers, style, NULL);
    if (out == NULL || !PyDict_CheckExact(out)) {
        Py_XDECREF(out);
        return -1;
    }
    h->dict = out;
    return 0;
}

/* A new str of a header's value (ASGI values decoded as latin-1, as the normalisation does). */
static PyObject *
value_text(const Headers *h, const Header *item)
{
    if (h->asgi) {
        return PyUnicode_DecodeLatin1(PyBytes_AS_STRING(item->value), PyBytes_GET_SIZE(item->value), NULL);
    }
    Py_INCREF(item->value);
    return item->value;
}

static int
value_empty(const Headers *h, const Header *item)
{
    return h->asgi ? PyBytes_GET_SIZE(item->value) == 0 : PyUnicode_GET_LENGTH(item->value) == 0;
}

/* The headers whose names have `flags` as a dict {lower-case name: value}, which is all the
 * identifier and client_ip read of the whole dict; NULL with *present = 0 when there is none with a
 * value (`nonempty`) or at all. */
static PyObject *
subset(const Writer *self, const Headers *h, int flags, int nonempty, int *present)
{
    *present = 0;
    for (int i = 0; i < h->count; i++) {
        if ((h->items[i].flags & flags) && !(nonempty && value_empty(h, &h->items[i]))) {
            *present = 1;
            break;
        }
    }
    if (!*present) {
        return NULL;
    }
    PyObject *out = PyDict_New();
    if (out == NULL) {
        return NULL;
    }
    for (int i = 0; i < h->count; i++) {
        const Header *item = &h->items[i];
        if (!(item->flags & flags)) {
            continue;
        }
        PyObject *value = value_text(h, item);
        if (value == NULL || PyDict_SetItem(out, self->names[item->known].text, value) < 0) {
            Py_XDECREF(value);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(value);
    }
    return out;
}

/* The value under "content-encoding", NULL when there is none (borrowed; bytes for ASGI). */
static PyObject *
coding_of(const Headers *h, int *failed)
{
    *failed = 0;
    if (h->dict != NULL) {
        PyObject *value = PyDict_GetItemWithError(h->dict, CONTENT_ENCODING);
        *failed = value == NULL && PyErr_Occurred();
        return value;
    }
    for (int i = 0; i < h->count; i++) {
        if (h->items[i].flags & F_CODING) {
            return h->items[i].value;
        }
    }
    return NULL;
}

/* `headers` as a JSON object, masked names' values as "*****", the transaction id added last
 * when the list has none (as the builder's setdefault does). */
static int
put_headers(Buf *b, const Headers *h, int mask_flag, PyObject *masks, PyObject *transaction_id)
{
    if (PUT_LITERAL(b, "{") < 0) {
        return -1;
    }
    int first = 1;
    int has_transaction = 0;
    if (h->dict != NULL) {
        Py_ssize_t pos = 0;
        PyObject *name, *value;
        int masking = PySet_GET_SIZE(masks) > 0;
        while (PyDict_Next(h->dict, &pos, &name, &value)) {
            if (!PyUnicode_CheckExact(name) || !PyUnicode_CheckExact(value)) {
                return -1;
            }
            if ((!first && PUT_LITERAL(b, ",") < 0) || put_str(b, name) < 0 || PUT_LITERAL(b, ":") < 0) {
                return -1;
            }
            first = 0;
            int masked = masking ? PySet_Contains(masks, name) : 0;
            if (masked < 0 || (masked ? PUT_LITERAL(b, "\"*****\"") : put_str(b, value)) < 0) {
                return -1;
            }
        }
        if (transaction_id != NULL) {
            has_transaction = PyDict_Contains(h->dict, TRANSACTION_ID_HEADER);
            if (has_transaction < 0) {
                return -1;
            }
        }
    } else {
        for (int i = 0; i < h->count; i++) {
            const Header *item = &h->items[i];
            if (buf_reserve(b, item->len + 4) < 0) {
                return -1;
            }
            if (!first) {
                b->data[b->len++] = ',';
            }
            first = 0;
            b->data[b->len++] = '"';
            for (Py_ssize_t j = 0; j < item->len; j++) {
                b->data[b->len++] = (char)name_char((unsigned char)item->name[j], h->cgi);
            }
            b->data[b->len++] = '"';
            b->data[b->len++] = ':';
            has_transaction |= item->flags & F_TRANSACTION;
            int failed;
            if (item->flags & mask_flag) {
                failed = PUT_LITERAL(b, "\"*****\"");
            } else if (h->asgi) {
                failed = PUT_LITERAL(b, "\"") < 0
                    || put_latin1_inside(b, (const unsigned char *)PyBytes_AS_STRING(item->value), PyBytes_GET_SIZE(item->value)) < 0
                    || PUT_LITERAL(b, "\"") < 0;
            } else {
                failed = put_str(b, item->value);
            }
            if (failed) {
                return -1;
            }
        }
    }
    if (transaction_id != NULL && !has_transaction) {
        if ((!first && PUT_LITERAL(b, ",") < 0) || PUT_LITERAL(b, "\"x-moesif-transaction-id\":") < 0
            || put_str(b, transaction_id) < 0) {
            return -1;
        }
    }
    return PUT_LITERAL(b, "}");
}

/* A body and its transfer encoding, after `"body":`. */
static int
put_body(Buf *b, PyObject *data, const Headers *h, PyObject *plain, const char *between, Py_ssize_t between_len)
{
    if (data == Py_None || (PyBytes_CheckExact(data) && PyBytes_GET_SIZE(data) == 0)) {
        if (PUT_LITERAL(b, "null") < 0 || put(b, between, between_len) < 0) {
            return -1;
        }
        return PUT_LITERAL(b, "null");
    }
    if (!PyBytes_CheckExact(data) || plain == Py_None) {
        return -1;
    }
    int failed;
    PyObject *coding = coding_of(h, &failed);
    if (failed) {
        return -1;
    }
    if (coding != NULL && (PyUnicode_CheckExact(coding) ? PyUnicode_GET_LENGTH(coding) : Py_SIZE(coding)) != 0) {
        return -1; /* compressed: the Python path undoes it */
    }
    PyObject *verdict = PyObject_CallOneArg(plain, data);
    if (verdict == NULL) {
        return -1;
    }
    Py_DECREF(verdict);
    if (verdict != Py_True) {
        return -1;
    }
    if (put(b, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data)) < 0 || put(b, between, between_len) < 0) {
        return -1;
    }
    return PUT_LITERAL(b, "\"json\"");
}

/* 1 when the normalised dict holds a value (a non-empty one with `nonempty`) under one of
 * `names`, 0 if not, -1 on error. */
static int
dict_has_any(PyObject *dict, PyObject *names, int nonempty)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        PyObject *value = PyDict_GetItemWithError(dict, PyTuple_GET_ITEM(names, i));
        if (value == NULL) {
            if (PyErr_Occurred()) {
                return -1;
            }
            continue;
        }
        if (!nonempty) {
            return 1;
        }
        int true_ = PyObject_IsTrue(value);
        if (true_ != 0) {
            return true_;
        }
    }
    return 0;
}

/* Asks `function(headers dict, *extra)` with what it reads of the request headers, or answers
 * `absent` (a new reference) when none of them is there; NULL on error, or when one is there and
 * `refused` (with no error set). */
static PyObject *
ask(const Writer *self, Headers *h, int flags, PyObject *names, int nonempty, int refused, PyObject *function,
    PyObject *extra, PyObject *absent)
{
    PyObject *headers;
    if (h->dict != NULL) {
        int present = dict_has_any(h->dict, names, nonempty);
        if (present <= 0) {
            if (present == 0) {
                Py_INCREF(absent);
                return absent;
            }
            return NULL;
        }
        if (refused) {
            return NULL;
        }
        headers = h->dict;
        Py_INCREF(headers);
    } else {
        int present;
        headers = subset(self, h, flags, nonempty, &present);
        if (headers == NULL) {
            if (!present) {
                Py_INCREF(absent);
                return absent;
            }
            return NULL;
        }
        if (refused) {
            Py_DECREF(headers);
            return NULL;
        }
    }
    PyObject *answer = PyObject_CallFunctionObjArgs(function, headers, extra, NULL);
    Py_DECREF(headers);
    return answer;
}

/* A callback id as the builder takes it: None, or a non-empty str. */
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
    Headers request;
    Headers response;
    PyObject *identity;
    PyObject *ip;
} Parts;

static void
parts_clear(Parts *p)
{
    for (int i = 0; i < A_COUNT; i++) {
        Py_XDECREF(p->attrs[i]);
    }
    headers_clear(&p->request);
    headers_clear(&p->response);
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

/* The record's attributes into `a` (new references); -1 when one is missing. */
static int
read_record(const Writer *self, PyObject *record, PyObject **a)
{
    int slotted = Py_TYPE(record) == self->record_type;
    for (int i = 0; i < A_COUNT; i++) {
        Py_ssize_t offset = slotted ? self->offsets[i] : -1;
        if (offset >= 0) {
            PyObject *value = *(PyObject **)((char *)record + offset);
            if (value == NULL) {
                return -1; /* never set */
            }
            Py_INCREF(value);
            a[i] = value;
        } else if ((a[i] = PyObject_GetAttr(record, attribute_names[i])) == NULL) {
            return -1;
        }
    }
    return 0;
}

/* The event of the record as JSON into `b`; -1 to hand the record to the Python builder. */
static int
write_event(Writer *self, PyObject *record, Buf *b, Parts *p)
{
    PyObject **a = p->attrs;
    if (read_record(self, record, a) < 0) {
        return -1;
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

    if (read_headers(self, a[A_REQUEST_HEADERS], a[A_REQUEST_HEADER_STYLE], &p->request) < 0
        || read_headers(self, a[A_RESPONSE_HEADERS], a[A_RESPONSE_HEADER_STYLE], &p->response) < 0) {
        return -1;
    }
    if (transaction_id != NULL) {
        /* The builder's setdefault, on a dict the identifier and client_ip read (never in the
         * direct reading: see Writer_init). */
        PyObject *dicts[2] = {p->request.dict, p->response.dict};
        for (int i = 0; i < 2; i++) {
            if (dicts[i] != NULL && PyDict_SetDefault(dicts[i], TRANSACTION_ID_HEADER, transaction_id) == NULL) {
                return -1;
            }
        }
    }

    /* Ids from the token, before masking hides it; only when a callback left one unnamed. */
    if ((user == Py_None || company == Py_None) && !outgoing) {
        static PyObject *nobody = NULL;
        if (nobody == NULL && (nobody = PyTuple_Pack(2, Py_None, Py_None)) == NULL) {
            return -1;
        }
        p->identity = ask(self, &p->request, F_IDENTITY, self->identity_names, 1, 0, self->identify, NULL, nobody);
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

    /* The client address: the peer's, unless a proxy header is there (then as client_ip says). */
    PyObject *peer = a[A_CLIENT_ADDR];
    PyObject *ip;
    if (!PyUnicode_CheckExact(peer) && peer != Py_None) {
        return -1;
    }
    PyObject *own = peer == Py_None || PyUnicode_GET_LENGTH(peer) == 0 ? Py_None : peer;
    /* client_ip reads the masked dict: with a proxy header masked, the Python path decides. */
    p->ip = ask(self, &p->request, F_PROXY, self->ip_names, 0, self->proxy_masked, self->client_ip, peer, own);
    if (p->ip == NULL || (p->ip != Py_None && !PyUnicode_CheckExact(p->ip))) {
        return -1;
    }
    ip = p->ip;

    /* {"request":{...},"response":{...},...} in the builder's key order. */
    if (PUT_LITERAL(b, "{\"request\":{\"time\":") < 0 || put_time(b, a[A_REQUEST_TIME]) < 0
        || PUT_LITERAL(b, ",\"uri\":") < 0 || put_uri(b, a) < 0
        || PUT_LITERAL(b, ",\"verb\":") < 0 || put_str(b, a[A_METHOD]) < 0
        || PUT_LITERAL(b, ",\"api_version\":") < 0 || put_str_or_null(b, self->api_version) < 0
        || PUT_LITERAL(b, ",\"ip_address\":") < 0 || put_str_or_null(b, ip) < 0
        || PUT_LITERAL(b, ",\"headers\":") < 0
        || put_headers(b, &p->request, F_MASK_REQUEST, self->request_masks, transaction_id) < 0) {
        return -1;
    }
    static const char REQUEST_BETWEEN[] = ",\"transfer_encoding\":";
    if (PUT_LITERAL(b, ",\"body\":") < 0
        || put_body(b, a[A_REQUEST_BODY], &p->request, self->request_plain, REQUEST_BETWEEN, sizeof(REQUEST_BETWEEN) - 1) < 0) {
        return -1;
    }
    if (PUT_LITERAL(b, "},\"response\":{\"time\":") < 0 || put_time(b, a[A_RESPONSE_TIME]) < 0
        || PUT_LITERAL(b, ",\"status\":") < 0 || put_int(b, (unsigned long long)status) < 0
        || PUT_LITERAL(b, ",\"headers\":") < 0
        || put_headers(b, &p->response, F_MASK_RESPONSE, self->response_masks, transaction_id) < 0) {
        return -1;
    }
    static const char RESPONSE_BETWEEN[] = ",\"ip_address\":null,\"transfer_encoding\":";
    if (PUT_LITERAL(b, ",\"body\":") < 0
        || put_body(b, a[A_RESPONSE_BODY], &p->response, self->response_plain, RESPONSE_BETWEEN, sizeof(RESPONSE_BETWEEN) - 1) < 0) {
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
        || PUT_LITERAL(b, ",\"weight\":") < 0 || put_int(b, (unsigned long long)weight) < 0
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
    if (self->normalize != NULL && write_event(self, record, &b, &p) == 0) {
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
    .tp_free = PyObject_GC_Del,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Writes the JSON of common events for one settings object; see moesif_core.event_json.",
    .tp_traverse = (traverseproc)Writer_traverse,
    .tp_clear = (inquiry)Writer_clear,
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

/* The interface this file gives its Python module (moesif_core.native.native_part): raised with
 * any change the Python side must match, so a build of older sources is refused, not called. */
#define API 1

PyMODINIT_FUNC
PyInit__event_json(void)
{
    init_escaped();
    for (int i = 0; i < A_COUNT; i++) {
        if ((attribute_names[i] = PyUnicode_InternFromString(ATTRIBUTE_NAMES[i])) == NULL) {
            return NULL;
        }
    }
    if ((TRANSACTION_ID_HEADER = PyUnicode_InternFromString("x-moesif-transaction-id")) == NULL
        || (CONTENT_ENCODING = PyUnicode_InternFromString("content-encoding")) == NULL
        || (ENVIRON = PyUnicode_InternFromString("environ")) == NULL
        || (PAIRS = PyUnicode_InternFromString("pairs")) == NULL
        || (ASGI = PyUnicode_InternFromString("asgi")) == NULL
        || (INCOMING = PyUnicode_InternFromString("Incoming")) == NULL
        || (OUTGOING = PyUnicode_InternFromString("Outgoing")) == NULL) {
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
    if (PyModule_AddIntConstant(m, "API", API) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
