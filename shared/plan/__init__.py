"""shared.plan."""
