/* Header lists -> {lower-case name: value}, the common case only -- the optional native half of
 * moesif_core.headers.normalize_headers (see its docstring for the shapes).
 *
 * normalize(headers, style) returns a new dict, or None when anything is unusual, and the
 * caller then takes the Python path, which handles everything. So None is always safe, and a
 * dict must be exactly what the Python path gives:
 *   "environ": a dict of str keys; HTTP_* keys (minus the prefix) and CONTENT_TYPE/CONTENT_LENGTH
 *       become names, "_" -> "-", lower-cased; other keys are skipped; a later key that gives the
 *       same name replaces the value in place. Every header value must be a str.
 *   "asgi": a list or tuple of (bytes, bytes); names and values decoded as latin-1, names lower-cased.
 *   "pairs": a list or tuple of (str, str); names lower-cased.
 *   In "asgi" and "pairs" a repeated name keeps its first place and its values are joined with ", ".
 * None for: another style ("wsgi") or a style that is not a str, a name that is not ASCII (Python lower-cases Unicode), a key
 * or value of another type (subclasses included), an item that is not a 2-tuple or 2-list.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* A new str of the ASCII bytes s[0:n] lower-cased, "_" -> "-" when cgi; NULL with an error set. */
static PyObject *
ascii_name(const char *s, Py_ssize_t n, int cgi)
{
    PyObject *name = PyUnicode_New(n, 127);
    if (name == NULL) {
        return NULL;
    }
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(name);
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c + ('a' - 'A'));
        } else if (cgi && c == '_') {
            c = '-';
        }
        out[i] = c;
    }
    return name;
}

static int
is_ascii(const char *s, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] >= 0x80) {
            return 0;
        }
    }
    return 1;
}

/* The ASCII text of a str key, or NULL (not an exact str, or not ASCII); no error is left set. */
static const char *
ascii_text(PyObject *key, Py_ssize_t *n)
{
    if (!PyUnicode_CheckExact(key)) {
        return NULL;
    }
    const char *s = PyUnicode_AsUTF8AndSize(key, n);
    if (s == NULL) {
        PyErr_Clear(); /* lone surrogates: the Python path decides */
        return NULL;
    }
    return is_ascii(s, *n) ? s : NULL;
}

#define UNUSUAL 1 /* return None: the Python path takes over */
#define FAILED -1 /* an error is set */

static int
environ_header(PyObject *out, PyObject *key, PyObject *value)
{
    Py_ssize_t n;
    const char *s = ascii_text(key, &n);
    if (s == NULL) {
        return UNUSUAL;
    }
    int cgi_header = n >= 5 && memcmp(s, "HTTP_", 5) == 0;
    if (!cgi_header && !((n == 12 && memcmp(s, "CONTENT_TYPE", 12) == 0) || (n == 14 && memcmp(s, "CONTENT_LENGTH", 14) == 0))) {
        return 0;
    }
    if (cgi_header) {
        s += 5;
        n -= 5;
    }
    if (n == 0) {
        return 0; /* "HTTP_" alone names nothing */
    }
    if (!PyUnicode_CheckExact(value)) {
        return UNUSUAL;
    }
    PyObject *name = ascii_name(s, n, 1);
    if (name == NULL) {
        return FAILED;
    }
    int failed = PyDict_SetItem(out, name, value) < 0;
    Py_DECREF(name);
    return failed ? FAILED : 0;
}

static int
environ_headers(PyObject *environ, PyObject *out)
{
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(environ, &pos, &key, &value)) {
        /* Held while used: nothing here runs Python code, but a finalizer run by an allocation
         * could change the environ, and PyDict_Next only lends them. */
        Py_INCREF(key);
        Py_INCREF(value);
        int result = environ_header(out, key, value);
        Py_DECREF(key);
        Py_DECREF(value);
        if (result != 0) {
            return result;
        }
    }
    return 0;
}

/* out[name] = value, or "previous, value" when the name is there already; steals name and value. */
static int
add_joined(PyObject *out, PyObject *name, PyObject *value)
{
    PyObject *previous = PyDict_GetItemWithError(out, name);
    if (previous == NULL && PyErr_Occurred()) {
        Py_DECREF(name);
        Py_DECREF(value);
        return FAILED;
    }
    if (previous != NULL) {
        PyObject *joined = PyUnicode_FromFormat("%U, %U", previous, value);
        Py_DECREF(value);
        if (joined == NULL) {
            Py_DECREF(name);
            return FAILED;
        }
        value = joined;
    }
    int failed = PyDict_SetItem(out, name, value) < 0;
    Py_DECREF(name);
    Py_DECREF(value);
    return failed ? FAILED : 0;
}

static int
pair_header(PyObject *out, PyObject *key, PyObject *value, int asgi)
{
    PyObject *name, *text;
    if (asgi) {
        if (!PyBytes_CheckExact(key) || !PyBytes_CheckExact(value)) {
            return UNUSUAL;
        }
        const char *s = PyBytes_AS_STRING(key);
        Py_ssize_t n = PyBytes_GET_SIZE(key);
        if (!is_ascii(s, n)) {
            return UNUSUAL;
        }
        name = ascii_name(s, n, 0);
        if (name == NULL) {
            return FAILED;
        }
        text = PyUnicode_DecodeLatin1(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value), NULL);
        if (text == NULL) {
            Py_DECREF(name);
            return FAILED;
        }
    } else {
        Py_ssize_t n;
        const char *s = ascii_text(key, &n);
        if (s == NULL || !PyUnicode_CheckExact(value)) {
            return UNUSUAL;
        }
        name = ascii_name(s, n, 0);
        if (name == NULL) {
            return FAILED;
        }
        Py_INCREF(value);
        text = value;
    }
    return add_joined(out, name, text);
}

static int
pair_headers(PyObject *headers, PyObject *out, int asgi)
{
    /* The size and the item are read again at every step, and the item held while used: a
     * finalizer run by an allocation could change a list. */
    for (Py_ssize_t i = 0; i < Py_SIZE(headers); i++) {
        PyObject *item = PyList_CheckExact(headers) ? PyList_GET_ITEM(headers, i) : PyTuple_GET_ITEM(headers, i);
        Py_INCREF(item);
        int result = UNUSUAL;
        if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 2) {
            result = pair_header(out, PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1), asgi);
        } else if (PyList_CheckExact(item) && PyList_GET_SIZE(item) == 2) {
            PyObject *key = PyList_GET_ITEM(item, 0);
            PyObject *value = PyList_GET_ITEM(item, 1);
            Py_INCREF(key);
            Py_INCREF(value);
            result = pair_header(out, key, value, asgi);
            Py_DECREF(key);
            Py_DECREF(value);
        }
        Py_DECREF(item);
        if (result != 0) {
            return result;
        }
    }
    return 0;
}

static PyObject *
normalize(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "normalize(headers, style)");
        return NULL;
    }
    PyObject *headers = args[0];
    if (!PyUnicode_CheckExact(args[1])) {
        Py_RETURN_NONE; /* a record whose style is not a str: the Python path decides */
    }
    const char *style = PyUnicode_AsUTF8(args[1]);
    if (style == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    int environ = strcmp(style, "environ") == 0;
    int asgi = strcmp(style, "asgi") == 0;
    int pairs = strcmp(style, "pairs") == 0;
    if (environ ? !PyDict_CheckExact(headers)
                : !((asgi || pairs) && (PyList_CheckExact(headers) || PyTuple_CheckExact(headers)))) {
        Py_RETURN_NONE;
    }
    PyObject *out = PyDict_New();
    if (out == NULL) {
        return NULL;
    }
    Py_INCREF(headers);
    int result = environ ? environ_headers(headers, out) : pair_headers(headers, out, asgi);
    Py_DECREF(headers);
    if (result == FAILED) {
        Py_DECREF(out);
        return NULL;
    }
    if (result == UNUSUAL) {
        Py_DECREF(out);
        Py_RETURN_NONE;
    }
    return out;
}

static PyMethodDef methods[] = {
    {"normalize", (PyCFunction)(void (*)(void))normalize, METH_FASTCALL,
     "A header list of the given style as {lower-case name: value}, or None when it is unusual."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "moesif_core._headers",
    "Native header normalisation; see moesif_core.headers.",
    -1,
    methods,
};

/* The interface this file gives its Python module (moesif_core.native.native_part): raised with
 * any change the Python side must match, so a build of older sources is refused, not called. */
#define API 1

PyMODINIT_FUNC
PyInit__headers(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "API", API) < 0) {
        Py_CLEAR(m);
    }
    return m;
}
