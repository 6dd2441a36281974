"""tests.unit.runbook."""
