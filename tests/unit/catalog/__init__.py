"""Unit tests of the catalog (no storage)."""
