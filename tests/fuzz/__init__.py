"""Hostile input: docs/openapi.yaml kept in step with the app; property-based runs of the HTTP routes (against
the local runner's HTTP host) and of the plan loader."""
