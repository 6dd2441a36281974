"""shared.azure."""
