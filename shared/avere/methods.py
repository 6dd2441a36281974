"""Which management-API calls may be sent again blindly: reads and idempotent setters; every other call is a write."""

from __future__ import annotations

from collections.abc import Iterable

# Calls that change nothing on the cluster (the API guide's queries). Only these, and the idempotent setters
# below, are retried after a failure that may have reached the cluster. A name missing here is treated as a
# write: a read misfiled as a write is merely retried less, a write misfiled as a read could be applied twice.
READS = frozenset(
    {
        "alert.conditions",
        "cachePolicy.get",
        "cachePolicy.list",
        "cachePolicy.listFilersUsing",
        "cluster.get",
        "cluster.getActivity",
        "cluster.listActivities",
        "cluster.maxActiveAlertSeverity",
        "corefiler.downloadKeyRecoveryFile",
        "corefiler.get",
        "corefiler.getCredential",
        "corefiler.list",
        "corefiler.listCredentials",
        "corefiler.listExports",
        "corefiler.masterKeyStatus",
        "corefiler.modifiedFilesInfo",
        "nfs.listExports",
        "nfs.listPolicies",
        "nfs.listRules",
        "node.get",
        "node.list",
        "system.enabledAPIs",
        "system.listMethods",
        "system.listModules",
        "system.methodHelp",
        "system.methodSignature",
        "vserver.get",
        "vserver.list",
        "vserver.listJunctions",
        "vserver.listJunctionsByCoreFiler",
        # The simulator's test-only inspection calls (never sent to a real cluster by production code).
        "sim.callLog",
        "sim.dirtyFiles",
        "sim.listFaults",
    }
)

# Writes whose second application leaves the same state as the first: setting a value, not adding a thing.
IDEMPOTENT = frozenset(
    {
        "system.login",
        "system.logout",
        "system.enableAPI",
        "system.disableAPI",
        "system.setInt64Representation",
        "corefiler.modify",  # the runbook only sets clientSuspend to 'yes' or 'no'
        "corefiler.modifyCredential",
        "corefiler.unsuspend",
    }
)

_ALIASES = (("mass.", "corefiler."),)  # 'mass' is the deprecated name of the corefiler module


def canonical(method: str) -> str:
    for old, new in _ALIASES:
        if method.startswith(old):
            return new + method[len(old) :]
    return method


def is_read(method: str) -> bool:
    return canonical(method) in READS


def may_resend(methods: Iterable[str]) -> bool:
    """True when the request (one call, or a multicall's sub-calls) may be sent again after an answer that
    may have been lost after the cluster ran it: every call in it is a read or an idempotent setter."""
    names = [canonical(m) for m in methods]
    return bool(names) and all(m in READS or m in IDEMPOTENT for m in names)
