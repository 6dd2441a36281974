"""The runbook under the fault matrix: every cell of cells.CELLS runs its workflow with its fault, black-box, and
checks the invariants (source never written by the app, nothing verified that differs, the filer back whole or
NEEDS_ATTENTION with its exact record, no key active that the vault does not hold, errors that name the filer,
no secret anywhere). Quick cells run in `make test`; the whole matrix with `make test-full`."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.matrix_table import MATRIX_ROW
from tests.reliability.cells import CELLS, Cell
from tests.reliability.scenarios import run_backup, run_failback, run_failover
from tests.reliability.world import World


def _param(cell: Cell) -> object:
    marks = [pytest.mark.slow] + ([] if cell.quick else [pytest.mark.full])
    return pytest.param(cell, id=cell.id, marks=marks)


@pytest.mark.parametrize("cell", [_param(c) for c in CELLS])
def test_cell(cell: Cell, world: World, request: pytest.FixtureRequest) -> None:
    started = time.monotonic()
    scenario = {"backup": run_backup, "failover": run_failover, "failback": run_failback}[cell.workflow]
    obs = scenario(world, cell)
    request.node.user_properties.append(
        (
            MATRIX_ROW,
            {
                "workflow": cell.workflow,
                "step": cell.step,
                "fault": cell.fault,
                "injected": cell.inject.label(),
                "armed_at": obs.armed_at,
                "outcome": obs.outcome,
                "problems": obs.problems,
                "notes": ", ".join([*obs.notes, f"{time.monotonic() - started:.1f}s"]),
            },
        )
    )
    assert not obs.problems, obs.problems
