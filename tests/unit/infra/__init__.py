"""tests.unit.infra."""
