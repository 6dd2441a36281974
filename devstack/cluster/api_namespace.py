"""vserver.* and nfs.*: the global namespace (junctions) and export policies with their rules."""

from __future__ import annotations

import ipaddress
from typing import Any

from devstack.cluster.faults import EEXIST, EINUSE, EINVAL, ENOENT, ENOTALLOWED, Fault, no_filer, no_junction
from devstack.cluster.filedata import normalize
from devstack.cluster.model import Junction, Vserver
from devstack.cluster.registry import Ctx, flag, rpc, struct, text, yes_no

ADVANCED = {
    "subdir",
    "createSubdirs",
    "inheritPolicy",
    "policy",
    "access",
    "sharename",
    "sharesubdir",
    "permissions",
    "language",
}
SCOPES = ("default", "host", "network", "netgroup")
ACCESS = ("ro", "rw", "no_access")
SQUASH = ("root_squash", "no_root_squash", "all_squash")


def _vserver(ctx: Ctx, name: Any) -> Vserver:
    vs = ctx.cluster.state.vservers.get(text(name, "vserver"))
    if vs is None:
        raise Fault(ENOENT, f"Cannot find vserver '{name}'")
    return vs


def junction_json(ctx: Ctx, vs: Vserver, j: Junction) -> dict[str, Any]:
    filer = ctx.cluster.state.filers.get(j.filer)
    internal = filer.internal if filer else ""
    out = {
        "path": j.path,
        "corefiler": j.filer,
        "mass": j.filer,
        "corefilerInternal": internal,
        "massInternal": internal,
        "export": j.export,
        "subdir": j.subdir,
        "inheritPolicy": yes_no(j.inherit_policy),
        "access": j.access,
        "sharename": j.sharename,
        "sharesubdir": j.sharesubdir,
        "permissions": j.permissions,
        "clientSuspend": yes_no(bool(filer and filer.client_suspend)),
    }
    if not j.inherit_policy:
        out["policy"] = f"{vs.name}.policy.{j.policy}"  # listJunctions answers the qualified form
    return out


@rpc("vserver.list", readonly=True)
def vserver_list(ctx: Ctx) -> list[str]:
    """vserver.list() => [name, ...]"""
    return sorted(ctx.cluster.state.vservers)


@rpc("vserver.get", readonly=True)
def vserver_get(ctx: Ctx, names: Any) -> dict[str, Any]:
    """vserver.get(name | [names]) => {name: {type, adminState, clientFacingIPs, corefiler, ...}}"""
    out: dict[str, Any] = {}
    for name in [names] if isinstance(names, str) else list(names):
        vs = _vserver(ctx, name)
        filers = sorted({j.filer for j in vs.junctions.values()})
        out[vs.name] = {
            "name": vs.name,
            "type": "gns",
            "adminState": "up",
            "clientSuspendStatus": "JUKEBOX",
            "clientFacingIPs": [{"firstIP": vs.first_ip, "lastIP": vs.last_ip, "netmask": vs.netmask}],
            "corefiler": filers,
            "mass": filers,
        }
    return out


@rpc("vserver.listJunctions", readonly=True)
def list_junctions(ctx: Ctx, vserver: Any) -> list[dict[str, Any]]:
    """vserver.listJunctions(vserver) => [{path, corefiler, export, subdir, policy, inheritPolicy, ...}]"""
    vs = _vserver(ctx, vserver)
    return [junction_json(ctx, vs, j) for _, j in sorted(vs.junctions.items())]


@rpc("vserver.listJunctionsByCoreFiler", readonly=True)
def list_junctions_by_filer(ctx: Ctx, filer: Any, export: Any = "/") -> list[dict[str, Any]]:
    """vserver.listJunctionsByCoreFiler(filerName, nfsExport) => [junction struct + vserver_name]"""
    name = text(filer, "filerName")
    return [
        {**junction_json(ctx, ctx.cluster.state.vservers[v], j), "vserver_name": v}
        for v, j in ctx.cluster.state.junctions_of(name)
        if j.export == export
    ]


def _policy_name(vs: Vserver, value: Any) -> str:
    """Open question 2, decided: the short name and '<vserver>.policy.<name>' are both accepted."""
    name = text(value, "policy")
    if ".policy." in name:
        owner, _, short = name.partition(".policy.")
        if owner != vs.name:
            raise Fault(EINVAL, f"Policy '{name}' belongs to vserver '{owner}', not '{vs.name}'")
        name = short
    if name not in vs.policies:
        raise Fault(ENOENT, f"Cannot find policy '{name}' on vserver '{vs.name}'")
    return name


def _choice(advanced: dict[str, Any], key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = str(advanced.get(key) or default)
    if value not in allowed:
        raise Fault(EINVAL, f"Invalid {key} '{value}': expected one of {', '.join(allowed)}")
    return value


@rpc("vserver.addJunction")
def add_junction(  # noqa: PLR0917  # the XML-RPC method's positional signature
    ctx: Ctx,
    vserver: Any,
    path: Any,
    filer_name: Any,
    export: Any,
    advanced: Any = None,
) -> str:
    """vserver.addJunction(vserver, junctionPath, filerName, nfsExport, [advanced]) => activity id.

    advanced: subdir, createSubdirs ('no' default), inheritPolicy, policy, access, sharename,
    sharesubdir, permissions ('preserve' default).
    """
    c = ctx.cluster
    vs = _vserver(ctx, vserver)
    path = text(path, "junctionPath")
    if not path.startswith("/") or normalize(path) != path or path == "/":
        raise Fault(EINVAL, f"Invalid junction path '{path}'")
    if path in vs.junctions:
        raise Fault(EEXIST, f"Junction {path} already exists on vserver '{vs.name}'")
    filer = c.state.filers.get(text(filer_name, "filerName"))
    if filer is None:
        raise no_filer(str(filer_name))
    if filer.admin_state == "removing":
        raise Fault(ENOTALLOWED, f"Core filer '{filer.name}' is being removed")
    if export != "/":
        raise Fault(ENOENT, f"Cannot find export '{export}' on core filer '{filer.name}'")
    advanced = struct(advanced or {}, "advanced")
    unknown = sorted(set(advanced) - ADVANCED)
    if unknown:
        raise Fault(EINVAL, f"Unknown junction option(s): {', '.join(unknown)}")
    inherit = flag(advanced.get("inheritPolicy", "yes"), "inheritPolicy")
    if not inherit and not advanced.get("policy"):
        raise Fault(EINVAL, "A policy is required when inheritPolicy is 'no'")
    policy = "" if inherit else _policy_name(vs, advanced["policy"])
    subdir = str(advanced.get("subdir") or "")
    if subdir:
        subdir = normalize(subdir).lstrip("/")
        if flag(advanced.get("createSubdirs", "no"), "createSubdirs"):
            if "/" + subdir not in filer.dirs:
                filer.dirs.append("/" + subdir)
        elif not (filer.index_loaded and c.data(filer).exists_dir(subdir)):
            raise Fault(
                ENOENT, f"Cannot find subdirectory '{subdir}' on core filer '{filer.name}' (use createSubdirs 'yes')"
            )
    vs.junctions[path] = Junction(
        path=path,
        filer=filer.name,
        export="/",
        subdir=subdir,
        inherit_policy=inherit,
        policy=policy,
        access=_choice(advanced, "access", "posix", ("posix", "cifs")),
        sharename=str(advanced.get("sharename") or ""),
        sharesubdir=str(advanced.get("sharesubdir") or ""),
        permissions=_choice(advanced, "permissions", "preserve", ("preserve", "modebits", "cifsacl")),
    )
    return c.start_activity(
        "junction_add", filer.name, f"Adding junction {path} for core filer '{filer.name}'", c.timing.junction
    ).id


@rpc("vserver.removeJunction")
def remove_junction(ctx: Ctx, vserver: Any, path: Any) -> str:
    """vserver.removeJunction(vserver, junctionPath) => activity id. Cached changes are still written back."""
    c = ctx.cluster
    vs = _vserver(ctx, vserver)
    junction = vs.junctions.pop(text(path, "junctionPath"), None)
    if junction is None:
        raise no_junction(str(path))
    return c.start_activity(
        "junction_remove",
        junction.filer,
        f"Removing junction {path} of core filer '{junction.filer}'",
        c.timing.junction,
    ).id


# -- export policies --------------------------------------------------------------------------------------


@rpc("nfs.listPolicies", readonly=True)
def list_policies(ctx: Ctx, vserver: Any) -> list[str]:
    """nfs.listPolicies(vserver) => [name, ...]"""
    return sorted(_vserver(ctx, vserver).policies)


@rpc("nfs.addPolicy")
def add_policy(ctx: Ctx, vserver: Any, name: Any) -> str:
    """nfs.addPolicy(vserver, name) => 'success'"""
    vs, name = _vserver(ctx, vserver), text(name, "name")
    if name in vs.policies:
        raise Fault(EEXIST, f"Policy '{name}' already exists on vserver '{vs.name}'")
    vs.policies[name] = []
    return "success"


@rpc("nfs.removePolicy")
def remove_policy(ctx: Ctx, vserver: Any, name: Any) -> str:
    """nfs.removePolicy(vserver, name) => 'success'; refused while a junction uses it."""
    vs = _vserver(ctx, vserver)
    name = _policy_name(vs, name)
    if name == "default":
        raise Fault(ENOTALLOWED, "The default policy cannot be removed")
    if any(j.policy == name for j in vs.junctions.values()):
        raise Fault(EINUSE, f"Policy '{name}' is used by a junction")
    del vs.policies[name]
    return "success"


@rpc("nfs.listRules", readonly=True)
def list_rules(ctx: Ctx, vserver: Any, policy: Any, client_filter: Any = "") -> list[dict[str, Any]]:
    """nfs.listRules(vserver, policy, clientFilter) => [{id, policy, scope, filter, permission, squash,
    anonuid, suid, subdir, authSys, authKrb}]"""
    vs = _vserver(ctx, vserver)
    name = _policy_name(vs, policy)
    rules = [{**r, "policy": name} for r in vs.policies[name]]
    return [r for r in rules if not client_filter or r["filter"] == client_filter]


@rpc("nfs.addRule")
def add_rule(  # noqa: PLR0917  # the XML-RPC method's positional signature
    ctx: Ctx,
    vserver: Any,
    policy: Any,
    scope: Any,
    client_filter: Any,
    permission: Any,
    squash: Any,
    anonuid: Any,
    suid: Any,
    subdir: Any,
    options: Any = None,
) -> str:
    """nfs.addRule(vserver, policy, scope, filter, permission, squash, anonuid, suid, subdir,
    {authSys, authKrb}) => 'success'"""
    vs = _vserver(ctx, vserver)
    name = _policy_name(vs, policy)
    for value, what, allowed in (
        (scope, "scope", SCOPES),
        (permission, "permission", ACCESS),
        (squash, "squash", SQUASH),
    ):
        if value not in allowed:
            raise Fault(EINVAL, f"Invalid {what} '{value}': expected one of {', '.join(allowed)}")
    if scope == "network":
        try:
            ipaddress.ip_network(str(client_filter), strict=False)
        except ValueError:
            raise Fault(EINVAL, f"Invalid network filter '{client_filter}'") from None
    auth = struct(options or {}, "options")
    rule = {
        "id": ctx.cluster.state.next_rule,
        "scope": scope,
        "filter": str(client_filter or ""),
        "permission": permission,
        "squash": squash,
        "anonuid": str(anonuid),
        "suid": flag(suid, "suid"),
        "subdir": str(subdir or ""),
        "authSys": flag(auth.get("authSys", True), "authSys"),
        "authKrb": flag(auth.get("authKrb", False), "authKrb"),
    }
    ctx.cluster.state.next_rule += 1
    vs.policies[name].append(rule)
    return "success"


@rpc("nfs.removeRule")
def remove_rule(ctx: Ctx, rule_id: Any) -> str:
    """nfs.removeRule(id) => 'success'"""
    for vs in ctx.cluster.state.vservers.values():
        for rules in vs.policies.values():
            for rule in rules:
                if rule["id"] == rule_id:
                    rules.remove(rule)
                    return "success"
    raise Fault(ENOENT, f"Cannot find rule {rule_id}")


@rpc("nfs.listExports", readonly=True)
def list_exports(ctx: Ctx, vserver: Any, filer: Any = None) -> list[dict[str, str]]:
    """nfs.listExports(vserver, [filerName]) => [{policy, path, qtree}]"""
    _vserver(ctx, vserver)
    names = [text(filer, "filerName")] if filer else sorted(ctx.cluster.state.filers)
    return [{"policy": "default", "path": "/", "qtree": "", "corefiler": n} for n in names if ctx.cluster.filer(n)]
