/* One pass over a JSON body that answers the sender's question: "may these bytes go into the
 * event as they are?" -- the optional native half of moesif_core.json_scan (see its docstring).
 *
 * A Scanner holds one set of lower-case ASCII field names. scanner.plain(data) returns True only
 * when data is, in a single left-to-right pass with no allocation (a bytes object; any other
 * buffer is copied into one first):
 *   - optional JSON whitespace, then one object or array, then optional whitespace, nothing else;
 *   - strict RFC 8259 syntax: no trailing commas, no leading zeros, no NaN, no control characters
 *     in strings, escapes from the list only, \u escapes of surrogates only as a valid pair;
 *   - strict UTF-8 (no overlong forms, no encoded surrogates, nothing past U+10FFFF), the rules
 *     of Python's bytes.decode("utf-8");
 *   - nested at most MAX_DEPTH containers deep;
 *   - free of numbers that could overflow a double: fewer than MAX_EXPONENT_DIGITS exponent digits
 *     and integer digits plus exponent at most MAX_MAGNITUDE;
 *   - free of object keys that are, ASCII case-insensitively, one of the names, or that are spelled
 *     with an escape or the KELVIN SIGN (the one non-ASCII character whose str.lower() is ASCII),
 *     which the pass cannot compare without decoding.
 * Everything else answers False, and the caller takes the exact path (parse, mask, re-encode). So
 * False is always safe; True must never be wrong. The tests hold it to both against orjson and
 * the pure-Python path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "_json_scan.h"
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 255
#define MAX_EXPONENT_DIGITS 3
#define MAX_MAGNITUDE 300 /* a double holds up to ~1.8e308 */
#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

typedef struct {
    uint64_t hash; /* 0: empty slot */
    const unsigned char *name;
    Py_ssize_t length;
} Slot;

typedef struct {
    PyObject_HEAD
    PyObject *names; /* tuple of bytes: keeps every Slot.name alive */
    Slot *slots;
    Py_ssize_t mask; /* slot count - 1, a power of two minus one */
    Py_ssize_t longest;
    uint64_t lengths[256]; /* by first byte: bit n set when a name starting with it is n bytes long (63: 63 or more) */
} Scanner;

/* Byte classes for the string fast path: 1 = ends the plain run (quote, backslash, control, non-ASCII). */
static unsigned char string_stop[256];

/* The first byte from p that ends a plain string run (see string_stop), or end: the NUL that
 * follows every scanned text (see scan_text) is such a byte, so the loop needs no bound check. */
static inline const unsigned char *plain_run(const unsigned char *p) {
    while (!string_stop[*p]) {
        p++;
    }
    return p;
}

static inline unsigned char lower_ascii(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }

static inline uint64_t name_hash(uint64_t h) { return h ? h : 1; /* 0 marks an empty slot */ }

static int in_table(const Scanner *self, const unsigned char *key, Py_ssize_t length) {
    uint64_t hash = FNV_OFFSET;
    for (Py_ssize_t k = 0; k < length; k++) {
        hash = (hash ^ lower_ascii(key[k])) * FNV_PRIME;
    }
    hash = name_hash(hash);
    for (Py_ssize_t i = (Py_ssize_t)(hash & (uint64_t)self->mask);; i = (i + 1) & self->mask) {
        const Slot *slot = &self->slots[i];
        if (slot->hash == 0) {
            return 0;
        }
        if (slot->hash == hash && slot->length == length) {
            Py_ssize_t k = 0;
            while (k < length && lower_ascii(key[k]) == slot->name[k]) {
                k++;
            }
            if (k == length) {
                return 1;
            }
        }
    }
}

/* Past JSON whitespace; stops at the NUL after the text at the latest (see scan_text). */
static inline const unsigned char *skip_ws(const unsigned char *p) {
    while (*p <= ' ' && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
    }
    return p;
}

static inline int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static inline int is_listed(const Scanner *self, const unsigned char *key, Py_ssize_t length) {
    if (length == 0 || length > self->longest || !(self->lengths[lower_ascii(key[0])] & (1ULL << (length < 63 ? length : 63)))) {
        return 0; /* no name has this first letter and length: most keys end here */
    }
    return in_table(self, key, length);
}

/* The code unit of "\uXXXX" whose 'u' is at p (4 hex digits after it), or -1. */
static long escape_unit(const unsigned char *p, const unsigned char *end) {
    if (end - p < 5) {
        return -1;
    }
    long unit = 0;
    for (int i = 1; i <= 4; i++) {
        int nibble = hex_value(p[i]);
        if (nibble < 0) {
            return -1;
        }
        unit = unit * 16 + nibble;
    }
    return unit;
}

/* Length of the valid UTF-8 sequence of a non-ASCII lead byte at p, or 0 when it is invalid. */
static Py_ssize_t utf8_length(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0];
    Py_ssize_t left = end - p;
    if (c >= 0xC2 && c <= 0xDF) {
        return (left >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0) return (p[1] >= 0xA0 && p[1] <= 0xBF) ? 3 : 0;
        if (c == 0xED) return (p[1] >= 0x80 && p[1] <= 0x9F) ? 3 : 0; /* no encoded surrogates */
        return ((p[1] & 0xC0) == 0x80) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0) return (p[1] >= 0x90 && p[1] <= 0xBF) ? 4 : 0;
        if (c == 0xF4) return (p[1] >= 0x80 && p[1] <= 0x8F) ? 4 : 0; /* nothing past U+10FFFF */
        return ((p[1] & 0xC0) == 0x80) ? 4 : 0;
    }
    return 0;
}

/* A string whose opening quote is at *pp. On success *pp is past the closing quote and 1 is
 * returned. For a key (as_key), returns 2 when the key is one of the names, or cannot be compared
 * (an escape, the KELVIN SIGN). 0: not valid. */
static int scan_string(const Scanner *self, const unsigned char **pp, const unsigned char *end, int as_key) {
    const unsigned char *p = *pp + 1;
    const unsigned char *start = p;
    int plain_key = 1; /* the key is the bytes between the quotes, ASCII only */
    for (;;) {
        p = plain_run(p);
        if (p >= end) {
            return 0;
        }
        unsigned char c = *p;
        if (c == '"') {
            break;
        }
        if (c < 0x20) {
            return 0;
        }
        if (c == '\\') {
            if (as_key) {
                return 2; /* a name may hide behind an escape */
            }
            if (p + 1 >= end) {
                return 0;
            }
            unsigned char e = p[1];
            if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                p += 2;
                continue;
            }
            if (e != 'u') {
                return 0;
            }
            long unit = escape_unit(p + 1, end);
            if (unit < 0) {
                return 0;
            }
            p += 6;
            if (unit >= 0xDC00 && unit <= 0xDFFF) {
                return 0; /* a low surrogate alone */
            }
            if (unit >= 0xD800 && unit <= 0xDBFF) {
                if (end - p < 2 || p[0] != '\\' || p[1] != 'u') {
                    return 0;
                }
                long low = escape_unit(p + 1, end);
                if (low < 0xDC00 || low > 0xDFFF) {
                    return 0;
                }
                p += 6;
            }
            continue;
        }
        /* non-ASCII */
        Py_ssize_t n = utf8_length(p, end);
        if (n == 0) {
            return 0;
        }
        if (as_key && n == 3 && p[0] == 0xE2 && p[1] == 0x84 && p[2] == 0xAA) {
            return 2; /* KELVIN SIGN: "\u212a".lower() == "k" */
        }
        plain_key = 0; /* any other non-ASCII character keeps the lowered key non-ASCII: no name matches */
        p += n;
    }
    *pp = p + 1;
    if (as_key && plain_key && is_listed(self, start, p - start)) {
        return 2;
    }
    return 1;
}

/* A number starting at *pp; 1 and *pp past it when valid and within a double's range, else 0. */
static int scan_number(const unsigned char **pp, const unsigned char *end) {
    const unsigned char *p = *pp;
    Py_ssize_t digits = 0;
    if (p < end && *p == '-') {
        p++;
    }
    if (p >= end) {
        return 0;
    }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
            digits++;
        }
    } else {
        return 0;
    }
    if (p < end && *p == '.') {
        p++;
        const unsigned char *first = p;
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
        if (p == first) {
            return 0;
        }
    }
    long exponent = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int negative = 0;
        if (p < end && (*p == '+' || *p == '-')) {
            negative = *p == '-';
            p++;
        }
        const unsigned char *first = p;
        while (p < end && *p >= '0' && *p <= '9') {
            if (p - first >= MAX_EXPONENT_DIGITS - 1) {
                return 0; /* three digits or more: the exact path decides */
            }
            exponent = exponent * 10 + (*p - '0');
            p++;
        }
        if (p == first) {
            return 0;
        }
        if (negative) {
            exponent = 0;
        }
    }
    if (digits + exponent > MAX_MAGNITUDE) {
        return 0;
    }
    *pp = p;
    return 1;
}

static int literal(const unsigned char **pp, const unsigned char *end, const char *word, Py_ssize_t length) {
    if (end - *pp < length || memcmp(*pp, word, (size_t)length) != 0) {
        return 0;
    }
    *pp += length;
    return 1;
}

/* 1: the whole text may be sent as it is; 0: take the exact path.
 * end[0] must be readable and NUL, as it is after the text of every bytes object: the hot loops
 * (plain_run, skip_ws) stop there instead of testing the bound at every byte. */
static int scan_text(const Scanner *self, const unsigned char *p, const unsigned char *end) {
    unsigned char stack[MAX_DEPTH]; /* '{' or '[' per open container */
    int depth = 0;
    p = skip_ws(p);
    if (p >= end || (*p != '{' && *p != '[')) {
        return 0;
    }
    for (;;) {
        /* p is at a value */
        if (p >= end) {
            return 0;
        }
        switch (*p) {
        case '{':
        case '[': {
            if (depth >= MAX_DEPTH) {
                return 0;
            }
            unsigned char open = *p;
            stack[depth++] = open;
            p = skip_ws(p + 1);
            if (p >= end) {
                return 0;
            }
            if ((open == '{' && *p == '}') || (open == '[' && *p == ']')) {
                depth--;
                p++;
                goto after_value;
            }
            if (open == '{') {
                goto object_key;
            }
            continue; /* the array's first value */
        }
        case '"': {
            const unsigned char *close = plain_run(p + 1);
            if (close < end && *close == '"') { /* the usual string: no escape, ASCII only */
                p = close + 1;
            } else if (scan_string(self, &p, end, 0) != 1) {
                return 0;
            }
            goto after_value;
        }
        case 't':
            if (!literal(&p, end, "true", 4)) return 0;
            goto after_value;
        case 'f':
            if (!literal(&p, end, "false", 5)) return 0;
            goto after_value;
        case 'n':
            if (!literal(&p, end, "null", 4)) return 0;
            goto after_value;
        default:
            if (!scan_number(&p, end)) {
                return 0;
            }
            goto after_value;
        }

    object_key:
        /* p is where a key must start */
        if (p >= end || *p != '"') {
            return 0;
        }
        {
            const unsigned char *close = plain_run(p + 1);
            if (close < end && *close == '"') { /* the usual key: no escape, ASCII only */
                if (is_listed(self, p + 1, close - (p + 1))) {
                    return 0;
                }
                p = close + 1;
            } else if (scan_string(self, &p, end, 1) != 1) {
                return 0;
            }
        }
        p = skip_ws(p);
        if (p >= end || *p != ':') {
            return 0;
        }
        p = skip_ws(p + 1);
        continue;

    after_value:
        for (;;) {
            p = skip_ws(p);
            if (depth == 0) {
                return p == end;
            }
            if (p >= end) {
                return 0;
            }
            unsigned char open = stack[depth - 1];
            if (*p == ',') {
                p = skip_ws(p + 1);
                if (open == '{') {
                    goto object_key;
                }
                break; /* the array's next value */
            }
            if ((open == '{' && *p == '}') || (open == '[' && *p == ']')) {
                depth--;
                p++;
                continue;
            }
            return 0;
        }
    }
}

static PyObject *Scanner_plain(Scanner *self, PyObject *data) {
    Py_buffer view;
    if (PyBytes_CheckExact(data)) {
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(data);
        return PyBool_FromLong(scan_text(self, p, p + PyBytes_GET_SIZE(data)));
    }
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    /* Any other buffer: a bytes copy, for the NUL after the text that scan_text relies on. */
    PyObject *copy = PyBytes_FromStringAndSize((const char *)view.buf, view.len);
    PyBuffer_Release(&view);
    if (copy == NULL) {
        return NULL;
    }
    PyObject *result = Scanner_plain(self, copy);
    Py_DECREF(copy);
    return result;
}

/* Scanner.plain for the other native parts (see _json_scan.h): no Python object is touched. */
static int scan_plain(PyObject *scanner, const unsigned char *data, Py_ssize_t size) {
    return scan_text((const Scanner *)scanner, data, data + size);
}

static JsonScanCAPI c_api = {
    .version = JSON_SCAN_CAPI_VERSION,
    .scanner_type = NULL, /* &ScannerType, set at module init */
    .plain_method = (PyCFunction)Scanner_plain,
    .plain = scan_plain,
};

static void Scanner_dealloc(Scanner *self) {
    PyMem_Free(self->slots);
    Py_XDECREF(self->names);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Scanner_init(Scanner *self, PyObject *args, PyObject *kwargs) {
    PyObject *names;
    static char *keywords[] = {"names", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Scanner", keywords, &names)) {
        return -1;
    }
    PyObject *tuple = PySequence_Tuple(names);
    if (tuple == NULL) {
        return -1;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(tuple);
    Py_ssize_t size = 8;
    while (size < 2 * count) {
        size *= 2;
    }
    Slot *slots = count ? PyMem_Calloc((size_t)size, sizeof(Slot)) : NULL;
    if (count && slots == NULL) {
        Py_DECREF(tuple);
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t longest = 0;
    uint64_t lengths[256] = {0};
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *name = PyTuple_GET_ITEM(tuple, i);
        if (!PyBytes_CheckExact(name)) {
            PyErr_SetString(PyExc_TypeError, "Scanner names must be bytes");
            goto fail;
        }
        const unsigned char *text = (const unsigned char *)PyBytes_AS_STRING(name);
        Py_ssize_t length = PyBytes_GET_SIZE(name);
        uint64_t hash = FNV_OFFSET;
        for (Py_ssize_t k = 0; k < length; k++) {
            unsigned char c = text[k];
            if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || lower_ascii(c) != c) {
                PyErr_SetString(PyExc_ValueError, "Scanner names must be lower-case printable ASCII without quotes or backslashes");
                goto fail;
            }
            hash = (hash ^ c) * FNV_PRIME;
        }
        if (length == 0) {
            PyErr_SetString(PyExc_ValueError, "Scanner names must not be empty");
            goto fail;
        }
        hash = name_hash(hash);
        Py_ssize_t j = (Py_ssize_t)(hash & (uint64_t)(size - 1));
        while (slots[j].hash != 0) {
            j = (j + 1) & (size - 1);
        }
        slots[j].hash = hash;
        slots[j].name = text;
        slots[j].length = length;
        if (length > longest) {
            longest = length;
        }
        lengths[text[0]] |= 1ULL << (length < 63 ? length : 63);
    }
    PyMem_Free(self->slots);
    Py_XSETREF(self->names, tuple);
    self->slots = slots;
    self->mask = size - 1;
    self->longest = longest;
    memcpy(self->lengths, lengths, sizeof lengths);
    return 0;
fail:
    PyMem_Free(slots);
    Py_DECREF(tuple);
    return -1;
}

static PyMethodDef Scanner_methods[] = {
    {"plain", (PyCFunction)Scanner_plain, METH_O,
     "plain(data, /)\n--\n\nTrue when data may go into an event as it is: valid JSON object or array, valid UTF-8, no number "
     "that may overflow a double, no key that is one of the names (or is spelled with an escape)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "moesif_core._json_scan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Scanner(names)\n--\n\nThe one-pass check of JSON bodies for one set of lower-case ASCII field names.",
    .tp_methods = Scanner_methods,
    .tp_init = (initproc)Scanner_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "moesif_core._json_scan",
    .m_doc = "The native one-pass JSON body check of moesif_core.json_scan.",
    .m_size = -1,
};

/* The interface this file gives its Python module (moesif_core.native.native_part): raised with
 * any change the Python side must match, so a build of older sources is refused, not called. */
#define API 1

PyMODINIT_FUNC PyInit__json_scan(void) {
    for (int c = 0; c < 256; c++) {
        string_stop[c] = (unsigned char)(c == '"' || c == '\\' || c < 0x20 || c >= 0x80);
    }
    if (PyType_Ready(&ScannerType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "API", API) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    c_api.scanner_type = &ScannerType;
    PyObject *capsule = PyCapsule_New(&c_api, JSON_SCAN_CAPSULE, NULL);
    if (capsule == NULL || PyModule_AddObject(m, "_C_API", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
