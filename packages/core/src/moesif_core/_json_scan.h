/* What moesif_core._json_scan gives the other native parts: its body check as a C function, so
 * the event writer can check bodies with the GIL released (moesif_core._event_json writes a
 * batch so). Handed over as the capsule JSON_SCAN_CAPSULE; a part built against another version
 * of this struct sees a different `version` and calls the check through Python instead.
 */
#ifndef MOESIF_JSON_SCAN_H
#define MOESIF_JSON_SCAN_H

#include <Python.h>

#define JSON_SCAN_CAPSULE "moesif_core._json_scan._C_API"
#define JSON_SCAN_CAPI_VERSION 1

typedef struct {
    int version;
    /* The Scanner type, and Scanner.plain's C function: how a bound check is recognised. */
    PyTypeObject *scanner_type;
    PyCFunction plain_method;
    /* scanner.plain(data) for data[0:size] followed by a NUL (a bytes object's buffer); reads
     * only the scanner and the data, so it needs no GIL while both stay referenced. */
    int (*plain)(PyObject *scanner, const unsigned char *data, Py_ssize_t size);
} JsonScanCAPI;

#endif
