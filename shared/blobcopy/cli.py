"""`python -m shared.blobcopy`: copy one container to another server-side, verified, from the command line.

Containers are given as a container URL with a SAS (`https://acct.blob.core.windows.net/name?sv=...`), as a
connection string with `Container=name` (and, for --catalog, optionally `Prefix=path`), or as `env:VAR` to
read either form from an environment variable (keeps keys and SAS out of the process list).

Exit codes: 0 verified; 1 copied but not verified (failures/mismatches); 2 bad arguments or an unreachable
account (nothing written); 3 verified, but mirror deletes exceed the guard (re-run with --approve-deletes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from azure.core.exceptions import AzureError, ResourceNotFoundError

from shared.azure.storage import (
    RetrySettings,
    StorageAccount,
    StorageConfigError,
    parse_connection_string,
    split_container_url,
)
from shared.blobcopy.driver import copy_container_async
from shared.blobcopy.errors import CopyError, CopyInputError, describe_http_error, redact
from shared.blobcopy.manifest import latest_manifest
from shared.blobcopy.model import MODES, AccountRef, CatalogRef, ContainerRef, CopyJob, Guard
from shared.blobcopy.session import CopyEnv
from shared.blobcopy.state import BlobStateStore, MemoryStateStore
from shared.blobcopy.steps import apply_deletes

EXIT_OK, EXIT_UNVERIFIED, EXIT_BAD, EXIT_APPROVAL = 0, 1, 2, 3
PREFLIGHT_RETRY = RetrySettings(total=2, initial_backoff=0.2, max_backoff=1.0, connection_timeout=5, read_timeout=15)


class _Parser(argparse.ArgumentParser):
    err: TextIO = sys.stderr

    def error(self, message: str) -> Any:  # one line, exit 2 (argparse's default prints usage too)
        self.err.write(f"blobcopy: error: {message}\n")
        raise SystemExit(EXIT_BAD)


def build_parser(err: TextIO | None = None) -> argparse.ArgumentParser:
    p = _Parser(prog="python -m shared.blobcopy", description=__doc__.split("\n")[0])
    p.err = err or sys.stderr
    p.add_argument("--source", required=True, help="source container (URL with SAS, connection string, env:VAR)")
    p.add_argument("--dest", required=True, help="destination container (same forms)")
    p.add_argument("--catalog", help="catalog container[/prefix] for state and manifests (same forms)")
    p.add_argument("--mode", choices=MODES, default="incremental")
    p.add_argument("--engine", choices=("copy", "blocks"), default="copy")
    p.add_argument("--json", action="store_true", help="print the final report as one JSON object")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--page-size", type=int, default=5000)
    p.add_argument("--parallel-pages", type=int, default=4)
    p.add_argument("--poll-interval", type=float, default=2.0)
    p.add_argument(
        "--pending-limit", type=float, default=3600.0, help="seconds before a pending copy is aborted and restarted"
    )
    p.add_argument("--guard-fraction", type=float, default=0.10)
    p.add_argument("--guard-min", type=int, default=100)
    p.add_argument("--approve-deletes", action="store_true", help="apply mirror deletes above the guard")
    p.add_argument("--job-id", help="job id (default: cli-<UTC timestamp>)")
    p.add_argument("--previous-manifest", help="manifest to decide against (default: newest for --dest)")
    return p


def resolve_spec(spec: str, what: str) -> tuple[StorageAccount, str, str]:
    """(account, container, prefix) from a container URL with SAS, a connection string, or env:VAR."""
    if spec.startswith("env:"):
        value = os.environ.get(spec[4:])
        if not value:
            raise CopyInputError(f"--{what}: environment variable {spec[4:]!r} is not set")
        spec = value
    try:
        if spec.startswith(("http://", "https://")):
            return split_container_url(spec)
        fields = parse_connection_string(spec)
        container = fields.pop("container", "")
        prefix = fields.pop("prefix", "")
        if not container:
            raise CopyInputError(f"--{what}: the connection string needs Container=<name>")
        rest = ";".join(f"{k}={v}" for k, v in fields.items())
        return StorageAccount.from_connection_string(rest), container, prefix
    except StorageConfigError as exc:
        raise CopyInputError(f"--{what}: {exc}") from None


async def _preflight(account: StorageAccount, container: str, what: str, must_exist: bool) -> None:
    """Reach the container before anything is written (a listing: what a container SAS surely allows);
    a missing dest/catalog container is created later."""
    try:
        async with account.with_retry(PREFLIGHT_RETRY).async_service_client(8) as client:
            pager = client.get_container_client(container).list_blobs(results_per_page=1).by_page()
            async for _ in await pager.__anext__():
                break
    except StopAsyncIteration:
        return
    except ResourceNotFoundError:
        if not must_exist and account.auth_kind != "sas":
            return
        raise CopyInputError(f"{what} container {container!r} does not exist in {account.name!r}") from None
    except AzureError as exc:
        raise CopyInputError(f"{what} account {account.name!r} is not reachable: {describe_http_error(exc)}") from None


def _progress_printer(stream: TextIO) -> Any:
    tty = stream.isatty()
    totals = {"planned": 0, "listed": 0, "verified": 0, "copied": 0}

    def show(event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "planned":
            totals["planned"] += 1
            totals["listed"] += event["listed"]
        elif kind == "verified":
            totals["verified"] += 1
        if kind in ("planned", "verified"):
            line = f"pages {totals['verified']}/{totals['planned']} verified, {totals['listed']} blobs listed"
            if tty:
                bar = "#" * int(20 * totals["verified"] / max(1, totals["planned"]))
                stream.write(f"\r[{bar:<20}] {line}")
            else:
                stream.write(line + "\n")
            stream.flush()
        if kind == "finished" and tty:
            stream.write("\n")

    return show


async def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    src_acct, src_container, _ = resolve_spec(args.source, "source")
    dst_acct, dst_container, _ = resolve_spec(args.dest, "dest")
    cat = resolve_spec(args.catalog, "catalog") if args.catalog else None
    if src_acct.auth_kind == "sas" and not set("rl") <= set(src_acct.sas_permissions() or ""):
        raise CopyInputError("--source: the SAS needs read (r) and list (l) permissions")
    accounts = {"source": src_acct, "dest": dst_acct} | ({"catalog": cat[0]} if cat else {})

    def ref(role: str) -> AccountRef:
        # The role rides in `credential` so two containers of one account may carry different SASes.
        return AccountRef(accounts[role].name, accounts[role].blob_endpoint, credential=role)

    job = CopyJob(
        job_id=args.job_id or "cli-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ"),
        source=ContainerRef(ref("source"), src_container),
        dest=ContainerRef(ref("dest"), dst_container),
        catalog=CatalogRef(ref("catalog"), cat[1], cat[2]) if cat else None,
        mode=args.mode,
        engine=args.engine,
        concurrency=args.concurrency,
        page_size=args.page_size,
        pending_limit_seconds=args.pending_limit,
        guard=Guard(args.guard_fraction, args.guard_min),
        previous_manifest=args.previous_manifest,
    ).validate()
    await _preflight(src_acct, src_container, "source", must_exist=True)
    await _preflight(dst_acct, dst_container, "dest", must_exist=False)
    if cat:
        await _preflight(cat[0], cat[1], "catalog", must_exist=False)

    def connect(account_ref: AccountRef) -> StorageAccount:
        return accounts[account_ref.credential or ""]

    env = CopyEnv(connect=connect, store=None if cat else MemoryStateStore())
    if cat and job.previous_manifest is None and job.mode != "full":
        async with cat[0].async_service_client(8) as client:
            store = BlobStateStore(client.get_container_client(cat[1]), cat[2])
            previous = await latest_manifest(store, f"{dst_acct.name}/{dst_container}")
        if previous:
            job = CopyJob.from_json({**job.to_json(), "previous_manifest": previous}).validate()
    started = time.monotonic()
    summary = await copy_container_async(
        job, env, poll_interval=args.poll_interval, parallel_pages=args.parallel_pages, progress=_progress_printer(err)
    )
    report: dict[str, Any] = summary.to_json()
    if not cat:
        report["manifest_state"] = None  # without --catalog nothing outlives the run
    code = EXIT_OK if summary.verified else EXIT_UNVERIFIED
    if summary.needs_approval:
        if args.approve_deletes and summary.approval_ref:
            applied = await apply_deletes(job, summary.approval_ref, env)
            report["deleted"] = applied.deleted
            report["deletes_changed"] = applied.changed
        else:
            code = EXIT_APPROVAL
    report["elapsed_s"] = round(time.monotonic() - started, 3)
    report["exit_code"] = code
    _print_report(report, args.json, out)
    return code


def _print_report(report: dict[str, Any], as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps(report, sort_keys=True) + "\n")
        return
    keys = (
        "listed",
        "copied",
        "skipped",
        "deleted",
        "failed",
        "source_changed",
        "bytes_copied",
        "verified",
        "mismatches",
        "needs_approval",
        "manifest_state",
        "elapsed_s",
    )
    out.write("  ".join(f"{k}={report.get(k)}" for k in keys) + "\n")


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        args = build_parser(err).parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return asyncio.run(run(args, out, err))
    except CopyInputError as exc:
        err.write(f"blobcopy: error: {redact(exc)}\n")
        return EXIT_BAD
    except (CopyError, AzureError) as exc:
        text = describe_http_error(exc) if isinstance(exc, AzureError) else str(exc)
        err.write(f"blobcopy: failed: {redact(text)}\n")
        return EXIT_UNVERIFIED
