"""The failover fence in the catalog (pure): recorded once, settled with how, lifted only with an operator's
authorisation for that run before it expires; a failed-over state from before fences counts as fenced."""

from __future__ import annotations

import pytest

from shared.catalog.fence import (
    HELD,
    IN_USE,
    PENDING,
    REMOVED,
    SUSPENDED,
    WITHDRAWN,
    active_fence,
    authorize_lift,
    begin_fence,
    lift_fence,
    revoke_lift,
    settle_fence,
    withdraw_fence,
)
from shared.catalog.store import ATTACHED, FilerState
from shared.core.errors import CatalogConflict

T0, T1, T2, LATER = "2030-01-01T00:00:00Z", "2030-01-01T00:05:00Z", "2030-01-01T00:10:00Z", "2030-01-01T02:00:00Z"
RUN = "readd~c1~f1"


def fenced() -> FilerState:
    state = FilerState.new(("f1-a", "f1-b"))
    begin_fence(state, instance_id="failover~c1~f1", target="dr", by="ops@example", at=T0)
    return state


def test_a_fence_is_recorded_once_pending_then_settled_with_how() -> None:
    state = FilerState.new(("f1-a", "f1-b"))
    assert active_fence(state) is None
    mark = begin_fence(state, instance_id="failover~c1~f1", target="dr", by="ops@example", at=T0)
    assert (mark["how"], mark["since"], mark["by"], mark["target_cluster"]) == (PENDING, T0, "ops@example", "dr")
    again = begin_fence(state, instance_id="failover~c1~f1", target="dr", by="", at=T1)
    assert again["since"] == T0 and again["by"] == "ops@example"  # a second request keeps the first's history
    settle_fence(state, how=SUSPENDED, detail="client access suspended", at=T1, record={"name": "f1"})
    assert active_fence(state) == {
        **mark,
        "how": SUSPENDED,
        "at": T1,
        "detail": "client access suspended",
        "record": {"name": "f1"},
    }
    settle_fence(state, how=REMOVED, detail="left removed", at=T2)
    assert active_fence(state)["record"] == {"name": "f1"}  # a later settle without a record keeps it
    with pytest.raises(ValueError, match="how"):
        settle_fence(state, how="invalidated", detail="", at=T2)
    # The catalog document round-trips the mark.
    assert FilerState.from_json(state.to_json()).fence == state.fence


def test_a_failed_over_state_from_before_fences_is_fenced_pending() -> None:
    state = FilerState.new(("f1-a", "f1-b"))
    state.failed_over = {"target_cluster": "dr"}
    legacy = active_fence(state)
    assert legacy is not None and legacy["how"] == PENDING and legacy["target_cluster"] == "dr"
    other = FilerState.new(("f1-a", "f1-b"))
    other.generations["a"].status = ATTACHED
    other.generations["a"].attached_to = {"target_cluster": "dr2"}
    assert active_fence(other)["target_cluster"] == "dr2"
    settle_fence(state, how=SUSPENDED, detail="suspended", at=T1)  # the tick applied it: now a real mark
    assert state.fence is not None and "legacy" not in state.fence and active_fence(state)["how"] == SUSPENDED


def test_only_an_authorised_unexpired_lift_for_that_run_lifts_the_fence() -> None:
    state = fenced()
    with pytest.raises(CatalogConflict, match="no operator asked"):
        lift_fence(state, instance_id=RUN, at=T1, filer="c1/f1")
    authorize_lift(state, by="ops@example", at=T1, until=T2, instance_id=RUN)
    with pytest.raises(CatalogConflict, match="no operator asked"):
        lift_fence(state, instance_id="readd~c1~other", at=T1, filer="c1/f1")
    with pytest.raises(CatalogConflict, match="expired"):
        lift_fence(state, instance_id=RUN, at=LATER, filer="c1/f1")
    assert active_fence(state) is not None  # refusals change nothing
    before = lift_fence(state, instance_id=RUN, at=T1, filer="c1/f1")
    assert before["how"] == PENDING and active_fence(state) is None
    assert state.fence["lifted"] == {"by": "ops@example", "at": T1, "until": T2, "instance_id": RUN}
    with pytest.raises(CatalogConflict, match="not fenced"):
        lift_fence(state, instance_id=RUN, at=T1, filer="c1/f1")
    # A new failover fences again, with a fresh mark.
    begin_fence(state, instance_id="failover~c1~f1", target="dr", by="", at=LATER)
    assert active_fence(state)["since"] == LATER and "lifted" not in state.fence


def test_an_unused_authorisation_is_revoked_and_a_lift_does_not_outlive_a_settle() -> None:
    state = fenced()
    authorize_lift(state, by="ops", at=T1, until=T2, instance_id=RUN)
    revoke_lift(state, "readd~c1~other")
    assert "lift" in state.fence
    revoke_lift(state, RUN)
    assert "lift" not in state.fence
    with pytest.raises(CatalogConflict):
        lift_fence(state, instance_id=RUN, at=T1, filer="c1/f1")
    lift_state = fenced()
    authorize_lift(lift_state, by="ops", at=T1, until=T2, instance_id=RUN)
    lift_fence(lift_state, instance_id=RUN, at=T1, filer="c1/f1")
    assert settle_fence(lift_state, how=SUSPENDED, detail="late", at=T2) is None  # lifted stays lifted
    assert active_fence(lift_state) is None


def requested(token: str = "req-1", claim: bool = False) -> FilerState:
    state = FilerState.new(("f1-a", "f1-b"))
    begin_fence(state, instance_id="failover~c1~f1", target="dr", by="ops", at=T0, request=token, claim=claim)
    return state


def test_a_route_withdraws_only_its_own_pending_unclaimed_fence() -> None:
    state = requested()
    assert withdraw_fence(state, "req-2") == IN_USE and active_fence(state) is not None  # another request's
    assert withdraw_fence(state, "") == IN_USE and active_fence(state) is not None
    assert withdraw_fence(state, "req-1") == WITHDRAWN and state.fence is None and active_fence(state) is None
    assert withdraw_fence(state, "req-1") == IN_USE  # nothing left to withdraw

    # The run claims it (its own fence_primary): from then on nobody withdraws it.
    claimed = requested()
    mark = begin_fence(claimed, instance_id="failover~c1~f1", target="dr", by="", at=T1, claim=True)
    assert mark["claimed"] == "failover~c1~f1" and mark["request"] == "req-1" and mark["since"] == T0
    assert withdraw_fence(claimed, "req-1") == IN_USE and active_fence(claimed) is not None
    # A run that finds no fence records one already claimed.
    assert requested(token="", claim=True).fence["claimed"] == "failover~c1~f1"

    # A second request finds the first's fence: it is not the second's to withdraw.
    shared = requested()
    begin_fence(shared, instance_id="failover~c1~f1", target="dr", by="", at=T1, request="req-2")
    assert withdraw_fence(shared, "req-2") == IN_USE and active_fence(shared)["request"] == "req-1"


def test_a_fence_applied_or_acted_on_meanwhile_is_held() -> None:
    applied = requested()
    settle_fence(applied, how=SUSPENDED, detail="a tick suspended it", at=T1)
    assert withdraw_fence(applied, "req-1") == HELD and active_fence(applied)["how"] == SUSPENDED
    removed = requested()
    settle_fence(removed, how=REMOVED, detail="a cancelled backup left it removed", at=T1)
    assert withdraw_fence(removed, "req-1") == HELD
    authorised = requested()
    authorize_lift(authorised, by="ops", at=T1, until=T2, instance_id=RUN)
    assert withdraw_fence(authorised, "req-1") == HELD and "lift" in authorised.fence
    still_pending = requested()
    settle_fence(still_pending, how=PENDING, detail="a tick could not reach the primary", at=T1)
    assert withdraw_fence(still_pending, "req-1") == WITHDRAWN  # nothing was applied: nothing relies on it


def test_withdrawing_over_a_failed_over_state_leaves_it_fenced() -> None:
    state = FilerState.new(("f1-a", "f1-b"))
    state.failed_over = {"target_cluster": "dr"}
    begin_fence(state, instance_id="failover~c1~f1", target="dr", by="", at=T0, request="req-1")
    assert withdraw_fence(state, "req-1") == WITHDRAWN
    assert active_fence(state) is not None and active_fence(state)["legacy"]  # the failed-over state still fences
