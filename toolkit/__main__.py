"""`python -m toolkit` is `lever-tags`."""

import sys

from toolkit.cli import main

sys.exit(main())
