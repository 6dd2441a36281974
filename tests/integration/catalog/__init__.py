"""tests.integration.catalog."""
