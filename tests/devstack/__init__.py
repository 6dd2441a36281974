"""tests.devstack."""
