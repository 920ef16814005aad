"""``python -m glaviz.cli`` (and ``torchrun -m glaviz.cli``): the ``glaviz`` command."""

import os
import sys

from glaviz.cli import main

if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
