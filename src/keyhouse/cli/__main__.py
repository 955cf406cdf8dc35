"""``python -m keyhouse.cli``: the same command as the ``keyhouse`` console script."""

import sys

from keyhouse.cli.runner import main

sys.exit(main())
