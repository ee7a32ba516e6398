"""Run the nascore command line: ``python -m nascore ...`` is ``nascore ...``."""

from __future__ import annotations

import sys

from nascore.cli import main

if __name__ == "__main__":
    sys.exit(main())
