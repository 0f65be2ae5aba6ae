"""Only the optional C extensions; everything else is in pyproject.toml.

``optional=True``: without a C compiler (or on an interpreter without the C API) the build goes
on and moesif-core runs the pure-Python versions instead (see ``moesif_core/json_scan.py`` and
``moesif_core/request_path.py``, ``moesif_core/headers.py``, ``moesif_core/event_json.py``,
``moesif_core/wsgi.py``, ``moesif_core/asgi.py``).
"""

from setuptools import Extension, setup

# Each built from the C file of the same name; moesif_core.native says when they are not loaded.
NATIVE_PARTS = ("_json_scan", "_request_path", "_headers", "_event_json", "_wsgi_exchange", "_asgi_exchange")
# Headers a part includes: listed so a change rebuilds it and the sdist carries them.
HEADERS = {
    "_wsgi_exchange": ["src/moesif_core/_exchange_core.h"],
    "_asgi_exchange": ["src/moesif_core/_exchange_core.h"],
    "_json_scan": ["src/moesif_core/_json_scan.h"],
    "_event_json": ["src/moesif_core/_json_scan.h"],
}

setup(
    ext_modules=[
        Extension(
            f"moesif_core.{name}",
            sources=[f"src/moesif_core/{name}.c"],
            depends=HEADERS.get(name, []),
            optional=True,
        )
        for name in NATIVE_PARTS
    ]
)
