"""Strict readers of cluster answers: every field the runbook decides on is there, or the answer is refused
with the field named and its value never echoed (it could be a recovery file)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.avere import answers
from shared.avere.errors import AvereUnexpectedAnswer

FILER = {"adminState": "online", "bucket": "acct/cont", "cryptoMode": "DISABLED", "clientSuspend": "no"}
SECRETISH = "U2FsdGVkX1+c2VjcmV0IHJlY292ZXJ5IGZpbGU="


def test_a_filer_entry_needs_every_field_asked_for() -> None:
    assert answers.filer_entry({"f": FILER}, "f") == FILER
    for field in answers.DECIDED:
        broken = {k: v for k, v in FILER.items() if k != field}
        with pytest.raises(AvereUnexpectedAnswer, match=f"corefiler.get\\(f\\) has no readable {field} \\(got nothing"):
            answers.filer_entry({"f": broken}, "f")
    for bad in ("", "  ", None, 0, ["online"], {"x": 1}):
        with pytest.raises(AvereUnexpectedAnswer, match="no readable adminState"):
            answers.filer_entry({"f": {**FILER, "adminState": bad}}, "f")
    for answer in ([], {"g": FILER}, {"f": "online"}, None):
        with pytest.raises(AvereUnexpectedAnswer, match="not a struct"):
            answers.filer_entry(answer, "f")


def test_refusals_never_echo_the_value() -> None:
    with pytest.raises(AvereUnexpectedAnswer) as err:
        answers.text({"recoveryFile": [SECRETISH]}, "recoveryFile", "corefiler.downloadKeyRecoveryFile(f)")
    assert SECRETISH not in str(err.value) and "a value of type list" in str(err.value)


def test_key_status_placeholders_mean_none_and_a_missing_id_is_refused() -> None:
    status = answers.key_status({"activeMasterKeyId": "NO ACTIVE MASTER KEY", "masterKeyIdReadyToActivate": ""}, "f")
    assert (status.active_key_id, status.ready_to_activate) == ("", "")
    status = answers.key_status({"activeMasterKeyId": "k1", "masterKeyIdReadyToActivate": "k2"}, "f")
    assert (status.active_key_id, status.ready_to_activate) == ("k1", "k2")
    for field in ("activeMasterKeyId", "masterKeyIdReadyToActivate"):
        data: dict[str, Any] = {"activeMasterKeyId": "k1", "masterKeyIdReadyToActivate": ""}
        del data[field]
        with pytest.raises(AvereUnexpectedAnswer, match=f"no readable {field}"):
            answers.key_status(data, "f")
    with pytest.raises(AvereUnexpectedAnswer, match="no readable activeMasterKeyId"):
        answers.key_status({"activeMasterKeyId": None, "masterKeyIdReadyToActivate": ""}, "f")
    with pytest.raises(AvereUnexpectedAnswer, match="not a struct"):
        answers.key_status("NO ACTIVE MASTER KEY", "f")


def test_junction_entries_must_say_whose_they_are() -> None:
    good = [{"path": "/a", "corefiler": "f"}, {"path": "/b", "mass": "g"}]
    assert answers.junction_entries(good, "vs") == good
    with pytest.raises(AvereUnexpectedAnswer, match="junction /a names no core filer"):
        answers.junction_entries([{"path": "/a", "corefiler": ""}], "vs")
    with pytest.raises(AvereUnexpectedAnswer, match=r"\[0\] has no readable path"):
        answers.junction_entries([{"corefiler": "f"}], "vs")
    with pytest.raises(AvereUnexpectedAnswer, match="not an array"):
        answers.junction_entries({"path": "/a"}, "vs")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("yes", True),
        ("no", False),
        (True, True),
        (False, False),
        ("YES", True),
        ("0", False),
        ("", None),
        (None, None),
        ("maybe", None),
        (1, None),
    ],
)
def test_flags(value: Any, expected: bool | None) -> None:
    assert answers.flag(value) is expected
