"""shared.avere."""
