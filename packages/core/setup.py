"""Only the optional C extension; everything else is in pyproject.toml.

``optional=True``: without a C compiler (or on an interpreter without the C API) the build goes
on and moesif-core runs its pure-Python checks instead (see ``moesif_core/json_scan.py``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "moesif_core._json_scan",
            sources=["src/moesif_core/_json_scan.c"],
            optional=True,
        )
    ]
)
