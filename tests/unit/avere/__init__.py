"""tests.unit.avere."""
