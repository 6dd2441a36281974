"""Server-side container copy (Copy Blob or block-from-URL) as idempotent, page-sized steps.

Self-contained: outside this package it imports only the Azure SDKs, shared.azure.storage (accounts, SAS) and
shared.core.codec, the app's one record codec (a standard-library leaf): descriptors, page states and manifests
are its records, so the engine's payloads and the app's are read and written the same way.
"""

from shared.blobcopy.backup import backups, check_backup_page, newest_backup, verify_backup
from shared.blobcopy.changes import ChangesNotCleared, approve_changes, check_changes
from shared.blobcopy.driver import copy_container, copy_container_async
from shared.blobcopy.errors import CopyError, CopyInputError, NotReady, SourceUnreachable, redact
from shared.blobcopy.model import (
    AccountRef,
    CatalogRef,
    ChangeCheck,
    ContainerRef,
    CopyJob,
    DeleteReport,
    Guard,
    PageCursor,
    PagePlan,
    PageProgress,
    PageVerify,
    Summary,
)
from shared.blobcopy.session import CopyEnv, credential_connector, key_connector
from shared.blobcopy.steps import apply_deletes, finish, plan_page, poll_page, start_page, verify_page
from shared.blobcopy.verify import ManifestCheck

__all__ = [
    "AccountRef",
    "CatalogRef",
    "ChangeCheck",
    "ChangesNotCleared",
    "ContainerRef",
    "CopyEnv",
    "CopyError",
    "CopyInputError",
    "CopyJob",
    "DeleteReport",
    "Guard",
    "ManifestCheck",
    "NotReady",
    "PageCursor",
    "PagePlan",
    "PageProgress",
    "PageVerify",
    "SourceUnreachable",
    "Summary",
    "apply_deletes",
    "approve_changes",
    "backups",
    "check_backup_page",
    "check_changes",
    "copy_container",
    "copy_container_async",
    "credential_connector",
    "finish",
    "key_connector",
    "newest_backup",
    "plan_page",
    "poll_page",
    "redact",
    "start_page",
    "verify_backup",
    "verify_page",
]
