"""`python -m shared.plan validate FILE | example`: the plan's command line (see shared/plan/cli.py)."""

import sys

from shared.plan.cli import main

sys.exit(main())
