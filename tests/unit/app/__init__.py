"""tests.unit.app."""
