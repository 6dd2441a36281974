"""Offline checkov gate for infra/: fails on any Bicep parse error and on every finding not in the allowlist."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INFRA = Path(__file__).resolve().parent.parent
ALLOWLIST = INFRA / "checkov" / "allowlist.json"
DEFAULT_CHECKOV = INFRA.parent / ".venv-checkov" / "bin" / "checkov"

_CHECK_ID = re.compile(r"CKV2?_AZURE_\d+")
_ENTRY_KEYS = {"check_id", "file", "resource", "reason"}
_MIN_REASON = 40  # a reason says why the finding is accepted, not just "false positive"


@dataclass(frozen=True)
class Allowed:
    """One accepted finding: a check on one resource of one file, and why it is accepted."""

    check_id: str
    file: str  # relative to infra/, e.g. modules/backup-account.bicep
    resource: str  # checkov's resource id: <type>.<symbolic name>
    reason: str

    @property
    def key(self) -> tuple[str, str, str]:
        return self.check_id, self.file, self.resource


@dataclass
class Verdict:
    """What one scan found, and every reason it fails the build."""

    passed: int = 0
    failed: int = 0
    allowlisted: int = 0
    skipped: int = 0
    parsing_errors: int = 0
    resources: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self, elapsed_s: float | None = None) -> str:
        took = f", {elapsed_s:.1f} s" if elapsed_s is not None else ""
        return (
            f"checkov bicep: {self.passed} passed, {self.failed} failed ({self.allowlisted} allowlisted, "
            f"{self.failed - self.allowlisted} not), {self.skipped} skipped, {self.parsing_errors} parsing "
            f"errors, {self.resources} resources{took}"
        )


def load_allowlist(path: Path = ALLOWLIST) -> list[Allowed]:
    """Read and validate the allowlist; raises ValueError naming every malformed entry."""
    data = json.loads(path.read_text())
    entries = data.get("allowlist") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected an object with an 'allowlist' array")
    problems: list[str] = []
    allowed: list[Allowed] = []
    seen: set[tuple[str, str, str]] = set()
    for i, entry in enumerate(entries):
        where = f"{path.name}[{i}]"
        if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
            problems.append(f"{where}: needs exactly the keys {sorted(_ENTRY_KEYS)}")
            continue
        if not all(isinstance(entry[k], str) for k in _ENTRY_KEYS):
            problems.append(f"{where}: every value is a string")
            continue
        item = Allowed(entry["check_id"], entry["file"], entry["resource"], entry["reason"].strip())
        if not _CHECK_ID.fullmatch(item.check_id):
            problems.append(f"{where}: check_id {item.check_id!r} is not an Azure checkov id")
        if item.file.startswith("/") or not item.file.endswith(".bicep"):
            problems.append(f"{where}: file {item.file!r} is a .bicep path relative to infra/")
        if "." not in item.resource:
            problems.append(f"{where}: resource {item.resource!r} is checkov's <type>.<name>")
        if len(item.reason) < _MIN_REASON:
            problems.append(f"{where}: the reason must say why the finding is accepted")
        if item.key in seen:
            problems.append(f"{where}: duplicate of an earlier entry")
        seen.add(item.key)
        allowed.append(item)
    if problems:
        raise ValueError("; ".join(problems))
    return allowed


def _bicep_report(raw: Any) -> dict[str, Any] | str:
    """checkov's JSON is one report per framework (a list when several) or, when nothing was scanned, only a bare
    summary. Returns the Bicep report or a problem."""
    reports = raw if isinstance(raw, list) else [raw]
    for report in reports:
        if isinstance(report, dict) and report.get("check_type") == "bicep":
            return report
    return "checkov returned no Bicep report: nothing was scanned (wrong directory or framework?)"


def _relative(file_path: str) -> str:
    return file_path.replace("\\", "/").lstrip("/")


def evaluate(raw: Any, allowlist: list[Allowed]) -> Verdict:
    """Apply the gate: no parse error, something scanned, every failed check allowlisted, no stale entry."""
    verdict = Verdict()
    report = _bicep_report(raw)
    if isinstance(report, str):
        verdict.problems.append(report)
        return verdict
    summary = report.get("summary") or {}
    results = report.get("results") or {}
    verdict.passed = int(summary.get("passed", 0))
    verdict.skipped = int(summary.get("skipped", 0))
    verdict.resources = int(summary.get("resource_count", 0))
    # checkov's exit code stays 0 when a file does not parse: only the report tells
    parse_failures = [_relative(str(p)) for p in results.get("parsing_errors") or []]
    verdict.parsing_errors = max(int(summary.get("parsing_errors", 0)), len(parse_failures))
    if verdict.parsing_errors:
        names = ", ".join(parse_failures) or "unnamed files"
        verdict.problems.append(f"{verdict.parsing_errors} Bicep file(s) did not parse: {names}")
    if verdict.resources == 0:
        verdict.problems.append("checkov found no resources to check")
    failed = results.get("failed_checks") or []
    verdict.failed = len(failed)
    allowed = {a.key: a for a in allowlist}
    matched: set[tuple[str, str, str]] = set()
    for check in failed:
        key = (str(check.get("check_id")), _relative(str(check.get("file_path", ""))), str(check.get("resource")))
        if key in allowed:
            matched.add(key)
            verdict.allowlisted += 1
        else:
            verdict.problems.append(
                f"{key[0]} failed on {key[2]} in {key[1]}: {check.get('check_name', '')} "
                "(fix it, or allowlist it with a reason in infra/checkov/allowlist.json)"
            )
    for key in sorted(set(allowed) - matched):
        if any(("/" + failure).endswith("/" + key[1]) for failure in parse_failures):
            continue  # the file did not parse: its findings are unknown, not gone
        verdict.problems.append(
            f"stale allowlist entry {key[0]} {key[2]} in {key[1]}: the check no longer fails there; remove the entry"
        )
    return verdict


def run_checkov(checkov: Path, directory: Path, timeout_s: float = 600) -> tuple[Any, float]:
    """Run checkov on the Bicep files of a directory, fully offline; returns its JSON and the wall time."""
    command = [
        str(checkov),
        "--directory",
        str(directory),
        "--framework",
        "bicep",
        "--skip-download",
        "--output",
        "json",
    ]
    # no update check against PyPI either (checkov's banner does one on import unless told not to)
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False, env=env)  # noqa: S603
    elapsed = time.monotonic() - started
    # 0: nothing failed, 1: checks failed; anything else is checkov itself failing
    if done.returncode not in (0, 1):
        raise RuntimeError(f"checkov exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    try:
        return json.loads(done.stdout), elapsed
    except json.JSONDecodeError as err:
        raise RuntimeError(f"checkov printed no JSON ({err}): {done.stdout[:500]!r} {done.stderr[-1000:]!r}") from err


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--checkov",
        type=Path,
        default=DEFAULT_CHECKOV,
        help="checkov executable (make checkov installs it into .venv-checkov)",
    )
    parser.add_argument("--directory", type=Path, default=INFRA, help="directory to scan (default: infra/)")
    parser.add_argument("--allowlist", type=Path, default=ALLOWLIST)
    parser.add_argument("--timeout", type=float, default=600, help="seconds before checkov is stopped")
    parser.add_argument("--report", type=Path, help="also write checkov's JSON here")
    args = parser.parse_args(argv)
    if not args.checkov.exists():
        print(f"{args.checkov} does not exist: run `make checkov` (it creates .venv-checkov)", file=sys.stderr)
        return 2
    try:
        allowlist = load_allowlist(args.allowlist)
        raw, elapsed = run_checkov(args.checkov, args.directory, args.timeout)
    except (ValueError, RuntimeError, subprocess.TimeoutExpired) as err:
        print(f"checkov gate: {err}", file=sys.stderr)
        return 2
    if args.report:
        args.report.write_text(json.dumps(raw, indent=1))
    verdict = evaluate(raw, allowlist)
    print(verdict.summary(elapsed))
    for problem in verdict.problems:
        print(f"  FAIL {problem}", file=sys.stderr)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
