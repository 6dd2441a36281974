"""tests.unit.plan."""
