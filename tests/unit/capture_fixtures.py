"""How the stored-format fixtures under tests/unit/*/data/ were made (run once, before the one record codec).

The files named after a commit hold what that commit's code wrote, so every later codec must keep reading them:

* `catalog/data/{state-*,backups/*,records/*}.json` and `blobcopy/data/copy/**` were written by commit 2f032a3
  on the local stack: `python -m devstack up`, `run backup primary demo-filer` twice, the catalog marks through
  `shared.runbook.record` (mark_removed, mark_attention, clear_removed), then `run failover`; then the catalog
  container's blobs were copied byte for byte (summaries from blob metadata in `metadata.json`).
* `runbook/data/history-2f032a3.json`: from that stack's Durable history, the first `TaskCompleted` (and
  sub-orchestration result) of each activity with its input, and each orchestration's `ExecutionStarted` input.
* `runbook/data/history-before-move-6233bc6.json`: those results rebuilt through the classes of commit 6233bc6^
  (before the move into packages) and encoded by the Durable codec then: envelopes name `shared.workflow`, ...
* `*/data/built-2f032a3.*` and every `expected-2f032a3.json`: this script, run at commit 2f032a3. It builds
  records with every optional field set through that commit's classes, and stores, for every fixture, the
  repr of what that commit's code decoded it into: a later codec must decode each file into the same values.

Usage (from the repository root, at the commit that writes the format being captured):
    python -m tests.unit.capture_fixtures
Run on later code it would overwrite the `built-*` files with that code's format: capture a new format under
new names instead. Since inputs became references (input format 2) the input classes `payloads()` builds are
gone, so as a whole it runs only at 2f032a3; it stays as the record of how the files were made. The tests import
`_activity_inputs` (activity name -> the payload class its parameter is annotated with today) from here.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from shared.avere.records import (
    CachePolicyRecord,
    ExportPolicyRecord,
    ExportRule,
    FilerRecord,
    JunctionRecord,
    MountPoint,
)
from shared.azure.keyvault import SecretRef
from shared.blobcopy import model
from shared.blobcopy.entries import BlobEntry
from shared.blobcopy.manifest import ManifestEntry, ManifestIndex
from shared.blobcopy.pages import BlobTask, PageState
from shared.blobcopy.state import pack, unpack
from shared.catalog.generations import attach_generation, begin_writing, finish_writing
from shared.catalog.store import FilerState
from shared.plan.load import parse_plan
from shared.runbook import failover_payloads as fp
from shared.runbook import payloads as wp

HERE = Path(__file__).parent
COMMIT = "2f032a3"
KEY = SecretRef("avere-key-primary-demo-filer", "0123456789abcdef0123456789abcdef")


def _plan() -> Any:
    import copy

    from shared.plan.cli import EXAMPLE

    return parse_plan(copy.deepcopy(EXAMPLE))


def record() -> FilerRecord:
    rule = ExportRule(
        scope="network",
        filter="10.0.0.0/8",
        permission="rw",
        squash="root_squash",
        anonuid="-2",
        suid=False,
        subdir="",
        auth_sys=True,
        auth_krb=False,
    )
    return FilerRecord(
        name="projects",
        cloud_type="azure",
        bucket="vfxtsource/projects",
        server_name="vfxtsource.blob.core",
        credential_name="cred",
        credential_type="azure-storage",
        crypto_mode="CBC-AES-256-HMAC-SHA-512",
        compress_mode="LZ4",
        ssl_verify_mode="DISABLED",
        https="yes",
        port="443",
        proxy="",
        nearline="no",
        network="",
        cache_policy=CachePolicyRecord(
            name="rw",
            cache_mode="read-write",
            writeback_delay=30,
            check_attr_period=30,
            check_dir_attr_period=30,
            local_directories=True,
            description="d",
            builtin=False,
        ),
        junctions=(
            JunctionRecord(
                vserver="vs1",
                path="/projects",
                export="/",
                subdir="sub",
                inherit_policy=False,
                policy="lab",
                access="posix",
                sharename="",
                sharesubdir="",
                permissions="UNIX",
            ),
        ),
        export_policies=(ExportPolicyRecord(vserver="vs1", name="lab", rules=(rule,)),),
        active_key_id="k1",
    )


def payloads() -> list[Any]:
    """One record of every payload class, every optional field set."""
    plan = _plan()
    ctx = wp.RunContext.from_plan(plan, "primary", "projects")
    job = model.CopyJob(
        job_id="b1-final",
        source=model.ContainerRef(model.AccountRef("src", "https://src.blob/", None), "projects"),
        dest=model.ContainerRef(model.AccountRef("bak", "https://bak.blob/", "bak-key"), "projects-a"),
        catalog=model.CatalogRef(model.AccountRef("bak", "https://bak.blob/", "bak-key"), "catalog", "filers/x/"),
        mode="mirror",
        engine="blocks",
        concurrency=8,
        page_size=100,
        pending_limit_seconds=60.0,
        sas_margin_seconds=30.0,
        max_attempts=2,
        step_budget_seconds=10.5,
        block_size=4 * 1024 * 1024,
        guard=model.Guard(0.25, 3),
        previous_manifest="b0-final",
        precopy_manifest="b1-pre",
    )
    cursor = model.PageCursor(page=3, token="tok", after="a/b")
    summary = model.Summary(
        job_id="b1-final",
        mode="mirror",
        pages=2,
        listed=10,
        copied=4,
        skipped=5,
        failed=0,
        source_changed=1,
        bytes_copied=400,
        verified=True,
        mismatches=0,
        deleted=1,
        delete_candidates=2,
        needs_approval=True,
        approval_ref="b1-final/approval",
        manifest_state="complete",
        guard_counted=2,
        guard_limit=3,
        guard_dest_total=12,
    )
    rotation = wp.KeyRotation(secret=KEY, key_id="k2", value_bytes=1234, near_limit=False)
    totals = wp.CopyTotals(
        pages=1,
        listed=2,
        to_copy=3,
        bytes_to_copy=4,
        copied=5,
        bytes_copied=6,
        skipped=7,
        failed=8,
        source_changed=9,
        verified_pages=10,
        pending=11,
    )
    target = wp.BackupTarget(
        backup_id="b1",
        generation="a",
        container="projects-a",
        previous_manifest="b0-final",
        precopy_job="b1-pre",
        final_job="b1-final",
    )
    mount = MountPoint(vserver="vs1", addresses=("10.0.0.5", "10.0.0.6"), paths=("/projects",))
    cluster = plan.dr_cluster("dr-east")
    choice = fp.FailoverChoice(
        context=ctx,
        target_cluster=cluster,
        backup_id="b1",
        generation="a",
        container="projects-a",
        manifest="b1-final",
        record=record(),
        key=KEY,
        extras=True,
    )
    result = fp.FailoverResult(
        cluster="primary",
        filer="projects",
        target_cluster="dr-east",
        backup_id="b1",
        container="projects-a",
        mounts=(mount,),
        junctions=("/projects",),
    )
    return [
        ctx,
        wp.FilerRef("primary", "projects"),
        wp.BackupRequest("primary", "projects", True, "schedule"),
        wp.Preflight(
            ok=False,
            findings=(wp.Finding("plan", True, "ok"), wp.Finding("cluster", False, "down")),
            context=ctx,
            encrypted=True,
        ),
        wp.BeginBackup(ctx, "b1", "backup-primary-projects", "2027-01-01T00:00:00Z"),
        target,
        rotation,
        wp.FilerStep(ctx, "b1", ("a1", "a2")),
        wp.StartedActivities(("a1",)),
        wp.FlushStatus(done=False, failed=False, percent=50, dirty_files=3, oldest_age=1.5, detail="flushing"),
        wp.RemoveStatus(done=True, failed=False, admin_state="removed", junctions=0, percent=100, detail="x"),
        wp.MarkRemoved(ctx, "b1", "i1", record(), KEY, "2027-01-01T00:00:00Z"),
        wp.AttachRequest(
            cluster=cluster,
            keyvault_url=ctx.keyvault_url,
            record=record(),
            bucket="bak/projects-a",
            server_name="bak.blob",
            credential="cred",
            key=KEY,
            storage_account="bak",
            storage_key_secret="bak-key",
            activity_ids=("a3",),
        ),
        wp.AttachStep(phase="done", done=True, activity_ids=("a4",), detail="ok", mounts=(mount,)),
        totals,
        wp.CopyInput(
            job=job,
            filer="primary/projects",
            cursor=cursor,
            totals=totals,
            executions=2,
            poll_interval_seconds=5.0,
            parallel_pages=2,
            pages_per_execution=9,
        ),
        wp.CopyPageRequest(job=job, page=3, cursor=cursor),
        wp.CopyReport(job=job, totals=totals, finished=True),
        wp.CopyProgress(totals=totals, finished=True, cancelled=True),
        wp.CopyOutcome(summary=summary, totals=totals, cancelled=False),
        wp.CopyFinish(job, "b1-final/approval"),
        wp.CompleteBackup(
            context=ctx,
            target=target,
            instance_id="i1",
            status="verified",
            started_at="s",
            finished_at="f",
            key=rotation,
            record=record(),
            summary=summary,
            precopy=summary,
            timings=(("flush_s", 1.5), ("offline_s", 3.0)),
            error="e",
        ),
        wp.Attention(ctx, "i1", "re-add failed", record()),
        wp.ReaddPlan(ctx, record(), KEY, True, False),
        fp.FailoverRequest("primary", "projects", "dr-east", "b1", False),
        choice,
        result,
        fp.MarkAttached(choice, "i2", "2027-01-02T00:00:00Z"),
        fp.VerifyBackupPage(choice, 2),
        fp.BackupPageCheck(page=2, checked=10, mismatches=1, missing=2, last=True, problems=("a: size",)),
        fp.RecordFailover(choice, result, "i2", "2027-01-02T00:00:00Z"),
        job,
        cursor,
        summary,
        model.PagePlan(
            job_id="b1-final",
            page=3,
            listed=10,
            to_copy=4,
            bytes_to_copy=40,
            skipped=6,
            delete_candidates=1,
            next_cursor=cursor,
            verified=True,
        ),
        model.PageProgress(page=3, done=True, pending=0, todo=0, copied=4, failed=0, source_changed=0, bytes=40),
        model.PageVerify(
            page=3,
            verified=False,
            checked=10,
            mismatches=1,
            bytes=40,
            failed=0,
            source_changed=0,
            problems=("x: content_md5",),
        ),
        model.DeleteReport(approval_ref="b1-final/approval", deleted=1, missing=1, changed=1),
        plan,
    ]


def page_state() -> PageState:
    """A page with a task in every status and every optional field, and delete candidates."""

    def entry(name: str, **kw: Any) -> BlobEntry:
        base = {
            "etag": "0x1",
            "size": 10,
            "md5": "AAAAAAAAAAAAAAAAAAAAAA==",
            "modified": 1.5e9,
            "props": ("text/plain", None, "en", None, "no-cache"),
            "metadata": {"AvereKind": "chunk"},
        }
        return BlobEntry(name=name, **{**base, **kw})

    tasks = [
        BlobTask(entry("a"), "skipped", written_at=1.6e9),
        BlobTask(entry("b", md5=None, blob_type="AppendBlob", tier="Cool", extra={"sealed": True}), "todo"),
        BlobTask(entry("c", size=0, metadata={}), "pending", copy_id="cid-1", started=1.7e9, tries=2),
        BlobTask(entry("d/ü #?"), "copied", copy_id="cid-2", started=1.7e9, tries=1, written_at=1.71e9),
        BlobTask(entry("e"), "failed", tries=3, error="CannotVerifyCopySource"),
        BlobTask(entry("f"), "source_changed", tries=1),
    ]
    return PageState(
        job_id="b1-final",
        page=3,
        cursor=model.PageCursor(3, "tok", "c"),
        next_cursor=model.PageCursor(4, "tok2", "f"),
        lower="c",
        upper="f",
        tasks=tasks,
        deletes=[["old", "0xO", False], ["pre", "0xP", True]],
        dest_counted=5,
        status="unverified",
        mismatches=1,
        problems=["e: content_md5"],
    )


def state() -> FilerState:
    """A state document with every mark and field set, and a key an older app version does not know."""
    s = FilerState.new(("projects-a", "projects-b"))
    begin_writing(s, "b1", "i1", "2027-01-01T00:00:00Z", "primary/projects")
    finish_writing(
        s,
        "a",
        "b1",
        "verified_with_extras",
        "2027-01-01T01:00:00Z",
        manifest="b1-final",
        key=KEY,
        filer="primary/projects",
    )
    begin_writing(s, "b2", "i2", "2027-01-02T00:00:00.250000Z", "primary/projects")
    attach_generation(
        s, "a", "b1", target="dr-east", instance_id="f1", at="2027-01-03T00:00:00Z", filer="primary/projects"
    )
    s.removed_by_app = {
        "since": "2027-01-02T00:10:00.123456Z",
        "instance_id": "i2",
        "backup_id": "b2",
        "record": FilerRecord.to_json(record()),
        "key": SecretRef.to_json(KEY),
    }
    s.needs_attention = {
        "since": "2027-01-02T00:20:00Z",
        "last": "2027-01-02T00:30:00Z",
        "instance_id": "i2",
        "error": "re-add failed",
        "record": FilerRecord.to_json(record()),
        "key": None,
    }
    s.failed_over = {"target_cluster": "dr-east", "backup_id": "b1", "at": "2027-01-03T00:00:00Z"}
    s.last_scheduled = "2027-01-02T00:00:00Z"
    s.extra = {"written_by_a_newer_version": {"x": 1}}
    return s


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, sort_keys=True, indent=1) + "\n")


def _decoded(kind: type, data: Any) -> str:
    return repr(kind.from_json(data))


def capture_catalog() -> None:
    data = HERE / "catalog" / "data"
    _write_json(data / f"built-{COMMIT}-state.json", state().to_json())
    (data / "records").mkdir(exist_ok=True)
    _write_json(data / "records" / f"built-{COMMIT}.json", FilerRecord.to_json(record()))
    expected: dict[str, str] = {}
    for path in sorted(data.glob("*.json")):
        if path.name.startswith("expected"):
            continue
        expected[path.name] = _decoded(FilerState, json.loads(path.read_text()))
    for path in sorted((data / "records").glob("*.json")):
        expected[f"records/{path.name}"] = _decoded(FilerRecord, json.loads(path.read_text()))
    for path in sorted((data / "backups").glob("*.json")):
        expected[f"backups/{path.name}"] = repr(json.loads(path.read_text()))
    _write_json(data / f"expected-{COMMIT}.json", expected)


def capture_blobcopy() -> None:
    data = HERE / "blobcopy" / "data"
    built = data / f"built-{COMMIT}"
    built.mkdir(exist_ok=True)
    page = page_state()
    (built / "page-state.json.gz").write_bytes(pack(page.to_json()))
    entries = [ManifestEntry.from_task(t) for t in page.tasks if t.status in ("copied", "skipped")]
    entries.append(
        ManifestEntry(
            name="z", etag="0xZ", size=1, md5=None, modified=1.0, digest="0" * 32, copied_at=None, copied=False
        )
    )
    (built / "manifest-page.json.gz").write_bytes(pack([e.to_json() for e in entries]))
    index = ManifestIndex(
        job_id="b1-final",
        state="partial",
        pages=[{"page": 0, "count": 3, "bytes": 30, "lower": None, "upper": "f", "excluded": 1}],
        count=3,
        bytes=30,
        created=1.7e9,
        info={"dest": "bak/projects-a", "mode": "mirror"},
    )
    (built / "manifest-index.json.gz").write_bytes(pack(index.to_json()))
    expected: dict[str, str] = {}
    for path in sorted(data.rglob("*.json.gz")):
        rel = str(path.relative_to(data))
        body = unpack(path.read_bytes())
        if "/state/" in rel or rel.endswith("page-state.json.gz"):
            expected[rel] = _decoded(PageState, body)
        elif "/manifest/page-" in rel or rel.endswith("manifest-page.json.gz"):
            expected[rel] = repr([ManifestEntry.from_json(e) for e in body])
        elif rel.endswith("index.json.gz"):
            expected[rel] = _decoded(ManifestIndex, body)
        elif rel.endswith("summary.json.gz"):
            expected[rel] = _decoded(model.Summary, body)
        elif rel.endswith("progress.json.gz"):
            expected[rel] = _decoded(wp.CopyTotals, body["totals"])
    _write_json(data / f"expected-{COMMIT}.json", expected)


def capture_payloads() -> None:
    data = HERE / "runbook" / "data"
    items = [
        {"class": f"{type(p).__module__}:{type(p).__qualname__}", "json": type(p).to_json(p), "repr": repr(p)}
        for p in payloads()
    ]
    _write_json(data / f"built-{COMMIT}-payloads.json", items)
    expected: dict[str, str] = {}
    inputs = _activity_inputs()
    for name in (f"history-{COMMIT}.json", "history-before-move-6233bc6.json"):
        for n, item in enumerate(json.loads((data / name).read_text())):
            if "Result" in item:
                envelope = json.loads(item["Result"])
                if isinstance(envelope, str):
                    envelope = json.loads(envelope)
                if isinstance(envelope, dict) and "__class__" in envelope:
                    kind = _class_named(envelope["__module__"], envelope["__class__"])
                    expected[f"{name}[{n}].Result"] = _decoded(kind, envelope["__data__"])
        for n, item in enumerate(json.loads((data / name).read_text())):
            kind = inputs.get(item.get("name") or item.get("orchestrator", ""))
            if item.get("Input") is not None and kind is not None:
                expected[f"{name}[{n}].Input"] = _decoded(kind, _plain_json(item["Input"]))
    _write_json(data / f"expected-{COMMIT}.json", expected)


def _plain_json(text: str) -> Any:
    """Inputs are plain JSON; a sub-orchestration's arrives as JSON text inside JSON."""
    value = json.loads(text)
    return json.loads(value) if isinstance(value, str) else value


def _activity_inputs() -> dict[str, type]:
    """Activity name -> the payload class its one parameter is annotated with (read from activities/*.py)."""
    import ast

    classes = {**vars(wp), **vars(fp)}
    out: dict[str, type] = {
        "copy_orchestrator": wp.CopyInput,
        "backup_orchestrator": wp.BackupRequest,
        "failover_orchestrator": fp.FailoverRequest,
        "readd_orchestrator": wp.FilerRef,
    }
    for path in (HERE.parent.parent / "activities").glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.decorator_list and len(node.args.args) == 1:
                note = node.args.args[0].annotation
                if isinstance(note, ast.Name) and isinstance(classes.get(note.id), type):
                    out[node.name] = classes[note.id]
    return out


def _class_named(module: str, name: str) -> type:
    moved = {"shared.workflow": wp, "shared.workflow_failover": fp}
    if module in moved:
        return getattr(moved[module], name)
    if module == "shared.avere_records":
        from shared.avere import records

        return getattr(records, name)
    import importlib

    return getattr(importlib.import_module(module), name)


if __name__ == "__main__":
    capture_catalog()
    capture_blobcopy()
    capture_payloads()
    print("fixtures written under", HERE)
    assert gzip  # the .json.gz files are gzip'd JSON (shared.blobcopy.state.pack)
