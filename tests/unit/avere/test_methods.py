"""Which calls may be sent again after an answer that may have been lost: reads and idempotent setters only."""

from __future__ import annotations

import pytest

from devstack.cluster import dispatch  # noqa: F401 - fills the simulator's method table
from devstack.cluster.registry import METHODS
from shared.avere.methods import IDEMPOTENT, READS, is_read, may_resend


def test_every_read_is_read_only_on_the_simulator_and_every_read_only_call_is_a_read() -> None:
    # The simulator marks the calls that change nothing; the client's list must be exactly those. A write
    # listed as a read would be applied twice after a lost answer.
    readonly = {name for name, m in METHODS.items() if m.readonly}
    assert readonly == READS


def test_idempotent_setters_exist_and_change_state() -> None:
    for name in IDEMPOTENT - {"system.login", "system.logout"}:
        assert name in METHODS and not METHODS[name].readonly, name


@pytest.mark.parametrize(
    "method",
    [
        "vserver.addJunction",
        "corefiler.createCloudFiler",
        "nfs.addRule",
        "corefiler.generateMasterKey",
        "corefiler.activateMasterKey",
        "corefiler.uploadKeyRecoveryFile",
        "corefiler.createCredential",
        "cachePolicy.create",
        "nfs.addPolicy",
        "vserver.removeJunction",
        "corefiler.flush",
        "corefiler.remove",
        "sim.injectFault",
        "no.suchMethod",
    ],
)
def test_writes_and_unknown_calls_are_never_resent(method: str) -> None:
    assert not may_resend([method]) and not is_read(method)


def test_aliases_and_multicalls() -> None:
    assert is_read("mass.get") and may_resend(["mass.modifiedFilesInfo"])
    assert may_resend(["system.enableAPI", "corefiler.get"])
    assert not may_resend(["system.enableAPI", "corefiler.remove"])  # one write makes the request a write
    assert not may_resend([])
