"""tests.integration.azure."""
