"""Which deleted Key Vault secrets the write probe purges: only where the vault's recovery level allows it."""

from __future__ import annotations

import pytest

from shared.azure.keyvault import purge_after_delete


@pytest.mark.parametrize(
    ("level", "purge"),
    [
        ("Recoverable+Purgeable", True),  # soft delete, no purge protection (the stand-in)
        ("CustomizedRecoverable+Purgeable", True),  # the same with a retention under 90 days
        ("Recoverable", False),  # purge protection (infra/main.bicep): the vault keeps it until retention ends
        ("CustomizedRecoverable", False),
        ("Recoverable+ProtectedSubscription", False),
        ("CustomizedRecoverable+ProtectedSubscription", False),
        ("Purgeable", False),  # no soft delete: the deletion is already final
        ("", False),
        (None, False),  # unknown: never asked for
    ],
)
def test_purge_only_where_the_recovery_level_allows_it(level: str | None, purge: bool) -> None:
    assert purge_after_delete(level) is purge
