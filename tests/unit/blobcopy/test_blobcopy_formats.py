"""The copy engine's stored state (page states, manifests, summaries) as written before the one record codec
(tests/unit/blobcopy/data) reads into the same values and is written back the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.blobcopy.manifest import ManifestEntry, ManifestIndex
from shared.blobcopy.model import CopyJob, PageCursor, Summary
from shared.blobcopy.pages import PageState
from shared.blobcopy.state import unpack
from shared.core.codec import RecordError
from shared.runbook.payloads import CopyTotals

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "expected-2f032a3.json").read_text())


def _read(name: str, body: Any) -> tuple[Any, Any, Any]:
    """(decoded value, its JSON again, the stored JSON it must equal)."""
    if "/state/" in name or name.endswith("page-state.json.gz"):
        page = PageState.from_json(body)
        return page, page.to_json(), body
    if "/manifest/page-" in name or name.endswith("manifest-page.json.gz"):
        entries = [ManifestEntry.from_json(e) for e in body]
        return entries, [e.to_json() for e in entries], body
    if name.endswith("index.json.gz"):
        index = ManifestIndex.from_json(body)
        return index, index.to_json(), body
    if name.endswith("summary.json.gz"):
        summary = Summary.from_json(body)
        return summary, summary.to_json(), body
    totals = CopyTotals.from_json(body["totals"])  # progress.json.gz, written by shared/runbook/copy.py
    return totals, totals.to_json(), body["totals"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_stored_state_reads_into_the_same_values_and_writes_back_the_same(name: str) -> None:
    value, again, stored = _read(name, unpack((DATA / name).read_bytes()))
    assert repr(value) == EXPECTED[name]
    assert json.loads(json.dumps(again)) == stored  # what an older reader reads: the same keys and values


def test_compact_keys_and_left_out_defaults() -> None:
    page = PageState.from_json(unpack((DATA / "built-2f032a3/page-state.json.gz").read_bytes()))
    tasks = {t.entry.name: t for t in page.tasks}
    assert tasks["a"].to_json().keys() == {"b", "st", "w"}
    assert tasks["b"].entry.to_json().keys() == {"n", "e", "s", "m", "t", "p", "md", "bt", "tier", "x"}
    assert "copy_status" not in json.dumps(page.to_json()) and tasks["c"].entry.digest()


def test_descriptors_refuse_what_they_do_not_know_with_copy_input_errors() -> None:
    from shared.blobcopy.errors import CopyInputError

    with pytest.raises(CopyInputError, match="unknown field"):
        PageCursor.from_json({"page": 1, "tokne": "x"})
    with pytest.raises(CopyInputError, match=r"PageCursor\.page must be int, got str"):
        PageCursor.from_json({"page": "1"})
    with pytest.raises(CopyInputError, match="CopyJob is missing field 'source'"):
        CopyJob.from_json({"job_id": "j"})
    stored = unpack((DATA / "built-2f032a3/page-state.json.gz").read_bytes())
    bad_entry = {"n": "x", "e": "1", "s": "big", "m": None, "t": 1, "p": [], "md": {}}
    with pytest.raises(RecordError, match=r"BlobEntry\.size must be int, got str"):  # stored state: RecordError
        PageState.from_json({**stored, "tasks": [{"b": bad_entry, "st": "todo"}]})
