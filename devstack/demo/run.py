"""`python -m devstack demo`: the main job end to end on the local stack, from a clean state through a drill to a
failover."""

from __future__ import annotations

import argparse
import fcntl
import json
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from devstack.cluster.stack import DEMO
from devstack.cluster.waits import wait_activity
from devstack.demo.app import DemoApp, history_lines, run_seconds
from devstack.demo.checks import (
    DemoFailed,
    account_client,
    cluster_unreachable,
    describe_junctions,
    inventory,
    inventory_differences,
    junctions,
    policies,
    quiet,
    source_unreachable,
)
from devstack.demo.drill import rehearse
from devstack.demo.files import LATE_DELETE, FileSet, Vserver, compare, early_files, late_files, new_rng, setup_files
from devstack.durable.cli import running_serve
from devstack.stack.lifecycle import (
    DEFAULT_STATE_DIR,
    REPO_ROOT,
    STACK_FILE,
    read_stack,
    start_stack,
    stop_stack,
)
from devstack.stack.region import lose_region
from shared.avere.client import AvereClient
from shared.avere.records import FilerRecord

CLUSTER = "primary"
RUN_TIMEOUT = 600.0  # a run that takes longer than this on the local stack is stuck, not slow
STATE_MARKERS = (STACK_FILE, ".stack.lock", "durable.sqlite3")  # what makes a directory a devstack state dir


@dataclass
class StepResult:
    title: str
    ok: bool
    seconds: float
    note: str


class Demo:
    """The demo's steps in order; each prints what it does and raises DemoFailed when a check fails."""

    def __init__(self, state_dir: Path, out: Callable[[str], None] = print) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.out = out
        self.results: list[StepResult] = []
        self.figures: dict[str, Any] = {}
        self.stack: dict = {}
        self.app: DemoApp | None = None
        self.expected = FileSet()
        self.before: FilerRecord | None = None
        self.backup_output: dict = {}
        self.failover_output: dict = {}
        self._links: dict[str, dict] = {}
        self.steps: list[tuple[str, Callable[[], str]]] = [
            ("clean start", self.clean_start),
            ("write files through the primary cluster", self.write_files),
            ("back up through the app", self.backup),
            ("the backup run's history", self.show_history),
            ("check the filer and the backup", self.check_backup),
            ("rehearse: drill the backup on the DR cluster", self.drill),
            ("lose the primary region", self.lose_primary_region),
            ("fail over to the DR cluster", self.failover),
            ("read every file back through the DR cluster", self.read_back),
        ]

    def say(self, text: str) -> None:
        self.out(f"    {text}")

    # -- the run ------------------------------------------------------------------------------------------
    def run(self) -> int:
        started = time.monotonic()
        self.out(f"vFXT DR demo: backup, drill and failover on the local stack (state dir {self.state_dir})")
        try:
            for number, (title, step) in enumerate(self.steps, start=1):
                self.out(f"\n== {number}/{len(self.steps) + 1} {title} ==")
                mark = time.monotonic()
                try:
                    note = step()
                except Exception as err:  # a demo reports any failure, names the step, and stops
                    self.results.append(StepResult(title, False, time.monotonic() - mark, _brief(err)))
                    self.out(f"    FAILED: {_brief(err)}")
                    break
                self.results.append(StepResult(title, True, time.monotonic() - mark, note))
                self.out(f"    ok ({time.monotonic() - mark:.1f}s): {note}")
        finally:
            self.shut_down()
        self.figures["demo_s"] = round(time.monotonic() - started, 1)
        return self.summary()

    def shut_down(self) -> None:
        """Stop what the demo started (runner, stack processes); keep the state dir for inspection."""
        if self.app is not None:
            self.app.close()
            self.app = None
        if self.stack:
            stop_stack(self.state_dir)
            self.out(f"\nstopped the runner and the stack; the state is kept in {self.state_dir}")
            self.out(f"  inspect: python -m devstack up --state-dir {self.state_dir}   (then status --history)")
            self.out(
                f"           python -m devstack status {self._instance('backup')} --history "
                f"--state-dir {self.state_dir}"
            )

    def _instance(self, kind: str) -> str:
        return str(self._links.get(kind, {}).get("id", f"{kind}-{CLUSTER}-{DEMO}"))

    # -- 1 ------------------------------------------------------------------------------------------------
    def clean_start(self) -> str:
        removed = clean_state_dir(self.state_dir, self.say)
        mark = time.monotonic()
        self.stack = start_stack(self.state_dir)
        names = ", ".join(p["name"] for p in self.stack["processes"])
        self.say(f"stack up in {time.monotonic() - mark:.1f}s: {names}")
        return ("previous state removed; " if removed else "") + "fresh stack with the demo filer on primary"

    # -- 2 ------------------------------------------------------------------------------------------------
    def _client(self, cluster: str) -> AvereClient:
        info = self.stack["clusters"][cluster]
        return AvereClient(info["url"], info["user"], info["password"], ca_file=info["ca_cert"], retries=3, backoff=0.2)

    def write_files(self) -> str:
        rng = new_rng()
        with self._client(CLUSTER) as client:
            vserver = Vserver(client)
            self.expected = setup_files(vserver)
            dirty_setup = sum(1 for e in vserver.listing().values() if e.get("dirty"))
            self.say(f"{len(self.expected.files)} files were written by `up` ({dirty_setup} of them still dirty)")
            early = early_files(rng)
            vserver.write_all(early)
            self.expected.files.update(early)
            self.say(
                f"wrote {len(early)} files, {_mib(sum(map(len, early.values())))}: 2 large (several 1 MiB "
                "objects each), a 96-file tree, 10 levels deep, awkward names"
            )
            mark = time.monotonic()
            wait_activity(client, client.flush_core_filer(DEMO), timeout=RUN_TIMEOUT, poll=0.2)
            self.say(
                f"flushed them to the source container in {time.monotonic() - mark:.1f}s (as the cache's "
                "writeback would)"
            )
            late = late_files(rng)
            vserver.write_all(late)
            vserver.delete(LATE_DELETE)
            self.expected.files.update(late)
            del self.expected.files[LATE_DELETE]
            self.expected.deleted.add(LATE_DELETE)
            dirty = client.dirty_files(DEMO).num_files
            self.say(
                f"just before the backup: wrote {len(late)} files ({_mib(sum(map(len, late.values())))}, one "
                f"of them a change to a flushed file) and deleted {LATE_DELETE!r}: {dirty} dirty"
            )
            if dirty < len(late):
                raise DemoFailed(f"only {dirty} dirty files before the backup; expected at least {len(late)}")
            same = compare(vserver, self.expected)
            if not same.ok:
                raise DemoFailed(f"the primary does not read back what was written: {same.problems()}")
            self.before = client.capture_core_filer(DEMO)
        self.figures["files_written"] = len(early) + len(late)
        self.figures["bytes_expected"] = self.expected.total_bytes
        return (
            f"{len(self.expected.files)} files ({_mib(self.expected.total_bytes)}) read back from the "
            f"primary; {dirty} dirty; junctions {describe_junctions(self.before)}"
        )

    # -- 3 ------------------------------------------------------------------------------------------------
    def backup(self) -> str:
        self.app = DemoApp(self.state_dir, Path(self.stack["app"]["settings"])).start()
        self.say(f"the app runs in a local Durable runner at {self.app.base_url} (real clock)")
        links = self._links["backup"] = self.app.start_route(f"backups/{CLUSTER}/{DEMO}")
        self.say(f"POST /api/backups/{CLUSTER}/{DEMO} -> 202, instance {links['id']}")
        final = self.app.follow(links, self.say, RUN_TIMEOUT)
        out = self.backup_output = final.get("output") if isinstance(final.get("output"), dict) else {}
        if final.get("runtimeStatus") != "Completed" or out.get("status") != "verified":
            raise DemoFailed(
                f"the backup ended {final.get('runtimeStatus')}, status {out.get('status')}: "
                f"{str(out.get('error') or final.get('output'))[:600]}"
            )
        verified = (out.get("entry") or {}).get("verified") or {}
        self.figures.update(
            filer_offline_s=out.get("offline_s"),
            precopy_s=out.get("precopy_s"),
            backup_s=out.get("backup_s"),
            flush_s=out.get("flush_s"),
            backup_blobs=verified.get("blobs"),
            backup_container=out.get("container"),
        )
        return (
            f"verified into generation {out.get('generation')} ({out.get('container')}); delta "
            f"{out.get('copied')} blobs copied, {out.get('deleted')} deleted; filer offline "
            f"{out.get('offline_s')}s of {out.get('backup_s')}s, pre-copy {out.get('precopy_s')}s"
        )

    # -- 4 ------------------------------------------------------------------------------------------------
    def show_history(self) -> str:
        assert self.app is not None
        events = self.app.history(self._links["backup"])
        for line in history_lines(events):
            self.say(line)
        children = sum(
            1
            for e in events
            if e.get("FunctionName") == "copy_orchestrator"
            and str(e.get("EventType", "")).startswith("SubOrchestrationInstance")
        )
        activities = sum(1 for e in events if e.get("EventType") == "TaskCompleted")
        return (
            f"{len(events)} events: {activities} activities, {children} copy sub-orchestrations "
            f"(full JSON: python -m devstack status {self._links['backup']['id']} --history)"
        )

    # -- 5 ------------------------------------------------------------------------------------------------
    def check_backup(self) -> str:
        assert self.before is not None
        with self._client(CLUSTER) as client:
            state = client.filer_state(DEMO)
            after = client.capture_core_filer(DEMO)
        if state != "online":
            raise DemoFailed(f"the filer is {state!r} after the backup, not online")
        if junctions(after) != junctions(self.before) or policies(after) != policies(self.before):
            raise DemoFailed(
                f"junctions after the backup differ: before {describe_junctions(self.before)}; "
                f"after {describe_junctions(after)}"
            )
        self.say(f"filer {DEMO} is online with exactly its junctions: {describe_junctions(after)}")
        source_name = self.stack["demo_filer"]["bucket"].rpartition("/")[2]
        backup_name = str(self.backup_output.get("container"))
        source = inventory(account_client(self.stack, "source").get_container_client(source_name))
        backup = inventory(account_client(self.stack, "dr").get_container_client(backup_name))
        problems = inventory_differences(source, backup)
        if problems:
            raise DemoFailed(
                f"{backup_name} is not an exact copy of {source_name}: {len(problems)} problem(s): "
                + "; ".join(problems[:5])
            )
        size = sum(b.size for b in backup.values())
        self.figures["backup_blobs"], self.figures["backup_bytes"] = len(backup), size
        self.say(
            f"{backup_name} (DR account) holds exactly the {len(source)} blobs of {source_name}: names, sizes, "
            "MD5, content properties and metadata"
        )
        return f"filer online, junctions unchanged; backup = source ({len(backup)} blobs, {_mib(size)})"

    # -- 6 ------------------------------------------------------------------------------------------------
    def drill(self) -> str:
        assert self.app is not None and self.before is not None
        return rehearse(
            self.app,
            self.stack,
            self.backup_output,
            self.before,
            cluster=CLUSTER,
            filer=DEMO,
            client=self._client,
            say=self.say,
            timeout=RUN_TIMEOUT,
            links=self._links,
            figures=self.figures,
        )

    # -- 7 ------------------------------------------------------------------------------------------------
    def lose_primary_region(self) -> str:
        region = self.stack["clusters"][CLUSTER]["region"]
        lost = lose_region(self.state_dir, region)  # what `python -m devstack region lose` does
        if CLUSTER not in lost.clusters_changed:
            raise DemoFailed(f"cluster-{CLUSTER} was not running")
        account = self.stack["storage"]["accounts"]["source"]["name"]
        if account not in lost.accounts:
            raise DemoFailed(f"the source account {account} is not in region {region}")
        self.say(
            f"region {region} lost: {'; '.join(lost.changed())}; the fault proxy resets every request for "
            f"account {account}"
        )
        cluster_error = cluster_unreachable(self.stack["clusters"][CLUSTER])
        self.say(f"the primary cluster's management API: {cluster_error}")
        source_name = self.stack["demo_filer"]["bucket"].rpartition("/")[2]
        storage_error = source_unreachable(self.stack, source_name)
        self.say(f"GET {account}/{source_name} where the app reaches it: {storage_error}")
        return f"primary cluster and source account {account} unreachable"

    # -- 8 ------------------------------------------------------------------------------------------------
    def failover(self) -> str:
        assert self.app is not None
        # The app warns that it cannot fence the lost primary yet (expected here): the fence line below says so.
        with quiet("shared.avere.client", "vfxtdr.fence", "vfxtdr.http"):
            links = self._links["failover"] = self.app.start_route(f"failovers/{CLUSTER}/{DEMO}")
            self.say(f"POST /api/failovers/{CLUSTER}/{DEMO} -> 202, instance {links['id']}")
            final = self.app.follow(links, self.say, RUN_TIMEOUT)
        out = final.get("output") if isinstance(final.get("output"), dict) else {}
        if final.get("runtimeStatus") != "Completed" or not out.get("mounts"):
            raise DemoFailed(f"the failover ended {final.get('runtimeStatus')}: {str(final.get('output'))[:600]}")
        self.failover_output = out
        self.figures["failover_s"] = run_seconds(self.app.history(links))
        self.say(
            f"the primary filer's fence: {out.get('primary_fence')} (the primary cluster is lost: the first "
            "timer tick that reaches it again suspends its clients; it never serves the filer on its own)"
        )
        for mount in out["mounts"]:
            self.say(
                f"clients mount {', '.join(mount['paths'])} from vserver {mount['vserver']} at "
                f"{', '.join(mount['addresses'])}"
            )
        return (
            f"{DEMO} serves from cluster {out.get('target_cluster')} on {out.get('container')} (backup "
            f"{out.get('backup_id')}) in {self.figures['failover_s']}s"
        )

    # -- 9 ------------------------------------------------------------------------------------------------
    def read_back(self) -> str:
        assert self.before is not None
        target = str(self.failover_output.get("target_cluster"))
        vservers = {m["vserver"] for m in self.failover_output.get("mounts", [])}
        with self._client(target) as client:
            dr_record = client.capture_core_filer(DEMO)
            if [j[1:] for j in junctions(dr_record)] != [j[1:] for j in junctions(self.before)]:
                raise DemoFailed(f"the DR cluster's junctions differ: {describe_junctions(dr_record)}")
            self.say(f"cluster {target} has the junctions as captured: {describe_junctions(dr_record)}")
            result = compare(Vserver(client, vservers.pop() if len(vservers) == 1 else "vserver"), self.expected)
        self.figures["files_checked"], self.figures["files_identical"] = result.checked, result.identical
        self.say(
            f"read {result.checked} files ({_mib(result.bytes_read)}) through cluster {target}: "
            f"{result.identical} identical; problems: {result.problems()}"
        )
        if not result.ok:
            raise DemoFailed(
                f"{result.checked - result.identical} of {result.checked} files differ after the "
                f"failover: {result.problems()}"
            )
        return f"{result.identical}/{result.checked} files identical, the deleted file stays deleted"

    # -- 10 -----------------------------------------------------------------------------------------------
    def summary(self) -> int:
        ok = len(self.results) == len(self.steps) and all(r.ok for r in self.results)
        self.out(f"\n== {len(self.steps) + 1}/{len(self.steps) + 1} summary ==")
        self.out(f"    {'step':<46} {'result':<7} {'time':>7}")
        for r in self.results:
            self.out(f"    {r.title:<46} {'ok' if r.ok else 'FAILED':<7} {r.seconds:6.1f}s")
        for title, _ in self.steps[len(self.results) :]:
            self.out(f"    {title:<46} {'skipped':<7}")
        f = self.figures
        self.out(
            f"    backup: {f.get('backup_blobs')} blobs ({_mib(f.get('backup_bytes') or 0)}), "
            f"filer offline {f.get('filer_offline_s')}s, pre-copy {f.get('precopy_s')}s, "
            f"whole run {f.get('backup_s')}s; drill RTO {f.get('drill_rto_s')}s "
            f"({f.get('drill_files_checked')} files read back); failover {f.get('failover_s')}s; "
            f"files identical {f.get('files_identical')}/{f.get('files_checked')}"
        )
        self.out("PASSED: every file matched after the failover" if ok else "FAILED: see the step above")
        failed = next((r for r in self.results if not r.ok), None)
        record = {
            "ok": ok,
            "files_checked": f.get("files_checked", 0),
            "files_identical": f.get("files_identical", 0),
            "filer_offline_s": f.get("filer_offline_s"),
            "precopy_s": f.get("precopy_s"),
            "backup_s": f.get("backup_s"),
            "failover_s": f.get("failover_s"),
            "flush_s": f.get("flush_s"),
            "drill_rto_s": f.get("drill_rto_s"),
            "drill_files_checked": f.get("drill_files_checked", 0),
            "drill_copy_s": f.get("drill_copy_s"),
            "drill_rpo_s": f.get("drill_rpo_s"),
            "backup_blobs": f.get("backup_blobs"),
            "backup_bytes": f.get("backup_bytes"),
            "files_written": f.get("files_written"),
            "demo_s": f.get("demo_s"),
            "backup_instance": self._links.get("backup", {}).get("id"),
            "failover_instance": self._links.get("failover", {}).get("id"),
            "drill_instance": self._links.get("drill", {}).get("id"),
            "failed_step": failed.title if failed else None,
            "state_dir": str(self.state_dir),
        }
        self.out(json.dumps(record))
        return 0 if ok and record["files_checked"] and record["files_checked"] == record["files_identical"] else 1


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


def _brief(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err)[:1500]}"


def clean_state_dir(state_dir: Path, say: Callable[[str], None]) -> bool:
    """Stop a stack running on state_dir and remove the directory; True if there was one to remove.

    Refuses, changing nothing, when the directory is not a devstack state dir or a Durable runner
    (`serve`, `run`) still uses it.
    """
    if not state_dir.exists():
        return False
    if not state_dir.is_dir():
        raise DemoFailed(f"{state_dir} is not a directory")
    entries = list(state_dir.iterdir())
    if entries and not any((state_dir / m).exists() for m in STATE_MARKERS):
        raise DemoFailed(
            f"{state_dir} is not a devstack state dir (none of {', '.join(STATE_MARKERS)}); "
            "refusing to delete it: give another --state-dir"
        )
    if state_dir in (REPO_ROOT, *REPO_ROOT.parents, Path.home()):
        raise DemoFailed(f"refusing to delete {state_dir}: give a state dir of its own")
    serve = running_serve(state_dir)
    if serve is not None:
        raise DemoFailed(f"a `python -m devstack serve` runs on {state_dir} ({serve}); stop it first")
    _check_runner_lock(state_dir)
    if read_stack(state_dir) is not None:  # a damaged stack.json raises ValueError: its pids are unknown
        stop_stack(state_dir)
        say(f"stopped the stack that ran on {state_dir}")
    shutil.rmtree(state_dir)
    say(f"removed the previous state in {state_dir}")
    return True


def _check_runner_lock(state_dir: Path) -> None:
    lock = state_dir / "durable.lock"
    if not lock.exists():
        return
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DemoFailed(f"a Durable runner (`serve` or `run`) is using {state_dir}; stop it first") from None
        fcntl.flock(handle, fcntl.LOCK_UN)


def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="the demo's state dir, removed at the start and kept at the end (default: .devstack)",
    )


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so the demo still stops what it started


def main(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return Demo(Path(args.state_dir)).run()
    except KeyboardInterrupt:
        print("[demo] interrupted; stopped what it had started", file=sys.stderr)
        return 130
