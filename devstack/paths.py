"""Where the local stack finds the repository (cwd of the processes it starts, node_modules, host.json)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
