"""Why a run may not start: typed reasons from the catalog, and the HTTP status the routes give each."""

from __future__ import annotations

from shared.catalog.store import FilerState
from shared.runbook.blockers import Reason, backup_blocker, readd_blocker
from triggers.common import STATUS, refusal


def test_every_reason_has_an_http_status() -> None:
    assert set(STATUS) == set(Reason)
    assert {r for r, s in STATUS.items() if s == 404} == {Reason.UNKNOWN_BACKUP}


def test_backup_and_readd_rules_name_their_reason() -> None:
    state = FilerState.new(("fs-a", "fs-b"))
    assert backup_blocker(state) is None
    assert readd_blocker(state, "c1/f1").reason is Reason.NOTHING_TO_READD
    state.removed_by_app = {"instance_id": "backup-c1-f1"}
    assert backup_blocker(state).reason is Reason.AWAITING_READD
    assert readd_blocker(state, "c1/f1") is None
    state.needs_attention = {"error": "re-add failed"}
    assert backup_blocker(state).reason is Reason.NEEDS_ATTENTION
    state.failed_over = {"target_cluster": "dr"}
    blocked = backup_blocker(state)
    assert blocked.reason is Reason.FAILED_OVER
    refused = refusal(blocked)
    assert (refused.status, str(refused)) == (409, "the filer failed over to cluster dr; backups stopped")


def test_a_fenced_filer_is_neither_backed_up_nor_re_added_without_the_override() -> None:
    from shared.catalog.fence import begin_fence, settle_fence

    state = FilerState.new(("fs-a", "fs-b"))
    state.removed_by_app = {"instance_id": "backup~c1~f1", "record": {"name": "f1"}}
    begin_fence(state, instance_id="failover~c1~f1", target="dr", by="", at="2030-01-01T00:00:00Z")
    assert backup_blocker(state).reason is Reason.FENCED
    blocked = readd_blocker(state, "c1/f1")
    assert blocked.reason is Reason.FENCED
    assert "override=failed-over" in blocked.message and "two clusters" in blocked.message
    assert refusal(blocked).status == 409
    assert readd_blocker(state, "c1/f1", override=True) is None
    state.removed_by_app = None  # fenced by suspension, with nothing recorded: nothing to bring back
    assert readd_blocker(state, "c1/f1", override=True).reason is Reason.NOTHING_TO_READD
    settle_fence(state, how="suspended", detail="suspended", at="2030-01-01T00:00:01Z", record={"name": "f1"})
    assert readd_blocker(state, "c1/f1", override=True) is None  # the override unsuspends what the fence kept
    assert readd_blocker(FilerState.new(("fs-a", "fs-b")), "c1/f1", override=True).reason is Reason.NOTHING_TO_READD
