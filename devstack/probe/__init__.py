"""The drill probe stand-in: the read-back endpoint an operator runs beside a DR cluster (docs/drills.md)."""

from devstack.probe.server import ClusterAccess, ProbeServer, start_probe

__all__ = ["ClusterAccess", "ProbeServer", "start_probe"]
