"""The matrix's fixtures (its table is tests/fixtures/matrix_table.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.faultproxy.proxy import FaultProxy
from shared.azure.retry import RetrySettings
from shared.runbook import services
from tests.fixtures.workflow import AppEnv
from tests.reliability.world import World

# Storage retries in milliseconds: a cell's transient faults must not cost wall-clock seconds.
FAST_STORAGE_RETRY = RetrySettings(
    total=4, initial_backoff=0.02, max_backoff=0.2, connection_timeout=5, read_timeout=20
)
# The cluster client's pause between tries, likewise: the same tries, in milliseconds instead of seconds.
FAST_AVERE_BACKOFF = 0.02
# Key Vault's, likewise: the SDK's exponential backoff (0.8 s doubling) made one lasting-500 cell take 24 s.
FAST_VAULT_RETRY = {"retry_total": 4, "retry_backoff_factor": 0.02, "retry_backoff_max": 0.2}


@pytest.fixture
def world(
    make_app_env: Callable[..., AppEnv], faults: FaultProxy, durable_runner: Callable[..., Any], tmp_path: Path
) -> Iterator[World]:
    """An app environment whose view of both storage accounts goes through the fault proxy."""

    def via_proxy(plan: dict[str, Any]) -> None:
        for filer in plan["filers"]:
            for side in ("source", "backup"):
                filer[side]["blob_endpoint"] = faults.account_url(filer[side]["account"])
        plan["copy"]["pending_limit_seconds"] = 120

    previous = services.configure(
        storage_retry=FAST_STORAGE_RETRY, avere_backoff=FAST_AVERE_BACKOFF, vault_retry=FAST_VAULT_RETRY
    )
    services.forget_vaults()  # a vault client made before holds the SDK's retries
    env = make_app_env(edit_plan=via_proxy)
    built = World(env=env, proxy=faults, make_runner=durable_runner, state_dir=tmp_path / "durable")
    try:
        yield built
    finally:
        faults.clear()
        env.keyvault.clear_faults()
        services.restore(previous)
        services.forget_vaults()
