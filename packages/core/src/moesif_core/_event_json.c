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
#include "_json_scan.h"

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
        PyMem_RawFree(b->data);
    }
}

/* buf_reserve when the buffer must grow: kept out of line, so the usual case stays a compare.
 * The raw allocator, and no exception set: a batch is written with the GIL released. */
static int
buf_grow(Buf *b, Py_ssize_t extra)
{
    if (extra > PY_SSIZE_T_MAX / 2 - b->len) {
        return -1;
    }
    Py_ssize_t cap = b->cap * 2;
    while (cap < b->len + extra) {
        cap *= 2;
    }
    char *data;
    if (b->data == b->local) {
        data = PyMem_RawMalloc((size_t)cap);
        if (data != NULL) {
            memcpy(data, b->local, (size_t)b->len);
        }
    } else {
        data = PyMem_RawRealloc(b->data, (size_t)cap);
    }
    if (data == NULL) {
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

/* Room for `extra` more bytes; -1 when there is none. */
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

/* A str's UTF-8, read under the GIL so the event can be written without it (the object stays
 * referenced meanwhile); s == NULL stands for null. */
typedef struct {
    const char *s;
    Py_ssize_t n;
} Text;

static const Text NULL_TEXT = {NULL, 0};

/* An exact str's text; -1 for lone surrogates (orjson refuses them: the Python path decides). */
static int
text_of(PyObject *str, Text *t)
{
    if (PyUnicode_IS_ASCII(str)) {
        t->s = (const char *)PyUnicode_1BYTE_DATA(str);
        t->n = PyUnicode_GET_LENGTH(str);
        return 0;
    }
    t->s = PyUnicode_AsUTF8AndSize(str, &t->n);
    return t->s == NULL ? -1 : 0;
}

/* None as null, an exact str as its text; -1 for anything else. */
static int
text_or_null(PyObject *value, Text *t)
{
    if (value == Py_None) {
        *t = NULL_TEXT;
        return 0;
    }
    return PyUnicode_CheckExact(value) ? text_of(value, t) : -1;
}

/* A text as a JSON string. */
static int
put_text(Buf *b, Text t)
{
    const unsigned char *s = (const unsigned char *)t.s;
    Py_ssize_t n = t.n;
    Py_ssize_t i = 0;
    while (i < n && !ESCAPED[s[i]]) {
        i++;
    }
    if (i == n) {
        /* The usual header name or value: nothing to escape, written with its quotes at once. */
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
    if (PUT_LITERAL(b, "\"") < 0 || put_escaped(b, s, n) < 0) {
        return -1;
    }
    return PUT_LITERAL(b, "\"");
}

/* A text as a JSON string, or null. */
static int
put_text_or_null(Buf *b, Text t)
{
    return t.s == NULL ? PUT_LITERAL(b, "null") : put_text(b, t);
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

/* The last second formatted, per writing call: events of a batch mostly share it. */
typedef struct {
    long long second;
    char prefix[32];
} TimeCache;

/* Whether a time.time() float can be written (as the builder's format_event_time would). */
static int
time_of(PyObject *value, double *t)
{
    if (!PyFloat_CheckExact(value)) {
        return -1;
    }
    *t = PyFloat_AS_DOUBLE(value);
    return *t >= 0.0 && *t < LAST_TIME ? 0 : -1;
}

/* A time read by time_of as "2026-11-21T18:16:46.871", as moesif_core.timefmt.format_event_time. */
static int
put_time(Buf *b, double timestamp, TimeCache *cache)
{
    long long second = (long long)timestamp;
    int millis = (int)((timestamp - (double)second) * 1000.0);
    if (millis > 999) {
        millis = 999;
    }
    if (second != cache->second) {
        time_t t = (time_t)second;
        struct tm tm;
        if (gmtime_r(&t, &tm) == NULL
            || strftime(cache->prefix, sizeof(cache->prefix), "%Y-%m-%dT%H:%M:%S", &tm) != 19) {
            cache->second = -1;
            return -1;
        }
        cache->second = second;
    }
    char text[26];
    text[0] = '"';
    memcpy(text + 1, cache->prefix, 19);
    text[20] = '.';
    text[21] = (char)('0' + millis / 100);
    text[22] = (char)('0' + millis / 10 % 10);
    text[23] = (char)('0' + millis % 10);
    text[24] = '"';
    return put(b, text, 25);
}

/* ------------------------------------------------------------------ the body check, from C */

/* The C API of moesif_core._json_scan, once imported (NULL: not there, or another version). */
static const JsonScanCAPI *json_scan;

/* The Scanner behind a body check when it is Scanner.plain of the _json_scan this file knows (a
 * new reference), else NULL: that check is then called as any Python callable. */
static PyObject *
scanner_of(PyObject *plain)
{
    if (!PyCFunction_Check(plain) || PyCFunction_GET_SELF(plain) == NULL) {
        return NULL;
    }
    if (json_scan == NULL) {
        const JsonScanCAPI *api = PyCapsule_Import(JSON_SCAN_CAPSULE, 0);
        if (api == NULL || api->version != JSON_SCAN_CAPI_VERSION) {
            PyErr_Clear();
            return NULL;
        }
        json_scan = api;
    }
    PyObject *scanner = PyCFunction_GET_SELF(plain);
    if (PyCFunction_GET_FUNCTION(plain) != json_scan->plain_method || !Py_IS_TYPE(scanner, json_scan->scanner_type)) {
        return NULL;
    }
    Py_INCREF(scanner);
    return scanner;
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
    PyObject *request_scanner;  /* the Scanner behind request_plain, called directly; or NULL */
    PyObject *response_scanner;
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
    Py_VISIT(self->request_scanner);
    Py_VISIT(self->response_scanner);
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
    Py_CLEAR(self->request_scanner);
    Py_CLEAR(self->response_scanner);
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
    /* A Scanner's check is called from C at writing, with the GIL released. */
    if (request_plain != Py_None) {
        self->request_scanner = scanner_of(request_plain);
    }
    if (response_plain != Py_None) {
        self->response_scanner = scanner_of(response_plain);
    }

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
    Text text;         /* the value's text (latin-1 bytes for ASGI), set by headers_ready */
    int known;         /* the writer's name it spells (index into Writer.names), or -1 */
    int flags;         /* that name's flags, 0 for none */
} Header;

typedef struct {
    Header items[MAX_HEADERS];
    int count;
    int cgi;           /* names are CGI keys: "_" means "-" */
    int asgi;          /* values are latin-1 bytes */
    int verbatim;      /* names are the normalised dict's, written as they are */
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
        h->asgi = 0;
        h->cgi = 0;
    }
    PyObject *out = PyObject_CallFunctionObjArgs(self->normalize, headers, style, NULL);
    if (out == NULL || !PyDict_CheckExact(out)) {
        Py_XDECREF(out);
        return -1;
    }
    h->dict = out;
    return 0;
}

/* The normalised dict as items written as they are: masked names (in `masks`) flagged with
 * `mask_flag`; -1 to hand the record over (odd items, more than MAX_HEADERS). */
static int
take_dict(Headers *h, PyObject *masks, int mask_flag)
{
    Py_ssize_t pos = 0;
    PyObject *name, *value;
    int masking = PySet_GET_SIZE(masks) > 0;
    h->verbatim = 1;
    while (PyDict_Next(h->dict, &pos, &name, &value)) {
        if (!PyUnicode_CheckExact(name) || !PyUnicode_CheckExact(value) || h->count == MAX_HEADERS) {
            return -1;
        }
        Header *item = &h->items[h->count];
        Text spelled;
        if (text_of(name, &spelled) < 0) {
            return -1;
        }
        int masked = masking ? PySet_Contains(masks, name) : 0;
        if (masked < 0) {
            return -1;
        }
        item->name = spelled.s;
        item->len = spelled.n;
        item->known = -1;
        item->flags = masked ? mask_flag : 0;
        if (PyUnicode_Compare(name, TRANSACTION_ID_HEADER) == 0) {
            item->flags |= F_TRANSACTION;
        }
        Py_INCREF(name);
        Py_INCREF(value);
        item->key = name;
        item->value = value;
        h->count++;
    }
    return 0;
}

/* Every value's text, so the headers can be written without the GIL; -1 to hand over. */
static int
headers_ready(Headers *h, PyObject *masks, int mask_flag)
{
    if (h->dict != NULL && take_dict(h, masks, mask_flag) < 0) {
        return -1;
    }
    for (int i = 0; i < h->count; i++) {
        Header *item = &h->items[i];
        if (h->asgi) {
            item->text.s = PyBytes_AS_STRING(item->value);
            item->text.n = PyBytes_GET_SIZE(item->value);
        } else if (text_of(item->value, &item->text) < 0) {
            return -1;
        }
    }
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

/* Headers made ready as a JSON object, masked names' values as "*****", the transaction id
 * added last when the list has none (as the builder's setdefault does). No Python calls. */
static int
put_headers(Buf *b, const Headers *h, int mask_flag, Text transaction_id)
{
    if (PUT_LITERAL(b, "{") < 0) {
        return -1;
    }
    int has_transaction = 0;
    for (int i = 0; i < h->count; i++) {
        const Header *item = &h->items[i];
        if (i > 0 && PUT_LITERAL(b, ",") < 0) {
            return -1;
        }
        if (h->verbatim) {
            if (put_text(b, (Text){item->name, item->len}) < 0) {
                return -1;
            }
        } else {
            if (buf_reserve(b, item->len + 2) < 0) {
                return -1;
            }
            b->data[b->len++] = '"';
            for (Py_ssize_t j = 0; j < item->len; j++) {
                b->data[b->len++] = (char)name_char((unsigned char)item->name[j], h->cgi);
            }
            b->data[b->len++] = '"';
        }
        if (PUT_LITERAL(b, ":") < 0) {
            return -1;
        }
        has_transaction |= item->flags & F_TRANSACTION;
        int failed;
        if (item->flags & mask_flag) {
            failed = PUT_LITERAL(b, "\"*****\"");
        } else if (h->asgi) {
            failed = PUT_LITERAL(b, "\"") < 0
                || put_latin1_inside(b, (const unsigned char *)item->text.s, item->text.n) < 0
                || PUT_LITERAL(b, "\"") < 0;
        } else {
            failed = put_text(b, item->text);
        }
        if (failed) {
            return -1;
        }
    }
    if (transaction_id.s != NULL && !has_transaction) {
        if ((h->count > 0 && PUT_LITERAL(b, ",") < 0) || PUT_LITERAL(b, "\"x-moesif-transaction-id\":") < 0
            || put_text(b, transaction_id) < 0) {
            return -1;
        }
    }
    return PUT_LITERAL(b, "}");
}

/* ------------------------------------------------------------------ bodies */

/* A body as the event carries it: null, or JSON bytes that go in as they are. */
typedef struct {
    Text data;       /* s == NULL: null */
    PyObject *scanner;  /* borrowed: when set, data is checked at writing, without the GIL */
} Body;

/* A body into `body`: null, or bytes with no content coding that the body check lets go in as
 * they are (checked here with a Python check, at writing with a Scanner); -1 to hand over. */
static int
read_body(Body *body, PyObject *data, const Headers *h, PyObject *plain, PyObject *scanner)
{
    body->data = NULL_TEXT;
    body->scanner = NULL;
    if (data == Py_None || (PyBytes_CheckExact(data) && PyBytes_GET_SIZE(data) == 0)) {
        return 0;
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
    body->data.s = PyBytes_AS_STRING(data);
    body->data.n = PyBytes_GET_SIZE(data);
    if (scanner != NULL) {
        body->scanner = scanner;
        return 0;
    }
    PyObject *verdict = PyObject_CallOneArg(plain, data);
    if (verdict == NULL) {
        return -1;
    }
    Py_DECREF(verdict);
    return verdict == Py_True ? 0 : -1;
}

/* Whether a body read by read_body goes in as it is (the Scanner's verdict, when it is asked now). */
static int
body_plain(const Body *body)
{
    return body->scanner == NULL
        || json_scan->plain(body->scanner, (const unsigned char *)body->data.s, body->data.n);
}

/* A body and its transfer encoding, after `"body":`. */
static int
put_body(Buf *b, const Body *body, const char *between, Py_ssize_t between_len)
{
    if (body->data.s == NULL) {
        if (PUT_LITERAL(b, "null") < 0 || put(b, between, between_len) < 0) {
            return -1;
        }
        return PUT_LITERAL(b, "null");
    }
    if (put(b, body->data.s, body->data.n) < 0 || put(b, between, between_len) < 0) {
        return -1;
    }
    return PUT_LITERAL(b, "\"json\"");
}

/* ------------------------------------------------------------------ ids and the client address */

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

/* None, or a str that is not empty, as the builder's _str_or_none leaves it: null when empty;
 * -1 for anything else. */
static int
text_or_none(PyObject *value, Text *t)
{
    if (value == Py_None || (PyUnicode_CheckExact(value) && PyUnicode_GET_LENGTH(value) == 0)) {
        *t = NULL_TEXT;
        return 0;
    }
    return PyUnicode_CheckExact(value) ? text_of(value, t) : -1;
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

/* ------------------------------------------------------------------ one event: read, then written */

/* Everything an event is written from, read from its record under the GIL: what it holds
 * stays referenced until event_clear, so write_event reads it with the GIL released. */
typedef struct {
    PyObject *attrs[A_COUNT];
    Headers request;
    Headers response;
    PyObject *identity;
    PyObject *ip_object;
    PyObject *api_version_object;
    double request_time, response_time;
    long long status, weight;
    Text full_url;              /* the URI as the record holds it, or null: then the pieces */
    Text uri[5];                /* scheme, host, root path, path, query string */
    Text method, api_version, ip, user, company, session_token, route, direction, blocked_by, transaction_id;
    Body request_body, response_body;
} Event;

static void
event_init(Event *e)
{
    memset(e->attrs, 0, sizeof(e->attrs));
    e->request.count = e->response.count = 0;
    e->request.cgi = e->response.cgi = 0;
    e->request.asgi = e->response.asgi = 0;
    e->request.verbatim = e->response.verbatim = 0;
    e->request.dict = e->response.dict = NULL;
    e->identity = e->ip_object = e->api_version_object = NULL;
}

static void
event_clear(Event *e)
{
    for (int i = 0; i < A_COUNT; i++) {
        Py_CLEAR(e->attrs[i]);
    }
    headers_clear(&e->request);
    headers_clear(&e->response);
    Py_CLEAR(e->identity);
    Py_CLEAR(e->ip_object);
    Py_CLEAR(e->api_version_object);
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

/* The URI's texts: the full URL the record holds, else the pieces the builder assembles; -1 to
 * hand over. */
static int
read_uri(Event *e)
{
    PyObject **a = e->attrs;
    PyObject *full = a[A_FULL_URL];
    e->full_url = NULL_TEXT;
    if (full != Py_None) {
        if (!PyUnicode_CheckExact(full)) {
            return -1;
        }
        if (PyUnicode_GET_LENGTH(full) > 0) {
            return text_of(full, &e->full_url);
        }
    }
    PyObject *pieces[5] = {a[A_SCHEME], a[A_HOST], a[A_ROOT_PATH], a[A_PATH], a[A_QUERY_STRING]};
    for (int i = 0; i < 5; i++) {
        if (!PyUnicode_CheckExact(pieces[i])) {
            return -1;
        }
        /* Non-ASCII paths are percent-encoded by the Python path; hosts and schemes go as they are. */
        if (i >= 2 && !PyUnicode_IS_ASCII(pieces[i])) {
            return -1;
        }
        if (text_of(pieces[i], &e->uri[i]) < 0) {
            return -1;
        }
    }
    return 0;
}

/* The record into `e`: every check, every call into Python (normalisation, identifier, client_ip,
 * a body check that is not a Scanner); -1 to hand the record to the Python builder. */
static int
read_event(Writer *self, PyObject *record, Event *e)
{
    PyObject **a = e->attrs;
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
    e->status = int_in(a[A_STATUS], 0, 999, &ok);
    e->weight = int_in(a[A_WEIGHT], 1, PY_LLONG_MAX, &ok);
    PyObject *user = a[A_USER_ID], *company = a[A_COMPANY_ID];
    if (!ok || !usable_id(user) || !usable_id(company)) {
        return -1;
    }
    if (text_or_none(a[A_SESSION_TOKEN], &e->session_token) < 0 || text_or_none(a[A_BLOCKED_BY], &e->blocked_by) < 0
        || text_or_none(a[A_TRANSACTION_ID], &e->transaction_id) < 0 || text_or_none(a[A_ROUTE], &e->route) < 0) {
        return -1;
    }
    PyObject *transaction_id = e->transaction_id.s == NULL ? NULL : a[A_TRANSACTION_ID];

    if (read_headers(self, a[A_REQUEST_HEADERS], a[A_REQUEST_HEADER_STYLE], &e->request) < 0
        || read_headers(self, a[A_RESPONSE_HEADERS], a[A_RESPONSE_HEADER_STYLE], &e->response) < 0) {
        return -1;
    }
    if (transaction_id != NULL) {
        /* The builder's setdefault, on a dict the identifier and client_ip read (never in the
         * direct reading: see Writer_init). */
        PyObject *dicts[2] = {e->request.dict, e->response.dict};
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
        e->identity = ask(self, &e->request, F_IDENTITY, self->identity_names, 1, 0, self->identify, NULL, nobody);
        if (e->identity == NULL || !PyTuple_CheckExact(e->identity) || PyTuple_GET_SIZE(e->identity) != 2) {
            return -1;
        }
        PyObject *found_user = PyTuple_GET_ITEM(e->identity, 0);
        PyObject *found_company = PyTuple_GET_ITEM(e->identity, 1);
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
    if (!PyUnicode_CheckExact(peer) && peer != Py_None) {
        return -1;
    }
    PyObject *own = peer == Py_None || PyUnicode_GET_LENGTH(peer) == 0 ? Py_None : peer;
    /* client_ip reads the masked dict: with a proxy header masked, the Python path decides. */
    e->ip_object = ask(self, &e->request, F_PROXY, self->ip_names, 0, self->proxy_masked, self->client_ip, peer, own);
    if (e->ip_object == NULL || text_or_null(e->ip_object, &e->ip) < 0) {
        return -1;
    }
    Py_INCREF(self->api_version);
    e->api_version_object = self->api_version;

    if (time_of(a[A_REQUEST_TIME], &e->request_time) < 0 || time_of(a[A_RESPONSE_TIME], &e->response_time) < 0
        || read_uri(e) < 0 || text_of(a[A_METHOD], &e->method) < 0 || text_of(direction, &e->direction) < 0
        || text_or_null(e->api_version_object, &e->api_version) < 0 || text_or_null(user, &e->user) < 0
        || text_or_null(company, &e->company) < 0) {
        return -1;
    }
    if (headers_ready(&e->request, self->request_masks, F_MASK_REQUEST) < 0
        || headers_ready(&e->response, self->response_masks, F_MASK_RESPONSE) < 0) {
        return -1;
    }
    if (read_body(&e->request_body, a[A_REQUEST_BODY], &e->request, self->request_plain, self->request_scanner) < 0
        || read_body(&e->response_body, a[A_RESPONSE_BODY], &e->response, self->response_plain, self->response_scanner) < 0) {
        return -1;
    }
    return 0;
}

/* Whether an event read by read_event can be written: its bodies pass the checks left to now. */
static int
event_plain(const Event *e)
{
    return body_plain(&e->request_body) && body_plain(&e->response_body);
}

/* An event read by read_event as JSON into `b`, in the builder's key order; -1 when memory runs
 * out. No Python calls: a batch writes its events with the GIL released. */
static int
write_event(const Event *e, Buf *b, TimeCache *times)
{
    if (PUT_LITERAL(b, "{\"request\":{\"time\":") < 0 || put_time(b, e->request_time, times) < 0
        || PUT_LITERAL(b, ",\"uri\":") < 0) {
        return -1;
    }
    if (e->full_url.s != NULL) {
        if (put_text(b, e->full_url) < 0) {
            return -1;
        }
    } else {
        /* Each piece escaped on its own is the whole escaped: escapes never span characters. */
        const Text *u = e->uri;
        if (PUT_LITERAL(b, "\"") < 0 || put_escaped(b, (const unsigned char *)u[0].s, u[0].n) < 0
            || PUT_LITERAL(b, "://") < 0 || put_escaped(b, (const unsigned char *)u[1].s, u[1].n) < 0
            || put_escaped(b, (const unsigned char *)u[2].s, u[2].n) < 0
            || put_escaped(b, (const unsigned char *)u[3].s, u[3].n) < 0) {
            return -1;
        }
        if (u[4].n > 0 && (PUT_LITERAL(b, "?") < 0 || put_escaped(b, (const unsigned char *)u[4].s, u[4].n) < 0)) {
            return -1;
        }
        if (PUT_LITERAL(b, "\"") < 0) {
            return -1;
        }
    }
    if (PUT_LITERAL(b, ",\"verb\":") < 0 || put_text(b, e->method) < 0
        || PUT_LITERAL(b, ",\"api_version\":") < 0 || put_text_or_null(b, e->api_version) < 0
        || PUT_LITERAL(b, ",\"ip_address\":") < 0 || put_text_or_null(b, e->ip) < 0
        || PUT_LITERAL(b, ",\"headers\":") < 0 || put_headers(b, &e->request, F_MASK_REQUEST, e->transaction_id) < 0) {
        return -1;
    }
    static const char REQUEST_BETWEEN[] = ",\"transfer_encoding\":";
    if (PUT_LITERAL(b, ",\"body\":") < 0 || put_body(b, &e->request_body, REQUEST_BETWEEN, sizeof(REQUEST_BETWEEN) - 1) < 0) {
        return -1;
    }
    if (PUT_LITERAL(b, "},\"response\":{\"time\":") < 0 || put_time(b, e->response_time, times) < 0
        || PUT_LITERAL(b, ",\"status\":") < 0 || put_int(b, (unsigned long long)e->status) < 0
        || PUT_LITERAL(b, ",\"headers\":") < 0 || put_headers(b, &e->response, F_MASK_RESPONSE, e->transaction_id) < 0) {
        return -1;
    }
    static const char RESPONSE_BETWEEN[] = ",\"ip_address\":null,\"transfer_encoding\":";
    if (PUT_LITERAL(b, ",\"body\":") < 0
        || put_body(b, &e->response_body, RESPONSE_BETWEEN, sizeof(RESPONSE_BETWEEN) - 1) < 0) {
        return -1;
    }
    if (PUT_LITERAL(b, "},\"user_id\":") < 0 || put_text_or_null(b, e->user) < 0
        || PUT_LITERAL(b, ",\"company_id\":") < 0 || put_text_or_null(b, e->company) < 0
        || PUT_LITERAL(b, ",\"session_token\":") < 0 || put_text_or_null(b, e->session_token) < 0
        || PUT_LITERAL(b, ",\"metadata\":") < 0) {
        return -1;
    }
    if (e->route.s == NULL) {
        if (PUT_LITERAL(b, "null") < 0) {
            return -1;
        }
    } else if (PUT_LITERAL(b, "{\"_moesif\":{\"route\":") < 0 || put_text(b, e->route) < 0 || PUT_LITERAL(b, "}}") < 0) {
        return -1;
    }
    if (PUT_LITERAL(b, ",\"tags\":null,\"direction\":") < 0 || put_text(b, e->direction) < 0
        || PUT_LITERAL(b, ",\"weight\":") < 0 || put_int(b, (unsigned long long)e->weight) < 0
        || PUT_LITERAL(b, ",\"blocked_by\":") < 0 || put_text_or_null(b, e->blocked_by) < 0
        || PUT_LITERAL(b, ",\"transaction_id\":") < 0 || put_text_or_null(b, e->transaction_id) < 0
        || PUT_LITERAL(b, "}") < 0) {
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ the methods */

static PyObject *
Writer_event(Writer *self, PyObject *record)
{
    Buf b;
    Event e;
    TimeCache times = {-1, {0}};
    buf_init(&b);
    event_init(&e);
    PyObject *result = NULL;
    if (self->normalize != NULL && read_event(self, record, &e) == 0 && event_plain(&e)
        && write_event(&e, &b, &times) == 0) {
        result = PyBytes_FromStringAndSize(b.data, b.len);
    }
    event_clear(&e);
    buf_free(&b);
    if (result == NULL) {
        PyErr_Clear(); /* whatever went wrong, the Python builder decides */
        Py_RETURN_NONE;
    }
    return result;
}

/* Where a batch's events were written: chunks of events joined by ",", each within the limit. */
typedef struct {
    Py_ssize_t start, end;
    Py_ssize_t first;  /* the record of its first event */
    Py_ssize_t count;
} Chunk;

/* The events written into `b` with the GIL released, joined by "," and cut into chunks whose
 * bracketed size, counted as the sender counts it (2 + each event + 1), stays within `limit`
 * (a single event over it goes alone). An event whose check fails, or for which memory runs out,
 * is marked in `written` (0) for the Python builder, and ends the chunk before it, so the events
 * keep their order. The number of chunks. */
static Py_ssize_t
write_batch(const Event *events, char *written, Py_ssize_t n, Py_ssize_t limit, Buf *b, Chunk *chunks)
{
    TimeCache times = {-1, {0}};
    Py_ssize_t chunk_count = 0;
    Py_ssize_t size = 0; /* the open chunk's counted size; 0: no chunk open */
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t before = b->len;
        if (written[i] && !event_plain(&events[i])) {
            written[i] = 0;
        }
        if (written[i] && size > 0 && PUT_LITERAL(b, ",") < 0) {
            written[i] = 0;
        }
        Py_ssize_t start = b->len;
        if (written[i] && write_event(&events[i], b, &times) < 0) {
            b->len = before;
            written[i] = 0;
        }
        if (!written[i]) {
            size = 0; /* the Python builder's event comes next */
            continue;
        }
        Py_ssize_t length = b->len - start;
        if (size > 0 && size + length + 1 > limit) {
            /* Over the limit: the open chunk ends before this event's comma, which opens the next. */
            chunks[chunk_count - 1].end = before;
            size = 0;
        }
        if (size == 0) {
            chunks[chunk_count].start = start;
            chunks[chunk_count].first = i;
            chunks[chunk_count].count = 0;
            chunk_count++;
            size = 2;
        }
        chunks[chunk_count - 1].end = b->len;
        chunks[chunk_count - 1].count++;
        size += length + 1;
    }
    return chunk_count;
}

/* events(records, limit): [(chunk, count) or a handed back record, ...]; see Writer_methods. */
static PyObject *
Writer_events(Writer *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "events(records: list, limit: int)");
        return NULL;
    }
    Py_ssize_t limit = PyLong_AsSsize_t(args[1]);
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    /* A list of our own: the caller's may change while the GIL is released. */
    PyObject *records = PyList_GetSlice(args[0], 0, PyList_GET_SIZE(args[0]));
    if (records == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(records);
    Event *events = n ? PyMem_RawMalloc((size_t)n * sizeof(Event)) : NULL;
    char *written = n ? PyMem_RawMalloc((size_t)n) : NULL;
    Chunk *chunks = n ? PyMem_RawMalloc((size_t)n * sizeof(Chunk)) : NULL;
    PyObject *pieces = PyList_New(0), *result = NULL;
    if (n && (events == NULL || written == NULL || chunks == NULL)) {
        PyMem_RawFree(events);
        events = NULL;
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        event_init(&events[i]);
    }
    if (pieces == NULL) {
        goto done;
    }
    Py_ssize_t readable = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        written[i] = self->normalize != NULL && read_event(self, PyList_GET_ITEM(records, i), &events[i]) == 0;
        if (!written[i]) {
            PyErr_Clear(); /* the Python builder decides */
        }
        readable += written[i];
    }
    Buf b;
    buf_init(&b);
    Py_ssize_t chunk_count = 0;
    if (readable > 0) {
        Py_BEGIN_ALLOW_THREADS
        chunk_count = write_batch(events, written, n, limit, &b, chunks);
        Py_END_ALLOW_THREADS
    }
    /* The pieces and the handed back records, in the records' order. */
    int failed = 0;
    Py_ssize_t c = 0;
    for (Py_ssize_t i = 0; i < n && !failed; i++) {
        if (c < chunk_count && chunks[c].first == i) {
            PyObject *data = PyBytes_FromStringAndSize(b.data + chunks[c].start, chunks[c].end - chunks[c].start);
            PyObject *piece = data == NULL ? NULL : Py_BuildValue("(Nn)", data, chunks[c].count);
            failed = piece == NULL || PyList_Append(pieces, piece) < 0;
            Py_XDECREF(piece);
            c++;
        } else if (!written[i]) {
            failed = PyList_Append(pieces, PyList_GET_ITEM(records, i)) < 0;
        }
    }
    buf_free(&b);
    if (!failed) {
        Py_INCREF(pieces);
        result = pieces;
    }
done:
    for (Py_ssize_t i = 0; events != NULL && i < n; i++) {
        event_clear(&events[i]);
    }
    PyMem_RawFree(events);
    PyMem_RawFree(written);
    PyMem_RawFree(chunks);
    Py_XDECREF(pieces);
    Py_DECREF(records);
    return result;
}

static PyMethodDef Writer_methods[] = {
    {"event", (PyCFunction)Writer_event, METH_O,
     "The event of a RawExchange as JSON bytes, or None: then the Python builder must build it."},
    {"events", (PyCFunction)(void (*)(void))Writer_events, METH_FASTCALL,
     "events(records, limit, /)\n--\n\nThe events of a list of RawExchange, written with the GIL released, in "
     "their order: (events joined by ',', how many) for those written, the record itself for each the Python "
     "builder must build. A piece, bracketed, is at most limit bytes (counting 2 and each event plus 1) unless "
     "it is one event."},
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
 * any change the Python side must match, so a build of older sources is refused, not called.
 * 2: Writer.events. */
#define API 2

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
