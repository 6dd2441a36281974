"""The Avere vFXT cluster simulator: HTTPS XML-RPC management API, activities, and objects kept in Azurite."""

from devstack.cluster.engine import Timing
from devstack.cluster.runner import AdjustableClock, ClusterHandle, start_cluster

__all__ = ["AdjustableClock", "ClusterHandle", "Timing", "start_cluster"]
