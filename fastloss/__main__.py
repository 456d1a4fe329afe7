"""``python -m fastloss bench [--quick]``: see :mod:`fastloss.bench`."""
import sys

from .bench import main

if __name__ == "__main__":
    sys.exit(main())
