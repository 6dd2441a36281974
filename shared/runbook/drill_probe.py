"""The drill's read-back: ask the operator's probe to mount the drill filer read-only and read a sample of files.

The contract (docs/drills.md): POST JSON to the plan's probe URL with the probe's key (a Key Vault secret) in the
`X-Vfxtdr-Probe-Key` header; the probe answers which files it read whole and how many bytes. Fail closed: an
answer that is not exactly that shape, a file outside the drill's junctions, a read error, or no file read at all
is a failed read-back; no probe configured is a skipped one, never a passed one.
"""

from __future__ import annotations

import json
import logging
import ssl
import urllib.error
import urllib.request
from dataclasses import replace
from typing import Any

from shared.avere.records import MountPoint
from shared.plan.drill import Probe
from shared.runbook import services
from shared.runbook.drill import load_record, write_record
from shared.runbook.drill_payloads import DrillRef, Readback
from shared.runbook.drill_steps import Drill, load

log = logging.getLogger("vfxtdr.drill")

PROTOCOL = 1
KEY_HEADER = "X-Vfxtdr-Probe-Key"
MAX_ANSWER = 4 * 1024 * 1024
MARGIN_SECONDS = 30.0  # the probe is told to stop this much before the app stops waiting
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


class ProbeUnreachable(RuntimeError):
    """The probe did not answer (connection, TLS, time-out): the activity fails and the host retries it."""


def readback(ref: DrillRef) -> Readback:
    drill = load(ref)
    plan, filer, rec = drill.where.plan, drill.where.filer, drill.record
    probe, sample = plan.drill_probe(filer)
    if probe is None:
        skipped = Readback(
            status=SKIPPED,
            detail="no drill.probe in the plan (for the filer or the plan): no file "
            "was read back, so the drill does not count as passed",
        )
        return _record(ref, drill, skipped)
    with services.avere_client(plan.dr_cluster(rec.target_cluster), plan.keyvault_url) as client:
        mounts = client.client_mount_addresses(rec.drill_filer)
    paths = [p for m in mounts for p in m.paths]
    outside = [p for p in paths if not p.startswith(rec.junction_prefix + "/")]
    if not paths or outside:
        misplaced = Readback(
            status=FAILED,
            detail=f"the drill filer's junctions are {paths or 'none'}: expected them all under {rec.junction_prefix}/",
        )
        return _record(ref, drill, misplaced)
    body = request_body(ref, rec.target_cluster, mounts, sample, probe)
    key = services.read_secret(plan.keyvault_url, probe.key_secret)
    status, answer = _post(probe, body, key)
    result = _record(ref, drill, _scrubbed(judge(status, answer, paths, sample), key))
    log.info(
        "drill %s of %s: read-back %s (%d/%d files, %d bytes)",
        ref.drill_id,
        ref.key,
        result.status,
        result.files_ok,
        result.files_checked,
        result.bytes_read,
    )
    return result


def _record(ref: DrillRef, drill: Drill, result: Readback) -> Readback:
    """The read-back into the drill record: what drill_finish decides `passed` from (never its input)."""
    with drill.where.catalog() as catalog:
        record = load_record(catalog, ref)
        record.readback = result.to_json()
        write_record(catalog, record)
    return result


def request_body(
    ref: DrillRef, cluster: str, mounts: tuple[MountPoint, ...], sample: int, probe: Probe
) -> dict[str, Any]:
    return {
        "version": PROTOCOL,
        "drill_id": ref.drill_id,
        "filer": ref.key,
        "cluster": cluster,
        "mounts": [{"vserver": m.vserver, "addresses": list(m.addresses), "paths": list(m.paths)} for m in mounts],
        "sample_size": sample,
        "read_only": True,
        "time_limit_seconds": max(10.0, probe.timeout_seconds - MARGIN_SECONDS),
    }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a place to send the key to: 3xx reaches the caller as an HTTP error."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _scrubbed(result: Readback, key: str) -> Readback:
    """The probe's own words (its error texts) are kept, never the key should it echo it."""
    return replace(
        result, detail=result.detail.replace(key, "***"), problems=tuple(p.replace(key, "***") for p in result.problems)
    )


def _post(probe: Probe, body: dict[str, Any], key: str) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=probe.ca_file) if probe.url.startswith("https:") else None
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=context))
    # The plan admits only https URLs (http on loopback): no file: or other scheme reaches urlopen.
    request = urllib.request.Request(  # noqa: S310  # the plan admits only https (http on loopback) probe URLs
        probe.url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", KEY_HEADER: key},
    )
    try:
        with opener.open(request, timeout=probe.timeout_seconds) as reply:
            return reply.status, reply.read(MAX_ANSWER + 1)
    except urllib.error.HTTPError as err:
        return err.code, err.read(2000)
    except (OSError, ValueError) as err:
        # No answer: the reason only (the URL is the plan's; the key is never part of an error).
        raise ProbeUnreachable(
            f"the drill probe did not answer: {type(err).__name__}: {str(err).replace(key, '***')[:300]}"
        ) from None


def _text(data: bytes) -> str:
    return data[:300].decode("utf-8", "replace").replace("\n", " ")


def judge(status: int, data: bytes, paths: list[str], sample: int) -> Readback:
    """The read-back an answer proves (pure): passed only when every file it names was read whole without error,
    at least one was, and each lies under a junction the drill asked about."""
    files, problem = _files(status, data, sample)
    if problem:
        return Readback(status=FAILED, detail=problem)
    ok = checked = total = 0
    problems: list[str] = []
    for item in files:
        bad, size = _file_problem(item, paths)
        checked += 1
        if bad:
            problems.append(bad)
        else:
            ok, total = ok + 1, total + size
    if not checked:
        return Readback(status=FAILED, detail="the probe read no file: nothing shows the copy is readable")
    detail = f"{ok} of {checked} files read whole" + (f"; {len(problems)} failed" if problems else "")
    return Readback(
        status=PASSED if ok == checked else FAILED,
        files_checked=checked,
        files_ok=ok,
        bytes_read=total,
        detail=detail,
        problems=tuple(p[:300] for p in problems[:10]),
    )


def _files(status: int, data: bytes, sample: int) -> tuple[list[Any], str]:
    """The answer's files list, or what is wrong with the answer."""
    if status != 200:
        return [], f"the probe answered HTTP {status}: {_text(data)}"
    if len(data) > MAX_ANSWER:
        return [], f"the probe's answer exceeds {MAX_ANSWER} bytes"
    try:
        answer = json.loads(data)
    except ValueError:
        return [], "the probe's answer is not JSON"
    files = answer.get("files") if isinstance(answer, dict) else None
    if not isinstance(files, list) or answer.get("version") != PROTOCOL:
        return [], f"the probe's answer is not a version {PROTOCOL} answer with a files list"
    if len(files) > sample:
        return [], f"the probe names {len(files)} files, more than the sample of {sample} it was asked for"
    return files, ""


def _file_problem(item: Any, paths: list[str]) -> tuple[str | None, int]:
    """(what is wrong with one file of the answer or None, its bytes)."""
    if not isinstance(item, dict) or not isinstance(item.get("path"), str):
        return "an entry of files is not an object with a path", 0
    path = item["path"]
    size = item.get("bytes")
    if not any(path == p or path.startswith(p.rstrip("/") + "/") for p in paths):
        return f"{path[:200]}: not under a junction of the drill", 0
    if item.get("status") != "ok":
        return f"{path[:200]}: {str(item.get('error') or item.get('status'))[:200]}", 0
    if type(size) is not int or size < 0:
        return f"{path[:200]}: no byte count", 0
    return None, size
