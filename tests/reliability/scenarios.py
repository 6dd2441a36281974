"""The workflows a cell runs (backup, failover, failback), black-box: seed the filer, arm the cell's fault (before
the start or when the run's status reaches the cell's step), start through the HTTP route, wait on the virtual
clock, then observe and check every invariant. A violated invariant is a problem in the observation; the test
fails on any."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.avere import answers
from shared.catalog.store import Catalog, FilerState
from shared.runbook.home import DR, REPROTECT, home_of, reprotect_filer
from shared.runbook.payloads import NEEDS_ATTENTION, failover_instance_id
from tests.fixtures.secrets import catalog_texts, find_leaks, run_texts
from tests.reliability.world import DIRTY, FILES, World, blobs, snapshot, step_of

if TYPE_CHECKING:
    from tests.reliability.cells import Cell

VERIFIED, SERVING, FAILED, ATTENTION, REFUSED = "verified", "serving", "failed", "needs_attention", "refused"
FAILED_BACK = "failed_back"
# Written through the DR cluster while the filer served there: a failback brings them home.
CHANGED_AT_DR = {"/scratch/at-dr.txt": b"written at DR while failed over", "/data/a/b/c.txt": b"changed at DR"}
ARM_TIMEOUT_S = 120.0


@dataclass
class Observation:
    outcome: str = "?"
    error: str = ""
    armed_at: str = ""
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)


def _diff(got: dict, want: dict) -> list[str]:
    return [f"{k}: {got.get(k)!r} != {want.get(k)!r}"[:200] for k in sorted({*got, *want}) if got.get(k) != want.get(k)]


def _arm(world: World, cell: Cell) -> str:
    """Arm the cell's fault now, or once the run's status shows the cell's step; answers where it was armed."""
    if cell.at is None:
        cell.inject.arm(world)
        return "start"
    world.runner.run_until(world.reached(cell.at, cell.at_rest), timeout=ARM_TIMEOUT_S)
    where = step_of(world.status()) or "?"
    cell.inject.arm(world)
    return where


def _outcome(status: dict, success: str) -> tuple[str, str]:
    runtime, output = status.get("runtimeStatus"), status.get("output")
    if runtime == "Completed" and isinstance(output, dict):
        state = output.get("status", success) if success == VERIFIED else success
        return str(state), ""
    text = output if isinstance(output, str) else str(output)
    if runtime == "Failed":
        return (ATTENTION if NEEDS_ATTENTION in text else FAILED), text
    return f"{runtime}", text


def _common(world: World, cell: Cell, obs: Observation, source_before: dict[str, tuple]) -> None:
    obs.check(not world.app_writes("source"), f"the app wrote to the source account: {world.app_writes('source')}")
    _untouched_named_and_sealed(world, cell, obs, source_before, "the run")


def _untouched_named_and_sealed(
    world: World, cell: Cell, obs: Observation, source_before: dict[str, tuple], since: str
) -> None:
    """Every cell's last checks: the source container as it was `since`, a failure's error naming the filer and
    the cell's words, the outcome one the cell accepts, no secret in any run's texts or the catalog."""
    env = world.env
    after = snapshot(env.source_container())
    changed = sorted(n for n, tag in source_before.items() if after.get(n) != tag)
    obs.check(not changed, f"source blobs changed or gone since before {since}: {changed[:5]}")
    if obs.outcome in (FAILED, ATTENTION, REFUSED):
        obs.check(env.filer_name in obs.error, "the error does not name the filer")
        missing = [w for w in cell.names if w.lower() not in obs.error.lower()]
        obs.check(not missing, f"the error does not name {missing}: {obs.error[:300]}")
    obs.check(
        obs.outcome in cell.expect, f"outcome {obs.outcome}, expected one of {sorted(cell.expect)}: {obs.error[:500]}"
    )
    texts = run_texts(world.runner)
    texts.update(catalog_texts(env))
    leaks = find_leaks(env, texts)
    obs.check(not leaks, f"secrets leaked: {leaks[:3]}")


def run_backup(world: World, cell: Cell) -> Observation:
    env, obs = world.env, Observation()
    world.seed()
    client = env.client()
    before = client.capture_core_filer(env.filer_name)
    source_before = snapshot(env.source_container())
    keys_before = world.vault_key_ids()
    calls_before = len(world.call_log())
    if cell.stale:
        world.seed_stale()
    world.proxy.reset_stats()
    world.start_runner()
    if cell.at is None:
        obs.armed_at = _arm(world, cell)
    world.instance = world.post(f"backups/primary/{env.filer_name}")
    if cell.at is not None:
        obs.armed_at = _arm(world, cell)
    status = world.wait()
    obs.notes.append(world.fired())
    world.clear_faults()
    obs.outcome, obs.error = _outcome(status, VERIFIED)
    obs.notes += [f"killed at {k}" for k in world.restarts]

    # The filer: back as captured, every junction, every byte; or removed and recorded for the operator.
    with env.catalog() as catalog:
        state = catalog.load(env.filer)
    if obs.outcome == ATTENTION:
        present = env.filer_name in client.list_core_filers()
        obs.notes.append(f"filer {client.filer_state(env.filer_name) if present else 'removed'}")
        obs.check(not (present and "is not attached" in obs.error), "the error says not attached; it is")
        # The exact record: as captured before the run, with the key the run rotated in (the vault's newest).
        expected = {**before.to_json(), "active_key_id": next(iter(world.vault_key_ids()))}
        record = (state.needs_attention or {}).get("record") or {}
        obs.check(
            record == expected,
            f"the catalog's NEEDS_ATTENTION record is not the captured filer: {_diff(record, expected)}",
        )
        custom = (status.get("customStatus") or {}).get("record") or {}
        obs.check(
            custom == expected,
            f"the run's NEEDS_ATTENTION status does not carry the exact record: {_diff(custom, expected)}",
        )
    else:
        obs.check(client.filer_state(env.filer_name) == "online", "the filer is not online")
        after = client.capture_core_filer(env.filer_name)
        obs.check(after.junctions == before.junctions, "the filer's junctions differ from the captured ones")
        obs.check(after.bucket == before.bucket, "the filer serves another container")
        for path, data in {**FILES, **DIRTY}.items():
            obs.check(env.read(path) == data, f"{path} does not read back")
        obs.check(not state.needs_attention and not state.removed_by_app, "the catalog still marks the filer")

    # Nothing verified unless every blob matched the source as of the flush (no client writes after it).
    source_now = blobs(env.source_container())
    for gen, record in state.generations.items():
        if record.status == "verified":
            obs.check(
                blobs(env.backup_container(gen)) == source_now,
                f"generation {gen} is recorded verified but differs from the source",
            )
    obs.check(
        (state.latest_verified is not None) == (obs.outcome == VERIFIED),
        f"latest verified is {state.latest_verified} after a run that ended {obs.outcome}",
    )
    if obs.outcome == VERIFIED:
        obs.check(
            any(p.startswith("i/") for p in source_now) and DIRTY.keys() <= {f["path"] for f in env.listing("/")},
            "the flush did not reach the source",
        )

    # The key: whatever the cluster runs on is in the vault; no activation without a newly stored key.
    keys_after = world.vault_key_ids()
    activations = [c for c in world.call_log()[calls_before:] if c.get("method") == "corefiler.activateMasterKey"]
    if obs.outcome != ATTENTION:
        active = client.master_key_status(env.filer_name).active_key_id
        obs.check(active in keys_after, f"the active key {active} is not in the vault")
    obs.check(
        bool(activations) <= (len(keys_after) > len(keys_before)), "a key was activated though no new key was stored"
    )
    obs.notes.append(f"keys stored {len(keys_after) - len(keys_before)}, activations {len(activations)}")
    _common(world, cell, obs, source_before)
    return obs


def backup_first(world: World) -> tuple[str, dict[str, tuple]]:
    """A clean verified backup to fail over from: its generation and the source as of its flush."""
    world.start_runner()
    world.instance = world.post(f"backups/primary/{world.env.filer_name}")
    status = world.wait()
    assert status["runtimeStatus"] == "Completed" and status["output"]["status"] == VERIFIED, world.describe(status)
    return str(status["output"]["generation"]), blobs(world.env.source_container())


def lose_primary(world: World) -> None:
    """The primary region is gone: its cluster stops and its storage account is unreachable."""
    world.env.close()
    world.env.primary.stop()
    world.stopped.add("primary")
    world.proxy.block_account(world.account("source"))


def run_failover(world: World, cell: Cell) -> Observation:
    env, obs = world.env, Observation()
    world.seed()
    captured = env.client().capture_core_filer(env.filer_name)
    gen, flushed = backup_first(world)
    source_before = snapshot(env.source_container())
    lose_primary(world)
    world.proxy.reset_stats()
    world.restarts.clear()
    if cell.at is None:
        obs.armed_at = _arm(world, cell)
    world.instance = world.post(f"failovers/primary/{env.filer_name}")
    if world.instance is None:  # the door refused: nothing may have started or changed
        obs.outcome, obs.error = REFUSED, world.refused
        obs.check(
            world.runner.status(failover_instance_id("primary", env.filer_name)) is None, "a refused failover started"
        )
    else:
        if cell.at is not None:
            obs.armed_at = _arm(world, cell)
        status = world.wait()
        obs.outcome, obs.error = _outcome(status, SERVING)
    obs.notes.append(world.fired())
    world.clear_faults()
    world.proxy.block_account(world.account("source"))  # the region stays gone
    obs.notes += [f"killed at {k}" for k in world.restarts]

    dr = env.client("dr")
    with env.catalog() as catalog:
        state = catalog.load(env.filer)
    if obs.outcome == SERVING:
        obs.check(dr.filer_state(env.filer_name) == "online", "the DR filer is not online")
        obs.check(
            dr.capture_core_filer(env.filer_name).junctions == captured.junctions,
            "the DR filer's junctions differ from the captured ones",
        )
        for path, data in {**FILES, **DIRTY}.items():
            obs.check(env.read(path, cluster="dr") == data, f"{path} does not read back on the DR cluster")
        obs.check(
            state.generations[gen].status == "attached" and bool(state.failed_over),
            "the catalog does not fence the attached generation",
        )
    else:
        serving = env.filer_name in dr.list_core_filers()
        obs.notes.append(f"DR filer {'present: ' + dr.filer_state(env.filer_name) if serving else 'absent'}")
        if state.generations[gen].status == "attached":
            obs.notes.append("generation fenced (attached)")
    # The backup failed over from is still exactly the source as of its flush (the app wrote nothing into it
    # before the DR cluster took it: its own writes go straight to storage, never through the app).
    if state.generations[gen].status == "verified":
        obs.check(blobs(env.backup_container(gen)) == flushed, "the verified backup changed")
    _common(world, cell, obs, source_before)
    return obs


def _serves(world: World, cluster: str) -> bool:
    """The cluster serves the filer: it has it online with client access (a suspended one is fenced)."""
    client, name = world.env.client(cluster), world.env.filer_name
    if name not in client.list_core_filers() or client.filer_state(name) != "online":
        return False
    info = answers.filer_entry(client.call("corefiler.get", name), name, ())
    return answers.flag(info.get("clientSuspend")) is False


def _reprotect_state(world: World, state: FilerState) -> FilerState:
    env = world.env
    with Catalog(env.catalog().account, env.plan.catalog_container, side=REPROTECT) as catalog:
        return catalog.load(reprotect_filer(env.filer, home_of(state, env.filer)))


def failed_over_and_reprotected(world: World) -> dict[str, bytes]:
    """Backed up, failed over while the primary's storage was unreachable (the primary cluster answers: fenced by
    suspension), files changed at DR, the storage back, a verified re-protect backup. What the filer holds."""
    env = world.env
    backup_first(world)
    world.proxy.block_account(world.account("source"))
    world.instance = world.post(f"failovers/primary/{env.filer_name}")
    status = world.wait()
    assert status["runtimeStatus"] == "Completed", world.describe(status)
    world.proxy.unblock_account(world.account("source"))
    for path, data in CHANGED_AT_DR.items():
        env.write(path, data, cluster="dr")
    env.flush(cluster="dr")
    world.instance = world.post(f"backups/primary/{env.filer_name}")
    status = world.wait()
    assert status["runtimeStatus"] == "Completed" and status["output"]["status"] == VERIFIED, world.describe(status)
    return {**FILES, **DIRTY, **CHANGED_AT_DR}


def run_failback(world: World, cell: Cell) -> Observation:
    env, obs = world.env, Observation()
    world.seed()
    source_before = snapshot(env.source_container())
    expected = failed_over_and_reprotected(world)
    world.proxy.reset_stats()
    world.restarts.clear()
    if cell.at is None:
        obs.armed_at = _arm(world, cell)
    world.instance = world.post(f"failbacks/primary/{env.filer_name}")
    if world.instance is None:
        obs.outcome, obs.error = REFUSED, world.refused
    else:
        if cell.at is not None:
            obs.armed_at = _arm(world, cell)
        status = world.wait()
        obs.outcome, obs.error = _outcome(status, FAILED_BACK)
    obs.notes.append(world.fired())
    world.clear_faults()
    obs.notes += [f"killed at {k}" for k in world.restarts]

    primary, dr = _serves(world, "primary"), _serves(world, "dr")
    obs.check(not (primary and dr), "the filer is served by both clusters")
    with env.catalog() as catalog:
        state = catalog.load(env.filer)
    rp = _reprotect_state(world, state)
    home = home_of(state, env.filer)
    if obs.outcome == FAILED_BACK:
        obs.check(primary and env.filer_name not in env.client("dr").list_core_filers(), "not served by the primary")
        for path, data in expected.items():
            obs.check(env.read(path) == data, f"{path} does not read back through the primary")
        obs.check(home.side != DR and state.failed_over is None and state.fence is None, "the home is not primary")
        obs.check(not rp.removed_by_app and not rp.needs_attention, "the re-protect side still marks the filer")
    elif obs.outcome == FAILED:
        obs.check(dr, "a failed failback does not leave the filer serving at DR")
        for path, data in expected.items():
            obs.check(env.read(path, cluster="dr") == data, f"{path} does not read back at DR")
        obs.check(home.side == DR and state.failed_over is not None, "the catalog no longer records the failover")
        obs.check(not rp.removed_by_app and not rp.needs_attention, "the re-protect side still marks the filer")
    elif obs.outcome == ATTENTION:
        obs.check(not dr and not primary, "NEEDS_ATTENTION with the filer served")
        obs.check(bool((rp.needs_attention or {}).get("record")), "NEEDS_ATTENTION without the record at DR")
    # The container the filer lived on before the outage is retired: never written, whatever happened.
    _untouched_named_and_sealed(world, cell, obs, source_before, "the outage")
    return obs
