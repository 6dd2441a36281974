"""Durable orchestrators: pure sequencing of the DR runbook (no I/O; activities do it)."""
