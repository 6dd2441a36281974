"""`python -m shared.blobcopy`: the copy engine's command line (see shared/blobcopy/cli.py)."""

import sys

from shared.blobcopy.cli import main

sys.exit(main())
