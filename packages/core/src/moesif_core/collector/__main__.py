"""``python -m moesif_core.collector`` is ``moesif-collector``."""

import sys

from .cli import main

sys.exit(main())
