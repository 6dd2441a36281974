"""Where the tests find the repository: one constant, so a test file can move without path arithmetic."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
