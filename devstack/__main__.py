"""`python -m devstack COMMAND`: the local stack's command line (see devstack/cli.py)."""

import sys

from devstack.cli import main

sys.exit(main())
