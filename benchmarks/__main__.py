"""``python -m benchmarks``: run the suite and write the report."""

import sys

from .cli import main

sys.exit(main())
