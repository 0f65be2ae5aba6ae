/* Two steps of recording a call that cost the request path more in Python than anything else it
 * does -- the optional native half of moesif_core.request_path (see its docstring).
 *
 *   str_entries(environ) -> a new dict of the entries of `environ` whose value is exactly a str,
 *       in its order: {k: v for k, v in environ.items() if type(v) is str}. A dict (PEP 3333 says
 *       the environ is one) is read directly; any other mapping through its items().
 *   uuid4_text(getrandbits) -> the text of a version-4 UUID of 128 bits from getrandbits(128)
 *       (version and variant bits set): str(uuid.UUID(int=getrandbits(128), version=4)).
 *
 * Both only read their argument and build one new object. Hashing a key that is not a str may run
 * Python code that changes the environ: the entry is held while it is copied, and PyDict_Next
 * stays memory-safe over a changed dict (the result is then whatever the comprehension might give).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static int
copy_if_str(PyObject *out, PyObject *key, PyObject *value)
{
    if (!PyUnicode_CheckExact(value)) {
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
str_entries(PyObject *module, PyObject *environ)
{
    PyObject *out = PyDict_New();
    if (out == NULL) {
        return NULL;
    }
    if (PyDict_Check(environ)) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(environ, &pos, &key, &value)) {
            if (copy_if_str(out, key, value) < 0) {
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
            && copy_if_str(out, PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1)) < 0) {
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

static PyMethodDef methods[] = {
    {"str_entries", str_entries, METH_O, "The entries of a mapping whose value is exactly a str, as a new dict."},
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

PyMODINIT_FUNC
PyInit__request_path(void)
{
    return PyModule_Create(&module);
}
