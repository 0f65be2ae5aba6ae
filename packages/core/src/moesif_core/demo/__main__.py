"""``python -m moesif_core.demo``: see :mod:`moesif_core.demo.cli`."""

import sys

from .cli import main

sys.exit(main())
