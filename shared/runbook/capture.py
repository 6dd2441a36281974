"""Capture: the protected filer's record (settings, junctions, export policies, cache policy, credential name),
kept in the catalog under the backup id; re-add and failover replay it."""

from __future__ import annotations

import logging

from shared.avere.records import FilerRecord
from shared.runbook import services
from shared.runbook.payloads import FilerStep

log = logging.getLogger("vfxtdr.filer")


def capture(step: FilerStep) -> FilerRecord:
    """The filer's record (settings, junctions, policies); written to the catalog under the backup id."""
    if not step.backup_id:
        raise ValueError("capture_filer needs the run's backup_id: the record is kept under it")
    ctx = step.context
    with services.avere_client(ctx.cluster, ctx.keyvault_url) as client:
        record = client.capture_core_filer(ctx.filer.name)
    with services.open_catalog(ctx) as catalog:
        catalog.put_record(ctx.filer, step.backup_id, record)
    log.info("captured %s: %d junction(s), cryptoMode %s", ctx.filer.key, len(record.junctions),
             record.crypto_mode)
    return record
