"""shared.core."""
