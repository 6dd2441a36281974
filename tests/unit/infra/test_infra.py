"""Offline check of infra/: Bicep syntax (pycep's grammar) plus project rules on its AST (the shared helpers live here).

No Bicep compiler can be installed offline, so this is what can be checked here: every file parses, every
symbol referenced is declared, every parameter is used, secret parameters are @secure, module calls pass the
module's parameters, role assignments use the right built-in roles, and the security settings hold. The resources
of the DR deployment are asserted in test_infra_resources.py, the checkov gate in test_infra_checkov.py.
`az bicep build` and `what-if` belong to an online CI job (docs/deploy.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from lark import Token, Tree
from pycep import BicepParser

from shared.plan.load import parse_plan
from tests.paths import REPO

INFRA = REPO / "infra"
MAIN = INFRA / "main.bicep"

# Built-in role definitions (learn.microsoft.com/azure/role-based-access-control/built-in-roles): name -> id.
BUILTIN_ROLES = {
    "keyVaultSecretsOfficer": ("Key Vault Secrets Officer", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"),
    "storageBlobDataReader": ("Storage Blob Data Reader", "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"),
    "storageBlobDataContributor": ("Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe"),
    "storageBlobDataOwner": ("Storage Blob Data Owner", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"),
    "storageBlobDelegator": ("Storage Blob Delegator", "db58b8e5-c6ad-4a2a-8342-4190687cbf4a"),
    "storageQueueDataContributor": ("Storage Queue Data Contributor", "974c5e8b-45b9-4653-ba55-5f855dd0fb88"),
    "storageTableDataContributor": ("Storage Table Data Contributor", "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"),
    "monitoringMetricsPublisher": ("Monitoring Metrics Publisher", "3913510d-42f4-4e42-8a64-420c390055eb"),
    "durableTaskDataContributor": ("Durable Task Data Contributor", "0ad04412-c4d5-4796-b79c-f76d14c8d402"),
}
MODULES = {
    "modules/storage-roles.bicep",
    "modules/network.bicep",
    "modules/private-endpoint.bicep",
    "modules/backup-account.bicep",
    "modules/durable-task-scheduler.bicep",
    "modules/alerts.bicep",
}
_SECRET_NAME = re.compile(r"(password|secret|token|sas|connectionString|key)s?$", re.IGNORECASE)
_BUILTIN_NAMESPACES = {"az", "sys"}
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def parser() -> BicepParser:
    return BicepParser()


@dataclass
class Bicep:
    """One parsed Bicep file: its syntax tree, pycep's JSON view, declarations and references."""

    text: str
    tree: Tree
    json: dict[str, Any]
    declared: dict[str, str] = field(default_factory=dict)  # name -> param/var/resource/module/loop
    outputs: set[str] = field(default_factory=set)  # outputs have a namespace of their own
    duplicates: list[str] = field(default_factory=list)
    references: set[str] = field(default_factory=set)
    decorators: dict[str, set[str]] = field(default_factory=dict)
    required_params: set[str] = field(default_factory=set)


def analyse(parser: BicepParser, text: str) -> Bicep:
    """Parse (raises on a syntax error) and collect what the rules need."""
    tree = parser._create_tree(text=text, file_path=None)
    bicep = Bicep(text, tree, parser.parse(text=text))
    for element in tree.children:
        if not isinstance(element, Tree) or element.data == "scope":
            continue
        name = next((c for c in element.children if isinstance(c, Token)), None)
        if name is not None and element.data == "output":
            bicep.outputs.add(str(name))
        elif name is not None:
            if str(name) in bicep.declared:
                bicep.duplicates.append(str(name))
            bicep.declared[str(name)] = str(element.data)
        decorators = next((c for c in element.children if isinstance(c, Tree) and c.data == "decorators"), None)
        if decorators is not None and name is not None:
            bicep.decorators[str(name)] = {str(d.children[0]) for d in decorators.children if d.children}
        if element.data == "param" and element.children[-1] is None:
            bicep.required_params.add(str(name))
        _collect(element, bicep)
    return bicep


def _collect(node: Any, bicep: Bicep) -> None:
    if not isinstance(node, Tree):
        return
    if node.data in ("loop_array", "loop_array_index", "loop_object"):
        for child in node.children:
            if isinstance(child, Token):
                bicep.declared.setdefault(str(child), "loop")
    if node.data == "decorators":
        return
    if node.data == "string":
        token = str(node.children[0])
        if token.startswith("'"):
            bicep.references |= _interpolated_names(token)
        else:
            bicep.references.add(token)
        return
    if node.data == "property_accessor":
        _collect(node.children[0], bicep)
        _property_tail(node.children[1], bicep)
        return
    for child in node.children:
        _collect(child, bicep)


def _property_tail(node: Any, bicep: Bicep) -> None:
    """`a.b.c` nests as accessor(a, accessor(b, c)): everything right of the first dot is a property name."""
    if isinstance(node, Tree) and node.data == "string":
        return
    if isinstance(node, Tree) and node.data == "operator" and len(node.children) == 1:
        _property_tail(node.children[0], bicep)
        return
    if isinstance(node, Tree) and node.data == "property_accessor":
        _property_tail(node.children[0], bicep)
        _property_tail(node.children[1], bicep)
        return
    _collect(node, bicep)


def _interpolated_names(literal: str) -> set[str]:
    names: set[str] = set()
    for raw in re.findall(r"\$\{([^}]*)\}", literal):
        expr = re.sub(r"'[^']*'", "''", raw)
        names |= set(re.findall(r"(?<![.\w])([A-Za-z_]\w*)(?!\s*\(|\w)", expr))
    return names


def symbol_problems(bicep: Bicep, modules: dict[str, Bicep] | None = None) -> list[str]:
    """The semantic checks pycep does not do (bicep build would: BCP057, unused params, BCP035/BCP037)."""
    problems = [
        f"{name}: referenced but never declared"
        for name in sorted(bicep.references - set(bicep.declared) - _BUILTIN_NAMESPACES)
    ]
    problems += [f"{name}: declared more than once" for name in bicep.duplicates]
    params = [n for n, kind in bicep.declared.items() if kind == "param"]
    problems += [f"param {name}: declared but never used" for name in params if name not in bicep.references]
    problems += [
        f"param {name}: holds a secret but is not @secure()"
        for name in params
        if _SECRET_NAME.search(name) and "secure" not in bicep.decorators.get(name, set())
    ]
    for name, module in (bicep.json.get("modules") or {}).items():
        target = (modules or {}).get(module["detail"]["path"])
        if target is None:
            problems.append(f"module {name}: {module['detail']['path']} does not exist")
            continue
        config = module["config"].get("config", module["config"])
        passed = set((config.get("params") or {}).keys())
        declared = {n for n, kind in target.declared.items() if kind == "param"}
        problems += [
            f"module {name}: required param {p} is not passed" for p in sorted(target.required_params - passed)
        ]
        problems += [f"module {name}: passes {p}, which the module does not declare" for p in sorted(passed - declared)]
    return problems


def load_all(parser: BicepParser, main_text: str | None = None) -> tuple[Bicep, dict[str, Bicep]]:
    main = analyse(parser, main_text if main_text is not None else MAIN.read_text())
    modules = {str(p.relative_to(INFRA)): analyse(parser, p.read_text()) for p in INFRA.glob("modules/*.bicep")}
    return main, modules


def accessor(node: Any) -> str:
    """pycep's JSON for `a.b.c` as the dotted text."""
    if isinstance(node, dict) and node.get("operator", {}).get("type") == "property_accessor":
        ops = node["operator"]["operands"]
        return f"{accessor(ops['operand_1'])}.{accessor(ops['operand_2'])}"
    return str(node)


def body(config: dict[str, Any]) -> dict[str, Any]:
    """The object of a resource or module, under its loop (`[for ...]`) and/or condition (`if (...)`)."""
    if "config" in config and ("loop_type" in config or "condition" in config):
        return config["config"]
    return config


def condition(config: dict[str, Any]) -> Any:
    """The `if (...)` of a resource or module (None when unconditional)."""
    return config.get("condition")


def loop_source(config: dict[str, Any]) -> Any:
    """What a `[for x in <source>: ...]` iterates over (None when not a loop)."""
    loop = config.get("loop_type")
    return loop["detail"]["array_name"] if loop else None


def resources_of(bicep: Bicep, rtype: str) -> dict[str, dict[str, Any]]:
    return {
        name: body(res["config"])
        for name, res in bicep.json["resources"].items()
        if res["type"] == rtype and not res["existing"]
    }


def resource(bicep: Bicep, name: str) -> dict[str, Any]:
    return body(bicep.json["resources"][name]["config"])


def module_call(bicep: Bicep, name: str) -> dict[str, Any]:
    return body(bicep.json["modules"][name]["config"])


def param_default(bicep: Bicep, name: str) -> Any:
    return bicep.json["parameters"][name]["default"]


def variable(bicep: Bicep, name: str) -> Any:
    return bicep.json["variables"][name]["value"]


def ternary(node: Any) -> tuple[Any, Any, Any]:
    """`cond ? a : b` as (cond, a, b); fails the test when the node is not a conditional."""
    assert isinstance(node, dict) and node.get("operator", {}).get("type") == "conditional", node
    ops = node["operator"]["operands"]
    return ops["condition"], ops["true_value"], ops["false_value"]


# --- syntax and symbols ---------------------------------------------------------------------------------


def test_every_bicep_file_parses_and_is_consistent(parser: BicepParser) -> None:
    files = sorted(INFRA.rglob("*.bicep"))
    assert {p.relative_to(INFRA).as_posix() for p in files} == {"main.bicep"} | MODULES
    main, modules = load_all(parser)
    assert symbol_problems(main, modules) == []
    for module in modules.values():
        assert symbol_problems(module, {}) == []
    assert {
        "appName",
        "drLocation",
        "keyVaultName",
        "planJson",
        "initialSecrets",
        "durableBackend",
        "privateNetworking",
        "authClientId",
        "actionGroupId",
    } <= set(main.declared)
    # every module file is called from main.bicep
    assert {m["detail"]["path"] for m in main.json["modules"].values()} == MODULES


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (("  }\n}\n\n// --- Key Vault", "  }\n\n// --- Key Vault"), "syntax"),
        (("location: drLocation", "location: drRegion"), "drRegion: referenced but never declared"),
        (
            (
                "'${hostStorage.properties.primaryEndpoints.blob}${deploymentContainerName}'",
                "'${hostStorage.properties.primaryEndpoints.blob}${deploymentContainer_Name}'",
            ),
            "deploymentContainer_Name: referenced but never declared",
        ),
        (("@secure()\nparam initialSecrets", "param initialSecrets"), "param initialSecrets: holds a secret"),
        (
            ("param tags object = {}", "param tags object = {}\nparam unusedThing string = 'x'"),
            "param unusedThing: declared but never used",
        ),
        (("var useScheduler = ", "var planJson = 'x'\nvar useScheduler = "), "planJson: declared more than once"),
        (
            ("storageAccountName: account.name\n    principalId", "storageAccountName: account.name\n    principalID"),
            "module sourceRoles: required param principalId is not passed",
        ),
        (
            (
                "'modules/backup-account.bicep' = [for (account, i) in backupStorageAccounts",
                "'modules/backup-acount.bicep' = [for (account, i) in backupStorageAccounts",
            ),
            "module backupAccounts: modules/backup-acount.bicep does not exist",
        ),
        (
            ("    skuName: dtsSkuName\n", "    skuName: dtsSkuName\n    capacity: 2\n"),
            "module scheduler: passes capacity, which the module does not declare",
        ),
    ],
)
def test_the_checks_catch_defects(parser: BicepParser, edit: tuple[str, str], problem: str) -> None:
    text = MAIN.read_text()
    assert edit[0] in text
    broken = text.replace(edit[0], edit[1], 1)
    if problem == "syntax":
        with pytest.raises(Exception, match=r"Unexpected|invalid|Expected"):
            analyse(parser, broken)
        return
    main, modules = load_all(parser, broken)
    assert any(p.startswith(problem) for p in symbol_problems(main, modules)), symbol_problems(main, modules)


# --- roles ------------------------------------------------------------------------------------------------


def test_role_ids_are_the_built_in_ones(parser: BicepParser) -> None:
    main, modules = load_all(parser)
    declared = variable(main, "roles")
    assert declared == {key: guid for key, (_, guid) in BUILTIN_ROLES.items()}
    # no role id outside the reviewed table: modules receive ids from main.bicep
    start = main.text.index("var roles = {")
    table = main.text[start : main.text.index("}", start)]
    assert _GUID.findall(main.text.replace(table, "")) == []
    for path, module in modules.items():
        assert _GUID.findall(module.text) == [], path


def _role_id(assignment: dict[str, Any]) -> str:
    definition = assignment["properties"]["roleDefinitionId"]["function"]
    assert definition["type"] == "subscription_resource_id"
    assert definition["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    return accessor(definition["parameters"]["resource_name_1"])


def test_each_identity_gets_exactly_the_roles_it_needs(parser: BicepParser) -> None:
    main, modules = load_all(parser)

    def roles_passed(module: str) -> Any:
        return module_call(main, module)["params"]["roleDefinitionIds"]

    # source accounts: read only, the app never writes a source container
    assert [accessor(r) for r in roles_passed("sourceRoles")] == [
        "roles.storageBlobDataReader",
        "roles.storageBlobDelegator",
    ]
    # backup accounts, created here or brought by the operator: write backups and the catalog, SAS for drills
    assert roles_passed("backupAccounts") == roles_passed("existingBackupRoles") == "backupAccountRoles"
    assert [accessor(r) for r in variable(main, "backupAccountRoles")] == [
        "roles.storageBlobDataContributor",
        "roles.storageBlobDelegator",
    ]
    # host storage: blob for the host; queues and tables only for the Azure Storage Durable backend
    cond, scheduler_roles, storage_roles = ternary(variable(main, "hostStorageRoles"))
    assert cond == "useScheduler"
    assert [accessor(r) for r in scheduler_roles] == ["roles.storageBlobDataOwner"]
    assert [accessor(r) for r in storage_roles] == [
        "roles.storageBlobDataOwner",
        "roles.storageQueueDataContributor",
        "roles.storageTableDataContributor",
    ]
    assignments = resources_of(main, "Microsoft.Authorization/roleAssignments")
    assert {name: (config["scope"], _role_id(config)) for name, config in assignments.items()} == {
        "vaultRole": ("vault", "roles.keyVaultSecretsOfficer"),
        "hostStorageRoleAssignments": ("hostStorage", "roleId"),
        "insightsRole": ("insights", "roles.monitoringMetricsPublisher"),
        "taskHubRole": ("taskHubRef", "roles.durableTaskDataContributor"),
        "taskHubDashboardRole": ("taskHubRef", "roles.durableTaskDataContributor"),
    }
    for name, config in assignments.items():
        props = config["properties"]
        if name == "taskHubDashboardRole":  # the operators' group, for the DTS dashboard, only when given
            assert props == {**props, "principalType": "Group", "principalId": "dtsDashboardGroupId"}
            continue
        assert props["principalType"] == "ServicePrincipal", name
        assert accessor(props["principalId"]) == "functionApp.identity.principalId", name
    for path in ("modules/storage-roles.bicep", "modules/backup-account.bicep"):
        (inner,) = resources_of(modules[path], "Microsoft.Authorization/roleAssignments").values()
        assert inner["scope"] == "account", path
        assert _role_id(inner) == "roleId", path
        assert inner["properties"]["principalId"] == "principalId", path
    # every assignment is scoped to one resource: none at resource-group or subscription level
    for bicep in (main, *modules.values()):
        for config in resources_of(bicep, "Microsoft.Authorization/roleAssignments").values():
            assert config.get("scope"), config


# --- security settings --------------------------------------------------------------------------------------


def app_settings(main: Bicep) -> dict[str, Any]:
    """Every app setting the template can set: the base list and the optional lists concatenated to it."""
    (site,) = resources_of(main, "Microsoft.Web/sites").values()
    concat = site["properties"]["siteConfig"]["appSettings"]["function"]
    assert concat["type"] == "concat"
    base, *optional = concat["parameters"].values()
    settings = {s["name"]: s["value"] for s in base}
    for name in optional:  # `cond ? [settings] : []` (or the other way round)
        _, when_true, when_false = ternary(variable(main, name))
        assert [] in (when_true, when_false), name
        chosen = when_true or when_false
        settings |= {_resolve(main, s["name"]): s["value"] for s in chosen}
    return settings


def _resolve(bicep: Bicep, value: Any) -> Any:
    """A string variable's value in place of its name."""
    if isinstance(value, str) and bicep.declared.get(value) == "var":
        return variable(bicep, value)
    return value


def test_function_app_is_flex_python_with_identity_and_https_only(parser: BicepParser) -> None:
    main, _ = load_all(parser)
    (plan,) = resources_of(main, "Microsoft.Web/serverfarms").values()
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    (site,) = resources_of(main, "Microsoft.Web/sites").values()
    assert site["identity"] == {"type": "SystemAssigned"}
    props = site["properties"]
    assert props["httpsOnly"] is True
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    assert props["siteConfig"]["ftpsState"] == "Disabled"
    assert props["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.11"}
    deployment = props["functionAppConfig"]["deployment"]["storage"]
    assert deployment["authentication"] == {"type": "SystemAssignedIdentity"}
    settings = app_settings(main)
    assert settings["VFXTDR_PLAN"] == "planJson"
    assert settings["VFXTDR_TASK_HUB"] == "taskHubName"
    assert accessor(settings["AzureWebJobsStorage__accountName"]) == "hostStorage.name"
    # Flex Consumption refuses these; a connection string would put an account key in the settings
    for forbidden in (
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_EXTENSION_VERSION",
        "AzureWebJobsStorage",
        "WEBSITE_RUN_FROM_PACKAGE",
    ):
        assert forbidden not in settings
    for bicep in (main, *load_all(parser)[1].values()):
        for secret_api in ("listKeys(", "listAccountSas(", "listServiceSas(", "AccountKey="):
            assert secret_api not in bicep.text


def test_storage_and_vault_settings(parser: BicepParser) -> None:
    main, modules = load_all(parser)
    accounts = {
        ("main", name): config for name, config in resources_of(main, "Microsoft.Storage/storageAccounts").items()
    }
    backup = modules["modules/backup-account.bicep"]
    accounts |= {
        ("backup", name): config for name, config in resources_of(backup, "Microsoft.Storage/storageAccounts").items()
    }
    assert set(accounts) == {("main", "hostStorage"), ("backup", "account")}
    for name, account in accounts.items():
        props = account["properties"]
        assert props["minimumTlsVersion"] == "TLS1_2", name
        assert props["supportsHttpsTrafficOnly"] is True, name
        assert props["allowBlobPublicAccess"] is False, name
        assert props["allowCrossTenantReplication"] is False, name
        assert props["defaultToOAuthAuthentication"] is True, name
    # the host storage is reached with the identity only; a backup account keeps shared keys for the Avere
    # cluster's cloud credential (the account key), and says so where it is set
    assert accounts["main", "hostStorage"]["properties"]["allowSharedKeyAccess"] is False
    assert accounts["backup", "account"]["properties"]["allowSharedKeyAccess"] is True
    comment = backup.text[: backup.text.index("allowSharedKeyAccess: true")].rsplit("allowBlobPublicAccess", 1)[1]
    assert "Avere" in comment
    assert "account key" in comment
    (vault,) = resources_of(main, "Microsoft.KeyVault/vaults").values()
    props = vault["properties"]
    assert props["enablePurgeProtection"] is True
    assert props["enableSoftDelete"] is True
    assert props["enableRbacAuthorization"] is True
    assert props["softDeleteRetentionInDays"] >= 7
    assert "accessPolicies" not in props
    # the vault is in the DR region: `location: drLocation` is the parameter, not a literal
    vault_node = next(
        e for e in main.tree.children if isinstance(e, Tree) and e.data == "resource" and str(e.children[1]) == "vault"
    )
    location = next(p for p in vault_node.find_data("pair") if str(p.children[0].children[0]) == "location")
    assert location.children[1] == Tree("string", [Token("STRING", "drLocation")])


# The API versions reviewed for this template (the newest GA versions when it was written).
API_VERSIONS = {
    "Microsoft.OperationalInsights/workspaces": "2023-09-01",
    "Microsoft.Insights/components": "2020-02-02",
    "Microsoft.Insights/diagnosticSettings": "2021-05-01-preview",
    "Microsoft.Insights/scheduledQueryRules": "2023-12-01",
    "Microsoft.Storage/storageAccounts": "2023-05-01",
    "Microsoft.Storage/storageAccounts/blobServices": "2023-05-01",
    "Microsoft.Storage/storageAccounts/blobServices/containers": "2023-05-01",
    "Microsoft.Storage/storageAccounts/managementPolicies": "2023-05-01",
    "Microsoft.Web/serverfarms": "2024-04-01",
    "Microsoft.Web/sites": "2024-04-01",
    "Microsoft.Web/sites/config": "2024-04-01",
    "Microsoft.KeyVault/vaults": "2023-07-01",
    "Microsoft.KeyVault/vaults/secrets": "2023-07-01",
    "Microsoft.Authorization/roleAssignments": "2022-04-01",
    "Microsoft.Authorization/locks": "2020-05-01",
    "Microsoft.Network/virtualNetworks": "2024-05-01",
    "Microsoft.Network/networkSecurityGroups": "2024-05-01",
    "Microsoft.Network/privateEndpoints": "2024-05-01",
    "Microsoft.Network/privateEndpoints/privateDnsZoneGroups": "2024-05-01",
    "Microsoft.Network/privateDnsZones": "2024-06-01",
    "Microsoft.Network/privateDnsZones/virtualNetworkLinks": "2024-06-01",
    "Microsoft.DurableTask/schedulers": "2026-02-01",
    "Microsoft.DurableTask/schedulers/taskHubs": "2026-02-01",
}


def test_outputs_carry_no_secrets_and_api_versions_are_reviewed(parser: BicepParser) -> None:
    main, modules = load_all(parser)
    secure = {n for n, d in main.decorators.items() if "secure" in d}
    for name, output in main.json["outputs"].items():
        assert not (set(re.findall(r"\w+", json.dumps(output["value"]))) & secure), name
    for bicep in (main, *modules.values()):
        for name, res in bicep.json["resources"].items():
            assert API_VERSIONS.get(res["type"]) == res["api_version"], (name, res["type"])


# --- the example parameters -----------------------------------------------------------------------------


def test_example_parameters_match_the_template_and_the_plan(parser: BicepParser) -> None:
    main, _ = load_all(parser)
    params = json.loads((INFRA / "main.parameters.example.json").read_text())["parameters"]
    declared = {n for n, kind in main.declared.items() if kind == "param"}
    assert set(params) <= declared
    assert main.required_params <= set(params)
    plan = parse_plan(json.loads(params["planJson"]["value"]))
    assert plan.keyvault_url == f"https://{params['keyVaultName']['value']}.vault.azure.net"
    # every account the plan names gets its role assignments (backup accounts: created here or brought)
    sources = {a["name"] for a in params["sourceStorageAccounts"]["value"]}
    created = {a["name"] for a in params.get("backupStorageAccounts", {}).get("value", [])}
    brought = {a["name"] for a in params.get("existingBackupStorageAccounts", {}).get("value", [])}
    assert not created & brought
    assert sources == {f.source.account for f in plan.filers}
    assert created | brought == {f.backup.account for f in plan.filers}
    # the plan's backups and its key vault are in the DR region the template deploys to
    assert {f.backup.region for f in plan.filers} == {params["drLocation"]["value"]}
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,44}", params["taskHubName"]["value"])
    assert re.fullmatch(
        r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Insights/actionGroups/[^/]+",
        params["actionGroupId"]["value"],
        re.IGNORECASE,
    )
    assert _GUID.fullmatch(params["authClientId"]["value"])
