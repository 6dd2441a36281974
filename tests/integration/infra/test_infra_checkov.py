"""The checkov gate (infra/checkov/gate.py): its verdicts on checkov reports, its allowlist, how it runs checkov."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from infra.checkov import gate
from infra.checkov.gate import Allowed, evaluate, load_allowlist
from tests.unit.infra.test_infra import INFRA, analyse

SITE = "Microsoft.Web/sites.functionApp"


def _check(check_id: str, resource: str = SITE, file_path: str = "/main.bicep") -> dict[str, Any]:
    return {"check_id": check_id, "check_name": f"name of {check_id}", "resource": resource, "file_path": file_path}


def _report(
    *,
    passed: int = 5,
    failed: list[dict[str, Any]] | None = None,
    parse_errors: list[str] | None = None,
    resources: int = 7,
) -> dict[str, Any]:
    """checkov's JSON for one framework (the shape of `checkov -o json`)."""
    failed = failed or []
    parse_errors = parse_errors or []
    return {
        "check_type": "bicep",
        "results": {"passed_checks": [], "failed_checks": failed, "skipped_checks": [], "parsing_errors": parse_errors},
        "summary": {
            "passed": passed,
            "failed": len(failed),
            "skipped": 0,
            "parsing_errors": len(parse_errors),
            "resource_count": resources,
            "checkov_version": "3.3.30",
        },
        "url": "",
    }


def _allowed(check_id: str, resource: str = SITE, file: str = "main.bicep") -> Allowed:
    return Allowed(check_id, file, resource, "accepted on purpose, for a reason spelled out at length here")


# --- verdicts ------------------------------------------------------------------------------------------------


def test_a_clean_report_passes() -> None:
    verdict = evaluate(_report(), [])
    assert verdict.ok, verdict.problems
    assert (verdict.passed, verdict.failed, verdict.parsing_errors, verdict.resources) == (5, 0, 0, 7)


def test_a_parse_error_fails_although_checkov_exits_zero() -> None:
    # checkov reports an unparsable file only here; no check fails, so its exit code is 0
    verdict = evaluate(_report(parse_errors=["/tmp/x/modules/broken.bicep"]), [])
    assert not verdict.ok
    assert verdict.parsing_errors == 1
    assert "did not parse" in verdict.problems[0]
    assert "modules/broken.bicep" in verdict.problems[0]


def test_a_parse_error_counted_only_in_the_summary_still_fails() -> None:
    report = _report()
    report["summary"]["parsing_errors"] = 2
    assert not evaluate(report, []).ok


def test_a_bare_summary_means_nothing_was_scanned() -> None:
    bare = {
        "passed": 0,
        "failed": 0,
        "skipped": 0,
        "parsing_errors": 0,
        "resource_count": 0,
        "checkov_version": "3.3.30",
    }
    verdict = evaluate(bare, [])
    assert not verdict.ok
    assert "nothing was scanned" in verdict.problems[0]


def test_no_resources_fails() -> None:
    assert not evaluate(_report(resources=0), []).ok


def test_the_bicep_report_is_picked_from_a_list() -> None:
    other = {**_report(failed=[_check("CKV_AZURE_1")]), "check_type": "arm"}
    verdict = evaluate([other, _report()], [])
    assert verdict.ok, verdict.problems


def test_a_finding_not_allowlisted_fails_and_names_the_check() -> None:
    verdict = evaluate(_report(failed=[_check("CKV_AZURE_17")]), [])
    assert not verdict.ok
    assert verdict.problems[0].startswith(f"CKV_AZURE_17 failed on {SITE} in main.bicep")


def test_an_allowlisted_finding_passes_only_for_its_resource_and_file() -> None:
    allowlist = [_allowed("CKV_AZURE_17")]
    verdict = evaluate(_report(failed=[_check("CKV_AZURE_17")]), allowlist)
    assert verdict.ok, verdict.problems
    assert (verdict.failed, verdict.allowlisted) == (1, 1)
    # the same check on another resource, or in another file, is a new finding
    other_resource = _check("CKV_AZURE_17", resource="Microsoft.Web/sites.otherApp")
    assert not evaluate(_report(failed=[_check("CKV_AZURE_17"), other_resource]), allowlist).ok
    other_file = _check("CKV_AZURE_17", file_path="/modules/app.bicep")
    assert not evaluate(_report(failed=[other_file]), allowlist).ok


def test_a_stale_allowlist_entry_fails() -> None:
    verdict = evaluate(_report(), [_allowed("CKV_AZURE_17")])
    assert not verdict.ok
    assert verdict.problems[0].startswith("stale allowlist entry CKV_AZURE_17")


def test_entries_for_a_file_that_did_not_parse_are_not_called_stale() -> None:
    verdict = evaluate(_report(parse_errors=["/ci/checkout/infra/main.bicep"]), [_allowed("CKV_AZURE_17")])
    assert len(verdict.problems) == 1
    assert "did not parse" in verdict.problems[0]


def test_the_summary_line_has_the_figures() -> None:
    verdict = evaluate(_report(failed=[_check("CKV_AZURE_17"), _check("CKV_AZURE_13")]), [_allowed("CKV_AZURE_17")])
    line = verdict.summary(12.34)
    assert line == (
        "checkov bicep: 5 passed, 2 failed (1 allowlisted, 1 not), 0 skipped, 0 parsing errors, 7 resources, 12.3 s"
    )


# --- the allowlist -------------------------------------------------------------------------------------------


def _write(tmp_path: Path, entries: Any) -> Path:
    path = tmp_path / "allowlist.json"
    path.write_text(json.dumps({"allowlist": entries}))
    return path


GOOD = {
    "check_id": "CKV_AZURE_17",
    "file": "main.bicep",
    "resource": SITE,
    "reason": "callers authenticate with Entra ID or function keys, never with certificates",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reason": "false positive"}, "the reason must say why"),
        ({"check_id": "CKV_AWS_20"}, "is not an Azure checkov id"),
        ({"file": "/main.bicep"}, "relative to infra/"),
        ({"resource": "functionApp"}, "<type>.<name>"),
        ({"extra": "x"}, "needs exactly the keys"),
    ],
)
def test_malformed_allowlist_entries_are_refused(tmp_path: Path, change: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_allowlist(_write(tmp_path, [{**GOOD, **change}]))


def test_duplicate_allowlist_entries_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        load_allowlist(_write(tmp_path, [GOOD, GOOD]))


def test_every_allowlist_entry_names_a_resource_that_exists() -> None:
    parser = BicepParser()
    entries = load_allowlist()
    assert entries, "an empty allowlist needs no file"
    for entry in entries:
        path = INFRA / entry.file
        assert path.is_file(), entry
        rtype, name = entry.resource.rsplit(".", 1)
        resources = analyse(parser, path.read_text()).json["resources"]
        assert resources.get(name, {}).get("type") == rtype, entry


# --- running checkov -----------------------------------------------------------------------------------------


def _fake_checkov(tmp_path: Path, output: str, exit_code: int = 0) -> tuple[Path, Path]:
    """An executable standing in for checkov: records its arguments and environment, prints `output`."""
    record = tmp_path / "call.json"
    script = tmp_path / "checkov"
    script.write_text(f"""#!{sys.executable}
import json, os, sys
with open({str(record)!r}, "w") as f:
    json.dump({{"argv": sys.argv[1:], "skip_update": os.environ.get("CKV_SKIP_PACKAGE_UPDATE_CHECK")}}, f)
sys.stdout.write({output!r})
sys.exit({exit_code})
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, record


def test_checkov_runs_offline_on_the_bicep_framework_with_json_output(tmp_path: Path) -> None:
    script, record = _fake_checkov(tmp_path, json.dumps(_report()), exit_code=1)
    raw, elapsed = gate.run_checkov(script, INFRA)
    assert raw == _report()
    assert elapsed >= 0
    call = json.loads(record.read_text())
    argv = call["argv"]
    assert argv[argv.index("--framework") + 1] == "bicep"
    assert argv[argv.index("--output") + 1] == "json"
    assert argv[argv.index("--directory") + 1] == str(INFRA)
    assert "--skip-download" in argv
    assert call["skip_update"] == "true"


def test_checkov_failing_itself_or_printing_no_json_is_an_error(tmp_path: Path) -> None:
    script, _ = _fake_checkov(tmp_path, "{}", exit_code=2)
    with pytest.raises(RuntimeError, match="exited 2"):
        gate.run_checkov(script, INFRA)
    script, _ = _fake_checkov(tmp_path, "Traceback: boom")
    with pytest.raises(RuntimeError, match="no JSON"):
        gate.run_checkov(script, INFRA)


def test_main_reports_and_exits_by_the_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    allowlist = _write(tmp_path, [])
    script, _ = _fake_checkov(tmp_path, json.dumps(_report()))
    assert gate.main(["--checkov", str(script), "--allowlist", str(allowlist)]) == 0
    assert "5 passed, 0 failed" in capsys.readouterr().out
    script, _ = _fake_checkov(tmp_path, json.dumps(_report(parse_errors=["/main.bicep"])))
    assert gate.main(["--checkov", str(script), "--allowlist", str(allowlist)]) == 1
    assert "did not parse" in capsys.readouterr().err
    assert gate.main(["--checkov", str(tmp_path / "missing"), "--allowlist", str(allowlist)]) == 2
    assert "make checkov" in capsys.readouterr().err
