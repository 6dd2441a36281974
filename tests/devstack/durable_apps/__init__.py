"""Toy Durable Functions apps (one DFApp per module) that exercise the local runner's semantics."""
