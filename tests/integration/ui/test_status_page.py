"""The status page in a real headless browser (Debian's chromium) against the local runner's HTTP host: what it
shows after a backup, as the backup ages on the virtual clock, during a backup whose copies the fault proxy holds
pending, and after a failover — badge colours, numbers, links, NEEDS_ATTENTION and its action — and that the page
is self-contained, keyless and runs under its own Content-Security-Policy."""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.faultproxy.proxy import FaultProxy
from shared.catalog.store import FilerState
from tests.fixtures.durable import http_call
from tests.fixtures.workflow import AppEnv

HOUR = 3600.0
WAIT = 30.0  # wall-clock seconds for the page to show something (it re-reads the API every second)
GREEN, AMBER, RED = "rgb(26, 127, 55)", "rgb(183, 121, 31)", "rgb(198, 40, 40)"  # the page's badge colours


@pytest.fixture
def ui_env(make_app_env: Callable[..., AppEnv], faults: FaultProxy) -> Iterator[AppEnv]:
    """The app environment through the fault proxy, with two more filers in the plan: `archive` (it will need
    attention) and `scratch` (never backed up). Only the first one exists on the cluster and is backed up."""

    def edit(plan: dict[str, Any]) -> None:
        first = plan["filers"][0]
        for filer in plan["filers"]:
            for side in ("source", "backup"):
                filer[side]["blob_endpoint"] = faults.account_url(filer[side]["account"])
        for name in ("archive", "scratch"):
            extra = copy.deepcopy(first)
            extra["name"] = f"{name}-{first['name']}"
            extra["source"]["container"] = f"{name}-{first['source']['container']}"[:63]
            plan["filers"].append(extra)

    yield make_app_env(edit_plan=edit)


# One read of a card, in the page's own thread: the page redraws every second, so reading element by element
# could mix two refreshes (or hold an element a redraw replaced).
SNAPSHOT = """
const card = document.querySelector(`section[data-filer="${arguments[0]}"]`);
if (!card) return null;
const one = (sel) => card.querySelector(sel);
const text = (sel) => one(sel) ? one(sel).innerText : null;
const href = (sel) => one(sel) ? one(sel).href : null;
const badge = one(".badge");
return {
  refreshes: document.body.dataset.refreshes, state: text(".state"), detail: text(".detail"),
  badge: badge.dataset.badge, badge_text: badge.innerText, badge_color: getComputedStyle(badge).backgroundColor,
  serving: text(".serving"), home: text(".home"), rpo: text(".rpo"), backup: text(".backup"),
  backup_link: href(".backup a"),
  drill: text(".drill"), last_run_link: href(".last-run a"), attention: text(".attention"),
  attention_color: one(".attention") ? getComputedStyle(one(".attention")).color : null,
  runs: Array.from(card.querySelectorAll(".run")).map((run) => ({
    instance: run.dataset.instance, kind: run.dataset.kind, text: run.innerText,
    blobs: run.querySelector(".bar-blobs .figures") ? run.querySelector(".bar-blobs .figures").innerText : null,
    bytes: run.querySelector(".bar-bytes .figures") ? run.querySelector(".bar-bytes .figures").innerText : null,
    bar: run.querySelector(".bar-blobs progress") ?
      [run.querySelector(".bar-blobs progress").value, run.querySelector(".bar-blobs progress").max] : null,
    eta: run.querySelector(".eta") ? run.querySelector(".eta").innerText : null,
    link: run.querySelector("a") ? run.querySelector("a").href : null})),
};
"""


def snapshot(driver: Any, key: str) -> dict[str, Any] | None:
    return driver.execute_script(SNAPSHOT, key)


def shows(driver: Any, key: str, what: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Poll the page (it refreshes itself every second) until the card of key satisfies check, against a
    wall-clock deadline; the snapshot that did."""
    from selenium.webdriver.support.ui import WebDriverWait

    seen: list[dict[str, Any]] = []

    def ok(_driver: Any) -> dict[str, Any] | bool:
        snap = snapshot(driver, key)
        if snap is None:
            return False
        seen[:] = [snap]
        return snap if check(snap) else False

    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.2).until(ok)
    except Exception as err:
        raise AssertionError(f"the page never showed {what}; last seen: {seen}") from err


def api_report(runner: Any, key: str) -> dict:
    reply = http_call("GET", f"{runner.base_url}/api/filers")
    assert reply.status == 200, reply.body
    return {f["key"]: f for f in reply.json()["filers"]}[key]


def custom(runner: Any, instance: str) -> dict:
    status = (runner.status(instance) or {}).get("customStatus")
    return status if isinstance(status, dict) else {}


def start(runner: Any, path: str) -> str:
    reply = http_call("POST", f"{runner.base_url}/api/{path}")
    assert reply.status == 202, reply.body
    return reply.json()["id"]


def finish(runner: Any, instance: str) -> dict:
    status = runner.wait_for(instance, timeout=240)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    return status["output"]


def duration(seconds: float) -> str:
    """The page's own format (status_page.html: duration)."""
    s = round(seconds)
    h, m, sec = s // 3600, (s % 3600) // 60, s % 60
    return f"{h} h {m} min" if h else f"{m} min {sec} s" if m else f"{sec} s"


def mib(n: int) -> str:
    units, value, i = ["B", "KiB", "MiB", "GiB"], float(n), 0
    while value >= 1024 and i < len(units) - 1:
        value, i = value / 1024, i + 1
    return f"{n} B" if i == 0 else f"{value:.1f} {units[i]}"


def save_screenshot(driver: Any, tmp_path: Path) -> None:
    """The page as it is now: always to tmp_path (checked), and to VFXTDR_SCREENSHOT when `make screenshot`
    names a path (tests themselves never write tracked files)."""
    shot = tmp_path / "status.png"
    assert driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    target = os.environ.get("VFXTDR_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)


def test_status_page_backup_held_copy_failover_and_screenshot(
    ui_env: AppEnv, faults: FaultProxy, durable_runner, browser: Any, tmp_path: Path
) -> None:
    import function_app

    env, driver = ui_env, browser
    runner = durable_runner(function_app.app, clock=env.clock)
    key = f"primary/{env.filer_name}"
    archive = env.plan.filer("primary", f"archive-{env.filer_name}")
    scratch = f"primary/scratch-{env.filer_name}"

    def needs_attention(state: FilerState) -> None:
        state.needs_attention = {
            "since": "2027-01-15T07:00:00Z",
            "error": "re-add failed 4 times in a row: createCloudFiler: bucket is not readable",
            "instance_id": "x",
            "record": None,
        }

    env.catalog().update(archive, needs_attention)
    rng = random.Random(1)  # incompressible data: the backup's byte counts are the files' sizes
    for path, size in (("/data/big.bin", 3 << 20), ("/data/a.bin", 1 << 20), ("/scratch/b.bin", 1 << 20)):
        env.write(path, rng.randbytes(size))
    env.flush()

    # The page itself: static, self-contained, keyless, under a strict CSP.
    page = http_call("GET", f"{runner.base_url}/api/status")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    text = page.body.decode()
    assert "http:" not in text and "https:" not in text and "@import" not in text and " src=" not in text
    assert runner.system_key not in text
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp and "connect-src 'self'" in csp

    driver.get(f"{runner.base_url}/api/status?refresh=1")
    snap = shows(driver, key, "the filer", lambda s: s["state"] == "UNPROTECTED")
    assert (snap["badge"], snap["badge_color"]) == ("red", RED)
    assert snap["backup"] == "no verified backup" and snap["drill"] == "none yet" and snap["runs"] == []
    assert len(driver.find_elements("css selector", "section[data-filer]")) == 3
    assert snapshot(driver, scratch)["badge"] == "red"
    # NEEDS_ATTENTION in red, with the action to take.
    held = snapshot(driver, archive.key)
    assert held["state"] == "NEEDS_ATTENTION" and held["attention"].startswith("NEEDS_ATTENTION")
    assert "bucket is not readable" in held["attention"]
    assert f"To do: fix the cluster, then POST /api/filers/{archive.key}/readd" in held["attention"]
    assert held["attention_color"] == RED and (held["badge"], held["badge_color"]) == ("red", RED)
    assert held["serving"] == "no cluster (not served)"

    # After a backup: green, its age, its id and a link to its run.
    first = start(runner, f"backups/primary/{env.filer_name}")
    first_out = finish(runner, first)
    snap = shows(driver, key, "the backup", lambda s: s["state"] == "PROTECTED")
    report = api_report(runner, key)
    assert (snap["badge"], snap["badge_color"]) == ("green", GREEN) and snap["serving"] == "primary"
    assert snap["home"] == f"cluster primary · container {env.filer.source.container}"
    assert first_out["backup_id"] in snap["backup"] and duration(report["last_backup"]["age_s"]) in snap["backup"]
    assert snap["backup_link"] == f"{runner.base_url}/api/runs/{first}"
    assert snap["badge_text"].startswith("GREEN") and snap["badge_text"].endswith("/ 24.0 h")

    # 30 hours on: past the target, within 1.5x: amber.
    env.clock.advance(30 * HOUR)
    snap = shows(driver, key, "the amber badge", lambda s: s["badge"] == "amber")
    assert snap["badge_color"] == AMBER and "older than the RPO target" in snap["rpo"]

    # A backup whose copies the fault proxy holds pending: the page shows the run, its progress and ETA.
    # Two copies show pending for 60 polls (a minute of virtual time): the run reports progress at 30 s.
    faults.add_rule("pending", account=env.filer.backup.account, polls=60, times=2)
    env.write("/data/new.bin", random.Random(2).randbytes(1 << 20))
    second = start(runner, f"backups/primary/{env.filer_name}")
    runner.run_until(
        lambda: (
            custom(runner, second).get("step") == "precopy"
            and custom(runner, second).get("bytes_copied", 0) > 0
            and runner.is_idle()
        ),
        timeout=90,
    )
    progress = custom(runner, second)
    assert progress["pending"] == 2 and progress["blobs_copied"] < progress["blobs_to_copy"]
    blobs = f"{progress['blobs_copied']} / {progress['blobs_to_copy']}"
    # The page may still show what it read while the run started: wait for these figures.
    snap = shows(driver, key, "the running backup's progress", lambda s: [r["blobs"] for r in s["runs"]] == [blobs])
    [run] = snap["runs"]
    assert snap["state"] == "RUNNING" and run["instance"] == second and run["kind"] == "backup"
    assert "step precopy" in run["text"] and run["link"] == f"{runner.base_url}/api/runs/{second}"
    assert run["bytes"] == f"{mib(progress['bytes_copied'])} / {mib(progress['bytes_to_copy'])}"
    assert run["bar"] == [progress["blobs_copied"], progress["blobs_to_copy"]]
    assert run["eta"] == f"ETA {duration(progress['eta_s'])} · 2 copies pending"
    assert (snap["badge"], snap["badge_color"]) == ("amber", AMBER)  # an old backup while a new one runs
    save_screenshot(driver, tmp_path)

    second_out = finish(runner, second)
    snap = shows(
        driver, key, "the new backup", lambda s: s["state"] == "PROTECTED" and second_out["backup_id"] in s["backup"]
    )
    assert (snap["badge"], snap["badge_color"]) == ("green", GREEN) and snap["runs"] == []

    # After a failover: served from the DR cluster, with no re-protect backup outside the DR region yet: red.
    failover = start(runner, f"failovers/primary/{env.filer_name}")
    finish(runner, failover)
    snap = shows(driver, key, "the failover", lambda s: s["state"] == "FAILED_OVER")
    assert snap["serving"] == "dr" and "attached to cluster dr" in snap["detail"]
    assert snap["home"].startswith("DR cluster dr · container ")
    assert (snap["badge"], snap["badge_color"]) == ("red", RED) and snap["backup"].startswith("no verified backup")
    assert "no re-protect backup" in snap["detail"]
    assert snap["last_run_link"].startswith(f"{runner.base_url}/api/runs/")

    source = driver.page_source
    assert runner.system_key not in source and "runtime/webhooks" not in source
    problems = [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" or "Content Security Policy" in e["message"]
    ]
    assert not problems, problems


def test_status_page_says_why_it_refuses(
    ui_env: AppEnv, durable_runner, browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import function_app

    runner = durable_runner(function_app.app, clock=ui_env.clock)
    monkeypatch.setenv("WEBSITE_SITE_NAME", "vfxtdr-prod")
    # App Service without its authentication: nothing vouches for a principal header, the page says so
    browser.get(f"{runner.base_url}/api/status")
    body = browser.find_element("css selector", "body").text
    assert "without App Service authentication" in body and "WEBSITE_AUTH_ENABLED" in body
    assert not browser.find_elements("css selector", "section[data-filer]")
    # with it, a browser that has not signed in is sent to its Entra ID sign-in, which would bring it back
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    browser.get(f"{runner.base_url}/api/status")
    assert browser.current_url == f"{runner.base_url}/.auth/login/aad?post_login_redirect_uri=/api/status"
    assert not browser.find_elements("css selector", "section[data-filer]")
