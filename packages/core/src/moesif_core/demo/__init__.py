"""The demo behind ``hatch run demo``: the local collector, an instrumented app and realistic traffic, on 127.0.0.1.

``python -m moesif_core.demo --help`` lists the options. Frameworks are imported only for the app
that is chosen, so importing this package needs nothing beyond moesif-core.

Example::

    from moesif_core.demo import main
    main(["--framework", "falcon", "--requests", "50", "--exit"])
"""

from .cli import main

__all__ = ["main"]
