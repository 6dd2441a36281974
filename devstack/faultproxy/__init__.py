"""devstack.faultproxy."""
