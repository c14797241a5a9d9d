"""Allow ``python -m webinar``."""

import sys

from webinar.cli import main

if __name__ == "__main__":
    sys.exit(main())
