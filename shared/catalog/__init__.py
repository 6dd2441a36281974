"""shared.catalog."""
