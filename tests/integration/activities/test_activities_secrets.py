"""No secret value reaches an activity's result, the catalog, an error text or the logs (values the test knows)."""

from __future__ import annotations

import logging
import re

import pytest

from shared.catalog.store import filer_prefix
from shared.runbook.failover_payloads import BackupPageRef, BackupRef, ChooseBackup
from shared.runbook.payloads import AttachRef
from tests.fixtures.workflow import Host, attach_until_done, backup_by_hand, start_run

# A SAS signature in any form: query parameter, or the parameter percent-encoded inside another URL. The Azure
# SDK's own log of a request URL says `sig=REDACTED`: that is no signature.
SAS_SIG = re.compile(r"(?i)(?:[?&]|%26|%3f)sig(?:=|%3d)(?!REDACTED\b)[^&\s\"']{8,}")


def _leaks(text: str, secrets: dict[str, str]) -> list[str]:
    found = [what for what, value in secrets.items() if value and value in text]
    if SAS_SIG.search(text):
        found.append("a SAS signature")
    return found


def test_no_secret_in_results_catalog_errors_or_logs(app_env, caplog):
    env, host = app_env, Host()
    caplog.set_level(logging.DEBUG)
    for i in range(5):
        env.write(f"/data/f{i}.bin", bytes([i]) * (1000 * (i + 1)))
    env.flush()
    backup = backup_by_hand(env, host, "leak-1", during_precopy=lambda: env.write("/data/late", b"late"))
    assert backup.final.verified

    failover = start_run(env, host, "failover", "f1")
    choice = host("choose_backup", ChooseBackup(failover))
    host("verify_backup_page", BackupPageRef(failover, choice.backup_id, 0))
    host("mark_attached", BackupRef(failover, choice.backup_id))
    attach_until_done(AttachRef(failover, backup_id=choice.backup_id), env.clock, host)

    errors = []
    later = start_run(env, host, "backup", "leak-2")
    host("begin_backup", later)
    env.delete_secret(env.secret_names["primary"])  # a failing activity: its error text is scanned too
    with pytest.raises(Exception) as caught:  # any failure will do: its text is what is scanned
        host("rotate_key", later)
    errors.append(str(caught.value))

    secrets = env.secret_values()
    assert len(secrets) >= 8  # admin passwords, account keys, two passphrases and recovery files
    with env.catalog() as catalog:
        documents = [
            catalog.read_json(p)[0]
            for p in catalog.list_paths(filer_prefix("primary", env.filer_name))
            if p.endswith(".json")
        ]
    assert documents
    for name, text in host.results:
        assert not _leaks(text, secrets), (name, _leaks(text, secrets))
    for document in documents:
        assert not _leaks(str(document), secrets)
    for text in errors:
        assert not _leaks(text, secrets)
    assert caplog.records and not _leaks(caplog.text, secrets)
