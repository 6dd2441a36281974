"""The read side of the Avere management client: session, activities, capture, health, mount addresses."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence
from typing import Any, Self

from shared.avere import answers
from shared.avere.errors import AvereUnexpectedAnswer, FilerNotFound
from shared.avere.namespace import (
    cache_policy_from_api,
    filer_from_api,
    junction_filer,
    junction_from_api,
    rule_from_api,
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


class AvereReader:
    """Session, activities and every read-only query of one cluster's management API."""

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        *,
        ca_file: str | None = None,
        fingerprint_sha256: str | None = None,
        insecure: bool = False,
        insecure_acknowledged: bool = False,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 1.0,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.session = AvereSession(
            url,
            user,
            password,
            ca_file=ca_file,
            fingerprint_sha256=fingerprint_sha256,
            insecure=insecure,
            insecure_acknowledged=insecure_acknowledged,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            sleep=sleep,
        )

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
        data = answers.struct(self.call("cluster.getActivity", activity_id), f"cluster.getActivity({activity_id})")
        # An unknown or missing state is kept as it is: only 'success' counts as done (fail closed).
        state = str(data.get("state", ""))
        return ActivityStatus(
            id=str(data.get("id", activity_id)),
            state=state,
            percent=answers.percent(data.get("percent"), state),
            status=str(data.get("status", "")),
            process=str(data.get("process", "")),
        )

    def _running_activity(self, process: str, filer: str) -> str | None:
        for item in answers.array(self.call("cluster.listActivities"), "cluster.listActivities"):
            if (
                isinstance(item, dict)
                and item.get("state") == "inprogress"
                and item.get("process") == process
                and f"'{filer}'" in str(item.get("status", ""))
                and item.get("id")
            ):
                return str(item["id"])
        return None

    # -- reading -----------------------------------------------------------------------------------------
    def list_core_filers(self) -> list[str]:
        return answers.names(self.call("corefiler.list"), "corefiler.list")

    def filer_info(self, name: str, fields: tuple[str, ...] = answers.DECIDED) -> dict[str, Any]:
        """The filer's corefiler.get entry, with `fields` (adminState, bucket, cryptoMode by default) present;
        AvereUnexpectedAnswer otherwise, FilerNotFound when there is no such filer."""
        return dict(answers.filer_entry(self.call("corefiler.get", name), name, fields))

    def filer_state(self, name: str) -> str:
        """adminState ('online', 'flushing', 'removing', ...), or 'removed' when no such filer exists; an
        answer without a readable adminState raises AvereUnexpectedAnswer (no state is ever assumed)."""
        try:
            return str(self.filer_info(name, ("adminState",))["adminState"])
        except FilerNotFound:
            return "removed"

    def encrypted(self, name: str) -> bool:
        """Whether the filer encrypts (cryptoMode not DISABLED); a missing cryptoMode is an error, not 'no'."""
        return str(self.filer_info(name, ("cryptoMode",))["cryptoMode"]).upper() != "DISABLED"

    def dirty_files(self, name: str) -> DirtyInfo:
        what = f"corefiler.modifiedFilesInfo({name})"
        info = answers.struct(self.call("corefiler.modifiedFilesInfo", name), what)
        # 64-bit values may come back as i8, double or string depending on setInt64Representation. A missing
        # or unreadable numFiles is never "0 dirty files": the caller must not call the filer clean.
        num = answers.count(info.get("numFiles"))
        if num is None:
            raise AvereUnexpectedAnswer(
                f"{what} has no readable numFiles (got {info.get('numFiles')!r}): the filer cannot be called clean"
            )
        age = answers.number(info.get("oldestAge"))
        return DirtyInfo(num_files=num, oldest_age=age if age is not None else 0.0)

    def master_key_status(self, name: str) -> MasterKeyStatus:
        """The active and pending key ids ('' for the cluster's "none" placeholders); an answer that does not
        state them raises AvereUnexpectedAnswer: a missing key id is not "no key"."""
        return answers.key_status(self.call("corefiler.masterKeyStatus", name), name)

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

    def junction_entries(self, vserver: str) -> list[dict[str, Any]]:
        """vserver.listJunctions, each entry checked to name its path and core filer."""
        return answers.junction_entries(self.call("vserver.listJunctions", vserver), vserver)

    def junctions(self, filer: str) -> list[JunctionRecord]:
        """Every junction pointing at the filer, on every vserver."""
        found: list[JunctionRecord] = []
        for vserver in answers.names(self.call("vserver.list"), "vserver.list"):
            for data in self.junction_entries(vserver):
                if junction_filer(data) == filer:
                    found.append(junction_from_api(vserver, data))
        return found

    def capture_core_filer(self, name: str) -> FilerRecord:
        """Everything re-add and failover replay: settings, junctions, export policies, cache policy. Every
        setting replayed must be in the answer: a default would re-add a different filer."""
        info = self.filer_info(name, answers.CAPTURED)
        if not (info.get("serverName") or info.get("networkName")):
            raise AvereUnexpectedAnswer(
                f"corefiler.get({name}) has neither serverName nor networkName: the storage endpoint cannot be recorded"
            )
        junctions = tuple(sorted(self.junctions(name), key=lambda j: (j.vserver, j.path)))
        policies: dict[tuple[str, str], ExportPolicyRecord] = {}
        for j in junctions:
            if not j.inherit_policy and (j.vserver, j.policy) not in policies:
                rules = self.call("nfs.listRules", j.vserver, j.policy, "")
                policies[(j.vserver, j.policy)] = ExportPolicyRecord(
                    vserver=j.vserver, name=j.policy, rules=tuple(rule_from_api(r) for r in rules)
                )
        crypto = str(info["cryptoMode"])
        active = self.master_key_status(name).active_key_id if crypto.upper() != "DISABLED" else ""
        return filer_from_api(
            {**info, "name": name},
            credential_type=self._credential_type(str(info["cloudCredential"])),
            cache_policy=self._cache_policy(str(info["policyName"])),
            junctions=junctions,
            export_policies=tuple(policies.values()),
            active_key_id=active,
        )

    def health(self, name: str) -> Health:
        """Is the filer serving clients? Reasons say what is not; a field that cannot be read is a reason too
        (never "healthy" on a missing state). Its alerts worse than yellow count."""
        try:
            info = answers.filer_entry(self.call("corefiler.get", name), name, ())
        except FilerNotFound:
            return Health(False, (f"core filer {name!r} does not exist",))
        reasons = [*self._state_reasons(name, info), *self._alert_reasons(name), *self._node_reasons()]
        return Health(not reasons, tuple(reasons))

    def _state_reasons(self, name: str, info: dict[str, Any]) -> list[str]:
        reasons: list[str] = []
        state = info.get("adminState")
        if not isinstance(state, str) or not state:
            reasons.append(f"core filer {name!r}: corefiler.get has no readable adminState")
        elif state != "online":
            reasons.append(f"core filer {name!r} is {state}")
        suspended = answers.flag(info.get("clientSuspend"))
        if suspended is None:
            reasons.append(f"core filer {name!r}: corefiler.get has no readable clientSuspend")
        elif suspended:
            reasons.append(f"client access to core filer {name!r} is suspended")
        crypto = info.get("cryptoMode")
        if not isinstance(crypto, str) or not crypto:
            reasons.append(f"core filer {name!r}: corefiler.get has no readable cryptoMode")
        elif crypto.upper() != "DISABLED":
            try:
                if not self.master_key_status(name).active_key_id:
                    reasons.append(f"core filer {name!r} has no active encryption key")
            except AvereUnexpectedAnswer as err:
                reasons.append(str(err))
        return reasons

    def _alert_reasons(self, name: str) -> list[str]:
        reasons: list[str] = []
        for alert in answers.array(self.call("alert.conditions"), "alert.conditions"):
            if not isinstance(alert, dict):
                reasons.append("alert.conditions answered an alert that is not a struct")
                continue
            message = str(alert.get("message", alert.get("name", "")))
            # Another filer's trouble must not hold this one back; node trouble is checked below. An alert
            # about this filer whose severity cannot be read counts as severe.
            severity = alert.get("severity")
            severe = not isinstance(severity, str) or severity.lower() in ("red", "error", "critical")
            if severe and f"'{name}'" in message:
                reasons.append(f"alert: {message}")
        return reasons

    def _node_reasons(self) -> list[str]:
        nodes = answers.struct(self.call("node.get", answers.names(self.call("node.list"), "node.list")), "node.get")
        return [
            f"node {node} is {data.get('state') if isinstance(data, dict) else 'unknown'}"
            for node, data in nodes.items()
            if not isinstance(data, dict) or data.get("state") != "up"
        ]

    def client_mount_addresses(self, name: str) -> tuple[MountPoint, ...]:
        points: list[MountPoint] = []
        by_vserver: dict[str, list[str]] = {}
        for j in self.junctions(name):
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
