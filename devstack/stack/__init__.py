"""devstack.stack."""
