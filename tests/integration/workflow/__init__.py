"""tests.integration.workflow."""
