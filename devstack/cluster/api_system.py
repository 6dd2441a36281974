"""system.* (introspection, API levels, int64 form), cluster.* activities, alerts, nodes, cache policies."""

from __future__ import annotations

from typing import Any

from devstack.cluster.codec import INT64_MODES
from devstack.cluster.engine import BUILTIN_POLICIES
from devstack.cluster.faults import EEXIST, EINVAL, ENOENT, Fault, not_supported
from devstack.cluster.registry import METHODS, Ctx, flag, rpc, struct, text, visible

API_LEVELS = ("maintenance", "preview")
NODES = ("node1", "node2", "node3")


@rpc("system.listMethods", readonly=True)
def list_methods(ctx: Ctx, module: Any = None) -> list[str]:
    """system.listMethods([module]) => [name, ...]; maintenance methods only once that API is enabled."""
    names = sorted(["system.login", "system.multicall"] + [m.name for m in visible(ctx.session)])
    return [n for n in names if not module or n.startswith(f"{module}.")]


@rpc("system.listModules", readonly=True)
def list_modules(ctx: Ctx) -> list[str]:
    """system.listModules() => [module, ...]"""
    return sorted({m.name.split(".")[0] for m in visible(ctx.session)})


@rpc("system.methodHelp", readonly=True)
def method_help(ctx: Ctx, name: Any) -> str:
    """system.methodHelp(name) => the method's documentation."""
    name = text(name, "name")
    if name == "system.login":
        return "system.login(user_base64, password_base64) => 'success' or the reason it failed"
    if name == "system.multicall":
        return "system.multicall([{methodName, params}, ...]) => [[result] | {faultCode, faultString}, ...]"
    method = METHODS.get(name)
    if method is None or method not in visible(ctx.session):
        raise not_supported(name)
    return method.help


@rpc("system.methodSignature", readonly=True)
def method_signature(ctx: Ctx, name: Any) -> str:
    """system.methodSignature(name) => 'signatures not supported' (see methodHelp)."""
    method_help(ctx, name)
    return "signatures not supported"


@rpc("system.enableAPI")
def enable_api(ctx: Ctx, level: Any) -> str:
    """system.enableAPI('maintenance' | 'preview') => 'success'; for this session only."""
    if level not in API_LEVELS:
        raise Fault(EINVAL, f"Unknown API level '{level}'")
    ctx.session.apis.add(level)
    return "success"


@rpc("system.disableAPI")
def disable_api(ctx: Ctx, level: Any) -> str:
    """system.disableAPI(level) => 'success'"""
    if level not in API_LEVELS:
        raise Fault(EINVAL, f"Unknown API level '{level}'")
    ctx.session.apis.discard(level)
    return "success"


@rpc("system.enabledAPIs", readonly=True)
def enabled_apis(ctx: Ctx) -> list[str]:
    """system.enabledAPIs() => [level, ...] enabled in this session."""
    return sorted(ctx.session.apis)


@rpc("system.setInt64Representation")
def set_int64(ctx: Ctx, mode: Any) -> str:
    """system.setInt64Representation('i8' | 'int' | 'i4' | 'double' | 'float' | 'string') => 'success'"""
    if mode not in INT64_MODES:
        raise Fault(EINVAL, f"Unknown int64 representation '{mode}'")
    ctx.session.int64 = mode
    return "success"


@rpc("system.logout")
def logout(ctx: Ctx) -> str:
    """system.logout() => 'success': ends this session."""
    ctx.cluster.sessions.pop(ctx.session.token, None)
    return "success"


# -- cluster, activities, alerts, nodes ---------------------------------------------------------------------


@rpc("cluster.get", readonly=True)
def cluster_get(ctx: Ctx) -> dict[str, Any]:
    """cluster.get() => {name, id, mgmtIP, activeImage, ...}"""
    c = ctx.cluster
    return {
        "name": c.name,
        "id": f"sim-{c.name}",
        "mgmtIP": {"IP": c.mgmt_ip, "netmask": "255.255.255.255"},
        "activeImage": "AvereOS_V5.3.sim",
        "location": c.region,
    }


@rpc("cluster.getActivity", readonly=True)
def get_activity(ctx: Ctx, activity_id: Any) -> dict[str, Any]:
    """cluster.getActivity(uuid) => {id, status, process, state, percent (while inprogress), ...}"""
    act = ctx.cluster.state.activities.get(text(activity_id, "uuid"))
    if act is None:
        raise Fault(ENOENT, f"Cannot find activity '{activity_id}'")
    return ctx.cluster.activity_json(act)


@rpc("cluster.listActivities", readonly=True)
def list_activities(ctx: Ctx) -> list[dict[str, Any]]:
    """cluster.listActivities() => [activity struct, ...]"""
    acts = sorted(ctx.cluster.state.activities.values(), key=lambda a: a.created)
    return [ctx.cluster.activity_json(a) for a in acts]


@rpc("alert.conditions", readonly=True)
def alert_conditions(ctx: Ctx) -> list[dict[str, str]]:
    """alert.conditions() => [{name, severity ('red' | 'yellow'), message}] for active conditions."""
    return ctx.cluster.alerts()


@rpc("cluster.maxActiveAlertSeverity", readonly=True)
def max_alert(ctx: Ctx) -> str:
    """cluster.maxActiveAlertSeverity() => 'green' | 'yellow' | 'red'"""
    severities = {a["severity"] for a in ctx.cluster.alerts()}
    return "red" if "red" in severities else "yellow" if "yellow" in severities else "green"


@rpc("node.list", readonly=True)
def node_list(ctx: Ctx) -> list[str]:
    """node.list() => [name, ...]"""
    return list(NODES)


@rpc("node.get", readonly=True)
def node_get(ctx: Ctx, names: Any) -> dict[str, Any]:
    """node.get(name | [names]) => {name: {name, state}}"""
    wanted = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in wanted if n not in NODES]
    if unknown:
        raise Fault(ENOENT, f"Cannot find node '{unknown[0]}'")
    return {n: {"name": n, "state": "up"} for n in wanted}


# -- cache policies -----------------------------------------------------------------------------------------


def _policy_json(name: str, data: dict[str, Any]) -> dict[str, Any]:
    check = data.get("checkAttributes") or {"checkAttrPeriod": 30, "checkDirAttrPeriod": 30}
    return {
        "name": name,
        "cacheMode": data["cacheMode"],
        "writebackDelay": int(data.get("writebackDelay", 0)),
        "checkAttributes": check,
        "localDirectories": bool(data.get("localDirectories", False)),
        "description": str(data.get("description", "")),
        "builtIn": name in BUILTIN_POLICIES,
    }


@rpc("cachePolicy.list", readonly=True)
def policy_list(ctx: Ctx, raw: Any = False) -> list[dict[str, Any]]:
    """cachePolicy.list([raw]) => [policy struct, ...]"""
    everything = {**BUILTIN_POLICIES, **ctx.cluster.state.cache_policies}
    return [_policy_json(n, d) for n, d in sorted(everything.items())]


@rpc("cachePolicy.get", readonly=True)
def policy_get(ctx: Ctx, name: Any, raw: Any = False) -> dict[str, Any]:
    """cachePolicy.get(name, [raw]) => {name, cacheMode, writebackDelay, checkAttributes, ...}"""
    data = ctx.cluster.policy(text(name, "name"))
    if data is None:
        raise Fault(ENOENT, f"Cannot find cache policy '{name}'")
    return _policy_json(name, data)


@rpc("cachePolicy.create")
def policy_create(  # noqa: PLR0917  # the XML-RPC method's positional signature
    ctx: Ctx,
    name: Any,
    cache_mode: Any = None,
    writeback_delay: Any = 0,
    check_attributes: Any = None,
    local_directories: Any = False,
    wt_schedule: Any = None,
    cache_quota: Any = "",
    description: Any = "",
    enable_nlm: Any = False,
) -> str:
    """cachePolicy.create(name, cacheMode, [writebackDelay], [checkAttributes], [localDirectories], ...)
    or cachePolicy.create({name, cacheMode, ...}) => 'success'"""
    if isinstance(name, dict):
        spec = name
        name, cache_mode = spec.get("name"), spec.get("cacheMode")
        writeback_delay = spec.get("writebackDelay", 0)
        check_attributes = spec.get("checkAttributes")
        local_directories = spec.get("localDirectories", False)
        description = spec.get("description", "")
    name = text(name, "name")
    if ctx.cluster.policy(name) is not None:
        raise Fault(EEXIST, f"Cache policy '{name}' already exists")
    if cache_mode not in ("read-write", "read"):
        raise Fault(EINVAL, f"Invalid cacheMode '{cache_mode}': expected read-write or read")
    if not isinstance(writeback_delay, int) or writeback_delay < 0:
        raise Fault(EINVAL, "writebackDelay must be a number of seconds")
    check = struct(check_attributes or {"checkAttrPeriod": 30, "checkDirAttrPeriod": 30}, "checkAttributes")
    ctx.cluster.state.cache_policies[name] = {
        "cacheMode": cache_mode,
        "writebackDelay": writeback_delay,
        "checkAttributes": check,
        "localDirectories": flag(local_directories, "localDirectories"),
        "description": str(description or ""),
    }
    return "success"


@rpc("cachePolicy.listFilersUsing", readonly=True)
def policy_users(ctx: Ctx, name: Any) -> list[str]:
    """cachePolicy.listFilersUsing(name) => [core filer, ...]"""
    return sorted(f.name for f in ctx.cluster.state.filers.values() if f.policy == name)
