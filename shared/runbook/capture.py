"""Capture: the protected filer's record (settings, junctions, export policies, cache policy, credential name),
kept in the catalog under the backup id; re-add and failover replay it."""

from __future__ import annotations

import logging

from shared.avere.records import FilerRecord
from shared.runbook import services
from shared.runbook.refs import BACKUP_KINDS, RunRef
from shared.runbook.runs import load_run, reserved_target

log = logging.getLogger("vfxtdr.filer")


def capture(run: RunRef) -> FilerRecord:
    """The filer's record (settings, junctions, policies), as the cluster answers; written to the catalog under
    the run's backup id (the run must be writing its backup)."""
    ctx = load_run(run, *BACKUP_KINDS).context()
    with services.open_catalog(ctx) as catalog:
        reserved_target(catalog.load(ctx.filer), run.run_id, ctx.filer.key)
    with services.avere_client(ctx.cluster, ctx.keyvault_url) as client:
        record = client.capture_core_filer(ctx.filer.name)
    with services.open_catalog(ctx) as catalog:
        catalog.put_record(ctx.filer, run.run_id, record)
    log.info("captured %s: %d junction(s), cryptoMode %s", ctx.filer.key, len(record.junctions), record.crypto_mode)
    return record
