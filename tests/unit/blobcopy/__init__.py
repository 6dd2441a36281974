"""tests.unit.blobcopy."""
