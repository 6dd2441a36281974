"""tests.integration.avere."""
