"""Only the optional C extensions; everything else is in pyproject.toml.

``optional=True``: without a C compiler (or on an interpreter without the C API) the build goes
on and moesif-core runs the pure-Python versions instead (see ``moesif_core/json_scan.py`` and
``moesif_core/request_path.py``, ``moesif_core/headers.py``, ``moesif_core/event_json.py``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "moesif_core._json_scan",
            sources=["src/moesif_core/_json_scan.c"],
            optional=True,
        ),
        Extension(
            "moesif_core._request_path",
            sources=["src/moesif_core/_request_path.c"],
            optional=True,
        ),
        Extension(
            "moesif_core._headers",
            sources=["src/moesif_core/_headers.c"],
            optional=True,
        ),
        Extension(
            "moesif_core._event_json",
            sources=["src/moesif_core/_event_json.c"],
            optional=True,
        ),
    ]
)
