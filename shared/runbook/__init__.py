"""shared.runbook."""
