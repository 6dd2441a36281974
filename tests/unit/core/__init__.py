"""tests.unit.core."""
