"""Pytest wiring: each part of the local stack contributes its session fixtures from tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.storage",
    "tests.fixtures.keyvault",
    "tests.fixtures.cluster",
    "tests.fixtures.copy",
    "tests.fixtures.durable",
    "tests.fixtures.workflow",
    "tests.fixtures.trap",
    "tests.fixtures.browser",
    "tests.fixtures.probe",
    "tests.fixtures.matrix_table",
]
