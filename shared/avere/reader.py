"""The read side of the Avere management client: session, activities, capture, health, mount addresses."""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Self

from shared.avere.errors import AvereUnexpectedAnswer, FilerNotFound
from shared.avere.namespace import (
    cache_policy_from_api,
    filer_from_api,
    junction_filer,
    junction_from_api,
    rule_from_api,
    yes,
)
from shared.avere.records import (
    ActivityStatus,
    CachePolicyRecord,
    DirtyInfo,
    ExportPolicyRecord,
    FilerRecord,
    Health,
    JunctionRecord,
    MasterKeyStatus,
    MountPoint,
)
from shared.avere.session import AvereSession

_NO_KEY = ("", "NO ACTIVE MASTER KEY", "NONE", "NO MASTER KEY READY TO ACTIVATE")


class AvereReader:
    """Session, activities and every read-only query of one cluster's management API."""

    def __init__(self, url: str, user: str, password: str, *, ca_file: str | None = None,
                 fingerprint_sha256: str | None = None, insecure: bool = False, timeout: float = 30.0,
                 retries: int = 5, backoff: float = 1.0, sleep: Callable[[float], Any] = time.sleep) -> None:
        self.session = AvereSession(url, user, password, ca_file=ca_file,
                                    fingerprint_sha256=fingerprint_sha256, insecure=insecure,
                                    timeout=timeout, retries=retries, backoff=backoff, sleep=sleep)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.session.url!r}, user={self.session.user!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.logout()

    def call(self, method: str, *params: Any, secrets: Sequence[str] = ()) -> Any:
        return self.session.call(method, *params, secrets=secrets)

    def multicall(self, calls: Sequence[tuple[str, Sequence[Any]]], secrets: Sequence[str] = ()) -> list[Any]:
        return self.session.multicall(calls, secrets=secrets)

    # -- activities --------------------------------------------------------------------------------------
    def activity_status(self, activity_id: str) -> ActivityStatus:
        if activity_id == "success":
            return ActivityStatus(id="success", state="success", percent=100, status="success")
        data = self.call("cluster.getActivity", activity_id)
        if not isinstance(data, dict):
            raise AvereUnexpectedAnswer(f"cluster.getActivity({activity_id}) answered {type(data).__name__}, "
                                        "not a struct")
        # An unknown or missing state is kept as it is: only 'success' counts as done (fail closed).
        state = str(data.get("state", ""))
        return ActivityStatus(id=str(data.get("id", activity_id)), state=state,
                              percent=_percent(data.get("percent"), state),
                              status=str(data.get("status", "")), process=str(data.get("process", "")))

    def _running_activity(self, process: str, filer: str) -> str | None:
        for item in self.call("cluster.listActivities"):
            if (item.get("state") == "inprogress" and item.get("process") == process
                    and f"'{filer}'" in str(item.get("status", ""))):
                return str(item["id"])
        return None

    # -- reading -----------------------------------------------------------------------------------------
    def list_core_filers(self) -> list[str]:
        return [str(n) for n in self.call("corefiler.list")]

    def _filer_info(self, name: str) -> dict[str, Any]:
        return dict(self.call("corefiler.get", name)[name])

    def filer_state(self, name: str) -> str:
        """adminState ('online', 'flushing', 'removing', ...), or 'removed' when no such filer exists."""
        try:
            return str(self._filer_info(name).get("adminState", ""))
        except FilerNotFound:
            return "removed"

    def dirty_files(self, name: str) -> DirtyInfo:
        info = self.call("corefiler.modifiedFilesInfo", name)
        if not isinstance(info, dict):
            raise AvereUnexpectedAnswer(f"corefiler.modifiedFilesInfo({name}) answered {type(info).__name__}, "
                                        "not a struct")
        # 64-bit values may come back as i8, double or string depending on setInt64Representation. A missing
        # or unreadable numFiles is never "0 dirty files": the caller must not call the filer clean.
        num = _count(info.get("numFiles"))
        if num is None:
            raise AvereUnexpectedAnswer(f"corefiler.modifiedFilesInfo({name}) has no readable numFiles "
                                        f"(got {info.get('numFiles')!r}): the filer cannot be called clean")
        age = _number(info.get("oldestAge"))
        return DirtyInfo(num_files=num, oldest_age=age if age is not None else 0.0)

    def master_key_status(self, name: str) -> MasterKeyStatus:
        data = self.call("corefiler.masterKeyStatus", name)

        def key(field: str) -> str:
            value = str(data.get(field, "") or "")
            return "" if value.upper() in _NO_KEY else value

        activation = str(data.get("keyActivationTime", "") or "")
        nodes = data.get("nodesWithoutLatestMasterKey") or []
        return MasterKeyStatus(
            active_key_id=key("activeMasterKeyId"), ready_to_activate=key("masterKeyIdReadyToActivate"),
            recovery_file_signature=str(data.get("recoveryFileSignature", "") or ""),
            activation_time=float(activation) if activation.replace(".", "", 1).isdigit() else None,
            nodes_without_latest_key=tuple(str(n) for n in (nodes if isinstance(nodes, list) else [nodes])),
        )

    def _cache_policy(self, name: str) -> CachePolicyRecord:
        data = self.call("cachePolicy.get", name)
        if name in data and isinstance(data[name], dict):
            data = data[name]
        return cache_policy_from_api({"name": name, **data})

    def _credential_type(self, name: str) -> str:
        for cred in self.call("corefiler.listCredentials"):
            if cred.get("name") == name:
                return str(cred.get("type", ""))
        return ""

    def _junctions(self, filer: str) -> list[JunctionRecord]:
        found: list[JunctionRecord] = []
        for vserver in self.call("vserver.list"):
            for data in self.call("vserver.listJunctions", vserver):
                if junction_filer(data) == filer:
                    found.append(junction_from_api(str(vserver), data))
        return found

    def capture_core_filer(self, name: str) -> FilerRecord:
        """Everything re-add and failover replay: settings, junctions, export policies, cache policy."""
        info = self._filer_info(name)
        junctions = tuple(sorted(self._junctions(name), key=lambda j: (j.vserver, j.path)))
        policies: dict[tuple[str, str], ExportPolicyRecord] = {}
        for j in junctions:
            if not j.inherit_policy and (j.vserver, j.policy) not in policies:
                rules = self.call("nfs.listRules", j.vserver, j.policy, "")
                policies[(j.vserver, j.policy)] = ExportPolicyRecord(
                    vserver=j.vserver, name=j.policy, rules=tuple(rule_from_api(r) for r in rules))
        crypto = str(info.get("cryptoMode", "DISABLED"))
        active = self.master_key_status(name).active_key_id if crypto.upper() != "DISABLED" else ""
        return filer_from_api(info, credential_type=self._credential_type(str(info.get("cloudCredential"))),
                              cache_policy=self._cache_policy(str(info.get("policyName") or "Full Caching")),
                              junctions=junctions, export_policies=tuple(policies.values()),
                              active_key_id=active)

    def health(self, name: str) -> Health:
        """Is the filer serving clients? Reasons say what is not (its alerts worse than yellow count)."""
        reasons: list[str] = []
        try:
            info = self._filer_info(name)
        except FilerNotFound:
            return Health(False, (f"core filer {name!r} does not exist",))
        if info.get("adminState") != "online":
            reasons.append(f"core filer {name!r} is {info.get('adminState')}")
        if yes(info.get("clientSuspend", "no")):
            reasons.append(f"client access to core filer {name!r} is suspended")
        if str(info.get("cryptoMode", "DISABLED")).upper() != "DISABLED" \
                and not self.master_key_status(name).active_key_id:
            reasons.append(f"core filer {name!r} has no active encryption key")
        for alert in self.call("alert.conditions"):
            message = str(alert.get("message", alert.get("name", "")))
            # Another filer's trouble must not hold this one back; node trouble is checked below.
            severe = str(alert.get("severity", "")).lower() in ("red", "error", "critical")
            if severe and f"'{name}'" in message:
                reasons.append(f"alert: {message}")
        for node, data in self.call("node.get", list(self.call("node.list"))).items():
            if data.get("state") != "up":
                reasons.append(f"node {node} is {data.get('state')}")
        return Health(not reasons, tuple(reasons))

    def client_mount_addresses(self, name: str) -> tuple[MountPoint, ...]:
        points: list[MountPoint] = []
        by_vserver: dict[str, list[str]] = {}
        for j in self._junctions(name):
            by_vserver.setdefault(j.vserver, []).append(j.path)
        for vserver, paths in sorted(by_vserver.items()):
            info = self.call("vserver.get", vserver)[vserver]
            addresses: list[str] = []
            for block in info.get("clientFacingIPs") or []:
                first = ipaddress.ip_address(block["firstIP"])
                last = ipaddress.ip_address(block.get("lastIP") or block["firstIP"])
                addresses.extend(str(first + i) for i in range(int(last) - int(first) + 1))
            points.append(MountPoint(vserver=vserver, addresses=tuple(addresses), paths=tuple(sorted(paths))))
        return tuple(points)


def _number(value: Any) -> float | None:
    """A numeric answer as int, double or decimal string (the cluster's i8 representations); else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None  # NaN and inf are garbage, not counts


def _count(value: Any) -> int | None:
    """A non-negative whole count, or None when the answer is missing or not one."""
    number = _number(value)
    if number is None or number < 0 or number != int(number):
        return None
    return int(number)


def _percent(value: Any, state: str) -> int:
    """Progress for display only (never decides anything): unreadable means 0, success means 100."""
    if state == "success":
        return 100
    number = _number(value)
    return 0 if number is None else max(0, min(100, int(number)))
