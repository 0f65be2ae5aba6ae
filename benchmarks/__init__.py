"""Side-by-side benchmarks: the bare app, our middleware and the incumbents (moesifwsgi, moesifasgi).

Run ``hatch run bench:run`` (``python -m benchmarks``) from the repository root; see
``benchmarks/README.md`` for what each section measures and how to read the report.
"""
