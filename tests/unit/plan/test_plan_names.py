"""Plan names are checked whole: a trailing newline (which a `$` anchor lets through) is refused, so a name can
never carry more than the rule allows into run ids, catalog paths or Key Vault calls."""

from __future__ import annotations

import json

import pytest

from shared.plan import validate as chk
from shared.plan.cli import EXAMPLE
from shared.plan.load import PlanError, parse_plan


@pytest.mark.parametrize(
    ("check", "good"),
    [
        (chk.object_name, "prod-east.fs_1"),
        (chk.secret_name, "primary-admin-password"),
        (chk.account_name, "vfxtdr"),
        (chk.container_name, "demo-filer-a"),
        (chk.region, "westus2"),
    ],
)
def test_a_trailing_newline_is_not_part_of_a_valid_name(check, good: str) -> None:
    assert check(good) is None
    assert check(good + "\n") is not None


def test_a_plan_naming_a_filer_with_a_newline_is_refused() -> None:
    plan = json.loads(json.dumps(EXAMPLE))
    plan["filers"][0]["name"] += "\n"
    with pytest.raises(PlanError, match=r"filers\[0\]\.name"):
        parse_plan(plan)
