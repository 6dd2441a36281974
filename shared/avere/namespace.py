"""Pure translations between Avere API structs and the captured records (filer, junctions, policies)."""

from __future__ import annotations

from typing import Any

from shared.avere.records import (
    CachePolicyRecord,
    ExportPolicyRecord,
    ExportRule,
    FilerRecord,
    JunctionRecord,
    RecordError,
)

# Built-in cache policies every cluster has (Terraform provider constants.go); never re-created.
BUILTIN_CACHE_POLICIES = frozenset(
    {
        "Clients Bypassing the Cluster",
        "Read Caching",
        "Read and Write Caching",
        "Full Caching",
        "Transitioning Clients Before or After a Migration",
    }
)
CLOUD_EXPORT = "/"  # a cloud core filer has exactly one export, its root


def yes(value: Any) -> bool:
    """Avere answers booleans as XML-RPC booleans or as 'yes'/'no' strings."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("yes", "true", "1", "on")


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def short_policy(vserver: str, policy: str) -> str:
    """listJunctions returns '<vserver>.policy.<name>'; addJunction is given the short name."""
    prefix = f"{vserver}.policy."
    return policy[len(prefix) :] if policy.startswith(prefix) else policy


def junction_from_api(vserver: str, data: dict[str, Any]) -> JunctionRecord:
    inherit = yes(data.get("inheritPolicy", "yes"))
    return JunctionRecord(
        vserver=vserver,
        path=str(data["path"]),
        export=str(data.get("export") or CLOUD_EXPORT),
        subdir=str(data.get("subdir") or ""),
        inherit_policy=inherit,
        policy="" if inherit else short_policy(vserver, str(data.get("policy") or "")),
        access=str(data.get("access") or "posix"),
        sharename=str(data.get("sharename") or ""),
        sharesubdir=str(data.get("sharesubdir") or ""),
        permissions=str(data.get("permissions") or ""),
    )


def junction_filer(data: dict[str, Any]) -> str:
    """The junction's core filer; older clusters only fill the deprecated 'mass' key."""
    return str(data.get("corefiler") or data.get("mass") or "")


def junction_advanced(junction: JunctionRecord) -> dict[str, str]:
    """The `advanced` struct of vserver.addJunction that re-creates this junction exactly."""
    advanced = {
        "subdir": junction.subdir,
        # A subdir exists only in the cluster's namespace, so on a fresh cluster it must be created.
        "createSubdirs": yes_no(bool(junction.subdir)),
        "inheritPolicy": yes_no(junction.inherit_policy),
        "access": junction.access,
        "sharename": junction.sharename,
        "sharesubdir": junction.sharesubdir,
    }
    if not junction.inherit_policy:
        advanced["policy"] = junction.policy
    if junction.permissions:
        advanced["permissions"] = junction.permissions
    return advanced


def same_junction(a: JunctionRecord, b: JunctionRecord) -> bool:
    return JunctionRecord.to_json(a) == JunctionRecord.to_json(b)


def cache_policy_from_api(data: dict[str, Any]) -> CachePolicyRecord:
    check = data.get("checkAttributes") or {}
    name = str(data["name"])
    return CachePolicyRecord(
        name=name,
        cache_mode=str(data.get("cacheMode", "")),
        writeback_delay=int(float(data.get("writebackDelay", 0) or 0)),
        check_attr_period=int(float(check.get("checkAttrPeriod", 0) or 0)),
        check_dir_attr_period=int(float(check.get("checkDirAttrPeriod", 0) or 0)),
        local_directories=yes(data.get("localDirectories", False)),
        description=str(data.get("description", "")),
        builtin=name in BUILTIN_CACHE_POLICIES,
    )


def cache_policy_create_struct(policy: CachePolicyRecord) -> dict[str, Any]:
    """cachePolicy.create's single-struct form."""
    return {
        "name": policy.name,
        "cacheMode": policy.cache_mode,
        "writebackDelay": policy.writeback_delay,
        "checkAttributes": {
            "checkAttrPeriod": policy.check_attr_period,
            "checkDirAttrPeriod": policy.check_dir_attr_period,
        },
        "localDirectories": policy.local_directories,
        "description": policy.description,
    }


def rule_from_api(data: dict[str, Any]) -> ExportRule:
    return ExportRule(
        scope=str(data.get("scope", "")),
        filter=str(data.get("filter", "")),
        permission=str(data.get("permission", "")),
        squash=str(data.get("squash", "")),
        anonuid=str(data.get("anonuid", "")),
        suid=yes(data.get("suid", False)),
        subdir=str(data.get("subdir", "")),
        auth_sys=yes(data.get("authSys", True)),
        auth_krb=yes(data.get("authKrb", False)),
    )


def rule_add_params(vserver: str, policy: str, rule: ExportRule) -> tuple[Any, ...]:
    """nfs.addRule(vserver, policy, scope, filter, permission, squash, anonuid, suid, subdir, {auth})."""
    return (
        vserver,
        policy,
        rule.scope,
        rule.filter,
        rule.permission,
        rule.squash,
        rule.anonuid,
        rule.suid,
        rule.subdir,
        {"authSys": rule.auth_sys, "authKrb": rule.auth_krb},
    )


def filer_from_api(
    info: dict[str, Any],
    *,
    credential_type: str,
    cache_policy: CachePolicyRecord,
    junctions: tuple[JunctionRecord, ...],
    export_policies: tuple[ExportPolicyRecord, ...],
    active_key_id: str,
) -> FilerRecord:
    """corefiler.get's struct (plus what was looked up around it) -> the record re-add replays."""
    if str(info.get("type", "cloud")) != "cloud" or not info.get("bucket"):
        raise RecordError(f"core filer {info.get('name')!r} is not a cloud core filer")

    def text(key: str, default: str = "") -> str:
        value = info.get(key, default)
        return default if value is None else str(value)

    return FilerRecord(
        name=text("name"),
        cloud_type=text("cloudType", "azure"),
        bucket=text("bucket"),
        server_name=text("serverName") or text("networkName"),
        credential_name=text("cloudCredential"),
        credential_type=credential_type,
        crypto_mode=text("cryptoMode", "DISABLED"),
        compress_mode=text("compressMode", "DISABLED"),
        ssl_verify_mode=text("sslVerifyMode", "DISABLED"),
        https=text("https", "yes"),
        port=text("port", "443"),
        proxy=text("proxy"),
        nearline=text("nearline", "no"),
        network=text("network") or text("filerNetwork"),
        cache_policy=cache_policy,
        junctions=junctions,
        export_policies=export_policies,
        active_key_id=active_key_id,
    )


def create_options(
    record: FilerRecord, *, bucket: str, server_name: str, credential: str, bucket_contents: str
) -> dict[str, Any]:
    """filerOptions for corefiler.createCloudFiler replaying the record on (possibly) another bucket."""
    if bucket_contents not in ("used", "empty"):
        raise ValueError("bucket_contents must be 'used' or 'empty'")
    if bucket.count("/") != 1 or not all(bucket.split("/")):
        raise ValueError(f"bucket must be 'account/container', got {bucket!r}")
    options: dict[str, Any] = {
        "cloudType": record.cloud_type,
        "bucket": bucket,
        "serverName": server_name,
        "cloudCredential": credential,
        "cryptoMode": record.crypto_mode,
        "compressMode": record.compress_mode,
        "sslVerifyMode": record.ssl_verify_mode,
        "https": record.https,
        "port": record.port,
        "cachePolicyName": record.cache_policy.name,
        "bucketContents": bucket_contents,
        "nearline": record.nearline,
        "force": False,
    }
    if record.proxy:
        options["proxy"] = record.proxy
    if record.network:
        options["filerNetwork"] = record.network
    return options
