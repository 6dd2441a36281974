"""tests.integration.blobcopy."""
