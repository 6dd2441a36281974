"""tests.integration.activities."""
