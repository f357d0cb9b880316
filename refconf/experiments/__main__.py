"""``python -m refconf.experiments table1 [options]``: ``refconf reproduce table1``."""

import sys

from .cli import main

sys.exit(main())
