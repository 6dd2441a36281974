"""`python -m devstack region lose|restore REGION`: an outage of one region of the local stack, and its end.

Losing a region cuts the app off from every storage account of that region (the fault proxy resets each request
for it, as for a region that is gone, server-side copies reading it included) and stops every cluster simulator
in it. Restoring unblocks those accounts and starts those clusters again on their own ports and state, so the
plan's addresses still hold. The clusters reach Azurite directly: an account blocked for the app stays readable
to its own region's cluster, as in Azure. The demo loses the primary region with the same function.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.stack.lifecycle import (
    DEFAULT_STATE_DIR,
    is_ours,
    read_stack,
    restart_component,
    stop_component,
)


@dataclass(frozen=True)
class RegionChange:
    """What a region holds (account and cluster names) and which of them this call changed."""

    region: str
    lost: bool  # lose_region (accounts blocked, clusters stopped), else restore_region
    accounts: tuple[str, ...]
    clusters: tuple[str, ...]
    accounts_changed: tuple[str, ...] = ()
    clusters_changed: tuple[str, ...] = ()

    def changed(self) -> list[str]:
        """What this call did, in words."""
        done = ("blocked", "stopped") if self.lost else ("unblocked", "started")
        return [f"account {a} {done[0]}" for a in self.accounts_changed] + [
            f"cluster-{c} {done[1]}" for c in self.clusters_changed
        ]


# --- the fault proxy: accounts cut off from the app -------------------------------------------------------
def _account_name(stack: dict, account: str) -> str:
    """An account of the stack by role ("source", "dr") or by name; a ValueError names the known ones."""
    accounts = stack.get("storage", {}).get("accounts", {})
    if account in accounts:
        return str(accounts[account]["name"])
    if account in {a["name"] for a in accounts.values()}:
        return account
    known = ", ".join(f"{role}={a['name']}" for role, a in accounts.items())
    raise ValueError(f"unknown storage account {account!r}: the stack has {known}")


def _proxy(state_dir: Path) -> tuple[dict, Any]:
    """The running stack and a client for its fault proxy's control endpoint."""
    from devstack.faultproxy.proxy import FaultProxyClient

    stack = read_stack(Path(state_dir).resolve())
    if stack is None:
        raise ValueError(f"no stack in {state_dir} (run `python -m devstack up`)")
    entry = next((e for e in stack.get("processes", []) if e["name"] == "faultproxy"), None)
    if "faultproxy" not in stack or entry is None:
        raise ValueError(f"the stack in {state_dir} has no fault proxy; restart it (`down`, then `up`)")
    if not is_ours(entry):
        raise ValueError(f"the stack's fault proxy (pid {entry['pid']}) does not run; run `devstack up`")
    return stack, FaultProxyClient(stack["faultproxy"]["url"])


def block_account(state_dir: Path, account: str) -> str:
    """Cut the app off from a storage account (role or name): the proxy resets every request for it.

    Clusters reach Azurite directly and are not affected; Copy Blob reading from the account through the
    proxy fails, as a copy from a lost region does. Returns the account name.
    """
    stack, proxy = _proxy(state_dir)
    name = _account_name(stack, account)
    proxy.block_account(name)
    return name


def unblock_account(state_dir: Path, account: str) -> bool:
    """Undo block_account; False when the account was not blocked."""
    stack, proxy = _proxy(state_dir)
    return bool(proxy.unblock_account(_account_name(stack, account)))


def blocked_accounts(state_dir: Path) -> list[str]:
    """Account names the fault proxy blocks now."""
    _, proxy = _proxy(state_dir)
    return sorted(str(r["account"]) for r in proxy.rules() if r.get("action") == "block" and r.get("account"))


# --- regions ---------------------------------------------------------------------------------------------
def regions(stack: dict) -> dict[str, tuple[list[str], list[str]]]:
    """Per region of the stack: (its storage account names, its cluster names)."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    for account in stack.get("storage", {}).get("accounts", {}).values():
        out.setdefault(account["region"], ([], []))[0].append(account["name"])
    for name, cluster in stack.get("clusters", {}).items():
        out.setdefault(cluster["region"], ([], []))[1].append(name)
    return out


def _region(state_dir: Path, region: str) -> tuple[dict, list[str], list[str]]:
    """The running stack and the region's accounts and clusters; a ValueError names the known regions."""
    stack, _ = _proxy(state_dir)  # also: a stack runs, with its proxy
    found = regions(stack)
    if region not in found:
        raise ValueError(f"unknown region {region!r}: the stack has {', '.join(sorted(found)) or 'none'}")
    accounts, clusters = found[region]
    return stack, accounts, clusters


def lose_region(state_dir: Path, region: str) -> RegionChange:
    """The region is gone: its accounts unreachable to the app, its clusters stopped. Idempotent."""
    _, accounts, clusters = _region(state_dir, region)
    already = set(blocked_accounts(state_dir))
    blocked = [block_account(state_dir, a) for a in accounts if a not in already]
    stopped = [c for c in clusters if stop_component(state_dir, f"cluster-{c}")]
    return RegionChange(region, True, tuple(accounts), tuple(clusters), tuple(blocked), tuple(stopped))


def restore_region(state_dir: Path, region: str) -> RegionChange:
    """The region is back: its accounts reachable again, its clusters running on their ports and state."""
    from devstack.cluster.stack import restart_cluster

    _, accounts, clusters = _region(state_dir, region)
    unblocked = [a for a in accounts if unblock_account(state_dir, a)]
    started = [
        c
        for c in clusters
        if restart_component(state_dir, f"cluster-{c}", lambda stack, name=c: restart_cluster(state_dir, stack, name))
    ]
    return RegionChange(region, False, tuple(accounts), tuple(clusters), tuple(unblocked), tuple(started))


# --- command line ----------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    parser.add_argument("action", choices=("lose", "restore"), help="lose the region, or restore it")
    parser.add_argument("region", help="a region of the stack, e.g. westus2 (primary) or eastus2 (DR)")
    parser.add_argument(
        "--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="the stack's state dir (default: .devstack)"
    )


def main(args: argparse.Namespace) -> int:
    act = lose_region if args.action == "lose" else restore_region
    try:
        change = act(Path(args.state_dir), args.region)
    except ValueError as err:
        print(f"region {args.action} failed: {err}", file=sys.stderr)
        return 2
    what = "lost" if args.action == "lose" else "restored"
    print(
        f"region {change.region} {what}: accounts {', '.join(change.accounts) or 'none'}; clusters "
        f"{', '.join(change.clusters) or 'none'}"
    )
    for line in change.changed() or [f"nothing to change: it already was {what}"]:
        print(f"  {line}")
    return 0
