"""`python -m lever_sandbox`: serve the sandbox (see `lever_sandbox.cli`)."""

import sys

from lever_sandbox.cli import main

sys.exit(main())
