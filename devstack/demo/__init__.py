"""devstack.demo."""
