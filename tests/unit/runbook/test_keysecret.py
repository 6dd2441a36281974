"""Key secret names obey Key Vault's rule and never collide; values round-trip without leaking."""

import re

import pytest

from shared.runbook.key_secret import KeySecret, key_secret_name

RULE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")


def test_plain_names_are_readable() -> None:
    assert key_secret_name("primary", "demo-filer") == "avere-key-primary-demo-filer"


@pytest.mark.parametrize(("cluster", "filer"), [("c1", "a.b"), ("c1", "a_b"), ("x" * 80, "y" * 80), ("c", "ü")])
def test_awkward_names_obey_the_rule(cluster: str, filer: str) -> None:
    assert RULE.match(key_secret_name(cluster, filer))


def test_names_that_sanitise_alike_stay_distinct() -> None:
    assert key_secret_name("c1", "a.b") != key_secret_name("c1", "a_b")


def test_value_round_trips_and_repr_hides_secrets() -> None:
    secret = KeySecret("pass phrase", "U2FsdGVkX1+recovery", "key-1", "sig", "primary", "demo")
    assert KeySecret.loads(secret.dumps()) == secret
    assert "pass phrase" not in repr(secret) and "recovery" not in repr(secret)
    with pytest.raises(ValueError, match="not a") as err:
        KeySecret.loads('{"passphrase": "hunter2"}')
    assert "hunter2" not in str(err.value)
